"""The test suite's subset of scripts/process_faults.py's campaign: each case a command of its
own (a signal to a launcher, a compiler that hangs, user code that leaves a thread running, a
loader worker that hangs), all of them run at once, once per test session (a file lock shares
their outcomes between pytest-xdist's workers)."""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import process_faults as campaign

#: the cases the tests read (tests/test_launcher_signals.py, test_compiler_faults.py,
#: test_user_code.py, test_run_faults.py)
SUBSET = (
    "signal/train-nproc2/SIGTERM/launcher/ready",
    "signal/train-nproc2/SIGINT/launcher/ready",
    "signal/train-nproc2/SIGKILL/launcher/ready",
    "signal/train-nproc2/SIGTERM/launcher/start",
    "signal/train-nproc2/SIGKILL/rank1/ready",
    "signal/train-nproc2/SIGINT/group/rank1-hung",
    "user/train-nproc2/rank1-hang",
    "compiler/train/hang-SIGTERM-launcher",
    "user/train/thread",
    "user/train/prints-json",
    "loader/train/workers2/hang7/SIGINT-group",
)


def _run_all() -> dict[str, list]:
    cases = {c.name: c for c in campaign.all_cases() if c.name in SUBSET}
    assert len(cases) == len(SUBSET), sorted(set(SUBSET) - set(cases))
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        futures = {name: pool.submit(campaign.run_case, case) for name, case in cases.items()}
        return {name: list(f.result()) for name, f in futures.items()}


@functools.cache
def _outcomes() -> dict[str, list]:
    from filelock import FileLock

    base = Path(os.environ["DESCENTLAB_TEST_SHARED"]) / "faults"  # (tests/conftest.py's)
    base.mkdir(exist_ok=True)
    done = base / "outcomes.json"
    with FileLock(str(base / "lock")):
        if not done.exists():
            done.write_text(json.dumps(_run_all()))
    return json.loads(done.read_text())


def held(name: str) -> tuple[bool, str]:
    """Whether campaign case ``name`` held, and what it showed (or why it did not hold)."""
    assert name in SUBSET, name
    ok, said, _seconds = _outcomes()[name]
    return ok, said
