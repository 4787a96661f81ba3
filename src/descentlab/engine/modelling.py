"""A run's model and losses, made from its config and data; the model probed on the smallest
batch a step trains on, before any training state exists."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from descentlab import losses
from descentlab._usercode import raised_by_user
from descentlab.engine.rundata import ConfigPart
from descentlab.problems import models
from descentlab.problems.problem import build_model

__all__ = ["MODEL_FIELDS", "make_model", "probe_model"]

#: the fields of a run's config its model and losses are made from (:func:`make_model`)
MODEL_FIELDS = ("model", "loss", "model_options", "loss_options", "label_smoothing", "device",
                "seed")  # fmt: skip


def make_model(
    config: ConfigPart, splits: Any, probe: tuple[Tensor, Tensor]
) -> tuple[nn.Module, str, str, Any, Any]:
    """``(model, model name, loss name, training loss, evaluation loss)``: the model and losses
    ``config`` names (its :data:`MODEL_FIELDS`: :class:`~descentlab.engine.rundata.ConfigPart`;
    or a problem's own factory and loss), the model initialised from the
    run's seed on its device and probed on the batch ``probe``."""
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
    probe_model(model, train_loss, (model_name, loss_name), *probe)
    return model, model_name, loss_name, train_loss, eval_loss


@torch.no_grad()
def probe_model(
    model: nn.Module, loss_fn: Any, names: tuple[str, str], x: Tensor, y: Tensor
) -> None:
    """A training-mode forward pass and loss on the smallest batch the run will see, on a copy
    of the model with the random state saved: model/loss mismatches and models that cannot
    train on such a batch (batch norm on one example) fail here, before training."""
    model_name, loss_name = names
    probe = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[]):
        try:
            out = probe(x)
        except (RuntimeError, ValueError, IndexError) as exc:
            if raised_by_user(exc):  # the user's own error, as raised
                raise
            raise ValueError(
                f"model {model_name!r} cannot train on a batch of inputs of shape "
                f"{tuple(x.shape)}: {exc}"
            ) from exc
        try:
            value = loss_fn(out, y)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ValueError(
                f"loss {loss_name!r} cannot compare the model's outputs {tuple(out.shape)} with "
                f"the targets {tuple(y.shape)}: "
                + (str(exc).strip().splitlines() or [""])[0]
                + losses.mismatch_hint(out, y)
            ) from exc
    if value.dim() != 0:
        raise ValueError(f"loss {loss_name!r} must reduce to a scalar, got {tuple(value.shape)}")
