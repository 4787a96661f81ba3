"""The multi-problem report: rank table, performance profiles and one section per problem.

:func:`render_multi_report` writes ``<runs>/suite-<hash>/report.html`` for a
:class:`~descentlab.experiments.multi.MultiComparison` (and, by default, each problem's own
full report, to which its section links). Like the comparison report, it is a function of
that value alone: every number and curve was read from the stores by
:func:`~descentlab.experiments.multi.compare_many`.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from descentlab._files import write_atomic
from descentlab.experiments.compare.scoring import (
    SCORE_MAX_RATIO,
    benchmark_score,
    performance_profile,
    wins,
)
from descentlab.report import compare_figures as CF
from descentlab.report.compare_figures import color_of
from descentlab.report.compare_tables import results_table, verdict
from descentlab.report.html import render_report
from descentlab.report.page import (
    escape,
    figure,
    figure_data_uri,
    html_table,
    report_page,
    version,
)

__all__ = ["performance_profile_figure", "render_multi_report"]


def performance_profile_figure(multi: Any, *, tau_max: float | None = None) -> Figure:
    """Step plots of ``rho_s(tau)`` for every optimizer, ``tau`` on a log2 axis.

    Args:
        multi: the :class:`~descentlab.experiments.multi.MultiComparison`.
        tau_max: the right end of the axis (default: a little beyond the largest finite
            ratio, at least 4).
    """
    times, unit = _profile_times(multi)
    ratios, _ = performance_profile(times, [1.0])
    finite = ratios[np.isfinite(ratios)]
    top = tau_max or max(4.0, float(finite.max()) * 1.5 if finite.size else 4.0)
    taus = np.geomspace(1.0, top, 400)
    _, rho = performance_profile(times, taus)
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.add_subplot()
    n = len(multi.problems)
    for j, (label, display) in enumerate(zip(multi.labels, multi.displays, strict=True)):
        # Offsets keep coinciding curves visible.
        ax.step(taus, rho[j] + (j - (len(multi.labels) - 1) / 2) * 0.006, where="post",
                color=color_of(label, j), lw=2, label=display)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlim(1.0, top)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("τ (time to target within a factor τ of the fastest optimizer)")
    ax.set_ylabel(f"fraction of problems (of {n})")
    ax.set_title(f"Performance profiles ({unit} to each problem's target)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", frameon=True)
    fig.tight_layout()
    return fig


def _profile_times(multi: Any) -> tuple[np.ndarray, str]:
    """The times the profiles are drawn from: each run's own seconds to target (AlgoPerf's
    measure), or steps where some run's time was not measured."""
    if multi.time_score() is None:
        return multi.times(), "steps"
    return multi.seconds(), "seconds"


def _fmt_steps(v: float) -> str:
    return "not reached" if not math.isfinite(v) else f"{v:.0f}"


Section = tuple[str, str, str]  # (id, heading, html)


def render_multi_report(
    multi: Any, *, path: str | os.PathLike[str] | None = None, problem_reports: bool = True
) -> Path:
    """Write the multi-problem report; returns its path.

    Args:
        multi: the :class:`~descentlab.experiments.multi.MultiComparison`.
        path: the output file (default ``<suite dir>/report.html``).
        problem_reports: also write each problem's own report (linked from its section).
    """
    out = Path(path) if path is not None else multi.report_path
    if problem_reports:
        for p in multi.problems:
            render_report(p.comparison)
    fig_dir = out.parent / "figures"
    sections = [
        _ranks(multi),
        _profiles(multi, fig_dir),
        *(_problem(multi, i, out.parent, fig_dir) for i in range(len(multi.problems))),
    ]
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"Optimizers on {len(multi.problems)} problems"
    sub = (
        f"{len(multi.labels)} optimizers ({escape(', '.join(multi.displays))}) on "
        f"{escape(', '.join(p.name for p in multi.problems))}; each tuned per problem on "
        f"validation data. Rendered {now} by descentlab."
    )
    footer = f"descentlab {escape(version())} · self-contained report · {escape(str(out.parent))}"
    write_atomic(out, report_page(title, sub, sections, footer))  # never half-written
    return out


def _ranks(multi: Any) -> Section:
    ranks = multi.ranks()
    rows = [
        [f"{p.name} (test {p.metric}, {'higher' if p.maximize else 'lower'} is better)"]
        + [
            "–" if math.isnan(v) else f"{v:.3f} <b>#{rank:g}</b>"
            for v, rank in zip(p.final, ranks[i], strict=True)
        ]
        for i, p in enumerate(multi.problems)
    ]
    mean_rank = ranks.mean(axis=0)
    rows.append(["<b>mean rank</b>", *(f"<b>{m:.2f}</b>" for m in mean_rank)])
    timed = multi.time_score()
    rows.append(
        [
            f"<b>AlgoPerf benchmark score</b> (integrated performance profile of each run's own "
            f"seconds to target, τ ≤ {SCORE_MAX_RATIO:g}; 1 = fastest everywhere)",
            *("–" if timed is None else f"<b>{v:.3f}</b>" for v in (
                timed if timed is not None else multi.labels)),
        ]
    )  # fmt: skip
    rows.append(
        [
            "score in steps (the same integral on steps to target; a costlier step is free)",
            *(f"{v:.3f}" for v in benchmark_score(multi.times())),
        ]
    )
    lowest = float(mean_rank.min())
    leaders = [d for d, m in zip(multi.displays, mean_rank, strict=True) if m == lowest]
    rank_html = (
        f"<p>Each optimizer's learning rate was tuned on each problem's validation data; the "
        f"numbers are the final test metric (mean over the refit seeds) and the rank on that "
        f"problem (1 = best, ties share the mean rank). Best mean rank ({lowest:.2f}): "
        f"<b>{escape(' and '.join(leaders))}</b>{' (tied)' if len(leaders) > 1 else ''}.</p>"
        + html_table(["problem", *multi.displays], rows, raw=True)
        + "".join(f"<p>{escape(line[0].upper() + line[1:])}.</p>" for line in multi.budget_lines())
    )
    return ("ranks", "Rank table", rank_html)


def _profiles(multi: Any, fig_dir: Path) -> Section:
    times, unit = _profile_times(multi)
    ratios, _ = performance_profile(times, [1.0])
    uri = figure_data_uri(
        performance_profile_figure(multi), save_to=fig_dir / "performance_profiles.png"
    )
    secs = multi.seconds()
    trows = []
    for i, p in enumerate(multi.problems):
        tgt = "–" if p.target is None else f"{p.target:.4g} ({p.target_kind})"
        if p.test_target is not None:
            tgt += f"; test {p.test_target:.4g}"
        trows.append(
            [f"{p.name} (val {p.metric}, {p.comparison.spec.steps} steps)", tgt]
            + [
                _fmt_steps(multi.times()[i, j])
                + ("" if not math.isfinite(secs[i, j]) else f" / {secs[i, j]:.2f} s")
                + ("" if not math.isfinite(ratios[i, j]) else f" (×{ratios[i, j]:.2f})")
                for j in range(len(multi.labels))
            ]
        )
    won = wins(times)
    trows.append(["fastest on (ties split)", "", *(f"{v:.0%} of problems" for v in won)])
    caption = (
        f"For each optimizer, the fraction of problems on which its {unit} to the target are "
        "within a factor τ of the fastest optimizer's. At τ = 1: the fraction it is fastest "
        "on; at the right edge: the fraction it reaches the target at all. Higher and further "
        "left is better (Dolan & Moré 2002; AlgoPerf)."
    )
    profile_html = (
        figure(uri, caption, "performance profiles")
        + "<p>Steps and seconds to each problem's validation target within its step budget "
        "(median over curve seeds; seconds: each run's own forward/backward and optimizer time, "
        f"{escape(multi.clock_words())}; a run trained in a vectorized pass is charged an equal "
        "share of the shared forward/backward pass and its own optimizer's step), and the "
        f"ratio of {unit} to the fastest. A "
        "<i>fixed</i> target was measured by reference runs before any comparison (Adam, its "
        "lr tuned on validation data, 3 seeds: <code>scripts/measure_targets.py</code>), as "
        "AlgoPerf fixes its workloads' targets; a <i>given</i> one is the problem's own; an "
        "<i>auto</i> target lies 95% of the way from the initial validation metric to the "
        "best final one any optimizer reached (geometrically for a loss or RMSE).</p>"
        + html_table(["problem", "target", *multi.displays], trows, text_columns=(0, 1))
    )
    return ("profiles", "Performance profiles", profile_html)


def _problem(multi: Any, i: int, where: Path, fig_dir: Path) -> Section:
    p = multi.problems[i]
    cmp = p.comparison
    rel = os.path.relpath(cmp.report_path, where)
    link = (
        f' <a href="{escape(rel)}">Full report of this problem</a>.'
        if cmp.report_path.is_file()
        else ""
    )
    parts = [
        f"<p>Run directory <code>{escape(str(cmp.run_dir))}</code>.{link}</p>",
        verdict(cmp),
        results_table(cmp),
    ]
    curves = CF.learning_curves_figure(cmp)
    if curves is not None:
        uri = figure_data_uri(curves, save_to=fig_dir / f"curves_{i}_{p.name}.png")
        caption = f"{escape(p.name)}: learning curves of the chosen settings (mean over seeds)."
        parts.append(figure(uri, caption, f"learning curves on {p.name}"))
    return (f"problem-{i}", f"Problem: {p.name}", "\n".join(parts))
