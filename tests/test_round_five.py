"""Nothing lost, nothing silent, round five: a full disk under a checkpoint, checkpoints that
are not the program's own, a user's Datasets and streams, the store's paths, the report's
folder, the playground's requests, warnings and interrupts. Each case: one line naming the
user's object, exit 2 (or a clean resume), nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
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


# ------------------------------------------------------------------------------------------
# a checkpoint that is not the program's own, with its checksum file recomputed

PAUSED = ["train", "--problem", "moons", "--problem-option", "n_samples=200", "--model-option",
          "hidden=4", "--batch-size", "16", "--steps", "40", "--until-step", "20",
          "--checkpoint-every", "10", "--no-progress"]  # fmt: skip


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def _forge(path: Path, how: str) -> None:
    import hashlib
    import io
    import json
    import pickle

    import torch

    data = path.read_bytes()
    if how == "pickle":
        data = pickle.dumps(_Evil())
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "torch-pickle":  # a zip archive torch writes, holding an object of a class
        buf = io.BytesIO()
        torch.save({"step": _Evil()}, buf)
        data = buf.getvalue()
    elif how == "a-list":
        buf = io.BytesIO()
        torch.save([1, 2, 3], buf)
        data = buf.getvalue()
    elif how == "no-step":
        state = torch.load(path, weights_only=True)
        del state["step"]
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
    elif how == "wrong-shapes":
        state = torch.load(path, weights_only=True)
        state["model"] = {k: torch.zeros(3) for k in state["model"]}
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
    elif how == "text":
        data = b"hello"
    path.write_bytes(data)
    side = path.with_name(path.name + ".sha256")
    meta = json.loads(side.read_text())
    meta.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    side.write_text(json.dumps(meta))


FORGED = ["pickle", "truncated", "torch-pickle", "a-list", "no-step", "wrong-shapes", "text"]


@pytest.mark.parametrize("how", FORGED)
def test_a_forged_checkpoint_with_a_recomputed_checksum_is_one_line(how, tmp_path, capsys,
                                                                    monkeypatch):  # fmt: skip
    """A malicious pickle was refused by weights-only loading, as a traceback; a truncated
    archive said "negative seek value"."""
    monkeypatch.chdir(tmp_path)
    assert run_cli([*PAUSED, "--runs-dir", "r"], capsys)[0] == 0
    ckpt = tmp_path / "r" / "checkpoints" / "run-1.pt"
    _forge(ckpt, how)
    before = ckpt.read_bytes()
    code, _out, err = run_cli(["train", "--resume", "1", "--runs-dir", "r", "--no-progress"],
                              capsys)  # fmt: skip
    one_line(code, err, "checkpoint", "run-1.pt")
    assert not (tmp_path / "pwned.txt").exists()
    assert ckpt.read_bytes() == before  # nothing replaced


# ------------------------------------------------------------------------------------------
# warnings in descentlab's one-line form


def test_a_warning_of_descentlab_is_one_line_without_its_source(tmp_path):
    """``--trials`` (deprecated) printed ".../descentlab/cli/compare.py:368: FutureWarning:"
    and the source line into the user's terminal."""
    code, _out, err = _program(["compare", "--problem", "moons", "--optimizers", "sgd",
                                "--trials", "0", "--runs-dir", tmp_path / "r"])  # fmt: skip
    lines = err.strip().splitlines()
    assert code == 2
    assert lines[0].startswith("descentlab: warning: --trials is deprecated"), err
    assert "compare.py" not in err and "warnings.warn" not in err, err
    assert len(lines) == 2 and lines[1].startswith("descentlab: error: "), err


# ------------------------------------------------------------------------------------------
# a user's Datasets and streams

DATASETS = Path(__file__).resolve().parent / "data" / "user_datasets.py"
TINY = ["--batch-size", "8", "--steps", "4", "--tune-steps", "4", "--lr-trials", "2",
        "--seeds", "1", "--landscapes", "none", "--no-progress", "--no-report",
        "--optimizers", "sgd"]  # fmt: skip


def _table(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith(("done in", "store"))]


def test_a_random_augmentation_gives_the_same_table_with_any_number_of_workers(tmp_path):
    """``x[i] + 0.1 * torch.randn(2)`` in ``__getitem__``, the loader's ``num_workers=2``:
    ``compare --workers 2`` gave another table than ``--workers 1`` (its trial processes read
    the data without loader workers, drawing from their own random state)."""
    tables = []
    for workers in ("1", "2"):
        argv = ["compare", "--problem", f"{DATASETS}:noisy", *TINY, "--workers", workers]
        code, out, err = _program([*argv, "--runs-dir", tmp_path / workers])
        assert code == 0, err
        tables.append(_table(out))
    assert tables[0] == tables[1]


DATASET_CASES = {
    # (function, --problem-option items, more argv, words of the one line)
    "label-minus-one": ("labels", [], [], ["the train dataset's example 7 has the label -1",
                                           "outside 0..1", "nothing was trained"]),
    "label-n-classes": ("labels", ["bad=2"], [], ["the train dataset's example 7 has the "
                                                  "label 2"]),
    "label-in-test": ("labels", ["split='test'"], [], ["the test dataset's example 7 has the "
                                                       "label -1"]),
    "label-in-stream": ("stream_labels", [], [], ["the train dataset's example 37 of the "
                                                  "stream has the label -1"]),
    "stream-fails-at-37": ("stream_fails", [], [], ["example 37 of the stream failed",
                                                    "RuntimeError: broken record",
                                                    "Stream.__iter__"]),
    "empty-stream": ("empty", [], [], ["the train dataset is empty"]),
    "read-once-stream": ("once", [], [], ["the train dataset's stream yielded no"]),
    "cv-with-a-stream": ("stream", [], ["--cv", "3"], ["--cv", "reads a stream"]),
    "unpicklable-with-spawned-workers": (
        "locked", ["context='spawn'"], [],
        ["the train dataset (Locked) cannot be sent to worker processes",
         "cannot pickle '_thread.lock' object", "--workers 1", "make the dataset picklable"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_a_users_dataset_fault_is_one_line_before_training(case, tmp_path, capsys):
    """Labels out of range were found by torch's cross_entropy in the middle of tuning; a
    stream's failure named example 0; ``--cv`` raised an AttributeError; an unpicklable
    dataset said only "cannot pickle '_thread.lock' object"."""
    func, options, more, words = DATASET_CASES[case]
    argv = ["compare", "--problem", f"{DATASETS}:{func}", *TINY, "--workers", "1", *more,
            "--runs-dir", tmp_path / "runs"]  # fmt: skip
    for opt in options:
        argv += ["--problem-option", opt]
    one_line(*run_cli(argv, capsys)[::2], *words)
    assert not any((tmp_path / "runs").glob("*/*.sqlite"))


def test_cv_with_a_map_style_dataset_runs(tmp_path, capsys):
    """``--cv 3`` on a problem of Datasets: AttributeError 'DatasetSplits' object has no
    attribute 'y_val'."""
    argv = ["compare", "--problem", f"{DATASETS}:plain", *TINY, "--workers", "1", "--cv", "3",
            "--runs-dir", tmp_path / "runs"]  # fmt: skip
    code, _out, err = run_cli(argv, capsys)
    assert code == 0, err
