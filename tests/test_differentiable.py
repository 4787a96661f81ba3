"""``differentiable=True``: the step recorded by autograd, checked against torch's own
differentiable optimizers and against this library's non-differentiable step.

For every configuration torch's optimizer database runs with ``differentiable=True`` (70, for
the 11 optimizers that take the flag): the values are ``fused=False``'s bit for bit, and equal
torch's; the gradients of a function of the new parameters and state, with respect to the
parameters, gradients and state before the step, equal torch's; and a float64 ``gradcheck``
(finite differences against autograd) holds for one step, and over two steps for tensor
hyperparameters that require grad (lr, weight decay, betas). What cannot be differentiated
through is refused before anything changes.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.autograd import gradcheck

from descentlab import optim

common = pytest.importorskip("torch.testing._internal.common_optimizers")

TORCH_ONLY = ("foreach", "fused", "differentiable", "capturable")
#: the named optimizers that take torch's ``differentiable`` (all have a torch twin)
NAMES = [
    n
    for n in dir(optim)
    if isinstance(getattr(optim, n), type)
    and issubclass(getattr(optim, n), optim.Optimizer)
    and n not in ("Optimizer", "Named")
    and "differentiable" in inspect.signature(getattr(optim, n).__init__).parameters
]


def _db_configs() -> list[tuple[str, dict]]:
    """torch's differentiable configurations, without its implementation switches."""
    out = []
    for info in common.optim_db:
        if info.name not in NAMES:
            continue
        inputs = common._get_optim_inputs_including_global_cliquey_kwargs(
            "cpu", torch.float64, info
        )
        for inp in inputs:
            if inp.kwargs.get("differentiable"):
                out.append(
                    (info.name, {k: v for k, v in inp.kwargs.items() if k not in TORCH_ONLY})
                )
    return out


CONFIGS = _db_configs()
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for n, kw in CONFIGS]


def test_every_optimizer_torch_makes_differentiable_takes_the_flag():
    torch_names = {i.name for i in common.optim_db if "differentiable" in i.supported_impls}
    assert set(NAMES) == torch_names
    assert len(CONFIGS) >= 60


@pytest.fixture(autouse=True)
def _float64_step_counts():
    """Step counts in float64 (torch's and ours follow the default dtype): torch's
    differentiable step computes Adam's bias corrections from its step count, whose float32
    rounding (~1e-7) would hide a real difference in float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 3), (3,)]
    p = [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
    grads = [
        [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
        for _ in range(3)
    ]
    return p, grads


def _steps(lib, name, kw, p0, grads, differentiable=True, fused=None, buffers=None):
    """Three steps from non-leaf copies of ``p0`` with the given gradients (``buffers``:
    SGD's momentum buffers to start from); returns the parameters and every floating state
    tensor afterwards (in a fixed order)."""
    ps = [p.clone() for p in p0]
    extra = {"fused": fused} if fused is not None else {}
    opt = getattr(lib, name)(ps, **kw, differentiable=differentiable, **extra)
    for p, b in zip(ps, buffers or (), strict=False):
        opt.state[p]["momentum_buffer"] = b.clone()
    for gs in grads:
        for p, g in zip(ps, gs, strict=True):
            p.grad = g
        opt.step()
    state = [
        v
        for p in ps
        for k, v in sorted(opt.state[p].items())
        if isinstance(v, torch.Tensor) and v.is_floating_point() and k != "step"
    ]
    return ps, state


@pytest.mark.parametrize(("name", "kw"), CONFIGS, ids=IDS)
def test_values_are_the_eager_steps_bit_for_bit_and_torchs(name, kw):
    p0, grads = _inputs()
    ours, ours_state = _steps(optim, name, kw, p0, grads)
    with torch.no_grad():
        plain = [p.detach() for p in p0]
        plain_grads = [[g.detach() for g in gs] for gs in grads]
        eager, eager_state = _steps(optim, name, kw, plain, plain_grads, False, False)
    for a, b in zip([*ours, *ours_state], [*eager, *eager_state], strict=True):
        assert torch.equal(a.detach(), b), (name, kw)
    theirs, _ = _steps(torch.optim, name, kw, p0, grads)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def _three_steps(name, kw, shapes):
    def f(*leaves):
        p0, flat = leaves[: len(shapes)], leaves[len(shapes) :]
        grads = [list(flat[i : i + len(shapes)]) for i in range(0, len(flat), len(shapes))]
        ps, state = _steps(optim, name, kw, p0, grads)
        return (*ps, *state)

    return f


@pytest.mark.parametrize(("name", "kw"), CONFIGS, ids=IDS)
def test_three_steps_pass_gradcheck_and_match_torchs_gradients(name, kw):
    """Finite differences against autograd through three steps (with respect to the first
    parameters and every gradient); then d(sum of w * new parameters) against torch's own
    differentiable step, where torch's step can be differentiated: a backward through more
    than one step
    of its centered RMSprop, Rprop, Adamax, AMSGrad or SGD with weight decay and momentum
    fails (it modifies a tensor autograd saved, in place)."""
    p0, grads = _inputs(1)
    leaves = [*p0, *[g for gs in grads for g in gs]]
    assert gradcheck(_three_steps(name, kw, [p.shape for p in p0]), tuple(leaves))
    weights = [torch.randn(p.shape, generator=torch.Generator().manual_seed(2)) for p in p0]
    # torch's SGD detaches the momentum buffer it makes at the first step (no gradient to
    # that step's gradient and weight decay): both start from given buffers here instead
    buffers = None
    if name == "SGD" and kw.get("momentum"):
        buffers = [torch.randn(p.shape, requires_grad=True) for p in p0]
        leaves += buffers
    found = []
    for lib in (optim, torch.optim):
        ps, _ = _steps(lib, name, kw, p0, grads, buffers=buffers)
        out = sum((wt * p).sum() for wt, p in zip(weights, ps, strict=True))
        try:
            found.append(torch.autograd.grad(out, leaves, allow_unused=True))
        except RuntimeError as exc:
            # torch's own step fails here (ours passed gradcheck above)
            assert lib is torch.optim and "modified by an inplace operation" in str(exc)
            return
    for ours, theirs in zip(*found, strict=True):
        assert ours is not None and theirs is not None
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-13)


def _r(*shape):
    return torch.rand(*shape, dtype=torch.float64, requires_grad=True)


def _t(v):
    return torch.tensor(v, dtype=torch.float64, requires_grad=True)


def _step10():
    return torch.tensor(10.0, dtype=torch.float64)


def _amsgrad_state():
    return {"step": _step10(), "exp_avg": _r(10), "exp_avg_sq": _r(10), "max_exp_avg_sq": _r(10)}


#: one step from a given state (torch's differentiable tests' cases, written for this file)
ONE_STEP = [
    ("SGD", {"lr": 0.9, "momentum": 0.9}, lambda: {"momentum_buffer": _r(10)}),
    (
        "Adam",
        {"lr": 0.9, "amsgrad": True},
        _amsgrad_state,
    ),
    (
        "AdamW",
        {"lr": 0.9, "amsgrad": True},
        _amsgrad_state,
    ),
    (
        "RMSprop",
        {"lr": 0.9, "maximize": True, "momentum": 0.9, "centered": True, "weight_decay": 0.1},
        lambda: {
            "step": torch.zeros((), dtype=torch.float64),
            "square_avg": _r(10),
            "momentum_buffer": _r(10),
            "grad_avg": (1e-2 * torch.rand(10, dtype=torch.float64)).requires_grad_(),
        },
    ),
    (
        "Adadelta",
        {"lr": 0.9, "weight_decay": 0.1},
        lambda: {"step": _step10(), "square_avg": _r(10), "acc_delta": _r(10)},
    ),
    ("Adagrad", {"lr": 0.9, "weight_decay": 0.1}, lambda: {"step": _step10(), "sum": _r(10)}),
    (
        "Adamax",
        {"lr": 0.9, "weight_decay": 0.1},
        lambda: {"step": _step10(), "exp_avg": _r(10), "exp_inf": _r(10)},
    ),
    (
        "ASGD",
        {"lr": 0.9},
        lambda: {
            "step": _step10(),
            "eta": torch.tensor(0.9, dtype=torch.float64),
            "mu": torch.tensor(1.0, dtype=torch.float64),
            "ax": _r(10),
        },
    ),
    ("Rprop", {"lr": 0.9}, lambda: {"step": _step10(), "prev": _r(10), "step_size": _r(10)}),
    (
        "NAdam",
        {"lr": 0.9},
        lambda: {"step": _step10(), "exp_avg": _r(10), "exp_avg_sq": _r(10), "mu_product": _t(1.0)},
    ),
    (
        "NAdam",
        {"lr": 0.9, "decoupled_weight_decay": True, "weight_decay": 0.1},
        lambda: {"step": _step10(), "exp_avg": _r(10), "exp_avg_sq": _r(10), "mu_product": _t(0.9)},
    ),
    ("RAdam", {"lr": 0.9}, lambda: {"step": _step10(), "exp_avg": _r(10), "exp_avg_sq": _r(10)}),
    (
        "RAdam",
        {"lr": 0.9, "weight_decay": 0.1, "decoupled_weight_decay": True},
        lambda: {"step": _step10(), "exp_avg": _r(10), "exp_avg_sq": _r(10)},
    ),
]


def _one_step(lib, name, kw, keys, fixed, p, grad, *values):
    p = p.clone()
    p.grad = grad
    opt = getattr(lib, name)([p], **kw, differentiable=True)
    opt.state[p].update({k: v.clone() for k, v in fixed.items()})
    opt.state[p].update({k: v.clone() for k, v in zip(keys, values, strict=True)})
    opt.step()
    return (p, *(opt.state[p][k] for k in keys))


@pytest.mark.parametrize(
    ("name", "kw", "make"), ONE_STEP, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(ONE_STEP)]
)
def test_one_step_passes_gradcheck_and_matches_torchs_jacobian(name, kw, make):
    torch.manual_seed(0)
    state = make()
    fixed = {k: v for k, v in state.items() if not v.requires_grad}  # step counts, eta, mu
    keys = [k for k in state if k not in fixed]
    inputs = (_r(10), _r(10), *(state[k] for k in keys))
    assert gradcheck(lambda *a: _one_step(optim, name, kw, keys, fixed, *a), inputs)
    ours, theirs = (
        torch.autograd.functional.jacobian(
            lambda *a, lib=lib: _one_step(lib, name, kw, keys, fixed, *a), inputs
        )
        for lib in (optim, torch.optim)
    )
    for a, b in zip(ours, theirs, strict=True):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)


HYPER = [
    ("Adam", {"lr": 0.001}),
    ("Adam", {"weight_decay": 0.999}),
    ("Adam", {"beta1": 0.9, "beta2": 0.999, "lr": [0.001]}),
    ("Adam", {"lr": 0.001, "weight_decay": 0.999, "beta1": 0.9, "beta2": 0.999}),
    ("AdamW", {"lr": 0.001}),
    ("AdamW", {"weight_decay": 0.999}),
    ("AdamW", {"beta1": 0.9, "beta2": 0.999}),
    ("AdamW", {"lr": 0.001, "weight_decay": 0.999, "beta1": 0.9, "beta2": 0.999}),
    ("SGD", {"lr": 0.001}),
    ("SGD", {"weight_decay": 0.9}),
    ("SGD", {"weight_decay": 0.9, "lr": 0.001}),
]


def _meta_loss(lib, name, names, keys, p, grad, *values):
    """Two steps on a tiny regression with create_graph; the last loss, differentiated
    with respect to the tensor hyperparameters (and the state)."""
    state, hyper = values[: len(keys)], [h.clone() for h in values[len(keys) :]]
    kw = dict(zip(names, hyper, strict=True))
    if "beta1" in kw:
        kw["betas"] = (kw.pop("beta1"), kw.pop("beta2"))
    p = p.clone()
    p.grad = grad
    opt = getattr(lib, name)([p], **kw, differentiable=True)
    opt.state[p].update({k: v.clone() for k, v in zip(keys, state, strict=True)})
    x = torch.tensor([1.0], dtype=torch.float64)
    for _ in range(2):
        loss = (x * p.sum() - 2.0).pow(2).mean()
        loss.backward(inputs=(p,), create_graph=True)
        opt.step()
        opt.zero_grad()
    return loss


@pytest.mark.parametrize(("name", "hyper"), HYPER, ids=[f"{n}-{'-'.join(h)}" for n, h in HYPER])
def test_hyperparameter_gradients_over_two_steps(name, hyper):
    torch.manual_seed(0)
    if name == "SGD":
        state = {"momentum_buffer": _r(10)}
    else:
        state = {
            "step": _step10(),
            "exp_avg": _r(10),
            "exp_avg_sq": _r(10),
            "max_exp_avg_sq": _r(10),
        }
    keys, names = list(state), list(hyper)
    values = [_t(v) for v in hyper.values()]
    p, grad = _r(10), _r(10)
    inputs = (p, grad, *state.values(), *values)
    assert gradcheck(lambda *a: _meta_loss(optim, name, names, keys, *a), inputs)
    found = []
    for lib in (optim, torch.optim):
        loss = _meta_loss(lib, name, names, keys, *inputs)
        found.append(torch.autograd.grad(loss, values))
    for a, b in zip(*found, strict=True):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------------------
# Refused: what cannot be differentiated through, before anything changes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [n for n in NAMES if "fused" in inspect.signature(getattr(optim, n).__init__).parameters],
)
def test_fused_with_differentiable_is_refused_in_torchs_words(name):
    p = [torch.nn.Parameter(torch.ones(2))]
    if "fused" in inspect.signature(getattr(torch.optim, name).__init__).parameters:
        with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
            getattr(torch.optim, name)(p, fused=True, differentiable=True)
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        getattr(optim, name)(p, fused=True, differentiable=True)


@pytest.mark.parametrize("name", NAMES)
def test_a_leaf_parameter_is_refused_like_torch_and_nothing_changes(name):
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    w.grad = torch.full((3,), 0.5, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        getattr(torch.optim, name)([w], differentiable=True).step()
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    w.grad = torch.full((3,), 0.5, dtype=torch.float64)
    opt = getattr(optim, name)([w], differentiable=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3, dtype=torch.float64))
    assert not opt.state[w] and opt.param_groups[0]["step"] == 0


def test_what_autograd_cannot_trace_is_refused_at_construction():
    p = [torch.ones(2, requires_grad=True).clone()]
    with pytest.raises(ValueError, match="low-bit state"):
        optim.Adam(p, differentiable=True, state_dtype="bfloat16")
    with pytest.raises(ValueError, match="no monitor"):
        optim.Adam(p, differentiable=True, monitor=True)
    muon = optim.Muon([torch.nn.Parameter(torch.ones(2, 2))]).rule
    with pytest.raises(ValueError, match="scale_by_muon has no differentiable step"):
        optim.Optimizer(p, muon, differentiable=True)
    with pytest.raises(
        HyperparameterTypeError := optim.HyperparameterTypeError, match="differentiable"
    ):
        optim.Adam(p, differentiable="yes")
    assert issubclass(HyperparameterTypeError, TypeError)
    q = torch.ones(3, dtype=torch.float64, requires_grad=True).clone()
    q.grad = torch.ones(3, dtype=torch.float64)
    compiled = optim.Adam([q], differentiable=True)
    with pytest.raises(RuntimeError, match=r"cannot step inside torch\.compile"):
        torch.compile(compiled.step)()  # it ran unrecorded: no gradient through the step
    assert torch.equal(q.detach(), torch.ones(3, dtype=torch.float64)) and not compiled.state[q]


@pytest.mark.parametrize("rec", optim.records(), ids=lambda r: r.name)
def test_every_exported_optimizer_takes_differentiable_or_refuses_it_as_torch(rec):
    """Every registered optimizer: the flag's step works (values of fused=False, a gradient
    through it), or it is refused with one clear error (a TypeError where the constructor
    does not take it, as torch's own without the flag)."""
    import warnings

    p0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    p = p0.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            opt = rec.factory([p], differentiable=True)
        except TypeError as exc:  # the constructor does not take it (torch's Adafactor)
            assert "differentiable" in str(exc)
            return
        except ValueError as exc:  # Lookahead and SAM: their own rules are not traced
            assert "differentiable=True is not supported" in str(exc)
            return
    p.grad = grad
    opt.step()
    assert p.grad_fn is not None
    (dp,) = torch.autograd.grad(p.sum(), p0)
    assert torch.isfinite(dp).all()
    ref = torch.nn.Parameter(p0.detach().clone())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = rec.factory([ref], fused=False)
    ref.grad = grad.detach().clone()
    plain.step()
    assert torch.equal(p.detach(), ref.detach())


@pytest.mark.parametrize(("name", "kw"), CONFIGS, ids=IDS)
def test_outcomes_of_torchs_no_op_checks_are_torchs(name, kw):
    """torch's generic checks with its differentiable configurations: a step over
    parameters without gradients changes nothing (both pass); a zero gradient on a leaf that
    requires grad is refused (both raise torch's RuntimeError: the in-place update of a
    leaf under autograd)."""
    for lib in (torch.optim, optim):
        params = [torch.randn(2, 3) for _ in range(2)]
        old = [p.clone() for p in params]
        getattr(lib, name)(params, **kw, differentiable=True).step(lambda: torch.tensor([1.0]))
        assert all(torch.equal(a, b) for a, b in zip(old, params, strict=True))
        p = torch.randn(5, 1, requires_grad=True)
        opt = getattr(lib, name)([p], **kw, differentiable=True)
        p.grad = torch.zeros_like(p)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            opt.step(lambda: torch.tensor([1.0]))
