"""Same-shape tensors stepped together: the matrix optimizers' batched steps.

Muon's Newton-Schulz iteration, Shampoo's roots and SOAP's bases are matrix products and
decompositions of one matrix each. A group's matrices of one shape (a transformer's layers)
are stepped as one stack: one batched product per iteration, one batched decomposition,
elementwise updates over the stack -- a few operations for the set instead of a few per
matrix. Their state lives in stacks too: each tensor's entry is its row of one tensor
(:func:`rows`), so a step updates the stack in place; entries that are not (a loaded state
dict, a copy) are stacked once and are its rows from then on. The per-matrix math is that
of one matrix: a matrix's result does not depend on which others share its stack.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor

__all__ = ["sets", "stacked"]


def sets(tensors: list[Tensor], key: Callable[[int], Hashable] | None = None) -> list[list[int]]:
    """The positions of ``tensors`` of one shape, dtype and device (and ``key(i)``), in
    order, one list per kind.

    Example:
        >>> sets([torch.zeros(2, 3), torch.zeros(4), torch.zeros(2, 3)])
        [[0, 2], [1]]
    """
    out: dict[Hashable, list[int]] = {}
    for i, t in enumerate(tensors):
        kind = (t.shape, t.dtype, t.device, None if key is None else key(i))
        out.setdefault(kind, []).append(i)
    return list(out.values())


def stacked(
    col: list[Any], idx: list[int], new: Callable[[], Tensor], part: int | None = None
) -> Tensor:
    """Entries ``idx`` of state column ``col`` (``part``: that item of each, a list per
    tensor) as the rows of one contiguous tensor, which they are from now on: the stack they
    are rows of already, in order (a few attribute reads), else a stack of them (``new()``'s,
    where any is missing), whose rows then replace them in ``col``."""
    entries = [col[i] if part is None else col[i][part] for i in idx]
    base = _stack_of(entries)
    if base is not None:
        return base
    base = new() if any(e is None for e in entries) else torch.stack(entries)
    for i, row in zip(idx, base.unbind(0), strict=True):
        if part is None:
            col[i] = row
        else:
            col[i][part] = row
    return base


def _stack_of(entries: list[Any]) -> Tensor | None:
    """The tensor whose rows ``entries`` are, in order, or None."""
    first = entries[0]
    base = getattr(first, "_base", None)
    if base is None or base.shape[0] != len(entries) or base.shape[1:] != first.shape:
        return None
    if not base.is_contiguous():
        return None
    offset, step, strides = base.storage_offset(), base.stride(0), base.stride()[1:]
    for j, e in enumerate(entries):
        if e._base is not base or e.storage_offset() != offset + j * step or e.stride() != strides:
            return None
    return base
