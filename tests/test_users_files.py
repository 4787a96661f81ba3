"""Files that are the user's, and options that name nothing: nothing of the user's
is replaced or added to without --force, every refusal comes before the first file is
written, and an option that names nothing is refused rather than read as "everything"."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from _models import one_line as _one_line
from _models import run_cli

from descentlab.store import Store, StoreError

TINY = [
    "--problem", "moons", "--problem-option", "n_samples=120", "--optimizers", "sgd",
    "--batch-size", "16", "--steps", "4", "--tune-steps", "4", "--lr-trials", "2", "--seeds",
    "1", "--landscapes", "none", "--no-progress", "--workers", "1", "--one-at-a-time",
]  # fmt: skip


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    from descentlab.cli import main

    assert main([*["compare", *TINY], "--no-report", "--runs-dir", str(root), "--name", "c"]) == 0
    return root / "c"


def test_report_beside_a_users_trials_csv_is_refused_without_force(comparison, tmp_path, capsys):
    (tmp_path / "trials.csv").write_text("mine")
    out = tmp_path / "r.html"
    _one_line(*run_cli(["report", comparison, "--output", out], capsys)[::2], "trials.csv",
              "--force")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trials.csv"]
    assert (tmp_path / "trials.csv").read_text() == "mine"
    code, _out, err = run_cli(["report", comparison, "--output", out, "--force"], capsys)
    assert code == 0, err
    assert (tmp_path / "trials.csv").read_text() != "mine"


def test_report_to_a_link_is_refused_before_the_side_files(comparison, tmp_path, capsys):
    (tmp_path / "link.html").symlink_to(tmp_path / "elsewhere.html")
    argv = ["report", comparison, "--output", tmp_path / "link.html"]
    _one_line(*run_cli(argv, capsys)[::2], "symbolic link")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.html"]


def test_a_read_only_run_folder_renders_to_an_output_elsewhere(comparison, tmp_path, capsys,
                                                               monkeypatch):  # fmt: skip
    """A read-only mount (simulated: root may write anywhere) is read with SQLite's
    immutable mode: nothing is created beside the store."""
    ro = tmp_path / "ro"
    shutil.copytree(comparison, ro)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m, **k: False if Path(p) == ro else real(p, m))
    made = tempfile.TemporaryFile  # the figures folder's own write test: refused there too

    def refused_in_ro(*args, dir=None, **kw):  # type: ignore[no-untyped-def]
        if dir is not None and Path(dir).is_relative_to(ro):
            raise PermissionError(errno.EROFS, "Read-only file system")
        return made(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "TemporaryFile", refused_in_ro)
    before = sorted(p.name for p in ro.iterdir())
    code, _out, err = run_cli(["report", ro, "--output", tmp_path / "out.html"], capsys)
    assert code == 0, err
    assert (tmp_path / "out.html").is_file()
    assert sorted(p.name for p in ro.iterdir()) == before


def test_compare_into_a_users_folder_is_refused_without_force(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("my notes")
    argv = ["compare", *TINY, "--no-report", "--runs-dir", tmp_path, "--name", "mine"]
    _one_line(*run_cli(argv, capsys)[::2], "--force", "no store")
    assert sorted(p.name for p in mine.iterdir()) == ["report.html"]


def test_lectures_into_a_folder_whose_index_is_a_link_writes_nothing(tmp_path, capsys):
    out = tmp_path / "book"
    out.mkdir()
    (out / "index.html").symlink_to(tmp_path / "elsewhere.html")
    argv = ["lectures", "--quick", "--only", "000", "--items", "1", "--out", out]
    _one_line(*run_cli(argv, capsys)[::2], "symbolic link")
    assert [p.name for p in out.iterdir()] == ["index.html"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["lectures", "--only", "000", "--items", "51"], ["51", "none of the lectures"]),
        (["lectures", "--items", ""], ["--items must name at least one"]),
        (["figures", "seeds", "--only", ""], ["--only must name at least one"]),
        (["convarith", "alexnet", "--figure", ""], ["--figure"]),
    ],
)
def test_an_option_that_names_nothing_is_refused(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    out = ["--out", tmp_path / "out"] if argv[0] in ("lectures", "figures") else []
    code, _out, err = run_cli([*argv, *out], capsys)
    _one_line(code, err, *words)
    assert list(tmp_path.iterdir()) == []


def test_a_store_whose_metrics_table_was_dropped_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as c:
        c.execute("drop table metrics")
    with pytest.raises(StoreError, match="'metrics' table is missing"):
        Store(path)
