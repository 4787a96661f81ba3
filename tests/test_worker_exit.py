"""Worker processes end at once after their last outcome (``procpool._exit_now``) without
losing any outcome: a worker sends on its own pipe, each message whole before it goes on."""

from __future__ import annotations

import json
import multiprocessing as mp
import pickle

import pytest

from descentlab.engine import procpool
from descentlab.experiments import runner as runners
from descentlab.experiments import trial
from descentlab.store import Store

# every test here starts a process (`make check` runs the others)
pytestmark = pytest.mark.process


def _child(path: str, conn, n: int) -> None:  # type: ignore[no-untyped-def]
    store = Store(path)
    store.create_run({"a": 1}, name="x")
    for i in range(n):  # large items: more than the pipe holds, read while it sends
        conn.send_bytes(pickle.dumps((i, "x" * 10_000)))
    store.close()  # (a worker of the pool writes no store on disk: this one is a plain process)
    procpool._exit_now()
    raise AssertionError("unreachable: _exit_now returned")


def test_exit_now_delivers_every_outcome(tmp_path):
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe(duplex=True)
    path = str(tmp_path / "lab.sqlite")
    n = 200
    proc = ctx.Process(target=_child, args=(path, theirs, n))
    proc.start()
    theirs.close()
    got = []
    for _ in range(n):
        assert mine.poll(60)
        got.append(pickle.loads(mine.recv_bytes()))
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
    source = trial.DataSource("moons", {"n_samples": 100})
    runner = runners.TrialRunner(tmp_path / "lab.sqlite", source, workers=2)
    with runner:
        runner.submit(trial.Trial("tune", "sgd", cfg, "holdout"))
        out = runner.next_outcome()
        procs = list(runner._pool.procs)
    assert out.status == "completed" and not out.reused
    assert [p.exitcode for p in procs] == [0, 0]


@pytest.mark.slow  # two workers start (about 20 s on 2 cores)
def test_a_sigterm_passed_on_is_recorded_as_sigterm(tmp_path):
    # compare turns SIGTERM into an interrupt carrying its signal; the workers get the same
    # signal, so the run they stop says SIGTERM, not SIGINT
    import signal
    import time

    from descentlab.engine.config import RunConfig

    cfg = RunConfig(problem="moons", model="mlp", optimizer="sgd", hyper={"lr": 0.1},
                    batch_size=32, steps=10**6, eval_every=10, evaluate_test=False,
                    name="tune:sgd:0")  # fmt: skip
    source = trial.DataSource("moons", {"n_samples": 100})
    path = tmp_path / "lab.sqlite"
    stop = KeyboardInterrupt("SIGTERM")
    stop.signum = signal.SIGTERM  # type: ignore[attr-defined]
    kept = tmp_path / "checkpoints"  # a running trial's checkpoints and record, kept here
    with (
        pytest.raises(KeyboardInterrupt),
        runners.TrialRunner(path, source, workers=2, checkpoint_every=20) as runner,
    ):
        runner.submit(trial.Trial("tune", "sgd", cfg, "holdout"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(kept.glob("trial-*.json")):
            time.sleep(0.2)  # until the run's loop is under way
        raise stop
    (record,) = kept.glob("trial-*.json")
    run = json.loads(record.read_text())["run"]
    assert run["status"] == "interrupted" and "stopped by SIGTERM" in run["message"]
