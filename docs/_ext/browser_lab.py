"""Run in your browser: JupyterLite in each edition, with its own Pyodide and the simulated lab.

jupyterlite-sphinx builds JupyterLite into ``lite/`` of the edition, with that edition's
notebooks as fresh ``.ipynb`` files (no outputs). This extension prepares what that build reads,
in ``_build/jupyterlite/LANG/`` (outside the Sphinx sources):

- ``static/pyodide/``: the Pyodide core and the wheels from ``make browser-assets``
  (``tools/browser_assets.py``), plus this project's own wheel, built from ``pyproject.toml``
  with ``pip wheel`` (``mailtls``, with the ``labs/hosts`` files it simulates as package data).
  ``pyodide-lock.json`` names and hashes the files served here: the ``pyodide-lock`` package adds
  the wheels Pyodide does not ship, with the dependencies their metadata declare. JupyterLite's
  Pyodide add-on copies the folder and points ``pyodideUrl`` at it.
- ``pypi/``: the wheels the kernel installs with piplite (``comm``).
- ``jupyter-lite.json``: no PyPI fallback, ``mailtls`` loaded with the kernel, and memory-only
  storage, so a notebook always opens fresh from the site.

The chapters' "run in your browser" links are made by ``notebook_pages`` with :func:`lite_url`.
``mailtls_jupyterlite = False`` (``-D mailtls_jupyterlite=0``) leaves JupyterLite out: faster
builds for tests that do not need it, and for ``make livehtml``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / ".cache" / "browser"
LITE = "lite"  # where jupyterlite-sphinx puts JupyterLite in the edition
PYODIDE_FILES = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "package.json"]
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"


def lite_url(app: Sphinx, docname: str, notebook: str) -> str | None:
    """The link from a page to a notebook opened in JupyterLite, or None without JupyterLite."""
    if not app.config.mailtls_jupyterlite:
        return None
    return "../" * docname.count("/") + f"{LITE}/notebooks/index.html?path={notebook}.ipynb"


def lite_dir(app: Sphinx) -> Path:
    return Path(app.outdir).parent.parent / "jupyterlite" / app.config.language


def configure(app: Sphinx, config: Config) -> None:
    """Point jupyterlite-sphinx at folders outside the sources (it empties its contents folder)."""
    folder = Path(app.outdir).parent.parent / "jupyterlite" / config.language
    config.jupyterlite_dir = str(folder)
    config.jupyterlite_content_dir = str(folder.parent / f"contents-{config.language}")
    config.jupyterlite_contents = []
    config.jupyterlite_bind_ipynb_suffix = False  # the notebooks are MyST Markdown, read by MyST-NB


def prepare(app: Sphinx) -> None:
    if not (ASSETS / "wheels").is_dir():
        raise ExtensionError(
            "the browser's Python is missing: run `make browser-assets` (tools/browser_assets.py)"
        )
    folder = lite_dir(app)
    shutil.rmtree(folder, ignore_errors=True)
    (Path(app.srcdir) / ".jupyterlite.doit.db").unlink(missing_ok=True)  # a stale one drops pyodideUrl
    pyodide = folder / "static" / "pyodide"
    pyodide.mkdir(parents=True)
    from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION  # the version its kernel was made for

    core = ASSETS / f"pyodide-{PYODIDE_VERSION}"
    if not core.is_dir():
        raise ExtensionError(f"Pyodide {PYODIDE_VERSION} is missing: run `make browser-assets`")
    for name in PYODIDE_FILES:
        shutil.copyfile(core / name, pyodide / name)
    wheels = []
    for wheel in (ASSETS / "wheels").glob("*.whl"):
        if wheel.name.startswith("comm-"):
            (folder / "pypi").mkdir(exist_ok=True)
            shutil.copyfile(wheel, folder / "pypi" / wheel.name)
            continue
        shutil.copyfile(wheel, pyodide / wheel.name)
        wheels.append(pyodide / wheel.name)
    wheels.append(build_mailtls_wheel(pyodide))
    write_lock(core / "pyodide-lock.json", PYODIDE_VERSION, wheels, pyodide / "pyodide-lock.json")
    settings = {
        "disablePyPIFallback": True,
        "loadPyodideOptions": {"packages": ["mailtls"]},
    }
    (folder / "jupyter-lite.json").write_text(json.dumps({
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            "appName": "Postfix, Dovecot and TLS",
            "enableMemoryStorage": True,
            "contentsStorageDrivers": ["memoryStorageDriver"],
            "settingsStorageDrivers": ["memoryStorageDriver"],
            "workspacesStorageDrivers": ["memoryStorageDriver"],
            "litePluginSettings": {KERNEL_PLUGIN: settings},
            # Every cell stays in the page, so a reader's browser search (and the tests) sees all outputs.
            "settingsOverrides": {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}},
        },
    }, indent=2))
    (folder / "jupyter_lite_config.json").write_text(json.dumps({"LiteBuildConfig": {"no_sourcemaps": True}}))
    write_notebooks(app, Path(app.config.jupyterlite_content_dir))


def write_lock(core: Path, version: str, wheels: list[Path], target: Path) -> None:
    """Pyodide's lock file ``core``, told about ``wheels`` (all in ``target``'s folder), as ``target``.

    A wheel Pyodide ships (IPython and the rest of the kernel's) keeps its entry, with the hash of
    the file served here; the others (``mailtls``, tlslite-ng, ecdsa) get new entries from their
    metadata, dependencies included, by ``pyodide_lock.utils.add_wheels_to_spec``. Raises
    ``ExtensionError`` if a shipped wheel's file name is not the one the lock file names.
    """
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from pyodide_lock import PyodideLockSpec
    from pyodide_lock.utils import add_wheels_to_spec, update_package_sha256

    data = json.loads(core.read_text())
    # pyodide-lock 0.1 (the last for Python 3.11) requires the Pyodide version here, which Pyodide's
    # own lock files no longer carry; 0.2 accepts it and leaves it out of what it writes.
    data["info"].setdefault("version", version)
    target.write_text(json.dumps(data))
    lock = PyodideLockSpec.from_json(target)
    new = []
    for wheel in wheels:
        entry = lock.packages.get(canonicalize_name(parse_wheel_filename(wheel.name)[0]))
        if entry is None:
            new.append(wheel)
        elif entry.file_name != wheel.name:
            raise ExtensionError(f"Pyodide {version} names {entry.file_name}, not {wheel.name}")
        else:
            update_package_sha256(entry, wheel)
    add_wheels_to_spec(lock, new, base_path=target.parent).to_json(target)


def build_mailtls_wheel(folder: Path) -> Path:
    """This project's wheel, built from ``pyproject.toml`` by ``pip wheel`` into ``folder``.

    The build backend (hatchling, from the docs dependencies: no download) puts ``labs/hosts`` in
    it as ``mailtls/_labs/hosts``. Raises ``ExtensionError`` with pip's output if pip fails.
    """
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                   "--wheel-dir", scratch, str(ROOT)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise ExtensionError(f"pip could not build the mailtls wheel:\n{done.stdout}{done.stderr}")
        (built,) = Path(scratch).glob("mailtls-*.whl")
        return Path(shutil.copy(built, folder))


def write_notebooks(app: Sphinx, target: Path) -> None:
    """This edition's notebooks as ``.ipynb`` without outputs: what a reader opens in JupyterLite."""
    import jupytext
    import nbformat

    target.mkdir(parents=True, exist_ok=True)
    for source in sorted((Path(app.srcdir) / "notebooks").glob("*.md")):
        notebook = jupytext.reads(source.read_text(), fmt="md:myst")
        if "kernelspec" not in notebook.metadata:
            continue  # a plain page (the index, what the simulated lab simplifies)
        notebook.metadata.pop("jupytext", None)
        notebook.metadata["kernelspec"] = {
            "name": "python",
            "display_name": "Python (Pyodide)",
            "language": "python",
        }
        nbformat.write(notebook, target / f"{source.stem}.ipynb")


def check(app: Sphinx, exception: Exception | None) -> None:
    """After jupyterlite-sphinx: no doit database left in the sources, and the local Pyodide used."""
    (Path(app.srcdir) / ".jupyterlite.doit.db").unlink(missing_ok=True)
    if exception is not None or app.builder.format != "html":
        return
    config = json.loads((Path(app.outdir) / LITE / "jupyter-lite.json").read_text())
    settings = config["jupyter-config-data"]["litePluginSettings"][KERNEL_PLUGIN]
    if settings.get("pyodideUrl") != "./static/pyodide/pyodide.mjs":
        raise ExtensionError(
            f"JupyterLite would load Pyodide from {settings.get('pyodideUrl')!r}, not from this site"
        )


def is_jupyterlite_sphinx_asset(name: str) -> bool:
    return "jupyterlite_sphinx" in name or name.startswith(("http:", "https:"))


def setup(app: Sphinx) -> dict[str, object]:
    app.add_config_value("mailtls_jupyterlite", True, "env", types=[bool],
                         description='JupyterLite in each edition, for the "run in your browser" links')
    # Sphinx reads a config value when asked (conf.py, then -D), so it is known here already.
    if app.config.mailtls_jupyterlite:
        app.setup_extension("jupyterlite_sphinx")
        # Its directives are not used here, so its files stay off the pages: they would weigh on every
        # page, and one is a stylesheet from another site (a web font), which an offline site must not load.
        app.registry.css_files = [f for f in app.registry.css_files if not is_jupyterlite_sphinx_asset(f[0])]
        app.registry.js_files = [
            f for f in app.registry.js_files if not is_jupyterlite_sphinx_asset(f[0] or "")
        ]
        app.connect("config-inited", configure, priority=400)  # before jupyterlite-sphinx reads them
        app.connect("builder-inited", prepare)
        app.connect("build-finished", check, priority=900)  # after jupyterlite-sphinx's build
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
