"""A run's data: loaded (a dataset by name, a problem function, or the data given), checked
against its config, read onto its device; the smallest batch a step trains on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from descentlab.engine.splits import Split, as_split
from descentlab.engine.streaming import read_split
from descentlab.problems import data as datasets
from descentlab.problems.problem import is_problem_ref, load_problem

__all__ = [
    "DATA_FIELDS",
    "ConfigPart",
    "RunData",
    "check_batch_size",
    "eval_splits",
    "load_checked",
    "smallest_batch",
    "total_steps",
]


class ConfigPart(SimpleNamespace):
    """Some fields of a :class:`~descentlab.engine.config.RunConfig`, read as attributes: what
    a step of building a run that needs only them (its data, its model) is handed, not the
    rest (the optimizer's settings), as :func:`~descentlab.engine.building.build` makes them."""


#: the fields of a run's config its data are loaded and checked by (:func:`load_checked`)
DATA_FIELDS = ("problem", "problem_options", "split_seed", "val_fraction", "batch_size", "steps",
               "epochs", "drop_last", "accumulate", "label_smoothing", "mixup_alpha",
               "cutmix_alpha", "augment", "evaluate_train")  # fmt: skip


@dataclass
class RunData:
    """A run's data, checked, as :class:`~descentlab.engine.building.Built` holds them: the
    splits on the device as tensors, or (a problem of datasets) each a
    :class:`~descentlab.engine.streaming.StreamedSplit` and its targets None; ``probe``, the
    smallest batch a step trains on (the model is tried on it)."""

    splits: Any
    classification: bool
    total_steps: int
    x_train: Any
    y_train: Tensor | None
    x_val: Any
    y_val: Tensor | None
    train_split: Split
    smallest_batch: int | None
    probe: tuple[Tensor, Tensor]
    #: the ``(split, x, y)`` each evaluation measures (:func:`eval_splits` of
    #: ``RunConfig.evaluate_train``)
    measured: tuple[tuple[str, Any, Any], ...] = ()


def load_checked(config: ConfigPart, data: Any, device: torch.device) -> RunData:
    """The run's data (``data``, or the problem ``config`` names, loaded), checked against
    ``config`` (its :data:`DATA_FIELDS`: :class:`ConfigPart`) and
    read onto ``device``; raises before any model exists."""
    splits = data
    if splits is None and is_problem_ref(config.problem):
        # a built-in problem object (charlm) or a problem function named by the config
        splits = load_problem(config.problem.split("#", 1)[0], **config.problem_options).splits(
            seed=config.split_seed, val_fraction=config.val_fraction
        )
    if splits is None:
        splits = datasets.load(
            config.problem,
            seed=config.split_seed,
            val_fraction=config.val_fraction,
            **config.problem_options,
        )
    classification = splits.task == "classification"
    splits.check_labels()  # (a stream's are checked batch by batch as it is read)
    n_train = splits.n_train
    check_batch_size(config.batch_size, n_train)
    total = total_steps(config, n_train)
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
    if config.augment is not False and len(splits.input_shape) not in (1, 2, 3):
        raise ValueError(
            f"augment needs 1-D signals or images, got inputs of shape {tuple(splits.input_shape)}"
        )
    smallest = smallest_batch(config, n_train)
    x_train, y_train = read_split(splits, "train", device)  # (a problem of datasets: a
    x_val, y_val = read_split(splits, "val", device)  # StreamedSplit each, its targets None)
    train_split = as_split(x_train, y_train)
    run_data = RunData(splits, classification, total, x_train, y_train, x_val, y_val,
                       train_split, smallest, train_split.head(smallest))  # fmt: skip
    run_data.measured = eval_splits(run_data, config.evaluate_train)
    return run_data


def check_batch_size(batch_size: Any, n_train: int | None) -> None:
    """A batch no larger than the training examples (``n_train``; None: a stream's, unknown)."""
    if isinstance(batch_size, int) and n_train is not None and batch_size > n_train:
        raise ValueError(
            f"batch_size must be <= the number of training examples ({n_train}), got {batch_size}"
        )


def total_steps(config: ConfigPart, n_train: int | None) -> int:
    """The optimizer steps of ``config``'s run over ``n_train`` training examples."""
    if config.steps is not None:
        return int(config.steps)
    if n_train is None:
        raise ValueError(
            "the training data are a stream without a length: give steps (a number of "
            "optimizer steps) instead of epochs"
        )
    per_epoch: float = 1 if config.batch_size is None else n_train / config.batch_size
    per_epoch = math.floor(per_epoch) if config.drop_last else math.ceil(per_epoch)
    # with accumulation an epoch is its micro-batches: accumulate of them per step
    return int(config.epochs) * math.ceil(per_epoch / config.accumulate)


def smallest_batch(config: ConfigPart, n_train: int | None) -> int | None:
    """The fewest examples a step of ``config`` trains on (None: a stream of unknown
    length, full batch): the batch size, or the last short batch of an epoch."""
    if config.batch_size is None or n_train is None or config.drop_last:
        return n_train if config.batch_size is None else config.batch_size
    return n_train % config.batch_size or config.batch_size


def eval_splits(b: Any, train: bool = True) -> tuple[tuple[str, Any, Any], ...]:
    """The ``(split, x, y)`` an evaluation measures: training and validation splits, or
    (``train`` False, ``RunConfig.evaluate_train``) the validation split only."""
    val = ("val", b.x_val, b.y_val)
    return (("train", b.x_train, b.y_train), val) if train else (val,)
