"""A trial's settings are checked once where they enter.

``descentlab compare`` builds its CompareSpec from the flags and checks it (the CLI), then
``compare()`` and ``prepare()`` ask again: the spec's registries, ranges, protocol and search
space are looked through once. The comparison then derives its plan (the base run config,
the folds and seeds, each optimizer's first tuning round) from the checked spec once, however
many trials and rounds follow; the engine checks a run config and serializes it once on its
way in, and the config it trains is the one a resumed run reads back from the store."""

from __future__ import annotations

import json

import pytest
from _models import tiny_compare

from descentlab.cli import main
from descentlab.engine import config as config_module
from descentlab.engine.config import RunConfig
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.compare import planning as planning_mod
from descentlab.experiments.compare import spec as spec_module
from descentlab.store import canonical_json

ARGV = [
    "compare", "--problem", "moons", "--model", "mlp", "--optimizer", "sgd",
    "--lr-range", "sgd=0.01:0.1", "--lr-trials", "2", "--no-refine", "--steps", "3",
    "--seeds", "1", "--workers", "1", "--no-report", "--no-progress", "--landscapes", "none",
    "--batch-size", "16",
]  # fmt: skip


def test_a_comparison_checks_its_spec_once(monkeypatch, tmp_path, capsys):
    checked = []
    real_check = spec_module._check_names

    def check_names(spec, custom):
        checked.append(1)
        return real_check(spec, custom)

    monkeypatch.setattr(spec_module, "_check_names", check_names)
    main([*ARGV, "--runs-dir", str(tmp_path)])
    capsys.readouterr()
    assert checked == [1]


def test_a_spec_changed_after_its_check_is_checked_again():
    spec = CompareSpec(problem="moons", optimizers=["sgd"], steps=5)
    spec.validate()
    spec.steps = 0
    with pytest.raises(ValueError, match="steps"):
        spec.validate()
    spec.steps = 5
    spec.optimizers.append("no-such-optimizer")  # changed in place, inside a list
    with pytest.raises(KeyError, match="no-such-optimizer"):
        spec.validate()


def _counting(monkeypatch, module, name):  # type: ignore[no-untyped-def]
    calls = []
    original = getattr(module, name)

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_a_comparison_derives_each_first_tuning_round_once(tmp_path, monkeypatch):
    # once, when the spec is checked (every setting's optimizer is built with it) and its plan
    # derived; not again for the plan, each round decided or each trial that finishes
    rounds = _counting(monkeypatch, spec_module, "_first_rounds")
    settings = _counting(monkeypatch, spec_module, "tuning_settings")
    monkeypatch.setattr(planning_mod, "tuning_settings", spec_module.tuning_settings)
    spec = CompareSpec(
        **tiny_compare(optimizers=["sgd", "adam"], steps=4, lrs_per_optimizer=3, seeds=1)
    )
    result = compare(spec, tmp_path, workers=1, progress=False, vectorize=False)
    assert sum(r.n_tuning_trials for r in result.results) == 6  # trials did finish one by one
    assert [sorted(c.label for c in args[1]) for args in rounds] == [["adam", "sgd"]]
    assert settings == []


def _config() -> RunConfig:
    return RunConfig(
        problem="moons",
        model="mlp",
        optimizer="adam",
        hyper={"lr": 0.01, "betas": (0.9, 0.99)},
        model_options={"hidden": 4},
        steps=3,
    )


def test_checked_config_gives_the_config_a_resumed_run_reads_from_the_store():
    config = _config()
    stored = RunConfig.from_dict(json.loads(canonical_json(config.to_dict())))
    got = config_module.checked_config(config)[0]
    assert got == stored
    assert got.hyper["betas"] == [0.9, 0.99]  # a tuple became a list, as in the store
    got.hyper["lr"] = 1.0  # its containers are its own
    assert config.hyper["lr"] == 0.01


def test_checked_config_checks_and_serializes_a_config_once(monkeypatch):
    # the field constraints looked through once, the record serialized once (it is checked
    # for JSON and read back as the config to train)
    checks = _counting(monkeypatch, config_module, "validate")
    records = _counting(monkeypatch, RunConfig, "to_dict")
    config_module.checked_config(_config())
    assert (len(checks), len(records)) == (1, 1)


def test_checked_config_still_refuses_a_bad_config():
    with pytest.raises(ValueError, match="steps"):
        config_module.checked_config(RunConfig(problem="moons", steps=0))


def test_a_stored_spec_is_planned_without_its_device_or_problem_here():
    # a comparison read back from its store (load_comparison) may have run on a GPU this
    # machine lacks, on a problem of its own (a name with the data's fingerprint)
    spec = CompareSpec(problem="mine#1a2b3c4d", optimizers=["sgd"], steps=5, device="cuda:7")
    with pytest.raises(ValueError, match="cuda:7"):
        spec.validate()
    plan = spec.plan(stored=True)
    assert plan.spec is spec and plan.run_name.startswith("mine-")
