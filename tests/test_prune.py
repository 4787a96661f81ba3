"""Pruning of tuning trials (``CompareSpec(prune="asha")``, ``descentlab compare --prune``)."""

from __future__ import annotations

import json
import math
import random
import sys

import optuna
import pytest
import torch

from descentlab.cli import main
from descentlab.experiments.compare import CompareSpec, compare, load_comparison
from descentlab.experiments.compare.pruning import REDUCTION, decide, rung_steps
from descentlab.problems import data as datasets
from descentlab.report.compare_export import write_exports
from descentlab.report.compare_tables import trials_section
from descentlab.store import Store

# Short, so that the whole protocol runs in a few seconds in this process: 8 random learning
# rates of Adam, 48-step tuning trials judged at steps 3 and 12.
PRUNED = dict(
    problem="moons",
    problem_options={"n_samples": 300},
    model="mlp",
    model_options={"hidden": 8},
    optimizers=["adam"],
    batch_size=32,
    steps=48,
    search="random",
    lrs_per_optimizer=8,
    refine=False,
    seeds=1,
    target_accuracy=None,
    landscapes=(),
    prune="asha",
)


def _pruned_set(result):
    return [
        (c.setting["lr"], c.statuses, c.pruned_step) for r in result.results for c in r.candidates
    ]


# ------------------------------------------------------------------------------------------
# the decisions: Optuna's own pruner, in a fixed order


def _optuna_sequential(scores, rungs, maximize):
    """The reference: Optuna used as its documentation shows, trials one after another, each
    reporting at every step of a trial of ``4 * rungs[-1]`` steps (the score of the rung it
    has reached) and stopped when ``should_prune()`` says so."""
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=rungs[0], reduction_factor=REDUCTION
        ),
    )
    pruned = {}
    for i, row in enumerate(scores):
        trial = study.ask()
        stop = None
        for step in range(1, REDUCTION * rungs[-1]):  # (the full length is not judged)
            k = max((j for j, r in enumerate(rungs) if r <= step), default=None)
            if k is None:
                continue
            trial.report(row[k], step)
            if trial.should_prune():
                stop = k
                break
        pruned[i] = stop
        study.tell(trial, state=optuna.trial.TrialState.PRUNED if stop is not None else None,
                   values=None if stop is not None else row[-1])  # fmt: skip
    return pruned


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("maximize", [True, False])
def test_decisions_are_optunas_own_with_trials_in_order(seed, maximize):
    rng = random.Random(seed)
    rungs = rung_steps(64)
    scores = [[rng.random() + 0.1 * k for k in range(len(rungs))] for _ in range(13)]
    if seed == 0:  # ties: equal scores at a rung
        scores = [[round(v, 1) for v in row] for row in scores]
    got = decide(len(scores), rungs, lambda i, k: scores[i][k], maximize=maximize)
    want = _optuna_sequential(scores, rungs, maximize)
    states = [v.state for v in got.verdicts]
    assert states == ["full" if want[i] is None else "pruned" for i in range(len(scores))]
    assert [v.rung for v in got.verdicts] == [want[i] for i in range(len(scores))]
    assert got.needs == []
    assert "full" in states and "pruned" in states


@pytest.mark.parametrize("seed", range(5))
def test_decisions_do_not_depend_on_the_order_scores_arrive_in(seed):
    """Scores arrive in a random order (workers finish when they finish): every partial view
    gives verdicts consistent with the final ones, and the final ones are the same."""
    rng = random.Random(seed)
    rungs = rung_steps(160)
    n = 10
    scores = [[rng.random() for _ in rungs] for _ in range(n)]
    final = decide(n, rungs, lambda i, k: scores[i][k], maximize=True).verdicts
    known: set[tuple[int, int]] = set()
    for _ in range(100):
        d = decide(n, rungs, lambda i, k: scores[i][k] if (i, k) in known else None,
                   maximize=True)  # fmt: skip
        for i, v in enumerate(d.verdicts):
            if v.state != "waiting":
                assert v == final[i]
        if not d.needs:
            break
        known.add(rng.choice(d.needs))  # one more rung run finished
    assert d.verdicts == final


def test_a_diverged_rung_is_a_failure_not_a_pruning():
    nan = math.nan
    d = decide(4, (2, 8), lambda i, k: [[0.5, 0.6], [nan, nan], [0.9, 0.9], [0.1, 0.1]][i][k],
               maximize=True)  # fmt: skip
    assert [v.state for v in d.verdicts] == ["full", "diverged", "full", "pruned"]


# ------------------------------------------------------------------------------------------
# the protocol


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    root = tmp_path_factory.mktemp("pruned")
    spec = CompareSpec(**PRUNED)
    return root, spec, compare(spec, root, workers=1, progress=False)


def test_a_pruned_trial_is_counted_and_labelled_pruned_never_failed(pruned, tmp_path):
    _, _, result = pruned
    (adam,) = result.results
    # every setting is tried: the equal budget is kept
    assert len(adam.candidates) == 8 and adam.n_tuning_trials == 8
    statuses = [s for c in adam.candidates for s in c.statuses]
    assert statuses.count("pruned") == adam.pruned_tuning >= 1
    assert adam.failed_tuning == sum(c.failed for c in adam.candidates)
    for c in adam.candidates:
        if c.pruned:
            assert c.pruned_step in rung_steps(48) and not c.failed
            assert math.isnan(c.score) and c.failures == [None]
    # the console table and its rows
    assert f"0/8 ({adam.pruned_tuning} pruned)" in result.table()  # failed: tune, pruned
    assert result.rows()[0]["pruned_tuning"] == adam.pruned_tuning
    assert "pruned by ASHA" in result.budget()
    # comparison.json: the spec carries the pruner; the trials say pruned
    _, path = write_exports(result, tmp_path)
    data = json.loads(path.read_text())
    assert data["spec"]["prune"] == "asha"
    tune = [t for t in data["trials"] if t["phase"] == "tune"]
    assert sum(t["status"] == "pruned" for t in tune) == adam.pruned_tuning
    assert all(t["failure"] is None for t in tune if t["status"] == "pruned")
    # the store: the run a setting was stopped with says so
    store = Store(result.store_path)
    for c in adam.candidates:
        if c.pruned:
            note = store.get_run(c.run_ids[0]).provenance["pruned"]
            assert note["step"] == c.pruned_step and note["score"] == c.pruned_score
            assert store.get_run(c.run_ids[0]).config["steps"] == c.pruned_step
    store.close()
    # the report's table of settings
    assert "pruned at step" in trials_section(result)
    # read back (descentlab report) the same
    again = load_comparison(result.run_dir)
    assert _pruned_set(again) == _pruned_set(result)


def test_the_chosen_setting_is_retrained_in_full(pruned):
    _, spec, result = pruned
    (adam,) = result.results
    best = adam.candidates[adam.best]
    assert best.pruned_step is None and best.statuses == ["completed"]
    store = Store(result.store_path)
    tuned = store.get_run(best.run_ids[0])
    assert tuned.config["steps"] == spec.tune_length == tuned.summary["steps"]
    for rid in adam.curve_runs + adam.refit_runs:
        run = store.get_run(rid)
        assert run.config["steps"] == spec.steps == run.summary["steps"] == 48
    store.close()


def test_pruning_decides_on_validation_data_only(pruned, tmp_path):
    """Poisoning the test split (labels flipped, inputs replaced by noise) changes no decision
    and no choice; only the refit runs' test numbers move."""
    _, spec, clean = pruned
    splits = datasets.load("moons", n_samples=300)
    poisoned = datasets.load("moons", n_samples=300)
    poisoned._x_test = torch.randn_like(poisoned._x_test) * 100
    poisoned._y_test = 1 - poisoned._y_test
    runs = [compare(spec, tmp_path / name, workers=1, progress=False, data=d)
            for name, d in (("clean", splits), ("poisoned", poisoned))]  # fmt: skip
    assert _pruned_set(runs[0]) == _pruned_set(runs[1]) == _pruned_set(clean)
    assert runs[0].results[0].best_setting == runs[1].results[0].best_setting
    assert runs[0].results[0].test_accuracy != runs[1].results[0].test_accuracy


@pytest.mark.process
@pytest.mark.slow
def test_the_same_config_prunes_the_same_trials_in_worker_processes(pruned, tmp_path):
    _, spec, here = pruned
    there = compare(spec, tmp_path, workers=2, progress=False)
    assert _pruned_set(there) == _pruned_set(here)
    assert there.rows(timings=False) == here.rows(timings=False)


# ------------------------------------------------------------------------------------------
# the spec and the command line


def test_the_spec_carries_prune_and_unpruned_specs_keep_their_digest():
    plain = CompareSpec(**{**PRUNED, "prune": None})
    assert "prune" not in plain.to_dict()  # folders made before the field keep their names
    spec = CompareSpec(**PRUNED)
    assert spec.to_dict()["prune"] == "asha" and spec.digest() != plain.digest()
    assert CompareSpec.from_dict(spec.to_dict()).digest() == spec.digest()
    assert spec.plan().rungs == (3, 12) and plain.plan().rungs == ()
    with pytest.raises(ValueError, match="prune must be None or one of bounds, asha, got 'median'"):
        CompareSpec(**{**PRUNED, "prune": "median"}).validate()


def test_prune_without_optuna_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna fails
    code = main(["compare", "--problem", "moons", "--prune", "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "needs Optuna" in err[0] and "descentlab[tune]" in err[0]
    assert not (tmp_path / "r").exists()


def test_a_comparisons_tuning_trials_are_made_once_per_round_and_rung(monkeypatch):
    # The session asks for its tuning trials after every outcome (each rung's too, when it
    # prunes); making them (configs, records, keys, groups) is done once for each.
    from descentlab.experiments.compare import planning

    made = []
    real = planning._made
    monkeypatch.setattr(planning, "_made", lambda *a: made.append(a[0]) or real(*a))
    plan = CompareSpec(**PRUNED).plan()
    choice = plan.choices[0]
    first = [planning.tuning_trials(plan, choice, rung=k) for k in (None, 0, 1)]
    assert len(made) == 3
    for _ in range(5):
        again = [planning.tuning_trials(plan, choice, rung=k) for k in (None, 0, 1)]
        assert again == first and again is not first
    assert len(made) == 3
    other = CompareSpec(**{**PRUNED, "steps": 64}).plan()  # another plan: its own trials
    assert planning.tuning_trials(other, other.choices[0])[0].config.steps == 64
    assert len(made) == 4


# ------------------------------------------------------------------------------------------
# rung scores that cannot tell the settings apart decide nothing


def test_rung_scores_at_chance_prune_nothing():
    # The case of a ResNet-20 comparison at a small budget: every rung score 0.10-0.13 for
    # 10 classes. ASHA in a fixed order then keeps its first setting and prunes the rest, so
    # the only full-length candidate was the first, untuned point; at chance nothing is cut.
    rng = random.Random(3)
    scores = [[[0.1 + 0.03 * rng.random() for _ in range(2)] for _ in rung_steps(60)]
              for _ in range(8)]  # fmt: skip
    d = decide(8, rung_steps(60), lambda i, k: scores[i][k], maximize=True, chance=0.1)
    assert [v.state for v in d.verdicts] == ["full"] * 8
    assert len(d.notes) == 2 and all("at chance" in n and "none pruned" in n for n in d.notes)
    # the same scores without the chance level, as single numbers: ASHA cuts most of them
    means = [[sum(r) / 2 for r in row] for row in scores]
    asha = decide(8, rung_steps(60), lambda i, k: means[i][k], maximize=True)
    assert [v.state for v in asha.verdicts].count("pruned") >= 5 and not asha.notes


def test_rung_scores_within_their_noise_prune_nothing():
    # Each setting's scores over its folds and tuning seeds: the settings' means differ by
    # less than the seeds make them vary -- no decision; clearly apart -- ASHA decides.
    rng = random.Random(5)
    noisy = [[[0.7 + rng.gauss(0, 0.05) for _ in range(3)] for _ in range(2)] for _ in range(8)]
    d = decide(8, (3, 12), lambda i, k: noisy[i][k], maximize=True, chance=0.5)
    assert [v.state for v in d.verdicts] == ["full"] * 8
    assert all("within their noise" in n for n in d.notes) and len(d.notes) == 2
    apart = [[[0.95 - 0.05 * i + rng.gauss(0, 0.002) for _ in range(3)] for _ in range(2)]
             for i in range(8)]  # fmt: skip
    d = decide(8, (3, 12), lambda i, k: apart[i][k], maximize=True, chance=0.5)
    means = [[sum(r) / 3 for r in row] for row in apart]
    want = decide(8, (3, 12), lambda i, k: means[i][k], maximize=True)
    assert d.verdicts == want.verdicts and not d.notes
    assert "pruned" in [v.state for v in d.verdicts]


def test_a_rung_decides_once_every_score_at_it_is_known():
    scores = [[[0.5 + 0.05 * i, 0.5 + 0.05 * i + 0.001] for _ in range(2)] for i in range(6)]
    d = decide(6, (3, 12), lambda i, k: None if (i, k) == (5, 0) else scores[i][k],
               maximize=True, chance=0.0)  # fmt: skip
    assert [v.state for v in d.verdicts] == ["waiting"] * 6 and d.needs == [(5, 0)]


def test_the_protocol_prunes_nothing_at_chance_and_says_so_once(tmp_path, monkeypatch):
    # Through the comparison: a rung whose scores cannot tell the settings apart (forced
    # here) prunes no setting -- every one trains its full trial -- and one line says so per
    # rung, however often the session looks at the rung.
    from descentlab.experiments.compare import pruning

    monkeypatch.setattr(pruning, "indistinguishable", lambda *a, **k: "forced")
    with pytest.warns(RuntimeWarning) as caught:
        result = compare(CompareSpec(**PRUNED), tmp_path, workers=1, progress=False)
    (adam,) = result.results
    assert adam.pruned_tuning == 0 and all(c.pruned_step is None for c in adam.candidates)
    lines = [str(w.message) for w in caught if "pruning" in str(w.message)]
    assert len(lines) == 2, lines
    assert all("cannot tell them apart (forced); none pruned there" in x for x in lines)
    assert all("\n" not in x and "train on" in x for x in lines)


def test_rung_runs_are_scored_on_validation_only_and_measure_no_training_split(pruned):
    # a rung's score is a validation score; measuring the whole training split at each rung
    # run's start and end was most of a short rung run's time (ResNet-20: 3.6 s of training
    # in 38-54 s)
    _, _, result = pruned
    store = Store(result.store_path)
    rungs = [r for r in store.list_runs() if "/rung" in (r.name or "")]
    assert rungs
    for run in rungs:
        assert run.config["evaluate_train"] is False
        names = set(store.metrics(run.id))
        assert "val/accuracy" in names and not {"train/loss", "train/accuracy"} & names
    names = [(r, r.name or "") for r in store.list_runs()]
    full = [r for r, name in names if name.startswith("tune/") and "/rung" not in name]
    assert full and all("evaluate_train" not in r.config for r in full)  # as unpruned
    store.close()


def test_a_setting_within_its_noise_of_the_cut_goes_on():
    # The rung tells the settings apart (one clearly ahead, most clearly behind), but setting
    # 4 is behind the one ahead by less than the seeds make a setting's mean vary: Optuna
    # alone would cut it (the eventual winner, cut on noise); it goes on.
    means = [0.9, 0.5, 0.5, 0.5, 0.895, 0.5, 0.5, 0.5]
    rows = [[m - 0.01, m, m + 0.01] for m in means]  # three seeds each, spread 0.01
    d = decide(8, (3,), lambda i, k: rows[i], maximize=True, chance=0.1)
    alone = decide(8, (3,), lambda i, k: means[i], maximize=True)
    assert [v.state for v in alone.verdicts][4] == "pruned"
    assert [v.state for v in d.verdicts] == ["full", *["pruned"] * 3, "full", *["pruned"] * 3]
    assert not d.notes  # the rung decided: it only kept what its noise cannot cut
    # the same rule for a loss (lower is better)
    losses = [[1 - v for v in row] for row in rows]
    d = decide(8, (3,), lambda i, k: losses[i], maximize=False)
    assert [v.state for v in d.verdicts] == ["full", *["pruned"] * 3, "full", *["pruned"] * 3]


def test_the_benchmark_counts_each_optimizers_unpruned_best_that_reached_the_full_length():
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "prune.py"
    spec = importlib.util.spec_from_file_location("prune_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tuned, fixed = SimpleNamespace(fixed_lr=False), SimpleNamespace(fixed_lr=True)
    full = {
        "chosen": {
            "a": {"best": 2, "choice": tuned},
            "b": {"best": 0, "choice": tuned},
            "c": {"best": 1, "choice": fixed},
            "d": {"best": None, "choice": tuned},
        }
    }
    pruned = {"chosen": {"a": {"stopped": [True, True, False]},
                         "b": {"stopped": [True, False, False]},
                         "c": {"stopped": [True, True]}, "d": {"stopped": [True]}}}  # fmt: skip
    assert bench.survived(full, pruned) == (1, 2)  # a's best went on, b's was cut


def test_the_rung_benchmark_replays_the_protocols_decisions_on_curves():
    # benchmarks/prune_rungs.py: the best setting (slow start, best at the end) is cut by
    # ASHA alone at 1/16 of its trial; within the seeds' spread, the protocol keeps it. Steps
    # are counted as runs x 16ths of a trial, restarted rung runs cost their steps again.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "prune_rungs.py"
    spec = importlib.util.spec_from_file_location("prune_rungs", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def curve(early, final, offset):
        return [early + offset] * 4 + [final + offset] * 13

    settings = [[curve(0.6, 0.8, d) for d in (-0.05, 0.05)] for _ in range(7)]
    settings.append([curve(0.58, 0.9, d) for d in (-0.05, 0.05)])  # the eventual best
    data = {"maximize": True, "chance": 0.1, "opts": {"adam": settings}}
    kept, total, full, restart, inpass = bench.replay(data, (1,), noise=False)
    assert (kept, total) == (0, 1) and full == 8 * 2 * 16
    assert inpass < restart < full  # a cut setting trained 1/16; the others 1/16 + 16/16
    kept, total, *_ = bench.replay(data, (1,), noise=True)
    assert (kept, total) == (1, 1)


# ------------------------------------------------------------------------------------------
# the confidence-bound rule (--prune bounds, the default of --prune)


def test_the_bounds_rule_cuts_only_what_is_clearly_worse_than_the_best():
    # two scores each (folds x seeds), spread s = 0.0099: the one-sided 1 % margin of a
    # difference is 2.326 * s = 0.023 (the noise rule's 5 % margin: 1.645 * s = 0.016)
    scores = [
        [0.893, 0.907],  # the best (0.90)
        [0.873, 0.887],  # 0.02 behind: within the 1 % margin of the best: goes on
        [0.593, 0.607],  # clearly worse: cut at rung 0
        [0.843, 0.857],  # 0.05 behind: outside the margin: cut
        [0.873, 0.887],  # as the second
    ]
    d = decide(len(scores), (4, 16), lambda i, k: scores[i], maximize=True, rule="bounds")
    assert [v.state for v in d.verdicts] == ["full", "full", "pruned", "pruned", "full"]
    assert [v.rung for v in d.verdicts] == [None, None, 0, 0, None]
    # ASHA keeps the top quarter (and, by the noise rule, what is within 0.016 of its
    # cutoff): it cuts the settings 0.02 behind the best
    asha = decide(len(scores), (4, 16), lambda i, k: scores[i], maximize=True)
    assert [v.state for v in asha.verdicts] == ["full", "pruned", "pruned", "pruned", "pruned"]
    # a loss: the same, lower is better
    losses = [[-a for a in row] for row in scores]
    d = decide(len(losses), (4, 16), lambda i, k: losses[i], maximize=False, rule="bounds")
    assert [v.state for v in d.verdicts] == ["full", "full", "pruned", "pruned", "full"]


def test_the_bounds_rule_keeps_the_at_chance_and_within_noise_rules():
    at_chance = [[0.11, 0.12], [0.10, 0.10], [0.115, 0.12]]
    d = decide(3, (4, 16), lambda i, k: at_chance[i], maximize=True, chance=0.1, rule="bounds")
    assert all(v.state == "full" for v in d.verdicts) and len(d.notes) == 2
    noisy = [[0.5, 0.9], [0.6, 0.8], [0.4, 0.95]]
    d = decide(3, (4, 16), lambda i, k: noisy[i], maximize=True, rule="bounds")
    assert all(v.state == "full" for v in d.verdicts) and "within their noise" in d.notes[0]
    # one score per setting: no spread to bound by; the rung decides as ASHA does
    single = [0.5, 0.9, 0.2, 0.8, 0.3, 0.95]
    got = decide(6, (4, 16), lambda i, k: single[i], maximize=True, rule="bounds")
    asha = decide(6, (4, 16), lambda i, k: single[i], maximize=True)
    assert got.verdicts == asha.verdicts


def test_a_loss_of_inf_at_a_rung_is_a_divergence():
    losses = [[1.0, 1.1], [math.inf, 1.0], [1.2, 1.3]]
    for rule in ("asha", "bounds"):
        d = decide(3, (4, 16), lambda i, k: losses[i], maximize=False, rule=rule)
        assert d.verdicts[1].state == "diverged"


def test_prune_defaults_to_the_bounds_rule_at_an_eighth_and_a_half():
    from descentlab.cli import build_parser
    from descentlab.experiments.compare.search_space import _pruned

    args = build_parser().parse_args(["compare", "--problem", "moons", "--prune"])
    assert args.prune == "bounds"
    assert rung_steps(400, "bounds") == (50, 200) and rung_steps(7, "bounds") == ()
    spec = CompareSpec(**{**PRUNED, "prune": "bounds"})
    assert spec.plan().rungs == (6, 24)
    assert "1/8 and 1/2" in _pruned(spec) and "one-sided 1% margin" in _pruned(spec)
