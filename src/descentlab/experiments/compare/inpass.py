"""Pruning inside the vectorized passes: an optimizer's first tuning round trained in its
stacked passes, judged at each rung, the pruned runs leaving their passes there
(:func:`~descentlab.engine.vectorized.train_in_rungs`) -- no rung run, no restart.

The decisions are :func:`~descentlab.experiments.compare.pruning.decide`'s on the same scores
as the restarted rung runs would give (a run's validation metrics at the rung's step are those
of the rung run of the same setting, fold and seed: the same first steps), and the store ends
up holding what the restarted protocol writes: each setting's rung runs (``tune/.../rung0``
...: their validation scores at the rung's step, evaluated at its start and end) and, for the
settings that passed every rung, their full tuning runs -- here the very runs that went on
from the rungs. The protocol then reads them as it reads restarted rung runs
(:func:`~descentlab.experiments.compare.planning.tuning_plan`); a resumed comparison finds them
in the store. A pruned setting's full-length runs are not recorded (they stopped at a rung:
their rung runs hold what they measured).

Used where every first-round trial of the optimizer can share a vectorized pass and the
trials run on this machine (``backend="local"``, vectorized); elsewhere each rung's runs
restart from step 0, and the comparison says so once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from descentlab.experiments.compare import pruning
from descentlab.experiments.compare.choices import OptimizerChoice
from descentlab.experiments.compare.planning import first_round, tuning_trials
from descentlab.experiments.compare.spec import Plan
from descentlab.experiments.runner import group_trials
from descentlab.experiments.trial import DataSource, Trial, TrialOutcome, finished_run

__all__ = ["RESTARTED", "applies", "tune_in_pass"]

#: Said once where the rung runs restart (pruned runs cannot leave a pass there).
RESTARTED = (
    "descentlab: pruning {name}: its tuning trials do not share vectorized passes here ({why}), "
    "so each rung's runs restart from step 0 (pruned runs leave a running pass only when they "
    "are vectorized, on this machine)"
)


def applies(plan: Plan, choice: OptimizerChoice, store: Any) -> tuple[list[Trial], str | None]:
    """The first round's full-length tuning trials of ``choice`` and why they cannot be pruned
    inside their passes (None: they can). Rung runs already in the store (a comparison
    continued after an interruption) are used as they are."""
    full = tuning_trials(plan, choice, first_round(plan, choice))
    if not full or not plan.rungs:
        return full, "nothing to prune"
    if any(t.group is None for t in full):
        return full, "its model trains one run at a time"
    if finished_run(store, tuning_trials(plan, choice, rung=0)[0]) is not None:
        return full, "its rung runs are stored already"
    return full, None


def tune_in_pass(
    plan: Plan,
    choice: OptimizerChoice,
    full: Sequence[Trial],
    source: DataSource,
    store: Any,
    metric: str,
    maximize: bool,
    chance: float | None,
) -> list[TrialOutcome]:
    """Train ``choice``'s first tuning round (``full``, from :func:`applies`) in its passes,
    pruning at the rungs; record its rung runs and its surviving full runs in ``store``.
    Returns their outcomes, as the trial runner would have returned them."""
    from descentlab.engine.vectorized import train_in_rungs

    settings = first_round(plan, choice)
    rung_trials = [
        {t.tag[:3]: t for t in tuning_trials(plan, choice, settings, rung=k)}
        for k in range(len(plan.rungs))
    ]
    passes = group_trials(list(full))
    per_setting = len(plan.folds) * len(plan.tune_seeds)
    alive = {t.tag[:3] for t in full}  # runs not stopped by a rung
    #: (setting, rung) -> its runs' scores there, by fold and seed (NaN: diverged)
    scores: dict[tuple[int, int], list[float]] = {}
    #: (tag, rung) -> the run's validation metrics there (None: it diverged before)
    measured: dict[tuple[Any, int], dict[str, float] | None] = {}

    def decide(k: int, step: int, metrics: list[list[dict[str, float]]]) -> list[list[bool]]:
        for group, at in zip(passes, metrics, strict=True):
            for t, m in zip(group, at, strict=True):
                ci, fi, si = t.tag[:3]
                if t.tag[:3] not in alive:
                    continue
                value = m.get(metric)
                measured[(t.tag[:3], k)] = m or None
                row = scores.setdefault((ci, k), [math.nan] * per_setting)
                row[fi * len(plan.tune_seeds) + si] = math.nan if value is None else float(value)

        def score(i: int, rung: int) -> list[float] | None:
            return scores.get((i, rung))

        verdicts = pruning.decide(
            len(settings),
            plan.rungs[: k + 1],
            score,
            maximize=maximize,
            chance=chance,
            rule=plan.spec.prune,
        ).verdicts
        going = {i for i, v in enumerate(verdicts) if v.state in ("full", "waiting")}
        for tag in list(alive):
            if tag[0] not in going:
                alive.discard(tag)
        return [[t.tag[0] in going for t in group] for group in passes]

    outcomes: list[TrialOutcome] = []
    kept: list[tuple[Trial, Any, Any]] = []

    def ended(p: int, i: int, result: Any, built: Any) -> None:
        kept.append((passes[p][i], result, built))

    train_in_rungs(
        [([t.config for t in group], source.get(group[0].data)) for group in passes],
        plan.rungs,
        decide,
        ended=ended,
    )
    for t, result, built in kept:
        tag = t.tag[:3]
        for k, step in enumerate(plan.rungs):
            if (tag, k) not in measured:
                break
            rt = rung_trials[k][tag]
            outcomes.append(_rung_record(store, rt, built, result, step, measured[(tag, k)]))
        if tag in alive:
            outcomes.append(_full_record(store, t, built, result))
    return outcomes


def _record(
    store: Any, trial: Trial, built: Any, rows: list[Any], status: str, message: str | None,
    summary: dict[str, Any],
) -> int:  # fmt: skip
    from descentlab.engine import outcome
    from descentlab.engine.config import display_name

    cfg = trial.config
    b = dataclasses.replace(
        built, run_name=display_name(cfg.name, cfg.problem, built.model_name, cfg.optimizer)
    )
    run_id = outcome.create_record(store, cfg, b, record=trial.record_config(), pruned_in_pass=True)
    store.log_metrics(run_id, rows)
    store.set_status(run_id, status, message=message, summary=summary)
    return run_id


def _rung_record(
    store: Any,
    trial: Trial,
    built: Any,
    result: Any,
    step: int,
    metrics: dict[str, float] | None,
) -> TrialOutcome:
    """A rung run of ``trial`` as the restarted protocol records it: the validation metrics at
    step 0 and at the rung (``metrics``; None: the run diverged before, at its ``steps``)."""
    first = [
        (0, *key.split("/", 1), float(values[0]))
        for key, (steps, values) in result.metrics.items()
        if key.startswith("val/") and len(steps) and steps[0] == 0
    ]
    if metrics is None:
        summary = {"steps": result.steps, "epochs": result.epochs, "wall_time": 0.0}
        rows = [*first, *_diverged_rows(result)]
        run_id = _record(store, trial, built, rows, "diverged", result.message, summary)
        return TrialOutcome(trial, run_id, "diverged", summary)
    n = int(built.x_train.shape[0])
    bs = trial.config.batch_size
    summary = {**metrics, "steps": step, "epochs": step * (bs or n) / n, "wall_time": 0.0}
    rows = [*first, *((step, *key.split("/", 1), v) for key, v in metrics.items())]
    run_id = _record(store, trial, built, rows, "completed", None, summary)
    return TrialOutcome(trial, run_id, "completed", summary)


def _diverged_rows(result: Any) -> list[Any]:
    steps, values = result.metrics.get("train/objective", ([], []))
    return [(int(steps[-1]), "train", "objective", float(values[-1]))] if len(steps) else []


def _full_record(store: Any, trial: Trial, built: Any, result: Any) -> TrialOutcome:
    """The full tuning run of ``trial``: every record the run made (it never stopped)."""
    rows = [
        (int(s), *key.split("/", 1), float(v))
        for key, (steps, values) in result.metrics.items()
        for s, v in zip(steps, values, strict=True)
    ]
    summary = dict(result.summary)
    run_id = _record(store, trial, built, rows, result.status, result.message, summary)
    return TrialOutcome(trial, run_id, result.status, summary)
