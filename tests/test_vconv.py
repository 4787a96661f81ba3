"""The vectorized Conv1d's product paths (engine/vconv.py): windows and their adjoint for
geometries where positions fall outside every window or windows lie wholly in the padding,
and the oneDNN product used for the large float32 products (checked against float64 and
against ``nn.Conv1d`` run by run), with its fallback to ``torch.matmul``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from descentlab.engine import vconv
from descentlab.engine.vconv import Conv1dAsMatmul, vmap_friendly


def _second_layer_runs(k_runs: int, gen: torch.Generator) -> list[torch.nn.Conv1d]:
    """The MNIST-1D CNN's second layer (25 -> 25 channels, kernel 3, stride 2, padding 1),
    float32, with different weights per run."""
    runs = []
    for _ in range(k_runs):
        conv = torch.nn.Conv1d(25, 25, 3, stride=2, padding=1)
        with torch.no_grad():
            for t in conv.parameters():
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
        runs.append(conv)
    return runs


def test_large_float32_products_go_through_onednn_and_match_float64():
    """The products of the MNIST-1D CNN's second layer at batch 128 (25 x 75 x 1280) are
    large enough for the oneDNN path; each equals the float64 product to float32 rounding."""
    assert vconv._probe_onednn(), "oneDNN's linear operator is missing or wrong in this torch"
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 25, 75, generator=g)
    b = torch.randn(3, 75, 1280, generator=g)
    calls = []
    real = torch.ops.mkldnn._linear_pointwise

    def counting(*args):
        calls.append(args[0].shape)
        return real(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.ops.mkldnn, "_linear_pointwise", counting)
        got = vconv._matmul(a, b)
    assert len(calls) == 3  # one oneDNN product per run
    want = torch.matmul(a.double(), b.double())
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    # the first layer's 5-wide products stay with matmul
    small = vconv._matmul(torch.randn(3, 25, 5, generator=g), torch.randn(3, 5, 2432, generator=g))
    assert small.shape == (3, 25, 2432) and len(calls) == 3


def test_vectorized_layer_in_float32_equals_each_runs_nn_conv1d():
    """K runs of the second layer under vmap(grad) -- the engine's traced step -- through the
    oneDNN products: outputs and every gradient equal each run's own nn.Conv1d (MKL-DNN) to
    float32 rounding."""
    assert vconv._probe_onednn()
    g = torch.Generator().manual_seed(3)
    runs = _second_layer_runs(3, g)
    params, _ = torch.func.stack_module_state(runs)
    base = vmap_friendly(copy.deepcopy(runs[0]).to("meta"))
    assert type(base) is Conv1dAsMatmul
    xs = torch.randn(3, 128, 25, 19, generator=g)
    ws = torch.randn(3, 128, 25, 10, generator=g)

    def loss(prm, xb, wb):
        return (torch.func.functional_call(base, prm, (xb,)) * wb).sum()

    step = torch.func.vmap(torch.func.grad_and_value(loss, argnums=(0, 1)))
    # traced on real tensors, and on fake ones (shapes only) as the engine traces its step
    traced = [make_fx(step, tracing_mode=mode)(params, xs, ws) for mode in ("real", "fake")]
    for gm in traced:
        graph_ops = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
        assert "mkldnn._linear_pointwise.default" in graph_ops
    for fn in (step, *traced):
        (g_params, g_x), values = fn(params, xs, ws)
        for i, r in enumerate(runs):
            xi = xs[i].clone().requires_grad_(True)
            value = (r(xi) * ws[i]).sum()
            grads = torch.autograd.grad(value, [xi, *r.parameters()])
            torch.testing.assert_close(values[i], value, rtol=1e-4, atol=1e-3)
            torch.testing.assert_close(g_x[i], grads[0], rtol=1e-4, atol=1e-4)
            for (name, _), ref_g in zip(r.named_parameters(), grads[1:], strict=True):
                torch.testing.assert_close(g_params[name][i], ref_g, rtol=1e-4, atol=1e-3)


def test_probe_is_float32_whatever_the_default_dtype(monkeypatch):
    """A float64 run setting the default dtype before the first vectorized group must not
    turn the oneDNN path off for the process."""
    monkeypatch.setattr(vconv, "_ONEDNN", {})
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert vconv._probe_onednn()
    finally:
        torch.set_default_dtype(old)


def test_without_onednn_the_product_is_matmul(monkeypatch):
    """A torch whose oneDNN operator is missing (or wrong) fails the probe; the layer then
    computes the same numbers with torch.matmul."""
    monkeypatch.setattr(vconv, "_ONEDNN", {})

    def broken(*args):
        raise RuntimeError("no oneDNN here")

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", broken)
    with pytest.warns(RuntimeWarning, match="uses torch.matmul"):  # announced
        assert vconv._probe_onednn() is False
    g = torch.Generator().manual_seed(4)
    a = torch.randn(2, 25, 75, generator=g)
    b = torch.randn(2, 75, 1280, generator=g)
    torch.testing.assert_close(vconv._matmul(a, b), torch.matmul(a, b), rtol=0, atol=0)
    (r,) = _second_layer_runs(1, g)
    mine = vmap_friendly(copy.deepcopy(r))
    x = torch.randn(128, 25, 19, generator=g)
    torch.testing.assert_close(mine(x), r(x), rtol=1e-5, atol=1e-5)


def test_traced_step_builds_no_gradient_for_the_windows():
    """The windows (a second, non-differentiable output) get no zero-filled gradient in the
    traced step; the gradients are unchanged (float64, against nn.Conv1d)."""
    g = torch.Generator().manual_seed(5)
    runs = [torch.nn.Conv1d(3, 4, 3, stride=2, padding=1).double() for _ in range(2)]
    params, _ = torch.func.stack_module_state(runs)
    base = vmap_friendly(copy.deepcopy(runs[0]).to("meta"))
    xs = torch.randn(2, 5, 3, 11, dtype=torch.float64, generator=g)

    def loss(prm, xb):
        return torch.func.functional_call(base, prm, (xb,)).square().sum()

    traced = make_fx(torch.func.vmap(torch.func.grad(loss)))(params, xs)
    assert not [n for n in traced.graph.nodes if "zeros" in str(n.target)]
    grads = traced(params, xs)
    for i, r in enumerate(runs):
        ref = torch.autograd.grad(r(xs[i]).square().sum(), list(r.parameters()))
        for (name, _), want in zip(r.named_parameters(), ref, strict=True):
            torch.testing.assert_close(grads[name][i], want, rtol=1e-12, atol=1e-12)


def test_output_layout_follows_the_next_layer():
    """A layer followed by another product layer returns its output channel-major (the next
    windows' layout); the last one, followed by a flatten and a linear layer, contiguous (the
    layout of the gradient they send back). Same numbers as nn.Conv1d either way (float64,
    outputs and gradients through ReLUs)."""
    g = torch.Generator().manual_seed(6)
    ref = torch.nn.Sequential(
        torch.nn.Conv1d(2, 5, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv1d(5, 4, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3, 3),
    ).double()
    mine = vmap_friendly(copy.deepcopy(ref))
    assert [getattr(m, "contiguous_output", None) for m in mine] == [
        False, None, True, None, None, None
    ]  # fmt: skip
    x = torch.randn(6, 2, 11, dtype=torch.float64, generator=g, requires_grad=True)
    first, last = mine[0](x), mine[2](torch.relu(mine[0](x)))
    assert not first.is_contiguous() and first.transpose(0, 1).is_contiguous()
    assert last.is_contiguous()
    out_ref, out = ref(x), mine(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    grads_ref = torch.autograd.grad(out_ref.square().sum(), [x, *ref.parameters()])
    grads = torch.autograd.grad(out.square().sum(), [x, *mine.parameters()])
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
