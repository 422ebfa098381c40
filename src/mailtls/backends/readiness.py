"""Knowing when a lab is up: which ports answer, and when the wiretap has started."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from mailtls.config import LabConfig
from mailtls.errors import LabError
from mailtls.hosts import HOSTS, Host, Service
from mailtls.polling import WaitTimeout, wait_until

READY_SETTLE = 2.0  # seconds a port stays silent, its server up, before `up` takes it as closed on purpose


def silent_services(config: LabConfig, hosts: list[Host] | None = None) -> list[tuple[Host, Service, str]]:
    """The lab's ports that do not answer now, each with the reason (``Connection refused``)."""
    silent = []
    for lab_host in hosts or HOSTS:
        for service in lab_host.services:
            try:
                socket.create_connection((config.address(lab_host), service.port), timeout=1).close()
            except OSError as error:
                silent.append((lab_host, service, error.strerror or str(error)))
    return silent


def silent_ports(config: LabConfig, hosts: list[Host] | None = None) -> list[str]:
    """``mail.lab.test:465 (submissions): Connection refused``, for each port that does not answer."""
    return [f"{h.name}:{s.port} ({s.name}): {why}" for h, s, why in silent_services(config, hosts)]


def server_of(lab_host: Host, service: Service) -> str:
    """The program that opens this port: postfix, dovecot or the wiretap."""
    if lab_host.wiretap_for:
        return "the wiretap"
    return "dovecot" if service.name.startswith("imap") else "postfix"


class PortWatch:
    """The lab's ports over time: which servers answer, and which ports stay closed, since when.

    Postfix, Dovecot and the wiretap each open all their ports as they start. So a server is up
    once one of its ports answers, and a port still silent ``settle`` seconds later is one that
    its configuration does not open: an exercise's starting state removes 465, for one.
    """

    def __init__(self, config: LabConfig, settle: float = READY_SETTLE) -> None:
        self.config, self.settle = config, settle
        self.closed: set[tuple[str, int]] | None = None
        self.since = 0.0
        self.not_up: list[str] = []  # "postfix on relay.lab.test", for each server with no port open
        self.left_closed: list[str] = []  # what silent_ports() said once every server was up

    def settled(self) -> bool:
        """Look once: True when every server is up and the closed ports have not changed for ``settle`` s."""
        silent = silent_services(self.config)
        closed = {(h.name, s.port) for h, s, _ in silent}
        if not closed:
            self.left_closed = []
            return True
        self.not_up = sorted({
            f"{server_of(h, s)} on {h.name}" for h in HOSTS for s in h.services
            if all((h.name, t.port) in closed for t in h.services if server_of(h, t) == server_of(h, s))
        })
        if closed != self.closed:
            self.closed, self.since = closed, time.monotonic()
        if not self.not_up and time.monotonic() - self.since >= self.settle:
            self.left_closed = silent_ports(self.config)
            return True
        return False


def wait_until_listening(config: LabConfig, timeout: float, settle: float = READY_SETTLE) -> list[str]:
    """Wait until every server of the lab listens; return the ports its files leave closed.

    Raises LabError when a server has not answered on any of its ports after ``timeout`` seconds.
    See PortWatch for how a port closed on purpose is told from a server not yet up.
    """
    watch = PortWatch(config, settle)
    try:
        wait_until(watch.settled, timeout, "the lab's servers listening", interval=0.2)
    except WaitTimeout:
        raise LabError("the lab did not answer in time: "
                       + (", ".join(watch.not_up) or "its ports kept changing")
                       + ". Not listening:\n" + "\n".join(silent_ports(config))) from None
    return watch.left_closed


def wait_for_wiretap(read_log: Callable[[], str], timeout: float = 20.0) -> None:
    """Wait for the wiretap's "listening" line: probing its ports would put noise in the transcript.

    ``read_log`` returns what the wiretap has printed since it was started. Raises LabError with
    what it printed when it fails or does not start in ``timeout`` seconds.
    """
    def started() -> bool:
        said = read_log()
        if "error:" in said or "Traceback" in said:
            raise LabError("the wiretap did not start:\n" + said[-2000:])
        return "wiretap in" in said

    try:
        wait_until(started, timeout, "the wiretap's first line", interval=0.05)
    except WaitTimeout:
        raise LabError("the wiretap did not start:\n" + read_log()[-2000:]) from None
