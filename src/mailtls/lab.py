"""Find the running lab from Python: its hosts, ports, CA, lab-only users, logs and wiretap.

This is the one call the notebooks make besides the standard library::

    from mailtls.lab import connect
    lab = connect()
    server = smtplib.SMTP("mail.lab.test", 587)
    server.starttls(context=lab.ssl_context())

The lab has no DNS server that this machine asks, so ``connect()`` teaches this Python process
the lab's host names, as an ``/etc/hosts`` entry would: the cells then read exactly as they would
against a real server, and TLS checks the real name.

The description comes from ``lab status --json`` (the file ``/run/mailtls/status.json``), so a
notebook needs no privileges and does not care which backend runs the lab.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mailtls import generations
from mailtls.config import LabConfig
from mailtls.errors import NoLabUp as LabNotRunning  # the notebooks' name for it
from mailtls.errors import UnknownHost
from mailtls.generations import Generation
from mailtls.status import Endpoint, LabStatus, User
from mailtls.wiretap import Mode, read_transcript

__all__ = ["Endpoint", "Lab", "LabNotRunning", "User", "connect", "resolve_lab_names"]


class Lab:
    """A running lab, from its description (``status.json``), with what a notebook does with it."""

    def __init__(self, status: LabStatus) -> None:
        self.status = status
        self.backend: str = status.backend  # containers, native or sim
        self.debian: int = status.debian  # the generation of its servers: 13 or 12 (mailtls.generations)
        self.ca_file = Path(status.ca_file)
        self.services: tuple[Endpoint, ...] = status.services
        self.users: tuple[User, ...] = status.users
        # The versions of mail.lab.test's servers: {"postfix": "3.7.11", "dovecot": "2.3.19.1"}.
        self.servers: dict[str, str] = status.servers

    def __str__(self) -> str:
        """One line saying which servers answer: the notebooks print it above their outputs."""
        versions = ", ".join(f"{name.capitalize()} {version}" for name, version in self.servers.items())
        return f"lab on the {self.backend} backend, Debian {self.debian}: {versions}"

    def endpoint(self, host: str, service: str) -> Endpoint:
        """The port of ``service`` (IANA name) on ``host``; UnknownHost if the host does not offer it."""
        for endpoint in self.services:
            if endpoint.host == host and endpoint.service == service:
                return endpoint
        raise UnknownHost(f"{host} offers no {service!r} in this lab")

    def address(self, host: str) -> str:
        return next(e.address for e in self.services if e.host == host)

    def user(self, name: str) -> User:
        """A lab user by login or by the part before the @ (``alice``)."""
        return next(u for u in self.users if name in (u.login, u.login.split("@")[0]))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the lab's CA and nothing else, and checks host names."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def log(self, host: str) -> str:
        """The Postfix log of a host (``relay.lab.test``), as its administrator would read it."""
        return Path(self.status.logs[host]).read_text(errors="replace")

    # -- The wiretap on mitm.lab.test --------------------------------------------------------

    def transcript(self) -> list[dict[str, Any]]:
        """What the wiretap recorded so far (in its record and strip modes), oldest first."""
        return read_transcript(Path(self.status.wiretap.transcript))

    @property
    def wiretap_mode(self) -> str:
        return Path(self.status.wiretap.mode_file).read_text().strip()

    def set_wiretap_mode(self, mode: str) -> None:
        """Switch the wiretap to ``pass``, ``record`` or ``strip``; the next connection uses it."""
        Mode(mode)  # a ValueError names a mode that does not exist
        try:
            Path(self.status.wiretap.mode_file).write_text(mode + "\n")
        except PermissionError:
            raise PermissionError(
                "only the lab's owner may switch the wiretap: run "
                f"`sudo python -m mailtls lab wiretap {mode}`"
            ) from None

    @contextlib.contextmanager
    def through_wiretap(self) -> Iterator[None]:
        """Inside this block, the name of the server the wiretap watches leads to the wiretap.

        This is what an attacker on the path (a spoofed DNS answer, a hostile Wi-Fi) does: the
        client still asks for ``mail.lab.test`` and TLS still checks that name; only the
        packets go through ``mitm.lab.test``.
        """
        target = self.status.wiretap.target
        real = _LAB_NAMES[target]
        _LAB_NAMES[target] = self.address(self.status.wiretap.host)
        try:
            yield
        finally:
            _LAB_NAMES[target] = real


def connect(runtime: Path | None = None, backend: str | None = None,
            environ: Mapping[str, str] | None = None) -> Lab:
    """The running lab, as described by ``lab status --json``; its host names now resolve here.

    ``runtime`` is the lab's folder of generated files; by default the one of the lab that
    ``environ`` (this process's environment) names: the single lab, or student K's with
    ``MAILTLS_STUDENT=K``. With ``backend="sim"`` (or ``MAILTLS_BACKEND=sim``, or always in the
    browser, where Python has no sockets to reach a real lab) the lab is simulated in this
    process instead, of the generation ``MAILTLS_SIM_DEBIAN`` names (13 or 12; by default
    Debian 13). Raises LabNotRunning when no lab is up, UnknownGeneration for another release.
    """
    environ = os.environ if environ is None else environ
    backend = backend or environ.get("MAILTLS_BACKEND") or ("sim" if sys.platform == "emscripten" else None)
    if backend == "sim":
        debian = environ.get("MAILTLS_SIM_DEBIAN") or None
        runtime = simulated_lab(environ.get("MAILTLS_SIM_TLS"), debian).files
    config = LabConfig.from_environment(environ)
    status = LabStatus.read(runtime or config.runtime)
    if status is None:
        raise LabNotRunning.of(config.student)
    lab = Lab(status)
    resolve_lab_names({e.host: e.address for e in lab.services})
    return lab


_simulated = None


def simulated_lab(tls_engine: str | None = None, generation: Generation | int | str | None = None):
    """This process's simulated lab, started on first use (see ``mailtls.sim``).

    ``tls_engine`` (``ssl`` or ``tlslite``; ``MAILTLS_SIM_TLS`` for ``connect``) chooses how the
    simulation does TLS from now on; by default ``ssl``, and tlslite-ng in the browser.
    ``generation`` (a :class:`~mailtls.generations.Generation`, or its Debian release 13 or 12;
    ``MAILTLS_SIM_DEBIAN`` for ``connect``) is the Debian whose servers it simulates, by default
    Debian 13; asking for another generation than the running simulation's starts a new one.
    Raises UnknownGeneration for a release the lab has no files for.
    """
    global _simulated
    from mailtls.sim import tls

    if tls_engine:
        tls.use(tls_engine)
    if generation is not None and not isinstance(generation, Generation):
        generation = generations.get(generation)
    if _simulated is None or (generation is not None and generation != _simulated.generation):
        from mailtls.sim.lab import SimLab

        _simulated = SimLab(generation=generation)
    else:  # another simulated lab in this process (of the other generation) may hold the addresses
        _simulated.activate()
    return _simulated


# -- The lab's host names in this process ----------------------------------------------------------

_LAB_NAMES: dict[str, str] = {}
_system_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, port, *args, **kwargs):  # same signature as socket.getaddrinfo
    if isinstance(host, str):
        host = _LAB_NAMES.get(host.lower().rstrip("."), host)
    return _system_getaddrinfo(host, port, *args, **kwargs)


def resolve_lab_names(names: dict[str, str]) -> None:
    """Make ``socket`` (and so smtplib and imaplib) resolve these names to these addresses."""
    _LAB_NAMES.update(names)
    socket.getaddrinfo = _getaddrinfo
