"""The update rules the chapters show are rendered from the Formula a check evaluates at each
step against descentlab's own steps: the TeX is typed nowhere, and a rule shown wrong (an
exponent, a sign, two operands swapped) is a rule refused. Each table holds the right rules
the checks let through beside the wrong ones they refuse."""

from __future__ import annotations

import importlib
import math
import re

import pytest

from descentlab.book import facts
from descentlab.book.chapters import _common as kit

#: (chapter module, its Prose, the slot the rule fills, the Formula, the TeX it shows)
SHOWN = [
    ("descent_modes", "THREE", "rule_w", "SGD_W", "w - \\eta g"),
    ("momentum", "AVERAGE", "rule_b", "MOM_B", "\\beta b + g"),
    ("momentum", "AVERAGE", "rule_w", "MOM_W", "w - \\eta b"),
    ("momentum", "AVERAGE", "rule_damped", "MOM_B_DAMPED", "\\beta b + \\left(1 - \\tau\\right) g"),
    ("momentum", "RECURRENCE", "rule_hb", "HB_NEXT",
     "\\left(1 + \\beta - \\eta \\lambda\\right) w_{t} - \\beta w_{t-1}"),
    ("momentum", "NESTEROV", "rule_nest", "NEST_NEXT",
     "\\left(1 + \\beta\\right) \\left(1 - \\eta \\lambda\\right) w_{t} - \\beta "
     "\\left(1 - \\eta \\lambda\\right) w_{t-1}"),
    ("regularization", "DECAY_TEXT", "rule_l2", "L2_STEP",
     "w - \\eta \\left(g + \\lambda w\\right)"),
    ("regularization", "DECAY_TEXT", "rule_decay", "DECAY_STEP",
     "\\left(1 - \\eta \\lambda\\right) w - \\eta g"),
    ("regularization", "ADAMW", "rule_decoupled", "DECOUPLED",
     "\\left(1 - \\eta \\lambda\\right) w"),
    ("regularization", "ADAMW", "rule_geometric", "GEOMETRIC",
     "\\left(1 - \\eta \\lambda\\right)^{T}"),
    ("newton", "STEP", "rule_newton", "NEWTON_STEP", "w - H^{-1} \\nabla f(w)"),
    ("newton", "FAR_TEXT", "rule_cube", "SQRT1_STEP", "- x^{3}"),
    ("newton", "FAR_TEXT", "rule_three", "SQRT1_THREE", "- x^{27}"),
    ("newton", "FAR_TEXT", "d2", "SQRT1_D2", "\\left(1 + x^{2}\\right)^{- \\frac{3}{2}}"),
]  # fmt: skip


def _chapter(name: str):
    return importlib.import_module(f"descentlab.book.chapters.{name}")


@pytest.mark.parametrize(("module", "prose", "slot", "formula", "tex"), SHOWN)
def test_a_chapters_update_rule_is_shown_from_its_formula(module, prose, slot, formula, tex):
    chapter = _chapter(module)
    assert "{{" + slot + "}}" in getattr(chapter, prose).text
    assert getattr(chapter, formula).tex == tex


#: the rules the chapters' texts typed before, one per line: none may be typed again
TYPED = [
    ("descent_modes", "w \\\\leftarrow w - \\\\eta\\\\, g"),
    ("momentum", "b \\\\leftarrow \\\\beta b + g"),
    ("momentum", "w \\\\leftarrow w - \\\\eta b"),
    ("momentum", "\\\\beta b + (1 - \\\\tau) g"),
    ("momentum", "(1 + \\\\beta - \\\\eta\\\\lambda)\\\\, w_t - \\\\beta\\\\, w_{t-1}"),
    ("momentum", "(1 + \\\\beta)(1 - \\\\eta\\\\lambda)\\\\, w_t"),
    ("regularization", "w - \\\\eta(g + \\\\lambda w)"),
    ("regularization", "(1 - \\\\eta\\\\lambda)\\\\, w - \\\\eta g"),
    ("regularization", "w \\\\leftarrow (1 - \\\\eta\\\\lambda) w"),
    ("regularization", "$(1 - \\\\eta\\\\lambda)^T$"),
    ("newton", "w - H^{-1} \\\\nabla f(w)"),
    ("newton", "x \\\\leftarrow -x^3"),
    ("newton", "$-x^{27}$"),
]


@pytest.mark.parametrize(("module", "typed"), TYPED)
def test_no_chapter_types_the_rule_its_formula_shows(module, typed):
    source = importlib.util.find_spec(f"descentlab.book.chapters.{module}").origin
    with open(source, encoding="utf-8") as f:
        assert typed not in f.read()


def _sgd(chapter):
    return [chapter._rule_check()]


def _momentum(chapter):
    return [
        *chapter._rule_checks(),
        kit.rule_check("hb", *chapter._recurrence_rule(chapter.HB_NEXT, nesterov=False)),
        kit.rule_check("nest", *chapter._recurrence_rule(chapter.NEST_NEXT, nesterov=True)),
    ]


def _regularization(chapter):
    decoupled = chapter._pure_decay(True)
    return [
        *chapter._rule_checks(),
        kit.rule_check("AdamW", chapter._decoupled_rule()[1:], decoupled[1:]),
    ]


def _newton(chapter):
    runs = [[x0, *chapter._newton_1d(chapter._sqrt1, x0, 3)] for x0 in (0.5, 1.5)]
    return chapter._sqrt1_checks(runs)


CHECKS = {"descent_modes": _sgd, "momentum": _momentum, "regularization": _regularization,
          "newton": _newton}  # fmt: skip

#: (chapter, Formula, the rule swapped in, whether the checks let it through): the right
#: rules written otherwise pass, an exponent, a sign or two operands changed are refused
RULES = [
    ("descent_modes", "SGD_W", "w - eta*g", True),
    ("descent_modes", "SGD_W", "-eta*g + w", True),
    ("descent_modes", "SGD_W", "w + eta*g", False),
    ("descent_modes", "SGD_W", "w - eta*g**2", False),
    ("momentum", "MOM_B", "g + beta*b", True),
    ("momentum", "MOM_B", "beta*b - g", False),
    ("momentum", "MOM_B", "beta**2*b + g", False),
    ("momentum", "MOM_W", "w - b*eta", True),
    ("momentum", "MOM_W", "w + eta*b", False),
    ("momentum", "MOM_B_DAMPED", "beta*b + (1 - tau)*g", True),
    ("momentum", "MOM_B_DAMPED", "beta*b + tau*g", False),
    ("momentum", "MOM_B_DAMPED", "(1 - tau)*b + beta*g", False),
    ("momentum", "HB_NEXT", "(1 + beta - eta*lamda)*w_t - beta*w_p", True),
    ("momentum", "HB_NEXT", "(1 + beta - eta*lamda)*w_t + beta*w_p", False),
    ("momentum", "HB_NEXT", "(1 + beta - eta*lamda)*w_p - beta*w_t", False),
    ("momentum", "NEST_NEXT", "(1 - eta*lamda)*((1 + beta)*w_t - beta*w_p)", True),
    ("momentum", "NEST_NEXT", "(1 + beta)*(1 - eta*lamda)*w_t - beta*w_p", False),
    ("momentum", "NEST_NEXT",
     "(1 + beta)*(1 - eta*lamda)**2*w_t - beta*(1 - eta*lamda)*w_p", False),
    ("regularization", "L2_STEP", "w - eta*g - eta*lamda*w", True),
    ("regularization", "L2_STEP", "w - eta*(g - lamda*w)", False),
    ("regularization", "DECAY_STEP", "(1 - eta*lamda)*w - eta*g", True),
    ("regularization", "DECAY_STEP", "(1 - eta*lamda)**2*w - eta*g", False),
    ("regularization", "DECAY_STEP", "(1 - eta*lamda)*g - eta*w", False),
    ("regularization", "DECOUPLED", "w - eta*lamda*w", True),
    ("regularization", "DECOUPLED", "(1 + eta*lamda)*w", False),
    ("newton", "NEWTON_STEP", "w - grad*H_inv", True),
    ("newton", "NEWTON_STEP", "w + H_inv*grad", False),
    ("newton", "NEWTON_STEP", "w - H_inv**2*grad", False),
    ("newton", "SQRT1_D1", "x*(1 + x**2)**(-1/2)", True),
    ("newton", "SQRT1_D1", "x/(1 + x**2)", False),
    ("newton", "SQRT1_D2", "(1 + x**2)**(-3/2)", True),
    ("newton", "SQRT1_D2", "(1 + x**2)**(-1/2)", False),
    ("newton", "SQRT1_STEP", "-x*x*x", True),
    ("newton", "SQRT1_STEP", "-x**2", False),
    ("newton", "SQRT1_STEP", "x**3", False),
]  # fmt: skip


@pytest.mark.parametrize(("module", "formula", "rule", "right"), RULES)
def test_a_rule_shown_wrong_is_refused_by_its_step_by_step_check(
    monkeypatch, module, formula, rule, right
):
    chapter = _chapter(module)
    names = getattr(chapter, formula).names
    monkeypatch.setattr(chapter, formula, facts.Formula(rule, names))
    failed = [c.text for c in CHECKS[module](chapter) if c.failed]
    assert (not failed) is right, failed


def test_a_formula_reads_every_name_as_a_symbol_and_shows_the_tex_names_given():
    f = facts.Formula("beta*b + gamma*w_p", {"w_p": "w_{t-1}"})
    assert f.tex == "\\beta b + \\gamma w_{t-1}"
    assert f(beta=0.5, b=2.0, gamma=3.0, w_p=1.0) == 4.0
    assert re.fullmatch(
        r"\\frac\{x\}\{\\sqrt\{1 \+ x\^\{2\}\}\}", facts.Formula("x/sqrt(1 + x**2)").tex
    )


#: the rules the lectures type, each one of the book's under a renaming of its letters (the
#: table of the right the check lets through; the gradient at a sum's point is not read)
TYPED_RIGHT = [
    "`w ← w - η∇L(w)`", "`x ← x - η f'(x)`", "`W ← W - η ∂L/∂W`", "`w ← (1 - αλ) w - ασξ`",
    "`m ← β₁m - η∇L`", "`w ← w + m`", "`v ← β₂v + (1-β₂)g²`", "`r ← ρr + (1-ρ) g⊙g`",
    "`G ← γG + (1-γ)g²`", "`r ← r + g⊙g`", "`a ← βa + g`", "`v ← αv - ε∇f(w)`",
    "`w ← (1 - ηλ) w`", "`w ← w - P∇f`", "`h ← h + g²`",
]  # fmt: skip
#: the same with an exponent, a sign or two operands changed
TYPED_WRONG = [
    "`w ← w + η∇L(w)`", "`x ← x - η² f'(x)`", "`w ← (1 + αλ) w - ασξ`", "`m ← β₁m + η∇L`",
    "`v ← β₂v + (1-β₂)g³`", "`r ← (1-ρ)r + ρ g⊙g`", "`G ← γG - (1-γ)g²`", "`r ← r + g`",
    "`a ← βa - g`", "`w ← (1 - ηλ)² w`", "`h ← h - g²`", "`v ← β₂g + (1-β₂)v²`",
]  # fmt: skip


@pytest.mark.parametrize("typed", TYPED_RIGHT)
def test_a_typed_rule_that_is_the_books_passes(typed):
    from descentlab.book.texts._facts import RULES

    assert facts.rule_mismatches(typed, RULES) == (1, [])


@pytest.mark.parametrize("typed", TYPED_WRONG)
def test_a_typed_rule_with_an_exponent_sign_or_operands_changed_is_refused(typed):
    from descentlab.book.texts._facts import RULES

    assert facts.rule_mismatches(typed, RULES) == (1, [f"{typed}: no rule the book computes"])


def test_a_gradient_at_another_point_or_a_sum_is_not_read():
    from descentlab.book.texts._facts import RULES

    text = "`v ← βv - η∇L(W + βv)` and `w ← w - η (1/|B|) Σ_{i∈B} ∇L_i`"
    assert facts.rule_mismatches(text, RULES) == (0, [])


def test_every_rule_a_lecture_card_types_is_read_and_is_the_books():
    from descentlab.book.lectures import LECTURES
    from descentlab.book.texts._facts import RULES

    read = [facts.rule_mismatches(it.explain, RULES) for lec in LECTURES for it in lec.items]
    assert sum(n for n, _ in read) >= 20 and [b for _, bad in read for b in bad] == []


@pytest.mark.parametrize(
    ("typed", "right"),
    [("`h ← h + g²`", True), ("`h ← g² + h`", True), ("`h ← h + g³`", False),
     ("`h ← h - g²`", False)],
)  # fmt: skip
def test_an_exercises_typed_rule_is_evaluated_with_its_answer(typed, right):
    import dataclasses

    from descentlab.book.cells import exercise_check, run_cell
    from descentlab.book.texts import EXERCISES

    (ex,) = [e for exs in EXERCISES.values() for e in exs if "`h ← h + g²` sees" in e.question]
    ex = dataclasses.replace(ex, question=ex.question.replace("`h ← h + g²`", typed))
    check = exercise_check(ex, run_cell(ex.code))
    assert check.failed is not right, (check.text, check.measured)


def test_every_rule_an_exercise_types_is_read_and_is_the_books():
    """The lectures' and the chapters' exercises (the Newton chapter's `x ← -x³` is one)."""
    import pkgutil

    from descentlab.book import chapters
    from descentlab.book.texts import EXERCISES
    from descentlab.book.texts._facts import RULES

    exercises = [e for exs in EXERCISES.values() for e in exs]
    for info in pkgutil.iter_modules(chapters.__path__):
        exercises += getattr(_chapter(info.name), "EXERCISES", ())
    read = [facts.rule_mismatches(f"{e.question}\n{e.solution}", RULES) for e in exercises]
    assert sum(n for n, _ in read) >= 4 and [b for _, bad in read for b in bad] == []


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        ([1.0, 2.0, 3.0], "ok"),
        ([1.0, 2.0, 3.0 * (1 + 1e-12)], "ok"),
        ([1.0, math.nan, math.nan], "fail"),  # a rule that overflowed after its first step
        ([math.nan, 2.0, 3.0], "fail"),
        ([1.0, 2.0, math.inf], "fail"),
        ([1.0, 2.0, 3.1], "fail"),
    ],
)  # fmt: skip
def test_a_rule_that_stops_giving_numbers_is_refused_wherever_it_stops(rule, status):
    assert kit.rule_check("r", rule, [1.0, 2.0, 3.0]).status == status
