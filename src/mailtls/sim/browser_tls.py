"""TLS in the browser: tlslite-ng behind the interface of the standard ``ssl`` module.

In Pyodide, ``ssl`` is a stub: its ``SSLContext`` keeps the settings a program makes (CA file,
``verify_mode``, ``check_hostname``, versions, certificate files) but cannot do a handshake.
:func:`mailtls.sim.tls.install` makes ``wrap_socket`` hand a virtual socket to
:class:`ClientSocket`, which does a real TLS handshake with tlslite-ng (pure Python) and then
verifies the server's chain and name against the context's CA as OpenSSL would, raising
``ssl.SSLCertVerificationError`` with OpenSSL's codes and messages. :class:`ServerSide` is a
server's half of a session. CPython can use them too (``MAILTLS_SIM_TLS=tlslite``), which is how
the tests exercise the browser's code without a browser.
"""

from __future__ import annotations

import errno
import os
import ssl
import sys
import types
from collections.abc import Callable
from typing import Any

try:
    import dbm  # noqa: F401
except ImportError:  # Pyodide has no dbm; tlslite-ng imports it for key databases on disk, never used here
    sys.modules["dbm"] = types.ModuleType("dbm")

from tlslite import HandshakeSettings, TLSConnection, X509CertChain  # noqa: E402
from tlslite.constants import CipherSuite  # noqa: E402
from tlslite.errors import TLSAbruptCloseError, TLSError  # noqa: E402
from tlslite.utils.keyfactory import parsePEMKey  # noqa: E402

from mailtls.sim.sockets import SocketLike  # noqa: E402
from mailtls.sim.x509 import Certificate, VerificationError, pem_certificates, verify_chain, verify_name  # noqa: E402

VERSION_NAMES = {(3, 1): "TLSv1", (3, 2): "TLSv1.1", (3, 3): "TLSv1.2", (3, 4): "TLSv1.3"}
VERSION_NUMBERS = {"TLSv1": (3, 1), "TLSv1_1": (3, 2), "TLSv1_2": (3, 3), "TLSv1_3": (3, 4)}
TLS_RECORD_TYPES = (20, 21, 22, 23)  # the first byte of every TLS record
SOURCE = "(_ssl.c:1010)"  # where CPython's messages say OpenSSL's errors come from


def _settings(context: Any) -> HandshakeSettings:
    """TLS 1.2 and 1.3 as the context allows; X25519 and AES-256-GCM first, as OpenSSL chooses."""
    settings = HandshakeSettings()
    settings.minVersion = max(_version(context.minimum_version, (3, 3)), (3, 3))
    settings.maxVersion = _version(context.maximum_version, (3, 4))
    settings.cipherNames = ["aes256gcm", "aes128gcm", "chacha20-poly1305"]
    settings.keyShares = ["x25519"]
    return settings


def _version(value: Any, default: tuple[int, int]) -> tuple[int, int]:
    """tlslite's version number for an ``ssl.TLSVersion`` (the minimum and maximum supported: default)."""
    for name, number in VERSION_NUMBERS.items():
        if value == getattr(ssl.TLSVersion, name, None):
            return number
    return default


def _error(cls: type[ssl.SSLError], reason: str, text: str) -> ssl.SSLError:
    error = cls(1, f"[SSL: {reason}] {text} {SOURCE}")
    error.reason, error.library = reason, "SSL"  # type: ignore[misc]
    return error


def describe(connection: TLSConnection) -> tuple[str, tuple[str, str, int]]:
    """(version, cipher) as ``SSLSocket.version()`` and ``cipher()`` give them."""
    version = VERSION_NAMES.get(tuple(connection.version), "TLSv1.3")
    name = CipherSuite.ietfNames.get(connection.session.cipherSuite, "")
    return version, (name, version, 128 if "128" in name else 256)


class _FirstRecordCheck:
    """A socket whose first answer must be TLS: "220 ..." in its place is OpenSSL's wrong version."""

    def __init__(self, sock: SocketLike) -> None:
        self.sock = sock
        self.checked = False

    def recv(self, size: int) -> bytes:
        data = self.sock.recv(size)
        if not self.checked and data:
            self.checked = True
            if data[0] not in TLS_RECORD_TYPES:
                raise _error(ssl.SSLError, "WRONG_VERSION_NUMBER", "wrong version number")
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class ClientSocket(SocketLike):
    """A TLS client socket over a virtual socket, with tlslite-ng doing the handshake."""

    def __init__(self, context: Any, sock: SocketLike, server_hostname: str | None,
                 session: Any = None) -> None:
        self.sock = sock
        self.context = context
        self.server_hostname = server_hostname
        self._timeout = sock.gettimeout()
        self.tls = TLSConnection(_FirstRecordCheck(sock))
        try:
            self.tls.handshakeClientCert(serverName=server_hostname or "", settings=_settings(context),
                                         session=session)
        except TLSError as failure:
            raise _error(ssl.SSLError, "SSLV3_ALERT_HANDSHAKE_FAILURE",
                         str(failure) or type(failure).__name__) from None
        if self.tls.session.serverCertChain is None:  # resumed: the certificate is the one shown before
            self.tls.session.serverCertChain = session.serverCertChain
        shown = self.tls.session.serverCertChain
        self.chain = [Certificate.from_der(bytes(c.bytes)) for c in shown.x509List]
        self._verify()

    def _trusted(self) -> list[Certificate]:
        if hasattr(self.context, "_ca_data"):  # Pyodide's ssl keeps the CA file's text
            return pem_certificates(getattr(self.context, "_ca_data", "") or "")
        return [Certificate.from_der(der) for der in self.context.get_ca_certs(binary_form=True)]

    def _verify(self) -> None:
        if self.context.verify_mode == ssl.CERT_NONE:
            return
        try:
            verify_chain(self.chain, self._trusted())
            if self.context.check_hostname and self.server_hostname:
                verify_name(self.chain[0], self.server_hostname)
        except VerificationError as failure:
            self.sock.close()  # OpenSSL sends an alert and the server hangs up
            error = _error(ssl.SSLCertVerificationError, "CERTIFICATE_VERIFY_FAILED",
                           f"certificate verify failed: {failure.message}")
            error.verify_code, error.verify_message = failure.code, failure.message  # type: ignore[attr-defined]
            raise error from None

    def recv(self, size: int, flags: int = 0) -> bytes:
        try:
            return bytes(self.tls.read(max=size, min=1))
        except TLSAbruptCloseError:
            return b""
        except TLSError as failure:
            raise _error(ssl.SSLError, "SSLV3_ALERT_BAD_RECORD_MAC", str(failure)) from None

    def sendall(self, data: bytes, flags: int = 0) -> None:
        if self.tls.closed:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        self.tls.write(bytes(data))

    def getpeername(self) -> tuple[str, int]:
        return self.sock.getpeername()  # type: ignore[attr-defined]

    def version(self) -> str:
        return describe(self.tls)[0]

    def cipher(self) -> tuple[str, str, int]:
        return describe(self.tls)[1]

    def getpeercert(self, binary_form: bool = False) -> Any:
        if binary_form:
            return self.chain[0].der
        return self.chain[0].as_dict() if self.context.verify_mode != ssl.CERT_NONE else {}

    @property
    def session(self) -> Any:
        return self.tls.session

    @property
    def session_reused(self) -> bool:
        return bool(self.tls.resumed)

    def close(self) -> None:
        self.sock.close()


class _ServerSocket:
    """What tlslite's server reads from: the client's bytes so far, else "would block"."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.inbox = bytearray()
        self.send_to_client = send

    def recv(self, size: int) -> bytes:
        if not self.inbox:
            raise BlockingIOError(errno.EWOULDBLOCK, "Resource temporarily unavailable")
        data = bytes(self.inbox[:size])
        del self.inbox[:size]
        return data

    def send(self, data: bytes) -> int:
        self.send_to_client(bytes(data))
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)


class ServerSide:
    """The server's half of one TLS session: tlslite's asynchronous server, fed by the network."""

    def __init__(self, context: Any, send: Callable[[bytes], None]) -> None:
        certfile, keyfile = context.mailtls_files
        with open(certfile) as certificates, open(keyfile) as key:
            chain = X509CertChain()
            chain.parsePemList(certificates.read())
            private_key = parsePEMKey(key.read(), private=True)
        settings = _settings(context)
        if not hasattr(context, "mailtls_ticket_keys"):  # one key per server, so sessions resume
            context.mailtls_ticket_keys = [bytearray(os.urandom(32))]
        settings.ticketKeys = context.mailtls_ticket_keys
        self.socket = _ServerSocket(send)
        self.tls = TLSConnection(self.socket)
        self.steps = self.tls.handshakeServerAsync(certChain=chain, privateKey=private_key, settings=settings)
        self.reading: Any = None
        self.ready = False

    def feed(self, data: bytes) -> bytes:
        """Take the client's bytes; answer the handshake; return the plain text that arrived."""
        self.socket.inbox += data
        try:
            if not self.ready:
                for step in self.steps:
                    if step == 0:  # waiting for the client
                        return b""
                self.ready = True
            plain = b""
            while True:
                self.reading = self.reading or self.tls.readAsync()
                for step in self.reading:
                    if step == 0:
                        return plain
                    if step != 1:
                        self.reading = None
                        if not step:
                            raise EOFError("the client closed the TLS session")
                        plain += bytes(step)
                        break
                else:
                    self.reading = None
        except TLSError as failure:
            raise ConnectionResetError(errno.ECONNRESET, f"TLS: {failure}") from None

    def write(self, data: bytes) -> None:
        for _ in self.tls.writeAsync(data):
            pass

    def version(self) -> str:
        return describe(self.tls)[0]

    def cipher(self) -> tuple[str, str, int]:
        return describe(self.tls)[1]
