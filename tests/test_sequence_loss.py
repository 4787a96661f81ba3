"""Token-level cross-entropy over (N, T, V) logits with padding, and its metrics.

References: torch.nn.functional.cross_entropy of the flattened logits, and a float64 loop
over the positions written here.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from descentlab import losses
from descentlab.engine.evaluation import evaluate
from descentlab.engine.streaming import StreamedSplit
from descentlab.problems.problem import Problem

PAD = 0
_G = torch.Generator().manual_seed(0)
LOGITS = torch.randn(6, 9, 5, generator=_G)
LABELS = torch.randint(1, 5, (6, 9), generator=_G)
LABELS[:, 6:] = PAD  # padded tails
LABELS[2, 3:] = PAD


@pytest.mark.parametrize(
    "options",
    [{}, {"ignore_index": PAD}, {"ignore_index": PAD, "label_smoothing": 0.1},
     {"ignore_index": PAD, "weight": [0.0, 1.0, 2.0, 0.5, 1.5]}],
)  # fmt: skip
def test_it_is_torchs_cross_entropy_of_the_flattened_logits(options):
    ce = losses.get("sequence_cross_entropy", **options)
    torch_options = {k: torch.tensor(v) if k == "weight" else v for k, v in options.items()}
    want = F.cross_entropy(LOGITS.reshape(-1, 5), LABELS.reshape(-1), **torch_options)
    assert torch.equal(ce(LOGITS, LABELS), want)
    none = losses.get("sequence_cross_entropy", reduction="none", **options)(LOGITS, LABELS)
    assert none.shape == LABELS.shape


def test_the_wrong_target_shape_is_one_clear_error():
    with pytest.raises(ValueError, match=r"logits' shape without its last dimension \(6, 9\)"):
        losses.get("sequence_cross_entropy")(LOGITS, LABELS[:, :4])


class _Fixed(torch.nn.Module):
    """Returns the logits of the examples it is given (their index is the input)."""

    def forward(self, i: torch.Tensor) -> torch.Tensor:
        return LOGITS[i.reshape(-1)]


def _reference() -> tuple[float, float]:
    """Mean loss over the counted positions, and accuracy over them, in float64."""
    total, hits, count = 0.0, 0, 0
    for n in range(LABELS.shape[0]):
        for t in range(LABELS.shape[1]):
            y = int(LABELS[n, t])
            if y == PAD:
                continue
            row = LOGITS[n, t].double()
            total += float(torch.logsumexp(row, 0) - row[y])
            hits += int(int(row.argmax()) == y)
            count += 1
    return total / count, hits / count


def test_evaluation_counts_positions_not_padding_across_batches():
    ce = losses.get("sequence_cross_entropy", ignore_index=PAD)
    loss, accuracy = _reference()
    idx = torch.arange(6)
    whole = evaluate(_Fixed(), idx, LABELS, ce, classification=True)
    # uneven batches of 4 and 2 examples holding different numbers of counted positions
    p = Problem(name="seq", model=_Fixed, data={"train": TensorDataset(idx, LABELS),
                "test": TensorDataset(idx, LABELS)}, n_classes=5,
                loader={"eval_batch_size": 4})  # fmt: skip
    s = p.splits()
    batched = evaluate(_Fixed(), StreamedSplit(s, "test", s.train.dataset, torch.device("cpu")),
                       None, ce, classification=True)  # fmt: skip
    for out in (whole, batched):
        assert out["loss"] == pytest.approx(loss, rel=1e-6)
        assert out["accuracy"] == pytest.approx(accuracy)
        assert out["perplexity"] == pytest.approx(math.exp(loss), rel=1e-6)


def test_the_language_model_uses_it():
    from descentlab.problems.charlm import char_lm_problem

    p = char_lm_problem(n_chars=20_000, context=16, d_model=16, n_heads=2, n_layers=1)
    assert p.loss == "sequence_cross_entropy"
    s = p.splits()
    assert s.default_loss == "sequence_cross_entropy"
    p.check()
