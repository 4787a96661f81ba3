"""The book's chapters: the lectures' central topics at depth, one page each.

Each chapter is data (:class:`~descentlab.book.chapters._common.Chapter`): its settings, its
sections -- small functions that run descentlab for their traces and figures and fill their
prose's slots with the numbers they computed --, its summary. Every number the text states is
a chosen setting or a computed value checked against a second route (theory against a run, a
closed form against an algorithm), the last check of each chapter audits the prose for any
other, and ``make docs`` refuses a chapter with a ✘ (``scripts/book_marks.py``).

==========================  ==================================================================
module                      the topic
==========================  ==================================================================
``momentum``                heavy ball and Nesterov on quadratics, the optimal (η, β), noise
==========================  ==================================================================
"""

from __future__ import annotations

from descentlab.book.chapters import adaptive, batch, momentum, regularization, schedules
from descentlab.book.chapters._common import Chapter

__all__ = ["CHAPTERS"]

#: the chapters in the book's order
CHAPTERS: tuple[Chapter, ...] = (
    momentum.CHAPTER,
    adaptive.CHAPTER,
    schedules.CHAPTER,
    batch.CHAPTER,
    regularization.CHAPTER,
)
