"""Worker processes, concurrent stores and run-directory locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from descentlab import _osutil
from descentlab._osutil import pid_alive as _alive

# every test here starts a process (`make check` runs the others)
pytestmark = pytest.mark.process

LONG_ARGV = [
    "--problem", "moons", "--problem-option", "n_samples=300", "--model", "mlp",
    "--model-option", "hidden=16", "--optimizers", "sgd,adam", "--batch-size", "16",
    "--steps", "200000", "--tune-steps", "100000", "--lr-trials", "3", "--seeds", "1",
    "--target-accuracy", "0.8", "--landscapes", "none", "--no-report", "--no-progress",
]  # fmt: skip


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def _loaded_torch(pid: int) -> bool:
    """Whether process ``pid`` has mapped torch's library (a worker does so after it has
    arranged to die with its parent, before it takes a trial)."""
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_within_2s_of_a_kill_9_of_compare(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "descentlab", "compare", *LONG_ARGV, "--runs-dir", str(runs),
           "--name", "k", "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    workers: list[int] = []
    runs.mkdir()
    try:
        deadline = time.monotonic() + 60
        # Both workers started (they take trials from the queue next).
        while len(workers := [w for w in _children(proc.pid) if _loaded_torch(w)]) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the workers did not start in time"
            time.sleep(0.05)
        workers = _children(proc.pid)  # with multiprocessing's resource tracker
        os.kill(proc.pid, signal.SIGKILL)  # the main process only
        proc.wait(10)
        killed = time.monotonic()
        while any(_alive(w) for w in workers) and time.monotonic() - killed < 5:
            time.sleep(0.02)
        alive = [w for w in workers if _alive(w)]
        assert not alive, f"worker(s) {alive} still running {time.monotonic() - killed:.1f}s on"
        assert time.monotonic() - killed < 2.0
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------
# opening a fresh store at once


def test_opening_a_store_while_another_process_switches_it_to_wal_waits(tmp_path):
    """Another connection in the middle of creating the store (a write lock on a file still
    in rollback mode) made ``PRAGMA journal_mode = WAL`` fail at once with 'database is
    locked'; the store waits its timeout instead."""
    import sqlite3
    import threading

    from descentlab.store import Store

    path = tmp_path / "lab.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        store = Store(path, timeout=10)
        store.create_run({"lr": 0.1})
        store.close()
    finally:
        timer.join()
        other.close()


def _open_fresh(root: str, rounds: int, who: int, barrier, results) -> None:
    from descentlab.store import Store

    failures = []
    for i in range(rounds):
        barrier.wait()
        try:
            Store(os.path.join(root, f"s{i}.sqlite")).close()
        except Exception as exc:
            failures.append(f"round {i}: {type(exc).__name__}: {exc}")
    results.put(failures)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses fork")
def test_100_concurrent_opens_of_fresh_stores_all_succeed(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")  # cheap children: the test is about SQLite, not imports
    procs, rounds = 4, 25  # 4 processes open the same fresh file at once, 25 times: 100 opens
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    children = [
        ctx.Process(target=_open_fresh, args=(str(tmp_path), rounds, k, barrier, results))
        for k in range(procs)
    ]
    for c in children:
        c.start()
    failures = [f for _ in children for f in results.get(timeout=120)]
    for c in children:
        c.join(10)
    assert failures == [], f"{len(failures)}/{procs * rounds} opens failed: {failures[:3]}"


def test_a_journal_removed_while_the_store_looks_at_it_is_no_fault(tmp_path, monkeypatch):
    """Another process's SQLite makes and removes ``-journal`` beside a fresh store at any
    moment: seen once in 100 concurrent opens, the file there when asked whether it existed
    and gone when asked whether it was a regular file, which refused the store ("not a
    regular file"). Here it goes between any two looks."""
    from pathlib import Path

    from descentlab.store import Store

    path = tmp_path / "s.sqlite"
    journal = Path(f"{path}-journal")
    journal.write_bytes(b"")
    looks = {"n": 0, "inside": False}
    for name in ("exists", "is_file", "stat", "lstat"):
        real = getattr(Path, name)

        def look(self, *a, _real=real, **k):  # type: ignore[no-untyped-def]
            if self != journal or looks["inside"]:  # (a look made by another look: the same)
                return _real(self, *a, **k)
            looks["n"] += 1
            if looks["n"] == 2:  # the other process removes it after the first look
                journal.unlink(missing_ok=True)
            looks["inside"] = True
            try:
                return _real(self, *a, **k)
            finally:
                looks["inside"] = False

        monkeypatch.setattr(Path, name, look)
    Store(path).close()
    assert looks["n"] >= 1


# ------------------------------------------------------------------------------------------
# one process per run directory


def _hold(folder: str, ready, release) -> None:
    from descentlab._osutil import FolderLock

    with FolderLock(folder):
        ready.set()
        release.wait(30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses fork")
def test_folder_lock_names_its_holder_and_waits_for_it(tmp_path, capfd):
    import multiprocessing as mp
    import threading

    from descentlab._osutil import FolderBusy, FolderLock

    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path / "run"), ready, release))
    child.start()
    try:
        assert ready.wait(30)
        assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700
        with pytest.raises(FolderBusy, match=f"is in use by process {child.pid} "):
            FolderLock(tmp_path / "run", wait=False).acquire()
        threading.Timer(0.5, release.set).start()
        t0 = time.monotonic()
        with FolderLock(tmp_path / "run", what="run directory") as lock:
            assert lock.held and time.monotonic() - t0 >= 0.4
        err = capfd.readouterr().err
        assert f"run directory {tmp_path / 'run'} is in use by process {child.pid}" in err
        assert "waiting" in err
    finally:
        release.set()
        child.join(10)


def _compare_once(runs_dir: str, barrier, results) -> None:
    import contextlib
    import io

    from descentlab.experiments.compare import CompareSpec, compare

    spec = CompareSpec(problem="moons", problem_options={"n_samples": 60}, model="mlp",
                       model_options={"hidden": 4}, optimizers=["sgd"], batch_size=16,
                       steps=10, tune_steps=10, lrs_per_optimizer=1, seeds=1,
                       landscapes=())  # fmt: skip
    err = io.StringIO()
    barrier.wait()
    with contextlib.redirect_stderr(err):
        compare(spec, runs_dir, workers=1, progress=False)
    results.put(err.getvalue())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses fork")
def test_two_identical_compares_at_once_run_every_trial_once(tmp_path):
    import multiprocessing as mp

    # imported once, before the forks (they cost seconds; training here costs less)
    import sklearn.datasets  # noqa: F401
    import torch._dynamo  # noqa: F401

    import descentlab.engine.run
    import descentlab.experiments.compare  # noqa: F401
    from descentlab.store import Store

    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_compare_once, args=(str(tmp_path), barrier, results)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    errs = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(10)
    assert sum("is in use by process" in e for e in errs) == 1, errs
    (db,) = tmp_path.glob("*/descentlab.sqlite")
    assert db.parent.stat().st_mode & 0o777 == 0o700  # the run directory holds provenance
    with Store(db) as store:
        runs = [r for r in store.list_runs() if r.name != "compare"]
    configs = [json.dumps(r.config, sort_keys=True) for r in runs]
    # the tuning trials (the grid with its refinement), then a final run and a refit
    assert len(configs) >= 1 + 2
    assert len(set(configs)) == len(configs), "a trial was run twice"


FALLBACK = "descentlab: a fallback every worker takes"
OTHER = "not descentlab's: shown by each worker"


def _announce_when_both_run(folder: str) -> int:
    """A worker's call: wait until two workers are in a call, then announce the same fallback
    as every worker would (module-level: the spawned workers import it)."""
    import warnings

    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(Path(folder).iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    warnings.warn(FALLBACK, RuntimeWarning, stacklevel=1)
    warnings.warn(OTHER, UserWarning, stacklevel=1)
    return os.getpid()


def test_a_fallback_is_announced_once_by_all_the_workers_of_a_command(tmp_path, capfd):
    """Each worker is its own interpreter with its own once-per-process sets: a fallback that
    every worker takes was printed once per worker (16 times in a comparison on a 16-core GPU
    machine); now the first worker to say it says it for all of them. Other warnings are left
    alone."""
    from descentlab.engine.procpool import map_in_processes

    folder = tmp_path / "arrived"
    folder.mkdir()
    futures = map_in_processes(_announce_when_both_run, [(str(folder),)] * 2, workers=2)
    assert len({f.result() for f in futures}) == 2  # two processes made the call
    err = capfd.readouterr().err
    assert err.count(FALLBACK) == 1, err
    assert err.count(OTHER) == 2, err


_NOTED = """
import warnings

import torch
from torch import nn

from descentlab.problems.problem import Problem


def _model():
    warnings.warn("{note}", RuntimeWarning)
    return nn.Linear(2, 2)


def make():
    x = torch.randn(96, 2, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    data = {{"x_train": x, "y_train": y, "x_test": x[:32], "y_test": y[:32]}}
    return Problem(name="noted", model=_model, data=data, n_classes=2)
"""


@pytest.mark.parametrize("threads", [1, 2], ids=["forked-workers", "spawned-workers"])
def test_a_note_every_process_of_a_comparison_makes_is_shown_once(tmp_path, threads):
    """``compare``'s trial workers (forked on the CPU; spawned with several threads and on a
    CUDA device, where an H100 showed the same CNN fallback 16 times) and its main process
    share what they said: a model that says a ``descentlab:`` note wherever it is built (the
    main process and both workers) shows it once; before, 3 and 5 times."""
    note = "descentlab: a note every process that builds the model makes"
    (tmp_path / "noted.py").write_text(_NOTED.format(note=note))
    src = str(Path(__file__).resolve().parents[1] / "src")
    argv = [sys.executable, "-m", "descentlab", "compare", "--problem", "noted.py:make",
            "--optimizers", "sgd,momentum", "--batch-size", "16", "--steps", "4",
            "--tune-steps", "4", "--lr-trials", "2", "--seeds", "2", "--landscapes", "none",
            "--no-progress", "--no-report", "--workers", "2", "--threads", str(threads),
            "--runs-dir", "r"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(note) == 1, proc.stderr


def test_the_temporary_folders_of_a_killed_process_are_removed_by_the_next(tmp_path, monkeypatch):
    """A trial worker killed with its comparison, or a command killed by SIGKILL, cannot remove
    its temporary folder (a suite's run left 19 ``descentlab-trial-*`` and 9
    ``descentlab-announced-*`` folders in /tmp): the next process's first folder of that kind
    removes those whose process is gone -- not a live process's, not another kind's."""
    from descentlab.engine import scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = tmp_path / f"descentlab-trial-{gone.pid}-x1"
    orphan.mkdir()
    (orphan / "trial.sqlite-wal").write_bytes(b"left")
    live = tmp_path / f"descentlab-trial-{os.getppid()}-x2"
    other = tmp_path / f"descentlab-ranks-{gone.pid}-x3"
    for folder in (live, other):
        folder.mkdir()
    _osutil._remove_orphans.cache_clear()
    with scratch.scratch_store() as store:
        mine = Path(store.path).parent
        assert mine.parent == tmp_path and mine.name.startswith(f"descentlab-trial-{os.getpid()}-")
    assert not orphan.exists() and not mine.exists()
    assert live.exists() and other.exists()
