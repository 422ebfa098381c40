"""Shared fixtures: the built site, the real programs the tests need, and CI's strictness.

With ``CI=true`` a test that lacks a component (Postfix, Dovecot, Chromium) fails instead of
being skipped: CI must run the real thing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from course import LANGUAGES, BuiltSite, build_site

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip the test when ``what`` is missing, or fail it under CI."""
    if condition:
        return
    message = f"missing: {what}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: components may not be skipped)")
    pytest.skip(message)


def require_program(name: str, hint: str) -> str:
    """The path of a program the test runs for real."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    require(path is not None, f"{name} ({hint})")
    return path  # type: ignore[return-value]


def require_dovecot_23(what: str) -> None:
    """Skip (fail under CI) when this machine's Dovecot is not the 2.3 that ``what`` needs."""
    from mailtls.backends.native import dovecot_generation_problem

    problem = dovecot_generation_problem()
    require(problem is None, f"Dovecot 2.3 for {what}: {problem}")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    """Both editions built once per run, warnings as errors, into a temporary folder."""
    return build_site(tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("doctrees"))


@pytest.fixture(scope="session")
def site(built: BuiltSite) -> Path:
    """The built site's folder; fails when an edition did not build at all."""
    for language in LANGUAGES:
        if not (built.root / language / "index.html").is_file():
            pytest.fail(f"the {language} edition did not build:\n{built.results[language].warnings}")
    return built.root


@pytest.fixture(scope="session", params=["native", "containers"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A lab on each backend in turn, up for all the tests that use it, started from a scratch
    copy of labs/ that tests may edit."""
    from mailtls import backends, runtime
    from mailtls.config import LabConfig
    from mailtls.lab import connect

    require_backend(request.param)
    if runtime.state(LabConfig()):
        pytest.fail("a lab is already up on this machine; stop it with `python -m mailtls lab down` first")
    labs = tmp_path_factory.mktemp(f"labs-{request.param}")
    shutil.copytree(Path(__file__).resolve().parent.parent / "labs", labs, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("wheels"))  # the jupyter image's wheelhouse, if made
    backend = backends.get(request.param, LabConfig(labs=labs))
    try:
        backend.up(on_progress=lambda message: None)
        yield LabUnderTest(connect(), labs, request.param, backend)
    finally:
        backend.down()
    assert_nothing_left(request.param)


def require_backend(name: str) -> None:
    """What a lab on this backend needs: root on Linux, and the servers' packages or a container engine."""
    import sys

    require(sys.platform == "linux" and os.geteuid() == 0, f"root on Linux (the {name} lab backend)")
    if name == "native":
        for program in ("postfix", "dovecot", "ip"):
            require_program(program, "Debian packages postfix, dovecot-core, iproute2")
        require_dovecot_23("the native lab")
    else:
        from mailtls.backends.containers import engine

        require(engine() is not None, "a container engine (Debian packages podman, netavark, aardvark-dns, runc)")


def assert_nothing_left(backend: str) -> None:
    """``lab down`` leaves no process, namespace, link, container or file; a second ``down`` says nothing."""
    import subprocess
    import sys

    from mailtls.backends import native
    from mailtls.config import LabConfig

    single = LabConfig()
    assert not single.runtime.exists()
    if backend == "native":
        assert not [n for n in native.namespaces() if n.startswith(single.namespace_prefix)]
        assert subprocess.run(["ip", "link", "show", single.bridge], capture_output=True).returncode != 0
        assert not list(Path("/etc/netns").glob(single.namespace_prefix + "*"))
        # Every lab process ran in a lab namespace: none may be left in another network namespace.
        own = os.readlink("/proc/self/ns/net")
        leftovers = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if os.readlink(proc / "ns/net") != own and "Z" not in (proc / "stat").read_text().split()[2]:
                    leftovers.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue  # gone meanwhile, or not ours to read
        assert not leftovers, leftovers
    else:
        from mailtls.backends.containers import engine, engine_env

        name = engine()
        listed = subprocess.run([name, "ps", "-a", "--filter", "label=io.podman.compose.project=mailtls",
                                 "--format", "{{.Names}}"], capture_output=True, text=True,
                                env={**os.environ, **engine_env(name)}).stdout
        assert listed.strip() == "", f"containers left: {listed}"
    again = subprocess.run([sys.executable, "-m", "mailtls", "lab", "down"], capture_output=True, text=True)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


class LabUnderTest:
    """The running lab as the tests use it: the notebooks' view, the files to edit, the backend."""

    def __init__(self, lab, labs: Path, backend_name: str, backend) -> None:
        self.lab = lab
        self.labs = labs
        self.backend_name = backend_name
        self.backend = backend

    def __getattr__(self, name: str):
        return getattr(self.lab, name)
