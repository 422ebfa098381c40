"""How long the lab takes to come up and go down, on both backends, next to Postfix and Dovecot alone.

- containers: ``lab up`` cold (base image and lab image absent: debootstrap, build) and warm,
  and ``lab down``;
- native: ``lab up`` / ``lab down`` (namespaces, CA, five hosts), a few times;
- "bare": one Postfix and one Dovecot started by hand in one namespace from mail.lab.test's
  files, timed until their ports answer: the floor that the lab's orchestration adds to;
- the memory of a running lab (resident memory of every process in the lab's namespaces).

Run as root with ``make benchmarks-lab``. Figures go to standard output; nothing is asserted.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from mailtls import runtime
from mailtls.backends import containers, native
from mailtls.config import LabConfig
from mailtls.generations import GENERATIONS, Generation
from mailtls.hostfiles import installed_generation
from mailtls.hosts import MAIL, SHIPPED_LABS
from mailtls.process import run
from measure import machine, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the helpers the tests use too

from helpers.network import answers
from helpers.polling import wait_until

SINGLE = LabConfig()
LAB_FILES = SINGLE.runtime

ROUNDS = 3


def lab_memory_kib() -> tuple[int, int]:
    own = os.readlink("/proc/self/ns/net")
    total = count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "ns/net") == own:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    count += 1
        except OSError:
            continue
    return total, count


def wait_for(address: str, ports: list[int], timeout: float = 30) -> None:
    """Until every port answers on ``address``; ``WaitTimeout`` after ``timeout`` seconds."""
    wait_until(lambda: all(answers(address, port, timeout=1) for port in ports), timeout, 0.02,
               f"ports {ports} on {address}")


def bare_start() -> float:
    """Postfix and Dovecot from mail.lab.test's files, in one namespace, without the lab around them."""
    ns, address = "mtls-bench", "198.18.1.2"
    scratch = Path(tempfile.mkdtemp(prefix="mailtls-bench-"))
    scratch.chmod(0o755)  # Postfix's daemons run as "postfix" and must reach the queue
    try:
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", "mtls-bench0", "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "addr", "add", "198.18.1.1/24", "dev", "mtls-bench0"])
        run(["ip", "link", "set", "mtls-bench0", "up"])
        run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"], netns=ns)
        for link in ("lo", "eth0"):
            run(["ip", "link", "set", link, "up"], netns=ns)
        # The lab files (certificates, users) the configuration names, and a Postfix copy.
        from mailtls.provision import provision

        provision(LAB_FILES, {MAIL.name: address})
        config = scratch / "postfix"
        config.mkdir()
        for name in ("main.cf", "master.cf"):
            shutil.copy(MAIL.config_file(SHIPPED_LABS, name, installed_generation()), config / name)
        for folder in ("spool", "data", "log"):
            (scratch / folder).mkdir()
        shutil.chown(scratch / "data", "postfix", "postfix")
        run(["postconf", "-c", str(config), "-e", f"queue_directory={scratch / 'spool'}",
                    f"data_directory={scratch / 'data'}", f"maillog_file={scratch / 'log' / 'postfix.log'}",
                    f"maillog_file_prefixes={scratch / 'log'}"])
        wrapper = scratch / "dovecot.conf"
        (scratch / "dovecot").mkdir()
        dovecot_conf = MAIL.config_file(SHIPPED_LABS, "dovecot.conf", installed_generation())
        wrapper.write_text(f"!include {dovecot_conf}\n"
                           f"base_dir = {scratch / 'dovecot'}\nstate_dir = {scratch / 'dovecot'}\n"
                           f"log_path = {scratch / 'log' / 'dovecot.log'}\n")
        start = time.perf_counter()
        run(["postfix", "-c", str(config), "start"], netns=ns)
        run(["dovecot", "-c", str(wrapper)], netns=ns)
        wait_for(address, [25, 587, 465, 143, 993])
        elapsed = time.perf_counter() - start
        run(["postfix", "-c", str(config), "stop"], netns=ns, check=False)
        native.stop_by_pid_file(scratch / "dovecot" / "master.pid")
        return elapsed
    finally:
        run(["ip", "netns", "del", ns], check=False)
        run(["ip", "link", "del", "mtls-bench0"], check=False)
        shutil.rmtree(LAB_FILES, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def measure_backend(backend, label: str) -> None:
    ups, downs = [], []
    for _ in range(ROUNDS):
        ups.append(timed(lambda: backend.up(on_progress=lambda m: None)))
        if len(ups) == 1:
            kib, count = lab_memory_kib()
            print(f"{label}: memory of a running lab: {kib / 1024:.0f} MiB resident in {count} processes "
                  "(shared pages counted once per process)")
        downs.append(timed(backend.down))
    print(f"{label} lab up (until every port answers): {', '.join(f'{t:.1f}' for t in ups)} s")
    print(f"{label} lab down: {', '.join(f'{t:.1f}' for t in downs)} s")


def remove_container_images(generation: Generation) -> None:
    name = containers.require_engine()
    for image in (generation.host_image, generation.base_image):
        run([name, "rmi", "-f", image], check=False, env=containers.engine_env(name))


def main() -> None:
    print(machine())
    if runtime.state(SINGLE):
        raise SystemExit("a lab is up: stop it first (python -m mailtls lab down)")
    if containers.engine() is not None:
        for generation in GENERATIONS:
            remove_container_images(generation)
            lab = containers.ContainersBackend(replace(SINGLE, generation=generation))
            cold = timed(lambda: lab.up(on_progress=lambda m: None))  # noqa: B023 (called at once)
            lab.down()
            print(f"containers, Debian {generation.debian}: lab up, cold (debootstrap "
                  f"{generation.base_image}, build {generation.host_image}): {cold:.1f} s")
            measure_backend(lab, f"containers, Debian {generation.debian} (warm)")
    native_lab = native.NativeBackend(SINGLE)
    measure_backend(native_lab, f"native, Debian {native_lab.wanted_generation().debian}")
    bare = [bare_start() for _ in range(ROUNDS)]
    print("bare Postfix + Dovecot start (mail.lab.test's files, one namespace): "
          f"{', '.join(f'{t:.1f}' for t in bare)} s")


if __name__ == "__main__":
    main()
