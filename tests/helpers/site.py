"""The command that builds one edition of the site, as ``make html`` does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from helpers.paths import DOCS, ROOT


def sphinx_command(language: str, out: Path, doctrees: Path) -> list[str]:
    """``sphinx-build`` of ``docs/LANGUAGE`` into ``out``, as the Makefile's SPHINXOPTS say."""
    return [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT), "-D", f"language={language}",
            "-W", "--keep-going", "-n", "-q", "-d", str(doctrees), str(DOCS / language), str(out)]


def build_environment(notebooks: str = "off", jupyterlite: bool = True) -> dict[str, str]:
    """This process's environment with the build's switches set.

    ``notebooks`` is MAILTLS_NOTEBOOKS (``off``, ``sim``, ``execute``); ``jupyterlite=False`` sets
    MAILTLS_JUPYTERLITE=off, which leaves out "run in your browser" (see conf.py).
    """
    return {**os.environ, "MAILTLS_NOTEBOOKS": notebooks,
            "MAILTLS_JUPYTERLITE": "on" if jupyterlite else "off"}
