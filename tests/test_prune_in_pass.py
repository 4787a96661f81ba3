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
