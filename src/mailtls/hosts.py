"""The lab's hosts and the services each one offers: the contract every backend honours.

The configuration of each host is in ``labs/hosts/<short name>/`` (``main.cf``, ``master.cf``,
and, per Debian generation, ``debian13/`` and ``debian12/`` copies of a file whose text differs:
see mailtls.generations); this module only says which hosts exist, where they listen, and how TLS
starts on each port, so that ``lab status`` and the tests can describe and reach them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mailtls.errors import UnknownHost
from mailtls.generations import Generation, host_file

DOMAIN = "lab.test"
# The lab's files as shipped: labs/ in this repository. An installed wheel (the browser's)
# carries the hosts' files as package data, mailtls/_labs (see pyproject.toml); an editable
# install reads labs/ of the repository. A lab may run from a copy instead (a student's, a
# test's): see mailtls.config.LabConfig.labs.
_PACKAGED = resources.files("mailtls") / "_labs"
SHIPPED_LABS = Path(str(_PACKAGED)) if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "labs"


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

    def config_dir(self, labs: Path) -> Path:
        """This host's folder of configuration files under ``labs``."""
        return labs / "hosts" / self.short

    def config_file(self, labs: Path, name: str, generation: Generation) -> Path:
        """This host's file ``name`` (``main.cf``, ``dovecot.conf``) as ``generation`` runs it:
        ``labs/hosts/HOST/debianNN/NAME`` when the generations differ, else ``labs/hosts/HOST/NAME``."""
        return host_file(self.config_dir(labs), name, generation)


MAIL = Host("mail", 10, (SMTP_MX, SUBMISSION, SUBMISSIONS, IMAP, IMAPS), dovecot=True)
LEGACY = Host("legacy", 11, (Service("smtp", 25, "none"),), certificate="none")
SELFSIGNED = Host("selfsigned", 12, (SMTP_MX,), certificate="self-signed")
RELAY = Host("relay", 13, (SMTP_MX,))
# The wiretap answers on mail.lab.test's ports and relays to it; see mailtls.wiretap.
MITM = Host("mitm", 14, MAIL.services, postfix=False, certificate="none", wiretap_for="mail")

HOSTS: tuple[Host, ...] = (MAIL, LEGACY, SELFSIGNED, RELAY, MITM)
WIRETAP = MITM
USERS = ("alice", "bob")


def host(short_or_name: str) -> Host:
    """A host by its short name (``mail``) or full name (``mail.lab.test``)."""
    for candidate in HOSTS:
        if short_or_name in (candidate.short, candidate.name):
            return candidate
    names = ", ".join(h.name for h in HOSTS)
    raise UnknownHost(f"no lab host {short_or_name!r}; the hosts are {names}")
