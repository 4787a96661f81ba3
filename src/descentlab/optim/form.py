r"""One form for an elementwise rule's math, from which every backend is derived.

A rule written in this form (a :class:`FormRule`) states its per-element update once, with
torch-like primitives over named state, the incoming update ``g`` and the parameter ``p``;
the operation order is the form's, and every backend follows it:

- :class:`EagerEmitter` runs it with ``torch._foreach_*`` kernels over a param group (the
  eager backend: :meth:`FormRule.update`);
- :class:`CEmitter` writes it into the fused backend's per-element C
  (:class:`~descentlab.optim.fused.FusedBuilder`: :meth:`FormRule.fuse`), each primitive
  rounding exactly as its torch kernel does (``lerp``, ``addcmul`` and ``add(alpha=)`` through
  one fused multiply-add, ``sqrt`` as torch's on this CPU: see :mod:`descentlab.optim.fused`),
  so the two backends agree bit for bit by construction;
- :func:`reference` evaluates it in float64 element by element from the primitives'
  mathematical definitions (the tests' independent check of both);
- :class:`~descentlab.optim.triton_emitter.TritonEmitter` writes it into a GPU kernel.

An emitter is a class with one interface (:class:`Emitter`: ``leaf``, ``coef``, ``apply`` one
primitive, ``assign``); no rule changes for a new target. Work a rule needs before its
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
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .base import (
    Numbers,
    Owned,
    Rule,
    State,
    bcast,
    lazy_state,
    number_column,
    per_step,
    scalar_dtype,
    scratch,
    small,
    step_values,
    zeros,
)
from .lowbit import StateFormat, sr_salt, state_format

__all__ = [
    "CEmitter",
    "Coef",
    "EagerEmitter",
    "Expr",
    "Form",
    "FormRule",
    "StoredCEmitter",
    "StoredEagerEmitter",
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

CoefFn = Callable[[Mapping[str, Any], float], float]


# --------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------


class Expr:
    """A per-element value: a leaf (``g``, ``p``, a state entry, a coefficient) or a primitive
    applied to expressions. ``+ - * /`` and unary ``-`` build primitives too."""

    def __add__(self, other: Expr) -> Expr:
        return Op("add", (self, other))

    def __sub__(self, other: Expr) -> Expr:
        return Op("sub", (self, other))

    def __mul__(self, other: Expr) -> Expr:
        return Op("mul", (self, other))

    def __truediv__(self, other: Expr) -> Expr:
        return Op("div", (self, other))

    def __neg__(self) -> Expr:
        return Op("neg", (self,))


@dataclass(eq=False)
class Leaf(Expr):
    """``g`` (the incoming update), ``p`` (the parameter) or ``state:<key>`` at a version."""

    name: str
    version: int = 0


@dataclass(eq=False)
class Coef(Expr):
    """A per-tensor number ``fn(hyper, t)`` (``uses``: the hyperparameters it reads);
    ``fn(hyper, t, x)`` where it ``reads`` a per-tensor number of the state
    (:meth:`Form.product`), the step's learning rate (``lr``: :meth:`Form.lr_coef`), or
    ``per_tensor(state, i)`` (see :meth:`Form.prepare`)."""

    name: str
    fn: Callable[..., float]
    uses: tuple[str, ...]
    reads: str | None = None
    lr: bool = False
    per_tensor: Callable[[Mapping[str, list], int], Any] | None = None

    def value(self, hyper: Mapping[str, Any], t: float, state: Mapping[str, list], i: int) -> Any:
        """This coefficient for tensor ``i`` at step ``t`` (not one that reads the rate)."""
        assert not self.lr, f"{self.name!r} reads the learning rate: final forms only"
        if self.reads is not None:
            return self.fn(hyper, t, float(state[self.reads][i]))
        if self.per_tensor is None:
            return self.fn(hyper, t)
        return self.fn(hyper, t, self.per_tensor(state, i))  # type: ignore[call-arg]


@dataclass(eq=False)
class Op(Expr):
    op: str
    args: tuple[Expr, ...]
    alpha: Coef | None = None


@dataclass(eq=False)
class Let(Expr):
    """An expression evaluated once, where the form names it (:meth:`Form.let`)."""

    expr: Expr
    index: int


def lerp(a: Expr, b: Expr, w: Coef) -> Expr:
    """``a + w (b - a)`` as torch's ``lerp`` rounds it (one fused multiply-add)."""
    return Op("lerp", (a, b, w))


def addcmul(x: Expr, a: Expr, b: Expr, value: Coef) -> Expr:
    """``x + value * a * b`` as torch's ``addcmul`` rounds it."""
    return Op("addcmul", (x, a, b, value))


def addcdiv(x: Expr, a: Expr, b: Expr, value: Coef) -> Expr:
    """``x + (value * a) / b`` as torch's ``addcdiv`` rounds it."""
    return Op("addcdiv", (x, a, b, value))


def add(x: Expr, y: Expr, alpha: Coef) -> Expr:
    """``x + alpha * y`` as torch's ``add(alpha=)`` rounds it (one fused multiply-add)."""
    return Op("add", (x, y), alpha)


def sqrt(x: Expr) -> Expr:
    """The square root (torch's on this CPU: see
    :func:`~descentlab.optim.fused.sqrt_reproduces_torch`)."""
    return Op("sqrt", (x,))


def maximum(a: Expr, b: Expr) -> Expr:
    """The larger of two values, NaN if either is (torch's ``maximum``)."""
    return Op("maximum", (a, b))


def absolute(x: Expr) -> Expr:
    """``|x|`` (torch's ``abs``: ``|-0| = +0``, NaN stays NaN)."""
    return Op("abs", (x,))


def sign(x: Expr) -> Expr:
    """-1, 0 or 1, torch's ``sign`` on the CPU: NaN and both zeros give +0."""
    return Op("sign", (x,))


# --------------------------------------------------------------------------------------
# Selections: comparisons, where and clamp (Rprop's sign-driven step sizes, ASGD's average,
# the first momentum buffer of SGD); each emitter's code for them is in this section too.
# A comparison is a mask, used only as the condition of :func:`where`.
# --------------------------------------------------------------------------------------

_MASKS = {"gt": ">", "lt": "<", "eq": "==", "ne0": "!="}
SELECTIONS = frozenset((*_MASKS, "where", "clamp"))


def gt(a: Expr, b: Expr) -> Expr:
    """The mask ``a > b`` (false where either is NaN)."""
    return Op("gt", (a, b))


def lt(a: Expr, b: Expr) -> Expr:
    """The mask ``a < b`` (false where either is NaN)."""
    return Op("lt", (a, b))


def eq(a: Expr, b: Expr) -> Expr:
    """The mask ``a == b`` (false where either is NaN)."""
    return Op("eq", (a, b))


def where(cond: Expr, a: Expr, b: Expr) -> Expr:
    """``a`` where ``cond`` holds, else ``b``; ``cond`` is a mask or a coefficient (a
    per-tensor flag: true where not 0). Only the chosen value is stored, so a value computed
    from state made uninitialised on a first step may stand in the branch not taken."""
    if isinstance(cond, Coef):
        cond = Op("ne0", (cond,))
    return Op("where", (cond, a, b))


def clamp(x: Expr, lo: Expr, hi: Expr) -> Expr:
    """``min(max(x, lo), hi)`` as torch's ``clamp`` (NaN stays NaN)."""
    return Op("clamp", (x, lo, hi))


def _flag(cond: Expr) -> bool:
    """A where's condition that is a per-tensor flag (a coefficient), not a mask."""
    return isinstance(cond, Op) and cond.op == "ne0"


def _eager_selection(op: str, a: list[Any], dtypes: list[torch.dtype]) -> list[Any]:
    """Tensor by tensor (torch has no foreach comparison or where)."""
    n = len(dtypes)
    cols = [x if isinstance(x, list) else [x] * n for x in a]
    out: list[Any] = []
    for i, dt in enumerate(dtypes):
        xs = [c[i] for c in cols]
        if op == "ne0":
            out.append(bool(xs[0] != 0))
        elif op in _MASKS:
            out.append(getattr(torch, op)(*xs))
        elif op == "where" and isinstance(xs[0], bool):
            out.append(xs[1] if xs[0] else xs[2])
        elif op == "where":
            mask = xs[0]
            v = [_along(x, mask, dt) for x in xs[1:]]
            out.append(torch.where(mask, v[0], v[1]))
        else:
            lo, hi = (x if isinstance(x, float) else _along(x, xs[0], dt) for x in xs[1:])
            out.append(torch.clamp(xs[0], min=lo, max=hi))
    return out


def _along(x: Any, mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A branch of a where: a number as a 0-dim tensor of ``dtype``, a batched coefficient's
    length-K values along the leading dimension, a tensor as it is."""
    if not isinstance(x, Tensor):
        return torch.tensor(x, dtype=dtype)
    if x.ndim == 1 and x.shape != mask.shape:
        return x.to(dtype).view(-1, *([1] * (mask.ndim - 1)))
    return x


# --------------------------------------------------------------------------------------
# Forms
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepare:
    """A form's Python step before its per-element program (:meth:`Form.prepare`)."""

    fn: Callable[..., None]
    how: Mapping[str, Any]  # fills, needs, steady: FusedBuilder.prepare's
    reads_g: bool = False


@dataclass
class Form:
    """One rule's per-element program: statements in order, built by :meth:`FormRule.form`.

    ``f.g`` is the incoming update, ``f.p`` the parameter; :meth:`state` reads a state entry,
    :meth:`coef` declares a coefficient, :meth:`let` names a value (evaluated there, once),
    :meth:`assign` writes a state entry (later reads see the new value; reading the old one
    after it is refused), :meth:`out` sets the rule's output and :meth:`final` the parameter
    update in the rule's own operation order (see "Final forms" below).
    """

    g: Expr = field(default_factory=lambda: Leaf("g"))
    p: Expr = field(default_factory=lambda: Leaf("p"))
    statements: list[tuple[str, Any, Expr]] = field(default_factory=list)
    coefs: dict[str, Coef] = field(default_factory=dict)
    states: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    output: Expr | None = None
    final_expr: Expr | None = None
    lazy: list[str] = field(default_factory=list)
    scalars: dict[str, float] = field(default_factory=dict)
    prepares: list[Prepare] = field(default_factory=list)
    #: the state entries :meth:`first_step` makes (not made by the rule's ``init``)
    first: list[str] = field(default_factory=list)
    _versions: dict[str, int] = field(default_factory=dict)

    def state(self, key: str, *, lazy: bool = False) -> Expr:
        """State entry ``key`` (``lazy``: made as zeros on its first step where the rule's
        ``init`` did not make it, as torch makes amsgrad's maximum). A key starting with
        ``_`` is a per-step array that a :meth:`prepare` makes (the rule's noise), never kept
        in the optimizer's state."""
        if key not in self.states:
            self.states.append(key)
        if lazy and key not in self.lazy:
            self.lazy.append(key)
        return Leaf(f"state:{key}", self._versions.get(key, 0))

    def coef(
        self,
        name: str,
        fn: Callable[..., Any],
        uses: Sequence[str] = (),
        reads: str = "",
        per_tensor: Callable[[Mapping[str, list], int], Any] | None = None,
    ) -> Coef:
        """Coefficient ``fn(hyper, t)``; ``fn(hyper, t, x)`` with ``reads``: ``x`` the
        tensor's number kept in state ``reads`` (:meth:`product`), after this step's update;
        with ``per_tensor``: ``x = per_tensor(state, i)`` (see :meth:`prepare`)."""
        return self._declare(Coef(name, fn, tuple(uses), reads or None, per_tensor=per_tensor))

    def _declare(self, c: Coef) -> Coef:
        if c.name in self.coefs:
            raise ValueError(f"coefficient {c.name!r} declared twice")
        self.coefs[c.name] = c
        return c

    def prepare(self, fn: Callable[..., None], *, reads_g: bool = False, **how: Any) -> None:
        """Run ``fn(state, params, grads, hyper)`` before the per-element program, on every
        backend: it makes state on a tensor's first step (from the group's values, as torch
        does) or a per-step array (a ``_`` key, :meth:`state`), and computes the per-tensor
        values the coefficients read (``per_tensor``). ``grads`` give only shapes (the kernels
        pass the raw gradients), unless ``reads_g``: ``fn`` reads the values of the rule's
        input (the global norm of a clip), so a kernel takes the rule only where its input is
        the raw gradients (first in the chain). ``how``: ``fills``, ``needs``, ``steady``, as
        :meth:`~descentlab.optim.fused.FusedBuilder.prepare`.
        """
        self.prepares.append(Prepare(fn, how, reads_g))

    def first_step(self, key: str) -> Coef:
        """A state entry made on a tensor's first step and kept for the next one (a previous
        gradient): the coefficient is 1 at that first step (where the entry holds nothing
        yet: read it as ``where(first, <its first value>, f.state(key))``) and 0 after. The
        entry is made, uninitialized, by a prepare that a steady step may skip."""
        flag = f"_{key}_first"

        def make(state: Mapping[str, list], params: list, grads: list, hyper: Any) -> None:
            entries = state.get(key)
            if entries is None:
                entries = state[key] = [None] * len(grads)  # type: ignore[index]
            state[flag] = [e is None for e in entries]  # type: ignore[index]
            for i, e in enumerate(entries):
                if e is None:
                    entries[i] = torch.empty_like(params[i])  # the parameter's layout

        self.first.append(key)
        self.prepare(make, fills=(key,), steady=True)
        return self.coef(
            f"first_{key}", lambda h, t, e: float(bool(e)), per_tensor=lambda st, i: st[flag][i]
        )

    def let(self, expr: Expr) -> Expr:
        self._check(expr)
        named = Let(expr, len(self.statements))
        self.statements.append(("let", named, expr))
        return named

    def assign(self, key: str, expr: Expr) -> Expr:
        self._check(expr)
        self.state(key)
        if key not in self.written:
            self.written.append(key)
        self.statements.append(("assign", key, expr))
        self._versions[key] = self._versions.get(key, 0) + 1
        return Leaf(f"state:{key}", self._versions[key])

    def out(self, expr: Expr) -> None:
        self._check(expr)
        self.output = expr

    # -- final forms, running products: see the section "Final forms" below -----------
    def final(self, expr: Expr) -> None:
        """The parameter update in the rule's own operation order, used where the chain ends
        in this rule, an optional decoupled decay and the learning rate
        (:meth:`~descentlab.optim.Chain.final_plan`): ``expr`` is the new parameter, its
        outermost primitive applied to ``f.p`` (the parameter after the decay) --
        ``addcdiv(f.p, m, d, step)`` is torch's ``p.addcdiv_(m, d, value=step)``. Its
        coefficients may read the step's learning rate (:meth:`lr_coef`)."""
        self._check(expr)
        if not (isinstance(expr, Op) and expr.args and expr.args[0] is self.p):
            raise ValueError(
                "a final form updates the parameter: its outermost primitive's first operand "
                f"must be f.p, got {_describe(expr)}"
            )
        self.final_expr = expr

    def lr_coef(self, name: str, fn: Callable[..., float], uses: Sequence[str] = ()) -> Coef:
        """Coefficient ``fn(hyper, t, lr)`` of a final form: ``lr`` is the step's learning rate
        (the chain's ``scale_by_lr``: with Adagrad's ``lr_decay``, the decayed one)."""
        return self._declare(Coef(name, fn, tuple(uses), lr=True))

    def product(self, key: str, fn: CoefFn, uses: Sequence[str] = (), init: float = 1.0) -> None:
        """A per-tensor number kept in state ``key`` (a 0-dim tensor of the default float
        dtype, ``init`` at first), multiplied here by ``fn(hyper, t)`` -- NAdam's running
        product of momentum factors; coefficients read it with ``reads=key``."""
        c = self._declare(Coef(f"{key}_factor", fn, tuple(uses)))
        self.scalars[key] = init
        self.statements.append(("product", key, c))

    def _check(self, expr: Expr) -> None:
        """Refuse a read of a state entry's value from before its last assignment (every
        backend would see the new one)."""
        for leaf in _leaves(expr):
            key = leaf.name.removeprefix("state:")
            if leaf.name.startswith("state:") and leaf.version != self._versions.get(key, 0):
                raise ValueError(
                    f"the form reads {key!r} from before its update; name that value with "
                    "let() before the assignment"
                )


def _describe(expr: Expr) -> str:
    return expr.op if isinstance(expr, Op) else type(expr).__name__


def _leaves(expr: Expr) -> list[Leaf]:
    if isinstance(expr, Leaf):
        return [expr]
    if isinstance(expr, Op):
        return [x for a in expr.args for x in _leaves(a)]
    return []


# --------------------------------------------------------------------------------------
# Emitters: one per target. Each evaluates the statements in order; ``apply`` does one
# primitive on already evaluated operands.
# --------------------------------------------------------------------------------------


class Emitter(ABC):
    """What a target implements (the C kernel, the eager foreach kernels, a GPU kernel)."""

    @abstractmethod
    def leaf(self, name: str) -> Any:
        """The value of a leaf: ``g``, ``p`` or a state entry."""

    @abstractmethod
    def coef(self, c: Coef) -> Any:
        """The value of a per-tensor coefficient."""

    @abstractmethod
    def apply(self, op: str, args: list[Any], alpha: Any) -> Any:
        """One primitive ``op`` on already evaluated operands."""

    @abstractmethod
    def assign(self, key: str, value: Any, expr: Expr) -> Any:
        """Store ``value`` as the new state entry ``key``; returns what later reads see."""

    def materialize(self, value: Any) -> Any:
        """A value named by ``let``: evaluated here, once."""
        return value

    def scale(self, key: str, factor: Coef) -> None:
        """Multiply the per-tensor number in state ``key`` by the coefficient ``factor``
        (:meth:`Form.product`)."""
        raise ValueError(f"{type(self).__name__} keeps no per-tensor numbers in state")

    def select(self, on: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
        """:func:`branch`: ``a()`` where the coefficient ``on`` is nonzero, else ``b()``."""
        return self.apply("branch", [on, a(), b()], None)

    def select_flag(self, flag: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
        """``where`` on a per-tensor flag: both branches, by default; a target that can
        evaluates only the chosen one."""
        return self.apply("where", [flag, a(), b()], None)

    def update_param(self, op: str, args: list[Any], alpha: Any) -> Any:
        """A final form's outermost primitive (``args[0]``: the parameter)."""
        return self.apply(op, args, alpha)

    def value(self, e: Expr) -> Any:
        """The value of ``e`` (each subexpression evaluated once)."""
        memo = self._memo
        got = memo.get(id(e))
        if got is not None:
            return got
        if isinstance(e, Leaf):
            v = self.leaf(e.name.split(":", 1)[-1] if ":" in e.name else e.name)
        elif isinstance(e, Coef):
            v = self.coef(e)
        elif isinstance(e, Let):
            raise AssertionError("a let is evaluated where it is declared")
        else:
            assert isinstance(e, Op)
            if e.op == "branch":
                on, a, b = e.args
                v = self.select(self.value(on), lambda: self.value(a), lambda: self.value(b))
            elif e.op == "where" and _flag(e.args[0]):
                on, a, b = e.args
                v = self.select_flag(self.value(on), lambda: self.value(a), lambda: self.value(b))
            else:
                args = [self.value(a) for a in e.args]
                v = self.apply(e.op, args, None if e.alpha is None else self.value(e.alpha))
        memo[id(e)] = v
        return v

    def statements(self, form: Form) -> None:
        """Evaluate ``form``'s statements in order."""
        self._memo: dict[int, Any] = {}
        for kind, target, expr in form.statements:
            if kind == "let":
                self._memo[id(target)] = self.materialize(self.value(expr))
            elif kind == "product":
                self.scale(target, expr)
            else:
                self.assign(target, self.value(expr), expr)

    def run(self, form: Form) -> Any:
        """Evaluate ``form``; returns the output's value."""
        self.statements(form)
        assert form.output is not None, "a form must set its output with out()"
        return self.value(form.output)

    def final(self, form: Form) -> Any:
        """The new parameter of ``form``'s final form (after :meth:`statements` or
        :meth:`run`): the parameter leaf is read afresh (a decoupled decay may precede)."""
        e = form.final_expr
        assert isinstance(e, Op), "the form has no final form"
        self._memo.pop(id(form.p), None)
        args = [self.value(a) for a in e.args]
        return self.update_param(e.op, args, None if e.alpha is None else self.value(e.alpha))


class CEmitter(Emitter):
    """Per-element C for the fused backend's builder (every value of type ``T``): each
    primitive is one line ``T tN = ...;`` of the builder's loop body, from :data:`PRIMITIVES`.
    ``prefix`` scopes the rule's coefficients (:meth:`~descentlab.optim.fused.FusedBuilder.
    scope`: two instances of one rule in a chain keep theirs apart)."""

    def __init__(self, builder: Any, prefix: str) -> None:
        self.b, self.prefix = builder, prefix
        self.one: str | None = None
        self.written: set[str] = set()
        self.lazy: set[str] = set()
        self.p, self.lr_fn, self.lr_uses = "p", None, ()

    def let(self, expr: str) -> str:
        """``T tN = expr;`` in the loop body; returns ``tN``."""
        name = f"t{len(self.b.lines)}"  # one line per statement: a fresh name in the chain
        self.b.lines.append(f"T {name} = {expr};")
        return name

    def leaf(self, name: str) -> str:
        if name == "g":
            return self.b.u
        if name == "p":
            return self.p
        return self._array(name)

    def _array(self, key: str) -> str:
        if key in self.lazy:  # made as zeros before the kernel runs, where missing
            self.lazy.discard(key)
            pr = lazy_zeros(key)
            self.b.prepare(pr.fn, **pr.how)
        return self.b.state(key, write=key in self.written)

    def coef(self, c: Coef) -> str:
        fn, name, uses = c.fn, f"{self.prefix}_{c.name}", c.uses
        if c.per_tensor is not None:
            return self.b.coef(name, fn, uses=uses, per_tensor=c.per_tensor)
        if c.lr:
            lr_fn = self.lr_fn
            assert lr_fn is not None, f"{c.name!r} reads the learning rate: final forms only"
            return self.b.coef(
                name, lambda h, t, e: fn(h, t, lr_fn(h, t)), uses=(*uses, *self.lr_uses)
            )
        if c.reads is not None:
            return self.b.coef(name, lambda h, t, e: fn(h, t, e), uses=uses, reads=c.reads)
        return self.b.coef(name, lambda h, t, e: fn(h, t), uses=uses)

    def apply(self, op: str, a: list[str], alpha: str | None) -> str:
        prim = primitive(op, alpha)
        if prim is None:
            raise ValueError(f"no C form for primitive {op!r}")
        if op in _MASKS:  # a mask is an operand of where only: inline, never a T variable
            return prim.c.format(*a)  # type: ignore[union-attr]
        self.b.slow = self.b.slow or prim.slow
        if op == "sign" and self.one is None:  # 1 of type T (a literal would be a scalar)
            self.one = self.b.coef(f"{self.prefix}_sign_one", lambda h, t, e: 1.0)
        return spell(prim.c, a, alpha, self.let, self.one)

    def materialize(self, value: str) -> str:
        # a state entry's value named before its assignment is copied (the name is reused)
        return self.let(value) if value.startswith("s_") else value

    def assign(self, key: str, value: str, expr: Expr) -> str:
        var = self._array(key)
        self.b.lines.append(f"{var} = {value};")
        return var

    def scale(self, key: str, factor: Coef) -> None:
        self.b.prepare(product_prepare(key, factor), needs=(key,))

    def run(self, form: Form) -> str:
        self.written, self.lazy = set(form.written), set(form.lazy)
        for pr in form.prepares:
            self.b.prepare(pr.fn, **pr.how)
        out = super().run(form)
        self.b.u = out
        return out

    def final_c(self, form: Form, p: str, lr_fn: Callable, lr_uses: Sequence[str]) -> str:
        """The C expression of the new parameter (``p``: the parameter after a decoupled
        decay; ``lr_fn(hyper, t)``: the step's learning rate, reading ``lr_uses``)."""
        self.p, self.lr_fn, self.lr_uses = p, lr_fn, tuple(lr_uses)
        return self.final(form)


Spelling = str | tuple[str, ...]


@dataclass(frozen=True)
class Primitive:
    """One primitive's spellings: ``c`` (the fused kernels' C) and ``triton``, each rounding as
    its torch kernel, and ``exact``, its definition (:func:`reference`, in float64). In a
    spelling, operands are ``{0}``, ``{1}``...; ``{alpha}``: add's; ``{one}``: 1 of the
    compute type; a tuple: statements in order, ``{r}`` the previous one's value. ``lerp``,
    ``addcmul`` and ``add(alpha=)`` round once through a fused multiply-add. (The eager
    emitter's spelling of a primitive is torch's ``_foreach_<name>`` kernel.)"""

    c: Spelling
    triton: Spelling
    exact: Callable[..., Any]
    #: a division or a square root: long-latency arithmetic (a kernel with none streams
    #: memory, :meth:`~descentlab.optim.fused.FusedBuilder.source`)
    slow: bool = False


def _f64(x: Any) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


_TL_LERP = "tl.where(({2} < 0.5) & ({2} > -0.5), tl.fma({2}, {r}, {0}), tl.fma({2} - 1, {r}, {1}))"

#: every primitive of the form, once: what each target writes for it
PRIMITIVES: dict[str, Primitive] = {
    "add": Primitive("{0} + {1}", "{0} + {1}", lambda x, y: x + y),
    "add_alpha": Primitive(
        "dl_fma({1}, {alpha}, {0})", "tl.fma({1}, {alpha}, {0})", lambda x, y, w: x + w * y
    ),
    "sub": Primitive("{0} - {1}", "{0} - {1}", lambda x, y: x - y),
    "mul": Primitive("{0} * {1}", "{0} * {1}", lambda x, y: x * y),
    # Triton's float32 ``/`` may be approximate: _div is IEEE's (kernel_source)
    "div": Primitive("{0} / {1}", "_div({0}, {1})", lambda x, y: x / y, slow=True),
    "neg": Primitive("-{0}", "-{0}", lambda x: -x),
    # torch's CPU lerp: one fma, exact at both ends
    "lerp": Primitive(
        "dl_lerp({0}, {1}, {2})", ("{1} - {0}", _TL_LERP), lambda a, b, w: a + w * (b - a)
    ),
    "addcmul": Primitive(
        "dl_fma({3} * {1}, {2}, {0})",
        "tl.fma({3} * {1}, {2}, {0})",
        lambda x, a, b, v: x + v * a * b,
    ),
    "addcdiv": Primitive(
        "{0} + ({3} * {1}) / {2}",
        "{0} + _div({3} * {1}, {2})",
        lambda x, a, b, v: x + v * a / b,
        slow=True,
    ),
    "sqrt": Primitive(
        "dl_sqrt({0})",
        "_sqrt({0})",
        lambda x: x**0.5 if isinstance(x, float) else torch.sqrt(x),
        slow=True,
    ),
    "maximum": Primitive(
        "(dl_isnan({1}) | ({1} > {0})) ? {1} : {0}",
        "tl.where(({1} != {1}) | ({1} > {0}), {1}, {0})",
        torch.maximum,
    ),
    # x + 0 turns -0 into +0, as torch's abs
    "abs": Primitive("({0} < 0) ? -{0} : {0} + 0", "tl.where({0} < 0, -{0}, {0} + 0)", abs),
    "sign": Primitive(
        "({0} > 0) ? {one} : (({0} < 0) ? -{one} : {one} * 0)",
        "tl.where({0} > 0, {one}, tl.where({0} < 0, -{one}, {one} * 0))",
        torch.sign,
    ),
    "branch": Primitive(
        "({0} != 0) ? {1} : {2}", "tl.where({0} != 0, {1}, {2})", lambda on, a, b: a if on else b
    ),
    "where": Primitive(
        "{0} ? {1} : {2}",
        "tl.where({0}, {1}, {2})",
        lambda c, a, b: (
            (a if c else b) if isinstance(c, bool) else torch.where(c, _f64(a), _f64(b))
        ),
    ),
    "clamp": Primitive(
        ("({0} < {1}) ? {1} : {0}", "({r} > {2}) ? {2} : {r}"),
        ("tl.where({0} < {1}, {1}, {0})", "tl.where({r} > {2}, {2}, {r})"),
        lambda x, lo, hi: torch.clamp(_f64(x), min=lo, max=hi),
    ),
    **{
        m: Primitive(
            f"({{0}} {sym} {{1}})",
            f"{{0}} {sym} {{1}}",
            lambda x, y, m=m: getattr(torch, m)(_f64(x), _f64(y)),
        )
        for m, sym in _MASKS.items()
        if m != "ne0"
    },
    "ne0": Primitive("({0} != 0)", "{0} != 0", lambda x: x != 0),
}


def primitive(op: str, alpha: Any) -> Primitive | None:
    """``op``'s row of :data:`PRIMITIVES` (``add`` with an ``alpha``: ``add_alpha``)."""
    return PRIMITIVES.get("add_alpha" if op == "add" and alpha is not None else op)


def spell(
    forms: Spelling, a: Sequence[str], alpha: Any, let: Callable[[str], str], one: Any
) -> str:
    """A primitive's statements in a target's text, each named by ``let``; the last's name."""
    value = ""
    for step in forms if isinstance(forms, tuple) else (forms,):
        value = let(step.format(*a, alpha=alpha, one=one, r=value))
    return value


def _number(v: Any) -> Any:
    """A coefficient's value: a float, or a 1-D tensor where a hyperparameter is batched."""
    if isinstance(v, Tensor):
        return v if v.ndim >= 1 and v.numel() > 1 else float(v)
    return float(v)


class _Scalars(list):
    """A coefficient's per-tensor values: one float per tensor, or with batched
    hyperparameters a length-K tensor (one value per row of the leading dimension); the
    values are not changed once made (:meth:`batched` and :meth:`one` are read once)."""

    def __init__(self, values: Any = (), *, one: Any = None, n: int = 0) -> None:
        if n:  # the same number for ``n`` tensors
            super().__init__([one] * n)
            self.batched = isinstance(one, Tensor)
            self._one = None if self.batched else one
            return
        super().__init__(values)
        self.batched = any(isinstance(v, Tensor) for v in self)
        first = self[0] if self else None
        same = not self.batched and all(v == first for v in self)
        self._one = first if same else None

    def one(self) -> float | None:
        """The value of every tensor, or None where they differ (or are batched)."""
        return self._one


def _batched_apply(op: str, a: list[Any], alpha: Any) -> list[Tensor]:
    """One primitive with a batched coefficient, tensor by tensor (the value broadcast along
    each tensor's leading dimension, as the fused kernels take one value per row; scalars'
    roundings as :mod:`descentlab.optim.base`'s batched helpers)."""
    n = len(next(x for x in a if not isinstance(x, _Scalars)))
    cols = [x if isinstance(x, list) else [x] * n for x in a]
    out = []
    for i in range(n):
        xs = [c[i] for c in cols]
        like = next(x for x in xs if isinstance(x, Tensor) and x.ndim >= 1)
        v = [bcast(x, like) for x in xs]
        if op in ("add", "sub", "mul", "div"):
            y = v[1] if alpha is None else v[1] * bcast(alpha[i], like)
            out.append(getattr(torch, op if op != "sub" else "subtract")(v[0], y))
        elif op == "lerp":
            out.append(torch.lerp(v[0], v[1], v[2]))
        elif op == "addcmul":
            out.append(v[0] + v[1] * v[2] * v[3])
        elif op == "addcdiv":
            out.append(v[0] + (v[3] * v[1]) / v[2])
        else:
            raise ValueError(f"primitive {op!r} takes no batched coefficient")
    return out


def _operands(e: Op) -> list[Expr]:
    return [*e.args, e.alpha] if e.alpha is not None else list(e.args)


def _reads(expr: Expr, name: str) -> int:
    """How often evaluating ``expr`` reads leaf ``name`` (each node evaluated once; a let's
    value is made at its own statement)."""
    count, seen, todo = 0, set(), [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, Leaf) and e.name == name:
            count += 1
        if id(e) not in seen and isinstance(e, Op):
            seen.add(id(e))
            todo.extend(_operands(e))
    return count


class _Uses:
    """How often a form's values are read on one evaluation path (statements, then the output
    or the final form): per node, and per state version (``Form.state`` makes a new leaf at
    each call, all reading the same tensors)."""

    def __init__(self, form: Form, final: bool) -> None:
        self.nodes: dict[int, int] = {}
        self.leaves: dict[tuple[str, int], int] = {}
        seen: set[int] = set()
        todo: list[Expr] = [e for kind, _, e in form.statements if kind != "product"]
        root = form.final_expr if final else form.output
        if root is not None:
            todo.append(root)
        while todo:  # each entry: one read of its value
            e = todo.pop()
            self.nodes[id(e)] = self.nodes.get(id(e), 0) + 1
            if isinstance(e, Leaf):
                key = (e.name, e.version)
                self.leaves[key] = self.leaves.get(key, 0) + 1
            if id(e) not in seen and isinstance(e, Op):  # a let's value: made at its statement
                seen.add(id(e))
                todo.extend(_operands(e))
        #: per assign statement: how often its expression reads the entry it assigns (the
        #: earlier statements' reads are done by then, and a later one is refused by the form)
        self.own_reads: dict[int, int] = {}
        for i, (kind, key, expr) in enumerate(form.statements):
            if kind == "assign":
                self.own_reads[i] = _reads(expr, f"state:{key}")

    @staticmethod
    def of(form: Form, final: bool) -> _Uses:
        """Cached on the form (a form is not changed once built; its length is checked)."""
        cache = form.__dict__.setdefault("_eager_uses", {})
        key = (final, len(form.statements), id(form.output), id(form.final_expr))
        got = cache.get(key)
        if got is None:
            got = cache[key] = _Uses(form, final)
        return got


class EagerEmitter(Emitter):
    """The form over a param group's tensor lists with torch's ``_foreach_*`` kernels (each
    primitive the kernel the C emitter reproduces), in as few passes as the form allows.

    Every value the step makes is counted by how many reads of it remain (:class:`_Uses`);
    its last reader updates it in place (``_foreach_mul_(t, c)``) instead of writing a new
    list. A state entry read only by its own assignment is that value's first buffer, so
    ``m = lerp(m, g, w)`` is ``m.lerp_(g, w)`` and ``v = addcmul(v * b, g, g, c)`` is
    ``v.mul_(b).addcmul_(g, g, c)``; an incoming update the previous rule of the chain made
    (:class:`~descentlab.optim.base.Owned`) and read once is used the same way. An in-place
    kernel rounds as its out-of-place twin, so the form's operation order and rounding stay.
    New values are written into the optimizer's scratch memory
    (:class:`~descentlab.optim.base.Workspace`), reused from step to step."""

    def __init__(
        self,
        grads: list[Tensor],
        params: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
    ) -> None:
        self.grads, self.params, self.state, self.given = grads, params, state, hyper
        self._hyper: dict[str, Any] | None = None
        self._steps: list[float] | None = None
        self._one_step: bool | None = None
        self.lazy: list[str] = []
        #: the step's learning rate of each tensor (a final form's :meth:`Form.lr_coef`)
        self.lrs: list[float] | None = None
        #: values this step made that a reader may overwrite: id -> [value, reads left]
        self._own: dict[int, list] = {}
        self._args: list[Any] = []
        self._uses: _Uses | None = None
        self._grant: str | None = None  # a state entry its assignment may update in place

    @property
    def hyper(self) -> dict[str, Any]:
        """The group's hyperparameters, 0-dim tensors as numbers (made on first use)."""
        if self._hyper is None:
            self._hyper = {k: _plain(v) for k, v in self.given.items()}
        return self._hyper

    # -- ownership --------------------------------------------------------------------
    def _new(self, value: list[Tensor]) -> list[Tensor]:
        """A value made by this step (0 reads counted yet)."""
        self._own[id(value)] = [value, 0]
        return value

    def _last(self, x: Any) -> bool:
        """True where this primitive is the last reader of ``x``, a value of this step, and
        its result has ``x``'s dtype (an operand of another dtype would promote it)."""
        got = self._own.get(id(x))
        if got is None or got[1] != 1:
            return False
        return [a is x for a in self._args].count(True) == 1 and self._same_dtype(x)

    def _same_dtype(self, x: list[Tensor]) -> bool:
        """Every tensor operand of this primitive has ``x``'s dtype: always here (state,
        gradients and every value of the step have their parameter's dtype)."""
        return True

    def _read(self, x: Any) -> None:
        got = self._own.get(id(x))
        if got is not None:
            got[1] -= 1

    def _count(self, e: Expr, v: Any) -> None:
        got = self._own.get(id(v))
        if got is not None:
            assert self._uses is not None
            got[1] += self._uses.nodes.get(id(e), 0)

    def _disown(self, *values: Any) -> None:
        for v in values:
            self._own.pop(id(v), None)

    def _scratch_copy(self, value: list[Tensor]) -> list[Tensor]:
        out = scratch(self.state, value)
        torch._foreach_copy_(out, value)
        return self._new(out)

    # -- evaluation -------------------------------------------------------------------
    def value(self, e: Expr) -> Any:
        memo = self._memo
        got = memo.get(id(e))
        if got is not None:
            return got
        if isinstance(e, Leaf):
            key = e.name.split(":", 1)[-1]
            v = self.leaf(key)
            assert self._uses is not None
            if key == self._grant or (
                e.name == "g" and isinstance(v, Owned) and self._uses.leaves[("g", 0)] == 1
            ):
                self._own.setdefault(id(v), [v, 0])
        elif isinstance(e, Coef):
            v = self.coef(e)
        elif not isinstance(e, Op):
            raise AssertionError("a let is evaluated where it is declared")
        elif e.op == "branch" or (e.op == "where" and _flag(e.args[0])):
            read: list[Any] = []

            def side(x: Expr) -> Any:
                got = self.value(x)
                read.append(got)
                return got

            on, a, b = e.args
            pick = self.select if e.op == "branch" else self.select_flag
            v = pick(self.value(on), lambda: side(a), lambda: side(b))
            for x in read:
                self._read(x)
        else:
            args = [self.value(a) for a in e.args]
            alpha = None if e.alpha is None else self.value(e.alpha)
            self._args = args
            v = self.apply(e.op, args, alpha)
            own = self._own
            for x in args:  # each operand read once more
                got = own.get(id(x))
                if got is not None:
                    got[1] -= 1
        self._count(e, v)
        memo[id(e)] = v
        return v

    def statements(self, form: Form) -> None:
        for pr in form.prepares:
            pr.fn(self.state, self.params, self.grads, self.given)
        self.lazy = form.lazy
        self._uses = _Uses.of(form, final=self.lrs is not None)
        self._memo = {}
        for i, (kind, target, expr) in enumerate(form.statements):
            if kind == "product":
                self.scale(target, expr)
                continue
            if kind == "assign" and self._uses.own_reads[i] == 1:
                self._grant = target  # its one read is its buffer: updated in place
            v = self.value(expr)
            self._grant = None
            self._read(v)
            if kind == "let":
                v = self.materialize(v)
                self._count(target, v)
                self._memo[id(target)] = v
            else:
                self.assign(target, v, expr)

    def run(self, form: Form) -> Any:
        """Evaluate ``form``; returns the output (:class:`~descentlab.optim.base.Owned` where
        this step made it: the chain's next rule may overwrite it)."""
        out = super().run(form)
        if id(out) in self._own and not isinstance(out, Owned):
            return Owned(out)
        return out

    def leaf(self, name: str) -> list[Tensor]:
        if name == "g":
            return self.grads
        if name == "p":
            return self.params
        if name in self.lazy:  # made as the kernels make it: zeros laid out as the parameters
            return lazy_state(self.state, name, self.params, torch.zeros_like)
        return self.state[name]

    #: a coefficient's value as the step uses it, and a state number as a coefficient reads it
    number = staticmethod(_number)
    state_number = staticmethod(float)

    def coef(self, c: Coef) -> _Scalars:
        if self._steps is None:
            self._steps = step_values(self.state, len(self.params))
        h, fn, steps, number = self.hyper, c.fn, self._steps, self.number
        if c.lr:
            assert self.lrs is not None, f"{c.name!r} reads the learning rate: final forms only"
            return _Scalars(number(fn(h, t, lr)) for t, lr in zip(steps, self.lrs, strict=True))
        if c.reads is not None:
            xs = [self.state_number(x) for x in self.state[c.reads]]
            return _Scalars(number(fn(h, t, x)) for t, x in zip(steps, xs, strict=True))
        if c.per_tensor is not None:
            st = self.state
            return _Scalars(number(c.value(h, t, st, i)) for i, t in enumerate(steps))
        if self._one_step is None:
            self._one_step = all(t == steps[0] for t in steps)
        if self._one_step and steps:  # every tensor at the same step: fn(h, t) once
            return _Scalars(one=number(fn(h, steps[0])), n=len(steps))
        return _Scalars(per_step(steps, lambda t: number(fn(h, t))))

    def scale(self, key: str, factor: Coef) -> None:
        values = self.coef(factor)
        if values.batched:
            torch._foreach_mul_(self.state[key], list(values))
        else:
            Numbers(self.state[key]).scale(list(values))

    def select(self, on: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
        one = on.one()
        if one is not None:  # the same branch for every tensor: only it is evaluated
            return a() if one != 0 else b()
        xs, ys = a(), b()
        self._disown(xs, ys)  # the chosen tensors of both stand in the result
        return [x if o != 0 else y for o, x, y in zip(on, xs, ys, strict=True)]

    def select_flag(self, flag: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
        if all(flag) or not any(flag):  # the branch every tensor takes, only
            return a() if flag[0] else b()
        xs, ys = a(), b()
        self._disown(xs, ys)
        self._args = [flag, xs, ys]
        return self.apply("where", self._args, None)

    def update_param(self, op: str, args: list[Any], alpha: Any) -> list[Tensor]:
        """In place on the parameters: ``p.addcdiv_(m, d, value=s)`` for ``addcdiv(p, ...)``."""
        kw = {} if alpha is None else {"alpha": alpha.one()}
        if None in kw.values():
            raise ValueError("a final form's alpha must be the same for every tensor")
        getattr(torch, f"_foreach_{op}_")(self.params, *(_arg(x) for x in args[1:]), **kw)
        return self.params

    def apply(self, op: str, a: list[Any], alpha: Any) -> list[Tensor]:
        if op in SELECTIONS:
            return self._selection(op, a)
        if any(isinstance(x, _Scalars) and x.batched for x in (*a, alpha) if x is not None):
            return self._new(_batched_apply(op, a, alpha))
        if op in ("add", "sub", "mul", "div"):
            x, y = a
            if isinstance(x, _Scalars):
                if op in ("mul", "add"):  # commutative: the same rounding
                    x, y = y, x
                else:
                    raise ValueError(f"a coefficient on the left of {op!r} has no foreach kernel")
            if alpha is None:
                return self._foreach(op, x, _arg(y))
            if alpha.one() is None:
                return self._each("add", x, y, alpha=list(alpha))
            return self._foreach("add", x, y, alpha=alpha.one())
        if op in ("neg", "sqrt", "sign", "abs"):
            return self._foreach(op, a[0])
        if op == "lerp":
            w = a[2]
            if w.one() is None:
                return self._each("lerp", a[0], a[1], list(w))
            return self._foreach("lerp", a[0], a[1], w.one())
        if op in ("addcmul", "addcdiv"):
            return self._foreach(op, a[0], a[1], a[2], _arg(a[3]))
        if op == "maximum":
            return self._foreach("maximum", a[0], a[1])
        raise ValueError(f"no foreach form for primitive {op!r}")

    def _foreach(self, name: str, x: list[Tensor], *rest: Any, **kw: Any) -> list[Tensor]:
        """``_foreach_<name>`` on ``x``: in place where this is ``x``'s last reader."""
        if self._last(x):
            getattr(torch, f"_foreach_{name}_")(x, *rest, **kw)
            return x
        ws = self.state.get("_workspace")
        if ws is None or not self._same_dtype(x):
            return self._new(list(getattr(torch, f"_foreach_{name}")(x, *rest, **kw)))
        out = ws.take(x)  # the optimizer's scratch memory: nothing allocated
        if small(x):  # many small tensors: two foreach kernels beat a loop of out= calls
            torch._foreach_copy_(out, x)
            getattr(torch, f"_foreach_{name}_")(out, *rest, **kw)
            return self._new(out)
        col = lambda v, i: v[i] if isinstance(v, list) else v  # noqa: E731
        value = {"value": rest[-1]} if name in ("addcmul", "addcdiv") else {}
        args = rest[:-1] if value else rest
        f = getattr(torch, name)
        for i, (xi, oi) in enumerate(zip(x, out, strict=True)):
            f(
                xi,
                *(col(r, i) for r in args),
                **kw,
                **{k: col(v, i) for k, v in value.items()},
                out=oi,
            )
        return self._new(out)

    def _each(self, name: str, x: list[Tensor], *rest: Any, **kw: Any) -> list[Tensor]:
        """Tensor by tensor, a per-tensor number among the operands (``rest``/``kw`` lists
        aligned with ``x``, or one value for all)."""
        n = len(x)
        col = lambda v, i: v[i] if isinstance(v, list) else v  # noqa: E731
        calls = [
            ([col(r, i) for r in rest], {k: col(v, i) for k, v in kw.items()}) for i in range(n)
        ]
        if self._last(x):
            for xi, (r, k) in zip(x, calls, strict=True):
                getattr(xi, f"{name}_")(*r, **k)
            return x
        return self._new(
            [getattr(torch, name)(xi, *r, **k) for xi, (r, k) in zip(x, calls, strict=True)]
        )

    def _selection(self, op: str, a: list[Any]) -> list[Any]:
        """Comparisons, where and clamp (:func:`_eager_selection`); a result that shares no
        tensor with its operands is this step's to overwrite."""
        if op == "ne0" and isinstance(a[0], _Scalars) and a[0].one() is not None:
            return [a[0].one() != 0] * len(a[0])  # a per-tensor flag, the same for all
        if op == "clamp" and all(isinstance(b, _Scalars) and b.one() is not None for b in a[1:]):
            x = self._foreach("clamp_min", a[0], a[1].one())  # one pair of foreach kernels
            torch._foreach_clamp_max_(x, a[2].one())
            return x
        out = _eager_selection(op, a, [p.dtype for p in self.params])
        if op in _MASKS:
            return out
        given = {id(t) for x in a if isinstance(x, list) for t in x}
        if any(id(t) in given for t in out):
            self._disown(*a)
            return out
        return self._new(out)

    def materialize(self, value: Any) -> Any:
        # a named value must not change when a state entry it is is assigned later
        if any(value is v for v in self.state.values()):
            return self._scratch_copy(value)
        return value

    def assign(self, key: str, value: list[Tensor], expr: Expr) -> list[Tensor]:
        target = self.state[key]
        if value is not target:  # (in place already, or a where keeping the entry)
            torch._foreach_copy_(target, value)
        self._disown(target)
        return target


def _arg(y: Any) -> Any:
    if isinstance(y, _Scalars):
        one = y.one()
        return one if one is not None else list(y)
    return y


def _plain(v: Any) -> Any:
    if isinstance(v, Tensor) and v.ndim == 0:
        return v.item()
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    return v


def reference(
    form: Form,
    g: Tensor,
    p: Tensor,
    state: dict[str, Any],
    hyper: Mapping[str, Any],
    t: float,
    lr: float | None = None,
) -> Tensor:
    """The form in float64 from each primitive's definition (no fused roundings, torch's
    kernels not used): the update of one tensor, or with ``lr`` the new parameter by its
    final form (:meth:`Form.final`); ``state`` is updated in place (its :meth:`Form.prepare`
    steps run first, on it as a group of one tensor; a lazy entry missing from it is made as
    zeros; a :meth:`Form.product` number is multiplied as it is stored)."""
    lists: dict[str, list] = {k: [v] for k, v in state.items()}
    lists["_step_values"] = [t]
    for pr in form.prepares:
        pr.fn(lists, [p], [g], hyper)
    state.update({k: v[0] for k, v in lists.items() if not k.startswith("_")})

    class _Ref(Emitter):
        def leaf(self, name: str) -> Any:
            if name in ("g", "p"):
                return {"g": g, "p": p}[name]
            if name in form.lazy and state.get(name) is None:
                state[name] = torch.zeros_like(g)
            return state[name] if name in state else lists[name][0]  # (a per-step array)

        def coef(self, c: Coef) -> float:
            if c.lr:
                assert lr is not None, f"{c.name!r} reads the learning rate: final forms only"
                return float(c.fn(hyper, t, lr))
            if c.reads is not None:
                return float(c.fn(hyper, t, float(state[c.reads])))
            if c.per_tensor is not None:  # what the prepares computed
                return float(c.fn(hyper, t, c.per_tensor(lists, 0)))
            return float(c.fn(hyper, t))

        def scale(self, key: str, factor: Coef) -> None:
            state[key] = state[key] * self.coef(factor)

        def select(self, on: Any, a: Callable[[], Any], b: Callable[[], Any]) -> Any:
            return a() if on != 0 else b()

        def apply(self, op: str, a: list[Any], alpha: Any) -> Any:
            prim = primitive(op, alpha)
            if prim is None:
                raise ValueError(op)
            return prim.exact(*a) if alpha is None else prim.exact(*a, alpha)

        def assign(self, key: str, value: Any, expr: Expr) -> Any:
            state[key] = value
            return value

    ref = _Ref()
    if lr is None:
        return ref.run(form)
    ref.statements(form)
    return ref.final(form)


# --------------------------------------------------------------------------------------
# Rules written in the form
# --------------------------------------------------------------------------------------


class FormRule(Rule):
    """An elementwise rule whose math is its :meth:`form`: the eager ``update`` and the fused
    ``fuse`` are derived from it (:class:`EagerEmitter`, :class:`CEmitter`), and so is its
    parameter update in its own operation order where the form has a final form
    (:meth:`Form.final`; the rule then sets ``has_final = True``: ``apply_final`` and the
    fused ``final_form`` come from it). Its state is what the form reads at the rule's
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
        """The eager update (``emitter``: an :class:`EagerEmitter` class to run it with, such
        as autograd's :class:`~descentlab.optim.differentiable.DifferentiableEmitter`)."""
        form = self.built(hyper)
        if form.output is form.g and not form.statements and not form.prepares:
            return grads, state  # switched off at these hyperparameters: nothing to run
        return self._eager(grads, params, state, hyper, emitter).run(form), state

    def _eager(self, grads, params, state, hyper, emitter=None) -> EagerEmitter:
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

    def fuse(self, b: Any, hyper: Mapping[str, Any]) -> bool:
        form = self.built(hyper)
        if b.u != "g" and any(pr.reads_g for pr in form.prepares):
            return False  # the kernel's prepares see the raw gradients, not this rule's input
        prefix = b.scope(self.name)
        em = CEmitter(b, prefix)
        if self.state_format is not None:
            em = StoredCEmitter(b, prefix, self)
        em.run(form)
        if form.final_expr is not None:
            b.final_form = (b.u, lambda b, p, lr_fn, uses: em.final_c(form, p, lr_fn, uses))
        return True

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


class StoredEagerEmitter(EagerEmitter):
    """:class:`EagerEmitter` whose elementwise state is stored in ``rule.state_format``."""

    def __init__(
        self,
        grads: list[Tensor],
        params: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        rule: FormRule,
    ) -> None:
        super().__init__(grads, params, state, hyper)
        assert rule.state_format is not None
        self.fmt = rule.state_format
        self.rule = rule
        self.keys = rule.stored()
        self.work: dict[str, list[Tensor]] = {}
        self._one_dtype: bool | None = None

    def leaf(self, name: str) -> list[Tensor]:
        if name not in self.keys:
            return super().leaf(name)
        got = self.work.get(name)
        if got is None:
            cols = [self._entries(k) for k in self.fmt.keys(name)]
            signed = name not in self.rule.nonnegative
            got = self.work[name] = [
                self.fmt.decode([c[i] for c in cols], signed) for i in range(len(self.params))
            ]
        return got

    def _same_dtype(self, x: list[Tensor]) -> bool:
        """Every tensor operand of this primitive has ``x``'s dtype: the decoded state is
        float32 whatever the parameters' dtype (tensor by tensor where the group mixes
        dtypes)."""
        others = [a for a in self._args if a is not x and isinstance(a, list) and a]
        others = [a for a in others if isinstance(a[0], Tensor)]
        if self._one_dtype is None:
            first = self.params[0].dtype if self.params else None
            self._one_dtype = all(p.dtype == first for p in self.params)
        if self._one_dtype:
            return all(a[0].dtype == x[0].dtype for a in others)
        return all(ai.dtype == xi.dtype for a in others for ai, xi in zip(a, x, strict=True))

    def _entries(self, key: str) -> list[Any]:
        """A stored entry of every tensor (None where a tensor does not have it: a blockwise
        format's small tensors have no block scales)."""
        got = self.state.get(key)
        return [None] * len(self.params) if got is None else got

    def _aliased(self, value: Any) -> bool:
        lists = [*self.state.values(), *self.work.values(), self.grads, self.params]
        return any(value is v for v in lists)

    def materialize(self, value: Any) -> Any:
        return self._scratch_copy(value) if self._aliased(value) else value

    def assign(self, key: str, value: list[Tensor], expr: Expr) -> list[Tensor]:
        if key not in self.keys:
            return super().assign(key, value, expr)
        if value is not self.work.get(key) and self._aliased(value):
            value = self._scratch_copy(value)
        self.work[key] = value
        self._disown(value)  # the entry's value now: no later reader may overwrite it
        return value

    def statements(self, form: Form) -> None:
        super().statements(form)
        steps = step_values(self.state, len(self.params))
        for index, key in enumerate(self.keys):
            if key not in form.written:
                continue
            cols = [self._entries(k) for k in self.fmt.keys(key)]
            signed = key not in self.rule.nonnegative
            for i, v in enumerate(self.work[key]):
                self.fmt.encode(v, [c[i] for c in cols], signed, sr_salt(index, steps[i]))


class StoredCEmitter(CEmitter):
    """:class:`CEmitter` whose elementwise state is stored in ``rule.state_format``: the
    builder loads and stores those entries through the format's C
    (:meth:`~descentlab.optim.fused.FusedBuilder.store_as`)."""

    def __init__(self, builder: Any, prefix: str, rule: FormRule) -> None:
        super().__init__(builder, prefix)
        self.rule = rule

    def run(self, form: Form) -> str:
        fmt = self.rule.state_format
        assert fmt is not None
        for index, key in enumerate(self.rule.stored()):
            if key not in form.states:
                continue
            salt = None
            if fmt.salted:
                salt = self.b.coef(
                    f"{self.prefix}_salt{index}", lambda h, t, e, i=index: float(sr_salt(i, t))
                )
            self.b.store_as(key, fmt, key not in self.rule.nonnegative, salt)
        return super().run(form)

    def _array(self, key: str) -> str:
        if key in self.b.formats:  # a lazy entry is made with the stored state, at init
            self.lazy.discard(key)
        return super()._array(key)
