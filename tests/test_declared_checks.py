"""Refusals generated from the rules' declared hyperparameter specs
(:mod:`descentlab.optim.hyperspec`): for every registered optimizer, every declared number is
refused outside its range -- at construction and when a schedule sets it -- with one error
naming it and the value, before anything changes. No table here: adding a rule with a
declaration adds its cases."""

from __future__ import annotations

import math
import re

import pytest
import torch

from descentlab import optim
from descentlab.optim import hyperspec as hs


def _cases() -> list[tuple[str, str, object]]:
    out = []
    for rec in optim.records():
        probe = rec.factory([torch.nn.Parameter(torch.zeros(2))], fused=False)
        group = probe.param_groups[0]
        for rule in probe.rule.rules:
            for key, spec in rule.checks.items():
                if key not in group or callable(group[key]):
                    continue
                if isinstance(spec, hs.Real):
                    out += [(rec.name, key, bad) for bad in spec.bad_values()]
                elif isinstance(spec, hs.Pair) and isinstance(spec.first, hs.Real):
                    good = group[key]
                    out += [(rec.name, key, (bad, good[1])) for bad in spec.first.bad_values()]
                elif isinstance(spec, hs.Flag):
                    out.append((rec.name, key, "yes"))
    return out


CASES = _cases()


@pytest.mark.filterwarnings("ignore:descentlab.*no fused form")
@pytest.mark.parametrize("rec", optim.records(), ids=lambda r: r.name)
def test_every_hyperparameter_is_declared_and_no_rule_validates_by_hand(rec):
    """One declaration per rule: errors, their words for the docs and the refusal tests above
    all come from ``checks`` (and ``relations``); a rule that overrode ``validate`` would check
    things no declaration shows."""
    probe = rec.factory([torch.nn.Parameter(torch.zeros(2))], fused=False)
    for rule in probe.rule.rules:
        assert type(rule).validate is optim.Rule.validate, type(rule).__name__
        assert set(rule.defaults) <= set(rule.checks), (type(rule).__name__, rule.defaults)
        assert set(hs.describe(rule.checks)) == set(rule.checks)


def test_every_declared_rule_has_cases():
    names = {c[0] for c in CASES}
    assert {"sgd", "adam", "adamw", "lion", "adabelief", "rprop", "asgd"} <= names


@pytest.mark.parametrize(
    ("name", "key", "bad"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES]
)
@pytest.mark.filterwarnings("ignore:descentlab.*no fused form")
def test_a_declared_bad_value_is_refused_naming_it(name, key, bad):
    shown = key if not isinstance(bad, tuple) else f"{key}[0]"
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match=rf"\b{re.escape(shown)} must be"):
        optim.get(name)([{"params": [w], key: bad}], fused=False)
    # a schedule setting it: refused before the parameter or state changes
    opt = optim.get(name)([w])

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    def step():  # without a closure where the optimizer takes none (the steady fused step)
        try:
            w.grad = torch.ones(3)
            return opt.step()
        except ValueError as exc:
            if "closure" not in str(exc):
                raise
            return opt.step(closure)

    for _ in range(2):
        step()
    before = w.detach().clone()
    opt.param_groups[0][key] = bad
    # (torch's words, where torch has them, come first: "param group 0: Invalid ... (key must be")
    with pytest.raises(ValueError, match=rf"param group 0: (.*\()?{re.escape(shown)} must be"):
        step()
    assert torch.equal(w.detach(), before)


def _real_specs() -> list[tuple[str, str, hs.Real]]:
    out = {}
    for rec in optim.records():
        probe = rec.factory([torch.nn.Parameter(torch.zeros(2))], fused=False)
        for rule in probe.rule.rules:
            for key, spec in rule.checks.items():
                for s in (spec.first, spec.second) if isinstance(spec, hs.Pair) else (spec,):
                    if isinstance(s, hs.Real):
                        out[(rule.name, key, s)] = None
    return list(out)


REALS = _real_specs()


def _verdict(fn, *args) -> str:
    try:
        fn(*args)
    except (ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize(("rule", "key", "spec"), REALS, ids=[f"{r}-{k}" for r, k, _ in REALS])
def test_a_scheduled_values_check_says_what_the_whole_check_says(rule, key, spec):
    """The check a scheduled step runs (:meth:`Real.test`, two comparisons for a float well
    inside) accepts and refuses exactly as the full :meth:`Real.check`: at and beside both
    ends, beyond them, NaN, the infinities, an int, a bool, None and a string."""
    values = [0, 1, True, None, "0.1", float("nan"), float("inf"), -float("inf"), 0.5, -0.5]
    for end in (spec.lo, spec.hi):
        if end is not None:
            values += [
                float(end),
                end,
                math.nextafter(end, -math.inf),
                math.nextafter(end, math.inf),
            ]
    values += spec.bad_values()
    test = spec.test(key, rule)
    for v in values:
        assert _verdict(test, {key: v}) == _verdict(spec.check, key, v, rule), v
    assert any(_verdict(spec.check, key, v, rule) != "ok" for v in values)
