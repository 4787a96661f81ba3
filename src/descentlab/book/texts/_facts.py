"""The results more than one page of the book states, each stated here once: a page cites one
as ``{{fact:name}}`` and shows its formula and value rendered from the expression
(:class:`~descentlab.book.facts.Fact`), never retyped."""

from __future__ import annotations

from descentlab.book.facts import Fact

__all__ = ["FACTS"]

FACTS: dict[str, Fact] = {
    # gradient descent on x² - 4x + 6 from 4 at rate 0.2: item 42's card and its exercise
    "parabola_factor": Fact("1 - 0.2*2"),
    "parabola_error_10": Fact("2*0.6**10"),
}
