"""Resumed runs end bit-identical to runs never interrupted (pauses, signals, SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from descentlab.engine.checkpoint import CheckpointError, load_checkpoint
from descentlab.engine.config import RunConfig
from descentlab.engine.run import resume, train
from descentlab.engine.timing import MEASURED_METRICS, MEASURED_SUMMARY
from descentlab.store import Store

MOONS = {"problem": "moons", "problem_options": {"n_samples": 200}}

# Each config exercises different state a checkpoint must carry.
CONFIGS = {
    # Adam moments, cosine schedule, mixup/noise draws, label smoothing, mid-epoch position
    "minibatch_adam_mixup": RunConfig(
        **MOONS,
        model="mlp",
        model_options={"hidden": 8},
        optimizer="adam",
        hyper={"lr": 1e-2},
        batch_size=24,
        steps=50,
        eval_every=7,
        schedule={"lr": "cosine"},
        mixup_alpha=0.4,
        input_noise=0.05,
        weight_noise=0.01,
        label_smoothing=0.1,
    ),
    # SGD momentum buffers, dropout + batch norm (global RNG, running stats), dropped short
    # batches, image augmentation, a loss-driven rule and early stopping state
    "sgd_dropout_batchnorm": RunConfig(
        problem="digits",
        model="digits_mlp",
        model_options={"hidden": [16], "dropout": 0.3, "batch_norm": True},
        optimizer="momentum",
        hyper={"lr": 0.05, "momentum": 0.9},
        batch_size=5,
        drop_last=True,
        steps=60,
        eval_every=10,
        augment=True,
        schedule={"lr": "reduce_on_plateau(patience=1, threshold=0.5)"},
        early_stopping={"patience": 50},
    ),
    # full-batch NAdam on images with cutmix, epochs instead of steps
    "fullbatch_cnn_cutmix": RunConfig(
        problem="digits",
        model="digits_cnn",
        model_options={"channels": [4, 4], "hidden": 8},
        optimizer="nadam",
        hyper={"lr": 1e-2},
        batch_size=None,
        epochs=8,
        eval_every=3,
        cutmix_alpha=1.0,
        evaluate_test=False,
    ),
}


def assert_identical(a, b):
    """Same parameters/buffers bit for bit, same metrics (wall time aside), same status."""
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert a.status == b.status and a.steps == b.steps
    assert sorted(a.metrics) == sorted(b.metrics)
    for key in a.metrics:
        if key not in MEASURED_METRICS:
            np.testing.assert_array_equal(a.metrics[key].steps, b.metrics[key].steps)
            np.testing.assert_array_equal(a.metrics[key].values, b.metrics[key].values)
    for key, value in a.summary.items():
        if key not in MEASURED_SUMMARY:
            assert b.summary[key] == value, key


def assert_same_optimizer_state(path_a, path_b):
    a, b = load_checkpoint(path_a)["optimizer"], load_checkpoint(path_b)["optimizer"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k, v in a["state"][i].items():
            w = b["state"][i][k]
            assert torch.equal(v, w) if isinstance(v, torch.Tensor) else v == w


@pytest.mark.parametrize("name", list(CONFIGS))
def test_pause_and_resume_is_bit_identical(tmp_path, name):
    cfg = CONFIGS[name]
    full = train(cfg, checkpoint_path=tmp_path / "full.pt", progress=False)
    store = Store(tmp_path / "lab.sqlite")
    total = full.steps
    paused = train(cfg, store, until_step=total // 3, progress=False)
    assert paused.status == "interrupted" and paused.steps == total // 3
    assert store.get_run(paused.run_id).status == "interrupted"
    again = resume(paused.run_id, store, until_step=2 * total // 3 + 1, progress=False)
    assert again.status == "interrupted"
    done = resume(paused.run_id, store, progress=False)
    assert_identical(full, done)
    assert_same_optimizer_state(full.checkpoint_path, done.checkpoint_path)
    # the store holds the same metrics as the uninterrupted run, each once
    stored = store.metrics(paused.run_id)
    for key, series in full.metrics.items():
        if key not in MEASURED_METRICS:
            np.testing.assert_array_equal(stored[key].steps, series.steps)
            np.testing.assert_array_equal(stored[key].values, series.values)
    run = store.get_run(paused.run_id)
    assert run.status == "completed"
    assert [r["from_step"] for r in run.provenance["resumes"]] == [total // 3, 2 * total // 3 + 1]


def test_resume_without_a_store(tmp_path):
    cfg = CONFIGS["minibatch_adam_mixup"]
    full = train(cfg, progress=False)
    path = tmp_path / "run.pt"
    assert train(cfg, checkpoint_path=path, until_step=17, progress=False).steps == 17
    with pytest.raises(ValueError, match="already holds a checkpoint; pass resume=True"):
        train(cfg, checkpoint_path=path, progress=False)
    done = train(cfg, checkpoint_path=path, resume=True, progress=False)
    assert_identical(full, done)
    with pytest.raises(ValueError, match="has ended"):
        train(cfg, checkpoint_path=path, resume=True, progress=False)
    other = cfg.replace(seed=1)
    train(other, checkpoint_path=tmp_path / "other.pt", until_step=3, progress=False)
    with pytest.raises(ValueError, match="another config"):
        train(cfg, checkpoint_path=tmp_path / "other.pt", resume=True, progress=False)


def test_checkpoints_at_an_interval_and_lost_checkpoint_restarts_when_asked(tmp_path):
    cfg = CONFIGS["minibatch_adam_mixup"].replace(checkpoint_every=10)
    store = Store(tmp_path / "lab.sqlite")
    paused = train(cfg, store, until_step=25, progress=False)
    ckpt = load_checkpoint(paused.checkpoint_path)
    assert ckpt["step"] == 25 and ckpt["status"] == "interrupted"
    # a lost checkpoint is an error; the run starts over (its old metrics removed) only when
    # that is asked for
    paused.checkpoint_path.unlink()
    store.set_status(paused.run_id, "failed", message="simulated crash")
    with pytest.raises(CheckpointError, match=f"checkpoint {paused.checkpoint_path} is missing"):
        resume(paused.run_id, store, progress=False)
    done = resume(paused.run_id, store, progress=False, restart=True)
    assert_identical(train(cfg.replace(checkpoint_every=None), progress=False), done)
    assert store.metrics(paused.run_id)["val/loss"].steps.tolist() == [0, 7, 14, 21, 28, 35, 42,
        49, 50]  # fmt: skip


def test_sigint_pauses_at_a_step_boundary_and_resumes_identically(tmp_path):
    class Interrupting(torch.optim.Adam):
        calls = 0

        def step(self, closure=None):
            type(self).calls += 1
            if type(self).calls == 13:
                os.kill(os.getpid(), signal.SIGINT)
            return super().step(closure)

    cfg = CONFIGS["minibatch_adam_mixup"].replace(optimizer=Interrupting)
    store = Store(tmp_path / "lab.sqlite")
    stopped = train(cfg, store, progress=False)
    assert stopped.status == "interrupted" and stopped.steps == 13
    assert "SIGINT" in stopped.message
    assert store.get_run(stopped.run_id).status == "interrupted"
    with pytest.raises(ValueError, match="pass it again"):
        resume(stopped.run_id, store, progress=False)
    done = resume(stopped.run_id, store, optimizer=Interrupting, progress=False)
    full = train(cfg.replace(optimizer=torch.optim.Adam), progress=False)
    assert_identical(full, done)


@pytest.mark.process
def test_refuses_to_resume_finished_or_live_runs(tmp_path):
    cfg = CONFIGS["minibatch_adam_mixup"].replace(steps=5)
    store = Store(tmp_path / "lab.sqlite")
    done = train(cfg, store, progress=False)
    with pytest.raises(ValueError, match="already ended with status 'completed'"):
        resume(done.run_id, store, progress=False)
    paused = train(cfg, store, until_step=2, progress=False)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store.set_status(paused.run_id, "running")
        store.update_provenance(paused.run_id, {"pid": live.pid})
        with pytest.raises(ValueError, match=f"still running in process {live.pid}"):
            resume(paused.run_id, store, progress=False)
    finally:
        live.kill()
        live.wait()
    assert resume(paused.run_id, store, progress=False).status == "completed"
    with pytest.raises(KeyError, match="no run with id 99"):
        resume(99, store)


# --------------------------------------------------------------------------------------------
# a real process, killed with SIGKILL

CLI_ARGS = [
    "--problem", "moons", "--problem-option", "n_samples=400", "--model", "mlp",
    "--model-option", "hidden=16", "--optimizer", "adam", "--lr", "0.01", "--batch-size", "20",
    "--steps", "600", "--eval-every", "100", "--checkpoint-every", "20", "--seed", "3",
    "--mixup", "0.2", "--schedule", "cosine", "--no-progress", "--threads", "1",
]  # fmt: skip


@pytest.mark.process
def test_sigkill_mid_run_then_resume_is_bit_identical(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "descentlab", "train", *CLI_ARGS, "--runs-dir", str(runs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    ckpt = runs / "checkpoints" / "run-1.pt"
    deadline = time.monotonic() + 60
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    assert out.decode().startswith("training run 1 ")
    store = Store(runs / "descentlab.sqlite")
    assert store.get_run(1).status == "running"  # killed: nobody could record anything else
    killed_at = load_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 600

    resumed = subprocess.run(
        [sys.executable, "-m", "descentlab", "train", "--resume", "1", "--runs-dir", str(runs),
         "--no-progress", "--threads", "1"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run 1" in resumed.stdout and "run 1: completed after 600 steps" in (
        resumed.stdout
    )
    final = load_checkpoint(ckpt)
    assert final["status"] == "completed" and final["step"] == 600
    run = store.get_run(1)
    assert run.status == "completed" and run.provenance["resumes"][0]["from_step"] == killed_at

    # the same run, never interrupted, in this process with the same thread count
    from descentlab.cli import build_parser
    from descentlab.cli.train import _config

    cfg = _config(build_parser().parse_args(["train", *CLI_ARGS]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full = train(cfg, checkpoint_path=tmp_path / "full.pt", progress=False)
    finally:
        torch.set_num_threads(threads)
    state = full.model.state_dict()
    assert list(state) == list(final["model"])
    for k in state:
        assert torch.equal(state[k], final["model"][k]), k
    val = store.metrics(1)["val/loss"]
    np.testing.assert_array_equal(val.steps, full.metrics["val/loss"].steps)
    np.testing.assert_array_equal(val.values, full.metrics["val/loss"].values)
    assert Path(store.artifacts(1)["checkpoint"]["path"]) == ckpt
