"""The execution of a task of trials: each trained here against a scratch store
(:func:`scratch_store`), alone or in one vectorized pass, continued from its last checkpoint
where it was stopped before, its monitor records and test outcomes added, and its run exported
for the store's one writer (:func:`run_task`): what a local worker, the main process (one
worker) and a Ray task all do."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from descentlab.engine.scratch import exported, scratch_store
from descentlab.experiments.kinds import kind_of
from descentlab.experiments.resume import continued, discard_checkpoint, restore, shipper
from descentlab.experiments.trial import FINISHED, DataSource, Trial, TrialOutcome, needs_outcomes

T = TypeVar("T")


#: Called with a trial, its run id and its checkpoint's path after each checkpoint written in
#: the middle of the trial (see :func:`execute_group`).
AfterCheckpoint = Callable[[Trial, int, Path], None]


def run_task(
    source: DataSource,
    trials: list[Trial],
    sizes: Sequence[int] | None = None,
    resume: Mapping[str, Any] | None = None,
    save: Callable[..., None] | None = None,
    done: Callable[[int, list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """A task's trials trained against a scratch store and their runs exported, in the trials'
    order, for the store's one writer to import together (:meth:`TrialRunner._imported`):
    what a local worker, the main process (one worker) and a Ray task all do. A trial
    stopped by a signal ends the task there (the trials after it are not trained).

    Args:
        source: the data.
        trials: the task's trials.
        sizes: cuts ``trials`` into the parts that train one after another, each alone or
            (several trials) in one vectorized pass (None: one part).
        resume: ``{"every": checkpoint_every, "kept": {trial index: what is kept of it}}``
            (:mod:`~descentlab.experiments.resume`; None: no checkpoints).
        save: where each checkpoint written in the middle of a trial goes with the run's
            record so far (:func:`~descentlab.experiments.resume.shipper`'s ``save``;
            None: nowhere, it is lost with the scratch store).
        done: called with a part's first position and its exported runs as each part ends
            (a stop then keeps the task's finished trials).
    """
    sizes = [len(trials)] if sizes is None else list(sizes)
    if sum(sizes) != len(trials) or min(sizes, default=1) < 1:
        raise ValueError(f"sizes {sizes} do not cut {len(trials)} trials into parts")
    resume = resume or {"every": None, "kept": {}}
    exports: list[dict[str, Any]] = []
    with scratch_store() as store:
        kept = {i: restore(store, partial) for i, partial in resume["kept"].items()}
        ship = None if save is None else shipper(store, save)
        for n in sizes:
            a = len(exports)
            ids = [kept.get(i) for i in range(a, a + n)]
            outcomes = execute_group(store, source, trials[a : a + n], resume["every"], ship,
                                     resume_ids=ids)  # fmt: skip
            part = [{**exported(store, o.run_id), "seconds": o.seconds} for o in outcomes]
            exports += part
            if done is not None:
                done(a, part)
            if any(o.status == "interrupted" for o in outcomes):
                break
    return exports


def execute_group(
    store: Any,
    source: DataSource,
    trials: list[Trial],
    checkpoint_every: Any = None,
    after_checkpoint: AfterCheckpoint | None = None,
    nproc: int = 1,
    resume_ids: Sequence[int | None] | None = None,
) -> list[TrialOutcome]:
    """Run ``trials`` here, together (``train_many``) when there are several and their kind
    stacks (:attr:`~descentlab.experiments.kinds.TrialKind.stacks`); a trial alone (trained by
    its kind) checkpoints every ``checkpoint_every`` steps (or ``"auto"``; None: only at its end),
    calling ``after_checkpoint`` after each, and continues the interrupted run ``resume_ids``
    names for it, one per trial (None: from the start; not given: each from the start)."""
    kind = source.kind or kind_of(None)
    if len(trials) == 1 or not kind.stacks:  # (a kind whose trials do not stack: alone)
        ids = [None] * len(trials) if resume_ids is None else resume_ids
        return [
            _alone(store, source, kind, t, run_id, checkpoint_every, after_checkpoint, nproc)
            for t, run_id in zip(trials, ids, strict=True)
        ]
    from descentlab.engine.multirun import train_checked

    t0 = time.perf_counter()
    data = source.get(trials[0].data)  # (a group's trials share their data)
    results = train_checked([t.config for t in trials], store, data)
    with store.transaction():  # what the group's trials add: one write
        for t, r in zip(trials, results, strict=True):
            store_monitor(store, t, r)
            store_test_outcomes(store, t, r, data)
    for r in results:
        discard_checkpoint(store, r)
    each = (time.perf_counter() - t0) / len(trials)
    return [
        TrialOutcome(t, r.run_id, r.status, dict(r.summary), False, each)
        for t, r in zip(trials, results, strict=True)
    ]


def _alone(store: Any, source: DataSource, kind: Any, trial: Trial, run_id: int | None,
           *how: Any) -> TrialOutcome:  # fmt: skip
    """``trial`` trained alone by its ``kind`` (``how``: its checkpoints' cadence, what is
    called after each, its processes), from the start or continuing its interrupted run
    ``run_id`` (:func:`~descentlab.experiments.resume.continued`: resume written once for every
    kind); what it adds to its run recorded after its kind's ``train`` returns (its optimizer's
    monitor rows, a refit's per-example test outcomes); its finished run's checkpoint
    removed."""
    t0 = time.perf_counter()
    source = _FetchedOnce(source)  # (the kind and the records added after it share the data)
    go = functools.partial(kind.train, store, source, trial, *how)
    result = go() if run_id is None else continued(store, kind, trial, run_id, go, how[-1])
    with store.transaction():  # what the trial adds to its run, for every kind: one write
        store_monitor(store, trial, result, how[-1])
        if needs_outcomes(trial) and getattr(result, "model", None) is not None:  # (its model)
            store_test_outcomes(store, trial, result, source.get(trial.data))
    discard_checkpoint(store, result)
    seconds = time.perf_counter() - t0
    return TrialOutcome(trial, result.run_id, result.status, dict(result.summary), False, seconds)


class _FetchedOnce:
    """A data source whose splits of each kind are fetched once."""

    def __init__(self, source: Any) -> None:
        self.source, self.kind, self.fetched = source, source.kind, {}

    def get(self, kind: str) -> Any:
        if kind not in self.fetched:
            self.fetched[kind] = self.source.get(kind)
        return self.fetched[kind]


def store_monitor(store: Any, trial: Trial, result: Any, nproc: int = 1) -> None:
    """A finished monitored trial's monitor records, stored as ``monitor/*`` metrics of its
    run (its optimizer factory holds them, whether the run trained alone or in a group; a
    run trained across processes records none: each process sees only its shards)."""
    if nproc > 1:
        return
    if trial.monitored and result.run_id is not None and result.status in FINISHED:
        rows = trial.config.optimizer.rows()
        if rows:
            store.log_metrics(result.run_id, rows)


def store_test_outcomes(store: Any, trial: Trial, result: Any, data: Any) -> None:
    """A completed refit trial's per-example test outcomes on its ``data``
    (:mod:`descentlab.experiments.example_outcomes`), stored with its run."""
    if needs_outcomes(trial) and result.run_id is not None and result.status == "completed":
        from descentlab.experiments.example_outcomes import store_outcomes

        store_outcomes(store, result.run_id, result.model, trial.config, data)


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
