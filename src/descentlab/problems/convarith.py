"""Convolution arithmetic: output shapes and parameter counts (the regularization and CNN lecture).

For one spatial dimension of size ``n``, a convolution (or pooling) with kernel ``k``, stride
``s``, zero padding ``p`` and dilation ``d`` gives

.. math::

    n_{out} = \\left\\lfloor \\frac{n + 2p - d (k - 1) - 1}{s} \\right\\rfloor + 1

(the formula of ``torch.nn.Conv2d``'s documentation; Dumoulin & Visin, 2016). A convolution
from ``C_in`` to ``C_out`` channels in ``g`` groups has

.. math::

    \\frac{C_{in}}{g} \\, C_{out} \\prod_i k_i \\; (+ \\, C_{out} \\text{ biases})

parameters: every output channel sees ``C_in / g`` input channels through one kernel, shared
over all positions, which is why convolutions have so few parameters next to dense layers.

:func:`alexnet_table` reproduces the AlexNet parameter table of the regularization and CNN lecture
and :func:`bottleneck_savings` the saving of a 1x1 bottleneck (GoogLeNet's inception block).

References:
    Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016,
    https://arxiv.org/abs/1603.07285.
    Krizhevsky, Sutskever, Hinton, "ImageNet classification with deep convolutional neural
    networks", NeurIPS 2012.
    Szegedy et al., "Going deeper with convolutions", CVPR 2015,
    https://arxiv.org/abs/1409.4842.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "alexnet_table",
    "bottleneck_savings",
    "conv_output_shape",
    "conv_params",
    "format_count",
    "inception_table",
    "linear_params",
]

IntOrSeq = int | Sequence[int]


def _as_tuple(name: str, value: IntOrSeq, ndim: int, minimum: int) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer or a sequence of integers, got {value!r}")
    if isinstance(value, int):
        values: tuple[int, ...] = (value,) * ndim
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(
                f"{name} must be an integer or a sequence of integers, got {value!r}"
            ) from None
        if len(values) != ndim:
            raise ValueError(f"{name} must have {ndim} entries, got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"{name} entries must be integers >= {minimum}, got {value!r}")
    return values


def conv_output_shape(
    input_hw: IntOrSeq,
    kernel: IntOrSeq,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
    dilation: IntOrSeq = 1,
) -> tuple[int, ...]:
    """Spatial output shape of a convolution or pooling layer.

    ``n_out = floor((n + 2 p - d (k - 1) - 1) / s) + 1`` per dimension, as ``torch.nn.ConvNd``
    and ``torch.nn.MaxPoolNd`` (with ``ceil_mode=False``) compute it.

    Args:
        input_hw: spatial input size: an int (1-D) or a sequence (one entry per dimension).
        kernel: kernel size (int: the same in every dimension).
        stride: stride (>= 1).
        padding: zero padding per side (>= 0), or ``"valid"`` (0) or ``"same"`` (output size =
            input size; stride must be 1, as in torch).
        dilation: dilation (>= 1).

    Returns:
        the spatial output shape, a tuple with as many entries as ``input_hw``.

    Raises:
        ValueError: bad argument, or a kernel larger than the padded input.

    Example:
        >>> conv_output_shape((227, 227), 11, stride=4)
        (55, 55)
        >>> conv_output_shape(40, 5, stride=2, padding=1)
        (19,)
    """
    if isinstance(input_hw, int) and not isinstance(input_hw, bool):
        sizes: tuple[int, ...] = (input_hw,)
    else:
        try:
            sizes = tuple(input_hw)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(f"input_hw must be an int or a sequence, got {input_hw!r}") from None
        if not sizes:
            raise ValueError(f"input_hw must not be empty, got {input_hw!r}")
    ndim = len(sizes)
    sizes = _as_tuple("input_hw", sizes, ndim, 1)
    k = _as_tuple("kernel", kernel, ndim, 1)
    s = _as_tuple("stride", stride, ndim, 1)
    d = _as_tuple("dilation", dilation, ndim, 1)
    if isinstance(padding, str):
        if padding == "valid":
            p: tuple[int, ...] = (0,) * ndim
        elif padding == "same":
            if any(si != 1 for si in s):
                raise ValueError(f"padding='same' needs stride 1, got stride={stride!r}")
            return sizes
        else:
            raise ValueError(
                f"padding must be an int, a sequence, 'valid' or 'same', got {padding!r}"
            )
    else:
        p = _as_tuple("padding", padding, ndim, 0)
    out = []
    for n, ki, si, pi, di in zip(sizes, k, s, p, d, strict=True):
        span = di * (ki - 1) + 1
        if n + 2 * pi < span:
            raise ValueError(
                f"kernel {kernel!r} (dilation {dilation!r}) is larger than the padded input "
                f"{n} + 2*{pi}"
            )
        out.append((n + 2 * pi - span) // si + 1)
    return tuple(out)


def conv_params(
    in_ch: int, out_ch: int, kernel: IntOrSeq, bias: bool = True, groups: int = 1, ndim: int = 2
) -> int:
    """Number of parameters of a convolution layer.

    ``(in_ch / groups) * out_ch * prod(kernel) + (out_ch if bias else 0)``, the count of
    ``torch.nn.ConvNd(in_ch, out_ch, kernel, groups=groups, bias=bias)``.

    Args:
        in_ch: input channels (divisible by ``groups``).
        out_ch: output channels (divisible by ``groups``).
        kernel: kernel size; an int is repeated ``ndim`` times.
        bias: count the biases.
        groups: number of groups (AlexNet's two-GPU split is ``groups=2``).
        ndim: spatial dimensions of an int ``kernel`` (1, 2 or 3).

    Returns:
        the parameter count.

    Example:
        >>> conv_params(3, 96, 11, bias=False)  # AlexNet's first layer
        34848
    """
    for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("groups", groups), ("ndim", ndim)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if in_ch % groups or out_ch % groups:
        raise ValueError(
            f"in_ch and out_ch must be divisible by groups, got in_ch={in_ch}, "
            f"out_ch={out_ch}, groups={groups}"
        )
    k = _as_tuple("kernel", kernel, ndim if isinstance(kernel, int) else len(kernel), 1)
    return (in_ch // groups) * out_ch * math.prod(k) + (out_ch if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of parameters of ``torch.nn.Linear(in_features, out_features, bias)``.

    Example:
        >>> linear_params(4096, 4096, bias=False)
        16777216
    """
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return in_features * out_features + (out_features if bias else 0)


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
    h = _as_tuple("input_hw", input_hw, 1, 1)[0]
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
        hw = conv_output_shape(shape[1:], spec["k"], spec["s"], spec["p"])
        out_shape: tuple[int, ...] = (spec["out"], *hw)
        weights = conv_params(spec["in"], spec["out"], spec["k"], bias=bias, groups=groups)
        formula = f"{spec['k']}*{spec['k']}*{spec['in'] // groups}*{spec['out']}"
        pool = spec["pool"] and (spec["layer"] != "conv5" or pool_before_fc)
        pooled = (spec["out"], *conv_output_shape(out_shape[1:], 3, 2)) if pool else out_shape
        row.update(kernel=spec["k"], stride=spec["s"], padding=spec["p"], groups=groups)
    else:
        fan_in = math.prod(shape)
        out_shape = pooled = (spec["out"],)
        weights = linear_params(fan_in, spec["out"], bias=bias)
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
    direct = conv_params(in_ch, out_ch, kernel, bias=bias)
    reduce = conv_params(in_ch, bottleneck_ch, 1, bias=bias)
    conv = conv_params(bottleneck_ch, out_ch, kernel, bias=bias)
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
        weights = conv_params(cin, cout, k, bias=bias) if k else 0
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
