"""Formulas typeset as MathML (latex2mathml): the browser draws them, offline, with no script.

A text of the book writes a formula in TeX between dollars, ``$\\eta/(1 - \\beta)$`` inline and
``$$...$$`` as a paragraph of its own (displayed); :func:`split_math` finds them and
:func:`mathml` converts one. A formula that cannot be read is refused with its text, never
shown half-typeset.

Example:
    >>> split_math("a rate $r^t$ per step, `$x$` as code")
    [('text', 'a rate '), ('inline', 'r^t'), ('text', ' per step, `$x$` as code')]
    >>> mathml("x^2").startswith('<math xmlns="http://www.w3.org/1998/Math/MathML"')
    True
"""

from __future__ import annotations

import functools
import re

__all__ = ["MATH", "mathml", "split_math"]

#: a formula in a text: ``$$...$$`` (displayed) or ``$...$`` (inline), code spans first so
#: that a dollar inside backquotes stays code
MATH = re.compile(r"(`[^`]*`)|\$\$(.+?)\$\$|\$([^$]+?)\$", re.DOTALL)


def split_math(text: str) -> list[tuple[str, str]]:
    """``text`` as pieces: ``("text", ...)``, ``("inline", tex)`` and ``("display", tex)``
    (a code span stays text)."""
    out: list[tuple[str, str]] = []
    last = 0
    for m in MATH.finditer(text):
        if m.group(1) is not None:
            continue
        if m.start() > last:
            out.append(("text", text[last : m.start()]))
        out.append(("display", m.group(2)) if m.group(2) is not None else ("inline", m.group(3)))
        last = m.end()
    if last < len(text):
        out.append(("text", text[last:]))
    return out


@functools.cache
def mathml(tex: str, display: bool = False) -> str:
    """``tex`` as MathML.

    Raises:
        ValueError: ``tex`` is not TeX that latex2mathml reads, its braces do not pair, or it
            names a command latex2mathml does not know (the formula is named).
    """
    from latex2mathml.converter import convert

    depth = 0
    for brace in _BRACE.findall(tex):
        depth += 1 if brace == "{" else -1
        if depth < 0:
            break
    why = "its braces do not pair" if depth else ""
    try:
        out = convert(tex.strip(), display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises its own errors and IndexError alike
        why = why or type(exc).__name__
    else:  # latex2mathml shows a command it does not know as its name, and goes on
        unknown = _UNKNOWN.search(out)
        why = why or (f"unknown command {unknown.group(1)}" if unknown else "")
    if why:
        raise ValueError(f"the formula ${tex}$ cannot be typeset: {why}")
    return out


#: a brace that groups (not an escaped ``\{``), and a command latex2mathml passed through
_BRACE = re.compile(r"(?<!\\)[{}]")
_UNKNOWN = re.compile(r">(\\[A-Za-z]+)<")
