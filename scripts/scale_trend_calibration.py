"""The scale trend's calibration: simulated studies whose truth is known, built as a study
builds them (each size's speedup the mean over its curve seeds with a percentile bootstrap
interval over those seeds, plus a per-size tuning noise the intervals do not hold), fitted by
``descentlab.experiments.scale.trend``. Prints, per cell, how often the slope's interval
holds the true slope and how often a flat truth shows a trend (a slope interval without 0),
each with its Monte-Carlo standard error and the number of studies (docs/scale.md).

    PYTHONPATH=src python scripts/scale_trend_calibration.py [--sims 1000] [--before /work/main/src]

``--before``: another tree's ``src`` whose ``trend`` is measured beside this one's (it takes
no ``seeds``). Seeded; about a minute of CPU at 1,000 studies a cell.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

from descentlab.experiments.scale import trend

PARAMS = np.array([1e4, 1e5, 1e6, 1e7])
A, B = 1.5, -0.1  # the truth: the speedup falls by 0.1 a tenfold, 1.0 at 1e5
SEED_SD = 0.1  # one curve seed's speedup about its size's
RESAMPLES = 200


def _study(rng: np.random.Generator, seeds: int, slope: float, tuning: float) -> list:
    truth = A + slope * np.log10(PARAMS)
    out = []
    for t in truth:
        centre = t + tuning * rng.standard_normal()  # this size's tuning landed here
        y = centre + SEED_SD * rng.standard_normal(seeds)
        means = y[rng.integers(0, seeds, (RESAMPLES, seeds))].mean(1)
        lo, hi = np.quantile(means, [0.025, 0.975])
        out.append((float(y.mean()), float(lo), float(hi)))
    return out


def _load_before(src: str):
    spec = importlib.util.spec_from_file_location(
        "scale_before", Path(src) / "descentlab" / "experiments" / "scale.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["scale_before"] = mod  # (its dataclasses look their module up)
    spec.loader.exec_module(mod)
    return mod.trend


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--before", default=None)
    args = ap.parse_args()
    fits = {"after": lambda p, s, k: trend(p, s, draws=10, seeds=k)}
    if args.before:
        old = _load_before(args.before)
        fits = {"before": lambda p, s, k: old(p, s, draws=10), **fits}
    print("| fit | seeds | tuning sd | studies | slope covered | flat: trend shown | refused |")
    print("|---|---|---|---|---|---|---|")
    for seeds in (2, 3, 5, 10):
        for tuning in (0.0, 0.05):
            for name, fit in fits.items():
                rng = np.random.default_rng([seeds, int(100 * tuning)])
                n, cov, flat, refused = args.sims, 0, 0, 0
                for _ in range(n):
                    t = fit(PARAMS, _study(rng, seeds, B, tuning), seeds)
                    if t.slope is None:
                        refused += 1
                    else:
                        cov += t.slope[1] <= B <= t.slope[2]
                    f = fit(PARAMS, _study(rng, seeds, 0.0, tuning), seeds)
                    flat += f.slope is not None and not f.slope[1] <= 0 <= f.slope[2]
                c, fl = (cov + refused) / n, flat / n
                print(
                    f"| {name} | {seeds} | {tuning} | {n} | {c:.1%} +- {_se(c, n):.1%} | "
                    f"{fl:.1%} +- {_se(fl, n):.1%} | {refused / n:.1%} |"
                )


if __name__ == "__main__":
    main()
