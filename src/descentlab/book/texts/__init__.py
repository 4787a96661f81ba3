"""The book's teaching text, one module per lecture, next to the cards of
:mod:`descentlab.book.lectures`: for each item its explanation, its code cell and its
playground view (``TEACH``: item number -> the :class:`~descentlab.book.model.Item` fields
``explain``, ``code``, ``play``); the lectures' exercises are in
:mod:`descentlab.book.texts.practice` (``EXERCISES``).
"""

from __future__ import annotations

from typing import Any

from descentlab.book.model import Exercise
from descentlab.book.texts import l000, l001, l002, l003, l004
from descentlab.book.texts.practice import PRACTICE

__all__ = ["COMPLETE", "EXERCISES", "TEACH"]

_MODULES = {"000": l000, "001": l001, "002": l002, "003": l003, "004": l004}

#: item number -> its teaching fields (``explain``, ``code``, ``play``).
TEACH: dict[int, dict[str, Any]] = {n: t for m in _MODULES.values() for n, t in m.TEACH.items()}

#: lecture seed ("000".."004") -> its exercises.
EXERCISES: dict[str, tuple[Exercise, ...]] = PRACTICE

#: the lectures whose every item has an explanation and a code cell (the others: in part)
COMPLETE: tuple[str, ...] = ("000", "001", "002", "003", "004")
