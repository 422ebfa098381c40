"""What an exercise is: its number, name, titles, where its edits are, and its criteria."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailtls.lab import Lab

#: A criterion probes the running lab: it returns a short note when the lab meets it and raises
#: :class:`mailtls.checker.Failed`, whose message says why for the student, when it does not.
Criterion = Callable[["Lab"], str]

#: The two sets of edits an exercise may have.
WHICH = ("start", "solution")


@dataclass(frozen=True)
class Exercise:
    """One classroom exercise, declared as ``EXERCISE`` by its own subpackage of :mod:`mailtls.exercises`.

    ``package`` is that subpackage's name (``__name__``): its ``start.toml`` and ``solution.toml``
    lie next to it. Criteria are registered with :meth:`criterion`, in the order they are checked.
    """

    number: int
    name: str  # as typed on the command line: `python -m mailtls check submission`
    title: str
    title_es: str
    package: str
    criteria: list[tuple[str, Criterion]] = field(default_factory=list, compare=False, repr=False)

    @property
    def folder_name(self) -> str:
        """``NN-NAME``, e.g. ``02-submission``: a name the command line also accepts."""
        return f"{self.number:02d}-{self.name}"

    def criterion(self, title: str) -> Callable[[Criterion], Criterion]:
        """A decorator that adds a criterion, titled as the checker prints it, after those already added.

        It returns the function unchanged, so a criterion made by a factory is added with
        ``EXERCISE.criterion("title")(factory(...))``.
        """
        def register(function: Criterion) -> Criterion:
            self.criteria.append((title, function))
            return function
        return register

    def edits_file(self, which: str) -> Traversable:
        """The TOML file of the ``start`` or ``solution`` edits (it may not exist).

        Raises ValueError for a word other than those two.
        """
        if which not in WHICH:
            raise ValueError(f"{which!r} must be one of {', '.join(WHICH)}")
        return resources.files(self.package) / f"{which}.toml"

    def has_edits(self, which: str) -> bool:
        """Whether the exercise ships a ``start`` or ``solution`` file of its own."""
        return self.edits_file(which).is_file()
