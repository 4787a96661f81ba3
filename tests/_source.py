"""The library's source files parsed once per test process: the structure tests (layers,
long functions, branches on a kind, ...) each walk every module of src/, and parsing it is
most of their cost."""

from __future__ import annotations

import ast
import functools
from pathlib import Path


@functools.lru_cache(maxsize=4096)
def _parsed(source: str, filename: str) -> ast.Module:
    return ast.parse(source, filename)


def parsed(path: Path) -> ast.Module:
    """``path``'s syntax tree, shared by every caller in this process while the file's text is
    the same (keyed by the text: an edited file is parsed again). Read it; never change it."""
    return _parsed(path.read_text(encoding="utf-8"), str(path))
