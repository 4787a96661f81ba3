"""The per-parameter state of an optimizer's param groups: looked up once, stepped in one
operation, complex parameters as pairs of reals.

``optimizer.state`` maps each parameter to a dict (torch's layout). Hashing a tensor is a
Python call, so :class:`GroupStates` caches each group's list of state dicts while neither
the parameters nor the mapping change (:class:`TrackedState` counts its mutations), and keeps
each group's step counters as views into one tensor, so a step increments them all at once.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import Rule, State, as_column, scalar_dtype

__all__ = [
    "GroupStates",
    "TrackedState",
    "as_complex",
    "as_real",
    "column",
    "column_numbers",
    "gather",
    "init_new",
    "realify",
    "scatter",
    "tracked",
]


class TrackedState(defaultdict):
    """``optimizer.state`` that counts its own mutations, so per-group caches of the
    parameters' state dicts know when one was replaced (``opt.state[p] = {}``)."""

    version = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.version += 1
        return super().pop(*args)

    def popitem(self) -> Any:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.version += 1
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.version += 1
        return super().setdefault(key, default)

    def __ior__(self, other: Any) -> Any:
        self.version += 1
        return super().__ior__(other)


def as_real(t: Any) -> Any:
    """A complex tensor as its real view (``[..., 2]``): torch's optimizers treat a complex
    number as a pair of reals, so every rule runs on the views."""
    return torch.view_as_real(t) if isinstance(t, Tensor) and t.is_complex() else t


def realify(state: State) -> State:
    return {k: [as_real(v) for v in vs] if type(vs) is list else vs for k, vs in state.items()}


def as_complex(value: Any, old: Any, real_shape: torch.Size) -> Any:
    """What a complex parameter's state entry becomes after a rule computed ``value`` on the
    real views: ``old`` itself when ``value`` is its view, else the complex view of a new
    buffer (so the state keeps torch's layout: complex like the parameter)."""
    if not isinstance(value, Tensor) or value.is_complex() or value.shape != real_shape:
        return value
    if isinstance(old, Tensor) and old.is_complex() and old.data_ptr() == value.data_ptr():
        return old
    return torch.view_as_complex(value)


def tracked(state: Any) -> TrackedState:
    if type(state) is TrackedState:
        return state
    return TrackedState(dict, state)


def gather(sts: list[dict]) -> State:
    """The state dicts ``sts`` (one per parameter) as one :data:`State` of aligned lists."""
    keys = dict.fromkeys(itertools.chain.from_iterable(sts))
    return {k: [st.get(k) for st in sts] for k in keys}


def scatter(
    params: list[Tensor], state: State, sts: list[dict], owners: list[Tensor] | None = None
) -> None:
    """Write ``state`` back into the parameters' state dicts ``sts``; ``owners``: the complex
    parameters whose real views ``params`` are (their state is stored complex)."""
    for k, values in state.items():
        if k.startswith("_"):
            continue
        if owners is None:
            for st, v in zip(sts, values, strict=True):
                if v is not None:
                    st[k] = v
            continue
        for st, v, p, o in zip(sts, values, params, owners, strict=True):
            if v is not None:
                st[k] = as_complex(v, st.get(k), p.shape) if o.is_complex() else v


def refuse_unlike_init(
    name: str,
    gi: int,
    rule: Rule,
    params: list[Tensor],
    sts: list[dict],
    made: dict[tuple, dict[str, Tensor]],
) -> None:
    """ValueError, naming the entry, where a state tensor that exists differs in dtype or shape
    from what ``rule``'s init makes for its parameter (or, an entry the init does not make, of
    the parameter's shape, from its dtype), or lies on another device: the eager
    step of a later param group would fail part-way, after the groups before it had moved.
    ``made``: the init's tensors per parameter shape and dtype (made once, on the meta
    device)."""
    for p, st in zip(params, sts, strict=True):
        if len(st) <= 1:  # no state yet, or only a step count
            continue
        kind = (p.shape, p.dtype)
        want = made.get(kind)
        if want is None:
            init = rule.init([torch.empty(p.shape, dtype=p.dtype, device="meta")])
            want = made[kind] = {
                k: v[0] for k, v in init.items() if isinstance(v[0], Tensor) and v[0].ndim
            }
        for k, t in st.items():
            if not isinstance(t, Tensor) or not t.ndim:
                continue
            # an entry the init does not make (made in the step) is held to its parameter's
            # dtype where it has the parameter's shape
            w = want.get(k, p if t.shape == p.shape else t)
            if t.dtype is not w.dtype or t.shape != w.shape or t.device != p.device:
                raise ValueError(
                    f"{name}: param group {gi}: optimizer state {k!r} is {t.dtype} of shape "
                    f"{tuple(t.shape)} on {t.device}; its parameter's step needs {w.dtype} of "
                    f"shape {tuple(w.shape)} on {p.device}"
                )


def init_new(rule: Rule, params: list[Tensor], sts: list[dict]) -> None:
    """The rule's initial state (and a zero step count) for the parameters without state; a
    state given in part (``opt.state[p].update(...)`` before the first step, no step count)
    is completed: what it holds is kept."""
    new = [i for i, st in enumerate(sts) if "step" not in st]
    if not new:
        return
    init = rule.init([params[i] for i in new])
    for j, i in enumerate(new):
        st = sts[i]
        st["step"] = torch.zeros((), dtype=scalar_dtype())
        for k, values in init.items():
            if values[j] is not None:  # a key this parameter does not use is left out (torch)
                st.setdefault(k, values[j])
    if len(new) < len(sts):  # joining parameters that have state (a layer unfrozen later)
        column_numbers(sts)


def column_numbers(sts: list[dict]) -> None:
    """Every per-tensor number of these state dicts (0-dim float state: the step counters,
    NAdam's product, ASGD's rates...) laid out as one column each (:func:`column`), where
    they are separate tensors: loaded, or made for a parameter after the others."""
    if not sts or not all(sts):
        return
    for key, first in sts[0].items():
        if isinstance(first, Tensor) and first.ndim == 0:
            column(sts, key)


def column(sts: list[dict], key: str) -> np.ndarray | None:
    """Entry ``key`` of the state dicts ``sts`` -- a number per parameter, torch's layout: a
    0-dim tensor each -- as one column: the entries become consecutive elements of one CPU
    tensor (:func:`~descentlab.optim.base.number_column`), values and dtypes unchanged, so
    that a step reads or writes them all at once through the NumPy view returned. None where
    they cannot be one column (not all 0-dim float CPU tensors of one dtype, or one needs
    its gradient): then each is read and written alone. The one representation of
    per-tensor numbers: the step counters, the rules' products and rates."""
    col = [st.get(key) for st in sts]
    if not col or not all(isinstance(v, Tensor) for v in col):
        return None
    arr = as_column(col)
    if arr is not None:
        return arr
    first = col[0]
    if not all(
        v.ndim == 0 and v.device.type == "cpu" and v.dtype == first.dtype
        and v.is_floating_point() and not v.requires_grad
        for v in col
    ):  # fmt: skip
        return None
    views = torch.stack(col).unbind(0)
    for st, v in zip(sts, views, strict=True):
        st[key] = v
    return as_column(list(views))


class GroupStates:
    """Per param group: the cached list of its parameters' state dicts, and its step counters
    as views into one tensor (both rebuilt when the parameters or the state mapping change)."""

    def __init__(self) -> None:
        self.sts: dict[int, tuple[Any, int, list[int], list[dict]]] = {}
        #: per group: the step counters' column, their tensors' ids, and the tensors (held, so
        #: that a new counter cannot take a freed one's id)
        self.step_bases: dict[int, tuple[Any, list[int], list[Tensor]]] = {}

    def of(self, owner: Any, gi: int, params: list[Tensor]) -> list[dict]:
        """The state dicts of ``params`` (cached while neither the parameters nor
        ``owner.state`` change: a lookup hashes each tensor in Python)."""
        state = owner.state
        if type(state) is not TrackedState:  # after __init__ or load_state_dict
            state = owner.state = tracked(state)
        sts = self.current(owner, gi, params, cached_only=True)
        if sts is None:
            sts = [state[p] for p in params]
            self.sts[gi] = (state, state.version, list(map(id, params)), sts)
        return sts

    def current(
        self, owner: Any, gi: int, params: list[Tensor], cached_only: bool = False
    ) -> list[dict] | None:
        """The state dicts of ``params`` as they are, without adding an entry for a parameter
        that has none (an empty dict stands for it): for the first phase of a step, where
        nothing may change. ``cached_only``: None unless the cache holds."""
        state, cached = owner.state, self.sts.get(gi)
        if (
            cached is not None
            and cached[0] is state
            and cached[1] == getattr(state, "version", None)
            and cached[2] == list(map(id, params))
        ):
            return cached[3]
        return None if cached_only else [state.get(p) or {} for p in params]

    def advance(self, gi: int, sts: list[dict]) -> list[float]:
        """Add 1 to the step counter of each of ``sts`` (the state dicts of the group's
        parameters with gradients, in order); returns the new counts.

        The counters stay one 0-dim tensor per parameter (torch's ``state_dict`` layout), laid
        out as one column (:func:`column`, as every per-tensor number), so a step increments
        them all at once through NumPy's view of it (a microsecond; a torch op on a
        20-element tensor costs several). Counters that arrive otherwise (a fresh parameter,
        a loaded state dict) are laid out again once.
        """
        cached = self.step_bases.get(gi)
        if cached is None or cached[1] != [id(st["step"]) for st in sts]:
            counts = column(sts, "step")
            if counts is None:
                steps = [st["step"] for st in sts]
                torch._foreach_add_(steps, 1)
                return [float(s) for s in steps]
            steps = [st["step"] for st in sts]
            cached = self.step_bases[gi] = (counts, [id(t) for t in steps], steps)
        counts = cached[0]
        counts += 1
        return counts.tolist()
