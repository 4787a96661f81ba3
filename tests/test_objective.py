"""A comparison on the user's own training code (``compare(objective=fn)``): the protocol a
``Problem`` gets, one call of the function per trial.

- The same model, data and loop written as a ``Problem`` and as an objective function give
  the same tuning choices, the same per-run values bit for bit and the same verdict.
- Pruning's rung runs reach the objective as trials of the rung's length and prune the
  settings the ``Problem`` prunes.
- A comparison killed with ``kill -9`` in the middle of an objective's trial continues it from
  its ``run.checkpoint`` and ends with the uninterrupted table.
- A bad objective -- one that raises, returns something that is not a ``Score``, reports NaN
  or reads the test split while tuning -- is one clear line each.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from _killed import compare_killed_at_mark

from descentlab import Score
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.problems.problem import Problem


def _data() -> dict[str, np.ndarray]:
    """Two noisy classes in 4 dimensions: 160 training and 60 test examples."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 220)
    x = rng.normal(size=(220, 4)).astype(np.float32) + (2 * y[:, None] - 1) * 0.6
    return {"x_train": x[:160], "y_train": y[:160], "x_test": x[160:], "y_test": y[160:]}


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _problem() -> Problem:
    return Problem(name="twoclass", model=_model, data=_data(), loss="cross_entropy",
                   metric="accuracy")  # fmt: skip


def natural_loop(run) -> Score:
    """The loop a user writes, with the public helpers that give it a ``Problem``'s batches
    (``run.batches()``), evaluation (``run.evaluate``) and score (``run.score``)."""
    torch.manual_seed(run.seed)
    model = _model()
    opt = run.optimizer(model.parameters())
    sched = run.scheduler(opt)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step, (x, y) in enumerate(run.batches(), 1):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()
        if step % run.eval_every == 0 or step == run.steps:
            run.report(step, run.evaluate(model)["accuracy"])
    return run.score(model)


SPEC = dict(optimizers=["sgd", "adam"], batch_size=32, steps=40, lrs_per_optimizer=3,
            lr_ranges={"sgd": (0.1, 1.0), "adam": (0.003, 0.1)}, refine=False, seeds=2,
            max_seeds=2, landscapes=())  # fmt: skip


def _values(result) -> list:
    """Each optimizer's tuning scores, chosen setting and test values by seed."""
    return [
        ([c.score for c in r.candidates], r.best_setting, r.final_val_accuracy,
         r.test_accuracy_seeds, {s: e["accuracy"].tolist() for s, e in r.test_examples.items()})
        for r in result.results
    ]  # fmt: skip


def test_a_problem_and_its_loop_as_an_objective_give_the_same_comparison(tmp_path):
    spec = CompareSpec(**SPEC)
    as_problem = compare(spec, tmp_path / "p", workers=1, progress=False, problem=_problem())
    with pytest.warns(RuntimeWarning, match="train one at a time"):
        as_objective = compare(spec, tmp_path / "o", workers=1, progress=False,
                               problem=_problem(), objective=natural_loop)  # fmt: skip
    assert _values(as_objective) == _values(as_problem)
    assert all(r.test_examples for r in as_objective.results)  # paired by example
    same = [(x.result.label, x.tied) for x in as_problem.ranking()]
    assert [(x.result.label, x.tied) for x in as_objective.ranking()] == same
    headline = as_problem.recommendation(timings=False).split("\n")[0]
    assert as_objective.recommendation(timings=False).split("\n")[0] == headline


def test_pruning_stops_an_objectives_settings_as_it_stops_the_problems(tmp_path):
    spec = CompareSpec(**{**SPEC, "optimizers": ["sgd"], "lr_ranges": {"sgd": (1e-3, 3.0)},
                          "lrs_per_optimizer": 8, "steps": 64, "prune": "bounds"})  # fmt: skip
    as_problem = compare(spec, tmp_path / "p", workers=1, progress=False, problem=_problem())
    with pytest.warns(RuntimeWarning):
        as_objective = compare(spec, tmp_path / "o", workers=1, progress=False,
                               problem=_problem(), objective=natural_loop)  # fmt: skip
    pruned = [(c.pruned_step, c.pruned_score) for c in as_objective.results[0].candidates]
    assert pruned == [(c.pruned_step, c.pruned_score) for c in as_problem.results[0].candidates]
    assert any(step is not None for step, _ in pruned)  # a setting was pruned at a rung
    # the same choice and final runs (tuning scores differ where the Problem's chance rule,
    # which an objective's metric has none of, failed a setting that no rule pruned)
    assert [v[1:] for v in _values(as_objective)] == [v[1:] for v in _values(as_problem)]


RESUMABLE = """
import os, time
from pathlib import Path
import torch
from descentlab import Score


def fn(run):
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(3, 1)
    opt = run.optimizer(model.parameters())
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    start, saved = 0, run.restore()
    if saved is not None:
        start, state = saved
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        Path(os.environ["MARKS"], "resumed").write_text(str(start))
    for step in range(start + 1, run.steps + 1):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        run.report(step, loss.item())
        run.checkpoint(step, {"model": model.state_dict(), "opt": opt.state_dict()})
        if os.environ.get("HANG_AT") == str(step):
            Path(os.environ["MARKS"], "hanging").write_text("")
            time.sleep(120)
    with torch.no_grad():
        return Score(float(((model(x) - y) ** 2).mean()), maximize=False, name="mse")
"""


@pytest.mark.process
def test_a_killed_comparison_continues_the_objectives_trial_from_its_checkpoint(tmp_path):
    (tmp_path / "objective_file.py").write_text(RESUMABLE)
    ref = f"{tmp_path}/objective_file.py:fn"
    spec = CompareSpec(optimizers=["sgd"], steps=30, lrs_per_optimizer=2, refine=False,
                       seeds=2, max_seeds=2, landscapes=(),
                       objective={"form": "function", "ref": ref})  # fmt: skip
    os.environ["MARKS"] = str(tmp_path)
    env = {**os.environ, "HANG_AT": "17"}
    compare_killed_at_mark(spec, tmp_path / "runs", tmp_path / "hanging", env)
    with pytest.warns(RuntimeWarning, match="train one at a time"):
        resumed = compare(spec, tmp_path / "runs", workers=1, progress=False, checkpoint_every=5)
    assert (tmp_path / "resumed").read_text() == "15"  # its last checkpoint before the kill
    with pytest.warns(RuntimeWarning):
        alone = compare(spec, tmp_path / "alone", workers=1, progress=False)
    assert resumed.table(timings=False) == alone.table(timings=False)
    assert _curves(resumed) == _curves(alone)  # the resumed trial's reports, both sides of the kill


def _curves(result) -> list:
    """Every tuning and final run's reported values, with their steps."""
    from descentlab.store import Store

    store = Store(result.store_path)
    runs = [rid for r in result.results for c in r.candidates for rid in c.run_ids]
    runs += [rid for r in result.results for rid in r.curve_runs + r.refit_runs]
    out = [{k: (v.steps.tolist(), v.values.tolist()) for k, v in store.metrics(rid).items()}
           for rid in runs]  # fmt: skip
    store.close()
    return out


def _raises(run):
    raise RuntimeError("the data loader broke")


def _returns_a_float(run):
    run.optimizer(_model().parameters())
    return 0.5


def _reads_the_test_split(run):
    run.optimizer(_model().parameters())
    return Score(float(run.splits.y_test.float().mean()), maximize=True)


def _builds_no_optimizer(run):
    return Score(0.5, maximize=True)


def _steps(run, opt=None, *, schedule=True, steps=None, other=None):
    """A small training loop: ``opt`` (the trial's where None) stepped ``steps`` times (the
    trial's), its schedule stepped after each step unless ``schedule`` is False, ``other``
    stepped on the same parameters after each step."""
    torch.manual_seed(run.seed)
    model = _model()
    given = run.optimizer(model.parameters())
    opt = given if opt is None else opt(model.parameters())
    sched = run.scheduler(given)
    (x, y), _ = run.train, run.eval
    other = None if other is None else other(model.parameters())
    for _step in range(run.steps if steps is None else steps):
        for o in (opt, other):
            if o is not None:
                o.zero_grad()
                torch.nn.functional.cross_entropy(model(x[:32]), y[:32]).backward()
                o.step()
        if schedule:
            sched.step()
    return model


def _turns_around(run):
    _steps(run)
    return Score(0.5, maximize=run.phase == "tune", name="score")


def _forgets_return(run):
    _steps(run)


def _steps_its_own_adam(run):
    _steps(run, lambda p: torch.optim.Adam(p, lr=0.01))
    return Score(0.5, maximize=True)


def _steps_half(run):
    _steps(run, steps=run.steps // 2)
    return Score(0.5, maximize=True)


def _another_steps_them_too(run):
    _steps(run, other=lambda p: torch.optim.SGD(p, lr=0.01))
    return Score(0.5, maximize=True)


def _never_schedules(run):
    _steps(run, schedule=False)
    return Score(0.5, maximize=True)


def _reports_nan(run):
    run.optimizer(_model().parameters())
    run.report(5, float("nan"))
    return Score(0.5, maximize=True)


@pytest.mark.parametrize(
    "objective, says",
    [
        (
            _raises,
            r"objective .*_raises \(trial tune/sgd/holdout, seed 0\) failed: RuntimeError: "
            r"the data loader broke in _raises \(.*test_objective.py:\d+\)$",
        ),
        (_returns_a_float, r"returned float: an objective returns Score\(value, maximize="),
        (
            _reads_the_test_split,
            r"read the test split in a tune trial: while tuning .* evaluate "
            r"on run.eval, the validation split",
        ),
        (_builds_no_optimizer, r"never built its optimizer with run.optimizer\(params\)"),
        (
            _turns_around,
            r"returned 'score' \(minimized\) after 'score' \(maximized\): one "
            r"metric, one direction per comparison",
        ),
        (_forgets_return, r"returned NoneType \(is its `return` missing\?\): an objective"),
        (
            _steps_its_own_adam,
            r"seed 0\): the optimizer descentlab gave was stepped 0 times in 40 steps",
        ),
        (_steps_half, r"the optimizer descentlab gave was stepped 20 times in 40 steps"),
        (
            _another_steps_them_too,
            r"were stepped by another optimizer \(SGD\): only the trial.s optimizer may step them",
        ),
        (
            _never_schedules,
            r"the trial's schedule \(lr=.*\) was stepped 0 times in 40 optimizer "
            r"steps: call step\(\) of run.scheduler",
        ),
    ],
    ids=[
        "raises",
        "returns a float",
        "reads the test split while tuning",
        "no optimizer",
        "turns around",
        "forgets return",
        "steps its own adam",
        "steps half",
        "another steps them too",
        "never schedules",
    ],
)
def test_a_bad_objective_is_one_clear_line(objective, says, tmp_path):
    drawn = (
        {"search": "quasirandom", "lrs_per_optimizer": 4} if objective is _never_schedules else {}
    )
    spec = CompareSpec(**{**SPEC, "optimizers": ["sgd"], "lr_ranges": {}, **drawn})
    said = pytest.warns(RuntimeWarning) if not drawn else warnings.catch_warnings()
    with said, pytest.raises(ValueError, match=says) as got:
        compare(spec, tmp_path, workers=1, progress=False, problem=_problem(), objective=objective)
    assert "\n" not in str(got.value)


def test_an_objective_reporting_nan_is_a_diverged_trial_said_once(tmp_path):
    spec = CompareSpec(**{**SPEC, "optimizers": ["sgd"], "lr_ranges": {}})
    with pytest.warns(RuntimeWarning) as said:
        result = compare(spec, tmp_path, workers=1, progress=False, problem=_problem(),
                         objective=_reports_nan)  # fmt: skip
    lines = [str(w.message) for w in said if "not finite" in str(w.message)]
    assert len(lines) == 1 and "reported nan at step 5" in lines[0] and "\n" not in lines[0]
    assert result.results[0].diverged_tuning == 3 and result.results[0].best is None
