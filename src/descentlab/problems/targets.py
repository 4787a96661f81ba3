"""Fixed validation and test targets of the built-in problems, measured from reference runs.

AlgoPerf (Dahl et al. 2023, section 4.3) fixes each workload's targets from reference runs,
before any submission is scored: an optimizer's time to target then measures how fast it gets
to a level set independently of the optimizers it is compared with. The targets of the
problems of ``descentlab compare --problems default`` are stored in ``targets.json`` beside
this module, measured by ``scripts/measure_targets.py``: Adam, its learning rate chosen on a
5-point log grid over its range on validation data, then 3 seeds; the validation target is the
median of the 3 runs' final validation metric, the test target the median of the 3 refit runs'
test metric.

A target holds for the setting it was measured in (problem, its options, model, batch size,
steps, split): :func:`target_for` checks the setting's fingerprint and returns no target,
with the reason, for another one.

Example:
    >>> t = stored_targets()["digits"]
    >>> t.metric, t.maximize, 0.5 < t.validation <= 1.0
    ('accuracy', True, True)
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["FINGERPRINT_FIELDS", "TARGETS_FILE", "Target", "fingerprint", "stored_targets",
           "target_for"]  # fmt: skip

#: Where the built-in problems' targets are stored (package data).
TARGETS_FILE = Path(__file__).with_name("targets.json")

#: The fields of a comparison's setting a target depends on.
FINGERPRINT_FIELDS: tuple[str, ...] = (
    "problem",
    "problem_options",
    "model",
    "model_options",
    "batch_size",
    "steps",
    "val_fraction",
    "split_seed",
)


def fingerprint(fields: Mapping[str, Any]) -> str:
    """A short hash of the fields of :data:`FINGERPRINT_FIELDS` (absent ones as None).

    A comparison on a built-in problem object (``charlm``) carries its data's fingerprint in
    its problem's name (``charlm#1a2b3c4d``, :func:`~descentlab.problems.problem.
    resolve_for_compare`); the setting is the problem's name without it, as for the datasets
    (``digits``), whose names never carry one.

    Example:
        >>> fingerprint({"problem": "digits", "steps": 300}) == fingerprint(
        ...     {"steps": 300, "problem": "digits", "seeds": 9})
        True
        >>> fingerprint({"problem": "charlm#1a2b3c4d"}) == fingerprint({"problem": "charlm"})
        True
    """
    key = {f: fields.get(f) for f in FINGERPRINT_FIELDS}
    if isinstance(key["problem"], str):
        key["problem"] = key["problem"].split("#", 1)[0]
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Target:
    """One problem's fixed targets.

    Attributes:
        problem: the problem's name.
        metric: ``accuracy``, ``loss`` or ``rmse`` (the problem's selection metric).
        maximize: higher is better (accuracy).
        validation: the validation target (time to target is timed to it).
        test: the test target.
        steps: the step budget the reference runs had (and the comparison has).
        fingerprint: :func:`fingerprint` of the setting measured.
        reference: how the reference runs were made, in words.
    """

    problem: str
    metric: str
    maximize: bool
    validation: float
    test: float
    steps: int
    fingerprint: str
    reference: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(name: str, data: Any) -> Target:
    """A stored entry as a :class:`Target`, every field checked (a damaged file is refused,
    never half used)."""
    where = f"{TARGETS_FILE.name}[{name!r}]"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be an object, got {data!r}")
    try:
        t = Target(
            problem=name, **{k: data[k] for k in Target.__dataclass_fields__ if k != "problem"}
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where} is incomplete or has unknown fields: {exc}") from None
    for key in ("validation", "test"):
        v = getattr(t, key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{where}.{key} must be a finite number, got {v!r}")
    if t.metric not in ("accuracy", "loss", "rmse") or t.maximize != (t.metric == "accuracy"):
        raise ValueError(f"{where}: metric {t.metric!r} with maximize={t.maximize!r}")
    return t


@functools.cache
def stored_targets(path: Path = TARGETS_FILE) -> dict[str, Target]:
    """The stored targets by problem name (read once, checked)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ValueError(f"{path.name} must hold an object, got {type(data).__name__}")
    return {name: _check(name, entry) for name, entry in data.items()}


def target_for(name: str, fields: Mapping[str, Any]) -> tuple[Target | None, str | None]:
    """The stored target of problem ``name`` for a comparison with ``fields``:
    ``(target, None)``, or ``(None, why not)`` (no stored target, or one measured in another
    setting: its fingerprint differs). A target stored as ``name/MODEL`` is the one of a
    comparison with model ``MODEL`` (``charlm/gpt``); otherwise the one stored as ``name``."""
    stored = stored_targets()
    model = fields.get("model")
    key = f"{name}/{model}" if f"{name}/{model}" in stored else name
    t = stored.get(key)
    if t is None:
        return None, f"{name} has no stored target"
    if t.fingerprint != fingerprint(fields):
        return None, (
            f"{name}'s stored target was measured for another setting ({t.steps} steps, the "
            "suite's model, batch size and options); this one differs"
        )
    return t, None
