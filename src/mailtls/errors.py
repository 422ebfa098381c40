"""The errors of what the person running the lab got wrong: one hierarchy, caught once by the CLI.

Each message says what is wrong and how to fix it; the command line prints it on one line
after ``error:`` and exits with status 1. Anything else that is raised is a bug.
"""

from __future__ import annotations


class LabError(RuntimeError):
    """Something the person running the lab must fix; the message says what and how."""


class NoLabUp(LabError):
    """No lab is up (on this machine, or for this student) when a command needs one."""

    @classmethod
    def of(cls, student: int | None) -> NoLabUp:
        """The error, in one wording everywhere, for the single lab (None) or student K's lab."""
        if student is None:
            return cls("no lab is up: start one with `python -m mailtls lab up`")
        return cls(f"student {student} has no lab up: start the class's labs with "
                   "`python -m mailtls lab up --students N`")


class UnknownHost(LabError):
    """A host name that is not one of the lab's hosts (or a service a host does not offer)."""


class ConfigurationRefused(LabError):
    """A configuration file that the real servers (or the simulated ones) refuse to run."""


class NeedsRoot(LabError):
    """An action that needs root (or a container engine) on a machine that lacks it."""
