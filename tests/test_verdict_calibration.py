"""The verdict is family-wise honest (issue 47, item 2): in an A/A comparison -- M optimizers
identical in distribution, test accuracy about 0.85 on 1,000 test examples, 5 seeds, a small
seed effect partly shared with the validation runs -- the chance that the comparison's own
choice and statistics (:meth:`Comparison.ranking`) call any optimizer worse is at most 5 %.

Before the fix (the best chosen on the test mean, M - 1 uncorrected tests against it) the
same simulation gave 10.8 % at M = 4 and 33 % at M = 8; after it, 1.4 % and 0.5 % (1,000
comparisons each, benchmarks/aa_calibration.py). The Monte-Carlo error is stated with each
bound: with 200 comparisons the standard error of a rate of 5 % is 1.5 points, and the old
code's 33.5 % on this test's seed sits 19 of them above the bound. Not covered (docs/
verdict.md): a large seed effect shared entirely by curve and refit runs (5-9 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from descentlab.experiments.compare.calibration import aa_comparison, false_worse_rate
from descentlab.experiments.compare.stats import holm


def test_holm_matches_statsmodels_definition():
    # Holm (1979): sorted p_(j) times (m - j + 1), made monotone, capped at 1
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    # a subset of a larger family: the steps start from the family's size
    assert holm([0.01, 0.02], family=6) == pytest.approx([0.06, 0.1])
    assert math.isnan(holm([math.nan, 0.01])[0]) and holm([math.nan, 0.01])[1] == 0.01


def test_a_to_a_comparison_of_eight_optimizers_calls_none_worse_at_most_5_percent():
    rate, se = false_worse_rate(8, sims=200, seed=8)
    assert rate <= 0.05, f"{rate:.1%} +- {se:.1%}"
    assert se < 0.016  # the Monte-Carlo standard error of the rate itself


def test_the_winner_is_chosen_on_validation_not_on_the_test_outcomes():
    rng = np.random.default_rng(0)
    cmp = aa_comparison(rng, 4)
    vals = {r.label: cmp.validation_score(r) for r in cmp.results}
    ranking = cmp.ranking()
    top = ranking[0]["result"]
    assert ranking[0]["chosen_on"] == "validation"
    assert vals[top.label] == max(vals.values())
    # the test outcomes play no part: making the chosen one's test outcomes the worst of
    # all leaves the choice where it was (and then calls the others better, or not)
    for e in top.test_examples.values():
        e["accuracy"][:] = 0.0
    top.test_accuracy_seeds = {s: 0.0 for s in top.test_accuracy_seeds}
    top.test_accuracy = (0.0, math.nan, math.nan)
    again = cmp.ranking()
    assert again[0]["result"] is top
    assert {x["test"].verdict for x in again[1:]} == {"better"}
    assert all(x["test"].family == 6 for x in again[1:])  # every pair of the 4


def test_without_validation_scores_the_choice_falls_back_to_test_and_says_so():
    rng = np.random.default_rng(1)
    cmp = aa_comparison(rng, 4)
    for r in cmp.results:
        r.curves = {}
    ranking = cmp.ranking()
    assert ranking[0]["chosen_on"] == "test"
    assert all(x["test"].family == 6 for x in ranking[1:])  # 4 * 3 / 2 pairs
    assert "chosen on its test accuracy (no curve run has a validation score)" in (
        cmp.recommendation()
    )


@pytest.mark.slow
@pytest.mark.parametrize("m", [2, 4, 6, 10])
def test_a_to_a_rate_at_most_5_percent_for_2_to_10_optimizers(m):
    rate, se = false_worse_rate(m, sims=200, seed=m)
    assert rate <= 0.05, f"{rate:.1%} +- {se:.1%}"
