"""Shared fixtures: the built site, and a lab on each backend (see ``helpers`` for the rest)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from course import LANGUAGES, BuiltSite, build_site
from helpers.cli import mailtls
from helpers.labs import LAB_KINDS, container_listing, lab_kind, scratch_labs
from helpers.requirements import require_backend


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped with SIGTERM (a CI's time limit, ``kill``) ends as Ctrl-C does: the fixtures'
    teardowns run, so a lab that a test brought up goes down with it."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


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


@pytest.fixture(scope="session", params=LAB_KINDS)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A lab on each backend and generation in turn, up for all the tests that use it, started
    from a scratch copy of labs/ that tests may edit."""
    from mailtls import backends, generations, runtime
    from mailtls.config import LabConfig
    from mailtls.lab import connect

    backend_name, release = lab_kind(request.param)
    require_backend(backend_name)
    if runtime.state(LabConfig()):
        pytest.fail("a lab is already up on this machine; stop it with `python -m mailtls lab down` first")
    labs = scratch_labs(tmp_path_factory.mktemp(f"labs-{request.param}"))
    generation = generations.get(release) if release else None
    backend = backends.get(backend_name, LabConfig(labs=labs, generation=generation))
    try:
        backend.up(on_progress=lambda message: None)
        lab = LabUnderTest(connect(), labs, backend_name, backend)
        if generation is not None:
            assert lab.debian == generation.debian, f"asked for Debian {generation.debian}, got {lab.debian}"
        yield lab
    finally:
        backend.down()
    assert_nothing_left(backend_name)


def assert_nothing_left(backend: str) -> None:
    """``lab down`` leaves no process, namespace, link, container or file; a second ``down`` says nothing."""
    import subprocess

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
        listed = container_listing("--filter", "label=io.podman.compose.project=mailtls")
        assert listed.strip() == "", f"containers left: {listed}"
    again = mailtls("lab", "down")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


class LabUnderTest:
    """The running lab as the tests use it: the notebooks' view, the files to edit, the backend."""

    def __init__(self, lab, labs: Path, backend_name: str, backend) -> None:
        self.lab = lab
        self.labs = labs
        self.backend_name = backend_name
        self.backend = backend

    @property
    def generation(self):
        """The generation of the lab's servers (a ``mailtls.generations.Generation``)."""
        from mailtls import generations

        return generations.get(self.lab.debian)

    def config_file(self, host: str, name: str) -> Path:
        """The file ``name`` of ``host`` (``mail``) that this lab's generation runs, in the scratch labs/."""
        from mailtls.hosts import host as find_host

        return find_host(host).config_file(self.labs, name, self.generation)

    def __getattr__(self, name: str):
        return getattr(self.lab, name)
