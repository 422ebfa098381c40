"""Postfix's log lines, written and read in one place.

The simulated lab writes its hosts' logs with these classes and the checker reads the real
lab's logs (and the simulated one's) with them, so the two cannot drift apart. Each class
formats the text of one kind of line as Postfix 3.7 writes it, and parses it back; the forms
are those of Postfix's own messages:

- :class:`LogLine`: ``Mmm dd hh:mm:ss host program[pid]: text``, the line ``maillog_file``
  gets from postlogd (``%b %d %H:%M:%S`` then host, ``%s[%ld]: %s``: Postfix's msg_logger);
- :class:`QueueActive`: qmgr's ``ID: from=<sender>, size=N, nrcpt=N (queue active)``;
- :class:`Delivery`: the delivery agent's ``ID: to=<rcpt>, relay=..., delay=..., delays=...,
  dsn=X.Y.Z, status=sent|deferred|bounced (reason)`` (``orig_to=`` and ``conn_use=`` may come
  in between; only the fields below are kept);
- :class:`TlsConnection`: smtp's ``Trust TLS connection established to host[addr]:port: summary``,
  with Trust one of Anonymous, Untrusted, Trusted, Verified (postconf(5), ``smtp_tls_loglevel``
  and TLS_README "Client-side TLS activity logging");
- :class:`VerificationFailed`: smtp's ``[server ]certificate verification failed for host[addr]:port:
  reason``;
- :class:`SystemStarting` and :class:`MasterStarted`: postfix-script's ``starting the Postfix mail
  system`` and master's ``daemon started -- version 3.10.13, configuration /etc/postfix``, the first
  lines of a host's log (master.c);
- :class:`ClientConnect`, :class:`ClientDisconnect`: smtpd's ``connect from unknown[addr]`` and
  ``disconnect from unknown[addr] ehlo=1 ... commands=N`` with its command counters (smtpd.c,
  ``smtpd_format_cmd_stats``);
- :class:`LostConnection`: smtpd's ``[NOQUEUE: ]lost connection after CMD from unknown[addr]``
  (Postfix 3.10 puts the queue ID or NOQUEUE first, 3.7 nothing);
- :class:`SslAcceptError`: ``SSL_accept error from unknown[addr]: -1`` (or ``: lost connection``),
  tls_server.c;
- :class:`TlsConnection` also reads smtpd's ``Anonymous TLS connection established from
  unknown[addr]: summary`` (``smtpd_tls_loglevel = 1``; the direction is ``from``).

Dovecot writes its own log (``log_path``) in another form, :class:`DovecotLine`:
``Mmm dd hh:mm:ss process: Level: text`` (``log_timestamp = "%b %d %H:%M:%S "``, no host, no pid),
where the process is ``master``, ``imap-login`` or ``imap(USER)<PID><SESSION>``.
:class:`LoginEvent` reads imap-login's lines (``Login: user=<...>, method=PLAIN, rip=..., lip=...,
mpid=..., TLS, session=<...>`` and the ``Disconnected:``/``Login aborted:`` ones) and
:class:`ImapSessionEnd` the imap process's ``Disconnected: Logged out in=N out=N ...``.

Every ``parse`` returns None for a text of another kind.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

TIME_FORMAT = "%b %d %H:%M:%S"  # msg_logger's time stamp (local time, no year)

_LOG_LINE = re.compile(r"(?P<time>.+?) (?P<host>\S+) (?P<program>\S+?)\[(?P<pid>\d+)\]: (?P<text>.*)")
_QUEUE_ACTIVE = re.compile(r"(?P<queue_id>\w+): from=<(?P<sender>[^>]*)>, size=(?P<size>\d+), "
                           r"nrcpt=(?P<nrcpt>\d+) \(queue active\)")
_DELIVERY = re.compile(r"(?P<queue_id>\w+): to=<(?P<recipient>[^>]*)>,(?P<fields>.*?) "
                       r"status=(?P<status>\w+) \((?P<reason>.*)\)")
_FIELD = re.compile(r" (\w+)=([^,]*),")
_TLS_CONNECTION = re.compile(r"(?P<trust>\w+) TLS connection (?P<usage>established|reused) "
                             r"(?P<direction>to|from) (?P<where>\S+): (?P<summary>.*)")
_VERIFICATION_FAILED = re.compile(r"(?:(?P<purpose>server|client|CA) )?certificate verification failed for "
                                  r"(?P<where>\S+): (?P<reason>.*)")


@dataclass(frozen=True)
class LogLine:
    """One line of a Postfix log: when, which host, which program (``postfix/smtp``) and process."""

    time: str  # "Nov 30 00:12:34", as written
    host: str
    program: str
    pid: int
    text: str

    @classmethod
    def now(cls, host: str, program: str, pid: int, text: str) -> LogLine:
        """A line stamped with the local time, as msg_logger stamps it."""
        return cls(dt.datetime.now().strftime(TIME_FORMAT), host, program, pid, text)

    def format(self) -> str:
        """The line, without its newline."""
        return f"{self.time} {self.host} {self.program}[{self.pid}]: {self.text}"

    @property
    def process(self) -> str:
        """``program[pid]``: one process, which one smtp client is across its deliveries."""
        return f"{self.program}[{self.pid}]"

    @classmethod
    def parse(cls, line: str) -> LogLine | None:
        match = _LOG_LINE.match(line.rstrip("\n"))
        if match is None:
            return None
        return cls(match["time"], match["host"], match["program"], int(match["pid"]), match["text"])


@dataclass(frozen=True)
class QueueActive:
    """qmgr took a message into the active queue."""

    queue_id: str
    sender: str
    size: int  # bytes
    nrcpt: int  # recipients

    def format(self) -> str:
        return f"{self.queue_id}: from=<{self.sender}>, size={self.size}, nrcpt={self.nrcpt} (queue active)"

    @classmethod
    def parse(cls, text: str) -> QueueActive | None:
        match = _QUEUE_ACTIVE.fullmatch(text)
        return None if match is None else cls(match["queue_id"], match["sender"], int(match["size"]),
                                              int(match["nrcpt"]))


@dataclass(frozen=True)
class Delivery:
    """What became of one recipient of a message: one delivery attempt of a delivery agent."""

    queue_id: str
    recipient: str
    relay: str  # "mail.lab.test[198.18.0.10]:25", or "none"
    delay: str  # seconds, as written ("0.01")
    delays: str  # "a/b/c/d": before the queue manager, in it, connecting, transmitting
    dsn: str  # "2.0.0"
    status: str  # sent, deferred, bounced
    reason: str  # "250 2.0.0 Ok: queued as ...", "Server certificate not verified", ...

    def format(self) -> str:
        return (f"{self.queue_id}: to=<{self.recipient}>, relay={self.relay}, delay={self.delay}, "
                f"delays={self.delays}, dsn={self.dsn}, status={self.status} ({self.reason})")

    @property
    def outcome(self) -> str:
        """``sent (250 2.0.0 Ok: ...)``: the status and its reason, as the log gives them."""
        return f"{self.status} ({self.reason})"

    @classmethod
    def parse(cls, text: str) -> Delivery | None:
        match = _DELIVERY.fullmatch(text)
        if match is None:
            return None
        fields = dict(_FIELD.findall(match["fields"]))
        return cls(match["queue_id"], match["recipient"], fields.get("relay", ""), fields.get("delay", ""),
                   fields.get("delays", ""), fields.get("dsn", ""), match["status"], match["reason"])


@dataclass(frozen=True)
class TlsConnection:
    """A TLS session and how far the logging side trusts the peer's certificate.

    The smtp client logs ``... established to host[addr]:port: summary``; smtpd logs
    ``... established from unknown[addr]: summary`` (``direction`` ``from``; its trust is
    Anonymous, the lab asks clients for no certificate). A resumed session is ``reused``
    (tls_misc.c, ``tls_log_summary``).
    """

    trust: str  # Anonymous, Untrusted, Trusted or Verified
    where: str  # "mail.lab.test[198.18.0.10]:25", or "unknown[198.18.0.1]" for smtpd
    summary: str  # see tls_summary()
    direction: str = "to"  # "to" (smtp) or "from" (smtpd)
    usage: str = "established"  # or "reused"

    def format(self) -> str:
        return f"{self.trust} TLS connection {self.usage} {self.direction} {self.where}: {self.summary}"

    @classmethod
    def parse(cls, text: str) -> TlsConnection | None:
        match = _TLS_CONNECTION.fullmatch(text)
        return None if match is None else cls(match["trust"], match["where"], match["summary"],
                                              match["direction"], match["usage"])


@dataclass(frozen=True)
class VerificationFailed:
    """An smtp client at a level that must match (fingerprint, verify, secure) found the
    certificate wanting, and says why (src/tls/tls_verify.c, ``tls_log_verify_error``).

    Its own reasons come without ``purpose`` (``untrusted issuer /CN=...``, ``self-signed
    certificate``); OpenSSL's others with it (``server``, then ``num=62:hostname mismatch``).
    """

    where: str
    reason: str
    purpose: str = ""  # "server", "client", "CA", or "" for the reasons tls_verify.c words itself

    def format(self) -> str:
        prefix = f"{self.purpose} " if self.purpose else ""
        return f"{prefix}certificate verification failed for {self.where}: {self.reason}"

    @classmethod
    def parse(cls, text: str) -> VerificationFailed | None:
        match = _VERIFICATION_FAILED.fullmatch(text)
        return None if match is None else cls(match["where"], match["reason"], match["purpose"] or "")


# -- smtpd's connection lines and master's start (Postfix 3.7 and 3.10) ------------------------------

# The order in which smtpd counts its commands in a disconnect line: its command table (smtpd.c,
# ``smtpd_cmd_table``, the same in 3.7.11 and 3.10.13), then the unknown ones.
SMTPD_COMMANDS = ("helo", "ehlo", "xclient", "xforward", "starttls", "auth", "mail", "rcpt", "data", "bdat",
                  "rset", "noop", "vrfy", "etrn", "quit", "help", "unknown")
_MASTER_STARTED = re.compile(r"daemon started -- version (?P<version>\S+), configuration (?P<config>\S+)")
_CONNECT = re.compile(r"connect from (?P<client>\S+)")
_DISCONNECT = re.compile(r"disconnect from (?P<client>\S+)(?P<counts>( \w+=\d+(/\d+)?)*)")
_LOST = re.compile(r"(?:(?P<queue_id>\w+): )?(?P<reason>lost connection|timeout) after (?P<where>[\w-]+)"
                   r"(?: \((?P<bytes>\d+) bytes\))? from (?P<client>\S+)")
_SSL_ACCEPT_ERROR = re.compile(r"SSL_accept error from (?P<client>\S+): (?P<detail>.*)")


@dataclass(frozen=True)
class MasterStarted:
    """Postfix's master came up (master.c: ``daemon started -- version %s, configuration %s``)."""

    version: str  # "3.10.13"
    config: str = "/etc/postfix"

    def format(self) -> str:
        return f"daemon started -- version {self.version}, configuration {self.config}"

    @classmethod
    def parse(cls, text: str) -> MasterStarted | None:
        match = _MASTER_STARTED.fullmatch(text)
        return None if match is None else cls(match["version"], match["config"])


@dataclass(frozen=True)
class SystemStarting:
    """``postfix start`` began (postfix-script: ``starting the Postfix mail system``), the line before
    :class:`MasterStarted`."""

    def format(self) -> str:
        return "starting the Postfix mail system"

    @classmethod
    def parse(cls, text: str) -> SystemStarting | None:
        return cls() if text == "starting the Postfix mail system" else None


@dataclass(frozen=True)
class ClientConnect:
    """smtpd accepted a connection; ``client`` is ``unknown[addr]`` (``smtpd_peername_lookup = no``)."""

    client: str

    def format(self) -> str:
        return f"connect from {self.client}"

    @classmethod
    def parse(cls, text: str) -> ClientConnect | None:
        match = _CONNECT.fullmatch(text)
        return None if match is None else cls(match["client"])


@dataclass(frozen=True)
class ClientDisconnect:
    """smtpd's last line of a connection, with what it counted of each command.

    ``counts`` maps a command (lower case, as in :data:`SMTPD_COMMANDS`) to (successes, total):
    smtpd writes ``ehlo=1`` when all succeeded, else ``auth=0/1``, then ``commands=S`` or
    ``commands=S/T`` (and ``commands=0/0`` for none), in the order of its command table.
    """

    client: str
    counts: tuple[tuple[str, int, int], ...] = ()  # (command, successes, total), in table order

    def format(self) -> str:
        order = {name: number for number, name in enumerate(SMTPD_COMMANDS)}
        parts = []
        for name, success, total in sorted(self.counts, key=lambda c: order.get(c[0], len(order))):
            parts.append(f" {name}={success}" + (f"/{total}" if success != total else ""))
        success = sum(c[1] for c in self.counts)
        total = sum(c[2] for c in self.counts)
        parts.append(f" commands={success}" + (f"/{total}" if success != total or total == 0 else ""))
        return f"disconnect from {self.client}" + "".join(parts)

    @property
    def commands(self) -> dict[str, tuple[int, int]]:
        """``{"ehlo": (1, 1), "auth": (0, 1)}``: successes and total of each command counted."""
        return {name: (success, total) for name, success, total in self.counts}

    @classmethod
    def parse(cls, text: str) -> ClientDisconnect | None:
        match = _DISCONNECT.fullmatch(text)
        if match is None:
            return None
        counts = []
        for item in match["counts"].split():
            name, _, value = item.partition("=")
            success, _, total = value.partition("/")
            if name != "commands":
                counts.append((name, int(success), int(total or success)))
        return cls(match["client"], tuple(counts))


@dataclass(frozen=True)
class LostConnection:
    """The client went away without QUIT: ``lost connection after STARTTLS from unknown[addr]``.

    Postfix 3.10 starts the line with the queue ID, or ``NOQUEUE``; 3.7 does not (smtpd.c,
    ``smtpd_proto``). ``size`` is the byte count Postfix adds after DATA.
    """

    where: str  # the last command it recognised, upper case, or CONNECT, END-OF-MESSAGE
    client: str
    queue_id: str | None = None  # "NOQUEUE" or a queue ID in 3.10, None in 3.7
    size: int | None = None

    def format(self) -> str:
        size = f" ({self.size} bytes)" if self.size is not None else ""
        prefix = f"{self.queue_id}: " if self.queue_id else ""
        return f"{prefix}lost connection after {self.where}{size} from {self.client}"

    @classmethod
    def parse(cls, text: str) -> LostConnection | None:
        match = _LOST.fullmatch(text)
        if match is None or match["reason"] != "lost connection":
            return None
        return cls(match["where"], match["client"], match["queue_id"],
                   int(match["bytes"]) if match["bytes"] else None)


@dataclass(frozen=True)
class SslAcceptError:
    """A TLS handshake smtpd did not complete (tls_server.c): ``-1`` when OpenSSL gave a reason (a
    ``warning: TLS library problem`` line follows), ``lost connection`` when the client left."""

    client: str
    detail: str  # "-1" or "lost connection"

    def format(self) -> str:
        return f"SSL_accept error from {self.client}: {self.detail}"

    @classmethod
    def parse(cls, text: str) -> SslAcceptError | None:
        match = _SSL_ACCEPT_ERROR.fullmatch(text)
        return None if match is None else cls(match["client"], match["detail"])


# -- Dovecot's log ------------------------------------------------------------------------------------

_DOVECOT_LINE = re.compile(r"(?P<time>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<process>\S+?): "
                           r"(?P<level>Debug|Info|Warning|Error|Fatal|Panic): (?P<text>.*)")
_LOGIN_EVENT = re.compile(r"(?P<event>.*?): user=<(?P<user>[^>]*)>, (?:method=(?P<method>[\w-]+), )?"
                          r"rip=(?P<rip>[^,]*), lip=(?P<lip>[^,]*), (?:mpid=(?P<mpid>\d+), )?"
                          r"(?:(?P<secured>[^,]*), )?session=<(?P<session>[^>]*)>")
_SESSION_END = re.compile(r"Disconnected: (?P<reason>.*?) in=(?P<bytes_in>\d+) out=(?P<bytes_out>\d+)"
                          r"(?P<counts>( \w+=\d+)*)")


@dataclass(frozen=True)
class DovecotLine:
    """One line of Dovecot's ``log_path`` file: ``Nov 30 06:59:31 imap-login: Info: Login: ...``.

    ``process`` is ``master``, ``config``, ``imap-login`` or ``imap(alice@lab.test)<PID><SESSION>``
    (log_timestamp's default ``%b %d %H:%M:%S``, then the process's log prefix; measured with
    Dovecot 2.3.19.1 and 2.4.1).
    """

    time: str
    process: str
    level: str  # Info, Warning, Error, Fatal
    text: str

    @classmethod
    def now(cls, process: str, level: str, text: str) -> DovecotLine:
        return cls(dt.datetime.now().strftime(TIME_FORMAT), process, level, text)

    def format(self) -> str:
        return f"{self.time} {self.process}: {self.level}: {self.text}"

    @classmethod
    def parse(cls, line: str) -> DovecotLine | None:
        match = _DOVECOT_LINE.fullmatch(line.rstrip("\n"))
        return None if match is None else cls(match["time"], match["process"], match["level"], match["text"])


@dataclass(frozen=True)
class LoginEvent:
    """What imap-login says of a client: a login, or why it left without one.

    ``event`` is the text before the fields: ``Login`` (2.3) or ``Logged in`` (2.4), ``Disconnected:
    Connection closed (no auth attempts in 0 secs)`` (2.3), ``Login aborted: Connection closed (no auth
    attempts in 0 secs) (no_auth_attempts)`` (2.4), ``Failed to initialize SSL server context: ...``.
    ``secured`` is ``TLS``, ``TLS: Connection closed``, ``TLS handshaking: ...``, ``secured`` or
    None (login_log_format_elements' ``%c``).
    """

    event: str
    user: str
    rip: str
    lip: str
    session: str
    method: str | None = None
    mpid: int | None = None
    secured: str | None = None

    def format(self) -> str:
        fields = [f"user=<{self.user}>"]
        if self.method:
            fields.append(f"method={self.method}")
        fields += [f"rip={self.rip}", f"lip={self.lip}"]
        if self.mpid is not None:
            fields.append(f"mpid={self.mpid}")
        if self.secured:
            fields.append(self.secured)
        fields.append(f"session=<{self.session}>")
        return f"{self.event}: " + ", ".join(fields)

    @property
    def logged_in(self) -> bool:
        return self.event in ("Login", "Logged in")

    @classmethod
    def parse(cls, text: str) -> LoginEvent | None:
        match = _LOGIN_EVENT.fullmatch(text)
        if match is None:
            return None
        return cls(match["event"], match["user"], match["rip"], match["lip"], match["session"],
                   match["method"], int(match["mpid"]) if match["mpid"] else None, match["secured"])


@dataclass(frozen=True)
class ImapSessionEnd:
    """The imap process's last line for a logged-in user: ``Disconnected: Logged out in=12 out=477
    deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0`` (the default
    ``imap_logout_format``; ``in``/``out`` are bytes after the login)."""

    reason: str  # "Logged out", "Connection closed (No commands sent)"
    bytes_in: int
    bytes_out: int
    body_count: int = 0
    body_bytes: int = 0

    def format(self) -> str:
        return (f"Disconnected: {self.reason} in={self.bytes_in} out={self.bytes_out} deleted=0 "
                "expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 "
                f"body_count={self.body_count} body_bytes={self.body_bytes}")

    @classmethod
    def parse(cls, text: str) -> ImapSessionEnd | None:
        match = _SESSION_END.fullmatch(text)
        if match is None:
            return None
        counts = dict(item.split("=") for item in match["counts"].split())
        return cls(match["reason"], int(match["bytes_in"]), int(match["bytes_out"]),
                   int(counts.get("body_count", 0)), int(counts.get("body_bytes", 0)))


def tls_summary(version: str, cipher: str, bits: int, resumed: bool = False, anonymous: bool = False,
                postfix: str = "3.7") -> str:
    """How Postfix describes a TLS session (ECDSA P-256 certificate, X25519) in logs and Received headers.

    A resumed session shows no server digest: no signature was made. An anonymous one (no
    certificate: ``ADH-AES256-GCM-SHA384``) shows only the version and cipher. The key exchange
    is OpenSSL's name of the group: ``X25519`` with OpenSSL 3.0 (Postfix 3.7, Debian 12),
    ``x25519`` with OpenSSL 3.5 (Postfix 3.10, Debian 13). All measured with Postfix 3.10.13 and
    3.7.11.
    """
    if anonymous:
        return f"{version} with cipher {cipher} ({bits}/{bits} bits)"
    group = "x25519" if postfix != "3.7" else "X25519"
    summary = (f"{version} with cipher {cipher} ({bits}/{bits} bits) key-exchange {group} "
               "server-signature ECDSA (prime256v1)")
    return summary if resumed else summary + " server-digest SHA256"


# -- Reading a log ---------------------------------------------------------------------------------


def delivery(line: str) -> Delivery | None:
    """The delivery attempt a whole log line records, or None."""
    parsed = LogLine.parse(line)
    return None if parsed is None else Delivery.parse(parsed.text)


def tls_connection(line: str) -> TlsConnection | None:
    """The TLS connection a whole log line records, or None."""
    parsed = LogLine.parse(line)
    return None if parsed is None else TlsConnection.parse(parsed.text)


def find_delivery(lines: list[str], queue_id: str, recipient: str) -> int | None:
    """The index of the first line that records an attempt to deliver ``queue_id`` to ``recipient``."""
    for number, line in enumerate(lines):
        found = delivery(line)
        if found is not None and (found.queue_id, found.recipient) == (queue_id, recipient):
            return number
    return None


def tls_before(lines: list[str], number: int) -> int | None:
    """The index of the TLS line of the delivery logged at ``lines[number]``, or None if it had none.

    One smtp process makes many deliveries, so the search stops at that process's previous one.
    Raises ValueError if ``lines[number]`` is not a Postfix log line.
    """
    logged = LogLine.parse(lines[number])
    if logged is None:
        raise ValueError(f"not a Postfix log line: {lines[number]!r}")
    for earlier in range(number - 1, -1, -1):
        line = LogLine.parse(lines[earlier])
        if line is None or line.process != logged.process:
            continue
        if TlsConnection.parse(line.text) is not None:
            return earlier
        if Delivery.parse(line.text) is not None:
            return None
    return None
