"""Whether your code honours a tuned value, decided by what its optimizer used (:class:`Honour`).

Each trial records, step by step (every step up to 16, then at steps ~10 % apart), the value
of each tuned hyperparameter that each param group of the trial's optimizer used
(:func:`record`). Across the trials of one optimizer that tune different values, a group's
value must move with the trial's: a per-group multiple (``10 * run.hyper["lr"]``), a plateau
schedule (``ReduceLROnPlateau``), a warmup and cosine computed from ``run.hyper`` all do. A
value that is the same in trials whose tuned values differ -- a written-in group lr,
``OneCycleLR(max_lr=0.05)``, ``SWALR(swa_lr=0.05)`` once annealed, a momentum a scheduler
cycles between its own bounds -- ignores the trial's: the comparison is refused before any
recommendation, naming the group, the step and a spelling that works. Zero is exempt (a frozen
group, a warmup from zero, no weight decay on biases: a multiple of any value)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["Honour", "given", "multipliers", "record", "sampled"]

#: the steps recorded after the first 16 (about 10 % apart): the same in every trial
_LATER = sorted({round(16 * 1.1**k) for k in range(1, 200)})
_SAMPLED = frozenset(range(1, 17)) | frozenset(_LATER)


def sampled(step: int) -> bool:
    """Whether the values used at optimizer step ``step`` (1-based) are recorded."""
    return step in _SAMPLED


def record(state: Any, opt: Any) -> None:
    """The values ``opt``'s groups use at this step (before it), where :func:`sampled`:
    ``state.trace[key][group] -> [[step, value], ...]``."""
    step = state.stepped + 1
    if not sampled(step):
        return
    for i, group in enumerate(opt.param_groups):
        for key in state.tuned:  # (the trial's own schedule's values too: they move with it)
            if key not in group:
                continue
            value = _plain(group[key])
            if value is not None:
                state.trace.setdefault(key, {}).setdefault(str(i), []).append([step, value])


def given(state: Any, opt: Any) -> None:
    """The values ``opt``'s groups hold as the code built them (before any scheduler):
    ``state.given[key][group]``."""
    for i, group in enumerate(opt.param_groups):
        for key in state.tuned:
            value = _plain(group.get(key))
            if value is not None:
                state.given.setdefault(key, {})[str(i)] = value


def _plain(value: Any) -> Any:
    """A group's value as JSON holds it (a tensor lr as its float; a tuple of betas a list),
    or None where it is neither a number nor numbers."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1:
        value = value.item()
    if isinstance(value, tuple | list):
        got = [_plain(v) for v in value]
        return None if any(v is None for v in got) else got
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def multipliers(given: Mapping[str, Any], tuned: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Each group's value as the code gave it to ``run.optimizer``, as a multiple of the
    trial's (the ``10 * lr`` of a head group): ``{key: {group: multiple}}``, the groups at
    the trial's value (1x) left out.

    Example:
        >>> multipliers({"lr": {"0": 0.01, "1": 0.1}}, {"lr": 0.01})
        {'lr': {'1': 10.0}}
    """
    out: dict[str, dict[str, float]] = {}
    for key, groups in given.items():
        base = tuned.get(key)
        if isinstance(base, bool) or not isinstance(base, int | float) or not base:
            continue
        for group, value in groups.items():
            if isinstance(value, int | float) and not math.isclose(value, base, rel_tol=1e-9):
                out.setdefault(key, {})[group] = value / base
    return out


_WORKS = {
    "lr": (
        "build it on the trial's value: a group's lr as a multiple of run.hyper['lr'] "
        "({'params': head, 'lr': 10 * run.hyper['lr']}), a torch scheduler that starts from the "
        "group's lr (LambdaLR, CosineAnnealingLR, ReduceLROnPlateau, SWALR(opt, swa_lr=0.5 * "
        "run.hyper['lr'])), OneCycleLR(opt, max_lr=run.hyper['lr'], ...), or a schedule of your "
        "own as g['lr'] = f(step) * run.hyper['lr']"
    ),
    "momentum": (
        "leave it to the trial's value: OneCycleLR and CyclicLR with cycle_momentum=False, or "
        "their base_momentum and max_momentum built from run.hyper['momentum']"
    ),
    "betas": (
        "leave it to the trial's value: OneCycleLR and CyclicLR with cycle_momentum=False, or "
        "their base_momentum and max_momentum built from run.hyper['betas'][0]"
    ),
}


class Honour:
    """The values each finished trial's groups used, per optimizer; :meth:`take` refuses a
    value that is the same in trials that tune different values."""

    def __init__(self) -> None:
        #: (label, key, group, step) -> {tuned value: used value}
        self.seen: dict[tuple[str, str, str, int], dict[Any, Any]] = {}

    def take(self, label: str, tuned: Mapping[str, Any], trace: Mapping[str, Any],
             where: str) -> None:  # fmt: skip
        """One finished trial of optimizer ``label`` (``where`` names its code): ValueError
        where a group used, at a step, the value it used in another trial of another tuned
        value."""
        for key, groups in trace.items():
            if key not in tuned:
                continue
            mine = _key(tuned[key])
            for group, rows in groups.items():
                for step, used in rows:
                    seen = self.seen.setdefault((label, key, group, int(step)), {})
                    seen.setdefault(mine, used)
                    if len(seen) > 1 and _fixed(seen.values()):
                        _refuse(where, label, key, group, int(step), used, seen)


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _fixed(values: Any) -> bool:
    """Whether the values used are one and the same, and not zero (a multiple of any)."""
    flat = [tuple(v) if isinstance(v, list) else (v,) for v in values]
    first = flat[0]
    if all(x == 0 for x in first):
        return False
    return all(
        len(v) == len(first)
        and all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(v, first, strict=True))
        for v in flat[1:]
    )


def _refuse(where: str, label: str, key: str, group: str, step: int, used: Any,
            seen: Mapping[Any, Any]) -> None:  # fmt: skip
    tuned = ", ".join(repr(list(t) if isinstance(t, tuple) else t) for t in seen)
    shown = used if not isinstance(used, list) else tuple(used)
    raise ValueError(
        f"{where}: param group {group} of {label}'s optimizer used {key}={shown!r} at step {step} "
        f"in trials that tune {key} = {tuned}: a value that ignores the trial's is never tuned "
        f"(its recommendation would name a value no run trained with); "
        + _WORKS.get(key, f"build it from run.hyper[{key!r}]")
    )
