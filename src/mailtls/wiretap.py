"""The wiretap: a man in the middle on the path to a mail server, for the course's attack lessons.

It listens where clients expect the server, connects to the real server, and relays the
conversation in one of three modes:

- ``pass``: relay the bytes untouched (the path as it normally is);
- ``record``: relay untouched and write a transcript of what an eavesdropper sees: every
  clear-text line, and only the size of what TLS protects;
- ``strip``: a STRIPTLS downgrade. Remove ``STARTTLS`` from the server's EHLO and CAPABILITY
  replies and refuse the client's ``STARTTLS`` command, as a server without TLS would. A client
  that only *prefers* TLS carries on in clear text (and the transcript shows its password); a
  client that *requires* TLS gives up. The transcript is written in this mode too.

Routes say what to relay: ``smtp`` and ``imap`` are read line by line until TLS starts; ``tls``
(implicit TLS, ports 465 and 993) is relayed as bytes from the first one.

Run it with ``python -m mailtls.wiretap --mode record --transcript FILE --route
smtp:0.0.0.0:25:mail.lab.test:25 ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import enum
import itertools
import json
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailtls.smtp_reply import ReplyReader, is_continued, split_line

LINE_LIMIT = 64 * 1024  # longer than any legitimate SMTP or IMAP line
CHUNK = 64 * 1024


class Mode(enum.StrEnum):
    PASS = "pass"
    RECORD = "record"
    STRIP = "strip"


@dataclass(frozen=True)
class Route:
    """Listen on one address and port; relay to one upstream address and port."""

    protocol: str  # "smtp", "imap" or "tls"
    listen_host: str
    listen_port: int
    upstream_host: str
    upstream_port: int

    @classmethod
    def parse(cls, text: str) -> Route:
        """``PROTOCOL:LISTEN_HOST:LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT``."""
        parts = text.split(":")
        if len(parts) != 5 or parts[0] not in ("smtp", "imap", "tls"):
            raise ValueError(f"route {text!r}: expected "
                             "smtp|imap|tls:LISTEN_HOST:LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT")
        try:
            return cls(parts[0], parts[1], int(parts[2]), parts[3], int(parts[4]))
        except ValueError:
            raise ValueError(f"route {text!r}: ports must be numbers") from None

    @property
    def name(self) -> str:
        return f"{self.protocol} {self.listen_port}"


# -- What STRIPTLS changes ------------------------------------------------------------------
# Pure functions on the protocol's lines (bytes, with their CRLF), so each rule can be read
# and tested on its own.

SMTP_STARTTLS_LINE = re.compile(rb"^250[ -]STARTTLS\s*$", re.IGNORECASE)
IMAP_STARTTLS_WORD = re.compile(rb" STARTTLS(?=[ \]\r\n])", re.IGNORECASE)


def strip_smtp_reply(lines: list[bytes]) -> list[bytes]:
    """An EHLO reply without its ``250-STARTTLS`` line; the last line keeps the final ``250 `` form."""
    kept = [line for line in lines if not SMTP_STARTTLS_LINE.match(line)]
    if kept and len(kept) < len(lines) and is_continued(kept[-1]):
        kept[-1] = kept[-1][:3] + b" " + kept[-1][4:]
    return kept or lines


def strip_imap_line(line: bytes) -> bytes:
    """A server line without the ``STARTTLS`` capability (``* CAPABILITY ...`` or ``[CAPABILITY ...]``)."""
    if b"CAPABILITY" not in line.upper():
        return line
    return IMAP_STARTTLS_WORD.sub(b"", line)


def starttls_command(protocol: str, line: bytes) -> bytes | None:
    """If the client line is a STARTTLS command, its tag (``b""`` for SMTP); else None."""
    words = line.strip().split()
    if protocol == "smtp" and len(words) == 1 and words[0].upper() == b"STARTTLS":
        return b""
    if protocol == "imap" and len(words) == 2 and words[1].upper() == b"STARTTLS":
        return words[0]
    return None


def refusal(protocol: str, tag: bytes) -> bytes:
    """What a server without TLS answers to STARTTLS (Postfix, and Dovecot with ``ssl = no``)."""
    if protocol == "smtp":
        return b"502 5.5.1 Error: command not implemented\r\n"
    return tag + b" BAD TLS support isn't enabled.\r\n"


def starttls_verdict(protocol: str, tag: bytes, reply: list[bytes]) -> bool | None:
    """Did the server accept STARTTLS? None while this reply is not the answer to it."""
    last = reply[-1]
    if protocol == "smtp":
        return last.startswith(b"220")
    words = last.split()
    if len(words) >= 2 and words[0] == tag:
        return words[1].upper() == b"OK"
    return None  # an untagged line: the answer is still to come


# -- The transcript -------------------------------------------------------------------------


class Transcript:
    """What an eavesdropper sees, as JSON lines: one object per line of text or block of ciphertext."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, session: int, route: Route, sender: str, *, text: bytes | None = None,
              encrypted: int = 0) -> None:
        if self.path is None:
            return
        entry: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "session": session,
            "route": route.name,
            "from": sender,  # "client", "server" or "wiretap" (a reply the wiretap made up)
        }
        if text is not None:
            entry["text"] = text.decode("latin-1").rstrip("\r\n")
        else:
            entry["encrypted_bytes"] = encrypted
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def read_transcript(path: Path) -> list[dict[str, Any]]:
    """The entries of a transcript, oldest first (an absent file is an empty transcript)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- Relaying -------------------------------------------------------------------------------


class Relay:
    """One session's protocol logic, without I/O: bytes in from one side, bytes out to either.

    The asyncio :class:`Session` below drives it on real connections; the simulated lab drives it
    on its virtual ones. It reads lines until TLS starts; in ``pass`` mode and on implicit-TLS
    routes it relays bytes from the start.
    """

    def __init__(self, number: int, route: Route, mode: Mode, transcript: Transcript) -> None:
        self.number = number
        self.route = route
        self.mode = mode
        self.transcript = transcript
        self.raw = mode is Mode.PASS or route.protocol == "tls"  # relay bytes, not lines
        self.from_client_buffer = b""
        self.from_server_buffer = b""
        self.replies = ReplyReader()  # the server's SMTP replies, line by line
        self.awaiting: bytes | None = None  # the tag of a STARTTLS whose answer is awaited

    def note(self, sender: str, **data: Any) -> None:
        if self.mode is not Mode.PASS:
            self.transcript.write(self.number, self.route, sender, **data)

    def passes_raw(self, sender: str, data: bytes) -> bool:
        """Whether ``data`` goes on untouched (raw mode); if so, its size is noted, not its bytes."""
        if self.raw and data:
            self.note(sender, encrypted=len(data))
        return self.raw

    def from_client(self, data: bytes) -> tuple[bytes, bytes]:
        """What the client sent; returns (bytes for the server, bytes for the client)."""
        if self.passes_raw("client", data):
            return data, b""
        self.from_client_buffer += data
        upstream = back = b""
        while self.awaiting is None and (line := self.take_line("from_client_buffer")):
            self.note("client", text=line)
            tag = starttls_command(self.route.protocol, line)
            if tag is not None and self.mode is Mode.STRIP:
                answer = refusal(self.route.protocol, tag)
                self.note("wiretap", text=answer)
                back += answer
                continue
            self.awaiting = tag  # while set, the client's next bytes wait for the server's answer
            upstream += line
        return upstream, back

    def from_server(self, data: bytes) -> tuple[bytes, bytes]:
        """What the server sent; returns (bytes for the client, bytes for the server)."""
        if self.passes_raw("server", data):
            return data, b""
        self.from_server_buffer += data
        back = upstream = b""
        while not self.raw and (line := self.take_line("from_server_buffer")):
            if self.route.protocol == "smtp":
                whole = self.replies.add_line(line)
                if whole is None:
                    continue  # more lines of this reply to come
                reply = list(whole.lines)
            else:
                reply = [line]
            if self.mode is Mode.STRIP:
                reply = (strip_smtp_reply(reply) if self.route.protocol == "smtp"
                         else [strip_imap_line(x) for x in reply])
            for line in reply:
                self.note("server", text=line)
            back += b"".join(reply)
            accepted = (None if self.awaiting is None
                        else starttls_verdict(self.route.protocol, self.awaiting, reply))
            if accepted is None:
                continue
            self.awaiting = None
            if accepted:  # TLS from here on, both ways
                self.raw = True
                back += self.from_server(self.from_server_buffer)[0]
                upstream += self.from_client(self.from_client_buffer)[0]
                self.from_server_buffer = self.from_client_buffer = b""
            else:
                more_upstream, more_back = self.from_client(b"")
                upstream += more_upstream
                back += more_back
        return back, upstream

    def take_line(self, buffer: str) -> bytes:
        """The next line of a buffer, with its line ending; an over-long line goes on in pieces."""
        line, rest = split_line(getattr(self, buffer), LINE_LIMIT)
        setattr(self, buffer, rest)
        return line


class Session:
    """One client connection and its upstream connection, relayed through a :class:`Relay`."""

    def __init__(self, relay: Relay,
                 connect_upstream: Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
                 | None = None) -> None:
        self.relay = relay
        route = relay.route
        self.connect_upstream = connect_upstream or (lambda: asyncio.open_connection(
            route.upstream_host, route.upstream_port, limit=LINE_LIMIT))

    async def run(self, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        client_reader, client_writer = client
        try:
            upstream_reader, upstream_writer = await self.connect_upstream()
        except OSError:
            client_writer.close()
            return

        async def pump(reader: asyncio.StreamReader, handle: Callable[[bytes], tuple[bytes, bytes]],
                       onward: asyncio.StreamWriter, back: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(CHUNK):
                    for writer, data in zip((onward, back), handle(chunk), strict=True):
                        if data:
                            writer.write(data)
                            await writer.drain()
            with contextlib.suppress(OSError):
                onward.write_eof()

        try:
            await asyncio.gather(
                pump(client_reader, self.relay.from_client, upstream_writer, client_writer),
                pump(upstream_reader, self.relay.from_server, client_writer, upstream_writer),
            )
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()


class Wiretap:
    """All the routes of one wiretap, sharing a mode and a transcript.

    With a ``mode_file``, each new connection takes the mode written there, so the mode can change
    (``lab wiretap strip``, or a notebook's ``lab.set_wiretap_mode("strip")``) without a restart
    that would drop the sessions in progress.
    """

    def __init__(self, routes: list[Route], mode: Mode, transcript: Path | None = None,
                 mode_file: Path | None = None) -> None:
        self.routes = routes
        self.mode = mode
        self.mode_file = mode_file
        self.transcript = Transcript(transcript)
        self.servers: list[asyncio.Server] = []
        self._numbers = itertools.count(1)
        self._sessions: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Listen on every route; an address already in use stops everything started so far."""
        try:
            for route in self.routes:
                server = await asyncio.start_server(
                    lambda r, w, route=route: self._accept(route, r, w),
                    route.listen_host, route.listen_port, limit=LINE_LIMIT,
                )
                self.servers.append(server)
        except OSError:
            await self.stop()
            raise

    def current_mode(self) -> Mode:
        """The mode for a new connection: the mode file's, or the last good one if it is unreadable."""
        if self.mode_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.mode = Mode(self.mode_file.read_text().strip())
        return self.mode

    def relay(self, route: Route) -> Relay:
        """A new session on ``route``: the next number, the mode of the moment, the shared transcript."""
        return Relay(next(self._numbers), route, self.current_mode(), self.transcript)

    def _accept(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self.relay(route))
        task = asyncio.create_task(session.run((reader, writer)))
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        self.servers.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailtls.wiretap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.PASS.value)
    parser.add_argument("--transcript", type=Path, help="JSON-lines file for the record and strip modes")
    parser.add_argument("--mode-file", type=Path, help="a file holding the mode, read at each new connection")
    parser.add_argument("--route", action="append", required=True, type=Route.parse,
                        metavar="PROTO:LHOST:LPORT:UHOST:UPORT")
    args = parser.parse_args(argv)

    async def serve() -> None:
        wiretap = Wiretap(args.route, Mode(args.mode), args.transcript, args.mode_file)
        await wiretap.start()
        print(f"wiretap in {wiretap.current_mode().value} mode on "
              + ", ".join(f"{r.listen_host}:{r.listen_port}" for r in args.route), flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
        await wiretap.stop()

    try:
        asyncio.run(serve())
    except OSError as error:
        print(f"error: wiretap cannot listen: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
