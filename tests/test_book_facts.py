"""One source for each fact: what surrounds a checked number -- the comparative word beside
it, the formula that states it, the label on its curve or table, a restatement on another page,
an API default, a twin's seeds -- is checked against the numbers. Each test refuses a wrong
one (a mutant of scripts/mutate_book.py) and lets through the right ones of a table."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path

import pytest
from _scripts import script

from descentlab.book import facts
from descentlab.book.build import card
from descentlab.book.cells import exercise_view
from descentlab.book.chapters._common import Chapter, Numbers, Table, labels_check
from descentlab.book.lectures import LECTURES
from descentlab.book.model import Context
from descentlab.book.render.chapter import ChapterPage, Part
from descentlab.book.render.pages import Evidence

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    sys.path.insert(0, str(ROOT / "scripts"))  # (its script imports its neighbours)
    return script(name)


# 1. words from numbers ----------------------------------------------------------------------

RIGHT_WORDS = [
    "same half needs 2400 examples drawn, more than the 1000 the training set holds",
    "The curvatures differ (6 against 2), so descent shrinks `x - 2` faster than `y`",
    "by step 10,000 it is 100 times smaller than at step 1",  # a factor, not compared
    "as for β₂ = 0.99, and larger than η when β₂ is closer to 1",  # the compared is a symbol
    "the 12 runs take fewer than 20 steps",
]
WRONG_WORDS = [
    "same half needs 2400 examples drawn, fewer than the 1000 the training set holds",
    "The curvatures differ (6 against 2), so descent shrinks `x - 2` slower than `y`",
    "the 12 runs take more than 20 steps",
]


@pytest.mark.parametrize("text", RIGHT_WORDS)
def test_a_comparative_its_numbers_give_passes(text):
    assert facts.relation_words(text) == []


@pytest.mark.parametrize("text", WRONG_WORDS)
def test_a_comparative_its_numbers_contradict_is_refused(text):
    assert len(facts.relation_words(text)) == 1


def _item(number: int):
    return next(it for lec in LECTURES for it in lec.items if it.number == number)


@pytest.mark.parametrize(
    ("number", "old", "new"),
    [
        (35, "shrinks `x - 2` faster than", "shrinks `x - 2` slower than"),
        (103, "`1 - 0.18·10 = -0.8`", "`1 + 0.18·10 = -0.8`"),
    ],
)
def test_a_cards_explanation_is_checked_against_its_numbers(number, old, new):
    """A lecture card's explanation was free text: a flipped word or a formula's sign passed."""
    item = dataclasses.replace(_item(number), code="")
    right = card(item, Evidence([], []))
    flipped = dataclasses.replace(item, explain=item.explain.replace(old, new))
    wrong = card(flipped, Evidence([], []))
    # without its cell a card's readings of what the cell printed are ✘ on both pages; the
    # flipped number or word is a ✘ of its own that the right page does not have
    failed = {c.text for c in wrong.evidence.checks if c.failed}
    assert any(c.ok for c in right.evidence.checks)
    new_fails = failed - {c.text for c in right.evidence.checks if c.failed}
    # the numbers' row, and where the card types the relation as a row of its own
    # (card_formulas.FORMULAS) that row too
    assert any(t.startswith("every comparative word") for t in new_fails), new_fails
    assert all(t.startswith(("every comparative word", "the typed relation")) for t in new_fails)


# 2. formulas evaluated at the page's numbers -------------------------------------------------

RIGHT_FORMULAS = [
    ("`1 - 1/κ = 0.98`", "κ = 50"),
    ("`⌊(224 + 2·3 - 7)/2⌋ + 1 = ⌊223/2⌋ + 1 = 112`", ""),
    ("`6(2x - 1)² = 6·1.5² = 13.5`", "at x = 1.25"),
    ("`r₂ = 0.9·2.5 + 0.1·25 = 4.75`", ""),
    ("`128·(64·9 + 1) = 73,856`", ""),
    ("`2·0.6¹⁰ ≈ 0.012`", ""),
    ("$\\frac{\\kappa - 1}{\\kappa + 1} = 0.8$", "κ = 9"),
    ("`f_y = 6xy - 10y = 12 - 20 = -8`", "f = 3xy² + 1"),  # xy unbound: not evaluated
    ("`Σ 1/t² = π²/6`", ""),  # a sum: not this reader's
    # β, γ, ζ: names SymPy also reads as its functions (beta, gamma, zeta)
    ("`2(1 + β)/λ = 1.9`", "β = 0.9, λ = 2"),
    ("`1/(1 - γ) = 10`", "γ = 0.9"),
    ("`ζ·(1 - β) = 0.05`", "ζ = 0.5, β = 0.9"),
    ("$\\frac{1 - \\tau}{1 - \\beta} = 5$", "τ = 0.5, β = 0.9"),
]
WRONG_FORMULAS = [
    ("`1 - 1/κ² = 0.98`", "κ = 50"),
    ("`6(2x - 1)² = 6·1.5³ = 13.5`", "at x = 1.25"),
    ("`r₂ = 0.1·2.5 + 0.9·25 = 4.75`", ""),
    ("`1 + 0.18·10 = -0.8`", ""),
    ("`2(1 - β)/λ = 1.9`", "β = 0.9, λ = 2"),
    ("`1/(1 + γ) = 10`", "γ = 0.9"),
    ("`ζ·(1 + β) = 0.05`", "ζ = 0.5, β = 0.9"),
    ("$\\frac{1 + \\tau}{1 - \\beta} = 5$", "τ = 0.5, β = 0.9"),
]


@pytest.mark.parametrize("greek", [g for g in facts._GREEK if g != "π"])  # (π is the number)
def test_every_greek_letter_is_read_as_a_symbol_not_a_function(greek):
    """SymPy reads ``beta``, ``gamma`` and ``zeta`` as its functions: a formula holding β, γ or
    ζ was never evaluated, so a wrong one passed unread."""
    assert facts.evaluate(f"2(1 + {greek})/3", {greek: 0.5}) == pytest.approx(1.0)


@pytest.mark.parametrize(("text", "context"), RIGHT_FORMULAS)
def test_a_formula_that_states_its_value_passes(text, context):
    assert facts.formula_mismatches(text, context) == []


@pytest.mark.parametrize(("text", "context"), WRONG_FORMULAS)
def test_a_formula_whose_value_is_not_what_it_computes_is_refused(text, context):
    assert len(facts.formula_mismatches(text, context)) == 1


def _exercise(piece: str):
    return next(ex for lec in LECTURES for ex in lec.exercises if piece in ex.question)


@pytest.mark.parametrize(
    ("piece", "old", "new"),
    [
        ("What is d/dx (2x - 1)³", "{1.5}^{2} = 13.5", "{1.5}^{3} = 13.5"),
        ("sees the gradient 5 twice", "0.9 \\cdot 2.5 + 0.1 \\cdot 25 = 4.75",
         "0.1 \\cdot 2.5 + 0.9 \\cdot 25 = 4.75"),
    ],
)  # fmt: skip
def test_a_worked_solutions_formula_is_computed_not_read_as_numbers(piece, old, new):
    """A formula typed into a solution (here the rendered one, retyped) is evaluated."""
    ex = _exercise(piece)
    right = exercise_view(ex)
    assert right.check.ok and old in right.solution
    typed = dataclasses.replace(ex, solution=right.solution.replace(old, new))
    wrong = exercise_view(typed)
    assert wrong.check.failed and "formula" in wrong.check.text


# 3. labels from data -------------------------------------------------------------------------


def _page(caption: str, rows, curves=None) -> ChapterPage:
    from descentlab.report import figures as FG

    blocks: list = [Table(["run", "final loss"], rows, caption)]
    if curves:
        fig = FG.new_figure(4, 3)
        ax = fig.subplots()
        for label, ys in curves.items():
            ax.plot(range(len(ys)), ys, label=label)
        blocks.append(fig)
    return ChapterPage("t", "deep-t.html", "", (), [Part("p", "P", [*blocks, []])])


@pytest.mark.parametrize(
    ("caption", "rows", "curves", "ok"),
    [
        ("400 steps from w = -2", [["SGD", 0.5], ["Adam", 0.1]], None, True),  # a setting
        ("mean of 0.5 and more", [["SGD", 0.5], ["Adam", 0.1]], None, True),  # its data
        ("500 steps from w = -2", [["SGD", 0.5], ["Adam", 0.1]], None, False),  # typed
        ("runs", [["SGD", 0.5], ["Adam", 0.1]], {"SGD": [1, 0.5], "Adam": [1, 0.1]}, True),
        ("runs", [["SGD", 0.5], ["Adam", 0.1]], {"SGD": [1, 0.1], "Adam": [1, 0.5]}, False),
        ("runs", [["SGD", 0.5], ["Adam", 0.1]], {"SGD": [1, 0.3], "Adam": [1, 0.2]}, True),
    ],
)
def test_captions_and_curves_labels_come_from_the_data(caption, rows, curves, ok):
    n = Numbers(400, 2)
    assert labels_check(_page(caption, rows, curves), n).ok is ok


def _headed_page(columns, curves) -> ChapterPage:
    """A table of two measures per optimizer and a figure of one axes per measure."""
    from descentlab.report import figures as FG

    rows = [["SGD", 0.5, 0.6], ["Adam", 0.1, 0.2]]
    fig = FG.new_figure(4, 3)
    for ax, (title, ends) in zip(
        fig.subplots(1, len(curves), squeeze=False)[0], curves.items(), strict=True
    ):
        for label, end in ends.items():
            ax.plot([0, 1], [1, end], label=label)
        ax.set_title(f"digits: {title} (mean of the seeds)")
    table = Table(["optimizer", *columns], rows, "runs")
    return ChapterPage("t", "deep-t.html", "", (), [Part("p", "P", [table, fig, []])])


_TR, _VA = "training loss", "validation loss"
_TRAIN = {"SGD": 0.5, "Adam": 0.1}
_VAL = {"SGD": 0.6, "Adam": 0.2}


@pytest.mark.parametrize(
    ("columns", "curves", "ok"),
    [
        ([_TR, _VA], {_TR: _TRAIN, _VA: _VAL}, True),
        ([_TR, _VA], {_VA: _VAL}, True),
        ([_TR, _VA], {"cross-entropy": _VAL}, True),  # no heading named by the axes
        (["loss", _VA], {_TR: _TRAIN}, True),  # the one heading the title holds: right
        ([_TR, _VA], {_TR: {"SGD": 0.55, "Adam": 0.15}}, True),  # in no column: not read
        ([_VA, _TR], {_TR: _TRAIN, _VA: _VAL}, False),  # the headings swapped
        ([_VA, _TR], {_VA: _VAL}, False),
    ],
)  # fmt: skip
def test_a_column_heading_names_what_its_curves_draw(columns, curves, ok):
    assert labels_check(_headed_page(columns, curves), Numbers(400, 2)).ok is ok


# 4. exercises refuse the nearest wrong answers ----------------------------------------------


@pytest.mark.parametrize(("tol", "ok"), [("1e-12", True), ("0.01", True), ("0.05", False)])
def test_a_tolerance_that_admits_an_off_by_one_exponent_is_refused(tol, ok):
    """x after 5 steps is 2 + 2·0.8⁵; 2 + 2·0.8⁶ is 4.9 % away, declared by nobody."""
    ex = _exercise("from x = 4 with lr 0.1: what is x after 5 steps")
    code = ex.code.replace('tol = 1e-12\nprint("x_5', f'tol = {tol}\nprint("x_5')
    view = exercise_view(dataclasses.replace(ex, code=code))
    assert view.check.ok is ok, view.check.measured


def test_wrong_answers_are_generated_from_the_answers_expression():
    ns = {"x": 0.8, "answer": 2 + 2 * 0.8**5}
    got = dict(facts.wrong_answers("answer = 2 + 2 * x ** 5", ns))
    want = {"exponent 5 - 1": 2 + 2 * 0.8**4, "exponent 5 + 1": 2 + 2 * 0.8**6}
    assert got == pytest.approx(want)
    assert facts.wrong_answers("answer = 0.9 ** 100", {"answer": 0.9**100}) == []  # a count


# 5. API defaults against the signatures -------------------------------------------------------


def test_every_api_default_stated_is_the_signatures():
    assert _script("api_pages").default_contradictions() == []


def test_a_docstring_default_the_signature_contradicts_is_found(monkeypatch):
    api = _script("api_pages")
    from descentlab.problems import trajectories

    doc = trajectories.run.__doc__
    assert api.stated_defaults(trajectories.run) == []
    monkeypatch.setattr(
        trajectories.run, "__doc__", doc.replace('(default ``"lr"``)', '(default ``"momentum"``)')
    )
    assert api.stated_defaults(trajectories.run) == [
        "run(loss_rule_key): the docstring says \"momentum\", the signature 'lr'"
    ]


def test_the_api_pages_are_not_made_while_a_docstring_contradicts_a_default(monkeypatch):
    api = _script("api_pages")
    monkeypatch.setattr(api, "default_contradictions", lambda: ["run(lr): 0.1, not 0.01"])
    with pytest.raises(api.ExampleFailed, match=r"run\(lr\): 0\.1, not 0\.01"):
        api.entry_points_page(run=False)


# 6. one statement, one place -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("other", "found"),
    [
        ("$\\sum_t 1/t^2 = 1.645$", 0),  # π²/6 to the digits shown
        ("`1 - 1/κ = 0.98` at κ = 50", 0),  # another formula
        ("$\\sum_t 1/t^2 = 1.5$", 1),
    ],
)
def test_a_quantity_two_pages_state_differently_is_found(other, found):
    pages = {"a.html": "the sum `Σ 1/t² = π²/6` is finite", "b.html": f"and {other}."}
    assert len(facts.restated(pages)) == found


# 7. twins by what they compute -----------------------------------------------------------------

TWINS = """
def draws(n, seed=3):
    return n + seed

def other(n):
    return n + 3

def section(ctx, n):
    {body}
    return Part("s", "S", [n(a, b, "twin", tol=1.0)])
"""


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ("a, b = draws(4), other(4)", True),
        ("a, b = draws(4, seed=1), draws(5, seed=2)", True),  # other arguments
        ("a, b = [draws(4, seed=s) for s in range(2)]", False),  # one call site, two seeds
        ("a, b = draws(4), draws(4, seed=SEED)", False),
    ],
)
def test_a_twin_reseeded_through_any_call_site_is_seen_at_run_time(body, ok, tmp_path):
    path = tmp_path / "twins.py"
    head = "from descentlab.book.render.chapter import Part\nSEED = 7\n"
    path.write_text(head + TWINS.format(body=body))
    spec = importlib.util.spec_from_file_location("descentlab.book.chapters._test_twins", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod.__name__] = mod
    spec.loader.exec_module(mod)
    try:
        chapter = Chapter("t", "T", "", (), (), (mod.section,), "keep")
        page = chapter(Context(True, None, lambda m: None))
    finally:
        del sys.modules[mod.__name__]
    seeds = [c for c in page.parts[-1].blocks[-1] if "seeded function ran" in c.text]
    assert [c.ok for c in seeds] == [ok]


# the widened kinds -----------------------------------------------------------------------------
# words: the shapes beside the two quantities ("than" alone was read before), and the word
# chosen from the numbers

RIGHT_SHAPES = [
    "at η = 0.1 the shorter memory ends lower (0.0001 against 0.0012)",
    "the loss is still 0.114, above that floor (0.0263)",
    "the loss rises from 0.2 to 0.5 in the first steps",
    "their floor falls from 0.0031 at B = 1 to 0.0004 at B = 64",
    "it ends at 0.5, 10 times the 0.05 it started from",
    "the 12 runs take fewer than 20 steps, below the 30 of the budget",  # a setting, then words
    "stays below 2/η, and 3 % above 2 diverges",  # a percentage is no value compared
]
WRONG_SHAPES = [
    "at η = 0.1 the shorter memory ends higher (0.0001 against 0.0012)",
    "the loss is still 0.114, below that floor (0.0263)",
    "the loss falls from 0.2 to 0.5 in the first steps",
    "their floor rises from 0.0031 at B = 1 to 0.0004 at B = 64",
    "it ends at 0.7, 10 times the 0.05 it started from",
]


@pytest.mark.parametrize("text", RIGHT_SHAPES)
def test_a_widened_comparative_its_numbers_give_passes(text):
    assert facts.relation_words(text) == []


@pytest.mark.parametrize("text", WRONG_SHAPES)
def test_a_widened_comparative_its_numbers_contradict_is_refused(text):
    assert len(facts.relation_words(text)) == 1, facts.relation_words(text)


@pytest.mark.parametrize(
    ("a", "b", "up", "want"),
    [(6, 2, "faster", "faster"), (2, 6, "faster", "slower"), (2, 6, "slower", "slower"),
     (0.02, 0.05, "higher", "lower"), (3, 1, "below", "above"), (618, 256, "more", "more"),
     (1, 2, "costs more", "costs less"), (5, 2, "increases", "increases")],
)  # fmt: skip
def test_the_word_beside_two_numbers_is_chosen_from_them(a, b, up, want):
    assert facts.word(a, b, up) == want


@pytest.mark.parametrize(("a", "b", "up", "says"), [(1, 1, "more", "equal"), (1, 2, "big", "up")])
def test_a_word_neither_number_gives_is_refused_naming_it(a, b, up, says):
    with pytest.raises(ValueError, match=says):
        facts.word(a, b, up)


# formulas rendered from the expression the check evaluates


def test_a_solutions_formula_is_rendered_from_the_codes_expression():
    """The solution shows the code's formula: change the code's exponent and the text
    changes with it; the text cannot state another formula than the one computed."""
    ex = _exercise("What is d/dx (2x - 1)³")
    assert "=answer}}" in ex.solution
    assert "6 \\cdot {1.5}^{2} = 13.5" in exercise_view(ex).solution
    cubed = dataclasses.replace(ex, code=ex.code.replace("inner ** 2", "inner ** 3"))
    view = exercise_view(cubed)
    assert "6 \\cdot {1.5}^{3} = 20.25" in view.solution and view.check.failed


def test_a_slot_naming_no_number_of_the_code_is_refused():
    with pytest.raises(ValueError, match="missing"):
        facts.render_solution("{{=missing}}", "answer = 1", {"answer": 1})


def test_the_momentum_chapters_rates_are_typeset_from_what_is_evaluated():
    from descentlab.book.chapters import momentum
    from descentlab.book.render.formulas import mathml

    assert momentum.GD_RATE.tex == "\\frac{\\kappa - 1}{\\kappa + 1}"
    assert momentum.GD_RATE(kappa=100) == pytest.approx(99 / 101, rel=1e-15)
    assert momentum.HB_BETA(kappa=100) == pytest.approx(momentum.HB_RATE(kappa=100) ** 2)
    assert "{{gd_tex}}" in momentum.CONDITION.text and "kappa - 1" not in momentum.CONDITION.text
    assert mathml(momentum.HB_BETA.tex, True).startswith("<math")
    with pytest.raises(ValueError, match="kappa"):
        momentum.GD_RATE()


# wrong answers from every line of a solution, and the other formula of a pair

_RMS = "rest, g2 = 1 - 0.9, 5 ** 2\nr1 = rest * g2\nr2 = 0.9 * r1 + rest * g2\n"
_RMS += "answer = 0.01 * 5 / r2 ** 0.5"


@pytest.mark.parametrize(
    ("code", "what", "value"),
    [
        (_RMS, "r2: AdaGrad's sum", 0.05 / 27.5**0.5),
        (_RMS, "g2: exponent 2 + 1", 0.05 / (0.9 * 12.5 + 12.5) ** 0.5),
        ("m = 0.4\nanswer = m / (1 - 0.9 ** 1)", "the bias correction dropped", 0.4),
        ("answer = 16 * (1 - 0.999 ** 50)", "the bias-corrected moment for the raw one", 16.0),
        ("answer = 0.1 * (1 - 0.8 ** 10) / 0.2", "", 0.5 * (1 - 0.8**11)),
        ("import math\nq = (100.0 - 1) / (100.0 + 1)\nanswer = math.log(q)",
         "q: the other rate of the pair: momentum's", math.log(9 / 11)),
    ],
)  # fmt: skip
def test_wrong_answers_come_from_every_line_and_the_other_formula_of_a_pair(code, what, value):
    ns: dict = {}
    exec(code, ns)
    got = facts.wrong_answers(code, ns)
    assert any(w.startswith(what) and v == pytest.approx(value, rel=1e-12) for w, v in got), got


@pytest.mark.parametrize(
    ("code", "want"),
    [("answer = 1 - (1 - 1 / 500) ** 500", ["1 - (1 - 1 / 500) ** 500 swapped"]),  # a count
     ("q = 0.5 * 2\nanswer = q + 1", [])],  # no exponent, no difference, no pair
)  # fmt: skip
def test_no_pair_is_made_up_where_the_formula_has_none(code, want):
    ns: dict = {}
    exec(code, ns)
    assert [w for w, _ in facts.wrong_answers(code, ns)] == want


@pytest.mark.parametrize(("tol", "ok"), [("1e-12", True), ("0.3", True), ("0.6", False)])
def test_a_tolerance_that_admits_the_other_accumulator_is_refused(tol, ok):
    """RMSProp's second step 0.0229: AdaGrad's sum gives 0.00953 (58 % away), g³ 0.0103."""
    ex = _exercise("sees the gradient 5 twice")
    code = ex.code.replace("tol = 1e-12\nprint(", f"tol = {tol}\nprint(")
    view = exercise_view(dataclasses.replace(ex, code=code))
    assert view.check.ok is ok, view.check.measured
    assert ok or "AdaGrad's sum" in view.check.measured


# one statement, one place: a restated result is cited from the registry


def test_a_result_two_pages_state_is_cited_from_one_place():
    from descentlab.book.texts._facts import FACTS

    card = _item(42).explain
    solution = _exercise("lr 0.2: how far from the minimum").solution
    shown = FACTS["parabola_error_10"].tex()
    assert shown == "$2 \\cdot {0.6}^{10} \\approx 0.0121$"
    assert shown in card and shown in solution
    assert FACTS["parabola_error_10"].value() == pytest.approx(2 * 0.6**10, rel=1e-15)
    with pytest.raises(KeyError, match="nope"):
        facts.cite("{{fact:nope}}", FACTS)


def test_no_formula_is_typed_on_two_pages():
    """What the pages show (cards' explanations, exercises, chapters' prose templates): a
    formula stating a value on two of them is typed twice unless cited from the registry."""
    from descentlab.book.chapters import CHAPTERS

    pages = {
        lec.slug: "\n\n".join([*(it.explain for it in lec.items),
                               *(ex.solution for ex in lec.exercises)])
        for lec in LECTURES
    }  # fmt: skip
    for chapter in CHAPTERS:
        module = sys.modules[chapter.sections[0].__module__]
        prose = [v.text for v in vars(module).values() if hasattr(v, "says")]
        pages[chapter.stem] = "\n\n".join([*prose, *(ex.solution for ex in chapter.exercises)])
    from descentlab.book.texts._facts import FACTS

    assert facts.retyped(pages, FACTS) == []
    typed = {"a": "`2·0.6¹⁰ ≈ 0.012`", "b": "so `2·0.6¹⁰ ≈ 0.0121`"}
    assert facts.retyped(typed) == ["2·0.6¹⁰: a, b"]
    once = {"a": f"cited {FACTS['parabola_error_10'].tex()}", "b": "typed `2·0.6¹⁰ ≈ 0.0121`"}
    assert facts.retyped(once, FACTS) == ["2·0.6¹⁰: b (the registry holds it)"]


def test_every_rendered_solution_typesets_and_holds():
    """Each worked solution with a formula from its code: rendered, typeset, ✔."""
    from descentlab.book.render.formulas import mathml, split_math

    slotted = [
        ex for lec in LECTURES for ex in lec.exercises if facts.SOLUTION_SLOT.search(ex.solution)
    ]
    assert len(slotted) >= 7
    for ex in slotted:
        view = exercise_view(ex)
        assert view.check.ok and "{{" not in view.solution, (ex.question, view.check.measured)
        assert all(mathml(tex).startswith("<math") for kind, tex in split_math(view.solution)
                   if kind != "text")  # fmt: skip


@pytest.mark.parametrize(("word", "ok"), [("above", True), ("below", False)])
def test_a_solutions_comparative_is_checked_against_its_numbers(word, ok):
    ex = _exercise("from x = 4 with lr 0.1: what is x after 5 steps")
    said = f"{ex.solution} It ends at 2.65536, {word} the 2 it approaches."
    assert exercise_view(dataclasses.replace(ex, solution=said)).check.ok is ok


# words chosen in cards and chapters; "k times" after a count and "beats" read

RIGHT_MORE_SHAPES = [
    "κ = 1000 costs 13,809 steps, 10 times the 1,375 of κ = 100",  # a count, then "k times"
    "the dense layers' 37.7 is 16 times the 2.3 of the convolutions",
    "it ends at 20 (4 times 5)",
    "it ends at 0.0011, 2.3 times lower than the best constant's 0.0025",
    "training loss: Shampoo's 0.00048 beats Adam's 0.0552 and SGD's 0.255",
    "its accuracy, 0.93, beats the 0.88 of the baseline",
    "the step after 200 steps is 5 times ηg, against 5",  # "is k times" binds to a value
    "the 3 beats 2 in a bar",  # no measure named: which wins is not in the sentence
    "a loss of 0.3 beats 0.2 in accuracy",  # both named: not read
    "37.7 M weights, still 16 times the 2.3 M of all five convolutions",  # scales, digits shown
    "1.2 M weights, 400 times the 3 k of the first layer",  # each side its own scale
    "9,216 features, 16 times the 576 of conv5",
]
WRONG_MORE_SHAPES = [
    "κ = 1000 costs 1,375 steps, 10 times the 13,809 of κ = 100",
    "the dense layers' 37.7 is 16 times the 4.1 of the convolutions",
    "it ends at 30 (4 times 5)",
    "it ends at 0.0011, 2.3 times higher than the best constant's 0.0025",
    "training loss: Adam's 0.0552 beats Shampoo's 0.00048 and SGD's 0.255",
    "its accuracy, 0.83, beats the 0.88 of the baseline",
    "37.7 M weights, still 6 times the 2.3 M of all five convolutions",
    "37.7 M weights, still 16 times the 4.1 M of all five convolutions",
    "1.2 M weights, 4 times the 3 k of the first layer",  # the scales read, not dropped
]


@pytest.mark.parametrize("text", RIGHT_MORE_SHAPES)
def test_k_times_after_a_count_and_beats_let_the_right_through(text):
    assert facts.relation_words(text) == []


@pytest.mark.parametrize("text", WRONG_MORE_SHAPES)
def test_k_times_after_a_count_and_beats_refuse_the_wrong(text):
    assert len(facts.relation_words(text)) == 1, facts.relation_words(text)


@pytest.mark.parametrize(
    ("slot", "want"),
    [("{{word:6,2,faster}}", "faster"), ("{{word:2,6,faster}}", "slower"),
     ("{{word: 0.02, 0.05, higher}}", "lower"), ("{{word:1,000,2,costs more}}", "costs more")],
)  # fmt: skip
def test_a_cards_word_slot_is_chosen_from_its_numbers(slot, want):
    assert facts.choose(f"it is {slot} here") == f"it is {want} here"


def test_item_35s_word_is_chosen_and_a_swapped_slot_is_refused():
    from descentlab.book.texts import l001

    assert "{{word:6,2,faster}}" in inspect.getsource(l001)
    explain = _item(35).explain
    assert "faster than `y - 2`" in explain and "{{word" not in explain
    swapped = explain.replace("faster than `y - 2`", facts.choose("{{word:2,6,faster}}") + " than")
    assert facts.relation_words(swapped) == ["6 … slower than … 2"]


@pytest.mark.parametrize(
    ("rule", "ok"),
    [("w - eta*g/(sqrt(r) + epsilon)", True), ("w - eta*g/(r + epsilon)", False),
     ("w - eta*g**2/(sqrt(r) + epsilon)", False), ("w - eta/(sqrt(r) + epsilon)", False)],
)  # fmt: skip
def test_the_adaptive_chapters_rules_are_shown_and_checked_from_one_formula(rule, ok):
    """The page's AdaGrad rule is the Formula's latex, and the same Formula, evaluated at each
    step, must give descentlab's steps: a wrong rule shown is a rule refused."""
    from descentlab import optim
    from descentlab.book.chapters import _common as kit
    from descentlab.book.chapters import adaptive as A

    assert "{{rule_w}}" in A.ADAGRAD.text and "\\frac{\\eta" not in A.ADAGRAD.text
    assert A.ADAGRAD_W.tex == "w - \\frac{\\eta g}{\\sqrt{r} + \\epsilon}"
    assert {"{{rule_v}}", "{{rule_m}}"} <= set(re.findall(r"\{\{rule_\w+\}\}", A.ADAM.text))
    shown = facts.Formula(rule)
    runs = kit.slope_steps(lambda p: optim.Adagrad(p, lr=A.LR), 100.0, 4)
    steps = A._rule_steps(
        100.0, 4, lambda st, g: {"r": A.ADAGRAD_R(r=st["r"], g=g)},
        lambda st, g, t: shown(w=0.0, eta=A.LR, g=g, r=st["r"], epsilon=A.EPS_ADAGRAD),
    )  # fmt: skip
    assert kit.rule_check("AdaGrad", steps, runs).failed is not ok
