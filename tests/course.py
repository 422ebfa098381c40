"""Reading the course as the tests see it: its Markdown sources and the HTML the build makes.

The tests build both editions once per run (see ``conftest.py``) and then look at the result
through these helpers, so that every test reads the same pages in the same way.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from bs4 import BeautifulSoup
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

from helpers.notebooks import execute, notebook_paths
from helpers.paths import DOCS, NOTEBOOKS, ROOT
from helpers.site import sphinx_command
from helpers.transcripts import DEBIANS, tab_generations

LANGUAGES = ("en", "es")


def source_pages(language: str) -> list[str]:
    """Page names (``postfix-server/index``, ``notebooks/smtp``) of one edition, sorted.

    ``docs/LANG/notebooks`` is a link to ``notebooks/LANG``: the walk follows it, as Sphinx does.
    """
    base = DOCS / language
    pages = []
    for folder, _, files in os.walk(base, followlinks=True):
        for name in files:
            if name.endswith(".md"):
                pages.append(str((Path(folder) / name).relative_to(base).with_suffix("")))
    return sorted(pages)


@dataclass
class Outline:
    """The skeleton of a page: its labels and headings, in order."""

    labels: list[str] = field(default_factory=list)
    heading_levels: list[int] = field(default_factory=list)


@cache
def _markdown_parser():
    config = MdParserConfig(enable_extensions={"colon_fence", "deflist", "fieldlist"})
    return create_md_parser(config, RendererHTML)


def outline(language: str, page: str) -> Outline:
    """Labels (``(name)=``) and heading levels of a page, including those inside directives."""
    result = Outline()
    _collect_outline((DOCS / language / f"{page}.md").read_text(encoding="utf-8"), result)
    return result


def _collect_outline(text: str, result: Outline) -> None:
    for token in _markdown_parser().parse(text):
        if token.type == "myst_target":
            result.labels.append(token.content)
        elif token.type == "heading_open":
            result.heading_levels.append(int(token.tag[1:]))
        elif token.type in ("fence", "colon_fence") and token.info.strip().startswith("{") \
                and not token.info.strip().startswith("{code-cell}"):  # a notebook's code is not Markdown
            _collect_outline(token.content, result)  # a directive's body is Markdown too


#: What a fence language says of a block's generation: Dovecot 2.4's language is Debian 13's only,
#: Dovecot 2.3's Debian 12's; every other language belongs to both.
FENCE_GENERATIONS = {"dovecot24": frozenset({13}), "dovecot": frozenset({12})}


@dataclass(frozen=True)
class CodeBlock:
    """A code block of a page: its fence language, its text, and the generations it belongs to.

    ``tab`` is the label of the innermost tab naming a Debian release that holds it, or ``None``
    outside such tabs. ``generations`` is that tab's Debian releases, or both outside tabs.
    """

    language: str  # the fence language: postfix-main, dovecot, console, ...
    text: str
    tab: str | None = field(default=None, compare=False)  # translated with the page
    generations: frozenset[int] = frozenset(DEBIANS)

    def conflict(self) -> str | None:
        """Why the fence language contradicts the tab (a ``dovecot24`` block in a Debian 12 tab,
        a ``dovecot`` block in a Debian 13 tab), or ``None`` when they agree."""
        own = FENCE_GENERATIONS.get(self.language)
        if own is not None and self.tab is not None and not own & self.generations:
            return f"a ```{self.language}``` block in the tab {self.tab!r}"
        return None

    @property
    def checked_on(self) -> frozenset[int]:
        """The generations whose real programs must accept this block: the tab's releases, narrowed
        by the fence language (a ``dovecot24`` block outside tabs is Debian 13's only)."""
        own = FENCE_GENERATIONS.get(self.language, frozenset(DEBIANS))
        return (self.generations & own) or own


def code_blocks(html_file: Path) -> list[CodeBlock]:
    """The highlighted code blocks of a built page, in order, as the reader sees their text, each
    with the sphinx-design tab (``div.sd-tab-content`` after its ``label.sd-tab-label``) that holds it."""
    soup = BeautifulSoup(html_file.read_text(encoding="utf-8"), "html.parser")
    blocks = []
    for div in soup.select("article div[class^='highlight-'], article div[class*=' highlight-']"):
        language = next(c.removeprefix("highlight-") for c in div["class"] if c.startswith("highlight-"))
        pre = div.find("pre")
        if pre is None:
            continue
        tab, generations = None, frozenset(DEBIANS)
        for content in div.find_parents("div", class_="sd-tab-content"):  # innermost first
            label = content.find_previous_sibling("label", class_="sd-tab-label")
            named = tab_generations(label.get_text(" ", strip=True)) if label is not None else frozenset()
            if named:
                tab, generations = label.get_text(" ", strip=True), named
                break
        blocks.append(CodeBlock(language, pre.get_text(), tab, generations))
    return blocks


def built_page(site: Path, language: str, page: str) -> Path:
    return site / language / f"{page}.html"


@dataclass
class BuildResult:
    language: str
    returncode: int
    warnings: str


@dataclass
class BuiltSite:
    root: Path  # holds index.html, en/ and es/
    results: dict[str, BuildResult]


def build_site(out: Path, doctrees: Path, notebooks: str = "off") -> BuiltSite:
    """Build both editions and the root page, as ``make html`` does.

    ``notebooks`` is conf.py's ``mailtls_notebooks``: ``off`` by default, so that a lab some other
    test left running cannot change what the site-wide tests see.
    """
    results = {language: build_edition(language, out, doctrees, notebooks) for language in LANGUAGES}
    (out / "index.html").write_bytes((DOCS / "root" / "index.html").read_bytes())
    return BuiltSite(out, results)


def build_edition(language: str, out: Path, doctrees: Path, notebooks: str = "off",
                  jupyterlite: bool = True) -> BuildResult:
    """Build one edition as ``make html`` does, warnings as errors, and keep what Sphinx said.

    ``jupyterlite=False`` leaves out "run in your browser" (``mailtls_jupyterlite`` 0), for tests
    of other things that would otherwise wait for JupyterLite's build.
    """
    command = sphinx_command(language, out / language, doctrees / language, notebooks, jupyterlite)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C.UTF-8"})
    return BuildResult(language, done.returncode, done.stderr.strip())


POSTFIX_MAIN_LINE = re.compile(r"^([A-Za-z0-9_]+)\s*=")
POSTFIX_MASTER_OPTION = re.compile(r"-o\s+\{?\s*([A-Za-z0-9_]+)\s*=")
POSTCONF_COMMAND = re.compile(r"postconf\s+(?:-[ce]\s+\S*\s*)*-e\s+(.*)")


def postfix_main_names(block: str) -> list[str]:
    """Parameter names set in a ``main.cf`` fragment (continuation lines are indented)."""
    return [m[1] for line in block.splitlines() if (m := POSTFIX_MAIN_LINE.match(line))]


def postfix_master_names(block: str) -> list[str]:
    """Parameter names overridden with ``-o`` in a ``master.cf`` fragment."""
    return POSTFIX_MASTER_OPTION.findall(block)


def postconf_command_names(block: str) -> list[str]:
    """Parameter names set with ``postconf -e 'name = value'`` in a console block."""
    names = []
    for line in block.splitlines():
        if match := POSTCONF_COMMAND.search(line):
            for assignment in re.findall(r"""['"]?([A-Za-z0-9_]+)\s*=""", match[1]):
                names.append(assignment)
    return names


# -- Notebooks -------------------------------------------------------------------------------------


def notebook_names() -> list[str]:
    """The notebooks (MyST files with a kernel), by file name without ``.md``."""
    return [p.stem for p in notebook_paths("en")]


def run_notebook(language: str, name: str, against: str):
    """Execute a notebook as Jupyter would; a failing cell fails the test, naming ``against``.

    Returns the executed notebook and the text its first code cell printed (the lab it used).
    """
    import nbclient
    import pytest

    try:
        notebook = execute(NOTEBOOKS / language / f"{name}.md")
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{language}/{name}.md on {against}:\n{error}", pytrace=False)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    return notebook, "".join(output.get("text", "") for output in code[0].outputs)
