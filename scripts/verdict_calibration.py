"""The verdict's calibration through its own decision function: simulated comparisons whose
truth is known, each run the way a comparison adds seeds (``sequential.look`` until no
comparison is open, the chosen one to every look, then the final look), one number per seed
(a loss: lower is better). Prints, per cell, the family-wise rate of calls the truth denies,
the power where one optimizer is truly worse, and the mean test seeds spent per optimizer,
each with its Monte-Carlo standard error and the number of simulated comparisons
(docs/verdict.md).

    PYTHONPATH=src python scripts/verdict_calibration.py [--sims 400] [--before /work/main/src]

``--before``: another tree's ``src`` whose ``sequential.look`` is measured beside this one's.
Seeded; a few minutes of CPU at 400 comparisons a cell.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cell:
    """``m`` optimizers, the chosen one 0 (chosen on other seeds), the judged ones drawn by
    ``draw(rng, o, n)``; ``truth[o]``: optimizer ``o``'s mean less the chosen one's
    (positive: worse)."""

    name: str
    m: int
    looks: tuple[int, ...]
    draw: Callable[[np.random.Generator, int, int], np.ndarray]
    truth: tuple[float, ...]


def _lognormal(sigma: float, mean: float = 1.0) -> Callable[..., np.ndarray]:
    """Log-normal seeds of log-sd ``sigma`` scaled to ``mean``."""
    return lambda rng, n: mean * np.exp(sigma * rng.standard_normal(n) - sigma**2 / 2)


def _cells() -> list[Cell]:
    half = np.sqrt(0.5)  # each optimizer's seed sd: paired differences of sd 1
    out = []
    for looks in ((5,), (10,), (5, 10, 20, 40)):
        tag = "x".join(map(str, looks)) if len(looks) == 1 else "default"
        for m in (2, 3, 5):
            out.append(
                Cell(
                    f"normal-M{m}-{tag}",
                    m,
                    looks,
                    lambda rng, o, n: half * rng.standard_normal(n),
                    (0.0,) * m,
                )
            )
            sk = {0: _lognormal(0.5), 1: _lognormal(1.0)}
            out.append(
                Cell(
                    f"skewed-M{m}-{tag}",
                    m,
                    looks,
                    lambda rng, o, n, sk=sk: sk.get(o, sk[0])(rng, n),
                    (0.0,) * m,
                )
            )
        sk5 = {0: _lognormal(0.5), 1: _lognormal(1.0, 1.05)}
        out.append(
            Cell(
                f"skewed-5%worse-M2-{tag}",
                2,
                looks,
                lambda rng, o, n, sk=sk5: sk[o](rng, n),
                (0.0, 0.05),
            )
        )
        out.append(
            Cell(
                f"spread3x-M3-{tag}",
                3,
                looks,
                lambda rng, o, n: (3.0 if o == 1 else 1.0) * half * rng.standard_normal(n),
                (0.0,) * 3,
            )
        )
        out.append(
            Cell(
                f"bimodal-M3-{tag}",
                3,
                looks,
                lambda rng, o, n: (
                    np.where(rng.random(n) < 0.5, -1.0, 1.0)
                    if o == 1
                    else half * rng.standard_normal(n)
                ),
                (0.0,) * 3,
            )
        )
        out.append(
            Cell(
                f"rare-bad-M3-{tag}",
                3,
                looks,
                lambda rng, o, n: (
                    half * rng.standard_normal(n)
                    + (np.where(rng.random(n) < 0.1, 4.5, -0.5) if o == 1 else 0.0)
                ),
                (0.0,) * 3,
            )
        )
        for sd in (1.0, 2.0):
            out.append(
                Cell(
                    f"power-{sd:g}sd-M3-{tag}",
                    3,
                    looks,
                    lambda rng, o, n, sd=sd: (
                        (sd if o == 2 else 0.0) + half * rng.standard_normal(n)
                    ),
                    (0.0, 0.0, sd),
                )
            )
    return out  # fmt: skip


def run(cell: Cell, sequential, rng: np.random.Generator) -> tuple[bool, bool, float]:
    """One comparison: ``(a call the truth denies, the truly worse one called worse, mean
    test seeds of the judged ones)``."""
    top = cell.looks[-1]
    seeds = [cell.draw(rng, o, top) for o in range(cell.m)]
    best = dict(enumerate(seeds[0]))
    given = [cell.looks[0]] * (cell.m - 1)
    while True:
        others = [dict(enumerate(seeds[o + 1][: given[o]])) for o in range(cell.m - 1)]
        r = sequential.look(best, others, maximize=False, looks=cell.looks)
        if not r.open or r.next_seeds <= max(given):
            break
        for i in r.open:
            given[i] = r.next_seeds
    r = sequential.look(best, others, maximize=False, looks=cell.looks, final=True)
    false = hit = False
    for o, t in enumerate(r.tests, start=1):
        truth = cell.truth[o]
        false |= (t.verdict == "worse" and truth <= 0) or (t.verdict == "better" and truth >= 0)
        hit |= t.verdict == "worse" and truth > 0
    return false, hit, float(np.mean(given))


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def _module(src: str | None):
    if src is None:
        from descentlab.experiments.compare import sequential

        return sequential
    for name in [k for k in sys.modules if k.startswith("descentlab")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    mod = importlib.import_module("descentlab.experiments.compare.sequential")
    sys.path.pop(0)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--before", default=None)
    ap.add_argument("--only", default="", help="cells whose name holds one of these (commas)")
    args = ap.parse_args()
    trees = [("after", None)] + ([("before", args.before)] if args.before else [])
    words = [w for w in args.only.split(",") if w]
    cells = [c for c in _cells() if not words or any(w in c.name for w in words)]
    print(
        "| cell | design | comparisons | false calls (FWER) | truly worse called | "
        "mean test seeds |"
    )
    print("|---|---|---|---|---|---|")
    for name, src in trees:
        sequential = _module(src)
        for c in cells:
            rng = np.random.default_rng([sum(map(ord, c.name)), c.m, *c.looks])
            got = [run(c, sequential, rng) for _ in range(args.sims)]
            n = len(got)
            f, h = np.mean([g[0] for g in got]), np.mean([g[1] for g in got])
            power = f"{h:.1%} +- {_se(h, n):.1%}" if any(t > 0 for t in c.truth) else "-"
            print(
                f"| {c.name} | {name} | {n} | {f:.1%} +- {_se(f, n):.1%} | {power} | "
                f"{np.mean([g[2] for g in got]):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
