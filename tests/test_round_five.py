"""Nothing lost, nothing silent, round five: a full disk under a checkpoint, checkpoints that
are not the program's own, a user's Datasets and streams, the store's paths, the report's
folder, the playground's requests, warnings and interrupts. Each case: one line naming the
user's object, exit 2 (or a clean resume), nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _models import one_line, run_cli

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _program(argv, *, env=None, cwd=None, preexec_fn=None, timeout=300):
    """``descentlab ARGV`` as the program (its own process): (exit code, stdout, stderr)."""
    full = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    full.pop("DESCENTLAB_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "descentlab", *map(str, argv)],
        env=full, capture_output=True, text=True, timeout=timeout, cwd=cwd,
        preexec_fn=preexec_fn,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


BIG_TRAIN = ["train", "--problem", "moons", "--problem-option", "n_samples=200",
             "--model-option", "hidden=500", "--optimizer", "adam", "--batch-size", "16",
             "--steps", "10", "--checkpoint-every", "5", "--no-progress"]  # fmt: skip


# ------------------------------------------------------------------------------------------
# a full disk while a checkpoint is written


def _hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_file())


def test_a_full_disk_under_a_checkpoint_is_one_line_and_leaves_nothing_half_written(tmp_path):
    """A file size limit the store fits in and the checkpoint does not (as a full disk: the
    archive writer said "unexpected pos" in a traceback): one line naming the checkpoint; the
    store that was there keeps its runs, the failed run is recorded as failed, no partial
    file stays."""
    import resource
    import sqlite3

    runs = tmp_path / "r"
    small = [*BIG_TRAIN, "--model-option", "hidden=4", "--runs-dir", runs]
    assert _program(small)[0] == 0  # a first run: the store exists before the full disk

    def cap() -> None:  # 300 kB: the store grows, a 1 MB checkpoint does not fit
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    code, _out, err = _program([*BIG_TRAIN, "--runs-dir", runs], preexec_fn=cap)
    one_line(code, err, "checkpoints/run-2.pt", "file too large")
    assert not (runs / "checkpoints" / "run-2.pt").exists()
    assert _hidden_leftovers(runs) == []
    with sqlite3.connect(runs / "descentlab.sqlite") as conn:
        rows = conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
    conn.close()
    assert rows == [(1, "completed"), (2, "failed")]


def test_a_full_disk_under_the_first_checkpoint_takes_back_the_new_store(tmp_path, capsys,
                                                                         monkeypatch):  # fmt: skip
    """ENOSPC from the checkpoint's write (a plain write now, torch's archive before): one
    line, and the store and folders this command made are gone."""
    import builtins
    import errno

    real_open = builtins.open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

    def full_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if "w" in mode and ".run-1.pt." in os.fspath(file):
            return Full(fh)
        return fh

    monkeypatch.setattr(builtins, "open", full_open)
    code, _out, err = run_cli([*BIG_TRAIN, "--runs-dir", tmp_path / "r"], capsys)
    one_line(code, err, "run-1.pt", "no space left on device")
    assert list(tmp_path.iterdir()) == []
