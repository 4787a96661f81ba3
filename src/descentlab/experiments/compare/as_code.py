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

__all__ = ["CODE_INDENT", "as_code", "code_lines", "schedule_lines"]

#: the indent of the recommendation's code lines (printed as they are, never re-wrapped)
CODE_INDENT = "    "

#: descentlab's optimizers that are torch's under another name, with what they set
_TORCH_AS = {"Momentum": ("SGD", {}), "Nesterov": ("SGD", {})}


def code_lines(name: Any, setting: Mapping[str, Any], *, steps: int,
               multiples: Mapping[str, Mapping[str, float]] | None = None,
               own: list[str] | None = None) -> list[str]:  # fmt: skip
    """The lines that build optimizer ``name`` at ``setting`` (its lr, other hyperparameters,
    and ``warmup``/``schedule`` over a run of ``steps``); ``multiples``: ``{hyperparameter:
    {group: multiple of the trial's value}}`` your code's groups used (each group after the
    first its own ``params_<group>``); ``own``: the lines of your code's own schedule
    (:func:`schedule_lines`), where descentlab tuned none."""
    import torch

    from descentlab.engine.optimizing import make_optimizer
    from descentlab.experiments.compare.search_space import run_fields

    hyper, schedule = run_fields(dict(setting), steps=steps)
    after = (own or []) + _schedule_lines(schedule, setting, steps)
    if not isinstance(name, str):  # (an optimizer by import path: its own call)
        args = ", ".join(f"{k}={_num(v)}" for k, v in hyper.items())
        groups = _groups(multiples or {}, hyper)
        return [f"optimizer = {getattr(name, 'path', name)}({groups}, {args})", *after]
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
        groups = _groups(multiples or {}, {**hyper, **given})
        lines = [f"optimizer = torch.optim.{torch_name}({groups}, {args})"]
    else:
        lines = [
            "optimizer = descentlab.engine.optimizing.make_optimizer("
            f"{name!r}, {_groups(multiples or {}, hyper)}, {dict(hyper)!r})"
        ]
    return lines + after


def _groups(multiples: Mapping[str, Mapping[str, float]], values: Mapping[str, Any]) -> str:
    """The optimizer's first argument: ``params``, or where your code's groups used multiples
    of the trial's values, one dict a group, each multiple written out (``10 * 0.001``)."""
    names = sorted({g for by in multiples.values() for g in by} - {"0"}, key=int)
    if not multiples:
        return "params"
    first = {k: by["0"] for k, by in multiples.items() if "0" in by}
    out = []
    for group, own in [("0", first)] + [(g, {k: by[g] for k, by in multiples.items()
                                              if g in by}) for g in names]:  # fmt: skip
        parts = ['"params": ' + ("params" if group == "0" else f"params_{group}")]
        for key, times in sorted(own.items()):
            base = values.get(key)
            if isinstance(base, int | float) and not isinstance(base, bool):
                parts.append(f'"{key}": {_num(times)} * {_num(base)}')
        out.append("{" + ", ".join(parts) + "}")
    return "[" + ", ".join(out) + "]"


def schedule_lines(rows: list[Any], lr: float, steps: int) -> list[str]:
    """Your code's own lr schedule as torch lines, from the values group 0 used (``rows``:
    ``[[optimizer step (1-based), lr], ...]`` as :mod:`~descentlab.experiments.kinds.
    code_honour` records them) over the lr ``lr`` it was given, in a run of ``steps``: the
    first torch scheduler (its parameters read off the values) that gives every recorded
    value when stepped after each optimizer step, else a ``LambdaLR`` through the recorded factors
    (linear between them). Empty: the lr never moved."""
    points = [(int(t) - 1, v / lr) for t, v in rows if isinstance(v, int | float) and lr]
    if len({f for _, f in points}) < 2:
        return []
    for spelling in _candidates(points, steps):
        if _gives(spelling.format(lr=1.0), points):
            return [f"scheduler = {spelling.format(lr=_num(lr))}  # step() after each optimizer "
                    "step"]  # fmt: skip
    table = ", ".join(f"({s}, {f:.12g})" for s, f in points)
    return [
        f"points = [{table}]  # (step, the lr's factor) as your code's curve run used them",
        "def factor(s):  # linear between the recorded steps",
        "    below = max((p for p in points if p[0] <= s), default=points[0])",
        "    above = min((p for p in points if p[0] >= s), default=points[-1])",
        "    if above[0] == below[0]:",
        "        return below[1]",
        "    return below[1] + (above[1] - below[1]) * (s - below[0]) / (above[0] - below[0])",
        "scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)  # step() after "
        "each optimizer step",
    ]


def _candidates(points: list[tuple[int, float]], steps: int) -> list[str]:
    """torch schedulers whose parameters the recorded factors give (cosine to 0, linear to 0,
    exponential, OneCycle over the run), as the code that builds them (``{lr}``: the lr)."""
    import math

    mod = "torch.optim.lr_scheduler"
    out = []
    inside = [(s, f) for s, f in points if s > 0 and 0 < f < 1]
    for t in _likeliest([math.pi * s / math.acos(2 * f - 1) for s, f in inside]):
        out.append(f"{mod}.CosineAnnealingLR(optimizer, T_max={t})")
    for t in _likeliest([s / (1 - f) for s, f in inside]):
        out.append(f"{mod}.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters={t})")
    one = dict(points).get(1)
    if one is not None and one > 0:
        out.append(f"{mod}.ExponentialLR(optimizer, gamma={one!r})")
    out.append(
        f"{mod}.OneCycleLR(optimizer, max_lr={{lr}}, total_steps={steps}, cycle_momentum=False)"
    )
    return out


def _likeliest(estimates: list[float]) -> list[int]:
    """The three lengths the recorded steps give most often (each one's estimate rounded)."""
    from collections import Counter

    return [t for t, _ in Counter(round(e) for e in estimates if e >= 1).most_common(3)]


def _gives(spelling: str, points: list[tuple[int, float]]) -> bool:
    """Whether the scheduler ``spelling`` builds gives every recorded factor at its step."""
    import math

    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    try:
        sched = eval(spelling, {"torch": torch, "optimizer": opt})  # (our own spelling)
    except (ValueError, ZeroDivisionError, OverflowError):
        return False
    want = dict(points)
    for s in range(max(want) + 1):
        if s in want and not math.isclose(opt.param_groups[0]["lr"], want[s], rel_tol=1e-6,
                                          abs_tol=1e-12):  # fmt: skip
            return False
        opt.step()
        try:
            sched.step()
        except ValueError:  # (stepped past its total steps)
            return False
    return True


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
    multiples = multipliers(said.get("given", {}), said.get("tuned", {}))
    first = said.get("given", {}).get("lr", {}).get("0")
    own = []
    if isinstance(first, int | float) and not any(k in setting for k in ("warmup", "schedule")):
        rows = said.get("used", {}).get("lr", {}).get("0", [])
        own = schedule_lines(rows, first, result.spec.steps)
    try:
        lines = code_lines(top.choice.optimizer, setting, steps=result.spec.steps,
                           multiples=multiples, own=own)  # fmt: skip
    except (KeyError, ValueError, TypeError):
        return ""
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
