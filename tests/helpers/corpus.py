"""The corpus of configuration variants (``tests/sim_corpus/*.toml``): read, and applied to a labs/ folder.

Each file is one variant of the lab's files, named by its id (the file's stem), in the format of
the exercises' ``start.toml`` (``[[edit]]`` tables with ``file``, ``old`` and ``new``, read with
:func:`mailtls.exercises.edits.read_edits`) plus:

- ``category``: what it exercises (``server-tls``, ``client-tls``, ``dovecot``, ``files``,
  ``other-generation``, ``typos``, ``exercise-NAME``), or ``baseline`` for the lab as it comes
  (``as-it-comes``: no edits), which runs first;
- ``description``: one line, in a student's terms;
- ``generations``: the Debian releases it applies to (``[13, 12]``; ``[12]`` for an edit of
  Dovecot 2.3's file only). An edit of a file under ``hosts/HOST/debianNN/`` is made only on
  generation NN; an edit of a shared file on every generation of the list;
- ``probes`` (optional): the groups of observations it needs (see :mod:`helpers.probes`);
  by default those of its category;
- ``exercise`` and ``exercise_edits`` (optional): the exercise it belongs to (as the command line
  names it: ``relay-policy``) and which of its edits come first (``["start"]``, or
  ``["start", "solution"]`` for the reference solution); the entry's own edits follow them. The
  checker's verdict on that exercise is then one of the observations.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mailtls import exercises
from mailtls.exercises.edits import Edit, read_edits

CORPUS = Path(__file__).resolve().parent.parent / "sim_corpus"

# The observations each category needs by default (helpers.probes.GROUPS).
CATEGORY_PROBES = {
    "server-tls": ["smtp", "tls-smtp", "log"],
    "client-tls": ["relay", "log"],
    "dovecot": ["imap", "tls-imap"],
    "files": ["smtp", "imap", "tls", "relay", "log"],
    "other-generation": ["imap"],
    "typos": [],
    "baseline": ["smtp", "imap", "tls", "relay", "log"],
}
EXERCISE_PROBES = {
    "certificate": ["log"],
    "submission": ["smtp"],
    "imap": ["imap"],
    "protocols": ["tls"],
    "relay-policy": ["relay", "log"],
    "striptls": ["log"],
}
_GENERATION_FOLDER = re.compile(r"^hosts/[^/]+/debian(\d+)/")


@dataclass(frozen=True)
class Entry:
    """One variant of the lab's files; see the module's docstring for the fields."""

    id: str
    category: str
    description: str
    generations: tuple[int, ...]
    edits: tuple[Edit, ...]
    probes: tuple[str, ...]
    exercise: str | None = None
    exercise_edits: tuple[str, ...] = ()

    @property
    def as_it_comes(self) -> bool:
        """Whether the entry leaves the lab's files as they come: the baseline, the start of an
        exercise without start edits, the reference solution of one whose solution undoes its start."""
        if self.category == "baseline":
            return True
        if self.exercise is None or self.edits:
            return False
        exercise = exercises.find(self.exercise)
        return (self.exercise_edits == ("start",) and not exercise.has_edits("start")
                or self.exercise_edits == ("start", "solution") and not exercise.has_edits("solution"))

    def edits_for(self, debian: int) -> list[Edit]:
        """The entry's own edits that apply to the generation of Debian ``debian`` (13 or 12)."""
        return [e for e in self.edits
                if (m := _GENERATION_FOLDER.match(e.file)) is None or int(m[1]) == debian]


def load(path: Path) -> Entry:
    """The entry in ``path``; KeyError for a missing field, ValueError for a category or exercise
    that does not exist."""
    data = tomllib.loads(path.read_text())
    category = data["category"]
    exercise = data.get("exercise")
    if exercise is not None:
        exercises.find(exercise)  # raises for an unknown name
        if category != f"exercise-{exercise}":
            raise ValueError(f"{path.name}: an entry of exercise {exercise} is of category "
                             f"exercise-{exercise}")
        default = ["checker", *EXERCISE_PROBES[exercise]]
    elif category in CATEGORY_PROBES:
        default = CATEGORY_PROBES[category]
    else:
        raise ValueError(f"{path.name}: unknown category {category!r}")
    return Entry(id=path.stem, category=category, description=data["description"],
                 generations=tuple(data["generations"]),
                 edits=tuple(read_edits(path) if "edit" in data else ()),
                 probes=tuple(data.get("probes", default)), exercise=exercise,
                 exercise_edits=tuple(data.get("exercise_edits", ())))


def entries() -> list[Entry]:
    """Every entry of the corpus, by category then id."""
    found = [load(path) for path in CORPUS.glob("*.toml")]
    return sorted(found, key=lambda e: (e.category, e.id))


def apply(entry: Entry, labs: Path, debian: int) -> list[str]:
    """Make ``entry``'s variant of the files in ``labs`` (a copy of labs/) for Debian ``debian``.

    The exercise's edits first (:func:`mailtls.exercises.apply`), then the entry's own, all or
    nothing. Returns the files changed (relative to ``labs``): none for the starting state of an
    exercise that starts from the lab as it comes. Raises ValueError when the entry
    does not apply to that generation or an edit's ``old`` text is not in its file exactly once.
    """
    if debian not in entry.generations:
        raise ValueError(f"{entry.id} does not apply to Debian {debian}")
    changed: list[str] = []
    if entry.exercise is not None:
        exercise = exercises.find(entry.exercise)
        for which in entry.exercise_edits:
            changed += exercises.apply(exercise, which, labs)
    texts: dict[str, str] = {}
    for edit in entry.edits_for(debian):
        text = texts.get(edit.file, (labs / edit.file).read_text())
        if text.count(edit.old) != 1:
            raise ValueError(f"{entry.id}: {edit.file} has {text.count(edit.old)} times {edit.old!r}")
        texts[edit.file] = text.replace(edit.old, edit.new)
    for name, text in texts.items():
        (labs / name).write_text(text)
    return sorted(set(changed) | set(texts))


def snapshot(labs: Path) -> dict[str, str]:
    """Every file under ``labs/hosts``, by its path relative to ``labs``: to put them back."""
    return {p.relative_to(labs).as_posix(): p.read_text() for p in (labs / "hosts").rglob("*") if p.is_file()}


def restore(labs: Path, files: dict[str, str]) -> None:
    """Write back what :func:`snapshot` took (files added since are left: the corpus adds none)."""
    for name, text in files.items():
        path = labs / name
        if path.read_text() != text:
            path.write_text(text)
