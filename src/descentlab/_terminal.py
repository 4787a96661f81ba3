"""Text read from a store, a results file or user code, made safe for a terminal: one function
(:func:`printable`) that every console print of stored text goes through, so that a run name
or a message someone wrote into a store cannot move the cursor, retitle the window, clear the
screen or hide text (ANSI escape sequences, carriage returns, backspaces)."""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

#: what is kept as it is: tab, and newline where asked (every other character that Unicode
#: does not print -- C0 and C1 controls, DEL, format characters such as the direction
#: overrides and isolates, zero-width marks and joiners, line and paragraph separators,
#: private-use and unassigned code points -- is escaped; spaces such as U+00A0 are kept)
_KEPT = {False: "\t", True: "\t\n"}


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else (
        f"\\U{code:08x}")  # fmt: skip


def printable(text: object, *, lines: bool = False) -> str:
    r"""``text`` as a terminal may show it: each character that is not printed as itself
    (a control, a format character) written as its escape (``\x1b``, ``\r``, ``\u202e``), so
    that it is seen, not obeyed; ``lines``: newlines kept (text of several lines), else
    escaped too.

    Example:
        >>> printable("run\x1b[2J\rname\u200f")
        'run\\x1b[2J\\x0dname\\u200f'
        >>> printable("a\nb"), printable("a\nb", lines=True)
        ('a\\x0ab', 'a\nb')
    """
    text = str(text)
    if text.isprintable():
        return text
    kept = _KEPT[lines]
    return "".join(
        c if c.isprintable() or c in kept or unicodedata.category(c) == "Zs" else _escaped(c)
        for c in text
    )
