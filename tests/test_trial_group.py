"""A group of trials trained in one vectorized pass: checked where it was grouped, not again.

A runner's trials reach :func:`~descentlab.experiments.execution.execute_group` through
:func:`~descentlab.engine.multirun.group_of`, which checks each config as
:func:`~descentlab.engine.multirun.train_many` does (its fields, its registry names); the group
is then trained by :func:`~descentlab.engine.multirun.train_checked` without a second check.
The reference for the numbers is ``train_many`` itself (the public, checking entry) on the
same configs and data; the counts are of the checks and of the data fetched.
"""

from __future__ import annotations

import pytest

from descentlab.engine import building, multirun
from descentlab.engine.config import RunConfig
from descentlab.experiments import execution
from descentlab.experiments.example_outcomes import OUTCOMES_KEY
from descentlab.experiments.runner import group_trials
from descentlab.experiments.trial import Trial
from descentlab.problems import data
from descentlab.store import Store

BASE = RunConfig(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                 model_options={"hidden": 8}, batch_size=32, steps=12, eval_every=6,
                 optimizer="adam", hyper={"lr": 1e-2})  # fmt: skip


class _Source:
    """One split set, every fetch counted (the trial layer asks it by data kind)."""

    kind = None

    def __init__(self, splits: data.Splits) -> None:
        self.splits, self.gets = splits, 0

    def get(self, kind: str) -> data.Splits:
        self.gets += 1
        return self.splits


@pytest.fixture(scope="module")
def moons():
    return data.load("moons", n_samples=200)


def _refits(n: int = 3) -> list[Trial]:
    out = []
    for s in range(n):
        cfg = BASE.replace(seed=s, hyper={"lr": 1e-2 * (s + 1)}, name=f"refit/adam/{s}")
        out.append(Trial("refit", "adam", cfg, "refit", (s,)))
    return out


def _values(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "wall_time" and not k.endswith("seconds")}


def _counting(monkeypatch) -> dict[str, int]:
    counts = {"fields": 0, "names": 0}
    check, names = RunConfig._check, multirun._check_names

    def fields(self, record):
        counts["fields"] += 1
        return check(self, record)

    def registry(cfg, where):
        counts["names"] += 1
        return names(cfg, where)

    monkeypatch.setattr(RunConfig, "_check", fields)
    monkeypatch.setattr(multirun, "_check_names", registry)
    return counts


def test_a_group_is_checked_where_it_is_grouped_and_trains_as_train_many(
    moons, tmp_path, monkeypatch
):
    trials = _refits()
    ref = multirun.train_many([t.config for t in trials], mode="vmap", progress=False,
                              data=moons)  # fmt: skip
    counts = _counting(monkeypatch)
    assert group_trials(trials) == [trials]  # grouped: each config checked there, once
    assert counts == {"fields": 3, "names": 3}
    store, source = Store(tmp_path / "s.sqlite"), _Source(moons)
    out = execution.execute_group(store, source, trials)
    assert counts == {"fields": 3, "names": 3}  # not again where the group trains
    assert source.gets == 1  # the group's data, fetched once (its test outcomes too)
    for o, r in zip(out, ref, strict=True):
        run = store.get_run(o.run_id)
        assert run.provenance["multirun"]["mode"] == "vmap"
        # bit for bit but the measured times (train_many, the checking entry)
        assert _values(o.summary) == _values(r.summary)
        assert run.provenance[OUTCOMES_KEY] == moons.n_test  # its test outcomes stored


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"steps": 0}, ValueError, "steps"),
        ({"batch_size": -4}, ValueError, "batch_size"),
        ({"hyper": [0.1]}, ValueError, "hyper"),
        ({"optimizer": "adamm"}, KeyError, "config: unknown optimizer 'adamm'"),
        ({"model": "mlpp"}, KeyError, "config: unknown model 'mlpp'"),
        ({"schedule": {"lr": "cosinee"}}, KeyError, "config: schedule 'lr'"),
    ],
)
def test_a_bad_config_is_refused_where_it_is_grouped(change, error, words):
    with pytest.raises(error, match=words):
        multirun.group_of(BASE.replace(**change))


def test_a_trial_alone_fetches_its_data_once_and_stores_its_test_outcomes(moons, tmp_path):
    store, source = Store(tmp_path / "s.sqlite"), _Source(moons)
    (out,) = execution.execute_group(store, source, _refits(1))
    assert source.gets == 1
    assert store.get_run(out.run_id).provenance[OUTCOMES_KEY] == moons.n_test


def test_a_vectorized_group_regularizes_its_inputs_as_its_runs_built_them(moons, monkeypatch):
    built = []
    real = building.batch_pipeline

    def counted(*regularizers):
        built.append(regularizers[-1])  # the inputs' dimensions
        return real(*regularizers)

    monkeypatch.setattr(building, "batch_pipeline", counted)
    cfg = BASE.replace(input_noise=0.05, mixup_alpha=0.2, evaluate_test=False)
    multirun.train_many(cfg, overrides=[{"seed": s} for s in range(3)], mode="vmap",
                        progress=False, data=moons)  # fmt: skip
    assert built == [2, 2, 2]  # one per run's build, none for the pass
