r"""``nn.Conv1d`` for K runs at once: one batched matrix product per layer, for ``vmap``.

Left to ``torch.func.vmap``, a ``Conv1d`` whose weight differs per run becomes one grouped
convolution (``groups=K``), which on a CPU takes more time than K separate convolutions.
:class:`Conv1dAsMatmul` computes the same layer as a product over the input's windows
(im2col):

.. math::
    \mathrm{out}[o, n, l] = b_o + \sum_{c, j} W[o, c, j]\, x_p[n, c, s l + d j]
    \quad\Longleftrightarrow\quad
    \mathrm{Out} = W_{(o, cj)}\ \mathrm{Cols}_{(cj, nl)},

with ``x_p`` the zero-padded input. The product is done by an :class:`torch.autograd.Function`
with its own ``vmap`` rule, so that the K runs' products are one ``bmm`` (or, when the runs
share their input -- one data order, the first layer -- one ``mm`` with ``K C_out`` rows), in
the layout in which MKL's kernels are fastest: the small weight on the left, the long
``(C k, N L_out)`` window matrix on the right (measured on the MNIST-1D CNN's second layer,
K=8, one thread: 0.62 ms against 0.99 ms with the windows on the left). The windows are one
strided view copied once (``unfold``), and the gradient of the input adds the window
gradients back with ``k`` strided additions; the output is returned as a view whose memory is
channel-major, which is the layout the next layer's windows read without a copy.

Same parameters, same result as ``nn.Conv1d`` up to the order of the sums (float64: 1e-12;
float32: ~1e-7 relative). Only plain layers are replaced (``groups=1``, zero padding given as
numbers); ``nn.Conv2d`` is not: on the digits CNN (8x8 images) vmap's grouped convolution was
faster than the product form.

Example:
    >>> import copy
    >>> ref = nn.Conv1d(2, 3, 3, stride=2, padding=1).double()
    >>> mine = vmap_friendly(copy.deepcopy(ref))
    >>> x = torch.randn(4, 2, 9, dtype=torch.float64)
    >>> type(mine).__name__, torch.allclose(mine(x), ref(x), atol=1e-12)
    ('Conv1dAsMatmul', True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Conv1dAsMatmul", "vmap_friendly"]

# (kernel size, stride, padding, dilation)
Geometry = tuple[int, int, int, int]


def _n_out(length: int, geom: Geometry) -> int:
    k, s, p, d = geom
    return (length + 2 * p - d * (k - 1) - 1) // s + 1


def _im2col(x: Tensor, geom: Geometry) -> Tensor:
    """Windows of ``x`` (``(..., N, C, L)``) as ``(..., C k, N L_out)``, one copy."""
    k, s, p, d = geom
    n, c, length = x.shape[-3:]
    n_out = _n_out(length, geom)
    xt = x.transpose(-3, -2)  # (..., C, N, L): no copy when x came from another such layer
    if p:
        xt = torch.nn.functional.pad(xt, (p, p))
    win = xt.unfold(-1, d * (k - 1) + 1, s)  # (..., C, N, L_out, span)
    if d > 1:
        win = win[..., ::d]
    win = win.movedim(-1, -3)  # (..., C, k, N, L_out)
    return win.reshape(*x.shape[:-3], c * k, n * n_out)


def _col2im(cols: Tensor, n: int, c: int, length: int, geom: Geometry) -> Tensor:
    """The adjoint of :func:`_im2col`: ``(..., C k, N L_out)`` -> ``(..., N, C, L)``, a dense
    tensor that is channel-major in memory (the padding's positions are never written)."""
    k, s, p, d = geom
    n_out = _n_out(length, geom)
    lead = cols.shape[:-2]
    g = cols.reshape(*lead, c, k, n, n_out)
    out = cols.new_zeros(*lead, c, n, length)
    for j in range(k):
        # window position l reads input position s l + d j - p: keep those inside [0, L)
        first = max(0, -((d * j - p) // s))
        last = min(n_out - 1, (length - 1 + p - d * j) // s)
        if last < first:
            continue
        start = s * first + d * j - p
        out[..., start : start + s * (last - first) + 1 : s] += g[..., j, :, first : last + 1]
    return out.transpose(-3, -2)


def _product(x: Tensor, w: Tensor, b: Tensor | None, geom: Geometry) -> tuple[Tensor, Tensor]:
    """``(out, cols)`` for input ``(..., N, C, L)``, weight ``(..., C_out, C, k)`` and bias
    ``(..., C_out)``; leading dimensions broadcast (they are the runs under vmap)."""
    n, _, length = x.shape[-3:]
    cols = _im2col(x, geom)
    c_out = w.shape[-3]
    w2 = w.reshape(*w.shape[:-3], c_out, -1)
    out = torch.matmul(w2, cols)  # (..., C_out, N L_out)
    if b is not None:
        out = out + b.unsqueeze(-1)
    out = out.view(*out.shape[:-1], n, _n_out(length, geom))
    return out.transpose(-3, -2), cols  # (..., N, C_out, L_out), channel-major in memory


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
        gx = _col2im(torch.matmul(w2.transpose(-1, -2), g2), n, c, length, geom)
    if need[1]:
        gw = torch.matmul(g2, cols.transpose(-1, -2)).view(*g2.shape[:-2], *w.shape[-3:])
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
    def forward(x: Tensor, w: Tensor, b: Tensor | None, geom: Geometry) -> Any:
        return _product(x, w, b, geom)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        x, w, _, geom = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1], w)
        ctx.x_shape, ctx.geom = tuple(x.shape), geom

    @staticmethod
    def backward(ctx: Any, g: Tensor, _cols: Any) -> Any:
        cols, w = ctx.saved_tensors
        need = tuple(ctx.needs_input_grad[:3])
        gx, gw, gb = _Grads.apply(g, cols, w, ctx.x_shape, ctx.geom, need)
        return gx, gw, gb, None

    @staticmethod
    def vmap(info: Any, in_dims: Any, x: Tensor, w: Tensor, b: Tensor | None, geom: Geometry):
        xd, wd, bd, _ = in_dims
        out, cols = _Product.apply(_to_front(x, xd), _to_front(w, wd), _to_front(b, bd), geom)
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
    """``nn.Conv1d`` computed as a product over its windows (see the module notes)."""

    def forward(self, x: Tensor) -> Tensor:
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0)
        geom = (self.kernel_size[0], self.stride[0], int(self.padding[0]), self.dilation[0])
        out, _ = _Product.apply(x, self.weight, self.bias, geom)
        return out.squeeze(0) if unbatched else out


def vmap_friendly(model: nn.Module) -> nn.Module:
    """``model`` with its plain ``Conv1d`` layers computed as :class:`Conv1dAsMatmul`, in
    place (the vectorized engine calls it on its own meta-device copy)."""
    for mod in model.modules():
        if (
            type(mod) is nn.Conv1d
            and mod.groups == 1
            and mod.padding_mode == "zeros"
            and not isinstance(mod.padding, str)
        ):
            mod.__class__ = Conv1dAsMatmul
    return model
