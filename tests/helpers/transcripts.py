"""The lines the chapters quote, and how a quoted line matches a line a real program printed.

The conventions: ``…`` stands for an elided part (a timestamp, a process or queue id, an
address); the examples' host names (``mail.example.org``, ``mx.example.org``) stand for the
lab's; queue ids differ from run to run.

A quoted block belongs to a generation of Debian's mail servers (``mailtls.generations``): the
one a sphinx-design tab around it names (``:::{tab-item} Debian 13 (Dovecot 2.4)``), or every
generation outside such tabs. Its lines are checked against what that generation's servers said.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from helpers.requirements import in_ci
from mailtls.generations import GENERATIONS

#: The Debian releases the course's blocks can belong to, newest first: ``(13, 12)``.
DEBIANS = tuple(generation.debian for generation in GENERATIONS)


@dataclass(frozen=True)
class QuotedBlock:
    """A ```` ```text ```` block of a page, the tab around it (``None`` outside tabs), and the Debian
    releases whose servers it quotes."""

    text: str
    tab: str | None = None
    generations: frozenset[int] = frozenset(DEBIANS)


def tab_generations(label: str) -> frozenset[int]:
    """The Debian releases a tab's label names (``Debian 13 (Dovecot 2.4)``: {13}); empty if none."""
    return frozenset(int(n) for n in re.findall(r"\bDebian\s+(\d+)\b", label) if int(n) in DEBIANS)


@cache
def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions={"colon_fence", "deflist", "fieldlist"}),
                            RendererHTML)


def text_blocks(page: Path) -> list[QuotedBlock]:
    """The ```` ```text ```` fences of a Markdown page, in order, each with its generations.

    The page is parsed as MyST does; a directive's body (``{tab-set}``, ``{tab-item}``, admonitions)
    is Markdown again, and a ``{tab-item}`` whose title names ``Debian NN`` gives its blocks to NN.
    """
    return _blocks_in(page.read_text(encoding="utf-8"), None, frozenset(DEBIANS))


def _blocks_in(text: str, tab: str | None, generations: frozenset[int]) -> list[QuotedBlock]:
    found = []
    for token in _parser().parse(text):
        if token.type not in ("fence", "colon_fence"):
            continue
        info = token.info.strip()
        if info == "text":
            found.append(QuotedBlock(token.content, tab, generations))
        elif info.startswith("{") and not info.startswith("{code-cell}"):
            directive, _, title = info.partition("}")
            named = tab_generations(title) if directive == "{tab-item" else frozenset()
            found += _blocks_in(token.content, title.strip() if named else tab, named or generations)
    return found


def quoted_lines(blocks: list[QuotedBlock], prefix: str = "") -> dict[str, frozenset[int]]:
    """Each distinct line of ``blocks`` that starts with ``prefix`` (without it; non-empty lines
    only), with every generation that quotes it: a line quoted both in a Debian 13 tab and in a
    Debian 12 tab must be true of both."""
    lines: dict[str, frozenset[int]] = {}
    for block in blocks:
        for line in block.text.splitlines():
            if line.strip() and line.startswith(prefix):
                quoted = line[len(prefix):]
                lines[quoted] = lines.get(quoted, frozenset()) | block.generations
    return lines


def lab_debian(lab) -> int:
    """The Debian release whose servers the lab under test runs (``lab.debian``: 13 or 12)."""
    return int(lab.debian)


def unmatched(quoted: dict[str, frozenset[int]], debian: int, real: list[str]) -> list[str]:
    """The lines of ``quoted`` (line -> generations, as ``quoted_lines`` gives) that belong to
    Debian ``debian`` and match, from its start, none of the ``real`` lines its servers printed."""
    return sorted(line for line, where in quoted.items()
                  if debian in where and not any(as_pattern(line).match(said) for said in real))


class Exercised:
    """Which generations' labs did check which quoted lines, to fail a run that quotes a generation
    no lab of that generation checked (a Debian 13 tab, but only Debian 12 labs ran).

    ``record(what, debian)`` after a check; ``missing(quoted)`` at the end of the run gives, for
    ``quoted`` = {what: {line: generations}}, the (what, generation) pairs quoted but never checked.
    """

    def __init__(self) -> None:
        self.checked: dict[str, set[int]] = {}

    def record(self, what: str, debian: int) -> None:
        self.checked.setdefault(what, set()).add(debian)

    def missing(self, quoted: dict[str, dict[str, frozenset[int]]]) -> list[tuple[str, int]]:
        return sorted((what, debian) for what, lines in quoted.items()
                      for debian in set().union(*lines.values())
                      if debian not in self.checked.get(what, set()))

    def complain(self, quoted: dict[str, dict[str, frozenset[int]]], where: str) -> None:
        """At the end of a run: fail (under CI) or warn if ``missing(quoted)`` is not empty;
        ``where`` says what the keys of ``quoted`` are, for the message."""
        missing = self.missing(quoted)
        if not missing:
            return
        message = f"quoted lines no lab of their generation checked ({where}, Debian): {missing}"
        if in_ci():
            pytest.fail(message)
        warnings.warn(message, stacklevel=1)


def as_pattern(quoted: str) -> re.Pattern[str]:
    """A regular expression that matches, from its start, the real lines ``quoted`` stands for."""
    pattern = re.escape(quoted)
    pattern = pattern.replace(re.escape("…"), ".*")
    pattern = re.sub(r"(mx|mail)\\\.example\\\.org", r"\\S+", pattern)
    pattern = re.sub(r"queued\\ as\\ \w+", r"queued\\ as\\ \\w+", pattern)
    return re.compile(pattern)
