"""The fused C kernels round a multiply-add as this process's torch does.

torch chooses its CPU kernels when it starts (``ATEN_CPU_CAPABILITY``): the AVX2 and AVX-512
ones fuse every multiply-add (``add`` with ``alpha``, ``addcmul``, ``lerp``), the ``default``
ones round the product and then the sum. A kernel that always fused was bit-identical to the
eager backend only under the first two; ``make test`` runs this file's tests of this
process's kernels again under ``default`` and ``avx2`` (the ``arith`` marker), where they failed
before the kernels followed torch. The tests that start a process per capability themselves
are not marked: they run the same processes under any capability.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from descentlab import optim
from descentlab.optim import c_emitter
from descentlab.optim.fused import FusedUnavailable

# optimizers without a square root (their kernels round where the eager ops do on every CPU)
# whose steps read add-with-alpha (weight decay, momentum), addcmul or lerp (Lion's moment)
F32_64 = (torch.float32, torch.float64)
CASES = [
    (optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, F32_64),
    (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}, F32_64),
    (optim.Lion, {"lr": 0.01, "weight_decay": 0.1}, F32_64),
    (optim.Adamax, {"lr": 0.02, "weight_decay": 0.05}, F32_64),
    (optim.ASGD, {"lr": 0.02, "t0": 20, "lambd": 0.01, "weight_decay": 0.01}, F32_64),
]


def _run(cls, kw, dtype, fused):
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(1003, generator=gen, dtype=dtype).requires_grad_()
    opt = cls([w], fused=fused, **kw)
    for _ in range(30):
        w.grad = torch.randn(1003, generator=gen, dtype=dtype)
        opt.step()
    return w.detach()


@pytest.mark.arith
@pytest.mark.parametrize(
    ("cls", "kw", "dtype"),
    [(c, k, d) for c, k, ds in CASES for d in ds],
    ids=[f"{c.__name__}-{str(d).removeprefix('torch.')}" for c, _, ds in CASES for d in ds],
)
def test_the_fused_step_is_the_eager_one_bit_for_bit_under_this_capability(cls, kw, dtype):
    try:
        fused = _run(cls, kw, dtype, True)
    except FusedUnavailable as exc:
        pytest.skip(str(exc))
    eager = _run(cls, kw, dtype, False)
    assert torch.equal(fused, eager), (
        f"{int((fused != eager).sum())} of 1003 differ under "
        f"{torch.backends.cpu.get_cpu_capability()}"
    )


@pytest.mark.arith
def test_the_source_says_which_multiply_add_it_takes():
    kernel = c_emitter.CKernel()  # the empty chain: the prelude is every kernel's
    once = kernel.source(torch.float32, prefetch=False, fused_multiply_add=True)
    twice = kernel.source(torch.float32, prefetch=False, fused_multiply_add=False)
    assert "#define dl_fma dl_fma2" in twice and "dl_fma2" not in once
    here = kernel.source(torch.float32, prefetch=False)
    assert here == (once if c_emitter.torch_fuses_multiply_add() else twice)


@pytest.mark.process
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 capabilities")
def test_the_probe_follows_the_capability_torch_started_with():
    """In a fresh process per capability: torch's own name for what it runs, and the probe."""
    code = (
        "import json, torch; from descentlab.optim import c_emitter; "
        "print(json.dumps([torch.backends.cpu.get_cpu_capability(), "
        "c_emitter.torch_fuses_multiply_add()]))"
    )
    seen = {}
    for cap in ("default", "avx2"):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        name, fuses = json.loads(out.stdout.strip().splitlines()[-1])
        seen[cap] = name
        # the default kernels never fuse; vector ones (where this CPU has them) always do
        assert fuses is (name != "DEFAULT"), (cap, name, fuses)
    assert seen["default"] == "DEFAULT"


@pytest.mark.arith
@pytest.mark.parametrize("steps", [2, 3, 5, 9, 17, 33, 65, 129, 257])
def test_the_int8_maps_linspace_is_torchs_vector_kernels(steps):
    """The dynamic map's bins are torch.linspace as its AVX2/AVX-512 kernels compute it (the
    map bitsandbytes builds); checked against torch where this process's torch runs those."""
    from descentlab.optim.lowbit import _linspace

    if not c_emitter.torch_fuses_multiply_add():
        pytest.skip("torch runs its default kernels here: their linspace is not the map's")
    assert torch.equal(_linspace(steps), torch.linspace(0.1, 1, steps))


@pytest.mark.process
def test_the_int8_map_is_the_same_under_every_capability():
    code = (
        "import json; from descentlab.optim.lowbit import dynamic_map; "
        "print(json.dumps([dynamic_map(s).double().tolist() for s in (True, False)]))"
    )
    maps = {}
    for cap in ("default", "avx2", "avx512"):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        maps[cap] = json.loads(out.stdout.strip().splitlines()[-1])
    assert maps["default"] == maps["avx2"] == maps["avx512"]
