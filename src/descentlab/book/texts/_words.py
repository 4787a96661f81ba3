"""The sentences of the book (the chapters, the lectures' cards and exercises) that hold a
comparative or directional word and two numbers yet relate no two of their numbers: a phrase
each holds (no slot in it, so that the same sentence is found in a chapter's template and on
its built page) and why it is no relation. Every other such sentence has its word chosen from
its numbers (:func:`~descentlab.book.facts.word`), read by a relation shape of
:func:`~descentlab.book.facts.relation_words`, or read by a check row of its chapter that tests
the relation on the computed values (:data:`CHECKED_BY`, :func:`~descentlab.book.checks.said`)
(:func:`~descentlab.book.facts.census`; tests/test_book_words.py holds the book to it)."""

from __future__ import annotations

__all__ = ["CHECKED_BY", "NOT_RELATIONS"]

NOT_RELATIONS: dict[str, str] = {
    # the chapters
    "3 % below it, at ηλ": "an offset from the edge, a setting",
    "3 % above it, at ηλ": "an offset from the edge, a setting",
    "steps to shrink the distance by a factor": "what the steps do, not an order of two numbers",
    "and the loss never falls (measured": "the measured rate equals 1 (its twin check against "
    "|1 - ηL|): an equality, no order",
    "the recurrence above in a few lines": "a place on the page",
    "the path drops straight down the stiff direction": "a motion; the numbers are settings",
    "there the floors differ by": "a factor across β; the larger rate is a setting",
    "the accumulated sum only grows": "a sum of squares grows by construction; the numbers are "
    "item numbers",
    "shrinking about like": "a rate of decay in T, not an order of two numbers",
    "the expected loss falls like": "a law in t",
    "and the loss falls only like": "a law in t against 1/t",
    "while the rate is small the iterate falls": "a motion; the numbers are steps and settings",
    "close to the 1/(2t) of the section above": "a place on the page",
    "times the plain cosine's": "a factor; the section above is a place on the page",
    "asks for η = 3.2, past the edge": "a setting's arithmetic; the direction words are places",
    "the climb stops at the edge": 'a motion; the numbers are compared by "against"',
    "grows without bound as the well's curvature": "a limit, not an order of two numbers",
    "Where its temperature is below barrier/20": "a condition on a setting",
    "at the larger η the sharp well is closer": "ηλ nearer 2 at the larger of the two rows' rates: "
    "arithmetic of settings, no computed value",
    "a larger batch without the larger rate": "settings of a row",
    "because the logarithm is increasing": "the logarithm's shape",
    "the error in H's eigenbasis shrinks by": "a factor per step",
    "would shrink y by the factor": "the ridge factor as a formula (the exercise's code computes "
    "it as its misconception), not an order of two numbers",
    "lowest estimate falls below σ² in": "the share of draws where the estimate is below σ², "
    "counted by that comparison: a frequency, no two numbers ordered",
    "until the error falls below": "a target, a setting",
    "converges, faster than quadratically: three steps reach": "a rate of convergence",
    "Newton climbs to the local maximum at": "a motion; the numbers are places",
    "converging faster than quadratically": "a rate of convergence",
    "it tries halvings until the loss falls enough": "a condition, the numbers are 1/L and 2/L",
    "more, on the seeds": "runs added, a count, not an order",
    "is cut into batches of": "the last batch is what is left, by definition",
    # the lectures' cards and exercises
    "fewer parameters at more depth": "the lecture's item; 1x1 names a kernel, no order",
    "MSE weighs large errors more": "the lecture's item as the seed list words it; its card's "
    "code computes the two squares",
    "densities below 1 underflows": "every density is below 1; the cell prints the product",
    "the useful rates lie below the divergence limit": "a rule of thumb; the numbers are divisors",
    "much faster than SGD at the same rate": "compares runs, the numbers are their settings",
    "remembers about 2 steps": "the memory 1/(1-β) at three β, each number its own β's; the "
    "trend is the law in words",
    "probabilities below 1 underflows": "every probability is below 1",
    "the flat direction's curvature,": "a factor against the stiff curvature, not a number here",
    "The grid grows with the square of the resolution": "a law; the numbers are the grid",
    "by step 10,000 it is 100 times smaller than at step 1": "a factor, √(10,000/1)",
    "how many steps until the error falls below": "a question",
    "marks any box size where the ratio is not above 1": "a test named, not an order",
    "makes Adam less aggressive on flat coordinates": "the numbers are ε's settings",
    "which smooths more but also reacts later": "a trend in α the numbers before state",
    "stays above 1 for hundreds of steps": "the card computes no ratio: its numbers are the two "
    "averages' memories (1,000 and 10 steps) and the bound 1",
    "how many times fewer steps does momentum": "a question",
    "how many times larger than the corrected one": "a question",
    "a single small gradient shrinks v fast": "a motion; the numbers are settings and items",
    "the time to converge grows like": "a law; the numbers are items",
}

#: The sentences a chapter's check row reads (:func:`~descentlab.book.checks.said`): a phrase
#: each holds, as above, and what the row tests on the computed values -- the check's text on
#: the page. A flipped word drops the phrase from the page and turns the row ✘;
#: :func:`~descentlab.book.facts.census` counts the sentence read.
CHECKED_BY: dict[str, str] = {
    "its loss never below": "heavy ball's loss on Lessard's function, over the last 30 steps "
    "of its cycle, is never below the floor the page prints",
    "takes smaller steps at the bottom": "RMSProp at η = 0.1 takes smaller steps over the last "
    "tenth of the run with α = 0.99 than with α = 0.9",
    "ends below the floor of the constant rate": "every a with ah ≥ 1/2 ends below the constant "
    "rate's floor (η = 0.1), a = 0.1 above it",
    "below the edge it stays in the sharp well": "every η below the sharp well's edge ends in "
    "the sharp well, every η above it in the flat one",
    "the two never differ by more than": "SGD(weight_decay) and SGD on the penalised loss differ "
    "by at most 1e-12 at every step",
    "The gap between test and train errors shrinks all along": "the gap (test - train) falls at "
    "every step of λ",
    "the stochastic error levels off at it": "B = 1's expected loss (the recursion) "
    "never drops below its floor by more than 1e-05 of it, at any step",
    "The test error falls, then rises (item": "the test error falls from degree 1 to its "
    "minimum, then rises to the largest degree: its minimum at neither end",
    "That is below σ², which no model beats": "the lowest cross-validation estimate is below σ² "
    "and below the test error at its degree",
}
