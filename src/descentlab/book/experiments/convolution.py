"""Convolution from its definitions, against torch, and the parameter arithmetic (the DL-basics
lecture).

The DL-basics lecture defines convolution three ways:

.. math::
    (f * g)(t) = \\int f(\\tau)\\, g(t - \\tau)\\, d\\tau, \\qquad
    (f * g)(t) = \\sum_i f(i)\\, g(t - i), \\qquad
    (I * K)(i, j) = \\sum_m \\sum_n I(m, n)\\, K(i - m, j - n) .

Each is computed here straight from its formula (quadrature for the integral, explicit sums
for the others) and compared with a closed form and with the libraries:
``torch.nn.functional.conv1d`` / ``conv2d`` compute *cross-correlation*,
``Σ I(i + m, j + n) K(m, n)``, so they equal the convolution only after the kernel is
flipped (``K[::-1, ::-1]``) and the input padded by ``k - 1`` ("full" convolution). Without
the flip they give a different answer for any asymmetric kernel. The lecture's second forms
carry two typos, checked too: ``∫ f(t - τ) g(t) dτ`` (for ``g(τ)``) and ``I(i - m, i - n)``
(for ``I(i - m, j - n)``).

The arithmetic part: AlexNet's parameter table (the DL-basics lecture's numbers), the 1x1 bottleneck
and GoogLeNet's inception (3a) block, each count checked against the parameters of real
``torch.nn`` layers (built on the ``meta`` device: no memory for AlexNet's 177M weights).

References:
    Goodfellow, Bengio, Courville, *Deep Learning*, section 9.1 (convolution vs
    cross-correlation). Szegedy et al., "Going deeper with convolutions", CVPR 2015.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.integrate import quad
from torch import nn

from descentlab.book import convolution as bc
from descentlab.constraints import Interval, ListOf, invalid

from ._common import ExperimentResult, Part, experiment, finish, timer

__all__ = [
    "CONSTRAINTS",
    "DEFAULTS",
    "QUICK",
    "continuous_by_definition",
    "conv1d_by_definition",
    "conv2d_by_definition",
    "run",
    "torch_conv1d",
    "torch_conv2d",
]

DEFAULTS: dict[str, Any] = {"points": 41, "image": [9, 11]}
QUICK: dict[str, Any] = {"points": 21}

#: The options' constraints.
CONSTRAINTS: dict[str, list[Any]] = {
    "points": [Interval(Integral, 3, None)],
    "image": [ListOf(Interval(Integral, 3, None), min_len=2)],
}


def continuous_by_definition(f: Any, g: Any, t: float, lo: float, hi: float) -> float:
    """``∫ f(τ) g(t - τ) dτ`` over ``[lo, hi]`` (the support of ``f``) by adaptive quadrature
    (``scipy.integrate.quad``), with the kinks of box functions as break points."""
    pts = [p for p in (t - 1.0, t, 0.0, 1.0) if lo < p < hi]
    return float(quad(lambda tau: f(tau) * g(t - tau), lo, hi, points=pts or None, limit=200)[0])


def conv1d_by_definition(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``(f * g)(t) = Σ_i f(i) g(t - i)`` for every ``t`` where the sum is not empty
    (``len(f) + len(g) - 1`` values, "full" convolution), by the explicit double loop."""
    n, m = len(f), len(g)
    out = np.zeros(n + m - 1)
    for t in range(n + m - 1):
        for i in range(n):
            if 0 <= t - i < m:
                out[t] += f[i] * g[t - i]
    return out


def conv2d_by_definition(image: np.ndarray, kernel: np.ndarray, typo: bool = False) -> np.ndarray:
    """``(I * K)(i, j) = Σ_m Σ_n I(m, n) K(i - m, j - n)`` ("full" output), by explicit loops.

    With ``typo`` it computes the lecture's second form as printed, ``Σ I(i - m, i - n) K(m, n)``
    (``i`` where ``j`` belongs).
    """
    h, w = image.shape
    kh, kw = kernel.shape
    out = np.zeros((h + kh - 1, w + kw - 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            acc = 0.0
            for m in range(kh):
                for n in range(kw):
                    a, b = i - m, (i if typo else j) - n
                    if 0 <= a < h and 0 <= b < w:
                        acc += image[a, b] * kernel[m, n]
            out[i, j] = acc
    return out


def torch_conv1d(f: np.ndarray, g: np.ndarray, flip: bool = True) -> np.ndarray:
    """``F.conv1d`` with padding ``len(g) - 1``; the kernel flipped (convolution) or not
    (torch's cross-correlation)."""
    k = torch.as_tensor(g[::-1].copy() if flip else g)[None, None]
    x = torch.as_tensor(f)[None, None]
    return F.conv1d(x, k, padding=len(g) - 1)[0, 0].numpy()


def torch_conv2d(image: np.ndarray, kernel: np.ndarray, flip: bool = True) -> np.ndarray:
    """``F.conv2d`` with padding ``k - 1`` per side; the kernel flipped or not."""
    k = torch.as_tensor(kernel[::-1, ::-1].copy() if flip else kernel)[None, None]
    x = torch.as_tensor(image)[None, None]
    return F.conv2d(x, k, padding=(kernel.shape[0] - 1, kernel.shape[1] - 1))[0, 0].numpy()


def _box(x: float) -> float:
    return 1.0 if 0.0 <= x <= 1.0 else 0.0


def _triangle(t: float) -> float:
    return max(0.0, 1.0 - abs(t - 1.0))


def _torch_count(layer: nn.Module) -> int:
    return sum(p.numel() for p in layer.parameters())


def _gauss(x: float, var: float = 1.0) -> float:
    return float(np.exp(-(x**2) / (2 * var)) / np.sqrt(2 * np.pi * var))


def _max_diff(a: Any, b: Any) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def _same(part: Part, text: str, a: Any, b: Any) -> None:
    """Check that ``a`` and ``b`` agree to 1e-12."""
    err = _max_diff(a, b)
    part.check(text, err < 1e-12, f"max |diff| {err:.1e}", "< 1e-12")


def _differs(part: Part, text: str, err: float) -> None:
    """Check that a difference is large (> 0.1)."""
    part.check(text, err > 0.1, f"max |diff| {err:.2f}", "> 0.1")


def _flip_rows(part: Part, what: str, flipped: float, plain: float) -> None:
    """The table rows of a comparison with torch with and without the kernel flip."""
    part.row(item=f"{what} flipped (max |diff|)", measured=flipped, expected=0.0)
    part.row(item=f"{what} unflipped (max |diff|)", measured=plain, expected="> 0")


def _continuous(n_pts: int) -> Part:
    """The continuous definition: box * box = triangle, N(0,1) * N(0,1) = N(0,2)."""
    part = Part("continuous")
    ts = np.linspace(-0.5, 2.5, n_pts)
    first = [continuous_by_definition(_box, _box, t, 0.0, 1.0) for t in ts]
    second = [continuous_by_definition(lambda u, t=t: _box(t - u), _box, t, 0.0, 1.0) for t in ts]
    typo = [
        continuous_by_definition(lambda u, t=t: _box(t - u) * _box(t), lambda _: 1.0, t, -3.0, 4.0)
        for t in ts
    ]
    tri = [_triangle(t) for t in ts]
    err_c = max(abs(a - b) for a, b in zip(first, tri, strict=True))
    err_c2 = max(abs(a - b) for a, b in zip(first, second, strict=True))
    err_typo = max(abs(a - b) for a, b in zip(typo, tri, strict=True))
    part.check(
        "continuous: ∫ f(τ) g(t-τ) dτ of two unit boxes is the triangle",
        err_c < 1e-8,
        f"max error {err_c:.1e}",
        "< 1e-8",
    )
    part.check(
        "the second form ∫ f(t-τ) g(τ) dτ gives the same (commutativity)",
        err_c2 < 1e-8,
        f"max |diff| {err_c2:.1e}",
        "< 1e-8",
    )
    _differs(part, "the lecture's printed second form ∫ f(t-τ) g(t) dτ does not", err_typo)
    gt = [0.0, 0.7, 1.5, 3.0]
    gconv = [continuous_by_definition(_gauss, _gauss, t, -12.0, 12.0) for t in gt]
    err_g = max(abs(a - _gauss(t, 2.0)) for a, t in zip(gconv, gt, strict=True))
    part.check(
        "N(0,1) * N(0,1) is the N(0,2) density", err_g < 1e-8, f"max error {err_g:.1e}", "< 1e-8"
    )
    part.data = {"t": ts.tolist(), "first": first, "second": second, "typo": typo, "triangle": tri}
    part.row(item="continuous box*box vs triangle (max error)", measured=err_c, expected=0.0)
    return part


def _discrete(rng: np.random.Generator) -> Part:
    """The discrete 1-D definition against numpy and torch (with and without the flip)."""
    part = Part("discrete")
    f1 = rng.normal(size=12)
    g1 = np.array([1.0, -2.0, 0.5, 0.25])  # asymmetric
    d_def = conv1d_by_definition(f1, g1)
    d_torch = torch_conv1d(f1, g1, flip=True)
    d_corr = torch_conv1d(f1, g1, flip=False)
    e_t, e_corr = _max_diff(d_def, d_torch), _max_diff(d_def, d_corr)
    _same(part, "discrete: Σ f(i) g(t-i) equals numpy.convolve", d_def, np.convolve(f1, g1))
    _same(part, "and torch's conv1d after flipping the kernel", d_def, d_torch)
    _differs(part, "without the flip conv1d computes cross-correlation, not convolution", e_corr)
    _same(
        part, "Σ f(i) g(t-i) = Σ f(t-i) g(i) (the lecture's two forms)",
        conv1d_by_definition(g1, f1), d_def,
    )  # fmt: skip
    part.data = {
        "f": f1.tolist(),
        "g": g1.tolist(),
        "definition": d_def.tolist(),
        "torch_flipped": d_torch.tolist(),
        "torch_plain": d_corr.tolist(),
    }
    _flip_rows(part, "discrete vs conv1d", e_t, e_corr)
    return part


def _image(rng: np.random.Generator, hw: list[int]) -> Part:
    """The 2-D definition against scipy and torch, and the printed form's typo."""
    from scipy.signal import convolve2d  # over a second to import: only when it runs

    part = Part("image2d")
    img = rng.normal(size=hw)
    ker = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0]])  # asymmetric, 2x3
    c_def = conv2d_by_definition(img, ker)
    c_corr = torch_conv2d(img, ker, flip=False)
    c_flip = torch_conv2d(img, ker, flip=True)
    e2c = _max_diff(c_def, c_corr)
    _same(
        part, "2-D: Σ_m Σ_n I(m,n) K(i-m, j-n) equals scipy.signal.convolve2d",
        c_def, convolve2d(img, ker, mode="full"),
    )  # fmt: skip
    _same(part, "and torch's conv2d after flipping the kernel both ways", c_def, c_flip)
    _differs(part, "without the flip conv2d differs (cross-correlation)", e2c)
    _differs(
        part, "the printed second form I(i-m, i-n) K(m,n) differs (typo for j-n)",
        _max_diff(conv2d_by_definition(img, ker, typo=True), c_def),
    )  # fmt: skip
    part.data = {
        "image": img.tolist(),
        "kernel": ker.tolist(),
        "definition": c_def.tolist(),
        "torch_plain": c_corr.tolist(),
    }
    _flip_rows(part, "2-D vs conv2d", _max_diff(c_def, c_flip), e2c)
    return part


def _alexnet_torch_counts(alex: list[dict[str, Any]]) -> list[int]:
    """The weights of torch layers (on the meta device) shaped as AlexNet's table says."""
    meta = torch.device("meta")
    counts = []
    for r in alex:
        if r["kind"] == "conv":
            layer: nn.Module = nn.Conv2d(
                r["in_shape"][0],
                r["out_shape"][0],
                r["kernel"],
                groups=r["groups"],
                bias=False,
                device=meta,
            )
        else:
            layer = nn.Linear(
                int(np.prod(r["in_shape"])), r["out_shape"][0], bias=False, device=meta
            )
        counts.append(_torch_count(layer))
    return counts


def _alexnet(part: Part) -> None:
    """AlexNet's parameter table against torch's layers and the lecture's numbers."""
    alex = bc.alexnet_table()
    torch_counts = _alexnet_torch_counts(alex)
    ours = [r["weights"] for r in alex]
    part.check(
        "AlexNet's table in the lecture equals the weights of torch's layers",
        ours == torch_counts,
        f"{sum(ours):,} weights",
        f"{sum(torch_counts):,}",
    )
    lecture = [r["lecture"] for r in alex]
    shown = [bc.format_count(w).replace(".0", "") for w in ours]
    agree = sum(_rounds_to(w, lab) for w, lab in zip(ours, lecture, strict=True))
    part.check(
        "every layer rounds to the lecture's number (35k, 307k, …, 177M, 16M, 4M)",
        agree == len(alex),
        f"{agree} of {len(alex)}",
        f"{len(alex)} of {len(alex)}",
    )
    share = part.values["share"] = sum(r["weights"] for r in alex if r["kind"] == "fc") / sum(ours)
    part.check(
        "the fully connected layers hold most of the parameters",
        share > 0.9,
        f"{100 * share:.1f} %",
        "> 90 %",
    )
    part.data["alexnet"] = [
        {"layer": r["layer"], "kind": r["kind"], "weights": r["weights"], "lecture": r["lecture"],
         "shown": s}
        for r, s in zip(alex, shown, strict=True)
    ]  # fmt: skip


def _arithmetic() -> Part:
    """AlexNet's table, the 1x1 bottleneck and the inception (3a) block against torch."""
    part = Part("arith")
    _alexnet(part)
    meta = torch.device("meta")
    bott = bc.bottleneck_savings()
    direct = _torch_count(nn.Conv2d(128, 128, 3, bias=False, device=meta))
    via = _torch_count(
        nn.Sequential(
            nn.Conv2d(128, 32, 1, bias=False, device=meta),
            nn.Conv2d(32, 128, 3, bias=False, device=meta),
        )
    )
    part.check(
        "1x1 bottleneck: 3x3x128x128 vs 1x1x128x32 + 3x3x32x128 (torch's counts)",
        (bott["direct"], bott["bottleneck"]) == (direct, via),
        f"{bott['direct']:,} vs {bott['bottleneck']:,} ({bott['ratio']:.2f}x fewer)",
        f"{direct:,} vs {via:,}",
    )
    inc = bc.inception_table()
    naive = bc.inception_table(reduce=False)
    block = _inception_module(True)
    with torch.no_grad():
        y = block(torch.zeros(1, 192, 28, 28))
    ok_inc = _torch_count(block) == inc[-1]["weights"] and tuple(y.shape[1:]) == tuple(
        inc[-1]["out_shape"]
    )
    part.check(
        "GoogLeNet inception (3a): weights and output shape equal torch's module",
        ok_inc,
        f"{inc[-1]['weights']:,}, {tuple(y.shape[1:])}",
        f"{_torch_count(block):,}, {tuple(inc[-1]['out_shape'])}",
    )
    naive_t = _torch_count(_inception_module(False))
    part.check(
        "without the 1x1 reductions the block costs more and is wider",
        naive[-1]["weights"] == naive_t and naive_t > 2 * inc[-1]["weights"],
        f"{naive_t:,} weights, {naive[-1]['out_ch']} channels",
        f"> 2 x {inc[-1]['weights']:,}, vs {inc[-1]['out_ch']}",
    )

    def lists(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in table]

    part.data.update(inception=lists(inc), naive=lists(naive), bottleneck=bott)
    part.row(
        item="AlexNet weights in fc layers (share)", measured=part.values["share"], expected="> 0.9"
    )
    part.row(
        item="inception (3a) weights, with / without 1x1 reductions",
        measured=f"{inc[-1]['weights']:,} / {naive[-1]['weights']:,}",
        expected="torch: same",
    )
    return part


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Convolution's three definitions against closed forms and torch; conv arithmetic
    against torch's layers.

    Args:
        quick: the small preset.
        seed: seed of the random signal, image and kernels.
        points: evaluation points of the continuous convolution.
        image: ``[height, width]`` of the random 2-D image.

    Returns:
        an :class:`ExperimentResult`.
    """
    n_pts, hw = v["points"], v["image"]
    if len(hw) != 2:
        raise invalid("image", "[height, width]", o["image"])
    rng = np.random.default_rng(seed)
    res = ExperimentResult(
        name="convolution",
        title="Convolution: three definitions against torch (kernel flip), and its arithmetic",
        columns=["item", "measured", "expected"],
        rows=[],
    )
    with timer() as elapsed:
        res.add(_continuous(n_pts))
        res.add(_discrete(rng))
        res.add(_image(rng, hw))
        res.add(_arithmetic())
        seconds = elapsed()
    notes = [
        "Continuous: f = g = the unit box on [0, 1]; quadrature by scipy.integrate.quad. "
        "Discrete: a random signal of 12 values and the kernel [1, -2, 0.5, 0.25]. 2-D: a "
        f"random {hw[0]}x{hw[1]} image and the kernel [[1, 0, -1], [2, 0, -2]]. torch pads by "
        "k - 1 on each side for the full convolution.",
        "Deep-learning libraries call cross-correlation 'convolution': for a learned kernel the "
        "flip does not matter (the network learns the flipped kernel), for a given one it does.",
    ]
    options = {**o, "image": hw}
    return finish(res, quick=quick, seed=seed, options=options, seconds=seconds, notes=notes)


def _rounds_to(weights: int, label: str | None) -> bool:
    """Whether ``weights`` rounds to the lecture's label ('35k', '177M'), up or down."""
    if label is None:
        return False
    unit = {"k": 1e3, "M": 1e6}[label[-1]]
    value = float(label[:-1])
    return abs(weights / unit - value) < 1.0


class _Inception(nn.Module):
    def __init__(self, reduce: bool) -> None:
        super().__init__()
        c = 192

        def conv(i: int, o_: int, k: int) -> nn.Conv2d:
            return nn.Conv2d(i, o_, k, padding=k // 2, bias=False)

        self.b1 = conv(c, 64, 1)
        if reduce:
            self.b3 = nn.Sequential(conv(c, 96, 1), nn.ReLU(), conv(96, 128, 3))
            self.b5 = nn.Sequential(conv(c, 16, 1), nn.ReLU(), conv(16, 32, 5))
            self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(c, 32, 1))
        else:
            self.b3 = conv(c, 128, 3)
            self.b5 = conv(c, 32, 5)
            self.bp = nn.MaxPool2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)


def _inception_module(reduce: bool) -> nn.Module:
    return _Inception(reduce)
