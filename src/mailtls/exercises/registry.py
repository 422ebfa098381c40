"""Finding the exercises: each subpackage of :mod:`mailtls.exercises` is one, ordered by number."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from mailtls.errors import LabError
from mailtls.exercises.exercise import Exercise


def discover(path: Iterable[str], prefix: str) -> list[Exercise]:
    """The ``EXERCISE`` of each subpackage found on ``path`` (a package's ``__path__``), by number.

    ``prefix`` is that package's name and a dot. Plain modules there are the exercises' own
    machinery, not exercises. Raises TypeError for a subpackage that defines no ``EXERCISE``.
    """
    found = []
    for info in pkgutil.iter_modules(list(path), prefix):
        if not info.ispkg:
            continue
        exercise = getattr(importlib.import_module(info.name), "EXERCISE", None)
        if not isinstance(exercise, Exercise):
            raise TypeError(f"{info.name} is no exercise: it defines no EXERCISE = Exercise(...)")
        found.append(exercise)
    return sorted(found, key=lambda exercise: exercise.number)


def find(exercises: list[Exercise], name: str) -> Exercise:
    """An exercise by name, number or ``NN-NAME``; an unknown one is a LabError that lists the others."""
    for exercise in exercises:
        if name in (exercise.name, str(exercise.number), exercise.folder_name):
            return exercise
    known = ", ".join(e.name for e in exercises)
    raise LabError(f"no exercise {name!r}: the exercises are {known} (`python -m mailtls check --list`)")
