"""Convolution arithmetic, in depth: the discrete convolution and the cross-correlation deep
learning computes, the output size with padding, stride and dilation, the kernel tensor of a
multi-channel layer and its parameters, AlexNet's table, the 1×1 bottleneck and its
multiply–adds, and the receptive field; descentlab's convolution arithmetic
(:mod:`descentlab.problems.convarith`) against torch's layers, numpy, torch's FLOP counter and
autograd, a convolution from scratch, and descentlab's MNIST-1D CNN trained beside an MLP."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

from descentlab.book import convolution as B
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, diff_check
from descentlab.book.facts import word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.problems import convarith as C

__all__ = ["CHAPTER"]

#: the small example of the first section
SIGNAL, KERNEL = (1.0, 2.0, 3.0, 4.0, 5.0), (1.0, 0.0, -1.0)
#: the grid of 1-D convolutions whose output sizes are checked
SIZES, KS, PADS, STRIDES, DILATIONS = range(5, 13), (1, 3, 5), (0, 1, 2), (1, 2, 3), (1, 2)
#: the multi-channel layer: input channels, output channels, kernel, image size
C_IN, C_OUT, K2, HW = 3, 16, 5, 32
#: the bottleneck: channels, kernel, the reduced channels, the map's size
BOTTLE, BOTTLE_K, BOTTLE_B, BOTTLE_HW = 128, 3, 32, 28
#: the training runs on MNIST-1D
TRAIN_STEPS, TRAIN_LR = 600, 0.003


def _conv_out(n: int, k: int, p: int, s: int, d: int) -> int:
    return C.conv_output_shape(n, k, s, p, d)[0]


def _torch_fits(n: int, k: int, p: int, s: int, d: int) -> bool:
    """Whether torch's conv1d accepts the kernel on the padded input (it raises otherwise)."""
    try:
        return _torch_out(n, k, p, s, d) > 0
    except RuntimeError:
        return False


def _torch_out(n: int, k: int, p: int, s: int, d: int) -> int:
    return int(
        F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d).shape[
            -1
        ]
    )


# ------------------------------------------------------------------------------------------
# 1. a sum of products

SUM = kit.Prose(
    """
A discrete convolution slides one sequence over another and sums the products (item 91):

$$(f * g)[n] = \\sum_m f[m]\\, g[n - m],$$

and in two dimensions, for an image I and a kernel K, $(I * K)[i, j] = \\sum_{a, b} I[a, b]\\,
K[i - a, j - b]$. The kernel is flipped: $g[n - m]$ runs backwards as m runs forwards. The
"convolution" of deep learning is not flipped: torch's `conv1d` and `conv2d` compute the
cross-correlation $\\sum_m f[n + m]\\, g[m]$, the kernel laid over the signal as it is. Since the
kernel is learned, the difference is only a relabelling of its weights, but it matters when a
hand-made kernel is copied from a textbook. The build slides the kernel ({{kernel}}) over the
signal ({{signal}}): torch's `conv1d` gives {{torch_out}}, numpy's `correlate` the same, and
numpy's `convolve` with the kernel reversed again the same; without reversing it, `convolve`
gives the opposite signs, the flip made visible. A kernel is a pattern detector: this one, a
difference of neighbours, responds to slopes, and the signal's constant slope gives a constant
response.""",
    torch_out="torch's conv1d on the example, against numpy's correlate",
)


def _sum(ctx: Context, n: kit.Numbers) -> Part:
    f, g = np.array(SIGNAL), np.array(KERNEL)
    ours = F.conv1d(torch.tensor(f).view(1, 1, -1), torch.tensor(g).view(1, 1, -1)).view(-1).numpy()
    corr = np.correlate(f, g, mode="valid")
    conv = np.convolve(f, g[::-1], mode="valid")
    text = SUM.fill(
        n,
        kernel=", ".join(f"{v:g}" for v in KERNEL),
        signal=", ".join(f"{v:g}" for v in SIGNAL),
        torch_out=[(float(a), float(b), 0) for a, b in zip(ours, corr, strict=True)],
    )
    checks = [
        diff_check(
            "torch's conv1d is numpy's convolve with the kernel reversed",
            float(np.abs(ours - conv).max()),
            1e-12,
        ),
        ck(
            "numpy's convolve without the reversal gives the opposite signs (the flip)",
            bool(np.allclose(np.convolve(f, g, mode="valid"), -ours)),
            f"{np.convolve(f, g, mode='valid').tolist()}",
            f"{(-ours).tolist()}",
        ),
    ]
    return Part("sum", "A sum of products, and the flip", [text, checks])


# ------------------------------------------------------------------------------------------
# 2. the output size

SHAPES = kit.Prose(
    """
How long is the output? A kernel of size k, dilated by d (its taps d apart, spanning
${{f:dilated_extent}}$ inputs), slid with stride s over an input of length n padded with p zeros on
each side, fits

$$n_{\\mathrm{out}} = {{f:conv_out}}$$

times (item 94): the padded length less the span gives the room to slide, the stride divides
it, and the first position counts once. The floor is real: with n = 10, k = 3, s = 2 and no
padding the kernel fits {{floor_case}} times and the last input is never the centre of a
window. Padding keeps the size: with stride 1, $p = {{f:same_padding}}$ gives
$n_{\\mathrm{out}} = n$,
torch's `padding="same"`. descentlab's `conv_output_shape` computes the formula; the build
compares it with the length of torch's output on every combination of n from {{n_lo}} to
{{n_hi}}, kernels {{ks}}, paddings {{pads}}, strides {{strides}} and dilations {{dils}} for
which the kernel fits: {{count}} convolutions, {{mismatches}} of them different.""",
    floor_case="the formula at n = 10, k = 3, s = 2, against torch's output",
    count="the combinations where the kernel fits, against the enumeration by torch",
    mismatches="the formula's disagreements with torch, against 0",
)


def _shapes(ctx: Context, n: kit.Numbers) -> Part:
    combos = [
        c
        for c in itertools.product(SIZES, KS, PADS, STRIDES, DILATIONS)
        if c[0] + 2 * c[2] >= c[4] * (c[1] - 1) + 1
    ]
    fits_torch = sum(
        _torch_fits(*c) for c in itertools.product(SIZES, KS, PADS, STRIDES, DILATIONS)
    )
    bad = sum(_conv_out(*c) != _torch_out(*c) for c in combos)
    text = SHAPES.fill(
        n,
        n_lo=str(SIZES[0]),
        n_hi=str(SIZES[-1]),
        ks=", ".join(map(str, KS)),
        pads=", ".join(map(str, PADS)),
        strides=", ".join(map(str, STRIDES)),
        dils=", ".join(map(str, DILATIONS)),
        floor_case=(_conv_out(10, 3, 0, 2, 1), _torch_out(10, 3, 0, 2, 1), 0),
        count=(len(combos), fits_torch, 0),
        mismatches=(bad, 0, 0),
    )
    rows = [
        [nn, k, p, s, d, _conv_out(nn, k, p, s, d), _torch_out(nn, k, p, s, d)]
        for nn, k, p, s, d in (
            (10, 3, 0, 1, 1),
            (10, 3, 1, 1, 1),
            (10, 3, 0, 2, 1),
            (10, 5, 2, 2, 1),
            (12, 3, 2, 1, 2),
            (7, 5, 0, 3, 1),
        )
    ]
    same = all(
        _torch_out(nn, k, d * (k - 1) // 2, 1, d) == nn
        for nn in SIZES
        for k in KS
        for d in DILATIONS
    )
    checks = [
        ck(
            "with stride 1, padding d(k - 1)/2 keeps the length (odd kernels)",
            same,
            "every n, k, d of the grid" if same else "not all",
            "n_out = n",
        )
    ]
    table = Table(
        ["n", "k", "p", "s", "d", "descentlab's conv_output_shape", "torch's output length"],
        rows,
        "some of the grid's combinations",
    )
    return Part("shapes", "The output size: padding, stride, dilation", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 3. channels, parameters, and AlexNet's table

CHANNELS = kit.Prose(
    """
An image has channels, red, green and blue (item 92), and so does every map a convolution
produces. A layer from $C_{\\mathrm{in}}$ to $C_{\\mathrm{out}}$ channels with $k \\times k$ kernels
holds a kernel tensor of shape $(C_{\\mathrm{out}}, C_{\\mathrm{in}}, k, k)$: each output channel
sums a $k \\times k$ correlation over every input channel, plus a bias. Its parameters number
${{f:conv_params}}$: for {{c_in}} to {{c_out}} channels and {{k}} ×
{{k}} kernels,
{{params}}, whatever the image's size. The same map from a {{hw}} × {{hw}} image to the
{{out_hw}} × {{out_hw}} map it produces, by a dense layer, would need {{dense}} weights, {{ratio}}
times {{more}}: the kernel is shared by every
position, which is the convolution's whole economy (item 93) and the reason it generalizes
better on images, where a pattern means the same thing wherever it appears.

AlexNet's table (item 95) is the lecture's illustration. descentlab's `alexnet_table` gives
each layer's shape and weights (the lecture's split over two GPUs, weights without biases):
its convolutions hold {{conv_total}} weights together, the three dense layers
{{fc_total}}, {{fc_share}} % of the network as the lecture counts it. The lecture's first
dense layer reads the {{lecture_hw}} × {{lecture_hw}} maps of the last convolution; AlexNet
pools them first, to {{pooled_hw}} × {{pooled_hw}}, and its dense layers then hold
{{fc_real}} weights, {{fc_share_real}} % of the network: still nearly all of it, as item 95's
card says, but not the lecture's figure. The build constructs every layer as a torch module
(on the meta device: shapes without memory) and counts its parameters, which agree with the
table layer by layer.""",
    params="the layer's parameters, against torch's Conv2d numel",
    dense="the dense layer's weights, against torch's Linear numel",
    ratio="the dense layer over the convolution, against the counts",
    conv_total="AlexNet's convolution weights, against torch's modules",
    fc_total="AlexNet's dense weights, against torch's modules",
    fc_share="the dense layers' share in %, against torch's modules",
    lecture_hw="the lecture's input to fc6, against the last convolution's output by torch",
    pooled_hw="the pooled map, against torch's max-pool on the meta device",
    fc_real="the real network's dense weights, against torch's modules on the pooled map",
    fc_share_real="the real network's dense share in %, against torch's modules",
    out_hw="the convolution's output side, against torch's Conv2d on the meta device",
)


def _alexnet_modules(pool_before_fc: bool = False) -> list[int]:
    """Every layer of :func:`~descentlab.book.convolution.alexnet_table` as a torch module on
    the meta device, its parameter count (no biases)."""
    out = []
    for row in B.alexnet_table(pool_before_fc=pool_before_fc):
        if row["kind"] == "conv":
            m = torch.nn.Conv2d(
                row["in_shape"][0],
                row["out_shape"][0],
                row["kernel"],
                row["stride"],
                row["padding"],
                groups=row["groups"],
                bias=False,
                device="meta",
            )
        else:
            m = torch.nn.Linear(
                math.prod(row["in_shape"]), row["out_shape"][0], bias=False, device="meta"
            )
        out.append(sum(p.numel() for p in m.parameters()))
    return out


def _channels(ctx: Context, n: kit.Numbers) -> Part:
    conv = torch.nn.Conv2d(C_IN, C_OUT, K2, device="meta")
    out_hw = C.conv_output_shape(HW, K2)[0]
    params = C.conv_params(C_IN, C_OUT, K2)
    dense = C.linear_params(C_IN * HW * HW, C_OUT * out_hw * out_hw, bias=False)
    torch_dense = torch.nn.Linear(
        C_IN * HW * HW, C_OUT * out_hw * out_hw, bias=False, device="meta"
    ).weight.numel()
    table = B.alexnet_table()
    mods = _alexnet_modules()
    conv_w = sum(r["weights"] for r in table if r["kind"] == "conv")
    fc_w = sum(r["weights"] for r in table if r["kind"] == "fc")
    m_conv = sum(m for r, m in zip(table, mods, strict=True) if r["kind"] == "conv")
    m_fc = sum(m for r, m in zip(table, mods, strict=True) if r["kind"] == "fc")
    real = B.alexnet_table(pool_before_fc=True)
    real_mods = _alexnet_modules(pool_before_fc=True)
    fc_real = sum(r["weights"] for r in real if r["kind"] == "fc")
    m_fc_real = sum(m for r, m in zip(real, real_mods, strict=True) if r["kind"] == "fc")
    m_conv_real = sum(m for r, m in zip(real, real_mods, strict=True) if r["kind"] == "conv")
    last = torch.zeros(table[4]["in_shape"], device="meta")
    conv5 = torch.nn.Conv2d(last.shape[0], table[4]["out_shape"][0], 3, padding=1, device="meta")
    maps = conv5(last)
    pooled = torch.nn.functional.max_pool2d(maps, 3, 2)
    text = CHANNELS.fill(
        n,
        out_hw=(out_hw, conv(torch.zeros(1, C_IN, HW, HW, device="meta")).shape[-1], 0),
        lecture_hw=(table[5]["in_shape"][-1], maps.shape[-1], 0),
        pooled_hw=(real[5]["in_shape"][-1], pooled.shape[-1], 0),
        fc_real=(fc_real, m_fc_real, 0),
        fc_share_real=(
            100 * fc_real / (conv_w + fc_real),
            100 * m_fc_real / (m_conv_real + m_fc_real),
            1e-12,
            3,
        ),
        c_in=str(C_IN),
        c_out=str(C_OUT),
        k=str(K2),
        hw=str(HW),
        params=(params, sum(p.numel() for p in conv.parameters()), 0),
        dense=(dense, torch_dense, 0),
        ratio=(dense / params, torch_dense / sum(p.numel() for p in conv.parameters())),
        more=word(dense, params, "more"),
        conv_total=(conv_w, m_conv, 0),
        fc_total=(fc_w, m_fc, 0),
        fc_share=(100 * fc_w / (conv_w + fc_w), 100 * m_fc / (m_conv + m_fc), 1e-12, 3),
    )
    rows = [
        [r["layer"], r["formula"], r["weights"], m, r["lecture"]]
        for r, m in zip(table, mods, strict=True)
    ]
    checks = [
        ck(
            "every layer's weights equal the torch module's",
            all(r["weights"] == m for r, m in zip(table, mods, strict=True)),
            f"{sum(r['weights'] == m for r, m in zip(table, mods, strict=True))} of {len(table)}",
            f"{len(table)} of {len(table)}",
        )
    ]
    tab = Table(
        ["layer", "formula", "descentlab's alexnet_table", "torch module (meta)", "the lecture"],
        rows,
        "AlexNet as the lecture counts it: two GPUs, weights without biases, fc6 from 13 × 13 maps",
    )
    return Part("channels", "Channels, shared kernels, and AlexNet's table", [text, tab, checks])


# ------------------------------------------------------------------------------------------
# 4. the 1×1 bottleneck, and what a layer costs

BOTTLENECK = kit.Prose(
    """
A 1 × 1 convolution mixes channels at each position and nothing else (item 96): it is a dense
layer applied to every pixel's channel vector. Put before an expensive convolution it shrinks
the channels the expensive one must read, GoogLeNet's bottleneck. A direct {{k}} × {{k}}
convolution from {{c}} to {{c}} channels holds {{direct}} weights; reducing to {{b}} channels
first and convolving those holds {{reduced}}, {{ratio}} times {{fewer}}, with the same receptive
field and one more nonlinearity between.

Weights are not the only cost. A convolution's multiply–adds are its weights times the
positions it is applied at: on a {{hw}} × {{hw}} map the direct layer performs {{macs}}
multiply–adds per image, the bottleneck pair {{macs_b}}. torch's FLOP counter, which counts a
multiply–add as two operations, measures the same. A dense layer's weights and its
multiply–adds are one number; a convolution's multiply–adds are its weights times the map's
area, which is why convolutions dominate the compute of a network and dense layers its
weights, AlexNet's table read from the other side.""",
    direct="the direct layer's weights, against torch's numel",
    reduced="the bottleneck pair's weights, against torch's numel",
    ratio="the saving, against the counts",
    macs="the direct layer's multiply–adds, against torch's FLOP counter over 2",
    macs_b="the bottleneck pair's multiply–adds, against torch's FLOP counter over 2",
)


def _flops(*layers: torch.nn.Module) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, layers[0].in_channels, BOTTLE_HW, BOTTLE_HW)
    with FlopCounterMode(display=False) as counter:
        for m in layers:
            x = m(x)
    return int(counter.get_total_flops())


def _bottleneck(ctx: Context, n: kit.Numbers) -> Part:
    r = B.bottleneck_savings(BOTTLE, BOTTLE, BOTTLE_K, BOTTLE_B)
    direct = torch.nn.Conv2d(BOTTLE, BOTTLE, BOTTLE_K, padding=1, bias=False)
    reduce = torch.nn.Conv2d(BOTTLE, BOTTLE_B, 1, bias=False)
    conv = torch.nn.Conv2d(BOTTLE_B, BOTTLE, BOTTLE_K, padding=1, bias=False)
    area = BOTTLE_HW * BOTTLE_HW
    text = BOTTLENECK.fill(
        n,
        k=str(BOTTLE_K),
        c=str(BOTTLE),
        b=str(BOTTLE_B),
        hw=str(BOTTLE_HW),
        direct=(r["direct"], direct.weight.numel(), 0),
        reduced=(r["bottleneck"], reduce.weight.numel() + conv.weight.numel(), 0),
        ratio=(r["ratio"], direct.weight.numel() / (reduce.weight.numel() + conv.weight.numel())),
        fewer=word(r["bottleneck"], r["direct"], "more"),
        macs=(r["direct"] * area, _flops(direct) // 2, 0),
        macs_b=(r["bottleneck"] * area, _flops(reduce, conv) // 2, 0),
    )
    incep = B.inception_table()
    rows = [
        [row["branch"], row["layer"], row["in_ch"], row["out_ch"], row["kernel"], row["weights"]]
        for row in incep
    ]
    table = Table(
        ["branch", "layer", "in", "out", "kernel", "weights"],
        rows,
        "GoogLeNet's inception (3a) block by descentlab's inception_table, 28 × 28 × 192 in",
    )
    return Part("bottleneck", "The 1 × 1 bottleneck, and what a layer costs", [text, table, []])


# ------------------------------------------------------------------------------------------
# 5. the receptive field

RECEPTIVE = kit.Prose(
    """
Each output of a stack of convolutions sees a window of the input, its *receptive field*. One
layer with kernel k sees k inputs; each further layer of kernel k adds $(k - 1)$ times the
product of the strides below it:

$$r_L = 1 + \\sum_{l=1}^{L} d_l (k_l - 1) \\prod_{j < l} s_j.$$

descentlab's default MNIST-1D model is three convolutions, kernels {{ks}} and strides {{ss}}:
its last map's outputs each see {{field}} of the {{n}} input samples, and its dense layer reads
{{flat}} numbers, {{channels}} channels of length {{length}}. Autograd measures the same field:
the gradient of one output of the last map with respect to the input is non-zero on exactly
{{measured}} consecutive samples. Strides make the field grow geometrically with depth, which
is how a few small kernels come to see a whole image.""",
    field="the formula's receptive field, against autograd's non-zero span",
    flat="the dense layer's input, against conv_output_shape's channels × length",
    length="the last map's length by conv_output_shape, against torch's forward",
    measured="autograd's non-zero span, against the formula",
)


def _receptive(ctx: Context, n: kit.Numbers) -> Part:
    from descentlab.problems import data, models

    s = data.load("mnist1d")
    model = models.build("cnn", input_shape=s.input_shape, n_outputs=10).double()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    length = s.input_shape[0]
    for m in convs:
        length = C.conv_output_shape(length, m.kernel_size, m.stride, m.padding, m.dilation)[0]
    field, jump = 1, 1
    for m in convs:
        field += m.dilation[0] * (m.kernel_size[0] - 1) * jump
        jump *= m.stride[0]
    x = torch.randn(1, 1, s.input_shape[0], dtype=torch.float64, requires_grad=True)
    h = x
    for m in convs:
        h = m(h)  # (the nonlinearity does not change which inputs an output reads)
    h[0, 0, length // 2].backward()
    nz = torch.nonzero(x.grad[0, 0]).view(-1)
    span = int(nz.max() - nz.min() + 1)
    text = RECEPTIVE.fill(
        n,
        ks=", ".join(str(m.kernel_size[0]) for m in convs),
        ss=", ".join(str(m.stride[0]) for m in convs),
        n=str(s.input_shape[0]),
        channels=str(convs[-1].out_channels),
        field=(field, span, 0),
        flat=(convs[-1].out_channels * length, model.linear.in_features, 0),
        length=(length, int(h.shape[-1]), 0),
        measured=(span, field, 0),
    )
    rows = [
        [
            f"conv{i + 1}",
            m.in_channels,
            m.out_channels,
            m.kernel_size[0],
            m.stride[0],
            m.padding[0],
            C.conv_params(m.in_channels, m.out_channels, m.kernel_size[0], ndim=1),
            sum(p.numel() for p in m.parameters()),
        ]
        for i, m in enumerate(convs)
    ]
    table = Table(
        [
            "layer",
            "in",
            "out",
            "kernel",
            "stride",
            "padding",
            "descentlab's conv_params",
            "torch numel",
        ],
        rows,
        "descentlab's MNIST-1D CNN (models.build('cnn'))",
    )
    checks = [
        ck(
            "every layer's parameters are conv_params' C_out(C_in k + 1)",
            all(r[6] == r[7] for r in rows),
            ", ".join(str(r[7]) for r in rows),
            "the formula's",
        )
    ]
    return Part("receptive", "The receptive field", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 6. the figure to move: windows over a padded input

MOVE = kit.Prose(
    """
Move the input's length, the kernel, the padding, the stride and the dilation: the page draws
the padded input as a row of cells and, one row per output, the window of inputs that output
reads (its taps marked, d apart), and computes the output's length by the formula. Watch the
last windows: with a stride that does not divide the room to slide, the last inputs are read
by no window, the floor at work; with dilation the window spreads without more weights. When
the page opens it checks its lengths and windows against torch's `conv1d` at {{probes}}
settings."""
)

MOVE_JS = """function (p) {
  var n = Math.round(p.n), k = Math.round(p.k), pad = Math.round(p.p), s = Math.round(p.s);
  var d = Math.round(p.d), span = d * (k - 1) + 1, out = Math.floor((n + 2 * pad - span) / s) + 1;
  var lines = [{x: [-pad - 0.5, n + pad - 0.5], y: [0, 0], colour: '#999999', width: 6,
                label: 'the padded input: ' + n + ' samples, ' + pad + ' zeros each side'},
               {x: [-0.5, n - 0.5], y: [0, 0], colour: '#333333', width: 6}];
  for (var o = 0; o < Math.max(out, 0); o++) {
    var start = o * s - pad, xs = [], ys = [];
    for (var t = 0; t < k; t++) { xs.push(start + t * d); ys.push(o + 1); }
    lines.push({x: xs, y: ys, dots: true, colour: '#D55E00'});
    lines.push({x: [start, start + span - 1], y: [o + 1, o + 1], colour: '#D55E00', width: 1});
  }
  return {panels: [{x: {label: 'input position', min: -5, max: 24},
                    y: {label: 'output index (0: the input)', min: -1, max: Math.max(out, 1) + 1},
                    lines: lines}],
          values: {out: out, first: -pad, last: (out - 1) * s - pad + span - 1},
          text: 'n_out = floor((' + n + ' + 2·' + pad + ' - ' + d + '·(' + k + ' - 1) - 1)/' + s +
                ') + 1 = ' + out};
}"""

MOVE_PROBES = ((10, 3, 0, 2, 1), (12, 5, 2, 1, 1), (16, 3, 1, 3, 2))


def _move(ctx: Context, n: kit.Numbers) -> Part:
    def probe(c: tuple[int, ...]) -> Probe:
        nn, k, p, s, d = c
        out = _torch_out(nn, k, p, s, d)
        return Probe(
            {"n": nn, "k": k, "p": p, "s": s, "d": d},
            {"out": out, "first": -p, "last": (out - 1) * s - p + d * (k - 1)},
            0,
        )

    fig = Live(
        "Move n, k, p, s and d: the padded input, each output's window and its taps, and "
        "the output's length.",
        [
            Slider("n", "n", 4, 20, 10, integer=True),
            Slider("k", "k", 1, 7, 3, integer=True),
            Slider("p", "p", 0, 3, 0, integer=True),
            Slider("s", "s", 1, 4, 2, integer=True),
            Slider("d", "d", 1, 3, 1, integer=True),
        ],
        MOVE_JS,
        [probe(c) for c in MOVE_PROBES],
        against="torch's conv1d",
    )
    return Part(
        "move", "Move the arithmetic", [MOVE.fill(n, probes=str(len(MOVE_PROBES))), fig, []]
    )


# ------------------------------------------------------------------------------------------
# 7. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
A two-dimensional convolution from scratch: pad the image, cut every $k \\times k$ window with
its channels into a row (`unfold`), and multiply the rows by the kernel tensor flattened to a
matrix, one matrix product for the whole layer, the way many libraries compute it. The build
runs it with padding and stride on a batch of three-channel images and checks it against
torch's `conv2d`, the operation descentlab's convolutional models are made of.""",
    code="""\
import torch
import torch.nn.functional as F

def conv2d(x, w, b, stride=1, padding=0):
    n, c, h, width = x.shape
    out_ch, _, k, _ = w.shape
    x = F.pad(x, (padding, padding, padding, padding))
    windows = x.unfold(2, k, stride).unfold(3, k, stride)     # (n, c, h_out, w_out, k, k)
    h_out, w_out = windows.shape[2], windows.shape[3]
    rows = windows.permute(0, 2, 3, 1, 4, 5).reshape(n, h_out * w_out, c * k * k)
    y = rows @ w.reshape(out_ch, -1).T + b                    # one matrix product
    return y.reshape(n, h_out, w_out, out_ch).permute(0, 3, 1, 2)

g = torch.Generator().manual_seed(0)
x = torch.randn(2, 3, 11, 11, generator=g, dtype=torch.float64)
w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
b = torch.randn(4, generator=g, dtype=torch.float64)
mine = torch.cat([conv2d(x, w, b).flatten(), conv2d(x, w, b, stride=2, padding=1).flatten()])
library = torch.cat([F.conv2d(x, w, b).flatten(), F.conv2d(x, w, b, stride=2, padding=1).flatten()])
print("output shapes:", tuple(conv2d(x, w, b).shape), tuple(conv2d(x, w, b, 2, 1).shape))
print(f"largest difference from torch's conv2d: {(mine - library).abs().max():.1e}")
""",
    what="a 2-D convolution from scratch (unfold and one matrix product) gives torch's conv2d",
)

TRAINING = kit.Prose(
    """
Shared kernels are a bet on the data: that a pattern means the same wherever it appears.
MNIST-1D's digits are shifted and stretched at random, so the bet should pay. The figure
trains descentlab's two default MNIST-1D models with `Adam` (η = {{lr}}) for {{steps}} steps:
the convolutional one, {{cnn_params}} parameters, and the dense one, {{mlp_params}}. With a
third of the parameters the convolutional model reaches a test accuracy of {{cnn_acc}} against
the dense model's {{mlp_acc}}, at about the same training loss: the shared kernels generalize
the patterns to positions where the training set did not show them.""",
    cnn_params="the CNN's parameters by conv_params and linear_params, against torch's numel",
    mlp_params="the MLP's parameters by linear_params, against torch's numel",
    cnn_acc="the CNN's test accuracy, against a second evaluation of the trained model",
    mlp_acc="the MLP's test accuracy, against a second evaluation of the trained model",
)


def _test_accuracy(model: torch.nn.Module) -> float:
    """The trained model's accuracy on MNIST-1D's test split, evaluated here (the engine's own
    number is the second route)."""
    from descentlab.problems import data

    s = data.load("mnist1d")
    s.unseal_test()
    x, y = s.x_test, s.y_test
    s.seal_test()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def _training(ctx: Context, n: kit.Numbers) -> Part:
    base = kit.run_config("mnist1d", TRAIN_STEPS, "adam", TRAIN_LR, eval_every=50, batch_size=64)
    runs = {f"{m.upper()} (descentlab's default)": {**base, "model": m} for m in ("cnn", "mlp")}
    fig, res = kit.training_run(ctx, "convolution", runs, "MNIST-1D")
    cnn, mlp = res.values()
    convs = [m for m in cnn.model.modules() if isinstance(m, torch.nn.Conv1d)]
    cnn_formula = sum(
        C.conv_params(m.in_channels, m.out_channels, m.kernel_size[0], ndim=1) for m in convs
    )
    cnn_formula += C.linear_params(cnn.model.linear.in_features, cnn.model.linear.out_features)
    mlp_formula = sum(
        C.linear_params(m.in_features, m.out_features)
        for m in mlp.model.modules()
        if isinstance(m, torch.nn.Linear)
    )
    numel = [sum(p.numel() for p in r.model.parameters()) for r in (cnn, mlp)]
    text = TRAINING.fill(
        n,
        lr=f"{TRAIN_LR:g}",
        steps=str(TRAIN_STEPS),
        cnn_params=(cnn_formula, numel[0], 0),
        mlp_params=(mlp_formula, numel[1], 0),
        cnn_acc=(kit.final(cnn, "test/accuracy"), _test_accuracy(cnn.model), 1e-6),
        mlp_acc=(kit.final(mlp, "test/accuracy"), _test_accuracy(mlp.model), 1e-6),
    )
    checks = [
        ck(
            "the CNN, with fewer parameters, reaches a higher test accuracy than the MLP",
            numel[0] < numel[1]
            and kit.final(cnn, "test/accuracy") > kit.final(mlp, "test/accuracy") + 0.03,
            f"{kit.final(cnn, 'test/accuracy'):.3g} ({numel[0]} parameters)",
            f"> {kit.final(mlp, 'test/accuracy'):.3g} + 0.03 ({numel[1]})",
        )
    ]
    table = kit.results_table(
        res,
        f"descentlab's engine (train), MNIST-1D, {TRAIN_STEPS} steps, seed 0",
        ("parameters", lambda r: sum(p.numel() for p in r.model.parameters())),
        "train/loss",
        "test/accuracy",
        first="model",
    )
    return Part(
        "training",
        "A real training run: shared kernels against dense layers",
        [text, fig, table, checks],
    )


KEEP = """
What to keep. Deep learning's convolution is a cross-correlation, a kernel slid over the input
and multiplied in place; its output length is ${{f:conv_out}}$;
a layer's kernel tensor is $(C_{\\mathrm{out}}, C_{\\mathrm{in}}, k, k)$ and its parameters
${{f:conv_params}}$, independent of the image's size because the kernel
is shared; its multiply–adds are its weights times the map's area, so convolutions dominate a
network's compute and dense layers its weights; a 1 × 1 bottleneck cuts both; and a stack of
strided layers sees a receptive field that grows with the product of the strides."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.CONVOLUTION

CHAPTER = kit.Chapter(
    "deep-convolution",
    "Convolution arithmetic, in depth",
    "What a convolution computes and what it costs: the cross-correlation of deep learning, "
    "output sizes with padding, stride and dilation, kernel tensors and parameters, AlexNet's "
    "table, the 1 × 1 bottleneck and multiply–adds, the receptive field; descentlab's "
    "convolution arithmetic against torch's layers, and a CNN trained beside an MLP.",
    (91, 92, 93, 94, 95, 96),
    (
        *SIGNAL,
        *KERNEL,
        *SIZES,
        *KS,
        *PADS,
        *STRIDES,
        *DILATIONS,
        C_IN,
        C_OUT,
        K2,
        HW,
        BOTTLE,
        BOTTLE_K,
        BOTTLE_B,
        BOTTLE_HW,
        TRAIN_STEPS,
        TRAIN_LR,
        10,
        3,
        2,
        1,
        40,
        25,
    ),
    (_sum, _shapes, _channels, _bottleneck, _receptive, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
