"""The statistics of a comparison's verdict, apart from its prose and from what runs it.

Which optimizer is recommended (:func:`chosen`), how each other one compares with it
(:func:`ranking`: the sequential design's tests, :mod:`.sequential`; or, where no optimizer has
a validation score, Holm over every pair, :mod:`.stats`), which optimizers the next look
gives more test seeds (:func:`more_seeds`), the fastest to the target (:func:`fastest`) and
each optimizer's tuning noise (:func:`tuning_noise`). Each is a function of a
:class:`~descentlab.experiments.compare.results.Comparison`'s fields (its spec, its
per-optimizer results, its task and metric): numbers, no sentences -- those are
:class:`~descentlab.experiments.compare.results.Comparison`'s (the console's) and the report's
-- and no runner: nothing here trains, schedules trials or reads a store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from descentlab.experiments import tuning
from descentlab.experiments.compare import sequential, stats
from descentlab.problems.problem import METRICS


class Comparison(Protocol):
    """What the verdict reads of a :class:`~descentlab.experiments.compare.results.
    Comparison` (its fields; the results are its ``OptimizerResult`` values)."""

    spec: Any
    results: list[Any]
    task: str
    select_metric: str

    @property
    def classification(self) -> bool: ...

    @property
    def target_accuracy(self) -> float | None: ...


#: One optimizer's :class:`~descentlab.experiments.compare.results.OptimizerResult`.
OptimizerResult = Any

__all__ = [
    "TuningNoise",
    "as_paired",
    "chosen",
    "fastest",
    "final_values",
    "look",
    "more_seeds",
    "ranking",
    "score_metric",
    "tuning_noise",
    "validation_score",
]


@dataclass(frozen=True)
class TuningNoise:
    """How much one optimizer's tuning score moves with the seed (:func:`tuning_noise`).

    Attributes:
        seed_sd: the standard deviation (``ddof=1``) of one seed's score: the chosen
            setting's curve runs, which are its tuning trial with other seeds (NaN: not
            measured, see ``why_not``).
        sd: of a tuning score, the mean over the comparison's tuning seeds:
            ``seed_sd / sqrt(tune_seeds)``.
        seeds: the curve runs it is measured over.
        close: settings other than the chosen one whose score is within ``sd`` of the chosen
            one's (the tuning did not tell them apart).
        why_not: why it is not measured (None: it is).
    """

    seed_sd: float
    sd: float
    seeds: int
    close: int
    why_not: str | None = None


def score_metric(task: str, metric: str | None = None) -> tuple[str, bool]:
    """The validation metric tuning selects on: the problem's own (``accuracy``, ``loss``,
    ``rmse``), else accuracy for classification and loss for regression.

    Example:
        >>> score_metric("classification"), score_metric("regression", "rmse")
        (('val/accuracy', True), ('val/rmse', False))
    """
    if metric is not None:
        return METRICS[metric]
    return ("val/accuracy", True) if task == "classification" else ("val/loss", False)


def final_values(cmp: Comparison, r: OptimizerResult) -> list[float]:
    """The select metric's value at the last step of each of ``r``'s curve runs (those that
    have a finite one)."""
    got = r.curves.get(cmp.select_metric)
    values = []
    for steps, vals in [] if got is None else got.runs:
        at = vals[np.asarray(steps) == cmp.spec.steps]
        if len(at) and math.isfinite(at[-1]):
            values.append(float(at[-1]))
    return values


def validation_score(cmp: Comparison, r: OptimizerResult) -> float:
    """``r``'s mean final validation score (the tuning metric) over its curve runs' seeds:
    trained on the training split, scored on validation data, no test example seen. NaN
    unless every final seed's curve run has one (a failed run never wins)."""
    values = final_values(cmp, r)
    if len(values) < len(cmp.spec.final_seeds) or not values:
        return math.nan
    return float(np.mean(values))


def chosen(cmp: Comparison, scored: Sequence[OptimizerResult]) -> tuple[OptimizerResult, str]:
    """The one of ``scored`` the verdict recommends and what it was chosen on:
    ``"validation"`` (the best :func:`validation_score`: the test outcomes it is then compared
    on play no part in the choice) or, where no optimizer has one, ``"test"`` (the best test
    mean)."""
    maximize = score_metric(cmp.task, cmp.select_metric.split("/", 1)[1])[1]
    sign = 1.0 if maximize else -1.0
    val = [(r, validation_score(cmp, r)) for r in scored]
    val = [(r, v) for r, v in val if math.isfinite(v)]
    if val:
        return max(val, key=lambda x: sign * x[1])[0], "validation"
    cls = cmp.classification
    sign = 1.0 if cls else -1.0
    return max(scored, key=lambda r: sign * r.test_summary(cls)[0]), "test"


def _scored(cmp: Comparison) -> list[OptimizerResult]:
    """The optimizers with a finite test mean (final runs done)."""
    cls = cmp.classification
    return [r for r in cmp.results if math.isfinite(r.test_summary(cls)[0])]


def ranking(cmp: Comparison) -> list[dict[str, Any]]:
    """The optimizers with final test results, the chosen one first (:func:`chosen`), then
    the others by test mean, each compared with the chosen one **paired by test seed and by
    test example**: ``{"result", "mean", "diff": (mean, low, high, pairs), "test":
    PairedTest, "tied", "chosen_on", "validation", "sequential": SeqTest or None}``.

    ``diff`` is how much worse this one is than the chosen one (positive: worse) with its
    interval at the spec's confidence for this comparison alone, under the crossed seeds x
    test examples model of :mod:`~descentlab.experiments.compare.stats` (the test set's
    sampling noise included where the refit runs stored per-example outcomes). The verdicts
    are the sequential design's (:mod:`~descentlab.experiments.compare.sequential`): the
    choice on the curve runs' seeds, the test on disjoint seeds, Holm's step-down over the
    M - 1 comparisons inside a group-sequential design. Where no optimizer has a validation
    score the choice is made on the test outcomes and the verdicts are corrected (Holm) for
    every pair of the M optimizers instead. ``tied`` means the data do not show this
    optimizer worse than the chosen one.
    """
    cls = cmp.classification
    name = "accuracy" if cls else "loss"
    scored = _scored(cmp)
    if not scored:
        return []
    top, basis = chosen(cmp, scored)
    sign = 1.0 if cls else -1.0
    others = sorted(
        (r for r in scored if r is not top), key=lambda r: -sign * r.test_summary(cls)[0]
    )
    conf = cmp.spec.confidence
    best = top.test_outcome_values(name)
    tests = [stats.paired_test(best, best, maximize=cls, confidence=conf)]
    seq: list[Any] = [None] * len(others)
    if basis == "validation":
        looked = look(cmp, top, others, final=True)
        seq = list(looked.tests)
        tests += [as_paired(t, looked) for t in looked.tests]
    else:
        # chosen on the test outcomes: every pair of the M optimizers is one family
        m = len(scored)
        tests += stats.with_best(
            best,
            [r.test_outcome_values(name) for r in others],
            maximize=cls,
            confidence=conf,
            family=m * (m - 1) // 2,
        )
    out = []
    for r, test, sq in zip([top, *others], tests, [None, *seq], strict=True):
        d = test.diff
        out.append(
            {
                "result": r,
                "mean": r.test_summary(cls)[0],
                "diff": (d.mean, d.low, d.high, d.seeds),
                "test": test,
                "tied": r is top or test.tied,
                "chosen_on": basis,
                "validation": validation_score(cmp, r),
                "sequential": sq,
            }
        )
    return out


def look(
    cmp: Comparison,
    top: OptimizerResult,
    others: Sequence[OptimizerResult],
    *,
    final: bool,
) -> sequential.Looked:
    """The sequential verdict of ``others`` against ``top`` on the test seeds run so far."""
    name = "accuracy" if cmp.classification else "loss"
    best = top.test_outcome_values(name)
    planned = set(cmp.spec.test_seeds)
    order = [s for s in cmp.spec.test_seeds if s in best]
    order += sorted(s for s in best if s not in planned)  # (seeds of another plan)
    return sequential.look(
        best,
        [r.test_outcome_values(name) for r in others],
        maximize=cmp.classification,
        looks=cmp.spec.looks,
        order=order,
        confidence=cmp.spec.confidence,
        final=final,
    )


def more_seeds(cmp: Comparison) -> dict[str, int]:
    """The test seeds each optimizer needs for the sequential verdict's next look, by label
    (empty: the verdict is final): the chosen one and those whose comparison is still
    open."""
    scored = _scored(cmp)
    if len(scored) < 2:
        return {}
    top, basis = chosen(cmp, scored)
    if basis != "validation":
        return {}
    others = [r for r in scored if r is not top]
    looked = look(cmp, top, others, final=False)
    if not looked.open:
        return {}
    want = {top.label: looked.next_seeds}
    for i in looked.open:
        want[others[i].label] = looked.next_seeds
    return want


def as_paired(t: sequential.SeqTest, looked: sequential.Looked) -> stats.PairedTest:
    """The sequential verdict of one comparison as a :class:`~descentlab.experiments.compare.
    stats.PairedTest` (its interval the comparison's alone), with the smallest difference the
    design would detect at the seeds it had and how many seeds a fresh comparison at the
    corrected level would need."""
    from scipy import special

    d, m = t.test.diff, looked.family
    level = looked.alpha / max(m, 1)  # the first Holm step's level: the safe side
    mdd, needed = math.nan, None
    if d.seeds >= 2 and math.isfinite(d.se):
        b = sequential.boundaries(looked.looks, level)[-1]
        nominal = 2 * float(special.ndtr(-b))
        t_a = float(special.stdtrit(d.df, 1 - nominal / 2))
        mdd = (t_a + float(special.stdtrit(d.df, stats.POWER))) * d.se
        if t.verdict == "not distinguishable" and d.mean != 0 and d.seed_var > 0:
            sd = math.sqrt(d.seed_var * d.seeds)
            needed = stats.seeds_needed(d.mean, sd, d.example_var, alpha=level)
            if needed is not None:
                needed = max(needed, d.seeds + 1)
    words = (
        f"group-sequential Holm over the {m} comparison{'s' if m != 1 else ''} with the chosen "
        f"one, {d.seeds} seeds"
    )
    return replace(
        t.test, verdict=t.verdict, family=m, p_adjusted=math.nan, mdd=mdd,
        seeds_needed=needed, correction=words,
    )  # fmt: skip


def fastest(cmp: Comparison) -> tuple[OptimizerResult | None, list[OptimizerResult]]:
    """The optimizer that reached the target validation accuracy in the fewest steps (most
    seeds reaching first, then mean steps), and the others not distinguishable from it
    (paired by seed, over the seeds both reached)."""
    if cmp.target_accuracy is None:
        return None, []

    def key(r: OptimizerResult) -> tuple[int, float]:
        steps = [s for s in r.steps_to_target if s is not None]
        return (-len(steps), float(np.mean(steps)) if steps else math.inf)

    reached = [r for r in cmp.results if any(s is not None for s in r.steps_to_target)]
    if not reached:
        return None, []
    reached.sort(key=key)
    top = reached[0]
    seeds = cmp.spec.final_seeds

    def by_seed(r: OptimizerResult) -> dict[int, float]:
        return {
            s: float(v) for s, v in zip(seeds, r.steps_to_target, strict=False) if v is not None
        }

    ties = []
    for r in reached[1:]:
        if key(r)[0] != key(top)[0]:
            continue
        d = tuning.paired_difference(by_seed(r), by_seed(top), confidence=cmp.spec.confidence)
        if d[3] < 2 or not d[1] > 0:
            ties.append(r)
    return top, ties


def tuning_noise(cmp: Comparison, r: OptimizerResult) -> TuningNoise:
    """How much ``r``'s tuning score moves with the seed, measured on the chosen setting's
    curve runs: with a holdout split and tuning trials as long as the final runs, a curve run
    *is* the tuning trial with another seed (same setting, data and length), so the spread of
    their final validation metric is the spread of one seed's tuning score. Not measured
    (``why_not``) with k-fold tuning or shorter tuning trials (another quantity), for an
    optimizer not tuned, or with fewer than 2 curve runs."""
    spec = cmp.spec
    why = None
    if r.choice.fixed_lr or r.best is None:
        why = "not tuned"
    elif spec.cv_folds is not None:
        why = f"its tuning scores are {spec.cv_folds}-fold means, its curve runs one split"
    elif spec.tune_length != spec.steps:
        why = (
            f"its tuning trials ran {spec.tune_length} steps and its curve runs "
            f"{spec.steps}: not the same trial"
        )
    values = [] if why else final_values(cmp, r)
    if why is None and len(values) < 2:
        why = f"{len(values)} completed curve run{'s' if len(values) != 1 else ''}"
    if why is not None:
        return TuningNoise(math.nan, math.nan, len(values), 0, why)
    seed_sd = float(np.std(values, ddof=1))
    sd = seed_sd / math.sqrt(spec.tune_seeds)
    top = r.candidates[r.best].score  # type: ignore[index]
    close = sum(
        1
        for i, c in enumerate(r.candidates)
        if i != r.best and math.isfinite(c.score) and abs(top - c.score) <= sd
    )
    return TuningNoise(seed_sd, sd, len(values), close)
