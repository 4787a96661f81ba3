"""The book's bibliography: each work it cites, its authors, year and title once.

A page cites a work by key (:func:`cite`, :func:`cite_in`); nothing typed ``Keskar et al.
(2017)`` reaches a page. :func:`citation_mismatches` reads a page's text for citations --
an author (or a work's short name, ``Adam``) beside a year -- and names each whose year is
not its work's, or whose names are no work of the bibliography; a work of an optimizer
(``optimizer``) must have the year descentlab's optimizer record prints
(:func:`record_mismatches`).

Example:
    >>> cite("keskar2017"), cite_in("breiman1996")
    ('Keskar et al. (2017)', '(Breiman, 1996)')
    >>> citation_mismatches("as Keskar et al. (2016) found")
    ['Keskar et al. (2016): Keskar is 2017 (keskar2017)']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "WORKS",
    "Work",
    "citation_mismatches",
    "citations",
    "cite",
    "cite_in",
    "dated",
    "record_mismatches",
    "unbound_years",
    "year",
    "years",
]


@dataclass(frozen=True)
class Work:
    """One cited work.

    Attributes:
        key: how pages cite it (``"keskar2017"``).
        authors: the authors' surnames, in the paper's order.
        year: the year of the version cited (a conference paper's, not its preprint's).
        title: the title.
        venue: where it appeared.
        names: other names pages give it beside a year (a method's: ``"Adam"``).
        preprint: the preprint's year where it differs (Adam: 2014 on arXiv, ICLR 2015).
        optimizer: the descentlab optimizer it introduced, whose record prints its year.
        topics: words one of which the paragraph that cites it holds (any case): what it is
            cited for (``"sharp"`` for Keskar et al.); a paragraph about something else cites
            another paper.
    """

    key: str
    authors: tuple[str, ...]
    year: int
    title: str
    venue: str
    names: tuple[str, ...] = ()
    preprint: int | None = None
    optimizer: str = ""
    topics: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """The authors as a citation names them: one, two joined by ``&``, or the first et al."""
        a = self.authors
        return a[0] if len(a) == 1 else f"{a[0]} & {a[1]}" if len(a) == 2 else f"{a[0]} et al."

    @property
    def years(self) -> tuple[int, ...]:
        return (self.year,) if self.preprint is None else (self.year, self.preprint)


# fmt: off
WORKS: dict[str, Work] = {w.key: w for w in (
    Work("cauchy1847", ("Cauchy",), 1847, "Méthode générale pour la résolution des systèmes "
         "d'équations simultanées", "Comptes rendus de l'Académie des sciences",
         topics=("gradient",)),
    Work("robbins1951", ("Robbins", "Monro"), 1951, "A stochastic approximation method",
         "Annals of Mathematical Statistics", optimizer="sgd", topics=("step", "stochastic")),
    Work("polyak1964", ("Polyak",), 1964, "Some methods of speeding up the convergence of "
         "iteration methods", "USSR Computational Mathematics and Mathematical Physics",
         optimizer="momentum", topics=("momentum", "velocity", "heavy ball")),
    Work("nesterov1983", ("Nesterov",), 1983, "A method for solving the convex programming "
         "problem with convergence rate O(1/k²)", "Soviet Mathematics Doklady",
         optimizer="nesterov", topics=("nesterov", "momentum", "velocity")),
    Work("bishop1995", ("Bishop",), 1995, "Training with noise is equivalent to Tikhonov "
         "regularization", "Neural Computation", topics=("noise",)),
    Work("breiman1996", ("Breiman",), 1996, "Bagging predictors", "Machine Learning",
         topics=("bagging",)),
    Work("duchi2011", ("Duchi", "Hazan", "Singer"), 2011, "Adaptive subgradient methods for "
         "online learning and stochastic optimization", "JMLR", names=("AdaGrad",),
         optimizer="adagrad", topics=("adagrad",)),
    Work("tieleman2012", ("Tieleman", "Hinton"), 2012, "Lecture 6.5, rmsprop", "COURSERA: "
         "Neural Networks for Machine Learning", names=("RMSProp",), optimizer="rmsprop",
         topics=("rmsprop",)),
    Work("srivastava2014", ("Srivastava", "Hinton", "Krizhevsky", "Sutskever", "Salakhutdinov"),
         2014, "Dropout: a simple way to prevent neural networks from overfitting", "JMLR",
         topics=("dropout",)),
    Work("kingma2015", ("Kingma", "Ba"), 2015, "Adam: a method for stochastic optimization",
         "ICLR", names=("Adam",), preprint=2014, optimizer="adam", topics=("adam",)),
    Work("ioffe2015", ("Ioffe", "Szegedy"), 2015, "Batch normalization: accelerating deep "
         "network training by reducing internal covariate shift", "ICML",
         topics=("batch normalization",)),
    Work("goodfellow2016", ("Goodfellow", "Bengio", "Courville"), 2016, "Deep Learning",
         "MIT Press", topics=("deep learning",)),
    Work("lessard2016", ("Lessard", "Recht", "Packard"), 2016, "Analysis and design of "
         "optimization algorithms via integral quadratic constraints", "SIAM J. Optimization",
         topics=("lessard", "heavy ball")),
    Work("keskar2017", ("Keskar", "Mudigere", "Nocedal", "Smelyanskiy", "Tang"), 2017,
         "On large-batch training for deep learning: generalization gap and sharp minima",
         "ICLR", topics=("sharp",)),
    Work("dinh2017", ("Dinh", "Pascanu", "Bengio", "Bengio"), 2017, "Sharp minima can "
         "generalize for deep nets", "ICML", topics=("reparametri",)),
    Work("santurkar2018", ("Santurkar", "Tsipras", "Ilyas", "Madry"), 2018, "How does batch "
         "normalization help optimization?", "NeurIPS", topics=("normaliz", "covariate")),
    Work("li2018", ("Li", "Xu", "Taylor", "Studer", "Goldstein"), 2018, "Visualizing the loss "
         "landscape of neural nets", "NeurIPS", topics=("landscape", "direction")),
    Work("loshchilov2019", ("Loshchilov", "Hutter"), 2019, "Decoupled weight decay "
         "regularization", "ICLR", topics=("decay", "adamw")),
)}
# fmt: on


def _work(key: str) -> Work:
    try:
        return WORKS[key]
    except KeyError:
        known = sorted(WORKS)
        raise KeyError(f"key={key!r} is no work of the bibliography; known: {known}") from None


def cite(key: str) -> str:
    """``key``'s narrative citation: ``Keskar et al. (2017)``."""
    w = _work(key)
    return f"{w.short} ({w.year})"


def cite_in(key: str) -> str:
    """``key``'s parenthetical citation: ``(Keskar et al., 2017)``."""
    w = _work(key)
    return f"({w.short}, {w.year})"


def year(key: str, preprint: bool = False) -> int:
    """``key``'s year (its preprint's with ``preprint``, where it has one)."""
    w = _work(key)
    return w.preprint if preprint and w.preprint is not None else w.year


_SURNAME = r"[A-Z][A-Za-zà-ÿ]+"
#: a citation typed: ``Keskar et al. (2017)``, ``(Keskar et al., 2017)``, ``Robbins and Monro
#: (1951)``, ``Robbins & Monro, 1951``, ``Bishop 1995``, ``Adam (2014``
CITATION = re.compile(
    rf"\b(?P<names>{_SURNAME}(?:(?:,?\s+(?:and|&)\s+|,\s+){_SURNAME})*(?:\s+et\s+al\.)?)"
    r",?\s+\(?(?P<year>1[6-9]\d\d|20\d\d)\b\)?"
)


def citations(text: str) -> Iterator[tuple[str, str, int]]:
    """Each citation ``text`` types: ``(as typed, first name, year)``."""
    for m in CITATION.finditer(text):
        first = re.split(r",|\s+(?:and|&|et)\s", m["names"])[0].strip()
        typed = " ".join(m.group(0).split())
        yield typed if "(" in typed else typed.rstrip(")"), first, int(m["year"])


def _by_name() -> dict[str, list[Work]]:
    out: dict[str, list[Work]] = {}
    for w in WORKS.values():
        for n in (w.authors[0], *w.names):
            out.setdefault(n, []).append(w)
    return out


def citation_mismatches(text: str) -> list[str]:
    """The citations of ``text`` that are not their work's: a year that is no year of a work
    of the bibliography by that first author (or of that name), ``Keskar et al. (2016)`` where
    the bibliography has Keskar et al. 2017; a work cited in a paragraph that holds none of
    its topics (another paper's name on the claim); a work of an optimizer whose year is not
    the one the optimizer's record prints (:func:`record_mismatches`); any other year that is
    not the year of the work the word before it names (:func:`unbound_years`: ``momentum
    1965``, ``Rumelhart 1986``)."""
    works, paragraphs = _by_name(), re.split(r"\n\s*\n", text)
    # every other year is bound to the work the word before it names (a citation of a first
    # author or a name of the bibliography is read below, with its topics)
    read = {m.start("year") for m in CITATION.finditer(text)
            if re.split(r",|\s+(?:and|&|et)\s", m["names"])[0].strip() in works}  # fmt: skip
    out = unbound_years(text, skip=read)
    for typed, first, y in citations(text):
        mine = works.get(first)
        if not mine:
            continue
        hit = [w for w in mine if y in w.years]
        if not hit:
            known = ", ".join(f"{w.year} ({w.key})" for w in mine)
            out.append(f"{typed}: {first} is {known}")
            continue
        where = next((p for p in paragraphs if typed in " ".join(p.split())), text).lower()
        for w in hit:
            if w.topics and not any(t in where for t in w.topics):
                out.append(f"{typed}: a paragraph about none of {w.key}'s topics {w.topics}")
        out += [f"{typed}: {m}" for m in record_mismatches(hit)]
    return out


#: a year in prose: 1600–2099 standing alone (no digit, decimal point, slash, hyphen or
#: thousands' comma beside it: 1,964 and 0.2048 and 1964/1983's second half are no years)
_YEAR = re.compile(r"(?<![\w.,/^×*-])(1[6-9]\d\d|20\d\d)(?![\w.*×^%-]|,\d)")
#: the word right before a number, and what may stand between them: ``Polyak (1964)``,
#: ``(Polyak, 1964)``, ``Keskar et al. (2017)``, ``Cauchy's (1847)``, ``its 2015``
_BEFORE = re.compile(
    r"(?P<word>[A-Za-zà-ÿ][\w-]*)(?P<own>'s|’s)?(?:\s+et\s+al\.)?(?P<gap>[\s(,]*)$"
)
#: a counted noun after a number makes it a quantity (``2000 steps``, ``2048 examples``)
_COUNTED = re.compile(r"\s+[a-z]{3,}(?<!s)s\b|\s*[-–]")
#: the words after which a number is a date, not a count: ``in 1964``, ``its 2015 paper``
_DATING = frozenset({"in", "since", "its", "his", "her", "their"})
#: a sentence's start (a year is bound to a name of its own sentence)
_SENTENCE = re.compile(r"(?:(?<!\bal)[.!?]\s+(?=[A-Z])|\n\s*\n)")


@functools.cache
def _namers() -> dict[str, list[Work]]:
    """Every word that names a work, lower-cased: each author's surname, the work's other
    names (``Adam``), its optimizer's (``momentum``, ``sgd``) and its venue's last word
    (``ICLR``, ``Computation``)."""
    out: dict[str, list[Work]] = {}
    for w in WORKS.values():
        venue = w.venue.split(":")[0].split()
        for n in {*w.authors, *w.names, *([w.optimizer] if w.optimizer else []), venue[-1]}:
            if w not in out.setdefault(n.lower(), []):
                out[n.lower()].append(w)
    return out


def _dated(text: str, m: re.Match[str], namers: dict[str, list[Work]]) -> bool:
    """Whether the number ``m`` of ``text`` is a year: right after a word that names a work;
    otherwise, unless a counted noun follows it (``2000 steps``), after a name (capitalized,
    not a sentence's first word), a possessive or a dating word (``in``, ``its``), or alone in
    its own parentheses."""
    head = text[: m.start()]
    before = _BEFORE.search(head[-60:])
    if before is not None and before["word"].lower() in namers:
        return True  # ``momentum 1965 builds``: a work's name dates what follows
    if _COUNTED.match(text, m.end()):
        return False
    if before is None:  # (no word before: a year only in parentheses of its own, ``(1965)``)
        return bool(re.search(r"(?:^|\s)\(\s*$", head[-4:])) and text[m.end() : m.end() + 1] == ")"
    word, gap = before["word"], before["gap"]
    if re.fullmatch(r"\s+\(\s*", gap) and text[m.end() : m.end() + 1] == ")":
        return True  # ``it (1965)``
    if word.lower() in namers or before["own"] or word.lower() in _DATING:
        return True
    start = len(head) - len(head[-60:]) + before.start()
    first = start == 0 or bool(re.search(r"(?:[.!?:]|\n\s*\n|^)\s*$", head[:start]))
    return word[0].isupper() and not first


def _years(text: str) -> Iterator[tuple[int, str, str, int]]:
    """:func:`years`, each with where its year stands in ``text``: the word it is bound to is
    the last word of its sentence before it that names a work (none: ``""``)."""
    namers = _namers()
    for m in _YEAR.finditer(text):
        if not _dated(text, m, namers):
            continue
        sentence = _SENTENCE.split(text[max(0, m.start() - 300) : m.start()])[-1]
        names = [w for w in re.findall(r"[A-Za-zà-ÿ][\w-]*", sentence) if w.lower() in namers]
        word = names[-1] if names else ""
        typed = " ".join(text[max(0, m.start() - 40) : m.end()].split()[-3:])
        yield m.start(), typed, word, int(m[1])


def years(text: str) -> Iterator[tuple[str, str, int]]:
    """Each year ``text`` states, with the word before it: ``(as typed, word, year)``. A
    number of 1600–2099 is a year where the word before it names a work of the bibliography
    (an author, a method's name, an optimizer's) or is capitalized (a name: ``Rumelhart
    1986``), or where it stands in parentheses of its own (``it (1964)``); after any other word
    it is a quantity (``batch 2048``, ``of 2000``), and so is a number alone or in a run of
    numbers."""
    for _, typed, word, y in _years(text):
        yield typed, word, y


def dated(text: str) -> int:
    """How many years ``text`` states: its citations' and every other year it reads."""
    return len({m.start("year") for m in CITATION.finditer(text)} | {a for a, *_ in _years(text)})


def unbound_years(text: str, skip: Iterable[int] = ()) -> list[str]:
    """The years of ``text`` (but those standing at ``skip``) that are no year of the work the
    word before them names: a year after a name the bibliography does not hold (``Rumelhart
    1986``) or after none, and a year after a work's name that is not its year (``momentum
    1965``: Polyak's heavy ball is 1964). The bibliography is the one place a year can come
    from."""
    namers, out, skip = _namers(), [], set(skip)
    for at, typed, word, y in _years(text):
        mine = namers.get(word.lower(), [])
        if at in skip:
            continue
        if not mine:
            out.append(f"{typed}: the year {y} names no work of the bibliography")
        elif not any(y in w.years for w in mine):
            known = ", ".join(f"{w.year} ({w.key})" for w in mine)
            out.append(f"{typed}: {word} is {known}")
    return out


def record_mismatches(works: Iterable[Work] | None = None) -> list[str]:
    """The works (all where None) of an optimizer whose year is not the one descentlab's
    optimizer record prints (``optim.record(name).year``): a page that cites one beside a cell
    that prints the other would contradict itself."""
    from descentlab import optim

    return [
        f"{w.key} is {w.year}, {w.optimizer}'s record {optim.record(w.optimizer).year}"
        for w in (WORKS.values() if works is None else works)
        if w.optimizer and optim.record(w.optimizer).year not in w.years
    ]
