"""Nothing finished is lost, whatever the fault: a run whose result was delivered is kept when
a rank dies as it ends; the cause stored is the launcher's; a full disk, an emptied or a
replaced store leave the finished trials where they are (and say where); every command exits
with 128 + the signal that stopped it, naming it; ``scale`` checks every size first;
``descentlab runs`` shows a store's runs.

Each case runs ``descentlab`` as a user would, in its own process, on a problem of 64 points
and a linear model (a few seconds a case); the cases are tables (``CASES``), and
docs/files-and-faults.md counts them ("Nothing lost")."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _fault_folder import fault_env, fault_folder

pytestmark = pytest.mark.process  # every case runs the commands as processes


PROBLEM = '''
"""Tiny problems for the fault cases (tests/test_nothing_lost.py)."""
import os, time
from pathlib import Path

import torch
from torch import nn

from descentlab.problems.problem import Problem

FLAGS = Path(os.environ.get("FAULT_FLAGS", "."))


def _rank():
    d = torch.distributed
    return d.get_rank() if d.is_available() and d.is_initialized() else -1


class Net(nn.Module):
    def __init__(self, sleep):
        super().__init__()
        self.lin, self.sleep, self.calls = nn.Linear(2, 2), sleep, 0

    def forward(self, x):
        if self.training and self.sleep:
            self.calls += 1
            if self.calls == 2:
                (FLAGS / f"ready-{os.getpid()}").touch()
            time.sleep(self.sleep)
        return self.lin(x)


def _model(abort_at_exit, sleep):
    if _rank() == abort_at_exit:  # this rank aborts as it ends, after the run ended
        from descentlab.engine import ranks

        ranks.end_rank = lambda code: os.abort()
    return Net(sleep)


def make(abort_at_exit=-1, sleep=0.0):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    y = (x[:, 0] > 0).long()
    data = {"x_train": x, "y_train": y, "x_test": x[:16], "y_test": y[:16]}
    return Problem(name="tiny", model=lambda: _model(abort_at_exit, sleep), data=data,
                   n_classes=2)
'''

#: a comparison of few trials on the tiny problem (``--runs-dir`` added)
COMPARE = ["compare", "--problem", "prob.py:make", "--optimizers", "sgd", "--fixed-lr",
           "sgd=0.5", "--steps", "8", "--seeds", "2", "--max-seeds", "2", "--landscapes",
           "none", "--no-report", "--no-progress", "--batch-size", "16"]  # fmt: skip
TRAIN = ["train", "--problem", "prob.py:make", "--steps", "10", "--no-progress",
         "--batch-size", "16"]  # fmt: skip
SCALE = ["scale", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
         "--sizes", "4,8,16", "--optimizers", "sgd,adam", "--fixed-lr", "sgd=0.1",
         "--fixed-lr", "adam=0.01", "--steps", "400", "--seeds", "2", "--max-seeds", "2",
         "--landscapes", "none", "--no-report", "--no-progress", "--workers", "1"]  # fmt: skip


@pytest.fixture
def case(tmp_path):
    return fault_folder(tmp_path, "prob.py", PROBLEM)


def _run(folder: Path, argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "descentlab", *argv], cwd=folder,
                          env=fault_env(folder), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _runs(store: Path) -> list[tuple[int, str, str, str | None]]:
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT id, name, status, message FROM runs ORDER BY id").fetchall()


# ------------------------------------------------------------------------------------------
# 1, 2: a result delivered is a result kept; the cause stored is the launcher's


def test_a_rank_that_aborts_as_it_ends_loses_nothing_in_train(case):
    """Rank 1 aborts (SIGABRT) after the run ended: the store says completed, the table is
    shown, exit 0, one line says what happened."""
    proc = _run(case, [*TRAIN, "--problem-option", "abort_at_exit=1", "--nproc", "2",
                       "--runs-dir", "r"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "run 1: completed after 10 steps" in proc.stdout
    assert "test" in proc.stdout  # the summary table
    notes = [line for line in proc.stderr.splitlines() if "SIGABRT" in line]
    assert len(notes) == 1 and "rank 1" in notes[0] and "kept" in notes[0], proc.stderr
    assert [r[2] for r in _runs(case / "r" / "descentlab.sqlite")] == ["completed"]


def test_a_rank_that_aborts_as_it_ends_keeps_the_comparison_going(case):
    """Inside ``compare --nproc 2`` (every trial's rank 1 aborts at its exit): the comparison
    goes on to its table, and the new run folder with its finished trials stays."""
    proc = _run(case, [*COMPARE, "--problem-option", "abort_at_exit=1", "--nproc", "2",
                       "--seeds", "1", "--max-seeds", "1", "--runs-dir", "c"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "SGD" in proc.stdout and "done in" in proc.stdout
    (store,) = (case / "c").glob("*/descentlab.sqlite")
    statuses = [r[2] for r in _runs(store) if r[1] != "compare"]
    assert statuses and set(statuses) == {"completed"}, statuses


def test_the_cause_stored_is_the_launchers(case):
    """Rank 1 killed by SIGKILL mid-run: the run's stored message names rank 1 and SIGKILL
    (the launcher's knowledge), rank 0's own error beside it, not in its place."""
    env = fault_env(case)
    cmd = [sys.executable, "-m", "descentlab", *TRAIN, "--problem-option", "sleep=0.2",
           "--nproc", "2", "--runs-dir", "r", "--steps", "200"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=case, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        pids = _ready(case, 2, proc)
        rank1 = max(pids)  # (either rank: the launcher names whichever was killed)
        os.kill(rank1, signal.SIGKILL)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    assert "was killed by SIGKILL" in _last(err), err
    ((_id, _name, status, message),) = _runs(case / "r" / "descentlab.sqlite")
    assert status == "failed"
    assert message.startswith("rank ") and "was killed by SIGKILL" in message, message


def _ready(folder: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> list[int]:
    """The pids of the ``n`` processes whose model has trained a step (their flags)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flags = list((folder / "flags").glob("ready-*"))
        if len(flags) >= n:
            return [int(f.name.split("-")[1]) for f in flags]
        if proc.poll() is not None:
            raise AssertionError(f"ended before it trained: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError("never ready")


# ------------------------------------------------------------------------------------------
# 4: exit statuses by the convention, the signal named

#: (command, its arguments, the processes that train, the signal, exit status, words said)
SIGNALS = [
    ("compare", [*COMPARE, "--problem-option", "sleep=0.2", "--workers", "1"], 1,
     signal.SIGTERM, 143, "stopped by SIGTERM"),
    ("compare", [*COMPARE, "--problem-option", "sleep=0.2", "--workers", "1"], 1,
     signal.SIGINT, 130, "stopped by SIGINT"),
    ("compare --nproc", [*COMPARE, "--problem-option", "sleep=0.2", "--nproc", "2"], 2,
     signal.SIGTERM, 143, "stopped by SIGTERM"),
    ("scale", SCALE, 0, signal.SIGTERM, 143, "stopped by SIGTERM"),
    ("scale", SCALE, 0, signal.SIGINT, 130, "stopped by SIGINT"),
    ("train", [*TRAIN, "--problem-option", "sleep=0.2", "--steps", "200"], 1,
     signal.SIGTERM, 143, "by SIGTERM"),
    ("train --nproc", [*TRAIN, "--problem-option", "sleep=0.2", "--steps", "200", "--nproc",
                       "2"], 2, signal.SIGTERM, 143, "by SIGTERM"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "ready", "signum", "status", "words"),
    [pytest.param(*row[1:], id=f"{row[0]}-{signal.Signals(row[3]).name}") for row in SIGNALS],
)
def test_a_signal_ends_each_command_with_its_status_and_name(case, argv, ready, signum,
                                                             status, words):  # fmt: skip
    """The command, once it trains (its processes' flags; ``scale``: its first size's
    trials started), gets the signal: 128 + the signal, the signal named in its last line."""
    cmd = [sys.executable, "-m", "descentlab", *argv, "--runs-dir", "r"]
    proc = subprocess.Popen(cmd, cwd=case, env=fault_env(case), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        if ready:
            _ready(case, ready, proc)
        else:
            _started(case / "r", proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, (out, err)
    said = _last(err) if words not in _last(out) else _last(out)
    assert words in said, (out, err)
    assert "an interrupt" not in err


def _started(runs: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """A comparison under ``runs`` has a store holding a trial (the study is training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for store in runs.glob("*/descentlab.sqlite"):
            try:
                if len(_runs(store)) > 1:
                    return
            except sqlite3.Error:
                pass
        if proc.poll() is not None:
            raise AssertionError(f"ended before it trained: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError("never started")


# ------------------------------------------------------------------------------------------
# 3: a full disk, an emptied or a replaced store

#: a comparison of 20 trials: a store of 160 KiB fills at its 13th
DISK = ["compare", "--problem", "prob.py:make", "--optimizers", "sgd,adam", "--lr-trials", "6",
        "--steps", "8", "--seeds", "2", "--max-seeds", "2", "--landscapes", "none",
        "--no-report", "--no-progress", "--batch-size", "16", "--no-refine", "--workers",
        "1"]  # fmt: skip


@pytest.fixture
def small_disk(case):
    """A file system of 160 KiB at ``case/disk`` (tmpfs: needs root), unmounted after."""
    disk = case / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("a small file system needs root (mount -t tmpfs)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_keeps_a_new_stores_finished_trials(case, small_disk):
    """The disk fills while a new store holds finished trials: exit 2, one line naming the
    store; the store stays with its finished trials, said where; the same command continues
    once there is room (the store copied where there is)."""
    proc = _run(case, [*DISK, "--runs-dir", str(small_disk)])
    assert proc.returncode == 2, proc.stderr
    assert "no space left" in _last(proc.stderr), proc.stderr
    (store,) = small_disk.glob("*/descentlab.sqlite")
    kept = [line for line in proc.stderr.splitlines() if "kept" in line]
    assert len(kept) == 1 and str(store) in kept[0], proc.stderr
    done = [r for r in _runs(store) if r[2] == "completed"]
    assert done, "the finished trials are gone"
    room = case / "room"
    subprocess.run(["cp", "-a", str(small_disk), str(room)], check=True)
    again = _run(case, [*DISK, "--runs-dir", str(room)])
    assert again.returncode == 0, again.stderr
    (store,) = room.glob("*/descentlab.sqlite")
    assert [r[0] for r in _runs(store)][: len(done)] == [r[0] for r in _runs(store)][: len(done)]


def test_a_full_disk_leaves_an_old_store_as_it_was(case, small_disk):
    """A store with a finished run, then the disk filled and another run started: exit 2, one
    line; the first run stays completed."""
    first = _run(case, [*TRAIN, "--runs-dir", str(small_disk)])
    assert first.returncode == 0, first.stderr
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    proc = _run(case, [*TRAIN, "--runs-dir", str(small_disk)])
    assert proc.returncode == 2, proc.stderr
    assert _last(proc.stderr).startswith("descentlab: error: ") and "space" in proc.stderr
    filler.unlink()
    assert _runs(small_disk / "descentlab.sqlite")[0][2] == "completed"


def _emptied(store: Path, other: Path) -> None:
    store.write_bytes(b"")


def _replaced(store: Path, other: Path) -> None:
    store.write_bytes(other.read_bytes())


def _deleted(store: Path, other: Path) -> None:
    store.unlink()


#: (what is done to a finished comparison's store, --force, exit status, words said)
STORES = [
    ("emptied", _emptied, False, 2, "is empty (0 bytes)"),
    ("replaced", _replaced, False, 2, "is not the store comparison.json beside it was made"),
    ("deleted", _deleted, False, 2, "is missing"),
    ("emptied, --force", _emptied, True, 0, "done in"),
    ("replaced, --force", _replaced, True, 0, "done in"),
    ("left as it was", lambda store, other: None, False, 0, "done in"),
]


@pytest.fixture(scope="module")
def two_comparisons(tmp_path_factory):
    """The same comparison finished in two folders (``a``: its exports; ``b``: a store like
    it, another one)."""
    folder = tmp_path_factory.mktemp("stores")
    (folder / "prob.py").write_text(PROBLEM)
    for name in ("a", "b"):
        proc = _run(folder, [*COMPARE, "--runs-dir", name])
        assert proc.returncode == 0, proc.stderr
    return folder


@pytest.mark.parametrize(
    ("damage", "force", "status", "words"), [pytest.param(*r[1:], id=r[0]) for r in STORES]
)
def test_a_store_emptied_or_replaced_is_refused_unless_told(
    two_comparisons, tmp_path, damage, force, status, words
):
    """A finished comparison's store emptied (0 bytes), replaced by another comparison's of
    the same settings, or deleted, beside its comparison.json: refused in one line, nothing
    retrained or replaced; with --force it is trained again."""
    import shutil

    folder = two_comparisons  # (the run folder's name follows the problem file's path)
    (run_dir,) = (folder / "a").iterdir()
    (other,) = (folder / "b").glob("*/descentlab.sqlite")
    shutil.copytree(run_dir, tmp_path / "before")
    try:
        store = run_dir / "descentlab.sqlite"
        for side in run_dir.glob("descentlab.sqlite-*"):
            side.unlink()
        damage(store, other)
        exports = (run_dir / "comparison.json").read_bytes()
        proc = _run(folder, [*COMPARE, "--runs-dir", "a", *(["--force"] if force else [])])
        assert proc.returncode == status, proc.stderr
        if status == 2:
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and words in lines[0], proc.stderr
            assert (run_dir / "comparison.json").read_bytes() == exports
        else:
            assert words in _last(proc.stdout), proc.stdout
    finally:
        shutil.rmtree(run_dir)
        shutil.copytree(tmp_path / "before", run_dir)


# ------------------------------------------------------------------------------------------
# 4: bad input is 2, everywhere; 5: scale checks every size before the first trains


def _in_process(argv, capsys):
    from _models import run_cli

    return run_cli(argv, capsys)


#: (command line, words of its one line): each refused with exit 2, nothing written
BAD_INPUT = [
    (["compare", "--steps", "-3"], "steps"),
    (["compare", "--nproc", "0"], "--nproc"),
    (["scale", "--sizes", "4,8"], "at least 3"),
    (["train", "--steps", "-3"], "steps"),
    (["train", "--nproc", "0"], "--nproc"),
    (
        [
            "scale",
            "--problem",
            "moons",
            "--model",
            "mlp",
            "--sizes",
            "4,8,1000000000",
            "--precision",
            "fp32",
            "--steps",
            "10",
        ],
        "hidden=1000000000",
    ),
    (["scale", "--sizes", ",".join(map(str, range(1, 41)))], "at most 16"),
    (["scale", "--sizes", "-5,10,20"], "goes as --sizes=-5,10,20"),
    (["scale", "--sizes=-5,10,20"], "positive integers"),
    (["runs", "nowhere"], "no store at"),
]


@pytest.mark.parametrize(("argv", "words"), BAD_INPUT, ids=[" ".join(r[0])[:40] for r in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    code, _out, err = _in_process([*argv, "--runs-dir", "r"] if argv[0] != "runs" else argv,
                                  capsys)  # fmt: skip
    lines = [line for line in err.strip().splitlines() if "warning" not in line]
    assert code == 2, err
    assert len(lines) == 1 and "error" in lines[0] and words in lines[0], err
    assert not (tmp_path / "r").exists()


def test_scale_refuses_a_size_that_cannot_fit_before_the_first_trains(tmp_path, monkeypatch,
                                                                      capsys):  # fmt: skip
    """Every size's model is built (on the meta device) before any trains: the size that
    cannot fit is refused at once, sizes 4 and 8 untrained, in a blink."""
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    argv = ["scale", "--problem", "moons", "--model", "mlp", "--sizes", "4,8,1000000000",
            "--precision", "fp32", "--steps", "10", "--runs-dir", "r"]  # fmt: skip
    code, out, err = _in_process(argv, capsys)
    assert code == 2 and "size 1/3" not in out, (out, err)
    assert "nothing was trained" in err
    assert time.perf_counter() - t0 < 20


# ------------------------------------------------------------------------------------------
# 6: a user sees their runs


def test_runs_lists_a_store_and_names_a_run_with_no_process(case, capsys):
    """A finished run, then one killed (kill -9) mid-run: ``descentlab runs`` lists both, the
    second "running with no process behind it"; ``--show`` shows each."""
    assert _run(case, [*TRAIN, "--runs-dir", "r"]).returncode == 0
    cmd = [sys.executable, "-m", "descentlab", *TRAIN, "--problem-option", "sleep=0.2",
           "--steps", "200", "--runs-dir", "r"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=case, env=fault_env(case), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        _ready(case, 1, proc)
        proc.kill()
        proc.wait(30)
    finally:
        proc.kill()
    store = str(case / "r")
    code, out, err = _in_process(["runs", store], capsys)
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0].startswith("store ") and "2 run(s)" in rows[0]
    assert rows[2].startswith("1 ") and "completed" in rows[2] and "test/accuracy" in rows[2]
    assert "running" in rows[3] and "running with no process behind it" in rows[3], out
    code, out, err = _in_process(["runs", store, "--show", "2"], capsys)
    assert code == 0 and "no process behind it" in out and "config:" in out, (out, err)
    code, out, err = _in_process(["runs", store, "--show", "7"], capsys)
    assert code == 2 and "no run with id 7" in err
