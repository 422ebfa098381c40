"""The socket interface of the simulated network: what its sockets, plain and TLS, have in common.

smtplib, imaplib, ``ssl`` and tlslite-ng use a small part of a socket: ``recv``, ``sendall``,
``makefile``, timeouts. :class:`SocketLike` gives that part on top of two methods, ``recv`` and
``sendall``, for :class:`mailtls.sim.network.VirtualSocket` (a TCP connection on the simulated
network) and for the TLS sockets over it (:mod:`mailtls.sim.tls`, :mod:`mailtls.sim.browser_tls`).
"""

from __future__ import annotations

import io
import socket
from typing import Any


class SocketLike:
    """What smtplib, imaplib and tlslite use of a socket, on top of ``recv`` and ``sendall``."""

    family, type, proto = socket.AF_INET, socket.SOCK_STREAM, 0
    _timeout: float | None = None

    def recv(self, size: int, flags: int = 0) -> bytes:
        raise NotImplementedError

    def sendall(self, data: bytes, flags: int = 0) -> None:
        raise NotImplementedError

    def send(self, data: bytes, flags: int = 0) -> int:
        self.sendall(data)
        return len(data)

    def recv_into(self, buffer: Any, size: int = 0, flags: int = 0) -> int:
        data = self.recv(size or len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def makefile(self, mode: str = "r", buffering: int | None = None, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_Reader(self))

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def setsockopt(self, *args: Any) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def shutdown(self, how: int) -> None:
        pass

    def __enter__(self) -> SocketLike:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class _Reader(io.RawIOBase):
    def __init__(self, sock: SocketLike) -> None:
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.sock.recv_into(buffer)
