"""Figures of an optimizer comparison (:mod:`descentlab.experiments.compare`).

Each function takes a :class:`~descentlab.experiments.compare.Comparison` -- a plain value
that already holds the curves, the tuning scores and the landscapes' paths -- draws on a fresh
Agg figure (no pyplot state) and returns it, or None when there is nothing to draw (e.g. a
comparison stopped before its final runs). Nothing here reads the store or trains.

================================  ==============================================================
function                          what it shows
================================  ==============================================================
:func:`final_results_figure`       test accuracy (loss) per optimizer: mean, interval, seeds
:func:`learning_curves_figure`    train / validation curves per optimizer, mean and band over
                                  seeds (the curve runs, trained on the training split)
:func:`validation_overlay_figure` every optimizer's validation accuracy and training loss on one
                                  pair of axes
:func:`lr_sensitivity_figure`     validation metric against learning rate (DeepOBS's tuneability
                                  picture), failed settings marked
:func:`time_to_target_figure`     steps and seconds to the target validation accuracy
:func:`difference_figure`         each optimizer's validation score against the chosen one's
                                  over the steps, paired by seed (where rankings flip)
:func:`monitor_figure`            update-to-parameter ratio ``||Δθ|| / ||θ||`` over training
:func:`landscape_figures`         the same optimizers on the ravine and saddle landscapes
================================  ==============================================================

Example:
    >>> from descentlab.experiments.compare import load_comparison
    >>> cmp = load_comparison("runs/mnist1d-default-1a2b3c4d")  # doctest: +SKIP
    >>> fig = final_results_figure(cmp)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from descentlab.report import figures as F

__all__ = [
    "color_of",
    "difference_figure",
    "final_results_figure",
    "landscape_figures",
    "learning_curves_figure",
    "lr_sensitivity_figure",
    "monitor_figure",
    "overlay_clock",
    "seed_curves",
    "time_to_target_figure",
    "validation_overlay_figure",
]

#: An optimizer's colour (its record's; a fallback cycle for other labels), as in every figure.
color_of = F.color_of


def seed_curves(result: Any, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """One metric of an optimizer's curve runs on a common step grid:
    ``(steps, values[seeds, steps])`` (runs that stopped early are padded with NaN), or None
    when none logged it."""
    curves = result.curves.get(key)
    return None if curves is None else curves.aligned()


def _titled(fig: Figure, title: str, fontsize: int = 12) -> Figure:
    """``fig``, ``title`` above its panels."""
    fig.suptitle(title, fontsize=fontsize)
    return fig


def _band(ax: Any, steps: np.ndarray, values: np.ndarray, color: str, **kw: Any) -> None:
    with np.errstate(all="ignore"), _quiet():
        mean = np.nanmean(values, axis=0)
        lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    ax.plot(steps, mean, color=color, **kw)
    if values.shape[0] > 1:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.18, lw=0)


class _quiet:
    """Silence numpy's all-NaN slice warnings inside a block."""

    def __enter__(self) -> None:
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


# ------------------------------------------------------------------------------------------


def _with_curves(comparison: Any) -> list[Any]:
    """The optimizers whose curve runs (some of them) have finished."""
    return [r for r in comparison.results if any(x is not None for x in r.curve_runs)]


def final_results_figure(comparison: Any) -> Figure | None:
    """Test accuracy (and loss) per optimizer: interval bar, mean, and each seed's value."""
    results = [r for r in comparison.results if any(x is not None for x in r.refit_runs)]
    if not results:
        return None
    classification = comparison.task == "classification"
    metrics = [("test/accuracy", "test accuracy")] if classification else []
    metrics.append(("test/loss", "test loss"))
    metrics = comparison.kind.metric_said(  # your own code's metric, by its name
        [(metrics[0][0], f"test {comparison.metric_name}")], metrics
    )
    fig = F.new_figure(5.2 * len(metrics) + 0.6, 0.55 * len(results) + 1.6)
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    conf = round(comparison.spec.confidence * 100)
    ypos = np.arange(len(results))[::-1]
    for ax, (key, title) in zip(axes, metrics, strict=True):
        for y, r in zip(ypos, results, strict=True):
            i = comparison.results.index(r)
            c = color_of(r.label, i)
            seeds = r.test_accuracy_seeds if key == "test/accuracy" else r.test_loss_seeds
            per_seed = [seeds[s] for s in sorted(seeds)]
            m, lo, hi = r.test_accuracy if key == "test/accuracy" else r.test_loss
            if math.isfinite(m):
                ax.plot([lo, hi], [y, y], color=c, lw=6, alpha=0.35, solid_capstyle="butt")
                ax.plot([m], [y], "o", color=c, ms=9, mec="white", zorder=5)
            ax.plot(per_seed, [y] * len(per_seed), "|", color="black", ms=12, mew=1.2)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(
            title + (" (higher is better)" if "accuracy" in key else " (lower is better)")
        )
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(ypos, [r.choice.display for r in results])
    axes[0].set_ylim(-0.7, len(results) - 0.3)
    handles = [
        Line2D([], [], marker="o", color="gray", ls="", ms=8, label="mean over seeds"),
        Line2D([], [], color="gray", lw=6, alpha=0.35, label=f"{conf}% interval"),
        Line2D([], [], marker="|", color="black", ls="", ms=10, label="one seed"),
    ]
    axes[-1].legend(handles=handles, fontsize=8, loc="best")
    counts = sorted({len(r.test_values(classification)) for r in results})
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    # on two lines where one panel is too narrow for it (regression: the loss alone)
    sep = " " if len(metrics) > 1 else "\n"
    return _titled(
        fig,
        f"Test results after refitting on train + validation{sep}({n} seeds that trained; "
        "test set used once)",
    )


def difference_figure(comparison: Any) -> Figure | None:
    """How much worse each other optimizer's curve runs are than the chosen one's on the
    validation score, paired by seed, at every evaluation: mean and 95% t band over the
    seeds, with a quarter and half of the budget marked (where rankings that flip show)."""
    from scipy import special

    ranking = comparison.ranking()
    if len(ranking) < 2:
        return None
    from descentlab.experiments.compare.speedup import paired_curve

    top = ranking[0].result
    fig = F.new_figure(7.6, 4.4)
    ax = fig.subplots()
    scale = 100.0 if comparison.select_metric == "val/accuracy" else 1.0
    drawn = 0
    for x in ranking[1:]:
        got = paired_curve(comparison, top, x.result)
        if got is None:
            continue
        steps, diff = got
        i = comparison.results.index(x.result)
        with np.errstate(all="ignore"), _quiet():
            k = np.sum(np.isfinite(diff), axis=0)
            mean = np.nanmean(diff, axis=0) * scale
            half = special.stdtrit(np.maximum(k - 1, 1), 0.975) * np.nanstd(diff, axis=0, ddof=1)
            half = half / np.sqrt(k) * scale
        c = color_of(x.result.label, i)
        ax.plot(steps, mean, color=c, lw=1.8, label=x.result.choice.display)
        ax.fill_between(steps, mean - half, mean + half, color=c, alpha=0.15, lw=0)
        drawn += 1
    if not drawn:
        return None
    ax.axhline(0.0, color="black", lw=0.8)
    for f in (0.25, 0.5):
        ax.axvline(f * comparison.spec.steps, color="gray", lw=0.8, ls=":")
    units = " (accuracy points)" if scale == 100.0 else ""
    ax.set_xlabel("step")
    ax.set_ylabel(f"worse than {top.choice.display}{units}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _titled(
        fig,
        f"Against {top.choice.display} over training, paired by seed\n(mean and 95% band over "
        "the curve runs; dotted: 25% and 50% of the budget)",
        fontsize=11,
    )


def learning_curves_figure(comparison: Any) -> Figure | None:
    """Per optimizer: training and validation curves of the curve runs (mean, min-max band)."""
    results = _with_curves(comparison)
    if not results:
        return None
    classification = comparison.task == "classification"
    metric = "accuracy" if classification else "loss"
    ncols = min(4, len(results))
    nrows = math.ceil(len(results) / ncols)
    fig = F.new_figure(3.6 * ncols, 2.9 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True)).ravel()
    for ax, r in zip(axes, results, strict=False):
        i = comparison.results.index(r)
        c = color_of(r.label, i)
        for split, style in (("train", "-"), ("val", "--")):
            got = seed_curves(r, f"{split}/{metric}")
            if got is not None:
                label = "train" if split == "train" else "validation"
                _band(ax, got[0], got[1], c, ls=style, lw=1.8, label=label)
        if classification and comparison.target_accuracy is not None:
            ax.axhline(comparison.target_accuracy, color="gray", lw=0.8, ls=":")
        lr = r.best_setting["lr"] if r.best_setting else float("nan")
        ax.set_title(f"{r.choice.display} (lr={lr:.3g})", fontsize=10)
        ax.grid(True, alpha=0.3)
        if not classification:
            ax.set_yscale("log")
    for ax in axes[len(results) :]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel("step")
    for row in range(nrows):
        axes[row * ncols].set_ylabel(metric)
    handles = [
        Line2D([], [], color="black", ls="-", lw=1.8, label="train split"),
        Line2D([], [], color="black", ls="--", lw=1.8, label="validation split"),
    ]
    if classification and comparison.target_accuracy is not None:
        target = comparison.target_accuracy
        handles.append(Line2D([], [], color="gray", ls=":", label=f"target {target:g}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return _titled(
        fig,
        f"Learning curves at the chosen learning rate: mean over {comparison.spec.seeds} seeds,"
        " band = min-max",
    )


def overlay_clock(comparison: Any) -> str:
    """The clock :func:`validation_overlay_figure` puts the training loss against: each run's
    own training time (``progress/train_time``: forward/backward and optimizer, a run of a
    vectorized pass charged its share) where every optimizer's curve runs logged it, else the
    wall clock of the pass (``progress/wall_time``, evaluations included)."""
    results = _with_curves(comparison)
    own = results and all(seed_curves(r, "progress/train_time") is not None for r in results)
    return "progress/train_time" if own else "progress/wall_time"


def validation_overlay_figure(comparison: Any) -> Figure | None:
    """All optimizers on one pair of axes: validation metric and training loss against step,
    and the training loss against seconds (:func:`overlay_clock`)."""
    results = _with_curves(comparison)
    if not results:
        return None
    clock_key = overlay_clock(comparison)
    classification = comparison.task == "classification"
    fig = F.new_figure(15.0, 4.4)
    ax_v, ax_t, ax_w = fig.subplots(1, 3)
    for r in results:
        i = comparison.results.index(r)
        c = color_of(r.label, i)
        # Means only: seven bands on one pair of axes hide each other (the per-optimizer
        # figure shows the bands).
        key = "val/accuracy" if classification else "val/loss"
        for ax, k in ((ax_v, key), (ax_t, "train/loss")):
            got = seed_curves(r, k)
            if got is not None:
                with _quiet():
                    mean = np.nanmean(got[1], axis=0)
                ax.plot(got[0], mean, color=c, lw=1.8, label=r.choice.display)
        clock = _loss_by_clock(r, clock_key)
        if clock is not None:
            ax_w.plot(*clock, color=c, lw=1.8)
    if classification and comparison.target_accuracy is not None:
        ax_v.axhline(
            comparison.target_accuracy,
            color="gray",
            lw=0.8,
            ls=":",
            label=f"target {comparison.target_accuracy:g}",
        )
    ax_v.set_title("validation " + ("accuracy" if classification else "loss"), fontsize=11)
    ax_v.set_ylabel("accuracy" if classification else "loss")
    ax_t.set_title("training loss (full training split)", fontsize=11)
    ax_t.set_ylabel("loss (log scale)")
    ax_t.set_yscale("log")
    if not classification:
        ax_v.set_yscale("log")
    if clock_key == "progress/train_time":
        ax_w.set_title("training loss against each run's own time", fontsize=11)
        ax_w.set_xlabel("seconds of the run's own forward/backward + optimizer")
    else:
        ax_w.set_title("training loss against wall-clock time", fontsize=11)
        ax_w.set_xlabel("seconds of training (evaluations included)")
    ax_w.set_ylabel("loss (log scale)")
    ax_w.set_yscale("log")
    ax_w.grid(True, alpha=0.3)
    for ax in (ax_v, ax_t):
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    ax_v.legend(fontsize=8, loc="lower right" if classification else "upper right", ncols=2)
    return _titled(fig, "All optimizers at their chosen learning rates (mean over seeds)")


_FAIL_MARKERS = {"diverged": "x", "chance": "v", "loss rose": "^"}


def _loss_by_clock(result: Any, clock_key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(seconds, training loss)``: the means over seeds at each evaluation, the seconds
    ``clock_key``'s."""
    loss, clock = seed_curves(result, "train/loss"), seed_curves(result, clock_key)
    if loss is None or clock is None:
        return None
    steps = np.intersect1d(loss[0], clock[0])
    if steps.size == 0:
        return None
    li = np.searchsorted(loss[0], steps)
    ci = np.searchsorted(clock[0], steps)
    with _quiet():
        secs = np.nanmean(clock[1][:, ci], axis=0)
        values = np.nanmean(loss[1][:, li], axis=0)
    keep = np.isfinite(secs) & np.isfinite(values)
    return (secs[keep], values[keep]) if keep.any() else None


def lr_sensitivity_figure(comparison: Any) -> Figure | None:
    """Validation metric of every tuning setting against its learning rate.

    A line joins only settings that differ in the learning rate alone (one line per
    combination of the other tuned hyperparameters); a setting that shares its other
    hyperparameters with no other (quasi-random search draws every dimension) is an unjoined
    point, and the title says so. The chosen setting is ringed; the dashed line is the
    chance level below which a trial counts as failed. Failed settings are drawn in a strip
    under the axes, one row per optimizer (x diverged, v at chance, ^ training loss rose),
    so that no optimizer's failure hides under another's marker.
    """
    results = [
        r
        for r in comparison.results
        if any(s is not None for c in r.candidates for s in c.statuses)
    ]
    if not results:
        return None
    # The tuning score: accuracy (higher is better) or a loss / RMSE (lower, log scale).
    classification = comparison.select_metric == "val/accuracy"
    failing = [r for r in results if any(c.failed for c in r.candidates)]
    fig = F.new_figure(9.0, 5.2 + 0.28 * len(failing))
    if failing:
        ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=[5.0, 0.5 + 0.35 * len(failing)])
    else:
        ax, strip = fig.subplots(), None
    used: set[str] = set()
    joined = alone = 0
    for r in results:
        i = comparison.results.index(r)
        c = color_of(r.label, i)
        lines: dict[str, dict[float, float]] = {}  # the other hyperparameters -> lr -> score
        for cand in r.candidates:
            lr = float(cand.setting["lr"])
            if cand.failed:
                why = next((f for f in cand.failures if f is not None), "diverged")
                marker = _FAIL_MARKERS.get(why, "x")
                row = len(failing) - 1 - failing.index(r)
                strip.plot([lr], [row], marker, color=c, ms=8, mew=2, ls="")  # type: ignore[union-attr]
                used.add(why)
                continue
            if not math.isfinite(cand.score):
                continue
            others = repr(sorted((k, repr(v)) for k, v in cand.setting.items() if k != "lr"))
            by_lr = lines.setdefault(others, {})
            best = by_lr.get(lr)
            better = best is None or (cand.score > best if classification else cand.score < best)
            if better:
                by_lr[lr] = cand.score
        label = r.choice.display
        for by_lr in lines.values():
            lrs = sorted(by_lr)
            joined += len(lrs) > 1
            alone += len(lrs) == 1
            style = "o-" if len(lrs) > 1 else "o"
            ax.plot(lrs, [by_lr[v] for v in lrs], style, color=c, lw=1.6, ms=5, label=label)
            label = "_nolegend_"
        if r.best is not None:
            b = r.candidates[r.best]
            ax.plot([b.setting["lr"]], [b.score], "o", ms=13, mfc="none", mec=c, mew=2)
    ax.set_xscale("log")
    if not classification:
        ax.set_yscale("log")
    chance = getattr(comparison, "chance", None)
    if chance is not None and math.isfinite(chance):
        ax.axhline(chance, color="0.45", ls="--", lw=1)
        ax.annotate(
            "chance (fails at or " + ("below)" if classification else "above)"),
            (0.01, chance),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
            color="0.35",
        )
    bottom = strip if strip is not None else ax
    bottom.set_xlabel("learning rate (log scale)")
    if strip is not None:
        strip.set_yticks(range(len(failing)))
        strip.set_yticklabels([r.choice.display for r in reversed(failing)], fontsize=8)
        strip.set_ylim(-0.6, len(failing) - 0.4)
        strip.grid(True, axis="x", which="both", alpha=0.25)
        words = {"diverged": "x diverged", "chance": "v at chance", "loss rose": "^ loss rose"}
        strip.set_title(
            "failed settings: " + ", ".join(words.get(k, k) for k in sorted(used)),
            fontsize=9,
            loc="left",
        )
    metric = comparison.select_metric.split("/", 1)[1]
    folds = comparison.spec.cv_folds
    where = f"mean over {folds} folds" if folds else "holdout validation split"
    ax.set_ylabel(f"validation {metric} ({where})")
    steps = comparison.spec.tune_length
    if alone and not joined:
        how = "each point a trial; they differ in other hyperparameters too, so none is joined"
    elif alone:
        how = "lines join trials that differ in the lr only; the other points stand alone"
    else:
        how = "lines join trials that differ in the lr only"
    ax.set_title(
        f"Learning-rate sensitivity ({steps} steps per trial; ring = chosen)\n{how}", fontsize=10
    )
    ax.grid(True, which="both", alpha=0.25)
    fig.legend(loc="outside lower center", ncols=min(len(results), 7), fontsize=8)
    return fig


def time_to_target_figure(comparison: Any) -> Figure | None:
    """Steps and seconds to the target validation accuracy, per optimizer and seed."""
    target = comparison.target_accuracy
    if comparison.task != "classification" or target is None:
        return None
    results = [r for r in comparison.results if r.steps_to_target]
    if not results:
        return None
    # seconds: each curve run's own time (none for runs recorded before engine.timing)
    timed = any(_finite(r.seconds_to_target) for r in results)
    fig = F.new_figure(11.0 if timed else 6.5, 0.5 * len(results) + 1.8)
    axes = list(np.atleast_1d(fig.subplots(1, 2 if timed else 1, sharey=True)))
    ypos = np.arange(len(results))[::-1]
    panels = [(axes[0], "steps_to_target", "steps")]
    if timed:
        panels.append((axes[1], "seconds_to_target", "seconds"))
    for ax, attr, unit in panels:
        xmax = 0.0
        for r in results:
            xmax = max([xmax, *_finite(getattr(r, attr))])
        for y, r in zip(ypos, results, strict=True):
            i = comparison.results.index(r)
            c = color_of(r.label, i)
            vals = _finite(getattr(r, attr))
            if vals:
                ax.barh(y, float(np.mean(vals)), color=c, alpha=0.55, height=0.6)
                ax.plot(vals, [y] * len(vals), "o", color=c, mec="black", ms=5, mew=0.6)
            else:
                reached = attr == "seconds_to_target" and r.steps_to_target[0] is not None
                ax.text(
                    0.02 * max(xmax, 1.0),
                    y,
                    "not timed (recorded before per-run timing)" if reached else "not reached",
                    va="center",
                    fontsize=9,
                    color="#555555" if reached else "#B00020",
                )
        ax.set_xlabel(f"{unit} until validation accuracy >= {target:g} (mean bar, seed dots)")
        ax.grid(True, axis="x", alpha=0.3)
    ticks = []
    for r in results:
        n, k = len(r.steps_to_target), len(_finite(r.steps_to_target))
        ticks.append(r.choice.display + ("" if k == n else f"\n(reached {k}/{n} seeds)"))
    axes[0].set_yticks(ypos, ticks)
    if timed:  # two panels: say which is which (one panel's x label says it)
        axes[0].set_title("optimizer steps", fontsize=11)
        axes[1].set_title("the run's own seconds (forward/backward + optimizer)", fontsize=11)
    return _titled(fig, f"Time to reach {target:g} validation accuracy")


def monitor_figure(comparison: Any) -> Figure | None:
    """The update-to-parameter ratio ``||Δθ|| / ||θ||`` of each optimizer over training."""
    fig = F.new_figure(8.5, 4.6)
    ax = fig.subplots()
    drawn = 0
    for i, r in enumerate(comparison.results):
        got = seed_curves(r, "monitor/update_ratio")
        if got is None:
            continue
        steps, values = got
        with np.errstate(all="ignore"):
            values = np.where(values > 0, values, np.nan)
        _band(ax, steps, values, color_of(r.label, i), lw=1.8, label=r.choice.display)
        drawn += 1
    if not drawn:
        return None
    ax.axhline(1e-3, color="gray", ls=":", lw=1.2, label="1e-3 (rule of thumb)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(r"$\|\Delta\theta\| \,/\, \|\theta\|$ (log scale)")
    ax.set_title(
        "Update-to-parameter ratio per step (optimizer monitor, first seed's curve run)",
        fontsize=11,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, ncols=2, loc="best")
    return fig


def landscape_figures(comparison: Any) -> list[tuple[str, Figure]]:
    """The compared optimizers' paths on each landscape of the comparison
    (:attr:`~descentlab.experiments.compare.Comparison.landscapes`, computed with it: each
    optimizer at a learning rate for that terrain)."""
    out = []
    for race in comparison.landscapes:
        races = [F.Race(p.display, p.lr, p.trajectories) for p in race.paths]
        title = f"The same optimizers on the {race.name} landscape ({race.steps} steps)"
        out.append((race.name, F.comparison_figure(race.name, races, title=title)))
    return out
