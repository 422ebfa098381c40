"""How "run in your browser" performs (``make benchmarks-browser``).

- the cost of JupyterLite in the build (the English edition with and without it);
- its size in the site, and what a reader downloads before the first output;
- in Debian's Chromium, inside ``unshare -n`` (only a loopback), with an empty cache each time:
  the seconds from opening a notebook to its first output (the kernel started, the simulated lab
  up, "Run All Cells" chosen), next to a stock JupyterLite REPL built the same way that prints one
  line; and the time of a STARTTLS handshake (tlslite-ng on both sides) measured in the browser.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from measure import folder_size, machine
from site_build import CHAPTER, build, page_weight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the helpers the tests use too

from helpers.web import offline_notebooks_command

ROUNDS = 3
HANDSHAKE_CODE = """
import smtplib, ssl, time
from mailtls.lab import connect
lab = connect()
context = ssl.create_default_context(cafile=lab.ca_file)
times = []
for _ in range(5):
    with smtplib.SMTP("mail.lab.test", 587, timeout=10) as server:
        start = time.perf_counter()
        server.starttls(context=context)
        times.append(time.perf_counter() - start)
print("handshakes (ms):", " ".join(f"{t * 1000:.0f}" for t in times))
"""


def in_chromium(site: Path, paths: list[str]) -> list[dict]:
    """Each path opened in Chromium offline: ``tests/browser_notebooks.py``'s report."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "results.json"
        subprocess.run(offline_notebooks_command(sys.executable, site, out, paths), check=True)
        return json.loads(out.read_text())


def main() -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as scratch:
        out, doctrees = Path(scratch) / "html", Path(scratch) / "doctrees"
        without = build(Path(scratch) / "plain", Path(scratch) / "plain-doctrees", jupyterlite=False,
                        languages=("en",))
        with_lite = build(out, doctrees, languages=("en",))
        print(f"English edition, clean build: {with_lite:.1f} s with JupyterLite, {without:.1f} s without")
        lite = out / "en" / "lite"
        pyodide = lite / "static" / "pyodide"
        interpreter = (pyodide / "pyodide.asm.wasm").stat().st_size
        stdlib = (pyodide / "python_stdlib.zip").stat().st_size
        print(f"JupyterLite in one edition: {folder_size(lite) / 2**20:.1f} MiB, of which Pyodide and its "
              f"wheels {folder_size(pyodide) / 2**20:.1f} MiB "
              f"(the interpreter {interpreter / 2**20:.1f} MiB, "
              f"the standard library {stdlib / 2**20:.1f} MiB)")
        total, parts = page_weight(out / "en" / f"{CHAPTER}.html")
        print(f"chapter page en/{CHAPTER}.html: {total / 1024:.0f} KiB in {len(parts)} files "
              "(JupyterLite loads only when a reader follows its link)")

        notebook = "en/lite/notebooks/index.html?path=smtp.ipynb"
        repl = "en/lite/repl/index.html?kernel=python&code=" + quote('print("ready")')
        handshake = "en/lite/repl/index.html?kernel=python&code=" + quote(HANDSHAKE_CODE.strip())
        results = in_chromium(out, [repl, notebook] * ROUNDS + [handshake])
        for label, path in (("stock REPL, print one line", repl), ("smtp notebook, Run All Cells", notebook)):
            runs = [r for r in results if r["path"] == path]
            failed = [r["failure"] for r in runs if "failure" in r]
            if failed:
                print(f"{label}: failed: {failed[0]}")
                continue
            times = sorted(r["first_output_s"] for r in runs)
            print(f"{label}: first output after {times[len(times) // 2]:.1f} s (median of {len(times)}: "
                  + ", ".join(f"{t:.1f}" for t in times) + ")")
            downloaded = {u for u in runs[0]["requests"]}
            print(f"  {len(downloaded)} requests, {len(runs[0]['refused'])} refused")
        last = results[-1]
        texts = [o["text"] for c in last["cells"] for o in c["outputs"]]
        print("STARTTLS in the browser:", " ".join(texts).strip() or last.get("failure"))


if __name__ == "__main__":
    main()
