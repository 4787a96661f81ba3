"""Speedups in the units practitioners use (Wen et al. 2025): the steps (and seconds) the
chosen optimizer needs to reach each other one's final validation score, over that one's,
with a bootstrap interval over the seeds and "not reached" where it never gets there; and
where the ranking at a quarter or half of the budget differs from the end's, the step at
which it changed. Checked against the same numbers worked out by hand in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

from descentlab.experiments.compare import CompareSpec, Comparison, OptimizerResult
from descentlab.experiments.compare.choices import parse_optimizer
from descentlab.experiments.compare.results import SeedCurves
from descentlab.experiments.compare.speedup import crossing_step, crossings, speedups
from descentlab.experiments.compare.stats import estimate

STEPS = np.arange(0, 101, 10)


def _opt(label, curves, seconds=None, test=0.9):
    """An optimizer whose curve runs have these validation accuracies (one row a seed) and,
    if given, these training seconds; 3 test seeds around ``test``."""
    r = OptimizerResult(
        choice=parse_optimizer(label), candidates=[], best=None, curve_runs=[1] * len(curves),
        refit_runs=[1, 1, 1], test_accuracy=(math.nan,) * 3, test_loss=(math.nan,) * 3,
        steps_to_target=[], seconds_to_target=[], final_val_accuracy=[], final_val_loss=[],
        diverged_tuning=0, diverged_final=0, setting={"lr": 0.1},
    )  # fmt: skip
    r.curves["val/accuracy"] = SeedCurves([(STEPS, np.asarray(c, float)) for c in curves])
    if seconds is not None:
        r.curves["progress/train_time"] = SeedCurves(
            [(STEPS, np.asarray(c, float)) for c in seconds]
        )
    r.test_accuracy_seeds = {10000 + i: test + 0.01 * i for i in range(3)}
    r.test_accuracy = estimate(r.test_accuracy_seeds, bounds=(0, 1)).interval
    return r


def _cmp(results, **spec):
    s = CompareSpec(optimizers=[r.choice.label for r in results], steps=100, seeds=2, **spec)
    return Comparison(s, results, "", "classification", "val/accuracy")


LINEAR = [np.linspace(0.1, 0.9, 11), np.linspace(0.1, 0.9, 11) + 0.02]


def test_the_step_speedup_is_the_baselines_steps_to_the_candidates_end_over_its_own():
    # baseline: mean curve 0.11 + 0.008 step; the candidate ends at 0.75 (mean of its two
    # seeds): the baseline gets there at step (0.75 - 0.11) / 0.008 = 80 of the candidate's 100
    base = _opt("momentum", LINEAR, seconds=[STEPS * 0.02] * 2, test=0.95)
    fast = _opt("adam", [np.linspace(0.1, 0.74, 11), np.linspace(0.1, 0.76, 11)],
                seconds=[STEPS * 0.01] * 2)  # fmt: skip
    (sp,) = speedups(_cmp([base, fast]), base)
    assert sp.target == pytest.approx(0.75)
    assert sp.steps[0] == pytest.approx(0.8) and sp.reached
    # time: the baseline's 0.02 s a step to step 80 over the candidate's 0.01 s a step x 100
    assert sp.seconds[0] == pytest.approx(80 * 0.02 / (100 * 0.01))
    assert sp.steps[1] <= sp.steps[0] <= sp.steps[2]


def test_a_target_the_baseline_never_reaches_is_not_reached():
    base = _opt("momentum", LINEAR)
    better = _opt("adam", [np.linspace(0.1, 0.95, 11)] * 2)
    (sp,) = speedups(_cmp([base, better]), base)
    assert not sp.reached and math.isinf(sp.steps[0]) and math.isnan(sp.seconds[0])


def test_the_crossing_step_is_read_linearly_between_evaluations():
    curves = np.array([[0.1, 0.5, 0.7, 0.8], [0.1, 0.2, 0.3, 0.4]])
    got = crossing_step(np.array([0, 10, 20, 30]), curves, np.array([0.6, 0.6]), maximize=True)
    assert got[0] == pytest.approx(15.0) and math.isinf(got[1])
    losses = np.array([[2.0, 1.0, 0.5]])
    assert crossing_step(np.array([0, 10, 20]), losses, 0.75, maximize=False)[0] == 15.0


def test_the_speedup_interval_is_a_bootstrap_over_the_seeds():
    # two seeds far apart: the interval spans what one or the other seed alone gives
    rng = np.random.default_rng(0)
    base = _opt("momentum", [np.linspace(0.1, 0.9, 11) + rng.normal(0, 0.01, 11) for _ in range(2)])
    cand = _opt("adam", [np.linspace(0.1, 0.6, 11), np.linspace(0.1, 0.8, 11)])
    (sp,) = speedups(_cmp([base, cand]), base)
    assert sp.steps[1] < sp.steps[0] < sp.steps[2]
    assert sp.steps[2] - sp.steps[1] > 0.1


def test_a_ranking_that_flips_during_training_is_said_with_the_step():
    # Adam ahead until step 60, Momentum ahead at the end: at 25 % and 50 % of the budget
    # the order differs; Momentum passed Adam after step 50, at step 60
    early = np.array([0.1, 0.5, 0.6, 0.65, 0.68, 0.7, 0.71, 0.72, 0.72, 0.73, 0.73])
    late = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.72, 0.78, 0.8, 0.82, 0.84])
    cmp = _cmp([_opt("adam", [early, early]), _opt("momentum", [late, late])])
    got = crossings(cmp)
    assert [c.fraction for c in got] == [0.25, 0.5]
    assert got[0].then == ("adam", "momentum") and got[0].end == ("momentum", "adam")
    assert got[0].passes == (("momentum", "adam", 60),)
    text = cmp.recommendation()
    assert "at 25% and 50% of the budget against the end" in text
    assert "Momentum passed Adam at step 60." in text


def test_the_speedups_are_in_the_recommendation_and_the_export(tmp_path):
    from descentlab.report.compare_export import write_exports

    base = _opt("momentum", LINEAR, test=0.95)
    fast = _opt("adam", [np.linspace(0.1, 0.74, 11), np.linspace(0.1, 0.76, 11)])
    cmp = _cmp([base, fast])
    cmp.run_dir = tmp_path
    text = cmp.recommendation()
    assert "Speedup over Momentum" in text and "Adam 0.80x [" in text
    import json

    _, path = write_exports(cmp, tmp_path)
    (sp,) = json.loads(path.read_text())["speedups"]
    assert sp["optimizer"] == "adam" and sp["over"] == "momentum"
    assert sp["steps"][0] == pytest.approx(0.8)


def test_a_baseline_the_user_names_sizes_the_others_too():
    base = _opt("momentum", LINEAR, test=0.95)
    adamw = _opt("adamw", [np.linspace(0.1, 0.5, 11)] * 2)
    adam = _opt("adam", [np.linspace(0.1, 0.74, 11), np.linspace(0.1, 0.76, 11)])
    cmp = _cmp([base, adamw, adam], baseline="adamw")
    text = cmp.recommendation()
    assert "Speedup over Momentum" in text and "Speedup over AdamW" in text
    with pytest.raises(ValueError, match="baseline must be one of the optimizers"):
        CompareSpec(optimizers=["sgd", "adam"], baseline="lion").validate()


# ------------------------------------------------------------------------------------------
# time speedups only between runs of one execution mode


def _timed(label, mode, per_step):
    """An optimizer whose two curve runs (ids 1 and 2) trained in ``mode`` (None: not
    recorded), ``per_step`` seconds a step."""
    r = _opt(label, LINEAR, seconds=[STEPS * per_step] * 2)
    r.curve_runs = [1, 2]
    if mode is not None:
        r.run_timings = {i: {"mode": m} for i, m in zip((1, 2), mode.split("+") * 2, strict=False)}
    return r


@pytest.mark.parametrize(
    ("base_mode", "cand_mode", "compared"),
    [
        ("stacked", "stacked", True),  # both in vectorized passes
        ("alone", "alone", True),  # both alone (--one-at-a-time)
        ("ranks", "ranks", True),
        (None, "alone", True),  # stored before modes were recorded: as before
        ("stacked", "alone", False),  # a named optimizer stacked, an imported one alone
        ("alone", "stacked", False),
        ("stacked", "ranks", False),
        ("stacked+alone", "stacked+alone", False),  # mixed within one optimizer
    ],
)
def test_time_speedups_only_between_runs_of_one_execution_mode(base_mode, cand_mode, compared):
    base, cand = _timed("adamw", base_mode, 0.02), _timed("adam", cand_mode, 0.01)
    cmp = _cmp([base, cand])
    (sp,) = speedups(cmp, base)
    assert sp.steps[0] == pytest.approx(1.0)  # steps are compared whatever the modes
    text = cmp.recommendation()
    if compared:
        assert sp.seconds[0] == pytest.approx(2.0) and not sp.withheld
        assert "in time" in text and "time not compared" not in text
    else:
        assert math.isnan(sp.seconds[0])
        words = {"stacked+alone": "mixed"}
        want = (
            f"time not compared: AdamW trained {words.get(base_mode, base_mode)}, Adam "
            f"{words.get(cand_mode, cand_mode)}; rerun with --one-at-a-time to compare times"
        )
        assert sp.withheld == want and want in text.replace("\n  ", " ")
        assert "x [" not in text.split("in steps")[-1].split(".")[0]  # no ratio in time


def test_each_optimizers_execution_mode_is_in_the_output_and_the_export(tmp_path):
    import json

    from descentlab.report.compare_export import write_exports

    cmp = _cmp([_timed("adamw", "stacked", 0.02), _timed("adam", "alone", 0.01)])
    assert "(AdamW stacked, Adam alone)" in cmp.recommendation().replace("\n  ", " ")
    _, path = write_exports(cmp, tmp_path)
    got = json.loads(path.read_text())
    assert [row["execution_mode"] for row in got["table"]] == ["stacked", "alone"]
    (sp,) = got["speedups"]
    assert sp["seconds"] == [None] * 3 and sp["time_withheld"].startswith("time not compared")


@pytest.mark.parametrize(
    ("provenance", "mode"),
    [
        ({"multirun": {"mode": "vmap", "runs": 3, "index": 0}}, "stacked"),
        ({"pruned_in_pass": True}, "stacked"),
        ({"nproc": 2}, "ranks"),
        ({"nproc": 1}, "alone"),
        ({"pid": 1}, "alone"),
        (None, "alone"),
    ],
)
def test_a_runs_execution_mode_is_read_from_its_stored_provenance(provenance, mode):
    from descentlab.experiments.compare.speedup import execution_mode

    assert execution_mode(provenance) == mode


def test_a_scale_studys_table_says_where_time_is_not_compared():
    from descentlab.experiments.scale import read_size
    from descentlab.report.scale import study_table

    cmp = _cmp([_timed("adamw", "stacked", 0.02), _timed("adam", "alone", 0.01)])
    cmp.spec.baseline = "adamw"
    size = read_size(cmp, "hidden", 16, 1000)
    assert [r.withheld != "" for r in size.rows] == [False, True]
    table = study_table([size], "hidden")
    assert "| adam | 1.00 [" in table and "| not compared: another execution mode |" in table
