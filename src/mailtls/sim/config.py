"""The lab's configuration files, read the way Postfix and Dovecot read them.

The simulated lab has no configuration of its own: every setting it obeys comes from the same
``labs/hosts/HOST/`` files the real servers run. This module reads ``main.cf`` (``name = value``,
indented continuation lines, ``$name`` expansion), the ``-o`` overrides of each ``master.cf``
service, lookup tables (texthash and inline) and the few Dovecot settings the course teaches,
in Dovecot 2.4's language (Debian 13) or 2.3's (Debian 12). Like the real ``doveconf``, it
refuses a ``dovecot.conf`` with a setting its Dovecot does not know, with doveconf's words; the
names each version knows are package data (``names/``), made by ``tools/server_names.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from mailtls.errors import LabError
from mailtls.generations import DEFAULT, Generation, host_file

# Postfix's built-in defaults for the settings the simulation reads: ``postconf -d`` of Postfix
# 3.7.11 (Debian 12) and 3.10.13 (Debian 13) give the same values for all of them (tests/test_sim.py
# compares them when the binaries are there). Three are expressions there, given here as they
# evaluate with the lab's ``compatibility_level`` (3.6, set in every main.cf; >= 2 is what
# counts): smtpd_relay_restrictions and relay_domains (``${{$compatibility_level} <level {N} ?
# ...}``) and syslog_name (``${multi_instance_name?...:{postfix}}``). virtual_mailbox_domains is
# ``$virtual_mailbox_maps`` there; every lab host that has virtual mailboxes sets both.
# Debian's "(Debian/GNU)" or "(Debian)" after the banner is not a built-in default: Debian's
# package writes it into main.cf, and the lab's main.cf files say it themselves.
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
EVALUATED_DEFAULTS = ("smtpd_relay_restrictions", "relay_domains", "syslog_name", "virtual_mailbox_domains")
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


def read_table(reference: str, host_dir: Path, lab_files: Path,
               generation: Generation = DEFAULT) -> dict[str, str]:
    """A lookup table (``texthash:FILE`` or ``inline:{ k=v, ... }``) as a dict.

    Paths under ``/etc/postfix/`` are the host's own files in ``labs/hosts/HOST/`` (or its
    ``debianNN/`` for ``generation``: :func:`mailtls.generations.host_file`); paths under
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
            path = host_file(host_dir, where.removeprefix("/etc/postfix/"), generation)
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
    """One host's Postfix: main.cf, and the settings each of its services runs with.

    ``host_dir`` is the host's folder in ``labs/hosts/``; its files are ``generation``'s
    (:func:`mailtls.generations.host_file`: ``debianNN/NAME`` where the generations differ).
    """

    def __init__(self, host_dir: Path, lab_files: Path, generation: Generation = DEFAULT) -> None:
        self.host_dir = host_dir
        self.lab_files = lab_files
        self.generation = generation
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
            merged.update(read_table(reference, self.host_dir, self.lab_files, self.generation))
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




# -- Dovecot ----------------------------------------------------------------------------------------


class DovecotRefused(LabError):
    """Dovecot does not start with this ``dovecot.conf``; the message is doveconf's own line
    (``doveconf: Fatal: Error in configuration file FILE line N: ...``)."""


@cache
def setting_names(server: str, version: str) -> frozenset[str]:
    """The names of every setting of ``server`` (``postfix``, ``dovecot``) ``version`` (``3.10``,
    ``2.4``), as ``tools/server_names.py`` took them from the real binaries (see its docstring
    for the shapes: Dovecot 2.3's are paths of section types, ``service/inet_listener/port``).
    Raises FileNotFoundError for a version the package has no list of."""
    text = (resources.files("mailtls.sim") / "names" / f"{server}-{version}.txt").read_text()
    return frozenset(text.split())


# Sections whose contents are filters of the top level's settings (both versions), and 2.3's
# free-form sections (its ``plugin { }`` takes any name).
FILTERS = ("protocol", "local", "remote", "local_name")
FREE_FORM_23 = ("plugin",)


# Dovecot's default ssl_cipher_list (``doveconf -d``, 2.3.19.1 and 2.4.1 alike); @SECLEVEL=0 at its
# end is what the protocols exercise adds (src/mailtls/exercises/protocols/start.toml).
DEFAULT_CIPHER_LIST = ("ALL:!kRSA:!SRP:!kDHd:!DSS:!aNULL:!eNULL:!EXPORT:!DES:!3DES:!MD5:!PSK:!RC4:!ADH:"
                       "!LOW@STRENGTH")
SECLEVEL_0 = ":@SECLEVEL=0"
# ssl_min_protocol's values, as Dovecot's iostream-openssl reads them (case does not matter: tlsv1.2
# works), each with the oldest version it lets through: ANY and SSLv3 let a TLS 1.0 handshake go as
# far as TLSv1 does (measured on 2.3.19.1: "no suitable signature algorithm" for all three; 2.4.1
# with ANY: "unsupported protocol", as with TLSv1, and a config warning at start).
MIN_PROTOCOLS = {"any": "TLSv1", "sslv3": "TLSv1", "tlsv1": "TLSv1", "tlsv1.1": "TLSv1.1",
                 "tlsv1.2": "TLSv1.2", "tlsv1.3": "TLSv1.3"}
# The names of the certificate and key settings in each version.
CERT_SETTINGS = {"2.3": ("ssl_cert", "ssl_key"), "2.4": ("ssl_server_cert_file", "ssl_server_key_file")}


@dataclass
class DovecotConfig:
    """The Dovecot settings the course teaches, and the ports of the imap-login listeners.

    ``dovecot`` is the version of the Dovecot that read the file (``2.3`` or ``2.4``);
    ``cleartext_allowed`` is 2.4's ``auth_allow_cleartext``, the inverse of 2.3's
    ``disable_plaintext_auth`` (both default to refusing a password before TLS).
    ``ssl_cert``/``ssl_key`` are the files the certificate and key settings name (2.3's ``ssl_cert =
    </path``, 2.4's ``ssl_server_cert_file = /path``), each with the number of its line, or None when
    the file leaves them at their empty default; ``ssl_cipher_list`` is the setting as written (None:
    the default). ``listeners`` maps each imap-login port to whether it has ``ssl = yes``; a port of 0
    is a listener that does not listen.
    """

    dovecot: str = "2.4"
    ssl: str = "yes"
    cleartext_allowed: bool = False
    ssl_min_protocol: str = "TLSv1.2"
    auth_mechanisms: tuple[str, ...] = ("plain",)
    listeners: dict[int, bool] = field(default_factory=dict)  # port -> implicit TLS
    ssl_cert: tuple[str, int] | None = None  # (path, line)
    ssl_key: tuple[str, int] | None = None
    ssl_cipher_list: str | None = None
    protocols: tuple[str, ...] = ("imap",)
    path: Path | None = None  # the file it was read from

    @property
    def minimum_version(self) -> str | None:
        """The oldest TLS version a client can get: ``ssl_min_protocol``, raised to TLS 1.2 unless the
        cipher list ends in ``@SECLEVEL=0``; None for a value Dovecot does not know.

        OpenSSL 3's default security level refuses TLS 1.0 and 1.1 whatever the protocol setting
        (their handshakes sign with SHA-1): measured with ``ssl_min_protocol = TLSv1`` (and ``ANY``,
        ``SSLv3``) on Dovecot 2.3.19.1 (``no suitable signature algorithm``) and 2.4.1
        (``unsupported protocol``); with the exercise's ``@SECLEVEL=0``, TLS 1.0 and 1.1 connect.
        """
        minimum = MIN_PROTOCOLS.get(self.ssl_min_protocol.lower())
        if minimum is None:
            return None
        if not self.seclevel_0 and minimum in ("TLSv1", "TLSv1.1"):
            return "TLSv1.2"
        return minimum

    @property
    def seclevel_0(self) -> bool:
        return self.ssl_cipher_list is not None and self.ssl_cipher_list.endswith(SECLEVEL_0)

    def cipher_list_modelled(self) -> bool:
        """True for the cipher lists the simulation knows: the default, and the default or the
        exercise's list with ``@SECLEVEL=0`` (any other changes which ciphers a client gets)."""
        return self.ssl_cipher_list in (None, DEFAULT_CIPHER_LIST, DEFAULT_CIPHER_LIST + SECLEVEL_0,
                                        "DEFAULT" + SECLEVEL_0)

    @classmethod
    def read(cls, path: Path, generation: Generation = DEFAULT) -> DovecotConfig:
        """``path`` as ``generation``'s Dovecot reads it (``doveconf``'s checks, then the settings).

        A file whose first setting is ``dovecot_config_version`` is in 2.4's language; any other
        is 2.3's. Raises DovecotRefused where the real Dovecot refuses to start, with its words
        (measured with ``doveconf -n -c FILE``, Dovecot 2.3.19.1 and 2.4.1): a setting or section
        it does not know, 2.4 without ``dovecot_config_version`` first or without
        ``dovecot_storage_version``, 2.4's ``passdb``/``userdb`` without a name. The files the
        certificate settings name are checked later, by :meth:`check_files`.
        """
        config = cls(dovecot=generation.dovecot, path=path)
        check = DovecotChecker(path, generation.dovecot)
        cert_setting, key_setting = CERT_SETTINGS[generation.dovecot]
        sections: list[tuple[str, str]] = []  # (type, name) of each open section
        listener_port, listener_ssl = None, False
        for number, raw in enumerate(path.read_text().splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("!"):  # !include: the lab's files include nothing
                continue
            if line.endswith("{"):
                kind, _, name = line[:-1].strip().partition(" ")
                check.section(number, sections, kind, name.strip())
                sections.append((kind, name.strip()))
                continue
            if line == "}":
                if sections and sections[-1][0] == "inet_listener" and ("service", "imap-login") in sections:
                    config.listeners[listener_port] = listener_ssl
                listener_port, listener_ssl = None, False
                if sections:
                    sections.pop()
                continue
            name, _, value = (part.strip() for part in line.partition("="))
            check.setting(number, sections, name)
            if sections and sections[-1][0] == "inet_listener":
                if name == "port":
                    listener_port = int(value)
                elif name == "ssl":
                    listener_ssl = value == "yes"
            elif not sections:
                if name == "ssl":
                    config.ssl = value
                elif name == "disable_plaintext_auth":
                    config.cleartext_allowed = value != "yes"
                elif name == "auth_allow_cleartext":
                    config.cleartext_allowed = value == "yes"
                elif name == "ssl_min_protocol":
                    config.ssl_min_protocol = value
                elif name == "auth_mechanisms":
                    config.auth_mechanisms = tuple(value.lower().split())
                elif name in (cert_setting, key_setting):
                    setting = (value, number) if value else None
                    if name == cert_setting:
                        config.ssl_cert = setting
                    else:
                        config.ssl_key = setting
                elif name == "ssl_cipher_list":
                    config.ssl_cipher_list = value
                elif name == "protocols":
                    config.protocols = tuple(value.split())
        check.finish()
        return config

    def file_of(self, setting: tuple[str, int] | None) -> str | None:
        """The path a certificate setting names: 2.3's value is ``<path`` (the file's contents; a
        value without ``<`` is the PEM text itself), 2.4's the path."""
        if setting is None:
            return None
        value = setting[0]
        if self.dovecot == "2.3":
            return value[1:].strip() if value.startswith("<") else None
        return value

    def check_files(self, resolve: Callable[[str], Path | None]) -> None:
        """Refuse to start, as the real Dovecot does, when a certificate or key file cannot be opened.

        ``resolve`` maps a path of the configuration to the file that stands for it (None: none does).
        doveconf reads these files when Dovecot starts (``doveconf -n`` does not): a missing one stops
        it with ``doveconf: Fatal: Error in configuration file FILE line N: ssl_cert: Can't open file
        PATH: No such file or directory`` (2.3.19.1) or ``...: ssl_server_cert_file: open(PATH) failed:
        No such file or directory`` (2.4.1), with ``ssl = no`` too. Raises DovecotRefused with those words.
        """
        for name, setting in zip(CERT_SETTINGS[self.dovecot], (self.ssl_cert, self.ssl_key), strict=True):
            path = self.file_of(setting)
            if path is None or setting is None:
                continue
            found = resolve(path)
            if found is not None and found.is_file():
                continue
            what = (f"Can't open file {path}: No such file or directory" if self.dovecot == "2.3"
                    else f"open({path}) failed: No such file or directory")
            raise DovecotRefused(f"doveconf: Fatal: Error in configuration file {self.path} "
                                 f"line {setting[1]}: {name}: {what}")


class DovecotChecker:
    """What ``doveconf`` checks while it reads a file, one line at a time, in either version.

    The names it knows are the real binaries' (:func:`setting_names`); the first error stops
    it, as it stops Dovecot. Dovecot 2.4's rule for a setting inside ``TYPE NAME { }`` (a
    passdb, a listener) is its own: ``X``, else ``TYPE_X``, else ``TYPE_NAME_X``.
    """

    def __init__(self, path: Path, dovecot: str) -> None:
        self.path = path
        self.dovecot = dovecot
        self.names = setting_names("dovecot", dovecot)
        self.first = True
        self.seen: set[str] = set()  # the top level's settings

    def refuse(self, number: int | None, what: str) -> None:
        where = f"Error in configuration file {self.path} line {number}: " if number else ""
        raise DovecotRefused(f"doveconf: Fatal: {where}{what}")

    def first_setting(self, number: int, name: str) -> None:
        if self.first and self.dovecot == "2.4" and name != "dovecot_config_version":
            self.refuse(number, "The first setting must be dovecot_config_version")
        self.first = False

    def types(self, sections: list[tuple[str, str]]) -> list[str]:
        """The section types that 2.3 names a setting with (filters' contents are the top level's)."""
        kinds = [kind for kind, _ in sections]
        while kinds and kinds[0] in FILTERS:
            kinds.pop(0)
        return kinds

    def setting(self, number: int, sections: list[tuple[str, str]], name: str) -> None:
        self.first_setting(number, name)
        if not sections:
            self.seen.add(name)
        if self.dovecot == "2.3":
            kinds = self.types(sections)
            if kinds and kinds[0] in FREE_FORM_23:
                return
            if "/".join([*kinds, name]) not in self.names:
                self.refuse(number, "Unknown setting: " + " { ".join([*kinds, name]))
            return
        if any(kind not in FILTERS and not name_ for kind, name_ in sections):
            return  # the keys of a list (``fields { uid = mail }``), any name
        if name in self.names:
            return
        inner = next(((kind, name_) for kind, name_ in reversed(sections) if kind not in FILTERS), None)
        if inner is None:
            self.refuse(number, f"{name}: Unknown setting: {name}")
        kind, section_name = inner  # type: ignore[misc]
        if f"{kind}_{name}" in self.names or f"{kind}_{section_name}_{name}" in self.names:
            return
        self.refuse(number, f"{name}: Unknown setting: {name} ({kind}_{name} or {kind}_{section_name}_{name} "
                            "not found either.)")

    def section(self, number: int, sections: list[tuple[str, str]], kind: str, name: str) -> None:
        self.first_setting(number, kind)
        if self.dovecot == "2.3":
            kinds = self.types(sections)
            if (not kinds and kind in FILTERS) or (kinds and kinds[0] in FREE_FORM_23) \
                    or (not kinds and kind in FREE_FORM_23) or "/".join([*kinds, kind]) + "/" in self.names:
                return
            self.refuse(number, "Unknown setting: " + " { ".join([*kinds, kind, kind]))
            return
        if any(k not in FILTERS and not n for k, n in sections):
            return
        if kind in FILTERS:
            return
        named = f"{kind}_name" in self.names
        if named and not name:
            self.refuse(number, f"{kind} {{ }} is missing section name")
        inner = next((k for k, n in reversed(sections) if k not in FILTERS), None)
        if named or kind in self.names or kind + "/" in self.names \
                or (inner and (f"{inner}_{kind}" in self.names or f"{inner}_{kind}/" in self.names)):
            return
        self.refuse(number, f"Unknown section name: {kind}")

    def finish(self) -> None:
        """What 2.4 checks once the whole file is read."""
        if self.dovecot == "2.4" and "dovecot_storage_version" not in self.seen:
            self.refuse(None, "dovecot_storage_version setting must be set")
