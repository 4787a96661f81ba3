"""Tests for descentlab.store: round trips, filters, no overwrites, crashes, concurrency."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
import torch

import descentlab
from descentlab.store import STATUSES, Store, canonical_json, provenance


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "lab.sqlite") as s:
        yield s


def test_create_and_get_round_trip(store):
    cfg = {"optimizer": "adam", "hyper": {"lr": 0.01, "betas": [0.9, 0.999]}, "batch_size": None}
    rid = store.create_run(cfg, name="a", seed=3)
    run = store.get_run(rid)
    assert (run.id, run.name, run.config, run.status, run.seed) == (rid, "a", cfg, "running", 3)
    assert run.provenance["seed"] == 3
    assert run.created_at == run.updated_at


def test_ids_are_fresh_and_runs_are_never_overwritten(store):
    cfg = {"lr": 0.1}
    ids = [store.create_run(cfg, name="same") for _ in range(3)]
    assert ids == sorted(set(ids))
    assert [r.id for r in store.list_runs(name="same")] == ids


def test_wal_mode_and_schema_on_disk(tmp_path):
    Store(tmp_path / "x.sqlite").close()
    conn = sqlite3.connect(tmp_path / "x.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "metrics", "artifacts", "meta"} <= tables


def test_metrics_round_trip_with_nan_and_inf(store):
    rid = store.create_run({"x": 1})
    rows = [
        (0, "val", "loss", 2.5),
        (10, "val", "loss", 1.25),
        (20, "val", "loss", math.inf),
        (30, "val", "loss", math.nan),
        (0, "train", "accuracy", 0.5),
        (10, "train", "accuracy", 0.75),
    ]
    assert store.log_metrics(rid, reversed(rows)) == len(rows)
    m = store.metrics(rid)
    assert sorted(m) == ["train/accuracy", "val/loss"]
    np.testing.assert_array_equal(m["val/loss"].steps, [0, 10, 20, 30])
    np.testing.assert_array_equal(m["val/loss"].values, [2.5, 1.25, math.inf, math.nan])
    assert m["val/loss"].steps.dtype == np.int64
    steps, values = m["train/accuracy"]
    assert steps.tolist() == [0, 10] and values.tolist() == [0.5, 0.75]
    assert list(store.metrics(rid, split="train")) == ["train/accuracy"]
    assert list(store.metrics(rid, name="loss")) == ["val/loss"]


def test_duplicate_metric_is_rejected_and_the_batch_rolled_back(store):
    rid = store.create_run({"x": 1})
    store.log_metrics(rid, [(5, "val", "loss", 1.0)])
    with pytest.raises(ValueError, match="already recorded"):
        store.log_metrics(rid, [(6, "val", "loss", 0.5), (5, "val", "loss", 9.0)])
    series = store.metrics(rid)["val/loss"]
    assert series.steps.tolist() == [5] and series.values.tolist() == [1.0]


def test_a_batch_is_written_in_one_statement_and_a_duplicate_in_it_named(store):
    # a refit run's test outcomes are one batch of 2,000 rows (one INSERT for all of them);
    # a duplicate inside a batch is named and nothing of the batch is kept
    rid = store.create_run({"x": 1})
    rows = [(i, "test_example", "loss", i / 7) for i in range(2000)]
    assert store.log_metrics(rid, rows) == 2000
    assert store.metrics(rid)["test_example/loss"].values.tolist() == [i / 7 for i in range(2000)]
    with pytest.raises(ValueError, match="val/loss at step 7 is already recorded"):
        store.log_metrics(rid, [(6, "val", "loss", 0.5), (7, "val", "loss", 1.0),
                                (7, "val", "loss", 2.0)])  # fmt: skip
    assert "val/loss" not in store.metrics(rid)
    # steps that are not plain ints are still converted (numpy's integers)
    assert store.log_metrics(rid, [(np.int64(3), "val", "loss", 0.25)]) == 1
    assert store.metrics(rid)["val/loss"].steps.tolist() == [3]


def test_per_example_outcomes_are_one_row_of_bytes_a_name_kept_bit_for_bit(store, tmp_path):
    """A refit run's per-example test values: stored exactly (NaN, infinities, -0.0), never
    overwritten, carried by export and import, and a row whose bytes are not its count's is
    refused naming the run."""
    from descentlab.store import StoreError

    rid = store.create_run({"x": 1})
    loss = np.array([0.5, np.nan, np.inf, -np.inf, -0.0, 1e-300, 1 / 3])
    store.log_outcomes(rid, {"loss": loss, "accuracy": np.array([1, 0, 1, 1, 0, 0, 1.0])})
    got = store.outcomes(rid)
    assert sorted(got) == ["accuracy", "loss"]
    assert got["loss"].tobytes() == loss.tobytes()  # bit for bit, -0.0 and NaN included
    assert not store.metrics(rid)  # no metric rows
    from descentlab.experiments.example_outcomes import OUTCOMES_KEY, read_outcomes

    store.update_provenance(rid, {OUTCOMES_KEY: 8})  # a count the rows do not hold
    assert read_outcomes(store, store.get_run(rid)) == "test_example/accuracy: 7 stored of 8"
    with pytest.raises(ValueError, match="already has outcomes"):
        store.log_outcomes(rid, {"loss": loss * 2})
    assert store.outcomes(rid)["loss"].tobytes() == loss.tobytes()
    with pytest.raises(ValueError, match="one value per example"):
        store.log_outcomes(store.create_run({"x": 2}), {"loss": np.zeros((2, 2))})
    other = Store(tmp_path / "other.sqlite")
    try:
        moved = other.import_run(store.export_run(rid))
        assert other.outcomes(moved)["loss"].tobytes() == loss.tobytes()
    finally:
        other.close()
    with sqlite3.connect(store.path) as raw:  # cut short: zlib's own check fails
        raw.execute("UPDATE outcomes SET data = substr(data, 1, 12) WHERE name = 'loss'")
    with pytest.raises(StoreError, match=f"run {rid}'s outcomes 'loss' hold no zlib data"):
        store.outcomes(rid)
    with sqlite3.connect(store.path) as raw:  # whole zlib data, not whole float64 values
        raw.execute("UPDATE outcomes SET data = ? WHERE name = 'loss'", (zlib.compress(b"x" * 12),))
    with pytest.raises(StoreError, match="'loss' hold 12 bytes, not float64 values"):
        store.outcomes(rid)


def test_a_refit_runs_outcomes_take_a_fifth_of_the_room_metric_rows_took(tmp_path):
    """1,000 test examples' loss and accuracy: at most 16 kB a run (the accuracy's 0s and
    1s compress to almost nothing), where 2,000 metric rows took about 80 kB (the demo's
    store: 21 MB, all but 1 MB of it per-example rows; every byte written twice, into
    SQLite's log and then its file)."""
    from descentlab.engine.config import RunConfig
    from descentlab.engine.evaluation import evaluate
    from descentlab.experiments.example_outcomes import read_outcomes, store_outcomes
    from descentlab.problems import data as datasets

    splits = datasets.load("moons", n_samples=5000)
    model = torch.nn.Linear(2, 2)
    cfg = RunConfig(problem="moons", model="mlp", optimizer="sgd", hyper={"lr": 0.1}, steps=1)
    splits.unseal_test()
    n = len(splits.y_test)
    summary = {f"test/{k}": v for k, v in evaluate(model, splits.x_test, splits.y_test,
               torch.nn.CrossEntropyLoss(), classification=True).items()}  # fmt: skip
    splits.seal_test()
    store = Store(tmp_path / "s.sqlite")
    try:
        runs = 20
        for _ in range(runs):
            rid = store.create_run({"r": _}, name="r")
            store.set_status(rid, "completed", summary=summary)
            store.log_metrics(rid, [(0, "val", "loss", 1.0)])
            store_outcomes(store, rid, model, cfg, splits)
        assert len(read_outcomes(store, store.get_run(rid))["loss"]) == n
        con = store._connection()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(store.path)
    finally:
        store.close()
    per_run = size / runs
    assert per_run < 12 * n, f"{per_run:.0f} bytes a run for {n} examples' two outcomes"


def test_outcomes_stored_as_metric_rows_by_an_older_store_are_read(store):
    from descentlab.experiments.example_outcomes import OUTCOMES_KEY, SPLIT, read_outcomes

    rid = store.create_run({"x": 1})
    store.log_metrics(rid, [(i, SPLIT, "loss", i / 4) for i in range(4)])
    store.update_provenance(rid, {OUTCOMES_KEY: 4})
    assert read_outcomes(store, store.get_run(rid))["loss"].tolist() == [0, 0.25, 0.5, 0.75]
    store.update_provenance(rid, {OUTCOMES_KEY: 5})
    assert read_outcomes(store, store.get_run(rid)) == "test_example/loss: 4 stored of 5"


def test_truncate_metrics_then_relog(store):
    rid = store.create_run({"x": 1})
    store.log_metrics(rid, [(s, "val", "loss", float(s)) for s in (0, 10, 20, 30)])
    assert store.truncate_metrics(rid, after_step=10) == 2
    store.log_metrics(rid, [(20, "val", "loss", -1.0)])
    assert store.metrics(rid)["val/loss"].values.tolist() == [0.0, 10.0, -1.0]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["a", "b", "c", "d"]),
        ({"status": "completed"}, ["a", "c"]),
        ({"status": ["diverged", "failed"]}, ["b", "d"]),
        ({"name": "c"}, ["c"]),
        ({"config": {"optimizer": "adam"}}, ["a", "b"]),
        ({"config": {"hyper.lr": 0.01}}, ["a", "c"]),
        ({"config": {"optimizer": "adam", "hyper.lr": 0.01}}, ["a"]),
        ({"config": {"batch_size": None}}, ["c"]),
        ({"config": {"batch_size": 100}}, ["a", "b", "d"]),
        ({"config": {"augment": True}}, ["b"]),
        ({"config": {"augment": False}}, ["a", "c", "d"]),
        ({"config": {"hyper.betas": [0.9, 0.99]}}, ["d"]),
        ({"config": {"missing": 1}}, []),
        ({"status": "completed", "config": {"optimizer": "sgd"}}, ["c"]),
        ({"limit": 2}, ["c", "d"]),
    ],
)
def test_list_runs_filters(store, filters, expected):
    table = [
        ("a", "adam", 0.01, 100, False, "completed"),
        ("b", "adam", 0.1, 100, True, "diverged"),
        ("c", "sgd", 0.01, None, False, "completed"),
        ("d", "nadam", 0.001, 100, False, "failed"),
    ]
    for name, opt, lr, bs, aug, status in table:
        hyper = {"lr": lr} if name != "d" else {"lr": lr, "betas": [0.9, 0.99]}
        rid = store.create_run(
            {"optimizer": opt, "hyper": hyper, "batch_size": bs, "augment": aug}, name=name
        )
        store.set_status(rid, status)
    assert [r.name for r in store.list_runs(**filters)] == expected


def test_find_run_by_config_ignores_key_order_and_filters_status(store):
    a = store.create_run({"lr": 0.1, "opt": "sgd", "nested": {"x": 1, "y": 2}})
    assert store.find_run_by_config({"opt": "sgd", "nested": {"y": 2, "x": 1}, "lr": 0.1}) is None
    store.set_status(a, "completed")
    b = store.create_run({"nested": {"y": 2, "x": 1}, "opt": "sgd", "lr": 0.1})
    store.set_status(b, "completed")
    found = store.find_run_by_config({"opt": "sgd", "nested": {"y": 2, "x": 1}, "lr": 0.1})
    assert found is not None and found.id == b  # the newest
    assert store.find_run_by_config({"lr": 0.1, "opt": "sgd"}) is None  # whole config only
    assert store.find_run_by_config({"lr": 0.2, "opt": "sgd", "nested": {"x": 1, "y": 2}}) is None


def test_set_status_with_expectation(store):
    rid = store.create_run({})
    store.set_status(rid, "interrupted", message="SIGINT at step 10")
    assert store.get_run(rid).message == "SIGINT at step 10"
    with pytest.raises(ValueError, match="has status 'interrupted'"):
        store.set_status(rid, "running", expect="completed")
    assert store.get_run(rid).status == "interrupted"
    store.set_status(rid, "running", expect=["interrupted", "failed"])
    assert store.get_run(rid).status == "running"


def test_summary_is_recorded_and_kept(store):
    rid = store.create_run({})
    assert store.get_run(rid).summary is None
    store.set_status(rid, "completed", summary={"val/loss": 0.5, "test/loss": math.nan})
    assert store.get_run(rid).summary == {"val/loss": 0.5, "test/loss": None}
    store.set_status(rid, "completed", message="again")
    assert store.get_run(rid).summary == {"val/loss": 0.5, "test/loss": None}


def test_update_provenance_merges(store):
    rid = store.create_run({}, provenance={"a": 1})
    store.update_provenance(rid, {"resumes": [{"step": 3}]})
    assert store.get_run(rid).provenance == {"a": 1, "resumes": [{"step": 3}]}


def test_artifacts_are_not_silently_replaced(store, tmp_path):
    rid = store.create_run({})
    store.add_artifact(rid, "checkpoint", tmp_path / "a.pt", kind="checkpoint")
    with pytest.raises(ValueError, match="already has an artifact"):
        store.add_artifact(rid, "checkpoint", tmp_path / "b.pt")
    assert store.artifacts(rid)["checkpoint"]["path"] == str(tmp_path / "a.pt")
    store.add_artifact(rid, "checkpoint", tmp_path / "b.pt", replace=True)
    assert store.artifacts(rid)["checkpoint"]["path"] == str(tmp_path / "b.pt")


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda s: s.get_run(99), KeyError, "no run with id 99"),
        (lambda s: s.metrics(99), KeyError, "no run with id 99"),
        (lambda s: s.log_metrics(99, [(0, "val", "loss", 1.0)]), KeyError, "no run with id 99"),
        (lambda s: s.set_status(99, "completed"), KeyError, "no run with id 99"),
        (lambda s: s.add_artifact(99, "x", "p"), KeyError, "no run with id 99"),
        (lambda s: s.create_run({}, status="done"), ValueError, "status must be one of"),
        (lambda s: s.list_runs(status="ok"), ValueError, "status must be one of"),
        (lambda s: s.create_run({"x": object()}), ValueError, "JSON-serializable"),
        (lambda s: s.create_run({"x": math.nan}), ValueError, "JSON-serializable"),
        (lambda s: s.create_run([1, 2]), ValueError, "config must be a mapping"),
        (lambda s: s.list_runs(config={"a..b": 1}), ValueError, "dotted name"),
        (lambda s: s.list_runs(limit=0), ValueError, "limit must be a positive integer, got 0"),
        (lambda s: s.log_metrics(1, [(0, "val", "loss")]), ValueError, "must be \\(step"),
        (lambda s: s.log_metrics(1, [(-1, "val", "loss", 1.0)]), ValueError, "step must be"),
        (lambda s: s.log_metrics(1, [(0, "", "loss", 1.0)]), ValueError, "non-empty"),
    ],
)
def test_bad_input(store, call, exc, match):
    store.create_run({})
    with pytest.raises(exc, match=match):
        call(store)
    assert [r.id for r in store.list_runs()] == [1]
    assert store.metrics(1) == {}


def test_canonical_json_is_order_independent():
    assert canonical_json({"b": {"d": 1, "c": 2}, "a": 1}) == '{"a":1,"b":{"c":2,"d":1}}'


@pytest.mark.process
def test_provenance_records_versions_git_and_machine():
    prov = provenance(seed=7, note="x")
    assert prov["seed"] == 7 and prov["note"] == "x"
    assert prov["versions"]["torch"] == torch.__version__
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["versions"]["descentlab"] == descentlab.__version__
    assert prov["machine"]["cpu_count"] == os.cpu_count()
    src = os.path.dirname(descentlab.__file__)
    git = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True)
    if git.returncode == 0:
        assert prov["git"]["commit"] == git.stdout.strip()
    else:
        assert prov["git"] is None


@pytest.mark.process
def test_sigkill_inside_a_write_leaves_the_database_as_before(tmp_path):
    """A process killed halfway through log_metrics leaves none of that call's rows."""
    db = tmp_path / "crash.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal
        from descentlab.store import Store
        s = Store({str(db)!r})
        rid = s.create_run({{"kept": True}})
        s.log_metrics(rid, [(0, "val", "loss", 1.0)])
        def rows():
            for i in range(1, 1000):
                if i == 500:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield (i, "val", "loss", float(i))
        s.log_metrics(rid, rows())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    with Store(db) as s:
        assert s.integrity_check() == "ok"
        assert [r.config for r in s.list_runs()] == [{"kept": True}]
        assert s.metrics(1)["val/loss"].steps.tolist() == [0]
        s.log_metrics(1, [(1, "val", "loss", 2.0)])  # the write lock was released
        assert s.metrics(1)["val/loss"].steps.tolist() == [0, 1]


def _writer(db: str, worker: int, n_runs: int, n_metrics: int) -> None:
    s = Store(db)
    for k in range(n_runs):
        rid = s.create_run({"worker": worker, "k": k}, name=f"w{worker}")
        s.log_metrics(rid, [(i, "train", "loss", worker + k / 100 + i) for i in range(n_metrics)])
        s.set_status(rid, "completed")
    s.close()


@pytest.mark.process
def test_concurrent_writer_processes_do_not_corrupt(tmp_path):
    db = str(tmp_path / "shared.sqlite")
    Store(db).close()
    n_workers, n_runs, n_metrics = 4, 15, 40
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(db, w, n_runs, n_metrics)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * n_workers
    with Store(db) as s:
        assert s.integrity_check() == "ok"
        runs = s.list_runs(status="completed")
        assert len(runs) == n_workers * n_runs
        assert len({r.id for r in runs}) == len(runs)
        for r in runs:
            w, k = r.config["worker"], r.config["k"]
            assert r.name == f"w{w}"
            values = s.metrics(r.id)["train/loss"].values
            np.testing.assert_array_equal(values, [w + k / 100 + i for i in range(n_metrics)])


@pytest.mark.process
def test_store_object_survives_a_fork(tmp_path):
    # the child reads through its copy (its own connection); it may not write through it:
    # the parent is the store's one writer (tests/test_trial_room.py)
    s = Store(tmp_path / "f.sqlite")
    rid = s.create_run({"parent": True})
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=lambda: sys.exit(0 if s.get_run(rid).config == {"parent": True} else 1))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    s.log_metrics(rid, [(1, "val", "loss", 1.0)])  # (the parent's connection still works)
    assert s.metrics(rid)["val/loss"].values.tolist() == [1.0]
    s.close()


def test_all_statuses_settable(store):
    rid = store.create_run({})
    for status in STATUSES:
        store.set_status(rid, status)
        assert store.get_run(rid).status == status


@pytest.mark.process
def test_the_git_revision_is_asked_once_per_process(monkeypatch):
    from descentlab import store as store_module

    calls = []
    real = store_module.subprocess.run

    def counted(*args, **kwargs):
        calls.append(args[0][3] if len(args[0]) > 3 else args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module.subprocess, "run", counted)
    store_module._git_revision_once.cache_clear()
    try:
        first = provenance(seed=1)["git"]
        second = provenance(seed=2)["git"]
        assert len(calls) <= 2  # rev-parse and status, the first time only
        assert first == second
        if first is not None:  # each caller gets its own copy
            first["commit"] = "changed"
            assert provenance()["git"]["commit"] != "changed"
    finally:
        store_module._git_revision_once.cache_clear()
        store_module._git_revision_once()  # asked again here, not by a later test


@pytest.mark.process
def test_a_scratch_store_stays_in_memory_and_every_other_waits_for_the_disk(tmp_path):
    # a worker's or a Ray task's scratch store is discarded once read: nothing of it is
    # written to disk; every other store is a file whose commits wait for the disk (FULL, 2)
    with Store(tmp_path / "a.sqlite") as durable, Store(tmp_path / "b.sqlite", durable=False) as s:
        assert durable._connection().execute("PRAGMA synchronous").fetchone()[0] == 2
        rid = s.create_run({"lr": 0.1}, name="a")
        s.log_metrics(rid, [(0, "val", "loss", 1.0)])
        with Store(tmp_path / "b.sqlite", durable=False) as again:  # this process: the same
            assert again.get_run(rid).status == "running"
        assert s.metrics(rid)["val/loss"].values.tolist() == [1.0]
        pid = os.fork()  # a child process (a data loader's) does not close it under the parent
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        assert s.get_run(rid).status == "running"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite"]
    with pytest.raises(ValueError, match=r"^durable must be True or False, got 'no'$"):
        Store(tmp_path / "c.sqlite", durable="no")
    assert not (tmp_path / "c.sqlite").exists()
