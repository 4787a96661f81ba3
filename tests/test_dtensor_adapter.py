"""descentlab reads DTensor internals in one module, :mod:`descentlab.optim.dtensors`,
written against one torch release: these tests pin it there (a new torch fails the first
one: read the adapter against it, then move ``TORCH``) and check each thing it reads against
what torch itself computes, or against shards worked out by hand."""

from __future__ import annotations

import tempfile

import pytest
import torch
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.placement_types import _StridedShard

from descentlab.optim import dtensors as dt


def test_the_adapter_is_written_for_this_torch():
    assert torch.__version__.split("+")[0].rsplit(".", 1)[0] == dt.TORCH


# (shape, mesh shape, placements, coordinate, the rows and columns of that rank's shard)
SHARDS = [
    ((10, 6), (2,), (Shard(0),), (1,), (range(5, 10), range(6))),
    ((3, 6), (4,), (Shard(0),), (1,), (range(1, 2), range(6))),  # chunks of 1, 1, 1, 0
    ((3, 6), (4,), (Shard(0),), (3,), (range(0), range(6))),  # the empty one
    ((10, 6), (2, 2), (Replicate(), Shard(0)), (1, 1), (range(5, 10), range(6))),  # HSDP
    ((10, 6), (2, 2), (Shard(0), Shard(1)), (1, 0), (range(5, 10), range(3))),
    # FSDP2 (dp) over column-wise tensor parallelism (tp): the tp shard's rows, chunked by dp
    (
        (10, 6),
        (2, 2),
        (_StridedShard(0, split_factor=2), Shard(0)),
        (1, 0),
        (range(3, 5), range(6)),
    ),
    (
        (10, 6),
        (2, 2),
        (_StridedShard(0, split_factor=2), Shard(0)),
        (0, 1),
        (range(5, 8), range(6)),
    ),
]


@pytest.mark.parametrize(("shape", "mesh", "placements", "coordinate", "want"), SHARDS)
def test_a_shard_lies_where_torch_puts_it(shape, mesh, placements, coordinate, want):
    index = dt.shard_index(shape, mesh, placements, coordinate)
    whole = torch.arange(shape[0] * shape[1]).reshape(shape)
    expected = whole[list(want[0])][:, list(want[1])]
    assert torch.equal(dt.take(whole, index), expected)
    back = torch.zeros_like(whole)
    dt.put(back, index, expected)
    assert int(back.count_nonzero()) == int(expected.count_nonzero())


def test_the_adapter_reads_a_dtensor_as_torch_does():
    """In a gloo group of one process: the local tensor and spec as torch's own accessors
    give them, a local tensor wrapped back, a Partial gradient placed as its parameter, the
    process group that spans a mesh."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Partial, distribute_tensor

    dist.init_process_group(
        "gloo", store=dist.FileStore(tempfile.mktemp(), 1), rank=0, world_size=1
    )
    try:
        mesh = init_device_mesh("cpu", (1,))
        p = distribute_tensor(torch.arange(12.0).reshape(4, 3), mesh, [Shard(0)])
        assert dt.is_dtensor(p) and dt.any_dtensor([torch.ones(1), p])
        assert not dt.any_dtensor([torch.ones(1), torch.nn.Parameter(torch.ones(1))])
        assert dt.local(p).data_ptr() == p.to_local().data_ptr()  # the same memory
        assert dt.spec(p).placements == p.placements and dt.same_spec(dt.spec(p), dt.spec(p))
        again = dt.like(dt.local(p) * 2, p)
        assert torch.equal(again.full_tensor(), p.full_tensor() * 2)
        g = DTensor.from_local(torch.ones(4, 3), mesh, [Partial()])
        placed = dt.placed_as(g, p)
        assert placed.placements == p.placements and torch.equal(
            placed.full_tensor(), g.full_tensor()
        )
        group, ranks, coords = dt.group_of(mesh)
        assert ranks == [0] and coords == [(0,)] and group is mesh.get_group()
        assert dt.holds((Replicate(), Shard(0)), (0, 1)) and not dt.holds((Replicate(),), (1,))
    finally:
        dist.destroy_process_group()
