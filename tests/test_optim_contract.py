"""The torch.optim.Optimizer contract, guards, clipping, noise, monitoring and bad input."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from _models import batches, digits_mlp, digits_tensors, param_groups, train
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from descentlab import optim

NAMED = [
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("momentum", dict(lr=0.05, form="velocity")),
    ("nesterov", dict(lr=0.05)),
    ("adagrad", dict(lr=0.05)),
    ("adadelta", dict()),
    ("rmsprop", dict(lr=1e-3, centered=True, momentum=0.5)),
    ("adam", dict(lr=1e-2, amsgrad=True)),
    ("adamw", dict(lr=1e-2)),
    ("nadam", dict(lr=1e-2)),
    ("radam", dict(lr=1e-2)),
    ("adamax", dict(lr=1e-2)),
    ("asgd", dict(lr=0.05, t0=10)),
    ("rprop", dict(lr=1e-3)),
]
#: and every other registered optimizer at its defaults (drawn from the registry; SAM's step
#: needs a closure, which this loop does not give)
RESUMED = NAMED + [
    (r.name, {}) for r in optim.records() if r.name not in dict(NAMED) and r.name != "sam"
]


@pytest.mark.parametrize(("name", "kwargs"), RESUMED, ids=[n for n, _ in RESUMED])
def test_state_dict_round_trip_resumes_identically(name, kwargs):
    cls = optim.get(name)
    idx = batches(60)
    straight = digits_mlp(torch.float32)
    resumed = copy.deepcopy(straight)
    opt = cls(param_groups(straight, {"lr": kwargs.get("lr", 1.0) / 2}), **kwargs)
    train(straight, opt, idx, torch.float32)

    opt1 = cls(param_groups(resumed, {"lr": kwargs.get("lr", 1.0) / 2}), **kwargs)
    train(resumed, opt1, idx[:30], torch.float32)
    buf = io.BytesIO()
    torch.save({"model": resumed.state_dict(), "opt": opt1.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    fresh = digits_mlp(torch.float32, seed=123)
    fresh.load_state_dict(saved["model"])
    opt2 = cls(param_groups(fresh, {"lr": kwargs.get("lr", 1.0) / 2}), **kwargs)
    opt2.load_state_dict(saved["opt"])
    train(fresh, opt2, idx[30:], torch.float32)
    for a, b in zip(straight.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
        assert opt.state[a].keys() == opt2.state[b].keys()
        for key, v in opt.state[a].items():  # the state too, each entry in its own dtype
            _assert_same(v, opt2.state[b][key], key)


def _assert_same(v, w, key: str) -> None:
    """Equal bit for bit, tensors in the same dtype (lists of tensors entry by entry)."""
    if isinstance(v, list | tuple):
        assert type(v) is type(w) and len(v) == len(w), key
        for x, y in zip(v, w, strict=True):
            _assert_same(x, y, key)
    elif isinstance(v, torch.Tensor):
        assert v.dtype == w.dtype and torch.equal(v, w), key
    else:
        assert v == w, key


def test_torch_lr_scheduler_drives_our_optimizer_like_torchs():
    idx = batches(100)
    ref = digits_mlp(torch.float64)
    ours = copy.deepcopy(ref)
    topt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, foreach=False)
    oopt = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=10, gamma=0.5)
    osched = torch.optim.lr_scheduler.StepLR(oopt, step_size=10, gamma=0.5)
    for ix in idx:
        train(ref, topt, [ix], torch.float64)
        train(ours, oopt, [ix], torch.float64)
        tsched.step()
        osched.step()
    assert oopt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**10)
    for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_schedule_callable_as_hyperparameter():
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = optim.SGD([w], lr=lambda t: 1.0 / (t + 1))  # eta/t; schedules count from 0
    for _ in range(4):
        w.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
    assert float(w.detach()) == pytest.approx(-(1 + 1 / 2 + 1 / 3 + 1 / 4))


def test_params_without_grad_are_skipped_and_keep_no_state():
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = torch.ones(3)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3))
    assert len(opt.state[b]) == 0
    assert float(opt.state[a]["step"]) == 1


def test_closure_returns_loss_and_hooks_run():
    w = torch.nn.Parameter(torch.tensor([2.0]))
    opt = optim.Adam([w], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.detach()) == 4.0
    assert calls == ["pre", "post"]
    assert float(w.detach()) < 2.0


@pytest.mark.parametrize("fused", [True, False])
def test_hooks_run_on_every_path_including_the_steady_fused_step(fused):
    """descentlab's step is marked ``hooked`` so torch does not wrap it; it must still call
    per-optimizer and global hooks, in torch's order, on the steady fast path too."""
    w = torch.nn.Parameter(torch.ones(4))
    opt = optim.SGD([w], lr=0.1, fused=fused)
    for _ in range(3):  # reach the steady state first
        w.grad = torch.ones(4)
        opt.step()
    calls = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre")),
        opt.register_step_pre_hook(lambda o, a, k: calls.append("pre")),
        opt.register_step_post_hook(lambda o, a, k: calls.append(("post", float(w.detach()[0])))),
        register_optimizer_step_post_hook(lambda o, a, k: calls.append("global post")),
    ]
    try:
        w.grad = torch.ones(4)
        opt.step()
    finally:
        for h in handles:
            h.remove()
    assert calls == ["global pre", "pre", ("post", pytest.approx(0.6)), "global post"]
    w.grad = torch.ones(4)
    opt.step()  # hooks removed: the plain path again, nothing recorded
    assert len(calls) == 4 and float(w.detach()[0]) == pytest.approx(0.5)


def test_a_subclass_overriding_step_runs_each_hook_once():
    class Counting(optim.SGD):
        def step(self, closure=None):
            self.count = getattr(self, "count", 0) + 1
            return super().step(closure)

    w = torch.nn.Parameter(torch.ones(2))
    opt = Counting([w], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    for _ in range(3):
        w.grad = torch.ones(2)
        opt.step()
    assert opt.count == 3 and calls == ["pre", "post"] * 3


def test_pre_hook_can_replace_the_closure():
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    opt.register_step_pre_hook(lambda o, a, k: ((o,), {"closure": closure}))
    loss = opt.step()
    assert float(loss.detach()) == 9.0 and float(w.detach()) == pytest.approx(3.0 - 0.1 * 6.0)


def test_step_is_recorded_by_the_profiler():
    w = torch.nn.Parameter(torch.ones(4))
    opt = optim.Adam([w], lr=0.1)
    for _ in range(3):
        w.grad = torch.ones(4)
        opt.step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    names = {e.name for e in prof.events()}
    assert "Optimizer.step#Adam.step" in names


def test_sparse_gradients_refused_before_any_change():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = optim.Adam(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    before = emb.weight.detach().clone()
    with pytest.raises(ValueError, match="sparse"):
        opt.step()
    assert torch.equal(before, emb.weight.detach())
    assert len(opt.state) == 0


def test_lookahead_requires_closure():
    w = torch.nn.Parameter(torch.ones(2))
    opt = optim.Nesterov([w], lr=0.1, lookahead=True)
    w.grad = torch.ones(2)
    with pytest.raises(ValueError, match="closure"):
        opt.step()


# --- guards -------------------------------------------------------------------------------


def _guarded(mode):
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(2))
    rule = optim.chain(optim.non_finite_guard(mode), optim.scale_by_adam(), optim.scale_by_lr(0.1))
    opt = optim.Optimizer([{"params": [a]}, {"params": [b]}], rule)
    a.grad, b.grad = torch.ones(3), torch.ones(2)
    opt.step()  # creates state
    return a, b, opt


@pytest.mark.parametrize("mode", ["raise", "skip"])
def test_guard_leaves_params_and_state_untouched(mode):
    a, b, opt = _guarded(mode)
    before = copy.deepcopy(opt.state_dict())
    pa, pb = a.detach().clone(), b.detach().clone()
    a.grad = torch.ones(3)
    b.grad = torch.tensor([1.0, float("nan")])  # only the second group is bad
    if mode == "raise":
        with pytest.raises(optim.NonFiniteGradientError):
            opt.step()
    else:
        opt.step()
        assert opt.last_step_skipped
    assert torch.equal(a.detach(), pa)
    assert torch.equal(b.detach(), pb)
    after = opt.state_dict()
    for k, st in before["state"].items():
        for name, value in st.items():
            assert torch.equal(after["state"][k][name], value)


def test_guard_zero_mode_zeros_bad_entries():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = optim.Optimizer([w], optim.chain(optim.non_finite_guard("zero"), optim.scale_by_lr(1.0)))
    w.grad = torch.tensor([1.0, float("inf"), float("nan")])
    opt.step()
    assert w.detach().tolist() == [-1.0, 0.0, 0.0]


def test_guard_must_be_first():
    with pytest.raises(ValueError, match="first rule"):
        optim.chain(optim.scale_by_lr(0.1), optim.non_finite_guard())


def test_clip_by_global_norm_matches_torch_utility():
    torch.manual_seed(0)
    grads = [torch.randn(5, 3), torch.randn(7)]
    params = [torch.zeros_like(g) for g in grads]
    ref = [g.clone() for g in grads]
    holders = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for h, g in zip(holders, ref, strict=True):
        h.grad = g
    torch.nn.utils.clip_grad_norm_(holders, max_norm=0.5)
    rule = optim.chain(optim.clip_by_global_norm(0.5), optim.scale_by_lr(1.0))
    optim.apply_updates(rule, params, grads)
    for p, h in zip(params, holders, strict=True):
        torch.testing.assert_close(p, -h.grad)


def test_clip_by_value():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = optim.Optimizer([w], optim.chain(optim.clip_by_value(0.5), optim.scale_by_lr(1.0)))
    w.grad = torch.tensor([2.0, -0.25, -3.0])
    opt.step()
    assert w.detach().tolist() == [-0.5, 0.25, 0.5]


def test_gradient_noise_variance_and_reproducibility():
    """Noise variance eta / (1+t)^gamma (Neelakantan et al.), reproducible from the seed."""
    n = 200_000
    rule = optim.add_noise(noise_eta=0.3, noise_gamma=0.55, noise_seed=7)
    outs = []
    for _ in range(2):
        p = [torch.zeros(n, dtype=torch.float64)]
        state = optim.apply_updates(rule, p, [torch.zeros(n, dtype=torch.float64)])
        state = optim.apply_updates(rule, p, [torch.zeros(n, dtype=torch.float64)], state)
        outs.append(p[0].clone())
    assert torch.equal(outs[0], outs[1])
    # two independent draws at t=1 and t=2 add up: var = eta/2^g + eta/3^g
    expected = 0.3 / 2**0.55 + 0.3 / 3**0.55
    assert float(outs[0].var()) == pytest.approx(expected, rel=0.02)


def test_maximize_rule_ascends():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = optim.SGD([w], lr=0.5, maximize=True)
    w.grad = torch.ones(1)
    opt.step()
    assert float(w.detach()) == 0.5


def test_coupled_vs_decoupled_weight_decay_under_adam():
    """Coupled L2 is rescaled by Adam's denominator; decoupled decay shrinks by lr*wd*p."""
    w = torch.nn.Parameter(torch.full((1,), 10.0, dtype=torch.float64))
    opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = torch.zeros(1, dtype=torch.float64)
    opt.step()
    assert float(w.detach()) == pytest.approx(10.0 - 0.1 * 0.5 * 10.0)  # zero gradient: pure decay
    w2 = torch.nn.Parameter(torch.full((1,), 10.0, dtype=torch.float64))
    opt2 = optim.Adam([w2], lr=0.1, weight_decay=0.5)
    w2.grad = torch.zeros(1, dtype=torch.float64)
    opt2.step()
    assert float(w2.detach()) == pytest.approx(10.0 - 0.1)  # normalized: one lr-sized step


# --- batched hyperparameters ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta"])
def test_batched_lr_equals_separate_runs(name):
    cls = optim.get(name)
    lrs = torch.tensor([1e-3, 3e-3, 1e-2], dtype=torch.float64)
    start = torch.tensor([[1.0, -2.0], [0.5, 0.5], [-1.5, 2.0]], dtype=torch.float64)

    def f(x):
        return (1 - x[..., 0]) ** 2 + 5 * (x[..., 1] - x[..., 0] ** 2) ** 2

    X = torch.nn.Parameter(start.clone())
    opt = cls([X], lr=lrs)
    for _ in range(50):
        opt.zero_grad()
        f(X).sum().backward()
        opt.step()
    for k in range(3):
        x = torch.nn.Parameter(start[k].clone())
        o = cls([x], lr=float(lrs[k]))
        for _ in range(50):
            o.zero_grad()
            f(x).backward()
            o.step()
        torch.testing.assert_close(X.detach()[k], x.detach(), rtol=1e-12, atol=1e-12)


# --- monitoring -------------------------------------------------------------------------------


def test_monitor_records_norms_and_ratio():
    model = digits_mlp(torch.float64)
    opt = optim.Adam(param_groups(model, {"lr": 1e-3}), lr=1e-2, monitor=True)
    train(model, opt, batches(5), torch.float64)
    recs = opt.monitor.records
    assert len(recs) == 10 and {r["group"] for r in recs} == {0, 1}
    steps, _ = opt.monitor.series("update_ratio", group=0)
    assert steps == [1, 2, 3, 4, 5]
    r0 = recs[0]
    assert r0["update_ratio"] == pytest.approx(r0["update_norm"] / r0["param_norm"])
    assert r0["lr"] == 1e-2 and recs[1]["lr"] == 1e-3
    # the recorded update norm is the norm of the actual parameter change
    first = list(model.parameters())[:2]
    before = [p.detach().clone() for p in first]
    train(model, opt, batches(1, seed=5), torch.float64)
    change = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(first, before, strict=True)])
    last0 = [r for r in opt.monitor.records if r["group"] == 0][-1]
    assert last0["update_norm"] == pytest.approx(float(change.norm()), rel=1e-9)
    assert last0["param_norm"] == pytest.approx(
        float(torch.cat([b.reshape(-1) for b in before]).norm()), rel=1e-12
    )


def test_monitor_off_by_default():
    w = torch.nn.Parameter(torch.ones(2))
    opt = optim.SGD([w], lr=0.1)
    assert opt.monitor is None


# --- bad input --------------------------------------------------------------------------------

INVALID = [
    # (optimizer, kwargs, parameter named in the message)
    ("sgd", dict(lr=-1.0), "lr"),
    ("sgd", dict(momentum=-0.1), "momentum"),
    ("sgd", dict(momentum=1.0), "momentum"),
    ("sgd", dict(weight_decay=-1e-4), "weight_decay"),
    ("sgd", dict(nesterov=True), "momentum"),
    ("sgd", dict(nesterov=True, momentum=0.9, dampening=0.1), "dampening"),
    ("sgd", dict(dampening=1.5, momentum=0.9), "dampening"),
    ("momentum", dict(form="sideways"), "form"),
    ("nesterov", dict(momentum=1.2), "momentum"),
    ("adagrad", dict(eps=-1e-10), "eps"),
    ("adagrad", dict(lr_decay=-1.0), "lr_decay"),
    ("adagrad", dict(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    ("adadelta", dict(rho=1.1), "rho"),
    ("adadelta", dict(eps=-1.0), "eps"),
    ("rmsprop", dict(alpha=-0.5), "alpha"),
    ("rmsprop", dict(momentum=-0.5), "momentum"),
    ("adam", dict(betas=(1.0, 0.999)), "betas[0]"),
    ("adam", dict(betas=(0.9, -0.1)), "betas[1]"),
    ("adam", dict(betas=(0.9,)), "betas"),
    ("adam", dict(eps=-1e-8), "eps"),
    ("adam", dict(lr=float("nan")), "lr"),
    ("adam", dict(amsgrad="yes"), "amsgrad"),
    ("adam", dict(capturable=True), "capturable"),
    ("adamw", dict(weight_decay=-0.01), "weight_decay"),
    ("nadam", dict(momentum_decay=-1.0), "momentum_decay"),
    ("radam", dict(betas=(0.9, 1.0)), "betas[1]"),
]


@pytest.mark.parametrize(("name", "kwargs", "param"), INVALID)
def test_invalid_hyperparameters_raise_value_error_naming_them(name, kwargs, param):
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError) as info:
        optim.get(name)([w], **kwargs)
    assert param in str(info.value)
    bad = next(iter(kwargs.values()))
    if isinstance(bad, float | int) and not isinstance(bad, bool) and bad == bad:
        assert str(bad) in str(info.value)


def test_unknown_option_and_unknown_name():
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(TypeError):
        optim.Adam([w], lr=0.1, bogus=1)
    with pytest.raises(ValueError, match="bogus"):
        optim.Optimizer([w], optim.chain(optim.scale_by_lr()), bogus=1)
    with pytest.raises(KeyError, match="adam"):
        optim.get("adamm")


def test_invalid_value_set_by_a_scheduler_fails_before_any_change():
    w = torch.nn.Parameter(torch.ones(2))
    opt = optim.Adam([w], lr=0.1)
    w.grad = torch.ones(2)
    opt.step()
    snapshot = copy.deepcopy(opt.state_dict())
    opt.param_groups[0]["lr"] = -0.5
    with pytest.raises(ValueError, match=r"lr must be a number >= 0\.0, got -0\.5"):
        opt.step()
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], snapshot["state"][0]["exp_avg"])
    assert float(opt.state[w]["step"]) == 1


def test_invalid_param_group_rejected():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="param group 1"):
        optim.Adam([{"params": [a]}, {"params": [b], "betas": (0.9, 2.0)}])
    with pytest.raises(ValueError, match="decoupled_weight_decay"):
        optim.Adam([{"params": [a]}, {"params": [b], "decoupled_weight_decay": "yes"}])


def test_chain_collision_errors():
    with pytest.raises(ValueError, match="both keep state"):
        optim.chain(optim.scale_by_adam(), optim.scale_by_radam())
    with pytest.raises(ValueError, match="at least one"):
        optim.chain()


def test_composed_optimizer_in_one_expression_trains():
    x, y = digits_tensors()
    model = digits_mlp(torch.float64)
    opt = optim.Optimizer(
        model.parameters(),
        optim.chain(
            optim.clip_by_global_norm(1.0),
            optim.scale_by_rms(alpha=0.9),
            optim.trace(momentum=0.9),
            optim.scale_by_lr(1e-3),
        ),
    )
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(model(x.double()), y))
    train(model, opt, batches(200), torch.float64)
    with torch.no_grad():
        after = float(torch.nn.functional.cross_entropy(model(x.double()), y))
    assert after < 0.5 * before
    assert np.isfinite(after)


@pytest.mark.parametrize(("name", "kwargs"), NAMED, ids=[n for n, _ in NAMED])
def test_chunked_execution_is_bit_identical(name, kwargs):
    """Cache-sized chunks change only how tensors are batched, never the arithmetic."""
    cls = optim.get(name)
    idx = batches(20)
    whole = digits_mlp(torch.float32)
    chunked = copy.deepcopy(whole)
    opt_whole = cls(param_groups(whole, {}), **kwargs)
    opt_whole.chunk_elements = 1 << 30
    opt_chunked = cls(param_groups(chunked, {}), **kwargs)
    opt_chunked.chunk_elements = 1  # every tensor its own chunk
    train(whole, opt_whole, idx, torch.float32)
    train(chunked, opt_chunked, idx, torch.float32)
    for a, b in zip(whole.parameters(), chunked.parameters(), strict=True):
        assert torch.equal(a, b)
