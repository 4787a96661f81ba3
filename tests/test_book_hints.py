"""The exercises' worked solutions (hints) bound to what their exercises compute: a numeric
exercise's code binds its hint's words in its ``said`` dict (a phrase, the truth its run
computes of it), an open one's sentences are claims of ``book/hint_claims.py``; a hint turned
to its opposite is ✘ on its page, and every hint sentence with a computable opposite is bound
or listed."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from descentlab.book import hint_claims, teaching
from descentlab.book.cells import (
    code_objects,
    exercise_check,
    reads_a_number,
    run_cell,
    said_words,
    stated_words,
    unchecked_numbers,
)
from descentlab.book.chapters import CHAPTERS
from descentlab.book.claims import CLAIMS
from descentlab.book.lectures import ITEMS, LECTURES
from descentlab.book.model import Exercise

_EXERCISES = [ex for ch in CHAPTERS for ex in ch.exercises] + [
    ex for lec in LECTURES for ex in lec.exercises
]
_BINDING = [ex for ex in _EXERCISES if stated_words(ex.code)]


@functools.cache
def _run(code: str):
    return run_cell(code)


def test_hints_are_a_bound_kind_and_every_hint_sentence_is_bound_or_listed():
    left = teaching.unbound(teaching.census(), ("hint",))
    assert not left, [f"{s.where}: {s.text}" for s in left]
    assert teaching.bound_check(teaching.census()).status == "ok"


def test_the_exercises_bind_their_hints_words_and_each_run_bears_them_out():
    assert len(_BINDING) >= 20
    for ex in _BINDING:
        run = _run(ex.code)
        assert run.ok, run.error
        assert set(run.namespace["said"]) == set(stated_words(ex.code))
        assert said_words(ex, run.namespace) == [], ex.question
        assert exercise_check(ex, run).status == "ok", ex.question


@pytest.mark.parametrize("i", range(len(_BINDING)), ids=lambda i: _BINDING[i].question[:30])
def test_a_hint_turned_or_reworded_is_its_exercises_failed_check(i):
    ex = _BINDING[i]
    run = _run(ex.code)
    solution = teaching.plain(ex.solution)
    for phrase in stated_words(ex.code):
        for changed in {teaching.turned(phrase), "(reworded)"} - {phrase}:
            wrong = dataclasses.replace(ex, solution=solution.replace(phrase, changed))
            row = exercise_check(wrong, run)
            assert row.status == "fail", (phrase, changed)
            assert "every word the worked solution teaches" in row.text
            assert phrase in row.measured


@pytest.mark.parametrize(
    ("said", "problem"),
    [
        ({"grows like 1/t": True}, ""),
        ({"grows like 1/t": False}, "the run computes the contrary"),
        ({"falls like 1/t": True}, "no longer says"),
        ("grows", "not a dict"),
    ],
)  # fmt: skip
def test_said_words_reads_the_phrase_against_the_solution_and_the_run(said, problem):
    ex = Exercise("q?", "The rate `grows like 1/t`, here.", "answer = 1")
    found = said_words(ex, {"said": said})
    assert (not found) if not problem else problem in found[0]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ('said = {"a b": 1 < 2, "c": True}', ("a b", "c")),
        ('x = 1\nsaid = {\n    "a"\n    " b": x > 0,\n}', ("a b",)),
        ('said = dict(a=True)', ()),
        ("said = {", ()),
        ('other = {"a": True}', ()),
    ],
)  # fmt: skip
def test_stated_words_reads_the_said_dict_without_running_it(code, words):
    assert stated_words(code) == words


_HINT_CLAIMS = [c for c in CLAIMS if c.name in {row[0] for row in hint_claims.CLAIMS}]


@pytest.mark.parametrize("claim", _HINT_CLAIMS, ids=lambda c: c.name)
def test_an_open_hint_turned_to_its_opposite_is_a_failed_row_on_its_card(claim):
    from descentlab.book.build import _hints

    number = int(claim.home.removeprefix("item "))
    item = next(it for it in ITEMS if it.number == number)
    page = teaching.plain("\n\n".join([item.explain, *_hints(number)]))
    assert claim.check(page).status == "ok"
    # the contrary; every word swapped (where a word of teaching.OPPOSITES is in it)
    for wrong in {claim.opposite, teaching.turned(claim.said)} - {claim.said}:
        assert claim.check(page.replace(claim.said, wrong)).status == "fail", wrong


@pytest.mark.parametrize(
    ("question", "code", "sentence", "read"),
    [
        ("What is 2 + 2?", "answer = 2 + 2", "It is 4.", True),  # computed: the row reads it
        ("What is 2 + 2?", "answer = 2 + 2", "Add 2 and 2.", False),  # the question's numbers
        ("What is 2 + 2?", "answer = 2 + 2\nfour = 4", "It is 4.", False),  # the code gives 4
        ("What is 2 + 2?", 'answer = 2 + 2\nsaid = {"is 4": True}', "It is 4.", True),
        ("What is 2 + 2?", "answer = 2 + 2", "See item 4.", False),  # a reference
        ("What is 2 + 2?", "", "It is 4.", False),  # an open exercise has no row
    ],
)  # fmt: skip
def test_a_hint_sentence_is_read_by_its_row_when_it_states_a_number_the_code_must_compute(
    question, code, sentence, read
):
    assert reads_a_number(Exercise(question, sentence, code), sentence) is read


def test_a_number_of_a_hint_is_not_given_by_quoting_it_in_the_said_dict():
    ex = Exercise("What is 2 + 2?", "It is 5.", 'answer = 2 + 2\nsaid = {"is 5": True}')
    assert unchecked_numbers(ex, {"answer": 4}) == ["5"]


@pytest.mark.parametrize(
    ("sentence", "objects"),
    [
        ("The code runs descentlab's SGD.", ["SGD"]),
        ("The code asks torch's kl_divergence and torch's Conv2d.", ["kl_divergence", "Conv2d"]),
        ("The code draws them as descentlab's epoch does.", []),  # no object of the code
        ("Use descentlab's SGD.", []),  # not about the code
    ],
)  # fmt: skip
def test_code_objects_are_the_identifiers_a_sentence_about_the_code_names(sentence, objects):
    assert code_objects(sentence) == objects


def test_a_hint_naming_an_object_its_code_does_not_use_is_a_failed_check():
    ex = next(e for e in _EXERCISES if "The code runs descentlab's Adagrad" in e.solution)
    run = _run(ex.code)
    assert exercise_check(ex, run).status == "ok"
    wrong = dataclasses.replace(
        ex, solution=ex.solution.replace("descentlab's Adagrad", "descentlab's Adam")
    )
    row = exercise_check(wrong, run)
    assert row.status == "fail" and "the code uses Adam" in row.measured


# the chapters' exercise hints: what a worked solution types, read against its code

_TYPED_CODE = (
    "lr, beta, g0 = 0.1, 0.9, 1.0\n"
    "w1 = 1 - lr * (g0 + beta * g0)\n"
    "answer = measured = w1\n"
    "tol = 1e-12\n"
    "misconception = 1 - lr * g0\n"
    'symbols = {"η": lr, "β": beta, "g₀": g0, "w₁": w1}\n'
    "import torch\n"
)


@pytest.mark.parametrize(
    ("sentence", "problem"),
    [
        # a typed formula at the code's numbers: a relation's sides, an expression's value
        ("Step one goes to `w₁ = 1 - η(g₀ + βg₀)`.", ""),
        ("Step one goes to `w₁ = 1 - η(g₀ - βg₀)`.", "its sides are 0.81 against 0.99"),
        ("Step one goes to `w₁ = 1 - η²(g₀ + βg₀)`.", "its sides are"),
        ("It lands at `1 - η(g₀ + βg₀)`.", ""),
        ("It lands at `1 + η(g₀ + βg₀)`.", "no value the code computed"),
        ("A letter the code does not bind: `z² - (1 + β)z + β`.", ""),  # not read
        # the misconception named by its value
        ("A reader who forgets the buffer would answer 0.9.", ""),
        ("A reader who forgets the buffer would answer 0.1.", "names 0.1 as the misconception"),
        ("A reader who forgets the buffer would answer `1 - ηg₀`.", ""),
        ("A reader who forgets the buffer would answer `1 - βg₀`.", "as the misconception"),
        # a sentence about the code: the libraries it names, the numbers it states
        ("The code asks torch.", ""),
        ("The code asks numpy.", "the code uses numpy; it does not"),
        ("The code draws them as descentlab's epoch does.", ""),  # a comparison, not a use
        ("The code takes 12 steps.", "uses 12; it neither types nor computes it"),
        ("The code takes a million steps.", "uses 1e+06"),
        ("The code multiplies by 0.9.", ""),  # 0.9 a literal of the code
    ],
)  # fmt: skip
def test_typed_mismatches_reads_formulas_misconceptions_and_sentences_about_the_code(
    sentence, problem
):
    from descentlab.book.cells import hint_reads, typed_mismatches

    ex = Exercise("Where is w after one step?", sentence, _TYPED_CODE)
    found = typed_mismatches(ex, run_cell(ex.code).namespace)
    assert (found == []) if not problem else (problem in " ".join(found)), found
    if problem:  # a sentence the row refuses is one it reads: the census credits it
        assert hint_reads(ex, teaching.plain(sentence))


def test_the_chapters_hints_are_backed_or_listed_and_at_most_a_tenth_listed():
    chapters = [s for s in teaching.census() if s.where.startswith("hint deep-")]
    backing, listing = teaching._phrases()
    backed = [s for s in chapters if any(p in s.text for p in backing)]
    listed = [s for s in chapters if s not in backed and any(p in s.text for p in listing)]
    assert len(backed) + len(listed) == len(chapters), [
        s.text for s in chapters if s not in backed and s not in listed
    ]
    assert len(listed) <= len(chapters) // 10, [s.text for s in listed]
