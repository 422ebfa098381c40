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
  reason``.

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
_TLS_CONNECTION = re.compile(r"(?P<trust>\w+) TLS connection established to (?P<where>\S+): (?P<summary>.*)")
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
    """The TLS session an smtp client made, and how far it trusts the server's certificate."""

    trust: str  # Anonymous, Untrusted, Trusted or Verified
    where: str  # "mail.lab.test[198.18.0.10]:25"
    summary: str  # see tls_summary()

    def format(self) -> str:
        return f"{self.trust} TLS connection established to {self.where}: {self.summary}"

    @classmethod
    def parse(cls, text: str) -> TlsConnection | None:
        match = _TLS_CONNECTION.fullmatch(text)
        return None if match is None else cls(match["trust"], match["where"], match["summary"])


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
