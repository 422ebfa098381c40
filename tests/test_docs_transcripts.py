"""The server replies the chapters quote are the ones the real Postfix and Dovecot send.

Every ``S:`` line of the ``text`` transcripts in these chapters must match, from its start, a
line that the lab's servers really sent in the sessions below. Host names are the examples'
own (``mail.example.org``), ``…`` stands for an elided part, and queue ids differ.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl

import pytest

from course import DOCS

pytestmark = pytest.mark.lab

CHAPTERS = ["postfix-server", "submission", "imap", "attacks"]


class LineSession:
    """A raw SMTP or IMAP conversation that keeps every line the server sent."""

    def __init__(self, address: str, port: int, heard: list[str]) -> None:
        self.sock = socket.create_connection((address, port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.heard = heard

    def read_smtp_reply(self) -> str:
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            self.heard.append(line)
            if line[3:4] != "-":
                return line

    def read_imap_until(self, tag: str) -> str:
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            self.heard.append(line)
            if line.startswith(tag + " ") or not line:
                return line

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def starttls(self, context: ssl.SSLContext) -> None:
        self.sock = context.wrap_socket(self.sock, server_hostname="mail.lab.test")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def heard(lab) -> list[str]:
    """Every line the lab's servers said in a set of sessions like the chapters' ones."""
    lines: list[str] = []
    address, alice = lab.address("mail.lab.test"), lab.user("alice")
    plain = base64.b64encode(f"\0{alice.login}\0{alice.password}".encode()).decode()

    smtp = LineSession(address, 25, lines)  # the MX: STARTTLS, then a whole transaction
    smtp.read_smtp_reply()
    for command in ("EHLO laptop.example.org", "STARTTLS"):
        smtp.send(command)
        smtp.read_smtp_reply()
    smtp.starttls(lab.ssl_context())
    for command in ("EHLO laptop.example.org", "MAIL FROM:<alice@lab.test>", "RCPT TO:<bob@lab.test>", "DATA"):
        smtp.send(command)
        smtp.read_smtp_reply()
    smtp.send("Subject: transcript\r\n\r\nHello\r\n.")
    smtp.read_smtp_reply()
    smtp.send("QUIT")
    smtp.read_smtp_reply()
    smtp.close()

    submission = LineSession(address, 587, lines)  # MAIL before STARTTLS, then AUTH after it
    submission.read_smtp_reply()
    for command in ("EHLO laptop.example.org", "MAIL FROM:<alice@lab.test>", "STARTTLS"):
        submission.send(command)
        submission.read_smtp_reply()
    submission.starttls(lab.ssl_context())
    for command in ("EHLO laptop.example.org", f"AUTH PLAIN {plain}", "QUIT"):
        submission.send(command)
        submission.read_smtp_reply()
    submission.close()

    for first in ("a1 LOGIN alice@example.org secret", "a1 STARTTLS"):
        imap = LineSession(address, 143, lines)
        imap.read_imap_until("*")
        imap.send(first)
        imap.read_imap_until("a1")
        if first.endswith("STARTTLS"):
            imap.starttls(lab.ssl_context())
            imap.send("a2 CAPABILITY")
            imap.read_imap_until("a2")
        imap.close()
    return lines


def quoted_server_lines(chapter: str) -> list[str]:
    text = (DOCS / "en" / chapter / "index.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```text\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return sorted({line[3:] for block in blocks for line in block.splitlines() if line.startswith("S: ")})


def as_pattern(quoted: str) -> re.Pattern[str]:
    pattern = re.escape(quoted)
    pattern = pattern.replace(re.escape("…"), ".*")
    pattern = re.sub(r"(mx|mail)\\\.example\\\.org", r"\\S+", pattern)
    pattern = re.sub(r"queued\\ as\\ \w+", r"queued\\ as\\ \\w+", pattern)
    return re.compile(pattern)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quoted_replies_are_real(heard: list[str], chapter: str) -> None:
    quoted = quoted_server_lines(chapter)
    assert quoted, f"{chapter} quotes no server lines"
    unmatched = [line for line in quoted if not any(as_pattern(line).match(real) for real in heard)]
    assert not unmatched, f"{chapter} quotes replies the real servers did not send: {unmatched}\nThey sent: {heard}"
