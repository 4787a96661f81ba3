"""The book's chapters: the lectures' central topics at depth, one page each.

Each chapter is a function ``chapter(ctx) -> ChapterPage`` (:mod:`descentlab.book.render.chapter`)
that runs descentlab for its traces and figures and writes its prose around the numbers it
computed: every number the text states is a chosen setting or a computed value (the last
check of each chapter audits the prose, :class:`~descentlab.book.chapters._common.Numbers`),
and every claim is checked beside it, so ``make docs`` refuses a chapter whose numbers
contradict its text (``scripts/book_marks.py``).

==========================  ==================================================================
module                      the topic
==========================  ==================================================================
``momentum``                heavy ball and Nesterov on quadratics, the optimal (η, β)
``adaptive``                AdaGrad → RMSProp → Adam: scale invariance, decay, bias
                            correction, noise, the ravine
``schedules``               the noise floor, Robbins–Monro, ``a/t``'s recursion, the usual
                            schedules side by side
``batch``                   the batch gradient's variance, the floor set by η/B, the linear
                            scaling rule and its edge
``regularization``          L2 as a decay in SGD, ridge's shrinkage, bias–variance in λ,
                            Adam's L2 against AdamW
==========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable

from descentlab.book.chapters import adaptive, batch, momentum, regularization, schedules
from descentlab.book.chapters._common import one_thread
from descentlab.book.model import Context
from descentlab.book.render.chapter import ChapterPage

__all__ = ["CHAPTERS"]

#: the chapters in the book's order: (file name's stem, the function that makes it)
#: (each computed on one torch thread: :func:`~descentlab.book.chapters._common.one_thread`)
CHAPTERS: tuple[tuple[str, Callable[[Context], ChapterPage]], ...] = (
    ("deep-momentum", one_thread(momentum.chapter)),
    ("deep-adaptive", one_thread(adaptive.chapter)),
    ("deep-schedules", one_thread(schedules.chapter)),
    ("deep-batch", one_thread(batch.chapter)),
    ("deep-regularization", one_thread(regularization.chapter)),
)
