"""Third-party optimizers get colours of their own: Schedule-Free AdamW from its package was
once drawn in Momentum's blue. Every fallback colour is at least 30 CIE76 units
(CIELAB, D65) from every registered optimizer's colour and from each other -- the
registered colours themselves are at least 16.8 apart."""

from __future__ import annotations

import itertools

import numpy as np

from descentlab import optim
from descentlab.report import figures as F


def _lab(hex_color: str) -> np.ndarray:
    """sRGB (D65) to CIELAB, the textbook formulas."""
    h = hex_color.lstrip("#")
    rgb = np.array([int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)])
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_third_party_colours_are_distinct_from_every_registered_one():
    registered = {optim.record(n).color for n in optim.NAMES}
    # the labels a comparison gives optimizers from outside descentlab, at positions 0..5
    labels = ["sfadamw_pkg", "prodigy", "lion_pt", "came", "adan_pt", "ademamix"]
    fallback = [F.color_of(label, i) for i, label in enumerate(labels)]
    assert len(set(fallback)) == len(fallback)
    for c in fallback:
        near = min(float(np.linalg.norm(_lab(c) - _lab(r))) for r in registered)
        assert near >= 30.0, (c, near)
    for a, b in itertools.combinations(fallback, 2):
        assert float(np.linalg.norm(_lab(a) - _lab(b))) >= 30.0, (a, b)
    # a registered name keeps its record's colour, in any case
    assert F.color_of("Momentum", 0) == optim.record("momentum").color


def _regression_comparison(tmp_path):
    import math

    from descentlab.experiments.compare import CompareSpec, Comparison, OptimizerResult
    from descentlab.experiments.compare.choices import parse_optimizer

    results = []
    for label in ("sgd", "momentum", "adam"):
        r = OptimizerResult(
            choice=parse_optimizer(label), candidates=[], best=None, curve_runs=[1] * 5,
            refit_runs=[1] * 5, test_accuracy=(math.nan,) * 3, test_loss=(0.5, 0.35, 0.65),
            steps_to_target=[], seconds_to_target=[], final_val_accuracy=[], final_val_loss=[],
            diverged_tuning=0, diverged_final=0, setting={"lr": 0.01},
            test_loss_seeds={s: 0.5 for s in range(5)},
        )  # fmt: skip
        results.append(r)
    spec = CompareSpec(optimizers=["sgd", "momentum", "adam"])
    return Comparison(spec, results, tmp_path, "regression", "val/rmse")


def test_the_regression_figures_title_is_not_clipped(tmp_path):
    from descentlab.report.compare_figures import final_results_figure

    fig = final_results_figure(_regression_comparison(tmp_path))
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent(renderer)
    width, height = fig.canvas.get_width_height()
    assert box.x0 >= 0 and box.x1 <= width and box.y1 <= height, (box, width)
