"""`Scheduler`: drive any hyperparameter of the param groups of any torch optimizer.

How it records each group's base, which keys it can drive and how it counts steps:
docs/schedules.md.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from descentlab.constraints import NONNEGATIVE_INT, InstanceOf, check, invalid
from descentlab.schedules.base import Schedule, as_schedule
from descentlab.schedules.loss_driven import LossRule, check_loss

__all__ = ["Scheduler"]

_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")

Driver = Schedule | LossRule | Callable[[int], float]
Value = float | list[float]


@dataclass
class _Slot:
    key: str
    name: str
    index: int | None
    group: int
    driver: Schedule | LossRule
    base: Value


def parse_key(key: Any) -> tuple[str, int | None]:
    """``"betas[0]"`` -> ``("betas", 0)``; ``"lr"`` -> ``("lr", None)``."""
    m = _KEY.match(key) if isinstance(key, str) else None
    if m is None:
        raise ValueError(
            f"schedule key must be a param-group entry name like 'lr' or 'betas[0]', got {key!r}"
        )
    return m.group(1), (None if m.group(2) is None else int(m.group(2)))


def _raw(group: Mapping[str, Any], name: str, index: int | None) -> Any:
    v = group[name]
    return v if index is None else v[index]


def _to_value(raw: Any, where: str) -> Value:
    if isinstance(raw, torch.Tensor):
        if raw.dim() == 0:
            return float(raw.item())
        if raw.dim() == 1:
            return [float(x) for x in raw.tolist()]
        raise ValueError(
            f"{where} must be a number or a 0-d/1-d tensor, got shape {tuple(raw.shape)}"
        )
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"{where} must be a number to be scheduled, got {raw!r}")
    return float(raw)


def _write(group: dict[str, Any], name: str, index: int | None, value: Value) -> None:
    cur = _raw(group, name, index)
    if isinstance(cur, torch.Tensor):
        with torch.no_grad():
            if isinstance(value, list):
                cur.copy_(torch.tensor(value, dtype=cur.dtype, device=cur.device))
            else:
                cur.fill_(value)
        return
    if index is None:
        group[name] = value
        return
    container = group[name]
    if isinstance(container, list):
        container[index] = value
    else:
        items = list(container)
        items[index] = value
        group[name] = type(container)(items) if type(container) is not tuple else tuple(items)


def _evaluate(schedule: Schedule, step: int, base: Value) -> Value:
    if isinstance(base, list):
        return [schedule.value(step, b) for b in base]
    return schedule.value(step, base)


def _slots(
    groups: list[dict[str, Any]], key: str, name: str, index: int | None, spec: Any
) -> list[_Slot]:
    """The slots one ``schedules[key]`` entry drives: one per param group it names."""
    n = len(groups)
    if isinstance(spec, (list, tuple)):
        if len(spec) != n:
            raise ValueError(
                f"schedules[{key!r}] must give one driver per param group ({n}), got {len(spec)}"
            )
        per_group = list(spec)
    else:
        per_group = [spec] * n
    slots = []
    for g, driver in enumerate(per_group):
        if driver is None:
            continue
        if not isinstance(driver, LossRule):
            driver = as_schedule(driver, f"schedules[{key!r}]")
        group = groups[g]
        if name not in group:
            valid = sorted(k for k in group if k != "params")
            raise KeyError(
                f"param_groups[{g}] has no entry {name!r} to schedule (key {key!r}); "
                f"valid names: {', '.join(valid)}"
            )
        if index is not None:
            container = group[name]
            if not isinstance(container, (tuple, list)) or index >= len(container):
                raise invalid(
                    f"schedule key {key!r}: param_groups[{g}][{name!r}]",
                    f"a tuple with more than {index} elements",
                    container,
                )
        base = _to_value(_raw(group, name, index), f"param_groups[{g}][{key!r}]")
        slots.append(_Slot(key, name, index, g, driver, base))
    return slots


class Scheduler:
    """Schedule any hyperparameters of any ``torch.optim.Optimizer``'s param groups.

    Args:
        optimizer: a torch optimizer (torch.optim's or descentlab's): anything with
            ``param_groups`` (and ``state``, for rejecting loss rules).
        schedules: ``{key: driver}``; a driver is a `Schedule`, a plain callable
            ``step -> value`` (absolute) or a `LossRule`; or a list with one driver (or None,
            to leave that group alone) per param group. Keys are group entries (``"lr"``,
            ``"momentum"``, ``"weight_decay"``) or tuple elements (``"betas[0]"``).

    Attributes:
        last_step: scheduler steps taken (0 after construction).
        last_rejected: whether the last `step` rejected the optimizer step (bold driver).

    Examples:
        >>> import torch
        >>> from descentlab.schedules import Scheduler, cosine, linear
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.5)
        >>> sched = Scheduler(opt, {"lr": cosine(100), "momentum": linear(0.5, 0.99, 50, base=1.0)})
        >>> for _ in range(50):
        ...     opt.step()
        ...     sched.step()
        >>> round(opt.param_groups[0]["lr"], 6), opt.param_groups[0]["momentum"]
        (0.05, 0.99)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedules: Mapping[str, Driver | Sequence[Driver | None]],
    ) -> None:
        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, list) or not groups:
            raise invalid("optimizer", "an optimizer with a non-empty param_groups list", optimizer)
        check(
            "schedules", schedules, InstanceOf(Mapping, "a non-empty mapping key -> driver", bool)
        )
        n = len(groups)
        slots: list[_Slot] = []
        seen: set[tuple[str, int | None]] = set()
        for key, spec in schedules.items():
            name, index = parse_key(key)
            if (name, index) in seen:
                raise ValueError(f"schedule key {key!r} is given twice")
            seen.add((name, index))
            slots += _slots(groups, key, name, index, spec)
        rules: list[LossRule] = []
        for slot in slots:
            if isinstance(slot.driver, LossRule) and not any(slot.driver is r for r in rules):
                rules.append(slot.driver)
        for rule in rules:
            rule.check_groups(sum(1 for s in slots if s.driver is rule))
        for rule in rules:  # a rule reused from an earlier run must not carry its losses over
            rule.reset()
        self.optimizer = optimizer
        self.keys = list(schedules)
        self._slots = slots
        self._rules = rules
        self._n_groups = n
        self.last_step = 0
        self.last_rejected = False
        self._snapshot: tuple[list[torch.Tensor], dict[Any, Any], list[dict[str, Any]]] | None
        self._snapshot = None
        self._apply({i: _evaluate(s.driver, 0, s.base) for i, s in self._schedule_slots()})
        self._take_snapshot()

    # -- helpers ----------------------------------------------------------------------------

    def _schedule_slots(self) -> list[tuple[int, _Slot]]:
        return [(i, s) for i, s in enumerate(self._slots) if isinstance(s.driver, Schedule)]

    def _read(self, slot: _Slot) -> Value:
        group = self.optimizer.param_groups[slot.group]
        where = f"param_groups[{slot.group}][{slot.key!r}]"
        return _to_value(_raw(group, slot.name, slot.index), where)

    def _apply(self, values: Mapping[int, Value]) -> None:
        groups = self.optimizer.param_groups
        for i, v in values.items():
            s = self._slots[i]
            _write(groups[s.group], s.name, s.index, v)

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _take_snapshot(self) -> None:
        # what a rejected step must put back: parameters, optimizer state (keyed by parameter)
        # and the group entries other than params (e.g. a per-group step counter)
        if not any(getattr(r, "reject", False) for r in self._rules):
            self._snapshot = None
            return
        params = [p.detach().clone() for p in self._params()]
        state = {k: copy.deepcopy(v) for k, v in getattr(self.optimizer, "state", {}).items()}
        entries = [
            {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            for g in self.optimizer.param_groups
        ]
        self._snapshot = (params, state, entries)

    def _restore_snapshot(self) -> None:
        assert self._snapshot is not None
        params, state, entries = self._snapshot
        with torch.no_grad():
            for p, saved in zip(self._params(), params, strict=True):
                p.copy_(saved)
            for group, saved_entries in zip(self.optimizer.param_groups, entries, strict=True):
                for k, v in saved_entries.items():
                    cur = group.get(k)
                    if (
                        isinstance(cur, torch.Tensor)
                        and isinstance(v, torch.Tensor)
                        and cur.shape == v.shape
                    ):
                        cur.copy_(v)  # keep tensor identity (in-place hyperparameters)
                    else:
                        group[k] = copy.deepcopy(v)
        opt_state = getattr(self.optimizer, "state", None)
        if opt_state is not None:
            opt_state.clear()
            for k, v in state.items():
                opt_state[k] = copy.deepcopy(v)

    def _check_groups(self) -> None:
        n = len(self.optimizer.param_groups)
        if n != self._n_groups:
            raise ValueError(
                f"the optimizer has {n} param groups but the scheduler was built for "
                f"{self._n_groups}; build a new Scheduler after add_param_group"
            )

    # -- public API -------------------------------------------------------------------------

    def step(self, loss: Any = None) -> None:
        """Advance one step and write the new values into the param groups.

        Args:
            loss: the monitored number, required when a loss rule is scheduled (a float or a
                0-d tensor). With a rejecting `BoldDriver` it must be the loss at the current
                parameters (evaluated after ``optimizer.step()``).
        """
        self._check_groups()
        if self._rules:
            loss = check_loss(loss)
        self.last_step += 1
        new: dict[int, Value] = {
            i: _evaluate(s.driver, self.last_step, s.base) for i, s in self._schedule_slots()
        }
        accepted = True
        for rule in self._rules:
            idx = [i for i, s in enumerate(self._slots) if s.driver is rule]
            out = rule.step(loss, [self._read(self._slots[i]) for i in idx])
            new.update(zip(idx, out, strict=True))
            accepted = accepted and rule.accepted
        self.last_rejected = not accepted
        if not accepted:
            self._restore_snapshot()
        self._apply(new)
        if accepted:
            self._take_snapshot()

    def value(self, key: str, step: int | None = None) -> list[Value | None]:
        """Per group, the value of `key` at `step` (default: now); None where not driven.

        For a loss rule only the current value is known (`step` must be None or `last_step`).
        """
        s_req = self.last_step if step is None else check("step", step, NONNEGATIVE_INT)
        if key not in self.keys:
            raise KeyError(f"key {key!r} is not scheduled; scheduled keys: {', '.join(self.keys)}")
        out: list[Value | None] = [None] * self._n_groups
        for s in self._slots:
            if s.key != key:
                continue
            if isinstance(s.driver, Schedule):
                out[s.group] = _evaluate(s.driver, s_req, s.base)
            elif s_req == self.last_step:
                out[s.group] = self._read(s)
            else:
                raise ValueError(
                    f"step must be the current step {self.last_step} for the loss-rule key "
                    f"{key!r}, got {step!r}"
                )
        return out

    def get_last_lr(self) -> list[Value | None]:
        """The scheduled ``lr`` per group (as torch's ``get_last_lr``); KeyError if unscheduled."""
        return self.value("lr")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: step, bases, current values and loss-rule states.

        Plain Python values only (``torch.save``/``json`` friendly).
        """
        return {
            "last_step": self.last_step,
            "last_rejected": self.last_rejected,
            "keys": list(self.keys),
            "n_groups": self._n_groups,
            "base": [copy.copy(s.base) for s in self._slots],
            "values": [self._read(s) for s in self._slots],
            "slots": [[s.key, s.group] for s in self._slots],
            "rules": [copy.deepcopy(r.state_dict()) for r in self._rules],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from `state_dict()`: restores the step, bases and rule states, and writes the
        saved values into the param groups. The scheduler must be built with the same keys,
        group layout and kinds of drivers. ValueError before any change if not."""
        required = {
            "last_step",
            "last_rejected",
            "keys",
            "n_groups",
            "base",
            "values",
            "slots",
            "rules",
        }
        if not isinstance(state, Mapping) or set(state) != required:
            got = sorted(state) if isinstance(state, Mapping) else state
            raise ValueError(
                f"state must be a Scheduler.state_dict() with keys {sorted(required)}, got {got!r}"
            )
        mine = [[s.key, s.group] for s in self._slots]
        if list(state["keys"]) != self.keys or [list(x) for x in state["slots"]] != mine:
            raise ValueError(
                f"state was saved for keys {state['keys']!r} on slots {state['slots']!r}, "
                f"this scheduler drives keys {self.keys!r} on slots {mine!r}"
            )
        if state["n_groups"] != self._n_groups or len(self._rules) != len(state["rules"]):
            raise ValueError(
                f"state has {state['n_groups']} groups and {len(state['rules'])} loss rules, this "
                f"scheduler {self._n_groups} groups and {len(self._rules)} loss rules"
            )
        self._check_groups()
        last_step = check("last_step", state["last_step"], NONNEGATIVE_INT)
        for rule, rs in zip(self._rules, state["rules"], strict=True):
            rule.load_state_dict(copy.deepcopy(rs))
        for s, b in zip(self._slots, state["base"], strict=True):
            s.base = copy.copy(b)
        self.last_step = last_step
        self.last_rejected = bool(state["last_rejected"])
        self._apply(dict(enumerate(copy.deepcopy(state["values"]))))
        self._take_snapshot()

    def __repr__(self) -> str:
        parts = []
        for key in self.keys:
            drivers = [s.driver for s in self._slots if s.key == key]
            uniq = {id(d): d for d in drivers}
            if len(uniq) == 1:
                shown = repr(drivers[0])
            else:
                shown = "[" + ", ".join(map(repr, drivers)) + "]"
            parts.append(f"{key!r}: {shown}")
        return f"Scheduler(step={self.last_step}, {{{', '.join(parts)}}})"
