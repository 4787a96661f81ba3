"""`make test`'s runner: the suite in the foreground, and its reruns under other CPU kernels
beside it at the lowest CPU priority instead of after it.

The suite leaves its cores idle for part of its time (waiting on Ray's processes, the browser,
a compile another worker holds the lock of, a rank's start-up); a process at nice 19 gets a
core only where nothing else wants it, so the reruns fill those gaps and cost the suite's own
tests almost nothing. Each rerun's output is kept and printed after the suite's, under a line
naming its capability; the exit status is the first failure's (the suite's first). Ctrl-C or
SIGTERM is passed to the suite's process group (pytest and its workers; killed 20 s later if
still there) and ends the reruns' groups at once.

Usage (the Makefile's): ``python scripts/test_run.py --workers 2 --capabilities "default
avx2" FILE...`` (FILE: the files holding the tests marked ``arith``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@dataclass(frozen=True)
class Beside:
    """A command run beside the foreground one: its title, extra environment and argv."""

    title: str
    env: dict[str, str]
    argv: list[str]


def _lowest_priority() -> None:
    """In the child, before exec: nice 19. Linux's autogroup scheduling shares the CPU
    between sessions first and applies nice only inside one: a rerun in a session of its own
    took as much CPU as the suite's workers (measured), so the reruns stay in this session
    (a process group of their own, which Ctrl-C at the terminal does not reach)."""
    os.nice(19)


def run(main: Sequence[str], beside: Sequence[Beside], out: TextIO | None = None) -> int:
    """``main`` in the foreground (its output as it comes), each of ``beside`` at nice 19 in
    a process group of its own (its output kept in a file, printed when ``main`` has ended); returns
    the first non-zero exit status (``main``'s first), 130 or 143 when stopped by SIGINT or
    SIGTERM (every command ended then)."""
    out = sys.stdout if out is None else out
    stopped: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopped.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    started: list[tuple[Beside, subprocess.Popen, Path]] = []
    fg: subprocess.Popen | None = None
    with tempfile.TemporaryDirectory(prefix="descentlab-tests-") as tmp:
        try:
            for i, b in enumerate(beside):
                log = Path(tmp) / f"{i}.log"
                with log.open("wb") as f:
                    p = subprocess.Popen(
                        list(b.argv),
                        env={**os.environ, **b.env},
                        stdin=subprocess.DEVNULL,
                        stdout=f,
                        stderr=subprocess.STDOUT,
                        process_group=0,  # (the same session: see _lowest_priority)
                        preexec_fn=_lowest_priority,
                    )
                started.append((b, p, log))
            fg = subprocess.Popen(list(main), process_group=0)
            codes = [fg.wait()]
            for b, p, log in started:
                code = p.wait()
                print(f"make: {b.title}", file=out, flush=True)
                out.write(log.read_text(errors="replace"))
                out.flush()
                codes.append(code)
            return next((c for c in codes if c), 0)
        except KeyboardInterrupt:
            for _, p, _ in started:
                _end_group(p)
            if fg is not None:  # its group: pytest's workers and what they started
                signum = stopped[0] if stopped else signal.SIGINT
                _signal_group(fg, signum)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    fg.wait(timeout=20)
                _signal_group(fg, signal.SIGKILL)
                fg.wait()
            print("make: tests stopped", file=out, flush=True)
            return 128 + (stopped[0] if stopped else signal.SIGINT)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _end_group(p: subprocess.Popen) -> None:
    """End ``p`` and every process of its group."""
    _signal_group(p, signal.SIGKILL)
    p.wait()


def _signal_group(p: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signum)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers of the suite")
    ap.add_argument(
        "--capabilities",
        default="default avx2",
        help="the ATEN_CPU_CAPABILITY values the arith-marked tests run again under",
    )
    ap.add_argument("files", nargs="+", help="the files holding the arith-marked tests")
    a = ap.parse_args(argv)
    if a.workers < 1:
        ap.error(f"--workers must be a positive integer, got {a.workers}")
    pytest = [sys.executable, "-m", "pytest", "-q"]
    beside = [
        Beside(
            f"the arith-marked tests under ATEN_CPU_CAPABILITY={cap}",
            {"ATEN_CPU_CAPABILITY": cap},
            [*pytest, "-m", "arith", "-p", "no:cacheprovider", *a.files],
        )
        for cap in a.capabilities.split()
    ]
    if beside:
        caps = " and ".join(f"={c}" for c in a.capabilities.split())
        print(
            f"make: the arith-marked tests under ATEN_CPU_CAPABILITY{caps} run beside the "
            "suite at the lowest CPU priority; their output follows the suite's",
            flush=True,
        )
    return run([*pytest, "-n", str(a.workers), "--dist", "worksteal"], beside)


if __name__ == "__main__":
    sys.exit(main())
