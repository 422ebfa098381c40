"""A class on one machine: ``lab up --students N`` gives each student a lab of their own.

Two students' labs run side by side on each real backend. The tests prove that they share
nothing a student could notice: addresses, CA, users, mailboxes and configuration files are
each student's own; a broken file or a ``lab down`` of one leaves the other alone; a student's
files survive their lab going down and coming back. Bad input gets a clear error and leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers.cli import mailtls
from helpers.labs import LAB_KINDS, container_listing, lab_kind
from helpers.mail import has_subject, submit, text_message
from helpers.network import answers
from helpers.polling import within
from helpers.requirements import require_backend
from mailtls import generations
from mailtls.classroom import students_up
from mailtls.config import CLASSROOM_RUNTIME as CLASSROOM_FILES
from mailtls.config import student_runtime as student_files
from mailtls.hosts import MAIL
from mailtls.lab import Lab, connect


def student_lab(number: int) -> Lab:
    return connect(student_files(number))


def send(lab: Lab, subject: str) -> None:
    """alice sends herself a message over 465, by address: the certificates name it too."""
    alice = lab.user("alice")
    submit(lab, alice, [alice.login], text_message(subject))


def inbox_has(lab: Lab, subject: str, timeout: float) -> bool:
    """Whether the message reaches alice's INBOX within ``timeout`` seconds."""
    return bool(within(lambda: has_subject(lab, lab.user("alice"), subject), timeout))


def parts_of(backend: str, number: int) -> list[str]:
    """Student ``number``'s namespaces and links, or containers, as this machine lists them.

    (Not a connection to their addresses: with the lab gone, those would leave the machine.)
    """
    if backend == "native":
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        listed += subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        marker = f"mtls{number}-"
    else:
        listed = container_listing()
        marker = f"mailtls-student-{number}_"
    return [line for line in listed.splitlines() if marker in line]


def assert_class_gone(backend: str) -> None:
    """No student's files, namespaces, links or containers are left."""
    assert students_up() == []
    assert not CLASSROOM_FILES.exists()
    for number in (1, 2):
        assert parts_of(backend, number) == []


@pytest.mark.lab
@pytest.mark.parametrize("which", LAB_KINDS)
def test_two_students_share_nothing(which: str, tmp_path: Path) -> None:
    backend, release = lab_kind(which)
    require_backend(backend)
    assert students_up() == [], "a classroom is already up: `python -m mailtls lab down` first"
    copies = tmp_path / "classroom"
    debian = ["--debian", release] if release else []
    try:
        up = mailtls("lab", "up", "--students", "2", "--backend", backend, *debian,
                     "--classroom", str(copies))
        assert up.returncode == 0, up.stdout + up.stderr
        assert "student 2: up in" in up.stdout and "mail.lab.test at 198.18.2.10" in up.stdout

        # lab status --json lists each student's lab, with its own addresses, CA and copy of labs/.
        described = json.loads(mailtls("lab", "status", "--json").stdout)
        students = {s["student"]: s for s in described["students"]}
        assert sorted(students) == [1, 2]
        assert students[1]["labs"] == str(copies / "student-1")
        one, two = student_lab(1), student_lab(2)
        assert (one.backend, two.backend) == (backend, backend)
        if release:
            assert (one.debian, two.debian) == (int(release), int(release))
        generation = generations.get(one.debian)
        assert one.address("mail.lab.test") == "198.18.1.10" and two.address("mail.lab.test") == "198.18.2.10"
        assert one.ca_file.read_bytes() != two.ca_file.read_bytes()
        one_status = json.loads(mailtls("lab", "status", "--json", "--student", "1").stdout)
        assert one_status["ca_file"] == str(student_files(1) / "ca.pem") and "students" not in one_status

        # A notebook finds a student's lab with MAILTLS_STUDENT.
        found = subprocess.run([sys.executable, "-c", "from mailtls.lab import connect; print(connect())"
                                "; print(connect().address('mail.lab.test'))"],
                               capture_output=True, text=True,
                               env={**os.environ, "MAILTLS_STUDENT": "2"})
        assert found.stdout.splitlines()[1:] == ["198.18.2.10"], found.stdout + found.stderr

        # Own CA: student 1's CA does not vouch for student 2's server.
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            smtplib.SMTP_SSL(two.address("mail.lab.test"), 465, context=one.ssl_context(), timeout=30)

        # Own users and mailboxes: mail to student 1's alice is only in student 1's mailbox,
        # and student 1's password opens nothing in student 2's lab.
        subject = f"for student 1 only {uuid.uuid4().hex[:8]}"
        send(one, subject)
        assert inbox_has(one, subject, timeout=30)
        assert not inbox_has(two, subject, timeout=2)
        with imaplib.IMAP4_SSL(two.address("mail.lab.test"), 993, ssl_context=two.ssl_context(),
                               timeout=30) as imap:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                imap.login(one.user("alice").login, one.user("alice").password)

        # Own files: an exercise set up for student 2 changes student 2's copy and lab only.
        started = mailtls("exercise", "start", "submission", "--student", "2")
        assert started.returncode == 0, started.stdout + started.stderr
        assert (copies / "student-2" / "hosts" / "mail" / "master.cf").read_text() != \
            (copies / "student-1" / "hosts" / "mail" / "master.cf").read_text()
        checked_one = mailtls("check", "submission", "--student", "1")
        checked_two = mailtls("check", "submission", "--student", "2")
        assert checked_one.returncode == 0, checked_one.stdout + checked_one.stderr
        assert checked_two.returncode == 1, checked_two.stdout + checked_two.stderr
        assert "port 587 still accepts MAIL before STARTTLS" in checked_two.stdout
        assert not answers(two.address("mail.lab.test"), 465) and answers(one.address("mail.lab.test"), 465)

        # Files student 1 broke are refused, with the servers' words; both labs keep running.
        main_cf = MAIL.config_file(copies / "student-1", "main.cf", generation)
        good = main_cf.read_text()
        main_cf.write_text(good + "smtpd_tls_securty_level = may\n")
        refused = mailtls("lab", "reload", "--student", "1")
        assert refused.returncode == 1
        assert "mail.lab.test" in refused.stderr and "smtpd_tls_securty_level" in refused.stderr, \
            refused.stderr
        main_cf.write_text(good)
        dovecot_conf = MAIL.config_file(copies / "student-1", "dovecot.conf", generation)
        good = dovecot_conf.read_text()
        dovecot_conf.write_text(good.replace("ssl = yes", "ssl = maybe"))
        refused = mailtls("lab", "reload", "--student", "1")
        assert refused.returncode == 1
        assert "refuses the configuration of mail.lab.test" in refused.stderr, refused.stderr
        if backend == "native":  # the student's own file, though the lab runs a copy with its paths
            assert f"{dovecot_conf}" in refused.stderr, refused.stderr
        dovecot_conf.write_text(good)
        assert answers(one.address("mail.lab.test"), 993) and answers(two.address("mail.lab.test"), 993)

        # Taking one student's lab down leaves the other's up, and the student's files in place.
        down = mailtls("lab", "down", "--student", "2")
        assert down.returncode == 0, down.stderr
        assert students_up() == [1]
        assert parts_of(backend, 2) == [] and parts_of(backend, 1)
        assert answers(one.address("mail.lab.test"), 587)
        assert inbox_has(one, subject, timeout=5)
        # Back up: student 1's lab is left alone, student 2's returns with their own edits.
        again = mailtls("lab", "up", "--students", "2", "--backend", backend, "--classroom", str(copies))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "student 1: already up" in again.stdout
        assert f"student 2: keeping their files in {copies / 'student-2'}" in again.stdout
        assert "student 2: not listening, as its files say: mail.lab.test:465 (submissions)" in again.stdout
        assert mailtls("check", "submission", "--student", "2").returncode == 1, \
            "the exercise's edit was kept"
    finally:
        said = mailtls("lab", "down")
    assert said.returncode == 0, said.stderr
    assert_class_gone(backend)
    assert (copies / "student-2" / "hosts" / "mail" / "master.cf").exists(), \
        "lab down keeps the students' files"


def test_bad_numbers_are_refused() -> None:
    for args, expected in (
        (["lab", "up", "--students", "0"], "--students must be from 1 to 50, not 0"),
        (["lab", "up", "--students", "51"], "--students must be from 1 to 50, not 51"),
        (["check", "submission", "--student", "0"], "students are numbered 1 to 50, not 0"),
        (["lab", "reload", "--student", "7"], "student 7 has no lab up: start the class's labs with"),
    ):
        done = mailtls(*args, "--backend", "native") if args[:2] == ["lab", "up"] else mailtls(*args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("error: " + expected), (args, done.stderr)
    wrong = mailtls("lab", "status", env={**os.environ, "MAILTLS_STUDENT": "seven"})
    assert (wrong.returncode, wrong.stderr) == \
        (1, "error: MAILTLS_STUDENT must be a number from 1 to 50, not 'seven'\n")
    assert not CLASSROOM_FILES.exists()


def test_a_folder_that_is_not_a_copy_of_labs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "student-1").mkdir()
    (tmp_path / "student-1" / "notes.txt").write_text("a student's notes\n")
    done = mailtls("lab", "up", "--students", "1", "--backend", "native", "--classroom", str(tmp_path))
    assert done.returncode == 1
    assert "is not a copy of labs/" in done.stderr
    assert (tmp_path / "student-1" / "notes.txt").read_text() == "a student's notes\n"
    assert not CLASSROOM_FILES.exists()


@pytest.mark.lab
def test_a_taken_port_stops_a_class_before_anything_starts(tmp_path: Path) -> None:
    """Student 1's containers publish 127.0.0.1:11025; something else holds it."""
    require_backend("containers")
    with contextlib.closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 11025))
        holder.listen()
        done = mailtls("lab", "up", "--students", "2", "--backend", "containers",
                       "--classroom", str(tmp_path))
    assert done.returncode == 1
    assert "port 127.0.0.1:11025 is already taken: the lab publishes mail.lab.test's port 25 there" \
        in done.stderr
    assert_class_gone("containers")
