"""``descentlab compare --one-at-a-time`` and the default (vectorized groups): every curve run
gives its own seconds to the target (engine.timing: a run of a vectorized pass is charged its
share), beside the steps."""

from __future__ import annotations

import json

import pytest

from descentlab.cli import main

ARGS = ["compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
        "--optimizers", "adam", "--steps", "60", "--lr-trials", "2", "--no-refine",
        "--seeds", "2", "--target-accuracy", "0.6", "--workers", "1", "--no-report",
        "--no-progress", "--json"]  # fmt: skip


@pytest.mark.parametrize("alone", [True, False])
def test_seconds_to_target_alone_and_vectorized(tmp_path, capsys, alone):
    argv = [*ARGS, "--runs-dir", str(tmp_path)] + (["--one-at-a-time"] if alone else [])
    assert main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["steps_to_target"][0] is not None
    secs = row["seconds_to_target"]
    assert len(secs) == 2 and all(s is not None and s > 0 for s in secs)


@pytest.mark.parametrize("alone", [True, False])
def test_tables_show_a_seconds_column_in_both_modes(tmp_path, alone):
    from descentlab.experiments.compare import CompareSpec, compare
    from descentlab.report.compare_tables import results_table

    spec = CompareSpec(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                       optimizers=["adam"], steps=60, lrs_per_optimizer=2, refine=False,
                       seeds=2, target_accuracy=0.6, landscapes=())  # fmt: skip
    cmp = compare(spec, tmp_path, workers=1, progress=False, vectorize=not alone)
    assert cmp.results[0].steps_to_target[0] is not None
    # the console's table keeps within 100 columns: its seconds to the target are the report's
    assert "to 0.6 val acc: steps, seconds" in results_table(cmp)  # one column, both
    assert "steps to 0.6" in cmp.table()
