"""Tests for the comparison protocol (descentlab.experiments.compare / tuning / trials)."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from descentlab import optim
from descentlab.cli import main
from descentlab.experiments import tuning
from descentlab.experiments.compare import (
    CompareSpec,
    OptimizerChoice,
    compare,
    load_comparison,
    parse_optimizer,
    parse_rule,
)
from descentlab.experiments.trial import MonitoredOptimizer
from descentlab.problems import data as datasets
from descentlab.store import Store

# A comparison that runs in a few seconds: 2 optimizers x 3 learning rates, 2 seeds.
SMALL = dict(
    problem="moons",
    problem_options={"n_samples": 300},
    model="mlp",
    model_options={"hidden": 16},
    optimizers=["sgd", "adam"],
    batch_size=16,
    steps=120,
    tune_steps=60,
    lrs_per_optimizer=3,
    seeds=2,
    target_accuracy=0.8,
    landscapes=(),
)

SMALL_ARGV = [
    "--problem", "moons", "--problem-option", "n_samples=300", "--model", "mlp",
    "--model-option", "hidden=16", "--optimizers", "sgd,adam", "--batch-size", "16",
    "--steps", "120", "--tune-steps", "60", "--lr-trials", "3", "--seeds", "2",
    "--target-accuracy", "0.8", "--landscapes", "none",
]  # fmt: skip


# ------------------------------------------------------------------------------------------
# search space, selection, statistics


@pytest.mark.parametrize(
    ("low", "high", "n", "expected"),
    [
        # closed form: 10 ** (a + k (b - a) / (n - 1))
        (1e-4, 1e-2, 5, [1e-4, 10**-3.5, 1e-3, 10**-2.5, 1e-2]),
        (1e-3, 1e-1, 3, [1e-3, 1e-2, 1e-1]),
        (0.5, 0.5, 2, [0.5, 0.5]),
        (1e-2, 1.0, 1, [0.1]),  # one point: the geometric mean
    ],
)
def test_log_grid_matches_closed_form(low, high, n, expected):
    got = tuning.log_grid(low, high, n)
    np.testing.assert_allclose(got, expected, rtol=2e-3)  # 3 significant digits


def test_grid_candidates_cross_other_hyperparameters():
    got = tuning.candidates((1e-3, 1e-1), trials=3, space={"momentum": [0.5, 0.9]})
    expected = [{"lr": lr, "momentum": m} for lr in (1e-3, 1e-2, 1e-1) for m in (0.5, 0.9)]
    assert got == expected


def test_random_search_is_seeded_and_log_uniform():
    a = tuning.candidates((1e-4, 1.0), search="random", trials=400, seed=3,
                          space={"momentum": [0.5, 0.9], "weight_decay": (1e-5, 1e-2)})  # fmt: skip
    b = tuning.candidates((1e-4, 1.0), search="random", trials=400, seed=3,
                          space={"momentum": [0.5, 0.9], "weight_decay": (1e-5, 1e-2)})  # fmt: skip
    assert a == b
    lrs = np.log10([c["lr"] for c in a])
    assert lrs.min() >= -4 - 1e-9 and lrs.max() <= 1e-9
    # log10(lr) ~ U(-4, 0): Kolmogorov-Smirnov against the uniform distribution.
    assert stats.kstest(lrs, stats.uniform(loc=-4, scale=4).cdf).pvalue > 0.01
    assert {c["momentum"] for c in a} == {0.5, 0.9}
    wd = np.log10([c["weight_decay"] for c in a])
    assert stats.kstest(wd, stats.uniform(loc=-5, scale=3).cdf).pvalue > 0.01


@pytest.mark.parametrize(
    ("search", "space", "n"),
    [
        ("grid", {}, 1),
        ("grid", {}, 4),
        ("grid", {"momentum": [0.5, 0.9]}, 3),
        ("random", {}, 5),
        ("random", {"momentum": [0.5, 0.9], "weight_decay": (1e-5, 1e-2)}, 6),
    ],
)
def test_a_checked_first_round_is_what_candidates_gives(search, space, n):
    """A plan's first round (its range, count, search and space checked with the spec) is
    made unchecked: a grid is its closed form (log-spaced, 3 significant digits, crossed with
    the space's lists), a random search the checked candidates' draws for the same seed; the
    grid's step in decades its closed form."""
    lo, hi = 2e-4, 0.3
    got = tuning.candidates_of(lo, hi, n, search=search, space=space, seed=11)
    if search == "grid":
        lrs = [math.sqrt(lo * hi)] if n == 1 else list(np.geomspace(lo, hi, n))
        combos = [dict(zip(space, c, strict=True)) for c in itertools.product(*space.values())]
        want = [{"lr": float(f"{lr:.2e}"), **c} for lr in lrs for c in combos]
    else:
        want = tuning.candidates((lo, hi), search=search, trials=n, space=space, seed=11)
    assert got == want
    step = math.log10(hi / lo) / (n - 1) if n > 1 else 1.0
    assert tuning.grid_step_of(lo, hi, n) == pytest.approx(step, rel=1e-12)
    assert tuning.grid_step(lo, hi, n) == tuning.grid_step_of(lo, hi, n)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_range": (0.0, 1.0)}, "lr_range must satisfy 0 < low <= high"),
        ({"lr_range": (1.0, 0.1)}, "lr_range must satisfy 0 < low <= high"),
        ({"trials": 0}, "trials must be a positive integer, got 0"),
        ({"search": "bayes"}, "search must be one of grid, random, got 'bayes'"),
        ({"space": {"momentum": (0.5, 0.9)}}, "ranges need search='random'"),
        ({"space": {"momentum": []}}, "must be a non-empty list"),
        ({"space": {"lr": [0.1]}}, "must not contain 'lr'"),
    ],
)
def test_candidates_bad_input(kwargs, message):
    args = {"lr_range": (1e-3, 1e-1), **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tuning.candidates(args.pop("lr_range"), **args)


@pytest.mark.parametrize(
    ("scores", "maximize", "expected"),
    [
        ([0.8, 0.9, 0.85], True, 1),
        ([0.8, 0.9, 0.9], True, 1),  # ties: the first (smallest lr on a grid)
        ([0.3, 0.1, 0.2], False, 1),
        ([float("nan"), 0.5, float("inf")], True, 1),  # diverged never wins
        ([float("nan"), float("nan")], True, None),
        ([None, 0.2], False, 1),
    ],
)
def test_select_best(scores, maximize, expected):
    assert tuning.select_best(scores, maximize=maximize) == expected


@pytest.mark.parametrize(
    ("steps", "metric", "target", "seconds", "maximize", "expected"),
    [
        ([0, 10, 20, 30], [0.1, 0.5, 0.8, 0.9], 0.8, [0, 1, 2, 3], True, (20, 2.0)),
        ([0, 10, 20], [0.1, 0.5, 0.7], 0.8, [0, 1, 2], True, (None, None)),
        ([0, 5, 10], [2.0, 0.4, 0.2], 0.5, None, False, (5, None)),
        ([0, 5, 10], [0.1, float("nan"), 0.95], 0.9, [0.0, 0.5, 1.0], True, (10, 1.0)),
        ([0], [1.0], 1.0, [0.0], True, (0, 0.0)),
    ],
)
def test_time_to_target(steps, metric, target, seconds, maximize, expected):
    got = tuning.time_to_target(steps, metric, target, seconds=seconds, maximize=maximize)
    assert got == expected


def test_fold_splits_partition_the_training_data_and_hold_no_test_data():
    splits = datasets.load("moons", n_samples=300)
    folds = tuning.fold_splits(splits, 4, seed=0)
    x_all, y_all = splits.train_val()
    assert len(folds) == 4
    val_rows = torch.cat([f.x_val for f in folds])
    # Every training example is validated exactly once.
    assert sorted(map(tuple, val_rows.tolist())) == sorted(map(tuple, x_all.tolist()))
    for f in folds:
        assert f.n_train + f.n_val == len(x_all)
        assert f.n_test == 0 and f.sealed
        # Stratified: class proportions within one example of the whole.
        for k in (0, 1):
            expected = (y_all == k).float().mean() * f.n_val
            assert abs(int((f.y_val == k).sum()) - float(expected)) <= 1.0


def test_derived_splits_hold_no_test_data_except_the_sealed_refit_split():
    splits = datasets.load("moons", n_samples=300)
    hold = tuning.holdout_splits(splits)
    assert hold.n_test == 0 and hold.sealed and torch.equal(hold.x_val, splits.x_val)
    refit = tuning.refit_splits(splits)
    assert refit.n_train == splits.n_train + splits.n_val and refit.n_test == splits.n_test
    with pytest.raises(datasets.TestSetSealedError):
        _ = refit.x_test


# ------------------------------------------------------------------------------------------
# optimizers: named and composed


@pytest.mark.parametrize("name", optim.NAMES)
def test_rule_repr_parses_back(name):
    rule = optim.get(name)([torch.nn.Parameter(torch.zeros(1))]).rule
    assert repr(parse_rule(repr(rule))) == repr(rule)


def test_composed_rules_are_read_by_the_one_call_grammar():
    """The rule expression is read by engine.config.parse_call, the grammar schedules use:
    the same data, the same refusals (nothing is evaluated)."""
    from descentlab.engine.config import parse_call

    text = "chain(scale_by_adam(betas=(0.9, 0.99)), trace(momentum=0.5), scale_by_lr(lr=0.1))"
    assert parse_call(text)["args"][0] == {"name": "scale_by_adam", "betas": (0.9, 0.99)}
    rule = parse_rule(text)
    assert [r.name for r in rule.rules] == ["scale_by_adam", "trace", "scale_by_lr"]
    assert rule.rules[0].defaults["betas"] == (0.9, 0.99) and rule.rules[2].defaults["lr"] == 0.1
    for bad in ("chain(", "chain(trace(momentum=a + b))", "chain(**k)"):
        with pytest.raises(ValueError, match="composed optimizer"):
            parse_rule(bad)
    with pytest.raises(KeyError, match="unknown update rule 'record'"):
        parse_rule("chain(record('adam'))")  # optim's functions that are not rules


def test_parse_optimizer_forms():
    adam = OptimizerChoice("adam", "adam", lr_range=optim.record("adam").lr_range)
    assert parse_optimizer("Adam") == adam
    c = parse_optimizer("mine=chain(trace(momentum=0.8), scale_by_lr())")
    assert c.label == "mine" and not c.is_named
    assert [r.name for r in c.optimizer.rules] == ["trace", "scale_by_lr"]
    rule = optim.chain(optim.scale_by_rms(), optim.scale_by_lr())
    assert parse_optimizer(("rms", rule)).optimizer is rule
    assert OptimizerChoice.from_dict(c.to_dict()).describe() == c.describe()


def test_monitored_optimizer_records_the_update_to_parameter_ratio():
    # SGD: the update is -lr * g, so ||dw|| / ||w|| = lr * ||g|| / ||w|| exactly.
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    factory = MonitoredOptimizer("sgd", every=1)
    opt = factory([w], lr=0.1)
    expected = []
    for _ in range(3):
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        expected.append(float(0.1 * w.grad.norm() / w.detach().norm()))
        opt.step()
    ratios = [v for _, split, name, v in factory.rows() if name == "update_ratio"]
    np.testing.assert_allclose(ratios, expected, rtol=1e-6)
    assert repr(factory) == "monitored(sgd, every=1)"


# ------------------------------------------------------------------------------------------
# the protocol


class _Tripwire(torch.Tensor):
    """A tensor that logs every torch operation applied to it (metadata reads excluded)."""

    log: list[str] = []  # noqa: RUF012

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if name not in ("__get__", "size", "dim", "shape", "dtype", "device", "__len__"):
            cls.log.append(name)
        return super().__torch_function__(func, types, args, kwargs or {})


def test_the_test_set_is_never_read_while_tuning(tmp_path):
    splits = datasets.load("moons", n_samples=300)
    splits._x_test = splits._x_test.as_subclass(_Tripwire)
    splits._y_test = splits._y_test.as_subclass(_Tripwire)
    _Tripwire.log = []
    reads: list[tuple[str, int]] = []

    def progress(event, info):
        if event == "trial":
            t = info["outcome"].trial
            reads.append((t.phase, t.label, len(_Tripwire.log)))

    spec = CompareSpec(**SMALL)
    compare(spec, tmp_path, workers=1, progress=progress, data=splits)
    # Each optimizer's tuning trials all ran before any of its final runs...
    for label in ("sgd", "adam"):
        phases = [p for p, lab, _ in reads if lab == label]
        assert phases.index("refit") > max(i for i, p in enumerate(phases) if p == "tune")
    # ...and the test tensors were not touched by a tuning or curve run.
    before = 0
    for phase, _, n in reads:
        if phase in ("tune", "curve"):
            assert n == before, f"the test set was read during a {phase} run"
        before = n
    assert before > 0, "the refit runs evaluate the test set"
    assert splits.sealed  # sealed again after the final evaluations


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The SMALL comparison, run once, uninterrupted, in this process."""
    root = tmp_path_factory.mktemp("small")
    spec = CompareSpec(**{**SMALL, "name": "straight"})
    return root, spec, compare(spec, root, workers=1, progress=False)


def test_a_run_whose_killed_process_was_still_exiting_is_marked_at_the_end(
    small, tmp_path, monkeypatch
):
    # A kill -9 and an immediate re-run: the killed worker may still be exiting when the re-run
    # opens the store (not yet a zombie: alive to os.kill), so its run stays "running" there;
    # the comparison marks such runs again when it finishes (found by the whole suite: the
    # kill-and-rerun test left one run "running" once).
    import shutil
    import socket

    from descentlab.experiments import resume

    root, spec, first = small
    copy = tmp_path / "copy"  # the shared comparison stays as it is
    shutil.copytree(root, copy)
    store = Store(copy / Path(first.store_path).relative_to(root))
    host = {"hostname": socket.gethostname(), "pid": 2**22 + 7}
    orphan = store.create_run({"lr": 0.123}, name="tune/sgd/holdout", seed=0, provenance=host)
    calls = []

    def alive_at_first(record):
        calls.append(record.get("pid"))
        return len(calls) == 1  # still exiting when the store is opened, dead afterwards

    monkeypatch.setattr(resume, "recorded_alive", alive_at_first)
    compare(spec, copy, workers=1, progress=False)
    rec = store.get_run(orphan)
    store.close()
    assert len(calls) >= 2 and rec.status == "interrupted", (calls, rec.status)


def test_compare_then_rerun_reuses_every_trial(small):
    root, spec, first = small
    store = Store(first.store_path)
    n_runs = len(store.list_runs())
    events = []
    second = compare(spec, root, workers=1, progress=lambda e, i: events.append((e, i)))
    assert len(store.list_runs()) == n_runs  # nothing ran again
    assert all(i["outcome"].reused for e, i in events if e == "trial")
    assert second.rows() == first.rows()
    assert first.complete and [r.label for r in first.results] == ["sgd", "adam"]
    # The tuning settings (coarse grid + extension + refinement); 2 curve + 2 refit runs
    # each; 1 experiment record.
    tuned = sum(len(r.candidates) for r in first.results)
    assert all(len(r.candidates) >= 3 for r in first.results)
    assert n_runs == tuned + 2 * 4 + 1
    for r in first.results:
        assert r.best is not None and 0.5 < r.test_accuracy[0] <= 1.0
        assert r.test_accuracy[1] <= r.test_accuracy[0] <= r.test_accuracy[2]
        assert len(r.steps_to_target) == 2
    # The table's test accuracy is the mean of the refit runs' stored test accuracies.
    adam = first.results[1]
    accs = [store.get_run(i).summary["test/accuracy"] for i in adam.refit_runs]
    assert adam.test_accuracy[0] == pytest.approx(np.mean(accs))


def test_cross_validation_scores_are_fold_means(tmp_path):
    spec = CompareSpec(**{**SMALL, "optimizers": ["adam"], "cv_folds": 3, "seeds": 1,
                          "steps": 40, "tune_steps": 30, "refine": False})  # fmt: skip
    result = compare(spec, tmp_path, workers=1, progress=False)
    store = Store(result.store_path)
    (res,) = result.results
    for cand in res.candidates:
        assert len(cand.run_ids) == 3
        accs = [store.get_run(i).summary["val/accuracy"] for i in cand.run_ids]
        if cand.failed:  # a failed fold (e.g. at chance) disqualifies the setting
            assert math.isnan(cand.score)
        else:
            assert cand.score == pytest.approx(np.mean(accs))
        folds = {store.get_run(i).config["name"] for i in cand.run_ids}
        assert folds == {f"tune/adam/fold:{k}:3" for k in range(3)}
    assert res.best == int(np.nanargmax([c.score for c in res.candidates]))


def test_composed_optimizer_and_tuned_momentum(tmp_path):
    spec = CompareSpec(**{**SMALL, "seeds": 1, "lrs_per_optimizer": 2,
                          "space": {"momentum": [0.5, 0.9]}, "refine": False,
                          "optimizers": ["momentum", "mine=chain(scale_by_rms(alpha=0.9), "
                                         "scale_by_lr())"]})  # fmt: skip
    result = compare(spec, tmp_path, workers=1, progress=False)
    mom, mine = result.results
    grid = tuning.log_grid(*optim.record("momentum").lr_range, 2)
    assert [c.setting for c in mom.candidates] == [
        {"lr": lr, "momentum": m} for lr in grid for m in (0.5, 0.9)
    ]
    assert all(set(c.setting) == {"lr"} for c in mine.candidates)  # takes no momentum
    assert mine.best is not None


# ------------------------------------------------------------------------------------------
# bad input: clear errors before any training


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"optimizers": ["adam", "adamm"]}, KeyError, "unknown optimizer 'adamm'; valid names"),
        ({"optimizers": []}, ValueError, "optimizers must name at least one optimizer"),
        ({"problem": "mnist2d"}, KeyError, "unknown problem 'mnist2d'; valid names"),
        ({"model": "resnet"}, KeyError, "unknown model 'resnet'; valid names"),
        ({"steps": 0}, ValueError, "steps must be a positive integer, got 0"),
        ({"tune_steps": 0}, ValueError, "tune_steps must be a positive integer, got 0"),
        (
            {"lrs_per_optimizer": 0},
            ValueError,
            "lrs_per_optimizer must be a positive integer, got 0",
        ),
        ({"seeds": 0}, ValueError, "seeds must be a positive integer, got 0"),
        ({"target_accuracy": 1.5}, ValueError, r"target_accuracy must be in \[0, 1\], got 1.5"),
        ({"target_accuracy": -0.1}, ValueError, r"target_accuracy must be in \[0, 1\]"),
        ({"optimizers": ["sgd", "sgd"]}, ValueError, "labels must be unique"),
        ({"optimizers": ["x=chain(nope())"]}, KeyError, "unknown update rule 'nope'"),
        ({"cv_folds": 1}, ValueError, "cv_folds must be None or an integer >= 2, got 1"),
        ({"space": {"betas": [0.9]}, "optimizers": ["sgd"]}, ValueError, "no optimizer here"),
        ({"landscapes": ["everest"]}, KeyError, "everest"),
        ({"batch_size": 10_000}, ValueError, "batch_size must be <= the number of training"),
    ],
)
def test_bad_input_fails_before_training(tmp_path, change, error, message):
    spec = CompareSpec(**{**SMALL, **change})
    with pytest.raises(error, match=message):
        compare(spec, tmp_path / "runs", workers=1, progress=False)
    assert not (tmp_path / "runs").exists()  # nothing written, nothing trained


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizers", "sgd,adamm"], "unknown optimizer 'adamm'"),
        (["--optimizers", ""], "--optimizers must name at least one optimizer"),
        (["--problem", "nope"], "unknown problem 'nope'"),
        (["--steps", "0"], "steps must be a positive integer, got 0"),
        (["--lr-trials", "0"], "lrs_per_optimizer must be a positive integer, got 0"),
        (["--target-accuracy", "2"], r"target_accuracy must be in [0, 1], got 2.0"),
        (["--lr-range", "adam=1:x"], "--lr-range takes LOW:HIGH"),
        (["--hyper", "nadam.momentum=0.9"], "--hyper takes LABEL.NAME=VALUE"),
    ],
)
def test_cli_bad_input(tmp_path, capsys, argv, message):
    code = main(["compare", *SMALL_ARGV, *argv, "--runs-dir", str(tmp_path / "runs")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_other_spec_in_the_same_directory_is_refused(tmp_path):
    spec = CompareSpec(**{**SMALL, "optimizers": ["adam"], "seeds": 1, "lrs_per_optimizer": 1,
                          "name": "mine"})  # fmt: skip
    compare(spec, tmp_path, workers=1, progress=False)
    other = CompareSpec(**{**SMALL, "optimizers": ["adam"], "seeds": 1, "lrs_per_optimizer": 2,
                           "name": "mine"})  # fmt: skip
    with pytest.raises(ValueError, match=r"holds a comparison with another configuration "
                       r"\(differs in: lrs_per_optimizer\)"):  # fmt: skip
        compare(other, tmp_path, workers=1, progress=False)


# ------------------------------------------------------------------------------------------
# interrupted by a real kill, then resumed


def _cmd(runs_dir: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "descentlab", "compare", *SMALL_ARGV, "--runs-dir",
            str(runs_dir), "--name", "small", "--workers", str(workers), "--no-report",
            "--no-progress"]  # fmt: skip


def _finished(db: Path) -> list:
    if not db.is_file():
        return []
    store = Store(db)
    try:
        return [r for r in store.list_runs(status=("completed", "diverged")) if r.name != "compare"]
    finally:
        store.close()


@pytest.mark.process
@pytest.mark.slow
def test_kill_mid_sweep_then_rerun_skips_finished_trials_and_gives_the_same_table(tmp_path, small):
    runs = tmp_path / "runs"
    db = runs / "small" / "descentlab.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cmd(runs, 2), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(_finished(db)) < 4:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.05)
        # The main process and its two worker processes, mid-sweep.
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    before = {r.id: r for r in _finished(db)}
    # The tuning rounds (coarse grid, extension, refinement) and 2 curve + 2 refit runs each.
    total = sum(len(r.candidates) for r in small[2].results) + 2 * 2 * 2
    assert 4 <= len(before) < total, "the kill must land mid-sweep"

    # The same command again (in this process, to save a start-up), one worker this time.
    assert main(_cmd(runs, 1)[3:]) == 0
    after = _finished(db)
    assert len(after) == total
    # Every trial finished before the kill was kept, not redone: one finished run per config.
    for rid, rec in before.items():
        same = [r for r in after if r.config == rec.config]
        assert [r.id for r in same] == [rid]
    # The trials the kill cut short were run again; their old records say so.
    store = Store(db)
    assert not store.list_runs(status="running")
    assert all("ended" in r.message for r in store.list_runs(status="interrupted"))
    store.close()
    resumed = load_comparison(runs / "small")
    assert resumed.complete

    straight = small[2]  # the same comparison, never interrupted
    assert resumed.table(timings=False) == straight.table(timings=False)
    assert resumed.rows(timings=False) == straight.rows(timings=False)


# Kills the process at the first refit run's per-example test outcomes: a trial trains in a
# scratch store and reaches the comparison's store whole (its record, summary and outcomes in
# one transaction), so the kill leaves no run recorded "completed" without its outcomes.
_KILL_AT_OUTCOMES = """
import json, os, signal, sys
from descentlab.experiments import example_outcomes
from descentlab.experiments.compare import CompareSpec, compare

def kill(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

example_outcomes.store_outcomes = kill
spec = CompareSpec.from_dict(json.loads(sys.argv[2]))
compare(spec, sys.argv[1], workers=1, progress=False)
"""


@pytest.mark.process
def test_a_kill_while_a_refit_run_stores_its_outcomes_leaves_no_half_run_and_reruns_the_same(
    tmp_path, small
):
    _, spec, straight = small
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    args = [sys.executable, "-c", _KILL_AT_OUTCOMES, str(tmp_path), json.dumps(spec.to_dict())]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = Store(tmp_path / spec.run_name() / "descentlab.sqlite")
    try:
        done = store.list_runs(status="completed")
        assert done  # the tuning and curve runs before the kill are kept
        refits = [r for r in done if r.config.get("evaluate_test")]
        assert all("test_outcomes" in r.provenance for r in refits)
    finally:
        store.close()

    resumed = compare(spec, tmp_path, workers=1, progress=False)
    assert resumed.table(timings=False) == straight.table(timings=False)
    assert resumed.rows(timings=False) == straight.rows(timings=False)
    for mine, theirs in zip(resumed.results, straight.results, strict=True):
        assert not mine.test_outcomes_missing
        assert mine.test_loss == theirs.test_loss
        assert mine.test_accuracy == theirs.test_accuracy
        assert sorted(mine.test_examples) == sorted(theirs.test_examples)
        for seed, outcomes in theirs.test_examples.items():
            for name, values in outcomes.items():
                np.testing.assert_array_equal(mine.test_examples[seed][name], values)


def test_regression_tunes_on_validation_loss(tmp_path):
    spec = CompareSpec(problem="regression", problem_options={"n_train": 120}, model="mlp",
                       optimizers=["adam"], batch_size=16, steps=60, tune_steps=40,
                       lrs_per_optimizer=3, seeds=2, landscapes=())  # fmt: skip
    result = compare(spec, tmp_path, workers=1, progress=False)
    (res,) = result.results
    assert result.task == "regression" and result.select_metric == "val/loss"
    assert res.best == int(np.argmin([c.score for c in res.candidates]))
    assert res.steps_to_target == [] and math.isnan(res.test_accuracy[0])
    assert res.test_loss[0] > 0
    header = result.table().splitlines()[0]
    assert "test loss" in header and "acc" not in header and "steps to" not in header


@pytest.mark.sequential_seeds
def test_the_sequential_verdict_adds_test_seeds_where_a_comparison_is_open(tmp_path):
    # the choice on the curve runs' seeds, the test on disjoint seeds; more seeds only for
    # the chosen one and the comparisons still open, up to the last look; a rerun finds them
    spec = CompareSpec(**{**SMALL, "optimizers": ["sgd", "adam", "adagrad"], "max_seeds": 8})
    assert spec.looks == (2, 4, 8)
    result = compare(spec, tmp_path, workers=1, progress=False)
    assert result.complete and result.more_seeds() == {}
    ranking = result.ranking()
    top = ranking[0].result
    seeds = {x.result.label: sorted(x.result.test_accuracy_seeds) for x in ranking}
    assert not set(spec.final_seeds) & {s for v in seeds.values() for s in v}  # disjoint
    for label, got in seeds.items():
        assert got == spec.test_seeds[: len(got)] and len(got) in spec.looks, (label, got)
    for x in ranking[1:]:
        t = x.sequential
        assert t.seeds == len(seeds[x.result.label]) <= len(seeds[top.label])
        # a comparison that ended short of the last look was decided or stopped for futility
        if t.seeds < spec.looks[-1]:
            assert t.verdict in ("worse", "better") or "no more seeds" in t.why
    lines = result.seed_lines()
    assert len(lines) == 3 and all("test seeds (" in line for line in lines)
    store = Store(result.store_path)
    n_runs = len(store.list_runs())
    again = compare(spec, tmp_path, workers=1, progress=False)
    assert len(store.list_runs()) == n_runs and again.rows() == result.rows()
    store.close()
