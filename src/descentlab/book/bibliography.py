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
    "record_mismatches",
    "year",
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
    Work("kingma2015", ("Kingma", "Ba"), 2015, "Adam: a method for stochastic optimization",
         "ICLR", names=("Adam",), preprint=2014, optimizer="adam", topics=("adam",)),
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
    the one the optimizer's record prints (:func:`record_mismatches`). Words before a year that
    name no work (``Computation 1992``) are not read as citations."""
    works, out = _by_name(), []
    paragraphs = re.split(r"\n\s*\n", text)
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
