"""What the trial's optimizer did in your code (:func:`watch`): its steps taken and attempted
(a ``GradScaler``'s skipped ones too), the hyperparameters each step used, another
``torch.optim.Optimizer`` stepping its parameters; the param groups that would override a
tuned value refused (the user's-code kind: :mod:`~descentlab.experiments.kinds.code_run`)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

__all__ = ["SCALED", "on_the_device", "watch"]


def watch(state: Any, opt: Any) -> None:
    """Count ``opt``'s steps -- those it took, and those attempted (a ``GradScaler`` skips
    a step whose gradients overflowed: attempted, not taken) -- record the hyperparameters
    each step used, and notice another ``torch.optim.Optimizer`` stepping its parameters
    (in-place edits that are no optimizer's step -- clamping, ``Embedding(max_norm)``,
    a Lookahead or average copied in under ``no_grad`` -- are the model's own)."""
    from torch.optim import optimizer as optimizers

    state.built = opt
    params = [p for g in opt.param_groups for p in g["params"]]
    on_the_device(params, state.device, state.where, "were given to run.optimizer")
    _refuse_overriding_groups(opt, state.tuned, state.where)
    mine = {id(p) for p in params}
    # the model's size as the trial built it (a scale study's parameters)
    state.params = sum(p.numel() for p in {id(p): p for p in params}.values())
    stepper = opt.step

    def step(_: Any, *args: Any, **kwargs: Any) -> Any:
        state.attempted += 1
        got = stepper(*args, **kwargs)
        if state.lines is not None:  # (the trial's progress lines: a clock read, a print)
            state.lines.update(1)
        return got

    # (attempted steps counted, a GradScaler's skipped ones too; a bound method, as
    # torch's schedulers expect)
    opt.step = types.MethodType(step, opt)

    def before(*_: Any) -> None:
        for i, group in enumerate(opt.param_groups):
            for key, value in state.tuned.items():
                if key in state.scheduled_keys or key not in group or (i, key) in state.used:
                    continue
                used, why = group[key], ""
                if key == "lr" and ("max_lr" in group or "initial_lr" in group):
                    used = group.get("max_lr", group.get("initial_lr"))  # (a scheduler's)
                    why = "base"
                elif key in ("momentum", "betas") and "max_momentum" in group:
                    # (a scheduler's cycle_momentum: OneCycleLR's groups hold its max_lr)
                    why = "OneCycleLR" if "max_lr" in group else "CyclicLR"
                if used != value and not (key in _ZERO_ALLOWED and used == 0):
                    state.used[(i, key)] = (state.stepped + 1, used, why)

    def after(*_: Any) -> None:
        state.stepped += 1

    opt.register_step_pre_hook(before)
    opt.register_step_post_hook(after)
    inside: list[tuple[Any, int]] = []

    def any_before(other: Any, *_: Any) -> None:
        if other is not opt:
            inside.append((other, state.stepped))

    def any_after(other: Any, *_: Any) -> None:
        if other is opt or not inside:
            return
        _, at = inside.pop()
        theirs = {id(p) for g in other.param_groups for p in g["params"]}
        if at == state.stepped and theirs & mine and state.rival is None:
            state.rival = type(other).__name__  # (a wrapper stepping ours inside is not one)

    state.hooks += [
        optimizers.register_optimizer_step_pre_hook(any_before),
        optimizers.register_optimizer_step_post_hook(any_after),
    ]
    _count_skipped()
    SCALED.append(state)


#: the trials whose optimizers a ``GradScaler`` may step now (its skipped steps counted)
SCALED: list[Any] = []


def _count_skipped() -> None:
    """``GradScaler``'s step counted for the trial's optimizer even where it skips it (its
    gradients overflowed): installed once, it counts for the trials in :data:`SCALED` only."""
    from torch.amp.grad_scaler import GradScaler

    if getattr(GradScaler._maybe_opt_step, "_descentlab", False):
        return
    original = GradScaler._maybe_opt_step

    def maybe(self: Any, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        for state in SCALED:
            if state.built is optimizer:
                at = state.attempted
                got = original(self, optimizer, *args, **kwargs)
                state.attempted += state.attempted == at  # (skipped: attempted all the same)
                return got
        return original(self, optimizer, *args, **kwargs)

    maybe._descentlab = True  # type: ignore[attr-defined]
    GradScaler._maybe_opt_step = maybe


#: the hyperparameters a group may set to zero where the trial tunes them (no decay on biases
#: and norms: a choice of which parameters decay, not a value of the rate)
_ZERO_ALLOWED = ("weight_decay",)


def _refuse_overriding_groups(opt: Any, tuned: Mapping[str, Any], where: str) -> None:
    """ValueError naming the group and the value where a param group given to
    ``run.optimizer`` sets a hyperparameter the trial tunes to another value: the trial's
    value would never be used, and its recommendation would name a value no run trained with."""
    for i, group in enumerate(opt.param_groups):
        for key, value in tuned.items():
            mine = group.get(key, value)
            if mine == value or (key in _ZERO_ALLOWED and mine == 0):
                continue
            zero = f" or to 0 (no {key.replace('_', ' ')})" if key in _ZERO_ALLOWED else ""
            raise ValueError(
                f"{where}: param group {i} given to run.optimizer sets {key}={mine!r}, which the "
                f"trial tunes ({key}={value!r}): leave {key!r} out of the group (the trial's "
                f"value applies to it){zero}"
            )


def on_the_device(given: Any, device: str, where: str | None = None, how: str = "are") -> str:
    """Where parameters (a list, or an optimizer's) are not all on the comparison's device:
    what to say (ValueError naming ``where`` when it is given); else ``""``."""
    import torch

    if hasattr(given, "param_groups"):
        given = [p for g in given.param_groups for p in g["params"]]
    want = torch.device(device)
    found = sorted({str(p.device) for p in given if p.device.type != want.type})
    if not found:
        return ""
    text = (
        f"the parameters that {how} are on {', '.join(found)}, the comparison's device is "
        f"{device}: leave the model where the run puts it (--device chooses; run.device says)"
    )
    if where is not None:
        raise ValueError(f"{where}: {text}")
    return text
