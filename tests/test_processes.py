"""Worker processes, concurrent stores and run-directory locks (issue 10, item 13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from descentlab.experiments.trials import _alive

LONG_ARGV = [
    "--problem", "moons", "--problem-option", "n_samples=300", "--model", "mlp",
    "--model-option", "hidden=16", "--optimizers", "sgd,adam", "--batch-size", "16",
    "--steps", "200000", "--tune-steps", "100000", "--trials", "3", "--seeds", "1",
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
