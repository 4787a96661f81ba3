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
differ only in the batch (seeds 000-002). Every random draw comes from a stream derived from
the run's seed: the global torch generator (model initialisation, dropout; saved and restored
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
import copy
import inspect
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from descentlab.engine.checkpoint import (
    CheckpointError,
    checksum_path,
    load_checkpoint,
    save_checkpoint,
)
from descentlab.engine.config import RunConfig, build_schedule
from descentlab.store import MetricSeries, Store, provenance

__all__ = ["RunResult", "evaluate", "optimizer_modes", "resume", "train"]

_CHECKPOINT_FORMAT = 1
# Evaluate in one forward pass up to this many examples (exact means for any loss); beyond it,
# in chunks averaged by size.
_EVAL_CHUNK = 16384


@dataclass
class RunResult:
    """What one run produced.

    Attributes:
        status: ``completed``, ``diverged`` or ``interrupted`` (paused by ``until_step`` or a
            signal; resumable).
        steps: optimizer steps taken.
        epochs: passes over the training data (fractional).
        wall_time: seconds spent training and evaluating, summed over resumptions.
        metrics: ``{"split/name": MetricSeries(steps, values)}`` at every evaluation:
            ``train/loss``, ``train/accuracy``, ``val/loss``, ``val/accuracy`` (accuracy for
            classification), ``train/objective`` (the mean regularized mini-batch loss since
            the previous evaluation), ``progress/epoch``, ``progress/wall_time``,
            ``hyper/<name>`` for scheduled hyperparameters, and ``test/*`` at the last step.
        summary: the returned model's final metrics (after restoring the best weights if early
            stopping asked for it) plus ``steps``, ``epochs``, ``wall_time``, ``best_step``.
        model: the trained model.
        config: the run's configuration.
        run_id: the run's id in the store, or None.
        message: why the run ended, if not by completing its steps.
        checkpoint_path: the run's checkpoint file, or None.
    """

    status: str
    steps: int
    epochs: float
    wall_time: float
    metrics: dict[str, MetricSeries]
    summary: dict[str, Any]
    model: nn.Module
    config: RunConfig
    run_id: int | None = None
    message: str | None = None
    checkpoint_path: Path | None = None


# ------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    classification: bool,
) -> dict[str, float]:
    """Mean loss (and accuracy, for classification) of ``model`` on ``(x, y)`` in eval mode.

    Args:
        model: the model (put in eval mode; its previous mode is restored).
        x: inputs.
        y: targets (class indices for classification).
        loss_fn: a mean-reduced loss ``loss_fn(outputs, targets)``.
        classification: also report accuracy, ``mean(argmax(outputs) == y)`` (for one output,
            ``outputs > 0``).

    Accuracy counts every target: for targets with more than one entry per example (a
    language model's next token at each position) it is the fraction of correct entries.
    Regression also reports ``rmse``, ``sqrt(mean((outputs - targets) ** 2))`` over every
    entry, when the outputs have the targets' number of entries.

    Returns:
        ``{"loss": ..., "accuracy": ...}`` (accuracy only for classification), or
        ``{"loss": ..., "rmse": ...}`` for regression.

    Example:
        >>> m = nn.Linear(2, 2)
        >>> out = evaluate(m, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long),
        ...                nn.CrossEntropyLoss(), classification=True)
        >>> sorted(out)
        ['accuracy', 'loss']
    """
    was_training = model.training
    model.eval()
    try:
        n = int(x.shape[0])
        total_loss = 0.0
        correct = 0
        squared = 0.0
        entries = 0
        for start in range(0, n, _EVAL_CHUNK):
            xb, yb = x[start : start + _EVAL_CHUNK], y[start : start + _EVAL_CHUNK]
            out = model(xb)
            total_loss += float(loss_fn(out, yb)) * xb.shape[0]
            entries += yb.numel()
            if classification:
                pred = (out.reshape(-1) > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
                correct += int((pred.reshape(yb.shape) == yb).sum())
            elif out.numel() == yb.numel():
                squared += float(((out.reshape(yb.shape) - yb) ** 2).sum())
            else:
                squared = math.nan
        result = {"loss": total_loss / n}
        if classification:
            result["accuracy"] = correct / entries
        elif math.isfinite(squared):
            result["rmse"] = math.sqrt(squared / entries)
        return result
    finally:
        model.train(was_training)


def optimizer_modes(optimizer: Any) -> bool:
    """Whether ``optimizer`` has ``train()`` and ``eval()`` modes (Schedule-Free optimizers:
    their evaluation weights differ from the ones gradients are taken at).

    The engine calls ``train()`` before training and around every evaluation ``eval()``, then
    ``train()`` again; a finished run's optimizer (and model) stay in eval mode.

    Example:
        >>> optimizer_modes(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
        False
    """
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


# ------------------------------------------------------------------------------------------
# building a run from its config


class _NonFinite(Exception):
    """Raised inside the closure when the loss is not finite (stops before the update)."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.value = value


def _stream_seed(seed: int, stream: int) -> int:
    # Independent, reproducible streams from one seed (NumPy's SeedSequence hashing).
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class _Built:
    splits: Any
    classification: bool
    model_name: str
    loss_name: str
    model: nn.Module
    train_loss: Callable[[Tensor, Tensor], Tensor]
    eval_loss: Callable[[Tensor, Tensor], Tensor]
    optimizer: Any
    scheduler: Any
    rule_scheduler: Any
    rule_monitor: str | None
    scheduled: tuple[str, ...]
    early: Any
    total_steps: int
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor


def _make_optimizer(spec: Any, params: list[nn.Parameter], hyper: Mapping[str, Any]) -> Any:
    from descentlab import optim

    if isinstance(spec, str):
        factory = optim.get(spec)
        accepted = [n for n in inspect.signature(factory).parameters if n != "params"]
        unknown = sorted(set(hyper) - set(accepted))
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for optimizer {spec!r}; valid: "
                + ", ".join(accepted)
            )
        return factory(params, **hyper)
    if isinstance(spec, optim.Rule):
        return optim.Optimizer(params, spec, **hyper)
    return spec(params, **hyper)


def _make_schedulers(
    optimizer: Any, spec: Mapping[str, Any], total_steps: int
) -> tuple[Any, Any, str | None]:
    """(per-step Scheduler, per-evaluation loss-rule Scheduler, the metric the rules watch)."""
    if not spec:
        return None, None, None
    from descentlab import schedules

    per_step: dict[str, Any] = {}
    per_eval: dict[str, Any] = {}
    monitors: set[str] = set()
    for key, value in spec.items():
        built, monitor = build_schedule(value, total_steps=total_steps)
        if monitor is None:
            per_step[key] = built
        else:
            per_eval[key] = built
            monitors.add(monitor)
    if len(monitors) > 1:
        raise ValueError(f"loss-driven schedules must watch one metric, got {sorted(monitors)}")
    return (
        schedules.Scheduler(optimizer, per_step) if per_step else None,
        schedules.Scheduler(optimizer, per_eval) if per_eval else None,
        monitors.pop() if monitors else None,
    )


def _make_early_stopping(spec: Mapping[str, Any] | None) -> Any:
    if spec is None:
        return None
    from descentlab import regularize

    monitor = spec.get("monitor", "val/loss")
    return regularize.EarlyStopping(
        patience=int(spec.get("patience", 10)),
        min_delta=float(spec.get("min_delta", 0.0)),
        mode="max" if monitor.endswith("accuracy") else "min",
        restore_best=bool(spec.get("restore_best", True)),
    )


def _total_steps(config: RunConfig, n_train: int) -> int:
    if config.steps is not None:
        return int(config.steps)
    if config.batch_size is None:
        per_epoch = 1
    elif config.drop_last:
        per_epoch = n_train // config.batch_size
    else:
        per_epoch = math.ceil(n_train / config.batch_size)
    return int(config.epochs) * per_epoch


def _build(config: RunConfig, data: Any = None) -> _Built:
    """Load, check and build everything; raises before any training state exists."""
    from descentlab import losses
    from descentlab.problems import data as datasets
    from descentlab.problems import models

    config.validate()
    splits = data
    if splits is None:
        splits = datasets.load(
            config.problem,
            seed=config.split_seed,
            val_fraction=config.val_fraction,
            **config.problem_options,
        )
    classification = splits.task == "classification"
    if classification:
        datasets.check_labels(splits.y_train, splits.n_classes, name="y_train")
        datasets.check_labels(splits.y_val, splits.n_classes, name="y_val")
    n_train = int(splits.x_train.shape[0])
    if config.batch_size is not None and config.batch_size > n_train:
        raise ValueError(
            f"batch_size must be <= the number of training examples ({n_train}), "
            f"got {config.batch_size}"
        )
    total = _total_steps(config, n_train)
    if total < 1:
        raise ValueError(
            f"drop_last with batch_size {config.batch_size} leaves no step per epoch "
            f"({n_train} training examples)"
        )
    if not classification:
        for key in ("label_smoothing", "mixup_alpha", "cutmix_alpha"):
            if getattr(config, key) > 0:
                raise ValueError(
                    f"{key} needs a classification problem, got {getattr(config, key)} for "
                    f"{config.problem!r} ({splits.task})"
                )
    if config.augment is not False and splits.x_train.dim() not in (2, 3, 4):
        raise ValueError(
            f"augment needs 1-D signals or images, got inputs of shape "
            f"{tuple(splits.x_train.shape[1:])}"
        )

    model_spec = config.model or splits.default_model
    loss_spec = config.loss or splits.default_loss
    # A problem of your own (descentlab.problems.problem) brings a model factory and may
    # bring a loss function instead of names.
    model_name = model_spec if isinstance(model_spec, str) else repr(model_spec)
    loss_name = loss_spec if isinstance(loss_spec, str) else repr(loss_spec)
    model_options = dict(config.model_options)
    if model_name == "quadratic_deep" and getattr(splits, "hessian", None) is not None:
        model_options.setdefault("hessian", splits.hessian)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    if isinstance(model_spec, str):
        model = models.build(
            model_name, input_shape=splits.input_shape, n_outputs=splits.n_outputs, **model_options
        ).to(device)
    else:
        from descentlab.problems.problem import build_model

        model = build_model(model_spec, f"model {model_name!r}", **model_options).to(device)
    if isinstance(loss_spec, str):
        eval_loss = losses.get(loss_name, **config.loss_options)
    elif config.loss_options or config.label_smoothing > 0:
        raise ValueError(
            f"loss {loss_name!r} is a function: loss_options and label_smoothing do not apply"
        )
    else:
        eval_loss = loss_spec
    train_loss = eval_loss
    if config.label_smoothing > 0:
        train_loss = losses.get(
            loss_name, **{**config.loss_options, "label_smoothing": config.label_smoothing}
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _make_optimizer(config.optimizer, params, config.hyper)
    scheduler, rule_scheduler, rule_monitor = _make_schedulers(optimizer, config.schedule, total)
    early = _make_early_stopping(config.early_stopping)

    x_train, y_train = splits.x_train.to(device), splits.y_train.to(device)
    x_val, y_val = splits.x_val.to(device), splits.y_val.to(device)
    smallest = n_train if config.batch_size is None else config.batch_size
    if config.batch_size is not None and not config.drop_last and n_train % config.batch_size:
        smallest = n_train % config.batch_size
    _probe(model, train_loss, (model_name, loss_name), x_train[:smallest], y_train[:smallest])
    return _Built(
        splits=splits,
        classification=classification,
        model_name=model_name,
        loss_name=loss_name,
        model=model,
        train_loss=train_loss,
        eval_loss=eval_loss,
        optimizer=optimizer,
        scheduler=scheduler,
        rule_scheduler=rule_scheduler,
        rule_monitor=rule_monitor,
        scheduled=tuple(config.schedule),
        early=early,
        total_steps=total,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
    )


@torch.no_grad()
def _probe(model: nn.Module, loss_fn: Any, names: tuple[str, str], x: Tensor, y: Tensor) -> None:
    """A training-mode forward pass and loss on the smallest batch the run will see, on a copy
    of the model with the random state saved: model/loss mismatches and models that cannot
    train on such a batch (batch norm on one example) fail here, before training."""
    model_name, loss_name = names
    probe = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[]):
        try:
            out = probe(x)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ValueError(
                f"model {model_name!r} cannot train on a batch of inputs of shape "
                f"{tuple(x.shape)}: {exc}"
            ) from exc
        try:
            value = loss_fn(out, y)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ValueError(
                f"loss {loss_name!r} cannot compare the model's outputs {tuple(out.shape)} with "
                f"the targets {tuple(y.shape)}: {exc}"
            ) from exc
    if value.dim() != 0:
        raise ValueError(f"loss {loss_name!r} must reduce to a scalar, got {tuple(value.shape)}")


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


Row = tuple[int, str, str, float]


class _Loop:
    """State of one run in progress; :meth:`state_dict` is exactly what a checkpoint holds."""

    def __init__(self, config: RunConfig, built: _Built) -> None:
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
        self.data_gen = torch.Generator().manual_seed(_stream_seed(config.seed, 1))
        self.aug_gen = torch.Generator().manual_seed(_stream_seed(config.seed, 2))
        self._xs = built.x_train
        self._ys = built.y_train
        self.finished = False  # set when the run has ended: evaluations leave eval mode on

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
        cfg, b = self.config, self.b
        model, loss_fn = b.model, b.train_loss
        if not (cfg.augment or cfg.input_noise > 0 or cfg.mixup_alpha or cfg.cutmix_alpha):
            return lambda xb, yb: loss_fn(model(xb), yb)
        from descentlab import regularize

        gen = self.aug_gen
        augment = None
        if cfg.augment is not False:
            opts = {} if cfg.augment is True else dict(cfg.augment)
            if b.x_train.dim() == 4:
                m = int(opts.get("max_translate", 1))
                augment = lambda x: regularize.augment_image(x, m, gen)  # noqa: E731
            else:
                shift = int(opts.get("max_shift", 3))
                scale = tuple(opts.get("scale_range", (0.9, 1.1)))
                augment = lambda x: regularize.augment_1d(x, shift, scale, gen)  # noqa: E731
        noise = cfg.input_noise
        mix, alpha = None, 0.0
        if cfg.mixup_alpha > 0:
            mix, alpha = regularize.mixup, cfg.mixup_alpha
        elif cfg.cutmix_alpha > 0:
            mix, alpha = regularize.cutmix, cfg.cutmix_alpha

        def objective(xb: Tensor, yb: Tensor) -> Tensor:
            if augment is not None:
                xb = augment(xb)
            if noise > 0:
                xb = regularize.add_input_noise(xb, noise, gen)
            if mix is None:
                return loss_fn(model(xb), yb)
            xm, ya, yb2, lam = mix(xb, yb, alpha, gen)
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
        b = self.b
        out: dict[str, float] = {}
        with self._evaluating():
            for split, x, y in (("train", b.x_train, b.y_train), ("val", b.x_val, b.y_val)):
                metrics = evaluate(b.model, x, y, b.eval_loss, classification=b.classification)
                out.update({f"{split}/{k}": v for k, v in metrics.items()})
        return out

    def _evaluation_rows(self) -> list[Row]:
        s, b = self.step, self.b
        values = self._split_metrics()
        if self.objective_count:
            values["train/objective"] = self.objective_sum / self.objective_count
        self.objective_sum, self.objective_count = 0.0, 0
        values["progress/epoch"] = self.epochs_done
        values["progress/wall_time"] = self.elapsed
        group = b.optimizer.param_groups[0]
        for key in b.scheduled:
            name, _, index = key.partition("[")
            value = group.get(name)
            if index and isinstance(value, list | tuple):
                value = value[int(index.rstrip("]"))]
            if isinstance(value, Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[f"hyper/{key}"] = float(value)
        return [(s, *k.split("/", 1), v) for k, v in values.items()]

    def test_metrics(self) -> dict[str, float]:
        """The one evaluation on the test split (unsealed for it, sealed again afterwards)."""
        b = self.b
        splits = b.splits
        splits.unseal_test()
        try:
            device = b.x_train.device
            x, y = splits.x_test.to(device), splits.y_test.to(device)
        finally:
            splits.seal_test()
        if b.classification:
            from descentlab.problems import data as datasets

            datasets.check_labels(y, splits.n_classes, name="y_test")
        with self._evaluating():
            return evaluate(b.model, x, y, b.eval_loss, classification=b.classification)

    # -- running --------------------------------------------------------------------------

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
        model, optimizer, scheduler = b.model, b.optimizer, b.scheduler
        objective = self._objective()
        total = b.total_steps
        eval_every = cfg.eval_every or max(1, total // 25)
        ckpt_every = cfg.checkpoint_every if on_checkpoint is not None else None
        early, monitor = b.early, (cfg.early_stopping or {}).get("monitor", "val/loss")
        weight_noise = None
        if cfg.weight_noise > 0:
            from descentlab import regularize

            weight_noise = regularize.WeightNoise(cfg.weight_noise, self.aug_gen)
        isfinite = math.isfinite
        batch: list[Tensor] = [b.x_train, b.y_train]
        last = [0.0]

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

        model.train()
        if optimizer_modes(optimizer):
            optimizer.train()
        started = time.perf_counter()
        if self.step == 0 and not self.history:
            # The starting point, so curves begin at the initial loss.
            on_rows(self._evaluation_rows())
            model.train()
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
                self.step += 1
                self.objective_sum += last[0]
                self.objective_count += 1
                if bar is not None:
                    bar.update(1)
                step = self.step
                if step % eval_every == 0 or step == total:
                    now = time.perf_counter()
                    self.elapsed += now - started
                    started = now
                    rows = self._evaluation_rows()
                    on_rows(rows)
                    values = {f"{sp}/{nm}": v for _, sp, nm, v in rows}
                    if bar is not None:
                        shown = (f"{k[4:]} {v:.4g}" for k, v in values.items() if k[:4] == "val/")
                        bar.set_postfix_str("val " + ", ".join(shown), refresh=False)
                    if not (isfinite(values["val/loss"]) and isfinite(values["train/loss"])):
                        return "diverged", f"non-finite evaluation loss at step {step}"
                    if b.rule_scheduler is not None:
                        b.rule_scheduler.step(loss=values[b.rule_monitor])
                    if early is not None and early.update(values[monitor], model, step=step):
                        return "completed", (
                            f"early stopping at step {step} (best {monitor} "
                            f"{early.best:.6g} at step {early.best_step})"
                        )
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _progress_bar(show: bool | None, total: int, initial: int, desc: str) -> Iterator[Any]:
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def _normalize(config: RunConfig | Mapping[str, Any]) -> RunConfig:
    if not isinstance(config, RunConfig):
        if not isinstance(config, Mapping):
            raise ValueError(f"config must be a RunConfig or a dict, got {type(config).__name__}")
        config = RunConfig.from_dict(config)
    config.validate()
    # A JSON round trip gives the config exactly as a resumed run will read it from the store
    # (tuples become lists), so that both build identical objects.
    if not config.has_custom_objects:
        config = RunConfig.from_dict(config.to_dict())
    return config


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
    config = _normalize(config)
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
        built = _build(config, data)
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
            run_id = store.create_run(
                config.to_dict(),
                name=config.run_name(built.model_name),
                seed=config.seed,
                provenance=provenance(
                    config.seed,
                    resolved={"model": built.model_name, "loss": built.loss_name},
                    total_steps=built.total_steps,
                    pid=os.getpid(),
                    hostname=socket.gethostname(),
                ),
            )
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
        with _StopRequest() as stop, _progress_bar(progress, total, loop.step, desc) as bar:
            status, message = loop.run(
                until=until,
                on_rows=on_rows,
                on_checkpoint=None if ckpt_path is None else on_checkpoint,
                stop=stop,
                bar=bar,
            )
        summary: dict[str, Any] = {}
        if status == "completed":
            if b.early is not None and b.early.restore_best:
                b.early.restore(b.model)
            loop.finished = True
            summary.update(loop._split_metrics())
            if config.evaluate_test:
                test = loop.test_metrics()
                on_rows([(loop.step, "test", k, v) for k, v in test.items()])
                summary.update({f"test/{k}": v for k, v in test.items()})
        if ckpt_path is not None:
            save(status)
        summary.update({"steps": loop.step, "epochs": loop.epochs_done, "wall_time": loop.elapsed})
        if b.early is not None:
            summary["best_step"] = b.early.best_step
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
        metrics=_series(loop.history),
        summary=summary,
        model=b.model,
        config=config,
        run_id=run_id,
        message=message,
        checkpoint_path=ckpt_path,
    )


def _series(rows: list[Row]) -> dict[str, MetricSeries]:
    grouped: dict[str, tuple[list[int], list[float]]] = {}
    for step, split, name, value in rows:
        steps, values = grouped.setdefault(f"{split}/{name}", ([], []))
        steps.append(step)
        values.append(value)
    return {
        k: MetricSeries(np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
        for k, (s, v) in sorted(grouped.items())
    }


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
    if record.status in ("completed", "diverged"):
        raise ValueError(f"run {run_id} has already ended with status {record.status!r}")
    prov = record.provenance
    pid = prov.get("pid")
    if (
        record.status == "running"
        and prov.get("hostname") == socket.gethostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and _pid_alive(pid)
    ):
        raise ValueError(f"run {run_id} is still running in process {pid}; stop it first")
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
    config = _normalize(config)
    artifacts = store.artifacts(run_id)
    recorded = "checkpoint" in artifacts
    ckpt_path = (
        Path(artifacts["checkpoint"]["path"]) if recorded else _default_checkpoint(store, run_id)
    )
    # Checked before anything changes. Without a checkpoint (none was ever written, or the
    # user asked to restart) the run starts over: every metric it logged goes.
    after, load = -1, True
    try:
        if recorded and not _has_checkpoint(ckpt_path):
            raise CheckpointError(
                f"checkpoint {ckpt_path} is missing, but the store records it for run {run_id}"
            )
        if _has_checkpoint(ckpt_path):
            after = int(load_checkpoint(ckpt_path)["step"])
    except CheckpointError as exc:
        if not restart:
            raise CheckpointError(
                f"{exc}; to start run {run_id} over from step 0 instead, resume it with "
                "restart=True (descentlab train --resume ID --restart)"
            ) from None
        after, load = -1, False
    store.set_status(run_id, "running", expect=("running", "interrupted", "failed"))
    store.truncate_metrics(run_id, after_step=after)
    resumes = [*prov.get("resumes", []), {"from_step": max(after, 0), "pid": os.getpid()}]
    store.update_provenance(run_id, {"resumes": resumes, "pid": os.getpid()})
    return _launch(config, store, run_id, data, ckpt_path, load, until_step, progress, on_start)


def _has_checkpoint(path: Path) -> bool:
    """A checkpoint is there, or its checksum file says one was written."""
    return path.is_file() or checksum_path(path).is_file()
