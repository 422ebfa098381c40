"""Try the README's commands on fresh Debian machines (``make fresh-machine``, as root).

For each Debian release asked for (12 and 13 by default) this

1. makes a new Debian root with ``debootstrap --variant=minbase`` from the mirror apt on this
   machine uses (read from apt's configuration, never written down), and installs there only the
   README's prerequisites from Debian's own packages (Python with venv and pip, make, git,
   Node.js with npm), plus a ``/usr/sbin/policy-rc.d`` as container and cloud images carry.
   That base root is kept as a tar archive in ``.cache/fresh-machine/`` and reused next time;
2. unpacks it anew, clones this repository's committed HEAD (or ``--commit``) into it, and
   runs there, as root: ``make serve``, until both editions answer on
   ``http://127.0.0.1:PORT/en/`` and ``/es/``;
   then ``make debian-packages``, which must exit 0 after checking every tool;
3. with ``--make-test``, runs ``make test`` there too (slow: the lab's tests included);
4. prints how long each step took, and removes the root (``--keep`` keeps it).

Each command runs in a private mount and PID namespace (``unshare``) whose root is the new
root (``pivot_root``, so that Podman works there as on a machine): the
root's ``/proc``, ``/sys``, ``/dev`` and ``/run`` exist only there and vanish with it, and
every process started inside ends with it. The root shares this machine's network, so that
it reaches the package registries as this machine does: it gets this machine's
``/etc/resolv.conf``, its local certificate authorities (``/usr/local/share/ca-certificates``),
and the environment variables that name a CA bundle or a proxy. Nothing else is carried over.

Too slow for ``make test`` (minutes per release); run it before changing how the project
installs itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from mailtls import debian

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "fresh-machine"
#: The README's prerequisites, from Debian's own packages (ca-certificates: what every
#: installed Debian has, and what pip, npm and git need for HTTPS).
PREREQUISITES = ["python3", "python3-venv", "python3-pip", "make", "git", "nodejs", "npm", "ca-certificates"]
#: What a container or cloud image carries: services are not started by package installs.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
#: Environment variables passed into the root: how this machine reaches the registries.
NETWORK_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
CA_VARIABLE_ENDINGS = ("_CERT", "_CERTS", "_CA_BUNDLE", "_CERT_FILE", "_CERT_DIR", "_CAINFO")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVE_TIMEOUT = 3600.0  # seconds for `make serve` to answer: a cold build of both editions


class FreshMachineError(RuntimeError):
    """A step failed; the message says which, and where its output is."""


def say(message: str) -> None:
    print(f"fresh-machine: {message}", flush=True)


def root_environment() -> dict[str, str]:
    """The environment of a root login on a new machine, plus this machine's way to the network."""
    env = {"PATH": PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash",
           "TERM": "dumb"}
    for name, value in os.environ.items():
        if name in NETWORK_VARIABLES or name.endswith(CA_VARIABLE_ENDINGS):
            env[name] = value
    return env


def inside(root: Path, command: str, log: Path, *, background: bool = False) -> subprocess.Popen:
    """Run ``command`` (a bash command line) as root in ``root``, its output appended to ``log``.

    The command runs in a new mount and PID namespace: when it ends, or when ``stop`` ends the
    returned process, everything it started ends too and its mounts disappear.
    """
    script = (
        "set -e; r=$1; shift; "
        "mount --rbind \"$r\" \"$r\"; "  # the root becomes a mount point, as on a machine
        "mount --rbind /sys \"$r/sys\"; mount --make-rslave \"$r/sys\"; "
        "mount --rbind /dev \"$r/dev\"; mount --make-rslave \"$r/dev\"; "
        "mount -t tmpfs -o mode=755 tmpfs \"$r/run\"; mkdir -p \"$r/run/lock\"; "
        # pivot_root, not chroot: container runtimes inside need a real root (`podman exec`).
        "cd \"$r\"; mkdir -p .old-root; pivot_root . .old-root; "
        "umount -l /.old-root; rmdir /.old-root; cd /; "
        "exec /usr/bin/env -i \"$@\" /bin/bash -c \"$COMMAND\""
    )
    env_pairs = [f"{k}={v}" for k, v in root_environment().items()]
    handle = log.open("ab")
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
         f"--mount-proc={root}/proc", "bash", "-c", script, "fresh-machine", str(root), *env_pairs],
        stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={"PATH": PATH, "COMMAND": command},
    )
    handle.close()
    if not background:
        process.wait()
    return process


def run_inside(root: Path, command: str, log: Path, what: str) -> float:
    """Run ``command`` in ``root`` to its end; its duration in seconds. FreshMachineError if it fails."""
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {command}\n")
    code = inside(root, command, log).returncode
    if code != 0:
        raise FreshMachineError(f"{what} failed (exit status {code}); its output is in {log}:\n{tail(log)}")
    return time.monotonic() - started


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def base_archive(release: int, log: Path) -> tuple[Path, float]:
    """The cached base root of ``release`` (built when missing), and the seconds spent building it
    (0 if cached)."""
    name = debian.codename(release)
    archive = CACHE / f"debian-{release}-{name}.tar"
    if archive.exists():
        return archive, 0.0
    started = time.monotonic()
    root = CACHE / f"base-{release}"
    remove_root(root)
    archive_uri, security_uri = debian.mirror("archive"), debian.mirror("security")
    say(f"Debian {release}: debootstrap --variant=minbase {name}")
    with log.open("a") as out:
        done = subprocess.run(["debootstrap", "--variant=minbase", name, str(root), archive_uri],
                              stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise FreshMachineError(f"debootstrap of {name} failed; its output is in {log}:\n{tail(log)}")
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {archive_uri}\nSuites: {name} {name}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security_uri}\nSuites: {name}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    carry_network_settings(root)
    say(f"Debian {release}: installing the README's prerequisites: {' '.join(PREREQUISITES)}")
    run_inside(root, "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
               f"apt-get install -y -qq --no-install-recommends {' '.join(PREREQUISITES)} >/dev/null && "
               "update-ca-certificates >/dev/null && apt-get clean", log, "installing the prerequisites")
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    partial = archive.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
    partial.rename(archive)
    remove_root(root)
    return archive, time.monotonic() - started


def carry_network_settings(root: Path) -> None:
    """This machine's name servers and local CAs, so that the root reaches the registries as it does."""
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copy(Path("/etc/resolv.conf").resolve(), resolv)
    local_cas = Path("/usr/local/share/ca-certificates")
    if local_cas.is_dir():
        shutil.copytree(local_cas, root / "usr/local/share/ca-certificates", dirs_exist_ok=True)


def mounts_below(path: Path) -> list[str]:
    resolved = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(resolved + "/")]


def remove_root(root: Path) -> None:
    """Remove a root, unless something is still mounted in it (then say so and keep it)."""
    if not root.exists():
        return
    if mounts_below(root):
        raise FreshMachineError(f"{root} still has mounts ({', '.join(mounts_below(root))}); not removing it")
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


def port_free(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise FreshMachineError(f"port 127.0.0.1:{port} is taken; choose another with --port") from None


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status == 200 and b"<html" in reply.read(2048).lower()
    except OSError:
        return False


def serve_until_answering(root: Path, port: int, log: Path) -> float:
    """Start ``make serve`` in ``root``; seconds until /en/ and /es/ both answer. Stops it after."""
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ make serve PORT={port}\n")
    serving = inside(root, f"cd /root/course && make serve PORT={port}", log, background=True)
    urls = [f"http://127.0.0.1:{port}/{language}/" for language in ("en", "es")]
    try:
        while not all(answers(url) for url in urls):
            if serving.poll() is not None:
                raise FreshMachineError(f"make serve stopped (exit status {serving.returncode}); "
                                        f"its output is in {log}:\n{tail(log)}")
            if time.monotonic() - started > SERVE_TIMEOUT:
                raise FreshMachineError(f"make serve did not answer within {SERVE_TIMEOUT:.0f} s; see {log}")
            time.sleep(2)
        return time.monotonic() - started
    finally:
        stop(serving)


def stop(process: subprocess.Popen) -> None:
    """End a command started by ``inside``, and everything it started.

    unshare ignores SIGTERM while it waits for its child, so it gets SIGKILL; ``--kill-child``
    then kills the namespace's first process, and with it the kernel ends every other one.
    """
    if process.poll() is None:
        process.kill()
        process.wait()


@contextlib.contextmanager
def fresh_root(release: int, archive: Path, keep: bool) -> Iterator[Path]:
    root = CACHE / f"run-{release}"
    remove_root(root)
    root.mkdir(parents=True)
    try:
        subprocess.run(["tar", "-C", str(root), "-xf", str(archive)], check=True)
        carry_network_settings(root)
        yield root
    finally:
        if keep:
            say(f"Debian {release}: the root is kept in {root}")
        else:
            remove_root(root)


def resolve_commit(revision: str) -> str:
    """The full hash of ``revision`` in this repository; FreshMachineError if there is none."""
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                            f"{revision}^{{commit}}"], capture_output=True, text=True)
    if found.returncode != 0:
        raise FreshMachineError(f"no commit {revision!r} in {ROOT}")
    return found.stdout.strip()


def try_release(release: int, commit: str, port: int, keep: bool, make_test: bool,
                pytest_args: str = "") -> dict[str, float]:
    """Every step for one release; the seconds each took."""
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / f"debian-{release}.log"
    log.write_text("")
    times: dict[str, float] = {}
    archive, times["base root"] = base_archive(release, log)
    with fresh_root(release, archive, keep) as root:
        course = root / "root/course"
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(course)], check=True)
        subprocess.run(["git", "-C", str(course), "checkout", "--quiet", commit], check=True)
        versions = subprocess.run(
            ["chroot", str(root), "sh", "-c",
             "python3 --version; echo node $(node --version); echo npm $(npm --version)"],
            capture_output=True, text=True, env={"PATH": PATH}).stdout.split("\n")
        say(f"Debian {release}: commit {commit[:12]} with {', '.join(v for v in versions if v)}")
        say(f"Debian {release}: make serve")
        times["make serve (both editions answer)"] = serve_until_answering(root, port, log)
        say(f"Debian {release}: make debian-packages")
        times["make debian-packages"] = run_inside(root, "cd /root/course && make debian-packages", log,
                                                   "make debian-packages")
        checked = [line for line in log.read_text().splitlines() if line.startswith("Debian packages:")]
        say(f"Debian {release}: {checked[-1] if checked else 'no check line in ' + str(log)}")
        if make_test:
            command = "make test" + (f" PYTEST_ARGS={shlex.quote(pytest_args)}" if pytest_args else "")
            say(f"Debian {release}: {command}")
            try:
                times["make test"] = run_inside(root, f"cd /root/course && {command}", log, command)
            finally:
                summary = [line for line in log.read_text().splitlines()
                           if line.startswith("=") and " in " in line]
                say(f"Debian {release}: {summary[-1] if summary else 'make test printed no summary'}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=int, action="append", choices=sorted(debian.CODENAMES),
                        help="a Debian release to try (again for more); default: all of them")
    parser.add_argument("--commit", default="HEAD", help="the commit to clone and try (default: HEAD)")
    parser.add_argument("--port", type=int, default=8000, help="where make serve listens on 127.0.0.1")
    parser.add_argument("--keep", action="store_true", help="keep each release's root for a look inside")
    parser.add_argument("--make-test", action="store_true",
                        help="then run make test there too (without CI=true: missing components skip)")
    parser.add_argument("--pytest-args", default="", metavar="ARGS",
                        help="with --make-test: pytest's arguments (make test PYTEST_ARGS=...), e.g. "
                             "\"-k native tests/test_lab.py\" for the native lab of that release only")
    parser.add_argument("--rebuild", action="store_true", help="make the base roots anew, not from the cache")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("fresh-machine: needs root (debootstrap, chroot, namespaces): run it with sudo",
              file=sys.stderr)
        return 2
    missing = [tool for tool in ("debootstrap", "unshare", "chroot", "git", "tar")
               if shutil.which(tool) is None]
    if missing:
        print(f"fresh-machine: missing {', '.join(missing)} (apt-get install debootstrap; "
              "make debian-packages installs it)", file=sys.stderr)
        return 2
    releases = args.release or sorted(debian.CODENAMES)
    results: dict[int, dict[str, float]] = {}
    try:
        port_free(args.port)
        commit = resolve_commit(args.commit)
        for release in releases:
            if args.rebuild:
                (CACHE / f"debian-{release}-{debian.codename(release)}.tar").unlink(missing_ok=True)
            results[release] = try_release(release, commit, args.port, args.keep, args.make_test,
                                           args.pytest_args)
    except (FreshMachineError, debian.NoDebianMirror) as error:
        print(f"fresh-machine: {error}", file=sys.stderr)
        return 1
    for release, times in results.items():
        for step, seconds in times.items():
            note = " (cached)" if step == "base root" and seconds == 0 else ""
            print(f"Debian {release}: {step}: {seconds:.0f} s{note}")
    print("fresh-machine: every release passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
