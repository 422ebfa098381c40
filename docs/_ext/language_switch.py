"""A link on every page to the same page in the other language.

The two languages are built separately from ``docs/en`` and ``docs/es`` into sibling folders
(``_build/html/en/`` and ``_build/html/es/``) with the same file names, so the other edition of
``postfix-server/index.html`` is ``../es/postfix-server/index.html`` relative to the site root.
The link is relative, so the site works from any folder or host, offline included.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

# Each language names the other one in that other language, so a reader recognises their own.
OTHER = {
    "en": {"code": "es", "label": "Español", "aria": "Language"},
    "es": {"code": "en", "label": "English", "aria": "Idioma"},
}


def other_language_url(pagename: str, target_language: str) -> str:
    """Relative URL from the page ``pagename`` to the same page in ``target_language``."""
    depth = pagename.count("/") + 1  # +1 climbs out of the language folder itself
    return "../" * depth + f"{target_language}/{pagename}.html"


def add_switch(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    other = OTHER.get(app.config.language)
    if other is None:
        return
    context["language_switch"] = {**other, "url": other_language_url(pagename, other["code"])}


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("html-page-context", add_switch)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
