"""The command that builds one edition of the site, as ``make html`` does."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.paths import DOCS, ROOT


def sphinx_command(language: str, out: Path, doctrees: Path, notebooks: str = "off",
                   jupyterlite: bool = True) -> list[str]:
    """``sphinx-build`` of ``docs/LANGUAGE`` into ``out``, as the Makefile's SPHINXOPTS say.

    ``notebooks`` is conf.py's ``mailtls_notebooks`` (``off``, ``sim``, ``execute``, ``auto``);
    ``jupyterlite=False`` leaves out "run in your browser" (``mailtls_jupyterlite``).
    """
    return [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT), "-D", f"language={language}",
            "-D", f"mailtls_notebooks={notebooks}", "-D", f"mailtls_jupyterlite={int(jupyterlite)}",
            "-W", "--keep-going", "-n", "-q", "-d", str(doctrees), str(DOCS / language), str(out)]
