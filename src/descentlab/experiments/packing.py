"""Which worker trains what: the waiting work, in groups that can share one vectorized pass,
cut into the parts that free workers start now so that they finish together
(:func:`plan_tasks`). It reads positions and estimated costs, never a trial: the runner
(:mod:`~descentlab.experiments.runner`) groups its trials and estimates their costs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def _never(item: Any) -> bool:
    return False


def _water_level(amount: float, loads: Sequence[float]) -> float:
    """The level ``L`` at which ``sum(max(0, L - load))`` is ``amount``: the time every worker
    finishes when ``amount`` is poured over workers that are busy for ``loads``."""
    level, below = 0.0, 0.0
    ordered = sorted(loads)
    for i, load in enumerate(ordered):
        # workers 0..i are below the level once it passes ``load``
        nxt = ordered[i + 1] if i + 1 < len(ordered) else math.inf
        level = (amount + below + load) / (i + 1)
        below += load
        if level <= nxt:
            return level
    return level


def plan_tasks(
    groups: Sequence[Sequence[T]],
    idle: int,
    *,
    cost: Callable[[T], float],
    urgent: Callable[[T], bool] = _never,
    busy: Sequence[float] = (),
    min_part: int = 4,
) -> list[list[T]]:
    """The tasks that ``idle`` free workers start now: each a part of one group (trials of a
    group can train in one vectorized pass), in the group's order, at most one per worker;
    the rest waits for a worker that frees up (and for trials submitted meanwhile to join it).

    The policy: work whose outcome decides what runs next (``urgent``: tuning trials) goes
    before the rest; within that pool the largest group goes first, cut so that this
    worker's part reaches the level at which the pool, poured over every worker's remaining
    work (``busy``, the parts planned here, nothing for the idle ones), would finish: the
    workers end together. A part, and what it leaves of its group, keeps at least
    ``min_part`` trials (a vectorized run costs about the same per step from there on),
    unless the pool holds fewer than ``min_part`` trials per free worker: then the free
    workers share them evenly rather than some staying idle.

    Args:
        groups: the waiting work, in groups that can share a pass (each in its own order).
        idle: free workers.
        cost: a trial's estimated cost (any unit: seconds, steps).
        urgent: whether a trial's outcome unblocks further work.
        busy: the remaining cost of each busy worker's task (same unit).
        min_part: the smallest part worth a pass of its own.

    Returns:
        The parts to start now, one per worker.

    Example:
        >>> refits, tuning = ["r1", "r2"], ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"]
        >>> plan_tasks([refits, tuning], 2, cost=lambda t: 1.0, urgent=lambda t: t[0] == "t")
        [['t1', 't2', 't3', 't4'], ['t5', 't6', 't7', 't8']]
    """
    for name, value, least in (("idle", idle, 0), ("min_part", min_part, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            kind = "non-negative" if least == 0 else "positive"
            raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
    pieces: list[tuple[bool, list[T], list[float]]] = []
    for g in groups:
        for flag in (True, False):  # an urgent trial never waits on its group's others
            part = [t for t in g if bool(urgent(t)) is flag]
            if part:
                pieces.append((flag, part, [float(cost(t)) for t in part]))
    loads = [float(b) for b in busy]
    out: list[list[T]] = []
    for free in range(idle, 0, -1):
        pieces = [p for p in pieces if p[1]]
        if not pieces:
            break
        pool = [p for p in pieces if p[0]] or pieces
        flag, trials, costs = max(pool, key=lambda p: sum(p[2]))
        share = _water_level(sum(sum(p[2]) for p in pool), loads + [0.0] * free)
        # Parts smaller than min_part only where the pool cannot give every free worker a
        # full part (a worker otherwise idle takes a small part).
        count = sum(len(p[1]) for p in pool)
        lo = min_part if count >= free * min_part else max(1, count // free)
        k = _cut(costs, share, lo)
        out.append(trials[:k])
        loads.append(sum(costs[:k]))
        del trials[:k], costs[:k]
    return out


def _cut(costs: Sequence[float], share: float, lo: int) -> int:
    """How many leading trials of a group (with ``costs``) make the part whose cost is
    nearest ``share`` (ties: more trials): the whole group, or a part of at least ``lo``
    trials that leaves at least ``lo``."""
    n = len(costs)
    totals = list(itertools.accumulate(costs))
    counts = [*range(lo, n - lo + 1), n]
    return min(counts, key=lambda k: (abs(totals[k - 1] - share), -k))
