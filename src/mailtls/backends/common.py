"""What every backend shares: the lab network's addresses, the lab's state, and its description.

Both backends give each host the same address on 198.18.0.0/24 and the standard ports, and
both keep the lab's generated files in ``/run/mailtls`` on this machine, so ``lab status``,
the logs and the wiretap's transcript look the same whichever backend runs.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mailtls.backends import LabError
from mailtls.hosts import HOSTS, LAB_FILES, Host
from mailtls.hosts import host as find_host
from mailtls.provision import read_users
from mailtls.wiretap import Mode

NETWORK = ipaddress.ip_network("198.18.0.0/24")  # RFC 2544's benchmarking range: never routed
GATEWAY = NETWORK.network_address + 1
STATE_FILE = LAB_FILES / "lab.json"  # which backend runs, from which labs/ folder
STATUS_FILE = LAB_FILES / "status.json"  # what everyone may read: see write_status()
WIRETAP = next(h for h in HOSTS if h.wiretap_for)
WIRETAP_MODES = tuple(mode.value for mode in Mode)
WIRETAP_MODE_FILE = LAB_FILES / "wiretap.mode"


RELOAD_SETTLE = 1.0  # seconds for Postfix's processes from before a reload to exit


def address(host: Host) -> str:
    return str(NETWORK.network_address + host.octet)


def runtime_dir(host: Host) -> Path:
    """The host's folder on this machine: its logs (and, natively, its queue and state)."""
    return LAB_FILES / "hosts" / host.name


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
        if all_ports_answer(timeout=5):
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


def status() -> dict:
    """What ``lab status --json`` prints: as written when the lab came up, with the wiretap's mode now."""
    if not STATUS_FILE.exists():
        return {"up": False}
    described = json.loads(STATUS_FILE.read_text())
    described["wiretap"]["mode"] = wiretap_mode()
    return described


def silent_ports(hosts: list[Host] | None = None) -> list[str]:
    silent = []
    for lab_host in hosts or HOSTS:
        for service in lab_host.services:
            try:
                socket.create_connection((address(lab_host), service.port), timeout=1).close()
            except OSError as error:
                silent.append(f"{lab_host.name}:{service.port} ({service.name}): {error.strerror or error}")
    return silent


def all_ports_answer(timeout: float, hosts: list[Host] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not silent_ports(hosts):
            return True
        time.sleep(0.2)
    return False


def wiretap_mode() -> str:
    try:
        return WIRETAP_MODE_FILE.read_text().strip()
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
