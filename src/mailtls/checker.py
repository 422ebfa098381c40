"""The checker: does the running lab now do what an exercise asks, criterion by criterion?

``python -m mailtls check EXERCISE`` probes the lab's servers as a client would (smtplib,
imaplib and ssl, through :func:`mailtls.lab.connect`), prints each criterion as passed or failed
with the reason in a student's terms, and exits with 0 only if all passed. ``--report FILE``
writes the same as Markdown (``FILE.md``) and JSON (``FILE.json``), with the time and the lab's
fingerprint (the SHA-256 of its CA certificate, new with every lab), for handing in.

A criterion is a function that returns a short note when the lab passes and raises
:class:`Failed` with the reason when it does not. Each exercise registers its own, next to its
edits, in its subpackage of :mod:`mailtls.exercises`; this module holds what they share: how a
failure is said, the lab's users, and sending through the relay and reading its log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import imaplib
import json
import re
import smtplib
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailtls import maillog
from mailtls.errors import LabError
from mailtls.lab import Lab
from mailtls.polling import WaitTimeout, wait_until

if TYPE_CHECKING:  # the exercises import this module for what their criteria share
    from mailtls.exercises import Exercise

TIMEOUT = 10
DELIVERY_WAIT = 30.0  # seconds for the relay to log what became of a message


class Failed(Exception):
    """A criterion the lab does not meet; the message says why, for the student."""


@dataclass
class Result:
    criterion: str
    passed: bool
    detail: str


def alice(lab: Lab) -> tuple[str, str]:
    """The login and password of the lab's user alice."""
    user = lab.user("alice")
    return user.login, user.password


def ehlo_extensions(host: str, port: int) -> dict[str, str]:
    """The extensions an SMTP server offers in its EHLO reply before STARTTLS (RFC 5321, section 4.1.1.1).

    Keys are the extensions' names in lower case (``starttls``, ``auth``), values their parameters.
    """
    with smtplib.SMTP(host, port, timeout=TIMEOUT) as server:
        server.ehlo("checker.lab.test")
        return dict(server.esmtp_features)


@contextlib.contextmanager
def implicit_tls(port: int, listener: str, handshake_hint: str = "") -> Iterator[None]:
    """Say as a :class:`Failed` why a connection with implicit TLS (RFC 8314) on ``port`` failed.

    ``listener`` tells how to add the missing listener when nothing listens; ``handshake_hint``,
    if given, is added to the reason when the port does not start with a TLS handshake.
    """
    try:
        yield
    except ConnectionRefusedError:
        raise Failed(f"nothing listens on port {port}: {listener}") from None
    except ssl.SSLError as error:
        hint = f": {handshake_hint}" if handshake_hint else ""
        raise Failed(f"port {port} does not start with TLS ({error.reason or error}){hint}") from None


# -- Sending through the relay and reading its log -------------------------------------------------


def through_relay(lab: Lab, recipient: str) -> tuple[str, str]:
    """Send a message through the relay and wait for its delivery; (status line, TLS line or "").

    Raises Failed when the relay refuses the message or does not try to deliver it in time, and
    smtplib's and the socket's errors when it cannot be reached.
    """
    return relay_delivery(lab, send_to_relay(lab, recipient), recipient)


def send_to_relay(lab: Lab, recipient: str) -> str:
    """Hand relay.lab.test a message for ``recipient`` on port 25; the queue id it gave the message.

    Raises Failed when the relay refuses the message after DATA, smtplib's errors for an earlier
    refusal, OSError when it cannot be reached.
    """
    with smtplib.SMTP("relay.lab.test", 25, timeout=TIMEOUT) as relay:
        relay.ehlo("checker.lab.test")
        relay.mail("checker@relay.lab.test")
        relay.rcpt(recipient)
        code, reply = relay.data(f"Subject: checker {uuid.uuid4()}\r\n\r\nA test.\r\n".encode())
    if code != 250:
        raise Failed(f"the relay refused a message for {recipient}: {code} {reply.decode()}")
    return re.search(rb"queued as (\w+)", reply)[1].decode()  # type: ignore[index]


def relay_delivery(lab: Lab, queue_id: str, recipient: str, wait: float = DELIVERY_WAIT) -> tuple[str, str]:
    """Wait up to ``wait`` seconds for the relay to log its delivery of message ``queue_id`` to
    ``recipient``; (status line, TLS line or ""). Raises Failed when it logs none in that time.

    The simulated relay delivers while it takes the message, or never: its network is synchronous
    and its queue retries nothing (mailtls.sim.lab). What its log says at once is what it would
    say after ``wait``, so there is no wait for it.
    """
    def delivery() -> tuple[str, str] | None:
        lines = lab.log("relay.lab.test").splitlines()
        number = maillog.find_delivery(lines, queue_id, recipient)
        return None if number is None else (lines[number], tls_line_before(lines, number))

    try:
        return wait_until(delivery, 0.0 if lab.backend == "sim" else wait,
                          f"the relay's delivery to {recipient}", interval=0.3)
    except WaitTimeout:
        raise Failed(f"the relay did not try to deliver the message for {recipient} "
                     f"within {DELIVERY_WAIT:.0f} s") from None


def tls_line_before(lines: list[str], number: int) -> str:
    """The TLS line of the delivery logged at ``lines[number]``, or "" if it had none.

    One smtp process makes many deliveries, so the search stops at that process's previous one.
    """
    earlier = maillog.tls_before(lines, number)
    return "" if earlier is None else lines[earlier]


def status_of(line: str) -> str:
    return maillog.delivery(line).outcome  # type: ignore[union-attr]


def sent(line: str) -> bool:
    """True when the delivery logged on ``line`` succeeded (status=sent)."""
    return maillog.delivery(line).status == "sent"  # type: ignore[union-attr]


def trust_of(tls: str) -> str:
    """Anonymous, Untrusted, Trusted or Verified, from a TLS line; "" for no line."""
    return maillog.tls_connection(tls).trust if tls else ""  # type: ignore[union-attr]


# -- Running an exercise's criteria, and the report ------------------------------------------------


def check(exercise: Exercise, lab: Lab) -> list[Result]:
    """Each of the exercise's criteria, in order, passed or failed with the reason.

    Raises LabError when a criterion needs root (the wiretap) and the checker runs without it.
    """
    results = []
    for title, criterion in exercise.criteria:
        try:
            results.append(Result(title, True, criterion(lab)))
        except Failed as failure:
            results.append(Result(title, False, str(failure)))
        except PermissionError:  # not the student's fault: say what to run, and record nothing
            raise LabError(f"checking exercise {exercise.number} switches the wiretap on mitm.lab.test, "
                           "which only root may do: run the check with sudo") from None
        except (OSError, smtplib.SMTPException, imaplib.IMAP4.error) as error:
            # the server did not answer as a server
            results.append(Result(title, False, f"{type(error).__name__}: {error}"))
    return results


def fingerprint(lab: Lab) -> str:
    """What identifies this lab: its CA certificate, made anew each time it comes up."""
    return hashlib.sha256(lab.ca_file.read_bytes()).hexdigest()


def write_report(path: Path, exercise: Exercise, lab: Lab, results: list[Result]) -> list[Path]:
    """FILE.md and FILE.json (a suffix given with FILE is dropped)."""
    stem = path.with_suffix("") if path.suffix in (".md", ".json") else path
    record = {
        "exercise": exercise.number, "name": exercise.name, "title": exercise.title,
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lab": {"backend": lab.backend, "fingerprint": fingerprint(lab)},
        "passed": all(r.passed for r in results),
        "criteria": [asdict(r) for r in results],
    }
    json_path, markdown_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# Exercise {exercise.number}: {exercise.title}", "",
             f"Checked {record['checked_at']} on the {lab.backend} lab "
             f"`{record['lab']['fingerprint'][:16]}`.", "",
             f"**{sum(r.passed for r in results)} of {len(results)} criteria passed.**", "",
             "| | criterion | detail |", "|---|---|---|"]
    lines += [f"| {'passed' if r.passed else 'FAILED'} | {r.criterion} | {r.detail.replace('|', '/')} |"
              for r in results]
    markdown_path.write_text("\n".join(lines) + "\n")
    return [markdown_path, json_path]


def print_results(exercise: Exercise, results: list[Result]) -> None:
    """Print the results for the student, one criterion with its detail a line each."""
    print(f"Exercise {exercise.number}: {exercise.title}")
    for result in results:
        print(f"  [{'passed' if result.passed else 'FAILED'}] {result.criterion}")
        print(f"           {result.detail}")
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results)} criteria passed."
          + ("" if passed == len(results) else " Not done yet."))
