"""The metric a user names is the metric shown: an objective returning ``Score(name="rmse")``
is compared on "rmse" in the console's table and recommendation, the report, ``trials.csv``
and ``comparison.json``, under a title that is the objective's name; a problem's comparison
keeps its columns."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import textwrap
import warnings

from descentlab.cli import main

OBJECTIVE = """
import torch
from descentlab import Score

X = torch.linspace(-1, 1, 64).unsqueeze(1)
Y = 3 * X + 0.1 * torch.randn(64, 1, generator=torch.Generator().manual_seed(0))


def fit_rmse(run):
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(1, 1)
    opt = run.optimizer(model.parameters())
    sched = run.scheduler(opt)
    for _ in range(run.steps):
        opt.zero_grad()
        ((model(X) - Y) ** 2).mean().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return Score(float(((model(X) - Y) ** 2).mean().sqrt()), maximize=False, name="rmse")
"""


def test_an_objectives_metric_is_shown_by_its_name(tmp_path):
    (tmp_path / "named.py").write_text(textwrap.dedent(OBJECTIVE))
    out = io.StringIO()
    args = (f"compare --objective {tmp_path / 'named.py'}:fit_rmse --optimizers sgd,adam "
            f"--steps 6 --lr-trials 2 --no-refine --seeds 2 --max-seeds 2 --workers 1 "
            f"--no-progress --report --runs-dir {tmp_path / 'runs'}").split()  # fmt: skip
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0
    text = out.getvalue()
    assert "test rmse [95% CI]" in text and "test loss" not in text
    assert ": test rmse " in text  # the recommendation's value
    (run,) = (tmp_path / "runs").iterdir()
    rows = list(csv.DictReader((run / "trials.csv").open()))
    assert "test_rmse" in rows[0] and "test_loss" not in rows[0]
    assert any(r["test_rmse"] for r in rows if r["phase"] == "refit")
    payload = json.loads((run / "comparison.json").read_text())
    assert payload["metric"] == "rmse" and "test loss" not in payload["recommendation"]
    assert "mean validation rmse" in payload["recommendation"]
    page = (run / "report.html").read_text()
    assert "Optimizer comparison: fit_rmse (named.py)" in page and "test rmse" in page
