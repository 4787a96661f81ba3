r"""Pruning tuning trials: asynchronous successive halving (ASHA) by Optuna's pruner, in a fixed
order, so that the same comparison prunes the same trials however it is run.

``CompareSpec(prune="asha")`` (``descentlab compare --prune``) stops the tuning settings that
are clearly behind early, with the rule of Optuna's
:class:`optuna.pruners.SuccessiveHalvingPruner` (ASHA, Li et al. 2020; reduction factor
:data:`REDUCTION` = 4, Optuna's default): a setting is judged at **rungs** of
:func:`rung_steps` (``T/16`` and ``T/4`` of a tuning trial's ``T`` steps) on its validation
score there, and goes on only when that score is in the top quarter of the scores at that rung
so far (the first settings: when it is the best so far).

How a setting reaches a rung. A rung run is an ordinary tuning run of ``r`` steps with the
setting's full-length lr schedule (the schedule is written out with its lengths,
:func:`~descentlab.experiments.compare.search_space.run_fields`): its ``r`` steps are those of
the full trial, and its last evaluation is the setting's score at step ``r``. A setting that
passes every rung then runs its full tuning trials -- the very runs of an unpruned comparison
-- and is scored on them as always. Each rung run *restarts* from step 0 (successive halving's
restart variant, no checkpoint kept between rungs): a rung costs its ``r`` steps again (with
these rungs, 1/16 of a full trial more than resuming would), and every trial stays a plain
run of the store, vectorized and found again after an interruption like any other.

The protocol stays honest:

- **equal budgets**: every setting of every optimizer is tried (none is dropped before its
  first rung); a pruned setting counts among the trials and is shown as *pruned*, never as
  failed. A rung run that diverges is a failure (the full trial, whose first steps it is, would
  have diverged too).
- **validation only**: rung runs, like every tuning run, train on the training split and are
  scored on the validation split; their data hold no test example at all
  (:func:`~descentlab.experiments.tuning.holdout_splits`).
- **the final runs are full**: the chosen setting's curve and refit runs are the protocol's,
  never shortened.

Determinism. ASHA proper decides as trials report, so its decisions depend on which trial
reached a rung first. Here the decisions are made in the main process, in a **fixed order**:
settings in the order they are listed (the grid's, or the draws'), rung by rung; the setting
``i`` at rung ``k`` is judged (``Trial.report`` then ``Trial.should_prune`` on an in-memory
Optuna study rebuilt from the stored rung scores) against the settings ``0 .. i-1`` that
reached rung ``k`` -- exactly what Optuna's pruner decides when the trials run one after
another in that order. A decision waits until every earlier setting's score at that rung is
known; since the scores come from plain, seeded runs, the same comparison prunes the same
settings in this process, in worker processes and on Ray (vectorized and one-at-a-time runs
agree up to floating-point rounding, as all their numbers do).

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
    "PRUNERS",
    "PRUNER_NAME",
    "REDUCTION",
    "RULE",
    "RUNGS",
    "Decisions",
    "Verdict",
    "check_prune",
    "decide",
    "describe",
    "rung_of",
    "rung_steps",
]

#: The pruners a comparison takes (``CompareSpec.prune``; ``descentlab compare --prune``).
PRUNERS: tuple[str, ...] = ("asha",)
#: What decides (the store's note on a pruned run).
PRUNER_NAME = "optuna.pruners.SuccessiveHalvingPruner"
#: ASHA's reduction factor (eta; Optuna's default): about one setting in 4 goes on at each
#: rung.
REDUCTION = 4
#: Rungs below the full length: ``T / 16`` and ``T / 4``.
RUNGS = 2

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


def rung_steps(tune_steps: int) -> tuple[int, ...]:
    """The steps at which a tuning setting is judged: ``r, 4r`` with ``r = T // 16`` (none for
    a trial shorter than 16 steps: nothing to prune).

    Example:
        >>> rung_steps(250), rung_steps(15)
        ((15, 60), ())
    """
    r0 = tune_steps // REDUCTION**RUNGS
    if r0 < 1:
        return ()
    return tuple(r0 * REDUCTION**k for k in range(RUNGS))


def rung_of(trial: Any) -> int | None:
    """The rung a tuning trial's run stops at (its tag's fourth entry), or None for a full
    run (:func:`~descentlab.experiments.compare.planning.tuning_trials`)."""
    tag = trial.tag
    return int(tag[3]) if trial.phase == "tune" and len(tag) == 4 else None


#: The pruning rule as the budget line says it.
RULE = (
    f"pruned by ASHA (Optuna's SuccessiveHalvingPruner, reduction factor {REDUCTION}, in the "
    f"settings' order) at 1/{REDUCTION**RUNGS} and 1/{REDUCTION ** (RUNGS - 1)} of each trial, "
    "on validation scores; pruned settings count as tried"
)


def describe(tune_steps: int) -> str:
    """Where the tuning trials of ``tune_steps`` steps are judged, as text."""
    rungs = rung_steps(tune_steps)
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
    """:func:`decide`'s answer: a verdict per setting, and the ``(setting, rung)`` scores that
    are needed next (their rung runs can train now)."""

    verdicts: list[Verdict]
    needs: list[tuple[int, int]] = field(default_factory=list)


def decide(
    n: int,
    rungs: Sequence[int],
    score: Callable[[int, int], float | None],
    *,
    maximize: bool,
) -> Decisions:
    """ASHA's decisions for ``n`` settings judged at ``rungs`` (steps), in the settings' order.

    Args:
        n: the settings (their order is the order of the decisions).
        rungs: the rung steps, increasing (:func:`rung_steps`).
        score: ``score(i, k)``: setting ``i``'s validation score at rung ``k`` (None: not
            known yet; NaN: a run diverged).
        maximize: higher scores are better.

    Returns:
        The :class:`Decisions`: each setting's verdict, and the scores still needed. Setting
        ``i`` is judged at rung ``k`` only once every setting before it has been judged there
        (or stopped earlier), so the verdicts do not depend on the order the scores arrived in.
    """
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
    trials = [study.ask() for _ in range(n)]  # trial number i is setting i
    reached = [0] * n  # the rungs each setting has passed
    stopped: dict[int, Verdict] = {}
    out = Decisions([Verdict("waiting", 0)] * n)
    for k, step in enumerate(rungs):
        in_order = True  # every earlier setting has been judged at this rung
        for i in range(n):
            if i in stopped:
                continue
            if reached[i] < k:
                break  # not judged at rung k - 1 yet: neither are the settings after it
            value = score(i, k)
            if value is None:
                out.needs.append((i, k))
                in_order = False
                out.verdicts[i] = Verdict("waiting", k)
                continue
            if not in_order:
                out.verdicts[i] = Verdict("waiting", k, value)
                continue
            if math.isnan(value):
                stopped[i] = Verdict("diverged", k, value)
                continue
            trials[i].report(value, step)
            if trials[i].should_prune():
                stopped[i] = Verdict("pruned", k, value)
            else:
                reached[i] = k + 1
                out.verdicts[i] = Verdict("waiting", k + 1)
    for i in range(n):
        if i in stopped:
            out.verdicts[i] = stopped[i]
        elif reached[i] == len(rungs):
            out.verdicts[i] = Verdict("full")
    return out
