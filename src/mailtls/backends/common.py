"""What every backend shares: the lab network's addresses, the lab's state, and its description.

Both backends give each host the same address on 198.18.0.0/24 and the standard ports, and
both keep the lab's generated files in ``/run/mailtls`` on this machine, so ``lab status``,
the logs and the wiretap's transcript look the same whichever backend runs.

On a classroom host, student K's lab (``MAILTLS_STUDENT=K``) has the network 198.18.K.0/24
and its files in ``/run/mailtls-classroom/student-K``; the hosts keep their last address byte.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mailtls.backends import LabError
from mailtls.hosts import CONFIG_FILES, HOSTS, LAB_FILES, STUDENT, Host, Service
from mailtls.hosts import host as find_host
from mailtls.provision import read_users
from mailtls.wiretap import Mode

# RFC 2544's benchmarking range, never routed: 198.18.0.0/24 for the single lab, 198.18.K.0/24 for student K.
NETWORK = ipaddress.ip_network(f"198.18.{STUDENT or 0}.0/24")
GATEWAY = NETWORK.network_address + 1
STATE_FILE = LAB_FILES / "lab.json"  # which backend runs, from which labs/ folder
STATUS_FILE = LAB_FILES / "status.json"  # what everyone may read: see write_status()
WIRETAP = next(h for h in HOSTS if h.wiretap_for)
WIRETAP_MODES = tuple(mode.value for mode in Mode)
WIRETAP_MODE_FILE = LAB_FILES / "wiretap.mode"


RELOAD_SETTLE = 1.0  # seconds for Postfix's processes from before a reload to exit
READY_SETTLE = 2.0  # seconds a port stays silent, its server up, before `up` takes it as closed on purpose


def address(host: Host) -> str:
    return str(NETWORK.network_address + host.octet)


def runtime_dir(host: Host) -> Path:
    """The host's folder on this machine: its logs (and, natively, its queue and state)."""
    return LAB_FILES / "hosts" / host.name


def for_this_lab(text: str) -> str:
    """A configuration file's text with the lab's files where this lab keeps them on this machine.

    The files under labs/ name ``/run/mailtls/``; a student's lab on a classroom host keeps its
    files elsewhere, and the native backend, whose servers see this machine's folders, runs a
    copy that names them. Nothing changes for the single lab.
    """
    return text.replace(f"{CONFIG_FILES}/", f"{LAB_FILES}/")


def transcript_path() -> Path:
    return LAB_FILES / "transcripts" / "wiretap.jsonl"


def run(command: list[str], *, check: bool = True, netns: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command (inside a network namespace if given); on failure, raise with its own words."""
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    # Output goes to a file, not a pipe: a daemon that forks keeps its pipes open, and reading
    # them would wait for it to exit.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        returncode = subprocess.run(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}).returncode
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, returncode, out.read(), err.read())
    if check and done.returncode != 0:
        said = (done.stderr + done.stdout).strip()
        raise LabError(f"`{' '.join(command)}` failed:\n{said}")
    return done


# -- The lab's state ------------------------------------------------------------------------------


def state() -> dict:
    """What the running lab recorded about itself; {} when no lab is up."""
    try:
        return json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return {}


def save_state(**changes: str) -> None:
    STATE_FILE.write_text(json.dumps({**state(), **changes}) + "\n")


def labs_in_use() -> Path:
    """The labs/ folder the running lab was started from (reload must read the same one)."""
    return Path(state()["labs"])


def already_up(backend: str, down) -> bool:
    """Whether ``up`` has nothing to do: this backend's lab is up and answering.

    A lab of this backend that no longer answers is taken down (with ``down``) so that ``up``
    starts afresh; a lab of the other backend is an error, since both use the same network.
    """
    running = state().get("backend")
    if running == backend:
        with contextlib.suppress(LabError):
            wait_until_listening(timeout=5)
            return True
        down()
    elif running:
        raise LabError(f"a {running} lab is up: `python -m mailtls lab down` first")
    return False


def prepare_lab_files(labs: Path, backend: str) -> None:
    """The lab's generated files and state, before any host starts."""
    from mailtls.provision import provision

    provision(LAB_FILES, {h.name: address(h) for h in HOSTS})
    for lab_host in HOSTS:
        (runtime_dir(lab_host) / "log").mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps({"backend": backend, "labs": str(labs.resolve())}) + "\n")
    WIRETAP_MODE_FILE.write_text("pass\n")
    os.chmod(WIRETAP_MODE_FILE, 0o644)


def remove_lab_files() -> None:
    """Delete this lab's generated files (and the classroom's folder once no student has a lab)."""
    shutil.rmtree(LAB_FILES, ignore_errors=True)
    if STUDENT is not None:
        with contextlib.suppress(OSError):  # not empty: other students' labs are up
            LAB_FILES.parent.rmdir()


# -- Describing and waiting -----------------------------------------------------------------------


def server_versions(run_on_mail) -> dict[str, str]:
    """The Postfix and Dovecot versions of mail.lab.test, so that outputs can say what made them.

    ``run_on_mail`` runs a command where mail.lab.test runs and returns what it printed.
    """
    return {
        "postfix": run_on_mail("postconf", "-d", "-h", "mail_version").strip(),
        "dovecot": run_on_mail("dovecot", "--version").split()[0],
    }


def write_status(servers: dict[str, str]) -> None:
    """Describe the running lab in a file anyone on this machine may read (the notebooks do).

    It holds the lab-only passwords: they open nothing but this lab's mailboxes.
    """
    described = {
        "backend": state()["backend"],
        "up": True,
        "servers": servers,
        "logs": {h.name: str(runtime_dir(h) / "log" / "postfix.log") for h in HOSTS if h.postfix},
        "ca_file": str(LAB_FILES / "ca.pem"),
        "wiretap": {"host": WIRETAP.name, "target": find_host(WIRETAP.wiretap_for).name, "mode_file": str(WIRETAP_MODE_FILE), "transcript": str(transcript_path())},
        "services": [
            {"host": h.name, "service": s.name, "address": address(h), "port": s.port, "tls": s.tls}
            for h in HOSTS for s in h.services
        ],
        "users": [{"login": u.login, "password": u.password} for u in read_users(LAB_FILES)],
    }
    STATUS_FILE.write_text(json.dumps(described, indent=2) + "\n")
    os.chmod(STATUS_FILE, 0o644)


def status(files: Path = LAB_FILES) -> dict:
    """What ``lab status --json`` prints: as written when the lab came up, with the wiretap's mode now.

    ``files`` is the lab's folder of generated files; another student's, on a classroom host.
    """
    if not (files / STATUS_FILE.name).exists():
        return {"up": False}
    described = json.loads((files / STATUS_FILE.name).read_text())
    described["wiretap"]["mode"] = wiretap_mode(files)
    return described


def silent_services(hosts: list[Host] | None = None) -> list[tuple[Host, Service, str]]:
    """The lab's ports that do not answer now, each with the reason."""
    silent = []
    for lab_host in hosts or HOSTS:
        for service in lab_host.services:
            try:
                socket.create_connection((address(lab_host), service.port), timeout=1).close()
            except OSError as error:
                silent.append((lab_host, service, error.strerror or str(error)))
    return silent


def silent_ports(hosts: list[Host] | None = None) -> list[str]:
    """``mail.lab.test:465 (submissions): Connection refused``, for each port that does not answer."""
    return [f"{h.name}:{s.port} ({s.name}): {why}" for h, s, why in silent_services(hosts)]


def server_of(lab_host: Host, service: Service) -> str:
    """The program that opens this port: postfix, dovecot or the wiretap."""
    if lab_host.wiretap_for:
        return "the wiretap"
    return "dovecot" if service.name.startswith("imap") else "postfix"


def wait_until_listening(timeout: float, settle: float = READY_SETTLE) -> list[str]:
    """Wait until every server of the lab listens; return the ports its files leave closed.

    Postfix, Dovecot and the wiretap each open all their ports as they start. So a server is up
    once one of its ports answers, and a port still silent ``settle`` seconds later is one that
    its configuration does not open: an exercise's starting state removes 465, for one. Raises
    when a server has not answered on any of its ports after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: set[tuple[str, int]] | None = None
    since = time.monotonic()
    while True:
        silent = silent_services()
        closed = {(h.name, s.port) for h, s, _ in silent}
        if not closed:
            return []
        not_up = sorted({
            f"{server_of(h, s)} on {h.name}" for h in HOSTS for s in h.services
            if all((h.name, t.port) in closed for t in h.services if server_of(h, t) == server_of(h, s))
        })
        if closed != last:
            last, since = closed, time.monotonic()
        if not not_up and time.monotonic() - since >= settle:
            return silent_ports()
        if time.monotonic() > deadline:
            raise LabError("the lab did not answer in time: " + (", ".join(not_up) or "its ports kept changing")
                           + ". Not listening:\n" + "\n".join(silent_ports()))
        time.sleep(0.2)


def wiretap_mode(files: Path = LAB_FILES) -> str:
    try:
        return (files / WIRETAP_MODE_FILE.name).read_text().strip()
    except FileNotFoundError:
        return "pass"


def set_wiretap_mode(mode: str) -> None:
    """Switch the wiretap to pass, record or strip mode.

    The wiretap reads this file at each new connection (both backends), so a switch takes effect
    at once and never cuts a session in progress. The transcript is kept: its entries carry a
    session number, and each session was relayed in one mode from start to end.
    """
    if mode not in WIRETAP_MODES:
        raise LabError(f"wiretap mode must be {', '.join(WIRETAP_MODES)}, not {mode!r}")
    if not STATUS_FILE.exists():
        raise LabError("no lab is up: run `python -m mailtls lab up` first")
    WIRETAP_MODE_FILE.write_text(mode + "\n")


def wait_for_wiretap(read_log, timeout: float = 20.0) -> None:
    """Wait for the wiretap's "listening" line: probing its ports would put noise in the transcript.

    ``read_log`` returns what the wiretap has printed since it was started.
    """
    deadline = time.monotonic() + timeout
    said = ""
    while time.monotonic() < deadline:
        said = read_log()
        if "wiretap in" in said:
            return
        if "error:" in said or "Traceback" in said:
            break
        time.sleep(0.05)
    raise LabError("the wiretap did not start:\n" + said[-2000:])


def logs(host_name: str | None = None) -> str:
    """The hosts' log files, one after the other (or one host's)."""
    chosen = [find_host(host_name)] if host_name else list(HOSTS)
    parts = []
    for lab_host in chosen:
        for log in sorted(runtime_dir(lab_host).rglob("*.log")):
            parts.append(f"==> {lab_host.name}: {log.name} <==\n{log.read_text(errors='replace')}")
    return "\n".join(parts)
