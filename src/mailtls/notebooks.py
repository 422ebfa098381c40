"""``python -m mailtls notebooks``: JupyterLab on the course's notebooks, with a lab running.

``make notebooks`` runs this. It brings a lab up if none is (and takes it down again at the
end), then starts JupyterLab where it can reach the lab:

- with the **containers** backend, in the ``jupyter`` service of ``labs/compose.yaml``, a
  container on the lab's network. Its Python packages come from a wheelhouse that this
  machine's pip fills (``labs/images/jupyter/wheels/``), so the image build fetches nothing;
- with the **native** backend, on this machine, from this virtual environment.

Either way JupyterLab listens on 127.0.0.1 only, with a new token each time, and serves
``notebooks/``. Jupytext opens the MyST Markdown files there as notebooks. Ctrl-C stops it.
"""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from mailtls import backends, runtime
from mailtls.backends import containers
from mailtls.config import LabConfig
from mailtls.errors import LabError
from mailtls.generations import BOOKWORM
from mailtls.hosts import SHIPPED_LABS
from mailtls.polling import WaitTimeout, wait_until
from mailtls.process import run

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
IMAGE = "localhost/mailtls-jupyter:latest"
# The image is built on Debian 12 whichever generation the lab runs: it only runs JupyterLab, and
# its wheels are fetched for this Python.
IMAGE_BASE = BOOKWORM
IMAGE_PYTHON = "3.11.2"  # python3 in Debian 12, which the image is built from
MANYLINUX_TAGS = ("manylinux_2_36", "manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014",
                  "manylinux_2_5", "manylinux1")  # what Debian 12's glibc 2.36 runs
CONTAINER = "mailtls-jupyter"
READY_TIMEOUT = 90.0


def serve(config: LabConfig, port: int = 8888, backend_name: str | None = None,
          on_progress: Callable[[str], None] = print) -> None:
    """Run JupyterLab against ``config``'s lab until Ctrl-C or SIGTERM; start and stop a lab if none is up.

    ``port`` is on 127.0.0.1; ``backend_name`` ``sim`` runs the simulated lab in each kernel (of
    ``config.generation``, by default Debian 13).
    Raises LabError when the port is taken or JupyterLab does not start.
    """
    require_free_port(port)
    signal.signal(signal.SIGTERM, stop_on_sigterm)  # so that `kill PID` cleans up as Ctrl-C does
    if backend_name == "sim":  # no servers to start: each kernel simulates the lab (mailtls.sim)
        token = secrets.token_hex(16)
        kernel_env = {"MAILTLS_BACKEND": "sim"}
        if config.generation is not None:  # the simulation's generation (mailtls.lab.connect reads it)
            kernel_env["MAILTLS_SIM_DEBIAN"] = str(config.generation.debian)
        with LocalJupyter(port, token, kernel_env) as server:
            wait_until_ready(port, token, server.alive)
            on_progress(f"JupyterLab is ready, on the simulated lab: http://127.0.0.1:{port}/lab?token={token}")
            on_progress("Press Ctrl-C to stop it.")
            wait_for_interrupt()
        return
    state = runtime.state(config)
    running = state.backend if state else None
    if running and backend_name and running != backend_name:
        raise LabError(f"a {running} lab is already up: use it, or stop it first")
    backend = backends.get(running or backends.choose(backend_name), config)
    started_lab = running is None
    if started_lab:
        on_progress("starting a lab for the notebooks")
        backend.up(on_progress=lambda message: on_progress(f"  {message}"))
    token = secrets.token_hex(16)
    try:
        server = (ContainerJupyter(backend, port, token, on_progress)
                  if isinstance(backend, containers.ContainersBackend) else LocalJupyter(port, token))
        with server:
            wait_until_ready(port, token, server.alive)
            on_progress(f"JupyterLab is ready: http://127.0.0.1:{port}/lab?token={token}")
            on_progress("Press Ctrl-C to stop it" + (" and the lab." if started_lab else "."))
            wait_for_interrupt()
    finally:
        if started_lab:
            on_progress("stopping the lab")
            backend.down()


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def require_free_port(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise LabError(f"port {port} on 127.0.0.1 is in use: choose another one "
                           f"(`make notebooks NOTEBOOK_PORT=8890`, or --port)") from None


def wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def wait_until_ready(port: int, token: str, alive: Callable[[], bool]) -> None:
    """Wait until JupyterLab answers on 127.0.0.1:``port``; LabError if it stops or takes READY_TIMEOUT s."""
    def answers() -> bool:
        if not alive():
            raise LabError("JupyterLab stopped while starting; its messages are above")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        wait_until(answers, READY_TIMEOUT, "JupyterLab's API", interval=0.5)
    except WaitTimeout:
        raise LabError(f"JupyterLab did not answer on 127.0.0.1:{port} "
                       f"within {READY_TIMEOUT:.0f} s") from None


def jupyter_arguments(port: int, root_dir: Path) -> list[str]:
    """The options both ways share (the token comes from JUPYTER_TOKEN)."""
    return ["lab", "--no-browser", "--allow-root", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root_dir}"]


# -- On this machine (native backend) ---------------------------------------------------------------


class LocalJupyter:
    """JupyterLab from this virtual environment, as a child process stopped by its PID."""

    def __init__(self, port: int, token: str, environment: dict[str, str] | None = None) -> None:
        self.port, self.token = port, token
        self.environment = environment or {}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> LocalJupyter:
        try:
            import jupyterlab  # noqa: F401
            import jupytext  # noqa: F401
        except ImportError:
            raise LabError("JupyterLab is not installed here: `make notebooks` installs it "
                           "(pip install --group notebooks)") from None
        install_settings(Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings")
        command = [sys.executable, "-m", "jupyter", *jupyter_arguments(self.port, NOTEBOOKS),
                   "--ServerApp.ip=127.0.0.1"]
        self.process = subprocess.Popen(command,
                                        env={**os.environ, **self.environment, "JUPYTER_TOKEN": self.token},
                                        stdin=subprocess.DEVNULL)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def install_settings(settings_dir: Path) -> None:
    """JupyterLab's overrides: open .md notebooks with Jupytext (one file for both ways)."""
    settings_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIPPED_LABS / "images" / "jupyter" / "overrides.json", settings_dir / "overrides.json")


# -- In a container on the lab network (containers backend) -------------------------------------


class ContainerJupyter:
    """The ``jupyter`` service of labs/compose.yaml, removed again on the way out."""

    def __init__(self, backend: containers.ContainersBackend, port: int, token: str,
                 on_progress: Callable[[str], None]) -> None:
        self.backend, self.port, self.token, self.on_progress = backend, port, token, on_progress

    def __enter__(self) -> ContainerJupyter:
        engine = self.backend.engine_in_use()
        assert engine is not None
        self.engine, self.labs = engine, self.backend.labs_in_use()
        context = self.labs / "images" / "jupyter"
        fill_wheelhouse(context, self.on_progress)
        containers.ensure_base_image(self.engine, IMAGE_BASE, self.labs, self.on_progress)  # FROM it
        containers.build_image(self.engine, IMAGE, context, "JupyterLab from the wheelhouse",
                               self.on_progress, self.labs)
        self.env = {"MAILTLS_JUPYTER_TOKEN": self.token, "MAILTLS_JUPYTER_PORT": str(self.port),
                    "MAILTLS_NOTEBOOK_DIR": str(NOTEBOOKS)}
        self.remove()  # one left behind by a run that was killed
        self.on_progress(f"container {CONTAINER}: JupyterLab on the lab network")
        self.backend.compose("--profile", "notebooks", "up", "-d", "--no-deps", "jupyter", extra_env=self.env)
        return self

    def alive(self) -> bool:
        inspected = run([self.engine, "inspect", "--format", "{{.State.Running}}", CONTAINER],
                        check=False, env=containers.engine_env(self.engine, self.labs))
        return inspected.stdout.strip() == "true"

    def remove(self) -> None:
        run([self.engine, "rm", "--force", CONTAINER], check=False,
            env=containers.engine_env(self.engine, self.labs))

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def fill_wheelhouse(context: Path, on_progress: Callable[[str], None]) -> None:
    """Wheels of the `notebooks` dependency group, fetched by this machine's pip, into the image's
    ``context``."""
    wheels = context / "wheels"
    marker = wheels / "requirements.txt"
    wanted = notebook_requirements()
    if marker.exists() and marker.read_text() == wanted:
        return
    on_progress("wheelhouse for the jupyter image: pip download (from this machine's package index)")
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    (wheels / "requirements.in").write_text(wanted)
    machine = platform.machine()
    # Wheels for the image's Python (Debian 12's 3.11.2) and architecture, whatever Python runs here.
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels),
                           "--only-binary=:all:", "--python-version", IMAGE_PYTHON,
                           *[f"--platform={tag}_{machine}" for tag in MANYLINUX_TAGS],
                           "--requirement", str(wheels / "requirements.in")], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(wheels, ignore_errors=True)
        raise LabError(f"pip could not make the wheels for the jupyter image:\n{done.stderr[-3000:]}")
    marker.write_text(wanted)


def notebook_requirements() -> str:
    """The `notebooks` group of pyproject.toml, one requirement per line."""
    import tomllib

    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    return "".join(f"{requirement}\n" for requirement in groups["notebooks"])
