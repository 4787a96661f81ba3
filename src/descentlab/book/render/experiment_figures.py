"""Figures of the lectures' experiments, and writing an experiment's outputs.

One function per experiment of :mod:`descentlab.book.experiments` turns its
:class:`~descentlab.book.experiments.ExperimentResult` into a
:class:`matplotlib.figure.Figure` on the Agg canvas (no pyplot state). They read only
``result.data``, so a result loaded back from its JSON file (:meth:`ExperimentResult.load`)
redraws the same figures. :func:`write` saves the figures as PNG next to the result's JSON and
Markdown. Running the experiment is the experiments layer's work (``descentlab experiment NAME``
runs it, then hands the result to :func:`write`).

Example:
    >>> from descentlab.book import experiments as lectures
    >>> from descentlab.book.render import experiment_figures as EF
    >>> result = lectures.run("bias_variance", quick=True)
    >>> sorted(EF.figures(result))
    ['bias_variance']
    >>> paths = EF.write(result, "figures/")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from descentlab._files import make_dirs
from descentlab.book.experiments import NAMES, ExperimentResult
from descentlab.book.experiments.bias_variance import FORMULAS
from descentlab.book.render.claim_panels import (
    adaptive_figure,
    closed_form_figure,
    convolution_figure,
    dress_panel,
    information_figure,
    minibatch_figure,
    momentum_figure,
    small_legend,
)
from descentlab.book.series import WORDS
from descentlab.report.figures import new_figure, save

__all__ = [
    "FIGURES",
    "bias_variance_figure",
    "ensembles_figure",
    "figures",
    "find_results",
    "momentum_forms_figure",
    "regularization_figure",
    "schedules_figure",
    "sharpness_figure",
    "write",
]

_BLUE, _RED, _GREEN, _ORANGE, _PURPLE, _GREY = (
    "#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#555555",
)  # fmt: skip
_PALETTE = ["#000000", "#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9",
            "#8C564B", "#7F7F7F", "#BCBD22", "#9467BD", "#17BECF", "#E377C2"]  # fmt: skip


def _a(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _mean_curve(runs: list[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of a metric series, on the steps all seeds reached."""
    n = min(len(r[key]["steps"]) for r in runs)
    steps = _a(runs[0][key]["steps"])[:n]
    values = np.mean([_a(r[key]["values"])[:n] for r in runs], axis=0)
    return steps, values


# ------------------------------------------------------------------------------------------
# sharpness


def sharpness_figure(result: ExperimentResult) -> Figure:
    """Loss between and around the small- and large-batch minima, and their sharpness."""
    d, cfg = result.data, result.config
    fig = new_figure(16, 4.8)
    ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[1.15, 1.0, 1.0])
    small = result.row(batch="small")
    large = result.row(batch="large")
    lab = {
        "small": f"small batch ({small['batch_size']})",
        "large": f"large batch ({large['batch_size']})",
    }

    _segment_panel(ax1, d)
    _directions_panel(ax2, d, cfg, lab)
    _sharpness_bars(ax3, d, cfg)
    hidden = cfg["hidden"] if isinstance(cfg["hidden"], list) else [cfg["hidden"]]
    return _titled(
        fig,
        f"Batch size and sharp minima on {cfg['problem']} (fully connected "
        f"{'x'.join(map(str, hidden))}, {cfg['optimizer']} lr {cfg['lr']:g}, "
        f"{cfg['n_train']} training examples)",
    )


def _segment_panel(ax1: Any, d: dict[str, Any]) -> None:
    """(a) Keskar's figure 3: the segment between the minima."""
    alphas = _a(d["alphas"])
    interp = d["interpolation"]
    for key, style, name in (("train", "-", "train"), ("test", "--", "test")):
        loss = np.mean([_a(r[f"{key}_loss"]) for r in interp], axis=0)
        ax1.semilogy(alphas, loss, style, color=_BLUE, lw=2, label=f"{name} loss")
    ax1b = ax1.twinx()
    for key, style, name in (("train", "-", "train"), ("test", "--", "test")):
        acc = np.mean([_a(r[f"{key}_acc"]) for r in interp], axis=0)
        ax1b.plot(alphas, 100 * acc, style, color=_RED, lw=1.4, label=f"{name} accuracy")
    ax1b.set_ylabel("accuracy (%)", color=_RED)
    ax1b.tick_params(axis="y", colors=_RED)
    ax1b.set_ylim(0, 105)
    for a in (0.0, 1.0):
        ax1.axvline(a, color=_GREY, lw=0.8, ls=":")
    ax1.set_xticks([-0.5, 0.0, 0.5, 1.0, 1.5],
                   ["-0.5", "0\nsmall-batch\nminimum", "0.5", "1\nlarge-batch\nminimum", "1.5"],
                   fontsize=8)  # fmt: skip
    ax1.set_xlabel(r"$\alpha$ in $(1-\alpha)\,x_{small} + \alpha\,x_{large}$")
    ax1.set_ylabel("cross-entropy (log scale)", color=_BLUE)
    ax1.tick_params(axis="y", colors=_BLUE)
    ax1.set_title("Loss along the segment between the minima\n(Keskar et al., fig. 3)",
                  fontsize=10)  # fmt: skip
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax1b.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower center", framealpha=0.9)
    ax1.grid(True, alpha=0.25)


def _directions_panel(
    ax2: Any, d: dict[str, Any], cfg: dict[str, Any], lab: dict[str, str]
) -> None:
    """(b) random layer-normalized directions around each minimum."""
    ts = _a(d["perturbation_t"])
    for key, color in (("small", _BLUE), ("large", _RED)):
        curves = np.concatenate([_a(c) for c in d["perturbation"][key]], axis=0)
        mean = curves.mean(0)
        ax2.fill_between(ts, curves.min(0), curves.max(0), color=color, alpha=0.15)
        ax2.semilogy(ts, mean, color=color, lw=2, label=lab[key])
    ax2.set_xlabel("relative perturbation t  (each layer moved by t x its norm)")
    ax2.set_ylabel("training loss (log scale)")
    n_dirs = len(d["perturbation"]["small"][0])
    ax2.set_title(f"Loss along random directions around each minimum\n(mean and range over "
                  f"{n_dirs} directions x {cfg['seeds']} seed(s))", fontsize=10)  # fmt: skip
    small_legend(ax2, loc="upper center")
    ax2.grid(True, which="both", alpha=0.25)


def _sharpness_bars(ax3: Any, d: dict[str, Any], cfg: dict[str, Any]) -> None:
    """(c) the sharpness measures: each batch size's mean with its t interval over seeds."""
    stats = d["stats"]
    keys = [k for k in stats if k.startswith("sharp_")]
    sizes = [b["batch_size"] for b in stats[keys[0]]["by_batch"]]
    colors = [_BLUE, _GREEN, _ORANGE, _PURPLE, _GREY, "#56B4E9"]
    x = np.arange(len(keys))
    w = 0.8 / len(sizes)
    for j, bsz in enumerate(sizes):
        rows = [stats[k]["by_batch"][j] for k in keys]
        means, lo, hi = (_a([np.nan if r[c] is None else r[c] for r in rows])
                         for c in ("mean", "lo", "hi"))  # fmt: skip
        # no interval (one seed: saved to JSON as None): the bar alone
        lo, hi = np.where(np.isfinite(lo), lo, means), np.where(np.isfinite(hi), hi, means)
        lo = np.maximum(lo, 1e-3 * means)  # the log axis cannot show an interval below 0
        color = _RED if j == len(sizes) - 1 else colors[j % len(colors)]
        ax3.bar(x + (j - (len(sizes) - 1) / 2) * w, means, w, color=color, alpha=0.85,
                yerr=[means - lo, hi - means], capsize=2, label=f"batch {bsz}")  # fmt: skip
    ticks = []
    for k in keys:
        s = stats[k]
        where = "full space" if s["space"] == "full" else f"{s['subspace_dim']}-d subspace"
        mark = "" if s["verdict"] == "sharper" else f"\n{s['verdict'].upper()}"
        ticks.append(f"eps={s['eps']:g}\n{where}\nratio {s['ratio']:.3g}{mark}")
    ax3.set_xticks(x, ticks, fontsize=7)
    for t, k in zip(ax3.get_xticklabels(), keys, strict=True):
        if stats[k]["verdict"] != "sharper":
            t.set_color(_RED)
    ax3.set_yscale("log")
    ax3.set_ylabel(r"$\epsilon$-sharpness  $100\,(\max f - f(x)) / (1 + f(x))$")
    conf = 100 * float(stats.get("confidence", 0.95))
    ax3.set_title(
        f"Keskar's sharpness at training loss {cfg['target_loss']:g}\nmean, {conf:g} % t "
        f"interval over {cfg['seeds']} seeds; red: ratio not above 1",
        fontsize=9,
    )
    small_legend(ax3, loc="upper right")
    ax3.grid(True, axis="y", which="both", alpha=0.25)


# ------------------------------------------------------------------------------------------
# bias-variance


def bias_variance_figure(result: ExperimentResult) -> Figure:
    """Bias², variance, noise and total vs model size, and the refits of three sizes."""
    d, cfg = result.data, result.config
    fig = new_figure(16, 4.8)
    gs = fig.add_gridspec(1, 4, width_ratios=[1.5, 1, 1, 1])
    ax = fig.add_subplot(gs[0, 0])
    rows = result.rows
    size = _a([r["size"] for r in rows])
    label = d["label"]

    def positive(v: np.ndarray) -> np.ndarray:
        return np.where(v > 0, v, np.nan)  # estimates can dip below 0 when bias² ~ 0

    series = (("bias2", "bias²", _BLUE, "o"), ("variance", "variance", _RED, "s"),
              ("noise", r"noise $\sigma^2$", _GREY, None),
              ("total", "bias² + variance + noise", "#000000", "D"))  # fmt: skip
    for key, name, color, marker in series:
        ax.semilogy(size, positive(_a([r[key] for r in rows])), color=color, marker=marker,
                    ms=4, lw=2 if key != "noise" else 1.2,
                    ls="--" if key == "noise" else "-", label=name)  # fmt: skip
    ax.semilogy(size, _a([r["mse"] for r in rows]), "x", color=_ORANGE, ms=8, mew=2,
                label="measured test MSE")  # fmt: skip
    if "bias2_exact" in result.columns:
        ax.semilogy(size, positive(_a([r["bias2_exact"] for r in rows])), ":", color=_BLUE,
                    lw=1.2, label="exact bias² / variance")  # fmt: skip
        ax.semilogy(size, _a([r["variance_exact"] for r in rows]), ":", color=_RED, lw=1.2)
    best = next(r for r in rows if r["best"])
    ax.axvline(best["size"], color=_GREEN, lw=1, ls="-.")
    ax.text(best["size"], 0.35, f"best {label} {best['size']} ", color=_GREEN, fontsize=8,
            ha="right", transform=ax.get_xaxis_transform())  # fmt: skip
    finite = [v for r in rows for v in (r["bias2"], r["variance"]) if v > 0]
    ax.set_ylim(max(min(finite) / 2, 1e-5), None)
    dress_panel(
        ax,
        f"model size ({label})",
        "expected squared error (log scale)",
        f"Decomposition from {cfg['replicates']} refits per {label}",
        legend=dict(loc="lower right", ncol=2),
        grid=dict(which="both", alpha=0.25),
    )

    x = _a(d["x_grid"])
    f = _a(d["f_grid"])
    tx, ty = _a(d["train_example"]["x"]), _a(d["train_example"]["y"])
    shown = d["shown"]
    lo, hi = float(f.min()) - 1.0, float(f.max()) + 1.0
    for i, s in enumerate(shown):
        a = fig.add_subplot(gs[0, 1 + i])
        fits = d["fits"][str(s)]
        some = _a(fits["some"])
        for j, curve in enumerate(some):
            a.plot(x, curve, color=_RED, lw=0.7, alpha=0.3,
                   label=f"{len(some)} refits" if j == 0 else None)  # fmt: skip
        a.plot(x, _a(fits["mean"]), color=_BLUE, lw=2.2, label="mean fit")
        a.plot(x, f, "k--", lw=1.5, label="true f")
        a.plot(tx, ty, "o", color=_GREY, ms=3, label="one training set")
        a.set_ylim(lo, hi)
        row = next(r for r in rows if r["size"] == s)
        tag = " (best)" if row["best"] else ""
        b2 = "≈ 0" if abs(row["bias2"]) < 1e-4 else f"{row['bias2']:.2g}"
        a.set_title(f"{label} {s}{tag}: bias² {b2}, variance {row['variance']:.2g}",
                    fontsize=9)  # fmt: skip
        a.set_xlabel("x")
        if i == 0:
            a.set_ylabel("y")
            small_legend(a, loc="lower left")
        a.grid(True, alpha=0.25)

    formula = FORMULAS.get(cfg["fn"], f"{cfg['fn']}(x)")
    return _titled(
        fig,
        f"Bias-variance trade-off: y = {formula} + N(0, {cfg['noise_std']:g}²), "
        f"{cfg['n_train']} examples per training set ({cfg['design']} design, "
        f"{cfg['resample']} resampling)",
    )


# ------------------------------------------------------------------------------------------
# ensembles


def ensembles_figure(result: ExperimentResult) -> Figure:
    """Accuracy vs ensemble size, the methods' test accuracy, boosting's weak learners."""
    d, cfg = result.data, result.config
    fig = new_figure(16, 4.9)
    ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[1.1, 1.2, 0.9])
    bag = _a(d["bagging_curves"])
    n_boost = min(len(c) for c in d["boosting_curves"])
    boost = _a([c[:n_boost] for c in d["boosting_curves"]])
    n_sk = min(len(c) for c in d["sklearn_ada_staged"])
    sk = _a([c[:n_sk] for c in d["sklearn_ada_staged"]])
    acc = d["test_acc"]
    ax1.plot(np.arange(1, bag.shape[1] + 1), 100 * bag.mean(0), "o-", color=_BLUE, lw=2,
             label="bagging: average of the first b networks")  # fmt: skip
    ax1.plot(np.arange(1, n_boost + 1), 100 * boost.mean(0), "-", color=_RED, lw=2,
             label="AdaBoost.SAMME: first m weak networks")  # fmt: skip
    ax1.plot(np.arange(1, n_sk + 1), 100 * sk.mean(0), "-", color=_ORANGE, lw=1.4,
             label=f"scikit-learn AdaBoost, depth-{cfg['stump_depth']} trees")  # fmt: skip
    ax1.axhline(100 * np.mean(acc["single"]), color="#000000", ls="--", lw=1.2,
                label="single network (all data)")  # fmt: skip
    ax1.axhline(100 * np.mean(acc["weak"]), color=_RED, ls=":", lw=1.2, label="one weak network")
    ax1.set_xlabel("models in the ensemble (b or m)")
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_title(f"Test accuracy as the ensemble grows (mean of {cfg['repeats']} repeats)",
                  fontsize=10)  # fmt: skip
    ax1.set_ylim(0, 100)
    ax1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
               framealpha=0.9)  # fmt: skip
    ax1.grid(True, alpha=0.25)

    rows = result.rows[::-1]
    y = np.arange(len(rows))
    colors = [_BLUE if r["source"] == "descentlab" else
              (_ORANGE if r["source"] == "scikit-learn" else _GREEN) for r in rows]  # fmt: skip
    means = [100 * r["test_acc"] for r in rows]
    errs = [100 * (r["test_acc_std"] or 0.0) for r in rows]
    ax2.barh(y, means, xerr=errs, color=colors, alpha=0.85, capsize=3)
    for yi, r, m, e in zip(y, rows, means, errs, strict=True):
        extra = f"   var {r['pred_variance']:.1e}" if r.get("pred_variance") else ""
        ax2.text(m + e + 1, yi, f"{m:.1f} %{extra}", va="center", ha="left", fontsize=8)
    ax2.set_yticks(y, [f"{r['method']}  ({r['models']})" for r in rows], fontsize=8)
    ax2.set_xlim(0, 125)
    ax2.set_xticks(np.arange(0, 101, 20))
    ax2.set_xlabel("test accuracy (%), ± std over repeats")
    ax2.set_title("Methods (models in parentheses; var = prediction variance\nacross training "
                  "sets)", fontsize=10)  # fmt: skip

    ax2.legend(handles=[Patch(color=_BLUE, label="descentlab networks"),
                        Patch(color=_ORANGE, label="scikit-learn reference"),
                        Patch(color=_GREEN, label="our SAMME + sklearn trees")],
               fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3,
               framealpha=0.9)  # fmt: skip
    ax2.grid(True, axis="x", alpha=0.25)

    err = d["boosting_errors"][0]
    alpha = d["boosting_alphas"][0]
    m = np.arange(1, len(err) + 1)
    ax3.plot(m, err, "o-", color=_RED, ms=3, label="weighted error $e_m$")
    k = 10
    ax3.axhline(1 - 1 / k, color=_GREY, ls="--", lw=1, label="chance level 1 - 1/K")
    ax3.set_ylim(0, 1)
    ax3.set_xlabel("boosting round m")
    ax3.set_ylabel("weighted training error", color=_RED)
    ax3b = ax3.twinx()
    ax3b.plot(m, alpha, "s-", color=_BLUE, ms=3, label=r"learner weight $\alpha_m$")
    ax3b.set_ylabel(r"$\alpha_m = \log\frac{1-e_m}{e_m} + \log(K-1)$", color=_BLUE)
    h1, l1 = ax3.get_legend_handles_labels()
    h2, l2 = ax3b.get_legend_handles_labels()
    ax3.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
               ncol=2, framealpha=0.9)  # fmt: skip
    ax3.set_title("SAMME's weak networks (first repeat):\neach focuses on what the last missed",
                  fontsize=10)  # fmt: skip
    ax3.grid(True, alpha=0.25)
    return _titled(
        fig,
        f"Bagging and boosting on {cfg['problem']} ({cfg['n_train']} training examples per "
        f"repeat; networks trained by descentlab's {cfg['optimizer']})",
    )


# ------------------------------------------------------------------------------------------
# regularization


def _titled(fig: Figure, title: str) -> Figure:
    """``fig`` with its title (11 pt) over the panels."""
    fig.suptitle(title, fontsize=11)
    return fig


def _four_panels(result: ExperimentResult, column: str) -> tuple[Figure, Any, list[str], dict]:
    """A 2 x 2 figure, the names in the table's ``column`` and a colour for each."""
    fig = new_figure(15, 9.5)
    axes = fig.subplots(2, 2)
    names = [r[column] for r in result.rows]
    return fig, axes, names, {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}


def _curves_panel(
    ax: Any, curves: Mapping[str, Any], key: str, colors: Mapping[str, str], ylabel: str,
    log: bool, widths: tuple[str, float, float], dot: str | None = None,
) -> None:  # fmt: skip
    """The mean learning curve of metric ``key`` for each name of ``colors`` (``widths``: the
    name drawn bold, its line width, the others'; ``dot``: a name whose last point is marked)."""
    bold, bold_lw, lw = widths
    for n, color in colors.items():
        steps, values = _mean_curve(curves[n], key)
        ax.plot(steps, values, color=color, lw=bold_lw if n == bold else lw, label=n)
        if n == dot:
            ax.plot(steps[-1], values[-1], "o", color=color, ms=6)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.25)


def regularization_figure(result: ExperimentResult) -> Figure:
    """Learning curves of every method, and the generalization gaps."""
    d, cfg = result.data, result.config
    fig, axes, methods, colors = _four_panels(result, "method")
    for ax, key, note, log in (
        (axes[0, 0], "train/loss", " (clean data, log scale)", True),
        (axes[0, 1], "val/loss", " (log scale)", True),
        (axes[1, 0], "val/accuracy", "", False),
    ):
        _curves_panel(
            ax, d["curves"], key, colors, WORDS[key] + note, log, ("none", 2.4, 1.4),
            "early_stopping",
        )  # fmt: skip
    axes[0, 0].set_title("Training loss: regularizers keep it from collapsing to 0", fontsize=10)
    axes[0, 1].set_title("Validation loss: without regularization it climbs back (overfitting)",
                         fontsize=10)  # fmt: skip
    axes[1, 0].set_title("Validation accuracy (early stopping's dot: where it stopped)",
                         fontsize=10)  # fmt: skip
    small_legend(axes[0, 1], loc="upper right", ncol=2)
    lo = min(np.min(_mean_curve(d["curves"][m], "val/accuracy")[1][1:]) for m in methods)
    axes[1, 0].set_ylim(max(lo - 0.02, 0), 1.0)

    ax = axes[1, 1]
    y = np.arange(len(methods))
    lgap = [r["loss_gap"] for r in result.rows]
    ax.barh(y, lgap, 0.7, color=[colors[m] for m in methods], alpha=0.85)
    ax.set_yticks(y, methods)
    ax.invert_yaxis()
    ax.axvline(result.rows[0]["loss_gap"], color="#000000", ls=":", lw=1.2,
               label="no regularization")  # fmt: skip
    for yi, r, g in zip(y, result.rows, lgap, strict=True):
        ax.text(g + 0.005 * max(lgap), yi,
                f" test {100 * r['test_acc']:.1f} %, gap {100 * r['gap']:.1f} pts",
                va="center", fontsize=8)  # fmt: skip
    ax.set_xlim(0, 1.45 * max(lgap))
    ax.set_xlabel("loss gap: test - train cross-entropy (nats)")
    ax.set_title("Generalization gap per method (text: test accuracy and train - test "
                 "accuracy)", fontsize=10)  # fmt: skip
    small_legend(ax, loc="lower right")
    ax.grid(True, axis="x", alpha=0.25)
    return _titled(
        fig,
        f"Regularization on {cfg['n_train']} {cfg['problem']} examples with a wide MLP "
        f"({' x '.join(map(str, cfg['hidden']))} hidden units), Adam lr {cfg['lr']:g}, batch "
        f"{cfg['batch_size']}, mean of {cfg['seeds']} seed(s)",
    )


# ------------------------------------------------------------------------------------------
# schedules


def schedules_figure(result: ExperimentResult) -> Figure:
    """Learning-rate schedules: the rates, learning curves, and the noisy-quadratic floor."""
    d, cfg = result.data, result.config
    fig, axes, names, colors = _four_panels(result, "schedule")
    ax = axes[0, 0]
    for n in names:
        lr = _a(d["lr"][n])
        ax.plot(np.arange(lr.size), lr, color=colors[n], lw=2, label=n)
    dress_panel(
        ax,
        "step",
        "learning rate",
        "The schedules (relative to the same initial rate)",
        legend=dict(loc="upper right"),
        grid=dict(alpha=0.25),
    )
    for ax, key, note, log, title in (
        (axes[0, 1], "train/loss", " (log scale)", True,
         f"Training loss on {cfg['problem']} ({cfg['model']})"),
        (axes[1, 0], "val/accuracy", "", False,
         "Validation accuracy: the fixed rate keeps bouncing"),
    ):  # fmt: skip
        _curves_panel(ax, d["curves"], key, colors, WORDS[key] + note, log, ("constant", 2.2, 1.5))
        ax.set_title(title, fontsize=10)
    finals = [_mean_curve(d["curves"][n], "val/accuracy")[1] for n in names]
    top = max(float(np.max(v)) for v in finals)
    low = min(float(np.min(v[len(v) // 4 :])) for v in finals)
    axes[1, 0].set_ylim(max(0.0, low - 0.03), min(1.0, top + 0.02))
    small_legend(axes[1, 0], loc="lower right")

    ax = axes[1, 1]
    q = d["quadratic"]
    t = _a(q["t"])
    for n in names:
        ax.plot(t[1:], _a(q[n])[1:], color=colors[n], lw=2.2 if n == "constant" else 1.5,
                label=n)  # fmt: skip
    ax.axhline(q["floor"], color=colors["constant"], ls="--", lw=1,
               label=f"theoretical floor of the fixed rate ({q['floor']:.3g})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    st = q["settings"]
    dress_panel(
        ax,
        "step (log scale)",
        f"mean loss over {st['runs']} runs (log scale)",
        f"Noisy quadratic (the optimizer lecture): SGD lr {st['lr']:g}, gradient noise "
        f"sigma {st['sigma']:g}, d = {st['dim']}",
        legend=dict(loc="lower left"),
        grid=dict(which="both", alpha=0.25),
    )
    return _titled(
        fig,
        f"Fixed learning rate vs decay schedules ({cfg['optimizer']}, lr {cfg['lr']:g}, "
        f"batch {cfg['batch_size']}, {cfg['steps']} steps, mean of {cfg['seeds']} seed(s))",
    )


# ------------------------------------------------------------------------------------------
# momentum forms


def momentum_forms_figure(result: ExperimentResult) -> Figure:
    """Paths, parameter gap, step sizes and losses of the two momentum forms."""
    d, cfg = result.data, result.config
    fig = new_figure(15, 9.5)
    axes = fig.subplots(2, 2)
    decay = d["decay_at"]

    _ravine_paths_panel(axes, d, cfg)
    _gap_panel(axes, d, cfg, decay)
    _update_sizes_panel(axes, d, decay)
    _forms_loss_panel(axes, d, decay)
    return _titled(
        fig,
        r"Momentum with the learning rate outside the buffer (torch: $b \leftarrow \mu b + g,\ "
        r"\theta \leftarrow \theta - \eta b$) vs inside (velocity: $v \leftarrow \mu v - "
        r"\eta g,\ \theta \leftarrow \theta + v$), lr $\times$ "
        f"{cfg['gamma']:g} at step {decay}",
    )


def _ravine_paths_panel(axes: Any, d: dict[str, Any], cfg: dict[str, Any]) -> None:
    """(a) ravine paths."""
    ax = axes[0, 0]
    rv = d["ravine"]
    xs = np.linspace(-11, 2, 300)
    ys = np.linspace(-1.5, 1.5, 200)
    xx, yy = np.meshgrid(xs, ys)
    zz = 0.05 * xx**2 + 5 * yy**2
    ax.contourf(xx, yy, zz, levels=np.geomspace(0.01, 12, 20), cmap="Greys", alpha=0.35,
                extend="both")  # fmt: skip
    for form, color, style in (("torch", _BLUE, "-"), ("velocity", _RED, "--")):
        path = _a(rv[form]["path"])
        ax.plot(path[:, 0], path[:, 1], style, color=color, lw=1.6, marker="o", ms=2,
                label=f"{form} form")  # fmt: skip
        ax.plot(*path[rv["decay_at"]], "*", color=color, ms=12, mec="k")
    ax.plot([], [], "*", color="w", mec="k", ms=10, label=f"lr x {cfg['gamma']:g} at step "
            f"{rv['decay_at']}")  # fmt: skip
    ax.plot(0, 0, "x", color="k", ms=8)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(rf"Ravine $0.05x^2 + 5y^2$, $\mu$ = {rv['momentum']:g}, lr {rv['lr']:g}: "
                 "identical paths until the decay", fontsize=10)  # fmt: skip
    small_legend(ax, loc="upper right")


def _gap_panel(axes: Any, d: dict[str, Any], cfg: dict[str, Any], decay: int) -> None:
    """(b) parameter gap over time."""
    ax = axes[0, 1]
    for i, r in enumerate(d["runs"]):
        md = _a(r["max_diff"])
        color = _PALETTE[1 + i]
        name = rf"$\mu$ = {r['momentum']:g}, {r['schedule']}"
        ax.semilogy(np.arange(md.size), np.maximum(md, 1e-17), color=color, lw=1.6, label=name)
        if r["predicted"] is not None:
            pred = _a(r["predicted"])
            ax.semilogy(decay + 1 + np.arange(pred.size), pred, ":", color=color, lw=2,
                        label=rf"first-order theory, $\mu$ = {r['momentum']:g}")  # fmt: skip
    ax.axvline(decay, color=_GREY, ls="--", lw=1)
    ax.text(decay, 0.03, f" lr x {cfg['gamma']:g}", transform=ax.get_xaxis_transform(),
            color=_GREY, fontsize=8)  # fmt: skip
    dress_panel(
        ax,
        "step",
        r"max $|\theta_{torch} - \theta_{velocity}|$ over all weights (log scale)",
        "Network (float64, same batches): rounding-level equal before the decay, apart after",
        legend=dict(loc="center left"),
        grid=dict(which="both", alpha=0.25),
    )


def _update_sizes_panel(axes: Any, d: dict[str, Any], decay: int) -> None:
    """(c) update sizes around the decay."""
    ax = axes[1, 0]
    step_runs = [r for r in d["runs"] if r["schedule"] == "step"]
    lo, hi = max(0, decay - 20), decay + 120
    for i, r in enumerate(step_runs):
        color = _PALETTE[1 + i]
        for form, style in (("torch", "-"), ("velocity", "--")):
            un = _a(r["update_norm"][form])
            ax.semilogy(np.arange(un.size)[lo:hi], un[lo:hi], style, color=color, lw=1.6,
                        label=rf"{form}, $\mu$ = {r['momentum']:g}")  # fmt: skip
    ax.axvline(decay, color=_GREY, ls="--", lw=1)
    dress_panel(
        ax,
        "step",
        r"update size $\|\theta_{t+1} - \theta_t\|$ (log scale)",
        "Step sizes: torch's form drops at once, the velocity form coasts on its\n"
        r"old momentum for about $1/(1-\mu)$ steps",
        legend=dict(loc="upper right", ncol=2),
        grid=dict(which="both", alpha=0.25),
    )


def _forms_loss_panel(axes: Any, d: dict[str, Any], decay: int) -> None:
    """(d) training loss of the two forms."""
    ax = axes[1, 1]
    for i, r in enumerate(d["runs"]):
        color = _PALETTE[1 + i]
        ev = r["eval"]
        for form, style in (("torch", "-"), ("velocity", "--")):
            ax.semilogy(ev["steps"], ev["train_loss"][form], style, color=color, lw=1.6,
                        label=rf"{form}, $\mu$ = {r['momentum']:g}, {r['schedule']}")  # fmt: skip
    ax.axvline(decay, color=_GREY, ls="--", lw=1)
    dress_panel(
        ax,
        "step",
        "full-batch training loss (log scale)",
        "Outcome: training loss of both forms",
        legend=dict(loc="lower left", ncol=1),
        grid=dict(which="both", alpha=0.25),
    )


#: experiment name -> figure function.
FIGURES: dict[str, Callable[[ExperimentResult], Figure]] = {
    "sharpness": sharpness_figure,
    "bias_variance": bias_variance_figure,
    "ensembles": ensembles_figure,
    "regularization": regularization_figure,
    "schedules": schedules_figure,
    "momentum_forms": momentum_forms_figure,
    "momentum": momentum_figure,
    "adaptive": adaptive_figure,
    "convolution": convolution_figure,
    "information": information_figure,
    "closed_form": closed_form_figure,
    "minibatch": minibatch_figure,
}


def figures(result: ExperimentResult) -> dict[str, Figure]:
    """``{figure name: Figure}`` of a result (one figure per experiment, named after it).

    Raises:
        KeyError: a result of an unknown experiment.
    """
    if result.name not in FIGURES:
        raise KeyError(f"no figures for experiment {result.name!r}; known: {', '.join(FIGURES)}")
    return {result.name: FIGURES[result.name](result)}


def write(
    result: ExperimentResult, out_dir: str | os.PathLike[str], *, dpi: int = 110
) -> list[Path]:
    """Write the result's figures (PNG), then its JSON and Markdown, into ``out_dir``.

    Returns:
        the paths written: figures first, then ``<name>.json`` and ``<name>.md``.
    """
    out = Path(out_dir)
    make_dirs(out)  # (noted: a command that fails for lack of space removes it)
    paths = []
    for name, fig in figures(result).items():
        path = save(fig, out / f"{name}.png", dpi=dpi)
        result.figures[name] = path.name
        paths.append(path)
    paths.extend(result.save(out))
    return paths


def find_results(directory: str | os.PathLike[str]) -> list[ExperimentResult]:
    """The experiment results written into ``directory`` (by :func:`write`), in the lectures'
    order: every ``<name>.json`` whose name is an experiment's. For the report, which embeds
    each result's figure (``directory / result.figures[name]``) and table.

    Example:
        >>> find_results("/nonexistent")
        []
    """
    folder = Path(directory)
    out = []
    for name in NAMES:
        path = folder / f"{name}.json"
        if path.is_file():
            out.append(ExperimentResult.load(path))
    return out
