"""TLS on the simulated network, with the standard ``ssl`` module over memory BIOs.

A virtual socket has no file descriptor, so ``ssl.SSLContext.wrap_socket`` cannot take it.
``install()`` teaches ``wrap_socket`` to wrap a virtual socket in :class:`ClientSocket`, which
runs the very same context (its CA, its ``verify_mode`` and ``check_hostname``) through an
``ssl.SSLObject``. So a notebook's ``starttls(context=...)`` verifies for real, and fails as it
fails on a real network. :class:`ServerSide` is the server's half of a session.

In the browser, where ``ssl`` is a stub, :mod:`mailtls.sim.browser_tls` puts tlslite-ng
behind the same interface (and CPython uses it too after ``use("tlslite")``).
"""

from __future__ import annotations

import functools
import socket
import ssl
import sys
import warnings
from collections.abc import Callable
from typing import Any

from mailtls.sim.sockets import SocketLike

CHUNK = 1 << 16
ENGINES = ("ssl", "tlslite")
# In the browser the ``ssl`` module cannot do TLS; CPython can use tlslite too, to test that path.
_engine = "tlslite" if sys.platform == "emscripten" else "ssl"


def use(engine: str) -> str:
    """Run the simulated lab's TLS with ``engine`` (``ssl`` or ``tlslite``) from now on; return the
    previous one.

    Raises ValueError for another name, and for ``ssl`` in the browser, whose ``ssl`` cannot do TLS.
    """
    global _engine
    if engine not in ENGINES or (engine == "ssl" and sys.platform == "emscripten"):
        raise ValueError(f"the simulated lab's TLS engine is one of {', '.join(ENGINES)} "
                         f"(ssl not in the browser), not {engine!r}")
    previous, _engine = _engine, engine
    return previous


def engine_in_use() -> str:
    return _engine


class ServerSide:
    """The server's half of one TLS session, fed with what the client sent."""

    def __init__(self, context: ssl.SSLContext, send: Callable[[bytes], None]) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.send = send
        self.ready = False  # the handshake is done

    def feed(self, data: bytes) -> bytes:
        """Take the client's bytes; answer the handshake; return the plain text that arrived."""
        self.incoming.write(data)
        plain = b""
        try:
            if not self.ready:
                self.tls.do_handshake()
                self.ready = True
            while chunk := self.tls.read(CHUNK):
                plain += chunk
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            raise EOFError("the client closed the TLS session") from None
        finally:
            self._flush()
        return plain

    def write(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def _flush(self) -> None:
        if out := self.outgoing.read():
            self.send(out)

    def version(self) -> str | None:
        return self.tls.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self.tls.cipher()


class ClientSocket(SocketLike):
    """A TLS client socket over a virtual socket, driven by an ``ssl.SSLObject``."""

    def __init__(self, context: ssl.SSLContext, sock: SocketLike, server_hostname: str | None,
                 session: ssl.SSLSession | None = None) -> None:
        self.sock = sock
        self.context = context
        self.server_hostname = server_hostname
        self._timeout = sock.gettimeout()
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname,
                                    session=session)
        self.handshaken = False
        self._run(self.tls.do_handshake)
        self.handshaken = True

    def _run(self, operation: Callable[..., Any], *args: Any) -> Any:
        """Run an SSLObject operation, carrying bytes to and from the server until it completes."""
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(CHUNK)  # the server's answer, or its timeout
                if data:
                    self.incoming.write(data)
                else:
                    self.incoming.write_eof()
            except ssl.SSLError:
                self._flush()  # the alert that tells the server why
                raise
            else:
                self._flush()
                return result

    def _flush(self) -> None:
        if out := self.outgoing.read():
            try:
                self.sock.sendall(out)
            except BrokenPipeError:
                # The server has hung up. On a real network the kernel takes these bytes all the same
                # (only the FIN has arrived), and the read that follows finds the end of the stream.
                if self.handshaken:
                    raise

    def recv(self, size: int, flags: int = 0) -> bytes:
        try:
            return self._run(self.tls.read, size)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._run(self.tls.write, bytes(data))

    def getpeername(self) -> tuple[str, int]:
        return self.sock.getpeername()  # type: ignore[attr-defined]

    def version(self) -> str | None:
        return self.tls.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self.tls.cipher()

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self.tls.getpeercert(binary_form)

    @property
    def session(self) -> ssl.SSLSession | None:
        return self.tls.session

    @property
    def session_reused(self) -> bool:
        return self.tls.session_reused

    def unwrap(self) -> SocketLike:
        return self.sock

    def close(self) -> None:
        self.sock.close()


_system_wrap_socket = ssl.SSLContext.wrap_socket


def _wrap_socket(context: ssl.SSLContext, sock: Any, server_side: bool = False,
                 do_handshake_on_connect: bool = True, suppress_ragged_eofs: bool = True,
                 server_hostname: str | None = None,
                 session: ssl.SSLSession | None = None) -> Any:
    if isinstance(sock, SocketLike):
        if context.check_hostname and not server_hostname:  # as SSLSocket._create, before any byte is sent
            raise ValueError("check_hostname requires server_hostname")
        try:
            if _engine == "tlslite":
                from mailtls.sim import browser_tls

                return browser_tls.ClientSocket(context, sock, server_hostname, session)
            return ClientSocket(context, sock, server_hostname, session)
        except TimeoutError as silent:  # a server that never answers: the handshake's own timeout
            sock.close()
            raise TimeoutError(handshake_timeout_message()) from silent
        except (OSError, ValueError):
            # SSLSocket._create has detached the socket, and closes it when the handshake fails: the
            # caller's socket is gone (its next send: OSError EBADF) and the server sees the client leave.
            sock.close()
            raise
    return _system_wrap_socket(context, sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                               server_hostname, session)


@functools.cache
def handshake_timeout_message() -> str:
    """The text of the TimeoutError CPython's ``ssl`` raises when a handshake times out:
    ``_ssl.c:LINE: The handshake operation timed out``, LINE being the line of this Python's
    ``_ssl.c``. Measured once, on a socket pair whose other end never answers (1 ms). Where
    Python has no socket pair (Pyodide), the text without its ``_ssl.c:LINE:`` prefix."""
    text = "The handshake operation timed out"
    try:
        ours, theirs = socket.socketpair()
    except (AttributeError, OSError):
        return text
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        ours.settimeout(0.001)
        _system_wrap_socket(context, ours)
    except TimeoutError as timeout:
        text = str(timeout)
    except (OSError, ValueError):
        pass
    finally:
        ours.close()
        theirs.close()
    return text


VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")  # Dovecot's ssl_min_protocol words, oldest first
# OpenSSL's default security level on Debian (and CPython's): 2, which refuses TLS 1.0 and 1.1,
# whose handshakes sign with SHA-1 (OpenSSL's SSL_CTX_set_security_level(3)).
DEFAULT_SECURITY_LEVEL = 2


def tls_version(name: str) -> ssl.TLSVersion:
    """``ssl.TLSVersion`` for a version word ("TLSv1" ... "TLSv1.3"); ValueError for another word."""
    if name not in VERSIONS:
        raise ValueError(f"a TLS version is one of {', '.join(VERSIONS)}, not {name!r}")
    return getattr(ssl.TLSVersion, name.replace(".", "_"))


def server_context(certfile: str | None, keyfile: str | None, minimum: str = "TLSv1.2",
                   maximum: str = "TLSv1.3", security_level: int | None = None) -> ssl.SSLContext:
    """What a simulated server runs TLS with: its certificate files and its versions.

    ``minimum`` and ``maximum`` are version words ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", as
    Dovecot's ``ssl_min_protocol``); ValueError for another word. ``security_level`` is OpenSSL's
    (SSL_CTX_set_security_level(3)): at 1 or more OpenSSL refuses to sign a TLS 1.0 or 1.1
    handshake, so a client that gets that far receives an internal-error alert; None means 0 when
    ``minimum`` is below TLS 1.2 (as Postfix sets it, or "@SECLEVEL=0" in Dovecot's
    ``ssl_cipher_list``), else Debian's default, 2. ``certfile`` None means no usable certificate:
    every handshake then fails as against ``openssl s_server -nocert`` (the client gets
    ``ssl.SSLError`` SSLV3_ALERT_HANDSHAKE_FAILURE, the server NO_SHARED_CIPHER), after the
    version check (a version mismatch still gives the protocol-version alert).
    Raises what ``load_cert_chain`` raises for unreadable or unusable files.
    """
    low, high = tls_version(minimum), tls_version(maximum)
    if security_level is None:
        security_level = 0 if VERSIONS.index(minimum) < VERSIONS.index("TLSv1.2") else DEFAULT_SECURITY_LEVEL
    with warnings.catch_warnings():  # ssl warns that TLS 1.0 and 1.1 are deprecated: a server may allow them
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version, context.maximum_version = low, high
    if security_level != DEFAULT_SECURITY_LEVEL:
        context.set_ciphers(f"DEFAULT:@SECLEVEL={security_level}")
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    # For tlslite, which reads the files itself and cannot ask a stub context for its level.
    context.mailtls_files = (certfile, keyfile)  # type: ignore[attr-defined]
    context.mailtls_security_level = security_level  # type: ignore[attr-defined]
    return context


def server_side(context: ssl.SSLContext, send: Callable[[bytes], None]) -> Any:
    """The server's half of a new TLS session."""
    if _engine == "tlslite":
        from mailtls.sim import browser_tls

        return browser_tls.ServerSide(context, send)
    return ServerSide(context, send)


_system_set_ciphers = ssl.SSLContext.set_ciphers


def _set_ciphers(context: ssl.SSLContext, ciphers: str) -> None:
    _system_set_ciphers(context, ciphers)
    # Pyodide's stub keeps nothing of it; tlslite reads the list and the security level from here.
    context.mailtls_ciphers = ciphers  # type: ignore[attr-defined]


def install() -> None:
    """Make ``wrap_socket`` accept virtual sockets, and ``set_ciphers`` remember its string."""
    ssl.SSLContext.wrap_socket = _wrap_socket  # type: ignore[method-assign]
    ssl.SSLContext.set_ciphers = _set_ciphers  # type: ignore[method-assign]
