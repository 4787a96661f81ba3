"""The ``--nproc`` launcher owns its ranks: SIGINT and SIGTERM to it or its process group stop
every rank at a step boundary with a checkpoint (exit 130 / 143, one line), a ``kill -9`` of
it leaves no rank, a hung rank is named (with where it hangs) within ``--rank-timeout``, a
killed rank is named with its signal, and a stop that a hung rank cannot reach still ends the
command in seconds.

Each case is one of scripts/process_faults.py's (tests/_faults.py runs them at once): a
``descentlab train --nproc 2`` of its own, the fault, then its exit code, its one line, how
long it took after the signal, and the processes left 10 s later (counted by a tag in their
environment: ranks run in sessions of their own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _faults import held

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc"),
    pytest.mark.process,  # the fault cases' commands (tests/_faults.py)
]

FINDINGS = {
    # (it died by the signal, no line; 2 ranks and the forkserver left)
    "SIGTERM to the launcher stops at a step boundary, exit 143, checkpoint kept":
        "signal/train-nproc2/SIGTERM/launcher/ready",
    # (ignored: the run completed, exit 0)
    "SIGINT to the launcher alone stops the run, exit 130":
        "signal/train-nproc2/SIGINT/launcher/ready",
    # (2 ranks and the forkserver left)
    "kill -9 of the launcher leaves no rank":
        "signal/train-nproc2/SIGKILL/launcher/ready",
    # (the forkserver and a rank left for minutes, then C++ stack frames)
    "SIGTERM while the ranks start leaves nothing":
        "signal/train-nproc2/SIGTERM/launcher/start",
    # (rank 0's gloo error "Connection closed by peer")
    "a rank killed is named with its signal, not the survivor's gloo error":
        "signal/train-nproc2/SIGKILL/rank1/ready",
    # (still running 60 s later, 5 processes left)
    "Ctrl-C with rank 1 hung in user code ends in seconds, naming it":
        "signal/train-nproc2/SIGINT/group/rank1-hung",
    # (waited for ever)
    "a rank hung in user code is named within --rank-timeout":
        "user/train-nproc2/rank1-hang",
}  # fmt: skip


@pytest.mark.parametrize("finding", list(FINDINGS))
def test_the_launcher_owns_its_ranks(finding):
    ok, said = held(FINDINGS[finding])
    assert ok, f"{finding}: {said}"


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
