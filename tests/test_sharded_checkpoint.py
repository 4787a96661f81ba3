"""Checkpoints of descentlab optimizers on FSDP2-sharded parameters: torch's
``get_optimizer_state_dict``/``set_optimizer_state_dict`` and ``torch.distributed.checkpoint``
(DCP) save and load their state -- float32, bfloat16 state, per-tensor step counters and
numbers, a gathered optimizer's replicated state --, a resumed run is the uninterrupted one bit
for bit, at the world size it was saved at (4) and resharded (4 to 2); blockwise int8 state is
refused on shards in one line.

One gloo group of 4 processes saves at step 10 (then runs on to step 20: the uninterrupted
run) and loads every checkpoint again; one of 2 processes loads them resharded.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import pytest
import torch
from _shards import spawn

# every test here reads the gloo groups' runs (`make check` runs the others)
pytestmark = pytest.mark.process

CASES = [
    dict(id="adamw", name="adamw", fused=None, kwargs=dict(lr=1e-2, weight_decay=0.1)),
    dict(id="adamw-eager", name="adamw", fused=False, kwargs=dict(lr=1e-2)),
    dict(id="adamw-bf16", name="adamw", fused=None, kwargs=dict(state_dtype="bfloat16")),
    dict(id="nadam", name="nadam", fused=None),  # a per-tensor running product
    dict(id="asgd", name="asgd", fused=None),  # per-tensor rates
    dict(id="sfadamw", name="sfadamw", fused=None),  # float64 per-tensor sums
    dict(id="muon", name="muon", fused=None),  # gathered: replicated state
    dict(id="adamw-int8", name="adamw", fused=None, kwargs=dict(state_dtype="int8")),
]
IDS = [c["id"] for c in CASES]
REFUSED = {
    "adamw-int8": "ValueError: AdamW: state_dtype='int8' stores blocks of consecutive elements, "
    "which the shards of DTensor parameters would cut otherwise than the whole tensors' (param "
    "group 0); use state_dtype='bfloat16' or None with sharded parameters"
}
SAVED = [c for c in CASES if c["id"] not in REFUSED]


@functools.cache
def runs() -> dict[str, dict]:
    """Saved and run on at 4 ranks, loaded at 4, loaded at 2."""
    base = Path(
        tempfile.mkdtemp(prefix="descentlab-dcp-", dir=os.environ["DESCENTLAB_TEST_SHARED"])
    )
    arg = {"dir": str(base / "dcp"), "cases": CASES}
    four = spawn(4, {"save": ("save", arg), "load": ("load", {**arg, "cases": SAVED})}, base / "4")
    two = spawn(2, {"load": ("load", {**arg, "cases": SAVED})}, base / "2")
    return {"save": four["save"], "load4": four["load"], "load2": two["load"]}


@pytest.mark.slow
@pytest.mark.parametrize("case", [c["id"] for c in SAVED])
@pytest.mark.parametrize("world", [4, 2])
def test_a_resumed_sharded_run_is_the_uninterrupted_one(case, world):
    """Loaded at the world size it was saved at, or resharded from 4 ranks to 2: the next 10
    steps are the uninterrupted run's, bit for bit (bfloat16 state at 4 ranks only: its
    stochastic rounding draws by the element's place in its shard, so another split rounds
    otherwise -- within a bfloat16 rounding)."""
    done = runs()["save"][case]["params"]
    got = runs()[f"load{world}"][case]["params"]
    if case == "adamw-bf16" and world != 4:
        for a, b in zip(got, done, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-4)
        return
    assert all(torch.equal(a, b) for a, b in zip(got, done, strict=True))


@pytest.mark.slow
def test_the_optimizer_state_dict_keeps_torchs_layout():
    """Each parameter-shaped state entry is a DTensor of its parameter's placements (FSDP2:
    ``Shard(0)``), step counters and per-tensor numbers plain 0-dim tensors (torch.optim's
    layout, which DCP saves and reshards); a gathered optimizer's state is replicated."""
    kinds = {c: runs()["save"][c]["kinds"] for c in IDS if c not in REFUSED}
    shard = "DTensor(Shard(dim=0),)"
    assert kinds["adamw"] == {"step": "Tensor", "exp_avg": shard, "exp_avg_sq": shard}
    assert kinds["adamw-bf16"]["exp_avg"] == shard
    assert kinds["nadam"]["mu_product"] == "Tensor"
    assert kinds["sfadamw"]["z"] == shard and kinds["sfadamw"]["weight_sum"] == "Tensor"
    assert "DTensor" not in str(kinds["muon"])


@pytest.mark.slow
def test_blockwise_int8_state_on_shards_is_refused_in_one_line():
    assert runs()["save"]["adamw-int8"]["error"] == REFUSED["adamw-int8"]
