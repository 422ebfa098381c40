"""The two editions are the same book: same pages, same sections, same labels, same code."""

import pytest

from course import LANGUAGES, built_page, code_blocks, outline, source_pages

PAGES = source_pages("en")


def test_same_pages_in_both_languages() -> None:
    assert source_pages("en") == source_pages("es")
    assert "index" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_same_labels_and_sections(page: str) -> None:
    english, spanish = outline("en", page), outline("es", page)
    assert english.labels == spanish.labels, "labels differ (they must be the same, in the same order)"
    assert english.heading_levels == spanish.heading_levels, "the sections differ in number or level"
    assert english.labels, "a page needs at least its own label"


@pytest.mark.parametrize("page", PAGES)
def test_identical_code_blocks(site, page: str) -> None:
    english, spanish = (code_blocks(built_page(site, language, page)) for language in LANGUAGES)
    assert [b.language for b in english] == [b.language for b in spanish], "code block languages differ"
    for number, (a, b) in enumerate(zip(english, spanish, strict=True), start=1):
        assert a.text == b.text, f"code block {number} ({a.language}) differs between en and es"
