"""The report a practitioner can use: every trial and run exported as CSV
and JSON and linked from the report; loss against wall-clock time beside loss against steps;
failed trials visible in the lr-sensitivity plot; a late-collapsing seed flagged; unset
settings shown as "default"; the note under the table describing the columns it has."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from _models import tiny_compare

from descentlab.experiments import tuning
from descentlab.experiments.compare import (
    CandidateResult,
    CompareSpec,
    Comparison,
    OptimizerResult,
    compare,
)
from descentlab.experiments.compare.choices import parse_optimizer
from descentlab.experiments.compare.results import SeedCurves, fmt_setting
from descentlab.report import compare_figures as CF
from descentlab.report.compare_tables import config_section, results_table, table_note
from descentlab.report.html import render_report
from descentlab.store import Store


def _opt(label, candidates=(), accs=(0.9, 0.91), curves=None):
    seeds = list(range(len(accs)))
    return OptimizerResult(
        choice=parse_optimizer(label), candidates=list(candidates), best=None,
        curve_runs=[1] * len(seeds), refit_runs=[1] * len(seeds),
        test_accuracy=tuning.t_interval(accs, bounds=(0, 1)), test_loss=(math.nan,) * 3,
        steps_to_target=[100] * len(seeds), seconds_to_target=[None] * len(seeds),
        final_val_accuracy=[], final_val_loss=[], diverged_tuning=0, diverged_final=0,
        setting={"lr": 0.01}, test_accuracy_seeds=dict(zip(seeds, accs, strict=True)),
        curves=curves or {},
    )  # fmt: skip


def _cand(lr, score, failure=None):
    status = "diverged" if failure == "diverged" else "completed"
    return CandidateResult({"lr": lr}, [score], [status], [1], [failure])


def _cmp(tmp_path, results, **spec):
    s = CompareSpec(optimizers=[r.choice.label for r in results], **spec)
    return Comparison(s, results, tmp_path, "classification", "val/accuracy", chance=0.12)


def test_failed_trials_of_two_optimizers_at_one_lr_are_both_visible(tmp_path):
    # today SGD's failed lr = 1 hid under Momentum's marker: both diverged at lr 1
    sgd = _opt("sgd", [_cand(0.1, 0.8), _cand(1.0, math.nan, "diverged")])
    mom = _opt("momentum", [_cand(0.1, 0.85), _cand(1.0, math.nan, "diverged")])
    fig = CF.lr_sensitivity_figure(_cmp(tmp_path, [sgd, mom]))
    fig.canvas.draw()
    spots = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_marker() == "x":
                xy = ax.transData.transform(np.column_stack(line.get_data()))
                spots += [tuple(np.round(p)) for p in xy]
    assert len(spots) == 2 and spots[0] != spots[1]
    assert abs(spots[0][1] - spots[1][1]) > 5  # pixels apart: neither hides the other


def test_late_collapse_is_found_flagged_and_only_late():
    steps = np.arange(0, 101, 10)
    fine = np.linspace(2.0, 0.2, 11)
    late = fine.copy()
    late[-1] = 1.5  # the loss jumps in the last evaluation
    early = fine.copy()
    early[3:] = 1.9  # rose early and stayed: a poor run, not a late collapse
    assert tuning.late_collapse(steps, fine) is None
    assert tuning.late_collapse(steps, late) == 100
    assert tuning.late_collapse(steps, early) is None
    assert tuning.late_collapse(steps, np.r_[fine[:-1], np.nan]) is None  # diverged


def test_a_late_collapsing_seed_is_flagged_in_the_table(tmp_path):
    adam = _opt("adam")
    adam.collapsed = {1: 900}
    cmp = _cmp(tmp_path, [adam])
    assert "late collapse: seed 1" in results_table(cmp)
    assert any("late collapse (seed 1 at step 900)" in w for w in cmp.warnings())


def test_unset_settings_show_as_default(tmp_path):
    assert fmt_setting({"lr": 0.01, "weight_decay": None}) == "0.01 weight_decay=default"
    text = config_section(_cmp(tmp_path, [_opt("sgd")]))
    assert "None" not in text and "<dt>cv_folds</dt><dd>default</dd>" in text


def test_the_note_under_the_table_describes_its_columns(tmp_path):
    with_target = _cmp(tmp_path, [_opt("sgd")], target_accuracy=0.8)
    note = table_note(with_target)
    assert "to 0.8 val acc: steps" in note and "seconds" not in note  # untimed runs
    assert "vs the chosen one" in note and "failed trials" in note
    no_target = _cmp(tmp_path, [_opt("sgd")], target_accuracy=None)
    assert "val acc: steps" not in table_note(no_target)
    # every column of the table is described, and nothing else
    header = results_table(with_target).split("</thead>")[0]
    for name in ("optimizer", "lr", "failed trials", "tuning val acc"):
        assert f"<b>{name}</b>" in note and name in header


_STEPS = np.array([0, 10, 20])


def _timed_curves(**clocks: list[float]) -> dict[str, SeedCurves]:
    """One seed's training loss and validation accuracy at three steps, with ``clocks``
    (``wall_time=[...]``, ``train_time=[...]``) as ``progress/`` metrics."""
    curves = {
        "train/loss": SeedCurves([(_STEPS, np.array([2.0, 1.0, 0.5]))]),
        "val/accuracy": SeedCurves([(_STEPS, np.array([0.1, 0.6, 0.8]))]),
    }
    for name, secs in clocks.items():
        curves[f"progress/{name}"] = SeedCurves([(_STEPS, np.array(secs))])
    return curves


def test_loss_against_wall_clock_beside_loss_against_steps(tmp_path):
    curves = _timed_curves(wall_time=[0.0, 1.5, 3.0])
    fig = CF.validation_overlay_figure(_cmp(tmp_path, [_opt("adam", curves=curves)]))
    clock = [ax for ax in fig.axes if "wall-clock" in ax.get_title()]
    assert len(clock) == 1 and "seconds" in clock[0].get_xaxis().get_label_text()
    (line,) = clock[0].get_lines()
    assert list(line.get_xdata()) == [0.0, 1.5, 3.0] and list(line.get_ydata()) == [2, 1, 0.5]


def test_loss_against_each_runs_own_time_where_every_run_logged_it(tmp_path):
    # a run of a vectorized pass: the pass's wall clock (3 s) is shared by its K runs; its
    # own forward/backward and optimizer time (engine.timing) is what the panel shows
    curves = _timed_curves(wall_time=[0.0, 1.5, 3.0], train_time=[0.0, 0.4, 0.8])
    cmp = _cmp(tmp_path, [_opt("adam", curves=curves)])
    assert CF.overlay_clock(cmp) == "progress/train_time"
    fig = CF.validation_overlay_figure(cmp)
    (own,) = [ax for ax in fig.axes if "own time" in ax.get_title()]
    (line,) = own.get_lines()
    assert list(line.get_xdata()) == [0.0, 0.4, 0.8]
    assert "forward/backward + optimizer" in own.get_xaxis().get_label_text()
    # an optimizer without it (a comparison stored before): the wall clock for all
    old = _timed_curves(wall_time=[0.0, 1.5, 3.0])
    two = _cmp(tmp_path, [_opt("adam", curves=curves), _opt("sgd", curves=old)])
    assert CF.overlay_clock(two) == "progress/wall_time"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    spec = CompareSpec(**tiny_compare(steps=30, lrs_per_optimizer=2, seeds=2), optimizers=["sgd"])
    result = compare(spec, root, workers=1, progress=False)
    path = render_report(result, save_figures=False)
    return result, path


def test_every_trial_and_run_is_exported_and_linked(exported):
    result, path = exported
    text = path.read_text(encoding="utf-8")
    assert 'href="trials.csv"' in text and 'href="comparison.json"' in text
    with open(path.parent / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    (sgd,) = result.results
    assert len(rows) == sgd.n_tuning_trials + sgd.n_final_trials
    assert [r["phase"] for r in rows].count("refit") == 2
    store = Store(result.store_path)
    try:
        for row in rows:  # each row is the stored run it names
            rec = store.get_run(int(row["run_id"]))
            if row["phase"] == "refit":
                assert float(row["test_accuracy"]) == rec.summary["test/accuracy"]
            if row["phase"] == "tune":
                assert float(row["val_score"]) == rec.summary["val/accuracy"]
    finally:
        store.close()
    data = json.loads((path.parent / "comparison.json").read_text())
    assert len(data["trials"]) == len(rows) and data["ranking"][0]["optimizer"] == "SGD"
    assert data["recommendation"] == result.recommendation()


def _val_curves(finals, steps=1000):
    runs = [(np.array([0, steps]), np.array([0.1, v])) for v in finals]
    return {"val/accuracy": SeedCurves(runs)}


def test_tuning_noise_is_measured_and_shown(tmp_path):
    import statistics

    # one tuning seed; the chosen setting's curve runs (same split and length, other seeds)
    # spread by 0.02, and one other setting scored within that of the chosen one
    r = _opt("adam", [_cand(0.001, 0.80), _cand(0.003, 0.835), _cand(0.01, 0.85)],
             curves=_val_curves([0.80, 0.82, 0.84]))  # fmt: skip
    r.best = 2
    cmp = _cmp(tmp_path, [r])
    noise = cmp.tuning_noise(r)
    assert noise.seeds == 3 and noise.why_not is None
    assert noise.sd == noise.seed_sd == pytest.approx(statistics.stdev([0.80, 0.82, 0.84]))
    assert noise.close == 1
    assert "± 0.0200 seed sd (3 seeds)<br>1 other setting within it" in results_table(cmp)
    assert cmp.tuning_noise_line() == (
        "tuning noise (a tuning score: validation accuracy, one seed; the sd over the chosen "
        "setting's 3 curve runs, each its tuning trial with another seed): Adam 0.02 (1 other "
        "setting within it)"
    )
    assert cmp.rows()[0]["tuning_noise"] == pytest.approx(0.02)
    # a score averaged over 2 tuning seeds moves sqrt(2) times less: no other setting within
    two = _cmp(tmp_path, [r], tune_seeds=2)
    assert two.tuning_noise(r).sd == pytest.approx(0.02 / math.sqrt(2))
    assert two.tuning_noise(r).close == 0
    assert "the mean of 2 seeds" in two.tuning_noise_line()


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"tune_steps": 200}, "its tuning trials ran 200 steps and its curve runs 1000"),
        ({"cv_folds": 3}, "its tuning scores are 3-fold means, its curve runs one split"),
    ],
)
def test_tuning_noise_is_not_measured_where_a_curve_run_is_another_trial(tmp_path, spec, why):
    r = _opt("adam", [_cand(0.001, 0.80), _cand(0.01, 0.85)], curves=_val_curves([0.8, 0.9]))
    r.best = 1
    cmp = _cmp(tmp_path, [r], **spec)
    assert cmp.tuning_noise(r).why_not.startswith(why)
    line = cmp.tuning_noise_line()
    assert line.startswith(f"tuning noise: not measured ({why}")
    assert line.endswith("; each setting was scored on one seed (--tune-seeds 2 averages 2)")
    assert "noise not measured: " + why in results_table(cmp)
    assert cmp.rows()[0]["tuning_noise"] is None


def test_a_plain_compare_prints_its_tuning_noise(tmp_path, capsys):
    # `descentlab compare` without --problems tunes on one seed: it measures and shows how
    # much one tuning score moves with the seed
    import statistics

    from _models import COMPARE, run_cli

    argv = [*COMPARE, "--seeds", "3", "--runs-dir", tmp_path, "--json", "--workers", "1"]
    argv[argv.index("--tune-steps") + 1] = "6"  # as long as the final runs (--steps 6)
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    printed = json.loads(out)
    line = printed["tuning_noise"]
    assert line.startswith("tuning noise (a tuning score: validation accuracy, one seed;")
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    store = Store(run_dir / "descentlab.sqlite")
    try:
        runs = [r for r in store.list_runs() if r.status == "completed"]
        for row, label in zip(printed["rows"], ("sgd", "momentum"), strict=True):
            lr = row["best"]["lr"]
            mine = [r for r in runs if r.config.get("hyper", {}).get("lr") == lr]
            curve = sorted(
                (r.config["seed"], r.summary["val/accuracy"]) for r in mine
                if r.name == f"curve/{label}"
            )  # fmt: skip
            (tune,) = [r for r in mine if r.name == f"tune/{label}/holdout"]
            assert tune.summary["val/accuracy"] == row["val_score"]
            assert [s for s, _ in curve] == [0, 1, 2]
            # the chosen setting's tuning trial (seed 0) scored what its seed-0 curve run did
            assert row["val_score"] == curve[0][1]
            sd = statistics.stdev(v for _, v in curve)
            assert row["tuning_noise"] == pytest.approx(sd, abs=1e-12)
            assert f"{row['optimizer']} {sd:.3g}" in line
    finally:
        store.close()


# -- what ran, said right ------------------------------------------------------------------


def _ran(label, test_seeds, failed=0, setting=None):
    """An optimizer as a sequential comparison leaves it: ``test_seeds`` test seeds, the
    first ``failed`` of them failed."""
    r = _opt(label, accs=tuple(0.85 + 0.001 * i for i in range(test_seeds)))
    r.test_accuracy_seeds = {10000 + s: v for s, v in r.test_accuracy_seeds.items()}
    r.test_failures = {10000 + s: "chance" for s in range(failed)}
    r.failed_final = failed
    r.refit_runs = [1] * test_seeds
    r.setting = setting or {"lr": 0.01}
    return r


def test_the_header_counts_the_test_seeds_each_optimizer_ran(tmp_path):
    # the header said "2 seeds each" where the optimizers got 16, 16 and 8 test seeds
    from descentlab.report.html import header

    cmp = _cmp(tmp_path, [_ran("sgd", 16), _ran("adam", 16), _ran("momentum", 8, failed=2)],
               seeds=2)  # fmt: skip
    _, sub = header(cmp)
    assert "2 curve seeds and 8-16 test seeds each (as run)" in sub
    assert "2 seeds each" not in sub


@pytest.mark.parametrize(
    ("problem", "name", "title"),
    [
        ("/home/me/work/examples/diabetes.py:make_problem", None, "diabetes"),
        ("/home/me/work/examples/diabetes.py:make_problem", "Diabetes progression",
         "Diabetes progression"),
        ("mnist1d", None, "MNIST-1D"),
    ],
)  # fmt: skip
def test_the_title_is_the_problems_name(tmp_path, problem, name, title):
    # the title was the problem file's absolute path
    from types import SimpleNamespace

    from descentlab.report.html import header

    cmp = _cmp(tmp_path, [_ran("sgd", 5)], problem=problem)
    cmp.record = SimpleNamespace(provenance={"problem_name": name, "model": "mlp"})
    assert header(cmp)[0].startswith(f"Optimizer comparison: {title}, ")
    assert "/home/me" not in header(cmp)[0]


def test_the_console_table_fits_100_columns(tmp_path):
    # the lr column held the whole setting (82 characters): a terminal wrapped at ~230
    setting = {"lr": 0.0281, "beta1": 0.923, "beta2": 0.997, "weight_decay": 2.04e-05,
               "warmup": 0.1, "schedule": "constant"}  # fmt: skip
    labels = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"]
    results = [_ran(x, 40, failed=3, setting=setting) for x in labels]
    fixed = _ran("adadelta@default", 10)
    fixed.choice = parse_optimizer("adadelta@default")
    fixed.setting = {"lr": 1.0}
    for r in results:
        r.steps_to_target = [252, 260, None, 300, 250]
        r.seconds_to_target = [0.1, 0.1, None, 0.1, 0.1]
    cmp = _cmp(tmp_path, [*results, fixed], target_accuracy=0.8, prune="bounds")
    text = cmp.table()
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert "beta1=0.923" in text  # the settings on lines of their own
    assert "Adadelta (default lr)" in text and "3/40" in text  # the failed test seeds


def test_an_objectives_report_is_titled_by_its_function_and_file(tmp_path):
    # its title read "objective_loop, None": the file's stem and a model it does not have
    from types import SimpleNamespace

    from descentlab.report.html import header

    objective = {"form": "function", "ref": "/home/me/examples/objective_loop.py:train"}
    cmp = _cmp(tmp_path, [_ran("sgd", 5)], objective=objective)
    cmp.record = SimpleNamespace(provenance={"model": None})
    assert header(cmp)[0] == "Optimizer comparison: train (objective_loop.py)"


def test_no_choice_is_made_on_the_test_set(tmp_path):
    # without a validation score it chose the best test mean ("chosen on its test accuracy")
    cmp = _cmp(tmp_path, [_ran("sgd", 5), _ran("adam", 5)])
    assert cmp.ranking()[0].chosen_on == "test"
    text = cmp.recommendation()
    assert text == cmp.headline() and text.startswith(
        "No recommendation: no curve run has a validation score to choose on, and a choice "
        "is never made on the test set"
    )
    assert "use " not in text
