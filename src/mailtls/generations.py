"""The two generations of Debian's mail servers the lab runs, and where each one's files are.

A *generation* is a Debian stable release with the Postfix and Dovecot it ships:

=========  ==========  =======  =======  =====================================
Debian     code name   Postfix  Dovecot  what changed for the course
=========  ==========  =======  =======  =====================================
13         trixie      3.10     2.4      Dovecot's configuration language
12         bookworm    3.7      2.3      (the lab's first generation)
=========  ==========  =======  =======  =====================================

Sources: https://www.debian.org/releases/ (release numbers and code names); the versions are
those of the packages, ``postconf -d -h mail_version`` and ``dovecot --version``.

A lab host's files are in ``labs/hosts/HOST/``. A file that differs between generations is in
``labs/hosts/HOST/debianNN/`` instead, one literal copy for each generation: mail.lab.test's
``dovecot.conf`` (2.4 refuses 2.3's settings and the other way round) and its ``main.cf``
(Debian 13 writes ``compatibility_level = 3.9`` and the banner ``ESMTP Postfix (Debian)``,
Debian 12 wrote 3.6 and ``(Debian/GNU)``). ``host_file`` is that
rule; every reader of the hosts' files (both backends, the containers' entrypoint, the
simulated lab, the exercises) goes through it. Standard library only: the simulated lab runs
it in the browser and the containers run it with Debian's python3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailtls.errors import LabError


class UnknownGeneration(LabError):
    """A Debian release the lab has no files for (``--debian 14``), or a machine that is not Debian."""


@dataclass(frozen=True)
class Generation:
    """One Debian release and the versions of its mail servers (major.minor, as strings)."""

    debian: int  # 13
    codename: str  # "trixie"
    postfix: str  # "3.10"
    dovecot: str  # "2.4"

    @property
    def folder(self) -> str:
        """The folder of this generation's own files under a host's folder: ``debian13``."""
        return f"debian{self.debian}"

    @property
    def label(self) -> str:
        """``Debian 13 (Postfix 3.10, Dovecot 2.4)``: how messages and pages name it."""
        return f"Debian {self.debian} (Postfix {self.postfix}, Dovecot {self.dovecot})"

    @property
    def base_image(self) -> str:
        """The Debian image the lab's host image starts from, made locally with debootstrap."""
        return f"docker.io/library/debian:{self.codename}-slim"

    @property
    def host_image(self) -> str:
        """The image of every lab host of this generation (labs/images/host on ``base_image``)."""
        return f"localhost/mailtls-host:debian{self.debian}"


TRIXIE = Generation(13, "trixie", "3.10", "2.4")
BOOKWORM = Generation(12, "bookworm", "3.7", "2.3")
#: Every generation, newest first; the first is the default (today's Debian stable).
GENERATIONS: tuple[Generation, ...] = (TRIXIE, BOOKWORM)
DEFAULT = TRIXIE


def get(debian: int | str) -> Generation:
    """The generation of Debian release ``debian`` (13 or 12, as a number or a string).

    Raises UnknownGeneration, naming the generations there are, for any other release.
    """
    for generation in GENERATIONS:
        if str(debian).strip() == str(generation.debian):
            return generation
    known = " and ".join(g.label for g in GENERATIONS)
    raise UnknownGeneration(f"the lab has no Debian {debian}: it runs {known}")


def of_dovecot_version(version: str) -> Generation:
    """The generation whose Dovecot prints ``version`` for ``dovecot --version`` (``2.4.1-4 (7d8c0e5759)``,
    ``2.3.19.1 (9b53102964)``). Raises UnknownGeneration for a Dovecot of neither generation."""
    number = version.strip().split(" ")[0]
    for generation in GENERATIONS:
        if number.startswith(generation.dovecot + "."):
            return generation
    raise UnknownGeneration(f"Dovecot {number or '(no version)'} is of no generation the lab runs: "
                            + " and ".join(g.label for g in GENERATIONS))


def host_file(host_dir: Path, name: str, generation: Generation) -> Path:
    """Where a host's file ``name`` is for ``generation``: ``HOST/debianNN/NAME`` when that exists,
    else ``HOST/NAME`` (which may not exist either: not every host has every file)."""
    own = host_dir / generation.folder / name
    return own if own.exists() else host_dir / name
