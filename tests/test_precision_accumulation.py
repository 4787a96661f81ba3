"""Mixed precision, gradient accumulation and engine-level clipping: each
against a plain torch loop written here (model built from the run's seed, batches drawn from
the run's data-order stream, torch's own optimizer), bitwise where torch's loop is
deterministic."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from descentlab import _announce
from descentlab.engine import multirun
from descentlab.engine.config import RunConfig
from descentlab.engine.run import train
from descentlab.engine.seeds import stream_seed
from descentlab.problems import data as datasets
from descentlab.problems import models

N_SAMPLES = 192  # 153 training examples after the validation split


def _config(**changes: object) -> RunConfig:
    base = RunConfig(
        problem="moons",
        problem_options={"n_samples": N_SAMPLES},
        model="mlp",
        model_options={"hidden": 16},
        optimizer=torch.optim.SGD,
        hyper={"lr": 0.3, "momentum": 0.9},
        batch_size=8,
        steps=30,
        evaluate_test=False,
        eval_every=10,
    )
    return base.replace(**changes)


def _torch_loop(cfg: RunConfig) -> list[torch.Tensor]:
    """The run ``cfg`` describes, written as a plain torch loop: autocast, the loss divided
    by the micro-batches, backward, unscale, clip_grad_norm_, step."""
    splits = datasets.load(cfg.problem, seed=cfg.split_seed, **cfg.problem_options)
    x, y = splits.x_train, splits.y_train
    torch.manual_seed(cfg.seed)
    model = models.build(
        cfg.model, input_shape=splits.input_shape, n_outputs=splits.n_outputs, **cfg.model_options
    )
    opt = cfg.optimizer(model.parameters(), **cfg.hyper)
    gen = torch.Generator().manual_seed(stream_seed(cfg.seed, 1))
    n, bs, k = x.shape[0], cfg.batch_size, cfg.accumulate
    perm, pos = None, n

    def micro_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal perm, pos
        if pos >= n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + bs]
        pos += bs
        return x[idx], y[idx]

    dtype = {"bf16": torch.bfloat16}.get(cfg.precision)
    for _ in range(cfg.steps):
        opt.zero_grad()
        for _ in range(k):
            xb, yb = micro_batch()
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(xb), yb)
            (loss / k if k > 1 else loss).backward()
        if cfg.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        opt.step()
    return [p.detach() for p in model.parameters()]


def _weights(cfg: RunConfig) -> list[torch.Tensor]:
    return [p.detach() for p in train(cfg, progress=False).model.parameters()]


@pytest.mark.parametrize(
    "changes",
    [
        {"precision": "bf16"},
        {"accumulate": 3},
        {"clip_grad_norm": 0.05},
        {"precision": "bf16", "accumulate": 2, "clip_grad_norm": 0.1},
    ],
    ids=["bf16", "accumulate", "clip", "all-three"],
)
def test_matches_a_plain_torch_loop_bitwise(changes: dict) -> None:
    cfg = _config(**changes)
    ours, theirs = _weights(cfg), _torch_loop(cfg)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    # and the option changed the run (the loop above is not the fp32 run)
    plain = _weights(_config())
    assert any(not torch.equal(a, b) for a, b in zip(ours, plain, strict=True))


def test_clipping_bounds_the_gradient_the_optimizer_sees() -> None:
    """Plain SGD moves the weights by lr * the clipped gradient: at most lr * X in norm."""
    cfg = _config(hyper={"lr": 1.0}, clip_grad_norm=1e-3, steps=1, eval_every=1)
    torch.manual_seed(0)
    before = [p.detach().clone() for p in _weights(cfg.replace(steps=1, hyper={"lr": 0.0}))]
    after = _weights(cfg)
    moved = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(after, before, strict=True)))
    assert 0 < moved <= 1e-3 * (1 + 1e-6)


def test_accumulation_equals_a_larger_batch_in_float64(float64: None) -> None:
    """K micro-batches of B examples per step give the step of one batch of K * B, to
    float64 rounding (108 training examples: a step is an epoch)."""
    from _models import as_float64

    cfg = _config(problem_options={"n_samples": 170}, hyper={"lr": 0.3}, steps=20)
    data = as_float64(datasets.load("moons", n_samples=170))

    def weights(c: RunConfig) -> list[torch.Tensor]:
        return [p.detach() for p in train(c, data=data, progress=False).model.parameters()]

    small = weights(cfg.replace(batch_size=27, accumulate=4))
    large = weights(cfg.replace(batch_size=108, accumulate=1))
    assert small[0].dtype == torch.float64
    for a, b in zip(small, large, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    # epochs count micro-batches: 4 of 27 make one epoch of 108 examples, one step
    c3 = cfg.replace(batch_size=27, accumulate=4, steps=None, epochs=3)
    result = train(c3, data=data, progress=False)
    assert result.steps == 3 and result.epochs == pytest.approx(3.0)


def test_fp16_without_cuda_and_bad_values_are_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="precision 'fp16' needs a CUDA device"):
        _config(precision="fp16").validate()
    with pytest.raises(ValueError, match="precision"):
        _config(precision="half").validate()
    with pytest.raises(ValueError, match="accumulate"):
        _config(accumulate=0).validate()
    with pytest.raises(ValueError, match="clip_grad_norm"):
        _config(clip_grad_norm=0.0).validate()


def test_records_leave_the_defaults_out_and_round_trip() -> None:
    plain = _config(optimizer="sgd").to_dict()
    assert not {"precision", "accumulate", "clip_grad_norm"} & set(plain)
    cfg = _config(optimizer="sgd", precision="bf16", accumulate=2, clip_grad_norm=1.5)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_vectorized_runs_with_engine_options_train_alone_and_say_so() -> None:
    base = _config(optimizer="sgd", hyper={"lr": 0.1}, precision="bf16", steps=5)
    assert "train alone" in multirun.vectorize_reason(base)
    _announce.forget()
    with pytest.warns(RuntimeWarning, match="train one at a time, not vectorized"):
        plan = multirun.plan(base, overrides=[{"seed": 0}, {"seed": 1}], workers=1)
    assert plan == [("sequential", [0, 1])]
    with pytest.raises(multirun.VectorizeError, match="precision"):
        multirun.train_many(base, overrides=[{"seed": 0}, {"seed": 1}], mode="vmap",
                            progress=False)  # fmt: skip


def test_resume_continues_accumulation_bit_exactly(tmp_path) -> None:
    from descentlab.engine.run import resume
    from descentlab.store import Store

    cfg = _config(optimizer="adam", hyper={"lr": 1e-2}, precision="bf16", accumulate=2,
                  clip_grad_norm=0.5, checkpoint_every=5)  # fmt: skip
    whole = _weights(cfg.replace(checkpoint_every=None))
    store = Store(tmp_path / "lab.sqlite")
    paused = train(cfg, store, until_step=13, progress=False)
    resumed = resume(paused.run_id, store, progress=False)
    assert resumed.steps == 30
    for a, b in zip(whole, resumed.model.parameters(), strict=True):
        assert torch.equal(a, b.detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 needs CUDA")
def test_fp16_matches_torchs_gradient_scaler_recipe_on_cuda() -> None:
    cfg = _config(precision="fp16", device="cuda", accumulate=2, clip_grad_norm=0.5)
    ours = _weights(cfg)
    splits = datasets.load(cfg.problem, seed=cfg.split_seed, **cfg.problem_options)
    x, y = splits.x_train.cuda(), splits.y_train.cuda()
    torch.manual_seed(cfg.seed)
    model = models.build(
        cfg.model, input_shape=splits.input_shape, n_outputs=splits.n_outputs, **cfg.model_options
    ).cuda()
    opt = cfg.optimizer(model.parameters(), **cfg.hyper)
    scaler = torch.amp.GradScaler("cuda")
    gen = torch.Generator().manual_seed(stream_seed(cfg.seed, 1))
    n, bs = x.shape[0], cfg.batch_size
    perm, pos = None, n
    for _ in range(cfg.steps):
        opt.zero_grad()
        for _ in range(2):
            if pos >= n:
                perm, pos = torch.randperm(n, generator=gen).cuda(), 0
            idx = perm[pos : pos + bs]
            pos += bs
            with torch.autocast("cuda", dtype=torch.float16):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            scaler.scale(loss / 2).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        scaler.step(opt)
        scaler.update()
    for a, b in zip(ours, model.parameters(), strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=1e-3, atol=1e-4)
