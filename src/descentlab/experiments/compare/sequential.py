r"""The sequential verdict: seeds are added only where a comparison is still open, and the
family-wise error stays at ``1 - confidence`` across every look and every comparison, with an
interval beside each verdict that holds as widely (the design and its simulations:
docs/verdict.md).

Example:
    >>> b = boundaries((5, 10, 20, 40), 0.05)
    >>> [round(x, 2) for x in b]
    [2.73, 2.66, 2.42, 2.15]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from descentlab.constraints import FRACTION, check
from descentlab.experiments.compare import stats

__all__ = [
    "GAMMA",
    "GROWTH",
    "TEST_SEED_OFFSET",
    "Looked",
    "SeqTest",
    "boundaries",
    "combined",
    "decides",
    "default_looks",
    "interval",
    "least_seeds",
    "look",
    "pooled",
    "rank_z",
    "refit_seed",
    "spend",
    "stage_z",
]

#: The Hwang-Shih-DeCani spending parameter: 0 spends ``alpha`` in proportion to the seeds
#: looked at (close to Pocock's boundaries), so that a large difference is decided early.
GAMMA = 0.0

#: ``max_seeds`` by default: this many times the first look's seeds.
GROWTH = 8

#: Resamples of :func:`pooled`'s bootstrap-t (seeded: the same seeds give the same interval).
RESAMPLES = 4000

#: Test (refit) seeds start here above the comparison's seed: disjoint from the curve runs'
#: seeds (the choice) and the tuning seeds.
TEST_SEED_OFFSET = 10_000


def refit_seed(seed: int, i: int) -> int:
    """The ``i``-th test seed of a comparison whose seed is ``seed``.

    Example:
        >>> refit_seed(0, 0), refit_seed(0, 4)
        (10000, 10004)
    """
    return seed + TEST_SEED_OFFSET + i


def default_looks(seeds: int, max_seeds: int | None = None) -> tuple[int, ...]:
    """The looks for ``seeds`` first seeds: doubling up to ``max_seeds`` (default
    :data:`GROWTH` ``* seeds``, the last look exactly there). ``max_seeds == seeds``: one
    look, no seeds added.

    Example:
        >>> default_looks(5, 40), default_looks(5, 5), default_looks(3, 20)
        ((5, 10, 20, 40), (5,), (3, 6, 12, 20))
    """
    if seeds < 2:
        raise ValueError(f"a sequential verdict needs at least 2 seeds a look, got {seeds}")
    top = GROWTH * seeds if max_seeds is None else max_seeds
    if top < seeds:
        raise ValueError(f"max seeds ({top}) is below the first look's seeds ({seeds})")
    looks = [seeds]
    while looks[-1] < top:
        looks.append(min(2 * looks[-1], top))
    if len(looks) > 1 and looks[-1] - looks[-2] < 2:  # a last stage needs 2 seeds of its own
        looks.pop(-2)
    return tuple(looks)


def spend(t: float, alpha: float, gamma: float = GAMMA) -> float:
    """Hwang-Shih-DeCani's alpha spent by information fraction ``t`` (``gamma = 0``: linear).

    Example:
        >>> spend(0.5, 0.05), round(spend(0.5, 0.05, -4), 4)
        (0.025, 0.006)
    """
    t = min(max(t, 0.0), 1.0)
    if gamma == 0:
        return alpha * t
    return alpha * (1 - math.exp(-gamma * t)) / (1 - math.exp(-gamma))


@functools.lru_cache(maxsize=512)
def boundaries(looks: tuple[int, ...], alpha: float, gamma: float = GAMMA) -> tuple[float, ...]:
    """Two-sided boundaries ``b_k`` for the combined statistic at each look: under the null the
    chance that ``|C_k| >= b_k`` at some look is ``alpha`` (spent by :func:`spend` over the
    seeds' fraction), computed by numerical integration of the law of the combined statistic
    (independent normal increments of variance ``n_j``, the stage sizes)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    from scipy import optimize, special

    sizes = np.diff((0, *looks)).astype(float)
    if np.any(sizes <= 0):
        raise ValueError(f"looks must increase, got {looks}")
    total = float(looks[-1])
    out: list[float] = []
    # density of S_k = sum of sqrt(n_j) Z_j (variance V_k = looks[k]) on a grid, restricted to
    # the region where no boundary was crossed
    grid = dens = None
    spent = 0.0
    for k, n in enumerate(looks):
        target = spend(n / total, alpha, gamma) - spent
        v = float(n)
        if grid is None:
            b = float(-special.ndtri(target / 2))
            cross = target
        else:
            step = math.sqrt(sizes[k])
            h = grid[1] - grid[0]
            mass = dens * h

            def crossing(
                c: float,
                mass: np.ndarray = mass,
                step: float = step,
                v: float = v,
                grid: np.ndarray = grid,
            ) -> float:
                edge = c * math.sqrt(v)
                up = special.ndtr((grid - edge) / step)  # P(S_k >= edge | S_{k-1} = x)
                down = special.ndtr((-edge - grid) / step)
                return float(np.sum(mass * (up + down)))

            if target <= 0:
                b = math.inf
            elif crossing(0.0) <= target:
                b = 0.0
            else:
                b = float(
                    optimize.brentq(lambda c, gap=target: crossing(c) - gap, 0.0, 40.0, xtol=1e-10)
                )
            cross = crossing(b) if math.isfinite(b) else 0.0
        out.append(b)
        spent += cross
        if k == len(looks) - 1:
            break
        # the density of S_k on |S_k| < b sqrt(V_k)
        edge = min(b, 12.0) * math.sqrt(v)
        new = np.linspace(-edge, edge, 801)
        if grid is None:
            dens = np.exp(-0.5 * new * new / v) / math.sqrt(2 * math.pi * v)
        else:
            step = math.sqrt(sizes[k])
            h = grid[1] - grid[0]
            kern = np.exp(-0.5 * ((new[:, None] - grid[None, :]) / step) ** 2)
            dens = kern @ (dens * h) / (step * math.sqrt(2 * math.pi))
        grid = new
    return tuple(out)


def stage_z(d: stats.Estimate, delta: float = 0.0) -> float:
    """A stage's paired difference (:func:`~descentlab.experiments.compare.stats.
    paired_difference`) as an exact standard normal when the true difference is ``delta``
    (positive: worse): ``Phi^-1(F_t((mean - delta) / se))`` with the stage's degrees of
    freedom; 0 where the stage cannot judge (fewer than 2 seeds on which both trained, or no
    spread at all).

    Example:
        >>> d = stats.paired_difference({0: 0.9, 1: 0.8, 2: 0.85}, {0: 0.8, 1: 0.75, 2: 0.8},
        ...                             maximize=True)
        >>> round(stage_z(d), 3), round(stage_z(d, d.mean), 3)
        (1.902, 0.0)
    """
    from scipy import special

    if d.seeds < 2 or not (math.isfinite(d.se) and d.se > 0):
        return 0.0
    t = (d.mean - delta) / d.se
    tail = float(special.stdtr(d.df, -abs(t)))  # one-sided tail, exact far out
    return math.copysign(float(-special.ndtri(tail)), t) if tail > 0 else math.copysign(40.0, t)


def combined(
    stages: Sequence[stats.Estimate], looks: Sequence[int], delta: float = 0.0
) -> list[float]:
    """The combined statistic at each look ``stages`` reach (the stages' :func:`stage_z` at
    ``delta``, weighted by the square roots of the planned stage sizes)."""
    return _cumulate([stage_z(d, delta) for d in stages], looks)


def _cumulate(z: Sequence[float], looks: Sequence[int]) -> list[float]:
    """Stage z's combined at each look, weighted by the planned stage sizes' square roots."""
    sizes = np.diff((0, *looks[: len(z)])).astype(float)
    return list(np.cumsum(np.sqrt(sizes) * np.asarray(z, dtype=float)) / np.sqrt(np.cumsum(sizes)))


@functools.lru_cache(maxsize=64)
def _signed_rank_sf(n: int) -> np.ndarray:
    """``P(W >= w)`` for ``w = 0 .. n(n+1)/2``: the law of the sum of the ranks ``1..n``
    each kept with chance 1/2 (Wilcoxon's signed-rank statistic under the null)."""
    from scipy import special

    w = np.arange(n * (n + 1) // 2 + 1)
    if n > 400:  # the normal law, continuity-corrected (within 3e-4 of it there)
        return special.ndtr((n * (n + 1) / 4 - w + 0.5) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24))
    p = np.zeros(len(w))
    p[0] = 1.0
    for r in range(1, n + 1):
        p[r:] = 0.5 * (p[r:] + p[:-r])
        p[:r] *= 0.5
    return np.cumsum(p[::-1])[::-1]


def rank_z(diffs: Sequence[float]) -> tuple[float, float]:
    """``(worse, better)``: a stage's seeds' differences (positive: worse; ``inf`` where only
    the other optimizer failed, ``-inf`` only the chosen one, 0 both) as the exact one-sided
    signed-rank tests' standard normals, ``Phi^-1(1 - p)``. The ranks of ``|d|`` break ties by
    the seeds' order and a 0 counts on neither side, so each statistic only grows as one
    seed's difference grows (shrinks): the verdict is monotone in every seed (docs/verdict.md).

    Example:
        >>> [round(z, 2) for z in rank_z([0.1, 0.2, -0.05, 0.3, math.inf, 0.15])]
        [1.86, -2.15]
    """
    from scipy import special

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n < 2:
        return 0.0, 0.0
    ranks = np.empty(n)
    ranks[np.argsort(np.abs(d), kind="stable")] = np.arange(1, n + 1)
    sf = _signed_rank_sf(n)
    zs = [-float(special.ndtri(sf[int(ranks[side].sum())])) for side in (d > 0, d < 0)]
    return tuple(min(max(z, -40.0), 40.0) for z in zs)  # type: ignore[return-value]


def decides(looks: tuple[int, ...], family: int, confidence: float = 0.95) -> bool:
    """Whether ``looks`` can decide any comparison of ``family`` at ``confidence``: some
    look's boundary within reach of the stages' largest statistics, ``Phi^-1(1 - 2^-k)`` for
    a stage of ``k`` seeds (:func:`rank_z`).

    Example:
        >>> decides((5, 10, 20, 40), 2), decides((5,), 1), decides((6,), 1)
        (True, False, True)
    """
    from scipy import special

    bounds = boundaries(tuple(looks), (1 - confidence) / max(family, 1))
    most = [-float(special.ndtri(0.5**k)) for k in np.diff((0, *looks))]
    return any(c >= b for c, b in zip(_cumulate(most, looks), bounds, strict=True))


def least_seeds(
    seeds: int,
    family: int,
    confidence: float = 0.95,
    max_seeds: int | None = None,
    *,
    one_look: bool = False,
) -> int | None:
    """The least ``--max-seeds`` at which a design of ``seeds`` first seeds (the default
    looks up to it) can decide a comparison at all, ``family`` comparisons at ``confidence``
    family-wise: each stage's statistic is at most ``Phi^-1(1 - 2^-k)`` for its ``k`` seeds
    (:func:`rank_z`); None where ``max_seeds`` (when given) is already enough. ``one_look``:
    the least seeds of a single look instead (``--seeds K --max-seeds K``).

    Example:
        >>> least_seeds(5, 2, max_seeds=5), least_seeds(5, 2, max_seeds=10)  # looks 5, 10
        (10, None)
        >>> [least_seeds(2, m, max_seeds=2, one_look=True) for m in (1, 2, 4, 7)]
        [6, 7, 8, 9]
    """

    first = max(seeds, 2)  # (a first look of 1 seed is refused by default_looks)

    def can(top: int) -> bool:
        return decides((top,) if one_look else default_looks(first, top), family, confidence)

    if max_seeds is not None and max_seeds >= first and can(max_seeds):
        return None
    return next(top for top in range(first, 64 * first + 64) if can(top))


def undecidable(looks: Sequence[int], family: int, confidence: float = 0.95) -> list[str]:
    """One line where ``looks`` cannot decide any of ``family`` comparisons (a test that stays
    monotone in every seed cannot go below ``1 / 2^n`` on ``n`` seeds): what would; [] where
    they can."""
    if decides(tuple(looks), family, confidence):
        return []
    top = least_seeds(looks[0], family, confidence, max_seeds=looks[-1])
    one = least_seeds(2, family, confidence, max_seeds=2, one_look=True)
    return [
        f"  With --max-seeds {looks[-1]} no comparison of these {family + 1} optimizers can "
        f"be decided: a test monotone in every seed cannot go below p = 1/2^n on n seeds "
        f"(docs/verdict.md); --max-seeds {top} is the least that can at --seeds "
        f"{looks[0]} (or --seeds {one} --max-seeds {one}, one look)."
    ]


def interval(
    stages: Sequence[stats.Estimate], looks: Sequence[int], boundary: float
) -> tuple[float, float, float]:
    """``(estimate, low, high)``: the repeated confidence interval at the last of ``stages``,
    the true differences ``delta`` at which the combined statistic stays inside
    ``boundary`` (Jennison and Turnbull's RCI: it holds at every look at once, so it is valid
    whenever the design stopped), and the difference at which the statistic is 0. A bound
    the statistic never reaches (a stage of 2 seeds has a Cauchy's tails) is infinite."""
    judged = [d for d in stages if d.seeds >= 2 and math.isfinite(d.se) and d.se > 0]
    if not judged:
        return math.nan, -math.inf, math.inf
    centre = float(np.mean([d.mean for d in judged]))
    scale = max(d.se for d in judged)

    def at(delta: float) -> float:
        return combined(stages, looks, delta)[-1]

    est = _solve(at, 0.0, centre, scale)
    if not math.isfinite(boundary):
        return est, -math.inf, math.inf
    return est, _solve(at, boundary, centre, scale), _solve(at, -boundary, centre, scale)


def pooled(diffs: Sequence[float], boundary: float) -> tuple[float, float, float]:
    """``(mean, low, high)``: the bootstrap-t interval of the mean of ``diffs`` (the seeds'
    mean differences, all looks' seeds pooled) at the two-sided level of ``boundary`` (a
    standard normal's: the design's, so that it is as wide in level as the repeated interval
    beside it). A rare large difference pulls the mean and widens the spread together, which
    the t reference ignores and the resampled t statistics hold (docs/verdict.md). Fewer than
    3 seeds, or none apart: no interval.

    Example:
        >>> m, lo, hi = pooled([0.1, -0.2, 0.3, 0.0, 0.1, 2.5], 1.96)
        >>> round(m, 2), lo < m < hi, hi > 2 * m   # the one large seed pushes the top out
        (0.47, True, True)
    """
    from scipy import special

    x = np.asarray(diffs, dtype=float)
    k = len(x)
    m = float(x.mean()) if k else math.nan
    se = float(x.std(ddof=1)) / math.sqrt(k) if k > 1 else 0.0
    if k < 3 or se == 0 or not math.isfinite(boundary):
        return m, -math.inf, math.inf
    xb = x[np.random.default_rng(k).integers(0, k, (RESAMPLES, k))]
    mb, sb = xb.mean(1), xb.std(1, ddof=1) / math.sqrt(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sb > 0, (mb - m) / sb, np.sign(mb - m) * np.inf)
    t = np.nan_to_num(t, nan=0.0)
    tail = float(special.ndtr(-boundary))
    lo_q, hi_q = np.quantile(t, [tail, 1 - tail])
    return m, m - float(hi_q) * se, m - float(lo_q) * se


def _solve(f: Any, level: float, centre: float, scale: float) -> float:
    """The ``delta`` at which the decreasing ``f`` equals ``level``, bracketed outwards from
    ``centre`` (infinite where ``f`` never gets there)."""
    from scipy import optimize

    for _ in range(40):
        lo, hi = centre - scale, centre + scale
        if f(lo) >= level >= f(hi):
            return float(optimize.brentq(lambda d: f(d) - level, lo, hi, xtol=1e-12 * scale))
        scale *= 8.0
    return -math.inf if f(centre) < level else math.inf


def _stages(
    best: Mapping[Any, Any],
    other: Mapping[Any, Any],
    order: Sequence[Any],
    looks: tuple[int, ...],
    *,
    maximize: bool,
) -> list[stats.Estimate]:
    """The paired difference of each stage whose seeds both ran (a failed run: None, left
    out of its stage's difference), until the first stage they have not run."""
    out: list[stats.Estimate] = []
    lo = 0
    for hi in looks:
        ran = [s for s in order[lo:hi] if s in best and s in other]
        if hi > len(order) or len(ran) < 2:
            break
        out.append(
            stats.paired_difference(
                {s: best[s] for s in ran}, {s: other[s] for s in ran}, maximize=maximize
            )
        )
        lo = hi
    return out


@dataclass(frozen=True)
class SeqTest:
    """One optimizer against the chosen one under the sequential design.

    Attributes:
        test: the paired test over all its seeds (:func:`~descentlab.experiments.compare.
            stats.paired_test`): its ``diff`` is that one comparison's alone.
        combined: the combined signed-rank statistic at each look it had (:func:`rank_z`:
            the side, worse or better, that is larger; positive: worse).
        verdict: ``"worse"``, ``"better"``, ``"identical"`` or ``"not distinguishable"``.
        look: the look (1-based) at which it was decided, or its last look.
        seeds: the test seeds it was compared on.
        level: the level it was tested at, ``alpha / (M - 1)``.
        boundary: the boundary at its last look at that level.
        interval: ``(estimate, low, high)``: the repeated confidence interval at that look
            and level (:func:`interval`, widened to hold :func:`pooled`), simultaneous over the
            comparisons and the looks: the size on the seeds both trained, beside a verdict
            that counts every seed both ran.
        why: why it got the seeds it got, in words.
    """

    test: stats.PairedTest
    combined: tuple[float, ...]
    verdict: str
    look: int
    seeds: int
    level: float
    boundary: float
    interval: tuple[float, float, float]
    why: str


@dataclass(frozen=True)
class Looked:
    """The verdicts at the current look and which comparisons are still open.

    Attributes:
        tests: one :class:`SeqTest` per other optimizer, in the order given.
        looks: the design's looks (cumulative test seeds).
        family: the number of comparisons (``M - 1``).
        open: indices of the comparisons that should get the next look's seeds (empty: the
            verdict is final).
        next_seeds: the test seeds the next look needs (0 when none is open).
    """

    tests: list[SeqTest]
    looks: tuple[int, ...]
    family: int
    alpha: float
    open: list[int] = field(default_factory=list)
    next_seeds: int = 0


def _seed_diffs(
    best: Mapping[Any, Any],
    other: Mapping[Any, Any],
    order: Sequence[Any],
    looks: tuple[int, ...],
    maximize: bool,
    k: int,
) -> list[float]:
    """The seeds' mean differences (positive: worse) over the first ``k + 1`` looks' seeds on
    which both trained."""
    seeds = [s for s in order[: looks[k]] if s in best and s in other]
    keys, d = stats._paired({s: best[s] for s in seeds}, {s: other[s] for s in seeds}, maximize)
    return [float(np.mean(d[s])) for s in keys]


def _rank_diffs(
    best: Mapping[Any, Any], other: Mapping[Any, Any], seeds: Sequence[Any], maximize: bool
) -> list[float]:
    """By seed both ran, ``other``'s deficit (positive: worse) as :func:`rank_z` takes it: a
    failed run (None or not finite) the worst a seed can do."""

    def failed(v: Any) -> bool:
        return v is None or not np.all(np.isfinite(v))

    sign, out = (1.0 if maximize else -1.0), []
    for s in (s for s in seeds if s in best and s in other):
        a, b = failed(best[s]), failed(other[s])
        if a or b:
            out.append(0.0 if a == b else math.copysign(math.inf, b - a))
        else:
            out.append(sign * float(np.mean(best[s]) - np.mean(other[s])))
    return out


def _hull(
    rci: tuple[float, float, float], p: tuple[float, float, float] | None
) -> tuple[float, float, float]:
    """The repeated interval widened to hold the pooled one (its mean the estimate)."""
    if p is None or not math.isfinite(p[0]):
        return rci
    low, high = min(rci[1], p[1]), max(rci[2], p[2])
    return min(max(p[0], low), high), low, high


def _why(had: int, looks: tuple[int, ...], final: bool) -> tuple[str, bool]:
    """Why an undecided comparison got the seeds it got, and whether it stays open."""
    if had == 0:
        return "too few seeds for a look", False
    if had >= len(looks):
        return f"open after {looks[-1]} seeds, the most the design adds", False
    if final:
        return f"open after {looks[had - 1]} seeds (no more were run)", False
    return f"open after {looks[had - 1]} seeds", True


def look(
    best: Mapping[Any, Any],
    others: Sequence[Mapping[Any, Any]],
    *,
    maximize: bool,
    looks: tuple[int, ...],
    order: Sequence[Any] | None = None,
    confidence: float = 0.95,
    final: bool = False,
) -> Looked:
    """Each of ``others`` against ``best`` (values by test seed, as
    :func:`~descentlab.experiments.compare.stats.paired_test` takes them; None for a seed
    whose run failed), judged at every look their seeds reach, each at level ``alpha / (M -
    1)`` inside the group-sequential design (module docstring). ``order``: the test seeds in
    the order they are added (default: sorted). ``final``: no more seeds will come (the open
    ones are reported not distinguishable at the seeds they had).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> best = {s: 0.9 + 0.01 * rng.normal() for s in range(10)}
        >>> worse = {s: 0.5 + 0.01 * rng.normal() for s in range(10)}
        >>> same = {s: 0.9 + 0.01 * rng.normal() for s in range(10)}
        >>> r = look(best, [worse, same], maximize=True, looks=(10, 20))
        >>> [t.verdict for t in r.tests], r.open, r.next_seeds
        (['worse', 'not distinguishable'], [1], 20)
        >>> final = look(best, [worse, same], maximize=True, looks=(10, 20), final=True)
        >>> est, low, high = final.tests[0].interval   # simultaneous over the two
        >>> 0 < low < est < high
        True
    """
    check("confidence", confidence, FRACTION)
    alpha = 1 - confidence
    order = sorted(best) if order is None else list(order)
    m = max(len(others), 1)
    level = alpha / m
    bounds = boundaries(looks, level)
    tests: list[SeqTest] = []
    open_: list[int] = []
    had_all: list[int] = []
    for i, o in enumerate(others):
        st = _stages(best, o, order, looks, maximize=maximize)
        z = [rank_z(_rank_diffs(best, o, order[lo:hi], maximize))
             for lo, hi in zip((0, *looks), looks[: len(st)], strict=False)]  # fmt: skip
        up, down = _cumulate([x[0] for x in z], looks), _cumulate([x[1] for x in z], looks)
        c = [u if u >= v else -v for u, v in zip(up, down, strict=True)]
        full = stats.paired_test(best, o, maximize=maximize, confidence=confidence, family=m)
        diffs = functools.partial(_seed_diffs, best, o, order, looks, maximize)
        hit = next((k + 1 for k in range(len(c)) if max(up[k], down[k]) >= bounds[k]), 0)
        had = len(c)
        if full.verdict == "identical":
            verdict, why, at = "identical", "identical on every seed and test example", had
        elif hit:
            verdict = "worse" if c[hit - 1] > 0 else "better"
            why, at = f"decided after {looks[hit - 1]} seeds", hit
        else:
            verdict, at = "not distinguishable", had
            why, still = _why(had, looks, final)
            if still:
                open_.append(i)
        b = bounds[at - 1] if at else math.nan
        ci = (0.0, 0.0, 0.0) if verdict == "identical" else (math.nan,) * 3
        if final and verdict != "identical":  # (the looks before need no interval)
            ci = _hull(interval(st[:at], looks, b), pooled(diffs(at - 1), b) if at else None)
        tests.append(
            SeqTest(full, tuple(c), verdict, at, sum(s in o for s in order), level, b, ci, why)
        )  # fmt: skip
        had_all.append(had)
    nxt = 0
    if open_ and not final:
        nxt = looks[min(max(had_all[i] for i in open_), len(looks) - 1)]
    return Looked(tests, looks, len(others), alpha, open_, nxt)
