r"""``nn.Conv1d`` for K runs at once: one batched matrix product per layer, for ``vmap``.

Left to ``torch.func.vmap``, a ``Conv1d`` whose weight differs per run becomes one grouped
convolution (``groups=K``), slower on a CPU than K separate ones. :class:`Conv1dAsMatmul`
computes the same layer as a product over the input's windows (im2col):

.. math::
    \mathrm{out}[o, n, l] = b_o + \sum_{c, j} W[o, c, j]\, x_p[n, c, s l + d j]
    \quad\Longleftrightarrow\quad
    \mathrm{Out} = W_{(o, cj)}\ \mathrm{Cols}_{(cj, nl)},

by an autograd function with its own ``vmap`` rule, so that the K runs' products are one
``bmm`` (or one ``mm`` where they share their input). Same result as ``nn.Conv1d`` up to the
order of the sums. Layouts, oneDNN and the measurements behind them: docs/training-runs.md
("Inside a vectorized pass").

Example:
    >>> import copy
    >>> ref = nn.Conv1d(2, 3, 3, stride=2, padding=1).double()
    >>> mine = vmap_friendly(copy.deepcopy(ref))
    >>> x = torch.randn(4, 2, 9, dtype=torch.float64)
    >>> type(mine).__name__, torch.allclose(mine(x), ref(x), atol=1e-12)
    ('Conv1dAsMatmul', True)
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Conv1dAsMatmul", "vmap_friendly"]

# (kernel size, stride, padding, dilation)
Geometry = tuple[int, int, int, int]


def _n_out(length: int, geom: Geometry) -> int:
    k, s, p, d = geom
    return (length + 2 * p - d * (k - 1) - 1) // s + 1


# oneDNN's float32 product (``mkldnn::_linear_pointwise``) for products of at least
# _ONEDNN_MIN_MACS multiply-adds per run, every dimension at least _ONEDNN_MIN_DIM, once a
# probe found it equal to ``torch.matmul`` (why: docs/training-runs.md).
_ONEDNN: dict[str, bool] = {}
_ONEDNN_MIN_DIM = 16
_ONEDNN_MIN_MACS = 2_000_000


def _probe_onednn() -> bool:
    """Whether ``mkldnn::_linear_pointwise`` exists and computes ``a b`` (float32) to within
    rounding on a small case; checked once per process (by :func:`vmap_friendly`, outside any
    tracing: the probe's operations must not enter a traced graph)."""
    if "ok" not in _ONEDNN:
        try:
            gen = torch.Generator().manual_seed(0)
            # float32 whatever the default dtype (a float64 run may have set it)
            a = torch.randn(24, 40, generator=gen, dtype=torch.float32)
            b = torch.randn(40, 32, generator=gen, dtype=torch.float32)
            got = torch.ops.mkldnn._linear_pointwise(a, b.t(), None, "none", [], "")
            ok = got.shape == (24, 32) and torch.allclose(got, a @ b, rtol=1e-5, atol=1e-5)
        except (AttributeError, RuntimeError):
            ok = False
        _ONEDNN["ok"] = bool(ok)
        if not ok:
            warnings.warn(
                "descentlab: oneDNN's matrix product is missing or disagreed with "
                "torch.matmul on a probe; the vectorized Conv1d uses torch.matmul (the same "
                "numbers up to rounding, slower on some CPUs)",
                RuntimeWarning,
                stacklevel=2,
            )
    return _ONEDNN["ok"]


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    """``torch.matmul(a, b)``, through oneDNN (one call per run) for the large float32
    products of K runs: ``a`` ``(K, m, k)`` and ``b`` ``(K, k, n)``."""
    m, kk = a.shape[-2:]
    n = b.shape[-1]
    if not (
        _ONEDNN.get("ok", False)
        and a.dim() == b.dim() == 3
        and a.shape[0] == b.shape[0]
        and a.dtype == b.dtype == torch.float32
        and a.device.type == b.device.type == "cpu"
        and min(m, kk, n) >= _ONEDNN_MIN_DIM
        and m * kk * n >= _ONEDNN_MIN_MACS
    ):
        return torch.matmul(a, b)
    linear = torch.ops.mkldnn._linear_pointwise
    runs = zip(a.unbind(0), b.transpose(-1, -2).unbind(0), strict=True)
    return torch.stack([linear(ai, bi, None, "none", [], "") for ai, bi in runs])


def _im2col(x: Tensor, geom: Geometry) -> Tensor:
    """Windows of ``x`` (``(..., N, C, L)``) as ``(..., C k, N L_out)``: one strided copy per
    kernel tap into a fresh matrix, zeros only where a window reaches into the padding (no
    padded copy of ``x``)."""
    k, s, p, d = geom
    n, c, length = x.shape[-3:]
    n_out = _n_out(length, geom)
    xt = x.transpose(-3, -2)  # (..., C, N, L): no copy when x came from another such layer
    cols = x.new_empty(*x.shape[:-3], c, k, n, n_out)
    for j in range(k):
        # window l reads input position s l + d j - p: those inside [0, L) are l in [lo, hi)
        lo = min(n_out, max(0, -((d * j - p) // s)))
        hi = max(lo, min(n_out, (length - 1 + p - d * j) // s + 1))
        tap = cols[..., j, :, :]
        if hi > lo:
            start = s * lo + d * j - p
            tap[..., lo:hi].copy_(xt[..., start : start + s * (hi - lo - 1) + 1 : s])
        if lo > 0:
            tap[..., :lo].zero_()
        if hi < n_out:
            tap[..., hi:].zero_()
    return cols.view(*x.shape[:-3], c * k, n * n_out)


def _col2im(cols: Tensor, n: int, c: int, length: int, geom: Geometry) -> Tensor:
    """The adjoint of :func:`_im2col`: ``(..., C k, N L_out)`` -> ``(..., N, C, L)``, a dense
    tensor that is channel-major in memory.

    The input positions ``i = s m + r`` of one phase ``r`` receive the taps ``j`` with
    ``d j - p = r (mod s)`` from windows ``l = m + (r + p - d j) / s``: each position is
    written once by its phase's first tap and added to by the others (for kernel 3, stride 2
    and padding 1: the even positions get one tap, the odd ones two); positions no window
    reads are zeroed."""
    k, s, p, d = geom
    n_out = _n_out(length, geom)
    lead = cols.shape[:-2]
    g = cols.reshape(*lead, c, k, n, n_out)
    out = cols.new_empty(*lead, c, n, length)
    for r in range(min(s, length)):
        phase = out[..., r::s]
        n_r = phase.shape[-1]
        covered = False
        for j in range(k):
            if (d * j - p - r) % s:
                continue
            off = (r + p - d * j) // s  # window of position s m + r: l = m + off
            lo, hi = max(0, -off), min(n_r, n_out - off)
            if hi <= lo:
                continue
            src = g[..., j, :, lo + off : hi + off]
            if covered:
                phase[..., lo:hi].add_(src)
                continue
            phase[..., lo:hi].copy_(src)
            if lo > 0:
                phase[..., :lo].zero_()
            if hi < n_r:
                phase[..., hi:].zero_()
            covered = True
        if not covered:
            phase.zero_()
    return out.transpose(-3, -2)


def _product(
    x: Tensor, w: Tensor, b: Tensor | None, geom: Geometry, contiguous: bool = False
) -> tuple[Tensor, Tensor]:
    """``(out, cols)`` for input ``(..., N, C, L)``, weight ``(..., C_out, C, k)`` and bias
    ``(..., C_out)``; leading dimensions broadcast (they are the runs under vmap). ``out`` is
    channel-major in memory, or contiguous where ``contiguous``."""
    n, _, length = x.shape[-3:]
    cols = _im2col(x, geom)
    c_out = w.shape[-3]
    w2 = w.reshape(*w.shape[:-3], c_out, -1)
    out = _matmul(w2, cols)  # (..., C_out, N L_out)
    if b is not None:
        out = out + b.unsqueeze(-1)
    out = out.view(*out.shape[:-1], n, _n_out(length, geom)).transpose(-3, -2)
    return (out.contiguous() if contiguous else out), cols  # (..., N, C_out, L_out)


def _grads(
    g: Tensor, cols: Tensor, w: Tensor, x_shape: tuple[int, ...], geom: Geometry, need: Any
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of input, weight and bias from the output's gradient ``(..., N, C_out,
    L_out)`` (leading dimensions as in :func:`_product`)."""
    n, c, length = x_shape[-3:]
    c_out = w.shape[-3]
    g2 = g.transpose(-3, -2).reshape(*g.shape[:-3], c_out, -1)  # (..., C_out, N L_out)
    gx = gw = gb = None
    if need[0]:
        w2 = w.reshape(*w.shape[:-3], c_out, -1)
        gx = _col2im(_matmul(w2.transpose(-1, -2), g2), n, c, length, geom)
    if need[1]:
        gw = _matmul(g2, cols.transpose(-1, -2)).view(*g2.shape[:-2], *w.shape[-3:])
    if need[2]:
        gb = g2.sum(-1)
    return gx, gw, gb


def _to_front(t: Tensor | None, dim: int | None) -> Tensor | None:
    return t if t is None or dim is None else t.movedim(dim, 0)


def _expand_to(t: Tensor | None, dim: int | None, size: int) -> Tensor | None:
    """``t`` with its vmap dimension in front (expanded from nothing where it has none)."""
    if t is None:
        return None
    return t.movedim(dim, 0) if dim is not None else t.expand(size, *t.shape)


class _Product(torch.autograd.Function):
    """``(out, cols) = conv1d`` as a product (see :func:`_product`); cols is saved."""

    @staticmethod
    def forward(x: Tensor, w: Tensor, b: Tensor | None, geom: Geometry, contiguous: bool) -> Any:
        return _product(x, w, b, geom, contiguous)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        x, w, _, geom, _ = inputs
        ctx.mark_non_differentiable(output[1])
        # the windows' gradient is never used: not materialized as zeros at every step
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(output[1], w)
        ctx.x_shape, ctx.geom = tuple(x.shape), geom

    @staticmethod
    def backward(ctx: Any, g: Tensor | None, _cols: Any) -> Any:
        if g is None:  # gradients are not materialized: no gradient reached the output
            return None, None, None, None, None
        cols, w = ctx.saved_tensors
        need = tuple(ctx.needs_input_grad[:3])
        gx, gw, gb = _Grads.apply(g, cols, w, ctx.x_shape, ctx.geom, need)
        return gx, gw, gb, None, None

    @staticmethod
    def vmap(  # type: ignore[no-untyped-def]
        info: Any, in_dims: Any, x: Tensor, w: Tensor, b: Tensor | None, geom: Geometry, contig
    ):
        xd, wd, bd = in_dims[:3]
        x_, w_, b_ = _to_front(x, xd), _to_front(w, wd), _to_front(b, bd)
        out, cols = _Product.apply(x_, w_, b_, geom, contig)
        # the output always carries the runs' dimension; the windows only when the input does
        return (out, cols), (0, None if xd is None else 0)


class _Grads(torch.autograd.Function):
    """The gradients of :class:`_Product` (see :func:`_grads`), with their own vmap rule."""

    @staticmethod
    def forward(g: Tensor, cols: Tensor, w: Tensor, x_shape: Any, geom: Geometry, need: Any):
        return _grads(g, cols, w, x_shape, geom, need)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mark_non_differentiable(*[t for t in output if t is not None])

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        raise RuntimeError(
            "the vectorized Conv1d (Conv1dAsMatmul) has no second derivative; train this "
            "model one run at a time (train_many(mode='sequential'))"
        )

    @staticmethod
    def vmap(info: Any, in_dims: Any, g, cols, w, x_shape, geom, need):  # type: ignore[no-untyped-def]
        gd, cd, wd = in_dims[:3]
        size = info.batch_size
        # Every gradient is per run (vmap of a gradient): bring each to a leading dimension.
        g_ = _expand_to(g, gd, size)
        w_ = _expand_to(w, wd, size)
        cols_ = _to_front(cols, cd)
        shape = (size, *x_shape)
        out = _Grads.apply(g_, cols_, w_, shape, geom, need)
        return out, tuple(None if t is None else 0 for t in out)


class Conv1dAsMatmul(nn.Conv1d):
    """``nn.Conv1d`` computed as a product over its windows (see the module notes).

    Its output is channel-major in memory -- the layout the next such layer's windows read --
    unless ``contiguous_output`` (set by :func:`vmap_friendly` where the next layer with
    parameters is not one): then contiguous, the layout of the gradient that a flatten and
    linear read-out send back, so that a ReLU's backward in between sees one layout."""

    contiguous_output: bool = False

    def forward(self, x: Tensor) -> Tensor:
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0)
        geom = (self.kernel_size[0], self.stride[0], int(self.padding[0]), self.dilation[0])
        out, _ = _Product.apply(x, self.weight, self.bias, geom, self.contiguous_output)
        return out.squeeze(0) if unbatched else out


def vmap_friendly(model: nn.Module) -> nn.Module:
    """``model`` with its plain ``Conv1d`` layers computed as :class:`Conv1dAsMatmul`, in
    place (the vectorized engine calls it on its own meta-device copy)."""
    _probe_onednn()
    for mod in model.modules():
        if (
            type(mod) is nn.Conv1d
            and mod.groups == 1
            and mod.padding_mode == "zeros"
            and not isinstance(mod.padding, str)
        ):
            mod.__class__ = Conv1dAsMatmul
    # the layers with parameters in registration order: a converted layer whose next one is
    # not converted returns its output contiguous (only the layout differs, never a number)
    layers = [m for m in model.modules() if not list(m.children()) and list(m.parameters())]
    for mod, nxt in zip(layers, [*layers[1:], None], strict=True):
        if isinstance(mod, Conv1dAsMatmul):
            mod.contiguous_output = not isinstance(nxt, Conv1dAsMatmul)
    return model
