"""The server replies the chapters quote are the ones the real Postfix and Dovecot send.

Every ``S:`` line of the ``text`` transcripts in these chapters must match, from its start, a
line that the lab's servers really sent in the sessions below. Host names are the examples'
own (``mail.example.org``), ``…`` stands for an elided part, and queue ids differ.
"""

from __future__ import annotations

import base64

import pytest

from course import DOCS
from helpers.sessions import LineSession
from helpers.transcripts import as_pattern, text_blocks

pytestmark = pytest.mark.lab

CHAPTERS = ["postfix-server", "submission", "imap", "attacks"]


@pytest.fixture(scope="module")
def heard(lab) -> list[str]:
    """Every line the lab's servers said in a set of sessions like the chapters' ones."""
    lines: list[str] = []
    address, alice = lab.address("mail.lab.test"), lab.user("alice")
    plain = base64.b64encode(f"\0{alice.login}\0{alice.password}".encode()).decode()

    with LineSession(address, 25, lines) as smtp:  # the MX: STARTTLS, then a whole transaction
        smtp.read_smtp_reply()
        smtp.smtp("EHLO laptop.example.org", "STARTTLS")
        smtp.starttls(lab.ssl_context())
        smtp.smtp("EHLO laptop.example.org", "MAIL FROM:<alice@lab.test>", "RCPT TO:<bob@lab.test>", "DATA",
                  "Subject: transcript\r\n\r\nHello\r\n.", "QUIT")

    with LineSession(address, 587, lines) as submission:  # MAIL before STARTTLS, then AUTH after it
        submission.read_smtp_reply()
        submission.smtp("EHLO laptop.example.org", "MAIL FROM:<alice@lab.test>", "STARTTLS")
        submission.starttls(lab.ssl_context())
        submission.smtp("EHLO laptop.example.org", f"AUTH PLAIN {plain}", "QUIT")

    for first in ("a1 LOGIN alice@example.org secret", "a1 STARTTLS"):
        with LineSession(address, 143, lines) as imap:
            imap.read_imap_until("*")
            imap.imap(first)
            if first.endswith("STARTTLS"):
                imap.starttls(lab.ssl_context())
                imap.imap("a2 CAPABILITY")
    return lines


def quoted_server_lines(chapter: str) -> list[str]:
    blocks = text_blocks(DOCS / "en" / chapter / "index.md")
    return sorted({line[3:] for block in blocks for line in block.splitlines() if line.startswith("S: ")})


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quoted_replies_are_real(heard: list[str], chapter: str) -> None:
    quoted = quoted_server_lines(chapter)
    assert quoted, f"{chapter} quotes no server lines"
    unmatched = [line for line in quoted if not any(as_pattern(line).match(real) for real in heard)]
    assert not unmatched, \
        f"{chapter} quotes replies the real servers did not send: {unmatched}\nThey sent: {heard}"
