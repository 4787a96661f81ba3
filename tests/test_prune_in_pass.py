"""Runs taken out of a running vectorized pass at a rung (``Loop.drop``, ``Stacked.drop``,
``vectorized.train_in_rungs``): the runs that go on continue without restarting, and train
exactly as they do in the pass without pruning -- the same weights and records, bit for bit
(the runs of a pass are independent: taking some out changes no other's arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from descentlab.engine.config import RunConfig
from descentlab.engine.vectorized import train_group, train_in_rungs
from descentlab.problems import data


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def _configs(steps: int = 60, shared: bool = False) -> list[RunConfig]:
    """Two optimizers (two optimizer groups in the pass), six learning rates, two seeds (each
    run its own data order; ``shared``: one seed, one data order for all), a cosine lr
    schedule: 12 runs."""
    out = []
    for i, lr in enumerate([1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]):
        for seed in (0, 0) if shared else (0, 1):
            out.append(
                RunConfig(
                    problem="digits",
                    model="mlp",
                    optimizer="momentum" if i < 3 else "adam",
                    hyper={"lr": lr},
                    schedule={"lr": f"cosine(T_max={steps})"},
                    steps=steps,
                    batch_size=32,
                    seed=seed,
                    eval_every=15,
                    evaluate_test=False,
                    name=f"run{i}",
                )
            )
    return out


def _same_records(a, b) -> bool:
    keys = [k for k in a.metrics if not k.startswith("progress/")]
    return keys == [k for k in b.metrics if not k.startswith("progress/")] and all(
        np.array_equal(np.asarray(a.metrics[k]), np.asarray(b.metrics[k])) for k in keys
    )


def _same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)


@pytest.mark.parametrize("shared", [False, True], ids=["own data orders", "one data order"])
def test_a_survivor_trains_as_in_its_unpruned_pass_bit_for_bit(digits, shared):
    configs = _configs(shared=shared)
    full = train_group(configs, digits, None, False)
    seen = []

    def decide(k, step, measured):
        (m,) = measured
        seen.append((k, step, [sorted(x) for x in m]))
        if k == 0:  # out: one run of each optimizer group, and a whole setting
            return [[i not in (1, 4, 5) for i in range(len(m))]]
        return [[i not in (0, 7) for i in range(len(m))]]

    (got,) = train_in_rungs([(configs, digits)], [8, 31], decide)
    # the rungs saw every live run's validation metrics (no training split), and only those
    assert [(k, s) for k, s, _ in seen] == [(0, 8), (1, 31)]
    assert all(x == ["val/accuracy", "val/loss"] for x in seen[0][2])
    assert [bool(x) for x in seen[1][2]] == [i not in (1, 4, 5) for i in range(12)]
    gone = {1: 8, 4: 8, 5: 8, 0: 31, 7: 31}
    for i, (a, b) in enumerate(zip(full, got, strict=True)):
        if i in gone:
            assert b.status == "interrupted" and b.steps == gone[i]
            assert f"pruned at step {gone[i]}" in b.message
            # its records are the unpruned run's up to the rung
            for key, (steps, values) in b.metrics.items():
                if key.startswith("progress/"):
                    continue
                n = len(steps)
                assert n and steps[-1] <= gone[i]
                assert np.array_equal(np.asarray(a.metrics[key][0][:n]), np.asarray(steps))
                assert np.array_equal(np.asarray(a.metrics[key][1][:n]), np.asarray(values))
        else:
            assert (b.status, b.steps) == (a.status, a.steps) == ("completed", 60)
            assert _same_records(a, b), i
            assert _same_weights(a, b), i
            assert b.summary["val/loss"] == a.summary["val/loss"]


def test_a_pass_whose_runs_all_leave_stops_and_keeps_their_results(digits):
    configs = _configs(steps=40)[:4]
    (got,) = train_in_rungs([(configs, digits)], [5], lambda k, step, m: [[False] * len(m[0])])
    assert [(r.status, r.steps) for r in got] == [("interrupted", 5)] * 4


def test_passes_train_together_and_each_decision_sees_all_of_them(digits):
    configs = _configs(steps=40)
    a, b = configs[:6], configs[6:]
    full = train_group(b, digits, None, False)
    sizes = []

    def decide(k, step, measured):
        sizes.append([sum(bool(x) for x in m) for m in measured])
        return [[True] * len(a), [i % 2 == 0 for i in range(len(b))]]

    _, got = train_in_rungs([(a, digits), (b, digits)], [4, 16], decide)
    assert sizes == [[6, 6], [6, 3]]
    for i, (x, y) in enumerate(zip(full, got, strict=True)):
        if i % 2 == 0:
            assert _same_weights(x, y) and _same_records(x, y)
        else:
            assert (y.status, y.steps) == ("interrupted", 4)


# ------------------------------------------------------------------------------------------
# the protocol: pruned runs leave the tuning passes (no rung run restarts)


def _compare(tmp_path, name, monkeypatch=None, restart=False):
    from test_prune import PRUNED

    from descentlab.experiments.compare import CompareSpec, compare, inpass

    if restart:  # the rung runs restarted from step 0 (the protocol where passes cannot drop)
        monkeypatch.setattr(inpass, "applies", lambda plan, choice, store: ([], "test"))
    spec = CompareSpec(**PRUNED)
    return compare(spec, tmp_path / name, workers=1, progress=False)


def test_pruned_tuning_runs_leave_their_pass_and_none_restarts(tmp_path, monkeypatch):
    from descentlab.engine import multirun, run
    from descentlab.experiments.compare.pruning import rung_steps
    from descentlab.store import Store

    lengths = []  # the steps of every run trained by the trial runner
    many, one = multirun.train_many, run.train

    def train_many(configs, *args, **kwargs):
        lengths.extend(c.steps for c in configs)
        return many(configs, *args, **kwargs)

    def train(config, *args, **kwargs):
        lengths.append(config.steps)
        return one(config, *args, **kwargs)

    monkeypatch.setattr(multirun, "train_many", train_many)
    monkeypatch.setattr(run, "train", train)
    result = _compare(tmp_path, "in-pass")
    (adam,) = result.results
    # no rung run: the trial runner trained the final runs only (48 steps)
    assert lengths and set(lengths) == {48}
    store = Store(result.store_path)
    for c in adam.candidates:
        record = store.get_run(c.run_ids[0])
        assert record.provenance.get("pruned_in_pass") is True
        if c.pruned:  # the rung run it was stopped with: its score at the rung
            assert record.config["steps"] == c.pruned_step in rung_steps(48)
            assert record.summary["val/accuracy"] == c.pruned_score
        else:  # its full tuning run, which went on from the rungs
            assert record.config["steps"] == record.summary["steps"] == 48
    store.close()


def test_pruning_in_the_pass_decides_as_restarted_rung_runs(tmp_path, monkeypatch):
    from test_prune import _pruned_set

    here = _compare(tmp_path, "in-pass")
    again = _compare(tmp_path, "restarted", monkeypatch, restart=True)
    assert _pruned_set(here) == _pruned_set(again)
    (a,), (b,) = here.results, again.results
    assert a.best_setting == b.best_setting
    for x, y in zip(a.candidates, b.candidates, strict=True):
        assert x.pruned_step == y.pruned_step
        if x.pruned:
            assert x.pruned_score == pytest.approx(y.pruned_score, abs=1e-6)
        else:
            assert x.score == pytest.approx(y.score, abs=1e-6)
