"""The simulated lab's network: the lab's addresses and ports, reached without leaving the process.

It has no threads and no operating-system sockets, because the browser's Python has neither.
A connection is a :class:`VirtualSocket` on the client's side and a *reactive* server on the
other: whatever the client sends is handed to the server at once, and the server's answer is in
the client's inbox before ``sendall`` returns. So a client that reads when its inbox is empty
would wait forever on a real network; here it gets its timeout at once.

``install()`` replaces ``socket.create_connection`` (which smtplib and imaplib use) for the
lab's addresses. TLS on a virtual socket is done by :mod:`mailtls.sim.tls`: the standard ``ssl``
module over memory BIOs in CPython, tlslite-ng in the browser. Either way the client's
certificate checks are real.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any, Protocol

from mailtls.config import LabConfig
from mailtls.sim import tls
from mailtls.sim.session import LineSession, Reply
from mailtls.sim.sockets import SocketLike

BUFFER_LIMIT = 1 << 20


class Handler(Protocol):
    """A server's side of one connection: told when bytes arrive and when the client leaves."""

    def received(self, data: bytes) -> None: ...

    def hung_up(self) -> None: ...


# (address, port) -> makes the handler of a new connection
Listener = Callable[["Connection", str], Handler]
_listeners: dict[tuple[str, int], Listener] = {}
_system_create_connection = socket.create_connection


def listen(address: str, port: int, accept: Listener) -> None:
    _listeners[(address, port)] = accept


def clear() -> None:
    _listeners.clear()


class Connection:
    """The server's end: ``send`` puts bytes in the client's inbox, ``close`` hangs up."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self.to_client = bytearray()
        self.closed_by_server = False
        self.closed_by_client = False
        self.reset_by_server = False  # closed with a TCP reset: the client's reads fail
        self.handler: Handler | None = None

    def send(self, data: bytes) -> None:
        if not self.closed_by_client and not self.closed_by_server:
            self.to_client += data

    def close(self) -> None:
        self.closed_by_server = True

    def reset(self) -> None:
        """Hang up at once, discarding what the client has not read: its next read raises
        ConnectionResetError, as after a TCP RST (what Dovecot's imap-login does when it cannot set up
        TLS on an implicit-TLS port: measured with 2.3.19.1 and 2.4.1)."""
        self.to_client.clear()
        self.closed_by_server = self.reset_by_server = True


class VirtualSocket(SocketLike):
    """The client's end of a simulated TCP connection."""

    def __init__(self, connection: Connection, client_address: str, timeout: float | None) -> None:
        self.connection = connection
        self.client_address = client_address
        self._timeout = timeout
        self._closed = False

    def getpeername(self) -> tuple[str, int]:
        return self.connection.address, self.connection.port

    def getsockname(self) -> tuple[str, int]:
        return self.client_address, 40000

    def sendall(self, data: bytes, flags: int = 0) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self.connection.reset_by_server:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        if self.connection.closed_by_server:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        if data:
            self.connection.handler.received(bytes(data))  # type: ignore[union-attr]

    def recv(self, size: int, flags: int = 0) -> bytes:
        inbox = self.connection.to_client
        if inbox:
            data = bytes(inbox[:size])
            del inbox[:size]
            return data
        if self.connection.reset_by_server and not self._closed:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        if self.connection.closed_by_server or self._closed:
            return b""
        if self._timeout == 0.0:
            raise BlockingIOError(errno.EWOULDBLOCK, "Resource temporarily unavailable")
        raise TimeoutError("timed out")  # the server has said all it will say until it hears more

    def pending(self) -> bytes:
        """Whatever the server has sent and the client has not read (for the wiretap)."""
        data = bytes(self.connection.to_client)
        self.connection.to_client.clear()
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.connection.closed_by_client = True
            if self.connection.handler is not None:
                self.connection.handler.hung_up()


def open_connection(address: str, port: int, client_address: str = LabConfig().gateway,
                    timeout: float | None = None) -> VirtualSocket:
    """A connected socket to a simulated server, or ConnectionRefusedError as a real host gives."""
    accept = _listeners.get((address, port))
    if accept is None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    connection = Connection(address, port)
    sock = VirtualSocket(connection, client_address, timeout)
    connection.handler = accept(connection, client_address)
    return sock


def _create_connection(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,
                       source_address: Any = None, **kwargs: Any) -> Any:
    host, port = address
    resolved = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0] if host else host
    if any(a == resolved for a, _ in _listeners):  # a lab address: refused there if nothing listens
        if timeout is socket._GLOBAL_DEFAULT_TIMEOUT:
            timeout = socket.getdefaulttimeout()
        return open_connection(resolved, port, timeout=timeout)
    return _system_create_connection(address, timeout, source_address, **kwargs)


def install() -> None:
    """Reach the lab's addresses through this network, and TLS on it (see :mod:`mailtls.sim.tls`)."""
    socket.create_connection = _create_connection
    tls.install()


# -- A line-based session (SMTP or IMAP) served on a connection -------------------------------------


class Events:
    """What a server logs of one connection hears from :class:`LineServer` (each method does nothing
    here; a server's log overrides those it needs).

    The connection itself is logged by whoever accepts it, before the greeting.
    """

    def tls_started(self, tls: Any) -> None:
        """A TLS handshake finished (``tls`` has ``version()`` and ``cipher()``)."""

    def tls_failed(self, failure: Exception | None) -> None:
        """A TLS handshake did not finish: the engine's error, or None when the client hung up during it."""

    def exchanged(self, line: bytes, reply: Reply | None) -> None:
        """One line from the client (with its line ending) and the session's reply to it."""

    def ended(self, by_client: bool) -> None:
        """The connection is over: the client hung up (``by_client``), or the server did."""


class LineServer:
    """Greeting, then lines in and replies out; TLS when the session asks for it.

    ``start_tls`` makes the server side of a TLS session that sends through the connection
    (see :mod:`mailtls.sim.tls`); ``on_tls`` hears of each finished handshake, ``events`` of the
    connection's life (:class:`Events`). ``alert_on_failure=False`` hangs up after a failed
    handshake without sending the engine's alert, as Dovecot 2.3 does (its client gets an EOF:
    measured with 2.3.19.1, where 2.4.1 sends the alert).
    """

    def __init__(self, connection: Connection, session: LineSession,
                 start_tls: Callable[[Callable[[bytes], None]], Any] | None,
                 implicit_tls: bool, on_tls: Callable[[Any], None] | None = None,
                 events: Events | None = None, alert_on_failure: bool = True) -> None:
        self.connection = connection
        self.session = session
        self.start_tls = start_tls
        self.on_tls = on_tls
        self.events = events or Events()
        self.alert_on_failure = alert_on_failure
        self.tls: Any = None
        self.buffer = b""
        self.then: bytes | None = None  # a reply's ``then``: said at the client's next bytes, then hang up
        self.greeted = False
        self.over = False
        if implicit_tls:
            self.tls = start_tls(connection.send)  # type: ignore[misc]  # the greeting waits for the handshake
        else:
            self.write(session.greeting())
            self.greeted = True

    def write(self, data: bytes) -> None:
        if self.tls is not None:
            self.tls.write(data)
        else:
            self.connection.send(data)

    def end(self, by_client: bool) -> None:
        if not self.over:
            self.over = True
            self.events.ended(by_client)
        if not by_client:
            self.connection.close()

    def received(self, data: bytes) -> None:
        if self.connection.closed_by_server:
            return
        if self.then is not None:
            self.connection.send(self.then)
            self.end(by_client=False)
            return
        if self.tls is not None:
            was_ready = self.tls.ready
            sent = len(self.connection.to_client)
            try:
                data = self.tls.feed(data)
            except EOFError:  # the client closed the TLS session (close_notify): the server hangs up too
                self.end(by_client=True)
                self.connection.close()
                return
            except (OSError, ValueError) as failure:  # a failed handshake or a TLS alert: hang up
                if not was_ready:
                    if not self.alert_on_failure:
                        del self.connection.to_client[sent:]
                    self.events.tls_failed(failure)
                self.end(by_client=False)
                return
            if self.tls.ready and not was_ready:
                if self.on_tls:
                    self.on_tls(self.tls)
                self.events.tls_started(self.tls)
                if not self.greeted:
                    self.greeted = True
                    self.write(self.session.greeting())
        self.buffer += data
        while b"\n" in self.buffer or len(self.buffer) > BUFFER_LIMIT:
            line, newline, self.buffer = self.buffer.partition(b"\n")
            reply: Reply | None = self.session.receive(line + newline)
            self.events.exchanged(line + newline, reply)
            if reply is None:
                continue
            self.write(reply.data)
            if reply.then:
                self.then = reply.then
                return
            if reply.close:
                self.end(by_client=False)
                return
            if reply.start_tls:
                self.buffer = b""  # pipelined commands sent in clear are discarded (CVE-2011-0411)
                self.tls = self.start_tls(self.connection.send)  # type: ignore[misc]
                return

    def hung_up(self) -> None:
        if self.tls is not None and not self.tls.ready and not self.over:
            self.events.tls_failed(None)
        self.end(by_client=True)
