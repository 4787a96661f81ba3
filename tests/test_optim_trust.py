"""Trust: the optimizers never silently differ and never lose state (issue 10, items 1, 5, 6, 10).

- ``torch.compile(opt.step)`` keeps the state and gives torch.optim's iterates;
- ``copy.deepcopy`` and a pickle round trip give an optimizer that continues identically;
- a refused step leaves parameters and state exactly as they were, on both backends and for
  every named optimizer (a table of the known refusals here, a property-based run of random
  valid and invalid ``param_groups`` changes below);
- a hyperparameter of the wrong type raises ``TypeError`` as torch's does, naming it, and a
  batched hyperparameter of the wrong length is refused when it is set.
"""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from descentlab import optim

# the named optimizers that have a torch.optim namesake, with a configuration that has state
TORCH_NAMED = {
    "sgd": dict(lr=0.1, momentum=0.9),
    "adagrad": dict(lr=0.1, lr_decay=0.01),
    "adadelta": dict(lr=0.5),
    "rmsprop": dict(lr=0.01, momentum=0.5, centered=True),
    "adam": dict(lr=0.05),
    "adamw": dict(lr=0.05, amsgrad=True),
    "nadam": dict(lr=0.05),
    "radam": dict(lr=0.05),
}
ALL_NAMED = {**TORCH_NAMED, "momentum": dict(lr=0.1), "nesterov": dict(lr=0.1)}
BACKENDS = [False, None]  # eager, and the default (fused where it applies)


def _torch_cls(name: str) -> type[torch.optim.Optimizer]:
    return {
        "sgd": torch.optim.SGD,
        "adagrad": torch.optim.Adagrad,
        "adadelta": torch.optim.Adadelta,
        "rmsprop": torch.optim.RMSprop,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "nadam": torch.optim.NAdam,
        "radam": torch.optim.RAdam,
    }[name]


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    """Two parameters whose leading dimension is 3 (so a length-3 tensor hyperparameter is
    a valid batched value for both)."""
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(3, 4, generator=gen, dtype=torch.float64)),
        torch.nn.Parameter(torch.randn(3, generator=gen, dtype=torch.float64)),
    ]


def _set_grads(params: list[torch.Tensor]) -> None:
    """A gradient that is a fixed function of the parameters (the same for two copies)."""
    for p in params:
        p.grad = 0.5 * p.detach() + torch.cos(3 * p.detach())


def _params_of(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in opt.param_groups for p in g["params"]]


def _assert_same(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    """Parameters, per-parameter state and group step counts bit for bit equal."""
    pa, pb = _params_of(a), _params_of(b)
    assert len(pa) == len(pb)
    for x, y in zip(pa, pb, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True)
        sa, sb = a.state[x], b.state[y]
        assert sorted(sa) == sorted(sb)
        for key in sa:
            u, v = sa[key], sb[key]
            if isinstance(u, torch.Tensor):
                torch.testing.assert_close(u, v, rtol=0, atol=0, equal_nan=True)
            else:
                assert u == v, key
    assert [g["step"] for g in a.param_groups] == [g["step"] for g in b.param_groups]


# --- item 1: torch.compile(opt.step) ----------------------------------------------------------


@pytest.mark.parametrize("fused", BACKENDS, ids=["eager", "default"])
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_compiled_step_keeps_state_and_matches_torch(name, fused):
    torch._dynamo.reset()
    kw = dict(lr=0.1, momentum=0.9) if name == "sgd" else dict(lr=0.05)
    ours, ref, plain = _params(), _params(), _params()
    opt = optim.get(name)(ours, fused=fused, **kw)
    torch_opt = _torch_cls(name)(ref, **kw)
    plain_opt = optim.get(name)(plain, fused=fused, **kw)
    step = torch.compile(opt.step)
    for _ in range(5):
        for ps in (ours, ref, plain):
            _set_grads(ps)
        step()
        torch_opt.step()
        plain_opt.step()
    assert type(opt.state).__name__ == "_TrackedState"
    for p, r in zip(ours, ref, strict=True):
        assert float(opt.state[p]["step"]) == 5.0
        torch.testing.assert_close(p, r, rtol=1e-12, atol=1e-12)
    _assert_same(opt, plain_opt)  # compiled == not compiled, bit for bit


def test_compiled_step_with_closure_and_hooks():
    torch._dynamo.reset()
    ours, ref = _params(), _params()
    opt, torch_opt = optim.SGD(ours, lr=0.1, momentum=0.9), torch.optim.SGD(ref, 0.1, 0.9)
    calls = []
    opt.register_step_post_hook(lambda o, a, k: calls.append(1))
    step = torch.compile(opt.step)

    def closure():
        _set_grads(ours)
        return sum(float((p.detach() ** 2).sum()) for p in ours)

    for _ in range(3):
        step(closure)
        _set_grads(ref)
        torch_opt.step()
    assert calls == [1, 1, 1]
    for p, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(p, r, rtol=1e-12, atol=1e-12)


# --- item 6: deepcopy and pickle ---------------------------------------------------------------


def _pickled(opt):
    return pickle.loads(pickle.dumps(opt))


@pytest.mark.parametrize("how", [copy.deepcopy, _pickled], ids=["deepcopy", "pickle"])
@pytest.mark.parametrize("fused", BACKENDS, ids=["eager", "default"])
@pytest.mark.parametrize("name", list(ALL_NAMED))
def test_copy_continues_identically(name, fused, how):
    params = _params()
    opt = optim.get(name)(params, fused=fused, monitor=name == "adam", **ALL_NAMED[name])
    for _ in range(3):
        _set_grads(params)
        opt.step()
    dup = how(opt)
    assert type(dup) is type(opt)
    assert repr(dup.rule) == repr(opt.rule)
    assert dup.fused == opt.fused
    assert (dup.monitor is None) == (opt.monitor is None)
    if opt.monitor is not None:
        assert dup.monitor is not opt.monitor
        assert dup.monitor.records == opt.monitor.records
    _assert_same(opt, dup)
    copies = _params_of(dup)
    assert all(c is not p for c, p in zip(copies, params, strict=True))
    for _ in range(3):
        _set_grads(params)
        _set_grads(copies)
        opt.step()
        dup.step()
        _assert_same(opt, dup)
    # the copy is independent: a step of one leaves the other alone
    before = [c.detach().clone() for c in copies]
    _set_grads(params)
    opt.step()
    assert all(torch.equal(c, b) for c, b in zip(copies, before, strict=True))


def test_torch_optimizers_copy_too():
    """The reference behaviour: torch's own optimizers survive both round trips."""
    params = _params()
    opt = torch.optim.Adam(params, lr=0.05)
    _set_grads(params)
    opt.step()
    for dup in (copy.deepcopy(opt), _pickled(opt)):
        _set_grads(_params_of(dup))
        dup.step()


# --- item 10: error types ----------------------------------------------------------------------

# every numeric hyperparameter of each optimizer with a torch namesake
NUMERIC = {
    "sgd": ["lr", "momentum", "dampening", "weight_decay"],
    "adagrad": ["lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"],
    "adadelta": ["lr", "rho", "eps", "weight_decay"],
    "rmsprop": ["lr", "alpha", "eps", "weight_decay", "momentum"],
    "adam": ["lr", "betas", "eps", "weight_decay"],
    "adamw": ["lr", "betas", "eps", "weight_decay"],
    "nadam": ["lr", "betas", "eps", "weight_decay", "momentum_decay"],
    "radam": ["lr", "betas", "eps", "weight_decay"],
}
BAD_TYPES = ["0.1", [0.1], None, 1j]
BAD_BETAS = ["ab", None, 1j, (0.9, "x"), (None, 0.999), (0.9, 1j)]
TYPE_CASES = [
    (name, key, bad)
    for name, keys in NUMERIC.items()
    for key in keys
    for bad in (BAD_BETAS if key == "betas" else BAD_TYPES)
]


@pytest.mark.parametrize(("name", "key", "bad"), TYPE_CASES)
def test_wrong_type_is_a_type_error_naming_it(name, key, bad):
    with pytest.raises(TypeError) as ours:
        optim.get(name)(_params(), **{key: bad})
    msg = str(ours.value)
    assert key in msg
    shown = next(x for x in bad if type(x) is not float) if isinstance(bad, tuple) else bad
    assert repr(shown) in msg
    assert isinstance(ours.value, ValueError)  # callers catching ValueError still see it
    try:
        _torch_cls(name)(_params(), **{key: bad})
    except Exception as exc:  # noqa: BLE001 -- the reference's type is what is checked
        assert isinstance(exc, TypeError), (type(exc), exc)


@pytest.mark.parametrize("name", list(TORCH_NAMED))
def test_params_none_checks_hyperparameters_first(name):
    with pytest.raises(ValueError, match="lr"):
        optim.get(name)(None, lr=-1.0)
    with pytest.raises(ValueError):
        _torch_cls(name)(None, lr=-1.0)
    with pytest.raises(TypeError, match="lr must be a number, got 'x'"):
        optim.get(name)(None, lr="x")
    with pytest.raises(TypeError):
        _torch_cls(name)(None, lr="x")
    with pytest.raises(TypeError):  # valid values: the params themselves are refused
        optim.get(name)(None)
    with pytest.raises(TypeError):
        _torch_cls(name)(None)


def test_flags_and_choices_of_the_wrong_type():
    with pytest.raises(TypeError, match="amsgrad must be True or False, got 'yes'"):
        optim.Adam(_params(), amsgrad="yes")
    with pytest.raises(TypeError, match="fused must be True or False, got 1"):
        optim.SGD(_params(), fused=1)
    with pytest.raises(TypeError, match="form must be one of"):
        optim.Momentum(_params(), form=None)
    with pytest.raises(ValueError, match="form must be one of"):
        optim.Momentum(_params(), form="sideways")


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (torch.full((5,), 0.1, dtype=torch.float64), ValueError, "lr has length 5"),
        (torch.full((3, 1), 0.1, dtype=torch.float64), ValueError, r"lr must be .*shape \(3, 1\)"),
        (torch.full((3,), 0.1, dtype=torch.complex128), TypeError, "lr must be a real tensor"),
        (torch.tensor([0.1, -0.1, 0.1], dtype=torch.float64), ValueError, "lr must be >= 0.0"),
    ],
    ids=["length", "2d", "complex", "negative"],
)
def test_batched_value_refused_when_set(value, error, match):
    with pytest.raises(error, match=match):
        optim.SGD(_params(), lr=value)
    opt = optim.SGD(_params(), lr=0.1)
    extra = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(error, match="param group 1: " + match):
        opt.add_param_group({"params": [extra], "lr": value})
    assert len(opt.param_groups) == 1
    ok = torch.full((3,), 0.2, dtype=torch.float64)  # length 3 fits every leading dimension
    optim.SGD(_params(), lr=ok)
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(\)"):
        optim.SGD([torch.nn.Parameter(torch.zeros(()))], lr=ok)


# --- item 5: a refused step changes nothing ----------------------------------------------------


def _refusals(name: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [
        ("lr", torch.full((2,), 0.1, dtype=torch.float64)),  # wrong length
        ("lr", torch.full((3, 1), 0.1, dtype=torch.float64)),  # not 1-D
        ("lr", torch.full((3,), 0.1, dtype=torch.complex128)),
        ("lr", "0.1"),
        ("lr", -1.0),
        ("weight_decay", torch.full((4,), 0.1, dtype=torch.float64)),
        ("weight_decay", None),
        ("maximize", "yes"),
    ]
    if name in ("nadam", "radam"):  # they take scalar betas only
        out.append(("betas", (torch.full((3,), 0.9, dtype=torch.float64), 0.999)))
    return out


REFUSAL_CASES = [
    (name, fused, key, value)
    for name in ALL_NAMED
    for fused in BACKENDS
    for key, value in _refusals(name)
    if key in optim.get(name)(_params(), **ALL_NAMED[name]).defaults
]


@pytest.mark.parametrize(("name", "fused", "key", "value"), REFUSAL_CASES)
def test_refused_step_changes_nothing(name, fused, key, value):
    a, b = _params(), _params()
    opt = optim.get(name)(a, fused=fused, **ALL_NAMED[name])
    ref = optim.get(name)(b, fused=fused, **ALL_NAMED[name])
    for _ in range(3):
        for o in (opt, ref):
            _set_grads(_params_of(o))
            o.step()
    old = opt.param_groups[0][key]
    opt.param_groups[0][key] = value
    _set_grads(a)
    with pytest.raises(ValueError, match=key):  # HyperparameterTypeError is one too
        opt.step()
    _assert_same(opt, ref)
    opt.param_groups[0][key] = old
    for o in (opt, ref):
        _set_grads(_params_of(o))
        o.step()
    _assert_same(opt, ref)


@pytest.mark.parametrize("fused", BACKENDS, ids=["eager", "default"])
def test_valid_batched_lr_mid_training(fused):
    """Switching to a valid batched lr mid-training works and equals separate runs."""
    params = _params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9, fused=fused)
    singles = []
    for r in range(3):
        ps = [torch.nn.Parameter(p.detach()[r].clone()) for p in _params()]
        singles.append((ps, optim.SGD(ps, lr=0.1, momentum=0.9, fused=fused)))
    lrs = [0.1, 0.2, 0.05]
    for t in range(6):
        if t == 3:
            opt.param_groups[0]["lr"] = torch.tensor(lrs, dtype=torch.float64)
            for (_, o), lr in zip(singles, lrs, strict=True):
                o.param_groups[0]["lr"] = lr
        _set_grads(params)
        opt.step()
        for ps, o in singles:
            _set_grads(ps)
            o.step()
    for r, (ps, _) in enumerate(singles):
        for p, q in zip(params, ps, strict=True):
            torch.testing.assert_close(p.detach()[r], q.detach(), rtol=1e-13, atol=1e-13)
