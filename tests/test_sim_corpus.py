"""The simulated lab over variants of the lab's files (``tests/sim_corpus/``).

Readers and students change the configuration; the simulated lab must then do what the real
servers do. The corpus holds variants a course reader makes: every setting the course teaches
with valid, invalid and legacy values, missing files, the other generation's names, typos, and
for each exercise its starting state, its reference solution and wrong solutions as students
write them (:mod:`helpers.corpus`).

- The corpus is complete and applies to the files of each generation it names, and the
  comparison of two runs' observations (:mod:`helpers.probes`, :mod:`helpers.differential`)
  names each difference with both values.
- Each variant observed on the real lab (:func:`helpers.differential.run_on_real`) and on the
  simulated lab with each TLS engine (:func:`helpers.differential.run_on_sim`) is what the
  simulation is held to; those comparisons do not all match yet, so they are not in this file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import corpus, differential
from helpers.labs import scratch_labs
from mailtls import exercises, generations

ENTRIES = corpus.entries()
ENGINES = ("ssl", "tlslite")


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
