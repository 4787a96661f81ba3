"""A comparison's time speedups are made only between runs of one execution mode: a named
optimizer trained stacked in the vectorized pass and an eager-only imported one trained alone
get no time ratio -- one line says why and how to get one -- while ``--one-at-a-time`` (both
alone) gives it. Each optimizer's mode is in the output. (The table of which modes compare:
tests/test_speedup.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

#: an optimizer from outside descentlab, torch.optim's way: it can only train alone
SIGN_SGD = """
import torch

class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])
"""

ARGV = [
    "compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
    "--model-option", "hidden=8", "--optimizer", "adamw", "--optimizer",
    "signsgd=eageronly.SignSGD", "--batch-size", "16", "--steps", "30", "--tune-steps", "15",
    "--lr-trials", "2", "--seeds", "2", "--landscapes", "none", "--no-progress", "--no-report",
]  # fmt: skip


def _speedup_line(tmp_path: Path, *extra: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(tmp_path)])}
    env.pop("DESCENTLAB_DEBUG", None)
    runs = tmp_path / f"runs{len(extra)}"
    out = subprocess.run(
        [sys.executable, "-m", "descentlab", *ARGV, "--runs-dir", str(runs), *extra],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout.replace("\n  ", " ")
    (line,) = [x for x in text.splitlines() if x.startswith("Speedup over")]
    return line


@pytest.mark.process
def test_no_time_ratio_across_execution_modes_and_one_with_one_at_a_time(tmp_path):
    (tmp_path / "eageronly.py").write_text(SIGN_SGD)
    mixed = _speedup_line(tmp_path)
    assert "(AdamW stacked, signsgd alone)" in mixed
    # the words wrap at hyphens: compare without the line breaks' spaces
    assert "in time" not in mixed.split("):", 1)[1]
    why = "time not compared: AdamW trained stacked, signsgd alone; rerun with --one-at-a-"
    assert why in mixed
    alone = _speedup_line(tmp_path, "--one-at-a-time")
    assert "(AdamW alone, signsgd alone)" in alone and "time not compared" not in alone
    assert "x [" in alone.split("in steps, ", 1)[1].split(" in time")[0]
