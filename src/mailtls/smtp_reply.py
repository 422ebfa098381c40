"""SMTP replies read from a byte stream, without I/O of its own (sans-IO).

An SMTP reply is one or more lines: every line but the last is ``CODE-text``, the last is
``CODE text`` or ``CODE`` alone (RFC 5321, section 4.2.1). :class:`ReplyReader` is fed bytes
as they arrive and hands back each reply once its last line is in; whoever owns the connection
does the reading (a socket, a file, an asyncio stream, the simulated network). :func:`read`
does that for a blocking ``readline``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LINE_LIMIT = 64 * 1024  # longer than any legitimate reply line; a longer one is cut in pieces


def is_continued(line: bytes) -> bool:
    """True for a line that another line of the same reply follows (``250-...``, RFC 5321 4.2.1)."""
    return line[3:4] == b"-"


def split_line(data: bytes, limit: int = LINE_LIMIT) -> tuple[bytes, bytes]:
    """(the first line of ``data`` with its line ending, the rest); ``(b"", data)`` while no line is whole.

    A line longer than ``limit`` bytes comes in pieces of ``limit`` bytes, so that a peer that
    never ends its line cannot fill the memory. Good for any line-based protocol (SMTP, IMAP).
    """
    end = data.find(b"\n")
    if end < 0 and len(data) < limit:
        return b"", data
    cut = end + 1 if 0 <= end < limit else limit
    return data[:cut], data[cut:]


@dataclass(frozen=True)
class SmtpReply:
    """One whole reply: its lines as received (bytes, each with its line ending if it had one)."""

    lines: tuple[bytes, ...]

    @property
    def code(self) -> int:
        """The three-digit code of the last line; 0 if it has none (an empty line at end of file)."""
        digits = self.lines[-1][:3]
        return int(digits) if digits.isdigit() else 0

    @property
    def texts(self) -> list[str]:
        """Each line's text after ``CODE-`` or ``CODE ``, decoded as Latin-1, without its line ending."""
        return [line[4:].decode("latin-1").rstrip("\r\n") for line in self.lines]

    @property
    def text(self) -> str:
        """The last line's text (``2.0.0 Ok: queued as ...`` in ``250 2.0.0 Ok: queued as ...``)."""
        return self.texts[-1]

    @property
    def data(self) -> bytes:
        """The reply's bytes, as they came."""
        return b"".join(self.lines)


class ReplyReader:
    """Bytes in, whole replies out.

    ``feed(data)`` returns the replies completed by ``data``, oldest first, and keeps the rest
    (a partial line, the first lines of a multi-line reply) for the next call. ``add_line``
    takes one line already split off, for a caller that reads lines itself.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.lines: list[bytes] = []  # the lines of the reply read so far

    def add_line(self, line: bytes) -> SmtpReply | None:
        """One line (with or without its line ending); the reply if this line ends it, else None."""
        self.lines.append(line)
        if is_continued(line):
            return None
        reply, self.lines = SmtpReply(tuple(self.lines)), []
        return reply

    def feed(self, data: bytes) -> list[SmtpReply]:
        """The replies that ``data`` completes; a line longer than ``LINE_LIMIT`` is cut there."""
        self.buffer += data
        replies = []
        while True:
            line, self.buffer = split_line(self.buffer)
            if not line:
                return replies
            if (reply := self.add_line(line)) is not None:
                replies.append(reply)

    @property
    def in_progress(self) -> bool:
        """True while part of a reply has arrived and its last line has not."""
        return bool(self.buffer or self.lines)


def read(readline: Callable[[], bytes]) -> SmtpReply:
    """The next whole reply from a blocking ``readline`` (a file from ``socket.makefile("rb")``).

    At end of file, ``readline`` gives ``b""``, which ends the reply: its code is then 0.
    Errors from ``readline`` (a timeout, a reset) pass through.
    """
    reader = ReplyReader()
    while (reply := reader.add_line(readline())) is None:
        pass
    return reply
