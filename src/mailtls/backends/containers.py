"""The containers backend: each lab host in a container, with Podman (or Docker) and compose.

The containers run ``labs/compose.yaml``: one image (``labs/images/host``) for every host,
each host's files from ``labs/hosts/HOST/`` mounted read-only, and the lab's generated files
in ``/run/mailtls`` shared with this machine, so that status, logs, mailboxes and the wiretap's
transcript are where the native backend puts them too.

On a classroom host, student K's lab is the compose project ``mailtls-student-K``: the same
file, with its network (198.18.K.0/24), MAC addresses and published ports chosen by the
variables this module passes to compose.

No container registry is needed. The base image, ``debian:bookworm-slim``, is made here when
it is missing, with ``debootstrap`` from the Debian mirror that apt on this machine uses; the
image's own ``apt-get`` then installs Postfix and Dovecot from that same mirror.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailtls import debian
from mailtls.backends import LabError
from mailtls.backends.common import (
    LAB_FILES, NETWORK, RELOAD_SETTLE, already_up, labs_in_use, prepare_lab_files, remove_lab_files, run,
    save_state, server_versions, state, wait_until_listening, write_status,
)
from mailtls.hosts import HOSTS, LABS, STUDENT, Host
from mailtls.hosts import host as find_host

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/mailtls-host:latest"
PROJECT = "mailtls" if STUDENT is None else f"mailtls-student-{STUDENT}"
SOURCE = Path(__file__).resolve().parents[2]  # src/, mounted into the wiretap's container
READY_TIMEOUT = 90.0


def is_up() -> bool:
    return state().get("backend") == "containers"


# -- The engine -----------------------------------------------------------------------------------


def engine() -> str | None:
    """"podman" or "docker", whichever answers first; None if neither does."""
    for name in ("podman", "docker"):
        if shutil.which(name) and run([name, "info"], check=False, env=engine_env(name)).returncode == 0:
            return name
    return None


def engine_env(name: str) -> dict[str, str]:
    settings = {"MAILTLS_FILES": str(LAB_FILES), "MAILTLS_SRC": str(SOURCE), **lab_network_env()}
    if name == "podman":  # this project's Podman settings, leaving the machine's own alone
        settings["CONTAINERS_CONF"] = str(LABS / "containers" / "containers.conf")
    return settings


def lab_network_env() -> dict[str, str]:
    """What compose.yaml needs to know of this lab's network: 198.18.K.x, MAC 02:00:c6:12:K:x, ports 1K025..."""
    number = STUDENT or 0
    return {
        "MAILTLS_NET": f"{NETWORK.network_address}".rsplit(".", 1)[0],
        "MAILTLS_MAC": f"{number:02x}",
        "MAILTLS_PORTS": str(10 + number),
    }


def published_ports() -> dict[int, int]:
    """Where compose.yaml publishes mail.lab.test's ports on 127.0.0.1: {10025: 25, ...}, or 1K025... for student K."""
    prefix = lab_network_env()["MAILTLS_PORTS"]
    return {int(f"{prefix}{service.port:03d}"): service.port for service in find_host("mail").services}


def ports_free() -> None:
    """Refuse at once, and say which, when a port the lab publishes is taken on 127.0.0.1."""
    for published, port in published_ports().items():
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", published))
            except OSError:
                raise LabError(f"port 127.0.0.1:{published} is already taken: the lab publishes mail.lab.test's "
                               f"port {port} there. Stop what listens on it (`ss -ltnp 'sport = {published}'` "
                               "names it) and try again") from None


def compose_command(name: str) -> list[str]:
    if name == "docker":
        return ["docker", "compose"]
    beside_python = Path(sys.executable).parent / "podman-compose"
    found = str(beside_python) if beside_python.exists() else shutil.which("podman-compose")
    if not found:
        raise LabError("podman-compose is missing: `pip install podman-compose` (make does this in .venv)")
    return [found]


def compose(name: str, labs: Path, *args: str, check: bool = True,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run([*compose_command(name), "-f", str(labs / "compose.yaml"), "-p", PROJECT, *args],
               check=check, env={**engine_env(name), **(extra_env or {})})


def require_engine() -> str:
    name = engine()
    if name is None:
        raise LabError(
            "no container engine answers: install Podman (apt-get install podman netavark aardvark-dns "
            "iptables runc) or Docker, or use the native backend (--backend native, as root on Linux)"
        )
    if name == "podman" and os.geteuid() != 0:
        raise LabError("the lab needs rootful Podman (this machine reaches the containers' addresses): use sudo")
    return name


# -- Images ---------------------------------------------------------------------------------------


def ensure_base_image(name: str, on_progress) -> None:
    if run([name, "image", "inspect", BASE_IMAGE], check=False, env=engine_env(name)).returncode == 0:
        return
    if not shutil.which("debootstrap"):
        raise LabError(f"{BASE_IMAGE} is missing and debootstrap is not installed (apt-get install debootstrap)")
    on_progress(f"base image {BASE_IMAGE}: debootstrap from this machine's Debian mirror")
    with tempfile.TemporaryDirectory(prefix="mailtls-base-") as scratch:
        root = Path(scratch) / "root"
        try:
            archive = debian.mirror("archive")
        except debian.NoDebianMirror as error:
            raise LabError(f"{BASE_IMAGE} is missing and cannot be made: {error}") from None
        run(["debootstrap", "--variant=minbase", "bookworm", str(root), archive])
        for trimmed in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            for item in (root / trimmed).glob("*"):
                if item.is_dir():
                    shutil.rmtree(item)
                elif item.name != "lock":
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([name, "import", "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True,
                                  text=True, env={**os.environ, **engine_env(name)})
        tar.wait()
        if imported.returncode != 0:
            raise LabError(f"importing the base image failed:\n{imported.stderr}")


def context_digest(context: Path) -> str:
    """A fingerprint of an image's build context, stored as a label to know when to rebuild."""
    digest = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_image(name: str, image: str, context: Path, what: str, on_progress) -> None:
    """Build ``image`` from ``context`` unless the image was built from exactly these files."""
    wanted = context_digest(context)
    inspected = run([name, "image", "inspect", "--format", "{{index .Config.Labels \"mailtls.context\"}}", image],
                    check=False, env=engine_env(name))
    if inspected.returncode == 0 and inspected.stdout.strip() == wanted:
        return
    on_progress(f"image {image}: building ({what})")
    pull = ["--pull=never"] if name == "podman" else []  # FROM names the local base image
    run([name, "build", *pull, "--label", f"mailtls.context={wanted}", "-t", image, str(context)],
        env=engine_env(name))


# -- Up, down, reload -----------------------------------------------------------------------------


def up(labs: Path = LABS, on_progress=print) -> dict:
    """Bring every host up from the files in ``labs``; if anything fails, undo it all and say why."""
    if already_up("containers", down):
        return state()
    name = require_engine()
    ports_free()
    try:
        ensure_base_image(name, on_progress)
        build_image(name, IMAGE, labs / "images" / "host", "Postfix and Dovecot from Debian", on_progress)
        on_progress("lab files: CA, certificates, users")
        prepare_lab_files(labs, "containers")
        save_state(engine=name)
        on_progress(f"containers: {', '.join(h.name for h in HOSTS)}")
        compose(name, labs, "up", "-d")
        try:
            closed = wait_until_listening(READY_TIMEOUT)
        except LabError as error:
            said = compose(name, labs, "logs", check=False)
            raise LabError(f"{error}\n" + (said.stdout + said.stderr)[-3000:]) from None
        for port in closed:
            on_progress(f"not listening, as its files say: {port}")
        write_status(server_versions(lambda *command: compose(name, labs, "exec", "-T", "mail", *command).stdout))
    except BaseException:
        down()
        raise
    return state()


def down() -> None:
    """Remove the containers, their network and the lab's files; quiet when nothing is up."""
    name = state().get("engine") or engine()
    labs = Path(state().get("labs") or LABS)
    if name is not None:
        if STUDENT is None:  # the notebooks' JupyterLab, if a `make notebooks` was killed, would hold the network
            run([name, "rm", "--force", "mailtls-jupyter"], check=False, env=engine_env(name))
        compose(name, labs, "down", check=False)
    if is_up() or not state():
        remove_lab_files()


def reload() -> None:
    """Apply edited files under labs/ in every container; a file Postfix or Dovecot refuses is reported."""
    if not is_up():
        raise LabError("no containers lab is up: run `python -m mailtls lab up --backend containers` first")
    name, labs = state()["engine"], labs_in_use()

    def reload_host(lab_host: Host) -> None:
        done = compose(name, labs, "exec", "-T", lab_host.short, "mailtls-host", "reload", check=False)
        if done.returncode != 0:
            raise LabError(f"Postfix or Dovecot refuses the configuration of {lab_host.name} "
                           f"({lab_host.config_dir(labs)}):\n{(done.stderr + done.stdout).strip()}")

    with concurrent.futures.ThreadPoolExecutor() as pool:
        list(pool.map(reload_host, [h for h in HOSTS if h.postfix]))
    time.sleep(RELOAD_SETTLE)  # as natively: old smtpd processes go before anyone checks


def postfix_command(lab_host: Host, *command: str) -> subprocess.CompletedProcess:
    """Run a Postfix command (postsuper, postqueue, ...) on a host."""
    return compose(state()["engine"], labs_in_use(), "exec", "-T", lab_host.short, *command, check=False)
