"""The book's teaching sentences bound to the runs that show them
(:mod:`descentlab.book.claims`): each bound sentence is on a page, the page as written is ✔,
the sentence turned into its opposite is ✘ -- on a card (:func:`descentlab.book.build.card`)
and on a chapter's "What to keep" -- and a demonstration whose run is made to measure the
opposite is ✘ too."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from descentlab.book import build, claims, teaching
from descentlab.book.chapters import CHAPTERS
from descentlab.book.lectures import ITEMS, LECTURES
from descentlab.book.render.pages import Evidence


def _where(phrase: str) -> str:
    """Where ``phrase`` is said: ``item N`` (a card's explanation) or ``keep STEM``."""
    for item in ITEMS:
        if phrase in claims._plain(item.explain):
            return f"item {item.number}"
    for ch in CHAPTERS:
        if phrase in claims._plain(ch.keep):
            return f"keep {ch.stem}"
        for ex in ch.exercises:
            if phrase in claims._plain(ex.solution):
                return f"hint {ch.stem}"
    for lec in LECTURES:
        for ex in lec.exercises:
            if phrase in claims._plain(ex.solution):
                return f"lecture-hint {lec.seed}"
    return ""


def _chapter_prose(stem: str) -> str:
    """A chapter's sources as one text (its prose templates, its "What to keep")."""
    import inspect
    import sys

    ch = next(c for c in CHAPTERS if c.stem == stem)
    return inspect.getsource(sys.modules[ch.sections[0].__module__])


CARD_CLAIMS = [c for c in claims.CLAIMS if _where(c.said).startswith("item")]
KEEP_CLAIMS = [c for c in claims.CLAIMS if _where(c.said).startswith("keep")]
HINT_CLAIMS = [c for c in claims.CLAIMS if _where(c.said).startswith("hint")]


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: c.name)
def test_each_bound_sentence_is_on_a_page_and_its_run_bears_it_out(claim):
    where = _where(claim.said)
    if not where:  # a chapter's prose outside "What to keep" (the Nesterov section)
        text = " ".join(claims._plain(_chapter_prose(ch.stem)) for ch in CHAPTERS)
        assert claim.said in text.replace("\\", ""), claim.said
    holds, measured = claims._run(claim.name)
    assert holds, measured


def _card_statuses(item, explain: str) -> list[str]:
    flipped = dataclasses.replace(item, code="", explain=explain)
    card = build.card(flipped, Evidence())
    return [c.status for c in card.evidence.checks if "the page says" in c.text]


@pytest.mark.parametrize("claim", CARD_CLAIMS, ids=lambda c: c.name)
def test_a_card_that_says_the_opposite_is_a_cross(claim):
    number = int(_where(claim.said).split()[1])
    item = next(i for i in ITEMS if i.number == number)
    plain = claims._plain(item.explain)
    assert "fail" not in _card_statuses(item, plain)
    assert "ok" in _card_statuses(item, plain)
    assert "fail" in _card_statuses(item, plain.replace(claim.said, claim.opposite))


@pytest.mark.parametrize("claim", KEEP_CLAIMS, ids=lambda c: c.name)
def test_a_what_to_keep_line_turned_into_its_opposite_is_a_cross(claim):
    keep = claims._plain(next(ch.keep for ch in CHAPTERS if claim.said in claims._plain(ch.keep)))
    rows = {c.text: c.status for c in claims.claim_checks(keep)}
    assert rows and "fail" not in rows.values()
    flipped = claims.claim_checks(keep.replace(claim.said, claim.opposite))
    assert any(c.status == "fail" and claim.opposite in c.text for c in flipped)


@pytest.mark.parametrize("claim", HINT_CLAIMS, ids=lambda c: c.name)
def test_an_exercise_hint_that_gives_the_wrong_rate_is_a_cross(claim):
    stem = _where(claim.said).split()[1]
    ex = next(e for ch in CHAPTERS if ch.stem == stem for e in ch.exercises
              if claim.said in claims._plain(e.solution))  # fmt: skip
    hint = claims._plain(ex.solution)
    assert [c.status for c in claims.claim_checks(hint, [claim])] == ["ok"]
    flipped = claims.claim_checks(hint.replace(claim.said, claim.opposite), [claim])
    assert [c.status for c in flipped] == ["fail"]


def test_every_kind_has_three_bound_sentences():
    assert len(CARD_CLAIMS) >= 3 and len(KEEP_CLAIMS) >= 3 and len(HINT_CLAIMS) >= 3


def test_the_nesterov_section_turned_into_its_opposite_is_a_cross():
    claim = next(c for c in claims.CLAIMS if c.name == "nesterov_point")
    text = f"Nesterov's variant {claim.said}."
    assert [c.status for c in claims.claim_checks(text)] == ["ok"]
    flipped = text.replace(claim.said, claim.opposite)
    assert [c.status for c in claims.claim_checks(flipped)] == ["fail"]


from descentlab import losses  # noqa: E402

_NLL = losses.nll


def _gradient_at_the_iterate(w, grad, lr, a, steps):
    """Nesterov's loop with the look-ahead dropped: heavy ball."""
    v, out = np.zeros_like(w), [w.copy()]
    for _ in range(steps):
        v = a * v - lr * grad(w)
        w = w + v
        out.append(w.copy())
    return np.asarray(out)


@pytest.mark.parametrize(
    ("name", "target", "attr", "wrong"),
    [
        ("nesterov_point", "descentlab.book.reference", "lookahead_nesterov",
         _gradient_at_the_iterate),
        ("mean_median", "descentlab.losses", "nll", lambda family, **kw: _NLL(
            {"normal": "laplace", "laplace": "normal"}[family], **kw)),
    ],
)  # fmt: skip
def test_a_run_made_to_measure_the_opposite_turns_its_row_to_a_cross(
    monkeypatch, name, target, attr, wrong
):
    import importlib

    claim = next(c for c in claims.CLAIMS if c.name == name)
    monkeypatch.setattr(importlib.import_module(target), attr, wrong)
    claims._run.cache_clear()
    try:
        assert claims.claim_checks(claim.said)[0].status == "fail"
    finally:
        claims._run.cache_clear()


def test_the_share_of_teaching_sentences_backed_counts_bound_and_read_sentences():
    keep = "What to keep. A falls. B rises; C stays."
    a = claims.Claim("a", "A falls", "A rises", lambda: (True, ""))
    assert claims.backed_share([keep], [a]) == (1, 3)
    assert claims.backed_share([keep], [a], read=["C stays"]) == (2, 3)


def test_each_unbacked_sentence_is_still_in_the_book():
    said = " ".join(s.text for s in teaching.census())
    gone = [p for p in claims.UNBACKED if p not in said]
    assert not gone, gone


def test_the_build_prints_the_share_of_teaching_sentences_backed(monkeypatch):
    from descentlab.book.model import Context
    from descentlab.book.render.chapter import ChapterPage, Part

    text = "What to keep. AdaGrad's rate: its rate decays as 1/√t. A sentence nobody backs."

    class Fake:
        stem, keep = "deep-fake", text

        def __call__(self, ctx):
            return ChapterPage("Fake", "deep-fake.html", "", (), [Part("keep", "", [text, []])])

    monkeypatch.setattr(build, "CHAPTERS", [Fake()])
    lines: list[str] = []
    chapters = build._chapters(Context(True, None, lines.append), [], {})
    said = [line for line in lines if line.startswith("teaching sentences")]
    assert said and "1 of 2 backed" in said[0] and "(50 %)" in said[0], lines
    # the census of every kind, and the row that holds the bound kinds to it
    line = next(x for x in said if x.startswith("teaching sentences backed by"))
    for kind in teaching.KINDS:
        assert f"{kind} " in line, line
    rows = [c for c in chapters[-1].parts[-1].blocks[-1] if "listed as nothing can back" in c.text]
    assert len(rows) == 1 and rows[0].status == "ok", rows


def test_a_chapter_whose_what_to_keep_says_the_opposite_shows_a_cross():
    """The convexity chapter (the quickest to compute) built with its chords-and-tangents line
    turned round: its page holds the claim's ✘ row."""
    from descentlab.book.model import Context

    claim = next(c for c in claims.CLAIMS if c.name == "keep_chords_tangents")
    chapter = next(ch for ch in CHAPTERS if ch.stem == "deep-convexity")
    flipped = dataclasses.replace(chapter, keep=chapter.keep.replace(claim.said, claim.opposite))
    assert flipped.keep != chapter.keep
    page = flipped(Context(True, None, lambda _: None))
    rows = [c for b in page.parts[-1].blocks if isinstance(b, list) for c in b]
    assert any(c.status == "fail" and claim.opposite in c.text for c in rows)


# ---- the census of teaching sentences (book/teaching.py) and the claims' homes


def test_the_census_lists_every_kind_and_counts_each_backed():
    found = teaching.census()
    counts = teaching.shares(found)
    for kind in teaching.KINDS:
        assert counts[kind][2] > 0, kind
    assert counts["all"][2] == len(found) == sum(counts[k][2] for k in teaching.KINDS)
    # at least three sentences bound in each kind the issue names
    for kind in ("What to keep", "hint", "definition", "cell output", "card explanation"):
        assert counts[kind][0] >= 3, (kind, counts[kind])
    kinds = {s.text: s.kind for s in found}
    assert kinds["MSE is the Gaussian likelihood of item 7."] == "definition"
    assert next(k for t, k in kinds.items() if "the cell prints 0" in t) == "cell output"


def test_every_sentence_with_a_computable_opposite_is_bound_or_listed():
    """What to keep lines, definitions and what a cell prints: each sentence that a swapped
    word (``teaching.turned``) makes say the contrary is bound to a claim's run or listed in
    ``claims.UNBACKED`` with why."""
    left = teaching.unbound(teaching.census())
    assert not left, [(s.where, s.text) for s in left]


@pytest.mark.parametrize(
    ("kind", "where", "sentence"),
    [
        ("What to keep", "keep deep-fake", "Momentum always makes the loss fall faster."),
        ("definition", "item 1", "Variance is the distance of the average from the truth."),
        ("cell output", "item 2", "The cell prints the median of the losses."),
    ],
)
def test_a_new_sentence_of_any_kind_fails_the_build_row(kind, where, sentence):
    found = [*teaching.census(), teaching.Sentence(kind, where, sentence)]
    row = teaching.bound_check(found)
    assert row.status == "fail" and where in row.measured and "1 unbound" in row.measured
    # a sentence with no word to swap is held too: every kind is wholly bound
    plain = teaching.Sentence(kind, where, "The cell runs descentlab's optimizer.")
    assert teaching.bound_check([*teaching.census(), plain]).status == "fail"
    # what it lets through: the book's own 870 sentences, each backed or listed
    assert teaching.bound_check(teaching.census()).status == "ok"


def _home_text(claim: claims.Claim) -> str:
    """The text of the page that is ``claim``'s home, as its rows read it."""
    if claim.home.startswith("item "):
        number = int(claim.home[5:])
        item = next(i for i in ITEMS if i.number == number)
        return "\n\n".join([item.explain, *build._hints(number)])
    if claim.name == "nesterov_point":
        return f"Nesterov's variant {claim.said}."
    ch = next(c for c in CHAPTERS if c.stem == claim.home)
    return "\n\n".join([ch.keep, *(e.solution for e in ch.exercises)])


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: c.name)
def test_each_claim_is_at_its_home_and_any_rewording_there_is_a_cross(claim):
    """A claim's home holds its sentence; turned by the census's word swap, or reworded into
    neither phrase, the home's row is ✘ -- not only the one opposite the claim was told."""
    text = claims._plain(_home_text(claim))
    assert claim.said in text, (claim.home, claim.said)
    rows = claims.claim_checks(text, [claim], home=claim.home)
    assert [r.status for r in rows] == ["ok"]
    reworded = text.replace(claim.said, "the page says something else here")
    rows = claims.claim_checks(reworded, [claim], home=claim.home)
    assert [r.status for r in rows] == ["fail"] and "neither phrase" in rows[0].text
    swapped = teaching.turned(claim.said)
    if swapped != claim.said:
        rows = claims.claim_checks(text.replace(claim.said, swapped), [claim], home=claim.home)
        assert [r.status for r in rows] == ["fail"], swapped


def test_a_card_reworded_away_from_its_claim_is_a_cross():
    item = next(i for i in ITEMS if i.number == 117)
    text = claims._plain(item.explain).replace("MSE is the Gaussian likelihood", "MSE is a loss")
    assert "fail" in _card_statuses(item, text)


def _source_text(text: str) -> str:
    """A book source file's text as its pages say it: string literals joined, ``\\\\`` one
    backslash, plain."""
    import re

    return claims._plain(re.sub(r'"\s*\n\s*"', "", text).replace("\\\\", "\\"))


def _census_mutants():
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    import mutate_book

    return root, [m for m in mutate_book.MUTANTS if m.name.startswith("census_")]


@pytest.mark.parametrize("mutant", _census_mutants()[1], ids=lambda m: m.name)
def test_each_census_mutant_turns_its_homes_row_to_a_cross(mutant):
    """scripts/mutate_book.py's census mutants, without a build: the edited source file read as
    its page reads it holds a claim's row that is ✘, where the file as it is holds only ✔."""
    root, _ = _census_mutants()
    text = (root / "src" / "descentlab" / mutant.file).read_text(encoding="utf-8")
    homes = [f"item {n}" for n in mutant.items] + list(mutant.chapters)
    before, after = _source_text(text), _source_text(text.replace(mutant.old, mutant.new))
    assert before != after
    mine = [c for c in claims.CLAIMS if c.home in homes and c.said in before]
    assert mine, mutant.name
    assert all(c.check(before).status == "ok" for c in mine)
    failed = [c.name for c in mine if c.check(after).status == "fail"]
    assert failed, mutant.name


@pytest.mark.parametrize(
    "claim",
    [c for c in claims.CLAIMS if _where(c.said).startswith("lecture-hint")],
    ids=lambda c: c.name,
)
def test_a_lecture_hint_turned_into_its_opposite_is_a_cross_on_its_items_card(claim):
    """A lecture exercise's worked solution is read on the card of the item it practises."""
    number = int(claim.home.split()[1])
    item = next(i for i in ITEMS if i.number == number)
    assert [c.status for c in build.card(dataclasses.replace(item, code=""), Evidence())
            .evidence.checks if f'says "{claim.said}"' in c.text] == ["ok"]  # fmt: skip
    (hint,) = [h for h in build._hints(number) if claim.said in claims._plain(h)]
    flipped = claims._plain(hint).replace(claim.said, claim.opposite)
    rows = claims.claim_checks(flipped, [claim], home=claim.home)
    assert [r.status for r in rows] == ["fail"]


#: the sentences listed as nothing can back: at most this many (backed + listed = the census)
LISTED_AT_MOST = 108


def test_the_listed_sentences_are_few_and_every_listing_names_a_sentence_still_unbacked():
    """Every phrase of claims.UNBACKED is in a census sentence that nothing backs (a listing
    whose sentence was reworded away, or is backed now, is stale), and the listed sentences
    are at most LISTED_AT_MOST: a sentence a claim could back is backed, not listed."""
    found = teaching.census()
    backed, listed = teaching._phrases()
    unbacked = [s for s in found if not any(p in s.text for p in backed)]
    stale = [k for k in claims.UNBACKED if not any(k in s.text for s in unbacked)]
    assert not stale, stale
    held = [s for s in unbacked if any(p in s.text for p in listed)]
    assert len(held) <= LISTED_AT_MOST, len(held)
    assert len(unbacked) == len(held)  # none unbound
