"""Command-line faults: a reader that leaves, a terminal without Unicode, a busy port, a problem
that cannot train, arguments that are not UTF-8, a full disk, a failing compiler, a file size
limit.

One table of command-line cases (each: the command, how it is run, and the one line it must
print), then the cases that need their own set-up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _models import one_line as _one_line
from _models import run_cli

from descentlab import _announce

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _program(argv, *, env=None, stdout=subprocess.PIPE, cwd=None):
    """``descentlab ARGV`` as the program (its own process)."""
    full = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    full.pop("DESCENTLAB_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "descentlab", *map(str, argv)],
        env=full, stdout=stdout, stderr=subprocess.PIPE, timeout=300, cwd=cwd,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------
# the terminal: a reader that leaves, an encoding that cannot show everything


@pytest.mark.process
def test_a_reader_that_leaves_ends_the_command_quietly():
    """``descentlab optimizers | head -c 20``: the pipe's reader is gone before the command
    writes (its read end closed), so every write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = _program(["optimizers", "adam"], stdout=write)
    finally:
        os.close(write)
    assert proc.stderr == b""
    assert proc.returncode == 141  # 128 + SIGPIPE, what the shell reports for `cat | head`


@pytest.mark.process
def test_an_ascii_terminal_gets_the_text_with_replacements():
    proc = _program(["optimizers", "adam"], env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert b"?" in proc.stdout and len(proc.stdout.splitlines()) > 5


# ------------------------------------------------------------------------------------------
# the playground's address


def test_playground_on_a_bad_host_names_it_and_the_port(capsys):
    code, _out, err = run_cli(["playground", "--host", "bad host", "--port", "8123",
                               "--no-browser"], capsys)  # fmt: skip
    _one_line(code, err, "'bad host'", "8123")


def test_playground_on_a_busy_port_names_it(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _out, err = run_cli(["playground", "--port", port, "--no-browser"], capsys)
    _one_line(code, err, "'127.0.0.1'", str(port), "in use")


# ------------------------------------------------------------------------------------------
# --workers: at most one per trial


def test_workers_are_at_most_the_trials_the_comparison_runs(capsys):
    from descentlab.experiments.compare import CompareSpec
    from descentlab.experiments.compare.running import _resolve
    from descentlab.experiments.kinds import kind_of

    spec = CompareSpec(problem="moons", optimizers=["sgd"], lrs_per_optimizer=2, seeds=1,
                       batch_size=16, steps=4, tune_steps=4)  # fmt: skip
    # 2 tuning trials, then a curve run and a refit run
    with pytest.warns(RuntimeWarning, match="4 worker processes, not 12: the comparison runs 4"):
        assert _resolve(spec, None, None, 12, kind_of(spec, None), None)[2] == 4
    assert _resolve(spec, None, None, 3, kind_of(spec, None), None)[2] == 3
    _code, out, _err = run_cli(["compare", "--help"], capsys)
    assert "one per trial" in " ".join(out.split())


# ------------------------------------------------------------------------------------------
# a problem that cannot be trained: refused in one line, before any run folder

_PROBLEMS = """
import torch
from torch import nn


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.lin.requires_grad_(False)

    def forward(self, x):
        return self.lin(x)


def _data(y, n=60):
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    y = y(x)
    return {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:]}


def labels(x):
    return (x[:, 0] > 0).long()


def wide(n_classes=2):
    return {"model": lambda: nn.Linear(2, 7), "n_classes": n_classes, "data": _data(labels)}


def frozen():
    return {"model": Frozen, "data": _data(labels)}


def target(bad="nan"):
    def y(x):
        out = x.sum(1, keepdim=True)
        out[3, 0] = float(bad)
        return out

    return {"model": lambda: nn.Linear(2, 1), "task": "regression", "data": _data(y)}
"""

PROBLEM_CASES = {
    "n_classes-below-the-outputs": ("wide", [], ["n_classes is 2", "gives 7 outputs"]),
    "n_classes-0": ("wide", ["n_classes=0"], ["n_classes must be a positive integer", "got 0"]),
    "no-trainable-parameters": ("frozen", [], ["(Frozen) has no trainable parameters"]),
    "nan-target": ("target", [], ["data['y_train'] holds nan at (3, 0)"]),
    "inf-target": ("target", ["bad=-inf"], ["data['y_train'] holds -inf at (3, 0)"]),
}
TINY = [
    "--batch-size", "8", "--steps", "4", "--tune-steps", "4", "--lr-trials", "2", "--seeds",
    "1", "--landscapes", "none", "--no-progress", "--no-report", "--workers", "1",
    "--one-at-a-time", "--optimizers", "sgd",
]  # fmt: skip


@pytest.mark.parametrize("case", list(PROBLEM_CASES))
def test_a_problem_that_cannot_train_is_refused_before_any_folder(case, tmp_path, capsys):
    func, options, words = PROBLEM_CASES[case]
    (tmp_path / "prob.py").write_text(textwrap.dedent(_PROBLEMS))
    argv = ["compare", "--problem", f"{tmp_path / 'prob.py'}:{func}", *TINY,
            "--runs-dir", tmp_path / "runs"]  # fmt: skip
    for opt in options:
        argv += ["--problem-option", opt]
    _one_line(*run_cli(argv, capsys)[::2], *words)
    assert not (tmp_path / "runs").exists()


def test_n_classes_that_matches_the_model_trains(tmp_path, capsys):
    (tmp_path / "prob.py").write_text(textwrap.dedent(_PROBLEMS))
    argv = ["compare", "--problem", f"{tmp_path / 'prob.py'}:wide", "--problem-option",
            "n_classes=7", *TINY, "--runs-dir", tmp_path / "runs"]  # fmt: skip
    code, _out, err = run_cli(argv, capsys)
    assert code == 0, err


# ------------------------------------------------------------------------------------------
# a store whose metric values are text


@pytest.mark.parametrize("which", ["name = 'accuracy'", "run_id > 0"])
def test_report_of_a_store_with_text_metric_values_is_refused(which, tmp_path, capsys):
    """Text in a metric the report does not draw (validation accuracy: the report reads the
    runs' summaries) rendered without a word; text in every metric said only "could not
    convert string to float"."""
    import sqlite3

    argv = ["compare", "--problem", "moons", "--problem-option", "n_samples=120", *TINY,
            "--runs-dir", tmp_path, "--name", "c"]  # fmt: skip
    assert run_cli(argv, capsys)[0] == 0
    with sqlite3.connect(tmp_path / "c" / "descentlab.sqlite") as conn:
        conn.execute(f"UPDATE metrics SET value = 'abc' WHERE {which}")
    conn.close()
    out = tmp_path / "out" / "r.html"
    _one_line(*run_cli(["report", tmp_path / "c", "--output", out], capsys)[::2],
              "is damaged", "is 'abc', not a number")  # fmt: skip
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------
# names and folders that are not UTF-8 (raw bytes: Python keeps them as surrogates)

BAD = "bad\udcff"  # the bytes b"bad\xff" as sys.argv holds them
UTF8_CASES = {
    "compare-name": (["compare", *TINY, "--problem", "moons", "--name", BAD], "--name"),
    "compare-runs-dir": (["compare", *TINY, "--problem", "moons", "--runs-dir", f"{{t}}/{BAD}"],
                         "--runs-dir"),
    "train-name": (["train", "--problem", "moons", "--steps", "3", "--name", BAD], "--name"),
    "train-runs-dir=": (["train", "--problem", "moons", "--steps", "3",
                         f"--runs-dir={{t}}/{BAD}/r"], "--runs-dir"),
    "report-run-dir": (["report", f"{{t}}/{BAD}"], "an argument"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(UTF8_CASES))
def test_an_argument_that_is_not_utf8_is_refused_before_anything(case, tmp_path, capsys,
                                                                 monkeypatch):  # fmt: skip
    argv, flag = UTF8_CASES[case]
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    if "--runs-dir" not in " ".join(argv) and argv[0] != "report":
        argv += ["--runs-dir", str(tmp_path / "runs")]
    _one_line(*run_cli(argv, capsys)[::2], f"{flag} is not valid UTF-8", "bad\\xff")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# a full disk: the output folder a command made is taken back


FULL_DISK_CASES = {
    "experiment": ["experiment", "information", "--quick", "--out", "{t}/out/e"],
    "figures": ["figures", "seeds", "--only", "seed001_parabola_lr,seed001_xsinx_learning_rate",
                "--no-animations",
                "--quick", "--out", "{t}/out/f"],
    "lectures": ["lectures", "--only", "000", "--items", "1", "--quick", "--out", "{t}/out/l"],
}  # fmt: skip


@pytest.mark.parametrize("case", list(FULL_DISK_CASES))
def test_a_full_disk_leaves_no_output_folder(case, tmp_path, capsys, monkeypatch):
    """The disk fills after the first file written (``fsync`` of the second file's content
    raises ENOSPC): one line, and the files and folders the command made are gone."""
    import errno

    real, calls = os.fsync, []

    def full(fd):
        calls.append(fd)
        if len(calls) > 2:  # (the first file's content and its folder)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", full)
    argv = [a.replace("{t}", str(tmp_path)) for a in FULL_DISK_CASES[case]]
    code, _out, err = run_cli(argv, capsys)
    if case == "lectures":  # (it logs each lecture it builds on stderr)
        err = err.strip().splitlines()[-1]
    _one_line(code, err, "no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_command_takes_back_its_folder_with_what_workers_wrote(tmp_path):
    """``lectures`` runs its experiments in worker processes, which write their results into
    the book's data folder and record nothing in the command's process: on a full disk the
    folder the command made stayed, holding them."""
    from descentlab._files import make_dirs, remove_created, track_created

    (tmp_path / "before").mkdir()
    with track_created():
        make_dirs(tmp_path / "book" / "data")
        (tmp_path / "book" / "data" / "momentum.json").write_text("{}")  # a worker's
        remove_created()
    assert [p.name for p in tmp_path.iterdir()] == ["before"]


# ------------------------------------------------------------------------------------------
# the kernel cache on a full disk: the compiler's words stay off the terminal

LINKER = (
    "/usr/bin/ld: final link failed: No space left on device\\n"  # (printf's escapes)
    "collect2: error: ld returned 1 exit status\\n"
)


@pytest.mark.process
@pytest.mark.parametrize("said, cause", [(LINKER, "no space left on device in the kernel "
                                          "cache"), ("kernel.cpp:3: error: boom\\n",
                                                     "DESCENTLAB_DEBUG=1 shows why")])  # fmt: skip
def test_a_compiler_that_fails_is_announced_once_in_our_words(said, cause, tmp_path, monkeypatch):
    from descentlab import _native as N

    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("DESCENTLAB_DEBUG", raising=False)
    fake = f"printf '{said}' >&2; exit 1"
    monkeypatch.setattr(N, "_command", lambda cc, src, out: ["sh", "-c", fake])
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    monkeypatch.setattr(N, "_libraries", {})
    monkeypatch.setattr(N, "_bound", {})
    from descentlab.problems import trajectories

    with pytest.warns(RuntimeWarning) as seen:
        trajectories.races("ravine", ["sgd"], steps=3)  # falls back to the step-by-step path
    mine = [str(w.message) for w in seen if "kernel" in str(w.message)]
    # once per kernel that falls back: the trajectory's, and the optimizer's fused step
    assert 1 <= len(mine) == len({m.split(" (")[0] for m in mine}) <= 2, mine
    for m in mine:
        assert "\n" not in m and "collect2" not in m and cause in m, m


# ------------------------------------------------------------------------------------------
# a file size limit (ulimit -f): the real cause named, no new store


@pytest.mark.process
@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_file_size_limit_is_named_and_leaves_no_store(command, tmp_path):
    import resource

    def cap() -> None:  # as `ulimit -f 40` does (Python ignores SIGXFSZ: writes get EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_960, 40_960))

    argv = {
        "train": ["train", "--problem", "moons", "--steps", "3", "--batch-size", "16",
                  "--no-progress"],
        "compare": ["compare", "--problem", "moons", "--problem-option", "n_samples=120",
                    *TINY],
    }[command] + ["--runs-dir", tmp_path / "r"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("DESCENTLAB_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "descentlab", *map(str, argv)],
        env=env, preexec_fn=cap, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    kept = [line for line in lines if "finished run(s): kept" in line]
    if kept:  # finished trials are never taken back: their store stays, said where
        (store,) = (tmp_path / "r").glob("*/descentlab.sqlite")
        assert len(kept) == 1 and str(store) in kept[0], proc.stderr
        lines.remove(kept[0])
    else:
        assert not (tmp_path / "r").exists()
    _one_line(proc.returncode, "\n".join(lines), "file too large", "over 40960 bytes",
              "ulimit -f")  # fmt: skip
