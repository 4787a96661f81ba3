"""Trust: the optimizers never silently differ and never lose state.

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
    "adamax": dict(lr=0.05, weight_decay=0.01),
    "asgd": dict(lr=0.05, t0=1),
    "rprop": dict(lr=0.01),
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
        "adamax": torch.optim.Adamax,
        "asgd": torch.optim.ASGD,
        "rprop": torch.optim.Rprop,
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
    assert type(opt.state).__name__ == "TrackedState"
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


@pytest.mark.parametrize("fused", BACKENDS, ids=["eager", "default"])
def test_compiled_training_step_with_the_optimizer_inside(fused):
    """A whole training step under torch.compile (forward, backward, step): the optimizer's
    step is a graph break, and the iterates are torch.optim's."""
    torch._dynamo.reset()
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(6, 2)
    y = x.sum(1, keepdim=True) ** 2

    def make(cls, **kw):
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1, dtype=torch.float64)
        return model, cls(model.parameters(), lr=0.05, **kw)

    ours, opt = make(optim.Adam, fused=fused)
    ref, torch_opt = make(torch.optim.Adam)

    def train_step(model, o):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        o.step()
        o.zero_grad()
        return loss.detach()

    compiled = torch.compile(train_step, backend="eager")
    for _ in range(4):
        compiled(ours, opt)
        train_step(ref, torch_opt)
    for p, r in zip(ours.parameters(), ref.parameters(), strict=True):
        assert float(opt.state[p]["step"]) == 4.0
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


@pytest.mark.parametrize("how", [copy.deepcopy, _pickled], ids=["deepcopy", "pickle"])
def test_copy_with_a_scheduler_attached_steps_only_itself(how):
    """An LRScheduler wraps ``opt.step`` on the instance; the copy must not keep that
    wrapper (it would step the original), as torch's own copies do not."""
    params = _params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    _set_grads(params)
    opt.step()
    sched.step()
    dup = how(opt)
    before = [p.detach().clone() for p in params]
    _set_grads(_params_of(dup))
    dup.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    assert not all(torch.equal(c, b) for c, b in zip(_params_of(dup), before, strict=True))
    assert dup.param_groups[0]["lr"] == 0.05


def test_fullgraph_compile_of_the_bound_step_traces_and_steps_like_eager():
    """``torch.compile(opt.step, fullgraph=True)`` traces (the step is one operator of the
    graph, see tests/test_compiled_step.py) and gives the eager step, state kept."""
    torch._dynamo.reset()
    params, ref_params = _params(), _params()
    opt, ref = optim.SGD(params, lr=0.1, momentum=0.9), optim.SGD(ref_params, lr=0.1, momentum=0.9)
    step = torch.compile(opt.step, fullgraph=True)
    for _ in range(2):
        _set_grads(params)
        _set_grads(ref_params)
        step()
        ref.step()
    assert all(float(opt.state[p]["step"]) == 2 for p in params)
    assert all(torch.equal(p, q) for p, q in zip(params, ref_params, strict=True))
    torch._dynamo.reset()


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
    except Exception as exc:
        assert isinstance(exc, TypeError), (type(exc), exc)


@pytest.mark.parametrize("name", list(TORCH_NAMED))
def test_params_none_checks_hyperparameters_first(name):
    with pytest.raises(ValueError, match="lr"):
        optim.get(name)(None, lr=-1.0)
    with pytest.raises(ValueError):
        _torch_cls(name)(None, lr=-1.0)
    with pytest.raises(TypeError, match=r"lr must be a number >= 0\.0, got 'x'"):
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
    opt = optim.SGD(_params(), lr=0.1)
    extra = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"param group 1: lr must be a number >= 0\.0, got 'x'"):
        opt.add_param_group({"params": [extra], "lr": "x"})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (torch.full((5,), 0.1, dtype=torch.float64), ValueError, "lr has length 5"),
        (torch.full((3, 1), 0.1, dtype=torch.float64), ValueError, r"lr must be .*shape \(3, 1\)"),
        (torch.full((3,), 0.1, dtype=torch.complex128), TypeError, "lr must be a real tensor"),
        (
            torch.tensor([0.1, -0.1, 0.1], dtype=torch.float64),
            ValueError,
            r"lr must be a number >= 0\.0 \(or a real tensor of them\), got \[0\.1, -0\.1, 0\.1\]",
        ),
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
    if name == "nadam":
        out.append(("momentum_decay", torch.full((3,), 0.004, dtype=torch.float64)))
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


def test_fused_true_refusal_in_a_later_group_changes_no_group():
    """fused=True refuses a non-contiguous gradient; group 0's update must not have happened."""

    def make():
        a, b = _params(1), _params(2)
        return optim.Adam([{"params": a}, {"params": b}], lr=0.1, fused=True), a, b

    (opt, a, b), (ref, _, _) = make(), make()
    for o in (opt, ref):
        _set_grads(_params_of(o))
        o.step()
    _set_grads(a)
    b[0].grad = torch.ones(4, 3, dtype=torch.float64).T  # (3, 4), not contiguous
    with pytest.raises(ValueError, match="param group 1: tensors must be contiguous"):
        opt.step()
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


# --- item 5, property-based: random valid and invalid param_groups changes between steps -------

NAN = float("nan")
#: numeric hyperparameters: (range valid values are drawn from, invalid scalars)
NUMERIC_RANGES = {
    "lr": ((0.0, 0.3), [-0.1, NAN]),
    "momentum": ((0.05, 0.95), [1.0, -0.5, NAN]),
    "dampening": ((0.0, 1.0), [1.5, -0.1]),
    "weight_decay": ((0.0, 0.1), [-1e-3, NAN]),
    "eps": ((1e-8, 1e-3), [-1e-8, NAN]),
    "alpha": ((0.5, 0.99), [1.5, -0.1]),
    "rho": ((0.5, 0.99), [1.1, -0.1]),
    "lr_decay": ((0.0, 0.1), [-0.1]),
    "initial_accumulator_value": ((0.0, 0.5), [-0.1]),
    "momentum_decay": ((0.0, 0.01), [-0.1]),
}


#: hyperparameters that take only Python numbers (a batched value is refused)
def _scalar_only(name: str) -> set[str]:
    """The keys whose declared spec refuses a batched value (read from the rules' checks, the
    one place they are stated: a table here said NAdam's eps was batchable after its form made
    it scalar-only, and the property drew a batched eps as valid)."""
    opt = optim.get(name)(_params(), fused=False, **ALL_NAMED[name])
    return {
        k for r in opt.rule.rules for k, spec in r.checks.items() if getattr(spec, "scalar", False)
    }


SCALAR_ONLY = {name: _scalar_only(name) for name in ALL_NAMED}
#: hyperparameters torch leaves unchecked (any number is valid, so no invalid value to draw)
UNCHECKED = {"asgd": {"alpha"}}
PROPERTY_NAMED = {k: v for k, v in ALL_NAMED.items() if k != "nesterov"}
K = 3  # the leading dimension of every parameter of _params()
STATS = {"examples": 0, "steps": 0, "refused": 0, "valid_changes": 0, "unexpected": []}


def _f64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _bad_types() -> st.SearchStrategy:
    return st.sampled_from(
        [
            "0.1",
            None,
            [0.1],
            1j,
            _f64([0.1, 0.1]),  # wrong length (the parameters' leading dimension is 3)
            _f64([[0.1]] * K),  # not 1-D
            torch.full((K,), 0.1, dtype=torch.complex128),
            _f64([]),
        ]
    )


def _in(lo_hi: tuple[float, float]) -> st.SearchStrategy:
    return st.floats(*lo_hi, allow_nan=False)


def _valid_number(key: str, batchable: bool) -> st.SearchStrategy:
    lo_hi = NUMERIC_RANGES[key][0]
    scalars = _in(lo_hi)
    options = [scalars, scalars.map(lambda v: _f64(v))]  # a float, a 0-dim tensor
    if batchable:
        options += [
            st.lists(_in(lo_hi), min_size=K, max_size=K).map(_f64),
            scalars.map(lambda v: _f64([v])),  # length 1 broadcasts to every row
        ]
    return st.one_of(options)


def _invalid_number(key: str, batchable: bool) -> st.SearchStrategy:
    (lo, hi), bad = NUMERIC_RANGES[key]
    one_bad = st.sampled_from(bad)
    batched_bad = st.tuples(_in((lo, hi)), one_bad).map(lambda t: _f64([t[0], t[1], t[0]]))
    options = [one_bad, batched_bad, _bad_types()]
    if not batchable:  # valid numbers, but batched where the rule takes a number
        options.append(st.lists(_in((lo, hi)), min_size=K, max_size=K).map(_f64))
    return st.one_of(options)


def _betas(name: str, valid: bool) -> st.SearchStrategy:
    b1, b2 = _in((0.0, 0.95)), _in((0.9, 0.999))
    if valid:
        pairs = st.tuples(b1, b2)
        if "betas" in SCALAR_ONLY.get(name, ()):
            return pairs
        batched = st.tuples(st.lists(b1, min_size=K, max_size=K).map(_f64), b2)
        return st.one_of(pairs, batched)
    bad = st.one_of(
        st.tuples(st.sampled_from([1.0, -0.1, NAN]), b2),
        st.tuples(b1, st.sampled_from([1.0, 1.5, NAN])),
        st.sampled_from([(0.9,), "ab", None, (0.9, "x"), (None, 0.99)]),
        st.tuples(b1, _bad_types()),
    )
    if "betas" in SCALAR_ONLY.get(name, ()):
        bad = st.one_of(bad, st.tuples(st.lists(b1, min_size=K, max_size=K).map(_f64), b2))
    return bad


@st.composite
def _change(draw, name: str, keys: list[str]):
    """(group, key, value, valid): one change of a param group, valid or not by
    construction."""
    group = draw(st.sampled_from([0, 1]))
    key = draw(st.sampled_from(keys))
    valid = draw(st.booleans())
    if key == "betas":
        value = draw(_betas(name, valid))
    elif key == "maximize":
        # (not 0 or 1.0: a value equal to the previous one repeats it, as in the fast path)
        value = draw(st.booleans() if valid else st.sampled_from(["yes", None, 2, 0.5]))
    else:
        batchable = key not in SCALAR_ONLY.get(name, ())
        value = draw((_valid_number if valid else _invalid_number)(key, batchable))
    return group, key, value, valid


@st.composite
def _scenario(draw):
    name = draw(st.sampled_from(sorted(PROPERTY_NAMED)))
    fused = draw(st.sampled_from(BACKENDS))
    keys = sorted(
        k
        for k in optim.get(name)(_params(), **PROPERTY_NAMED[name]).param_groups[0]
        if (k in NUMERIC_RANGES or k in ("betas", "maximize")) and k not in UNCHECKED.get(name, ())
    )
    changes = draw(st.lists(st.one_of(st.none(), _change(name, keys)), min_size=1, max_size=6))
    return name, fused, changes


def _step_both(opt, ref) -> None:
    for o in (opt, ref):
        _set_grads(_params_of(o))
        o.step()


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_scenario())
def test_refused_steps_never_change_anything(scenario):
    """Between steps, one of two param groups gets a random valid or invalid value. The
    optimizer under test sees every change, an uninterrupted reference only the valid ones:
    a valid change must step, an invalid one must be refused with ValueError/TypeError and
    leave parameters and state bit for bit as the reference's (then the old value is put
    back)."""
    name, fused, changes = scenario
    STATS["examples"] += 1
    a, b = _params(), _params()
    # two param groups (a refusal in group 1 must not follow group 0's update)
    opt = optim.get(name)([{"params": [p]} for p in a], fused=fused, **PROPERTY_NAMED[name])
    ref = optim.get(name)([{"params": [p]} for p in b], fused=fused, **PROPERTY_NAMED[name])
    _step_both(opt, ref)
    for change in changes:
        if change is None:
            _step_both(opt, ref)
            STATS["steps"] += 1
            continue
        gi, key, value, valid = change
        old = opt.param_groups[gi][key]
        opt.param_groups[gi][key] = value
        _set_grads(a)
        try:
            opt.step()
        except (ValueError, TypeError) as exc:
            if valid:
                STATS["unexpected"].append((name, fused, key, value, repr(exc)))
                raise
            STATS["refused"] += 1
            _assert_same(opt, ref)
            opt.param_groups[gi][key] = old
            _step_both(opt, ref)
            STATS["steps"] += 1
        except Exception as exc:
            STATS["unexpected"].append((name, fused, key, value, repr(exc)))
            raise
        else:
            assert valid, f"{name}(fused={fused}) accepted {key}={value!r}"
            STATS["valid_changes"] += 1
            ref.param_groups[gi][key] = value
            _set_grads(b)
            ref.step()
            STATS["steps"] += 1
        _assert_same(opt, ref)


def test_property_run_statistics():
    """The property run above tried its examples with 0 unexpected exception types (run it
    with ``-s`` to see the counts)."""
    if STATS["examples"] == 0:
        pytest.skip("run together with test_refused_steps_never_change_anything")
    print(
        f"\nrefusal property: {STATS['examples']} examples, {STATS['steps']} steps, "
        f"{STATS['valid_changes']} valid changes, {STATS['refused']} refused, "
        f"{len(STATS['unexpected'])} unexpected"
    )
    assert STATS["unexpected"] == []
    assert STATS["refused"] > 0 and STATS["valid_changes"] > 0
