"""The real Postfix and Dovecot of each generation, asked about many configurations in one go.

Debian 12's programs are this machine's own when it runs Debian 12 (``/etc/debian_version``),
else those of the lab's host image; Debian 13's are always the image's
(``localhost/mailtls-host:debian13``, see ``mailtls.generations``). An image is run with
``podman run --rm --network none --entrypoint bash -v FOLDER:/check:ro IMAGE``: one container
for a whole batch, never one per configuration.

A batch is a folder: ``postfix/NAME/`` (a complete ``main.cf`` and ``master.cf``) and
``dovecot/NAME.conf`` (a complete ``dovecot.conf``). ``CHECK_SCRIPT`` copies it somewhere
writable, then runs ``postconf -d`` once, ``postfix -c DIR check`` and ``postconf -c DIR -n``
for each Postfix folder, and ``doveconf -n -c FILE`` for each Dovecot file, and prints every
answer between ``### BEGIN KIND NAME`` and ``### END KIND NAME rc=N`` lines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers.paths import ROOT
from helpers.requirements import require_program
from mailtls import generations
from mailtls.backends.containers import engine_env
from mailtls.generations import Generation

LAB_MAIL = ROOT / "labs" / "hosts" / "mail"

#: Run by bash with the batch folder as $1, on this machine or in a container. stdout of
#: ``postconf -n`` is dropped: only what Postfix says about the file counts.
CHECK_SCRIPT = r"""
set -u
work=$(mktemp -d)
cp -r "$1"/. "$work"/
cd "$work"
echo "### BEGIN postconf-d all"
postconf -d 2>&1
echo "### END postconf-d all rc=$?"
for dir in postfix/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    echo "### BEGIN postfix $name"
    postfix -c "$work/$dir" check 2>&1
    check=$?
    postconf -c "$work/$dir" -n 2>&1 >/dev/null
    shown=$?
    echo "### END postfix $name rc=$((check | shown))"
done
for file in dovecot/*.conf; do
    [ -f "$file" ] || continue
    name=$(basename "$file" .conf)
    echo "### BEGIN dovecot $name"
    doveconf -n -c "$work/$file" 2>&1 >/dev/null
    echo "### END dovecot $name rc=$?"
done
rm -rf "$work"
"""

#: What ``postfix check`` prints when all is well with a chrooted service: it copies the files the
#: chroot needs (postfix-script, ``update_chroot``). Any other line is a complaint.
ROUTINE = re.compile(r"^updating \S+ => \S+$")
ANSWER = re.compile(r"^### BEGIN (\S+) (\S+)\n(.*?)^### END \1 \2 rc=(\d+)$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Answer:
    """What a real program said of one configuration: its exit code and everything it printed."""

    returncode: int
    output: str

    @property
    def complaint(self) -> str:
        """'' when the program accepted the configuration without a word (routine ``postfix check``
        lines aside); else what it said, or its exit code."""
        said = "\n".join(line for line in self.output.strip().splitlines() if not ROUTINE.match(line))
        if self.returncode == 0 and not said:
            return ""
        return said or f"exit code {self.returncode}"


@dataclass(frozen=True)
class Servers:
    """Where the real programs of ``generation`` are: ``image`` to run, or ``None`` for this machine's."""

    generation: Generation
    image: str | None

    @property
    def where(self) -> str:
        return f"{self.generation.label} ({self.image or 'this machine'})"

    def run(self, batch: Path) -> dict[tuple[str, str], Answer]:
        """Run ``CHECK_SCRIPT`` on the folder ``batch``: {(kind, name): Answer}, kind being
        ``postconf-d`` (name ``all``), ``postfix`` or ``dovecot``. Raises AssertionError when the
        run itself fails (no answer at all)."""
        if self.image is None:
            command = ["bash", "-c", CHECK_SCRIPT, "check", str(batch)]
            env = None
        else:
            command = ["podman", "run", "--rm", "--network", "none", "--entrypoint", "bash",
                       "-v", f"{batch}:/check:ro,Z", self.image, "-c", CHECK_SCRIPT, "check", "/check"]
            env = {**os.environ, **engine_env("podman")}
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        answers = {(m[1], m[2]): Answer(int(m[4]), m[3]) for m in ANSWER.finditer(done.stdout)}
        assert ("postconf-d", "all") in answers, \
            f"{self.where}: the check script gave no answer (exit {done.returncode}):\n{done.stderr}"
        return answers


def machine_generation(debian_version: Path = Path("/etc/debian_version")) -> Generation | None:
    """This machine's generation from ``/etc/debian_version`` (``12.11``, or ``trixie/sid`` on a
    testing machine), or None when it is not Debian 12 or 13."""
    try:
        release = debian_version.read_text().strip().split(".")[0].split("/")[0]
    except OSError:
        return None
    return next((g for g in generations.GENERATIONS if release in (str(g.debian), g.codename)), None)


def host_image(generation: Generation) -> str:
    """The lab's host image of ``generation`` (``localhost/mailtls-host:debian13``), built first when
    missing (``mailtls.backends.containers.ensure_host_image``). Skips the test (fails it under CI)
    when Podman is missing; a failed build fails it."""
    require_program("podman", "Debian package podman")
    from mailtls.backends import containers

    return containers.ensure_host_image("podman", generation, ROOT / "labs", lambda message: None)


def has_own_programs() -> bool:
    """Whether this machine has Postfix's and Dovecot's programs (Debian packages postfix, dovecot-core)."""
    programs = ("postconf", "postfix", "doveconf")
    return all(shutil.which(p) or Path(f"/usr/sbin/{p}").exists() for p in programs)


def servers(generation: Generation) -> Servers:
    """The real programs of ``generation``: this machine's when it is of that generation and has
    them, else its lab host image's."""
    if machine_generation() == generation and has_own_programs():
        return Servers(generation, None)
    return Servers(generation, host_image(generation))
