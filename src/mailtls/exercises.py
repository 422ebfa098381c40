"""The classroom exercises: where each starts, its reference solution, and what the checker probes.

Each exercise has a folder ``labs/exercises/NN-NAME/`` with up to two files of edits to the
lab's configuration (``labs/hosts/...``):

- ``start.toml``: what ``python -m mailtls exercise start NAME`` changes to set the exercise up
  (an exercise without it starts from the lab as it comes);
- ``solution.toml``: the reference solution, applied by ``exercise solve NAME`` (teachers, and
  the tests that prove each checker both ways).

An edit replaces one exact piece of text in one file. If that text is not there exactly once,
nothing is changed and the error says which file to look at, so a file that a student already
edited is never half-rewritten. What the checker probes for each exercise is in :mod:`mailtls.checker`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mailtls.errors import LabError
from mailtls.hosts import SHIPPED_LABS


@dataclass(frozen=True)
class Exercise:
    number: int
    name: str  # as typed on the command line: `python -m mailtls check submission`
    title: str
    title_es: str

    @property
    def folder_name(self) -> str:
        return f"{self.number:02d}-{self.name}"

    def folder(self, labs: Path = SHIPPED_LABS) -> Path:
        return labs / "exercises" / self.folder_name


EXERCISES = [
    Exercise(1, "certificate", "A certificate from the lab CA instead of a self-signed one",
             "Un certificado de la CA del laboratorio en lugar de uno autofirmado"),
    Exercise(2, "submission", "Submission: TLS required on 587, implicit TLS on 465, AUTH only after TLS",
             "Envío: TLS obligatorio en el 587, TLS implícito en el 465, AUTH solo tras TLS"),
    Exercise(3, "imap", "IMAP: no plaintext login, IMAPS on 993",
             "IMAP: ningún inicio de sesión en claro, IMAPS en el 993"),
    Exercise(4, "relay-policy", "A per-destination TLS policy on the relay",
             "Una política TLS por destino en el relay"),
    Exercise(5, "striptls", "A STRIPTLS downgrade, and the client's defence",
             "Un ataque STRIPTLS y la defensa del cliente"),
    Exercise(6, "protocols", "No TLS 1.0 or 1.1 where TLS is mandatory",
             "Ni TLS 1.0 ni 1.1 donde TLS es obligatorio"),
]


def find(name: str) -> Exercise:
    """An exercise by name or number; an unknown one is an error that lists the others."""
    for exercise in EXERCISES:
        if name in (exercise.name, str(exercise.number), exercise.folder_name):
            return exercise
    known = ", ".join(e.name for e in EXERCISES)
    raise LabError(f"no exercise {name!r}: the exercises are {known} (`python -m mailtls check --list`)")


@dataclass(frozen=True)
class Edit:
    file: str  # relative to labs/, e.g. hosts/mail/master.cf
    old: str
    new: str


def read_edits(path: Path) -> list[Edit]:
    if not path.exists():
        return []
    return [Edit(e["file"], e["old"], e["new"]) for e in tomllib.loads(path.read_text())["edit"]]


def edits_for(exercise: Exercise, which: str, labs: Path = SHIPPED_LABS) -> list[Edit]:
    """The edits of ``start`` or ``solution``. Without a solution file, the solution undoes the
    start: the lab as it comes is the reference configuration."""
    folder = exercise.folder(labs)
    if which == "solution" and not (folder / "solution.toml").exists():
        return [Edit(e.file, e.new, e.old) for e in reversed(read_edits(folder / "start.toml"))]
    return read_edits(folder / f"{which}.toml")


def compare_command(labs: Path, file: str) -> str:
    """The command that shows a student's changes to one of the lab's files.

    labs/ in the repository is a Git checkout; a student's copy on a classroom host is not, so
    it is compared with the files the course ships.
    """
    if labs.resolve() == SHIPPED_LABS.resolve():
        return f"git diff labs/{file}"
    return f"diff -u {SHIPPED_LABS / file} {labs / file}"


def apply(exercise: Exercise, which: str, labs: Path) -> list[str]:
    """Apply ``start`` or ``solution`` to the lab's files; returns the files changed.

    Every edit is checked before any file is written: all or nothing.
    """
    edits = edits_for(exercise, which, labs)
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
