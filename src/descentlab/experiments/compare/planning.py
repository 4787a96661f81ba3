"""Which trials a comparison runs: the tuning rounds, the chosen setting, the final runs.

Each function is a pure function of the spec and of the trials finished so far (``lookup``):
a resumed comparison retraces the same rounds and finds its finished trials again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from descentlab.engine.config import RunConfig
from descentlab.engine.monitoring import MonitoredOptimizer
from descentlab.experiments import tuning
from descentlab.experiments.compare.choices import OptimizerChoice
from descentlab.experiments.compare.results import CandidateResult
from descentlab.experiments.compare.search_space import run_fields
from descentlab.experiments.compare.spec import CompareSpec, tuning_settings
from descentlab.experiments.trials import Trial

__all__ = [
    "Found",
    "Plan",
    "cliff",
    "final_setting",
    "final_trials",
    "select",
    "tuning_plan",
    "tuning_trials",
]


@dataclass(frozen=True)
class Plan:
    """What the protocol reads of a checked spec, derived from it once: the run config every
    trial starts from, the lengths, folds and seeds, and each optimizer's first tuning round.

    The planning functions take a plan or a spec (a spec is turned into a plan first); a
    comparison derives its plan once and passes it down.
    """

    spec: CompareSpec
    #: the run directory's name (:meth:`CompareSpec.run_name`)
    run_name: str
    #: the spec as the experiment record holds it (:meth:`CompareSpec.to_dict`)
    record: dict[str, Any]
    choices: tuple[OptimizerChoice, ...]
    #: each optimizer's first tuning round (:func:`tuning_settings`), by label
    first_rounds: Mapping[str, list[dict[str, Any]]]
    base: RunConfig
    steps: int
    tune_steps: int
    folds: tuple[str, ...]
    tune_seeds: tuple[int, ...]
    final_seeds: tuple[int, ...]
    curve_eval_every: int
    #: refinement rounds follow the coarse grid (grid search with ``refine``)
    refine: bool
    lrs_per_optimizer: int
    max_extend: int

    @classmethod
    def of(cls, spec: CompareSpec | Plan) -> Plan:
        """The plan of ``spec`` (a plan is returned as it is)."""
        if isinstance(spec, Plan):
            return spec
        # the spec's derived values first, then each optimizer's first round
        tune_steps, tune_seeds = spec.tune_length, tuple(spec.tuning_seeds)
        final_seeds, curve_eval_every = tuple(spec.final_seeds), spec.curve_eval_every
        choices = tuple(spec.choices())
        record = spec.to_dict()
        run_name = spec.run_name(record)
        folds = (
            ("holdout",)
            if spec.cv_folds is None
            else tuple(f"fold:{i}:{spec.cv_folds}" for i in range(spec.cv_folds))
        )
        base = RunConfig(
            problem=spec.problem,
            problem_options=dict(spec.problem_options),
            split_seed=spec.split_seed,
            val_fraction=spec.val_fraction,
            model=spec.model,
            model_options=dict(spec.model_options),
            batch_size=spec.batch_size,
            steps=spec.steps,
            device=spec.device,
        )
        return cls(
            spec=spec,
            run_name=run_name,
            record=record,
            choices=choices,
            first_rounds={c.label: tuning_settings(spec, c) for c in choices},
            base=base,
            steps=spec.steps,
            tune_steps=tune_steps,
            folds=folds,
            tune_seeds=tune_seeds,
            final_seeds=final_seeds,
            curve_eval_every=curve_eval_every,
            refine=spec.refine and spec.search == "grid",
            lrs_per_optimizer=spec.lrs_per_optimizer,
            max_extend=spec.max_extend,
        )

    def first_round(self, choice: OptimizerChoice) -> list[dict[str, Any]]:
        """The first tuning round of ``choice`` (one of the spec's, or another)."""
        if choice in self.choices:
            return self.first_rounds[choice.label]
        return tuning_settings(self.spec, choice)


def tuning_trials(
    spec: CompareSpec | Plan,
    choice: OptimizerChoice,
    settings: Sequence[Mapping[str, Any]] | None = None,
) -> list[Trial]:
    """The tuning trials of ``settings`` (default: the first round's): every setting on every
    fold with every tuning seed (tag ``(setting index, fold index, seed index)``).

    Example:
        >>> from descentlab.experiments.compare import CompareSpec
        >>> spec = CompareSpec(optimizers=["adam"], lrs_per_optimizer=3, cv_folds=2)
        >>> [(t.config.hyper["lr"], t.data) for t in tuning_trials(spec, spec.choices()[0])]
        [(0.001, 'fold:0:2'), (0.001, 'fold:1:2'), (0.01, 'fold:0:2'), (0.01, 'fold:1:2'), (0.1, 'fold:0:2'), (0.1, 'fold:1:2')]
    """  # noqa: E501
    plan = Plan.of(spec)
    if settings is None:
        settings = plan.first_round(choice)
    steps = plan.tune_steps
    out = []
    for ci, setting in enumerate(settings):
        hyper, schedule = run_fields(setting, steps=steps)
        for fi, kind in enumerate(plan.folds):
            for si, seed in enumerate(plan.tune_seeds):
                cfg = dataclasses.replace(
                    plan.base,
                    optimizer=choice.optimizer,
                    hyper={**choice.hyper, **hyper},
                    schedule=schedule,
                    steps=steps,
                    eval_every=max(1, steps // 5),
                    seed=seed,
                    evaluate_test=False,
                    name=f"tune/{choice.label}/{kind}",
                )
                out.append(Trial("tune", choice.label, cfg, kind, (ci, fi, si)))
    return out


@dataclass(frozen=True)
class Found:
    """A finished trial as the protocol sees it: its run, status, summary and failure."""

    run_id: int | None
    status: str
    summary: dict[str, Any]
    failure: str | None


Lookup = Callable[[Trial], "Found | None"]


def _candidates(
    plan: Plan,
    choice: OptimizerChoice,
    settings: Sequence[Mapping[str, Any]],
    lookup: Lookup,
    metric: str,
) -> tuple[list[CandidateResult], list[Trial]]:
    """The settings with their scores (one per fold and tuning seed), and the trials of theirs
    that have not finished."""
    n = len(plan.folds) * len(plan.tune_seeds)
    cands = [
        CandidateResult(dict(s), [math.nan] * n, [None] * n, [None] * n, [None] * n)
        for s in settings
    ]
    missing = []
    for t in tuning_trials(plan, choice, settings):
        ci, fi, si = t.tag
        j = fi * len(plan.tune_seeds) + si
        found = lookup(t)
        if found is None:
            missing.append(t)
            continue
        value = found.summary.get(metric) if found.status == "completed" else None
        cands[ci].scores[j] = math.nan if value is None else float(value)
        cands[ci].statuses[j] = found.status
        cands[ci].run_ids[j] = found.run_id
        cands[ci].failures[j] = found.failure
    return cands, missing


def tuning_plan(
    spec: CompareSpec | Plan, choice: OptimizerChoice, lookup: Lookup, metric: str, maximize: bool
) -> tuple[list[CandidateResult], list[Trial], bool]:
    """Where one optimizer's tuning stands: ``(candidates so far, trials to run, done)``.

    The search runs in rounds: the coarse grid, then -- each round decided by the scores of
    all before it (:func:`~descentlab.experiments.tuning.refine_lrs`) -- extension points past
    a winning edge and finer points around the best, for the best combination of the other
    tuned hyperparameters. ``lookup`` answers for finished trials; the first round with a
    missing trial stops the walk and returns those trials. Since every round depends only on
    finished trials, a resumed comparison retraces the same rounds.
    """
    plan = Plan.of(spec)
    settings = plan.first_round(choice)
    if not settings:
        return [], [], True
    step = tuning.grid_step(*choice.lr_range, plan.lrs_per_optimizer)
    while True:
        cands, missing = _candidates(plan, choice, settings, lookup, metric)
        if missing or not plan.refine:
            return cands, missing, not missing
        best = tuning.select_best([c.score for c in cands], maximize=maximize)
        others = {k: v for k, v in settings[0 if best is None else best].items() if k != "lr"}
        same = [c for c in cands if {k: v for k, v in c.setting.items() if k != "lr"} == others]
        new = tuning.refine_lrs(
            [c.setting["lr"] for c in same],
            [c.score for c in same],
            maximize=maximize,
            lr_range=choice.lr_range,
            step=step,
            max_extend=plan.max_extend,
        )
        if not new:
            return cands, [], True
        settings = [*settings, *({"lr": lr, **others} for lr in new)]


def select(cands: list[CandidateResult], maximize: bool) -> int | None:
    return tuning.select_best([c.score for c in cands], maximize=maximize)


def cliff(cands: list[CandidateResult], best: int | None) -> list[float]:
    """Learning rates next to the chosen one (same other hyperparameters) that failed."""
    if best is None:
        return []
    others = {k: v for k, v in cands[best].setting.items() if k != "lr"}
    same = sorted(
        (c for c in cands if {k: v for k, v in c.setting.items() if k != "lr"} == others),
        key=lambda c: c.setting["lr"],
    )
    i = next(j for j, c in enumerate(same) if c is cands[best])
    return [
        float(same[j].setting["lr"])
        for j in (i - 1, i + 1)
        if 0 <= j < len(same) and same[j].failed
    ]


def final_setting(
    choice: OptimizerChoice, cands: list[CandidateResult], best: int | None
) -> dict[str, Any] | None:
    """The setting the final runs use: the chosen candidate's, or for a ``fixed_lr``
    optimizer its default learning rate (None: nothing to run -- every setting failed)."""
    if choice.fixed_lr:
        return {"lr": choice.default_lr()}
    return None if best is None else dict(cands[best].setting)


def final_trials(
    spec: CompareSpec | Plan, choice: OptimizerChoice, setting: Mapping[str, Any]
) -> list[Trial]:
    """Curve runs (train/validation) and refit runs (train + validation, test once) of the
    chosen setting, one of each per seed (tag ``(seed,)``).

    The first seed's curve run is monitored (its optimizer records the update-to-parameter
    ratio); the curve runs of all seeds, like the refit runs, can share one vectorized pass
    (the group records the monitored run's statistics for it). A curve run that trains alone
    (``vectorize=False``, or a model that cannot be vectorized) also gives the wall-clock time
    to the target.

    Example:
        >>> from descentlab.experiments.compare import CompareSpec
        >>> spec = CompareSpec(optimizers=["adam"], seeds=2)
        >>> [(t.phase, t.data, t.config.seed, t.config.evaluate_test)
        ...  for t in final_trials(spec, spec.choices()[0], {"lr": 0.01})]
        [('curve', 'holdout', 0, False), ('curve', 'holdout', 1, False), ('refit', 'refit', 0, True), ('refit', 'refit', 1, True)]
    """  # noqa: E501
    plan = Plan.of(spec)
    hyper, schedule = run_fields(setting, steps=plan.steps)
    base = dataclasses.replace(plan.base, hyper={**choice.hyper, **hyper}, schedule=schedule)
    every = plan.curve_eval_every
    out = []
    for s in plan.final_seeds:
        monitored = s == plan.final_seeds[0]
        cfg = dataclasses.replace(
            base,
            optimizer=MonitoredOptimizer(choice.optimizer, every)
            if monitored
            else choice.optimizer,
            eval_every=every,
            seed=s,
            evaluate_test=False,
            name=f"curve/{choice.label}",
        )
        out.append(Trial("curve", choice.label, cfg, "holdout", (s,)))
    for s in plan.final_seeds:
        cfg = dataclasses.replace(
            base,
            optimizer=choice.optimizer,
            eval_every=plan.steps,  # only the final model matters: evaluate at the end
            seed=s,
            evaluate_test=True,
            name=f"refit/{choice.label}",
        )
        out.append(Trial("refit", choice.label, cfg, "refit", (s,)))
    return out
