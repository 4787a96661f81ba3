"""A formula a teaching sentence types, evaluated against what computes it
(:mod:`descentlab.book.typed`), and the cards of items 67-99 bound by it: the typed formula is
read from the phrase itself, so a sign, an exponent or an operand changed on the page, in the
row, or in what the cell computes is a ✘."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from descentlab.book import card_claims, teaching
from descentlab.book.card_claims import formula_reading
from descentlab.book.typed import formula_demo, gap, value

#: (formula as typed, the numbers, renames, its value)
VALUES = [
    ("1/(1 - p)", {"p": 0.5}, None, 2.0),
    ("√((1-α)/(1+α))", {"α": 0.9}, None, (0.1 / 1.9) ** 0.5),
    ("⌊(n + 2p - k)/s⌋ + 1", {"n": 227, "k": 11, "s": 4, "p": 0}, None, 55.0),
    ("k²·b·C_out", {"k": 3, "b": 64, "C_out": 256}, None, 147456.0),
    ("(1 - 1/n)ⁿ", {"n": 4}, None, 0.75**4),
    ("1 - ηλ", {"η": 0.1, "λ": 0.5}, None, 0.95),
    ("η·|m̂|/ε", {"η": 1e-3, "m": -2e-9, "ε": 1e-3}, {"m̂": "m"}, 2e-9),
    ("(x - μ_B)/√(σ²_B + ε)", {"x": 3, "mB": 1, "vB": 3, "ε": 1}, {"μ_B": "mB", "σ²_B": "vB"},
     1.0),
    ("-ρ Σ_k α^(t-k) ∇J(Θ_k)", {"ρ": 0.1, "α": 0.5, "t": 3, "k": 1, "g": 2.0},
     {"Σ_k": "", "∇J(Θ_k)": "g"}, -0.05),
]  # fmt: skip


@pytest.mark.parametrize(("formula", "at", "names", "want"), VALUES, ids=[v[0] for v in VALUES])
def test_a_typed_formula_is_evaluated_as_typed(formula, at, names, want):
    assert value(formula, at, names) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    ("formula", "at"),
    [("a/b", {"a": 1.0}), ("the rate", {}), ("1/(1 - p)", {"p": 1.0}), ("Σ 1/t", {"t": 2.0})],
)
def test_a_formula_that_is_no_number_there_is_refused_by_name(formula, at):
    with pytest.raises(ValueError, match="the typed formula"):
        value(formula, at)


#: (the typed formula, a misconception's, the reference's cases): the first holds, the second
#: is refused, and with the two exchanged the demonstration fails
DEMOS = [
    ("1/(1 - p)", "1/p", [({"p": 0.2}, 1.25), ({"p": 0.5}, 2.0)]),
    ("⌊(n + 2p - k)/s⌋ + 1", "⌊(n + p - k)/s⌋ + 1",
     [({"n": 32, "k": 3, "s": 1, "p": 1}, 32.0), ({"n": 28, "k": 5, "s": 1, "p": 0}, 24.0)]),
    ("η g/√(G + ε)", "η g/(G + ε)", [({"η": 0.1, "g": 2.0, "G": 8.0, "ε": 1.0}, 0.2 / 3)]),
    ("a/b", "√(a/b)", [({"a": 100.0, "b": 1.0}, 100.0)]),
]  # fmt: skip


@pytest.mark.parametrize(("right", "wrong", "cases"), DEMOS, ids=[d[0] for d in DEMOS])
def test_a_demonstration_holds_the_typed_formula_and_refuses_the_misconception(right, wrong,
                                                                               cases):  # fmt: skip
    holds, measured = formula_demo(right, wrong, lambda: cases, "cases")()
    assert holds and right in measured, measured
    assert gap(wrong, cases) > 1e-3
    assert not formula_demo(wrong, right, lambda: cases, "cases")()[0]


def _run(x: float) -> SimpleNamespace:
    return SimpleNamespace(output="", namespace={"p": 0.5, "out": x})


@pytest.mark.parametrize(
    ("page", "survivor", "status"),
    [
        ("it scales the survivors by 1/(1 - p), as the cell prints", 2.0, "ok"),
        ("it scales the survivors by 1/(1 + p), as the cell prints", 2.0, "fail"),  # the page
        ("it scales the survivors by 1/(1 - p), as the cell prints", 1.5, "fail"),  # the cell
    ],
)
def test_a_formula_reading_is_a_cross_when_the_page_or_the_cell_says_otherwise(
    page, survivor, status, monkeypatch
):
    reading = formula_reading(
        999, "scales the survivors by 1/(1 - p)", "1/(1 - p)",
        lambda run: [({"p": run.namespace["p"]}, run.namespace["out"])], "a survivor",
    )  # fmt: skip
    monkeypatch.setattr(card_claims, "READINGS", (reading,))
    rows = teaching.result_checks(999, page, _run(survivor))
    assert [r.status for r in rows] == [status], rows


def test_a_reading_whose_formula_is_not_in_its_phrase_is_refused():
    with pytest.raises(ValueError, match="not part of the phrase"):
        formula_reading(999, "scales the survivors", "1/(1 - p)", lambda run: [], "a survivor")


def test_a_typed_rule_the_card_accepts_credits_its_sentence_and_a_wrong_one_none(monkeypatch):
    from descentlab.book import lectures

    said = "The accumulator a ← βa + g sums past gradients with decaying weights"
    assert any(rule in said for rule in teaching._typed_rules())
    item = next(it for it in lectures.ITEMS if it.number == 73)
    wrong = dataclasses.replace(item, explain=item.explain.replace("βa + g", "βa - g"))
    monkeypatch.setattr(lectures, "ITEMS", [wrong])
    assert teaching._typed_rules() == []


def test_every_sentence_of_the_cards_67_to_99_is_bound_or_listed_most_bound():
    """Every sentence of those cards' explanations, with a computable opposite or not, holds a
    phrase a run, a reading or a check backs, or one UNBACKED lists with why; at least half
    of them are backed."""
    from descentlab.book.lectures import ITEMS

    backing, listing = teaching._phrases()
    found = [s for it in ITEMS if 67 <= it.number <= 99 for s in teaching.sentences(it.explain)]
    backed = [s for s in found if any(p in s for p in backing)]
    left = [s for s in found if s not in backed and not any(p in s for p in listing)]
    assert not left, left
    assert 2 * len(backed) > len(found), (len(backed), len(found))


def test_each_formula_claim_types_its_formulas_in_its_phrase_and_its_opposite():
    rows = [r for r in card_claims.CLAIMS if hasattr(r[3], "typed")]
    assert len(rows) >= 10
    for name, said, opposite, demo, _home in rows:
        right, wrong = demo.typed
        assert right in said and wrong in opposite and opposite not in said, name
