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
``adaptive``                AdaGrad → RMSProp → Adam: scale invariance, decay, bias
                            correction, noise, rare features, spikes, the ravine
``schedules``               the noise floor, Robbins–Monro, ``a/t``, the usual schedules
                            (descentlab's own, each against its formula), warm-up
``batch``                   the batch gradient's variance, the floor set by η/B, the linear
                            scaling rule and its edge, sharp minima, the noise scale
``regularization``          L2 as a decay in SGD, ridge's shrinkage, bias–variance in λ,
                            Adam's L2 against AdamW
``mle``                     losses from likelihood: MSE, L1, cross-entropy, entropy and KL
``descent_modes``           full-batch, stochastic and mini-batch descent, per epoch, exactly
``methodology``             the generalization gap, cross-validation, bias–variance exactly,
                            bootstrap, bagging, boosting, early stopping
``conv_arithmetic``         convolution as cross-correlation, output sizes, parameters,
                            AlexNet, the 1×1 bottleneck, the receptive field
``convexity``               convex sets and functions, Jensen, the first- and second-order
                            conditions, local = global, the condition number's toll
``newton``                  Newton's step and quadratic convergence, its failures, diagonal
                            preconditioning and the adaptive methods, line search, L-BFGS
``compare``                 every optimizer on one loop and one dataset, curves over seeds,
                            rankings only where every seed agrees; a mini-batch's cost timed
==========================  ==================================================================
"""

from __future__ import annotations

import inspect
from typing import Any

from descentlab.book.chapters import (
    adaptive,
    batch,
    compare,
    conv_arithmetic,
    convexity,
    descent_modes,
    methodology,
    mle,
    momentum,
    newton,
    regularization,
    schedules,
)
from descentlab.book.chapters._common import Chapter, string_literals
from descentlab.book.chapters._formulas import census

__all__ = ["CHAPTERS", "formula_census"]

#: the chapters in the book's order
CHAPTERS: tuple[Chapter, ...] = (
    momentum.CHAPTER,
    adaptive.CHAPTER,
    schedules.CHAPTER,
    batch.CHAPTER,
    regularization.CHAPTER,
    mle.CHAPTER,
    descent_modes.CHAPTER,
    methodology.CHAPTER,
    conv_arithmetic.CHAPTER,
    convexity.CHAPTER,
    newton.CHAPTER,
    compare.CHAPTER,
)


def formula_census() -> dict[str, Any]:
    """:func:`~descentlab.book.chapters._formulas.census` of every chapter's string literals
    (its prose, captions and "What to keep"; docstrings left out)."""
    return census(
        text
        for module in (adaptive, batch, compare, conv_arithmetic, convexity, descent_modes,
                       methodology, mle, momentum, newton, regularization, schedules)
        for text in string_literals(inspect.getsource(module))
    )  # fmt: skip
