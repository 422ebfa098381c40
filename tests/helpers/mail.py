"""Mail through the lab's real servers: submit a message, read a mailbox, follow one through the relay.

``lab`` is a lab as ``mailtls.lab.connect()`` returns it (or the tests' ``LabUnderTest``):
``address(host)``, ``ssl_context()``, ``user(name)`` with ``.login`` and ``.password``.
Clients connect to mail.lab.test by address: the lab's certificates name it too.
"""

from __future__ import annotations

import email
import email.message
import imaplib
import re
import smtplib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.polling import wait_until
from mailtls import maillog

MAIL_HOST = "mail.lab.test"


def text_message(subject: str, body: str = "Hello.", **headers: str) -> str:
    """A plain message: the headers given (``From="..."``), ``Subject``, a blank line, the body (CRLF)."""
    lines = [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join([*lines, f"Subject: {subject}", "", body, ""])


def submit(lab, user, recipients: list[str], message: str, port: int = 465, timeout: float = 30) -> None:
    """``user`` submits ``message`` to mail.lab.test with AUTH, as a mail client does.

    ``port`` 465 is implicit TLS (RFC 8314 section 3.3), 587 STARTTLS then AUTH (RFC 6409);
    ``timeout`` is in seconds. ``smtplib``'s errors pass through.
    """
    address = lab.address(MAIL_HOST)
    if port == 465:
        server: smtplib.SMTP = smtplib.SMTP_SSL(address, port, context=lab.ssl_context(), timeout=timeout)
    else:
        server = smtplib.SMTP(address, port, timeout=timeout)
    with server:
        if port != 465:
            server.starttls(context=lab.ssl_context())
        server.login(user.login, user.password)
        server.sendmail(user.login, recipients, message)


def deliver_on_25(lab, recipient: str, subject: str) -> None:
    """Another server hands mail.lab.test a message for ``recipient`` on port 25, without TLS or AUTH."""
    with smtplib.SMTP(lab.address(MAIL_HOST), 25, timeout=10) as server:
        server.sendmail("teacher@relay.lab.test", [recipient], text_message(subject))


@contextmanager
def inbox(lab, user, timeout: float = 10) -> Iterator[imaplib.IMAP4_SSL]:
    """``user``'s INBOX, selected read-only over IMAPS (993); logged out on the way out."""
    address = lab.address(MAIL_HOST)
    with imaplib.IMAP4_SSL(address, 993, ssl_context=lab.ssl_context(), timeout=timeout) as imap:
        imap.login(user.login, user.password)
        imap.select("INBOX", readonly=True)
        yield imap


def search(imap: imaplib.IMAP4, *criteria: str) -> list[bytes]:
    """The sequence numbers of the messages that match (RFC 3501 section 6.4.4), e.g. ``"ALL"``."""
    _, found = imap.search(None, *criteria)
    return found[0].split()


def subject_criteria(subject: str) -> tuple[str, str]:
    """The SEARCH criteria for a subject that contains ``subject``."""
    return "SUBJECT", f'"{subject}"'


def subjects(lab, user, *criteria: str, timeout: float = 10) -> list[str]:
    """The subjects of the messages in ``user``'s INBOX that match ``criteria`` (default ALL), in order."""
    with inbox(lab, user, timeout) as imap:
        found = []
        for number in search(imap, *(criteria or ("ALL",))):
            _, data = imap.fetch(number, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            found.append(data[0][1].decode().strip().removeprefix("Subject: "))
        return found


def has_subject(lab, user, subject: str) -> bool:
    """Whether a message whose subject contains ``subject`` is in ``user``'s INBOX now."""
    with inbox(lab, user, timeout=30) as imap:
        return bool(search(imap, *subject_criteria(subject)))


def first_message(lab, user, subject: str) -> email.message.Message | None:
    """The first message in ``user``'s INBOX whose subject contains ``subject``, or None."""
    with inbox(lab, user) as imap:
        numbers = search(imap, *subject_criteria(subject))
        if not numbers:
            return None
        _, data = imap.fetch(numbers[0], "(RFC822)")
        return email.message_from_bytes(data[0][1])


# -- The relay ------------------------------------------------------------------------------------


def send_through_relay(lab, recipient: str) -> tuple[str, str]:
    """Hand a message to relay.lab.test on port 25; returns its queue id and subject.

    Fails the test when the relay does not accept it (a reply other than 250 to DATA).
    """
    subject = f"relay test {uuid.uuid4()}"
    with smtplib.SMTP(lab.address("relay.lab.test"), 25, timeout=10) as client:
        client.ehlo()
        client.mail("teacher@relay.lab.test")
        client.rcpt(recipient)
        code, reply = client.data(f"Subject: {subject}\r\n\r\nHello\r\n".encode())
    assert code == 250, reply
    return re.search(rb"queued as (\w+)", reply)[1].decode(), subject


def relay_log() -> Path:
    """The relay's Postfix log (``maillog_file``, postconf(5)) in the running lab's files."""
    from mailtls.config import LabConfig
    from mailtls.hosts import RELAY

    return LabConfig().host_runtime(RELAY) / "log" / "postfix.log"


def delivery_line(queue_id: str, timeout: float = 20) -> str:
    """The relay's log line that says what became of the message (``status=sent``, ``deferred``...).

    Raises ``WaitTimeout`` when no such line appears within ``timeout`` seconds.
    """

    def line() -> str | None:
        for text in relay_log().read_text().splitlines():
            found = maillog.delivery(text)  # the package's one reader of Postfix's log lines
            if found is not None and found.queue_id == queue_id:
                return text
        return None

    return wait_until(line, timeout, 0.2, f"a delivery attempt for {queue_id} in the relay's log")


def in_maildir(maildir: Path, subject: str) -> bool:
    """Whether a new message (in a ``new/`` folder under ``maildir``) contains ``subject``."""
    return any(subject in p.read_text(errors="replace") for p in maildir.rglob("*")
               if p.is_file() and "/new/" in str(p))
