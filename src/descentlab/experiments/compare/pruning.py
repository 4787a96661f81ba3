r"""Pruning tuning trials: asynchronous successive halving (ASHA) by Optuna's pruner, in a fixed
order, so that the same comparison prunes the same trials however it is run.

``CompareSpec(prune=...)`` (``descentlab compare --prune``) stops the tuning settings that are
clearly behind at two **rungs** of each trial, on their validation scores there, and decides
nothing where those scores cannot tell the settings apart (:func:`indistinguishable`). The
decisions are made in the main process in a fixed order (the settings' order, rung by rung),
so the same comparison prunes the same settings here, in worker processes and on Ray. The
rules, the protocol's guarantees and what they keep and cost: docs/pruning.md.

Example:
    >>> rung_steps(400)
    (25, 100)
    >>> scores = [0.5, 0.9, 0.2, 0.8, 0.3, 0.95]  # one setting each, the same at both rungs
    >>> d = decide(len(scores), rung_steps(400), lambda i, k: scores[i], maximize=True)
    >>> [v.state for v in d.verdicts], d.needs
    (['full', 'full', 'pruned', 'pruned', 'pruned', 'full'], [])

References:
    Li, Jamieson, Rostamizadeh, Gonina, Ben-tzur, Hardt, Recht, Talwalkar, "A system for
    massively parallel hyperparameter tuning", MLSys 2020 (ASHA).
    Akiba, Sano, Yanase, Ohta, Koyama, "Optuna: a next-generation hyperparameter optimization
    framework", KDD 2019.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BOUNDS_LEVEL",
    "CHANCE_MARGIN",
    "NOISE_LEVEL",
    "PRUNERS",
    "PRUNER_NAME",
    "REDUCTION",
    "RULE",
    "RULES",
    "RUNGS",
    "Decisions",
    "Verdict",
    "check_prune",
    "decide",
    "describe",
    "indistinguishable",
    "rung_of",
    "rung_steps",
]

#: The pruners a comparison takes (``CompareSpec.prune``; ``descentlab compare --prune``, whose
#: default is the first): ``"bounds"`` cuts, at ``T/8`` and ``T/2``, the settings whose rung
#: score is worse than the best's by more than the one-sided :data:`BOUNDS_LEVEL` margin of a
#: difference of two settings' means; ``"asha"`` keeps the top ``1/REDUCTION`` at ``T/16`` and
#: ``T/4`` (Optuna's successive-halving pruner). Both keep the at-chance and within-noise
#: rules (:func:`indistinguishable`). docs/pruning.md has what each keeps and saves.
PRUNERS: tuple[str, ...] = ("bounds", "asha")
#: ``"bounds"``: a setting is cut where the best setting's mean rung score beats its own by
#: more than the one-sided quantile at this level of a difference of two means (from the
#: settings' pooled spread over folds and seeds): 1 %, z = 2.326.
BOUNDS_LEVEL = 0.01
#: What decides (the store's note on a pruned run).
PRUNER_NAME = "optuna.pruners.SuccessiveHalvingPruner"
#: ASHA's reduction factor (eta; Optuna's default): about one setting in 4 goes on at each
#: rung.
REDUCTION = 4
#: Rungs below the full length: ``T / 16`` and ``T / 4``.
RUNGS = 2
#: Rung scores this close to chance decide nothing: the best setting's accuracy within this
#: fraction of the way from chance to 1 (a loss: within this fraction of chance).
CHANCE_MARGIN = 0.05
#: Rung scores decide nothing unless the settings' means differ at this level (one-way
#: analysis of variance over the settings' folds and tuning seeds).
NOISE_LEVEL = 0.05

_NEEDS_OPTUNA = (
    "needs Optuna (optuna.pruners.SuccessiveHalvingPruner): pip install 'descentlab[tune]'"
)


def check_prune(value: Any) -> None:
    """``CompareSpec.prune``: None or one of :data:`PRUNERS`, and Optuna importable.

    Raises:
        ValueError: another value, or Optuna not installed (one line saying how to get it).
    """
    if value is None:
        return
    if not isinstance(value, str) or value not in PRUNERS:
        raise ValueError(f"prune must be None or one of {', '.join(PRUNERS)}, got {value!r}")
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ValueError(f"prune={value!r} {_NEEDS_OPTUNA}") from None


def rung_steps(tune_steps: int, rule: str = "asha") -> tuple[int, ...]:
    """The steps at which a tuning setting is judged: ``r, 4r`` with ``r = T // 16`` for
    ``"asha"``, ``r = T // 8`` for ``"bounds"`` (none for a trial too short for ``r >= 1``:
    nothing to prune).

    Example:
        >>> rung_steps(250), rung_steps(15), rung_steps(400, "bounds")
        ((15, 60), (), (50, 200))
    """
    if rule == "bounds":
        r0 = tune_steps // 8
        return () if r0 < 1 else (r0, REDUCTION * r0)
    r0 = tune_steps // REDUCTION**RUNGS
    if r0 < 1:
        return ()
    return tuple(r0 * REDUCTION**k for k in range(RUNGS))


def rung_of(trial: Any) -> int | None:
    """The rung a tuning trial's run stops at (its tag's fourth entry), or None for a full
    run (:func:`~descentlab.experiments.compare.planning.tuning_trials`)."""
    tag = trial.tag
    return int(tag[3]) if trial.phase == "tune" and len(tag) == 4 else None


#: The pruning rule as the budget line says it (``"asha"``'s).
RULE = (
    f"pruned by ASHA (Optuna's SuccessiveHalvingPruner, reduction factor {REDUCTION}, in the "
    f"settings' order) at 1/{REDUCTION**RUNGS} and 1/{REDUCTION ** (RUNGS - 1)} of each trial, "
    "on validation scores; pruned settings count as tried"
)
#: Each pruner's rule as the budget line says it.
RULES = {
    "asha": RULE,
    "bounds": (
        "pruned at 1/8 and 1/2 of each trial where clearly worse than the best setting there "
        f"(by more than the one-sided {BOUNDS_LEVEL:.0%} margin of the settings' spread over "
        "folds and seeds), on validation scores; pruned settings count as tried"
    ),
}


def describe(tune_steps: int, rule: str = "asha") -> str:
    """Where the tuning trials of ``tune_steps`` steps are judged, as text."""
    rungs = rung_steps(tune_steps, rule)
    if not rungs:
        return f"no trial pruned: trials of {tune_steps} steps are too short"
    return f"rungs at steps {', '.join(str(r) for r in rungs)} of {tune_steps}"


@dataclass(frozen=True)
class Verdict:
    """Where one setting stands.

    Attributes:
        state: ``"full"`` (passed every rung: its full tuning trials run), ``"pruned"``
            (stopped at ``rung``), ``"diverged"`` (a run of rung ``rung`` diverged) or
            ``"waiting"`` (its score at ``rung``, or an earlier setting's, is not known yet).
        rung: the rung it stopped at, or waits at (None for ``"full"``).
        value: its score at that rung (None: not known).
    """

    state: str
    rung: int | None = None
    value: float | None = None


@dataclass
class Decisions:
    """:func:`decide`'s answer: a verdict per setting, the ``(setting, rung)`` scores that
    are needed next (their rung runs can train now), and what was not decided."""

    verdicts: list[Verdict]
    needs: list[tuple[int, int]] = field(default_factory=list)
    #: one line per rung whose scores could not tell the settings apart (none pruned there)
    notes: list[str] = field(default_factory=list)


def indistinguishable(
    values: Sequence[Sequence[float]], *, chance: float | None, maximize: bool
) -> str | None:
    """Why the settings' rung scores ``values`` (each setting's scores on its folds and tuning
    seeds) cannot tell the settings apart, or None where they can. They cannot when

    - every setting is **at chance**: the best mean score is within :data:`CHANCE_MARGIN` of
      the way from ``chance`` to a perfect score (accuracy), or no better than ``chance`` less
      :data:`CHANCE_MARGIN` of it (a loss);
    - or the settings differ **within their noise**: a one-way analysis of variance
      (``scipy.stats.f_oneway``: the settings as groups, their folds and seeds as the
      replicates) does not reject that every setting has the same mean at level
      :data:`NOISE_LEVEL`. Settings with a single score give no noise estimate: then only the
      chance test applies.

    Example:
        >>> indistinguishable([[0.11, 0.12], [0.10, 0.13]], chance=0.1, maximize=True)
        'every score is at chance (best 0.115, chance 0.1)'
        >>> indistinguishable([[0.50, 0.70], [0.55, 0.65]], chance=None, maximize=True)
        'within their noise (one-way ANOVA over folds and seeds, p = 1)'
        >>> indistinguishable([[0.50, 0.51], [0.90, 0.91]], chance=None, maximize=True) is None
        True
    """
    rows = [[float(v) for v in row if math.isfinite(v)] for row in values]
    rows = [r for r in rows if r]
    if not rows:
        return None
    means = [sum(r) / len(r) for r in rows]
    if chance is not None and math.isfinite(chance):
        best = max(means) if maximize else min(means)
        if maximize:
            at_chance = best <= chance + CHANCE_MARGIN * (1.0 - chance)
        else:
            at_chance = best >= chance * (1.0 - CHANCE_MARGIN)
        if at_chance:
            return f"every score is at chance (best {best:.3g}, chance {chance:.3g})"
    if len(rows) < 2 or any(len(r) < 2 for r in rows):
        return None
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant groups: F is inf or NaN, handled below
        p = float(stats.f_oneway(*rows).pvalue)
    if math.isnan(p):  # no spread at all, within or between: nothing to tell apart
        p = 1.0 if max(means) == min(means) else 0.0
    if p < NOISE_LEVEL:
        return None
    return f"within their noise (one-way ANOVA over folds and seeds, p = {p:.2g})"


def decide(
    n: int,
    rungs: Sequence[int],
    score: Callable[[int, int], float | Sequence[float] | None],
    *,
    maximize: bool,
    chance: float | None = None,
    rule: str = "asha",
) -> Decisions:
    """ASHA's decisions for ``n`` settings judged at ``rungs`` (steps), in the settings' order
    (``rule="bounds"``: the confidence-bound rule of :data:`PRUNERS` instead).

    Args:
        n: the settings (their order is the order of the decisions).
        rungs: the rung steps, increasing (:func:`rung_steps`).
        score: ``score(i, k)``: setting ``i``'s validation score at rung ``k`` (None: not
            known yet; NaN: a run diverged), or its scores on its folds and tuning seeds (its
            score is their mean; their spread is its noise).
        maximize: higher scores are better.
        chance: the score of a model that learned nothing (None: unknown).
        rule: ``"asha"``, or ``"bounds"``: where the rung decides, a setting is cut when the
            best setting's mean beats its own by more than the one-sided
            :data:`BOUNDS_LEVEL` margin of a difference of two means (pooled spread over
            folds and seeds); with a single score per setting (no spread) that rung decides
            as ASHA does.

    Returns:
        The :class:`Decisions`: each setting's verdict, the scores still needed, and a note
        per rung where nothing was decided (how a rung decides: docs/pruning.md). The
        verdicts do not depend on the order the scores arrived in.
    """
    trials = _trials(n, rungs, maximize)  # trial number i is setting i
    reached = [0] * n  # the rungs each setting has passed
    stopped: dict[int, Verdict] = {}
    out = Decisions([Verdict("waiting", 0)] * n)
    for k, step in enumerate(rungs):
        at = [i for i in range(n) if i not in stopped and reached[i] == k]
        got = {i: score(i, k) for i in at}
        values: dict[int, list[float]] = {}
        for i in at:
            v = got[i]
            if v is None:
                out.needs.append((i, k))
                continue
            values[i] = [float(x) for x in v] if isinstance(v, Sequence) else [float(v)]
            # a diverged run (a loss of inf is one too: its run ends there): whatever the others
            if not all(math.isfinite(x) for x in values[i]):
                stopped[i] = Verdict("diverged", k, math.nan)
        if len(values) < len(at):  # a rung decides once every score at it is known
            for i in at:
                if i not in stopped:
                    mean = _mean(values[i]) if i in values else None
                    out.verdicts[i] = Verdict("waiting", k, mean)
            break
        live = [i for i in at if i not in stopped]
        why = indistinguishable([values[i] for i in live], chance=chance, maximize=maximize)
        if why is not None and len(live) > 1:
            out.notes.append(
                f"rung {k} (step {step}): the {len(live)} settings' validation scores cannot "
                f"tell them apart ({why}); none pruned there"
            )
        scores = {i: values[i] for i in live}
        for i, cut in _cuts(scores, trials, step, why is None, maximize, rule).items():
            if cut:
                stopped[i] = Verdict("pruned", k, _mean(values[i]))
            else:
                reached[i] = k + 1
                out.verdicts[i] = Verdict("waiting", k + 1)
    for i in range(n):
        if i in stopped:
            out.verdicts[i] = stopped[i]
        elif reached[i] == len(rungs):
            out.verdicts[i] = Verdict("full")
    return out


def _trials(n: int, rungs: Sequence[int], maximize: bool) -> list[Any]:
    """``n`` trials of an in-memory Optuna study with ASHA's pruner at ``rungs``."""
    import optuna

    level = logging.getLogger("optuna").level
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        study = optuna.create_study(
            direction="maximize" if maximize else "minimize",
            pruner=optuna.pruners.SuccessiveHalvingPruner(
                min_resource=rungs[0] if rungs else 1,
                reduction_factor=REDUCTION,
                min_early_stopping_rate=0,
                bootstrap_count=0,
            ),
        )
    finally:
        logging.getLogger("optuna").setLevel(level)
    return [study.ask() for _ in range(n)]


def _cuts(
    scores: dict[int, list[float]],
    trials: list[Any],
    step: int,
    decides: bool,
    maximize: bool,
    rule: str,
) -> dict[int, bool]:
    """Whether each live setting of a rung (in order, its ``scores``) is cut there: by the
    confidence bound (``"bounds"``, where there is spread) or by Optuna's pruner, not within
    noise of the score that would have kept it (``decides``: the rung can tell them apart)."""
    margin = _noise_margin(list(scores.values()))
    means = {i: _mean(v) for i, v in scores.items()}
    if rule == "bounds" and margin > 0:
        bound = _noise_margin(list(scores.values()), BOUNDS_LEVEL)
        best = max(means.values()) if maximize else min(means.values())
        return {
            i: decides and (best - m if maximize else m - best) > bound for i, m in means.items()
        }
    judged: list[float] = []
    cuts = {}
    for i, value in means.items():
        judged.append(value)
        trials[i].report(value, step)
        cut = decides and trials[i].should_prune()
        cuts[i] = cut and not _within(value, judged, margin, maximize)
    return cuts


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


def _noise_margin(values: Sequence[Sequence[float]], level: float = NOISE_LEVEL) -> float:
    """How far apart two settings' mean rung scores may be by noise alone: the one-sided
    ``level`` quantile of a normal difference of two means, from the settings' pooled
    variance over their folds and seeds (0 where they have a single score each)."""
    rows = [[float(v) for v in row] for row in values if len(row) >= 2]
    if not rows:
        return 0.0
    m = sum(len(r) for r in rows) / len(rows)
    pooled = sum(sum((v - _mean(r)) ** 2 for v in r) for r in rows) / sum(len(r) - 1 for r in rows)
    from scipy import special

    return float(special.ndtri(1 - level)) * math.sqrt(2 * pooled / m)


def _within(value: float, judged: Sequence[float], margin: float, maximize: bool) -> bool:
    """Whether ``value`` is within ``margin`` of the score ASHA asks of it: the value at
    Optuna's promotable index among the scores ``judged`` at the rung so far (its own among
    them; the top ``1/REDUCTION`` of them, at least the best)."""
    if margin <= 0:
        return False
    ranked = sorted(judged, reverse=maximize)
    cutoff = ranked[max(0, len(ranked) // REDUCTION - 1)]
    return (cutoff - value if maximize else value - cutoff) <= margin
