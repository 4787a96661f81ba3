"""The processes of a ``--nproc`` run: started, watched and stopped by the launcher.

The launcher (the command's process) owns its ranks, as torchrun's agent owns its workers:
it starts them from one forkserver, passes a stop signal on once (a rank still running
:data:`STOP_SECONDS` after is killed), names a rank that hangs past ``rank_timeout`` (default
:data:`RANK_TIMEOUT`) or fails, and gives the others :data:`GRACE_SECONDS` to end; it drains
what they send meanwhile (the run's records, :mod:`descentlab.engine.launch`). What the
command does at each signal, hang and failure: docs/distributed.md ("The launcher owns its
processes")."""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import functools
import json
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from descentlab._osutil import die_with_parent, owned_tempdir
from descentlab._usercode import (
    describe,
    library_file,
    note_interrupt,
    raised_by_user,
    stop_waiting,
    user_call,
)

__all__ = [
    "GRACE_SECONDS",
    "RANK_TIMEOUT",
    "STOP_SECONDS",
    "RanksStopped",
    "ShardedRunError",
    "check_rank_timeout",
    "end_rank",
    "first_failure",
    "joined",
    "rank_started",
    "record_failure",
    "stop_asked",
    "supervise",
    "tell",
]

#: seconds a rank waits for the others at a collective or at the meeting (``--rank-timeout``)
RANK_TIMEOUT = 300.0
#: seconds the ranks have to stop at a step boundary after SIGINT or SIGTERM
STOP_SECONDS = 5.0
#: seconds the other ranks have to end by themselves after one failed
GRACE_SECONDS = 10.0

_STOPS = (signal.SIGINT, signal.SIGTERM)
_POLL = 0.1


class ShardedRunError(RuntimeError):
    """A process of a sharded run failed (the message names its rank and the cause).

    Attributes:
        cause: the launcher's own knowledge in one phrase (which rank, which signal, exit
            status or error).
        errors: what the other ranks said of it (``"rank R: Error: first line"``), the
            survivors' errors beside the cause.
    """

    def __init__(self, message: str, cause: str = "", errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.cause = cause or message
        self.errors = list(errors)


class RanksStopped(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a sharded run whose ranks did not all reach a step boundary
    in time (they were killed; the run's last checkpoint stands)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


def check_rank_timeout(value: Any = None) -> float:
    """``--rank-timeout`` checked: a number of seconds, at least 1 and at most a day; None:
    ``$DESCENTLAB_RANK_TIMEOUT``, else :data:`RANK_TIMEOUT`.

    Example:
        >>> check_rank_timeout(30)
        30.0
    """
    where = "--rank-timeout"
    if value is None:
        value = os.environ.get("DESCENTLAB_RANK_TIMEOUT") or RANK_TIMEOUT
        where = "DESCENTLAB_RANK_TIMEOUT"
        with contextlib.suppress(ValueError):
            value = float(value)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 1 <= value <= 86400:
        raise ValueError(f"{where} must be a number of seconds in [1, 86400], got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------
# in a rank

_rank: dict[str, Any] = {"asked": None, "meeting": None, "stack": None}


def _note(signum: int, frame: Any) -> None:
    _rank["asked"] = _rank["asked"] or signum
    stop_waiting(signum)


def rank_started(rank: int, stacks: str) -> None:
    """The first thing rank ``rank`` forked by :func:`supervise` does: its own session, its
    end tied to the launcher's, SIGINT and SIGTERM noted as a stop request
    (:func:`stop_asked`) and unblocked; SIGUSR1 writes where it is (its stack) into the
    launcher's folder ``stacks``, for the line that names a rank that hangs."""
    with contextlib.suppress(OSError):
        os.setsid()  # its own session: the terminal's signals are the launcher's to pass on
    die_with_parent(group=True)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        out = open(os.path.join(stacks, f"rank-{rank}.txt"), "w", encoding="utf-8")  # noqa: SIM115
        faulthandler.register(signal.SIGUSR1, file=out, all_threads=False)
        _rank["stack"] = out  # (open for the life of the rank)
    if threading.current_thread() is threading.main_thread():
        for sig in _STOPS:
            signal.signal(sig, _note)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


def joined(meeting: Any) -> None:
    """This rank meets the others at the TCPStore ``meeting`` (kept for :func:`tell`)."""
    _rank["meeting"] = meeting


def stop_asked() -> int | None:
    """The signal that asked this rank to stop (before its loop's own handler), or None."""
    return _rank["asked"]


def tell(key: str, value: str) -> None:
    """Leave ``value`` for the launcher under ``key`` in the meeting store (where there is
    one)."""
    if _rank["meeting"] is not None:
        _rank["meeting"].set(f"tell/{key}", value)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective's or the meeting's timeout (gloo, NCCL, the store)."""
    text = str(exc).lower()
    return "timed out" in text or "timeout" in type(exc).__name__.lower() or "timeout" in text


def _said(exc: BaseException) -> str:
    """``exc`` in one line: ``sys.exit`` and ``os._exit`` in words; an error that user code
    raised with where it raised it; torch's own error with where user code called it."""
    if isinstance(exc, SystemExit):
        return describe(exc)
    called = user_call(exc)
    if called is None:
        return _first_line(exc)
    if raised_by_user(exc):
        return f"{_first_line(exc)} in {called}"
    return f"{_first_line(exc)} (called from {called})"


def record_failure(store: Any, rank: int, exc: BaseException) -> None:
    """Count ``rank``'s failure ``exc`` in the meeting ``store`` (``failure/<n>``)."""
    with contextlib.suppress(Exception):
        n = store.add("failures", 1)
        entry = {"rank": rank, "error": _said(exc), "timeout": _timed_out(exc),
                 "interrupt": isinstance(exc, KeyboardInterrupt)}  # fmt: skip
        store.set(f"failure/{n}", json.dumps(entry))


def _failures(store: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with contextlib.suppress(Exception):
        for n in range(1, int(store.add("failures", 0)) + 1):
            out.append(json.loads(store.get(f"failure/{n}").decode()))
    return out


def first_failure(store: Any) -> str | None:
    """The first failure a process of the run counted in the TCPStore ``store``, as
    ``"rank R: Error: first line"``, or None."""
    found = _failures(store)
    return f"rank {found[0]['rank']}: {found[0]['error']}" if found else None


def end_rank(code: int) -> None:
    """End this rank now with ``code``, its output flushed: threads that user code left
    running do not keep it (or the launcher waiting for it) alive."""
    from descentlab._usercode import real_exit

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    real_exit(code)


# ------------------------------------------------------------------------------------------
# in the launcher


@contextlib.contextmanager
def _noted_signals(asked: list[int], starting: list[bool]) -> Iterator[None]:
    """SIGINT and SIGTERM to this process appended to ``asked`` while open, and raised
    (``KeyboardInterrupt`` carrying the signal) while ``starting[0]`` (main thread only:
    elsewhere the caller's own handling stands)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: Any) -> None:
        note_interrupt(signum)  # (the command was asked to stop: a rank's stop is no failure)
        asked.append(signum)
        if starting[0]:  # nothing has run yet: nothing to stop at a boundary
            stop = KeyboardInterrupt(_signal_name(signum))
            stop.signum = signum  # type: ignore[attr-defined]
            raise stop

    old = {sig: signal.signal(sig, note) for sig in _STOPS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


class _Ranks:
    """The ranks of one launch: their processes, the folder they write their stacks into, the
    ranks the launcher killed and where each one was then."""

    def __init__(self, target: Callable[..., Any], nproc: int, args: Sequence[Any]) -> None:
        """``nproc`` processes of ``target(rank, stacks, *args)`` forked from the forkserver.
        SIGINT and SIGTERM are blocked in this thread meanwhile: the forkserver (started here
        the first time) and the ranks inherit the mask, so the forkserver never dies of the
        terminal's signals and a rank notes a stop from its first instruction
        (:func:`rank_started` unblocks them)."""
        import torch.multiprocessing as tmp

        _end_forkserver_at_exit()
        self.stacks = owned_tempdir("ranks")
        self.procs: list[Any] = []
        self.killed: list[int] = []
        self.where: dict[int, tuple[bool, str]] = {}
        ctx = tmp.get_context("forkserver")
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            for rank in range(nproc):
                p = ctx.Process(target=target, args=(rank, self.stacks, *args),
                                name=f"rank-{rank}", daemon=False)  # fmt: skip
                p.start()
                self.procs.append(p)
        except BaseException:
            self.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def live(self) -> list[int]:
        return [r for r, p in enumerate(self.procs) if p.pid is not None and p.exitcode is None]

    def kill(self) -> None:
        """Kill every rank still running (a rank leads its own session: SIGKILL to it), having
        asked each where it is."""
        live = self.live()
        if not live:
            return
        for rank in live:
            with contextlib.suppress(OSError):
                os.kill(self.procs[rank].pid, signal.SIGUSR1)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and len(self._stacks(live)) < len(live):
            time.sleep(0.05)
        self.where.update(self._stacks(live))
        for rank in live:
            pid = self.procs[rank].pid
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:  # not yet its own session
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self.killed.append(rank)
        for p in self.procs:
            p.join(5.0)

    def _stacks(self, ranks: Sequence[int]) -> dict[int, tuple[bool, str]]:
        """``{rank: (in user code, where)}`` from the stacks the ranks wrote (most recent
        call first): the innermost frame of user code, or a collective of torch's."""
        out = {}
        for rank in ranks:
            with contextlib.suppress(OSError):
                text = Path(self.stacks, f"rank-{rank}.txt").read_text(encoding="utf-8")
                frames = re.findall(r'File "(.+)", line (\d+) in (\S+)', text)
                if frames:
                    out[rank] = _where(frames)
        return out

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.stacks, ignore_errors=True)

    def said(self, rank: int) -> str:
        """Where rank ``rank`` was when it was killed, for a message (or "")."""
        user, where = self.where.get(rank, (False, ""))
        return f" in user code at {where}" if user else (f" {where}" if where else "")


def _forkserver_pid() -> int | None:
    from multiprocessing import forkserver

    return getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)


def _forkserver_gone() -> bool:
    """Whether the forkserver has died (within a second: its pipes close before it ends)."""
    from descentlab._osutil import pid_alive

    pid = _forkserver_pid()
    deadline = time.monotonic() + 1.0
    while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid is not None and not pid_alive(pid)


@functools.cache
def _end_forkserver_at_exit() -> None:
    """At this process's exit, the ranks' forkserver (kept between launches) ends at once: it
    would otherwise take seconds to unwind the engine it imported, holding the command's
    output open meanwhile (a pipe's reader waits for it)."""

    def end() -> None:
        pid = _forkserver_pid()
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)

    atexit.register(end)


def _where(frames: list[tuple[str, str, str]]) -> tuple[bool, str]:
    """``(in user code, where)`` of a stack (innermost frame first)."""
    for filename, line, function in frames:
        if not library_file(filename):
            return True, f"{function} ({filename}:{line})"
        if f"{os.sep}torch{os.sep}distributed{os.sep}" in filename:
            return False, "waiting in a collective"
    return False, ""


def _told(meeting: Any, key: str) -> str | None:
    """What a rank told under ``key`` (:func:`tell`), or None (without waiting for it)."""
    with contextlib.suppress(Exception):
        if meeting.check([f"tell/{key}"]):
            return meeting.get(f"tell/{key}").decode()
    return None


def _signal_name(signum: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(signum).name
    return f"signal {signum}"


def _cause(ranks: _Ranks, failures: list[dict[str, Any]], timeout: float) -> str | None:
    """Why the run failed, in one phrase: a rank ended by a signal or an exit of its own
    (not by the launcher), a hung rank, else the first failure recorded."""
    failed = {f["rank"] for f in failures}
    killed = ranks.killed
    for rank, p in enumerate(ranks.procs):
        code = p.exitcode
        if rank in killed or code in (None, 0) or rank in failed:
            continue
        if code < 0:
            extra = " (kill -9, or the kernel's OOM killer)" if code == -signal.SIGKILL else ""
            return f"rank {rank} was killed by {_signal_name(-code)}{extra}"
        if code == 255 and _forkserver_gone():  # (its status went with the forkserver)
            return f"the ranks' forkserver process was killed, and rank {rank} with it"
        return f"rank {rank} exited with status {code} before the run ended"
    hung = [rank for rank in killed if rank not in failed]
    if failures and failures[0]["timeout"] and hung:
        names = ", ".join(f"{rank}{ranks.said(rank)}" for rank in hung)
        return (
            f"rank {names} hung: rank {failures[0]['rank']} waited --rank-timeout {timeout:g} s "
            "for it at a collective; killed"
        )
    if failures:
        first = failures[0]
        hint = f" (--rank-timeout {timeout:g} s)" if first["timeout"] else ""
        return f"rank {first['rank']}: {first['error']}{hint}"
    return None


def supervise(
    target: Callable[..., Any],
    nproc: int,
    args: Sequence[Any],
    meeting: Any,
    *,
    rank_timeout: float = RANK_TIMEOUT,
    drain: Callable[[], None] = lambda: None,
) -> None:
    """Run ``target(rank, stacks, *args)`` in ``nproc`` rank processes (``stacks``: the folder
    :func:`rank_started` is given) meeting at the TCPStore
    ``meeting`` (served here) until every one has ended, passing SIGINT and SIGTERM on
    (see the module notes); ``drain()`` takes in what the ranks sent, while they run (every
    :data:`_POLL` seconds) and once they have ended.

    Raises:
        ShardedRunError: a rank failed, was killed or hung (one line: the cause).
        RanksStopped: a stop whose ranks did not all end at a step boundary in time.
        KeyboardInterrupt: a second Ctrl-C (every rank killed at once).
    """
    asked: list[int] = []
    starting = [True]
    with _noted_signals(asked, starting):
        ranks = _Ranks(target, nproc, args)
        starting[0] = False
        try:
            stopping = _watch(ranks, meeting, asked, drain)
        finally:
            ranks.close()
            drain()
    failures = _failures(meeting)
    late = ranks.killed or failures
    if stopping is not None and late and all(f["interrupt"] for f in failures):
        raise RanksStopped(stopping, _late(ranks, failures, meeting, stopping))
    cause = _cause(ranks, failures, rank_timeout)
    if cause is not None:
        said = [f"rank {f['rank']}: {f['error']}" for f in failures]
        raise ShardedRunError(f"sharded run across {nproc} processes failed: {cause}", cause,
                              [e for e in said if not cause.startswith(e)])  # fmt: skip


def _late(ranks: _Ranks, failures: list[dict[str, Any]], meeting: Any, stopping: int) -> str:
    """The line of a stop whose ranks did not all reach a step boundary: killed at the
    deadline (where each was), or stopped in a wait with no boundary to come (a compile)."""
    run = _told(meeting, "run_id")
    if run is None:
        return f"stopped by {_signal_name(stopping)} while its processes started: nothing trained"
    parts = [f"rank {rank}{ranks.said(rank)}" for rank in ranks.killed]
    parts += [f"rank {f['rank']} stopped in a wait" for f in failures]
    return (
        f"run {run} stopped by {_signal_name(stopping)}: not every rank reached a step boundary "
        f"within {STOP_SECONDS:g} s ({'; '.join(parts)}); --resume continues it from its last "
        "checkpoint"
    )


def _watch(ranks: _Ranks, meeting: Any, asked: list[int], drain: Callable[[], None]) -> int | None:
    """Wait for the ranks to end (draining what they sent), passing on the stop ``asked``
    (signals noted by the launcher), killing them at the deadlines; the stop's signal."""
    procs = ranks.procs
    passed = 0
    stopping: int | None = None
    deadline: float | None = None
    while ranks.live():
        multiprocessing.connection.wait([procs[r].sentinel for r in ranks.live()], _POLL)
        drain()
        now = time.monotonic()
        if len(asked) > passed:
            if stopping is not None and signal.SIGINT in asked[passed:]:
                ranks.kill()  # a second Ctrl-C: at once
                raise KeyboardInterrupt
            if stopping is None:
                stopping = asked[0]
                for rank in ranks.live():
                    with contextlib.suppress(OSError):
                        os.kill(procs[rank].pid, stopping)
                # before the run is recorded there is nothing to keep: the ranks end now
                deadline = now + (STOP_SECONDS if _told(meeting, "run_id") else 0.0)
            passed = len(asked)
        if deadline is None:
            failures = _failures(meeting)
            if failures or any(p.exitcode not in (None, 0) for p in procs):
                # a collective's timeout: the others time out with it, or hang
                timed_out = bool(failures) and failures[0]["timeout"]
                deadline = now + (2.0 if timed_out else GRACE_SECONDS)
        if deadline is not None and now >= deadline:
            ranks.kill()
    return stopping
