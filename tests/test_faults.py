"""Fault tables: a damaged kernel cache, checkpoint or store is detected and
recovered from, or refused with one clear error naming the file -- never used silently."""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path

import pytest
import torch

from descentlab import _native as N
from descentlab import optim

# ------------------------------------------------------------------------------------------
# kernel cache (descentlab._native): 8 faults, 8 recovered

_PLANTED = r"""
#include <stdio.h>
#include <stdint.h>
static const char* marker = "@MARKER@";
__attribute__((constructor)) static void planted(void) {
    FILE* f = fopen(marker, "w");
    if (f) { fputs("constructor ran\n", f); fclose(f); }
}
extern "C" void dl_step(int64_t n, void* a, void* b, void* c, void* d, void* e, int t) {}
extern "C" double dl_sqrt_probe(double x) { return x; }
"""


def _sgd_run(fused):
    """Three SGD-momentum steps on a fixed problem; the final parameter."""
    w = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 64))
    opt = optim.SGD([w], lr=0.1, momentum=0.9, fused=fused)
    for k in range(3):
        w.grad = torch.sin(w.detach() * (k + 1))
        opt.step()
    return w.detach().clone()


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """Compiled once for the module: SGD-momentum's kernel (its files and final parameter),
    Adam's kernel bytes and a planted library whose constructor writes a marker file."""
    if N.compiler() is None:
        pytest.skip("no C++ compiler")
    root = tmp_path_factory.mktemp("kernels")
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("DESCENTLAB_CACHE", str(root / "adam"))
        _forget_kernels(mp)
        w = torch.nn.Parameter(torch.ones(8))
        w.grad = torch.ones(8)
        optim.Adam([w], lr=0.1, fused=True).step()
        (adam,) = N.cache_dir().glob("k_*.so")
        mp.setenv("DESCENTLAB_CACHE", str(root / "sgd"))
        expected = _sgd_run(True)
        (lib,) = N.cache_dir().glob("k_*.so")
    finally:
        mp.undo()
    marker = root / "constructor-ran"
    src = root / "planted.cpp"
    src.write_text(_PLANTED.replace("@MARKER@", str(marker)))
    planted = root / "planted.so"
    subprocess.run([N.compiler(), "-shared", "-fPIC", str(src), "-o", str(planted)], check=True)
    return {"sgd": lib, "expected": expected, "adam": adam.read_bytes(),
            "adam.json": adam.with_suffix(".json").read_bytes(),
            "planted": planted.read_bytes(), "marker": marker}  # fmt: skip


@pytest.fixture
def kernel_cache(kernels, tmp_path, monkeypatch):
    """A fresh cache holding SGD-momentum's kernel, nothing loaded in memory."""
    monkeypatch.setenv("DESCENTLAB_CACHE", str(tmp_path / "cache"))
    _forget_kernels(monkeypatch)
    N._trusted_dir(N.cache_dir())  # made as the loader makes it
    lib = N.cache_dir() / kernels["sgd"].name
    for suffix in (".so", ".json"):
        if kernels["sgd"].with_suffix(suffix).exists():
            lib.with_suffix(suffix).write_bytes(kernels["sgd"].with_suffix(suffix).read_bytes())
    return lib, kernels["expected"]


def _forget_kernels(monkeypatch) -> None:
    """As in a new process: no library loaded or bound in memory."""
    monkeypatch.setattr(N, "_libraries", {})
    monkeypatch.setattr(N, "_bound", {})


# fault -> how it damages the entry ``lib`` (its library and its sidecar ``.json``)
FAULTS = {
    "truncated": lambda lib, k: lib.write_bytes(
        k["sgd"].read_bytes()[: k["sgd"].stat().st_size // 2]
    ),
    "garbage": lambda lib, k: lib.write_bytes(os.urandom(len(k["sgd"].read_bytes()))),
    "empty": lambda lib, k: lib.write_bytes(b""),
    # another optimizer's kernel under this one's name
    "swapped": lambda lib, k: lib.write_bytes(k["adam"]),
    # another kernel's library with its own sidecar (both hashes agree with each other)
    "swapped with its sidecar": lambda lib, k: (
        lib.write_bytes(k["adam"]),
        lib.with_suffix(".json").write_bytes(k["adam.json"]),
    ),
    # a library planted under the kernel's name
    "planted": lambda lib, k: lib.write_bytes(k["planted"]),
    # a library planted, and the sidecar that would record another's hash removed
    "planted without sidecar": lambda lib, k: (
        lib.write_bytes(k["planted"]),
        lib.with_suffix(".json").unlink(),
    ),
    "sidecar garbage": lambda lib, k: lib.with_suffix(".json").write_bytes(os.urandom(200)),
    # an entry built for another CPU's instruction set under this one's name (a cache folder
    # shared by machines): its sidecar records the other CPU
    "built for another CPU": lambda lib, k: _recorded(lib, cpu="0123456789abcdef"),
}


def _recorded(lib: Path, **fields) -> None:
    """Rewrite fields of the sidecar of ``lib`` (the library's bytes and hash kept)."""
    meta = json.loads(lib.with_suffix(".json").read_text())
    lib.with_suffix(".json").write_text(json.dumps({**meta, **fields}))


def _break(lib: Path, fault: str, kernels) -> None:
    FAULTS[fault](lib, kernels)


def _recovers(lib: Path, fault: str, kernels, monkeypatch, fused) -> None:
    _break(lib, fault, kernels)
    _forget_kernels(monkeypatch)  # a new process: the kernel comes from disk
    before = N.compile_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _sgd_run(fused)
    assert not kernels["marker"].exists(), "the planted library was loaded"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, (fault, messages)
    assert "failed verification" in messages[0] and lib.name in messages[0], messages
    assert N.compile_count() == before + 1, f"{fault}: the kernel was not rebuilt"
    torch.testing.assert_close(got, kernels["expected"], rtol=0, atol=0)


@pytest.mark.process
def test_kernel_cache_fault_table_9_of_9_recovered(kernels, kernel_cache, monkeypatch):
    lib, _ = kernel_cache
    recovered = []
    for fault in FAULTS:  # the default backend (fused=None)
        _recovers(lib, fault, kernels, monkeypatch, None)
        recovered.append(fault)
    assert recovered == list(FAULTS)  # 9/9


@pytest.mark.process
def test_kernel_cache_fault_recovered_with_fused_true(kernels, kernel_cache, monkeypatch):
    _recovers(kernel_cache[0], "truncated", kernels, monkeypatch, True)


@pytest.mark.process
def test_kernel_cache_sidecar_records_hashes_and_command(kernel_cache):
    import hashlib
    import json

    lib, _ = kernel_cache
    meta = json.loads(lib.with_suffix(".json").read_text())
    assert meta["so_sha256"] == hashlib.sha256(lib.read_bytes()).hexdigest()
    assert len(meta["source_sha256"]) == 64
    assert meta["command"][0] == N.compiler() and "-O3" in meta["command"]


@pytest.mark.process
def test_kernel_cache_folders_are_private(kernel_cache):
    lib, _ = kernel_cache
    assert lib.parent.stat().st_mode & 0o777 == 0o700
    assert lib.parent.parent.stat().st_mode & 0o777 == 0o700  # $DESCENTLAB_CACHE made here


@pytest.mark.process
@pytest.mark.parametrize("problem", ["group-writable", "other-owner"])
def test_untrusted_kernel_cache_folder_is_refused(kernel_cache, monkeypatch, problem):
    lib, _ = kernel_cache
    folder = lib.parent
    if problem == "group-writable":
        folder.chmod(0o777)
        why = "writable by group or others"
    else:
        if os.geteuid() != 0:
            pytest.skip("changing a folder's owner needs root")
        os.chown(folder, 65534, 65534)
        why = "owned by user 65534"
    try:
        _forget_kernels(monkeypatch)
        before = N.compile_count()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _sgd_run(None)  # the default falls back to eager, announced once
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1 and why in messages[0] and str(folder) in messages[0], messages
        assert N.compile_count() == before
        torch.testing.assert_close(got, _sgd_run(False), rtol=0, atol=0)
        _forget_kernels(monkeypatch)
        with pytest.raises(optim.FusedUnavailable, match=why):
            _sgd_run(True)
    finally:
        os.chown(folder, os.geteuid(), os.getegid())
        folder.chmod(0o700)


# ------------------------------------------------------------------------------------------
# checkpoints: 4 faults, 4 detected (a clear error naming the file, nothing changed)

CKPT_FAULTS = ["16 bytes overwritten", "2000 garbage bytes", "truncated", "deleted"]


def _damage(path: Path, fault: str) -> None:
    data = bytearray(path.read_bytes())
    if fault == "16 bytes overwritten":
        mid = len(data) // 2
        data[mid : mid + 16] = bytes(b ^ 0xFF for b in data[mid : mid + 16])
        path.write_bytes(bytes(data))
    elif fault == "2000 garbage bytes":
        path.write_bytes(bytes(data) + os.urandom(2000))
    elif fault == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        path.unlink()


@pytest.fixture(scope="module")
def paused_run(tmp_path_factory):
    """A run paused at step 25 (checkpoints every 10 steps), and the same run uninterrupted."""
    from descentlab.engine.config import RunConfig
    from descentlab.engine.run import train
    from descentlab.store import Store

    cfg = RunConfig(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                    model_options={"hidden": 8}, optimizer="adam", hyper={"lr": 0.01},
                    batch_size=16, steps=40, evaluate_test=False, checkpoint_every=10)  # fmt: skip
    root = tmp_path_factory.mktemp("paused")
    store = Store(root / "lab.sqlite")
    paused = train(cfg, store, until_step=25, progress=False)
    store.close()
    full = train(cfg.replace(checkpoint_every=None), progress=False)
    return root, paused.run_id, full


def _copy_store(root: Path, dest: Path):
    import shutil

    from descentlab.store import Store

    shutil.copytree(root, dest)
    store = Store(dest / "lab.sqlite")
    # the checkpoint paths a store records are relative to its folder: the copy's point into
    # the copy
    for rec in store.list_runs():
        art = store.artifacts(rec.id).get("checkpoint")
        if art is not None:
            assert Path(art["path"]).is_relative_to(dest), art
    return store


def test_checkpoint_fault_table_4_of_4_detected(paused_run, tmp_path):
    from descentlab.engine.checkpoint import CheckpointError
    from descentlab.engine.run import resume

    root, run_id, full = paused_run
    detected = []
    for i, fault in enumerate(CKPT_FAULTS):
        store = _copy_store(root, tmp_path / str(i))
        ckpt = Path(store.artifacts(run_id)["checkpoint"]["path"])
        before = (store.get_run(run_id).status, store.metrics(run_id)["val/loss"].steps.tolist())
        _damage(ckpt, fault)
        with pytest.raises(CheckpointError) as info:
            resume(run_id, store, progress=False)
        message = str(info.value)
        assert str(ckpt) in message and "\n" not in message, message
        assert "restart" in message  # says how to start over, if that is what the user wants
        after = (store.get_run(run_id).status, store.metrics(run_id)["val/loss"].steps.tolist())
        assert after == before, f"{fault}: the failed resume changed the store"
        detected.append(fault)
        # starting over happens only when asked for, and gives the uninterrupted run's numbers
        done = resume(run_id, store, progress=False, restart=True)
        assert done.status == "completed"
        for a, b in zip(done.model.parameters(), full.model.parameters(), strict=True):
            assert torch.equal(a, b)
        store.close()
    assert detected == CKPT_FAULTS  # 4/4


def test_checkpoint_records_a_checksum_and_loads_with_weights_only(paused_run):
    import hashlib
    import json

    from descentlab.engine.checkpoint import checksum_path

    root, run_id, _ = paused_run
    ckpt = root / "checkpoints" / f"run-{run_id}.pt"
    meta = json.loads(checksum_path(ckpt).read_text())
    assert meta["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    state = torch.load(ckpt, weights_only=True)  # still a plain torch.save file
    assert state["step"] == 25


def test_checkpoint_without_store_detects_corruption(tmp_path):
    from descentlab.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    save_checkpoint({"step": 2, "w": torch.ones(3)}, path)
    assert load_checkpoint(path)["step"] == 2
    _damage(path, "16 bytes overwritten")
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    path.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path)


def test_cli_resume_of_a_corrupted_checkpoint_is_one_clear_line(paused_run, tmp_path, capsys):
    from descentlab.cli import main

    root, run_id, _ = paused_run
    store = _copy_store(root, tmp_path / "c")
    ckpt = Path(store.artifacts(run_id)["checkpoint"]["path"])
    store.close()
    _damage(ckpt, "16 bytes overwritten")
    argv = ["train", "--resume", str(run_id), "--db", str(tmp_path / "c" / "lab.sqlite"),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoint {ckpt} is corrupted" in err and "--restart" in err
    assert main([*argv, "--restart"]) == 0


# ------------------------------------------------------------------------------------------
# the store: 16 odd or damaged stores, each one clear error naming the file


def _good_store(path: Path) -> None:
    from descentlab.store import Store

    with Store(path) as store:
        for i in range(3):
            rid = store.create_run({"lr": 0.1 * (i + 1), "pad": "x" * 2000}, name=f"r{i}")
            store.log_metrics(rid, [(s, "val", "loss", 1.0 / (s + 1)) for s in range(300)])
            store.set_status(rid, "completed")


def _sql(path: Path, *statements: str) -> None:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    for st in statements:
        conn.execute(st)
    conn.close()


def _odd_store(case: str, root: Path) -> tuple[Path, float]:
    """A store path showing ``case`` and the timeout to open it with."""
    path = root / "lab.sqlite"
    if case == "a folder":
        path.mkdir()
    elif case == "parent is a file":
        (root / "file").write_text("x")
        path = root / "file" / "lab.sqlite"
    elif case == "garbage":
        path.write_bytes(os.urandom(8192))
    elif case == "text file":
        path.write_text("this is not a database\n" * 200)
    elif case == "valid header, garbage body":
        path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    else:
        _good_store(path)
        data = bytearray(path.read_bytes())
        if case == "header zeroed":
            data[:16] = bytes(16)
        elif case == "truncated":
            data = data[: 4096 + 2048]
        elif case == "pages overwritten":
            data[4096:] = os.urandom(len(data) - 4096)
        path.write_bytes(bytes(data))
        if case == "newer schema":
            _sql(path, "UPDATE meta SET value='99' WHERE key='schema_version'")
        elif case == "schema version not a number":
            _sql(path, "UPDATE meta SET value='abc' WHERE key='schema_version'")
        elif case == "runs table of another layout":
            _sql(path, "DROP TABLE artifacts", "DROP TABLE metrics", "DROP TABLE runs",
                 "CREATE TABLE runs (id INTEGER PRIMARY KEY, foo TEXT)")  # fmt: skip
        elif case == "corrupted JSON in a run":
            _sql(path, "UPDATE runs SET config='{not json' WHERE id=2")
        elif case == "-wal is a folder":
            Path(f"{path}-wal").mkdir()
        elif case == "-shm is a folder":
            Path(f"{path}-shm").mkdir()
        elif case == "-journal is a link to itself":
            Path(f"{path}-journal").symlink_to(Path(f"{path}-journal"))
    if case == "another program's database":
        path.unlink(missing_ok=True)
        _sql(path, "CREATE TABLE users (name TEXT)", "INSERT INTO users VALUES ('ann')")
    return path, (0.3 if case == "locked by another process" else 5.0)


STORE_FAULTS = [
    "a folder", "parent is a file", "garbage", "text file", "valid header, garbage body",
    "header zeroed", "truncated", "pages overwritten", "locked by another process",
    "newer schema", "schema version not a number", "another program's database",
    "runs table of another layout", "corrupted JSON in a run", "-wal is a folder",
    "-shm is a folder", "-journal is a link to itself",
]  # fmt: skip


def _use(path: Path, timeout: float) -> None:
    """What a command does with a store: open, list, read a run and its metrics, write."""
    from descentlab.store import Store

    store = Store(path, timeout=timeout)
    try:
        for rec in store.list_runs():
            store.get_run(rec.id)
            store.metrics(rec.id)
            store.artifacts(rec.id)
        store.create_run({"lr": 1.0}, name="new")
    finally:
        store.close()


def test_store_fault_table_17_of_17_clear(tmp_path):
    import sqlite3

    from descentlab.store import StoreError

    clear = []
    for i, case in enumerate(STORE_FAULTS):
        root = tmp_path / str(i)
        root.mkdir()
        path, timeout = _odd_store(case, root)
        holder = None
        if case == "locked by another process":
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError) as info:
                _use(path, timeout)
        finally:
            if holder is not None:
                holder.close()
        message = str(info.value)
        assert str(path) in message and "\n" not in message, (case, message)
        assert info.value.__cause__ is None or not isinstance(info.value.__cause__, StoreError), (
            case
        )
        clear.append(case)
    assert clear == STORE_FAULTS  # 17/17


def test_store_cli_gives_one_line_for_a_corrupted_store(tmp_path, capsys):
    from descentlab.cli import main

    path, _ = _odd_store("garbage", tmp_path)
    assert main(["train", "--resume", "1", "--db", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
@pytest.mark.parametrize("what", ["folder", "file"])
def test_store_in_a_read_only_place_is_one_clear_error(tmp_path, what):
    from descentlab.store import StoreError

    path = tmp_path / "ro" / "lab.sqlite"
    path.parent.mkdir()
    if what == "file":
        _good_store(path)
        path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        with pytest.raises(StoreError, match=str(path)):
            _use(path, 5.0)
    finally:
        path.parent.chmod(0o755)
