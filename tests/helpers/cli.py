"""The lab's command line, ``python -m mailtls ...``, run as a student or a teacher would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from helpers.paths import ROOT

MAILTLS = [sys.executable, "-m", "mailtls"]


class CommandFailed(RuntimeError):
    """``mailtls(..., check=True)`` exited with a status other than 0; the message holds its output."""


def mailtls(*args: str, env: Mapping[str, str] | None = None, timeout: float = 900,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mailtls ARGS`` from the repository's root and return what it did.

    Its standard input is empty; its outputs are captured as text. ``env`` replaces the whole
    environment (``{**os.environ, "MAILTLS_STUDENT": "2"}``). ``timeout`` is in seconds
    (``subprocess.TimeoutExpired`` after it). With ``check``, raises ``CommandFailed`` on a
    non-zero exit status.
    """
    done = subprocess.run([*MAILTLS, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          stdin=subprocess.DEVNULL, env=None if env is None else dict(env))
    if check and done.returncode != 0:
        raise CommandFailed(f"`python -m mailtls {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
    return done


def start_mailtls(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python -m mailtls ARGS`` from the repository's root, without waiting for it.

    Its standard output and error go, merged, to one text pipe (``.stdout``); ``env`` as for
    ``mailtls``. The caller stops it and reads the rest (``send_signal``, ``communicate``).
    """
    return subprocess.Popen([*MAILTLS, *args], cwd=ROOT, env=None if env is None else dict(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
