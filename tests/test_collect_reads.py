"""A look reads a completed run's stored rows once per process (collect's read cache)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from descentlab.experiments.compare import collect
from descentlab.experiments.example_outcomes import OUTCOMES_KEY
from descentlab.store import MetricSeries


class _CountingStore:
    """The reads collect makes of a run, counted."""

    def __init__(self, path: str) -> None:
        self.path, self.reads = path, 0

    def metrics(self, run_id, *, split=None, name=None):
        self.reads += 1
        return {"train/loss": MetricSeries(np.array([0, 10]), np.array([2.5, 0.5]))}

    def outcomes(self, run_id):
        self.reads += 1
        return {"loss": np.arange(3, dtype=float) / 4}


def _record(run_id, created, outcomes=3):
    return SimpleNamespace(id=run_id, created_at=created, provenance={OUTCOMES_KEY: outcomes})


def test_a_completed_runs_starting_loss_is_read_once():
    store = _CountingStore("/tmp/reads-a.sqlite")
    judge = collect.Judge("val/accuracy", True, 0.1)
    for _ in range(3):  # three looks
        judge(store, 7, "completed", {"val/accuracy": 0.9, "train/loss": 0.5}, "tune", "t0")
    assert store.reads == 1
    # a store made again at the same path: its run 7 is another run
    judge(store, 7, "completed", {"val/accuracy": 0.9, "train/loss": 0.5}, "tune", "t1")
    assert store.reads == 2
    # without the record's creation time nothing is kept
    judge(store, 7, "completed", {"val/accuracy": 0.9, "train/loss": 0.5}, "tune")
    assert store.reads == 3


def test_stored_outcomes_are_read_once_and_shared_read_only():
    store = _CountingStore("/tmp/reads-b.sqlite")
    first = collect._outcomes(store, _record(3, "t0"))
    again = collect._outcomes(store, _record(3, "t0"))
    assert store.reads == 1 and again is first
    assert first["loss"].tolist() == [0.0, 0.25, 0.5]
    with pytest.raises(ValueError, match="read-only"):
        first["loss"][0] = 1.0
    # outcomes not (yet) stored: the reason, and nothing kept
    missing = _record(4, "t0", outcomes=None)
    assert collect._outcomes(store, missing) == "not recorded" and store.reads == 1
