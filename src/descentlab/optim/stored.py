"""An optimizer's low-bit state (``state_dtype=``, :mod:`descentlab.optim.lowbit`): choosing it
for a chain, the parameters it takes, and state dicts that keep it exactly.

A state dict of a low-bit optimizer holds each stored entry as it is stored (the int8
format's codes ``<key>`` and block scales ``<key>_scale``, the bfloat16 format's bfloat16
tensors), so saving and loading it is exact and a resumed run continues bit for bit. torch's
``load_state_dict`` casts every floating state entry to its parameter's dtype; :func:`loader`
puts the stored entries back as they were saved. Loading a float state (a float32 optimizer's,
or torch's own) into a low-bit optimizer encodes it; loading int8 state into an optimizer that
does not store int8 is refused (the codes are not the moments).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from torch import Tensor

from descentlab._announce import once

from .base import Chain
from .form import FormRule, check_storable
from .lowbit import StateFormat, state_format


class Optimizer(Protocol):
    """What this module reads of a :class:`~descentlab.optim.optimizer.Optimizer`
    (described, not imported: the optimizer imports this module)."""

    rule: Chain
    state: Any
    param_groups: list[dict[str, Any]]
    state_dtype: StateFormat | None


__all__ = ["announce_unused", "check_stored_params", "loader", "stored_chain"]


def stored_chain(rule: Chain, state_dtype: str | StateFormat | None, owner: str) -> Any:
    """Store the state of every stateful rule of ``rule`` (its own copies: an optimizer's
    bound chain) as ``state_dtype``; returns the format (None: unchanged). A stateful rule not
    written in the form is refused by name."""
    fmt = state_format(state_dtype)
    if fmt is None:
        return None
    for r in rule.rules:
        if r.state_keys and not isinstance(r, FormRule):
            raise ValueError(
                f"{owner}: state_dtype={state_dtype!r} needs every stateful rule written in "
                f"the form (descentlab.optim.form); {r.name} is not, in {rule!r}"
            )
    for r in rule.rules:
        if isinstance(r, FormRule) and r.state_keys:
            check_storable(r, fmt, owner)
    for r in rule.rules:
        if isinstance(r, FormRule) and r.state_keys:
            r.state_format = fmt
    return fmt


def announce_unused(owner: str, fmt: StateFormat | None, params: list[Tensor]) -> None:
    """Warn once per optimizer, format and parameter shapes when ``fmt`` stores none of
    ``params``' state (int8 keeps tensors under its minimum size in float32): the optimizer
    then computes exactly what it would with float32 state."""
    small = getattr(fmt, "small", None)
    if small is None or not params or not all(small(p) for p in params):
        return
    largest = max(p.numel() for p in params)
    once(
        ("unused-lowbit", owner, fmt.tag, tuple(tuple(p.shape) for p in params)),
        f"descentlab: {owner}(state_dtype={fmt.name!r}) changes nothing for these parameters: "
        f"the largest has {largest} elements, and tensors under {fmt.min_size} keep float32 "
        "state (the steps are exactly float32's)",
        RuntimeWarning,
        stacklevel=3,
    )


def check_stored_params(
    opt: Optimizer,
    gi: int,
    params: list[Tensor],
    owners: list[Tensor] | None,
    hyper: Mapping[str, Any],
) -> None:
    """Refuse, before the step changes anything, parameters low-bit state cannot follow, and
    batched (per-run) hyperparameters: a block, or the rounding's random bits, would couple
    the runs stacked in a tensor, so they would not be the runs trained alone."""
    for key, v in hyper.items():
        vs = v if isinstance(v, tuple) else (v,)
        if any(isinstance(x, Tensor) and x.numel() > 1 for x in vs):
            raise ValueError(
                f"{type(opt).__name__}(state_dtype={opt.state_dtype.name!r}): batched "
                f"hyperparameters (here {key!r}, param group {gi}) would share low-bit "
                "state blocks between the runs; train each run by itself"
            )
    for j, p in enumerate(owners or params):
        if p.dtype != torch.float32:
            raise ValueError(
                f"{type(opt).__name__}(state_dtype={opt.state_dtype.name!r}): low-bit state "
                f"needs float32 parameters, got {p.dtype} (param group {gi}, parameter {j})"
            )


def _rules(opt: Any) -> list[FormRule]:
    return [r for r in opt.rule.rules if isinstance(r, FormRule) and r.state_format is not None]


def loader(opt: Any, state_dict: dict[str, Any]) -> Callable[[], None]:
    """Check ``state_dict``'s stored entries against ``opt``'s formats (raising before
    anything changes) and return what puts them back after torch's ``load_state_dict``."""
    rules = _rules(opt)
    stored = {k for r in rules for k in r.stored_keys()}
    saved = state_dict.get("state", {})
    ids = list(itertools.chain.from_iterable(g["params"] for g in state_dict["param_groups"]))
    params = [p for g in opt.param_groups for p in g["params"]]
    for pid, st in saved.items():
        for key, v in st.items():
            if isinstance(v, Tensor) and v.dtype == torch.uint8 and key not in stored:
                have = getattr(opt.state_dtype, "name", None)
                raise ValueError(
                    f"load_state_dict: state {key!r} of parameter {pid} is {v.dtype} (int8 "
                    f"optimizer state); load it into an optimizer made with "
                    f"state_dtype='int8', got state_dtype={have!r}"
                )
    if not rules:
        return lambda: None
    todo: list[tuple[Tensor, dict[str, Tensor]]] = []
    for pid, p in zip(ids, params, strict=False):
        st = saved.get(pid)
        if not st:
            continue
        entries: dict[str, Tensor] = {}
        for r in rules:
            fmt = r.state_format
            assert fmt is not None
            for key in r.stored():
                if key in st:
                    entries.update(_entries(fmt, key, key not in r.nonnegative, p, pid, st))
        todo.append((p, entries))

    def restore() -> None:
        for p, entries in todo:
            opt.state[p].update({k: v.to(device=p.device) for k, v in entries.items()})

    return restore


def _entries(
    fmt: StateFormat, key: str, signed: bool, p: Tensor, pid: Any, st: dict[str, Any]
) -> dict[str, Tensor]:
    """The stored entries of ``key`` from a saved state ``st``: as saved when they are in
    ``fmt``, encoded from a float state of the parameter's shape, refused otherwise."""
    names = fmt.keys(key)
    want = fmt.expect(p)
    got = [st.get(n) for n in names]
    if all(
        (w is None and v is None)
        or (w is not None and isinstance(v, Tensor) and v.dtype == w[0] and tuple(v.shape) == w[1])
        for v, w in zip(got, want, strict=True)
    ):
        return {n: v for n, v in zip(names, got, strict=True) if v is not None}
    v = got[0]
    if (
        isinstance(v, Tensor)
        and v.is_floating_point()
        and tuple(v.shape) == tuple(p.shape)
        and all(x is None for x in got[1:])
    ):
        made = fmt.from_float(v.detach().float(), signed)
        return {n: x for n, x in zip(names, made, strict=True) if x is not None}
    found = ", ".join(
        f"{n}: {'missing' if x is None else f'{x.dtype} {tuple(x.shape)}'}"
        for n, x in zip(names, got, strict=True)
    )
    expect = ", ".join(
        f"{n}: {'absent' if w is None else f'{w[0]} {w[1]}'}"
        for n, w in zip(names, want, strict=True)
    )
    raise ValueError(
        f"load_state_dict: parameter {pid}'s state does not fit state_dtype={fmt.name!r}: "
        f"found {found}; expected {expect} (or a float {key!r} of the parameter's shape)"
    )
