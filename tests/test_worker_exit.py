"""Worker processes end at once after their last outcome (``trials._exit_now``) without
losing any outcome still in the queue's buffer or leaving the store open."""

from __future__ import annotations

import multiprocessing as mp

from descentlab.experiments import trials
from descentlab.store import Store


def _child(path: str, results, n: int) -> None:  # type: ignore[no-untyped-def]
    store = Store(path)
    store.create_run({"a": 1}, name="x")
    for i in range(n):  # large items: the feeder thread is still writing when exit comes
        results.put((i, "x" * 10_000))
    trials._exit_now(store, results)
    raise AssertionError("unreachable: _exit_now returned")


def test_exit_now_delivers_every_outcome_and_closes_the_store(tmp_path):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    path = str(tmp_path / "lab.sqlite")
    n = 200
    proc = ctx.Process(target=_child, args=(path, results, n))
    proc.start()
    got = [results.get(timeout=60) for _ in range(n)]
    proc.join(60)
    assert proc.exitcode == 0
    assert [i for i, _ in got] == list(range(n))
    with Store(path) as store:  # written and closed cleanly: readable, one run
        assert [r.name for r in store.list_runs()] == ["x"]
        assert store.integrity_check() == "ok"


def test_workers_exit_cleanly_after_their_trials(tmp_path):
    from descentlab.engine.config import RunConfig

    cfg = RunConfig(problem="moons", model="mlp", optimizer="sgd", hyper={"lr": 0.1},
                    batch_size=32, steps=3, evaluate_test=False, name="tune:sgd:0")  # fmt: skip
    source = trials.DataSource("moons", {"n_samples": 100})
    runner = trials.TrialRunner(tmp_path / "lab.sqlite", source, workers=2)
    with runner:
        runner.submit(trials.Trial("tune", "sgd", cfg, "holdout"))
        out = runner.next_outcome()
        procs = list(runner._procs)
    assert out.status == "completed" and not out.reused
    assert [p.exitcode for p in procs] == [0, 0]
