"""Issue 29, item 2: a trial's settings are checked once where they enter.

``descentlab compare`` builds its CompareSpec from the flags and checks it (the CLI), then
``compare()`` and ``prepare()`` ask again: the spec's registries, ranges, protocol and search
space are looked through once."""

from __future__ import annotations

import pytest

from descentlab.cli import main
from descentlab.experiments.compare import CompareSpec
from descentlab.experiments.compare import spec as spec_module

ARGV = [
    "compare", "--problem", "moons", "--model", "mlp", "--optimizer", "sgd",
    "--lr-range", "sgd=0.01:0.1", "--lr-trials", "2", "--no-refine", "--steps", "3",
    "--seeds", "1", "--workers", "1", "--no-report", "--no-progress", "--landscapes", "none",
    "--batch-size", "16",
]  # fmt: skip


def test_a_comparison_checks_its_spec_once(monkeypatch, tmp_path, capsys):
    checked = []
    real_check = spec_module._check_names

    def check_names(spec, custom):
        checked.append(1)
        return real_check(spec, custom)

    monkeypatch.setattr(spec_module, "_check_names", check_names)
    main([*ARGV, "--runs-dir", str(tmp_path)])
    capsys.readouterr()
    assert checked == [1]


def test_a_spec_changed_after_its_check_is_checked_again():
    spec = CompareSpec(problem="moons", optimizers=["sgd"], steps=5)
    spec.validate()
    spec.steps = 0
    with pytest.raises(ValueError, match="steps"):
        spec.validate()
    spec.steps = 5
    spec.optimizers.append("no-such-optimizer")  # changed in place, inside a list
    with pytest.raises(KeyError, match="no-such-optimizer"):
        spec.validate()
