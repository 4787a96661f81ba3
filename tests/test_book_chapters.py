"""The book's chapters (``descentlab.book.chapters``): a central topic at depth, its prose
audited so that no number in it is typed by hand, its checks read by ``make docs``
(``scripts/book_marks.py``), linked from the index and from the cards of its items.
tests/test_book_teaching.py computes every chapter and checks it."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
from _browser import CHROMIUM, opened

from descentlab.book.chapters import CHAPTERS
from descentlab.book.chapters._common import Chapter, Numbers, Prose, Twin, fmt
from descentlab.book.checks import close
from descentlab.book.model import Context
from descentlab.book.render.chapter import (
    ChapterPage,
    Part,
    Table,
    chapters_index_html,
    render_chapter,
)
from descentlab.book.render.formulas import mathml, split_math
from descentlab.book.render.live import Live, Probe
from descentlab.book.render.pages import Card, Check, Evidence, LecturePage, render_lecture

ROOT = Path(__file__).resolve().parents[1]


def _book_marks():
    spec = importlib.util.spec_from_file_location("book_marks", ROOT / "scripts" / "book_marks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("prose", "bad"),
    [
        ("β = 0.9 gives steps 10 times larger.", []),
        ("β = 0.9 gives steps 12 times larger.", ["12"]),
        ("`1/(1 - 0.7)` in code and items 24 and 99 are no stated numbers.", []),
        ("a loss of -0.25 and 3.5e-07", ["3.5e-07"]),
        # a number spelled out is typed by hand as surely as its digits
        ("the first step is ten times the rate", ["ten"]),
        ("filled to one thousandth, one over thirty-two", ["thousandth", "thirty"]),
        (
            "a hundred times flatter, shrunk a millionfold, three percent",
            ["hundred", "millionfold", "percent"],
        ),
        ("two consequences, the second half, twice as long, one rate", []),
    ],
)
def test_the_audit_finds_a_number_typed_by_hand(prose, bad):
    n = Numbers(0.9)
    n(1 / (1 - 0.9), 10.0, "1/(1 - β)")
    n(-0.25, -0.25, "a loss")
    assert n.unaccounted(prose) == bad


def test_a_chapter_with_a_typed_number_fails_its_audit():
    n = Numbers(2)
    page = ChapterPage(
        "T", "deep-t.html", "s", (1,), [Part("a", "A", [f"{n(0.5, 1 / 2, 'a half')} and 2."])]
    )
    assert n.check(page).ok
    page.parts[0].blocks[0] += " Also 7."
    check = n.check(page)
    assert not check.ok and "7" in check.measured


def test_numbers_are_stated_as_computed():
    assert (fmt(3), fmt(2.0), fmt(0.123456), fmt(1e-7)) == ("3", "2", "0.123", "1e-07")


def _page(status: str = "ok") -> ChapterPage:
    checks = [Check("the rate is ρ", status, "0.9", "0.9 ± 1 %")]
    parts = [Part("p1", "First", ["A paragraph about item 24.", Table(["η"], [[0.1]]), checks])]
    page = ChapterPage("Topic, in depth", "deep-topic.html", "Sum.", (24,), parts)
    page.item_hrefs = {24: "optimization-basics.html#i24"}
    return page


def test_a_failed_check_in_a_chapter_is_refused_by_make_docs(tmp_path):
    html = render_chapter(_page("fail"), "quick")
    assert _book_marks().failed_checks(html) == ["#p1: the rate is ρ (measured 0.9)"]
    assert _book_marks().failed_checks(render_chapter(_page(), "quick")) == []
    assert 'href="optimization-basics.html#i24"' in html  # the item's card, linked


def test_the_index_and_the_items_cards_link_the_chapter():
    index = chapters_index_html([_page()])
    assert 'href="deep-topic.html"' in index and "In depth" in index
    card = Card("i24", "item 24", "s", "claim", "t", "", "f", Evidence())
    lecture = LecturePage("L", "o", "s", "l.html", [card],
                          deeper={24: ("deep-topic.html", "Topic, in depth")})  # fmt: skip
    assert 'In depth: <a href="deep-topic.html">Topic, in depth</a>' in render_lecture(lecture, "q")


def test_the_central_topics_have_a_chapter():
    stems = [c.stem for c in CHAPTERS]
    for topic in ("momentum", "adaptive", "schedules", "batch", "regularization"):
        assert f"deep-{topic}" in stems


def test_chapters_compute_on_one_torch_thread_and_restore_the_count():
    """Their runs are many steps on tiny tensors: on two threads of a loaded machine the batch
    chapter's small network took 13 times the CPU time."""
    import torch

    seen = []

    def boom(ctx, n):
        seen.append(torch.get_num_threads())
        raise RuntimeError(ctx)

    chapter = Chapter("deep-x", "X", "s", (1,), (), (boom,), "keep")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError):
            chapter("x")
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("stated", "ok", "measured", "expected"),
    [
        # a closed form and its run agree: ✔, stated to three digits
        ((0.81818, 0.81819, 1e-4), True, "0.8182", "0.8182 ± 1e-04 (rel.)"),
        # a wrong formula behind the stated number: ✘, both in the digits that differ
        ((0.81818, 0.81918, 1e-4), False, "0.8182 (off by 0.0012 rel.)", "0.8192 ± 1e-04 (rel.)"),
        ((0.951234, 0.951231, 1e-7), False, "0.951234 (off by 3.2e-06 rel.)", "0.951231 "),
        # an absolute tolerance around zero, and a count stated exactly
        (Twin(3e-13, 0.0, 1e-12, 2, rel=False), True, "3.000e-13", "0 ± 1e-12"),
        (Twin(2e-12, 0.0, 1e-12, 2, rel=False), False, "2.000e-12 (off by 2e-12)", "0 ± 1e-12"),
        ((12, 12, 0), True, "12", "12 exactly"),
        ((12, 13, 0), False, "12", "13 exactly"),
        # a run that gave no number (diverged, never converged): ✘, not a failed build
        ((None, 13, 0), False, "None", "13"),
        ((12, None, 1e-9), False, "12", "None"),
    ],
)
def test_a_stated_number_is_checked_against_its_second_route(stated, ok, measured, expected):
    """A chapter's section states a number through its Prose; the chapter checks it against
    the same quantity computed another way, and a disagreement is a ✘ row showing the gap."""
    prose = Prose("The rate is {{r}} per step.", r="the closed form, against the run")

    def section(ctx, n):
        return Part("rate", "Rate", [prose.fill(n, r=stated), []])

    page = Chapter("deep-x", "X", "s", (1,), (), (section,), "keep")(Context(True, None, print))
    [check] = page.parts[0].checks
    assert check.text.startswith("stated ") and "the closed form, against the run" in check.text
    assert (check.ok, check.measured) == (ok, measured)
    assert check.expected.startswith(expected)
    assert page.counts()["fail"] == (not ok)


def test_a_failed_closeness_check_shows_both_values_to_the_digits_that_differ():
    row = close("ρ", 0.95123, 0.95119, 1e-6)
    assert (row.measured, row.expected) == ("0.95123 (off by 4e-05)", "0.95119 ± 1e-06")
    assert close("ρ", 0.95123, 0.95123, 1e-6).measured == "0.9512"


@pytest.mark.parametrize(
    ("tex", "display", "tags"),
    [
        (r"\rho = \frac{\sqrt{\kappa} - 1}{\sqrt{\kappa} + 1}", False, ["<mfrac>", "<msqrt>"]),
        (r"\theta_{t+1} = \theta_t - \eta \nabla L(\theta_t)", True, ["<msub>", "&#x02207;"]),
        (r"\sum_{i=1}^{n} x_i^2", False, ["&#x02211;", "<msubsup>"]),
    ],
)
def test_formulas_are_typeset_as_mathml_with_no_script(tex, display, tags):
    out = mathml(tex, display)
    assert out.startswith('<math xmlns="http://www.w3.org/1998/Math/MathML"')
    assert ('display="block"' in out) == display and all(t in out for t in tags)


@pytest.mark.parametrize(
    ("tex", "why"),
    [
        (r"\frac{a", "its braces do not pair"),  # latex2mathml would draw half a fraction
        (r"x^{2}}", "its braces do not pair"),
        (r"\arg\max_w f", r"unknown command \arg"),  # it would print "\arg" in the page
        (r"\frac{a}{", "its braces do not pair"),
        (r"x_", "MissingSuperScriptOrSubscriptError"),
    ],
)
def test_a_formula_that_cannot_be_typeset_is_refused_naming_it(tex, why):
    with pytest.raises(
        ValueError, match=re.escape(f"the formula ${tex}$ cannot be typeset: {why}")
    ):
        mathml(tex)


def test_a_chapter_page_typesets_its_displayed_derivation():
    text = "Unrolled:\n\n$$v_t = \\sum_{k<t} \\beta^k g_{t-k}$$\n\nso `$x$` stays code."
    assert [k for k, _ in split_math(text)] == ["text", "display", "text"]
    page = ChapterPage("T", "deep-t.html", "s", (1,), [Part("a", "A", [text])])
    html = render_chapter(page, "quick")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html
    assert "$$" not in html and "<code>$x$</code>" in html


def _moving_parts() -> list[Part]:
    """Each chapter's figure computed in the page (its "move" section: cheap, no training)."""
    parts = []
    for chapter in CHAPTERS:
        [section] = [s for s in chapter.sections if s.__name__ == "_move"]
        part = section(Context(True, None, print), Numbers(*chapter.settings))
        part.anchor = chapter.stem
        parts.append(part)
    return parts


def _live_page(path, parts):
    """A chapter page of ``parts`` written to ``path``, opened from a file."""
    path.write_text(render_chapter(ChapterPage("Live", path.name, "s", (1,), parts), "quick"),
                    "utf-8")  # fmt: skip
    return path


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium")
def test_each_chapters_figure_moves_in_the_browser_and_checks_itself_against_descentlab(
    tmp_path,
):
    """Opened from a file (no server): every chapter's live figure says ✔ against the values
    the build computed with descentlab, redraws when a slider moves, and a probe the page's
    function does not reproduce turns its line ✘."""
    parts = _moving_parts()
    assert len(parts) == len(CHAPTERS)
    wrong = next(b for b in parts[0].blocks if isinstance(b, Live))
    probe = wrong.probes[0]
    key = next(iter(probe.values))
    bad = Probe(probe.params, {**probe.values, key: probe.values[key] * 1.01 + 1e-3}, probe.tol)
    parts.append(Part("wrong", "Wrong", [Live(wrong.caption, wrong.sliders, wrong.js, [bad],
                                               wrong.against, wrong.constants)]))  # fmt: skip
    page_file = _live_page(tmp_path / "deep-live.html", parts)
    with opened(page_file) as (page, errors):
        figures = page.query_selector_all("figure.live")
        lines = [f.eval_on_selector(".selfcheck", "e => e.textContent") for f in figures]
        moved = []
        for fig in figures[:-1]:
            before = fig.eval_on_selector("svg", "e => e.innerHTML")
            fig.eval_on_selector(  # halfway to the farther end of its range
                "input[type=range]",
                "e => { var v = Number(e.value), lo = Number(e.min), hi = Number(e.max);"
                " e.value = String(v - lo > hi - v ? (lo + v) / 2 : (v + hi) / 2);"
                " e.dispatchEvent(new Event('input')); }",
            )
            moved.append(fig.eval_on_selector("svg", "e => e.innerHTML") != before)
    assert errors == []
    assert all(ln.startswith("✔ the page computes what") for ln in lines[:-1]), [
        ln for ln in lines if not ln.startswith("✔")
    ]
    assert lines[-1].startswith("✘ the page computes or draws other than") and key in lines[-1]
    assert all(moved), moved


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium")
def test_a_live_figure_whose_log_axis_is_dropped_says_so_in_the_browser(tmp_path):
    """Each chapter's live figure of a run with a log y axis, that axis made linear in its
    script: the page reads the scale against what it draws (a line falling geometrically, or
    lines over decades, on a linear axis) and turns its self-check ✘ naming it."""
    dropped = []
    for part in _moving_parts():
        for live in (b for b in part.blocks if isinstance(b, Live)):
            # (the likelihood chapter's loss over the location μ is no run: a log axis by
            # choice there, not by a geometric fall)
            if "log: true" in live.js and part.anchor != "deep-likelihood":
                js = live.js.replace("log: true", "log: false")
                dropped.append(Part(part.anchor, part.heading, [dataclasses.replace(live, js=js)]))
    assert len(dropped) >= 8
    page_file = _live_page(tmp_path / "deep-linear.html", dropped)
    with opened(page_file) as (page, _):
        lines = [f.eval_on_selector(".selfcheck", "e => e.textContent")
                 for f in page.query_selector_all("figure.live")]  # fmt: skip
    caught = [ln for ln in lines if ln.startswith("✘") and "on a linear axis" in ln]
    assert len(caught) == len(dropped), [ln for ln in lines if ln not in caught]
