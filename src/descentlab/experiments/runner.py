"""The trial runner: a queue of trials, worker processes, their outcomes written to the store.

:class:`TrialRunner` runs trials in this process (``workers=1``) or in worker processes
of the engine's one pool (:class:`~descentlab.engine.procpool.WorkerPool`: each
single-threaded, which is fastest for small models and keeps results bit-identical wherever a
trial runs; on the CPU forked from this process once, when the first trial to train is sent,
elsewhere spawned). A worker trains against a scratch store and sends its runs back
exported (:func:`~descentlab.experiments.execution.run_task`); this process, the store's one
writer, imports a task's runs in one transaction. Vectorized work waits in the main process
until a worker is free, then goes out in parts planned so that the workers finish together
(:func:`~descentlab.experiments.packing.plan_tasks`, tuning trials first). On an interrupt
the workers are asked to stop (SIGINT: the engine ends the current run as ``interrupted``),
then killed if they do not exit. A worker exits as soon as the main process dies, even one
killed with ``kill -9``.

Example:
    >>> import tempfile, os
    >>> from descentlab.engine.config import RunConfig
    >>> from descentlab.experiments.trial import DataSource, Trial
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
import itertools
import math
import multiprocessing as mp
import os
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descentlab._files import out_of_space
from descentlab._usercode import (
    UserCodeFailed,
    describe,
    failed_as,
    genuine_interrupt,
    out_of_memory,
    user_call,
    user_error,
)
from descentlab.constraints import POSITIVE_INT, check
from descentlab.engine.scratch import place_files
from descentlab.engine.trial_lines import lines_on
from descentlab.experiments.execution import execute_group, run_task, torch_threads
from descentlab.experiments.packing import plan_tasks
from descentlab.experiments.resume import (
    CheckpointKeeper,
    discard_partial,
    load_partial,
    unfinished_runs,
)
from descentlab.experiments.trial import (
    FINISHED,
    DataSource,
    Trial,
    TrialError,
    TrialOutcome,
    finished_run,
)

# -- what the runner reads of its trials: their groups and costs ----------------------------


def group_trials(
    trials: list[Trial], alone: Callable[[Trial], bool] | None = None
) -> list[list[Trial]]:
    """``trials`` split into the groups that can train in one vectorized pass: same data and
    same shared fields (:func:`~descentlab.engine.multirun.train_many`'s grouping: the runs
    may differ in seed, hyperparameters and name). Order is kept within and between groups
    (a group stands where its first trial stood). ``alone(trial)``: trials that train alone
    all the same (they checkpoint: a vectorized group keeps no checkpoint)."""
    return [[trials[i] for i in g] for g in group_positions(trials, alone)]


def group_positions(
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


_INSTALL_HINT = "the Ray backend needs Ray: pip install 'descentlab[ray]'"


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here (e.g. Ray is not installed)."""


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
        check("workers", workers, POSITIVE_INT)
        check("threads", threads, POSITIVE_INT)
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
        self._pool: Any = None  # the worker processes (engine/procpool.py), once started
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
        if self.workers > 1 and self._pool is None and not _forks(self.threads):
            self._start()

    def _start(self, device: Any = "cpu") -> None:
        """Start the worker processes: on the CPU with one thread each, forked from this
        process once it has imported and warmed up the engine (each costs milliseconds,
        not the seconds of its own imports; this process's stores are closed first, and
        reopen when next used); elsewhere (CUDA, several threads, no ``fork``) spawned."""
        fork = _forks(self.threads) and str(device) == "cpu"
        if fork:
            with torch_threads(1):
                _warm_up()  # once, here: the workers start warm
        from descentlab.engine.procpool import WorkerPool

        # the worker knows where checkpoints are kept, not where the store is: this process
        # is the store's one writer (tests/test_trial_room.py)
        args = (str(self._kept_folder), self.source, not fork, lines_on())
        self._pool = WorkerPool(self.workers, _worker_setup, args, fork=fork,
                                preload=_WORKER_MODULES, threads=self.threads)  # fmt: skip

    def close(self, *, abort: bool = False, signum: int = signal.SIGINT) -> None:
        """Stop the workers: after their queued trials, or (``abort``) at once -- queued
        trials are dropped and running ones interrupted with ``signum`` (the engine records
        them as ``interrupted``, stopped by that signal); a worker that does not exit within
        :data:`~descentlab.engine.procpool.ABORT_SECONDS` is killed."""
        pool, self._pool = self._pool, None
        if pool is not None:  # (no trial out there: nothing to record, the workers end now)
            pool.close(abort=abort, running=bool(self._running), signum=signum, keep=self._keep)
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
            group_positions(waiting, self._alone, pack=True),
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
        (:mod:`~descentlab.experiments.resume`)."""
        folder = self._kept_folder  # (none kept: no trial of this store was ever stopped)
        kept = {} if not folder.is_dir() else {
            i: load_partial(folder, t) for i, t in enumerate(group)
        }  # fmt: skip
        return {"every": self.checkpoint_every,
                "kept": {i: k for i, k in kept.items() if k is not None}}  # fmt: skip

    @property
    def _kept_folder(self) -> Path:
        """Where running trials' checkpoints are kept (:mod:`.resume`)."""
        return Path(self.store_path).parent / "checkpoints"

    def _dispatch_group(self, indices: list[int], group: list[Trial], sizes: list[int]) -> None:
        """Send a task (trials that train together, or ``sizes``' parts) to where it runs."""
        if self.workers == 1:
            self._local.append((indices, group, sizes))
            return
        if self._pool is None:
            self._start(getattr(group[0].config, "device", "cpu"))
        self._pool.put(indices, _train_task, group, sizes, self._resume_of(group))

    def _imported(self, trials: list[Trial], exports: list[dict[str, Any]]) -> list[TrialOutcome]:
        """A task's runs (:func:`run_task`), its finished ones written into the store in one
        transaction (this process is its one writer), and every trial's outcome: a trial
        stopped, or not reached, is ``interrupted`` (what is kept of it continues it later);
        what was kept of a finished one goes once it is in."""
        store, out = self.store, []
        with store.transaction():
            for trial, run in itertools.zip_longest(trials, exports):
                if run is None or run["run"]["status"] not in FINISHED:
                    out.append(TrialOutcome(trial, None, "interrupted", {}))
                    continue
                run_id = store.import_run(run, artifacts=place_files(store, run))
                summary = dict(run["run"]["summary"] or {})
                out.append(TrialOutcome(trial, run_id, run["run"]["status"], summary, False,
                                        run["seconds"]))  # fmt: skip
        for o in out:
            if o.run_id is not None:
                discard_partial(self._kept_folder, o.trial)
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
        """Move the outcomes that workers have finished to the ready queue (no waiting)."""
        while self._pool is not None and (item := self._pool.get(wait=False)) is not None:
            self._take(item)

    def _run_here(
        self, group: list[Trial], sizes: list[int], done: list[dict[str, Any]]
    ) -> list[Any]:
        """A task trained in this process: as a worker trains it, each part's runs added to
        ``done`` as it ends (across processes with ``nproc``: straight into the store, their
        launcher writing)."""
        with torch_threads(self.threads):
            if self.nproc > 1:  # (the trials' stopped runs are this store's)
                ids = unfinished_runs(self.store, group)
                return execute_group(self.store, self.source, group, self.checkpoint_every,
                                     nproc=self.nproc, resume_ids=ids)  # fmt: skip
            save = CheckpointKeeper(str(self._kept_folder)).save
            resume = self._resume_of(group)
            return run_task(self.source, group, sizes, resume, save, lambda _, p: done.extend(p))

    def _keep(self, item: tuple[Any, ...]) -> None:
        """Hold the parts' runs that workers sent as they stop (what else they sent is
        dropped: the command is stopping)."""
        if item[0] == "part":
            self._parts.setdefault(item[1][0], []).extend(item[2])

    def _collect(self) -> TrialOutcome:
        """Wait for the next trial that runs here or in a worker to finish."""
        if self.workers == 1:
            indices, group, sizes = self._local.popleft()
            runs: list[dict[str, Any]] = []
            try:
                outcomes = self._run_here(group, sizes, runs)
            except BaseException as exc:  # the task is over
                stops = genuine_interrupt(exc) or isinstance(exc, GeneratorExit)
                if not stops and _trial_failure(exc, user_call(exc)):
                    # user code's error, its own KeyboardInterrupt (not Ctrl-C), sys.exit() or
                    # os._exit(): a failed trial, as in a worker; the comparison goes on
                    self._failed(indices, runs, *failed_as(exc), _said(exc))
                    return self._ready.popleft()
                with contextlib.suppress(Exception):  # (its finished trials are kept)
                    self._imported(group[: len(runs)], runs)
                self._running.pop(indices[0], None)
                for index in indices:
                    self._trials.pop(index, None)
                if stops or _own_error(exc):
                    raise
                failed = TrialError(f"trial {group[0].config.name!r} failed: {describe(exc)}")
                failed.no_space = out_of_space(exc)
                raise failed from None
            self._finished(indices, outcomes, None)
            return self._ready.popleft()
        while True:
            self._take(self._pool.get())
            if self._ready:
                return self._ready.popleft()

    def _take(self, item: tuple[Any, ...]) -> None:
        """A worker's message on its task: a part's runs (held until the task is done), the
        task done, or its error (the runs of its finished trials are kept all the same)."""
        kind, indices = item[0], item[1]
        if kind == "part":
            return self._keep(item)
        runs = self._parts.pop(indices[0], [])
        if kind == "done":
            self._finished(indices, runs, None)
            return
        exc, text, no_space = item[2], item[3], item[4]
        way, where = (item[5], item[6]) if len(item) > 6 else (None, None)
        if way is not None and not no_space and (exc is None or _trial_failure(exc, where)):
            # user code failed in the worker (or the worker running it died): a failed trial
            self._failed(indices, runs, text.splitlines()[0], way, _said(exc))
            return
        self._imported([self._trials[i] for i in indices[: len(runs)]], runs)
        own = exc if _own_error(exc) else None  # (said as it is, as in this process)
        self._finished(indices, None, text, no_space, own)

    def _failed(
        self,
        indices: list[int],
        runs: list[dict[str, Any]],
        cause: str,
        way: str,
        said: str | None = None,
    ) -> None:
        """A task that failed: its finished trials are kept; the first one that did not
        finish is a failed trial, recorded with its ``cause`` (one line, its run's message;
        ``said``: the whole line its kind said, naming the trial) and counted like a diverged
        one; the task's trials after it are trained again."""
        self._running.pop(indices[0], None)
        trials = [self._trials.pop(i) for i in indices]
        done = [o for o in self._imported(trials[: len(runs)], runs) if o.run_id is not None]
        self._ready.extend(done)
        failing, *again = trials[len(done) :]
        self._ready.append(self._record_failure(failing, cause, way, said))
        self._waiting.extend(again)

    def _record_failure(
        self, trial: Trial, cause: str, way: str, said: str | None = None
    ) -> TrialOutcome:
        """``trial``'s failed run in the store, its ``cause`` as its message (the comparison
        says it, once for the trials that failed the same way)."""
        from descentlab.store import provenance

        cfg, store = trial.config, self.store
        with store.transaction():
            run_id = store.create_run(
                trial.record_config(), name=cfg.name, seed=cfg.seed, status="failed",
                provenance=provenance(cfg.seed, failed=way),
            )  # fmt: skip
            store.set_status(run_id, "failed", message=cause)
        return TrialOutcome(trial, run_id, "failed", {}, cause=cause, way=way, said=said)

    def pending_of(self, label: str, phase: str) -> int:
        """Trials of the optimizer ``label`` in ``phase`` submitted whose outcome has not been
        taken."""
        trials = [o.trial for o in self._ready] + list(self._trials.values()) + self._waiting
        return sum(t.label == label and t.phase == phase for t in trials)

    def _finished(
        self,
        indices: list[int],
        outcomes: list[TrialOutcome] | list[dict[str, Any]] | None,
        error: str | None,
        no_space: bool = False,
        own: BaseException | None = None,
    ) -> None:
        """A task is back: its outcomes (or its runs, to import) join the ready queue; its
        seconds teach the rate at which running tasks are estimated to progress."""
        task = self._running.pop(indices[0], None)
        trials = [self._trials.pop(i) for i in indices]
        if own is not None:
            raise own
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


@dataclass
class _Task:
    """Trials sent off to train together: their indices, estimated cost and when sent."""

    indices: list[int]
    cost: float
    sent: float


def _trial_failure(exc: BaseException, where: str | None) -> bool:
    """Whether ``exc`` fails its trial alone (the comparison goes on): user code's error --
    raised where user code runs (``where``, its frame), or a ``SystemExit`` or a
    ``KeyboardInterrupt`` of its own -- but not one that says itself what was wrong with the
    command's input (a bad value, a file, the store) raised by descentlab, nor a lack of space
    or memory (the command's to report)."""
    if out_of_space(exc) or out_of_memory(exc):
        return False
    if not isinstance(exc, Exception) or isinstance(exc, UserCodeFailed):
        return True
    return not _own_error(exc) or where is not None


def _said(exc: BaseException | None) -> str | None:
    """The whole line a trial's kind said of user code's failure (naming the trial)."""
    return str(exc) if isinstance(exc, UserCodeFailed) else None


def trial_words(trial: Trial) -> str:
    """A trial in a message: its name and its hyperparameters, ``'tune:sgd:2' (lr 10)``."""
    hyper = getattr(trial.config, "hyper", None) or {}
    said = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in hyper.items())
    return f"{trial.config.name!r}" + (f" ({said})" if said else "")


def _own_error(exc: BaseException) -> bool:
    """An error that says itself what was wrong (a bad value, a file, the store): it reaches
    the command as it is; anything else a trial raises is the trial's failure."""
    return isinstance(exc, Exception) and user_error(exc) is not None


#: a trial worker's data and where its trials' checkpoints go (:func:`_worker_setup`)
_WORKER: list[Any] = []


def _worker_setup(kept: str, source: DataSource, warm_up: bool, lines: bool = False) -> None:
    """A trial worker's start; spawned, it warms up while the main process prepares the data
    (a fresh process spends seconds on the engine's imports at its first run). ``lines``: its
    trials print their progress, as the main process's do (their lines reach its stderr)."""
    from descentlab.engine.trial_lines import show_lines

    show_lines(lines)
    _WORKER[:] = [source, CheckpointKeeper(kept).save]
    if warm_up:  # (a forked worker starts warm)
        _warm_up()


def _train_task(trials: list[Trial], sizes: list[int], resume: dict[str, Any]) -> None:
    """A task in a worker: each part's runs go back as it ends (a stop keeps them); the main
    process, the store's one writer, records the task's runs together once it is done."""
    from descentlab.engine.procpool import report

    source, save = _WORKER
    run_task(source, trials, sizes, resume, save, lambda _, part: report(part))


#: what a spawned worker loads (frozen: :func:`~descentlab._osutil.started_frozen`) before
#: its arguments: torch, the engine's runs and vectorized passes
_WORKER_MODULES = ("descentlab.engine.run", "descentlab.engine.multirun")


def _forks(threads: int) -> bool:
    """Whether worker processes are forked from this one (see :meth:`TrialRunner._start`):
    where ``fork`` exists, each worker trains with one thread (a process forked after
    OpenMP started threads must not start its own), and no CUDA device is in use here."""
    if threads != 1 or "fork" not in mp.get_all_start_methods() or sys.platform == "darwin":
        return False
    torch = sys.modules.get("torch")
    return torch is None or not torch.cuda.is_initialized()


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
