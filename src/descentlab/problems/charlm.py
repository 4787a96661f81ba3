r"""A small character-level transformer language model on Python's own source code.

The workload on which adaptive methods are known to beat SGD by a wide margin (transformers:
Zhang et al., 2020; Kunstner et al., 2023), small enough for a CPU: a 2-layer causal
transformer (:class:`CharTransformer`, pre-norm, learned positions) predicts the next
character of Python standard-library source files.

The corpus is on every machine without a download: the ``.py`` files at the top of the running
interpreter's standard library (``sysconfig.get_paths()["stdlib"]``), in sorted order,
concatenated until ``n_chars`` characters. Characters outside printable ASCII (and newline)
map to one "other" token, so the vocabulary is 97 symbols. The text is cut into
non-overlapping windows of ``context + 1`` characters -- inputs are the first ``context``,
targets the next character at each position -- and split by position: the first 80% of the
text trains, the next 10% validates, the last 10% tests (no window straddles two splits). The
interpreter's version decides the exact text: :func:`corpus` records the files and a hash.

The loss is the mean next-character cross-entropy (nats per character, the registry's
``sequence_cross_entropy``); accuracy is the fraction of characters predicted exactly, and
perplexity is ``exp`` of the loss.

Example:
    >>> p = char_lm_problem(n_chars=20_000, context=32)
    >>> s = p.splits()
    >>> s.task, s.x_train.shape[1], s.n_classes, p.metric_name
    ('classification', 32, 97, 'loss')
"""

from __future__ import annotations

import functools
import hashlib
import math
import platform
import sysconfig
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from descentlab import losses
from descentlab.problems.models import ACTIVATIONS, check_activation
from descentlab.problems.problem import Problem

__all__ = [
    "VOCAB_SIZE",
    "CharTransformer",
    "char_lm_problem",
    "corpus",
    "encode",
    "sequence_cross_entropy",
]

#: Printable ASCII (32..126), newline, and one token for every other character.
VOCAB_SIZE = 97
_OTHER = 96


def encode(text: str) -> Tensor:
    """Characters -> token ids: printable ASCII ``c`` -> ``ord(c) - 32``, newline -> 95,
    anything else (tabs, non-ASCII) -> 96.

    Example:
        >>> encode("a\\n\\t").tolist()
        [65, 95, 96]
    """
    table = torch.full((128,), _OTHER, dtype=torch.int64)
    table[32:127] = torch.arange(95)
    table[10] = 95
    codes = torch.tensor([min(ord(c), 127) for c in text], dtype=torch.int64)
    return table[codes]


@functools.lru_cache(maxsize=4)
def corpus(n_chars: int = 200_000) -> tuple[str, dict[str, Any]]:
    """The first ``n_chars`` characters of the standard library's top-level ``.py`` files,
    in sorted order, and a record of where they came from.

    Returns:
        ``(text, meta)`` with ``meta`` holding the directory, the files used, the Python
        version and a SHA-256 of the text.

    Raises:
        ValueError: ``n_chars`` is not a positive integer, or the standard library holds fewer
            characters.
    """
    if isinstance(n_chars, bool) or not isinstance(n_chars, int) or n_chars < 1:
        raise ValueError(f"n_chars must be a positive integer, got {n_chars!r}")
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    files: list[str] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(text)
        files.append(path.name)
        total += len(text)
        if total >= n_chars:
            break
    text = "".join(parts)[:n_chars]
    if len(text) < n_chars:
        raise ValueError(f"the standard library at {root} holds {len(text)} < {n_chars} chars")
    meta = {
        "stdlib": str(root),
        "files": files,
        "python": platform.python_version(),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    return text, meta


#: Mean cross-entropy over every position: outputs ``(N, T, V)``, targets ``(N, T)``
#: (:class:`descentlab.losses.SequenceCrossEntropy`, the problem's loss by its name).
sequence_cross_entropy = losses.get("sequence_cross_entropy")


class CharTransformer(nn.Module):
    """A causal transformer over characters: embeddings + learned positions, ``n_layers``
    pre-norm encoder layers (``torch.nn.TransformerEncoderLayer``) with a causal mask, a final
    layer norm and a linear read-out to the vocabulary.

    Args:
        context: sequence length.
        vocab: vocabulary size.
        d_model: width.
        n_heads: attention heads.
        n_layers: layers.
        dropout: dropout of the layers (0 by default: short runs do not overfit).
        activation: of the feed-forward blocks, one of
            :data:`~descentlab.problems.models.ACTIVATIONS` (torch's default, ReLU).

    Example:
        >>> m = CharTransformer(context=16)
        >>> m(torch.zeros(2, 16, dtype=torch.long)).shape
        torch.Size([2, 16, 97])
    """

    def __init__(
        self,
        context: int = 64,
        vocab: int = VOCAB_SIZE,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_activation("activation", activation)
        self.context = context
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Parameter(torch.randn(context, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=4 * d_model,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
            # torch's own names where it has them (its fast paths know them), else the function
            activation=activation if activation in ("relu", "gelu") else ACTIVATIONS[activation],
        )
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.register_buffer(
            "mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        h = self.embed(x) + self.position[:t]
        h = self.layers(h, mask=self.mask[:t, :t], is_causal=True)
        return self.head(self.norm(h))


def _windows(ids: Tensor, context: int) -> tuple[Tensor, Tensor]:
    n = (ids.numel() - 1) // context
    x = ids[: n * context].reshape(n, context)
    y = ids[1 : n * context + 1].reshape(n, context)
    return x, y


def char_lm_problem(
    n_chars: int = 200_000,
    context: int = 64,
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 2,
    target: float | None = None,
    activation: str = "relu",
) -> Any:
    """The character-level language model as a :class:`~descentlab.problems.problem.Problem`
    (``--problem charlm`` on the command line).

    Args:
        n_chars: characters of the corpus (80% train, 10% validation, 10% test).
        context: characters per sequence.
        d_model, n_heads, n_layers: the transformer's size.
        target: validation loss (nats per character) whose first crossing is timed (None:
            the suite's automatic target, relative to what the compared optimizers reach).
        activation: the feed-forward blocks' activation (:class:`CharTransformer`).

    Returns:
        The problem (metric: the validation loss).
    """
    if isinstance(context, bool) or not isinstance(context, int) or context < 2:
        raise ValueError(f"context must be an integer >= 2, got {context!r}")
    check_activation("activation", activation)
    text, meta = corpus(n_chars)
    ids = encode(text)
    cut1, cut2 = math.floor(0.8 * len(ids)), math.floor(0.9 * len(ids))
    x_train, y_train = _windows(ids[:cut1], context)
    x_val, y_val = _windows(ids[cut1:cut2], context)
    x_test, y_test = _windows(ids[cut2:], context)
    model = functools.partial(
        CharTransformer, context=context, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
        **({} if activation == "relu" else {"activation": activation}),
    )  # fmt: skip
    return Problem(
        name="charlm",
        model=model,
        data={
            "x_train": x_train,
            "y_train": y_train,
            "x_val": x_val,
            "y_val": y_val,
            "x_test": x_test,
            "y_test": y_test,
        },
        loss="sequence_cross_entropy",
        metric="loss",
        task="classification",
        n_classes=VOCAB_SIZE,
        target=target,
        meta={"corpus": meta},
    )
