"""The repository's folders, found from this file's place in it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LABS = ROOT / "labs"
NOTEBOOKS = ROOT / "notebooks"
TESTS = ROOT / "tests"
