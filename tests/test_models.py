"""Models: parameter counts from the architectures' formulas, forwards against independent
functional re-implementations (float64), determinism, options, vmap-compatibility, errors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from descentlab.problems import data, models

MNIST = (40,)
DIGITS = (1, 8, 8)

# name, input_shape, n_outputs, options, parameter count written from the architecture
COUNTS = [
    ("linear", MNIST, 10, {}, 40 * 10 + 10),
    ("mlp", MNIST, 10, {}, (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)),
    ("mlp", (1,), 1, {"hidden": 7}, (1 * 7 + 7) + (7 * 7 + 7) + (7 + 1)),
    ("cnn", MNIST, 10, {}, (5 * 25 + 25) + 2 * (3 * 25 * 25 + 25) + (25 * 5 * 10 + 10)),
    ("cnn", (1, 50), 3, {"channels": 4}, (5 * 4 + 4) + 2 * (3 * 16 + 4) + (4 * 6 * 3 + 3)),
    ("gru", MNIST, 10, {}, 2 * (3 * 6 * (1 + 6) + 2 * 3 * 6) + (2 * 6 * 40 * 10 + 10)),
    ("gru", MNIST, 10, {"bidirectional": False}, (3 * 6 * 7 + 36) + (6 * 40 * 10 + 10)),
    ("digits_mlp", DIGITS, 10, {}, (64 * 128 + 128) + (128 * 10 + 10)),
    ("digits_mlp", DIGITS, 10, {"hidden": (32, 16), "batch_norm": True},
     64 * 32 + 2 * 32 + 32 * 16 + 2 * 16 + 16 * 10 + 10),
    ("digits_cnn", DIGITS, 10, {}, (9 * 16 + 16) + (16 * 9 * 32 + 32) + (32 * 16 * 64 + 64)
     + (64 * 10 + 10)),
    ("digits_cnn", DIGITS, 10, {"batch_norm": True, "dropout": 0.5},
     9 * 16 + 2 * 16 + 16 * 9 * 32 + 2 * 32 + (32 * 16 * 64 + 64) + (64 * 10 + 10)),
    ("logistic", DIGITS, 10, {}, 64 * 10 + 10),
    ("quadratic_deep", (100,), 100, {}, 100),
    # stem, 3 stages of one block (two 3x3 convs + 2 BNs), option-A shortcuts, read-out
    ("resnet20", DIGITS, 10, {"width": 2, "blocks": 1}, (9 * 2 + 4) + (2 * 9 * 4 + 8)
     + (9 * 8 + 9 * 16 + 16) + (9 * 32 + 9 * 64 + 32) + (8 * 10 + 10)),
    # stem, 4 stages of 2 blocks, 1x1 projection + BN where the shape changes, read-out
    ("resnet18", DIGITS, 10, {"width": 2}, (9 * 2 + 4) + 2 * (2 * 9 * 4 + 8)
     + sum(9 * c * 2 * c + 9 * 4 * c * c + 8 * c + (2 * c * c + 4 * c)
           + 2 * 9 * 4 * c * c + 8 * c for c in (2, 4, 8)) + (16 * 10 + 10)),
    # token and position embeddings, one block (2 LNs, qkv, proj, 4x MLP), final LN; tied
    ("gpt", (16,), 97, {"d_model": 8, "n_layers": 1, "n_heads": 2}, 97 * 8 + 16 * 8
     + (4 * 8 + (3 * 64 + 24) + (64 + 8) + (4 * 64 + 32) + (4 * 64 + 8)) + 16),
]  # fmt: skip


def _example_input(name, shape):
    """A batch of 5 inputs: token ids for the language model, else Gaussian."""
    if name == "gpt":
        return torch.randint(0, 97, (5, *shape))
    return torch.randn(5, *shape)


def test_count_table_covers_registry():
    assert {row[0] for row in COUNTS} == set(models.MODELS)


@pytest.mark.parametrize(("name", "shape", "n_out", "opts", "count"), COUNTS)
def test_parameter_counts_and_output_shape(name, shape, n_out, opts, count):
    torch.manual_seed(0)
    m = models.build(name, input_shape=shape, n_outputs=n_out, **opts)
    assert models.count_params(m) == count
    m.eval()
    out = m(_example_input(name, shape))
    assert out.shape == ((5, *shape, n_out) if name == "gpt" else (5, n_out))


@pytest.mark.parametrize(("name", "shape", "n_out", "opts", "count"), COUNTS)
def test_deterministic_given_manual_seed(name, shape, n_out, opts, count):
    def weights(seed):
        torch.manual_seed(seed)
        return models.build(name, input_shape=shape, n_outputs=n_out, **opts).state_dict()

    a, b, c = weights(1), weights(1), weights(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    constant = name in ("logistic", "quadratic_deep")  # zero / ones start, seed-free
    assert all(torch.equal(a[k], c[k]) for k in a) == constant


# --------------------------------------------------------------- reference forwards (float64)


def _sd(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.double() for k, v in m.state_dict().items()}


def ref_mlp(p, x):
    h = F.relu(x @ p["linear1.weight"].T + p["linear1.bias"])
    h = h + F.relu(h @ p["linear2.weight"].T + p["linear2.bias"])
    return h @ p["linear3.weight"].T + p["linear3.bias"]


def ref_cnn(p, x):
    h = x[:, None, :]
    for i in (1, 2, 3):
        k = p[f"conv{i}.weight"]
        pad = F.pad(h, (1, 1))
        length = (pad.shape[-1] - k.shape[-1]) // 2 + 1
        cols = torch.stack([pad[..., 2 * t : 2 * t + k.shape[-1]] for t in range(length)], -2)
        # cols: (N, C_in, L_out, K); out[n, o, t] = sum_{c, j} k[o, c, j] cols[n, c, t, j]
        h = F.relu(torch.einsum("nctj,ocj->not", cols, k) + p[f"conv{i}.bias"][:, None])
    return h.reshape(h.shape[0], -1) @ p["linear.weight"].T + p["linear.bias"]


def _gru_dir(p, x, suffix, reverse):
    w_ih, w_hh = p[f"gru.weight_ih_l0{suffix}"], p[f"gru.weight_hh_l0{suffix}"]
    b_ih, b_hh = p[f"gru.bias_ih_l0{suffix}"], p[f"gru.bias_hh_l0{suffix}"]
    hid = w_hh.shape[1]
    h = torch.zeros(x.shape[0], hid, dtype=x.dtype)
    outs = [None] * x.shape[1]
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in steps:
        gi = x[:, t : t + 1] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = torch.sigmoid(gi[:, :hid] + gh[:, :hid])
        z = torch.sigmoid(gi[:, hid : 2 * hid] + gh[:, hid : 2 * hid])
        n = torch.tanh(gi[:, 2 * hid :] + r * gh[:, 2 * hid :])
        h = (1 - z) * n + z * h
        outs[t] = h
    return torch.stack(outs, 1)  # (N, L, H)


def ref_gru(p, x):
    out = torch.cat([_gru_dir(p, x, "", False), _gru_dir(p, x, "_reverse", True)], -1)
    return out.reshape(x.shape[0], -1) @ p["linear.weight"].T + p["linear.bias"]


def ref_linear(p, x):
    return x.reshape(x.shape[0], -1) @ p["linear.weight"].T + p["linear.bias"]


@pytest.mark.parametrize(
    ("name", "ref"), [("linear", ref_linear), ("mlp", ref_mlp), ("cnn", ref_cnn), ("gru", ref_gru)]
)
def test_mnist1d_models_match_functional_reference(name, ref):
    torch.manual_seed(3)
    m = models.build(name, input_shape=MNIST, n_outputs=10).double()
    x = torch.randn(4, 40, dtype=torch.float64)
    torch.testing.assert_close(m(x), ref(_sd(m), x), rtol=1e-10, atol=1e-10)
    if name in ("cnn", "gru"):
        torch.testing.assert_close(m(x[:, None, :]), m(x))  # (N, 1, L) accepted too


def test_digits_cnn_matches_functional_reference():
    torch.manual_seed(4)
    m = models.build("digits_cnn", input_shape=DIGITS, n_outputs=10).double().eval()
    p = _sd(m)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    h = F.relu(F.conv2d(x, p["features.0.weight"], p["features.0.bias"], padding=1))
    h = F.relu(F.conv2d(h, p["features.2.weight"], p["features.2.bias"], padding=1))
    h = h.reshape(3, 32, 4, 2, 4, 2).amax(dim=(3, 5)).reshape(3, -1)  # 2x2 max-pool by hand
    h = F.relu(h @ p["head.1.weight"].T + p["head.1.bias"])
    torch.testing.assert_close(m(x), h @ p["head.3.weight"].T + p["head.3.bias"])


def test_quadratic_deep_model_gives_deepobs_loss():
    q = torch.from_numpy(data.quadratic_deep_hessian())
    m = models.build("quadratic_deep", input_shape=(100,), n_outputs=100).double()
    assert torch.equal(m.theta.detach(), torch.ones(100, dtype=torch.float64))
    m.sqrt_hessian.copy_(m.sqrt_hessian.new_tensor(models._sqrtm_psd(q.numpy())))
    torch.manual_seed(0)
    theta = torch.randn(100, dtype=torch.float64)
    with torch.no_grad():
        m.theta.copy_(theta)
    x = 0.6 * torch.randn(7, 100, dtype=torch.float64)
    per_example = 0.5 * torch.einsum("ni,ij,nj->n", theta - x, q, theta - x)
    torch.testing.assert_close(0.5 * m(x).pow(2).sum(1), per_example, rtol=1e-10, atol=1e-10)
    # population loss: 0.5 theta^T Q theta + 0.5 sigma^2 tr Q
    expected = 0.5 * theta @ q @ theta + 0.5 * 0.36 * torch.trace(q)
    torch.testing.assert_close(m.expected_loss(0.6), expected, rtol=1e-5, atol=1e-5)


def test_quadratic_deep_custom_hessian_and_errors():
    q = torch.diag(torch.tensor([1.0, 4.0]))
    m = models.build("quadratic_deep", input_shape=(2,), n_outputs=2, hessian=q)
    torch.testing.assert_close(m.sqrt_hessian, torch.diag(torch.tensor([1.0, 2.0])))
    with pytest.raises(ValueError, match="symmetric"):
        models.QuadraticDeep(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="hessian has size 2"):
        models.build("quadratic_deep", input_shape=(3,), n_outputs=3, hessian=q)
    with pytest.raises(ValueError, match="needs input_shape"):
        models.build("quadratic_deep", input_shape=(100,), n_outputs=10)


def test_quadratic_deep_takes_the_hessians_root_once_per_matrix(monkeypatch):
    # every run of a comparison builds the model again from the same Hessian: its square root
    # (an eigendecomposition) is computed once, and each model gets its own copy
    import numpy as np

    calls = []
    real = np.linalg.eigh
    monkeypatch.setattr(models, "_ROOTS", {}, raising=False)
    monkeypatch.setattr(np.linalg, "eigh", lambda q: calls.append(q.shape) or real(q))
    a = models.build("quadratic_deep", input_shape=(30,), n_outputs=30)
    b = models.build("quadratic_deep", input_shape=(30,), n_outputs=30)
    assert calls == [(30, 30)]
    assert torch.equal(a.sqrt_hessian, b.sqrt_hessian)
    a.sqrt_hessian.zero_()  # each its own
    assert b.sqrt_hessian.abs().sum() > 0
    q = torch.diag(torch.tensor([1.0, 4.0]))
    c = models.build("quadratic_deep", input_shape=(2,), n_outputs=2, hessian=q)
    torch.testing.assert_close(c.sqrt_hessian, torch.diag(torch.tensor([1.0, 2.0])))
    assert calls == [(30, 30), (2, 2)]  # another matrix: its own root


# ---------------------------------------------------------------------- dropout, batch norm


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_dropout_and_batch_norm_options(name):
    torch.manual_seed(0)
    plain = models.build(name, input_shape=DIGITS, n_outputs=10)
    reg = models.build(name, input_shape=DIGITS, n_outputs=10, dropout=0.5, batch_norm=True)
    kinds = [type(m) for m in reg.modules()]
    assert nn.Dropout in kinds and any(k.__name__.startswith("BatchNorm") for k in kinds)
    assert not any(
        k in (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d) for k in map(type, plain.modules())
    )
    x = torch.rand(16, *DIGITS)
    reg.train()
    assert not torch.equal(reg(x), reg(x))  # dropout masks differ between passes
    reg.eval()
    assert torch.equal(reg(x), reg(x))
    # batch norm: train mode normalises with batch statistics and updates running stats
    bn = next(m for m in reg.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
    before = bn.running_mean.clone()
    reg.train()
    reg(x)
    assert not torch.equal(bn.running_mean, before)


def test_logistic_is_zero_started_linear():
    m = models.build("logistic", input_shape=(2,), n_outputs=3)
    assert all(torch.count_nonzero(p) == 0 for p in m.parameters())
    assert torch.equal(m(torch.randn(4, 2)), torch.zeros(4, 3))


# ---------------------------------------------------------------------- torch.func / vmap


@pytest.mark.parametrize("name", ["linear", "mlp", "cnn", "logistic", "digits_mlp", "digits_cnn"])
def test_functional_call_under_vmap_equals_loop(name):
    from torch.func import functional_call, stack_module_state, vmap

    shape = DIGITS if name.startswith("digits") or name == "logistic" else MNIST
    ms = []
    for seed in range(3):
        torch.manual_seed(seed)
        ms.append(models.build(name, input_shape=shape, n_outputs=10))
    params, buffers = stack_module_state(ms)
    base = copy.deepcopy(ms[0]).to("meta")
    x = torch.randn(5, *shape)

    def f(p, b):
        return functional_call(base, (p, b), (x,))

    out = vmap(f)(params, buffers)
    for k, m in enumerate(ms):
        torch.testing.assert_close(out[k], m(x))


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"name": "resnet"}, KeyError, "valid names: linear, mlp, cnn, gru"),
        ({"name": "mlp", "hiden": 3}, ValueError, r"unknown option\(s\) \['hiden'\]"),
        ({"name": "mlp", "hidden": 0}, ValueError, "hidden must be an integer >= 1, got 0"),
        (
            {"name": "digits_mlp", "dropout": 1.0},
            ValueError,
            r"dropout must be a number in \[0, 1\)",
        ),
        ({"name": "digits_cnn", "batch_norm": "yes"}, ValueError, "batch_norm must be a bool"),
        ({"name": "digits_cnn", "channels": (16, -1)}, ValueError, "channels must be"),
        ({"name": "cnn", "input_shape": DIGITS}, ValueError, "needs a 1-D signal"),
        ({"name": "digits_cnn", "input_shape": (64,)}, ValueError, "needs an image"),
        ({"name": "linear", "n_outputs": 0}, ValueError, "n_outputs must be an integer >= 1"),
        ({"name": "linear", "input_shape": (0,)}, ValueError, "input_shape must be non-empty"),
    ],
)
def test_bad_input(kwargs, exc, match):
    kw = {"input_shape": MNIST, "n_outputs": 10, **kwargs}
    name = kw.pop("name")
    with pytest.raises(exc, match=match):
        models.build(name, **kw)


def test_default_options():
    assert models.default_options("cnn") == {"channels": 25, "activation": "relu"}
    assert models.default_options("digits_mlp")["batch_norm"] is False
    with pytest.raises(KeyError, match="valid names"):
        models.default_options("nope")


def test_docstring_examples():
    import doctest

    result = doctest.testmod(models, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
