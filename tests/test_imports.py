"""The package's import graph: no cycles, and a simulated lab that runs in the browser.

- The contracts in ``pyproject.toml`` (``[tool.importlinter]``), checked by import-linter: the
  simulated lab imports nothing that needs processes or a real lab (``mailtls.backends``,
  ``mailtls.cli``, ``subprocess``, ...), directly or through another module, and its own
  modules import each other without a cycle.
- No module of ``mailtls`` imports, directly or through others, a module that imports it back
  (imports inside functions count: they run too). The graph is grimp's, the one import-linter uses.
"""

from __future__ import annotations

import subprocess
import sys

import grimp
from importlinter import configuration
from importlinter.application.use_cases import lint_imports

from course import ROOT


def test_the_import_contracts_are_kept() -> None:
    """import-linter prints each contract, and for a broken one the chain of imports that breaks it."""
    configuration.configure()  # what its command line does first: the readers of pyproject.toml
    assert lint_imports(str(ROOT / "pyproject.toml"), cache_dir=None, no_logo=True), \
        "an import contract of pyproject.toml is broken (see the report above)"


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Each cycle once, as the modules along it from its smallest name back to that module."""
    cycles: dict[frozenset[str], list[str]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is None:
                continue
            loop = [importer, *back]  # importer -> imported -> ... -> importer
            start = loop.index(min(loop[:-1]))
            cycles.setdefault(frozenset(loop), loop[start:-1] + loop[:start + 1])
    return sorted(cycles.values())


def test_the_package_has_no_import_cycle() -> None:
    graph = grimp.build_graph("mailtls", cache_dir=None)
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_a_cycle_is_found() -> None:
    """The search itself: a graph with a cycle of three and one of two gives both, each once."""
    graph = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.e"), ("p.e", "p.d"),
                               ("p.a", "p.f")):
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph) == [["p.a", "p.b", "p.c", "p.a"], ["p.d", "p.e", "p.d"]]


def test_the_notebooks_module_needs_only_the_standard_library() -> None:
    """``mailtls.lab``, what a notebook imports, loads without the package's third-party dependencies.

    The notebooks' container (labs/images/jupyter) runs the project's src/ with JupyterLab and
    nothing else: no cryptography, ecdsa or tlslite-ng (those are for the lab and the simulation).
    """
    code = ("import sys\n"
            "for name in ('cryptography', 'ecdsa', 'tlslite'):\n"
            "    sys.modules[name] = None  # an import of it fails, as where it is not installed\n"
            "import mailtls.lab\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "src")
    assert done.returncode == 0, done.stderr
