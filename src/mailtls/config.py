"""One lab's configuration: which student's lab, where its files are, its network and its names.

A ``LabConfig`` is built once, by the command line (``--student K``) or from the environment
of a process that works on one student's lab, such as that student's notebooks
(``LabConfig.from_environment``), and then passed down to whatever needs it. Nothing in the
package reads the environment at import.

This module is pure data and runs everywhere the package runs, the browser included: the
simulated lab takes its addresses from here too, so they are the real lab's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailtls.errors import LabError
from mailtls.generations import Generation
from mailtls.hosts import SHIPPED_LABS, Host

MAX_STUDENTS = 50
# Where the configuration files under labs/ expect the files a lab makes at start-up: the CA,
# the hosts' keys and certificates, the users' passwords, the mailboxes and the wiretap's
# transcripts. Inside a container they are there; the single lab on this machine keeps them
# there too.
SINGLE_LAB_RUNTIME = Path("/run/mailtls")
# A classroom host keeps student K's generated files in CLASSROOM_RUNTIME/student-K.
CLASSROOM_RUNTIME = Path("/run/mailtls-classroom")

# The environment variables that name a lab for a process the command line did not start: a
# student's notebooks (MAILTLS_STUDENT), a run on a copy of labs/ (MAILTLS_LABS, as the tests
# do). Read only by ``from_environment``.
STUDENT_VARIABLE = "MAILTLS_STUDENT"
LABS_VARIABLE = "MAILTLS_LABS"


def check_student(number: int) -> int:
    """``number`` if it is a student's number (1 to MAX_STUDENTS); else raises LabError."""
    if not 1 <= number <= MAX_STUDENTS:
        raise LabError(f"students are numbered 1 to {MAX_STUDENTS}, not {number}")
    return number


@dataclass(frozen=True)
class LabConfig:
    """One lab: the single lab of a machine (``student=None``) or student K's on a classroom host.

    ``labs`` is the folder of configuration files (``labs/`` of the repository, a student's copy,
    or a test's scratch copy). Everything else follows from the student's number:

    - ``runtime``: where the lab keeps its generated files on this machine
      (``/run/mailtls`` or ``/run/mailtls-classroom/student-K``);
    - ``network``: 198.18.0.0/24, or 198.18.K.0/24 for student K (RFC 2544's benchmarking
      range, never routed); each host keeps its last address byte;
    - the names the backends give what they make (bridge, namespaces, compose project).

    ``generation`` is the Debian generation asked for (``lab up --debian 13|12``); None leaves it
    to the backend: the containers run today's (Debian 13), the native backend this machine's.
    """

    student: int | None = None
    labs: Path = field(default=SHIPPED_LABS)
    generation: Generation | None = None

    def __post_init__(self) -> None:
        if self.student is not None:
            check_student(self.student)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> LabConfig:
        """The lab named by ``MAILTLS_STUDENT`` and ``MAILTLS_LABS`` in ``environ`` (both optional).

        Raises LabError when ``MAILTLS_STUDENT`` is not a student's number.
        """
        value = environ.get(STUDENT_VARIABLE) or ""
        if value and not value.isdigit():
            raise LabError(f"{STUDENT_VARIABLE} must be a number from 1 to {MAX_STUDENTS}, not {value!r}")
        labs = environ.get(LABS_VARIABLE)
        return cls(student=int(value) if value else None, labs=Path(labs) if labs else SHIPPED_LABS)

    def environment(self) -> dict[str, str]:
        """The variables that make ``from_environment`` in a child process give this same lab."""
        variables = {LABS_VARIABLE: str(self.labs)}
        if self.student is not None:
            variables[STUDENT_VARIABLE] = str(self.student)
        return variables

    # -- Where its files are ---------------------------------------------------------------------

    @property
    def runtime(self) -> Path:
        """The folder of the lab's generated files on this machine."""
        return SINGLE_LAB_RUNTIME if self.student is None else student_runtime(self.student)

    def host_runtime(self, host: Host) -> Path:
        """The host's folder on this machine: its logs (and, natively, its queue and state)."""
        return self.runtime / "hosts" / host.name

    def host_files(self, host: Host) -> Path:
        """The host's folder of configuration files: ``labs/hosts/<short name>``."""
        return self.labs / "hosts" / host.short

    def for_this_lab(self, text: str) -> str:
        """A configuration file's text with the lab's generated files where this lab keeps them.

        The files under labs/ name ``/run/mailtls/``; a student's lab keeps its files elsewhere,
        and the native backend, whose servers see this machine's folders, runs a copy that names
        them. Nothing changes for the single lab.
        """
        return text.replace(f"{SINGLE_LAB_RUNTIME}/", f"{self.runtime}/")

    # -- Its network -----------------------------------------------------------------------------

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"198.18.{self.student or 0}.0/24")

    @property
    def gateway(self) -> str:
        """This machine's address on the lab network: where tests and notebooks connect from."""
        return str(self.network.network_address + 1)

    def address(self, host: Host) -> str:
        return str(self.network.network_address + host.octet)

    # -- The names of what the backends make -----------------------------------------------------

    @property
    def bridge(self) -> str:
        """The native backend's bridge (at most Linux's 15 characters)."""
        return "mtls0" if self.student is None else f"mtls{self.student}-br"

    @property
    def namespace_prefix(self) -> str:
        """The start of the native backend's namespaces' names: ``mtls-`` or ``mtlsK-``."""
        return "mtls-" if self.student is None else f"mtls{self.student}-"

    def namespace(self, host: Host) -> str:
        """The native backend's network namespace for ``host``."""
        return self.namespace_prefix + host.short

    @property
    def compose_project(self) -> str:
        """The containers backend's compose project."""
        return "mailtls" if self.student is None else f"mailtls-student-{self.student}"

    def describe(self) -> str:
        """``the lab`` or ``student K's lab``, for messages."""
        return "the lab" if self.student is None else f"student {self.student}'s lab"


def student_runtime(number: int) -> Path:
    """Where student ``number``'s lab keeps its generated files on a classroom host."""
    return CLASSROOM_RUNTIME / f"student-{number}"
