"""Conv arithmetic against real torch.nn layers, and seed 002's AlexNet table and 1x1 example."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from descentlab.book import convolution as bc
from descentlab.problems import convarith as ca

# (input spatial shape, in_ch, out_ch, kernel, stride, padding, dilation, groups, bias)
CASES = [
    ((40,), 1, 25, 5, 2, 1, 1, 1, True),  # MNIST-1D CNN layer 1
    ((19,), 25, 25, 3, 2, 1, 1, 1, True),
    ((10,), 25, 25, 3, 2, 1, 1, 1, True),
    ((17,), 4, 6, 4, 3, 0, 2, 2, False),
    ((9,), 3, 3, 9, 1, 0, 1, 3, True),  # kernel = input: one output
    ((227, 227), 3, 96, 11, 4, 0, 1, 1, False),  # AlexNet conv1
    ((27, 27), 96, 256, 5, 1, 2, 1, 2, False),  # AlexNet conv2, two GPUs
    ((13, 13), 256, 384, 3, 1, 1, 1, 1, True),
    ((8, 8), 1, 16, 3, 1, 1, 1, 1, True),  # digits CNN
    ((28, 20), 6, 8, (5, 3), (2, 1), (1, 2), (1, 2), 2, True),  # rectangular everything
    ((32, 33), 8, 8, 3, 2, 1, 3, 8, False),  # depthwise, dilated
    ((7, 7), 4, 4, 1, 1, 0, 1, 1, False),  # 1x1
    ((6, 7, 8), 2, 4, 3, (1, 2, 2), 1, 1, 1, True),  # 3-D
]


def _layer(ndim, cin, cout, k, s, p, d, g, bias):
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[ndim]
    return cls(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)


@pytest.mark.parametrize(("hw", "cin", "cout", "k", "s", "p", "d", "g", "bias"), CASES)
def test_shape_and_params_match_torch(hw, cin, cout, k, s, p, d, g, bias):
    layer = _layer(len(hw), cin, cout, k, s, p, d, g, bias)
    with torch.no_grad():
        out = layer(torch.zeros(1, cin, *hw))
    assert ca.conv_output_shape(hw, k, s, p, d) == tuple(out.shape[2:])
    n_torch = sum(q.numel() for q in layer.parameters())
    assert ca.conv_params(cin, cout, k, bias=bias, groups=g, ndim=len(hw)) == n_torch


@pytest.mark.parametrize(
    ("hw", "k", "s", "p"),
    [((55, 55), 3, 2, 0), ((13, 13), 3, 2, 0), ((8, 8), 2, 2, 0), ((9, 10), 3, 2, 1)],
)
def test_pooling_shapes_match_torch(hw, k, s, p):
    out = nn.MaxPool2d(k, s, p)(torch.zeros(1, 1, *hw))
    assert ca.conv_output_shape(hw, k, s, p) == tuple(out.shape[2:])


@pytest.mark.parametrize("hw", [(11,), (9, 12)])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_same_padding_matches_torch(hw, k):
    layer = _layer(len(hw), 2, 2, k, 1, "same", 1, 1, True)
    assert ca.conv_output_shape(hw, k, 1, "same") == tuple(layer(torch.zeros(1, 2, *hw)).shape[2:])
    assert ca.conv_output_shape(hw, k, 1, "valid") == tuple(
        _layer(len(hw), 2, 2, k, 1, 0, 1, 1, True)(torch.zeros(1, 2, *hw)).shape[2:]
    )


@pytest.mark.parametrize(("fin", "fout", "bias"), [(40, 10, True), (4096, 1000, False)])
def test_linear_params_match_torch(fin, fout, bias):
    assert ca.linear_params(fin, fout, bias) == sum(
        q.numel() for q in nn.Linear(fin, fout, bias=bias).parameters()
    )


# Seed 002's table, two-GPU AlexNet, weights without biases.
LECTURE = [
    ("conv1", "35k", 11 * 11 * 3 * 48 * 2),
    ("conv2", "307k", 5 * 5 * 48 * 128 * 2),
    ("conv3", "884k", 3 * 3 * 128 * 2 * 192 * 2),
    ("conv4", "663k", 3 * 3 * 192 * 192 * 2),
    ("conv5", "442k", 3 * 3 * 192 * 128 * 2),
    ("fc6", "177M", 13 * 13 * 128 * 2 * 2048 * 2),
    ("fc7", "16M", 2048 * 2 * 2048 * 2),
    ("fc8", "4M", 2048 * 2 * 1000),
]


def _label_value(label: str) -> float:
    return float(label[:-1]) * {"k": 1e3, "M": 1e6}[label[-1]]


def test_alexnet_table_is_the_lectures():
    rows = bc.alexnet_table()
    assert [(r["layer"], r["lecture"], r["weights"]) for r in rows] == LECTURE
    for r in rows:
        assert eval(r["formula"], {"__builtins__": {}}) == r["weights"]
        # the lecture's label is that count rounded to its leading digits
        assert abs(r["weights"] - _label_value(r["lecture"])) / r["weights"] < 0.05


def _torch_alexnet(two_gpu: bool, pool_before_fc: bool, bias: bool) -> list[nn.Module]:
    """The real layers; the dense ones on the meta device (no 700 MB allocation for fc6)."""
    g = 2 if two_gpu else 1
    kw = {"bias": bias}
    feats = [
        nn.Conv2d(3, 96, 11, 4, **kw), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, 1, 2, groups=g, **kw), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, 1, 1, **kw),
        nn.Conv2d(384, 384, 3, 1, 1, groups=g, **kw),
        nn.Conv2d(384, 256, 3, 1, 1, groups=g, **kw),
    ]  # fmt: skip
    if pool_before_fc:
        feats.append(nn.MaxPool2d(3, 2))
    side = 6 if pool_before_fc else 13
    return [
        *feats, nn.Flatten(), nn.Linear(256 * side * side, 4096, device="meta", **kw),
        nn.Linear(4096, 4096, device="meta", **kw), nn.Linear(4096, 1000, device="meta", **kw),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("two_gpu", "pool_before_fc", "bias"),
    [(True, False, False), (False, False, False), (True, True, True), (False, True, False)],
)
def test_alexnet_table_matches_torch_layers(two_gpu, pool_before_fc, bias):
    rows = bc.alexnet_table(two_gpu, bias=bias, pool_before_fc=pool_before_fc)
    layers = _torch_alexnet(two_gpu, pool_before_fc, bias)
    weighted = [m for m in layers if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [r["weights"] for r in rows] == [
        sum(p.numel() for p in m.parameters()) for m in weighted
    ]
    # output shapes by running the network layer by layer (dense layers: by their sizes)
    x = torch.zeros(1, 3, 227, 227)
    shapes = []
    with torch.no_grad():
        for m in layers:
            if isinstance(m, nn.Linear):
                assert x.shape[1] == m.in_features
                x = torch.zeros(1, m.out_features)
            else:
                x = m(x)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                shapes.append(tuple(x.shape[1:]))
    assert [r["out_shape"] for r in rows] == shapes
    assert rows[5]["in_shape"] == ((256, 6, 6) if pool_before_fc else (256, 13, 13))
    if not two_gpu:
        assert rows[1]["weights"] == 2 * LECTURE[1][2]


def test_bottleneck_lecture_example():
    r = bc.bottleneck_savings(128, 128, 3, 32)
    assert r["direct"] == 3 * 3 * 128 * 128 == 147_456
    assert (r["reduce"], r["conv"]) == (1 * 1 * 128 * 32, 3 * 3 * 32 * 128)
    assert r["bottleneck"] == 40_960 and r["saved"] == 147_456 - 40_960
    assert r["ratio"] == pytest.approx(3.6)
    # same numbers from real layers
    direct = nn.Conv2d(128, 128, 3, bias=False)
    reduce, conv = nn.Conv2d(128, 32, 1, bias=False), nn.Conv2d(32, 128, 3, bias=False)
    assert r["direct"] == direct.weight.numel()
    assert r["bottleneck"] == reduce.weight.numel() + conv.weight.numel()
    with_bias = bc.bottleneck_savings(64, 256, 5, 16, bias=True)
    assert with_bias["bottleneck"] == (64 * 16 + 16) + (25 * 16 * 256 + 256)


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0"), (999, "999"), (34_848, "34.8k"), (177_209_344, "177.2M")]
)
def test_format_count(n, text):
    assert bc.format_count(n) == text


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ca.conv_output_shape(5, 7), "larger than the padded input"),
        (lambda: ca.conv_output_shape(5, 3, stride=0), "stride entries must be integers >= 1"),
        (lambda: ca.conv_output_shape(5, 3, padding=-1), "padding entries must be"),
        (lambda: ca.conv_output_shape((5, 5), (3, 3, 3)), "kernel must have 2 entries"),
        (lambda: ca.conv_output_shape(5, 3, stride=2, padding="same"), "needs stride 1"),
        (lambda: ca.conv_output_shape(5, 3, padding="full"), "padding must be"),
        (lambda: ca.conv_output_shape((), 3), "must not be empty"),
        (lambda: ca.conv_params(3, 96, 11, groups=2), "divisible by groups"),
        (lambda: ca.conv_params(0, 96, 11), "in_ch must be an integer >= 1, got 0"),
        (lambda: ca.linear_params(10, -1), "out_features must be"),
        (lambda: bc.format_count(-1), "n must be >= 0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_formula_matches_conv_params_generic():
    # for a non-lecture configuration the formula still evaluates to the count
    for r in bc.alexnet_table(False, pool_before_fc=True):
        assert eval(r["formula"], {"__builtins__": {}}) == r["weights"]
        assert r["lecture"] is None
    assert math.prod(bc.alexnet_table(input_hw=227)[0]["out_shape"][1:]) == 55 * 55


def test_docstring_examples():
    import doctest

    for module in (ca, bc):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0
