"""What a comparison costs beyond its runs, counted: the worker processes it starts, the bytes
it writes to disk, and how fast a stop ends it with its workers (speed itself is measured by
benchmarks/compare_overhead.py, never here)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from descentlab.experiments import runner
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.store import Store

# every test here starts a process (`make check` runs the others)
pytestmark = pytest.mark.process

TINY = CompareSpec(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                   optimizers=["sgd", "adam"], batch_size=32, steps=60, lrs_per_optimizer=3,
                   seeds=2, max_seeds=2, landscapes=())  # fmt: skip


def _written() -> int:
    with open("/proc/self/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    # what reached the disk: bytes written less those of files removed before they got there
    return int(io["write_bytes"]) - int(io["cancelled_write_bytes"])


def _disk_counts(folder: Path) -> bool:
    """Whether this system counts the bytes written to ``folder``'s disk (not a tmpfs)."""
    before = _written()
    probe = folder / "probe"
    with open(probe, "wb") as f:
        f.write(b"x" * 2**20)
        f.flush()
        os.fsync(f.fileno())
    probe.unlink()
    return _written() - before >= 2**20


def test_a_comparison_writes_a_bounded_number_of_bytes_per_trial(tmp_path):
    if not Path("/proc/self/io").exists() or not _disk_counts(tmp_path):
        pytest.skip("this system does not count the bytes a process writes to disk here")
    spec = dataclasses.replace(TINY, optimizers=["sgd", "momentum", "adam"], steps=100,
                               lrs_per_optimizer=4, seeds=4, max_seeds=4)  # fmt: skip
    before = _written()
    result = compare(spec, tmp_path, workers=1, progress=False)
    written = _written() - before
    with Store(result.store_path) as store:
        trials_run = sum(1 for r in store.list_runs() if r.name != "compare")
    assert trials_run >= 40
    # a task's runs go into the store together, in one transaction, and no checkpoint is
    # written only to be deleted (24 KB a trial measured; 277 KB when each evaluation was a
    # transaction of its own and each trial wrote a checkpoint at its end)
    assert written / trials_run <= 64 * 1024, (written, trials_run)


def test_the_store_writes_under_three_times_what_it_keeps_one_task_a_commit(tmp_path):
    # the main process imports each task's runs in one transaction: every commit writes the
    # pages it changed into the WAL (the half-filled last page of each table and index among
    # them), and a checkpoint writes them into the file (3.5x the file with 4 KiB pages, 2.6x
    # with 1 KiB ones, measured; written twice is the least a WAL allows)
    if not Path("/proc/self/io").exists() or not _disk_counts(tmp_path):
        pytest.skip("this system does not count the bytes a process writes to disk here")
    rng = np.random.default_rng(0)
    with Store(tmp_path / "scratch.sqlite", durable=False) as scratch:
        rid = scratch.create_run({"optimizer": "adam", "lr": 0.01}, name="refit:adam", seed=0)
        scratch.log_metrics(
            rid,
            [
                (s, split, name, float(rng.random()))
                for s in range(0, 500, 20)
                for split in ("train", "val")
                for name in ("loss", "acc")
            ],
        )
        scratch.log_outcomes(rid, {"loss": rng.random(1000), "correct": rng.random(1000) > 0.5})
        scratch.set_status(rid, "completed", summary={"train_seconds": 1.0})
        run = scratch.export_run(rid)
    before = _written()
    with Store(tmp_path / "main.sqlite") as store:
        for task in range(40):
            with store.transaction():
                for i in range(3):
                    config = {**run["run"]["config"], "task": task, "i": i}
                    store.import_run({**run, "run": {**run["run"], "config": config}})
    written = _written() - before
    kept = (tmp_path / "main.sqlite").stat().st_size
    assert written <= 3 * kept, (written, kept)


def test_workers_start_once_per_comparison_and_none_for_a_finished_one(tmp_path, monkeypatch):
    starts: list[int] = []
    original = runner.TrialRunner._start

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        starts.append(len(self._pool.procs))

    monkeypatch.setattr(runner.TrialRunner, "_start", counted)
    first = compare(TINY, tmp_path, workers=2, progress=False)
    assert starts == [2]  # the tuning rounds, the final runs and the looks: the same two
    again = compare(TINY, tmp_path, workers=2, progress=False)
    assert starts == [2]  # every trial found in the store: nothing to train, nothing started
    assert again.table() == first.table()


SLOW_PROBLEM = """
import os, time
import numpy as np
from torch import nn
from descentlab.problems.problem import Problem

CALLS = [0]

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x):
        CALLS[0] += 1
        if CALLS[0] > 400:  # a process's second trial: a step that does not end
            open(os.environ["STUCK"], "a").close()
            time.sleep(120)
        return self.lin(x)

def make_problem():
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    y = x.sum(1, keepdims=True)
    return Problem(name="slow", model=Net, loss="mse", metric="rmse",
                   data={"x_train": x[:160], "y_train": y[:160], "x_test": x[160:],
                         "y_test": y[160:]})
"""


@pytest.mark.parametrize("how", ["SIGTERM to the command", "Ctrl-C to its process group"])
def test_a_stop_ends_the_command_and_its_workers_within_5_seconds(tmp_path, how):
    (tmp_path / "slow.py").write_text(textwrap.dedent(SLOW_PROBLEM))
    stuck = tmp_path / "stuck"
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "descentlab", "compare", "--problem",
            f"{tmp_path / 'slow.py'}:make_problem", "--optimizers", "sgd", "--budget", "4",
            "--steps", "300", "--seeds", "2", "--max-seeds", "2", "--landscapes", "none",
            "--workers", "2", "--no-progress", "--no-report", "--runs-dir", str(runs)]  # fmt: skip
    env = {**os.environ, "STUCK": str(stuck)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not stuck.exists():  # one trial done in a worker, the next one's step hangs
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "no trial got stuck"
            time.sleep(0.1)
        t0 = time.monotonic()
        if how.startswith("SIGTERM"):
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
        seconds = time.monotonic() - t0
        while time.monotonic() - t0 < 10:  # its workers: gone with it
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        gone = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == (143 if how.startswith("SIGTERM") else 130), out  # 128 + signal
    assert seconds <= 5.0, (seconds, out)
    assert gone <= 5.0, gone
    assert "comparison stopped by" in out and "finished trials are kept" in out
    (store_path,) = runs.glob("*/descentlab.sqlite")
    with Store(store_path) as store:  # the trial the stuck worker finished first is kept
        assert [r for r in store.list_runs(status="completed") if r.name != "compare"]
        assert not [r for r in store.list_runs(status="running") if r.name != "compare"]
