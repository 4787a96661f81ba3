"""Teaching text of lecture 004 (explanations, code cells, playground views, exercises)."""

from __future__ import annotations

from typing import Any

from descentlab.book.model import Exercise

TEACH: dict[int, dict[str, Any]] = {}

EXERCISES: tuple[Exercise, ...] = ()

__all__ = ["EXERCISES", "TEACH"]
