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

``mup=True`` parametrizes it by µP for Adam-type optimizers (Adam, AdamW, Lion: updates whose
size does not follow the gradient's scale), relative to the width ``mup_base``, where it is
the standard model exactly: with ``m = d_model / mup_base``, each hidden matrix (attention's
and the MLP's) is stored ``m`` times its weight and read times ``1/m`` (its initial
deviation ``1/sqrt(m)`` of the standard one, its lr ``1/m``), the read-out is multiplied by
``1/m`` and attention scores by ``sqrt(d_head(mup_base)) / d_head`` (``1/d`` where the
standard is ``1/sqrt(d)``); embeddings, biases and LayerNorms as they are (Yang et al.
2022, table 3, in the equivalent form of multipliers). Muon's orthogonalized updates keep
their own width scaling: under this option its hidden matrices' lr falls as ``1/m``.

References:
    Radford et al., "Language models are unsupervised multitask learners", 2019 (GPT-2).
    Vaswani et al., "Attention is all you need", 2017.
    Yang et al., "Tensor Programs V: tuning large neural networks via zero-shot
    hyperparameter transfer", 2022 (µP).
    Xiong et al., "On layer normalization in the transformer architecture", 2020 (pre-LN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GPT", "Block", "CausalSelfAttention"]


#: µP's hidden multiplier and attention scale (``(1.0, None)``: the standard model)
_Mup = tuple[float, float | None]


class Linear(nn.Linear):
    """``nn.Linear`` whose weight is read times ``mult`` (µP's hidden matrices; 1: as is)."""

    def __init__(self, n_in: int, n_out: int, mult: float = 1.0, bias: bool = True) -> None:
        super().__init__(n_in, n_out, bias=bias)
        self.mult = mult

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mult if self.mult != 1.0 else self.weight, self.bias)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one ``Linear(d, 3d)`` for queries, keys and values,
    one ``Linear(d, d)`` projection out (``mup``: the hidden matrices' multiplier and the
    attention's scale, module docstring)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, mup: _Mup = (1.0, None)) -> None:
        super().__init__()
        (mult, self.scale), self.n_heads, self.dropout = mup, n_heads, dropout
        self.qkv = Linear(d_model, 3 * d_model, mult)
        self.proj = Linear(d_model, d_model, mult)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        # the heads this process holds (all of them, unless tensor parallelism splits ``qkv``
        # by columns, each rank's q, k and v rows together: then its share)
        q, k, v = self.qkv(x).chunk(3, dim=2)
        q, k, v = (z.reshape(n, t, -1, d // self.n_heads).transpose(1, 2)
                   for z in (q, k, v))  # fmt: skip
        p = self.dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, scale=self.scale)
        return self.drop(self.proj(h.transpose(1, 2).reshape(n, t, -1)))


class Block(nn.Module):
    """``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` (pre-LayerNorm); the MLP is
    ``Linear(d, 4d)``, GELU (GPT-2's tanh form), ``Linear(4d, d)``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, mup: _Mup = (1.0, None)) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout, mup)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = Linear(d_model, 4 * d_model, mup[0])
        self.proj = Linear(4 * d_model, d_model, mup[0])
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
        mup: parametrized by µP relative to the width ``mup_base`` (module docstring).

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
        mup: bool = False,
        mup_base: int = 64,
    ) -> None:
        super().__init__()
        if d_model % n_heads or (mup and mup_base % n_heads):
            raise ValueError(
                f"d_model must be a multiple of n_heads, got d_model={d_model}, n_heads={n_heads}"
                + (f", mup_base={mup_base}" if mup else "")
            )
        m = d_model / mup_base if mup else 1.0
        scale = math.sqrt(mup_base / n_heads) / (d_model / n_heads) if mup else None
        self.context, self.out_mult = context, 1.0 / m
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, dropout, (1.0 / m, scale)) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        for m in self.modules():
            # (a µP hidden matrix's stored weight: its weight / mult, deviation x sqrt(m))
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02 / math.sqrt(getattr(m, "mult", 1.0)))
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for b in self.blocks:
            for proj in (b.attn.proj, b.proj):  # type: ignore[union-attr]
                std = 0.02 / math.sqrt(2 * n_layers * proj.mult)  # type: ignore[operator]
                nn.init.normal_(proj.weight, std=std)
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
        out = self.head(self.norm(h))
        return out * self.out_mult if self.out_mult != 1.0 else out
