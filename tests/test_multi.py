"""Several problems at once: rank tables and performance profiles (experiments.multi)."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from descentlab.cli import main
from descentlab.experiments import tuning
from descentlab.experiments.multi import (
    compare_many,
    expand_problems,
    performance_profile,
    rank_table,
)
from descentlab.report.profiles import render_multi_report
from descentlab.store import Store


def _profile_by_definition(t, taus):
    """rho_s(tau) counted problem by problem, as Dolan & More define it."""
    n_p, n_s = len(t), len(t[0])
    rho = np.zeros((n_s, len(taus)))
    for s, (k, tau) in itertools.product(range(n_s), enumerate(taus)):
        count = 0
        for p in range(n_p):
            best = min(t[p])
            if math.isfinite(best) and math.isfinite(t[p][s]) and t[p][s] / best <= tau:
                count += 1
        rho[s, k] = count / n_p
    return rho


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_performance_profile_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(1, 50, size=(6, 4)).astype(float)
    t[rng.random(t.shape) < 0.25] = np.inf
    t[0] = np.inf  # a problem nobody solves counts against everyone
    taus = [1.0, 1.5, 2.0, 4.0, 100.0]
    _, rho = performance_profile(t, taus)
    np.testing.assert_array_equal(rho, _profile_by_definition(t.tolist(), taus))
    # rho(1) sums to at least the share of solved problems (ties count for each winner).
    solved = np.isfinite(t).any(axis=1).mean()
    assert rho[:, 0].sum() >= solved - 1e-12
    assert np.all(np.diff(rho, axis=1) >= 0)  # non-decreasing in tau


def test_rank_table_by_hand():
    scores = np.array([[0.90, 0.95, 0.95, np.nan], [0.3, 0.1, 0.2, 0.4]])
    ranks = rank_table(scores, [True, False])
    np.testing.assert_array_equal(ranks, [[3, 1.5, 1.5, 4], [3, 1, 2, 4]])


def test_expand_problems():
    assert expand_problems("default,moons") == [
        "mnist1d", "digits", "quadratic_deep", "charlm", "moons",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="distinct"):
        expand_problems("moons,moons")


SETTINGS = dict(
    optimizers=["sgd", "adam"],
    batch_size=16,
    steps=30,
    tune_steps=30,
    lrs_per_optimizer=2,
    seeds=1,
    eval_every=5,
    landscapes=(),
    refine=False,  # the coarse grid only: the search has its own tests
    max_extend=0,
)


def test_two_problems_rank_table_profiles_and_report(tmp_path):
    multi = compare_many(
        ["moons", "regression"],
        tmp_path,
        settings=SETTINGS,
        workers=1,
        progress=False,
    )
    render_multi_report(multi, problem_reports=False)  # the suite's report only
    assert [p.name for p in multi.problems] == ["moons", "regression"]
    assert [p.metric for p in multi.problems] == ["accuracy", "loss"]
    times = multi.times()
    for p, row in zip(multi.problems, times, strict=True):
        assert p.target_kind == "auto"
        store = Store(p.comparison.store_path)
        for r, t in zip(p.comparison.results, row, strict=True):
            # Recompute the time to target from the stored validation curve.
            m = store.metrics(r.curve_runs[0])[f"val/{p.metric}"]
            hit, _ = tuning.time_to_target(m.steps, m.values, p.target, maximize=p.maximize)
            assert t == (math.inf if hit is None else max(hit, 1))
            final = store.get_run(r.refit_runs[0]).summary[f"test/{p.metric}"]
            assert p.final[p.comparison.results.index(r)] == pytest.approx(final)
        store.close()
    # The best optimizer on each problem reaches the auto target by construction.
    assert np.isfinite(times.min(axis=1)).all()
    text = multi.table()
    assert "mean rank" in text and "wins (seconds to target)" in text
    # the console says each problem's verdict and the test seeds each optimizer got, as a
    # single comparison does (the same sequential design on every problem)
    lines = multi.verdict_lines()
    for p in multi.problems:
        assert f"{p.name}: {p.comparison.headline()}" in lines
        seeds = "; ".join(p.comparison.seed_lines())
        assert seeds and f"  {p.name} test seeds: {seeds}" in lines
    html = multi.report_path.read_text()
    for needle in ("Rank table", "Performance profiles", "Problem: moons", "Problem: regression"):
        assert needle in html
    assert (multi.run_dir / "figures" / "performance_profiles.png").is_file()


@pytest.mark.parametrize(
    ("second", "message"),
    [("nosuch", "unknown problem 'nosuch'"), ("{file}:make", "problem function .* failed")],
)
def test_cli_problems_flag_rejects_bad_problems_before_training(tmp_path, capsys, second, message):
    bad = tmp_path / "bad.py"
    bad.write_text("def make():\n    raise RuntimeError('no data here')\n")
    runs = tmp_path / "runs"
    argv = ["compare", "--problems", f"moons,{second.format(file=bad)}", "--runs-dir", str(runs)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err) and err.count("\n") == 1, err
    assert not runs.exists()  # the first problem did not start
