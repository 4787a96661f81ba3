"""Text read from a store, a results file or user code, made safe for a terminal: one function
(:func:`printable`) that every console print of stored text goes through, so that a run name
or a message someone wrote into a store cannot move the cursor, retitle the window, clear the
screen or hide text (ANSI escape sequences, carriage returns, backspaces)."""

from __future__ import annotations

import re

__all__ = ["printable"]

#: C0 controls (tab and, where kept, newline aside), DEL, C1 controls, and Unicode's
#: direction overrides and isolates (text shown in another order than stored)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_AND_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, lines: bool = False) -> str:
    r"""``text`` as a terminal may show it: each control character written as its escape
    (``\x1b``, ``\r``), so that it is seen, not obeyed; ``lines``: newlines kept (text of
    several lines), else escaped too.

    Example:
        >>> printable("run\x1b[2J\rname")
        'run\\x1b[2J\\x0dname'
        >>> printable("a\nb"), printable("a\nb", lines=True)
        ('a\\x0ab', 'a\nb')
    """
    pattern = _CONTROL if lines else _CONTROL_AND_NEWLINE
    return pattern.sub(_escaped, str(text))
