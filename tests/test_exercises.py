"""The classroom exercises and their checker.

Each checker is proved both ways on the real lab: it fails once the exercise is set up
(``exercise start``), and passes once the reference solution is applied to the lab's files
and the lab reloaded. Without a lab, the edits themselves are tested: all or nothing, and the
solution of a start-only exercise gives back the original files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course import ROOT
from mailtls import checker, exercises
from mailtls.errors import LabError
from mailtls.exercises import registry
from mailtls.hosts import SHIPPED_LABS

NAMES = [e.name for e in exercises.EXERCISES]


@pytest.fixture
def labs(tmp_path: Path) -> Path:
    copy = tmp_path / "labs"
    shutil.copytree(ROOT / "labs", copy, ignore=shutil.ignore_patterns("wheels"))
    return copy


def snapshot(labs: Path) -> dict[str, str]:
    return {p.relative_to(labs).as_posix(): p.read_text() for p in (labs / "hosts").rglob("*") if p.is_file()}


def test_every_exercise_has_criteria_and_a_folder() -> None:
    assert [e.number for e in exercises.EXERCISES] == list(range(1, len(exercises.EXERCISES) + 1))
    for exercise in exercises.EXERCISES:
        assert exercise.criteria, exercise.name
        assert exercise.has_edits("start") or exercise.has_edits("solution"), exercise.package


@pytest.mark.parametrize("name", NAMES)
def test_an_exercise_is_complete(labs: Path, name: str) -> None:
    """Everything an exercise is made of: a half-added one fails here, piece by piece."""
    exercise = exercises.find(name)
    assert exercise.title.strip() and exercise.title_es.strip(), "a title in each language"
    assert exercise.criteria, "at least one criterion for the checker"
    assert all(title.strip() and callable(criterion) for title, criterion in exercise.criteria)
    assert exercise.has_edits("start") or exercise.has_edits("solution"), "a start or a solution"
    for which in exercises.WHICH:  # on the lab as it ships: start, then the reference solution
        exercises.apply(exercise, which, labs)
    # Its two pages, which show its edits from the same files.
    for language, heading in (("en", "Exercise"), ("es", "Ejercicio")):
        page = ROOT / "docs" / language / "exercises" / f"{name}.md"
        assert page.is_file(), page
        text = page.read_text()
        assert f"\n# {heading} {exercise.number}: " in text, f"{page} names exercise {exercise.number}"
        assert f"{{exercise-edits}} {name} solution" in text, page
        assert (f"{{exercise-edits}} {name} start" in text) == exercise.has_edits("start"), page


def test_what_is_checked_is_not_in_the_students_labs() -> None:
    """A student's copy of labs/ holds the lab's files only: the edits and criteria ship with the package."""
    for exercise in exercises.EXERCISES:
        for which in exercises.WHICH:
            assert not Path(str(exercise.edits_file(which))).resolve().is_relative_to(SHIPPED_LABS.resolve())
        for _, criterion in exercise.criteria:
            assert criterion.__module__ == exercise.package, f"{exercise.name}: its criteria live next to it"


def test_a_subpackage_without_an_exercise_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "half_added"
    (package / "seventh").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "seventh" / "__init__.py").write_text("NUMBER = 7  # but no EXERCISE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match=r"half_added.seventh is no exercise"):
        registry.discover([str(package)], "half_added.")


@pytest.mark.parametrize("name", NAMES)
def test_start_then_solution_leaves_a_working_configuration(labs: Path, name: str) -> None:
    """Start changes something or nothing; the solution changes something; start-only exercises come
    back whole."""
    original = snapshot(labs)
    exercise = exercises.find(name)
    started = exercises.apply(exercise, "start", labs)
    solved = exercises.apply(exercise, "solution", labs)
    assert solved, "the reference solution must change a file"
    if not exercise.has_edits("solution"):
        assert started and snapshot(labs) == original, "undoing the start gives the lab as it comes"


def test_an_edit_that_does_not_apply_changes_nothing(labs: Path) -> None:
    exercise = exercises.find("imap")
    dovecot_conf = "hosts/mail/debian13/dovecot.conf"  # the first file the exercise's start edits
    conf = labs / dovecot_conf
    conf.write_text(conf.read_text().replace("port = 993", "port = 1993"))  # a student's own change
    before = snapshot(labs)
    with pytest.raises(LabError, match=f"{dovecot_conf} does not look as expected") as refused:
        exercises.apply(exercise, "start", labs)
    assert snapshot(labs) == before, "the first edit must not have been written"
    # A copy of labs/ (a student's on a classroom host) is no Git checkout: compare with the original.
    original, copy = SHIPPED_LABS / dovecot_conf, labs / dovecot_conf
    assert f"`diff -u {original} {copy}`" in str(refused.value)
    shown = subprocess.run(["diff", "-u", str(original), str(copy)], capture_output=True, text=True)
    assert any(line.startswith("+") and "port = 1993" in line for line in shown.stdout.splitlines())


def test_the_command_line_lists_and_refuses_unknown_exercises() -> None:
    listed = subprocess.run([sys.executable, "-m", "mailtls", "check", "--list"], capture_output=True,
                            text=True)
    assert listed.returncode == 0
    assert [line.split()[1] for line in listed.stdout.splitlines()] == NAMES
    unknown = subprocess.run([sys.executable, "-m", "mailtls", "check", "tls13"], capture_output=True,
                             text=True)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no exercise 'tls13': the exercises are certificate, submission")


@pytest.mark.lab
@pytest.mark.parametrize("name", NAMES)
def test_the_checker_fails_before_and_passes_after_the_solution(lab, name: str) -> None:
    exercise = exercises.find(name)
    original = snapshot(lab.labs)
    try:
        exercises.apply(exercise, "start", lab.labs)
        lab.backend.reload()
        before = checker.check(exercise, lab.lab)
        assert not all(r.passed for r in before), f"{name}: the fresh lab already passes"
        for result in before:
            assert result.detail, "every result says why"
        exercises.apply(exercise, "solution", lab.labs)
        lab.backend.reload()
        after = checker.check(exercise, lab.lab)
        failed = [f"{r.criterion}: {r.detail}" for r in after if not r.passed]
        assert not failed, f"{name}: the reference solution fails: {failed}"
    finally:
        for name_, text in original.items():
            (lab.labs / name_).write_text(text)
        lab.backend.reload()


@pytest.mark.lab
def test_check_command_exit_code_and_report(lab, tmp_path: Path) -> None:
    """The student's view: what is printed, the exit code, and the report to hand in."""
    report = tmp_path / "alice-ex4"
    env_labs = {"MAILTLS_LABS": str(lab.labs)}
    done = subprocess.run([sys.executable, "-m", "mailtls", "check", "relay-policy", "--report", str(report)],
                          capture_output=True, text=True, env={**os.environ, **env_labs})
    # the lab as it comes has no policy for mail.lab.test
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[FAILED] the relay verifies mail.lab.test" in done.stdout
    assert "over TLS it did not verify (Trusted, not Verified)" in done.stdout
    record = json.loads(report.with_name("alice-ex4.json").read_text())
    assert record["name"] == "relay-policy" and record["passed"] is False
    assert record["lab"]["fingerprint"] == checker.fingerprint(lab.lab)
    assert [c["passed"] for c in record["criteria"]] == [False, True]
    assert "**1 of 2 criteria passed.**" in report.with_name("alice-ex4.md").read_text()
