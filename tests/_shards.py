"""Helpers of the tests of tensor subclasses and sharded training: a toy
``__torch_dispatch__`` wrapper subclass."""

from __future__ import annotations

import torch
from torch.utils import _pytree as pytree


class Boxed(torch.Tensor):
    """A toy wrapper subclass (as DTensor, FP8 and quantized tensors are made): no storage of
    its own, every op unwraps ``inner``, runs, and wraps the result."""

    @staticmethod
    def __new__(cls, inner: torch.Tensor) -> Boxed:
        return torch.Tensor._make_wrapper_subclass(
            cls,
            inner.shape,
            dtype=inner.dtype,
            device=inner.device,
            strides=inner.stride(),
            requires_grad=inner.requires_grad,
        )

    def __init__(self, inner: torch.Tensor) -> None:
        self.inner = inner

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        def unwrap(x):
            return x.inner if isinstance(x, Boxed) else x

        out = func(*pytree.tree_map(unwrap, args), **pytree.tree_map(unwrap, kwargs or {}))
        if args and isinstance(args[0], Boxed) and out is args[0].inner:
            return args[0]  # an in-place op returns its argument
        return pytree.tree_map(lambda x: Boxed(x) if type(x) is torch.Tensor else x, out)
