"""``python -m mailtls lab up|down|reload|logs|status|wiretap``, ``notebooks``, ``check`` and ``exercise``.

``main`` builds the lab's configuration once (``LabConfig``: from ``--student K``, or from the
environment a classroom host gives a student's process) and passes it to every command. Every
error a user can cause is a ``LabError``, printed on one line by ``main``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from mailtls import backends, classroom, generations, runtime
from mailtls.config import MAX_STUDENTS, LabConfig
from mailtls.errors import LabError
from mailtls.status import LabStatus


def print_status(described: LabStatus) -> None:
    servers = ", ".join(f"{name.capitalize()} {version}" for name, version in described.servers.items())
    print(f"backend: {described.backend}   Debian {described.debian} ({servers})   CA: {described.ca_file}")
    for s in described.services:
        print(f"  {s.host:<22} {s.service:<12} {s.address}:{s.port:<5} TLS: {s.tls}")
    print("users: " + ", ".join(f"{u.login} / {u.password}" for u in described.users))
    print(f"wiretap: {described.wiretap.mode} (transcript: {described.wiretap.transcript})")


def print_classroom(students: list[tuple[int, str | None, LabStatus]]) -> None:
    print(f"classroom: {len(students)} student labs")
    for number, labs, status in students:
        mail = next(s for s in status.services if s.host.startswith("mail."))
        print(f"  student {number:<3} {status.backend:<11} mail.lab.test {mail.address:<13} "
              f"wiretap: {status.wiretap.mode:<7} files: {labs}")
    print("`python -m mailtls lab status --student K` describes one of them.")


def running_backend(config: LabConfig) -> backends.Backend:
    """The backend that runs ``config``'s lab; NoLabUp when none does."""
    backend = backends.running(config)
    if backend is None:
        raise runtime.no_lab_up(config)
    return backend


def status_json(config: LabConfig) -> dict:
    """What ``lab status --json`` prints: the lab's description, and the students' on a classroom host."""
    described = LabStatus.read(config.runtime)
    result = described.to_json() if described else {"up": False}
    students = classroom.statuses() if config.student is None else []
    if students:
        result["students"] = [{"student": number, "labs": labs, **status.to_json()}
                              for number, labs, status in students]
    return result


def lab_command(args: argparse.Namespace, config: LabConfig) -> int:
    progress = lambda message: print(f"  {message}", flush=True)  # noqa: E731
    if args.action == "up" and args.students is not None:
        if config.student is not None:
            raise LabError("`lab up --students` runs on the classroom host itself, without MAILTLS_STUDENT")
        numbers = classroom.up(args.students, backends.choose(args.backend), args.classroom,
                               on_progress=progress, source=config.labs, generation=config.generation)
        print(f"Students 1 to {numbers[-1]} have a lab up; `python -m mailtls lab status` lists them.")
    elif args.action == "up":
        backend = backends.get(backends.choose(args.backend), config)
        status = backend.up(on_progress=progress)
        print(f"The lab is up ({status.backend}, Debian {status.debian}); "
              "`python -m mailtls lab status` lists its services.")
    elif args.action == "down":
        backend = backends.running(config)
        for candidate in [backend] if backend else [backends.get(name, config) for name in backends.NAMES]:
            candidate.down()  # with nothing recorded, clear what either backend may have left
        if config.student is None:  # the teacher's `lab down` ends the class too
            classroom.down()
    elif args.action == "reload":
        running_backend(config).reload()
        print("Reloaded: every host runs its files under labs/ again.")
    elif args.action == "logs":
        running_backend(config)
        print(runtime.logs(config, args.host), end="")
    elif args.action == "status":
        described = status_json(config)
        if args.json:
            print(json.dumps(described, indent=2))
            return 0
        status = LabStatus.read(config.runtime)
        if status is not None:
            print_status(status)
        elif "students" not in described:
            print("No lab is up." if config.student is None else f"Student {config.student} has no lab up.")
        if "students" in described:
            print_classroom(classroom.statuses())
    elif args.action == "wiretap":
        runtime.set_wiretap_mode(config, args.mode)
        print(f"The wiretap on mitm.lab.test is now in {args.mode} mode.")
    return 0


def check_command(args: argparse.Namespace, parser: argparse.ArgumentParser, config: LabConfig) -> int:
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
        lab = connect(config.runtime)
    except LabNotRunning:
        raise runtime.no_lab_up(config) from None
    results = checker.check(chosen, lab)
    checker.print_results(chosen, results)
    if args.report:
        written = checker.write_report(args.report, chosen, lab, results)
        print("Report: " + ", ".join(str(path) for path in written))
    return 0 if all(r.passed for r in results) else 1


def exercise_command(args: argparse.Namespace, config: LabConfig) -> int:
    from mailtls import exercises

    chosen = exercises.find(args.exercise)
    changed = exercises.apply(chosen, "start" if args.action == "start" else "solution", config.labs)
    what = "set up" if args.action == "start" else "solved with the reference solution"
    print(f"Exercise {chosen.number} ({chosen.name}) {what}: "
          + (", ".join(f"labs/{name}" for name in changed) or "no file changed") + ".")
    backend = backends.running(config)
    if changed and backend is not None:
        backend.reload()
        print("The lab reloaded them.")
    elif changed:
        print("No lab is up; `python -m mailtls lab up` will run them.")
    return 0


def config_for(args: argparse.Namespace, environment: LabConfig) -> LabConfig:
    """The lab a command works on: ``--student K``'s (and their copy of labs/), else ``environment``'s.

    A student's lab must be up, except for ``lab down`` and ``lab status``.
    """
    number = getattr(args, "student", None)
    if number is None or number == environment.student:
        return environment
    config = classroom.student_config(number)
    if (classroom.student_state(number) is None
            and not (args.command == "lab" and args.action in ("down", "status"))):
        raise classroom.no_lab_up(number)
    return config


def debian_release(value: str) -> generations.Generation:
    """``--debian``'s value: a generation the lab runs (argparse prints the error on one line)."""
    try:
        return generations.get(value)
    except generations.UnknownGeneration as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; the docs' tests parse the commands the pages show with it."""
    parser = argparse.ArgumentParser(prog="python -m mailtls", description="The course's mail lab.")
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser("lab", help="bring the lab's mail servers up or down, and look at them")
    actions = lab.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start every lab host (does nothing if the lab is already up)")
    up.add_argument("--backend", choices=backends.NAMES,
                    help="containers: Podman or Docker; native: network namespaces (root, Linux)")
    debian_help = ("the generation of Debian's servers: 13 (Postfix 3.10, Dovecot 2.4; the default) or 12 "
                   "(Postfix 3.7, Dovecot 2.3); the native backend runs this machine's own")
    up.add_argument("--debian", type=debian_release, metavar="13|12", help=debian_help)
    up.add_argument("--students", type=int, metavar="N",
                    help=f"a classroom host: one lab per student, 1 to N (at most {MAX_STUDENTS})")
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
    wiretap.add_argument("mode", choices=runtime.WIRETAP_MODES)
    notebooks = commands.add_parser("notebooks", help="JupyterLab on the notebooks, with a lab running")
    notebooks.add_argument("--port", type=int, default=8888, help="on 127.0.0.1 (default 8888)")
    notebooks.add_argument("--backend", choices=[*backends.NAMES, "sim"],
                           help="for a lab started here (default: as lab up); "
                                "sim: the simulated lab, no root needed")
    notebooks.add_argument("--debian", type=debian_release, metavar="13|12", help=debian_help)
    check = commands.add_parser("check", help="does the lab do what an exercise asks? criterion by criterion")
    check.add_argument("exercise", nargs="?", help="its name or number (see --list)")
    check.add_argument("--list", action="store_true", help="list the exercises")
    check.add_argument("--report", type=Path, metavar="FILE",
                       help="also write FILE.md and FILE.json to hand in")
    exercise = commands.add_parser("exercise",
                                   help="set an exercise up in labs/, or apply its reference solution")
    exercise.add_argument("action", choices=["start", "solve"])
    exercise.add_argument("exercise", help="its name or number (see `check --list`)")
    for command in (down, reload, logs, status, wiretap, check, exercise):
        command.add_argument("--student", type=int, metavar="K",
                             help="on a classroom host: student K's lab (and their copy of labs/)")
    return parser


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """Run one command; return the exit status (1, with one ``error:`` line, for a LabError)."""
    # Each line of progress reaches whoever reads it at once, even through a pipe (a test, a
    # supervisor, `| tee`), where Python would otherwise hold it back in a buffer.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_for(args, LabConfig.from_environment(os.environ if environ is None else environ))
        if getattr(args, "debian", None) is not None:
            config = replace(config, generation=args.debian)
        if args.command == "check":
            return check_command(args, parser, config)
        if args.command == "exercise":
            return exercise_command(args, config)
        if args.command == "notebooks":
            from mailtls.notebooks import serve

            try:
                serve(config, args.port, args.backend)
            except KeyboardInterrupt:  # stopped while starting; serve() has cleaned up
                return 130
            return 0
        return lab_command(args, config)
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
