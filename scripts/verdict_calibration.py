"""The verdict's calibration through its own decision function: simulated comparisons whose
truth is known, each run the way a comparison adds seeds (``sequential.look`` until no
comparison is open, the chosen one to every look, then the final look), one number per seed
(a loss: lower is better; a failed seed ``inf``). Prints, per cell, the family-wise rate of
calls the truth denies and the coverage of the printed intervals -- both against the size
the tree prints (``--before``'s: the mean on the seeds both trained; this tree's: the
pseudo-median of the seeds' differences, a failure the worst) -- the power where one
optimizer is truly worse, the exact sign test's power at the same level beside it, and the
mean test seeds spent per optimizer, each rate with its Monte-Carlo standard error
(docs/verdict.md).

    PYTHONPATH=src python scripts/verdict_calibration.py [--sims 500] [--before <tree>/src]

Seeded; the truths by 400,000 draws a cell.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

Draw = Callable[[np.random.Generator, int, int], np.ndarray]
HALF = math.sqrt(0.5)  # each optimizer's seed sd: paired differences of sd 1


@dataclass(frozen=True)
class Cell:
    """``m`` optimizers, the chosen one 0 (chosen on other seeds), each drawn by ``draw(rng,
    o, n)`` (a loss; ``inf``: the run failed); ``worse``: the optimizer truly worse, if any."""

    name: str
    m: int
    looks: tuple[int, ...]
    draw: Draw
    worse: int | None = None


def _normal(shift: dict[int, float] | None = None) -> Draw:
    return lambda rng, o, n: (shift or {}).get(o, 0.0) + HALF * rng.standard_normal(n)


def _lognormal(rng: np.random.Generator, o: int, n: int) -> np.ndarray:
    sigma = 1.0 if o == 1 else 0.5  # equal means, unequal skew
    return np.exp(sigma * rng.standard_normal(n) - sigma**2 / 2)


def _left_tail(rng: np.random.Generator, o: int, n: int) -> np.ndarray:
    # optimizer 1: 0.5 behind on 90 % of seeds, 4.5 ahead on 10 % (the same mean)
    base = HALF * rng.standard_normal(n)
    return base + (np.where(rng.random(n) < 0.1, -4.5, 0.5) if o == 1 else 0.0)


def _bimodal(rng: np.random.Generator, o: int, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, -1.0, 1.0) if o == 1 else HALF * rng.standard_normal(n)


def _ties(deficit: float) -> Draw:
    # accuracies in whole points (sd 1 point a seed), as a loss (100 - accuracy); the last
    # optimizer ``deficit`` points worse
    def draw(rng: np.random.Generator, o: int, n: int) -> np.ndarray:
        return np.round(20.0 + (deficit if o == 2 else 0.0) + rng.standard_normal(n))

    return draw


def _failing(rng: np.random.Generator, o: int, n: int) -> np.ndarray:
    # optimizer 1 fails on 10 % of seeds and trains as well otherwise
    x = HALF * rng.standard_normal(n)
    return np.where(rng.random(n) < 0.1, np.inf, x) if o == 1 else x


def _cells() -> list[Cell]:
    out = []
    for looks in ((10,), (20,), (5, 10, 20, 40)):
        tag = "x".join(map(str, looks)) if len(looks) == 1 else "default"
        for name, draw in (("normal", _normal()), ("skewed", _lognormal),
                           ("left-tail", _left_tail), ("bimodal", _bimodal),
                           ("ties", _ties(0.0)), ("failing", _failing)):  # fmt: skip
            out.append(Cell(f"{name}-M3-{tag}", 3, looks, draw))
    for n in (6, 8, 10):
        out.append(Cell(f"power-1sd-M3-{n}", 3, (n,), _normal({2: 1.0}), worse=2))
    for n in (10, 20):
        out.append(Cell(f"ties-1pt-M3-{n}", 3, (n,), _ties(1.0), worse=2))
    return out


def _truths(cell: Cell) -> tuple[list[float], list[float]]:
    """Each optimizer's true (mean on the seeds both trained, pseudo-median) deficit against
    the chosen one, by 400,000 draws (0 for the chosen one itself)."""
    rng = np.random.default_rng(12345)
    x0 = cell.draw(rng, 0, 400_000)
    means, pms = [0.0], [0.0]
    for o in range(1, cell.m):
        d = cell.draw(rng, o, 400_000) - x0
        both = np.isfinite(d)
        means.append(float(d[both].mean()))
        with np.errstate(invalid="ignore"):
            w = (d[:200_000] + d[200_000:]) / 2
        pms.append(float(np.median(np.where(np.isnan(w), 0.0, w))))
    return means, [0.0 if abs(p) < 2e-3 and _alike(cell, o) else p
                   for o, p in enumerate(pms)]  # fmt: skip


def _alike(cell: Cell, o: int) -> bool:
    """Whether optimizer ``o`` is drawn as the chosen one is (its pseudo-median deficit 0
    exactly; the draws' estimate is then noise)."""
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    return bool(np.array_equal(cell.draw(rng_a, 0, 64), cell.draw(rng_b, o, 64)))


def run(cell: Cell, sequential, rng: np.random.Generator, truth: list[float]) -> tuple:
    """One comparison: ``(a call the truth denies, every interval holds its truth, the truly
    worse one called worse, the sign test's call on it, mean test seeds of the judged)``."""
    top = cell.looks[-1]
    seeds = [cell.draw(rng, o, top) for o in range(cell.m)]
    best = dict(enumerate(seeds[0]))
    given = [cell.looks[0]] * (cell.m - 1)

    def values(o: int) -> dict:
        return {s: (None if math.isinf(v) else v) for s, v in enumerate(seeds[o][: given[o - 1]])}

    while True:
        others = [values(o) for o in range(1, cell.m)]
        r = sequential.look(best, others, maximize=False, looks=cell.looks)
        if not r.open or r.next_seeds <= max(given):
            break
        for i in r.open:
            given[i] = r.next_seeds
    r = sequential.look(best, others, maximize=False, looks=cell.looks, final=True)
    false = hit = False
    covered = True
    for o, t in enumerate(r.tests, start=1):
        d = truth[o]
        false |= (t.verdict == "worse" and d <= 0) or (t.verdict == "better" and d >= 0)
        hit |= t.verdict == "worse" and o == cell.worse
        covered &= t.verdict == "identical" or t.interval[1] <= d <= t.interval[2]
    sign = False
    if cell.worse is not None:  # the exact one-sided sign test at the "worse" level
        d = seeds[cell.worse][:top] - seeds[0][:top]
        pos, nz = int((d > 0).sum()), int((d != 0).sum())
        level = 0.8 * 0.05 / (cell.m - 1)
        sign = nz > 0 and stats.binom.sf(pos - 1, nz, 0.5) <= level
    return false, covered, hit, sign, float(np.mean(given))


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def _module(src: str | None):
    for name in [k for k in sys.modules if k.startswith("descentlab")]:
        del sys.modules[name]
    if src is not None:
        sys.path.insert(0, src)
    mod = importlib.import_module("descentlab.experiments.compare.sequential")
    if src is not None:
        sys.path.pop(0)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=500)
    ap.add_argument("--before", default=None)
    ap.add_argument("--only", default="", help="cells whose name holds one of these (commas)")
    args = ap.parse_args()
    trees = ([("before", args.before)] if args.before else []) + [("after", None)]
    words = [w for w in args.only.split(",") if w]
    cells = [c for c in _cells() if not words or any(w in c.name for w in words)]
    print("| cell | design | printed | comparisons | false calls (FWER) | intervals cover | "
          "truly worse called | sign test | mean test seeds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cells:
        means, pms = _truths(c)
        for name, src in trees:
            sequential = _module(src)
            printed = "mean" if name == "before" else "pseudo-median"
            truth = means if name == "before" else pms
            rng = np.random.default_rng([sum(map(ord, c.name)), c.m, *c.looks])
            got = [run(c, sequential, rng, truth) for _ in range(args.sims)]
            n = len(got)
            f, cov, h, sg = (float(np.mean([g[i] for g in got])) for i in range(4))
            power = f"{h:.1%} +- {_se(h, n):.1%}" if c.worse else "-"
            sign = f"{sg:.1%}" if c.worse else "-"
            print(
                f"| {c.name} | {name} | {printed} | {n} | {f:.1%} +- {_se(f, n):.1%} | "
                f"{cov:.1%} +- {_se(cov, n):.1%} | {power} | {sign} | "
                f"{np.mean([g[4] for g in got]):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
