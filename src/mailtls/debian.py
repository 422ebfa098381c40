"""Debian releases, and the Debian mirror that apt on this machine is configured with.

The project names no mirror: whatever builds a Debian root (the containers' base image, the
fresh-machine check) asks apt for the repositories it already uses, with apt's own parser
(``apt-get indextargets``), so both the one-line and the deb822 formats of sources.list work.
The same mirror serves every release, so a Debian 12 machine can build a Debian 13 root and
the other way round.
"""

from __future__ import annotations

import shutil
import subprocess

from mailtls.generations import GENERATIONS

#: Debian's release numbers and code names (https://www.debian.org/releases/): the lab's generations.
CODENAMES = {generation.debian: generation.codename for generation in GENERATIONS}


class NoDebianMirror(RuntimeError):
    """apt on this machine names no Debian repository to build a root from."""


def codename(release: int) -> str:
    """``"bookworm"`` for 12, ``"trixie"`` for 13; ``ValueError`` for a release not listed in CODENAMES."""
    try:
        return CODENAMES[release]
    except KeyError:
        raise ValueError(f"Debian {release} is not one of {', '.join(map(str, CODENAMES))}") from None


def apt_repositories() -> list[tuple[str, str]]:
    """Every (repository URI, suite) apt is configured with, in apt's order, e.g.
    ``("http://.../debian/", "bookworm-security")``.

    Raises NoDebianMirror when apt is not installed or answers with an error.
    """
    if shutil.which("apt-get") is None:
        raise NoDebianMirror("apt-get is not installed: this is not a Debian machine")
    done = subprocess.run(["apt-get", "indextargets", "--format", "$(REPO_URI)\t$(RELEASE)"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise NoDebianMirror(f"`apt-get indextargets` failed: {done.stderr.strip()}")
    found: list[tuple[str, str]] = []
    for line in done.stdout.splitlines():
        uri, _, suite = line.partition("\t")
        if uri and suite and (uri, suite) not in found:
            found.append((uri, suite))
    return found


def mirror(kind: str = "archive") -> str:
    """The URI of the Debian archive (``kind="archive"``: the suite that is a bare code name,
    such as ``bookworm``) or of its security updates (``kind="security"``: a ``*-security``
    suite) that apt uses here.

    Raises NoDebianMirror when apt names none, ValueError for another ``kind``.
    """
    if kind not in ("archive", "security"):
        raise ValueError(f"kind must be 'archive' or 'security', not {kind!r}")
    for uri, suite in apt_repositories():
        base, _, pocket = suite.partition("-")
        if base in CODENAMES.values() and (pocket == "security" if kind == "security" else not pocket):
            return uri
    raise NoDebianMirror(f"apt on this machine names no Debian {kind} repository "
                         f"(for {' or '.join(CODENAMES.values())}): add one to /etc/apt/sources.list.d/")
