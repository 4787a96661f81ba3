"""One trial builds its optimizer once and checks its hyperparameters once, in one vocabulary.

A trial run by the runner (in the main process, one worker) is spied on: the optimizer class is
constructed once, and its ``lr`` passes through the declared constraint once (when the
optimizer is built; a param group with the defaults' values and the first step with the
values already checked are not checked again). A bad value is still refused with its one line.
Every declared spec that is one value (not a pair or a list) says and refuses it in the words of
:mod:`descentlab.constraints`: its ``constraints()`` give the same refusal as ``check``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from descentlab import constraints, optim
from descentlab.engine.config import RunConfig
from descentlab.experiments.runner import TrialRunner
from descentlab.experiments.trial import DataSource, Trial
from descentlab.optim import hyperspec
from descentlab.optim.optimizer import Optimizer


def _counter(
    monkeypatch: pytest.MonkeyPatch, owner: Any, method: str, lr_only: bool = False
) -> list:
    """A one-item list counting the calls of ``owner.method`` (those about ``lr`` only)."""
    calls, real = [0], getattr(owner, method)

    def spy(self: Any, *args: Any, **kw: Any) -> None:
        calls[0] += not lr_only or args[0] == "lr"
        real(self, *args, **kw)

    monkeypatch.setattr(owner, method, spy)
    return calls


def _spied_trial(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, hyper: dict) -> tuple[int, int]:
    """(optimizers built, checks of lr) while one runner trial of SGD trains 5 steps."""
    built = _counter(monkeypatch, Optimizer, "__init__")
    checked = _counter(monkeypatch, hyperspec.Real, "check", lr_only=True)
    cfg = RunConfig(problem="moons", model="logistic", optimizer="sgd", hyper=hyper,
                    steps=5, evaluate_test=False, name="tune/sgd")  # fmt: skip
    with TrialRunner(
        tmp_path / "lab.sqlite", DataSource("moons", {"n_samples": 100}), workers=1
    ) as runner:
        runner.submit(Trial("tune", "sgd", cfg, "holdout"))
        assert runner.next_outcome().status == "completed"
    return built[0], checked[0]


@pytest.mark.parametrize("hyper", [{"lr": 0.5}, {"lr": 0.5, "momentum": 0.9}])
def test_a_trial_builds_its_optimizer_once_and_checks_its_lr_once(monkeypatch, tmp_path, hyper):
    assert _spied_trial(monkeypatch, tmp_path, hyper) == (1, 1)


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        ([{"params": [torch.zeros(2)], "lr": -1.0}], r"param group 0: .*lr must be"),
        ([{"params": [torch.zeros(2)]}, {"params": [torch.zeros(2)], "lr": float("nan")}],
         r"param group 1: .*lr must be"),
    ],
)  # fmt: skip
def test_a_group_unlike_the_defaults_is_still_checked_when_added(groups, words):
    with pytest.raises(ValueError, match=words):
        optim.SGD(groups, lr=0.1)


def test_a_value_changed_after_construction_is_checked_at_the_next_step():
    p = torch.zeros(2, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    opt.param_groups[0]["lr"] = -1.0
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match=r"param group 0: .*lr must be"):
        opt.step()


#: the open bounds of a Real without bounds
BOTH = (-float("inf"), float("inf"))


def _specs() -> list[tuple[str, str, hyperspec.Spec]]:
    """(rule, key, spec) of every registered optimizer's declared one-value hyperparameters."""
    out = {}
    for rec in optim.records():
        opt = rec.factory([torch.nn.Parameter(torch.zeros(2))], fused=False)
        for rule in opt.rule.rules:
            for key, spec in rule.checks.items():
                if not isinstance(spec, hyperspec.Pair | hyperspec.Items):
                    out[type(rule).__name__, key, repr(spec)] = spec
    return [(rule, key, spec) for (rule, key, _), spec in out.items()]


def _refusal(call: Any) -> str | None:
    try:
        call()
    except ValueError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize(("rule", "key", "spec"), _specs(), ids=lambda x: str(x)[:40])
def test_every_declared_spec_speaks_the_constraints_words(rule, key, spec):
    said = spec.constraints()
    assert said and all(c is None or isinstance(c, constraints.Constraint) for c in said)
    assert spec.words() == constraints.describe(*said)
    for value in (-1.0, 0.5, 2, 10**9, float("nan"), "x", True, None):
        theirs = _refusal(lambda v=value: constraints.check(key, v, *said))
        ours = _refusal(lambda v=value: spec.check(key, v, rule))
        if value != value and isinstance(spec, hyperspec.Real) and spec.open_bounds() == BOTH:
            assert ours is not None and "must be a number, got nan" in ours  # NaN refused
        elif theirs is None:
            assert ours is None, (value, ours)
        else:  # the same error and line (inside torch's words, where torch has the optimizer)
            kind, line = theirs.split(": ", 1)
            lines = {line, line.replace(" None or ", " ")}  # (a Choice's refusal omits None)
            assert ours is not None and ours.startswith(kind), (value, ours)
            assert any(words in ours for words in lines), (value, ours)


def test_a_comparison_builds_optimizers_in_its_trials_only_and_checks_each_setting_once(
    monkeypatch, tmp_path
):
    """A whole tiny comparison: the plan checks each choice's settings (its fixed ones and every
    setting of its first round) with nothing built, and each trial builds its optimizer over
    its parameters once, checking its lr once."""
    from descentlab.experiments.compare import CompareSpec, compare

    spec = CompareSpec(problem="moons", problem_options={"n_samples": 100}, model="logistic",
                       optimizers=["sgd", "adam"], steps=6, tune_steps=3, lrs_per_optimizer=2,
                       seeds=1, refine=False, landscapes=())  # fmt: skip
    plan = CompareSpec.from_dict(spec.to_dict()).plan()  # a copy: the spec is checked anew
    settings = sum(1 + len(plan.first_rounds[c.label]) for c in plan.choices)
    built = _counter(monkeypatch, torch.optim.Optimizer, "__init__")  # over parameters
    made = _counter(monkeypatch, Optimizer, "__init__")  # SETTINGS_ONLY included
    checked = _counter(monkeypatch, hyperspec.Real, "check", lr_only=True)
    trials: list[Any] = []

    def progress(event: str, info: Any) -> None:
        trials.extend([info] if event == "trial" else [])

    compare(spec, tmp_path, workers=1, vectorize=False, progress=progress)
    assert (built[0], made[0], checked[0]) == (
        len(trials),
        len(trials) + settings,
        len(trials) + settings,
    )


def _settings() -> list[tuple[str, dict[str, Any]]]:
    """(name, hyper): every registered optimizer with its defaults, and with each declared
    one-value hyperparameter at each bad value its spec draws."""
    out: list[tuple[str, dict[str, Any]]] = []
    for rec in optim.records():
        out.append((rec.name, {}))
        opt = rec.factory([torch.nn.Parameter(torch.zeros(2))], fused=False)
        for rule in opt.rule.rules:
            for key, spec in rule.checks.items():
                if isinstance(spec, hyperspec.Real) and key in opt.defaults:
                    out += [(rec.name, {key: bad}) for bad in spec.bad_values()[:2]]
    return out


@pytest.mark.parametrize(("name", "hyper"), _settings(), ids=str)
def test_settings_only_refuses_as_a_build_over_parameters_does(name, hyper):
    from descentlab.engine.optimizing import make_optimizer

    def said(params: Any) -> str | None:
        try:
            make_optimizer(name, params, hyper)
        except (TypeError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    assert said(optim.SETTINGS_ONLY) == said([torch.nn.Parameter(torch.zeros(2))])
