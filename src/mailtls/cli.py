"""``python -m mailtls lab up|down|reload|logs|status|wiretap``, ``notebooks``, ``check`` and ``exercise``.

On a classroom host, ``--student K`` runs a command on student K's lab: the command runs again
in a process of its own with ``MAILTLS_STUDENT=K`` (see ``mailtls.classroom``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mailtls import backends, classroom, hosts
from mailtls.backends import LabError, common


def choose_backend(requested: str | None) -> str:
    """The backend asked for; else containers when an engine answers; else native as root on Linux."""
    if requested:
        return requested
    from mailtls.backends.containers import engine

    if engine() is not None:
        return "containers"
    if sys.platform == "linux" and os.geteuid() == 0:
        return "native"
    raise LabError(
        "no way to run the lab here: install Podman or Docker (containers backend), or run as root "
        "on Linux with Debian's postfix and dovecot packages (native backend)"
    )


NOT_UP = ("no lab is up: start one with `python -m mailtls lab up`" if hosts.STUDENT is None else
          f"student {hosts.STUDENT} has no lab up: start the class's labs with `python -m mailtls lab up --students N`")


def running_backend():
    backend = backends.running()
    if backend is None:
        raise LabError(NOT_UP)
    return backend


def print_status(described: dict) -> None:
    print(f"backend: {described['backend']}   CA: {described['ca_file']}")
    for s in described["services"]:
        print(f"  {s['host']:<22} {s['service']:<12} {s['address']}:{s['port']:<5} TLS: {s['tls']}")
    print("users: " + ", ".join(f"{u['login']} / {u['password']}" for u in described["users"]))
    print(f"wiretap: {described['wiretap']['mode']} (transcript: {described['wiretap']['transcript']})")


def print_classroom(students: list[dict]) -> None:
    print(f"classroom: {len(students)} student labs")
    for student in students:
        mail = next(s for s in student["services"] if s["host"].startswith("mail."))
        print(f"  student {student['student']:<3} {student['backend']:<11} mail.lab.test {mail['address']:<13} "
              f"wiretap: {student['wiretap']['mode']:<7} files: {student['labs']}")
    print("`python -m mailtls lab status --student K` describes one of them.")


def lab_command(args: argparse.Namespace) -> int:
    if args.action == "up" and args.students is not None:
        chosen = choose_backend(args.backend)
        numbers = classroom.up(args.students, chosen, args.classroom,
                               on_progress=lambda message: print(f"  {message}", flush=True))
        print(f"Students 1 to {numbers[-1]} have a lab up; `python -m mailtls lab status` lists them.")
    elif args.action == "up":
        backend = backends.get(choose_backend(args.backend))
        backend.up(on_progress=lambda message: print(f"  {message}", flush=True))
        print(f"The lab is up ({common.state()['backend']}); `python -m mailtls lab status` lists its services.")
    elif args.action == "down":
        backend = backends.running()
        for candidate in [backend] if backend else [backends.get(name) for name in backends.NAMES]:
            candidate.down()  # with nothing recorded, clear what either backend may have left
        if hosts.STUDENT is None:  # the teacher's `lab down` ends the class too
            classroom.down()
    elif args.action == "reload":
        running_backend().reload()
        print("Reloaded: every host runs its files under labs/ again.")
    elif args.action == "logs":
        running_backend()
        print(common.logs(args.host), end="")
    elif args.action == "status":
        described = common.status()
        students = classroom.statuses() if hosts.STUDENT is None else []
        if args.json:
            print(json.dumps({**described, "students": students} if students else described, indent=2))
            return 0
        if described.get("up"):
            print_status(described)
        elif not students:
            print("No lab is up." if hosts.STUDENT is None else f"Student {hosts.STUDENT} has no lab up.")
        if students:
            print_classroom(students)
    elif args.action == "wiretap":
        common.set_wiretap_mode(args.mode)
        print(f"The wiretap on mitm.lab.test is now in {args.mode} mode.")
    return 0


def check_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mailtls import checker, exercises
    from mailtls.lab import LabNotRunning, connect

    if args.list:
        for item in exercises.EXERCISES:
            print(f"{item.number}  {item.name:<14} {item.title}")
        return 0
    if not args.exercise:
        parser.error("check: name an exercise, or --list")
    chosen = exercises.find(args.exercise)
    try:
        lab = connect()
    except LabNotRunning:
        raise LabError(NOT_UP) from None
    results = checker.check(chosen, lab)
    checker.print_results(chosen, results)
    if args.report:
        written = checker.write_report(args.report, chosen, lab, results)
        print("Report: " + ", ".join(str(path) for path in written))
    return 0 if all(r.passed for r in results) else 1


def exercise_command(args: argparse.Namespace) -> int:
    from mailtls import exercises

    chosen = exercises.find(args.exercise)
    changed = exercises.apply(chosen, "start" if args.action == "start" else "solution")
    what = "set up" if args.action == "start" else "solved with the reference solution"
    print(f"Exercise {chosen.number} ({chosen.name}) {what}: "
          + (", ".join(f"labs/{name}" for name in changed) or "no file changed") + ".")
    if changed and backends.running() is not None:
        backends.running().reload()
        print("The lab reloaded them.")
    elif changed:
        print("No lab is up; `python -m mailtls lab up` will run them.")
    return 0


def for_student(number: int, argv: list[str], args: argparse.Namespace) -> int:
    """Run this same command again, on student ``number``'s lab."""
    classroom.check_number(number)
    if not classroom.student_state(number) and not (args.command == "lab" and args.action in ("down", "status")):
        raise LabError(f"student {number} has no lab up: start the class's labs with "
                       "`python -m mailtls lab up --students N`")
    return classroom.run_as_student(number, argv).returncode


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; the docs' tests parse the commands the pages show with it."""
    parser = argparse.ArgumentParser(prog="python -m mailtls", description="The course's mail lab.")
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser("lab", help="bring the lab's mail servers up or down, and look at them")
    actions = lab.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start every lab host (does nothing if the lab is already up)")
    up.add_argument("--backend", choices=backends.NAMES,
                    help="containers: Podman or Docker; native: network namespaces (root, Linux)")
    up.add_argument("--students", type=int, metavar="N",
                    help=f"a classroom host: one lab per student, 1 to N (at most {hosts.MAX_STUDENTS})")
    up.add_argument("--classroom", type=Path, default=classroom.DEFAULT_COPIES, metavar="DIR",
                    help="with --students: where each student's copy of labs/ is, DIR/student-K "
                         "(default ./classroom; made if missing, never overwritten)")
    down = actions.add_parser("down", help="stop the lab (and every student's) and remove everything it made")
    reload = actions.add_parser("reload", help="apply edited files under labs/ (checked first)")
    logs = actions.add_parser("logs", help="the hosts' Postfix and Dovecot logs")
    logs.add_argument("host", nargs="?", help="one host, e.g. relay or relay.lab.test")
    status = actions.add_parser("status", help="the lab's services, CA and users (and the students' labs)")
    status.add_argument("--json", action="store_true", help="machine-readable, for scripts")
    wiretap = actions.add_parser("wiretap", help="set the interceptor on mitm.lab.test")
    wiretap.add_argument("mode", choices=common.WIRETAP_MODES)
    notebooks = commands.add_parser("notebooks", help="JupyterLab on the notebooks, with a lab running")
    notebooks.add_argument("--port", type=int, default=8888, help="on 127.0.0.1 (default 8888)")
    notebooks.add_argument("--backend", choices=[*backends.NAMES, "sim"],
                           help="for a lab started here (default: as lab up); sim: the simulated lab, no root needed")
    check = commands.add_parser("check", help="does the lab do what an exercise asks? criterion by criterion")
    check.add_argument("exercise", nargs="?", help="its name or number (see --list)")
    check.add_argument("--list", action="store_true", help="list the exercises")
    check.add_argument("--report", type=Path, metavar="FILE", help="also write FILE.md and FILE.json to hand in")
    exercise = commands.add_parser("exercise", help="set an exercise up in labs/, or apply its reference solution")
    exercise.add_argument("action", choices=["start", "solve"])
    exercise.add_argument("exercise", help="its name or number (see `check --list`)")
    for command in (down, reload, logs, status, wiretap, check, exercise):
        command.add_argument("--student", type=int, metavar="K",
                             help="on a classroom host: student K's lab (and their copy of labs/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Each line of progress reaches whoever reads it at once, even through a pipe (a test, a
    # supervisor, `| tee`), where Python would otherwise hold it back in a buffer.
    sys.stdout.reconfigure(line_buffering=True)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "student", None) is not None and args.student != hosts.STUDENT:
            return for_student(args.student, sys.argv[1:] if argv is None else argv, args)
        if args.command == "check":
            return check_command(args, parser)
        if args.command == "exercise":
            return exercise_command(args)
        if args.command == "notebooks":
            from mailtls.notebooks import serve

            try:
                serve(args.port, args.backend)
            except KeyboardInterrupt:  # stopped while starting; serve() has cleaned up
                return 130
            return 0
        return lab_command(args)
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

