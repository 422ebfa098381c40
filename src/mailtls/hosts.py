"""The lab's hosts and the services each one offers: the contract every backend honours.

The configuration of each host is in ``labs/hosts/<short name>/`` (``main.cf``, ``master.cf``,
``dovecot.conf``); this module only says which hosts exist, where they listen, and how TLS
starts on each port, so that ``lab status`` and the tests can describe and reach them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mailtls.errors import UnknownHost

DOMAIN = "lab.test"
# The lab's files: labs/ in this repository, or a copy named by MAILTLS_LABS (a teacher's
# per-student copy, or the tests' scratch copy, so that editing it never touches the original).
# An installed wheel (the browser's) carries the hosts' files as package data, mailtls/_labs
# (see pyproject.toml); an editable install reads labs/ of the repository.
_PACKAGED = resources.files("mailtls") / "_labs"
SHIPPED_LABS = Path(str(_PACKAGED)) if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "labs"
LABS = Path(os.environ.get("MAILTLS_LABS") or SHIPPED_LABS)

# Where the configuration files under labs/ expect the files a lab makes at start-up: the CA,
# the hosts' keys and certificates, the users' passwords, the mailboxes and the wiretap's
# transcripts. Inside a container they are there.
CONFIG_FILES = Path("/run/mailtls")
MAX_STUDENTS = 50
# A classroom host runs one lab per student (`lab up --students N`). A process works on student
# K's lab when MAILTLS_STUDENT=K: its files, addresses and names all follow from that number.
CLASSROOM_FILES = Path("/run/mailtls-classroom")


def _student(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_STUDENTS:
        raise ValueError(f"MAILTLS_STUDENT must be a number from 1 to {MAX_STUDENTS}, not {value!r}")
    return int(value)


STUDENT = _student(os.environ.get("MAILTLS_STUDENT"))


def student_files(number: int) -> Path:
    """Where student ``number``'s lab keeps its files on this machine."""
    return CLASSROOM_FILES / f"student-{number}"


# Where the lab of this process keeps those files on this machine: the same place for the
# single lab, a folder per student on a classroom host (the native backend points the
# configuration's paths there).
LAB_FILES = CONFIG_FILES if STUDENT is None else student_files(STUDENT)


@dataclass(frozen=True)
class Service:
    """One listening port. ``name`` is the IANA service name; ``tls`` is how TLS starts there."""

    name: str  # smtp, submission, submissions, imap, imaps
    port: int
    tls: str  # "starttls", "implicit" or "none"


SMTP_MX = Service("smtp", 25, "starttls")
SUBMISSION = Service("submission", 587, "starttls")
SUBMISSIONS = Service("submissions", 465, "implicit")
IMAP = Service("imap", 143, "starttls")
IMAPS = Service("imaps", 993, "implicit")


@dataclass(frozen=True)
class Host:
    short: str  # the folder under labs/hosts/ and the start of the host name
    octet: int  # last byte of its address on the lab network
    services: tuple[Service, ...]
    postfix: bool = True
    dovecot: bool = False
    certificate: str = "lab-ca"  # "lab-ca", "self-signed" or "none"
    wiretap_for: str | None = None  # the host whose traffic this one intercepts

    @property
    def name(self) -> str:
        return f"{self.short}.{DOMAIN}"

    def config_dir(self, labs: Path = LABS) -> Path:
        """This host's folder of configuration files under ``labs``."""
        return labs / "hosts" / self.short


MAIL = Host("mail", 10, (SMTP_MX, SUBMISSION, SUBMISSIONS, IMAP, IMAPS), dovecot=True)
LEGACY = Host("legacy", 11, (Service("smtp", 25, "none"),), certificate="none")
SELFSIGNED = Host("selfsigned", 12, (SMTP_MX,), certificate="self-signed")
RELAY = Host("relay", 13, (SMTP_MX,))
# The wiretap answers on mail.lab.test's ports and relays to it; see mailtls.wiretap.
MITM = Host("mitm", 14, MAIL.services, postfix=False, certificate="none", wiretap_for="mail")

HOSTS: tuple[Host, ...] = (MAIL, LEGACY, SELFSIGNED, RELAY, MITM)
USERS = ("alice", "bob")


def host(short_or_name: str) -> Host:
    """A host by its short name (``mail``) or full name (``mail.lab.test``)."""
    for candidate in HOSTS:
        if short_or_name in (candidate.short, candidate.name):
            return candidate
    names = ", ".join(h.name for h in HOSTS)
    raise UnknownHost(f"no lab host {short_or_name!r}; the hosts are {names}")
