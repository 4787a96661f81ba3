"""Adafactor's compiled kernel (descentlab.optim.adafactor_native): the default step runs it,
and its iterates and state are torch.optim.Adafactor's and the torch-op step's (fused=False)
-- to 1e-12 relative in float64 (the same operations; the kernel's sums in another order) and
to float rounding in float32 (checked loosely: the sums' order, not the CPU, decides the last
bits). Where it does not apply the torch-op step runs, said once."""

from __future__ import annotations

import warnings

import pytest
import torch

from descentlab import _announce, optim
from descentlab.optim import adafactor_native
from descentlab.optim.adafactor import scale_by_adafactor

pytestmark = pytest.mark.skipif(
    not adafactor_native.available(), reason="no C++ compiler for the Adafactor kernel"
)

SHAPES = [(12, 9), (7,), (3, 5, 6), (1, 40), (40, 1), (2, 1, 3, 4), (300, 230)]
KWARGS = [
    dict(lr=1e-2),
    dict(lr=2e-2, eps=(1e-20, 1e-2), d=2.0, weight_decay=1e-2, beta2_decay=-0.6),
    dict(lr=1e-2, maximize=True, weight_decay=0.1),
]


def _params(dtype: torch.dtype, shapes=SHAPES, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]


def _run(opts_params, steps: int, dtype: torch.dtype, shapes=SHAPES) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        grads = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
        for opt, ps in opts_params:
            for p, x in zip(ps, grads, strict=True):
                p.grad = x.clone()
            opt.step()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _no_torch_ops(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the torch-op step ran where the kernel applies")

    monkeypatch.setattr(scale_by_adafactor, "torch_update", refuse)


@pytest.mark.parametrize("kw", KWARGS, ids=["plain", "wd-eps-d", "maximize"])
def test_the_default_step_matches_torch_and_fused_false_in_float64(kw):
    ours, ref, eager = (_params(torch.float64) for _ in range(3))
    mine = optim.Adafactor(ours, **kw)
    slow = optim.Adafactor(eager, **kw, fused=False)
    theirs = torch.optim.Adafactor(ref, **kw, foreach=True)
    _run([(mine, ours), (theirs, ref), (slow, eager)], 60, torch.float64)
    for a, b, c in zip(ours, ref, eager, strict=True):
        # torch subtracts lr * wd * p before the update, descentlab's update includes it:
        # rounding apart, the same iterates
        assert _rel(a.detach(), b.detach()) <= 1e-12
        assert _rel(a.detach(), c.detach()) <= 1e-12
    for a, b in zip(ours, ref, strict=True):
        for key, value in theirs.state[b].items():
            if key != "step":
                assert _rel(mine.state[a][key], value) <= 1e-12, key


def test_the_kernel_runs_every_step_of_the_default(monkeypatch):
    """The kernel, not the torch-op step, runs every step (a silent fallback would pass the
    parity tests above)."""
    ps = _params(torch.float32)
    opt = optim.Adafactor(ps, lr=1e-2)
    _no_torch_ops(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run([(opt, ps)], 3, torch.float32)
    assert all(int(opt.state[p]["step"]) == 3 for p in ps)


def test_float32_matches_the_torch_op_step_to_rounding():
    ours, eager, ref = (_params(torch.float32) for _ in range(3))
    mine = optim.Adafactor(ours, lr=1e-2, weight_decay=1e-2)
    slow = optim.Adafactor(eager, lr=1e-2, weight_decay=1e-2, fused=False)
    theirs = torch.optim.Adafactor(ref, lr=1e-2, weight_decay=1e-2, foreach=True)
    _run([(mine, ours), (slow, eager), (theirs, ref)], 100, torch.float32)
    for a, b, c in zip(ours, eager, ref, strict=True):
        assert _rel(a.detach(), b.detach()) <= 1e-4
        assert _rel(a.detach(), c.detach()) <= 1e-4


def test_threads_split_a_large_tensor_to_the_same_result():
    """A tensor of 65,536 elements or more spreads its rows over the threads: the sums are
    added in another order, the iterates agree to float64 rounding."""
    shapes = [(400, 300), (70_000,)]
    runs = []
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ps = _params(torch.float64, shapes)
            opt = optim.Adafactor(ps, lr=1e-2)
            _run([(opt, ps)], 5, torch.float64, shapes)
            runs.append(ps)
    finally:
        torch.set_num_threads(old)
    ref = _params(torch.float64, shapes)
    _run([(torch.optim.Adafactor(ref, lr=1e-2), ref)], 5, torch.float64, shapes)
    for a, b, c in zip(*runs, ref, strict=True):
        assert _rel(a.detach(), b.detach()) <= 1e-13
        assert _rel(a.detach(), c.detach()) <= 1e-12


def test_a_group_of_two_dtypes_runs_one_kernel_call_per_dtype(monkeypatch):
    shapes = [(5, 4), (6,), (3, 7)]
    ps = _params(torch.float32, shapes)
    ps[1] = torch.nn.Parameter(ps[1].detach().double())
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    opt = optim.Adafactor(ps, lr=1e-2)
    theirs = torch.optim.Adafactor(ref, lr=1e-2, foreach=False)
    _no_torch_ops(monkeypatch)
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        for a, b in zip(ps, ref, strict=True):
            a.grad = torch.randn(a.shape, generator=g, dtype=a.dtype)
            b.grad = a.grad.clone()
        opt.step()
        theirs.step()
    assert ps[1].dtype == torch.float64
    for a, b in zip(ps, ref, strict=True):
        assert _rel(a.detach(), b.detach()) <= 1e-5


def test_where_the_kernel_does_not_apply_the_torch_op_step_runs_said_once():
    """A strided parameter (a transposed view) steps with torch's ops, as fused=False does,
    and the step says so once per process and reason."""
    _announce.forget("adafactor")
    base = torch.randn(6, 5, dtype=torch.float64)
    p = torch.nn.Parameter(base.t())  # not contiguous
    q = torch.nn.Parameter(base.t().clone())
    opt = optim.Adafactor([p], lr=1e-2)
    ref = optim.Adafactor([q], lr=1e-2, fused=False)
    with pytest.warns(RuntimeWarning, match="Adafactor steps with torch's ops .*contiguous"):
        for _ in range(2):
            p.grad = torch.ones_like(p)
            q.grad = torch.ones_like(q)
            opt.step()
            ref.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.grad = torch.ones_like(p)
        opt.step()  # said once
    q.grad = torch.ones_like(q)
    ref.step()
    assert torch.equal(p.detach(), q.detach())


def test_fused_false_runs_torch_ops(monkeypatch):
    ps = _params(torch.float64, [(4, 3)])
    opt = optim.Adafactor(ps, lr=1e-2, fused=False)
    monkeypatch.setattr(adafactor_native, "write_update", lambda *a: pytest.fail("the kernel ran"))
    _run([(opt, ps)], 2, torch.float64, [(4, 3)])


def test_the_step_benchmark_times_adafactor_against_torchs_foreach(capsys, monkeypatch):
    """``benchmarks/step.py --adafactor``: every arm timed on matrices and vectors, the ratio
    to torch's foreach step printed."""
    import pathlib
    import sys

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parents[1] / "benchmarks"))
    sys.modules.pop("step", None)
    import step

    rows = step.run_adafactor([4000], repeat=2)
    assert [r["layout"] for r in rows] == ["matrices", "vectors"]
    for r in rows:
        assert set(step.ADAFACTOR_ARMS) <= set(r)
        assert r["default/foreach"] == r["dl default"] / r["torch foreach"]
    assert "default/foreach" in capsys.readouterr().out
