"""Evaluating a model: its mean loss and accuracy on a split, in slices sized to the model."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from descentlab.engine.splits import EVAL_CHUNK, as_split

__all__ = [
    "EVAL_SLICE_BYTES",
    "EVAL_SLICE_MIN",
    "eval_slice",
    "evaluate",
    "metrics_of",
]


#: The bytes of one layer's output an evaluation slice may reach (:func:`eval_slice`): larger
#: buffers are fresh memory from the kernel at every slice, and their page faults cost more
#: than the arithmetic (ResNet-20 on 1,437 digits32 images in one slice: 1.93 s user + 2.75 s
#: system CPU; in slices of 32: 1.82 s + 0.00 s, the same loss to 1e-7).
EVAL_SLICE_BYTES = 2 * 2**20


#: The fewest examples an evaluation slice holds.
EVAL_SLICE_MIN = 16


_SLICES: weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], int]] = (
    weakref.WeakKeyDictionary()
)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    classification: bool,
) -> dict[str, float]:
    """Mean loss (and accuracy, for classification) of ``model`` on ``(x, y)`` in eval mode.

    Args:
        model: the model (put in eval mode; its previous mode is restored).
        x: inputs, or a :class:`~descentlab.engine.streaming.StreamedSplit` (a dataset, read
            through its loader; ``y`` is None).
        y: targets (class indices for classification).
        loss_fn: a mean-reduced loss ``loss_fn(outputs, targets)``.
        classification: also report accuracy, ``mean(argmax(outputs) == y)`` (for one output,
            ``outputs > 0``).

    Accuracy counts every target: for targets with more than one entry per example (a
    language model's next token at each position) it is the fraction of correct entries. A
    token-level loss (:class:`~descentlab.losses.SequenceCrossEntropy`) counts positions, not
    examples: positions labelled its ``ignore_index`` (padding) count in neither the loss nor
    the accuracy, each batch weighs by the positions it counts, and ``perplexity`` is
    ``exp`` of the mean loss.
    Regression also reports ``rmse``, ``sqrt(mean((outputs - targets) ** 2))`` over every
    entry, when the outputs have the targets' number of entries.

    Returns:
        ``{"loss": ..., "accuracy": ...}`` (accuracy only for classification), or
        ``{"loss": ..., "rmse": ...}`` for regression.

    Example:
        >>> m = nn.Linear(2, 2)
        >>> out = evaluate(m, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long),
        ...                nn.CrossEntropyLoss(), classification=True)
        >>> sorted(out)
        ['accuracy', 'loss']
    """
    was_training = model.training
    model.eval()
    try:
        n = 0
        total_loss = 0.0
        correct = 0
        squared = 0.0
        entries = 0
        tokens = getattr(loss_fn, "token_level", False)
        data = as_split(x, y)
        for xb, yb in data.evaluation(eval_slice(model, x)):
            out = model(xb)
            weight = loss_fn.denominator(yb) if tokens else int(xb.shape[0])
            n += weight
            total_loss += float(loss_fn(out, yb)) * weight if weight else 0.0
            counted = (yb != loss_fn.ignore_index) if tokens else None
            entries += yb.numel() if counted is None else int(counted.sum())
            if classification:
                pred = (out.reshape(-1) > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
                hits = pred.reshape(yb.shape) == yb
                correct += int((hits if counted is None else hits & counted).sum())
            elif out.numel() == yb.numel():
                squared += float(((out.reshape(yb.shape) - yb) ** 2).sum())
            else:
                squared = math.nan
        if n == 0:
            raise data.no_example()
        result = {"loss": total_loss / n}
        if tokens:
            loss = result["loss"]
            result["perplexity"] = math.exp(loss) if loss < 709.0 else math.inf
        if classification:
            result["accuracy"] = correct / entries
        elif math.isfinite(squared):
            result["rmse"] = math.sqrt(squared / entries)
        return result
    finally:
        model.train(was_training)


def eval_slice(model: nn.Module, x: Any) -> int:
    """How many examples of ``x`` one evaluation slice of ``model`` holds: as many as keep the
    largest output of any of its layers within :data:`EVAL_SLICE_BYTES`, between
    :data:`EVAL_SLICE_MIN` and :data:`EVAL_CHUNK` (an MLP of 128 hidden units: 4,096;
    ResNet-20 on 32x32 images, whose first layers output 64 KiB an example: 32). Measured
    once per model and example shape by a forward pass of one example (in eval mode, without
    gradients, the random generator's state kept); a model that fails it, or a streamed split,
    keeps :data:`EVAL_CHUNK`.

    Example:
        >>> eval_slice(nn.Linear(40, 10), torch.zeros(100_000, 40))
        16384
        >>> conv = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU())
        >>> eval_slice(conv, torch.zeros(1000, 1, 32, 32))
        32
    """
    if not isinstance(x, Tensor) or x.shape[0] <= EVAL_SLICE_MIN:
        return EVAL_CHUNK
    key = (tuple(x.shape[1:]), x.dtype, x.device)
    known = _SLICES.setdefault(model, {})
    if key not in known:
        largest = [0]

        def hook(_module: nn.Module, _args: Any, out: Any) -> None:
            for t in out if isinstance(out, tuple | list) else (out,):
                if isinstance(t, Tensor):
                    largest[0] = max(largest[0], t.numel() * t.element_size())

        handles = [m.register_forward_hook(hook) for m in model.modules()]
        was_training = model.training
        model.eval()  # no running statistic moves, and no random number is drawn
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                model(x[:1])
        except Exception:  # a model that cannot take one example: the old slices
            largest[0] = 0
        finally:
            model.train(was_training)
            for h in handles:
                h.remove()
        if largest[0] == 0:
            known[key] = EVAL_CHUNK
        else:
            known[key] = max(EVAL_SLICE_MIN, min(EVAL_CHUNK, EVAL_SLICE_BYTES // largest[0]))
    return known[key]


def metrics_of(
    model: nn.Module, loss_fn: Any, classification: bool, splits: Sequence[tuple[str, Any, Any]]
) -> dict[str, float]:
    """``split/metric`` of ``model`` on each ``(split, x, y)`` (:func:`evaluate`)."""
    out: dict[str, float] = {}
    for split, x, y in splits:
        metrics = evaluate(model, x, y, loss_fn, classification=classification)
        out.update({f"{split}/{k}": v for k, v in metrics.items()})
    return out
