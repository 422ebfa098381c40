"""Fetch what the in-browser notebooks need, once, into .cache/browser/ (``make browser-assets``).

The site serves its own Python for the browser, so that a notebook runs with no request to any
other site, even offline:

- the Pyodide core, from the npm registry (``npm pack pyodide@VERSION``), at the version that
  the installed jupyterlite-pyodide-kernel was made for;
- the wheels the kernel loads from Pyodide's ``pyodide-lock.json`` (IPython and its pure-Python
  dependencies, micropip), at the versions that file names, from PyPI;
- the wheels the kernel installs with piplite (``comm``) and those the simulated lab imports
  (tlslite-ng, ecdsa), from PyPI.

Only the package registries' own clients (npm, pip) are used. Run again, it fetches nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "browser"
KERNEL_NEEDS = ["micropip", "ipython", "jedi"]  # loaded from the lock file by the kernel
PIPLITE_NEEDS = ["comm"]  # installed by the kernel with piplite, which finds no other source
LAB_NEEDS = ["tlslite-ng", "ecdsa"]  # imported by mailtls.sim in the browser


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyodide_version() -> str:
    from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION

    return PYODIDE_VERSION


def fetch_pyodide(version: str) -> Path:
    """The npm package ``pyodide`` (the core: interpreter, standard library, lock file)."""
    folder = CACHE / f"pyodide-{version}"
    if (folder / "pyodide-lock.json").exists():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", f"pyodide@{version}", "--pack-destination", str(CACHE), "--silent"],
                   check=True, stdout=subprocess.DEVNULL)
    archive = CACHE / f"pyodide-{version}.tgz"
    staging = CACHE / "unpack"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # GNU tar (essential on Debian) rather than tarfile: tarfile's safe `filter="data"` needs
    # Python 3.11.4, and Debian 12 has 3.11.2. tar strips leading "/" and refuses "..".
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(staging), "--no-same-owner",
                    "--no-same-permissions"], check=True)
    shutil.rmtree(folder, ignore_errors=True)
    (staging / "package").rename(folder)
    shutil.rmtree(staging)
    archive.unlink()
    return folder


def lock_closure(lock: dict, names: list[str]) -> dict[str, dict]:
    """The lock's entries for ``names`` and everything they depend on."""
    packages = {normalise(k): v for k, v in lock["packages"].items()}
    found: dict[str, dict] = {}
    todo = [normalise(n) for n in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = packages[name]
        todo += [normalise(d) for d in packages[name]["depends"]]
    return found


def pip_download(requirements: list[str], python: str) -> None:
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [r for r in requirements if not any(wheels.glob(wheel_glob(r)))]
    if not missing:
        return
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", python, "--platform", "any", "--implementation", "py",
                    "--abi", "none", "--dest", str(wheels), *missing], check=True)


def wheel_glob(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '_', name)}-{version or '*'}-*.whl"


def main() -> int:
    if shutil.which("npm") is None:
        print("browser assets: npm is needed to fetch Pyodide (install Node.js with npm)", file=sys.stderr)
        return 1
    version = pyodide_version()
    pyodide = fetch_pyodide(version)
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())
    python = ".".join(lock["info"]["python"].split(".")[:2])
    entries = lock_closure(lock, KERNEL_NEEDS + ["six"])
    pip_download([f"{e['name']}=={e['version']}" for e in entries.values()] + PIPLITE_NEEDS + LAB_NEEDS,
                 python)
    print(f"browser assets: Pyodide {version} and {len(list((CACHE / 'wheels').glob('*.whl')))} wheels in "
          f"{CACHE.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
