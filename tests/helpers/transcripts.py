"""The lines the chapters quote, and how a quoted line matches a line a real program printed.

The conventions: ``…`` stands for an elided part (a timestamp, a process or queue id, an
address); the examples' host names (``mail.example.org``, ``mx.example.org``) stand for the
lab's; queue ids differ from run to run.
"""

from __future__ import annotations

import re
from pathlib import Path

TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```", re.MULTILINE | re.DOTALL)


def text_blocks(page: Path) -> list[str]:
    """The contents of a Markdown page's ```` ```text ```` fences, in order."""
    return TEXT_BLOCK.findall(page.read_text(encoding="utf-8"))


def as_pattern(quoted: str) -> re.Pattern[str]:
    """A regular expression that matches, from its start, the real lines ``quoted`` stands for."""
    pattern = re.escape(quoted)
    pattern = pattern.replace(re.escape("…"), ".*")
    pattern = re.sub(r"(mx|mail)\\\.example\\\.org", r"\\S+", pattern)
    pattern = re.sub(r"queued\\ as\\ \w+", r"queued\\ as\\ \\w+", pattern)
    return re.compile(pattern)
