"""The suite's summary beside the rank table: AlgoPerf's benchmark score
(the integrated performance profile, Dahl et al. 2023) and the wins row with ties split, never
double-counted."""

from __future__ import annotations

import numpy as np
import pytest

from descentlab.experiments.multi import (
    MultiComparison,
    ProblemSummary,
    benchmark_score,
    performance_profile,
    wins,
)


@pytest.mark.parametrize("seed", range(5))
def test_score_is_the_integral_of_the_performance_profile(seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(1, 100, (6, 4))
    t[rng.random(t.shape) < 0.2] = np.inf
    taus = np.linspace(1.0, 4.0, 30001)
    _, rho = performance_profile(t, taus)
    integral = np.trapezoid(rho, taus, axis=1) / 3.0  # normalised by r_max - 1
    assert benchmark_score(t) == pytest.approx(integral, abs=2e-4)


def test_wins_split_ties_and_add_to_at_most_one():
    # two equally fastest on one problem of four; nobody reaches the target on another
    t = np.array([[10, 10, 20, 30], [5, 9, 9, np.inf], [np.inf] * 4, [7, 3, 3, 3]], float)
    w = wins(t)
    assert w.tolist() == pytest.approx([(0.5 + 1) / 4, (0.5 + 1 / 3) / 4, 1 / 12, 1 / 12])
    assert w.sum() == pytest.approx(3 / 4)  # the unsolved problem is nobody's
    _, rho = performance_profile(t, [1.0])
    assert rho[:, 0].sum() > 1  # the profile at tau = 1 counts ties for each


def test_the_suite_table_shows_the_score_and_wins_that_add_up(tmp_path):
    def summary(name, steps, seconds=()):
        return ProblemSummary(name, None, "accuracy", True, 0.8, "given", [0.9] * 3, steps,
                              seconds=list(seconds))  # fmt: skip

    labels, displays = ["sgd", "momentum", "adam"], ["SGD", "Momentum", "Adam"]
    # SGD's steps are the fewest on "a" but Momentum's cost half as much
    problems = [summary("a", [100.0, 120.0, 300.0], [2.0, 1.0, 3.0]),
                summary("b", [np.inf, 200.0, 100.0], [np.inf, 2.0, 1.0])]  # fmt: skip
    multi = MultiComparison(labels, displays, problems, tmp_path)
    lines = multi.table().splitlines()
    won = lines[-3].split()[-3:]
    assert lines[-3].startswith("wins (seconds to target)") and won == ["0%", "50%", "50%"]
    assert lines[-2].startswith("AlgoPerf score, seconds (r<=4)")
    assert [float(v) for v in lines[-2].split()[-3:]] == pytest.approx(
        benchmark_score(multi.seconds()), abs=5e-4
    )
    assert lines[-1].startswith("score in steps (r<=4)")
    assert [float(v) for v in lines[-1].split()[-3:]] == pytest.approx(
        benchmark_score(multi.times()), abs=5e-4
    )
    # runs recorded without their own time: no seconds score, said, never another clock's
    untimed = MultiComparison(labels, displays, [summary("a", [100.0, 120.0, 300.0])], tmp_path)
    assert untimed.time_score() is None
    text = untimed.table()
    assert "recorded before per-run timing" in text and "wins" not in text


def test_a_problem_scored_by_its_loss_reports_no_accuracy_target(tmp_path):
    # the character-level model: a classification task scored by the validation loss, where
    # "steps to 0.8 accuracy" is a target nobody reaches
    import math

    from descentlab.experiments import tuning
    from descentlab.experiments.compare import CompareSpec, Comparison, OptimizerResult
    from descentlab.experiments.compare.choices import parse_optimizer
    from descentlab.report.compare_tables import results_table, table_note

    r = OptimizerResult(
        choice=parse_optimizer("adam"), candidates=[], best=None, curve_runs=[1, 1],
        refit_runs=[1, 1], test_accuracy=tuning.t_interval([0.3, 0.31]),
        test_loss=(math.nan,) * 3, steps_to_target=[None, None],
        seconds_to_target=[None, None], final_val_accuracy=[], final_val_loss=[],
        diverged_tuning=0, diverged_final=0, setting={"lr": 0.01},
        test_accuracy_seeds={0: 0.3, 1: 0.31},
    )  # fmt: skip
    spec = CompareSpec(optimizers=["adam"], target_accuracy=0.8)  # (a target the user set)
    cmp = Comparison(spec, [r], tmp_path, "classification", "val/loss")
    assert cmp.spec.target_accuracy == 0.8 and cmp.target_accuracy is None
    for text in (cmp.table(), results_table(cmp), table_note(cmp), cmp.recommendation()):
        assert "0.8" not in text and "not reached" not in text
