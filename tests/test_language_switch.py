"""Every page links to the same page in the other language, and that page exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from course import LANGUAGES

OTHER = {"en": "es", "es": "en"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_switches_to_the_same_page(site: Path, language: str) -> None:
    edition = site / language
    # lite/ is JupyterLite, an application with its own pages, not pages of the book
    pages = sorted(page for page in edition.rglob("*.html") if page.relative_to(edition).parts[0] != "lite")
    assert pages
    for page in pages:
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        link = soup.select_one("nav.language-switch a.language-switch-link")
        assert link is not None, f"{page.relative_to(site)} has no language switch"
        assert link["hreflang"] == OTHER[language]
        target = (page.parent / link["href"]).resolve()
        expected = (site / OTHER[language] / page.relative_to(edition)).resolve()
        assert target == expected, f"{page.relative_to(site)} switches to {link['href']}"
        assert target.is_file(), f"{page.relative_to(site)} switches to a missing page {link['href']}"
