"""What a running lab says of itself: ``status.json`` and ``lab.json``, as typed objects.

``status.json`` (``LabStatus``) is what ``lab status --json`` prints and what the notebooks'
``connect()`` reads: which backend runs the lab, its servers' versions, every host's services
and addresses, the lab CA, the lab-only users and the wiretap's files. Anyone on the machine may
read it. Every backend and the simulated lab write it with ``LabStatus.write``; every reader uses
``LabStatus.read``.

``lab.json`` (``LabState``) is the backend's own note: which backend runs the lab, from which
folder of configuration files, with which container engine. Only the lab's owner reads it.

This module is pure data and runs in the browser too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
STATE_FILE = "lab.json"
WIRETAP_MODE_FILE = "wiretap.mode"


@dataclass(frozen=True)
class Endpoint:
    """One port of one host: ``service`` is the IANA name, ``tls`` how TLS starts there."""

    host: str  # mail.lab.test
    service: str  # smtp, submission, submissions, imap, imaps
    address: str  # 198.18.0.10
    port: int
    tls: str  # starttls, implicit or none


@dataclass(frozen=True)
class User:
    """A lab-only mailbox user and its password (it opens nothing but this lab's mailboxes)."""

    login: str  # alice@lab.test
    password: str


@dataclass(frozen=True)
class WiretapFiles:
    """The interceptor on ``host``, between clients and ``target``: its mode file and transcript."""

    host: str  # mitm.lab.test
    target: str  # mail.lab.test
    mode_file: str
    transcript: str
    mode: str | None = None  # pass, record or strip: read from mode_file when the status is read


@dataclass(frozen=True)
class LabStatus:
    """The description of a running lab (``status.json``).

    ``debian`` is the generation of its servers (13: Postfix 3.10, Dovecot 2.4; 12: Postfix 3.7,
    Dovecot 2.3; see mailtls.generations); ``servers`` maps ``postfix``/``dovecot`` to the versions
    of mail.lab.test's servers; ``logs`` maps a host name to its Postfix log file on this machine.
    """

    backend: str  # containers, native or sim
    debian: int  # 13 or 12
    ca_file: str
    services: tuple[Endpoint, ...]
    users: tuple[User, ...]
    wiretap: WiretapFiles
    servers: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    up: bool = True

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``status.json`` (the wiretap's mode only once it was read)."""
        described = asdict(self)
        if self.wiretap.mode is None:
            del described["wiretap"]["mode"]
        described["services"] = [asdict(s) for s in self.services]
        described["users"] = [asdict(u) for u in self.users]
        return described

    @classmethod
    def from_json(cls, described: dict[str, Any]) -> LabStatus:
        """The reverse of ``to_json``; raises KeyError or TypeError on a file of another shape."""
        return cls(
            backend=described["backend"],
            debian=int(described["debian"]),
            ca_file=described["ca_file"],
            services=tuple(Endpoint(**s) for s in described["services"]),
            users=tuple(User(**u) for u in described["users"]),
            wiretap=WiretapFiles(**described["wiretap"]),
            servers=dict(described.get("servers", {})),
            logs=dict(described.get("logs", {})),
            up=bool(described.get("up", True)),
        )

    def write(self, runtime: Path) -> Path:
        """Write ``runtime/status.json``, readable by everyone on this machine (the notebooks)."""
        path = runtime / STATUS_FILE
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.chmod(path, 0o644)
        return path

    @classmethod
    def read(cls, runtime: Path) -> LabStatus | None:
        """The status in ``runtime`` with the wiretap's mode as it is now; None when no lab is up there."""
        try:
            described = json.loads((runtime / STATUS_FILE).read_text())
        except FileNotFoundError:
            return None
        if not described.get("up"):
            return None
        status = cls.from_json(described)
        return replace(status, wiretap=replace(status.wiretap,
                                               mode=read_wiretap_mode(Path(status.wiretap.mode_file))))


def read_wiretap_mode(mode_file: Path) -> str:
    """The wiretap's mode as written in its mode file; ``pass`` when there is none."""
    try:
        return mode_file.read_text().strip()
    except FileNotFoundError:
        return "pass"


@dataclass(frozen=True)
class LabState:
    """The backend's note of the running lab (``lab.json``).

    ``labs`` is the folder of configuration files it was started from (``reload`` reads the same
    one); ``debian`` the generation it runs (13 or 12); ``engine`` is the container engine
    (``podman`` or ``docker``) of a containers lab.
    """

    backend: str
    labs: str
    debian: int
    engine: str | None = None

    def write(self, runtime: Path) -> None:
        (runtime / STATE_FILE).write_text(json.dumps({k: v for k, v in asdict(self).items() if v is not None})
                                          + "\n")

    @classmethod
    def read(cls, runtime: Path) -> LabState | None:
        """The note in ``runtime``; None when no lab is up there."""
        try:
            return cls(**json.loads((runtime / STATE_FILE).read_text()))
        except FileNotFoundError:
            return None
