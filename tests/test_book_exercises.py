"""The book's exercises make the reader work: at least 60, numeric ones with the answer hidden
until asked and checked in the page (a typed number gets ✔ or ✘ with the tolerance, no server),
open-ended ones with a folded worked solution; each links the items it practises and each of
those cards links back; every numeric answer is still computed and checked by the build
(tests/test_book_teaching.py runs them)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from _browser import CHROMIUM, opened

from descentlab.book.build import exercise
from descentlab.book.cells import CellRun, exercise_check, unchecked_numbers
from descentlab.book.lectures import LECTURES
from descentlab.book.model import Exercise
from descentlab.book.render.pages import (
    READER_TOL,
    Card,
    Check,
    Evidence,
    ExerciseView,
    LecturePage,
    reader_tol,
    render_lecture,
    unseal,
)

ALL = [(lec, i, ex) for lec in LECTURES for i, ex in enumerate(lec.exercises, 1)]


def test_there_are_sixty_exercises_numeric_and_open_in_every_lecture():
    numeric = [ex for _, _, ex in ALL if ex.numeric]
    assert len(ALL) >= 60 and len(numeric) >= 30 and len(ALL) - len(numeric) >= 20
    for lec in LECTURES:
        kinds = {ex.numeric for ex in lec.exercises}
        assert kinds == {True, False}, f"{lec.slug}: numeric and open exercises both"


@pytest.mark.parametrize(("lec", "i", "ex"), ALL, ids=lambda v: getattr(v, "slug", str(v)))
def test_every_exercise_practises_items_of_its_lecture(lec, i, ex):
    assert ex.items, f"{lec.slug} exercise {i} names no item"
    assert set(ex.items) <= {it.number for it in lec.items}
    assert ex.solution.strip() and ex.question.strip()


def test_every_derivation_item_and_every_lecture_optimizer_is_practised():
    practised = {n for _, _, ex in ALL for n in ex.items}
    derivations = [it.number for lec in LECTURES for it in lec.items if "F" in it.kind.split("/")
                   and it.show]  # fmt: skip
    missing = [n for n in derivations if n not in practised]
    assert len(derivations) >= 20 and missing == [], missing
    for words in ("Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam", "Adadelta"):
        assert any(words.lower() in ex.question.lower() + ex.solution.lower()
                   for _, _, ex in ALL), words  # fmt: skip


def _page(numeric_status: str = "ok") -> str:
    cards = [Card(f"i{n}", f"item {n}", "s", "claim", f"claim {n}", "", "f", Evidence())
             for n in (5, 6)]  # fmt: skip
    exercises = [
        ExerciseView("What is 1/4?", "It is a quarter.", "answer = 0.25", "",
                     Check("agrees", numeric_status, "0.25", "0.25"), answer="0.25",
                     value=0.25, tol=1e-9, items=(5,)),
        ExerciseView("Why?", "Because of *this*.", "", "", None, items=(5, 6)),
    ]  # fmt: skip
    return render_lecture(LecturePage("L", "o", "s", "l.html", cards, exercises=exercises), "q")


def _sealed(html: str, n: int) -> dict:
    ex = html.split(f'id="ex{n}"', 1)[1].split(">", 1)[0]
    sealed, key = (re.search(rf'data-{k}="([^"]*)"', ex).group(1) for k in ("sealed", "key"))
    return json.loads(unseal(sealed, key))


def test_a_numeric_answer_is_sealed_until_asked_and_an_open_one_is_folded():
    """The answer is in no form the page's source shows (not its digits, not the worked
    solution that states it): the page's script decodes it to check a typed number and to show
    the solution when asked."""
    html = _page()
    ex1 = html.split('id="ex1"', 1)[1].split('id="ex2"', 1)[0]
    before, folded = ex1.split("<details>", 1)
    text = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # (its help names 0.25)
    assert "0.25" not in text  # neither shown nor in an attribute
    payload = _sealed(html, 1)
    assert payload["answer"] == 0.25 and payload["tol"] == reader_tol(_ex())
    assert "<b>0.25</b>" in payload["html"] and "It is a quarter." in payload["html"]
    assert '<input type="text"' in before and 'class="check"' in before
    assert "Show the answer and the worked solution" in folded and 'class="sealed"' in folded
    ex2 = html.split('id="ex2"', 1)[1]
    assert "<summary>Worked solution</summary>" in ex2 and "<em>this</em>" in ex2
    assert "<input" not in ex2.split("</div>", 1)[0]
    assert html.count("<script>") == 1 and "<script src" not in html


def _ex() -> ExerciseView:
    return ExerciseView("q", "s", "c", "", Check("a", "ok", "1", "1"), value=0.25, tol=1e-9)


def test_exercises_and_cards_link_each_other():
    html = _page()
    assert '(practises <a href="#i5">item 5</a>)' in html
    assert '(practises <a href="#i5">item 5</a>, <a href="#i6">item 6</a>)' in html
    card5 = html.split('id="i5"', 1)[1].split("</section>", 1)[0]
    card6 = html.split('id="i6"', 1)[1].split("</section>", 1)[0]
    assert '<a href="#ex1">exercise 1</a>, <a href="#ex2">exercise 2</a>' in card5
    assert '<a href="#ex2">exercise 2</a>' in card6 and "#ex1" not in card6


@pytest.mark.parametrize(("status", "counted"), [("ok", 0), ("fail", 1)])
def test_a_wrong_build_answer_is_still_a_failed_check(status, counted):
    assert _page(status).count('<td class="mark"><span class="no">✘</span>') == counted


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium")
@pytest.mark.parametrize(
    ("typed", "verdict"),
    [
        ("0.25", "✔ Right: within 1.0 % of the answer."),
        ("1/4", "✔ Right"),
        ("0.2524", "✔ Right"),  # within 1 %
        ("0.26", "✘ Not within 1.0 % of the answer"),
        ("−0.25", "✘ Not within"),
        ("a quarter", "Type a number"),
        ("", "Type a number"),
    ],
)
def test_the_page_checks_a_typed_answer_with_no_server(tmp_path, typed, verdict):
    page_file = tmp_path / "l.html"
    page_file.write_text(_page(), encoding="utf-8")
    with opened(page_file) as (page, errors):  # a file: no server
        page.fill("#ex1 input", typed)
        page.click("#ex1 button.check")
        said = page.inner_text("#ex1 .verdict")
        assert not page.is_visible("#ex1 .answer")  # still hidden: the reader did not ask
        page.press("#ex1 input", "Enter")
        assert page.inner_text("#ex1 .verdict") == said
        page.click("#ex1 summary")  # asked: the page decodes the answer and the solution
        answer = page.inner_text("#ex1 .answer")
        shown = [t.is_visible() for t in page.query_selector_all("#ex1 table.checks")]
    assert shown.count(True) == 1  # the check once, the solution's
    assert answer.startswith("Answer: 0.25")
    assert said.startswith(verdict) and errors == []


def _ran(**namespace) -> CellRun:
    return CellRun("", "", "", 0.0, {"measured": 0.9525, "answer": 0.9525} | namespace)


@pytest.mark.parametrize(
    ("namespace", "ok"),
    [
        ({"tol": 0.05}, True),  # no misconception stated: the tolerance alone
        ({"tol": 0.02, "misconception": 1.0}, True),  # 1 is 4.99 % away: refused
        ({"tol": 0.05, "misconception": 1.0}, False),  # the page would say "✔ Right" to 1
        ({"tol": 0.001, "misconception": 0.95}, False),  # within the page's own 1 %
        ({"tol": 0.02, "misconception": (1.0, 0.0526)}, True),
        ({"tol": 0.02, "misconception": (0.0526, 0.96)}, False),  # any one admitted fails
    ],
)
def test_an_exercise_whose_page_accepts_its_misconception_fails(namespace, ok):
    check = exercise_check(Exercise("q", "s", "answer = 1"), _ran(**namespace))
    assert check.ok is ok
    if not ok:
        assert "misconception" in check.text and "%" in check.measured


def test_the_momentum_noise_exercise_refuses_one():
    (ex,) = [ex for _, _, ex in ALL if "momentum's noise floor" in ex.question]
    view = exercise(ex)
    assert view.check.ok, view.check.measured
    assert abs(1.0 - view.value) / view.value > reader_tol(view)
    assert re.search(r"^misconception = \(1\.0,", ex.code, re.MULTILINE)


@pytest.mark.parametrize(
    ("solution", "typed"),
    [
        ("`0.1/√t`: 0.02 at t = 25, whatever g is.", []),  # the answer, and the question's 25
        ("`0.1/√t`: 0.2 at t = 25, whatever g is.", ["0.2"]),  # a tenfold slip
        ("the step `0.1/√25 = 0.02`: in a formula", []),
        ("the step `0.1/√25 = 0.2`: in a formula", ["0.2"]),  # formulas are audited too
        ("`0.2/√t`: 0.02 at t = 25", ["0.2"]),  # a formula's slip beside the right answer
        ("`r_t = 9t`, `h = 25·9 = 225`", ["9", "9", "225"]),  # a formula's intermediates
        ("a tolerance of `10⁻²`, not `10⁻³`", ["1e-3"]),  # a power of ten is one number
        ("`-0.02` is the update", []),  # a sign is no part of the number
        ("20,000 runs of item 108, tolerance 1 %", []),  # the code's digits, its tol in %
        ("tolerance 4 %", ["4 %"]),
        ("0.0200 then 7", ["7"]),
    ],
)
def test_a_worked_solution_states_no_number_nothing_computed(solution, typed):
    ex = Exercise("AdaGrad (lr 0.1) sees g = 3. Its 25th step?", solution, "n = 20000\n")
    namespace = {"answer": 0.1 / 25**0.5, "tol": 0.01, "n": 20000}
    assert unchecked_numbers(ex, namespace) == typed
    check = exercise_check(ex, _ran(**namespace, measured=namespace["answer"]))
    assert check.ok is not typed


@pytest.mark.parametrize(
    ("right", "slip"),
    [
        ("0.02 at", "0.2 at"),  # in the prose
        (": 0.02 at t = 25", ": `0.1/√25 = 0.2` at t = 25"),  # inside a formula
        ("`r_t = t g²`", "`r_t = t g² = 25·9 = 225`"),  # a formula's intermediate, 25·9 = 225
    ],
)
def test_a_solutions_slip_beside_its_computed_answer_is_a_failed_check(right, slip):
    (ex,) = [ex for _, _, ex in ALL if "How large is its 25th step" in ex.question]
    assert right in ex.solution and exercise(ex).check.ok
    slipped = exercise(dataclasses.replace(ex, solution=ex.solution.replace(right, slip)))
    assert not slipped.check.ok and "typed by hand" in slipped.check.measured


@pytest.mark.parametrize(("lec", "i", "ex"), ALL, ids=lambda v: getattr(v, "slug", str(v)))
def test_a_numeric_exercise_asks_one_question_for_its_one_box(lec, i, ex):
    if ex.numeric:
        assert ex.question.count("?") == 1, f"{lec.slug} exercise {i}: {ex.question}"


@pytest.mark.parametrize(
    ("span", "html"),
    [
        ("η/B", '<span class="formula">η/B</span>'),
        ("e^5", '<span class="formula">e^5</span>'),
        ("β₂", '<span class="formula">β₂</span>'),
        ("1 - ηa", '<span class="formula">1 - ηa</span>'),
        ("f(w) = ½ wᵀHw", '<span class="formula">f(w) = ½ wᵀHw</span>'),
        ("optim.SGD(lr=0.1)", "<code>optim.SGD(lr=0.1)</code>"),
        ("conv1d", "<code>conv1d</code>"),
    ],
)
def test_a_backquoted_formula_is_set_in_the_bodys_font_and_code_in_codes(span, html):
    exercises = [ExerciseView(f"What is `{span}`?", "s", "", "", None)]
    assert html in render_lecture(
        LecturePage("L", "o", "s", "l.html", [], exercises=exercises), "q"
    )


def test_an_opened_exercise_shows_its_check_once():
    """The check's row under the exercise is hidden when the solution, which carries it with
    what was measured, is opened."""
    ex1 = _page().split('id="ex1"', 1)[1].split('id="ex2"', 1)[0]
    assert ex1.count('<table class="checks">') == 1  # the solution's is sealed until opened
    assert '<div class="status">' in ex1.split("</details>", 1)[1]
    assert "status.hidden = details.open" in _page()


@pytest.mark.parametrize(("lec", "i", "ex"), ALL, ids=lambda v: getattr(v, "slug", str(v)))
def test_an_exercise_wider_than_the_pages_one_percent_states_its_misconception(lec, i, ex):
    """A tolerance wider than the page's own 1 % must say what it still refuses (its check
    then fails if it admits it)."""
    tol = re.search(r"^tol = ([0-9.e-]+)", ex.code, re.MULTILINE)
    if ex.numeric and tol and float(tol.group(1)) > READER_TOL:
        assert re.search(r"^misconception = ", ex.code, re.MULTILINE), f"{lec.slug} {i}"
