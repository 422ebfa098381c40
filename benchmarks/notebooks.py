"""How long the notebooks take against each backend, and what executing them adds to a site build.

For each backend (native, then containers): bring a lab up, execute every notebook of one
language with nbclient (as ``make test`` does), for each language, then build the English
edition twice in the same run, once executing the notebooks against that lab and once without
(``-D mailtls_notebooks=execute`` and ``off``), each into a fresh folder.

Run as root with ``make benchmarks-notebooks``. Figures go to standard output; nothing is asserted.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbclient

from mailtls.backends import containers, native
from mailtls.backends.common import state

ROOT = Path(__file__).resolve().parent.parent


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def execute_all(language: str) -> None:
    for path in sorted((ROOT / "notebooks" / language).glob("*.md")):
        notebook = jupytext.read(path)
        if "kernelspec" in notebook.metadata:
            nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()


def build_english(notebooks: str, scratch: Path) -> None:
    out = scratch / f"site-{notebooks}"
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT), "-D", "language=en",
                    "-D", f"mailtls_notebooks={notebooks}", "-q", "-W", "--keep-going", "-n",
                    "-d", str(out / "doctrees"), str(ROOT / "docs" / "en"), str(out / "html")],
                   check=True, capture_output=True)


def main() -> int:
    if state():
        print("a lab is already up: `python -m mailtls lab down` first", file=sys.stderr)
        return 1
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    for name, backend in (("native", native), ("containers", containers)):
        up = timed(lambda: backend.up(on_progress=lambda message: None))
        try:
            print(f"\n{name}: lab up {up:.1f} s")
            for language in ("en", "es"):
                print(f"  all notebooks, {language}: {timed(lambda: execute_all(language)):.1f} s")
            with tempfile.TemporaryDirectory(prefix="mailtls-bench-") as scratch:
                executed = timed(lambda: build_english("execute", Path(scratch)))
                plain = timed(lambda: build_english("off", Path(scratch)))
            print(f"  English site build, notebooks executed: {executed:.1f} s; without execution: {plain:.1f} s")
        finally:
            backend.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
