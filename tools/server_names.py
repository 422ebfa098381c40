"""The names and defaults of every Postfix and Dovecot setting of each generation, from the real binaries.

The simulated lab reacts to a setting as the real servers do: it refuses a ``dovecot.conf`` with
a name Dovecot does not know, warns of a Postfix parameter Postfix does not know, and stops at a
setting it does not model unless the setting has its default. For that it needs every name each
server knows and its default. This tool asks the servers themselves and writes one list per
server version into ``src/mailtls/sim/names/`` (package data, one name a line, sorted):
``name = default`` (the default as the server prints it, spaces around ``=`` dropped at the
ends), or the name alone where there is no default to compare with (a section type, a setting
inside a section, or a default that depends on the machine: :data:`MACHINE_DEPENDENT`).

- ``postfix-3.7.txt``, ``postfix-3.10.txt``: the parameters of ``postconf -d``;
- ``dovecot-2.3.txt``: the settings of ``doveconf`` (2.3 prints every setting) with a probe
  configuration that has a ``passdb`` and a ``userdb``, so their settings are printed too.
  A setting inside sections is written with the section types before it and no default,
  ``service/inet_listener/port``; a section type alone ends in ``/`` (``service/``);
- ``dovecot-2.4.txt``: the settings of ``doveconf -d`` and ``doveconf -n`` (which alone shows
  ``dovecot_config_version``) with a probe configuration of the two version settings. 2.4's
  settings are flat (the listeners' are ``inet_listener_port``, a passdb's ``passdb_driver``);
  a name that opens a list (``import_environment {``) ends in ``/``. The defaults are those of
  the top level (``doveconf -d``'s lines outside any section); ``dovecot_config_version`` has none.

Each generation's binaries are this machine's own when they are of that generation (``dovecot
--version``, ``postconf -d -h mail_version``), else those of the image
``localhost/mailtls-host:debianNN`` (run with ``podman run --rm --entrypoint sh ...``).
``python tools/server_names.py`` writes the lists; ``--check`` only compares (exit status 1 on a
difference). ``tests/test_sim.py`` regenerates them the same way when the binaries are there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mailtls import generations  # noqa: E402
from mailtls.generations import Generation  # noqa: E402

NAMES = ROOT / "src" / "mailtls" / "sim" / "names"
# Dovecot 2.3 prints a passdb's and a userdb's settings only when the configuration has one.
PROBE_23 = "passdb {\n  driver = pam\n}\nuserdb {\n  driver = passwd\n}\n"
PROBE_24 = "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
# Defaults that are the machine's, not the server's (its host name, domain, networks, the process):
# written without a value, so that the lists are the same on every machine.
MACHINE_DEPENDENT = {
    "postfix": ("myhostname", "mydomain", "mynetworks", "process_id"),
    "dovecot": ("dovecot_config_version", "hostname"),
}

# run(program, arguments, configuration file text or None) -> the finished process (its exit
# status, stdout and stderr: text), the configuration given as ``-c FILE`` before the arguments.
Runner = Callable[[str, list[str], "str | None"], "subprocess.CompletedProcess[str]"]


def local_runner(program: str, arguments: list[str],
                 configuration: str | None) -> subprocess.CompletedProcess[str]:
    """Run this machine's own binary."""
    with tempfile.TemporaryDirectory() as folder:
        if configuration is not None:
            (Path(folder) / "probe.conf").write_text(configuration)
            arguments = ["-c", str(Path(folder) / "probe.conf"), *arguments]
        return subprocess.run([program, *arguments], capture_output=True, text=True)


def image_runner(image: str) -> Runner:
    """Run the binary of a lab host image, the configuration passed on standard input."""

    def run(program: str, arguments: list[str],
            configuration: str | None) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "CONTAINERS_CONF": str(ROOT / "labs" / "containers" / "containers.conf")}
        script = 'exec "$@"'
        if configuration is not None:
            script = ('cat > /tmp/probe.conf && program="$1" && shift '
                      '&& exec "$program" -c /tmp/probe.conf "$@"')
        return subprocess.run(["podman", "run", "--rm", "-i", "--entrypoint", "sh", image, "-c", script,
                               "sh", program, *arguments], input=configuration or "", capture_output=True,
                              text=True, env=environment)

    return run


def runner(generation: Generation) -> Runner | None:
    """How to run ``generation``'s binaries here, or None when this machine has neither."""
    if all(shutil.which(program) for program in ("dovecot", "doveconf", "postconf")):
        dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
        postfix = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                                 text=True).stdout
        if dovecot.startswith(generation.dovecot + ".") and postfix.startswith(generation.postfix + "."):
            return local_runner
    if shutil.which("podman") and subprocess.run(["podman", "image", "exists", generation.host_image],
                                                 capture_output=True).returncode == 0:
        return image_runner(generation.host_image)
    return None


def output(run: Runner, program: str, arguments: list[str], configuration: str | None = None) -> str:
    """The standard output of a run that must succeed (CalledProcessError otherwise)."""
    done = run(program, arguments, configuration)
    done.check_returncode()
    return done.stdout


def entry(server: str, name: str, default: str | None) -> str:
    """One line of a list: ``name = default``, or ``name`` (no default, or the machine's)."""
    if default is None or name in MACHINE_DEPENDENT[server]:
        return name
    return f"{name} = {default}".rstrip()


def postfix_names(run: Runner) -> list[str]:
    """Every parameter of ``postconf -d`` with its default (``name = default``), sorted."""
    found = {}
    for line in output(run, "postconf", ["-d"]).splitlines():
        if "=" in line:
            name, _, default = line.partition("=")
            found[name.strip()] = entry("postfix", name.strip(), default.strip())
    return [found[name] for name in sorted(found)]


def dovecot_names(run: Runner, generation: Generation) -> list[str]:
    """Every setting (with its section types in 2.3), sorted, those of the top level with their
    default (``name = default``); see the module's docstring."""
    if generation.dovecot == "2.3":
        text = output(run, "doveconf", [], PROBE_23)
    else:  # -d leaves out dovecot_config_version, which -n shows
        text = output(run, "doveconf", ["-d"], PROBE_24) + output(run, "doveconf", ["-n"], PROBE_24)
    names: dict[str, str] = {}
    path: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped == "}":
            path.pop()
            continue
        if stripped.endswith("{"):
            kind = stripped.split()[0]
            path.append(kind)
            names.setdefault("/".join(path) + "/", "/".join(path) + "/")
            continue
        name, _, default = (part.strip() for part in stripped.partition("="))
        if generation.dovecot == "2.4" and path:
            continue  # the keys of a list, or a default repeated inside a filter
        key = "/".join([*path, name])
        if key not in names:  # -d's default, not the probe's value (-n, after it)
            names[key] = entry("dovecot", key, None if path else default)
    return [names[key] for key in sorted(names)]


def lists(generation: Generation, run: Runner) -> dict[str, list[str]]:
    """File name -> names, for the two servers of ``generation``."""
    return {f"postfix-{generation.postfix}.txt": postfix_names(run),
            f"dovecot-{generation.dovecot}.txt": dovecot_names(run, generation)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed lists only")
    options = parser.parse_args()
    status = 0
    for generation in generations.GENERATIONS:
        run = runner(generation)
        if run is None:
            print(f"{generation.label}: no binaries here (no {generation.host_image}); skipped")
            continue
        for name, found in lists(generation, run).items():
            text = "".join(n + "\n" for n in found)
            path = NAMES / name
            if options.check:
                same = path.exists() and path.read_text() == text
                print(f"{name}: {'same' if same else 'DIFFERENT'} ({len(found)} names)")
                status |= not same
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                print(f"{name}: {len(found)} names")
    return status


if __name__ == "__main__":
    sys.exit(main())
