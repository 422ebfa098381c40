"""``make notebooks`` (``python -m mailtls notebooks``): JupyterLab on the notebooks, next to the lab.

With the containers backend JupyterLab runs in a container on the lab network; with the native
backend, on this machine. Either way it answers on 127.0.0.1 with a token, opens the MyST
notebooks as notebooks, reaches the lab, and goes away on SIGTERM without stopping a lab it did
not start.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from helpers.cli import mailtls, start_mailtls
from helpers.labs import container_listing
from helpers.network import free_port

pytestmark = pytest.mark.lab


def start_notebooks(*options: str) -> subprocess.Popen:
    """``python -m mailtls notebooks OPTIONS``, its output on a pipe, as under a supervisor: without
    PYTHONUNBUFFERED, which a developer's machine may set and a fresh one does not."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return start_mailtls("notebooks", *options, env=env)


def read_token(server: subprocess.Popen, pattern: str, seconds: float, said: list[str]) -> str:
    """The token in the first output line that matches ``pattern``; fails after ``seconds`` without one."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([server.stdout], [], [], left)[0]:
            break
        line = server.stdout.readline()
        assert line, "the notebook server stopped:\n" + "".join(said)
        said.append(line)
        if match := re.search(pattern, line):
            return match[1]
    pytest.fail(f"no line matching {pattern!r} within {seconds:.0f} s:\n" + "".join(said))


def stop(server: subprocess.Popen) -> str:
    """SIGTERM, as a supervisor sends it; the rest of what the server printed until it ended."""
    server.send_signal(signal.SIGTERM)
    return server.communicate(timeout=60)[0]


def get(port: int, token: str, path: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_notebooks_open_in_jupyterlab_next_to_the_lab(lab) -> None:
    port = free_port()
    server = start_notebooks("--port", str(port))
    said: list[str] = []
    try:  # the first run builds the jupyter image
        token = read_token(server, rf"http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)", 600, said)
        for language in ("en", "es"):
            opened = get(port, token, f"/api/contents/{language}/smtp.md?type=notebook")
            assert opened["type"] == "notebook"
            code = [cell["source"] for cell in opened["content"]["cells"] if cell["cell_type"] == "code"]
            assert "lab = connect()" in code[0]
        assert "python3" in get(port, token, "/api/kernelspecs")["kernelspecs"]
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=10)  # no token, no entry
        if lab.backend_name == "containers":  # the container's Python reaches the lab by name, over TLS
            from mailtls.backends.containers import engine, engine_env

            check = ("import smtplib, ssl; from mailtls.lab import connect; lab = connect(); "
                     "s = smtplib.SMTP('mail.lab.test', 587, timeout=10); "
                     "s.starttls(context=ssl.create_default_context(cafile=lab.ca_file));"
                     " print(s.sock.version())")
            reached = subprocess.run([engine(), "exec", "mailtls-jupyter", "python", "-c", check],
                                     capture_output=True, text=True,
                                     env={**os.environ, **engine_env(engine())})
            assert reached.stdout.strip() == "TLSv1.3", reached.stderr
    finally:
        rest = stop(server)
    assert server.returncode == 0, "".join(said) + rest
    with socket.socket() as probe:  # JupyterLab is gone
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert lab.lab.endpoint("mail.lab.test", "smtp") and socket.create_connection(
        (lab.address("mail.lab.test"), 25), timeout=5), "the lab it did not start must still be up"
    if lab.backend_name == "containers":
        left = container_listing()
        assert "mailtls-jupyter" not in left


def test_a_port_in_use_is_a_clear_error_and_starts_nothing(lab) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = mailtls("notebooks", "--port", str(port), timeout=60)
    assert done.returncode == 1
    assert done.stderr == (f"error: port {port} on 127.0.0.1 is in use: choose another one "
                           "(`make notebooks NOTEBOOK_PORT=8890`, or --port)\n")


def test_notebooks_on_the_simulated_lab_need_no_lab() -> None:
    """``--backend sim``: JupyterLab alone, its kernels told to simulate the lab; nothing else starts."""
    port = free_port()
    server = start_notebooks("--port", str(port), "--backend", "sim")
    said: list[str] = []
    try:
        token = read_token(server, rf"on the simulated lab: http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)",
                           120, said)
        assert get(port, token, "/api/contents/en/smtp.md?type=notebook")["type"] == "notebook"
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True,
                                  text=True).stdout.split()
        environments = [open(f"/proc/{pid}/environ", "rb").read().split(b"\0") for pid in children]
        assert [b"MAILTLS_BACKEND=sim" in env for env in environments] == [True], \
            "kernels inherit the sim backend"
    finally:
        rest = stop(server)
    assert server.returncode == 0, "".join(said) + rest
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
