"""Every ``python -m mailtls`` command the pages and READMEs show is one the tool accepts.

A reader copies these commands: an option renamed in the code but not in a page would fail in
their terminal. Each one is parsed by the real command line's parser (nothing is run).
"""

from __future__ import annotations

import re
import shlex

import pytest

from course import ROOT
from mailtls.cli import build_parser

SOURCES = sorted([*ROOT.glob("docs/*/**/*.md"), ROOT / "README.md", ROOT / "labs" / "README.md"])
# A command runs to the end of the line, or to a comment, a list separator (sudoers), code's end.
COMMAND = re.compile(r"python -m mailtls ((?:[^#;,\\`»\n|])*)")
# The placeholders the pages use: a shell loop's variable, a sudoers wildcard.
PLACEHOLDERS = {"$k": "1", "*": "strip"}


def shown_commands() -> list[tuple[str, str]]:
    found = []
    for source in SOURCES:
        for line in source.read_text(encoding="utf-8").splitlines():
            for match in COMMAND.finditer(line):
                if "|" in line[match.end():match.end() + 1]:  # "lab up|down|...": a list of commands, not one
                    continue
                found.append((str(source.relative_to(ROOT)), match[1].strip()))
    return sorted(set(found))


COMMANDS = shown_commands()


def test_the_pages_show_commands() -> None:
    shown = {command for _, command in COMMANDS}
    assert {"lab up --students 30 --backend containers",
            "check submission --student 7 --report exercise-2"} <= shown


@pytest.mark.parametrize(("source", "command"), COMMANDS, ids=[f"{s}: {c}" for s, c in COMMANDS])
def test_the_tool_accepts_the_command(source: str, command: str) -> None:
    words = [PLACEHOLDERS.get(word, word) for word in shlex.split(command)]
    try:
        build_parser().parse_args(words)
    except SystemExit:
        pytest.fail(f"{source} shows `python -m mailtls {command}`, which the tool refuses")
