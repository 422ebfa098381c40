"""Running the programs the lab is made of: Postfix's and Dovecot's commands, ``ip``, the engines."""

from __future__ import annotations

import os
import subprocess
import tempfile

from mailtls.errors import LabError


def run(command: list[str], *, check: bool = True, netns: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``command`` (inside the network namespace ``netns`` if given) and return what it printed.

    ``env`` adds to this process's environment. With ``check``, a non-zero exit raises LabError
    with the command and its own words.
    """
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    # Output goes to a file, not a pipe: a daemon that forks keeps its pipes open, and reading
    # them would wait for it to exit.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        returncode = subprocess.run(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}).returncode
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, returncode, out.read(), err.read())
    if check and done.returncode != 0:
        said = (done.stderr + done.stdout).strip()
        raise LabError(f"`{' '.join(command)}` failed:\n{said}")
    return done
