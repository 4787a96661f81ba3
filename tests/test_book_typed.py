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
from descentlab.book.typed import expression, gap, nearest_wrong, points, typed, value

#: (formula as typed, the numbers -- keyed as typed, or renamed --, renames, its value): the one
#: reader every typed row of the book reads its formula with
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
    ("|y - μ|/b + log 2b", {"y": 1.3, "μ": 0.5, "b": 1.5}, None, 0.8 / 1.5 + 1.0986122886681098),
    ("(y - μ)²/(2σ²) + ½ log 2πσ²", {"y": 1.3, "μ": 0.5, "σ": 1.5}, None,
     0.64 / 4.5 + 0.5 * 2.648807282625674),
    ("6xy - 10y", {"x": 1.0, "y": 2.0}, None, -8.0),  # letters side by side multiplied
    ("n xⁿ⁻¹", {"n": 3.0, "x": 2.0}, None, 12.0),
    ("-η∇L/(1-β₁)", {"η": 0.1, "∇L": 2.0, "β₁": 0.9}, None, -2.0),
    ("β^k", {"β": 0.5, "k": 3.0}, None, 0.125),
    ("π²/6", {}, None, 1.6449340668482264),
    ("(√κ-1)/(√κ+1)", {"κ": 9.0}, None, 0.5),
    ("5/(-ln q)", {"q": 0.5}, None, 5 / 0.6931471805599453),
    ("x̃ - ρv + (1 + ρ)v_new", {"xt": 0.7, "rho": 0.9, "v": -0.2, "v_new": 0.15},
     {"x̃": "xt", "ρ": " rho "}, 1.165),
    ("ε + (f - E f̂) + (E f̂ - f̂)", {"ε": 0.3, "f": 1.2, "Ef": 0.9, "fh": 0.7},
     {"E f̂": "Ef", "f̂": "fh"}, 0.8),
    ("lr·g/(|g| + ε)", {"lr": 0.1, "g": 0.5, "ε": 0.3}, None, 0.0625),
]  # fmt: skip


@pytest.mark.parametrize(("formula", "at", "names", "want"), VALUES, ids=[v[0] for v in VALUES])
def test_a_typed_formula_is_evaluated_as_typed(formula, at, names, want):
    assert value(formula, at, names) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    ("formula", "at"),
    [
        ("a/b", {"a": 1.0}),
        ("the rate", {}),
        ("1/(1 - p)", {"p": 1.0}),
        ("Σ 1/t", {"t": 2.0}),
        ("x + z", {"x": 1.0}),
        ("Σ 1/t", {}),
    ],
)
def test_a_formula_that_is_no_number_there_is_refused_by_name(formula, at):
    with pytest.raises(ValueError, match="the typed formula"):
        value(formula, at)


@pytest.mark.parametrize(
    ("formula", "symbols"),
    [("x̃ - ρv", {"x_tilde", "rho", "v"}), ("√β = α₁", {"beta", "alpha_1"}),
     ("m̂/(√v̂ + ε)", {"m_hat", "v_hat", "epsilon"}), ("(1 - 1/N)ᴺ", {"N"})],
)  # fmt: skip
def test_an_expression_names_its_symbols_as_the_reader_reads_them(formula, symbols):
    sides = [expression(side) for side in formula.split(" = ")]
    assert set().union(*({str(x) for x in e.free_symbols} for e in sides)) == symbols, sides


#: (a formula, its nearest wrong one): the first binary sign turned; with none, the first
#: exponent raised, else the first digit, else the first symbol squared
MUTANTS = [
    ("1 - ηλ", "1 + ηλ"), ("π²/6", "π³/6"), ("2/L", "3/L"), ("-η∇L/(1-β₁)", "-η∇L/(1+β₁)"),
    ("n xⁿ⁻¹", "n xⁿ⁻²"), ("|y - μ|/b + log 2b", "|y + μ|/b + log 2b"),
    ("4w³ - 4w", "4w³ + 4w"), ("(κ-1)/(κ+1)", "(κ+1)/(κ+1)"),
    ("-√(H + ε)/√(G + ε)·g", "-√(H - ε)/√(G + ε)·g"),  # a leading minus is no operator
    ("5/(-ln q)", "6/(-ln q)"),  # nor one after a bracket
    ("η/t", "η²/t"),  # no sign, no digit: the first symbol squared
    ("12w²", "12w³"),  # no sign: the exponent before the digit
]  # fmt: skip


@pytest.mark.parametrize(("formula", "wrong"), MUTANTS, ids=[m[0] for m in MUTANTS])
def test_the_nearest_wrong_formula_turns_a_sign_or_raises_an_exponent(formula, wrong):
    assert nearest_wrong(formula) == wrong


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
    row = typed("t", f"it is {right}", right, lambda: cases, "item 1", shows="cases", wrong=wrong)
    holds, measured = row[3]()
    assert holds and right in measured and row[2] == f"it is {wrong}", measured
    assert gap(wrong, cases) > 1e-3
    assert not typed("t", wrong, wrong, lambda: cases, "item 1", wrong=right)[3]()[0]


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
        ("4w³ - 4v", False),  # a symbol without a value
    ],
)  # fmt: skip
def test_a_typed_row_holds_exactly_the_formula_that_computes_its_reference(formula, holds):
    _, said, opposite, demo, home = typed(
        "t", f"f'(w) = {formula} vanishes", formula,
        points(_derivative, ({"w": 0.7}, {"w": -1.3}), keywords=True), "item 46", tol=1e-6,
    )  # fmt: skip
    assert demo()[0] is holds
    assert opposite == said.replace(formula, nearest_wrong(formula)) and home == "item 46"
    assert "the typed" in demo.shows and "central difference" in demo.shows


def test_a_typed_row_refuses_a_formula_not_in_its_phrase():
    with pytest.raises(ValueError, match="not part of the phrase"):
        typed("t", "f' = 4w³ - 4w", "4w³ + 4w", lambda: [], "item 46")


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
