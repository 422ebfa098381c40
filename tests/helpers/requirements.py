"""What a test needs from this machine: skip the test when it is missing, or fail it under CI.

With ``CI=true`` a test that lacks a component (Postfix, Dovecot, Chromium) fails instead of
being skipped: CI must run the real thing.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true`` in the environment), read when a test asks."""
    return os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip the test when ``what`` is missing, or fail it under CI."""
    if condition:
        return
    message = f"missing: {what}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: components may not be skipped)")
    pytest.skip(message)


def require_program(name: str, hint: str) -> str:
    """The path of a program the test runs for real; ``hint`` says where to get it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    require(path is not None, f"{name} ({hint})")
    return path  # type: ignore[return-value]


def require_dovecot_23(what: str) -> None:
    """Skip (fail under CI) when this machine's Dovecot is not the 2.3 that ``what`` needs."""
    from mailtls.errors import LabError
    from mailtls.hostfiles import installed_generation

    try:
        found = installed_generation().dovecot
    except LabError as error:
        found = str(error)
    require(found == "2.3", f"Dovecot 2.3 for {what}: this machine has {found}")


def require_backend(name: str) -> None:
    """What a lab on this backend needs: root on Linux, and the servers' packages or a container engine."""
    require(sys.platform == "linux" and os.geteuid() == 0, f"root on Linux (the {name} lab backend)")
    if name == "native":
        for program in ("postfix", "dovecot", "ip"):
            require_program(program, "Debian packages postfix, dovecot-core, iproute2")
    else:
        from mailtls.backends.containers import engine

        require(engine() is not None,
                "a container engine (Debian packages podman, netavark, aardvark-dns, runc)")
