"""Why mini-batch SGD works: the mini-batch gradient's mean and variance (seed 000).

Seed 000: the total loss is an expectation over the examples, ``(1/N) Σ L_i = E_i[L_i]``, so
a random batch's average gradient ``(1/B) Σ_b ∇L_b`` estimates the full gradient. Measured
on a real model (an MLP on the 8x8 digits, at a point part-way through training):

- the average of many mini-batch gradients is the full gradient (unbiased);
- their squared distance to it falls like ``1/B``: ``E‖g_B - ∇L‖² = tr(Σ)/B`` for batches
  drawn with replacement, with ``Σ`` the covariance of the per-example gradients (computed
  exactly from all N per-example gradients, ``torch.func.vmap(grad)``), and
  ``tr(Σ)/B · (N - B)/(N - 1)`` for batches without replacement (a shuffled epoch's batches).

The slope of log variance against log B is -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from descentlab.experiments.lectures._common import (
    ExperimentResult,
    check_int,
    check_int_list,
    resolve,
    timer,
)

__all__ = ["DEFAULTS", "QUICK", "per_example_gradients", "run"]

DEFAULTS: dict[str, Any] = {
    "batches": [1, 2, 4, 8, 16, 32, 64, 128, 256],
    "draws": 2000,
    "hidden": 32,
    "warmup": 100,
}
QUICK: dict[str, Any] = {"batches": [1, 4, 16, 64, 256], "draws": 600}


def per_example_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(N, p)``: the gradient of each example's cross-entropy, flattened
    (``torch.func.vmap`` over ``torch.func.grad``)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (xi[None],))
        return torch.nn.functional.cross_entropy(out, yi[None])

    g = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[k].reshape(x.shape[0], -1) for k in params], dim=1)


def run(
    *,
    quick: bool = False,
    seed: int = 0,
    batches: Any = None,
    draws: int | None = None,
    hidden: int | None = None,
    warmup: int | None = None,
) -> ExperimentResult:
    """Mini-batch gradients of an MLP on digits: unbiased, variance ∝ 1/B.

    Args:
        quick: the small preset.
        seed: seed of the model, the warm-up and the draws.
        batches: batch sizes B.
        draws: mini-batches drawn per B.
        hidden: hidden width of the MLP.
        warmup: SGD steps before measuring (a point part-way through training).
    """
    from descentlab.problems import data as datasets

    o = resolve(dict(locals()), DEFAULTS, QUICK, quick)
    seed = check_int("seed", seed, 0)
    bs = check_int_list("batches", o["batches"])
    if len(bs) < 3:
        raise ValueError(f"batches must hold at least 3 sizes for a slope, got {bs}")
    n_draw = check_int("draws", o["draws"], 10)
    hid = check_int("hidden", o["hidden"])
    n_warm = check_int("warmup", o["warmup"], 0)
    s = datasets.load("digits", seed=seed)
    x = s.x_train.reshape(s.n_train, -1).double()
    y = s.y_train
    n = x.shape[0]
    if max(bs) > n:
        raise ValueError(f"batch sizes must be <= {n} (training examples), got {max(bs)}")
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hid), torch.nn.ReLU(), torch.nn.Linear(hid, 10)
    ).double()
    gen = torch.Generator().manual_seed(seed)
    rows: list[dict[str, Any]] = []
    res = ExperimentResult(
        name="minibatch",
        title="Why mini-batch SGD works: unbiased gradients whose variance falls like 1/B",
        columns=["batch", "variance", "theory", "variance_no_replacement", "theory_no_replacement"],
        rows=rows,
    )
    with timer() as elapsed:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(n_warm):
            idx = torch.randint(0, n, (32,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        G = per_example_gradients(model, x, y)  # (N, p)
        full = G.mean(0)
        trace = float(((G - full) ** 2).sum(1).mean())  # tr(Σ), population covariance
        # autograd's full gradient is the mean of the per-example ones
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        direct = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        e_full = float((direct - full).norm() / full.norm())
        res.check(
            "the full gradient is the mean of the per-example gradients",
            e_full < 1e-10,
            f"relative |diff| {e_full:.1e}",
            "< 1e-10",
        )
        var_r, var_n, means = [], [], []
        for b in bs:
            # a batch's mean gradient is (counts @ G) / b, counts[d, i] = times example i is in
            # draw d: one matrix product instead of a (draws, b, p) gather
            idx = torch.randint(0, n, (n_draw, b), generator=gen)
            counts = torch.zeros(n_draw, n, dtype=G.dtype).scatter_add_(
                1, idx, torch.ones(n_draw, b, dtype=G.dtype)
            )
            gb = counts @ G / b
            var_r.append(float(((gb - full) ** 2).sum(1).mean()))
            means.append(gb.mean(0))
            perm = torch.argsort(torch.rand(n_draw, n, generator=gen), dim=1)[:, :b]
            mask = torch.zeros(n_draw, n, dtype=G.dtype).scatter_(1, perm, 1.0)
            gbn = mask @ G / b
            var_n.append(float(((gbn - full) ** 2).sum(1).mean()))
            rows.append(
                {
                    "batch": b,
                    "variance": var_r[-1],
                    "theory": trace / b,
                    "variance_no_replacement": var_n[-1],
                    "theory_no_replacement": trace / b * (n - b) / (n - 1),
                }
            )
        slope = float(np.polyfit(np.log(bs), np.log(var_r), 1)[0])
        res.check(
            "variance ∝ 1/B: slope of log variance vs log B",
            abs(slope + 1) <= 0.1,
            f"{slope:.3f}",
            "-1 ± 0.1",
        )
        rel = max(abs(r["variance"] / r["theory"] - 1) for r in rows)
        res.check(
            "E‖g_B - ∇L‖² = tr(Σ)/B (with replacement)",
            rel < 0.15,
            f"worst {100 * rel:.1f} % off",
            "< 15 % (sampling error of the draws)",
        )
        rel_n = max(
            abs(r["variance_no_replacement"] / r["theory_no_replacement"] - 1) for r in rows
        )
        res.check(
            "without replacement: tr(Σ)/B · (N-B)/(N-1)",
            rel_n < 0.15,
            f"worst {100 * rel_n:.1f} % off",
            "< 15 %",
        )
        # unbiased: the mean of the draws sits within sampling error of the full gradient
        b0 = bs[0]
        z = float(((means[0] - full).norm() ** 2) / (trace / b0 / n_draw))
        res.check(
            f"unbiased: the mean of {n_draw} batch-{b0} gradients is the full gradient "
            "up to sampling error",
            z < 2.0,
            f"‖mean - ∇L‖² = {z:.2f} × its expected size tr(Σ)/(B·draws)",
            "≈ 1 (< 2)",
        )
        seconds = elapsed()
    res.data = {
        "batches": bs,
        "variance": var_r,
        "variance_no_replacement": var_n,
        "trace": trace,
        "n": n,
        "slope": slope,
    }
    res.notes = [
        f"MLP 64-{hid}-10 on {n} 8x8 digits after {n_warm} SGD steps (lr 0.1, "
        f"batch 32), {sum(p.numel() for p in model.parameters())} parameters; {n_draw} batches "
        "per size.",
    ]
    res.config = {"quick": quick, "seed": seed, **o, "batches": bs}
    res.seconds = seconds
    from descentlab.store import provenance

    res.provenance = provenance(seed, experiment="minibatch")
    return res
