"""The native backend: each lab host in its own Linux network namespace, on this machine.

Why: no container engine is needed, only root and Debian's ``postfix`` and ``dovecot``
packages. Each host gets a namespace ``mtls-<host>`` with one end of a veth pair, its own
address on the lab network and the standard ports. The other ends of the pairs join a bridge
in the machine's own namespace, which holds the gateway address: that is where the tests and
notebooks connect from (a different address from the servers', so Dovecot does not treat them
as "secured" local clients).

It runs this machine's own generation of Debian's servers (Debian 13: Postfix 3.10 and Dovecot
2.4; Debian 12: 3.7 and 2.3), told by the installed Dovecot, and each host's files of that
generation (``mailtls.generations.host_file``); another generation needs the containers.

Every host runs the literal files under ``labs/hosts/<host>/``. They are copied to the host's
runtime folder and only their paths are changed, with Postfix's own ``postconf -c DIR -e``
(queue, data, log) and, for Dovecot, a copy of the file followed by ``base_dir``, ``state_dir``
and ``log_path``. ``down`` removes every process, namespace,
link and file that ``up`` made.

On a classroom host, student K's lab has its own bridge (``mtlsK-br``), namespaces
(``mtlsK-mail``...) and files; its copies of the files also name those files where they are
(see ``LabConfig.for_this_lab``).
"""

from __future__ import annotations

import concurrent.futures
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mailtls import runtime
from mailtls.backends.base import RELOAD_SETTLE, Backend, Progress
from mailtls.backends.readiness import wait_for_wiretap
from mailtls.errors import ConfigurationRefused, LabError, NeedsRoot
from mailtls.generations import Generation, UnknownGeneration
from mailtls.hostfiles import (
    copy_postfix_files,
    dovecot_needs_restart,
    dovecot_refusal,
    dovecot_started,
    installed_generation,
    postfix_refusal,
    source_digest,
    stop_by_pid_file,
)
from mailtls.hosts import HOSTS, WIRETAP, Host, Service
from mailtls.hosts import host as find_host
from mailtls.process import run

# Where the files under labs/ expect things, and where each host's copy finds them natively.
POSTFIX_PATHS = {
    "queue_directory": "spool",
    "data_directory": "data",
    "maillog_file": "log/postfix.log",
}


def wiretap_protocol(service: Service) -> str:
    """How the wiretap reads a port: bytes only where TLS is implicit, else SMTP or IMAP lines."""
    if service.tls == "implicit":
        return "tls"
    return "imap" if service.name == "imap" else "smtp"


def namespaces() -> set[str]:
    """The network namespaces on this machine (``ip netns list``)."""
    listed = run(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


class NativeBackend(Backend):
    """Each host in a network namespace of this machine, running this machine's Postfix and Dovecot."""

    name = "native"
    ready_timeout = 60.0

    def bridge_end(self, lab_host: Host) -> str:
        """The bridge's end of the host's link: its namespace's name, cut to Linux's 15 characters."""
        return self.config.namespace(lab_host)[:15]

    def wanted_generation(self) -> Generation:
        installed = installed_generation()
        asked = self.config.generation
        if asked is not None and asked != installed:
            raise UnknownGeneration(
                f"the native backend runs this machine's own servers, {installed.label}, not Debian "
                f"{asked.debian}'s: run Debian {asked.debian} in containers "
                f"(`python -m mailtls lab up --backend containers --debian {asked.debian}`)")
        return installed

    def preflight(self) -> None:
        if sys.platform != "linux":
            raise NeedsRoot("the native backend needs Linux (network namespaces)")
        if os.geteuid() != 0:
            raise NeedsRoot("the native backend needs root (it creates network namespaces); run it with sudo")
        missing = [p for p in ("ip", "postfix", "postconf", "dovecot", "doveconf", "doveadm")
                   if not shutil.which(p)]
        if missing:
            raise LabError(
                "missing programs: " + ", ".join(missing) + ". Install Debian's packages: "
                "apt-get install postfix dovecot-core dovecot-imapd iproute2 (or run `make test` as root)"
            )
        self.wanted_generation()  # this machine's, and the one asked for
        taken = run(["ip", "-o", "-4", "addr", "show"]).stdout
        if f" {self.config.gateway}/" in taken and self.config.bridge not in taken:
            raise LabError(f"the lab network {self.config.network} is already used on this machine: "
                           f"{taken.strip()}")

    def start(self, on_progress: Progress) -> None:
        config = self.config
        on_progress(f"network {config.network}: bridge {config.bridge} and one namespace per host")
        self.make_network()
        postfix_hosts = [h for h in HOSTS if h.postfix]
        on_progress("postfix: checking " + ", ".join(h.name for h in postfix_hosts))
        # `postfix check` takes seconds per host: check them side by side, all before any starts.
        with concurrent.futures.ThreadPoolExecutor() as pool:
            configs = dict(zip(postfix_hosts, pool.map(self.install_config, postfix_hosts), strict=True))
        for lab_host in (h for h in HOSTS if h.dovecot):
            on_progress(f"{lab_host.name}: dovecot")
            self.start_dovecot(lab_host, self.install_dovecot_config(lab_host))
        on_progress("postfix: starting")
        for lab_host in postfix_hosts:
            self.start_postfix(lab_host, configs[lab_host])
        on_progress("mitm.lab.test: wiretap (pass mode)")
        self.start_wiretap("pass")

    def run_on_mail(self, *command: str) -> str:
        return run(list(command)).stdout

    # -- Network -----------------------------------------------------------------------------

    def make_network(self) -> None:
        config = self.config
        prefix = config.network.prefixlen
        run(["ip", "link", "add", config.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{config.gateway}/{prefix}", "dev", config.bridge])
        run(["ip", "link", "set", config.bridge, "up"])
        hosts_file = "127.0.0.1 localhost\n" + "".join(f"{config.address(h)} {h.name} {h.short}\n"
                                                       for h in HOSTS)
        for lab_host in HOSTS:
            ns = config.namespace(lab_host)
            run(["ip", "netns", "add", ns])
            # `ip netns exec` shows the files of /etc/netns/NAME/ in place of /etc's: the lab's names.
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_file)
            # No DNS in the lab, and no query may leave it: a name server that is not there.
            (etc / "resolv.conf").write_text("# the lab has no DNS server\nnameserver 127.0.0.1\n")
            outside = self.bridge_end(lab_host)
            run(["ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "link", "set", outside, "master", config.bridge])
            run(["ip", "link", "set", outside, "up"])
            run(["ip", "addr", "add", f"{config.address(lab_host)}/{prefix}", "dev", "eth0"], netns=ns)
            run(["ip", "link", "set", "lo", "up"], netns=ns)
            run(["ip", "link", "set", "eth0", "up"], netns=ns)
            # No default route: a host reaches the lab network and nothing else.

    # -- Postfix -----------------------------------------------------------------------------

    def labs_in_use(self) -> Path:
        """The labs/ folder the running lab was started from (reload must read the same one)."""
        state = runtime.state(self.config)
        return Path(state.labs) if state else self.config.labs

    def install_config(self, lab_host: Host, target: Path | None = None) -> Path:
        """Copy the host's Postfix files and point their paths at its runtime folder; check them.

        Raises ConfigurationRefused with ``postfix check``'s words when Postfix refuses them.
        """
        base = self.config.host_runtime(lab_host)
        config = target or base / "postfix"
        source_dir = lab_host.config_dir(self.labs_in_use())
        copy_postfix_files(source_dir, config, self.generation(), self.config.for_this_lab)
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
        problems = postfix_refusal(config)
        if problems is not None:
            raise ConfigurationRefused(f"Postfix refuses the configuration of {lab_host.name} "
                                       f"({source_dir}):\n{problems}")
        (config / "source.sha256").write_text(self.source_digest(lab_host) + "\n")
        return config

    def source_digest(self, lab_host: Host) -> str:
        """A fingerprint of the host's Postfix files under labs/, to tell whether they changed."""
        return source_digest(lab_host.config_dir(self.labs_in_use()), self.generation())

    def installed_digest(self, lab_host: Host) -> str:
        stamp = self.config.host_runtime(lab_host) / "postfix" / "source.sha256"
        return stamp.read_text().strip() if stamp.exists() else ""

    def start_postfix(self, lab_host: Host, config: Path) -> None:
        run(["postfix", "-c", str(config), "start"], netns=self.config.namespace(lab_host))

    def stop_postfix(self, lab_host: Host) -> None:
        config = self.config.host_runtime(lab_host) / "postfix"
        if (config / "main.cf").exists() and self.config.namespace(lab_host) in namespaces():
            run(["postfix", "-c", str(config), "stop"], netns=self.config.namespace(lab_host), check=False)

    # -- Dovecot -----------------------------------------------------------------------------

    def install_dovecot_config(self, lab_host: Host) -> Path:
        """The host's dovecot.conf with this lab's paths, then the settings that move Dovecot's state
        to the runtime folder (``base_dir``, ``state_dir``, ``log_path``).

        The file's own lines come first and keep their numbers, so that Dovecot's complaints name
        the student's lines; Dovecot 2.4 also reads nothing before ``dovecot_config_version``, so an
        ``!include`` cannot come first. Raises ConfigurationRefused with ``doveconf``'s words when
        Dovecot refuses the file.
        """
        host_runtime = self.config.host_runtime(lab_host)
        base = host_runtime / "dovecot"
        for folder in ("run", "state"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        (host_runtime / "log").mkdir(parents=True, exist_ok=True)
        wrapper = base / "dovecot.conf"
        source = lab_host.config_file(self.labs_in_use(), "dovecot.conf", self.generation())
        wrapper.write_text(
            self.config.for_this_lab(source.read_text()).rstrip("\n") + "\n"
            f"# Added by the native backend to {source}: this host's paths.\n"
            f"base_dir = {base / 'run'}\n"
            f"state_dir = {base / 'state'}\n"
            f"log_path = {host_runtime / 'log' / 'dovecot.log'}\n"
        )
        refusal = dovecot_refusal(wrapper)
        if refusal is not None:
            said = refusal.replace(str(wrapper), str(source))  # same lines: name the file to fix
            raise ConfigurationRefused(f"Dovecot refuses the configuration of {lab_host.name}:\n{said}")
        return wrapper

    def start_dovecot(self, lab_host: Host, wrapper: Path) -> None:
        run(["dovecot", "-c", str(wrapper)], netns=self.config.namespace(lab_host))
        dovecot_started(wrapper, self.dovecot_stamp(lab_host))

    def stop_dovecot(self, lab_host: Host) -> None:
        stop_by_pid_file(self.dovecot_pid_file(lab_host))

    def dovecot_pid_file(self, lab_host: Host) -> Path:
        return self.config.host_runtime(lab_host) / "dovecot" / "run" / "master.pid"

    def dovecot_stamp(self, lab_host: Host) -> Path:
        """What the host's Dovecot read as it started (mailtls.hostfiles.dovecot_needs_restart)."""
        return self.config.host_runtime(lab_host) / "dovecot" / "started.sha256"

    # -- The wiretap -------------------------------------------------------------------------

    def wiretap_pid_file(self) -> Path:
        return self.config.host_runtime(WIRETAP) / "wiretap.pid"

    def start_wiretap(self, mode: str) -> None:
        config = self.config
        target = find_host(WIRETAP.wiretap_for)
        routes = [f"{wiretap_protocol(s)}:0.0.0.0:{s.port}:{config.address(target)}:{s.port}"
                  for s in WIRETAP.services]
        log = config.host_runtime(WIRETAP) / "wiretap.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = ["ip", "netns", "exec", config.namespace(WIRETAP), sys.executable, "-m", "mailtls.wiretap",
                   "--mode", mode, "--mode-file", str(runtime.wiretap_mode_file(config.runtime)),
                   "--transcript", str(runtime.transcript_path(config.runtime))]
        for route in routes:
            command += ["--route", route]
        since = log.stat().st_size if log.exists() else 0
        with log.open("ab") as output:
            process = subprocess.Popen(command, stdout=output, stderr=output, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self.wiretap_pid_file().write_text(f"{process.pid}\n")
        wait_for_wiretap(lambda: log.read_bytes()[since:].decode(errors="replace"))

    # -- Down and reload ---------------------------------------------------------------------

    def down(self) -> None:
        if shutil.which("ip") is None:
            return
        config = self.config
        stop_by_pid_file(self.wiretap_pid_file())
        for lab_host in HOSTS:
            if lab_host.dovecot:
                self.stop_dovecot(lab_host)
        with concurrent.futures.ThreadPoolExecutor() as pool:  # each `postfix stop` waits for its master
            list(pool.map(self.stop_postfix, [h for h in HOSTS if h.postfix]))
        for ns in namespaces():
            if ns.startswith(config.namespace_prefix):
                # Deleting our end removes the pair at once; a namespace's own cleanup is
                # asynchronous, and a quick `lab up` would find the old link still there.
                run(["ip", "link", "del", ns[:15]], check=False)
                run(["ip", "netns", "del", ns], check=False)
                shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        if run(["ip", "link", "show", config.bridge], check=False).returncode == 0:
            run(["ip", "link", "del", config.bridge], check=False)
        self.remove_files_if_ours()

    def reload(self) -> None:
        self.require_up()
        # Only hosts whose files changed are checked and reloaded (a Postfix check takes seconds).
        postfix_hosts = [h for h in HOSTS if h.postfix and self.source_digest(h) != self.installed_digest(h)]
        host_runtime = self.config.host_runtime

        def prepare(lab_host: Host) -> Path:
            # Next to the running copy; raises, with Postfix's own words, if the files are broken.
            return self.install_config(lab_host, host_runtime(lab_host) / "postfix.new")

        try:
            with concurrent.futures.ThreadPoolExecutor() as pool:
                prepared = list(pool.map(prepare, postfix_hosts))
            wrappers = {h: self.install_dovecot_config(h) for h in HOSTS if h.dovecot}
        except LabError:
            for lab_host in postfix_hosts:
                shutil.rmtree(host_runtime(lab_host) / "postfix.new", ignore_errors=True)
            raise
        # Every file passed: swap the new copies in under the paths Postfix already uses.
        configs = {}
        for lab_host, new in zip(postfix_hosts, prepared, strict=True):
            current = host_runtime(lab_host) / "postfix"
            shutil.rmtree(current)
            new.rename(current)
            configs[lab_host] = current
        # Dovecot first, and restarted when what it reads changed, or when it died: a reload would
        # keep listening on a port whose listener was removed (an exercise does that). Its auth
        # service restarts with it, and Postfix's smtpd processes would keep a dead connection to
        # the old one ("454 4.7.0 Temporary authentication failure"), so Postfix on that host is
        # reloaded after it, changed or not.
        for lab_host, wrapper in wrappers.items():
            if dovecot_needs_restart(wrapper, self.dovecot_pid_file(lab_host), self.dovecot_stamp(lab_host)):
                self.stop_dovecot(lab_host)
                self.start_dovecot(lab_host, wrapper)
                configs.setdefault(lab_host, host_runtime(lab_host) / "postfix")
        for lab_host, config in configs.items():
            run(["postfix", "-c", str(config), "reload"], netns=self.config.namespace(lab_host))
        # An idle smtpd started before the reload may still take one more client with the old files;
        # give those processes a moment to notice and go, so that a check right after sees the new ones.
        time.sleep(RELOAD_SETTLE)

    def postfix_command(self, lab_host: Host, *command: str) -> subprocess.CompletedProcess:
        config = self.config.host_runtime(lab_host) / "postfix"
        return run([command[0], "-c", str(config), *command[1:]], netns=self.config.namespace(lab_host),
                   check=False)
