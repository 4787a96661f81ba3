"""What the trial's optimizer did in your code (:func:`watch`): its steps taken and attempted
(a ``GradScaler``'s skipped ones too), the hyperparameters each step used (judged across the
trials: :mod:`~descentlab.experiments.kinds.code_honour`), another ``torch.optim.Optimizer``
stepping its parameters (the user's-code kind: :mod:`~descentlab.experiments.kinds.code_run`)."""

from __future__ import annotations

import types
from typing import Any

from descentlab.experiments.kinds.code_honour import given, record

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
    given(state, opt)
    mine = {id(p) for p in params}
    # the model's size as the trial built it (a scale study's parameters)
    state.params = sum(p.numel() for p in {id(p): p for p in params}.values())
    stepper = opt.step
    state.builds.append(0)  # (its steps: a second optimizer built is named by its count)
    mine_at = len(state.builds) - 1

    def step(_: Any, *args: Any, **kwargs: Any) -> Any:
        state.attempted += 1
        state.builds[mine_at] += 1
        closure = kwargs.pop("closure", args[0] if args else None)
        if closure is not None:  # (LBFGS: the function evaluations a step takes, counted)

            def counted() -> Any:
                state.evaluations += 1
                return closure()

            args, kwargs = (counted, *args[1:]), kwargs
        got = stepper(*args, **kwargs)
        if state.lines is not None:  # (the trial's progress lines: a clock read, a print)
            state.lines.update(1)
        return got

    # (attempted steps counted, a GradScaler's skipped ones too; a bound method, as
    # torch's schedulers expect)
    opt.step = types.MethodType(step, opt)

    def before(*_: Any) -> None:  # (the values each group uses, judged across trials)
        record(state, opt)

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
