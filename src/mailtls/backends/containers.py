"""The containers backend: each lab host in a container, with Podman (or Docker) and compose.

The containers run ``labs/compose.yaml``: one image (``labs/images/host``) for every host,
each host's files from ``labs/hosts/HOST/`` mounted read-only, and the lab's generated files
in ``/run/mailtls`` shared with this machine, so that status, logs, mailboxes and the wiretap's
transcript are where the native backend puts them too.

On a classroom host, student K's lab is the compose project ``mailtls-student-K``: the same
file, with its network (198.18.K.0/24), MAC addresses and published ports chosen by the
variables this module passes to compose.

The lab runs one generation of Debian's servers (``mailtls.generations``): Debian 13 by default,
or Debian 12 (``lab up --debian 12``). Each has its host image, ``localhost/mailtls-host:debian13``
(or ``:debian12``), built from ``labs/images/host`` on ``debian:trixie-slim`` (or
``debian:bookworm-slim``); compose.yaml picks it with ``MAILTLS_DEBIAN``.

No container registry is needed. A base image is made here when it is missing, with
``debootstrap`` from the Debian mirror that apt on this machine uses; the image's own ``apt-get``
then installs Postfix and Dovecot from that same mirror.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailtls import debian, runtime
from mailtls.backends.base import RELOAD_SETTLE, Backend, Progress
from mailtls.config import LabConfig
from mailtls.errors import ConfigurationRefused, LabError, NeedsRoot
from mailtls.generations import DEFAULT, Generation
from mailtls.hosts import HOSTS, MAIL, SHIPPED_LABS, Host
from mailtls.process import run

SOURCE = Path(__file__).resolve().parents[2]  # src/, mounted into the wiretap's container


# -- The engine -----------------------------------------------------------------------------------


def engine() -> str | None:
    """"podman" or "docker", whichever answers first; None if neither does."""
    for name in ("podman", "docker"):
        if shutil.which(name) and run([name, "info"], check=False, env=engine_env(name)).returncode == 0:
            return name
    return None


def engine_env(name: str, labs: Path = SHIPPED_LABS) -> dict[str, str]:
    """The environment for engine ``name``: with Podman, this project's settings (labs/containers/),
    leaving the machine's own alone."""
    if name == "podman":
        return {"CONTAINERS_CONF": str(labs / "containers" / "containers.conf")}
    return {}


def require_engine() -> str:
    """The engine to use; raises NeedsRoot when none answers or Podman is not rootful."""
    name = engine()
    if name is None:
        raise NeedsRoot(
            "no container engine answers: install Podman (apt-get install podman netavark aardvark-dns "
            "iptables runc) or Docker, or use the native backend (--backend native, as root on Linux)"
        )
    if name == "podman" and os.geteuid() != 0:
        raise NeedsRoot("the lab needs rootful Podman (this machine reaches the containers' addresses): "
                        "use sudo")
    return name


def compose_command(name: str) -> list[str]:
    if name == "docker":
        return ["docker", "compose"]
    beside_python = Path(sys.executable).parent / "podman-compose"
    found = str(beside_python) if beside_python.exists() else shutil.which("podman-compose")
    if not found:
        raise LabError("podman-compose is missing: `pip install podman-compose` (make does this in .venv)")
    return [found]


# -- Images ---------------------------------------------------------------------------------------


def image_exists(name: str, image: str, labs: Path = SHIPPED_LABS) -> bool:
    """Whether engine ``name`` has ``image`` locally."""
    return run([name, "image", "inspect", image], check=False, env=engine_env(name, labs)).returncode == 0


def ensure_base_image(name: str, generation: Generation, labs: Path, on_progress: Progress) -> None:
    """Make ``generation``'s Debian base image with debootstrap, from this machine's mirror, unless it
    exists. Raises LabError when debootstrap or a Debian mirror is missing, or the import fails."""
    image = generation.base_image
    if image_exists(name, image, labs):
        return
    if not shutil.which("debootstrap"):
        raise LabError(f"{image} is missing and debootstrap is not installed (apt-get install debootstrap)")
    on_progress(f"base image {image}: debootstrap from this machine's Debian mirror")
    with tempfile.TemporaryDirectory(prefix="mailtls-base-") as scratch:
        root = Path(scratch) / "root"
        try:
            archive = debian.mirror("archive")
        except debian.NoDebianMirror as error:
            raise LabError(f"{image} is missing and cannot be made: {error}") from None
        run(["debootstrap", "--variant=minbase", generation.codename, str(root), archive])
        for trimmed in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            for item in (root / trimmed).glob("*"):
                if item.is_dir():
                    shutil.rmtree(item)
                elif item.name != "lock":
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([name, "import", "-", image], stdin=tar.stdout, capture_output=True,
                                  text=True, env={**os.environ, **engine_env(name, labs)})
        tar.wait()
        if imported.returncode != 0:
            raise LabError(f"importing the base image {image} failed:\n{imported.stderr}")


def context_digest(context: Path, *more: str) -> str:
    """A fingerprint of an image's build context (and of ``more``, such as its base image), stored as
    a label to know when to rebuild."""
    digest = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for item in more:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:16]


def build_image(name: str, image: str, context: Path, what: str, on_progress: Progress, labs: Path,
                build_args: dict[str, str] | None = None) -> None:
    """Build ``image`` from ``context`` (with ``build_args``) unless it was built from exactly these."""
    build_args = build_args or {}
    wanted = context_digest(context, *(f"{k}={v}" for k, v in sorted(build_args.items())))
    inspected = run([name, "image", "inspect", "--format", "{{index .Config.Labels \"mailtls.context\"}}",
                     image], check=False, env=engine_env(name, labs))
    if inspected.returncode == 0 and inspected.stdout.strip() == wanted:
        return
    on_progress(f"image {image}: building ({what})")
    pull = ["--pull=never"] if name == "podman" else []  # FROM names the local base image
    arguments = [item for k, v in sorted(build_args.items()) for item in ("--build-arg", f"{k}={v}")]
    run([name, "build", *pull, *arguments, "--label", f"mailtls.context={wanted}", "-t", image, str(context)],
        env=engine_env(name, labs))


def ensure_host_image(name: str, generation: Generation, labs: Path = SHIPPED_LABS,
                      on_progress: Progress = print) -> str:
    """The lab hosts' image of ``generation`` (``localhost/mailtls-host:debian13``), made first when
    missing or built from other files: its base image with debootstrap, then ``labs/images/host``.
    Returns the image's name. Raises LabError (or CalledProcessError from the engine) on failure."""
    ensure_base_image(name, generation, labs, on_progress)
    build_image(name, generation.host_image, labs / "images" / "host",
                f"{generation.label}, from Debian's packages",
                on_progress, labs, {"BASE": generation.base_image})
    return generation.host_image


# -- The backend ----------------------------------------------------------------------------------


class ContainersBackend(Backend):
    """Each host in a container of the compose project ``labs/compose.yaml``, with Podman or Docker."""

    name = "containers"
    ready_timeout = 90.0

    def __init__(self, config: LabConfig) -> None:
        super().__init__(config)
        self._engine: str | None = None

    # -- compose -----------------------------------------------------------------------------

    def lab_network_env(self) -> dict[str, str]:
        """What compose.yaml needs to know of this lab's network: 198.18.K.x, MAC 02:00:c6:12:K:x,
        ports 1K025..."""
        number = self.config.student or 0
        return {
            "MAILTLS_NET": f"{self.config.network.network_address}".rsplit(".", 1)[0],
            "MAILTLS_MAC": f"{number:02x}",
            "MAILTLS_PORTS": str(10 + number),
        }

    def compose_env(self, name: str) -> dict[str, str]:
        """The variables compose.yaml reads, and the engine's settings."""
        return {"MAILTLS_FILES": str(self.config.runtime), "MAILTLS_SRC": str(SOURCE),
                "MAILTLS_DEBIAN": str(self.generation().debian), **self.lab_network_env(),
                **engine_env(name, self.config.labs)}

    def published_ports(self) -> dict[int, int]:
        """Where compose.yaml publishes mail.lab.test's ports on 127.0.0.1: {10025: 25, ...}, or 1K025...
        for student K."""
        prefix = self.lab_network_env()["MAILTLS_PORTS"]
        return {int(f"{prefix}{service.port:03d}"): service.port for service in MAIL.services}

    def ports_free(self) -> None:
        """Refuse at once, and say which, when a port the lab publishes is taken on 127.0.0.1."""
        for published, port in self.published_ports().items():
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", published))
                except OSError:
                    raise LabError(f"port 127.0.0.1:{published} is already taken: the lab publishes "
                                   f"mail.lab.test's port {port} there. Stop what listens on it "
                                   f"(`ss -ltnp 'sport = {published}'` names it) and try again") from None

    def engine_in_use(self) -> str | None:
        state = runtime.state(self.config)
        return (state.engine if state else None) or self._engine

    def labs_in_use(self) -> Path:
        state = runtime.state(self.config)
        return Path(state.labs) if state else self.config.labs

    def compose(self, *args: str, check: bool = True, name: str | None = None,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``compose ARGS`` on this lab's project, with the engine in use (or ``name``)."""
        name = name or self.engine_in_use()
        assert name is not None, "compose needs an engine"
        labs = self.labs_in_use()
        return run([*compose_command(name), "-f", str(labs / "compose.yaml"),
                    "-p", self.config.compose_project, *args],
                   check=check, env={**self.compose_env(name), **(extra_env or {})})

    # -- up ----------------------------------------------------------------------------------

    def preflight(self) -> None:
        self._engine = require_engine()
        self.ports_free()

    def engine_name(self) -> str | None:
        return self._engine

    def wanted_generation(self) -> Generation:
        return self.config.generation or DEFAULT

    def prepare(self, on_progress: Progress) -> None:
        assert self._engine is not None
        ensure_host_image(self._engine, self.generation(), self.config.labs, on_progress)

    def start(self, on_progress: Progress) -> None:
        on_progress(f"containers: {', '.join(h.name for h in HOSTS)}")
        self.compose("up", "-d")

    def why_not_ready(self) -> str:
        said = self.compose("logs", check=False)
        return "\n" + (said.stdout + said.stderr)[-3000:]

    def run_on_mail(self, *command: str) -> str:
        return self.compose("exec", "-T", "mail", *command).stdout

    # -- down, reload ------------------------------------------------------------------------

    def down(self) -> None:
        name = self.engine_in_use() or engine()
        if name is not None:
            # the notebooks' JupyterLab, if a `make notebooks` was killed, would hold the network
            if self.config.student is None:
                run([name, "rm", "--force", "mailtls-jupyter"], check=False,
                    env=engine_env(name, self.config.labs))
            self.compose("down", check=False, name=name)
        self.remove_files_if_ours()

    def reload(self) -> None:
        self.require_up()
        labs = self.labs_in_use()

        def reload_host(lab_host: Host) -> None:
            done = self.compose("exec", "-T", lab_host.short, "mailtls-host", "reload", check=False)
            if done.returncode != 0:
                raise ConfigurationRefused(f"Postfix or Dovecot refuses the configuration of {lab_host.name} "
                                           f"({lab_host.config_dir(labs)}, {self.generation().label}):\n"
                                           f"{(done.stderr + done.stdout).strip()}")

        with concurrent.futures.ThreadPoolExecutor() as pool:
            list(pool.map(reload_host, [h for h in HOSTS if h.postfix]))
        time.sleep(RELOAD_SETTLE)  # as natively: old smtpd processes go before anyone checks

    def postfix_command(self, lab_host: Host, *command: str) -> subprocess.CompletedProcess:
        return self.compose("exec", "-T", lab_host.short, *command, check=False)
