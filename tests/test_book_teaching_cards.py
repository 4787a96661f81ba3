"""The cards' explanations bound to what their cells computed (:mod:`descentlab.book.card_claims`,
:func:`descentlab.book.teaching.result_checks`): each reading's sentence is on its card and
borne out by the values its cell printed; a direction word swapped on the page, the phrase
reworded, or the cell's values turned round is a ✘ on that card -- through
:func:`descentlab.book.build.card`, as the build makes it."""

from __future__ import annotations

import dataclasses

import pytest

from descentlab.book import build, card_claims, claims, teaching
from descentlab.book.cells import run_cell
from descentlab.book.lectures import ITEMS
from descentlab.book.model import Context
from descentlab.book.render.pages import Evidence

_BY_NUMBER = {it.number: it for it in ITEMS}
#: each cell run once for this module's tests, as the build runs a cell several cards share
_CELLS = Context(True, None, lambda _line: None)


def _run(code: str):
    return _CELLS.memo(("cell", code), lambda: run_cell(code))


def _rows(item, explain: str) -> list:
    """The reading rows of ``item``'s card built with ``explain`` (its cell run as the build
    runs it)."""
    card = build.card(dataclasses.replace(item, explain=explain), Evidence(), _CELLS)
    shows = {r.shows for r in card_claims.READINGS if r.item == item.number}
    return [c for c in card.evidence.checks if any(c.text.startswith(s) for s in shows)]


@pytest.mark.parametrize(
    "reading", card_claims.READINGS, ids=lambda r: f"item{r.item}-{r.said[:24]}"
)
def test_each_reading_is_on_its_card_borne_out_and_any_turn_is_a_cross(reading):
    item = _BY_NUMBER[reading.item]
    text = teaching.plain(item.explain)
    assert reading.said in text, (reading.item, reading.said)
    rows = _rows(item, text)
    assert [r.status for r in rows if reading.said in r.text] == ["ok"], rows
    # the direction words swapped (the census's turn), or the phrase reworded: ✘
    swapped = teaching.turned(reading.said)
    if swapped != reading.said:
        rows = _rows(item, text.replace(reading.said, swapped))
        assert any(r.status == "fail" and swapped in r.text for r in rows), rows
    rows = _rows(item, text.replace(reading.said, "the cell shows something else"))
    assert any(r.status == "fail" and "neither phrase" in r.text for r in rows), rows


@pytest.mark.parametrize(
    "reading", card_claims.READINGS, ids=lambda r: f"item{r.item}-{r.said[:24]}"
)
def test_a_cell_whose_values_turn_round_is_a_cross(reading, monkeypatch):
    """The page unchanged, the cell's two values exchanged (as a changed cell or library would
    print them): the row reads them and refuses the page's phrase."""
    item = _BY_NUMBER[reading.item]
    turned = dataclasses.replace(reading, values=lambda run: reading.values(run)[::-1])
    monkeypatch.setattr(card_claims, "READINGS", (turned,))
    rows = teaching.result_checks(item.number, item.explain, _run(item.code))
    assert [r.status for r in rows] == ["fail"], rows


def test_a_card_without_its_cell_or_with_other_output_is_a_cross():
    reading = next(r for r in card_claims.READINGS if r.item == 118)
    item = _BY_NUMBER[118]
    assert [r.status for r in teaching.result_checks(118, item.explain, None)] == ["fail"]
    other = run_cell('print("fair die: unknown")')
    rows = teaching.result_checks(118, item.explain, other)
    assert [r.status for r in rows] == ["fail"] and "unread" in rows[0].measured
    assert reading.said in teaching.plain(item.explain)


def test_every_card_sentence_with_a_computable_opposite_is_bound_or_listed():
    """The cards' explanations are held like definitions and "What to keep" lines: each
    sentence a swapped word turns into its contrary is bound to a run, read against its cell,
    or listed in ``claims.UNBACKED`` with why."""
    left = teaching.unbound(teaching.census(), ("card explanation",))
    assert not left, [(s.where, s.text) for s in left]


def test_each_card_row_of_unbacked_is_in_the_book_and_has_a_reason():
    found = teaching.census()
    for phrase, why in card_claims.UNBACKED.items():
        assert any(phrase in s.text for s in found), phrase
        assert len(why) > 20 and "not done" not in why, phrase
        assert claims.UNBACKED[phrase] == why


def test_the_card_claims_are_claims_with_their_runs_named():
    names = {c.name for c in claims.CLAIMS}
    for name, said, opposite, demo, home in card_claims.CLAIMS:
        assert name in names and said != opposite and home.startswith("item ")
        assert callable(demo) or callable(getattr(claims, demo, None)), demo


@pytest.mark.parametrize("name", [row[0] for row in card_claims.CLAIMS if callable(row[3])])
def test_each_new_demonstration_is_tiny(name):
    """Each run this module adds takes at most 0.1 s of CPU (warm: imports done)."""
    import time

    demo = next(row[3] for row in card_claims.CLAIMS if row[0] == name)
    demo()
    t0 = time.process_time()
    holds, measured = demo()
    assert holds, measured
    assert time.process_time() - t0 < 0.1


def _card_mutants() -> list:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import mutate_book

    return [m for m in mutate_book.MUTANTS if m.name.startswith("cards_")]


@pytest.mark.parametrize("mutant", _card_mutants(), ids=lambda m: m.name)
def test_each_card_mutant_turns_a_row_of_its_card_to_a_cross(mutant):
    """scripts/mutate_book.py's card mutants, without a build: the edit applied to the card's
    explanation (or its cell) in-process, the card made as the build makes it."""
    (number,) = mutant.items
    item = _BY_NUMBER[number]
    field = "explain" if mutant.old in item.explain else "code"
    assert getattr(item, field).count(mutant.old) == 1, mutant.name

    def failed(it) -> list[str]:
        card = build.card(it, Evidence())
        return [c.text for c in card.evidence.checks if c.status == "fail"]

    assert failed(item) == []
    mutated = dataclasses.replace(
        item, **{field: getattr(item, field).replace(mutant.old, mutant.new)}
    )
    assert failed(mutated), mutant.name
