"""The real-scale workload: ResNet-20/ResNet-18 (BatchNorm) on ``digits32`` and the GPT-2-style
decoder on the character language model -- parameter counts against the published numbers,
forwards against functional re-implementations (float64), batch norm through the engine's
train/eval switching, checkpoints (resume bit-identical) and the vectorized path."""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from _models import as_float64
from test_multirun import assert_same_run
from test_resume import assert_identical

from descentlab import _announce
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import expand_configs, train_many
from descentlab.engine.run import resume, train
from descentlab.problems import data, models
from descentlab.problems.gpt import GPT
from descentlab.store import Store

# --------------------------------------------------------------------- published sizes


@pytest.mark.parametrize(
    ("name", "opts", "count"),
    [
        # He et al. 2016, table 6: ResNet-20 has 0.27M parameters (option A shortcuts)
        ("resnet20", {}, 269_722),
        # ResNet-18 for 10 classes: the CIFAR stem (3x3, no max-pool) ...
        ("resnet18", {}, 11_173_962),
        # ... and the paper's ImageNet stem (7x7/2 + max-pool): torchvision's
        # resnet18(num_classes=10) has 11,181,642
        ("resnet18", {"stem": "imagenet"}, 11_181_642),
    ],
)
def test_resnet_parameter_counts_are_the_published_ones(name, opts, count):
    with torch.device("meta"):  # the count without the memory or the initialisation
        m = models.build(name, input_shape=(3, 32, 32), n_outputs=10, **opts)
    assert models.count_params(m) == count


def test_resnet20_count_from_the_architecture_and_its_options():
    def count(c, w, n, k):  # stem, 3 stages of n blocks (two 3x3 convs + 2 BNs), read-out
        stem = 9 * c * w + 2 * w
        stages = sum(
            9 * cin * cout + 9 * cout * cout + 4 * cout + (n - 1) * (18 * cout * cout + 4 * cout)
            for cin, cout in ((w, w), (w, 2 * w), (2 * w, 4 * w))
        )
        return stem + stages + 4 * w * k + k

    assert count(3, 16, 3, 10) == 269_722
    for opts, c in (({"width": 8, "blocks": 1}, 1), ({"blocks": 5}, 3)):
        with torch.device("meta"):
            m = models.build("resnet20", input_shape=(c, 32, 32), n_outputs=7, **opts)
        assert models.count_params(m) == count(c, opts.get("width", 16), opts["blocks"], 7)


def test_gpt2_small_has_124m_parameters_and_untying_adds_the_read_out():
    # GPT-2 small: vocabulary 50257, context 1024, width 768, 12 layers, 12 heads, tied
    # read-out: 124,439,808 parameters (Hugging Face's GPT2LMHeadModel)
    with torch.device("meta"):
        tied = GPT(1024, 50257, d_model=768, n_layers=12, n_heads=12)
        untied = GPT(1024, 50257, d_model=768, n_layers=12, n_heads=12, tied=False)
    assert models.count_params(tied) == 124_439_808
    assert models.count_params(untied) == 124_439_808 + 50257 * 768
    m = models.build("gpt", input_shape=(16,), n_outputs=97, d_model=32, n_layers=1)
    assert m.head.weight is m.embed.weight
    d, v, t = 32, 97, 16
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    assert models.count_params(m) == v * d + t * d + block + 2 * d


# --------------------------------------------------------------------- forwards (float64)


def _bn(h, p, name):
    return F.batch_norm(h, p[f"{name}.running_mean"], p[f"{name}.running_var"],
                        p[f"{name}.weight"], p[f"{name}.bias"], training=False)  # fmt: skip


def ref_resnet20(p, x, blocks):
    """He et al.'s CIFAR ResNet in eval mode, written from the paper (option A shortcuts)."""
    h = F.relu(_bn(F.conv2d(x, p["stem.0.weight"], padding=1), p, "stem.1"))
    for s in range(3):
        for b in range(blocks):
            pre = f"stages.{s}.{b}"
            stride = 2 if s > 0 and b == 0 else 1
            z = F.conv2d(h, p[f"{pre}.conv1.weight"], stride=stride, padding=1)
            z = F.relu(_bn(z, p, f"{pre}.bn1"))
            z = _bn(F.conv2d(z, p[f"{pre}.conv2.weight"], padding=1), p, f"{pre}.bn2")
            short = h[:, :, ::stride, ::stride]
            extra = z.shape[1] - short.shape[1]
            short = torch.cat([short, short.new_zeros(short.shape[0], extra, *short.shape[2:])], 1)
            h = F.relu(z + short)
    return h.mean((2, 3)) @ p["head.weight"].T + p["head.bias"]


def test_resnet20_matches_the_paper_written_functionally(float64):
    torch.manual_seed(0)
    m = models.build("resnet20", input_shape=(3, 16, 16), n_outputs=10, width=4, blocks=2)
    m.train()
    m(torch.randn(8, 3, 16, 16))  # running statistics away from their start
    m.eval()
    x = torch.randn(5, 3, 16, 16)
    torch.testing.assert_close(m(x), ref_resnet20(m.state_dict(), x, 2), rtol=1e-12, atol=1e-12)


def test_gpt_attention_is_causal_and_matches_explicit_softmax(float64):
    torch.manual_seed(0)
    m = models.build("gpt", input_shape=(12,), n_outputs=20, d_model=16, n_heads=4)
    m.eval()
    x = torch.randint(0, 20, (3, 12))
    out = m(x)
    # the first block's attention written out: masked softmax(q k^T / sqrt(d_head)) v
    a = m.blocks[0].attn
    h = m.blocks[0].ln1(m.embed(x) + m.position(torch.arange(12)))
    q, k, v = (z.reshape(3, 12, 4, 4).transpose(1, 2) for z in a.qkv(h).split(16, dim=2))
    s = q @ k.transpose(-1, -2) / 2.0
    s = s.masked_fill(torch.ones(12, 12, dtype=torch.bool).triu(1), -math.inf)
    want = a.proj((s.softmax(-1) @ v).transpose(1, 2).reshape(3, 12, 16))
    torch.testing.assert_close(a(h), want, rtol=1e-12, atol=1e-12)
    # position t never sees a later token
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % 20
    changed = m(y)
    torch.testing.assert_close(changed[:, :7], out[:, :7], rtol=0, atol=0)
    assert not torch.allclose(changed[:, 7:], out[:, 7:])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "resnet18", "stem": "tiny"}, "stem must be one of cifar, imagenet"),
        ({"name": "resnet20", "width": 0}, "width must be an integer >= 1, got 0"),
        ({"name": "resnet20", "input_shape": (40,)}, "needs an image"),
        ({"name": "gpt", "input_shape": (1, 8, 8)}, r"needs sequences of token ids"),
        ({"name": "gpt", "d_model": 30, "n_heads": 4}, "d_model must be a multiple of n_heads"),
        ({"name": "gpt", "tied": 1}, "tied must be a bool"),
    ],
)
def test_bad_options_name_the_option(kwargs, match):
    kw = {"input_shape": (3, 32, 32), "n_outputs": 10, **kwargs}
    if kw["name"] == "gpt" and "input_shape" not in kwargs:
        kw["input_shape"] = (16,)
    with pytest.raises(ValueError, match=match):
        models.build(kw.pop("name"), **kw)


def test_gpt_refuses_a_sequence_longer_than_its_context():
    m = GPT(8, 10, d_model=8, n_layers=1, n_heads=2)
    with pytest.raises(ValueError, match="length 9 is longer than the context 8"):
        m(torch.zeros(1, 9, dtype=torch.long))


# --------------------------------------------------------------------- digits32


def test_digits32_is_digits_resized_with_the_same_split():
    small, big = data.load("digits", seed=3), data.load("digits32", seed=3)
    assert big.input_shape == (1, 32, 32) and big.default_model == "resnet20"
    for a, b in ((small.y_train, big.y_train), (small.y_val, big.y_val)):
        assert torch.equal(a, b)
    assert big.n_test == small.n_test and big.sealed
    # resizing to 8x8 is the identity: the same images, not only the same labels
    same = data.load("digits32", seed=3, size=8)
    assert torch.equal(same.x_train, small.x_train) and torch.equal(same.x_val, small.x_val)
    # each 4x4 block of the 32x32 image is centred on one 8x8 pixel: its mean is close
    pooled = F.avg_pool2d(big.x_train, 4)
    assert (pooled - small.x_train).abs().mean() < 0.1
    rgb = data.load("digits32", seed=3, channels=3)
    assert rgb.input_shape == (3, 32, 32) and torch.equal(rgb.x_train[:, 2], big.x_train[:, 0])


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"channels": 2}, "channels must be 1 or 3, got 2"),
        ({"size": 4}, "size must be an integer >= 8, got 4"),
        ({"colour": 1}, r"unknown option\(s\) \['colour'\] for dataset 'digits32'"),
    ],
)
def test_digits32_bad_options(opts, match):
    with pytest.raises(ValueError, match=match):
        data.load("digits32", **opts)


# --------------------------------------------------------------------- batch norm in the engine

# ResNet-20's layout, narrow and one block per stage, on the 8x8 originals: seconds, not minutes
TINY = {"problem": "digits32", "problem_options": {"size": 8}, "model": "resnet20",
        "model_options": {"width": 4, "blocks": 1}}  # fmt: skip


@pytest.fixture(scope="module")
def digits8():
    s = data.load("digits32", size=8)
    return dataclasses.replace(s, x_train=s.x_train[:96], y_train=s.y_train[:96],
                               x_val=s.x_val[:48], y_val=s.y_val[:48])  # fmt: skip


def test_evaluation_uses_running_statistics_and_training_continues_in_train_mode(digits8):
    # the run's validation metrics are the eval-mode model's (running statistics), and the
    # evaluation changes no running statistic: a run evaluated every step ends where a run
    # evaluated only at its end does
    cfg = RunConfig(**TINY, optimizer="momentum", hyper={"lr": 0.05, "momentum": 0.9},
                    batch_size=16, steps=6, evaluate_test=False)  # fmt: skip
    often = train(cfg.replace(eval_every=1), data=digits8, progress=False)
    once = train(cfg, data=digits8, progress=False)
    for k, v in once.model.state_dict().items():
        assert torch.equal(v, often.model.state_dict()[k]), k
    m = once.model.eval()
    with torch.no_grad():
        want = F.cross_entropy(m(digits8.x_val), digits8.y_val)
    assert once.summary["val/loss"] == pytest.approx(float(want), rel=1e-6)
    bn = m.stem[1]
    assert int(bn.num_batches_tracked) == 6 and not torch.equal(bn.running_var, torch.ones(4))


def test_resume_of_a_batch_norm_model_is_bit_identical(tmp_path, digits8):
    cfg = RunConfig(**TINY, optimizer="adamw", hyper={"lr": 1e-2}, batch_size=16, steps=12,
                    eval_every=4)  # fmt: skip
    full = train(cfg, data=digits8, progress=False)
    store = Store(tmp_path / "lab.sqlite")
    paused = train(cfg, store, data=digits8, until_step=5, progress=False)
    assert paused.status == "interrupted"
    done = resume(paused.run_id, store, data=digits8, progress=False)
    assert_identical(full, done)
    assert "stem.1.running_mean" in done.model.state_dict()


def test_vectorized_batch_norm_runs_equal_runs_alone(float64, digits8):
    # stacked running statistics, updated per run: the same weights, buffers and metrics
    base = RunConfig(**TINY, optimizer="momentum", batch_size=16, steps=4, eval_every=2)
    runs = [{"seed": 0, "hyper": {"lr": 0.05, "momentum": 0.9}},
            {"seed": 1, "hyper": {"lr": 0.1, "momentum": 0.8}}]  # fmt: skip
    splits = as_float64(digits8)
    got = train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    refs = [train(c, data=splits, progress=False) for c in expand_configs(base, runs)]
    for g, r in zip(got, refs, strict=True):
        assert_same_run(g, r)
    assert not torch.equal(got[0].model.stem[1].running_mean, got[1].model.stem[1].running_mean)


def test_schedule_free_with_batch_norm_is_announced_once(digits8, monkeypatch):

    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    cfg = RunConfig(**TINY, optimizer="sfadamw", hyper={"lr": 1e-2}, batch_size=16, steps=2,
                    evaluate_test=False)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="batch-norm running statistics") as caught:
        train(cfg, data=digits8, progress=False)
        train(cfg.replace(seed=1), data=digits8, progress=False)
    assert sum("batch-norm" in str(w.message) for w in caught) == 1
    # no batch norm, or no train/eval modes: nothing to say
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(cfg.replace(optimizer="adamw"), data=digits8, progress=False)
        train(RunConfig(problem="moons", model="mlp", optimizer="sfadamw", steps=2,
                        batch_size=16, evaluate_test=False), progress=False)  # fmt: skip
