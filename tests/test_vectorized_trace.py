"""The vectorized engine's traced steps: traced once per process for the graph's structure,
reused by later groups of the same computation (and by the first real step after the trial
step), never by a group whose computation differs; every run equal to the run alone.

The reference for each vectorized run is :func:`descentlab.engine.run.train` with the same
config (float64), as in tests/test_multirun.py.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import pytest
import torch
from test_multirun import as_float64, assert_same_run

from descentlab import _announce
from descentlab.engine import evaluation, vectorized
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import expand_configs, train_many
from descentlab.engine.run import train
from descentlab.problems import data


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.fixture
def traces(monkeypatch):
    """A fresh process-wide graph store; the list of the tracer's calls."""
    calls = []
    real = vectorized.make_fx

    def counting(fn, *args, **kwargs):
        calls.append(kwargs)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(vectorized, "make_fx", counting)
    monkeypatch.setattr(vectorized, "_GRAPHS", OrderedDict())
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    monkeypatch.setattr(vectorized, "_TRACE_AFTER", 1)  # these short runs traced too
    return calls


BASE = {"problem": "digits", "model": "digits_mlp", "model_options": {"hidden": [16]},
        "batch_size": 500, "steps": 12, "eval_every": 6, "evaluate_test": False}  # fmt: skip


def check_group(base, runs, splits):
    got = train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    refs = [train(c, data=splits, progress=False) for c in expand_configs(base, runs)]
    for g, r in zip(got, refs, strict=True):
        assert_same_run(g, r)


@pytest.mark.parametrize("seeds", [(3, 3), (0, 1)], ids=["one data order", "own orders"])
def test_the_trial_step_traces_the_graph_the_runs_step_with(float64, digits, traces, seeds):
    # 1149 training examples, batch 383: three full batches an epoch, one shape
    splits = as_float64(digits)
    base = RunConfig(optimizer="adam", **{**BASE, "batch_size": 383})
    runs = [{"seed": s, "hyper": {"lr": lr}} for s, lr in zip(seeds, (1e-2, 3e-3), strict=True)]
    check_group(base, runs, splits)
    assert len(traces) == 1
    assert traces[0]["tracing_mode"] == "fake"


def test_a_later_group_reuses_the_traced_step_with_the_same_numbers(
    float64, digits, traces, monkeypatch
):
    monkeypatch.setattr(vectorized, "_TRACE_AFTER", 1)  # every shape traced at once
    splits = as_float64(digits)
    first = RunConfig(optimizer="adam", **BASE)
    check_group(first, [{"seed": 0, "hyper": {"lr": 1e-2}}, {"seed": 1}], splits)
    assert len(traces) == 2  # the full batches and the epoch's last, smaller one
    assert len(vectorized._GRAPHS) == 2
    # other optimizers, hyperparameters, seeds, length: the same graphs, traced no more
    later = RunConfig(optimizer="sgd", **{**BASE, "steps": 40, "eval_every": 20})
    runs = [{"seed": 5, "hyper": {"lr": 0.3}}, {"optimizer": "momentum", "seed": 2,
            "hyper": {"lr": 0.1, "momentum": 0.9}}]  # fmt: skip
    check_group(later, runs, splits)
    assert len(traces) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"model_options": {"hidden": [16], "dropout": 0.25}},
        {"label_smoothing": 0.1},
        {"batch_size": 400},
        {"model_options": {"hidden": [16], "batch_norm": True}},
    ],
    ids=["dropout", "label smoothing", "batch size", "batch norm"],
)
def test_a_group_whose_step_differs_traces_its_own(float64, digits, traces, change):
    """Same parameter shapes, another step: traced afresh, and the runs are bit for bit those
    of the group traced in a fresh process (dropout's masks are the vectorized engine's own,
    so the reference is the group itself, not single runs)."""
    splits = as_float64(digits)
    runs = [{"seed": 0}, {"seed": 1, "hyper": {"lr": 3e-3}}]
    base = RunConfig(optimizer="adam", **{**BASE, "model_options": {"hidden": [16],
                     "dropout": 0.5}})  # fmt: skip
    train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    before = len(traces)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no kept graph found wrong
        got = train_many(base.replace(**change), overrides=runs, mode="vmap", data=splits,
                         progress=False)  # fmt: skip
    assert len(traces) > before
    assert len(vectorized._GRAPHS) == len(traces)  # kept beside the first group's, own keys
    vectorized._GRAPHS.clear()
    fresh = train_many(base.replace(**change), overrides=runs, mode="vmap", data=splits,
                       progress=False)  # fmt: skip
    for g, f in zip(got, fresh, strict=True):
        for a, b in zip(g.model.state_dict().values(), f.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_a_kept_graph_that_does_not_reproduce_the_step_is_traced_afresh(
    float64, digits, traces, monkeypatch
):
    """A graph kept under this group's key but of another computation (dropout 0.5 where the
    runs have none) is caught by the check on the trial's copies, announced once, and
    replaced: the runs are those of a fresh trace."""
    monkeypatch.setattr(vectorized, "_TRACE_AFTER", 1)  # every shape traced at once
    splits = as_float64(digits)
    runs = [{"seed": 0}, {"seed": 1}]
    base = RunConfig(optimizer="adam", **BASE)
    other = base.replace(model_options={"hidden": [16], "dropout": 0.5})
    train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    keys = list(vectorized._GRAPHS)
    train_many(other, overrides=runs, mode="vmap", data=splits, progress=False)
    wrong = [g for k, g in vectorized._GRAPHS.items() if k not in keys]
    assert len(wrong) == len(keys) == 2
    for key, graph in zip(keys, wrong, strict=True):  # planted: same shapes, other step
        vectorized._GRAPHS[key] = graph
    before = len(traces)
    with pytest.warns(RuntimeWarning, match="did not reproduce") as record:
        check_group(base, runs, splits)
    assert sum("did not reproduce" in str(w.message) for w in record) == 1
    assert len(traces) == before + 2


@pytest.mark.parametrize(("after", "n_traces"), [(32, 1), (3, 2)])
def test_an_epochs_last_batch_is_traced_only_once_it_recurs(
    float64, digits, traces, monkeypatch, after, n_traces
):
    """1149 examples in batches of 500: every third step has 149. In 40 steps that batch comes
    13 times: computed by vmap (no trace) unless it is traced at its 3rd occurrence; the runs
    equal single runs either way."""
    monkeypatch.setattr(vectorized, "_TRACE_AFTER", after)
    splits = as_float64(digits)
    longer = {**BASE, "hyper": {"momentum": 0.9}, "steps": 40, "eval_every": 20}
    base = RunConfig(optimizer="momentum", **longer)
    check_group(base, [{"seed": 0, "hyper": {"lr": 0.1}}, {"seed": 1, "hyper": {"lr": 0.03}}],
                splits)  # fmt: skip
    assert len(traces) == n_traces


def test_each_set_of_weights_is_evaluated_once(float64, digits, monkeypatch):
    """Three runs, two starting weights (seeds 4, 4, 7): at step 0 two evaluations per split,
    then three; the final weights' metrics in the summary are the last evaluation's. Every
    run's metrics and summary equal its single run's."""
    calls = []
    real = evaluation.evaluate

    def counting(model, x, *args, **kwargs):
        calls.append(len(x))
        return real(model, x, *args, **kwargs)

    splits = as_float64(digits)
    base = RunConfig(optimizer="adam", **{**BASE, "steps": 6, "eval_every": 3})
    runs = [{"seed": 4, "hyper": {"lr": 1e-2}}, {"seed": 4, "hyper": {"lr": 3e-3}},
            {"seed": 7, "hyper": {"lr": 1e-2}}]  # fmt: skip
    monkeypatch.setattr(evaluation, "evaluate", counting)
    got = train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    monkeypatch.setattr(evaluation, "evaluate", real)
    n_train, n_val = len(splits.x_train), len(splits.x_val)
    per_split = {n: calls.count(n) for n in (n_train, n_val)}
    # steps 0, 3 and 6; the summaries' final metrics are those measured at step 6
    assert per_split == {n_train: 2 + 3 + 3, n_val: 2 + 3 + 3}
    refs = [train(c, data=splits, progress=False) for c in expand_configs(base, runs)]
    for g, r in zip(got, refs, strict=True):
        assert_same_run(g, r)


def test_runs_too_short_for_a_trace_to_pay_are_not_traced(float64, digits, traces, monkeypatch):
    monkeypatch.setattr(vectorized, "_TRACE_AFTER", 32)
    splits = as_float64(digits)
    base = RunConfig(optimizer="adam", **BASE)  # 12 steps
    check_group(base, [{"seed": 0, "hyper": {"lr": 1e-2}}, {"seed": 1}], splits)
    assert traces == []
    check_group(base.replace(steps=32, eval_every=16), [{"seed": 0}, {"seed": 1}], splits)
    assert len(traces) == 1  # the full batches; the last one comes 10 times
