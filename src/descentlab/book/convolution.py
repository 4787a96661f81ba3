"""Evidence for the CNN items: descentlab's convolution arithmetic (output sizes, kernel and
parameter counts) against torch's layers, and why sharing one kernel makes a CNN small; the
lecture's tables (AlexNet's parameters, the 1x1 bottleneck, GoogLeNet's inception block).

References:
    Krizhevsky, Sutskever, Hinton, "ImageNet classification with deep convolutional neural
    networks", NeurIPS 2012.
    Szegedy et al., "Going deeper with convolutions", CVPR 2015,
    https://arxiv.org/abs/1409.4842.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from descentlab.book.checks import ck
from descentlab.book.model import Context
from descentlab.book.render.pages import Evidence
from descentlab.problems import convarith as ca

__all__ = [
    "alexnet_table",
    "bottleneck_savings",
    "conv_shapes",
    "format_count",
    "inception_table",
    "rgb_kernels",
    "shared_kernels",
]


def conv_shapes(ctx: Context) -> Evidence:
    """Output size ⌊(n + 2p - k)/s⌋ + 1 and parameter counts: conv_output_shape and
    conv_params against torch's Conv2d."""
    cases = [
        ((227, 227), 3, 96, 11, 4, 0),
        ((27, 27), 96, 256, 5, 1, 2),
        ((32, 32), 3, 8, 3, 2, 1),
        ((28, 28), 1, 6, 5, 1, 0),
        ((7, 7), 4, 4, 3, 3, 2),
    ]
    rows = []
    for hw, cin, cout, k, s, p in cases:
        conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p)
        with torch.no_grad():
            shape = tuple(conv(torch.zeros(1, cin, *hw)).shape[2:])
        ours = ca.conv_output_shape(hw, k, stride=s, padding=p)
        n_torch = sum(q.numel() for q in conv.parameters())
        rows.append(
            [f"{hw} k{k} s{s} p{p}", str(ours), str(shape), ca.conv_params(cin, cout, k), n_torch]
        )
    agree = sum(r[1] == r[2] and r[3] == r[4] for r in rows)
    return Evidence(
        checks=[
            ck(
                "stride and padding: descentlab's output sizes and parameter counts equal torch's "
                "Conv2d",
                agree == len(rows),
                f"{agree} of {len(rows)}",
                f"{len(rows)} of {len(rows)}",
            )
        ],
        tables=[
            (["layer", "size (ours)", "size (torch)", "params (ours)", "params (torch)"], rows)
        ],
    )


def rgb_kernels(ctx: Context) -> Evidence:
    """Input and output channels fix the kernel tensor: C_out kernels of depth C_in; stacked
    layers chain the channels."""
    cases = [(3, 8, 5), (8, 16, 3), (16, 4, 1)]
    rows = []
    for cin, cout, k in cases:
        conv = torch.nn.Conv2d(cin, cout, k)
        ours = ca.conv_params(cin, cout, k, bias=False)
        rows.append(
            [f"{cin} → {cout}, {k}x{k}", ours, conv.weight.numel(), str(tuple(conv.weight.shape))]
        )
    x = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        for cin, cout, k in cases:
            x = torch.nn.Conv2d(cin, cout, k)(x)
    stacked = tuple(x.shape[1:])
    expect = (
        4,
        *ca.conv_output_shape(ca.conv_output_shape(ca.conv_output_shape((32, 32), 5), 3), 1),
    )
    return Evidence(
        checks=[
            ck(
                "conv_params(C_in, C_out, k, bias=False) = C_out·C_in·k² = the weight tensor's "
                "size (C_out, C_in, k, k)",
                all(r[1] == r[2] for r in rows),
                f"{sum(r[1] == r[2] for r in rows)} of {len(rows)}",
                f"{len(rows)} of {len(rows)}",
            ),
            ck(
                "stacking 3 → 8 → 16 → 4 channels on a 32x32 RGB image: the output shape by "
                "descentlab's arithmetic",
                stacked == expect,
                str(stacked),
                str(expect),
            ),
        ],
        tables=[(["layer", "weights (ours)", "weights (torch)", "torch weight shape"], rows)],
    )


def shared_kernels(ctx: Context) -> Evidence:
    """One kernel shared over all positions: AlexNet's conv1 against the dense layer with the
    same input and output sizes (descentlab's counts; torch's Conv2d for the conv)."""
    out_hw = ca.conv_output_shape((227, 227), 11, stride=4)
    conv = ca.conv_params(3, 96, 11)
    dense = ca.linear_params(227 * 227 * 3, out_hw[0] * out_hw[1] * 96)
    torch_conv = sum(p.numel() for p in torch.nn.Conv2d(3, 96, 11, stride=4).parameters())
    return Evidence(
        checks=[
            ck(
                "conv1's parameters (descentlab) equal torch's Conv2d(3, 96, 11)",
                conv == torch_conv,
                f"{conv:,}",
                f"{torch_conv:,}",
            ),
            ck(
                f"a dense layer from 227x227x3 to {out_hw[0]}x{out_hw[1]}x96 needs over a million "
                "times more",
                dense > 1e6 * conv,
                f"{dense:,} ({dense / conv:.2g}x)",
                "> 1e6 x",
            ),
        ]
    )


def format_count(n: int) -> str:
    """Human-readable count: ``34848 -> '34.8k'``, ``177209344 -> '177.2M'``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


# AlexNet as the lecture draws it (one row per layer with weights). Each GPU holds half the
# channels; layers 2, 4 and 5 only see the channels of their own GPU (groups=2), layer 3 and
# the dense layers see both. The lecture counts weights without biases and feeds the first
# dense layer from the 13x13x256 map of layer 5 (the real network max-pools it to 6x6 first:
# pool_before_fc=True). "lecture" is the rounded number written in the regularization and CNN
# lecture, "formula" the product it comes from.
_ALEXNET: tuple[dict[str, Any], ...] = (
    {"layer": "conv1", "kind": "conv", "in": 3, "out": 96, "k": 11, "s": 4, "p": 0,
     "grouped": False, "pool": True, "lecture": "35k", "formula": "11*11*3*48*2"},
    {"layer": "conv2", "kind": "conv", "in": 96, "out": 256, "k": 5, "s": 1, "p": 2,
     "grouped": True, "pool": True, "lecture": "307k", "formula": "5*5*48*128*2"},
    {"layer": "conv3", "kind": "conv", "in": 256, "out": 384, "k": 3, "s": 1, "p": 1,
     "grouped": False, "pool": False, "lecture": "884k", "formula": "3*3*128*2*192*2"},
    {"layer": "conv4", "kind": "conv", "in": 384, "out": 384, "k": 3, "s": 1, "p": 1,
     "grouped": True, "pool": False, "lecture": "663k", "formula": "3*3*192*192*2"},
    {"layer": "conv5", "kind": "conv", "in": 384, "out": 256, "k": 3, "s": 1, "p": 1,
     "grouped": True, "pool": True, "lecture": "442k", "formula": "3*3*192*128*2"},
    {"layer": "fc6", "kind": "fc", "out": 4096, "lecture": "177M",
     "formula": "13*13*128*2*2048*2"},
    {"layer": "fc7", "kind": "fc", "out": 4096, "lecture": "16M", "formula": "2048*2*2048*2"},
    {"layer": "fc8", "kind": "fc", "out": 1000, "lecture": "4M", "formula": "2048*2*1000"},
)  # fmt: skip


def alexnet_table(
    two_gpu: bool = True,
    *,
    input_hw: int = 227,
    bias: bool = False,
    pool_before_fc: bool = False,
) -> list[dict[str, Any]]:
    """AlexNet's layers with output shapes and parameter counts, as in the regularization and CNN
    lecture.

    With the defaults (two GPUs, weights only, the lecture's 13x13 input to the first dense
    layer) the ``weights`` column is the lecture's table exactly:

    =====  ==========================  ===========  =======
    layer  formula                     weights      lecture
    =====  ==========================  ===========  =======
    conv1  11*11*3*48*2                34,848       35k
    conv2  5*5*48*128*2                307,200      307k
    conv3  3*3*128*2*192*2             884,736      884k
    conv4  3*3*192*192*2               663,552      663k
    conv5  3*3*192*128*2               442,368      442k
    fc6    13*13*128*2*2048*2          177,209,344  177M
    fc7    2048*2*2048*2               16,777,216   16M
    fc8    2048*2*1000                 4,096,000    4M
    =====  ==========================  ===========  =======

    ``two_gpu=False`` removes the split (``groups=1``): layers 2, 4 and 5 then see all channels
    and have twice the weights. Shapes follow the network's arithmetic: a 227x227 input (the
    paper's "224" does not give 55x55), 3x3 stride-2 max pooling after conv1, conv2 and
    conv5 (the last one only with ``pool_before_fc``).

    Args:
        two_gpu: AlexNet's two-GPU grouping (``groups=2`` in layers 2, 4, 5).
        input_hw: input height = width.
        bias: add the biases to the counts.
        pool_before_fc: feed fc6 from the pooled 6x6 map (the real network: 37,748,736
            weights) instead of the lecture's 13x13 map.

    Returns:
        one dict per layer: ``layer``, ``kind`` (``"conv"``/``"fc"``), ``in_shape`` and
        ``out_shape`` ((C, H, W) or (features,)), ``kernel``, ``stride``, ``padding``,
        ``groups``, ``pool`` (whether a 3x3/2 max-pool follows), ``pooled_shape`` (what the next
        layer reads), ``weights`` (the parameter count), ``formula`` (a product equal to the
        weights without biases) and ``lecture`` (the regularization and CNN lecture's rounded
        number, only for the lecture's configuration, else ``None``).

    Example:
        >>> [row["weights"] for row in alexnet_table()][:3]
        [34848, 307200, 884736]
    """
    h = ca._as_tuple("input_hw", input_hw, 1, 1)[0]
    lecture_config = two_gpu and not bias and not pool_before_fc and h == 227
    shape: tuple[int, ...] = (3, h, h)
    rows: list[dict[str, Any]] = []
    for spec in _ALEXNET:
        row = _alexnet_layer(spec, shape, two_gpu, bias, pool_before_fc)
        if lecture_config:
            row["formula"] = spec["formula"]
        row["lecture"] = spec["lecture"] if lecture_config else None
        rows.append(row)
        shape = row["pooled_shape"]
    return rows


def _alexnet_layer(
    spec: dict[str, Any], shape: tuple[int, ...], two_gpu: bool, bias: bool, pool_before_fc: bool
) -> dict[str, Any]:
    """One row of :func:`alexnet_table` (without ``lecture``) for the layer ``spec`` reading
    a map of ``shape``."""
    row: dict[str, Any] = {"layer": spec["layer"], "kind": spec["kind"], "in_shape": shape}
    if spec["kind"] == "conv":
        groups = 2 if (two_gpu and spec["grouped"]) else 1
        hw = ca.conv_output_shape(shape[1:], spec["k"], spec["s"], spec["p"])
        out_shape: tuple[int, ...] = (spec["out"], *hw)
        weights = ca.conv_params(spec["in"], spec["out"], spec["k"], bias=bias, groups=groups)
        formula = f"{spec['k']}*{spec['k']}*{spec['in'] // groups}*{spec['out']}"
        pool = spec["pool"] and (spec["layer"] != "conv5" or pool_before_fc)
        pooled = (spec["out"], *ca.conv_output_shape(out_shape[1:], 3, 2)) if pool else out_shape
        row.update(kernel=spec["k"], stride=spec["s"], padding=spec["p"], groups=groups)
    else:
        fan_in = math.prod(shape)
        out_shape = pooled = (spec["out"],)
        weights = ca.linear_params(fan_in, spec["out"], bias=bias)
        formula = f"{fan_in}*{spec['out']}"
        pool = False
        row.update(kernel=None, stride=None, padding=None, groups=1)
    row.update(out_shape=out_shape, pool=pool, pooled_shape=pooled, weights=weights,
               formula=formula)  # fmt: skip
    return row


def bottleneck_savings(
    in_ch: int = 128, out_ch: int = 128, kernel: int = 3, bottleneck_ch: int = 32,
    bias: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Parameters saved by a 1x1 convolution bottleneck in front of a ``k x k`` convolution.

    A direct ``k x k`` convolution ``in_ch -> out_ch`` costs ``k^2 in_ch out_ch`` weights. First
    reducing the channels with a 1x1 convolution ``in_ch -> b`` and then applying the ``k x k``
    convolution ``b -> out_ch`` costs ``in_ch b + k^2 b out_ch``, with the same receptive field
    and one more nonlinearity (GoogLeNet's inception module, the regularization and CNN
    lecture's "1 x 1 convolution"). The lecture's example: ``3x3x128x128 = 147,456`` weights against
    ``1x1x128x32 + 3x3x32x128 = 4,096 + 36,864 = 40,960``, about 3.6x fewer.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: the spatial kernel size ``k`` of the main convolution.
        bottleneck_ch: channels ``b`` after the 1x1 reduction.
        bias: count biases.

    Returns:
        dict with ``direct``, ``reduce`` (the 1x1 layer), ``conv`` (the k x k layer after it),
        ``bottleneck`` (``reduce + conv``), ``saved`` (``direct - bottleneck``) and ``ratio``
        (``direct / bottleneck``).

    Example:
        >>> r = bottleneck_savings()
        >>> r["direct"], r["bottleneck"]
        (147456, 40960)
    """
    direct = ca.conv_params(in_ch, out_ch, kernel, bias=bias)
    reduce = ca.conv_params(in_ch, bottleneck_ch, 1, bias=bias)
    conv = ca.conv_params(bottleneck_ch, out_ch, kernel, bias=bias)
    total = reduce + conv
    return {
        "direct": direct,
        "reduce": reduce,
        "conv": conv,
        "bottleneck": total,
        "saved": direct - total,
        "ratio": direct / total,
    }


# GoogLeNet's inception (3a) block (Szegedy et al., Table 1): input 28x28x192, four branches
# concatenated along the channels.
_INCEPTION_3A = {
    "in": 192,
    "hw": 28,
    "1x1": 64,
    "3x3_reduce": 96,
    "3x3": 128,
    "5x5_reduce": 16,
    "5x5": 32,
    "pool_proj": 32,
}


def inception_table(
    reduce: bool = True, *, bias: bool = False, block: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """The layers of an inception block with their output shapes and parameter counts.

    With ``reduce`` (GoogLeNet's block) the 3x3 and 5x5 convolutions read a 1x1 reduction of
    the input and the pooling branch ends in a 1x1 projection; without it (the "naive"
    block) they read all input channels and the pooled input is concatenated as it is, so
    the output is wider and every layer costs more. Every convolution keeps the spatial size
    (padding ``k // 2``, stride 1).

    Args:
        reduce: with the 1x1 reductions.
        bias: count biases.
        block: the channel numbers (keys ``in``, ``hw``, ``1x1``, ``3x3_reduce``, ``3x3``,
            ``5x5_reduce``, ``5x5``, ``pool_proj``); default GoogLeNet's inception (3a).

    Returns:
        one dict per layer: ``branch``, ``layer``, ``in_ch``, ``out_ch``, ``kernel``,
        ``out_shape`` (C, H, W) and ``weights``; the last row (``layer == "concat"``) holds the
        block's total weights and output shape.

    Example:
        >>> inception_table()[-1]["weights"], inception_table(reduce=False)[-1]["weights"]
        (163328, 387072)
    """
    b = dict(_INCEPTION_3A if block is None else block)
    missing = sorted(set(_INCEPTION_3A) - set(b))
    if missing:
        raise ValueError(f"block is missing {missing}; keys: {list(_INCEPTION_3A)}")
    c, hw = b["in"], b["hw"]
    layers: list[tuple[str, str, int, int, int]] = [("1x1", "1x1", c, b["1x1"], 1)]
    if reduce:
        layers += [
            ("3x3", "1x1 reduce", c, b["3x3_reduce"], 1),
            ("3x3", "3x3", b["3x3_reduce"], b["3x3"], 3),
            ("5x5", "1x1 reduce", c, b["5x5_reduce"], 1),
            ("5x5", "5x5", b["5x5_reduce"], b["5x5"], 5),
            ("pool", "3x3 max-pool", c, c, 0),
            ("pool", "1x1 projection", c, b["pool_proj"], 1),
        ]
    else:
        layers += [
            ("3x3", "3x3", c, b["3x3"], 3),
            ("5x5", "5x5", c, b["5x5"], 5),
            ("pool", "3x3 max-pool", c, c, 0),
        ]
    rows: list[dict[str, Any]] = []
    out_channels: dict[str, int] = {}
    for branch, layer, cin, cout, k in layers:
        weights = ca.conv_params(cin, cout, k, bias=bias) if k else 0
        rows.append(
            {
                "branch": branch,
                "layer": layer,
                "in_ch": cin,
                "out_ch": cout,
                "kernel": k or 3,
                "out_shape": (cout, hw, hw),
                "weights": weights,
            }
        )
        out_channels[branch] = cout
    total_c = sum(out_channels.values())
    rows.append(
        {
            "branch": "all",
            "layer": "concat",
            "in_ch": c,
            "out_ch": total_c,
            "kernel": None,
            "out_shape": (total_c, hw, hw),
            "weights": sum(r["weights"] for r in rows),
        }
    )
    return rows
