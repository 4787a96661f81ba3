"""A comparison killed with ``kill -9`` in the middle of a trial, for the resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def compare_killed_at_mark(spec: Any, runs: Path, mark: Path, env: dict[str, str]) -> str:
    """Run ``compare(spec, runs, checkpoint_every=5)`` in a process of its own with ``env`` and
    kill it (``SIGKILL``) once ``mark`` exists (the trial hangs there); the script, to run the
    comparison again."""
    script = (f"from descentlab.experiments.compare import CompareSpec, compare\n"
              f"compare(CompareSpec(**{spec.__dict__!r}), {str(runs)!r}, "
              "workers=1, progress=False, checkpoint_every=5)")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 120
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return script
