"""A run built from its config, each part made once in its own module, in the order a run
needs them (data, model and losses, optimizer and schedules, regularizers), alone or in a
vectorized group alike; what a built run evaluates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from descentlab.engine import evaluation
from descentlab.engine.config import RunConfig, display_name
from descentlab.engine.modelling import MODEL_FIELDS, make_model
from descentlab.engine.optimizing import make_optimizer_and_schedules
from descentlab.engine.rundata import DATA_FIELDS, ConfigPart, RunData, eval_splits, load_checked
from descentlab.engine.splits import test_data
from descentlab.regularize import EarlyStopping, batch_pipeline

__all__ = ["Built", "build", "split_metrics", "test_metrics"]


@dataclass(kw_only=True)
class Built(RunData):
    """A run built: its data (:class:`~descentlab.engine.rundata.RunData`), its model and
    losses (:func:`~descentlab.engine.modelling.make_model`), its optimizer and schedules
    (:func:`~descentlab.engine.optimizing.make_optimizer_and_schedules`), its regularizers."""

    model: nn.Module
    model_name: str
    loss_name: str
    train_loss: Callable[[Tensor, Tensor], Tensor]
    eval_loss: Callable[[Tensor, Tensor], Tensor]
    optimizer: Any
    scheduler: Any
    rule_scheduler: Any
    rule_monitor: str | None
    scheduled: tuple[str, ...]
    early: Any
    #: the run's display name (:meth:`RunConfig.run_name` with the resolved model)
    run_name: str = ""
    #: the input regularizers of a training batch (:func:`~descentlab.regularize.batch_pipeline`)
    pipeline: Any = None
    #: whether the optimizer has modes (:func:`~descentlab.engine.optimizing.optimizer_modes`)
    has_modes: bool = False


def build(
    config: RunConfig, data: Any = None, *, shard: Callable[[nn.Module], None] | None = None
) -> Built:
    """Load, check and build everything one run needs; raises before any training state
    exists. ``config`` was checked where it entered
    (:func:`~descentlab.engine.config.checked_config`): it is not again.
    ``shard``: called with the model once it is built and probed, before the optimizer is
    made from its parameters (a sharded run's ``fully_shard``,
    :mod:`descentlab.engine.launch`)."""
    # the data and the model are each handed the fields they are made from, not the optimizer's
    of_data, of_model = (ConfigPart(**{f: getattr(config, f) for f in fields})
                         for fields in (DATA_FIELDS, MODEL_FIELDS))  # fmt: skip
    d = load_checked(of_data, data, torch.device(config.device))
    model, model_name, loss_name, train_loss, eval_loss = make_model(of_model, d.splits, d.probe)
    if shard is not None:
        shard(model)
    optimizer, scheduler, rules, monitor, modes = make_optimizer_and_schedules(
        config, model, d.total_steps
    )
    spec = config.early_stopping
    early = None if spec is None else EarlyStopping.from_spec(spec)
    pipeline = batch_pipeline(config.augment, config.input_noise, config.mixup_alpha,
                              config.cutmix_alpha, 1 + len(d.splits.input_shape))  # fmt: skip
    name = display_name(config.name, config.problem, model_name, config.optimizer)
    return Built(**vars(d), model=model, model_name=model_name, loss_name=loss_name,
                 train_loss=train_loss, eval_loss=eval_loss, optimizer=optimizer,
                 scheduler=scheduler, rule_scheduler=rules, rule_monitor=monitor,
                 has_modes=modes, scheduled=tuple(config.schedule), early=early, run_name=name,
                 pipeline=pipeline)  # fmt: skip


def split_metrics(b: Built, train: bool = True) -> dict[str, float]:
    """``train/*`` and ``val/*`` metrics of the run's model
    (:func:`~descentlab.engine.evaluation.evaluate`); ``train`` False: ``val/*`` only
    (``RunConfig.evaluate_train``)."""
    return evaluation.metrics_of(b.model, b.eval_loss, b.classification, eval_splits(b, train))


def test_metrics(b: Built) -> dict[str, float]:
    """The one evaluation on the test split (unsealed for it, sealed again afterwards)."""
    device = b.x_train.device
    x, y = test_data(b.splits, device)
    return evaluation.evaluate(b.model, x, y, b.eval_loss, classification=b.classification)
