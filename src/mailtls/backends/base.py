"""What every backend is: the up, down, reload and logs contract, and one ``up`` that rolls back.

A backend brings the lab's hosts (``mailtls.hosts``) up from the files of one configuration
(``LabConfig.labs``), at that configuration's addresses, keeping its generated files in the
configuration's runtime folder (``mailtls.runtime``). The sequence of ``up`` is the same for
every backend and lives here; each subclass says only how it makes images or networks, starts
the servers, stops them and reloads them.
"""

from __future__ import annotations

import contextlib
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from mailtls import runtime
from mailtls.backends.readiness import wait_until_listening
from mailtls.config import LabConfig
from mailtls.errors import LabError
from mailtls.generations import Generation, get
from mailtls.hosts import Host
from mailtls.status import LabStatus

Progress = Callable[[str], None]

RELOAD_SETTLE = 1.0  # seconds for Postfix's processes from before a reload to exit


class Backend(ABC):
    """A way to run the lab described by ``config``. Subclasses set ``name`` and ``ready_timeout``."""

    name: ClassVar[str]
    ready_timeout: ClassVar[float]  # seconds the servers have to open their ports after they start

    def __init__(self, config: LabConfig) -> None:
        self.config = config

    # -- The contract ----------------------------------------------------------------------------

    def is_up(self) -> bool:
        """Whether this machine runs this configuration's lab with this backend."""
        state = runtime.state(self.config)
        return state is not None and state.backend == self.name

    def up(self, on_progress: Progress = print) -> LabStatus:
        """Bring every host up; if anything fails, undo it all (``down``) and raise why.

        Does nothing when this backend's lab is up and answering; a lab of the other backend, or
        of another generation than the one asked for, is a LabError, since both use the same
        network and files. Returns the lab's description.
        """
        if self.already_up():
            status = LabStatus.read(self.config.runtime)
            if status is None:  # its servers answer, but it has not described itself yet
                raise LabError("a lab is coming up on this machine: wait for it, or "
                               "`python -m mailtls lab down` first")
            asked = self.config.generation
            if asked is not None and asked.debian != status.debian:
                raise LabError(f"a Debian {status.debian} lab is up: `python -m mailtls lab down` first, "
                               f"then `lab up --debian {asked.debian}`")
            return status
        self.preflight()
        try:
            self.prepare(on_progress)
            on_progress("lab files: CA, certificates, users")
            runtime.prepare(self.config, self.name, self.generation(), self.engine_name())
            self.start(on_progress)
            try:
                closed = wait_until_listening(self.config, self.ready_timeout)
            except LabError as error:
                raise LabError(f"{error}{self.why_not_ready()}") from None
            for port in closed:
                on_progress(f"not listening, as its files say: {port}")
            status = runtime.describe(self.config, self.name, self.generation(), self.server_versions())
            status.write(self.config.runtime)
        except BaseException:
            self.down()
            raise
        return status

    @abstractmethod
    def down(self) -> None:
        """Remove every process, network and file that ``up`` made; quiet when nothing is up."""

    @abstractmethod
    def reload(self) -> None:
        """Apply edited files under labs/: checked first, so a broken file leaves the lab as it was.

        Raises ConfigurationRefused with the servers' own words when they refuse a file, and
        NoLabUp when this backend's lab is not up.
        """

    @abstractmethod
    def postfix_command(self, lab_host: Host, *command: str) -> subprocess.CompletedProcess:
        """Run a Postfix command (postsuper, postqueue, ...) on a host, with its configuration."""

    def generation(self) -> Generation:
        """The Debian generation of this backend's lab: the one the running lab recorded, else the
        one it would start (``wanted_generation``)."""
        state = runtime.state(self.config)
        if state is not None and state.backend == self.name:
            return get(state.debian)
        return self.wanted_generation()

    @abstractmethod
    def wanted_generation(self) -> Generation:
        """The generation ``up`` starts: the configuration's, or this backend's default.

        Raises UnknownGeneration (a LabError) when this backend cannot run the one asked for.
        """

    # -- The steps of up, for the subclasses -----------------------------------------------------

    def preflight(self) -> None:
        """Refuse early, with a reason, rather than half-start (before anything is made)."""
        return None  # by default, nothing to refuse

    def prepare(self, on_progress: Progress) -> None:
        """What must exist before the lab's files are made (images, for containers)."""
        return None  # by default, nothing

    def engine_name(self) -> str | None:
        """The container engine, recorded in the lab's state (None for backends without one)."""
        return None

    @abstractmethod
    def start(self, on_progress: Progress) -> None:
        """Make the network and start every host's servers and the wiretap."""

    @abstractmethod
    def run_on_mail(self, *command: str) -> str:
        """Run a command where mail.lab.test runs; return what it printed."""

    def why_not_ready(self) -> str:
        """More to say when the servers did not open their ports in time (a newline first), or ``""``."""
        return ""

    def server_versions(self) -> dict[str, str]:
        """The Postfix and Dovecot versions of mail.lab.test, so that outputs can say what made them."""
        return {
            "postfix": self.run_on_mail("postconf", "-d", "-h", "mail_version").strip(),
            "dovecot": self.run_on_mail("dovecot", "--version").split()[0],
        }

    # -- Helpers ---------------------------------------------------------------------------------

    def already_up(self) -> bool:
        """Whether ``up`` has nothing to do: this backend's lab is up and answering.

        A lab of this backend that no longer answers is taken down so that ``up`` starts afresh;
        a lab of the other backend is an error.
        """
        state = runtime.state(self.config)
        if state is None:
            return False
        if state.backend != self.name:
            raise LabError(f"a {state.backend} lab is up: `python -m mailtls lab down` first")
        with contextlib.suppress(LabError):
            wait_until_listening(self.config, timeout=5)
            return True
        self.down()
        return False

    def require_up(self) -> None:
        """Raise NoLabUp unless this backend runs the lab."""
        if not self.is_up():
            raise runtime.no_lab_up(self.config)

    def remove_files_if_ours(self) -> None:
        """Remove the lab's generated files, unless they belong to a lab of the other backend."""
        state = runtime.state(self.config)
        if state is None or state.backend == self.name:
            runtime.remove(self.config)
