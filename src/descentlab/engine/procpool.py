"""The one pool of worker processes (:class:`WorkerPool`), on which a comparison's trials,
:func:`train_many`'s process mode (:func:`train_in_processes`) and the book's build
(:func:`map_in_processes`) queue their work (the ranks of ``--nproc`` start apart: :mod:`.ranks`).

Each worker is forked from this process (the trial runner on the CPU, warmed up) or a fresh
interpreter (``spawn``: no forked locks, threads or SQLite connections cross into it), with one
torch thread: on a CPU small models gain nothing from intra-op threads, and a run trained here
is exactly the run ``train`` would have trained (same numbers bit for bit on one thread). A
worker trains against a scratch store and sends its runs back; this process, the store's one
writer, imports them (:mod:`.scratch`), and a worker cannot open a store on disk for writing
(:func:`descentlab.store.refuse_writing`). A worker dies with its parent
(:func:`descentlab._osutil.die_with_parent`), so a ``kill -9`` of the main process leaves no
worker running queued work; it ignores SIGINT and SIGTERM (Ctrl-C reaches every process of the
terminal's group: between tasks the main process decides, during a run the engine's handler
ends it as ``interrupted``); :meth:`WorkerPool.close` passes a stop on.

.. note::
    Under ``spawn`` a worker imports the parent's ``__main__`` module. A script that calls
    :func:`~descentlab.engine.multirun.train_many` at its top level, without ``if __name__ ==
    "__main__":``, still works: its workers then start without running the script again
    (:func:`descentlab._osutil.spawning`), so they cannot use objects defined in it.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from multiprocessing import connection as mp_connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import torch

from descentlab._announce import announcement_dir, share_across, sharing
from descentlab._files import out_of_space
from descentlab._osutil import (
    die_with_parent,
    ignore_stop_signals,
    signals_blocked,
    spawn_payload,
    spawning,
    started_frozen,
)
from descentlab._usercode import (
    UserCodeFailed,
    failed_as,
    guard_signals,
    plain_warnings,
    user_call,
)
from descentlab.constraints import POSITIVE_INT, check
from descentlab.engine.config import RunConfig
from descentlab.engine.memory import keep_freed_memory
from descentlab.engine.run import RunResult, train
from descentlab.engine.scratch import import_result, in_scratch_store
from descentlab.store import Store, refuse_writing

__all__ = ["WorkerPool", "default_workers", "map_in_processes", "report", "train_in_processes"]


class WorkersDying(RuntimeError):
    """Worker processes keep dying (every task they take): the pool gives up, in one line."""


#: Workers that may die in a row (no task finishing between them) before the pool gives up.
DEATHS = 3


def _death(code: int | None) -> str:
    """How a worker process ended, in words: ``signal 9 (SIGKILL)``, ``exited 0 before
    returning``."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {-code} ({signal.Signals(-code).name})"
        return f"signal {-code}"
    return f"exited {code} before returning"


#: How long an aborted pool waits for its running tasks to stop (recorded as interrupted).
ABORT_SECONDS = 2.0


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


class WorkerPool:
    """``count`` worker processes, each with a pipe of its own that hands it one task at a time
    and carries back what it sends: the one place that starts, feeds, collects from and stops
    worker processes. Each first calls the module-level ``setup(*args)`` (None: nothing);
    ``fork``: forked from this process, else spawned, ``preload`` loaded frozen first
    (:func:`~descentlab._osutil.started_frozen`).

    A task is ``put(key, fn, *args)``: a worker calls the module-level ``fn(*args)`` and sends
    ``("done", key, value)`` or ``("error", key, exception, text, no_space, way, where)``
    (:func:`~descentlab._usercode.failure_way`, :func:`~descentlab._usercode.user_call`); inside it,
    :func:`report` sends ``("part", key, value)``. Not daemonic: a trial reads a Dataset with
    the loader worker processes it asks for."""

    def __init__(
        self,
        count: int,
        setup: Callable[..., Any] | None = None,
        args: tuple[Any, ...] = (),
        *,
        fork: bool = False,
        preload: tuple[str, ...] = (),
        threads: int = 1,
    ) -> None:
        check("workers", count, POSITIVE_INT)
        ctx = multiprocessing.get_context("fork" if fork else "spawn")
        # One pipe a worker, both ways: this process hands a task to a worker that is free and
        # reads what each sends. No lock is shared between workers, so a worker that dies --
        # killed, or user code's os._exit or a segfault, while it was sending or waiting --
        # holds nothing the others need: it ends its own task and no other.
        self._conns: list[Any] = [None] * count
        # what each worker was handed: (number, key, the task, None once it said it started)
        self._task: list[tuple[int, Any, bytes | None] | None] = [None] * count
        self._queued: collections.deque[tuple[int, Any, bytes]] = collections.deque()
        self._seq = itertools.count()
        self._deaths = 0  # workers that died in a row, no task finishing between them
        common = (torch.get_default_dtype(), threads, sharing() or announcement_dir(), setup, *args)
        self._how = (ctx, fork, preload, common)
        self.procs: list[Any] = [None] * count
        for slot in range(count):
            self._spawn(slot)

    def _spawn(self, slot: int) -> None:
        """Start the worker of ``slot`` (at the start, or in place of one that died)."""
        ctx, fork, preload, common = self._how
        mine, theirs = ctx.Pipe(duplex=True)
        # (started with SIGINT and SIGTERM blocked, kept across fork and exec: an abort while
        # a worker starts must not print a KeyboardInterrupt traceback from its bootstrap)
        with signals_blocked(), spawning():
            # (a spawned worker's payload each: a shared tensor's handle is taken once)
            payload = (theirs, *common) if fork else (
                *spawn_payload(_serve, *common, preload=preload), theirs
            )  # fmt: skip
            p = ctx.Process(target=_serve if fork else started_frozen, args=payload)
            p.start()
        theirs.close()  # (the worker's end is its own: its death is this end's end of file)
        self.procs[slot], self._conns[slot], self._task[slot] = p, mine, None
        self._hand_out()

    def put(self, key: Any, fn: Callable[..., Any], *args: Any) -> None:
        """Queue the task ``fn(*args)``, its messages marked ``key``; ``ValueError`` here if it
        cannot be sent to a worker (pickled now, where the error can be said)."""
        seq = next(self._seq)
        try:
            task = bytes(ForkingPickler.dumps((seq, key, fn, args)))
        except Exception as exc:  # lambdas, local classes, open files...
            raise ValueError(f"task {key!r} cannot be sent to a worker process: {exc}") from None
        self._queued.append((seq, key, task))
        self._hand_out()

    def _hand_out(self) -> None:
        """Give each free worker the next queued task."""
        for slot, conn in enumerate(self._conns):
            if not self._queued:
                return
            if conn is None or self._task[slot] is not None or not self.procs[slot].is_alive():
                continue
            seq, key, task = self._queued.popleft()
            try:
                conn.send_bytes(task)
            except OSError:  # (it died: buried by get, the task handed to another)
                self._queued.appendleft((seq, key, task))
                continue
            self._task[slot] = (seq, key, task)

    def get(self, wait: bool = True) -> tuple[Any, ...] | None:
        """The next message a worker sent (``wait``: until one comes; else None if none has).
        A worker that died (killed, or user code that ended its process) ends the task it was
        running -- ``("error", key, None, why, False, why, None)``: "the worker running it died:
        signal 9 (SIGKILL)" -- and another takes its place; ``WorkersDying`` (one line) once
        :data:`DEATHS` workers have died in a row with no task finishing between them."""
        while True:
            item = self._read(0.5 if wait else 0.0)
            if item is not None:
                return item
            died = self._bury()
            if died is not None:
                return died
            if not wait:
                return None

    def _read(self, timeout: float) -> tuple[Any, ...] | None:
        """One message a worker sent within ``timeout`` seconds (None: none came); a worker's
        end of file (it died) closes its pipe here, for :meth:`_bury`."""
        conns = [c for c in self._conns if c is not None]
        for conn in mp_connection.wait(conns, timeout) if conns else ():
            slot = self._conns.index(conn)
            while conn.poll(0):
                try:
                    item = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError, pickle.UnpicklingError):  # (died, maybe mid-message)
                    conn.close()
                    self._conns[slot] = None
                    break
                task = self._task[slot]
                if item == _STARTED:
                    if task is not None:
                        self._task[slot] = (*task[:2], None)
                    continue
                if item[0] in ("done", "error"):
                    self._task[slot] = None
                    self._deaths = 0
                    self._hand_out()
                return item
        return None

    def _bury(self) -> tuple[Any, ...] | None:
        """A worker that died, once all it sent is read: the error of the task it was running
        (None: it held none), and a worker started in its place."""
        for slot, p in enumerate(self.procs):
            if p is None or p.is_alive():
                continue
            conn = self._conns[slot]
            if conn is not None:
                if conn.poll(0):  # (what it sent before it died is read first)
                    continue
                conn.close()
            task, why = self._task[slot], _death(p.exitcode)
            if task is not None and task[2] is not None:  # (handed, never begun: not its death)
                self._queued.appendleft(task)  # type: ignore[arg-type]
                task = None
            self._deaths += 1
            if self._deaths >= DEATHS:
                raise WorkersDying(
                    f"{self._deaths} worker processes died in a row, the last one {why}; "
                    "rerun the same command to continue (finished trials are kept), or with "
                    "--workers 1 to see the error"
                ) from None
            self._spawn(slot)
            if task is not None:
                text = f"the worker running it died: {why}"
                return ("error", task[1], None, text, False, text, None)
        return None

    def close(
        self,
        *,
        abort: bool = False,
        running: bool = True,
        signum: int = signal.SIGINT,
        keep: Callable[[tuple[Any, ...]], None] | None = None,
    ) -> None:
        """Stop the workers: after their queued tasks, or (``abort``) at once -- queued tasks
        are dropped and ``running`` ones stopped with ``signum``; a worker that does not exit
        within :data:`ABORT_SECONDS` is killed. ``keep``: given each message read meanwhile
        (the rest are dropped)."""
        if abort:
            self._queued.clear()
        while not abort and (self._queued or any(t is not None for t in self._task)):
            item = self.get()
            if keep is not None and item is not None:
                keep(item)
        procs = [p for p in self.procs if p is not None]
        stop = bytes(ForkingPickler.dumps(None))
        for conn in [c for c in self._conns if c is not None]:
            with contextlib.suppress(OSError):
                conn.send_bytes(stop)  # (read by a free worker; a running one is signalled)
        for slot, p in enumerate(self.procs):
            if abort and p is not None and p.is_alive():  # (a pid not yet reused)
                busy = self._task[slot] is not None
                with contextlib.suppress(ProcessLookupError, TypeError):
                    if busy:
                        os.kill(p.pid, signum if running else signal.SIGKILL)
        self.procs = []
        # (a stopped task ends at its next step; one that does not within seconds -- a hung
        # loader worker under it -- is killed, and its own workers die with it)
        deadline = time.monotonic() + (ABORT_SECONDS if abort else 60.0)
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            self._drain(0.05, keep)  # (a worker exits once what it sent is read)
        killed = [p for p in procs if p.is_alive()]
        for p in killed:
            p.kill()
        for p in killed:
            p.join(1.0)
        self._drain(0.0, keep)
        for conn in [c for c in self._conns if c is not None]:
            conn.close()
        self._conns = []

    def _drain(self, timeout: float, keep: Callable[[tuple[Any, ...]], None] | None) -> None:
        while (item := self._read(timeout)) is not None:
            if keep is not None:
                keep(item)
            timeout = 0.0


#: what a worker sends as it begins a task it was handed (a task handed to a worker that died
#: before it began is handed to another, not failed)
_STARTED = ("started",)
_STARTED_BYTES = pickle.dumps(_STARTED)

#: in a worker: where :func:`report` sends, and the running task's key
_SENDING: list[Any] = [None, None]


def report(value: Any) -> None:
    """Inside a task in a worker: send ``("part", key, value)`` to the pool's process now."""
    _SENDING[0].send_bytes(_message(("part", _SENDING[1], value)))


def _message(item: tuple[Any, ...]) -> bytes:
    """``item`` pickled here, where a failure can be reported."""
    try:
        return bytes(ForkingPickler.dumps(item))
    except Exception as exc:  # (an error keeps its text)
        if item[0] != "error":
            item = ("error", item[1], None, f"what the task sent cannot be pickled: {exc}", False)
        return _message((*item[:2], RuntimeError(item[3]), *item[3:]))


def _serve(
    conn: Any,
    dtype: torch.dtype,
    threads: int,
    announced: str | None,
    setup: Callable[..., Any] | None,
    *args: Any,
) -> None:
    """A worker's life: its settings, ``setup(*args)``, then the tasks its pipe ``conn`` hands
    it until told to stop."""
    ignore_stop_signals()
    guard_signals()  # (user code's handlers cannot keep a worker from its stop)
    die_with_parent()  # a killed main process takes its workers with it, queued tasks or not
    refuse_writing()  # (this process sends its runs to the store's one writer)
    plain_warnings()  # (a worker's warnings reach the command's terminal)
    if announced is not None:  # what the main process or another worker said, not again
        share_across(announced)
    keep_freed_memory()  # a training process: reuse freed memory (engine/memory.py)
    # The parent's default dtype (e.g. float64 in tests) is not inherited by a spawned process.
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
    if setup is not None:
        setup(*args)
    parent = os.getppid()
    while True:
        try:
            if not conn.poll(1.0):
                if os.getppid() != parent:  # the main process is gone
                    _exit_now()
                continue
            item = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):  # the main process closed its end
            _exit_now()
        if item is None:
            _exit_now()
        _, key, fn, fn_args = item
        _SENDING[:] = conn, key
        conn.send_bytes(_STARTED_BYTES)
        try:
            conn.send_bytes(_message(("done", key, fn(*fn_args))))
        except BaseException as exc:  # report everything, including KeyboardInterrupt
            cause, way = failed_as(exc)
            text = f"{cause}\n{''.join(traceback.format_exception(exc))}"
            where = user_call(exc) or (way if isinstance(exc, UserCodeFailed) else None)
            with contextlib.suppress(OSError):  # (sent whole before the process ends)
                conn.send_bytes(_message(("error", key, exc, text, out_of_space(exc), way, where)))
            if not isinstance(exc, Exception):
                return


def _exit_now() -> None:
    """End this worker process at once (what it sent is in its pipe already: sent whole,
    without a feeder thread): a spawned process that returns finalizes its interpreter (more
    than a second after torch's imports, measured 1.2 s), and the main process waits for that."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


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
    """Train ``configs`` in ``workers`` processes of a :class:`WorkerPool`: their
    :class:`~descentlab.engine.run.RunResult` in submission order, or the first exception a
    run raised (the runs not yet started are dropped); ``ValueError`` if a config or the data
    cannot be pickled.

    Args:
        configs: validated run configurations.
        store: where the runs are recorded, by this process alone (each worker trains against
            a scratch store and sends its run back).
        workers: number of worker processes (>= 1).
        data: a ``Splits`` to train on instead of loading each config's problem.
        bar: an optional tqdm bar advanced by one per finished run.
    """
    check_picklable(configs, data)

    def done(_: int, fut: Future[tuple[RunResult, Any]]) -> None:
        if bar is not None:
            bar.update(1)
        result, run = fut.result()  # (the first error stops the pool)
        if run is not None:  # (recorded as it finishes, as a worker would have)
            import_result(store, result, run)

    calls = [(cfg, data, store is not None) for cfg in configs]
    futures = map_in_processes(train_recorded, calls, workers=workers, done=done)
    return [f.result()[0] for f in futures]


def map_in_processes(
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    *,
    workers: int,
    done: Callable[[int, Future[Any]], None] | None = None,
) -> list[Future[Any]]:
    """Call the module-level function ``fn(*args)`` for each ``args`` of ``calls`` in
    ``workers`` spawned processes of a :class:`WorkerPool`. A call that raises stops nothing:
    its exception stays in its future (one that ``done`` raises stops the pool and goes up).

    Returns the finished futures in the order of ``calls``; ``done(i, future)`` is called in
    this process as call ``i`` finishes (in finishing order). ``fn``: picklable (module-level).
    """
    check("workers", workers, POSITIVE_INT)
    if not calls:
        return []
    pool = WorkerPool(min(workers, len(calls)))
    futures: list[Future[Any]] = [Future() for _ in calls]
    try:
        for i, args in enumerate(calls):
            pool.put(i, fn, *args)
        for _ in calls:
            kind, i, value, *rest = pool.get()  # type: ignore[misc]
            if kind == "done":
                futures[i].set_result(value)
            else:  # (a worker that died sends no exception: its words)
                futures[i].set_exception(value if value is not None else RuntimeError(rest[0]))
            if done is not None:
                done(i, futures[i])
    except BaseException:
        pool.close(abort=True)
        raise
    pool.close()
    return futures
