"""The verdict is family-wise honest: in an A/A comparison -- M optimizers
identical in distribution, test accuracy about 0.85 on 1,000 test examples, 5 seeds -- the
chance that the comparison's own choice and statistics (:meth:`Comparison.ranking`) call any
optimizer worse is at most 5 %, with a small seed effect partly shared with the validation
runs and with a large one shared entirely.

Before the fix (the best chosen on the test mean, M - 1 uncorrected tests against it) the
small-effect simulation gave 10.8 % at M = 4 and 33 % at M = 8; after it, 1.4 % and 0.5 %
(1,000 comparisons each, benchmarks/aa_calibration.py). With the large seed effect the
paired test's reference had several times the seeds' degrees of freedom (too thin-tailed):
7.0 % at M = 8 (2,000 comparisons); with the seeds' own it is within 5 % (docs/verdict.md).
The Monte-Carlo error is stated with each bound: with 200 comparisons the standard error of
a rate of 5 % is 1.5 points, and the old code's 33.5 % on this test's seed sits 19 of them
above the bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from descentlab.experiments.compare.calibration import (
    aa_comparison,
    detection_rate,
    false_worse_rate,
)
from descentlab.experiments.compare.stats import holm, paired_test

# seeds 3-4 accuracy points apart. The test seeds are drawn apart from the curve runs' seeds
# (rho 0), as compare runs them: with all of a seed's luck shared by the choice and the test
# (rho 1) a family of the M - 1 comparisons made is not enough (7.1 % at M = 4, 8.5 % at 8 in
# 2,000 comparisons); that is why the test seeds are disjoint (docs/verdict.md)
LARGE = {"seed_sd": 0.3, "rho": 0.0}


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
    assert all(x["test"].family == 3 for x in again[1:])  # the 3 comparisons made
    # and the recommendation does not then say that more seeds would (or would not) separate
    # the chosen one from optimizers already shown better than it
    text = cmp.recommendation()
    assert "better on the test set" in text
    assert "seeds would" not in text and "would not separate" not in text


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


def _at_most_5_percent(rate: float, se: float, sims: int) -> None:
    # where the test is exact (M = 2: one comparison, the paired t over seeds) the rate is
    # 5 % itself, so the bound allows the Monte-Carlo error of an estimate of 5 %: two
    # standard errors (1.0 point with 2,000 comparisons, 1.4 with 1,000)
    assert rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / sims), f"{rate:.1%} +- {se:.1%}"


@pytest.mark.slow  # 1,000 comparisons each: 5-30 s
@pytest.mark.parametrize("m", [2, 4, 6, 10])
def test_a_to_a_rate_at_most_5_percent_for_2_to_10_optimizers(m):
    rate, se = false_worse_rate(m, sims=1000, seed=m)
    _at_most_5_percent(rate, se, 1000)


def test_a_difference_the_seeds_dominate_is_tested_with_the_seeds_degrees_of_freedom():
    # a large seed effect: the seed means carry the noise, and only k - 1 = 4 of them are
    # free. The test is then the paired t-test over seed means (exact for normal ones), not
    # a reference with the examples' degrees of freedom mixed in (5.7 and 10.4 here before)
    from scipy import stats

    rng = np.random.default_rng(47)
    for _ in range(4):
        a, b = aa_comparison(rng, 2, **LARGE).results
        t = paired_test(
            a.test_outcome_values("accuracy"), b.test_outcome_values("accuracy"), maximize=True
        )
        seeds = [[r.test_accuracy_seeds[s] for s in sorted(r.test_accuracy_seeds)] for r in (a, b)]
        assert t.diff.df == 4
        assert t.p == pytest.approx(stats.ttest_rel(*seeds).pvalue, rel=0.01)
    # and so with a small seed effect and 3 seeds, where the seeds' part, from 2 degrees of
    # freedom, often comes out small by chance: Satterthwaite's then rose above 2 (the
    # examples' part of an A/A difference is a difference of two nearly equal mean squares)
    for _ in range(4):
        a, b = aa_comparison(rng, 2, seeds=3).results
        t = paired_test(
            a.test_outcome_values("accuracy"), b.test_outcome_values("accuracy"), maximize=True
        )
        assert t.diff.df == 2


def test_the_examples_part_of_a_mean_is_not_the_interaction_counted_twice():
    # pure per-example coin flips (no seed effect, no example effect): the mean's variance
    # is p(1 - p) / (k n), and the estimate is unbiased for it (the example means' variance
    # over n, added whole, held it a second time: twice as large on average)
    from descentlab.experiments.compare.stats import estimate

    rng = np.random.default_rng(3)
    k, n = 5, 2000
    truth = 0.25 / (k * n)
    found = []
    for _ in range(200):
        e = estimate({s: (rng.random(n) < 0.5).astype(float) for s in range(k)})
        assert e.example_var < 0.2 * truth
        found.append(e.se**2)
    assert np.mean(found) == pytest.approx(truth, rel=0.15)  # 3 standard errors


@pytest.mark.slow  # 2,000 comparisons each (5-20 s): the excess to rule out is 1-3 points
@pytest.mark.parametrize("m", [2, 4, 8])
def test_a_to_a_rate_at_most_5_percent_with_a_large_seed_effect(m):
    # the old reference (the examples' degrees of freedom mixed into the seeds') gave 7.0 %
    # at M = 8 with this seed effect, 2.0 points above 5 %
    rate, se = false_worse_rate(m, sims=2000, seed=m, **LARGE)
    _at_most_5_percent(rate, se, 2000)


def test_a_truly_worse_optimizer_is_called_worse_often():
    # power: of 2 optimizers, one worse by 0.4 on the logit scale (about 3.7 accuracy
    # points), small seed effect: a verdict that never says "worse" fails here
    rate, _ = detection_rate(2, 0.4, sims=60, seed=1)
    assert rate >= 0.7


# -- the sequential verdict: the same honesty in every scenario, and the power ---------------

from descentlab.experiments.compare import sequential  # noqa: E402
from descentlab.experiments.compare.calibration import Scenario, rates  # noqa: E402

LOOKS = (5, 10, 20, 40)


@pytest.mark.parametrize(
    ("gamma", "looks"), [(0.0, LOOKS), (-4.0, LOOKS), (1.0, (3, 6, 12)), (0.0, (5,))]
)
def test_the_boundaries_spend_exactly_alpha_over_the_looks(gamma, looks):
    # the combined statistic's law (independent normal increments of variance n_j) simulated
    # directly: the chance of crossing some boundary is alpha
    b = np.array(sequential.boundaries(looks, 0.05, gamma))
    sizes = np.diff((0, *looks)).astype(float)
    z = np.random.default_rng(0).normal(size=(200_000, len(looks)))
    c = np.cumsum(np.sqrt(sizes) * z, 1) / np.sqrt(np.cumsum(sizes))
    assert float(np.mean((np.abs(c) >= b).any(1))) == pytest.approx(0.05, abs=0.0015)


# one per scenario of benchmarks/aa_calibration.py (whose tables use 1,000 comparisons each)
SCENARIOS = [
    pytest.param(Scenario(8, seed_sd=0.1, noisy=5.0), id="M8-one-optimizer-5x-noisier"),
    pytest.param(Scenario(10, seed_sd=0.3, rho=1.0), id="M10-large-seed-effect"),
    pytest.param(Scenario(4, accuracy=0.5), id="M4-accuracy-0.5", marks=pytest.mark.slow),
    pytest.param(Scenario(8, accuracy=0.99), id="M8-accuracy-0.99", marks=pytest.mark.slow),
    pytest.param(Scenario(6, task="regression"), id="M6-regression", marks=pytest.mark.slow),
    pytest.param(Scenario(2), id="M2-small", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_sequential_verdicts_family_wise_error_is_at_most_5_percent(scenario):
    r = rates(scenario, protocol="sequential", sims=120, seed=100 + scenario.m, looks=LOOKS)
    # 120 comparisons: the bound allows two standard errors of an estimate of 5 % (4 points),
    # as the tests above do; benchmarks/aa_calibration.py measures each to +-1 point
    _at_most_5_percent(r.false, r.false_se, 120)


@pytest.mark.parametrize(
    ("scenario", "sims"),
    [
        pytest.param(Scenario(8, seed_sd=0.3, rho=1.0, worse_logit=0.5), 60, id="4.7-points"),
        pytest.param(Scenario(8, worse_sd=1.0), 150, id="one-seed-sd", marks=pytest.mark.slow),
    ],
)
def test_at_m_8_a_truly_worse_optimizer_is_called_worse_at_least_80_percent(scenario, sims):
    # the fixed protocol (5 seeds, Holm over all 28 pairs) called the 4.7-point one worse
    # 6.2 % of the time and the one-seed-sd one 1-3 %
    r = rates(scenario, protocol="sequential", sims=sims, seed=80, looks=LOOKS)
    assert r.power >= 0.8, f"{r.power:.1%} +- {r.power_se:.1%}"
    assert r.seeds <= LOOKS[-1]
    fixed = rates(scenario, protocol="fixed", sims=sims, seed=80)
    assert fixed.power < 0.3


# The demo as it ran (make demo, 5 seeds each: test accuracy per seed), Momentum chosen
DEMO = {
    "Momentum": [0.929, 0.908, 0.859, 0.915, 0.924],
    "SGD": [0.723, 0.669, 0.588, 0.492, 0.398],
    "Nesterov": [0.913, 0.835, 0.569, 0.924, 0.888],
    "AdaGrad": [0.823, 0.823, 0.775, 0.845, 0.823],
    "Adadelta": [0.771, 0.727, 0.739, 0.774, 0.805],
    "Adadelta (default lr)": [0.695, 0.599, 0.623, 0.697, 0.650],
    "RMSProp": [0.815, 0.864, 0.842, 0.855, 0.868],
    "Adam": [0.905, 0.935, 0.924, 0.906, 0.878],
}


def test_the_demos_clear_losers_are_shown_worse_once_their_open_comparisons_get_seeds():
    # SGD 33 points behind Momentum on every seed was "not shown worse" (t at 0.05 / 28 with
    # 4 degrees of freedom is 7.39). The sequential verdict adds seeds (drawn here from each
    # optimizer's seeds as seen) where a comparison is open, and decides
    rng = np.random.default_rng(64)
    values = {k: dict(enumerate(v)) for k, v in DEMO.items()}
    others = [k for k in DEMO if k != "Momentum"]
    while True:
        r = sequential.look(
            values["Momentum"], [values[k] for k in others], maximize=True, looks=LOOKS
        )
        if not r.open:
            break
        for k in ["Momentum", *(others[i] for i in r.open)]:
            seen = np.asarray(DEMO[k])
            for s in range(len(values[k]), r.next_seeds):
                values[k][s] = float(np.clip(rng.normal(seen.mean(), seen.std(ddof=1)), 0, 1))
    verdicts = {k: t.verdict for k, t in zip(others, r.tests, strict=True)}
    for k in ("SGD", "AdaGrad", "Adadelta", "Adadelta (default lr)"):
        assert verdicts[k] == "worse", (k, verdicts)
    assert len(values["SGD"]) <= 20  # decided well before the last look
