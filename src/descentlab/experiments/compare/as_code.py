"""The recommendation as code you paste (:func:`as_code`): the chosen optimizer as a torch
optimizer built with the values its runs trained with, its lr schedule as a
``torch.optim.lr_scheduler.LambdaLR`` of the same factors, and the multiples of the lr your
code's param groups used, as your code wrote them -- as Hugging Face's ``TrainingArguments``
state a recommendation one pastes back.

Example:
    >>> print("\\n".join(code_lines("sgd", {"lr": 0.1, "warmup": 0.1, "schedule": "cosine"},
    ...                             steps=100)))
    optimizer = torch.optim.SGD(params, lr=0.1)
    def factor(s):  # the lr's factor after s optimizer steps
        return s / 10 if s < 10 else 0.5 * (1 + math.cos(math.pi * (s - 10) / 90))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)  # step() after each optimizer step
"""  # noqa: E501

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from descentlab.experiments.kinds.code_honour import multipliers

__all__ = ["CODE_INDENT", "as_code", "code_lines"]

#: the indent of the recommendation's code lines (printed as they are, never re-wrapped)
CODE_INDENT = "    "

#: descentlab's optimizers that are torch's under another name, with what they set
_TORCH_AS = {"Momentum": ("SGD", {}), "Nesterov": ("SGD", {})}


def code_lines(name: Any, setting: Mapping[str, Any], *, steps: int,
               multiples: Mapping[str, float] | None = None) -> list[str]:  # fmt: skip
    """The lines that build optimizer ``name`` at ``setting`` (its lr, other hyperparameters,
    and ``warmup``/``schedule`` over a run of ``steps``); ``multiples``: ``{group: multiple of
    the lr}`` your code's groups used."""
    import torch

    from descentlab.engine.optimizing import make_optimizer
    from descentlab.experiments.compare.search_space import run_fields

    hyper, schedule = run_fields(dict(setting), steps=steps)
    if not isinstance(name, str):  # (an optimizer by import path: its own call)
        args = ", ".join(f"{k}={_num(v)}" for k, v in hyper.items())
        lines = [f"optimizer = {getattr(name, 'path', name)}(params, {args})"]
        return lines + _schedule_lines(schedule, setting, steps)
    built = make_optimizer(name, [torch.nn.Parameter(torch.zeros(1))], hyper)
    cls, given = type(built).__name__, dict(getattr(built, "defaults", {}))
    torch_name, _ = _TORCH_AS.get(cls, (cls, {}))
    twin = getattr(torch.optim, torch_name, None)
    if isinstance(twin, type) and issubclass(twin, torch.optim.Optimizer):
        theirs = {
            k: p.default
            for k, p in inspect.signature(twin).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        kwargs = {"lr": given.get("lr")}
        kwargs.update({k: v for k, v in given.items() if k in theirs and v != theirs[k]})
        args = ", ".join(f"{k}={_num(v)}" for k, v in kwargs.items())
        lines = [f"optimizer = torch.optim.{torch_name}(params, {args})"]
    else:
        lines = [
            "optimizer = descentlab.engine.optimizing.make_optimizer("
            f"{name!r}, params, {dict(hyper)!r})"
        ]
    for group, times in sorted((multiples or {}).items()):
        lr = given.get("lr")
        value = f" = {_num(times * lr)}" if isinstance(lr, int | float) else ""
        lines.append(
            f"# param group {group}: lr = {_num(times)} * lr{value} (the multiple of the "
            "trial's lr your code gave it)"
        )
    return lines + _schedule_lines(schedule, setting, steps)


def _schedule_lines(
    schedule: Mapping[str, Any], setting: Mapping[str, Any], steps: int
) -> list[str]:
    if not schedule.get("lr"):
        return []
    return [
        "def factor(s):  # the lr's factor after s optimizer steps",
        f"    return {_factor(setting, steps)}",
        "scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)  # step() after "
        "each optimizer step",
    ]


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_num(x) for x in v) + ")"
    return repr(v)


def _factor(setting: Mapping[str, Any], steps: int) -> str:
    """The lr's factor at step ``s`` (0-based), as descentlab's schedule computes it: a linear
    warmup from 0 over ``W`` steps, then cosine to 0 or linear to 0 over the rest."""
    warm = float(setting.get("warmup", 0.0) or 0.0)
    w = max(1, round(warm * steps)) if warm > 0 else 0
    rest = max(1, steps - w)
    t = f"(s - {w})" if w else "s"
    after = {
        "constant": "1.0",
        "cosine": f"0.5 * (1 + math.cos(math.pi * {t} / {rest}))",
        "linear": f"1.0 - min({t}, {rest}) / {rest}",
    }[str(setting.get("schedule", "constant"))]
    return f"s / {w} if s < {w} else {after}" if w else after


def as_code(result: Any) -> str:
    """The chosen optimizer of comparison ``result`` as the lines you paste (empty where
    there is no choice): with your own code, the multiples of the lr its groups used."""
    ranking = result.ranking()
    if not ranking or ranking[0].chosen_on != "validation":
        return ""
    top = ranking[0].result
    if top.best_setting is None:
        return ""
    setting = {**dict(top.choice.hyper), **dict(top.best_setting)}
    said = _honour(result, top)
    multiples = multipliers(said.get("given", {}), said.get("tuned", {})).get("lr", {})
    try:
        lines = code_lines(top.choice.optimizer, setting, steps=result.spec.steps,
                           multiples=multiples)  # fmt: skip
    except (KeyError, ValueError, TypeError):
        return ""
    moved = _moved(said.get("used", {}).get("lr", {}).get("0", []))
    if moved and not any(k in setting for k in ("warmup", "schedule")):
        lines.append(
            f"# and your code's own lr schedule, as it writes it (group 0's lr went from "
            f"{_num(moved[0])} to {_num(moved[1])} in its curve run)"
        )
    head = "as code (paste into your script; params: the parameters you train):\n"
    return head + "\n".join(CODE_INDENT + line for line in lines)


def _honour(result: Any, top: Any) -> dict[str, Any]:
    """What the chosen optimizer's first curve run recorded of the values its groups were
    given and used (:mod:`~descentlab.experiments.kinds.code_honour`), read from the store."""
    from descentlab.store import Store

    run = next((r for r in top.curve_runs if r is not None), None)
    if run is None or not result.store_path.is_file():
        return {}
    store = Store(result.store_path, read_only=True)
    try:
        said = (store.get_run(run).provenance or {}).get("honour")
    finally:
        store.close()
    return said if isinstance(said, dict) else {}


def _moved(rows: list[Any]) -> tuple[float, float] | None:
    """(first, last) of the values a group used where they changed over the run, else None."""
    values = [v for _, v in rows if isinstance(v, int | float)]
    return (values[0], values[-1]) if len(set(values)) > 1 else None
