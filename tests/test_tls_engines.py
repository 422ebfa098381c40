"""The simulated lab's two TLS engines fail as CPython's ``ssl`` fails with OpenSSL.

The simulated lab does TLS with the ``ssl`` module over memory BIOs in CPython and with
tlslite-ng in the browser (:mod:`mailtls.sim.tls`, :mod:`mailtls.sim.browser_tls`). A client
must meet the same outcome with either: the same negotiated version and cipher, or the same
exception class, ``errno``, ``reason``, message, and for a refused certificate the same
``verify_code`` and ``verify_message``; and the server's half must fail with the same reason
(what a server's log reports).

- Every failure a client can meet (version, cipher, certificate, name, address, closed
  connection, ``check_hostname`` without a name) is asserted on both engines against the outcome
  CPython gets from real OpenSSL servers on 127.0.0.1 (``openssl s_server``, and a socket that
  hangs up): the constants below were measured so, and ``test_the_constants_are_what_cpython_gets``
  measures them again where ``openssl`` is installed.
- The two cases reported from the browser's engine (a server's address as ``server_hostname``;
  a protocol mismatch against Dovecot's ``ssl_min_protocol = TLSv1.3``) run on the simulated lab.
- A property-based test runs random client contexts against random server settings on both
  engines and compares everything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import imaplib
import json
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.requirements import require, require_program
from mailtls.config import LabConfig
from mailtls.hosts import HOSTS, SHIPPED_LABS
from mailtls.provision import provision
from mailtls.sim import network, tls, x509

ENGINES = ["ssl", "tlslite"]
SERVER_ADDRESS, PORT = "198.18.0.10", 9465  # mail.lab.test's address, a port no simulated host uses
NAME = "mail.lab.test"
VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]

# What CPython 3.11 with OpenSSL 3.0 raises (Debian 12), measured against openssl s_server and
# sockets on 127.0.0.1: (class, errno, reason, message without "(_ssl.c:NNN)").
PROTOCOL_VERSION = ("SSLError", 1, "TLSV1_ALERT_PROTOCOL_VERSION",
                    "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version")
HANDSHAKE_FAILURE = ("SSLError", 1, "SSLV3_ALERT_HANDSHAKE_FAILURE",
                     "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure")
INTERNAL_ERROR = ("SSLError", 1, "TLSV1_ALERT_INTERNAL_ERROR",
                  "[SSL: TLSV1_ALERT_INTERNAL_ERROR] tlsv1 alert internal error")
# A server that hangs up: CPython up to 3.11.3 (Debian 12's 3.11.2) sets OP_IGNORE_UNEXPECTED_EOF in its
# default contexts, and OpenSSL then reports the end of the stream as a close; later ones do not.
CLOSED = (("SSLZeroReturnError", 6, None, "TLS/SSL connection has been closed (EOF)")
          if ssl.create_default_context().options & ssl.OP_IGNORE_UNEXPECTED_EOF else
          ("SSLEOFError", 8, "UNEXPECTED_EOF_WHILE_READING",
           "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"))


def verify_failed(code: int, message: str) -> tuple:
    return ("SSLCertVerificationError", 1, "CERTIFICATE_VERIFY_FAILED",
            f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}", code, message)


def legacy_sigalg() -> tuple:
    """A client at security level 1 or more offered TLS 1.0 or 1.1: OpenSSL's reason has no name in
    Python 3.11's table (it has in later ones)."""
    import _ssl

    reason = "LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED"
    known = reason in getattr(_ssl, "err_names_to_codes", {reason: 0})
    return ("SSLError", 1, reason if known else None,
            f"[SSL{': ' + reason if known else ''}] legacy sigalg disallowed or unsupported")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab's CA and host certificates (as the simulated and the real lab make them); a CA of
    another lab in ``other/``, and mail.lab.test's certificates from it that expired a month ago
    (``expired/``) and that will be valid in a month (``not yet valid/``)."""
    folder = tmp_path_factory.mktemp("tls-engines")
    provision(folder, {h.name: LabConfig().address(h) for h in HOSTS}, mailbox_owner=None)
    other = x509.LabCA("another lab's CA")
    other.write(folder / "other")
    now, month = dt.datetime.now(dt.UTC), dt.timedelta(days=30)
    other.issue(NAME, [SERVER_ADDRESS], now - 2 * month, now - month).write(folder / "expired")
    other.issue(NAME, [SERVER_ADDRESS], now + month, now + 2 * month).write(folder / "not yet valid")
    tls.install()
    return folder


def certificate_files(files: Path, certificate: str) -> tuple[str | None, str | None]:
    """(certificate file, key file) of mail.lab.test for a server's ``certificate``: "lab", "expired",
    "not yet valid", or "none" (None, None)."""
    if certificate == "none":
        return None, None
    folder = files if certificate == "lab" else files / certificate
    return str(folder / f"{NAME}.pem"), str(folder / f"{NAME}.key")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    previous = tls.use(request.param)
    yield request.param
    tls.use(previous)
    network.clear()


# -- A scenario: a server's settings, a client's context, what the client meets -----------------------


@dataclasses.dataclass(frozen=True)
class Server:
    minimum: str = "TLSv1.2"
    maximum: str = "TLSv1.3"
    certificate: str = "lab"  # or "expired", "not yet valid" (another lab's CA issued them), "none"
    security_level: int | None = None  # None: server_context's default
    behaviour: str = "tls"  # or "hang up" (at once) or "hang up after hello" (reads the ClientHello)


@dataclasses.dataclass(frozen=True)
class Client:
    minimum: str | None = None  # None: the context's default
    maximum: str | None = None
    verify: bool = True  # CERT_REQUIRED, else CERT_NONE
    check_hostname: bool = True
    server_hostname: str | None = NAME
    trust: str = "lab"  # the lab's CA, or "other": another lab's
    ciphers: str | None = None  # given to set_ciphers

    def context(self, files: Path, stub: bool = False) -> ssl.SSLContext:
        """The client's context; ``stub``: one that keeps only what Pyodide's ``ssl`` keeps."""
        cafile = files / ("ca.pem" if self.trust == "lab" else "other/ca.pem")
        if stub:
            context: ssl.SSLContext = StubContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(cafile)
            context._ca_data = cafile.read_text()  # type: ignore[attr-defined]
        else:
            context = ssl.create_default_context(cafile=str(cafile))
        context.check_hostname = self.check_hostname
        if not self.verify:
            context.verify_mode = ssl.CERT_NONE
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is what is tried
            warnings.simplefilter("ignore", DeprecationWarning)
            if self.minimum:
                context.minimum_version = tls.tls_version(self.minimum)
            if self.maximum:
                context.maximum_version = tls.tls_version(self.maximum)
        if self.ciphers:
            context.set_ciphers(self.ciphers)
        return context


class StubContext(ssl.SSLContext):
    """A client context that tells tlslite only what Pyodide's stub ``ssl`` tells: its CA file's
    text (``_ca_data``), its versions, modes and the string given to ``set_ciphers``; no list of
    ciphers, CA certificates or security level."""

    security_level = None  # type: ignore[assignment]

    def get_ciphers(self) -> list:  # type: ignore[override]
        return []

    def get_ca_certs(self, binary_form: bool = False) -> list:  # type: ignore[override]
        return []


class Handler:
    """The server's end on the simulated network, as LineServer runs a TLS session: whatever the
    client sends is fed to the engine's server half; a failure is kept and the server hangs up."""

    def __init__(self, connection: network.Connection, context: Any, behaviour: str) -> None:
        self.connection = connection
        self.behaviour = behaviour
        self.failure: BaseException | None = None
        self.side = tls.server_side(context, connection.send)
        if behaviour == "hang up":
            connection.close()

    def received(self, data: bytes) -> None:
        if self.connection.closed_by_server:
            return
        if self.behaviour == "hang up after hello":
            self.connection.close()
            return
        try:
            self.side.feed(data)
        except (OSError, ValueError, EOFError) as failure:
            self.failure = failure
            self.connection.close()

    def hung_up(self) -> None:
        pass


def outcome(error: BaseException) -> tuple:
    """(class, errno, reason, message without its "(_ssl.c:NNN)"[, verify_code, verify_message])."""
    text = str(error).rsplit(" (_ssl.c:", 1)[0]
    reason = error.reason if isinstance(error, ssl.SSLError) else None  # CPython's always have one
    found = (type(error).__name__, getattr(error, "errno", None), reason, text)
    if isinstance(error, ssl.SSLCertVerificationError):
        found += (error.verify_code, error.verify_message)
    return found


def run(files: Path, server: Server, client: Client, stub: bool = False) -> tuple[tuple, tuple | None]:
    """What the client meets (("ok", version, cipher) or its failure) and the server's failure
    (class, reason) if any, on the engine in use (``stub``: with a context as Pyodide's)."""
    context = tls.server_context(*certificate_files(files, server.certificate), server.minimum,
                                 server.maximum, security_level=server.security_level)
    handlers: list[Handler] = []

    def accept(connection: network.Connection, address: str) -> Handler:
        handlers.append(Handler(connection, context, server.behaviour))
        return handlers[-1]

    network.listen(SERVER_ADDRESS, PORT, accept)
    client_context = client.context(files, stub)
    sock = network.open_connection(SERVER_ADDRESS, PORT, timeout=10)
    try:
        wrapped = client_context.wrap_socket(sock, server_hostname=client.server_hostname)
    except (OSError, ValueError) as error:
        seen = outcome(error)
    else:
        seen = ("ok", wrapped.version(), wrapped.cipher())
        wrapped.sendall(b"NOOP\r\n")  # the server's half finishes (TLS 1.3: the client's Finished)
        if client.verify:
            assert wrapped.getpeercert()["subject"] == ((("commonName", NAME),),)
        else:
            assert wrapped.getpeercert() == {}
        wrapped.close()
    failure = handlers[0].failure if handlers else None
    return seen, (type(failure).__name__, getattr(failure, "reason", None)) if failure else None


def on_both(files: Path, server: Server, client: Client, stub: bool = False) -> tuple[tuple, tuple | None]:
    """The outcome on the ``ssl`` engine, asserted to be the tlslite engine's too (``stub``: with
    the client's context as Pyodide's ``ssl`` keeps it)."""
    previous = tls.use("ssl")
    try:
        with_ssl = run(files, server, client)
        tls.use("tlslite")
        with_tlslite = run(files, server, client, stub)
    finally:
        tls.use(previous)
        network.clear()
    assert with_tlslite == with_ssl
    return with_ssl


# -- Each failure, on each engine, as CPython meets it on a real network ------------------------------


CASES: dict[str, tuple[Server, Client, tuple]] = {
    "a current client": (Server(), Client(), ("ok", "TLSv1.3", ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256))),
    "TLS 1.2": (Server(), Client(maximum="TLSv1.2"),
                ("ok", "TLSv1.2", ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLSv1.2", 256))),
    "TLS 1.0 at security level 0": (
        Server(minimum="TLSv1"), Client(minimum="TLSv1", maximum="TLSv1", ciphers="DEFAULT:@SECLEVEL=0"),
        ("ok", "TLSv1", ("ECDHE-ECDSA-AES256-SHA", "TLSv1.0", 256))),
    "TLS 1.1 at security level 0": (
        Server(minimum="TLSv1"), Client(minimum="TLSv1.1", maximum="TLSv1.1", ciphers="DEFAULT:@SECLEVEL=0"),
        ("ok", "TLSv1.1", ("ECDHE-ECDSA-AES256-SHA", "TLSv1.0", 256))),
    "server's minimum above the client's maximum": (
        Server(minimum="TLSv1.3"), Client(maximum="TLSv1.2"), PROTOCOL_VERSION),
    "client's minimum above the server's maximum": (
        Server(maximum="TLSv1.2"), Client(minimum="TLSv1.3"), PROTOCOL_VERSION),
    "the server's only version below the client's minimum": (
        Server(minimum="TLSv1", maximum="TLSv1"), Client(minimum="TLSv1.2", maximum="TLSv1.2"),
        ("SSLError", 1, "UNSUPPORTED_PROTOCOL", "[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol")),
    "TLS 1.0 refused by the client's security level": (
        Server(minimum="TLSv1", maximum="TLSv1"), Client(minimum="TLSv1", maximum="TLSv1"), legacy_sigalg()),
    "TLS 1.0 refused by the server's security level": (
        Server(minimum="TLSv1", maximum="TLSv1", security_level=2),
        Client(minimum="TLSv1", maximum="TLSv1", ciphers="DEFAULT:@SECLEVEL=0"), INTERNAL_ERROR),
    "no cipher in common": (Server(), Client(maximum="TLSv1.2", ciphers="AES256-GCM-SHA384"),
                            HANDSHAKE_FAILURE),
    "no certificate": (Server(certificate="none"), Client(), HANDSHAKE_FAILURE),
    "no certificate, TLS 1.2": (Server(certificate="none"), Client(maximum="TLSv1.2"), HANDSHAKE_FAILURE),
    "no certificate, TLS 1.3 only (OpenSSL does TLS 1.3 only with a certificate)": (
        Server(minimum="TLSv1.3", certificate="none"), Client(), PROTOCOL_VERSION),
    "no certificate, and no version in common": (
        Server(minimum="TLSv1.3", certificate="none"), Client(maximum="TLSv1.2"), PROTOCOL_VERSION),
    "an expired certificate": (Server(certificate="expired"), Client(trust="other"),
                               verify_failed(10, "certificate has expired")),
    "an expired certificate, TLS 1.2": (
        Server(certificate="expired"), Client(trust="other", maximum="TLSv1.2"),
        verify_failed(10, "certificate has expired")),
    "an expired certificate for another name": (  # OpenSSL checks the name before the dates
        Server(certificate="expired"), Client(trust="other", server_hostname="imap.example.org"),
        verify_failed(62, "Hostname mismatch, certificate is not valid for 'imap.example.org'.")),
    "an expired certificate from another lab's CA": (
        Server(certificate="expired"), Client(),
        verify_failed(19, "self-signed certificate in certificate chain")),
    "a certificate not yet valid": (Server(certificate="not yet valid"), Client(trust="other"),
                                    verify_failed(9, "certificate is not yet valid")),
    "CERT_NONE accepts an expired certificate": (
        Server(certificate="expired"), Client(verify=False, check_hostname=False),
        ("ok", "TLSv1.3", ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256))),
    "another lab's CA": (Server(), Client(trust="other"),
                         verify_failed(19, "self-signed certificate in certificate chain")),
    "another name": (
        Server(), Client(server_hostname="imap.example.org"),
        verify_failed(62, "Hostname mismatch, certificate is not valid for 'imap.example.org'.")),
    "the name with a trailing dot": (
        Server(), Client(server_hostname=f"{NAME}."),
        verify_failed(62, f"Hostname mismatch, certificate is not valid for '{NAME}.'.")),
    "the server's address": (Server(), Client(server_hostname=SERVER_ADDRESS),
                             ("ok", "TLSv1.3", ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256))),
    "the server's address with a leading zero": (
        Server(), Client(server_hostname="198.018.0.10"),
        ("ok", "TLSv1.3", ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256))),
    "another address": (
        Server(), Client(server_hostname="198.18.0.99"),
        verify_failed(64, "IP address mismatch, certificate is not valid for '198.18.0.99'.")),
    "the server hangs up before the handshake": (Server(behaviour="hang up"), Client(), CLOSED),
    "the server hangs up after the ClientHello": (Server(behaviour="hang up after hello"), Client(), CLOSED),
    "a client with no version (minimum above maximum)": (
        Server(), Client(minimum="TLSv1.3", maximum="TLSv1.2"),
        ("SSLError", 1, "NO_PROTOCOLS_AVAILABLE", "[SSL: NO_PROTOCOLS_AVAILABLE] no protocols available")),
    "a server with no version (minimum above maximum)": (
        Server(minimum="TLSv1.3", maximum="TLSv1.2"), Client(), PROTOCOL_VERSION),
    "check_hostname without a name": (
        Server(), Client(server_hostname=None),
        ("ValueError", None, None, "check_hostname requires server_hostname")),
    "CERT_NONE accepts another CA's chain and another name": (
        Server(), Client(verify=False, check_hostname=False, trust="other", server_hostname="wrong.example"),
        ("ok", "TLSv1.3", ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_client_meets_what_cpython_meets(files: Path, engine: str, case: str) -> None:
    server, client, expected = CASES[case]
    try:
        seen, _ = run(files, server, client)
    finally:
        network.clear()
    assert seen == expected


@pytest.mark.parametrize("case", list(CASES))
def test_the_server_half_fails_alike(files: Path, case: str) -> None:
    """What the server's half raises (what a server's log reports: OpenSSL's reason, such as
    NO_SHARED_CIPHER, or the alert the client sent) is the same with both engines."""
    server, client, expected = CASES[case]
    assert on_both(files, server, client)[0] == expected


@pytest.mark.parametrize("case", list(CASES))
def test_the_browser_s_contexts_meet_it_too(files: Path, case: str) -> None:
    """With the tlslite engine and a context that says no more than Pyodide's stub ``ssl``."""
    server, client, expected = CASES[case]
    previous = tls.use("tlslite")
    try:
        seen, _ = run(files, server, client, stub=True)
    finally:
        tls.use(previous)
        network.clear()
    assert seen == expected


class Echo(Handler):
    """A server that answers each piece of plain text with "ok", so that a TLS 1.3 client reads the
    session tickets that follow the handshake."""

    def received(self, data: bytes) -> None:
        if self.side.feed(data):
            self.side.write(b"ok\r\n")


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2", "TLSv1"])
def test_sessions_resume(files: Path, engine: str, version: str) -> None:
    """A client that offers its last session resumes it, as the relay does (Postfix's session cache)."""
    context = tls.server_context(str(files / f"{NAME}.pem"), str(files / f"{NAME}.key"), minimum="TLSv1")
    network.listen(SERVER_ADDRESS, PORT, lambda connection, address: Echo(connection, context, "tls"))
    client = Client(minimum=version, maximum=version, verify=False, check_hostname=False,
                    ciphers="DEFAULT:@SECLEVEL=0" if version == "TLSv1" else None).context(files)
    session, seen = None, []
    for _ in range(3):
        sock = network.open_connection(SERVER_ADDRESS, PORT, timeout=10)
        wrapped = client.wrap_socket(sock, server_hostname=NAME, session=session)
        wrapped.sendall(b"NOOP\r\n")
        assert wrapped.makefile("rb").readline() == b"ok\r\n"
        seen.append((wrapped.version(), wrapped.session_reused))
        session = wrapped.session
        wrapped.close()
    assert seen == [(version, False), (version, True), (version, True)]


@pytest.mark.parametrize("stub", [False, True], ids=["cpython-context", "pyodide-context"])
def test_the_browser_engine_agrees_on_postfix_s_anonymous_suite(files: Path, stub: bool) -> None:
    """Postfix's smtpd without a certificate and Postfix's client (both with aNULL in their lists)
    agree on ADH-AES256-GCM-SHA384 in TLS 1.2 (measured with Postfix 3.7.11 and 3.10.13): so does
    tlslite. A client without aNULL (CPython's DEFAULT) still gets the handshake-failure alert.
    CPython's ``ssl`` engine has no Diffie-Hellman parameters and agrees on AECDH-AES256-SHA
    instead; the simulated relay logs Postfix's words either way."""
    context = tls.server_context(None, None, minimum="TLSv1")
    context.set_ciphers("ALL:@SECLEVEL=0")
    network.listen(SERVER_ADDRESS, PORT, lambda connection, address: Echo(connection, context, "tls"))
    previous = tls.use("tlslite")
    try:
        seen = []
        for ciphers in ("ALL:@SECLEVEL=0", None):
            client = Client(verify=False, check_hostname=False, ciphers=ciphers).context(files, stub)
            sock = network.open_connection(SERVER_ADDRESS, PORT, timeout=10)
            try:
                wrapped = client.wrap_socket(sock, server_hostname=NAME)
            except ssl.SSLError as error:
                seen.append(error.reason)
                continue
            wrapped.sendall(b"NOOP\r\n")
            assert wrapped.makefile("rb").readline() == b"ok\r\n"
            seen.append((wrapped.version(), wrapped.cipher(), wrapped.getpeercert(binary_form=True)))
            wrapped.close()
    finally:
        tls.use(previous)
        network.clear()
    assert seen == [("TLSv1.2", ("ADH-AES256-GCM-SHA384", "TLSv1.2", 256), None),
                    "SSLV3_ALERT_HANDSHAKE_FAILURE"]


# -- The constants, measured again against real OpenSSL on 127.0.0.1 ----------------------------------


def openssl_server(files: Path, server: Server) -> tuple[subprocess.Popen, int]:
    """``openssl s_server`` with mail.lab.test's certificate and chain (as Postfix sends it), the
    server's versions and, below TLS 1.2, security level 0 (as server_context)."""
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flags = {"TLSv1": "tls1", "TLSv1.1": "tls1_1", "TLSv1.2": "tls1_2", "TLSv1.3": "tls1_3"}
    arguments = ["openssl", "s_server", "-naccept", "1", "-accept", f"127.0.0.1:{port}"]
    certificate, key = certificate_files(files, server.certificate)
    if certificate is not None:
        certificates = x509.pem_certificates(Path(certificate).read_bytes())
        (files / "leaf.pem").write_bytes(x509._pem(certificates[0].der))
        (files / "issuer.pem").write_bytes(x509._pem(certificates[1].der))
        arguments += ["-cert", str(files / "leaf.pem"), "-key", str(key),
                      "-cert_chain", str(files / "issuer.pem")]
    else:
        arguments.append("-nocert")
    for version in VERSIONS:
        if not server.minimum <= version <= server.maximum:
            arguments.append(f"-no_{flags[version]}")
    level = server.security_level
    if level is None:
        level = 0 if VERSIONS.index(server.minimum) < 2 else 2
    arguments += ["-cipher", f"DEFAULT:@SECLEVEL={level}"]
    process = subprocess.Popen(arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:  # type: ignore[union-attr]
        if line.strip() == "ACCEPT":  # listening
            return process, port
    raise AssertionError(f"openssl s_server did not start: {' '.join(arguments)}")


def hanging_up_server(after_hello: bool) -> tuple[threading.Thread, int]:
    """A server on 127.0.0.1 that hangs up at once, or after reading the ClientHello."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            if after_hello:
                connection.recv(65536)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread, port


@pytest.mark.parametrize("case", list(CASES))
def test_the_constants_are_what_cpython_gets(files: Path, case: str) -> None:
    """CPython's ``ssl`` on real sockets, against openssl s_server or a socket that hangs up."""
    require_program("openssl", "Debian package openssl")
    server, client, expected = CASES[case]
    if server.behaviour == "tls":
        process, port = openssl_server(files, server)
    else:
        thread, port = hanging_up_server(server.behaviour == "hang up after hello")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            if server.behaviour == "hang up":
                time.sleep(0.1)  # the server's FIN arrives first
            try:
                wrapped = client.context(files).wrap_socket(sock, server_hostname=client.server_hostname)
            except (OSError, ValueError) as error:
                seen = outcome(error)
            else:
                seen = ("ok", wrapped.version(), wrapped.cipher())
    finally:
        if server.behaviour == "tls":
            process.kill()
            process.wait()
        else:
            thread.join(10)
    assert seen == expected


# -- In Pyodide, with its stub ssl: the browser's engine as the browser runs it ------------------------


PYODIDE_RUNNER = """
import {{ loadPyodide }} from {module};
import {{ readFileSync }} from "fs";
const pyodide = await loadPyodide({{ indexURL: {index} }});
for (const [folder, where] of {mounts}) {{
  pyodide.FS.mkdirTree(where);
  pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, {{ root: folder }}, where);
}}
try {{
  console.log(await pyodide.runPythonAsync(readFileSync({script}, "utf8")));
}} catch (error) {{
  console.error(error.message);  // Python's traceback
  process.exit(1);
}}
"""

PYODIDE_CHECK = """
import glob, json, shutil, smtplib, ssl, sys, imaplib
from pathlib import Path
sys.path[:0] = ["/mnt/src", "/mnt/tests"] + glob.glob("/mnt/wheels/*.whl")


class Anything:  # pytest and hypothesis, which Pyodide has not: only their decorators are met here
    def __call__(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs and not isinstance(args[0], Anything):
            return args[0]
        return self

    def __getattr__(self, name):
        return self


for name in ("pytest", "hypothesis", "hypothesis.strategies"):
    sys.modules[name] = Anything()
import test_tls_engines as t
from mailtls.sim import network, tls
from mailtls.sim.lab import SimLab

tls.install()
found = {"platform": sys.platform, "engine": tls.engine_in_use(), "cases": {}}
for case, (server, client, expected) in t.CASES.items():
    found["cases"][case] = [list(t.run(Path("/mnt/files"), server, client)[0]), list(expected)]
    network.clear()
shutil.copytree("/mnt/labs", "/tmp/labs")
for folder in ("debian13", "debian12"):
    conf = Path(f"/tmp/labs/hosts/mail/{folder}/dovecot.conf")
    conf.write_text(conf.read_text().replace("ssl_min_protocol = TLSv1.2", "ssl_min_protocol = TLSv1.3"))
lab = SimLab(labs=Path("/tmp/labs"), files=Path("/tmp/files"))
context = ssl.create_default_context(cafile=str(lab.files / "ca.pem"))
try:
    with smtplib.SMTP(t.SERVER_ADDRESS, 587, timeout=10) as smtp:
        smtp.starttls(context=context)
        found["starttls by address"] = smtp.sock.version()
except Exception as failure:
    found["starttls by address"] = repr(failure)
context.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    imaplib.IMAP4_SSL(t.SERVER_ADDRESS, 993, ssl_context=context, timeout=10)
except Exception as refused:
    found["IMAPS mismatch"] = list(t.outcome(refused))
json.dumps(found)
"""


def test_pyodide_meets_it_too(files: Path, tmp_path: Path) -> None:
    """Every case above, and the two reported ones, in Pyodide (under Node.js) with its stub ``ssl``
    and the tlslite engine, the browser's only one; Pyodide and the wheels from
    ``make browser-assets``."""
    from course import ROOT

    cache = ROOT / ".cache" / "browser"
    modules = sorted(cache.glob("pyodide-*/pyodide.mjs"))
    require_program("node", "Node.js, which make browser-assets needs too")
    require(bool(modules) and bool(list(cache.glob("wheels/tlslite_ng-*.whl"))),
            "Pyodide and its wheels in .cache/browser (make browser-assets)")
    mounts = [[str(folder), f"/mnt/{where}"] for folder, where in (
        (ROOT / "src", "src"), (ROOT / "tests", "tests"), (ROOT / "labs", "labs"), (files, "files"),
        (cache / "wheels", "wheels"))]
    (tmp_path / "check.py").write_text(PYODIDE_CHECK)
    (tmp_path / "run.mjs").write_text(PYODIDE_RUNNER.format(
        module=json.dumps(str(modules[-1])), index=json.dumps(f"{modules[-1].parent}/"),
        mounts=json.dumps(mounts), script=json.dumps(str(tmp_path / "check.py"))))
    done = subprocess.run(["node", str(tmp_path / "run.mjs")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert (found["platform"], found["engine"]) == ("emscripten", "tlslite")
    different = {case: seen for case, (seen, expected) in found["cases"].items() if seen != expected}
    assert different == {}
    assert len(found["cases"]) == len(CASES)
    assert found["starttls by address"] == "TLSv1.3"
    assert found["IMAPS mismatch"] == list(PROTOCOL_VERSION)


# -- The two cases reported from the browser's engine, on the simulated lab -----------------------------


@pytest.fixture
def simulated_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Makes a simulated lab from a copy of ``labs/`` with an edit (file, old, new); its network is
    this process's until the test ends."""
    from mailtls.sim.lab import SimLab

    monkeypatch.setattr(socket, "create_connection", socket.create_connection)  # restored at the end

    def make(*edits: tuple[str, str, str]) -> SimLab:
        labs = tmp_path / "labs"
        shutil.copytree(SHIPPED_LABS, labs)
        for name, old, new in edits:
            path = labs / name
            assert old in path.read_text()
            path.write_text(path.read_text().replace(old, new))
        return SimLab(labs=labs, files=tmp_path / "files")

    yield make
    network.clear()


def test_starttls_by_address(simulated_lab: Callable[..., Any], engine: str) -> None:
    """``smtplib.SMTP("198.18.0.10", 587).starttls(context=lab.ssl_context())``: CPython sends no
    SNI for an address and checks it against the certificate's IP addresses; the lab's
    certificates carry them, so the handshake completes, as on the real lab."""
    lab = simulated_lab()
    context = ssl.create_default_context(cafile=str(lab.files / "ca.pem"))
    with smtplib.SMTP(SERVER_ADDRESS, 587, timeout=10) as client:
        client.starttls(context=context)
        assert client.sock.version() == "TLSv1.3"
        assert ("IP Address", SERVER_ADDRESS) in client.sock.getpeercert()["subjectAltName"]
        assert client.noop()[0] == 250


def test_imaps_protocol_mismatch(simulated_lab: Callable[..., Any], engine: str) -> None:
    """Dovecot's ``ssl_min_protocol = TLSv1.3`` and a client whose maximum is TLS 1.2: CPython
    against the real lab gets the protocol-version alert."""
    lab = simulated_lab(*[(f"hosts/mail/{folder}/dovecot.conf", "ssl_min_protocol = TLSv1.2",
                           "ssl_min_protocol = TLSv1.3") for folder in ("debian13", "debian12")])
    context = ssl.create_default_context(cafile=str(lab.files / "ca.pem"))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError) as refused:
        imaplib.IMAP4_SSL(SERVER_ADDRESS, 993, ssl_context=context, timeout=10)
    assert outcome(refused.value) == PROTOCOL_VERSION
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    with imaplib.IMAP4_SSL(SERVER_ADDRESS, 993, ssl_context=context, timeout=10) as imap:
        assert imap.sock.version() == "TLSv1.3"


# -- Random clients against random servers: both engines, the same outcome -----------------------------


def version_ranges() -> st.SearchStrategy[tuple[str, str]]:
    """(minimum, maximum), mostly in order; a minimum above the maximum allows no version at all."""
    return st.tuples(st.sampled_from(VERSIONS), st.sampled_from(VERSIONS), st.integers(0, 4)).map(
        lambda drawn: (drawn[0], drawn[1]) if drawn[2] == 0 else tuple(sorted(drawn[:2])))


servers = st.builds(
    lambda versions, certificate, level: Server(versions[0], versions[1], certificate, level),
    version_ranges(), st.sampled_from(["lab", "lab", "expired", "not yet valid", "none"]),
    st.sampled_from([None, 0, 2]))
clients = st.builds(
    lambda versions, verify, check, name, trust, ciphers: Client(
        versions[0], versions[1], verify or check, check, name, trust, ciphers),
    st.one_of(st.just((None, None)), version_ranges()), st.booleans(), st.booleans(),
    st.sampled_from([NAME, "imap.example.org", SERVER_ADDRESS, "198.18.0.99", None, "MAIL.LAB.TEST",
                     f"{NAME}.", "198.018.0.10", f"{SERVER_ADDRESS}."]),
    st.sampled_from(["lab", "other"]),
    st.sampled_from([None, "DEFAULT:@SECLEVEL=0", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(servers, clients, st.booleans())
def test_both_engines_agree(files: Path, server: Server, client: Client, stub: bool) -> None:
    """Versions, security levels, certificate or none; verify modes, ``check_hostname``, names,
    addresses, trust, cipher lists: the tlslite engine (with CPython's context, or one as Pyodide's)
    meets exactly what the ``ssl`` engine meets (OpenSSL), and its server half fails alike."""
    on_both(files, server, client, stub)
