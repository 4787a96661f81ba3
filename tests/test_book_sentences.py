"""Every ✔ of the book checks the sentence beside it: a table's column is checked against a
run, a claim's number is the one its comparison needs, a library option the book teaches is
shown at a value other than its default. Each test breaks the computation on purpose and
sees the check turn ✘."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest

from descentlab.book.cells import exercise_view
from descentlab.book.chapters import (
    conv_arithmetic,
    descent_modes,
    methodology,
    mle,
    momentum,
    schedules,
)
from descentlab.book.chapters._common import Numbers, Prose
from descentlab.book.checks import diff_check
from descentlab.book.model import Context
from descentlab.book.render.chapter import ChapterPage, Part, Practice, render_chapter
from descentlab.book.render.pages import Check, ExerciseView


def _book_marks():
    path = Path(__file__).resolve().parents[1] / "scripts" / "book_marks.py"
    spec = importlib.util.spec_from_file_location("book_marks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def momentum_trace():
    grid = momentum._grid()
    tr = momentum._quad([a for a, _ in grid], [b for _, b in grid], momentum.TRACE_STEPS, bound=1e6)
    return grid, tr


@pytest.mark.parametrize(("shift", "ok"), [(0, True), (1, True), (2, False), (-5, False)])
def test_the_momentum_tables_predicted_steps_are_checked_against_the_run(
    momentum_trace, monkeypatch, shift, ok
):
    power_steps = momentum._power_steps
    monkeypatch.setattr(
        momentum, "_power_steps", lambda a, b: v + shift if (v := power_steps(a, b)) else None
    )
    rows, checks, _ = momentum._trace_rows(*momentum_trace)
    steps = [c for c in checks if "predicted steps" in c.text]
    assert len(steps) == len(rows)  # one check a row
    converging = [c for c, r in zip(steps, rows, strict=True) if r[3] != "never"]
    assert all(c.ok is ok for c in converging), [c.measured for c in converging]


def _ignores_eta_min(self, step, base):
    return base * (1 + math.cos(math.pi * step / self.T_max)) / 2


@pytest.mark.parametrize(("broken", "ok"), [(False, True), (True, False)])
def test_the_schedules_table_shows_the_cosine_at_a_nonzero_eta_min(monkeypatch, broken, ok):
    """The book teaches `eta_min`: a library cosine that ignores it turns a row ✘."""
    from descentlab.schedules.torchlike import CosineAnnealing

    shown = [
        (name, lib, hand)
        for name, lib, hand in schedules.SCHEDULES
        if isinstance(lib, CosineAnnealing) and lib.eta_min > 0
    ]
    assert shown, "no cosine with eta_min > 0 in the schedules chapter's table"
    if broken:
        monkeypatch.setattr(CosineAnnealing, "_at", _ignores_eta_min)
    for _, lib, hand in shown:
        err = max(abs(lib(t) - hand(t)) for t in range(schedules.TABLE_T))
        assert diff_check("eta_min", err, 1e-12).ok is ok


@pytest.fixture(scope="module")
def descent_problem():
    p = descent_modes._problem()
    lam = np.linalg.eigvalsh(p["h"])
    return p, 2 / (lam[0] + lam[1]), lam, descent_modes._best_rates(p)[1]


def test_the_full_batch_wins_at_its_crossing_long_after_its_e_folding_count(descent_problem):
    """ "Would win after 1/(ηλmin) = 51.2 epochs" was a ✔ on the e-folding count alone."""
    p, eta, lam, lr = descent_problem
    iterated, closed = descent_modes._crossing(lr, 1, eta, p)
    assert iterated == closed > 3 / (eta * lam[0])
    floor = descent_modes._floor(lr, 1, p)
    assert descent_modes.exact(lr, 1, 60 * descent_modes.N, p)[-1] == pytest.approx(floor, 1e-6)


def test_a_wrong_floor_moves_the_closed_form_crossing_off_the_iterated_one(
    descent_problem, monkeypatch
):
    p, eta, _, lr = descent_problem
    floor = descent_modes._floor
    monkeypatch.setattr(descent_modes, "_floor", lambda *a: 0.8 * floor(*a))
    iterated, closed = descent_modes._crossing(lr, 1, eta, p)
    assert iterated != closed


@pytest.mark.parametrize(
    ("text", "claim"),
    [
        (descent_modes.KEEP, "beats drawing with replacement"),  # the runs end level
        (descent_modes.SAMPLING.text, "never worse"),  # nothing here measures "never"
        (descent_modes.EPOCH.text, "would win after"),  # the e-folding count is no crossing
    ],
)
def test_the_descent_chapter_claims_nothing_its_runs_contradict(text, claim):
    assert claim not in text


def test_the_convolution_chapter_states_alexnets_share_and_the_output_it_maps_to():
    """ "98.8 % of the network" is the lecture's miscount (fc6 fed 13 × 13 maps); AlexNet pools
    to 6 × 6 first. "32 × 32 images" for a map whose output is 28 × 28."""
    n = Numbers(*conv_arithmetic.CHAPTER.settings)
    text = conv_arithmetic._channels(Context(True, None, lambda m: None), n).blocks[0]
    assert all(c.ok for c in n.drain())
    fc = 6 * 6 * 256 * 4096 + 4096 * 4096 + 4096 * 1000  # the paper's dense layers, by hand
    conv = 2 * (11 * 11 * 3 * 48 + 5 * 5 * 48 * 128 + 3 * 3 * 192 * 192 + 3 * 3 * 192 * 128)
    conv += 3 * 3 * 256 * 384
    assert f"{fc} weights, {100 * fc / (conv + fc):.3g} % of the network" in text
    side = conv_arithmetic.HW - conv_arithmetic.K2 + 1
    assert f"to the\n{side} × {side} map" in text or f"to the {side} × {side} map" in text


def test_a_fully_grown_tree_on_one_feature_is_the_nearest_neighbour_rule():
    """The bagging paragraph's second route is another computation, not the trees re-seeded."""
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 30), rng.standard_normal(30)
    idx = rng.integers(0, 30, 30)  # a bootstrap draw: repeated examples
    xt = np.linspace(-1, 1, 200)
    tree = DecisionTreeRegressor(random_state=0).fit(x[idx, None], y[idx]).predict(xt[:, None])
    assert np.array_equal(methodology._nearest(x[idx], y[idx], xt), tree)


def test_the_bagging_twins_turn_red_when_the_nearest_neighbour_rule_is_wrong(monkeypatch):
    single, bagged, nn_single, nn_bagged = methodology._bagging(6)
    assert (single, bagged) == pytest.approx((nn_single, nn_bagged), rel=1e-12)
    nearest = methodology._nearest
    monkeypatch.setattr(methodology, "_nearest", lambda x, y, xt: nearest(x, y, xt + 0.01))
    single, bagged, nn_single, nn_bagged = methodology._bagging(6)
    assert single != pytest.approx(nn_single, rel=1e-9)


def test_the_gap_grows_with_the_degree_over_draws_by_two_solvers():
    """One draw's gap is larger at degree 1 than at 12; the section now says so and shows the
    median over draws, where the flexible model's gap is the larger."""
    gaps = np.median(methodology._gap_draws(), axis=1)
    assert gaps[0] == pytest.approx(gaps[1], rel=1e-3)
    assert gaps[0, 1] > 5 * gaps[0, 0]
    assert "in a section on overfitting" in methodology.GAP.text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (methodology.RESAMPLING.text, "all n draws with ${{f:bootstrap_miss}}$"),  # not "a draw"
        (methodology.CV.text, "That is below σ²"),  # the estimate under the floor, said
    ],
)
def test_the_methodology_chapter_says_what_its_numbers_show(text, words):
    assert words in text


def test_the_batch_chapter_cites_item_71s_card_with_what_the_quick_build_found():
    """The card is ○ (reversed) in the quick build: a chapter citing it as a measurement of the
    claim must say so wherever it cites it."""
    from descentlab.book.chapters import batch

    prose = " ".join(
        v.text for v in vars(batch).values() if isinstance(v, Prose) and "item 71" in v.text
    )
    cites = [m.start() for m in re.finditer(r"card \(item 71\)|item 71's card", prose)]
    assert cites
    for at in cites:
        assert "○" in prose[at : at + 300], prose[at : at + 300]


@pytest.mark.parametrize(
    "module", [descent_modes, conv_arithmetic, methodology, mle], ids=lambda m: m.__name__
)
def test_a_deep_chapter_has_four_exercises_that_refuse_their_misconceptions(module):
    views = [exercise_view(ex) for ex in module.CHAPTER.exercises]
    assert len(views) >= 4 and all(v.check.ok for v in views), [v.check for v in views]
    for ex in module.CHAPTER.exercises:
        assert "misconception =" in ex.code and ex.question.count("?") == 1
        assert set(ex.items) <= set(module.CHAPTER.items)


def test_a_chapters_exercises_are_sealed_and_their_checks_are_the_pages():
    ok = ExerciseView(
        "What is 1/4?",
        "A quarter.",
        "answer = 0.25",
        "",
        Check("agrees", "ok", "0.25", "0.25"),
        answer="0.25",
        value=0.25,
        tol=1e-9,
    )
    bad = dataclasses.replace(ok, check=Check("agrees", "fail", "0.3", "0.25"))
    for view, fails in ((ok, 0), (bad, 1)):
        page = ChapterPage(
            "T", "deep-t.html", "s", (1,), [Part("practice", "P", [Practice([view])])]
        )
        html = render_chapter(page, "q")
        assert page.counts()["fail"] == fails and "status.hidden = details.open" in html
        assert 'data-sealed="' in html and "A quarter." not in html
        assert len(_book_marks().failed_checks(html)) == fails  # make docs refuses it


@pytest.mark.parametrize(("ignored", "ok"), [(False, True), (True, False)])
def test_the_momentum_chapter_shows_dampening_and_a_library_that_ignores_it_fails(
    monkeypatch, ignored, ok
):
    if ignored:
        real = momentum.optim.Momentum
        monkeypatch.setattr(
            momentum.optim, "Momentum", lambda p, dampening=0.0, **kw: real(p, **kw)
        )
    n = Numbers(*momentum.CHAPTER.settings)
    text = momentum._average(Context(True, None, lambda m: None), n).blocks[0]
    damped = [c for c in n.drain() if "dampening" in c.text]
    assert "`dampening` = 0.5" in text and len(damped) == 2
    assert all(c.ok is ok for c in damped), [c.measured for c in damped]
