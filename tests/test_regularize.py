"""Regularizers: early stopping decisions from hand-worked sequences; mixup/cutmix/augmentation
against per-example loops that replay the same generator draws; label smoothing against torch's
cross-entropy; weight noise against an explicitly perturbed copy; penalties' gradients."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from descentlab import regularize as reg


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def replay(g: torch.Generator) -> torch.Generator:
    """A generator in the same state as ``g`` (to replay its draws in a reference)."""
    return torch.Generator().set_state(g.get_state())


# ------------------------------------------------------------------------------ early stopping

# metrics, patience, min_delta, mode -> (index at which update returns True or None, best,
# best_step); worked out by hand from the rule "improve if m < best - min_delta".
ES_CASES = [
    ([1.0, 0.5, 0.6, 0.7], 2, 0.0, "min", (3, 0.5, 1)),
    ([1.0, 0.5, 0.6, 0.4, 0.45, 0.41, 0.42], 3, 0.0, "min", (6, 0.4, 3)),
    ([1.0, 0.95, 0.91, 0.9], 2, 0.1, "min", (2, 1.0, 0)),  # small gains do not count
    ([1.0, 0.85, 0.8, 0.7], 2, 0.1, "min", (None, 0.7, 3)),
    ([0.1, 0.3, 0.3, 0.29, 0.5], 2, 0.0, "max", (3, 0.3, 1)),
    ([1.0, float("nan"), float("nan")], 2, 0.0, "min", (2, 1.0, 0)),  # NaN never improves
    ([3.0, 2.0, 1.0], 1, 0.0, "min", (None, 1.0, 2)),
]


@pytest.mark.parametrize(("metrics", "patience", "min_delta", "mode", "expected"), ES_CASES)
def test_early_stopping_decisions(metrics, patience, min_delta, mode, expected):
    es = reg.EarlyStopping(patience, min_delta=min_delta, mode=mode)
    stop_at = None
    for i, m in enumerate(metrics):
        if es.update(m):
            stop_at = i
            break
    assert (stop_at, es.best, es.best_step) == expected
    assert es.stopped == (stop_at is not None)


def test_early_stopping_restores_best_weights_and_resumes():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    es = reg.EarlyStopping(patience=2)
    snapshots = {}
    for step, metric in zip([10, 20, 30, 40], [1.0, 0.5, 0.7, 0.9], strict=True):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        snapshots[step] = copy.deepcopy(model.state_dict())
        if step == 30:  # checkpoint mid-way; a resumed copy must decide the same
            saved = es.state_dict()
            resumed_model = copy.deepcopy(model)
        stop = es.update(metric, model, step=step)
    assert stop and es.best_step == 20
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[20][k])  # best weights restored
    es2 = reg.EarlyStopping(patience=5)
    es2.load_state_dict(saved)
    assert not es2.update(0.7, resumed_model, step=30)
    assert es2.update(0.9, resumed_model, step=40)
    assert all(torch.equal(v, snapshots[20][k]) for k, v in resumed_model.state_dict().items())
    # saved state is a deep copy: later training does not alter it
    assert torch.equal(saved["best_state"]["weight"], snapshots[20]["weight"])


def test_early_stopping_without_restore_keeps_last_weights():
    model = nn.Linear(1, 1)
    es = reg.EarlyStopping(patience=1, restore_best=False)
    es.update(1.0, model)
    with torch.no_grad():
        model.weight.fill_(7.0)
    assert es.update(2.0, model)
    assert float(model.weight.detach()) == 7.0 and es.best_state is None


# ------------------------------------------------------------------------------- mixup, cutmix


def test_sample_beta_distribution_and_determinism():
    g = gen(1)
    draws = [reg.sample_beta(0.4, 0.4, g) for _ in range(2000)]
    assert stats.kstest(draws, stats.beta(0.4, 0.4).cdf).pvalue > 1e-3
    assert [reg.sample_beta(2.0, 5.0, gen(3)) for _ in range(2)] == [
        reg.sample_beta(2.0, 5.0, gen(3)) for _ in range(2)
    ]


@pytest.mark.parametrize("shape", [(6, 40), (6, 1, 40), (6, 1, 8, 8), (6, 2)])
def test_mixup_is_a_convex_combination_with_a_permutation(shape):
    x = torch.randn(*shape, generator=gen(5))
    y = torch.arange(6)
    g = gen(7)
    ref = replay(g)
    xm, ya, yb, lam = reg.mixup(x, y, 0.4, g)
    lam_ref = reg.sample_beta(0.4, 0.4, ref)
    perm = torch.randperm(6, generator=ref)
    assert lam == lam_ref and torch.equal(yb, perm) and torch.equal(ya, y)
    torch.testing.assert_close(xm, lam * x + (1 - lam) * x[perm])
    # both generators advanced by the same draws
    assert torch.equal(g.get_state(), ref.get_state())


def test_mixup_loss_equals_cross_entropy_on_mixed_targets():
    out = torch.randn(5, 4, dtype=torch.float64)
    ya, yb, lam = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([3, 3, 1, 0, 2]), 0.3
    loss = reg.mixup_loss(F.cross_entropy, out, ya, yb, lam)
    soft = reg.mixup_targets(ya, yb, lam, 4).double()
    torch.testing.assert_close(loss, F.cross_entropy(out, soft))
    torch.testing.assert_close(soft.sum(1), torch.ones(5, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (5, 3, 9, 7), (5, 40), (5, 2, 33)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cutmix_pastes_one_box_and_lam_is_the_kept_fraction(shape, seed):
    n = shape[0]
    # distinct values per example: pixel provenance is readable from the value
    x = (
        torch.arange(n, dtype=torch.float64).reshape(n, *([1] * (len(shape) - 1)))
        + torch.rand(*shape, generator=gen(seed), dtype=torch.float64) * 0.5
    )
    y = torch.arange(n)
    g = gen(100 + seed)
    ref = replay(g)
    xm, _, yb, lam = reg.cutmix(x, y, 1.0, g)
    lam0 = reg.sample_beta(1.0, 1.0, ref)
    perm = torch.randperm(n, generator=ref)
    assert torch.equal(yb, perm)
    spatial = shape[2:] if len(shape) >= 3 else shape[1:]
    # reference box from the same draws, written from the paper's recipe
    if len(shape) == 4:
        h, w = spatial
        r = math.sqrt(1 - lam0)
        cy = int(torch.randint(0, h, (), generator=ref))
        cx = int(torch.randint(0, w, (), generator=ref))
        ch, cw = int(h * r), int(w * r)
        box = torch.zeros(h, w, dtype=torch.bool)
        box[
            max(cy - ch // 2, 0) : min(cy + ch // 2, h), max(cx - cw // 2, 0) : min(cx + cw // 2, w)
        ] = True
    else:
        (length,) = spatial
        c = int(torch.randint(0, length, (), generator=ref))
        cut = int(length * (1 - lam0))
        box = torch.zeros(length, dtype=torch.bool)
        box[max(c - cut // 2, 0) : min(c + cut // 2, length)] = True
    expected = torch.where(box, x[perm], x)
    assert torch.equal(xm, expected)
    assert lam == pytest.approx(1 - float(box.double().mean()))


def test_smooth_labels_match_torch_label_smoothing():
    logits = torch.randn(6, 5, dtype=torch.float64, generator=gen(2))
    y = torch.tensor([0, 4, 2, 2, 1, 3])
    for eps in (0.0, 0.1, 0.5, 1.0):
        t = reg.smooth_labels(y, 5, eps).double()
        torch.testing.assert_close(t.sum(1), torch.ones(6, dtype=torch.float64))
        torch.testing.assert_close(
            F.cross_entropy(logits, t), F.cross_entropy(logits, y, label_smoothing=eps)
        )


# ----------------------------------------------------------------------------------- noise


def test_add_input_noise_statistics_and_replay():
    x = torch.zeros(200, 100)
    g = gen(3)
    ref = replay(g)
    noisy = reg.add_input_noise(x, 0.25, g)
    assert torch.equal(noisy, 0.25 * torch.randn(200, 100, generator=ref))
    assert float(noisy.std()) == pytest.approx(0.25, rel=0.02)
    assert torch.count_nonzero(x) == 0  # input untouched
    assert torch.equal(reg.add_input_noise(x, 0.0, gen(0)), x)


def test_weight_noise_gradient_is_taken_at_the_perturbed_point():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    clean = copy.deepcopy(model.state_dict())
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    g = gen(9)
    ref_g = replay(g)
    # reference: an explicitly perturbed copy, weights only (biases excluded by the filter)
    noisy = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in noisy.named_parameters():
            if name.endswith("weight"):
                p.add_(0.1 * torch.randn(p.shape, generator=ref_g))
    F.mse_loss(noisy(x), y).backward()

    wn = reg.WeightNoise(0.1, g, include=lambda name, p: name.endswith("weight"))
    with wn.perturbed(model):
        for (name, p), q in zip(model.named_parameters(), noisy.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
            assert torch.equal(p, clean[name]) == name.endswith("bias")
        F.mse_loss(model(x), y).backward()
    for name, p in model.named_parameters():
        assert torch.equal(p, clean[name])  # restored exactly
    for p, q in zip(model.parameters(), noisy.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_weight_noise_restores_on_exception():
    model = nn.Linear(2, 2)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(RuntimeError, match="boom"), reg.WeightNoise(1.0, gen()).perturbed(model):
        raise RuntimeError("boom")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("shape", [(7, 40), (7, 2, 40)])
@pytest.mark.parametrize(
    ("max_shift", "scales"), [(0, (1.0, 1.0)), (5, (1.0, 1.0)), (3, (0.8, 1.2))]
)
def test_augment_1d_matches_roll_loop(shape, max_shift, scales):
    x = torch.randn(*shape, generator=gen(1), dtype=torch.float64)
    g = gen(2)
    ref = replay(g)
    out = reg.augment_1d(x, max_shift, scales, g)
    shifts = torch.randint(-max_shift, max_shift + 1, (7,), generator=ref)
    s = scales[0] + (scales[1] - scales[0]) * torch.rand(7, generator=ref, dtype=torch.float64)
    for n in range(7):
        torch.testing.assert_close(out[n], s[n] * torch.roll(x[n], int(shifts[n]), dims=-1))
    if max_shift == 0 and scales == (1.0, 1.0):
        assert torch.equal(out, x)


@pytest.mark.parametrize("shape", [(6, 1, 8, 8), (6, 3, 5, 7), (6, 8, 8)])
@pytest.mark.parametrize("m", [0, 1, 2])
def test_augment_image_matches_translation_loop(shape, m):
    x = torch.rand(*shape, generator=gen(4))
    g = gen(5)
    ref = replay(g)
    out = reg.augment_image(x, m, g)
    dy = torch.randint(-m, m + 1, (6,), generator=ref)
    dx = torch.randint(-m, m + 1, (6,), generator=ref)
    img = x if x.dim() == 4 else x[:, None]
    h, w = img.shape[-2:]
    expected = torch.zeros_like(img)
    for n in range(6):
        for i in range(h):
            for j in range(w):
                si, sj = i - int(dy[n]), j - int(dx[n])
                if 0 <= si < h and 0 <= sj < w:
                    expected[n, :, i, j] = img[n, :, si, sj]
    assert torch.equal(out, expected if x.dim() == 4 else expected[:, 0])


# ------------------------------------------------------------------------------- penalties


def test_penalty_gradients():
    w = [torch.randn(3, 2, requires_grad=True), torch.randn(4, requires_grad=True)]
    reg.l2_penalty(w).backward()
    for p in w:
        torch.testing.assert_close(p.grad, p.detach())
        p.grad = None
    reg.l1_penalty(w).backward()
    for p in w:
        torch.testing.assert_close(p.grad, torch.sign(p.detach()))


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: reg.EarlyStopping(0), "patience must be an integer >= 1, got 0"),
        (lambda: reg.EarlyStopping(3, min_delta=-1.0), "min_delta must be"),
        (lambda: reg.EarlyStopping(3, mode="up"), "mode must be 'min' or 'max'"),
        (lambda: reg.mixup(torch.zeros(4, 2), torch.zeros(3), 0.2, gen()), "same batch size"),
        (lambda: reg.mixup(torch.zeros(4, 2), torch.zeros(4), 0.0, gen()), "alpha must be"),
        (lambda: reg.mixup(torch.zeros(4, 2), torch.zeros(4), 1.0, None), "torch.Generator"),
        (
            lambda: reg.cutmix(torch.zeros(2, 1, 1, 4, 4), torch.zeros(2), 1.0, gen()),
            "cutmix needs",
        ),
        (lambda: reg.smooth_labels(torch.tensor([0]), 3, 1.5), "smoothing must be in"),
        (lambda: reg.add_input_noise(torch.zeros(2), -1.0, gen()), "std must be"),
        (lambda: reg.WeightNoise(float("nan"), gen()), "std must be"),
        (lambda: reg.augment_1d(torch.zeros(2, 5), -1, (1, 1), gen()), "max_shift must be"),
        (lambda: reg.augment_1d(torch.zeros(2, 5), 1, (1.2, 0.8), gen()), "scale_range must"),
        (lambda: reg.augment_1d(torch.zeros(5), 1, (1, 1), gen()), "augment_1d needs"),
        (lambda: reg.augment_image(torch.zeros(2, 8), 1, gen()), "augment_image needs"),
        (lambda: reg.augment_image(torch.zeros(2, 8, 8), 1.5, gen()), "max_translate must be"),
        (lambda: reg.l2_penalty([]), "parameters must not be empty"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_docstring_examples():
    import doctest

    result = doctest.testmod(reg, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
