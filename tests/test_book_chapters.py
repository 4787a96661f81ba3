"""The book's chapters (``descentlab.book.chapters``): a central topic at depth, its prose
audited so that no number in it is typed by hand, its checks read by ``make docs``
(``scripts/book_marks.py``), linked from the index and from the cards of its items.
tests/test_book_teaching.py computes every chapter and checks it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from descentlab.book.chapters import CHAPTERS
from descentlab.book.chapters._common import Chapter, Numbers, fmt
from descentlab.book.render.chapter import (
    ChapterPage,
    Part,
    Table,
    chapters_index_html,
    render_chapter,
)
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
