"""The built site in a browser: a quiet web server on 127.0.0.1, and Chromium with no network at all."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

from helpers.paths import TESTS

# Debian's Chromium, headless, as root, and silent: no update, sync or safe-browsing requests.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging each request, with the types JupyterLite's files need."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".whl": "application/octet-stream"}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on 127.0.0.1 on a free port, in a daemon thread; the server and its base URL.

    The caller stops it with ``shutdown()`` and ``server_close()``.
    """
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def offline_notebooks_command(python: str, site: Path, out: Path, paths: list[str]) -> list[str]:
    """The command that runs ``tests/browser_notebooks.py`` inside ``unshare -n`` (only a loopback).

    ``python`` runs the script; it serves ``site``, opens each of ``paths`` in Chromium, and
    writes its JSON report to ``out``. Not root: a user namespace too (``unshare -rn``).
    """
    namespace = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    script = (f"ip link set lo up 2>/dev/null || true; exec {python} {TESTS / 'browser_notebooks.py'} "
              f"{site} {out} " + " ".join(f"'{p}'" for p in paths))
    return [*namespace, "sh", "-c", script]
