r"""The MNIST-1D CNN's vectorized training step as one compiled call.

:func:`~descentlab.engine.multirun.train_many` trains K runs of one model in one pass; for the
MNIST-1D paper's CNN (:class:`~descentlab.problems.models.MNIST1DCNN`) with the cross-entropy
loss, the training losses and gradients of all K runs come from one call of a C++ kernel
(``vcnn_kernel.cpp``) instead of the traced ``vmap`` graph, and the same kernel evaluates such
a group (:meth:`CNNKernel.evaluate`). Before a process first trusts it for a shape and dtype,
it is compared with ``vmap`` and autograd (the vectorized engine's
:meth:`~descentlab.engine.vectorized.Gradients.check_cnn`); a kernel that cannot be built or
disagrees is announced once and the traced path is used. Its layout, numerics and where it
applies: docs/training-runs.md ("Inside a vectorized pass")."""

from __future__ import annotations

import ctypes
import functools
from importlib import resources
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["CPU_ONLY", "DISAGREES", "UNAVAILABLE", "CNNKernel", "applicable"]

#: parameter names of MNIST1DCNN in the kernel's order
_NAMES = (
    "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
    "conv3.weight", "conv3.bias", "linear.weight", "linear.bias",
)  # fmt: skip
_KERNEL_SIZES = (5, 3, 3)
#: examples per chunk of an evaluation (one chunk's activations stay in the core's cache)
_EVAL_CHUNK = 256

#: announcements (once per process, by the vectorized engine) of the traced graph used instead
UNAVAILABLE = (
    "descentlab: the compiled MNIST-1D CNN step is unavailable ({reason}); the vectorized step "
    "uses the traced graph (same numbers up to rounding, slower)"
)
CPU_ONLY = (
    "descentlab: the compiled MNIST-1D CNN step runs on the CPU only; the vectorized runs on "
    "{device} step through vmap (same numbers up to rounding)"
)
DISAGREES = (
    "descentlab: the compiled MNIST-1D CNN step disagreed with autograd (run by run) on a first "
    "batch; the vectorized step uses the traced graph (same numbers up to rounding, slower). "
    "Please report this."
)


@functools.lru_cache(maxsize=1)
def _source() -> str:
    return resources.files("descentlab.engine").joinpath("vcnn_kernel.cpp").read_text("utf-8")


def _bind(lib: ctypes.CDLL) -> dict[torch.dtype, tuple[Any, Any]]:
    """``{dtype: (step, evaluate)}``: the kernel's entry points for float32 and float64."""
    fns = {}
    for dtype, suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
        step = getattr(lib, f"dl_cnn_step_{suffix}")
        step.restype = ctypes.c_int
        step.argtypes = [
            ctypes.c_void_p,  # dims
            ctypes.c_void_p,  # x
            ctypes.c_int64,  # x stride per run (0: shared)
            ctypes.c_void_p,  # y
            ctypes.c_int64,  # y stride per run
            ctypes.c_void_p,  # parameters[8]
            ctypes.c_void_p,  # gradients[8]
            ctypes.c_void_p,  # losses[K]
            ctypes.c_double,  # label smoothing
            ctypes.c_int,  # threads
        ]
        evaluate = getattr(lib, f"dl_cnn_eval_{suffix}")
        evaluate.restype = ctypes.c_int
        evaluate.argtypes = [
            ctypes.c_void_p,  # dims (B: the chunk)
            ctypes.c_void_p,  # x (n examples, shared)
            ctypes.c_int64,  # n
            ctypes.c_void_p,  # y
            ctypes.c_void_p,  # parameters[8]
            ctypes.c_void_p,  # loss sums[K] (float64)
            ctypes.c_void_p,  # correct[K] (int64)
            ctypes.c_int,  # threads
        ]
        fns[dtype] = (step, evaluate)
    return fns


@functools.lru_cache(maxsize=1)
def _library() -> dict[torch.dtype, tuple[Any, Any]] | str:
    """``{dtype: (step, evaluate)}`` (:func:`_bind`), or the reason the kernel is not
    available (a string; asked once per process)."""
    from descentlab import _native

    try:
        return _native.load(_source(), _bind, what="MNIST-1D CNN kernel")
    except _native.KernelUnavailable as exc:
        return str(exc).splitlines()[0]


def applicable(
    model: nn.Module,
    loss_name: Any,
    loss_options: dict[str, Any],
    dtype: torch.dtype,
    *,
    mix: bool = False,
    any_device: bool = False,
) -> bool:
    """Whether the kernel computes this group's training step (see the module notes;
    ``any_device``: whether it would, were the parameters on the CPU)."""
    from descentlab.problems.models import MNIST1DCNN

    if type(model) is not MNIST1DCNN or mix or loss_name != "cross_entropy" or loss_options:
        return False
    if dtype not in (torch.float32, torch.float64):
        return False
    convs = (model.conv1, model.conv2, model.conv3)
    if tuple(c.kernel_size[0] for c in convs) != _KERNEL_SIZES:
        return False
    for c in convs:
        if c.groups != 1 or c.dilation[0] != 1 or c.padding_mode != "zeros" or c.bias is None:
            return False
        if isinstance(c.padding, str):
            return False
    if model.conv1.in_channels != 1 or model.linear.bias is None:
        return False
    params = dict(model.named_parameters())
    if tuple(params) != _NAMES or not all(p.requires_grad for p in params.values()):
        return False
    return all(p.dtype == dtype and (any_device or p.device.type == "cpu") for p in params.values())


class CNNKernel:
    """The compiled training step of K runs of one :class:`MNIST1DCNN` (see the module notes).

    Args:
        model: one run's model (its geometry is read from it).
        label_smoothing: the cross-entropy's label smoothing.
        dtype: the parameters' dtype.

    Raises:
        RuntimeError: the kernel cannot be compiled or loaded here (the message says why).
    """

    def __init__(self, model: nn.Module, label_smoothing: float, dtype: torch.dtype) -> None:
        fns = _library()
        if isinstance(fns, str):
            raise RuntimeError(fns)
        self._fn, self._eval = fns[dtype]
        self.dtype = dtype
        self.eps = float(label_smoothing)
        convs = (model.conv1, model.conv2, model.conv3)
        self.channels = int(model.conv1.out_channels)
        self.outputs = int(model.linear.out_features)
        #: positions after the third convolution (the read-out's features / channels)
        self.length3 = int(model.linear.in_features // self.channels)
        self.geom = [(c.kernel_size[0], c.stride[0], int(c.padding[0])) for c in convs]
        self._dim_cache: dict[tuple[int, int, int], Tensor] = {}

    def key(self, x_len: int) -> tuple[Any, ...]:
        """What the kernel's arithmetic depends on, besides the values."""
        return (self.dtype, self.channels, self.outputs, x_len, tuple(self.geom), self.eps)

    def _dims(self, b: int, l0: int, k: int) -> Tensor:
        """The kernel's dimensions argument (kept per shape: the step asks at every call)."""
        dims = self._dim_cache.get((b, l0, k))
        if dims is None:
            dims = self._dim_cache[(b, l0, k)] = self._new_dims(b, l0, k)
        return dims

    def _new_dims(self, b: int, l0: int, k: int) -> Tensor:
        lengths = [l0]
        for ks, s, p in self.geom:
            lengths.append((lengths[-1] + 2 * p - ks) // s + 1)
        if lengths[-1] != self.length3:
            raise ValueError(
                f"input length {l0} gives {lengths[-1]} positions after the convolutions; the "
                f"read-out expects {self.length3}"
            )
        flat = [b, l0, self.channels, self.outputs, *lengths[1:]]
        for g in self.geom:
            flat.extend(g)
        flat.append(k)
        return torch.tensor(flat, dtype=torch.int64)

    def _targets(self, y: Tensor) -> Tensor:
        """``y`` as contiguous int64 class indices; anything outside ``[0, outputs)`` is
        refused (the kernel indexes with them)."""
        y = y.to(torch.int64).contiguous()
        if y.numel():
            lo, hi = torch.aminmax(y)
            if int(lo) < 0 or int(hi) >= self.outputs:
                raise ValueError(
                    f"targets must be class indices in [0, {self.outputs}), got "
                    f"[{int(lo)}, {int(hi)}]"
                )
        return y

    @staticmethod
    def _pointers(tensors: list[Tensor]) -> Any:
        return (ctypes.c_void_p * len(tensors))(*[t.data_ptr() for t in tensors])

    def evaluate(self, params: dict[str, Tensor], x: Tensor, y: Tensor) -> list[dict[str, float]]:
        """Each run's mean cross-entropy and accuracy on ``(x, y)`` (shared by the runs), as
        :func:`~descentlab.engine.evaluation.evaluate` computes them on the run's own model
        (``argmax`` picks the first of equal logits, and a NaN as the largest)."""
        p = [params[n].detach().contiguous() for n in _NAMES]
        k = int(p[0].shape[0])
        xs = x.reshape(x.shape[0], x.shape[-1])
        if xs.dtype != self.dtype:
            raise TypeError(f"inputs are {xs.dtype}, the parameters {self.dtype}")
        xs = xs.contiguous()
        n, l0 = int(xs.shape[0]), int(xs.shape[1])
        ys = self._targets(y)
        sums = torch.zeros(k, dtype=torch.float64)
        correct = torch.zeros(k, dtype=torch.int64)
        ptrs = self._pointers(p)
        dims = self._dims(_EVAL_CHUNK, l0, k)
        failed = self._eval(
            dims.data_ptr(),
            xs.data_ptr(),
            n,
            ys.data_ptr(),
            ctypes.addressof(ptrs),
            sums.data_ptr(),
            correct.data_ptr(),
            torch.get_num_threads(),
        )
        if failed:
            raise MemoryError("the compiled CNN evaluation could not allocate its workspace")
        return [
            {"loss": s / n, "accuracy": c / n}
            for s, c in zip(sums.tolist(), correct.tolist(), strict=True)
        ]

    def __call__(
        self, params: dict[str, Tensor], x: Tensor, y: Tensor, dim: int | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The K training losses and each run's gradients (stacked like ``params``) for
        inputs ``x`` (``(B, L)`` or ``(B, 1, L)`` shared by the runs, with a leading K where
        ``dim`` is 0) and integer targets ``y``."""
        p = [params[n].detach().contiguous() for n in _NAMES]
        k = int(p[0].shape[0])
        if dim is None:
            xs = x.reshape(x.shape[0], x.shape[-1])
        else:
            xs = x.reshape(x.shape[0], x.shape[1], x.shape[-1])
        ys = y
        if xs.dtype != self.dtype:
            raise TypeError(f"inputs are {xs.dtype}, the parameters {self.dtype}")
        b, l0 = int(xs.shape[-2]), int(xs.shape[-1])
        x_stride = 0
        if dim is not None:
            if xs.stride(0) == 0:
                xs = xs[0]
            else:
                x_stride = b * l0
        xs = xs.contiguous()
        y_stride = 0
        if ys.dim() == 2:
            if ys.stride(0) == 0:
                ys = ys[0]
            else:
                y_stride = b
        ys = self._targets(ys)
        grads = [torch.empty_like(t) for t in p]
        losses = torch.empty(k, dtype=self.dtype)
        dims = self._dims(b, l0, k)
        ptrs, gptrs = self._pointers(p), self._pointers(grads)
        failed = self._fn(
            dims.data_ptr(),
            xs.data_ptr(),
            x_stride,
            ys.data_ptr(),
            y_stride,
            ctypes.addressof(ptrs),
            ctypes.addressof(gptrs),
            losses.data_ptr(),
            self.eps,
            torch.get_num_threads(),
        )
        if failed:
            raise MemoryError("the compiled CNN step could not allocate its workspace")
        return losses, dict(zip(_NAMES, grads, strict=True))
