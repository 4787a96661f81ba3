"""Evidence for the lectures' update rules: descentlab's optimizers against the float64 loops
of :mod:`descentlab.book.reference` (both backends, each named on its check), and the rules'
properties measured on the optimizers themselves (memory length, noise, per-coordinate steps,
rare features, the state Adadelta keeps, the bias correction's first step).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from descentlab import optim
from descentlab import schedules as S
from descentlab.book import reference as R
from descentlab.book.checks import ck, close, diff_check, formula_checks, run_optimizer
from descentlab.book.model import Context
from descentlab.book.render.pages import Evidence

__all__ = [
    "adadelta_state",
    "adagrad_formula",
    "adagrad_rare_features",
    "adam_defaults",
    "adam_first_step",
    "adam_formula",
    "adam_is_rms_plus_momentum",
    "alpha_zero",
    "change_of_variables",
    "cs231n_form",
    "memory_length",
    "momentum_ramp",
    "momentum_smooths_noise",
    "nesterov_formula",
    "rms_formula",
    "rms_per_coordinate",
    "sgd_formula",
    "velocity_formula",
]


def sgd_formula(ctx: Context, lr: float = 0.1) -> Evidence:
    """w ← w - η ∇L(w) against descentlab SGD."""
    return Evidence(
        checks=formula_checks(
            f"w ← w - η∇L(w), η = {lr}",
            lambda p, **k: optim.SGD(p, lr=lr, **k),
            lambda w, g: R.sgd(w, g, lr, 30),
        )
    )


def velocity_formula(ctx: Context, text: str, lr: float = 0.05, beta: float = 0.9) -> Evidence:
    """The lectures' velocity form v ← βv - η∇L, w ← w + v against Momentum(form='velocity')."""
    return Evidence(
        checks=formula_checks(
            f"{text} (β {beta}, η {lr})",
            lambda p, **k: optim.Momentum(p, lr=lr, momentum=beta, form="velocity", **k),
            lambda w, g: R.velocity(w, g, lr, beta, 30),
        )
    )


def cs231n_form(ctx: Context, text: str) -> Evidence:
    """v ← ρv + ∇f; x ← x - αv (the torch/cs231n form) against descentlab Momentum and
    torch.optim.SGD."""
    lr, mu = 0.05, 0.9
    ev = Evidence(
        checks=formula_checks(
            f"{text} (ρ {mu}, α {lr})",
            lambda p, **k: optim.Momentum(p, lr=lr, momentum=mu, **k),
            lambda w, g: R.cs231n_momentum(w, g, lr, mu, 40),
            steps=40,
        )
    )
    return _against_torch(
        ev,
        lambda p, **k: optim.Momentum(p, lr=lr, momentum=mu, **k),
        lambda p: torch.optim.SGD(p, lr=lr, momentum=mu),
        40,
        f"torch.optim.SGD(momentum={mu})",
    )


def _against_torch(
    ev: Evidence, make: Callable, torch_make: Callable, steps: int, name: str
) -> Evidence:
    """``ev`` with descentlab's eager and fused steps (``make``) checked against torch.optim's
    (``torch_make``, called ``name``) over ``steps`` steps."""
    b = run_optimizer(torch_make, steps)
    for backend, fused in (("eager", False), ("fused", True)):
        a = run_optimizer(make, steps, fused=fused)
        ev.checks.append(
            diff_check(
                f"and {name} — descentlab {backend} backend", float(np.abs(a - b).max()), 1e-12
            )
        )
    return ev


def nesterov_formula(ctx: Context, text: str) -> Evidence:
    """v ← αv - η∇L(w + αv), w ← w + v (lookahead) against Nesterov(lookahead=True)."""
    lr, beta = 0.05, 0.9
    return Evidence(
        checks=formula_checks(
            f"{text} (α {beta}, η {lr})",
            lambda p, **k: optim.Nesterov(
                p, lr=lr, momentum=beta, lookahead=True, form="velocity", **k
            ),
            lambda w, g: R.lookahead_nesterov(w, g, lr, beta, 30),
            closure=True,
        )
    )


def adagrad_formula(ctx: Context, text: str, eps: float, inside: bool) -> Evidence:
    lr = 0.1
    return Evidence(
        checks=formula_checks(
            f"{text} (η {lr}, ε {eps:g}{' inside the root' if inside else ''})",
            lambda p, **k: optim.Adagrad(p, lr=lr, eps=eps, eps_inside_sqrt=inside, **k),
            lambda w, g: R.adagrad(w, g, lr, eps, 30, inside=inside),
        )
    )


def rms_formula(ctx: Context, text: str, eps: float, inside: bool, rho: float = 0.9) -> Evidence:
    lr = 0.01
    return Evidence(
        checks=formula_checks(
            f"{text} (η {lr}, ρ {rho}, ε {eps:g}{' inside the root' if inside else ''})",
            lambda p, **k: optim.RMSprop(p, lr=lr, alpha=rho, eps=eps, eps_inside_sqrt=inside, **k),
            lambda w, g: R.rmsprop(w, g, lr, rho, eps, 30, inside=inside),
        )
    )


def adam_formula(
    ctx: Context,
    text: str,
    inside: bool = False,
    bias: bool = True,
    eps: float = 1e-8,
    folded: bool = False,
) -> Evidence:
    """Adam's printed forms against descentlab Adam (``folded``: lecture 002's corrections in
    the step size, which equals Adam with ε inside the root up to how ε is scaled)."""
    lr, b1, b2 = 0.01, 0.9, 0.999
    if folded:
        return Evidence(
            checks=formula_checks(
                f"{text} (η {lr}, ε {eps:g}; ε scales differently: tolerance 1e-6)",
                lambda p, **k: optim.Adam(p, lr=lr, eps=eps, eps_inside_sqrt=True, **k),
                lambda w, g: R.adam_folded(w, g, lr, b1, b2, eps, 30),
                tol=1e-6,
            )
        )
    return Evidence(
        checks=formula_checks(
            f"{text} (η {lr}, β {b1}/{b2}, ε {eps:g})",
            lambda p, **k: optim.Adam(
                p, lr=lr, eps=eps, eps_inside_sqrt=inside, bias_correction=bias, **k
            ),
            lambda w, g: R.adam(w, g, lr, b1, b2, eps, 30, bias_correction=bias, inside=inside),
        )
    )


def adam_torch(ctx: Context) -> Evidence:
    """Algorithm 1 against the loop and torch.optim.Adam, both backends."""
    ev = adam_formula(
        ctx, "Algorithm 1 (Kingma & Ba): m̂ = m/(1-β1^t), v̂ = v/(1-β2^t), θ -= α m̂/(√v̂ + ε)"
    )
    return _against_torch(
        ev,
        lambda p, **k: optim.Adam(p, lr=0.01, **k),
        lambda p: torch.optim.Adam(p, lr=0.01),
        50,
        "torch.optim.Adam",
    )


def adam_is_rms_plus_momentum(ctx: Context) -> Evidence:
    """Adam with β1 = 0 is RMSProp; Adam is RMSProp's scale on momentum's average."""
    ev = Evidence()
    for name, fused in (("eager", False), ("fused", True)):
        a = run_optimizer(
            lambda p, **k: optim.Adam(p, lr=0.01, betas=(0.0, 0.9), bias_correction=False, **k),
            40,
            fused=fused,
        )
        r = run_optimizer(lambda p, **k: optim.RMSprop(p, lr=0.01, alpha=0.9, **k), 40, fused=fused)
        moved = float(np.abs(a[-1] - a[0]).max())
        ev.checks.append(
            ck(
                f"Adam with β1 = 0 (no momentum) is RMSProp — descentlab {name} backend",
                float(np.abs(a - r).max()) < 1e-12 and moved > 1e-3,
                f"max |diff| {float(np.abs(a - r).max()):.1e} (moved {moved:.2g})",
                "< 1e-12",
            )
        )
    ev.checks += formula_checks(
        "Adam = RMSProp's 1/√v scale on momentum's running mean m (both bias-corrected)",
        lambda p, **k: optim.Adam(p, lr=0.01, **k),
        lambda w, g: R.adam(w, g, 0.01, 0.9, 0.999, 1e-8, 30),
    )
    return ev


def memory_length(ctx: Context) -> Evidence:
    """β sets the memory: feed descentlab Momentum one unit gradient then zeros; the
    parameter's total displacement is η Σ β^k = η/(1-β), and the step k back weighs β^k."""
    checks = []
    halves = {}
    for beta in (0.5, 0.9, 0.99):
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = optim.Momentum([w], lr=1.0, momentum=beta, form="velocity", fused=False)
        steps = []
        for k in range(4000):
            w.grad = torch.full_like(w, 1.0 if k == 0 else 0.0)
            before = float(w.detach())
            opt.step()
            steps.append(before - float(w.detach()))
        total = sum(steps)
        checks.append(
            close(
                f"β = {beta}: one gradient's total effect on w (descentlab Momentum) is η/(1-β)",
                total,
                1 / (1 - beta),
                1e-9,
                rel=True,
            )
        )
        # the half-life: steps until that gradient's weight in the step falls below half
        half = next(i for i, s in enumerate(steps) if s <= 0.5 * steps[0])
        halves[beta] = half
    expect = {b: math.ceil(math.log(0.5) / math.log(b)) for b in halves}
    checks.append(
        ck(
            "β closer to 1 remembers longer: the half-life of a gradient's weight, measured "
            "on the optimizer's steps, equals ⌈log ½ / log β⌉ and grows with β",
            halves == expect and halves[0.5] < halves[0.9] < halves[0.99],
            ", ".join(f"β {b}: {h}" for b, h in halves.items()),
            ", ".join(f"β {b}: {h}" for b, h in expect.items()),
        )
    )
    return Evidence(checks=checks)


def momentum_smooths_noise(ctx: Context) -> Evidence:
    """Gradients of pure noise (variance 1) fed to descentlab Momentum (torch/cs231n form,
    lr 1): the averaged gradient (1-β)·buffer keeps (1-β)/(1+β) of the variance."""
    gen = torch.Generator().manual_seed(0)
    n = 20_000
    checks = []
    for beta in (0.5, 0.9):
        w = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
        opt = optim.Momentum([w], lr=1.0, momentum=beta, fused=False)
        prev = w.detach().clone()
        for _ in range(80):  # β^80 < 3e-4: the start is forgotten
            w.grad = torch.randn(n, generator=gen, dtype=torch.float64)
            prev = w.detach().clone()
            opt.step()
        avg = (prev - w.detach()) * (1 - beta)  # the step is the buffer: Σ β^k g
        var = float(avg.var())
        # the variance of a sample variance of n values: 2σ⁴/(n-1); 5 standard errors
        tol = 5 * math.sqrt(2 / (n - 1))
        checks.append(
            close(
                f"β = {beta}: the noise variance left in momentum's average (1-β)Σβ^k g over "
                f"{n:,} coordinates",
                var,
                (1 - beta) / (1 + beta),
                tol,
                rel=True,
            )
        )
    return Evidence(
        checks=checks,
        notes=["The tolerance is 5 standard errors of a variance estimated from that many values."],
    )


def alpha_zero(ctx: Context) -> Evidence:
    """α = 0: momentum is plain SGD (both backends)."""
    ev = Evidence()
    for name, fused in (("eager", False), ("fused", True)):
        a = run_optimizer(
            lambda p, **k: optim.Momentum(p, lr=0.1, momentum=0.0, form="velocity", **k),
            30,
            fused=fused,
        )
        b = R.sgd(R.QUADRATIC.w0.copy(), R.QUADRATIC.grad, 0.1, 30)
        ev.checks.append(
            diff_check(
                f"α = 0: Momentum(form='velocity') equals the loop of w ← w - η∇L — {name} backend",
                float(np.abs(a - b).max()),
                1e-12,
            )
        )
    # α → 1 smoother: fewer sign changes of the step across a steep coordinate
    flips = {}
    for beta in (0.0, 0.5, 0.9):
        path = run_optimizer(
            lambda p, b=beta, **k: optim.Momentum(p, lr=0.2, momentum=b, form="velocity", **k),
            60,
            fused=False,
        )
        d = np.diff(path[:, 3])  # the steepest coordinate (a = 9): lr 0.2 overshoots it
        flips[beta] = int((np.sign(d[1:]) != np.sign(d[:-1])).sum())
    ev.checks.append(
        ck(
            "larger α, smoother trajectory: sign changes of the steps along the steepest "
            "coordinate (lr 0.2, 60 steps) fall as α grows 0 → 0.5 → 0.9",
            flips[0.0] > flips[0.5] > flips[0.9],
            ", ".join(f"α {b}: {f}" for b, f in flips.items()),
            "decreasing",
        )
    )
    return ev


def momentum_ramp(ctx: Context) -> Evidence:
    """α raised from 0.5 to 0.99 over training: a Scheduler on the 'momentum' key."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = optim.Momentum([p], lr=0.01, momentum=0.5)
    sch = S.Scheduler(opt, {"momentum": S.linear(0.5, 0.99, 500, base=1.0)})
    vals = []
    for _ in range(600):
        vals.append(opt.param_groups[0]["momentum"])
        p.grad = torch.zeros_like(p)
        opt.step()
        sch.step()
    return Evidence(
        checks=[
            close("momentum starts at 0.5", vals[0], 0.5, 1e-12),
            close("halfway (step 250) it is 0.745", vals[250], 0.745, 1e-12),
            close("and from step 500 on it is 0.99", vals[-1], 0.99, 1e-12),
        ]
    )


def change_of_variables(ctx: Context) -> Evidence:
    """x̃ = x + ρv: the change-of-variables form's iterates are the lookahead form's shifted
    iterates, and its code line x += -ρ v_old + (1+ρ) v."""
    lr, rho = 0.05, 0.9
    p = R.QUADRATIC
    look = R.lookahead_nesterov(p.w0.copy(), p.grad, lr, rho, 30)
    v = np.diff(look, axis=0)
    tilde = np.vstack([look[:1], look[1:] + rho * v])
    ev = Evidence()
    for name, fused in (("eager", False), ("fused", True)):
        cv = run_optimizer(
            lambda p_, **k: optim.Nesterov(p_, lr=lr, momentum=rho, form="velocity", **k),
            30,
            fused=fused,
        )
        e = float(np.abs(cv - tilde).max())
        ev.checks.append(
            diff_check(
                "Nesterov(form='velocity') (x += -ρ v_old + (1+ρ) v) follows x̃_t = x_t + ρ v_t "
                f"of the lookahead loop, 30 steps — {name} backend",
                e,
                1e-12,
            )
        )
    return ev


def adam_defaults(ctx: Context) -> Evidence:
    """β1 0.9, β2 0.999, lr 1e-3 are descentlab Adam's defaults, and both lectures' first
    tries (1e-3 and 5e-4) converge on the book's quadratic."""
    g = optim.Adam([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]
    p = R.QUADRATIC
    ev = Evidence(
        checks=[
            ck(
                "descentlab Adam's defaults are the lecture's β1 0.9, β2 0.999, lr 1e-3",
                tuple(g["betas"]) == (0.9, 0.999) and g["lr"] == 1e-3,
                f"betas {tuple(g['betas'])}, lr {g['lr']:g}",
                "(0.9, 0.999), 1e-3",
            )
        ]
    )
    loss0 = p.loss(p.w0)
    for lr in (1e-3, 5e-4):
        path = run_optimizer(lambda q, r=lr, **k: optim.Adam(q, lr=r, **k), 500, fused=False)
        drop = [p.loss(w) for w in path]
        ev.checks.append(
            ck(
                f"with lr {lr:g} descentlab Adam makes steady progress: the loss falls at every "
                "one of 500 steps",
                bool((np.diff(drop) < 0).all()),
                f"{loss0:.3f} → {drop[-1]:.3f}",
                "strictly decreasing",
            )
        )
    return ev


def adam_first_step(ctx: Context) -> Evidence:
    """Without bias correction the first step is (1-β1)/√(1-β2) times the corrected one."""
    g = torch.tensor([0.3, -2.0, 5e-3], dtype=torch.float64)
    ev = Evidence()
    for name, fused in (("eager", False), ("fused", True)):
        steps = {}
        for bc in (True, False):
            w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
            opt = optim.Adam([w], lr=1e-3, eps=0.0, bias_correction=bc, fused=fused)
            w.grad = g.clone()
            opt.step()
            steps[bc] = w.detach().clone()
        ratio = (steps[False] / steps[True]).numpy()
        expect = (1 - 0.9) / math.sqrt(1 - 0.999)
        ev.checks.append(
            diff_check(
                f"first step without / with correction = (1-β1)/√(1-β2) = {expect:.4f} in every "
                f"coordinate — {name} backend",
                float(np.abs(ratio - expect).max()),
                1e-12,
            )
        )
    return ev


def rms_per_coordinate(ctx: Context) -> Evidence:
    """Gradients 100, 1, 0.01: RMSProp's first steps are one size in every coordinate
    (η/√(1-ρ)), SGD's are proportional to the gradient."""
    ev = Evidence()
    gvec = torch.tensor([100.0, 1.0, 0.01], dtype=torch.float64)
    for name, fused in (("eager", False), ("fused", True)):
        w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        opt = optim.RMSprop([w], lr=0.01, alpha=0.99, eps=0.0, fused=fused)
        w.grad = gvec.clone()
        opt.step()
        steps = (-w.detach()).tolist()
        ev.checks.append(
            diff_check(
                "RMSProp (η 0.01, ρ 0.99, ε 0), gradients 100, 1, 0.01: every first step is "
                f"η/√(1-ρ) = 0.1 ({', '.join(f'{x:.4f}' for x in steps)}) — {name} backend",
                max(abs(x - 0.1) for x in steps),
                1e-12,
            )
        )
    return ev


def adagrad_rare_features(ctx: Context) -> Evidence:
    """AdaGrad gives rarely-updated parameters larger steps: one coordinate gets a gradient
    every step, the other every tenth; after 200 steps the rare one moves more per update."""
    ev = Evidence()
    for name, fused in (("eager", False), ("fused", True)):
        w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        opt = optim.Adagrad([w], lr=0.1, eps=1e-10, fused=fused)
        last = {}
        for t in range(200):
            g = torch.tensor([1.0, 1.0 if t % 10 == 0 else 0.0], dtype=torch.float64)
            w.grad = g
            before = w.detach().clone()
            opt.step()
            step = (before - w.detach()).abs()
            last[0] = float(step[0])
            if t % 10 == 0:
                last[1] = float(step[1])
        ratio = last[1] / last[0]
        ev.checks.append(
            close(
                "per-update step of the rare coordinate / the frequent one after 200 steps "
                f"= √(200/20) — {name} backend",
                ratio,
                math.sqrt(200 / 20),
                1e-6,
                rel=True,
            )
        )
    return ev


def adadelta_state(ctx: Context) -> Evidence:
    """Adadelta keeps two running averages, not a window: its state stays 2 numbers per
    parameter however long it runs, and the average G weighs the last 1/(1-γ) squared
    gradients most."""
    gamma = 0.9
    w = torch.nn.Parameter(torch.zeros(50, dtype=torch.float64))
    opt = optim.Adadelta([w], lr=1.0, rho=gamma, eps=1e-6, fused=False)
    sizes = []
    sq = []
    gen = torch.Generator().manual_seed(0)
    for t in range(300):
        g = torch.randn(50, generator=gen, dtype=torch.float64)
        w.grad = g
        sq.append(g * g)
        opt.step()
        if t in (9, 299):
            st = opt.state[w]
            sizes.append(
                sum(v.numel() for v in st.values() if torch.is_tensor(v) and v.numel() > 1)
            )
    acc = opt.state[w]["square_avg"]
    # the EMA equals Σ (1-γ) γ^k g²_{t-k}: recompute it from the window of all 300 squares
    ema = sum((1 - gamma) * gamma**k * sq[-1 - k] for k in range(300))
    return Evidence(
        checks=[
            ck(
                "descentlab Adadelta's state holds 2 numbers per parameter after 10 and after 300 "
                "steps (a window of w squared gradients would hold w)",
                sizes == [100, 100],
                f"{sizes[0]} and {sizes[1]} numbers for 50 parameters",
                "100 and 100",
            ),
            diff_check(
                "its G (square_avg) is the exponentially weighted sum Σ(1-γ)γ^k g²_{t-k} (γ 0.9) "
                "of all 300 squared gradients",
                float((acc - ema).abs().max()),
                1e-12,
            ),
        ]
    )
