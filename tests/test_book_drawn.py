"""A book figure is checked from what was drawn (descentlab.book.render.drawn): its axis
scales against the span of its data, its axis units against the unit of the table column
holding its curves, its legends against its curves and its other panel."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from descentlab.book.render.chapter import Table
from descentlab.book.render.drawn import (
    curve_needs_log,
    curves_need_log,
    figure_mismatches,
    needs_log,
    unit,
)

SIZES = [1, 4, 16, 64, 256, 1024]
MICROS = [900.0, 260.0, 70.0, 21.0, 6.5, 2.4]


def _figure(
    yscale: str = "log",
    ylabel: str = "time per example (µs)",
    legend2: tuple[int, ...] = (0, 1),
    colour2: tuple[str, str] = ("C0", "C1"),
) -> Figure:
    """Two panels drawn as the book draws its cost figure: the cost per example (µs, over
    decades) and its loss, each with the two curves' legend."""
    fig = Figure()
    a, b = fig.subplots(1, 2)
    a.plot(SIZES, MICROS, color="C0", label="compute")
    a.plot(SIZES, [2 * m for m in MICROS], color="C1", label="wall clock")
    a.set_xscale("log")
    a.set_yscale(yscale)
    a.set_ylabel(ylabel)
    a.legend()
    lines = [
        b.plot(SIZES, [0.5, 0.4, 0.3, 0.3, 0.31, 0.33], color=colour2[0], label="compute")[0],
        b.plot(SIZES, [0.6, 0.5, 0.4, 0.35, 0.3, 0.3], color=colour2[1], label="wall clock")[0],
    ]
    b.set_xscale("log")
    b.legend([lines[i] for i in legend2], [lines[i].get_label() for i in legend2])
    return fig


TABLE = Table(
    ["batch", "compute per example (µs)"], [[s, m] for s, m in zip(SIZES, MICROS, strict=True)], ""
)


@pytest.mark.parametrize(
    ("kind", "fig", "caught"),
    [
        ("as drawn", _figure(), ""),
        ("log axis made linear", _figure(yscale="linear"), "decades on a linear axis"),
        ("unit µs -> ms", _figure(ylabel="time per example (ms)"), "in ms, its data in µs"),
        ("unit µs -> s", _figure(ylabel="time per example (s)"), "in s, its data in µs"),
        ("legend reversed against the other panel", _figure(legend2=(1, 0)), "legends list"),
        ("colours swapped against the other panel", _figure(colour2=("C1", "C0")), "“compute”"),
    ],
)
def test_a_figure_is_checked_from_what_was_drawn(kind, fig, caught):
    found = figure_mismatches(fig, [TABLE])
    if not caught:
        assert found == []
    else:
        assert any(caught in f for f in found), (kind, found)


def test_a_legend_drawn_in_another_curves_colour_is_refused():
    fig = Figure()
    ax = fig.subplots()
    a = ax.plot([1, 2], [1, 2], color="C0", label="heavy ball")[0]
    b = ax.plot([1, 2], [2, 1], color="C1", label="Nesterov")[0]
    ax.legend([b, a], ["heavy ball", "Nesterov"])  # (the texts put on the other handles)
    assert [f for f in figure_mismatches(fig) if "legend" in f] != []


@pytest.mark.parametrize(
    ("label", "expected"),
    [("time per example (µs)", "µs"), ("wall (s)", "s"), ("loss", None), ("f(x)", None)],
)
def test_the_unit_a_label_states(label, expected):
    assert unit(label) == expected


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([2.3, 0.5, 1e-3], True),
        ([2.3, 0.5, 0.05], True),
        ([2.3, 0.5, 0.4], False),
        ([1.0, 0.0, 1e-6], False),
    ],
)
def test_curves_over_decades_ask_a_log_axis(values, log):
    """The book's training figures choose their y scale by the rule the check refuses."""
    assert needs_log(values) is log


_T = np.arange(40.0)


@pytest.mark.parametrize(
    ("y", "why"),
    [
        (0.95**_T, "falls geometrically"),  # 0.9 decade: a geometric fall, straight on log
        (2.0 * 1.04**_T, "falls geometrically"),  # a geometric growth alike
        (0.5 ** (_T // 4), "falls geometrically"),  # a staircase of halvings (step decay)
        (1 - 0.9 ** (_T + 1), ""),  # a buffer filling: not straight on a log axis
        (0.3 + 0.7 * 0.9**_T, ""),  # a fall to a floor over less than a factor 3
        (np.sin(_T) + 2.0, ""),  # an oscillation, no trend
        (np.r_[0.0, 0.9 ** _T[1:]], ""),  # a zero: a log axis would drop it
    ],
)  # fmt: skip
def test_a_curve_that_falls_geometrically_asks_a_log_axis_whatever_its_decades(y, why):
    assert (curve_needs_log(_T, y) != "") == bool(why)
    assert why in curve_needs_log(_T, y)


def test_a_geometric_fall_on_a_linear_axis_is_refused_under_one_decade():
    """The mutant kind that survived a rule of decades alone: a loss falling by a factor 8
    over its run, its log axis made linear."""
    fig = Figure()
    ax = fig.subplots()
    ax.plot(_T, 0.95**_T, label="loss")
    assert figure_mismatches(fig) == [
        "axes 1: “loss” falls geometrically (log y straight in x, R² = 1.00) on a linear axis"
    ]
    ax.set_yscale("log")
    assert figure_mismatches(fig) == []
    assert curves_need_log([(_T, 0.95**_T), (_T, np.ones_like(_T))])
