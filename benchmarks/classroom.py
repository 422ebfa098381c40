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
import sys
import tempfile
import time
import uuid
from pathlib import Path

from measure import machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the helpers the tests use too

from helpers.cli import mailtls
from helpers.labs import scratch_labs
from helpers.mail import subjects, submit, text_message
from helpers.polling import within

CLIENTS, MESSAGES = 30, 20


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def submit_all(lab, client: int, run: str) -> list[str]:
    """One client's 20 messages. Clients connect by address: the lab's certificates name it too."""
    user = lab.user("alice" if client % 2 else "bob")
    sent = []
    for number in range(MESSAGES):
        subject = f"load {run} client {client} message {number}"
        submit(lab, user, [user.login], text_message(subject, f"From client {client}."),
               port=465 if number % 2 else 587, timeout=60)
        sent.append(subject)
    return sent


def fetch(lab, client: int, run: str) -> list[str]:
    """The subjects of one client's messages that have arrived."""
    user = lab.user("alice" if client % 2 else "bob")
    return subjects(lab, user, "SUBJECT", f'"load {run} client {client} message"', timeout=60)


def load(labs: list, fetchers: int) -> str:
    """The 30 clients, client i on lab i mod len(labs); what arrived, and how long it took."""
    run = uuid.uuid4().hex[:8]
    lab_of = [labs[client % len(labs)] for client in range(CLIENTS)]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        batches = pool.map(lambda c: submit_all(lab_of[c], c, run), range(CLIENTS))
        sent = [s for batch in batches for s in batch]
    submitted = time.perf_counter() - start
    expected = sorted(sent)
    got: list[str] = []

    def all_arrived() -> bool:
        with concurrent.futures.ThreadPoolExecutor(fetchers) as pool:
            batches = pool.map(lambda c: fetch(lab_of[c], c, run), range(CLIENTS))
            got[:] = sorted(s for batch in batches for s in batch)
        return got == expected

    within(all_arrived, timeout=300, interval=1)
    total = time.perf_counter() - start
    lost = len(set(expected) - set(got))
    twice = len(got) - len(set(got))
    return (f"{CLIENTS} clients x {MESSAGES} messages: submitted in {submitted:.1f} s, all fetched after "
            f"{total:.1f} s; {len(set(got))} of {len(expected)} arrived, {lost} lost, {twice} duplicated")


def one_lab(backend_name: str) -> None:
    from mailtls import backends
    from mailtls.config import LabConfig
    from mailtls.lab import connect

    with tempfile.TemporaryDirectory() as scratch:
        labs = scratch_labs(Path(scratch) / "labs")
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
        mailtls("lab", "up", "--students", str(students), "--backend", backend_name, "--classroom", scratch,
                check=True, timeout=3600)
        up_time = time.perf_counter() - began
        try:
            labs = [connect(student_runtime(k)) for k in range(1, students + 1)]
            said = load(labs, fetchers=CLIENTS)
            used = free_before - mem_available()
        finally:
            began = time.perf_counter()
            mailtls("lab", "down", check=True)
            down_time = time.perf_counter() - began
    print(f"{backend_name}, {students} labs: up in {up_time:.1f} s; {said}; "
          f"memory about {used / 2**20:.0f} MiB ({used / students / 2**20:.0f} MiB per lab); "
          f"down in {down_time:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="*", default=[10, 30])
    parser.add_argument("--backends", nargs="*", default=["native", "containers"])
    args = parser.parse_args()
    print(machine(), flush=True)
    for backend_name in args.backends:
        one_lab(backend_name)
        for students in args.students:
            classroom(backend_name, students)


if __name__ == "__main__":
    main()
