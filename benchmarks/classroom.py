"""A class's load (``make benchmarks-classroom``, as root), on both backends.

30 student clients at once, each submitting 20 messages with AUTH (alternately over 465 and 587
with STARTTLS), then fetching them over 993: every one of the 600 must arrive exactly once.
Three set-ups:

- one lab for the whole class (``lab up``): the 30 clients share it;
- a classroom host with 10 labs (``lab up --students 10``): three clients per lab;
- a classroom host with 30 labs (``lab up --students 30``): one client per lab.

It reports how long the labs take to come up and to go down, the time of each phase of the
load, and the memory the labs take: the drop in MemAvailable from before ``lab up`` to the end
of the run, so it is rough.

Dovecot allows 10 IMAP sessions per user and address (``mail_max_userip_connections``), and a
lab has two users, so the fetches from one shared lab run 8 at a time.

``--students 10 30`` (the default) picks the classroom sizes; ``--backends native`` one backend.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import imaplib
import os
import platform
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

CLIENTS, MESSAGES = 30, 20
ROOT = Path(__file__).resolve().parent.parent


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def submit(lab, client: int, run: str) -> list[str]:
    """One client's 20 messages. Clients connect by address: the lab's certificates name it too."""
    user = lab.user("alice" if client % 2 else "bob")
    server_address = lab.address("mail.lab.test")
    subjects = []
    for number in range(MESSAGES):
        subject = f"load {run} client {client} message {number}"
        message = f"Subject: {subject}\r\n\r\nFrom client {client}.\r\n"
        if number % 2:
            with smtplib.SMTP_SSL(server_address, 465, context=lab.ssl_context(), timeout=60) as server:
                server.login(user.login, user.password)
                server.sendmail(user.login, [user.login], message)
        else:
            with smtplib.SMTP(server_address, 587, timeout=60) as server:
                server.starttls(context=lab.ssl_context())
                server.login(user.login, user.password)
                server.sendmail(user.login, [user.login], message)
        subjects.append(subject)
    return subjects


def fetch(lab, client: int, run: str) -> list[str]:
    user = lab.user("alice" if client % 2 else "bob")
    with imaplib.IMAP4_SSL(lab.address("mail.lab.test"), 993, ssl_context=lab.ssl_context(), timeout=60) as imap:
        imap.login(user.login, user.password)
        imap.select("INBOX", readonly=True)
        _, found = imap.search(None, "SUBJECT", f'"load {run} client {client} message"')
        subjects = []
        for number in found[0].split():
            _, data = imap.fetch(number, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(data[0][1].decode().strip().removeprefix("Subject: "))
        return subjects


def load(labs: list, fetchers: int) -> str:
    """The 30 clients, client i on lab i mod len(labs); what arrived, and how long it took."""
    run = uuid.uuid4().hex[:8]
    lab_of = [labs[client % len(labs)] for client in range(CLIENTS)]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        sent = [s for batch in pool.map(lambda c: submit(lab_of[c], c, run), range(CLIENTS)) for s in batch]
    submitted = time.perf_counter() - start
    expected = sorted(sent)
    deadline = time.monotonic() + 300
    while True:
        with concurrent.futures.ThreadPoolExecutor(fetchers) as pool:
            got = sorted(s for batch in pool.map(lambda c: fetch(lab_of[c], c, run), range(CLIENTS)) for s in batch)
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(1)
    total = time.perf_counter() - start
    lost = len(set(expected) - set(got))
    twice = len(got) - len(set(got))
    return (f"{CLIENTS} clients x {MESSAGES} messages: submitted in {submitted:.1f} s, all fetched after "
            f"{total:.1f} s; {len(set(got))} of {len(expected)} arrived, {lost} lost, {twice} duplicated")


def mailtls(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mailtls", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"`mailtls {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")


def one_lab(backend_name: str) -> None:
    from mailtls import backends
    from mailtls.config import LabConfig
    from mailtls.lab import connect

    with tempfile.TemporaryDirectory() as scratch:
        labs = Path(scratch) / "labs"
        shutil.copytree(ROOT / "labs", labs, ignore=shutil.ignore_patterns("wheels"))
        backend = backends.get(backend_name, LabConfig(labs=labs))
        free_before = mem_available()
        began = time.perf_counter()
        backend.up(on_progress=lambda message: None)
        up_time = time.perf_counter() - began
        try:
            said = load([connect()], fetchers=8)
            used = free_before - mem_available()
        finally:
            began = time.perf_counter()
            backend.down()
            down_time = time.perf_counter() - began
    print(f"{backend_name}, one lab: up in {up_time:.1f} s; {said}; memory about {used / 2**20:.0f} MiB; "
          f"down in {down_time:.1f} s", flush=True)


def classroom(backend_name: str, students: int) -> None:
    from mailtls.config import student_runtime
    from mailtls.lab import connect

    with tempfile.TemporaryDirectory() as scratch:
        free_before = mem_available()
        began = time.perf_counter()
        mailtls("lab", "up", "--students", str(students), "--backend", backend_name, "--classroom", scratch)
        up_time = time.perf_counter() - began
        try:
            labs = [connect(student_runtime(k)) for k in range(1, students + 1)]
            said = load(labs, fetchers=CLIENTS)
            used = free_before - mem_available()
        finally:
            began = time.perf_counter()
            mailtls("lab", "down")
            down_time = time.perf_counter() - began
    print(f"{backend_name}, {students} labs: up in {up_time:.1f} s; {said}; memory about {used / 2**20:.0f} MiB "
          f"({used / students / 2**20:.0f} MiB per lab); down in {down_time:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="*", default=[10, 30])
    parser.add_argument("--backends", nargs="*", default=["native", "containers"])
    args = parser.parse_args()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}, {platform.platform()}", flush=True)
    for backend_name in args.backends:
        one_lab(backend_name)
        for students in args.students:
            classroom(backend_name, students)


if __name__ == "__main__":
    main()
