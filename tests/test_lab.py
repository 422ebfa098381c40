"""What the course claims about the lab's servers, checked on the real Postfix and Dovecot.

Each test runs on both backends (network namespaces and containers); the tests connect from the
machine's own namespace, as a student's client would.
"""

from __future__ import annotations

import contextlib
import imaplib
import smtplib
import socket
import ssl
import subprocess
import uuid

import pytest

from helpers.mail import first_message, submit, text_message
from helpers.polling import within
from helpers.requirements import require, require_program

pytestmark = pytest.mark.lab


def mail(lab) -> str:
    return lab.address("mail.lab.test")


# -- SMTP: STARTTLS on 25 and 587, implicit TLS on 465 --------------------------------------------


@pytest.mark.parametrize("port", [25, 587])
def test_ehlo_offers_starttls_until_tls_starts(lab, port: int) -> None:
    with smtplib.SMTP(mail(lab), port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.starttls(context=lab.ssl_context())
        assert code == 220
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}


def test_mail_before_starttls_on_587_is_refused(lab) -> None:
    with smtplib.SMTP(mail(lab), 587, timeout=10) as client:
        client.ehlo()
        assert client.docmd("MAIL FROM:<alice@lab.test>") \
            == (530, b"5.7.0 Must issue a STARTTLS command first")


def test_auth_only_after_tls_on_587(lab) -> None:
    alice = lab.user("alice")
    with smtplib.SMTP(mail(lab), 587, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        client.starttls(context=lab.ssl_context())
        client.ehlo()
        assert client.has_extn("auth")
        assert client.login(alice.login, alice.password)[0] == 235


def test_wrong_password_is_refused(lab) -> None:
    with smtplib.SMTP_SSL(mail(lab), 465, context=lab.ssl_context(), timeout=10) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(lab.user("alice").login, "not the password")
        assert refused.value.smtp_code == 535


def test_implicit_tls_on_465_with_the_lab_ca(lab) -> None:
    with smtplib.SMTP_SSL(mail(lab), 465, context=lab.ssl_context(), timeout=10) as client:
        client.ehlo()
        assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}
        assert client.has_extn("auth") and not client.has_extn("starttls")


def tls_1_1_only(lab) -> ssl.SSLContext:
    """A client that speaks TLS 1.1 and nothing newer (OpenSSL 3 needs security level 0 for it)."""
    context = lab.ssl_context()
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize("port", [587, 465])
def test_no_tls_1_1_where_tls_is_mandatory(lab, port: int) -> None:
    with pytest.raises(ssl.SSLError, match="(?i)protocol.version"):
        if port == 465:  # wrapper mode uses smtpd_tls_mandatory_protocols too
            smtplib.SMTP_SSL(mail(lab), port, context=tls_1_1_only(lab), timeout=10)
        else:
            with smtplib.SMTP(mail(lab), port, timeout=10) as client:
                client.starttls(context=tls_1_1_only(lab))


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize("port", [143, 993])
def test_no_tls_1_1_on_imap(lab, port: int) -> None:
    """Dovecot's ssl_min_protocol = TLSv1.2, for STARTTLS on 143 and implicit TLS on 993 alike.

    Dovecot closes the connection without a TLS alert, so the proof is the pair: the same
    client settings with TLS 1.2 succeed, with TLS 1.1 fail.
    """

    def handshake(version: ssl.TLSVersion) -> str:
        context = tls_1_1_only(lab)
        context.minimum_version = context.maximum_version = version
        if port == 993:
            with imaplib.IMAP4_SSL(mail(lab), port, ssl_context=context, timeout=10) as client:
                return client.sock.version()
        client = imaplib.IMAP4(mail(lab), port, timeout=10)
        try:
            client.starttls(ssl_context=context)
            return client.sock.version()
        finally:
            with contextlib.suppress(OSError):  # after a failed handshake the socket is gone
                client.shutdown()

    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        handshake(ssl.TLSVersion.TLSv1_1)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_opportunistic_port_25_still_accepts_tls_1_1(lab) -> None:
    """Postfix 3.7's default smtpd_tls_protocols (>=TLSv1) is left alone on the MX, as the course says."""
    with smtplib.SMTP(mail(lab), 25, timeout=10) as client:
        client.starttls(context=tls_1_1_only(lab))
        assert client.sock.version() == "TLSv1.1"


def test_strangers_cannot_relay(lab) -> None:
    with smtplib.SMTP(mail(lab), 25, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("someone@example.org", ["someone@example.net"], "Subject: x\r\n\r\nx\r\n")
    code, text = refused.value.recipients["someone@example.net"]
    assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text


# -- Certificates ---------------------------------------------------------------------------------


def test_a_client_that_does_not_trust_the_lab_ca_refuses(lab) -> None:
    with pytest.raises(ssl.SSLCertVerificationError,
                       match="unable to get local issuer certificate|self-signed"):
        smtplib.SMTP_SSL(mail(lab), 465, context=ssl.create_default_context(), timeout=10)


def test_a_client_asking_for_another_host_name_refuses(lab) -> None:
    with socket.create_connection((mail(lab), 993), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            lab.ssl_context().wrap_socket(raw, server_hostname="relay.lab.test")


def test_the_certificate_names_the_host(lab) -> None:
    with socket.create_connection((mail(lab), 993), timeout=10) as raw:
        with lab.ssl_context().wrap_socket(raw, server_hostname="mail.lab.test") as tls:
            names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
    assert names == ["mail.lab.test"]


# -- IMAP: 143 with STARTTLS, 993 with implicit TLS ------------------------------------------------


def test_imap_143_refuses_plaintext_login(lab) -> None:
    bob = lab.user("bob")
    client = imaplib.IMAP4(mail(lab), 143, timeout=10)
    try:
        assert "LOGINDISABLED" in client.capabilities and "STARTTLS" in client.capabilities
        with pytest.raises(imaplib.IMAP4.error, match=r"\[PRIVACYREQUIRED\]"):
            client.login(bob.login, bob.password)
    finally:
        client.shutdown()


def test_imap_143_login_after_starttls(lab) -> None:
    bob = lab.user("bob")
    client = imaplib.IMAP4(mail(lab), 143, timeout=10)
    try:
        client.starttls(ssl_context=lab.ssl_context())
        assert "LOGINDISABLED" not in client.capabilities and "AUTH=PLAIN" in client.capabilities
        assert client.login(bob.login, bob.password)[0] == "OK"
    finally:
        client.logout()


def test_message_submitted_on_465_is_fetched_on_993(lab) -> None:
    alice, bob = lab.user("alice"), lab.user("bob")
    subject = f"lab test {uuid.uuid4()}"
    submit(lab, alice, [bob.login], text_message(subject, "Hi Bob", From=alice.login, To=bob.login),
           timeout=10)
    message = within(lambda: first_message(lab, bob, subject), 20)
    assert message is not None, "the message did not arrive in Bob's mailbox"
    assert message["Subject"] == subject
    received = message.get_all("Received")
    assert "by mail.lab.test with LMTP" in received[0]  # Dovecot stored it
    assert any("with ESMTPSA" in line for line in received)  # submitted over TLS (S), authenticated (A)


# -- Third-party clients -------------------------------------------------------------------------


def test_swaks_starttls_and_tls_on_connect(lab) -> None:
    swaks = require_program("swaks", "Debian package swaks")
    supports = subprocess.run([swaks, "--support"], capture_output=True, text=True).stdout
    require("TLS supported" in supports, "swaks with TLS (Debian package libnet-ssleay-perl: Net::SSLeay)")
    for mode in (["--port", "587", "--tls"], ["--port", "465", "--tls-on-connect"]):
        done = subprocess.run([swaks, "--server", mail(lab), *mode, "--quit-after", "EHLO"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "TLS started with cipher" in done.stdout


@pytest.mark.parametrize(("protocol", "port", "expected"), [("smtp", 587, "250"), ("imap", 143, "OK")])
def test_openssl_s_client_starttls_verifies_against_the_lab_ca(lab, protocol: str,
                                                               port: int, expected: str) -> None:
    openssl = require_program("openssl", "Debian package openssl")
    done = subprocess.run(
        [openssl, "s_client", "-starttls", protocol, "-connect", f"{mail(lab)}:{port}",
         "-CAfile", str(lab.ca_file), "-verify_hostname", "mail.lab.test", "-verify_return_error", "-brief"],
        input="", capture_output=True, text=True, timeout=30,
    )
    assert "Verification: OK" in done.stderr, done.stderr
    assert "Verified peername: mail.lab.test" in done.stderr
