"""benchmarks/step_ab.py pairs each round's new and base step times (its comparison is what the
kernel runtime's speed is judged by): the ratios and their range are the rounds',
never a ratio of medians taken over unpaired runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ab():
    spec = importlib.util.spec_from_file_location("step_ab", ROOT / "benchmarks" / "step_ab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row(fused: float, eager: float, torch_fused: float | None = None) -> dict:
    return {"params": 100000, "optimizer": "adam", "dl fused": fused, "dl eager": eager,
            "torch fused": torch_fused, "torch foreach": None, "GB/s": 1.2}  # fmt: skip


def test_ratios_are_paired_by_round(ab, tmp_path):
    # round 0: the machine slow for both arms; round 1: fast for both -- the fused step is 10 %
    # slower in each round, the eager one the same in round 0 and twice as fast in round 1
    b = [_write(tmp_path / "b0", [_row(2.0, 4.0)]), _write(tmp_path / "b1", [_row(1.0, 2.0)])]
    n = [
        _write(tmp_path / "n0", [_row(2.2, 4.0, 2.0)]),
        _write(tmp_path / "n1", [_row(1.1, 1.0, 1.0)]),
    ]
    files = {"base": b, "new": n}
    (row,) = ab.compare(files)
    assert row["dl fused"] == pytest.approx((1.1, 1.1, 1.1))
    assert row["dl eager"] == pytest.approx((0.75, 0.5, 1.0))
    assert row["fused/torch fused"] == pytest.approx(1.1)
    # per torch: base has no torch time here, so its triad (1 ms at 1.2 GB/s); new's torch
    # fused step is 2.0 then 1.0 ms: (2.2 / 2.0) / 2.0 and (1.1 / 1.0) / 1.0
    assert row["fused, per torch"] == pytest.approx((0.825, 0.55, 1.1))


def test_scheduled_over_constant_is_each_runs_own_pairing(ab, tmp_path):
    """With --schedule: each run's sched/const (its arms paired inside the run), and new/base
    of those, round by round -- a slow round moves both arms of a run alike."""

    def row(const: float, sched: float) -> dict:
        return {"params": 100000, "optimizer": "lion", "key": "betas", "const": const,
                "sched": sched, "torch": None}  # fmt: skip

    b = [_write(tmp_path / "b0", [row(2.0, 2.2)]), _write(tmp_path / "b1", [row(1.0, 1.06)])]
    n = [_write(tmp_path / "n0", [row(2.0, 2.0)]), _write(tmp_path / "n1", [row(1.0, 1.01)])]
    (got,) = ab.compare_ratios({"base": b, "new": n}, ab.PAIRS["--schedule"])
    assert got["key"] == "betas" and got["ratio"] == "sched/const"
    assert got["base"] == pytest.approx([1.1, 1.06])
    assert got["new"] == pytest.approx([1.0, 1.01])
    assert got["new/base"] == pytest.approx([1.0 / 1.1, 1.01 / 1.06])


def test_param_groups_over_one_group_is_each_runs_own_pairing(ab, tmp_path):
    """With --groups: each run's hf/one and layers/one, and new/base of those, round by
    round."""

    def row(one: float, hf: float, layers: float) -> dict:
        return {"params": 100000, "optimizer": "adamw", "key": "groups", "one": one, "hf": hf,
                "layers": layers}  # fmt: skip

    b = [_write(tmp_path / "b0", [row(1.0, 1.2, 2.0)])]
    n = [_write(tmp_path / "n0", [row(2.0, 2.0, 2.2)])]
    hf, layers = ab.compare_ratios({"base": b, "new": n}, ab.PAIRS["--groups"])
    assert (hf["ratio"], layers["ratio"]) == ("hf/one", "layers/one")
    assert hf["base"] == pytest.approx([1.2]) and hf["new"] == pytest.approx([1.0])
    assert layers["new/base"] == pytest.approx([1.1 / 2.0])


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--base", "/nonexistent"], "--base: '/nonexistent' has no src/descentlab"),
        (["--base", ".", "--rounds", "0"], "--rounds must be at least 1, got 0"),
        (["--base", ".", "--", "--json", "x.jsonl"], "--json is this script's"),
    ],
)
def test_bad_arguments_are_one_line(ab, argv, says, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exc:
        ab.main(argv)
    assert exc.value.code == 2
    assert says in capsys.readouterr().err


def test_a_scheduled_beta1_keeps_every_other_beta(monkeypatch):
    """step.py --schedule momentum moves beta1 only: Adan's three betas stay three (a pair
    was written, which Adan's declared check refuses)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("step", ROOT / "benchmarks" / "step.py")
    step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step)
    group = {"betas": (0.98, 0.92, 0.99)}
    step._scheduled(group, "betas", (0.98, 0.92, 0.99), 50)
    assert group["betas"][1:] == (0.92, 0.99) and group["betas"][0] == pytest.approx(0.98 * 0.9)
