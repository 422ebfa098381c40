"""The files a lab makes when it comes up: CA, certificates, users, mailboxes.

Every backend calls :func:`provision` with the folder that its hosts see as ``/run/mailtls``
(the configuration files under ``labs/`` name those paths). Nothing here is ever committed:
keys and passwords are new for every lab.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import asdict
from pathlib import Path

try:
    from mailtls.certs import LabCA, self_signed
except ImportError:  # in the browser there is no cryptography package: the same certificates in pure Python
    from mailtls.sim.x509 import LabCA, self_signed  # type: ignore[assignment]
from mailtls.hosts import DOMAIN, HOSTS, USERS
from mailtls.status import User


def ssha512(password: str) -> str:
    """Dovecot's ``{SSHA512}`` scheme: salted SHA-512, so the users file holds no password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def provision(root: Path, addresses: dict[str, str], mailbox_owner: str | None = "mail") -> list[User]:
    """Write the lab's files under ``root``; ``addresses`` maps host names to their addresses.

    ``mailbox_owner`` owns the mailboxes folder (real servers deliver as "mail"); the simulated
    lab, which keeps mailboxes in memory and may run without root, passes None.
    """
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    ca = LabCA(f"mailtls lab CA {secrets.token_hex(4)}")
    ca.write(root)
    for host in HOSTS:
        names = [addresses[host.name]] if host.name in addresses else []
        if host.certificate == "lab-ca":
            ca.issue(host.name, names).write(root)
        elif host.certificate == "self-signed":
            self_signed(host.name, names).write(root)
            # The CA's key never leaves memory, so the certificate that exercise 1 asks a student to
            # put in place of the self-signed one is issued now, next to it (lab-ca/HOST.chain.pem).
            ca.issue(host.name, names).write(root / "lab-ca")

    users = [User(f"{name}@{DOMAIN}", secrets.token_urlsafe(12)) for name in USERS]
    # Dovecot reads the users file (passwd-file format), Postfix the list of mailboxes.
    (root / "users").write_text("".join(f"{u.login}:{ssha512(u.password)}::::::\n" for u in users))
    # Readable by all: Dovecot's auth process runs as "dovecot", whose group id differs between
    # the machine and the containers. The file holds salted hashes, not passwords.
    os.chmod(root / "users", 0o644)
    (root / "mailboxes").write_text("".join(f"{u.login} OK\n" for u in users))
    (root / "credentials.json").write_text(json.dumps([asdict(u) for u in users], indent=2) + "\n")
    os.chmod(root / "credentials.json", 0o600)

    for folder in ("mail", "transcripts"):
        (root / folder).mkdir(exist_ok=True)
    if mailbox_owner is not None:
        import pwd

        owner = pwd.getpwnam(mailbox_owner)
        os.chown(root / "mail", owner.pw_uid, owner.pw_gid)
    return users


def read_users(root: Path) -> list[User]:
    """The lab-only credentials written by :func:`provision`."""
    return [User(**u) for u in json.loads((root / "credentials.json").read_text())]
