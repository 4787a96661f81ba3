"""A worker of the pool that dies -- killed while it waits for a task, or while it sends -- ends
its own task and no other: no lock is shared between workers (each has a pipe of its own), so
the others go on taking tasks and sending their answers. With the shared queues of before, an
idle worker killed while it held the task queue's read lock (it waits inside ``get``) or a
worker killed while its feeder thread held the result queue's write lock left every other
worker unable to take or send: the pool hung (1 of 6 runs of a trial that segfaults, at
--workers 2 under load)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from descentlab.engine.procpool import WorkerPool

pytestmark = pytest.mark.process


def _square(x: int) -> int:
    return x * x


def _chatty(x: int) -> int:
    from descentlab.engine.procpool import report

    for i in range(200):
        report((x, i, "x" * 4000))
    return x


def _answers(pool: WorkerPool, n: int, seconds: float = 60.0) -> dict:
    got, deadline = {}, time.monotonic() + seconds
    while len(got) < n:
        assert time.monotonic() < deadline, f"the pool hung: {len(got)} of {n} answers"
        item = pool.get(wait=False)
        if item is None:
            time.sleep(0.02)
        elif item[0] in ("done", "error"):
            got[item[1]] = item
    return got


def test_an_idle_worker_killed_while_it_waits_leaves_the_others_taking_tasks():
    pool = WorkerPool(2)
    try:
        time.sleep(1.5)  # (both wait for a task now)
        os.kill(pool.procs[0].pid, signal.SIGKILL)
        for i in range(6):
            pool.put(i, _square, i)
        got = _answers(pool, 6)
        assert {k: v[2] for k, v in got.items() if v[0] == "done"} == {i: i * i for i in range(6)}
    finally:
        pool.close(abort=True)


def test_a_worker_killed_while_it_sends_ends_its_own_task_only():
    pool = WorkerPool(2)
    try:
        for i in range(4):
            pool.put(i, _chatty, i)
        time.sleep(2.0)  # (both are sending parts now)
        os.kill(pool.procs[0].pid, signal.SIGKILL)
        got = _answers(pool, 4)
        failed = [k for k, v in got.items() if v[0] == "error"]
        assert len(failed) <= 1 and all("died" in got[k][3] for k in failed), got
        assert sum(v[0] == "done" for v in got.values()) >= 3
    finally:
        pool.close(abort=True)
