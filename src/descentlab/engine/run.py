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
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from descentlab import regularize
from descentlab._osutil import pid_alive
from descentlab.engine.checkpoint import (
    CheckpointError,
    checksum_path,
    load_checkpoint,
    save_checkpoint,
)
from descentlab.engine.common import (
    Built,
    Row,
    RunResult,
    build,
    count_step,
    create_record,
    evaluate,
    hyper_value,
    input_pipeline,
    normalize,
    optimizer_modes,
    progress_bar,
    series,
    split_metrics,
    stream_seed,
    summarize,
    test_metrics,
)
from descentlab.engine.config import RunConfig
from descentlab.store import Store

__all__ = ["RunResult", "evaluate", "resume", "train"]

_CHECKPOINT_FORMAT = 1


# ------------------------------------------------------------------------------------------
# evaluation


# ------------------------------------------------------------------------------------------
# building a run from its config


class _NonFinite(Exception):
    """Raised inside the closure when the loss is not finite (stops before the update)."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.value = value


# ------------------------------------------------------------------------------------------
# the loop


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to stop at the next step boundary (a second SIGINT kills)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class _Loop:
    """State of one run in progress; :meth:`state_dict` is exactly what a checkpoint holds."""

    def __init__(self, config: RunConfig, built: Built) -> None:
        self.config = config
        self.b = built
        self.step = 0
        self.epoch = 0
        self.perm: Tensor | None = None
        self.pos = 0
        self.elapsed = 0.0
        self.objective_sum = 0.0
        self.objective_count = 0
        self.history: list[Row] = []
        self.data_gen = torch.Generator().manual_seed(stream_seed(config.seed, 1))
        self.aug_gen = torch.Generator().manual_seed(stream_seed(config.seed, 2))
        self._xs = built.x_train
        self._ys = built.y_train
        self.finished = False  # set when the run has ended: evaluations leave eval mode on
        self.last_measured: tuple[int, dict[str, float]] | None = None

    # -- checkpoint state -----------------------------------------------------------------

    def state_dict(self, status: str) -> dict[str, Any]:
        b = self.b
        return {
            "format": _CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "status": status,
            "step": self.step,
            "model": b.model.state_dict(),
            "optimizer": b.optimizer.state_dict(),
            "scheduler": None if b.scheduler is None else b.scheduler.state_dict(),
            "rule_scheduler": None if b.rule_scheduler is None else b.rule_scheduler.state_dict(),
            "early_stopping": None if b.early is None else b.early.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "data": self.data_gen.get_state(),
                "augment": self.aug_gen.get_state(),
            },
            "data_order": {"epoch": self.epoch, "perm": self.perm, "pos": self.pos},
            "objective": [self.objective_sum, self.objective_count],
            "history": [list(r) for r in self.history],
            "elapsed": self.elapsed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        b = self.b
        if state.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not supported")
        b.model.load_state_dict(state["model"])
        b.optimizer.load_state_dict(state["optimizer"])
        for obj, key in ((b.scheduler, "scheduler"), (b.rule_scheduler, "rule_scheduler")):
            if obj is not None:
                obj.load_state_dict(state[key])
        if b.early is not None:
            b.early.load_state_dict(state["early_stopping"])
        torch.set_rng_state(state["rng"]["torch"])
        self.data_gen.set_state(state["rng"]["data"])
        self.aug_gen.set_state(state["rng"]["augment"])
        order = state["data_order"]
        self.epoch, self.perm, self.pos = int(order["epoch"]), order["perm"], int(order["pos"])
        if self.perm is not None:
            perm = self.perm.to(b.x_train.device)
            self._xs, self._ys = b.x_train[perm], b.y_train[perm]
        self.objective_sum, self.objective_count = state["objective"]
        self.history = [(int(s), sp, nm, float(v)) for s, sp, nm, v in state["history"]]
        self.elapsed = float(state["elapsed"])
        self.step = int(state["step"])

    # -- data -----------------------------------------------------------------------------

    def _next_batch(self) -> tuple[Tensor, Tensor]:
        bs = self.config.batch_size
        b = self.b
        if bs is None:
            self.epoch += 1
            return b.x_train, b.y_train
        n = b.x_train.shape[0]
        if self.perm is None or self.pos >= n or (self.config.drop_last and self.pos + bs > n):
            # A fresh permutation each epoch; gathering once makes each batch a cheap slice.
            self.perm = torch.randperm(n, generator=self.data_gen)
            perm = self.perm.to(b.x_train.device)
            self._xs, self._ys = b.x_train[perm], b.y_train[perm]
            self.epoch += 1
            self.pos = 0
        start = self.pos
        self.pos = start + bs
        return self._xs[start : self.pos], self._ys[start : self.pos]

    @property
    def epochs_done(self) -> float:
        if self.config.batch_size is None or self.perm is None:
            return float(self.epoch)
        n = self.b.x_train.shape[0]
        if self.config.drop_last:
            n -= n % self.config.batch_size
        return self.epoch - 1 + min(self.pos, n) / n

    # -- regularized training loss -------------------------------------------------------

    def _objective(self) -> Callable[[Tensor, Tensor], Tensor]:
        """``(x_batch, y_batch) -> training loss`` with the configured input regularizers."""
        b = self.b
        model, loss_fn = b.model, b.train_loss
        pipeline = input_pipeline(self.config, b.x_train.dim())
        if pipeline is None:
            return lambda xb, yb: loss_fn(model(xb), yb)
        gen = self.aug_gen

        def objective(xb: Tensor, yb: Tensor) -> Tensor:
            xm, ya, yb2, lam = pipeline(xb, yb, gen)
            if yb2 is None:
                return loss_fn(model(xm), ya)
            return regularize.mixup_loss(loss_fn, model(xm), ya, yb2, lam)

        return objective

    # -- evaluation -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Optimizers with train/eval modes (Schedule-Free) evaluate in eval mode; training
        continues in train mode (after the run's end the optimizer stays in eval mode)."""
        opt = self.b.optimizer
        if not optimizer_modes(opt):
            yield
            return
        opt.eval()
        try:
            yield
        finally:
            if not self.finished:
                opt.train()

    def _split_metrics(self) -> dict[str, float]:
        with self._evaluating():
            return split_metrics(self.b)

    def _evaluation_rows(self) -> list[Row]:
        s, b = self.step, self.b
        values = self._split_metrics()
        #: the last evaluation's train/val metrics and its step (the summary of a run that
        #: ends there reuses them: the same weights, the same numbers)
        self.last_measured = (s, dict(values))
        if self.objective_count:
            values["train/objective"] = self.objective_sum / self.objective_count
        self.objective_sum, self.objective_count = 0.0, 0
        values["progress/epoch"] = self.epochs_done
        values["progress/wall_time"] = self.elapsed
        group = b.optimizer.param_groups[0]
        for key in b.scheduled:
            value = hyper_value(group, key)
            if isinstance(value, Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[f"hyper/{key}"] = float(value)
        return [(s, *k.split("/", 1), v) for k, v in values.items()]

    def test_metrics(self) -> dict[str, float]:
        """The one evaluation on the test split."""
        with self._evaluating():
            return test_metrics(self.b)

    # -- running --------------------------------------------------------------------------

    def _closure(self, batch: list[Tensor], last: list[float]) -> Callable[[], Tensor]:
        """The optimizer's closure on ``batch``: the regularized loss (at noisy weights with
        weight noise), stopped with :class:`_NonFinite` before any update when it is not
        finite; the loss's value goes to ``last[0]``."""
        cfg, b = self.config, self.b
        model, optimizer = b.model, b.optimizer
        objective = self._objective()
        weight_noise = None
        if cfg.weight_noise > 0:
            weight_noise = regularize.WeightNoise(cfg.weight_noise, self.aug_gen)
        isfinite = math.isfinite

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            with weight_noise.perturbed(model) if weight_noise else contextlib.nullcontext():
                loss = objective(batch[0], batch[1])
                value = loss.item()
                if not isfinite(value):
                    raise _NonFinite(value)
                loss.backward()
            last[0] = value
            return loss.detach()

        return closure

    def _evaluate_now(
        self, on_rows: Callable[[list[Row]], None], bar: Any
    ) -> tuple[str, str | None] | None:
        """Evaluate and record at the current step; ``(status, message)`` when the run ends
        here (a non-finite evaluation, early stopping), else None. Loss-driven schedules
        step."""
        b, step = self.b, self.step
        rows = self._evaluation_rows()
        on_rows(rows)
        values = {f"{sp}/{nm}": v for _, sp, nm, v in rows}
        if bar is not None:
            shown = (f"{k[4:]} {v:.4g}" for k, v in values.items() if k[:4] == "val/")
            bar.set_postfix_str("val " + ", ".join(shown), refresh=False)
        if not (math.isfinite(values["val/loss"]) and math.isfinite(values["train/loss"])):
            return "diverged", f"non-finite evaluation loss at step {step}"
        if b.rule_scheduler is not None:
            b.rule_scheduler.step(loss=values[b.rule_monitor])
        early, monitor = b.early, (self.config.early_stopping or {}).get("monitor", "val/loss")
        if early is not None and early.update(values[monitor], b.model, step=step):
            return "completed", (
                f"early stopping at step {step} (best {monitor} {early.best:.6g} at step "
                f"{early.best_step})"
            )
        return None

    def run(
        self,
        *,
        until: int,
        on_rows: Callable[[list[Row]], None],
        on_checkpoint: Callable[[], None] | None,
        stop: _StopRequest,
        bar: Any,
    ) -> tuple[str, str | None]:
        """Train from ``self.step`` to ``until``; returns ``(status, message)``."""
        cfg, b = self.config, self.b
        optimizer, scheduler = b.optimizer, b.scheduler
        total = b.total_steps
        eval_every = cfg.eval_every or max(1, total // 25)
        ckpt_every = cfg.checkpoint_every if on_checkpoint is not None else None
        batch: list[Tensor] = [b.x_train, b.y_train]
        last = [0.0]
        closure = self._closure(batch, last)
        b.model.train()
        if optimizer_modes(optimizer):
            optimizer.train()
        started = time.perf_counter()
        if self.step == 0 and not self.history:
            # The starting point, so curves begin at the initial loss.
            on_rows(self._evaluation_rows())
            b.model.train()
        try:
            while self.step < until:
                batch[0], batch[1] = self._next_batch()
                try:
                    optimizer.step(closure)
                except _NonFinite as exc:
                    self.step += 1
                    on_rows([(self.step, "train", "objective", exc.value)])
                    return "diverged", f"non-finite training loss ({exc.value}) at step {self.step}"
                if scheduler is not None:
                    scheduler.step()
                now = count_step(self, last[0], bar, (eval_every, total), started)
                step = self.step
                if now is not None:
                    started = now
                    ended = self._evaluate_now(on_rows, bar)
                    if ended is not None:
                        return ended
                if ckpt_every is not None and step % ckpt_every == 0 and step < total:
                    on_checkpoint()
                if stop.signal is not None:
                    name = signal.Signals(stop.signal).name
                    return "interrupted", f"stopped by {name} at step {step}"
            if self.step >= total:
                return "completed", None
            return "interrupted", f"paused at step {self.step} (until_step)"
        finally:
            self.elapsed += time.perf_counter() - started


# ------------------------------------------------------------------------------------------
# public entry points


def _default_checkpoint(store: Store, run_id: int) -> Path:
    return store.path.parent / "checkpoints" / f"run-{run_id}.pt"


def _check_until(until_step: Any) -> None:
    if until_step is not None and (
        isinstance(until_step, bool) or not isinstance(until_step, int) or until_step < 1
    ):
        raise ValueError(f"until_step must be a positive integer, got {until_step!r}")


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

    Returns:
        The :class:`RunResult`.

    Raises:
        KeyError: unknown problem, model, loss, optimizer or schedule name (lists valid names).
        ValueError: bad configuration; raised before anything is trained or recorded.

    Example:
        >>> cfg = RunConfig(problem="moons", model="logistic", optimizer="sgd",
        ...                 hyper={"lr": 0.5}, steps=50, evaluate_test=False)
        >>> train(cfg, progress=False).summary["val/accuracy"] > 0.7
        True
    """
    config = normalize(config)
    _check_until(until_step)
    if store is None and checkpoint_path is None:
        for key, value in (
            ("checkpoint_every", config.checkpoint_every),
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
    return _launch(config, store, None, data, path, resume, until_step, progress, on_start)


def _launch(
    config: RunConfig,
    store: Store | None,
    run_id: int | None,
    data: Any,
    ckpt_path: Path | None,
    load: bool,
    until_step: int | None,
    progress: bool | None,
    on_start: Callable[[int | None], None] | None,
) -> RunResult:
    with torch.random.fork_rng(devices=[]):
        built = build(config, data)
        loop = _Loop(config, built)
        if load and ckpt_path is not None and _has_checkpoint(ckpt_path):
            state = load_checkpoint(ckpt_path)  # verified against its checksum
            if state["config"] != config.to_dict():
                raise ValueError(
                    f"the checkpoint {ckpt_path} was written by a run with another config"
                )
            if state["status"] in ("completed", "diverged"):
                raise ValueError(f"the run in {ckpt_path} has ended (status {state['status']!r})")
            loop.load_state_dict(state)
        if store is not None and run_id is None:
            run_id = create_record(store, config, built)
        if store is not None and ckpt_path is None:
            ckpt_path = _default_checkpoint(store, run_id)
        if on_start is not None:
            on_start(run_id)
        return _execute(loop, store, run_id, ckpt_path, until_step, progress)


def _execute(
    loop: _Loop,
    store: Store | None,
    run_id: int | None,
    ckpt_path: Path | None,
    until_step: int | None,
    progress: bool | None,
) -> RunResult:
    config, b = loop.config, loop.b
    total = b.total_steps
    until = total if until_step is None else min(until_step, total)

    def on_rows(rows: list[Row]) -> None:
        loop.history.extend(rows)
        if store is not None:
            store.log_metrics(run_id, rows)

    # The store records the checkpoint once one exists: a recorded checkpoint that is gone
    # later is an error at resume, not a silent start from scratch.
    registered = store is None

    def save(status: str) -> None:
        nonlocal registered
        save_checkpoint(loop.state_dict(status), ckpt_path)
        if not registered:
            if "checkpoint" not in store.artifacts(run_id):
                store.add_artifact(run_id, "checkpoint", ckpt_path, kind="checkpoint")
            registered = True

    def on_checkpoint() -> None:
        save("running")

    try:
        desc = config.run_name(b.model_name)
        with _StopRequest() as stop, progress_bar(progress, total, loop.step, desc) as bar:
            status, message = loop.run(
                until=until,
                on_rows=on_rows,
                on_checkpoint=None if ckpt_path is None else on_checkpoint,
                stop=stop,
                bar=bar,
            )
        measured = None
        if status == "completed":
            if b.early is not None and b.early.restore_best:
                b.early.restore(b.model)
            elif loop.last_measured is not None and loop.last_measured[0] == loop.step:
                measured = loop.last_measured[1]  # the final weights, measured at this step
            loop.finished = True
        position = (loop.step, loop.epochs_done, loop.elapsed)
        summary = summarize(
            config, b, status, position, on_rows, loop._evaluating, measured=measured
        )
        if ckpt_path is not None:
            save(status)
        if store is not None:
            store.set_status(run_id, status, message=message, summary=summary)
    except BaseException as exc:
        if store is not None and run_id is not None:
            failed = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            with contextlib.suppress(Exception):
                store.set_status(run_id, failed, message=f"{type(exc).__name__}: {exc}")
        raise
    return RunResult(
        status=status,
        steps=loop.step,
        epochs=loop.epochs_done,
        wall_time=loop.elapsed,
        metrics=series(loop.history),
        summary=summary,
        model=b.model,
        config=config,
        run_id=run_id,
        message=message,
        checkpoint_path=ckpt_path,
    )


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
) -> RunResult:
    """Continue a run recorded in ``store`` from its last checkpoint.

    The run keeps its id. Metrics the stopped process logged after its last checkpoint are
    deleted and recomputed, so the record ends as if the run had never stopped. A run stopped
    before its first checkpoint starts again from step 0. The checkpoint is verified against
    its checksum first: a corrupted one, or one the store records that is gone, is an error
    (:class:`~descentlab.engine.checkpoint.CheckpointError`, nothing changed) unless
    ``restart=True`` asks to start the run over from step 0.

    Args:
        run_id: the run.
        store: the store holding it.
        until_step: pause again after this many steps.
        progress: show a progress bar (None: when stderr is a terminal).
        data: the ``Splits`` the run was trained on, if it was not loaded by name.
        optimizer: the optimizer object, for runs whose optimizer was a Python object.
        schedule: the schedules, for runs whose schedules were Python objects.
        on_start: called with the run id just before training continues.
        restart: start the run over from step 0 when its checkpoint is corrupted or missing
            (its metrics are deleted).

    Returns:
        The :class:`RunResult` of the whole run.

    Raises:
        KeyError: no such run.
        ValueError: the run has completed or diverged, or still runs in a live process.
        CheckpointError: the checkpoint is corrupted or missing (and ``restart`` is False).

    Example:
        >>> import tempfile, os
        >>> store = Store(os.path.join(tempfile.mkdtemp(), "lab.sqlite"))
        >>> cfg = RunConfig(problem="moons", model="mlp", optimizer="sgd", hyper={"lr": 0.1},
        ...                 batch_size=16, steps=60, evaluate_test=False)
        >>> paused = train(cfg, store, until_step=25, progress=False)
        >>> paused.status, resume(paused.run_id, store, progress=False).steps
        ('interrupted', 60)
    """
    _check_until(until_step)
    record = store.get_run(run_id)
    _check_resumable(record)
    config = RunConfig.from_dict(record.config)
    if optimizer is not None:
        config = config.replace(optimizer=optimizer)
    if schedule is not None:
        config = config.replace(schedule=dict(schedule))
    if isinstance(config.optimizer, str) and config.optimizer.startswith("custom:"):
        raise ValueError(
            f"run {run_id} used a Python optimizer object ({config.optimizer}); pass it again "
            "with resume(..., optimizer=...)"
        )
    config = normalize(config)
    ckpt_path, after, load = _resume_point(store, run_id, restart)
    store.set_status(run_id, "running", expect=("running", "interrupted", "failed"))
    store.truncate_metrics(run_id, after_step=after)
    prov = record.provenance
    resumes = [*prov.get("resumes", []), {"from_step": max(after, 0), "pid": os.getpid()}]
    store.update_provenance(run_id, {"resumes": resumes, "pid": os.getpid()})
    return _launch(config, store, run_id, data, ckpt_path, load, until_step, progress, on_start)


def _check_resumable(record: Any) -> None:
    """A run that has ended, or that still runs in a live process of this host, cannot be
    resumed."""
    if record.status in ("completed", "diverged"):
        raise ValueError(f"run {record.id} has already ended with status {record.status!r}")
    prov = record.provenance
    pid = prov.get("pid")
    if (
        record.status == "running"
        and prov.get("hostname") == socket.gethostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and pid_alive(pid)
    ):
        raise ValueError(f"run {record.id} is still running in process {pid}; stop it first")


def _resume_point(store: Store, run_id: int, restart: bool) -> tuple[Path, int, bool]:
    """``(checkpoint path, last step it holds or -1, whether to load it)``, checked before
    anything changes. Without a checkpoint (none was ever written, or ``restart`` after a
    corrupted or missing one) the run starts over: every metric it logged goes."""
    artifacts = store.artifacts(run_id)
    recorded = "checkpoint" in artifacts
    ckpt_path = (
        Path(artifacts["checkpoint"]["path"]) if recorded else _default_checkpoint(store, run_id)
    )
    try:
        if recorded and not _has_checkpoint(ckpt_path):
            raise CheckpointError(
                f"checkpoint {ckpt_path} is missing, but the store records it for run {run_id}"
            )
        if _has_checkpoint(ckpt_path):
            return ckpt_path, int(load_checkpoint(ckpt_path)["step"]), True
    except CheckpointError as exc:
        if not restart:
            raise CheckpointError(
                f"{exc}; to start run {run_id} over from step 0 instead, resume it with "
                "restart=True (descentlab train --resume ID --restart)"
            ) from None
        return ckpt_path, -1, False
    return ckpt_path, -1, True


def _has_checkpoint(path: Path) -> bool:
    """A checkpoint is there, or its checksum file says one was written."""
    return path.is_file() or checksum_path(path).is_file()
