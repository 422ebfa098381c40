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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from mailtls.errors import LabError
from mailtls.generations import Generation, host_file, of_dovecot_version
from mailtls.polling import WaitTimeout, wait_until

# The Postfix files a host may have under labs/hosts/HOST/ (postconf(5): main.cf, master.cf;
# the lookup tables its main.cf names).
POSTFIX_FILES = ("main.cf", "master.cf", "tls_policy", "transport")
# What Debian 13's Postfix prints when it copies a system file into its chroot (syncfiles.pl).
CHROOT_SYNC = re.compile(r"^updating \S+ => \S+$")
# Postfix >= 3.9 warns of a parameter it still obeys but will drop (RELEASE_NOTES-3.9,
# "Deprecated features"), such as smtpd_use_tls: the file is understood, so the lab runs it.
DEPRECATED = re.compile(r'warning: .*support for parameter "\w+" will be removed')


def installed_generation() -> Generation:
    """The generation of this machine's (or container's) own Postfix and Dovecot, told by
    ``dovecot --version`` (2.4: Debian 13; 2.3: Debian 12): the files of that generation are the
    ones to run.

    Raises LabError when Dovecot is missing, UnknownGeneration when it is of neither generation.
    """
    if shutil.which("dovecot") is None:
        raise LabError("Dovecot is not installed (apt-get install dovecot-core dovecot-imapd)")
    done = subprocess.run(["dovecot", "--version"], capture_output=True, text=True)
    return of_dovecot_version(done.stdout if done.returncode == 0 else "")


def copy_postfix_files(source: Path, target: Path, generation: Generation,
                       rewrite: Callable[[str], str] = str) -> None:
    """Copy ``generation``'s Postfix files of the host folder ``source`` (those that exist) to
    ``target``, flat, through ``rewrite``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in POSTFIX_FILES:
        path = host_file(source, name, generation)
        if path.exists():
            (target / name).write_text(rewrite(path.read_text()))


def postfix_refusal(config_dir: Path) -> str | None:
    """What ``postfix -c DIR check`` says against the files in ``config_dir``; None when it says nothing.

    Postfix reports an unknown parameter or a missing file as a warning and still exits 0
    (postfix(1), ``check``); the lab refuses any such line, so that no file runs half-understood.
    Two kinds of line are no refusal: Debian's own note that it copied a file into Postfix's chroot
    (``updating /etc/hosts => /var/spool/postfix//etc/hosts``: Debian 13's
    /usr/lib/postfix/syncfiles.pl), and Postfix 3.10's warning that a parameter it still obeys
    will be removed (``support for parameter "smtpd_use_tls" will be removed``). ``postfix check``
    runs ``postconf`` many times, and each says the same warning again; it is said once here.
    """
    checked = subprocess.run(["postfix", "-c", str(config_dir), "check"], capture_output=True, text=True)
    said = "\n".join(dict.fromkeys(
        line for line in (checked.stderr + checked.stdout).splitlines()
        if line.strip() and not CHROOT_SYNC.match(line) and not DEPRECATED.search(line)))
    return said if checked.returncode != 0 or said else None


def dovecot_refusal(conf: Path) -> str | None:
    """What ``doveconf -c FILE -x`` says when Dovecot refuses ``conf``; None when it accepts it.

    ``-x`` reads the files the settings name, as ``dovecot`` does when it starts: Dovecot 2.4's
    ``doveconf -n`` accepts an ``ssl_server_cert_file`` that does not exist, which ``dovecot`` then
    refuses (exit status 89; measured with Dovecot 2.4.1).
    """
    checked = subprocess.run(["doveconf", "-c", str(conf), "-x"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    if checked.returncode == 0:
        return None
    return checked.stderr.strip() or f"doveconf exited with status {checked.returncode}"


# What Dovecot reads from other files as it starts: 2.3's "setting = </path" (certificates, keys),
# 2.4's "ssl_server_cert_file = /path" and the other *_file settings, and !include'd files.
_DOVECOT_READS = re.compile(r"<\s*(/\S+)|^\s*\w+_file\s*=\s*(/\S+)|^\s*!include(?:_try)?\s+(/\S+)",
                            re.MULTILINE)


def dovecot_digest(conf: Path) -> str:
    """A fingerprint of what Dovecot reads as it starts from ``conf``: the file itself and the files
    it names to be read then (certificates, keys, CA files, included files). Dovecot started from
    the same fingerprint would run as it runs now."""
    text = conf.read_text()
    digest = hashlib.sha256(text.encode() + b"\0")
    for match in sorted({next(g for g in m if g) for m in _DOVECOT_READS.findall(text)}):
        path = Path(match)
        digest.update(match.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()


def dovecot_needs_restart(conf: Path, pid_file: Path, stamp: Path) -> bool:
    """Whether a reload must restart Dovecot: no live process is named in ``pid_file`` (it died, or
    never started), or :func:`dovecot_digest` of ``conf`` is not the one ``stamp`` holds (written by
    :func:`dovecot_started` when it last started). A restart costs seconds (Dovecot waits for its
    processes to end), so a reload that changes nothing Dovecot reads leaves it running."""
    try:
        if not alive(int(pid_file.read_text().split()[0])):
            return True
    except (OSError, ValueError, IndexError):
        return True
    try:
        return stamp.read_text().strip() != dovecot_digest(conf)
    except OSError:
        return True


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and is no zombie (dead, not yet reaped by its
    parent, which signals still reach: proc(5), /proc/PID/stat's state ``Z``)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def dovecot_started(conf: Path, stamp: Path) -> None:
    """Record in ``stamp`` what Dovecot read as it started from ``conf`` (:func:`dovecot_needs_restart`)."""
    stamp.write_text(dovecot_digest(conf) + "\n")


def source_digest(source: Path, generation: Generation) -> str:
    """A fingerprint of ``generation``'s Postfix files in the host folder ``source``, to tell whether
    they changed."""
    digest = hashlib.sha256()
    for name in POSTFIX_FILES:
        path = host_file(source, name, generation)
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
DOVECOT_CONF = Path("/etc/dovecot/dovecot.conf")
DOVECOT_STAMP = Path("/run/dovecot/mailtls-started.sha256")  # see dovecot_needs_restart
# The dotlock of Dovecot's list of instances (``doveadm instance list``), which its master
# rewrites. See serve_in_container.
DOVECOT_INSTANCES_LOCK = Path("/var/lib/dovecot/instances.lock")


class Refused(Exception):
    """Postfix or Dovecot refuses the host's files; the message is what they said."""


def install_in_container(source: Path = CONTAINER_SOURCE) -> None:
    """Check a copy of the host's files, then put them where Debian's servers read them.

    The files are those of the container's generation (``installed_generation``). A file Postfix or
    Dovecot refuses raises Refused with their words, and the running servers keep the files they had.
    """
    generation = installed_generation()
    dovecot_conf = host_file(source, "dovecot.conf", generation)
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch)
        copy_postfix_files(source, staging, generation)
        refusal = postfix_refusal(staging)
        if refusal is None and dovecot_conf.exists():
            refusal = dovecot_refusal(dovecot_conf)
        if refusal is not None:
            raise Refused(refusal)
        copy_postfix_files(staging, Path("/etc/postfix"), generation)
    if dovecot_conf.exists():
        shutil.copy(dovecot_conf, DOVECOT_CONF)


def serve_in_container(source: Path = CONTAINER_SOURCE) -> None:
    """Install the files, start Dovecot if the host has a dovecot.conf, and become Postfix (foreground).

    A container that stopped (``podman restart``) took its Dovecot down with Postfix's master, its
    first process: the master ends every process as it stops, and the container's end kills
    whatever is still stopping. Dovecot can leave :data:`DOVECOT_INSTANCES_LOCK` behind that way,
    and the next Dovecot then waits for it before its auth service answers (measured with Dovecot
    2.4.1: 11 s, then ``file_dotlock_open(/var/lib/dovecot/instances) failed``); Postfix's
    submission service, which asks that auth service after STARTTLS, answers EHLO as late. No
    Dovecot runs yet in a container that starts, so such a lock is stale and is removed.
    """
    install_in_container(source)
    if host_file(source, "dovecot.conf", installed_generation()).exists():
        DOVECOT_INSTANCES_LOCK.unlink(missing_ok=True)
        subprocess.run(["dovecot"], check=True)
        dovecot_started(DOVECOT_CONF, DOVECOT_STAMP)
    os.execvp("postfix", ["postfix", "start-fg"])


def reload_in_container(source: Path = CONTAINER_SOURCE) -> None:
    """Install the files again, restart Dovecot if what it reads changed (or it died), and reload Postfix.

    Dovecot is restarted, not reloaded: a reload would keep listening on a port whose listener was
    removed. Its auth service restarts with it, and Postfix's running smtpd processes must
    reconnect to the new one (else: 454 4.7.0 Temporary authentication failure): Postfix is
    reloaded after it.
    """
    install_in_container(source)
    if (host_file(source, "dovecot.conf", installed_generation()).exists()
            and dovecot_needs_restart(DOVECOT_CONF, DOVECOT_PID_FILE, DOVECOT_STAMP)):
        stop_by_pid_file(DOVECOT_PID_FILE)
        subprocess.run(["dovecot"], check=True)  # also brings back a Dovecot that died
        dovecot_started(DOVECOT_CONF, DOVECOT_STAMP)
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
