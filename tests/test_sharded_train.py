"""``descentlab train --nproc N``: one run in N processes, the GPT decoder sharded with FSDP2
(gloo, CPU), equal to one process within float rounding; its checkpoints resume bit for bit;
bad input and a failed process are one line.

Each sharded run starts two processes (forked from one server process that imports the
engine once per test process): the runs are tiny (a 2-layer GPT of width 16, 6 steps)."""

from __future__ import annotations

import textwrap

import pytest
import torch

from descentlab.cli import main
from descentlab.engine.checkpoint import load_checkpoint
from descentlab.engine.config import RunConfig
from descentlab.engine.run import train
from descentlab.store import Store

# every test here starts a process (`make check` runs the others)
pytestmark = pytest.mark.process

GPT = [
    "--problem", "charlm", "--problem-option", "n_chars=6000", "--problem-option", "context=16",
    "--model", "gpt", "--model-option", "d_model=16", "--model-option", "n_heads=2",
    "--batch-size", "8", "--steps", "6", "--eval-every", "3", "--checkpoint-every", "3",
    "--no-progress", "--no-test", "--threads", "1",
]  # fmt: skip


def _largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _config(**fields):
    base = {
        "problem": "charlm",
        "problem_options": {"n_chars": 6000, "context": 16},
        "model": "gpt",
        "model_options": {"d_model": 16, "n_heads": 2},
        "optimizer": "adamw",
        "hyper": {"lr": 1e-2, "weight_decay": 0.1},
        "batch_size": 8,
        "steps": 6,
        "eval_every": 3,
        "checkpoint_every": 3,
        "evaluate_test": False,
    }
    return RunConfig(**{**base, **fields})


def test_train_nproc_2_equals_one_process_and_is_recorded_once(tmp_path, capfd):
    opt = ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.1"]
    assert main(["train", *GPT, *opt, "--runs-dir", str(tmp_path / "one")]) == 0
    capfd.readouterr()
    assert main(["train", *GPT, *opt, "--runs-dir", str(tmp_path / "two"), "--nproc", "2"]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0] == f"training run 1 in 2 processes (store {tmp_path / 'two/descentlab.sqlite'})"
    assert out[-1].startswith("run 1: completed after 6 steps")
    from descentlab.engine.launch import export_checkpoint

    one = load_checkpoint(tmp_path / "one/checkpoints/run-1.pt")
    two = export_checkpoint(tmp_path / "two/checkpoints/run-1.pt", tmp_path / "two.pt")
    assert _largest_difference(one["model"], two["model"]) < 1e-5
    # one record, written once (by the launcher): the same metric rows as the one-process run's
    s1, s2 = Store(tmp_path / "one/descentlab.sqlite"), Store(tmp_path / "two/descentlab.sqlite")
    assert [r.id for r in s2.list_runs()] == [1]
    run = s2.get_run(1)
    assert run.status == "completed" and run.provenance["nproc"] == 2
    m1, m2 = s1.metrics(1), s2.metrics(1)
    assert m1.keys() == m2.keys()
    for key in m1:
        assert list(m1[key].steps) == list(m2[key].steps), key
    for key in ("train/objective", "val/loss"):
        assert list(m2[key].values) == pytest.approx(list(m1[key].values), rel=1e-5), key
    # a sharded run is resumed by 2 processes or more (its checkpoint reshards), not by one
    again = ["train", "--resume", "1", "--runs-dir", str(tmp_path / "two"), "--nproc", "1"]
    assert main(again) == 2
    assert capfd.readouterr().err.strip().splitlines() == [
        "descentlab: error: run 1 was trained by 2 process(es); resume it with --nproc 2 or "
        "more (its sharded checkpoint reshards to any number of processes)"
    ]


def test_a_sharded_run_resumes_bit_for_bit_and_equals_one_process(tmp_path, capsys):
    """descentlab's AdamW (its fused step on each process's shards) with its state in the
    checkpoint: paused at step 3, resumed to 6, equal bit for bit to the uninterrupted run
    with the same 2 processes; both within float rounding of one process. The checkpoint is
    sharded (each process writes its own shards: no process gathers the whole state) and
    exports to one file of the full state."""
    from descentlab.engine.launch import export_checkpoint, shards_folder, train_sharded

    one = train(_config(), progress=False, checkpoint_path=tmp_path / "one.pt")
    full = train_sharded(
        _config(), 2, tmp_path / "a/lab.sqlite", threads=1, announce="run {run_id}"
    )
    # said by this process, the launcher (a rank's print would reach this process's file
    # descriptor, or the one it had when the ranks' process server started, not its stdout)
    assert capsys.readouterr().out == "run 1\n"
    paused = train_sharded(_config(), 2, tmp_path / "b/lab.sqlite", until_step=3, threads=1)
    assert (paused.status, paused.steps) == ("interrupted", 3)
    resumed = train_sharded(None, 2, tmp_path / "b/lab.sqlite", resume_id=paused.run_id, threads=1)
    assert (full.status, resumed.status, resumed.steps) == ("completed", "completed", 6)
    saved = load_checkpoint(full.checkpoint_path)
    assert saved["model"] == {} and saved["optimizer"] == {}  # the tensors are in the shards
    (folder,) = shards_folder(full.checkpoint_path).iterdir()
    shards = sorted(f.stat().st_size for f in folder.glob("*.distcp"))
    assert len(shards) == 2 and shards[0] > 0.3 * sum(shards)  # each process wrote about half
    a = export_checkpoint(full.checkpoint_path, tmp_path / "a.pt")
    b = export_checkpoint(resumed.checkpoint_path, tmp_path / "b.pt")
    assert load_checkpoint(tmp_path / "a.pt")["model"].keys() == a["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
        assert torch.equal(a["model"][key], full.model.state_dict()[key]), key
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for name, state in a["optimizer"]["state"].items():
        assert set(state) == {"step", "exp_avg", "exp_avg_sq"}
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][name][key]), (name, key)
    assert resumed.summary["val/loss"] == full.summary["val/loss"]
    assert _largest_difference(one.model.state_dict(), a["model"]) < 1e-4
    assert full.summary["val/loss"] == pytest.approx(one.summary["val/loss"], rel=1e-5)


def test_a_sharded_checkpoint_reshards_and_its_shards_are_verified(tmp_path):
    """Muon (its matrices stepped by their owners, their state there) paused at step 3 by 2
    processes and resumed by 3: the checkpoint's shards are read into 3 processes' shards,
    and the run ends within float rounding of the uninterrupted one (another split of the
    batch rounds otherwise: 3e-4 with Muon's bfloat16 iteration, which rounds it up). A
    shard file changed after it was written is refused in one line before any process
    starts."""
    from descentlab.engine.checkpoint import CheckpointError
    from descentlab.engine.launch import shards_folder, train_sharded

    # (its iteration in float32: a bfloat16 one turns the other split's rounding into 1e-4)
    muon = {"optimizer": "muon", "hyper": {"lr": 2e-2, "fused": False, "ns_dtype": None}}
    full = train_sharded(_config(**muon), 2, tmp_path / "a/lab.sqlite", threads=1)
    store = tmp_path / "b/lab.sqlite"
    paused = train_sharded(_config(**muon), 2, store, until_step=3, threads=1)
    (folder,) = shards_folder(paused.checkpoint_path).iterdir()
    shard = folder / "__1_0.distcp"
    original = shard.read_bytes()
    shard.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(CheckpointError, match=r"__1_0\.distcp of checkpoint .* changed since"):
        train_sharded(None, 3, store, resume_id=paused.run_id, threads=1)
    shard.write_bytes(original)
    resumed = train_sharded(None, 3, store, resume_id=paused.run_id, threads=1)
    assert (resumed.status, resumed.steps) == ("completed", 6)
    assert Store(store).get_run(paused.run_id).provenance["nproc"] == 3
    assert _largest_difference(full.model.state_dict(), resumed.model.state_dict()) < 1e-4


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--nproc", "0"], "--nproc must be a positive integer, got 0"),
        (["--nproc", "100000"], "--nproc 100000 is more than 4 processes per CPU core"),
        (["--nproc", "2", "--device", "cuda"], "--nproc 2 with --device cuda needs 2 GPUs"),
        (["--nproc", "2", "--batch-size", "1"], "a step of 1 example(s) cannot be split"),
        (["--nproc", "2", "--early-stopping", "2"], "--nproc 2 does not take --early-stopping"),
    ],
)
def test_bad_nproc_is_one_line_before_any_work(tmp_path, capfd, argv, says):
    argv = [*GPT, "--optimizer", "sgd", "--runs-dir", str(tmp_path / "r"), *argv]
    if "cuda" in argv and torch.cuda.device_count() >= 2:
        pytest.skip("this machine has 2 GPUs")
    assert main(["train", *argv]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("descentlab: error: "), err
    assert says in err[0]
    assert not (tmp_path / "r").exists()  # nothing written


def test_a_model_with_batch_norm_is_not_sharded(tmp_path, capfd):
    argv = ["--problem", "digits", "--model", "digits_mlp", "--model-option",
            "batch_norm=true", "--steps", "2", "--batch-size", "8", "--nproc", "2",
            "--runs-dir", str(tmp_path)]  # fmt: skip
    assert main(["train", *argv]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        "descentlab: error: --nproc 2: model 'digits_mlp' has BatchNorm1d, whose statistics each "
        "process would take on its own slice of the batch; it is not sharded"
    ]


def test_a_failed_process_is_one_line_naming_its_rank(tmp_path, capfd):
    problem = tmp_path / "fails.py"
    problem.write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            from descentlab.problems.problem import Problem

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layer = nn.Linear(2, 2)
                    self.calls = 0  # training forward passes (the probe's copy counts its own)

                def forward(self, x):
                    dist = torch.distributed
                    self.calls += self.training
                    if self.calls == 2 and dist.is_initialized() and dist.get_rank() == 1:
                        raise ValueError("no second step on rank 1")
                    return self.layer(x)

            def make_problem():
                g = torch.Generator().manual_seed(0)
                x, y = torch.randn(40, 2, generator=g), torch.randint(0, 2, (40,), generator=g)
                return Problem(name="fails", model=Net,
                               data={"x_train": x, "y_train": y, "x_test": x, "y_test": y})
            """
        )
    )
    argv = ["--problem", f"{problem}:make_problem", "--optimizer", "sgd", "--hyper",
            "fused=false", "--steps", "2", "--batch-size", "8", "--no-progress", "--nproc", "2",
            "--runs-dir", str(tmp_path / "r")]  # fmt: skip
    assert main(["train", *argv]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        "descentlab: error: sharded run across 2 processes failed: rank 1: ValueError: no "
        f"second step on rank 1 in Net.forward ({problem}:16)"
    ]
    run = Store(tmp_path / "r/descentlab.sqlite").get_run(1)
    assert run.status == "failed"  # sent by rank 0, written by the launcher


COMPARE = [
    "--problem", "charlm", "--problem-option", "n_chars=6000", "--problem-option", "context=16",
    "--model", "gpt", "--model-option", "d_model=16", "--model-option", "n_heads=2",
    "--optimizers", "momentum", "--fixed-lr", "momentum", "--batch-size",
    "8", "--steps", "6", "--eval-every", "3", "--seeds", "1", "--landscapes", "none",
    "--no-report", "--no-progress", "--name", "c",
]  # fmt: skip


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The comparison's trials trained by one process each: ``{name: run record}``."""
    where = tmp_path_factory.mktemp("alone")
    assert main(["compare", *COMPARE, "--runs-dir", str(where), "--workers", "1"]) == 0
    store = Store(where / "c/descentlab.sqlite")
    return {r.name: r for r in store.list_runs() if r.name != "compare"}


def _same_trials(runs, alone):
    assert sorted(runs) == ["curve/momentum", "refit/momentum"]
    for name, run in runs.items():
        assert run.status == "completed" and run.provenance["nproc"] == 2
        assert "nproc" not in alone[name].provenance
        keys = ["val/loss", "train/loss"] + (["test/loss"] if name == "refit/momentum" else [])
        for key in keys:
            assert run.summary[key] == pytest.approx(alone[name].summary[key], rel=1e-5), (
                name,
                key,
            )


def _compared(where, *argv):
    assert main(["compare", *COMPARE, "--runs-dir", str(where), "--nproc", "2", *argv]) == 0
    store = Store(where / "c/descentlab.sqlite")
    return {r.name: r for r in store.list_runs() if r.name != "compare"}


def test_compare_nproc_2_trains_each_trial_across_processes_as_one_process_does(tmp_path, alone):
    """The local pool: each trial (a curve run and a refit run) trained by 2 processes,
    recorded once by the launcher, with one process's numbers."""
    _same_trials(_compared(tmp_path), alone)


def test_compare_nproc_2_on_ray_as_one_process_does(tmp_path, alone):
    """Ray: each trial as 2 Ray tasks in a placement group (a local Ray instance on
    127.0.0.1), the driver writing the store; one process's numbers."""
    from descentlab.experiments.runners import ray_available

    if not ray_available():
        pytest.skip("Ray is not installed")
    _same_trials(_compared(tmp_path, "--backend", "ray"), alone)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--nproc", "0"], "--nproc must be a positive integer, got 0"),
        (["--nproc", "2", "--workers", "2"], "--workers 2 does not go with it"),
        (["--nproc", "2", "--problems", "moons"], "it does not go with --problems"),
    ],
)
def test_compare_bad_nproc_is_one_line(tmp_path, capfd, argv, says):
    assert main(["compare", *COMPARE, "--runs-dir", str(tmp_path / "r"), *argv]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("descentlab: error: ") and says in err[0], err
    assert not (tmp_path / "r").exists()
