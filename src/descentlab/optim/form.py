r"""One form for an elementwise rule's math, from which every backend is derived.

A rule written in this form (a :class:`FormRule`) states its per-element update once, with
torch-like primitives over named state, the incoming update ``g`` and the parameter ``p``;
the operation order is the form's, and every backend follows it: the eager one
(:class:`~descentlab.optim.eager_emitter.EagerEmitter`), the fused C and the Triton kernels
written from a chain's collected program (:func:`~descentlab.optim.program.collect`), each
primitive rounding exactly as its torch kernel does, and :func:`reference`, the form in
float64 element by element (the tests' independent check of both). Each evaluates a form
through one interface (:class:`Emitter`); work before the per-element program is a
:meth:`Form.prepare` step. Coefficients (``f.coef``) are computed in Python in double
precision once per step per group and rounded to the tensor's dtype where used. Writing a
rule in this form, with Adan as the worked example: docs/optimizers.md."""

from __future__ import annotations

import copy
import itertools
import operator
from abc import ABC, abstractmethod
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    "minimum",
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

    #: the value depends on more than the hyperparameters and the step: a per-tensor number
    #: (``reads``, ``per_tensor``) or the step's learning rate (``lr``)
    varies: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.varies = self.lr or self.reads is not None or self.per_tensor is not None

    def extras(
        self,
        state: Mapping[str, list],
        n: int,
        lrs: Sequence[Any] | None = None,
        number: Callable[[Any], Any] = float,
    ) -> list[Any]:
        """The third argument of :attr:`fn` for each of ``n`` tensors (None: ``fn`` takes
        two) -- the one place the kinds are told apart: each tensor's step learning rate
        ``lrs``, the state number it ``reads`` (as ``number`` gives it), or
        ``per_tensor(state, i)``. A kernel reads the same arguments a whole column at a time
        (:func:`~descentlab.optim.program.coefficient`)."""
        if self.lr:
            assert lrs is not None, f"{self.name!r} reads the learning rate: final forms only"
            return list(lrs)
        if self.reads is not None:
            return [number(x) for x in state[self.reads]]
        if self.per_tensor is not None:
            return [self.per_tensor(state, i) for i in range(n)]
        return [None] * n

    def call(self, hyper: Mapping[str, Any], t: float, extra: Any = None) -> Any:
        """The value at step ``t`` with an argument of :meth:`extras`."""
        return self.fn(hyper, t, extra) if self.varies else self.fn(hyper, t)


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
    """The larger of two values, NaN if either is (torch's ``maximum``); either may be a
    coefficient (``maximum(sqrt(v), eps)``, a floor by a per-tensor number)."""
    return Op("maximum", (a, b))


def minimum(a: Expr, b: Expr) -> Expr:
    """The smaller of two values, NaN if either is (torch's ``minimum``); either may be a
    coefficient (a ceiling by a per-tensor number)."""
    return Op("minimum", (a, b))


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


# --------------------------------------------------------------------------------------
# Forms
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepare:
    """A form's Python step before its per-element program (:meth:`Form.prepare`)."""

    fn: Callable[..., None]
    how: Mapping[str, Any]  # fills, needs, steady: see Form.prepare; passes: a total's
    # first passes (the ChainPrograms its kernel runs before the chain's: what they move)
    reads_g: bool = False
    #: the step as the eager backend and the float64 reference run it (None: ``fn``), where
    #: the kernels' differs: a total's first pass, a kernel there, torch's foreach kernels here
    eager: Callable[..., None] | None = None


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
    #: the expressions :meth:`total` sums over each tensor (a wrapper's form)
    totals: list[Expr] = field(default_factory=list)
    #: the coefficients :meth:`total` made
    total_coefs: list[Coef] = field(default_factory=list)
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
        the raw gradients (first in the chain). ``how``, what a kernel's plan reads
        (:class:`~descentlab.optim.plan.KernelPlan`): ``fills``, the state entries ``fn``
        makes where missing (arrays, or 0-dim values it keeps in ``needs``), which the
        optimizer stores; ``needs``, the state entries other than the kernel's arrays that
        ``fn`` reads or updates; ``steady``, ``fn`` only makes missing ``fills`` (and
        per-tensor coefficients read None as "nothing was made"), so a step may skip it once
        they all exist.
        """
        self.prepares.append(Prepare(fn, how, reads_g))

    def total(self, expr: Expr | Sequence[Expr], fn: Callable[..., float], name: str = "") -> Coef:
        """A per-tensor number ``fn(numel, sum)`` of the sum of ``expr`` over each whole
        tensor at this step -- Cautious's ``numel / (mask.sum() + 1)`` -- or, given several
        expressions, ``fn(numel, sum1, sum2, ...)`` -- LAMB's trust ratio ``||p|| / ||u||``
        from the sums of ``p * p`` and ``u * u``. An expression may read the parameter
        ``f.p`` and any value of the form before it (MARS's clip of its corrected gradient
        before its moments take it). Every backend computes each sum in a first pass (the
        per-element program without its stores), then steps; a rule that sums is not stepped
        on shards nor stacked with other runs (:meth:`FormRule.steps_shards`)."""
        exprs = tuple(expr) if isinstance(expr, Sequence) else (expr,)
        keys = [f"_total{len(self.totals) + j}" for j in range(len(exprs))]
        self.totals.extend(exprs)

        def sums(st: Mapping[str, list], i: int) -> tuple[float, ...]:
            return (st[keys[0]][i][0], *(st[k][i][1] for k in keys))

        c = self.coef(name or keys[0].removeprefix("_"), lambda h, t, x: fn(*x), per_tensor=sums)
        self.total_coefs.append(c)
        return c

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
            v = self.leaf_value(e)
        elif isinstance(e, Coef):
            v = self.coef(e)
        elif isinstance(e, Let):
            raise AssertionError("a let is evaluated where it is declared")
        elif e.op == "branch" or (e.op == "where" and _flag(e.args[0])):  # type: ignore[union-attr]
            v = self.choose(e)  # type: ignore[arg-type]
        else:
            assert isinstance(e, Op)
            args = [self.value(a) for a in e.args]
            v = self.operate(e, args, None if e.alpha is None else self.value(e.alpha))
        self.made(e, v)
        memo[id(e)] = v
        return v

    def leaf_value(self, e: Leaf) -> Any:
        """A leaf's value (``state:key`` reads :meth:`leaf` ``key``)."""
        return self.leaf(e.name.split(":", 1)[-1])

    def choose(self, e: Op, side: Callable[[Expr], Any] | None = None) -> Any:
        """``branch`` or a flag's ``where``: each side evaluated by ``side`` when picked."""
        on, a, b = e.args
        pick, side = self.select if e.op == "branch" else self.select_flag, side or self.value
        return pick(self.value(on), lambda: side(a), lambda: side(b))

    def operate(self, e: Op, args: list[Any], alpha: Any) -> Any:
        """Primitive ``e`` on its evaluated operands."""
        return self.apply(e.op, args, alpha)

    def made(self, e: Expr, v: Any) -> None:
        """``v``, the value of ``e``, was just made (a target counting reads counts it)."""
        return None

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


Spelling = str | tuple[str, ...]


@dataclass(frozen=True)
class Primitive:
    """One primitive's every spelling: ``c`` (the fused kernels' C) and ``triton``, each
    rounding as its torch kernel, ``exact``, its definition (:func:`reference`, in float64),
    the eager backend's three (``foreach``, ``batched``, ``select``) and ``text``, the
    optimizer card's Python. In a C or Triton spelling, operands are ``{0}``, ``{1}``...;
    ``{alpha}``: add's; ``{one}``: 1 of the compute type; a tuple: statements in order,
    ``{r}`` the previous one's value. ``lerp``, ``addcmul`` and ``add(alpha=)`` round once
    through a fused multiply-add. A new primitive is one row of :data:`PRIMITIVES`."""

    c: Spelling
    triton: Spelling
    exact: Callable[..., Any]
    #: a division or a square root: long-latency arithmetic (a kernel with none streams
    #: memory, :meth:`~descentlab.optim.c_emitter.CKernel.source`)
    slow: bool = False
    #: as Python over its operands, in the order of ``exact`` (the optimizer card,
    #: :mod:`descentlab.report.optimizer_card`): (template, the result's precedence, each
    #: operand's least precedence without parentheses, alpha's). The precedences: 0 a
    #: comparison, 1 a sum, 2 a product, 3 a negation, 4 an atom or a call; an operand right
    #: of ``-``, ``*`` or ``/`` (or of ``+``: float sums are not associative) needs one more
    #: than its operator's.
    text: tuple[str, int, tuple[int, ...], int] = ("", 0, (), 0)
    #: the eager backend's torch ``_foreach_*`` kernel over a group's tensor lists (None: a
    #: selection, :attr:`select`)
    foreach: Foreach | None = None
    #: the eager backend with a batched coefficient, one tensor at a time: a function of the
    #: operands (and add's alpha, last), each broadcast along the tensor's leading dimension
    #: (None: the primitive takes no batched coefficient)
    batched: Callable[..., Tensor] | None = None
    #: a selection, one tensor at a time on the eager backend (torch has no foreach
    #: comparison or where): ``select(operands, dtype)``, a number standing for a 0-dim
    #: tensor of ``dtype``
    select: Callable[[list[Any], torch.dtype], Any] | None = None


@dataclass(frozen=True)
class Foreach:
    """A primitive as the eager backend spells it: torch's ``_foreach_<name>`` with the
    operands in order, the last one (a coefficient's values) passed as ``coef`` says:
    ``"list"`` a number, or one per tensor (foreach kernels take scalar lists); ``"one"`` a
    number, and tensor by tensor (``torch.<name>``) where the tensors' values differ;
    ``"alpha"`` as ``alpha=``, likewise. ``commutes``: a coefficient on the left is swapped
    to the right (torch has no foreach kernel with a number first)."""

    name: str
    coef: str = "list"
    commutes: bool = False


def _f64(x: Any) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def _along(x: Any, mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A selection's operand on the eager backend: a number as a 0-dim tensor of ``dtype``,
    a batched coefficient's length-K values along the leading dimension, a tensor as it is."""
    if not isinstance(x, Tensor):
        return torch.tensor(x, dtype=dtype)
    if x.ndim == 1 and x.shape != mask.shape:
        return x.to(dtype).view(-1, *([1] * (mask.ndim - 1)))
    return x


def _compare(m: str, xs: list[Any]) -> Any:
    """A comparison on the eager backend: a mask, or a per-tensor flag where both operands
    are per-tensor numbers (coefficients)."""
    if not any(isinstance(x, Tensor) for x in xs):
        return bool(getattr(operator, m)(*xs))
    return getattr(torch, m)(*xs)


def _eager_where(xs: list[Any], dtype: torch.dtype) -> Any:
    if isinstance(xs[0], bool):  # a per-tensor flag
        return xs[1] if xs[0] else xs[2]
    return torch.where(xs[0], *(_along(x, xs[0], dtype) for x in xs[1:]))


def _eager_clamp(xs: list[Any], dtype: torch.dtype) -> Tensor:
    lo, hi = (x if isinstance(x, float) else _along(x, xs[0], dtype) for x in xs[1:])
    return torch.clamp(xs[0], min=lo, max=hi)


_TL_LERP = "tl.where(({2} < 0.5) & ({2} > -0.5), tl.fma({2}, {r}, {0}), tl.fma({2} - 1, {r}, {1}))"

#: every primitive of the form, once: what each target writes for it
PRIMITIVES: dict[str, Primitive] = {
    # the same operator in C, Triton and Python (mul's text: (a / b) * c -- redundant, but
    # read at a glance)
    **{
        m: Primitive(
            f"{{0}} {sym} {{1}}",
            f"{{0}} {sym} {{1}}",
            getattr(operator, m),
            text=(f"{{0}} {sym} {{1}}", *precedence, 0),
            foreach=Foreach(m, commutes=sym != "-"),
            batched=batched,
        )
        for m, sym, precedence, batched in (
            ("add", "+", (1, (1, 2)), torch.add),
            ("sub", "-", (1, (1, 2)), torch.subtract),
            ("mul", "*", (2, (3, 3)), torch.mul),
        )
    },
    "add_alpha": Primitive(
        "dl_fma({1}, {alpha}, {0})",
        "tl.fma({1}, {alpha}, {0})",
        lambda x, y, w: x + w * y,
        text=("{0} + {alpha} * {1}", 1, (1, 3), 2),
        foreach=Foreach("add", coef="alpha"),
        batched=lambda x, y, w: torch.add(x, y * w),
    ),
    # Triton's float32 ``/`` may be approximate: _div is IEEE's (kernel_source)
    "div": Primitive(
        "{0} / {1}",
        "_div({0}, {1})",
        lambda x, y: x / y,
        slow=True,
        text=("{0} / {1}", 2, (2, 3), 0),
        foreach=Foreach("div"),
        batched=torch.div,
    ),
    "neg": Primitive(
        "-{0}", "-{0}", lambda x: -x, text=("-{0}", 3, (3,), 0), foreach=Foreach("neg")
    ),
    # torch's CPU lerp: one fma, exact at both ends
    "lerp": Primitive(
        "dl_lerp({0}, {1}, {2})",
        ("{1} - {0}", _TL_LERP),
        lambda a, b, w: a + w * (b - a),
        text=("{0} + {2} * ({1} - {0})", 1, (2, 1, 2), 0),
        foreach=Foreach("lerp", coef="one"),
        batched=torch.lerp,
    ),
    "addcmul": Primitive(
        "dl_fma({3} * {1}, {2}, {0})",
        "tl.fma({3} * {1}, {2}, {0})",
        lambda x, a, b, v: x + v * a * b,
        text=("{0} + {3} * {1} * {2}", 1, (1, 3, 3, 2), 0),
        foreach=Foreach("addcmul"),
        batched=lambda x, a, b, v: x + a * b * v,
    ),
    "addcdiv": Primitive(
        "{0} + ({3} * {1}) / {2}",
        "{0} + _div({3} * {1}, {2})",
        lambda x, a, b, v: x + v * a / b,
        slow=True,
        text=("{0} + {3} * {1} / {2}", 1, (1, 3, 3, 2), 0),
        foreach=Foreach("addcdiv"),
        batched=lambda x, a, b, v: x + (v * a) / b,
    ),
    "sqrt": Primitive(
        "dl_sqrt({0})",
        "_sqrt({0})",
        lambda x: x**0.5 if isinstance(x, float) else torch.sqrt(x),
        slow=True,
        text=("sqrt({0})", 4, (0,), 0),
        foreach=Foreach("sqrt"),
    ),
    # either operand may be a coefficient: a number in float64, a vector of it in C, a 0-dim
    # value in Triton (no `|` of masks of two shapes: the interpreter refuses it), a scalar
    # foreach operand (swapped to the right: NaN either side gives NaN)
    **{
        m: Primitive(
            f"(dl_isnan({{1}}) | ({{1}} {sym} {{0}})) ? {{1}} : {{0}}",
            f"tl.where({{1}} != {{1}}, {{1}}, tl.where({{1}} {sym} {{0}}, {{1}}, {{0}}))",
            lambda x, y, m=m: getattr(torch, m)(_f64(x), _f64(y)),
            text=(f"{m}({{0}}, {{1}})", 4, (0, 0), 0),
            foreach=Foreach(m, commutes=True),
            batched=getattr(torch, m),
        )
        for m, sym in (("maximum", ">"), ("minimum", "<"))
    },
    # x + 0 turns -0 into +0, as torch's abs
    "abs": Primitive(
        "({0} < 0) ? -{0} : {0} + 0",
        "tl.where({0} < 0, -{0}, {0} + 0)",
        abs,
        text=("abs({0})", 4, (0,), 0),
        foreach=Foreach("abs"),
    ),
    "sign": Primitive(
        "({0} > 0) ? {one} : (({0} < 0) ? -{one} : {one} * 0)",
        "tl.where({0} > 0, {one}, tl.where({0} < 0, -{one}, {one} * 0))",
        torch.sign,
        text=("sign({0})", 4, (0,), 0),
        foreach=Foreach("sign"),
    ),
    "branch": Primitive(
        "({0} != 0) ? {1} : {2}",
        "tl.where({0} != 0, {1}, {2})",
        lambda on, a, b: a if on else b,
        text=("where({0} != 0, {1}, {2})", 4, (1, 0, 0), 0),
    ),
    "where": Primitive(
        "{0} ? {1} : {2}",
        "tl.where({0}, {1}, {2})",
        lambda c, a, b: (
            (a if c else b) if isinstance(c, bool) else torch.where(c, _f64(a), _f64(b))
        ),
        text=("where({0}, {1}, {2})", 4, (0, 0, 0), 0),
        select=_eager_where,
    ),
    "clamp": Primitive(
        ("({0} < {1}) ? {1} : {0}", "({r} > {2}) ? {2} : {r}"),
        ("tl.where({0} < {1}, {1}, {0})", "tl.where({r} > {2}, {2}, {r})"),
        lambda x, lo, hi: torch.clamp(_f64(x), min=lo, max=hi),
        text=("clamp({0}, {1}, {2})", 4, (0, 0, 0), 0),
        select=_eager_clamp,
    ),
    **{
        m: Primitive(
            f"({{0}} {sym} {{1}})",
            f"{{0}} {sym} {{1}}",
            lambda x, y, m=m: getattr(torch, m)(_f64(x), _f64(y)),
            text=(f"{{0}} {sym} {{1}}", 0, (1, 1), 0),
            select=lambda xs, dtype, m=m: _compare(m, xs),
        )
        for m, sym in _MASKS.items()
        if m != "ne0"
    },
    "ne0": Primitive(
        "({0} != 0)",
        "{0} != 0",
        lambda x: x != 0,
        text=("{0} != 0", 0, (1,), 0),
        select=lambda xs, dtype: bool(xs[0] != 0),
    ),
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
        (pr.eager or pr.fn)(lists, [p], [g], hyper)
    state.update({k: v[0] for k, v in lists.items() if not k.startswith("_")})

    class _Ref(Emitter):
        def leaf(self, name: str) -> Any:
            if name in ("g", "p"):
                return {"g": g, "p": p}[name]
            if name in form.lazy and state.get(name) is None:
                state[name] = torch.zeros_like(g)
            return state[name] if name in state else lists[name][0]  # (a per-step array)

        def coef(self, c: Coef) -> float:
            # the state as it is now (a product multiplied), then what the prepares computed
            now = ChainMap({k: [v] for k, v in state.items()}, lists)
            return float(c.call(hyper, t, c.extras(now, 1, None if lr is None else [lr])[0]))

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


#: a form rule's state keys by its class (the form depends on the flags alone)
_KEYS: dict[type, tuple[str, ...]] = {}


#: what computes a form's totals before its step (``make(rule, hyper, n)`` -> a
#: :class:`Prepare`): the collected program's first pass, registered by
#: :mod:`descentlab.optim.program` (above this module: it builds the pass from the program)
_TOTALS: list[Callable[[Any, Mapping[str, Any], int], Prepare]] = []


def register_totals(make: Callable[[Any, Mapping[str, Any], int], Prepare]) -> None:
    """Make ``make(rule, hyper, n)`` the prepare of a form's ``n`` totals."""
    _TOTALS[:] = [make]


class FormRule(Rule):
    """An elementwise rule whose math is its :meth:`form`: the eager ``update`` is derived from
    it (the eager emitter), so are the kernels (:mod:`~descentlab.optim.program`), and so is
    its parameter update in its own operation order where the form has a final form
    (:meth:`Form.final`; the rule then sets ``has_final = True``: ``apply_final`` and the
    kernels' final update come from it). Its state is what the form reads at the rule's
    defaults, made as zeros (a :meth:`Form.product` number as its ``init``), and its
    kernel's structure is the values of its declared flags
    (:attr:`~descentlab.optim.Rule.checks`).

    Subclasses set ``name``, ``checks`` and write :meth:`form`; the state keys are read
    from it (:attr:`state_keys`), never written twice.
    """

    local = True
    needs_step = True

    def steps_shards(self) -> bool:
        """Per element by construction: on shards unless the rule says otherwise -- or its
        form sums over whole tensors (:meth:`Form.total`, whatever the rule says: on a shard,
        or a stacked tensor of several runs, the sum would be another one)."""
        if self.built(self.defaults).totals:
            return False
        return self.elementwise if self.shard_local is None else self.shard_local

    @property
    def state_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        """The state the form keeps at any value of the flags and choices that pick its code:
        the entries its prepares make or keep (``fills``, ``needs``), then those it reads or
        writes, then its running products; a per-step array (a ``_`` key) is not kept."""
        keys = _KEYS.get(type(self))
        if keys is None:
            from .hyperspec import Choice, Flag

            picks = {k: (False, True) if isinstance(s, Flag) else s.options
                     for k, s in self.checks.items() if isinstance(s, Flag | Choice)}  # fmt: skip
            found: dict[str, None] = {}
            for values in itertools.product(*picks.values()):
                form = self.built({**self.defaults, **dict(zip(picks, values, strict=True))})
                kept = [
                    k for pr in form.prepares for w in ("fills", "needs") for k in pr.how.get(w, ())
                ]
                found.update(dict.fromkeys((*kept, *form.states, *form.scalars)))
            keys = _KEYS[type(self)] = tuple(k for k in found if not k.startswith("_"))
        return keys

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
            if form.totals:  # each step's sums first, the rule's own prepares before them
                form.prepares.append(_TOTALS[0](self, hyper, len(form.totals)))
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
        plain, stored = _emitters("eager")
        if self.state_format is not None:
            return stored(grads, params, state, hyper).storing(self)
        return plain(grads, params, state, hyper)

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


#: The emitters that run a form eagerly live in their own module, which reads this one; it
#: registers its plain and its stored-state class here when it is imported
#: (``descentlab.optim`` imports it), so this file holds no backend's code.
_EMITTERS: dict[str, tuple[type, type]] = {}


def register_emitters(backend: str, plain: type, stored: type) -> None:
    """Make ``plain`` (and ``stored``, for low-bit state) the emitter classes that
    :class:`FormRule` runs its form with on ``backend`` (``"eager"``)."""
    _EMITTERS[backend] = (plain, stored)


def _emitters(backend: str) -> tuple[Any, Any]:
    try:
        return _EMITTERS[backend]
    except KeyError:
        raise RuntimeError(
            f"no {backend!r} emitter is registered: import descentlab.optim, whose package "
            "imports the emitter modules"
        ) from None
