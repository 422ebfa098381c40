"""An exercise's edits of the lab's files: read from its TOML files, applied all or nothing.

An edit replaces one exact piece of text in one file of ``labs/`` (``hosts/mail/master.cf``...).
If that text is not there exactly once, nothing is changed and the error says which file to
look at, so a file that a student already edited is never half-rewritten.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from mailtls.errors import LabError
from mailtls.exercises.exercise import Exercise
from mailtls.hosts import SHIPPED_LABS


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` with ``new`` in ``file``, a path relative to ``labs/`` (``hosts/mail/master.cf``)."""

    file: str
    old: str
    new: str


def read_edits(source: Traversable) -> list[Edit]:
    """The ``[[edit]]`` tables of one TOML file, in order; none if the file does not exist.

    Raises tomllib.TOMLDecodeError for a file that is no TOML, KeyError for a table without
    ``file``, ``old`` or ``new``.
    """
    if not source.is_file():
        return []
    return [Edit(e["file"], e["old"], e["new"]) for e in tomllib.loads(source.read_text())["edit"]]


def edits_for(exercise: Exercise, which: str) -> list[Edit]:
    """The edits of ``start`` or ``solution``. Without a solution file, the solution undoes the
    start: the lab as it comes is the reference configuration."""
    if which == "solution" and not exercise.has_edits("solution"):
        return [Edit(e.file, e.new, e.old) for e in reversed(read_edits(exercise.edits_file("start")))]
    return read_edits(exercise.edits_file(which))


def compare_command(labs: Path, file: str) -> str:
    """The command that shows a student's changes to one of the lab's files.

    labs/ in the repository is a Git checkout; a student's copy on a classroom host is not, so
    it is compared with the files the course ships.
    """
    if labs.resolve() == SHIPPED_LABS.resolve():
        return f"git diff labs/{file}"
    return f"diff -u {SHIPPED_LABS / file} {labs / file}"


def apply(exercise: Exercise, which: str, labs: Path) -> list[str]:
    """Apply ``start`` or ``solution`` to the lab's files in ``labs``; returns the files changed.

    Every edit is checked before any file is written: all or nothing. Raises LabError, naming
    the file and the command that compares it with the original, when an edit does not apply.
    """
    edits = edits_for(exercise, which)
    texts: dict[str, str] = {}
    for edit in edits:
        path = labs / edit.file
        text = texts.get(edit.file, path.read_text() if path.exists() else "")
        found = text.count(edit.old)
        if found != 1:
            state = "is not there" if found == 0 else f"is there {found} times"
            raise LabError(f"{which} of exercise {exercise.name}: {edit.file} does not look as expected "
                           f"(the text to replace {state}). Was it edited already? Compare it with the "
                           f"original (`{compare_command(labs, edit.file)}`) and restore it to start again.\n"
                           f"Expected:\n{edit.old}")
        texts[edit.file] = text.replace(edit.old, edit.new)
    for name, text in texts.items():
        (labs / name).write_text(text)
    return list(texts)
