"""LBFGS against torch.optim.LBFGS: same closure on a deterministic full-batch problem,
fixed step and strong-Wolfe line search, the history and its limit, early stops, state dicts
both ways, and refusals."""

from __future__ import annotations

import copy

import pytest
import torch
from _models import digits_mlp, digits_tensors

from descentlab import optim


def _closure(model, opt, n=300, dtype=torch.float64):
    x, y = digits_tensors()
    x, y = x[:n].to(dtype), y[:n]

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return closure


def _run(model, opt, steps):
    closure = _closure(model, opt, dtype=next(model.parameters()).dtype)
    return [float(opt.step(closure).detach()) for _ in range(steps)]


def _rel_err(a, b):
    worst = 0.0
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        scale = q.detach().abs().max().clamp_min(1e-12)
        worst = max(worst, float((p.detach() - q.detach()).abs().max() / scale))
    return worst


CASES = [
    ("fixed-step", dict(lr=0.5, max_iter=10, history_size=5), 8),
    ("fixed-step-one-iter", dict(lr=0.3, max_iter=1, history_size=4), 40),
    ("strong-wolfe", dict(lr=1, max_iter=20, history_size=10, line_search_fn="strong_wolfe"), 6),
    (
        "strong-wolfe-short-history",
        dict(lr=1, max_iter=15, max_eval=18, history_size=2, line_search_fn="strong_wolfe"),
        6,
    ),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("kw", "steps"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch_lbfgs(kw, steps, dtype):
    ref = digits_mlp(dtype)
    ours = copy.deepcopy(ref)
    t_opt = torch.optim.LBFGS(ref.parameters(), **kw)
    o_opt = optim.LBFGS(ours.parameters(), **kw)
    t_losses = _run(ref, t_opt, steps)
    o_losses = _run(ours, o_opt, steps)
    assert t_losses[-1] < 0.5 * t_losses[0], "the reference did not train: vacuous comparison"
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    assert _rel_err(ours, ref) <= tol
    assert o_losses == pytest.approx(t_losses, rel=tol)
    t_st, o_st = t_opt.state[next(ref.parameters())], o_opt.state[next(ours.parameters())]
    assert (o_st["n_iter"], o_st["func_evals"]) == (t_st["n_iter"], t_st["func_evals"])
    assert len(o_st["old_dirs"]) == len(t_st["old_dirs"]) <= kw["history_size"]


common = pytest.importorskip("torch.testing._internal.common_optimizers")
INFO = next(i for i in common.optim_db if i.name == "LBFGS")
DB_CONFIGS = [
    inp.kwargs
    for inp in common._get_optim_inputs_including_global_cliquey_kwargs(
        "cpu", torch.float64, INFO, skip=("differentiable",)
    )
]


@pytest.mark.parametrize("kw", DB_CONFIGS, ids=[repr(k) for k in DB_CONFIGS])
def test_optim_db_configs_match_torch(kw):
    """torch's own LBFGS test configurations (optim_db), on the same closure."""
    ref = digits_mlp(torch.float64, seed=1)
    ours = copy.deepcopy(ref)
    t_losses = _run(ref, torch.optim.LBFGS(ref.parameters(), **kw), 2)
    o_losses = _run(ours, optim.LBFGS(ours.parameters(), **kw), 2)
    assert t_losses[-1] < t_losses[0], "the reference did not move: vacuous comparison"
    assert o_losses == pytest.approx(t_losses, rel=1e-10)
    assert _rel_err(ours, ref) <= 1e-10


def test_optim_db_error_inputs_refused_like_torch():
    for err in INFO.optim_error_inputs_func(device="cpu", dtype=torch.float32):
        inp = err.optimizer_error_input
        params = inp.params if inp.params is not None else [torch.nn.Parameter(torch.ones(2))]
        if issubclass(err.error_type, Warning):
            with pytest.warns(err.error_type):
                optim.LBFGS(params, **inp.kwargs)
            continue
        with pytest.raises(err.error_type, match=err.error_regex):
            optim.LBFGS(params, **inp.kwargs)


def test_stops_at_once_when_the_gradient_is_below_tolerance():
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = optim.LBFGS([w], tolerance_grad=1e-3)
    loss = opt.step(lambda: _quadratic(w, opt))
    assert float(loss.detach()) == 0.0
    assert torch.equal(w.detach(), torch.ones(2, dtype=torch.float64))
    assert opt.state[w]["func_evals"] == 1 and opt.state[w]["n_iter"] == 0


def test_returns_the_first_loss_whether_it_stops_at_once_or_iterates_like_torch():
    """torch's test_lbfgs_returns_consistent_type: the same type either way, and a negative
    tolerance (-inf: never stop on the gradient) is taken, as torch takes it (it was
    refused as out of range)."""
    import math

    found = []
    for lib in (torch.optim, optim):
        params = [torch.randn(10, 5), torch.randn(10)]
        for tol in (math.inf, -math.inf):
            opt = lib.LBFGS(params, 0.01, tolerance_grad=tol)
            found.append(type(opt.step(lambda: torch.tensor([10]))))
    assert found == [torch.Tensor] * 4
    w = torch.nn.Parameter(torch.tensor([3.0, -2.0], dtype=torch.float64))
    ours = optim.LBFGS([w], tolerance_grad=-math.inf, tolerance_change=-math.inf, max_iter=5)
    ours.step(lambda: _quadratic(w, ours))
    assert ours.state[w]["n_iter"] == 5  # it did not stop before max_iter
    with pytest.raises(ValueError, match="tolerance_grad"):
        optim.LBFGS([w], tolerance_grad=float("nan"))


def _quadratic(w, opt):
    opt.zero_grad()
    loss = ((w - 1) ** 2 * torch.tensor([1.0, 10.0], dtype=w.dtype)).sum()
    loss.backward()
    return loss


def test_solves_a_quadratic_like_theory_says():
    """On a 2-D convex quadratic (condition number 10) L-BFGS with a strong-Wolfe line
    search reaches the minimizer to 1e-8 within a few iterations (quasi-Newton methods
    terminate in n steps on quadratics with exact line searches; Nocedal & Wright 6.1)."""
    w = torch.nn.Parameter(torch.tensor([5.0, -3.0], dtype=torch.float64))
    opt = optim.LBFGS(
        [w], line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15
    )
    opt.step(lambda: _quadratic(w, opt))
    torch.testing.assert_close(w.detach(), torch.ones(2, dtype=torch.float64), atol=1e-8, rtol=0)
    assert opt.state[w]["n_iter"] <= 8


@pytest.mark.parametrize("direction", ["torch-to-ours", "ours-to-torch"])
def test_state_dict_interchange_continues_identically(direction):
    kw = dict(lr=1, max_iter=5, history_size=4, line_search_fn="strong_wolfe")
    base = digits_mlp(torch.float64)
    first = torch.optim.LBFGS if direction == "torch-to-ours" else optim.LBFGS
    second = optim.LBFGS if direction == "torch-to-ours" else torch.optim.LBFGS
    opt = first(base.parameters(), **kw)
    _run(base, opt, 3)
    sd = copy.deepcopy(opt.state_dict())
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    oa, ob = first(a.parameters(), **kw), second(b.parameters(), **kw)
    oa.load_state_dict(copy.deepcopy(sd))
    ob.load_state_dict(copy.deepcopy(sd))
    _run(a, oa, 3)
    _run(b, ob, 3)
    assert _rel_err(b, a) <= 1e-12


def test_refusals_name_the_parameter():
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="line_search_fn must be one of 'strong_wolfe'"):
        optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(ValueError, match="history_size must be a positive integer, got 0"):
        optim.LBFGS([w], history_size=0)
    with pytest.raises(TypeError, match=r"max_iter must be a positive integer, got 2\.5"):
        optim.LBFGS([w], max_iter=2.5)
    with pytest.raises(ValueError, match=r"lr must be a number >= 0\.0, got -1\.0"):
        optim.LBFGS([w], lr=-1.0)
    with pytest.raises(ValueError, match="one parameter group"):
        optim.LBFGS([{"params": [w]}, {"params": [torch.nn.Parameter(torch.ones(1))]}])
    with pytest.raises(ValueError, match="no fused form"):
        optim.LBFGS([w], fused=True)
    opt = optim.LBFGS([w])
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step()
