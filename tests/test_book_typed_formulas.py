"""The formulas of the chapters' prose come from one source: a formula that carries arithmetic
is cited from ``FORMULAS`` (``{{f:name}}``), shown as its SymPy TeX and evaluated against the
code that computes the same quantity, so a sign, an exponent or an index changed in it is a
✘ with its row; a formula kept typed has its reason in one table, and the build counts the
rest as unreviewed (a ratchet: the count may only fall)."""

from __future__ import annotations

import dataclasses

import pytest

from descentlab.book.chapters import _formulas as F
from descentlab.book.chapters import formula_census
from descentlab.book.chapters._common import Chapter, Prose
from descentlab.book.chapters._typed import NOTATION, TYPED
from descentlab.book.facts import Formula
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part

#: the typed formulas of the chapters' prose that neither a Formula nor the table holds: none
#: (355 of 396 before the formulas were cited from one source, 153 before the derivations'
#: steps were): a formula typed anew outside the table is refused
UNREVIEWED = 0


@pytest.mark.parametrize("name", sorted(F.FORMULAS))
def test_each_cited_formula_agrees_with_the_code_that_computes_it(name):
    read, bad = F._agree(F.FORMULAS[name])
    assert read >= 2 and bad == []


#: (formula, its source with one mistake a reader could type): each is a ✘ naming its row
MUTANTS = [
    ("adam_sum", "(1 - beta_1)*Sum(beta_1**(i - t)*g[i], (i, 1, t))"),  # the index transposed
    ("adam_sum", "(1 + beta_1)*Sum(beta_1**(t - i)*g[i], (i, 1, t))"),  # a sign
    ("adam_bias", "1 - beta_1**(t - 1)"),  # an exponent off by one
    ("adam_raw_first", "eta*(1 - beta_2)/sqrt(1 - beta_1)"),  # β₁ and β₂ swapped
    ("adam_step", "eta*m_h/(v_h + epsilon)"),  # the square root dropped
    ("momentum_sum", "Sum(beta**k*g[k], (k, 0, t - 1))"),  # the newest weighted least
    ("momentum_limit", "(1 + beta)**(-1)"),  # a sign
    ("effective_rate", "eta/(1 - beta**2)"),  # an exponent
    ("complex_rate", "beta"),  # the root dropped
    ("edge", "2*(1 - beta)"),  # a sign
    ("noise_ratio", "sqrt((1 + beta)/(1 - beta))"),  # the fraction upside down
    ("rmsprop_step_slope", "eta/sqrt(1 - alpha**(t + 1))"),  # an exponent off by one
    ("rmsprop_v_slope", "Eq(v_t, (1 - alpha**t)*g)"),  # the square dropped
    ("adagrad_travel", "eta*(2*sqrt(T) + 1)"),  # a sign
    ("floor", "eta*sigma**2/(h*(2 + eta*h))"),  # a sign
    ("relax_steps", "(eta*h)**(-1)"),  # a factor 2 dropped
    ("batch_var", "S**2/B*(N - B)/(N + 1)"),  # a sign
    ("batch_edge", "2*h/(h**2 - c/B)"),  # a sign
    ("conv_out", "floor((n + 2*p - d*(k + 1) - 1)/s) + 1"),  # a sign in the dilated extent
    ("conv_params", "C_o*C_i*k**2"),  # the bias left out
    ("gd_best_rate", "(kappa - 1)/kappa"),  # the denominator's term dropped
    ("bootstrap_share", "(1 - n**(-1))**n"),  # the complement for the share
    ("moment_step", "(1 - eta*h)*x + eta**2*sigma**2"),  # an exponent
    ("mean_abs_normal", "sigma*sqrt(pi/2)"),  # the fraction upside down
    # the derivations' steps, rendered since
    ("noisy_sgd", "(1 + eta*h)*w - eta*sigma*xi"),  # a sign in the update rule
    ("bias_factor", "1 - beta**(t - 1)"),  # an exponent off by one
    ("harmonic_step", "(1 - a*h/t)**2*x + a**2*sigma**2/t"),  # an exponent
    ("batch_recursion", "((1 - eta*h)**2 - eta**2*c/B)*x + eta**2*s**2/B"),  # a sign
    ("spike_bound", "eta*(1 - beta_2)/sqrt(1 - beta_1)"),  # the indices transposed
    ("sharp_cooler", "(2 - eta*lamda_f)/(2 - eta*lamda_s)"),  # the wells transposed
    ("moment_gap", "Eq(x_1 - v, (1 - eta*h)*(x - v))"),  # the square dropped
    ("adagrad_rare", "eta/sqrt(P/T)"),  # the fraction upside down
    ("hb_eta", "(2/(sqrt(L) - sqrt(mu)))**2"),  # a sign
    ("offset_decay", "a/(t - t_0)"),  # a sign
    ("warmup_rate", "Min(1, t/(W + 1))"),  # an index off by one
    ("shrink", "lamda/(sigma_i + lamda)"),  # the complement
    ("harmonic_closes", "Eq(c*(2*a*h + 1), a**2*sigma**2)"),  # a sign
    ("batch_gain", "gbar**2/(2*h*(gbar**2 + S**2/B))"),  # an exponent
    ("noise_scale", "S/gbar**2"),  # an exponent dropped
    ("quadruple_ratio", "4*(N - 16)/(N - 4)"),  # the batches transposed
    ("decay_factor", "1 + eta*lamda"),  # a sign
    ("momentum_floor", "eta*sigma**2/(2*h*(1 + beta))"),  # a sign
    ("loss_floor_small", "eta*sigma**2/2"),  # a factor 2
    ("harmonic_loss", "h*a**2*sigma**2/(2*(2*a*h + 1)*t)"),  # a sign
]


@pytest.mark.parametrize(("name", "wrong"), MUTANTS)
def test_a_cited_formula_with_a_mistake_is_a_failed_row_naming_it(name, wrong, monkeypatch):
    shown = F.FORMULAS[name]
    monkeypatch.setitem(
        F.FORMULAS, name, dataclasses.replace(shown, formula=Formula(wrong, shown.formula.names))
    )
    [check] = F.formula_checks(f"${{{{f:{name}}}}}$")
    assert check.failed and f"({name})" in check.text and "the code" in check.measured


def test_a_chapter_shows_a_cited_formula_as_its_tex_and_checks_it_in_the_section():
    prose = Prose("The buffer spirals in at the rate ${{f:complex_rate}}$ ({{r}}).", r="the roots")

    def section(ctx, n):
        return Part("rate", "Rate", [prose.fill(n, r=(0.9**0.5, 0.9**0.5)), []])

    page = Chapter("deep-x", "X", "s", (1,), (), (section,), "keep")(Context(True, None, print))
    text = page.parts[0].blocks[0]
    assert "{{" not in text and "$\\sqrt{\\beta}$" in text
    [formula] = [c for c in page.parts[0].checks if "(complex_rate)" in c.text]
    assert formula.ok


def test_a_citation_of_no_formula_is_refused_naming_it():
    with pytest.raises(KeyError, match="no formula 'nowhere'"):
        F.render("${{f:nowhere}}$")


@pytest.mark.parametrize(
    ("text", "rendered", "justified", "unreviewed"),
    [
        ("a rate ${{f:complex_rate}}$ and $\\eta = {{lr_tex}}$", 2, 0, []),
        ("the bound $\\eta \\sum_t 1/\\sqrt t \\le {{f:adagrad_travel}}$", 0, 0,
         ["\\eta \\sum_t 1/\\sqrt t \\le {{f:adagrad_travel}}"]),
        ("the index $g_i$ and the rate $\\eta/(1 - \\beta)$", 0, 1, ["\\eta/(1 - \\beta)"]),
        ("`$x + y$` is code, not a formula", 0, 0, []),
        # an expectation's name and a relation compute nothing around a slot; a factor
        # juxtaposed with it does (w = a·w* is in the table)
        ("$\\mathbb{E}[w^2] \\leftarrow {{f:moment_step}}$, $w = {{a1}}\\,w^*$", 1, 1, []),
        ("$\\mathbb{E}[w^2] = 2{{f:floor}}$", 0, 0, ["\\mathbb{E}[w^2] = 2{{f:floor}}"]),
        ("$\\mathbb{E}[w^2] = {{f:floor}}/2$", 0, 0, ["\\mathbb{E}[w^2] = {{f:floor}}/2"]),
    ],
)  # fmt: skip
def test_the_census_sorts_each_formula(text, rendered, justified, unreviewed):
    got = F.census([text])
    assert (got["rendered"], got["justified"], got["unreviewed"]) == (
        rendered,
        justified,
        unreviewed,
    )


def test_no_formula_of_the_chapters_is_unreviewed_beyond_the_ratchet():
    got = formula_census()
    assert len(got["unreviewed"]) <= UNREVIEWED, got["unreviewed"][:10]


def test_the_formulas_typed_before_are_rendered_not_typed():
    """Adam's sum and the effective rate η/(1 - β), typed before, are cited now: a mistake
    in them can only be made in the Formula, which its twin refuses."""
    unreviewed = set(formula_census()["unreviewed"]) | set(TYPED)
    # (1/(1 - β) stays typed in momentum's What to keep only, its phrase bound to the claim
    # keep_momentum_memory, whose opposite is a ✘: listed with that reason in _typed)
    for typed in ("\\eta/(1 - \\beta)", "(1 - \\tau)/(1 - \\beta)",
                  "m_t = (1 - \\beta_1) \\sum_{i=1}^{t} \\beta_1^{t-i} g_i,"):  # fmt: skip
        assert typed not in unreviewed
    assert "keep_momentum_memory" in TYPED["1/(1 - \\beta)"]


def test_a_formula_kept_as_notation_holds_no_arithmetic_and_every_entry_is_in_the_book():
    for tex, why in TYPED.items():
        if why == NOTATION:
            assert not F._typed_arithmetic(tex), tex
    assert formula_census()["held"] == set(TYPED)  # (no entry left behind by an edit)
