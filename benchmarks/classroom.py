"""A class's load on one lab (``make benchmarks-classroom``, as root).

30 clients at once, each submitting 20 messages with AUTH (alternately over 465 and 587 with
STARTTLS), then fetching them over 993: every one of the 600 must arrive exactly once. It
reports the time of each phase, and the memory the lab takes (MemAvailable before ``lab up``
and after the run). One lab per student (``--students N``) is still to come; this is the
load of a whole class on one lab.

Dovecot allows 10 IMAP sessions per user and address (``mail_max_userip_connections``), and
the lab has two users, so the fetches run 8 at a time.
"""

from __future__ import annotations

import concurrent.futures
import imaplib
import os
import platform
import shutil
import smtplib
import tempfile
import time
import uuid
from pathlib import Path

CLIENTS, MESSAGES, FETCHERS = 30, 20, 8
ROOT = Path(__file__).resolve().parent.parent


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def submit(lab, client: int, run: str) -> list[str]:
    user = lab.user("alice" if client % 2 else "bob")
    subjects = []
    for number in range(MESSAGES):
        subject = f"load {run} client {client} message {number}"
        message = f"Subject: {subject}\r\n\r\nFrom client {client}.\r\n"
        if number % 2:
            with smtplib.SMTP_SSL("mail.lab.test", 465, context=lab.ssl_context(), timeout=60) as server:
                server.login(user.login, user.password)
                server.sendmail(user.login, [user.login], message)
        else:
            with smtplib.SMTP("mail.lab.test", 587, timeout=60) as server:
                server.starttls(context=lab.ssl_context())
                server.login(user.login, user.password)
                server.sendmail(user.login, [user.login], message)
        subjects.append(subject)
    return subjects


def fetch(lab, client: int, run: str) -> list[str]:
    user = lab.user("alice" if client % 2 else "bob")
    with imaplib.IMAP4_SSL("mail.lab.test", 993, ssl_context=lab.ssl_context(), timeout=60) as imap:
        imap.login(user.login, user.password)
        imap.select("INBOX", readonly=True)
        _, found = imap.search(None, "SUBJECT", f'"load {run} client {client} message"')
        subjects = []
        for number in found[0].split():
            _, data = imap.fetch(number, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(data[0][1].decode().strip().removeprefix("Subject: "))
        return subjects


def main() -> None:
    from mailtls.backends import containers, native
    from mailtls.lab import connect

    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    for backend in (native, containers):
        name = backend.__name__.rsplit(".", 1)[1]
        with tempfile.TemporaryDirectory() as scratch:
            labs = Path(scratch) / "labs"
            shutil.copytree(ROOT / "labs", labs, ignore=shutil.ignore_patterns("wheels"))
            free_before = mem_available()
            backend.up(labs=labs, on_progress=lambda message: None)
            try:
                lab = connect()
                run = uuid.uuid4().hex[:8]
                start = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                    sent = [s for batch in pool.map(lambda c: submit(lab, c, run), range(CLIENTS)) for s in batch]
                submitted = time.perf_counter() - start
                expected = sorted(sent)
                deadline = time.monotonic() + 300
                while True:
                    with concurrent.futures.ThreadPoolExecutor(FETCHERS) as pool:
                        got = sorted(s for batch in pool.map(lambda c: fetch(lab, c, run), range(CLIENTS)) for s in batch)
                    if got == expected or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                total = time.perf_counter() - start
                used = free_before - mem_available()
                lost = len(set(expected) - set(got))
                twice = len(got) - len(set(got))
                print(f"{name}: {CLIENTS} clients x {MESSAGES} messages: submitted in {submitted:.1f} s, all fetched "
                      f"after {total:.1f} s; {len(set(got))} of {len(expected)} arrived, {lost} lost, "
                      f"{twice} duplicated; lab memory about {used / 2**20:.0f} MiB")
            finally:
                backend.down()


if __name__ == "__main__":
    main()
