"""Words from numbers: every sentence of the book with a comparative or directional word and
two numbers -- in the chapters, the lectures' cards and the exercises -- has its word chosen
from the numbers as they are computed, or read by a relation shape that checks it or by a
check row of its chapter (``texts._words.CHECKED_BY``, ``checks.said``), or is
listed in ``texts._words.NOT_RELATIONS`` with the reason it relates no two of its numbers.
The census reads the chapters' prose templates (each slot a number, each slot filled with
:func:`~descentlab.book.facts.word` a chosen word), so that it costs no chapter build."""

from __future__ import annotations

import inspect
import re
import sys
from collections import Counter

import pytest

from descentlab.book import checks, facts
from descentlab.book.chapters import CHAPTERS
from descentlab.book.chapters._common import Prose
from descentlab.book.lectures import LECTURES
from descentlab.book.texts import _words
from descentlab.book.texts._words import NOT_RELATIONS

#: the sentences a chapter's check row reads (``checks.said``)
CHECKED_BY: dict[str, str] = getattr(_words, "CHECKED_BY", {})
#: the check row that reads one of them on the page
said = getattr(checks, "said", None)

#: a slot of a chapter's prose template
_SLOT = re.compile(r"\{\{(\w+)\}\}")


#: a slot filled with ``word(a, b, "up")`` in a chapter's source (arguments one call deep)
_CHOSEN = re.compile(r'(\w+)=word\((?:[^()]|\([^()]*\))*?,\s*"([a-z ]+)"\)')


def _chosen_slots(module) -> dict[str, str]:
    """The slots of ``module``'s templates filled with ``word(a, b, up)``: slot -> ``up``."""
    return dict(_CHOSEN.findall(inspect.getsource(module)))


def _chapter_texts() -> list[tuple[str, str]]:
    """Each chapter's prose as the census reads it: a chosen word's slot as a ``{{word:}}``
    slot, every other slot as a number."""
    out = []
    for chapter in CHAPTERS:
        module = sys.modules[chapter.sections[0].__module__]
        chosen = _chosen_slots(module)

        def slot(m: re.Match[str], chosen=chosen) -> str:
            return f"{{{{word:2,1,{chosen[m[1]]}}}}}" if m[1] in chosen else "7.5"

        texts = [v.text for v in vars(module).values() if isinstance(v, Prose)]
        texts += [chapter.summary, chapter.keep]
        texts += [f"{ex.question}\n\n{ex.solution}" for ex in chapter.exercises]
        out += [(chapter.stem, _SLOT.sub(slot, t)) for t in texts]
    return out


def _lecture_texts() -> list[tuple[str, str]]:
    """Each card's item and explanation and each exercise's question and solution, as built."""
    out = []
    for lec in LECTURES:
        out += [(f"item {it.number}", f"{it.text}\n\n{it.explain}") for it in lec.items]
        out += [(f"lecture {lec.seed}", f"{ex.question}\n\n{ex.solution}") for ex in lec.exercises]
    return out


def _census() -> list[tuple[str, str, str]]:
    return [
        (where, sentence, how)
        for where, text in _chapter_texts() + _lecture_texts()
        for sentence, how in facts.census(text, NOT_RELATIONS, CHECKED_BY)
    ]


@pytest.fixture(scope="module")
def book_census():
    return _census()


def test_every_sentence_that_relates_numbers_is_chosen_read_or_listed(book_census):
    unread = [(where, s) for where, s, how in book_census if how == "unread"]
    counts = Counter(how for _, _, how in book_census)
    assert not unread, f"{len(unread)} unread ({dict(counts)}): " + "\n".join(map(str, unread))


def test_each_listed_sentence_is_still_in_the_book(book_census):
    said = [s for _, s, how in book_census if how == "listed"]
    stale = [phrase for phrase in NOT_RELATIONS if not any(phrase in s for s in said)]
    assert not stale, stale


# the sentences that relate numbers the chapter computes, once listed as relating none: each
# now read by a check row of its chapter that tests it on the computed values
NOW_CHECKED = [
    "its loss never below",
    "takes smaller steps at the bottom",
    "ends below the floor of the constant rate",
    "below the edge it stays in the sharp well",
    "the two never differ by more than",
    "The gap between test and train errors shrinks all along",
    "the stochastic error levels off at it",
    "The test error falls, then rises (item",
    "That is below σ², which no model beats",
]
#: ... and the one whose word its chapter now chooses from the computed bound (``facts.word``)
NOW_CHOSEN = ["and larger than η when β₂ is closer to 1"]


@pytest.mark.parametrize("phrase", NOW_CHOSEN)
def test_a_word_the_numbers_give_is_chosen_not_listed(phrase):
    assert phrase not in NOT_RELATIONS


@pytest.mark.parametrize("phrase", NOW_CHECKED)
def test_a_sentence_relating_computed_numbers_is_checked_not_listed(phrase):
    assert phrase not in NOT_RELATIONS
    assert phrase in CHECKED_BY


def _said_phrases(source: str) -> set[str]:
    """The phrases ``said(text, "...", ...)`` reads in a module's source."""
    return set(re.findall(r'\bsaid\(\s*\w+,\s*"((?:[^"\\]|\\.)*)"', source))


def test_each_checked_sentence_is_read_by_a_check_row_of_its_chapter():
    """Each phrase of ``CHECKED_BY`` is on a chapter's prose and that chapter's module makes a
    ``said`` row of it; each ``said`` row reads a phrase of ``CHECKED_BY``."""
    unread, where = [], {}
    for chapter in CHAPTERS:
        module = sys.modules[chapter.sections[0].__module__]
        prose = " ".join(" ".join(v.text.split()) for v in vars(module).values()
                         if isinstance(v, Prose))  # fmt: skip
        rows = _said_phrases(inspect.getsource(module))
        assert rows <= set(CHECKED_BY), sorted(rows - set(CHECKED_BY))
        for phrase in CHECKED_BY:
            if phrase in prose:
                where[phrase] = chapter.stem
                if phrase not in rows:
                    unread.append((chapter.stem, phrase))
    assert not unread, unread
    assert set(where) == set(CHECKED_BY), sorted(set(CHECKED_BY) - set(where))


@pytest.mark.parametrize(
    ("text", "holds", "status"),
    [
        ("The gap between test and train errors shrinks all along; it", True, "ok"),
        ("The gap between test and train\nerrors shrinks all along.", True, "ok"),
        ("The gap between test and train errors grows all along; it", True, "fail"),
        ("The gap between test and train errors shrinks all along; it", False, "fail"),
    ],
)
def test_a_said_row_fails_where_the_page_or_the_numbers_do_not_say_it(text, holds, status):
    phrase = "The gap between test and train errors shrinks all along"
    assert said(text, phrase, holds, "1, 0.5", "decreasing").status == status


def test_a_said_row_names_a_phrase_of_the_registry():
    with pytest.raises(KeyError):
        said("it falls", "it falls", True, "1", "1")


@pytest.mark.parametrize(
    ("text", "how"),
    [
        ("It falls from 2 to 1.", "read"),
        ("It shrinks {{word:2,1,faster}} than 1.5 at 3.", "chosen"),
        ("Item 3 shows it below, 4 steps on.", "unread"),
        ("`x = 2` falls below `3`.", None),  # numbers in code: no sentence of the census
        ("A 2 kg cat, 3 years old.", None),  # no direction word
    ],
)
def test_the_census_sorts_a_sentence_by_how_its_word_is_held(text, how):
    assert [h for _, h in facts.census(text)] == ([how] if how else [])


def test_the_census_counts_a_sentence_a_check_row_reads_as_read():
    text = "It stays below 2, never under 1. It stays below 2, never under 3."
    assert [h for _, h in facts.census(text, {}, {"never under 1": "a check"})] == [
        "read",
        "unread",
    ]


# the shapes the chapters use: each with the right sentences it lets through and the wrong
# ones it refuses
RIGHT_SHAPES = [
    "As λ grows the training error rises monotonically, 0.0421 to 0.37, because",
    "the loss falls, 0.9 to 0.1, over the run",
    "the norm falling from 0.0913 to 7.9e-14, and its minimum",
    "is still above 1e-08 after 3000 steps: its gradient norm is 1.6e-07.",
    "is still below 0.5 after 20 steps: its loss is 0.25.",
    "the training error is 0.0421, below the noise's variance σ² = 0.09, and",
    "to 0.037 at degree 12, below the noise's variance $\\sigma^2$ = 0.09, which",
    "ends at 0.31, still above the floor = 0.25 it started from",
]
WRONG_SHAPES = [
    "As λ grows the training error falls monotonically, 0.0421 to 0.37, because",
    "the loss rises, 0.9 to 0.1, over the run",
    "the norm rising from 0.0913 to 7.9e-14, and its minimum",
    "is still below 1e-08 after 3000 steps: its gradient norm is 1.6e-07.",
    "is still above 0.5 after 20 steps: its loss is 0.25.",
    "the training error is 0.0421, above the noise's variance σ² = 0.09, and",
    "to 0.037 at degree 12, above the noise's variance $\\sigma^2$ = 0.09, which",
    "ends at 0.31, still below the floor = 0.25 it started from",
]


@pytest.mark.parametrize("text", RIGHT_SHAPES)
def test_a_direction_its_numbers_give_passes(text):
    assert facts.census(text)[0][1] == "read"
    assert facts.relation_words(text) == []


@pytest.mark.parametrize("text", WRONG_SHAPES)
def test_a_direction_its_numbers_contradict_is_refused(text):
    assert len(facts.relation_words(text)) == 1
