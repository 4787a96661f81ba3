"""Bad input to every subcommand: exit code 2, one clear line on stderr, nothing left behind.

One table of cases, run in-process through :func:`descentlab.cli.main`. Each case checks the
exit code, that stderr is exactly one line naming the problem (no traceback), and that the
folder it ran in holds the same files afterwards: no half-written report, no empty store, no
run folder.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest
from _models import COMPARE as BASE_COMPARE
from _models import TRAIN

from descentlab.cli import main, user_error

COMPARE = [*BASE_COMPARE, "--no-report"]
LANDSCAPE = ["landscape", "--function", "ravine", "--optimizers", "sgd", "--steps", "5", "--no-gif"]
FIGURES = ["figures", "seeds", "--quick", "--only", "seed001_parabola_lr"]
EXPERIMENT = ["experiment", "bias_variance", "--quick"]

NOT_A_FOLDER = r"must be a folder, but \S+ is a file"
UNDER_A_FILE = r"must be a (?:folder|database file), but \S+ is under \S+, which is a file"
UNWRITABLE = r"(?i)permission denied|not permitted"
CORRUPT = r"\S+\.sqlite is not a descentlab store: it is not a SQLite database"

# id, argv ({t}: the test's folder, {file}: a file, {dir}: an empty folder, {ro}: a folder
# that cannot be written, {bad}: a corrupted store, {badrun}: a run folder holding one),
# the message (a regex)
CASES = [
    # -- paths: out folders and stores that are files, under files, unwritable, corrupted
    ("train-runs-dir-file", [*TRAIN, "--runs-dir", "{file}"], r"--runs-dir " + NOT_A_FOLDER),
    ("train-runs-dir-under-file", [*TRAIN, "--runs-dir", "{file}/sub"], UNDER_A_FILE),
    ("train-runs-dir-unwritable", [*TRAIN, "--runs-dir", "{ro}/sub"], UNWRITABLE),
    (
        "train-db-folder",
        [*TRAIN, "--db", "{dir}"],
        r"--db must be a database file, but \S+ is a folder",
    ),
    ("train-db-under-file", [*TRAIN, "--db", "{file}/x.sqlite"], UNDER_A_FILE),
    ("train-db-unwritable", [*TRAIN, "--db", "{ro}/x.sqlite"], UNWRITABLE),
    ("train-db-corrupt", [*TRAIN, "--db", "{bad}"], CORRUPT),
    ("train-resume-db-corrupt", ["train", "--resume", "1", "--db", "{bad}"], CORRUPT),
    ("compare-runs-dir-file", [*COMPARE, "--runs-dir", "{file}"], NOT_A_FOLDER),
    ("compare-runs-dir-under-file", [*COMPARE, "--runs-dir", "{file}/sub"], UNDER_A_FILE),
    ("compare-runs-dir-unwritable", [*COMPARE, "--runs-dir", "{ro}"], UNWRITABLE),
    ("compare-store-corrupt", [*COMPARE, "--runs-dir", "{t}", "--name", "badrun"], CORRUPT),
    ("report-store-corrupt", ["report", "{badrun}"], CORRUPT),
    ("report-no-store", ["report", "{dir}"], r"no store at \S+"),
    (
        "report-output-folder",
        ["report", "{badrun}", "--output", "{dir}"],
        r"--output must be a file, got the folder",
    ),
    ("landscape-out-file", [*LANDSCAPE, "--out", "{file}"], NOT_A_FOLDER),
    ("landscape-out-under-file", [*LANDSCAPE, "--out", "{file}/sub"], UNDER_A_FILE),
    ("landscape-out-unwritable", [*LANDSCAPE, "--out", "{ro}"], UNWRITABLE),
    ("figures-out-file", [*FIGURES, "--out", "{file}"], NOT_A_FOLDER),
    ("figures-out-under-file", [*FIGURES, "--out", "{file}/sub"], UNDER_A_FILE),
    ("figures-out-unwritable", [*FIGURES, "--out", "{ro}"], UNWRITABLE),
    ("experiment-out-file", [*EXPERIMENT, "--out", "{file}"], NOT_A_FOLDER),
    ("experiment-out-under-file", [*EXPERIMENT, "--out", "{file}/sub"], UNDER_A_FILE),
    ("experiment-out-unwritable", [*EXPERIMENT, "--out", "{ro}"], UNWRITABLE),
    (
        "experiment-store-out-file",
        ["experiment", "schedules", "--quick", "--store", "--out", "{file}"],
        NOT_A_FOLDER,
    ),
    (
        "experiment-store-corrupt",
        ["experiment", "schedules", "--quick", "--store", "--out", "{badrun}"],
        CORRUPT,
    ),
    # -- values
    (
        "train-unknown-hyper",
        [*TRAIN, "--hyper", "foo=1", "--runs-dir", "{t}/runs"],
        r"unknown hyperparameter\(s\) \['foo'\] for optimizer 'adam'; valid: lr, betas",
    ),
    (
        "train-momentum-for-adam",
        [*TRAIN, "--momentum", "0.9", "--runs-dir", "{t}/runs"],
        r"unknown hyperparameter\(s\) \['momentum'\] for optimizer 'adam'",
    ),
    (
        "train-lr-given-twice",
        [*TRAIN, "--hyper", "lr=0.5", "--runs-dir", "{t}/runs"],
        r"--lr 0.01 and --hyper lr=0.5 both set lr; give one",
    ),
    (
        "train-unknown-optimizer",
        [*TRAIN, "--optimizer", "nosuch", "--runs-dir", "{t}/runs"],
        r"unknown optimizer 'nosuch'; valid names: sgd",
    ),
    (
        "train-unknown-model",
        [*TRAIN, "--model", "nosuch", "--runs-dir", "{t}/runs"],
        r"unknown model 'nosuch'",
    ),
    (
        "train-betas-three",
        [*TRAIN, "--hyper", "betas=0.9,0.99,0.5", "--runs-dir", "{t}/runs"],
        r"betas must be a pair",
    ),
    (
        "landscape-steps-unbounded",
        [*LANDSCAPE, "--steps", "100000000", "--out", "{t}/out"],
        r"steps must be at most 100000 .*got 100000000",
    ),
    (
        "landscape-frames-huge",
        [*LANDSCAPE, "--frames", "100000000", "--out", "{t}/out"],
        r"frames must be an integer in \[2, 1000\], got 100000000",
    ),
    (
        "train-lr-inf",
        [*TRAIN, "--lr", "inf", "--runs-dir", "{t}/runs"],
        r"hyper must hold finite numbers only \(the run is recorded as JSON\), got \{'lr': inf\}",
    ),
    (
        "compare-tune-not-a-number",
        [*COMPARE, "--tune", "momentum=abc", "--workers", "1", "--runs-dir", "{t}/runs"],
        r"optimizer 'momentum': momentum must be a number in \[0\.0, 1\.0\), got 'abc'",
    ),
    (
        "compare-tune-not-a-number-workers",
        [*COMPARE, "--tune", "momentum=abc", "--workers", "2", "--runs-dir", "{t}/runs"],
        r"optimizer 'momentum': momentum must be a number in \[0\.0, 1\.0\), got 'abc'",
    ),
    # -- engine options and checkpoints: refused before anything is written
    (
        "train-fp16-on-cpu",
        [*TRAIN, "--precision", "fp16", "--runs-dir", "{t}/runs"],
        r"precision 'fp16' needs a CUDA device \(its gradient scaler\), got device='cpu'",
    ),
    (
        "compare-fp16-on-cpu",
        [*COMPARE, "--precision", "fp16", "--runs-dir", "{t}/runs"],
        r"precision 'fp16' needs a CUDA device",
    ),
    (
        "compare-accumulate-zero",
        [*COMPARE, "--accumulate", "0", "--runs-dir", "{t}/runs"],
        r"accumulate must be a positive integer, got 0",
    ),
    (
        "compare-clip-negative",
        [*COMPARE, "--clip-grad-norm", "-1", "--runs-dir", "{t}/runs"],
        r"clip_grad_norm must be .*, got -1\.0",
    ),
    (
        "compare-checkpoint-every-zero",
        [*COMPARE, "--checkpoint-every", "0", "--runs-dir", "{t}/runs"],
        r"--checkpoint-every must be a positive integer, 'auto' or 'off', got '0'",
    ),
    # -- usage errors (argparse) are one line too
    ("argparse-missing-value", [*COMPARE, "--lr-range", "-1:1"], r"--lr-range: expected one"),
    ("argparse-bad-int", [*TRAIN, "--steps", "many"], r"--steps: invalid int value: 'many'"),
    ("argparse-unknown-command", ["nosuch"], r"invalid choice: 'nosuch'"),
]


@pytest.fixture
def place(tmp_path):
    """The files the cases refer to; returns the format mapping."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "adir").mkdir()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not an SQLite database\n" * 64)
    (tmp_path / "badrun").mkdir()
    (tmp_path / "badrun" / "descentlab.sqlite").write_bytes(bad.read_bytes())
    ro = _unwritable(tmp_path)
    yield {
        "t": tmp_path,
        "file": tmp_path / "afile",
        "dir": tmp_path / "adir",
        "bad": bad,
        "badrun": tmp_path / "badrun",
        "ro": ro,
    }
    if ro.is_relative_to(tmp_path):
        ro.chmod(0o755)


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        ro = tmp_path / "readonly"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    # root writes anywhere on an ordinary file system; sysfs refuses new entries even to root
    ro = Path("/sys/descentlab-unwritable")
    try:
        ro.mkdir()
    except OSError:
        return ro
    ro.rmdir()
    pytest.skip("no folder here that root cannot write to")


def _files(root: Path) -> list[tuple[str, int]]:
    # A run folder's ``.lock`` (FolderLock: one process per run folder) stays by design: the
    # kernel releases the lock with the process, the file is only a place to hold it.
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1)
        for p in root.rglob("*")
        if p.name != ".lock"
    )


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    _out, err = capsys.readouterr()
    return code, err


@pytest.mark.parametrize(("argv", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(argv, message, place, capsys):
    tmp_path = place["t"]
    argv = [a.format(**place) for a in argv]
    before = _files(tmp_path)
    code, err = _run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.search(r"^descentlab(?: \w+)?: error: ", lines[0]), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert _files(tmp_path) == before  # no store, no run folder, no partial file


def test_a_trial_that_failed_in_a_worker_process_is_one_line():
    """A worker sends its exception's type, message and traceback as one text; the user sees
    the first line."""
    from descentlab.experiments.trial import TrialError

    text = "ValueError: lr must be >= 0.0, got -1\nTraceback (most recent call last):\n  ..."
    assert user_error(TrialError(f"trial 'tune/sgd/holdout' failed: {text}")) == (
        "trial 'tune/sgd/holdout' failed: ValueError: lr must be >= 0.0, got -1"
    )


def test_a_report_written_over_a_folder_leaves_no_temporary_file(tmp_path):
    from descentlab.report.html import render_report

    class Comparison:  # render_report refuses before it reads anything else
        report_path = tmp_path / "report.html"

    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="must be a file, got the folder"):
        render_report(Comparison(), path=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_user_error_keeps_bugs_as_tracebacks():
    assert user_error(ZeroDivisionError("division by zero")) is None
    assert user_error(AttributeError("x")) is None
    assert user_error(sqlite3.DatabaseError("file is not a database")).endswith(
        "file is not a database"
    )
    assert user_error(ValueError("first line\nTraceback (most recent call last):")) == "first line"


def test_debug_variable_shows_the_traceback(place, capsys, monkeypatch):
    monkeypatch.setenv("DESCENTLAB_DEBUG", "1")
    with pytest.raises(ValueError, match="must be a folder"):
        main([*LANDSCAPE, "--out", str(place["file"])])


@pytest.mark.parametrize("command", ["landscape", "train", "compare", "report", "lectures"])
def test_help_prints_limits_as_numbers_not_source_names(command, capsys):
    # a subcommand's --help is its module docstring as text: a :data:`NAME` reference
    # is printed as the number it names (landscape: "--steps at most 100,000")
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert not re.search(r"\bMAX_[A-Z]+\b|:data:|``", out), out
    if command == "landscape":
        assert "--steps at most 100,000 and --frames at most 1,000" in out
