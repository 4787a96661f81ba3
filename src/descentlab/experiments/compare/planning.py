"""Which trials a comparison runs: the tuning rounds, the chosen setting, the final runs.

Each function is a pure function of the spec and of the trials finished so far (``lookup``):
a resumed comparison retraces the same rounds and finds its finished trials again.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from descentlab.engine.config import RunConfig
from descentlab.engine.monitoring import MonitoredOptimizer
from descentlab.experiments import tuning
from descentlab.experiments.compare import pruning
from descentlab.experiments.compare.choices import OptimizerChoice
from descentlab.experiments.compare.results import CandidateResult
from descentlab.experiments.compare.search_space import run_fields
from descentlab.experiments.compare.spec import CompareSpec, Plan, tuning_settings
from descentlab.experiments.runner import run_cost
from descentlab.experiments.trial import Trial

__all__ = [
    "Found",
    "Plan",
    "cliff",
    "final_setting",
    "final_trials",
    "first_round",
    "planned_trials",
    "select",
    "tuning_plan",
    "tuning_trials",
]


def first_round(plan: Plan, choice: OptimizerChoice) -> list[dict[str, Any]]:
    """The first tuning round of ``choice`` (one of the plan's, or another)."""
    if choice in plan.choices:
        return plan.first_rounds[choice.label]
    return tuning_settings(plan.spec, choice)


def planned_trials(plan: Plan) -> int:
    """The trials ``plan`` runs for certain: every optimizer's first tuning round and its
    final runs (refinement rounds, decided by the scores, come on top)."""
    finals = len(plan.final_seeds) + plan.looks[0]  # curve runs and the first look's refits
    per_setting = len(plan.folds) * len(plan.tune_seeds)  # as _tuning_trials makes them
    settings = sum(len(plan.first_rounds[label]) for label in plan.first_rounds)
    return settings * per_setting + finals * len(plan.choices)


def _made(
    phase: str, label: str, made: list[tuple[RunConfig, str, tuple[Any, ...]]]
) -> list[Trial]:
    """The trials of ``made`` (``(config, data kind, tag)``), with what the runner and the
    session read of them derived once, here (:class:`Trial`'s ``record``, ``key``, ``cost``
    and ``group``)."""
    from descentlab.engine import multirun  # (the engine's loop: imported when trials are made)

    checked = []  # (each config checked once, here: the trial trains the checked copy)
    for cfg, _, _ in made:
        checked.append(cfg.checked_record())
    groups = []
    for cfg, _ in checked:
        groups.append(multirun.group_of(cfg, checked=True))
    out = []
    for (_, kind, tag), (cfg, record), group in zip(made, checked, groups, strict=True):
        key = json.dumps(record, sort_keys=True, separators=(",", ":"))
        cost = run_cost(cfg.steps, cfg.epochs, cfg.eval_every)
        out.append(Trial(phase, label, cfg, kind, tag, record, key, cost, group))
    return out


def tuning_trials(
    spec: CompareSpec | Plan,
    choice: OptimizerChoice,
    settings: Sequence[Mapping[str, Any]] | None = None,
    *,
    rung: int | None = None,
) -> list[Trial]:
    """The tuning trials of ``settings`` (default: the first round's): every setting on every
    fold with every tuning seed (tag ``(setting index, fold index, seed index)``).

    ``rung``: the runs of pruning's rung ``rung`` instead
    (:mod:`~descentlab.experiments.compare.pruning`): the same trials stopped at the rung's
    step (``plan.rungs[rung]``; the lr schedule kept at the full length, so that their steps
    are the full trial's first ones), evaluated at the start and at the end only, tagged
    ``(setting index, fold index, seed index, rung)``.

    Example:
        >>> from descentlab.experiments.compare import CompareSpec
        >>> spec = CompareSpec(optimizers=["adam"], lrs_per_optimizer=3, cv_folds=2)
        >>> [(t.config.hyper["lr"], t.data) for t in tuning_trials(spec, spec.choices()[0])]
        [(0.001, 'fold:0:2'), (0.001, 'fold:1:2'), (0.01, 'fold:0:2'), (0.01, 'fold:1:2'), (0.1, 'fold:0:2'), (0.1, 'fold:1:2')]
    """  # noqa: E501
    plan = Plan.of(spec)
    if settings is None:
        settings = first_round(plan, choice)
    key = (id(plan), id(choice), json.dumps(settings, sort_keys=True, default=repr), rung)
    kept = _TRIALS.get(key)
    if kept is not None and kept[0] is plan and kept[1] is choice:
        _TRIALS.move_to_end(key)
        return list(kept[2])
    trials = _tuning_trials(plan, choice, settings, rung)
    _TRIALS[key] = (plan, choice, tuple(trials))  # holds plan and choice: their ids stay theirs
    if len(_TRIALS) > _KEEP_TRIALS:
        _TRIALS.popitem(last=False)
    return trials


#: :func:`tuning_trials`' last answers: a comparison asks for the same trials after each
#: outcome (with pruning, each rung's too), and making them (configs, records, keys, groups)
#: is not free (docs/pruning.md).
_TRIALS: OrderedDict[tuple[Any, ...], tuple[Plan, OptimizerChoice, tuple[Trial, ...]]] = (
    OrderedDict()
)
_KEEP_TRIALS = 256


def _tuning_trials(
    plan: Plan,
    choice: OptimizerChoice,
    settings: Sequence[Mapping[str, Any]],
    rung: int | None,
) -> list[Trial]:
    """:func:`tuning_trials`, made."""
    steps = plan.tune_steps if rung is None else plan.rungs[rung]
    every = max(1, steps // 5) if rung is None else steps
    suffix = "" if rung is None else f"/rung{rung}"
    made = []
    for ci, (hyper, schedule) in enumerate(_run_fields(plan, choice, settings)):
        for fi, kind in enumerate(plan.folds):
            for si, seed in enumerate(plan.tune_seeds):
                cfg = dataclasses.replace(
                    plan.base,
                    optimizer=choice.optimizer,
                    hyper={**choice.hyper, **hyper},
                    schedule=schedule,
                    steps=steps,
                    eval_every=every,
                    seed=seed,
                    evaluate_test=False,
                    evaluate_train=rung is None,  # a rung is scored on validation only
                    name=f"tune/{choice.label}/{kind}{suffix}",
                )
                made.append((cfg, kind, (ci, fi, si) if rung is None else (ci, fi, si, rung)))
    return _made("tune", choice.label, made)


def _run_fields(
    plan: Plan, choice: OptimizerChoice, settings: Sequence[Mapping[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """:func:`~descentlab.experiments.compare.search_space.run_fields` of each tuning setting
    (those of the plan's first round as the plan holds them)."""
    first: list[tuple[dict[str, Any], dict[str, Any]]] = []
    if (
        choice in plan.choices
        and list(settings[: len(plan.first_rounds[choice.label])])
        == (plan.first_rounds[choice.label])
    ):
        first = list(plan.first_fields[choice.label])
    return [*first, *(run_fields(s, steps=plan.tune_steps) for s in settings[len(first) :])]


@dataclass(frozen=True)
class Found:
    """A finished trial as the protocol sees it: its run, status, summary and failure."""

    run_id: int | None
    status: str
    summary: dict[str, Any]
    failure: str | None


#: The finished trials: a function of a trial, or a mapping of their keys (:attr:`Trial.key`).
Lookup = Callable[[Trial], "Found | None"] | Mapping[str, "Found"]


@dataclass(frozen=True)
class _Scores:
    """How a tuning round reads its finished trials: where to find them (``lookup``), the
    metric and its direction, and for pruning the score of a model that learned nothing
    (``chance``) and the notes of rungs that decided nothing (``notes``)."""

    lookup: Lookup
    metric: str
    maximize: bool
    chance: float | None = None
    notes: list[str] | None = None

    def find(self, t: Trial) -> Found | None:
        lookup = self.lookup
        return lookup.get(t.key) if isinstance(lookup, Mapping) else lookup(t)  # type: ignore[arg-type]

    def value(self, found: Found) -> float | None:
        """A finished trial's metric (None where it did not complete or has none)."""
        return found.summary.get(self.metric) if found.status == "completed" else None


def _candidates(
    plan: Plan, choice: OptimizerChoice, settings: Sequence[Mapping[str, Any]], scores: _Scores
) -> tuple[list[CandidateResult], list[Trial]]:
    """The settings with their scores (one per fold and tuning seed), and the trials of theirs
    that have not finished. With pruning, only the settings that passed every rung have
    full trials (:func:`_pruned`)."""
    n = len(plan.folds) * len(plan.tune_seeds)
    cands = [
        CandidateResult(dict(s), [math.nan] * n, [None] * n, [None] * n, [None] * n)
        for s in settings
    ]
    missing: list[Trial] = []
    full = range(len(settings))
    if plan.rungs:
        full, missing = _pruned(plan, choice, settings, scores, cands)
    for t in tuning_trials(plan, choice, settings):
        ci, fi, si = t.tag
        if ci not in full:
            continue
        j = fi * len(plan.tune_seeds) + si
        found = scores.find(t)
        if found is None:
            missing.append(t)
            continue
        value = scores.value(found)
        cands[ci].scores[j] = math.nan if value is None else float(value)
        cands[ci].statuses[j] = found.status
        cands[ci].run_ids[j] = found.run_id
        cands[ci].failures[j] = found.failure
    return cands, missing


def _pruned(
    plan: Plan,
    choice: OptimizerChoice,
    settings: Sequence[Mapping[str, Any]],
    scores: _Scores,
    cands: list[CandidateResult],
) -> tuple[set[int], list[Trial]]:
    """ASHA's decisions (:func:`~descentlab.experiments.compare.pruning.decide`) from the
    finished rung runs: the settings that passed every rung (their full trials run), and the
    rung runs to train next. A pruned setting's candidate says so (status ``"pruned"``, the
    rung's step, its score there, the runs it stopped with); one whose rung run diverged
    failed (``"diverged"``; its other runs at that rung are ``"pruned"``). A setting's score
    at a rung is its runs' scores there (folds and tuning seeds), whose spread is its noise;
    ``chance``: the score of a model that learned nothing; the rungs that decided nothing
    say so in ``notes``."""
    runs: dict[tuple[int, int], list[Trial]] = {}
    for k in range(len(plan.rungs)):
        for t in tuning_trials(plan, choice, settings, rung=k):
            runs.setdefault((t.tag[0], k), []).append(t)
    found = {key: [scores.find(t) for t in ts] for key, ts in runs.items()}

    def score(i: int, k: int) -> list[float] | None:
        got = found[(i, k)]
        if any(f is None for f in got):
            return None
        values = [scores.value(f) for f in got]  # type: ignore[arg-type]
        return [math.nan if v is None else float(v) for v in values]

    decisions = pruning.decide(len(settings), plan.rungs, score, maximize=scores.maximize,
                               chance=scores.chance, rule=plan.spec.prune)  # fmt: skip
    if scores.notes is not None:
        scores.notes.extend(decisions.notes)
    missing = []
    for i, k in decisions.needs:
        missing += [t for t, f in zip(runs[(i, k)], found[(i, k)], strict=True) if f is None]
    full = set()
    for i, v in enumerate(decisions.verdicts):
        if v.state == "full":
            full.add(i)
        elif v.state in ("pruned", "diverged"):
            c, got = cands[i], found[(i, v.rung)]  # type: ignore[index]
            c.pruned_step, c.pruned_score = plan.rungs[v.rung], v.value  # type: ignore[index]
            for j, f in enumerate(got):
                assert f is not None
                c.run_ids[j] = f.run_id
                value = scores.value(f)
                bad = value is None or not math.isfinite(value)
                c.statuses[j] = "diverged" if bad else "pruned"
                c.failures[j] = "diverged" if bad else None
    return full, missing


def tuning_plan(
    spec: CompareSpec | Plan,
    choice: OptimizerChoice,
    lookup: Lookup,
    metric: str,
    maximize: bool,
    *,
    chance: float | None = None,
    notes: list[str] | None = None,
) -> tuple[list[CandidateResult], list[Trial], bool]:
    """Where one optimizer's tuning stands: ``(candidates so far, trials to run, done)``.

    The search runs in rounds: the coarse grid, then -- each round decided by the scores of
    all before it (:func:`~descentlab.experiments.tuning.refine_lrs`) -- extension points past
    a winning edge and finer points around the best, for the best combination of the other
    tuned hyperparameters. ``lookup`` answers for finished trials; the first round with a
    missing trial stops the walk and returns those trials. Since every round depends only on
    finished trials, a resumed comparison retraces the same rounds.

    With pruning, ``chance`` (the score of a model that learned nothing) marks rung scores
    that decide nothing, and the rungs that decided nothing say so in ``notes``
    (:func:`~descentlab.experiments.compare.pruning.decide`).
    """
    plan = Plan.of(spec)
    settings = first_round(plan, choice)
    if not settings:
        return [], [], True
    step = plan.grid_steps[choice.label]
    scores = _Scores(lookup, metric, maximize, chance, notes)
    while True:
        cands, missing = _candidates(plan, choice, settings, scores)
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
    spec: CompareSpec | Plan,
    choice: OptimizerChoice,
    setting: Mapping[str, Any],
    *,
    test_seeds: int | None = None,
) -> list[Trial]:
    """Curve runs (train/validation) of the chosen setting, one per seed, and refit runs
    (train + validation, test once), one per test seed (tag ``(seed,)``): the first look's
    (the spec's ``seeds``), or the first ``test_seeds`` of them (the sequential verdict's later
    looks, :mod:`~descentlab.experiments.compare.sequential`). The test seeds are disjoint from
    the curve runs' seeds, on whose validation scores the recommended optimizer is chosen.

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
        [('curve', 'holdout', 0, False), ('curve', 'holdout', 1, False), ('refit', 'refit', 10000, True), ('refit', 'refit', 10001, True)]
    """  # noqa: E501
    plan = Plan.of(spec)
    hyper, schedule = run_fields(setting, steps=plan.steps)
    base = dataclasses.replace(plan.base, hyper={**choice.hyper, **hyper}, schedule=schedule)
    every = plan.curve_eval_every
    curves, refits = [], []
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
        curves.append((cfg, "holdout", (s,)))
    n = plan.looks[0] if test_seeds is None else test_seeds
    for s in plan.test_seeds[:n]:
        cfg = dataclasses.replace(
            base,
            optimizer=choice.optimizer,
            eval_every=plan.steps,  # only the final model matters: evaluate at the end
            seed=s,
            evaluate_test=True,
            name=f"refit/{choice.label}",
        )
        refits.append((cfg, "refit", (s,)))
    return [*_made("curve", choice.label, curves), *_made("refit", choice.label, refits)]
