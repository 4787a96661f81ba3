"""``check-optimizer`` against researchers' mistakes (``tests/_mistakes.py``: broken copies of
LAMB, Prodigy, MARS and Cautious-style wrappers, written to the public API): each caught by
the line the table names, through the input that catches it, which the check's inputs lacked
before (zero gradients, gradients that drift as training's do, bfloat16 parameters, p.grad
compared after each step, every output scanned for NaN and inf, a failing fused run a FAIL).
The correct copies pass every line. The table with the counts before and after is
docs/own_optimizer.md's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from descentlab import optim
from descentlab.experiments.optimizer_check import NAMES, check_optimizer

MISTAKES = Path(__file__).resolve().parent / "_mistakes.py"

#: mistake -> (the check that catches it, words of its line)
CAUGHT = {
    "LambGradInPlace": ("resume", "changed p.grad"),
    "LambFloat32State": ("dtypes", "BFloat16"),
    "LambUnguardedRatio": ("resume", "not finite after step 1"),
    "AdamNoEps": ("resume", "not finite after step 1"),
    "SignedAdamNanFusedOnly": ("fused", "the fused run failed"),
    "AnnealedAdamFailsFused": ("fused", "the fused run failed: ValueError"),
    "CautiousFormUnscaled": ("fused", "max relative difference"),
    "ProdigyForgetsD": ("resume", "max relative difference"),
    "MarsPrevOnRule": ("resume", "max relative difference"),
}
#: mistakes the engine now cures (its decision follows from what the rule computes): the line
#: says what it did
CURED = {
    "ProdigyElementwise": ("chunked", "max relative difference 0"),
    "MarsOnShards": ("stacked", "mixes the runs"),
}


@pytest.mark.parametrize("name", CAUGHT)
def test_each_mistake_fails_its_line(name):
    check, words = CAUGHT[name]
    (line,) = check_optimizer(f"{MISTAKES}:{name}", [check])
    assert line.ok is False and line.check == NAMES[check] and words in line.detail, str(line)


@pytest.mark.parametrize("name", CURED)
def test_what_the_engine_decides_from_the_rule_is_said(name):
    check, words = CURED[name]
    (line,) = check_optimizer(f"{MISTAKES}:{name}", [check])
    assert line.ok and words in line.detail, str(line)


def test_a_per_tensor_clip_forced_onto_shards_is_never_stacked():
    """MARS whose author set ``shard_local = True`` (its clip's norm then spans every stacked
    run): the flags would stack it, a probe of its steps does not."""
    from descentlab.optim.mixing import stacks

    cls = optim.get(f"{MISTAKES}:MarsOnShards")
    opt = cls([torch.nn.Parameter(torch.zeros(3))])
    assert "two runs stacked differ from each run alone" in stacks(opt)
    good = optim.get(f"{MISTAKES}:Lamb")([torch.nn.Parameter(torch.zeros(3))])
    assert "reduces over whole tensors" in stacks(good)  # (update() without shard_local)
    assert stacks(optim.AdamW([torch.nn.Parameter(torch.zeros(3))])) == ""


def test_a_global_sum_left_elementwise_is_stepped_whole():
    """Prodigy left at ``elementwise = True``: its group was stepped in chunks of 2^18
    elements (its d from each chunk's sums); a probe of its steps keeps the group whole."""
    cls = optim.get(f"{MISTAKES}:ProdigyElementwise")
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(40, generator=g), torch.randn(30, generator=g)]
    grads = [[torch.randn(t.shape, generator=g) + 1 for t in start] for _ in range(6)]

    def run(chunk):
        ws = [torch.nn.Parameter(t.clone()) for t in start]
        opt = cls(ws, fused=False)
        opt.chunk_elements = chunk
        for gs in grads:
            for w, x in zip(ws, gs, strict=True):
                w.grad = x.clone()
            opt.step()
        return [w.detach() for w in ws]

    from descentlab import _announce

    _announce.forget("mixing-split")  # (said once per process: another test may have)
    with pytest.warns(RuntimeWarning, match="reads across tensors.*stepped whole"):
        chunked = run(40)
    assert all(torch.equal(a, b) for a, b in zip(chunked, run(1 << 20), strict=True))


@pytest.mark.parametrize("name", ["Lamb", "Mars"])
def test_the_correct_copies_pass(name):
    checks = ("fused", "reference", "resume", "groups", "chunked", "stacked", "dtypes")
    lines = check_optimizer(f"{MISTAKES}:{name}", checks)
    assert not [str(x) for x in lines if x.ok is False]


def test_flag_is_exported_and_a_chain_shows_the_values_in_use():
    """``optim.Flag`` is in the guide; a wrapper's inner rule showed its defaults, not the
    values the optimizer runs with."""
    assert "Flag" in optim.__all__ and optim.Flag is not None
    example = Path(__file__).resolve().parents[1] / "examples" / "optimizers"
    cls = optim.get(f"{example / 'cautious_adamw.py'}:CautiousAdamW")
    opt = cls([torch.nn.Parameter(torch.zeros(2))], lr=0.05, betas=(0.8, 0.9), fused=False)
    assert "scale_by_adam(betas=(0.8, 0.9)" in repr(opt.rule), repr(opt.rule)


@pytest.mark.process
def test_the_fsdp2_line_scales_its_loss_and_takes_set():
    """MARS with its per-tensor clip forced onto shards: the FSDP2 line's unit-scale loss never
    crossed the clip (it passed); scaled over six decades it fails. At ``lr=0`` (``--set``,
    which the line ignored) nothing moves and it passes. (Two FSDP2 checks of 2 ranks each:
    about 30 s a check on 2 cores, in the process tier.)"""
    spec = f"{MISTAKES}:MarsOnShards"
    (line,) = check_optimizer(spec, ["sharded"])
    (still,) = check_optimizer(spec, ["sharded"], lr=0.0)
    assert line.ok is False and still.ok, (line, still)


def test_the_vectorized_engine_trains_a_mixing_chain_alone():
    """``compare``'s vectorized pass: MARS forced onto shards (flags that would stack it) is
    refused, saying what the probe found; its copy with the flags right is refused by them."""
    from descentlab.engine.config import RunConfig
    from descentlab.engine.multirun import VectorizeError, train_many

    base = RunConfig(problem="moons", problem_options={"n_samples": 100}, model="mlp",
                     model_options={"hidden": 4}, batch_size=10, steps=2,
                     evaluate_test=False)  # fmt: skip
    for name, match in (("MarsOnShards", "mixes the runs"), ("Mars", "reduces over whole")):
        config = base.replace(optimizer=f"{MISTAKES}:{name}")
        with pytest.raises(VectorizeError, match=match):
            train_many(config, overrides=[{"seed": 0}, {"seed": 1}], mode="vmap", progress=False)
