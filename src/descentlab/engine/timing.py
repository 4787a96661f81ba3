"""Each run's own time: its forward/backward passes and its optimizer's steps, measured per run.

A :class:`RunClock` belongs to a training loop's stepper (:class:`~descentlab.engine.run.
OneModel` for one run, :class:`~descentlab.engine.vectorized.Stacked` for K runs trained in one
vectorized pass). The stepper brackets its work with :meth:`RunClock.stamp` and reports each
interval with :meth:`RunClock.add`, naming the runs whose work it was. What each interval is
charged to, and which clock (:attr:`RunClock.kind`) measures it: docs/compare.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["CLOCKS", "MEASURED_METRICS", "MEASURED_SUMMARY", "RunClock", "clock_kind"]

#: a run's logged metrics that are measured times (they differ between two runs of the same
#: configuration; everything else is computed, equal bit for bit)
MEASURED_METRICS: tuple[str, ...] = (
    "progress/wall_time",
    "progress/train_time",
    "progress/optimizer_time",
)
#: the same in a run's summary, with the clock they were measured by (which depends on how
#: the run was trained: one thread or several)
MEASURED_SUMMARY: tuple[str, ...] = ("wall_time", "train_seconds", "optimizer_seconds", "clock")

#: the clocks a measurement may come from
CLOCKS: tuple[str, ...] = ("cuda events", "thread CPU time", "wall clock")

# (part, sign) pairs an interval is counted into
COMPUTE = (("compute", 1.0),)
UPDATE = (("update", 1.0),)
# a closure evaluated inside the optimizer's step: forward/backward, not the optimizer's
CLOSURE = (("compute", 1.0), ("update", -1.0))


def clock_kind(device: Any) -> str:
    """The clock :class:`RunClock` uses on ``device`` with torch's current thread setting."""
    if torch.device(device).type == "cuda":
        return "cuda events"
    return "thread CPU time" if torch.get_num_threads() == 1 else "wall clock"


class RunClock:
    """Seconds of forward/backward and of optimizer steps, per run, of K runs.

    Args:
        k: the number of runs.
        device: where they compute (CUDA events on a GPU).
    """

    def __init__(self, k: int, device: Any = "cpu") -> None:
        self.k = k
        self.kind = clock_kind(device)
        self._cuda = self.kind == "cuda events"
        self._now = time.thread_time if self.kind == "thread CPU time" else time.perf_counter
        self.compute = [0.0] * k
        self.update = [0.0] * k
        self._pending: list[tuple[Any, Any, Sequence[int] | None, tuple]] = []

    def stamp(self) -> Any:
        """The time now (a recorded CUDA event on a GPU)."""
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return self._now()

    def add(self, start: Any, end: Any, parts: tuple, runs: Sequence[int] | None = None) -> None:
        """Charge the interval ``start..end`` to ``parts`` (:data:`COMPUTE`, :data:`UPDATE`,
        :data:`CLOSURE`) of ``runs`` (None: all K), split equally among them."""
        if self._cuda:
            self._pending.append((start, end, runs, parts))
        else:
            self._charge(end - start, runs, parts)

    def _charge(self, seconds: float, runs: Sequence[int] | None, parts: tuple) -> None:
        idx = range(self.k) if runs is None else runs
        share = seconds / max(1, len(idx))
        for part, sign in parts:
            into = self.compute if part == "compute" else self.update
            for i in idx:
                into[i] += sign * share

    def totals(self) -> list[tuple[float, float]]:
        """Per run, ``(forward/backward seconds, optimizer seconds)`` so far."""
        if self._pending:
            self._pending[-1][1].synchronize()
            for start, end, runs, parts in self._pending:
                self._charge(start.elapsed_time(end) / 1000.0, runs, parts)
            self._pending.clear()
        return list(zip(self.compute, self.update, strict=True))

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (a resumed run's clock goes on from it)."""
        return {"kind": self.kind, "totals": self.totals()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if not state:
            return
        totals = state["totals"]
        self.compute = [float(c) for c, _ in totals]
        self.update = [float(u) for _, u in totals]
