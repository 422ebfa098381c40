"""The lab as the tests handle it: a scratch copy of labs/, edits to it, a host's Postfix restarted,
the engine's listing."""

from __future__ import annotations

import contextlib
import os
import shutil
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from helpers.paths import LABS
from helpers.polling import wait_until

# Every lab the tests run, as BACKEND or BACKEND-debianNN: the native backend (this machine's own
# generation), and the containers with each generation of Debian's servers (mailtls.generations).
LAB_KINDS = ["native", "containers-debian13", "containers-debian12"]


def lab_kind(kind: str) -> tuple[str, str | None]:
    """``containers-debian13`` -> (``containers``, ``"13"``); ``native`` -> (``native``, None): the
    backend and the Debian release a name of :data:`LAB_KINDS` asks for (None: the backend's own)."""
    backend, _, release = kind.partition("-debian")
    return backend, release or None


def scratch_labs(destination: Path) -> Path:
    """Copy labs/ into ``destination`` (made if missing, filled if it exists) and return it.

    The jupyter image's wheelhouse (``labs/wheels``, if it was made) is left out: a lab does not
    need it and it is large.
    """
    shutil.copytree(LABS, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("wheels"))
    return destination


@contextlib.contextmanager
def edited(lab, changes: dict[str, list[tuple[str, str]]]) -> Iterator[None]:
    """Replace text in a running lab's copy of labs/, reload, and restore and reload on the way out.

    ``lab`` is the tests' ``LabUnderTest`` (``.labs``, ``.backend``, ``.config_file``); ``changes``
    maps a host's file (``"mail/main.cf"``: the one the lab's generation runs, see
    mailtls.generations.host_file) to ``(old, new)`` pairs. Fails the test when ``old`` is not in
    the file; the reload's ``LabError`` passes through.
    """
    originals = {}
    for name, replacements in changes.items():
        host, _, file_name = name.partition("/")
        path = lab.config_file(host, file_name)
        originals[path] = text = path.read_text()
        for old, new in replacements:
            assert old in text, f"{name} has no {old!r}"
            text = text.replace(old, new)
        path.write_text(text)
    try:
        lab.backend.reload()
        yield
    finally:
        for path, text in originals.items():
            path.write_text(text)
        lab.backend.reload()


def restart_postfix(lab, lab_host) -> None:
    """Stop and start Postfix on ``lab_host`` (a ``mailtls.hosts.Host``) of the running lab, then
    wait up to 60 s until its port 25 answers again (in the containers, the container is its
    Postfix: the container restarts). ``lab`` is the tests' ``LabUnderTest``."""
    if lab.backend_name == "native":
        lab.backend.postfix_command(lab_host, "postfix", "stop")
        lab.backend.postfix_command(lab_host, "postfix", "start")
    else:
        lab.backend.compose("restart", lab_host.short)

    def answers() -> bool:
        try:
            with smtplib.SMTP(lab.address(lab_host.name), 25, timeout=5) as server:
                return server.noop()[0] == 250
        except OSError:
            return False

    # Postfix must be up again before anything else is asked of it (a reload included).
    wait_until(answers, 60.0, what=f"Postfix on {lab_host.name} to answer again")


def container_listing(*options: str) -> str:
    """``ENGINE ps -a OPTIONS --format {{.Names}}``: the names of the containers, one a line.

    ENGINE is the container engine the containers backend uses (Podman or Docker); ``options``
    narrows the list (``"--filter", "label=..."``).
    """
    from mailtls.backends.containers import engine, engine_env

    name = engine()
    return subprocess.run([name, "ps", "-a", *options, "--format", "{{.Names}}"], capture_output=True,
                          text=True, env={**os.environ, **engine_env(name)}).stdout
