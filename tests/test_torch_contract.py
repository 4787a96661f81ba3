"""The torch.optim contract, driven by torch's own optimizer database.

``torch.testing._internal.common_optimizers.optim_db`` lists, for every torch optimizer, the
constructor configurations torch tests (``optim_inputs_func``, with the "global cliquey"
flags torch adds) and the inputs it must refuse (``optim_error_inputs_func``). Every named
descentlab optimizer with a torch namesake runs here against them, on both backends, and
through the generic behaviours that PyTorch's ``TestOptimRenewed`` checks (written here as
this project's own tests): state_dict determinism and interchange with torch, older state
dicts, deepcopy, hooks, no-grad no-op, param-group lr and weight decay, tensor lr, complex
and complex-2d, sparse Rosenbrock, fused against for-loop (and torch's fused kernels) in
float64, float32, float16 and bfloat16, ``torch.compile(opt.step)``.
``differentiable=True`` is taken where torch takes it (its values and gradients are checked
against torch's in tests/test_differentiable.py).
"""

from __future__ import annotations

import copy
import inspect
import re
import warnings

import pytest
import torch

from descentlab import optim
from descentlab.optim import fused as F
from descentlab.optim.program import has_kernel_form
from descentlab.optim.torchapi import BEYOND_TORCH

common = pytest.importorskip("torch.testing._internal.common_optimizers")

# every torch namesake of a registered optimizer (from the records' parity configurations)
NAMES = list(dict.fromkeys(c.torch for rec in optim.records() for c in rec.parity))


def _fusable(name: str) -> bool:
    opt = getattr(optim, name)([torch.nn.Parameter(torch.ones(1))], fused=False)
    return all(has_kernel_form(r) for r in opt.rule.rules)


# Named optimizers with a rule that has no fused form (fused=True is refused for them, tested
# below): the fused backend's runs of the tests are skipped for them.
EAGER_ONLY = {name for name in NAMES if not _fusable(name)}
INFOS = {info.name: info for info in common.optim_db if info.name in NAMES}
TORCH_ONLY = ("foreach", "fused", "differentiable", "capturable")


def _configs() -> list[tuple[str, dict]]:
    """optim_db's sample configurations (with torch's global cliquey flags), without torch's
    implementation switches, deduplicated."""
    out, seen = [], set()
    for name in NAMES:
        inputs = common._get_optim_inputs_including_global_cliquey_kwargs(
            "cpu", torch.float64, INFOS[name], skip=("differentiable",)
        )
        for inp in inputs:
            kw = {k: v for k, v in inp.kwargs.items() if k not in TORCH_ONLY}
            key = (name, repr(sorted(kw.items())))
            if key not in seen:
                seen.add(key)
                out.append((name, kw))
    return out


CONFIGS = _configs()


@pytest.fixture(autouse=True)
def _no_fused_backend_for_eager_only(request):
    spec = getattr(request.node, "callspec", None)
    params = spec.params if spec is not None else {}
    if params.get("fused") and params.get("name") in EAGER_ONLY:
        pytest.skip(f"{params['name']} has no fused form (fused=True is refused)")


@pytest.mark.parametrize("name", sorted(EAGER_ONLY))
def test_fused_true_is_refused_for_eager_only_optimizers(name):
    with pytest.raises(ValueError, match="no fused form"):
        getattr(optim, name)([torch.nn.Parameter(torch.ones(2))], fused=True)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in EAGER_ONLY])
def test_every_named_optimizer_runs_fused_by_default_without_a_warning(name):
    w = torch.nn.Parameter(torch.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = getattr(optim, name)([w])
        w.grad = torch.ones(2)
        opt.step()
    assert any(plan is not None for plan in opt._fused.plans.values())


def _ids(cases):
    return [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for n, kw in cases]


def _problem(dtype=torch.float64, seed=0, shape=(6, 5)):
    """Two parameters (a matrix and a vector) and a smooth non-quadratic loss."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g, dtype=dtype)
    b = torch.randn(shape[0], generator=g, dtype=dtype)
    x = torch.randn(16, shape[1], generator=g, dtype=dtype)
    return [w, b], x


def _loss(params, x):
    w, b = params
    h = torch.tanh(x @ w.t() + b)
    return (h**2).sum() + 0.1 * (w**4).sum() / w.numel()


def _train(opt, params, x, steps, closure=False):
    for _ in range(steps):

        def f():
            opt.zero_grad()
            loss = _loss(params, x)
            loss.backward()
            return loss

        if closure:
            opt.step(f)
        else:
            f()
            opt.step()


def _fresh(init):
    return [t.detach().clone().requires_grad_() for t in init]


def _pair(name, kw, dtype=torch.float64, fused=False, seed=0):
    """(torch's for-loop optimizer, ours) on equal copies of one problem."""
    init, x = _problem(dtype, seed)
    pt, po = _fresh(init), _fresh(init)
    ref = getattr(torch.optim, name)(pt, foreach=False, **kw)
    ours = getattr(optim, name)(po, fused=fused, **kw)
    return (ref, pt), (ours, po), x


def _assert_same(a, b, rtol=1e-13, atol=1e-15):
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=rtol, atol=atol)


def _both_continue(name, kw, sd, like, x, fused):
    """torch's for-loop optimizer and ours, each on a fresh copy of ``like`` and loaded from
    the state dict ``sd``: after 4 more steps their parameters are the same."""
    pt, po = _fresh(like), _fresh(like)
    ref = getattr(torch.optim, name)(pt, foreach=False, **kw)
    ref.load_state_dict(copy.deepcopy(sd))
    ours = getattr(optim, name)(po, fused=fused, **kw)
    ours.load_state_dict(copy.deepcopy(sd))
    _train(ref, pt, x, 4)
    _train(ours, po, x, 4)
    _assert_same(po, pt)


# --------------------------------------------------------------------------------------
# optim_db sample configurations: same iterates as torch's for-loop, both backends
# --------------------------------------------------------------------------------------


def test_optim_db_covers_every_named_optimizer():
    assert sorted(INFOS) == sorted(NAMES)
    assert len(CONFIGS) >= 50, len(CONFIGS)


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
@pytest.mark.parametrize(("name", "kw"), CONFIGS, ids=_ids(CONFIGS))
def test_optim_db_config_matches_torch(name, kw, fused):
    (ref, pt), (ours, po), x = _pair(name, kw, fused=fused)
    sign = -1.0 if kw.get("maximize") else 1.0
    for _ in range(8):
        for opt, ps in ((ref, pt), (ours, po)):
            opt.zero_grad()
            (sign * _loss(ps, x)).backward()
            opt.step()
    moved = max(float((p.detach() - q).abs().max()) for p, q in zip(pt, _problem()[0], strict=True))
    assert moved > 1e-6, "the reference did not move: the comparison would be vacuous"
    _assert_same(po, pt)


# --------------------------------------------------------------------------------------
# optim_db error inputs: refused with torch's exception type and words (the regex torch's
# TestOptimRenewed.test_errors matches), Muon's included
# --------------------------------------------------------------------------------------

# What descentlab accepts on purpose where torch refuses (each a documented feature): its
# list (torchapi.BEYOND_TORCH), and a length-K tensor lr, which these tests meet with K-row
# parameters where torch's test gives params=None (refused: see below).
ACCEPTED = {
    "Tensor lr must be 1-element": "a length-K tensor hyperparameter runs K problems at once",
    **BEYOND_TORCH,
}
# every torch optimizer descentlab exports under torch's name (Muon has no parity config)
ERROR_INFOS = {i.name: i for i in common.optim_db if hasattr(optim, i.name)}


def _error_cases():
    out = []
    for name, info in ERROR_INFOS.items():
        for e in info.optim_error_inputs_func(device="cpu", dtype=torch.float32):
            out.append((name, e))
    return out


ERRORS = _error_cases()


@pytest.mark.parametrize(
    ("name", "err"), ERRORS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ERRORS)]
)
def test_optim_db_error_input_refused_like_torch(name, err):
    inp = err.optimizer_error_input
    if any(text in err.error_regex for text in ACCEPTED):
        pytest.skip(ACCEPTED[next(t for t in ACCEPTED if t in err.error_regex)])
    params = inp.params
    if params is None:
        params = [torch.nn.Parameter(torch.randn(2, 2))]
    kw = {k: v for k, v in inp.kwargs.items() if k not in ("foreach", "fused")}
    cls = getattr(optim, name)
    if issubclass(err.error_type, Warning):
        with pytest.warns(err.error_type):
            opt = cls(params, **kw)
        return
    with pytest.raises(err.error_type, match=err.error_regex):
        opt = cls(params, **kw)
        if err.error_on == common.OptimizerErrorEnum.STEP_ERROR:
            for group in opt.param_groups:
                for p in group["params"]:
                    p.grad = torch.rand_like(p)
            opt.step()


# torch's TestOptimRenewed.test_errors builds these with params=None: the hyperparameter is
# refused before the parameters are looked at (descentlab accepts a length-K tensor where
# the parameters' leading dimension is K, which None does not give)
PARAMS_NONE = [
    (n, e)
    for n, e in ERRORS
    if e.optimizer_error_input.params is None and "Tensor lr must be 1-element" in e.error_regex
]


@pytest.mark.parametrize(
    ("name", "err"), PARAMS_NONE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(PARAMS_NONE)]
)
def test_params_none_with_a_batched_lr_raises_torchs_value_error(name, err):
    kw = {k: v for k, v in err.optimizer_error_input.kwargs.items() if k != "foreach"}
    with pytest.raises(ValueError, match=err.error_regex):
        getattr(torch.optim, name)(None, **kw)
    with pytest.raises(ValueError) as ours:  # not TypeError: 'NoneType' is not iterable
        getattr(optim, name)(None, **kw)
    assert re.search(err.error_regex, str(ours.value)), str(ours.value)


# torch's optimizers with fused kernels refuse parameters on a device those kernels do not
# run on at the step, with a RuntimeError naming it (not at construction)
@pytest.mark.parametrize("name", [n for n in NAMES if "fused" in inspect.signature(
    getattr(torch.optim, n).__init__).parameters])  # fmt: skip
def test_fused_true_on_the_meta_device_raises_at_the_step_like_torch(name):
    for lib in (torch.optim, optim):
        p = torch.nn.Parameter(torch.empty(2, 3, device="meta"))
        opt = getattr(lib, name)([p], lr=0.1, fused=True)  # constructs, as torch's
        p.grad = torch.empty(2, 3, device="meta")
        with pytest.raises(RuntimeError, match="meta"):
            opt.step()


@pytest.mark.parametrize("rec", optim.records(), ids=lambda r: r.name)
def test_no_optimizer_state_holds_none(rec):
    """torch's state holds tensors only (its for-loop-vs-foreach helper reads every value):
    a key a parameter does not use is left out, as torch's Adafactor leaves it out."""
    ps = [torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2, 3))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = rec.factory(ps, fused=False)
    closure = None
    if rec.name == "sam":

        def closure():
            opt.zero_grad()
            loss = sum(p.pow(2).sum() for p in ps)
            loss.backward()
            return loss

    for p in ps:
        p.grad = torch.randn_like(p)
    opt.step(closure)
    nones = [(i, k) for i, p in enumerate(ps) for k, v in opt.state[p].items() if v is None]
    assert not nones, nones
    twin = getattr(torch.optim, type(opt).__name__, None)
    if rec.name == "adafactor" and twin is not None:
        tp = [torch.nn.Parameter(p.detach().clone()) for p in ps]
        ref = twin(tp)
        for p in tp:
            p.grad = torch.randn_like(p)
        ref.step()
        assert [sorted(opt.state[p]) for p in ps] == [sorted(ref.state[p]) for p in tp]


@pytest.mark.parametrize("name", NAMES)
def test_differentiable_is_taken_where_torch_takes_it(name):
    """``differentiable=True`` records the step (tests/test_differentiable.py checks its
    values and gradients against torch's); torch's optimizers without the keyword (its
    Adafactor) refuse it, and so do these, with the same exception type."""
    params = [torch.ones(2, requires_grad=True).clone()]
    if "differentiable" in inspect.signature(getattr(torch.optim, name).__init__).parameters:
        opt = getattr(optim, name)(params, differentiable=True)
        assert opt.differentiable and opt.defaults["differentiable"] is True
    else:
        with pytest.raises(TypeError) as theirs:
            getattr(torch.optim, name)(params, differentiable=True)
        with pytest.raises(TypeError, match="differentiable") as ours:
            getattr(optim, name)(params, differentiable=True)
        assert type(ours.value) is type(theirs.value)


# --------------------------------------------------------------------------------------
# Generic behaviours, one representative configuration per optimizer
# --------------------------------------------------------------------------------------

GENERIC = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1)),
    ("ASGD", dict(lr=0.01, t0=2, lambd=0.01, weight_decay=0.1)),
    ("Rprop", dict(lr=0.01, etas=(0.4, 1.3))),
]
GIDS = _ids(GENERIC)
BACKENDS = pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_state_dict_from_torch_continues_like_torch(name, kw, fused):
    """torch -> descentlab: a state dict saved mid-training by torch, loaded by torch and by
    descentlab; both continue identically."""
    (ref, pt), _, x = _pair(name, kw)
    _train(ref, pt, x, 3)
    sd = copy.deepcopy(ref.state_dict())
    _both_continue(name, kw, sd, pt, x, fused)


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_state_dict_to_torch_continues_like_ours(name, kw, fused):
    """descentlab -> torch: our state dict, loaded by torch and by descentlab; both continue
    identically (loading casts state to the parameters' dtype, so both sides load)."""
    (_, _), (ours, po), x = _pair(name, kw, fused=fused)
    _train(ours, po, x, 3)
    sd = copy.deepcopy(ours.state_dict())
    _both_continue(name, kw, sd, po, x, fused)


@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_older_torch_state_dict_loads_as_torch_loads_it(name, kw):
    """No ``maximize`` key and ``state['step']`` a Python float, as torch < 1.12 saved them."""
    (ref, pt), _, x = _pair(name, kw)
    _train(ref, pt, x, 3)
    sd = copy.deepcopy(ref.state_dict())
    for group in sd["param_groups"]:
        group.pop("maximize", None)
        for flag in TORCH_ONLY:
            group.pop(flag, None)
    for st in sd["state"].values():
        if "step" in st:
            st["step"] = float(st["step"])
    _both_continue(name, kw, sd, pt, x, fused=False)


@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_state_dict_is_deterministic_and_round_trips(name, kw):
    """state_dict twice gives equal dicts; a fresh optimizer loaded from it continues
    bit-identically to the original (torch's test_state_dict_deterministic). In float32:
    loading casts floating state to the parameters' dtype, which changes NAdam's float32
    ``mu_product`` under float64 parameters (in torch too)."""
    _, (ours, po), x = _pair(name, kw, dtype=torch.float32)
    _train(ours, po, x, 3, closure=True)
    sd1, sd2 = ours.state_dict(), ours.state_dict()
    assert sd1["param_groups"] == sd2["param_groups"]
    po2 = _fresh(po)
    ours2 = getattr(optim, name)(po2, fused=False, **kw)
    ours2.load_state_dict(copy.deepcopy(sd1))
    _train(ours, po, x, 3, closure=True)
    _train(ours2, po2, x, 3, closure=True)
    _assert_same(po2, po, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_deepcopy_continues_identically(name, kw):
    _, (ours, po), x = _pair(name, kw)
    _train(ours, po, x, 2)
    twin = copy.deepcopy({"opt": ours, "params": po})
    _train(ours, po, x, 3)
    _train(twin["opt"], twin["params"], x, 3)
    _assert_same(twin["params"], po, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_step_hooks_and_state_dict_hooks_run(name):
    p = torch.nn.Parameter(torch.ones(3))
    opt = getattr(optim, name)([p], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.register_state_dict_pre_hook(lambda o: calls.append("sd_pre"))
    opt.register_state_dict_post_hook(lambda o, sd: calls.append("sd_post"))
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load_pre"))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load_post"))
    p.grad = torch.ones(3)
    opt.step()
    opt.load_state_dict(opt.state_dict())
    assert calls == ["pre", "post", "sd_pre", "sd_post", "load_pre", "load_post"]


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_step_without_gradients_is_a_no_op(name, kw, fused):
    _, (ours, po), _ = _pair(name, kw, fused=fused)
    before = [p.detach().clone() for p in po]
    for _ in range(2):
        ours.step()
    _assert_same(po, before, rtol=0, atol=0)
    assert not any(ours.state[p] for p in po)


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_param_groups_with_their_own_lr_and_weight_decay(name, kw, fused):
    init, x = _problem()
    pt, po = _fresh(init), _fresh(init)

    def groups(ps):
        return [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.02, "weight_decay": 0.3}]

    ref = getattr(torch.optim, name)(groups(pt), foreach=False, **kw)
    ours = getattr(optim, name)(groups(po), fused=fused, **kw)
    _train(ref, pt, x, 6)
    _train(ours, po, x, 6)
    _assert_same(po, pt)


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adam", "AdamW"])
def test_decoupled_weight_decay_per_param_group(name):
    """torch reads decoupled_weight_decay from each param group; so does descentlab."""
    init, x = _problem()
    pt, po = _fresh(init), _fresh(init)

    def groups(ps):
        return [
            {"params": [ps[0]], "decoupled_weight_decay": True},
            {"params": [ps[1]], "decoupled_weight_decay": False},
        ]

    for fused in (False, True):
        pt, po = _fresh(init), _fresh(init)
        ref = getattr(torch.optim, name)(groups(pt), lr=0.01, weight_decay=0.2, foreach=False)
        ours = getattr(optim, name)(groups(po), lr=0.01, weight_decay=0.2, fused=fused)
        _train(ref, pt, x, 6)
        _train(ours, po, x, 6)
        _assert_same(po, pt)
        assert [g["decoupled_weight_decay"] for g in ours.param_groups] == [True, False]


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_tensor_lr_matches_torch(name, kw, fused):
    """A 0-dim tensor lr (float32, as torch's tests make it) gives torch's iterates. (torch
    computes some lr-derived scalars of its Adam family in the tensor's float32, descentlab
    in double precision: they agree to float32 rounding.)"""
    kw = {**kw, "lr": torch.tensor(kw["lr"])}
    (ref, pt), (ours, po), x = _pair(name, kw, fused=fused)
    _train(ref, pt, x, 5)
    _train(ours, po, x, 5)
    _assert_same(po, pt, rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------------------
# Complex parameters: a complex number is a pair of reals (torch's view_as_real)
# --------------------------------------------------------------------------------------


def _complex_loss(p):
    return (p.abs() ** 3).sum() + (p.real * p.imag).sum()


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_complex_parameters_match_torch(name, kw, fused):
    g = torch.Generator().manual_seed(1)
    init = torch.randn(5, 4, dtype=torch.complex128, generator=g)
    a, b = init.clone().requires_grad_(), init.clone().requires_grad_()
    ref = getattr(torch.optim, name)([a], foreach=False, **kw)
    ours = getattr(optim, name)([b], fused=fused, **kw)
    for _ in range(8):
        for opt, p in ((ref, a), (ours, b)):
            opt.zero_grad()
            _complex_loss(p).backward()
            opt.step()
    torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-13, atol=1e-15)
    for key, value in ref.state[a].items():  # the state keeps torch's layout
        if isinstance(value, torch.Tensor) and value.ndim:
            assert ours.state[b][key].dtype == value.dtype, key
            torch.testing.assert_close(ours.state[b][key], value, rtol=1e-12, atol=1e-15)


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), GENERIC, ids=GIDS)
def test_complex_2d_equals_its_real_and_imaginary_parts(name, kw, fused):
    """A complex parameter steps as two real parameters (its real and imaginary parts)."""
    g = torch.Generator().manual_seed(2)
    init = torch.randn(3, 4, dtype=torch.complex128, generator=g)
    c = init.clone().requires_grad_()
    re = init.real.clone().requires_grad_()
    im = init.imag.clone().requires_grad_()
    oc = getattr(optim, name)([c], fused=fused, **kw)
    orr = getattr(optim, name)([re, im], fused=fused, **kw)
    if name == "Adagrad" and kw.get("initial_accumulator_value"):
        pytest.skip("torch starts both halves of a complex accumulator at the initial value")
    for _ in range(6):
        oc.zero_grad()
        _complex_loss(c).backward()
        oc.step()
        orr.zero_grad()
        _complex_loss(torch.complex(re, im)).backward()
        orr.step()
    torch.testing.assert_close(c.detach().real, re.detach(), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(c.detach().imag, im.detach(), rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------------------
# torch.compile around step
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kw"), [GENERIC[0], GENERIC[6]], ids=[GIDS[0], GIDS[6]])
def test_compiled_step_keeps_state_like_torch(name, kw):
    (ref, pt), (ours, po), x = _pair(name, kw)
    torch._dynamo.reset()
    step = torch.compile(ours.step, backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            for ps, opt in ((pt, ref), (po, ours)):
                opt.zero_grad()
                _loss(ps, x).backward()
            ref.step()
            step()
    assert ours.state[po[0]], "the compiled step lost the optimizer state"
    _assert_same(po, pt)


# --------------------------------------------------------------------------------------
# float32: torch's for-loop bit for bit, where torch's own paths agree
# --------------------------------------------------------------------------------------

# torch's for-loop and foreach implementations of these agree bitwise in float32; NAdam and
# RAdam are left out because torch's own two paths do not (their foreach forms reorder the
# arithmetic), so there is no one torch result to reproduce.
BITWISE = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.3)),
]


@BACKENDS
@pytest.mark.parametrize(("name", "kw"), BITWISE, ids=_ids(BITWISE))
def test_float32_iterates_are_torchs_bit_for_bit(name, kw, fused):
    g = torch.Generator().manual_seed(3)
    init = torch.randn(40, 37, generator=g)  # 1480 elements: vector loops and a tail
    grads = [torch.randn(40, 37, generator=g) for _ in range(12)]
    a, b = init.clone().requires_grad_(), init.clone().requires_grad_()
    ref = getattr(torch.optim, name)([a], foreach=False, **kw)
    ours = getattr(optim, name)([b], fused=fused, **kw)
    for grad in grads:
        a.grad, b.grad = grad.clone(), grad.clone()
        ref.step()
        ours.step()
    if fused and name not in ("SGD",) and not F.sqrt_reproduces_torch():
        # the one operation that may round differently: the kernel's square root (see
        # descentlab.optim.fused, "Numerics"); everything else is torch's order
        torch.testing.assert_close(b.detach(), a.detach(), rtol=2e-6, atol=1e-6)
        return
    assert torch.equal(b.detach(), a.detach()), int((b != a).sum())


def test_bf16_autocast_with_grad_scaler_follows_torch_bit_for_bit():
    """AdamW under bfloat16 autocast and a GradScaler: a one-ulp difference in a float32
    weight can flip its bfloat16 rounding, which the next gradients amplify -- so only
    bit-identical steps keep two runs together (torch's own paths: identical)."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 20), torch.randn(64, 1)
    net = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    twin = copy.deepcopy(net)
    ref = torch.optim.AdamW(net.parameters(), lr=1e-2, foreach=False)
    ours = optim.AdamW(twin.parameters(), lr=1e-2, fused=False)
    runs = [(net, ref, torch.amp.GradScaler("cpu")), (twin, ours, torch.amp.GradScaler("cpu"))]
    for _ in range(30):
        for model, opt, scaler in runs:
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = torch.nn.functional.mse_loss(model(x).float(), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    for p, q in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q)


# --------------------------------------------------------------------------------------
# Fused vs for-loop in every supported dtype
# --------------------------------------------------------------------------------------

# Every named optimizer with a fused form, each in a configuration that switches on its
# options. Weight decay is small where a 16-bit for-loop would otherwise divide 0 by 0 (an
# L2 term cancelling a gradient leaves a second moment below float16's smallest number, and
# eps=1e-8 rounds to 0 there: torch's for-loop does the same).
FUSED_FORMS = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("SGD", dict(lr=0.05, maximize=True)),
    ("Momentum", dict(lr=0.05, momentum=0.9, form="velocity")),
    ("Nesterov", dict(lr=0.05, momentum=0.9, form="velocity", weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
    ("Adadelta", dict(lr=2.0, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.01)),
    ("Adamax", dict(lr=0.02, weight_decay=0.01)),
    ("ASGD", dict(lr=0.02, t0=20, lambd=0.01, weight_decay=0.01)),
    ("Rprop", dict(lr=0.01, etas=(0.4, 1.3), step_sizes=(1e-4, 0.1))),
    ("Lion", dict(lr=0.01, weight_decay=0.1)),
    ("ScheduleFreeAdamW", dict(lr=0.02, weight_decay=0.01)),
]
FIDS = _ids(FUSED_FORMS)
# float32/float64 fused vs for-loop after 100 steps, in ulps at the parameters' scale: 4 where
# the kernel follows the eager form's operation order (only square roots may round otherwise);
# Schedule-Free AdamW's kernel orders its interpolations its own way (measured: 14 ulps in
# float64, 10 in float32)
ULPS_APART = {"ScheduleFreeAdamW": 16}
# Lion's update is the sign of an interpolation that vanishes exactly, in exact arithmetic,
# for some 16-bit inputs; there the rounding of 1 - beta1 (float32 in the kernel, float64 in
# the reference) picks the sign, a whole step apart: left out of the per-step comparison
ROUNDED_ONCE = [row for row in FUSED_FORMS if row[0] != "Lion"]
ALL_DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
SIXTEEN = [torch.float16, torch.bfloat16]
STEPS16 = 100


def _spacing(magnitude: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The distance between neighbouring numbers of ``dtype`` at ``magnitude`` (one ulp)."""
    fi = torch.finfo(dtype)
    return torch.exp2(torch.floor(torch.log2(magnitude.double().clamp_min(fi.tiny)))) * fi.eps


def _ulps(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> float:
    """The largest ``|a - b|`` in ulps of ``dtype`` at ``scale``."""
    diff = (a.double() - b.double()).abs()
    assert torch.isfinite(diff).all()
    return float((diff / _spacing(scale, dtype)).max())


def _sequence(dtype: torch.dtype, steps: int, shape=(37, 27), seed=0):
    """A parameter and a fixed gradient sequence (|g| in [0.1, 1.1], random signs); 999
    elements, so every kernel runs its vector loop and its scalar tail."""
    g = torch.Generator().manual_seed(seed)
    init = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    grads = []
    for _ in range(steps):
        size = 0.1 + torch.rand(*shape, generator=g, dtype=torch.float64)
        grads.append(
            (size * torch.randn(*shape, generator=g, dtype=torch.float64).sign()).to(dtype)
        )
    return init, grads


def _descend(make, init, grads):
    p = init.clone().requires_grad_()
    opt = make([p])
    for grad in grads:
        p.grad = grad.clone()
        opt.step()
    return p.detach(), opt


def _ours(name, kw, **backend):
    return lambda params: getattr(optim, name)(params, **backend, **kw)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize(("name", "kw"), FUSED_FORMS, ids=FIDS)
def test_fused_matches_the_for_loop_in_every_dtype(name, kw, dtype):
    """100 steps of the same gradients on both backends. float32 and float64: within 4 ulps
    (ULPS_APART for a kernel in its own order; the kernels' float64 root is correctly rounded,
    MKL's is not always; on CPUs where
    :func:`~descentlab.optim.fused.sqrt_reproduces_torch` is False the float32 roots differ by
    an ulp too). float16 and bfloat16: the for-loop rounds every intermediate to 16 bits, the
    kernel only what it stores, so they part by a few ulps -- and the kernel's drift from the
    float64 run of the same gradients stays at rounding level: no larger than the for-loop's
    (plus 2 ulps), at most half an ulp per step."""
    init, grads = _sequence(dtype, STEPS16)
    fused, opt = _descend(_ours(name, kw, fused=True), init, grads)
    assert any(plan is not None for plan in opt._fused.plans.values())
    eager, _ = _descend(_ours(name, kw, fused=False), init, grads)
    exact, _ = _descend(_ours(name, kw, fused=False), init.double(), [g.double() for g in grads])
    scale = exact.abs().max()
    assert float((exact - init.double()).abs().max()) > 10 * float(_spacing(scale, dtype))
    apart = _ulps(fused, eager, scale, dtype)
    if dtype in (torch.float32, torch.float64):
        assert apart <= ULPS_APART.get(name, 4), apart
        return
    drift, eager_drift = _ulps(fused, exact, scale, dtype), _ulps(eager, exact, scale, dtype)
    assert drift <= min(eager_drift + 2, STEPS16 / 2), (drift, eager_drift, apart)


def _reference_step(name, kw, opt, p, grad):
    """One step in float64 from ``opt``'s current state (16-bit values widened exactly):
    torch's for-loop where torch has the optimizer, else descentlab's float64 eager step
    (torch's for-loop to 3e-15 in this module's optim_db test)."""
    p64 = p.detach().double().requires_grad_()
    cls = getattr(torch.optim, name, None)
    ref = cls([p64], foreach=False, **kw) if cls else _ours(name, kw, fused=False)([p64])
    ref.load_state_dict(copy.deepcopy(opt.state_dict()))  # torch keeps 'step' tensors as given
    p64.grad = grad.double()
    ref.step()
    return p64.detach(), ref.state[p64]


@pytest.mark.parametrize("dtype", SIXTEEN, ids=str)
@pytest.mark.parametrize(("name", "kw"), ROUNDED_ONCE, ids=_ids(ROUNDED_ONCE))
def test_fused_16_bit_step_is_the_exact_step_rounded_once(name, kw, dtype):
    """float16/bfloat16 kernels widen, compute in float32 and round each stored value once
    (to nearest even), as torch's fused kernels do. So from any state a step gives the exact
    (float64) step from that state rounded to 16 bits, up to float32's own rounding: within one
    ulp at the scale of the step's operands (the old value, the new one and the gradient; a
    result that nearly cancels is only known to float32's precision of the operands), for
    parameters and every state tensor, at each of 40 steps -- and exactly in nearly all."""
    init, grads = _sequence(dtype, 40, seed=1)
    p = init.clone().requires_grad_()
    opt = _ours(name, kw, fused=True)([p])
    inexact = total = 0
    for grad in grads:
        ref_p, ref_state = _reference_step(name, kw, opt, p, grad)
        before = {"p": p.detach().clone()}
        before.update({k: v.clone() for k, v in opt.state[p].items() if _is_array(v, p)})
        p.grad = grad.clone()
        opt.step()
        pairs = [("p", p.detach(), ref_p)]
        pairs += [(k, v, ref_state[k]) for k, v in opt.state[p].items() if _is_array(v, p)]
        for key, ours, ref in pairs:
            if key not in before:  # created by this step (a first momentum buffer)
                before[key] = torch.zeros_like(ours)
            scale = torch.stack([ours.abs(), before[key].abs(), grad.abs()]).amax(0)
            err = _ulps(ours, ref.to(dtype), scale.double(), dtype)
            assert err <= 1, (key, err)
            inexact += int((ours != ref.to(dtype)).sum())
            total += ours.numel()
    assert inexact <= 0.01 * total, (inexact, total)


def _is_array(value, p) -> bool:
    return isinstance(value, torch.Tensor) and value.shape == p.shape


# torch's fused CPU kernels in 16 bits (torch 2.13), where they are right: SGD's vector loop
# never writes the parameters (only its scalar tail, under 16 elements here, does), and
# Adagrad's rounds lr, weight_decay and eps to 16 bits first (values exact in 16 bits here).
# Their scalar tails and Adam's both loops round only coefficients to float32, as ours do.
TORCH_FUSED = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True), (15,)),
    ("SGD", dict(lr=0.05, maximize=True), (15,)),
    ("Adagrad", dict(lr=0.125, weight_decay=0.25), (37, 27)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01), (37, 27)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1), (37, 27)),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize(
    ("name", "kw", "shape"), TORCH_FUSED, ids=_ids([c[:2] for c in TORCH_FUSED])
)
def test_fused_matches_torchs_fused_kernels_in_every_dtype(name, kw, shape, dtype):
    """100 steps against torch's own fused CPU kernel. 16 bits: identical (both compute in
    float32 and round each store once; the one operation order that differs, the second
    moment's ``b2 * v + (1 - b2) * g * g`` (torch) against ``fma`` (ours, torch's for-loop
    order), moves float32 results by an ulp, too little to move a 16-bit rounding in these
    runs). float32 and float64: torch's fused kernels round in another order than its
    for-loop, which ours follow: within 4 ulps."""
    init, grads = _sequence(dtype, STEPS16, shape=shape)
    theirs, _ = _descend(lambda ps: getattr(torch.optim, name)(ps, fused=True, **kw), init, grads)
    ours, _ = _descend(_ours(name, kw, fused=True), init, grads)
    assert float((ours.double() - init.double()).abs().max()) > 0.1
    apart = _ulps(ours, theirs, theirs.abs().max(), dtype)
    if dtype in SIXTEEN:
        assert torch.equal(ours, theirs), apart
    assert apart <= 4, apart


# --------------------------------------------------------------------------------------
# Sparse gradients (SGD and Adagrad, as in torch)
# --------------------------------------------------------------------------------------


def _rosenbrock_grad(w: torch.Tensor, x_only: bool) -> torch.Tensor:
    """The gradient of Rosenbrock's function, one coordinate at a time, as an uncoalesced
    sparse tensor (duplicate indices whose values add up), like torch's sparse test."""
    x, y = w.detach()
    gx = -400 * x * (y - x**2) - 2 * (1 - x)
    gy = 200 * (y - x**2)
    if x_only:
        idx, val = [[0, 0]], torch.stack([gx / 4, gx - gx / 4])
    else:
        idx, val = [[1, 1, 1]], torch.stack([gy / 4, gy / 2, gy - gy / 4 - gy / 2])
    return torch.sparse_coo_tensor(torch.tensor(idx), val, (2,))


SPARSE = [
    ("SGD", dict(lr=1e-4)),
    ("SGD", dict(lr=1e-4, momentum=0.9, dampening=0.1)),
    ("SGD", dict(lr=1e-4, momentum=0.9, nesterov=True, maximize=False)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize(("name", "kw"), SPARSE, ids=_ids(SPARSE))
def test_sparse_rosenbrock_matches_torch_and_the_dense_gradient(name, kw):
    init = torch.tensor([1.5, 1.5], dtype=torch.float64)
    a, b, c = (init.clone().requires_grad_() for _ in range(3))
    ref = getattr(torch.optim, name)([a], foreach=False, **kw)
    ours = getattr(optim, name)([b], **kw)
    dense = getattr(optim, name)([c], **kw)
    for i in range(20):
        for p, opt, as_dense in ((a, ref, False), (b, ours, False), (c, dense, True)):
            g = _rosenbrock_grad(p, x_only=i % 2 == 0)
            p.grad = g.to_dense() if as_dense else g
            opt.step()
    assert float((a - init).abs().max()) > 1e-4
    torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(c.detach(), a.detach(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ["SGD", "Adagrad"])
def test_sparse_embedding_trains_like_torch(name):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(50, 4, sparse=True, dtype=torch.float64)
    twin = copy.deepcopy(emb)
    ref = getattr(torch.optim, name)(emb.parameters(), lr=0.1)
    ours = getattr(optim, name)(twin.parameters(), lr=0.1)
    for step in range(5):
        idx = torch.tensor([step, 7, 7, 30 + step])
        for model, opt in ((emb, ref), (twin, ours)):
            opt.zero_grad()
            (model(idx) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(twin.weight, emb.weight, rtol=1e-14, atol=1e-15)
    assert torch.equal(twin.weight[45:], emb.weight[45:])  # rows never looked up: untouched


def test_sparse_gradients_refused_where_torch_refuses_them():
    def sparse_param():
        p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        p.grad = torch.sparse_coo_tensor(
            torch.tensor([[1]]), torch.tensor([2.0], dtype=torch.float64), (3,)
        )
        return p

    for make, err, match in [
        (lambda p: optim.Adagrad([p], weight_decay=0.1), RuntimeError, "weight_decay"),
        (lambda p: optim.SGD([p], lr=0.1, weight_decay=0.1), RuntimeError, "weight_decay"),
        (lambda p: optim.SGD([p], lr=0.1, fused=True), ValueError, "sparse"),
        (lambda p: optim.Adam([p]), ValueError, "sparse"),
    ]:
        p = sparse_param()
        opt = make(p)
        with pytest.raises(err, match=match):
            opt.step()
        assert torch.equal(p.detach(), torch.ones(3, dtype=torch.float64))
        assert not opt.state[p]


# --------------------------------------------------------------------------------------
# Muon on parameters that are not matrices: the documented AdamW fallback (torch's Muon
# refuses them), against torch's AdamW and through torch's convergence test
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tensor_lr", [False, True], ids=["float-lr", "tensor-lr"])
def test_muon_fallback_on_vectors_is_torchs_adamw(tensor_lr):
    """Both step paths (a Python lr takes torch's final form, a tensor lr the general one)."""
    gen = torch.Generator().manual_seed(0)
    init = torch.randn(7, generator=gen, dtype=torch.float64)
    grads = [torch.randn(7, generator=gen, dtype=torch.float64) for _ in range(6)]
    grads[3] = torch.zeros(7, dtype=torch.float64)  # a zero gradient in between
    lr = torch.tensor(0.01, dtype=torch.float64) if tensor_lr else 0.01
    p, q = torch.nn.Parameter(init.clone()), torch.nn.Parameter(init.clone())
    ours = optim.Muon([p], lr=lr, adamw_betas=(0.8, 0.99), adamw_weight_decay=0.1)
    ref = torch.optim.AdamW([q], lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, foreach=False)
    for g in grads:
        p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-14, atol=1e-15)


MUON = next(i for i in common.optim_db if i.name == "Muon")


def test_muon_with_a_bias_goes_the_right_direction_in_torchs_convergence_test():
    """torch's ``test_forloop_goes_right_direction`` (a weight and a bias, 20 steps, each of
    Muon's optim_db inputs, with and without its schedulers): the loss falls."""
    failures = []
    for sched in [*MUON.scheduler_inputs, []]:
        for inp in MUON.optim_inputs_func(device="cpu"):
            torch.manual_seed(1)
            weight, bias = (
                torch.nn.Parameter(torch.randn(10, 5)),
                torch.nn.Parameter(torch.randn(10)),
            )
            x = torch.randn(5)
            opt = optim.Muon([weight, bias], **inp.kwargs)
            schedulers = [s(opt) for s in sched]

            def closure(opt=opt, weight=weight, bias=bias, x=x):
                opt.zero_grad()
                loss = (weight.mv(x) + bias).pow(2).sum()
                loss.backward()
                return loss

            start = closure().item()
            for _ in range(20):
                loss = closure()
                opt.step()
                for s in schedulers:
                    s.step(loss) if isinstance(
                        s, torch.optim.lr_scheduler.ReduceLROnPlateau
                    ) else s.step()
            if not closure().item() < start:
                failures.append((inp.desc, [type(s).__name__ for s in schedulers]))
    assert not failures, failures


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adagrad", "SGD"])
def test_fused_on_the_meta_device_is_refused_at_the_step_in_torchs_words(name):
    """torch's test_fused_error_on_params_on_meta: a RuntimeError at ``step()`` whose message
    starts as torch's does."""
    import descentlab.optim as ours

    for cls in (getattr(torch.optim, name), getattr(ours, name)):
        p = torch.nn.Parameter(torch.ones(3, device="meta"))
        p.grad = torch.ones(3, device="meta")
        opt = cls([p], lr=0.1, fused=True)
        with pytest.raises(RuntimeError, match=r"^`fused=True` requires all the params to be "
                           r"floating point Tensors of supported devices: \[.*'cpu'.*\] but "
                           r"torch.float32 and meta"):  # fmt: skip
            opt.step()


# --------------------------------------------------------------------------------------
# params=None with valid hyperparameters: torch's TypeError, in one line naming params
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(dict.fromkeys([*NAMES, "LBFGS", "Muon"])))
def test_params_none_is_refused_with_a_type_error_naming_params(name):
    with pytest.raises(TypeError):  # torch: 'NoneType' object is not iterable
        getattr(torch.optim, name)(None)
    with pytest.raises(TypeError, match=rf"^{name}: params must be an iterable of Tensors or "
                       r"dicts .*, got None$"):  # fmt: skip
        getattr(optim, name)(None)


# --------------------------------------------------------------------------------------
# What descentlab accepts where torch refuses, on purpose (torchapi.BEYOND_TORCH): torch's
# TestOptimRenewed.test_errors inputs that torch refuses and descentlab takes, each meaning
# what torch's accepted spelling of it means
# --------------------------------------------------------------------------------------


def test_every_input_descentlab_accepts_beyond_torch_is_listed_and_refused_by_torch():
    """Each optim_db error input descentlab does not refuse is one BEYOND_TORCH lists (with
    its reason), and each listed text is still one torch refuses with."""
    unlisted, used = [], set()
    for name, err in ERRORS:
        if issubclass(err.error_type, Warning):
            continue
        inp = err.optimizer_error_input
        params = inp.params if inp.params is not None else [torch.nn.Parameter(torch.randn(3))]
        if name == "Muon" and inp.params is None:
            params = [torch.nn.Parameter(torch.randn(3, 2))]
        try:
            opt = getattr(optim, name)(params, **inp.kwargs)
            if err.error_on == common.OptimizerErrorEnum.STEP_ERROR:
                opt.step()
        except err.error_type:
            continue
        hits = [t for t in BEYOND_TORCH if t in err.error_regex]
        if not hits:
            unlisted.append((name, err.error_regex))
        used.update(hits)
    assert not unlisted, unlisted
    assert used == set(BEYOND_TORCH), set(BEYOND_TORCH) - used
    assert all(len(why) > 20 for why in BEYOND_TORCH.values())


def _adam_pair(torch_kw, our_kw, name="Adam"):
    init, x = _problem(torch.float64)
    pt, po = _fresh(init), _fresh(init)
    ref = getattr(torch.optim, name)(pt, foreach=False, **torch_kw)
    ours = getattr(optim, name)(po, **our_kw)
    _train(ref, pt, x, 8)
    _train(ours, po, x, 8)
    return pt, po


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize(
    ("torch_kw", "our_kw"),
    [
        (dict(lr=0.01), dict(lr=torch.tensor(0.01, dtype=torch.float64), foreach=True)),
        (dict(betas=(0.9, 0.99)), dict(betas=(0.9, torch.tensor(0.99, dtype=torch.float64)))),
        (dict(betas=(0.9, 0.99)), dict(betas=(torch.tensor(0.9, dtype=torch.float64), 0.99))),
        (
            dict(betas=(0.9, 0.99)),
            dict(betas=tuple(torch.tensor(b, dtype=torch.float64) for b in (0.9, 0.99)),
                 foreach=True),
        ),
    ],
    ids=["tensor-lr-foreach", "betas-float-tensor", "betas-tensor-float", "betas-tensors-foreach"],
)  # fmt: skip
def test_tensor_hyperparameters_torch_refuses_mean_what_their_numbers_mean(name, torch_kw, our_kw):
    pt, po = _adam_pair(torch_kw, our_kw, name)
    _assert_same(po, pt)
