"""A GPT-2-style decoder: token and learned position embeddings, pre-LayerNorm blocks of
causal self-attention and a GELU MLP, a final LayerNorm and a read-out to the vocabulary
(tied to the token embedding by default), initialised as GPT-2.

``GPT(context=1024, vocab=50257, d_model=768, n_layers=12, n_heads=12)`` is GPT-2 small's
architecture: 124,439,808 parameters with the read-out tied (Radford et al. 2019; the count of
Hugging Face's ``GPT2LMHeadModel``). As ``--model gpt`` on the character language model
(``--problem charlm``) its context is the problem's and its vocabulary the problem's 97
symbols.

Attention is ``torch.nn.functional.scaled_dot_product_attention`` with ``is_causal=True``;
nothing is in place, so the model works under ``torch.func.functional_call`` and ``vmap``.

References:
    Radford et al., "Language models are unsupervised multitask learners", 2019 (GPT-2).
    Vaswani et al., "Attention is all you need", 2017.
    Xiong et al., "On layer normalization in the transformer architecture", 2020 (pre-LN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GPT", "Block", "CausalSelfAttention"]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one ``Linear(d, 3d)`` for queries, keys and values,
    one ``Linear(d, d)`` projection out."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        # the heads this process holds (all of them, unless tensor parallelism splits ``qkv``
        # by columns, each rank's q, k and v rows together: then its share)
        q, k, v = self.qkv(x).chunk(3, dim=2)
        q, k, v = (z.reshape(n, t, -1, d // self.n_heads).transpose(1, 2)
                   for z in (q, k, v))  # fmt: skip
        p = self.dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.drop(self.proj(h.transpose(1, 2).reshape(n, t, -1)))


class Block(nn.Module):
    """``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` (pre-LayerNorm); the MLP is
    ``Linear(d, 4d)``, GELU (GPT-2's tanh form), ``Linear(4d, d)``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.drop(self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))


class GPT(nn.Module):
    """A GPT-2-style decoder over token ids ``(N, T)`` -> logits ``(N, T, vocab)``.

    Args:
        context: the longest sequence (positions of the learned position embedding).
        vocab: vocabulary size.
        d_model: width (a multiple of ``n_heads``).
        n_layers: blocks.
        n_heads: attention heads.
        tied: the read-out shares the token embedding's weight (GPT-2).
        dropout: of the embeddings, attention and residual branches (0: short runs do not
            overfit).

    Initialisation as GPT-2: every linear and embedding weight normal with standard
    deviation 0.02, biases zero, and the projections into the residual stream (attention's
    and the MLP's) at ``0.02 / sqrt(2 n_layers)``.

    Example:
        >>> m = GPT(context=16, vocab=97, d_model=32, n_layers=2, n_heads=4)
        >>> m(torch.zeros(2, 16, dtype=torch.long)).shape
        torch.Size([2, 16, 97])
    """

    def __init__(
        self,
        context: int,
        vocab: int,
        *,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        tied: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"d_model must be a multiple of n_heads, got d_model={d_model}, n_heads={n_heads}"
            )
        self.context = context
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for b in self.blocks:
            for proj in (b.attn.proj, b.proj):  # type: ignore[union-attr]
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * n_layers))
        if tied:
            self.head.weight = self.embed.weight

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        if t > self.context:
            raise ValueError(f"sequence of length {t} is longer than the context {self.context}")
        pos = torch.arange(t, device=x.device)
        h = self.drop(self.embed(x) + self.position(pos))
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h))
