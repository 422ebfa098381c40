"""Sphinx configuration for both editions of the course, English and Spanish.

One configuration, two builds: the Makefile runs, for each language LANG,
``sphinx-build -c . -D language=LANG -W --keep-going -n docs/LANG _build/html/LANG``
(warnings are errors) and copies ``docs/root/index.html`` to ``_build/html/``.
What differs between the editions is in ``EDITIONS``; our extensions are in ``docs/_ext/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

HERE = Path(__file__).parent.resolve()
sys.path.insert(0, str(HERE / "docs" / "_ext"))

# -- Project -------------------------------------------------------------------------------

author = "The mailtls contributors"
copyright = f"2026, {author}"  # noqa: A001 (Sphinx's name)

EDITIONS = {
    "en": {"project": "Postfix, Dovecot and mail encryption with TLS"},
    "es": {"project": "Postfix, Dovecot y el cifrado del correo con TLS"},
}
language = "en"  # overridden per build with -D language=es
project = EDITIONS["en"]["project"]

# -- Extensions ----------------------------------------------------------------------------

extensions = [
    # Third party
    "myst_nb",  # MyST Markdown for every page, and the notebooks (MyST-NB includes myst_parser)
    "sphinx_design",  # cards, tabs, dropdowns
    "sphinx_copybutton",  # copy buttons that leave prompts and output behind
    "sphinx.ext.extlinks",  # {postconf}`parameter` links to postconf(5)
    # Ours, in docs/_ext/
    "sequence_diagram",  # {sequence-diagram}: protocol exchanges as inline SVG
    "mailconf_lexers",  # highlighting for main.cf, master.cf, lookup tables, dovecot.conf
    "language_switch",  # every page links to itself in the other language
    "notebook_pages",  # notebooks executed against the lab, or shown without outputs; downloads
    "browser_lab",  # "run in your browser": JupyterLite (jupyterlite-sphinx) with its own Pyodide
    "exercise_edits",  # {exercise-edits}: the classroom exercises' edits of labs/, as diffs
    "exercise_toctree",  # {exercise-toctree}: every exercise's page, in order, from the exercises
    "sim_settings",  # {sim-settings}: the settings the simulated lab models, from its data
]

# -- Sources -------------------------------------------------------------------------------
# Markdown pages, and MyST Markdown notebooks (a `kernelspec` in their front matter) in
# notebooks/, which docs/LANG/notebooks links to. MyST-NB registers the suffixes.

root_doc = "index"
templates_path = [str(HERE / "docs" / "_templates")]
exclude_patterns: list[str] = []

# -- MyST ----------------------------------------------------------------------------------

myst_enable_extensions = [
    "colon_fence",  # ::: fences for directives that contain Markdown
    "deflist",
    "fieldlist",
]
myst_heading_anchors = 3

# -- Notebooks (MyST-NB and notebook_pages) ------------------------------------------------
# Each page says which servers produced its outputs. The Makefile passes its MAILTLS_NOTEBOOKS
# as -D mailtls_notebooks=...

mailtls_notebooks = "auto"  # execute: a real lab when one answers, else the simulated lab; or execute|sim|off
nb_execution_timeout = 120  # seconds per cell; a relay's deferral takes a few
nb_execution_raise_on_error = True  # a failing assert in a notebook fails the build
nb_execution_show_tb = True
nb_merge_streams = True
notebook_chapters = {  # notebook -> its chapter; each page links to the other
    "smtp": "mail-and-tls/index",
    "postfix-server": "postfix-server/index",
    "postfix-client": "postfix-client/index",
    "certificates": "postfix-client/index",
    "imap": "imap/index",
    "submission": "submission/index",
    "attacks": "attacks/index",
}

# -- Run in your browser (browser_lab) -----------------------------------------------------
# JupyterLite in each edition (/LANG/lite/), with the Pyodide and wheels of `make browser-assets`
# and this project's wheel. The Makefile passes MAILTLS_JUPYTERLITE=off as -D mailtls_jupyterlite=0.

mailtls_jupyterlite = True

# -- Cross-references and checks -----------------------------------------------------------

nitpicky = True  # every reference must resolve (and -W makes any warning an error)
extlinks = {
    "postconf": ("https://www.postfix.org/postconf.5.html#%s", "%s"),
}
extlinks_detect_hardcoded_links = True
linkcheck_timeout = 10

# -- HTML output ---------------------------------------------------------------------------

html_theme = "furo"  # light and dark modes, mobile layout, system fonts (nothing fetched)
html_static_path = [str(HERE / "docs" / "_static")]
html_css_files = ["mailtls.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "top_of_page_buttons": [],
}

# -- Copy button ---------------------------------------------------------------------------
# Console blocks are lexed by Pygments: prompts ("$ ", "# ") are .gp spans and output lines
# .go spans, and both are left out of the copy. "# " cannot be a prompt regex as well, since
# it would also match the comments of main.cf and dovecot.conf blocks; the regex only catches
# prompts in blocks that are not lexed as a console session.

copybutton_exclude = ".linenos, .gp, .go"
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# -- Per-edition settings ------------------------------------------------------------------


def apply_edition(app: Sphinx, config: Config) -> None:
    """Set what differs between the editions, once ``-D language=…`` is known.

    Raises ``ValueError`` for a language that has no edition.
    """
    if config.language not in EDITIONS:
        raise ValueError(f"language must be one of {sorted(EDITIONS)}, not {config.language!r}")
    edition = EDITIONS[config.language]
    config.project = edition["project"]
    config.html_title = edition["project"]


def setup(app: Sphinx) -> None:
    app.connect("config-inited", apply_edition)
