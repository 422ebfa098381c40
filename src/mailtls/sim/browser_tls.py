"""TLS in the browser: tlslite-ng behind the interface of the standard ``ssl`` module.

In Pyodide, ``ssl`` is a stub: its ``SSLContext`` keeps the settings a program makes (CA file,
``verify_mode``, ``check_hostname``, versions, certificate files) but cannot do a handshake.
:func:`mailtls.sim.tls.install` makes ``wrap_socket`` hand a virtual socket to
:class:`ClientSocket`, which does a real TLS handshake with tlslite-ng (pure Python) and
verifies the server's chain and name against the context's CA as OpenSSL would, before it sends
its Finished message. :class:`ServerSide` is a server's half of a session. CPython can use them
too (``MAILTLS_SIM_TLS=tlslite``), which is how the tests exercise the browser's code without a
browser, and compare it with the ``ssl`` engine (``tests/test_tls_engines.py``).

Both halves behave as OpenSSL 3 with CPython's ``ssl`` on top, failures included: the same
exception class, ``reason``, message, and for certificates ``verify_code`` and
``verify_message``. What OpenSSL decides and tlslite would decide otherwise is decided here:

- the server's version: the highest of the client's ``supported_versions`` in the server's range,
  or without that extension the client's version capped at the server's maximum; below the
  server's minimum, a protocol-version alert (OpenSSL's ``ssl_choose_server_version``);
- the server's cipher suite, by the server's preference, among the suites OpenSSL's DEFAULT list
  has for the lab's ECDSA keys; none (or no certificate) is a handshake-failure alert;
- security level 1 and above refuse TLS 1.0 and 1.1 (they sign with SHA-1): the server answers
  with an internal-error alert, the client with "legacy sigalg disallowed or unsupported";
- a client gets "unsupported protocol" for a server's version below its minimum;
- a server that hangs up during the handshake gives what CPython gives on a real network:
  ``ssl.SSLEOFError``, or ``ssl.SSLZeroReturnError`` for a context with OP_IGNORE_UNEXPECTED_EOF
  (:func:`closed_by_peer`).
"""

from __future__ import annotations

import errno
import os
import re
import ssl
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

try:
    import dbm  # noqa: F401
except ImportError:  # Pyodide has no dbm; tlslite-ng imports it for key databases on disk, never used here
    sys.modules["dbm"] = types.ModuleType("dbm")

from tlslite import HandshakeSettings, TLSConnection, X509CertChain  # noqa: E402
from tlslite.constants import AlertDescription, CipherSuite, ExtensionType  # noqa: E402
from tlslite.errors import (  # noqa: E402
    TLSAbruptCloseError,
    TLSError,
    TLSLocalAlert,
    TLSRemoteAlert,
)
from tlslite.messages import ClientHello  # noqa: E402
from tlslite.utils.dns_utils import is_valid_hostname  # noqa: E402
from tlslite.utils.keyfactory import parsePEMKey  # noqa: E402

from mailtls.sim.sockets import SocketLike  # noqa: E402
from mailtls.sim.x509 import (  # noqa: E402
    Certificate,
    VerificationError,
    openssl_address,
    pem_certificates,
    verify_chain,
    verify_name,
    verify_times,
)

VERSION_NAMES = {(3, 1): "TLSv1", (3, 2): "TLSv1.1", (3, 3): "TLSv1.2", (3, 4): "TLSv1.3"}
VERSION_NUMBERS = {"TLSv1": (3, 1), "TLSv1_1": (3, 2), "TLSv1_2": (3, 3), "TLSv1_3": (3, 4)}
OLDEST, NEWEST = (3, 1), (3, 4)
TLS_RECORD_TYPES = (20, 21, 22, 23)  # the first byte of every TLS record
DEFAULT_SECURITY_LEVEL = 2  # Debian's OpenSSL
EXTENSION_SUPPORTED_VERSIONS = 43  # RFC 8446, section 4.2
GROUPS = ["x25519", "secp256r1", "x448", "secp521r1", "secp384r1"]  # OpenSSL 3.0's default groups, in order

# The suites OpenSSL's DEFAULT list has for an ECDSA key, in its order (the server's preference):
# tlslite's number -> (OpenSSL's name, the protocol OpenSSL names for it, secret bits), as
# ``SSLSocket.cipher()`` gives them. TLS 1.3's three are not affected by ``set_ciphers``.
SUITES: dict[int, tuple[str, str, int]] = {
    CipherSuite.TLS_AES_256_GCM_SHA384: ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256),
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: ("TLS_CHACHA20_POLY1305_SHA256", "TLSv1.3", 256),
    CipherSuite.TLS_AES_128_GCM_SHA256: ("TLS_AES_128_GCM_SHA256", "TLSv1.3", 128),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLSv1.2", 256),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLSv1.2", 256),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLSv1.2", 128),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384: ("ECDHE-ECDSA-AES256-SHA384", "TLSv1.2", 256),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: ("ECDHE-ECDSA-AES128-SHA256", "TLSv1.2", 128),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: ("ECDHE-ECDSA-AES256-SHA", "TLSv1.0", 256),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: ("ECDHE-ECDSA-AES128-SHA", "TLSv1.0", 128),
}
# tlslite's settings that allow exactly one of them: (cipher, MAC)
SUITE_SETTINGS = {
    CipherSuite.TLS_AES_256_GCM_SHA384: ("aes256gcm", "aead"),
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: ("chacha20-poly1305", "aead"),
    CipherSuite.TLS_AES_128_GCM_SHA256: ("aes128gcm", "aead"),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: ("aes256gcm", "aead"),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: ("chacha20-poly1305", "aead"),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: ("aes128gcm", "aead"),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384: ("aes256", "sha384"),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: ("aes128", "sha256"),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: ("aes256", "sha"),
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: ("aes128", "sha"),
}
# Other suites a client may name, by OpenSSL's names (so that a restricted list is honoured)
OTHER_SUITES = {
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "ECDHE-RSA-AES256-GCM-SHA384",
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-RSA-CHACHA20-POLY1305",
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: "ECDHE-RSA-AES256-SHA",
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: "ECDHE-RSA-AES128-SHA",
    CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384: "AES256-GCM-SHA384",
    CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256: "AES128-GCM-SHA256",
    CipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA256: "AES256-SHA256",
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256: "AES128-SHA256",
    CipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA: "AES256-SHA",
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA: "AES128-SHA",
    CipherSuite.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384: "DHE-RSA-AES256-GCM-SHA384",
    CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256: "DHE-RSA-AES128-GCM-SHA256",
}
# The anonymous suite (no certificate: RFC 5246, appendix F.1.1.1) that Postfix's smtpd without a
# certificate and Postfix's client agree on (measured with Postfix 3.7.11 and 3.10.13, TLS 1.2).
# OpenSSL's ALL list has it; DEFAULT does not. Other anonymous suites are not modelled.
ANONYMOUS_SUITE = CipherSuite.TLS_DH_ANON_WITH_AES_256_GCM_SHA384
OTHER_SUITES[ANONYMOUS_SUITE] = "ADH-AES256-GCM-SHA384"
OPENSSL_NAMES = {**{n: s[0] for n, s in SUITES.items()}, **OTHER_SUITES}

# OpenSSL's reason for an alert received (ssl/ssl_err.c: SSL_AD_REASON_OFFSET + description)
ALERT_REASONS = {
    AlertDescription.unexpected_message: "SSLV3_ALERT_UNEXPECTED_MESSAGE",
    AlertDescription.bad_record_mac: "SSLV3_ALERT_BAD_RECORD_MAC",
    AlertDescription.handshake_failure: "SSLV3_ALERT_HANDSHAKE_FAILURE",
    AlertDescription.bad_certificate: "SSLV3_ALERT_BAD_CERTIFICATE",
    AlertDescription.unsupported_certificate: "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    AlertDescription.certificate_revoked: "SSLV3_ALERT_CERTIFICATE_REVOKED",
    AlertDescription.certificate_expired: "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    AlertDescription.certificate_unknown: "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    AlertDescription.illegal_parameter: "SSLV3_ALERT_ILLEGAL_PARAMETER",
    AlertDescription.unknown_ca: "TLSV1_ALERT_UNKNOWN_CA",
    AlertDescription.access_denied: "TLSV1_ALERT_ACCESS_DENIED",
    AlertDescription.decode_error: "TLSV1_ALERT_DECODE_ERROR",
    AlertDescription.decrypt_error: "TLSV1_ALERT_DECRYPT_ERROR",
    AlertDescription.protocol_version: "TLSV1_ALERT_PROTOCOL_VERSION",
    AlertDescription.insufficient_security: "TLSV1_ALERT_INSUFFICIENT_SECURITY",
    AlertDescription.internal_error: "TLSV1_ALERT_INTERNAL_ERROR",
    AlertDescription.inappropriate_fallback: "TLSV1_ALERT_INAPPROPRIATE_FALLBACK",
    AlertDescription.user_canceled: "TLSV1_ALERT_USER_CANCELLED",
    AlertDescription.unrecognized_name: "TLSV1_UNRECOGNIZED_NAME",
}
# The alert an OpenSSL client sends for a certificate it refuses (ssl/statem/statem_lib.c, x509table)
VERIFY_ALERTS = {
    2: AlertDescription.unknown_ca, 18: AlertDescription.unknown_ca, 19: AlertDescription.unknown_ca,
    20: AlertDescription.unknown_ca, 7: AlertDescription.decrypt_error,
    9: AlertDescription.bad_certificate, 10: AlertDescription.certificate_expired,
}


# -- Errors as CPython's ssl makes them -----------------------------------------------------------------


def _ssl_source() -> str:
    """Where this CPython's messages say OpenSSL's errors come from, e.g. "(_ssl.c:992)": the line of
    ``_ssl.c`` that reports a failed handshake, found by failing one; "(_ssl.c:1010)" in Pyodide."""
    incoming = ssl.MemoryBIO()
    try:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(incoming, ssl.MemoryBIO(), server_hostname="x")
        incoming.write(b"220 not TLS\r\n")
        tls.do_handshake()
    except ssl.SSLError as failure:
        found = re.search(r"\(_ssl\.c:\d+\)", str(failure))
        if found:
            return found.group(0)
    except NotImplementedError:  # Pyodide's stub
        pass
    return "(_ssl.c:1010)"


SOURCE = _ssl_source()


def _known_reason(reason: str) -> str | None:
    """``reason`` as this Python's ``ssl`` names it: None where its table of OpenSSL's reasons lacks
    it (Python 3.11 has no LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED). Pyodide's stub has no table."""
    names = getattr(sys.modules.get("_ssl"), "err_names_to_codes", None)
    return reason if names is None or reason in names else None


def _error(cls: type[ssl.SSLError], reason: str, text: str | None = None) -> ssl.SSLError:
    """An ``ssl`` exception as CPython makes it from an OpenSSL error in the SSL library."""
    text = text or reason.lower().replace("_", " ")
    known = _known_reason(reason)
    error = cls(1, f"[SSL: {known}] {text} {SOURCE}" if known else f"[SSL] {text} {SOURCE}")
    error.reason, error.library = known, "SSL"  # type: ignore[misc]
    return error


def _alert_error(description: int, received: bool) -> ssl.SSLError:
    """What OpenSSL reports for an alert: received, the alert's reason; sent, why it was sent."""
    if received:
        return _error(ssl.SSLError, ALERT_REASONS.get(description, "SSLV3_ALERT_HANDSHAKE_FAILURE"))
    return _error(ssl.SSLError, {AlertDescription.protocol_version: "UNSUPPORTED_PROTOCOL",
                                 AlertDescription.handshake_failure: "NO_SHARED_CIPHER",
                                 AlertDescription.internal_error: "INTERNAL_ERROR",
                                 AlertDescription.decrypt_error: "DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
                                 AlertDescription.bad_record_mac: "DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
                                 }.get(description, "SSL_HANDSHAKE_FAILURE"))


def closed_by_peer(context: Any) -> ssl.SSLError:
    """The end of the stream during a handshake, as CPython reports it for ``context``: a close
    (``SSLZeroReturnError``) when the context has ``OP_IGNORE_UNEXPECTED_EOF``, which CPython 3.10
    to 3.11.3 set by default (Debian 12's 3.11.2 does), else ``SSLEOFError``
    UNEXPECTED_EOF_WHILE_READING (CPython 3.11.4 and later, Pyodide). Measured on 127.0.0.1 with a
    server that reads the ClientHello and hangs up, with Python 3.11.2 and 3.11.7."""
    if getattr(context, "options", 0) & getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0):
        closed = ssl.SSLZeroReturnError(ssl.SSL_ERROR_ZERO_RETURN,
                                        f"TLS/SSL connection has been closed (EOF) {SOURCE}")
        closed.reason = closed.library = None  # type: ignore[misc]  # as CPython's has them
        return closed
    error = _error(ssl.SSLEOFError, "UNEXPECTED_EOF_WHILE_READING", "EOF occurred in violation of protocol")
    error.errno = ssl.SSL_ERROR_EOF
    return error


# -- What a context says --------------------------------------------------------------------------------


def _version(value: Any, default: tuple[int, int]) -> tuple[int, int]:
    """tlslite's version number for an ``ssl.TLSVersion`` (the minimum and maximum supported: default)."""
    for name, number in VERSION_NUMBERS.items():
        if value == getattr(ssl.TLSVersion, name, None):
            return number
    if value == getattr(ssl.TLSVersion, "SSLv3", None):
        return OLDEST  # SSL 3 is never available in OpenSSL 3
    return default


def version_range(context: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """(minimum, maximum) of a context as tlslite numbers, e.g. ((3, 3), (3, 4))."""
    return _version(context.minimum_version, OLDEST), _version(context.maximum_version, NEWEST)


def security_level(context: Any) -> int:
    """OpenSSL's security level of a context: a server's from :func:`mailtls.sim.tls.server_context`,
    CPython's ``security_level``, else "@SECLEVEL=N" in the string given to ``set_ciphers``."""
    level = getattr(context, "mailtls_security_level", None)
    if level is None:
        level = getattr(context, "security_level", None)
    if isinstance(level, int):
        return level
    found = re.search(r"@SECLEVEL=(\d)", getattr(context, "mailtls_ciphers", "") or "")
    return int(found.group(1)) if found else DEFAULT_SECURITY_LEVEL


def offered_suites(context: Any) -> set[int] | None:
    """The TLS 1.2 and older suites (tlslite numbers) a client context allows, None for all of them.

    Only a context given a list (``set_ciphers``, which :func:`mailtls.sim.tls.install` records)
    restricts them: CPython says which (``get_ciphers``); Pyodide's stub does not, so the string is
    read (a string with OpenSSL's keywords, such as DEFAULT, allows all)."""
    if not getattr(context, "mailtls_ciphers", None):
        return None
    names: set[str] = set()
    try:
        names = {c["name"] for c in context.get_ciphers()}
    except (AttributeError, NotImplementedError, ssl.SSLError):
        pass
    if not names:
        words = [w for w in re.split(r"[:, ]+", getattr(context, "mailtls_ciphers", "") or "")
                 if w and not w.startswith("@")]
        if not words or not all(w in OPENSSL_NAMES.values() for w in words):
            return None
        names = set(words)
    return {number for number, name in OPENSSL_NAMES.items() if name in names}


def allows_anonymous(context: Any) -> bool:
    """Whether a context's cipher list has :data:`ANONYMOUS_SUITE`: CPython says it
    (``get_ciphers``); for Pyodide's stub the string is read (ALL, aNULL or ADH, not taken out)."""
    try:
        names = {c["name"] for c in context.get_ciphers()}
    except (AttributeError, NotImplementedError, ssl.SSLError):
        names = set()
    if names:
        return OPENSSL_NAMES[ANONYMOUS_SUITE] in names
    words = re.split(r"[:, ]+", getattr(context, "mailtls_ciphers", "") or "")
    return (any(w in ("ALL", "aNULL", "ADH") for w in words)
            and not any(w in ("!aNULL", "!ADH", "-aNULL", "-ADH") for w in words))


def no_cipher_for_versions(context: Any) -> bool:
    """Whether none of the suites a client context allows can be used at its versions: only TLS 1.2
    suites (AES-GCM, ChaCha20, SHA-256 and SHA-384 MACs) and nothing above TLS 1.1, for example.
    OpenSSL's client then refuses to start (NO_CIPHERS_AVAILABLE). TLS 1.3's suites always remain."""
    low, high = version_range(context)
    if high >= (3, 4):
        return False
    protocols: set[str] = set()
    try:
        protocols = {c["protocol"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"}
    except (AttributeError, NotImplementedError, ssl.SSLError):
        pass
    if not protocols:
        suites = offered_suites(context)
        if suites is None:
            return False
        protocols = {"TLSv1.0" if OPENSSL_NAMES[s].endswith("-SHA") else "TLSv1.2" for s in suites}
    return protocols <= {"TLSv1.2"} and high < (3, 3)


def _versions_between(low: tuple[int, int], high: tuple[int, int]) -> list[tuple[int, int]]:
    return [v for v in ((3, 4), (3, 3), (3, 2), (3, 1)) if low <= v <= high]


def _client_settings(context: Any) -> HandshakeSettings:
    """The client's versions as the context allows them (and only those in supported_versions);
    X25519 first, as OpenSSL."""
    settings = HandshakeSettings()
    low, high = version_range(context)
    settings.minVersion, settings.maxVersion = low, max(low, high)
    settings.versions = _versions_between(low, high) or [low]
    settings.eccCurves, settings.keyShares = list(GROUPS), ["x25519"]
    return settings


def describe(connection: TLSConnection) -> tuple[str, tuple[str, str, int]]:
    """(version, cipher) as ``SSLSocket.version()`` and ``cipher()`` give them."""
    version = VERSION_NAMES.get(tuple(connection.version), "TLSv1.3")
    suite = connection.session.cipherSuite
    name = SUITES.get(suite) or (OPENSSL_NAMES.get(suite, CipherSuite.ietfNames.get(suite, "")), version, 256)
    return version, name


# -- The client --------------------------------------------------------------------------------------


class _Transport:
    """The client's socket for tlslite: its first answer must be TLS ("220 ..." in its place is
    OpenSSL's wrong version number), and what it writes after the server hung up is lost, as a
    real kernel takes it and the next read finds the end of the stream."""

    def __init__(self, sock: SocketLike) -> None:
        self.sock = sock
        self.checked = False
        self.handshaken = False

    def recv(self, size: int) -> bytes:
        data = self.sock.recv(size)
        if not self.checked and data:
            self.checked = True
            if data[0] not in TLS_RECORD_TYPES:
                raise _error(ssl.SSLError, "WRONG_VERSION_NUMBER", "wrong version number")
        return data

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except BrokenPipeError:
            if self.handshaken:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class _ClientConnection(TLSConnection):
    """tlslite's client, with OpenSSL's checks where OpenSSL makes them: the certificate (and the
    security level's refusal of TLS 1.0 and 1.1) when the server's Certificate arrives, before the
    client sends anything more; and only the suites the context allows in the ClientHello."""

    def __init__(self, sock: Any, check: Callable[[Any, tuple[int, int]], ssl.SSLError | None],
                 suites: set[int] | None, anonymous: bool = False) -> None:
        super().__init__(sock)
        self.check = check
        self.suites = suites
        self.anonymous = anonymous  # offer ANONYMOUS_SUITE too (a list with aNULL, as Postfix's client)
        self.failure: ssl.SSLError | None = None

    def _sendMsg(self, msg: Any, randomizeFirstBlock: bool = True, update_hashes: bool = True) -> Iterator:
        # Not a resumption's: its binders (RFC 8446, section 4.2.11.2) sign the list as it is.
        if isinstance(msg, ClientHello) and msg.getExtension(ExtensionType.pre_shared_key) is None:
            if self.suites is not None:
                msg.cipher_suites = [s for s in msg.cipher_suites
                                     if s in self.suites or s in CipherSuite.tls13Suites
                                     or s == CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV]
            if self.anonymous and ANONYMOUS_SUITE not in msg.cipher_suites:
                scsv = CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
                at = msg.cipher_suites.index(scsv) if scsv in msg.cipher_suites else len(msg.cipher_suites)
                msg.cipher_suites.insert(at, ANONYMOUS_SUITE)
        return super()._sendMsg(msg, randomizeFirstBlock, update_hashes)

    def _clientGetKeyFromChain(self, certificate: Any, settings: Any, tack_ext: Any = None) -> Iterator:
        self.failure = self.check(certificate.cert_chain, tuple(self.version))
        if self.failure is not None:
            alert = getattr(self.failure, "mailtls_alert", AlertDescription.internal_error)
            yield from self._sendError(alert, str(self.failure))
        yield from super()._clientGetKeyFromChain(certificate, settings, tack_ext)


class ClientSocket(SocketLike):
    """A TLS client socket over a virtual socket, with tlslite-ng doing the handshake.

    Raises what CPython's ``wrap_socket`` raises: ValueError "check_hostname requires
    server_hostname"; ``ssl.SSLCertVerificationError`` with OpenSSL's ``verify_code`` and
    ``verify_message``; ``ssl.SSLError`` with OpenSSL's reason for an alert or a refused version;
    ``ssl.SSLZeroReturnError`` when the server hangs up. An address as ``server_hostname`` is sent
    without SNI (RFC 6066, section 3) and checked against the certificate's IP addresses.
    """

    def __init__(self, context: Any, sock: SocketLike, server_hostname: str | None,
                 session: Any = None) -> None:
        if context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        self.sock = sock
        self.context = context
        self.server_hostname = server_hostname
        self._timeout = sock.gettimeout()
        self.chain: list[Certificate] = []
        low, high = version_range(context)
        # OpenSSL's client refuses to start, with the alert (as recorded from it) in place of a ClientHello
        if low > high:
            sock.sendall(bytes([21, 3, 3, 0, 2, 2, AlertDescription.protocol_version]))
            raise _error(ssl.SSLError, "NO_PROTOCOLS_AVAILABLE")
        if no_cipher_for_versions(context):
            sock.sendall(bytes([21, 3, 1, 0, 2, 2, AlertDescription.internal_error]))
            raise _error(ssl.SSLError, "NO_CIPHERS_AVAILABLE")
        transport = _Transport(sock)
        self.tls = _ClientConnection(transport, self._check, offered_suites(context),
                                     allows_anonymous(context))
        # OpenSSL sends any name that is not an address; tlslite refuses some (a trailing dot after
        # an address), which the simulated servers would not look at anyway.
        sni = (server_hostname if server_hostname and openssl_address(server_hostname) is None
               and is_valid_hostname(server_hostname.encode()) else None)
        try:
            self.tls.handshakeClientCert(serverName=sni, settings=_client_settings(context), session=session)
        except TLSLocalAlert as failure:
            raise (self.tls.failure or _alert_error(failure.description, received=False)) from None
        except TLSRemoteAlert as failure:
            raise _alert_error(failure.description, received=True) from None
        except TLSAbruptCloseError:
            raise closed_by_peer(context) from None
        except TLSError as failure:
            raise _error(ssl.SSLError, "SSL_HANDSHAKE_FAILURE",
                         str(failure) or type(failure).__name__) from None
        transport.handshaken = True
        if self.tls.session.serverCertChain is None and self.tls.resumed:  # the certificate shown before
            self.tls.session.serverCertChain = session.serverCertChain
        shown = self.tls.session.serverCertChain  # None with an anonymous suite
        self.chain = [Certificate.from_der(bytes(c.bytes)) for c in shown.x509List] if shown else []

    def _trusted(self) -> list[Certificate]:
        if hasattr(self.context, "_ca_data"):  # Pyodide's ssl keeps the CA file's text
            return pem_certificates(getattr(self.context, "_ca_data", "") or "")
        return [Certificate.from_der(der) for der in self.context.get_ca_certs(binary_form=True)]

    def _check(self, shown: Any, version: tuple[int, int]) -> ssl.SSLError | None:
        """OpenSSL's checks of the server's Certificate message (tls_post_process_server_certificate):
        the chain and the name, then the security level's refusal of TLS 1.0 and 1.1."""
        self.chain = [Certificate.from_der(bytes(c.bytes)) for c in shown.x509List]
        if self.context.verify_mode != ssl.CERT_NONE:
            try:
                built = verify_chain(self.chain, self._trusted(), times=False)
                if self.context.check_hostname and self.server_hostname:
                    verify_name(self.chain[0], self.server_hostname)
                verify_times(built)
            except VerificationError as failure:
                error = _error(ssl.SSLCertVerificationError, "CERTIFICATE_VERIFY_FAILED",
                               f"certificate verify failed: {failure.message}")
                error.verify_code, error.verify_message = failure.code, failure.message  # type: ignore[attr-defined]
                error.mailtls_alert = VERIFY_ALERTS.get(failure.code, AlertDescription.bad_certificate)  # type: ignore[attr-defined]
                return error
        if version < (3, 3) and security_level(self.context) > 0:
            error = _error(ssl.SSLError, "LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED")
            error.mailtls_alert = AlertDescription.internal_error  # type: ignore[attr-defined]
            return error
        return None

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
        if not self.chain:  # an anonymous suite: no certificate, as CPython says
            return None
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


# -- The server --------------------------------------------------------------------------------------


@dataclass
class Hello:
    """What OpenSSL's server decides on from a ClientHello (RFC 8446, section 4.1.2)."""

    legacy_version: tuple[int, int]
    suites: list[int]
    supported_versions: list[tuple[int, int]] | None

    @classmethod
    def parse(cls, data: bytes) -> Hello | None:
        """The ClientHello at the start of ``data`` (records as received); None until it is complete.

        Raises ValueError for anything else (tlslite then answers it as it does).
        """
        if len(data) < 5:
            return None
        if data[0] != 22:
            raise ValueError("not a handshake record")
        size = int.from_bytes(data[3:5], "big")
        if len(data) < 5 + size:
            return None
        body = data[5:5 + size]
        try:
            if body[0] != 1 or len(body) < 4 + int.from_bytes(body[1:4], "big"):
                raise ValueError("not a ClientHello in one record")
            legacy = (body[4], body[5])
            position = 6 + 32
            position += 1 + body[position]  # session id
            length = int.from_bytes(body[position:position + 2], "big")
            suites = [int.from_bytes(body[position + 2 + i:position + 4 + i], "big")
                      for i in range(0, length, 2)]
            position += 2 + length
            position += 1 + body[position]  # compression methods
            versions = None
            if position + 2 <= len(body):
                end = position + 2 + int.from_bytes(body[position:position + 2], "big")
                position += 2
                while position + 4 <= end:
                    kind = int.from_bytes(body[position:position + 2], "big")
                    length = int.from_bytes(body[position + 2:position + 4], "big")
                    value = body[position + 4:position + 4 + length]
                    if kind == EXTENSION_SUPPORTED_VERSIONS:
                        versions = [(value[1 + i], value[2 + i]) for i in range(0, value[0], 2)]
                    position += 4 + length
        except IndexError:
            raise ValueError("a truncated ClientHello") from None
        return cls(legacy, suites, versions)


def choose(hello: Hello, low: tuple[int, int], high: tuple[int, int], certificate: bool,
           level: int, anonymous: bool = False) -> tuple[tuple[int, int], int] | tuple[int, str]:
    """OpenSSL's server on a ClientHello: (version, suite), or (alert, the server's reason).

    In OpenSSL's order (tls_early_post_process_client_hello): the version
    (ssl_choose_server_version; TLS 1.3 only with a certificate), the cipher suite by the server's
    preference (ssl3_choose_cipher; without a certificate only :data:`ANONYMOUS_SUITE`, in TLS
    1.2, when the server's list allows it (``anonymous``) and the client offers it), then the
    signature, which the security level refuses below TLS 1.2.
    """
    if hello.supported_versions is not None and hello.legacy_version >= (3, 3):
        # Without a certificate, TLS 1.3 is not a version the server can do (is_tls13_capable).
        top = high if certificate else min(high, (3, 3))
        version = max((v for v in hello.supported_versions if low <= v <= top and v in VERSION_NAMES),
                      default=None)
    else:
        version = min(hello.legacy_version, high)
        version = version if version >= low and version >= OLDEST else None
    if version is None:
        return AlertDescription.protocol_version, "UNSUPPORTED_PROTOCOL"
    usable = [s for s, (_, protocol, _) in SUITES.items()
              if (protocol == "TLSv1.3") == (version == (3, 4))
              and (protocol != "TLSv1.2" or version >= (3, 3))]
    if certificate:
        suite = next((s for s in usable if s in hello.suites), None)
    else:
        offered = anonymous and version == (3, 3) and ANONYMOUS_SUITE in hello.suites
        suite = ANONYMOUS_SUITE if offered else None
    if suite is None:
        return AlertDescription.handshake_failure, "NO_SHARED_CIPHER"
    if version < (3, 3) and level > 0:
        return AlertDescription.internal_error, "NO_SUITABLE_SIGNATURE_ALGORITHM"
    return version, suite


class _ServerSocket:
    """What tlslite's server reads from: the client's bytes so far, else "would block"."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.inbox = bytearray()
        self.send_to_client = send
        self.closed = False

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

    def close(self) -> None:
        """tlslite closes its socket after a fatal alert; the connection is the server's to close."""
        self.closed = True


class ServerSide:
    """The server's half of one TLS session: tlslite's asynchronous server, fed by the network.

    :meth:`feed` raises ``ssl.SSLError`` with the reason OpenSSL's server gives (after sending the
    alert OpenSSL sends), and EOFError when the client ends the session.
    """

    def __init__(self, context: Any, send: Callable[[bytes], None]) -> None:
        self.context = context
        certfile, keyfile = context.mailtls_files
        self.chain: X509CertChain | None = None
        self.private_key: Any = None
        self.anonymous = certfile is None and allows_anonymous(context)
        if certfile is not None:
            with open(certfile) as certificates, open(keyfile or certfile) as key:
                self.chain = X509CertChain()
                self.chain.parsePemList(certificates.read())
                self.private_key = parsePEMKey(key.read(), private=True)
        if not hasattr(context, "mailtls_ticket_keys"):  # one key per server, so sessions resume
            context.mailtls_ticket_keys = [bytearray(os.urandom(32))]
        self.socket = _ServerSocket(send)
        self.tls = TLSConnection(self.socket)
        self.steps: Any = None
        self.reading: Any = None
        self.ready = False

    def _start(self) -> None:
        """Decide as OpenSSL on the ClientHello (once it is all here), then let tlslite answer it."""
        settings = HandshakeSettings()
        low, high = version_range(self.context)
        if low > high:  # no version at all: OpenSSL fails as its handshake starts (tls_setup_handshake)
            self.socket.send(bytes([21, 3, 1, 0, 2, 2, AlertDescription.protocol_version]))
            raise _error(ssl.SSLError, "NO_PROTOCOLS_AVAILABLE")
        if self.socket.inbox[:1] == b"\x15":  # an alert before any ClientHello (a client that gave up)
            raise _error(ssl.SSLError, "UNEXPECTED_MESSAGE")
        try:
            hello = Hello.parse(bytes(self.socket.inbox))
        except ValueError:  # not a ClientHello OpenSSL would decide on: tlslite answers it
            settings.minVersion, settings.maxVersion = low, max(low, high)
            settings.versions = _versions_between(low, high) or [low]
        else:
            if hello is None:
                return
            chosen = choose(hello, low, high, self.chain is not None, security_level(self.context),
                            self.anonymous)
            if isinstance(chosen[1], str):  # an alert, sent as OpenSSL sends it, before any ServerHello
                alert, reason = chosen
                self.socket.send(bytes([21, *min(hello.legacy_version, (3, 3)), 0, 2, 2, alert]))
                raise _error(ssl.SSLError, reason)
            version, suite = chosen
            settings.minVersion = settings.maxVersion = version  # type: ignore[assignment]
            settings.versions = [version]
            anonymous = suite == ANONYMOUS_SUITE
            cipher, mac = ("aes256gcm", "aead") if anonymous else SUITE_SETTINGS[suite]  # type: ignore[index]
            settings.cipherNames, settings.macNames = [cipher], [mac]
            settings.keyExchangeNames = ["dh_anon"] if anonymous else ["ecdhe_ecdsa"]
        settings.eccCurves, settings.keyShares = list(GROUPS), ["x25519"]
        settings.ticketKeys = self.context.mailtls_ticket_keys
        self.steps = self.tls.handshakeServerAsync(certChain=self.chain, privateKey=self.private_key,
                                                   settings=settings, anon=self.chain is None)

    def feed(self, data: bytes) -> bytes:
        """Take the client's bytes; answer the handshake; return the plain text that arrived."""
        self.socket.inbox += data
        try:
            if not self.ready:
                if self.steps is None:
                    self._start()
                    if self.steps is None:
                        return b""
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
        except TLSRemoteAlert as failure:
            if failure.description == AlertDescription.protocol_version:
                # A client refusing the server's version alerts in a record of its own version, which
                # OpenSSL's server, now at the version it chose, stops at.
                raise _error(ssl.SSLError, "WRONG_VERSION_NUMBER") from None
            raise _alert_error(failure.description, received=True) from None
        except TLSLocalAlert as failure:
            raise _alert_error(failure.description, received=False) from None
        except TLSAbruptCloseError:
            raise EOFError("the client hung up") from None
        except TLSError as failure:
            raise ConnectionResetError(errno.ECONNRESET, f"TLS: {failure}") from None

    def write(self, data: bytes) -> None:
        for _ in self.tls.writeAsync(data):
            pass

    def version(self) -> str:
        return describe(self.tls)[0]

    def cipher(self) -> tuple[str, str, int]:
        return describe(self.tls)[1]
