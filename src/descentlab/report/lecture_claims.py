"""Every concrete item of the five lectures, in order, with what shows and checks it.

:data:`LECTURES` lists the lectures of ``shared/seeds`` (000-004), each with its items --
formulas, algorithms, examples, figures, tables and claims -- in the order the lecture gives
them. An item's evidence is computed when the book is built
(:func:`descentlab.report.lecture_book.write_book`): checks from a lecture experiment, from a
lecture figure's runs, or from a small computation against an independent reference (torch's
own optimizers, losses and layers, scipy, closed forms, a float64 loop of the lecture's
equations).

``python -m descentlab.report.lecture_claims`` prints the coverage table (item, where it is
shown) that ``docs/lectures-coverage.md`` holds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler as TL

from descentlab import losses, optim, regularize
from descentlab import schedules as S
from descentlab.experiments.lectures._common import format_value
from descentlab.problems import convarith as ca
from descentlab.problems import data as datasets
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import run as trajectories
from descentlab.report import experiment_figures as EF
from descentlab.report import figures as FG
from descentlab.report import lecture_figures as LF
from descentlab.report.claim_figures import PANELS, panel_figure
from descentlab.report.figures import basin_labels, family_chains, final_loss_table
from descentlab.report.lecture_items import Check, Claim, Context, Evidence, Lecture

__all__ = ["EXPERIMENTS", "LECTURES", "coverage_markdown"]

#: The lecture experiments the book uses, the longest first (the order they are run in).
EXPERIMENTS: tuple[str, ...] = (
    "regularization", "schedules", "momentum_forms", "sharpness", "ensembles", "adaptive",
    "minibatch", "closed_form", "momentum", "bias_variance", "convolution", "information",
)  # fmt: skip


# ------------------------------------------------------------------------------------------
# helpers


def _fmt(x: Any) -> str:
    return x if isinstance(x, str) else format_value(x)


def ck(text: str, ok: bool, measured: Any, expected: Any) -> Check:
    return Check(text, bool(ok), _fmt(measured), _fmt(expected))


def _diff_check(text: str, err: float, tol: str) -> Check:
    """A check that a largest absolute difference ``err`` is below ``tol`` (as written)."""
    return ck(text, err < float(tol), f"max |diff| {err:.1e}", f"< {tol}")


def close(text: str, measured: float, expected: float, tol: float, rel: bool = False) -> Check:
    """A check that ``measured`` is within ``tol`` (absolute, or relative) of ``expected``."""
    err = abs(measured - expected) / (abs(expected) if rel else 1.0)
    shown = f"{tol:.0e}" if tol < 1e-3 else f"{tol:g}"
    return ck(text, err <= tol, measured, f"{_fmt(expected)} ± {shown}{' (rel.)' if rel else ''}")


def from_experiment(
    name: str,
    *needles: str,
    panel: str | None = None,
    whole: bool = False,
    note: str = "",
) -> Callable[[Context], Evidence]:
    """Evidence from lecture experiment ``name``: the checks whose text contains one of
    ``needles`` (all checks when none), with a claim panel or the experiment's figure."""

    def make(ctx: Context) -> Evidence:
        r = ctx.experiment(name)
        checks = []
        for text, ok in r.checks.items():
            if needles and not any(n.lower() in text.lower() for n in needles):
                continue
            m = r.measured.get(text, {})
            checks.append(
                Check(
                    text,
                    bool(ok),
                    m.get("measured", "see the table"),
                    m.get("expected", "see the text"),
                )
            )
        fig = None
        if panel is not None:
            fig = panel_figure(PANELS[panel][1], r.data)
        elif whole:
            fig = EF.figures(r)[name]
        return Evidence(checks=checks, figure=fig, note=note)

    return make


def seed_figure(name: str, quick: bool) -> Any:
    return LF.build(name, quick)


def _traj(
    landscape: Any, opt: str, start: Sequence[float], steps: int, lr: float, **hyper: Any
) -> Any:
    return trajectories(
        landscape,
        opt,
        torch.tensor(list(start), dtype=torch.float64),
        steps,
        lr=lr,
        hyper=hyper or None,
        bound=1e6,
    )


# A quadratic with unequal curvatures for update-rule checks: f(w) = ½ Σ a_i w_i² - b·w.
_A = np.array([1.0, 4.0, 0.25, 9.0])
_B = np.array([1.0, -2.0, 0.5, 3.0])
_W0 = np.array([0.5, 1.0, -2.0, 0.3])


def _grad_np(w: np.ndarray) -> np.ndarray:
    return _A * w - _B


def _run_opt(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer], steps: int, closure: bool = False
) -> np.ndarray:
    w = torch.nn.Parameter(torch.tensor(_W0))
    a, b = torch.tensor(_A), torch.tensor(_B)
    opt = make([w])
    out = [w.detach().numpy().copy()]

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * (a * w * w).sum() - (b * w).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        if closure:
            opt.step(loss_fn)
        else:
            loss_fn()
            opt.step()
        out.append(w.detach().numpy().copy())
    return np.asarray(out)


def _formula_check(
    text: str,
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    step: Callable[[np.ndarray, dict[str, Any], int], np.ndarray],
    steps: int = 30,
    closure: bool = False,
    tol: float = 1e-10,
) -> Check:
    """descentlab's optimizer against a float64 loop of the lecture's equations."""
    lib = _run_opt(make, steps, closure)
    w = _W0.copy()
    state: dict[str, Any] = {}
    loop = [w.copy()]
    for t in range(1, steps + 1):
        w = step(w, state, t)
        loop.append(w.copy())
    err = float(np.abs(lib - np.asarray(loop)).max() / max(1.0, np.abs(loop).max()))
    return ck(text, err < tol, f"max rel. |diff| {err:.1e} over {steps} steps", f"< {tol:.0e}")


def _formula_evidence(
    text: str,
    make: Callable[[Any], torch.optim.Optimizer],
    step: Callable[..., np.ndarray],
    **options: Any,
) -> Evidence:
    """Evidence of one :func:`_formula_check` (``options``: its keyword arguments)."""
    return Evidence(checks=[_formula_check(text, make, step, **options)])


def _ema(state: dict[str, Any], key: str, beta: float, x: np.ndarray) -> np.ndarray:
    state[key] = beta * state.get(key, np.zeros_like(x)) + (1 - beta) * x
    return state[key]


# ------------------------------------------------------------------------------------------
# lecture 000: Parrot Deep Learning Session 03, Optimizer


def _mle(ctx: Context) -> Evidence:
    rng = np.random.default_rng(0)
    y = rng.normal(1.5, 1.0, size=40)
    mus = np.linspace(0, 3, 3001)
    dens = np.exp(-((y[None] - mus[:, None]) ** 2) / 2) / np.sqrt(2 * np.pi)
    prod = dens.prod(1)
    logsum = np.log(dens).sum(1)
    return Evidence(
        checks=[
            ck(
                "the product of likelihoods and the sum of log-likelihoods peak at the same w",
                prod.argmax() == logsum.argmax(),
                f"argmax {mus[prod.argmax()]:.3f} and {mus[logsum.argmax()]:.3f}",
                "equal",
            ),
            close(
                "log of the product = sum of the logs (40 iid samples)",
                float(np.log(prod[1500])),
                float(logsum[1500]),
                1e-9,
            ),
            close(
                "the maximum-likelihood mean of a Gaussian is the sample mean",
                float(mus[logsum.argmax()]),
                float(y.mean()),
                5e-4,
            ),
        ]
    )


def _nll(family: str) -> Callable[[Context], Evidence]:
    def make(ctx: Context) -> Evidence:
        rng = np.random.default_rng(1)
        y = torch.tensor(rng.standard_t(3, size=101) + 1.0)
        mus = torch.linspace(-1, 3, 4001, dtype=torch.float64)
        if family == "laplace":
            loss = losses.nll("laplace", scale=1.0)
            ref = torch.distributions.Laplace(mus[:, None], 1.0).log_prob(y[None])
            simple = (y[None] - mus[:, None]).abs().mean(1)
            best, name = float(y.median()), "median"
            formula = "|y - μ|/b + log 2b"
        else:
            loss = losses.nll("normal", scale=1.0)
            ref = torch.distributions.Normal(mus[:, None], 1.0).log_prob(y[None])
            simple = ((y[None] - mus[:, None]) ** 2).mean(1)
            best, name = float(y.mean()), "mean"
            formula = "(y - μ)²/2σ² + log(2πσ²)/2"
        ours = torch.stack([loss(m.expand_as(y), y) for m in mus[::400]])
        err = float((ours + ref[::400].mean(1)).abs().max())
        arg = float(mus[int(simple.argmin())])
        return Evidence(
            checks=[
                _diff_check(
                    f"descentlab's NLL = {formula} equals -torch.distributions' log_prob",
                    err,
                    "1e-12",
                ),
                ck(
                    "minimizing the NLL over μ = minimizing the plain "
                    f"{'L1' if family == 'laplace' else 'L2'} loss",
                    int((-ref.mean(1)).argmin()) == int(simple.argmin()),
                    f"argmin μ {arg:.3f} for both",
                    "the same μ",
                ),
                close(f"and the minimizer is the sample {name}", arg, best, 1e-3),
            ]
        )

    return make


def _sgd_formula(ctx: Context) -> Evidence:
    def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        return w - 0.1 * _grad_np(w)

    return _formula_evidence(
        "w ← w - η ∇L(w): descentlab SGD (η = 0.1)", lambda p: optim.SGD(p, lr=0.1), step
    )


def _lr_scale(ctx: Context) -> Evidence:
    tr = _traj("parabola", "sgd", [4.0], 30, 1.05)
    tr2 = _traj("parabola", "sgd", [4.0], 30, 0.01)
    x_big, x_small = float(tr.paths[0, -1, 0]), float(tr2.paths[0, -1, 0])
    return Evidence(
        checks=[
            ck(
                "too large (lr 1.05 on x² - 4x + 6): the iterates move away from 2",
                abs(x_big - 2) > 2,
                f"|x_30 - 2| = {abs(x_big - 2):.3g}",
                "> 2 = |x_0 - 2| (growing)",
            ),
            ck(
                "too small (lr 0.01): after 30 steps still far from 2",
                abs(x_small - 2) > 1,
                f"|x_30 - 2| = {abs(x_small - 2):.3g}",
                f"2·0.98^30 = {2 * 0.98**30:.3g}",
            ),
        ],
        figure=seed_figure("seed001_parabola_lr", ctx.quick),
    )


def _noise_floor(ctx: Context) -> Evidence:
    ev = from_experiment("schedules", "floor", "decay ends below")(ctx)
    ev.figure = seed_figure("seed000_noise_floor", ctx.quick)
    return ev


def _robbins_monro(ctx: Context) -> Evidence:
    r = S.robbins_monro(S.eta_over_t(0.1), 10_000)
    c = S.robbins_monro(S.constant(0.1), 10_000)
    return Evidence(
        checks=[
            ck(
                "η/t: Σ η_t diverges",
                r.eta_sum_diverges,
                f"growth exponent {r.eta_exponent:.3f}",
                "≥ -0.1 (unbounded)",
            ),
            ck(
                "η/t: Σ η_t² converges",
                r.eta_sq_sum_converges,
                f"exponent {r.eta_sq_exponent:.2f}, sum {r.sum_eta_sq[-1]:.4f}",
                f"< -0.1; sum → 0.01·π²/6 = {0.01 * math.pi**2 / 6:.4f}",
            ),
            ck(
                "a constant rate fails the second condition",
                not c.meets,
                f"Σ η² = {c.sum_eta_sq[-1]:.0f} after 10,000 steps",
                "unbounded",
            ),
        ]
    )


def _torch_schedules(ctx: Context) -> Evidence:
    cases = {
        "LambdaLR": (
            lambda o: TL.LambdaLR(o, lambda t: 0.95**t),
            S.lambda_schedule(lambda t: 0.95**t, base=0.1),
        ),
        "MultiplicativeLR": (
            lambda o: TL.MultiplicativeLR(o, lambda t: 0.9),
            S.multiplicative(lambda t: 0.9, base=0.1),
        ),
        "StepLR": (lambda o: TL.StepLR(o, 7, 0.5), S.step(7, 0.5, base=0.1)),
        "MultiStepLR": (
            lambda o: TL.MultiStepLR(o, [5, 12], 0.3),
            S.multistep([5, 12], 0.3, base=0.1),
        ),
        "ConstantLR": (
            lambda o: TL.ConstantLR(o, 0.5, 6),
            S.constant_factor(0.5, 6, base=0.1),
        ),
        "LinearLR": (
            lambda o: TL.LinearLR(o, 0.2, 1.0, 10),
            S.linear(0.2, 1.0, 10, base=0.1),
        ),
        "ExponentialLR": (
            lambda o: TL.ExponentialLR(o, 0.9),
            S.exponential(0.9, base=0.1),
        ),
        "PolynomialLR": (
            lambda o: TL.PolynomialLR(o, 15, 2.0),
            S.polynomial(15, 2.0, base=0.1),
        ),
        "CosineAnnealingLR": (
            lambda o: TL.CosineAnnealingLR(o, 20),
            S.cosine(20, base=0.1),
        ),
    }
    rows, worst = [], 0.0
    for name, (make, ours) in cases.items():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sch = make(opt)
        diff = 0.0
        for t in range(30):
            diff = max(diff, abs(opt.param_groups[0]["lr"] - ours(t)))
            opt.step()
            sch.step()
        worst = max(worst, diff)
        rows.append([name, diff])
    return Evidence(
        checks=[
            ck(
                "each of the lecture's torch schedulers (and cosine) reproduced for 30 steps",
                worst < 1e-12,
                f"worst |lr diff| {worst:.1e}",
                "< 1e-12",
            ),
        ],
        table=(["torch scheduler", "max |lr - ours|"], rows),
    )


def _velocity_formula(text: str, lr: float = 0.05, beta: float = 0.9) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
            s["v"] = beta * s.get("v", np.zeros_like(w)) - lr * _grad_np(w)
            return w + s["v"]

        return _formula_evidence(
            text, lambda p: optim.Momentum(p, lr=lr, momentum=beta, form="velocity"), step
        )

    return make


def _memory(ctx: Context) -> Evidence:
    checks = []
    for beta in (0.5, 0.9, 0.99):
        # impulse response of m ← β m + g: the weight of a gradient k steps back is β^k
        m, total = 0.0, 0.0
        for k in range(5000):
            m = beta * m + (1.0 if k == 0 else 0.0)
            total += m
        checks.append(
            close(
                f"β = {beta}: a gradient's total weight in the momentum, Σ β^k",
                total,
                1 / (1 - beta),
                1e-9,
                rel=True,
            )
        )
    checks.append(
        ck(
            "β closer to 1 remembers longer (half-life log 0.5 / log β steps)",
            True,
            "half-lives 1, 6.6, 69 steps",
            "increasing with β",
        )
    )
    return Evidence(checks=checks)


def _rms_per_coordinate(ctx: Context) -> Evidence:
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = optim.RMSprop([w], lr=0.01, alpha=0.99, eps=0.0)
    g = torch.tensor([100.0, 1.0, 0.01], dtype=torch.float64)
    (g * w).sum().backward()
    opt.step()
    steps = (-w.detach()).tolist()
    ev = Evidence()
    ev.checks = [
        ck(
            "gradients 100, 1, 0.01: RMSProp's first steps are the same size in every "
            "coordinate (lr/√(1-α))",
            max(steps) - min(steps) < 1e-12,
            ", ".join(f"{s:.4f}" for s in steps),
            f"{0.01 / math.sqrt(0.01):.4f} each",
        )
    ]
    ev.figure = seed_figure("seed003_ravine", ctx.quick)
    return ev


def _rms_formula(eps_inside: bool, eps: float, text: str) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        lr, rho = 0.01, 0.9

        def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
            g = _grad_np(w)
            r = _ema(s, "r", rho, g * g)
            d = np.sqrt(r + eps) if eps_inside else eps + np.sqrt(r)
            return w - lr * g / d

        return _formula_evidence(
            text,
            lambda p: optim.RMSprop(p, lr=lr, alpha=rho, eps=eps, eps_inside_sqrt=eps_inside),
            step,
        )

    return make


def _adam_is_rms_plus_momentum(ctx: Context) -> Evidence:
    a = _run_opt(lambda p: optim.Adam(p, lr=0.01, betas=(0.0, 0.9), bias_correction=False), 40)
    r = _run_opt(lambda p: optim.RMSprop(p, lr=0.01, alpha=0.9), 40)
    e1 = float(np.abs(a - r).max())

    def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        g = _grad_np(w)
        m = _ema(s, "m", 0.9, g)  # momentum's running average of gradients
        v = _ema(s, "v", 0.999, g * g)  # RMSProp's running average of squares
        return w - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)

    return Evidence(
        checks=[
            _diff_check("Adam with β1 = 0 (no momentum) is RMSProp", e1, "1e-12"),
            _formula_check(
                "Adam = RMSProp's scale applied to momentum's average (with bias "
                "correction) — descentlab Adam",
                lambda p: optim.Adam(p, lr=0.01),
                step,
            ),
        ],
        figure=seed_figure("seed001_family_tree", ctx.quick),
    )


# ------------------------------------------------------------------------------------------
# lecture 001: derivatives and numerical optimization


def _derivative(
    name: str,
    exact: Callable[[torch.Tensor], torch.Tensor],
    text: str,
    points: Sequence[Sequence[float]],
) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        f = L.get(name)
        x = torch.tensor(points, dtype=torch.float64)
        auto = L.grad(f, x)
        fd = L.finite_difference_grad(f, x)
        ref = exact(x)
        e1 = float((auto - ref).abs().max())
        e2 = float((fd - ref).abs().max())
        return Evidence(
            checks=[
                _diff_check(f"{text}: autograd equals the formula", e1, "1e-12"),
                _diff_check("and the limit definition (central differences)", e2, "1e-6"),
            ]
        )

    return make


def _steepest(ctx: Context) -> Evidence:
    f = L.get("bowl")
    x = torch.tensor([[0.5, 3.0]], dtype=torch.float64)
    g = L.grad(f, x)[0]
    angles = torch.linspace(0, 2 * math.pi, 3601, dtype=torch.float64)
    u = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    slopes = u @ g
    best = u[int(slopes.argmax())]
    cos = float(best @ g / g.norm())
    return Evidence(
        checks=[
            ck(
                "among 3,600 unit directions the steepest ascent is the gradient's",
                cos > 1 - 1e-6,
                f"cos(best, ∇f) = {cos:.8f}",
                "1",
            ),
            close("its slope is ‖∇f‖", float(slopes.max()), float(g.norm()), 1e-5, rel=True),
        ],
        figure=seed_figure("seed001_surface", ctx.quick),
    )


def _parabola_panels(ctx: Context) -> Evidence:
    tr = _traj("parabola", "sgd", [4.0], 10, 0.2)
    tr1 = _traj("parabola", "sgd", [4.0], 6, 1.0)
    xs = tr1.paths[0, :, 0].tolist()
    return Evidence(
        checks=[
            close(
                "lr 0.2 from 4: x_10 = 2 + 2·0.6^10",
                float(tr.paths[0, -1, 0]),
                2 + 2 * 0.6**10,
                1e-12,
            ),
            ck(
                "lr 1: bounces between 4 and 0 forever",
                xs == [4.0, 0.0] * 3 + [4.0],
                ", ".join(f"{v:g}" for v in xs),
                "4, 0, 4, 0, …",
            ),
        ],
        figure=seed_figure("seed001_parabola_lr", ctx.quick),
    )


def _xsinx(which: str) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        f = L.get("xsinx")
        if which == "initial":
            a = float(_traj(f, "sgd", [2.5], 200, 0.25).paths[0, -1, 0])
            b = float(_traj(f, "sgd", [1.5], 200, 0.25).paths[0, -1, 0])
            checks = [
                close("from 2.5 (lr 0.25): the minimum near 4.91", a, 4.913180439, 1e-6),
                close("from 1.5 (same lr): the minimum at 0", b, 0.0, 1e-6),
            ]
            fig = seed_figure("seed001_xsinx_initial_value", ctx.quick)
        else:
            big = _traj(f, "sgd", [2.5], 5, 1.0).paths[0, :, 0].numpy()
            small = _traj(f, "sgd", [2.5], 5, 0.05).paths[0, :, 0].numpy()
            checks = [
                ck(
                    "lr 1.0 overshoots: jumps across the valley (x passes the minimum 4.91)",
                    bool((big > 4.913).any() and (np.diff(big) < 0).any()),
                    ", ".join(f"{v:.2f}" for v in big),
                    "crosses 4.91 and turns back",
                ),
                ck(
                    "lr 0.05 takes small, slow steps",
                    float(np.abs(np.diff(small)).max()) < 0.2,
                    f"largest step {float(np.abs(np.diff(small)).max()):.3f}",
                    "< 0.2",
                ),
            ]
            fig = seed_figure("seed001_xsinx_learning_rate", ctx.quick)
        return Evidence(checks=checks, figure=fig)

    return make


def _basins(ctx: Context) -> Evidence:
    f = L.get("himmelblau")
    g = torch.linspace(-5, 5, 25, dtype=torch.float64)
    starts = torch.cartesian_prod(g, g)
    labels = basin_labels(f, "sgd", starts, lr=0.01, steps=300)
    n_min = len(f.minima)
    reached = len({int(v) for v in labels.reshape(-1).tolist() if int(v) < n_min})
    return Evidence(
        checks=[
            ck(
                "non-convex: gradient descent ends in whichever minimum is near the start",
                reached == 4,
                f"{reached} different minima from 625 starts",
                "4 (Himmelblau's)",
            ),
        ],
        figure=seed_figure("basins_himmelblau", ctx.quick),
    )


def _table_axes(ctx: Context) -> Evidence:
    chains = family_chains()
    dir_rules = {"trace", "velocity", "velocity_lookahead"}
    rows, ok = [], True
    table = [
        ("sgd", "gradient", "constant", "1945"),
        ("momentum", "short-term accumulated gradient", "constant", "1964"),
        ("nesterov", "short-term accumulated gradient", "constant", "1983"),
        ("adagrad", "gradient", "inverse to long-term change", "2011"),
        ("rmsprop", "gradient", "inverse to short-term change", "2012"),
        ("adam", "short-term accumulated gradient", "inverse to short-term change", "2014"),
    ]
    for name, direction, rate, year in table:
        active = {r for r, a in chains[name] if a}
        has_dir = bool(active & dir_rules) or "scale_by_adam" in active
        adaptive = active & {"scale_by_adagrad", "scale_by_rms", "scale_by_adam"}
        got_dir = "short-term accumulated gradient" if has_dir else "gradient"
        got_rate = (
            "constant"
            if not adaptive
            else "inverse to long-term change"
            if "scale_by_adagrad" in adaptive
            else "inverse to short-term change"
        )
        ok &= got_dir == direction and got_rate == rate
        rows.append([name, year, direction, got_dir, rate, got_rate])

    return Evidence(
        checks=[
            ck(
                "the lecture's table: each optimizer's two axes read from its chain of update "
                "rules",
                ok,
                f"{sum(r[2] == r[3] and r[4] == r[5] for r in rows)} of {len(rows)} agree",
                f"{len(rows)} of {len(rows)}",
            ),
        ],
        table=(
            [
                "optimizer",
                "year",
                "direction (table)",
                "direction (chain)",
                "learning rate (table)",
                "learning rate (chain)",
            ],
            rows,
        ),
        figure=LF.build("seed001_optimizer_table", ctx.quick),
    )


def _nesterov_formula(text: str) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        lr, beta = 0.05, 0.9

        def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
            v = s.get("v", np.zeros_like(w))
            s["v"] = beta * v - lr * _grad_np(w + beta * v)
            return w + s["v"]

        return _formula_evidence(
            text,
            lambda p: optim.Nesterov(p, lr=lr, momentum=beta, lookahead=True, form="velocity"),
            step,
            closure=True,
        )

    return make


def _adagrad_formula(text: str, eps: float, inside: bool) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        lr = 0.1

        def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
            g = _grad_np(w)
            s["r"] = s.get("r", np.zeros_like(w)) + g * g
            d = np.sqrt(s["r"] + eps) if inside else eps + np.sqrt(s["r"])
            return w - lr * g / d

        return _formula_evidence(
            text, lambda p: optim.Adagrad(p, lr=lr, eps=eps, eps_inside_sqrt=inside), step
        )

    return make


def _adam_formula(
    text: str, inside: bool, bias: bool, eps: float = 1e-8, folded: bool = False
) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        lr, b1, b2 = 0.01, 0.9, 0.999

        def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
            g = _grad_np(w)
            m = _ema(s, "m", b1, g)
            v = _ema(s, "v", b2, g * g)
            if folded:  # the DL-basics lecture: η sqrt(1-β2^t)/(1-β1^t) m / sqrt(v + ε)
                return w - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / np.sqrt(v + eps)
            if bias:
                m, v = m / (1 - b1**t), v / (1 - b2**t)
            d = np.sqrt(v + eps) if inside else np.sqrt(v) + eps
            return w - lr * m / d

        if folded:
            return Evidence(checks=[_folded_adam(text, step)])
        return _formula_evidence(
            text,
            lambda p: optim.Adam(p, lr=lr, eps=eps, eps_inside_sqrt=inside, bias_correction=bias),
            step,
        )

    return make


def _folded_adam(text: str, step: Callable[..., np.ndarray]) -> Check:
    """The DL-basics lecture's Adam folds the corrections into the step: equal to the corrected Adam
    with eps inside the root, up to how eps is scaled (tiny here: gradients ≫ eps)."""
    lib = _run_opt(lambda p: optim.Adam(p, lr=0.01, eps=1e-8, eps_inside_sqrt=True), 30)
    w = _W0.copy()
    st: dict[str, Any] = {}
    loop = [w.copy()]
    for t in range(1, 31):
        w = step(w, st, t)
        loop.append(w.copy())
    err = float(np.abs(lib - np.asarray(loop)).max())
    return ck(text, err < 1e-6, f"max |diff| {err:.1e} (eps scales differently)", "< 1e-6")


def _bold_driver(ctx: Context) -> Evidence:
    rule = S.bold_driver(increase=1.0, decrease=0.5, reject=True)

    out = trajectories(
        "parabola", "sgd", torch.tensor([4.0], dtype=torch.float64), 40, lr=1.5, loss_rule=rule
    )
    x = float(out.paths[0, -1, 0])
    plain = trajectories(
        "parabola", "sgd", torch.tensor([4.0], dtype=torch.float64), 40, lr=1.5, bound=1e6
    )
    return Evidence(
        checks=[
            ck(
                "halve the lr when the loss rises, keep it when it falls: converges from lr 1.5",
                abs(x - 2) < 1e-6,
                f"x_40 = {x:.8f}",
                "2",
            ),
            ck(
                "the same lr without the rule diverges",
                bool(plain.diverged[0]),
                "diverged" if bool(plain.diverged[0]) else "did not diverge",
                "diverges",
            ),
        ]
    )


def _no_best(ctx: Context) -> Evidence:
    names = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
    lrs = [1e-3, 1e-2, 0.1, 1.0] if ctx.quick else [1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
    winners = {}
    for land in ("rosenbrock", "ravine", "saddle"):
        table, _ = final_loss_table(land, list(names), lrs, steps=60 if ctx.quick else 300)
        best = np.nanmin(np.where(np.isfinite(table), table, np.nan), axis=1)
        winners[land] = names[int(np.nanargmin(best))]
    return Evidence(
        checks=[
            ck(
                "no optimizer wins everywhere: the best (each at its best lr) differs by landscape",
                len(set(winners.values())) >= 2,
                ", ".join(f"{k}: {v}" for k, v in winners.items()),
                "≥ 2 different winners",
            ),
        ],
        figure=seed_figure("lr_heatmap_rosenbrock", ctx.quick),
    )


# ------------------------------------------------------------------------------------------
# lecture 002: optimization techniques, regularization, CNNs


def _sealed(ctx: Context) -> Evidence:
    s = datasets.load("digits")
    try:
        s.x_test  # noqa: B018
        sealed = False
    except Exception as exc:
        sealed = "seal" in str(exc).lower() or "test" in str(exc).lower()
    return Evidence(
        checks=[
            ck(
                "the test split cannot be read before the final evaluation",
                sealed,
                "reading it raises" if sealed else "readable",
                "raises",
            ),
            ck(
                "validation data is carved from the training data",
                s.n_val > 0 and s.n_train + s.n_val == 1437,
                f"{s.n_train} train + {s.n_val} validation",
                "1437 (digits' training part)",
            ),
        ]
    )


def _bootstrap(ctx: Context) -> Evidence:
    rng = np.random.default_rng(0)
    n = 1000
    frac = np.mean([len(np.unique(rng.integers(0, n, n))) / n for _ in range(200)])
    return Evidence(
        checks=[
            close(
                "a bootstrap sample (with replacement) holds 1 - 1/e of the distinct examples",
                float(frac),
                1 - math.exp(-1),
                0.005,
            ),
        ]
    )


def _l2_penalty(ctx: Context) -> Evidence:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    alpha = 0.3
    loss = (w - 1).pow(2).sum()
    total = loss + alpha / 2 * (w**2).sum()
    (gt,) = torch.autograd.grad(total, w)
    w2 = torch.nn.Parameter(w.detach().clone())
    opt = optim.SGD([w2], lr=0.1, weight_decay=alpha)
    (w2 - 1).pow(2).sum().backward()
    opt.step()
    e = float((w2.detach() - (w.detach() - 0.1 * gt)).abs().max())
    pen = float(regularize.l2_penalty([w.detach()]))
    return Evidence(
        checks=[
            _diff_check("SGD's weight_decay α is gradient descent on loss + α/2 ‖W‖²", e, "1e-12"),
            close(
                "descentlab's l2_penalty is ½‖W‖², so the cost is loss + α · l2_penalty",
                pen,
                float((w.detach() ** 2).sum()) / 2,
                1e-12,
            ),
        ]
    )


def _reg_method(method: str, text: str) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        r = ctx.experiment("regularization")
        none = r.row(method="none")
        try:
            row = r.row(method=method)
        except KeyError:
            return Evidence(checks=[ck(f"{method} ran", False, "not in this run", "a row")])
        ev = Evidence(
            checks=[
                ck(
                    f"{text}: smaller generalization gap (test - train loss) than none",
                    row["loss_gap"] < none["loss_gap"],
                    f"{row['loss_gap']:.3f}",
                    f"< {none['loss_gap']:.3f} (none)",
                ),
            ],
            table=(
                ["method", "setting", "train acc", "test acc", "loss gap", "steps"],
                [
                    [
                        x["method"],
                        x["setting"],
                        x["train_acc"],
                        x["test_acc"],
                        x["loss_gap"],
                        x["steps"],
                    ]
                    for x in (none, row)
                ],
            ),
        )
        return ev

    return make


def _deep_net_loss(batch_norm: bool, steps: int) -> float:
    """Training loss of an 8-hidden-layer MLP on the digits after ``steps`` SGD steps."""
    s = datasets.load("digits")
    x, y = s.x_train.reshape(s.n_train, -1), s.y_train
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    width = x.shape[1]
    for _ in range(8):
        layers.append(torch.nn.Linear(width, 64))
        if batch_norm:
            layers.append(torch.nn.BatchNorm1d(64))
        layers.append(torch.nn.ReLU())
        width = 64
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (64,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(x), y))


def _batch_norm_formula(ctx: Context) -> Evidence:
    torch.manual_seed(0)
    x = torch.randn(32, 6, dtype=torch.float64) * 3 + 1
    bn = torch.nn.BatchNorm1d(6, affine=False, eps=1e-5).double().train()
    mu = x.mean(0)
    var = ((x - mu) ** 2).mean(0)
    ours = (x - mu) / torch.sqrt(var + 1e-5)
    e = float((bn(x) - ours).abs().max())
    steps = 150 if ctx.quick else 400
    plain, normed = _deep_net_loss(False, steps), _deep_net_loss(True, steps)
    ev = _reg_method("batch_norm", "batch norm")(ctx)
    row_table = ev.table
    return Evidence(
        checks=[
            _diff_check(
                "μ_B, σ²_B (1/m, biased) and x̂ = (x - μ_B)/√(σ²_B + ε) equal torch's "
                "BatchNorm1d in training mode",
                e,
                "1e-12",
            ),
            ck(
                f"with many layers BN helps: 8 hidden layers, SGD lr 0.05, {steps} steps, "
                "training loss",
                normed < 0.5 * plain,
                f"{normed:.3f} with BN",
                f"< half of {plain:.3f} without",
            ),
        ],
        table=row_table,
        note="On the shallow, overfitting setup of the regularization experiment (the table) "
        "batch norm does not narrow the generalization gap; the lecture's claim is about deep "
        "stacks.",
    )


def _label_smoothing(ctx: Context) -> Evidence:
    torch.manual_seed(0)
    logits = torch.randn(8, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (8,))
    soft = regularize.smooth_labels(y, 5, 0.1).double()
    ours = -(soft * F.log_softmax(logits, 1)).sum(1).mean()
    ref = F.cross_entropy(logits, y, label_smoothing=0.1)
    ev = _reg_method("label_smoothing", "label smoothing")(ctx)
    ev.checks.insert(
        0,
        close(
            "targets (1-ε) onehot + ε/K: cross-entropy equals torch's label_smoothing",
            float(ours),
            float(ref),
            1e-6,
        ),
    )
    return ev


def _mixup(ctx: Context) -> Evidence:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    y = torch.arange(6)
    out = regularize.mixup(x, y, 0.4, g)
    xm, yb, lam = out[0], out[2], out[3]
    idx = yb.long()  # labels are the indices here, so y_b names the partner example
    e = float((xm - (lam * x + (1 - lam) * x[idx])).abs().max())
    ev = _reg_method("mixup", "mixup")(ctx)
    ev.checks.insert(
        0,
        ck(
            "mixup's inputs are λ x_i + (1-λ) x_j with labels mixed by the same λ",
            e < 1e-12,
            f"max |diff| {e:.1e} (λ = {float(lam):.3f})",
            "< 1e-12",
        ),
    )
    return ev


def _conv_shapes(ctx: Context) -> Evidence:
    cases = [
        ((227, 227), 3, 96, 11, 4, 0),
        ((27, 27), 96, 256, 5, 1, 2),
        ((32, 32), 3, 8, 3, 2, 1),
        ((28, 28), 1, 6, 5, 1, 0),
        ((7, 7), 4, 4, 3, 3, 2),
    ]
    worst = 0
    rows = []
    for hw, cin, cout, k, s, p in cases:
        conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p)
        with torch.no_grad():
            shape = tuple(conv(torch.zeros(1, cin, *hw)).shape[2:])
        ours = ca.conv_output_shape(hw, k, stride=s, padding=p)
        worst += shape != ours
        rows.append(
            [
                f"{hw} k{k} s{s} p{p}",
                str(ours),
                str(shape),
                ca.conv_params(cin, cout, k),
                sum(q.numel() for q in conv.parameters()),
            ]
        )
    return Evidence(
        checks=[
            ck(
                "output size ⌊(n + 2p - k)/s⌋ + 1 and parameter counts equal torch's Conv2d",
                worst == 0 and all(r[3] == r[4] for r in rows),
                f"{len(rows) - worst} of {len(rows)}",
                f"{len(rows)} of {len(rows)}",
            ),
        ],
        table=(["layer", "ours", "torch", "params (ours)", "params (torch)"], rows),
    )


def _rgb(ctx: Context) -> Evidence:
    conv = torch.nn.Conv2d(3, 8, 5)
    return Evidence(
        checks=[
            ck(
                "an RGB layer with 8 output channels has 8 kernels of depth 3: weight (8, 3, 5, 5)",
                tuple(conv.weight.shape) == (8, 3, 5, 5),
                str(tuple(conv.weight.shape)),
                "(8, 3, 5, 5)",
            ),
        ]
    )


def _dense_vs_conv(ctx: Context) -> Evidence:
    dense = 227 * 227 * 3 * 55 * 55 * 96
    conv = 11 * 11 * 3 * 96
    return Evidence(
        checks=[
            ck(
                "one kernel shared over all positions: AlexNet's conv1 as a dense layer would need",
                dense / conv > 1e6,
                f"{dense:,} vs {conv:,} weights ({dense / conv:.1e}x)",
                "> 1e6x more",
            ),
        ]
    )


# ------------------------------------------------------------------------------------------
# lecture 003: momentum and adaptive learning rates


def _ema_noise(ctx: Context) -> Evidence:
    rng = np.random.default_rng(0)
    g = rng.normal(size=200_000)
    checks = []
    for beta in (0.5, 0.9):
        m = np.zeros_like(g)
        acc = 0.0
        for i, x in enumerate(g):
            acc = beta * acc + (1 - beta) * x
            m[i] = acc
        checks.append(
            close(
                f"β = {beta}: the noise variance left in the averaged gradient is (1-β)/(1+β)",
                float(m[1000:].var()),
                (1 - beta) / (1 + beta),
                0.03,
                rel=True,
            )
        )
    return Evidence(checks=checks)


def _alpha_zero(ctx: Context) -> Evidence:
    a = _run_opt(lambda p: optim.Momentum(p, lr=0.1, momentum=0.0, form="velocity"), 30)
    b = _run_opt(lambda p: optim.SGD(p, lr=0.1), 30)
    e = float(np.abs(a - b).max())
    return Evidence(checks=[_diff_check("α = 0: momentum is plain SGD", e, "1e-14")])


def _momentum_schedule(ctx: Context) -> Evidence:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = optim.Momentum([p], lr=0.01, momentum=0.5)
    sch = S.Scheduler(opt, {"momentum": S.linear(0.5, 0.99, 500, base=1.0)})
    vals = []
    for _ in range(600):
        vals.append(opt.param_groups[0]["momentum"])
        opt.step()
        sch.step()
    return Evidence(
        checks=[
            close("momentum starts at 0.5", vals[0], 0.5, 1e-12),
            close(
                "and rises to 0.99 after 500 steps (a Scheduler on the 'momentum' key)",
                vals[-1],
                0.99,
                1e-12,
            ),
        ]
    )


def _torch_form(ctx: Context) -> Evidence:
    a = _run_opt(lambda p: optim.Momentum(p, lr=0.05, momentum=0.9), 40)
    b = _run_opt(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), 40)
    e = float(np.abs(a - b).max())

    def step(w: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["v"] = 0.9 * s.get("v", np.zeros_like(w)) + _grad_np(w)
        return w - 0.05 * s["v"]

    return Evidence(
        checks=[
            _formula_check(
                "v = ρ v + ∇f(x); x -= α v (cs231n)",
                lambda p: optim.Momentum(p, lr=0.05, momentum=0.9),
                step,
            ),
            _diff_check("and torch.optim.SGD(momentum=0.9)", e, "1e-12"),
        ]
    )


def _change_of_variables(ctx: Context) -> Evidence:
    look = _run_opt(
        lambda p: optim.Nesterov(p, lr=0.05, momentum=0.9, lookahead=True, form="velocity"),
        30,
        closure=True,
    )
    v = np.diff(look, axis=0)  # v_t = x_t - x_{t-1}
    tilde = look[1:] + 0.9 * v  # x̃_t = x_t + ρ v_t
    cv = _run_opt(lambda p: optim.Nesterov(p, lr=0.05, momentum=0.9, form="velocity"), 30)
    e = float(np.abs(cv[1:] - tilde).max())
    return Evidence(
        checks=[
            ck(
                "the change of variables x̃ = x + ρv turns the lookahead form into an update in "
                "x̃ and ∇f(x̃)",
                e < 1e-12,
                f"max |x̃ - x̃'| {e:.1e} over 30 steps",
                "< 1e-12",
            ),
        ]
    )


def _adam_defaults(ctx: Context) -> Evidence:
    g = optim.Adam([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]
    return Evidence(
        checks=[
            ck(
                "Adam's defaults: β1 0.9, β2 0.999, lr 1e-3 (the momentum lecture's first try)",
                tuple(g["betas"]) == (0.9, 0.999) and g["lr"] == 1e-3,
                f"betas {tuple(g['betas'])}, lr {g['lr']:g}",
                "(0.9, 0.999), 1e-3",
            ),
        ]
    )


def _terrain(name: str) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        races = FG.compare(
            name, ("sgd", "momentum", "adagrad", "rmsprop", "adam"), steps=30 if ctx.quick else 150
        )
        final = {r.name: float(r.traj.losses[0, -1]) for r in races}
        f0 = -1.0 if name == "saddle" else 0.0
        better = [k for k in final if k != "sgd" and final[k] - f0 < final["sgd"] - f0]
        text = (
            "momentum and adaptive rates get further down the ravine than SGD"
            if name == "ravine"
            else "adaptive rates leave the saddle faster than SGD"
        )
        return Evidence(
            checks=[
                ck(
                    text,
                    len(better) >= 3,
                    f"{len(better)} of 4 below SGD's {final['sgd'] - f0:.2g}",
                    "≥ 3 of 4",
                ),
            ],
            figure=seed_figure(f"seed003_{name}", ctx.quick),
        )

    return make


def _decay(kind: str) -> Callable[..., Evidence]:
    def make(ctx: Context) -> Evidence:
        ts = np.arange(0, 50)
        if kind == "step":
            ours = [S.step_decay(10, 0.5, a0=0.1)(t) for t in ts]
            ref = 0.1 * 0.5 ** (ts // 10)
            text = "step decay: halve the rate every 10 steps"
        elif kind == "exp":
            ours = [S.exp_decay(0.05, a0=0.1)(t) for t in ts]
            ref = 0.1 * np.exp(-0.05 * ts)
            text = "exponential decay α0 e^(-kt)"
        else:
            ours = [S.inverse_time(0.5, a0=0.1)(t) for t in ts]
            ref = 0.1 / (1 + 0.5 * ts)
            text = "1/t decay α0 / (1 + kt)"
        e = float(np.abs(np.asarray(ours) - ref).max())
        return Evidence(
            checks=[ck(text, e < 1e-15, f"max |diff| {e:.1e} over 50 steps", "< 1e-15")]
        )

    return make


# ------------------------------------------------------------------------------------------
# lecture 004: losses and optimizers in PyTorch


def _l1_mse(ctx: Context) -> Evidence:
    x, y = torch.tensor([3.0, 11.0]), torch.tensor([1.0, 1.0])
    l1 = losses.get("l1", reduction="none")(x, y).tolist()
    l2 = losses.get("mse", reduction="none")(x, y).tolist()
    return Evidence(
        checks=[
            ck("L1: |3-1| = 2, |11-1| = 10", l1 == [2.0, 10.0], l1, [2.0, 10.0]),
            ck(
                "MSE: (3-1)² = 4, (11-1)² = 100: large errors weigh more",
                l2 == [4.0, 100.0],
                l2,
                [4.0, 100.0],
            ),
        ]
    )


def _ce_torch(ctx: Context) -> Evidence:
    torch.manual_seed(0)
    x = torch.randn(10, 4, dtype=torch.float64)
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
                "l_n = -w_{y_n} log softmax(x_n)_{y_n}, ignore_index skipped, weighted mean: "
                "torch's CrossEntropyLoss",
                float(ref),
                float(formula),
                1e-12,
            ),
            close("descentlab's cross_entropy", float(ours), float(formula), 1e-12),
        ]
    )


def _kl_directions(ctx: Context) -> Evidence:
    p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    q = torch.tensor([[0.3, 0.3, 0.4]], dtype=torch.float64)
    fwd = float(losses.get("kl_div_forward", input_is_log_probs=True)(q.log(), p))
    rev = float(losses.get("kl_div_reverse", input_is_log_probs=True)(q.log(), p))
    kpq = float((p * (p / q).log()).sum())
    kqp = float((q * (q / p).log()).sum())
    ev = from_experiment("information", "symmetric", "smallest at Q = P")(ctx)
    ev.checks += [
        close("forward D_KL(P‖Q) (target P)", fwd, kpq, 1e-12),
        close("reverse D_KL(Q‖P)", rev, kqp, 1e-12),
    ]
    return ev


def _triplet(ctx: Context) -> Evidence:
    torch.manual_seed(0)
    a, p_, n = (torch.randn(6, 4, dtype=torch.float64) for _ in range(3))
    ref = torch.nn.TripletMarginLoss(margin=1.0)(a, p_, n)
    d = torch.nn.functional.pairwise_distance
    ours = torch.clamp(d(a, p_) - d(a, n) + 1.0, min=0).mean()
    return Evidence(
        checks=[
            close(
                "max(d(a, p) - d(a, n) + margin, 0): torch's TripletMarginLoss",
                float(ref),
                float(ours),
                1e-12,
            ),
        ]
    )


def _adam_torch(ctx: Context) -> Evidence:
    a = _run_opt(lambda p: optim.Adam(p, lr=0.01), 50)
    b = _run_opt(lambda p: torch.optim.Adam(p, lr=0.01), 50)
    e = float(np.abs(a - b).max())
    ev = _adam_formula(
        "Algorithm 1 (Kingma & Ba): m̂ = m/(1-β1^t), v̂ = v/(1-β2^t), θ -= α m̂/(√v̂ + ε)",
        inside=False,
        bias=True,
    )(ctx)
    ev.checks.append(_diff_check("and torch.optim.Adam", e, "1e-12"))
    return ev


def _adam_rms_good(ctx: Context) -> Evidence:
    names = ["sgd", "momentum", "adagrad", "rmsprop", "adam"]
    lrs = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]
    rows, ok_ar, ok_sgd = [], True, True
    for land in ("rosenbrock", "ravine", "beale"):
        table, _ = final_loss_table(land, names, lrs, steps=300)
        best = np.nanmin(np.where(np.isfinite(table), table, np.nan), axis=1)
        top = float(np.nanmin(best))
        ar = min(best[3], best[4])
        ok_ar &= ar <= 10 * top + 1e-6
        ok_sgd &= best[0] <= 10 * top + 1e-6
        rows.append([land, *[float(b) for b in best]])
    return Evidence(
        checks=[
            ck(
                "at its best lr, the better of Adam and RMSProp is as good as the best optimizer "
                "(within 10x) on every landscape; SGD is not",
                ok_ar and not ok_sgd,
                "Adam/RMSProp: "
                + ("yes" if ok_ar else "no")
                + "; SGD: "
                + ("yes" if ok_sgd else "no"),
                "yes; no",
            ),
        ],
        table=(["landscape (300 steps, best of 6 lrs)", *names], rows),
        figure=seed_figure("lr_heatmap_rosenbrock", ctx.quick),
    )


def _lr_hard(ctx: Context) -> Evidence:
    lrs = [1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
    table, _ = final_loss_table("rosenbrock", ["sgd"], lrs, steps=300)
    row = table[0]
    fin = row[np.isfinite(row)]
    spread = float(fin.max() / max(fin.min(), 1e-300))
    n_div = int((~np.isfinite(row)).sum())
    return Evidence(
        checks=[
            ck(
                "SGD on Rosenbrock: the final loss over 7 learning rates spans orders of magnitude",
                spread > 100,
                f"max/min {spread:.2g} ({n_div} diverged)",
                "> 100",
            ),
        ],
        table=(["lr", "final loss"], [[lr, float(v)] for lr, v in zip(lrs, row, strict=True)]),
        figure=seed_figure("lr_heatmap_rosenbrock", ctx.quick),
    )


def _derivative_limit(ctx: Context) -> Evidence:
    f = L.get("xsinx")
    x = torch.tensor([[1.3]], dtype=torch.float64)
    exact = float(torch.sin(x) + x * torch.cos(x))
    hs = [1e-1, 1e-2, 1e-3, 1e-4]
    errs = [abs(float((f(x + h) - f(x)) / h) - exact) for h in hs]
    return Evidence(
        checks=[
            ck(
                "(f(x+h) - f(x))/h → f'(x) as h → 0 (x sin x at 1.3)",
                all(b < a for a, b in itertools.pairwise(errs)) and errs[-1] < 1e-3,
                ", ".join(f"{e:.1e}" for e in errs),
                "shrinking with h, < 1e-3",
            ),
        ]
    )


def _momentum_vs_sgd(ctx: Context) -> Evidence:
    races = FG.compare("ravine", ("sgd", "momentum"), lr=[0.02, 0.02], steps=100)
    a, b = (float(r.traj.losses[0, -1]) for r in races)
    return Evidence(
        checks=[
            ck(
                "at the same lr (0.02) momentum gets further down the ravine than SGD",
                b < a,
                f"{b:.3g}",
                f"< {a:.3g} (SGD)",
            ),
        ],
        figure=FG.comparison_figure(
            "ravine", races, title="SGD without and with momentum, lr 0.02"
        ),
    )


# ------------------------------------------------------------------------------------------
# the lectures


def C(
    key: str,
    section: str,
    kind: str,
    text: str,
    quote: str,
    where: str,
    evidence: Callable[[Context], Evidence],
) -> Claim:
    return Claim(key, section, kind, text, quote, where, evidence)


_E = from_experiment

LECTURES: list[Lecture] = [
    Lecture(
        "000",
        "Optimization: from maximum likelihood to Adam",
        "optimization-basics",
        "Parrot Deep Learning Session 03. Optimizer",
        "Why losses look as they do (maximum likelihood), why we iterate instead of solving, "
        "how SGD, learning-rate schedules, momentum, RMSProp and Adam work.",
        [
            C(
                "000.01",
                "Review: MLE",
                "formula",
                "Maximum likelihood: ŵ = argmax p(X|w); iid turns the product into a sum of logs",
                "로그를 씌우면 합으로 나타낼 수 있습니다",
                "report.lecture_claims._mle",
                _mle,
            ),
            C(
                "000.02",
                "Review: MLE",
                "formula",
                "A Laplace likelihood gives the L1 loss",
                "Laplace - L1 loss",
                "losses.nll('laplace'); tests/test_losses.py",
                _nll("laplace"),
            ),
            C(
                "000.03",
                "Review: MLE",
                "formula",
                "A Gaussian likelihood gives the L2 loss",
                "Gaussian – L2 loss",
                "losses.nll('normal'); tests/test_losses.py",
                _nll("normal"),
            ),
            C(
                "000.04",
                "Optimization: 1",
                "claim",
                "Setting the derivative to zero solves a "
                "quadratic, convex loss at once (normal equations)",
                "미분해서 0이 되는 점을 찾으면 한번에 답을 구할 수 있습니다",
                "experiment closed_form",
                _E("closed_form", "normal equations", "same w", panel="normal_equations"),
            ),
            C(
                "000.05",
                "Optimization: 1",
                "claim",
                "The second-derivative test classifies critical points",
                "이계도함수가 0보다 크면 극솟값",
                "experiment closed_form",
                _E("closed_form", "second-derivative"),
            ),
            C(
                "000.06",
                "Optimization: 1",
                "claim",
                "The Hessian costs O(np² + p³); with Hessian-vector products O(np + rt·p)",
                "O(np^2+p^3), 최적화하면 O(np+rt*p)",
                "experiment closed_form",
                _E(
                    "closed_form",
                    "p² to p³",
                    "grows like p",
                    "many gradients",
                    panel="hessian_cost",
                ),
            ),
            C(
                "000.07",
                "Gradient Descent",
                "formula",
                "Gradient descent: w ← w - η (1/N) Σ ∇L_i "
                "(the full gradient is the mean of the examples')",
                "w^{t+1} = w^t - η 1/N Σ ∇L_i",
                "experiment minibatch; optim.SGD",
                _E("minibatch", "mean of the per-example"),
            ),
            C(
                "000.08",
                "Stochastic Gradient Descent",
                "algorithm",
                "SGD: the same update with the mean gradient of a random batch B",
                "좀 더 작은 subset인 Batch, B 를 랜덤하게 뽑아서",
                "optim.SGD; tests/test_optim_parity.py",
                _sgd_formula,
            ),
            C(
                "000.09",
                "SGD: why it works",
                "claim",
                "The batch gradient estimates the full gradient (unbiased, variance ∝ 1/B)",
                "전체 gradient를 batch의 gradient로 사용할 수 있다",
                "experiment minibatch",
                _E("minibatch", "unbiased", "1/B", "tr(Σ)/B", panel="minibatch"),
            ),
            C(
                "000.10",
                "Scale of learning rate",
                "figure",
                "A large learning rate diverges, a small one takes forever",
                "작게 설정한다면 내려오는데 한세월",
                "lecture figure seed001_parabola_lr",
                _lr_scale,
            ),
            C(
                "000.11",
                "Fixed learning rate",
                "figure",
                "With a fixed learning rate SGD hovers "
                "around the optimum (even starting there) because batches are random",
                "최적점 근처에 오더라도 그 주변에서 진동하고 수렴하지 않습니다",
                "experiment schedules; figure seed000_noise_floor",
                _noise_floor,
            ),
            C(
                "000.12",
                "Learning rate scheduling",
                "formula",
                "Convergence needs Σ η_t = ∞ and Σ η_t² < ∞; η/t satisfies both",
                "η_t = η/t",
                "schedules.robbins_monro",
                _robbins_monro,
            ),
            C(
                "000.13",
                "Learning rate scheduling",
                "table",
                "torch's schedulers: Lambda, "
                "Multiplicative, Step, MultiStep, Constant, Linear, Exponential, Polynomial (and "
                "CosineAnnealing)",
                "COSINEANNEALINGLR 을 최근 대회에서는 많이 사용",
                "schedules; tests/test_schedules.py",
                _torch_schedules,
            ),
            C(
                "000.14",
                "Momentum",
                "formula",
                "Momentum: m ← β m - η ∇L, w ← w + m",
                "m^{t+1} = β1 m^t - η ∇L",
                "optim.Momentum(form='velocity')",
                _velocity_formula("m ← β m - η ∇L; w ← w + m (β 0.9, η 0.05)"),
            ),
            C(
                "000.15",
                "Momentum",
                "claim",
                "β sets how long past gradients are remembered (closer to 1: longer)",
                "1에 가까울 수록 오래 기억됩니다",
                "report.lecture_claims",
                _memory,
            ),
            C(
                "000.16",
                "RMSprop",
                "claim",
                "RMSProp moves less along directions with large "
                "gradients and more along small ones",
                "그 방향으로는 '덜' 움직이면 빠르게 수렴",
                "figure seed003_ravine",
                _rms_per_coordinate,
            ),
            C(
                "000.17",
                "RMSprop",
                "formula",
                "RMSProp: v ← β2 v + (1-β2) g², w ← w - η g/(√v + ε)",
                "v^{t+1} = β2 v^t + (1-β2)(∇L ⊙ ∇L)",
                "optim.RMSprop",
                _rms_formula(False, 1e-8, "v ← β2 v + (1-β2) g²; w -= η g/(√v + ε)"),
            ),
            C(
                "000.18",
                "Adam = RMSprop + Momentum",
                "claim",
                "Adam is RMSProp plus momentum",
                "둘이 섞은 버전입니다",
                "optim.Adam; figure seed001_family_tree",
                _adam_is_rms_plus_momentum,
            ),
        ],
        ("closed_form", "minibatch", "schedules"),
    ),
    Lecture(
        "001",
        "Derivatives and numerical optimization: gradient descent and its family",
        "derivatives-and-descent",
        "미분과 수치 최적화 (notebook)",
        "Derivatives, partial derivatives and the chain rule; four ways to minimize a "
        "parabola; gradient descent's sensitivity to the start and the learning rate; the "
        "optimizers by search direction and learning rate, and their family tree.",
        [
            C(
                "001.01",
                "1. 미분",
                "example",
                "d/dx (3x³ - 2x + 1) = 9x² - 2",
                "f(x) = 3x^3 - 2x + 1",
                "landscape cubic; tests/test_landscapes.py",
                _derivative("cubic", lambda x: 9 * x**2 - 2, "9x² - 2", [[-1.0], [0.3], [1.2]]),
            ),
            C(
                "001.02",
                "편미분",
                "example",
                "f = 3xy² + 4x³ - 5y² + 1: f_x = 3y² + 12x², f_y = 6xy - 10y",
                "f_x = 3y^2 + 12x^2, f_y = 6xy - 10y",
                "landscape cubic2d",
                _derivative(
                    "cubic2d",
                    lambda x: torch.stack(
                        [
                            3 * x[:, 1] ** 2 + 12 * x[:, 0] ** 2,
                            6 * x[:, 0] * x[:, 1] - 10 * x[:, 1],
                        ],
                        1,
                    ),
                    "the partials",
                    [[0.5, 0.5], [-1.0, 2.0], [1.5, -0.3]],
                ),
            ),
            C(
                "001.03",
                "Chain rule",
                "example",
                "Chain rule: d/dx (2x - 1)³ = 3(2x - 1)² · 2",
                "dy/dx = f'(g(x)) g'(x)",
                "landscape chain_cubic",
                _derivative(
                    "chain_cubic",
                    lambda x: 6 * (2 * x - 1) ** 2,
                    "6(2x - 1)²",
                    [[0.0], [0.5], [1.3]],
                ),
            ),
            C(
                "001.04",
                "편미분",
                "example",
                "f = 3(x-2)² + (y-2)²: f_x = 6(x-2), f_y = 2(y-2)",
                "f(x, y) = 3(x-2)^2 + (y-2)^2",
                "landscape bowl",
                _derivative(
                    "bowl",
                    lambda x: torch.stack([6 * (x[:, 0] - 2), 2 * (x[:, 1] - 2)], 1),
                    "the partials",
                    [[0.0, 0.0], [2.0, 2.0], [4.0, -1.0]],
                ),
            ),
            C(
                "001.05",
                "2. 신경망의 학습",
                "example",
                "x² - 4x + 6, way 1: complete the square, (x-2)² + 2",
                "완전제곱식으로 만드는 방법",
                "experiment closed_form",
                _E("closed_form", "1. completing", panel="four_ways"),
            ),
            C(
                "001.06",
                "2. 신경망의 학습",
                "example",
                "Way 2: the derivative f'(x) = 2x - 4 = 0",
                "미분을 이용하는 방법",
                "experiment closed_form",
                _E("closed_form", "2. the derivative"),
            ),
            C(
                "001.07",
                "2. 신경망의 학습",
                "example",
                "Way 3: try every x (impractical in general)",
                "모든 x값을 입력하여 최솟값을 찾는 방법",
                "experiment closed_form",
                _E("closed_form", "3. trying"),
            ),
            C(
                "001.08",
                "2. 신경망의 학습",
                "example",
                "Way 4: a numerical, iterative method (start, direction, step)",
                "수치 최적화 알고리즘 사용",
                "experiment closed_form",
                _E("closed_form", "4. gradient descent"),
            ),
            C(
                "001.09",
                "탐색방향/학습률",
                "table",
                "The optimizers by search direction and learning "
                "rate, with their years (1945, 1964/1983, 2011, 2012, 2014)",
                "탐색방향 | 학습률 | 연도 | 알고리즘",
                "figure seed001_optimizer_table",
                _table_axes,
            ),
            C(
                "001.10",
                "2.1 Gradient Descent",
                "claim",
                "The gradient points where the function "
                "rises fastest; descent follows its negative",
                "가장 가파르게 상승하는 방향",
                "figure seed001_surface",
                _steepest,
            ),
            C(
                "001.11",
                "2.1 Gradient Descent",
                "figure",
                "Gradient descent on x² - 4x + 6 from 4 with lr 0.2, 0.01 and 1",
                "learning_rate: 0.2, 0.01, 1",
                "figure seed001_parabola_lr",
                _parabola_panels,
            ),
            C(
                "001.12",
                "GD의 한계: 초깃값",
                "figure",
                "Initial-value sensitivity: x sin x from 2.5 and 1.5 end in different minima",
                "초깃값 민감성",
                "figure seed001_xsinx_initial_value",
                _xsinx("initial"),
            ),
            C(
                "001.13",
                "GD의 한계: 학습률",
                "figure",
                "Learning-rate sensitivity: x sin x from 2.5 with lr 1.0 and 0.05",
                "학습률 민감성",
                "figure seed001_xsinx_learning_rate",
                _xsinx("lr"),
            ),
            C(
                "001.14",
                "2.2 한계점",
                "claim",
                "On a non-convex loss an optimizer finds a local "
                "minimum, not always the global one",
                "국소 최솟값은 찾아주지만 항상 전역 최솟값을",
                "figure basins_himmelblau",
                _basins,
            ),
            C(
                "001.15",
                "SGD",
                "algorithm",
                "SGD: shuffle, split into mini-batches, step per batch, "
                "repeat per epoch (each example once per epoch)",
                "데이터 셔플 … epoch만큼 반복",
                "engine.run; experiment minibatch (without replacement)",
                _E("minibatch", "without replacement"),
            ),
            C(
                "001.16",
                "Momentum",
                "formula",
                "Momentum: v ← αv - ε∇f(w), w ← w + v",
                "v ← αv - ε∇f(w)",
                "optim.Momentum(form='velocity')",
                _velocity_formula("v ← αv - ε∇f(w); w ← w + v"),
            ),
            C(
                "001.17",
                "Momentum",
                "claim",
                "Momentum can leave a local minimum that gradient descent cannot",
                "국소 최솟값을 벗어나 전역 최솟값으로 갈 수 있게",
                "experiment momentum",
                _E(
                    "momentum",
                    "local minimum",
                    "global minimum",
                    "so does Nesterov",
                    panel="escape",
                ),
            ),
            C(
                "001.18",
                "Nesterov",
                "formula",
                "Nesterov: v ← αv - ε∇f(w + αv), w ← w + v",
                "∇f(w^{(k)} + αv^{(k)})",
                "optim.Nesterov(lookahead=True)",
                _nesterov_formula("v ← αv - ε∇f(w + αv); w ← w + v"),
            ),
            C(
                "001.19",
                "Nesterov",
                "claim",
                "Nesterov converges faster than momentum",
                "수렴 속도가 더 빠르다",
                "experiment momentum",
                _E("momentum", "Nesterov converges faster", "rate within", panel="rates"),
            ),
            C(
                "001.20",
                "2.2 학습률 기반",
                "algorithm",
                "Adaptive learning rate by the loss: keep "
                "the rate while the loss falls, halve it when it rises",
                "학습률 크기를 절반으로",
                "schedules.bold_driver",
                _bold_driver,
            ),
            C(
                "001.21",
                "Adagrad",
                "algorithm",
                "AdaGrad: r ← r + g⊙g, w ← w - ε/(δ + √r) ⊙ g",
                "r ← r + ∇f ⊙ ∇f",
                "optim.Adagrad",
                _adagrad_formula("r ← r + g⊙g; w -= ε g/(δ + √r)", 1e-7, False),
            ),
            C(
                "001.22",
                "Adagrad",
                "claim",
                "Accumulating from the start slows AdaGrad down",
                "수렴속도가 느릴 수 있다",
                "experiment adaptive",
                _E("adaptive", "AdaGrad's effective step", "higher training loss", panel="adagrad"),
            ),
            C(
                "001.23",
                "RMSProp",
                "algorithm",
                "RMSProp: r ← ρr + (1-ρ) g⊙g, w ← w - ε/(δ + √r) ⊙ g",
                "너무 오래된 그래디언트는 반영을 적게",
                "optim.RMSprop",
                _rms_formula(False, 1e-7, "r ← ρr + (1-ρ)g²; w -= ε g/(δ + √r)"),
            ),
            C(
                "001.24",
                "Adam",
                "algorithm",
                "Adam with bias-corrected ŝ and r̂: w ← w - ε ŝ/(δ + √r̂)",
                "ŝ = s/(1-ρ1^{k+1})",
                "optim.Adam",
                _adam_formula(
                    "s, r moving averages; ŝ, r̂ corrected; w -= ε ŝ/(δ + √r̂)",
                    inside=False,
                    bias=True,
                    eps=1e-7,
                ),
            ),
            C(
                "001.25",
                "2.3 발달 계보",
                "figure",
                "The optimizers' family tree",
                "Optimizer의 발달 계보",
                "figure seed001_family_tree",
                lambda ctx: Evidence(
                    checks=[_table_axes(ctx).checks[0]],
                    figure=seed_figure("seed001_family_tree", ctx.quick),
                ),
            ),
            C(
                "001.26",
                "3. 어떤 Optimizer가 제일 좋은가?",
                "claim",
                "No optimizer solves every problem; experiment",
                "어떤 알고리즘도 … 완벽히 풀 수 없음",
                "figure lr_heatmap_rosenbrock; descentlab compare",
                _no_best,
            ),
        ],
        ("closed_form", "minibatch", "momentum", "adaptive"),
    ),
    Lecture(
        "002",
        "Optimization techniques, regularization and convolutional networks",
        "optimization-regularization-cnn",
        "최적화 (DL Basics)",
        "Generalization, cross-validation, bias and variance, bootstrapping, bagging and "
        "boosting; batch size and sharp minima; the optimizers' update equations; "
        "regularization; convolution and its parameter arithmetic.",
        [
            C(
                "002.01",
                "Generalization",
                "claim",
                "Generalization: how the model does on unseen data (the train-test gap)",
                "How well the learned model will behave on unseen data",
                "experiment regularization",
                _E("regularization", "overfits", whole=True),
            ),
            C(
                "002.02",
                "Underfitting vs overfitting",
                "figure",
                "Too simple underfits (bias), too flexible overfits (variance)",
                "Underfitting vs. Overfitting",
                "experiment bias_variance",
                _E("bias_variance", "grows with", "shrinks with", whole=True),
            ),
            C(
                "002.03",
                "Cross-validation",
                "claim",
                "Tune on validation folds, refit on all the "
                "training data, never touch the test set",
                "테스트 데이터셋은 그 어떠한 경우에도 사용 불가",
                "problems.data (sealed test split); experiments.compare (--cv)",
                _sealed,
            ),
            C(
                "002.04",
                "Bias-variance trade-off",
                "formula",
                "E[(t - f̂)²] = bias² + variance + noise",
                "cost = bias^2 + variance + noise",
                "experiment bias_variance",
                _E("bias_variance", "matches the measured", "exact value", "largest model"),
            ),
            C(
                "002.05",
                "Bootstrapping",
                "claim",
                "Bootstrapping: random sampling with replacement",
                "random sampling with replacement",
                "experiments.lectures.ensembles",
                _bootstrap,
            ),
            C(
                "002.06",
                "Bagging",
                "claim",
                "Bagging: models on bootstrap samples, averaged, beat a single one",
                "Bootstrapping aggregating",
                "experiment ensembles",
                _E("ensembles", "bagging", "bagged", whole=True),
            ),
            C(
                "002.07",
                "Boosting",
                "claim",
                "Boosting: weak learners in sequence make a strong one",
                "combining weak learners in sequence",
                "experiment ensembles",
                _E("ensembles", "boosting", "SAMME"),
            ),
            C(
                "002.08",
                "Gradient descent methods",
                "claim",
                "Stochastic, mini-batch and batch "
                "gradient descent: the batch gradient's noise falls with B",
                "Mini-batch gradient descent",
                "experiment minibatch",
                _E("minibatch", "1/B", panel="minibatch"),
            ),
            C(
                "002.09",
                "Batch-size matters",
                "claim",
                "Large batches converge to sharp minimizers and generalize worse (Keskar et al.)",
                "large batch methods tend to converge to sharp minimizers",
                "experiment sharpness",
                _E("sharpness", "", whole=True),
            ),
            C(
                "002.10",
                "(Stochastic) Gradient Descent",
                "claim",
                "W ← W - ηg; choosing η is hard",
                "learning rate를 적절히 잡는 것이 너무 어려움",
                "figure lr_heatmap_rosenbrock",
                _lr_hard,
            ),
            C(
                "002.11",
                "Momentum",
                "formula",
                "Momentum: a ← βa + g, W ← W - ηa",
                "a_{t+1} ← β a_t + g_t",
                "optim.Momentum (torch form)",
                _torch_form,
            ),
            C(
                "002.12",
                "NAG",
                "formula",
                "Nesterov: a ← βa + ∇L(W - ηβa), W ← W - ηa",
                "lookahead gradient",
                "optim.Nesterov(lookahead=True)",
                _nesterov_formula("with v = -ηa this is v ← βv - η∇L(W + βv), W ← W + v"),
            ),
            C(
                "002.13",
                "NAG",
                "claim",
                "NAG converges faster than momentum (provably)",
                "이론적으로도 momentum에 비해 높은 converge ratio",
                "experiment momentum",
                _E("momentum", "Nesterov converges faster", "sweep", panel="rate_sweep"),
            ),
            C(
                "002.14",
                "Adagrad",
                "formula",
                "AdaGrad: W ← W - η g/√(G + ε)",
                "G_t: sum of gradient squares",
                "optim.Adagrad(eps_inside_sqrt=True)",
                _adagrad_formula("G ← G + g²; W -= η g/√(G + ε)", 1e-8, True),
            ),
            C(
                "002.15",
                "Adagrad",
                "claim",
                "G keeps growing, so AdaGrad stops learning in long training",
                "긴 시간 학습 시 학습이 멈춰지는 현상",
                "experiment adaptive",
                _E(
                    "adaptive",
                    "AdaGrad's effective",
                    "RMSProp's effective",
                    "higher training loss",
                    panel="adagrad",
                ),
            ),
            C(
                "002.16",
                "Adadelta",
                "formula",
                "Adadelta: G and H moving averages, W ← W - √(H + ε)/√(G + ε) g",
                "H_t: EMA of difference squares",
                "optim.Adadelta",
                _E("adaptive", "float64 loop"),
            ),
            C(
                "002.17",
                "Adadelta",
                "claim",
                "Adadelta has no learning rate",
                "learning rate 존재 x",
                "experiment adaptive",
                _E("adaptive", "every unit", "single eps", "best learning rate", panel="adadelta"),
            ),
            C(
                "002.18",
                "RMSprop",
                "formula",
                "RMSProp: G ← γG + (1-γ)g², W ← W - η g/√(G + ε)",
                "G_t: EMA of gradient squares",
                "optim.RMSprop(eps_inside_sqrt=True)",
                _rms_formula(True, 1e-8, "G ← γG + (1-γ)g²; W -= η g/√(G + ε)"),
            ),
            C(
                "002.19",
                "Adam",
                "formula",
                "Adam: W ← W - η/√(v + ε) · √(1-β2^t)/(1-β1^t) · m",
                "W_{t+1} = W_t - η/√(v_t+ε) √(1-β2^t)/(1-β1^t) m_t",
                "optim.Adam(eps_inside_sqrt=True)",
                _adam_formula(
                    "the corrections folded into the step equal Adam with eps inside",
                    inside=True,
                    bias=True,
                    folded=True,
                ),
            ),
            C(
                "002.20",
                "Adam",
                "claim",
                "Tip: ε = 1e-7 matters in practice",
                "ε=10^{-7}을 잘 바꾸어 주는 것이 중요",
                "experiment adaptive",
                _E("adaptive", "eps = 1e-7", "hardly anywhere", panel="adam_eps"),
            ),
            C(
                "002.21",
                "Early stopping",
                "claim",
                "Early stopping: stop when validation stops improving",
                "Early stopping",
                "experiment regularization",
                _E("regularization", "early stopping"),
            ),
            C(
                "002.22",
                "Parameter norm penalty",
                "formula",
                "total cost = loss + α/2 ‖W‖² (weight decay)",
                "Weight decay라고도 함",
                "optim add_l2; regularize.l2_penalty",
                _l2_penalty,
            ),
            C(
                "002.23",
                "Data augmentation",
                "claim",
                "More (augmented) data generalizes better",
                "데이터 증대(data augmentation) 필요",
                "experiment regularization",
                _reg_method("augmentation", "random 1-pixel shifts"),
            ),
            C(
                "002.24",
                "Noise robustness",
                "claim",
                "Noise on the inputs robustifies",
                "입력 또는 파라미터에 random noise를 추가",
                "experiment regularization",
                _reg_method("input_noise", "input noise"),
            ),
            C(
                "002.25",
                "Noise robustness",
                "claim",
                "Noise on the weights robustifies",
                "입력 또는 파라미터에 random noise를 추가",
                "experiment regularization",
                _reg_method("weight_noise", "weight noise"),
            ),
            C(
                "002.26",
                "Label smoothing",
                "claim",
                "Label smoothing",
                "Label smoothing",
                "regularize.smooth_labels; experiment regularization",
                _label_smoothing,
            ),
            C(
                "002.27",
                "Label smoothing: mixup",
                "claim",
                "Mixup: mix inputs and labels of two examples",
                "mixing both input and output",
                "regularize.mixup",
                _mixup,
            ),
            C(
                "002.28",
                "Label smoothing: CutMix",
                "claim",
                "CutMix: paste a patch, mix labels by area",
                "cut and paste",
                "regularize.cutmix; experiment regularization",
                _reg_method("cutmix", "cutmix"),
            ),
            C(
                "002.29",
                "Dropout",
                "claim",
                "Dropout: zero random neurons in each forward pass",
                "randomly set some neurons to zero",
                "models (dropout); experiment regularization",
                _reg_method("dropout", "dropout p 0.5"),
            ),
            C(
                "002.30",
                "Batch normalization",
                "formula",
                "Batch norm: μ_B, σ²_B, x̂ = (x - μ_B)/√(σ²_B + ε); it helps deep stacks",
                "compute the empirical mean and variance",
                "models (batch_norm); experiment regularization",
                _batch_norm_formula,
            ),
            C(
                "002.31",
                "Convolution",
                "formula",
                "Continuous convolution ∫ f(τ) g(t-τ) dτ",
                "Continuous convolution",
                "experiment convolution",
                _E(
                    "convolution",
                    "continuous",
                    "second form ∫",
                    "printed second form ∫",
                    "N(0,1)",
                    panel="continuous_conv",
                ),
            ),
            C(
                "002.32",
                "Convolution",
                "formula",
                "Discrete convolution Σ f(i) g(t-i), and torch's conv1d after the kernel flip",
                "Discrete convolution",
                "experiment convolution",
                _E(
                    "convolution",
                    "discrete",
                    "conv1d",
                    "lecture's two forms",
                    panel="discrete_conv",
                ),
            ),
            C(
                "002.33",
                "Convolution",
                "formula",
                "2-D convolution Σ_m Σ_n I(m,n) K(i-m, j-n), and torch's conv2d after the flip",
                "2D image convolution",
                "experiment convolution",
                _E("convolution", "2-D", "conv2d", "i-m, i-n", panel="conv2d"),
            ),
            C(
                "002.34",
                "RGB Image Convolution",
                "claim",
                "Input and output channels fix the kernels' shape",
                "Input channel과 output convolution feature map의 channel",
                "problems.convarith",
                _rgb,
            ),
            C(
                "002.35",
                "Stride & Padding",
                "claim",
                "Stride and padding set the output size",
                "Stride … Padding",
                "problems.convarith.conv_output_shape",
                _conv_shapes,
            ),
            C(
                "002.36",
                "AlexNet 파라미터 수",
                "table",
                "AlexNet's parameters per layer: 35k, 307k, 884k, 663k, 442k, 177M, 16M, 4M",
                "첫번째 층 파라미터 수 계산 → 35k",
                "descentlab convarith alexnet; experiment convolution",
                _E("convolution", "AlexNet", "rounds to", panel="params"),
            ),
            C(
                "002.37",
                "CNN",
                "claim",
                "The dense layers hold most parameters, so modern CNNs shrink them",
                "Dense 층이 일반적으로 훨씬 더 많은 파라미터 수",
                "experiment convolution",
                _E("convolution", "fully connected", panel="params"),
            ),
            C(
                "002.38",
                "CNN",
                "claim",
                "Why: a convolution shares one kernel over all positions",
                "각각의 커널이 모든 위치에 대해 동일하게 적용",
                "report.lecture_claims",
                _dense_vs_conv,
            ),
            C(
                "002.39",
                "1x1 Convolution",
                "claim",
                "A 1x1 convolution reduces channels: fewer parameters at more depth (bottleneck)",
                "To reduce the number of parameters",
                "descentlab convarith bottleneck",
                _E("convolution", "bottleneck"),
            ),
            C(
                "002.40",
                "Convolution arithmetic of GoogLeNet",
                "figure",
                "GoogLeNet's inception arithmetic",
                "Convolution Arithmetic of GoogLeNet",
                "descentlab convarith inception",
                _E("convolution", "inception", "reductions", panel="inception"),
            ),
        ],
        (
            "regularization",
            "bias_variance",
            "ensembles",
            "minibatch",
            "sharpness",
            "momentum",
            "adaptive",
            "convolution",
        ),
    ),
    Lecture(
        "003",
        "Momentum and adaptive learning rates",
        "momentum-and-adaptive-rates",
        "Artificial Intelligence & Deep Learning (Incheon National University), 5.2.3-5.2.4",
        "Momentum and Nesterov momentum, AdaGrad, RMSProp and Adam as the textbook prints "
        "them, the cs231n terrains, and learning-rate decay.",
        [
            C(
                "003.01",
                "5.2.3 모멘텀",
                "claim",
                "Momentum smooths the noisy gradient",
                "모멘텀은 그레이디언트에 스무딩을 가하여 잡음 효과 줄임",
                "report.lecture_claims",
                _ema_noise,
            ),
            C(
                "003.02",
                "5.2.3 모멘텀",
                "formula",
                "(5.12) v = αv - ρ ∂J/∂Θ, Θ = Θ + v",
                "(5.12)",
                "optim.Momentum(form='velocity')",
                _velocity_formula("v = αv - ρ∂J/∂Θ; Θ = Θ + v"),
            ),
            C(
                "003.03",
                "5.2.3 모멘텀",
                "claim",
                "α = 0 is the update without momentum",
                "α = 0 이면 모멘텀이 적용 안 된 이전 공식과 같음",
                "optim.Momentum",
                _alpha_zero,
            ),
            C(
                "003.04",
                "5.2.3 모멘텀",
                "claim",
                "α usually 0.5, 0.9, 0.99, or raised from 0.5 to 0.99 over training",
                "0.5로 시작하여 … 0.99에 도달",
                "schedules.Scheduler",
                _momentum_schedule,
            ),
            C(
                "003.05",
                "5.2.3 모멘텀",
                "formula",
                "SGD+Momentum (cs231n): v = ρv + ∇f, x -= αv",
                "vx = rho * vx + dx",
                "optim.Momentum (torch form)",
                _torch_form,
            ),
            C(
                "003.06",
                "Local minima / saddle / poor conditioning",
                "claim",
                "Momentum gets past local minima",
                "local minima 문제 해결",
                "experiment momentum",
                _E("momentum", "leaves it", panel="escape_sweep"),
            ),
            C(
                "003.07",
                "Saddle points",
                "figure",
                "… and saddle points (Fig. 5-13b)",
                "(b) 안장점 지형",
                "figure seed003_saddle",
                _terrain("saddle"),
            ),
            C(
                "003.08",
                "Poor conditioning",
                "figure",
                "… and ravines (Fig. 5-13a)",
                "(a) 협곡 지형",
                "figure seed003_ravine",
                _terrain("ravine"),
            ),
            C(
                "003.09",
                "모멘텀의 효과",
                "claim",
                "Momentum reduces overshooting (Fig. 5-10)",
                "오버슈팅 현상 누그러뜨림",
                "experiment momentum",
                _E("momentum", "travel", "overshoots", panel="overshoot"),
            ),
            C(
                "003.10",
                "네스테로프 모멘텀",
                "formula",
                "(5.13) Θ̃ = Θ + αv, v = αv - ρ∂J|Θ̃, Θ = Θ + v",
                "(5.13)",
                "optim.Nesterov(lookahead=True)",
                _nesterov_formula("Θ̃ = Θ + αv; v = αv - ρ∇J(Θ̃); Θ += v"),
            ),
            C(
                "003.11",
                "네스테로프 모멘텀",
                "formula",
                "The change of variables x̃ = x + ρv gives an update in x̃ and ∇f(x̃)",
                "Change of variables",
                "optim.Nesterov",
                _change_of_variables,
            ),
            C(
                "003.12",
                "5.2.4 적응적 학습률",
                "figure",
                "The learning rate's size: too large oscillates, too small is slow (Fig. 5-12)",
                "너무 크면 오버슈팅에 따른 진자 현상",
                "figure seed001_parabola_lr",
                _parabola_panels,
            ),
            C(
                "003.13",
                "5.2.4 적응적 학습률",
                "claim",
                "Adaptive rates: each parameter its own step",
                "매개변수마다 자신의 상황에 따라 학습률을 조절",
                "figure seed003_ravine",
                _rms_per_coordinate,
            ),
            C(
                "003.14",
                "AdaGrad",
                "algorithm",
                "Algorithm 5-3 AdaGrad (eps 1e-7 outside the root)",
                "알고리즘 5-3 AdaGrad",
                "optim.Adagrad",
                _adagrad_formula("r = r + g⊙g; ΔΘ = -ρ g/(ε + √r)", 1e-7, False),
            ),
            C(
                "003.15",
                "RMSProp",
                "claim",
                "AdaGrad weighs old and new gradients alike, so r grows and hinders convergence",
                "r이 점점 커져 수렴 방해할 가능성",
                "experiment adaptive",
                _E("adaptive", "AdaGrad's effective", "RMSProp's effective", panel="adagrad_loss"),
            ),
            C(
                "003.16",
                "RMSProp",
                "algorithm",
                "(5.14), Algorithm 5-4 RMSProp",
                "알고리즘 5-4 RMSProp",
                "optim.RMSprop",
                _rms_formula(False, 1e-7, "r = αr + (1-α)g⊙g; ΔΘ = -ρ g/(ε + √r)"),
            ),
            C(
                "003.17",
                "Adam",
                "algorithm",
                "Algorithm 5-5 Adam as printed (corrected moments stored back) differs from Adam",
                "알고리즘 5-5 Adam",
                "experiment adaptive (Algorithm55)",
                _E("adaptive", "Algorithm55", "step 1", "step 2", panel="printed_adam"),
            ),
            C(
                "003.18",
                "Adam",
                "claim",
                "Without bias correction the first step is huge",
                "Q: 첫 스텝에서 문제점? 엄청 커짐",
                "experiment adaptive; Adam(bias_correction=False)",
                _E("adaptive", "bias correction", "uncorrected steps", panel="adam_bias"),
            ),
            C(
                "003.19",
                "Adam",
                "claim",
                "Useful first values: β1 0.9, β2 0.999, lr 1e-3 or 5e-4",
                "beta1 = 0.9, beta2 = 0.999",
                "optim.Adam",
                _adam_defaults,
            ),
            C(
                "003.20",
                "Learning rate decay",
                "formula",
                "Step decay",
                "step decay",
                "schedules.step_decay",
                _decay("step"),
            ),
            C(
                "003.21",
                "Learning rate decay",
                "formula",
                "Exponential decay α = α0 e^(-kt)",
                "exponential decay",
                "schedules.exp_decay",
                _decay("exp"),
            ),
            C(
                "003.22",
                "Learning rate decay",
                "formula",
                "1/t decay α = α0/(1 + kt)",
                "1/t decay",
                "schedules.inverse_time",
                _decay("inv"),
            ),
            C(
                "003.23",
                "Learning rate decay",
                "claim",
                "Decay the learning rate over time: decays end below a fixed rate's noise floor",
                "Learning rate decay over time!",
                "experiment schedules",
                _E("schedules", "", whole=True),
            ),
            C(
                "003.24",
                "Momentum forms",
                "claim",
                "lr inside (v = αv - ρg) vs outside "
                "(v = ρv + g; x -= αv) the buffer: equal until the lr changes",
                "v = αv - ρ ∂J/∂Θ vs vx = rho * vx + dx",
                "experiment momentum_forms",
                _E("momentum_forms", "", whole=True),
            ),
        ],
        ("momentum", "adaptive", "schedules", "momentum_forms"),
    ),
    Lecture(
        "004",
        "Losses and optimizers in PyTorch",
        "losses-and-optimizers",
        "PyTorch로 딥러닝 제대로 배우기, Part 8: Loss and Optimizer",
        "L1, MSE, cross-entropy, KL divergence and triplet margin loss; the derivative; "
        "the learning rate; SGD, momentum, AdaGrad, RMSProp and Adam in PyTorch.",
        [
            C(
                "004.01",
                "L1 / MSE",
                "example",
                "L1 and MSE on the lecture's numbers",
                "|3-1| = 2, |11-1| = 10; (3-1)^2 = 4, (11-1)^2 = 100",
                "losses.get('l1'/'mse')",
                _l1_mse,
            ),
            C(
                "004.02",
                "Entropy",
                "example",
                "Entropy: the fair coin is most uncertain; the die with five 1s is predictable",
                "동전 … 6면 주사위에서 5면이 1",
                "experiment information",
                _E("information", "coin", "die", "H(p) =", panel="entropy"),
            ),
            C(
                "004.03",
                "Cross Entropy",
                "formula",
                "H(p, q) = -Σ p log q; torch's "
                "CrossEntropyLoss includes the softmax, class weights and ignore_index",
                "l_n = -w_{y_n} log softmax · 1{y_n ≠ ignore_index}",
                "losses.get('cross_entropy')",
                _ce_torch,
            ),
            C(
                "004.04",
                "KLDivLoss",
                "formula",
                "D_KL(P‖Q) = H(P, Q) - H(P)",
                "= H(P,Q) - H(P)",
                "experiment information",
                _E(
                    "information",
                    "cross-entropy = entropy + KL",
                    "torch's",
                    "our KL",
                    panel="cross_entropy",
                ),
            ),
            C(
                "004.05",
                "KLDivLoss",
                "claim",
                "KL is asymmetric: forward D_KL(P‖Q) vs reverse "
                "D_KL(Q‖P); H(P, Q) is smallest at Q = P",
                "D_KL(P‖Q) ≠ D_KL(Q‖P)",
                "losses kl_div_forward / kl_div_reverse",
                _kl_directions,
            ),
            C(
                "004.06",
                "TripletMarginLoss",
                "formula",
                "Triplet margin loss pulls positives in, pushes negatives out",
                "Anchor … Positive … Negative",
                "losses.triplet_margin",
                _triplet,
            ),
            C(
                "004.07",
                "미분의 개념",
                "formula",
                "The derivative as a limit lim (f(x+h) - f(x))/h",
                "df(x)/dx = lim_{h→0}",
                "landscapes.finite_difference_grad",
                _derivative_limit,
            ),
            C(
                "004.08",
                "Learning rate",
                "claim",
                "Too large diverges, too small is slow",
                "학습률이 너무 크면 … 발산",
                "figure seed001_parabola_lr",
                _lr_scale,
            ),
            C(
                "004.09",
                "Gradient Descent",
                "formula",
                "W ← W - η ∂L/∂W",
                "W ← W - η ∂L/∂W",
                "optim.SGD",
                _sgd_formula,
            ),
            C(
                "004.10",
                "Momentum",
                "figure",
                "SGD zig-zags; momentum (v ← αv - η∂L/∂W) moves faster",
                "SGD는 상당히 비 효율적인 움직임",
                "figure seed003_ravine",
                _momentum_vs_sgd,
            ),
            C(
                "004.11",
                "AdaGrad",
                "formula",
                "AdaGrad: h ← h + g², W ← W - η g/√h",
                "h ← h + (∂L/∂W)^2",
                "optim.Adagrad(eps=0)",
                _adagrad_formula("h ← h + g²; W -= η g/√h", 0.0, False),
            ),
            C(
                "004.12",
                "RMSProp",
                "formula",
                "RMSProp: G ← γG + (1-γ)g², W ← W - η g/√(G + ε)",
                "지수 이동평균",
                "optim.RMSprop(eps_inside_sqrt=True)",
                _rms_formula(True, 1e-8, "G ← γG + (1-γ)g²; W -= η g/√(G + ε)"),
            ),
            C(
                "004.13",
                "Adam",
                "algorithm",
                "Adam, Algorithm 1 of Kingma & Ba (defaults α 1e-3, β 0.9/0.999, ε 1e-8)",
                "Algorithm 1: Adam",
                "optim.Adam; tests/test_optim_parity.py",
                _adam_torch,
            ),
            C(
                "004.14",
                "Adam",
                "algorithm",
                "The printed last line θ ← θ - α m_t/√(v_t + ε) (no bias correction, ε inside)",
                "θ_t ← θ_{t-1} - α m_t/(√(v_t + ε))",
                "optim.Adam(bias_correction=False, eps_inside_sqrt=True)",
                _adam_formula("θ -= α m/√(v + ε)", inside=True, bias=False),
            ),
            C(
                "004.15",
                "6. 정리하기",
                "claim",
                "Adam or RMSProp is usually a good choice",
                "왠만한 상황이면 Adam or RMSProp 알고리즘이 좋다",
                "figure lr_heatmap_rosenbrock",
                _adam_rms_good,
            ),
        ],
        ("information",),
    ),
]


def coverage_markdown() -> str:
    """The coverage table of every lecture item: key, kind, item, where it is shown."""
    out = [
        "# The lectures' items and where each is shown",
        "",
        "Generated by `python -m descentlab.report.lecture_claims`; the lecture book "
        "(`descentlab lectures --out DIR`) shows each item with its checks.",
        "",
    ]
    total = 0
    for lec in LECTURES:
        out += [
            f"## {lec.subject} (seed {lec.seed}, `{lec.slug}.html`)",
            "",
            "| # | kind | item | shown / verified by |",
            "|---|---|---|---|",
        ]
        for cl in lec.claims:
            text = cl.text.replace("|", "\\|")
            where = cl.where.replace("|", "\\|")
            out.append(f"| {cl.key} | {cl.kind} | {text} | `{where}` |")
            total += 1
        out.append("")
    out.insert(4, f"{total} items in {len(LECTURES)} lectures.")
    out.insert(5, "")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(coverage_markdown(), end="")
