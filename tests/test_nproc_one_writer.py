"""``train --nproc N``: the launcher is the store's one writer. It records the run (or continues a
resumed one) before any rank starts and writes the metric rows, status, summary and checkpoint
artifact that rank 0 sends it; every rank refuses to open a store for writing (one line), as a
pool worker does (tests/test_trial_room.py). The run reads as before: the same metric rows as
one process's (within float rounding) at the same steps, a pause and a resume bit for bit the
uninterrupted run, rows up to the last checkpoint kept after a ``kill -9`` of the launcher.

Each run starts two processes (forked from one server process that imports the engine once
per test process): the runs are tiny (moons, 200 examples, an MLP, 30 steps)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from descentlab.cli import main
from descentlab.store import Store

# every test here starts a process (`make check` runs the others)
pytestmark = pytest.mark.process

MOONS = [
    "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
    "--optimizer", "adam", "--lr", "0.01", "--batch-size", "16", "--steps", "30",
    "--eval-every", "5", "--checkpoint-every", "10", "--no-progress", "--threads", "1",
]  # fmt: skip

OPENS = textwrap.dedent(
    """
    import os
    import torch
    from torch import nn
    from descentlab.problems.problem import Problem
    from descentlab.store import Store

    class Net(nn.Module):
        def __init__(self, store, rank, how):
            super().__init__()
            self.layer = nn.Linear(2, 2)
            self.store, self.rank, self.how = store, rank, how
            self.calls = 0  # training forward passes (the probe's copy counts its own)

        def forward(self, x):
            dist = torch.distributed
            self.calls += self.training
            if self.calls == 2 and dist.is_initialized() and dist.get_rank() == self.rank:
                if self.how == "exit":
                    os._exit(3)
                Store(self.store, read_only=self.how == "read").close()
            return self.layer(x)

    def make_problem(store, rank, how):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(40, 2, generator=g), torch.randint(0, 2, (40,), generator=g)
        return Problem(name="opens", model=lambda: Net(store, rank, how),
                       data={"x_train": x, "y_train": y, "x_test": x, "y_test": y})
    """
)


REFUSED = ("store {db} cannot be written by rank {rank} of --nproc: the process that opened it "
           "(that started the workers) is its one writer; a worker sends its runs there (called "
           "from Net.forward ({problem}:{line}))")  # fmt: skip


@pytest.mark.parametrize(
    ("rank", "how", "status", "says"),
    [
        (0, "write", "failed", "rank 0: StoreError: " + REFUSED),
        (1, "write", "failed", "rank 1: StoreError: " + REFUSED),
        (0, "read", "completed", None),
        (0, "exit", "failed", "rank 0 exited with status 3 before the run ended"),
    ],
)
def test_a_rank_cannot_open_the_store_for_writing(tmp_path, capfd, rank, how, status, says):
    """A rank that opens the run's store for writing (in the model's forward) is refused in one
    line naming it, and the run fails; reading it, a rank may (the run completes). A run whose
    rank 0 ended without recording its end is recorded failed by the launcher."""
    problem = tmp_path / "opens.py"
    problem.write_text(OPENS)
    db = tmp_path / "r/descentlab.sqlite"
    argv = ["--problem", f"{problem}:make_problem", "--problem-option", f"store={str(db)!r}",
            "--problem-option", f"rank={rank}", "--problem-option", f"how={how!r}",
            "--optimizer", "sgd", "--hyper", "fused=false", "--steps", "2", "--batch-size", "8",
            "--no-progress", "--nproc", "2", "--runs-dir", str(tmp_path / "r")]  # fmt: skip
    code = main(["train", *argv])
    err = capfd.readouterr().err.strip().splitlines()
    run = Store(db).get_run(1)
    assert (run.status, run.provenance["pid"]) == (status, os.getpid())
    if says is None:
        assert code == 0
        return
    (line,) = [n for n, text in enumerate(OPENS.splitlines(), 1) if "Store(self.store" in text]
    said = says.format(db=db, rank=rank, problem=problem, line=line)
    assert (code, err) == (2, [f"descentlab: error: sharded run across 2 processes failed: {said}"])
    if how == "exit":  # (the launcher's cause recorded, the other ranks' errors beside it)
        assert run.message.split("; beside it: ")[0] == said, run.message


def _writes(monkeypatch) -> list[tuple[str, int, object]]:
    """Every write of a run's rows, status and artifacts through a store of this process."""
    seen: list[tuple[str, int, object]] = []
    for name in ("create_run", "log_metrics", "set_status", "add_artifact", "truncate_metrics"):
        original = getattr(Store, name)

        def spy(self, *args, _name=name, _original=original, **kw):
            out = _original(self, *args, **kw)
            seen.append((_name, out if _name == "create_run" else args[0], args[1:]))
            return out

        monkeypatch.setattr(Store, name, spy)
    return seen


def _rows(store: Store, run_id: int) -> dict[str, tuple[list[int], list[float]]]:
    """A run's metric rows but the measured times: ``{key: (steps, values)}``."""
    m = store.metrics(run_id)
    return {k: (list(m[k].steps), list(m[k].values)) for k in m if not k.startswith("progress/")}


def test_every_write_of_train_nproc_2_comes_from_the_launcher(tmp_path, monkeypatch):
    """This process (the launcher) made every write to the store: the record (its provenance
    naming this process), each metric row, the status and summary, the checkpoint's artifact.
    The rows are one process's at the same steps (within float rounding: each process
    computes half a batch's gradient)."""
    seen = _writes(monkeypatch)
    runs = tmp_path / "two"
    assert main(["train", *MOONS, "--runs-dir", str(runs), "--nproc", "2"]) == 0
    monkeypatch.undo()
    store = Store(runs / "descentlab.sqlite")
    run = store.get_run(1)
    assert (run.status, run.provenance["pid"], run.provenance["nproc"]) == (
        "completed",
        os.getpid(),
        2,
    )
    assert [s[0] for s in seen if s[0] != "log_metrics"] == [
        "create_run",
        "add_artifact",
        "set_status",
    ]
    logged = sum(len(args[0]) for name, _, args in seen if name == "log_metrics")
    stored = sum(len(v.steps) for v in store.metrics(1).values())
    assert logged == stored > 0
    (status,) = [args for name, _, args in seen if name == "set_status"]
    assert status[0] == "completed"
    assert store.artifacts(1)["checkpoint"]["path"] == str(runs / "checkpoints/run-1.pt")
    assert main(["train", *MOONS, "--runs-dir", str(tmp_path / "one")]) == 0
    ref = _rows(Store(tmp_path / "one/descentlab.sqlite"), 1)
    got = _rows(store, 1)
    assert got.keys() == ref.keys()
    for key in ref:
        assert got[key][0] == ref[key][0], key
        assert got[key][1] == pytest.approx(ref[key][1], rel=1e-5, abs=1e-6), key


def _launched(runs: Path, *argv: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "descentlab", "train", *argv, "--runs-dir", str(runs)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_kill_9_of_the_launcher_keeps_every_row_to_the_checkpoint_and_resume_continues(
    tmp_path,
):
    """``kill -9`` of the launcher once a checkpoint is written: the store holds every metric
    row up to the checkpoint's step (rank 0 waits for the launcher to write them before it
    writes a checkpoint); ``--resume`` (the launcher continuing the record) ends with the rows
    and summary of the uninterrupted run, bit for bit."""
    from descentlab.engine.checkpoint import load_checkpoint

    argv = [*MOONS, "--steps", "200", "--checkpoint-every", "20", "--nproc", "2"]  # (the last wins)
    killed = tmp_path / "killed"
    proc = _launched(killed, *argv)
    checkpoint = killed / "checkpoints/run-1.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    time.sleep(1.0)  # (its ranks end with it)
    step = int(load_checkpoint(checkpoint)["step"])
    store = Store(killed / "descentlab.sqlite", read_only=True)
    assert store.get_run(1).status == "running" and 20 <= step < 200
    kept = store.metrics(1)["val/loss"]
    assert [s for s in kept.steps if s <= step] == list(range(0, step + 1, 5))
    store.close()
    resumed = _launched(killed, "--resume", "1", "--nproc", "2", "--no-progress")
    whole = _launched(tmp_path / "whole", *argv)
    assert resumed.wait(300) == 0 and whole.wait(300) == 0
    a, b = Store(killed / "descentlab.sqlite"), Store(tmp_path / "whole/descentlab.sqlite")
    run = a.get_run(1)
    assert run.status == "completed" and run.provenance["resumes"][-1]["from_step"] == step
    assert _rows(a, 1) == _rows(b, 1)
    assert run.summary["val/loss"] == b.get_run(1).summary["val/loss"]


def test_rank_0_writes_a_checkpoint_only_once_the_launcher_wrote_the_rows_before_it(
    tmp_path, monkeypatch
):
    """Whenever the launcher takes in what rank 0 sent, the store already holds every metric
    row up to the step of the checkpoint on disk: a ``kill -9`` of the launcher at any moment
    leaves them (20 checkpoints, each looked at; without the wait, most are written before the
    launcher has their rows). The run's end is as one process's: its last checkpoint, then its
    last rows and its status (one write)."""
    from descentlab.engine import launch
    from descentlab.engine.checkpoint import load_checkpoint

    looked: list[tuple[int, list[int]]] = []
    drain = launch._FromRanks.__call__

    def looking(self):
        checkpoint = self.store.path.parent / "checkpoints/run-1.pt"
        if checkpoint.is_file():
            step = int(load_checkpoint(checkpoint)["step"])
            steps = list(self.store.metrics(1)["val/loss"].steps)
            looked.append((step, [s for s in steps if s <= step]))
        drain(self)

    monkeypatch.setattr(launch._FromRanks, "__call__", looking)
    argv = [*MOONS, "--steps", "210", "--runs-dir", str(tmp_path), "--nproc", "2"]
    assert main(["train", *argv]) == 0
    during = [(step, steps) for step, steps in looked if step < 210]
    # (each seen at least when rank 0 waits for the rows of the next; the last, 200, may be
    # overwritten by the run's end before the launcher looks)
    assert {step for step, _ in during} >= set(range(10, 200, 10))
    for step, steps in during:
        assert steps == list(range(0, step + 1, 5)), step


def test_restart_after_a_lost_checkpoint_starts_over_as_the_launcher_records_it(tmp_path, capfd):
    """A paused run whose checkpoint is gone: ``--resume`` is refused in one line, nothing
    changed; ``--resume --restart`` starts it over (the launcher cuts every metric row and
    notes the resume from step 0 with its own process) and ends with the rows of the run
    never paused, bit for bit."""
    paused, whole = tmp_path / "paused", tmp_path / "whole"
    assert main(["train", *MOONS, "--runs-dir", str(whole), "--nproc", "2"]) == 0
    argv = [*MOONS, "--runs-dir", str(paused), "--nproc", "2", "--until-step", "10"]
    assert main(["train", *argv]) == 0
    (paused / "checkpoints/run-1.pt").unlink()
    capfd.readouterr()
    again = ["train", "--resume", "1", "--runs-dir", str(paused), "--nproc", "2", "--no-progress"]
    before = _rows(Store(paused / "descentlab.sqlite"), 1)
    assert main(again) == 2
    (line,) = capfd.readouterr().err.strip().splitlines()
    assert "run-1.pt is missing, but run-1.pt.sha256 records one written at step 10" in line
    assert _rows(Store(paused / "descentlab.sqlite"), 1) == before
    assert Store(paused / "descentlab.sqlite").get_run(1).status == "interrupted"
    assert main([*again, "--restart"]) == 0
    store = Store(paused / "descentlab.sqlite")
    run = store.get_run(1)
    assert run.status == "completed"
    assert run.provenance["resumes"][-1] == {"from_step": 0, "pid": os.getpid(), "nproc": 2}
    assert _rows(store, 1) == _rows(Store(whole / "descentlab.sqlite"), 1)


def test_the_launcher_writes_only_the_writes_a_rank_may_send(tmp_path):
    """The launcher applies rank 0's messages by name: a known write reaches the store and is
    confirmed; a name outside the three writes is refused, not called (and never applied
    silently, nor skipped under ``python -O``)."""
    import pickle

    from descentlab.engine.launch import _FromRanks

    class Meeting(dict):
        def check(self, keys):
            return all(k in self for k in keys)

        def get(self, key):
            return self[key]

        def set(self, key, value):
            self[key] = value

        def delete_key(self, key):
            self.pop(key, None)

    store = Store(tmp_path / "s.sqlite")
    run_id = store.create_run({"steps": 1})
    meeting = Meeting({"record/1": pickle.dumps([("set_status", (run_id, "completed"), {})])})
    _FromRanks(store, meeting)()
    assert store.get_run(run_id).status == "completed" and "applied/1" in meeting
    bad = Meeting({"record/1": pickle.dumps([("delete_run", (run_id,), {})])})
    with pytest.raises(RuntimeError, match="unknown write 'delete_run'"):
        _FromRanks(store, bad)()
    assert store.get_run(run_id).status == "completed"
