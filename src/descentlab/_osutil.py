"""Process lifetime and file-system helpers shared by the engine, the store and the CLI.

Only the standard library is imported here, so that a spawned worker process can call
:func:`die_with_parent` before it spends seconds importing torch.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading

__all__ = ["die_with_parent"]

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
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watcher below still works
            pass
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
