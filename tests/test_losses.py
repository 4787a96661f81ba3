"""Losses against float64 computations written from their equations (seed 004), and seed 000's
derivations: Laplace NLL -> L1 gradient, Gaussian NLL -> L2 gradient, Categorical -> CE."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from descentlab import losses

G = torch.Generator().manual_seed(1234)


def randn(*shape):
    return torch.randn(*shape, generator=G, dtype=torch.float64)


# ----------------------------------------------------------- float64 references from equations


def ref_l1(x, y):
    return (x - y).abs().mean()


def ref_mse(x, y):
    return ((x - y) ** 2).mean()


def ref_half_sse(x, y):
    return 0.5 * ((x - y) ** 2).sum(1).mean()


def ref_huber(x, y, delta):
    a = (x - y).abs()
    return torch.where(a < delta, 0.5 * a**2, delta * (a - 0.5 * delta)).mean()


def ref_smooth_l1(x, y, beta):
    a = (x - y).abs()
    return torch.where(a < beta, 0.5 * a**2 / beta, a - 0.5 * beta).mean()


def ref_bce(p, y):
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def ref_bce_logits(x, y, pos_weight):
    s = 1 / (1 + torch.exp(-x))
    return -(pos_weight * y * torch.log(s) + (1 - y) * torch.log(1 - s)).mean()


def log_softmax(x):
    m = x.max(1, keepdim=True).values
    return x - m - torch.log(torch.exp(x - m).sum(1, keepdim=True))


def ref_ce(x, y, weight=None, ignore_index=-100, smoothing=0.0):
    """Seed 004: l_n = -w_{y_n} log softmax(x_n)_{y_n} 1{y_n != ignore}; mean over sum w."""
    c = x.shape[1]
    w = torch.ones(c, dtype=x.dtype) if weight is None else weight
    num = den = 0.0
    for n in range(x.shape[0]):
        if int(y[n]) == ignore_index:
            continue
        lq = log_softmax(x[n : n + 1])[0]
        wy = w[y[n]]
        # torch's label smoothing: target (1 - eps) onehot + eps / C, class weights on each term
        smooth = -(w * lq).sum() / c
        num = num + (1 - smoothing) * (-wy * lq[y[n]]) + smoothing * smooth
        den = den + wy
    return num / den


def ref_soft_ce(x, p):
    return -(p * log_softmax(x)).sum(1).mean()


def ref_nll_torch(logp, y, weight):
    num = sum(-weight[y[n]] * logp[n, y[n]] for n in range(len(y)))
    return num / weight[y].sum()


def ref_kl(p, q):
    """sum p log(p / q) with 0 log 0 = 0, averaged over the batch (float64, direct)."""
    total = 0.0
    for n in range(p.shape[0]):
        for c in range(p.shape[1]):
            if p[n, c] > 0:
                total += float(p[n, c]) * math.log(float(p[n, c]) / float(q[n, c]))
    return total / p.shape[0]


def _softmax(x):
    return torch.exp(log_softmax(x))


def _probs(n, c, zeros=False):
    p = torch.rand(n, c, generator=G, dtype=torch.float64)
    if zeros:
        p[:, 0] = 0.0
    return p / p.sum(1, keepdim=True)


X, Y = randn(6, 3), randn(6, 3)
P01 = torch.rand(6, 3, generator=G, dtype=torch.float64).clamp(0.05, 0.95)
T01 = (torch.rand(6, 3, generator=G) > 0.5).double()
LOGITS = randn(7, 4)
LABELS = torch.tensor([0, 3, 1, 1, 2, 3, 0])
W = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
PT = _probs(7, 4, zeros=True)  # a target with zeros (0 log 0 = 0)
PF = _probs(7, 4)  # a target without zeros (reverse KL is finite)

CASES = [
    ("l1", {}, X, Y, ref_l1(X, Y)),
    ("mse", {}, X, Y, ref_mse(X, Y)),
    ("half_sse", {}, X, Y, ref_half_sse(X, Y)),
    ("huber", {"delta": 0.7}, X, Y, ref_huber(X, Y, 0.7)),
    ("smooth_l1", {"beta": 0.5}, X, Y, ref_smooth_l1(X, Y, 0.5)),
    ("bce", {}, P01, T01, ref_bce(P01, T01)),
    ("bce_with_logits", {"pos_weight": [2.0, 1.0, 0.5]}, X, T01,
     ref_bce_logits(X, T01, torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64))),
    ("cross_entropy", {}, LOGITS, LABELS, ref_ce(LOGITS, LABELS)),
    ("cross_entropy", {"weight": W.tolist()}, LOGITS, LABELS, ref_ce(LOGITS, LABELS, W)),
    ("cross_entropy", {"weight": W.tolist(), "ignore_index": 3}, LOGITS, LABELS,
     ref_ce(LOGITS, LABELS, W, ignore_index=3)),
    ("cross_entropy", {"label_smoothing": 0.2}, LOGITS, LABELS,
     ref_ce(LOGITS, LABELS, smoothing=0.2)),
    ("cross_entropy", {}, LOGITS, PT, ref_soft_ce(LOGITS, PT)),
    ("nll", {"weight": W.tolist()}, log_softmax(LOGITS), LABELS,
     ref_nll_torch(log_softmax(LOGITS), LABELS, W)),
    ("kl_div_forward", {}, LOGITS, PT, ref_kl(PT, _softmax(LOGITS))),
    ("kl_div_forward", {"input_is_log_probs": True}, log_softmax(LOGITS), PT,
     ref_kl(PT, _softmax(LOGITS))),
    ("kl_div_forward", {}, LOGITS, LABELS,
     ref_kl(F.one_hot(LABELS, 4).double(), _softmax(LOGITS))),
    ("kl_div_reverse", {}, LOGITS, PF, ref_kl(_softmax(LOGITS), PF)),
    ("kl_div_reverse", {"eps": 0.1}, LOGITS, PT,
     ref_kl(_softmax(LOGITS), 0.9 * PT + 0.1 / 4)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kw", "out", "target", "expected"), CASES)
def test_loss_values_match_equations(name, kw, out, target, expected):
    loss = losses.get(name, **kw)
    got = loss(out.clone().requires_grad_(), target)
    assert float(got.detach()) == pytest.approx(float(expected), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(("name", "kw", "out", "target", "expected"), CASES)
def test_reductions_are_consistent(name, kw, out, target, expected):
    kl = name.startswith("kl_div")
    none = losses.get(name, **kw, reduction="none")(out, target)
    total = losses.get(name, **kw, reduction="sum")(out, target)
    torch.testing.assert_close(none.sum(), total)
    if "weight" in kw or "ignore_index" in kw:
        return  # weighted means divide by the sum of the weights, checked above
    per = none.shape[0] if kl or name in ("half_sse",) or none.dim() == 1 else none.numel()
    torch.testing.assert_close(total / per, torch.as_tensor(expected, dtype=total.dtype))


def test_kl_forward_and_reverse_differ_and_reverse_is_inf_on_zeros():
    q_logits = randn(5, 3)
    p = _probs(5, 3)
    fwd = losses.get("kl_div_forward")(q_logits, p)
    rev = losses.get("kl_div_reverse")(q_logits, p)
    assert float(fwd) != pytest.approx(float(rev))  # KL is not symmetric (seed 004)
    # KL(P || Q) = H(P, Q) - H(P)
    h_pq = -(p * log_softmax(q_logits)).sum(1).mean()
    h_p = -(p * torch.log(p)).sum(1).mean()
    torch.testing.assert_close(fwd, h_pq - h_p)
    assert math.isinf(float(losses.get("kl_div_reverse")(q_logits, _probs(5, 3, zeros=True))))
    # gradient of forward KL in the logits is softmax - p (per example, / batch)
    x = q_logits.clone().requires_grad_()
    losses.get("kl_div_forward")(x, p).backward()
    torch.testing.assert_close(x.grad, (_softmax(q_logits) - p) / 5)


# ------------------------------------------------------------------------------- triplet


def _dist(a, b, eps=1e-6):
    return torch.sqrt(((a - b + eps) ** 2).sum())


def ref_triplets(e, labels, mining, margin):
    n = len(labels)
    terms = []
    for a in range(n):
        pos = [j for j in range(n) if j != a and labels[j] == labels[a]]
        neg = [j for j in range(n) if labels[j] != labels[a]]
        if not pos or not neg:
            continue
        if mining == "all":
            for p in pos:
                for q in neg:
                    terms.append(max(float(_dist(e[a], e[p]) - _dist(e[a], e[q])) + margin, 0))
        else:
            p = max(pos, key=lambda j: float(torch.dist(e[a], e[j])))
            q = min(neg, key=lambda j: float(torch.dist(e[a], e[j])))
            terms.append(max(float(_dist(e[a], e[p]) - _dist(e[a], e[q])) + margin, 0))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("mining", ["all", "hard"])
@pytest.mark.parametrize("margin", [0.5, 3.0])
def test_triplet_batch_mining_matches_loop(mining, margin):
    e = randn(9, 4)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 3])  # class 3 has no positive
    got = losses.get("triplet_margin", margin=margin, mining=mining)(e, labels)
    assert float(got) == pytest.approx(ref_triplets(e, labels, mining, margin), rel=1e-10)


def test_triplet_direct_is_torch_and_degenerate_batch():
    a, p, n = randn(4, 3), randn(4, 3), randn(4, 3)
    torch.testing.assert_close(
        losses.triplet_margin(a, p, n, margin=0.3),
        torch.nn.TripletMarginLoss(margin=0.3)(a, p, n),
    )
    e = randn(3, 2).requires_grad_()
    zero = losses.get("triplet_margin")(e, torch.tensor([0, 1, 2]))  # no positives at all
    zero.backward()
    assert float(zero.detach()) == 0.0 and torch.count_nonzero(e.grad) == 0


# ------------------------------------------------------ seed 000: likelihood -> loss derivations


def _grad(loss_fn, mu, y):
    m = mu.clone().requires_grad_()
    loss_fn(m, y).backward()
    return m.grad


@pytest.mark.parametrize("b", [0.5, 1.0, 3.0])
def test_laplace_nll_is_l1(b):
    mu, y = randn(8, 1), randn(8, 1)
    nll = losses.nll("laplace", scale=b)
    n = mu.numel()
    # value: |y - mu| / b + log 2b, averaged
    torch.testing.assert_close(nll(mu, y), ((y - mu).abs() / b + math.log(2 * b)).mean())
    g = _grad(nll, mu, y)
    torch.testing.assert_close(g, torch.sign(mu - y) / (b * n))
    torch.testing.assert_close(g, _grad(losses.get("l1"), mu, y) / b)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0])
def test_gaussian_nll_is_l2(sigma):
    mu, y = randn(8, 2), randn(8, 2)
    nll = losses.nll("gaussian", scale=sigma)
    expected = ((y - mu) ** 2 / (2 * sigma**2) + 0.5 * math.log(2 * math.pi * sigma**2)).mean()
    torch.testing.assert_close(nll(mu, y), expected)
    g = _grad(nll, mu, y)
    torch.testing.assert_close(g, (mu - y) / (sigma**2 * mu.numel()))
    torch.testing.assert_close(g, _grad(losses.get("mse"), mu, y) / (2 * sigma**2))


def test_categorical_nll_is_cross_entropy():
    logits, labels = randn(10, 5), torch.randint(0, 5, (10,), generator=G)
    nll = losses.nll(torch.distributions.Categorical)
    torch.testing.assert_close(nll(logits, labels), F.cross_entropy(logits, labels))
    torch.testing.assert_close(
        _grad(nll, logits, labels), _grad(lambda x, t: F.cross_entropy(x, t), logits, labels)
    )


def test_bernoulli_nll_is_bce_with_logits():
    logits, t = randn(6, 3), T01
    nll = losses.nll("bernoulli")
    torch.testing.assert_close(nll(logits, t), F.binary_cross_entropy_with_logits(logits, t))
    torch.testing.assert_close(
        _grad(nll, logits, t), _grad(losses.get("bce_with_logits"), logits, t)
    )


def test_free_scale_uses_exp_and_matches_closed_form():
    out = randn(6, 2)  # (loc, raw log-scale) per example
    y = randn(6)
    loc, scale = out[:, 0], torch.exp(out[:, 1])
    expected = torch.log(scale) + 0.5 * math.log(2 * math.pi) + (y - loc) ** 2 / (2 * scale**2)
    torch.testing.assert_close(losses.nll("normal")(out, y), expected.mean())
    # Student-t with fixed df against scipy
    st = losses.nll("studentt", df=3.0, reduction="none")(out, y)
    ref = -stats.t.logpdf(y.numpy(), 3.0, loc=loc.numpy(), scale=scale.numpy())
    np.testing.assert_allclose(st.numpy(), ref, rtol=1e-10)


def test_poisson_nll_matches_formula_and_scipy():
    out, y = randn(5, 2), torch.tensor([[0.0, 1.0], [2.0, 5.0], [1.0, 0.0], [3.0, 3.0], [7.0, 1.0]])
    got = losses.nll("poisson", reduction="none")(out, y)
    rate = torch.exp(out)
    ref = -(y * out - rate - torch.lgamma(y + 1))
    torch.testing.assert_close(got, ref)
    np.testing.assert_allclose(got.numpy(), -stats.poisson.logpmf(y.numpy(), rate.numpy()))


def test_distribution_nll_through_registry_and_pickling():
    loss = losses.get("distribution_nll", family="laplace", scale=2.0)
    mu, y = randn(4, 1), randn(4, 1)
    torch.testing.assert_close(loss(mu, y), losses.nll("laplace", scale=2.0)(mu, y))
    ce = losses.get("cross_entropy", weight=[1.0, 2.0])
    labels = torch.tensor([0, 1, 1])
    for fn, out, target in [(loss, mu, y), (ce, randn(3, 2), labels), (losses.get("mse"), mu, y)]:
        clone = pickle.loads(pickle.dumps(fn))
        torch.testing.assert_close(clone(out, target), fn(out, target))


def test_float32_outputs_stay_float32():
    out, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert losses.get("cross_entropy", weight=[1.0, 2.0, 3.0])(out, labels).dtype == torch.float32
    assert losses.get("kl_div_reverse", eps=0.1)(out, labels).dtype == torch.float32
    assert losses.nll("normal", scale=1.0)(out, out.detach()).dtype == torch.float32


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: losses.get("cross_entropyy"), KeyError, "valid names: l1, mse"),
        (lambda: losses.get("cross_entropy", label_smoothing=1.5), ValueError, "label_smoothing"),
        (lambda: losses.get("cross_entropy", label_smoothing=-0.1), ValueError, "label_smoothing"),
        (lambda: losses.get("cross_entropy", weight=[1.0, -1.0]), ValueError, "weight must be"),
        (lambda: losses.get("cross_entropy", ignore_index=1.5), ValueError, "ignore_index"),
        (lambda: losses.get("mse", reduction="avg"), ValueError, "reduction must be one of"),
        (lambda: losses.get("kl_div_forward", reduction="mean"), ValueError, "batchmean"),
        (lambda: losses.get("huber", delta=0.0), ValueError, "delta must be a finite number > 0"),
        (lambda: losses.get("mse", delta=1.0), ValueError, "bad option for loss 'mse'"),
        (lambda: losses.get("triplet_margin", mining="semi"), ValueError, "mining must be"),
        (lambda: losses.get("kl_div_reverse", eps=1.0), ValueError, "eps must be in"),
        (lambda: losses.get("distribution_nll"), ValueError, "needs family"),
        (lambda: losses.get("mse")(torch.zeros(3, 1), torch.zeros(3)), ValueError, "same shape"),
        (lambda: losses.nll("gauss"), KeyError, "valid names: normal, gaussian"),
        (lambda: losses.nll("normal", sigma=1.0), ValueError, r"\['sigma'\] do not belong"),
        (lambda: losses.nll("binomial"), ValueError, "total_count fixed"),
        (lambda: losses.nll("normal", loc=0.0, scale=1.0), ValueError, "all parameters"),
        (lambda: losses.nll(torch.distributions.MultivariateNormal), ValueError, "not supported"),
        (lambda: losses.nll("normal")(torch.zeros(4, 3), torch.zeros(4)), ValueError,
         "2 parameters"),
        (lambda: losses.get("cross_entropy")(torch.zeros(2, 3), torch.zeros(2, 2)), ValueError,
         "probability targets"),
    ],
)  # fmt: skip
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_docstring_examples():
    import doctest

    result = doctest.testmod(losses, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
