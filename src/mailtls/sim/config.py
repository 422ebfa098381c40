"""The lab's configuration files, read the way Postfix and Dovecot read them.

The simulated lab has no configuration of its own: every setting it obeys comes from the same
``labs/hosts/HOST/`` files the real servers run. This module reads ``main.cf`` (``name = value``,
indented continuation lines, ``$name`` expansion), the ``-o`` overrides of each ``master.cf``
service, lookup tables (texthash and inline) and the few Dovecot settings the course teaches,
in Dovecot 2.4's language (Debian 13) or 2.3's (Debian 12).

It never ignores a setting without a word. Every name each server version knows, with its
default, is package data (``names/``, made by ``tools/server_names.py`` from the real binaries):

- a name the real server does not know gets its reaction: ``doveconf`` refuses the file
  (:class:`DovecotRefused`, its words); ``postfix check`` warns of a Postfix parameter it does
  not know, and the real lab refuses any such warning (:mod:`mailtls.hostfiles`), so the
  simulated lab refuses it too, with the same lines (:class:`PostfixRefused`);
- a setting the simulation does not model (:mod:`mailtls.sim.modelled_settings`), set to
  anything but its default, stops the host with :class:`NotModelled`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from mailtls.errors import ConfigurationRefused, LabError
from mailtls.generations import DEFAULT, GENERATIONS, Generation, host_file
from mailtls.hosts import HOSTS
from mailtls.sim import modelled_settings
from mailtls.sim.modelled_settings import ACCEPTED, normalise

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
# The mail ports' names in /etc/services (Debian's netbase; 465 is "submissions", alias "smtps").
SERVICE_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465, "ssmtp": 465}


class NotModelled(LabError):
    """A setting the simulated lab does not model, set to something else than its default (or, for
    a setting it accepts at the lab's values only, to another value). The message is one line:
    ``the simulated lab does not model NAME (FILE: NAME = VALUE); the real lab does: `COMMAND```."""


class PostfixRefused(ConfigurationRefused):
    """Files the real lab refuses because ``postfix check`` warns of them (an unknown parameter, a
    parameter set twice, an undefined ``$name``); the message is the real lab's, with Postfix's
    warning lines (see :func:`mailtls.hostfiles.postfix_refusal`)."""


def real_lab_command(generation: Generation) -> str:
    """The command that starts the real lab of ``generation`` (README.md, ``lab up``)."""
    other = "" if generation == DEFAULT else f" --debian {generation.debian}"
    return "sudo python -m mailtls lab up" + other


def not_modelled(name: str, where: str, generation: Generation) -> NotModelled:
    """The NotModelled error for setting ``name``, found at ``where`` (``FILE: name = value``)."""
    return NotModelled(f"the simulated lab does not model {name} ({where}); the real lab does: "
                       f"`{real_lab_command(generation)}`")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """The logical lines of main.cf or of a lookup table's source, as Postfix reads them
    (postconf(5), postmap(1)): (number of its first line, its text), blank and comment lines
    skipped, and a line that starts with whitespace joined to the one before it with a space."""
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and lines:
            start, joined = lines[-1]
            lines[-1] = (start, f"{joined} {line.strip()}")
            continue
        lines.append((number, line.strip()))
    return lines


def main_cf_entries(text: str) -> list[tuple[int, str, str]]:
    """``main.cf``'s settings in order: (line number of the setting's first line, name, value),
    comments skipped and continuation lines joined, as Postfix reads them (postconf(5))."""
    return [(number, name.strip(), value.strip())
            for number, line in logical_lines(text) for name, _, value in [line.partition("=")]]


def missing_equals(text: str) -> tuple[int, str] | None:
    """The first logical line of ``main.cf`` without ``=`` (number, text), which every Postfix
    program refuses as it reads the file (measured with ``postfix check``, Postfix 3.7.11 and
    3.10.13: ``PROGRAM: fatal: FILE, line N: missing '=' after attribute name: "TEXT"``, PROGRAM
    being postconf on 3.7 and postfix on 3.10); None when there is none."""
    return next(((number, line) for number, line in logical_lines(text) if "=" not in line), None)


def read_main_cf(text: str) -> dict[str, str]:
    """``main.cf`` as Postfix reads it: comments, continuation lines, the last setting wins."""
    return {name: value for _, name, value in main_cf_entries(text)}


@dataclass
class MasterService:
    """One ``master.cf`` entry: its service name (``submission``, ``127.0.0.1:2525``), type and
    command, its ``-o name=value`` overrides, and ``fatal``: the line its command dies with as it
    starts because of an ``-o`` without ``=`` (then it answers no connection)."""

    name: str
    type: str
    command: str
    overrides: dict[str, str] = field(default_factory=dict)
    fatal: str | None = None


def master_fields(text: str) -> list[str]:
    """One logical ``master.cf`` line's fields: separated by whitespace, except inside ``{ }``
    (Postfix 3.0 and later, master(5)); a ``{ text }`` field is ``text``, braces and the whitespace
    inside them removed, as master_ent.c's ``extpar()`` gives it."""
    fields, current, depth = [], "", 0
    for char in text + " ":
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        if char.isspace() and depth == 0:
            if current:
                braced = current.startswith("{") and current.endswith("}")
                fields.append(current[1:-1].strip() if braced else current)
            current = ""
        else:
            current += char
    return fields


def read_master_cf(text: str) -> list[MasterService]:
    """The services of ``master.cf`` with their ``-o name=value`` overrides.

    An override is split at its first ``=``, with the whitespace around the name and the value
    removed (``-o { name = value }`` is ``name=value``). An ``-o`` whose argument has no ``=``
    (``-o name = value`` written without braces gives ``-o name``) is fatal to the command, in
    Postfix's words (measured with Postfix 3.7.11 and 3.10.13: ``fatal: invalid "-o
    smtpd_tls_security_level" option value: missing '=' after attribute name``).
    """
    entries: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1] += " " + line
        else:
            entries.append(line)
    services = []
    for fields in map(master_fields, entries):
        service = MasterService(fields[0], fields[1], fields[7])
        arguments = iter(fields[8:])
        for option in arguments:
            if option != "-o" or (value := next(arguments, None)) is None:
                continue
            name, equals, setting = value.partition("=")
            if not equals:
                service.fatal = service.fatal or (f'fatal: invalid "-o {value}" option value: '
                                                  "missing '=' after attribute name")
                continue
            service.overrides[name.strip()] = setting.strip()
        services.append(service)
    return services


REFERENCE = re.compile(r"\$(?:\{(\w+)\}|\((\w+)\)|(\w+))")  # $name, ${name}, $(name); not ${name?...}


def references(value: str) -> list[str]:
    """The parameters a value names as ``$name``, ``${name}`` or ``$(name)`` (postconf(5))."""
    return [next(group for group in match.groups() if group) for match in REFERENCE.finditer(value)]


def expand(value: str, settings: dict[str, str], depth: int = 0) -> str:
    """Postfix's expansion of a parameter's value, as postconf(5) describes it ("$name",
    "${name}", "${name?value}", "${name:value}", "${name?{value1}:{value2}}", and Postfix 3's
    "${{text1} OP {text2} ? {value1} : {value2}}" with OP one of ==, !=, <, <=, >, >= and their
    ``level`` forms that compare compatibility levels); "$$" is a "$". A name not in
    ``settings`` is empty, as an undefined parameter is to Postfix."""
    if depth > 20:
        return value
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char != "$" or i + 1 == len(value):
            out.append(char)
            i += 1
            continue
        following = value[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following in "{(":
            end = _closing(value, i + 1)
            out.append(_expand_braced(value[i + 2:end], settings, depth))
            i = end + 1
        else:
            match = re.match(r"\w+", value[i + 1:])
            if match is None:
                out.append(char)
                i += 1
                continue
            out.append(expand(settings.get(match[0], ""), settings, depth + 1))
            i += 1 + len(match[0])
    return "".join(out)


def _closing(text: str, opening: int) -> int:
    """The index of the bracket that closes the one at ``opening`` (``{`` or ``(``), nesting counted."""
    pair = {"{": "}", "(": ")"}[text[opening]]
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == text[opening]:
            depth += 1
        elif text[index] == pair:
            depth -= 1
            if depth == 0:
                return index
    return len(text) - 1


def _braced_values(text: str) -> list[str]:
    """``{a} == {b} ? {c} : {d}`` -> the parts between braces and the words between them, in order."""
    parts, i = [], 0
    while i < len(text):
        if text[i] == "{":
            end = _closing(text, i)
            parts.append(text[i + 1:end])
            i = end + 1
        elif text[i].isspace():
            i += 1
        else:
            match = re.match(r"[^\s{]+", text[i:])
            parts.append(match[0])  # type: ignore[index]
            i += len(match[0])  # type: ignore[index]
    return parts


def _level(text: str) -> tuple[int, ...]:
    """A compatibility level as numbers to compare (``3.10`` > ``3.6``; postconf(5),
    "compatibility_level")."""
    return tuple(int(part) for part in re.findall(r"\d+", text)) or (0,)


COMPARISONS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    # Numbers (Postfix refuses other text there; the lab's files never give any).
    "<": lambda a, b: _level(a) < _level(b), "<=": lambda a, b: _level(a) <= _level(b),
    ">": lambda a, b: _level(a) > _level(b), ">=": lambda a, b: _level(a) >= _level(b),
    "<level": lambda a, b: _level(a) < _level(b), "<=level": lambda a, b: _level(a) <= _level(b),
    ">level": lambda a, b: _level(a) > _level(b), ">=level": lambda a, b: _level(a) >= _level(b),
}


def _expand_braced(inner: str, settings: dict[str, str], depth: int) -> str:
    """What ``${inner}`` expands to (see :func:`expand`)."""
    if inner.startswith("{"):  # ${{text1} OP {text2} ? {value1} : {value2}}
        parts = _braced_values(inner)
        if len(parts) == 7 and parts[1] in COMPARISONS and parts[3] == "?" and parts[5] == ":":
            left, right = (expand(parts[k], settings, depth + 1).strip() for k in (0, 2))
            chosen = parts[4] if COMPARISONS[parts[1]](left, right) else parts[6]
            return expand(chosen, settings, depth + 1)
        return ""
    match = re.match(r"(\w+)\s*([?:]?)(.*)", inner, re.DOTALL)
    if match is None:
        return ""
    name, operator, rest = match[1], match[2], match[3].strip()
    current = expand(settings.get(name, ""), settings, depth + 1)
    if not operator:
        return current
    if rest.startswith("{"):
        parts = _braced_values(rest)
        when_set, when_empty = parts[0], (parts[2] if len(parts) == 3 and parts[1] == ":" else "")
    else:
        when_set = when_empty = rest
    if operator == "?":
        chosen = when_set if current else (when_empty if rest.startswith("{") else "")
        return expand(chosen, settings, depth + 1)
    return "" if current else expand(when_set, settings, depth + 1)


def words(value: str) -> list[str]:
    """A list-valued setting: separated by commas and/or spaces."""
    return [word for word in re.split(r"[\s,]+", value) if word]


def read_table(reference: str, host_dir: Path, lab_files: Path,
               generation: Generation = DEFAULT) -> dict[str, str]:
    """A lookup table (``texthash:FILE`` or ``inline:{ k=v, ... }``) as a dict. Raises NotModelled
    for another type (an indexed table such as ``hash:`` is read from the file ``postmap``
    builds, which the lab never has: see :data:`MISSING_DATABASE`).

    Paths under ``/etc/postfix/`` are the host's own files in ``labs/hosts/HOST/`` (or its
    ``debianNN/`` for ``generation``: :func:`mailtls.generations.host_file`); paths under
    ``/run/mailtls/`` are the lab's generated files.
    """
    kind, _, where = reference.partition(":")
    if kind == "inline":
        body = where.strip().removeprefix("{").removesuffix("}")
        pairs = [item.strip() for item in body.split(",") if item.strip()]
        return {k.strip().lower(): v.strip() for k, _, v in (pair.partition("=") for pair in pairs)}
    if kind == "texthash":
        path = Path(where)
        if where.startswith("/etc/postfix/"):
            path = host_file(host_dir, where.removeprefix("/etc/postfix/"), generation)
        elif where.startswith("/run/mailtls/"):
            path = lab_files / where.removeprefix("/run/mailtls/")
        table = {}
        for _, key, value in table_entries(path.read_text() if path.exists() else ""):
            table[key.lower()] = value
        return table
    raise NotModelled(f"the simulated lab does not read {kind}: tables ({reference}); the real lab "
                      f"does: `{real_lab_command(generation)}`")


TABLE_TYPES = ("inline", "texthash")  # the table types read_table reads
TABLE_SETTINGS = ("smtp_tls_policy_maps", "transport_maps", "virtual_mailbox_maps")  # the ones it reads
# An indexed table the simulation knows as the real lab has it: without the file postmap builds
# (FILE.db), since the lab copies only the table's source. Measured for smtp_tls_policy_maps =
# hash:/etc/postfix/tls_policy on both generations (see lab.client_policy).
MISSING_DATABASE = {"smtp_tls_policy_maps": ("hash",)}


def table_entries(text: str) -> list[tuple[int, str, str]]:
    """A lookup table's source as Postfix reads it (postmap(1), texthash: the same format): ``(line
    number, key, value)``, the key and the value separated by whitespace (spaces or tabs), comment
    and blank lines skipped, and a line that starts with whitespace continuing the one before."""
    return [(number, key, value[0].strip() if value else "")
            for number, line in logical_lines(text) for key, *value in [line.split(None, 1)]]


class PostfixConfig:
    """One host's Postfix: main.cf, and the settings each of its services runs with.

    ``host_dir`` is the host's folder in ``labs/hosts/``; its files are ``generation``'s
    (:func:`mailtls.generations.host_file`: ``debianNN/NAME`` where the generations differ).
    Raises PostfixRefused where the real lab refuses the files (``postfix check`` warns), then
    NotModelled for a setting the simulation does not model set to anything but its default
    (:meth:`check`).
    """

    def __init__(self, host_dir: Path, lab_files: Path, generation: Generation = DEFAULT) -> None:
        self.host_dir = host_dir
        self.lab_files = lab_files
        self.generation = generation
        self.main_cf = host_file(host_dir, "main.cf", generation)
        self.master_cf = host_file(host_dir, "master.cf", generation)
        self.entries = main_cf_entries(self.main_cf.read_text())
        self.main = {name: value for _, name, value in self.entries}
        self.services = read_master_cf(self.master_cf.read_text())
        self.host = host_name(host_dir)
        self.check()

    def get(self, name: str, overrides: dict[str, str] | None = None) -> str:
        """The value of parameter ``name`` for a service with ``overrides``, ``$name`` expanded; a
        parameter not set has its default (``postconf -d`` of this generation). The defaults that
        are the machine's are those of the lab's containers, whose host names are the hosts'
        (labs/compose.yaml): ``myhostname`` is the host's name, ``mydomain`` its domain."""
        defaults = built_in_defaults("postfix", self.generation.postfix)
        settings = {**{n: v for n, v in defaults.items() if v is not None},
                    "myhostname": self.host, "mydomain": self.host.partition(".")[2],
                    **POSTFIX_DEFAULTS, **self.main, **(overrides or {})}
        return expand(settings.get(name, ""), settings)

    def check(self) -> None:
        """Refuse what the real lab refuses, then what the simulation does not model.

        The real lab refuses a host whose ``postfix -c DIR check`` prints a warning
        (:func:`mailtls.hostfiles.postfix_refusal`); Postfix 3.7.11 and 3.10.13 print, in the
        same words: ``FILE, line N: overriding earlier entry: NAME=VALUE`` (a parameter set
        again in main.cf to another value: the line of the second, the value of the first),
        ``FILE: unused parameter: NAME=VALUE`` (a name neither Postfix nor any ``$NAME`` knows,
        in main.cf or as a master.cf ``-o``) and ``FILE: undefined parameter: NAME`` (a ``$NAME``
        of no parameter). Raises PostfixRefused with the real lab's message and those lines (each
        once; the real one repeats them, once per postconf run), naming the files under labs/;
        before them, a main.cf line without ``=``, which postconf refuses alone
        (:func:`missing_equals`). Then raises NotModelled for a setting the simulation does not
        model, and for a table type it does not read in a table setting it reads when mail comes.
        """
        refused = f"Postfix refuses the configuration of {self.host} ({self.host_dir}):\n"
        if (missing := missing_equals(self.main_cf.read_text())) is not None:
            # Postfix 3.10's postfix(1) reads main.cf before postfix-script's postconf does
            program = "postfix" if self.generation.postfix == "3.10" else "/usr/sbin/postconf"
            raise PostfixRefused(f"{refused}{program}: fatal: {shown(self.main_cf)}, line {missing[0]}: "
                                 f"missing '=' after attribute name: \"{missing[1]}\"")
        warnings = postfix_warnings(self.main_cf, self.entries, self.master_cf, self.services,
                                    setting_names("postfix", self.generation.postfix))
        if warnings:
            raise PostfixRefused(refused + "\n".join(warnings))
        for setting in TABLE_SETTINGS:  # read when mail comes: their table types are checked now
            for overrides in [{}, *(service.overrides for service in self.services)]:
                for reference in split_tables(self.get(setting, overrides)):
                    kind = reference.partition(":")[0]
                    if kind not in (*TABLE_TYPES, "static", *MISSING_DATABASE.get(setting, ())):
                        read_table(reference, self.host_dir, self.lab_files, self.generation)
        defaults = built_in_defaults("postfix", self.generation.postfix)
        main_cf = shown(self.main_cf)
        checks = [(name, value, f"{main_cf}: {name} = {normalise_spaces(value)}")
                  for name, value in self.main.items()]
        checks += [(name, value, f"{shown(self.master_cf)}, service {service.name}: -o {name}={value}")
                   for service in self.services for name, value in service.overrides.items()]
        services = {service.name for service in self.services} | {"default"}
        for name, value, where in checks:
            transport, _, suffix = name.partition("_")
            while suffix and transport not in services:
                more, _, suffix = suffix.partition("_")
                transport += "_" + more
            entry = modelled_settings.find("postfix", name) or (
                modelled_settings.find("postfix", "TRANSPORT_" + suffix) if suffix else None)
            if entry is not None:
                if not entry.allows(value, self.host):
                    raise not_modelled(name, where, self.generation)
            elif name in defaults:
                if defaults[name] is None or normalise_spaces(value) != normalise_spaces(defaults[name]):
                    raise not_modelled(name, where, self.generation)
            # else: a parameter of the file's own, which counts where a parameter names it ($name)

    def bad_boolean(self, prefix: str, overrides: dict[str, str] | None = None) -> str | None:
        """The line a daemon dies with when a boolean parameter of its own (``prefix``: ``smtpd_``,
        ``smtp_``) set in main.cf or in ``overrides`` is neither ``yes`` nor ``no`` in any case;
        None when none is. A boolean is a parameter whose default is ``yes`` or ``no``. Postfix's
        mail_conf_bool.c: ``fatal: bad boolean configuration: NAME = VALUE`` (measured with
        ``-o smtpd_tls_wrappermode=true`` on Postfix 3.7.11 and 3.10.13)."""
        defaults = built_in_defaults("postfix", self.generation.postfix)
        for name in dict.fromkeys([*self.main, *(overrides or {})]):
            if name.startswith(prefix) and defaults.get(name) in ("yes", "no"):
                value = self.get(name, overrides)
                if value.strip().lower() not in ("yes", "no"):
                    return f"fatal: bad boolean configuration: {name} = {value}"
        return None

    def listeners(self) -> dict[int, MasterService]:
        """The smtpd services that other hosts reach, by port.

        A service name is ``[HOST:]PORT`` (master(5)); PORT is a number or a name of
        /etc/services. A service bound to the loopback address (``127.0.0.1:``, ``localhost:``,
        ``[::1]:``) listens only inside its host, where the lab has no client, so it is left out.
        Raises NotModelled for a port name the simulation does not know and for another address.
        """
        ports = {}
        for service in self.services:
            if service.type != "inet" or service.command != "smtpd":
                continue
            address, _, port_name = service.name.rpartition(":")
            where = f"{shown(self.master_cf)}: service {service.name}"
            port = SERVICE_PORTS.get(port_name) or (int(port_name) if port_name.isdigit() else None)
            if port is None:
                raise not_modelled(f"the service name {port_name}", where, self.generation)
            if address in ("127.0.0.1", "localhost", "[::1]"):
                continue
            if address not in ("", "*"):
                raise not_modelled(f"a service bound to {address}", where, self.generation)
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


def normalise_spaces(value: str) -> str:
    """A value with its runs of spaces made one, as Postfix joins continuation lines."""
    return " ".join(value.split())


def shown(path: Path) -> str:
    """A lab file's path as the messages name it: from the folder that holds ``labs/`` down."""
    parts = path.parts
    at = len(parts) - 1 - parts[::-1].index("hosts") if "hosts" in parts else 0
    return str(Path(*parts[max(at - 1, 0):]))


def host_name(folder: Path) -> str:
    """The lab host whose files are in ``folder`` (or one of its ``debianNN/``): ``mail.lab.test``."""
    for part in reversed(folder.parts):
        for host in HOSTS:
            if host.short == part:
                return host.name
    return folder.name


def transport_suffixes(known: frozenset[str]) -> frozenset[str]:
    """The endings of the parameters each delivery service of master.cf has (postconf(5),
    ``transport_destination_concurrency_limit``...): those of the service ``retry``, which has no
    parameters of its own."""
    return frozenset(name.removeprefix("retry_") for name in known if name.startswith("retry_"))


def postfix_warnings(main_cf: Path, entries: list[tuple[int, str, str]], master_cf: Path,
                     services: list[MasterService], known: frozenset[str]) -> list[str]:
    """The warnings ``postfix -c DIR check`` prints for these files (see :meth:`PostfixConfig.check`),
    each once, with the files' paths as :func:`shown` gives them."""
    program = "/usr/sbin/postconf: warning: "
    main_path, master_path = shown(main_cf), shown(master_cf)
    main = {name: value for _, name, value in entries}
    suffixes = transport_suffixes(known)
    names = {service.name for service in services}
    used = {ref for value in main.values() for ref in references(value)}
    used |= {ref for service in services for value in service.overrides.values() for ref in references(value)}
    used |= set(words(main.get("smtpd_restriction_classes", "")))

    def unknown(name: str) -> bool:
        transport, _, suffix = name.partition("_")
        while suffix:
            if transport in names and suffix in suffixes:
                return False
            more, _, suffix = suffix.partition("_")
            transport += "_" + more
        return name not in known and name not in used

    warnings, earlier = [], {}
    for number, name, value in entries:
        if name in earlier and earlier[name] != value:  # the same value again: no warning
            warnings.append(f"{program}{main_path}, line {number}: overriding earlier entry: "
                            f"{name}={earlier[name]}")
        earlier[name] = value
    defined = known | set(main)
    warnings += [f"{program}{main_path}: undefined parameter: {ref}"
                 for ref in dict.fromkeys(ref for value in main.values() for ref in references(value))
                 if ref not in defined]
    warnings += [f"{program}{main_path}: unused parameter: {name}={value}"
                 for name, value in main.items() if unknown(name)]
    for service in services:
        warnings += [f"{program}{master_path}: undefined parameter: {ref}"
                     for value in service.overrides.values() for ref in references(value)
                     if ref not in defined and ref not in service.overrides]
    warnings += [f"{program}{master_path}: unused parameter: {name}={value}"
                 for service in services for name, value in service.overrides.items() if unknown(name)]
    return list(dict.fromkeys(warnings))


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


class DovecotRefused(ConfigurationRefused):
    """Dovecot does not start with this ``dovecot.conf``; the message is doveconf's own line
    (``doveconf: Fatal: Error in configuration file FILE line N: ...``)."""


@cache
def setting_names(server: str, version: str) -> frozenset[str]:
    """The names of every setting of ``server`` (``postfix``, ``dovecot``) ``version`` (``3.10``,
    ``2.4``), as ``tools/server_names.py`` took them from the real binaries (see its docstring
    for the shapes: Dovecot 2.3's are paths of section types, ``service/inet_listener/port``).
    Raises FileNotFoundError for a version the package has no list of."""
    return frozenset(built_in_defaults(server, version))


@cache
def built_in_defaults(server: str, version: str) -> dict[str, str | None]:
    """Every setting name of ``server`` ``version`` (as :func:`setting_names`) with its default as
    the real binary prints it (``postconf -d``, ``doveconf -d``), or None where the list has no
    default: a setting inside sections, a section type, a default that is the machine's
    (``myhostname``). Raises FileNotFoundError for a version the package has no list of."""
    text = (resources.files("mailtls.sim") / "names" / f"{server}-{version}.txt").read_text()
    defaults: dict[str, str | None] = {}
    for line in text.splitlines():
        name, equals, default = line.partition(" =")
        defaults[name] = default.strip() if equals else None
    return defaults


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


def unquoted(value: str) -> str:
    """A Dovecot value without the double or single quotes around it, as Dovecot reads it
    (measured: ``ssl_min_protocol = "TLSv1.3"`` is TLSv1.3 to doveconf 2.3.19.1 and 2.4.1)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


# The values of Dovecot's ``ssl`` (doveconf -d and the settings' documentation of 2.3 and 2.4).
SSL_VALUES = ("no", "yes", "required")


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
            value = unquoted(value)
            check.setting(number, sections, name)
            named = f"{name}: " if generation.dovecot == "2.4" else ""  # 2.4 names the setting
            if sections and sections[-1][0] == "inet_listener":
                if name == "port":
                    if not value.isdigit():
                        check.refuse(number, f"{named}Invalid port number {value}")
                    listener_port = int(value)
                elif name == "ssl":
                    listener_ssl = check.boolean(number, named, value)
            elif not sections:
                if name == "ssl":
                    if value not in SSL_VALUES:  # measured: "ssl = maybe" on 2.3.19.1 and 2.4.1
                        check.refuse(number, f"{named}Invalid value: {value}")
                    config.ssl = value
                elif name == "disable_plaintext_auth":
                    config.cleartext_allowed = not check.boolean(number, named, value)
                elif name == "auth_allow_cleartext":
                    config.cleartext_allowed = check.boolean(number, named, value)
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
        if generation.dovecot == "2.4" and config.ssl == "required" and config.cleartext_allowed:
            # Dovecot 2.4.1 refuses the pair once the file is read (no line number), in two lines.
            why = "auth_allow_cleartext=yes has no effect with ssl=required"
            raise DovecotRefused(f"doveconf: Error: {why}\ndoveconf: Fatal: Error in configuration file "
                                 f"{path}: {why}")
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

    def boolean(self, number: int, named: str, value: str) -> bool:
        """A boolean setting as Dovecot reads it: ``yes``, ``y`` or ``1`` is yes and ``no`` is no, in
        any case; anything else stops it (measured with doveconf 2.3.19.1 and 2.4.1: ``Invalid boolean
        value: true (use yes or no)``, after ``NAME: `` in 2.4). ``named`` is that prefix or empty."""
        if value.lower() in ("yes", "y", "1"):
            return True
        if value.lower() != "no":
            self.refuse(number, f"{named}Invalid boolean value: {value} (use yes or no)")
        return False

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
        """What 2.4 checks once the whole file is read; then what the simulation does not model
        (:meth:`check_modelled`)."""
        if self.dovecot == "2.4" and "dovecot_storage_version" not in self.seen:
            self.refuse(None, "dovecot_storage_version setting must be set")
        self.check_modelled()

    def check_modelled(self) -> None:
        """Raise NotModelled for the first setting the simulation does not model.

        At the top level, a setting is checked as Postfix's are: modelled, accepted, fixed at the
        lab's values (:mod:`mailtls.sim.modelled_settings`), else it must have ``doveconf -d``'s
        default. Inside a filter (``protocol imap { }``, ``local``, ``remote``) only an accepted
        setting passes: the simulation applies no filter. Inside other sections a setting is
        known by its path (``service lmtp/inet_listener lmtp/port``) and must be in the data,
        whatever its value (a default there depends on the section); so must a section itself
        (a new ``service pop3-login { }``, 2.4's ``passdb pam { }``).
        """
        generation = next(g for g in GENERATIONS if g.dovecot == self.dovecot)
        host = host_name(self.path.parent)
        defaults = built_in_defaults("dovecot", self.dovecot)
        sections: list[tuple[str, str]] = []
        for number, raw in enumerate(self.path.read_text().splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            where = f"{shown(self.path)} line {number}: {line}"
            if not line or line.startswith("!"):
                continue
            if line.endswith("{"):
                kind, _, name = line[:-1].strip().partition(" ")
                sections.append((kind, name.strip()))
                path = "/".join(f"{k} {n}".strip() for k, n in sections)
                if not any(k in FILTERS for k, _ in sections) \
                        and not modelled_settings.opens_known_section(path):
                    raise not_modelled(f"{path} {{ }}", where, generation)
                continue
            if line == "}":
                if sections:
                    sections.pop()
                continue
            name, _, value = (part.strip() for part in line.partition("="))
            value = unquoted(value)
            path = "/".join([*(f"{k} {n}".strip() for k, n in sections), name])
            entry = modelled_settings.find("dovecot", path)
            if any(k in FILTERS for k, _ in sections):
                if entry is None or entry.how != ACCEPTED:
                    inside = " ".join(f"{k} {n}".strip() for k, n in sections)
                    raise not_modelled(f"{name} inside {inside} {{ }}", where, generation)
            elif entry is not None:
                if not entry.allows(value, host):
                    raise not_modelled(path, where, generation)
            elif sections or defaults.get(name) is None \
                    or normalise(value) != normalise(defaults[name] or ""):
                raise not_modelled(path, where, generation)
