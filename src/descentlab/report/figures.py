"""Figures of descent: paths on landscapes and races between optimizers.

Every function draws on a fresh :class:`matplotlib.figure.Figure` with the Agg canvas (no
pyplot state, safe in scripts, tests and threads) and returns it; :func:`save` writes PNG,
:func:`animate_comparison` writes a GIF with :class:`matplotlib.animation.PillowWriter`.

The runs themselves come from :func:`descentlab.problems.trajectories.run`, so each figure is
one batched computation; this module only draws what it is given (it imports the runs' values,
:mod:`descentlab.problems.paths`, never what runs them). The lectures' own figures (sweeps,
basins, noise floors, the family tree) are the book's:
:mod:`descentlab.book.render.lecture_plots`.

A race between optimizers is run by :func:`descentlab.problems.trajectories.races` and handed
to :func:`comparison_figure`.

Example:
    >>> from descentlab.problems import trajectories
    >>> from descentlab.report import figures
    >>> runs = trajectories.races("saddle", ["sgd", "adam"], steps=100)
    >>> fig = figures.comparison_figure("saddle", runs)
    >>> figures.save(fig, "/tmp/saddle.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib import animation, colors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from descentlab import optim
from descentlab._files import atomic_path, check_target, write_atomic
from descentlab.problems import landscapes
from descentlab.problems.landscapes import Landscape
from descentlab.problems.paths import Race, default_lr, display_name

__all__ = [
    "Race",
    "animate_comparison",
    "color_of",
    "comparison_figure",
    "default_lr",
    "display_name",
    "new_figure",
    "save",
]

#: Colours for optimizers without a record (third-party, composed): each at least 30 CIE76
#: units from every registered colour and from each other (tests/test_figure_colours.py).
_FALLBACK_COLORS = ["#0000FF", "#FF00FF", "#00BB00", "#FF0077", "#0055FF", "#8800BB"]


def color_of(name: str, i: int) -> str:
    """An optimizer's colour in every descentlab figure: its record's for a registered name
    (any case), else the ``i``-th of a fallback cycle."""
    key = name.lower()
    if key in optim.NAMES:
        return optim.record(key).color
    return _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)]


def series_colors(names: Sequence[str]) -> list[str]:
    """One colour per series: each optimizer's own (:func:`color_of`) where every name is
    drawn once; where a name repeats (one optimizer at several learning rates), a qualitative
    cycle by position (matplotlib's tab10 without its blue, which the terrain's curve and
    contours use), so that no two series share a colour."""
    if len({n.lower() for n in names}) == len(names):
        return [color_of(n, i) for i, n in enumerate(names)]
    cycle = [c for c in matplotlib.colormaps["tab10"].colors[1:]]
    return [colors.to_hex(cycle[i % len(cycle)]) for i in range(len(names))]


def _landscape(landscape: Landscape | str) -> Landscape:
    return landscapes.get(landscape) if isinstance(landscape, str) else landscape


def new_figure(width: float = 6.4, height: float = 4.8, **kwargs: Any) -> Figure:
    """A figure on the Agg canvas with constrained layout (no pyplot state)."""
    fig = Figure(figsize=(width, height), layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` in the format its suffix names (parent folders are created); returns the
    path.

    A path without a suffix gets ``.png`` (as matplotlib does); a path that is a folder (or
    anything else but a regular file) is refused (:func:`descentlab._files.check_target`).
    """
    path = Path(path)
    check_target(path)  # before the suffix: ``--figure adir`` must not write ``adir.png``
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix[1:].lower(), dpi=dpi, facecolor="white")
    write_atomic(path, buf.getvalue())
    return path


def _grid(f: Landscape, domain: Sequence[tuple[float, float]], n: int = 240):
    (x0, x1), (y0, y1) = domain
    xs = np.linspace(x0, x1, n)
    ys = np.linspace(y0, y1, n)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([gx, gy], -1), dtype=torch.float64)
    with torch.no_grad():
        z = f(pts).numpy()
    return gx, gy, z


def _levels(z: np.ndarray, n: int = 24, floor: float | None = None) -> np.ndarray:
    """Contour levels that crowd where the terrain is low, whatever the function's scale.

    With a known lower bound ``floor`` (the global minimum) the levels are geometric in
    ``f - floor``, which shows both a steep wall and a flat valley floor (Rosenbrock); else
    they are quantiles of the values on the grid.
    """
    finite = z[np.isfinite(z)]
    if floor is not None and finite.size and finite.max() > floor:
        gap = finite - floor
        top = gap.max()
        low = max(np.quantile(gap, 0.002), top * 1e-6)
        levels = floor + np.geomspace(low, top, n)
    else:
        levels = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, n) ** 2))
    return levels if len(levels) >= 3 else np.linspace(finite.min(), finite.max(), 5)


def _draw_terrain(ax, f: Landscape, domain, *, fill: bool = True, n: int = 240) -> None:
    gx, gy, z = _grid(f, domain, n)
    gmin = f.global_minimum
    levels = _levels(z, floor=gmin.value if gmin is not None else None)
    if fill:
        ax.contourf(gx, gy, z, levels=levels, cmap="Blues_r", alpha=0.55, extend="both")
    ax.contour(gx, gy, z, levels=levels, colors="#4A6A8A", linewidths=0.5, alpha=0.8)
    for p in f.points:
        if len(p.x) != 2:
            continue
        if p.is_minimum:
            ax.plot(*p.x, marker="*", ms=15, color="gold", mec="black", mew=0.8, zorder=6)
        elif p.kind == "saddle":
            ax.plot(*p.x, marker="X", ms=10, color="white", mec="black", mew=0.8, zorder=6)
    ax.set_xlim(domain[0])
    ax.set_ylim(domain[1])
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")


def _marker(marker: str, label: str, *, ms: float = 9, color: str = "white") -> Line2D:
    """A legend entry for a marked point of a landscape (black edge, no line)."""
    return Line2D([], [], marker=marker, ms=ms, color=color, mec="black", ls="", label=label)


def _terrain_legend_handles(f: Landscape) -> list[Line2D]:
    handles = []
    if any(p.is_minimum for p in f.points):
        handles.append(_marker("*", "minimum", ms=13, color="gold"))
    if any(p.kind == "saddle" for p in f.points):
        handles.append(_marker("X", "saddle point"))
    return handles


def _race_domain(f: Landscape, races: Sequence[Race]) -> list[tuple[float, float]]:
    # The landscape's frame, grown (a little) to include every path that stays reasonable.
    out = []
    for i, (lo, hi) in enumerate(f.domain):
        vals = np.concatenate([r.traj.paths[0, :, i].numpy() for r in races])
        vals = vals[np.isfinite(vals)]
        span = hi - lo
        vlo = max(vals.min(), lo - span) if vals.size else lo
        vhi = min(vals.max(), hi + span) if vals.size else hi
        lo2, hi2 = min(lo, vlo), max(hi, vhi)
        pad = 0.03 * (hi2 - lo2)
        out.append((lo2 - pad if lo2 < lo else lo2, hi2 + pad if hi2 > hi else hi2))
    return out


def _draw_start(ax: Any, start: Any) -> None:
    """The common start of the paths: a white square."""
    ax.plot(start[0], start[1], "s", color="white", mec="black", ms=8, zorder=8, label="start")


def _status(race: Race, fstar: float | None) -> str:
    tr = race.traj
    if tr.diverged[0]:
        return f"diverged at step {int(tr.diverged_at[0])}"
    last = float(tr.losses[0, -1])
    if fstar is None:
        return f"final f = {last:.3g}"
    return f"final f - f* = {last - fstar:.2g}"


def comparison_figure(
    landscape: Landscape | str, races: Sequence[Race], title: str | None = None
) -> Figure:
    """Paths of several optimizers over the contour map (2-D) or the curve (1-D).

    Left: the paths on the terrain (star: minimum, X: saddle); right: loss against step on a
    log scale (shifted by the minimum value so that it reaches 0 -> bottom of the plot).
    """
    f = _landscape(landscape)
    if f.dim not in (1, 2):
        raise ValueError(f"landscape must have dimension 1 or 2 to draw, got {f.dim}")
    fig = new_figure(12.0, 5.0)
    ax, axl = fig.subplots(1, 2, width_ratios=[1.35, 1.0])
    series = series_colors([r.name for r in races])
    repeated = len({r.name for r in races}) < len(races)
    if f.dim == 2:
        domain = _race_domain(f, races)
        _draw_terrain(ax, f, domain)
        for i, r in enumerate(races):
            p = r.traj.paths[0].numpy()
            c = series[i]
            # Earlier paths drawn wider: a path hidden under a later one still shows as a rim.
            lw = 1.4 + 0.3 * (len(races) - 1 - i)
            ax.plot(p[:, 0], p[:, 1], "-", color=c, lw=lw, alpha=0.95, label=r.label)
            ax.plot(p[-1, 0], p[-1, 1], "o", color=c, mec="white", ms=7, zorder=7)
        _draw_start(ax, races[0].traj.paths[0, 0].numpy())
    else:
        _draw_curve_with_races(ax, f, races)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + _terrain_legend_handles(f), fontsize=8, loc="best", framealpha=0.9)
    ax.set_title(f.formula, fontsize=11)

    gmin = f.global_minimum
    offset = gmin.value if gmin is not None else None
    for i, r in enumerate(races):
        loss = r.traj.losses[0].numpy()
        steps = np.arange(len(loss))
        if r.traj.diverged[0]:
            steps, loss = steps[: int(r.traj.diverged_at[0])], loss[: int(r.traj.diverged_at[0])]
        y = loss - offset if offset is not None else loss
        axl.plot(
            steps,
            y,
            color=series[i],
            lw=1.8,
            label=f"{r.label if repeated else display_name(r.name)}: {_status(r, offset)}",
        )
    if offset is not None:
        axl.set_yscale("log")
        axl.set_ylabel(
            r"$f(x_t) - f^\star$ (log scale)" if offset != 0 else r"$f(x_t)$ (log scale)"
        )
    else:
        axl.set_ylabel(r"$f(x_t)$")
    axl.set_xlabel("step $t$")
    axl.set_title("loss along the path", fontsize=11)
    axl.grid(True, which="major", alpha=0.3)
    axl.legend(fontsize=8, loc="best")
    fig.suptitle(title or f"Optimizers on the {f.name} landscape", fontsize=13)
    return fig


def _draw_curve_with_races(ax, f: Landscape, races: Sequence[Race]) -> None:
    lo, hi = f.domain[0]
    vals = np.concatenate([r.traj.paths[0, :, 0].numpy() for r in races])
    vals = vals[np.isfinite(vals)]
    lo, hi = min(lo, vals.min()), max(hi, vals.max())
    xs = torch.linspace(lo, hi, 400, dtype=torch.float64)[:, None]
    with torch.no_grad():
        ys = f(xs)
    ax.plot(xs[:, 0], ys, color="#4A6A8A", lw=2, label=f.formula)
    series = series_colors([r.name for r in races])
    for i, r in enumerate(races):
        p = r.traj.paths[0, :, 0]
        c = series[i]
        ax.plot(
            p.numpy(), r.traj.losses[0].numpy(), "o-", color=c, ms=4, lw=1, alpha=0.8, label=r.label
        )
    for p in f.minima:
        if lo <= p.x[0] <= hi:
            ax.plot(p.x[0], p.value, marker="*", ms=15, color="gold", mec="black", zorder=6)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$f(x)$")


def animate_comparison(
    landscape: Landscape | str,
    races: Sequence[Race],
    path: str | Path,
    *,
    frames: int = 60,
    fps: int = 12,
    dpi: int = 80,
    title: str | None = None,
) -> Path:
    """The races of :func:`comparison_figure` (2-D landscapes) as an animated GIF.

    Each frame draws every path up to the same step, with a dot at the current point; the
    title shows the step. Frames are spaced geometrically so that the early, fast motion is
    not lost (the last frame is the last step).
    """
    f = _landscape(landscape)
    if f.dim != 2:
        raise ValueError(f"landscape must have dimension 2 to animate, got {f.dim}")
    path = Path(path)
    check_target(path)
    steps = races[0].traj.steps
    idx = np.unique(np.round(np.geomspace(1, steps + 1, frames)).astype(int)) - 1
    fig = new_figure(7.0, 5.4)
    ax = fig.subplots()
    domain = _race_domain(f, races)
    _draw_terrain(ax, f, domain, n=160)
    lines, heads = [], []
    for i, r in enumerate(races):
        c = color_of(r.name, i)
        (line,) = ax.plot([], [], "-", color=c, lw=2.0, label=r.label)
        (head,) = ax.plot([], [], "o", color=c, mec="white", ms=8, zorder=7)
        lines.append(line)
        heads.append(head)
    _draw_start(ax, races[0].traj.paths[0, 0].numpy())
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + _terrain_legend_handles(f), fontsize=8, loc="best", framealpha=0.9)
    head_title = title or f"{f.name}: {f.formula}"
    paths = [r.traj.paths[0].numpy() for r in races]

    def draw(t: int):
        for line, head, p in zip(lines, heads, paths, strict=True):
            line.set_data(p[: t + 1, 0], p[: t + 1, 1])
            head.set_data(p[t : t + 1, 0], p[t : t + 1, 1])
        ax.set_title(f"{head_title}\nstep {t} of {steps}", fontsize=11)
        return [*lines, *heads]

    anim = animation.FuncAnimation(fig, draw, frames=list(idx), blit=False)
    with atomic_path(path) as tmp:
        anim.save(tmp, writer=animation.PillowWriter(fps=fps), dpi=dpi)
    return path


# --------------------------------------------------------------------------------------------
# the gradient-descent lecture: one-dimensional descent with labelled iterates
