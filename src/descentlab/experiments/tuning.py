"""Hyperparameter search on validation data only: candidates, folds, selection, statistics.

The pieces of the tuning protocol ("tune on folds, refit on all training data, never touch the
test set while choosing"), kept apart from any training: the candidates (a log grid, or random
search drawing the lr log-uniformly), the data each phase trains on (tuning and validation
splits hold **no test data**; only the refit split keeps the sealed test split), the choice of
the best, which trials failed, the refinement of the lr grid, and the seeds' statistics.

Example:
    >>> candidates((1e-3, 1e-1), trials=3)
    [{'lr': 0.001}, {'lr': 0.01}, {'lr': 0.1}]
    >>> select_best([0.8, float("nan"), 0.9, 0.9], maximize=True)
    2

References:
    Bergstra & Bengio, "Random search for hyper-parameter optimization", JMLR 13, 2012.
    Schneider, Balles, Hennig, "DeepOBS: a deep learning optimizer benchmark suite", ICLR 2019
    (tuning on a log grid, rerunning the best setting with several seeds).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from descentlab.constraints import FRACTION, POSITIVE_INT, check
from descentlab.problems.data import chance_level, fold_indices

__all__ = [
    "FAILURES",
    "SEARCHES",
    "candidates",
    "candidates_of",
    "chance_level",
    "check_space",
    "fold_indices",
    "fold_splits",
    "grid_step",
    "grid_step_of",
    "holdout_splits",
    "log_grid",
    "refine_lrs",
    "refit_splits",
    "round_sig",
    "select_best",
    "t_interval",
    "time_to_target",
    "trial_failure",
]

#: Why a trial failed (:func:`trial_failure`), with what each reason means.
FAILURES: dict[str, str] = {
    "diverged": "the loss went non-finite",
    "chance": "the final held-out metric is no better than chance",
    "loss rose": "the final training loss is above the initial one",
    "failed": "its code raised, or the worker running it died (the cause is stored)",
}

#: Search strategies accepted by :func:`candidates`.
SEARCHES: tuple[str, ...] = ("grid", "random")


def round_sig(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant digits (stable, readable values for configs).

    Example:
        >>> round_sig(0.0031622776), round_sig(316.22776, 2)
        (0.00316, 320.0)
    """
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits - 1}e}")


def _check_positive_range(name: str, rng: Any) -> tuple[float, float]:
    ok = (
        isinstance(rng, Sequence)
        and not isinstance(rng, str)
        and len(rng) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in rng)
    )
    if not ok:
        raise ValueError(f"{name} must be a pair (low, high), got {rng!r}")
    lo, hi = float(rng[0]), float(rng[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"{name} must satisfy 0 < low <= high (finite), got {rng!r}")
    return lo, hi


def log_grid(low: float, high: float, n: int) -> list[float]:
    """``n`` points evenly spaced in ``log10`` from ``low`` to ``high`` (3 significant digits).

    One point gives the geometric mean of the range.

    Example:
        >>> log_grid(1e-4, 1e-2, 5)
        [0.0001, 0.000316, 0.001, 0.00316, 0.01]
    """
    lo, hi = _check_positive_range("range", (low, high))
    return _log_grid(lo, hi, check("n", n, POSITIVE_INT))


def _log_grid(lo: float, hi: float, n: int) -> list[float]:
    """:func:`log_grid` of a range and a count already checked."""
    if n == 1:
        return [round_sig(math.sqrt(lo * hi))]
    return [round_sig(float(v)) for v in np.geomspace(lo, hi, n)]


def candidates(
    lr_range: tuple[float, float],
    *,
    search: str = "grid",
    trials: int = 5,
    space: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The hyperparameter settings to try for one optimizer.

    ``grid``: ``trials`` learning rates on a log grid over ``lr_range``, crossed with every
    combination of the lists in ``space`` (``trials * prod(len(values))`` settings).
    ``random``: ``trials`` settings; the learning rate is drawn log-uniformly from
    ``lr_range``, a list in ``space`` is a choice (uniform), a pair ``(low, high)`` is drawn
    log-uniformly. Draws come from ``numpy.random.default_rng(seed)``: the same arguments give
    the same settings. Continuous values are rounded to 3 significant digits.

    Args:
        lr_range: ``(low, high)`` with ``0 < low <= high``.
        search: ``"grid"`` or ``"random"``.
        trials: grid points or random draws (>= 1).
        space: other hyperparameters, ``{name: [values...]}`` or (random search)
            ``{name: (low, high)}``.
        seed: seed of the random search.

    Returns:
        A list of ``{"lr": ..., **others}`` dicts, learning rates in increasing order for the
        grid (draw order for random search).

    Raises:
        ValueError: bad range, count, search name or space entry.

    Example:
        >>> candidates((0.01, 0.1), trials=2, space={"momentum": [0.5, 0.9]})
        [{'lr': 0.01, 'momentum': 0.5}, {'lr': 0.01, 'momentum': 0.9}, {'lr': 0.1, 'momentum': 0.5}, {'lr': 0.1, 'momentum': 0.9}]
    """  # noqa: E501
    lo, hi = _check_positive_range("lr_range", lr_range)
    trials = check("trials", trials, POSITIVE_INT)
    space = check_space(space or {}, search)
    return candidates_of(lo, hi, trials, search=search, space=space, seed=seed)


def candidates_of(
    lo: float, hi: float, trials: int, *, search: str, space: Mapping[str, Any], seed: int
) -> list[dict[str, Any]]:
    """:func:`candidates` of a range, a count, a search and a space already checked (the
    space by :func:`check_space`)."""
    if search == "grid":
        keys = list(space)
        out = []
        for lr in _log_grid(lo, hi, trials):
            for combo in itertools.product(*(space[k] for k in keys)):
                out.append({"lr": lr, **dict(zip(keys, combo, strict=True))})
        return out
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        setting: dict[str, Any] = {"lr": round_sig(_log_uniform(rng, lo, hi))}
        for key, values in space.items():
            if isinstance(values, tuple):
                setting[key] = round_sig(_log_uniform(rng, *map(float, values)))
            else:
                setting[key] = values[int(rng.integers(len(values)))]
        out.append(setting)
    return out


def check_space(space: Mapping[str, Any], search: str) -> dict[str, Any]:
    """A copy of ``space``, its entries checked for ``search`` (ValueError: a bad search name
    or entry), as :func:`candidates` takes them."""
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    space = dict(space)
    if "lr" in space:
        raise ValueError("space must not contain 'lr' (give lr_range instead)")
    for key, values in space.items():
        if isinstance(values, tuple):
            if search == "grid":
                raise ValueError(
                    f"space[{key!r}] is a range {values!r}; ranges need search='random' "
                    "(the grid takes a list of values)"
                )
            _check_positive_range(f"space[{key!r}]", values)
        elif not isinstance(values, list) or not values:
            raise ValueError(f"space[{key!r}] must be a non-empty list or a (low, high) pair")
    return space


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def grid_step(low: float, high: float, n: int) -> float:
    """The spacing, in decades, of :func:`log_grid` ``(low, high, n)`` (one decade when the
    grid has a single point or an empty range).

    Example:
        >>> grid_step(1e-3, 1e-1, 5)
        0.5
    """
    lo, hi = _check_positive_range("range", (low, high))
    return grid_step_of(lo, hi, check("n", n, POSITIVE_INT))


def grid_step_of(lo: float, hi: float, n: int) -> float:
    """:func:`grid_step` of a range and a count already checked."""
    if n == 1 or hi == lo:
        return 1.0
    return math.log10(hi / lo) / (n - 1)


def _tried(lr: float, lrs: Sequence[float], step: float) -> bool:
    # Within a quarter of a half step: 3-digit rounding makes 0.316 * 10**0.5 = 0.999, which
    # is the grid point 1.0, not a new one.
    return any(abs(math.log10(lr / v)) < step / 8 for v in lrs)


def refine_lrs(
    lrs: Sequence[float],
    scores: Sequence[float],
    *,
    maximize: bool,
    lr_range: tuple[float, float],
    step: float,
    max_extend: int = 2,
) -> list[float]:
    r"""The learning rates to try next, given those tried and their validation scores.

    A coarse log grid (spacing ``step`` decades over ``lr_range``) rarely brackets the best
    rate well. Called after each round, this proposes:

    1. **extension**: when the best rate is the smallest (largest) tried, one grid step
       below (above) it -- at most ``max_extend`` points beyond each end of ``lr_range``.
       When every rate failed, the extension goes down (the usual failure is a rate too
       large);
    2. otherwise **refinement**: the two points half a step on either side of the best
       (:math:`\eta^* 10^{\pm s/2}`), inside the tried span, not tried yet;
    3. nothing, when both are done: the search is over.

    A failed setting has a NaN score and never counts as best; ties go to the smaller rate.
    Every call with the same arguments proposes the same rates (3 significant digits), so a
    resumed search retraces its rounds.

    Args:
        lrs: the learning rates tried so far (any order).
        scores: their validation scores (NaN: the trial failed).
        maximize: higher scores are better (accuracy) or lower (loss).
        lr_range: the search range the coarse grid covered.
        step: the coarse grid's spacing in decades (:func:`grid_step`).
        max_extend: extension points allowed beyond each end of ``lr_range``.

    Returns:
        The new learning rates (empty: done).

    Example:
        >>> refine_lrs([0.01, 0.1, 1.0], [0.5, 0.7, 0.6], maximize=True,
        ...            lr_range=(0.01, 1.0), step=1.0)
        [0.0316, 0.316]
        >>> refine_lrs([0.01, 0.1, 1.0], [0.5, 0.6, 0.7], maximize=True,
        ...            lr_range=(0.01, 1.0), step=1.0)
        [10.0]
    """
    if len(lrs) != len(scores):
        raise ValueError(
            f"lrs and scores must have the same length, got {len(lrs)} and {len(scores)}"
        )
    if not lrs:
        raise ValueError("lrs must hold at least one tried learning rate")
    lo, hi = _check_positive_range("lr_range", lr_range)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive number of decades, got {step!r}")
    order = sorted(zip(map(float, lrs), scores, strict=True))
    xs = [x for x, _ in order]
    below = sum(x < lo * (1 - 1e-6) for x in xs)
    above = sum(x > hi * (1 + 1e-6) for x in xs)
    best_i = select_best([s for _, s in order], maximize=maximize)
    if best_i is None:
        return [round_sig(xs[0] / 10**step)] if below < max_extend else []
    best = xs[best_i]
    if best_i == 0 and below < max_extend:
        return [round_sig(best / 10**step)]
    if best_i == len(xs) - 1 and above < max_extend:
        return [round_sig(best * 10**step)]
    half = 10 ** (step / 2)
    out = []
    for x in (round_sig(best / half), round_sig(best * half)):
        if xs[0] <= x <= xs[-1] and not _tried(x, xs, step):
            out.append(x)
    return out


# ------------------------------------------------------------------------------------------
# the data each phase sees


def holdout_splits(splits: Any) -> Any:
    """The train/validation split of ``splits`` with the test data removed (empty tensors).

    What tuning and validation runs train on: whatever they do, they hold no test example.
    """
    return splits.holdout()


def fold_splits(splits: Any, k: int, *, seed: int = 0) -> list[Any]:
    """``k`` cross-validation splits of all training data (train + validation), no test data.

    Fold ``i`` trains on the other ``k - 1`` folds and validates on fold ``i``; folds are
    stratified for classification.

    Returns:
        ``k`` Splits, each with empty (sealed) test tensors.
    """
    return splits.folds(k, seed=seed)


def refit_splits(splits: Any) -> Any:
    """Training data = train + validation; the test split is kept, sealed.

    The engine unseals it once, for the final evaluation. The ``x_val``/``y_val`` fields keep
    the validation examples (now part of the training data): the metrics a refit run logs for
    them are *training* metrics and the comparison never reports them as validation results.
    """
    return splits.refit()


# ------------------------------------------------------------------------------------------
# choosing and summarising


def select_best(scores: Sequence[float], *, maximize: bool) -> int | None:
    """Index of the best finite score (the first one on ties); None if none is finite.

    A NaN or infinite score marks a trial that diverged: it never wins.

    Example:
        >>> select_best([0.3, 0.1, 0.1], maximize=False)
        1
        >>> select_best([float("nan")], maximize=True) is None
        True
    """
    best, best_i = None, None
    for i, s in enumerate(scores):
        if s is None or not math.isfinite(s):
            continue
        if best is None or (s > best if maximize else s < best):
            best, best_i = s, i
    return best_i


def trial_failure(
    status: str,
    final_metric: float | None,
    *,
    chance: float | None,
    maximize: bool,
    initial_loss: float | None,
    final_loss: float | None,
) -> str | None:
    """Why a finished trial failed (a key of :data:`FAILURES`), or None if it did not.

    A trial fails when its code raised or its worker died (``status == "failed"``), when its
    loss went non-finite (``status == "diverged"``, or a non-finite
    final value), when its final held-out metric is no better than ``chance`` (accuracy
    ``<= chance``; a loss ``>= chance``), or when its final training loss is above its
    initial one -- all three are runs that learned nothing, which a comparison must count
    rather than average in.

    Example:
        >>> trial_failure("completed", 0.10, chance=0.12, maximize=True, initial_loss=2.3,
        ...               final_loss=2.3)
        'chance'
        >>> trial_failure("completed", 0.9, chance=0.12, maximize=True, initial_loss=2.3,
        ...               final_loss=0.4) is None
        True
    """
    if status in ("diverged", "failed"):
        return status
    if any(v is not None and not math.isfinite(v) for v in (final_metric, final_loss)):
        return "diverged"
    at_chance = chance is not None and final_metric is not None
    if at_chance and (final_metric <= chance if maximize else final_metric >= chance):  # type: ignore[operator]
        return "chance"
    if initial_loss is not None and final_loss is not None and final_loss > initial_loss:
        return "loss rose"
    return None


def _sample(values: Sequence[float | None], confidence: float) -> np.ndarray:
    """The finite values as an array (None, NaN and inf left out); ``confidence`` checked."""
    check("confidence", confidence, FRACTION)
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def t_interval(
    values: Sequence[float | None],
    *,
    confidence: float = 0.95,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> tuple[float, float, float]:
    r"""Mean and Student's t confidence interval of the mean.

    .. math::
        \bar x \pm t_{(1+c)/2,\,n-1}\, \frac{s}{\sqrt n}

    with :math:`s` the sample standard deviation (``ddof=1``): the stated coverage for any
    ``n >= 2`` roughly normal per-seed values (a bootstrap's is too narrow for a few seeds).

    Args:
        values: one number per seed (None and NaN values are dropped).
        confidence: confidence level in (0, 1).
        bounds: the metric's range (``(0, 1)`` for an accuracy); the interval is clipped to
            it.

    Returns:
        ``(mean, low, high)``; the bounds are NaN with fewer than two values (no spread to
        estimate), all three NaN with none.

    Example:
        >>> m, lo, hi = t_interval([0.8, 0.82, 0.84])
        >>> round(m, 2), round(hi - m, 4)  # t_{0.975, 2} * 0.02 / sqrt(3)
        (0.82, 0.0497)
    """
    arr = _sample(values, confidence)
    if arr.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, math.nan, math.nan
    sem = float(arr.std(ddof=1)) / math.sqrt(arr.size)
    if sem == 0:
        return mean, mean, mean
    from scipy import stats

    lo, hi = stats.t.interval(confidence, df=arr.size - 1, loc=mean, scale=sem)
    return mean, max(float(lo), bounds[0]), min(float(hi), bounds[1])


def time_to_target(
    steps: Sequence[int] | np.ndarray,
    metric: Sequence[float] | np.ndarray,
    target: float,
    *,
    seconds: Sequence[float] | np.ndarray | None = None,
    maximize: bool = True,
) -> tuple[int | None, float | None]:
    """The first evaluation at which ``metric`` reaches ``target``: ``(step, seconds)``.

    Args:
        steps: evaluation steps, increasing.
        metric: the metric at those steps (e.g. validation accuracy).
        target: the value to reach (``>=`` when ``maximize``, else ``<=``).
        seconds: wall-clock seconds of training at those steps (``progress/wall_time``).
        maximize: reach from below (accuracy) or from above (loss).

    Returns:
        ``(step, seconds)``, or ``(None, None)`` if the target is never reached (seconds is
        None when not given).

    Example:
        >>> time_to_target([0, 10, 20], [0.1, 0.85, 0.9], 0.8, seconds=[0.0, 1.5, 3.0])
        (10, 1.5)
    """
    steps_a = np.asarray(steps)
    vals = np.asarray(metric, dtype=float)
    if steps_a.shape != vals.shape:
        raise ValueError(
            f"steps and metric must have the same length, got {steps_a.shape} and {vals.shape}"
        )
    with np.errstate(invalid="ignore"):
        hit = vals >= target if maximize else vals <= target
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return None, None
    i = int(idx[0])
    secs = None if seconds is None else float(np.asarray(seconds, dtype=float)[i])
    return int(steps_a[i]), secs


def late_collapse(
    steps: Sequence[int] | np.ndarray,
    loss: Sequence[float] | np.ndarray,
    *,
    factor: float = 2.0,
    late: float = 0.75,
) -> int | None:
    """The step at which a run's loss collapsed late, or None.

    A run collapses late when its loss, after reaching its lowest value, first rises above
    ``factor`` times that value in the last ``1 - late`` of the run (at or after ``late``
    of its final step) and is still above it at the end -- a seed whose loss jumps near the
    end, which a table of final numbers would otherwise show as merely a poor seed. A run
    whose loss went non-finite diverged (counted as a failure elsewhere), not collapsed.

    Example:
        >>> late_collapse([0, 25, 50, 75, 90, 100], [2.0, 0.5, 0.3, 0.3, 0.31, 1.2])
        100
        >>> late_collapse([0, 25, 50, 75, 100], [2.0, 0.5, 0.3, 0.3, 0.29]) is None
        True
    """
    s = np.asarray(steps, dtype=float)
    v = np.asarray(loss, dtype=float)
    if v.size < 3 or not np.all(np.isfinite(v)) or s.size != v.size:
        return None
    best = int(np.argmin(v))
    low = float(v[best])
    if not v[-1] > factor * low or low < 0:
        return None
    above = np.flatnonzero(v[best:] > factor * low)
    first = int(s[best + above[0]])
    return first if first >= late * float(s[-1]) else None
