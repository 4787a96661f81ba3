"""The verdict keeps its promises where real runs break the textbook: simulated comparisons
whose truth is known, run through the comparison's own loop (``more_seeds()`` until it is
empty, then ``ranking()``: ``benchmarks/calibration.py``).

- Seeds that fail. An optimizer whose runs fail 10 % of the time (accuracy 0.45 where the
  others reach 0.85) made the metric a mixture: a 5-seed stage holding no failure made it
  look uniformly different and the design stopped before a failure could show (62 % false
  calls at M = 2). Failed runs are now counted apart; the metric is compared on the seeds
  that trained.
- Ties. Two seeds whose differences are equal (142 test examples, ``--seeds 2``) gave a zero
  standard error, an infinite statistic and a false "worse".
- Sizes. Each verdict comes with the interval of its difference at the level that decided
  it: together they hold the true differences at 95 % (checked from 2, 3 and 5 first
  seeds); the verdict itself is a signed-rank design's, a failed seed the worst a seed can
  do (tests/test_verdict_monotone.py).

Each rate is bounded by 5 % plus two Monte-Carlo standard errors of an estimate of 5 %;
benchmarks/aa_calibration.py measures every scenario with more comparisons (docs/verdict.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _verdict_truths import calibration, table

from descentlab.experiments.compare import sequential
from descentlab.experiments.compare.stats import paired_difference

# the harness, its true pseudo-medians simulated once (tests/_verdict_truths.py)
_CALIBRATION = calibration()
Scenario, comparison, rates = _CALIBRATION.Scenario, _CALIBRATION.comparison, _CALIBRATION.rates

# every test here runs the library's looks (5, 10, 20, 40), not the suite's single look
pytestmark = pytest.mark.sequential_seeds


def _at_most_5_percent(rate: float, sims: int) -> None:
    assert rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / sims), f"{rate:.1%} of {sims}"


@pytest.mark.parametrize(
    ("scenario", "sims"),
    [
        # one optimizer failing 10 % of its runs, equal to the others when it trains (the
        # code before counted its failures into the metric: 10.8 % false calls here)
        pytest.param(Scenario(5, fail=(0.10,)), 120, id="M5-one-failing-10-percent"),
        # every optimizer failing 10 %: neither the metric nor the failures differ
        pytest.param(Scenario(4, fail=(0.1,) * 4), 120, id="M4-all-failing-10-percent",
                     marks=pytest.mark.slow),
        pytest.param(Scenario(8, fail=(0.2,)), 120, id="M8-one-failing-20-percent",
                     marks=pytest.mark.slow),
        pytest.param(Scenario(5, seed_sd=0.1, noisy=5.0), 120, id="M5-one-5x-noisier",
                     marks=pytest.mark.slow),
        pytest.param(Scenario(6, task="regression"), 120, id="M6-regression",
                     marks=pytest.mark.slow),
    ],
)  # fmt: skip
def test_family_wise_error_at_most_5_percent_when_seeds_fail(scenario, sims):
    r = rates(scenario, sims=sims, seed=100 + scenario.m)
    _at_most_5_percent(r.false, sims)  # the metric verdict
    _at_most_5_percent(r.fail_false, sims)  # the failure verdict


def test_a_failing_optimizer_whose_mean_over_all_seeds_is_equal_shows_its_failures():
    # the A/A of the mean over every seed: 10 % failures, made up for by better runs when
    # it trains. What the verdict claims is about the runs that trained (and those are not
    # equal), so its intervals must hold those differences, and a failing optimizer
    # chosen over others called worse must show a failed seed of its own (the code before
    # said nothing of failures: chosen, others worse, its failures unshown in 41.7 %)
    r = rates(Scenario(5, fail=(0.10,), compensate=True), sims=120, seed=5)
    assert r.coverage >= 0.95 - 2 * math.sqrt(0.05 * 0.95 / 120), r
    _at_most_5_percent(r.false, 120)  # no false call among the equal ones
    _at_most_5_percent(r.fail_false, 120)
    assert r.unshown <= 0.05, r


@pytest.mark.parametrize("n", [0, 1, 2, 7, 40, 301])
def test_the_harness_counted_pseudo_median_is_the_verdicts_hodges_lehmann(n):
    # the harness's true pseudo-median finds the median of the Walsh averages over distinct
    # values and their counts: the same float as the verdict's own, ties and failures
    # (+-inf, inf against -inf a 0) included
    from descentlab.experiments.compare.sequential import hodges_lehmann

    rng = np.random.default_rng(n)
    for _ in range(20):
        d = rng.integers(-6, 7, n) / 7.0
        d[rng.random(n) < rng.random() / 4] = np.inf
        d[rng.random(n) < rng.random() / 4] = -np.inf
        want, got = hodges_lehmann(d), _CALIBRATION.hodges_lehmann_counted(d)
        assert got == want or (math.isnan(got) and math.isnan(want)), (d, got, want)


@pytest.mark.slow
def test_the_table_of_true_pseudo_medians_is_what_the_harness_simulates(monkeypatch):
    # the first comparisons of each test above that meets optimizers drawn unlike, replayed
    # with nothing known: every true pseudo-median simulated is in the table, the same float
    # (rewritten by `python tests/_verdict_truths.py`)
    known = table()
    monkeypatch.setattr(_CALIBRATION, "KNOWN", {})
    monkeypatch.setattr(_CALIBRATION, "COMPUTED", {})
    for sc, seed in [
        (Scenario(5, fail=(0.10,)), 105),
        (Scenario(5, fail=(0.10,), compensate=True), 5),
        (Scenario(5, worse_sd=1.0, seeds=2), 102),
        (Scenario(2, bad=0.10, bad_drop=0.26), 202),
        (Scenario(8, seed_sd=0.3, worse_logit=0.5), 80),
        (Scenario(8, worse_sd=1.0), 80),
        (Scenario(8, fail=(0.2,)), 108),
    ]:
        rates(sc, sims=3, seed=seed)
    simulated = _CALIBRATION.COMPUTED
    assert len(simulated) >= 14, len(simulated)
    missing = sorted(set(simulated) - set(known))
    assert not missing, f"{len(missing)} not in the table: python tests/_verdict_truths.py"
    assert {k: known[k] for k in simulated} == simulated


def test_two_seeds_with_equal_differences_decide_nothing():
    # 142 test examples, 2 seeds: each seed 2 examples lost and 1 gained, on examples of its
    # own -- equal differences, no spread over seeds nor a shared per-example part. The
    # stage's statistic was infinite and the look said "worse"
    best = {s: np.ones(142) for s in range(2)}
    best[0][100:130] = 0.0
    best[1][110:140] = 0.0
    other = {}
    for s, row in best.items():
        row2 = row.copy()
        row2[np.flatnonzero(row)[10 * s : 10 * s + 2]] = 0.0  # two lost, other ones per seed
        row2[np.flatnonzero(row == 0)[s]] = 1.0  # and one gained
        other[s] = row2
    d = paired_difference(best, other, maximize=True)
    assert d.mean == pytest.approx(1 / 142)
    assert all(math.isfinite(z) for z in sequential.rank_z([d.mean, d.mean]))
    looked = sequential.look(best, [other], maximize=True, looks=(2, 4, 8, 16))
    assert looked.tests[0].verdict == "not distinguishable" and looked.open == [0]


def test_ties_on_a_small_test_set_keep_the_family_wise_error():
    # --seeds 2 (looks 2, 4, 8, 16) on 142 test examples, 5 optimizers: a stage's equal
    # differences gave an infinite statistic; the code before called some optimizer worse
    # in 22.0 % of these comparisons
    r = rates(Scenario(5, examples=142, seeds=2), sims=200, seed=65)
    _at_most_5_percent(r.false, 200)


def test_the_intervals_hold_the_true_differences_together_from_2_3_and_5_first_seeds():
    # what the verdict promises beside each call: its interval, simultaneous over the
    # comparisons and the looks -- one of 5 optimizers truly worse, from 2, 3 and 5 first
    # seeds (60 comparisons each). The code before showed each comparison's own 95 % interval:
    # together they held the truth in 146 of these 180 (81 %)
    held = sum(
        rates(Scenario(5, worse_sd=1.0, seeds=first), sims=60, seed=100 + first).coverage * 60
        for first in (2, 3, 5)
    )
    assert held / 180 >= 0.95 - 2 * math.sqrt(0.05 * 0.95 / 180), held


@pytest.mark.parametrize(
    ("scenario", "sims"),
    [
        # 10 % of the first optimizer's seeds 26 accuracy points down but above chance, so
        # they count as trained: the intervals of the code before held the truth in 66.7 %
        # of 30 (every miss less worse than the truth), the stages' t turned into z letting
        # the stages without a bad seed outweigh the one with it
        pytest.param(Scenario(2, bad=0.10, bad_drop=0.26), 100, id="M2-10-percent-26-down"),
    ],
)  # fmt: skip
def test_the_intervals_hold_when_rare_seeds_go_bad_but_train(scenario, sims):
    r = rates(scenario, sims=sims, seed=200 + scenario.m)
    assert r.coverage >= 0.95 - 2 * math.sqrt(0.05 * 0.95 / sims), r
    _at_most_5_percent(r.false, sims)


@pytest.mark.parametrize("first", [2, 3])
def test_every_difference_of_an_accuracy_lies_within_plus_minus_one(first):
    # a difference of two accuracies is within +-1 whatever the seeds: each finite end of its
    # interval inside, an end the test cannot bound at these seeds infinite (said as "no
    # interval", never clipped to +-1 as a bound it is not)
    rng = np.random.default_rng(first)
    for _ in range(4):
        cmp, _ = comparison(Scenario(4, seed_sd=0.3, accuracy=0.97, seeds=first), rng)
        for x in cmp.ranking()[1:]:
            est, low, high = x.interval
            ends = [v for v in (low, high) if math.isfinite(v)]
            assert all(-1.0 <= v <= 1.0 for v in ends) and low <= high, x.interval
            assert x.verdict == "identical" or low <= est <= high


def test_each_interval_holds_its_estimate_and_reaches_the_side_its_verdict_says():
    # the verdict is the signed-rank design's (every seed, a failure the worst), the interval
    # the size on the seeds both trained: they need not both exclude 0, but a "worse" never
    # comes with an interval wholly below 0 (nor a "better" wholly above)
    rng = np.random.default_rng(3)
    for _ in range(6):
        cmp, _ = comparison(Scenario(4, worse_sd=3.0), rng)
        for x in cmp.ranking()[1:]:
            est, low, high = x.interval
            assert low <= est <= high
            assert high > 0 or x.verdict != "worse", x
            assert low < 0 or x.verdict != "better", x


@pytest.mark.parametrize(
    ("scenario", "sims"),
    [
        pytest.param(Scenario(8, seed_sd=0.3, worse_logit=0.5), 40, id="4.7-points"),
        pytest.param(Scenario(8, worse_sd=1.0), 200, id="one-seed-sd", marks=pytest.mark.slow),
    ],
)
def test_at_m_8_a_truly_worse_optimizer_is_called_worse_at_least_80_percent(scenario, sims):
    r = rates(scenario, sims=sims, seed=80)
    assert r.power >= 0.8, f"{r.power:.1%} +- {r.power_se:.1%}"
    assert r.seeds <= 40


@pytest.mark.parametrize(
    ("gamma", "looks"), [(0.0, (5, 10, 20, 40)), (-4.0, (5, 10, 20, 40)), (1.0, (3, 6, 12))]
)
def test_the_boundaries_spend_exactly_alpha_over_the_looks(gamma, looks):
    # the combined statistic's law (independent normal increments of variance n_j) simulated
    # directly: the chance of crossing some boundary is alpha
    b = np.array(sequential.boundaries(looks, 0.05, gamma))
    sizes = np.diff((0, *looks)).astype(float)
    z = np.random.default_rng(0).normal(size=(200_000, len(looks)))
    c = np.cumsum(np.sqrt(sizes) * z, 1) / np.sqrt(np.cumsum(sizes))
    assert float(np.mean((np.abs(c) >= b).any(1))) == pytest.approx(0.05, abs=0.0015)


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
    # the sequential verdict adds seeds (drawn here from each optimizer's seeds as seen)
    # where a comparison is open, and decides
    rng = np.random.default_rng(64)
    values = {k: dict(enumerate(v)) for k, v in DEMO.items()}
    others = [k for k in DEMO if k != "Momentum"]
    looks = (5, 10, 20, 40)
    while True:
        r = sequential.look(values["Momentum"], [values[k] for k in others], maximize=True,
                            looks=looks)  # fmt: skip
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


@pytest.mark.parametrize("accuracy", [0.95, 0.97, 0.99])
@pytest.mark.parametrize("seeds", [3, 5, 10])
def test_an_accuracys_own_interval_near_the_edge_stays_in_range_and_covers(accuracy, seeds):
    # the calibration's model (seed sd 0.3 on the logit scale), each optimizer's interval as
    # collect makes it: within [0, 1] and holding the true accuracy. The interval of the code
    # before, the seeds' t clipped to [0, 1], held it in 181 of these 200 at 3 seeds and 0.99
    # (90.5 %): the seeds' skew near the edge, which the logit scale follows
    from descentlab.experiments.compare.stats import estimate

    rng = np.random.default_rng(seeds)
    world = _CALIBRATION._World(rng, Scenario(2, accuracy=accuracy, seed_sd=0.3))
    held = 0
    for _ in range(200):
        e = estimate(dict(enumerate(world.runs(rng, 0, seeds, val=False))), bounds=(0.0, 1.0))
        assert 0.0 <= e.low <= e.mean <= e.high <= 1.0
        held += e.low <= world.truth[0] <= e.high
    assert held / 200 >= 0.95 - 2 * math.sqrt(0.05 * 0.95 / 200), held
