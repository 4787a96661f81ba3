"""What one optimizer step does to memory, counted: the aten ops it dispatches under a
dispatch mode and the elements they read, write and freshly allocate (``eager_step.py`` and
``tests/test_eager_traffic.py``). Measurement tooling, not part of the library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass
class Traffic:
    """The aten ops one call dispatched on tensors of more than one element (0-dim step
    counts and Python-side scalars left out), and the elements they read, wrote and freshly
    allocated, each in units of ``numel`` (one pass over the parameters)."""

    numel: int
    dispatches: int = 0
    read: float = 0.0
    written: float = 0.0
    allocated: float = 0.0
    ops: dict[str, int] = field(default_factory=dict)


#: ops that write their ``self`` without reading it
_OVERWRITE = frozenset(("copy_", "_foreach_copy_", "fill_", "zero_", "_foreach_zero_"))


class _Counter(TorchDispatchMode):
    def __init__(self, traffic: Traffic) -> None:
        super().__init__()
        self.t = traffic

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        schema = func._schema
        name = schema.name.split("::")[-1]
        read: dict[int, int] = {}
        written: dict[int, int] = {}
        bound = dict(zip((a.name for a in schema.arguments), args, strict=False)) | kwargs
        for a in schema.arguments:
            for x in _tensors(bound.get(a.name)):
                writes = a.alias_info is not None and a.alias_info.is_write
                if writes:
                    written[id(x)] = x.numel()
                if not writes or (a.name == "self" and name not in _OVERWRITE):
                    read[id(x)] = x.numel()
        if schema.returns and all(
            r.alias_info is not None and not r.alias_info.is_write for r in schema.returns
        ):
            return out  # a view: no element read or written
        fresh = [x for r, v in zip(schema.returns, _returned(out), strict=False)
                 if r.alias_info is None for x in _tensors(v)]  # fmt: skip
        allocated = sum(x.numel() for x in fresh if x.numel() > 1)
        if name in ("empty", "empty_like", "empty_strided", "new_empty"):
            written.clear()
        else:
            written.update((id(x), x.numel()) for x in fresh)
        touched = [n for n in (*read.values(), *written.values()) if n > 1]
        if touched or allocated:
            t = self.t
            t.dispatches += 1
            t.ops[name] = t.ops.get(name, 0) + 1
            t.read += sum(n for n in read.values() if n > 1) / t.numel
            t.written += sum(n for n in written.values() if n > 1) / t.numel
            t.allocated += allocated / t.numel
        return out


def _tensors(v: Any) -> list[Tensor]:
    if isinstance(v, Tensor):
        return [v]
    if isinstance(v, list | tuple):
        return [x for x in v if isinstance(x, Tensor)]
    return []


def _returned(out: Any) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def traffic(fn: Callable[[], Any], numel: int) -> Traffic:
    """Count what ``fn()`` (one optimizer step) dispatches and moves: see :class:`Traffic`;
    ``numel``: the parameters' total number of elements."""
    t = Traffic(numel)
    with torch.no_grad(), _Counter(t):
        fn()
    return t
