"""The built site loads nothing from another origin: no CDN, no web fonts, no analytics.

Classrooms and offline readers must get the full site. Links that a reader follows
(``<a href>``) may point anywhere; everything the browser fetches by itself must be local.
"""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup

# Attributes through which a page makes the browser fetch something without a click.
FETCHING = {
    "script": ["src"], "img": ["src", "srcset"], "iframe": ["src"], "source": ["src", "srcset"],
    "audio": ["src"], "video": ["src", "poster"], "embed": ["src"], "object": ["data"],
    "link": ["href"], "track": ["src"], "image": ["href", "xlink:href"], "use": ["href", "xlink:href"],
}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


def is_other_origin(url: str) -> bool:
    url = url.strip()
    return bool(re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.I)) \
        or url.lower().startswith(("http:", "https:"))


def external_fetches_in_html(path: Path) -> list[str]:
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    found = []
    for tag, attributes in FETCHING.items():
        for element in soup.find_all(tag):
            for attribute in attributes:
                for value in str(element.get(attribute, "")).split(","):
                    candidate = value.strip().split(" ")[0]
                    if candidate and is_other_origin(candidate):
                        found.append(f"<{tag} {attribute}={candidate}>")
    for style in soup.find_all("style"):
        found += [u for pair in CSS_URL.findall(style.get_text()) for u in pair if u and is_other_origin(u)]
    for element in soup.find_all(style=True):
        found += [u for pair in CSS_URL.findall(element["style"]) for u in pair if u and is_other_origin(u)]
    return found


def test_html_pages_fetch_only_local_resources(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    problems = {str(p.relative_to(site)): f for p in pages if (f := external_fetches_in_html(p))}
    assert not problems, f"pages that fetch from another origin: {problems}"


def test_stylesheets_fetch_only_local_resources(site: Path) -> None:
    sheets = sorted(site.rglob("*.css"))
    assert sheets
    problems = {}
    for sheet in sheets:
        urls = [u for pair in CSS_URL.findall(sheet.read_text(encoding="utf-8")) for u in pair if u]
        if external := [u for u in urls if is_other_origin(u)]:
            problems[str(sheet.relative_to(site))] = external
    assert not problems, f"stylesheets that fetch from another origin: {problems}"


def test_the_check_recognises_a_cdn() -> None:
    assert is_other_origin("https://cdn.example.org/x.js")
    assert is_other_origin("//fonts.example.org/f.woff2")
    assert not is_other_origin("_static/furo.js")
    assert not is_other_origin("data:image/svg+xml;base64,AAAA")
