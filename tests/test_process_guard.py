"""The ``process`` mark is enforced: a test that starts a process unmarked fails with one line,
a marked one starts it, a test that starts none runs as before (tests/_process_guard.py).

The tests below run a small suite through pytester in this process. The functions that really
start a process are replaced (``_process_guard.ORIGINAL``) by ones that only say they were
reached, so that nothing here starts one and this test belongs to ``make check``'s tier.
"""

from __future__ import annotations

import _process_guard
import pytest

# (test name, how it starts a process): each is run once unmarked (refused) and once marked
# (let through to the start, which the replaced function reports as reached)
WAYS = {
    "subprocess_run": "subprocess.run(['true'])",
    "popen": "subprocess.Popen(['true'])",
    "check_output_shell": "subprocess.check_output('echo x', shell=True)",
    "os_system": "os.system('true')",
    "os_fork": "os.fork()",
    "multiprocessing_process": "multiprocessing.Process(target=print).start()",
    "spawn_context": "multiprocessing.get_context('spawn').Process(target=print).start()",
    "process_pool": (
        "concurrent.futures.ProcessPoolExecutor(1, mp_context="
        "multiprocessing.get_context('spawn'))._adjust_process_count()"
    ),
}

# what the refusal still catches where the code under test hides it
HIDDEN = {
    "caught_by_the_code": (
        "try:\n        subprocess.run(['true'])\n    except Exception:\n        pass"
    ),
    "in_a_thread": (
        "t = threading.Thread(target=subprocess.run, args=(['true'],))\n    t.start()\n    t.join()"
    ),
    "in_a_fixture": "pass",
    "kernel_build_into_its_own_cache": (
        "from descentlab import _native\n"
        "    os.environ['DESCENTLAB_CACHE'] = os.getcwd()\n"
        "    try:\n"
        "        _native._compile(['true'], 'a kernel')\n"
        "    finally:\n"
        "        del os.environ['DESCENTLAB_CACHE']"
    ),
}

# the library's kernel build into the machine's kernel cache (once per machine): passes
# unmarked, reaching the start (into a cache of the test's own it is the test's: refused)
LIBRARY = {
    "kernel_build": (
        "import _process_guard\n"
        "    from descentlab import _native\n"
        "    # (pytester moves $HOME: the machine's cache named as the suite found it)\n"
        "    os.environ['DESCENTLAB_CACHE'] = str(_process_guard._SHARED_CACHE[0].parent)\n"
        "    try:\n"
        "        with pytest.raises(OSError, match='reached'):\n"
        "            _native._compile(['true'], 'a kernel')\n"
        "    finally:\n"
        "        del os.environ['DESCENTLAB_CACHE']"
    ),
}

# tests that start no process: let through, marked or not
IN_PROCESS = {
    "arithmetic": "assert sum([1, 2]) == 3",
    "a_thread": "t = threading.Thread(target=print)\n    t.start()\n    t.join()",
    "torch": "import torch\n    assert torch.ones(3).sum().item() == 3.0",
}

HEADER = """
import concurrent.futures, multiprocessing, os, subprocess, threading
import pytest

@pytest.fixture
def starts_a_command():
    subprocess.run(["true"])
    yield
"""


def _suite() -> str:
    parts = [HEADER]
    for name, code in WAYS.items():
        parts.append(f"def test_unmarked_{name}():\n    {code}\n")
        parts.append(
            f"@pytest.mark.process\ndef test_marked_{name}():\n"
            f"    with pytest.raises(OSError, match='reached'):\n        {code}\n"
        )
    for name, code in HIDDEN.items():
        fixture = "starts_a_command" if name == "in_a_fixture" else ""
        parts.append(f"def test_hidden_{name}({fixture}):\n    {code}\n")
    for name, code in LIBRARY.items():
        parts.append(f"def test_library_{name}():\n    {code}\n")
    for name, code in IN_PROCESS.items():
        parts.append(f"def test_in_process_{name}():\n    {code}\n")
        parts.append(f"@pytest.mark.process\ndef test_marked_in_process_{name}():\n    {code}\n")
    return "\n".join(parts)


def _reached(*args, **kwargs):
    raise OSError("reached: a process would start here")


@pytest.fixture
def starts_nothing(monkeypatch):
    """The guard's originals replaced by :func:`_reached`: nothing this test runs starts."""
    _process_guard.install()
    for key in _process_guard.STARTS:
        monkeypatch.setitem(_process_guard.ORIGINAL, key, _reached)


@pytest.fixture
def outcomes(pytester, starts_nothing, monkeypatch):
    """Each test of the small suite: its outcome and the text of its failure (the guard
    enforced, as ``make check`` runs it)."""
    monkeypatch.setenv(_process_guard.ENFORCED, "1")
    pytester.makeini("[pytest]\nmarkers =\n    process: starts a process\n")
    pytester.makepyfile(test_small=_suite())
    run = pytester.inline_run("-p", "_process_guard", "-p", "no:cacheprovider")
    seen = {}
    for report in run.getreports("pytest_runtest_logreport"):
        name = report.nodeid.split("::")[-1]
        if report.failed or name not in seen:
            seen[name] = (report.outcome, str(report.longrepr or ""))
    return seen


def _expected() -> dict[str, str]:
    """Each test of the small suite and what it must end in: "passed", or "refused" (failed
    with the guard's one line)."""
    table = {}
    for name in WAYS:
        table[f"test_unmarked_{name}"] = "refused"
        table[f"test_marked_{name}"] = "passed"  # the start was reached
    for name in HIDDEN:
        table[f"test_hidden_{name}"] = "refused"
    for name in LIBRARY:
        table[f"test_library_{name}"] = "passed"
    for name in IN_PROCESS:
        table[f"test_in_process_{name}"] = "passed"
        table[f"test_marked_in_process_{name}"] = "passed"
    return table


def _ended(outcome: str, text: str) -> str:
    one_line = text.strip()
    if outcome == "failed" and one_line.startswith(_process_guard.MESSAGE):
        return "refused" if "\n" not in one_line else f"refused in more than one line: {text}"
    return outcome if outcome == "passed" else f"{outcome}: {text[-300:]}"


def test_an_unmarked_test_that_starts_a_process_fails_with_one_line(outcomes):
    """The refused (every way a process starts, also hidden by the code) and the table of the
    right let through (marked starts, tests that start none, marked or not)."""
    ended = {name: _ended(*outcome) for name, outcome in outcomes.items()}
    assert ended == _expected()


def test_the_one_line_names_what_was_started(outcomes):
    _, text = outcomes["test_unmarked_subprocess_run"]
    assert text == f"{_process_guard.MESSAGE} (it started the command 'true')"


def test_the_guard_stands_in_front_of_every_start():
    """The functions the suite's processes start through are the guard's in this run."""
    import multiprocessing.process
    import os
    import subprocess

    _process_guard.install()
    assert subprocess.Popen._execute_child is _process_guard._execute_child
    assert multiprocessing.process.BaseProcess.start is _process_guard._process_start
    assert os.fork is _process_guard._fork
    assert os.system is _process_guard._system


def test_make_check_runs_lint_and_the_tests_not_marked_process():
    """`make check` is the in-process tier; `make test` still runs every test."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    rules = dict(re.findall(r"^(\w+):[^\n=]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE))
    assert re.search(r"^check: lint$", text, re.MULTILINE)
    assert '-m "not process"' in rules["check"] and "--dist worksteal" in rules["check"]
    suite = rules["test"].split("\n")[0]  # the whole suite, then the arith reruns
    assert suite.endswith("-m pytest -q -n $(TEST_WORKERS) --dist worksteal $(DURATIONS)"), suite


def test_each_tier_prints_its_20_slowest_tests():
    """`make check`, `make test` and its arith reruns name their 20 slowest tests (CI's log)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    value = re.search(r"^DURATIONS :?= (.*)$", text, re.MULTILINE)
    assert value, "the Makefile sets no DURATIONS"
    assert "--durations=20" in value.group(1).split(), value.group(1)
    rules = dict(re.findall(r"^(\w+):[^\n=]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE))
    calls = [
        line
        for rule in ("check", "test", "arith")
        for line in rules[rule].replace("\\\n", " ").split("\n")
        if "-m pytest" in line
    ]
    assert len(calls) == 3, calls
    assert all("$(DURATIONS)" in line for line in calls), calls


def test_the_processor_a_run_records_is_asked_before_the_first_test():
    # a run's provenance records platform.processor(), which runs ``uname -p`` once per
    # process: asked by the guard's install, else the first test to record a run in a worker
    # is refused (tests/test_experiments.py alone under the guard: 25 such failures)
    import platform

    assert "processor" in vars(platform.uname())
