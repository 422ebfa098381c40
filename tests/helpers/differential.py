"""One corpus entry run on a lab, the real one or the simulated one; two runs compared; the report.

A run starts the lab with the entry's variant of the files and observes it with
:func:`helpers.probes.observe`. Whether the hosts start is an observation too: ``start`` is
``started``, ``refused`` (with the servers' own words, normalised, in ``start/words``: the real
lab's ``lab reload`` refuses a file Postfix warns about or Dovecot does not accept, and keeps
running the files it had; the simulated lab raises a :class:`~mailtls.errors.LabError` when it is
made), or, on the simulated lab only, ``declined``: the simulation says it does not model a
setting the entry sets (``mailtls.sim.config.NotModelled``). A declined run is no match, and no
mismatch either when the real lab started: it is a documented refusal to simulate, counted apart.
A lab that did not start is not probed further.

What a lab's servers log with the files as they come (the ``baseline`` entry, ``as-it-comes``,
run first) is left out of every entry's ``log`` observations, on each side: those lines say
nothing about the entry (the native lab's smtpd, for one, logs that it has no ``aliases.db``
whatever the configuration); the report shows them.
"""

from __future__ import annotations

import re
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from helpers import corpus, probes
from helpers.corpus import Entry
from helpers.labs import restart_postfix, scratch_labs
from mailtls.errors import LabError
from mailtls.generations import Generation
from mailtls.hosts import HOSTS, host

STARTED, REFUSED, DECLINED = "started", "refused", "declined"
# The lines of a refusal that are the servers' own words (the rest is the lab's wording around them).
_SERVERS_WORDS = re.compile(r"\b(warning|error|fatal|panic|Fatal|Error|Panic):")


@dataclass
class Run:
    """What one lab did with one entry: observations compared, details shown, seconds taken."""

    entry: Entry
    lab: str  # native, containers-debian13, containers-debian12, or sim-debianNN-ENGINE
    observations: probes.Observations
    details: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def start(self) -> str:
        return self.observations["start"]

    def to_json(self) -> dict:
        return {"id": self.entry.id, "category": self.entry.category, "lab": self.lab,
                "seconds": round(self.seconds, 2), "observations": self.observations, "details": self.details}


def refusal_words(message: str) -> str:
    """The servers' own lines of a refusal (``postconf: warning: ...``, ``doveconf: Fatal: ...``),
    normalised; the whole message when it has none."""
    lines = [probes.normalise(line) for line in message.splitlines() if _SERVERS_WORDS.search(line)]
    return "\n".join(lines) if lines else probes.normalise(message)


def started_or_refused(error: BaseException | None) -> probes.Observations:
    if error is None:
        return {"start": STARTED}
    if type(error).__name__ == "NotModelled":
        return {"start": DECLINED, "start/words": probes.normalise(str(error))}
    if isinstance(error, LabError):
        return {"start": REFUSED, "start/words": refusal_words(str(error))}
    return {"start": probes.outcome(error)}


# -- The simulated lab ------------------------------------------------------------------------------


def run_on_sim(entry: Entry, generation: Generation, engine: str, folder: Path) -> Run:
    """``entry`` on a simulated lab of ``generation`` with the TLS engine ``engine`` (``ssl`` or
    ``tlslite``), its files in ``folder`` (made empty). The process's network reaches that lab
    while it runs and nothing afterwards (real addresses go to the real lab again)."""
    from mailtls.lab import Lab, resolve_lab_names
    from mailtls.sim import network, tls
    from mailtls.sim.lab import SimLab
    from mailtls.status import LabStatus

    labs = scratch_labs(folder / "labs")
    corpus.apply(entry, labs, generation.debian)
    began = time.monotonic()
    saved = socket.create_connection
    previous = tls.use(engine)
    details: dict[str, str] = {}
    try:
        try:
            simulated = SimLab(labs, folder / "files", generation=generation)
        except Exception as error:  # a refusal, or a crash, is what is observed
            observed = started_or_refused(error)
        else:
            observed = started_or_refused(None)
            lab = Lab(LabStatus.read(simulated.files))
            resolve_lab_names({e.host: e.address for e in lab.services})
            found, details = probes.observe(lab, entry.probes, entry.exercise)
            observed.update(found)
    finally:
        tls.use(previous)
        network.clear()
        socket.create_connection = saved
    return Run(entry, f"sim-debian{generation.debian}-{engine}", observed, details, time.monotonic() - began)


# -- The real lab ----------------------------------------------------------------------------------


# postconf(5) service_throttle_time (default 60s, which the lab keeps): after a daemon dies as it
# starts, Postfix's master waits that long before it starts that service again, and a `postfix
# reload` does not end the wait (measured on the native lab: 465 answered again 60 s after its
# smtpd died, not at the reload that put its master.cf line back).
THROTTLED = "bad command startup -- throttling"
_throttled: set[str] = set()  # the hosts whose Postfix an earlier entry left with a service throttled


def run_on_real(lab, entry: Entry, original: dict[str, str]) -> Run:
    """``entry`` on the running real lab (the tests' ``LabUnderTest``): its labs/ copy is put back
    to ``original`` (:func:`helpers.corpus.snapshot`), the entry applied, the lab reloaded once
    and observed; queued mail is removed afterwards. The caller puts the original files back at
    the end with :func:`put_back` (the next entry's reload replaces this one's files anyway).

    An entry whose files made a daemon die leaves its service throttled (see :data:`THROTTLED`;
    told by the hosts' logs, whatever the entry observes). The next entry that the lab accepts
    restarts Postfix on those hosts once its own files are in place, and is observed after that
    (a restart before its reload would start the broken files again). So each entry meets the lab
    as the simulated lab, which starts anew for each, meets it; the restart is not counted in the
    entry's seconds."""
    from mailtls.sim import network

    network.clear()  # a simulated lab of this process must not take the real addresses
    corpus.restore(lab.labs, original)
    corpus.apply(entry, lab.labs, lab.debian)
    logged = probes.log_sizes(lab.lab)
    began = time.monotonic()
    details: dict[str, str] = {}
    try:
        lab.backend.reload()
    except LabError as refusal:
        observed = started_or_refused(refusal)
    else:
        began += unthrottle(lab)
        observed = started_or_refused(None)
        found, details = probes.observe(lab.lab, entry.probes, entry.exercise)
        observed.update(found)
    for lab_host in HOSTS:
        if lab_host.postfix:
            lab.backend.postfix_command(lab_host, "postsuper", "-d", "ALL")
    _throttled.update(name for name, start in logged.items()
                      if THROTTLED in probes.log_text(lab.lab, name)[start:])
    return Run(entry, lab_kind(lab), observed, details, time.monotonic() - began)


def unthrottle(lab) -> float:
    """Restart Postfix on each host an earlier entry left with a service throttled; the seconds it took."""
    began = time.monotonic()
    for name in sorted(_throttled):
        restart_postfix(lab, host(name))
    _throttled.clear()
    return time.monotonic() - began


def put_back(lab, original: dict[str, str]) -> None:
    """The running real lab as it came, for the tests after the corpus: ``original`` files
    reloaded, and no service throttled any longer (which a last entry may have left)."""
    from mailtls.sim import network

    network.clear()
    corpus.restore(lab.labs, original)
    lab.backend.reload()
    unthrottle(lab)


def lab_kind(lab) -> str:
    """``native``, or ``containers-debianNN``: as the ``lab`` fixture names its parameters."""
    return "native" if lab.backend_name == "native" else f"{lab.backend_name}-debian{lab.debian}"


# -- The lab as it comes ---------------------------------------------------------------------------

BASELINE = "as-it-comes"


def message(line: str) -> str:
    """A ``log HOST`` observation's line without its program (``postfix/submission/smtpd: ``)."""
    return line.partition(": ")[2]


def baseline_lines(run: Run) -> dict[str, set[str]]:
    """The messages of each ``log HOST`` observation of the lab as it comes (``as-it-comes``),
    without their programs: the same message from another service of the host is no news."""
    return {name: {message(line) for line in value.splitlines()} for name, value in run.observations.items()
            if name.startswith("log ") and value != "nothing"}


def baseline_of(runs: list[Run]) -> dict[str, set[str]]:
    """The baseline among recorded runs: the ``as-it-comes`` run's log lines, or, in a recording
    without it, those of every run that left the lab as it comes (``Entry.as_it_comes``)."""
    own = [run for run in runs if run.entry.id == BASELINE]
    found: dict[str, set[str]] = {}
    for run in own or [run for run in runs if run.entry.as_it_comes]:
        for name, lines in baseline_lines(run).items():
            found.setdefault(name, set()).update(lines)
    return found


_RECORDED_HANG_UP = re.compile(
    r"failed: (ConnectionResetError \[Errno 104\].*|SSLZeroReturnError .*|SSLEOFError .*)")


def renormalised(observations: probes.Observations) -> probes.Observations:
    """Recorded observations as :mod:`helpers.probes` words them now: each line normalised again,
    a line said twice kept once (log lines and a refusal's words), and a hang-up as one outcome."""
    found: probes.Observations = {}
    for name, value in observations.items():
        if _RECORDED_HANG_UP.fullmatch(value):
            value = probes.HUNG_UP
        elif name.startswith("log ") or name == "start/words":
            value = "\n".join(dict.fromkeys(probes.normalise(line) for line in value.splitlines()
                                             if not probes.LEFT_OUT.search(line))) or "nothing"
        found[name] = value
    return found


def from_json(recorded: dict, entries: dict[str, Entry]) -> Run | None:
    """A run from :meth:`Run.to_json`, for the entry of that id now (None if there is none), its
    observations :func:`renormalised`."""
    entry = entries.get(recorded["id"])
    if entry is None:
        return None
    return Run(entry, recorded["lab"], renormalised(recorded["observations"]), recorded.get("details", {}),
               recorded.get("seconds", 0.0))


def without_baseline(run: Run, baseline: dict[str, set[str]]) -> Run:
    """``run`` with the baseline's lines taken out of its ``log HOST`` observations."""
    observations = dict(run.observations)
    for name, lines in baseline.items():
        if name in observations:
            kept = [line for line in observations[name].splitlines() if message(line) not in lines]
            observations[name] = "\n".join(kept) or "nothing"
    return Run(run.entry, run.lab, observations, run.details, run.seconds)


# -- Comparing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One observation on which the real lab and the simulated one differ."""

    entry: str
    observation: str
    real: str
    sim: str

    def __str__(self) -> str:
        return f"{self.entry} / {self.observation}:\n    real: {self.real!r}\n    sim:  {self.sim!r}"


NOT_OBSERVED = "<not observed>"


def compare(real: Run, sim: Run) -> list[Difference]:
    """Every observation that differs, in the real run's order, then those only the simulation made.

    A declined simulation of a lab that started is no difference (see the module's docstring).
    """
    if sim.start == DECLINED and real.start == STARTED:
        return []
    names = list(real.observations) + [n for n in sim.observations if n not in real.observations]
    return [Difference(real.entry.id, n, real.observations.get(n, NOT_OBSERVED),
                       sim.observations.get(n, NOT_OBSERVED))
            for n in names if real.observations.get(n) != sim.observations.get(n)]


@dataclass
class Report:
    """Matches by category, for one real lab kind against the simulation with each engine."""

    lab: str
    rows: dict[tuple[str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    differences: list[tuple[str, Difference]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, real: Run, sim: Run, differences: list[Difference]) -> None:
        """Count one comparison: entries matched, declined, total; observations matched, total."""
        row = self.rows[(sim.lab, real.entry.category)]
        row[0] += not differences and sim.start != DECLINED
        row[1] += sim.start == DECLINED and not differences
        row[2] += 1
        row[3] += len(set(real.observations) | set(sim.observations)) - len(differences)
        row[4] += len(set(real.observations) | set(sim.observations))
        self.differences += [(sim.lab, d) for d in differences]

    def table(self) -> str:
        """The match table: one line per simulation and category, then the totals, then timings."""
        lines = [f"{'real ' + self.lab + ' vs':<28} {'category':<24} {'entries':>9} {'declined':>8} "
                 f"{'observations':>13}"]
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])

        def line(sim: str, category: str, row: list[int]) -> str:
            return f"{sim:<28} {category:<24} {row[0]:>4}/{row[2]:<4} {row[1]:>8} {row[3]:>6}/{row[4]:<6}"

        for (sim, category), row in sorted(self.rows.items()):
            lines.append(line(sim, category, row))
            totals[sim] = [a + b for a, b in zip(totals[sim], row, strict=True)]
        lines += [line(sim, "ALL", row) for sim, row in sorted(totals.items())]
        if self.seconds:
            lines.append(f"real lab {self.lab}: {len(self.seconds)} entries in {sum(self.seconds):.0f} s, "
                         f"{sum(self.seconds) / len(self.seconds):.1f} s per entry "
                         f"(slowest {max(self.seconds):.1f} s)")
        return "\n".join(lines)

    def mismatches(self) -> str:
        return "\n".join(f"[{sim}] {difference}" for sim, difference in self.differences)
