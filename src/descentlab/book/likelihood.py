"""Evidence for losses: maximum likelihood through descentlab's NLL losses, the PyTorch
lecture's L1/MSE, cross-entropy, KL (both directions, and the mode-covering vs mode-seeking
fits) and the triplet loss, each against torch or a closed form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from descentlab import losses, optim
from descentlab.book.checks import ck, close, diff_check, from_experiment, within
from descentlab.book.model import Context
from descentlab.book.render.pages import Evidence
from descentlab.report.figures import new_figure

__all__ = [
    "ce_torch",
    "distribution_match",
    "kl_directions",
    "kl_fits",
    "l1_mse",
    "mle",
    "nll",
    "triplet",
]


def _sample(seed: int = 0, n: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1.5 + torch.randn(n, generator=g, dtype=torch.float64)


def mle(ctx: Context) -> Evidence:
    """ŵ = argmax ∏ p(x_i|w): descentlab's Gaussian NLL (reduction 'none') gives each
    -log p(x_i|μ); the product of likelihoods and the sum of logs peak at the same μ."""
    y = _sample()
    loss = losses.nll("normal", scale=1.0, reduction="none")
    mus = torch.linspace(0, 3, 3001, dtype=torch.float64)
    nll = torch.stack([loss(m.expand_as(y), y) for m in mus])  # (mus, samples)
    prod = torch.exp(-nll).prod(1)
    logsum = -nll.sum(1)
    i = 1500
    return Evidence(
        checks=[
            close(
                "iid: log ∏ p(x_i|μ) = Σ log p(x_i|μ) (40 samples, μ = 1.5)",
                float(torch.log(prod[i])),
                float(logsum[i]),
                1e-9,
            ),
            ck(
                "log is monotone: the product and the sum of logs peak at the same μ",
                int(prod.argmax()) == int(logsum.argmax()),
                f"argmax {float(mus[prod.argmax()]):.3f} and {float(mus[logsum.argmax()]):.3f}",
                "equal",
            ),
            close(
                "the maximum-likelihood μ of a Gaussian is the sample mean (grid step 1e-3)",
                float(mus[logsum.argmax()]),
                float(y.mean()),
                5e-4,
            ),
        ]
    )


def nll(ctx: Context, family: str) -> Evidence:
    """A Laplace likelihood gives the L1 loss, a Gaussian the L2 loss: descentlab's NLL
    against torch.distributions, its minimizer against the plain loss's."""
    g = torch.Generator().manual_seed(1)
    y = torch.randn(101, generator=g, dtype=torch.float64) ** 3 + 1.0  # heavy-tailed
    mus = torch.linspace(-1, 3, 4001, dtype=torch.float64)
    if family == "laplace":
        loss = losses.nll("laplace", scale=1.0)
        ref = torch.distributions.Laplace(mus[:, None], 1.0).log_prob(y[None])
        plain = losses.get("l1", reduction="none")
        best, name, formula = float(y.median()), "median", "|y - μ|/b + log 2b"
    else:
        loss = losses.nll("normal", scale=1.0)
        ref = torch.distributions.Normal(mus[:, None], 1.0).log_prob(y[None])
        plain = losses.get("mse", reduction="none")
        best, name, formula = float(y.mean()), "mean", "(y - μ)²/2σ² + log(2πσ²)/2"
    ours = torch.stack([loss(m.expand_as(y), y) for m in mus[::400]])
    err = float((ours + ref[::400].mean(1)).abs().max())
    simple = torch.stack([plain(m.expand_as(y), y).mean() for m in mus])
    ours_all = torch.stack([loss(m.expand_as(y), y) for m in mus])
    arg = float(mus[int(simple.argmin())])
    return Evidence(
        checks=[
            diff_check(
                f"descentlab's NLL = {formula} equals -torch.distributions' log_prob", err, 1e-12
            ),
            ck(
                "minimizing the NLL over μ = minimizing descentlab's "
                f"{'L1' if family == 'laplace' else 'MSE'} loss "
                "(the constants drop out)",
                int(ours_all.argmin()) == int(simple.argmin()),
                f"argmin μ {float(mus[int(ours_all.argmin())]):.3f} (NLL), {arg:.3f} (loss)",
                "the same μ",
            ),
            close(f"and the minimizer is the sample {name} (grid step 1e-3)", arg, best, 1e-3),
        ]
    )


def distribution_match(ctx: Context) -> Evidence:
    """Training makes P_model match P_data: a categorical model trained by descentlab SGD on
    descentlab's cross-entropy converges to the data's class frequencies."""
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    logits = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = optim.SGD([logits], lr=2.0, fused=False)
    ce = losses.get("cross_entropy")
    for _ in range(300):
        opt.zero_grad()
        ce(logits.expand(len(y), 3), y).backward()
        opt.step()
    p = torch.softmax(logits.detach(), 0)
    return Evidence(
        checks=[
            diff_check(
                "softmax(logits) after 300 steps (lr 2) vs the data's frequencies 0.5, 0.3, 0.2",
                float((p - torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)).abs().max()),
                1e-6,
            ),
        ]
    )


#: each loss's claim and its per-example values on the predictions (3, 11) of targets (1, 1)
_L1_MSE = {
    "l1": ("descentlab l1: |3-1| = 2, |11-1| = 10 (each error weighs as it is)", [2.0, 10.0]),
    "mse": ("descentlab mse: (3-1)² = 4, (11-1)² = 100: large errors weigh more", [4.0, 100.0]),
}


def l1_mse(ctx: Context, which: str) -> Evidence:
    what, want = _L1_MSE[which]
    v = losses.get(which, reduction="none")(torch.tensor([3.0, 11.0]), torch.tensor([1.0, 1.0]))
    return Evidence(checks=[ck(what, v.tolist() == want, v.tolist(), want)])


def ce_torch(ctx: Context) -> Evidence:
    """l_n = -w_{y_n} log softmax(x_n)_{y_n}, ignore_index skipped, weighted mean."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 1, 1, 0, -100, 2, 3])
    w = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    keep = y != -100
    logp = F.log_softmax(x, 1)
    yk = y[keep]
    ln = -w[yk] * logp[keep].gather(1, yk[:, None])[:, 0]
    formula = ln.sum() / w[yk].sum()
    ours = losses.get("cross_entropy", weight=w, ignore_index=-100)(x, y)
    ref = F.cross_entropy(x, y, weight=w, ignore_index=-100)
    return Evidence(
        checks=[
            close(
                "descentlab's cross_entropy (weights, ignore_index) = the lecture's formula",
                float(ours),
                float(formula),
                1e-12,
            ),
            close("= torch's CrossEntropyLoss", float(ours), float(ref), 1e-12),
        ]
    )


def kl_directions(ctx: Context) -> Evidence:
    """Forward D_KL(P‖Q) and reverse D_KL(Q‖P) by descentlab's losses against the sums, and
    the information experiment's asymmetry checks."""
    p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    q = torch.tensor([[0.3, 0.3, 0.4]], dtype=torch.float64)
    fwd = float(losses.get("kl_div_forward", input_is_log_probs=True)(q.log(), p))
    rev = float(losses.get("kl_div_reverse", input_is_log_probs=True)(q.log(), p))
    ev = from_experiment("information", "symmetric", "smallest at Q = P")(ctx)
    ev.checks += [
        close(
            "descentlab kl_div_forward = Σ P log(P/Q)", fwd, float((p * (p / q).log()).sum()), 1e-12
        ),
        close(
            "descentlab kl_div_reverse = Σ Q log(Q/P)", rev, float((q * (q / p).log()).sum()), 1e-12
        ),
        ck(
            "and the two directions differ",
            abs(fwd - rev) > 0.01,
            f"{fwd:.4f} vs {rev:.4f}",
            "differ by > 0.01",
        ),
    ]
    return ev


def kl_fits(ctx: Context) -> Evidence:
    """Fit one Gaussian Q (from μ 0.5, σ 0.5) to a two-mode P on a grid by descentlab Adam on
    descentlab's kl_div_forward (mode-covering: Q spreads over both modes) and kl_div_reverse
    (mode-seeking: Q sits on one mode)."""
    xs = torch.linspace(-6, 6, 601, dtype=torch.float64)

    def normal(mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
        d = torch.exp(-0.5 * ((xs - mu) / sd) ** 2)
        return d / d.sum()

    p = 0.5 * normal(torch.tensor(-2.0), torch.tensor(0.6)) + 0.5 * normal(
        torch.tensor(2.0), torch.tensor(0.6)
    )
    fits = {}
    for name in ("kl_div_forward", "kl_div_reverse"):
        mu = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
        log_sd = torch.nn.Parameter(torch.tensor(math.log(0.5), dtype=torch.float64))
        opt = optim.Adam([mu, log_sd], lr=0.05)
        loss = losses.get(name, input_is_log_probs=True, reduction="sum")
        for _ in range(600):
            opt.zero_grad()
            q = normal(mu, log_sd.exp())
            loss(torch.log(q.clamp_min(1e-300))[None], p[None]).backward()
            opt.step()
        fits[name] = (float(mu.detach()), float(log_sd.detach().exp()))
    fig = new_figure(8.0, 3.4)
    ax = fig.subplots()
    ax.plot(xs, p, color="black", lw=2, label="P (two modes)")
    for name, color, label in (
        ("kl_div_forward", "#0072B2", "forward KL(P‖Q): covers both modes"),
        ("kl_div_reverse", "#D55E00", "reverse KL(Q‖P): seeks one mode"),
    ):
        m, s = fits[name]
        ax.plot(
            xs,
            normal(torch.tensor(m), torch.tensor(s)),
            color=color,
            lw=1.8,
            label=f"{label} (μ {m:.2f}, σ {s:.2f})",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)
    ax.set_title(
        "One Gaussian fitted to a two-mode P by each direction of KL (descentlab Adam)", fontsize=10
    )
    mf, sf = fits["kl_div_forward"]
    mr, sr = fits["kl_div_reverse"]
    return Evidence(
        checks=[
            within("forward KL: the fit centres between the modes (|μ|)", abs(mf), 0, 0.05),
            within(
                "and spreads over both: σ ≈ √(2² + 0.6²) = 2.09 (moment matching)", sf, 2.0, 2.2
            ),
            within("reverse KL: the fit sits on one mode (|μ| near 2)", abs(mr), 1.9, 2.1),
            within("with that mode's width (σ near 0.6)", sr, 0.5, 0.7),
        ],
        figures=[fig],
    )


def triplet(ctx: Context) -> Evidence:
    """Triplet margin loss: descentlab's against torch's, and training with it pulls the
    positive in and pushes the negative out."""
    g = torch.Generator().manual_seed(0)
    a, p_, n = (torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    ref = torch.nn.TripletMarginLoss(margin=1.0)(a, p_, n)
    ours = losses.triplet_margin(a, p_, n, margin=1.0)
    emb = torch.nn.Parameter(torch.stack([a, p_, n]))
    opt = optim.SGD([emb], lr=0.1)
    d = torch.nn.functional.pairwise_distance
    before = (float(d(a, p_).mean()), float(d(a, n).mean()))
    for _ in range(100):
        opt.zero_grad()
        losses.triplet_margin(emb[0], emb[1], emb[2], margin=1.0).backward()
        opt.step()
    e = emb.detach()
    after = (float(d(e[0], e[1]).mean()), float(d(e[0], e[2]).mean()))
    return Evidence(
        checks=[
            close(
                "descentlab triplet_margin = torch's TripletMarginLoss",
                float(ours),
                float(ref),
                1e-12,
            ),
            ck(
                "100 SGD steps on it pull anchor and positive together",
                after[0] < before[0],
                f"{after[0]:.3f}",
                f"< {before[0]:.3f}",
            ),
            ck(
                "and push anchor and negative apart",
                after[1] > before[1],
                f"{after[1]:.3f}",
                f"> {before[1]:.3f}",
            ),
        ]
    )
