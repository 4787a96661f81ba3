"""The fused C backend's emitter: a chain's collected program (:mod:`descentlab.optim.program`)
written as the per-element C of the kernel's loop body (:class:`~descentlab.optim.fused.
CKernel` wraps it in the kernel), each primitive spelled from
:data:`~descentlab.optim.form.PRIMITIVES`.

Every value has the C type ``T`` (the vector type in the main loop, the scalar type in the
tail). The body reads ``p``, ``g`` and each state entry ``s_<key>`` (loaded before it, stored
after it: a low-bit entry through its format's C, :mod:`~descentlab.optim.lowbit`), and each
coefficient ``c_<name>``; each primitive is one line ``T tN = ...;``, a comparison is written
into the ``where`` that reads it, and a store is ``s_<key> = tN;``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .form import _MASKS, primitive, spell
from .program import ChainProgram

__all__ = ["CBody", "render"]

#: 1 of type ``T`` (a literal would be a scalar in the vector loop)
ONE = "dl_bc<T>(1.0)"


@dataclass(frozen=True)
class CBody:
    """A program's loop body: its lines, and the C expression of the new parameter."""

    lines: tuple[str, ...]
    final: str


def render(prog: ChainProgram) -> CBody:
    """The loop body of ``prog`` (raises ValueError for a primitive without a C spelling)."""
    lines: list[str] = []
    names = {"g": "g", "p": "p"}
    inline: dict[str, str] = {}  # a value written into its reader: its expression

    def let(expr: str) -> str:
        name = f"t{len(lines)}"  # one line per statement: a fresh name in the body
        lines.append(f"T {name} = {expr};")
        return name

    def name(token: str) -> str:
        if token.startswith("s:"):
            return f"s_{token[2:]}"
        if token.startswith("c:"):
            return f"c_{prog.coefs[int(token[2:])].name}"
        return names[token]

    for s in prog.stmts:
        if s.kind == "op":
            prim = primitive(s.op, s.alpha)
            if prim is None:
                raise ValueError(f"no C form for primitive {s.op!r}")
            a = [name(x) for x in s.args]
            alpha = None if s.alpha is None else name(s.alpha)
            if s.op in _MASKS:  # an operand of where only: inline, never a T variable
                names[s.out] = prim.c.format(*a)  # type: ignore[union-attr]
            elif s.inline:
                inline[s.out] = spell(prim.c, a, alpha, lambda e: e, ONE)
                names[s.out] = f"({inline[s.out]})"
            else:
                names[s.out] = spell(prim.c, a, alpha, let, ONE)
        elif s.kind == "let":  # a state value named before its store: copied
            names[s.out] = let(name(s.args[0]))
        elif s.kind == "store":
            lines.append(f"s_{s.out} = {name(s.args[0])};")
    return CBody(tuple(lines), inline.get(prog.update) or name(prog.update))
