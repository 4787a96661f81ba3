"""A scale study rendered: its table (Markdown), its trend lines, the speedup against the
parameters with the fitted bands and the tuned learning rate against the parameters (PNG).
It renders the values it is given (:mod:`descentlab.experiments.scale`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import NullFormatter

from descentlab._files import write_atomic
from descentlab.report.figures import new_figure, save

__all__ = ["budget_note", "study_table", "trend_lines", "write_study"]


def _ci(t: Sequence[float]) -> str:
    if not math.isfinite(t[0]):
        return "n/a"
    return f"{t[0]:.2f} [{t[1]:.2f}, {t[2]:.2f}]"


def study_table(sizes: Sequence[Any], option: str) -> str:
    """One row a size and optimizer: parameters, speedups in steps and in seconds with their
    intervals, the tuned lr and the verdict at that size."""
    lines = [f"| {option} | parameters | optimizer | speedup (steps) | speedup (time) | "
             "tuned lr | verdict |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in sizes:
        for r in s.rows:
            lr = "n/a" if r.lr is None else f"{r.lr:.3g}"
            name = f"{r.label} (baseline)" if r.label == s.baseline else r.label
            secs = "not compared: another execution mode" if r.withheld else _ci(r.seconds)
            lines.append(f"| {s.size} | {s.params:,} | {name} | {_ci(r.steps)} | "
                         f"{secs} | {lr} | {r.verdict} |")  # fmt: skip
    return "\n".join(lines)


def trend_lines(trends: Mapping[str, Any], baseline: str) -> list[str]:
    """One line an optimizer: its slope per tenfold parameters and where its speedup over
    the baseline would reach 1.0 (an extrapolation, said so), or why not."""
    out = []
    for label, t in trends.items():
        head = f"{label} over {baseline}: "
        if t.slope is None:
            out.append(head + t.refusal)
            continue
        b = t.slope
        words = (f"speedup {b[0]:+.3f} [{b[1]:+.3f}, {b[2]:+.3f}] per tenfold parameters "
                 f"({_between(t)})")  # fmt: skip
        if t.crossing is None:
            out.append(f"{head}{words}; {t.refusal}")
        else:
            c = t.crossing
            where = "an extrapolation: its interval reaches past" if t.extrapolated else "within"
            out.append(f"{head}{words}; reaches 1.0 at {c[0]:.3g} [{c[1]:.3g}, {c[2]:.3g}] "
                       f"parameters ({where} the sizes measured)")  # fmt: skip
    return out


def _between(t: Any) -> str:
    """Where the trend's between-size variance came from, in words."""
    if t.between_from == "tuning trials":
        return f"each size's tuning noise {t.between:.2g}, from its tuning trials"
    return (f"the sizes' scatter beyond their intervals {t.between:.2g}, from their residuals: "
            "the tuning trials did not say each size's tuning noise")  # fmt: skip


def budget_note(spec: Any) -> str:
    """What sets a study's speedups beside the optimizers: the step budget and the baseline's
    tuning (one line)."""
    return (
        f"The speedups are at --steps {spec.steps}: a fixed step budget caps how far an "
        "optimizer can pull ahead, so another budget gives another size and slope; and over "
        f"{spec.baseline} as its {spec.search} search of {spec.lrs_per_optimizer} trials tuned "
        "it: a baseline tuned with fewer trials makes every speedup over it larger (Wen et "
        "al., 2025)."
    )


def _size_axis(ax: Any, params: np.ndarray) -> None:
    """The parameters axis labelled at the sizes measured (no minor labels: they overlap)."""
    ax.set_xticks(params, [f"{p:,.0f}" for p in params])
    ax.xaxis.set_minor_formatter(NullFormatter())


def write_study(
    sizes: Sequence[Any], trends: Mapping[str, Any], folder: Path, option: str, note: str = ""
) -> list[Path]:
    """``scale.md`` (table and trend lines), ``scale_speedup.png`` and ``scale_lr.png`` in
    ``folder`` (``note``: a line after the trend lines); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    baseline = sizes[0].baseline
    text = "\n\n".join(
        [
            study_table(sizes, option),
            "\n".join(trend_lines(trends, baseline)),
            *([note] if note else []),
        ]
    )
    md = folder / "scale.md"
    write_atomic(md, text + "\n")
    params = np.array([s.params for s in sizes], dtype=float)
    grid = np.geomspace(params.min() / 1.5, params.max() * 1.5, 60)
    labels = [r.label for r in sizes[0].rows]
    fig = new_figure(6.4, 4.2)
    ax = fig.subplots()
    for i, label in enumerate(labels):
        color = f"C{i}"
        rows = [s.row(label) for s in sizes]
        y = np.array([r.steps for r in rows], dtype=float)
        ok = np.isfinite(y).all(1)
        if label != baseline and ok.any():
            y = y[ok]
            err = np.abs(np.vstack([y[:, 0] - y[:, 1], y[:, 2] - y[:, 0]]))
            ax.errorbar(params[ok], y[:, 0], yerr=err, fmt="o", color=color, capsize=3, label=label)
        t = trends.get(label)
        if t is not None and len(t.draws):
            mid, low, high = t.band(grid)
            ax.plot(grid, mid, color=color, lw=1)
            ax.fill_between(grid, low, high, color=color, alpha=0.15)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label=f"{baseline} (baseline)")
    ax.set(xscale="log", xlabel="parameters", ylabel=f"speedup over {baseline} (steps)",
           title="Speedup against model size (95% intervals, fitted bands)")  # fmt: skip
    _size_axis(ax, params)
    ax.legend(fontsize=8)
    speed = save(fig, folder / "scale_speedup.png")
    fig = new_figure(6.4, 4.2)
    ax = fig.subplots()
    for i, label in enumerate(labels):
        lrs = [s.row(label).lr for s in sizes]
        ok = [(p, v) for p, v in zip(params, lrs, strict=True) if v is not None]
        if ok:
            ax.plot(*zip(*ok, strict=True), "o-", color=f"C{i}", label=label)
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="tuned learning rate",
           title="Tuned learning rate against model size")  # fmt: skip
    _size_axis(ax, params)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    lr = save(fig, folder / "scale_lr.png")
    return [md, speed, lr]
