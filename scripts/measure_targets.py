"""Measure the fixed targets of the suite's problems (src/descentlab/problems/targets.json).

For each problem of ``descentlab compare --problems default`` (and the other problems with
suite settings, ``digits32``), in the suite's setting (its model, batch size, steps and split:
``descentlab.experiments.multi.SUITE_SETTINGS``), and for each ``PROBLEM/MODEL`` of
``descentlab.experiments.multi.TARGET_SETTINGS`` (``charlm/gpt``: the suite's setting of the
problem with another model), a reference comparison of Adam alone
(``descentlab.experiments.reference.measure_target``: its learning rate chosen on a 5-point
log grid over its range on validation data, constant lr, one tuning seed, then 3 seeds; the
medians of the final validation and refit test metrics).

Run ``python scripts/measure_targets.py`` (the default suite; minutes on 2 cores) or ``...
NAME...``; ``--check`` compares what it measures with the stored file (exit 1 on a
difference) without writing. The reference runs go to ``--runs-dir`` (default a temporary
folder); the file is replaced in one atomic write.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from descentlab.experiments.multi import (  # noqa: E402
    DEFAULT_SUITE,
    SUITE_SETTINGS,
    TARGET_SETTINGS,
    _spec_for,
)
from descentlab.experiments.reference import measure_target  # noqa: E402
from descentlab.problems.targets import TARGETS_FILE  # noqa: E402

#: What can be measured: the default suite first (no ``names`` measures those).
MEASURABLE: tuple[str, ...] = (
    *DEFAULT_SUITE,
    *(n for n in SUITE_SETTINGS if n not in DEFAULT_SUITE),
    *TARGET_SETTINGS,
)


def measure(name: str, runs_dir: str, workers: int | None) -> dict:
    spec = _spec_for(name.split("/", 1)[0], TARGET_SETTINGS.get(name, {}))
    spec.validate()
    entry = measure_target(name, spec, runs_dir, workers=workers, progress=True).to_dict()
    del entry["problem"]
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*",
        help=f"of {', '.join(MEASURABLE)} (default: {', '.join(DEFAULT_SUITE)})",
    )  # fmt: skip
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    parser.add_argument("--runs-dir", help="where the reference runs go (default: a temp folder)")
    parser.add_argument("--workers", type=int, help="worker processes (default: the CPUs)")
    args = parser.parse_args()
    names = args.names or list(DEFAULT_SUITE)
    unknown = sorted(set(names) - set(MEASURABLE))
    if unknown:
        parser.error(f"unknown problems {unknown}; valid: {', '.join(MEASURABLE)}")
    stored = json.loads(TARGETS_FILE.read_text()) if TARGETS_FILE.exists() else {}
    with tempfile.TemporaryDirectory(prefix="descentlab-targets-") as tmp:
        measured = {n: measure(n, args.runs_dir or tmp, args.workers) for n in names}
    if args.check:
        differ = [n for n in names if stored.get(n) != measured[n]]
        for n in differ:
            print(f"{n}: stored {stored.get(n)}\n{' ' * len(n)}  measured {measured[n]}")
        return 1 if differ else 0
    out = {**stored, **measured}
    tmp_path = TARGETS_FILE.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(dict(sorted(out.items())), indent=2) + "\n")
    os.replace(tmp_path, TARGETS_FILE)
    for n in names:
        print(f"{n}: {measured[n]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
