"""The classroom exercises: where each starts, its reference solution, and what the checker probes.

Each exercise is one subpackage of this package, and the only place it is defined (besides its
two pages, ``docs/en/exercises/NAME.md`` and ``docs/es/exercises/NAME.md``). Its
``__init__.py`` declares ``EXERCISE = Exercise(number, name, title, title_es, __name__)`` and
registers the checker's criteria with ``@EXERCISE.criterion("...")``; next to it lie up to two
files of edits to the lab's configuration (``labs/hosts/...``):

- ``start.toml``: what ``python -m mailtls exercise start NAME`` changes to set the exercise up
  (an exercise without it starts from the lab as it comes);
- ``solution.toml``: the reference solution, applied by ``exercise solve NAME`` (teachers, and
  the tests that prove each checker both ways).

They live in the package, not in ``labs/``, so a student's copy of ``labs/`` cannot change what
is checked. :mod:`mailtls.checker` runs the criteria and writes the reports.
"""

from __future__ import annotations

from mailtls.exercises import registry
from mailtls.exercises.edits import Edit, apply, compare_command, edits_for, read_edits
from mailtls.exercises.exercise import WHICH, Criterion, Exercise

__all__ = ["EXERCISES", "WHICH", "Criterion", "Edit", "Exercise", "apply", "compare_command", "edits_for",
           "find", "read_edits"]

EXERCISES: list[Exercise] = registry.discover(__path__, __name__ + ".")


def find(name: str) -> Exercise:
    """An exercise by name, number or ``NN-NAME``; an unknown one is a LabError that lists the others."""
    return registry.find(EXERCISES, name)
