"""Each test's CPU time, for finding the suite's costly tests on a shared machine.

``pytest -p _cpu_time --cpu-time-file=FILE`` (``PYTHONPATH`` holding ``tests/``) writes one
line per test: its CPU seconds (setup, call and teardown summed), the part of it spent in the
processes it started, and its id, most costly first. A test's CPU time is the test process's
own (``time.process_time()``: user + system, every thread) plus that of the child processes
it started and waited for (``resource.getrusage(RUSAGE_CHILDREN)``, user + system): unlike the
wall time that ``--durations`` reports, it hardly changes with the machine's load. Not
counted: processes that are not the test's waited children (Ray's workers, a server left
running). Under pytest-xdist each worker writes ``FILE.<worker>``.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_SPENT: dict[str, list[float]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-time-file", default=None, help="write each test's CPU time here")


def _children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _measured(item: pytest.Item) -> Iterator[None]:
    own, kids = time.process_time(), _children()
    yield
    kids = _children() - kids
    spent = _SPENT.setdefault(item.nodeid, [0.0, 0.0])
    spent[0] += time.process_time() - own + kids
    spent[1] += kids


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _measured(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _measured(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _measured(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    name = session.config.getoption("--cpu-time-file")
    if not name or not _SPENT:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    path = Path(f"{name}.{worker}" if worker else name)
    rows = sorted(_SPENT.items(), key=lambda kv: -kv[1][0])
    path.write_text("".join(f"{cpu:.2f}\t{kids:.2f}\t{nodeid}\n" for nodeid, (cpu, kids) in rows))
