"""A Lightning module compared on its own training (``compare --lightning``): descentlab
supplies its ``configure_optimizers`` -- the trial's optimizer and per-step schedule -- and the
verdict reads the metric the module logs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("lightning") is None:  # (imported by the test, not at collection)
    pytest.skip("lightning is not installed", allow_module_level=True)

from descentlab.experiments.compare import CompareSpec, compare

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lightning_module.py"


def test_a_lightning_module_trains_with_each_trials_optimizer(tmp_path):
    objective = {"form": "lightning", "ref": f"{EXAMPLE}:make", "metric": "val_acc"}
    spec = CompareSpec(optimizers=["sgd", "adam"], steps=12, eval_every=6, search="quasirandom",
                       lrs_per_optimizer=2, seeds=2, max_seeds=2, landscapes=(),
                       objective=objective)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="train one at a time"):
        result = compare(spec, tmp_path, workers=1, progress=False)
    assert result.complete and result.select_metric == "val/accuracy"  # val_acc, maximized
    for r in result.results:  # the trial's optimizer stepped: its monitor recorded it
        assert "monitor/update_ratio" in r.curves
    steps = [c.runs[0][0].tolist() for r in result.results for c in [r.curves["val/accuracy"]]]
    assert steps == [[6, 12], [6, 12]]
    assert "metric: val_acc (maximized)" in " ".join(" ".join(result.protocol()).split())
