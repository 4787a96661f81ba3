"""One training run: problem + model + loss + optimizer + schedule + regularizers -> metrics.

:func:`train` builds everything a :class:`~descentlab.engine.config.RunConfig` names, checks it
(unknown names, batch size larger than the data, labels outside the classes, a model whose
output does not fit the loss) *before* anything is trained or recorded, then runs the loop:

.. code-block:: text

    for step = 1 .. T:
        batch  <- next slice of this epoch's permutation (new permutation each epoch)
        batch  <- augment / add noise / mixup or cutmix           (training inputs only)
        loss   <- L(model(x_batch), y_batch)       non-finite -> status "diverged", stop
        params <- optimizer step; schedules step
        every eval_every steps and at T: train/val loss and accuracy -> store (one write);
                                           loss-driven schedules (plateau, bold driver) and
                                           early stopping look at the monitored metric
        every checkpoint_every steps: checkpoint (atomic)
    test split evaluated once, at the end (if asked)

Full-batch gradient descent (``batch_size=None``), SGD (``1``) and mini-batch SGD (``n``)
differ only in the batch (the first three lectures). Every random draw comes from a stream derived
from the run's seed: the global torch generator (model initialisation, dropout; saved and restored
around the run so callers are unaffected), one ``torch.Generator`` for the data order and one
for augmentation. The same seed therefore gives the same numbers bit for bit, and a checkpoint
holds every piece of state -- model, optimizer, scheduler, the three generators, the position in
the epoch's permutation, early stopping, metrics so far -- so a resumed run ends bit-identical
to one never interrupted.

Example:
    >>> from descentlab.engine.config import RunConfig
    >>> cfg = RunConfig(problem="moons", model="mlp", optimizer="adam", hyper={"lr": 1e-2},
    ...                 batch_size=32, steps=200, evaluate_test=False)
    >>> result = train(cfg, progress=False)
    >>> result.status, result.steps
    ('completed', 200)
    >>> result.summary["val/accuracy"] > 0.8
    True

References:
    Robbins & Monro, "A stochastic approximation method", 1951 (SGD).
    Bottou, Curtis, Nocedal, "Optimization methods for large-scale machine learning", SIAM
    Review 2018, https://arxiv.org/abs/1606.04838 (full batch vs. mini-batch, epochs).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from descentlab import regularize
from descentlab._usercode import note_interrupt, stop_waiting
from descentlab.engine import precision, timing
from descentlab.engine.building import Built, build
from descentlab.engine.checkpoint import CheckpointError, save_checkpoint
from descentlab.engine.config import RunConfig, checked_config
from descentlab.engine.evaluation import evaluate, metrics_of
from descentlab.engine.loop import Batch, Diverged, Loop, check_checkpoint_every, check_until_step
from descentlab.engine.optimizing import hyper_value
from descentlab.engine.outcome import RunResult, create_record, progress_bar
from descentlab.engine.resuming import (
    begin_resume,
    default_checkpoint,
    load_run_state,
    resumption,
    run_state,
    saved_state,
)
from descentlab.engine.trial_lines import which
from descentlab.optim.optimizer import Optimizer as _Optimizer
from descentlab.store import RunWriter, Store

__all__ = ["OneModel", "RunResult", "StopRequest", "evaluate", "live", "resume", "train"]


class _NonFinite(Exception):
    """Raised inside the closure when the loss is not finite (stops before the update)."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.value = value


# ------------------------------------------------------------------------------------------
# the loop


class StopRequest:
    """SIGINT/SIGTERM ask the loop to stop at the next step boundary (a second SIGINT kills)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        note_interrupt(signum)  # (the command's exit status says which signal it was)
        stop_waiting(signum)  # (a compile or a hung loader worker has no boundary to wait for)

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class OneModel:
    """The :class:`~descentlab.engine.loop.Stepper` of one run: its model, its optimizer
    stepped with a closure (the regularized loss at the batch, at noisy weights with weight
    noise), its schedules and its evaluation (in the optimizer's eval mode where it has one)."""

    def __init__(self, config: RunConfig, built: Built, aug_gen: torch.Generator) -> None:
        self.config, self.b = config, built
        self.aug_gen = aug_gen
        self.has_modes = built.has_modes
        self._micro: list[Batch] = []
        self._last = [0.0]
        #: the precision this run trains in ("auto" chosen by the CPU and the model's size)
        self.precision = precision.announce(
            config.precision, config.device, sum(p.numel() for p in built.model.parameters())
        )
        #: fp16's gradient scaler (torch.amp.GradScaler; None for fp32 and bf16)
        self.scaler = (
            torch.amp.GradScaler(torch.device(config.device).type)
            if self.precision == "fp16"
            else None
        )
        #: this run's own forward/backward and optimizer time (descentlab.engine.timing)
        self.clock = timing.RunClock(1, torch.device(config.device))
        self._closure = self._make_closure()
        #: the closure runs before a step that does not need it (descentlab's own optimizers
        #: without a lookahead rule: then the step can be the steady fused one)
        opt = built.optimizer
        self._closure_first = type(opt).step is _Optimizer.step and not opt._lookahead
        self._splits = built.measured

    # -- training -------------------------------------------------------------------------

    def train_mode(self) -> None:
        self.b.model.train()
        if self.has_modes:
            self.b.optimizer.train()

    def _batch_loss(self) -> Callable[[Tensor, Tensor], Tensor]:
        """``(x_batch, y_batch) -> training loss`` with the configured input regularizers."""
        b = self.b
        model, loss_fn = b.model, b.train_loss
        pipeline = b.pipeline
        if pipeline is None:
            return lambda xb, yb: loss_fn(model(xb), yb)
        gen = self.aug_gen

        def batch_loss(xb: Tensor, yb: Tensor) -> Tensor:
            xm, ya, yb2, lam = pipeline(xb, yb, gen)
            if yb2 is None:
                return loss_fn(model(xm), ya)
            return regularize.mixup_loss(loss_fn, model(xm), ya, yb2, lam)

        return batch_loss

    def _make_closure(self) -> Callable[[], Tensor]:
        """The optimizer's closure on the current step's micro-batches: the regularized loss
        (at noisy weights with weight noise; under autocast with a lower precision), stopped
        with :class:`_NonFinite` before any update when it is not finite, each micro-batch's
        loss divided by their number before its backward pass (torch's accumulation recipe;
        scaled by fp16's gradient scaler), then the gradients unscaled and clipped; the mean
        loss goes to ``self._last[0]``."""
        cfg, b = self.config, self.b
        model, optimizer = b.model, b.optimizer
        batch_loss = self._batch_loss()
        weight_noise = None
        if cfg.weight_noise > 0:
            weight_noise = regularize.WeightNoise(cfg.weight_noise, self.aug_gen)
        isfinite = math.isfinite
        micro, last, scaler = self._micro, self._last, self.scaler
        k = cfg.accumulate
        cast = _autocast(self.precision, cfg.device)
        clip = cfg.clip_grad_norm
        params = [p for p in model.parameters() if p.requires_grad]
        clock, stamp = self.clock, self.clock.stamp
        own_zero = type(optimizer).zero_grad is _Optimizer.zero_grad  # torch's, set_to_none

        def closure() -> Tensor:
            start = stamp()
            try:
                if own_zero:  # (torch's loop without its profiler record: microseconds a step)
                    for group in optimizer.param_groups:
                        for p in group["params"]:
                            p.grad = None
                else:
                    optimizer.zero_grad(set_to_none=True)
                total: Tensor | None = None
                values = 0.0
                with weight_noise.perturbed(model) if weight_noise else contextlib.nullcontext():
                    for xb, yb, _ in micro:
                        with cast():
                            loss = batch_loss(xb, yb)
                        value = self.loss_value(loss)
                        if not isfinite(value):
                            raise _NonFinite(value)
                        if k > 1:
                            loss = loss / k
                        (loss if scaler is None else scaler.scale(loss)).backward()
                        values += value
                        total = loss.detach() if total is None else total + loss.detach()
                if scaler is not None:
                    scaler.unscale_(optimizer)
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip)
            finally:
                clock.add(start, stamp(), timing.CLOSURE)
            last[0] = values / k
            assert total is not None
            return total

        return closure

    def loss_value(self, loss: Tensor) -> float:
        """A micro-batch's training loss as a number (a sharded run's: every process's,
        combined)."""
        return loss.item()

    def step(self, batch: Batch, frozen: Sequence[bool], diverged: Diverged) -> float:
        self._micro[:] = batch if isinstance(batch, list) else [batch]
        start = self.clock.stamp()
        try:
            if self.scaler is not None:  # GradScaler takes no closure: it steps after it
                self._closure()
                self.scaler.step(self.b.optimizer)
                self.scaler.update()
            elif self._closure_first:
                self._closure()
                self.b.optimizer.step()
            else:
                self.b.optimizer.step(self._closure)
        except _NonFinite as exc:
            diverged(0, exc.value)
            return exc.value
        finally:
            self.clock.add(start, self.clock.stamp(), timing.UPDATE)
        if self.b.scheduler is not None:
            self.b.scheduler.step()
        return self._last[0]

    # -- evaluation -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _modes(self, back: bool) -> Iterator[None]:
        """Optimizers with train/eval modes (Schedule-Free) evaluate in eval mode; training
        continues in train mode (``back``; after the run's end the optimizer stays in eval
        mode)."""
        opt = self.b.optimizer
        if not self.has_modes:
            yield
            return
        opt.eval()
        try:
            yield
        finally:
            if back:
                opt.train()

    def evaluating(self, i: int) -> contextlib.AbstractContextManager[None]:
        return self._modes(back=False)

    def metrics(self) -> list[dict[str, float | None]]:
        with self._modes(back=True):
            b = self.b
            return [metrics_of(b.model, b.eval_loss, b.classification, self._splits)]

    def hyper(self) -> list[dict[str, float]]:
        out: dict[str, float] = {}
        group = self.b.optimizer.param_groups[0]
        for key in self.b.scheduled:
            value = hyper_value(group, key)
            if isinstance(value, Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = float(value)
        return [out]

    def after_evaluation(self, i: int, values: dict[str, float]) -> None:
        if self.b.rule_scheduler is not None:
            self.b.rule_scheduler.step(loss=values[self.b.rule_monitor])

    def early_update(self, i: int, early: Any, value: float, step: int) -> bool:
        return bool(early.update(value, self.b.model, step=step))

    # -- checkpoints ----------------------------------------------------------------------

    def model_and_optimizer_state(self) -> dict[str, Any]:
        """The checkpoint's ``model`` and ``optimizer`` entries."""
        return {"model": self.b.model.state_dict(), "optimizer": self.b.optimizer.state_dict()}

    def load_model_and_optimizer_state(self, state: Mapping[str, Any]) -> None:
        """Load a checkpoint's ``model`` and ``optimizer`` entries."""
        self.b.model.load_state_dict(state["model"])
        self.b.optimizer.load_state_dict(state["optimizer"])

    def save(self, state: dict[str, Any], path: Path) -> bool:
        """Write the checkpoint ``state`` to ``path``; whether this process records it."""
        save_checkpoint(state, path)
        return True

    # -- results --------------------------------------------------------------------------

    def keep(self, i: int) -> None:
        """(The model holds the run's weights where it stopped: nothing to keep.)"""

    def restore(self, i: int, final: Any, best: bool) -> None:
        if best:
            self.b.early.restore(self.b.model)


def _autocast(chosen: str, device: str) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """The context a training forward pass and loss run in: ``torch.autocast`` with the
    run's lower precision (``chosen``: ``precision.choose``'s), or nothing (fp32)."""
    if chosen == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if chosen == "bf16" else torch.float16
    kind = torch.device(device).type
    return lambda: torch.autocast(kind, dtype=dtype)


def train(
    config: RunConfig | Mapping[str, Any],
    store: Store | None = None,
    *,
    data: Any = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    until_step: int | None = None,
    progress: bool | None = None,
    on_start: Callable[[int | None], None] | None = None,
    checkpoint_every: int | str | None = None,
    after_checkpoint: Callable[[int | None, Path], None] | None = None,
    keep_checkpoint: bool = True,
) -> RunResult:
    """Train one model as ``config`` says; record it in ``store`` if given.

    Args:
        config: a :class:`RunConfig` or a dict of its fields.
        store: where to record the run (config, provenance, metrics, status, summary, the
            checkpoint's path). The checkpoint goes to ``<store dir>/checkpoints/run-<id>.pt``
            unless ``checkpoint_path`` is given. Each call records a new run.
        data: a ``descentlab.problems.data.Splits`` to train on instead of loading
            ``config.problem`` (e.g. your own tensors).
        checkpoint_path: checkpoint file (needed for checkpoints when there is no store); an
            existing file is continued with ``resume=True``, never overwritten otherwise.
        resume: continue from the checkpoint at ``checkpoint_path`` if there is one (runs
            without a store; with a store use :func:`resume`).
        until_step: pause after this many steps (checkpoint written, status
            ``interrupted``); :func:`resume` or ``resume=True`` continues.
        progress: show a progress bar; None shows one when stderr is a terminal.
        on_start: called with the run id (None without a store) once everything is built and
            checked, just before the first step.
        checkpoint_every: where ``config.checkpoint_every`` is None, checkpoint every this
            many steps, or ``"auto"`` (so that writing them costs at most 2 % of the run's
            time: :class:`~descentlab.engine.loop.CheckpointClock`) -- how the run is
            executed (a comparison's trials), not recorded in its config.
        after_checkpoint: called with the run id and the checkpoint's path after each
            checkpoint written in the middle of the run (e.g. to copy it elsewhere: a Ray
            trial sends it to the driver's machine).
        keep_checkpoint: False writes no checkpoint at the end of a run that completed or
            diverged (one that will never be continued: a comparison's trial).

    Returns:
        The :class:`RunResult`: its ``status`` (``completed``, ``diverged`` or ``interrupted``),
        ``steps``, ``metrics`` at every evaluation, ``summary`` (the final metrics), the trained
        ``model``, ``run_id`` (None without a store) and ``checkpoint_path``.

    Writes:
        Nothing without ``store`` and ``checkpoint_path``. With a store: the run's record in
        the store's SQLite file (config, provenance, metrics, status, summary) and its
        checkpoint ``<store dir>/checkpoints/run-<id>.pt`` with its checksum ``.pt.sha256``
        (written at the end, at ``until_step`` and every ``checkpoint_every`` steps). With
        ``checkpoint_path``: that checkpoint (and its ``.sha256``).

    Raises:
        KeyError: unknown problem, model, loss, optimizer or schedule name (lists valid names).
        ValueError: bad configuration or argument (``until_step`` below 1, ``checkpoint_every``
            or ``until_step`` without a store or checkpoint path, a ``checkpoint_path`` that
            holds a checkpoint without ``resume=True``); raised before anything is trained or
            recorded.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from descentlab.engine import RunConfig, train
        >>> from descentlab.store import Store
        >>> cfg = RunConfig(problem="moons", model="logistic", optimizer="sgd",
        ...                 hyper={"lr": 0.5}, steps=50, evaluate_test=False)
        >>> result = train(cfg, progress=False)  # nothing written
        >>> result.status, result.steps, result.summary["val/accuracy"] > 0.7
        ('completed', 50, True)
        >>> folder = tempfile.TemporaryDirectory()
        >>> store = Store(Path(folder.name) / "lab.sqlite")
        >>> recorded = train(cfg, store, progress=False)
        >>> recorded.run_id, recorded.checkpoint_path.relative_to(folder.name)
        (1, PosixPath('checkpoints/run-1.pt'))
        >>> train(cfg, store, until_step=0)
        Traceback (most recent call last):
        ValueError: until_step must be a positive integer, got 0
        >>> store.close(); folder.cleanup()
    """
    # The config is checked once, here where it enters; below, it is a plain value. The
    # run is built (and recorded) before its loop and stepper exist.
    config, record = checked_config(config)
    check_until_step(until_step)
    check_checkpoint_every(checkpoint_every)
    if store is None and checkpoint_path is None:
        for key, value in (
            ("checkpoint_every", config.checkpoint_every or checkpoint_every),
            ("until_step", until_step),
            ("resume", resume or None),
        ):
            if value is not None:
                raise ValueError(f"{key} needs a store or a checkpoint_path, got {key}={value}")
    path = None if checkpoint_path is None else Path(checkpoint_path)
    if path is not None and path.exists() and not resume:
        raise ValueError(
            f"checkpoint_path {path} already holds a checkpoint; pass resume=True to continue "
            "that run, or choose another path"
        )
    state = None if path is None or not resume else saved_state(path, record)
    with torch.random.fork_rng(devices=[]):
        built = build(config, data)
        run_id = None if store is None else create_record(store, config, built, record=record)
        if store is not None and path is None:
            path = default_checkpoint(store, run_id)
        loop = Loop.single(config, built)
        loop.checkpoint_every, loop.keep_checkpoint = checkpoint_every, keep_checkpoint
        part = OneModel(config, built, loop.batches.aug_gens[0])
        return live(loop, part, store, [run_id], path, state, until_step=until_step,
                    progress=progress, on_start=on_start,
                    after_checkpoint=after_checkpoint)[0]  # fmt: skip


def resume(
    run_id: int,
    store: Store,
    *,
    until_step: int | None = None,
    progress: bool | None = None,
    data: Any = None,
    optimizer: Any = None,
    schedule: Mapping[str, Any] | None = None,
    on_start: Callable[[int | None], None] | None = None,
    restart: bool = False,
    checkpoint_every: int | str | None = None,
    after_checkpoint: Callable[[int | None, Path], None] | None = None,
    keep_checkpoint: bool = True,
    begun: bool = False,
) -> RunResult:
    """Continue a run recorded in ``store`` from its last checkpoint.

    The run keeps its id. Metrics the stopped process logged after its last checkpoint are
    deleted and recomputed, so the record ends as if the run had never stopped. A run stopped
    before its first checkpoint starts again from step 0. The checkpoint is verified against
    its checksum first: a corrupted one, or one the store records that is gone, is an error
    (:class:`~descentlab.engine.checkpoint.CheckpointError`, nothing changed) unless
    ``restart=True`` asks to start the run over from step 0.

    Args:
        run_id: the run's id in ``store`` (the ``run_id`` of the :class:`RunResult` that
            :func:`train` returned, or the id ``descentlab train`` printed).
        store: the store that recorded the run (its checkpoint's path is recorded there).
        until_step: pause again after this many steps.
        progress: show a progress bar (None: when stderr is a terminal).
        data: the ``Splits`` the run was trained on, if it was not loaded by name.
        optimizer: the optimizer object, for runs whose optimizer was a Python object.
        schedule: the schedules, for runs whose schedules were Python objects.
        on_start: called with the run id just before training continues.
        restart: start the run over from step 0 when its checkpoint is corrupted or missing
            (its metrics are deleted).
        checkpoint_every: as for :func:`train`.
        after_checkpoint: as for :func:`train`.
        keep_checkpoint: as for :func:`train`.
        begun: the resume is already written to the run's record
            (:func:`~descentlab.engine.resuming.begin_resume`: a comparison's execution
            writes it for every kind of trial).

    Returns:
        The :class:`RunResult` of the whole run (its ``steps`` count from step 0), under the
        same ``run_id``.

    Writes:
        In ``store``: the run's status, its metrics from the checkpoint's step on (those
        logged after it deleted first), its summary and a ``resumes`` entry in its provenance;
        its checkpoint ``<store dir>/checkpoints/run-<id>.pt`` (and ``.pt.sha256``) again.

    Raises:
        KeyError: no such run.
        ValueError: the run has completed or diverged, or still runs in a live process; a bad
            ``until_step`` or ``checkpoint_every``.
        CheckpointError: the checkpoint is corrupted or missing (and ``restart`` is False).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from descentlab.engine import RunConfig, resume, train
        >>> from descentlab.store import Store
        >>> folder = tempfile.TemporaryDirectory()
        >>> store = Store(Path(folder.name) / "lab.sqlite")
        >>> cfg = RunConfig(problem="moons", model="mlp", optimizer="sgd",
        ...                 hyper={"lr": 0.1}, batch_size=16, steps=60,
        ...                 evaluate_test=False)
        >>> paused = train(cfg, store, until_step=25, progress=False)
        >>> paused.status, paused.steps
        ('interrupted', 25)
        >>> done = resume(paused.run_id, store, progress=False)
        >>> done.status, done.steps, done.run_id == paused.run_id
        ('completed', 60, True)
        >>> resume(paused.run_id, store)
        Traceback (most recent call last):
        ValueError: run 1 has already ended with status 'completed'
        >>> store.close(); folder.cleanup()
    """
    check_until_step(until_step)
    check_checkpoint_every(checkpoint_every)
    resumed = resumption(store, run_id, restart=restart, optimizer=optimizer, schedule=schedule)
    if not begun:
        begin_resume(store, run_id, resumed.after)
    config = resumed.config
    with torch.random.fork_rng(devices=[]):
        built = build(config, data)
        loop = Loop.single(config, built)
        loop.checkpoint_every, loop.keep_checkpoint = checkpoint_every, keep_checkpoint
        part = OneModel(config, built, loop.batches.aug_gens[0])
        return live(loop, part, store, [run_id], resumed.checkpoint, resumed.state,
                    until_step=until_step, progress=progress, on_start=on_start,
                    after_checkpoint=after_checkpoint)[0]  # fmt: skip


def live(
    loop: Loop,
    part: Any,
    writer: RunWriter | None,
    run_ids: Sequence[int | None],
    path: Path | None = None,
    state: Mapping[str, Any] | None = None,
    *,
    until_step: int | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    on_start: Callable[[int | None], None] | None = None,
    after_checkpoint: Callable[[int | None, Path], None] | None = None,
    agreed: Callable[[StopRequest], Any] | None = lambda request: request,
    hold: bool = False,
) -> list[RunResult]:
    """The life of the runs of ``loop``, the one every run the engine trains goes through
    (:func:`train`, :func:`resume`, each process of a sharded run, a vectorized pass): its
    stepper ``part`` (a :class:`OneModel`, or K stacked models) trained from the start or
    from one run's checkpoint ``state``, the records written through ``writer`` as
    ``run_ids`` (None: not recorded), one run's checkpoints to ``path``. It stops after
    ``until_step`` steps, or at a step boundary on SIGINT or SIGTERM (``agreed``: the stop
    every process of a sharded run agrees on; None: no stop asked here). The runs' results,
    in order; ``hold``: the runs not at their last step stay live at ``until_step`` (a rung of
    :func:`~descentlab.engine.vectorized.train_in_rungs`), nothing saved or returned, and a
    later call goes on."""
    loop.stepper, loop.store, loop.run_ids[:] = part, writer, run_ids
    run_id = run_ids[0]
    if state is not None:
        try:
            load_run_state(loop, part, state)
        except Exception as exc:  # entries of the right kinds that do not fit the run
            error = CheckpointError(
                f"checkpoint {path} does not fit run {run_id}: {type(exc).__name__}: "
                + " ".join(line.strip() for line in str(exc).strip().splitlines()[:2])
            )
            loop.failed(error)
            raise error from exc
        except BaseException as exc:
            loop.failed(exc)
            raise
    if on_start is not None:
        on_start(run_id)
    total, k = loop.total, len(run_ids)
    until = total if until_step is None else min(until_step, total)

    # The store records the checkpoint once one exists: a recorded checkpoint that is gone
    # later is an error at resume, not a silent start from scratch.
    registered = writer is None

    def save(status: str) -> None:
        nonlocal registered
        if not part.save(run_state(loop, part, status), path) or registered:
            return
        if "checkpoint" not in writer.artifacts(run_id):
            writer.add_artifact(run_id, "checkpoint", path, kind="checkpoint")
        registered = True

    def on_checkpoint() -> None:
        save("running")
        if after_checkpoint is not None:
            after_checkpoint(run_id, path)

    done = [False] * k
    # one run's progress lines name its lr and seed, read when a line is said
    named = None if desc else functools.partial(which, loop.configs[0])
    try:
        with (
            contextlib.nullcontext() if agreed is None else StopRequest() as stop,
            progress_bar(progress, total, loop.step, desc or part.b.run_name, named) as bar,
        ):
            loop.run(
                until=until,
                bar=bar,
                stop=None if agreed is None else agreed(stop),
                on_checkpoint=None if path is None else on_checkpoint,
                hold=hold,
            )
        if hold:
            return []
        summaries = [loop.summary(i) for i in range(k)]
        ended = loop.status[0] in ("completed", "diverged")
        if path is not None and (loop.keep_checkpoint or not ended):
            save(loop.status[0])
        with writer.transaction() if writer is not None else contextlib.nullcontext():
            results = [loop.result(i, summaries[i], path) for i in range(k)]  # one write
        if path is not None and not ended and after_checkpoint is not None:
            after_checkpoint(run_id, path)  # stopped: it continues from here
        done = [True] * k
        return results
    except BaseException as exc:
        loop.failed(exc, done)
        raise
