"""A lab's generated files on this machine: its state, its description, the wiretap's mode, logs.

Every backend keeps them in the configuration's runtime folder (``/run/mailtls``, or
``/run/mailtls-classroom/student-K``), laid out the same way, so that ``lab status``, the logs,
the notebooks and the wiretap's transcript look the same whichever backend runs the lab.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from mailtls.config import LabConfig
from mailtls.errors import LabError, NoLabUp
from mailtls.generations import Generation
from mailtls.hosts import HOSTS, WIRETAP, Host, host
from mailtls.provision import provision, read_users
from mailtls.status import WIRETAP_MODE_FILE, Endpoint, LabState, LabStatus, WiretapFiles
from mailtls.wiretap import Mode

WIRETAP_MODES = tuple(mode.value for mode in Mode)


def no_lab_up(config: LabConfig) -> NoLabUp:
    """The error for a command that needs ``config``'s lab, when it is not up."""
    return NoLabUp.of(config.student)


def state(config: LabConfig) -> LabState | None:
    """The running lab's note of itself; None when no lab is up."""
    return LabState.read(config.runtime)


def transcript_path(files: Path) -> Path:
    """Where the wiretap of the lab whose generated files are in ``files`` writes what it relays
    (JSON lines)."""
    return files / "transcripts" / "wiretap.jsonl"


def wiretap_mode_file(files: Path) -> Path:
    """The file the wiretap reads its mode from, at each new connection."""
    return files / WIRETAP_MODE_FILE


def prepare(config: LabConfig, backend: str, generation: Generation, engine: str | None = None) -> None:
    """The lab's generated files (CA, certificates, users, log folders) and state (``generation``'s
    lab, run by ``backend`` with ``engine``), before any host starts."""
    provision(config.runtime, {h.name: config.address(h) for h in HOSTS})
    for lab_host in HOSTS:
        (config.host_runtime(lab_host) / "log").mkdir(parents=True, exist_ok=True)
    LabState(backend, str(config.labs.resolve()), generation.debian, engine).write(config.runtime)
    mode_file = wiretap_mode_file(config.runtime)
    mode_file.write_text("pass\n")
    os.chmod(mode_file, 0o644)


def remove(config: LabConfig) -> None:
    """Delete the lab's generated files (and the classroom's folder once no student has a lab)."""
    shutil.rmtree(config.runtime, ignore_errors=True)
    if config.student is not None:
        with contextlib.suppress(OSError):  # not empty: other students' labs are up
            config.runtime.parent.rmdir()


def describe(config: LabConfig, backend: str, generation: Generation, servers: dict[str, str],
             files: Path | None = None) -> LabStatus:
    """The description of the lab that ``config`` names, as ``backend`` runs it with ``generation``'s
    servers.

    ``files`` is the folder of its generated files (made by ``prepare``, or by the simulated lab),
    by default the configuration's runtime folder; ``servers`` the versions of its servers.
    """
    files = files or config.runtime
    return LabStatus(
        backend=backend,
        debian=generation.debian,
        ca_file=str(files / "ca.pem"),
        services=tuple(Endpoint(h.name, s.name, config.address(h), s.port, s.tls)
                       for h in HOSTS for s in h.services),
        users=tuple(read_users(files)),
        wiretap=WiretapFiles(WIRETAP.name, host(WIRETAP.wiretap_for).name, str(wiretap_mode_file(files)),
                             str(transcript_path(files))),
        servers=servers,
        logs={h.name: str(files / "hosts" / h.name / "log" / "postfix.log") for h in HOSTS if h.postfix},
    )


def set_wiretap_mode(config: LabConfig, mode: str) -> None:
    """Switch the wiretap to pass, record or strip mode.

    The wiretap reads this file at each new connection (both backends), so a switch takes effect
    at once and never cuts a session in progress. The transcript is kept: its entries carry a
    session number, and each session was relayed in one mode from start to end.
    """
    if mode not in WIRETAP_MODES:
        raise LabError(f"wiretap mode must be {', '.join(WIRETAP_MODES)}, not {mode!r}")
    if LabStatus.read(config.runtime) is None:
        raise no_lab_up(config)
    wiretap_mode_file(config.runtime).write_text(mode + "\n")


def logs(config: LabConfig, host_name: str | None = None) -> str:
    """The hosts' log files, one after the other (or one host's), each under a ``==> host: file <==`` line."""
    chosen: list[Host] = [host(host_name)] if host_name else list(HOSTS)
    parts = []
    for lab_host in chosen:
        for log in sorted(config.host_runtime(lab_host).rglob("*.log")):
            parts.append(f"==> {lab_host.name}: {log.name} <==\n{log.read_text(errors='replace')}")
    return "\n".join(parts)
