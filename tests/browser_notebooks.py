"""Run the site's notebooks in JupyterLite in a real Chromium, and say what happened, as JSON.

``python tests/browser_notebooks.py SITE OUT.json PATH...`` serves SITE on 127.0.0.1, opens each
PATH (``en/lite/notebooks/index.html?path=smtp.ipynb``, or a REPL URL) in Debian's Chromium
through Playwright, runs every cell, and writes for each: the cells' outputs (their
``textContent``), whether any was an error, the seconds from opening to the first output, and
every URL the browser asked for. Requests that leave the site are refused and listed.

The tests run it inside ``unshare -n`` (a network namespace with only a loopback), so a request
to a CDN could not succeed even if it were not refused. The benchmarks run it for timings.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from helpers.web import CHROMIUM_FLAGS, serve

CELL_TIMEOUT_MS = 300_000  # a whole notebook, pure-Python TLS included


OUTPUTS_JS = """() => Array.from(document.querySelectorAll('.jp-Cell')).map(cell => ({
    prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
    outputs: Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map(o => ({
        mime: o.getAttribute('data-mime-type') || '', text: o.textContent})),
}))"""


def run_notebook(page, url: str) -> dict:
    """Open a notebook, wait for its kernel, run all cells, wait until none is running."""
    start = time.monotonic()
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           "#jp-main-statusbar :text('Idle')", timeout=120_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[data-command='runmenu:run-all']").click()
    page.wait_for_selector(".jp-OutputArea-output", timeout=CELL_TIMEOUT_MS)
    first_output = time.monotonic() - start
    page.wait_for_function("""() => {
        const prompts = Array.from(document.querySelectorAll('.jp-Cell.jp-CodeCell .jp-InputPrompt'));
        return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))
            || document.querySelector(
                   '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
               && prompts.every(p => !p.textContent.includes('*'));
    }""", timeout=CELL_TIMEOUT_MS, polling=500)
    cells = page.evaluate(OUTPUTS_JS)
    page.keyboard.press("Control+s")  # as a reader might: the copy must still not outlive the tab
    page.wait_for_timeout(1000)
    return {"url": url, "cells": cells, "first_output_s": round(first_output, 2),
            "total_s": round(time.monotonic() - start, 2),
            "errors": [o["text"] for c in cells for o in c["outputs"] if "error" in o["mime"]]}


def reopen(page, url: str) -> dict:
    """Open a notebook again in the same tab, without running it: what does it show?"""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_timeout(2000)  # time for any stored outputs to be drawn
    return {"url": url, "cells": page.evaluate(OUTPUTS_JS), "errors": []}


def run_repl(page, url: str) -> dict:
    """A REPL that runs the code of its URL: the time to its first output, and every output once
    the code has finished (its prompt numbered, none running)."""
    start = time.monotonic()
    page.goto(url)
    page.wait_for_selector(".jp-OutputArea-output", timeout=CELL_TIMEOUT_MS)
    first_output = time.monotonic() - start
    page.wait_for_function("""() => {
        const prompts = Array.from(document.querySelectorAll('.jp-CodeConsole .jp-InputPrompt'))
            .map(p => p.textContent).filter(text => text.trim());
        return prompts.some(text => /\\[\\d+\\]/.test(text)) && !prompts.some(text => text.includes('*'));
    }""", timeout=CELL_TIMEOUT_MS, polling=500)
    cells = page.evaluate(OUTPUTS_JS)
    return {"url": url, "first_output_s": round(first_output, 2), "cells": cells,
            "errors": [o["text"] for c in cells for o in c["outputs"] if "error" in o["mime"]]}


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    root, out, paths = Path(argv[0]), Path(argv[1]), argv[2:]
    server, base = serve(root)
    results = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                                 args=CHROMIUM_FLAGS)
            context = page = None
            requested: list[str] = []
            refused: list[str] = []
            for path in paths:
                if not path.startswith("fresh:") or page is None:  # "fresh:": the same tab, opened again
                    if context is not None:
                        context.close()
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    requested, refused = [], []

                    def route(route, request, requested=requested, refused=refused) -> None:
                        requested.append(request.url)
                        if request.url.startswith((base + "/", "data:", "blob:")):
                            route.continue_()
                        else:
                            refused.append(request.url)
                            route.abort()

                    context.route("**/*", route)
                    page = context.new_page()
                try:
                    if path.startswith("fresh:"):
                        result = reopen(page, f"{base}/{path.removeprefix('fresh:')}")
                    else:
                        result = (run_repl if "/repl/" in path else run_notebook)(page, f"{base}/{path}")
                except Exception as failure:  # reported, with what the page showed so far
                    result = {"url": path, "failure": f"{type(failure).__name__}: {failure}",
                              "cells": page.evaluate(OUTPUTS_JS), "errors": []}
                result.update(path=path, requests=list(requested), refused=list(refused))
                results.append(result)
            if context is not None:
                context.close()
            browser.close()
    finally:
        server.shutdown()
    out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
