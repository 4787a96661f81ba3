"""A run's optimizer and schedules, made from its config over the model's parameters; a
hyperparameter's value read back from a param group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from descentlab import optim, schedules
from descentlab._announce import once, said
from descentlab.engine.config import RunConfig, build_schedule
from descentlab.optim.stored import announce_unused
from descentlab.schedules.scheduler import parse_key

__all__ = [
    "hyper_value",
    "make_optimizer",
    "make_optimizer_and_schedules",
    "make_schedulers",
    "optimizer_modes",
    "split_schedules",
]


def make_optimizer_and_schedules(
    config: RunConfig, model: nn.Module, total_steps: int
) -> tuple[Any, Any, Any, str | None, bool]:
    """``(optimizer, per-step Scheduler, per-evaluation loss-rule Scheduler, the metric the
    rules watch, whether the optimizer has train and eval modes)`` of ``config``'s run over
    ``model``'s trainable parameters (``total_steps``: a schedule's default length)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(config.optimizer, params, config.hyper)
    # int8 state that stores none of this model's tensors: said once (it is float32's step)
    announce_unused(type(optimizer).__name__, getattr(optimizer, "state_dtype", None), params)
    announce_batch_norm_caveats(model, optimizer, config.accumulate)
    has_modes = optimizer_modes(optimizer)
    scheduler, rule_scheduler, rule_monitor = make_schedulers(
        optimizer, config.schedule, total_steps
    )
    return optimizer, scheduler, rule_scheduler, rule_monitor, has_modes


def announce_batch_norm_caveats(model: nn.Module, optimizer: Any, accumulate: int) -> None:
    """Warn once per process where batch norm makes a run other than it looks, never silently
    different: gradients accumulated over ``accumulate`` micro-batches (each micro-batch is
    normalised with its own statistics and updates the running ones on its own, so the step is
    not that of one batch ``accumulate`` times larger), and an optimizer with train/eval modes
    (Schedule-Free: its evaluation weights, the average, are normalised with running statistics
    gathered at the training iterates, not recomputed at the average as the schedulefree
    package recommends)."""
    name = type(optimizer).__name__
    said_now = [
        (("bn-accumulate", accumulate), accumulate > 1),
        (("bn-modes", name), optimizer_modes(optimizer)),
    ]
    due = [key for key, applies in said_now if applies and not said(key)]
    if not due or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    lines = {
        "bn-accumulate": f"descentlab: accumulate={accumulate} with a batch-norm model "
        f"({type(model).__name__}) is not one batch that many times larger: batch norm "
        "normalises each micro-batch with its own statistics (the gradients differ from the "
        "larger batch's by about 1e-2 relative); use a larger --batch-size for the exact "
        "larger batch",
        "bn-modes": f"descentlab: {name} evaluates at its averaged weights, but the model's "
        "batch-norm running statistics were gathered at the training iterates; they are not "
        "recomputed before evaluation (the schedulefree package recommends it), so its "
        "validation and test metrics are those of the averaged weights with the training "
        "statistics",
    }
    for key in due:
        once(key, lines[key[0]], stacklevel=3)


def optimizer_modes(optimizer: Any) -> bool:
    """Whether ``optimizer`` has ``train()`` and ``eval()`` modes (Schedule-Free optimizers:
    their evaluation weights differ from the ones gradients are taken at).

    The engine calls ``train()`` before training and around every evaluation ``eval()``, then
    ``train()`` again; a finished run's optimizer (and model) stay in eval mode.

    Example:
        >>> import torch
        >>> optimizer_modes(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
        False
    """
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


def make_optimizer(spec: Any, params: Any, hyper: Mapping[str, Any]) -> Any:
    """The optimizer a config names: a registry name (its hyperparameters checked against the
    factory's signature), an update rule, or a factory ``f(params, **hyper)``; over
    ``optim.SETTINGS_ONLY`` a name's or a rule's settings checked, nothing built."""
    if isinstance(spec, str):
        factory = optim.get(spec)
        accepted = list(optim.factory_keywords(factory, hyper))  # a wrapper's base's too
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


def make_schedulers(
    optimizer: Any, spec: Mapping[str, Any], total_steps: int
) -> tuple[Any, Any, str | None]:
    """(per-step Scheduler, per-evaluation loss-rule Scheduler, the metric the rules watch)."""
    if not spec:
        return None, None, None
    per_step, per_eval, monitor = split_schedules(spec, total_steps)
    return (
        schedules.Scheduler(optimizer, per_step) if per_step else None,
        schedules.Scheduler(optimizer, per_eval) if per_eval else None,
        monitor,
    )


def split_schedules(
    spec: Mapping[str, Any], total_steps: int
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """``spec`` built: (per-step schedules, loss-driven rules, the one metric the rules watch)."""
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
    return per_step, per_eval, (monitors.pop() if monitors else None)


def hyper_value(group: Mapping[str, Any], key: str) -> Any:
    """The value of hyperparameter ``key`` (``"lr"``, or ``"betas[1]"`` for one entry of a
    tuple) in an optimizer's param group."""
    name, index = parse_key(key)
    value = group.get(name)
    if index is not None and isinstance(value, list | tuple):
        value = value[index]
    return value
