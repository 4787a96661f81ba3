"""Every chapter's "What to keep" line is bound to a run or listed with why, and a line turned
into its misconception -- not a swapped word of teaching.OPPOSITES -- is a ✘ on its chapter."""

from __future__ import annotations

import time

import pytest

from descentlab.book import claims, teaching
from descentlab.book.chapters import CHAPTERS

KEEP = [s for s in teaching.census() if s.kind == "What to keep"]


def test_every_what_to_keep_line_is_backed_or_listed():
    """With a computable opposite or not: each line holds a claim's phrase, a phrase a check
    row reads, or a phrase of claims.UNBACKED."""
    backing, listing = teaching._phrases()
    left = [(s.where, s.text) for s in KEEP if not any(p in s.text for p in backing + listing)]
    assert len(KEEP) >= 60 and not left, left


@pytest.mark.parametrize(
    "line",
    [
        "Momentum always makes the loss fall faster.",  # a word of OPPOSITES
        "Momentum is a heavy ball rolling down the loss.",  # none
    ],
)
def test_a_new_what_to_keep_line_fails_the_build_row_whatever_its_words(line):
    row = teaching.bound_check(
        [*teaching.census(), teaching.Sentence("What to keep", "keep deep-fake", line)]
    )
    assert row.status == "fail" and "keep deep-fake" in row.measured, row.measured  # fmt: skip


#: (chapter, the line's phrase, its misconception): none is a swap of teaching.OPPOSITES' words
MISCONCEPTIONS = [
    ("deep-momentum", "is a second-order linear recurrence whose roots give its rate",
     "is a first-order linear recurrence whose factor gives its rate"),
    ("deep-momentum", "damps the stiff directions further", "damps the stiff directions less"),
    ("deep-adaptive", "a correction that matters in the first steps and fades",
     "a correction that matters in the late steps and grows"),
    ("deep-schedules", "a constant rate hovers at a floor",
     "a constant rate converges to the minimum"),
    ("deep-schedules", "keep $\\sum \\eta_t$ infinite", "keep $\\sum \\eta_t$ finite"),
    ("deep-schedules", "Step decay walks down a staircase of floors",
     "Step decay drops straight to the minimum"),
    ("deep-batch", "buys little", "divides the steps it needs"),
    ("deep-regularization", "decoupled decay (AdamW) is a different",
     "decoupled decay (AdamW) is the same"),
    ("deep-likelihood", "the model's noise decides the terms",
     "every noise model gives the same terms"),
    ("deep-likelihood", "maximum-likelihood models cover every mode",
     "maximum-likelihood models seek a single mode"),
    ("deep-descent", "what separates them is the cost of a step and the noise it carries",
     "what separates them is the direction of their expected step"),
    ("deep-descent", "many cheap noisy steps per epoch beat one exact step",
     "one exact step per epoch beats many cheap noisy steps"),
    ("deep-descent", "the full batch wins only long after its own e-folding count",
     "the full batch wins from its first epochs"),
    ("deep-descent", "an epoch of shuffled batches cancels its noise",
     "an epoch of shuffled batches keeps its noise"),
    ("deep-convolution", "independent of the image's size",
     "proportional to the image's size"),
    ("deep-convolution", "a 1 × 1 bottleneck cuts both",
     "a 1 × 1 bottleneck cuts the weights but not the compute"),
    ("deep-newton", "it can diverge or climb to a maximum", "it still descends"),
    ("deep-newton", "a line search picks the step a fixed rate cannot",
     "a line search picks no better step than a fixed rate"),
    ("deep-newton", "L-BFGS builds curvature from gradients alone",
     "L-BFGS builds curvature from the Hessian"),
]  # fmt: skip


@pytest.mark.parametrize(("stem", "said", "misconception"), MISCONCEPTIONS,
                         ids=[m[2][:40] for m in MISCONCEPTIONS])  # fmt: skip
def test_a_what_to_keep_line_turned_into_its_misconception_is_a_cross(stem, said, misconception):
    """The chapter's "What to keep" and exercises as its rows read them; with the line turned
    into the misconception, a row of that chapter that was ✔ is ✘ (a row whose phrase is in
    the chapter's sections, not read here, is ✘ in both)."""
    ch = next(c for c in CHAPTERS if c.stem == stem)
    text = claims._plain("\n\n".join([ch.keep, *(e.solution for e in ch.exercises)]))
    assert said in text and teaching.turned(said) != misconception  # not a word swap

    def fails(page: str) -> int:
        return [r.status for r in claims.claim_checks(page, home=stem)].count("fail")

    assert fails(text.replace(said, misconception)) > fails(text), misconception


def test_the_keep_runs_bear_their_lines_out_in_little_cpu():
    """Each run of the "What to keep" claims holds; together they take well under a second of
    CPU (a few milliseconds each)."""
    from descentlab.book import keep_claims

    start = time.process_time()
    results = {name: claims._BY_NAME[name].demo() for name, *_ in keep_claims.CLAIMS}
    spent = time.process_time() - start
    assert all(holds for holds, _ in results.values()), results
    assert spent < 1.0, spent
