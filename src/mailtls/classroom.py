"""A whole class on one machine: one lab per student (``lab up --students N``, ``--student K``).

Every path, address and name of a lab follows from the student's number (``LabConfig``): a
student's lab is exactly the single lab, on its own network (198.18.K.0/24), with its own CA,
users and mailboxes, run by the same backend code. Nothing here starts a server itself.

Each student edits a copy of ``labs/`` (``classroom/student-K/`` by default). ``lab up`` makes
the copies that do not exist yet and never overwrites one, so a student's work survives a
``lab down`` and the next ``lab up``.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mailtls import backends, runtime
from mailtls.config import CLASSROOM_RUNTIME, MAX_STUDENTS, LabConfig, check_student, student_runtime
from mailtls.errors import LabError
from mailtls.generations import Generation
from mailtls.hosts import MAIL, SHIPPED_LABS
from mailtls.status import LabState, LabStatus

DEFAULT_COPIES = Path("classroom")  # under the folder the teacher runs the command from


def students_up() -> list[int]:
    """The students whose lab is up on this machine, in order."""
    numbers = []
    for state_file in CLASSROOM_RUNTIME.glob("student-*/lab.json"):
        number = state_file.parent.name.removeprefix("student-")
        if number.isdigit():
            numbers.append(int(number))
    return sorted(numbers)


def student_state(number: int) -> LabState | None:
    """Student ``number``'s lab's note of itself; None when their lab is not up."""
    return LabState.read(student_runtime(number))


def student_config(number: int, labs: Path | None = None) -> LabConfig:
    """Student ``number``'s lab: with ``labs``, or the copy their running lab was started from.

    A student without a running lab and without ``labs`` gets the shipped files (never another
    student's). Raises LabError for a number out of range.
    """
    check_student(number)
    state = student_state(number)
    if labs is None:
        labs = Path(state.labs) if state else SHIPPED_LABS
    return LabConfig(student=number, labs=labs)


def make_copy(copy: Path, source: Path = SHIPPED_LABS) -> bool:
    """Give a student their own copy of labs/; an existing copy is theirs and is kept. True if made."""
    if copy.exists():
        if not (copy / "hosts").is_dir() or not (copy / "compose.yaml").is_file():
            raise LabError(f"{copy} exists but is not a copy of labs/ (no hosts/ or compose.yaml): "
                           "move it away or choose another folder with --classroom")
        return False
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
    return True


def up(count: int, backend: str, copies: Path = DEFAULT_COPIES, workers: int = 4,
       on_progress: Callable[[str], None] = print, source: Path = SHIPPED_LABS,
       generation: Generation | None = None) -> list[int]:
    """Bring up the labs of students 1 to ``count``; if one fails, take down those this call started.

    Every lab runs ``generation`` (None: the backend's default, see ``LabConfig.generation``).
    Each student's copy of ``source`` (labs/) is ``copies/student-K``. The first lab comes up
    alone (it may build the container image); the others then start ``workers`` at a time. Labs
    already up are left as they are. Raises LabError naming each student whose lab failed.
    """
    if not 1 <= count <= MAX_STUDENTS:
        raise LabError(f"--students must be from 1 to {MAX_STUDENTS}, not {count}")
    copies = copies.resolve()
    numbers = list(range(1, count + 1))
    already = set(students_up())
    for number in numbers:
        copy = copies / f"student-{number}"
        if number not in already and not make_copy(copy, source):
            on_progress(f"student {number}: keeping their files in {copy}")

    started: list[int] = []
    failures: dict[int, str] = {}

    def bring_up(number: int) -> None:
        if number in already:
            state = student_state(number)
            on_progress(f"student {number}: already up ({state.backend if state else None})")
            return
        began = time.monotonic()
        config = LabConfig(student=number, labs=copies / f"student-{number}", generation=generation)

        def progress(message: str) -> None:
            if "not listening" in message:  # the student's files close a port: say so, it is on purpose
                on_progress(f"student {number}: {message.strip()}")

        try:
            status = backends.get(backend, config).up(on_progress=progress)
        except LabError as error:
            failures[number] = str(error)
            return
        except Exception as error:  # noqa: BLE001 - a bug, but the class must still be rolled back
            failures[number] = f"{type(error).__name__}: {error}"
            return
        started.append(number)
        mail = next(e for e in status.services if e.host == MAIL.name)
        on_progress(f"student {number}: up in {time.monotonic() - began:.1f} s, mail.lab.test at "
                    f"{mail.address}, files in {config.labs}")

    bring_up(numbers[0])
    if not failures and len(numbers) > 1:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(bring_up, numbers[1:]))
    if failures:
        if started:
            on_progress("taking down the labs this command started: " + ", ".join(map(str, sorted(started))))
            down(sorted(started), workers)
        raise LabError("\n".join(f"student {number}'s lab did not come up: {said}"
                                 for number, said in sorted(failures.items())))
    return numbers


def down(numbers: list[int] | None = None, workers: int = 4) -> None:
    """Take down these students' labs (every student's by default); their copies of labs/ stay."""
    numbers = students_up() if numbers is None else numbers
    problems = []

    def take_down(number: int) -> None:
        config = student_config(number)
        backend = backends.running(config)
        try:
            if backend is not None:
                backend.down()
        except LabError as error:
            problems.append(f"student {number}: {error}")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(take_down, numbers))
    if problems:
        raise LabError("some labs did not go down cleanly:\n" + "\n".join(problems))


def statuses() -> list[tuple[int, str | None, LabStatus]]:
    """Each student's lab that is up: its number, its labs/ copy and its description."""
    described = []
    for number in students_up():
        status = LabStatus.read(student_runtime(number))
        if status is not None:  # else still coming up, or failed and going down
            state = student_state(number)
            described.append((number, state.labs if state else None, status))
    return described


def no_lab_up(number: int) -> LabError:
    """The error for a command on student ``number``'s lab when it is not up."""
    return runtime.no_lab_up(LabConfig(student=number))
