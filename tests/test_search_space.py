"""Equal, declared tuning budgets: every optimizer gets the same number of
trials, drawn quasi-randomly from the search space it declares; the budget is printed."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from descentlab.engine.config import build_schedule
from descentlab.experiments.compare import CompareSpec, Found, tuning_plan, tuning_trials
from descentlab.experiments.compare.choices import accepts, parse_optimizer
from descentlab.experiments.compare.search_space import (
    QUASIRANDOM,
    SCHEDULES,
    WARMUPS,
    declared_space,
    run_fields,
)
from descentlab.experiments.multi import _spec_for
from tests._models import COMPARE, run_cli

SUITE = ["sgd", "momentum", "rmsprop", "adam", "mine=chain(scale_by_adam(), scale_by_lr())"]


def _edge_lookup(trial):  # a score that grows with the lr: a grid search would extend it
    return Found(1, "completed", {"val/accuracy": math.log10(trial.config.hyper["lr"]) + 10}, None)


def test_every_optimizer_gets_the_same_number_of_trials() -> None:
    spec = CompareSpec(optimizers=SUITE, search=QUASIRANDOM, lrs_per_optimizer=7, tune_seeds=2)
    spec.validate()
    for choice in spec.choices():
        cands, missing, done = tuning_plan(spec, choice, _edge_lookup, "val/accuracy", True)
        # no extension past the winning edge, no refinement: exactly the declared budget
        assert (len(cands), missing, done) == (7, [], True), choice.label
        assert all(len(c.scores) == 2 for c in cands)  # each scored over both tuning seeds
    # the grid gives them unequal budgets (the reason for the protocol)
    grid = CompareSpec(optimizers=SUITE, lrs_per_optimizer=7)
    counts = {len(tuning_plan(grid, c, _edge_lookup, "val/accuracy", True)[0])
              for c in grid.choices()}  # fmt: skip
    assert counts != {7}


def test_the_suite_tunes_with_equal_budgets_over_two_seeds() -> None:
    spec = _spec_for("digits", {})
    assert (spec.search, spec.lrs_per_optimizer, spec.tune_seeds) == (QUASIRANDOM, 20, 2)
    assert _spec_for("digits", {"lrs_per_optimizer": 8}).lrs_per_optimizer == 8
    assert _spec_for("digits", {"search": "grid"}).lrs_per_optimizer == 5


@pytest.mark.parametrize(
    ("optimizer", "dims"),
    [
        ("sgd", ["lr", "weight_decay", "warmup", "schedule"]),  # SGD has no momentum to tune
        ("momentum", ["lr", "momentum", "weight_decay", "warmup", "schedule"]),
        ("rmsprop", ["lr", "alpha", "weight_decay", "warmup", "schedule"]),
        ("adadelta", ["lr", "rho", "weight_decay", "warmup", "schedule"]),
        ("adam", ["lr", "beta1", "beta2", "weight_decay", "warmup", "schedule"]),
        ("mine=chain(scale_by_adam(), scale_by_lr())", ["lr"]),  # a user's own: lr only
    ],
)
def test_declared_spaces(optimizer: str, dims: list[str]) -> None:
    assert [d.name for d in declared_space(parse_optimizer(optimizer)).dims] == dims


def test_a_users_optimizer_declares_its_own_dimensions() -> None:
    spec = CompareSpec(
        optimizers=["mine=chain(scale_by_adam(), scale_by_lr())"],
        search=QUASIRANDOM,
        lrs_per_optimizer=5,
        space={"mine.eps": (1e-10, 1e-6)},
    )
    spec.validate()
    eps = [t.config.hyper["eps"] for t in tuning_trials(spec, spec.choices()[0])]
    assert len(eps) == 5 and all(1e-10 <= e <= 1e-6 for e in eps)


def test_draws_are_seeded_within_bounds_and_spread() -> None:
    choice = parse_optimizer("adam")
    space = declared_space(choice)
    a, b = space.draw(20, seed=0), space.draw(20, seed=0)
    assert a == b and a != space.draw(20, seed=1)
    lo, hi = choice.lr_range
    pos = np.array([math.log(s["lr"] / lo) / math.log(hi / lo) for s in a])
    assert np.all((pos >= -1e-3) & (pos <= 1 + 1e-3))
    # quasi-random: every quarter of the log range holds 5 +- 1 of the 20 draws (independent
    # uniform draws leave a quarter with 2 or fewer about 1 time in 3)
    counts = np.histogram(np.clip(pos, 0, 1), bins=4, range=(0, 1))[0]
    assert counts.min() >= 4 and counts.max() <= 6, counts
    assert all(0.7 <= s["beta1"] <= 0.98 and 0.9 <= s["beta2"] <= 0.999 for s in a)
    assert {s["schedule"] for s in a} == set(SCHEDULES)
    assert {s["warmup"] for s in a} == set(WARMUPS)


@pytest.mark.parametrize(
    ("schedule", "warmup", "expected"),
    [
        # (step, lr factor) from the formulas: warmup linear from 0 over W = 10 of T = 100
        # steps, then the schedule over the remaining 90
        ("constant", 0.0, [(0, 1.0), (50, 1.0), (99, 1.0)]),
        ("constant", 0.1, [(0, 0.0), (5, 0.5), (10, 1.0), (99, 1.0)]),
        ("cosine", 0.0, [(0, 1.0), (50, 0.5), (100, 0.0)]),
        ("cosine", 0.1, [(0, 0.0), (10, 1.0), (55, 0.5), (100, 0.0)]),
        ("linear", 0.0, [(0, 1.0), (25, 0.75), (100, 0.0)]),
        ("linear", 0.05, [(0, 0.0), (5, 1.0), (24, 0.8), (100, 0.0)]),
    ],
)
def test_warmup_and_schedule_become_the_runs_lr_schedule(schedule, warmup, expected) -> None:
    hyper, sched = run_fields(
        {"lr": 0.2, "beta1": 0.8, "beta2": 0.99, "warmup": warmup, "schedule": schedule},
        steps=100,
    )
    assert hyper == {"lr": 0.2, "betas": (0.8, 0.99)}
    if not sched:
        assert (schedule, warmup) == ("constant", 0.0)
        return
    s, _ = build_schedule(sched["lr"], total_steps=100)
    for step, factor in expected:
        assert s.value(step, 0.2) == pytest.approx(0.2 * factor, abs=1e-12), step


def test_the_cli_prints_the_budget(capsys, tmp_path) -> None:
    argv = [a for a in COMPARE if a not in ("--lr-trials", "2")]
    code, out, err = run_cli(
        [*argv, "--budget", "3", "--no-report", "--workers", "1", "--runs-dir", tmp_path], capsys
    )
    assert code == 0, err
    # the protocol as run, generated from the spec: the sampler, its seed, each space
    assert "tuning: 3 trials per optimizer, the first points of a scrambled Halton sequence" in out
    assert "(seed 0)" in out and "pruning: off" in out
    assert "(tuning trials run: SGD 3, Momentum 3)" in out
    assert "  Momentum: lr log-uniform" in out and "1-momentum log-uniform [0.01, 0.5]" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "0"], "--budget must be a positive integer, got 0"),
        (["--budget", "3", "--lr-trials", "4"], "--budget 3 and --lr-trials 4"),
        (["--budget", "3", "--search", "grid"], "--budget draws quasi-randomly"),
    ],
)
def test_bad_budgets_are_refused(capsys, tmp_path, extra, message) -> None:
    argv = [a for a in COMPARE if a not in ("--lr-trials", "2")]
    code, _, err = run_cli([*argv, *extra, "--runs-dir", tmp_path / "runs"], capsys)
    assert code != 0 and message in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.process  # (a browser)
def test_the_results_table_fits_a_1300px_page(tmp_path) -> None:
    """Six tuned hyperparameters per row made the HTML results table wider than the page: the
    setting is now a wrapping column, one hyperparameter a line. Measured in Chromium where
    it is installed (the playground's browser test's), else checked on the markup."""
    import shutil

    from descentlab.experiments.compare import compare
    from descentlab.report.compare_tables import results_table
    from descentlab.report.page import report_page
    from tests._models import tiny_compare

    labels = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"]
    spec = CompareSpec(**tiny_compare(optimizers=labels, search=QUASIRANDOM,
                                      lrs_per_optimizer=1, steps=4, seeds=1))  # fmt: skip
    cmp = compare(spec, tmp_path / "runs", workers=1, progress=False)
    table = results_table(cmp)
    assert 'class="text">0.' in table and "<br>beta1=" in table and "<br>schedule=" in table
    page = tmp_path / "page.html"
    page.write_text(report_page("t", "s", [("results", "Results", table)], "f"))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    sync_api = pytest.importorskip("playwright.sync_api")
    if chromium is None:
        pytest.skip("no chromium to measure the page in")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        view = browser.new_page(viewport={"width": 1300, "height": 900})
        view.goto(page.as_uri())
        overflow = view.evaluate(
            "() => { const s = document.querySelector('.scroll');"
            " return s.scrollWidth - s.clientWidth; }"
        )
        browser.close()
    assert overflow <= 0, f"the table is {overflow}px wider than the page"


@pytest.mark.parametrize(
    ("optimizer", "key", "takes"),
    [
        ("sgd", "momentum", True),
        ("sgd", "nesterov", True),
        ("sgd", "betas", False),
        ("adam", "betas", True),
        ("adam", "momentum", False),
        ("lookahead", "betas", True),  # its base optimizer's (Adam's)
        ("lookahead", "foo", False),
        ("torch.optim:SGD", "momentum", True),  # your own: the keywords it declares
        ("torch.optim:SGD", "rho", False),
        ("torch.optim:AdamW", "amsgrad", True),
        ("torch.optim:AdamW", "foo", False),
    ],
)
def test_whether_an_optimizer_takes_a_keyword(optimizer, key, takes) -> None:
    """What a search space's ``LABEL.name`` may name: a named optimizer's factory keywords
    (a wrapper's base's too), your own optimizer's signature (torch's own, read here)."""
    assert accepts(parse_optimizer(optimizer), key) is takes
    if ":" in optimizer:
        target = getattr(torch.optim, optimizer.rsplit(":", 1)[1])
        assert takes is (key in inspect.signature(target).parameters)
