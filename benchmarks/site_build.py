"""How long the site takes to build, and how heavy a chapter page is.

Measures, on this machine:
- a clean build of both editions (no doctrees, no output), without executing the notebooks, and
  with them executed on the simulated lab (what ``make html`` does when no real lab is up);
- an incremental rebuild after one chapter changed (its source is touched);
- the weight of one chapter page: the HTML plus every stylesheet, script and image it loads.

Run with ``make benchmarks``. Figures go to standard output; nothing is asserted here.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from measure import folder_size, machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the helpers the tests use too

from helpers.paths import ROOT
from helpers.site import sphinx_command

LANGUAGES = ("en", "es")
CHAPTER = "postfix-server/index"


def build(out: Path, doctrees: Path, notebooks: str = "off", jupyterlite: bool = True,
          languages: tuple[str, ...] = LANGUAGES) -> float:
    """Both editions; ``notebooks`` is conf.py's ``mailtls_notebooks`` (``off``: the prose alone)."""
    start = time.perf_counter()
    for language in languages:
        subprocess.run(sphinx_command(language, out / language, doctrees / language, notebooks, jupyterlite),
                       check=True, cwd=ROOT)
    return time.perf_counter() - start


def page_weight(page: Path) -> tuple[int, dict[str, Path]]:
    """Bytes of a page and of the local files it loads (stylesheets, scripts, images)."""
    html = page.read_text(encoding="utf-8")
    parts = {"html": page}
    for url in re.findall(r'<(?:link[^>]+href|script[^>]+src|img[^>]+src)="([^"]+)"', html):
        path = urlsplit(url).path
        if not path or url.startswith(("http:", "https:", "//", "#", "data:")):
            continue
        target = (page.parent / path).resolve()
        if target.is_file() and target.suffix in {".css", ".js", ".png", ".svg", ".jpg", ".woff2", ".ico"}:
            parts[str(target.name)] = target
    return sum(p.stat().st_size for p in parts.values()), parts


def main() -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as scratch:
        out, doctrees = Path(scratch) / "html", Path(scratch) / "doctrees"
        clean = build(out, doctrees)
        print(f"clean build, both editions, notebooks not executed: {clean:.1f} s")
        with tempfile.TemporaryDirectory() as scratch:
            simulated = build(Path(scratch) / "html", Path(scratch) / "doctrees", notebooks="sim")
        print(f"clean build, both editions, notebooks executed on the simulated lab "
              f"(make html without a real lab): {simulated:.1f} s")

        for language in LANGUAGES:
            os.utime(ROOT / "docs" / language / f"{CHAPTER}.md")
        incremental = build(out, doctrees)
        print(f"incremental rebuild after touching {CHAPTER}.md in both editions: {incremental:.1f} s")

        unchanged = build(out, doctrees)
        print(f"rebuild with nothing changed: {unchanged:.1f} s")

        total, parts = page_weight(out / "en" / f"{CHAPTER}.html")
        compressed = sum(len(gzip.compress(p.read_bytes())) for p in parts.values())
        print(f"page weight of en/{CHAPTER}.html: {total / 1024:.0f} KiB in {len(parts)} files, "
              f"{compressed / 1024:.0f} KiB gzip-compressed")
        for name, path in sorted(parts.items(), key=lambda item: -item[1].stat().st_size):
            print(f"  {path.stat().st_size / 1024:8.1f} KiB  {name}")
        print(f"whole site (both editions): {folder_size(out) / 1024 / 1024:.1f} MiB")
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
