"""The chapter "Symptoms and fixes" quotes what real programs print: here the lab makes them print it.

Each symptom is provoked on the lab's real servers: Python's ``smtplib``, ``imaplib`` and ``ssl``
against the wrong port or the wrong certificate, ``openssl s_client``, the relay's client TLS
levels, and a few broken files (edited in the scratch copy of labs/, reloaded, then restored).
Everything the programs print, and the hosts' logs, is collected; every line of every ``text``
block of the chapter, in both languages, must match from its start a line collected here, with
the conventions of ``test_docs_transcripts``: ``…`` for an elided part (a timestamp, a process
or queue id, an address), the examples' host names. A line in a ``Debian 13 (...)`` tab is
checked against a Debian 13 lab only, one in a ``Debian 12`` tab against a Debian 12 lab, one
outside tabs against every lab; a generation the page quotes that no lab of that generation
checked fails the run under CI.
"""

from __future__ import annotations

import contextlib
import difflib
import imaplib
import smtplib
import socket
import ssl
import subprocess
import traceback
from collections.abc import Callable

import pytest

from course import DOCS, LANGUAGES
from helpers.labs import edited
from helpers.mail import delivery_line, send_through_relay
from helpers.sessions import LineSession
from helpers.transcripts import Exercised, lab_debian, quoted_lines, text_blocks, unmatched
from mailtls.config import LabConfig
from mailtls.errors import LabError
from mailtls.hosts import LEGACY, MAIL, RELAY
from mailtls.lab import resolve_lab_names

pytestmark = pytest.mark.lab

PAGE = "troubleshooting/index.md"
WAIT = 3  # seconds a client waits for a server that is waiting for it too
LAB_FILES = LabConfig().runtime  # the single lab's generated files
LEAF_ONLY = LAB_FILES / "mail.lab.test.leaf-only.pem"  # the certificate without its issuer


def printed(error: BaseException) -> str:
    """The last line of what Python prints for an uncaught exception."""
    return traceback.format_exception_only(error)[-1].rstrip("\n")


def fails(lines: list[str], action: Callable[[], object]) -> BaseException:
    """Run ``action``, which must raise; keep what Python would print for it."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 - any exception is the symptom under test
        lines.append(printed(error))
        return error
    raise AssertionError(f"{action} did not fail")


def s_client(lines: list[str], address: str, port: int, *options: str) -> None:
    """What ``openssl s_client`` prints on both its outputs, for a connection closed at once."""
    done = subprocess.run(["openssl", "s_client", "-connect", f"{address}:{port}", *options],
                          input="", capture_output=True, text=True, timeout=30)
    lines += (done.stdout + done.stderr).splitlines()


def client_hello_until_closed(address: str, port: int) -> None:
    """Send a TLS ClientHello to a clear-text port and wait until the server hangs up.

    ``IMAP4_SSL`` on 143 hangs up as soon as it reads the greeting, so Dovecot logs either
    "Too many invalid commands" or "Connection closed", whichever comes first; a client that
    waits makes Dovecot read the whole ClientHello, every time.
    """
    hello = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
    with contextlib.suppress(ssl.SSLWantReadError):
        hello.do_handshake()
    with socket.create_connection((address, port), timeout=10) as connection:
        connection.sendall(outgoing.read())
        while connection.recv(4096):
            pass


def wrong_ports(lab, lines: list[str]) -> None:
    """TLS spoken to a STARTTLS port, and clear text to an implicit-TLS port."""
    context = lab.ssl_context()
    fails(lines, lambda: smtplib.SMTP_SSL("mail.lab.test", 587, context=context, timeout=WAIT))
    fails(lines, lambda: smtplib.SMTP("mail.lab.test", 465, timeout=WAIT))
    fails(lines, lambda: imaplib.IMAP4_SSL("mail.lab.test", 143, ssl_context=context, timeout=WAIT))
    client_hello_until_closed(lab.address("mail.lab.test"), 143)
    fails(lines, lambda: imaplib.IMAP4("mail.lab.test", 993, timeout=WAIT))


def login_before_tls(lab, lines: list[str]) -> None:
    """AUTH on 587 and LOGIN on 143 before STARTTLS: Python's error and the servers' own words."""
    alice = lab.user("alice")
    with smtplib.SMTP("mail.lab.test", 587, timeout=10) as client:
        fails(lines, lambda: client.login(alice.login, alice.password))
    address = lab.address("mail.lab.test")
    with LineSession(address, 587, lines) as session:
        session.read_smtp_reply()
        session.smtp("EHLO laptop.example.org", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "QUIT")

    client = imaplib.IMAP4("mail.lab.test", 143, timeout=10)
    assert "LOGINDISABLED" in client.capabilities
    fails(lines, lambda: client.login(alice.login, alice.password))
    client.shutdown()
    with LineSession(address, 143, lines) as session:
        session.read_imap_until("*")
        session.imap(f"a1 LOGIN {alice.login} secret")


def certificates(lab, lines: list[str]) -> None:
    """Certificates a client refuses: self-signed, from a CA it does not trust, for another name."""
    lab_ca, system_ca = lab.ssl_context(), ssl.create_default_context()

    def starttls(host: str, port: int, context: ssl.SSLContext) -> None:
        with smtplib.SMTP(host, port, timeout=10) as client:
            client.starttls(context=context)

    fails(lines, lambda: starttls("selfsigned.lab.test", 25, lab_ca))
    fails(lines, lambda: starttls("mail.lab.test", 587, system_ca))
    # A name that leads to the server but is not in its certificate, and an address that is not.
    resolve_lab_names({"imap.lab.test": lab.address("mail.lab.test")})
    fails(lines, lambda: imaplib.IMAP4_SSL("imap.lab.test", 993, ssl_context=lab_ca, timeout=10))
    with socket.create_connection((lab.address("mail.lab.test"), 993), timeout=10) as raw:
        fails(lines, lambda: lab_ca.wrap_socket(raw, server_hostname="192.0.2.25"))
    # The lab's certificates carry the hosts' addresses too: by address, the lab CA is enough.
    with smtplib.SMTP(lab.address("mail.lab.test"), 587, timeout=10) as client:
        assert client.starttls(context=lab_ca)[0] == 220

    mail, selfsigned = lab.address("mail.lab.test"), lab.address("selfsigned.lab.test")
    ca = str(lab.ca_file)
    s_client(lines, selfsigned, 25, "-starttls", "smtp", "-servername", "selfsigned.lab.test", "-CAfile", ca)
    s_client(lines, mail, 465, "-servername", "mail.lab.test")
    s_client(lines, mail, 993, "-servername", "imap.lab.test",
             "-verify_hostname", "imap.lab.test", "-CAfile", ca)


def relay_levels(lab, lines: list[str]) -> None:
    """The relay's clients at encrypt, verify, secure and may (see labs/hosts/relay/transport)."""
    for recipient in ("encrypt@legacy.lab.test", "verify@selfsigned.lab.test",
                      "secure@selfsigned.lab.test", "may@selfsigned.lab.test"):
        queue_id, _ = send_through_relay(lab, recipient)
        delivery_line(queue_id)
    lab.backend.postfix_command(RELAY, "postsuper", "-d", "ALL")  # nothing deferred stays behind


#: Each generation's Dovecot certificate line in mail.lab.test's dovecot.conf: how it starts, and the
#: other generation's name for it (Dovecot 2.4 renamed ssl_cert to ssl_server_cert_file, without "<").
DOVECOT_CERT = {
    12: ("ssl_cert = <", "ssl_server_cert_file = "),
    13: ("ssl_server_cert_file = ", "ssl_cert = <"),
}


def dovecot_other_generation_name(lab, lines: list[str]) -> None:
    """The other generation's Dovecot setting in the lab's dovecot.conf (2.4's name in 2.3's file,
    2.3's in 2.4's): the reload refuses it, nothing changes."""
    conf = lab.config_file("mail", "dovecot.conf")
    original = conf.read_text()
    own, other = DOVECOT_CERT[lab_debian(lab)]
    assert own in original, f"{conf} has no {own!r}"
    conf.write_text(original.replace(own, other))
    try:
        with pytest.raises(LabError) as refused:
            lab.backend.reload()
    finally:
        conf.write_text(original)
    lines += str(refused.value).splitlines()


def second_configuration(lab, lines: list[str]) -> None:
    """Four files changed at once, on different hosts and ports:

    - Dovecot sends its certificate without the issuer (code 20) and asks for TLS 1.3 at least;
    - the ``submissions`` service loses ``smtpd_tls_wrappermode=yes``;
    - legacy.lab.test gets ``smtpd_use_tls = yes`` from an old tutorial;
    - the relay trusts another CA than the one that signed mail.lab.test's certificate.
    """
    LEAF_ONLY.write_text((LAB_FILES / "mail.lab.test.pem").read_text().split("-----END CERTIFICATE-----")[0]
                         + "-----END CERTIFICATE-----\n")
    own, _ = DOVECOT_CERT[lab_debian(lab)]
    changes = {
        "mail/dovecot.conf": [(f"{own}/run/mailtls/mail.lab.test.pem", f"{own}{LEAF_ONLY}"),
                              ("ssl_min_protocol = TLSv1.2", "ssl_min_protocol = TLSv1.3")],
        "mail/master.cf": [("  -o smtpd_tls_wrappermode=yes\n", "")],
        "legacy/main.cf": [("smtpd_tls_security_level = none\n",
                            "smtpd_tls_security_level = none\nsmtpd_use_tls = yes\n")],
        "relay/main.cf": [("smtp_tls_CAfile = /run/mailtls/ca.pem",
                           "smtp_tls_CAfile = /run/mailtls/selfsigned.lab.test.pem")],
    }
    with edited(lab, changes):
        fails(lines, lambda: imaplib.IMAP4_SSL("mail.lab.test", 993, ssl_context=ssl.create_default_context(),
                                                 timeout=10))
        s_client(lines, lab.address("mail.lab.test"), 993, "-servername", "mail.lab.test")
        tls12 = lab.ssl_context()
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        fails(lines, lambda: imaplib.IMAP4_SSL("mail.lab.test", 993, ssl_context=tls12, timeout=10))

        fails(lines, lambda: smtplib.SMTP_SSL("mail.lab.test", 465, context=lab.ssl_context(), timeout=WAIT))
        with LineSession(lab.address("mail.lab.test"), 465, lines) as session:
            greeting = session.read_smtp_reply()
            session.smtp("EHLO laptop.example.org", "QUIT")
        assert greeting.startswith("220 ") and "250-AUTH PLAIN LOGIN" in lines  # AUTH offered in clear

        done = lab.backend.postfix_command(LEGACY, "postconf", "smtpd_use_tls", "smtpd_tls_security_level")
        lines += (done.stdout + done.stderr).splitlines()
        with LineSession(lab.address("legacy.lab.test"), 25, lines) as session:
            session.read_smtp_reply()
            ehlo = len(lines)
            session.smtp("EHLO laptop.example.org")
            assert not [line for line in lines[ehlo:] if "STARTTLS" in line]  # the level, none, wins
            session.smtp("QUIT")

        queue_id, _ = send_through_relay(lab, "alice+verify@lab.test")
        assert "status=deferred" in delivery_line(queue_id)
        lab.backend.postfix_command(RELAY, "postsuper", "-d", "ALL")
    LEAF_ONLY.unlink()


def missing_certificate(lab, lines: list[str]) -> None:
    """smtpd_tls_chain_files names a file that does not exist."""
    missing = "/run/mailtls/mail.lab.test.missing.pem"
    with edited(lab, {"mail/main.cf": [("smtpd_tls_chain_files = /run/mailtls/mail.lab.test.chain.pem",
                                        f"smtpd_tls_chain_files = {missing}")]}):
        with LineSession(lab.address("mail.lab.test"), 25, lines) as session:
            session.read_smtp_reply()
            session.smtp("EHLO laptop.example.org", "STARTTLS")
            fails(lines, lambda: session.starttls(lab.ssl_context()))
        with smtplib.SMTP("mail.lab.test", 25, timeout=10) as client:
            fails(lines, lambda: client.starttls(context=lab.ssl_context()))
        s_client(lines, lab.address("mail.lab.test"), 25, "-starttls", "smtp", "-servername", "mail.lab.test")


@pytest.fixture(scope="module")
def said(lab) -> list[str]:
    """Every line the programs printed while the lab was shown each symptom, and the hosts' logs."""
    lines: list[str] = []
    wrong_ports(lab, lines)
    login_before_tls(lab, lines)
    certificates(lab, lines)
    relay_levels(lab, lines)
    dovecot_other_generation_name(lab, lines)
    second_configuration(lab, lines)
    missing_certificate(lab, lines)
    for host in (MAIL, RELAY):
        for log in sorted((LabConfig().host_runtime(host) / "log").glob("*.log")):
            lines += log.read_text(errors="replace").splitlines()
    return lines


def page_lines(language: str) -> dict[str, frozenset[int]]:
    """Every non-empty line of the page's ``text`` blocks, with the Debian releases it belongs to."""
    return quoted_lines(text_blocks(DOCS / language / PAGE))


EXERCISED = Exercised()


@pytest.fixture(scope="session", autouse=True)
def every_quoted_generation_is_checked():
    """At the end of the run: each generation the page quotes was checked by a lab of its own."""
    yield
    EXERCISED.complain({language: page_lines(language) for language in LANGUAGES}, f"{PAGE}: language")


@pytest.mark.parametrize("language", LANGUAGES)
def test_quoted_lines_are_what_the_programs_printed(lab, said: list[str], language: str) -> None:
    quoted = page_lines(language)
    assert len(quoted) > 20, f"{language}/{PAGE} quotes almost nothing"
    debian = lab_debian(lab)
    wrong = unmatched(quoted, debian, said)
    closest = {line: difflib.get_close_matches(line, said, n=3, cutoff=0.4) for line in wrong}
    assert not wrong, f"{language}/{PAGE} quotes lines no program of Debian {debian} printed " \
        "(closest real lines):\n" + "\n".join(f"{line!r}\n    {closest[line]}" for line in wrong)
    EXERCISED.record(language, debian)
