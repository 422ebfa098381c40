"""A simulated Postfix smtpd: one SMTP session, line in, reply out, no I/O of its own.

It obeys the host's ``main.cf`` and the service's ``master.cf`` overrides (security level,
wrapper mode, SASL, ``smtpd_tls_auth_only``, client and relay restrictions, the recipient
tables) and answers with the reply codes and texts of Postfix 3.10 (Debian 13) or 3.7 (Debian
12); ``tests/test_sim.py`` compares them with the real server's. Whoever drives the session
does the I/O and the TLS handshake: a reply with ``start_tls`` means "start TLS now, and
discard whatever the client had already sent" (as Postfix has done since CVE-2011-0411).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mailtls.sim.config import NotModelled, PostfixConfig, real_lab_command, words
from mailtls.sim.openssl_errors import postfix_missing_file
from mailtls.sim.session import Reply

LINE_LIMIT = 2048  # Postfix's line_length_limit
PRE_TLS_COMMANDS = {"EHLO", "HELO", "STARTTLS", "NOOP", "QUIT", "XCLIENT", "XFORWARD"}
NOT_RECOGNIZED = b"500 5.5.2 Error: command not recognized\r\n"


@dataclass
class Envelope:
    sender: str = ""
    recipients: list[str] = field(default_factory=list)
    content: bytes = b""


@dataclass
class SmtpServerSettings:
    """What one smtpd service runs with, read from main.cf and its master.cf entry."""

    host: str
    banner: str
    level: str  # none, may, encrypt: the level smtpd runs at (see server_tls)
    wrapper: bool
    sasl: bool
    auth_only: bool
    client_restrictions: list[str]
    relay_restrictions: list[str]
    mynetworks: list[str]
    received_header: bool
    syslog_name: str
    postfix: str = "3.10"  # the version whose texts it answers with (its generation's)
    tls: ServerTls | None = None  # what smtpd's TLS starts with (None: level none)

    @classmethod
    def read(cls, config: PostfixConfig, port: int) -> SmtpServerSettings:
        """The settings of the service on ``port``.

        Raises :class:`NotModelled` for a certificate file or protocol list
        the simulation cannot follow (see :func:`server_tls`).
        """
        service = config.listeners()[port]
        overrides = service.overrides
        get = lambda name: config.get(name, overrides)  # noqa: E731
        # smtpd reads its -o options first, then its parameters (single_server.c, mail_params.c)
        fatal = service.fatal or config.bad_boolean("smtpd_", overrides)
        tls = ServerTls(fatal=fatal) if fatal else server_tls(config, overrides)
        return cls(
            host=get("myhostname"),
            banner=get("smtpd_banner"),
            level=tls.level,
            wrapper=tls.wrapper,
            sasl=boolean(get("smtpd_sasl_auth_enable")),
            auth_only=tls.auth_only,
            client_restrictions=words(get("smtpd_client_restrictions")),
            relay_restrictions=words(get("smtpd_relay_restrictions")),
            mynetworks=words(get("mynetworks")),
            received_header=boolean(get("smtpd_tls_received_header")),
            # an -o option smtpd cannot read kills it before its -o syslog_name counts (measured)
            syslog_name=config.get("syslog_name") if service.fatal else get("syslog_name"),
            postfix=config.generation.postfix,
            tls=tls,
        )


class Recipients:
    """Where a recipient's mail goes, as trivial-rewrite and the recipient tables decide."""

    def __init__(self, config: PostfixConfig) -> None:
        self.config = config
        self.mydestination = {d.lower() for d in words(config.get("mydestination"))}
        self.virtual_domains = {d.lower() for d in words(config.get("virtual_mailbox_domains"))}
        self.relay_domains = {d.lower() for d in words(config.get("relay_domains"))}
        self.delimiter = config.get("recipient_delimiter")
        maps = config.get("virtual_mailbox_maps")
        self.static_mailbox = maps.startswith("static:")
        self.mailboxes = {} if self.static_mailbox or not maps else config.table("virtual_mailbox_maps")

    def is_relay_domain(self, domain: str) -> bool:
        return any(domain == d or domain.endswith("." + d) for d in self.relay_domains)

    def is_local(self, domain: str) -> bool:
        return domain in self.mydestination or domain in self.virtual_domains

    def unknown_user(self, address: str) -> bool:
        """True when a virtual mailbox domain has no mailbox for this address."""
        local, _, domain = address.lower().rpartition("@")
        if domain not in self.virtual_domains or self.static_mailbox:
            return False
        if address.lower() in self.mailboxes:
            return False
        if self.delimiter and self.delimiter in local:
            return f"{local.split(self.delimiter, 1)[0]}@{domain}" not in self.mailboxes
        return True

    def error_transport(self, address: str) -> str | None:
        """The error text when the address resolves to an ``error:`` transport, else None."""
        domain = address.lower().rpartition("@")[2]
        if self.is_local(domain):
            return None
        name = "relay_transport" if self.is_relay_domain(domain) else "default_transport"
        transport = self.config.get(name)
        return transport.removeprefix("error:") if transport.startswith("error:") else None


class SmtpSession:
    """One client's conversation with smtpd."""

    def __init__(self, settings: SmtpServerSettings, recipients: Recipients, client_address: str,
                 authenticate: Callable[[str, str], bool], deliver: Callable[[Envelope, SmtpSession], str],
                 tls_active: bool = False) -> None:
        self.settings = settings
        self.recipients = recipients
        self.client_address = client_address
        self.authenticate = authenticate
        self.deliver = deliver
        self.tls_active = tls_active or settings.wrapper
        self.tls_details = ""  # "TLSv1.3 with cipher ..." once TLS is up, for the Received header
        self.helo: str | None = None
        self.user: str | None = None
        self.envelope: Envelope | None = None
        self.data: list[bytes] | None = None  # lines of a message being received
        self.sasl_state: tuple[str, list[str]] | None = None  # mechanism, answers so far
        self.queue_ids: list[str] = []

    # -- What the server says ---------------------------------------------------------------

    def greeting(self) -> bytes:
        return f"220 {self.settings.banner}\r\n".encode()

    def ehlo_lines(self) -> list[str]:
        lines = [self.settings.host, "PIPELINING", "SIZE 10240000", "VRFY", "ETRN"]
        if self.settings.level in ("may", "encrypt") and not self.tls_active:
            lines.append("STARTTLS")
        if self.auth_offered():
            lines.append("AUTH PLAIN LOGIN")
        lines += ["ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"]
        return lines

    def auth_offered(self) -> bool:
        return self.settings.sasl and (self.tls_active or not self.settings.auth_only)

    # -- What the client says ---------------------------------------------------------------

    def receive(self, line: bytes) -> Reply | None:
        """One line from the client (with or without its line ending); None while DATA goes on."""
        if self.data is not None:
            return self.receive_data(line)
        if self.sasl_state is not None:
            return self.continue_sasl(line.rstrip(b"\r\n").decode("latin-1"))
        text = line.rstrip(b"\r\n")[:LINE_LIMIT].decode("latin-1")
        verb, _, argument = text.strip().partition(" ")
        verb = verb.upper()
        if not verb:
            return self.reply("500 5.5.2 Error: bad syntax")
        if self.settings.level == "encrypt" and not self.tls_active and verb not in PRE_TLS_COMMANDS:
            return self.reply("530 5.7.0 Must issue a STARTTLS command first")
        handler = getattr(self, f"do_{verb.lower()}", None) if verb.isalpha() else None
        if handler is None:
            return Reply(NOT_RECOGNIZED)
        return handler(argument.strip())

    def reply(self, text: str, **flags: bool) -> Reply:
        return Reply((text + "\r\n").encode(), **flags)

    def do_helo(self, argument: str) -> Reply:
        if not argument:
            return self.reply("501 Syntax: HELO hostname")
        self.helo, self.envelope = argument, None
        return self.reply(f"250 {self.settings.host}")

    def do_ehlo(self, argument: str) -> Reply:
        if not argument:
            return self.reply("501 Syntax: EHLO hostname")
        self.helo, self.envelope = argument, None
        lines = self.ehlo_lines()
        return Reply("".join(f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n"
                             for i, line in enumerate(lines)).encode())

    def do_starttls(self, argument: str) -> Reply:
        if self.settings.level not in ("may", "encrypt"):
            return self.reply("502 5.5.1 Error: command not implemented")
        if self.tls_active:
            return self.reply("554 5.5.1 Error: TLS already active")
        if argument:
            return self.reply("501 5.5.4 Syntax: STARTTLS")
        if self.settings.tls is not None and not self.settings.tls.engine:
            # smtpd.c: "After a show-stopper error, reply with 454 to STARTTLS" (RFC 3207 section 4).
            return self.reply("454 4.7.0 TLS not available due to local problem")
        self.tls_active = True
        self.helo = self.user = self.envelope = None  # RFC 3207: forget what was said in clear
        return self.reply("220 2.0.0 Ready to start TLS", start_tls=True)

    def do_auth(self, argument: str) -> Reply:
        if not self.auth_offered():
            return self.reply("503 5.5.1 Error: authentication not enabled")
        if self.helo is None:
            return self.reply("503 5.5.1 Error: send HELO/EHLO first")
        if self.user is not None:
            return self.reply("503 5.5.1 Error: already authenticated")
        if self.envelope is not None:
            return self.reply("503 5.5.1 Error: MAIL transaction in progress")
        asked, _, initial = argument.partition(" ")
        mechanism = asked.upper()
        if not mechanism:
            return self.reply("501 5.5.4 Syntax: AUTH mechanism")
        if mechanism not in ("PLAIN", "LOGIN"):
            # Postfix 3.10 names the mechanism (measured: "AUTH FOO" on 3.10.13 and 3.7.11).
            named = f": '{asked}'" if self.settings.postfix != "3.7" else ""
            return self.reply("535 5.7.8 Error: authentication failed: Invalid authentication mechanism"
                              + named)
        self.sasl_state = (mechanism, [])
        if initial:
            if initial == "=":
                initial = ""
            return self.continue_sasl(initial, initial_response=True)
        return self.reply("334 " + ("" if mechanism == "PLAIN" else "VXNlcm5hbWU6"))

    def continue_sasl(self, answer: str, initial_response: bool = False) -> Reply:
        mechanism, answers = self.sasl_state  # type: ignore[misc]
        if answer == "*":
            self.sasl_state = None
            return self.reply("501 5.7.0 Authentication aborted")
        try:
            decoded = base64.b64decode(answer, validate=True).decode("utf-8")
        except ValueError:  # bad base64, non-ASCII, or not UTF-8 (all ValueErrors)
            self.sasl_state = None
            where = "initial response" if initial_response else "continued response"
            return self.reply(f"535 5.7.8 Error: authentication failed: Invalid base64 data in {where}")
        answers.append(decoded)
        if mechanism == "LOGIN" and len(answers) == 1:
            return self.reply("334 UGFzc3dvcmQ6")
        self.sasl_state = None
        if mechanism == "PLAIN":
            parts = answers[0].split("\0")
            login, password = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        else:
            login, password = answers
        if login and self.authenticate(login, password):
            self.user = login
            return self.reply("235 2.7.0 Authentication successful")
        return self.reply("535 5.7.8 Error: authentication failed: (reason unavailable)")

    def do_mail(self, argument: str) -> Reply:
        if self.helo is None:
            return self.reply("503 5.5.1 Error: send HELO/EHLO first")
        if self.envelope is not None:
            return self.reply("503 5.5.1 Error: nested MAIL command")
        if not argument.upper().startswith("FROM:"):
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        if not well_formed(argument[5:]):
            return self.reply("501 5.1.7 Bad sender address syntax")
        self.envelope = Envelope(sender=address_of(argument[5:]))
        return self.reply("250 2.1.0 Ok")

    def do_rcpt(self, argument: str) -> Reply:
        if self.envelope is None:
            return self.reply("503 5.5.1 Error: need MAIL command")
        if not argument.upper().startswith("TO:") or not address_of(argument[3:]):
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
        if not well_formed(argument[3:]):
            return self.reply("501 5.1.3 Bad recipient address syntax")
        recipient = address_of(argument[3:])
        refused = self.restrictions(recipient)
        if refused:
            return self.reply(refused)
        if self.recipients.unknown_user(recipient):
            return self.reply(f"550 5.1.1 <{recipient}>: Recipient address rejected: "
                              "User unknown in virtual mailbox table")
        error = self.recipients.error_transport(recipient)
        if error is not None:
            code, _, text = error.partition(" ")
            return self.reply(f"550 {code} <{recipient}>: Recipient address rejected: {text}")
        self.envelope.recipients.append(recipient)
        return self.reply("250 2.1.5 Ok")

    def restrictions(self, recipient: str) -> str | None:
        """smtpd_client_restrictions, then smtpd_relay_restrictions (evaluated at RCPT)."""
        client = f"<unknown[{self.client_address}]>: Client host rejected: Access denied"
        for rule in self.settings.client_restrictions:
            if rule == "permit_sasl_authenticated" and self.user:
                break
            if rule == "permit_mynetworks" and self.in_mynetworks():
                break
            if rule == "reject":
                return f"554 5.7.1 {client}"
        domain = recipient.lower().rpartition("@")[2]
        for rule in self.settings.relay_restrictions:
            if rule == "permit_mynetworks" and self.in_mynetworks():
                return None
            if rule == "permit_sasl_authenticated" and self.user:
                return None
            if rule in ("reject_unauth_destination", "defer_unauth_destination"):
                if self.recipients.is_local(domain) or self.recipients.is_relay_domain(domain):
                    continue
                code = "554 5.7.1" if rule.startswith("reject") else "454 4.7.1"
                return f"{code} <{recipient}>: Relay access denied"
            if rule == "reject":
                return f"554 5.7.1 <{recipient}>: Relay access denied"
        return None

    def in_mynetworks(self) -> bool:
        address = ipaddress.ip_address(self.client_address)
        return any(address in ipaddress.ip_network(net, strict=False) for net in self.settings.mynetworks)

    def do_data(self, argument: str) -> Reply:
        if self.envelope is None:
            return self.reply("503 5.5.1 Error: need RCPT command")
        if not self.envelope.recipients:
            return self.reply("554 5.5.1 Error: no valid recipients")
        self.data = []
        return self.reply("354 End data with <CR><LF>.<CR><LF>")

    def receive_data(self, line: bytes) -> Reply | None:
        if line.rstrip(b"\r\n") != b".":
            self.data.append(line[1:] if line.startswith(b"..") else line)  # type: ignore[union-attr]
            return None
        envelope = self.envelope
        envelope.content = b"".join(self.data)  # type: ignore[union-attr,arg-type]
        self.data, self.envelope = None, None
        queue_id = self.deliver(envelope, self)  # type: ignore[arg-type]
        self.queue_ids.append(queue_id)
        return self.reply(f"250 2.0.0 Ok: queued as {queue_id}")

    def do_rset(self, argument: str) -> Reply:
        self.envelope = None
        return self.reply("250 2.0.0 Ok")

    def do_noop(self, argument: str) -> Reply:
        return self.reply("250 2.0.0 Ok")

    def do_vrfy(self, argument: str) -> Reply:
        if not argument:
            return self.reply("501 5.5.4 Syntax: VRFY address")
        return self.reply(f"252 2.0.0 {argument}")

    def do_quit(self, argument: str) -> Reply:
        return self.reply("221 2.0.0 Bye", close=True)

    @property
    def protocol(self) -> str:
        """ESMTP, plus S for TLS and A for authentication: what the Received header says."""
        return "ESMTP" + ("S" if self.tls_active else "") + ("A" if self.user else "")


def address_of(text: str) -> str:
    """The address in ``<a@b>`` (or bare), without ESMTP parameters."""
    text = text.strip()
    if text.startswith("<"):
        return text[1:].partition(">")[0]
    return text.split(" ")[0]


def well_formed(text: str) -> bool:
    """False for an address opened with < and never closed (a line cut at line_length_limit)."""
    text = text.strip()
    return not text.startswith("<") or ">" in text


def new_queue_id() -> str:
    return secrets.token_hex(6).upper()[:11]


# -- smtpd's TLS settings, as smtpd.c and src/tls/ read them ----------------------------------------

# The TLS versions the simulated engines speak, in order (Dovecot's ssl_min_protocol words).
VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# Postfix's protocol names (src/tls/tls_misc.c, protocol_table; matched without regard to case).
PROTOCOL_NAMES = ("SSLv2", "SSLv3", *VERSIONS)
# tls_level_table in src/tls/tls_level.c (halfdane is for output only: tls_level_lookup refuses it).
TLS_LEVELS = ("none", "may", "encrypt", "fingerprint", "dane", "dane-only", "verify", "secure")
LAB_FILES = "/run/mailtls/"
# A system file every real lab host has and that never holds the lab's CA (Debian's ca-certificates).
SYSTEM_CA_FILE, SYSTEM_CA_PATH = "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs"


def boolean(value: str) -> bool:
    """A Postfix boolean (``yes``/``no``, any case)."""
    return value.strip().lower() == "yes"


def tls_level(value: str) -> str | None:
    """``tls_level_lookup``: the level a word names (any case), or None for an invalid word."""
    word = value.strip().lower()
    return word if word in TLS_LEVELS else None


def protocol_range(value: str, parameter: str) -> tuple[str, str] | None:
    """The TLS versions a Postfix protocol list allows, as (lowest, highest) of :data:`VERSIONS`.

    Both syntaxes of postconf(5) ``smtpd_tls_protocols`` are read as ``tls_proto_mask_lims``
    (src/tls/tls_misc.c) reads them: ``>=TLSv1.2``/``<=TLSv1.3`` bounds and names, ``!`` to exclude
    one; with any name included, only the included ones. Returns None for a word Postfix does not
    know (it then logs ``Invalid TLS protocol list`` and disables TLS). Raises NotModelled for what
    the simulated engines cannot do: a hexadecimal version, a set with a hole in it, or no version
    at all.
    """
    include: set[str] = set()
    exclude: set[str] = set()
    floor, ceiling = 0, len(VERSIONS) - 1
    for token in (t for t in re.split(r"[\s,:]+", value) if t):
        if token[:2] in (">=", "<="):
            names = {n.lower(): i for i, n in enumerate(VERSIONS)} | {"sslv3": -1}
            found = names.get(token[2:].lower())
            if found is None:
                if re.fullmatch(r"(0x)?[0-9a-fA-F]+", token[2:]):
                    raise NotModelled(f"the simulated lab does not model {parameter} = {value} (a version "
                                      "given as a number); the real lab does: write TLSv1.2 instead")
                return None
            if token[:2] == ">=":
                floor = max(found, 0)
            else:
                ceiling = found
            continue
        name = next((n for n in PROTOCOL_NAMES if n.lower() == token.lstrip("!").lower()), None)
        if name is None:
            return None
        (exclude if token.startswith("!") else include).add(name)
    allowed = [i for i, v in enumerate(VERSIONS)
               if floor <= i <= ceiling and v not in exclude and (not include or v in include)]
    if not allowed or allowed != list(range(allowed[0], allowed[-1] + 1)):
        raise NotModelled(f"the simulated lab does not model {parameter} = {value} (it leaves "
                          f"{'no TLS version' if not allowed else 'a gap between TLS versions'}); "
                          "the real lab does: OpenSSL then refuses every handshake or skips a version")
    return VERSIONS[allowed[0]], VERSIONS[allowed[-1]]


@dataclass
class ServerTls:
    """What one smtpd service's TLS starts with (smtpd.c ``pre_jail_init`` and ``tls_server_init``).

    ``level``: none, may or encrypt, after wrapper mode and the legacy ``smtpd_use_tls`` /
    ``smtpd_enforce_tls`` (postconf(5): they count only when ``smtpd_tls_security_level`` is
    empty); ``engine``: False when the TLS engine did not start (STARTTLS then gets 454, and a
    wrapper-mode connection is dropped); ``certificate``: the (certificate, key) files the engine
    serves, or None when it has none (every handshake then fails); ``versions``: the lowest and
    highest TLS version; ``warnings``: what smtpd logs as it starts, and ``fatal`` the line it
    dies with (then it answers no connection).
    """

    level: str = "none"
    wrapper: bool = False
    auth_only: bool = False
    engine: bool = False
    certificate: tuple[str, str] | None = None
    versions: tuple[str, str] = ("TLSv1", "TLSv1.3")
    warnings: list[str] = field(default_factory=list)
    fatal: str | None = None


def lab_path(value: str, parameter: str, config: PostfixConfig) -> Path:
    """Where a file named in main.cf is in the simulated lab: ``/run/mailtls/NAME`` is the lab's
    generated file (as in :func:`mailtls.sim.config.read_table`). Raises NotModelled for any
    other path: the simulation cannot know what the real host has there."""
    if value.startswith(LAB_FILES) and ".." not in value:
        return config.lab_files / value.removeprefix(LAB_FILES)
    raise NotModelled(f"the simulated lab does not model {parameter} = {value} (a file outside "
                      f"{LAB_FILES}); the real lab does: it reads that file on the host")


@dataclass(frozen=True)
class PemObject:
    kind: str  # "key" or "cert"
    point: bytes  # the public key, uncompressed (04 || x || y)


@cache
def pem_objects(text: str) -> tuple[PemObject, ...]:
    """The keys and certificates of a PEM file, in order (others are skipped, as Postfix skips them)."""
    from ecdsa import SigningKey

    from mailtls.sim import x509

    objects = []
    for kind, body in re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", text, re.S):
        block = f"-----BEGIN {kind}-----{body}-----END {kind}-----\n"
        if kind in ("CERTIFICATE", "X509 CERTIFICATE"):
            objects.append(PemObject("cert", x509.pem_certificates(block.replace(
                "X509 CERTIFICATE", "CERTIFICATE"))[0].public_point))
        elif kind in ("PRIVATE KEY", "EC PRIVATE KEY"):
            key = SigningKey.from_pem(block)
            objects.append(PemObject("key", key.get_verifying_key().to_string("uncompressed")))
        elif kind in ("RSA PRIVATE KEY", "DSA PRIVATE KEY"):
            objects.append(PemObject("key", b"other: " + body.encode()))
    return tuple(objects)


def load_chain_files(value: str, config: PostfixConfig, tls: ServerTls) -> None:
    """``smtpd_tls_chain_files`` as ``load_chain_files`` (src/tls/tls_certkey.c, 3.7 and 3.10) loads it.

    A file that cannot be opened stops the loading without an error (the function returns
    success with no key loaded): TLS is offered and every handshake fails. A chain that begins
    with a certificate, or whose key does not match the certificate after it, disables TLS.
    One key and its chain are modelled; several keys (one per algorithm) raise NotModelled.
    """
    files = [f for f in re.split(r"[\s,]+", value) if f]
    objects: list[tuple[PemObject, str, int]] = []  # object, file, its number in the file
    for name in files:
        path = lab_path(name, "smtpd_tls_chain_files", config)
        if not path.is_file():
            tls.warnings.append(f"warning: error opening chain file: {name}: No such file or directory")
            tls.engine, tls.certificate = True, None
            return
        found = pem_objects(path.read_text(errors="replace"))
        if not objects and found and found[0].kind == "cert":
            tls.warnings += [f"warning: error loading chain from {name}: key not first",
                             f"warning: error loading private keys and certificates from: {value}: "
                             "disabling TLS support"]
            return
        objects += [(o, name, number) for number, o in enumerate(found, start=1)]
    keys = [(o, name, number) for o, name, number in objects if o.kind == "key"]
    if len(keys) > 1:
        raise NotModelled(f"the simulated lab does not model smtpd_tls_chain_files = {value} (more than "
                          "one key); the real lab does: one chain per key algorithm")
    failure = None
    if not objects:
        failure = f"warning: No PEM data in {value}"
    elif len(objects) == 1:
        key, name, number = keys[0]
        failure = f"warning: No certs for key at index {number} in {name}"
    elif objects[1][0].point != keys[0][0].point:
        key, name, number = keys[0]
        failure = f"warning: key at index {number} in {name} does not match next certificate"
    if failure:
        tls.warnings += [failure, f"warning: error loading private keys and certificates from: {value}: "
                                  "disabling TLS support"]
        return
    tls.engine = True
    tls.certificate = chain_pair(files, config)


def chain_pair(files: list[str], config: PostfixConfig) -> tuple[str, str]:
    """The (certificate, key) files to hand the TLS engine for a good chain: one file holding both
    is given as both; a key file and a certificate file as themselves."""
    paths = [str(lab_path(f, "smtpd_tls_chain_files", config)) for f in files]
    return (paths[-1], paths[0])


def load_cert_key(cert: str, key: str, config: PostfixConfig, tls: ServerTls) -> None:
    """The legacy ``smtpd_tls_cert_file`` / ``smtpd_tls_key_file`` (``set_cert_stuff`` in
    src/tls/tls_certkey.c): one file for both is read as a mixed file; otherwise a missing or
    unmatched file disables TLS ("cannot get ... from file"). OpenSSL's own error lines that
    follow those warnings in the real log are not written."""
    cert_path = lab_path(cert, "smtpd_tls_cert_file", config)
    if cert == key:
        if not cert_path.is_file():
            tls.warnings.append(f"warning: error opening chain file: {cert}: No such file or directory")
            return
        objects = pem_objects(cert_path.read_text(errors="replace"))
        keys = [o for o in objects if o.kind == "key"]
        certs = [o for o in objects if o.kind == "cert"]
        if not keys:
            tls.warnings += [f"warning: No private key found in {cert}",
                             f"warning: error loading private keys and certificates from: {cert}: "
                             "disabling TLS support"]
            return
        if not certs or certs[0].point != keys[0].point:
            tls.warnings += [f"warning: key at index {objects.index(keys[0]) + 1} in {cert} does not match "
                             "next certificate",
                             f"warning: error loading private keys and certificates from: {cert}: "
                             "disabling TLS support"]
            return
        tls.engine, tls.certificate = True, (str(cert_path), str(cert_path))
        return
    key_path = lab_path(key, "smtpd_tls_key_file", config)
    certs = [o for o in pem_objects(cert_path.read_text(errors="replace")) if o.kind == "cert"] \
        if cert_path.is_file() else []
    if not certs:
        tls.warnings.append(f'warning: cannot get RSA certificate from file "{cert}": disabling TLS support')
        if not cert_path.is_file():  # tls_certkey.c: tls_print_errors() after that line
            tls.warnings += postfix_missing_file(cert, config.generation.postfix, "certificate")
        return
    keys = [o for o in pem_objects(key_path.read_text(errors="replace")) if o.kind == "key"] \
        if key_path.is_file() else []
    if not keys or keys[0].point != certs[0].point:
        # OpenSSL refuses a key that does not match the certificate already loaded (ssl_set_pkey).
        tls.warnings.append(f'warning: cannot get RSA private key from file "{key}": disabling TLS support')
        return
    tls.engine, tls.certificate = True, (str(cert_path), str(key_path))


def server_tls(config: PostfixConfig, overrides: dict[str, str]) -> ServerTls:
    """What an smtpd service's TLS starts with, from main.cf and the service's ``-o`` overrides.

    As smtpd.c (``pre_jail_init``, Postfix 3.7.11 and 3.10.13) does it: with wrapper mode the
    level is ignored and TLS is mandatory; else a non-empty ``smtpd_tls_security_level`` is
    none, may or encrypt, verify/secure/fingerprint are taken as encrypt with a warning, and any
    other word (dane, a typo) is fatal; an empty level leaves ``smtpd_use_tls`` and
    ``smtpd_enforce_tls`` in charge. Where TLS is mandatory (encrypt, wrapper mode) the versions
    are ``smtpd_tls_mandatory_protocols``, else ``smtpd_tls_protocols``. Raises NotModelled for
    files outside /run/mailtls/ and protocol lists the engines cannot follow.
    """
    get = lambda name: config.get(name, overrides)  # noqa: E731
    tls = ServerTls(wrapper=boolean(get("smtpd_tls_wrappermode")))
    use, enforce = boolean(get("smtpd_use_tls")), boolean(get("smtpd_enforce_tls"))
    raw = get("smtpd_tls_security_level").strip()
    if not tls.wrapper and raw:
        level = tls_level(raw)
        if level in ("verify", "secure", "fingerprint"):
            tls.warnings.append(f'warning: smtpd_tls_security_level: unsupported TLS level "{raw}", '
                                'using "encrypt"')
            level = "encrypt"
        if level not in ("none", "may", "encrypt"):
            tls.fatal = f'fatal: Invalid TLS level "{raw}"'
            return tls
        use, enforce = level != "none", level == "encrypt"
    enforce = tls.wrapper or enforce
    tls.auth_only = boolean(get("smtpd_tls_auth_only")) or enforce
    use = use or enforce
    tls.level = "encrypt" if enforce else ("may" if use else "none")
    if not use:
        return tls
    parameter = "smtpd_tls_mandatory_protocols" if enforce else "smtpd_tls_protocols"
    versions = protocol_range(get(parameter), parameter)
    if versions is None:
        tls.warnings.append(f'warning: Invalid TLS protocol list "{get(parameter)}": disabling TLS support')
        return tls
    tls.versions = versions
    chain, cert = get("smtpd_tls_chain_files").strip(), get("smtpd_tls_cert_file").strip()
    for legacy in ("smtpd_tls_eccert_file", "smtpd_tls_dcert_file"):
        if get(legacy).strip():
            raise NotModelled(f"the simulated lab does not model {legacy} = {get(legacy)}; the real lab "
                              "does: use smtpd_tls_chain_files")
    if cert.lower() == "none":
        raise NotModelled("the simulated lab does not model smtpd_tls_cert_file = none (anonymous "
                          f"ciphers only); the real lab does: `{real_lab_command(config.generation)}`")
    if chain and cert:
        tls.warnings.append("warning: Both smtpd_tls_chain_files and one or more of the legacy  "
                            "smtpd_tls_cert_file, smtpd_tls_eccert_file or smtpd_tls_dcert_file are "
                            "non-empty; the legacy  parameters will be ignored")
    if chain:
        load_chain_files(chain, config, tls)
    elif cert:
        load_cert_key(cert, get("smtpd_tls_key_file").strip() or cert, config, tls)
    else:
        tls.warnings.append("warning: No server certs available. TLS won't be enabled")
    return tls
