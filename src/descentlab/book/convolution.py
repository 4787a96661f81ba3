"""Evidence for the CNN items: descentlab's convolution arithmetic (output sizes, kernel and
parameter counts) against torch's layers, and why sharing one kernel makes a CNN small."""

from __future__ import annotations

import torch

from descentlab.book.checks import ck
from descentlab.book.model import Context
from descentlab.book.render.pages import Evidence
from descentlab.problems import convarith as ca

__all__ = ["conv_shapes", "rgb_kernels", "shared_kernels"]


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
