"""Solving by formula vs solving by iteration (the optimization and derivatives lectures).

The derivatives lecture lists four ways to minimize ``x^2 - 4x + 6``: complete the square, set the
derivative to zero, try every x, or iterate a numerical method -- and says deep learning
must use the last. The optimization lecture says the same of "differentiate and set to zero": it
needs a quadratic, convex loss, the second-derivative test needs the Hessian, and the Hessian costs
``O(np^2 + p^3)`` (n examples, p parameters; ``O(np + r t p)`` with Hessian-vector products).

This experiment does each:

1. the four ways on ``x^2 - 4x + 6``, each computed (the square's vertex from the
   coefficients, the root of ``f'`` with autograd's ``f'`` and ``f''``, a grid of every x at
   step 1e-3, gradient descent), against the answer ``x* = 2, f* = 2``;
2. least squares by the normal equations ``w = (XᵀX)⁻¹ Xᵀy`` against gradient descent on the
   same loss, whose error contracts by ``(κ - 1)/(κ + 1)`` per step at lr ``2/(L + μ)``;
3. the second-derivative test on the lecture's cubic ``3x^3 - 2x + 1`` (autograd's Hessian);
4. the cost against p: forming and solving with the Hessian (``n p^2 + p^3``) vs one
   Hessian-vector product and one gradient (``n p`` each), by operation count.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from descentlab import constraints as cs
from descentlab.book.experiments._common import (
    ExperimentResult,
    Part,
    experiment,
    finish,
    timer,
)
from descentlab.problems import landscapes
from descentlab.problems.trajectories import run as trajectories

__all__ = ["CONSTRAINTS", "DEFAULTS", "QUICK", "run"]

DEFAULTS: dict[str, Any] = {
    "n": 2048,
    "sizes": [128, 256, 512, 1024, 1536],
    "ls_n": 200,
    "ls_p": 8,
}
QUICK: dict[str, Any] = {"sizes": [96, 192, 384, 768]}

#: What each option must be (at least 3 sizes, for a slope).
CONSTRAINTS: dict[str, list[Any]] = {
    "n": [cs.Interval(Integral, 2, None)],
    "sizes": [cs.ListOf(cs.Interval(Integral, 2, None), min_len=3)],
    "ls_n": [cs.Interval(Integral, 2, None)],
    "ls_p": [cs.POSITIVE_INT],
}


def _flops(fn: Any) -> int:
    """Floating-point operations of the matrix products ``fn`` runs, counted by torch's
    :class:`~torch.utils.flop_counter.FlopCounterMode` (deterministic: no clock)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _count_routes(
    ps: list[int], n: int, gen: torch.Generator, counts: dict[str, list[float]]
) -> None:
    """Count, for each p: forming XᵀX and Xᵀy (2np² + 2np, counted) and solving the p x p
    system by LU ((2/3)p³, LAPACK's count: torch's counter does not see ``solve``); one
    Hessian-vector product Xᵀ(Xv) and one gradient Xᵀ(Xw - y) (about 4np each, counted)."""
    for p in ps:
        Xp = torch.randn(n, p, generator=gen, dtype=torch.float64)
        yp = torch.randn(n, 1, generator=gen, dtype=torch.float64)
        wp = torch.zeros(p, 1, dtype=torch.float64)
        vp = torch.randn(p, 1, generator=gen, dtype=torch.float64)

        def newton(Xp: torch.Tensor = Xp, yp: torch.Tensor = yp) -> None:
            Hp = Xp.T @ Xp  # n p²
            torch.linalg.solve(Hp, Xp.T @ yp)  # p³

        def hvp(Xp: torch.Tensor = Xp, vp: torch.Tensor = vp) -> None:
            Xp.T @ (Xp @ vp)  # n p: H v without forming H

        def gradient(Xp: torch.Tensor = Xp, yp: torch.Tensor = yp, wp: torch.Tensor = wp) -> None:
            Xp.T @ (Xp @ wp - yp)

        counts["hessian"].append(_flops(newton) + 2 * p**3 / 3)
        counts["hvp"].append(_flops(hvp))
        counts["gradient"].append(_flops(gradient))


def _four_ways_part() -> Part:
    """The four ways to minimize ``x^2 - 4x + 6``, each computed, against ``x* = 2``."""
    part = Part("four_ways")
    a, b, c = 1.0, -4.0, 6.0
    f = landscapes.get("parabola")
    xs = torch.linspace(-50, 50, 1001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        ident = float((f(xs) - ((xs[:, 0] - 2) ** 2 + 2)).abs().max())
    vertex, fvert = -b / (2 * a), c - b * b / (4 * a)
    part.check(
        "1. completing the square: x² - 4x + 6 = (x - 2)² + 2, so x* = 2, f* = 2",
        ident < 1e-9 and (vertex, fvert) == (2.0, 2.0),
        f"x* = {vertex:g}, f* = {fvert:g}; identity max |diff| {ident:.0e}",
        "2, 2",
    )
    x_root = torch.tensor([[-b / (2 * a)]], dtype=torch.float64)  # root of f' = 2x - 4
    d1 = float(landscapes.grad(f, x_root)[0, 0])
    d2 = float(landscapes.hessian(f, x_root[0])[0, 0])
    part.check(
        "2. the derivative: f'(x) = 2x - 4 = 0 at x = 2, f'' = 2 > 0 (autograd)",
        d1 == 0.0 and abs(d2 - 2.0) < 1e-12,
        f"f'(2) = {d1:g}, f''(2) = {d2:g}",
        "0, 2",
    )
    grid = torch.arange(-10.0, 10.0 + 1e-9, 1e-3, dtype=torch.float64)[:, None]
    with torch.no_grad():
        vals = f(grid)
    x_grid = float(grid[int(vals.argmin()), 0])
    part.check(
        "3. trying every x on [-10, 10] in steps of 1e-3 finds it",
        abs(x_grid - 2.0) <= 5e-4,
        f"x = {x_grid:.4f} after {grid.shape[0]:,} evaluations",
        "2 ± 5e-4",
    )
    lr = 0.2
    tr = trajectories(f, "sgd", torch.tensor([4.0], dtype=torch.float64), 60, lr=lr)
    err = (tr.paths[0, :, 0] - 2.0).abs().numpy()
    k_meas = int(np.argmax(err < 1e-6))
    k_theory = math.ceil(math.log(1e-6 / 2.0) / math.log(abs(1 - 2 * lr)))
    part.check(
        "4. gradient descent from 4 (lr 0.2): error × |1 - 2 lr| = 0.6 per step",
        k_meas == k_theory,
        f"|x - 2| < 1e-6 after {k_meas} steps",
        f"{k_theory} steps",
    )
    for method, x, cost in (
        ("complete the square", vertex, "3 coefficients"),
        ("f'(x) = 0", -b / (2 * a), "solve 2x - 4 = 0"),
        ("try every x", x_grid, f"{grid.shape[0]:,} evaluations"),
        ("gradient descent", float(tr.paths[0, k_meas, 0]), f"{k_meas} steps"),
    ):
        part.row(method=method, x_or_error=x, expected=2.0, cost=cost)
    part.data = {"gd_path": tr.paths[0, :12, 0].tolist(), "grid_x": x_grid}
    return part


def _normal_equations_part(n_ls: int, p_ls: int, gen: torch.Generator) -> Part:
    """Least squares by the normal equations vs gradient descent at lr ``2/(L + μ)``, whose
    error contracts by ``(κ - 1)/(κ + 1)`` per step; ``values["kappa"]``: κ."""
    part = Part("normal_equations")
    X = torch.randn(n_ls, p_ls, generator=gen, dtype=torch.float64)
    X = X * torch.logspace(0, 1, p_ls, dtype=torch.float64)  # features of unequal scale
    w_true = torch.randn(p_ls, generator=gen, dtype=torch.float64)
    y = X @ w_true + 0.1 * torch.randn(n_ls, generator=gen, dtype=torch.float64)
    w_ne = torch.linalg.solve(X.T @ X, X.T @ y)
    w_ls = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    H = 2 * X.T @ X / n_ls  # Hessian of the mean squared error
    eig = torch.linalg.eigvalsh(H)
    L_, mu = float(eig.max()), float(eig.min())
    kappa = L_ / mu
    step = 2 / (L_ + mu)
    w = torch.zeros(p_ls, dtype=torch.float64)
    errs = []
    n_gd = int(min(20000, math.ceil(math.log(1e-12) / math.log((kappa - 1) / (kappa + 1)))))
    for _ in range(n_gd):
        errs.append(float((w - w_ne).norm()))
        w = w - step * (2 * X.T @ (X @ w - y) / n_ls)
    errs.append(float((w - w_ne).norm()))
    e_ne = float((w_ne - w_ls).norm() / w_ls.norm())
    part.check(
        "normal equations (XᵀX) w = Xᵀy give the least-squares solution",
        e_ne < 1e-10,
        f"relative |w - lstsq| {e_ne:.1e}",
        "< 1e-10",
    )
    rate = float(np.exp(np.polyfit(np.arange(len(errs)), np.log(np.maximum(errs, 1e-300)), 1)[0]))
    theory = (kappa - 1) / (kappa + 1)
    part.check(
        "gradient descent reaches the same w, at the rate (κ-1)/(κ+1) per step",
        errs[-1] < 1e-9 * float(w_ne.norm()) and abs(rate - theory) < 0.05 * theory,
        f"rate {rate:.4f}, |w_T - w*| {errs[-1]:.1e} after {n_gd} steps",
        f"{theory:.4f} (κ = {kappa:.1f})",
    )
    part.data = {"errors": errs, "kappa": kappa, "theory": theory}
    part.row(method="normal equations vs GD", x_or_error=errs[-1], expected=0.0,
             cost=f"{n_gd} GD steps, κ = {kappa:.0f}")  # fmt: skip
    part.values["kappa"] = kappa
    return part


def _second_derivative_part() -> Part:
    """The second-derivative test on the lecture's cubic ``3x^3 - 2x + 1`` (autograd)."""
    part = Part("second_derivative")
    cub = landscapes.get("cubic")
    r = math.sqrt(2.0) / 3.0  # roots of f' = 9x² - 2
    pts = torch.tensor([[r], [-r]], dtype=torch.float64)
    g = landscapes.grad(cub, pts)[:, 0]
    h = [float(landscapes.hessian(cub, pts[i])[0, 0]) for i in range(2)]
    kinds = ["local minimum" if v > 0 else "local maximum" for v in h]
    expected_kinds = [p.kind for p in cub.points]
    part.check(
        "second-derivative test on 3x³ - 2x + 1: f'' = 18x > 0 at √2/3 (minimum), "
        "< 0 at -√2/3 (maximum)",
        float(g.abs().max()) < 1e-12 and kinds == expected_kinds and abs(h[0] - 18 * r) < 1e-9,
        f"f'' = {h[0]:.3f}, {h[1]:.3f}",
        f"{18 * r:.3f}, {-18 * r:.3f}",
    )
    part.data = {"points": [r, -r], "f2": h, "kinds": kinds}
    return part


def _cost_part(ps: list[int], n_t: int, gen: torch.Generator) -> Part:
    """The Hessian route's operation count against p, vs a gradient and a Hessian-vector
    product."""
    part = Part("cost")
    counts: dict[str, list[float]] = {"hessian": [], "hvp": [], "gradient": []}
    _count_routes(ps, n_t, gen, counts)
    lp = np.log(np.asarray(ps, dtype=np.float64))
    slopes = {k: float(np.polyfit(lp, np.log(v), 1)[0]) for k, v in counts.items()}
    part.check(
        "forming and solving with the Hessian grows like p² to p³ (n p² + p³ operations)",
        1.9 <= slopes["hessian"] <= 3.0,
        f"log-log slope {slopes['hessian']:.3f}",
        "in [1.9, 3] (2 while n ≫ p)",
    )
    part.check(
        "a gradient or a Hessian-vector product grows like p (n p operations)",
        max(abs(slopes["gradient"] - 1), abs(slopes["hvp"] - 1)) <= 0.02,
        f"slopes {slopes['gradient']:.3f}, {slopes['hvp']:.3f}",
        "1 ± 0.02",
    )
    ratio = counts["hessian"][-1] / counts["gradient"][-1]
    part.check(f"at p = {ps[-1]} the Hessian route costs many gradients", ratio > p_half(ps),
               f"{ratio:.0f} gradients", f"> p/2 = {p_half(ps):.0f}")  # fmt: skip
    part.data = {"sizes": ps, "n": n_t, "flops": counts, "slopes": slopes}
    part.row(method=f"Hessian route / gradient at p = {ps[-1]}", x_or_error=ratio,
             expected="≫ 1",
             cost=f"slopes {slopes['hessian']:.2f} vs {slopes['gradient']:.2f}")  # fmt: skip
    return part


def p_half(ps: list[int]) -> float:
    """Half the largest p: the Hessian route costs about p/2 gradients (2np² vs 4np)."""
    return ps[-1] / 2


_TITLE = "Closed form vs iteration: four ways to a minimum, normal equations, the Hessian"


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """The four ways, normal equations vs gradient descent, the second-derivative test and
    the Hessian's cost against p.

    Args:
        quick: the small preset.
        seed: seed of the random designs.
        n: examples of the timing problem.
        sizes: parameter counts p of the timing problem.
        ls_n, ls_p: examples and features of the least-squares problem.
    """
    n_t, ps, n_ls, p_ls = (v[k] for k in ("n", "sizes", "ls_n", "ls_p"))
    gen = torch.Generator().manual_seed(seed)
    res = ExperimentResult("closed_form", _TITLE, ["method", "x_or_error", "expected", "cost"], [])
    with timer() as elapsed:
        res.add(_four_ways_part())
        kappa = res.add(_normal_equations_part(n_ls, p_ls, gen)).values["kappa"]
        res.add(_second_derivative_part())
        res.add(_cost_part(ps, n_t, gen))
        seconds = elapsed()
    notes = [
        f"Least squares: {n_ls} examples, {p_ls} features scaled from 1 to 10 (κ = {kappa:.0f}), "
        "MSE loss, gradient descent at lr 2/(L + μ) from 0; the rate is fitted to log|w_t - w*|.",
        f"Cost: random n = {n_t} x p designs; floating-point operations of the matrix products "
        "counted by torch's FlopCounterMode, plus LAPACK's (2/3)p³ for the LU solve (no clock: "
        "the counts do not depend on the machine's load).",
    ]
    options = {**o, "sizes": ps}
    return finish(res, quick=quick, seed=seed, options=options, seconds=seconds, notes=notes)
