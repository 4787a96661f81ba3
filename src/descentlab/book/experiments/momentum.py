"""What momentum does, measured against theory (the derivatives, DL-basics and momentum lectures).

Three claims of the lectures, each on a landscape where the answer is known:

1. **Momentum escapes a local minimum where gradient descent stops** (the derivatives lecture:
   "gradient descent has no way out of a local minimum; momentum ... can reach the global minimum";
   the momentum lecture: "local minima problem solved"). On the tilted double well
   ``x^4/4 - x^2 + 0.3x`` from x0 = 2.5, plain gradient descent settles in the shallow
   minimum near 1.33; heavy-ball momentum (and Nesterov) arrive at the barrier with speed and
   roll over it into the global minimum near -1.48. A sweep over the momentum coefficient
   shows how much momentum it takes.
2. **Nesterov converges faster than momentum** (the DL-basics lecture: "theoretically a higher
   convergence rate than momentum"). On a quadratic with condition number ``κ`` each eigenvalue
   ``λ`` of the Hessian is a decoupled 2x2 linear recurrence, so the asymptotic rate of each method
   is the largest spectral radius over the eigenvalues:

   .. math::
       \\text{GD:}\\ |1 - \\eta\\lambda|, \\qquad
       \\text{momentum:}\\ r^2 - (1 + \\beta - \\eta\\lambda) r + \\beta = 0, \\qquad
       \\text{Nesterov:}\\ r^2 - (1 + \\beta)(1 - \\eta\\lambda) r + \\beta(1 - \\eta\\lambda) = 0 .

   With ``η = 1/L`` and ``β = 0.9`` Nesterov's radius ``sqrt(β(1 - ηλ))`` is below
   momentum's ``sqrt(β)`` for every eigenvalue (the lookahead gradient damps the steep
   direction at once, where momentum oscillates). The measured rates (fitted to the
   envelope of ``‖x_t‖``) are compared with these numbers, for a sweep of ``β`` too: for
   small ``β`` momentum is (slightly) faster, the lecture's claim holds in the usual regime
   ``β ≥ 0.85``.
3. **Momentum reduces overshoot** (the momentum lecture, Fig. 5-10). On the ravine
   ``0.05x^2 + 5y^2``, gradient descent with lr 0.18 (``ηλ = 1.8`` across the valley) jumps from
   wall to wall: ``y_t = (-0.8)^t y_0``, a total travel across the valley of
   ``1.8 / 0.2 = 9 |y_0|``. Momentum (β = 0.5, the momentum lecture's usual start) with the same
   effective step ``η/(1-β)`` averages the alternating gradients out of its velocity: its
   cross-valley mode contracts by ``sqrt(β) = 0.71`` per step instead of 0.8, it crosses the floor
   less far and travels less across the valley. (At β = 0.9 with the same effective step the mode
   contracts by only ``sqrt(0.9) = 0.95``: it travels less but swings for longer.)

Every rate is computed from the numbers of a float64 run, and compared with the formula.

References:
    Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
    Nesterov, "A method of solving a convex programming problem with convergence rate
    O(1/k^2)", 1983. Sutskever et al., "On the importance of initialization and momentum in
    deep learning", ICML 2013. Goh, "Why Momentum Really Works", Distill 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from descentlab.constraints import POSITIVE, POSITIVE_INT, Interval, ListOf
from descentlab.problems import landscapes
from descentlab.problems.trajectories import run as trajectories

from ._common import ExperimentResult, Part, experiment, finish, timer

__all__ = ["CONSTRAINTS", "DEFAULTS", "QUICK", "envelope_rate", "run", "theory_rate"]

#: The full setting.
DEFAULTS: dict[str, Any] = {
    "escape_lr": 0.02,
    "escape_steps": 600,
    "betas": [0.0, 0.5, 0.8, 0.85, 0.9, 0.95],
    "kappa": 100.0,
    "rate_steps": 600,
    "sweep": [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97],
    "ravine_steps": 200,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {"escape_steps": 300, "rate_steps": 400, "sweep": [0.5, 0.9, 0.95]}


def theory_rate(method: str, lr: float, beta: float, eigenvalues: Sequence[float]) -> float:
    """The asymptotic convergence rate of ``method`` on a quadratic: the largest spectral
    radius of its per-eigenvalue 2x2 recurrence (see the module docstring).

    Args:
        method: ``"gd"``, ``"momentum"`` or ``"nesterov"``.
        lr: the learning rate ``η``.
        beta: the momentum coefficient (ignored for ``"gd"``).
        eigenvalues: the Hessian's eigenvalues.

    Example:
        >>> round(theory_rate("momentum", 1.0, 0.9, [0.01, 1.0]), 4)
        0.9487
    """
    out = 0.0
    for lam in eigenvalues:
        q = 1.0 - lr * lam
        if method == "gd":
            radius = abs(q)
        elif method == "momentum":
            radius = max(abs(np.roots([1.0, -(1.0 + beta - lr * lam), beta])))
        elif method == "nesterov":
            radius = max(abs(np.roots([1.0, -(1.0 + beta) * q, beta * q])))
        else:
            raise ValueError(f"method must be 'gd', 'momentum' or 'nesterov', got {method!r}")
        out = max(out, float(radius))
    return out


def envelope_rate(norms: np.ndarray, start: int, end: int, block: int = 25) -> float:
    """The per-step contraction of ``norms[start:end]``, fitted to its upper envelope.

    An oscillating mode's norm touches zero now and then, so ``log ‖x_t‖`` is fitted through
    the maximum of each block of ``block`` steps (a least-squares line through the block
    maxima against their positions); ``exp(slope)`` is the rate.
    """
    seg = np.asarray(norms[start:end], dtype=np.float64)
    n = len(seg) // block
    if n < 3:
        raise ValueError(f"need at least 3 blocks of {block} steps, got {len(seg)} steps")
    idx = [start + b * block + int(np.argmax(seg[b * block : (b + 1) * block])) for b in range(n)]
    vals = [np.log(max(seg[i - start], 1e-300)) for i in idx]
    slope = np.polyfit(np.asarray(idx, dtype=np.float64), np.asarray(vals), 1)[0]
    return float(math.exp(slope))


def _first_tiny(norms: np.ndarray, floor: float) -> int:
    below = np.nonzero(norms < floor)[0]
    return int(below[0]) if below.size else len(norms)


_BETA = Interval(Real, 0, 1, closed="left")

#: The options' constraints.
CONSTRAINTS: dict[str, list[Any]] = {
    "escape_lr": [POSITIVE],
    "escape_steps": [POSITIVE_INT],
    "betas": [ListOf(_BETA)],
    "kappa": [Interval(Real, 1, None, closed="neither")],
    "rate_steps": [Interval(Integral, 100, None)],
    "sweep": [ListOf(_BETA)],
    "ravine_steps": [Interval(Integral, 10, None)],
}


def _escape(v: dict[str, Any]) -> Part:
    """Part 1: gradient descent, momentum and Nesterov on the double well; the β sweep."""
    lr_e, n_esc, bs = v["escape_lr"], v["escape_steps"], v["betas"]
    part = Part("escape")
    well = landscapes.get("double_well")
    local = next(p for p in well.points if p.kind == "local minimum")
    glob = well.global_minimum
    assert glob is not None
    x0 = torch.tensor([well.start], dtype=torch.float64)
    paths = {}
    for name, hyper in (
        ("sgd", None),
        ("momentum", {"momentum": 0.9}),
        ("nesterov", {"momentum": 0.9}),
    ):
        tr = trajectories(well, name, x0, n_esc, lr=lr_e, hyper=hyper)
        paths[name] = tr.paths[0, :, 0].tolist()
        part.row(
            part="escape",
            method=name,
            setting=f"lr {lr_e:g}" + (", β 0.9" if hyper else ""),
            measured=tr.paths[0, -1, 0].item(),
            theory=None,
        )
    if len(bs) > 1:
        sweep_tr = trajectories(well, "momentum", x0, n_esc, lr=lr_e, hyper={"momentum": bs})
        finals = sweep_tr.paths[:, -1, 0].tolist()
    else:
        one = trajectories(well, "momentum", x0, n_esc, lr=lr_e, hyper={"momentum": bs[0]})
        finals = [one.paths[0, -1, 0].item()]
    part.data = {
        "lr": lr_e,
        "paths": paths,
        "betas": bs,
        "finals": finals,
        "local": local.x[0],
        "global": glob.x[0],
    }
    part.values["well"] = well
    sgd_end, mom_end, nes_end = (paths[k][-1] for k in ("sgd", "momentum", "nesterov"))
    part.check(
        "plain gradient descent stops in the shallow local minimum",
        abs(sgd_end - local.x[0]) < 1e-3,
        f"x = {sgd_end:.4f}",
        f"{local.x[0]:.4f}",
    )
    for text, end in (
        ("momentum (β = 0.9, same lr) leaves it and ends in the global minimum", mom_end),
        ("so does Nesterov momentum", nes_end),
    ):
        part.check(text, abs(end - glob.x[0]) < 1e-3, f"x = {end:.4f}", f"{glob.x[0]:.4f}")
    return part


def _measured_rate(path: torch.Tensor, steps: int) -> tuple[np.ndarray, float]:
    """The norms of a run's path and its rate, fitted over the last three quarters before
    the norms underflow."""
    nrm = path.norm(dim=-1).numpy()
    end = min(_first_tiny(nrm, 1e-200), steps + 1)
    return nrm, envelope_rate(nrm, end // 4, end)


def _rates(v: dict[str, Any]) -> Part:
    """Part 2: measured rates of GD, momentum and Nesterov on a conditioned quadratic against
    theory, and the β sweep."""
    kap, n_rate, sw = v["kappa"], v["rate_steps"], v["sweep"]
    part = Part("rates")
    quad = landscapes.get("quadratic", kappa=kap, dim=2)
    eig = [float(e) for e in quad.params["eigenvalues"]]
    big, small = max(eig), min(eig)
    start = torch.ones(1, 2, dtype=torch.float64)
    runs = {
        "gd": ("sgd", 2.0 / (big + small), None),
        "momentum": ("momentum", 1.0 / big, 0.9),
        "nesterov": ("nesterov", 1.0 / big, 0.9),
    }
    norms: dict[str, list[float]] = {}
    measured: dict[str, float] = {}
    theory: dict[str, float] = {}
    stiff: dict[str, list[float]] = {}
    for label, (name, lr, beta) in runs.items():
        hyper = {"momentum": beta} if beta is not None else None
        tr = trajectories(quad, name, start, n_rate, lr=lr, hyper=hyper)
        nrm, measured[label] = _measured_rate(tr.paths[0], n_rate)
        theory[label] = theory_rate(label, lr, beta or 0.0, eig)
        norms[label] = nrm.tolist()
        stiff[label] = tr.paths[0, :, 1].abs().tolist()  # the eigenvalue-L coordinate
        part.row(
            part="rate",
            method=label,
            setting=f"κ {kap:g}, lr {lr:.4g}" + (f", β {beta:g}" if beta else ""),
            measured=measured[label],
            theory=theory[label],
        )
        part.check(
            f"{label}: measured rate within 5 % of theory",
            abs(measured[label] - theory[label]) <= 0.05 * theory[label],
            measured[label],
            f"{theory[label]:.4f} ± 5 %",
        )
    part.check(
        "Nesterov converges faster than momentum (same lr 1/L, β 0.9)",
        measured["nesterov"] < measured["momentum"],
        f"{measured['nesterov']:.4f} < {measured['momentum']:.4f}",
        f"{theory['nesterov']:.4f} < {theory['momentum']:.4f}",
    )
    part.check(
        "both converge faster than gradient descent at its best fixed lr 2/(L+μ)",
        max(measured["nesterov"], measured["momentum"]) < measured["gd"],
        f"{max(measured['nesterov'], measured['momentum']):.4f} < {measured['gd']:.4f}",
        f"< (κ-1)/(κ+1) = {(kap - 1) / (kap + 1):.4f}",
    )
    sweep_rows = _beta_sweep(quad, start, n_rate, 1.0 / big, sw, eig)
    worst = max(
        abs(r["measured"] - r["theory"]) / r["theory"] for rs in sweep_rows.values() for r in rs
    )
    part.check(
        f"the β sweep ({len(sw)} values x 2 methods): every measured rate within 5 % of theory",
        worst <= 0.05,
        f"worst {100 * worst:.2f} %",
        "≤ 5 %",
    )
    part.data = {
        "kappa": kap,
        "eigenvalues": eig,
        "norms": norms,
        "measured": measured,
        "theory": theory,
        "stiff": stiff,
        "sweep": sweep_rows,
        "lr": {k: r[1] for k, r in runs.items()},
    }
    part.values.update(small=small, big=big)
    return part


def _beta_sweep(
    quad: Any, start: torch.Tensor, steps: int, lr: float, sweep: list[float], eig: list[float]
) -> dict[str, list[dict[str, float]]]:
    """Measured and theoretical rates over the β sweep: one batched run per method."""
    out: dict[str, list[dict[str, float]]] = {"momentum": [], "nesterov": []}
    for name in out:
        hyper = {"momentum": list(sweep) if len(sweep) > 1 else sweep[0]}
        tr = trajectories(quad, name, start, steps, lr=lr, hyper=hyper)
        for k, beta in enumerate(sweep):
            out[name].append(
                {
                    "beta": beta,
                    "measured": _measured_rate(tr.paths[k], steps)[1],
                    "theory": theory_rate(name, lr, beta, eig),
                }
            )
    return out


def _crossing(y: np.ndarray) -> tuple[float, float]:
    """The largest ``|y| / |y0|`` after the first crossing of zero, and the travel
    ``Σ|y_(t+1) - y_t| / |y0|``."""
    y0 = abs(float(y[0]))
    crossed = np.nonzero(np.sign(y[1:]) != np.sign(y[:-1]))[0]
    first = int(crossed[0]) + 1 if crossed.size else len(y)
    over = float(np.abs(y[first:]).max()) / y0 if first < len(y) else 0.0
    return over, float(np.abs(np.diff(y)).sum()) / y0


def _overshoot(v: dict[str, Any]) -> Part:
    """Part 3: gradient descent and momentum (same effective step) across the ravine."""
    part = Part("overshoot")
    rav = landscapes.get("ravine")
    lam = float(rav.params["L"])
    x0r = torch.tensor([rav.start], dtype=torch.float64)
    gd_lr, beta_r = 0.18, 0.5
    gd_travel_theory = gd_lr * lam / (1 - abs(1 - gd_lr * lam))
    ov: dict[str, dict[str, Any]] = {}
    for label, name, lr, hyper in (
        ("gd", "sgd", gd_lr, None),
        ("momentum", "momentum", gd_lr * (1 - beta_r), {"momentum": beta_r}),
    ):
        tr = trajectories(rav, name, x0r, v["ravine_steps"], lr=lr, hyper=hyper)
        over, travel = _crossing(tr.paths[0, :, 1].numpy())
        ov[label] = {
            "lr": lr,
            "beta": beta_r if hyper else 0.0,
            "path": tr.paths[0].tolist(),
            "overshoot": over,
            "travel": travel,
        }
        part.row(
            part="overshoot",
            method=label,
            setting=f"ravine, lr {lr:g}" + (f", β {beta_r:g}" if hyper else ""),
            measured=travel,
            theory=gd_travel_theory if label == "gd" else None,
        )
    part.check(
        "gradient descent's travel across the valley is ηλ / (1 - |1 - ηλ|) |y0|",
        abs(ov["gd"]["travel"] - gd_travel_theory) < 1e-6 * gd_travel_theory,
        ov["gd"]["travel"],
        gd_travel_theory,
    )
    part.check(
        "momentum (same effective step η/(1-β)) travels less across the valley",
        ov["momentum"]["travel"] < ov["gd"]["travel"],
        f"{ov['momentum']['travel']:.3g} |y0|",
        f"< {ov['gd']['travel']:.3g} |y0|",
    )
    part.check(
        "and overshoots the valley floor less far",
        ov["momentum"]["overshoot"] < ov["gd"]["overshoot"],
        f"{ov['momentum']['overshoot']:.3g} |y0|",
        f"< {ov['gd']['overshoot']:.3g} |y0|",
    )
    part.data = ov
    part.values["ravine"] = rav
    return part


def _notes(v: dict[str, Any], escape: Part, rates: Part, overshoot: Part) -> list[str]:
    well, rav, kap = escape.values["well"], overshoot.values["ravine"], v["kappa"]
    return [
        f"Escape: the double well {well.plain}, from x0 = {well.start[0]:g}, lr "
        f"{v['escape_lr']:g}, {v['escape_steps']} steps (torch's momentum form v = βv + g, "
        "x -= lr v).",
        f"Rates: the quadratic with eigenvalues {rates.values['small']:g} and "
        f"{rates.values['big']:g} (κ = {kap:g}); the rate "
        "is the per-step contraction of ‖x_t‖, fitted to the maxima of 25-step blocks over "
        "the last three quarters of the run; theory is the largest spectral radius of the "
        "per-eigenvalue recurrence. Polyak's optimally tuned heavy ball reaches "
        f"(√κ-1)/(√κ+1) = {(math.sqrt(kap) - 1) / (math.sqrt(kap) + 1):.4f} on a quadratic, "
        "faster still: Nesterov's advantage is guaranteed for every smooth convex function, "
        "heavy ball's only near a quadratic.",
        f"Overshoot: the ravine {rav.plain}; 'travel' is Σ|y_(t+1) - y_t| / |y0| across the "
        "valley, 'overshoot' the largest |y| / |y0| after the first crossing of the floor.",
    ]


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Momentum's escape from a local minimum, Nesterov's rate against momentum's, and the
    overshoot across a ravine.

    Args:
        quick: the small preset.
        seed: unused (every run is deterministic); kept for the common signature.
        escape_lr: learning rate on the double well.
        escape_steps: steps on the double well.
        betas: momentum coefficients of the escape sweep.
        kappa: condition number of the quadratic (eigenvalues ``1/κ`` and 1).
        rate_steps: steps of the rate runs.
        sweep: momentum coefficients of the rate-vs-β figure.
        ravine_steps: steps on the ravine.

    Returns:
        an :class:`ExperimentResult`; ``data`` holds the paths, norms and sweeps.
    """
    result = ExperimentResult(
        name="momentum",
        title="Momentum: escaping a local minimum, Nesterov's rate, less overshoot",
        columns=["part", "method", "setting", "measured", "theory"],
        rows=[],
    )
    with timer() as elapsed:
        escape = result.add(_escape(v))
        rates = result.add(_rates(v))
        overshoot = result.add(_overshoot(v))
        seconds = elapsed()
    notes = _notes(v, escape, rates, overshoot)
    return finish(result, quick=quick, seed=seed, options=o, seconds=seconds, notes=notes)
