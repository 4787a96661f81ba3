"""The book's citations come from one bibliography (descentlab.book.bibliography): each work's
authors, year and title once, every citation on a page rendered from it by key, and a
citation typed with another year or on another paper's claim is a ✘ on its page."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from descentlab import optim
from descentlab.book import bibliography as bib
from descentlab.book import facts
from descentlab.book.texts import l001, l002

BOOK = Path(bib.__file__).parent

#: typed citations left in the sources, each with its reason (the lecture's own words)
QUOTED = {
    ("lectures.py", "Bengio (2016)"): "the seed lecture's own title for its item 60, quoted",
}


def _strings(tree: ast.AST):
    """The string constants of ``tree`` that are not docstrings (a docstring's references
    are for the code's reader; every other string can reach a page)."""
    docs = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = n.body[0] if n.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            yield n.value


def test_no_citation_is_typed_outside_the_bibliography():
    """Every ``Author (Year)`` / ``Author et al., Year`` that can reach a page is rendered from
    the bibliography by key (:func:`bib.cite`, :func:`bib.cite_in`, :func:`bib.year`)."""
    typed = []
    for path in sorted(BOOK.rglob("*.py")):
        if path.name == "bibliography.py":
            continue
        for s in _strings(ast.parse(path.read_text("utf-8"))):
            typed += [(path.name, t) for t, _, _ in bib.citations(s)]
    assert [t for t in typed if t not in QUOTED] == []
    assert set(QUOTED) <= set(typed), "a justified exception that is gone: drop its row"


@pytest.mark.parametrize(
    ("text", "caught"),
    [
        (f"as {bib.cite('keskar2017')} found, large batches find sharp minima", False),
        ("as Keskar et al. (2016) found, large batches find sharp minima", True),
        ("large batches find sharper minima (Keskar et al., 2018)", True),
        ("Robbins and Monro (1951) asked which step sizes converge", False),
        ("Robbins and Monro (1952) asked which step sizes converge", True),
        ("Adam (2014 on arXiv) and Adam (2015 at ICLR)", False),
        ("Adam (2016) combines momentum and RMSProp", True),
        ("AdaGrad\n2011 scales each coordinate", False),
        ("AdaGrad\n2012 scales each coordinate", True),
        # another paper's name on the claim: the paragraph holds none of its topics
        (f"{bib.cite('santurkar2018')} found large batches find sharp minima", True),
        (f"{bib.cite('keskar2017')} found batch norm smooths the landscape", True),
        # every year is bound to the work a word of its sentence names, and is its year
        ("Neural Computation 1992 and ICLR 2015", True),  # (Bishop's Neural Computation: 1995)
        ("Kingma and Ba's Adam appeared at ICLR 2015", False),
        ("momentum 1964 builds a velocity", False),
        ("momentum 1965 builds a velocity", True),  # (Polyak: 1964)
        ("momentum 1983 builds a velocity", True),  # (another paper's year)
        ("Nesterov's 1984 method", True),
        ("Adam's record dates it by its 2015 conference paper", False),
        ("Adam's record dates it by its 2016 conference paper", True),
        ("the velocity, as Rumelhart 1986 showed", True),  # (a name the bibliography lacks)
        ("the heavy ball was known long ago (1965)", True),  # (a year bound to no work)
        ("a batch of 2048 examples, after 2000 steps, in 1024-dimensional space", False),
        ("After 2000 steps Adam's loss is 0.1; N = 2048, 1,964 and 0.2048", False),
        ("`torch.randn(2048)` and randperm(2048)", False),
    ],
)
def test_a_citation_not_its_works_is_refused(text, caught):
    assert bool(bib.citation_mismatches(text)) == caught, bib.citation_mismatches(text)


def test_each_optimizers_work_has_the_year_its_record_prints():
    """A page prints ``optim.record(name).year`` in a cell beside a citation of the paper:
    the two come from records that must agree (the cited version's year or its preprint's)."""
    assert bib.record_mismatches() == []
    moved = dataclasses.replace(bib.WORKS["nesterov1983"], year=1984)
    assert bib.record_mismatches([moved]) == [
        f"nesterov1983 is 1984, nesterov's record {optim.record('nesterov').year}"
    ]


def test_an_unknown_key_is_refused_with_one_line():
    with pytest.raises(KeyError, match="key='keskar2016' is no work of the bibliography"):
        bib.cite("keskar2016")


@pytest.mark.parametrize(
    ("module", "number", "old", "new"),
    [
        (l001, 39, "Nesterov\n1983", "Nesterov\n1984"),
        (l001, 39, "AdaGrad 2011", "AdaGrad 2012"),
        (l002, 71, bib.cite("keskar2017"), bib.cite("santurkar2018")),
        (l002, 87, "(Bishop, 1995)", "(Bishop, 1996)"),
        # a year after a method's name, not a citation's form: another year, another paper's
        # year, a year after a word the bibliography does not name
        (l001, 39, "momentum 1964", "momentum 1965"),
        (l001, 39, "momentum 1964", "momentum 1983"),
        (l001, 39, "its\n2015 conference", "its\n2016 conference"),
        (l001, 39, "momentum 1964, Nesterov", "momentum, Rumelhart 1986, Nesterov"),
    ],
)
def test_a_cards_citation_not_its_works_is_a_fail_on_its_page(module, number, old, new):
    """The check a card's explanation gets (:func:`facts.text_check`) reads its citations."""
    text = module.TEACH[number]["explain"]
    assert old in text
    assert facts.text_check(text).ok
    assert facts.text_check(text.replace(old, new)).failed
