"""The data of a run as the engine reads it: one :class:`Split` protocol, two kinds.

A split in memory is a :class:`TensorSplit`; a dataset read through its loader is a
:class:`~descentlab.engine.streaming.StreamedSplit`. Each answers for itself (its evaluation
batches, its first examples, its refusals), so nothing else in the engine asks which it holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor

from descentlab.engine.streaming import read_split

__all__ = [
    "EVAL_CHUNK",
    "Split",
    "TensorSplit",
    "as_split",
    "eval_batches",
    "test_data",
]


# Evaluate in one forward pass up to this many examples (exact means for any loss); beyond it,
# in chunks averaged by size.
EVAL_CHUNK = 16384


def eval_batches(x: Any, y: Any, size: int = EVAL_CHUNK) -> Iterator[tuple[Tensor, Tensor]]:
    """The batches an evaluation reads, in order: slices of ``size`` examples of tensors, or
    a streamed split's batches (:class:`~descentlab.engine.streaming.StreamedSplit`)."""
    return as_split(x, y).evaluation(size)


class Split(Protocol):
    """One split of a run's data as the engine reads it: :class:`TensorSplit` (tensors in
    memory) or :class:`~descentlab.engine.streaming.StreamedSplit` (a dataset read through
    its loader). Each kind answers for itself; the engine does not ask which it is."""

    #: why runs on it cannot train sharded (None: they can)
    shard_refusal: str | None

    def evaluation(self, size: int = EVAL_CHUNK) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches an evaluation reads, in order (``size``: examples per slice)."""
        ...

    def head(self, n: int) -> tuple[Tensor, Tensor]:
        """The first ``n`` examples as one batch (probing the model before training)."""
        ...

    def no_example(self) -> Exception:
        """The error of an evaluation that read no example."""
        ...


class TensorSplit:
    """A split held in memory: inputs ``x`` and targets ``y``, tensors on the run's device
    (the :class:`Split` that arrays make)."""

    shard_refusal: str | None = None

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def evaluation(self, size: int = EVAL_CHUNK) -> Iterator[tuple[Tensor, Tensor]]:
        """Slices of ``size`` examples."""
        x, y = self.x, self.y
        for start in range(0, int(x.shape[0]), size):
            yield x[start : start + size], y[start : start + size]

    def head(self, n: int | None) -> tuple[Tensor, Tensor]:
        return self.x[:n], self.y[:n]

    def no_example(self) -> ValueError:
        return ValueError(f"{self.x!r} has no example to evaluate")


@functools.singledispatch
def as_split(x: Any, y: Any = None) -> Split:
    """``(x, y)`` as the :class:`Split` a run reads: tensors as a :class:`TensorSplit`; a
    split that reads itself (a :class:`~descentlab.engine.streaming.StreamedSplit`, ``y``
    None) as it is."""
    return x


@as_split.register(Tensor)
def _(x: Tensor, y: Any = None) -> Split:
    return TensorSplit(x, y)


def test_data(splits: Any, device: torch.device) -> tuple[Any, Any]:
    """The test split's ``(x, y)`` on ``device`` (read while unsealed; a problem of
    datasets: its :class:`~descentlab.engine.streaming.StreamedSplit` and None)."""
    splits.unseal_test()
    try:
        return read_split(splits, "test", device)
    finally:
        splits.seal_test()
