"""The cards' typed relations evaluated where they are read (``book.card_formulas``), and the
cards' explanations of items 100-131 bound to a run, a reading or a typed relation."""

from __future__ import annotations

import pytest

from descentlab.book import teaching
from descentlab.book.card_formulas import FORMULAS, formula_checks, holds
from descentlab.book.lectures import ITEMS

BY_NUMBER = {it.number: it for it in ITEMS}


@pytest.mark.parametrize(
    ("relation", "at", "right"),
    [
        # an identity in symbols left free holds at both sets of values
        ("x̃_new - x̃ = -ρ v_old + (1 + ρ) v_new",
         "x̃_new = x + v_new + ρ v_new, x̃ = x + ρ v_old", True),
        ("α_t m/(√v + ε̂) = α m̂/(√v̂ + ε)",
         "α_t = α √(1-β₂^t)/(1-β₁^t), ε̂ = ε√(1-β₂^t), m̂ = m/(1-β₁^t), v̂ = v/(1-β₂^t)", True),
        # an approximation at the numbers it is meant for, a chain, a bound, a number worked out
        ("(κ-1)/(κ+1) ≈ 1 - 2/κ", "κ = 100", True),
        ("√β = (√κ-1)/(√κ+1) ≈ 1 - 2/√κ", "β = ((√κ-1)/(√κ+1))², κ = 10000", True),
        ("(1+β-ηL)² - 4β = 0", "L = 100, μ = 1, κ = L/μ, η = 4/(√L+√μ)², β = ((√κ-1)/(√κ+1))²",
         True),
        ("0 < 1 - ηλ < 1", "λ = 4, η = 0.1", True),
        ("√0.3 ≈ 0.55", "", True),
        # a sign, an exponent, a root, a number changed: refused
        ("x̃_new - x̃ = -ρ v_old + (1 - ρ) v_new",
         "x̃_new = x + v_new + ρ v_new, x̃ = x + ρ v_old", False),
        ("(κ-1)/(κ+1) ≈ 1 + 2/κ", "κ = 100", False),
        ("(1+β-ηL)² - 4β = 0", "L = 100, μ = 1, κ = L/μ, η = 4/(√L-√μ)², β = ((√κ-1)/(√κ+1))²",
         False),
        ("α_t m/(√v + ε̂) = α m̂/(√v̂ + ε)",
         "α_t = α √(1-β₂^t)/(1-β₁^t), ε̂ = ε, m̂ = m/(1-β₁^t), v̂ = v/(1-β₂^t)", False),
        ("√0.3 ≈ 0.3", "", False),
        ("0 < 1 - ηλ < 1", "λ = 4, η = 0.3", False),
        ("1 - 0.18·10 = -0.6", "", False),
    ],
)  # fmt: skip
def test_a_typed_relation_is_evaluated_and_a_changed_one_refused(relation, at, right):
    assert holds(relation, at)[0] is right


def test_a_form_the_reader_does_not_take_is_named():
    with pytest.raises(ValueError, match="does not take"):
        holds("H(p, q) = H(p) + KL(p ‖ q)")


def test_every_typed_relation_holds_on_its_card():
    rows = [r for n in sorted({f.item for f in FORMULAS})
            for r in formula_checks(n, BY_NUMBER[n].explain)]  # fmt: skip
    assert len(rows) == len(FORMULAS) and all(r.ok for r in rows), [r for r in rows if not r.ok]


@pytest.mark.parametrize(
    ("item", "old", "new", "measured"),
    [
        (103, "-0.8`", "-0.6`", "-0.8 vs -0.6"),  # the page's own formula, evaluated
        (102, "5 against 50", "5 against 40", "no longer states it"),
        (105, "(1 + ρ) v_new`", "(1 - ρ) v_new`", "no longer states it"),
        (130, "α √(1-β₂^t)/(1-β₁^t)", "α √(1-β₂^t)/(1-β₁)", "no longer states it"),
    ],
)
def test_a_relation_changed_on_the_page_is_a_fail_on_its_card(item, old, new, measured):
    text = BY_NUMBER[item].explain
    assert old in text
    rows = formula_checks(item, text.replace(old, new, 1))
    bad = [r for r in rows if not r.ok]
    assert bad and measured in " ".join(str(r.measured) for r in bad), rows


def test_every_sentence_of_the_cards_100_to_131_is_bound_or_listed():
    found = [teaching.Sentence(teaching._card_kind(s), f"item {it.number}", s)
             for it in ITEMS if 100 <= it.number <= 131
             for s in teaching.sentences(it.explain)]  # fmt: skip
    left = teaching.unbound(found)
    assert not left, [s.text for s in left]
    backing, _ = teaching._phrases()
    backed = sum(any(p in s.text for p in backing) for s in found)
    assert backed >= 0.75 * len(found), (backed, len(found))
