"""The one training loop: K >= 1 runs in lockstep, a single run being K = 1.

:class:`Loop` owns what every run of :func:`~descentlab.engine.run.train` and every
vectorized group of :func:`~descentlab.engine.multirun.train_many` does the same way: the
batches (:class:`Batches`), the step count and the evaluation cadence, each run's records
(metrics, status, where it stopped), divergence, loss-driven schedules' turns, early stopping,
checkpoints and stop requests. What differs -- how the K runs' losses and gradients are
computed and their optimizers stepped, and how they are evaluated -- is a :class:`Stepper`
the loop is given: one model and its optimizer (:class:`~descentlab.engine.run.OneModel`), or
K stacked models (:class:`~descentlab.engine.vectorized.Stacked`, whose gradients come from
``torch.func.vmap``, a traced graph of it, or the compiled CNN kernel of
:mod:`descentlab.engine.vcnn`).

.. code-block:: text

    evaluate every run (step 0)
    for step = 1 .. T:
        batch  <- Batches.next()             (each run's own data order, or one shared order)
        losses <- stepper.step(batch)        non-finite -> that run "diverged", frozen
        every eval_every steps and at T: each live run's train/val metrics -> its record;
                                         non-finite -> "diverged"; loss-driven schedules;
                                         early stopping -> "completed", frozen
        every checkpoint_every steps: checkpoint; a stop request ends the loop here
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from descentlab._usercode import genuine_interrupt
from descentlab.engine.building import Built
from descentlab.engine.config import RunConfig
from descentlab.engine.outcome import Row, RunResult, series, summarize
from descentlab.engine.seeds import stream_seed
from descentlab.engine.splits import TensorSplit
from descentlab.store import RunWriter

__all__ = [
    "AUTO_CHECKPOINT_FACTOR",
    "AUTO_CHECKPOINT_SECONDS",
    "Batch",
    "Batches",
    "CheckpointClock",
    "Diverged",
    "Loop",
    "Stepper",
    "check_checkpoint_every",
    "check_until_step",
]

#: one step's batch: its inputs, targets and their vmap dimension (None: one batch shared)
Batch = tuple[Tensor, Tensor, int | None]
#: told of a run whose training loss is not finite, before any update: ``(run, loss)``
Diverged = Callable[[int, float], None]

#: ``checkpoint_every="auto"``: a checkpoint once the time since the run (re)started is at
#: least this many times what its checkpoints took to write so far plus the last one again
#: (writing then costs 1/(1 + 99), 1 %, of the time where writes take as long as the last;
#: measured under 2 % with the varying writes of a loaded disk, the first one included) ...
AUTO_CHECKPOINT_FACTOR = 99.0
#: ... and at least this many seconds after the last one (a run shorter than this writes none
#: but its last; a kill loses at most about this much of a run's training).
AUTO_CHECKPOINT_SECONDS = 10.0
#: A run's metrics go to the store at most this often while it trains (and before each of its
#: checkpoints, and with its status at its end, in one transaction): a run of seconds writes
#: once, a long run shows its curve as it goes.
RECORD_SECONDS = 10.0


class Batches:
    """The K runs' data order and each step's batch: every run has its own data-order and
    augmentation generators (streams 1 and 2 of its seed); runs that share their seed share
    one order, and their batch is one tensor (vmap dimension None), else each run's batch is
    stacked along a leading dimension (0). A new permutation each epoch; full-batch runs
    (``batch_size=None``) take the whole training set at every step."""

    def __init__(
        self, seeds: Sequence[int], x: Tensor, y: Tensor, batch_size: int | None, drop_last: bool
    ) -> None:
        self.x, self.y = x, y
        self.n = int(x.shape[0])
        self.k = len(seeds)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.shared = all(s == seeds[0] for s in seeds)
        self.data_gens = [torch.Generator().manual_seed(stream_seed(s, 1)) for s in seeds]
        self.aug_gens = [torch.Generator().manual_seed(stream_seed(s, 2)) for s in seeds]
        self.epoch = 0
        #: this epoch's permutation: (n,) for a shared order, (K, n) otherwise
        self.perm: Tensor | None = None
        self.pos = 0
        self._xs, self._ys = x, y  # a shared order's epoch, gathered once

    def next(self) -> Batch:
        """The step's inputs and targets, and their vmap dimension (None: one shared batch)."""
        bs = self.batch_size
        if bs is None:
            self.epoch += 1
            return self.x, self.y, None
        n = self.n
        if self.perm is None or self.pos >= n or (self.drop_last and self.pos + bs > n):
            if self.shared:
                self._order(torch.randperm(n, generator=self.data_gens[0]))
            else:
                self.perm = torch.stack([torch.randperm(n, generator=g) for g in self.data_gens])
            self.epoch += 1
            self.pos = 0
        start = self.pos
        self.pos = stop = start + bs
        if self.shared:
            return self._xs[start:stop], self._ys[start:stop], None
        assert self.perm is not None
        idx = self.perm[:, start:stop].to(self.x.device)  # (K, B)
        # index_select of the flattened (K, B) indices: a third of the time of x[idx]
        flat = idx.reshape(-1)
        x = self.x.index_select(0, flat).view(*idx.shape, *self.x.shape[1:])
        y = self.y.index_select(0, flat).view(*idx.shape, *self.y.shape[1:])
        return x, y, 0

    def _order(self, perm: Tensor) -> None:
        # gathering the epoch once makes each batch a cheap slice
        self.perm = perm
        on = perm.to(self.x.device)
        self._xs, self._ys = self.x[on], self.y[on]

    def keep(self, rows: Sequence[int]) -> None:
        """Only the runs at positions ``rows`` (increasing) go on: their generators and their
        rows of this epoch's permutation, unchanged (each run's data order stays its own)."""
        if not self.shared:  # (a shared order is drawn by the first generator, kept)
            self.data_gens = [self.data_gens[r] for r in rows]
        self.aug_gens = [self.aug_gens[r] for r in rows]
        self.k = len(rows)
        if not self.shared and self.perm is not None and rows:
            self.perm = self.perm[torch.tensor(rows)]

    @property
    def epochs_done(self) -> float:
        bs = self.batch_size
        if bs is None or self.perm is None:
            return float(self.epoch)
        n = self.n
        if self.drop_last:
            n -= n % bs
        return self.epoch - 1 + min(self.pos, n) / n

    def state_dict(self) -> dict[str, Any]:
        """The position in the data order (one run's: its generators are the caller's)."""
        return {"epoch": self.epoch, "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, order: dict[str, Any]) -> None:
        self.epoch, self.pos = int(order["epoch"]), int(order["pos"])
        if order["perm"] is not None:
            self._order(order["perm"])


@functools.singledispatch
def training_batches(
    split: Any, seeds: Sequence[int], batch_size: int | None, drop_last: bool
) -> Any:
    """The training batches of runs on ``split`` (a :class:`~descentlab.engine.splits.Split`):
    a split that draws its own (a stream's loader,
    :meth:`~descentlab.engine.streaming.StreamedSplit.training_batches`) ..."""
    return split.training_batches(seeds, batch_size, drop_last)


@training_batches.register(TensorSplit)
def _(split: TensorSplit, seeds: Sequence[int], batch_size: int | None, drop_last: bool) -> Any:
    # ... or tensors in memory, ordered here
    return Batches(seeds, split.x, split.y, batch_size, drop_last)


def check_checkpoint_every(every: Any) -> None:
    """Raise ``ValueError`` unless ``every`` is None, ``"auto"`` or a positive integer."""
    if (
        every is not None
        and every != "auto"
        and (isinstance(every, bool) or not isinstance(every, int) or every < 1)
    ):
        raise ValueError(f"checkpoint_every must be a positive integer or 'auto', got {every!r}")


def check_until_step(until_step: Any) -> None:
    """Raise ``ValueError`` unless ``until_step`` is None or a positive integer."""
    if until_step is not None and (
        isinstance(until_step, bool) or not isinstance(until_step, int) or until_step < 1
    ):
        raise ValueError(f"until_step must be a positive integer, got {until_step!r}")


class CheckpointClock:
    """When a run writes its checkpoints: every ``every`` steps, or (``"auto"``) once the
    time since the last checkpoint (or the start) is at least :data:`AUTO_CHECKPOINT_SECONDS`
    and the time since the start at least :data:`AUTO_CHECKPOINT_FACTOR` times the seconds
    written so far plus the last write again: writing costs about 1 % of the time (at most 2 %
    where writes vary), the first checkpoint (written before any was timed) aside. Where
    checkpoints fall never changes a run's numbers.

    Example:
        >>> clock = CheckpointClock(5)
        >>> [s for s in range(1, 16) if clock(s)]
        [5, 10, 15]
    """

    def __init__(self, every: int | str) -> None:
        self.every = every
        self.start = self.since = time.perf_counter()
        self.cost = 0.0  # the last write's seconds
        self.spent = 0.0  # every write's seconds

    def __call__(self, step: int) -> bool:
        """Whether a checkpoint is due after ``step``."""
        if self.every != "auto":
            return step % int(self.every) == 0
        now = time.perf_counter()
        if now - self.since < AUTO_CHECKPOINT_SECONDS:
            return False
        return now - self.start >= AUTO_CHECKPOINT_FACTOR * (self.spent + self.cost)

    def written(self, seconds: float) -> None:
        """A checkpoint took ``seconds`` to write; the next one is counted from now."""
        self.cost = seconds
        self.spent += seconds
        self.since = time.perf_counter()


class Stepper(Protocol):
    """What the loop is given: how K runs take a step and are measured."""

    def train_mode(self) -> None:
        """Put the model(s) (and optimizers with modes) in training mode."""

    def step(self, batch: Batch, frozen: Sequence[bool], diverged: Diverged) -> Any:
        """One optimizer step of every run not ``frozen`` on ``batch`` (with gradient
        accumulation, a list of the step's micro-batches); a run whose training loss is not
        finite is reported to ``diverged(i, loss)`` before any update. Returns the K losses
        to average into ``train/objective`` (a float for one run, else a float64 tensor)."""

    def metrics(self) -> list[dict[str, float | None]]:
        """Each run's ``train/*`` and ``val/*`` metrics now (None: a metric it does not give)."""

    def hyper(self) -> list[dict[str, float]]:
        """Each run's current values of its scheduled hyperparameters."""

    def after_evaluation(self, i: int, values: dict[str, float]) -> None:
        """Run ``i``'s loss-driven schedules take their turn on its metrics."""

    def early_update(self, i: int, early: Any, value: float, step: int) -> bool:
        """Run ``i``'s early stopping sees ``value`` (the best weights kept as it asks);
        True when it stops the run."""

    def keep(self, i: int) -> Any:
        """Run ``i``'s weights as they are now (kept when it stops while others go on)."""

    def restore(self, i: int, final: Any, best: bool) -> None:
        """Put run ``i``'s result weights into its model: the best ones if ``best``."""

    def evaluating(self, i: int) -> contextlib.AbstractContextManager[Any]:
        """The context run ``i``'s model is evaluated in after the loop (summary, test)."""

    #: each run's own forward/backward and optimizer time (:mod:`descentlab.engine.timing`)
    clock: Any


class Loop:
    """K runs trained in lockstep by one :class:`Stepper` (see the module docstring).

    Args:
        configs: the runs' configs (they share batch size, length, evaluation cadence).
        builts: the runs as :func:`~descentlab.engine.building.build` built them.
        stepper: how they step and are measured (None: set :attr:`stepper` before
            :meth:`run`; a single run's stepper takes the loop's augmentation generator).
        batches: their data order.
    """

    def __init__(
        self,
        configs: Sequence[RunConfig],
        builts: Sequence[Built],
        stepper: Stepper | None,
        batches: Batches,
    ) -> None:
        self.configs, self.builts = list(configs), list(builts)
        self.stepper, self.batches = stepper, batches
        self.k = k = len(self.configs)
        self.total = self.builts[0].total_steps
        self.eval_every = self.configs[0].eval_every or max(1, self.total // 25)
        self.step = 0
        self.elapsed = 0.0
        self.train_loss_sum: Any = 0.0
        self.train_loss_count = 0
        self.store: RunWriter | None = None
        self.run_ids: list[int | None] = [None] * k
        self.history: list[list[Row]] = [[] for _ in range(k)]
        self.unwritten: list[list[Row]] = [[] for _ in range(k)]  # not in the store yet
        self.written_at = time.monotonic()
        self.status: list[str | None] = [None] * k
        self.message: list[str | None] = [None] * k
        self.stop_step = [0] * k
        self.stop_epochs = [0.0] * k
        self.final: list[Any] = [None] * k
        self.frozen = [False] * k
        #: each run's last evaluation's train/val metrics and its step (the summary of a run
        #: that ends there reuses them: the same weights, the same numbers)
        self.last_measured: list[tuple[int, dict[str, float]] | None] = [None] * k
        #: the runs taken out of the stepper's pass (:meth:`drop`): their records end there
        self.dropped: set[int] = set()
        #: checkpoints where the configs ask for none: every this many steps, or ``"auto"``
        #: (see :data:`AUTO_CHECKPOINT_FACTOR`); set by whoever executes the run (a
        #: comparison's trials), not part of the runs' configs
        self.checkpoint_every: int | str | None = None
        #: whether a run that has ended writes its checkpoint (False: a comparison's trial,
        #: never continued once finished)
        self.keep_checkpoint = True

    @classmethod
    def single(cls, config: RunConfig, built: Built) -> Loop:
        """The loop over one run, in its own data order; its stepper is set before :meth:`run`."""
        batches = training_batches(built.train_split, [config.seed], config.batch_size,
                                   config.drop_last)  # fmt: skip
        return cls([config], [built], None, batches)

    # -- records --------------------------------------------------------------------------

    def log(self, i: int, rows: list[Row]) -> None:
        self.history[i].extend(rows)
        if self.store is not None:
            self.unwritten[i].extend(rows)

    def write(self) -> None:
        """Every run's metrics not yet in the store, written (one transaction)."""
        self.written_at = time.monotonic()
        if self.store is None or not any(self.unwritten):
            return
        with self.store.transaction():
            for i, rows in enumerate(self.unwritten):
                if rows:
                    self.store.log_metrics(self.run_ids[i], rows)
        self.unwritten = [[] for _ in range(self.k)]

    def _end(self, i: int, status: str, message: str | None, step: int) -> None:
        """End run ``i`` at ``step``: its result is its weights now. The others go on."""
        self.status[i], self.message[i], self.stop_step[i] = status, message, step
        self.stop_epochs[i] = self.batches.epochs_done
        self.final[i] = self.stepper.keep(i)
        self.frozen[i] = True

    def _diverged(self, i: int, value: float) -> None:
        step = self.step + 1  # the failed step counts
        self.log(i, [(step, "train", "objective", value)])
        self._end(i, "diverged", f"non-finite training loss ({value}) at step {step}", step)

    # -- evaluation -----------------------------------------------------------------------

    def _evaluation_rows(self) -> list[list[Row]]:
        step = self.step
        metrics = self.stepper.metrics()
        mean_loss: list[float] | None = None
        if self.train_loss_count:
            mean = self.train_loss_sum / self.train_loss_count
            mean_loss = mean.tolist() if isinstance(mean, Tensor) else [mean]
        self.train_loss_sum, self.train_loss_count = 0.0, 0
        epochs = self.batches.epochs_done
        hyper = self.stepper.hyper()
        own = self.stepper.clock.totals()
        out: list[list[Row]] = []
        for i in range(self.k):
            if i in self.dropped:
                out.append([])
                continue
            measured = {key: v for key, v in metrics[i].items() if v is not None}
            self.last_measured[i] = (step, measured)
            rows: list[Row] = [(step, *key.split("/", 1), v) for key, v in measured.items()]
            if mean_loss is not None:
                rows.append((step, "train", "objective", mean_loss[i]))
            rows.append((step, "progress", "epoch", epochs))
            rows.append((step, "progress", "wall_time", self.elapsed))
            # the run's own time (engine.timing): forward/backward + optimizer, and optimizer
            rows.append((step, "progress", "train_time", own[i][0] + own[i][1]))
            rows.append((step, "progress", "optimizer_time", own[i][1]))
            rows.extend((step, "hyper", key, v) for key, v in hyper[i].items())
            out.append(rows)
        return out

    def _evaluate(self, bar: Any) -> None:
        """Evaluate and record every live run; end those whose evaluation is not finite or
        whose early stopping stops them; loss-driven schedules take their turn."""
        step = self.step
        for i, rows in enumerate(self._evaluation_rows()):
            if self.frozen[i]:
                continue
            self.log(i, rows)
            values = {f"{sp}/{nm}": v for _, sp, nm, v in rows}
            if bar is not None and self.k == 1:
                shown = (f"{k[4:]} {v:.4g}" for k, v in values.items() if k[:4] == "val/")
                bar.set_postfix_str("val " + ", ".join(shown), refresh=False)
            train_loss = values.get("train/loss", 0.0)  # (not measured: evaluate_train False)
            if not (math.isfinite(values["val/loss"]) and math.isfinite(train_loss)):
                self._end(i, "diverged", f"non-finite evaluation loss at step {step}", step)
                continue
            self.stepper.after_evaluation(i, values)
            early = self.builts[i].early
            if early is None:
                continue
            monitor = (self.configs[i].early_stopping or {}).get("monitor", "val/loss")
            if self.stepper.early_update(i, early, values[monitor], step):
                message = (
                    f"early stopping at step {step} (best {monitor} {early.best:.6g} at step "
                    f"{early.best_step})"
                )
                self._end(i, "completed", message, step)

    # -- pruning inside a pass -------------------------------------------------------------

    def measure(self) -> list[dict[str, float]]:
        """Each live run's validation metrics now (``val/...``; the training split is not
        measured), nothing recorded: what a rung judges. Ended runs: ``{}``."""
        metrics = self.stepper.metrics(train=False)  # type: ignore[call-arg]
        return [
            {} if self.frozen[i] else {k: v for k, v in m.items() if v is not None}
            for i, m in enumerate(metrics)
        ]

    def drop(self, gone: Sequence[int], status: str, message: str) -> None:
        """End the live runs ``gone`` here (``status``, ``message``; their results are their
        weights at this step, their records end at their last evaluation) and take them out
        of the stepper's pass (:meth:`Stacked.drop
        <descentlab.engine.vectorized.Stacked.drop>`): the others train on from this step,
        as they would have with them, at the cost of the runs left."""
        gone = [i for i in gone if not self.frozen[i]]
        for i in gone:
            self._end(i, status, message, self.step)
        ended = [i for i in range(self.k) if self.frozen[i] and i not in self.dropped]
        self.dropped.update(ended)
        self.stepper.drop(ended)  # type: ignore[attr-defined]

    # -- the loop -------------------------------------------------------------------------

    def run(
        self,
        *,
        until: int,
        bar: Any = None,
        stop: Any = None,
        on_checkpoint: Callable[[], None] | None = None,
        hold: bool = False,
    ) -> None:
        """Train from ``self.step`` to ``until`` (or until every run has ended, or ``stop``'s
        ``signal`` is set); every run still going at the end gets its status: completed at
        the last step, else interrupted -- unless ``hold``: a run not at its last step stays
        live, and a later call continues it (a rung, :meth:`drop`)."""
        stepper, batches, total = self.stepper, self.batches, self.total
        ckpt_every = self.configs[0].checkpoint_every or self.checkpoint_every
        if on_checkpoint is None:
            ckpt_every = None
        due = None if ckpt_every is None else CheckpointClock(ckpt_every)
        # gradient accumulation: the step's micro-batches, in the data order (a single run's
        # stepper only: the vectorized path trains such runs alone, see multirun)
        micro = self.configs[0].accumulate
        stepper.train_mode()
        started = time.perf_counter()
        if self.step == 0 and not any(self.history):
            # The starting point, so curves begin at the initial loss.
            for i, rows in enumerate(self._evaluation_rows()):
                self.log(i, rows)
        stopped_by = None
        try:
            while self.step < until and not all(self.frozen):
                batch = batches.next() if micro == 1 else [batches.next() for _ in range(micro)]
                losses = stepper.step(batch, self.frozen, self._diverged)
                if all(self.frozen):
                    self.step += 1
                    break
                self.step += 1
                self.train_loss_sum += losses
                self.train_loss_count += 1
                if bar is not None:
                    bar.update(1)
                step = self.step
                if step % self.eval_every == 0 or step == total:
                    now = time.perf_counter()
                    self.elapsed += now - started
                    started = now
                    self._evaluate(bar)
                    if time.monotonic() - self.written_at >= RECORD_SECONDS:
                        self.write()
                    if all(self.frozen):
                        break
                if due is not None and step < total and due(step):
                    written = time.perf_counter()
                    self.write()  # the records up to the checkpoint it continues from
                    on_checkpoint()
                    due.written(time.perf_counter() - written)
                if stop is not None and stop.signal is not None:
                    stopped_by = signal.Signals(stop.signal).name
                    break
        finally:
            self.elapsed += time.perf_counter() - started
        for i in range(self.k):
            if self.frozen[i] or (hold and stopped_by is None and self.step < total):
                continue
            if self.step >= total:
                self._end(i, "completed", None, self.step)
            elif stopped_by is not None:
                self._end(
                    i, "interrupted", f"stopped by {stopped_by} at step {self.step}", self.step
                )
            else:
                self._end(i, "interrupted", f"paused at step {self.step} (until_step)", self.step)

    # -- results --------------------------------------------------------------------------

    def summary(self, i: int) -> dict[str, Any]:
        """Run ``i``'s result weights put into its model, and its summary (test metrics
        logged once)."""
        cfg, b, status = self.configs[i], self.builts[i], self.status[i]
        assert status is not None
        best = status == "completed" and b.early is not None and b.early.restore_best
        self.stepper.restore(i, self.final[i], best)
        measured = None
        last = self.last_measured[i]
        if status == "completed" and not best and last is not None and last[0] == self.stop_step[i]:
            measured = last[1]  # the final weights, measured at this step
        position = (self.stop_step[i], self.stop_epochs[i], self.elapsed)
        log = lambda rows: self.log(i, rows)  # noqa: E731
        out = summarize(cfg, b, status, position, log, lambda: self.stepper.evaluating(i),
                        measured=measured)  # fmt: skip
        clock = self.stepper.clock
        compute, update = clock.totals()[i]
        out.update(train_seconds=compute + update, optimizer_seconds=update, clock=clock.kind)
        return out

    def result(self, i: int, summary: dict[str, Any], checkpoint_path: Any = None) -> RunResult:
        """Run ``i``'s status and summary recorded; its :class:`RunResult`."""
        status = self.status[i]
        assert status is not None
        if self.store is not None:
            with self.store.transaction():  # its records and its end: one write
                rows, self.unwritten[i] = self.unwritten[i], []
                if rows:
                    self.store.log_metrics(self.run_ids[i], rows)
                self.store.set_status(self.run_ids[i], status, message=self.message[i],
                                      summary=summary)  # fmt: skip
        return RunResult(
            status=status,
            steps=self.stop_step[i],
            epochs=self.stop_epochs[i],
            wall_time=self.elapsed,
            metrics=series(self.history[i]),
            summary=summary,
            model=self.builts[i].model,
            config=self.configs[i],
            run_id=self.run_ids[i],
            message=self.message[i],
            checkpoint_path=checkpoint_path,
        )

    def failed(self, exc: BaseException, done: Sequence[bool] = ()) -> None:
        """Record the runs not ``done`` as failed (interrupted by Ctrl-C) after ``exc``."""
        if self.store is None:
            return
        status = "interrupted" if genuine_interrupt(exc) else "failed"
        with contextlib.suppress(Exception):
            self.write()
        for i, run_id in enumerate(self.run_ids):
            if run_id is not None and not (done and done[i]):
                with contextlib.suppress(Exception):
                    self.store.set_status(run_id, status, message=f"{type(exc).__name__}: {exc}")
