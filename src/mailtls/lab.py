"""Find the running lab from Python: its hosts, ports, CA and lab-only users.

This is the one call the notebooks make besides the standard library::

    from mailtls.lab import connect
    lab = connect()
    server = smtplib.SMTP(lab.address("mail.lab.test"), 587)
    server.starttls(context=lab.ssl_context())

The description comes from ``lab status --json`` (the file ``/run/mailtls/status.json``), so a
notebook needs no privileges and does not care which backend runs the lab.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailtls.hosts import LAB_FILES
from mailtls.wiretap import read_transcript

STATUS_FILE = LAB_FILES / "status.json"


class LabNotRunning(RuntimeError):
    """No lab is up on this machine."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    service: str  # IANA name: smtp, submission, submissions, imap, imaps
    address: str
    port: int
    tls: str  # starttls, implicit or none


@dataclass(frozen=True)
class User:
    login: str
    password: str


@dataclass(frozen=True)
class Lab:
    backend: str
    ca_file: Path
    services: tuple[Endpoint, ...]
    users: tuple[User, ...]
    wiretap: dict[str, Any]

    def endpoint(self, host: str, service: str) -> Endpoint:
        for endpoint in self.services:
            if endpoint.host == host and endpoint.service == service:
                return endpoint
        raise KeyError(f"{host} offers no {service!r} in this lab")

    def address(self, host: str) -> str:
        return next(e.address for e in self.services if e.host == host)

    def user(self, name: str) -> User:
        """A lab user by login or by the part before the @ (``alice``)."""
        return next(u for u in self.users if name in (u.login, u.login.split("@")[0]))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the lab's CA and nothing else, and checks host names."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def transcript(self) -> list[dict[str, Any]]:
        """What the wiretap recorded so far (in its record and strip modes)."""
        return read_transcript(Path(self.wiretap["transcript"]))


def connect(status_file: Path = STATUS_FILE) -> Lab:
    """The running lab, as described by ``lab status --json``."""
    try:
        status = json.loads(status_file.read_text())
    except FileNotFoundError:
        raise LabNotRunning("no lab is running: start one with `python -m mailtls lab up`") from None
    if not status.get("up"):
        raise LabNotRunning("no lab is running: start one with `python -m mailtls lab up`")
    return Lab(
        backend=status["backend"],
        ca_file=Path(status["ca_file"]),
        services=tuple(Endpoint(**s) for s in status["services"]),
        users=tuple(User(**u) for u in status["users"]),
        wiretap=status["wiretap"],
    )
