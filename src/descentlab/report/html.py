"""One self-contained HTML report of an optimizer comparison.

:func:`render_report` writes ``<run dir>/report.html``: a single file that opens offline in any
browser (figures embedded as base64 PNG, the style sheet inline, no scripts, no external
links; what it holds: docs/compare.md). ``descentlab report RUN_DIR`` re-renders it from the
store alone. The page (:mod:`descentlab.report.page`), the tables
(:mod:`descentlab.report.compare_tables`), the figures (:mod:`descentlab.report.compare_figures`)
and the lecture outputs (:mod:`descentlab.report.outputs`) live in their own modules; this one
lays out the sections.

Example:
    >>> from descentlab.experiments.compare import load_comparison
    >>> path = render_report(load_comparison("runs/mnist1d-default-1a2b3c4d"))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descentlab._files import write_atomic
from descentlab.problems.problem import problem_slug
from descentlab.report import compare_figures as CF
from descentlab.report.compare_export import EXPORT_FILES, write_exports
from descentlab.report.compare_tables import Tables, tables
from descentlab.report.outputs import render_outputs
from descentlab.report.page import (
    escape,
    figure,
    figure_data_uri,
    report_page,
    version,
)

__all__ = ["header", "render_report"]

_PROBLEMS = {
    "mnist1d": "MNIST-1D",
    "digits": "digits (8x8 images)",
    "moons": "two moons",
    "blobs": "Gaussian blobs",
    "regression": "1-D regression",
    "quadratic_deep": "DeepOBS quadratic_deep",
}
_MODELS = {
    "cnn": "CNN",
    "mlp": "MLP",
    "gru": "GRU",
    "digits_cnn": "CNN",
    "digits_mlp": "MLP",
    "logistic": "logistic regression",
    "linear": "linear model",
}

Section = tuple[str, str, str]  # (id, heading, html)


def render_report(
    comparison: Any,
    *,
    path: str | os.PathLike[str] | None = None,
    save_figures: bool = True,
) -> Path:
    """Write the comparison's self-contained HTML report.

    A function of ``comparison`` alone (a plain value from
    :func:`~descentlab.experiments.compare.compare` or
    :func:`~descentlab.experiments.compare.load_comparison`): no store query, no training,
    no search happens here.

    Args:
        comparison: a :class:`~descentlab.experiments.compare.Comparison`.
        path: the output file (default ``<run dir>/report.html``).
        save_figures: also write each figure as PNG under ``<run dir>/figures/``.

    Returns:
        The report's path.

    Writes:
        The report, one self-contained HTML file (its figures embedded), at ``path`` (default
        ``<run dir>/report.html``); beside it ``trials.csv`` (every trial and run) and
        ``comparison.json`` (the tables, the ranking, the protocol); with ``save_figures``
        each figure as PNG under ``<run dir>/figures/`` (skipped where that folder cannot be
        written). The report and the two exports are written atomically (never half-written).

    Raises:
        ValueError: ``path`` is a folder, or ``<run dir>/figures`` is a symbolic link
            (checked before anything is drawn).

    Example:
        A tiny comparison first (one optimizer, two learning rates, two seeds; seconds), read
        back from its store (:func:`~descentlab.experiments.compare.load_comparison`, as
        ``descentlab report`` reads it) and rendered:

        >>> import tempfile
        >>> from descentlab.experiments.compare import (
        ...     CompareSpec, compare, load_comparison)
        >>> from descentlab.report.html import render_report
        >>> spec = CompareSpec(problem="moons", problem_options={"n_samples": 200},
        ...                    model="mlp", optimizers=["adam"], batch_size=32,
        ...                    steps=40, tune_steps=20, lrs_per_optimizer=2, seeds=2,
        ...                    landscapes=())
        >>> folder = tempfile.TemporaryDirectory()
        >>> ran = compare(spec, folder.name, workers=1, progress=False)
        >>> result = load_comparison(ran.run_dir)
        >>> [r.label for r in result.results], result.complete
        (['adam'], True)
        >>> result.results[0].test_accuracy == ran.results[0].test_accuracy
        True
        >>> render_report(result) == result.run_dir / "report.html"
        True
        >>> sorted(p.name for p in result.run_dir.iterdir() if p.is_file())
        ['.lock', 'comparison.json', 'descentlab.sqlite', 'report.html', 'trials.csv']
        >>> {p.suffix for p in (result.run_dir / "figures").iterdir()}
        {'.png'}
        >>> render_report(result, path=folder.name)
        Traceback (most recent call last):
        ValueError: the report's path must be a file, got the folder ...
        >>> folder.cleanup()
    """
    out = Path(path) if path is not None else comparison.report_path
    if out.is_dir():
        raise ValueError(f"the report's path must be a file, got the folder {out}")
    fig_dir = _figure_folder(comparison.run_dir) if save_figures else None
    write_exports(comparison, out.parent)  # every trial and run, linked from the page
    write_atomic(out, _page(comparison, fig_dir))  # never half-written
    return out


def _figure_folder(run_dir: Path) -> Path | None:
    """``<run dir>/figures``, where each figure is also saved as PNG; None where that folder
    cannot be written (a read-only run folder: the report embeds its figures anyway).

    Raises:
        ValueError: ``figures`` is a symbolic link (a link planted there would make the report
            replace files outside the run folder).
    """
    from descentlab._files import check_out_dir

    folder = Path(run_dir) / "figures"
    if folder.is_symlink():
        raise ValueError(
            f"cannot write the report's figures into {folder}: it is a symbolic link (to "
            f"{os.readlink(folder)}); descentlab does not write through links -- remove it"
        )
    try:
        check_out_dir(folder, "figures")
    except ValueError:
        return None
    return folder


class _Figures:
    """Draws one figure of the report into its ``<figure>`` markup (and its PNG file)."""

    def __init__(self, fig_dir: Path | None, cmp: Any) -> None:
        self.fig_dir, self.cmp = fig_dir, cmp

    def html(self, name: str, fig: Any, caption: str, alt: str) -> str:
        if fig is None:
            return ""
        save = None if self.fig_dir is None else self.fig_dir / f"{name}.png"
        return figure(figure_data_uri(fig, save_to=save), caption, alt)

    def __call__(self, name: str, draw: Callable[..., Any], caption: str, alt: str) -> str:
        return self.html(name, draw(self.cmp), caption, alt)


def header(cmp: Any) -> tuple[str, str]:
    """The report's title (the problem's name, its model) and the line under it (HTML): the
    optimizers, how they were set, and the seeds they ran."""
    s = cmp.spec
    prov = cmp.record.provenance if cmp.record is not None else {}
    model = s.model or prov.get("model") or "default model"
    problem = _PROBLEMS.get(s.problem) or prov.get("problem_name") or problem_slug(s.problem)
    title = f"Optimizer comparison: {problem}, {_MODELS.get(model, model)}"
    if cmp.kind.title(s) is not None:  # (your own code: its function and file name it)
        title = f"Optimizer comparison: {cmp.kind.title(s)}"
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    labels = ", ".join(r.choice.display for r in cmp.results)
    tested = sorted({r.test_runs(cmp.classification) for r in cmp.results})
    tests = "-".join(map(str, dict.fromkeys([tested[0], tested[-1]]))) if tested else "0"
    tuned = any(not r.choice.fixed_lr for r in cmp.results)
    sub = (
        f"{len(cmp.results)} optimizers ({escape(labels)}), "
        f"{'tuned on validation data' if tuned else 'at fixed learning rates'}, {s.seeds} curve "
        f"seeds and {tests} test seeds each (as run). Rendered {now} by descentlab."
    )
    return title, sub


def _page(cmp: Any, fig_dir: Path | None) -> str:
    title, sub = header(cmp)
    figs = _Figures(fig_dir, cmp)
    t = tables(cmp)  # every table and text of the page, made once; the sections lay them out
    sections = [
        _results(cmp, t, figs),
        _curves(cmp, figs),
        _sensitivity(cmp, figs),
        *_time_to_target(cmp, figs),
        *_speed(t, figs),
        _monitor(cmp, figs),
        *_landscapes(cmp, figs),
        *_lectures(cmp),
        ("protocol", "Protocol", t.protocol),
        ("config", "Configuration and provenance", t.config),
    ]
    footer = (
        f"descentlab {escape(version())} · self-contained report (no external resources) ·\n"
        f"store: {escape(cmp.store_path.name)} in {escape(str(cmp.run_dir))}"
    )
    return report_page(title, sub, sections, footer)


def _metric(cmp: Any) -> str:
    return "accuracy" if cmp.task == "classification" else "loss"


def _results(cmp: Any, t: Tables, figs: _Figures) -> Section:
    parts = [t.verdict]
    if not cmp.complete:
        parts.append(
            '<p class="warn">This comparison is incomplete (it was stopped): rows without '
            "numbers have not finished. Run the same command again to continue.</p>"
        )
    parts.append(t.results)
    parts.append(f'<p class="sub">{t.note}</p>')
    csv_name, json_name = EXPORT_FILES
    parts.append(
        f'<p class="sub">Every trial and run: <a href="{csv_name}">{csv_name}</a> (one row '
        f'per run) and <a href="{json_name}">{json_name}</a> (the table, the paired tests '
        "and the same trials), beside this report.</p>"
    )
    parts.append(
        figs(
            "test_results",
            CF.final_results_figure,
            "Each optimizer at its chosen learning rate: the dot is the mean over seeds, the "
            "shaded bar the interval of the mean (seeds' and test examples' noise), ticks the "
            "individual seeds.",
            "test results per optimizer",
        )
    )
    return ("results", "Results", "\n".join(parts))


def _curves(cmp: Any, figs: _Figures) -> Section:
    metric = _metric(cmp)
    curves = [
        figs(
            "learning_curves",
            CF.learning_curves_figure,
            f"Training (solid) and validation (dashed) {metric} of the curve runs: mean over "
            f"{cmp.spec.seeds} seeds, band = min-max over seeds. A widening gap between the two "
            "is overfitting.",
            "learning curves per optimizer",
        ),
        figs(
            "validation_overlay",
            CF.validation_overlay_figure,
            f"All optimizers on common axes: validation {metric} (left), training loss against "
            + (
                "steps (middle) and against each run's own seconds (right; log scale): its "
                "forward/backward and optimizer time, a run trained in a vectorized pass "
                "charged its share, evaluations excluded."
                if CF.overlay_clock(cmp) == "progress/train_time"
                else "steps (middle) and against wall-clock seconds (right; log scale). Runs "
                "trained together in one vectorized pass share its clock, so the right panel "
                "compares optimizers' cost only where they trained in separate passes "
                "(--one-at-a-time trains each alone)."
            ),
            "validation accuracy and training loss of all optimizers",
        ),
    ]
    return ("curves", "Learning curves", "\n".join(curves))


def _sensitivity(cmp: Any, figs: _Figures) -> Section:
    sens = figs(
        "lr_sensitivity",
        CF.lr_sensitivity_figure,
        f"Final validation {_metric(cmp)} of every tuning trial against its learning rate "
        "(DeepOBS's tuneability picture). A flat, wide curve is an optimizer that is easy to "
        "tune; a narrow peak needs a careful search. Settings that failed "
        f"({cmp.kind.fails_when}) are in the strip under the axes, one row per optimizer, a "
        "marker per cause (the strip's title names them); points between the coarse grid's "
        "are its refinement, points beyond it its extension.",
        "learning-rate sensitivity",
    )
    return ("sensitivity", "Learning-rate sensitivity", sens)


def _time_to_target(cmp: Any, figs: _Figures) -> list[Section]:
    s = cmp.spec
    if cmp.target_accuracy is None:
        return []
    ttt = figs(
        "time_to_target",
        CF.time_to_target_figure,
        f"First evaluation at which validation accuracy reached {cmp.target_accuracy:g} "
        f"(evaluations every {s.curve_eval_every} steps, so steps are rounded up to that "
        "grid).",
        "time to target",
    )
    return [("time", "Time to target", ttt)]


def _speed(t: Tables, figs: _Figures) -> list[Section]:
    text = t.speed
    diff = figs(
        "difference_over_steps",
        CF.difference_figure,
        "How much worse each optimizer's curve runs are than the chosen one's on the "
        "validation score at every evaluation, paired by seed: a line crossing zero is a "
        "ranking that changed during training.",
        "paired difference over steps",
    )
    return [("speed", "Speedups", text + diff)] if text or diff else []


def _monitor(cmp: Any, figs: _Figures) -> Section:
    mon = figs(
        "update_ratio",
        CF.monitor_figure,
        "The optimizer monitor's update-to-parameter ratio ||Δθ|| / ||θ|| (all parameters), "
        f"recorded every {cmp.spec.curve_eval_every} steps of the first seed's curve run. "
        "Around 1e-3 is the usual rule of thumb (Karpathy, cs231n); much larger means steps "
        "that jump around, much smaller a learning rate too low to move the weights.",
        "update-to-parameter ratio",
    )
    return ("monitor", "Monitoring", mon or "<p>No monitor records.</p>")


def _landscapes(cmp: Any, figs: _Figures) -> list[Section]:
    lands = [
        figs.html(
            f"landscape_{name}",
            fig,
            f"The same optimizers on the {name} landscape of the momentum lecture (cs231n's "
            "animation), from one start, with learning rates tuned for this terrain "
            "(a network's learning rate means nothing on a 2-D function). Left: paths over the "
            "contour map; right: loss along the path.",
            f"{name} landscape",
        )
        for name, fig in CF.landscape_figures(cmp)
    ]
    if not lands:
        return []
    return [("landscapes", "The same optimizers on landscapes", "\n".join(lands))]


def _lectures(cmp: Any) -> list[Section]:
    folder = cmp.folder
    out = []
    if folder.outputs:
        out.append(("lectures", "Lecture experiments", render_outputs(folder.outputs)))
    if folder.lecture_book is not None:
        href = escape(folder.lecture_book)
        out.append(("book", "Lecture book", f'<p>Every claim of the lectures, shown and '
                    f'checked: <a href="{href}">the lecture book</a>.</p>'))  # fmt: skip
    return out
