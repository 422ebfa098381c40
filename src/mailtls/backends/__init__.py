"""Ways to run the lab: each backend brings the same hosts up from the same files in labs/.

- ``native``: network namespaces on this machine (root, Linux, Debian's postfix and dovecot);
- ``containers``: one container per host with Podman or Docker (``labs/compose.yaml``).

Both offer the same functions: ``up``, ``down``, ``reload``, ``postfix_command`` and
``is_up``; what they share (the lab's files, its description, the wiretap's mode) is in ``common``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = ("containers", "native")


from mailtls.errors import LabError  # noqa: F401  (re-exported: where the backends' callers find it)


def get(name: str) -> ModuleType:
    if name not in NAMES:
        raise LabError(f"no backend {name!r}; choose one of {', '.join(NAMES)}")
    return importlib.import_module(f"mailtls.backends.{name}")


def running() -> ModuleType | None:
    """The backend of the lab that is up, if any."""
    from mailtls.backends.common import state

    backend = state().get("backend")
    return get(backend) if backend else None
