"""The one place descentlab reads DTensor internals (``torch.distributed.tensor``).

Stepping a DTensor's local shard at the cost of a plain tensor's needs a few of torch's
private names: the local tensor and spec attributes (one attribute read, where ``to_local()``
runs an autograd function), and where a shard lies in the whole tensor for any rank of the
mesh (``torch.distributed.tensor._utils``). They are read here and nowhere else;
``tests/test_dtensor_adapter.py`` pins them to the torch version they were written against
(:data:`TORCH`), so that a new torch fails that test first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "TORCH",
    "any_dtensor",
    "group_of",
    "holds",
    "is_dtensor",
    "like",
    "local",
    "placed_as",
    "put",
    "same_spec",
    "shard_index",
    "spec",
    "take",
]

#: the torch release this adapter was written and tested against
TORCH = "2.13"

_PLAIN = frozenset((torch.Tensor, torch.nn.Parameter))


def _dtensor_type() -> Any:
    """torch's DTensor class once something has imported ``torch.distributed.tensor`` (no
    DTensor exists before), else None: a process that never shards does not pay that
    import (about a CPU second)."""
    return getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)


def __getattr__(name: str) -> Any:
    if name == "DTensor":  # (imported at first use, as above)
        from torch.distributed.tensor import DTensor

        return DTensor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_dtensor(t: Any) -> bool:
    """Whether ``t`` is a DTensor (False where torch has no ``torch.distributed``)."""
    kind = _dtensor_type()
    return kind is not None and isinstance(t, kind)


def any_dtensor(tensors: list[Any]) -> bool:
    """Whether any of ``tensors`` is a DTensor (their types' set: a few hundred ns for a
    group, on every step)."""
    kinds = set(map(type, tensors))
    if kinds <= _PLAIN:
        return False
    kind = _dtensor_type()
    return kind is not None and any(issubclass(k, kind) for k in kinds)


#: a DTensor's local tensor, read as an attribute (``to_local()`` without autograd; a C
#: call: the steady step reads it for every tensor at every step)
local: Callable[[Any], Tensor] = attrgetter("_local_tensor")
#: a DTensor's spec: its mesh, placements and shape (one object, shared by the DTensors FSDP2
#: makes of one parameter)
spec: Callable[[Any], Any] = attrgetter("_spec")


def same_spec(a: Any, b: Any) -> bool:
    """Whether specs ``a`` and ``b`` place a tensor alike (the same object, or equal mesh and
    placements)."""
    return a is b or (a.placements == b.placements and a.mesh == b.mesh)


def like(t: Tensor, d: Any) -> Any:
    """``t`` (laid out as ``d``'s local tensor) as a DTensor of ``d``'s mesh and placements:
    of ``d``'s very spec where ``t`` has its dtype and strides (as FSDP2 makes a gradient:
    the steady step then knows it by one identity test)."""
    from torch.distributed.tensor import DTensor

    lt = local(d)
    if t.dtype == lt.dtype and t.stride() == lt.stride():
        return DTensor(t, spec(d), requires_grad=t.requires_grad)
    return DTensor.from_local(
        t, d.device_mesh, d.placements, run_check=False, shape=d.shape, stride=d.stride()
    )


def placed_as(g: Any, p: Any) -> Any:
    """DTensor ``g`` placed as ``p`` (a ``Partial`` gradient reduced, for one)."""
    if same_spec(spec(g), spec(p)):
        return g
    return g.redistribute(p.device_mesh, p.placements)


def holds(placements: Any, coordinate: tuple[int, ...]) -> bool:
    """Whether the rank at mesh ``coordinate`` holds the first copy of its shard: coordinate 0
    on every mesh dimension the tensor is not sharded along (replicated there)."""
    return all(_is_shard(p) or c == 0 for p, c in zip(placements, coordinate, strict=True))


def _is_shard(placement: Any) -> bool:
    from torch.distributed.tensor import Shard

    return isinstance(placement, Shard) or type(placement).__name__ == "_StridedShard"


def shard_index(
    shape: tuple[int, ...],
    mesh_shape: tuple[int, ...],
    placements: Any,
    coordinate: tuple[int, ...],
) -> tuple[slice | Tensor, ...]:
    """Where the local shard of the rank at mesh ``coordinate`` lies in a whole tensor of
    ``shape``: per dimension a slice, or the indices (``_StridedShard``, FSDP2 over tensor
    parallelism along one dimension); ``whole[index]`` (:func:`take`) is that rank's local
    tensor. torch's own rule (``_utils._get_shard_size_and_offsets``), for any rank."""
    from torch.distributed.tensor import _utils

    sizes, index = list(shape), {}
    for mesh_dim, placement in enumerate(placements):
        if not _is_shard(placement):
            continue
        dim = placement.dim
        sizes[dim], index[dim] = _utils._get_shard_size_and_offsets(
            sizes[dim], mesh_shape[mesh_dim], coordinate[mesh_dim], placement, index.get(dim),
            shape[dim], False,
        )  # fmt: skip
    out: list[slice | Tensor] = []
    for dim, n in enumerate(shape):
        ix = index.get(dim)
        if ix is None:
            out.append(slice(0, n))
        elif sizes[dim] == 0:
            out.append(slice(0, 0))
        elif bool((ix[1:] - ix[:-1] == 1).all()):
            out.append(slice(int(ix[0]), int(ix[-1]) + 1))
        else:
            out.append(ix)
    return tuple(out)


def take(whole: Tensor, index: tuple[slice | Tensor, ...]) -> Tensor:
    """``whole``'s elements at :func:`shard_index`'s ``index`` (a view where it is slices)."""
    if all(isinstance(i, slice) for i in index):
        return whole[index]
    return whole[_grid(whole.shape, index)]


def put(whole: Tensor, index: tuple[slice | Tensor, ...], values: Tensor) -> None:
    """Write ``values`` (a shard's shape) into ``whole`` at ``index``."""
    if all(isinstance(i, slice) for i in index):
        whole[index] = values
    else:
        whole[_grid(whole.shape, index)] = values


def _grid(shape: torch.Size, index: tuple[slice | Tensor, ...]) -> tuple[Tensor, ...]:
    axes = [
        torch.arange(n)[i] if isinstance(i, slice) else i for n, i in zip(shape, index, strict=True)
    ]
    return torch.meshgrid(*axes, indexing="ij")


def group_of(mesh: Any) -> tuple[Any, list[int], list[tuple[int, ...]]] | None:
    """The process group that spans ``mesh``, the global rank of each of its group ranks and
    each one's coordinate in the mesh; None where no group spans it without making one (a
    mesh of several dimensions over part of the world)."""
    import torch.distributed as dist

    grid = mesh.mesh
    if mesh.ndim == 1:
        group = mesh.get_group()
    elif grid.numel() == dist.get_world_size():
        group = dist.group.WORLD
    else:
        return None
    ranks = dist.get_process_group_ranks(group)
    where = {int(r): tuple(int(c) for c in torch.nonzero(grid == r)[0]) for r in grid.flatten()}
    return group, ranks, [where[r] for r in ranks]
