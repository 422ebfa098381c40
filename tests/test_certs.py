"""The lab CA: its certificates verify where they should and fail where they should.

Checked with the real ``openssl verify`` and with real TLS handshakes on 127.0.0.1.
"""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from helpers.requirements import require_program
from mailtls.certs import HostCertificate, LabCA, self_signed


@pytest.fixture(scope="module")
def ca() -> LabCA:
    return LabCA()


@pytest.fixture(scope="module")
def mail(ca: LabCA) -> HostCertificate:
    return ca.issue("mail.lab.test", ["198.18.0.10"])


def openssl_verify(tmp_path: Path, ca: LabCA, certificate: HostCertificate,
                   hostname: str) -> subprocess.CompletedProcess:
    openssl = require_program("openssl", "Debian package openssl")
    ca_file = ca.write(tmp_path)
    files = certificate.write(tmp_path)
    return subprocess.run(
        [openssl, "verify", "-CAfile", str(ca_file), "-verify_hostname", hostname, str(files["cert"])],
        capture_output=True, text=True,
    )


def test_issued_certificate_verifies_for_its_host(tmp_path, ca, mail) -> None:
    done = openssl_verify(tmp_path, ca, mail, "mail.lab.test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(": OK")


def test_issued_certificate_fails_for_another_host(tmp_path, ca, mail) -> None:
    done = openssl_verify(tmp_path, ca, mail, "relay.lab.test")
    assert done.returncode != 0
    assert "hostname mismatch" in (done.stdout + done.stderr)


def test_self_signed_certificate_is_not_trusted_by_the_lab_ca(tmp_path, ca) -> None:
    done = openssl_verify(tmp_path, ca, self_signed("selfsigned.lab.test"), "selfsigned.lab.test")
    assert done.returncode != 0
    assert "self-signed certificate" in (done.stdout + done.stderr)


def test_private_keys_are_written_for_the_owner_only(tmp_path, mail) -> None:
    files = mail.write(tmp_path)
    for kind in ("key", "chain"):
        assert stat.S_IMODE(files[kind].stat().st_mode) == 0o600
    assert stat.S_IMODE(files["cert"].stat().st_mode) == 0o644
    assert b"PRIVATE KEY" not in files["cert"].read_bytes()


def handshake(tmp_path: Path, server_cert: HostCertificate, ca: LabCA, server_hostname: str) -> str:
    """A real TLS handshake on 127.0.0.1; returns the negotiated protocol or raises the client's error."""
    files = server_cert.write(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files["cert"], files["key"])
    client_context = ssl.create_default_context(cafile=str(ca.write(tmp_path)))

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass  # the client gave up: that is what some tests expect

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_context.wrap_socket(raw, server_hostname=server_hostname) as tls:
                return tls.version() or ""
    finally:
        thread.join(timeout=5)
        listener.close()


def test_python_client_trusting_the_lab_ca_accepts_the_host(tmp_path, ca, mail) -> None:
    assert handshake(tmp_path, mail, ca, "mail.lab.test") in {"TLSv1.2", "TLSv1.3"}


def test_python_client_refuses_a_wrong_host_name(tmp_path, ca, mail) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(tmp_path, mail, ca, "legacy.lab.test")


def test_python_client_refuses_a_self_signed_host(tmp_path, ca) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate"):
        handshake(tmp_path, self_signed("selfsigned.lab.test"), ca, "selfsigned.lab.test")


def test_every_lab_has_its_own_ca(tmp_path) -> None:
    other_lab = LabCA()
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate in certificate chain"):
        handshake(tmp_path, LabCA().issue("mail.lab.test"), other_lab, "mail.lab.test")
