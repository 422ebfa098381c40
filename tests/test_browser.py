"""A reader's view, in a real headless Chromium (Debian's, driven by Playwright).

The site is served on 127.0.0.1 only; every request the browser makes is recorded, and one to
any other address is refused and fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.requirements import require, require_program
from helpers.web import CHROMIUM_FLAGS, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    server, url = serve(site)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    chromium = require_program("chromium", "Debian package chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright (pip)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class Reader:
    """A browser tab that records every request and refuses those that leave 127.0.0.1."""

    def __init__(self, browser, base_url: str, locale: str) -> None:
        self.base_url = base_url
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith(self.base_url + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base_url}/{path}", wait_until="networkidle")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def reader_for(browser, base_url):
    readers: list[Reader] = []

    def make(locale: str) -> Reader:
        reader = Reader(browser, base_url, locale)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


@pytest.mark.parametrize(
    ("locale", "language", "title"),
    [
        ("en-GB", "en", "Postfix, Dovecot and mail encryption with TLS"),
        ("es-ES", "es", "Postfix, Dovecot y el cifrado del correo con TLS"),
    ],
)
def test_landing_page_in_the_readers_language(reader_for, locale: str, language: str, title: str) -> None:
    reader = reader_for(locale)
    reader.open("index.html")  # the root page redirects by the browser's language
    reader.page.wait_for_url(f"**/{language}/index.html")
    assert reader.page.locator("article h1").inner_text().strip() == title
    assert reader.page.locator("html").get_attribute("lang") == language
    cards = reader.page.locator("article .sd-card")
    assert cards.count() == 3 and all(cards.nth(i).is_visible() for i in range(3))
    assert reader.refused == [], f"requests that left 127.0.0.1: {reader.refused}"


@pytest.mark.parametrize(
    ("language", "other", "switch_label", "diagram_text"),
    [("en", "es", "Español", "STARTTLS"), ("es", "en", "English", "STARTTLS")],
)
def test_chapter_shows_diagram_and_switches_language(
    reader_for, language: str, other: str, switch_label: str, diagram_text: str
) -> None:
    reader = reader_for(f"{language}-{'GB' if language == 'en' else 'ES'}")
    reader.open(f"{language}/mail-and-tls/index.html")
    page = reader.page

    diagram = page.locator("article svg.sequence-diagram").filter(has_text=diagram_text).first
    diagram.scroll_into_view_if_needed()
    assert diagram.is_visible()
    box = diagram.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100, "the diagram is not rendered"
    assert diagram_text in diagram.text_content()

    switch = page.locator("nav.language-switch a")
    assert switch.inner_text().strip() == switch_label
    switch.click()
    page.wait_for_url(f"**/{other}/mail-and-tls/index.html")
    assert page.locator("html").get_attribute("lang") == other
    assert page.locator("article svg.sequence-diagram").count() > 0
    assert reader.refused == [], f"requests that left 127.0.0.1: {reader.refused}"
    assert all(url.startswith(reader.base_url) for url in reader.requests)


def test_copy_button_leaves_prompts_and_output_behind(reader_for) -> None:
    reader = reader_for("en-GB")
    reader.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=reader.base_url)
    reader.open("en/postfix-server/index.html")
    block = reader.page.locator("article div.highlight-console").first
    block.scroll_into_view_if_needed()
    shown = block.locator("pre").inner_text()
    assert shown.lstrip().startswith(("$ ", "# ")), "the first console block should start with a prompt"
    block.hover()
    block.locator("button.copybtn").click()
    copied = reader.page.evaluate("navigator.clipboard.readText()")
    assert copied.strip(), "nothing was copied"
    assert not any(line.startswith(("$ ", "# ")) for line in copied.splitlines()), copied
    first_command = shown.lstrip()[2:].splitlines()[0]
    assert copied.splitlines()[0] == first_command


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_chapter_leads_to_its_notebook_and_the_notebook_back(reader_for, language: str) -> None:
    reader = reader_for(f"{language}-{'GB' if language == 'en' else 'ES'}")
    reader.open(f"{language}/imap/index.html")
    page = reader.page
    link = page.locator("article .admonition.tip a").first
    assert link.is_visible()
    link.click()
    page.wait_for_url(f"**/{language}/notebooks/imap.html")
    note = page.locator("article .admonition.note")
    assert note.is_visible()
    first_cell = page.locator("article div.cell").first
    assert "from mailtls.lab import connect" in first_cell.inner_text()
    with page.expect_download() as download:
        page.locator("article a.notebook-download").click()
    assert download.value.suggested_filename == "imap.ipynb"
    note.locator("a", has_text={"en": "IMAP", "es": "IMAP"}[language]).click()
    page.wait_for_url(f"**/{language}/imap/index.html*")
    assert reader.refused == [], f"requests that left 127.0.0.1: {reader.refused}"
