"""Hyperparameter search on validation data only: candidates, folds, selection, statistics.

The pieces of the tuning protocol of seed 002 ("tune on folds, refit on all training data,
never touch the test set while choosing"), kept apart from any training so that each is small
and testable:

- :func:`log_grid` and :func:`candidates` list the configurations to try: a log grid of
  learning rates (times a grid of other hyperparameters), or a random search that draws the
  learning rate log-uniformly (Bergstra & Bengio, 2012);
- :func:`holdout_splits`, :func:`fold_splits` and :func:`refit_splits` derive the data each
  phase trains on from a :class:`~descentlab.problems.data.Splits`. Tuning and validation
  splits carry **no test data at all** (empty tensors); only the refit split keeps the original
  (sealed) test split, which the engine unseals once, after training;
- :func:`select_best` picks the winner from validation scores (diverged trials never win);
- :func:`bootstrap_ci` (``scipy.stats.bootstrap``) and :func:`time_to_target` summarise the
  seeds of the final runs.

Example:
    >>> candidates((1e-3, 1e-1), trials=3)
    [{'lr': 0.001}, {'lr': 0.01}, {'lr': 0.1}]
    >>> select_best([0.8, float("nan"), 0.9, 0.9], maximize=True)
    2

References:
    Bergstra & Bengio, "Random search for hyper-parameter optimization", JMLR 13, 2012.
    Schneider, Balles, Hennig, "DeepOBS: a deep learning optimizer benchmark suite", ICLR 2019
    (tuning on a log grid, rerunning the best setting with several seeds).
    Efron & Tibshirani, "An introduction to the bootstrap", 1993 (percentile intervals).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "SEARCHES",
    "bootstrap_ci",
    "candidates",
    "fold_indices",
    "fold_splits",
    "holdout_splits",
    "log_grid",
    "refit_splits",
    "round_sig",
    "select_best",
    "time_to_target",
]

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


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def log_grid(low: float, high: float, n: int) -> list[float]:
    """``n`` points evenly spaced in ``log10`` from ``low`` to ``high`` (3 significant digits).

    One point gives the geometric mean of the range.

    Example:
        >>> log_grid(1e-4, 1e-2, 5)
        [0.0001, 0.000316, 0.001, 0.00316, 0.01]
    """
    lo, hi = _check_positive_range("range", (low, high))
    n = _check_count("n", n)
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
    trials = _check_count("trials", trials)
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    space = dict(space or {})
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
    if search == "grid":
        keys = list(space)
        out = []
        for lr in log_grid(lo, hi, trials):
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


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# ------------------------------------------------------------------------------------------
# the data each phase sees


def _no_test(splits: Any) -> dict[str, Any]:
    import torch

    shape = (0, *splits.input_shape)
    y_shape = (0,) if splits.task == "classification" else (0, splits.n_outputs)
    return {
        "_x_test": torch.empty(shape, dtype=splits.x_train.dtype),
        "_y_test": torch.empty(y_shape, dtype=splits.y_train.dtype),
    }


def holdout_splits(splits: Any) -> Any:
    """The train/validation split of ``splits`` with the test data removed (empty tensors).

    What tuning and validation runs train on: whatever they do, they hold no test example.
    """
    return dataclasses.replace(splits, **_no_test(splits), _sealed=True)


def fold_indices(
    y: Any, k: int, *, seed: int, stratify: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, val_idx)`` of each of ``k`` folds (scikit-learn's splitters, shuffled).

    Args:
        y: targets (labels when ``stratify``): a tensor or an array.
        k: number of folds (>= 2).
        seed: ``random_state`` of the splitter.
        stratify: keep class proportions in every fold (``StratifiedKFold``), else ``KFold``.

    Example:
        >>> folds = fold_indices(np.array([0, 1] * 5), 5, seed=0, stratify=True)
        >>> [len(v) for _, v in folds]
        [2, 2, 2, 2, 2]
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    y_np = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
    splitter = (StratifiedKFold if stratify else KFold)(
        n_splits=int(k), shuffle=True, random_state=seed
    )
    x_dummy = np.zeros((len(y_np), 1))
    target = y_np if stratify else None
    return [(tr, va) for tr, va in splitter.split(x_dummy, target)]


def fold_splits(splits: Any, k: int, *, seed: int = 0) -> list[Any]:
    """``k`` cross-validation splits of all training data (train + validation), no test data.

    Fold ``i`` trains on the other ``k - 1`` folds and validates on fold ``i``; folds are
    stratified for classification.

    Returns:
        ``k`` Splits, each with empty (sealed) test tensors.
    """
    import torch

    x, y = splits.train_val()
    folds = fold_indices(y, k, seed=seed, stratify=splits.task == "classification")
    out = []
    for tr, va in folds:
        tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
        out.append(
            dataclasses.replace(
                splits,
                x_train=x[tr_t],
                y_train=y[tr_t],
                x_val=x[va_t],
                y_val=y[va_t],
                **_no_test(splits),
                _sealed=True,
                meta={**splits.meta, "fold": f"{len(out)}/{k}"},
            )
        )
    return out


def refit_splits(splits: Any) -> Any:
    """Training data = train + validation; the test split is kept, sealed.

    The engine unseals it once, for the final evaluation. The ``x_val``/``y_val`` fields keep
    the validation examples (now part of the training data): the metrics a refit run logs for
    them are *training* metrics and the comparison never reports them as validation results.
    """
    x, y = splits.train_val()
    return dataclasses.replace(
        splits, x_train=x, y_train=y, meta={**splits.meta, "refit": "train+val"}
    )


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


def bootstrap_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap confidence interval of the mean (``scipy.stats.bootstrap``).

    The interval is ``[q_{(1-c)/2}, q_{(1+c)/2}]`` of the means of ``n_resamples`` resamples
    drawn with replacement (seeded, so reproducible). With fewer than two values, or values
    that are all equal, the interval collapses to the mean. With 3 seeds the interval is
    coarse (at most 10 distinct resample means): read it as a spread, not a precise interval.

    Args:
        values: one number per seed (NaN values are dropped).
        confidence: confidence level in (0, 1).
        n_resamples: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        ``(mean, low, high)``; all NaN if no value is finite.

    Example:
        >>> m, lo, hi = bootstrap_ci([0.8, 0.82, 0.84])
        >>> round(m, 2), lo <= m <= hi
        (0.82, True)
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(arr.mean())
    if arr.size < 2 or np.all(arr == arr[0]):
        return mean, mean, mean
    res = stats.bootstrap(
        (arr,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


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
