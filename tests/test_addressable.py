"""A generated kernel (the fused C step, the Triton step) addresses only plain tensor memory.

A DTensor, a ``__torch_dispatch__`` wrapper subclass (here a toy one, ``_shards.Boxed``) or
another library's tensor subclass has no memory of its own the kernel could read: such a
parameter steps eagerly (announced once), or on its local shard (a DTensor), and
``fused=True`` refuses it in one line -- never a segmentation fault. The crash reproductions
run in a subprocess: a fault there is a failed test, not a dead test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _shards import Boxed

HERE = Path(__file__).resolve().parent

# (id, tensor, the start of unaddressable's answer: "" where a kernel may address it)
TENSORS = [
    ("tensor", lambda: torch.ones(3), ""),
    ("parameter", lambda: torch.nn.Parameter(torch.ones(3)), ""),
    ("transpose", lambda: torch.ones(2, 3).t(), ""),
    ("empty", lambda: torch.ones(0), ""),
    ("wrapper", lambda: Boxed(torch.ones(3)), "a Boxed is not plain tensor memory"),
    ("subclass", lambda: torch.ones(3).as_subclass(_Sub), "a _Sub is not plain tensor memory"),
    ("sparse", lambda: torch.ones(3).to_sparse(), "a torch.sparse_coo tensor is not strided"),
    ("meta", lambda: torch.ones(3, device="meta"), "a meta tensor has no memory"),
    ("not a tensor", lambda: [1.0], "a list (not a tensor) is not plain tensor memory"),
    ("freed storage", lambda: _freed(), "a tensor whose storage is smaller"),
]


def _freed() -> torch.Tensor:
    """A tensor whose storage was resized to nothing (as FSDP frees an unsharded parameter's)."""
    t = torch.ones(3)
    t.untyped_storage().resize_(0)
    return t


class _Sub(torch.Tensor):
    """A plain Python subclass (as another library might add): its memory may be anything."""


@pytest.mark.parametrize(("make", "why"), [t[1:] for t in TENSORS], ids=[t[0] for t in TENSORS])
def test_unaddressable_names_what_a_kernel_cannot_address(make, why):
    from descentlab.optim.base import unaddressable  # (here: the crash tests run without it)

    got = unaddressable(make())
    assert got.startswith(why) and bool(got) == bool(why), got
    assert "\n" not in got


# The crash reproductions: SGD, AdamW and Adagrad (fused by default) on a toy wrapper subclass
# and on a DTensor (one gloo process), fused=None, True and False; each prints one line per
# case, the parameters after 3 steps against the same run on plain tensors.
CHILD = textwrap.dedent(
    """
    import sys, warnings, tempfile
    import torch
    from _shards import Boxed
    from descentlab import optim

    warnings.simplefilter("ignore")
    kind = sys.argv[1]
    if kind == "dtensor":
        import torch.distributed as dist
        from torch.distributed.tensor import Replicate, Shard, distribute_tensor
        from torch.distributed.device_mesh import init_device_mesh

        store = dist.FileStore(tempfile.mktemp(), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        mesh = init_device_mesh("cpu", (1,))
        wrap = lambda t: distribute_tensor(t, mesh, [Shard(0)])
        unwrap = lambda t: t.full_tensor()
    else:
        wrap, unwrap = Boxed, lambda t: t.inner

    def run(cls, fused, wrapped):
        w0 = torch.linspace(-1, 1, 37).reshape(37, 1) * torch.ones(1, 3)
        w = torch.nn.Parameter(wrap(w0.clone()) if wrapped else w0.clone())
        opt = cls([w], lr=0.1, fused=fused)
        for _ in range(3):
            opt.zero_grad()
            (w * w).sum().backward()
            opt.step()
        return unwrap(w.detach()) if wrapped else w.detach()

    for cls in (optim.SGD, optim.AdamW, optim.Adagrad):
        for fused in (None, True, False):
            try:
                got = run(cls, fused, True)
            except Exception as exc:
                print(cls.__name__, fused, type(exc).__name__ + ":", exc, flush=True)
                continue
            same = torch.equal(got, run(cls, fused if kind == "dtensor" else False, False))
            print(cls.__name__, fused, "stepped", "equal" if same else "DIFFERENT", flush=True)
    """
)

# what each case prints after its optimizer and fused value
EXPECTED = {
    "wrapper": {
        "None": "stepped equal",  # eagerly (announced): the same as eager on plain tensors
        "True": "Refused: {cls}(fused=True): param group 0: a Boxed is not plain tensor "
        "memory a kernel can address (only torch.Tensor and torch.nn.Parameter are)",
        "False": "stepped equal",
    },
    "dtensor": {  # on the local shard, fused or not: the same as the same run unsharded
        "None": "stepped equal",
        "True": "stepped equal",
        "False": "stepped equal",
    },
}


@pytest.mark.process
@pytest.mark.parametrize("kind", ["wrapper", "dtensor"])
def test_a_tensor_subclass_never_reaches_a_kernel(kind):
    """On main before this test, both kinds died with SIGSEGV at the first fused step (the C
    kernel wrote through the pointer of a tensor without memory of its own)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-c", CHILD, "dtensor" if kind == "dtensor" else "boxed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"exit {run.returncode}:\n{run.stdout}\n{run.stderr}"
    lines = run.stdout.splitlines()
    want = [
        f"{cls} {fused} {EXPECTED[kind][fused].format(cls=cls)}"
        for cls in ("SGD", "AdamW", "Adagrad")
        for fused in ("None", "True", "False")
    ]
    assert lines == want
