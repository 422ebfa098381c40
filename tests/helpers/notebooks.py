"""The course's notebooks: MyST Markdown files with a kernel, and executing them as Jupyter would."""

from __future__ import annotations

from pathlib import Path

from helpers.paths import NOTEBOOKS, ROOT

CELL_TIMEOUT = 120  # seconds a cell may run


def is_notebook(path: Path) -> bool:
    """Whether a Markdown file is a MyST notebook: a ``kernelspec`` in its front matter.

    (MyST-NB's rule: https://myst-nb.readthedocs.io/en/latest/authoring/text-notebooks.html)
    """
    return "kernelspec:" in path.read_text(encoding="utf-8").split("\n---", 1)[0]


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
