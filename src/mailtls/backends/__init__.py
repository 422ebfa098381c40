"""Ways to run the lab: each backend brings the same hosts up from the same files in labs/.

- ``native``: network namespaces on this machine (root, Linux, Debian's postfix and dovecot);
- ``containers``: one container per host with Podman or Docker (``labs/compose.yaml``).

Both are subclasses of ``base.Backend`` (up, down, reload, postfix_command); ``get`` makes one
for a lab's configuration, ``running`` finds the one that runs it.
"""

from __future__ import annotations

import os
import sys

from mailtls import runtime
from mailtls.backends.base import Backend
from mailtls.config import LabConfig
from mailtls.errors import LabError, NeedsRoot

NAMES = ("containers", "native")


def get(name: str, config: LabConfig) -> Backend:
    """The backend called ``name`` for the lab ``config`` describes; LabError for an unknown name."""
    if name == "containers":
        from mailtls.backends.containers import ContainersBackend

        return ContainersBackend(config)
    if name == "native":
        from mailtls.backends.native import NativeBackend

        return NativeBackend(config)
    raise LabError(f"no backend {name!r}; choose one of {', '.join(NAMES)}")


def running(config: LabConfig) -> Backend | None:
    """The backend of ``config``'s lab if it is up, else None."""
    state = runtime.state(config)
    return get(state.backend, config) if state else None


def choose(requested: str | None) -> str:
    """The backend asked for; else containers when an engine answers; else native as root on Linux.

    Raises NeedsRoot when neither can run here.
    """
    if requested:
        return requested
    from mailtls.backends.containers import engine

    if engine() is not None:
        return "containers"
    if sys.platform == "linux" and os.geteuid() == 0:
        return "native"
    raise NeedsRoot(
        "no way to run the lab here: install Podman or Docker (containers backend), or run as root "
        "on Linux with Debian's postfix and dovecot packages (native backend)"
    )
