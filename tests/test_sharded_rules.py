"""A rule written outside the package as a plain ``Rule`` left at the Rule defaults, whose
update reduces over each whole tensor (Cautious AdamW's mask rescaling, Liang et al. 2024),
steps FSDP2's shards as it steps the whole tensors: a plain rule is not taken to be
shard-local unless it says so (``shard_local = True``); it stepped each shard with its own
shard's reduction (59 % from the one-process run) with no word said."""

from __future__ import annotations

import pytest
import torch
from _shards import CHAINS, spawn, unsharded

CASE = {"id": "cautious", "chain": "cautious", "fused": False}


def _rel_err(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(
        float((x - y).abs().max() / y.abs().max().clamp_min(1e-12))
        for x, y in zip(a, b, strict=True)
    )


def test_a_plain_rule_at_the_defaults_is_not_stepped_shard_by_shard():
    rule = CHAINS["cautious"]()
    assert not rule.shard_local and rule.tensorwise


@pytest.mark.process
def test_a_per_tensor_reduction_in_a_plain_rule_steps_fsdp2_as_one_process(tmp_path):
    got = spawn(2, {"r": ("cases", [CASE])}, tmp_path)["r"]["cautious"]
    assert _rel_err(got["params"], unsharded(CASE)) <= 1e-6


def test_a_per_tensor_reduction_in_a_plain_rule_is_not_stacked_with_other_runs():
    """A comparison's vectorized pass stacks K runs into one tensor: Cautious's count over
    the stacked tensor mixed the runs (seed 0's training loss 0.388 stacked with seed 1,
    0.412 alone); such a rule now trains alone, as it does by itself."""
    import warnings
    from pathlib import Path

    from descentlab import engine
    from descentlab.engine.config import RunConfig

    example = Path(__file__).resolve().parents[1] / "examples" / "optimizers" / "cautious_adamw.py"

    def cfg(seed: int) -> RunConfig:
        return RunConfig(problem="moons", model="mlp", optimizer=f"{example}:CautiousAdamW",
                         hyper={"lr": 0.01}, steps=20, batch_size=16, seed=seed,
                         problem_options={"n_samples": 200},
                         model_options={"hidden": 8})  # fmt: skip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        together = engine.train_many([cfg(0), cfg(1)])[0].summary["train/loss"]
        alone = engine.train(cfg(0)).summary["train/loss"]
    assert together == alone
