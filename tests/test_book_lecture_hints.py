"""The lectures' exercises' worked solutions, hints 000-004 (:mod:`descentlab.book.lecture_hints`):
a typed formula is evaluated as the page types it against what computes it, and its misread twin
is refused; every sentence of these hints is bound to a run or a check row, or listed with why."""

from __future__ import annotations

import pytest

from descentlab.book import lecture_hints, teaching
from descentlab.book.cells import code_objects
from descentlab.book.lecture_hints import misread, typed

_RANGE = ("hint 000", "hint 001", "hint 002", "hint 003", "hint 004")


@pytest.mark.parametrize(
    ("formula", "slipped"),
    [
        ("4w³ - 4w", "4w³ + 4w"),  # the first sign turned
        ("(κ-1)/(κ+1)", "(κ+1)/(κ+1)"),
        ("-√(H + ε)/√(G + ε)·g", "-√(H - ε)/√(G + ε)·g"),  # a leading minus is no operator
        ("η/t", "η²/t"),  # no sign, no exponent: the first symbol squared
        ("12w²", "12w³"),  # no sign: the exponent raised
    ],
)  # fmt: skip
def test_misread_turns_a_sign_or_raises_an_exponent(formula, slipped):
    assert misread(formula) == slipped


def _derivative(w: float) -> float:
    """the central difference of w⁴ - 2w² (a route other than the formula)"""
    h = 1e-5
    return ((w + h) ** 4 - 2 * (w + h) ** 2 - (w - h) ** 4 + 2 * (w - h) ** 2) / (2 * h)


@pytest.mark.parametrize(
    ("formula", "holds"),
    [
        ("4w³ - 4w", True),  # the derivative
        ("4w³ + 4w", False),  # a sign
        ("4w² - 4w", False),  # an exponent
        ("4w³ - 2w", False),  # a factor
        ("w⁴ - 2w²", False),  # the function, not its derivative
    ],
)  # fmt: skip
def test_a_typed_row_holds_exactly_the_formula_that_computes_its_reference(formula, holds):
    _, said, opposite, demo, home = typed(
        "t", f"f'(w) = {formula} vanishes", formula, _derivative,
        ({"w": 0.7}, {"w": -1.3}), "item 46", tol=1e-6,
    )  # fmt: skip
    assert demo()[0] is holds
    assert opposite == said.replace(formula, misread(formula)) and home == "item 46"
    assert "the typed" in demo.shows and "central difference" in demo.shows


def test_a_typed_row_refuses_a_formula_it_cannot_place_or_evaluate():
    with pytest.raises(ValueError, match="is not in"):
        typed("t", "f' = 4w³ - 4w", "4w³ + 4w", _derivative, ({"w": 1.0},), "item 46")
    with pytest.raises(ValueError, match="does not evaluate"):
        typed("t", "f' = 4w³ - 4v", "4w³ - 4v", _derivative, ({"w": 1.0},), "item 46")


@pytest.mark.parametrize(
    ("sentence", "objects"),
    [
        ("The code computes it in float64.", ["float64"]),  # a name written as code
        ("The code counts a torch Conv2d's.", ["Conv2d"]),
        ("The code runs descentlab's trajectories on the parabola.", ["trajectories"]),
        ("The code asks torch's autograd.", ["autograd"]),
        ("The code draws them as descentlab's epoch does.", []),  # a comparison, no use
        ("It computes it in float64.", []),  # not about the code
    ],
)  # fmt: skip
def test_a_sentence_about_the_code_names_its_lowercase_objects_and_code_words(sentence, objects):
    assert code_objects(sentence) == objects


@pytest.mark.parametrize(
    ("solution", "formulas"),
    [
        ("`0.5 log(0.5/0.9) + 0.5 log(0.5/0.1) = 0.5 log(25/9)`; the code asks.",
         ["0.5 log(0.5/0.9) + 0.5 log(0.5/0.1) = 0.5 log(25/9)"]),
        ("`q = (κ-1)/(κ+1)`: no number bound, nothing evaluated.", []),
        ("With κ = 9, `(κ-1)/(κ+1) = 0.8`.", ["(κ-1)/(κ+1) = 0.8"]),
    ],
)  # fmt: skip
def test_the_formulas_an_exercise_row_evaluates_are_credited(solution, formulas):
    assert teaching.evaluated_formulas(solution) == formulas


def test_every_sentence_of_the_lectures_hints_is_bound_or_listed_most_of_them_backed():
    found = [s for s in teaching.census() if s.where in _RANGE]
    left = teaching.unbound(found, teaching.KINDS, teaching.KINDS)
    assert not left, [f"{s.where}: {s.text}" for s in left]
    backed, listed, n = teaching.shares(found)["hint"]
    assert backed + listed == n and backed >= 2 * listed  # listed: pointers, method, naming
    # each listed phrase is in one of these hints, and its reason is its own
    texts = " ".join(s.text for s in found)
    reasons = list(lecture_hints.UNBACKED.values())
    assert all(p in texts for p in lecture_hints.UNBACKED) and len(set(reasons)) == len(reasons)


def test_a_row_naming_another_claim_shares_its_run_and_its_words():
    from descentlab.book import claims

    (row,) = claims._joined([("t", "a", "b", "keep_cross_correlation", "item 91")])
    named = next(c for c in claims.CLAIMS if c.name == "keep_cross_correlation")
    assert row.shows == named.shows
    assert row.demo() is claims._run("keep_cross_correlation")  # run once, not again
