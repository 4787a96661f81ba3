"""The lectures' own figures: a descent on a curve, a surface, learning-rate sweeps, basins of
attraction, noise floors and the optimizer family tree.

Each draws on a fresh :class:`matplotlib.figure.Figure` with the Agg canvas through the
report's helpers (:mod:`descentlab.report.figures`) and returns it; the trajectories come from
:func:`descentlab.problems.trajectories.run`, so each figure is one batched computation: a
learning-rate x optimizer heat map is one run per optimizer with a vector of learning rates,
a basin map is one run over a grid of starting points.

Example:
    >>> from descentlab.book.render import lecture_plots
    >>> fig = lecture_plots.noise_floor_figure(steps=50, runs=4)
    >>> len(fig.axes) >= 1
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib import colors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Patch

from descentlab import optim
from descentlab.book import decays
from descentlab.problems import landscapes
from descentlab.problems.landscapes import Landscape
from descentlab.problems.paths import OptimizerSpec, display_name, optimizer_label
from descentlab.problems.trajectories import run
from descentlab.report.figures import (
    _draw_start,
    _grid,
    _landscape,
    _levels,
    _marker,
    new_figure,
)

__all__ = [
    "basin_figure",
    "basin_labels",
    "descent_1d_figure",
    "family_chains",
    "family_tree_figure",
    "final_loss_table",
    "lr_heatmap_figure",
    "noise_floor_figure",
    "rule_roles",
    "surface_figure",
]


def descent_1d_figure(
    landscape: Landscape | str,
    panels: Sequence[Mapping[str, Any]],
    *,
    steps: int = 6,
    shared_axes: bool = False,
    title: str | None = None,
    xlim: tuple[float, float] | None = None,
    overlay: bool = False,
) -> Figure:
    """Gradient descent on a 1-D landscape with its iterates labelled ``x_0, x_1, ...``.

    Args:
        landscape: a 1-D landscape or its name.
        panels: one dict per run, with keys ``start``, ``lr`` and optionally ``label``,
            ``optimizer`` (default ``"sgd"``) and ``note`` (a sentence under the title).
        steps: number of steps per run.
        shared_axes: share x/y limits between panels.
        title: figure title.
        xlim: x range of the curve (default: the landscape's domain, grown to the paths).
        overlay: draw every run in one panel (the gradient-descent lecture's sensitivity
            plots) instead of one panel each.
    """
    f = _landscape(landscape)
    if f.dim != 1:
        raise ValueError(f"landscape must have dimension 1, got {f.dim}")
    runs = [
        (spec, run(f, spec.get("optimizer", "sgd"), [float(spec["start"])], steps,
                   lr=float(spec["lr"]), dtype=torch.float64, bound=1e6))
        for spec in panels
    ]  # fmt: skip
    lo, hi = xlim or f.domain[0]
    for _, tr in runs:
        p = tr.paths[0, :, 0].numpy()
        p = p[np.isfinite(p)]
        lo, hi = min(lo, p.min() - 0.3), max(hi, p.max() + 0.3)
    xs = torch.linspace(lo, hi, 400, dtype=torch.float64)[:, None]
    with torch.no_grad():
        ys = f(xs).numpy()
    n = 1 if overlay else len(runs)
    fig = new_figure(4.2 * n if not overlay else 7.5, 4.3 if not overlay else 5.0)
    axes = np.atleast_1d(fig.subplots(1, n, sharex=shared_axes, sharey=shared_axes))
    for j, (spec, tr) in enumerate(runs):
        ax = axes[0 if overlay else j]
        if j == 0 or not overlay:
            _curve_with_minima(ax, f, xs, ys, lo, hi)
        _descent_run(ax, f, j, spec, tr, (hi - lo, float(np.ptp(ys))), overlay)
    if overlay:
        notes = [s["note"] for s, _ in runs if "note" in s]
        axes[0].set_title(f.formula + ("\n" + "; ".join(notes) if notes else ""), fontsize=10)
    fig.suptitle(title or f"Gradient descent on {f.formula}", fontsize=12)
    return fig


def _curve_with_minima(ax: Any, f: Landscape, xs: Any, ys: Any, lo: float, hi: float) -> None:
    """The landscape's curve and its minima in ``[lo, hi]`` (stars)."""
    ax.plot(xs[:, 0], ys, color="#7A8FA6", lw=2, zorder=1, label=f.formula)
    shown_minima = [p for p in f.minima if lo <= p.x[0] <= hi]
    for i_min, p in enumerate(shown_minima):
        name = "local minimum" if len(f.minima) > 1 else "minimum"
        ax.plot(p.x[0], p.value, marker="*", ms=16, color="gold", mec="black", zorder=2, ls="",
                label=None if i_min else name)  # fmt: skip


def _descent_run(
    ax: Any, f: Landscape, j: int, spec: Mapping[str, Any], tr: Any, spans: tuple[float, float],
    overlay: bool,
) -> None:  # fmt: skip
    """Run ``j``'s iterates on the curve, labelled ``x_k``, with the panel's labels."""
    markers = ["s", "o", "^", "D"]
    run_colors = ["#0072B2", "#D55E00", "#009E73", "#CC79A7"]
    px = tr.paths[0, :, 0].numpy()
    py = tr.losses[0].numpy()
    c = run_colors[j % len(run_colors)]
    label = spec.get("label") or f"$x_0$ = {spec['start']:g}, lr = {spec['lr']:g}"
    ax.plot(px, py, ls=":", color=c, lw=1, alpha=0.7, zorder=3)
    ax.scatter(px, py, color=c, marker=markers[j % len(markers)], s=36, zorder=4,
               edgecolor="black", linewidth=0.5, label=label)  # fmt: skip
    _label_iterates(ax, f, px, py, c, spans[0], spans[1], above=overlay and j % 2 == 1)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$f(x)$")
    ax.grid(True, alpha=0.3)
    if not overlay:
        ax.set_title(
            f"learning rate {spec['lr']:g}" + (f"\n{spec['note']}" if "note" in spec else ""),
            fontsize=10,
        )
    ax.legend(fontsize=8, loc="upper center")


def _label_iterates(ax, f: Landscape, px, py, color, xspan, yspan, above: bool = False) -> None:
    """Write ``x_k`` beside each iterate, on the outer side of the curve.

    Iterates at the same place share one label (``x_0, x_2, x_4``); a label that would sit
    on top of an earlier one is left out (its point stays visible).
    """
    groups: list[list[int]] = []
    where: list[tuple[float, float]] = []
    for k, (x, y) in enumerate(zip(px, py, strict=True)):
        if not (np.isfinite(x) and np.isfinite(y)):
            break
        same = [i for i, (a, b) in enumerate(where) if abs(a - x) <= 1e-9 * max(1.0, abs(x))]
        if same:
            groups[same[0]].append(k)
        else:
            groups.append([k])
            where.append((float(x), float(y)))
    slopes = landscapes.grad(f, torch.tensor([[w[0]] for w in where], dtype=torch.float64))
    placed: list[tuple[float, float]] = []
    for ks, (x, y), g in zip(groups, where, slopes[:, 0].tolist(), strict=True):
        near = [(x - a) ** 2 / xspan**2 + (y - b) ** 2 / max(yspan, 1e-12) ** 2 for a, b in placed]
        if near and min(near) < 0.045**2:
            continue
        shown = ks if len(ks) <= 4 else [*ks[:3], "..."]
        text = ", ".join(f"x_{{{k}}}" if k != "..." else r"\ldots" for k in shown)
        # Below the curve, on the downhill side: the outside of a valley (or mirrored above,
        # for a second run in the same panel).
        right = (g >= 0) != above
        ax.annotate(
            f"${text}$",
            (x, y),
            xytext=(7 if right else -7, 4 if above else -4),
            textcoords="offset points",
            ha="left" if right else "right",
            va="bottom" if above else "top",
            fontsize=9,
            color=color,
            zorder=5,
        )
        placed.append((x, y))


# --------------------------------------------------------------------------------------------
# the gradient-descent lecture: 3-D surface with contour


def surface_figure(
    landscape: Landscape | str,
    *,
    path_lr: float | None = None,
    steps: int = 15,
    start: Sequence[float] | None = None,
    note: str | None = None,
) -> Figure:
    """A 3-D surface of a 2-D landscape with its contour map, and a gradient-descent path.

    Left: the surface with the contour lines projected on the floor; right: the contour map
    with the negative gradient field (arrows point downhill) and the descent path.
    """
    f = _landscape(landscape)
    if f.dim != 2:
        raise ValueError(f"landscape must have dimension 2, got {f.dim}")
    gx, gy, z = _grid(f, f.domain, 80)
    fig = new_figure(12.0, 5.2)
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax2 = fig.add_subplot(1, 2, 2)
    zmin = float(z.min())
    floor = zmin - 0.35 * float(np.ptp(z))
    ax3.plot_surface(
        gx, gy, z, cmap="viridis", alpha=0.85, linewidth=0, antialiased=True, rstride=2, cstride=2
    )
    ax3.contour(gx, gy, z, levels=14, zdir="z", offset=floor, cmap="viridis", linewidths=1)
    ax3.set_zlim(floor, float(z.max()))
    # The floor only carries the projected contours: no negative loss ticks there.
    ax3.set_zticks([t for t in ax3.get_zticks() if zmin - 0.05 * np.ptp(z) <= t <= float(z.max())])
    ax3.set_xlabel("$x$")
    ax3.set_ylabel("$y$")
    ax3.set_zlabel("$f(x, y)$")
    ax3.view_init(elev=28, azim=-128)
    ax3.set_title("surface (contours projected below)", fontsize=10)

    cs = ax2.contour(gx, gy, z, levels=14, cmap="viridis", linewidths=1.2)
    ax2.clabel(cs, fontsize=7, fmt="%.3g")
    sx, sy, _ = _grid(f, f.domain, 13)
    g = landscapes.grad(f, torch.as_tensor(np.stack([sx, sy], -1), dtype=torch.float64)).numpy()
    ax2.quiver(
        sx,
        sy,
        -g[..., 0],
        -g[..., 1],
        color="#888888",
        alpha=0.6,
        width=0.003,
        label=r"$-\nabla f$ (downhill)",
    )
    tr = run(
        f, "sgd", torch.tensor(start or f.start, dtype=torch.float64), steps, lr=path_lr or f.lr
    )
    p = tr.paths[0].numpy()
    ax2.plot(
        p[:, 0],
        p[:, 1],
        "o-",
        color="#D55E00",
        ms=4,
        lw=1.5,
        label=f"gradient descent, lr = {path_lr or f.lr:g}",
    )
    _draw_start(ax2, p[0])
    for m in f.minima:
        ax2.plot(*m.x, marker="*", ms=16, color="gold", mec="black", ls="", label="minimum")
    ax2.set_xlabel("$x$")
    ax2.set_ylabel("$y$")
    ax2.set_aspect("equal")
    ax2.legend(fontsize=8, loc="upper right", framealpha=0.9)
    ax2.set_title("contour map, gradient field and descent path", fontsize=10)
    fig.suptitle(f.formula + (f"\n{note}" if note else ""), fontsize=12)
    return fig


# --------------------------------------------------------------------------------------------
# sweeps: learning rate x optimizer, basins of attraction


def final_loss_table(
    landscape: Landscape | str,
    optimizers: Sequence[OptimizerSpec],
    lrs: Sequence[float],
    *,
    steps: int = 500,
    start: Sequence[float] | None = None,
    bound: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Final loss of every (optimizer, learning rate) pair, one batched run per optimizer.

    Args:
        landscape: a landscape or its name.
        optimizers: optimizer specs (names, rules or classes).
        lrs: learning rates (one run each).
        steps: steps per run.
        start: common starting point (default: the landscape's demonstration start).
        bound: divergence box (default: 100 times the landscape's domain).

    Returns:
        ``(final, diverged)``: arrays of shape ``(len(optimizers), len(lrs))`` with
        :math:`f(x_T)` (float64; the frozen value for diverged runs) and the divergence flags.
    """
    f = _landscape(landscape)
    lr_t = torch.tensor([float(v) for v in lrs], dtype=torch.float64)
    start_t = torch.tensor(start or f.start, dtype=torch.float64)
    if bound is None:
        bound = 100 * max(max(abs(lo), abs(hi)) for lo, hi in f.domain)
    final = np.full((len(optimizers), len(lrs)), np.nan)
    div = np.zeros_like(final, dtype=bool)
    for i, name in enumerate(optimizers):
        tr = run(f, name, start_t, steps, lr=lr_t, bound=bound)
        final[i] = tr.losses[:, -1].numpy()
        div[i] = tr.diverged.numpy()
    return final, div


def lr_heatmap_figure(
    landscape: Landscape | str,
    optimizers: Sequence[str],
    lrs: Sequence[float],
    *,
    steps: int = 500,
) -> Figure:
    """Final loss for every (optimizer, learning rate) pair: one batched run per optimizer.

    Cells show :math:`\\log_{10}(f(x_T) - f^\\star)`; diverged runs are hatched and marked
    "div". The best learning rate of each optimizer is outlined.
    """
    f = _landscape(landscape)
    final, div = final_loss_table(f, optimizers, lrs, steps=steps)
    fstar = f.global_minimum.value if f.global_minimum is not None else 0.0
    table = np.log10(np.clip(final - fstar, 1e-16, None))
    shown = np.where(div, np.nan, table)
    fig = new_figure(1.1 + 0.75 * len(lrs), 1.6 + 0.55 * len(optimizers))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#DDDDDD")
    finite = shown[np.isfinite(shown)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (-1, 1)
    im = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(len(optimizers)):
        _heatmap_row(ax, shown[i], div[i], i, (vmin, vmax))
    ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs], rotation=45)
    ax.set_yticks(range(len(optimizers)), [display_name(n) for n in optimizers])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("optimizer")
    cb = fig.colorbar(im, ax=ax, shrink=0.9)
    cb.set_label(rf"$\log_{{10}}(f(x_T) - f^\star)$ after {steps} steps (lower is better)")
    ax.legend(
        handles=[
            Patch(facecolor="#DDDDDD", hatch="///", edgecolor="#999999", label="diverged"),
            Patch(facecolor="none", edgecolor="red", linewidth=2, label="best lr per optimizer"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    ax.set_title(
        f"Final loss by learning rate and optimizer\n{f.formula}, start "
        f"{tuple(round(float(v), 3) for v in f.start)}",
        fontsize=11,
    )
    return fig


def _heatmap_row(
    ax: Any, row: np.ndarray, div: np.ndarray, i: int, span: tuple[float, float]
) -> None:
    """Row ``i`` of the heatmap: each cell's value (or "div", hatched), the best outlined."""
    vmin, vmax = span
    best = int(np.nanargmin(row)) if np.isfinite(row).any() else None
    for j in range(len(row)):
        if div[j]:
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (j - 0.5, i - 0.5),
                    1,
                    1,
                    fill=False,
                    hatch="///",
                    edgecolor="#999999",
                    linewidth=0,
                )
            )
            ax.text(j, i, "div", ha="center", va="center", fontsize=7, color="#444444")
        else:
            v = row[j]
            light = (v - vmin) / max(vmax - vmin, 1e-12) > 0.6
            ax.text(
                j,
                i,
                f"{v:.1f}".replace("-0.0", "0.0"),
                ha="center",
                va="center",
                fontsize=7,
                color="black" if light else "white",
            )
    if best is not None:
        ax.add_patch(
            matplotlib.patches.Rectangle(
                (best - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2
            )
        )


def basin_labels(
    landscape: Landscape | str,
    optimizer: OptimizerSpec,
    starts: Any,
    *,
    lr: float,
    steps: int,
    tolerance: float = 0.05,
    hyper: Mapping[str, Any] | None = None,
    bound: float | None = None,
) -> torch.Tensor:
    """Which known minimum each start reaches (one batched run).

    Returns:
        int64 tensor ``(K,)``: the index ``i`` into ``landscape.minima`` of the minimum within
        ``tolerance`` of the final point, ``len(minima)`` if none is, ``len(minima) + 1`` if
        the run diverged.
    """
    f = _landscape(landscape)
    mins = f.minima
    if not mins:
        raise ValueError(f"landscape {f.name!r} has no known minimum to color basins by")
    tr = run(f, optimizer, starts, steps, lr=lr, hyper=hyper, bound=bound)
    centers = torch.tensor([m.x for m in mins], dtype=tr.paths.dtype)
    dist = torch.cdist(tr.final_points.contiguous(), centers)
    label = torch.where(
        dist.min(1).values < tolerance,
        dist.argmin(1),
        torch.full_like(dist[:, 0], len(mins), dtype=torch.long),
    )
    label[tr.diverged] = len(mins) + 1
    return label


def basin_figure(
    landscape: Landscape | str = "himmelblau",
    optimizers: Sequence[OptimizerSpec] = ("sgd",),
    lrs: Sequence[float] | None = None,
    *,
    steps: int = 300,
    resolution: int = 160,
    tolerance: float = 0.05,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
) -> Figure:
    """Which minimum each starting point reaches: one batched run over a grid of starts.

    One panel per optimizer. Each pixel is a start; its colour is the known minimum nearest
    to the final point (within ``tolerance``), grey if the run ended elsewhere and black if it
    diverged. Stars mark the minima, a triangle a local maximum.

    Args:
        landscape: a 2-D landscape with known minima.
        optimizers: optimizer names (or rules / classes), one panel each.
        lrs: one learning rate per optimizer (default: the landscape's GD rate).
        steps: steps per run.
        resolution: starts per axis (``resolution**2`` runs per panel).
        tolerance: distance to a minimum that counts as having reached it.
        hyper: per-optimizer extra hyperparameters, keyed by name.
    """
    f = _landscape(landscape)
    if f.dim != 2:
        raise ValueError(f"landscape must have dimension 2, got {f.dim}")
    mins = f.minima
    if not mins:
        raise ValueError(f"landscape {f.name!r} has no known minimum to color basins by")
    names = list(optimizers)
    rates = [f.lr] * len(names) if lrs is None else [float(v) for v in lrs]
    if len(rates) != len(names):
        raise ValueError(f"lrs must give one value per optimizer ({len(names)}), got {len(rates)}")
    (x0, x1), (y0, y1) = f.domain
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    starts = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    bound = 100 * max(abs(x0), abs(x1), abs(y0), abs(y1))
    palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
    cols = [palette[i % len(palette)] for i in range(len(mins))] + ["#BBBBBB", "#000000"]
    gxx, gyy, z = _grid(f, f.domain, 200)
    fig = new_figure(5.2 * len(names), 6.0)
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    shares = np.zeros((len(names), len(cols)))
    for k, (ax, name, rate) in enumerate(zip(axes, names, rates, strict=True)):
        key = name if isinstance(name, str) else None
        label = basin_labels(
            f,
            name,
            starts,
            lr=rate,
            steps=steps,
            tolerance=tolerance,
            hyper=(hyper or {}).get(key),
            bound=bound,
        )
        img = label.reshape(resolution, resolution).numpy()
        shares[k] = np.bincount(img.reshape(-1), minlength=len(cols)) / img.size
        _basin_panel(ax, f, img, cols, (gxx, gyy, z))
        disp = display_name(name) if isinstance(name, str) else optimizer_label(name)
        extra = "".join(f", {h}={v}" for h, v in ((hyper or {}).get(key) or {}).items())
        summary = ", ".join(f"{100 * shares[k, i]:.0f}%" for i in range(len(mins)))
        ax.set_title(
            f"{disp} (lr = {rate:g}{extra})\nshare of starts per minimum: {summary}", fontsize=10
        )
        ax.set_xlabel("start $x_0$")
        if k == 0:
            ax.set_ylabel("start $y_0$")
    _basin_legend(fig, f, cols, shares, steps)
    fig.get_layout_engine().set(rect=(0, 0.08, 1, 0.92))
    fig.suptitle(
        f"Basins of attraction: which minimum each starting point reaches after {steps} steps"
        f"\n{f.formula}",
        fontsize=12,
    )
    return fig


def _basin_panel(ax: Any, f: Landscape, img: np.ndarray, cols: list[str], grid: tuple) -> None:
    """One optimizer's basins: the coloured starts, the contours, the minima and maxima."""
    (x0, x1), (y0, y1) = f.domain
    ax.imshow(img, origin="lower", extent=(x0, x1, y0, y1), cmap=colors.ListedColormap(cols),
              vmin=-0.5, vmax=len(cols) - 0.5, interpolation="nearest", alpha=0.85)  # fmt: skip
    gxx, gyy, z = grid
    floor = f.global_minimum.value if f.global_minimum else None
    ax.contour(gxx, gyy, z, levels=_levels(z, 16, floor=floor), colors="white", linewidths=0.5,
               alpha=0.7)  # fmt: skip
    for m in f.minima:
        ax.plot(*m.x, marker="*", ms=17, color="white", mec="black", mew=1.0, zorder=5)
    for p in f.points:
        if p.kind == "local maximum":
            ax.plot(*p.x, marker="^", ms=10, color="white", mec="black", zorder=5)


def _basin_legend(
    fig: Figure, f: Landscape, cols: list[str], shares: np.ndarray, steps: int
) -> None:
    """The legend: a colour per minimum, not reached, diverged, the markers."""
    mins = f.minima
    handles = [
        Patch(color=cols[i], label=f"reaches ({m.x[0]:.2f}, {m.x[1]:.2f})")
        for i, m in enumerate(mins)
    ]
    if shares[:, len(mins)].any():
        handles.append(Patch(color=cols[-2], label=f"not at a minimum after {steps} steps"))
    if shares[:, len(mins) + 1].any():
        handles.append(Patch(color=cols[-1], label="diverged"))
    handles.append(_marker("*", "minimum", ms=13))
    if any(p.kind == "local maximum" for p in f.points):
        handles.append(_marker("^", "local maximum"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 4),
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, -0.01),
    )


# --------------------------------------------------------------------------------------------
# the optimization-basics lecture: the noise floor of constant-rate SGD


def noise_floor_figure(
    lrs: Sequence[float] = (0.5, 0.1, 0.02),
    *,
    eta: float = 1.0,
    steps: int = 2000,
    runs: int = 200,
    h: float = 1.0,
    sigma: float = 1.0,
    dim: int = 2,
    seed: int = 0,
) -> Figure:
    """Constant learning rates stall at a noise floor; ``eta / t`` keeps descending.

    All settings run at once on :func:`~descentlab.problems.landscapes.noisy_quadratic` from
    the same start; the curves are the loss averaged over ``runs`` runs per setting. The
    dashed lines are the theoretical floors :func:`~descentlab.problems.landscapes.
    sgd_stationary_loss` ``d η σ² / (2 (2 - η h))``.
    """
    f = landscapes.get("noisy_quadratic", h=h, sigma=sigma, dim=dim)
    start = torch.full((dim,), 3.0, dtype=torch.float64)
    lr_t = torch.tensor([float(v) for v in lrs], dtype=torch.float64).repeat_interleave(runs)
    const = run(f, "sgd", start, steps, lr=lr_t, seed=seed)
    decay = run(f, "sgd", start.expand(runs, dim), steps, lr=decays.eta_over_t(eta), seed=seed + 1)
    fig = new_figure(8.5, 5.2)
    ax = fig.subplots()
    t = np.arange(steps + 1)
    palette = ["#D55E00", "#E69F00", "#009E73", "#CC79A7"]
    mean_const = const.losses.reshape(len(lrs), runs, steps + 1).mean(1).numpy()
    for i, eta_c in enumerate(lrs):
        c = palette[i % len(palette)]
        floor = landscapes.sgd_stationary_loss(eta_c, h=h, sigma=sigma, dim=dim)
        ax.plot(t[1:], mean_const[i, 1:], color=c, lw=1.6, label=f"constant lr = {eta_c:g}")
        ax.axhline(
            floor, color=c, ls="--", lw=1.2, alpha=0.9, label=f"theoretical floor {floor:.3g}"
        )
    ax.plot(
        t[1:],
        decay.losses.mean(0).numpy()[1:],
        color="#0072B2",
        lw=2.2,
        label=rf"lr = $\eta / t$, $\eta$ = {eta:g} (Robbins-Monro)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step $t$ (log scale)")
    ax.set_ylabel(rf"mean loss $E[f(x_t)]$ over {runs} runs (log scale)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    ax.set_title(
        "SGD with noisy gradients: a fixed learning rate hovers at a noise floor that "
        "grows with lr;\n"
        rf"$\eta/t$ keeps descending.  $f(x) = \frac{{{h:g}}}{{2}}\|x\|^2$, gradient "
        rf"noise $\sigma$ = {sigma:g}, d = {dim}",
        fontsize=10,
    )
    return fig


# --------------------------------------------------------------------------------------------
# the gradient-descent lecture: the optimizer family tree, from the chains


_ROLE_COLORS = {
    "step size": "#BBBBBB",
    "search direction (momentum)": "#56B4E9",
    "adaptive learning rate": "#E69F00",
    "direction + adaptive rate": "#009E73",
    "regularization / sign": "#DDDDDD",
    "wrapper (gradient point, averaging)": "#AA4499",
    "other": "#CC79A7",
}


def rule_roles() -> dict[str, str]:
    """Rule name -> its role in the lectures' taxonomy (each rule's ``role``; used to colour
    the family tree)."""
    out: dict[str, str] = {}
    todo = [optim.Rule]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        out.setdefault(cls.name, cls.role)
    return out


def _is_identity(rule: optim.Rule, hyper: Mapping[str, Any]) -> bool:
    """Whether ``rule`` passes gradients through unchanged at these hyperparameters.

    Three steps with different gradients: any state (momentum, second moments) shows.
    """
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(4, generator=gen, dtype=torch.float64)
    state = rule.init([p])
    state["step"] = [torch.zeros((), dtype=torch.float64)]
    for _ in range(3):
        g = torch.randn(4, generator=gen, dtype=torch.float64)
        state["step"] = [s + 1 for s in state["step"]]
        (u,), state = rule.update([g.clone()], state, [p], hyper)
        if not torch.allclose(u, g):
            return False
    return True


def family_chains(
    variants: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
) -> dict[str, list[tuple[str, bool]]]:
    """Each optimizer's chain as ``[(rule name, acts at the defaults), ...]``.

    Read from the optimizer objects themselves (``opt.rule.rules``); whether a rule acts is
    measured by running it alone for three steps with the optimizer's default hyperparameters
    (SGD's ``trace`` has momentum 0 and passes gradients through).

    Args:
        variants: label -> (optimizer name, constructor options); default: every name in
            :data:`descentlab.optim.NAMES` with its defaults.
    """
    if variants is None:
        variants = {n: (n, {}) for n in optim.NAMES}
    probe = [torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))]
    out: dict[str, list[tuple[str, bool]]] = {}
    for label, (name, options) in variants.items():
        opt = optim.get(name)(probe, fused=False, **options)  # a probe: the eager rules
        group = opt.param_groups[0]
        hyper = {k: v for k, v in group.items() if k not in ("params", "step")}
        out[label] = [(r.name, not _is_identity(r, hyper)) for r in opt.rule.rules]
    return out


def family_tree_figure(include_variants: bool = True) -> Figure:
    """The optimizer family tree drawn from the chains of the named optimizers.

    Top row: optimizers (with the lecture variants ``Momentum(form="velocity")`` and
    ``Nesterov(lookahead=True)``), each with its active chain written above it; bottom row:
    the update rules that distinguish them, coloured by their role (each rule's ``role``) in
    the gradient-descent lecture's table (search direction, adaptive learning rate, or
    both); an edge joins an optimizer to each
    such rule of its chain. Solid edges act at the default hyperparameters; dotted ones are
    in the chain but pass gradients through there (SGD's ``trace`` has momentum 0).
    ``scale_by_lr`` (in almost every chain) and the ``maximize``/``add_l2`` plumbing (in
    every chain, pass-through at the defaults) are listed in a note instead of drawn.
    Whether a rule acts is measured, not declared: three steps of the rule alone with the
    optimizer's default hyperparameters either change the gradients or do not.
    """
    f = _family_layout(include_variants)
    n_opt, n_rule = len(f["chains"]), len(f["rule_order"])
    # About an inch per column: the names and chains stay legible as optimizers are added.
    fig = new_figure(max(15.0, 1.05 * max(n_opt, n_rule) + 1.0), 6.6)
    ax = fig.subplots()
    ax.set_xlim(-0.6, n_opt - 0.4)
    ax.set_ylim(-0.62, 1.42)
    ax.axis("off")
    y_opt, y_rule = 1.0, 0.0
    _family_edges(ax, f, y_opt, y_rule)
    _family_boxes(ax, f, y_opt, y_rule)
    _family_notes(ax, f)
    return fig


def _family_layout(include_variants: bool) -> dict[str, Any]:
    """The tree's optimizers (with the lecture variants), their chains, each drawn rule's users
    and the boxes' positions (rules under the mean position of their users: few crossings)."""
    variants: dict[str, tuple[str, dict[str, Any]]] = {
        display_name(n): (n, {}) for n in optim.NAMES
    }
    if include_variants:
        variants = {
            "SGD": variants["SGD"],
            "Momentum": variants["Momentum"],
            "Momentum\n(velocity form)": ("momentum", {"form": "velocity"}),
            "Nesterov": variants["Nesterov"],
            "Nesterov\n(lookahead)": ("nesterov", {"lookahead": True}),
            **{k: v for k, v in variants.items() if k not in ("SGD", "Momentum", "Nesterov")},
        }
    chains = family_chains(variants)
    built = {
        label: optim.get(name)([torch.nn.Parameter(torch.zeros(1))], fused=False, **opts)
        for label, (name, opts) in variants.items()
    }
    _chain_hyper = {label: opt.param_groups[0] for label, opt in built.items()}
    noted = {"scale_by_lr", "maximize", "add_l2"}
    roles = rule_roles()
    for opt in built.values():  # a rule's name can depend on its options (velocity_lookahead)
        roles.update({r.name: r.role for r in opt.rule.rules})
    n_opt = len(chains)
    ox = {name: float(i) for i, name in enumerate(chains)}
    users: dict[str, list[tuple[str, bool]]] = {}
    for name, chain_ in chains.items():
        for r, active in chain_:
            if r not in noted:
                users.setdefault(r, []).append((name, active))
    # Rules under the mean position of their users: few crossings.
    rule_order = sorted(
        users, key=lambda r: (np.mean([ox[n] for n, a in users[r] if a] or [n_opt]), r)
    )
    n_rule = len(rule_order)
    rx = {r: i * (n_opt - 1) / max(n_rule - 1, 1) for i, r in enumerate(rule_order)}

    return {"chains": chains, "hyper": _chain_hyper, "roles": roles, "users": users,
            "rule_order": rule_order, "ox": ox, "rx": rx}  # fmt: skip


def _family_edges(ax: Any, f: dict[str, Any], y_opt: float, y_rule: float) -> None:
    """An edge from each optimizer to each drawn rule of its chain (dotted: pass-through)."""
    users, roles, ox, rx = f["users"], f["roles"], f["ox"], f["rx"]
    for r in f["rule_order"]:
        role = roles.get(r, "other")
        for name, active in users[r]:
            ax.plot(
                [ox[name], rx[r]],
                [y_opt - 0.09, y_rule + 0.08],
                color=(_ROLE_COLORS[role] if role != "regularization / sign" else "#777777")
                if active
                else "#AAAAAA",
                lw=2.4 if active else 1.2,
                ls="-" if active else ":",
                zorder=1,
            )


def _family_boxes(ax: Any, f: dict[str, Any], y_opt: float, y_rule: float) -> None:
    """The optimizers' boxes with their active chains, and the rules' boxes by role."""
    chains, users, roles, ox, rx = f["chains"], f["users"], f["roles"], f["ox"], f["rx"]
    _chain_hyper = f["hyper"]
    for name, chain_ in chains.items():
        nesterov = bool(_chain_hyper[name].get("nesterov", False))
        active_chain = [
            r.replace("scale_by_", "") + (" (nesterov)" if r == "trace" and nesterov else "")
            for r, a in chain_
            if a
        ]
        _box(ax, (ox[name], y_opt), (0.88, 0.18), "#F4F4F4")
        shown = name if "\n" in name else name.replace(" ", "\n")  # Schedule-Free\nAdamW
        ax.text(ox[name], y_opt, shown, ha="center", va="center", fontsize=9, weight="bold")
        ax.text(
            ox[name],
            y_opt + 0.12,
            "\n→ ".join(active_chain),
            ha="center",
            va="bottom",
            fontsize=7,
            color="#333333",
        )
    for r in f["rule_order"]:
        role = roles.get(r, "other")
        _box(ax, (rx[r], y_rule), (1.04, 0.16), _ROLE_COLORS[role])
        ax.text(rx[r], y_rule, r, ha="center", va="center", fontsize=7, zorder=3)
        n_active = sum(a for _, a in users[r])
        ax.text(
            rx[r],
            y_rule - 0.13,
            f"acts in {n_active}",
            ha="center",
            va="top",
            fontsize=7,
            color="#555555",
        )


def _box(ax: Any, centre: tuple[float, float], size: tuple[float, float], fc: str) -> None:
    """A rounded box of ``size`` centred on ``centre``, under the text drawn on it."""
    (x, y), (w, h) = centre, size
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=fc, ec="#333333", zorder=2
        )
    )


def _family_notes(ax: Any, f: dict[str, Any]) -> None:
    """What the tree leaves out, the legend of roles and edges, the labels and the title."""
    chains, roles, rule_order = f["chains"], f["roles"], f["rule_order"]
    n_opt = len(chains)

    def count(rule: str, active: bool | None = None) -> int:
        return sum(
            any(r == rule and (active is None or a == active) for r, a in c)
            for c in chains.values()
        )

    ax.text(
        (n_opt - 1) / 2,
        -0.33,
        f"Not drawn: scale_by_lr (multiply by −lr) ends {count('scale_by_lr')} of the {n_opt} "
        "chains (the velocity forms keep lr inside their buffer); maximize is in "
        f"{count('maximize')} and add_l2 (coupled weight decay) in {count('add_l2')} chains,"
        f"\nacting in {count('maximize', True)} and {count('add_l2', True)} of them at the "
        "defaults. Chains read top to bottom: each rule's output is the next rule's input; the "
        "last one's output is added to the parameters.",
        ha="center",
        va="top",
        fontsize=8.5,
        color="#333333",
    )
    roles_shown = [
        role for role in _ROLE_COLORS if any(roles.get(r, "other") == role for r in rule_order)
    ]
    handles = [
        Patch(facecolor=_ROLE_COLORS[role], edgecolor="#333333", label=role) for role in roles_shown
    ]
    handles += [
        Line2D([], [], color="#555555", lw=2.4, label="rule acts at the defaults"),
        Line2D([], [], color="#AAAAAA", lw=1.2, ls=":", label="in the chain, pass-through"),
    ]
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
    )
    ax.text(
        -0.6,
        1.4,
        "optimizers, with the rules that act (top to bottom)",
        fontsize=9,
        va="top",
        color="#333333",
    )
    ax.text(-0.6, 0.2, "update rules", fontsize=9, color="#333333")
    ax.set_title(
        "The optimizer family tree, drawn from the chains: which optimizers share which update "
        "rules\n(the gradient-descent lecture's table: search direction vs learning rate; "
        "Adam = momentum + RMSProp, the optimization-basics lecture)",
        fontsize=11,
    )
