"""Both editions build with zero warnings (nitpicky, warnings as errors)."""

import pytest

from course import LANGUAGES, BuiltSite


@pytest.mark.parametrize("language", LANGUAGES)
def test_edition_builds_without_warnings(built: BuiltSite, language: str) -> None:
    result = built.results[language]
    assert result.warnings == "", f"Sphinx said, building {language}:\n{result.warnings}"
    assert result.returncode == 0


def test_root_page_offers_both_editions(site) -> None:
    root = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="en/index.html"' in root and 'href="es/index.html"' in root
