"""The GPU session's script and benchmarks (scripts/gpu_session.py, benchmarks/gpu_step.py,
benchmarks/gpu_gpt.py) off the device: without CUDA the session says so in one line and runs
nothing; the benchmarks' code runs on CPU tensors (the Triton kernels under Triton's
interpreter, host clock) and fills the session's markdown table."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (the GPU backend's kernels)")

from descentlab.optim import gpu

ROOT = Path(__file__).parents[1]


@pytest.fixture
def session(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import gpu_session

    return gpu_session


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_the_session_says_so_and_runs_nothing(session, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    assert session.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        "gpu_session: no CUDA device here (torch.cuda.is_available() is False): nothing run"
    ]
    assert not (tmp_path / "out").exists()


def test_an_unknown_part_is_refused(session, capsys):
    with pytest.raises(SystemExit):
        session.main(["--parts", "tests,bench"])
    assert "--parts: unknown part(s) bench" in capsys.readouterr().err


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="a CUDA device is visible: the benchmarks run on it instead"
)
def test_the_benchmarks_fill_the_table_on_the_cpu(session, tmp_path, monkeypatch, capsys):
    """The step benchmark (two Triton optimizers, Adam against torch's fused path, SAM eager
    with its closure) at two sizes and the tiny GPT, on CPU tensors; the table has every row."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    import gpu_gpt
    import gpu_step

    monkeypatch.setattr(gpu_step, "DEVICE", torch.device("cpu"))
    monkeypatch.setattr(gpu_step, "refuse_without_cuda", lambda: None)
    with gpu.interpret_on_cpu():
        rows = gpu_step.run_cuda(
            [20 * 64, 20 * 128], 1, ["lion", "adam", "sam"], inner=1,
            json_path=str(tmp_path / "step.jsonl"),
        )  # fmt: skip
    tiny = ["--layers", "1", "--width", "32", "--heads", "2", "--context", "8", "--batch", "2",
            "--vocab", "64", "--warmup", "1", "--repeat", "2"]  # fmt: skip
    gpu_gpt.main([*tiny, "--device", "cpu", "--json", str(tmp_path / "gpt.jsonl")])
    assert [r.get("error") for r in rows] == [None] * 6
    lion = rows[0]
    assert (lion["optimizer"], lion["backend"], lion["size"]) == ("lion", "triton", 1280)
    assert set(lion["ms"]) == {"dl", "dl eager", "copy"}
    assert rows[1]["torch_path"] == "fused" and rows[1]["backend"] == "triton"
    assert rows[3]["launches"] is None  # counted at the first size only
    # the Triton step moves p, g and the momentum once each way (p and m written): 5 arrays
    assert lion["moved_mb"] == pytest.approx(5 * 1280 * 4 / 1e6)
    gpt = json.loads((tmp_path / "gpt.jsonl").read_text())
    assert gpt["max_loss_difference"] < 1e-3 and gpt["benchmark"] == "tiny-gpt"
    monkeypatch.setenv("OUT", str(tmp_path))
    capsys.readouterr()
    assert session.main(["--table-only"]) == 0
    table = (tmp_path / "gpu_table.md").read_text()
    assert table.count("| lion |") == 2 and table.count("| adam |") == 2
    assert "| tiny GPT 1x32 |" in table
    short = capsys.readouterr().out
    assert "lion" in short and "tiny GPT" in short


@pytest.mark.process
def test_a_part_past_its_limit_is_stopped_with_its_children(session, tmp_path):
    """The part's process group goes: a comparison's worker would otherwise hold the device
    through the next part."""
    import sys

    code = (
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    got = session.run_part("slow", [sys.executable, "-c", code], tmp_path, 2)
    assert got["status"] == "stopped at its 2 s limit"
    child = int((tmp_path / "slow.log").read_text().splitlines()[1])
    status = Path(f"/proc/{child}/status")
    deadline = time.monotonic() + 5  # SIGKILL is sent; on a busy machine dying takes a moment
    while "State:\tZ" not in (status.read_text() if status.exists() else "State:\tZ"):
        assert time.monotonic() < deadline, f"the part's child {child} outlived its part"
        time.sleep(0.05)


def _event(name: str, device: str, kind: str | None):
    from types import SimpleNamespace

    dt = getattr(torch.autograd.DeviceType, device)
    event = SimpleNamespace(name=name, device_type=dt)
    if kind is not None:
        event.activity_type = kind
    return event


@pytest.mark.parametrize("typed", [True, False], ids=["activity-type", "names-only"])
def test_a_steps_annotation_on_the_device_is_not_a_kernel(monkeypatch, typed):
    """The profile of one Triton step: torch.optim's ``record_function`` range around
    ``step`` shows on the device's timeline too (a ``gpu_user_annotation``): one kernel, one
    copy -- the H100 run counted every device event that was not a copy: 2 kernels."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_step

    kind = (lambda k: k) if typed else (lambda k: None)
    step = "Optimizer.step#Lion.step"
    events = [
        _event(step, "CPU", kind("user_annotation")),
        _event("cudaLaunchKernel", "CPU", kind("cuda_runtime")),
        _event(step, "CUDA", kind("gpu_user_annotation")),
        _event("dl_maximize_scale_by_lion_add_decayed_weights_scale_by_lr", "CUDA", kind("kernel")),
        _event("Memcpy HtoD (Pinned -> Device)", "CUDA", kind("gpu_memcpy")),
        _event("Memset (Device)", "CUDA", kind("gpu_memset")),
    ]
    names, copies = gpu_step.device_work(events)
    assert names == ["dl_maximize_scale_by_lion_add_decayed_weights_scale_by_lr"]
    assert copies == 1


def test_the_interpreter_part_runs_the_child_test_and_the_tests_part_does_not(session, tmp_path):
    """The default parts' limits fit one 8-minute device command (15 minutes of device time
    leave room for a second); the ``interpreter`` part runs the cuda test that runs the
    interpreter tests with the device hidden (it exists under that name), the ``tests`` part
    every other cuda test."""
    assert set(session.LIMITS) == set(session.PARTS)
    assert sum(session.LIMITS[p] for p in session.DEFAULT_PARTS) <= 480
    child = session._argv("interpreter", tmp_path, False)
    rest = session._argv("tests", tmp_path, False)
    assert child[child.index("-k") + 1] == session.CHILD
    assert rest[rest.index("-k") + 1] == f"not {session.CHILD}"
    assert f"def {session.CHILD}(" in (ROOT / child[-1]).read_text()


@pytest.mark.parametrize("part", ["schedule", "compiled", "demo"])
def test_the_device_parts_name_the_device(session, tmp_path, part):
    """The scheduled step, the compiled step and the demo run on the device (each command
    stops with one line where there is none), and quick sizes shrink them."""
    argv = session._argv(part, tmp_path / "out", False)
    assert argv[argv.index("--device") + 1] == "cuda"
    assert len(session._argv(part, tmp_path / "out", True)) >= len(argv)


def test_kernel_names_are_counted_by_kind(session, monkeypatch):
    """A matrix method's step launches thousands of kernels (Shampoo: 19,681 on an H200): the
    row keeps each kind once with its count, the first twelve kinds, so the table stays a
    table (it was 5 MB)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_step

    names = ["a", "b", "a", *[f"k{i}" for i in range(20)], "a"]
    got = gpu_step.distinct(names)
    assert got[:3] == ["a x3", "b", "k0"] and got[-1] == "... 10 other kinds" and len(got) == 13
    assert gpu_step.distinct(["x"]) == ["x"]


def _lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_base_trees_rows_stand_beside_this_trees_in_every_table(session, tmp_path):
    """``--base``: each measured part's base rows (``<part>.base.jsonl``) and this tree's in
    the same table, marked; every table of docs/gpu.md is there."""
    sched = {"params": 100000, "optimizer": "momentum", "key": "momentum", "const": 0.1,
             "sched": 0.2, "torch": 0.15}  # fmt: skip
    rows = {
        "schedule": sched,
        "schedule-lr": {**sched, "key": "lr"},
        "lowbit": {
            "params": 10**7,
            "optimizer": "adamw",
            "state": "int8",
            "ms": 0.3,
            "over_f32": 1.6,
            "memory": 0.254,
        },
        "compiled": {
            "arm": "dl Adam compiled (fused)",
            "params": 76810,
            "device": "x",
            "step_us": 2448.0,
            "over_torch_compiled": 1.17,
            "first_steps_s": 5.7,
        },
    }
    for part, row in rows.items():
        _lines(tmp_path / f"{part}.jsonl", [row])
        _lines(tmp_path / f"{part}.base.jsonl", [row])
    table = session.write_table(tmp_path, [], "a device").read_text()
    for title in ("momentum or betas", "the learning rate", "Low-bit state", "compiled step"):
        section = table.split(title, 1)[1].split("## ", 1)[0]
        assert section.count("| base |") == 1 and section.count("| this |") == 1, title


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--device", "cpu", "--parts", "step,tests"], "--device cpu: the measurement parts"),
        (["--base", "/nonexistent"], "--base: '/nonexistent' has no src/descentlab"),
    ],
)
def test_a_session_it_cannot_run_is_refused_in_one_line(session, argv, says, capsys):
    with pytest.raises(SystemExit) as exc:
        session.main(argv)
    assert exc.value.code == 2 and says in capsys.readouterr().err
