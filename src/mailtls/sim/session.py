"""What a simulated server's session and the network that carries it say to each other.

A session (:class:`mailtls.sim.smtpd.SmtpSession`, :class:`mailtls.sim.imapd.ImapSession`)
takes the client's lines and answers each with a :class:`Reply`; the network
(:class:`mailtls.sim.network.LineServer`) sends the reply and does what its flags ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Reply:
    """A server's answer to one line: its bytes (one or more lines, CRLF-ended) and what follows.

    ``start_tls``: start TLS now, and discard whatever the client sent after this line
    (as Postfix has done since CVE-2011-0411); ``close``: hang up once it is sent; ``then``: bytes
    the server sends a moment later, when the client next sends something, before it hangs up
    (what it sends after work that takes time: Dovecot's BYE once its TLS set-up has failed).
    """

    data: bytes
    start_tls: bool = False
    close: bool = False
    then: bytes = b""


class LineSession(Protocol):
    """A server's side of a line-based protocol (SMTP, IMAP), without I/O."""

    def greeting(self) -> bytes:
        """What the server says first (after the handshake, with implicit TLS)."""
        ...

    def receive(self, line: bytes) -> Reply | None:
        """One line from the client, with its line ending; None when it gets no answer of its own."""
        ...
