"""Whether something answers on a TCP port, and a port nothing uses."""

from __future__ import annotations

import socket


def answers(address: str, port: int, timeout: float = 2) -> bool:
    """Whether a TCP connection to ``address:port`` opens within ``timeout`` seconds (then closed at once)."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
