"""When a reload restarts Dovecot (mailtls.hostfiles): when what it reads as it starts changed, or
when it is not running; not otherwise (a restart costs seconds)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mailtls.hostfiles import dovecot_needs_restart, dovecot_started


@pytest.fixture
def started(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A dovecot.conf naming a certificate (2.3's ``<`` form and 2.4's ``_file`` form) and a log,
    "started" by a live process: (conf, pid file, stamp, certificate)."""
    cert, key, log = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "dovecot.log"
    cert.write_text("certificate 1\n")
    key.write_text("key 1\n")
    conf = tmp_path / "dovecot.conf"
    conf.write_text(f"ssl = required\nssl_cert = <{cert}\nssl_server_key_file = {key}\nlog_path = {log}\n")
    pid_file = tmp_path / "master.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    stamp = tmp_path / "started.sha256"
    dovecot_started(conf, stamp)
    return conf, pid_file, stamp, cert


def test_nothing_changed_keeps_dovecot_running(started) -> None:
    conf, pid_file, stamp, _ = started
    (conf.parent / "dovecot.log").write_text("a line Dovecot logged\n")  # written, never read at start
    assert not dovecot_needs_restart(conf, pid_file, stamp)


def test_a_changed_file_or_certificate_restarts_it(started) -> None:
    conf, pid_file, stamp, cert = started
    cert.write_text("certificate 2\n")  # replaced under the same name
    assert dovecot_needs_restart(conf, pid_file, stamp)
    dovecot_started(conf, stamp)
    conf.write_text(conf.read_text().replace("ssl = required", "ssl = yes"))
    assert dovecot_needs_restart(conf, pid_file, stamp)
    dovecot_started(conf, stamp)
    (conf.parent / "key.pem").write_text("key 2\n")
    assert dovecot_needs_restart(conf, pid_file, stamp)


def test_a_dovecot_that_died_or_never_started_is_started(started) -> None:
    conf, pid_file, stamp, _ = started
    zombie = subprocess.Popen(["true"])  # dead, and not reaped yet: signals still reach it
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        pass
    pid_file.write_text(f"{zombie.pid}\n")
    assert dovecot_needs_restart(conf, pid_file, stamp)
    zombie.wait()
    assert dovecot_needs_restart(conf, pid_file, stamp)
    pid_file.unlink()
    assert dovecot_needs_restart(conf, pid_file, stamp)
    pid_file.write_text(f"{os.getpid()}\n")
    stamp.unlink()
    assert dovecot_needs_restart(conf, pid_file, stamp)
