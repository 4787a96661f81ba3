"""How much faster: each optimizer's speedup over the chosen one (or a baseline), in steps and
in seconds, with a bootstrap interval over the curve seeds, and where the curve runs' ranking
changed during training (the definitions, after Wen et al. 2025: docs/compare.md and
docs/verdict.md).

Example:
    >>> steps = np.array([0, 10, 20, 30])
    >>> crossing_step(steps, np.array([[0.1, 0.5, 0.7, 0.8]]), 0.6, maximize=True)
    array([15.])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RESAMPLES",
    "Crossing",
    "Speedup",
    "crossing_step",
    "crossings",
    "execution_mode",
    "paired_curve",
    "speedups",
    "time_withheld",
]

#: Bootstrap resamples of the seeds (seeded: the same interval every time).
RESAMPLES = 2000

#: The fractions of the budget at which the ranking is compared with the end's.
FRACTIONS = (0.25, 0.5)


@dataclass(frozen=True)
class Speedup:
    """One optimizer's speedup over a baseline (module docstring).

    Attributes:
        label / baseline: the candidate's and the baseline's labels.
        target: the candidate's end-of-training validation score (mean over its seeds).
        steps / seconds: ``(estimate, low, high)``; inf: the baseline does not reach the
            target within its budget; NaN: not measured (no curve, no time recorded).
        reached: the baseline's mean curve reaches the target.
        withheld: why the time speedup is not given (:func:`time_withheld`: the two trained
            in different execution modes), else ``""``.
    """

    label: str
    baseline: str
    target: float
    steps: tuple[float, float, float]
    seconds: tuple[float, float, float]
    reached: bool
    withheld: str = ""


def execution_mode(provenance: Any) -> str:
    """How a stored run trained, from its provenance: ``"stacked"`` (in a vectorized pass
    with other runs, charged its share of the pass's time), ``"ranks"`` (torch.distributed
    ranks, ``train --nproc``) or ``"alone"`` (one run in its process)."""
    prov = provenance or {}
    if (prov.get("multirun") or {}).get("mode") == "vmap" or prov.get("pruned_in_pass"):
        return "stacked"
    if (prov.get("nproc") or 1) > 1:
        return "ranks"
    return "alone"


def time_withheld(cand: Any, base: Any) -> str:
    """Why the time speedup of ``cand`` over ``base`` (``OptimizerResult`` s) is not given,
    or ``""``: seconds compare only between runs of one execution mode (a stacked run's share
    of its pass and a run trained alone are different clocks)."""
    a, b = cand.execution_mode, base.execution_mode
    if a is None or b is None or (a == b and a != "mixed"):
        return ""
    return (
        f"time not compared: {base.choice.display} trained {b}, {cand.choice.display} {a}; "
        "rerun with --one-at-a-time to compare times"
    )


def crossing_step(
    steps: np.ndarray, curves: np.ndarray, target: np.ndarray | float, *, maximize: bool
) -> np.ndarray:
    """For each row of ``curves`` (mean curves over ``steps``), the step at which it first
    reaches ``target`` (one per row, or one for all), read linearly between evaluations; inf
    where it never does."""
    curves = np.atleast_2d(curves)
    target = np.broadcast_to(np.asarray(target, dtype=float), curves.shape[:1])
    with np.errstate(invalid="ignore"):
        hit = curves >= target[:, None] if maximize else curves <= target[:, None]
    j = hit.argmax(1)
    before = np.maximum(j - 1, 0)
    rows = np.arange(len(curves))
    v0, v1 = curves[rows, before], curves[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.where(v1 != v0, (target - v0) / (v1 - v0), 1.0), 0.0, 1.0)
    out = steps[before] + frac * (steps[j] - steps[before])
    return np.where(hit.any(1), out, math.inf)


def _curve(r: Any, key: str, end: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(steps, values[seeds, steps])`` of ``r``'s curve runs' ``key`` up to ``end``."""
    got = r.curves.get(key)
    if got is None:
        return None
    steps, values = got.aligned()
    keep = steps <= end
    return steps[keep], values[:, keep]


def _at(steps: np.ndarray, values: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Each row of ``values`` (one per resample) read linearly at its own ``step`` (NaN where
    that is not finite)."""
    ok = np.isfinite(step)
    at = np.where(ok, step, steps[0])
    i = np.clip(np.searchsorted(steps, at, side="right") - 1, 0, max(len(steps) - 2, 0))
    k = np.minimum(i + 1, len(steps) - 1)
    rows = np.arange(len(values))
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(steps[k] > steps[i], (at - steps[i]) / (steps[k] - steps[i]), 0.0)
    return np.where(ok, values[rows, i] + frac * (values[rows, k] - values[rows, i]), math.nan)


def _one(cmp: Any, cand: Any, base: Any, idx: np.ndarray) -> tuple[Any, ...] | None:
    """Target, step and time speedups over the resamples ``idx[b, seeds]`` (row 0: the seeds
    as they are)."""
    key, end, k = cmp.select_metric, cmp.spec.steps, idx.shape[1]
    a, b = _curve(cand, key, end), _curve(base, key, end)
    if a is None or b is None or a[1].shape[0] != k or b[1].shape[0] != k or a[0][-1] != end:
        return None
    if len(b[0]) < 2:  # one evaluation: no curve to read a crossing on
        return None
    finals = a[1][:, -1][idx].mean(1)  # the candidate's end, per resample
    mean_b = b[1][idx].mean(1)
    at = crossing_step(b[0], mean_b, finals, maximize=_maximize(cmp))
    step_ratio = at / end
    ta, tb = _curve(cand, "progress/train_time", end), _curve(base, "progress/train_time", end)
    secs = np.full(len(idx), math.nan)
    if ta is not None and tb is not None and ta[1].shape == a[1].shape == tb[1].shape:
        own_a = ta[1][:, -1][idx].mean(1)
        secs_b = _at(tb[0], tb[1][idx].mean(1), at)
        secs = np.where(np.isinf(at), math.inf, secs_b / own_a)
    return finals[0], step_ratio, secs


def _summary(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    if np.isnan(values[0]):
        return (math.nan,) * 3
    q = (1 - confidence) / 2
    kept = values[~np.isnan(values)]
    low, high = np.quantile(kept, [q, 1 - q], method="inverted_cdf")
    return float(values[0]), float(low), float(high)


def speedups(cmp: Any, baseline: Any) -> list[Speedup]:
    """Every other optimizer's speedup over ``baseline`` (an ``OptimizerResult``), in the
    comparison's order; those whose curve runs cannot be read (missing, another number of
    seeds than the baseline's, diverged before the end) are left out."""
    out = []
    k = len(cmp.spec.final_seeds)
    rng = np.random.default_rng(cmp.spec.seed)
    idx = np.vstack([np.arange(k), rng.integers(0, k, (RESAMPLES, k))])
    for r in cmp.results:
        if r is baseline:
            continue
        got = _one(cmp, r, baseline, idx)
        if got is None or not math.isfinite(got[0]):
            continue
        target, steps, secs = got
        conf = cmp.spec.confidence
        withheld = time_withheld(r, baseline)
        if withheld:  # (one place: every table, export and verdict reads these)
            secs = np.full_like(steps, math.nan)
        out.append(
            Speedup(r.label, baseline.label, float(target), _summary(steps, conf),
                    _summary(secs, conf), bool(math.isfinite(steps[0])), withheld)
        )  # fmt: skip
    return out


def paired_curve(cmp: Any, top: Any, other: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(steps, diff[seeds, steps])``: how much worse ``other``'s curve runs are than
    ``top``'s on the validation score at each evaluation, paired by seed (positive: worse)."""
    a, b = (
        _curve(top, cmp.select_metric, cmp.spec.steps),
        _curve(other, cmp.select_metric, cmp.spec.steps),
    )
    if a is None or b is None or a[1].shape != b[1].shape or not np.array_equal(a[0], b[0]):
        return None
    return a[0], (1.0 if _maximize(cmp) else -1.0) * (a[1] - b[1])


@dataclass(frozen=True)
class Crossing:
    """The curve runs' ranking at a fraction of the budget that differs from the end's.

    Attributes:
        fraction: of the budget (0.25, 0.5).
        step: the evaluation step nearest that fraction.
        then / end: the labels by mean validation score there and at the end, best first.
        passes: ``(label, passed, step)``: who passed whom after ``step``, and the last
            evaluation at which their means changed order.
    """

    fraction: float
    step: int
    then: tuple[str, ...]
    end: tuple[str, ...]
    passes: tuple[tuple[str, str, int], ...]


def crossings(cmp: Any) -> list[Crossing]:
    """The fractions of the budget (:data:`FRACTIONS`) at which the ranking of the curve
    runs' mean validation scores differs from the ranking at the end."""
    curves = {r.label: _curve(r, cmp.select_metric, cmp.spec.steps) for r in cmp.results}
    curves = {k: v for k, v in curves.items() if v is not None and v[1].size}
    if len(curves) < 2:
        return []
    steps = next(iter(curves.values()))[0]
    if any(not np.array_equal(v[0], steps) for v in curves.values()):
        return []
    sign = 1.0 if _maximize(cmp) else -1.0
    with np.errstate(all="ignore"):
        means = {k: sign * np.nanmean(v[1], axis=0) for k, v in curves.items()}
    end = _order(means, len(steps) - 1)
    out = []
    for f in FRACTIONS:
        j = int(np.argmin(np.abs(steps - f * cmp.spec.steps)))
        then = _order(means, j)
        if then == end or j in (0, len(steps) - 1):
            continue
        passes = []
        for a in end:
            for b in end[end.index(a) + 1 :]:
                if means[b][j] > means[a][j]:  # a ends ahead of b, was behind at j
                    gap = means[a][j:] - means[b][j:]
                    last = j + int(np.flatnonzero(np.nan_to_num(gap, nan=0.0) <= 0)[-1]) + 1
                    passes.append((a, b, int(steps[min(last, len(steps) - 1)])))
        if passes:
            out.append(Crossing(f, int(steps[j]), then, end, tuple(passes)))
    return out


def _order(means: dict[str, np.ndarray], j: int) -> tuple[str, ...]:
    """The labels by mean at evaluation ``j``, best first (NaN last)."""
    return tuple(sorted(means, key=lambda k: -np.nan_to_num(means[k][j], nan=-np.inf)))


def _maximize(cmp: Any) -> bool:
    from descentlab.experiments.compare.verdict import score_metric

    return score_metric(cmp.task, cmp.select_metric.split("/", 1)[1])[1]
