"""The wiretap on mitm.lab.test: what an eavesdropper sees, and what a STRIPTLS downgrade does.

The rules that rewrite the conversation are checked on the real servers' texts; the modes are
checked end to end, through the wiretap, against the lab's real Postfix and Dovecot.
"""

from __future__ import annotations

import imaplib
import smtplib
import time

import pytest

from mailtls.config import LabConfig
from mailtls.runtime import set_wiretap_mode, transcript_path
from mailtls.wiretap import (
    Route,
    refusal,
    starttls_command,
    starttls_verdict,
    strip_imap_line,
    strip_smtp_reply,
)

# -- The rewriting rules, on the texts the lab's servers send ---------------------------------------

POSTFIX_EHLO = [b"250-mail.lab.test\r\n", b"250-PIPELINING\r\n", b"250-SIZE 10240000\r\n", b"250-VRFY\r\n",
                b"250-ETRN\r\n", b"250-STARTTLS\r\n", b"250-ENHANCEDSTATUSCODES\r\n", b"250-8BITMIME\r\n",
                b"250-DSN\r\n", b"250-SMTPUTF8\r\n", b"250 CHUNKING\r\n"]


def test_strip_removes_starttls_from_the_ehlo_reply() -> None:
    stripped = strip_smtp_reply(POSTFIX_EHLO)
    assert b"250-STARTTLS\r\n" not in stripped
    assert stripped == [line for line in POSTFIX_EHLO if b"STARTTLS" not in line]


def test_strip_keeps_a_well_formed_reply_when_starttls_was_last() -> None:
    assert strip_smtp_reply([b"250-legacy.example\r\n", b"250 STARTTLS\r\n"]) == [b"250 legacy.example\r\n"]


def test_strip_removes_starttls_from_imap_capabilities() -> None:
    greeting = (b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS"
                b" LOGINDISABLED] Dovecot ready.\r\n")
    assert strip_imap_line(greeting) == greeting.replace(b" STARTTLS", b"")
    assert strip_imap_line(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n") == b"* CAPABILITY IMAP4rev1\r\n"
    assert strip_imap_line(b"a1 OK STARTTLS is fine\r\n") == b"a1 OK STARTTLS is fine\r\n"  # not a capability


def test_starttls_commands_and_answers() -> None:
    assert starttls_command("smtp", b"starttls\r\n") == b""
    assert starttls_command("smtp", b"MAIL FROM:<a@b>\r\n") is None
    assert starttls_command("imap", b"a7 STARTTLS\r\n") == b"a7"
    assert refusal("imap", b"a7") == b"a7 BAD TLS support isn't enabled.\r\n"
    assert starttls_verdict("smtp", b"", [b"220 2.0.0 Ready to start TLS\r\n"]) is True
    assert starttls_verdict("smtp", b"", [b"454 4.7.0 TLS not available due to local problem\r\n"]) is False
    assert starttls_verdict("imap", b"a7", [b"* BYE going away\r\n"]) is None
    assert starttls_verdict("imap", b"a7", [b"a7 OK Begin TLS negotiation now.\r\n"]) is True


def test_routes_are_parsed_with_clear_errors() -> None:
    assert Route.parse("smtp:0.0.0.0:25:198.18.0.10:25") == Route("smtp", "0.0.0.0", 25, "198.18.0.10", 25)
    with pytest.raises(ValueError, match="expected"):
        Route.parse("pop3:0.0.0.0:110:x:110")
    with pytest.raises(ValueError, match="numbers"):
        Route.parse("smtp:0.0.0.0:smtp:x:25")


# -- The modes, through mitm.lab.test, against the real servers -------------------------------------


@pytest.fixture
def wiretap(lab):
    """Yields a function that sets the wiretap's mode; the transcript starts empty each time."""

    def set_mode(mode: str) -> None:
        set_wiretap_mode(LabConfig(), mode)
        transcript_path(LabConfig().runtime).unlink(missing_ok=True)

    yield set_mode
    set_wiretap_mode(LabConfig(), "pass")


def client_context(lab):
    """Trusts the lab CA only; the host name is the real server's, not the wiretap's address."""
    context = lab.ssl_context()
    context.check_hostname = False  # the chain is still verified: see test_lab.py for names
    return context


def transcript_text(lab) -> str:
    time.sleep(0.2)  # the wiretap writes as it relays
    return "\n".join(entry.get("text", "") for entry in lab.transcript())


@pytest.mark.lab
def test_record_shows_a_plaintext_imap_password_and_no_tls_one(lab, wiretap) -> None:
    wiretap("record")
    mitm, bob = lab.address("mitm.lab.test"), lab.user("bob")
    careless = imaplib.IMAP4(mitm, 143, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        careless.login(bob.login, bob.password)  # a client that ignores LOGINDISABLED
    careless.shutdown()
    assert bob.password in transcript_text(lab), "the eavesdropper should have seen the password"

    wiretap("record")
    with imaplib.IMAP4_SSL(mitm, 993, ssl_context=client_context(lab), timeout=10) as careful:
        assert careful.login(bob.login, bob.password)[0] == "OK"
    entries = lab.transcript()
    assert entries and all("encrypted_bytes" in e for e in entries)
    assert bob.password not in transcript_text(lab)


@pytest.mark.lab
def test_record_sees_starttls_begin_and_nothing_after(lab, wiretap) -> None:
    wiretap("record")
    alice = lab.user("alice")
    with smtplib.SMTP(lab.address("mitm.lab.test"), 587, timeout=10) as client:
        client.ehlo("laptop.lab.test")
        client.starttls(context=client_context(lab))
        client.login(alice.login, alice.password)
    seen = transcript_text(lab)
    assert "ehlo laptop.lab.test" in seen.lower() and "STARTTLS" in seen \
        and "220 2.0.0 Ready to start TLS" in seen
    assert "AUTH" not in seen.split("Ready to start TLS")[1]
    assert any("encrypted_bytes" in e for e in lab.transcript())


@pytest.mark.lab
def test_strip_downgrades_an_opportunistic_client_and_stops_a_strict_one(lab, wiretap) -> None:
    wiretap("strip")
    mitm = lab.address("mitm.lab.test")
    subject = f"stripped {time.time()}"
    with smtplib.SMTP(mitm, 25, timeout=10) as opportunistic:
        opportunistic.ehlo()
        assert not opportunistic.has_extn("starttls")
        assert opportunistic.docmd("STARTTLS") == (502, b"5.5.1 Error: command not implemented")
        opportunistic.sendmail("someone@example.org", ["bob@lab.test"],
                               f"Subject: {subject}\r\n\r\nsecret plans\r\n")
    assert "secret plans" in transcript_text(lab), "the downgraded message crossed in clear"

    with smtplib.SMTP(mitm, 587, timeout=10) as strict:
        strict.ehlo()
        with pytest.raises(smtplib.SMTPNotSupportedError):
            strict.starttls(context=client_context(lab))  # a client that requires TLS gives up here

    strict_imap = imaplib.IMAP4(mitm, 143, timeout=10)
    assert "STARTTLS" not in strict_imap.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="TLS not supported"):
        strict_imap.starttls(ssl_context=client_context(lab))
    strict_imap.shutdown()


@pytest.mark.lab
def test_pass_mode_relays_tls_untouched(lab, wiretap) -> None:
    wiretap("pass")
    with smtplib.SMTP(lab.address("mitm.lab.test"), 587, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=client_context(lab))
        client.ehlo()
        assert client.has_extn("auth")
    assert lab.transcript() == []
