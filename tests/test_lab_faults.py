"""Faults a classroom meets: Dovecot dies under a reader, Postfix restarts with mail in its queue.

Nothing may be lost or duplicated: the client sees an error, ``lab reload`` brings Dovecot
back, and every message queued meanwhile arrives once. A host restarted again and again
serves at once.
"""

from __future__ import annotations

import imaplib
import json
import os
import signal
import time
import uuid

import pytest

from helpers import probes
from helpers.labs import restart_postfix
from helpers.mail import deliver_on_25, subjects
from helpers.polling import wait_until
from mailtls.hosts import MAIL

pytestmark = pytest.mark.lab

WAIT = 60.0


def kill_dovecot(lab) -> None:
    """SIGKILL every Dovecot process, as a crash of the whole server would: no clean shutdown.

    The master leads a process group with all its children (a killed master alone leaves the
    session's imap process serving its client).
    """
    if lab.backend_name == "native":
        pid = int(lab.backend.dovecot_pid_file(MAIL).read_text().split()[0])
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    else:
        lab.backend.compose("exec", "-T", MAIL.short, "python3", "-c",
                "import os, signal; os.killpg(int(open('/run/dovecot/master.pid').read()), signal.SIGKILL)")


def queued(lab) -> list[dict]:
    done = lab.backend.postfix_command(MAIL, "postqueue", "-j")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_a_crash_and_a_restart_lose_nothing(lab) -> None:
    bob = lab.user("bob")
    run = uuid.uuid4().hex[:8]
    before = f"fault {run} before"
    deliver_on_25(lab, bob.login, before)
    wait_until(lambda: before in subjects(lab, bob), WAIT, what="the first message")

    # Dovecot dies while a reader is logged in: the reader gets an error, not a hang.
    imap = imaplib.IMAP4_SSL(lab.address("mail.lab.test"), 993, ssl_context=lab.ssl_context(), timeout=10)
    imap.login(bob.login, bob.password)
    imap.select("INBOX")
    kill_dovecot(lab)
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        for _ in range(20):  # the session's process notices its master is gone within moments
            imap.noop()
            time.sleep(0.25)
    imap.shutdown()

    # Mail keeps arriving: Postfix queues it, since LMTP to Dovecot is refused.
    during = [f"fault {run} during {n}" for n in range(5)]
    for subject in during:
        deliver_on_25(lab, bob.login, subject)
    wait_until(lambda: len([m for m in queued(lab) if m["recipients"][0]["address"] == bob.login])
               >= len(during), WAIT, what="the messages to wait in Postfix's queue")

    restart_postfix(lab, MAIL)
    lab.backend.reload()  # brings Dovecot back
    lab.backend.postfix_command(MAIL, "postqueue", "-f")

    expected = sorted([before, *during])
    wait_until(lambda: sorted(s for s in subjects(lab, bob) if run in s) == expected, WAIT,
               what="every message, once")
    assert sorted(s for s in subjects(lab, bob) if run in s) == expected  # none lost, none twice


def test_a_host_restarted_again_and_again_serves_at_once(lab) -> None:
    """Postfix on mail.lab.test restarted three times in a row (in the containers, the container
    and its Dovecot, each time seconds after that Dovecot started and served a login) answers EHLO
    after STARTTLS on 587, AUTH offered, and a login, within the probes' timeout (5 s) each time.
    That answer needs Dovecot's auth service, which a lock left by the killed Dovecot held back for
    11 s (``hostfiles.serve_in_container``)."""
    for restart in range(3):
        restart_postfix(lab, MAIL)
        found = probes.smtp_starttls(lab.lab, 587)
        assert "AUTH PLAIN LOGIN" in found.get("smtp 587/ehlo after tls", ""), (restart, found)
        assert found["smtp 587/login after tls"].startswith("235 "), (restart, found)
