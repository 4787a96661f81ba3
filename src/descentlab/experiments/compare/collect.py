"""A comparison rebuilt from its store: every finished trial found again by its config.

The same function, :func:`collect`, serves a finished :func:`~descentlab.experiments.compare.
compare`, a resumed one and ``descentlab report`` (through :func:`load_comparison`): the
results depend on the stored trials only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from descentlab.experiments import tuning
from descentlab.experiments.compare import stats
from descentlab.experiments.compare.landscapes import landscape_races
from descentlab.experiments.compare.planning import (
    Found,
    Plan,
    cliff,
    final_setting,
    final_trials,
    select,
    tuning_plan,
)
from descentlab.experiments.compare.results import (
    Comparison,
    OptimizerResult,
    SeedCurves,
    score_metric,
)
from descentlab.experiments.compare.spec import CompareSpec
from descentlab.experiments.compare.speedup import execution_mode
from descentlab.experiments.example_outcomes import OUTCOMES_KEY, read_outcomes
from descentlab.experiments.kinds import kind_of
from descentlab.experiments.outputs import scan_run_folder
from descentlab.experiments.trial import RESULTS, Trial, finished_run
from descentlab.store import Store, store_path_of

__all__ = ["EXPERIMENT", "Judge", "collect", "load_comparison", "with_context"]

#: The name of a comparison's experiment record in its store.
EXPERIMENT = "compare"

#: What a completed run's stored rows give the verdict (the training loss it started from, its
#: per-example test outcomes) never changes once written, and every look reads every finished
#: run again (a refit run's outcomes are 2,000 rows): read once per process, keyed by the store,
#: the run and the time its record was created (a store made again at the same path has new
#: records). At most this many are kept.
_READS_KEPT = 8192
_reads: dict[tuple[Any, ...], Any] = {}


def _read_once(kind: str, store: Any, run_id: int, created: str, read: Any) -> Any:
    """``read()``, or what it gave before for the same ``kind``, store, run and creation."""
    key = (kind, str(getattr(store, "path", "")), int(run_id), created)
    if key not in _reads:
        if len(_reads) >= _READS_KEPT:
            _reads.clear()
        _reads[key] = read()
    return _reads[key]


def _outcomes(store: Any, rec: Any) -> dict[str, np.ndarray] | str:
    """:func:`read_outcomes` of a completed refit run, its stored outcomes read once (where
    there are none, the record says why: nothing is kept)."""
    state = (rec.provenance or {}).get(OUTCOMES_KEY)
    if not isinstance(state, int):
        return read_outcomes(store, rec)
    return _read_once("outcomes", store, rec.id, rec.created_at, lambda: _frozen(store, rec))


def _frozen(store: Any, rec: Any) -> dict[str, np.ndarray] | str:
    """:func:`read_outcomes`, its arrays read-only (every look shares them)."""
    out = read_outcomes(store, rec)
    if not isinstance(out, str):
        for values in out.values():
            values.flags.writeable = False
    return out


@dataclass(frozen=True)
class Judge:
    """Decides whether a finished trial failed (:func:`~descentlab.experiments.tuning.
    trial_failure`): its loss went non-finite, its final held-out metric is no better than
    ``chance``, or its final training loss is above its initial one (read from the store:
    the engine logs the training loss at step 0)."""

    metric: str
    maximize: bool
    chance: float | None

    def __call__(
        self,
        store: Any,
        run_id: int | None,
        status: str,
        summary: Mapping[str, Any],
        phase: str,
        created: str | None = None,
    ) -> str | None:
        """The failure, or None. ``created``: the run record's creation time, if known (then
        its starting loss is read from the store once per process)."""
        metric = self.metric
        if phase == "refit":  # its "val" examples are training data: judge the test metric
            metric = "test/" + metric.split("/", 1)[1]
        initial = None
        if run_id is not None and status == "completed":
            if created is None:
                initial = _initial_loss(store, run_id)
            else:
                initial = _read_once(
                    "initial", store, run_id, created, lambda: _initial_loss(store, run_id)
                )
        return tuning.trial_failure(
            status,
            summary.get(metric),
            chance=self.chance,
            maximize=self.maximize,
            initial_loss=initial,
            final_loss=summary.get("train/loss"),
        )


def _initial_loss(store: Any, run_id: int) -> float | None:
    """The training loss a run logged at step 0, or None."""
    series = store.metrics(run_id, split="train", name="loss").get("train/loss")
    if series is not None and len(series.steps) and int(series.steps[0]) == 0:
        return float(series.values[0])
    return None


# ------------------------------------------------------------------------------------------


def collect(
    spec: CompareSpec | Plan,
    store: Any,
    *,
    task: str,
    run_dir: Path,
    metric: str | None = None,
) -> Comparison:
    """Rebuild the comparison's results from the store (missing trials stay empty).

    The same function serves a finished :func:`compare`, a resumed one and
    ``descentlab report``: the table depends on the stored trials only. ``metric`` is the
    problem's own metric name, if it has one. ``spec``: the spec, or the plan derived from it
    (:class:`~descentlab.experiments.compare.planning.Plan`).
    """
    plan = Plan.of(spec)
    spec = plan.spec
    metric, maximize = score_metric(task, metric)
    records = store.list_runs(name=EXPERIMENT)
    chance = records[-1].provenance.get("chance") if records else None
    judge = Judge(metric, maximize, chance)
    results = []
    complete = True
    for choice in plan.choices:

        def lookup(t: Trial) -> Found | None:
            rec = finished_run(store, t, statuses=RESULTS)
            if rec is None:
                return None
            summary = dict(rec.summary or {})
            return Found(
                rec.id,
                rec.status,
                summary,
                judge(store, rec.id, rec.status, summary, t.phase, rec.created_at),
            )

        cands, _, done = tuning_plan(plan, choice, lookup, metric, maximize, chance=chance)
        best = select(cands, maximize) if done else None
        res = OptimizerResult(
            choice=choice,
            candidates=cands,
            best=best,
            curve_runs=[None] * spec.seeds,
            refit_runs=[None] * plan.looks[0],
            test_accuracy=(math.nan,) * 3,
            test_loss=(math.nan,) * 3,
            steps_to_target=[],
            seconds_to_target=[],
            final_val_accuracy=[],
            final_val_loss=[],
            diverged_tuning=sum(c.diverged for c in cands),
            diverged_final=0,
            failed_tuning=sum(c.failed for c in cands),
            pruned_tuning=sum(c.pruned for c in cands),
            cliff=cliff(cands, best),
        )
        for c in cands:
            for f in c.failures:
                if f is not None:
                    res.failures[f] = res.failures.get(f, 0) + 1
        setting = final_setting(choice, cands, best) if done else None
        if setting is not None:
            res.setting = setting
            _fill_final(plan, store, res, task, judge, timed=metric == "val/accuracy")
            res.curves = _curves(store, res.curve_runs)
            res.collapsed = _collapses(store, spec.final_seeds, res.curve_runs)
            complete &= all(r is not None for r in res.curve_runs + res.refit_runs)
        elif not done:
            complete = False
        results.append(res)
    return Comparison(
        spec=spec,
        results=results,
        run_dir=Path(run_dir),
        task=task,
        select_metric=metric,
        record=records[-1] if records else None,
        complete=complete,
        chance=chance,
    )


def _fill_final(
    plan: Plan, store: Any, res: OptimizerResult, task: str, judge: Judge, *, timed: bool
) -> None:
    spec = plan.spec
    kind = kind_of(spec)
    # every test seed the sequential verdict may have added (those beyond the first look are
    # there only where it asked for them)
    trials = final_trials(plan, res.choice, res.best_setting or {}, test_seeds=plan.looks[-1])
    for t in trials:
        rec = finished_run(store, t, statuses=RESULTS)
        seed = t.tag[0]
        i = (spec.final_seeds if t.phase == "curve" else plan.test_seeds).index(seed)
        if rec is None:
            continue
        if t.phase == "refit" and i >= len(res.refit_runs):
            res.refit_runs += [None] * (i + 1 - len(res.refit_runs))
        if rec.status == "diverged":
            res.diverged_final += 1
        summary = rec.summary or {}
        measured = {k: summary[k] for k in _TIMING if k in summary}
        res.run_timings[rec.id] = {**measured, "mode": execution_mode(rec.provenance)}
        failure = judge(store, rec.id, rec.status, summary, t.phase, rec.created_at)
        if failure is not None:
            res.failed_final += 1
            res.failures[failure] = res.failures.get(failure, 0) + 1
        if t.phase == "curve":
            res.curve_runs[i] = rec.id
            if rec.status == "completed":
                res.final_val_accuracy.append(summary.get("val/accuracy", math.nan) or math.nan)
                res.final_val_loss.append(summary.get("val/loss", math.nan) or math.nan)
            if timed and spec.target_accuracy is not None:  # a problem scored by accuracy
                m = store.metrics(rec.id)
                acc = m.get("val/accuracy")
                # the run's own forward/backward and optimizer time (engine.timing), also
                # for a run of a vectorized pass (its share); None: recorded without it
                own = m.get("progress/train_time")
                step, secs = (None, None)
                if acc is not None:
                    step, secs = tuning.time_to_target(
                        acc.steps,
                        acc.values,
                        spec.target_accuracy,
                        seconds=_align(own, acc.steps) if own is not None else None,
                    )
                res.steps_to_target.append(step)
                res.seconds_to_target.append(secs)
        else:
            res.refit_runs[i] = rec.id
            if failure is not None:  # counted apart: the metric is over the seeds that trained
                res.test_failures[seed] = failure
            if rec.status == "completed":
                outcomes = _outcomes(store, rec)
                if isinstance(outcomes, str):
                    res.test_outcomes_missing[seed] = outcomes
                else:
                    res.test_examples[seed] = outcomes
                bounds = kind.metric_bounds(rec.provenance or {})
                if bounds is not None:
                    res.metric_bounds = bounds
                for key, into in (
                    ("test/accuracy", res.test_accuracy_seeds),
                    ("test/loss", res.test_loss_seeds),
                    ("test/rmse", res.test_rmse_seeds),
                ):
                    value = summary.get(key)
                    if value is not None:
                        into[seed] = float(value)
    _summarise(res, spec.confidence, bounded=not kind.own_metric)


def _summarise(res: OptimizerResult, conf: float, bounded: bool = True) -> None:
    """``res``'s test metrics with their intervals, over the seeds that trained (``bounded``
    False: an objective's metric has its own range, its ``Score``'s bounds or none, its
    values stored as these two)."""
    free = res.metric_bounds or (-math.inf, math.inf)
    for name, bounds in (("accuracy", (0.0, 1.0)), ("loss", (0.0, math.inf))):
        bounds = bounds if bounded else free
        values = res.test_outcome_values(name)
        if values:
            res.test_estimates[name] = stats.estimate(values, confidence=conf, bounds=bounds)
    if "accuracy" in res.test_estimates:
        res.test_accuracy = res.test_estimates["accuracy"].interval
    if "loss" in res.test_estimates:
        res.test_loss = res.test_estimates["loss"].interval
    trained = {s: v for s, v in res.test_rmse_seeds.items() if s not in res.test_failures}
    sq = {s: e["squared_error"] for s, e in res.test_examples.items() if "squared_error" in e}
    if trained and set(trained) <= set(sq):
        # the root of the mean squared error over seeds and examples, and the roots of its
        # interval's ends (a monotone map of an interval of the mean squared error)
        e = stats.estimate({s: sq[s] for s in trained}, confidence=conf, bounds=(0.0, math.inf))
        res.test_estimates["squared_error"] = e
        res.test_rmse = (math.sqrt(e.mean), math.sqrt(e.low), math.sqrt(e.high))
    elif trained:  # over the seeds only (the warnings say so)
        res.test_rmse = tuning.t_interval(
            list(trained.values()), confidence=conf, bounds=(0.0, math.inf)
        )


#: a run's own time in its summary (descentlab.engine.timing)
_TIMING = ("train_seconds", "optimizer_seconds", "clock")


def _align(series: Any, steps: np.ndarray) -> np.ndarray:
    lookup = dict(zip(series.steps.tolist(), series.values.tolist(), strict=True))
    return np.asarray([lookup.get(int(s), math.nan) for s in steps], dtype=float)


def load_comparison(run_dir: str | os.PathLike[str]) -> Comparison:
    """The comparison stored in ``run_dir`` (for re-rendering its report).

    Args:
        run_dir: a directory written by :func:`compare` (``runs/<name>``).

    Returns:
        The :class:`Comparison` rebuilt from the store, equal to what :func:`compare` returned
        (``complete`` is False for a comparison that was stopped).

    Writes:
        Nothing: the store is only read (opened read-only where the run directory cannot be
        written).

    Raises:
        FileNotFoundError: no store, or no comparison in it.
        StoreError: the store holds a metric value that is not a number (written by
            something other than descentlab), or cannot be read.

    Example:
        A comparison written and read back is in the example of
        :func:`~descentlab.report.html.render_report`, which renders the one it read; a folder
        without a store is refused:

        >>> import tempfile
        >>> from descentlab.experiments.compare import load_comparison
        >>> folder = tempfile.TemporaryDirectory()
        >>> load_comparison(folder.name)
        Traceback (most recent call last):
        FileNotFoundError: no store at .../descentlab.sqlite: is ... run directory?
        >>> folder.cleanup()
    """
    run_dir = Path(run_dir)
    path = store_path_of(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no store at {path}: is {run_dir} a comparison's run directory?")
    # a run folder that cannot be written (a read-only mount, an archive) is read as it is
    store = Store(path, read_only=not os.access(run_dir, os.W_OK))
    try:
        store.check_metric_values()  # (a report shows what it reads: refuse values it cannot)
        records = store.list_runs(name=EXPERIMENT)
        if not records:
            raise FileNotFoundError(f"{path} holds no comparison")
        # (what the verdict says, kept apart from what ran: its provenance)
        said = records[-1].provenance.get("verdict") or {}
        spec = CompareSpec.from_dict({**records[-1].config["spec"], **said})
        task = records[-1].provenance.get("task", "classification")
        metric = records[-1].provenance.get("metric")
        plan = spec.plan(stored=True)  # read back: its device and problem need not be here
        result = collect(plan, store, task=task, run_dir=run_dir, metric=metric)
    finally:
        store.close()
    return with_context(result)


def with_context(result: Comparison) -> Comparison:
    """``result`` with what its report shows beside the trials: the optimizers' paths on the
    spec's landscapes and the lecture outputs found beside the run directory."""
    result.landscapes = landscape_races([r.choice for r in result.results], result.spec.landscapes)
    result.folder = scan_run_folder(result.run_dir)
    return result


def _collapses(store: Any, seeds: list[int], run_ids: list[int | None]) -> dict[int, int]:
    """``{seed: step}`` of the curve runs whose training loss collapsed late."""
    out = {}
    for seed, rid in zip(seeds, run_ids, strict=False):
        if rid is None:
            continue
        series = store.metrics(rid, split="train", name="loss").get("train/loss")
        if series is not None:
            step = tuning.late_collapse(series.steps, series.values)
            if step is not None:
                out[seed] = step
    return out


def _curves(store: Any, run_ids: list[int | None]) -> dict[str, SeedCurves]:
    """Every metric the curve runs logged (training, validation, monitor), over the seeds."""
    runs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for rid in run_ids:
        if rid is None:
            continue
        for key, series in store.metrics(rid).items():
            if len(series.steps):
                runs.setdefault(key, []).append(
                    (np.asarray(series.steps), np.asarray(series.values, dtype=float))
                )
    return {key: SeedCurves(r) for key, r in runs.items()}
