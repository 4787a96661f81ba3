"""A step whose schedule moves a number costs what a step at constant values costs: once values
inside their specs' open bounds passed every check, the steady step admits the next ones in one
call (:class:`descentlab.optim.hyper.Guard`), skipping only what cannot change inside those
bounds -- declared by the rules (``Relation.inside``, ``Rule.signature_inside``) and checked
here on values drawn inside. Speed is measured in ``benchmarks/step.py --schedule``; here the
Python calls are counted."""

from __future__ import annotations

import gc
import math
import sys

import pytest
import torch
from test_scheduled_step import _fused_names, _grads, _params

from descentlab import optim
from descentlab.optim.form import FormRule
from descentlab.optim.hyperspec import Flag, Real, Relation, declare


def _scheduled(group: dict, key: str, base: object, i: int) -> None:
    """benchmarks/step.py's schedules: lr a cosine down to 1 %, beta1 or momentum to 80 %."""
    c = (1 + math.cos(math.pi * (i % 100) / 100)) / 2
    if key == "lr":
        group["lr"] = base * (0.01 + 0.99 * c)
    elif key == "betas":
        group["betas"] = (base[0] * (0.8 + 0.2 * c), *base[1:])
    else:
        group["momentum"] = base * (0.8 + 0.2 * c)


def _python_calls(fn) -> int:
    """The Python functions entered while ``fn`` runs (C functions aside), with the garbage
    collector held off: a collection during ``fn`` runs other objects' finalizers and weakref
    callbacks, Python calls that are not the step's (seen under load: 83 calls for 81). (Held
    off, not run first: a full collection of a suite worker's heap costs about half a
    second.)"""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        count += event == "call"

    enabled = gc.isenabled()
    gc.disable()
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
        if enabled:
            gc.enable()
    return count - 1  # fn's own frame


def _cases() -> list[tuple[str, str]]:
    """(optimizer, key) of benchmarks/step.py's ``--schedule lr`` and ``--schedule momentum``
    (betas where the optimizer has them, else a nonzero momentum)."""
    out = []
    for name in _fused_names():
        group = optim.get(name)(_params()).param_groups[0]
        out.append((name, "lr"))
        if "betas" in group:
            out.append((name, "betas"))
        elif group.get("momentum"):
            out.append((name, "momentum"))
    return out


_CASES = _cases()


@pytest.mark.parametrize(("name", "key"), _CASES, ids=[f"{n}-{k}" for n, k in _CASES])
def test_a_scheduled_step_makes_one_python_call_more_than_a_constant_one(name, key):
    """Every fused optimizer, lr or its betas (else momentum) moved before each step: the
    steady step enters at most one Python function more than at constant values (the guard's
    test; no search for the moved keys, no check of each, no signature of the kernel), and
    its parameters are those of the general step's, bit for bit."""
    params, ref_params = _params(), _params()
    opt = optim.get(name)(params, fused=True)
    ref = optim.get(name)(ref_params, fused=True)
    group = opt.param_groups[0]
    base = group[key]
    calls = {}
    for i in range(8):  # 0-3: the steady state, the moved keys found, the guard armed
        at = 3 if i == 4 else i  # step 4: the value of step 3 again (a constant step)
        for ps, o in ((params, opt), (ref_params, ref)):
            _scheduled(o.param_groups[0], key, base, at)
            _grads(ps, i)
        calls[i] = _python_calls(opt.step)
        ref._fused.steady.clear()  # the reference takes the general (validated) step
        ref.step()
    assert opt._fused.steady[0].guard is not None, "no guard armed"
    moved = [calls[i] for i in range(5, 8)]
    assert max(moved) <= calls[4] + 1, (calls[4], moved)
    for a, b in zip(params, ref_params, strict=True):
        assert torch.equal(a, b)


def _beside_general(values: list, key: str, **kw) -> tuple[optim.Optimizer, list[bool]]:
    """SGD stepped with ``group[key]`` at each of ``values`` in turn, beside a reference that
    always takes the general step (the same parameters, bit for bit, asserted); the optimizer
    and whether a guard was armed after each step."""
    params, ref_params = _params(), _params()
    opt = optim.SGD(params, **kw, fused=True)
    ref = optim.SGD(ref_params, **kw, fused=True)
    armed = []
    for i, v in enumerate(values):
        for ps, o in ((params, opt), (ref_params, ref)):
            o.param_groups[0][key] = v
            _grads(ps, i)
        opt.step()
        ref._fused.steady.clear()
        ref.step()
        ctx = opt._fused.steady.get(0)
        armed.append(ctx is not None and ctx.guard is not None)
    for a, b in zip(params, ref_params, strict=True):
        assert torch.equal(a, b)
    return opt, armed


def test_a_warmup_from_zero_arms_the_guard_once_inside_and_stays_right():
    """A linear warm-up starts at lr = 0, outside lr's open bounds (0, inf): those steps take
    the whole check; from the first value inside, the guard is armed. A value on the bound
    later (0 again) is checked whole, and the run matches the general path's bit for bit."""
    lrs = [0.0, 0.0, 1e-3, 2e-3, 3e-3, 0.0, 4e-3, 5e-3]
    _, armed = _beside_general(lrs, "lr", lr=1e-2, momentum=0.9)
    assert armed == [False, False, True, True, True, True, True, True]


def test_a_momentum_moved_to_zero_leaves_the_armed_guard_for_the_general_step():
    """0 is momentum's lower bound, where SGD's kernel changes (no buffer): the armed guard
    sends it to the whole test, which finds the new structure."""
    momenta = [0.9, 0.9, 0.8, 0.7, 0.0, 0.0, 0.5]
    opt, armed = _beside_general(momenta, "momentum", lr=1e-2, momentum=0.9)
    assert armed[3]
    assert len([p for p in opt._fused.plans.values() if p is not None]) == 2


def test_a_bad_value_is_refused_with_the_guard_armed():
    """NaN, a value past the bound, a wrong type: outside the guard, the whole check's words,
    before anything changes."""
    params = _params()
    opt = optim.AdamW(params, lr=1e-2, fused=True)
    for i in range(5):
        opt.param_groups[0]["betas"] = (0.9 - 0.01 * i, 0.999)
        _grads(params, i)
        opt.step()
    assert opt._fused.steady[0].guard is not None
    before = [p.detach().clone() for p in params]
    for bad, words in [
        ((float("nan"), 0.999), r"betas\[0\] must be a number in \[0\.0, 1\.0\)"),
        ((0.8, 1.0), r"Invalid beta parameter at index 1: 1\.0"),
        ((0.8, 0.99, 0.9), r"betas must be a pair"),
        ((0.8, "0.99"), r"betas\[1\] must be a number"),
    ]:
        opt.param_groups[0]["betas"] = bad
        with pytest.raises((ValueError, TypeError), match=words):
            opt.step()
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p, b)


def _ordered(hyper) -> None:
    if not hyper["a"] < hyper["b"]:
        raise ValueError(f"a must be below b, got a={hyper['a']}, b={hyper['b']}")


class _Shift(FormRule):
    """A rule whose relation between two numbers can change inside their bounds, and whose
    kernel never changes: the guard still runs its relation at every step."""

    name = "shift"
    role = "test"
    needs_step = False
    checks = declare(a=Real(0.0, 1.0), b=Real(0.0, 1.0))

    def __init__(self, a: float = 0.2, b: float = 0.5) -> None:
        super().__init__(a=a, b=b)

    relations = (Relation(("a", "b"), _ordered),)

    def form(self, f, hyper) -> None:
        f.out(f.g * f.coef("a", lambda h, t: h["a"], uses=("a",)))


def test_a_relation_not_declared_constant_inside_runs_at_every_step():
    params = _params()
    chain = optim.chain(_Shift(), optim.scale_by_lr(lr=1e-2))
    opt = optim.Optimizer(params, chain, fused=True)
    for i in range(5):
        opt.param_groups[0]["a"] = 0.1 + 0.05 * i
        _grads(params, i)
        opt.step()
    guard = opt._fused.steady[0].guard
    assert guard is not None and _ordered in guard.checks
    before = [p.detach().clone() for p in params]
    opt.param_groups[0]["a"] = 0.7  # inside a's bounds, above b
    with pytest.raises(ValueError, match=r"param group 0: a must be below b, got a=0\.7"):
        opt.step()
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p, b)


def test_a_relation_declares_inside_only_keys_it_reads():
    with pytest.raises(ValueError, match=r"Relation: inside=\('c',\) must be among keys"):
        Relation(("a", "b"), _ordered, inside=("c",))


def _inside(bounds: tuple[float, float]) -> list[float]:
    """Values strictly inside ``bounds``: next to each end, and between them."""
    lo, hi = bounds
    if math.isinf(lo) and math.isinf(hi):
        return [-1e300, -1.0, 0.0, 1e-3, 1.0, 1e300]
    if math.isinf(hi):
        return [math.nextafter(lo, hi), lo + 1e-3, lo + 1.0, 1e300]
    if math.isinf(lo):
        return [-1e300, hi - 1.0, hi - 1e-3, math.nextafter(hi, lo)]
    return [math.nextafter(lo, hi), lo + 0.37 * (hi - lo), math.nextafter(hi, lo)]


def _declared() -> list[tuple[str, optim.Rule]]:
    """Every rule of every registered optimizer's chain that declares a key constant inside
    its bounds (for its signature or a relation)."""
    out = []
    for r in optim.records():
        try:
            opt = r.factory(_params())
        except (ValueError, TypeError):
            continue
        for part in opt.rule.rules:
            if part.signature_inside or any(rel.inside for rel in part.relations):
                out.append((f"{r.name}-{part.name}", part, opt.param_groups[0]))
    return out


_DECLARED = _declared()


def test_the_declarations_are_found():
    names = {part.name for _, part, _ in _DECLARED}
    assert {"trace", "add_decayed_weights", "schedule_free_adamw"} <= names


@pytest.mark.parametrize(("label", "part", "group"), _DECLARED, ids=[d[0] for d in _DECLARED])
def test_a_declared_key_keeps_signature_and_relations_inside_its_bounds(label, part, group):
    """What the guard skips is what cannot change: for every key a rule declares, the rule's
    signature, and each relation's outcome, are the same at values drawn inside the key's
    open bounds, the other values at the group's defaults and with each flag flipped."""
    base = {k: v for k, v in group.items() if k not in ("params", "step", "initial_lr")}
    variants = [base] + [
        {**base, k: not base[k]}
        for k, spec in part.checks.items()
        if isinstance(spec, Flag) and k in base
    ]
    keys = set(part.signature_inside) | {k for rel in part.relations for k in rel.inside}
    for key in keys:
        bounds = part.checks[key].value_bounds()
        assert bounds is not None and type(bounds[0]) is float, (label, key)
        for hyper in variants:
            at = [{**hyper, key: v} for v in _inside(bounds)]
            if key in part.signature_inside:
                assert len({part.fuse_signature(h) for h in at}) == 1, (label, key, hyper)
            for rel in part.relations:
                if key not in rel.inside:
                    continue
                outcomes = set()
                for h in at:
                    try:
                        rel.test(h)
                        outcomes.add("passes")
                    except ValueError:
                        outcomes.add("refused")
                assert len(outcomes) == 1, (label, key, hyper, outcomes)
