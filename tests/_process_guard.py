"""The suite's two tiers: a test that starts a process is marked ``@pytest.mark.process``.

``make check`` runs the others (``-m "not process"``): the in-process tier, minutes on two
cores. So that the tier stays so, a test without the mark that starts a process (a command
through ``subprocess``, a ``multiprocessing`` process or pool, torch.distributed's ranks, a
fork, ``os.system``) fails in ``make check`` (which sets ``DESCENTLAB_PROCESS_GUARD=1``) with
one line::

    this test starts a process: mark it @pytest.mark.process

The process is not started. tests/conftest.py installs the guard and its two hooks; a pytest
run elsewhere takes it with ``-p _process_guard`` (tests/test_process_guard.py does so). A
process started outside a test (collection, pytest-xdist's workers) is not a test's.

Two kinds of start are the library's, not a test's, and pass:

- the C++ compiler building a generated kernel (``descentlab._native._compile``) into the
  machine's kernel cache (``~/.cache/descentlab/fused``): built once per machine and loaded
  from there after, so that which test builds a kernel depends on the order the tests ran in
  (a build into a cache of the test's own, ``DESCENTLAB_CACHE``, is the test's);
- the probes the library makes once per process (the git commit and the processor its runs
  record, glibc's malloc settings, which run ``git``, ``uname -p`` and ``ldconfig``) and the
  reaper of its temporary folders: asked by :func:`install` before the first test, so that
  no test starts them.
"""

from __future__ import annotations

import multiprocessing.process
import os
import platform
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

MESSAGE = "this test starts a process: mark it @pytest.mark.process"


class ProcessStarted(RuntimeError):
    """Raised where a test without the ``process`` mark starts a process."""


@dataclass(eq=False)
class _Running:
    """The test running now: whether it may start processes, and what it started unmarked."""

    nodeid: str
    allowed: bool
    started: list[str] = field(default_factory=list)


#: the tests running, innermost last (a pytester run inside a test adds its own)
_RUNNING: list[_Running] = []
_LOCK = threading.Lock()

#: the functions the guard stands in front of, as they were before it; a test of the guard
#: replaces those that start a process (:data:`STARTS`) so that an allowed start starts none
ORIGINAL: dict[str, Callable[..., Any]] = {}
STARTS = ("Popen._execute_child", "BaseProcess.start", "os.fork", "os.system", "os.posix_spawn")


#: set in a thread while the library builds a kernel (:func:`_kernel_build`)
_BUILDING = threading.local()


#: set to 1 by ``make check``: there an unmarked start is refused (``make test`` runs every test,
#: so there a missing mark costs nothing and the start goes ahead)
ENFORCED = "DESCENTLAB_PROCESS_GUARD"


def _refused(what: str) -> None:
    """Refuse ``what`` (one line) when the test running now is not marked ``process``."""
    if getattr(_BUILDING, "kernel", False):
        return
    with _LOCK:
        test = _RUNNING[-1] if _RUNNING else None
        if test is None or test.allowed:
            return
        test.started.append(what)
    raise ProcessStarted(f"{MESSAGE} (it started {what})")


def _command(args: Any) -> str:
    words = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    return " ".join(os.fsdecode(w) if not isinstance(w, str) else w for w in words[:3])[:80]


def _execute_child(self: subprocess.Popen, args: Any, *rest: Any, **kw: Any) -> Any:
    _refused(f"the command {_command(args)!r}")
    return ORIGINAL["Popen._execute_child"](self, args, *rest, **kw)


def _process_start(self: multiprocessing.process.BaseProcess) -> None:
    _refused(f"a multiprocessing process ({type(self).__name__})")
    return ORIGINAL["BaseProcess.start"](self)


def _fork() -> int:
    _refused("os.fork()")
    return ORIGINAL["os.fork"]()


def _system(command: str) -> int:
    _refused(f"os.system({command[:60]!r})")
    return ORIGINAL["os.system"](command)


def _posix_spawn(path: Any, *rest: Any, **kw: Any) -> int:
    _refused(f"os.posix_spawn({os.fsdecode(path)!r})")
    return ORIGINAL["os.posix_spawn"](path, *rest, **kw)


#: the machine's kernel cache as the suite started (a test that points the library at a cache
#: of its own, ``DESCENTLAB_CACHE``, compiles every time it runs: that start is the test's)
_SHARED_CACHE: list[Any] = []


def _kernel_build(*args: Any, **kw: Any) -> Any:
    from descentlab import _native

    _BUILDING.kernel = _native.cache_dir() in _SHARED_CACHE
    try:
        return ORIGINAL["_native._compile"](*args, **kw)
    finally:
        _BUILDING.kernel = False


def install() -> None:
    """Put the guard in front of every way this process starts another (once), after asking
    the library's once-per-process probes."""
    if ORIGINAL:
        return
    from descentlab import _native, _osutil, store
    from descentlab.engine.memory import keep_freed_memory

    store._git_revision_once()
    _osutil.reaper()  # (this process's temporary folders' reaper, started once)
    keep_freed_memory()
    platform.processor()
    _SHARED_CACHE.append(_native.cache_dir())
    targets: list[tuple[str, Any, str, Callable[..., Any]]] = [
        ("Popen._execute_child", subprocess.Popen, "_execute_child", _execute_child),
        ("BaseProcess.start", multiprocessing.process.BaseProcess, "start", _process_start),
        ("os.fork", os, "fork", _fork),
        ("os.system", os, "system", _system),
        ("os.posix_spawn", os, "posix_spawn", _posix_spawn),
        ("_native._compile", _native, "_compile", _kernel_build),
    ]
    for key, owner, name, guard in targets:
        if hasattr(owner, name):
            ORIGINAL[key] = getattr(owner, name)
            setattr(owner, name, guard)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    install()
    marked = item.get_closest_marker("process") is not None
    test = _Running(item.nodeid, marked or os.environ.get(ENFORCED) != "1")
    with _LOCK:
        _RUNNING.append(test)
    try:
        yield
    finally:
        with _LOCK:
            _RUNNING.remove(test)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A phase (setup, call, teardown) that started a process unmarked fails with the one line,
    also where the code under test caught the refusal (a start in a thread, an ``except``)."""
    outcome = yield
    test = next((t for t in reversed(_RUNNING) if t.nodeid == item.nodeid), None)
    if test is None or not test.started:
        return
    report = outcome.get_result()
    report.outcome = "failed"
    report.longrepr = f"{MESSAGE} (it started {test.started[0]})"
    test.started.clear()
