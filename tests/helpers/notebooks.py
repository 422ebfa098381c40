"""The course's notebooks: MyST Markdown files with a kernel, and executing them as Jupyter would."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.paths import NOTEBOOKS, ROOT

sys.path.insert(0, str(ROOT / "docs" / "_ext"))  # the site build's extensions, as conf.py loads them

from notebook_pages import is_notebook_text  # noqa: E402

CELL_TIMEOUT = 120  # seconds a cell may run


def is_notebook(path: Path) -> bool:
    """Whether a Markdown file is a MyST notebook, by the site build's own rule (notebook_pages)."""
    return is_notebook_text(path.read_text(encoding="utf-8"))


def notebook_paths(language: str) -> list[Path]:
    """The notebooks of one language (``notebooks/LANG/*.md`` that are notebooks), sorted."""
    return sorted(p for p in (NOTEBOOKS / language).glob("*.md") if is_notebook(p))


def execute(path: Path):
    """Read a MyST notebook with jupytext and run every cell in a ``python3`` kernel, from the root.

    Returns the executed ``nbformat.NotebookNode``; a failing cell raises
    ``nbclient.exceptions.CellExecutionError``, a cell slower than ``CELL_TIMEOUT`` seconds
    ``nbclient.exceptions.CellTimeoutError``.
    """
    import jupytext
    import nbclient

    notebook = jupytext.read(path)
    nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook
