"""The ``--nproc`` launcher owns its ranks: SIGINT and SIGTERM to it or its process group stop
every rank at a step boundary with a checkpoint (exit 130 / 143, one line), a ``kill -9`` of
it leaves no rank, a hung rank is named within ``--rank-timeout``, a killed rank is named with
its signal, and a stop that a hung rank cannot reach still ends the command in seconds.

Each case is one of scripts/process_faults.py's (the campaign keeps them all): a ``descentlab
train --nproc 2`` of its own, the fault, then its exit code, its one line, how long it took
after the signal, and the processes left 10 s later (counted by a tag in their environment:
ranks run in sessions of their own). The cases run at once, once per test session (a file
lock shares them between pytest-xdist's workers)."""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import process_faults as campaign  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")

CASES = {
    "SIGTERM to the launcher stops at a step boundary, exit 143, checkpoint kept":
        "signal/train-nproc2/SIGTERM/launcher/ready",
    "SIGINT to the launcher alone stops the run, exit 130":
        "signal/train-nproc2/SIGINT/launcher/ready",
    "Ctrl-C to the process group stops the run, exit 130":
        "signal/train-nproc2/SIGINT/group/ready",
    "kill -9 of the launcher leaves no rank":
        "signal/train-nproc2/SIGKILL/launcher/ready",
    "SIGTERM while the ranks start leaves nothing":
        "signal/train-nproc2/SIGTERM/launcher/start",
    "a rank killed is named with its signal, not the survivor's gloo error":
        "signal/train-nproc2/SIGKILL/rank1/ready",
    "Ctrl-C with rank 1 hung in user code ends in seconds, naming it":
        "signal/train-nproc2/SIGINT/group/rank1-hung",
    "a rank hung in user code is named within --rank-timeout":
        "user/train-nproc2/rank1-hang",
}  # fmt: skip


def _outcomes() -> dict[str, list]:
    cases = {c.name: c for c in campaign.all_cases() if c.name in CASES.values()}
    assert len(cases) == len(CASES), sorted(set(CASES.values()) - set(cases))
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        futures = {name: pool.submit(campaign.run_case, case) for name, case in cases.items()}
        return {name: list(f.result()) for name, f in futures.items()}


@functools.cache
def outcomes() -> dict[str, list]:
    """``{case: [held, what it showed, seconds]}``, computed once per test session."""
    from filelock import FileLock

    session = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    base = Path(tempfile.gettempdir()) / f"descentlab-launcher-{session}"
    base.mkdir(exist_ok=True)
    done = base / "outcomes.json"
    with FileLock(str(base / "lock")):
        if not done.exists():
            done.write_text(json.dumps(_outcomes()))
    return json.loads(done.read_text())


@pytest.mark.parametrize("finding", list(CASES))
def test_the_launcher_owns_its_ranks(finding):
    held, said, _seconds = outcomes()[CASES[finding]]
    assert held, f"{finding}: {said}"


class _Meeting(dict):
    """The TCPStore's ``add``, ``set`` and ``get``, in memory."""

    def add(self, key: str, n: int) -> int:
        self[key] = dict.get(self, key, 0) + n
        return self[key]

    def set(self, key: str, value: str) -> None:
        self[key] = value.encode()

    def get(self, key: str) -> bytes:
        return self[key]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("import sys\ndef f():\n    sys.exit(3)\n", "rank 1: it called sys.exit(3) in f ("),
        ("def f():\n    raise ValueError('boom')\n", "rank 1: ValueError: boom in f ("),
    ],
    ids=["sys.exit", "ValueError"],
)
def test_a_ranks_failure_in_user_code_is_said_as_raised_and_where(body, says, tmp_path):
    """(``rank 1: SystemExit: 3``; a model's ValueError without where it was raised)"""
    from descentlab.engine.ranks import first_failure, record_failure

    user = tmp_path / "user.py"
    namespace: dict = {}
    exec(compile(body, str(user), "exec"), namespace)
    meeting = _Meeting()
    try:
        namespace["f"]()
    except BaseException as exc:
        record_failure(meeting, 1, exc)
    said = first_failure(meeting)
    assert said is not None and said.startswith(says) and str(user) in said, said
