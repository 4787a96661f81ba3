r"""The sequential verdict: seeds are added only where a comparison is still open, and the
family-wise error stays at ``1 - confidence`` across every look and every comparison.

The design (stated; docs/verdict.md has the simulations).

*The choice is made on other seeds.* The recommended optimizer is chosen on its curve runs'
validation score (seeds ``seed .. seed + k - 1``); the test comparison uses refit runs with
**disjoint** seeds (:func:`refit_seed`). The choice is then independent of the test outcomes
given the optimizers' settings, so the family is the ``M - 1`` comparisons made against the
chosen one, not every pair.

*Looks.* A comparison is looked at after ``looks[0]`` test seeds (the spec's ``seeds``), then
after ``looks[1]``, ... (cumulative, fixed in advance: :func:`default_looks`). Each stage's
new seeds give their own paired test (:func:`~descentlab.experiments.compare.stats.
paired_test` over that stage's seeds only: a Student-t statistic with the stage's seeds - 1
degrees of freedom), turned into an exact standard normal :math:`Z_j = \Phi^{-1}(F_{t,
\nu_j}(t_j))`. Stages use different seeds, so under the null their :math:`Z_j` are
independent and the combined statistic at look :math:`k`,

.. math:: C_k = \sum_{j \le k} w_j Z_j \Big/ \sqrt{\textstyle\sum_{j \le k} w_j^2}, \qquad
    w_j = \sqrt{n_j} \text{ (the stage's planned seeds)},

has exactly the joint normal law of a group-sequential z-statistic (the inverse-normal
combination test of Lehmacher and Wassmer 1999): no approximation of the seeds' variance is
carried from one look to the next. Positive means the other optimizer is worse.

*Boundaries.* Two-sided boundaries :math:`b_1 .. b_K` spend ``alpha`` over the looks with
the Hwang-Shih-DeCani function of parameter :data:`GAMMA` (Lan and DeMets 1983), computed
by numerical integration of the combined statistic's law (:func:`boundaries`).

*Many comparisons.* The ``M - 1`` hypotheses are tested with Holm's step-down inside the
group-sequential design (Maurer and Bretz 2013): each starts at level ``alpha / (M - 1)``;
when one is rejected (at any look) its level goes to the others, whose boundaries are
recomputed at the larger level and checked again on every look they have had. This is the
closed test of weighted Bonferroni group-sequential tests: the family-wise error is at most
``alpha`` whatever the dependence between the comparisons (they share the chosen
optimizer's seeds) and whatever rule decides which comparisons get more seeds.

*Which comparisons get more seeds* (:attr:`Looked.open`): those not yet decided, except, at
the last look but one, those whose combined statistic is below :data:`FUTILITY` in size (a
difference too small to be decided by the last look gets no more: a non-binding stop, it can
only lower the error) -- and the chosen optimizer, whenever any comparison is open.

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

from descentlab.experiments.compare import stats

__all__ = [
    "FUTILITY",
    "GAMMA",
    "GROWTH",
    "TEST_SEED_OFFSET",
    "Looked",
    "SeqTest",
    "boundaries",
    "default_looks",
    "look",
    "refit_seed",
    "spend",
    "stage_z",
]

#: The Hwang-Shih-DeCani spending parameter: 0 spends ``alpha`` in proportion to the seeds
#: looked at (close to Pocock's boundaries), so that a large difference is decided early.
GAMMA = 0.0

#: A comparison whose combined statistic is below this in size at the last look but one (the
#: second at least) gets no more seeds: reported not distinguishable at the seeds it had.
FUTILITY = 0.5

#: ``max_seeds`` by default: this many times the first look's seeds.
GROWTH = 8

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


def stage_z(d: stats.Estimate) -> float:
    """A stage's paired difference (:func:`~descentlab.experiments.compare.stats.
    paired_difference`) as an exact standard normal (positive: worse): ``Phi^-1(F_t(t))``
    with the stage's degrees of freedom."""
    from scipy import special

    if d.seeds < 2 or not math.isfinite(d.se):
        return math.nan
    if d.se == 0:
        return 0.0 if d.mean == 0 else math.copysign(math.inf, d.mean)
    t = d.mean / d.se
    tail = float(special.stdtr(d.df, -abs(t)))  # one-sided tail, exact far out
    return math.copysign(float(-special.ndtri(tail)), t) if tail > 0 else math.copysign(40.0, t)


@dataclass(frozen=True)
class SeqTest:
    """One optimizer against the chosen one under the sequential design.

    Attributes:
        test: the paired test over all its seeds (:func:`~descentlab.experiments.compare.
            stats.paired_test`): the interval shown is that one comparison's alone.
        combined: the combined statistic at each look it had (positive: worse).
        verdict: ``"worse"``, ``"better"``, ``"identical"`` or ``"not distinguishable"``.
        look: the look (1-based) at which it was decided, or its last look.
        seeds: the test seeds it was compared on.
        level: the Holm level it was last tested at (``alpha / (M - 1)`` at first).
        boundary: the boundary at its last look at that level.
        why: why it got the seeds it got, in words.
    """

    test: stats.PairedTest
    combined: tuple[float, ...]
    verdict: str
    look: int
    seeds: int
    level: float
    boundary: float
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


def _stage_tests(
    best: Mapping[Any, Any],
    other: Mapping[Any, Any],
    order: Sequence[Any],
    looks: tuple[int, ...],
    *,
    maximize: bool,
    confidence: float,
) -> list[float]:
    """The combined statistic at each look ``other`` has all of its stage's seeds for."""
    zs: list[float] = []
    out: list[float] = []
    lo = 0
    for hi in looks:
        seeds = [s for s in order[lo:hi] if s in best and s in other]
        if hi > len(order) or len(seeds) < 2:
            break
        d = stats.paired_difference(
            {s: best[s] for s in seeds},
            {s: other[s] for s in seeds},
            maximize=maximize,
            confidence=confidence,
        )
        z = stage_z(d)
        if not math.isfinite(z) and math.isnan(z):
            break
        zs.append(z)
        sizes = np.diff((0, *looks[: len(zs)])).astype(float)
        w = np.sqrt(sizes)
        with np.errstate(invalid="ignore"):
            out.append(float(np.dot(w, zs) / math.sqrt(float(np.sum(sizes)))))
        lo = hi
    return out


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
    :func:`~descentlab.experiments.compare.stats.paired_test` takes them), judged at every look
    their seeds reach, with Holm's step-down over the ``len(others)`` comparisons inside the
    group-sequential design (module docstring). ``order``: the test seeds in the order they
    are added (default: sorted). ``final``: no more seeds will come (the open ones are
    reported not distinguishable at the seeds they had).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> best = {s: 0.9 + 0.01 * rng.normal() for s in range(5)}
        >>> worse = {s: 0.5 + 0.01 * rng.normal() for s in range(5)}
        >>> same = {s: 0.9 + 0.01 * rng.normal() for s in range(5)}
        >>> r = look(best, [worse, same], maximize=True, looks=(5, 10))
        >>> [t.verdict for t in r.tests], r.open, r.next_seeds
        (['worse', 'not distinguishable'], [1], 10)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    alpha = 1 - confidence
    order = sorted(best) if order is None else list(order)
    m = len(others)
    combined = [
        _stage_tests(best, o, order, looks, maximize=maximize, confidence=confidence)
        for o in others
    ]
    full = [
        stats.paired_test(best, o, maximize=maximize, confidence=confidence, family=max(m, 1))
        for o in others
    ]
    rejected: dict[int, int] = {}  # index -> look (1-based) at which it was rejected
    level = {i: alpha / max(m, 1) for i in range(m)}
    changed = True
    while changed:  # Holm: reject at the current level, pass the level on, repeat
        changed = False
        left = [i for i in range(m) if i not in rejected]
        if not left:
            break
        a = alpha / len(left)
        for i in left:
            level[i] = a
            b = boundaries(looks, a)
            for k, c in enumerate(combined[i]):
                if math.isinf(c) or (math.isfinite(c) and abs(c) >= b[k]):
                    rejected[i] = k + 1
                    changed = True
                    break
    tests = []
    open_: list[int] = []
    for i in range(m):
        c = tuple(combined[i])
        t = full[i]
        had = len(c)
        b = boundaries(looks, level[i])
        if t.verdict == "identical":
            verdict, why = "identical", "identical on every seed and test example"
        elif i in rejected:
            k = rejected[i]
            verdict = "worse" if c[k - 1] > 0 else "better"
            why = f"decided after {looks[k - 1]} seeds"
        else:
            verdict = "not distinguishable"
            if had == 0:
                why = "too few seeds for a look"
            elif had >= len(looks):
                why = f"open after {looks[-1]} seeds, the most the design adds"
            elif had >= max(2, len(looks) - 1) and abs(c[-1]) < FUTILITY:
                why = (
                    f"no more seeds after {looks[had - 1]}: the difference so far is too small "
                    f"to be decided by {looks[-1]}"
                )
            elif final:
                why = f"open after {looks[had - 1]} seeds (no more were run)"
            else:
                why = f"open after {looks[had - 1]} seeds"
                open_.append(i)
        look_at = rejected.get(i, had)
        tests.append(
            SeqTest(
                t, c, verdict, look_at, t.diff.seeds, level[i],
                b[look_at - 1] if look_at else math.nan, why,
            )
        )  # fmt: skip
    had_all = [len(x) for x in combined]
    nxt = 0
    if open_ and not final:
        nxt = looks[min(max(had_all[i] for i in open_), len(looks) - 1)]
    return Looked(tests, looks, m, alpha, open_, nxt)
