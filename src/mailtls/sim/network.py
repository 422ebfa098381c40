"""The simulated lab's network: the lab's addresses and ports, reached without leaving the process.

``install()`` replaces ``socket.create_connection`` (which smtplib and imaplib use) so that a
connection to a lab address gets one end of a ``socket.socketpair()``; the other end is served
by a thread running the simulated server. The client's socket is a real socket, so the standard
``ssl`` module does real TLS on it, against the lab CA, with real host-name checks. Connections
to anything else go to the real ``socket.create_connection``.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from mailtls.backends.common import GATEWAY  # clients on the machine connect from here, as natively
from mailtls.sim.smtpd import Reply

SERVER_TIMEOUT = 120.0  # a server thread gives up on a silent client after this long
BUFFER_LIMIT = 1 << 20

# (address, port) -> a function that serves one connection on the given server-side socket
Listener = Callable[[socket.socket, str], None]
_listeners: dict[tuple[str, int], Listener] = {}
_system_create_connection = socket.create_connection


def listen(address: str, port: int, serve: Listener) -> None:
    _listeners[(address, port)] = serve


def clear() -> None:
    _listeners.clear()


def open_connection(address: str, port: int, client_address: str = str(GATEWAY),
                    timeout: float | None = None) -> socket.socket:
    """A connected socket to a simulated server, or ConnectionRefusedError as a real host gives."""
    serve = _listeners.get((address, port))
    if serve is None:
        raise ConnectionRefusedError(111, "Connection refused")
    client, server = socket.socketpair()
    server.settimeout(SERVER_TIMEOUT)
    client.settimeout(timeout)
    threading.Thread(target=_serve_quietly, args=(serve, server, client_address), daemon=True).start()
    return client


def _serve_quietly(serve: Listener, server: socket.socket, client_address: str) -> None:
    try:
        serve(server, client_address)
    except (OSError, ssl.SSLError, ValueError):
        pass  # the client went away, or never finished its handshake: as with a real server
    finally:
        server.close()


def _create_connection(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,
                       source_address: Any = None, **kwargs: Any) -> socket.socket:
    host, port = address
    resolved = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0] if host else host
    if any(a == resolved for a, _ in _listeners):  # a lab address: refused there if nothing listens
        if timeout is socket._GLOBAL_DEFAULT_TIMEOUT:
            timeout = socket.getdefaulttimeout()
        return open_connection(resolved, port, timeout=timeout)
    return _system_create_connection(address, timeout, source_address, **kwargs)


def install() -> None:
    socket.create_connection = _create_connection


# -- Serving a line-based session (SMTP or IMAP) over a socket ------------------------------------


def serve_session(sock: socket.socket, session: Any, tls_context: ssl.SSLContext | None,
                  implicit_tls: bool, on_tls: Callable[[ssl.SSLSocket], None] | None = None) -> None:
    """Greeting, then lines in and replies out; TLS when the session asks for it."""
    if implicit_tls:
        sock = tls_context.wrap_socket(sock, server_side=True)  # type: ignore[union-attr]
        if on_tls:
            on_tls(sock)
    sock.sendall(session.greeting())
    buffer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        buffer += data
        while b"\n" in buffer or len(buffer) > BUFFER_LIMIT:
            line, newline, buffer = buffer.partition(b"\n")
            reply: Reply | None = session.receive(line + newline)
            if reply is None:
                continue
            sock.sendall(reply.data)
            if reply.close:
                return
            if reply.start_tls:
                buffer = b""  # pipelined commands sent in clear are discarded (CVE-2011-0411)
                sock = tls_context.wrap_socket(sock, server_side=True)  # type: ignore[union-attr]
                if on_tls:
                    on_tls(sock)
