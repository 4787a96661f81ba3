"""scripts/torch_optim_suite.py, on a small test file of this project's own written the way
PyTorch's ``TestOptimRenewed`` is (``@optims(optim_db)``, device-type instantiation): each
backend runs the optimizers it names, the eager backend runs eagerly, the comparison finds
the tests that fail for descentlab only, and the inputs descentlab accepts on purpose are
left out of the error inputs (and listed) on its backends only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "torch_optim_suite.py"

TEST_FILE = """
import torch
from torch.testing._internal.common_device_type import instantiate_device_type_tests
from torch.testing._internal.common_optimizers import optim_db, optims
from torch.testing._internal.common_utils import TestCase


def _who(optim_info):
    p = torch.nn.Parameter(torch.ones(3))
    opt = optim_info.optim_cls([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    plans = getattr(getattr(opt, "_fused", None), "plans", {})
    fused = any(plan is not None for plan in plans.values())
    return f"{type(opt).__module__}.{type(opt).__name__} fused={fused}"


class TestOptimRenewed(TestCase):
    @optims(optim_db, dtypes=[torch.float32])
    def test_tell_backend(self, device, dtype, optim_info):
        self.fail(_who(optim_info))

    @optims(optim_db, dtypes=[torch.float32])
    def test_torch_only(self, device, dtype, optim_info):
        self.assertTrue(optim_info.optim_cls.__module__.startswith("torch."))

    @optims(optim_db, dtypes=[torch.float32])
    def test_passes(self, device, dtype, optim_info):
        self.assertEqual(optim_info.optim_cls.__name__, optim_info.name)

    @optims(optim_db, dtypes=[torch.float32])
    def test_error_inputs(self, device, dtype, optim_info):
        errors = optim_info.optim_error_inputs_func(device=device, dtype=dtype)
        texts = [e.error_regex for e in errors]
        self.assertTrue(texts)
        self.assertFalse([t for t in texts if "foreach=True" in t or "both floats" in t])


instantiate_device_type_tests(TestOptimRenewed, globals(), only_for="cpu")
"""


@pytest.mark.process
@pytest.mark.slow
def test_suite_runs_each_backend_and_reports_descentlab_only_failures(tmp_path):
    test_file = tmp_path / "test_like_torch.py"
    test_file.write_text(TEST_FILE)
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--test-file", str(test_file), "--optims", "Adam,SGD",
         "--timeout", "300", "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # descentlab-only failures exist
    data = json.loads(out.read_text())
    runs, report = data["runs"], data["report"]
    assert set(runs) == {"torch", "descentlab", "descentlab-eager"}

    def message(backend, test):
        return runs[backend]["results"][test]["message"]

    for name in ("Adam", "SGD"):
        test = f"test_tell_backend_{name}_cpu_float32"
        assert f"torch.optim.{name.lower()}.{name} fused=False" in message("torch", test)
        assert f".{name} fused=True" in message("descentlab", test), message("descentlab", test)
        assert message("descentlab", test).startswith("AssertionError: descentlab.optim.")
        assert f".{name} fused=False" in message("descentlab-eager", test)
        assert message("descentlab-eager", test).startswith("AssertionError: descentlab.optim.")
        # every test ran, for both optimizers only
        for backend in runs:
            counts = report["per_optimizer"][backend][name]
            assert counts["run"] == 4, (backend, counts)

    for backend in ("descentlab", "descentlab-eager"):
        ours = {e["test"] for e in report["ours_only"][backend]}
        both = {e["test"] for e in report["both"][backend]}
        assert ours == {"test_torch_only_Adam_cpu_float32", "test_torch_only_SGD_cpu_float32"}
        assert both == {"test_tell_backend_Adam_cpu_float32", "test_tell_backend_SGD_cpu_float32"}
        # Adam's inputs that descentlab accepts on purpose (BEYOND_TORCH) are left out of its
        # backends' error inputs, not torch's: test_error_inputs fails on torch only
        assert runs[backend]["results"]["test_error_inputs_Adam_cpu_float32"]["outcome"] == "passed"
        left = {(r["left_out"], r["error_regex"]) for r in runs[backend]["left_out"]}
        assert (
            "Adam",
            "lr as a Tensor is not supported for capturable=False and foreach=True",
        ) in left
        assert all(name == "Adam" for name, _ in left), left
    assert runs["torch"]["left_out"] == []
    assert runs["torch"]["results"]["test_error_inputs_Adam_cpu_float32"]["outcome"] == "failed"
    assert runs["torch"]["results"]["test_error_inputs_SGD_cpu_float32"]["outcome"] == "passed"
    assert "failing for descentlab, passing on torch" in proc.stdout


@pytest.mark.process
def test_suite_refuses_a_file_without_torchs_test_class(tmp_path):
    bad = tmp_path / "empty.py"
    bad.write_text("x = 1\n")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--test-file", str(bad)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--test-file" in proc.stderr and "defines no TestOptimRenewed" in proc.stderr
