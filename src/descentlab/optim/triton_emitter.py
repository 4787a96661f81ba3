r"""A GPU kernel derived from the one form (:mod:`descentlab.optim.form`): Triton source text.

:class:`TritonEmitter` is the form's fourth emitter (beside the eager foreach, the fused C and
the float64 reference): it writes one primitive per line of a ``@triton.jit`` kernel, in the
form's operation order, each rounding as the C emitter's (``lerp``, ``addcmul`` and
``add(alpha=)`` through one fused multiply-add; the square root correctly rounded, as the
fused C's on every CPU whose MKL root it does not reproduce). :func:`program` chains the forms
of a whole optimizer's rules into one per-element program, and :func:`kernel_source` wraps it
in a **multi-tensor** kernel: one launch steps every tensor of a param group, each program
instance one ``(tensor, chunk)`` row of a block table, its tensor's addresses read from a
table of pointers and its coefficients from a table of per-tensor numbers (computed once per
step per group, on the host, in double precision; rounded to the compute type).

Storage and compute: float32 and float64 parameters compute in their own type; float16 and
bfloat16 are loaded, widened exactly to float32, computed there and rounded once per stored
value (parameters and state keep their dtype, as in torch's fused kernels and the fused C).

Low-bit state (:mod:`~descentlab.optim.lowbit`, a rule's ``state_format``) is decoded where
the form first reads an entry and encoded after the rule's statements, as the eager backend's
:class:`~descentlab.optim.eager_emitter.StoredEagerEmitter` does, bit for bit
(:class:`StoredTritonEmitter`): 8-bit codes through the map's table and the block's scale,
each block's new maximum over its values in the program (a program holds whole blocks), its
codes counted against the thresholds by an 8-step search; bfloat16 with the same stochastic
rounding (the same hash of the element's index and the step's salt). A blockwise format's
small tensors keep float32 state: they take the program without storage
(``program(stored=False)``).

A final ``scale_by_lr`` is folded into the parameter update, ``p = fma(u, -lr, p)``, as the eager
backend's ``_foreach_add_(p, u, alpha=-lr)``. A form's ``prepare`` steps (state made on a first
step, per-tensor values the coefficients read) are collected in the :class:`Program` and run
on the host before the launch (:class:`~descentlab.optim.gpu.TritonPlan`).

This module only writes text: it imports neither triton nor a device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import lowbit
from .base import Chain, Rule, decayed
from .form import (
    Coef,
    Emitter,
    Expr,
    Form,
    FormRule,
    Prepare,
    lazy_zeros,
    primitive,
    product_prepare,
    spell,
)
from .plan import Collected, coefficient

__all__ = [
    "Program",
    "StoredTritonEmitter",
    "TritonEmitter",
    "Unsupported",
    "compute_dtype",
    "emittable",
    "kernel_source",
    "program",
    "split",
]

#: storage dtype -> Triton type name
_TL = {
    torch.float32: "tl.float32",
    torch.float64: "tl.float64",
    torch.float16: "tl.float16",
    torch.bfloat16: "tl.bfloat16",
}
#: the element types of every array a kernel may address (low-bit state's codes: uint8)
_POINTER = {**_TL, torch.uint8: "tl.uint8"}


class Unsupported(ValueError):
    """The chain (at these hyperparameters) has no Triton form; the message says which rule."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The type a kernel computes in for parameters of ``dtype`` (float32 for 16-bit)."""
    if dtype not in _TL:
        raise Unsupported(f"no Triton kernel for {dtype} parameters")
    return torch.float64 if dtype is torch.float64 else torch.float32


@dataclass
class Program(Collected):
    """A chain's per-element program: kernel body lines, the arrays it touches (``p``, ``g``,
    then state keys, in pointer-table order), the state keys it writes; its coefficients and
    prepares are a :class:`~descentlab.optim.plan.Collected` program's, as the C emitter's."""

    lines: list[str] = field(default_factory=list)
    arrays: list[str] = field(default_factory=lambda: ["p", "g"])
    written: list[str] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    #: arrays of a type of their own (low-bit state, its tables), else the parameters'
    dtypes: dict[str, torch.dtype] = field(default_factory=dict)
    #: elements per program instance at least (a multiple of a blockwise format's block)
    block: int = 1
    #: the low-bit format of the chain's stored state (one per chain), or None
    state_format: Any = None

    def let(self, expr: str) -> str:
        name = f"v{self.counter}"
        self.counter += 1
        self.lines.append(f"{name} = {expr}")
        return name

    def array(self, key: str) -> str:
        """The variable holding ``key``'s current value (loaded at its first use)."""
        if key not in self.current:
            if key not in self.arrays:
                self.arrays.append(key)
            self.current[key] = self.let(f"_ld({self.arrays.index(key)})")
        return self.current[key]

    def index(self, key: str, dtype: torch.dtype) -> int:
        """The pointer-table column of array ``key`` of type ``dtype``, which the program
        loads and stores itself (low-bit state, a table)."""
        if key not in self.arrays:
            self.arrays.append(key)
            self.dtypes[key] = dtype
        return self.arrays.index(key)

    def coef(self, name: str, c: Coef, lr_fn: Any = None) -> str:
        """The variable of coefficient ``c`` named ``name`` (``lr_fn``: the step's learning
        rate, for a final form's :meth:`~descentlab.optim.form.Form.lr_coef`)."""
        return f"c{self.declare(coefficient(name, c, lr_fn), again=True)}"

    @property
    def state_arrays(self) -> list[str]:
        return [a.removeprefix("state:") for a in self.arrays if a.startswith("state:")]


class TritonEmitter(Emitter):
    """One rule's form as Triton statements appended to a :class:`Program` (``u``: the
    variable holding the rule's input update; ``prefix`` names its coefficients)."""

    def __init__(self, prog: Program, u: str, prefix: str) -> None:
        self.prog, self.u, self.prefix = prog, u, prefix
        self.p: str | None = None  # a final form's parameter (after a decoupled decay)
        self.lr_fn: Any = None

    def leaf(self, name: str) -> str:
        if name == "g":
            return self.u
        if name == "p":
            return self.p or self.prog.array("p")
        if name in self.lazy:  # made as zeros before the kernel runs, where missing
            self.lazy.discard(name)
            self.prog.prepares.append(lazy_zeros(name))
        return self.prog.array(f"state:{name}")

    def statements(self, form: Form) -> None:
        self.lazy = set(form.lazy)
        super().statements(form)

    def coef(self, c: Coef) -> str:
        # a final form's lr: the step's learning rate from the chain's scale_by_lr
        return self.prog.coef(f"{self.prefix}.{c.name}", c, self.lr_fn)

    def scale(self, key: str, factor: Coef) -> None:
        self.prog.prepares.append(Prepare(product_prepare(key, factor), {"needs": (key,)}))

    def run(self, form: Form) -> str:
        if any(pr.reads_g for pr in form.prepares):  # a group's norm: torch ops before
            raise Unsupported(f"{self.prefix} reads its whole input before the kernel")
        self.prog.prepares.extend(form.prepares)
        return super().run(form)

    def apply(self, op: str, a: list[str], alpha: str | None) -> str:
        prim = primitive(op, alpha)  # the root is correctly rounded: kernel_source
        if prim is None:
            raise Unsupported(f"no Triton form for primitive {op!r}")
        return spell(prim.triton, a, alpha, self.prog.let, "_one")

    def assign(self, key: str, value: str, expr: Expr) -> str:
        k = f"state:{key}"
        self.prog.array(k)
        if k not in self.prog.written:
            self.prog.written.append(k)
        self.prog.current[k] = value
        return value


class StoredTritonEmitter(TritonEmitter):
    """:class:`TritonEmitter` of a rule whose elementwise state is stored in its
    ``state_format`` (float32 parameters): the eager backend's decode and encode
    (:class:`~descentlab.optim.lowbit.Int8Blockwise`,
    :class:`~descentlab.optim.lowbit.BF16Stochastic`) as Triton statements."""

    def __init__(self, prog: Program, u: str, prefix: str, rule: FormRule) -> None:
        super().__init__(prog, u, prefix)
        fmt = rule.state_format
        if prog.state_format not in (None, fmt):
            raise Unsupported("two low-bit state formats in one chain")
        prog.state_format, self.fmt, self.rule = fmt, fmt, rule
        if isinstance(fmt, lowbit.Int8Blockwise):
            prog.block = max(prog.block, fmt.block_size)
        elif not isinstance(fmt, lowbit.BF16Stochastic):
            raise Unsupported(f"state format {fmt!r} has no Triton form")
        self.keys = rule.stored()

    def leaf(self, name: str) -> str:
        if name not in self.keys:
            return super().leaf(name)
        k = f"state:{name}"
        if k not in self.prog.current:
            self.prog.current[k] = self._decode(name)
        return self.prog.current[k]

    def assign(self, key: str, value: str, expr: Expr) -> str:
        if key not in self.keys:
            return super().assign(key, value, expr)
        self.prog.current[f"state:{key}"] = value
        return value

    def statements(self, form: Form) -> None:
        super().statements(form)
        for index, key in enumerate(self.keys):
            if key in form.written:
                self._encode(index, key, self.prog.current[f"state:{key}"])

    def _signed(self, key: str) -> bool:
        return key not in self.rule.nonnegative

    def _decode(self, key: str) -> str:
        prog, let = self.prog, self.prog.let
        if isinstance(self.fmt, lowbit.BF16Stochastic):
            j = prog.index(f"state:{key}", torch.bfloat16)
            return let(f"tl.load(a{j} + offs, mask=mask, other=0).to(tl.float32)")
        signed, qb = self._signed(key), self.fmt.block_size
        jc = prog.index(f"state:{key}", torch.uint8)
        js = prog.index(f"state:{key}_scale", torch.float32)
        jm = prog.index(f"table:map{int(signed)}", torch.float32)
        code = let(f"tl.load(a{jc} + offs, mask=mask, other=0).to(tl.int32)")
        scale = let(f"tl.load(a{js} + offs // {qb}, mask=mask, other=1.0)")
        return let(f"tl.load(a{jm} + {code}) * {scale}")

    def _encode(self, index: int, key: str, v: str) -> None:
        prog, let = self.prog, self.prog.let
        if isinstance(self.fmt, lowbit.BF16Stochastic):
            j = prog.index(f"state:{key}", torch.bfloat16)
            # the salt (a uint32) in two exact halves: coefficients are of the compute type
            hi = self.coef(
                Coef(f"salt{index}_hi", lambda h, t, i=index: lowbit.sr_salt(i, t) >> 16, ())
            )
            lo = self.coef(
                Coef(f"salt{index}_lo", lambda h, t, i=index: lowbit.sr_salt(i, t) & 0xFFFF, ())
            )
            salt = let(f"({hi}.to(tl.uint32) << 16) | {lo}.to(tl.uint32)")
            r = let(f"_hash32(offs.to(tl.uint32) ^ {salt}) & 0xFFFF")
            up = let(f"({v}.to(tl.uint32, bitcast=True) + {r}) >> 16")
            prog.lines.append(
                f"tl.store(a{j} + offs, {up}.to(tl.uint16).to(tl.bfloat16, bitcast=True), "
                "mask=mask)"
            )
            return
        signed, qb = self._signed(key), self.fmt.block_size
        jc = prog.index(f"state:{key}", torch.uint8)
        js = prog.index(f"state:{key}_scale", torch.float32)
        jt = prog.index(f"table:thr{int(signed)}", torch.float32)
        zero = lowbit.zero_code(signed)
        nb = f"BLOCK // {qb}"
        # each block's maximum |value| (NaN and the lanes past the tensor's end count 0)
        ax = let(f"tl.where(mask & ({v} == {v}), tl.abs({v}), 0.0)")
        amax = let(f"tl.reduce(tl.reshape({ax}, ({nb}, {qb})), 1, _max2)")
        floor = repr(float(np.float32(lowbit.MIN_SCALE)))
        sc = let(f"tl.where({amax} > {floor}, {amax}, {floor})")
        inv = let(f"tl.div_rn(tl.full(({nb},), 1.0, tl.float32), {sc})")
        per = let(f"tl.reshape(tl.broadcast_to({inv}[:, None], ({nb}, {qb})), (BLOCK,))")
        y = let(f"{v} * {per}")
        code = let("tl.full((BLOCK,), 0, tl.int32)")
        for step in (128, 64, 32, 16, 8, 4, 2, 1):  # the number of thresholds <= y
            t = let(f"tl.load(a{jt} + {code} + {step - 1})")
            code = let(f"tl.where({t} <= {y}, {code} + {step}, {code})")
        code = let(f"tl.where({y} != {y}, {zero}, {code})")
        prog.lines.append(f"tl.store(a{jc} + offs, {code}.to(tl.uint8), mask=mask)")
        blk = let(f"start // {qb} + tl.arange(0, {nb})")
        prog.lines.append(f"tl.store(a{js} + {blk}, {sc}, mask={blk} * {qb} < n)")


#: the correctly rounded root and quotient of each compute type (float32's ``sqrt_rn`` and
#: ``div_rn``; float64's ``sqrt`` and ``/`` are IEEE's)
_HELPERS = {
    "tl.float32": ("tl.sqrt_rn(x)", "tl.div_rn(a, b)"),
    "tl.float64": ("tl.sqrt(x)", "a / b"),
}


def _refuse_batched(hyper: Mapping[str, Any]) -> None:
    key = _batched(hyper)
    if key is not None:
        raise Unsupported(f"batched hyperparameter {key!r} (one value per row) has no Triton form")


def _batched(hyper: Mapping[str, Any]) -> str | None:
    for k, v in hyper.items():
        if isinstance(v, Tensor) and v.ndim >= 1 and v.numel() > 1:
            return k
        if isinstance(v, tuple) and any(isinstance(x, Tensor) and x.numel() > 1 for x in v):
            return k
    return None


def emittable(rule: Rule, hyper: Mapping[str, Any]) -> bool:
    """Whether ``rule`` has a per-element Triton program at ``hyper``'s structure."""
    return _why_not(rule, hyper) is None


def _why_not(rule: Rule, hyper: Mapping[str, Any]) -> str | None:
    """Why ``rule`` has no per-element Triton program at ``hyper``'s structure, or None."""
    try:
        program(Chain(rule), hyper, False)
    except Unsupported as exc:
        return str(exc)
    return None


def _no_form(rule: Rule, why: str | None) -> Unsupported:
    """The refusal of a rule without a Triton program, with why where the rule has a form
    (one of its options or its state has no Triton form)."""
    plain = f"{rule.name} has no form"
    if why is None or why == plain:
        return Unsupported(plain)
    return Unsupported(f"{rule.name} has no Triton form at these options: {why}")


def split(rule: Chain, hyper: Mapping[str, Any]) -> int:
    """Where the chain's Triton part starts: after its last rule without a per-element form.
    The rules before it (a global-norm clip, Muon's orthogonalization, Shampoo's roots...) run
    with torch ops on the device and hand their updates to the kernel as its gradients.

    Raises :class:`Unsupported` where no rule is left for the kernel, where a rule before it
    is element-local (a rule that would belong in the kernel, but has no form), or where a
    rule before it updates the parameters itself (:meth:`~descentlab.optim.base.Chain.
    final_plan`: Muon's adjusted learning rate)."""
    _refuse_batched(hyper)
    rules = list(rule.rules)
    why = {k: _why_not(r, hyper) for k, r in enumerate(rules)}
    start = max((k + 1 for k, w in why.items() if w is not None), default=0)
    local = [k for k, r in enumerate(rules[:start]) if r.local and r.elementwise and why[k]]
    if local:
        raise _no_form(rules[local[0]], why[local[0]])
    if start == len(rules):
        raise _no_form(rules[-1], why[len(rules) - 1])
    final = rule.final_plan(hyper)
    if final is not None and final[0] < start:  # it updates the parameters itself
        raise Unsupported(f"{rules[final[0]].name} has no form")
    return start


def program(rule: Chain, hyper: Mapping[str, Any], fold_lr: bool, stored: bool = True) -> Program:
    """The per-element program of ``rule``'s whole chain at ``hyper``'s structure (raises
    :class:`Unsupported` naming the first rule without a form, or a batched hyperparameter).
    ``stored``: low-bit state in its format (False: as float32, a blockwise format's small
    tensors)."""
    _refuse_batched(hyper)
    rules = list(rule.rules)
    for r in rules:
        if not isinstance(r, FormRule):
            raise Unsupported(f"{r.name} has no form")
    walk = rule.walk(hyper, fold_lr)
    prog = Program()
    u = prog.array("g")
    em = None
    for k, r in enumerate(walk.body):
        form = r.built(hyper)
        prefix = f"{k}:{r.name}"
        if stored and r.state_format is not None:
            em = StoredTritonEmitter(prog, u, prefix, r)
        else:
            em = TritonEmitter(prog, u, prefix)
        u = em.run(form)
    p = prog.array("p")
    if walk.end == "final":  # the rule's own parameter update, after p.mul_(1 - lr * wd)
        assert em is not None
        if walk.decay is not None:
            p = prog.let(f"{p} * {prog.coef('final.decay', Coef('decay', decayed, ()))}")
        em.p, em.lr_fn = p, walk.lr.step_lr  # type: ignore[attr-defined,union-attr]
        new_p = em.final(form)
    elif walk.end == "fold":
        neg_lr = walk.lr.built(hyper).coefs["lr"]  # type: ignore[union-attr]
        c = prog.coef(f"{len(rules) - 1}:{walk.lr.name}.lr", neg_lr)  # type: ignore[union-attr]
        new_p = prog.let(f"tl.fma({u}, {c}, {p})")
    else:
        new_p = prog.let(f"{p} + {u}")
    prog.current["p"] = new_p
    prog.written.insert(0, "p")
    return prog


def kernel_source(prog: Program, dtypes: Sequence[torch.dtype], name: str) -> str:
    """The ``@triton.jit`` multi-tensor kernel ``name`` of ``prog`` for arrays of ``dtypes``
    (one per entry of ``prog.arrays``).

    Arguments: ``ptrs`` (int64 ``[tensors, arrays]``: each tensor's addresses), ``numel``
    (int64 ``[tensors]``), ``blocks`` (int64 ``[blocks, 2]``: tensor index, first element),
    ``coefs`` (``[tensors, coefficients]`` in the compute type); constexprs ``NA``, ``NC``,
    ``BLOCK``. One program instance per row of ``blocks``.
    """
    comp = _TL[compute_dtype(dtypes[0])]
    root, quotient = _HELPERS[comp]
    # low-bit state's helpers: lowbit's hash (Chris Wellons' lowbias32) in uint32 arithmetic,
    # and a maximum to reduce with. (Not tl.max or tl.zeros: triton's own jit functions,
    # decorated at its import, which Triton's interpreter cannot call where triton was
    # imported before it was switched on; these are decorated when the kernel's module loads)
    helpers = [
        "@triton.jit",
        "def _hash32(x):",
        "    x = x ^ (x >> 16)",
        "    x = x * tl.full((), 0x7FEB352D, tl.uint32)",
        "    x = x ^ (x >> 15)",
        "    x = x * tl.full((), 0x846CA68B, tl.uint32)",
        "    return x ^ (x >> 16)",
        "",
        "",
        "@triton.jit",  # the blocks' maximum (this module's own: see kernel_source's note)
        "def _max2(a, b):",
        "    return tl.maximum(a, b)",
        "",
        "",
    ]
    out = [
        "import triton",
        "import triton.language as tl",
        "",
        "",
        "@triton.jit",
        "def _sqrt(x):",
        f"    return {root}",
        "",
        "",
        "@triton.jit",
        "def _div(a, b):",
        f"    return {quotient}",
        "",
        "",
        *(helpers if prog.state_format is not None else []),
        "@triton.jit",
        f"def {name}(ptrs, numel, blocks, coefs, NA: tl.constexpr, NC: tl.constexpr,",
        "        BLOCK: tl.constexpr):",
        "    row = tl.program_id(0).to(tl.int64)",
        "    i = tl.load(blocks + 2 * row)",
        "    start = tl.load(blocks + 2 * row + 1)",
        "    n = tl.load(numel + i)",
        "    offs = start + tl.arange(0, BLOCK)",
        "    mask = offs < n",
        f"    _one = tl.full((BLOCK,), 1, {comp})",
    ]
    for j, dt in enumerate(dtypes):
        out.append(f"    a{j} = tl.load(ptrs + i * NA + {j}).to(tl.pointer_type({_POINTER[dt]}))")
    for j in range(len(prog.coefs)):
        out.append(f"    c{j} = tl.load(coefs + i * NC + {j})")
    for line in prog.lines:
        load = line.find("_ld(")
        if load >= 0:
            j = int(line[load + 4 : line.index(")", load)])
            conv = f".to({comp})" if dtypes[j] is not compute_dtype(dtypes[j]) else ""
            line = f"{line[:load]}tl.load(a{j} + offs, mask=mask, other=0){conv}"
        out.append(f"    {line}")
    for key in prog.written:
        j = prog.arrays.index(key)
        v = prog.current[key]
        conv = f".to({_TL[dtypes[j]]})" if dtypes[j] is not compute_dtype(dtypes[j]) else ""
        out.append(f"    tl.store(a{j} + offs, {v}{conv}, mask=mask)")
    return "\n".join(out) + "\n"
