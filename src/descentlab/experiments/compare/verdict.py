"""The statistics of a comparison's verdict, apart from its prose and from what runs it.

Which optimizer is recommended (:func:`chosen`), how each other one compares with it
(:func:`ranking`: one :class:`Standing` each -- the metric on the seeds that trained, with
the sequential design's verdict and its simultaneous interval, :mod:`.sequential`, and the
failures apart, :class:`Reliability`), which optimizers the next look gives more test seeds
(:func:`more_seeds`), the fastest to a target the user set (:func:`fastest`) and each
optimizer's tuning noise (:func:`tuning_noise`). Each is a function of a comparison's fields
(:class:`ComparisonView`: its spec, its per-optimizer results, its task and metric): numbers,
no sentences -- those are :class:`~descentlab.experiments.compare.results.Comparison`'s (the
console's) and the report's -- and no runner: nothing here trains, schedules trials or reads
a store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from descentlab.experiments.compare import sequential, stats
from descentlab.problems.problem import METRICS


class ComparisonView(Protocol):
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
    "ComparisonView",
    "Reliability",
    "Standing",
    "TuningNoise",
    "chosen",
    "fastest",
    "final_values",
    "more_seeds",
    "ranking",
    "score_metric",
    "steadier",
    "tuning_noise",
    "validation_score",
]


@dataclass(frozen=True)
class Reliability:
    """How often one optimizer's test runs failed (diverged, ended at chance, or their
    training loss rose), and whether more often than the chosen one's.

    Attributes:
        failed / runs: its test seeds that failed, of those it ran.
        rate, low, high: ``failed / runs`` with its exact (Clopper-Pearson) interval.
        reasons: ``(reason, count)`` pairs.
        more / fewer: on the seeds both ran, those on which only this one / only the chosen
            one failed (0, 0 for the chosen one itself).
        p: the exact McNemar test's two-sided p-value (NaN for the chosen one).
        p_adjusted: ``p`` with Holm's step-down over the ``M - 1`` comparisons.
        verdict: ``"fails more often"`` or ``"fails less often"`` (than the chosen one, at
            the spec's confidence family-wise), ``"not shown different"``, or ``""`` for the
            chosen one.
    """

    failed: int
    runs: int
    rate: float
    low: float
    high: float
    reasons: tuple[tuple[str, int], ...] = ()
    more: int = 0
    fewer: int = 0
    p: float = math.nan
    p_adjusted: float = math.nan
    verdict: str = ""


@dataclass(frozen=True)
class Standing:
    """One row of :func:`ranking`: an optimizer against the chosen one.

    Attributes:
        result: its ``OptimizerResult``.
        mean: its test metric over the seeds that trained.
        test: the paired test against the chosen one (:class:`~descentlab.experiments.
            compare.stats.PairedTest`; the chosen one's own: against itself, identical). Its
            ``interval`` is the simultaneous one on the seeds both trained.
        chosen_on: ``"validation"`` or ``"test"`` (:func:`chosen`).
        validation: its mean final validation score over its curve runs.
        sequential: the sequential design's numbers (None for the chosen one, or where the
            choice was made on the test outcomes).
        failures: its failed test seeds (:class:`Reliability`).
        practical: against ``--min-difference`` (the spec's ``min_difference``), where it is
            set: ``"beyond"`` (the whole interval is past it), ``"maybe below"`` (a verdict
            whose interval reaches below it), ``"within"`` (not distinguishable, and the whole
            interval is within it either way) or ``""``.
    """

    result: OptimizerResult
    mean: float
    test: stats.PairedTest
    chosen_on: str
    validation: float
    sequential: sequential.SeqTest | None
    failures: Reliability
    practical: str = ""

    @property
    def verdict(self) -> str:
        return self.test.verdict

    @property
    def tied(self) -> bool:
        """Not shown worse than the chosen one (the chosen one itself included)."""
        return self.test.tied

    @property
    def interval(self) -> tuple[float, float, float]:
        """``(estimate, low, high)`` of how much worse it is (positive: worse), simultaneous
        over the comparisons (and the looks)."""
        return self.test.interval

    @property
    def by_ranks_alone(self) -> bool:
        """Called worse or better while its interval strictly crosses 0. Where the interval is
        the sequential test's own (:func:`~descentlab.experiments.compare.sequential.
        interval`) the two cannot disagree; where it is another (a choice made on the test
        outcomes: the mean's), both are said."""
        _, low, high = self.interval
        return (self.verdict == "worse" and low < 0.0) or (self.verdict == "better" and high > 0.0)

    @property
    def by_interval_alone(self) -> bool:
        """Not distinguishable while its interval excludes 0 (as :attr:`by_ranks_alone`: said
        where the interval is not the test's own)."""
        _, low, high = self.interval
        return self.verdict == "not distinguishable" and (low > 0.0 or high < 0.0)


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


def final_values(cmp: ComparisonView, r: OptimizerResult) -> list[float]:
    """The select metric's value at the last step of each of ``r``'s curve runs (those that
    have a finite one)."""
    got = r.curves.get(cmp.select_metric)
    values = []
    for steps, vals in [] if got is None else got.runs:
        at = vals[np.asarray(steps) == cmp.spec.steps]
        if len(at) and math.isfinite(at[-1]):
            values.append(float(at[-1]))
    return values


def validation_score(cmp: ComparisonView, r: OptimizerResult) -> float:
    """``r``'s mean final validation score (the tuning metric) over its curve runs' seeds:
    trained on the training split, scored on validation data, no test example seen. NaN
    unless every final seed's curve run has one (a failed run never wins)."""
    values = final_values(cmp, r)
    if len(values) < len(cmp.spec.final_seeds) or not values:
        return math.nan
    return float(np.mean(values))


def chosen(cmp: ComparisonView, scored: Sequence[OptimizerResult]) -> tuple[OptimizerResult, str]:
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
    return min(scored, key=lambda r: _rank_key(cmp, r)), "test"


def _rank_key(cmp: ComparisonView, r: OptimizerResult) -> float:
    """Best test mean first; none (every test run failed) last."""
    m = r.test_summary(cmp.classification)[0]
    if not math.isfinite(m):
        return math.inf
    return -m if cmp.classification else m


def _scored(cmp: ComparisonView) -> list[OptimizerResult]:
    """The optimizers with test runs (trained or failed)."""
    return [r for r in cmp.results if r.test_values(cmp.classification) or r.test_failures]


def _values(cmp: ComparisonView, r: OptimizerResult) -> dict[int, Any]:
    """``r``'s test outcomes by seed (:meth:`test_outcome_values`), None for each seed whose
    run failed: the paired tests leave those out, the failure comparison counts them."""
    out = r.test_outcome_values("accuracy" if cmp.classification else "loss")
    out.update({s: None for s in r.test_failures})
    return out


def ranking(cmp: ComparisonView) -> list[Standing]:
    """The optimizers with test runs, the chosen one first (:func:`chosen`), then the others
    by test mean, each compared with the chosen one **paired by test seed and by test
    example** over the seeds on which both trained, and each one's failures counted apart.

    The verdicts are the sequential design's (:mod:`~descentlab.experiments.compare.
    sequential`): the choice on the curve runs' seeds, the test on disjoint seeds, each of
    the M - 1 comparisons at ``alpha / (M - 1)`` inside a group-sequential design, with the
    repeated confidence interval that matches it. Where no optimizer has a validation score
    the choice is made on the test outcomes and every pair of the M optimizers is counted
    instead. The failures are compared with the chosen one's by the exact McNemar test, Holm
    over the M - 1 (:class:`Reliability`).
    """
    cls = cmp.classification
    scored = _scored(cmp)
    if not scored:
        return []
    top, basis = chosen(cmp, scored)
    others = sorted((r for r in scored if r is not top), key=lambda r: _rank_key(cmp, r))
    conf = cmp.spec.confidence
    best = _values(cmp, top)
    seq: list[Any] = [None] * len(others)
    if basis == "validation":
        looked = _look(cmp, top, others, final=True)
        seq = list(looked.tests)
        tests = [_as_paired(t, looked) for t in looked.tests]
    else:  # chosen on the test outcomes: every pair of the M optimizers is one family
        family = max(len(scored) * (len(scored) - 1) // 2, 1)
        tests = [
            stats.paired_test(best, _values(cmp, r), maximize=cls, confidence=conf, family=family)
            for r in others
        ]
    own = stats.paired_test(best, best, maximize=cls, confidence=conf)
    span = _span(cmp, top, cls)
    if math.isfinite(span):  # an accuracy, or your own metric's range: within +-its width
        tests = [replace(t, interval=_within(t.interval, span)) for t in tests]
    tau = cmp.spec.min_difference
    return [
        Standing(r, r.test_summary(cls)[0], t, basis, validation_score(cmp, r), sq, f,
                 _practical(t, tau) if r is not top else "")
        for r, t, sq, f in zip(
            [top, *others], [own, *tests], [None, *seq], _reliability(cmp, top, others),
            strict=True,
        )
    ]  # fmt: skip


def _span(cmp: Any, top: Any, cls: bool) -> float:
    """The width of the range the test metric can take: an accuracy's 1, your own metric's
    from its ``Score``'s bounds, else infinite."""
    low, high = cmp.kind.metric_said(top.metric_bounds or (-math.inf, math.inf),
                                     (0.0, 1.0 if cls else math.inf))  # fmt: skip
    return high - low


def _within(ci: tuple[float, float, float], span: float) -> tuple[float, float, float]:
    """A difference's interval within ``+-span``, the metric's range (where the truth lies); an
    infinite end stays infinite (the test cannot bound it there: said, not clipped to the
    range's edge)."""
    est, low, high = ci

    def clip(v: float) -> float:
        return min(max(v, -span), span) if math.isfinite(v) else v

    return est, clip(low), clip(high)


def steadier(ranking: Sequence[Standing]) -> Standing | None:
    """The optimizer not shown worse than the chosen one that failed least often, where that
    is less often than the chosen one (the recommendation names it beside the chosen one)."""

    def rate(x: Standing) -> float:
        return x.failures.failed / x.failures.runs if x.failures.runs else math.inf

    tied = [x for x in ranking[1:] if x.verdict != "worse" and x.failures.failed < x.failures.runs]
    best = min(tied, key=rate, default=None)
    return best if best is not None and rate(best) < rate(ranking[0]) else None


def _practical(t: stats.PairedTest, tau: float | None) -> str:
    """Where the interval lies against a practical threshold ``tau`` (:class:`Standing`)."""
    _, low, high = t.interval
    if not tau or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if t.verdict in ("worse", "better"):
        return "beyond" if min(abs(low), abs(high)) >= tau else "maybe below"
    return "within" if -tau < low and high < tau else ""


def _reliability(
    cmp: ComparisonView, top: OptimizerResult, others: Sequence[OptimizerResult]
) -> list[Reliability]:
    """Each optimizer's failed test seeds (the chosen one first), the others' compared with
    the chosen one's (the exact McNemar test on the seeds both ran, Holm over them)."""
    conf = cmp.spec.confidence

    def ran(r: OptimizerResult) -> dict[int, bool]:
        return {**dict.fromkeys(r.test_values(cmp.classification), False),
                **dict.fromkeys(r.test_failures, True)}  # fmt: skip

    base = ran(top)
    out = []
    for r in [top, *others]:
        mine = ran(r)
        failed = sum(mine.values())
        reasons: dict[str, int] = {}
        for why in r.test_failures.values():
            reasons[why] = reasons.get(why, 0) + 1
        test = (0, 0, math.nan) if r is top else stats.failure_test(base, mine)
        rate = stats.failure_rate(failed, len(mine), conf)
        out.append(Reliability(failed, len(mine), *rate, tuple(sorted(reasons.items())), *test))
    adjusted = stats.holm([x.p for x in out[1:]])
    for i, q in enumerate(adjusted, start=1):
        x = out[i]
        verdict = "not shown different"
        if q <= 1 - conf:
            verdict = "fails more often" if x.more > x.fewer else "fails less often"
        out[i] = replace(x, p_adjusted=q, verdict=verdict)
    return out


def _look(
    cmp: ComparisonView,
    top: OptimizerResult,
    others: Sequence[OptimizerResult],
    *,
    final: bool,
) -> sequential.Looked:
    """The sequential verdict of ``others`` against ``top`` on the test seeds run so far."""
    best = _values(cmp, top)
    planned = set(cmp.spec.test_seeds)
    order = [s for s in cmp.spec.test_seeds if s in best]
    order += sorted(s for s in best if s not in planned)  # (seeds of another plan)
    return sequential.look(
        best,
        [_values(cmp, r) for r in others],
        maximize=cmp.classification,
        looks=cmp.spec.looks,
        order=order,
        confidence=cmp.spec.confidence,
        final=final,
    )


def more_seeds(cmp: ComparisonView) -> dict[str, int]:
    """The test seeds each optimizer needs for the sequential verdict's next look, by label
    (empty: the verdict is final): those whose comparison is still open, and the chosen one
    -- to the last look whatever the comparisons do: its failure rate is part of the
    recommendation, and a design that stops it early stops before its failures can show."""
    scored = _scored(cmp)
    if len(scored) < 2:
        return {}
    top, basis = chosen(cmp, scored)
    if basis != "validation":
        return {}
    others = [r for r in scored if r is not top]
    looked = _look(cmp, top, others, final=False)
    want = dict.fromkeys([top.label, *(others[i].label for i in looked.open)], looked.next_seeds)
    looks, cls = cmp.spec.looks, cmp.classification
    for i in _unsettled(cmp, top, others, looked):  # its failures could change the choice
        n = next(k for k in looks if k > others[i].test_runs(cls))
        want[others[i].label] = max(want.get(others[i].label, 0), n)
        want[top.label] = max(want[top.label], n)
    if not want[top.label]:
        return {top.label: looks[-1]} if top.test_runs(cls) < looks[-1] else {}
    return want


def _unsettled(
    cmp: ComparisonView,
    top: OptimizerResult,
    others: Sequence[OptimizerResult],
    looked: sequential.Looked,
) -> list[int]:
    """The comparisons to keep looking at for their failures: fewer of its test seeds failed
    than of the chosen one's, the failure comparison undecided, the last look not reached,
    and the failures the chosen one has beyond its rate, at the chosen one's cost of a
    failure (its trained seeds' mean against its failed seeds'), outweigh its deficit on
    the seeds both trained."""
    rel = _reliability(cmp, top, others)
    cls, last = cmp.classification, cmp.spec.looks[-1]
    mine = rel[0].failed / max(rel[0].runs, 1)
    scores = top.test_accuracy_seeds if cls else top.test_loss_seeds
    failed = [v for s, v in scores.items() if s in top.test_failures]
    cost = math.inf
    if failed and all(math.isfinite(v) for v in failed):
        cost = abs(
            float(np.mean(list(top.test_values(cls).values()) or [np.nan])) - np.mean(failed)
        )
    out = []
    for i, (r, f) in enumerate(zip(others, rel[1:], strict=True)):
        rate = f.failed / max(f.runs, 1)
        if f.verdict != "not shown different" or rate >= mine or r.test_runs(cls) >= last:
            continue
        deficit = looked.tests[i].test.diff.mean
        if not (deficit >= (mine - rate) * cost):  # (NaN cost or deficit: keep looking)
            out.append(i)
    return out


def _as_paired(t: sequential.SeqTest, looked: sequential.Looked) -> stats.PairedTest:
    """The sequential verdict of one comparison as a :class:`~descentlab.experiments.compare.
    stats.PairedTest`: its verdict and the pseudo-median's repeated interval at the levels it
    was tested at (its ``diff``, the mean on the seeds both trained, stays the comparison's
    alone, described)."""
    m = looked.family
    worse, better = sequential.levels(looked.alpha, m)
    words = (
        f"group-sequential signed-rank, each of the {m} comparison{'s' if m != 1 else ''} with "
        f"the chosen one at {t.level:.3g} (one-sided: worse at {worse:.3g}, better at "
        f"{better:.3g}), {t.test.diff.seeds} seeds"
    )
    return replace(
        t.test, verdict=t.verdict, family=m, p_adjusted=math.nan, interval=t.interval,
        correction=words,
    )  # fmt: skip


def fastest(cmp: ComparisonView) -> tuple[OptimizerResult | None, list[OptimizerResult]]:
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
        d = stats.paired_difference(
            by_seed(r), by_seed(top), maximize=True, confidence=cmp.spec.confidence
        )
        if d.seeds < 2 or not d.low > 0:
            ties.append(r)
    return top, ties


def tuning_noise(cmp: ComparisonView, r: OptimizerResult) -> TuningNoise:
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
