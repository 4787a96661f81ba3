r"""A GPU kernel derived from the one form (:mod:`descentlab.optim.form`): Triton source text.

:func:`render` is the Triton emitter of a chain's collected program
(:class:`~descentlab.optim.program.ChainProgram`, the one the fused C kernel is written from):
one primitive per line of a ``@triton.jit`` kernel, in the forms' operation order, each
rounding as the C emitter's. :func:`program` renders a whole optimizer's chain, and
:func:`kernel_source` wraps it in a **multi-tensor** kernel: one launch steps every tensor of a
param group. Its tables, storage and compute types and low-bit state: docs/gpu.md. A
blockwise format's small tensors keep float32 state: they take the program without storage
(``program(stored=False)``).

This module only writes text: it imports neither triton nor a device."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import lowbit
from .base import Chain, Rule
from .form import primitive, spell
from .program import ChainProgram, NoProgram, collect, from_program

__all__ = [
    "Program",
    "Unsupported",
    "compute_dtype",
    "kernel_source",
    "program",
    "render",
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
class Program:
    """A chain's collected program (:class:`~descentlab.optim.program.ChainProgram`) written
    as Triton statements: kernel body lines, the arrays it touches (``p``, ``g``, the
    program's state arrays, then the low-bit format's tables, in pointer-table order), the
    arrays it stores plainly and the variable of each one's last value."""

    program: ChainProgram
    lines: list[str] = field(default_factory=list)
    arrays: list[str] = field(default_factory=lambda: ["p", "g"])
    written: list[str] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    #: arrays of a type of their own (low-bit state, its tables), else the parameters'
    dtypes: dict[str, torch.dtype] = field(default_factory=dict)
    #: elements per program instance at least (a multiple of a blockwise format's block)
    block: int = 1

    coefs = from_program("coefs")
    prepares = from_program("prepares")
    #: the low-bit format of the chain's stored state (one per chain), or None
    state_format = from_program("state_format")

    def let(self, expr: str) -> str:
        name = f"v{self.counter}"
        self.counter += 1
        self.lines.append(f"{name} = {expr}")
        return name

    def index(self, key: str, dtype: torch.dtype) -> int:
        """The pointer-table column of array ``key`` of type ``dtype``, which the program
        loads and stores itself (low-bit state, a table)."""
        if key not in self.arrays:
            self.arrays.append(key)
            self.dtypes[key] = dtype
        return self.arrays.index(key)


def render(cp: ChainProgram) -> Program:
    """``cp`` as Triton statements (raises :class:`Unsupported` for a primitive or a state
    format without a Triton spelling)."""
    prog = Program(cp)
    prog.arrays += [f"state:{k}" for k in cp.arrays]
    fmt = cp.state_format
    if isinstance(fmt, lowbit.Int8Blockwise):
        prog.block = fmt.block_size
    elif fmt is not None and not isinstance(fmt, lowbit.BF16Stochastic):
        raise Unsupported(f"state format {fmt!r} has no Triton form")
    for name, (key, idx) in cp.stored_arrays().items():
        prog.dtypes[f"state:{name}"] = cp.formats[key][0].dtypes[idx]
    names: dict[str, str] = {}

    def value(token: str) -> str:
        if token.startswith("s:"):
            return prog.current[f"state:{token[2:]}"]
        if token.startswith("c:"):
            return f"c{token[2:]}"
        return names[token]

    for s in cp.stmts:
        if s.kind == "load":
            if s.out in ("g", "p"):
                names[s.out] = prog.let(f"_ld({prog.arrays.index(s.out)})")
                continue
            key = s.out[2:]
            k = f"state:{key}"
            if k in prog.current:  # (a stored entry assigned before it was read)
                continue
            if key in cp.formats:
                prog.current[k] = _decode(prog, key)
            else:
                prog.current[k] = prog.let(f"_ld({prog.arrays.index(k)})")
        elif s.kind == "op":
            prim = primitive(s.op, s.alpha)  # the root is correctly rounded: kernel_source
            if prim is None:
                raise Unsupported(f"no Triton form for primitive {s.op!r}")
            a = [value(x) for x in s.args]
            alpha = None if s.alpha is None else value(s.alpha)
            names[s.out] = spell(prim.triton, a, alpha, prog.let, "_one")
        elif s.kind == "let":
            names[s.out] = value(s.args[0])
        elif s.kind == "store":
            k = f"state:{s.out}"
            prog.current[k] = value(s.args[0])
            if s.out not in cp.formats and k not in prog.written:
                prog.written.append(k)
        elif s.kind == "commit":
            _encode(prog, s.out)
    prog.current["p"] = value(cp.update)
    prog.written.insert(0, "p")
    return prog


def _decode(prog: Program, key: str) -> str:
    """The float32 value of low-bit state entry ``key`` (its format's decode)."""
    fmt, signed, _ = prog.program.formats[key]
    let = prog.let
    if isinstance(fmt, lowbit.BF16Stochastic):
        j = prog.index(f"state:{key}", torch.bfloat16)
        return let(f"tl.load(a{j} + offs, mask=mask, other=0).to(tl.float32)")
    qb = fmt.block_size
    jc = prog.index(f"state:{key}", torch.uint8)
    js = prog.index(f"state:{key}_scale", torch.float32)
    jm = prog.index(f"table:map{int(signed)}", torch.float32)
    code = let(f"tl.load(a{jc} + offs, mask=mask, other=0).to(tl.int32)")
    scale = let(f"tl.load(a{js} + offs // {qb}, mask=mask, other=1.0)")
    return let(f"tl.load(a{jm} + {code}) * {scale}")


def _encode(prog: Program, key: str) -> None:
    """Store the last value of low-bit state entry ``key`` in its format: bfloat16 with
    stochastic rounding (the eager backend's hash of the element's index and the step's salt),
    or 8-bit codes through the map's thresholds and each block's new maximum."""
    fmt, signed, salt = prog.program.formats[key]
    let, v = prog.let, prog.current[f"state:{key}"]
    if isinstance(fmt, lowbit.BF16Stochastic):
        assert salt is not None
        j = prog.index(f"state:{key}", torch.bfloat16)
        # the salt (a uint32) in two exact halves: coefficients are of the compute type
        hi, lo = (f"c{prog.program.coef_index(n)}" for n in salt)
        salt_v = let(f"({hi}.to(tl.uint32) << 16) | {lo}.to(tl.uint32)")
        r = let(f"_hash32(offs.to(tl.uint32) ^ {salt_v}) & 0xFFFF")
        up = let(f"({v}.to(tl.uint32, bitcast=True) + {r}) >> 16")
        prog.lines.append(
            f"tl.store(a{j} + offs, {up}.to(tl.uint16).to(tl.bfloat16, bitcast=True), mask=mask)"
        )
        return
    qb = fmt.block_size
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
    if why is None or why.startswith(plain):
        return Unsupported(why or plain)
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
    """The Triton statements of ``rule``'s whole chain at ``hyper``'s structure: its collected
    program (:func:`~descentlab.optim.program.collect`), rendered (raises :class:`Unsupported`
    naming the first rule without a form, a rule that reads its whole input before the kernel,
    or a batched hyperparameter). ``stored``: low-bit state in its format (False: as float32,
    a blockwise format's small tensors)."""
    _refuse_batched(hyper)
    try:
        cp = collect(rule, hyper, fold_lr, stored=stored)
    except NoProgram as exc:
        raise Unsupported(str(exc)) from None
    if cp.reads_g is not None:  # a group's norm: torch ops before the kernel
        raise Unsupported(f"{cp.reads_g} reads its whole input before the kernel")
    return render(cp)


def _coefficient_lines(n: int, comp: str) -> list[str]:
    """The kernel's ``n`` coefficients ``c0``...: its scalar arguments where ``SHARED``, else
    its tensor's row of ``coefs`` (a scalar of the compute type: the interpreter hands a
    Python float)."""
    if not n:
        return []
    shared = [f"        c{j} = tl.full((), s{j}, {comp})" for j in range(n)]
    rows = [f"        c{j} = tl.load(coefs + i * NC + {j})" for j in range(n)]
    return ["    if SHARED:", *shared, "    else:", *rows]


def kernel_source(prog: Program, dtypes: Sequence[torch.dtype], name: str) -> str:
    """The ``@triton.jit`` multi-tensor kernel ``name`` of ``prog`` for arrays of ``dtypes``
    (one per entry of ``prog.arrays``).

    Arguments: ``ptrs`` (int64 ``[tensors, arrays]``: each tensor's addresses), ``numel``
    (int64 ``[tensors]``), ``blocks`` (int64 ``[blocks, 2]``: tensor index, first element),
    ``coefs`` (``[tensors, coefficients]`` in the compute type), then each coefficient as a
    scalar of the compute type (``s0``, ``s1``...); constexprs ``NA``, ``NC``, ``BLOCK`` and
    ``SHARED``: every tensor's coefficients are the scalars (a group at one step: nothing is
    copied to the device for them, a schedule's new value included), else ``coefs``'s rows.
    One program instance per row of ``blocks``.
    """
    comp = _TL[compute_dtype(dtypes[0])]
    root, quotient = _HELPERS[comp]
    scalars = "".join(f" s{j}: {comp}," for j in range(len(prog.coefs)))
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
        f"def {name}(ptrs, numel, blocks, coefs,{scalars} NA: tl.constexpr, NC: tl.constexpr,",
        "        BLOCK: tl.constexpr, SHARED: tl.constexpr):",
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
    out += _coefficient_lines(len(prog.coefs), comp)
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
