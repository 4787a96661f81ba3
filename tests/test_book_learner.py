"""What a learner sees: check tables folded under a one-line summary, live figures that show
and explain a diverging curve, and exercises in every chapter."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from descentlab.book.cells import exercise_view
from descentlab.book.chapters import CHAPTERS, adaptive, convexity, momentum, schedules
from descentlab.book.render import pages
from descentlab.book.render.live import LIVE_JS
from descentlab.book.render.pages import Check


def _checks(*statuses: str) -> list[Check]:
    return [Check(f"check {i}", s, "1", "1") for i, s in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "summary", "opened"),
    [
        (("ok",) * 23, "23 checks ✔", False),
        (("ok",), "1 check ✔", False),
        (("ok", "fail", "ok"), "3 checks: 2 ✔, 1 ✘", True),
        (("ok", "not_reproduced"), "2 checks: 1 ✔, 1 ○", False),
    ],
)
def test_a_check_table_is_folded_under_its_summary(statuses, summary, opened):
    html = pages._checks_html(_checks(*statuses))
    m = re.fullmatch(
        r'<details class="checks"( open)?><summary>(.*?)</summary>(.*)</details>', html
    )
    assert m, html[:200]
    assert m.group(2) == summary and bool(m.group(1)) == opened  # a ✘ is never hidden
    assert m.group(3).count("<tr>") == len(statuses) + 1  # the rows, inside the fold


def test_every_card_check_table_is_folded():
    # a card's checks render folded; the row format the mutation script and book_marks read
    card_html = pages._checks_html(_checks("ok", "fail"))
    assert '<span class="no">✘</span></td><td>check 1</td>' in card_html
    assert not pages._checks_html(_checks("ok"), fold=False).startswith("<details")


_HEAD = LIVE_JS.split("function liveSetup")[0]


def _grid(lo: float, hi: float, log: bool, n: int = 9) -> list[float]:
    return [float(v) for v in (np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n))]


#: the live figures whose function a test can run (their sliders' ranges, their constants)
FIGURES = {
    "adaptive": (adaptive.MOVE_JS, {"T": adaptive.RAVINE_STEPS},
                 {"lr": [*_grid(0.003, 1.0, True), 0.313], "beta2": _grid(0.5, 0.9999, False)}),
    "momentum": (momentum.MOVE_JS, {"T": momentum.LIVE_STEPS},
                 {"lr": _grid(0.05, 4.2, False), "beta": _grid(0.0, 0.995, False)}),
    "schedules": (schedules.MOVE_JS, {"T": schedules.T}, {"a": _grid(0.05, 8.0, True)}),
    "convexity": (convexity.MOVE_JS, {"T": convexity.MOVE_STEPS, "target": convexity.TARGET},
                  {"kappa": _grid(1, 200, True), "lr": _grid(0.05, 2.2, False)}),
}  # fmt: skip


def _said(js: str, consts: dict, points: list[dict]) -> list[list[str]]:
    """The readout's divergence lines of the figure at each setting (run by node)."""
    prog = (
        f"{_HEAD}\nvar run = {js};\nvar C = {json.dumps(consts)}, P = {json.dumps(points)};\n"
        "console.log(JSON.stringify(P.map(function (p) {\n"
        "  return divergenceText(run(Object.assign({}, C, p))); })));"
    )
    out = subprocess.run(["node", "-e", prog], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


@needs_node
@pytest.mark.process
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_diverging_curve_of_a_live_figure_says_why(name):
    js, consts, sliders = FIGURES[name]
    points = [dict(zip(sliders, v, strict=True)) for v in itertools.product(*sliders.values())]
    said = _said(js, consts, points)
    silent = [(p, s) for p, ss in zip(points, said, strict=True) for s in ss if "no reason" in s]
    assert not silent, silent[:2]


@needs_node
@pytest.mark.process
def test_rmsprop_blowing_up_is_shown_and_explained():
    # η = 0.313, β₂ = 0.99: RMSProp converges, then its loss grows back to about 6
    js, consts, _ = FIGURES["adaptive"]
    (said,) = _said(js, consts, [{"lr": 0.313, "beta2": 0.99}])
    assert len(said) == 1 and said[0].startswith("RMSProp diverges: loss"), said
    rate = float(re.search(r"η/√v, was ([\d.]+)", said[0]).group(1))
    assert rate > 2 / 10 and "past 0.2" in said[0]  # the bound it crossed, 2/λ on λ = 10
    # and a converging setting says nothing
    assert _said(js, consts, [{"lr": 0.01, "beta2": 0.99}]) == [[]]


@needs_node
@pytest.mark.process
def test_a_figure_without_a_reason_is_told_so():
    js = adaptive.MOVE_JS.replace("why: {AdaGrad", "whyNot: {AdaGrad")
    (said,) = _said(js, FIGURES["adaptive"][1], [{"lr": 0.313, "beta2": 0.99}])
    assert said and "the figure gives no reason" in said[0]


_CHAPTER_EXERCISES = [(c.stem, i, ex) for c in CHAPTERS for i, ex in enumerate(c.exercises, 1)]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_every_chapter_has_three_exercises_that_refuse_a_misconception(chapter):
    assert len(chapter.exercises) >= 3, chapter.stem
    for ex in chapter.exercises:
        assert ex.numeric and re.search(r"^misconception = ", ex.code, re.MULTILINE), ex.question
        assert ex.items and set(ex.items) <= set(chapter.items), ex.items


@pytest.mark.parametrize(
    ("stem", "i", "ex"),
    [t for t in _CHAPTER_EXERCISES if t[0] in {
        "deep-momentum", "deep-adaptive", "deep-schedules", "deep-batch", "deep-regularization"}],
    ids=lambda v: str(v)[:24],
)  # fmt: skip
def test_a_chapter_exercise_is_measured_and_refuses_its_misconception(stem, i, ex):
    view = exercise_view(ex)
    assert view.check.ok, (stem, i, view.check.text, view.check.measured)
    # and its misconception, typed as the answer, is a failed check
    wrong = re.search(r"^misconception = (.*?)(?:\s+#.*)?$", ex.code, re.MULTILINE).group(1)
    bad = ex.code.replace("\nanswer = ", f"\nanswer = {wrong}\n_right = ", 1)
    if "(" in wrong and "," in wrong:  # a tuple: take its first
        bad = ex.code.replace("\nanswer = ", f"\nanswer = ({wrong})[0]\n_right = ", 1)
    assert not exercise_view(dataclasses.replace(ex, code=bad)).check.ok, (stem, i)
