"""The sentences of the book (the chapters, the lectures' cards and exercises) that hold a
comparative or directional word and two numbers yet relate no two of their numbers: a phrase
each holds (no slot in it, so that the same sentence is found in a chapter's template and on
its built page) and why it is no relation. Every other such sentence has its word chosen from
its numbers (:func:`~descentlab.book.facts.word`) or read by a relation shape of
:func:`~descentlab.book.facts.relation_words` (:func:`~descentlab.book.facts.census`;
tests/test_book_words.py holds the book to it)."""

from __future__ import annotations

__all__ = ["NOT_RELATIONS"]

NOT_RELATIONS: dict[str, str] = {
    # the chapters
    "3 % below it, at ηλ": "an offset from the edge, a setting",
    "3 % above it, at ηλ": "an offset from the edge, a setting",
    "steps to shrink the distance by a factor": "what the steps do, not an order of two numbers",
    "and the loss never falls (measured": "the loss stays put: one measured number, no order",
    "the recurrence above in a few lines": "a place on the page",
    "the path drops straight down the stiff direction": "a motion; the numbers are settings",
    "its loss never below": "the cycle's floor: one number bounds the loss, the others place it",
    "there the floors differ by": "a factor across β; the larger rate is a setting",
    "the accumulated sum only grows": "the numbers are items",
    "takes smaller steps at the bottom": "the steps are compared, not the final losses beside",
    "and larger than η when β₂ is closer to 1": "compared with the symbol η, not a number",
    "shrinking about like": "a rate of decay in T, not an order of two numbers",
    "the expected loss falls like": "a law in t",
    "and the loss falls only like": "a law in t against 1/t",
    "while the rate is small the iterate falls": "a motion; the numbers are steps and settings",
    "close to the 1/(2t) of the section above": "a place on the page",
    "times the plain cosine's": "a factor; the section above is a place on the page",
    "ends below the floor of the constant rate": "the floor is the table's, not a number here",
    "asks for η = 3.2, past the edge": "a setting's arithmetic; the direction words are places",
    "below the edge it stays in the sharp well": "which side of the edge, not an order",
    "the climb stops at the edge": 'a motion; the numbers are compared by "against"',
    "grows without bound as the well's curvature": "a limit, not an order of two numbers",
    "Where its temperature is below barrier/20": "a condition on a setting",
    "at the larger η the sharp well is closer": "the larger rate of the two rows, their settings",
    "a larger batch without the larger rate": "settings of a row",
    "the two never differ by more than": "the largest difference, one number",
    "The gap between test and train errors shrinks all along": "a trend of the table",
    "because the logarithm is increasing": "the logarithm's shape",
    "the error in H's eigenbasis shrinks by": "a factor per step",
    "never drops below it (for single examples here": "the floor and the crossing epoch, "
    "each one number",
    "The test error falls, then rises (item": "the best degree is the argmin of the errors "
    "listed: falls then rises by construction",
    "That is below σ², which no model beats": "the estimate is the sentence before's, σ² "
    "stated in the section",
    "lowest estimate falls below σ² in": "a frequency over the draws",
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
    "remembers about 2 steps": "a trend in β the numbers before state",
    "probabilities below 1 underflows": "every probability is below 1",
    "the flat direction's curvature,": "a factor against the stiff curvature, not a number here",
    "The grid grows with the square of the resolution": "a law; the numbers are the grid",
    "by step 10,000 it is 100 times smaller than at step 1": "a factor, √(10,000/1)",
    "how many steps until the error falls below": "a question",
    "marks any box size where the ratio is not above 1": "a test named, not an order",
    "makes Adam less aggressive on flat coordinates": "the numbers are ε's settings",
    "which smooths more but also reacts later": "a trend in α the numbers before state",
    "stays above 1 for hundreds of steps": "a bound held, not an order of the numbers stated",
    "how many times fewer steps does momentum": "a question",
    "how many times larger than the corrected one": "a question",
    "a single small gradient shrinks v fast": "a motion; the numbers are settings and items",
    "the time to converge grows like": "a law; the numbers are items",
}
