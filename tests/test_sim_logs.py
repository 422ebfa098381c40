"""The simulated servers write their logs as the real ones do, from the first connection.

The expected lines were measured on 30 November 2026:

- on the real lab, containers backend, Debian 13 (Postfix 3.10.13, Dovecot 2.4.1): the scenarios
  below run from this machine (198.18.0.1) against mail.lab.test (198.18.0.10), then read from
  ``/run/mailtls/hosts/mail.lab.test/log/{postfix,dovecot}.log``; every smtpd and Dovecot line of
  :data:`SMTPD` and :data:`DOVECOT` for 2.4/3.10 was written so by the real servers;
- for Debian 12, with its binaries alone (the lab was busy): Dovecot 2.3.19.1 with the lab's
  ``dovecot.conf`` settings on 127.0.0.1, clients on 127.0.0.2 (not "secured"), and a Postfix 3.7.11
  instance with the lab's master.cf services and TLS settings on 127.0.0.1 (SASL through that
  Dovecot); the same scenarios;
- Dovecot 2.4.1 alone too (the Debian 13 image, host network), for the lines the lab confirmed.

Time stamps, process IDs, Dovecot's session IDs and queue IDs differ from run to run; the rest must
match. Lines of the real servers the simulation does not write (the real lab's readiness probes,
smtpd's ``client=`` and cleanup's ``message-id=`` lines, the native backend's alias and NIS
warnings) are not compared here.

Where the real lab keeps these logs: the Postfix log in ``hosts/HOST/log/postfix.log`` of the lab's
files (what ``lab.log(HOST)`` and ``status.json``'s "logs" name), Dovecot's beside it,
``hosts/mail.lab.test/log/dovecot.log`` (its ``log_path = /var/log/dovecot.log``; the native backend
sets ``log_path`` there, the containers mount the folder on /var/log). ``lab logs`` prints both.
"""

from __future__ import annotations

import imaplib
import re
import shutil
import smtplib
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailtls import maillog
from mailtls.generations import BOOKWORM, GENERATIONS, TRIXIE, Generation
from mailtls.hosts import MAIL, SHIPPED_LABS

MAIL_ADDRESS = "198.18.0.10"
TIMEOUT = 10


@contextmanager
def simulated(generation: Generation, tmp_path: Path) -> Iterator[object]:
    """A fresh simulated lab of ``generation``; this process's sockets reach it until the block ends."""
    from mailtls.sim.lab import SimLab

    saved = socket.create_connection
    try:
        yield SimLab(labs=SHIPPED_LABS, files=tmp_path / "files", generation=generation)
    finally:
        socket.create_connection = saved


def trusting(lab) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(lab.files / "ca.pem"))
    context.check_hostname = False  # by address: the name is not the point here
    return context


def old_client() -> ssl.SSLContext:
    """A client of TLS 1.0 and 1.1 only, which the lab's servers refuse."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version, context.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def postfix_texts(lab) -> list[tuple[str, str]]:
    """(program, text) of each line of mail.lab.test's Postfix log; every line must parse."""
    lines = [maillog.LogLine.parse(line) for line in lab.log_file(MAIL.name).read_text().splitlines()]
    assert all(lines)
    return [(line.program, line.text) for line in lines]  # type: ignore[union-attr]


def dovecot_texts(lab) -> list[tuple[str, str]]:
    """(process, level: text) of each line of mail.lab.test's Dovecot log; every line must parse."""
    text = lab.dovecot_log_file(MAIL.name).read_text()
    lines = [maillog.DovecotLine.parse(line) for line in text.splitlines()]
    assert all(lines)
    return [(line.process, f"{line.level}: {line.text}") for line in lines]  # type: ignore[union-attr]


def normal(text: str) -> str:
    """A line without what changes from run to run: process and session IDs, queue IDs, seconds."""
    text = re.sub(r"session=<[^>]*>", "session=<…>", text)
    text = re.sub(r"mpid=\d+", "mpid=…", text)
    text = re.sub(r"<\d+><[^>]*>", "<…><…>", text)
    text = re.sub(r"\b[0-9A-F]{10,12}\b", "QUEUEID", text)
    return re.sub(r"in \d+ secs", "in 0 secs", text)


# -- A fresh lab's logs -------------------------------------------------------------------------------

# The first line of each log once the real lab is up (containers backend: Postfix runs in the
# foreground, so no postfix-script line; the native backend's configuration is its own folder).
FIRST_POSTFIX = {"3.10": ("postfix/master", "daemon started -- version 3.10.13, configuration /etc/postfix"),
                 "3.7": ("postfix/master", "daemon started -- version 3.7.11, configuration /etc/postfix")}
FIRST_DOVECOT = {
    "2.4": ("master", "Info: Dovecot v2.4.1-4 (7d8c0e5759) starting up for imap, lmtp "
                      "(core dumps disabled)"),
    "2.3": ("master", "Info: Dovecot v2.3.19.1 (9b53102964) starting up for imap, lmtp "
                      "(core dumps disabled)"),
}


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_a_fresh_lab_has_both_logs(generation: Generation, tmp_path: Path) -> None:
    with simulated(generation, tmp_path) as lab:
        assert postfix_texts(lab)[0] == FIRST_POSTFIX[generation.postfix]
        assert dovecot_texts(lab) == [FIRST_DOVECOT[generation.dovecot]]
        status_logs = lab.log_file(MAIL.name)
        assert status_logs.parent == lab.dovecot_log_file(MAIL.name).parent  # as both real backends keep them


def test_connect_log_reads_a_fresh_simulated_lab(tmp_path: Path) -> None:
    """``lab.log("mail.lab.test")`` of ``mailtls.lab.connect(backend="sim")`` before any mail."""
    from mailtls.lab import connect

    saved = socket.create_connection
    try:
        lab = connect(backend="sim")
        assert "postfix/master[" in lab.log("mail.lab.test").splitlines()[0]
    finally:
        socket.create_connection = saved


# -- What smtpd logs of a connection --------------------------------------------------------------------


def submit(lab) -> None:
    """587: STARTTLS, AUTH, one message, QUIT (smtplib's ``sendmail``)."""
    user = "alice@lab.test"
    with smtplib.SMTP(MAIL_ADDRESS, 587, timeout=TIMEOUT) as smtp:
        smtp.starttls(context=trusting(lab))
        smtp.login(user, lab.passwords[user])
        smtp.sendmail(user, [user], "Subject: log\r\n\r\nA test.\r\n")


def leave_after_ehlo(lab) -> None:
    smtp = smtplib.SMTP(MAIL_ADDRESS, 587, timeout=TIMEOUT)
    smtp.ehlo()
    smtp.close()


def old_tls_on_587(lab) -> None:
    smtp = smtplib.SMTP(MAIL_ADDRESS, 587, timeout=TIMEOUT)
    with pytest.raises(ssl.SSLError):
        smtp.starttls(context=old_client())
    smtp.close()


def wrong_password(lab) -> None:
    with smtplib.SMTP(MAIL_ADDRESS, 587, timeout=TIMEOUT) as smtp:
        smtp.starttls(context=trusting(lab))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("alice@lab.test", "wrong")


def silent_on_465(lab) -> None:
    sock = socket.create_connection((MAIL_ADDRESS, 465), TIMEOUT)
    time.sleep(0.1)
    sock.close()


def unknown_command(lab) -> None:
    with smtplib.SMTP(MAIL_ADDRESS, 25, timeout=TIMEOUT) as smtp:
        smtp.ehlo()
        assert smtp.docmd("FOO")[0] == 500


CLIENT = "unknown[198.18.0.1]"
# OpenSSL 3.0 (Postfix 3.7) names the group X25519, OpenSSL 3.5 (Postfix 3.10) x25519 (measured).
TLS_FROM = (f"Anonymous TLS connection established from {CLIENT}: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
            "(256/256 bits) key-exchange {x25519} server-signature ECDSA (prime256v1) server-digest SHA256")
# smtpd_sasl_glue.c (3.7.11 and 3.10.13): the reason is Dovecot's, which gives none; the user is the
# one of Dovecot's FAIL reply (xsasl_dovecot_server.c). smtplib tries PLAIN, then LOGIN.
SASL_FAILED = (f"warning: {CLIENT}: SASL {{mechanism}} authentication failed: (reason unavailable), "
               "sasl_username=alice@lab.test")
# Where OpenSSL 3.0 (Debian 12) and 3.5 (Debian 13) raise "unsupported protocol" in a server.
UNSUPPORTED_AT = {"3.7": "../ssl/statem/statem_srvr.c:1664", "3.10": "../ssl/statem/statem_srvr.c:1780"}
SUBMISSION, SUBMISSIONS, SMTP = "postfix/submission/smtpd", "postfix/submissions/smtpd", "postfix/smtpd"
# (program, text) of smtpd's lines for each scenario; "NOQUEUE: " is Postfix 3.10's, absent in 3.7.
SMTPD = {
    submit: [(SUBMISSION, f"connect from {CLIENT}"), (SUBMISSION, TLS_FROM),
             (SUBMISSION, f"disconnect from {CLIENT} ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 "
                          "commands=8")],
    leave_after_ehlo: [(SUBMISSION, f"connect from {CLIENT}"),
                       (SUBMISSION, f"NOQUEUE: lost connection after EHLO from {CLIENT}"),
                       (SUBMISSION, f"disconnect from {CLIENT} ehlo=1 commands=1")],
    old_tls_on_587: [(SUBMISSION, f"connect from {CLIENT}"),
                     (SUBMISSION, f"SSL_accept error from {CLIENT}: -1"),
                     (SUBMISSION, "warning: TLS library problem: error:0A000102:SSL routines::unsupported "
                                  "protocol:{unsupported}:"),
                     (SUBMISSION, f"NOQUEUE: lost connection after STARTTLS from {CLIENT}"),
                     (SUBMISSION, f"disconnect from {CLIENT} ehlo=1 starttls=0/1 commands=1/2")],
    wrong_password: [(SUBMISSION, f"connect from {CLIENT}"), (SUBMISSION, TLS_FROM),
                     (SUBMISSION, SASL_FAILED.format(mechanism="PLAIN")),
                     (SUBMISSION, SASL_FAILED.format(mechanism="LOGIN")),
                     (SUBMISSION,
                      f"disconnect from {CLIENT} ehlo=2 starttls=1 auth=0/2 quit=1 commands=4/6")],
    silent_on_465: [(SUBMISSIONS, f"connect from {CLIENT}"),
                    (SUBMISSIONS, f"SSL_accept error from {CLIENT}: lost connection"),
                    (SUBMISSIONS, f"NOQUEUE: lost connection after CONNECT from {CLIENT}"),
                    (SUBMISSIONS, f"disconnect from {CLIENT} commands=0/0")],
    unknown_command: [(SMTP, f"connect from {CLIENT}"),
                      (SMTP, f"disconnect from {CLIENT} ehlo=1 quit=1 unknown=0/1 commands=2/3")],
}


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("scenario", list(SMTPD), ids=lambda s: s.__name__)
def test_smtpd_logs_each_connection(generation: Generation, scenario: Callable, tmp_path: Path) -> None:
    with simulated(generation, tmp_path) as lab:
        scenario(lab)
        smtpd = [(program, text) for program, text in postfix_texts(lab) if program.endswith("/smtpd")]
    group = "X25519" if generation.postfix == "3.7" else "x25519"
    expected = [(program, text.replace("{unsupported}", UNSUPPORTED_AT[generation.postfix])
                 .replace("{x25519}", group)) for program, text in SMTPD[scenario]]
    if generation.postfix == "3.7":
        expected = [(program, text.removeprefix("NOQUEUE: ")) for program, text in expected]
    assert smtpd == expected


def test_one_smtpd_process_serves_a_connection(tmp_path: Path) -> None:
    """Every line of one connection carries the same smtpd process ID (the real lab: one process per
    connection at a time, reused for later ones)."""
    with simulated(TRIXIE, tmp_path) as lab:
        submit(lab)
        lines = [maillog.LogLine.parse(line) for line in lab.log_file(MAIL.name).read_text().splitlines()]
    smtpd = [line for line in lines if line and line.program.endswith("/smtpd")]
    assert len(smtpd) == 3 and len({line.pid for line in smtpd}) == 1


# -- What Dovecot logs of a connection ------------------------------------------------------------------


def imap_starttls_select(lab) -> None:
    user = "alice@lab.test"
    imap = imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT)
    imap.starttls(ssl_context=trusting(lab))
    imap.login(user, lab.passwords[user])
    imap.select("INBOX")
    imap.logout()


def imaps_login(lab) -> None:
    user = "alice@lab.test"
    imap = imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=trusting(lab), timeout=TIMEOUT)
    imap.login(user, lab.passwords[user])
    imap.logout()


def imap_logout(lab) -> None:
    imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT).logout()


def imap_hang_up(lab) -> None:
    sock = socket.create_connection((MAIL_ADDRESS, 143), TIMEOUT)
    sock.recv(1000)
    sock.close()


def imaps_hang_up(lab) -> None:
    imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=trusting(lab), timeout=TIMEOUT).shutdown()


def imaps_old_client(lab) -> None:
    with pytest.raises(ssl.SSLError):
        imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=old_client(), timeout=TIMEOUT)


def imaps_untrusting(lab) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=ssl.create_default_context(), timeout=TIMEOUT)


def imaps_wrong_password(lab) -> None:
    imap = imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=trusting(lab), timeout=TIMEOUT)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("alice@lab.test", "wrong")
    imap.logout()


def imap_cleartext_login(lab) -> None:
    imap = imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("alice@lab.test", lab.passwords["alice@lab.test"])
    imap.logout()


def imaps_silent(lab) -> None:
    sock = socket.create_connection((MAIL_ADDRESS, 993), TIMEOUT)
    sock.close()


FIELDS = "rip=198.18.0.1, lip=198.18.0.10"
UNSUPPORTED = "SSL_accept() failed: error:0A000102:SSL routines::unsupported protocol"
UNKNOWN_CA = "SSL_accept() failed: error:0A000418:SSL routines::tlsv1 alert unknown ca: SSL alert number 48"
BYTES = {"2.3": ("in=32 out=788", "in=12 out=477"), "2.4": ("in=32 out=836", "in=12 out=525")}
COUNTS = "deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0"
LOGIN = {"2.3": "Login", "2.4": "Logged in"}
# What imap-login says of a client that leaves without logging in: (2.3's words, 2.4's), each with
# "{attempts}" for its parenthesis ("no auth attempts in 0 secs"), and 2.4's reason code after it.
LOGGED_OUT = ("Disconnected: Aborted login by logging out ({attempts})",
              "Login aborted: Logged out ({attempts}) ({code})")
CLOSED = ("Disconnected: Connection closed ({attempts})",
          "Login aborted: Connection closed ({attempts}) ({code})")
NO_AUTH = ("no auth attempts in 0 secs", "no_auth_attempts")
AUTH_FAILED = ("auth failed, 1 attempts in 0 secs", "auth_failed")


def login_lines(dovecot: str, bytes_: str) -> list[tuple[str, str]]:
    return [("imap-login", f"Info: {LOGIN[dovecot]}: user=<alice@lab.test>, method=PLAIN, {FIELDS}, mpid=…, "
                           "TLS, session=<…>"),
            ("imap(alice@lab.test)<…><…>", f"Info: Disconnected: Logged out {bytes_} {COUNTS}")]


def aborted(dovecot: str, how: tuple[str, str], attempts: tuple[str, str],
            fields: str) -> list[tuple[str, str]]:
    event = how[0 if dovecot == "2.3" else 1].format(attempts=attempts[0], code=attempts[1])
    return [("imap-login", f"Info: {event}: {fields}, session=<…>")]


def handshake(dovecot: str, error: str | None) -> list[tuple[str, str]]:
    closed = "Connection closed" + (f": {error}" if error else "")
    event = (f"Disconnected: {closed} (no auth attempts in 0 secs)" if dovecot == "2.3" else
             f"Login aborted: {closed} (disconnected during TLS handshake) (tls_handshake_not_finished)")
    why = error or "Connection closed"
    return [("imap-login", f"Info: {event}: user=<>, {FIELDS}, TLS handshaking: {why}, session=<…>")]


# imap-login's (and the imap process's) lines for each scenario, by Dovecot version.
DOVECOT: dict[Callable, Callable[[str], list[tuple[str, str]]]] = {
    imap_starttls_select: lambda dovecot: login_lines(dovecot, BYTES[dovecot][0]),
    imaps_login: lambda dovecot: login_lines(dovecot, BYTES[dovecot][1]),
    imap_logout: lambda dovecot: aborted(dovecot, LOGGED_OUT, NO_AUTH, f"user=<>, {FIELDS}"),
    imap_hang_up: lambda dovecot: aborted(dovecot, CLOSED, NO_AUTH, f"user=<>, {FIELDS}"),
    imaps_hang_up: lambda dovecot: aborted(dovecot, CLOSED, NO_AUTH,
                                           f"user=<>, {FIELDS}, TLS: Connection closed"),
    imaps_old_client: lambda dovecot: handshake(dovecot, UNSUPPORTED),
    imaps_untrusting: lambda dovecot: handshake(dovecot, UNKNOWN_CA),
    imaps_wrong_password: lambda dovecot: aborted(dovecot, LOGGED_OUT, AUTH_FAILED,
                                                  f"user=<alice@lab.test>, method=PLAIN, {FIELDS}, TLS"),
    imap_cleartext_login: lambda dovecot: aborted(dovecot, LOGGED_OUT, AUTH_FAILED,
                                                  f"user=<alice@lab.test>, {FIELDS}"),
    imaps_silent: lambda dovecot: handshake(dovecot, None),
}


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("scenario", list(DOVECOT), ids=lambda s: s.__name__)
def test_dovecot_logs_each_connection(generation: Generation, scenario: Callable, tmp_path: Path) -> None:
    with simulated(generation, tmp_path) as lab:
        scenario(lab)
        logged = [(normal(process), normal(text)) for process, text in dovecot_texts(lab)[1:]]
    assert logged == DOVECOT[scenario](generation.dovecot)


# -- The one parser reads the real servers' lines ------------------------------------------------------

# Lines the real servers wrote (Dovecot 2.3.19.1 and 2.4.1 with log_path; Postfix's from the real lab).
REAL_DOVECOT = [
    "Nov 30 06:59:48 imap-login: Info: Login: user=<alice@lab.test>, method=PLAIN, rip=127.0.0.2, "
    "lip=127.0.0.1, mpid=32256, TLS, session=<0DGj9Hhhe45/AAAC>",
    "Nov 30 06:59:48 imap(alice@lab.test)<32256><0DGj9Hhhe45/AAAC>: Info: Disconnected: Logged out in=32 "
    "out=788 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0",
    "Nov 30 07:04:13 imap(alice@lab.test)<12><NKVjBHlh/c1/AAAC>: Info: Disconnected: Logged out in=74 "
    "out=1067 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=1 body_bytes=42",
    "Nov 30 07:04:14 imap-login: Info: Login aborted: Logged out (tried to use disallowed cleartext auth, 1 "
    "attempts in 0 secs) (cleartext_auth_disabled): user=<>, method=PLAIN, rip=127.0.0.2, lip=127.0.0.1, "
    "session=<7Ch8BHlhT7R/AAAC>",
    "Nov 30 07:02:25 imap-login: Error: Failed to initialize SSL connection: Couldn't initialize SSL server "
    "context: Can't set minimum protocol to 'TLSv1.4' (ssl_min_protocol setting): Unknown value: user=<>, "
    "rip=127.0.0.2, lip=127.0.0.1, session=<kHP7/Xhhzdl/AAAC>",
    "Nov 30 06:59:41 imap-login: Info: Disconnected: Connection closed (no auth attempts in 0 secs): "
    "user=<>, rip=127.0.0.2, lip=127.0.0.1, TLS handshaking: Connection closed, session=<U8E39HhhMtZ/AAAC>",
]


@pytest.mark.parametrize("line", REAL_DOVECOT, ids=range(len(REAL_DOVECOT)))
def test_maillog_reads_dovecot_lines_back_to_the_letter(line: str) -> None:
    parsed = maillog.DovecotLine.parse(line)
    assert parsed is not None and parsed.format() == line
    event = maillog.LoginEvent.parse(parsed.text) or maillog.ImapSessionEnd.parse(parsed.text)
    assert event is not None and event.format() == parsed.text


@pytest.mark.parametrize("text", [
    "disconnect from unknown[198.18.0.1] ehlo=2 starttls=1 auth=0/1 quit=1 commands=4/5",
    "disconnect from unknown[198.18.0.1] commands=0/0",
    "NOQUEUE: lost connection after STARTTLS from unknown[198.18.0.1]",
    "lost connection after DATA (12 bytes) from unknown[198.18.0.1]",
    "SSL_accept error from unknown[198.18.0.1]: -1",
    TLS_FROM.replace("{x25519}", "x25519"),
])
def test_maillog_reads_smtpd_lines_back_to_the_letter(text: str) -> None:
    kinds = (maillog.ClientDisconnect, maillog.LostConnection, maillog.SslAcceptError, maillog.TlsConnection)
    parsed = [found for kind in kinds if (found := kind.parse(text)) is not None]
    assert len(parsed) == 1 and parsed[0].format() == text


def test_disconnect_counts_in_smtpd_command_table_order() -> None:
    """smtpd.c writes its counters in the order of its command table, whatever the order of the commands."""
    line = maillog.ClientDisconnect("unknown[198.18.0.1]", (("quit", 1, 1), ("auth", 0, 1), ("ehlo", 2, 2),
                                                            ("starttls", 1, 1)))
    assert line.format() == ("disconnect from unknown[198.18.0.1] ehlo=2 starttls=1 auth=0/1 quit=1 "
                             "commands=4/5")


# BOOKWORM is imported for the module's readers: both generations run every parametrized test above.
assert BOOKWORM in GENERATIONS


# Measured with Dovecot 2.3.19.1 and 2.4.1 alike (an LMTP delivery of a message with a Message-ID).
LMTP = [("lmtp(…)", "Info: Connect from 127.0.0.1"),
        ("lmtp(alice@lab.test)<…><…>", "Info: msgid=<m1@lab.test>: saved mail to INBOX"),
        ("lmtp(…)", "Info: Disconnect from 127.0.0.1: Logged out (state=READY)")]


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_dovecot_logs_each_lmtp_delivery(generation: Generation, tmp_path: Path) -> None:
    user = "alice@lab.test"
    with simulated(generation, tmp_path) as lab:
        with smtplib.SMTP(MAIL_ADDRESS, 587, timeout=TIMEOUT) as smtp:
            smtp.starttls(context=trusting(lab))
            smtp.login(user, lab.passwords[user])
            smtp.sendmail(user, [user], "Message-ID: <m1@lab.test>\r\nSubject: log\r\n\r\nA test.\r\n")
        logged = [(re.sub(r"\(\d+\)", "(…)", normal(process)), text)
                  for process, text in dovecot_texts(lab)[1:]]
    assert logged == LMTP


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("ssl_setting", ["yes", "required"])
def test_an_authenticate_refused_before_tls(generation: Generation, ssl_setting: str, tmp_path: Path) -> None:
    """AUTHENTICATE PLAIN on 143 before STARTTLS, then LOGOUT (measured with Dovecot 2.3.19.1 and 2.4.1,
    the lab's file with ``ssl = yes`` and with ``ssl = required``)."""
    from mailtls.sim.lab import SimLab

    labs = tmp_path / "labs"
    shutil.copytree(SHIPPED_LABS, labs)
    conf = labs / "hosts" / "mail" / generation.folder / "dovecot.conf"
    conf.write_text(conf.read_text().replace("\nssl = yes\n", f"\nssl = {ssl_setting}\n"))
    saved = socket.create_connection
    try:
        lab = SimLab(labs=labs, files=tmp_path / "files", generation=generation)
        imap = imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT)
        with pytest.raises(imaplib.IMAP4.error):
            imap.authenticate("PLAIN", lambda challenge: b"\0alice@lab.test\0secret")
        imap.logout()
    finally:
        socket.create_connection = saved
    refused = {("2.3", "yes"): ("tried to use disallowed plaintext auth", ""),
               ("2.4", "yes"): ("tried to use disallowed cleartext auth, 1 attempts in 0 secs",
                                " (cleartext_auth_disabled)"),
               ("2.3", "required"): ("auth failed, 1 attempts in 0 secs", ""),
               ("2.4", "required"): ("auth failed, 1 attempts in 0 secs", " (auth_failed)")}
    why, code = refused[(generation.dovecot, ssl_setting)]
    event = (f"Disconnected: Aborted login by logging out ({why})" if generation.dovecot == "2.3"
             else f"Login aborted: Logged out ({why}){code}")
    assert [normal(text) for _, text in dovecot_texts(lab)[1:]] == [
        f"Info: {event}: user=<>, method=PLAIN, {FIELDS}, session=<…>"]
