"""Fixed targets: each built-in problem of the suite carries validation and
test targets measured by reference runs, stored with the problem; time to target is counted in
steps and wall-clock seconds against them, not against what the compared optimizers reach."""

from __future__ import annotations

import dataclasses
import math
import tempfile

import pytest

from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.multi import DEFAULT_SUITE, TARGET_SETTINGS, _spec_for, _summarise
from descentlab.problems import targets
from tests._models import tiny_compare


@pytest.mark.parametrize(
    ("name", "metric"),
    [("mnist1d", "accuracy"), ("digits", "accuracy"), ("quadratic_deep", "loss"),
     ("charlm", "loss")],
)  # fmt: skip
def test_every_suite_problem_has_a_target_for_its_setting(name: str, metric: str) -> None:
    assert name in DEFAULT_SUITE
    t, why = targets.target_for(name, _spec_for(name, {}).to_dict())
    assert why is None and t is not None
    assert (t.metric, t.maximize, t.steps) == (
        metric,
        metric == "accuracy",
        _spec_for(name, {}).steps,
    )
    assert math.isfinite(t.validation) and math.isfinite(t.test)
    if metric == "accuracy":
        assert 0.1 < t.validation < 1 and 0.1 < t.test < 1  # above chance (10 classes)


def test_the_decoder_has_a_target_for_its_setting_beside_the_suites_own() -> None:
    # the GPT-2-style decoder on the suite's setting of charlm: stored as "charlm/gpt", found
    # by the comparison's model (`--problems charlm --model gpt --model-option d_model=32`)
    spec = _spec_for("charlm", TARGET_SETTINGS["charlm/gpt"])
    t, why = targets.target_for("charlm", spec.to_dict())
    assert why is None and (t.problem, t.metric, t.steps) == ("charlm/gpt", "loss", spec.steps)
    assert math.isfinite(t.validation) and 1.0 < t.test < 4.6  # below the uniform log(97)
    other = dataclasses.replace(spec, model_options={"d_model": 64})
    assert targets.target_for("charlm", other.to_dict())[0] is None
    # the suite's own charlm setting still gets its own target, not the decoder's
    own, _ = targets.target_for("charlm", _spec_for("charlm", {}).to_dict())
    assert own is not None and own.problem == "charlm"


def test_a_changed_setting_has_no_stored_target() -> None:
    fields = _spec_for("digits", {"steps": 100}).to_dict()
    t, why = targets.target_for("digits", fields)
    assert t is None and "another setting" in why
    assert targets.target_for("moons", fields) == (None, "moons has no stored target")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"validation": float("nan")}, "validation must be a finite number"),
        ({"test": "0.9"}, "test must be a finite number"),
        ({"metric": "accuracy", "maximize": False}, "metric 'accuracy' with maximize=False"),
        ({"steps": None, "extra": 1}, "unknown fields"),
    ],
)
def test_a_damaged_targets_file_is_refused(tmp_path, change, message) -> None:
    entry = dataclasses.asdict(targets.stored_targets()["digits"])
    del entry["problem"]
    entry.update(change)
    if change.get("steps", 0) is None:
        del entry["steps"]
    path = tmp_path / "targets.json"
    path.write_text(__import__("json").dumps({"digits": entry}))
    with pytest.raises(ValueError, match=message):
        targets.stored_targets.__wrapped__(path)


@pytest.fixture(scope="module")
def tiny():  # a finished comparison on two moons (seconds)
    changes = {"optimizers": ["sgd", "adam"], "lrs_per_optimizer": 2, "steps": 40, "seeds": 2}
    spec = CompareSpec(**tiny_compare(**changes, eval_every=5))
    return compare(spec, tempfile.mkdtemp(prefix="w26b-targets-"), workers=1, progress=False)


def _with_target(monkeypatch, cmp, validation: float) -> None:
    t = targets.Target("moons", "accuracy", True, validation, validation, cmp.spec.steps,
                       targets.fingerprint(cmp.spec.to_dict()), "constructed")  # fmt: skip
    monkeypatch.setattr(targets, "stored_targets", lambda: {"moons": t})


def test_an_unreachable_fixed_target_is_reached_by_nobody(tiny, monkeypatch) -> None:
    # an auto target is 95% of the way to the best optimizer's result: the best reaches it
    auto = _summarise("moons", tiny)
    assert auto.target_kind == "auto" and min(auto.steps_to_target) < math.inf
    _with_target(monkeypatch, tiny, 1.01)  # a fixed target above what any run reaches
    fixed = _summarise("moons", tiny)
    assert (fixed.target_kind, fixed.target) == ("fixed", 1.01)
    assert fixed.steps_to_target == [math.inf, math.inf] == fixed.seconds


def test_time_to_a_fixed_target_in_steps_and_seconds(tiny, monkeypatch) -> None:
    _with_target(monkeypatch, tiny, 0.6)
    s = _summarise("moons", tiny)
    assert s.target_kind == "fixed" and s.test_target == 0.6
    for steps, secs, r in zip(s.steps_to_target, s.seconds, tiny.results, strict=True):
        # the step: the first evaluation of each seed's validation curve at or above the
        # target, read off the curves independently of the summary (median over 2 seeds)
        firsts = [
            next((max(int(st), 1) for st, v in zip(*run, strict=True) if v >= 0.6), math.inf)
            for run in r.curves["val/accuracy"].runs
        ]
        assert steps == sum(firsts) / 2
        assert (secs < math.inf) == (steps < math.inf)
        if secs < math.inf:
            assert 0 < secs < 60


def test_measure_targets_runs_the_reference_once(tmp_path, capsys) -> None:
    from descentlab.experiments.multi import compare_many
    from descentlab.experiments.reference import reference_spec
    from descentlab.store import Store

    settings = tiny_compare(optimizers=["sgd", "adam"], lrs_per_optimizer=2, steps=20, seeds=1)
    settings.pop("problem")
    first = compare_many("moons", tmp_path, settings=settings, workers=1, measure_targets=True)
    (p,) = first.problems
    assert p.target_kind == "measured" and p.target_note is None
    ref_dir = tmp_path / reference_spec(p.comparison.spec).run_name()
    with Store(ref_dir / "descentlab.sqlite") as store:
        runs = [r.id for r in store.list_runs()]
    assert len(runs) >= 5 + 3 + 3  # 5 grid points, 3 curve and 3 refit runs of Adam
    again = compare_many("moons", tmp_path, settings=settings, workers=1, measure_targets=True)
    with Store(ref_dir / "descentlab.sqlite") as store:
        assert [r.id for r in store.list_runs()] == runs  # found again, not trained again
    assert (again.problems[0].target, again.problems[0].test_target) == (p.target, p.test_target)
    # without the option the target is relative to the comparison, and the output says so
    auto = compare_many("moons", tmp_path, settings=settings, workers=1)
    assert auto.problems[0].target_kind == "auto"
    assert "--measure-targets measures one" in auto.targets_table()


def test_measure_targets_without_problems_is_refused(capsys, tmp_path) -> None:
    from tests._models import COMPARE, run_cli

    code, _, err = run_cli([*COMPARE, "--measure-targets", "--runs-dir", tmp_path / "r"], capsys)
    assert code != 0 and "--measure-targets sets the targets of a suite's problems" in err
    assert not (tmp_path / "r").exists()


def test_a_builtin_problem_resolved_for_its_comparison_keeps_its_stored_target() -> None:
    # compare() resolves a built-in problem object to its data: the comparison's spec names
    # it "charlm#<data fingerprint>"; the stored target is for the setting "charlm" (the bug:
    # `compare --problems charlm` fell back to an auto target, "measured for another setting")
    from descentlab.problems.problem import resolve_for_compare

    spec = _spec_for("charlm", {})
    spec.validate()
    resolved, _ = resolve_for_compare(spec, None)
    assert resolved.problem.startswith("charlm#")
    t, why = targets.target_for("charlm", resolved.to_dict())
    assert why is None and t == targets.stored_targets()["charlm"]
    # another setting of it is still refused
    other = dataclasses.replace(resolved, steps=resolved.steps + 1)
    assert targets.target_for("charlm", other.to_dict())[0] is None


def test_a_problem_of_ones_own_uses_its_stored_target_through_compare_many(
    tmp_path, monkeypatch
) -> None:
    # the path `descentlab compare --problems REF` takes: the target stored for the setting
    # (as scripts/measure_targets.py fingerprints it) is the one the suite times against
    from descentlab.experiments.multi import compare_many

    ref = "examples/diabetes.py:make_problem"
    settings = {"optimizers": ["sgd", "adam"], "lrs_per_optimizer": 2, "tune_seeds": 1,
                "steps": 20, "seeds": 1, "batch_size": 32}  # fmt: skip
    spec = _spec_for(ref, settings)
    t = targets.Target("diabetes", "rmse", False, 1e-9, 1e-9, spec.steps,
                       targets.fingerprint(spec.to_dict()), "constructed")  # fmt: skip
    monkeypatch.setattr(targets, "stored_targets", lambda: {"diabetes": t})
    multi = compare_many(ref, tmp_path, settings=settings, workers=1)
    (p,) = multi.problems
    assert p.comparison.spec.problem.startswith(ref + "#")
    assert (p.target_kind, p.target, p.target_note) == ("fixed", 1e-9, None)
    assert p.steps_to_target == [math.inf, math.inf]  # an RMSE of 1e-9: reached by nobody
