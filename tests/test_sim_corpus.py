"""The simulated lab against the real one over variants of the lab's files (``tests/sim_corpus/``).

Readers and students change the configuration; the simulated lab must then do what the real
servers do. The corpus holds variants a course reader makes: every setting the course teaches
with valid, invalid and legacy values, missing files, the other generation's names, typos, and
for each exercise its starting state, its reference solution and wrong solutions as students
write them (:mod:`helpers.corpus`).

- Without a lab: the corpus is complete and applies; every variant runs on the simulated lab of
  each generation it applies to without a crash, and observes the same twice: once with
  CPython's ``ssl`` and once with the browser's TLS engine, tlslite-ng (:mod:`helpers.probes`).
- With a real lab (marker ``lab``): each variant is applied to the real lab's files and the lab
  reloaded once, then observed; the same variant is run on the simulated lab of the same
  generation with each TLS engine and observed with the same code. Every observation must
  match (:mod:`helpers.differential`); the match table by category and the time per variant are
  printed, and a list of every difference (real against simulated) fails the test. With
  ``MAILTLS_CORPUS_RECORD=FOLDER`` the real lab's observations and the report are also written
  there (``corpus-real-LAB.json``, ``corpus-report-LAB.txt``).
  ``tools/corpus_replay.py`` compares such a recording with the simulated lab as it is now.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from helpers import corpus, differential, probes
from helpers.labs import scratch_labs
from mailtls import exercises, generations

ENTRIES = corpus.entries()
ENGINES = ("ssl", "tlslite")
# Each variant's run on the simulated lab of a generation with an engine, made once per test run:
# the simulation does the same whichever test (or real lab kind) it is compared for.
_SIM_RUNS: dict[tuple[str, int, str], differential.Run] = {}


def simulated(entry: corpus.Entry, generation: generations.Generation, engine: str,
              folder: Path) -> differential.Run:
    """``entry`` on the simulated lab (:func:`helpers.differential.run_on_sim`), once per run;
    ``folder`` is used and removed."""
    key = (entry.id, generation.debian, engine)
    if key not in _SIM_RUNS:
        _SIM_RUNS[key] = differential.run_on_sim(entry, generation, engine, folder)
        shutil.rmtree(folder, ignore_errors=True)
    return _SIM_RUNS[key]


def test_the_corpus_covers_what_the_course_teaches(tmp_path: Path) -> None:
    """At least 40 variants; every category; for each exercise its start, its reference solution
    and three wrong ones; every variant changes the files of each generation it names."""
    assert len(ENTRIES) >= 40
    categories = {e.category for e in ENTRIES}
    assert set(corpus.CATEGORY_PROBES) <= categories
    for exercise in exercises.EXERCISES:
        own = [e for e in ENTRIES if e.exercise == exercise.name]
        assert {e.exercise_edits for e in own} >= {("start",), ("start", "solution")}, exercise.name
        assert sum(e.id.startswith(f"{exercise.name}-wrong-") for e in own) >= 3, exercise.name
    for entry in ENTRIES:
        assert entry.description.strip()
        assert set(entry.generations) <= {g.debian for g in generations.GENERATIONS}, entry.id
        for debian in entry.generations:
            labs = scratch_labs(tmp_path / f"{entry.id}-{debian}")
            before = corpus.snapshot(labs)
            corpus.apply(entry, labs, debian)
            assert (corpus.snapshot(labs) == before) == entry.as_it_comes, entry.id
            shutil.rmtree(labs)


def test_the_simulated_lab_page_gives_the_corpus_s_size() -> None:
    """"What the simulated lab simplifies" says how many variants the corpus holds, in both languages."""
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    for edition, says in (("en", "Its corpus holds {} variants"), ("es", "Su corpus tiene {} variantes")):
        text = " ".join((notebooks / edition / "simulated-lab.md").read_text().split())
        assert says.format(len(ENTRIES)) in text, edition


def test_a_difference_is_reported_with_both_sides() -> None:
    """The comparison fails on one differing observation and names it with the real and simulated values."""
    entry = ENTRIES[0]
    real = differential.Run(entry, "native",
                            {"start": "started", "smtp 25/starttls": "220 2.0.0 Ready to start TLS"})
    sim = differential.Run(entry, "sim-debian12-ssl", {"start": "started", "smtp 25/starttls": "502 5.5.1"})
    differences = differential.compare(real, sim)
    assert [(d.observation, d.real, d.sim) for d in differences] == [
        ("smtp 25/starttls", "220 2.0.0 Ready to start TLS", "502 5.5.1")]
    report = differential.Report("native")
    report.add(real, sim, differences)
    assert "0/1" in report.table() and "smtp 25/starttls" in report.mismatches()
    declined = differential.Run(entry, "sim-debian12-ssl",
                                {"start": "declined", "start/words": "not modelled"})
    assert differential.compare(real, declined) == []


@pytest.mark.parametrize("generation", generations.GENERATIONS, ids=lambda g: g.folder)
def test_every_variant_runs_on_the_simulated_lab(generation, tmp_path: Path) -> None:
    """No crash (an exception no client meets against a real server), and the same observations
    from two runs: one with CPython's ``ssl``, one with tlslite-ng (the browser's engine)."""
    problems = []
    for entry in ENTRIES:
        if generation.debian not in entry.generations:
            continue
        runs = []
        for engine in ENGINES:
            runs.append(simulated(entry, generation, engine, tmp_path / f"{entry.id}-{engine}"))
            problems += [f"{entry.id} [{engine}] / {name}: {value}"
                         for name, value in probes.crashes(runs[-1].observations).items()]
        problems += [f"tlslite-ng differs from ssl (shown as real): {d}"
                     for d in differential.compare(*runs)]
    assert not problems, "\n".join(problems)


# Both backends and both generations: the native lab runs Debian 12's Postfix and Dovecot, as the
# containers-debian12 lab does (the other lab tests hold the two backends to the same behaviour),
# and each real-lab run of the corpus takes a quarter of an hour.
CORPUS_LABS = ["native", "containers-debian13"]


@pytest.mark.lab
@pytest.mark.parametrize("lab", CORPUS_LABS, indirect=True)
def test_the_simulated_lab_handles_each_variant_as_the_real_one(lab, tmp_path: Path, record_property) -> None:
    """Each variant on the real lab and on the simulated lab of its generation (both TLS engines)."""
    generation = generations.get(lab.debian)
    kind = differential.lab_kind(lab)
    report = differential.Report(kind)
    original = corpus.snapshot(lab.labs)
    record = Path(os.environ["MAILTLS_CORPUS_RECORD"]) if os.environ.get("MAILTLS_CORPUS_RECORD") else None
    real_runs = []
    baselines: dict[str, dict[str, set[str]]] = {}  # by lab: what it logs as it comes
    assert ENTRIES[0].id == differential.BASELINE
    try:
        for entry in ENTRIES:
            if lab.debian not in entry.generations:
                continue
            real = differential.run_on_real(lab, entry, original)
            real_runs.append(real)
            report.seconds.append(real.seconds)
            if entry.id == differential.BASELINE:
                baselines[kind] = differential.baseline_lines(real)
            real = differential.without_baseline(real, baselines[kind])
            differing = []
            for engine in ENGINES:
                sim = simulated(entry, generation, engine, tmp_path / f"{entry.id}-{engine}")
                if entry.id == differential.BASELINE:
                    baselines[sim.lab] = differential.baseline_lines(sim)
                sim = differential.without_baseline(sim, baselines[sim.lab])
                differing.append(len(compared := differential.compare(real, sim)))
                report.add(real, sim, compared)
            print(f"{entry.id}: {real.start}, {real.seconds:.1f} s, differences (ssl, tlslite) {differing}",
                  flush=True)
            if record is not None:  # as it goes: what was observed is kept if the run stops
                (record / f"corpus-real-{kind}.json").write_text(
                    json.dumps([run.to_json() for run in real_runs], indent=1) + "\n")
    finally:
        differential.put_back(lab, original)
    table = report.table() + "".join(
        f"\nlogged by {name} as it comes (left out of each entry's log): "
        f"{sorted(set().union(*lines.values()))}"
        for name, lines in baselines.items())
    record_property("corpus", table)
    print(f"\n{table}")
    if record is not None:
        (record / f"corpus-report-{kind}.txt").write_text(f"{table}\n\n{report.mismatches()}\n")
    # The checker of the simulated lab must never pass what the real lab fails: said first.
    passed_wrongly = [f"[{sim}] {d.entry} / {d.observation}" for sim, d in report.differences
                      if d.observation.startswith("checker/") and (d.real, d.sim) == ("failed", "passed")]
    said_first = (f"the simulated checker passes what the real lab fails: {passed_wrongly}\n"
                  if passed_wrongly else "")
    assert not report.differences, said_first + report.mismatches()
