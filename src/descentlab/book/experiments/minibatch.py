"""Why mini-batch SGD works: the mini-batch gradient's mean and variance (the optimization lecture).

The optimization lecture: the total loss is an expectation over the examples, ``(1/N) Σ L_i =
E_i[L_i]``, so a random batch's average gradient ``(1/B) Σ_b ∇L_b`` estimates the full gradient.
Measured on a real model (an MLP on the 8x8 digits, at a point part-way through training):

- the average of many mini-batch gradients is the full gradient (unbiased);
- their squared distance to it falls like ``1/B``: ``E‖g_B - ∇L‖² = tr(Σ)/B`` for batches
  drawn with replacement, with ``Σ`` the covariance of the per-example gradients (computed
  exactly from all N per-example gradients, ``torch.func.vmap(grad)``), and
  ``tr(Σ)/B · (N - B)/(N - 1)`` for batches without replacement (a shuffled epoch's batches).

The slope of log variance against log B is -1.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from descentlab import constraints as cs
from descentlab.book.experiments._common import (
    ExperimentResult,
    Part,
    experiment,
    finish,
    timer,
)
from descentlab.problems import data as datasets

__all__ = ["CONSTRAINTS", "DEFAULTS", "QUICK", "per_example_gradients", "run"]

DEFAULTS: dict[str, Any] = {
    "batches": [1, 2, 4, 8, 16, 32, 64, 128, 256],
    "draws": 2000,
    "hidden": 32,
    "warmup": 100,
}
QUICK: dict[str, Any] = {"batches": [1, 4, 16, 64, 256], "draws": 600}

#: What each option must be (at least 3 batch sizes, for a slope).
CONSTRAINTS: dict[str, list[Any]] = {
    "batches": [cs.ListOf(cs.POSITIVE_INT, min_len=3)],
    "draws": [cs.Interval(Integral, 10, None)],
    "hidden": [cs.POSITIVE_INT],
    "warmup": [cs.NONNEGATIVE_INT],
}


def per_example_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(N, p)``: the gradient of each example's cross-entropy, flattened
    (``torch.func.vmap`` over ``torch.func.grad``)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (xi[None],))
        return torch.nn.functional.cross_entropy(out, yi[None])

    g = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[k].reshape(x.shape[0], -1) for k in params], dim=1)


def _warm_model(x: torch.Tensor, y: torch.Tensor, hid: int, n_warm: int,
                gen: torch.Generator) -> torch.nn.Module:  # fmt: skip
    """The MLP after ``n_warm`` SGD steps (lr 0.1, batch 32): a point part-way through
    training (the global RNG seeded by the caller initialises it)."""
    n = x.shape[0]
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hid), torch.nn.ReLU(), torch.nn.Linear(hid, 10)
    ).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(n_warm):
        idx = torch.randint(0, n, (32,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model


def _full_gradient_part(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Part:
    """The per-example gradients ``G`` and their mean, against autograd's full gradient;
    ``values``: ``G``, ``full`` and ``trace`` (tr(Σ), the population covariance's)."""
    part = Part()
    G = per_example_gradients(model, x, y)  # (N, p)
    full = G.mean(0)
    trace = float(((G - full) ** 2).sum(1).mean())
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    direct = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    e_full = float((direct - full).norm() / full.norm())
    part.check(
        "the full gradient is the mean of the per-example gradients",
        e_full < 1e-10,
        f"relative |diff| {e_full:.1e}",
        "< 1e-10",
    )
    part.values.update(G=G, full=full, trace=trace)
    return part


def _batch_variances(
    G: torch.Tensor, full: torch.Tensor, b: int, n_draw: int, gen: torch.Generator
) -> tuple[float, float, torch.Tensor]:
    """The variance of ``n_draw`` batch-``b`` mean gradients drawn with and without
    replacement, and the mean of those drawn with replacement."""
    n = G.shape[0]
    # a batch's mean gradient is (counts @ G) / b, counts[d, i] = times example i is in
    # draw d: one matrix product instead of a (draws, b, p) gather
    idx = torch.randint(0, n, (n_draw, b), generator=gen)
    counts = torch.zeros(n_draw, n, dtype=G.dtype).scatter_add_(
        1, idx, torch.ones(n_draw, b, dtype=G.dtype)
    )
    gb = counts @ G / b
    perm = torch.argsort(torch.rand(n_draw, n, generator=gen), dim=1)[:, :b]
    mask = torch.zeros(n_draw, n, dtype=G.dtype).scatter_(1, perm, 1.0)
    gbn = mask @ G / b
    var_r = float(((gb - full) ** 2).sum(1).mean())
    var_n = float(((gbn - full) ** 2).sum(1).mean())
    return var_r, var_n, gb.mean(0)


def _variance_part(full_part: Part, bs: list[int], n_draw: int, gen: torch.Generator) -> Part:
    """Variance against B (with and without replacement) against tr(Σ)/B, and the
    unbiasedness of the smallest batch's mean."""
    G, full, trace = (full_part.values[k] for k in ("G", "full", "trace"))
    n = G.shape[0]
    part = Part()
    var_r, var_n, means = [], [], []
    for b in bs:
        vr, vn, mean = _batch_variances(G, full, b, n_draw, gen)
        var_r.append(vr)
        var_n.append(vn)
        means.append(mean)
        part.row(batch=b, variance=vr, theory=trace / b, variance_no_replacement=vn,
                 theory_no_replacement=trace / b * (n - b) / (n - 1))  # fmt: skip
    slope = float(np.polyfit(np.log(bs), np.log(var_r), 1)[0])
    part.check("variance ∝ 1/B: slope of log variance vs log B", abs(slope + 1) <= 0.1,
               f"{slope:.3f}", "-1 ± 0.1")  # fmt: skip
    rel = max(abs(r["variance"] / r["theory"] - 1) for r in part.rows)
    part.check("E‖g_B - ∇L‖² = tr(Σ)/B (with replacement)", rel < 0.15,
               f"worst {100 * rel:.1f} % off", "< 15 % (sampling error of the draws)")  # fmt: skip
    rel_n = max(abs(r["variance_no_replacement"] / r["theory_no_replacement"] - 1)
                for r in part.rows)  # fmt: skip
    part.check("without replacement: tr(Σ)/B · (N-B)/(N-1)", rel_n < 0.15,
               f"worst {100 * rel_n:.1f} % off", "< 15 %")  # fmt: skip
    # unbiased: the mean of the draws sits within sampling error of the full gradient
    z = float(((means[0] - full).norm() ** 2) / (trace / bs[0] / n_draw))
    part.check(
        f"unbiased: the mean of {n_draw} batch-{bs[0]} gradients is the full gradient "
        "up to sampling error",
        z < 2.0,
        f"‖mean - ∇L‖² = {z:.2f} × its expected size tr(Σ)/(B·draws)",
        "≈ 1 (< 2)",
    )
    part.data = {"batches": bs, "variance": var_r, "variance_no_replacement": var_n,
                 "trace": trace, "n": n, "slope": slope}  # fmt: skip
    return part


_TITLE = "Why mini-batch SGD works: unbiased gradients whose variance falls like 1/B"
_COLUMNS = ("batch", "variance", "theory", "variance_no_replacement", "theory_no_replacement")


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Mini-batch gradients of an MLP on digits: unbiased, variance ∝ 1/B.

    Args:
        quick: the small preset.
        seed: seed of the model, the warm-up and the draws.
        batches: batch sizes B.
        draws: mini-batches drawn per B.
        hidden: hidden width of the MLP.
        warmup: SGD steps before measuring (a point part-way through training).
    """
    bs, n_draw, hid, n_warm = (v[k] for k in ("batches", "draws", "hidden", "warmup"))
    s = datasets.load("digits", seed=seed)
    x = s.x_train.reshape(s.n_train, -1).double()
    y = s.y_train
    n = x.shape[0]
    if max(bs) > n:
        raise cs.invalid("batches", f"sizes <= {n} (the training examples)", bs, owner="minibatch")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    res = ExperimentResult("minibatch", _TITLE, list(_COLUMNS), [])
    with timer() as elapsed:
        model = _warm_model(x, y, hid, n_warm, gen)
        full = res.add(_full_gradient_part(model, x, y))
        res.data = res.add(_variance_part(full, bs, n_draw, gen)).data
        seconds = elapsed()
    notes = [
        f"MLP 64-{hid}-10 on {n} 8x8 digits after {n_warm} SGD steps (lr 0.1, "
        f"batch 32), {sum(p.numel() for p in model.parameters())} parameters; {n_draw} batches "
        "per size.",
    ]
    options = {**o, "batches": bs}
    return finish(res, quick=quick, seed=seed, options=options, seconds=seconds, notes=notes)
