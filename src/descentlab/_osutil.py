"""Process lifetime and file-system helpers shared by the engine, the store and the CLI.

Only the standard library is imported here, so that a spawned worker process can call
:func:`die_with_parent` before it spends seconds importing torch.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading

__all__ = [
    "FolderBusy",
    "FolderLock",
    "check_private_dir",
    "die_with_parent",
    "pid_alive",
    "private_dir",
]

_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def die_with_parent() -> None:
    """End this process (a ``multiprocessing`` child) as soon as its parent process ends.

    On Linux the kernel sends ``SIGKILL`` at the parent's death (``PR_SET_PDEATHSIG``); on
    every system a daemon thread also waits on the parent's sentinel (the pipe that
    ``multiprocessing`` keeps open to the parent: it reads end-of-file once the parent is
    gone) and exits the process. A parent that died before this call ends the process at once.
    Does nothing in a process that ``multiprocessing`` did not start.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        # no prctl: the watcher below still works
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent.pid is not None and os.getppid() != parent.pid:  # already gone
        os._exit(1)
    sentinel = parent.sentinel
    if sentinel is not None:
        threading.Thread(
            target=_exit_when_ready, args=(sentinel,), name="descentlab-parent-watch", daemon=True
        ).start()


def _exit_when_ready(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def private_dir(path: str | os.PathLike[str]) -> None:
    """Create ``path`` and its missing parents with mode ``0700`` (existing folders are left
    as they are). For folders that hold code, provenance or a user's runs."""
    missing = []
    p = os.path.abspath(os.fspath(path))
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            if not os.path.isdir(d):
                raise NotADirectoryError(f"{d} exists and is not a folder") from None


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

    def holder(self) -> str:
        """Who holds the lock, as written in the lock file."""
        try:
            with open(os.path.join(self.folder, ".lock"), encoding="utf-8") as fh:
                text = fh.read().strip()
        except OSError:
            text = ""
        return text or "another process"

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        private_dir(self.folder)
        fd = os.open(os.path.join(self.folder, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
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
            os.pwrite(fd, f"process {os.getpid()} ({' '.join(sys.argv)[:200]})\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

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
