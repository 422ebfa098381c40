"""A host's configuration files put in place: copied, checked by Postfix and Dovecot, then swapped in.

Both backends use this module, so both accept and refuse the same files with the servers' own
words: the native backend on this machine, and each container through the image's entrypoint
(``python3 -m mailtls.hostfiles serve|reload``, with labs/hosts/HOST/ mounted at
``/etc/mailtls-config``). It needs only the standard library: the containers run Debian's python3.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from mailtls.polling import WaitTimeout, wait_until

# The Postfix files a host may have under labs/hosts/HOST/ (postconf(5): main.cf, master.cf;
# the lookup tables its main.cf names).
POSTFIX_FILES = ("main.cf", "master.cf", "tls_policy", "transport")


def copy_postfix_files(source: Path, target: Path, rewrite: Callable[[str], str] = str) -> None:
    """Copy the host's Postfix files that exist in ``source`` to ``target``, through ``rewrite``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in POSTFIX_FILES:
        if (source / name).exists():
            (target / name).write_text(rewrite((source / name).read_text()))


def postfix_refusal(config_dir: Path) -> str | None:
    """What ``postfix -c DIR check`` says against the files in ``config_dir``; None when it says nothing.

    Postfix reports an unknown parameter or a missing file as a warning and still exits 0
    (postfix(1), ``check``); the lab refuses any such line, so that no file runs half-understood.
    """
    checked = subprocess.run(["postfix", "-c", str(config_dir), "check"], capture_output=True, text=True)
    said = (checked.stderr + checked.stdout).strip()
    return said if checked.returncode != 0 or said else None


def dovecot_refusal(conf: Path) -> str | None:
    """What ``doveconf -c FILE -n`` says when Dovecot refuses ``conf``; None when it accepts it."""
    checked = subprocess.run(["doveconf", "-c", str(conf), "-n"], capture_output=True, text=True)
    if checked.returncode == 0:
        return None
    return checked.stderr.strip() or f"doveconf exited with status {checked.returncode}"


def source_digest(source: Path) -> str:
    """A fingerprint of the host's Postfix files in ``source``, to tell whether they changed."""
    digest = hashlib.sha256()
    for name in POSTFIX_FILES:
        path = source / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()


def stop_by_pid_file(pid_file: Path, timeout: float = 10.0) -> None:
    """Stop the process named in a PID file (SIGTERM, then SIGKILL after ``timeout`` s) and wait for it."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        wait_until(gone, timeout, f"process {pid} to exit", interval=0.05)
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


# -- Inside a container ---------------------------------------------------------------------------

CONTAINER_SOURCE = Path("/etc/mailtls-config")  # labs/hosts/HOST/, mounted read-only
DOVECOT_PID_FILE = Path("/run/dovecot/master.pid")


class Refused(Exception):
    """Postfix or Dovecot refuses the host's files; the message is what they said."""


def install_in_container(source: Path = CONTAINER_SOURCE) -> None:
    """Check a copy of the host's files, then put them where Debian's servers read them.

    A file Postfix or Dovecot refuses raises Refused with their words, and the running servers
    keep the files they had.
    """
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch)
        copy_postfix_files(source, staging)
        refusal = postfix_refusal(staging)
        if refusal is None and (source / "dovecot.conf").exists():
            refusal = dovecot_refusal(source / "dovecot.conf")
        if refusal is not None:
            raise Refused(refusal)
        copy_postfix_files(staging, Path("/etc/postfix"))
    if (source / "dovecot.conf").exists():
        shutil.copy(source / "dovecot.conf", "/etc/dovecot/dovecot.conf")


def serve_in_container(source: Path = CONTAINER_SOURCE) -> None:
    """Install the files, start Dovecot if the host has a dovecot.conf, and become Postfix (foreground)."""
    install_in_container(source)
    if (source / "dovecot.conf").exists():
        subprocess.run(["dovecot"], check=True)
    os.execvp("postfix", ["postfix", "start-fg"])


def reload_in_container(source: Path = CONTAINER_SOURCE) -> None:
    """Install the files again, restart Dovecot and reload Postfix.

    Dovecot first, and restarted: a reload would keep listening on a port whose listener was
    removed. Its auth service restarts with it, and Postfix's running smtpd processes must
    reconnect to the new one (else: 454 4.7.0 Temporary authentication failure).
    """
    install_in_container(source)
    if (source / "dovecot.conf").exists():
        stop_by_pid_file(DOVECOT_PID_FILE)
        subprocess.run(["dovecot"], check=True)  # also brings back a Dovecot that died
    subprocess.run(["postfix", "reload"], check=True)


def main(argv: list[str] | None = None) -> int:
    """``python3 -m mailtls.hostfiles serve|reload``: the container's side; 1 when the files are refused."""
    parser = argparse.ArgumentParser(prog="mailtls-host", description="a lab host in its container")
    parser.add_argument("action", choices=["serve", "reload"])
    args = parser.parse_args(argv)
    try:
        (serve_in_container if args.action == "serve" else reload_in_container)()
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
