"""The collected program of a chain: what a kernel of the chain does per element, built once
from the rules' forms (:mod:`descentlab.optim.form`) whatever backend runs it.

:func:`collect` walks the chain as every backend walks it (:meth:`~descentlab.optim.Chain.
walk`) and records each rule's form in one :class:`ChainProgram`: its statements in order
(:class:`Stmt`: loads of the arrays, primitives, snapshots of state values, state stores, the
low-bit state's encode points, the parameter's update), the state arrays in pointer order and
those it writes, the low-bit formats of stored entries, the coefficients in their table's order
(:class:`~descentlab.optim.plan.Coefficient`: every kind of the form's coefficients in one) and
the Python steps before the kernel (:class:`~descentlab.optim.form.Prepare`).

A kernel backend is an emitter of this program plus a launcher: the fused C kernel
(:class:`~descentlab.optim.c_emitter.CKernel`, its loop body
:func:`~descentlab.optim.c_emitter.render`) and the Triton kernel
(:func:`~descentlab.optim.triton_emitter.render`). What a launch owns
whatever the backend (the coefficient table, prepares, the steady step) is a
:class:`~descentlab.optim.plan.KernelPlan` of the program. An emitter spells each primitive
from :data:`~descentlab.optim.form.PRIMITIVES` and chooses its own names; it adds no state,
coefficient or prepare of its own.

Values are named by tokens: ``g`` and ``p`` (the gradient and the parameter as loaded),
``s:<key>`` (state entry ``key``: as loaded, and after a store its stored value), ``%<n>``
(the value of statement ``n``) and ``c:<j>`` (coefficient ``j``).
"""

from __future__ import annotations

import copy
import dis
import types
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .base import Chain, GroupStep, Rule, Wrapper, decayed
from .form import (
    Coef,
    Emitter,
    Expr,
    Form,
    FormRule,
    Leaf,
    Let,
    Op,
    Prepare,
    _emitters,
    lazy_zeros,
    primitive,
    register_totals,
)
from .form import product_prepare as _product
from .lowbit import sr_salt

__all__ = [
    "ChainProgram",
    "Coefficient",
    "NoProgram",
    "Stmt",
    "coefficient",
    "collect",
    "from_program",
    "fuses",
    "has_kernel_form",
    "reads_argument",
    "register_probe",
    "why_no_form",
    "wrapped_form",
]


CoefFn = Callable[[Mapping[str, Any], float, Any], float]


@dataclass
class Coefficient:
    """A per-tensor (per-row with batched hyperparameters) number of a kernel:
    ``fn(hyper, t, extra)`` in double precision, ``extra`` being ``per_tensor(state, i)`` or
    None; ``uses``: the hyperparameters ``fn`` reads; ``reads``: the state entry of 0-dim
    tensors ``extra`` is (read a whole column at once: :meth:`KernelPlan.coefficient_table`)."""

    name: str
    fn: CoefFn
    per_tensor: Callable[[Mapping[str, list], int], Any] | None
    uses: tuple[str, ...] = ()
    reads: str | None = None
    #: whether the value may depend on the step ``t`` (None: :func:`reads_argument` of fn)
    steps: bool | None = None

    def __post_init__(self) -> None:
        if self.steps is None:
            self.steps = reads_argument(self.fn, 1)


#: names through which a function can reach its frame's locals without loading them
_FRAME_READERS = frozenset({"locals", "vars", "eval", "exec", "_getframe", "currentframe"})


def reads_argument(fn: Callable[..., Any], index: int) -> bool:
    """Whether ``fn``'s value may depend on its positional argument ``index``: True unless
    ``fn`` is a plain Python function whose own code never loads, stores or deletes that
    argument, shares it with a nested function or names a way to its frame's locals (a
    callable object, a ``functools.partial``, a builtin: True)."""
    code = fn.__code__ if type(fn) is types.FunctionType else None
    if code is None or index >= code.co_argcount:
        return True
    name = code.co_varnames[index]
    if name in code.co_cellvars or not _FRAME_READERS.isdisjoint(code.co_names):
        return True
    return any(
        name in (i.argval if isinstance(i.argval, tuple) else (i.argval,))
        for i in dis.get_instructions(code)
        if "FAST" in i.opname or "DEREF" in i.opname or "CLOSURE" in i.opname
    )


def coefficient(
    name: str, c: Any, lr_fn: Callable | None = None, lr_uses: Sequence[str] = ()
) -> Coefficient:
    """The kernel's :class:`Coefficient` of a form's :class:`~descentlab.optim.form.Coef`,
    whichever of its four kinds: ``fn(hyper, t)``; ``fn(hyper, t, x)`` reading a per-tensor
    number of the state (``reads``) or of a prepare (``per_tensor``); or a final form's
    ``fn(hyper, t, lr)`` of the step's learning rate ``lr_fn(hyper, t)`` (reading
    ``lr_uses``)."""
    fn, uses = c.fn, c.uses
    if c.per_tensor is not None:
        return Coefficient(name, fn, c.per_tensor, uses)
    if c.lr:
        assert lr_fn is not None, f"{c.name!r} reads the learning rate: final forms only"
        return Coefficient(name, lambda h, t, e: fn(h, t, lr_fn(h, t)), None, (*uses, *lr_uses))
    if c.reads is not None:
        return Coefficient(name, lambda h, t, e: fn(h, t, e), number_of(c.reads), uses, c.reads)
    return Coefficient(name, lambda h, t, e: fn(h, t), None, uses, steps=reads_argument(fn, 1))


def number_of(key: str) -> Callable[[Mapping[str, list], int], float]:
    """Tensor ``i``'s number of state ``key``, alone (:meth:`KernelPlan.coefficient_table`
    reads a whole column at once: :class:`~descentlab.optim.base.Numbers`)."""
    return lambda state, i: float(state[key][i])


class NoProgram(ValueError):
    """The chain has no per-element program at this structure (the message says why)."""


@dataclass(frozen=True)
class Stmt:
    """One statement of a :class:`ChainProgram`.

    ``kind``:
      - ``"load"``: the first use of ``out`` (``g``, ``p`` or ``s:<key>``);
      - ``"op"``: ``out = op(*args, alpha)``, a primitive of
        :data:`~descentlab.optim.form.PRIMITIVES`; ``inline``: a value used once, where a
        backend may write it into its reader (the decayed parameter, the plain update);
      - ``"let"``: ``out`` names the state value ``args[0]`` as it is now (a later store of
        that entry does not change it);
      - ``"store"``: ``s:<out>`` becomes ``args[0]``;
      - ``"commit"``: the rule that stores ``out`` in a low-bit format has made its last
        change of it (a backend may encode it here).
    """

    kind: str
    out: str
    op: str = ""
    args: tuple[str, ...] = ()
    alpha: str | None = None
    inline: bool = False


@dataclass(kw_only=True)
class ChainProgram:
    """A chain's per-element program at one structure (see the module's docstring)."""

    stmts: list[Stmt] = field(default_factory=list)
    #: the coefficients, in the kernel's table order
    coefs: list[Coefficient] = field(default_factory=list)
    #: the Python steps before the kernel, in order (``how``: ``fills``, ``needs``, ``steady``)
    prepares: list[Prepare] = field(default_factory=list)
    #: the state entries the kernel reads, in pointer order (after ``p`` and ``g``); a low-bit
    #: entry's companions (its block scales) follow it
    arrays: list[str] = field(default_factory=list)
    #: the state entries it writes, in the order of their first use
    written: list[str] = field(default_factory=list)
    #: entries stored in a low-bit format: key -> (the format, whether it may be negative,
    #: the coefficients of its stochastic rounding's salt -- its high and low 16 bits -- or
    #: None)
    formats: dict[str, tuple[Any, bool, tuple[str, str] | None]] = field(default_factory=dict)
    #: the token of the new parameter
    update: str = "p"
    #: the tokens a first pass of per-tensor totals sums (empty: its update)
    sums: list[str] = field(default_factory=list)
    #: the body divides or takes a root (:attr:`~descentlab.optim.form.Primitive.slow`)
    slow: bool = False
    #: the first rule, where its prepares read the raw gradients' values (a group's norm)
    reads_g: str | None = None
    #: the tokens a ``load`` statement has loaded
    loaded: set[str] = field(default_factory=set, repr=False)

    @property
    def state_arrays(self) -> list[str]:
        return self.arrays

    @property
    def state_format(self) -> Any:
        """The low-bit format of the stored state (one per chain), or None."""
        return next(iter(self.formats.values()))[0] if self.formats else None

    @property
    def fills(self) -> list[str]:
        """The state entries the prepares make where missing."""
        return [k for pr in self.prepares for k in pr.how.get("fills", ())]

    @property
    def rows_keys(self) -> set[str]:
        """The hyperparameters the coefficients read (a batched one makes them per row)."""
        return {u for c in self.coefs for u in c.uses}

    def used(self) -> set[str]:
        """The tokens the update, the sums and the statements read (a value loaded and never
        read -- LAMB's kernel's gradient -- is not among them: the compiler drops its load)."""
        used = {self.update, *self.sums}
        for st in self.stmts:
            used.update(st.args)
            if st.alpha is not None:
                used.add(st.alpha)
        return used

    def stored_arrays(self) -> dict[str, tuple[str, int]]:
        """Every array a low-bit format stores: name -> (its key, its index in the format's
        entries)."""
        return {
            name: (key, idx)
            for key, (fmt, _, _) in self.formats.items()
            for idx, name in enumerate(fmt.keys(key))
        }

    def coef_index(self, name: str) -> int:
        return next(j for j, c in enumerate(self.coefs) if c.name == name)

    # -- building ---------------------------------------------------------------------
    def declare(self, c: Coefficient) -> str:
        """Coefficient ``c``'s token (a name declared before is refused)."""
        if any(d.name == c.name for d in self.coefs):
            raise ValueError(f"kernel coefficient {c.name!r} declared twice")
        self.coefs.append(c)
        return f"c:{len(self.coefs) - 1}"

    def op(self, op: str, args: Sequence[str], alpha: str | None = None, **kw: Any) -> str:
        prim = primitive(op, alpha)
        self.slow = self.slow or (prim is not None and prim.slow)
        out = f"%{len(self.stmts)}"
        self.stmts.append(Stmt("op", out, op, tuple(args), alpha, **kw))
        return out

    def array(self, key: str, *, write: bool = False) -> str:
        """State entry ``key``'s token (an array of the kernel; ``write``: it is stored)."""
        if key not in self.arrays:
            self.arrays.append(key)
        if write and key not in self.written:
            self.written.append(key)
        return f"s:{key}"


def from_program(name: str, doc: str | None = None) -> property:
    """A kernel's read-only view of its chain program's ``name`` (``self.program.<name>``): the
    emitters hold a :class:`ChainProgram` and answer for its arrays, coefficients and
    preparations."""
    return property(lambda self: getattr(self.program, name), doc=doc)


def has_kernel_form(rule: Rule) -> bool:
    """Whether ``rule`` can stand in a fused kernel's program: written in the form, a wrapper
    whose parts are (:func:`fuses`), or passing its input through there
    (:attr:`~descentlab.optim.Rule.kernel_passes`)."""
    return isinstance(rule, FormRule) or fuses(rule) or rule.kernel_passes


def why_no_form(rule: Rule) -> str:
    """Why ``rule`` has no per-element form a kernel can take, in words its author can act on."""
    if isinstance(rule, Wrapper):
        if type(rule).form is None:
            return "a Wrapper written as update() only; write its math per element as form(f, u)"
        if not isinstance(rule.inner, FormRule):
            return f"its inner rule {rule.inner.name} is not written in the form"
        return f"its inner rule {rule.inner.name} keeps its state in a low-bit format"
    return (
        "a Rule written as update(), torch code the kernels cannot read; write a per-element "
        "rule as a FormRule, a sum over each tensor as f.total() in its form"
    )


def form_of(rule: Rule, hyper: Mapping[str, Any]) -> Form | None:
    """``rule``'s form at ``hyper``'s structure, or None where it has none."""
    if isinstance(rule, FormRule):
        return rule.built(hyper)
    if fuses(rule):
        return wrapped_form(rule, hyper)  # type: ignore[arg-type]
    return None


def collect(
    rule: Chain,
    hyper: Mapping[str, Any],
    fold_lr: bool,
    *,
    stored: bool = True,
    leave_out_passing: bool = False,
) -> ChainProgram:
    """The per-element program of ``rule``'s chain at ``hyper``'s structure (cached per chain,
    structure and options). ``stored``: low-bit state in its format (False: as float32 -- a
    blockwise format's small tensors); ``leave_out_passing``: a rule that passes its input
    through without a form (:attr:`~descentlab.optim.Rule.kernel_passes`: SAM's ascent link)
    is left out (the C kernel), else refused. Raises :class:`NoProgram` naming the first rule
    without a form, or a rule after the first whose prepares read its input's values."""
    leave_out = leave_out_passing and any(r.kernel_passes for r in rule.rules)
    key = (rule.fuse_signature(hyper), fold_lr, stored, leave_out)
    per_chain = _CACHE.setdefault(rule, {})
    got = per_chain.get(key)
    if got is None:
        got = per_chain[key] = _collect(rule, hyper, fold_lr, stored, leave_out)
    return got


#: the programs of each chain (weak: a chain's programs go with it)
_CACHE: weakref.WeakKeyDictionary[Chain, dict] = weakref.WeakKeyDictionary()


def _collect(
    rule: Chain, hyper: Mapping[str, Any], fold_lr: bool, stored: bool, leave_out: bool
) -> ChainProgram:
    walk = rule.walk(hyper, fold_lr)
    prog = ChainProgram()
    u = _load(prog, "g")
    rec: _Recorder | None = None
    form: Form | None = None
    k = 0
    for r in walk.body:
        form = form_of(r, hyper)
        if form is None:
            if leave_out and has_kernel_form(r):
                continue
            raise NoProgram(f"{r.name} has no form: {why_no_form(r)}")
        reads_g = any(pr.reads_g for pr in form.prepares)
        if reads_g or form.totals:
            if u != "g":  # the kernel's prepares see the raw gradients, not this rule's input
                what = "a sum over each tensor (f.total)" if form.totals else "a norm"
                raise NoProgram(
                    f"{r.name} reads its whole input before the kernel ({what}, computed "
                    "from the raw gradients: it fuses first in its chain, not after "
                    f"{walk.body[k - 1].name})"
                )
            if reads_g:
                prog.reads_g = r.name
        split = _split(r, hyper, form) if form.totals else None
        if split is not None:  # the state and the sums in a first pass, then this kernel
            form = split
        k += 1
        fmt = stored and getattr(r, "state_format", None)
        rec = _Recorder(prog, u, f"{r.name}{k}", r if fmt else None)  # type: ignore[arg-type]
        u = rec.run(form)
        if split is None and form.totals and not isinstance(r, FormRule):  # (a form rule's
            # form holds its own)
            # after the rule's own prepares (its state made, its products moved)
            prog.prepares.append(totals_prepare(r, hyper, len(form.totals)))
    p = _load(prog, "p")
    if walk.end == "final":  # the rule's own update, after p.mul_(1 - lr * wd)
        assert rec is not None and form is not None
        if walk.decay is not None:
            c = prog.declare(Coefficient("final_decay", decayed, None, ("lr", "weight_decay")))
            p = prog.op("mul", (p, c), inline=True)
        lr: Any = walk.lr
        rec.p, rec.lr_fn, rec.lr_uses = p, lr.step_lr, tuple(lr.lr_uses)
        prog.update = rec.final(form)
    elif walk.end == "fold":
        c = prog.declare(Coefficient("neglr", lambda h, t, e: -float(h["lr"]), None, ("lr",)))
        prog.update = prog.op("add", (p, u), c, inline=True)
    else:
        prog.update = prog.op("add", (p, u), inline=True)
    return prog


def _load(prog: ChainProgram, token: str) -> str:
    """``token``, loaded where it is first used."""
    if token not in prog.loaded:
        prog.loaded.add(token)
        prog.stmts.append(Stmt("load", token))
    return token


class _Recorder(Emitter):
    """One rule's form recorded into a :class:`ChainProgram` (``u``: the token of its input;
    ``prefix`` scopes its coefficients' names; ``stored``: the rule, where its state is kept in
    its low-bit format)."""

    def __init__(self, prog: ChainProgram, u: str, prefix: str, stored: FormRule | None) -> None:
        self.prog, self.u, self.prefix, self.stored = prog, u, prefix, stored
        self.p = "p"
        self.lr_fn: Callable | None = None
        self.lr_uses: tuple[str, ...] = ()
        self.keys: list[str] = []

    def run(self, form: Form) -> Any:
        self.written, self.lazy = set(form.written), set(form.lazy)
        self.prog.prepares.extend(form.prepares)
        rule = self.stored
        if rule is not None:
            fmt = rule.state_format
            if self.prog.formats and self.prog.state_format != fmt:
                raise NoProgram("two low-bit state formats in one chain")
            for index, key in enumerate(rule.stored()):
                if key not in form.states:
                    continue
                self.keys.append(key)
                salt = None
                if fmt.salted:  # the uint32 in two halves: exact in every compute type
                    salt = (
                        self._salt(f"salt{index}_hi", lambda s: s >> 16, index),
                        self._salt(f"salt{index}_lo", lambda s: s & 0xFFFF, index),
                    )
                self.prog.array(key)
                for extra in fmt.keys(key)[1:]:
                    self.prog.array(extra)
                self.prog.formats[key] = (fmt, key not in rule.nonnegative, salt)
        return super().run(form)

    def _salt(self, name: str, part: Callable[[int], int], index: int) -> str:
        c = Coefficient(
            f"{self.prefix}_{name}", lambda h, t, e: float(part(sr_salt(index, t))), None
        )
        self.prog.declare(c)
        return c.name

    def statements(self, form: Form) -> None:
        super().statements(form)
        for key in self.keys:
            if key in form.written:
                self.prog.stmts.append(Stmt("commit", key))

    def _lazy(self, key: str) -> None:
        if key in self.lazy:  # made as zeros before the kernel runs, where missing
            self.lazy.discard(key)
            if key not in self.prog.formats:  # (a stored entry is made at init)
                self.prog.prepares.append(lazy_zeros(key))

    def leaf(self, name: str) -> str:
        if name == "g":
            return self.u
        if name == "p":
            return self.p if self.p != "p" else _load(self.prog, "p")
        self._lazy(name)
        return _load(self.prog, self.prog.array(name, write=name in self.written))

    def coef(self, c: Coef) -> str:
        return self.prog.declare(
            coefficient(f"{self.prefix}_{c.name}", c, self.lr_fn, self.lr_uses)
        )

    def apply(self, op: str, a: list[str], alpha: str | None) -> str:
        if primitive(op, alpha) is None:
            raise NoProgram(f"no form for primitive {op!r}")
        return self.prog.op(op, a, alpha)

    def materialize(self, value: str) -> str:
        # a state value named before its assignment keeps that value (the entry may change)
        if not value.startswith("s:"):
            return value
        out = f"%{len(self.prog.stmts)}"
        self.prog.stmts.append(Stmt("let", out, args=(value,)))
        return out

    def assign(self, key: str, value: str, expr: Expr) -> str:
        self._lazy(key)
        token = self.prog.array(key, write=True)
        if key not in self.prog.formats:  # (a stored entry is decoded where first read)
            _load(self.prog, token)
        self.prog.stmts.append(Stmt("store", key, args=(value,)))
        return token

    def scale(self, key: str, factor: Coef) -> None:
        self.prog.prepares.append(Prepare(_product(key, factor), {"needs": (key,)}))


# --------------------------------------------------------------------------------------
# Wrappers in the kernels: a Wrapper whose inner rule is written in the form and that writes
# its own per-element math (Wrapper.form) runs in the chain's kernel. A per-tensor sum of
# its form (Form.total) is a prepare: a second program -- the form with its stores left out,
# writing the summed expression into scratch -- run by the backend registered for the
# device (the C kernel: descentlab.optim.fused), else by the eager emitter; then torch's sum.
# --------------------------------------------------------------------------------------


def fuses(rule: Rule) -> bool:
    """Whether ``rule`` is a :class:`~descentlab.optim.Wrapper` that runs in the kernels: it
    writes its :attr:`~descentlab.optim.Wrapper.form`, its inner rule is written in the form
    with its state in the parameters' dtype."""
    return (
        isinstance(rule, Wrapper)
        and type(rule).form is not None
        and isinstance(rule.inner, FormRule)
        and rule.inner.state_format is None
    )


def wrapped_form(rule: Wrapper, hyper: Mapping[str, Any]) -> Form:
    """The form of a wrapper that :func:`fuses`: its inner rule's form, whose output ``u``
    the wrapper's form turns into its own (cached per structure, as a form rule's)."""
    key = rule.fuse_signature(hyper)
    cache = rule.__dict__.setdefault("_cache_forms", {})
    form = cache.get(key)
    if form is None:
        form = cache[key] = _wrapped(rule, hyper, Form())
    return form


def _wrapped(rule: Wrapper, hyper: Mapping[str, Any], f: Form) -> Form:
    rule.inner.form(f, hyper)  # type: ignore[attr-defined]
    u, f.output, f.final_expr = f.output, None, None
    rule.form(f, u)  # type: ignore[misc]  (fuses(): written)
    if f.output is None:
        raise TypeError(f"{rule.name}: its form must set its output with f.out()")
    return f


#: the per-step array a first pass reads the parameter from (its own ``p`` is the scratch it
#: writes the summed expression into)
PARAM = "_param"


class _Probe(Form):
    """A wrapper's form with its stores as lets and its output total ``want``'s expression:
    the first pass of a :meth:`~descentlab.optim.form.Form.total` (it changes no state); the
    parameter is read from the per-step array :data:`PARAM`."""

    def __init__(self, want: int) -> None:
        super().__init__()
        self.want, self.seen, self.picked = want, 0, None
        self.values: dict[str, Expr] = {}
        self.p = super().state(PARAM)

    def state(self, key: str, *, lazy: bool = False) -> Expr:
        got = self.values.get(key)
        return got if got is not None else super().state(key, lazy=lazy)

    def assign(self, key: str, expr: Expr) -> Expr:
        super().state(key)
        value = self.values[key] = self.let(expr)
        return value

    def product(self, key: str, fn: Any, uses: Sequence[str] = (), init: float = 1.0) -> None:
        self.scalars[key] = init  # (the step's own statement multiplies it: not a first pass)

    def total(self, expr: Expr | Sequence[Expr], fn: Any, name: str = "") -> Coef:
        for e in tuple(expr) if isinstance(expr, Sequence) else (expr,):
            if self.seen == self.want:
                self.picked = e
            self.seen += 1
        return self.coef(f"unused{self.seen}", lambda h, t: 0.0)


def _probe(rule: Rule, hyper: Mapping[str, Any], index: int) -> tuple[Form, ChainProgram]:
    """Total ``index``'s first pass as a form and as a kernel's program (its update: the
    summed expression, written where the parameter would be; the parameter read from
    :data:`PARAM`)."""
    if isinstance(rule, FormRule):
        form: Form = _Probe(index)
        rule.form(form, hyper)
    else:
        form = _wrapped(rule, hyper, _Probe(index))  # type: ignore[arg-type]
    form.output, form.final_expr = form.picked, None  # type: ignore[attr-defined]
    form.prepares = []  # (the step's own prepares have run)
    prog = ChainProgram()
    rec = _Recorder(prog, _load(prog, "g"), f"{rule.name}_total{index}", None)
    prog.update = rec.run(form)
    prog.prepares = []  # (the step's own prepares have run)
    return form, _needed(prog)


def _needed(prog: ChainProgram) -> ChainProgram:
    """``prog`` without the statements and arrays that neither its update, its sums nor its
    stores read (a first pass records the whole form: what follows the summed values is not
    loaded, nor prefetched)."""
    needed = {prog.update, *prog.sums}
    kept: list[Stmt] = []
    for st in reversed(prog.stmts):
        if st.out in needed or st.kind in ("store", "commit"):
            kept.append(st)
            needed.update(st.args)
            if st.kind == "store":  # (its array)
                needed.add(f"s:{st.out}")
            if st.alpha is not None:
                needed.add(st.alpha)
    prog.stmts = kept[::-1]
    prog.arrays = [k for k in prog.arrays if f"s:{k}" in needed]
    prog.loaded = {t for t in prog.loaded if t in needed}
    prog.slow = any((p := primitive(st.op, st.alpha)) is not None and p.slow for st in prog.stmts)
    return prog


# A split step: where no state entry takes a total (LAMB: Adam's moments, then the trust
# ratio of the update they make), the first pass makes the step's state and sums the totals
# at once, and the chain's kernel reads the state it stored: each array is read and written
# once, and read once more (where the totals take a first pass of their own, every array its
# sums read is read twice more). A state that takes a total (MARS's moments take the clipped
# gradient) keeps the first pass of sums alone.


class _Stepping(Form):
    """A rule's form recorded for a first pass that steps its state: its totals' expressions
    collected (their coefficients stand for nothing this pass keeps); the parameter read from
    :data:`PARAM`."""

    def __init__(self) -> None:
        super().__init__()
        self.picked: list[Expr] = []
        self.p = super().state(PARAM)

    def total(self, expr: Expr | Sequence[Expr], fn: Any, name: str = "") -> Coef:
        self.picked.extend(tuple(expr) if isinstance(expr, Sequence) else (expr,))
        return self.coef(f"unused{len(self.picked)}", lambda h, t: 0.0)


def _build(rule: Rule, hyper: Mapping[str, Any], f: Form) -> Form:
    if isinstance(rule, FormRule):
        rule.form(f, hyper)
        return f
    return _wrapped(rule, hyper, f)  # type: ignore[arg-type]


def _reaches(expr: Expr, stop: Callable[[Expr], bool], seen: dict[int, bool]) -> bool:
    """Whether ``stop`` holds of ``expr`` or of a value it reads (through lets)."""
    got = seen.get(id(expr))
    if got is None:
        seen[id(expr)] = False  # (a value is read once per walk)
        kids: list[Expr] = []
        if isinstance(expr, Op):
            kids = [*expr.args, *([expr.alpha] if expr.alpha is not None else [])]
        elif isinstance(expr, Let):
            kids = [expr.expr]
        got = seen[id(expr)] = stop(expr) or any(_reaches(k, stop, seen) for k in kids)
    return got


def _split(rule: Rule, hyper: Mapping[str, Any], form: Form) -> Form | None:
    """The form of the chain's kernel where ``rule``'s first pass also steps its state: its
    output alone, reading the stored state (None: a state entry takes a total, the output
    reads a state value from before its update, or the form keeps numbers, makes lazy state,
    has a final form or a low-bit state)."""
    if (
        form.final_expr is not None
        or form.lazy
        or getattr(rule, "state_format", None) is not None
        or any(kind not in ("let", "assign") for kind, _, _ in form.statements)
    ):
        return None
    totals = {id(c) for c in form.total_coefs}
    seen: dict[int, bool] = {}
    takes = [e for kind, _, e in form.statements if kind == "assign"]
    if any(_reaches(e, lambda x: id(x) in totals, seen) for e in takes):
        return None
    latest = form._versions

    def old(x: Expr) -> bool:
        return (
            isinstance(x, Leaf)
            and x.name.startswith("state:")
            and x.version != latest.get(x.name[6:], 0)
        )

    assert form.output is not None
    if _reaches(form.output, old, {}):
        return None
    read: dict[int, bool] = {}  # every value the output reads, through lets
    _reaches(form.output, lambda x: False, read)
    out = copy.copy(form)
    out.statements = [s for s in form.statements if s[0] == "let" and id(s[1]) in read]
    out.written = []
    out.prepares = [pr for pr in form.prepares if not pr.how.get("totals")]
    out.prepares.append(_stepping_prepare(rule, hyper))
    return out


def _stepping_prepare(rule: Rule, hyper: Mapping[str, Any]) -> Prepare:
    """The first pass of a split step: the rule's state stored and its totals summed, by a
    kernel where the device has one (:func:`register_probe`), else by the eager emitter. (The
    kernel then computes the output again from the stored state: storing it instead, a
    per-step array, costs the steady step, and at 10M parameters saves nothing measurable.)"""
    f = _build(rule, hyper, _Stepping())
    picked = f.picked  # type: ignore[attr-defined]
    f.output, f.final_expr, f.prepares = picked[0], None, []
    prog = ChainProgram()
    rec = _Recorder(prog, _load(prog, "g"), f"{rule.name}_step", None)
    prog.update = rec.run(f)
    prog.sums = [prog.update, *(rec.value(e) for e in picked[1:])]
    prog.prepares = []
    prog = _needed(prog)
    plans: dict[Any, Any] = {}

    def step(state: Any, params: list, grads: list, hyper: Any) -> None:
        state[PARAM] = params
        try:
            where = (params[0].device.type, params[0].dtype)
            if where not in plans:
                make = _PROBE_PLANS.get(where[0])
                plans[where] = None if make is None else make(prog, where[1])
            plan = plans[where]
            if plan is not None:
                sums = plan.sums(GroupStep(params, grads, state, hyper, state["_step_values"]))
            else:  # the eager emitter: the statements (the state stored), then each sum
                ev = _emitters("eager")[0](list(grads), params, state, hyper)
                ev.statements(f)
                cols = [
                    torch.stack([v.sum(dtype=torch.float64) for v in ev.value(e)]).tolist()
                    for e in picked
                ]
                sums = [list(x) for x in zip(*cols, strict=True)]
            for i in range(len(picked)):
                state[f"_total{i}"] = [(p.numel(), s[i]) for p, s in zip(params, sums, strict=True)]
        finally:
            del state[PARAM]

    needs = tuple(k for k in prog.arrays if k != PARAM)
    return Prepare(step, {"needs": needs, "totals": True, "passes": (prog,)})


#: the kernel plan of a probe program by device type: ``make(program, dtype)`` -> a plan whose
#: ``sums(params, grads, state, hyper, steps)`` is the program's update summed over each
#: tensor (None: no kernel here). Registered by a backend when imported, so this module holds
#: no backend's code (the C kernel's: :mod:`descentlab.optim.fused`).
_PROBE_PLANS: dict[str, Callable[[ChainProgram, Any], Any]] = {}


def register_probe(device_type: str, make: Callable[[ChainProgram, Any], Any]) -> None:
    """Make ``make(program, dtype)`` the probe plan of tensors on ``device_type``."""
    _PROBE_PLANS[device_type] = make


def totals_prepare(rule: Rule, hyper: Mapping[str, Any], n: int) -> Prepare:
    """The prepare of the ``n`` totals of a form rule's form or a wrapper's: each in state
    ``_total<i>`` as ``(numel, sum)`` per tensor, read by the coefficient
    :meth:`~descentlab.optim.form.Form.total` declared. The kernels' first pass is a kernel
    where the device has one (:func:`register_probe`); the eager backend's is its emitter's."""
    probes = [_probe(rule, hyper, i) for i in range(n)]
    plans: dict[Any, Any] = {}

    def step(kernel: bool) -> Callable[..., None]:
        def totals(state: Any, params: list, grads: list, hyper: Any) -> None:
            state[PARAM] = params
            try:
                for i, (form, prog) in enumerate(probes):
                    sums = _sums(i, form, prog, kernel, state, params, grads, hyper)
                    state[f"_total{i}"] = sums
            finally:
                del state[PARAM]

        return totals

    def _sums(i: int, form: Form, prog: ChainProgram, kernel: bool, state: Any, params: list,
              grads: list, hyper: Any) -> list[tuple[int, float]]:  # fmt: skip
        where = (i, params[0].device.type, params[0].dtype)
        if kernel and where not in plans:
            make = _PROBE_PLANS.get(where[1])
            plans[where] = None if make is None else make(prog, where[2])
        plan = plans[where] if kernel else None
        if plan is not None:  # the kernel's sums (the parameters give the shapes)
            sums = [
                x[0]
                for x in plan.sums(GroupStep(params, grads, state, hyper, state["_step_values"]))
            ]
        else:
            # (a plain list: an Owned input is not the first pass's to overwrite)
            values = _emitters("eager")[0](list(grads), params, state, hyper).run(form)
            sums = torch.stack([v.sum(dtype=torch.float64) for v in values]).tolist()
        return [(p.numel(), s) for p, s in zip(params, sums, strict=True)]

    passes = tuple(prog for _, prog in probes)  # (what they move: benchmarks/step.py)
    return Prepare(step(True), {"needs": tuple(dict.fromkeys(
        k for _, prog in probes for k in (*prog.arrays, *(c.reads for c in prog.coefs if c.reads))
        if k != PARAM
    )), "totals": True, "passes": passes}, eager=step(False))  # fmt: skip


register_totals(totals_prepare)
