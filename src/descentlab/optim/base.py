"""Update rules and their composition.

An *update rule* is a small piece of math over the tensors of one param group, with explicit
state (Optax's ``GradientTransformation``, in PyTorch):

- ``init(params) -> state``: a dict mapping state names to lists aligned with ``params``;
- ``update(grads, state, params, hyper) -> (updates, state)``: turns incoming gradients (or
  the previous rule's output) into updates; ``hyper`` is the param group's hyperparameters.

Updates are *added* to parameters (``p <- p + u``), so :func:`scale_by_lr` multiplies by
``-lr``. :func:`chain` composes rules left to right.

Hyperparameters live in the param group (``group["lr"]``, ``group["momentum"]``, ...), which is
how torch's ``LRScheduler`` and :class:`descentlab.schedules.Scheduler` change them. A value may
be a Python number or a 1-D tensor of length K: such a tensor broadcasts along the *leading*
dimension of each parameter, so a parameter of shape ``(K, d)`` runs K independent problems
with K different hyperparameters at once (see :mod:`descentlab.problems.trajectories`).

State tensors are updated in place (PyTorch's habit, for speed); a rule never writes into the
``grads`` it receives unless they are an :class:`Owned` list created earlier in the chain.
"""

from __future__ import annotations

import copy
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from descentlab.constraints import ParameterTypeError

from .hyperspec import Choice, Flag, Relation, Spec
from .stacks import sets

__all__ = [
    "Chain",
    "HyperparameterTypeError",
    "Owned",
    "PerTensorRule",
    "Rule",
    "Walk",
    "Workspace",
    "chain",
    "scratch",
    "writable",
]

State = dict[str, list[Any]]
Hyper = Mapping[str, Any]


class Owned(list):
    """A list of tensors created within this step that later rules may overwrite in place."""


class Workspace:
    """Scratch memory reused from step to step, so a step allocates nothing.

    Fresh allocations on every step are costly on CPUs (large blocks come from the OS and are
    page-faulted in again each time), so the optimizer hands rules scratch buffers instead:
    ``take(like)`` returns an :class:`Owned` list shaped (and, where dense, laid out) like
    ``like``, carved from one flat buffer per slot. Slots are handed out in call order and
    recycled by :meth:`reset`, which the optimizer calls before each chunk of parameters.
    """

    def __init__(self) -> None:
        self._flat: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}
        #: the views a slot was carved into, by the shapes asked for: the chunks of a group ask
        #: for the same shapes every step, and carving costs two dispatches a tensor
        self._views: dict[tuple, tuple[Tensor, list[Tensor]]] = {}
        self._slot = 0

    def reset(self) -> None:
        self._slot = 0

    def take(self, like: Sequence[Tensor]) -> Owned:
        slot = self._slot
        self._slot += 1
        if not like:
            return Owned()
        dtype, device = like[0].dtype, like[0].device
        key = (slot, dtype, device)
        uniform = all(t.dtype == dtype and t.device == device for t in like)
        shapes = (key, tuple((t.shape, t.stride()) for t in like))
        cached = self._views.get(shapes)
        if uniform and cached is not None and cached[0] is self._flat.get(key):
            return Owned(cached[1])
        need = sum(t.numel() for t in like if t.dtype == dtype and t.device == device)
        flat = self._flat.get(key)
        if flat is None or flat.numel() < need:
            flat = torch.empty(need, dtype=dtype, device=device)
            self._flat[key] = flat
        out = Owned()
        offset = 0
        for t in like:
            if t.dtype != dtype or t.device != device:
                out.append(torch.empty_like(t))
                continue
            n = t.numel()
            view = flat[offset : offset + n]
            # a dense tensor's layout kept (channels_last...): torch's kernels then stream the
            # scratch and the tensors it meets in one order (mixed layouts are slower)
            strided = not t.is_contiguous() and dense(t)
            out.append(view.as_strided(t.shape, t.stride()) if strided else view.view(t.shape))
            offset += n
        if uniform:
            self._views[shapes] = (flat, list(out))
        return out


def final_lrs(
    lr_rule: Rule, decay: Rule | None, params: list[Tensor], state: State, hyper: Hyper
) -> list[Any]:
    """The start of an eager final form (:meth:`Chain.final_plan`): each tensor's learning
    rate at its step, and the decoupled weight decay (``decay``) applied to the parameters."""
    if "lr_decay" in lr_rule.defaults:
        lrs = [lr_rule.step_lr(hyper, t) for t in step_values(state, len(params))]
    else:
        lrs = [lr_rule.step_lr(hyper, 0)] * len(params)
    if decay is not None and hyper["weight_decay"] != 0:
        torch._foreach_mul_(params, decayed(hyper))
    return lrs


def decayed(hyper: Hyper, *_: Any) -> float:
    """``1 - lr * weight_decay``, the parameters' factor in torch's decoupled weight decay
    (``p.mul_(1 - lr * weight_decay)`` before the update), as every backend computes it (a
    coefficient: it ignores the step and any further argument)."""
    return 1 - float(hyper["lr"]) * float(hyper["weight_decay"])


def arguments(local: Mapping[str, Any]) -> dict[str, Any]:
    """A constructor's arguments, by name in signature order, from its ``locals()`` (read
    first thing: ``self`` and the ``__class__`` cell of ``super()`` left out)."""
    return {k: v for k, v in local.items() if k not in ("self", "__class__")}


def scratch(state: State, like: Sequence[Tensor]) -> Owned:
    """Uninitialised tensors shaped and laid out like ``like`` (from the optimizer's workspace
    if any)."""
    ws = state.get("_workspace")
    if ws is None:
        return Owned(torch.empty_like(t) for t in like)
    return ws.take(like)


def writable(state: State, xs: list[Tensor]) -> Owned:
    """``xs`` itself if a rule may overwrite it, else a scratch copy."""
    if isinstance(xs, Owned):
        return xs
    out = scratch(state, xs)
    torch._foreach_copy_(out, xs)
    return out


def small(xs: Sequence[Tensor]) -> bool:
    """Many small tensors: one foreach call beats a Python loop of out= calls."""
    return sum(t.numel() for t in xs) < 4096 * len(xs)


# --------------------------------------------------------------------------------------
# Scalar-or-batched hyperparameter arithmetic. A hyperparameter is a Python number (fast
# foreach path) or a 1-D tensor broadcast along each tensor's leading dimension.
# --------------------------------------------------------------------------------------


def is_batched(*values: Any) -> bool:
    """Whether a value is a batched (1-D, one value per run) hyperparameter tensor."""
    # a loop, not any() over a generator (half the cost): scheduled steps' checks call this
    for v in values:  # noqa: SIM110
        if isinstance(v, Tensor) and v.ndim >= 1:
            return True
    return False


def bcast(value: Any, like: Tensor) -> Any:
    """Shape a length-K hyperparameter tensor to broadcast over ``like``'s leading dim."""
    if isinstance(value, Tensor) and value.ndim == 1 and like.ndim > 1:
        return value.view(-1, *([1] * (like.ndim - 1))).to(like.device, like.dtype)
    if isinstance(value, Tensor):
        return value.to(like.device, like.dtype)
    return value


def as_scalar(value: Any) -> Any:
    """0-dim tensors become Python numbers; batched tensors pass through."""
    if isinstance(value, Tensor) and value.ndim == 0:
        return value.item()
    return value


def mul(xs: list[Tensor], h: Any) -> list[Tensor]:
    if is_batched(h):
        return [x * bcast(h, x) for x in xs]
    return list(torch._foreach_mul(xs, h))


def step_values(state: State, n: int) -> list[float]:
    known = state.get("_step_values")  # the optimizer's counts, read once per step
    if known is not None:
        return known[:n]
    steps = state.get("step")
    if steps is None:
        raise ValueError(
            "this rule needs a 'step' entry in its state; run it through "
            "descentlab.optim.Optimizer or descentlab.optim.apply_updates"
        )
    return [float(s) for s in steps[:n]]


def per_step(steps: list[float], fn: Callable[[float], Any]) -> list[Any]:
    """``fn(t)`` for each tensor's step count ``t`` (``fn`` pure), computed once per distinct
    count: every tensor of a group is at one step, as a rule."""
    if steps and steps.count(steps[0]) == len(steps):
        return [fn(steps[0])] * len(steps)
    at: dict[float, Any] = {}
    for t in steps:
        if t not in at:
            at[t] = fn(t)
    return [at[t] for t in steps]


# --------------------------------------------------------------------------------------
# Validation helpers: errors name the parameter and the value. As in torch.optim, a value
# of the wrong type (a string, None, a list, a complex number) raises TypeError and a number
# out of range ValueError.
# --------------------------------------------------------------------------------------


#: A hyperparameter of the wrong type (a string, None, a list, a complex number): a
#: ``TypeError``, as torch.optim raises for these, and also a ``ValueError``, so code that
#: catches every bad value as one (descentlab's CLI and run engine) keeps doing so. It is
#: :class:`descentlab.constraints.ParameterTypeError`: one error format for every check.
HyperparameterTypeError = ParameterTypeError


def check_bool(name: str, value: Any) -> None:
    """Refuse anything but ``True`` or ``False`` (:data:`HyperparameterTypeError`)."""
    Flag().check(name, value, "")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """Refuse a string not among ``choices`` (``ValueError``) or a non-string
    (:data:`HyperparameterTypeError`)."""
    Choice(tuple(choices)).check(name, value, "")


# --------------------------------------------------------------------------------------
# Helpers for writing rules: the scalar state's dtype, state made as zeros or lazily.
# --------------------------------------------------------------------------------------


def caller_stacklevel() -> int:
    """The ``stacklevel`` of a warning that points at the first frame outside
    descentlab.optim (the user's call, however deep the subclassing)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__package__):
        frame, level = frame.f_back, level + 1
    return level


def written_in_place(params: list[Tensor]) -> None:
    """Tell autograd that a kernel wrote ``params`` through raw pointers, as an in-place torch
    op would: a graph that saved them then refuses to backpropagate (torch's
    ``autograd.graph.increment_version``, without its Python-side checks: plain tensors)."""
    torch._C._increment_version(params)


#: the tensor types a generated kernel (C or Triton) may address by data pointer. Any other
#: type -- a DTensor, a ``__torch_dispatch__`` wrapper, another library's subclass -- may hold
#: no memory of its own, or memory that is not its logical values: it never reaches a kernel
#: (a DTensor's local shard does: :mod:`descentlab.optim.sharded`)
ADDRESSABLE_TYPES: tuple[type, ...] = (Tensor, torch.nn.Parameter)


def unaddressable(t: Any) -> str:
    """Why a generated kernel may not read or write ``t`` through its data pointer, or "" where
    it may: a plain tensor (:data:`ADDRESSABLE_TYPES`, not a subclass), strided, on a device
    with memory (not ``meta``), whose storage holds every element its shape and strides reach.
    The one test both kernel backends make before they take a pointer (its dtype, device and
    layout against its parameter's are each backend's own checks)."""
    kind = type(t)
    if kind not in ADDRESSABLE_TYPES:
        name = kind.__name__ if isinstance(t, Tensor) else f"{kind.__name__} (not a tensor)"
        return (
            f"a {name} is not plain tensor memory a kernel can address (only torch.Tensor "
            "and torch.nn.Parameter are)"
        )
    if t.layout is not torch.strided:
        return f"a {t.layout} tensor is not strided memory a kernel can address"
    if t.device.type == "meta":
        return "a meta tensor has no memory a kernel can address"
    if t.numel():
        reach = t.storage_offset() + 1
        reach += sum((n - 1) * st for n, st in zip(t.shape, t.stride(), strict=True))
        if reach * t.element_size() > t.untyped_storage().nbytes():
            return "a tensor whose storage is smaller than its shape and strides reach"
    return ""


def dense(t: Tensor) -> bool:
    """Whether ``t``'s elements fill ``t.numel()`` consecutive places from its data pointer:
    contiguous, or a permutation of that (a channels_last weight, a transpose). A kernel that
    reads raw pointers walks such a tensor in memory order, beside tensors laid out as it
    (:func:`laid_out_as`), as torch's fused steps do."""
    if t.is_contiguous():
        return True
    expected = 1
    dims = sorted((st, n) for st, n in zip(t.stride(), t.shape, strict=True) if n != 1)
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def laid_out_as(t: Tensor, p: Tensor) -> bool:
    """Whether ``t``, of ``p``'s shape, holds each element at the place ``p`` (:func:`dense`)
    holds it: element k of one in memory is element k of the other."""
    if p.is_contiguous():
        return t.is_contiguous()
    return all(a == b for a, b, n in zip(t.stride(), p.stride(), p.shape, strict=True) if n != 1)


class GroupStep(NamedTuple):
    """One group's step as a kernel's plan runs it (:mod:`descentlab.optim.plan`): the
    tensors, their state entries as lists (which the step may add to), the hyperparameters
    and each tensor's step count."""

    params: list[Tensor]
    grads: list[Tensor]
    state: dict[str, list]
    hyper: Mapping[str, Any]
    steps: list[float]


def grad_pointers(params: list[Tensor], grads: list[Any], strided: bool) -> list[int] | None:
    """The gradients' data pointers, where a kernel can read each beside its parameter: laid
    out as it (``strided``: the parameters are not all contiguous; else contiguous is enough,
    one test each). None where one is missing, sparse, a tensor subclass (:func:`unaddressable`)
    or laid out otherwise."""
    plain = ADDRESSABLE_TYPES
    try:  # None has no data_ptr; a sparse tensor no is_contiguous
        if strided:
            pairs = zip(params, grads, strict=True)
            gp = [g.data_ptr() for p, g in pairs if type(g) in plain and laid_out_as(g, p)]
        else:
            gp = [g.data_ptr() for g in grads if type(g) in plain and g.is_contiguous()]
    except (AttributeError, RuntimeError):
        return None
    return gp if len(gp) == len(params) else None


def scalar_dtype() -> torch.dtype:
    """The dtype of step counters and other scalar state (torch's: the default float)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def number_column(n: int, value: float, dtype: torch.dtype) -> list[Tensor]:
    """``n`` per-tensor numbers (torch's state layout: a 0-dim tensor per parameter) made at
    once, as consecutive elements of one CPU tensor: :class:`Numbers` then reads or writes
    them all at once, through NumPy (as the step counters are: a torch operation on a few
    elements costs several microseconds)."""
    return list(torch.full((n,), value, dtype=dtype).unbind(0))


#: the dtypes a column of numbers is read and written in through NumPy
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


def as_column(col: list[Tensor]) -> np.ndarray | None:
    """NumPy's view of the 1-D CPU tensor whose consecutive elements ``col``'s 0-dim tensors
    are (:func:`number_column`), or None: then each is read and written alone. Checked at
    every call, so an entry replaced by another tensor (a loaded state, a new parameter) is
    seen."""
    base = col[0]._base if col else None
    if (
        base is None
        or base.shape != (len(col),)
        or base.stride() != (1,)
        or base.device.type != "cpu"
        or base.dtype not in _NUMPY
        or base.requires_grad
    ):
        return None
    # each entry 0-dim, at its element's address: there it shares the base's memory (no
    # other tensor can be there while the base lives). One C call per entry and check, not a
    # Python loop over the entries' attributes (slower: docs/kernel-runtime.md)
    first, size = base.data_ptr(), base.element_size()
    if any(map(Tensor.dim, col)) or list(map(Tensor.data_ptr, col)) != list(
        range(first, first + size * len(col), size)
    ):
        return None
    return base.numpy()


class Numbers:
    """One state entry's per-tensor numbers (torch's layout: a 0-dim tensor per parameter, a
    rate, a running product), read and written all at once through NumPy where they are one
    column (:func:`as_column`, checked once: made for one use within a step), else tensor by
    tensor, with the same roundings."""

    __slots__ = ("arr", "col")

    def __init__(self, col: list[Tensor]) -> None:
        self.col, self.arr = col, as_column(col)

    def get(self) -> list[float]:
        """The numbers as Python floats."""
        arr = self.arr
        return arr.tolist() if arr is not None else [float(x) for x in self.col]

    def set(self, values: list[float], via: torch.dtype = torch.float64) -> None:
        """Store Python numbers, each rounded to ``via`` and then to its entry's dtype
        (float64: once, as ``fill_`` rounds; the default dtype: as torch's
        ``copy_(torch.as_tensor(x))``), in one copy where not a column (from one shared
        source where the values are all one: every tensor at one step, as a rule)."""
        col, arr = self.col, self.arr
        if not col:
            return
        if arr is not None and via in _NUMPY:
            with np.errstate(over="ignore", invalid="ignore"):  # inf, as torch rounds it
                arr[:] = np.asarray(values, dtype=_NUMPY[via])
        elif values.count(values[0]) == len(values):
            src = [torch.tensor(values[0], dtype=via, device=col[0].device)] * len(col)
            torch._foreach_copy_(col, src)
        else:
            src = list(torch.tensor(values, dtype=via, device=col[0].device).unbind(0))
            torch._foreach_copy_(col, src)

    def scale(self, factors: list[float]) -> None:
        """Multiply by Python numbers, each rounded to the entry's dtype first, as
        ``torch._foreach_mul_(col, factors)`` computes (NAdam's running product)."""
        arr = self.arr
        if arr is None:
            torch._foreach_mul_(self.col, factors)
            return
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            arr *= np.asarray(factors, dtype=arr.dtype)


def lazy_numbers(state: State, key: str, n: int, value: float, dtype: torch.dtype) -> list[Tensor]:
    """:func:`lazy_state` for per-tensor numbers: made as one :func:`number_column` where the
    group has none yet (``value`` rounded to ``dtype``, as ``torch.tensor(value)``), and where
    a parameter joins others that have theirs (a layer unfrozen later: their values copied)."""
    got = state.get(key)
    if got is not None and all(v is not None for v in got):
        return got
    if got is not None and not all(
        v is None or (v.ndim == 0 and v.dtype == dtype and v.device.type == "cpu") for v in got
    ):
        return lazy_state(state, key, got, lambda _: torch.tensor(value, dtype=dtype))
    col = state[key] = number_column(n, value, dtype)
    for c, v in zip(col, got or [None] * n, strict=True):
        if v is not None:
            c.copy_(v)
    return col


def zeros(params: list[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]


def lazy_state(state, key: str, like: list[Tensor], make) -> list[Tensor]:
    """State entries made from the param group's values (not the rule's defaults) on a
    parameter's first step, as torch makes them: ``make(tensor)`` for each missing one."""
    values = state.get(key)
    if values is None:
        values = state[key] = [None] * len(like)
    for i, v in enumerate(values):
        if v is None:
            values[i] = make(like[i])
    return values


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


class Rule(ABC):
    """Base class of update rules.

    Subclasses set ``name``, store hyperparameter defaults in ``self.defaults`` (these become
    param-group keys) and implement :meth:`update`; stateful rules implement :meth:`init`
    and list their state names in ``state_keys`` (a form rule's are read from its form).
    :attr:`checks` declares what each hyperparameter accepts (:meth:`validate` checks a
    group's values from it). An elementwise rule is best written as a
    :class:`~descentlab.optim.form.FormRule`: its math once.

    Three flags say how a rule may be stepped on sharded (DTensor) parameters
    (docs/distributed.md): :attr:`elementwise` (each tensor's update reads only that tensor),
    :attr:`shard_local` (the update on a shard is the whole tensor's restricted to it; left at
    None it is False for a rule written as :meth:`update`, so a reduction over a tensor sees
    the whole tensor) and :attr:`tensorwise` (a tensor may be stepped whole by one rank).

    Attributes:
        name: short identifier, used in reprs and the optimizer family tree.
        role: what it contributes in the lectures' taxonomy (colours the family tree).
        defaults: hyperparameter name -> default value.
        state_keys: names of the per-parameter state this rule keeps.
    """

    name: str = "rule"
    #: what the rule contributes in the lectures' taxonomy (the optimizer family tree):
    #: "step size", "search direction (momentum)", "adaptive learning rate",
    #: "direction + adaptive rate", "regularization / sign" or "other"
    role: str = "other"
    state_keys: tuple[str, ...] = ()
    #: state entries kept in a dtype of their own (Schedule-Free's float64 sums), which a
    #: loaded state dict keeps (torch's ``load_state_dict`` casts the others to their
    #: parameter's dtype)
    own_dtype: tuple[str, ...] = ()
    needs_step: bool = False
    #: True when the fused form is element-local and its coefficients do not depend on the
    #: gradients (its prepares only allocate state or advance per-tensor scalars): the
    #: landscapes' whole-trajectory kernels (:mod:`descentlab.problems.kernels`) can run it
    local: bool = False
    #: True when each tensor's update depends only on that tensor's own values and state
    #: (a reduction over the tensor -- a mean, a norm -- included), so the optimizer may
    #: process a group in cache-sized chunks. False: the update reads other tensors (a
    #: global-norm clip)
    elementwise: bool = True
    #: True when the rule's math on a shard of a tensor (a DTensor's local tensor) is its math
    #: on the whole tensor, restricted to the shard: per element, with per-tensor numbers that
    #: read no tensor's values, and any reduction over :func:`~descentlab.optim.sharded.whole`
    #: tensors. A sharded param group runs such a chain on each rank's shards
    #: (:mod:`descentlab.optim.sharded`). None: False for a rule written as :meth:`update`
    #: (its tensors are then stepped whole, by owners or gathered: a mean over a tensor is the
    #: whole tensor's), :attr:`elementwise` for a form rule (per element by construction).
    #: Set it True only where no value of the update reads more than its own element.
    shard_local: bool | None = None
    #: True when each tensor's update depends only on that tensor's own values and state,
    #: which it may read whole (a matrix's orthogonalization or preconditioner): a sharded
    #: group's tensors may then be stepped each by one rank (:mod:`descentlab.optim.sharded`).
    #: None: :attr:`elementwise`
    tensorwise: bool | None = None
    #: False where the rule refuses complex parameters (torch's Adafactor and Muon do: their
    #: matrix statistics assume real entries); True: a complex one is stepped as a pair of reals
    complex_params: bool = True

    def __init__(self, **defaults: Any) -> None:
        self.defaults: dict[str, Any] = dict(defaults)

    def steps_shards(self) -> bool:
        """:attr:`shard_local` resolved: a rule written as :meth:`update` says so itself."""
        return bool(self.shard_local)

    # -- protocol ------------------------------------------------------------------
    def init(self, params: list[Tensor]) -> State:
        """Initial state for ``params`` (lists aligned with ``params``)."""
        return {}

    @abstractmethod
    def update(
        self, grads: list[Tensor], state: State, params: list[Tensor], hyper: Hyper
    ) -> tuple[list[Tensor], State]:
        """Transform ``grads`` into updates (to be added to ``params``)."""

    #: each hyperparameter's constraint, declared (:mod:`descentlab.optim.hyperspec`):
    #: :meth:`validate` checks them all, :meth:`changed_checks` only those a schedule changed
    checks: ClassVar[Mapping[str, Spec]] = {}
    #: checks that read several hyperparameters (re-run when any of their keys changes)
    relations: ClassVar[tuple[Relation, ...]] = ()

    def validate(self, hyper: Hyper) -> None:
        """Raise ``ValueError`` (``TypeError`` for a value of the wrong type) naming the
        parameter and value if ``hyper`` is invalid (the declared :attr:`checks` and
        :attr:`relations`; a rule whose constraints no declaration expresses overrides it)."""
        for key, spec in self.checks.items():
            if key in hyper:
                spec.check(key, hyper[key], self.name)
        for rel in self.relations:
            rel.test(hyper)

    def changed_checks(self, keys: frozenset[str]) -> list[Callable[[Hyper], None]]:
        """The checks to run when a schedule changed the values of ``keys`` (the other values
        passed :meth:`validate` before), each raising: their declared specs and the relations
        that read them. A rule with a hand-written :meth:`validate` runs all of it."""
        if type(self).validate is not Rule.validate:
            return [self.validate] if not keys.isdisjoint(self.defaults) else []
        name, out = self.name, []
        for key in keys:
            spec = self.checks.get(key)
            if spec is not None:
                out.append(spec.test(key, name))
        out.extend(rel.test for rel in self.relations if not rel.keys.isdisjoint(keys))
        return out

    def changed_bounds(self, keys: frozenset[str]) -> tuple[list[tuple[str, tuple]], list]:
        """:meth:`changed_checks` as the steady step runs them before each scheduled step:
        ``bounds``, the open bounds of each changed key's spec, ``(key, (lo, hi))`` for a
        number or ``(key, ((lo, hi), ...))`` for a tuple of them
        (:meth:`~descentlab.optim.hyperspec.Spec.value_bounds`; a value inside passes its
        spec in a comparison), and ``tests``, the checks that still run for a value inside
        them: a spec without such bounds, a relation whose outcome may change there
        (:attr:`~descentlab.optim.hyperspec.Relation.inside`), a hand-written
        :meth:`validate`."""
        if type(self).validate is not Rule.validate:
            return [], self.changed_checks(keys)
        bounds, tests = [], []
        for key in keys:
            spec = self.checks.get(key)
            if spec is None:
                continue
            b = spec.value_bounds()
            if b is None:
                tests.append(spec.test(key, self.name))
            else:
                bounds.append((key, b))
        bounded = {key for key, _ in bounds}
        for rel in self.relations:
            read = rel.keys & keys
            if read and not read <= rel.inside & bounded:
                tests.append(rel.test)
        return bounds, tests

    def bounded_signature(self, keys: frozenset[str]) -> bool:
        """Whether :meth:`fuse_signature` stays what it is while only ``keys`` move, each
        inside the open bounds of this rule's spec for it (:attr:`signature_inside`)."""
        return keys <= self.signature_inside and all(
            (spec := self.checks.get(key)) is not None and spec.value_bounds() is not None
            for key in keys
        )

    # -- optional hooks --------------------------------------------------------------
    def precheck(self, grads: list[Tensor], hyper: Hyper) -> bool:
        """Inspect raw gradients before any state changes; False skips the whole step."""
        return True

    def lookahead_shift(
        self, state: State, params: list[Tensor], hyper: Hyper
    ) -> list[Tensor] | None:
        """A displacement at which the gradient should be evaluated (lookahead methods)."""
        return None

    # -- torch's operation order for the parameter update -----------------------------
    #: True when the rule implements :meth:`apply_final` (a form rule: its form sets a final
    #: form): directly before the learning rate, it then updates the parameters itself,
    #: rounding as torch's for-loop does (``p.addcdiv_(m, d, value=-lr/bc1)``: one division
    #: by the denominator after the step size, instead of ``p - lr * (m / d)``).
    has_final: bool = False
    #: the rule passes its input through, its work done outside the chain (SAM's ascent): the
    #: fused C kernel leaves it out of the chain's program (:func:`~descentlab.optim.program.
    #: collect`) instead of running the group eagerly
    kernel_passes: bool = False

    def passes_through(self, hyper: Hyper) -> bool:
        """True when the rule leaves its input unchanged at these hyperparameters (a zero
        momentum, a switched-off penalty): it may then stand between a :attr:`has_final`
        rule and the learning rate."""
        return False

    def apply_final(
        self,
        grads: list[Tensor],
        state: State,
        params: list[Tensor],
        hyper: Hyper,
        lrs: list[float],
    ) -> None:
        """This rule's update, scaled by ``-lrs[i]`` and added to ``params`` in torch's
        operation order (only called on rules with :attr:`has_final`)."""
        raise TypeError(f"{self.name} has no final form (has_final is False)")

    # -- the kernels (descentlab.optim.program, .fused, .gpu) --------------------------
    def fuse_signature(self, hyper: Hyper) -> tuple:
        """The structural choices the rule's code reads from ``hyper`` (flags, a zero
        momentum): the kernels are collected and compiled once per signature. Numbers are
        never part of it."""
        return ()

    #: hyperparameters whose every value strictly inside the open bounds of this rule's
    #: spec for it gives the same :meth:`fuse_signature` (the other values fixed, e.g. a
    #: momentum in (0, 1): never the zero that drops the buffer), so that a schedule moving
    #: one inside them needs no new signature before each step (tests/test_scheduled_guard.py
    #: checks the claim on values drawn inside the bounds)
    signature_inside: ClassVar[frozenset[str]] = frozenset()

    @property
    def rules(self) -> tuple[Rule, ...]:
        return (self,)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{self.name}({args})"


class PerTensorRule(Rule):
    """A rule that updates each tensor of the group on its own (a matrix preconditioner, not
    elementwise), the tensors of one shape at one step count together
    (:mod:`~descentlab.optim.stacks`): :meth:`directions` makes their state on their first
    step, from the param group's values, so nothing is made at ``init`` and a key no tensor
    holds yet is absent."""

    tensorwise = True

    def init(self, params):
        return {}

    def update(self, grads, state, params, hyper):
        for key in self.state_keys:
            state.setdefault(key, [None] * len(params))
        steps = step_values(state, len(params))
        first = state[self.state_keys[0]]
        out: list[Tensor] = [None] * len(params)  # type: ignore[list-item]
        for idx in sets(params, key=lambda i: (steps[i], first[i] is None)):
            t = int(steps[idx[0]])
            for i, u in zip(idx, self.directions(idx, grads, params, state, hyper, t), strict=True):
                out[i] = u
        return out, state

    @abstractmethod
    def directions(
        self, idx: list[int], grads: list[Tensor], params: list[Tensor], state: State,
        hyper: Hyper, t: int,
    ) -> list[Tensor]:  # fmt: skip
        """The updates of tensors ``idx`` (one shape, dtype and device, at step ``t``, their
        state made or not alike), reading and writing ``state[key][i]``."""


class Wrapper(Rule):
    """A rule around another, ``inner``, that sees both the update reaching it -- placed where
    the inner rule would be, the gradient (the raw one behind the chain's pass-through glue) --
    and the inner rule's update: :meth:`update` calls :meth:`inner_update` and changes its
    result. Written once, it applies to any rule (Cautious's sign mask around Adam's, Lion's,
    ...): the inner rule's hyperparameters, checks and state are the wrapper's. Where it also
    writes its math per element (:attr:`form`) and the inner rule is written in the form, it
    runs fused where its parts do (the chain's C and Triton kernels; :meth:`update` is then
    its eager step); else it steps eagerly. Left at the :class:`Rule` defaults it is not
    shard-local, so a reduction over a tensor sees the whole tensor under FSDP2 and in a
    comparison's vectorized pass."""

    #: a wrapper's state is its inner rule's, in the parameters' dtype
    state_format = None

    def __init__(self, inner: Rule, **defaults: Any) -> None:
        super().__init__(**{**inner.defaults, **defaults})
        self.inner = inner
        self.state_keys = tuple(inner.state_keys)
        self.needs_step = type(self).needs_step or inner.needs_step
        self.elementwise = type(self).elementwise and inner.elementwise
        self.checks = {**inner.checks, **type(self).checks}  # type: ignore[misc]
        self.relations = (*inner.relations, *type(self).relations)  # type: ignore[misc]

    def init(self, params: list[Tensor]) -> State:
        return self.inner.init(params)

    #: the wrapper's update per element, for the kernels, where a subclass writes it as a
    #: method ``form(self, f, u)``: ``f`` is the inner rule's :class:`~descentlab.optim.Form`
    #: (``f.g``: the gradient reaching the wrapper), ``u`` its update; set the wrapper's with
    #: ``f.out(...)``; a per-tensor sum is ``f.total(expr, fn)``. None (not written): the
    #: wrapper steps eagerly.
    form: Callable[[Any, Any], None] | None = None

    def fuse_signature(self, hyper: Hyper) -> tuple:
        return self.inner.fuse_signature(hyper)

    def __getstate__(self) -> dict[str, Any]:
        # the built forms are a cache (their coefficients are local functions: not picklable)
        return {k: v for k, v in self.__dict__.items() if k != "_cache_forms"}

    def inner_update(
        self, grads: list[Tensor], state: State, params: list[Tensor], hyper: Hyper
    ) -> tuple[list[Tensor], State]:
        """The inner rule's update of copies of ``grads`` (``grads`` stay as they came)."""
        return self.inner.update([g.clone() for g in grads], state, params, hyper)

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.defaults.items() if k not in self.inner.defaults
        )
        return f"{self.name}({self.inner!r}{', ' + args if args else ''})"


@dataclass(frozen=True)
class Walk:
    """A chain's step as every backend runs it (:meth:`Chain.walk`): the ``body`` rules'
    updates in order, then the parameter update ``end``: ``"final"`` -- the last body rule's
    final form, after the decoupled ``decay`` (or None), at ``lr``'s learning rate;
    ``"fold"`` -- ``p + (-lr) * u``, ``lr`` the chain's final ``scale_by_lr``; ``"add"`` --
    ``p + u``."""

    body: tuple[Rule, ...]
    end: str
    decay: Rule | None = None
    lr: Rule | None = None


class Chain(Rule):
    """Rules applied left to right: each one's updates are the next one's gradients."""

    name = "chain"

    def __init__(self, *rules: Rule) -> None:
        flat: list[Rule] = []
        for r in rules:
            if not isinstance(r, Rule):
                raise HyperparameterTypeError(f"chain() takes update rules, got {r!r}")
            flat.extend(r.rules)
        if not flat:
            raise ValueError("chain() needs at least one rule")
        for i, r in enumerate(flat):
            if i > 0 and type(r).precheck is not Rule.precheck:
                raise ValueError(
                    f"{r.name} inspects raw gradients and must be the first rule of a chain, "
                    f"got it at position {i}"
                )
        owners: dict[str, str] = {}
        for r in flat:
            for key in r.state_keys:
                if key in owners:
                    raise ValueError(
                        f"rules {owners[key]!r} and {r.name!r} both keep state {key!r}; "
                        "a chain cannot hold two copies of the same stateful rule"
                    )
                owners[key] = r.name
        defaults: dict[str, Any] = {}
        for r in flat:
            for k, v in r.defaults.items():
                if k in defaults and defaults[k] is not v and defaults[k] != v:
                    raise ValueError(
                        f"rules disagree on the default of hyperparameter {k!r}: "
                        f"{defaults[k]!r} vs {v!r}"
                    )
                defaults[k] = v
        super().__init__(**defaults)
        self._rules = tuple(flat)
        self.state_keys = tuple(owners)
        self.needs_step = any(r.needs_step for r in flat)
        self.elementwise = all(r.elementwise for r in flat)
        self.shard_local = all(r.steps_shards() for r in flat)
        self.tensorwise = all(r.elementwise if r.tensorwise is None else r.tensorwise for r in flat)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def bound(self, values: Mapping[str, Any]) -> Chain:
        """A copy of this chain whose rules' defaults are the values in use, ``values`` (an
        optimizer's defaults), so that its repr -- and every error that shows it -- says
        what runs; the rules given here are left as they are. Batched (tensor) values and
        schedules stay out of the copy: a rule's ``init`` reads its defaults.

        Example:
            >>> from descentlab import optim
            >>> optim.chain(optim.scale_by_lr()).bound({"lr": 0.1})
            chain(scale_by_lr(lr=0.1))
        """
        return Chain(*(_bound(r, values) for r in self._rules))

    def init(self, params: list[Tensor]) -> State:
        state: State = {}
        for r in self._rules:
            state.update(r.init(params))
        return state

    def update(
        self, grads: list[Tensor], state: State, params: list[Tensor], hyper: Hyper
    ) -> tuple[list[Tensor], State]:
        for r in self._rules:
            grads, state = r.update(grads, state, params, hyper)
        return grads, state

    def validate(self, hyper: Hyper) -> None:
        for r in self._rules:
            r.validate(hyper)

    def changed_checks(self, keys: frozenset[str]) -> list[Callable[[Hyper], None]]:
        cache = self.__dict__.get("_changed_checks")  # (runs before every scheduled step)
        if cache is None:
            cache = self._changed_checks = {}
        tests = cache.get(keys)
        if tests is None:
            tests = cache[keys] = [t for r in self._rules for t in r.changed_checks(keys)]
        return tests

    def changed_bounds(self, keys: frozenset[str]) -> tuple[list[tuple[str, tuple]], list]:
        bounds, tests = [], []
        for r in self._rules:
            b, t = r.changed_bounds(keys)
            bounds += b
            tests += t
        return bounds, tests

    def precheck(self, grads: list[Tensor], hyper: Hyper) -> bool:
        return self._rules[0].precheck(grads, hyper)

    def fuse_signature(self, hyper: Hyper) -> tuple:
        return tuple(r.fuse_signature(hyper) for r in self._rules)

    def walk(self, hyper: Hyper, fold_lr: bool, final: bool = True) -> Walk:
        """How every backend runs this chain at ``hyper``'s structure (the eager step, the
        fused C and the Triton program all take this one walk): the rules whose update the
        step computes, then how the parameter is updated -- a final form in torch's order
        where :meth:`final_plan` finds one (``final``: the step may take it: Python
        hyperparameters, dense gradients), else ``p + (-lr) * u`` with a plain final
        ``scale_by_lr`` folded in (``fold_lr``), else ``p + u``."""
        rules = self._rules
        plan = self.final_plan(hyper) if final else None
        if plan is not None:
            k, decay = plan
            return Walk(rules[: k + 1], "final", decay, rules[-1])
        if fold_lr and type(rules[-1]).__name__ == "scale_by_lr":
            return Walk(rules[:-1], "fold", None, rules[-1])
        return Walk(rules, "add")

    def final_plan(self, hyper: Hyper) -> tuple[int, Rule | None] | None:
        """Where the chain ends in ``core -> [add_decayed_weights] -> scale_by_lr`` (rules
        that pass their input through at these hyperparameters aside) and ``core`` has
        :attr:`~descentlab.optim.Rule.has_final`: (core's index, the active decoupled decay
        rule or None). The step then updates the parameters as torch's for-loop does --
        ``p.mul_(1 - lr * wd)``, then ``p.addcdiv_(num, den, value=-step_size)`` -- so float32
        iterates round exactly as torch's. None: the general ``p + (-lr) * u``."""
        rules = self._rules
        if len(rules) < 2 or type(rules[-1]).__name__ != "scale_by_lr":
            return None
        decay = None
        for k in range(len(rules) - 2, -1, -1):
            r = rules[k]
            if r.has_final:
                return k, decay
            if r.passes_through(hyper):
                continue
            if decay is None and type(r).__name__ == "add_decayed_weights":
                decay = r
                continue
            return None
        return None

    def lookahead_shift(
        self, state: State, params: list[Tensor], hyper: Hyper
    ) -> list[Tensor] | None:
        shifts = [r.lookahead_shift(state, params, hyper) for r in self._rules]
        shifts = [s for s in shifts if s is not None]
        if len(shifts) > 1:
            raise ValueError("a chain can hold at most one lookahead rule")
        return shifts[0] if shifts else None

    def __repr__(self) -> str:
        return "chain(" + ", ".join(repr(r) for r in self._rules) + ")"


def _bound(rule: Rule, values: Mapping[str, Any]) -> Rule:
    """A copy of ``rule`` whose defaults are the values in use, a wrapper's inner rule's too."""
    if isinstance(rule, Chain):
        return rule.bound(values)
    r = copy.copy(rule)
    r.defaults = {k: _in_use(values.get(k, v), v) for k, v in r.defaults.items()}
    if isinstance(r, Wrapper):
        r.inner = _bound(r.inner, values)
    return r


def _in_use(value: Any, default: Any) -> Any:
    """``value`` where it is a plain Python value (a number, flag, name or a tuple of
    them), else ``default``."""
    plain = (int, float, bool, str, type(None))
    if type(value) in plain or (type(value) is tuple and all(type(x) in plain for x in value)):
        return value
    return default


def chain(*rules: Rule) -> Chain:
    """Compose update rules left to right.

    Examples:
        >>> from descentlab import optim
        >>> rule = optim.chain(optim.clip_by_global_norm(1.0), optim.scale_by_adam(),
        ...                    optim.add_decayed_weights(0.01), optim.scale_by_lr(1e-3))
        >>> [r.name for r in rule.rules]
        ['clip_by_global_norm', 'scale_by_adam', 'add_decayed_weights', 'scale_by_lr']
    """
    return Chain(*rules)
