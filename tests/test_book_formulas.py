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
    ("momentum", "RECURRENCE", "step_next", "STEP_NEXT", "w_{t+1} = w_{t} - \\eta b_{t+1}"),
    ("momentum", "RECURRENCE", "buffer_next", "BUFFER_NEXT",
     "b_{t+1} = \\beta b_{t} + \\lambda w_{t}"),
    ("momentum", "RECURRENCE", "eliminated", "ELIMINATED", "\\eta b_{t} = w_{t-1} - w_{t}"),
    ("momentum", "RECURRENCE", "hb_char", "HB_CHAR",
     "z^{2} - \\left(1 + \\beta - \\eta \\lambda\\right) z + \\beta"),
    ("momentum", "RECURRENCE", "edge_tex", "EDGE", "2 \\left(1 + \\beta\\right)"),
    ("momentum", "CONDITION", "edge_tex", "EDGE", "2 \\left(1 + \\beta\\right)"),
    ("momentum", "MOVE", "edge_tex", "EDGE", "2 \\left(1 + \\beta\\right)"),
    ("momentum", "PLANE", "edge_tex", "EDGE", "2 \\left(1 + \\beta\\right)"),
    ("momentum", "MOVE", "crit_tex", "CRIT", "\\left(1 - \\sqrt{\\eta \\mu}\\right)^{2}"),
    ("momentum", "NESTEROV", "nest_char", "NEST_CHAR",
     "z^{2} - \\left(1 + \\beta\\right) \\left(1 - \\eta \\lambda\\right) z + \\beta "
     "\\left(1 - \\eta \\lambda\\right)"),
    ("momentum", "AVERAGE", "filled_tex", "FILLED", "\\frac{1 - \\beta^{t}}{1 - \\beta}"),
    ("momentum", "AVERAGE", "damped_tex", "DAMPED_FILLED",
     "\\beta^{T - 1} + \\frac{\\left(1 - \\tau\\right) \\left(1 - \\beta^{T - 1}\\right)}"
     "{1 - \\beta}"),
    ("momentum", "AVERAGE", "half_tex", "HALF_LIFE",
     "\\frac{\\log{\\left(2 \\right)}}{\\log{\\left(\\frac{1}{\\beta} \\right)}}"),
    ("momentum", "LESSARD", "nbeta_tex", "HB_RATE",
     "\\frac{\\sqrt{\\kappa} - 1}{\\sqrt{\\kappa} + 1}"),
    ("momentum", "CONDITION", "gd_lr_tex", "GD_LR", "\\frac{2}{L + \\mu}"),
    ("descent_modes", "EPOCH", "gd_best", "GD_BEST",
     "\\frac{2}{\\lambda_{\\max} + \\lambda_{\\min}}"),
    ("momentum", "NOISE", "noise_var", "NOISE_VAR",
     "\\frac{\\eta \\sigma^{2} \\left(1 + \\beta\\right)}{h \\left(1 - \\beta\\right) "
     "\\left(2 \\left(1 + \\beta\\right) - \\eta h\\right)}"),
    ("newton", "QUADRATIC", "c_tex", "QUAD_C", "\\frac{e^{x^*}}{2 e^{x^*}}"),
    ("newton", "LINESEARCH", "armijo", "ARMIJO",
     "f(w + t d) \\leq f(w) + c t \\nabla f(w)^\\top d"),
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
    ("momentum", "w_{t+1} = w_t - \\\\eta b_{t+1}"),
    ("momentum", "b_{t+1} = \\\\beta b_t + \\\\lambda w_t"),
    ("momentum", "\\\\eta b_t = w_{t-1} - w_t"),
    ("momentum", "z^2 - (1 + \\\\beta - \\\\eta\\\\lambda)\\\\, z + \\\\beta = 0"),
    ("momentum", "z^2 - (1 + \\\\beta)(1 - \\\\eta\\\\lambda) z"),
    ("momentum", "$0 < \\\\eta\\\\lambda < 2(1 + \\\\beta)$"),
    ("momentum", "$\\\\eta L > 2(1 + \\\\beta)$"),
    ("momentum", "$\\\\eta L = 2(1 + \\\\beta)$"),
    ("momentum", "$(1 - \\\\sqrt{\\\\eta\\\\mu})^2$"),
    ("momentum", "$(1 - \\\\beta^t)/(1 - \\\\beta)$"),
    ("momentum", "$\\\\ln 2/\\\\ln(1/\\\\beta)$"),
    ("momentum", "(1 - \\\\tau)(1 - \\\\beta^{T-1})/(1 - \\\\beta)$"),
    ("momentum", "$\\\\beta = (\\\\sqrt\\\\kappa - 1)/(\\\\sqrt\\\\kappa + 1)$"),
    ("momentum", "polynomial $z^2$"),
    ("momentum", "$\\\\eta = 2/(L + \\\\mu)$"),
    ("descent_modes", "$\\\\eta = 2/(\\\\lambda_{\\\\max} + \\\\lambda_{\\\\min})$"),
    ("momentum", "{h (1 - \\\\beta)(2(1 + \\\\beta) - \\\\eta h)}"),
    ("newton", "$C = e^{x^*}/(2e^{x^*})$"),
    ("newton", "f(w + t d) \\\\le f(w) + c\\\\, t\\\\, \\\\nabla f(w)^\\\\top d"),
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
    chapter = _swapped(monkeypatch, module, formula, rule)
    failed = [c.text for c in CHECKS[module](chapter) if c.failed]
    assert (not failed) is right, failed


def _swapped(monkeypatch, module: str, formula: str, source: str):
    """The chapter ``module`` with its Formula ``formula`` replaced by ``source`` (the TeX
    names kept), for one test."""
    chapter = _chapter(module)
    names = getattr(chapter, formula).names
    monkeypatch.setattr(chapter, formula, facts.Formula(source, names))
    return chapter


def test_a_formula_reads_every_name_as_a_symbol_and_shows_the_tex_names_given():
    f = facts.Formula("beta*b + gamma*w_p", {"w_p": "w_{t-1}"})
    assert f.tex == "\\beta b + \\gamma w_{t-1}"
    assert f(beta=0.5, b=2.0, gamma=3.0, w_p=1.0) == 4.0
    assert re.fullmatch(
        r"\\frac\{x\}\{\\sqrt\{1 \+ x\^\{2\}\}\}", facts.Formula("x/sqrt(1 + x**2)").tex
    )


#: the rules the lectures type, each the rule it names under a renaming of its letters (the
#: table of the right the check lets through; the gradient at a sum's point is not read)
TYPED_RIGHT = [
    ("`w ← w - η∇L(w)`", "gd"), ("`x ← x - η f'(x)`", "gd"), ("`W ← W - η ∂L/∂W`", "gd"),
    ("`w ← (1 - αλ) w - ασξ`", "noisy_quadratic"), ("`m ← β₁m - η∇L`", "velocity"),
    ("`w ← w + m`", "velocity_step"), ("`v ← β₂v + (1-β₂)g²`", "average_sq"),
    ("`r ← ρr + (1-ρ) g⊙g`", "average_sq"), ("`G ← γG + (1-γ)g²`", "average_sq"),
    ("`r ← r + g⊙g`", "adagrad"), ("`a ← βa + g`", "buffer"), ("`v ← αv - ε∇f(w)`", "velocity"),
    ("`w ← (1 - ηλ) w`", "quadratic"), ("`w ← w - P∇f`", "gd"), ("`h ← h + g²`", "adagrad"),
]  # fmt: skip
#: the same with an exponent, a sign or two operands changed, or another rule of the book in
#: the place of the one named (a card's rule swapped for its pair: the last rows)
TYPED_WRONG = [
    ("`w ← w + η∇L(w)`", "gd"), ("`x ← x - η² f'(x)`", "gd"),
    ("`w ← (1 + αλ) w - ασξ`", "noisy_quadratic"), ("`m ← β₁m + η∇L`", "velocity"),
    ("`v ← β₂v + (1-β₂)g³`", "average_sq"), ("`r ← (1-ρ)r + ρ g⊙g`", "average_sq"),
    ("`G ← γG - (1-γ)g²`", "average_sq"), ("`r ← r + g`", "adagrad"), ("`a ← βa - g`", "buffer"),
    ("`w ← (1 - ηλ)² w`", "quadratic"), ("`h ← h - g²`", "adagrad"),
    ("`v ← β₂g + (1-β₂)v²`", "average_sq"),
    ("`r ← r + g⊙g`", "average_sq"), ("`r ← ρr + (1-ρ) g⊙g`", "adagrad"),
    ("`a ← βa - ηg`", "buffer"), ("`w ← w - η∇L(w)`", "quadratic"),
]  # fmt: skip


@pytest.mark.parametrize(("typed", "name"), TYPED_RIGHT)
def test_a_typed_rule_that_is_the_rule_it_names_passes(typed, name):
    from descentlab.book.texts._facts import RULES

    assert facts.rule_mismatches(typed, [(name, RULES[name])], RULES) == (1, [])


@pytest.mark.parametrize(("typed", "name"), TYPED_WRONG)
def test_a_typed_rule_changed_or_another_than_it_names_is_refused(typed, name):
    from descentlab.book.texts._facts import RULES

    read, bad = facts.rule_mismatches(typed, [(name, RULES[name])], RULES)
    assert read == 1 and len(bad) == 1 and bad[0].startswith(f"{typed}: not {name}, the rule")


@pytest.mark.parametrize(
    ("item", "old", "new", "right"),
    [(57, "`r ← ρr + (1-ρ) g⊙g`", "`r ← ρr + (1-ρ) g⊙g`", True),
     (57, "`r ← ρr + (1-ρ) g⊙g`", "`r ← (1-ρ) g⊙g + ρr`", True),
     (57, "`r ← ρr + (1-ρ) g⊙g`", "`r ← r + g⊙g`", False),  # AdaGrad's, the pair's
     (55, "`r ← r + g⊙g`", "`r ← ρr + (1-ρ) g⊙g`", False),  # RMSProp's
     (73, "`a ← βa + g`", "`a ← βa - g`", False),
     (57, "`r ← ρr + (1-ρ) g⊙g`", "`r ← (ρr + (1-ρ) g⊙g)/(1-ρ^t)`", False),  # Adam's correction
     (57, "`r ← ρr + (1-ρ) g⊙g`", "the average", False),  # stated, no longer typed
     (25, "`w ← w + m`", "`w ← w + m` and `w ← w - m`", False)],  # one more than it states
)  # fmt: skip
def test_a_cards_typed_rule_is_checked_against_the_rule_its_card_states(item, old, new, right):
    from descentlab.book.lectures import LECTURES
    from descentlab.book.texts._facts import RULES, stated_rules

    (it,) = [i for lec in LECTURES for i in lec.items if i.number == item]
    assert old in it.explain
    check = facts.text_check(it.explain.replace(old, new), rules=stated_rules(item), book=RULES)
    assert check.failed is not right, check.measured


def test_a_gradient_at_another_point_or_a_sum_is_not_read():
    text = "`v ← βv - η∇L(W + βv)` and `w ← w - η (1/|B|) Σ_{i∈B} ∇L_i`"
    assert facts.rule_mismatches(text, []) == (0, [])


def test_every_rule_a_lecture_card_types_is_read_and_is_the_one_it_states():
    from descentlab.book.lectures import LECTURES
    from descentlab.book.texts._facts import RULES, stated_rules

    read = [facts.rule_mismatches(it.explain, stated_rules(it.number), RULES)
            for lec in LECTURES for it in lec.items]  # fmt: skip
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


def test_every_rule_an_exercise_types_is_read_and_is_the_one_it_states():
    """The lectures' and the chapters' exercises (the Newton chapter's `x ← -x³` is one)."""
    import pkgutil

    from descentlab.book import chapters
    from descentlab.book.texts import EXERCISES
    from descentlab.book.texts._facts import RULES, stated_rules

    exercises = [e for exs in EXERCISES.values() for e in exs]
    for info in pkgutil.iter_modules(chapters.__path__):
        exercises += getattr(_chapter(info.name), "EXERCISES", ())
    read = [facts.rule_mismatches(f"{e.question}\n{e.solution}",
                                  stated_rules(question=e.question), RULES)
            for e in exercises]  # fmt: skip
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


def _section(chapter, name: str) -> list[str]:
    """The failed checks of one section of ``chapter`` built (quick, no cache), its stated
    numbers' checks included."""
    from descentlab.book.model import Context

    n = kit.Numbers()
    part = getattr(chapter, name)(Context(True, None, lambda m: None), n)
    return [c.text for c in [*part.checks, *n.drain()] if c.failed]


def _best_rate(chapter) -> list[str]:
    """The descent-modes chapter's stated best rate (its Formula at the Hessian's eigenvalues)
    against the minimiser of max |1 - ηλ|, as the page's slot compares them."""
    import numpy as np

    lam = np.linalg.eigvalsh(chapter._problem()["h"])
    eta = chapter.GD_BEST(lamda_max=lam[1], lamda_min=lam[0])
    return [] if abs(eta - chapter._minimax(lam)) <= 1e-6 * abs(eta) else [f"η = {eta:.6g}"]


#: what evaluates each formula below at the page's numbers: the derivation's lines at
#: descentlab's iterates and buffers, the polynomials' roots against the rates the sections
#: print and theory_rate, the edge and the critical β against root-finders on the polynomial,
#: Armijo's condition as the damped Newton's line search tests it, against plain numpy's
EVALUATED = {
    "STEP_NEXT": lambda ch: [c.text for c in ch._derivation_checks() if c.failed],
    "BUFFER_NEXT": lambda ch: [c.text for c in ch._derivation_checks() if c.failed],
    "ELIMINATED": lambda ch: [c.text for c in ch._derivation_checks() if c.failed],
    "HB_CHAR": lambda ch: _section(ch, "_recurrence"),
    "EDGE": lambda ch: _section(ch, "_recurrence"),
    "NEST_CHAR": lambda ch: _section(ch, "_nesterov"),
    "CRIT": lambda ch: _section(ch, "_move"),
    "DAMPED_FILLED": lambda ch: _section(ch, "_average"),
    "DAMPED_LIMIT": lambda ch: _section(ch, "_average"),
    "HALF_LIFE": lambda ch: _section(ch, "_average"),
    "FILLED": lambda ch: _section(ch, "_average"),
    "ARMIJO": lambda ch: _section(ch, "_far"),
    "GD_LR": lambda ch: _section(ch, "_condition"),
    "GD_BEST": lambda ch: _best_rate(ch),
    "QUAD_C": lambda ch: [] if abs((cc := ch._quad_c())[0] - cc[1]) <= 1e-12 else [str(cc)],
    "NOISE_VAR": lambda ch: [
        c.text
        for c in ch._closed_checks(
            [(e * (1 - b), b) for e in ch.NOISE_EFFECTIVE for b in ch.NOISE_BETAS]
        )
        if c.failed
    ],
}

#: (chapter, Formula, the formula swapped in, whether the checks let it through): the right
#: formulas written otherwise pass; an exponent, a sign, an inequality's direction or its
#: constant, or two operands changed are refused
DERIVED = [
    ("momentum", "STEP_NEXT", "Eq(w_n, w_t - b_n*eta)", True),
    ("momentum", "STEP_NEXT", "Eq(w_n, w_t + eta*b_n)", False),
    ("momentum", "STEP_NEXT", "Eq(w_n, w_t - eta**2*b_n)", False),
    ("momentum", "BUFFER_NEXT", "Eq(b_n, lamda*w_t + beta*b_t)", True),
    ("momentum", "BUFFER_NEXT", "Eq(b_n, beta*w_t + lamda*b_t)", False),
    ("momentum", "BUFFER_NEXT", "Eq(b_n, beta*b_t - lamda*w_t)", False),
    ("momentum", "ELIMINATED", "Eq(eta*b_t, -(w_t - w_p))", True),
    ("momentum", "ELIMINATED", "Eq(eta*b_t, w_t - w_p)", False),
    ("momentum", "ELIMINATED", "Eq(eta**2*b_t, w_p - w_t)", False),
    ("momentum", "HB_CHAR", "z**2 - z*(1 + beta - eta*lamda) + beta", True),
    ("momentum", "HB_CHAR", "z**2 - (1 + beta + eta*lamda)*z + beta", False),
    ("momentum", "HB_CHAR", "z**2 - (1 + beta - eta*lamda)*z + beta**2", False),
    ("momentum", "HB_CHAR", "beta*z**2 - (1 + beta - eta*lamda)*z + 1", False),
    ("momentum", "NEST_CHAR", "z**2 - (1 - eta*lamda)*(1 + beta)*z + (1 - eta*lamda)*beta", True),
    ("momentum", "NEST_CHAR", "z**2 - (1 + beta)*(1 - eta*lamda)*z + beta", False),
    ("momentum", "NEST_CHAR", "z**2 - (1 + beta)*(1 - eta*lamda)*z - beta*(1 - eta*lamda)", False),
    ("momentum", "EDGE", "2 + 2*beta", True),
    ("momentum", "EDGE", "2*(1 - beta)", False),
    ("momentum", "EDGE", "2*(1 + beta**2)", False),
    ("momentum", "CRIT", "1 - 2*sqrt(eta*mu) + eta*mu", True),
    ("momentum", "CRIT", "(1 + sqrt(eta*mu))**2", False),
    ("momentum", "CRIT", "(1 - eta*mu)**2", False),
    ("momentum", "FILLED", "(1 - beta**t)/(1 - beta)", True),
    ("momentum", "FILLED", "(1 - beta**(t + 1))/(1 - beta)", False),
    ("momentum", "DAMPED_FILLED", "beta**(T - 1) + (1 - tau)*(1 - beta**(T - 1))/(1 - beta)", True),
    ("momentum", "DAMPED_FILLED",
     "beta**(T - 1) + (1 - tau)*(1 - beta**(T - 1))/(1 - beta)**2", False),
    # the damped buffer's filled step: typed $(1 - \\tau)/(1 - \\beta)$ before, its sign unread
    ("momentum", "DAMPED_LIMIT", "(1 - tau)/(1 - beta)", True),
    ("momentum", "DAMPED_LIMIT", "(1 + tau)/(1 - beta)", False),
    ("momentum", "DAMPED_LIMIT", "(1 - tau)/(1 + beta)", False),
    ("momentum", "HALF_LIFE", "-log(2)/log(beta)", True),
    ("momentum", "HALF_LIFE", "log(2)/log(beta)", False),
    ("momentum", "GD_LR", "2/(mu + L)", True),
    ("momentum", "GD_LR", "2/(L - mu)", False),
    ("momentum", "GD_LR", "1/(L + mu)", False),
    ("momentum", "NOISE_VAR", "eta*sigma**2*(beta + 1)/(h*(1 - beta)*(2 + 2*beta - eta*h))", True),
    ("momentum", "NOISE_VAR", "eta*sigma**2*(1 + beta)/(h*(1 - beta)*(2*(1 + beta) + eta*h))",
     False),
    ("momentum", "NOISE_VAR", "eta*sigma**2*(1 - beta)/(h*(1 + beta)*(2*(1 + beta) - eta*h))",
     False),
    ("descent_modes", "GD_BEST", "2/(lamda_min + lamda_max)", True),
    ("descent_modes", "GD_BEST", "1/(lamda_max + lamda_min)", False),
    ("descent_modes", "GD_BEST", "2/(lamda_max - lamda_min)", False),
    ("newton", "QUAD_C", "exp(x_s)/(exp(x_s)*2)", True),
    ("newton", "QUAD_C", "exp(x_s)/exp(x_s)", False),
    ("newton", "QUAD_C", "exp(x_s)/(2*exp(2*x_s))", False),
    ("newton", "ARMIJO", "f_t - f_0 <= c*t*s", True),
    ("newton", "ARMIJO", "f_0 + s*t*c >= f_t", True),
    ("newton", "ARMIJO", "f_t >= f_0 + c*t*s", False),
    ("newton", "ARMIJO", "f_t <= f_0 + t*s", False),
]  # fmt: skip


@pytest.mark.parametrize(("module", "formula", "source", "right"), DERIVED)
def test_a_derivation_polynomial_or_condition_shown_wrong_is_refused(
    monkeypatch, module, formula, source, right
):
    failed = EVALUATED[formula](_swapped(monkeypatch, module, formula, source))
    assert (not failed) is right, failed


def test_a_relation_is_evaluated_by_its_sides_and_refused_as_a_value():
    eq = facts.Formula("Eq(eta*b_t, w_p - w_t)", {"w_p": "w_{t-1}"})
    assert eq.tex == "\\eta b_{t} = w_{t-1} - w_{t}"
    assert eq.sides(eta=0.5, b_t=2.0, w_p=3.0, w_t=2.0) == (1.0, 1.0)
    le = facts.Formula("f_t <= f_0 + c*t*s")
    assert le.holds(f_t=0.9, f_0=1.0, c=0.5, t=1.0, s=-0.1)
    assert not le.holds(f_t=0.99, f_0=1.0, c=0.5, t=1.0, s=-0.1)
    with pytest.raises(ValueError, match="is a relation"):
        le(f_t=0.9, f_0=1.0, c=0.5, t=1.0, s=-0.1)
    with pytest.raises(ValueError, match="no value for t"):
        le.holds(f_t=0.9, f_0=1.0, c=0.5, s=-0.1)
    assert facts.Formula("z**2 - (1 + b)*z + b").coefficients("z", b=0.25) == [1.0, -1.25, 0.25]


#: the formulas with a relation (=, ←, <, ≤, ≈) that the chapters whose derivations are
#: rendered still type, each with why it is not rendered from what is computed: the table is
#: the set exactly (a formula rendered must leave it, a new typed one must join it)
STILL_TYPED = [
    ("momentum", "b = 0", "a setting: the buffer's start"),
    ("momentum", "f(w) = gw", "the problem's definition"),
    ("momentum", "f(w) = \\sum_i \\lambda_i w_i^2/2", "the problem's definition"),
    ("momentum", "\\eta\\lambda < 2", "gradient descent's edge, EDGE at β = 0: the η = 2, β = 0 "
     "row's measured rate 1 checks it"),
    ("momentum", "f = w^2/2", "the problem's definition"),
    ("momentum", "\\eta = 1/L", "a setting: Nesterov's tuning, the run's η"),
    ("momentum", "\\Sigma = A \\Sigma A^\\top + Q", "a matrix equation (scipy's "
     "solve_discrete_lyapunov solves it): the reader takes no matrices"),
    ("newton", "f(w + d) \\approx f(w) + \\nabla f(w)^\\top d + \\tfrac12 d^\\top "
     "\\nabla^2 f(w)\\, d,", "the model's definition (vectors, a Hessian)"),
    ("newton", "H = \\nabla^2 f(w)", "a definition"),
    ("newton", "d = -H^{-1}\\nabla f(w)", "a definition: NEWTON_STEP's direction, shown next and "
     "evaluated"),
    ("newton", "e_{t+1} \\approx C e_t^2", "an asymptotic statement: the table's e_{t+1}/e_t² is "
     "stated against C"),
    ("newton", "C = |f'''(x^*)| / (2 f''(x^*))", "a general formula in derivatives as symbols"),
    ("newton", "f(x) = e^x - 2x", "the problem's definition"),
    ("newton", "f(x) = \\sqrt{1 + x^2}", "the problem's definition (its derivatives rendered)"),
    ("newton", "|x| < 10^{-12}", "a setting: the runs' stopping tolerance"),
    ("newton", "P = \\mathrm{diag}(H)", "a definition"),
    ("descent_modes", "g = \\frac{1}{N}\\sum_{i=1}^N \\nabla L_i(w)", "a definition (a sum)"),
    ("descent_modes", "g = \\nabla L_i(w)", "a definition"),
    ("descent_modes", "L(w) = \\frac{1}{2N}\\sum_i (x_i^\\top w - y_i)^2", "the problem"),
    ("descent_modes", "H = X^\\top X/N", "a definition (matrices)"),
    ("descent_modes", "e = w - w^*", "a definition"),
    ("descent_modes", "g = \\frac{1}{B}\\sum_b x_b (x_b^\\top e - r_b)", "a definition (a sum)"),
    ("descent_modes", "m \\leftarrow (I - \\eta H) m", "a matrix recursion: the moments' "
     "recursion (book.descent.exact) is checked against the runs"),
    ("descent_modes", "\\Sigma = \\mathbb{E}[e e^\\top]", "a definition (an expectation)"),
    ("descent_modes", "\\Sigma \\leftarrow \\Sigma - \\eta(\\Sigma H + H\\Sigma) + \\eta^2\\, "
     "\\mathbb{E}[g g^\\top],", "a matrix recursion with an expectation, computed by "
     "book.descent.exact in numpy and checked against the runs"),
    ("descent_modes", "\\mathbb{E}[g g^\\top] = \\Big(1 - \\frac{1}{B}\\Big) H\\Sigma H\n+ "
     "\\frac{1}{BN}\\sum_i x_i x_i^\\top \\big(x_i^\\top \\Sigma x_i - 2 r_i\\, x_i^\\top m +\n"
     "r_i^2\\big),", "as the recursion above"),
    ("descent_modes", "\\eta < 2h/(h^2 + c/B)", "the batch chapter's edge, restated"),
]  # fmt: skip


def _typed_relations(module: str) -> list[str]:
    """The formulas with a relation that ``module``'s prose and "What to keep" type (not a
    slot filled from a Formula)."""
    from descentlab.book.render.formulas import MATH

    chapter = _chapter(module)
    texts = [v.text for v in vars(chapter).values() if isinstance(v, kit.Prose)]
    out = []
    for m in MATH.finditer("\n".join([*texts, chapter.CHAPTER.keep])):
        tex = m.group(2) or m.group(3)
        if tex and "{{" not in tex and re.search(r"=|\\leftarrow|\\le|<|>|\\approx", tex):
            out.append(tex)
    return out


@pytest.mark.parametrize("module", ["momentum", "newton", "descent_modes"])
def test_every_formula_a_rendered_chapter_still_types_is_listed_with_its_reason(module):
    listed = [tex for m, tex, why in STILL_TYPED if m == module and why]
    assert sorted(_typed_relations(module)) == sorted(listed)
