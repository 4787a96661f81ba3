"""The lectures' exercises' worked solutions, hints 000-004 (:mod:`descentlab.book.lecture_hints`):
a typed formula is evaluated as the page types it against what computes it, and its nearest
wrong twin is refused (tests/test_book_typed.py); every sentence of these hints is bound to a run
or a check row, or listed with why."""

from __future__ import annotations

import pytest

from descentlab.book import lecture_hints, teaching
from descentlab.book.cells import code_objects

_RANGE = ("hint 000", "hint 001", "hint 002", "hint 003", "hint 004")


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
    left = teaching.unbound(found)
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
