"""The census of the book's teaching sentences, by kind, and which of them are backed.

Every sentence that teaches is listed by :func:`census` with its kind and where it is:

==================  ========================================================================
kind                where it is read
==================  ========================================================================
What to keep        a chapter's "What to keep" box (``Chapter.keep``)
hint                an exercise's worked solution, a lecture's or a chapter's
definition          a card's explanation sentence that defines a term ("Bias is how far ...")
cell output         a card's explanation sentence about what its cell prints or finds
card explanation    every other sentence of a card's explanation
==================  ========================================================================

A sentence is *backed* when it holds the phrase of a :class:`~descentlab.book.claims.Claim`
(its instrumented run shows it, its opposite is a ✘), a phrase a chapter's check row reads
(:data:`~descentlab.book.texts._words.CHECKED_BY`) or, for a hint, what its exercise's own
check row reads: a phrase the exercise's code binds to what its run computes (the code's
``said`` dict: the row is ✘ when the worked solution no longer says it or the run computes
the contrary, :func:`~descentlab.book.cells.said_words`), a number the row holds to a value
the code computed (:func:`~descentlab.book.cells.reads_a_number`), a formula rendered from the
code's or an object of the code the row finds in it, or what the row reads of its typed words
(:func:`~descentlab.book.cells.hint_reads`: a sentence about the code, a formula at the code's
``symbols``, the misconception named by its value); *listed* when it holds a phrase of
:data:`~descentlab.book.claims.UNBACKED` (nothing can back it, and why).

A card's sentence that types an update rule (``a ← βa + g``) the card's formula check
evaluates and accepts against the rule the card states is backed by that check
(:func:`~descentlab.book.facts.rule_mismatches`): a sign or an exponent changed is a ✘ on the card.
A card's sentence about what its own cell computes ("the larger β, the slower to turn") is
backed by a *reading* (:data:`~descentlab.book.card_claims.READINGS`): :func:`result_checks`
reads two of the values the cell printed and chooses, from them, the phrase or the phrase with
its direction words swapped -- the card's row is ✘ when the page says the other, or neither.

A card's sentence that types a formula its card's check row evaluates
(:func:`~descentlab.book.facts.text_check`) is backed by that row (:func:`_card_formulas`): a
formula that states its value, an equation whose sides are compared as functions with
derivatives taken (```f_x = 6(x-2)``` of a typed ```f```:
:func:`~descentlab.book.facts.identity_mismatches`), a year held to the bibliography -- an
exponent, a sign or a year changed is a ✘ on the card. So does a typed update rule
(```w ← w - η∇L(w)```) that its formula row reads and accepts
(:func:`~descentlab.book.facts.rule_mismatches`, :func:`_typed_rules`), and a typed formula a
claim evaluates as typed against an independent computation
(:func:`~descentlab.book.typed.typed`).

A card's sentence that states a relation in its own notation (an identity, an approximation
at its numbers, a bound, a number worked out) is backed by a typed relation
(:data:`~descentlab.book.card_formulas.FORMULAS`): the card's row evaluates the formula the
page types, and is ✘ when its sides disagree or the page no longer states it.

A sentence has a *computable opposite* when :func:`turned` changes it: one of the word pairs of
:data:`OPPOSITES` (bias and variance, mean and median, falls and grows, sharp and flat, ...)
swapped gives the sentence that says the contrary (a reading chooses between the two). Every
sentence of every kind, with a computable opposite or not, must be backed or listed
(:func:`unbound`): a new one fails the build's row (:func:`bound_check`)
until a claim, a reading, a typed formula or a check row binds it or :data:`UNBACKED` says
why nothing can.

Example:
    >>> turned("bagging reduces variance, boosting reduces bias")
    'bagging reduces bias, boosting reduces variance'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from descentlab.book.checks import ck
from descentlab.book.facts import SOLUTION_SLOT
from descentlab.book.render.pages import Check

if TYPE_CHECKING:
    from descentlab.book.card_claims import Ran

__all__ = [
    "KINDS",
    "OPPOSITES",
    "Sentence",
    "bound_check",
    "census",
    "census_line",
    "result_checks",
    "shares",
    "turned",
    "unbound",
]

KINDS: tuple[str, ...] = ("What to keep", "hint", "definition", "cell output", "card explanation")

#: the word pairs whose swap turns a teaching sentence into its opposite
OPPOSITES: tuple[tuple[str, str], ...] = (
    ("bias", "variance"), ("mean", "median"), ("Gaussian", "Laplace"),
    ("light-tailed", "heavy-tailed"),
    ("falls", "rises"), ("shrinks", "grows"), ("decays", "grows"), ("sharp", "flat"),
    ("small", "large"), ("smaller", "larger"), ("above", "below"), ("faster", "slower"),
    ("lower", "higher"), ("increases", "decreases"), ("convex", "concave"),
    ("unbiased", "biased"), ("underfits", "overfits"), ("more", "less"),
)  # fmt: skip
_SWAP = {a.lower(): b for a, b in OPPOSITES} | {b.lower(): a for a, b in OPPOSITES}
_WORD = re.compile(
    r"(?<![\w-])(" + "|".join(sorted(_SWAP, key=len, reverse=True)) + r")(?![\w-])",
    re.IGNORECASE,
)

_SENTENCE = re.compile(r"(?<=[.;!?])\s+")
_DEFINITION = re.compile(
    r"^(?!(?:It|That|This|These|There|Then|So|The cell|Each|Every|Here|For|In|On|With|If|When"
    r"|At|A model|Its|What)\b)[A-Z][^,:;]{0,40}? (?:is|are|means|measures|names) "
    r"(?:how|what|the|a|an)\b|\b(?:is called|are called|we call|is defined as|stands for)\b"
)
_CELL = re.compile(r"\b(?:the cell|cell's|prints?|printed)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Sentence:
    """A teaching sentence: its kind (one of :data:`KINDS`), where it is (``item 65``,
    ``keep deep-batch``, ``hint deep-adaptive``, ``hint 002``) and its text (plain)."""

    kind: str
    where: str
    text: str


def plain(text: str) -> str:
    """``text`` without Markdown's emphasis and code marks, its whitespace one space."""
    return " ".join(text.replace("*", "").replace("`", "").split())


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (plain; split after ``.``, ``;``, ``!``, ``?``)."""
    return [s for s in _SENTENCE.split(plain(text)) if s]


def turned(text: str) -> str:
    """``text`` with every word of an :data:`OPPOSITES` pair swapped for the other (a capital
    kept)."""

    def swap(m: re.Match[str]) -> str:
        word, other = m.group(1), _SWAP[m.group(1).lower()]
        return other[0].upper() + other[1:] if word[0].isupper() else other

    return _WORD.sub(swap, text)


def _card_kind(sentence: str) -> str:
    if _DEFINITION.search(sentence):
        return "definition"
    if _CELL.search(sentence):
        return "cell output"
    return "card explanation"


def census() -> list[Sentence]:
    """Every teaching sentence of the book: the chapters' "What to keep" lines and exercise
    solutions, the lectures' exercise solutions and the cards' explanations, each by kind."""
    from descentlab.book.chapters import CHAPTERS
    from descentlab.book.lectures import ITEMS, LECTURES

    out = []
    for ch in CHAPTERS:
        body = plain(ch.keep).removeprefix("What to keep.")
        out += [Sentence("What to keep", f"keep {ch.stem}", s) for s in sentences(body)]
        for ex in ch.exercises:
            out += [Sentence("hint", f"hint {ch.stem}", s) for s in sentences(ex.solution)]
    for lec in LECTURES:
        for ex in lec.exercises:
            out += [Sentence("hint", f"hint {lec.seed}", s) for s in sentences(ex.solution)]
    for it in ITEMS:
        out += [Sentence(_card_kind(s), f"item {it.number}", s) for s in sentences(it.explain)]
    return out


def _phrases() -> tuple[list[str], list[str]]:
    """The phrases that back a sentence (the claims' and the check rows') and those that list
    it as nothing can back."""
    from descentlab.book.card_claims import READINGS
    from descentlab.book.card_formulas import FORMULAS
    from descentlab.book.claims import CLAIMS, UNBACKED
    from descentlab.book.texts._words import CHECKED_BY

    read = [p for r in READINGS for p in (r.said, turned(r.said))]  # the values choose one
    backing = [plain(c.said) for c in CLAIMS] + read + list(CHECKED_BY) + _exercise_words()
    backing += [f.said for f in FORMULAS]  # a typed relation evaluated on its card
    return backing + _typed_rules() + _card_formulas(), list(UNBACKED)


def _card_formulas() -> list[str]:
    """The cards' sentences whose typed formulas their card's check row evaluates
    (:func:`~descentlab.book.facts.text_check`, as :func:`~descentlab.book.build.card` makes
    it): a formula that states its value (evaluated at the numbers the card binds), an
    equation whose sides are compared as functions, derivatives taken
    (:func:`~descentlab.book.facts.identity_mismatches`), or a year held to the bibliography
    (its typed update rules: :func:`_typed_rules`)."""
    from descentlab.book.bibliography import dated
    from descentlab.book.facts import identity_mismatches
    from descentlab.book.lectures import ITEMS

    out = []
    for it in ITEMS:
        for raw in _SENTENCE.split(" ".join(it.explain.split())):
            if (
                evaluated_formulas(raw, it.explain)
                or identity_mismatches(raw, it.explain)[0]
                or dated(raw)
            ):
                out.append(plain(raw))
    return out


def _typed_rules() -> list[str]:
    """The update rules the cards type (```w ← w - η∇L(w)```) that the card's formula row
    reads and accepts: each one evaluated against the rule its card states
    (:func:`~descentlab.book.facts.rule_mismatches`, :data:`~descentlab.book.texts._facts.STATED`),
    so a sign, an exponent or another rule in its place is a ✘ on the card and the sentence no
    longer holds the phrase that bound it."""
    from descentlab.book.facts import rule_mismatches
    from descentlab.book.lectures import ITEMS
    from descentlab.book.texts._facts import RULES, stated_rules

    accepted: list[str] = []
    for it in ITEMS:
        rule_mismatches(it.explain, stated_rules(it.number), RULES, accepted)
    return [plain(rule) for rule in accepted]


def _exercise_words() -> list[str]:
    """What the exercises' own check rows read of their hints: the phrases their code binds to
    what its run computes (its ``said`` dict, :func:`~descentlab.book.cells.stated_words`) and
    the sentences that state a number the row holds to a value the code computed
    (:func:`~descentlab.book.cells.reads_a_number`) or show a formula rendered from the code's
    (a slot ``{{lhs=name}}``, :data:`~descentlab.book.facts.SOLUTION_SLOT`) or name the code's
    objects the row finds in it (:func:`~descentlab.book.cells.code_objects`), what the row
    reads of it (:func:`~descentlab.book.cells.hint_reads`), and the formulas that state a
    value the row evaluates (:func:`evaluated_formulas`)."""
    from descentlab.book.cells import code_objects, hint_reads, reads_a_number, stated_words
    from descentlab.book.chapters import CHAPTERS
    from descentlab.book.lectures import LECTURES

    found = [ex for ch in CHAPTERS for ex in ch.exercises]
    found += [ex for lec in LECTURES for ex in lec.exercises]
    words = [plain(w) for ex in found for w in stated_words(ex.code)]
    words += [f for ex in found if ex.numeric for f in evaluated_formulas(ex.solution, ex.question)]
    return words + [
        s for ex in found for s in sentences(ex.solution)
        if reads_a_number(ex, s) or hint_reads(ex, s)
        or (ex.numeric and (SOLUTION_SLOT.search(s) or code_objects(s)))
    ]  # fmt: skip


def evaluated_formulas(solution: str, question: str = "") -> list[str]:
    """The formulas of a worked solution (plain, as :func:`census` reads its sentences) that
    state a value its exercise's row evaluates at the numbers the question and the solution bind
    (:func:`~descentlab.book.facts.formula_mismatches`: ``0.5 log(25/9) = …`` with an operand
    changed is ✘); a formula with a symbol left free is not evaluated, and not one of them.

    Example:
        >>> evaluated_formulas("`1 - 0.1·2 = 0.8`, so `q = (κ-1)/(κ+1)`.")
        ['1 - 0.1·2 = 0.8']
    """
    from descentlab.book.facts import bindings, evaluate, statements

    bound = bindings(f"{question}\n{solution}")
    return list(dict.fromkeys(
        plain(formula) for formula, lhs, *_ in statements(solution)
        if evaluate(lhs, bound) is not None
    ))  # fmt: skip


def shares(found: Iterable[Sentence]) -> dict[str, tuple[int, int, int]]:
    """Per kind of :data:`KINDS` and in ``"all"``: (backed, listed, all)."""
    backing, listing = _phrases()
    out = {k: [0, 0, 0] for k in (*KINDS, "all")}
    for s in found:
        b = any(p in s.text for p in backing)
        li = not b and any(p in s.text for p in listing)
        for k in (s.kind, "all"):
            out[k][0] += b
            out[k][1] += li
            out[k][2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def unbound(found: Iterable[Sentence], kinds: Iterable[str] = KINDS) -> list[Sentence]:
    """The sentences of ``kinds`` (every kind by default) that no claim, reading or check row
    backs and :data:`~descentlab.book.claims.UNBACKED` does not list."""
    backing, listing = _phrases()
    phrases, kinds = backing + listing, set(kinds)
    return [s for s in found if s.kind in kinds and not any(p in s.text for p in phrases)]


def census_line(counts: Mapping[str, tuple[int, int, int]]) -> str:
    """The build's line: backed of all per kind and in total, and the listed ones."""
    parts = [f"{k} {b}/{n}" for k, (b, _li, n) in counts.items() if k != "all"]
    b, li, n = counts["all"]
    return (
        f"teaching sentences backed by a run or a check row: {b} of {n} ({100 * b / max(n, 1):.0f}"
        f" %; {', '.join(parts)}), {li} listed as nothing can back "
        "(descentlab.book.claims.UNBACKED)"
    )


def bound_check(found: Iterable[Sentence]) -> Check:
    """The row that holds the book to :func:`unbound`: ✘ naming each teaching sentence, of
    every kind, that nothing binds or lists."""
    left = unbound(found)
    named = "; ".join(f'{s.where}: "{s.text[:70]}"' for s in left[:6])
    return ck(
        "every teaching sentence (What to keep, hints, definitions, what a cell prints, cards' "
        "explanations) is bound to a run, a reading or a check row, or listed as nothing can "
        "back",
        not left, f"{len(left)} unbound" + (f": {named}" if left else ""), "0 unbound",
    )  # fmt: skip


def result_checks(number: int, text: str, run: Ran | None) -> list[Check]:
    """The rows that read card ``number``'s sentences about what its cell computes
    (:data:`~descentlab.book.card_claims.READINGS`) against the values the cell printed,
    ``run``: each reading's two values choose its phrase (``a > b``) or the phrase with every
    direction word swapped (:func:`turned`); the row is ✘ when ``text`` holds the other one,
    or neither, or the cell did not run."""
    from descentlab.book.card_claims import READINGS

    page = plain(text)
    rows = []
    for r in (r for r in READINGS if r.item == number):
        other = turned(r.said)
        try:
            if run is None:
                raise ValueError("the card has no cell")
            a, b = r.values(run)
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            rows.append(ck(r.shows, False, f"unread: {exc}", f'the page says "{r.said}"'))
            continue
        right, wrong = (r.said, other) if a > b else (other, r.said)
        if other == r.said:  # no direction word to swap: the values must bear the phrase out
            right, wrong = (r.said, "") if a > b else ("", r.said)
        ok = bool(right) and right in page and not (wrong and wrong in page)
        says = wrong if wrong and wrong in page else right if right in page else "neither phrase"
        rows.append(
            ck(f'{r.shows} (the page says "{says}")', ok, f"{a:.4g} against {b:.4g}",
               f'the page says "{right}"' if right else f"{r.said}: a > b")
        )  # fmt: skip
    return rows
