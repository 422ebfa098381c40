"""A whole class on one machine: one lab per student (``lab up --students N``, ``--student K``).

Every path, address and name of a lab follows from one number, ``MAILTLS_STUDENT`` (see
``mailtls.hosts``), fixed when a process starts. So the classroom commands run the ordinary lab
commands once per student, each in a process of its own with that student's number and that
student's copy of ``labs/``. Nothing here starts a server itself: a student's lab is exactly the
single lab, on its own network (198.18.K.0/24), with its own CA, users and mailboxes.

Each student edits a copy of ``labs/`` (``classroom/student-K/`` by default). ``lab up`` makes
the copies that do not exist yet and never overwrites one, so a student's work survives a
``lab down`` and the next ``lab up``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mailtls.backends import LabError
from mailtls.backends.common import status
from mailtls.hosts import CLASSROOM_FILES, LABS, MAX_STUDENTS, STUDENT, student_files

DEFAULT_COPIES = Path("classroom")  # under the folder the teacher runs the command from


def students_up() -> list[int]:
    """The students whose lab is up on this machine, in order."""
    numbers = []
    for state_file in CLASSROOM_FILES.glob("student-*/lab.json"):
        number = state_file.parent.name.removeprefix("student-")
        if number.isdigit():
            numbers.append(int(number))
    return sorted(numbers)


def student_state(number: int) -> dict:
    try:
        return json.loads((student_files(number) / "lab.json").read_text())
    except FileNotFoundError:
        return {}


def check_number(number: int) -> None:
    if not 1 <= number <= MAX_STUDENTS:
        raise LabError(f"students are numbered 1 to {MAX_STUDENTS}, not {number}")


def run_as_student(number: int, argv: list[str], labs: Path | None = None,
                   capture: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m mailtls ARGV`` on student ``number``'s lab (and, by default, their labs/ copy).

    ``labs`` defaults to the copy the student's running lab was started from.
    """
    check_number(number)
    env = {**os.environ, "MAILTLS_STUDENT": str(number)}
    labs = labs or (Path(student_state(number)["labs"]) if student_state(number) else None)
    if labs is not None:
        env["MAILTLS_LABS"] = str(labs)
    else:
        env.pop("MAILTLS_LABS", None)  # never another lab's files
    return subprocess.run([sys.executable, "-m", "mailtls", *argv], env=env, text=True,
                          capture_output=capture, stdin=subprocess.DEVNULL)


def make_copy(copy: Path) -> bool:
    """Give a student their own copy of labs/; an existing copy is theirs and is kept. True if made."""
    if copy.exists():
        if not (copy / "hosts").is_dir() or not (copy / "compose.yaml").is_file():
            raise LabError(f"{copy} exists but is not a copy of labs/ (no hosts/ or compose.yaml): "
                           "move it away or choose another folder with --classroom")
        return False
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(LABS, copy, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
    return True


def up(count: int, backend: str, copies: Path = DEFAULT_COPIES, workers: int = 4,
       on_progress: Callable[[str], None] = print) -> list[int]:
    """Bring up the labs of students 1 to ``count``; if one fails, take down those this call started.

    The first lab comes up alone (it may build the container image); the others then start
    ``workers`` at a time. Labs already up are left as they are.
    """
    if STUDENT is not None:
        raise LabError("`lab up --students` runs on the classroom host itself, without MAILTLS_STUDENT")
    if not 1 <= count <= MAX_STUDENTS:
        raise LabError(f"--students must be from 1 to {MAX_STUDENTS}, not {count}")
    copies = copies.resolve()
    numbers = list(range(1, count + 1))
    already = set(students_up())
    for number in numbers:
        copy = copies / f"student-{number}"
        if number not in already and not make_copy(copy):
            on_progress(f"student {number}: keeping their files in {copy}")

    started: list[int] = []
    failures: dict[int, str] = {}

    def bring_up(number: int) -> None:
        if number in already:
            on_progress(f"student {number}: already up ({student_state(number).get('backend')})")
            return
        began = time.monotonic()
        done = run_as_student(number, ["lab", "up", "--backend", backend], copies / f"student-{number}", capture=True)
        if done.returncode == 0:
            started.append(number)
            for line in done.stdout.splitlines():
                if "not listening" in line:  # the student's files close a port: say so, it is on purpose
                    on_progress(f"student {number}: {line.strip()}")
            mail = next(s for s in status(student_files(number))["services"] if s["host"].startswith("mail."))
            on_progress(f"student {number}: up in {time.monotonic() - began:.1f} s, mail.lab.test at "
                        f"{mail['address']}, files in {copies / f'student-{number}'}")
        else:
            failures[number] = (done.stderr or done.stdout).strip().removeprefix("error: ")

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
        done = run_as_student(number, ["lab", "down"], capture=True)
        if done.returncode != 0:
            problems.append(f"student {number}: {(done.stderr or done.stdout).strip()}")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(take_down, numbers))
    if problems:
        raise LabError("some labs did not go down cleanly:\n" + "\n".join(problems))


def statuses() -> list[dict]:
    """What ``lab status --json`` says of each student's lab: its description, number and labs/ copy."""
    described = []
    for number in students_up():
        status_of_lab = status(student_files(number))
        if status_of_lab.get("up"):  # else still coming up, or failed and going down
            described.append({"student": number, "labs": student_state(number).get("labs"), **status_of_lab})
    return described
