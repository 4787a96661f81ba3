"""Process lifetime and file-system helpers shared by the engine, the store and the CLI.

Only the standard library is imported here, so that a spawned worker process can call
:func:`die_with_parent` before it spends seconds importing torch.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import functools
import gc
import importlib
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "FolderBusy",
    "FolderLock",
    "check_private_dir",
    "die_with_parent",
    "gc_paused",
    "killed_with_parent",
    "loading_frozen",
    "owned_tempdir",
    "pid_alive",
    "private_dir",
    "process_start",
    "reaper",
    "recorded_alive",
    "spawn_payload",
    "spawning",
    "started_frozen",
    "temporary_folder",
    "unguarded_main",
    "with_start",
]

_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def die_with_parent(*, group: bool = False) -> None:
    """End this process (a ``multiprocessing`` child) as soon as its parent process ends.

    On Linux the kernel sends ``SIGKILL`` at the parent's death (``PR_SET_PDEATHSIG``); on
    every system a daemon thread also waits on the parent's sentinel (the pipe that
    ``multiprocessing`` keeps open to the parent: it reads end-of-file once the parent is
    gone) and exits the process. A parent that died before this call ends the process at once.
    ``group``: this process leads its own session or process group (a forkserver's child,
    whose parent is the process that asked for it, not the forkserver): its whole group ends
    with it. Does nothing in a process that ``multiprocessing`` did not start.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    killed_with_parent()  # (no prctl: the watcher below still works)
    if not group and parent.pid is not None and os.getppid() != parent.pid:  # already gone
        os._exit(1)
    sentinel = parent.sentinel
    if sentinel is not None:
        threading.Thread(
            target=_exit_when_ready,
            args=(sentinel, group),
            name="descentlab-parent-watch",
            daemon=True,
        ).start()


def killed_with_parent() -> None:
    """Linux: the kernel sends this process ``SIGKILL`` when its parent ends
    (``PR_SET_PDEATHSIG``; not if it has ended already). Elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _exit_when_ready(sentinel: int, group: bool = False) -> None:
    multiprocessing.connection.wait([sentinel])
    if group and os.getpgrp() == os.getpid():  # (only a group this process leads)
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def private_dir(path: str | os.PathLike[str]) -> None:
    """Create ``path`` and its missing parents with mode ``0700`` (existing folders are left
    as they are). For folders that hold code, provenance or a user's runs."""
    from descentlab._files import make_dirs

    make_dirs(path, 0o700)


def check_private_dir(path: str | os.PathLike[str]) -> None:
    """Raise ``PermissionError`` naming ``path`` if it is owned by another user or writable
    by group or others (someone else could then put files in it)."""
    st = os.stat(path)
    uid = os.geteuid() if hasattr(os, "geteuid") else st.st_uid
    if st.st_uid != uid:
        raise PermissionError(
            f"folder {os.fspath(path)} is owned by user {st.st_uid}, not by this user ({uid}); "
            "refusing to load code from it"
        )
    if st.st_mode & 0o022:
        raise PermissionError(
            f"folder {os.fspath(path)} is writable by group or others (mode "
            f"{st.st_mode & 0o777:o}); refusing to load code from it -- chmod 700 it"
        )


class FolderLock:
    """One process at a time in a folder: an exclusive ``flock`` on ``<folder>/.lock``.

    The holder writes its process id and command line into the lock file, so a second process
    can say who holds it. The lock goes with the process (the kernel releases it when the
    process ends, even after ``kill -9``), so a stale lock file never blocks anything.

    Args:
        folder: the folder (created ``0700`` if missing).
        wait: wait for the holder to finish (printing one message to stderr); False raises
            :class:`FolderBusy` at once.
        what: how the message names the folder.

    Example:
        >>> import tempfile
        >>> with FolderLock(tempfile.mkdtemp()) as lock:
        ...     lock.held
        True
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, wait: bool = True, what: str = "folder"
    ) -> None:
        self.folder = os.fspath(folder)
        self.wait = wait
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self, patience: float = 0.5) -> str:
        """Who holds the lock, as written in the lock file. The holder writes it just after
        taking the lock, so an empty file is read again for up to ``patience`` seconds."""
        deadline = time.monotonic() + patience
        while True:
            try:
                with open(os.path.join(self.folder, ".lock"), encoding="utf-8") as fh:
                    text = fh.read().strip()
            except OSError:
                text = ""
            if text or time.monotonic() >= deadline:
                return text or "another process"
            time.sleep(0.02)

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        from descentlab._files import check_target, make_dirs, note_created

        make_dirs(self.folder, 0o700)
        path = os.path.join(self.folder, ".lock")
        # (written: a link planted there, to a file of the user's, is refused, not followed)
        check_target(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            note_created(path)  # taken back if the command runs out of space
        except FileExistsError:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy = f"{self.what} {self.folder} is in use by {self.holder()}"
                if not self.wait:
                    raise FolderBusy(busy) from None
                print(f"descentlab: {busy}; waiting for it to finish", file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C and SIGTERM still interrupt this
            os.ftruncate(fd, 0)
            # who holds it, for the message of a second process; the lock itself is the flock,
            # held even where a full disk refuses these bytes
            with contextlib.suppress(OSError):
                os.pwrite(fd, f"process {os.getpid()} ({' '.join(sys.argv)[:200]})\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _HELD.add(self)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


#: The locks this process holds: a forked child closes its copies of their descriptors (the
#: lock stays this process's, and goes when it ends, not when its children do).
_HELD: weakref.WeakSet[FolderLock] = weakref.WeakSet()


def _forget_held_locks() -> None:
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # (a copy: the parent's descriptor keeps the lock)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_held_locks)


class FolderBusy(RuntimeError):
    """Another process holds a :class:`FolderLock`."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is alive: it exists (one that is not ours to
    signal counts), and it is not a zombie -- a killed process whose parent died too stays
    one until init reaps it, and is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def process_start(pid: int) -> int | None:
    """When process ``pid`` of this machine started, in clock ticks since boot (field 22 of
    ``/proc/<pid>/stat``), or None where that cannot be read (not Linux, no such process): with
    the pid, what tells a process from a later one given the same number."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def with_start(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` (a run's provenance, or what is merged into it) with the start time of the
    process its ``pid`` names (``pid_started``, :func:`process_start`), where it names one."""
    out = dict(record)
    pid = out.get("pid")
    if isinstance(pid, int) and "pid_started" not in out:
        out["pid_started"] = process_start(pid)
    return out


def recorded_alive(record: Mapping[str, Any]) -> bool:
    """Whether the process a run's provenance names is alive: its ``pid`` (:func:`pid_alive`),
    and, where its start time was recorded, the process of that number now is the one that
    started then -- a pid the system gave to another process since is not the run's."""
    pid, started = record.get("pid"), record.get("pid_started")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    return not isinstance(started, int) or process_start(pid) in (started, None)


def owned_tempdir(kind: str) -> str:
    """A new private temporary folder of this process, ``descentlab-<kind>-<pid>-...``, which
    the caller removes -- or, when this process dies first (``kill -9``, a crash), its
    reaper at once (:func:`reaper`). Before the first of a kind in a process, the folders of
    that kind whose process is gone are removed (where no reaper could: only this user's,
    and only where no process of that number is alive)."""
    _remove_orphans(kind)
    path = tempfile.mkdtemp(prefix=f"descentlab-{kind}-{os.getpid()}-")
    with contextlib.suppress(OSError):  # (no reaper: the next process's sweep above)
        os.write(reaper(), os.fsencode(os.path.abspath(path)) + b"\0")
    return path


@contextlib.contextmanager
def temporary_folder(kind: str) -> Iterator[str]:
    """:func:`owned_tempdir`, removed when the block ends (or this process does)."""
    path = owned_tempdir(kind)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


#: the reaper's program: it reads the folders this process made until the pipe closes (the
#: process ended, however it ended), then removes those still there -- retried for a second,
#: while the process's own children, dying with it, may still write into them
_REAPER = """
import os, shutil, time
got = b""
while chunk := os.read(0, 65536):
    got += chunk
folders = [os.fsdecode(p) for p in got.split(b"\\0") if p]
for _ in range(20):
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    folders = [f for f in folders if os.path.lexists(f)]
    if not folders:
        break
    time.sleep(0.05)
"""

#: this process's reaper: (pid of the process it serves, the pipe's end it writes, its pid)
_REAPING: list[Any] = []


def reaper() -> int:
    """The pipe to this process's reaper, started on the first call: a small process (in a
    session of its own: a Ctrl-C at the terminal is not for it) that removes the folders
    written to it when this process ends, even by ``SIGKILL`` -- the kernel closes the pipe
    then, as torchrun's agent outlives its workers to clean up after them. A forked child
    starts its own (the copy of its parent's pipe is closed in it)."""
    if _REAPING and _REAPING[0] == os.getpid():
        return int(_REAPING[1])
    read, write = os.pipe()
    quiet = os.open(os.devnull, os.O_WRONLY)
    try:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", _REAPER],
                             os.environ, setsid=True, file_actions=[
                                 (os.POSIX_SPAWN_DUP2, read, 0), (os.POSIX_SPAWN_DUP2, quiet, 1),
                                 (os.POSIX_SPAWN_DUP2, quiet, 2)])  # fmt: skip
    except BaseException:
        os.close(write)
        raise
    finally:
        os.close(read)
        os.close(quiet)
    _REAPING[:] = [os.getpid(), write, pid]
    return write


def _forget_reaper() -> None:  # (in a forked child: its parent's pipe is not its own)
    if _REAPING:
        with contextlib.suppress(OSError):
            os.close(_REAPING[1])
        _REAPING.clear()


os.register_at_fork(after_in_child=_forget_reaper)


@functools.cache
def _remove_orphans(kind: str) -> None:
    named = re.compile(rf"descentlab-{re.escape(kind)}-(\d+)-")
    with contextlib.suppress(OSError), os.scandir(tempfile.gettempdir()) as entries:
        for entry in entries:
            m = named.match(entry.name)
            with contextlib.suppress(OSError):  # (one gone meanwhile: the others still looked at)
                if (m and entry.is_dir(follow_symlinks=False)
                        and entry.stat(follow_symlinks=False).st_uid == os.getuid()
                        and not pid_alive(int(m.group(1)))):  # fmt: skip
                    shutil.rmtree(entry.path, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# spawned processes and a script without ``if __name__ == "__main__":``


def _is_main_test(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def unguarded_main() -> bool:
    """Whether this call comes from a script's top-level code outside ``if __name__ ==
    "__main__":``.

    A process started with ``spawn`` runs the parent's main script again (as ``__mp_main__``)
    before it does its work; a script that calls descentlab at its top level without the
    guard would then call it again in every worker, which ``multiprocessing`` refuses. Only a
    script run by path counts (not ``python -c``, an interactive session or ``python -m``).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not isinstance(path, str) or getattr(main, "__spec__", None) is not None:
        return False
    frame = sys._getframe(1)
    while frame is not None and not (
        frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"
    ):
        frame = frame.f_back
    if frame is None:
        return False
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return False
    return not any(
        isinstance(node, ast.If)
        and _is_main_test(node.test)
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(tree)
    )


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Start ``spawn`` processes inside this block: if the main script calls descentlab outside
    ``if __name__ == "__main__":`` (:func:`unguarded_main`), they start without running that
    script again -- its top-level code would start the same work in every worker. (Objects
    defined in such a script cannot be sent to the workers then; they need the guard.)"""
    main = sys.modules.get("__main__")
    if main is None or not unguarded_main():
        yield
        return
    path = main.__file__
    del main.__file__  # multiprocessing.spawn reads it to run the script in the child
    try:
        yield
    finally:
        main.__file__ = path


#: What a worker process starts with blocked (:func:`signals_blocked`), and ignores once it
#: unblocks them (:func:`ignore_stop_signals`): the main process decides, and stops it.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """:data:`STOP_SIGNALS` blocked in this thread while open (they wait, and arrive after):
    a process forked or spawned inside starts with them blocked, and nothing reaches it
    before it sets its own handling (:func:`ignore_stop_signals`)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_stop_signals() -> None:
    """:data:`STOP_SIGNALS` ignored, then unblocked (one that came meanwhile is dropped)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside (and back on after, if it was on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def loading_frozen() -> Iterator[None]:
    """Load a program's modules with the garbage collector paused, then freeze what they made:
    no collection walks torch's million objects (0.8 s of the 2.4 s of CPU a command took to
    start). For a program's own start only: frozen objects are never collected."""
    with gc_paused():
        try:
            yield
        finally:
            gc.freeze()


def started_frozen(
    module: str, name: str, preload: tuple[str, ...], payload: bytes, *passed: Any
) -> Any:
    """The target of a spawned process (or its pool's initializer): ``module.name(*passed,
    *args)``, ``args`` pickled into ``payload`` (:func:`spawn_payload`), the function's module
    and the modules of ``preload`` loaded under :func:`loading_frozen`. A spawned process
    unpickles its target before it runs anything: this one, named by text, imports only this
    module, so torch and the engine load frozen (unpickling the engine's own function imported
    them with the collector walking every object, about 0.8 s of the process's start);
    ``args`` are unpickled after, with the collector running (they may run user code: a
    problem, a model). ``passed``: what only the spawn itself may carry (a queue)."""
    import pickle

    with loading_frozen():
        for name_ in preload:
            importlib.import_module(name_)
        fn = getattr(importlib.import_module(module), name)
    return fn(*passed, *pickle.loads(payload))


def spawn_payload(fn: Any, *args: Any, preload: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """:func:`started_frozen`'s first arguments for ``fn(*args)``: ``args`` pickled as
    ``multiprocessing`` pickles a spawned process's arguments (a tensor's storage is shared,
    not copied); ``preload``: modules ``fn`` will import, loaded frozen first."""
    from multiprocessing.reduction import ForkingPickler

    return fn.__module__, fn.__qualname__, preload, bytes(ForkingPickler.dumps(args))
