"""Panels of the lectures' claims, and the figures of the experiments that measure them.

Each ``*_panel(ax, data)`` draws one claim's evidence on a given axes from an experiment's
``result.data`` (plain JSON data, so a result loaded from its file redraws the same panel).
An experiment's figure (``descentlab experiment NAME``) puts its panels side by side; the
lecture book (:mod:`descentlab.report.lecture_book`) draws one panel beside each claim, through
:func:`panel_figure`.

Example:
    >>> from descentlab.experiments import lectures
    >>> r = lectures.run("momentum", quick=True)  # doctest: +SKIP
    >>> fig = panel_figure(escape_panel, r.data)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from descentlab.experiments.lectures import ExperimentResult
from descentlab.report.figures import DISPLAY_NAMES, new_figure

__all__ = [
    "PANELS",
    "adadelta_panel",
    "adagrad_panel",
    "adam_bias_panel",
    "adam_eps_panel",
    "adaptive_figure",
    "escape_panel",
    "momentum_figure",
    "overshoot_panel",
    "panel_figure",
    "printed_adam_panel",
    "rate_sweep_panel",
    "rates_panel",
]

_C = {
    "sgd": "#D62728",
    "gd": "#D62728",
    "momentum": "#0072B2",
    "nesterov": "#56B4E9",
    "adagrad": "#009E73",
    "rmsprop": "#E69F00",
    "adadelta": "#CC79A7",
    "adam": "#000000",
    "printed": "#D55E00",
    "corrected": "#000000",
    "uncorrected": "#D55E00",
}


def _a(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _name(key: str) -> str:
    return {"gd": "GD"}.get(key, DISPLAY_NAMES.get(key, key))


def _legend(ax: Any, **kw: Any) -> None:
    ax.legend(fontsize=8, framealpha=0.9, **kw)


def panel_figure(
    panel: Callable[[Any, Mapping[str, Any]], None],
    data: Mapping[str, Any],
    width: float = 6.4,
    height: float = 4.2,
) -> Figure:
    """One panel on its own figure (the lecture book's figure beside a claim)."""
    fig = new_figure(width, height)
    panel(fig.subplots(), data)
    return fig


# ------------------------------------------------------------------------------------------
# momentum


def escape_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """The double well with the paths of GD, momentum and Nesterov (x against f(x))."""
    from descentlab.problems import landscapes

    e = data["escape"]
    f = landscapes.get("double_well")
    xs = torch.linspace(-2.3, 2.7, 400, dtype=torch.float64)[:, None]
    with torch.no_grad():
        ax.plot(xs[:, 0], f(xs), color="#7A8FA6", lw=2, label=f.formula)
    for key in ("sgd", "momentum", "nesterov"):
        p = torch.tensor(e["paths"][key], dtype=torch.float64)[:, None]
        with torch.no_grad():
            fp = f(p)
        shown = min(len(p), 80)
        ax.plot(
            p[:shown, 0],
            fp[:shown],
            "o-",
            ms=3,
            lw=0.8,
            alpha=0.75,
            color=_C[key],
            label=f"{_name(key)}: ends at x = {float(p[-1, 0]):.3f}",
        )
    for pt in f.minima:
        ax.plot(pt.x[0], pt.value, "*", ms=15, color="gold", mec="black", zorder=6)
        ax.annotate(
            pt.kind,
            (pt.x[0], pt.value),
            xytext=(0, -16),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_ylim(-2.2, 4.8)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$f(x)$")
    ax.set_title(f"From $x_0$ = 2.5, lr {e['lr']:g} (first 80 steps shown)", fontsize=10)
    _legend(ax, loc="upper center")
    ax.grid(True, alpha=0.3)


def escape_sweep_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Where momentum ends on the double well, against its coefficient β."""
    e = data["escape"]
    bs, fin = _a(e["betas"]), _a(e["finals"])
    ax.axhline(e["local"], color="#999999", ls=":", label=f"local minimum {e['local']:.3f}")
    ax.axhline(e["global"], color="#333333", ls="--", label=f"global minimum {e['global']:.3f}")
    ax.plot(bs, fin, "o-", color=_C["momentum"], label="momentum: final x")
    ax.set_xlabel("momentum β (β = 0 is plain gradient descent)")
    ax.set_ylabel("final $x$")
    ax.set_title("How much momentum it takes to roll over the barrier", fontsize=10)
    _legend(ax)
    ax.grid(True, alpha=0.3)


def rates_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """‖x_t‖ of GD, momentum and Nesterov on the quadratic, with the theoretical slopes."""
    r = data["rates"]
    for key in ("gd", "momentum", "nesterov"):
        n = _a(r["norms"][key])
        t = np.arange(len(n))
        ax.semilogy(
            t,
            n,
            color=_C[key],
            lw=1.4,
            label=f"{_name(key)}: measured {r['measured'][key]:.4f}, theory {r['theory'][key]:.4f}",
        )
        ax.semilogy(t, n[0] * r["theory"][key] ** t, color=_C[key], ls="--", lw=0.9)
    ax.set_ylim(1e-16, 3)
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\|x_t - x^\star\|$ (dashed: theory $\rho^t$)")
    ax.set_title(f"Quadratic, κ = {r['kappa']:g}: rate per step", fontsize=10)
    _legend(ax, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)


def rate_sweep_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Rate against β for momentum and Nesterov (lr 1/L): theory curves, measured dots."""
    from descentlab.experiments.lectures.momentum import theory_rate

    r = data["rates"]
    grid = np.linspace(0.0, 0.985, 160)
    for key in ("momentum", "nesterov"):
        th = [theory_rate(key, r["lr"][key], b, r["eigenvalues"]) for b in grid]
        ax.plot(grid, th, color=_C[key], lw=1.5, label=f"{_name(key)}: theory")
        pts = r["sweep"][key]
        ax.plot(
            [p["beta"] for p in pts],
            [p["measured"] for p in pts],
            "o",
            color=_C[key],
            mec="black",
            label=f"{_name(key)}: measured",
        )
    ax.set_xlabel("momentum β (lr = 1/L)")
    ax.set_ylabel("rate ρ (smaller is faster)")
    ax.set_title("Nesterov is faster for β ≳ 0.85", fontsize=10)
    _legend(ax)
    ax.grid(True, alpha=0.3)


def overshoot_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """The cross-valley coordinate y_t of GD and momentum on the ravine."""
    ov = data["overshoot"]
    for key, lab in (("gd", "GD"), ("momentum", "Momentum")):
        p = _a(ov[key]["path"])
        ax.plot(
            p[:30, 1],
            "o-" if key == "gd" else "s-",
            ms=3,
            lw=1,
            color=_C[key],
            label=f"{lab}, lr {ov[key]['lr']:g}, β {ov[key].get('beta', 0):g}: travel "
            f"{ov[key]['travel']:.2f}|y0|, overshoot {ov[key]['overshoot']:.2f}|y0|",
        )
    ax.axhline(0, color="#333333", lw=0.8)
    ax.set_xlabel("step $t$")
    ax.set_ylabel("$y_t$ (across the ravine; 0 = floor)")
    ax.set_title("Same effective step lr/(1-β): momentum damps the zig-zag", fontsize=10)
    _legend(ax, loc="lower right")
    ax.grid(True, alpha=0.3)


def momentum_figure(result: ExperimentResult) -> Figure:
    """The ``momentum`` experiment: escape, escape vs β, rates, rate vs β, overshoot."""
    fig = new_figure(17.0, 9.0)
    axes = fig.subplots(2, 3)
    escape_panel(axes[0, 0], result.data)
    escape_sweep_panel(axes[0, 1], result.data)
    overshoot_panel(axes[0, 2], result.data)
    rates_panel(axes[1, 0], result.data)
    rate_sweep_panel(axes[1, 1], result.data)
    ax = axes[1, 2]
    r = result.data["rates"]
    for key in ("momentum", "nesterov"):
        ax.semilogy(_a(r["stiff"][key])[:60] + 1e-18, color=_C[key], label=_name(key))
    ax.set_xlabel("step $t$")
    ax.set_ylabel("|steep coordinate| (eigenvalue L)")
    ax.set_title("The lookahead kills the steep mode at once", fontsize=10)
    _legend(ax)
    ax.grid(True, alpha=0.3)
    fig.suptitle(result.title, fontsize=13)
    return fig


# ------------------------------------------------------------------------------------------
# adaptive learning rates


def adagrad_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Effective step size of AdaGrad and RMSProp against the step (log-log)."""
    st = data["stall"]
    for key in ("adagrad", "rmsprop"):
        ax.loglog(
            st[key]["steps"],
            st[key]["effective"],
            color=_C[key],
            lw=1.8,
            label=f"{_name(key)}: lr / (√r + ε)",
        )
    s = _a(st["adagrad"]["steps"])
    e0 = st["adagrad"]["effective"][0]
    ax.loglog(s, e0 / np.sqrt(s), color="#888888", ls=":", label=r"$\propto t^{-1/2}$")
    ax.set_xlabel("step $t$")
    ax.set_ylabel("effective step size (median over weights)")
    ax.set_title(f"Same lr {st['lr']:g}: AdaGrad's step keeps shrinking", fontsize=10)
    _legend(ax)
    ax.grid(True, which="both", alpha=0.25)


def adagrad_loss_panel(ax: Any, data: Mapping[str, Any]) -> None:
    st = data["stall"]
    for key in ("adagrad", "rmsprop"):
        ax.loglog(st[key]["steps"], st[key]["loss"], color=_C[key], lw=1.8, label=_name(key))
    ax.set_xlabel("step $t$")
    ax.set_ylabel("training loss (all training data)")
    ax.set_title("…so its progress slows down", fontsize=10)
    _legend(ax)
    ax.grid(True, which="both", alpha=0.25)


def adadelta_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Adadelta's path in different units, rescaled back: one path (units-aware eps)."""
    ad = data["adadelta"]
    ref = _a(ad["path"])
    ax.plot(
        ref[:, 0],
        ref[:, 1],
        "-",
        color=_C["adadelta"],
        lw=5,
        alpha=0.35,
        label="units-aware ε: every 10^k, rescaled, on top of each other",
    )
    for i, k in enumerate(ad["units"]):
        p = _a(
            ad["paths_single_eps"][str(k)]
            if str(k) in ad["paths_single_eps"]
            else ad["paths_single_eps"][k]
        )
        ax.plot(p[:, 0], p[:, 1], "--", lw=1.1, color=f"C{i}", label=f"torch's one ε, units 10^{k}")
    ax.plot(2, 2, "*", ms=14, color="gold", mec="black")
    ax.set_xlabel("$x$ (rescaled back to units 1)")
    ax.set_ylabel("$y$")
    ax.set_title("Adadelta at lr = 1 on $3(x-2)^2 + (y-2)^2$ in units $10^k$", fontsize=10)
    _legend(ax, loc="best")
    ax.grid(True, alpha=0.3)


def adam_bias_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Adam's step sizes with and without bias correction under a constant gradient."""
    ad = data["adam"]
    t = np.arange(1, len(ad["sizes"]["corrected"]) + 1)
    ax.semilogx(
        t,
        ad["sizes"]["uncorrected"],
        color=_C["uncorrected"],
        lw=2,
        label="without bias correction (measured)",
    )
    ax.semilogx(
        t, ad["theory"], color="#333333", ls="--", lw=1, label=r"$(1-\beta_1^t)/\sqrt{1-\beta_2^t}$"
    )
    ax.semilogx(
        t,
        ad["sizes"]["corrected"],
        color=_C["corrected"],
        lw=2,
        label="with bias correction (measured)",
    )
    ax.set_xlabel("step $t$")
    ax.set_ylabel("step size / lr")
    ax.set_title("The first steps without bias correction are several lr", fontsize=10)
    _legend(ax)
    ax.grid(True, which="both", alpha=0.25)


def adam_eps_panel(ax: Any, data: Mapping[str, Any]) -> None:
    ad = data["adam"]
    g = _a(ad["grads"])
    for key, c in (("1e-08", "#0072B2"), ("1e-07", "#D55E00")):
        ax.semilogx(g, ad["first_step"][key], "o-", ms=3, color=c, label=f"ε = {key}")
    ax.axvline(1e-7, color="#999999", ls=":")
    ax.set_xlabel("gradient size |g|")
    ax.set_ylabel("first step / lr")
    ax.set_title("ε = 1e-7 vs 1e-8: different only where |g| ~ ε", fontsize=10)
    _legend(ax)
    ax.grid(True, alpha=0.3)


def printed_adam_panel(ax: Any, data: Mapping[str, Any]) -> None:
    pr = data["printed"]
    d = _a(pr["distance"])
    ax.semilogy(np.arange(len(d)), d + 1e-18, "o-", ms=3, color=_C["printed"])
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\|\theta_{printed} - \theta_{Adam}\|$")
    ax.set_title("Algorithm 5-5 as printed vs Adam (Rosenbrock, lr 0.1)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)


def adaptive_figure(result: ExperimentResult) -> Figure:
    """The ``adaptive`` experiment: AdaGrad vs RMSProp, Adadelta's units, Adam's first steps
    and eps, Algorithm 5-5 as printed."""
    fig = new_figure(17.0, 9.0)
    axes = fig.subplots(2, 3)
    adagrad_panel(axes[0, 0], result.data)
    adagrad_loss_panel(axes[0, 1], result.data)
    adadelta_panel(axes[0, 2], result.data)
    adam_bias_panel(axes[1, 0], result.data)
    adam_eps_panel(axes[1, 1], result.data)
    printed_adam_panel(axes[1, 2], result.data)
    fig.suptitle(result.title, fontsize=13)
    return fig


#: panel name -> (experiment, panel function): what the lecture book draws beside a claim.
PANELS: dict[str, tuple[str, Callable[[Any, Mapping[str, Any]], None]]] = {
    "escape": ("momentum", escape_panel),
    "escape_sweep": ("momentum", escape_sweep_panel),
    "rates": ("momentum", rates_panel),
    "rate_sweep": ("momentum", rate_sweep_panel),
    "overshoot": ("momentum", overshoot_panel),
    "adagrad": ("adaptive", adagrad_panel),
    "adagrad_loss": ("adaptive", adagrad_loss_panel),
    "adadelta": ("adaptive", adadelta_panel),
    "adam_bias": ("adaptive", adam_bias_panel),
    "adam_eps": ("adaptive", adam_eps_panel),
    "printed_adam": ("adaptive", printed_adam_panel),
}
