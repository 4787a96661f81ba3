"""The scale trend's calibration: simulated studies whose truth is known, built as a study
builds them (each size's speedup the mean over its curve seeds with a percentile bootstrap
interval over those seeds, plus a per-size tuning noise the intervals do not hold), fitted by
``descentlab.experiments.scale.trend``. Prints, per cell, how often the slope's interval
holds the true slope, how often a flat truth shows a trend (a slope interval without 0), how
often a printed crossing's interval holds the true crossing and how often a true crossing is
refused, each with its Monte-Carlo standard error and the number of studies
(docs/scale.md).

    PYTHONPATH=src python scripts/scale_trend_calibration.py [--sims 500] [--before <tree>/src]

``--before``: another tree's ``src`` whose ``trend`` is measured beside this one's (without
the tuning trials' sd, which it does not take). The fit after is given each size's tuning sd
as its tuning trials would measure it (:func:`tuning_sd`, drawn from a generator of its own
so that both fits see the same studies). Seeded; vectorised draws, a few minutes of CPU at
500 studies a cell.
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
RESAMPLES = 2000  # the comparison's (compare.speedup.RESAMPLES)
#: the crossing cells' truth: falls by 0.3 a tenfold, 1.0 at 1e6 (inside 4 or 5 sizes)
CROSS_A, CROSS_B = 2.8, -0.3
#: the degrees of freedom of each size's tuning sd as its tuning trials measure it (a sample
#: variance over 6 trials' readings of the tuned setting's speedup)
TUNING_DF = 5


def tuning_sd(rng: np.random.Generator, tuning: float, sizes: int, df: float = TUNING_DF):
    """Each size's tuning sd as its own tuning trials measure it: the truth ``tuning`` times
    the square root of a chi-square on ``df`` over ``df``, independently a size."""
    return tuning * np.sqrt(rng.chisquare(df, sizes) / df)


def _study(
    rng: np.random.Generator,
    seeds: int,
    slope: float,
    tuning: float,
    params: np.ndarray = PARAMS,
    intercept: float = A,
) -> list:
    """One study: each size's (mean, low, high) over ``seeds`` curve seeds about the line
    plus that size's own tuning noise (sd ``tuning``)."""
    truth = intercept + slope * np.log10(params)
    centre = truth + tuning * rng.standard_normal(len(truth))  # each size's tuning landed here
    y = centre[:, None] + SEED_SD * rng.standard_normal((len(truth), seeds))
    pick = rng.integers(0, seeds, (len(truth), RESAMPLES, seeds))
    means = np.take_along_axis(y[:, None, :].repeat(RESAMPLES, 1), pick, 2).mean(2)
    lo, hi = np.quantile(means, [0.025, 0.975], axis=1)
    return [(float(m), float(a), float(b)) for m, a, b in zip(y.mean(1), lo, hi, strict=True)]


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


def _cells(only: str | None = None) -> list[tuple[int, int, float]]:
    """``(curve seeds, sizes, tuning sd)``; ``only``: ``"k,sizes,sd;..."``, those alone."""
    if only:
        return [(int(k), int(n), float(t)) for k, n, t in
                (c.split(",") for c in only.split(";"))]  # fmt: skip
    out = [(k, 4, t) for k in (2, 3, 5, 10) for t in (0.0, 0.05)]
    return [*out, (2, 4, 0.1), (2, 5, 0.1), (5, 5, 0.1), (5, 4, 0.1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=500)
    ap.add_argument("--before", default=None)
    ap.add_argument("--cells", default=None, help='only these: "seeds,sizes,sd;..."')
    args = ap.parse_args()
    fits = {"after": lambda p, s, k, sd: trend(p, s, draws=10, seeds=k, tuning=sd,
                                               tuning_df=TUNING_DF)}  # fmt: skip
    if args.before:
        old = _load_before(args.before)
        fits = {"before": lambda p, s, k, sd: old(p, s, draws=10, seeds=k), **fits}
    print("| fit | seeds | sizes | tuning sd | studies | slope covered | flat: trend shown | "
          "crossing covered | true crossing refused |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for seeds, sizes, tuning in _cells(args.cells):
        params = 10.0 ** np.arange(4, 4 + sizes)
        cross = 10.0 ** ((1 - CROSS_A) / CROSS_B)
        for name, fit in fits.items():
            rng = np.random.default_rng([seeds, sizes, int(100 * tuning)])
            trials = np.random.default_rng([seeds, sizes, int(100 * tuning), 1])
            n, cov, flat, crossed, printed, refused = args.sims, 0, 0, 0, 0, 0
            for _ in range(n):
                sd = [tuning_sd(trials, tuning, sizes) for _ in range(3)]
                t = fit(params, _study(rng, seeds, B, tuning, params), seeds, sd[0])
                cov += t.slope is None or t.slope[1] <= B <= t.slope[2]
                f = fit(params, _study(rng, seeds, 0.0, tuning, params), seeds, sd[1])
                flat += f.slope is not None and not f.slope[1] <= 0 <= f.slope[2]
                c = fit(params, _study(rng, seeds, CROSS_B, tuning, params, CROSS_A), seeds,
                        sd[2])  # fmt: skip
                if c.crossing is None:
                    refused += 1
                else:
                    printed += 1
                    crossed += c.crossing[1] <= cross <= c.crossing[2]
            c, fl, r = cov / n, flat / n, refused / n
            cc = crossed / max(printed, 1)
            print(
                f"| {name} | {seeds} | {sizes} | {tuning} | {n} | {c:.1%} +- {_se(c, n):.1%} | "
                f"{fl:.1%} +- {_se(fl, n):.1%} | {cc:.1%} +- {_se(cc, max(printed, 1)):.1%} "
                f"({printed}) | {r:.1%} +- {_se(r, n):.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
