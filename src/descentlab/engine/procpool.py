"""Worker processes, started here alone: the process mode of :func:`train_many`, the book's
build (:func:`map_in_processes`) and a comparison's trial workers (:func:`start_workers`).

Each worker is a fresh interpreter (``spawn``: no forked locks, threads or SQLite connections
cross into it) running ``torch.set_num_threads(1)`` -- on a CPU, small models gain nothing from
intra-op threads, and one thread per process keeps the workers from competing for cores. A
worker calls :func:`descentlab.engine.run.train` for each config it is given, so a run trained
here is exactly the run ``train`` would have trained (same seeds, same numbers bit for bit on
one thread). With a store, a worker trains against a scratch store and sends the run back;
this process, the store's one writer, imports each as it finishes (:mod:`.scratch`).

A worker dies with its parent (:func:`descentlab._osutil.die_with_parent`: a parent-death
signal on Linux and a watched pipe everywhere), so a ``kill -9`` of the main process leaves no
worker running queued work.

Results come back in submission order. The first run that raises cancels the runs that have not
started and its exception is re-raised in the parent.

.. note::
    Under ``spawn`` a worker imports the parent's ``__main__`` module. A script that calls
    :func:`~descentlab.engine.multirun.train_many` at its top level, without ``if __name__ ==
    "__main__":``, still works: its workers then start without running the script again
    (:func:`descentlab._osutil.spawning`), so they cannot use objects defined in it.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, as_completed, wait
from typing import Any

import torch

from descentlab._announce import announcement_dir, share_across
from descentlab._osutil import (
    die_with_parent,
    signals_blocked,
    spawn_payload,
    spawning,
    started_frozen,
)
from descentlab._usercode import plain_warnings
from descentlab.constraints import POSITIVE_INT, check
from descentlab.engine.config import RunConfig
from descentlab.engine.memory import keep_freed_memory
from descentlab.engine.run import RunResult, train
from descentlab.engine.scratch import import_result, in_scratch_store
from descentlab.store import Store

__all__ = ["default_workers", "map_in_processes", "start_workers", "train_in_processes"]


def default_workers(n_runs: int) -> int:
    """Worker processes for ``n_runs`` runs: one per CPU core the process may use, at most
    one per run.

    Example:
        >>> default_workers(1)
        1
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(int(n_runs), cores))


def _init_worker(dtype: torch.dtype, threads: int, announced: str | None = None) -> None:
    die_with_parent()
    plain_warnings()  # (a worker's warnings reach the command's terminal)
    if announced is not None:
        share_across(announced)
    keep_freed_memory()  # a training process: reuse freed memory (engine/memory.py)
    # The parent's default dtype (e.g. float64 in tests) is not inherited by a spawned process.
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes, one torch thread each, dying with their parent."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=started_frozen,  # (each worker loads torch and the engine frozen)
        initargs=spawn_payload(_init_worker, torch.get_default_dtype(), 1, announcement_dir()),
    )


def train_recorded(config: RunConfig, data: Any, recorded: bool) -> tuple[RunResult, Any]:
    """``train(config)`` where a worker runs it: ``recorded``, against a scratch store, the
    run exported for the process that writes the store (:func:`~descentlab.engine.scratch.
    import_result`); else not recorded (None)."""
    if not recorded:
        return train(config, data=data, progress=False), None
    result, (run,) = in_scratch_store(lambda store: train(config, store, data=data, progress=False))
    return result, run


def check_picklable(configs: Sequence[RunConfig], data: Any) -> None:
    """Raise ``ValueError`` naming the first config (or the data) a worker cannot receive."""
    for i, cfg in enumerate(configs):
        try:
            pickle.dumps(cfg)
        except Exception as exc:  # lambdas, local classes, open files...
            raise ValueError(
                f"configs[{i}] cannot be sent to a worker process (it holds an object that "
                f"cannot be pickled: {exc}); use module-level functions or names, or "
                "mode='sequential'"
            ) from None
    if data is not None:
        try:
            pickle.dumps(data)
        except Exception as exc:
            raise ValueError(f"data cannot be sent to a worker process: {exc}") from None


def train_in_processes(
    configs: Sequence[RunConfig],
    store: Store | None = None,
    *,
    workers: int,
    data: Any = None,
    bar: Any = None,
) -> list[RunResult]:
    """Train ``configs`` in ``workers`` spawned processes (one thread each).

    Args:
        configs: validated run configurations.
        store: where the runs are recorded, by this process alone (each worker trains against
            a scratch store and sends its run back).
        workers: number of worker processes (>= 1).
        data: a ``Splits`` to train on instead of loading each config's problem.
        bar: an optional tqdm bar advanced by one per finished run.

    Returns:
        The :class:`~descentlab.engine.run.RunResult` of each config, in submission order.

    Raises:
        ValueError: a config or the data cannot be pickled.
        Exception: the first exception a run raised (the runs not yet started are cancelled).
    """
    check("workers", workers, POSITIVE_INT)
    check_picklable(configs, data)
    if not configs:
        return []
    pool = _spawn_pool(min(workers, len(configs)))
    try:
        with spawning():  # the processes start at the first submit
            futures: list[Future[tuple[RunResult, Any]]] = [
                pool.submit(train_recorded, cfg, data, store is not None) for cfg in configs
            ]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            if bar is not None:
                bar.update(len(done))
            for fut in done:
                if fut.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise fut.exception()  # type: ignore[misc]
                result, run = fut.result()
                if run is not None:  # (recorded as it finishes, as a worker would have)
                    import_result(store, result, run)
        return [f.result()[0] for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def map_in_processes(
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    *,
    workers: int,
    done: Callable[[int, Future[Any]], None] | None = None,
) -> list[Future[Any]]:
    """Call the module-level function ``fn(*args)`` for each ``args`` of ``calls`` in
    ``workers`` spawned processes (one torch thread each, as :func:`train_in_processes`).

    Unlike :func:`train_in_processes` a call that raises stops nothing: its exception stays in
    its future for the caller to handle.

    Args:
        fn: a picklable (module-level) function.
        calls: the arguments of each call.
        workers: worker processes (>= 1).
        done: ``done(i, future)`` in the parent as call ``i`` finishes (in finishing order).

    Returns:
        the finished futures, in the order of ``calls``.
    """
    check("workers", workers, POSITIVE_INT)
    if not calls:
        return []
    with _spawn_pool(min(workers, len(calls))) as pool:
        with spawning():  # the processes start at the first submit
            futures = [pool.submit(fn, *args) for args in calls]
        index = {fut: i for i, fut in enumerate(futures)}
        for fut in as_completed(futures):
            if done is not None:
                done(index[fut], fut)
    return futures


def start_workers(
    target: Callable[..., Any],
    count: int,
    args: tuple[Any, ...],
    *,
    fork: bool,
    preload: tuple[str, ...] = (),
) -> tuple[list[Any], Any, Any]:
    """``count`` worker processes running ``target(tasks, results, *args)``, and the two queues
    they share with this process: forked from this one (warmed up first by the caller), else
    spawned, loading ``preload`` frozen before ``args``
    (:func:`~descentlab._osutil.started_frozen`). What a comparison's trial runner starts.

    A worker starts with SIGINT and SIGTERM blocked (kept across fork and exec), then ignores
    them: an abort while it is still starting must not print a KeyboardInterrupt traceback
    from its bootstrap; the caller ends it. Not daemonic: a trial reads a Dataset with the
    loader worker processes it asks for, seeded from the run, not without them; the worker
    still ends with this process (:func:`~descentlab._osutil.die_with_parent`)."""
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    queues = (ctx.Queue(), ctx.Queue())
    procs = []
    with signals_blocked(), spawning():
        for _ in range(count):
            # (a spawned worker's payload each: a shared tensor's handle is taken once)
            payload = (*queues, *args) if fork else (
                *spawn_payload(target, *args, preload=preload), *queues
            )  # fmt: skip
            p = ctx.Process(target=target if fork else started_frozen, args=payload, daemon=False)
            p.start()
            procs.append(p)
    return procs, *queues
