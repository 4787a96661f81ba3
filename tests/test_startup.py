"""A process that trains with descentlab's optimizers does not import torch._dynamo (~1.1 s
of start-up): torch's Optimizer methods that are wrapped in torch._disable_dynamo are called
unwrapped while nothing can be compiling, and wrapped once torch._dynamo is loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from descentlab.optim.optimizer import _torch_method

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_a_run_trained_alone_never_imports_torch_dynamo(tmp_path):
    script = (
        "import sys\n"
        "from descentlab.engine.config import RunConfig\n"
        "from descentlab.engine.run import train\n"
        "from descentlab.store import Store\n"
        "cfg = RunConfig(problem='moons', problem_options={'n_samples': 100}, model='mlp',\n"
        "                optimizer='adam', steps=5, batch_size=16)\n"
        f"train(cfg, Store({str(tmp_path / 's.sqlite')!r}), progress=False)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_torch_methods_are_unwrapped_only_while_torch_dynamo_is_not_imported(monkeypatch):
    import torch._dynamo

    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        wrapped = getattr(torch.optim.Optimizer, name)
        assert _torch_method(name) is wrapped
    monkeypatch.delitem(sys.modules, "torch._dynamo")
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        wrapped = getattr(torch.optim.Optimizer, name)
        assert _torch_method(name) is wrapped.__wrapped__
    # a method torch does not wrap is returned as it is
    assert _torch_method("__repr__") is torch.optim.Optimizer.__repr__
