"""``descentlab compare --one-at-a-time``: every trial trains by itself, so the first seed's
curve run gives wall-clock seconds to the target; by default (vectorized groups) it gives
steps only."""

from __future__ import annotations

import json

import pytest

from descentlab.cli import main

ARGS = ["compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
        "--optimizers", "adam", "--steps", "60", "--lr-trials", "2", "--no-refine",
        "--seeds", "2", "--target-accuracy", "0.6", "--workers", "1", "--no-report",
        "--no-progress", "--json"]  # fmt: skip


@pytest.mark.parametrize("alone", [True, False])
def test_seconds_to_target_only_one_at_a_time(tmp_path, capsys, alone):
    argv = [*ARGS, "--runs-dir", str(tmp_path)] + (["--one-at-a-time"] if alone else [])
    assert main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["steps_to_target"][0] is not None
    secs = row.get("seconds_to_target", [None])
    if alone:
        assert secs[0] is not None and secs[0] > 0
    else:
        assert all(s is None for s in secs)
