r"""The statistics of a comparison's verdict: intervals and paired comparisons that count the
test set's own sampling noise as well as the seeds', within the metric's range, with the
smallest difference the comparison could have detected. The model (seeds and test examples
crossed, the seed the unit of replication), the correction for many comparisons and why
failures are counted apart: docs/verdict.md."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from descentlab.constraints import FRACTION, check

__all__ = [
    "Estimate",
    "PairedTest",
    "estimate",
    "failure_rate",
    "failure_test",
    "holm",
    "paired_difference",
    "paired_test",
]


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds (and test examples) with its interval.

    Attributes:
        mean, low, high: the mean and its interval, clipped to the metric's range (``low``
            and ``high`` are NaN with fewer than two seeds: no seed noise to estimate).
        seeds: seeds.
        examples: test examples per seed, or None where only one value per seed was known
            (the test set's noise is then not in the interval).
        se: standard error; seed_var / example_var: its two components (variances of the
            mean).
        df: degrees of freedom (Satterthwaite's, module docstring).
    """

    mean: float
    low: float
    high: float
    seeds: int
    examples: int | None
    se: float
    seed_var: float
    example_var: float
    df: float

    @property
    def interval(self) -> tuple[float, float, float]:
        return self.mean, self.low, self.high


def finite(value: Any) -> bool:
    """Whether a seed's value (one number, or its per-example array) is finite throughout."""
    return math.isfinite(value) if isinstance(value, float) else bool(np.isfinite(value).all())


def seed_mean(value: Any) -> float:
    """``float(np.mean(value))`` to the bit, without its dispatch for a float64 array (a
    simulated comparison's looks take millions: tests/test_verdict_estimand.py)."""
    if type(value) is np.ndarray and value.dtype == np.float64 and value.size:
        return float(np.add.reduce(value, axis=None) / value.size)
    return float(np.mean(value))


def _t_half(se: float, df: float, confidence: float) -> float:
    """The half-width of a t interval: ``se`` times the ``(1 + confidence)/2`` quantile of
    Student's t with ``df`` degrees of freedom."""
    from scipy import special  # t quantiles: special's, scipy.stats' cost 1 ms a call

    return float(special.stdtrit(df, (1 + confidence) / 2)) * se


def _matrix(values: Mapping[Any, Any], keys: list[Any]) -> tuple[np.ndarray, bool]:
    """``values[key]`` stacked as rows: per-example arrays of one length, else one column of
    per-seed numbers (and False: no per-example outcomes)."""
    rows = [values[k] for k in keys]
    arrays = [np.asarray(r, dtype=float).reshape(-1) for r in rows]
    sizes = {a.size for a in arrays}
    if arrays and all(a.size > 1 for a in arrays) and len(sizes) == 1:
        return np.vstack(arrays), True
    return np.asarray([seed_mean(a) for a in arrays]).reshape(-1, 1), False


def _components(m: np.ndarray, per_example: bool) -> tuple[float, float, float]:
    """``(seed variance of the mean, example variance of the mean, df)`` of ``m[seed, ex]``.

    The two-way ANOVA's mean squares (seeds ``S``, examples ``E``, interaction ``I``) give the
    mean's variance as ``(S + E - I) / (k n)`` (module docstring): the seeds' part ``S / (k
    n)`` is the seed means' variance over ``k`` (which holds the interaction), the examples'
    part ``max(0, E - I) / (k n)``; the degrees of freedom are Satterthwaite's for that
    combination, so the seeds' ``k - 1`` govern wherever the examples' own part is small.
    """
    k, n = m.shape
    seed_var = float(np.var(m.mean(1), ddof=1)) / k if k > 1 else math.nan
    if not per_example or n < 2:
        return seed_var, 0.0, float(k - 1) if k > 1 else math.inf
    ms_e = k * float(np.var(m.mean(0), ddof=1))
    ms_i = 0.0
    if k > 1:
        resid = m - m.mean(1, keepdims=True) - m.mean(0, keepdims=True) + m.mean()
        ms_i = float(np.sum(resid * resid)) / ((k - 1) * (n - 1))
    example_var = max(0.0, ms_e - ms_i) / (k * n)
    # Satterthwaite (1946): (sum of c_j MS_j)^2 / sum of (c_j MS_j)^2 / df_j
    terms = [(seed_var, k - 1)]
    if example_var > 0:
        terms += [(ms_e / (k * n), n - 1), (ms_i / (k * n), (k - 1) * (n - 1))]
    total = seed_var + example_var
    denom = sum(v * v / d for v, d in terms if d > 0 and v > 0)
    df = total * total / denom if denom > 0 else math.inf
    return seed_var, example_var, df


def estimate(
    values: Mapping[Any, Any],
    *,
    confidence: float = 0.95,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    seeds_df: bool = False,
) -> Estimate:
    """The mean of ``values`` (one per-example array, or one number, per seed) with its
    interval under the crossed seeds x examples model (module docstring), within ``bounds``
    (the metric's range: ``(0, 1)`` for an accuracy, ``(0, inf)`` for a loss): a range with
    two finite ends takes the interval on the logit scale of where the mean lies in it, so
    that it holds near an edge (docs/verdict.md); else the interval is clipped to it.
    ``seeds_df``: the reference's degrees of freedom are the seeds' ``k - 1`` whatever the
    examples' part (the paired test's, module docstring), not Satterthwaite's.

    Example:
        >>> e = estimate({0: [1, 1, 0, 1], 1: [1, 0, 0, 1]}, bounds=(0, 1))
        >>> e.mean, e.examples, 0 <= e.low <= e.mean <= e.high <= 1
        (0.625, 4, True)
    """
    check("confidence", confidence, FRACTION)
    keys = [k for k in values if values[k] is not None and finite(values[k])]
    if not keys:
        return Estimate(math.nan, math.nan, math.nan, 0, None, math.nan, math.nan, math.nan, 0)
    m, per_example = _matrix(values, keys)
    mean = float(m.mean())
    k, n = m.shape
    examples = n if per_example else None
    if k < 2:
        return Estimate(mean, math.nan, math.nan, k, examples, math.nan, math.nan, math.nan, 0)
    seed_var, example_var, df = _components(m, per_example)
    if seeds_df:
        df = float(k - 1)
    se = math.sqrt(seed_var + example_var)
    if se == 0:
        lo = hi = mean
    else:
        from scipy import special

        half = _t_half(se, df, confidence)
        lo, hi = mean - half, mean + half
        width = bounds[1] - bounds[0]
        if math.isfinite(width) and bounds[0] < mean < bounds[1]:  # on the logit scale
            p = (mean - bounds[0]) / width
            half = half / width / (p * (1 - p))  # (the delta method)
            ends = special.expit(special.logit(p) + np.array([-half, half]))
            lo, hi = (bounds[0] + width * float(x) for x in ends)
    return Estimate(
        mean, max(lo, bounds[0]), min(hi, bounds[1]), k, examples, se, seed_var, example_var, df
    )


@dataclass(frozen=True)
class PairedTest:
    """One optimizer against the best, paired by seed (and by test example).

    Attributes:
        diff: the interval of how much worse this one is (positive: worse), an
            :class:`Estimate` of the paired differences (not clipped), at ``confidence`` for
            this comparison alone.
        behind / ahead: seeds on which this one's mean was worse / better than the best's.
        sign_p: the two-sided exact sign test over seeds (ties left out); 1 with none.
        min_sign_p: the smallest p-value the sign test can give with these seeds.
        verdict: ``"worse"`` (``p_adjusted`` at most ``1 - confidence`` and behind on
            average), ``"better"`` (the same, ahead: possible only against one chosen on
            validation data), ``"identical"`` (no difference on any seed or example) or ``"not
            distinguishable"``.
        p: the two-sided p-value of the paired difference (the t reference of ``diff``).
        p_adjusted: ``p`` times ``family`` (Bonferroni), at most 1.
        family: the number of comparisons it is corrected for (1: none).
        interval: ``(estimate, low, high)`` of the difference at the corrected level
            ``(1 - confidence) / family``: simultaneous over the family (where the
            sequential design decided: its interval, the size beside its verdict).
        correction: the correction in words where another procedure decided the verdict (the
            sequential design's); ``""``: Bonferroni's over ``family``.
    """

    diff: Estimate
    behind: int
    ahead: int
    sign_p: float
    min_sign_p: float
    verdict: str
    confidence: float
    p: float = math.nan
    p_adjusted: float = math.nan
    family: int = 1
    interval: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    correction: str = ""

    @property
    def tied(self) -> bool:
        """Not shown worse than the best."""
        return self.verdict != "worse"

    @property
    def corrected(self) -> str:
        """The correction as words (``""`` for a single comparison)."""
        if self.correction:
            return self.correction
        if self.family <= 1:
            return ""
        return f"Bonferroni-adjusted p = {self.p_adjusted:.3g} over {self.family} comparisons"

    def describe(self, digits: int = 3) -> str:
        """What the comparison shows, in one sentence."""
        d = self.diff
        k = d.seeds
        conf = round(self.confidence * 100)
        if k == 0:
            return "no paired seeds"
        if self.verdict == "identical":
            return f"identical on all {k} seeds" + (
                f" and {d.examples} test examples" if d.examples else ""
            )
        noise = (
            f"seeds and {d.examples} test examples"
            if d.examples
            else "seeds only (no per-example test outcomes: the test set's noise is not in it)"
        )
        if not math.isfinite(d.low):
            return f"{d.mean:+.{digits}f} from 1 seed: no interval"
        each = " for this comparison alone, not corrected" if self.family > 1 else ""
        return (
            f"{d.mean:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}] ({conf}%{each}, "
            f"{noise}); {self.corrected + '; ' if self.corrected else ''}"
            f"behind on {self.behind}/{k} seeds (sign test p = {self.sign_p:.3g}; with {k} seeds "
            f"it cannot go below {self.min_sign_p:.3g})"
        )


def _sign_test(behind: int, ahead: int) -> float:
    if behind + ahead == 0:
        return 1.0
    # the exact two-sided binomial test at 1/2 (scipy's binomtest, without its overhead)
    n, k = behind + ahead, min(behind, ahead)
    return min(1.0, 2.0 * sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n)


def _paired(
    best: Mapping[Any, Any], other: Mapping[Any, Any], maximize: bool
) -> tuple[list[Any], dict[Any, Any]]:
    """The seeds both have and, by seed, ``other``'s deficit (positive: worse): per-example
    differences where both have arrays of one shape, else per-seed means' differences."""
    ran = [k for k in best if k in other and best[k] is not None and other[k] is not None]
    keys = [k for k in ran if finite(best[k]) and finite(other[k])]
    a = {k: np.asarray(best[k], dtype=float) for k in keys}
    b = {k: np.asarray(other[k], dtype=float) for k in keys}
    if any(a[k].shape != b[k].shape for k in keys):  # not the same examples: seeds only
        a = {k: seed_mean(v) for k, v in a.items()}
        b = {k: seed_mean(v) for k, v in b.items()}
    sign = 1.0 if maximize else -1.0
    return keys, {k: sign * (a[k] - b[k]) for k in keys}


def paired_difference(
    best: Mapping[Any, Any],
    other: Mapping[Any, Any],
    *,
    maximize: bool,
    confidence: float = 0.95,
) -> Estimate:
    """How much worse ``other`` is than ``best`` (positive: worse), paired by seed and test
    example: the :class:`Estimate` of :func:`paired_test` (the seeds' ``k - 1`` degrees of
    freedom), without its words.

    Example:
        >>> d = paired_difference({0: 0.9, 1: 0.8, 2: 0.85}, {0: 0.8, 1: 0.75, 2: 0.8},
        ...                       maximize=True)
        >>> round(d.mean, 3), d.df
        (0.067, 2.0)
    """
    return estimate(_paired(best, other, maximize)[1], confidence=confidence, seeds_df=True)


def paired_test(
    best: Mapping[Any, Any],
    other: Mapping[Any, Any],
    *,
    maximize: bool,
    confidence: float = 0.95,
    family: int = 1,
) -> PairedTest:
    """``other`` against ``best``, paired by seed (the keys) and, where both give per-example
    arrays of one length, by test example (module docstring). ``maximize``: larger is better
    (accuracy); the difference is oriented so that positive means ``other`` is worse. A seed
    whose value is None (a run that failed) is left out. ``family``: the comparisons this one
    is one of; the verdict and :attr:`PairedTest.interval` are at Bonferroni's level
    ``(1 - confidence) / family``.

    Example:
        >>> t = paired_test({s: [1, 1, 1, 0] for s in range(5)},
        ...                 {s: [1, 1, 0, 0] for s in range(5)}, maximize=True)
        >>> t.behind, t.verdict                 # one test example of four, on every seed
        (5, 'not distinguishable')
    """
    keys, diffs = _paired(best, other, maximize)
    d = estimate(diffs, confidence=confidence, seeds_df=True)
    per_seed = [seed_mean(diffs[k]) for k in keys]
    behind = sum(x > 0 for x in per_seed)
    ahead = sum(x < 0 for x in per_seed)
    k = len(keys)
    min_p = min(1.0, 2.0 * 0.5**k) if k else 1.0
    p = _t_p(d)
    level = 1 - (1 - confidence) / family
    wide = d.interval  # at the family's level: the same fit, its t quantile at that level
    if family > 1 and d.seeds >= 2 and d.se > 0:
        half = _t_half(d.se, d.df, level)
        wide = (d.mean, d.mean - half, d.mean + half)
    test = PairedTest(
        d, behind, ahead, _sign_test(behind, ahead), min_p, "", confidence, p,
        min(1.0, p * family), family, wide,
    )  # fmt: skip
    return replace(test, verdict=_verdict(test, 1 - confidence))


def _t_p(d: Estimate) -> float:
    """The two-sided p-value of ``d.mean`` against 0 under ``d``'s t reference (1 where its
    standard error is 0: no spread to judge a difference by)."""
    if d.seeds < 2 or not math.isfinite(d.se):
        return math.nan if d.seeds < 2 else 1.0
    if d.se == 0:
        return 1.0
    from scipy import special

    return float(2 * special.stdtr(d.df, -abs(d.mean) / d.se))


def _verdict(t: PairedTest, alpha: float) -> str:
    """The verdict from the (adjusted) p-value at ``alpha``, the family-wise level."""
    d, k = t.diff, t.diff.seeds
    if k >= 1 and d.se == 0 and d.mean == 0:
        return "identical"
    if k >= 2 and t.p_adjusted <= alpha:
        return "worse" if d.mean > 0 else "better"
    return "not distinguishable"


def holm(pvalues: Sequence[float], family: int | None = None) -> list[float]:
    """Holm's step-down adjusted p-values of ``pvalues`` (in their order), as one family of
    ``family`` hypotheses (at least ``len(pvalues)``; more when these are a subset chosen
    from a larger family: the steps then start from ``family``). Reject where the adjusted
    p-value is at most the family-wise level. A NaN p-value is left NaN and not counted.

    Example:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
        [0.03, 0.06, 0.06]
    """
    order = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    m = max(len(order), family or 0)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for j, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - j) * p))
        out[i] = running
    return out


# -- failures: a rate per optimizer, and which fails more often ------------------------------


def failure_rate(failed: int, runs: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(rate, low, high)``: ``failed`` of ``runs`` with the exact (Clopper-Pearson)
    interval at ``confidence`` (NaN with no runs).

    Example:
        >>> [round(x, 4) for x in failure_rate(0, 40)]     # none of 40: up to 8.8 %
        [0.0, 0.0, 0.0881]
        >>> [round(x, 4) for x in failure_rate(6, 40)]
        [0.15, 0.0571, 0.2984]
    """
    if runs <= 0:
        return (math.nan,) * 3
    from scipy import special

    a = 1 - confidence
    low = float(special.betaincinv(failed, runs - failed + 1, a / 2)) if failed else 0.0
    high = float(special.betaincinv(failed + 1, runs - failed, 1 - a / 2)) if failed < runs else 1.0
    return failed / runs, low, high


def failure_test(best: Mapping[Any, bool], other: Mapping[Any, bool]) -> tuple[int, int, float]:
    """Does ``other`` fail more often than ``best``? Both map each test seed they ran to
    whether it failed; on the seeds both ran, ``(other failed alone, best failed alone, p)``
    with the exact two-sided McNemar test (the sign test over the seeds where one failed:
    valid whatever the two runs of a seed share).

    Example:
        >>> failure_test({s: False for s in range(40)}, {s: s < 7 for s in range(40)})
        (7, 0, 0.015625)
    """
    seeds = [s for s in best if s in other]
    more = sum(other[s] and not best[s] for s in seeds)
    fewer = sum(best[s] and not other[s] for s in seeds)
    return more, fewer, _sign_test(more, fewer)
