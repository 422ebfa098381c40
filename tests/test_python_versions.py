"""The code runs on every Python the README admits: Debian 12's 3.11.2 up to Debian 13's 3.13.

``make`` builds the virtual environment with Debian's own ``/usr/bin/python3``, so on a
Debian 12 machine the whole suite runs on 3.11.2, the oldest. vermin, which knows in which
Python each standard-library feature appeared, also reads every file for features newer than
3.11 that a run might not reach. Features added in a 3.11 patch release (``tarfile``'s
``filter=`` came in 3.11.4) are below its resolution: running on 3.11.2 itself catches those.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from course import ROOT

OLDEST = (3, 11, 2)  # Debian 12's python3 (https://packages.debian.org/bookworm/python3)
CODE = ["src", "tools", "tests", "benchmarks", "docs/_ext", "conf.py"]


def vermin(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("vermin")), "--target=3.11-", "--violations",
         "--eval-annotations", "--no-tips", "--no-parse-comments", *paths],
        cwd=ROOT, capture_output=True, text=True,
    )


def test_no_feature_newer_than_the_oldest_python() -> None:
    done = vermin(*CODE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_vermin_finds_a_newer_feature(tmp_path) -> None:
    newer = tmp_path / "newer.py"
    newer.write_text("import itertools\n\nprint(list(itertools.batched('abcd', 2)))\n")  # 3.12
    done = vermin(str(newer))
    assert done.returncode != 0 and "itertools.batched" in done.stdout, done.stdout


def test_the_readme_and_the_package_name_the_same_oldest_python() -> None:
    oldest = ".".join(map(str, OLDEST))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={oldest}"
    assert re.search(rf"Python {re.escape(oldest)} \(Debian 12\)", (ROOT / "README.md").read_text())
