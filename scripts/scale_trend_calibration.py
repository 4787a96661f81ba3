"""The scale trend's calibration through the command's own fit: simulated studies whose
truth is known, each size's tuning run as trials are (a few learning rates, the same at
every size, each trial's score off the lr response by its seed; the best one chosen), the
speedup the mean over its curve seeds with a percentile bootstrap interval over them, about
the true line plus where both optimizers' tuning landed (carried into the speedup by the
delta method), and each size's tuning noise estimated from its trials
(``scale.tuning_spread`` and ``scale.tuning_noise``, as ``read_size`` estimates it) and
fitted by ``scale.trends`` -- the function ``descentlab scale`` prints. Prints, per cell,
how often the slope's interval holds the true slope, how often a flat truth shows a trend
(a slope interval without 0), how often a printed crossing's interval holds the true
crossing and how often a true crossing is refused, each with its Monte-Carlo standard error
and the number of studies, and the speedup's realized tuning sd (docs/scale.md).

    PYTHONPATH=src python scripts/scale_trend_calibration.py [--sims 500] [--before <tree>/src]

``--before``: another tree's ``src`` whose ``trend`` is measured beside, called as its
command called it (the speedups alone: no tuning noise). Shapes (``--cells``' fourth
field): ``line`` (the truth a line, the lr response a parabola), ``curved`` (the truth
curved: ``CURVE`` a tenfold squared about the sizes' middle), ``skewed`` (the lr response
three times as steep above its best as below, and flat-topped: ``|v|^1.5``). Seeded;
several minutes of CPU at 500 studies a cell.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

from descentlab.experiments import scale
from descentlab.experiments.scale import AtSize, SizeResult

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


#: the tuning trials' learning rates (log10), the same at every size as the comparison's
#: quasi-random draws are
GRID = np.array([-3.9, -3.35, -2.7, -2.2, -1.55, -1.05])
#: where the best learning rate lies at each size (log10), uniform: anywhere the grid spans
BEST = (GRID[0], GRID[-1])
TRIAL_SD = 0.01  # one tuning trial's score about its setting's (its seed)
PER_SCORE = 4.0  # the speedup's change per unit of the score (the curve's delta method)
CURVE = 0.05  # the curved truth: a tenfold squared about the sizes' middle


def _response(v: np.ndarray, shape: str) -> np.ndarray:
    """How far below its best a setting ``v`` (log10 lr) from the best scores, per unit of
    curvature."""
    if shape == "skewed":
        return np.where(v > 0, 3.0, 1.0) * np.abs(v) ** 1.5
    return v * v


def _tuned(rng: np.random.Generator, n: int, curvature: float, shape: str, said: bool = True):
    """``n`` sizes' tuning of one optimizer: ``(deficit, (sd, df) from the trials)`` each
    (``said`` False: the deficits alone)."""
    best = rng.uniform(*BEST, n)
    loss = curvature * _response(GRID[None, :] - best[:, None], shape)
    scores = 0.9 - loss + TRIAL_SD * rng.standard_normal(loss.shape)
    chosen = scores.argmax(1)
    deficit = loss[np.arange(n), chosen]
    return deficit, [scale.tuning_spread(10.0**GRID, s) for s in scores] if said else []


@functools.lru_cache(maxsize=8)
def curvature_for(tuning: float, shape: str) -> float:
    """The lr response's curvature at which the speedup's tuning noise (both optimizers')
    has the standard deviation ``tuning``, measured on 20,000 sizes (seeded)."""
    rng = np.random.default_rng(7)
    a, _ = _tuned(rng, 20000, 1.0, shape, said=False)
    b, _ = _tuned(rng, 20000, 1.0, shape, said=False)
    return tuning / (PER_SCORE * float(np.std(a - b)))


def _sizes(
    rng: np.random.Generator,
    seeds: int,
    slope: float,
    tuning: float,
    params: np.ndarray,
    intercept: float = A,
    shape: str = "line",
) -> tuple[list[SizeResult], np.ndarray]:
    """One study as ``read_size`` gives it: the baseline's and one candidate's row a size,
    the candidate's speedup the mean over ``seeds`` curve seeds about the truth plus where
    both tunings landed, with the comparison's bootstrap interval, and each size's tuning
    noise from the trials; also the realized tuning offsets."""
    x = np.log10(params)
    truth = intercept + slope * x
    if shape == "curved":
        truth = truth + CURVE * (x - x.mean()) ** 2
    c = curvature_for(tuning, shape) if tuning > 0 else 0.0
    cand, said_c = _tuned(rng, len(x), c, shape)
    base, said_b = _tuned(rng, len(x), c, shape)
    offset = PER_SCORE * (base - cand)
    triples = _bootstrap(rng, truth + offset, seeds)
    out = []
    for i, p in enumerate(params):
        noise = scale.tuning_noise(said_c[i], said_b[i], PER_SCORE)
        rows = (AtSize("base", (1.0,) * 3, (1.0,) * 3, None, "chosen"),
                AtSize("cand", triples[i], triples[i], None, "worse", "",
                       *(noise or (None, None))))  # fmt: skip
        out.append(SizeResult("size", i, int(p), "base", rows, "", ""))
    return out, offset


def _bootstrap(rng: np.random.Generator, centre: np.ndarray, seeds: int) -> list:
    """Each size's (mean, low, high) over ``seeds`` curve seeds about ``centre``: the
    comparison's percentile bootstrap over them."""
    y = centre[:, None] + SEED_SD * rng.standard_normal((len(centre), seeds))
    pick = rng.integers(0, seeds, (len(centre), RESAMPLES, seeds))
    means = np.take_along_axis(y[:, None, :].repeat(RESAMPLES, 1), pick, 2).mean(2)
    lo, hi = np.quantile(means, [0.025, 0.975], axis=1)
    return [(float(m), float(a), float(b)) for m, a, b in zip(y.mean(1), lo, hi, strict=True)]


def _cells(only: str | None = None) -> list[tuple[int, int, float, str]]:
    """``(curve seeds, sizes, tuning sd, shape)``; ``only``: ``"k,sizes,sd,shape;..."``."""
    if only:
        return [(int(k), int(n), float(t), shape) for k, n, t, shape in
                (c.split(",") for c in only.split(";"))]  # fmt: skip
    out = [(2, n, 0.1, "line") for n in (4, 5)] + [(5, n, 0.1, "line") for n in (4, 5)]
    out += [(2, n, 0.0, "line") for n in (4, 5)] + [(2, n, 0.05, "line") for n in (4, 5)]
    return out + [(2, n, 0.1, shape) for shape in ("curved", "skewed") for n in (4, 5)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=500)
    ap.add_argument("--before", default=None)
    ap.add_argument("--cells", default=None, help='only these: "seeds,sizes,sd,shape;..."')
    args = ap.parse_args()
    fits = {"after": lambda sizes, k: scale.trends(sizes, seeds=k, draws=10)["cand"]}
    if args.before:
        old = _load_before(args.before)
        fits = {"before": lambda sizes, k: old([s.params for s in sizes],
                                               [s.row("cand").steps for s in sizes],
                                               draws=10, seeds=k), **fits}  # fmt: skip
    print(
        "| fit | seeds | sizes | tuning sd | shape | studies | tuning sd realized | "
        "slope covered | flat: trend shown | crossing covered | true crossing refused |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seeds, sizes, tuning, shape in _cells(args.cells):
        params = 10.0 ** np.arange(4, 4 + sizes)
        cross = 10.0 ** ((1 - CROSS_A) / CROSS_B)
        for name, fit in fits.items():
            rng = np.random.default_rng([seeds, sizes, int(100 * tuning), len(shape)])
            n, cov, flat, crossed, printed, refused = args.sims, 0, 0, 0, 0, 0
            offsets = []
            for _ in range(n):
                study, off = _sizes(rng, seeds, B, tuning, params, shape=shape)
                offsets.append(off)
                t = fit(study, seeds)
                cov += t.slope is None or t.slope[1] <= B <= t.slope[2]
                f = fit(_sizes(rng, seeds, 0.0, tuning, params, shape=shape)[0], seeds)
                flat += f.slope is not None and not f.slope[1] <= 0 <= f.slope[2]
                c = fit(_sizes(rng, seeds, CROSS_B, tuning, params, CROSS_A, shape)[0], seeds)
                if c.crossing is None:
                    refused += 1
                else:
                    printed += 1
                    crossed += c.crossing[1] <= cross <= c.crossing[2]
            c, fl, r = cov / n, flat / n, refused / n
            cc = crossed / max(printed, 1)
            real = float(np.std(np.concatenate(offsets)))
            print(
                f"| {name} | {seeds} | {sizes} | {tuning} | {shape} | {n} | {real:.3f} | "
                f"{c:.1%} +- {_se(c, n):.1%} | {fl:.1%} +- {_se(fl, n):.1%} | "
                f"{cc:.1%} +- {_se(cc, max(printed, 1)):.1%} ({printed}) | "
                f"{r:.1%} +- {_se(r, n):.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
