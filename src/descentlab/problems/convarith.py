"""Convolution arithmetic: output shapes and parameter counts.

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

The lecture's tables (AlexNet's parameters, the 1x1 bottleneck, the inception block) are the
book's: :mod:`descentlab.book.convolution`.

References:
    Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016,
    https://arxiv.org/abs/1603.07285.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["conv_output_shape", "conv_params", "linear_params"]

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
