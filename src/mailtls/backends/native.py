"""The native backend: each lab host in its own Linux network namespace, on this machine.

Why: no container engine is needed, only root and Debian's ``postfix`` and ``dovecot``
packages. Each host gets a namespace ``mtls-<host>`` with one end of a veth pair, its own
address on the lab network and the standard ports. The other ends of the pairs join a bridge
in the machine's own namespace, which holds the gateway address: that is where the tests and
notebooks connect from (a different address from the servers', so Dovecot does not treat them
as "secured" local clients).

Every host runs the literal files under ``labs/hosts/<host>/``. They are copied to the host's
runtime folder and only their paths are changed, with Postfix's own ``postconf -c DIR -e``
(queue, data, log) and, for Dovecot, a two-line wrapper that ``!include``\\ s the file and then
sets ``base_dir``, ``state_dir`` and ``log_path``. ``down`` removes every process, namespace,
link and file that ``up`` made.

On a classroom host, student K's lab has its own bridge (``mtlsK-br``), namespaces
(``mtlsK-mail``...) and files; its copies of the files also name those files where they are
(see ``common.for_this_lab``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailtls.backends import LabError
from mailtls.backends.common import (
    GATEWAY, NETWORK, RELOAD_SETTLE, WIRETAP, WIRETAP_MODE_FILE, address, already_up, for_this_lab, labs_in_use,
    prepare_lab_files, remove_lab_files, run, runtime_dir, server_versions, state, transcript_path, wait_for_wiretap,
    wait_until_listening, write_status,
)
from mailtls.hosts import HOSTS, LABS, STUDENT, Host, Service
from mailtls.hosts import host as find_host

BRIDGE = "mtls0" if STUDENT is None else f"mtls{STUDENT}-br"
NAMESPACE_PREFIX = "mtls-" if STUDENT is None else f"mtls{STUDENT}-"
READY_TIMEOUT = 60.0

# Where the files under labs/ expect things, and where each host's copy finds them natively.
POSTFIX_PATHS = {
    "queue_directory": "spool",
    "data_directory": "data",
    "maillog_file": "log/postfix.log",
}


def namespace(host: Host) -> str:
    return NAMESPACE_PREFIX + host.short


def bridge_end(host: Host) -> str:
    """The name of the bridge's end of the host's link: its namespace's, cut to Linux's 15 characters."""
    return namespace(host)[:15]


def dovecot_generation_problem() -> str | None:
    """Why this machine's Dovecot cannot run the lab's ``dovecot.conf``, or None when it can.

    The lab's file is written for Dovecot 2.3 (Debian 12). Dovecot 2.4 (Debian 13) changed the
    configuration language and refuses it: the file must begin with ``dovecot_config_version``,
    and settings such as ``ssl_cert`` and ``disable_plaintext_auth`` were renamed
    (https://doc.dovecot.org/2.4.0/installation/upgrade/2.3-to-2.4.html).
    """
    if shutil.which("dovecot") is None:
        return "Dovecot is not installed (apt-get install dovecot-core dovecot-imapd)"
    done = run(["dovecot", "--version"], check=False)
    version = done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else "unknown"
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers and numbers < (2, 4):
        return None
    return (f"this machine has Dovecot {version}, and the lab's dovecot.conf is written for Dovecot 2.3 "
            "(Debian 12): Dovecot 2.4 (Debian 13) refuses its settings. Run the lab in containers instead "
            "(--backend containers), whose image is Debian 12")


def preflight() -> None:
    """Refuse early, with a reason, rather than half-start."""
    if sys.platform != "linux":
        raise LabError("the native backend needs Linux (network namespaces)")
    if os.geteuid() != 0:
        raise LabError("the native backend needs root (it creates network namespaces); run it with sudo")
    missing = [p for p in ("ip", "postfix", "postconf", "dovecot", "doveconf", "doveadm") if not shutil.which(p)]
    if missing:
        raise LabError(
            "missing programs: " + ", ".join(missing) + ". Install Debian's packages: "
            "apt-get install postfix dovecot-core dovecot-imapd iproute2 (or run `make test` as root)"
        )
    refusal = dovecot_generation_problem()
    if refusal:
        raise LabError(refusal)
    taken = run(["ip", "-o", "-4", "addr", "show"]).stdout
    if f" {GATEWAY}/" in taken and BRIDGE not in taken:
        raise LabError(f"the lab network {NETWORK} is already used on this machine: {taken.strip()}")


def is_up() -> bool:
    return state().get("backend") == "native"


def up(labs: Path = LABS, on_progress=print) -> dict:
    """Bring every host up from the files in ``labs``; if anything fails, undo it all and say why."""
    if already_up("native", down):
        return state()
    preflight()
    try:
        on_progress("lab files: CA, certificates, users")
        prepare_lab_files(labs, "native")
        on_progress(f"network {NETWORK}: bridge {BRIDGE} and one namespace per host")
        make_network()
        postfix_hosts = [h for h in HOSTS if h.postfix]
        on_progress("postfix: checking " + ", ".join(h.name for h in postfix_hosts))
        # `postfix check` takes seconds per host: check them side by side, all before any starts.
        with concurrent.futures.ThreadPoolExecutor() as pool:
            configs = dict(zip(postfix_hosts, pool.map(install_config, postfix_hosts)))
        for lab_host in (h for h in HOSTS if h.dovecot):
            on_progress(f"{lab_host.name}: dovecot")
            start_dovecot(lab_host, install_dovecot_config(lab_host))
        on_progress("postfix: starting")
        for lab_host in postfix_hosts:
            start_postfix(lab_host, configs[lab_host])
        on_progress("mitm.lab.test: wiretap (pass mode)")
        start_wiretap("pass")
        for closed in wait_until_listening(READY_TIMEOUT):
            on_progress(f"not listening, as its files say: {closed}")
        write_status(server_versions(lambda *command: run(list(command)).stdout))
    except BaseException:
        down()
        raise
    return state()


# -- Network --------------------------------------------------------------------------------------


def make_network() -> None:
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "add", f"{GATEWAY}/{NETWORK.prefixlen}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    hosts_file = "127.0.0.1 localhost\n" + "".join(f"{address(h)} {h.name} {h.short}\n" for h in HOSTS)
    for lab_host in HOSTS:
        ns = namespace(lab_host)
        run(["ip", "netns", "add", ns])
        # `ip netns exec` shows the files of /etc/netns/NAME/ in place of /etc's: the lab's names.
        etc = Path("/etc/netns") / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts_file)
        # No DNS in the lab, and no query may leave it: a name server that is not there.
        (etc / "resolv.conf").write_text("# the lab has no DNS server\nnameserver 127.0.0.1\n")
        outside = bridge_end(lab_host)
        run(["ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", outside, "master", BRIDGE])
        run(["ip", "link", "set", outside, "up"])
        run(["ip", "addr", "add", f"{address(lab_host)}/{NETWORK.prefixlen}", "dev", "eth0"], netns=ns)
        run(["ip", "link", "set", "lo", "up"], netns=ns)
        run(["ip", "link", "set", "eth0", "up"], netns=ns)
        # No default route: a host reaches the lab network and nothing else.


# -- Postfix --------------------------------------------------------------------------------------


def install_config(lab_host: Host, target: Path | None = None) -> Path:
    """Copy the host's Postfix files and point their paths at its runtime folder; check them."""
    base = runtime_dir(lab_host)
    config = target or base / "postfix"
    config.mkdir(parents=True, exist_ok=True)
    for name in POSTFIX_FILES:
        source = lab_host.config_dir(labs_in_use()) / name
        if source.exists():
            (config / name).write_text(for_this_lab(source.read_text()))
    settings = [f"{name}={base / path}" for name, path in POSTFIX_PATHS.items()]
    settings.append(f"maillog_file_prefixes={base / 'log'}")
    # Lookup tables named with /etc/postfix/ are this host's copies (where they will run from,
    # even when this copy is being prepared elsewhere).
    final = base / "postfix"
    for line in run(["postconf", "-c", str(config), "-n"]).stdout.splitlines():
        name, _, value = line.partition(" = ")
        if "/etc/postfix/" in value:
            settings.append(f"{name}={value.replace('/etc/postfix/', f'{final}/')}")
    run(["postconf", "-c", str(config), "-e", *settings])
    for folder in ("spool", "data", "log"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    postfix_user = pwd.getpwnam("postfix")
    os.chown(base / "data", postfix_user.pw_uid, postfix_user.pw_gid)
    source_dir = lab_host.config_dir(labs_in_use())
    checked = run(["postfix", "-c", str(config), "check"], check=False)
    problems = (checked.stderr + checked.stdout).strip()
    if checked.returncode != 0 or "warning" in problems:
        raise LabError(f"Postfix refuses the configuration of {lab_host.name} ({source_dir}):\n{problems}")
    (config / "source.sha256").write_text(source_digest(lab_host) + "\n")
    return config


POSTFIX_FILES = ("main.cf", "master.cf", "tls_policy", "transport")


def source_digest(lab_host: Host) -> str:
    """A fingerprint of the host's Postfix files under labs/, to tell whether they changed."""
    digest = hashlib.sha256()
    for name in POSTFIX_FILES:
        source = lab_host.config_dir(labs_in_use()) / name
        digest.update(name.encode() + b"\0" + (source.read_bytes() if source.exists() else b"") + b"\0")
    return digest.hexdigest()


def installed_digest(lab_host: Host) -> str:
    stamp = runtime_dir(lab_host) / "postfix" / "source.sha256"
    return stamp.read_text().strip() if stamp.exists() else ""


def start_postfix(lab_host: Host, config: Path) -> None:
    run(["postfix", "-c", str(config), "start"], netns=namespace(lab_host))


def stop_postfix(lab_host: Host) -> None:
    config = runtime_dir(lab_host) / "postfix"
    if (config / "main.cf").exists() and namespace(lab_host) in namespaces():
        run(["postfix", "-c", str(config), "stop"], netns=namespace(lab_host), check=False)


# -- Dovecot --------------------------------------------------------------------------------------


def install_dovecot_config(lab_host: Host) -> Path:
    """A wrapper that includes the host's dovecot.conf, then moves its state to the runtime folder."""
    base = runtime_dir(lab_host) / "dovecot"
    for folder in ("run", "state"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    (runtime_dir(lab_host) / "log").mkdir(parents=True, exist_ok=True)
    wrapper = base / "dovecot.conf"
    source = lab_host.config_dir(labs_in_use()) / "dovecot.conf"
    included = source
    if for_this_lab(source.read_text()) != source.read_text():  # a student's lab: a copy with its paths
        included = base / "lab.conf"
        included.write_text(for_this_lab(source.read_text()))
    wrapper.write_text(
        f"# Written by the native backend: {source}, with this host's paths.\n"
        f"!include {included}\n"
        f"base_dir = {base / 'run'}\n"
        f"state_dir = {base / 'state'}\n"
        f"log_path = {runtime_dir(lab_host) / 'log' / 'dovecot.log'}\n"
    )
    checked = run(["doveconf", "-c", str(wrapper), "-n"], check=False)
    if checked.returncode != 0:
        said = checked.stderr.strip().replace(str(included), str(source))  # same lines: name the file to fix
        raise LabError(f"Dovecot refuses the configuration of {lab_host.name}:\n{said}")
    return wrapper


def start_dovecot(lab_host: Host, wrapper: Path) -> None:
    run(["dovecot", "-c", str(wrapper)], netns=namespace(lab_host))


def stop_dovecot(lab_host: Host) -> None:
    pid_file = runtime_dir(lab_host) / "dovecot" / "run" / "master.pid"
    stop_by_pid_file(pid_file)


# -- The wiretap ----------------------------------------------------------------------------------

def wiretap_pid_file() -> Path:
    return runtime_dir(WIRETAP) / "wiretap.pid"


def wiretap_protocol(service: Service) -> str:
    """How the wiretap reads a port: bytes only where TLS is implicit, else SMTP or IMAP lines."""
    if service.tls == "implicit":
        return "tls"
    return "imap" if service.name == "imap" else "smtp"


def start_wiretap(mode: str) -> None:
    target = find_host(WIRETAP.wiretap_for)
    routes = [f"{wiretap_protocol(s)}:0.0.0.0:{s.port}:{address(target)}:{s.port}" for s in WIRETAP.services]
    log = runtime_dir(WIRETAP) / "wiretap.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = ["ip", "netns", "exec", namespace(WIRETAP), sys.executable, "-m", "mailtls.wiretap",
               "--mode", mode, "--mode-file", str(WIRETAP_MODE_FILE), "--transcript", str(transcript_path())]
    for route in routes:
        command += ["--route", route]
    since = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, start_new_session=True)
    wiretap_pid_file().write_text(f"{process.pid}\n")
    wait_for_wiretap(lambda: log.read_bytes()[since:].decode(errors="replace"))


# -- Down and reload -----------------------------------------------------------------------------


def stop_by_pid_file(pid_file: Path, timeout: float = 10.0) -> None:
    """Stop the process named in a PID file and wait for it to go."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def namespaces() -> set[str]:
    listed = run(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def down() -> None:
    """Remove everything ``up`` made; quiet when nothing is up."""
    if shutil.which("ip") is None:
        return
    stop_by_pid_file(wiretap_pid_file())
    for lab_host in HOSTS:
        if lab_host.dovecot:
            stop_dovecot(lab_host)
    with concurrent.futures.ThreadPoolExecutor() as pool:  # each `postfix stop` waits for its master
        list(pool.map(stop_postfix, [h for h in HOSTS if h.postfix]))
    for ns in namespaces():
        if ns.startswith(NAMESPACE_PREFIX):
            # Deleting our end removes the pair at once; a namespace's own cleanup is
            # asynchronous, and a quick `lab up` would find the old link still there.
            run(["ip", "link", "del", ns[:15]], check=False)
            run(["ip", "netns", "del", ns], check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    if run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        run(["ip", "link", "del", BRIDGE], check=False)
    if is_up() or not state():  # never the files of a containers lab
        remove_lab_files()


def reload() -> None:
    """Apply edited files under labs/: checked first, so a broken file leaves the lab as it was."""
    if not is_up():
        raise LabError("no native lab is up: run `python -m mailtls lab up` first")
    # Only hosts whose files changed are checked and reloaded (a Postfix check takes seconds).
    postfix_hosts = [h for h in HOSTS if h.postfix and source_digest(h) != installed_digest(h)]

    def prepare(lab_host: Host) -> Path:
        # Next to the running copy; raises, with Postfix's own words, if the files are broken.
        return install_config(lab_host, runtime_dir(lab_host) / "postfix.new")

    try:
        with concurrent.futures.ThreadPoolExecutor() as pool:
            prepared = list(pool.map(prepare, postfix_hosts))
        for lab_host in HOSTS:
            if lab_host.dovecot:
                install_dovecot_config(lab_host)
    except LabError:
        for lab_host in postfix_hosts:
            shutil.rmtree(runtime_dir(lab_host) / "postfix.new", ignore_errors=True)
        raise
    # Every file passed: swap the new copies in under the paths Postfix already uses.
    configs = {}
    for lab_host, new in zip(postfix_hosts, prepared):
        current = runtime_dir(lab_host) / "postfix"
        shutil.rmtree(current)
        new.rename(current)
        configs[lab_host] = current
    # Dovecot first, and restarted: a reload would keep listening on a port whose listener was
    # removed (an exercise does that). Its auth service restarts with it, and Postfix's smtpd
    # processes would keep a dead connection to the old one ("454 4.7.0 Temporary
    # authentication failure"), so Postfix on that host is reloaded after it, changed or not.
    for lab_host in HOSTS:
        if lab_host.dovecot:
            stop_dovecot(lab_host)
            start_dovecot(lab_host, runtime_dir(lab_host) / "dovecot" / "dovecot.conf")
            configs.setdefault(lab_host, runtime_dir(lab_host) / "postfix")
    for lab_host, config in configs.items():
        run(["postfix", "-c", str(config), "reload"], netns=namespace(lab_host))
    # An idle smtpd started before the reload may still take one more client with the old files;
    # give those processes a moment to notice and go, so that a check right after sees the new ones.
    time.sleep(RELOAD_SETTLE)


def postfix_command(lab_host: Host, *command: str) -> subprocess.CompletedProcess:
    """Run a Postfix command (postsuper, postqueue, ...) on a host, with that host's configuration."""
    config = runtime_dir(lab_host) / "postfix"
    return run([command[0], "-c", str(config), *command[1:]], netns=namespace(lab_host), check=False)
