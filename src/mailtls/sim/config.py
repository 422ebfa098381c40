"""The lab's configuration files, read the way Postfix and Dovecot read them.

The simulated lab has no configuration of its own: every setting it obeys comes from the same
``labs/hosts/HOST/`` files the real servers run. This module reads ``main.cf`` (``name = value``,
indented continuation lines, ``$name`` expansion), the ``-o`` overrides of each ``master.cf``
service, lookup tables (texthash and inline) and the few Dovecot settings the course teaches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mailtls.generations import DEFAULT, Generation, host_file

# Postfix's built-in defaults for the settings the simulation reads (postconf -d, Postfix 3.7).
POSTFIX_DEFAULTS = {
    "mail_name": "Postfix",
    "smtpd_banner": "$myhostname ESMTP $mail_name",
    "smtpd_tls_security_level": "",
    "smtpd_tls_wrappermode": "no",
    "smtpd_sasl_auth_enable": "no",
    "smtpd_tls_auth_only": "no",
    "smtpd_client_restrictions": "",
    "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
    "smtpd_tls_received_header": "no",
    "mydestination": "$myhostname, localhost.$mydomain, localhost",
    "relay_domains": "",
    "virtual_mailbox_domains": "",
    "virtual_mailbox_maps": "",
    "recipient_delimiter": "",
    "smtp_tls_security_level": "",
    "smtp_tls_policy_maps": "",
    "transport_maps": "",
    "default_transport": "smtp",
    "relay_transport": "relay",
    "syslog_name": "postfix",
}
SERVICE_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465}


def read_main_cf(text: str) -> dict[str, str]:
    """``main.cf`` as Postfix reads it: comments, continuation lines, the last setting wins."""
    settings: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and name is not None:
            settings[name] += " " + line.strip()
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        settings[name] = value.strip()
    return settings


@dataclass
class MasterService:
    name: str
    type: str
    command: str
    overrides: dict[str, str] = field(default_factory=dict)


def read_master_cf(text: str) -> list[MasterService]:
    """The services of ``master.cf`` with their ``-o name=value`` overrides."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1] += line.split()
        else:
            entries.append(line.split())
    services = []
    for fields in entries:
        service = MasterService(fields[0], fields[1], fields[7])
        arguments = fields[8:]
        for option, value in zip(arguments, arguments[1:], strict=False):
            if option == "-o":
                name, _, setting = value.partition("=")
                service.overrides[name] = setting
        services.append(service)
    return services


def expand(value: str, settings: dict[str, str], depth: int = 0) -> str:
    """Postfix's ``$name`` and ``${name}`` expansion, as far as the lab's files use it."""
    if depth > 10:
        return value

    def replace(match: re.Match) -> str:
        name = match[1] or match[2]
        return expand(settings.get(name, POSTFIX_DEFAULTS.get(name, "")), settings, depth + 1)

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, value)


def words(value: str) -> list[str]:
    """A list-valued setting: separated by commas and/or spaces."""
    return [word for word in re.split(r"[\s,]+", value) if word]


def read_table(reference: str, host_dir: Path, lab_files: Path) -> dict[str, str]:
    """A lookup table (``texthash:FILE`` or ``inline:{ k=v, ... }``) as a dict.

    Paths under ``/etc/postfix/`` are the host's own files in ``labs/hosts/HOST/``; paths under
    ``/run/mailtls/`` are the lab's generated files.
    """
    kind, _, where = reference.partition(":")
    if kind == "inline":
        body = where.strip().removeprefix("{").removesuffix("}")
        pairs = [item.strip() for item in body.split(",") if item.strip()]
        return {k.strip().lower(): v.strip() for k, _, v in (pair.partition("=") for pair in pairs)}
    if kind in ("texthash", "hash", "lmdb", "btree"):
        path = Path(where)
        if where.startswith("/etc/postfix/"):
            path = host_dir / where.removeprefix("/etc/postfix/")
        elif where.startswith("/run/mailtls/"):
            path = lab_files / where.removeprefix("/run/mailtls/")
        table = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.strip().partition(" ")
                table[key.lower()] = value.strip()
        return table
    raise ValueError(f"the simulated lab does not read {kind!r} tables ({reference})")


class PostfixConfig:
    """One host's Postfix: main.cf, and the settings each of its services runs with."""

    def __init__(self, host_dir: Path, lab_files: Path, generation: Generation = DEFAULT) -> None:
        self.host_dir = host_dir
        self.lab_files = lab_files
        self.main = read_main_cf(host_file(host_dir, "main.cf", generation).read_text())
        self.services = read_master_cf(host_file(host_dir, "master.cf", generation).read_text())

    def get(self, name: str, overrides: dict[str, str] | None = None) -> str:
        settings = {**self.main, **(overrides or {})}
        return expand(settings.get(name, POSTFIX_DEFAULTS.get(name, "")), settings)

    def listeners(self) -> dict[int, MasterService]:
        """The smtpd services by port."""
        ports = {}
        for service in self.services:
            if service.type == "inet" and service.command == "smtpd":
                port = SERVICE_PORTS.get(service.name) or int(service.name.rpartition(":")[2])
                ports[port] = service
        return ports

    def service(self, name: str) -> MasterService | None:
        return next((s for s in self.services if s.name == name and s.type == "unix"), None)

    def table(self, setting: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
        """Every table named by a setting (``transport_maps = a, b``), first match first."""
        merged: dict[str, str] = {}
        for reference in reversed(split_tables(self.get(setting, overrides))):
            merged.update(read_table(reference, self.host_dir, self.lab_files))
        return merged


def split_tables(value: str) -> list[str]:
    """``texthash:/a, inline:{ x=y, z=w }`` -> the two references (commas inside braces stay)."""
    references, depth, current = [], 0, ""
    for char in value:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char in ", " and depth == 0:
            if current.strip():
                references.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        references.append(current.strip())
    return references


@dataclass
class DovecotConfig:
    """The Dovecot settings the course teaches, and the ports of the imap-login listeners."""

    ssl: str = "yes"
    disable_plaintext_auth: bool = True
    ssl_min_protocol: str = "TLSv1.2"
    auth_mechanisms: tuple[str, ...] = ("plain",)
    listeners: dict[int, bool] = field(default_factory=dict)  # port -> implicit TLS

    @classmethod
    def read(cls, path: Path) -> DovecotConfig:
        config = cls()
        section: list[str] = []
        listener_port, listener_ssl = None, False
        for raw in path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.endswith("{"):
                section.append(line[:-1].strip())
                continue
            if line == "}":
                if section and section[-1].startswith("inet_listener") and "imap-login" in " ".join(section):
                    config.listeners[listener_port] = listener_ssl
                listener_port, listener_ssl = None, False
                section.pop()
                continue
            name, _, value = (part.strip() for part in line.partition("="))
            if section and section[-1].startswith("inet_listener"):
                if name == "port":
                    listener_port = int(value)
                elif name == "ssl":
                    listener_ssl = value == "yes"
            elif not section:
                if name == "ssl":
                    config.ssl = value
                elif name == "disable_plaintext_auth":
                    config.disable_plaintext_auth = value == "yes"
                elif name == "ssl_min_protocol":
                    config.ssl_min_protocol = value
                elif name == "auth_mechanisms":
                    config.auth_mechanisms = tuple(value.split())
        return config
