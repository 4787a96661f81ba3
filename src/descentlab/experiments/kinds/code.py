"""The comparison's glue for your training code: the objective a comparison resolves and
records (:func:`for_compare`), and the direction a trial's summary shows (:func:`learned`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from descentlab.experiments.kinds.code_identity import Objective
from descentlab.experiments.kinds.code_run import slot


def for_compare(spec: Any, given: Any, *, data: bool, workers: int) -> tuple[Any, Objective]:
    """The comparison's objective: ``given`` (a function ``fn(run)``, or an
    :class:`Objective`) or the one ``spec.objective`` names, checked (it imports, and can go to
    worker processes); and the spec that records it with its code's hash -- changed code
    starts a new comparison -- with no time to a target accuracy (the objective's metric is
    its own). ``data``: descentlab gives each trial its data."""
    import pickle

    from descentlab.problems.problem import absolute_ref, problem_slug

    rec = dict(spec.objective or {})
    if given is None:
        ref = absolute_ref(rec["ref"])
        obj = Objective(rec["form"], ref, rec.get("metric"), rec.get("maximize"))
    elif isinstance(given, Objective):
        obj = dataclasses.replace(given)
    elif callable(given):
        name = f"{getattr(given, '__module__', '?')}:{getattr(given, '__qualname__', '?')}"
        obj = Objective("function", name, fn=given, by_ref=False)
    else:
        raise ValueError(f"objective must be a function fn(run) -> Score, got {given!r}")
    obj.data = data or bool(rec.get("data"))
    obj.function  # noqa: B018  (imported here: a bad reference is one line before any work)
    if workers > 1 and not obj.by_ref:
        try:
            pickle.dumps(obj)
        except Exception as exc:
            raise ValueError(
                f"objective {obj.ref} cannot be sent to worker processes ({exc}); define it at "
                "module level, or use workers=1"
            ) from None
    record = {**obj.record(), "ref": rec.get("ref", obj.ref), "data": obj.data}
    changes: dict[str, Any] = {"objective": record, "target_accuracy": None}
    if not obj.data:
        changes["problem"] = problem_slug(record["ref"])
        if spec.batch_size == "auto":
            changes["batch_size"] = None
    return dataclasses.replace(spec, **changes), obj


def learned(summary: Mapping[str, Any]) -> bool | None:
    """The direction a trial's summary shows its objective's metric has (None: it has no
    value, e.g. a diverged trial)."""
    for split in ("val", "test"):
        for maximize in (True, False):
            if f"{split}/{slot(maximize)}" in summary:
                return maximize
    return None
