"""Writing files: a report, figure, table, checkpoint, cache file or store
replaces only a regular file (or nothing); a command that runs out of space names the file and
leaves nothing it created; names too long for a folder and damaged stores are refused first.

Every writer goes through :func:`descentlab._files.atomic_path`; the tables below call each
writer on each kind of target that is not a regular file, and the CLI cases check the one-line
error end to end. The full-disk cases use a real, tiny ``tmpfs`` where this process may mount
one (root), and ``RLIMIT_FSIZE`` (the same ``write`` failure, ``EFBIG``) everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import re
import resource
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _models import COMPARE, TRAIN, run_cli

import descentlab

SRC = str(Path(descentlab.__file__).resolve().parents[1])  # the code under test, in a child
LANDSCAPE = ["landscape", "--function", "ravine", "--optimizers", "sgd", "--steps", "5"]


def _one_line(code, err, pattern):
    import re

    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("descentlab: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]


# ------------------------------------------------------------------------------------------
# targets that are not regular files


def _make(kind: str, path: Path) -> tuple[Path, Path | None]:
    """A target of ``kind`` at ``path``; returns it and, for a link, the file it points to."""
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a second /dev/full
    elif kind == "symlink":
        system = path.parent / "system-file"
        system.write_text("do not touch\n")
        path.symlink_to(system)
        return path, system
    return path, None


def _snapshot(path: Path, target: Path | None):
    st = os.lstat(path)
    return (
        stat.S_IFMT(st.st_mode),
        st.st_ino,
        os.readlink(path) if path.is_symlink() else None,
        target.read_text() if target is not None else None,
    )


def _write_page(p):
    from descentlab.report.page import write_page

    write_page(p, "<p>page</p>")


def _save_figure(p):
    from descentlab.report.figures import new_figure, save

    save(new_figure(1, 1), p)


def _animate(p):
    from descentlab.problems.trajectories import races as races_of
    from descentlab.report import figures as F

    races = races_of("ravine", ["sgd"], steps=3)
    F.animate_comparison("ravine", races, p, frames=2, dpi=20)


def _checkpoint(p):
    from descentlab.engine.checkpoint import save_checkpoint

    save_checkpoint({"step": 1, "w": torch.ones(2)}, p)


def _lecture_table(p):
    from descentlab.book.experiments._common import _atomic_write

    _atomic_write(p, "| a |\n")


def _cache_file(p):
    from descentlab.problems.data import _atomic_save_npz

    _atomic_save_npz(p, x=np.zeros(3))


def _store(p):
    from descentlab.store import Store

    Store(p).close()


WRITERS = {
    "report-page": _write_page,
    "figure": _save_figure,
    "animation": _animate,
    "checkpoint": _checkpoint,
    "lecture-table": _lecture_table,
    "cache-file": _cache_file,
    "store": _store,
}
KINDS = ["folder", "fifo", "device", "symlink"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_replaces_only_a_regular_file(writer, kind, tmp_path):
    name = {"animation": "x.gif", "figure": "x.png", "store": "x.sqlite"}.get(writer, "x.out")
    target, points_to = _make(kind, tmp_path / name)
    before = _snapshot(target, points_to)
    others = sorted(os.listdir(tmp_path))
    if writer == "store" and kind == "symlink":
        # a store is opened and changed in place, not replaced: a link to a regular file is
        # followed (SQLite does), so the rule for stores is "what it names is a regular file"
        pytest.skip("a store may be a link to a regular file")
    with pytest.raises(ValueError, match=r"cannot write \S+: it is (a|an) |is a folder"):
        WRITERS[writer](target)
    assert _snapshot(target, points_to) == before
    assert sorted(os.listdir(tmp_path)) == others  # no temporary file, no x.png beside it


def test_a_store_behind_a_link_to_a_device_is_refused(tmp_path):
    link = tmp_path / "db.sqlite"
    link.symlink_to("/dev/null")
    with pytest.raises(ValueError, match=r"it is a device"):
        _store(link)


def test_a_regular_file_is_replaced_and_a_new_one_written(tmp_path):
    """The check refuses only what it must: the writers still write and replace files."""
    for writer, fn in WRITERS.items():
        suffix = {"animation": ".gif", "figure": ".png", "store": ".sqlite"}.get(writer, ".out")
        path = tmp_path / f"{writer}{suffix}"
        fn(path)
        assert path.is_file() and path.stat().st_size > 0, writer
        if writer != "store":
            first = path.stat().st_ino
            fn(path)
            assert path.stat().st_ino != first, writer  # renamed over: replaced atomically
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny finished comparison's run folder (for ``descentlab report``)."""
    from descentlab.experiments.compare import CompareSpec, compare

    spec = CompareSpec(
        problem="moons", problem_options={"n_samples": 120}, model="mlp",
        model_options={"hidden": 4}, optimizers=["sgd"], batch_size=16, steps=4, tune_steps=4,
        lrs_per_optimizer=2, refine=False, seeds=1, landscapes=(),
    )  # fmt: skip
    root = tmp_path_factory.mktemp("runs")
    return compare(spec, root, workers=1, progress=False).run_dir


@pytest.mark.parametrize("kind", KINDS)
def test_cli_report_output_that_is_not_a_regular_file_is_one_line(
    kind, finished_run, tmp_path, capsys
):
    target, points_to = _make(kind, tmp_path / "report.html")
    before = _snapshot(target, points_to)
    code, _out, err = run_cli(["report", finished_run, "--output", target], capsys)
    _one_line(code, err, r"cannot write \S+report\.html: it is |--output must be a file")
    assert _snapshot(target, points_to) == before


def test_cli_figure_given_a_folder_is_refused_not_written_beside_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    code, _out, err = run_cli(["convarith", "alexnet", "--figure", "adir"], capsys)
    _one_line(code, err, r"cannot write adir: it is a folder")
    assert sorted(os.listdir(tmp_path)) == ["adir"]
    assert list((tmp_path / "adir").iterdir()) == []


def test_cli_figure_without_suffix_is_a_png(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _err = run_cli(["convarith", "alexnet", "--figure", "fig"], capsys)
    assert code == 0
    assert "wrote fig.png" in out
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_landscape_output_that_is_a_fifo_is_one_line(tmp_path, capsys):
    os.mkfifo(tmp_path / "ravine_sgd.png")
    code, _out, err = run_cli([*LANDSCAPE, "--no-gif", "--out", tmp_path], capsys)
    _one_line(code, err, r"ravine_sgd\.png: it is a FIFO")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "ravine_sgd.png").st_mode)


# ------------------------------------------------------------------------------------------
# names too long for a folder


def test_cli_compare_name_too_long_is_refused_before_anything_is_made(tmp_path, capsys):
    code, _out, err = run_cli(
        [*COMPARE, "--name", "x" * 5000, "--runs-dir", tmp_path / "r"], capsys
    )
    _one_line(code, err, r"name must be at most 255 bytes")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [".", "..", "a\0b"])
def test_cli_compare_name_that_is_no_folder_name_is_refused(name, tmp_path, capsys):
    code, _out, err = run_cli([*COMPARE, "--name", name, "--runs-dir", tmp_path / "r"], capsys)
    _one_line(code, err, r"name must be a plain folder name")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# a store damaged in its middle


def _damaged_store(tmp_path: Path) -> Path:
    from descentlab.store import Store

    path = tmp_path / "descentlab.sqlite"
    with Store(path) as store:
        for k in range(4):
            run = store.create_run({"optimizer": "adam", "k": k}, name=f"r{k}", seed=k)
            store.log_metrics(run, [(s, "val", "loss", 1.0 / (s + 1)) for s in range(2000)])
    size = path.stat().st_size
    assert size > 64 * 4096
    rng = random.Random(0)
    with open(path, "r+b") as fh:
        fh.seek((size // 2) // 4096 * 4096 + 1000)  # inside a page of the metrics
        fh.write(rng.randbytes(4096))
    return path


def test_a_store_with_random_bytes_in_its_middle_is_refused(tmp_path):
    from descentlab.store import Store, StoreError

    path = _damaged_store(tmp_path)
    with pytest.raises(StoreError, match=r"store \S+ is corrupted \(SQLite quick_check: "):
        Store(path)


def test_cli_train_on_a_damaged_store_is_one_line_and_adds_nothing(tmp_path, capsys):
    path = _damaged_store(tmp_path)
    before = path.read_bytes()
    code, _out, err = run_cli([*TRAIN, "--db", path], capsys)
    _one_line(code, err, r"store \S+descentlab\.sqlite is corrupted \(SQLite quick_check")
    assert path.read_bytes() == before


# ------------------------------------------------------------------------------------------
# no space left


def test_a_cache_write_that_runs_out_of_space_names_the_file_and_leaves_no_folder(
    tmp_path, monkeypatch
):
    from descentlab.problems import data

    def full(fh, **arrays):
        fh.write(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    target = tmp_path / "cache" / "mnist1d" / "x.npz"
    with pytest.raises(OSError, match="no space left on device") as info:
        data._atomic_save_npz(target, x=np.zeros(3))
    assert info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # no empty cache/ folder, no partial file


def _limited(
    argv: list[str], cwd: Path, limit: int, cache: Path | None = None
) -> subprocess.CompletedProcess:
    """``descentlab argv`` in a process whose files cannot grow past ``limit`` bytes (a write
    past it fails with EFBIG, as a full disk's fails with ENOSPC); ``cache``: its kernel
    cache (one holding kernels larger than the limit would not load)."""

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": SRC, "MPLBACKEND": "Agg"}
    env.pop("DESCENTLAB_DEBUG", None)
    if cache is not None:
        env["DESCENTLAB_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "descentlab", *map(str, argv)],
        cwd=cwd, env=env, preexec_fn=cap, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory):
    """A kernel cache holding the ravine trajectory kernel (compiling it under the file size
    limit would fail, and announce that)."""
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "PYTHONPATH": SRC, "DESCENTLAB_CACHE": str(cache)}
    code = "from descentlab.problems import trajectories as T; T.races('ravine', ['sgd'], steps=5)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    return cache


@pytest.mark.process
def test_cli_landscape_over_the_file_size_limit_names_the_file_and_leaves_nothing(
    tmp_path, kernel_cache
):
    out = tmp_path / "ls"
    cache = kernel_cache
    proc = _limited([*LANDSCAPE, "--frames", "4", "--out", out], tmp_path, 40_000, cache)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert re.search(r"ravine_sgd\.(png|gif): file too large", lines[0], re.IGNORECASE), lines[0]
    assert list(tmp_path.iterdir()) == []  # no partial .png or .gif, no empty ls/


@pytest.fixture
def tiny_disk(tmp_path):
    """A tmpfs of 320 KiB mounted at ``tmp_path/disk`` (skips where mounting is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(disk)],
            capture_output=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot mount a tmpfs here")
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


def _fill(disk: Path, leave_kib: int) -> None:
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize // 1024
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave_kib) * 1024)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.process
@pytest.mark.parametrize("command", ["train", "compare"])
def test_cli_on_a_full_disk_names_the_store_and_leaves_nothing(command, tiny_disk, tmp_path):
    _fill(tiny_disk, 24)
    argv = [*(TRAIN if command == "train" else COMPARE), "--runs-dir", tiny_disk / "r"]
    proc = _limited(argv, tmp_path, resource.RLIM_INFINITY)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "descentlab.sqlite: no space left on device" in lines[0], lines[0]
    assert _tree(tiny_disk) == ["filler"]  # no store, no -shm, no .lock, no r/


@pytest.mark.process
def test_cli_train_on_a_full_disk_keeps_an_existing_store_intact(tiny_disk, tmp_path):
    argv = [*TRAIN, "--runs-dir", tiny_disk / "r"]
    assert _limited(argv, tmp_path, resource.RLIM_INFINITY).returncode == 0
    _fill(tiny_disk, 4)
    proc = _limited(argv, tmp_path, resource.RLIM_INFINITY)
    assert proc.returncode == 2, proc.stderr
    assert "descentlab.sqlite: no space left on device" in proc.stderr
    (tiny_disk / "filler").unlink()
    db = tiny_disk / "r" / "descentlab.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0] == "completed"
    again = _limited(argv, tmp_path, resource.RLIM_INFINITY)
    assert again.returncode == 0, again.stderr  # still usable
