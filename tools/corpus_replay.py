"""Compare the real lab's recorded corpus observations with the simulated lab as it is now.

The corpus test (``tests/test_sim_corpus.py``) runs each variant of ``labs/`` on the real lab and
on the simulated lab; with ``MAILTLS_CORPUS_RECORD=FOLDER`` it also writes the real lab's
observations there (``corpus-real-LAB.json``). This tool replays such a recording against the
simulation of the working tree, without a lab, to follow the simulation's progress between runs
on the real lab:

    python tools/corpus_replay.py FOLDER/corpus-real-native.json [more recordings]

It prints the match table by category and every difference, and exits with status 1 when there
is one. ``native`` recordings are of this machine's Debian release.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the corpus and its probes are the tests' helpers

from helpers import corpus, differential  # noqa: E402
from mailtls import generations  # noqa: E402
from mailtls.hostfiles import installed_generation  # noqa: E402

ENGINES = ("ssl", "tlslite")


def replay(recording: Path, scratch: Path) -> differential.Report:
    """The report of one recording against the simulated lab of its generation, both engines."""
    by_id = {e.id: e for e in corpus.entries()}
    runs = [run for recorded in json.loads(recording.read_text())
            if (run := differential.from_json(recorded, by_id)) is not None]
    kind = runs[0].lab
    debian = installed_generation().debian if kind == "native" else int(kind.rpartition("debian")[2])
    generation = generations.get(debian)
    report = differential.Report(kind)
    real_baseline = differential.baseline_of(runs)
    recorded_ids = {r.entry.id for r in runs}
    # The same runs as the recording's baseline: its own as-it-comes run, or (in an older recording)
    # the runs that leave the lab as it comes.
    baseline_ids = (({differential.BASELINE} & recorded_ids)
                    | {r.entry.id for r in runs if r.entry.as_it_comes})
    sims = {(entry_id, engine): differential.run_on_sim(by_id[entry_id], generation, engine,
                                                         scratch / f"{entry_id}-{engine}")
            for entry_id in recorded_ids for engine in ENGINES}
    for engine in ENGINES:
        baseline = differential.baseline_of([sims[(e, engine)] for e in sorted(baseline_ids)])
        for real in runs:
            sim = differential.without_baseline(sims[(real.entry.id, engine)], baseline)
            real_ = differential.without_baseline(real, real_baseline)
            report.add(real_, sim, differential.compare(real_, sim))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recordings", nargs="+", type=Path, help="corpus-real-LAB.json files")
    arguments = parser.parse_args(argv)
    differing = False
    for recording in arguments.recordings:
        with tempfile.TemporaryDirectory() as scratch:
            report = replay(recording, Path(scratch))
        print(report.table())
        if report.differences:
            differing = True
            print(report.mismatches())
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
