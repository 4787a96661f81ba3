"""Tiny instrumented runs behind the cards' conceptual sentences on momentum's two forms,
Nesterov's look-ahead, the adaptive methods' rates and moments, schedules and the losses
(L1, entropy, cross-entropy, KL, triplet): float64, a few milliseconds each.

Each returns ``(holds, measured)``: ``holds`` true when the run bears the card's sentence out,
and what it measured, in words; :data:`descentlab.book.card_claims.CLAIMS` binds each to the
phrases it shows and their opposites. Where a run can, it measures descentlab's or torch's own
optimizer, loss or schedule (an independent reference) rather than a loop written here.

Example:
    >>> _step_decay()[0]
    True
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from descentlab.book.checks import shows as _shows


@_shows("torch's SGD (momentum 0.9, lr 0.05 then 0.005 from step 10) on ½x² against the "
        "velocity form u = βu - η∇f, x += u by hand")  # fmt: skip
def _momentum_two_forms() -> tuple[bool, str]:
    """torch's SGD with momentum (the cs231n form: ``v = ρv + ∇f``, ``x -= αv``) against the
    velocity form ``u = βu - η∇f``, ``x += u`` at β = ρ, η = α; the rate drops tenfold at step
    10. The form with the sign of its gradient term turned is run beside them."""
    import torch

    rho, rates = 0.9, [0.05] * 10 + [0.005] * 5
    x = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = torch.optim.SGD([x], lr=rates[0], momentum=rho)
    u = plus = 0.0
    xu, xp, v_hand = 1.0, 1.0, 0.0
    torch_moves, hand_moves, off, off_u, off_v = [], [], 0.0, 0.0, 0.0
    for t, lr in enumerate(rates):
        for group in opt.param_groups:
            group["lr"] = lr
        before = float(x.detach())
        x.grad = x.detach().clone()  # ∇(½x²) = x
        v_hand = rho * v_hand + before  # v = ρv + ∇f
        opt.step()
        u = rho * u - lr * xu  # u = βu - η∇f
        plus = rho * plus + lr * xp  # the sign turned
        xu, xp = xu + u, xp + plus
        torch_moves.append(abs(float(x.detach()) - before))
        hand_moves.append(abs(u))
        if t < 10:
            buf = float(opt.state[x]["momentum_buffer"])
            off = max(off, abs(float(x.detach()) - xu))
            off_v = max(off_v, abs(buf - v_hand))
            off_u = max(off_u, abs(u + lr * buf))
    drop_torch, drop_hand = torch_moves[10] / torch_moves[9], hand_moves[10] / hand_moves[9]
    holds = (max(off, off_u, off_v) < 1e-12 and abs(xp - float(x.detach())) > 0.1
             and drop_torch < 0.2 < 0.5 < drop_hand)  # fmt: skip
    return holds, (
        f"constant rate: x off by {off:.1e}, torch's buffer off ρv + ∇f by {off_v:.1e}, u off "
        f"-αv by {off_u:.1e} (the sign turned ends {abs(xp - float(x.detach())):.2g} away); at "
        f"the drop the step falls to {drop_torch:.2f}× in torch's form, {drop_hand:.2f}× in "
        "the velocity form"
    )


@_shows("one momentum step on ½w² from w = 0.1 with the velocity -0.5 about to overshoot: the "
        "gradient at w and at the look-ahead w + αv, and where each step lands")  # fmt: skip
def _nesterov_corrects() -> tuple[bool, str]:
    """Heavy ball's step αv - η∇f(w) against Nesterov's αv - η∇f(w + αv) (α 0.9, η 0.1)."""
    w, v, alpha, eta = 0.1, -0.5, 0.9, 0.1
    ahead = w + alpha * v
    heavy, nesterov = w + alpha * v - eta * w, w + alpha * v - eta * ahead
    holds = w > 0 > ahead and abs(nesterov) < abs(heavy)
    return holds, (f"∇f {w:.2f} at w, {ahead:.2f} at the look-ahead (points back); heavy ball "
                   f"lands at {heavy:.3f}, Nesterov at {nesterov:.3f}")  # fmt: skip


@_shows("numpy's roots of z² - (1+β-ηλ)z + β at the optimal η, β for κ = 100, nine λ in "
        "[μ, L]: their moduli against √β")  # fmt: skip
def _heavy_ball_roots() -> tuple[bool, str]:
    """The factors of the heavy-ball recurrence at η = 4/(√L+√μ)², β = ((√κ-1)/(√κ+1))²."""
    mu, big = 1.0, 100.0
    eta = 4 / (math.sqrt(big) + math.sqrt(mu)) ** 2
    beta = ((math.sqrt(big / mu) - 1) / (math.sqrt(big / mu) + 1)) ** 2
    moduli = np.array([np.abs(np.roots([1, -(1 + beta - eta * lam), beta]))
                       for lam in np.linspace(mu, big, 9)])  # fmt: skip
    off = float(np.abs(moduli - math.sqrt(beta)).max())
    return off < 1e-6 < abs(math.sqrt(beta) - beta), (
        f"moduli off √β = {math.sqrt(beta):.4f} by {off:.1e} (β = {beta:.4f})"
    )


def _fed(opt_cls: type, grads: np.ndarray, **kw: float) -> tuple[np.ndarray, dict]:
    """descentlab's ``opt_cls`` fed ``grads`` (steps × coordinates): each step's |Δw| and its
    state at the end."""
    import torch

    w = torch.nn.Parameter(torch.zeros(grads.shape[1], dtype=torch.float64))
    opt = opt_cls([w], **kw)
    moves = []
    for g in grads:
        before = w.detach().clone()
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        moves.append((w.detach() - before).abs().numpy())
    return np.array(moves), {k: v.numpy() if hasattr(v, "numpy") else v
                             for k, v in opt.state[w].items()}  # fmt: skip


@_shows(
    "descentlab's Adagrad (lr 0.1): five varied gradients against -ρg/(ε + √r), and a "
    "constant gradient of size 0.01 and 100 for 100 steps: the step against ρ/√t"
)
def _adagrad_rule() -> tuple[bool, str]:
    """The steps of descentlab's Adagrad against the typed rule, and their size on a constant
    gradient against ρ/√t (and ρ/t)."""
    from descentlab.optim import Adagrad

    g = np.array([[0.3, -2.0], [1.5, 0.1], [-0.7, 0.4], [0.2, -3.0], [1.1, 0.9]])
    moves, _ = _fed(Adagrad, g, lr=0.1, eps=1e-10)
    rule = 0.1 * np.abs(g) / (1e-10 + np.sqrt(np.cumsum(g * g, axis=0)))
    off_rule = float(np.abs(moves - rule).max())
    flat, _ = _fed(Adagrad, np.tile([0.01, 100.0], (100, 1)), lr=0.1, eps=1e-10)
    off_t = float(np.abs(flat[-1] - 0.1 / math.sqrt(100)).max())
    holds = off_rule < 1e-12 and off_t < 1e-6 < abs(0.1 / 100 - flat[-1, 0])
    return holds, (
        f"steps off the rule by {off_rule:.1e}; step 100 at G = 0.01 and 100: "
        f"{flat[-1, 0]:.6f}, {flat[-1, 1]:.6f} (ρ/√t = 0.01, ρ/t = 0.001)"
    )


@_shows(
    "descentlab's RMSprop (α 0.8) and Adagrad, lr 0.01, fed gradient 10 for 10 steps then "
    "0.1 for 60: the effective rate |Δw|/|g| at step 10 and at the end"
)
def _rmsprop_forgets() -> tuple[bool, str]:
    """The rate after the gradients shrink: RMSprop's recovers, Adagrad's stays small."""
    from descentlab.optim import Adagrad, RMSprop

    g = np.concatenate([np.full((10, 1), 10.0), np.full((60, 1), 0.1)])
    rms, _ = _fed(RMSprop, g, lr=0.01, alpha=0.8)
    ada, _ = _fed(Adagrad, g, lr=0.01)
    rate = {
        n: (float(m[9, 0] / 10.0), float(m[-1, 0] / 0.1)) for n, m in (("rms", rms), ("ada", ada))
    }
    holds = rate["rms"][1] > 50 * rate["rms"][0] and rate["ada"][1] < rate["ada"][0]
    return holds, (
        f"RMSprop's rate {rate['rms'][0]:.2g} at step 10, {rate['rms'][1]:.2g} at the "
        f"end; Adagrad's {rate['ada'][0]:.2g}, then {rate['ada'][1]:.2g}"
    )


@_shows("descentlab's Adam (β 0.9, 0.999) fed five gradients: its two averages against the "
        "unrolled sums from 0, and r/(1 - β₂ᵗ) on a constant gradient")  # fmt: skip
def _adam_moments() -> tuple[bool, str]:
    """Adam's ``exp_avg`` and ``exp_avg_sq`` against (1-β) Σ β^(t-k) g_k (and β^k), and the
    bias correction of r with β₂ (and with β₁) on a constant gradient 2."""
    from descentlab.optim import Adam

    g = np.array([0.5, -1.0, 2.0, 0.3, 1.2])
    _, state = _fed(Adam, g[:, None], lr=1e-3, betas=(0.9, 0.999))
    t, k = len(g), np.arange(1, len(g) + 1)

    def unrolled(beta: float, x: np.ndarray, power: np.ndarray) -> float:
        return float((1 - beta) * (beta**power * x).sum())

    off_v = abs(float(state["exp_avg"][0]) - unrolled(0.9, g, t - k))
    off_r = abs(float(state["exp_avg_sq"][0]) - unrolled(0.999, g * g, t - k))
    wrong_v = abs(float(state["exp_avg"][0]) - unrolled(0.9, g, k))
    _, flat = _fed(Adam, np.full((5, 1), 2.0), lr=1e-3, betas=(0.9, 0.999))
    r = float(flat["exp_avg_sq"][0])
    hat2, hat1 = r / (1 - 0.999**5), r / (1 - 0.9**5)
    holds = max(off_v, off_r, abs(hat2 - 4)) < 1e-12 and wrong_v > 0.01 and abs(hat1 - 4) > 1
    return holds, (
        f"v off its unrolled sum by {off_v:.1e} (by {wrong_v:.2g} with α₁^k), r by "
        f"{off_r:.1e}; r̂ with α₂ {hat2:.6g}, with α₁ {hat1:.3g} (g² = 4)"
    )


@_shows("descentlab's Adam at lr 1e-3 on gradients of size 0.001, 1 and 1,000 for 20 steps: "
        "each coordinate's step")  # fmt: skip
def _adam_lr_step() -> tuple[bool, str]:
    """The step per coordinate of Adam at lr 1e-3, whatever the gradient's size."""
    from descentlab.optim import Adam

    moves, _ = _fed(Adam, np.tile([1e-3, 1.0, 1e3], (20, 1)), lr=1e-3)
    holds = bool(np.allclose(moves, 1e-3, rtol=1e-3)) and moves[-1, 2] < 1e-3 * 1e3 / 10
    return holds, f"steps {moves.min():.6f} to {moves.max():.6f} (lr = 0.001)"


@_shows("torch's Adam defaults, and three of its steps against θ -= α m̂/(√v̂ + ε) by hand")
def _adam_paper() -> tuple[bool, str]:
    """torch's Adam (Kingma and Ba's Algorithm 1) against the last line by hand, and against
    the same line without the square root."""
    import inspect

    import torch

    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=0.1)
    d = {k: p.default for k, p in inspect.signature(torch.optim.Adam).parameters.items()}
    m = v = np.zeros(2)
    theta, no_root = np.array([1.0, -2.0]), np.array([1.0, -2.0])
    for t, g in enumerate(([0.3, -1.0], [0.5, 2.0], [-0.2, 0.7]), start=1):
        g = np.array(g)
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        mh, vh = m / (1 - 0.9**t), v / (1 - 0.999**t)
        theta, no_root = theta - 0.1 * mh / (np.sqrt(vh) + 1e-8), no_root - 0.1 * mh / (vh + 1e-8)
    off = float(np.abs(w.detach().numpy() - theta).max())
    wrong = float(np.abs(w.detach().numpy() - no_root).max())
    holds = (d["lr"], tuple(d["betas"]), d["eps"]) == (1e-3, (0.9, 0.999), 1e-8) and off < 1e-12
    return holds and wrong > 0.01, (
        f"defaults lr {d['lr']:g}, betas {tuple(d['betas'])}, eps {d['eps']:g}; three steps off "
        f"the last line by {off:.1e} (without the root by {wrong:.2g})"
    )


@_shows("torch's StepLR (step_size 3, γ 0.5) over 10 steps: each step's factor")
def _step_decay() -> tuple[bool, str]:
    """The factor between consecutive rates of torch's StepLR."""
    import torch

    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    factors = [b / a for a, b in itertools.pairwise(rates)]
    halved = [i + 1 for i, f in enumerate(factors) if f != 1.0]
    holds = halved == [3, 6, 9] and all(f in (1.0, 0.5) for f in factors)
    return holds, f"the rate halves at steps {halved}, else unchanged"


@_shows("torch's L1Loss and MSELoss on errors 2 and 10, their gradients by autograd, and "
        "gradient descent at lr 0.3 on |w - 1| and (w - 1)² for 40 steps")  # fmt: skip
def _l1_loss() -> tuple[bool, str]:
    """L1's cost ratio and gradient against MSE's, and where a constant rate leaves each."""
    import torch

    pred = torch.tensor([2.0, 10.0], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(2, dtype=torch.float64)
    l1 = torch.nn.L1Loss(reduction="none")(pred, zero)
    mse = torch.nn.MSELoss(reduction="none")(pred, zero).detach()
    (grad,) = torch.autograd.grad(l1.sum(), pred)
    l1 = l1.detach()
    ends = {}
    for name, slope in (
        ("l1", lambda w: math.copysign(1.0, w - 1)),
        ("mse", lambda w: 2 * (w - 1)),
    ):
        w, last = 0.0, []
        for _ in range(40):
            w -= 0.3 * slope(w)
            last.append(abs(w - 1))
        ends[name] = min(last[-10:])
    ratio = float(l1[1] / l1[0])
    holds = ratio == 5.0 and float(mse[1] / mse[0]) == 25.0 and grad.tolist() == [1.0, 1.0]
    holds = holds and ends["l1"] > 0.05 > 1e-6 > ends["mse"]
    return holds, (
        f"L1 ratio {ratio:g} (MSE {float(mse[1] / mse[0]):g}); L1's gradients "
        f"{grad.tolist()}; nearest |w - 1| over the last 10 steps: L1 "
        f"{ends['l1']:.2g}, MSE {ends['mse']:.1e}"
    )


def _entropy(p: np.ndarray) -> np.ndarray:
    """-Σ p log p along the last axis (0 log 0 = 0)."""
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)


@_shows("the entropy of 500 random distributions on 6 outcomes, of n equal outcomes, and of a "
        "certain one")  # fmt: skip
def _entropy_extremes() -> tuple[bool, str]:
    """H ≤ log 6 with equality at the uniform, a fair coin's H in nats and bits, H = log n."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6), 500)
    top = float(_entropy(p).max())
    uniform = [float(_entropy(np.full(n, 1 / n))) for n in range(2, 9)]
    off = max(abs(h - math.log(n)) for h, n in zip(uniform, range(2, 9), strict=True))
    certain = abs(float(_entropy(np.eye(6)[0])))
    holds = (
        top < math.log(6)
        and off < 1e-12
        and certain == 0
        and abs(uniform[0] / math.log(2) - 1) < 1e-12
    )
    return holds, (
        f"largest of 500 random {top:.4f} < log 6 = {math.log(6):.4f}; n equal "
        f"outcomes off log n by {off:.1e}; a coin {uniform[0]:.4f} nats = 1 bit; "
        f"certain {certain:g}"
    )


@_shows("p, q on 5 outcomes: -Σ p log q against the mean of -log q over 40,000 draws from p, "
        "H(p) + KL(p ‖ q), 300 other q, torch's cross_entropy and KLDivLoss")  # fmt: skip
def _cross_entropy() -> tuple[bool, str]:
    """The cross-entropy read four ways, and torch's KLDivLoss's order of arguments."""
    import torch

    rng = np.random.default_rng(1)
    p, q = np.array([0.5, 0.25, 0.15, 0.07, 0.03]), np.array([0.1, 0.2, 0.2, 0.25, 0.25])
    h_pq, h_qp, h_p = -(p * np.log(q)).sum(), -(q * np.log(p)).sum(), _entropy(p)
    kl = (p * np.log(p / q)).sum()
    drawn = float(-np.log(q[rng.choice(5, 40000, p=p)]).mean())
    others = rng.dirichlet(np.ones(5), 300)
    least = float((-(p * np.log(others)).sum(1)).min())
    logq = torch.tensor(np.log(q))
    one_hot = float(torch.nn.functional.cross_entropy(logq[None], torch.tensor([2])))
    kl_torch = float(torch.nn.KLDivLoss(reduction="sum")(logq, torch.tensor(p)))
    kl_swapped = float(torch.nn.KLDivLoss(reduction="sum")(torch.tensor(np.log(p)),
                                                          torch.tensor(q)))  # fmt: skip
    holds = (abs(drawn - h_pq) < 0.03 < abs(drawn - h_qp) and abs(h_pq - h_p - kl) < 1e-12
             and kl > 0 and least >= h_p and abs(one_hot + math.log(q[2])) < 1e-12
             and abs(kl_torch - kl) < 1e-12 < abs(kl_swapped - kl))  # fmt: skip
    return holds, (
        f"H(p, q) {h_pq:.4f}, drawn from p {drawn:.4f} (scored the other way {h_qp:.4f}); "
        f"H(p) + KL {h_p + kl:.4f}; least over 300 q {least:.4f} ≥ H(p) {h_p:.4f}; one-hot "
        f"{one_hot:.4f} = -log q {-math.log(q[2]):.4f}; KLDivLoss(log Q, P) {kl_torch:.4f}, "
        f"(log P, Q) {kl_swapped:.4f}, KL {kl:.4f}"
    )


@_shows("one Gaussian fitted to two peaks (±2, σ 0.5) on a grid of means and widths: by "
        "forward KL(P ‖ Q) and by reverse KL(Q ‖ P)")  # fmt: skip
def _kl_fits() -> tuple[bool, str]:
    """The best (μ, σ) of a Gaussian Q under each direction of KL, on x in [-6, 6]."""
    x = np.linspace(-6, 6, 241)
    dx = x[1] - x[0]

    def log_normal(m: np.ndarray, s: np.ndarray) -> np.ndarray:
        return -0.5 * ((x - m) / s) ** 2 - np.log(s * math.sqrt(2 * math.pi))

    log_p = np.logaddexp(log_normal(-2.0, 0.5), log_normal(2.0, 0.5)) - math.log(2)
    mus, sigmas = np.meshgrid(np.linspace(-3, 3, 25), np.linspace(0.3, 3.0, 28))
    log_q = log_normal(mus.ravel()[:, None], sigmas.ravel()[:, None])
    forward = (np.exp(log_p) * (log_p - log_q)).sum(1) * dx
    reverse = (np.exp(log_q) * (log_q - log_p)).sum(1) * dx
    fits = {n: (float(mus.ravel()[k.argmin()]), float(sigmas.ravel()[k.argmin()]))
            for n, k in (("forward", forward), ("reverse", reverse))}  # fmt: skip
    (fm, fs), (rm, rs) = fits["forward"], fits["reverse"]
    holds = abs(fm) < 0.5 and fs > 1.5 and abs(abs(rm) - 2) < 0.3 and rs < 0.8
    return holds, (
        f"forward fit μ {fm:.2f}, σ {fs:.2f} (covers both); reverse fit μ {rm:.2f}, "
        f"σ {rs:.2f} (one peak)"
    )


@_shows(
    "torch's triplet_margin_loss (margin 1) on 50 random triplets against the typed "
    "max(d(a, p) - d(a, n) + margin, 0), and its gradients on the positive and negative"
)
def _triplet() -> tuple[bool, str]:
    """The loss as typed, where it is zero, and the pull and push of its gradient."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(50, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    p.requires_grad_(True)
    n.requires_grad_(True)
    loss = torch.nn.functional.triplet_margin_loss(a, p, n, margin=1.0, reduction="none", eps=0)
    dp, dn = (a - p.detach()).norm(dim=1), (a - n.detach()).norm(dim=1)
    typed, swapped = (dp - dn + 1).clamp(min=0), (dn - dp + 1).clamp(min=0)
    gp, gn = torch.autograd.grad(loss.sum(), (p, n))
    loss = loss.detach()
    live = loss > 0
    after_p = (a - (p - 0.01 * gp)).norm(dim=1)[live]
    after_n = (a - (n - 0.01 * gn)).norm(dim=1)[live]
    same = float((gp[live].norm(dim=1) - gn[live].norm(dim=1)).abs().max())
    off = float((loss - typed).abs().max())
    holds = (off < 1e-12 < float((loss - swapped).abs().max())
             and bool((loss[dn >= dp + 1] == 0).all()) and bool((after_p < dp[live]).all())
             and bool((after_n > dn[live]).all()) and same < 1e-12)  # fmt: skip
    return holds, (
        f"off the typed loss by {off:.1e}; {int(live.sum())} live triplets: a step "
        f"against the gradient brings every positive nearer and every negative "
        f"farther, the two gradients' sizes differ by {same:.1e}"
    )


@_shows("the forward and central difference quotients of eˣ at x = 0.5, h = 0.01 and 0.005: "
        "their errors' ratio")  # fmt: skip
def _quotient_errors() -> tuple[bool, str]:
    """How the quotients' errors scale when h halves, and the forward error against ½f''h."""
    x, f = 0.5, math.exp

    def errors(h: float) -> tuple[float, float]:
        forward = (f(x + h) - f(x)) / h - f(x)
        central = (f(x + h) - f(x - h)) / (2 * h) - f(x)
        return forward, central

    (f1, c1), (f2, c2) = errors(0.01), errors(0.005)
    half_fpp = 0.5 * f(x) * 0.01
    holds = abs(f1 / f2 - 2) < 0.02 and abs(c1 / c2 - 4) < 0.02 and abs(f1 / half_fpp - 1) < 0.01
    return holds, (
        f"forward error {f1:.3e} → {f2:.3e} (ratio {f1 / f2:.3f}; ½f''h = "
        f"{half_fpp:.3e}); central {c1:.2e} → {c2:.2e} (ratio {c1 / c2:.3f})"
    )


@_shows(
    "a torch weight's gradient after two backward passes, with and without zero_grad(), "
    "and one zero_grad(), loss.backward(), step() of SGD (lr 0.1) against W - η ∂L/∂W"
)
def _grad_accumulates() -> tuple[bool, str]:
    """``w.grad`` after the same loss's backward twice: summed unless zeroed between; then the
    three lines once, against the typed update."""
    import torch

    w = torch.nn.Parameter(torch.tensor([1.5, -0.5], dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.1)
    grads = []
    for zero in (False, True):
        opt.zero_grad()
        for _ in range(2):
            if zero:
                opt.zero_grad()
            (w**2).sum().backward()
        grads.append(w.grad.clone())
    one = 2 * w.detach()
    before = w.detach().clone()
    opt.zero_grad()
    (w**2).sum().backward()
    opt.step()
    off = float((w.detach() - (before - 0.1 * 2 * before)).abs().max())
    holds = bool(torch.equal(grads[0], 2 * one) and torch.equal(grads[1], one)) and off < 1e-15
    return holds, (
        f"without zero_grad {grads[0].tolist()}, with {grads[1].tolist()} (one: "
        f"{one.tolist()}); the three lines off W - η ∂L/∂W by {off:.1e}"
    )


@_shows("descentlab's SGD (momentum 0.7) fed gradient 1 once, then 0: its buffer over the one "
        "before, step by step")  # fmt: skip
def _velocity_kept() -> tuple[bool, str]:
    """The fraction of the old velocity kept at each step, with no new gradient."""
    from descentlab.optim import SGD

    _, state = _fed(SGD, np.array([[1.0]]), lr=0.1, momentum=0.7)
    first = float(state["momentum_buffer"][0])
    _, state = _fed(SGD, np.array([[1.0], [0.0]]), lr=0.1, momentum=0.7)
    second = float(state["momentum_buffer"][0])
    kept = second / first
    return abs(kept - 0.7) < 1e-15, f"buffer {first:g}, then {second:.6g}: kept {kept:.6g}"


@_shows("torch's cross_entropy with ignore_index against the mean over the other targets, and "
        "against the sum over them divided by all the targets")  # fmt: skip
def _ignore_index() -> tuple[bool, str]:
    """Five examples, two of whose targets are ignore_index: their share of sum and count."""
    import torch

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    target = torch.tensor([0, -100, 2, 1, -100])
    got = float(torch.nn.functional.cross_entropy(logits, target, ignore_index=-100))
    kept = target != -100
    each = torch.nn.functional.cross_entropy(logits[kept], target[kept], reduction="none")
    mean, over_all = float(each.mean()), float(each.sum() / len(target))
    return abs(got - mean) < 1e-12 < abs(got - over_all), (
        f"loss {got:.6f}; the kept targets' mean {mean:.6f}, their sum over all 5 {over_all:.6f}"
    )


@_shows("AdaGrad's first step η g/√h without ε on gradients -3, 0.5, 2 and 0 (h = g²)")
def _adagrad_no_eps() -> tuple[bool, str]:
    """The first step without ε against η·sign(g) and η·g, and 0/0 on a zero gradient."""
    g, eta = np.array([-3.0, 0.5, 2.0]), 0.1
    step = eta * g / np.sqrt(g * g)
    with np.errstate(invalid="ignore", divide="ignore"):
        zero = np.float64(0.0) / np.sqrt(np.float64(0.0))
    holds = bool(np.allclose(step, eta * np.sign(g), rtol=1e-15, atol=0)) and math.isnan(zero)
    holds &= not np.allclose(step, eta * g)
    return holds, f"first steps {step.tolist()} (η·sign(g)); zero gradient: {zero}"


@_shows("gradient descent and heavy ball (β 0.9), both at lr 0.15, on 0.05x² + 5y² from "
        "(-10, 1): |x| after 100 steps")  # fmt: skip
def _ravine_race() -> tuple[bool, str]:
    """How far along the ravine's floor each gets: the gentle slope accumulated or not."""
    lam, eta = np.array([0.1, 10.0]), 0.15
    ends = {}
    for beta in (0.0, 0.9):
        x, step = np.array([-10.0, 1.0]), np.zeros(2)
        for _ in range(100):
            step = beta * step - eta * lam * x
            x = x + step
        ends[beta] = float(abs(x[0]))
    shown = f"|x| after 100 steps: SGD {ends[0.0]:.3g}, momentum {ends[0.9]:.3g}"
    return ends[0.9] < 0.2 * ends[0.0], shown


@_shows("descentlab's SGD (lr 0.3) on f = ½ Σ λ_i x_i², λ = (0.1, 1, 5), 20 steps, against "
        "three one-dimensional runs, one per coordinate")  # fmt: skip
def _coordinates_apart() -> tuple[bool, str]:
    """Gradient descent on a diagonal quadratic: each coordinate's path alone."""
    import torch

    from descentlab.optim import SGD

    lam = torch.tensor([0.1, 1.0, 5.0], dtype=torch.float64)
    start = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    paths = []
    for keep in (None, 0, 1, 2):
        x = torch.nn.Parameter(start.clone() if keep is None else start[keep : keep + 1].clone())
        c = lam if keep is None else lam[keep : keep + 1]
        opt = SGD([x], lr=0.3)
        for _ in range(20):
            x.grad = c * x.detach()
            opt.step()
        paths.append(x.detach())
    off = float((paths[0] - torch.cat(paths[1:])).abs().max())
    return off < 1e-15, f"the joint run off the three one-dimensional runs by {off:.1e}"
