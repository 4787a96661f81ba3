"""Panels of the lectures' claims, and the figures of the experiments that measure them.

Each ``*_panel(ax, data)`` draws one claim's evidence on a given axes from an experiment's
``result.data`` (plain JSON data, so a result loaded from its file redraws the same panel).
An experiment's figure (``descentlab experiment NAME``) puts its panels side by side; the
lecture book (:mod:`descentlab.book.render.pages`) draws one panel beside each claim, through
:func:`panel_figure`.

Example:
    >>> from descentlab.book import experiments as lectures
    >>> r = lectures.run("momentum", quick=True)  # doctest: +SKIP
    >>> fig = panel_figure(escape_panel, r.data)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from descentlab.book.experiments import ExperimentResult
from descentlab.book.experiments.information import entropy
from descentlab.book.experiments.momentum import theory_rate
from descentlab.problems import landscapes
from descentlab.report.figures import display_name, new_figure

__all__ = [
    "PANELS",
    "adadelta_panel",
    "adagrad_panel",
    "adam_bias_panel",
    "adam_eps_panel",
    "adaptive_figure",
    "dress_panel",
    "escape_panel",
    "genealogy_figure",
    "grid_figure",
    "momentum_figure",
    "overshoot_panel",
    "panel_figure",
    "printed_adam_panel",
    "rate_sweep_panel",
    "rates_panel",
    "small_legend",
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
    return {"gd": "GD"}.get(key) or display_name(key)


def small_legend(ax: Any, **kw: Any) -> None:
    """A legend in 8 pt on a nearly opaque box."""
    ax.legend(fontsize=8, framealpha=0.9, **kw)


def dress_panel(
    ax: Any,
    xlabel: str,
    ylabel: str,
    title: str,
    *,
    legend: Mapping[str, Any] | None = None,
    grid: Mapping[str, Any] | None = None,
) -> None:
    """A panel's axis labels, its title (10 pt), its legend and a light grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    small_legend(ax, **(legend or {}))
    ax.grid(True, **({"alpha": 0.3} if grid is None else grid))


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


def grid_figure(
    result: ExperimentResult,
    panels: Sequence[Callable[[Any, Mapping[str, Any]], None]],
    rows: int = 2,
    height: float = 9.0,
) -> tuple[Figure, list[Any]]:
    """An experiment's figure, 17 wide: ``rows`` rows of three axes, ``panels`` drawn on the
    first of them in reading order from ``result.data``, titled by ``result``; returns the
    figure and its axes in reading order (those after the panels are the caller's)."""
    fig = new_figure(17.0, height)
    axes = list(fig.subplots(rows, 3).flat)
    for ax, panel in zip(axes, panels, strict=False):
        panel(ax, result.data)
    fig.suptitle(result.title, fontsize=13)
    return fig, axes


# ------------------------------------------------------------------------------------------
# momentum


def escape_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """The double well with the paths of GD, momentum and Nesterov (x against f(x))."""
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
    dress_panel(
        ax,
        "$x$",
        "$f(x)$",
        f"From $x_0$ = 2.5, lr {e['lr']:g} (first 80 steps shown)",
        legend=dict(loc="upper center"),
    )


def escape_sweep_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Where momentum ends on the double well, against its coefficient β."""
    e = data["escape"]
    bs, fin = _a(e["betas"]), _a(e["finals"])
    ax.axhline(e["local"], color="#999999", ls=":", label=f"local minimum {e['local']:.3f}")
    ax.axhline(e["global"], color="#333333", ls="--", label=f"global minimum {e['global']:.3f}")
    ax.plot(bs, fin, "o-", color=_C["momentum"], label="momentum: final x")
    dress_panel(
        ax,
        "momentum β (β = 0 is plain gradient descent)",
        "final $x$",
        "How much momentum it takes to roll over the barrier",
    )


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
    dress_panel(
        ax,
        "step $t$",
        r"$\|x_t - x^\star\|$ (dashed: theory $\rho^t$)",
        f"Quadratic, κ = {r['kappa']:g}: rate per step",
        legend=dict(loc="lower left"),
        grid=dict(which="major", alpha=0.3),
    )


def rate_sweep_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Rate against β for momentum and Nesterov (lr 1/L): theory curves, measured dots."""
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
    dress_panel(
        ax, "momentum β (lr = 1/L)", "rate ρ (smaller is faster)", "Nesterov is faster for β ≳ 0.85"
    )


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
    dress_panel(
        ax,
        "step $t$",
        "$y_t$ (across the ravine; 0 = floor)",
        "Same effective step lr/(1-β): momentum damps the zig-zag",
        legend=dict(loc="lower right"),
    )


def momentum_figure(result: ExperimentResult) -> Figure:
    """The ``momentum`` experiment: escape, escape vs β, rates, rate vs β, overshoot."""
    panels = (escape_panel, escape_sweep_panel, overshoot_panel, rates_panel, rate_sweep_panel)
    fig, axes = grid_figure(result, panels)
    ax = axes[5]
    r = result.data["rates"]
    for key in ("momentum", "nesterov"):
        ax.semilogy(_a(r["stiff"][key])[:60] + 1e-18, color=_C[key], label=_name(key))
    dress_panel(
        ax,
        "step $t$",
        "|steep coordinate| (eigenvalue L)",
        "The lookahead kills the steep mode at once",
    )
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
    dress_panel(
        ax,
        "step $t$",
        "effective step size (median over weights)",
        f"Same lr {st['lr']:g}: AdaGrad's step keeps shrinking",
        grid=dict(which="both", alpha=0.25),
    )


def adagrad_loss_panel(ax: Any, data: Mapping[str, Any]) -> None:
    st = data["stall"]
    for key in ("adagrad", "rmsprop"):
        ax.loglog(st[key]["steps"], st[key]["loss"], color=_C[key], lw=1.8, label=_name(key))
    dress_panel(
        ax,
        "step $t$",
        "training loss (all training data)",
        "…so its progress slows down",
        grid=dict(which="both", alpha=0.25),
    )


def adadelta_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """Adadelta's distance to the minimum in different units, rescaled back: one curve with
    units-aware eps, one per unit with torch's single eps."""
    ad = data["adadelta"]
    star = np.array([2.0, 2.0])
    ref = np.linalg.norm(_a(ad["path"]) - star, axis=1)
    ax.semilogy(
        ref,
        "-",
        color=_C["adadelta"],
        lw=6,
        alpha=0.35,
        label="units-aware ε: all five units 10^k (identical)",
    )
    for i, k in enumerate(ad["units"]):
        paths = ad["paths_single_eps"]
        p = _a(paths[str(k)] if str(k) in paths else paths[k])
        ax.semilogy(
            np.linalg.norm(p - star, axis=1),
            "--",
            lw=1.2,
            color=f"C{i}",
            label=f"torch's one ε, units 10^{k}",
        )
    dress_panel(
        ax,
        "step $t$",
        "distance to the minimum (in units 1)",
        "Adadelta at lr = 1 on $3(x-2)^2 + (y-2)^2$ in units $10^k$",
        legend=dict(loc="lower left"),
        grid=dict(which="major", alpha=0.3),
    )


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
    dress_panel(
        ax,
        "step $t$",
        "step size / lr",
        "The first steps without bias correction are several lr",
        grid=dict(which="both", alpha=0.25),
    )


def adam_eps_panel(ax: Any, data: Mapping[str, Any]) -> None:
    ad = data["adam"]
    g = _a(ad["grads"])
    for key, c in (("1e-08", "#0072B2"), ("1e-07", "#D55E00")):
        ax.semilogx(g, ad["first_step"][key], "o-", ms=3, color=c, label=f"ε = {key}")
    ax.axvline(1e-7, color="#999999", ls=":")
    dress_panel(
        ax, "gradient size |g|", "first step / lr", "ε = 1e-7 vs 1e-8: different only where |g| ~ ε"
    )


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
    panels = (adagrad_panel, adagrad_loss_panel, adadelta_panel, adam_bias_panel)
    return grid_figure(result, (*panels, adam_eps_panel, printed_adam_panel))[0]


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


# ------------------------------------------------------------------------------------------
# convolution


def continuous_conv_panel(ax: Any, data: Mapping[str, Any]) -> None:
    c = data["continuous"]
    t = _a(c["t"])
    ax.plot(t, c["triangle"], color="#333333", lw=4, alpha=0.3, label="closed form: triangle")
    ax.plot(t, c["first"], "o", ms=4, color="#0072B2", label=r"$\int f(\tau) g(t-\tau) d\tau$")
    ax.plot(t, c["second"], "x", ms=6, color="#009E73", label=r"$\int f(t-\tau) g(\tau) d\tau$")
    ax.plot(t, c["typo"], "--", color="#D55E00", label=r"as printed: $\int f(t-\tau) g(t) d\tau$")
    dress_panel(
        ax,
        "$t$",
        "$(f * g)(t)$",
        "Continuous: two unit boxes (quadrature)",
        legend=dict(loc="upper right"),
    )


def discrete_conv_panel(ax: Any, data: Mapping[str, Any]) -> None:
    d = data["discrete"]
    t = np.arange(len(d["definition"]))
    ax.plot(t, d["definition"], "o-", color="#0072B2", lw=2, label=r"$\sum_i f(i) g(t-i)$")
    ax.plot(t, d["torch_flipped"], "x", ms=8, color="#009E73", label="torch conv1d, kernel flipped")
    ax.plot(
        t,
        d["torch_plain"],
        "s--",
        ms=3,
        color="#D55E00",
        label="torch conv1d as is (cross-correlation)",
    )
    dress_panel(ax, "$t$", "$(f * g)(t)$", f"Discrete: kernel g = {d['g']}")


def conv2d_panel(ax: Any, data: Mapping[str, Any]) -> None:
    d = data["image2d"]
    a, b = _a(d["definition"]), _a(d["torch_plain"])
    m = max(np.abs(a).max(), np.abs(b).max())
    ax.imshow(np.hstack([a, np.full((a.shape[0], 1), np.nan), b]), cmap="RdBu_r", vmin=-m, vmax=m)
    ax.set_title("2-D: definition (left) vs conv2d without the flip (right)", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def params_panel(ax: Any, data: Mapping[str, Any]) -> None:
    """AlexNet's parameters per layer (log scale), the lecture's numbers above the bars."""
    rows = data["arith"]["alexnet"]
    names = [r["layer"] for r in rows]
    w = [r["weights"] for r in rows]
    colors = ["#0072B2" if r["kind"] == "conv" else "#D55E00" for r in rows]
    ax.bar(names, w, color=colors)
    ax.set_yscale("log")
    for i, r in enumerate(rows):
        ax.text(
            i,
            r["weights"] * 1.3,
            f"{r['weights']:,}\n(lecture {r['lecture']})",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    fc = sum(r["weights"] for r in rows if r["kind"] == "fc")
    ax.set_ylim(1e4, 3e9)
    ax.set_ylabel("weights (log scale)")
    ax.set_title(
        f"AlexNet: the dense layers hold {100 * fc / sum(w):.1f} % of the weights "
        "(blue conv, orange dense)",
        fontsize=10,
    )
    ax.grid(True, axis="y", alpha=0.3)


def inception_panel(ax: Any, data: Mapping[str, Any]) -> None:
    ar = data["arith"]
    for k, (key, label, color) in enumerate(
        (
            ("naive", "without 1x1 reductions", "#D55E00"),
            ("inception", "GoogLeNet (1x1 reductions)", "#0072B2"),
        )
    ):
        rows = [r for r in ar[key] if r["layer"] != "concat"]
        per_branch: dict[str, int] = {}
        for r in rows:
            per_branch[r["branch"]] = per_branch.get(r["branch"], 0) + r["weights"]
        xs = np.arange(len(per_branch)) + (k - 0.5) * 0.38
        total = next(r for r in ar[key] if r["layer"] == "concat")
        ax.bar(
            xs,
            list(per_branch.values()),
            width=0.38,
            color=color,
            label=f"{label}: {total['weights']:,} weights, {total['out_ch']} channels out",
        )
        ax.set_xticks(np.arange(len(per_branch)), [f"{b} branch" for b in per_branch])
    b = ar["bottleneck"]
    ax.set_ylabel("weights")
    ax.set_title(
        f"Inception (3a), 28x28x192 in; a 1x1 bottleneck alone: {b['direct']:,} → "
        f"{b['bottleneck']:,}",
        fontsize=10,
    )
    small_legend(ax)
    ax.grid(True, axis="y", alpha=0.3)


def convolution_figure(result: ExperimentResult) -> Figure:
    panels = (continuous_conv_panel, discrete_conv_panel, conv2d_panel, params_panel)
    fig, axes = grid_figure(result, (*panels, inception_panel))
    axes[5].axis("off")
    axes[5].text(
        0,
        0.5,
        "\n".join(f"{result.mark(t)} {t}"[:70] for t in list(result.checks)[:14]),
        fontsize=7.5,
        va="center",
        family="DejaVu Sans",
    )
    return fig


# ------------------------------------------------------------------------------------------
# information, closed form, mini-batches


def entropy_panel(ax: Any, data: Mapping[str, Any]) -> None:
    b = data["binary"]
    ax.plot(b["p"], b["h"], color="#0072B2", lw=2, label="coin: H(p, 1-p)")
    ax.plot(0.5, 1.0, "o", color="#0072B2", mec="black", label="fair coin: 1 bit")
    cases = data["cases"]
    die = cases["die with five 1s and one 6 (5/6, 1/6)"]

    ax.plot(
        5 / 6,
        entropy(die),
        "s",
        color="#D55E00",
        mec="black",
        label=f"die with five 1s: {entropy(die):.2f} bits",
    )
    ax.axhline(np.log2(6), color="#009E73", ls="--", label=f"fair die: log2 6 = {np.log2(6):.2f}")
    ax.set_xlabel("P(heads) / P(1)")
    ax.set_ylabel("entropy (bits)")
    ax.set_ylim(0, 2.8)
    ax.set_title("Entropy: the fair coin is the most uncertain", fontsize=10)
    small_legend(ax)
    ax.grid(True, alpha=0.3)


def cross_entropy_panel(ax: Any, data: Mapping[str, Any]) -> None:
    c = data["ce_curve"]
    ax.plot(c["q1"], c["ce"], color="#0072B2", lw=2, label="H(P, Q), P = (0.7, 0.2, 0.1)")
    ax.axhline(c["h"], color="#D55E00", ls="--", label=f"H(P) = {c['h']:.3f} bits")
    ax.axvline(0.7, color="#999999", ls=":")
    dress_panel(
        ax,
        "Q = (q1, 2(1-q1)/3, (1-q1)/3)",
        "bits",
        "Cross-entropy = H(P) + KL(P‖Q) ≥ H(P), equal at Q = P",
    )


def information_figure(result: ExperimentResult) -> Figure:
    fig, axes = grid_figure(result, (entropy_panel, cross_entropy_panel), rows=1, height=4.8)
    rows = result.rows
    axes[2].barh(
        [r["distribution"] for r in rows], [r["entropy_bits"] for r in rows], color="#0072B2"
    )
    axes[2].set_xlabel("entropy (bits)")
    axes[2].set_title("The lecture's examples", fontsize=10)
    return fig


def normal_equations_panel(ax: Any, data: Mapping[str, Any]) -> None:
    ne = data["normal_equations"]
    e = _a(ne["errors"])
    t = np.arange(len(e))
    ax.semilogy(t, e, color="#0072B2", lw=2, label="gradient descent: |w_t - w_normal eq.|")
    ax.semilogy(
        t,
        e[0] * ne["theory"] ** t,
        "--",
        color="#333333",
        label=f"theory ((κ-1)/(κ+1))^t = {ne['theory']:.4f}^t",
    )
    dress_panel(
        ax,
        "step $t$",
        "distance to the closed-form solution",
        f"Least squares: one solve vs {len(e) - 1} steps (κ = {ne['kappa']:.0f})",
        grid=dict(which="major", alpha=0.3),
    )


def hessian_cost_panel(ax: Any, data: Mapping[str, Any]) -> None:
    c = data["cost"]
    labels = {
        "hessian": "form XᵀX and solve (n p² + p³)",
        "hvp": "Hessian-vector product (n p)",
        "gradient": "gradient (n p)",
    }
    for key, color in (("hessian", "#D55E00"), ("hvp", "#009E73"), ("gradient", "#0072B2")):
        ax.loglog(
            c["sizes"],
            c["flops"][key],
            "o-",
            color=color,
            label=f"{labels[key]}: slope {c['slopes'][key]:.2f}",
        )
    dress_panel(
        ax,
        "parameters p",
        "floating-point operations (counted)",
        f"Cost against p (n = {c['n']})",
        grid=dict(which="both", alpha=0.25),
    )


def four_ways_panel(ax: Any, data: Mapping[str, Any]) -> None:
    xs = np.linspace(-0.5, 4.5, 200)
    ax.plot(xs, xs**2 - 4 * xs + 6, color="#7A8FA6", lw=2, label="$x^2 - 4x + 6 = (x-2)^2 + 2$")
    p = _a(data["four_ways"]["gd_path"])
    ax.plot(p, p**2 - 4 * p + 6, "o:", color="#D55E00", ms=4, label="4. gradient descent, lr 0.2")
    ax.plot(
        2, 2, "*", ms=16, color="gold", mec="black", label="1.-3. vertex / f' = 0 / grid: (2, 2)"
    )
    dress_panel(ax, "$x$", "$f(x)$", "Four ways to the same minimum")


def closed_form_figure(result: ExperimentResult) -> Figure:
    panels = (four_ways_panel, normal_equations_panel, hessian_cost_panel)
    return grid_figure(result, panels, rows=1, height=4.8)[0]


def minibatch_panel(ax: Any, data: Mapping[str, Any]) -> None:
    b = _a(data["batches"])
    ax.loglog(
        b,
        data["variance"],
        "o",
        ms=7,
        color="#0072B2",
        label=f"with replacement: slope {data['slope']:.3f}",
    )
    ax.loglog(b, data["trace"] / b, "-", color="#0072B2", lw=1, label="tr(Σ)/B")
    ax.loglog(
        b,
        data["variance_no_replacement"],
        "s",
        ms=5,
        color="#D55E00",
        label="without replacement (one epoch's batches)",
    )
    n = data["n"]
    ax.loglog(
        b,
        data["trace"] / b * (n - b) / (n - 1),
        "--",
        color="#D55E00",
        lw=1,
        label="tr(Σ)/B · (N-B)/(N-1)",
    )
    dress_panel(
        ax,
        "batch size B",
        r"$E\|g_B - \nabla L\|^2$",
        "Mini-batch gradient variance falls like 1/B",
        grid=dict(which="both", alpha=0.25),
    )


def minibatch_figure(result: ExperimentResult) -> Figure:
    fig, axes = grid_figure(result, (minibatch_panel,), rows=1, height=4.8)
    d = result.data
    b = _a(d["batches"])
    axes[1].semilogx(
        b, _a(d["variance"]) * b / d["trace"], "o-", color="#0072B2", label="B · variance / tr(Σ)"
    )
    axes[1].axhline(1.0, color="#333333", ls="--")
    axes[1].set_ylim(0, 1.5)
    axes[1].set_xlabel("batch size B")
    axes[1].set_title("Measured over theory (1 = exact)", fontsize=10)
    small_legend(axes[1])
    axes[2].semilogx(b, np.sqrt(_a(d["variance"])), "o-", color="#009E73")
    axes[2].set_xlabel("batch size B")
    axes[2].set_ylabel("gradient noise (std)")
    axes[2].set_title("Noise ∝ 1/√B: 4x the batch halves it", fontsize=10)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.25)
    return fig


PANELS.update(
    {
        "continuous_conv": ("convolution", continuous_conv_panel),
        "discrete_conv": ("convolution", discrete_conv_panel),
        "conv2d": ("convolution", conv2d_panel),
        "params": ("convolution", params_panel),
        "inception": ("convolution", inception_panel),
        "entropy": ("information", entropy_panel),
        "cross_entropy": ("information", cross_entropy_panel),
        "four_ways": ("closed_form", four_ways_panel),
        "normal_equations": ("closed_form", normal_equations_panel),
        "hessian_cost": ("closed_form", hessian_cost_panel),
        "minibatch": ("minibatch", minibatch_panel),
    }
)


def genealogy_figure(rows: list[dict[str, Any]], title: str) -> Figure:
    """The lectures' optimizer genealogy: one box per optimizer (name, year, what it adds),
    placed by generation (column) and lineage (row), an arrow from each parent.

    Args:
        rows: ``{"name", "year", "parents": [names], "adds", "col", "row"}`` per optimizer.
        title: the figure's title.
    """
    ncol = max(r["col"] for r in rows) + 1
    nrow = max(r["row"] for r in rows) + 1
    fig = new_figure(11.5, 1.35 * nrow + 1.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(-0.05, ncol - 0.05)
    ax.set_ylim(nrow - 0.45, -0.6)
    ax.axis("off")
    pos = {r["name"]: (r["col"], r["row"]) for r in rows}
    boxes = {}
    for r in rows:
        x, y = pos[r["name"]]
        boxes[r["name"]] = ax.text(
            x + 0.02, y, f"{r['name']} ({r['year']})\n{r['adds']}", va="center", ha="left",
            fontsize=10,
            bbox={"boxstyle": "round,pad=0.35", "fc": r.get("color", "#eef2f7"), "ec": "#9aa5b1"},
        )  # fmt: skip
    fig.canvas.draw()  # lays out the boxes, so their edges are known
    renderer = fig.canvas.get_renderer()
    inv = ax.transData.inverted()
    edges = {}
    for name, t in boxes.items():  # each box's left and right edge in data coordinates
        ext = t.get_bbox_patch().get_window_extent(renderer)
        (x0, _), (x1, _) = inv.transform([(ext.x0, ext.y0), (ext.x1, ext.y1)])
        edges[name] = (x0, x1)
    for r in rows:
        for parent in r["parents"]:
            (_, y0), (_, y1) = pos[parent], pos[r["name"]]
            ax.annotate(
                "", xy=(edges[r["name"]][0], y1), xytext=(edges[parent][1], y0),
                arrowprops={"arrowstyle": "-|>", "color": "#5b6673", "lw": 1.2,
                            "shrinkA": 1, "shrinkB": 1},
            )  # fmt: skip
    ax.set_title(title, fontsize=11)
    return fig
