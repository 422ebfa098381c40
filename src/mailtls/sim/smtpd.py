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
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from mailtls.sim.config import PostfixConfig, words
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
    level: str  # none, may, encrypt
    wrapper: bool
    sasl: bool
    auth_only: bool
    client_restrictions: list[str]
    relay_restrictions: list[str]
    mynetworks: list[str]
    received_header: bool
    syslog_name: str
    postfix: str = "3.10"  # the version whose texts it answers with (its generation's)

    @classmethod
    def read(cls, config: PostfixConfig, port: int) -> SmtpServerSettings:
        overrides = config.listeners()[port].overrides
        get = lambda name: config.get(name, overrides)  # noqa: E731
        level = get("smtpd_tls_security_level") or "none"
        return cls(
            host=get("myhostname"),
            banner=get("smtpd_banner"),
            level=level,
            wrapper=get("smtpd_tls_wrappermode") == "yes",
            sasl=get("smtpd_sasl_auth_enable") == "yes",
            auth_only=get("smtpd_tls_auth_only") == "yes",
            client_restrictions=words(get("smtpd_client_restrictions")),
            relay_restrictions=words(get("smtpd_relay_restrictions")),
            mynetworks=words(get("mynetworks")),
            received_header=get("smtpd_tls_received_header") == "yes",
            syslog_name=get("syslog_name"),
            postfix=config.generation.postfix,
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
