r"""One form for an elementwise rule's math, from which every backend is derived.

A rule written in this form (a :class:`FormRule`) states its per-element update once, with
torch-like primitives over named state, the incoming update ``g`` and the parameter ``p``;
the operation order is the form's, and every backend follows it:

- :class:`~descentlab.optim.eager_emitter.EagerEmitter` runs it with ``torch._foreach_*``
  kernels over a param group (the eager backend: :meth:`FormRule.update`);
- :func:`~descentlab.optim.program.collect` records a whole chain's forms as one collected
  program, which the fused backend's C emitter (:mod:`~descentlab.optim.c_emitter`) and the
  Triton emitter (:mod:`~descentlab.optim.triton_emitter`) write as a kernel, each primitive
  rounding exactly as its torch kernel does (``lerp``, ``addcmul`` and ``add(alpha=)`` through
  one fused multiply-add, ``sqrt`` as torch's on this CPU: see :mod:`descentlab.optim.fused`),
  so the backends agree bit for bit by construction;
- :func:`reference` evaluates it in float64 element by element from the primitives'
  mathematical definitions (the tests' independent check of both).

Each evaluates a form through one interface (:class:`Emitter`: ``leaf``, ``coef``, ``apply``
one primitive, ``assign``); no rule changes for a new target. Work a rule needs before its
per-element program (state made on a first step, a group's norm, random draws) is a
:meth:`Form.prepare` step, run by every backend.

Example: AdaBelief's moments (:mod:`descentlab.optim.adabelief`)::

    def form(self, f, hyper):
        b1, b2 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0]), ...
        m = f.assign("exp_avg", lerp(f.state("exp_avg"), f.g, b1))
        d = f.let(f.g - m)
        s = f.assign("exp_avg_var", addcmul(f.state("exp_avg_var") * b2, d, d, one_minus_b2) + eps)

Coefficients (``f.coef``) are the per-tensor numbers -- ``1 - beta1``, bias corrections,
``eps`` -- computed in Python in double precision once per step per group (per row with
batched hyperparameters) from the hyperparameters and the step count ``t``, and rounded to the
tensor's dtype where used (as torch rounds a Python scalar).
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .base import (
    Numbers,
    Rule,
    State,
    lazy_state,
    number_column,
    per_step,
    scalar_dtype,
    step_values,
    zeros,
)
from .eager_emitter import EagerEmitter, StoredEagerEmitter
from .expr import (  # noqa: F401  (the form's language, read here by rule authors)
    _MASKS,
    PRIMITIVES,
    Coef,
    Emitter,
    Expr,
    Foreach,
    Form,
    Leaf,
    Let,
    Op,
    Prepare,
    Primitive,
    _plain,
    absolute,
    add,
    addcdiv,
    addcmul,
    clamp,
    eq,
    gt,
    lerp,
    lt,
    maximum,
    primitive,
    reference,
    sign,
    spell,
    sqrt,
    where,
)
from .lowbit import StateFormat, state_format

__all__ = [
    "Coef",
    "Expr",
    "Form",
    "FormRule",
    "absolute",
    "addcdiv",
    "addcmul",
    "branch",
    "clamp",
    "eq",
    "gt",
    "lerp",
    "lt",
    "maximum",
    "reference",
    "sign",
    "sqrt",
    "where",
]


# --------------------------------------------------------------------------------------
# Rules written in the form
# --------------------------------------------------------------------------------------


class FormRule(Rule):
    """An elementwise rule whose math is its :meth:`form`: the eager ``update`` is derived from
    it (the eager emitter), so are the kernels (:mod:`~descentlab.optim.program`), and so is
    its parameter update in its own operation order where the form has a final form
    (:meth:`Form.final`; the rule then sets ``has_final = True``: ``apply_final`` and the
    kernels' final update come from it). Its state is what the form reads at the rule's
    defaults, made as zeros (a :meth:`Form.product` number as its ``init``), and its
    kernel's structure is the values of its declared flags
    (:attr:`~descentlab.optim.Rule.checks`).

    Subclasses set ``name``, ``state_keys``, ``checks`` and write :meth:`form`.
    """

    local = True
    needs_step = True

    @abstractmethod
    def form(self, f: Form, hyper: Mapping[str, Any]) -> None:
        """Write the per-element math into ``f`` (``hyper``: only flags may choose the code)."""

    def built(self, hyper: Mapping[str, Any]) -> Form:
        """The form at these hyperparameters' structure (cached per signature)."""
        key = self.fuse_signature(hyper)
        cache = self.__dict__.setdefault("_cache_forms", {})
        form = cache.get(key)
        if form is None:
            form = Form()
            self.form(form, hyper)
            if (form.final_expr is not None) != self.has_final:
                raise TypeError(
                    f"{self.name}: has_final is {self.has_final} but its form "
                    f"{'sets' if form.final_expr is not None else 'has no'} final form"
                )
            cache[key] = form
        return form

    #: state entries that are never negative (a second moment): a low-bit format may store
    #: them unsigned (:mod:`descentlab.optim.lowbit`)
    nonnegative: tuple[str, ...] = ()
    #: how the state is stored (None: in the parameters' dtype); see :meth:`with_state`
    state_format: StateFormat | None = None

    def init(self, params: list[Tensor]) -> State:
        if self.state_format is None:
            later = self.built(self.defaults).first  # made on a tensor's first step
            state: State = {k: zeros(params) for k in self.stored() if k not in later}
        else:
            state = _stored_init(self, params)
        for key, value in self.built(self.defaults).scalars.items():
            state[key] = number_column(len(params), value, scalar_dtype())
        return state

    def __getstate__(self) -> dict[str, Any]:
        # the built forms are a cache (their coefficients are local functions: not picklable)
        return {k: v for k, v in self.__dict__.items() if k != "_cache_forms"}

    def fuse_signature(self, hyper: Mapping[str, Any]) -> tuple:
        from .hyperspec import Flag

        flags = tuple(bool(hyper[k]) for k, s in self.checks.items() if isinstance(s, Flag))
        return flags if self.state_format is None else (*flags, self.state_format.tag)

    def update(self, grads, state, params, hyper, emitter=None):
        """The eager update (``emitter``: an eager emitter class to run it with, such as
        autograd's :class:`~descentlab.optim.differentiable.DifferentiableEmitter`)."""
        form = self.built(hyper)
        if form.output is form.g and not form.statements and not form.prepares:
            return grads, state  # switched off at these hyperparameters: nothing to run
        return self._eager(grads, params, state, hyper, emitter).run(form), state

    def _eager(self, grads, params, state, hyper, emitter=None) -> Any:
        if emitter is not None:
            return emitter(grads, params, state, hyper)
        if self.state_format is not None:
            return StoredEagerEmitter(grads, params, state, hyper, self)
        return EagerEmitter(grads, params, state, hyper)

    def apply_final(self, grads, state, params, hyper, lrs, emitter=None):
        form = self.built(hyper)
        em = self._eager(grads, params, state, hyper, emitter)
        em.lrs = lrs
        em.statements(form)
        em.final(form)

    def with_state(self, state_dtype: str | StateFormat | None) -> FormRule:
        """A copy of this rule whose state is stored as ``state_dtype`` (``"int8"``,
        ``"bfloat16"``, a :class:`~descentlab.optim.lowbit.StateFormat`, or None for the
        parameters' dtype): the composable form of an optimizer's ``state_dtype=``."""
        fmt = state_format(state_dtype)
        if fmt is not None:
            check_storable(self, fmt, self.name)
        rule = copy.copy(self)
        rule.state_format = fmt
        return rule

    def stored(self) -> list[str]:
        """The elementwise state entries (a low-bit format stores them; the per-tensor numbers
        of :meth:`Form.product` stay as they are; a per-step array is not kept)."""
        return [k for k in self.built(self.defaults).states if not k.startswith("_")]

    def stored_keys(self) -> tuple[str, ...]:
        """The state entries as stored (a low-bit format's companions included)."""
        fmt = self.state_format
        if fmt is None:
            return tuple(self.stored())
        return tuple(k for key in self.stored() for k in fmt.keys(key))


# --------------------------------------------------------------------------------------
# Final forms, per-tensor branches and running products (the Adam family's constructs)
# --------------------------------------------------------------------------------------


def branch(on: Coef, a: Expr, b: Expr) -> Expr:
    """``a`` where the per-tensor coefficient ``on`` is nonzero, else ``b`` (RAdam's
    rectification switch). The eager backend evaluates only the side a tensor takes."""
    return Op("branch", (on, a, b))


def lazy_zeros(key: str) -> Prepare:
    """A lazy state entry (:meth:`Form.state`) in a kernel's backend (C or Triton): made as
    zeros laid out as their parameters, where missing, before the kernel runs (a steady
    prepare: skipped once it exists)."""

    def make(state: State, params: list[Tensor], grads: list[Tensor], hyper: Any) -> None:
        lazy_state(state, key, params, torch.zeros_like)

    return Prepare(make, {"fills": (key,), "steady": True})


def product_prepare(key: str, factor: Coef) -> Callable[..., None]:
    """:meth:`Form.product` in a kernel's backend: a prepare that multiplies the per-tensor
    numbers in Python before the kernel runs, as the eager backend multiplies them
    (``_foreach_mul_``)."""
    fn = factor.fn

    def prepare(state: State, params: list[Tensor], grads: list[Tensor], hyper: Any) -> None:
        h = {k: _plain(v) for k, v in hyper.items()}
        steps = step_values(state, len(grads))
        Numbers(state[key]).scale(per_step(steps, lambda t: float(fn(h, t))))

    return prepare


# --------------------------------------------------------------------------------------
# Stored state: a low-bit format (descentlab.optim.lowbit) where the emitters load and store
# state. A stored entry is decoded to float32 when first read, later reads in the step see
# the float32 values the form computes, and written entries are encoded once, at the end.
# --------------------------------------------------------------------------------------


def check_storable(rule: FormRule, fmt: StateFormat, owner: str) -> None:
    """Refuse a low-bit format for a rule that makes its state itself (its own ``init``:
    torch's momentum buffer, made from the first gradient, Adagrad's initial accumulator...):
    the format's entries would never be made, and the state would silently stay float."""
    if type(rule).init is not FormRule.init:
        keys = ", ".join(repr(k) for k in rule.state_keys)
        raise ValueError(
            f"{owner}: state_dtype={fmt.name!r} cannot store {rule.name}'s state ({keys}): "
            "the rule makes that state itself; leave its state_dtype None"
        )


def _stored_init(rule: FormRule, params: list[Tensor]) -> State:
    """The rule's elementwise state stored in its format, every entry made at once (a lazy
    one too: its zeros are stored ones)."""
    fmt = rule.state_format
    assert fmt is not None
    out: State = {}
    for key in rule.stored():
        cols = fmt.init(params, key not in rule.nonnegative)
        out.update(zip(fmt.keys(key), cols, strict=True))
    return out
