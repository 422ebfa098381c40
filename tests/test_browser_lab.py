"""Run in your browser: JupyterLite in the built site, self-hosted, with the simulated lab.

The browser tests run every notebook of both editions in Debian's Chromium, with the web
server and the browser inside ``unshare -n``: a network namespace with nothing but a loopback,
so a request to a CDN or to PyPI cannot succeed. They also refuse any request that leaves the
site and fail if there was one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest
from bs4 import BeautifulSoup

import reported_cases
from course import LANGUAGES, ROOT, notebook_names
from helpers.requirements import require, require_program
from helpers.web import offline_notebooks_command

NAMES = notebook_names()
LITE_SETTINGS = "@jupyterlite/pyodide-kernel-extension:kernel"
# What each notebook must show in the browser, beyond running without an error.
EXPECTED = {
    "smtp": ["protocol: TLSv1.3", "TLS_AES_256_GCM_SHA384", "SSLError WRONG_VERSION_NUMBER", "timed out"],
    "postfix-server": ["530, b'5.7.0 Must issue a STARTTLS command first'"],
    "postfix-client": ["TLS is required, but was not offered", "self-signed certificate",
                       "Trusted TLS connection established to mail.lab.test"],
    "certificates": ["18 self-signed certificate", "19 self-signed certificate in certificate chain",
                     "62 Hostname mismatch, certificate is not valid for 'smtp.example.org'."],
    "imap": ["LOGINDISABLED", "PRIVACYREQUIRED", "protocol: TLSv1.3"],
    "submission": ["530, b'5.7.0 Must issue a STARTTLS command first'",
                   "235, b'2.7.0 Authentication successful'",
                   "mitm.lab.test: TLSv1.3, verify_mode=CERT_NONE, check_hostname=False,"
                   " verified certificate: {}",
                   "selfsigned.lab.test with lab.ssl_context(): 18 self-signed certificate",
                   "mitm.lab.test with lab.ssl_context(): 62 Hostname mismatch, certificate is not valid for "
                   "'mitm.lab.test'."],
    "attacks": ["bytes of TLS]", "STARTTLS extension not supported by server"],
}


def lite_config(site: Path, language: str) -> dict:
    return json.loads((site / language / "lite" / "jupyter-lite.json").read_text())["jupyter-config-data"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_jupyterlite_serves_its_own_python(site: Path, language: str) -> None:
    """Pyodide and every wheel it is told to load are files of this site, with the right hashes."""
    config = lite_config(site, language)
    kernel = config["litePluginSettings"][LITE_SETTINGS]
    assert kernel["pyodideUrl"] == "./static/pyodide/pyodide.mjs"
    assert kernel["disablePyPIFallback"] is True
    assert kernel["loadPyodideOptions"]["packages"] == ["mailtls"]
    assert config["contentsStorageDrivers"] == ["memoryStorageDriver"], \
        "a notebook must open fresh from the site"
    pyodide = site / language / "lite" / "static" / "pyodide"
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())["packages"]
    for name in ("mailtls", "tlslite-ng", "ecdsa", "six", "ipython", "micropip", "jedi", "prompt-toolkit"):
        wheel = pyodide / lock[name]["file_name"]
        assert wheel.is_file(), f"{name}: {wheel.name} is not served"
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() == lock[name]["sha256"], name
    assert list((site / language / "lite" / "pypi").glob("comm-*.whl")), "piplite installs comm from here"
    assert not list((ROOT / "docs").rglob(".jupyterlite.doit.db")), "a stale doit database drops pyodideUrl"


def test_the_browser_lab_runs_the_configuration_files_of_labs(site: Path) -> None:
    """One source of truth: the wheel carries labs/hosts byte for byte."""
    pyodide = site / "en" / "lite" / "static" / "pyodide"
    with zipfile.ZipFile(next(pyodide.glob("mailtls-*.whl"))) as wheel:
        packaged = {n.removeprefix("mailtls/_labs/hosts/"): wheel.read(n) for n in wheel.namelist()
                    if n.startswith("mailtls/_labs/hosts/")}
    originals = {p.relative_to(ROOT / "labs" / "hosts").as_posix(): p.read_bytes()
                 for p in (ROOT / "labs" / "hosts").rglob("*") if p.is_file()}
    assert packaged == originals


@pytest.mark.parametrize("language", LANGUAGES)
def test_chapters_open_their_notebooks_in_the_browser(site: Path, language: str) -> None:
    """Each chapter's "run in your browser" link opens one of this edition's notebooks in JupyterLite."""
    contents = json.loads((site / language / "lite" / "api" / "contents" / "all.json").read_text())
    served = {item["name"] for item in contents["content"]}
    assert served == {f"{name}.ipynb" for name in NAMES}
    linked = set()
    for page in (site / language).glob("*/index.html"):
        for link in BeautifulSoup(page.read_text(), "html.parser").select("a.run-in-browser"):
            target = urlparse(link["href"])
            assert (page.parent / target.path).resolve() \
                == (site / language / "lite/notebooks/index.html").resolve()
            assert link["target"] == "_blank"
            linked.add(parse_qs(target.query)["path"][0])
    assert linked == served, "every notebook is reachable from its chapter"
    for name in NAMES:
        note = BeautifulSoup((site / language / "notebooks" / f"{name}.html").read_text(), "html.parser")
        assert note.select_one("article .admonition.note a.run-in-browser"), \
            f"{name}: no run link on its page"


def run_in_chromium(site: Path, paths: list[str], out: Path) -> list[dict]:
    """tests/browser_notebooks.py in a network namespace with only a loopback."""
    require_program("chromium", "Debian package chromium")
    require(shutil.which("unshare") is not None, "unshare (Debian package util-linux)")
    done = subprocess.run(offline_notebooks_command(sys.executable, site, out, paths), capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.browser
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_notebook_runs_in_the_browser(site: Path, language: str, tmp_path: Path) -> None:
    paths = [f"{language}/lite/notebooks/index.html?path={name}.ipynb" for name in NAMES]
    results = run_in_chromium(site, paths, tmp_path / "results.json")
    for name, result in zip(NAMES, results, strict=False):
        assert "failure" not in result, f"{name}: {result.get('failure')}"
        texts = [o["text"] for cell in result["cells"] for o in cell["outputs"]]
        problems = [o["text"][-1500:] for cell in result["cells"] for o in cell["outputs"]
                    if "error" in o["mime"] or "stderr" in o["mime"]]
        assert not problems, f"{name}: {problems}"
        prompts = [cell["prompt"] for cell in result["cells"] if cell["prompt"].strip()]
        assert prompts and all("[ ]" not in p and "*" not in p for p in prompts), f"{name}: {prompts}"
        assert texts[0].startswith("lab on the sim backend"), f"{name}: {texts[0]!r}"
        for expected in EXPECTED[name]:
            assert any(expected in text for text in texts), f"{name}: no {expected!r} in the outputs"
        assert not result["refused"], f"{name}: requests left the site: {result['refused'][:5]}"
        assert all(url.startswith(("http://127.0.0.1:", "data:", "blob:")) for url in result["requests"])


@pytest.mark.browser
def test_a_notebook_opens_fresh_after_a_run(site: Path, tmp_path: Path) -> None:
    """Outputs and edits live in memory only: opening the notebook again shows the site's copy."""
    path = "en/lite/notebooks/index.html?path=submission.ipynb"
    first, again = run_in_chromium(site, [path, "fresh:" + path], tmp_path / "results.json")
    assert any(cell["outputs"] for cell in first["cells"])
    assert "failure" not in again, again.get("failure")
    assert again["cells"] and not any(cell["outputs"] for cell in again["cells"])


@pytest.mark.browser
def test_the_reported_cases_behave_in_the_browser_as_on_the_real_lab(site: Path, tmp_path: Path) -> None:
    """The five configurations and clients of ``tests/reported_cases.py``, in Pyodide in Chromium
    (tlslite-ng, the browser's ``ssl`` stub): the real lab's outcomes."""
    code = (ROOT / "tests" / "reported_cases.py").read_text()
    [result] = run_in_chromium(site, ["en/lite/repl/index.html?kernel=python&code=" + quote(code)],
                               tmp_path / "results.json")
    assert "failure" not in result, result.get("failure")
    texts = [o["text"] for cell in result["cells"] for o in cell["outputs"]]
    assert not result["errors"], result["errors"]
    reported = next((t for t in texts if "REPORTED " in t), None)
    assert reported is not None, texts
    assert json.loads(reported.partition("REPORTED ")[2].strip()) == reported_cases.EXPECTED
