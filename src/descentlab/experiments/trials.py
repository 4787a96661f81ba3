"""Trials: training runs recorded in the store, found again by their config, run in parallel.

A :class:`Trial` is one :class:`~descentlab.engine.config.RunConfig` plus the data it trains
on (``"holdout"``, ``"fold:i:k"`` or ``"refit"``, see :mod:`descentlab.experiments.tuning`).
Its identity is its config (the config's ``name`` holds the phase, the optimizer's label and
the fold, since those change the data but no other field): :func:`finished_run` looks it up
with :meth:`Store.find_run_by_config <descentlab.store.Store.find_run_by_config>`, so a sweep
that was interrupted and is started again skips every trial that had finished (completed or
diverged) and runs the others from the start.

:class:`TrialRunner` runs trials in this process (``workers=1``) or in worker processes
(each single-threaded, which is fastest for small models and keeps results bit-identical
wherever a trial runs; on the CPU forked from this process once, when the first trial to train
is sent, elsewhere spawned). A worker trains against a scratch store and sends its runs back
exported; this process, the store's one writer, imports a task's runs in one transaction.
Vectorized work waits in the main process until a worker
is free, then goes out in parts planned so that the workers finish together
(:func:`plan_tasks`, tuning trials first). On an interrupt the workers are asked to stop
(SIGINT: the engine ends the current run as ``interrupted``), then killed if they do not
exit. A worker exits as soon as the main process dies, even one killed with ``kill -9``.

:class:`MonitoredOptimizer` (:mod:`descentlab.engine.monitoring`) wraps an optimizer so that
its :class:`~descentlab.optim.Monitor` records the update-to-parameter ratio every few steps;
the records are stored as ``monitor/*`` metrics of the run, whether it trained alone or in a
vectorized group.

Example:
    >>> import tempfile, os
    >>> from descentlab.engine.config import RunConfig
    >>> cfg = RunConfig(problem="moons", model="mlp", optimizer="adam", hyper={"lr": 1e-2},
    ...                 batch_size=32, steps=40, evaluate_test=False, name="tune:adam:0")
    >>> source = DataSource("moons", {"n_samples": 200})
    >>> path = os.path.join(tempfile.mkdtemp(), "lab.sqlite")
    >>> with TrialRunner(path, source, workers=1) as runner:
    ...     runner.submit(Trial("tune", "adam", cfg, "holdout"))
    ...     first = runner.next_outcome()
    ...     runner.submit(Trial("tune", "adam", cfg, "holdout"))
    ...     again = runner.next_outcome()
    >>> first.status, first.reused, again.reused, again.run_id == first.run_id
    ('completed', False, True, True)
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import multiprocessing as mp
import os
import queue
import shutil
import signal
import sys
import time
import traceback
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from descentlab._announce import announcement_dir, share_across, sharing
from descentlab._files import out_of_space
from descentlab._osutil import (
    pid_alive,
    signals_blocked,
    spawn_payload,
    spawning,
    started_frozen,
)
from descentlab._usercode import describe, genuine_interrupt, user_error
from descentlab.store import store_path_of

if TYPE_CHECKING:
    from descentlab.engine.monitoring import MonitoredOptimizer

__all__ = [
    "EVAL_COST_STEPS",
    "FINISHED",
    "DataSource",
    "MonitoredOptimizer",
    "Trial",
    "TrialError",
    "TrialOutcome",
    "TrialRunner",
    "finished_run",
    "mark_orphans",
    "plan_tasks",
    "run_cost",
    "store_path_of",
    "trial_cost",
]

T = TypeVar("T")

#: Statuses of a trial that is done (a diverged trial is a result, not a failure).
FINISHED: tuple[str, ...] = ("completed", "diverged")


def __getattr__(name: str) -> Any:
    # MonitoredOptimizer lives in the engine, imported when first asked for: a worker
    # process imports this module before it can die with its parent (and before its
    # warm-up), so the module stays free of torch and the engine.
    if name == "MonitoredOptimizer":
        from descentlab.engine.monitoring import MonitoredOptimizer

        return MonitoredOptimizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TrialError(RuntimeError):
    """A trial failed with an error (the message carries the worker's traceback)."""

    #: the trial failed for lack of space (see :func:`descentlab._files.out_of_space`)
    no_space: bool = False


# ------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class DataSource:
    """Where the trials' data come from: a dataset by name, or given ``Splits``.

    Args:
        problem: dataset name (``descentlab.problems.data.DATASETS``).
        options: dataset options (``data.load(**options)``).
        split_seed: seed of the train/validation split.
        val_fraction: validation fraction.
        data: a ``Splits`` to use instead of loading ``problem`` (e.g. your own tensors; sent
            to each worker process once).
        objective: the training code each trial calls instead of the engine's loop (an
            :class:`~descentlab.experiments.objective.Objective`), given the data above where
            it asks for them (its ``data``).

    Cross-validation folds (``"fold:i:k"``) are drawn with ``split_seed`` too.
    """

    problem: str
    options: Mapping[str, Any] = field(default_factory=dict)
    split_seed: int = 0
    val_fraction: float = 0.2
    data: Any = None
    objective: Any = None

    def load(self) -> Any:
        """The base ``Splits`` (loaded once per process and kept)."""
        if self.data is not None:
            return self.data
        return _load_cached(
            self.problem,
            json.dumps(dict(self.options), sort_keys=True),
            self.split_seed,
            self.val_fraction,
        )

    def get(self, kind: str) -> Any:
        """The ``Splits`` a trial trains on.

        Args:
            kind: ``"holdout"`` (train / validation, no test data), ``"fold:i:k"`` (fold ``i``
                of ``k``-fold cross-validation over train + validation, no test data) or
                ``"refit"`` (train + validation; the sealed test split for the final
                evaluation).
        """
        return _derived(self, kind)


@functools.lru_cache(maxsize=4)
def _load_cached(problem: str, options: str, split_seed: int, val_fraction: float) -> Any:
    from descentlab.problems import data as datasets

    return datasets.load(problem, seed=split_seed, val_fraction=val_fraction, **json.loads(options))


#: Each live base's derived splits by kind, dropped with the base (keyed by the object, never
#: by ``id()``: a new base allocated at a dead one's address must not be handed its splits).
_DERIVED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _derived(source: DataSource, kind: str) -> Any:
    from descentlab.experiments import tuning

    base = source.load()
    known = _DERIVED.setdefault(base, {})
    if kind in known:
        return known[kind]
    if kind == "holdout":
        out = tuning.holdout_splits(base)
    elif kind == "refit":
        out = tuning.refit_splits(base)
    elif kind.startswith("fold:"):
        _, i, k = kind.split(":")
        folds = tuning.fold_splits(base, int(k), seed=source.split_seed)
        for j, fold in enumerate(folds):
            known[f"fold:{j}:{k}"] = fold
        out = folds[int(i)]
    else:
        raise ValueError(f"data kind must be 'holdout', 'refit' or 'fold:i:k', got {kind!r}")
    known[kind] = out
    return out


# ------------------------------------------------------------------------------------------
# trials


@dataclass(frozen=True)
class Trial:
    """One training run of an experiment.

    Attributes:
        phase: ``"tune"``, ``"curve"`` (validation learning curves) or ``"refit"``.
        label: the optimizer's label in the experiment.
        config: the run's config (its ``name`` must make the trial unique).
        data: the data kind (see :meth:`DataSource.get`).
        tag: free-form identification for the caller (candidate index, fold, seed).
    """

    phase: str
    label: str
    config: Any
    data: str
    tag: tuple[Any, ...] = ()
    #: What a planner derived once, where it made the trial (None: derived where needed):
    #: the config's record (``RunConfig.to_dict``), the key that identifies the trial in a
    #: session (the record as sorted JSON), its estimated cost (:func:`trial_cost`) and the
    #: vectorized pass it can share (:func:`~descentlab.engine.multirun.group_of`; None:
    #: alone).
    record: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    key: str | None = field(default=None, compare=False, repr=False)
    cost: float | None = field(default=None, compare=False, repr=False)
    group: str | None = field(default=None, compare=False, repr=False)

    @property
    def monitored(self) -> bool:
        """Whether the run records monitor statistics (descentlab's optimizers only; an
        optimizer from outside descentlab has no monitor)."""
        from descentlab.engine.monitoring import MonitoredOptimizer

        opt = self.config.optimizer
        return isinstance(opt, MonitoredOptimizer) and opt.can_monitor

    def record_config(self) -> dict[str, Any]:
        """The config as the store holds it (``RunConfig.to_dict``)."""
        return dict(self.record) if self.record is not None else self.config.to_dict()


@dataclass
class TrialOutcome:
    """What a trial gave.

    Attributes:
        trial: the trial.
        run_id: its run in the store.
        status: ``completed`` or ``diverged`` (or ``interrupted`` when stopped).
        summary: the run's final metrics (the store's summary).
        reused: found finished in the store (not run again).
        seconds: wall-clock seconds this process spent on it (0 when reused).
    """

    trial: Trial
    run_id: int | None
    status: str
    summary: dict[str, Any]
    reused: bool = False
    seconds: float = 0.0


def finished_run(store: Any, trial: Trial, *, outcomes: bool = False) -> Any:
    """The stored run that finished ``trial`` (newest first), or None.

    A monitored trial counts as finished only once its monitor records are stored too (they
    are written just after the run ends; a run trained across processes has none). With
    ``outcomes`` (what a runner deciding what to train asks), a completed refit run counts
    as finished only once its per-example test outcomes, or why there are none, are stored
    too (they are also written just after the run ends: a process killed in between leaves a
    completed run without them, and reusing it would give intervals of the seeds' noise
    only, unlike the run never interrupted); it is trained again. Without ``outcomes``
    (reading a store), such a run -- or one stored before runs recorded their outcomes -- is
    reused as it is: the comparison says that its intervals count the seeds' noise only.
    """
    monitored, needs = trial.monitored, outcomes and _needs_outcomes(trial)
    record = store.find_run_by_config(trial.record_config(), status=FINISHED)
    if record is None:
        return None
    # (a run trained across processes records no monitor: its statistics would be a shard's)
    monitored = monitored and record.status == "completed" and not record.provenance.get("nproc")
    if monitored and not store.metrics(record.id, split="monitor", name="update_ratio"):
        return None
    if needs and record.status == "completed":
        from descentlab.experiments.test_outcomes import OUTCOMES_KEY

        if OUTCOMES_KEY not in (record.provenance or {}):
            return None
    return record


def group_trials(
    trials: list[Trial], alone: Callable[[Trial], bool] | None = None
) -> list[list[Trial]]:
    """``trials`` split into the groups that can train in one vectorized pass: same data and
    same shared fields (:func:`~descentlab.engine.multirun.train_many`'s grouping: the runs
    may differ in seed, hyperparameters and name). Order is kept within and between groups
    (a group stands where its first trial stood). ``alone(trial)``: trials that train alone
    all the same (they checkpoint: a vectorized group keeps no checkpoint)."""
    return [[trials[i] for i in g] for g in _group_positions(trials, alone)]


def _group_positions(
    trials: Sequence[Trial], alone: Callable[[Trial], bool] | None = None, pack: bool = False
) -> list[list[int]]:
    """:func:`group_trials`, as positions in ``trials``; ``pack``: the trials that train alone
    in one group (to share tasks that train them one after another)."""
    from descentlab.engine import multirun

    groups: dict[Any, list[int]] = {}
    for i, t in enumerate(trials):
        group = t.group if t.record is not None else multirun.group_of(t.config)
        if alone is not None and group is not None and alone(t):
            group = None
        key = ("alone", "all" if pack else i) if group is None else (t.data, group)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


# -- scheduling ------------------------------------------------------------------------------

#: What one evaluation (train and validation metrics) costs, in training steps: measured on
#: the MNIST-1D CNN of ``make demo`` in vectorized groups (500 steps: a curve run, 26
#: evaluations, takes 1.37x the time of a refit run, 2 evaluations). Only the ratios between
#: trials' costs matter.
EVAL_COST_STEPS = 8

#: Steps counted per epoch for a config given in epochs (the data's size is not known where
#: the work is planned).
_STEPS_PER_EPOCH = 100


def trial_cost(trial: Trial) -> float:
    r"""The estimated cost of training ``trial``, in training steps of its model.

    .. math:: \text{cost} = T + E\,(1 + \lceil T / \text{eval\_every} \rceil)

    with :math:`T` the steps, :math:`E` = :data:`EVAL_COST_STEPS` and the evaluations the
    engine makes (the starting point, then every ``eval_every`` steps and at the end;
    ``eval_every`` None: every :math:`T / 25`). A run of a vectorized group costs about the
    same per step for groups of 4 or more runs.

    Example:
        >>> from descentlab.engine.config import RunConfig
        >>> cfg = RunConfig(problem="moons", steps=500, eval_every=100)
        >>> trial_cost(Trial("tune", "adam", cfg, "holdout"))
        548.0
    """
    if trial.cost is not None:
        return trial.cost
    cfg = trial.config
    return run_cost(cfg.steps, cfg.epochs, cfg.eval_every)


def run_cost(steps: int | None, epochs: int | None, eval_every: int | None) -> float:
    """:func:`trial_cost` of a run of ``steps`` (or ``epochs``) evaluated every
    ``eval_every`` steps."""
    steps = steps if steps is not None else _STEPS_PER_EPOCH * (epochs or 1)
    every = eval_every or max(1, steps // 25)
    return float(steps + EVAL_COST_STEPS * (1 + math.ceil(steps / every)))


def _never(item: Any) -> bool:
    return False


def _water_level(amount: float, loads: Sequence[float]) -> float:
    """The level ``L`` at which ``sum(max(0, L - load))`` is ``amount``: the time every worker
    finishes when ``amount`` is poured over workers that are busy for ``loads``."""
    level, below = 0.0, 0.0
    ordered = sorted(loads)
    for i, load in enumerate(ordered):
        # workers 0..i are below the level once it passes ``load``
        nxt = ordered[i + 1] if i + 1 < len(ordered) else math.inf
        level = (amount + below + load) / (i + 1)
        below += load
        if level <= nxt:
            return level
    return level


def plan_tasks(
    groups: Sequence[Sequence[T]],
    idle: int,
    *,
    cost: Callable[[T], float],
    urgent: Callable[[T], bool] = _never,
    busy: Sequence[float] = (),
    min_part: int = 4,
) -> list[list[T]]:
    """The tasks that ``idle`` free workers start now: each a part of one group (trials of a
    group can train in one vectorized pass), in the group's order, at most one per worker;
    the rest waits for a worker that frees up (and for trials submitted meanwhile to join it).

    The policy: work whose outcome decides what runs next (``urgent``: tuning trials) goes
    before the rest; within that pool the largest group goes first, cut so that this
    worker's part reaches the level at which the pool, poured over every worker's remaining
    work (``busy``, the parts planned here, nothing for the idle ones), would finish: the
    workers end together. A part, and what it leaves of its group, keeps at least
    ``min_part`` trials (a vectorized run costs about the same per step from there on),
    unless the pool holds fewer than ``min_part`` trials per free worker: then the free
    workers share them evenly rather than some staying idle.

    Args:
        groups: the waiting work, in groups that can share a pass (each in its own order).
        idle: free workers.
        cost: a trial's estimated cost (any unit: seconds, steps).
        urgent: whether a trial's outcome unblocks further work.
        busy: the remaining cost of each busy worker's task (same unit).
        min_part: the smallest part worth a pass of its own.

    Returns:
        The parts to start now, one per worker.

    Example:
        >>> refits, tuning = ["r1", "r2"], ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"]
        >>> plan_tasks([refits, tuning], 2, cost=lambda t: 1.0, urgent=lambda t: t[0] == "t")
        [['t1', 't2', 't3', 't4'], ['t5', 't6', 't7', 't8']]
    """
    for name, value, least in (("idle", idle, 0), ("min_part", min_part, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            kind = "non-negative" if least == 0 else "positive"
            raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
    pieces: list[tuple[bool, list[T], list[float]]] = []
    for g in groups:
        for flag in (True, False):  # an urgent trial never waits on its group's others
            part = [t for t in g if bool(urgent(t)) is flag]
            if part:
                pieces.append((flag, part, [float(cost(t)) for t in part]))
    loads = [float(b) for b in busy]
    out: list[list[T]] = []
    for free in range(idle, 0, -1):
        pieces = [p for p in pieces if p[1]]
        if not pieces:
            break
        pool = [p for p in pieces if p[0]] or pieces
        flag, trials, costs = max(pool, key=lambda p: sum(p[2]))
        share = _water_level(sum(sum(p[2]) for p in pool), loads + [0.0] * free)
        # Parts smaller than min_part only where the pool cannot give every free worker a
        # full part (a worker otherwise idle takes a small part).
        count = sum(len(p[1]) for p in pool)
        lo = min_part if count >= free * min_part else max(1, count // free)
        k = _cut(costs, share, lo)
        out.append(trials[:k])
        loads.append(sum(costs[:k]))
        del trials[:k], costs[:k]
    return out


def _cut(costs: Sequence[float], share: float, lo: int) -> int:
    """How many leading trials of a group (with ``costs``) make the part whose cost is
    nearest ``share`` (ties: more trials): the whole group, or a part of at least ``lo``
    trials that leaves at least ``lo``."""
    n = len(costs)
    totals = list(itertools.accumulate(costs))
    counts = [*range(lo, n - lo + 1), n]
    return min(counts, key=lambda k: (abs(totals[k - 1] - share), -k))


#: Called with a trial, its run id and its checkpoint's path after each checkpoint written in
#: the middle of the trial (see :func:`_execute_group`).
AfterCheckpoint = Callable[[Trial, int, Path], None]


def _execute_group(
    store: Any,
    source: DataSource,
    trials: list[Trial],
    checkpoint_every: Any = None,
    after_checkpoint: AfterCheckpoint | None = None,
    nproc: int = 1,
) -> list[TrialOutcome]:
    """Run ``trials`` here, together (``train_many``) when there are several; a trial alone
    checkpoints every ``checkpoint_every`` steps (or ``"auto"``; None: only at its end),
    calling ``after_checkpoint`` after each, and continues from its last checkpoint if an
    earlier session was stopped in it."""
    if len(trials) == 1 or source.objective is not None:  # (an objective's train alone)
        run = functools.partial(_execute, store, source, checkpoint_every=checkpoint_every,
                                after_checkpoint=after_checkpoint, nproc=nproc)  # fmt: skip
        return [run(t) for t in trials]
    from descentlab.engine.multirun import train_many

    t0 = time.perf_counter()
    results = train_many(
        [t.config for t in trials],
        store,
        mode="auto",
        workers=1,
        progress=False,
        data=source.get(trials[0].data),
    )
    with store.transaction():  # what the group's trials add: one write
        for t, r in zip(trials, results, strict=True):
            _store_monitor(store, t, r)
            _store_test_outcomes(store, source, t, r)
    for r in results:
        _discard_checkpoint(store, r)
    each = (time.perf_counter() - t0) / len(trials)
    return [
        TrialOutcome(t, r.run_id, r.status, dict(r.summary), False, each)
        for t, r in zip(trials, results, strict=True)
    ]


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
            (:mod:`~descentlab.experiments.ray_resume`; None: no checkpoints).
        save: where each checkpoint written in the middle of a trial goes with the run's
            record so far (:func:`~descentlab.experiments.ray_resume.shipper`'s ``save``;
            None: nowhere, it is lost with the scratch store).
        done: called with a part's first position and its exported runs as each part ends
            (a stop then keeps the task's finished trials).
    """
    from descentlab.experiments import ray_resume

    sizes = [len(trials)] if sizes is None else list(sizes)
    if sum(sizes) != len(trials) or min(sizes, default=1) < 1:
        raise ValueError(f"sizes {sizes} do not cut {len(trials)} trials into parts")
    resume = resume or {"every": None, "kept": {}}
    exports: list[dict[str, Any]] = []
    with scratch_store() as store:
        for partial in resume["kept"].values():
            ray_resume.restore(store, partial)
        ship = None if save is None else ray_resume.shipper(store, save)
        for n in sizes:
            a = len(exports)
            outcomes = _execute_group(store, source, trials[a : a + n], resume["every"], ship)
            part = [{**exported(store, o.run_id), "seconds": o.seconds} for o in outcomes]
            exports += part
            if done is not None:
                done(a, part)
            if any(o.status == "interrupted" for o in outcomes):
                break
    return exports


@contextlib.contextmanager
def scratch_store(on_disk: bool = False) -> Iterator[Any]:
    """A store in this process's memory (nothing of it reaches the disk: it is read within
    the task), its files' folder a private temporary one, removed at the end
    (:func:`~descentlab._osutil.owned_tempdir`: or by a later process, if this one is killed).
    ``on_disk``: a file in that folder instead, for work that opens the store by its path."""
    from descentlab._osutil import owned_tempdir
    from descentlab.store import Store

    tmp = owned_tempdir("trial")
    try:
        store = Store(Path(tmp) / "trial.sqlite", durable=on_disk)
        try:
            yield store
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def exported(store: Any, run_id: int) -> dict[str, Any]:
    """A run of ``store`` as another store imports it, with its files' bytes."""
    out = {**store.export_run(run_id), "files": {}}
    for name, art in out["artifacts"].items():
        path = Path(art["path"])
        if path.is_file():
            out["files"][name] = (art["kind"], path.suffix, path.read_bytes())
    return out


def in_scratch_store(
    work: Callable[[Any], T], on_disk: bool = False
) -> tuple[T, list[dict[str, Any]]]:
    """Call ``work(store)`` with a :func:`scratch_store` (``on_disk``: its file, for work that
    opens it by path); return what it returned and the runs it recorded (in the order
    recorded, each with its ``id`` there), :func:`exported`."""
    with scratch_store(on_disk) as store:
        value = work(store)
        return value, [{**exported(store, r.id), "id": r.id} for r in store.list_runs()]


def _place_files(store: Any, exported: Mapping[str, Any]) -> Callable[[int], dict[str, Any]]:
    """What :meth:`Store.import_run <descentlab.store.Store.import_run>` calls to write a run's
    files next to ``store``."""
    from descentlab.engine.checkpoint import write_bytes_atomic

    folder = store.path.parent / "checkpoints"

    def place(run_id: int) -> dict[str, tuple[str, str]]:
        placed = {}
        for name, (kind, suffix, data) in exported.get("files", {}).items():
            stem = f"run-{run_id}" if name == "checkpoint" else f"run-{run_id}-{name}"
            target = folder / f"{stem}{suffix}"
            write_bytes_atomic(target, data)
            placed[name] = (kind, str(target))
        return placed

    return place


def _execute(
    store: Any,
    source: DataSource,
    trial: Trial,
    checkpoint_every: Any = None,
    after_checkpoint: AfterCheckpoint | None = None,
    nproc: int = 1,
) -> TrialOutcome:
    """Run one trial here (the engine records it in ``store``): from its last checkpoint
    where an earlier session was stopped in it, else from the start. ``nproc`` > 1: across
    that many processes of this machine, its model sharded
    (:func:`~descentlab.engine.launch.train_sharded`; rank 0 writes the store)."""
    from descentlab.engine.run import train

    t0 = time.perf_counter()
    if source.objective is not None:
        return _objective_trial(store, source, trial, checkpoint_every, after_checkpoint)
    data = source.get(trial.data)
    options: dict[str, Any] = {
        "checkpoint_every": checkpoint_every,
        "after_checkpoint": None,
        "keep_checkpoint": False,
    }  # (a finished trial is never continued)
    if after_checkpoint is not None:
        options["after_checkpoint"] = functools.partial(after_checkpoint, trial)
    if nproc > 1:
        result = _train_sharded(store, trial, data, nproc, checkpoint_every)
    else:
        result = _resume_unfinished(store, trial, data, options)
        if result is None:
            result = train(trial.config, store, data=data, progress=False, **options)
    with store.transaction():  # what the trial adds to its run: one write
        _store_monitor(store, trial, result, nproc)
        _store_test_outcomes(store, source, trial, result)
    _discard_checkpoint(store, result)
    summary = dict(result.summary)
    return TrialOutcome(
        trial, result.run_id, result.status, summary, False, time.perf_counter() - t0
    )


def _objective_trial(
    store: Any,
    source: DataSource,
    trial: Trial,
    checkpoint_every: Any,
    after_checkpoint: AfterCheckpoint | None,
) -> TrialOutcome:
    """One trial of the source's objective (:func:`~descentlab.experiments.objective.
    run_trial`): continued from its last checkpoint where an earlier session was stopped in
    it (:func:`_resume_unfinished`), else from the start."""
    from descentlab.experiments.objective import run_trial

    t0 = time.perf_counter()
    data = source.get(trial.data) if source.objective.data else None
    go = functools.partial(run_trial, store, source.objective, trial, data, checkpoint_every,
                           after_checkpoint)  # fmt: skip
    ended = _resume_unfinished(store, trial, data, {}, go)
    run_id, status, summary = go() if ended is None else ended
    result = SimpleNamespace(run_id=run_id, status=status, checkpoint_path=None)
    _store_monitor(store, trial, result)  # (its optimizer built by run.optimizer)
    _discard_checkpoint(store, result)
    return TrialOutcome(trial, run_id, status, summary, False, time.perf_counter() - t0)


def _train_sharded(store: Any, trial: Trial, data: Any, nproc: int, checkpoint_every: Any) -> Any:
    """The trial trained across ``nproc`` processes (continued from its last checkpoint where
    an earlier session was stopped in it, as :func:`_resume_unfinished` does)."""
    import torch

    from descentlab.engine.launch import train_sharded

    threads = torch.get_num_threads()
    options = {"data": data, "progress": False, "checkpoint_every": checkpoint_every,
               "threads": threads}  # fmt: skip
    if store.has_runs("interrupted"):
        record = store.find_run_by_config(trial.record_config(), status="interrupted")
        if record is not None:
            return train_sharded(None, nproc, store.path, resume_id=record.id, restart=True,
                                 optimizer=trial.config.optimizer,
                                 schedule=trial.config.schedule, **options)  # fmt: skip
    return train_sharded(trial.config, nproc, store.path, **options)


def _resume_unfinished(
    store: Any, trial: Trial, data: Any, engine: dict[str, Any], objective: Any = None
) -> Any:
    """The trial continued from where an earlier session left it: its interrupted run (a
    killed session's runs are marked interrupted when the next one opens the store, see
    :func:`mark_orphans`) resumed from its last checkpoint -- the same iterates, data order
    and random streams as if never stopped (:func:`~descentlab.engine.run.resume`), or from
    step 0 as the same run where it wrote none. A checkpoint that fails its verification is
    set aside (``<name>.corrupt``), never used: the run starts over, with one warning. None:
    no such run. ``engine``: how the run checkpoints (``train``'s keywords); ``objective``:
    the objective's trial (:func:`_objective_trial`), continued the same way instead."""
    from descentlab.engine.checkpoint import CheckpointError
    from descentlab.engine.run import resume

    if not store.has_runs("interrupted"):  # the usual case: nothing was stopped
        return None
    record = store.find_run_by_config(trial.record_config(), status="interrupted")
    if record is None:
        return None
    options = {"data": data, "optimizer": trial.config.optimizer, "progress": False,
               "schedule": trial.config.schedule, **engine}  # fmt: skip
    go = functools.partial(resume, record.id, store, **options)
    if objective is not None:
        go = functools.partial(objective, resume=record.id)
    try:
        return go()
    except CheckpointError as exc:
        aside = _set_aside(store, record.id)
        reason = str(exc).split("; to start run")[0]
        warnings.warn(
            f"descentlab: trial {trial.config.name!r}: {reason}; set aside as {aside}, never "
            "used: the trial starts over from step 0",
            RuntimeWarning,
            stacklevel=2,
        )
        return go(restart=True)


def _checkpoint_of(store: Any, run_id: int) -> Path | None:
    art = store.artifacts(run_id).get("checkpoint")
    return None if art is None else Path(art["path"])


def _set_aside(store: Any, run_id: int) -> Path | None:
    """Move run ``run_id``'s checkpoint (and its checksum file) aside as ``*.corrupt`` and
    forget it in the store; returns where it went."""
    from descentlab.engine.checkpoint import checksum_path
    from descentlab.engine.run import _default_checkpoint

    # the recorded one, or one at the engine's default place that the store had yet to record
    path = _checkpoint_of(store, run_id) or _default_checkpoint(store, run_id)
    if not (path.exists() or checksum_path(path).exists()):
        return None
    aside = path.with_name(path.name + ".corrupt")
    for src, dst in ((path, aside), (checksum_path(path), checksum_path(aside))):
        with contextlib.suppress(FileNotFoundError):
            os.replace(src, dst)
    store.remove_artifact(run_id, "checkpoint")
    return aside


def _discard_checkpoint(store: Any, result: Any) -> None:
    """A finished trial's checkpoint removed (and forgotten by the store): it is never
    resumed, and a comparison's thousands of trials would fill the disk."""
    if result.run_id is None or result.status not in FINISHED:
        return
    from descentlab.engine.checkpoint import checksum_path

    path = _checkpoint_of(store, result.run_id)
    if path is None:
        return
    store.remove_artifact(result.run_id, "checkpoint")
    for file in (path, checksum_path(path)):
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
    result.checkpoint_path = None


def _store_monitor(store: Any, trial: Trial, result: Any, nproc: int = 1) -> None:
    """A finished monitored trial's monitor records, stored as ``monitor/*`` metrics of its
    run (its optimizer factory holds them, whether the run trained alone or in a group; a
    run trained across processes records none: each process sees only its shards)."""
    if nproc > 1:
        return
    if trial.monitored and result.run_id is not None and result.status in FINISHED:
        rows = trial.config.optimizer.rows()
        if rows:
            store.log_metrics(result.run_id, rows)


def _needs_outcomes(trial: Trial) -> bool:
    return trial.phase == "refit" and bool(getattr(trial.config, "evaluate_test", False))


def _store_test_outcomes(store: Any, source: DataSource, trial: Trial, result: Any) -> None:
    """A completed refit trial's per-example test outcomes
    (:mod:`descentlab.experiments.test_outcomes`), stored with its run."""
    if _needs_outcomes(trial) and result.run_id is not None and result.status == "completed":
        from descentlab.experiments.test_outcomes import store_outcomes

        store_outcomes(store, result.run_id, result.model, trial.config, source.get(trial.data))


@contextlib.contextmanager
def _threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -- worker processes ------------------------------------------------------------------------


#: How long an interrupted comparison waits for its running trials to stop and be recorded
#: as interrupted before it kills their processes (a step that takes longer is not waited
#: for: the command ends within seconds, its trials continue from their last checkpoints).
ABORT_SECONDS = 2.0


def _worker_main(
    tasks: Any,
    results: Any,
    store_path: str,
    source: DataSource,
    threads: int,
    checkpoint_every: Any = None,
    warm_up: bool = True,
    announced: str | None = None,
) -> None:
    # Ctrl-C reaches every process of the terminal's group: between trials the main process
    # decides; during a trial the engine's own handler ends the run as "interrupted" (the
    # same for a SIGTERM passed on).
    from descentlab._osutil import die_with_parent, ignore_stop_signals

    ignore_stop_signals()
    from descentlab._usercode import plain_warnings

    die_with_parent()  # a killed main process takes its workers with it, queued trials or not
    plain_warnings()  # (a worker's warnings reach the same terminal)
    if announced is not None:  # what the main process or another worker said, not again
        share_across(announced)
    import torch

    from descentlab.experiments.ray_resume import CheckpointKeeper

    torch.set_num_threads(threads)
    from descentlab.engine.memory import keep_freed_memory

    keep_freed_memory()  # a training process: reuse freed memory (engine/memory.py)
    if warm_up:  # (a forked worker starts warm)
        # Warm up while the main process prepares the data: a fresh process spends seconds on
        # the engine's imports (scikit-learn, losses, models, optimizers) at its first run.
        _warm_up()

    parent = os.getppid()
    save = CheckpointKeeper(str(Path(store_path).parent / "checkpoints")).save
    while True:
        try:
            item = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the main process is gone
                _exit_now(None, results)
            continue
        if item is None:
            _exit_now(None, results)
        indices, trials, sizes, resume = item
        emit = functools.partial(_emit, results, indices)
        try:
            # each part's runs go back as it ends (a stop keeps them); the main process,
            # the store's one writer, records the task's runs together once it is done, and
            # sees the worker free with every outcome it can plan from
            run_task(source, trials, sizes, resume, save, emit)
            results.put(("done", indices, None, False))
        except BaseException as exc:  # report everything, including KeyboardInterrupt
            text = "".join(traceback.format_exception(exc))
            no_space = out_of_space(exc)  # the main process then takes back what it made
            results.put(("error", indices, f"{describe(exc)}\n{text}", no_space))
            if not isinstance(exc, Exception):
                return


#: what a spawned worker loads (frozen: :func:`~descentlab._osutil.started_frozen`) before
#: its arguments: torch, the engine's runs and vectorized passes
_WORKER_MODULES = ("descentlab.engine.run", "descentlab.engine.multirun")


def _emit(results: Any, indices: list[int], start: int, part: list[dict[str, Any]]) -> None:
    results.put(("part", indices, start, part))


def _forks(threads: int) -> bool:
    """Whether worker processes are forked from this one (see :meth:`TrialRunner._start`):
    where ``fork`` exists, each worker trains with one thread (a process forked after
    OpenMP started threads must not start its own), and no CUDA device is in use here."""
    if threads != 1 or "fork" not in mp.get_all_start_methods() or sys.platform == "darwin":
        return False
    torch = sys.modules.get("torch")
    return torch is None or not torch.cuda.is_initialized()


def _exit_now(store: Any, results: Any) -> None:
    """End this worker process at once, once its store is closed and every outcome it put on
    ``results`` has reached the pipe: a spawned process that returns finalizes its interpreter
    (more than a second after torch's imports, measured 1.2 s), and the main process waits
    for that before it can finish."""
    if store is not None:
        store.close()
    results.close()
    results.join_thread()  # the queue's feeder thread has written everything
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _warm_up() -> None:
    """One tiny run (a few examples, one step, nothing recorded) to pay the first run's costs
    (on data that need no scikit-learn: its import would cost more than the runs it warms)."""
    from descentlab.engine.config import RunConfig
    from descentlab.engine.run import train

    cfg = RunConfig(
        problem="regression",
        problem_options={"n_train": 30, "n_test": 10},
        optimizer="sgd",
        hyper={"lr": 0.1},
        steps=1,
        evaluate_test=False,
    )
    # (its announcements -- a fused kernel that cannot be built here, say -- are the real
    # runs' to make, once)
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, progress=False)


class TrialRunner:
    """Run trials, skipping those already finished in the store.

    Args:
        store_path: the SQLite store the runs go to.
        source: where the data come from.
        workers: processes to train in (1: in this process).
        threads: torch threads per trial (1 is fastest for small models and makes results
            identical wherever a trial runs).
        vectorize: let :meth:`submit_many` train trials that differ only in seed or
            hyperparameters together, in one vectorized pass (one task for one process);
            the waiting trials are handed out as workers free up (:func:`plan_tasks`).
        checkpoint_every: a trial that trains alone checkpoints every this many steps, or
            ``"auto"`` (at most 2 % of its time: :class:`~descentlab.engine.loop.
            CheckpointClock`), or None (only where it stops); a trial stopped in an earlier
            session continues from its last checkpoint. Trials that checkpoint train alone:
            with a number, every trial longer than it; with ``"auto"``, the trials of models
            the vectorized path is not always used for
            (:data:`~descentlab.engine.multirun.VMAP_MODELS`: small models whose trials take
            seconds keep their vectorized groups, which keep no checkpoints).

    Use :meth:`submit` to queue a trial and :meth:`next_outcome` to get the next finished one
    (finished-before trials come back first, marked ``reused``). Use it as a context manager:
    leaving it stops the workers.
    """

    def __init__(
        self,
        store_path: str | os.PathLike[str],
        source: DataSource,
        *,
        workers: int = 1,
        threads: int = 1,
        vectorize: bool = False,
        checkpoint_every: int | str | None = None,
        nproc: int = 1,
    ) -> None:
        from descentlab.engine.loop import check_checkpoint_every

        check_checkpoint_every(checkpoint_every)
        self.checkpoint_every = checkpoint_every
        if nproc > 1 and (workers != 1 or vectorize):
            raise ValueError(
                f"nproc {nproc} trains each trial across processes, one trial at a time: "
                "workers=1 and vectorize=False"
            )
        self.nproc = nproc
        for name, value in (("workers", workers), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.store_path = str(store_path)
        self._store: Any = None
        self.source = source
        self.workers = workers
        self.threads = threads
        self.vectorize = bool(vectorize)
        self._ready: deque[TrialOutcome] = deque()
        self._local: deque[tuple[list[int], list[Trial]]] = deque()
        self._trials: dict[int, Trial] = {}  # sent, outcome not back yet
        self._waiting: list[Trial] = []  # submitted, not yet sent (see submit_many)
        self._running: dict[int, _Task] = {}  # sent tasks by their first trial's index
        self._done = [0.0, 0.0]  # seconds and estimated cost of the tasks finished
        self._next = 0
        self._procs: list[Any] = []
        self._tasks: Any = None
        self._results: Any = None
        self._parts: dict[int, list[dict[str, Any]]] = {}  # runs of tasks not done yet

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> TrialRunner:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # an interrupt that says which signal it was (compare's SIGTERM) is passed on as it
        self.close(abort=exc_type is not None, signum=getattr(exc, "signum", signal.SIGINT))

    @property
    def store(self) -> Any:
        """The store (opened, and its file created, at first use)."""
        if self._store is None:
            from descentlab.store import Store

            self._store = Store(self.store_path)
        return self._store

    def start(self) -> None:
        """Start the worker processes now where they would import the engine (``spawn``:
        they do it while you prepare the data); forked ones (:meth:`_start`) start with the
        first trial that trains, and a comparison whose trials are all stored starts none.
        Nothing is written before a trial is submitted."""
        if self.workers > 1 and not self._procs and not _forks(self.threads):
            self._start()

    def _start(self, device: Any = "cpu") -> None:
        """Start the worker processes: on the CPU with one thread each, forked from this
        process once it has imported and warmed up the engine (each costs milliseconds,
        not the seconds of its own imports; this process's stores are closed first, and
        reopen when next used); elsewhere (CUDA, several threads, no ``fork``) spawned."""
        fork = _forks(self.threads) and str(device) == "cpu"
        if fork:
            with _threads(1):
                _warm_up()  # once, here: the workers start warm
        ctx = mp.get_context("fork" if fork else "spawn")
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        # A worker starts with SIGINT and SIGTERM blocked (kept across fork and exec), then
        # ignores them: an abort while it is still starting must not print a
        # KeyboardInterrupt traceback from its bootstrap; the main process ends it. The
        # engine's own handler still ends a running trial as interrupted.
        args = (self.store_path, self.source, self.threads, self.checkpoint_every, not fork,
                sharing() or announcement_dir())  # fmt: skip
        queues = (self._tasks, self._results)

        def spawned() -> tuple[Any, ...]:
            # a spawned worker loads torch and the engine frozen, as a forked one starts (a
            # payload each: a shared tensor's handle is taken once)
            return (*spawn_payload(_worker_main, *args, preload=_WORKER_MODULES), *queues)

        with signals_blocked(), spawning():
            for _ in range(self.workers):
                p = ctx.Process(
                    target=_worker_main if fork else started_frozen,
                    args=(*queues, *args) if fork else spawned(),
                    # not daemonic: a trial reads a Dataset with the loader worker processes
                    # it asks for, seeded from the run (as in the main process), not without
                    # them; the worker still ends with this process (close, die_with_parent)
                    daemon=False,
                )
                p.start()
                self._procs.append(p)

    def close(self, *, abort: bool = False, signum: int = signal.SIGINT) -> None:
        """Stop the workers: after their queued trials, or (``abort``) at once -- queued
        trials are dropped and running ones interrupted with ``signum`` (the engine records
        them as ``interrupted``, stopped by that signal); a worker that does not exit within
        :data:`ABORT_SECONDS` is killed."""
        procs, self._procs = self._procs, []
        if procs:
            if abort:
                with contextlib.suppress(queue.Empty, OSError, ValueError):
                    while True:
                        self._tasks.get_nowait()
            for _ in procs:
                self._tasks.put(None)
            if abort and not self._running:  # no trial out there: nothing to record, end now
                for p in procs:
                    p.kill()
            elif abort:
                for p in procs:
                    if p.is_alive() and p.pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(p.pid, signum)
            # (an interrupted trial stops at its next step; one that does not within seconds
            # -- a hung loader worker under it -- is killed, and its own workers die with it)
            deadline = time.monotonic() + (ABORT_SECONDS if abort else 60.0)
            while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
                self._drain(0.05)  # (a worker exits once what it sent is read)
            killed = [p for p in procs if p.is_alive()]
            for p in killed:
                p.kill()
            for p in killed:
                p.join(1.0)
            self._drain(0.0)
            for q in (self._tasks, self._results):
                q.close()
                q.cancel_join_thread()
        for first, runs in list(self._parts.items()):  # a stop keeps every finished trial
            with contextlib.suppress(Exception):
                self._imported([self._trials[first + i] for i in range(len(runs))], runs)
        self._parts.clear()
        if self._store is not None:
            self._store.close()

    # -- work ------------------------------------------------------------------------------

    def _alone(self, trial: Trial) -> bool:
        """Whether ``trial`` trains alone to checkpoint (see the class notes)."""
        every = self.checkpoint_every
        if every is None:
            return False
        cfg = trial.config
        if every != "auto":
            return cfg.steps is None or cfg.steps > every
        from descentlab.engine.multirun import VMAP_MODELS

        model = cfg.model or getattr(self.source.load(), "default_model", None)
        return model not in VMAP_MODELS

    @property
    def pending(self) -> int:
        """Trials submitted whose outcome has not been taken yet."""
        return len(self._ready) + len(self._trials) + len(self._waiting)

    def submit(self, trial: Trial) -> None:
        """Queue ``trial`` (or its stored outcome, if it has finished before)."""
        self.submit_many([trial])

    def submit_many(self, trials: list[Trial]) -> None:
        """Queue ``trials`` (those finished before come back from the store).

        With ``vectorize``, trials wait until an outcome is asked for (:meth:`next_outcome`)
        and a worker is free: then the waiting trials -- of any optimizer, submitted at any
        time -- are grouped into the vectorized passes they can share (:func:`group_trials`)
        and each free worker gets one part (:func:`plan_tasks`): tuning trials first (their
        outcomes decide what is submitted next), the largest group first, cut by estimated
        cost (:func:`trial_cost`) so that the workers finish together. Where and with whom
        a trial trains never changes its numbers."""
        defers = self._defers
        for trial in trials:
            record = finished_run(self.store, trial, outcomes=True)
            if record is not None:
                summary = dict(record.summary or {})
                self._ready.append(TrialOutcome(trial, record.id, record.status, summary, True))
            else:
                self._waiting.append(trial)
        if not defers:
            self._flush()

    @property
    def _defers(self) -> bool:
        """Whether submitted trials wait until an outcome is asked for, to go out together
        (grouped for vectorized passes, or packed into a cluster's tasks), rather than being
        sent at once."""
        return self.vectorize

    @property
    def _holding(self) -> bool:
        """Whether waiting trials stay in this process until a worker is free (vectorized
        work, on this runner's own workers); otherwise they are sent off at once (one at a
        time, the workers' shared queue balances them; a cluster schedules its tasks)."""
        return self.vectorize and self.plans_work

    #: Whether this runner plans which worker trains what (False: the tasks go to a
    #: cluster's scheduler all at once, see ``RayTrialRunner``).
    plans_work: bool = True

    def _flush(self) -> None:
        """Send every waiting trial off: one at a time, or in vectorized groups."""
        todo, self._waiting = self._waiting, []
        groups = group_trials(todo, self._alone) if self.vectorize else [[t] for t in todo]
        for group in groups:
            self._send(group, sum(trial_cost(t) for t in group))

    def _schedule(self) -> None:
        """Give each free worker its part of the waiting trials (:func:`plan_tasks`)."""
        idle = self.workers - len(self._running)
        if idle <= 0 or not self._waiting:
            return
        now = time.monotonic()
        waiting = self._waiting
        costs = [trial_cost(t) for t in waiting]
        parts = plan_tasks(
            _group_positions(waiting, self._alone, pack=True),
            idle,
            cost=costs.__getitem__,
            urgent=lambda i: waiting[i].phase == "tune",
            busy=[self._remaining(task, now) for task in self._running.values()],
        )
        sent = {i for part in parts for i in part}
        self._waiting = [t for i, t in enumerate(waiting) if i not in sent]
        for part in parts:
            group = [waiting[i] for i in part]
            sizes = [1] * len(group) if self._trains_alone(group[0]) else None
            self._send(group, sum(costs[i] for i in part), sizes)

    def _remaining(self, task: _Task, now: float) -> float:
        """The estimated cost a running task has left: its cost less what the seconds since
        it was sent did at the rate of the finished tasks (all of it while none has)."""
        seconds, cost = self._done
        if seconds <= 0.0 or cost <= 0.0:
            return task.cost
        return max(0.0, task.cost - (now - task.sent) * cost / seconds)

    def _trains_alone(self, trial: Trial) -> bool:
        """Whether ``trial`` trains by itself, not in a vectorized pass."""
        group = trial.group if trial.record is not None else None
        if trial.record is None:
            from descentlab.engine import multirun

            group = multirun.group_of(trial.config)
        return group is None or self._alone(trial)

    def _send(self, group: list[Trial], cost: float, sizes: list[int] | None = None) -> None:
        """Send a task to where it runs: trials that train together (one vectorized pass, or
        one trial), or (``sizes``) parts that train one after another; ``cost``: their
        estimated cost (:func:`trial_cost`)."""
        indices = list(range(self._next, self._next + len(group)))
        self._next += len(group)
        self._trials.update(zip(indices, group, strict=True))
        self._running[indices[0]] = _Task(indices, cost, time.monotonic())
        self._dispatch_group(indices, group, sizes or [len(group)])

    def _resume_of(self, group: list[Trial]) -> dict[str, Any]:
        """How a task's trials checkpoint, and what is kept of each one stopped before
        (:mod:`~descentlab.experiments.ray_resume`)."""
        from descentlab.experiments import ray_resume

        folder = self._kept_folder  # (none kept: no trial of this store was ever stopped)
        kept = {} if not folder.is_dir() else {
            i: ray_resume.load_partial(folder, t) for i, t in enumerate(group)
        }  # fmt: skip
        return {"every": self.checkpoint_every,
                "kept": {i: k for i, k in kept.items() if k is not None}}  # fmt: skip

    @property
    def _kept_folder(self) -> Path:
        """Where running trials' checkpoints are kept (:mod:`.ray_resume`)."""
        return Path(self.store_path).parent / "checkpoints"

    def _dispatch_group(self, indices: list[int], group: list[Trial], sizes: list[int]) -> None:
        """Send a task (trials that train together, or ``sizes``' parts) to where it runs."""
        if self.workers == 1:
            self._local.append((indices, group, sizes))
            return
        if not self._procs:
            self._start(getattr(group[0].config, "device", "cpu"))
        self._tasks.put((indices, group, sizes, self._resume_of(group)))

    def _imported(self, trials: list[Trial], exports: list[dict[str, Any]]) -> list[TrialOutcome]:
        """A task's runs (:func:`run_task`), its finished ones written into the store in one
        transaction (this process is its one writer), and every trial's outcome: a trial
        stopped, or not reached, is ``interrupted`` (what is kept of it continues it later);
        what was kept of a finished one goes once it is in."""
        from descentlab.experiments import ray_resume

        store, out = self.store, []
        with store.transaction():
            for trial, run in itertools.zip_longest(trials, exports):
                if run is None or run["run"]["status"] not in FINISHED:
                    out.append(TrialOutcome(trial, None, "interrupted", {}))
                    continue
                run_id = store.import_run(run, artifacts=_place_files(store, run))
                summary = dict(run["run"]["summary"] or {})
                out.append(TrialOutcome(trial, run_id, run["run"]["status"], summary, False,
                                        run["seconds"]))  # fmt: skip
        for o in out:
            if o.run_id is not None:
                ray_resume.discard_partial(self._kept_folder, o.trial)
        return out

    def next_outcome(self) -> TrialOutcome:
        """The next finished trial (blocks until one is).

        Raises:
            TrialError: a trial failed with an error.
            RuntimeError: nothing is pending, or a worker process died.
        """
        if self._ready:
            return self._ready.popleft()
        if self._waiting:
            # Outcomes already back come first: the trials their callers submit next then
            # join the waiting ones in the same vectorized passes.
            self._poll()
            if self._ready:
                return self._ready.popleft()
            if self._holding:
                self._schedule()
            else:
                self._flush()
        if not self._trials:
            raise RuntimeError("no trial is pending")
        return self._collect()

    def _poll(self) -> None:
        """Move the outcomes that worker processes have finished to the ready queue (no
        waiting)."""
        while self.workers > 1 and self._procs:
            try:
                item = self._results.get_nowait()
            except queue.Empty:
                return
            self._take(item)

    def _run_here(
        self, group: list[Trial], sizes: list[int], done: list[dict[str, Any]]
    ) -> list[Any]:
        """A task trained in this process: as a worker trains it, each part's runs added to
        ``done`` as it ends (across processes with ``nproc``: straight into the store, rank
        0 writing)."""
        with _threads(self.threads):
            if self.nproc > 1:
                return _execute_group(self.store, self.source, group, self.checkpoint_every,
                                      nproc=self.nproc)  # fmt: skip
            from descentlab.experiments.ray_resume import CheckpointKeeper

            save = CheckpointKeeper(str(self._kept_folder)).save
            resume = self._resume_of(group)
            return run_task(self.source, group, sizes, resume, save, lambda _, p: done.extend(p))

    def _drain(self, timeout: float) -> None:
        """Hold the parts' runs that workers sent (what else they sent is dropped: the
        command is stopping)."""
        while True:
            try:
                item = self._results.get(timeout=timeout) if timeout else self._results.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):
                return
            if item[0] == "part":
                self._parts.setdefault(item[1][0], []).extend(item[3])
            timeout = 0.0

    def _collect(self) -> TrialOutcome:
        """Wait for the next trial that runs here or in a worker to finish."""
        if self.workers == 1:
            indices, group, sizes = self._local.popleft()
            runs: list[dict[str, Any]] = []
            try:
                outcomes = self._run_here(group, sizes, runs)
            except BaseException as exc:  # the task is over: its error goes to the caller
                with contextlib.suppress(Exception):  # (its finished trials are kept)
                    self._imported(group[: len(runs)], runs)
                self._running.pop(indices[0], None)
                for index in indices:
                    self._trials.pop(index, None)
                if genuine_interrupt(exc) or isinstance(exc, GeneratorExit) or _own_error(exc):
                    raise
                # user code's error, its own KeyboardInterrupt (not Ctrl-C), sys.exit() or
                # os._exit(): a failed trial, as in a worker
                failed = TrialError(f"trial {group[0].config.name!r} failed: {describe(exc)}")
                failed.no_space = out_of_space(exc)
                raise failed from None
            self._finished(indices, outcomes, None)
            return self._ready.popleft()
        while True:
            try:
                item = self._results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(
                        f"a worker process exited unexpectedly (exit code {dead[0].exitcode}); "
                        "see its traceback above. Worker processes are spawned: a script run "
                        "from stdin, or one that needs its own functions in the workers, must "
                        "start work inside `if __name__ == '__main__':` -- or use workers=1"
                    ) from None
                continue
            self._take(item)
            if self._ready:
                return self._ready.popleft()

    def _take(self, item: tuple[Any, ...]) -> None:
        """A worker's message on its task: a part's runs (held until the task is done), the
        task done, or its error (the runs of its finished trials are kept all the same)."""
        kind, indices = item[0], item[1]
        if kind == "part":
            self._parts.setdefault(indices[0], []).extend(item[3])
            return
        runs = self._parts.pop(indices[0], [])
        if kind == "done":
            self._finished(indices, runs, None)
        else:
            self._imported([self._trials[i] for i in indices[: len(runs)]], runs)
            self._finished(indices, None, item[2], item[3])

    def _finished(
        self,
        indices: list[int],
        outcomes: list[TrialOutcome] | list[dict[str, Any]] | None,
        error: str | None,
        no_space: bool = False,
    ) -> None:
        """A task is back: its outcomes (or its runs, to import) join the ready queue; its
        seconds teach the rate at which running tasks are estimated to progress."""
        task = self._running.pop(indices[0], None)
        trials = [self._trials.pop(i) for i in indices]
        if error is not None or outcomes is None:
            failed = TrialError(f"trial {trials[0].config.name!r} failed: {error}")
            failed.no_space = no_space  # a file could not be written for lack of space
            raise failed
        if outcomes and isinstance(outcomes[0], dict):
            outcomes = self._imported(trials, outcomes)  # type: ignore[arg-type]
        seconds = sum(o.seconds for o in outcomes)  # the worker's own clock: no start-up
        if task is not None and seconds > 0.0:
            self._done[0] += seconds
            self._done[1] += task.cost
        self._ready.extend(outcomes)


def _own_error(exc: BaseException) -> bool:
    """An error that says itself what was wrong (a bad value, a file, the store): it reaches
    the command as it is; anything else a trial raises is the trial's failure."""
    return isinstance(exc, Exception) and user_error(exc) is not None


@dataclass
class _Task:
    """Trials sent off to train together: their indices, estimated cost and when sent."""

    indices: list[int]
    cost: float
    sent: float


def mark_orphans(store: Any, names: Any = None) -> int:
    """Mark runs left ``running`` by a process that no longer exists as ``interrupted``.

    A killed sweep leaves the trial it was running in that state; the next sweep runs the
    trial again as a new run, and this keeps the store's statuses truthful. Only runs started
    on this machine are checked.

    Args:
        store: the store.
        names: only runs whose name satisfies ``names(name)`` (None: all).

    Returns:
        How many runs were marked.
    """
    import socket

    host = socket.gethostname()
    marked = 0
    for rec in store.list_runs(status="running"):
        if names is not None and not names(rec.name):
            continue
        pid = rec.provenance.get("pid")
        if rec.provenance.get("hostname") != host or not isinstance(pid, int):
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        with contextlib.suppress(ValueError, KeyError):
            store.set_status(
                rec.id, "interrupted", message=f"process {pid} ended", expect="running"
            )
            marked += 1
    return marked
