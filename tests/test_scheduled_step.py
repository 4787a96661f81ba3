"""A schedule that changes a number every step (torch's LRScheduler, cycling momentum or betas)
keeps the fused backend's steady step: the changed value is checked, and nothing else is
re-validated, re-planned or re-compiled. Speed is measured in
``benchmarks/step.py --schedule``; here the work done is counted."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from descentlab import optim
from descentlab.optim import fused as F

# (optimizer, constructor options, hyperparameter, its value at step i)
CHANGES = [
    ("adamw", dict(lr=1e-2), "lr", lambda i: 1e-2 * (1 + math.cos(i / 3)) / 2 + 1e-4),
    ("adam", dict(lr=1e-2), "betas", lambda i: (0.85 + 0.01 * (i % 5), 0.99 - 1e-3 * (i % 4))),
    ("sgd", dict(lr=1e-2, momentum=0.9), "momentum", lambda i: 0.5 + 0.04 * i),
    ("sgd", dict(lr=1e-2, momentum=0.9, nesterov=True), "lr", lambda i: 1e-2 / (1 + i)),
    ("rmsprop", dict(lr=1e-2), "alpha", lambda i: 0.9 + 0.005 * i),
    ("adagrad", dict(lr=1e-2), "lr", lambda i: 1e-2 / (1 + i)),
    ("adadelta", dict(lr=1.0), "rho", lambda i: 0.9 - 0.01 * i),
    # a per-step prepare before the kernel: NAdam's running product, ASGD's rates,
    # Schedule-Free's averaging weights
    ("nadam", dict(lr=1e-2), "lr", lambda i: 1e-2 / (1 + i)),
    ("nadam", dict(lr=1e-2), "momentum_decay", lambda i: 4e-3 * (1 + 0.1 * i)),
    ("asgd", dict(lr=1e-2, t0=4), "lr", lambda i: 1e-2 * (1 + math.cos(i / 3)) / 2 + 1e-4),
    ("sfadamw", dict(lr=1e-2), "lr", lambda i: 1e-2 * min(1.0, (i + 1) / 6)),
]


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(n, generator=g)) for n in (300, 70, 5)]


def _grads(params: list[torch.Tensor], i: int) -> None:
    g = torch.Generator().manual_seed(100 + i)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


class _Spy:
    """Counts the general step and every whole-group validation of ``opt``."""

    def __init__(self, opt: optim.Optimizer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.general = self.validate = 0
        step = opt._step

        def general(closure=None):
            self.general += 1
            return step(closure)

        monkeypatch.setattr(opt, "_step", general)
        for rule in opt.rule.rules:
            check = rule.validate

            def validate(hyper, check=check):
                self.validate += 1
                return check(hyper)

            monkeypatch.setattr(rule, "validate", validate)
        chain_validate = opt.rule.validate

        def whole(hyper):
            self.validate += 1
            return chain_validate(hyper)

        monkeypatch.setattr(opt.rule, "validate", whole)


@pytest.mark.parametrize(
    ("name", "kw", "key", "value"), CHANGES, ids=[f"{c[0]}-{c[2]}" for c in CHANGES]
)
def test_a_changed_number_costs_a_check_of_it_and_nothing_else(monkeypatch, name, kw, key, value):
    params = _params()
    opt = optim.get(name)(params, **kw, fused=True)
    ref_params = _params()
    ref = optim.get(name)(ref_params, **kw, fused=True)
    for i in range(2):  # reach the steady state
        for ps, o in ((params, opt), (ref_params, ref)):
            _grads(ps, i)
            o.step()
    compiled = F.compile_count()
    spy = _Spy(opt, monkeypatch)
    for i in range(2, 12):
        for ps, o in ((params, opt), (ref_params, ref)):
            o.param_groups[0][key] = value(i)
            _grads(ps, i)
        opt.step()
        ref._fused.steady.clear()  # the reference takes the general (validated, planned) step
        ref.step()
    assert spy.general == 0, "a changed number sent the step down the general path"
    assert spy.validate == 0, "a changed number re-validated the whole group"
    assert F.compile_count() == compiled
    assert len([p for p in opt._fused.plans.values() if p is not None]) == 1
    for a, b in zip(params, ref_params, strict=True):
        assert torch.equal(a, b)
    for p, q in zip(params, ref_params, strict=True):
        for k, v in opt.state[p].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(ref.state[q][k])), k


@pytest.mark.parametrize(
    ("name", "kw", "key", "value"), CHANGES, ids=[f"{c[0]}-{c[2]}" for c in CHANGES]
)
def test_the_checks_of_a_scheduled_key_are_found_once(monkeypatch, name, kw, key, value):
    """The steady step looks up which checks read a changed key (and which parts' kernels
    depend on it) when the set of changed keys is new, not before every step."""
    params = _params()
    opt = optim.get(name)(params, **kw, fused=True)
    for i in range(2):
        _grads(params, i)
        opt.step()
    found = []
    lookup = opt.rule.changed_checks

    def changed_checks(keys):
        found.append(keys)
        return lookup(keys)

    monkeypatch.setattr(opt.rule, "changed_checks", changed_checks)
    for i in range(2, 12):
        opt.param_groups[0][key] = value(i)
        _grads(params, i)
        opt.step()
    assert found == [frozenset({key})]


@pytest.mark.parametrize(
    ("key", "bad", "message"),
    [
        (
            "lr",
            -1.0,
            r"param group 0: Invalid learning rate: -1\.0 "
            r"\(lr must be a number >= 0\.0, got -1\.0\)",
        ),  # torch's words first
        (
            "betas",
            (0.9, 1.5),
            r"param group 0: Invalid beta parameter at index 1: 1\.5 "
            r"\(betas\[1\] must be a number in \[0.0, 1.0\)",
        ),
        ("eps", float("nan"), "param group 0: eps must be a number >= 0.0, got nan"),
        ("betas", (0.9,), r"param group 0: betas must be a pair \(beta1, beta2\)"),
    ],
)
@pytest.mark.parametrize("after_good_changes", [0, 3], ids=["first-change", "after-changes"])
def test_a_bad_changed_value_is_refused_before_anything_changes(
    key, bad, message, after_good_changes
):
    """Refused as the first change of its key, and after good changes of the same key (steady
    steps that took a schedule's values)."""
    params = _params()
    opt = optim.AdamW(params, lr=1e-2, fused=True)
    good = opt.param_groups[0][key]
    steps = 3 + after_good_changes
    for i in range(steps):
        if i >= 3:  # a schedule's good values of the same key
            opt.param_groups[0][key] = (
                tuple(b * (1 - 0.01 * i) for b in good) if key == "betas" else good * (1 + i)
            )
        _grads(params, i)
        opt.step()
    before = [p.detach().clone() for p in params]
    state = {k: v.clone() for k, v in opt.state[params[0]].items()}
    opt.param_groups[0][key] = bad
    with pytest.raises(ValueError, match=message):
        opt.step()
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p, b)
    for k, v in opt.state[params[0]].items():
        assert torch.equal(v, state[k]), k
    assert opt.param_groups[0]["step"] == steps


@pytest.mark.parametrize("before", [(), (0.85, 0.8)], ids=["first-change", "after-changes"])
def test_a_structural_change_leaves_the_steady_step_and_stays_right(monkeypatch, before):
    """momentum 0.9 -> 0 changes SGD's kernel (a zero momentum keeps no buffer): the step
    takes the general path and matches a run that never was steady -- also after a schedule
    changed momentum within the kernel (steady steps that took a schedule's values)."""
    params, ref_params = _params(), _params()
    opt = optim.SGD(params, lr=1e-2, momentum=0.9, fused=True)
    ref = optim.SGD(ref_params, lr=1e-2, momentum=0.9, fused=True)
    for i in range(3):
        for ps, o in ((params, opt), (ref_params, ref)):
            _grads(ps, i)
            ref._fused.steady.clear()
            o.step()
    for i, m in enumerate(before, start=3):
        for ps, o in ((params, opt), (ref_params, ref)):
            o.param_groups[0]["momentum"] = m
            _grads(ps, i)
            ref._fused.steady.clear()
            o.step()
    spy = _Spy(opt, monkeypatch)
    for i in range(3 + len(before), 6 + len(before)):
        for ps, o in ((params, opt), (ref_params, ref)):
            o.param_groups[0]["momentum"] = 0.0
            _grads(ps, i)
            ref._fused.steady.clear()
            o.step()
    assert spy.general >= 1
    for a, b in zip(params, ref_params, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_the_general_step_also_checks_only_the_changed_value(monkeypatch, fused):
    """A chain whose fused step is never steady (the noise drawn before every step is an
    array of its kernel's), and NAdam on the eager backend, which has no steady step: a
    changed lr still costs no whole-group validation, and a bad one is refused."""
    params = _params()
    if fused:
        noisy = optim.chain(optim.add_noise(noise_eta=0.1), optim.trace(momentum=0.9),
                            optim.scale_by_lr(lr=1e-2))  # fmt: skip
        opt = optim.Optimizer(params, noisy, fused=True)
    else:
        opt = optim.NAdam(params, lr=1e-2, fused=False)
    _grads(params, 0)
    opt.step()
    spy = _Spy(opt, monkeypatch)
    for i in range(1, 5):
        opt.param_groups[0]["lr"] = 1e-2 / (1 + i)
        _grads(params, i)
        opt.step()
    assert spy.general == 4 and spy.validate == 0
    opt.param_groups[0]["lr"] = -0.5
    with pytest.raises(
        ValueError,
        match=r"param group 0: Invalid learning rate: -0\.5 "
        r"\(lr must be a number >= 0\.0, got -0\.5\)",
    ):
        opt.step()


def _fused_names() -> list[str]:
    """Every registered optimizer whose fused step runs on plain parameters (drawn from the
    registry: a new one is covered with no table to edit)."""
    names = []
    for r in optim.records():
        try:
            r.factory(_params(), fused=True).step()
        except (ValueError, TypeError):  # a closure needed, no fused form
            continue
        names.append(r.name)
    return names


@pytest.mark.parametrize("missed", [None, 0, 1], ids=["together", "first-late", "skips-one"])
@pytest.mark.parametrize("name", _fused_names())
def test_every_fused_optimizer_takes_the_steady_step(monkeypatch, name, missed):
    """From the third step at constant hyperparameters every registered optimizer with a fused
    step takes the steady step -- also those with work before the kernel at every step (NAdam's
    running product, ASGD's rates, Schedule-Free's weights: run there too), and where one
    parameter had no gradient at step ``missed``: its step count stays one behind the
    others' from then on. Missed at the first step (an unfrozen layer), its first gradient
    makes its state, and the steady step comes at the step after the next; missed at the
    second, the steady step comes at the step after its gradient came back. Its parameters
    and state are those of the general path's step, bit for bit."""
    params, ref_params = _params(), _params()
    opt = optim.get(name)(params, fused=True)
    ref = optim.get(name)(ref_params, fused=True)
    warm = 2 if missed is None else 3
    for i in range(warm):
        for ps, o in ((params, opt), (ref_params, ref)):
            _grads(ps, i)
            if i == missed:
                ps[1].grad = None
            o.step()
    spy = _Spy(opt, monkeypatch)
    for i in range(warm, 8):
        for ps in (params, ref_params):
            _grads(ps, i)
        opt.step()
        ref._fused.steady.clear()
        ref.step()
    assert spy.general == 0, f"{name}: the step went down the general path"
    for a, b in zip(params, ref_params, strict=True):
        assert torch.equal(a, b)
    for p, q in zip(params, ref_params, strict=True):
        assert opt.state[p].keys() == ref.state[q].keys()
        for k, v in opt.state[p].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(ref.state[q][k])), k


class _Ops(TorchDispatchMode):
    """The torch operations dispatched while it is on."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", _fused_names())
def test_the_steady_step_runs_no_torch_operation_per_tensor(name, monkeypatch):
    """The steady step hands the kernel its pointers and numbers without a torch operation on
    each tensor (each costs microseconds; NAdam's, ASGD's and Schedule-Free's per-tensor
    numbers are read and written through NumPy). What it dispatches -- NumPy's views of
    those numbers, the profiler's record of ``step`` -- is no arithmetic and does not grow
    with the number of tensors. Nor does it compare a tensor with ``==``: ``None in
    tensors`` does, fails to dispatch and costs ~20 us a tensor, unseen by the dispatch
    mode (ASGD's steady step once took 7x its time that way)."""
    compared: list[str] = []
    for op in ("__eq__", "__ne__"):
        real = getattr(torch.Tensor, op)

        def counted(self, other, _real=real, _op=op):
            compared.append(f"{_op} {type(other).__name__}")
            return _real(self, other)

        monkeypatch.setattr(torch.Tensor, op, counted)
    counts = []
    for n in (3, 12):
        params = [p for _ in range(n // 3) for p in _params()]
        opt = optim.get(name)(params, fused=True)
        for i in range(3):
            _grads(params, i)
            opt.step()
        _grads(params, 3)
        compared.clear()
        with _Ops() as seen:
            opt.step()
        assert not compared, compared
        assert set(seen.ops) <= {
            "aten.detach.default",
            "profiler._record_function_enter_new.default",
            "profiler._record_function_exit._RecordFunction",
        }, seen.ops
        counts.append(len(seen.ops))
    assert counts[0] == counts[1], counts


def _changed_reference(hyper: dict, last: dict) -> frozenset[str] | None:
    """What changed, written from the definition: the same keys, and every differing value
    a plain number (or a tuple of them) before and after."""

    def plain_number(v) -> bool:
        if type(v) is tuple:
            return all(type(x) in (int, float) for x in v)
        return type(v) in (int, float)

    if hyper.keys() != last.keys():
        return None
    keys = [k for k in hyper if hyper[k] != last[k]]
    if not all(plain_number(hyper[k]) and plain_number(last[k]) for k in keys):
        return None
    return frozenset(keys)


_LAST = {"lr": 0.01, "betas": (0.9, 0.99), "eps": 1e-8, "amsgrad": False, "wd": 0}
# (the new values, the guess from the step before)
_CHANGED_CASES = [
    ({}, frozenset()),
    ({"lr": 0.02}, frozenset()),
    ({"lr": 0.02}, frozenset({"lr"})),
    ({"lr": 0.01}, frozenset({"lr"})),  # the guessed key kept its value
    ({"lr": 0.02, "wd": 0.1}, frozenset({"lr"})),  # one more key moved
    ({"wd": 0.1}, frozenset({"lr"})),
    ({"betas": (0.8, 0.99)}, frozenset({"betas"})),
    ({"betas": (0.8,)}, frozenset({"betas"})),  # a shorter tuple: still numbers
    ({"lr": torch.tensor(0.02)}, frozenset({"lr"})),  # a tensor is no plain number
    ({"lr": True}, frozenset({"lr"})),  # nor is a flag
    ({"lr": None}, frozenset({"lr"})),
    ({"amsgrad": True}, frozenset()),
    ({"amsgrad": True}, frozenset({"amsgrad"})),
    ({"lr": "0.02"}, frozenset({"lr"})),
]


@pytest.mark.parametrize(("new", "guess"), _CHANGED_CASES)
def test_the_changed_keys_are_found_with_or_without_the_last_steps_guess(new, guess):
    from descentlab.optim.hyper import changed_numbers

    hyper = {**_LAST, **new}
    want = _changed_reference(hyper, _LAST)
    got = changed_numbers(hyper, _LAST, guess)
    if want is None:
        assert got is None
    else:  # a guessed key whose value came back is checked again: a superset, never less
        assert got is not None and want <= got <= want | guess


@pytest.mark.parametrize(
    "other", [{"zz": 1.0}, {"lr": 0.02, "zz": 1.0}], ids=["key-added", "key-swapped"]
)
def test_a_key_that_came_or_went_is_no_schedule(other):
    from descentlab.optim.hyper import changed_numbers

    hyper = {**_LAST, **other}
    if "zz" in hyper and len(hyper) > len(_LAST):
        hyper.pop("eps")  # the same number of keys, one of them new
    assert changed_numbers(hyper, _LAST, frozenset({"lr"})) is None
    assert changed_numbers(hyper, _LAST) is None


def test_a_bad_value_beside_the_scheduled_one_is_refused():
    """A schedule moves lr at every step; a bad weight_decay set at the same step is still
    checked (the steady step's guess is the scheduled key only)."""
    params = _params()
    opt = optim.AdamW(params, lr=1e-2, fused=True)
    for i in range(5):
        opt.param_groups[0]["lr"] = 1e-2 / (1 + i)
        _grads(params, i)
        opt.step()
    assert opt._fused.steady[0].moved.keys == frozenset({"lr"})
    before = [p.detach().clone() for p in params]
    opt.param_groups[0]["lr"] = 1e-3
    opt.param_groups[0]["weight_decay"] = -1.0
    with pytest.raises(ValueError, match=r"param group 0: Invalid weight_decay value: -1\.0"):
        opt.step()
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p, b)


def test_a_scheduled_tuple_costs_comparisons_only(monkeypatch):
    """A schedule of betas (a tuple) costs what one of lr does: after the first change, no
    search for the changed keys (the last step's, confirmed in a few C calls) and no whole
    check of the pair (each float compared with its entry's bounds); a beta out of range
    still gets the whole check and its words."""
    from descentlab.optim import fusedpath, hyperspec

    params = _params()
    opt = optim.Adam(params, lr=1e-2, fused=True)
    searched, checked = [], []
    search, check = fusedpath.changed_numbers, hyperspec.Pair.check
    monkeypatch.setattr(fusedpath, "changed_numbers", lambda *a: searched.append(1) or search(*a))
    monkeypatch.setattr(hyperspec.Pair, "check", lambda *a: checked.append(1) or check(*a))
    for i in range(8):
        opt.param_groups[0]["betas"] = (0.9 - 0.01 * i, 0.999)
        _grads(params, i)
        opt.step()
    assert opt._fused.steady[0].moved.keys == frozenset({"betas"})
    assert len(searched) == 1  # the first change only
    assert not checked  # checked when built (before the spy), none per scheduled step
    opt.param_groups[0]["betas"] = (1.0, 0.999)
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 0: 1\.0"):
        opt.step()
