"""Entropy, cross-entropy and KL divergence, computed and checked (the PyTorch losses lecture).

The PyTorch losses lecture: "entropy is the uncertainty of information: a fair coin (P = 0.5) is the
most uncertain; a die with five faces showing 1 and one showing 6 is predictable (P(1) = 5/6)";
``H(p, q) = -Σ p log q``; ``D_KL(P‖Q) = H(P, Q) - H(P)`` ≥ 0, and ``D_KL(P‖Q) ≠ D_KL(Q‖P)``.

Each number is computed from its formula and compared with an independent reference:
``scipy.stats.entropy`` for H and KL, ``torch.nn.functional.cross_entropy`` (soft targets)
for the cross-entropy and ``torch.nn.functional.kl_div`` for KL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import entropy as sp_entropy

from descentlab import constraints as cs
from descentlab.book.experiments._common import (
    ExperimentResult,
    Part,
    experiment,
    finish,
    timer,
)

__all__ = ["CONSTRAINTS", "DEFAULTS", "QUICK", "cross_entropy", "entropy", "kl", "run"]

DEFAULTS: dict[str, Any] = {"pairs": 200}
QUICK: dict[str, Any] = {"pairs": 50}


def entropy(p: np.ndarray, base: float = 2.0) -> float:
    """``H(p) = -Σ p log p`` (0 log 0 = 0), in bits by default."""
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / np.log(base))


def cross_entropy(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> float:
    """``H(p, q) = -Σ p log q``."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    nz = p > 0
    return float(-(p[nz] * np.log(q[nz])).sum() / np.log(base))


def kl(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> float:
    """``D_KL(p‖q) = Σ p log(p / q)``."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / q[nz])).sum() / np.log(base))


#: The coins and dice of the information lecture.
_CASES: dict[str, np.ndarray] = {
    "fair coin (1/2, 1/2)": np.array([0.5, 0.5]),
    "biased coin (0.9, 0.1)": np.array([0.9, 0.1]),
    "fair die (1/6 each)": np.full(6, 1 / 6),
    "die with five 1s and one 6 (5/6, 1/6)": np.array([5 / 6, 1 / 6]),
}


def _coins_and_dice_part() -> Part:
    """Entropies of the coins and dice against scipy; the binary entropy curve."""
    part = Part()
    cases = _CASES
    for name, p in cases.items():
        part.row(
            distribution=name, entropy_bits=entropy(p), scipy_bits=float(sp_entropy(p, base=2))
        )
    worst = max(abs(r["entropy_bits"] - r["scipy_bits"]) for r in part.rows)
    part.check(
        "H(p) = -Σ p log2 p equals scipy.stats.entropy",
        worst < 1e-12,
        f"max |diff| {worst:.1e}",
        "< 1e-12",
    )
    coin = entropy(cases["fair coin (1/2, 1/2)"])
    part.check("a fair coin carries 1 bit", abs(coin - 1) < 1e-12, f"{coin:.6f} bits", "1 bit")
    grid = np.linspace(0.001, 0.999, 999)
    hb = np.array([entropy([x, 1 - x]) for x in grid])
    part.check(
        "P = 0.5 is the most uncertain coin",
        abs(grid[hb.argmax()] - 0.5) < 1e-9,
        f"argmax H = {grid[hb.argmax()]:.3f}",
        "0.5",
    )
    die = entropy(cases["die with five 1s and one 6 (5/6, 1/6)"])
    fair = entropy(cases["fair die (1/6 each)"])
    part.check(
        "the loaded die (5/6, 1/6) is more predictable than a fair die",
        die < fair and abs(fair - np.log2(6)) < 1e-12,
        f"{die:.3f} bits",
        f"< log2 6 = {np.log2(6):.3f} bits",
    )
    part.data = {
        "binary": {"p": grid.tolist(), "h": hb.tolist()},
        "cases": {k: v.tolist() for k, v in cases.items()},
    }
    return part


def _identities_part(n: int, rng: np.random.Generator) -> Part:
    """CE = H + KL on ``n`` random pairs, against torch and scipy; KL's asymmetry."""
    part = Part()
    worst_id = worst_ce = worst_kl = 0.0
    asym = 0
    for _ in range(n):
        k = int(rng.integers(2, 11))
        p = rng.dirichlet(np.ones(k))
        logits = rng.normal(size=k) * 2
        q = np.exp(logits - logits.max())
        q /= q.sum()
        h, ce, d = entropy(p, np.e), cross_entropy(p, q, np.e), kl(p, q, np.e)
        worst_id = max(worst_id, abs(ce - (h + d)))
        t_ce = float(F.cross_entropy(torch.tensor(logits)[None], torch.tensor(p)[None]))
        worst_ce = max(worst_ce, abs(t_ce - ce))
        t_kl = float(
            F.kl_div(torch.tensor(q).log()[None], torch.tensor(p)[None], reduction="batchmean")
        )
        worst_kl = max(worst_kl, abs(t_kl - d), abs(float(sp_entropy(p, q)) - d))
        asym += abs(kl(p, q) - kl(q, p)) > 1e-9
    for text, worst, what in (
        (f"cross-entropy = entropy + KL on {n} random pairs", worst_id, "|H(p,q) - H(p) - KL|"),
        ("our cross-entropy equals torch's cross_entropy (soft targets)", worst_ce, "|diff|"),
        ("our KL equals torch's kl_div and scipy's", worst_kl, "|diff|"),
    ):
        part.check(text, worst < 1e-12, f"max {what} {worst:.1e}", "< 1e-12")
    part.check(
        "KL is not symmetric: D(P‖Q) ≠ D(Q‖P)", asym == n, f"{asym} of {n} pairs", f"{n} of {n}"
    )
    return part


def _ce_curve_part() -> Part:
    """H(P, Q) over a family of Q: smallest at Q = P."""
    part = Part("ce_curve")
    p = np.array([0.7, 0.2, 0.1])
    q1 = np.linspace(0.05, 0.95, 91)
    ces = [cross_entropy(p, np.array([x, (1 - x) * 2 / 3, (1 - x) / 3])) for x in q1]
    best = float(q1[int(np.argmin(ces))])
    part.check(
        "H(P, Q) over Q is smallest at Q = P, where it equals H(P)",
        abs(best - 0.7) < 1e-9 and abs(min(ces) - entropy(p)) < 1e-12,
        f"argmin q1 = {best:.2f}, min {min(ces):.4f}",
        f"0.70, H(P) = {entropy(p):.4f}",
    )
    part.data = {"q1": q1.tolist(), "ce": ces, "h": entropy(p)}
    return part


#: What each option must be.
CONSTRAINTS: dict[str, list[Any]] = {"pairs": [cs.POSITIVE_INT]}

_TITLE = "Entropy: the coin and the die; cross-entropy = entropy + KL"
_COLUMNS = ("distribution", "entropy_bits", "scipy_bits")


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """The coin and the die, CE = H + KL on random distributions, KL's asymmetry.

    Args:
        quick: the small preset.
        seed: seed of the random distributions.
        pairs: random (p, q) pairs for the identities.
    """
    n = v["pairs"]
    rng = np.random.default_rng(seed)
    res = ExperimentResult("information", _TITLE, list(_COLUMNS), [])
    with timer() as elapsed:
        res.data.update(res.add(_coins_and_dice_part()).data)
        res.add(_identities_part(n, rng))
        res.add(_ce_curve_part())
        seconds = elapsed()
    notes = ["Entropies in bits (log base 2); the identities in nats (torch's unit)."]
    return finish(res, quick=quick, seed=seed, options=o, seconds=seconds, notes=notes)
