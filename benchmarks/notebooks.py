"""How long the notebooks take against each backend, and what executing them adds to a site build.

For each backend (native, then containers): bring a lab up, execute every notebook of one
language with nbclient (as ``make test`` does), for each language, then build the English
edition twice in the same run, once executing the notebooks against that lab and once without
(``-D mailtls_notebooks=execute`` and ``off``), each into a fresh folder.

Run as root with ``make benchmarks-notebooks``. Figures go to standard output; nothing is asserted.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from mailtls import runtime
from mailtls.backends import containers, native
from mailtls.config import LabConfig
from measure import machine, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the helpers the tests use too

from helpers.notebooks import execute, notebook_paths
from helpers.site import sphinx_command


def execute_all(language: str) -> None:
    """Every notebook of one language, one after the other, as ``make test`` executes them."""
    for path in notebook_paths(language):
        execute(path)


def build_english(notebooks: str, scratch: Path) -> None:
    """The English edition into ``scratch/site-NOTEBOOKS``; ``notebooks`` is conf.py's mailtls_notebooks."""
    out = scratch / f"site-{notebooks}"
    subprocess.run(sphinx_command("en", out / "html", out / "doctrees", notebooks), check=True,
                   capture_output=True)


def main() -> int:
    if runtime.state(LabConfig()):
        print("a lab is already up: `python -m mailtls lab down` first", file=sys.stderr)
        return 1
    print(machine())
    for name, backend in (("native", native.NativeBackend(LabConfig())),
                          ("containers", containers.ContainersBackend(LabConfig()))):
        up = timed(lambda backend=backend: backend.up(on_progress=lambda message: None))
        try:
            print(f"\n{name}: lab up {up:.1f} s")
            for language in ("en", "es"):
                seconds = timed(lambda language=language: execute_all(language))
                print(f"  all notebooks, {language}: {seconds:.1f} s")
            with tempfile.TemporaryDirectory(prefix="mailtls-bench-") as scratch:
                executed = timed(lambda: build_english("execute", Path(scratch)))
                plain = timed(lambda: build_english("off", Path(scratch)))
            print(f"  English site build, notebooks executed: {executed:.1f} s; "
                  f"without execution: {plain:.1f} s")
        finally:
            backend.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
