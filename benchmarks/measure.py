"""What every benchmark reports with its figures: this machine, and how long an action took."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path


def machine() -> str:
    """One line that names this machine: host name, cores, memory (GiB), Python and platform."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"machine: {platform.node()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.platform()}")


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action()`` took (``time.perf_counter``); its exceptions pass through."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def folder_size(folder: Path) -> int:
    """Bytes in the files under ``folder`` (links not followed, folders themselves not counted)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
