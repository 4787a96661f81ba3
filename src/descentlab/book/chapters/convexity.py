"""Convexity, in depth: convex sets and functions, Jensen's inequality, the first- and
second-order conditions, why a local minimum of a convex loss is global, strong convexity and
the condition number's toll on gradient descent (measured iterations against the
(1 - 1/κ)ᵗ bound), and the lectures' non-convex counter-examples: x·sin x and a trained
network whose hidden units are permuted. Measured with descentlab's SGD and engine against
closed forms, scipy and autograd."""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.optimize
import torch

from descentlab import optim
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.problems import models
from descentlab.report import figures as FG

__all__ = ["CHAPTER"]

#: the random triples of each chord test, the logistic problem's examples and features
TRIPLES, N, P = 2000, 200, 5
#: Jensen's Monte Carlo draws
DRAWS = 1_000_000
#: the condition numbers of the rate table, the dimension of its quadratics, the target
KAPPAS, DIM, TARGET = (10, 100, 1000), 10, 1e-6
#: x·sin x (item 44): the interval, the starts of gradient descent, its rate and steps
LO, HI, STARTS, XLR, XSTEPS = -6.0, 12.0, 20, 0.05, 300
#: gradient descent from several starts on the convex logistic loss
LOGSTARTS, LOGLR, LOGSTEPS = 10, 5.0, 500
#: the live figure's steps and its probes (κ, η)
MOVE_STEPS, MOVE_PROBES = 3000, ((10.0, 1.0), (50.0, 1.5))
#: the training run on digits: Adam's rate, steps, the points along the segment
TRAIN_LR, TRAIN_STEPS, SEGMENT = 0.003, 300, 11


def _logistic() -> tuple[torch.Tensor, torch.Tensor]:
    """A logistic-regression problem: features and 0/1 labels (float64)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(N, P, generator=g, dtype=torch.float64)
    w = torch.randn(P, generator=g, dtype=torch.float64)
    y = (torch.rand(N, generator=g, dtype=torch.float64) < torch.sigmoid(a @ w)).double()
    return a, y


def _logloss(w: torch.Tensor, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean logistic loss, softplus(z) - y z with z = A w."""
    z = a @ w
    return (torch.nn.functional.softplus(z) - y * z).mean()


def _xsinx(x: np.ndarray | float) -> np.ndarray | float:
    return x * np.sin(x)


# ------------------------------------------------------------------------------------------
# 1. convex sets, functions, Jensen

DEFINE = kit.Prose(
    """
A set is convex when the segment between any two of its points stays inside it; a function
is convex when the segment between two points of its graph, the chord, never passes below the
graph:

$$f(\\theta x + (1 - \\theta) y) \\le \\theta f(x) + (1 - \\theta) f(y),
\\quad 0 \\le \\theta \\le 1.$$

The two notions meet in the sublevel sets: for a convex f every set $\\{x : f(x) \\le c\\}$ is
convex, so a convex loss has no separate valleys. Item 8 of the lectures solves a loss in one
shot by setting its derivative to zero and warns that this works only for a quadratic,
convex loss; item 46 says that for a convex loss a local minimum is global and that practical
losses are almost never convex. This chapter makes both statements precise and measures them.

The chord test is easy to run. The build draws {{triples}} random triples (x, y, θ) and
evaluates both sides for two functions. The mean logistic loss of a {{n}}-example,
{{p}}-feature logistic regression, $\\frac1N \\sum \\log(1 + e^{z_i}) - y_i z_i$ with
$z = Aw$, is convex: {{log_bad}} triples break the inequality. The lectures' $x \\sin x$ on
[{{lo}}, {{hi}}] (item 44) is not: {{sin_bad}} of the triples break it, {{sin_share}} % of them.

Jensen's inequality is the chord condition for many points at once: for a convex f and a
random variable X, $f(\\mathbb{E}X) \\le \\mathbb{E}f(X)$. For $f = \\exp$ and a standard
normal X the right side is $e^{1/2}$ = {{ejensen}}, a Monte Carlo mean of {{draws}} draws
gives {{mc}}, and the left side is $e^0 = 1$: the gap is the price of averaging before
applying f. The inequality is why a log-likelihood of averaged predictions is not the average
of log-likelihoods, and why a model averaged over an ensemble has a loss no larger than the
members' mean loss when the loss is convex in the prediction.""",
    log_bad="violations of the chord inequality by the convex loss, against none",
    sin_bad="violations by x·sin x, counted again by numpy's vectorised evaluation",
    sin_share="the share of violated triples, against the count over the triples",
    ejensen="E exp(X) = exp(1/2), against scipy's quadrature of the normal density",
    mc="the Monte Carlo mean of exp(X), against exp(1/2) within 5 standard errors",
)


def _chords() -> dict[str, float]:
    """The chord test on the logistic loss and on x·sin x: counts of violations and the
    logistic loss's largest excess (float64)."""
    a, y = _logistic()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(TRIPLES, P, generator=g, dtype=torch.float64) * 3
    z = torch.randn(TRIPLES, P, generator=g, dtype=torch.float64) * 3
    th = torch.rand(TRIPLES, generator=g, dtype=torch.float64)
    excess = []
    for k in range(TRIPLES):
        left = _logloss(th[k] * x[k] + (1 - th[k]) * z[k], a, y)
        right = th[k] * _logloss(x[k], a, y) + (1 - th[k]) * _logloss(z[k], a, y)
        excess.append(float(left - right))
    rng = np.random.default_rng(2)
    u, v, t = rng.uniform(LO, HI, (3, TRIPLES))
    t = (t - LO) / (HI - LO)
    loop = sum(
        _xsinx(t[k] * u[k] + (1 - t[k]) * v[k]) > t[k] * _xsinx(u[k]) + (1 - t[k]) * _xsinx(v[k])
        for k in range(TRIPLES)
    )
    vec = int(np.sum(_xsinx(t * u + (1 - t) * v) > t * _xsinx(u) + (1 - t) * _xsinx(v)))
    return {
        "log_bad": sum(e > 1e-12 for e in excess),
        "log_gap": max(excess),
        "sin_bad": int(loop),
        "sin_vec": vec,
    }


def _define(ctx: Context, n: kit.Numbers) -> Part:
    c = ctx.memo(("chapter", "convexity", "chords"), _chords)
    draws = np.exp(np.random.default_rng(3).standard_normal(DRAWS))
    se = float(draws.std() / math.sqrt(DRAWS))
    quad = scipy.integrate.quad(lambda s: math.exp(s) * math.exp(-s * s / 2), -40, 40)[0]
    text = DEFINE.fill(
        n,
        triples=str(TRIPLES),
        n=str(N),
        p=str(P),
        lo=f"{LO:g}",
        hi=f"{HI:g}",
        draws=str(DRAWS),
        log_bad=(c["log_bad"], 0, 0),
        sin_bad=(c["sin_bad"], c["sin_vec"], 0),
        sin_share=kit.Twin(100 * c["sin_bad"] / TRIPLES, 100 * c["sin_vec"] / TRIPLES, 1e-12, 3),
        ejensen=(math.exp(0.5), quad / math.sqrt(2 * math.pi), 1e-9, 4),
        mc=kit.Twin(float(draws.mean()), math.exp(0.5), 5 * se, 4, rel=False),
    )
    checks = [
        ck(
            "x·sin x is not convex: some chord passes below its graph",
            c["sin_bad"] > 0,
            c["sin_bad"],
            "> 0",
        ),
        ck(
            "Jensen: f(E X) = 1 lies below E f(X) for f = exp",
            float(draws.mean()) > 1.0,
            f"{float(draws.mean()):.4f}",
            "> 1",
        ),
    ]
    return Part("define", "Convex sets, convex functions, Jensen", [text, checks])


# ------------------------------------------------------------------------------------------
# 2. first- and second-order conditions

CONDITIONS = kit.Prose(
    """
For a differentiable f the chord condition is equivalent to a statement about tangents: the
tangent plane at any point lies below the graph everywhere,

$$f(y) \\ge f(x) + \\nabla f(x)^\\top (y - x).$$

This first-order condition is the reason convexity makes optimisation easy. At a point where
$\\nabla f(x) = 0$ it reads $f(y) \\ge f(x)$ for every y: a stationary point is a global
minimum. On the logistic loss the build checks the tangent inequality at the same
{{triples}} pairs of points, with the gradient from autograd: the smallest value of
$f(y) - f(x) - \\nabla f(x)^\\top(y - x)$ is {{tangent}}, never negative.

For a twice-differentiable f, convexity is equivalent to a positive semi-definite Hessian
everywhere, $\\nabla^2 f(x) \\succeq 0$: the second-order condition, the many-variable form of
item 9's second-derivative test. The logistic loss's Hessian has a closed form,
$\\frac1N A^\\top \\mathrm{diag}(\\sigma_i(1 - \\sigma_i)) A$, a weighted covariance of the
features, which cannot have a negative eigenvalue. The table compares it with autograd's
Hessian at points ever farther from the origin: the two agree to {{hess_diff}}, and the
smallest eigenvalue stays positive but shrinks as the point moves out, because
$\\sigma(1 - \\sigma)$ vanishes where the model is confident. The loss is convex but, far out,
barely curved: strictly convex without a uniform lower bound on its curvature. Item 9's test
for one variable becomes, in many, the signs of the Hessian's eigenvalues: all positive at a
stationary point, a local minimum; mixed signs, a saddle (item 97).""",
    tangent="the smallest tangent gap, f(y) - f(x) - ∇f(x)ᵀ(y - x), against 0 or above",
    hess_diff="the largest difference between the closed-form and autograd Hessians",
)

RADII = (0.0, 1.0, 3.0, 10.0)


def _hessians() -> list[tuple[float, float, float, float]]:
    """At points of growing norm: the radius, the smallest eigenvalue of the closed-form and
    of autograd's Hessian, and their largest entrywise difference."""
    a, y = _logistic()
    g = torch.Generator().manual_seed(4)
    d = torch.randn(P, generator=g, dtype=torch.float64)
    d = d / d.norm()
    out = []
    for r in RADII:
        w = r * d
        s = torch.sigmoid(a @ w)
        closed = a.T @ (a * (s * (1 - s))[:, None]) / N
        auto = torch.autograd.functional.hessian(lambda v: _logloss(v, a, y), w)
        out.append(
            (
                r,
                float(torch.linalg.eigvalsh(closed)[0]),
                float(torch.linalg.eigvalsh(auto)[0]),
                float((closed - auto).abs().max()),
            )
        )
    return out


def _tangents() -> float:
    """The smallest tangent gap over random pairs on the logistic loss."""
    a, y = _logistic()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(TRIPLES, P, generator=g, dtype=torch.float64) * 3
    z = torch.randn(TRIPLES, P, generator=g, dtype=torch.float64) * 3
    gaps = []
    for k in range(TRIPLES):
        xk = x[k].clone().requires_grad_(True)
        fx = _logloss(xk, a, y)
        (gx,) = torch.autograd.grad(fx, xk)
        gaps.append(float(_logloss(z[k], a, y) - fx.detach() - gx @ (z[k] - x[k])))
    return min(gaps)


def _conditions(ctx: Context, n: kit.Numbers) -> Part:
    rows = ctx.memo(("chapter", "convexity", "hessians"), _hessians)
    tangent = ctx.memo(("chapter", "convexity", "tangents"), _tangents)
    text = CONDITIONS.fill(
        n,
        triples=str(TRIPLES),
        tangent=kit.Twin(tangent, max(tangent, 0.0), 1e-15, 3, rel=False),
        hess_diff=kit.Twin(max(r[3] for r in rows), 0.0, 1e-12, 2, rel=False),
    )
    eig = [r[1] for r in rows]
    checks = [
        ck(
            "the smallest eigenvalue of the Hessian is positive at every point (closed form "
            "and autograd)",
            min(min(r[1], r[2]) for r in rows) > 0,
            ", ".join(f"{v:.3g}" for v in eig),
            "> 0",
        ),
        ck(
            "and it shrinks as the point moves away from the origin",
            all(a > b for a, b in itertools.pairwise(eig)),
            ", ".join(f"{v:.3g}" for v in eig),
            "decreasing",
        ),
    ]
    table = Table(
        ["‖w‖", "smallest eigenvalue, closed form", "smallest eigenvalue, autograd", "max |diff|"],
        [list(r) for r in rows],
        f"the logistic loss's Hessian ({N} examples, {P} features) along one direction",
    )
    return Part("conditions", "The first- and second-order conditions", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 3. local minima are global, and where they are not

LOCAL = kit.Prose(
    """
Put the two conditions to work. The build runs descentlab's `SGD` (full batch, η =
{{loglr}}) for {{logsteps}} steps on the logistic loss from {{logstarts}} random starts. Every
run ends at the same loss, {{logmin}}, spread over the starts by {{logspread}}, and scipy's
L-BFGS-B, another method, finds the same minimum value. A convex loss has one valley; every
start finds its floor.

The lectures' $x \\sin x$ (item 44) shows the other case. On [{{lo}}, {{hi}}] its derivative
${{f:xsin_slope}}$ vanishes at {{roots}} points, found by scipy's brentq between sign changes
of the derivative; {{minima}} of them are minima, by the second-derivative test of item 9.
Gradient descent (η = {{xlr}}, {{xsteps}} steps) from {{xstarts}} starts spread over the
interval ends in {{found}} different minima, and only
{{global_share}} % of the starts reach the lowest one, {{global_value}} at x = {{global_x}}: a
local minimum is not global when the function is not convex. Item 46's caveat is this
picture; item 44's two starts, 2.5 and 1.5 at rate 0.25, are two of these valleys.""",
    logmin="the minimum value, against scipy's L-BFGS-B",
    logspread="the largest difference of the final losses over the starts, against 0",
    roots="stationary points by brentq, against the sign changes on a fine grid",
    minima="stationary points with f'' > 0, against the local minima of a fine grid",
    found="distinct minima reached by descent, against the minima with a start in their basin",
    global_share="the share of starts that reach the lowest minimum, counted again",
    global_value="the lowest minimum's value, against a fine grid's minimum",
    global_x="the lowest minimum's x, against a fine grid's argmin",
)


def _log_starts() -> tuple[list[float], float]:
    """Final losses of descentlab's SGD from several starts, and scipy's minimum."""
    a, y = _logistic()
    g = torch.Generator().manual_seed(5)
    finals = []
    for _ in range(LOGSTARTS):
        w = torch.nn.Parameter(torch.randn(P, generator=g, dtype=torch.float64) * 3)
        opt = optim.SGD([w], lr=LOGLR)
        for _ in range(LOGSTEPS):
            opt.zero_grad()
            _logloss(w, a, y).backward()
            opt.step()
        finals.append(float(_logloss(w.detach(), a, y)))
    an, yn = a.numpy(), y.numpy()

    def f(v: np.ndarray) -> tuple[float, np.ndarray]:
        z = an @ v
        s = 1 / (1 + np.exp(-z))
        return float(np.mean(np.logaddexp(0, z) - yn * z)), an.T @ (s - yn) / N

    best = scipy.optimize.minimize(f, np.zeros(P), jac=True, method="L-BFGS-B", tol=1e-14)
    return finals, float(best.fun)


def _xsinx_runs() -> dict[str, object]:
    """Stationary points of x·sin x, and gradient descent from evenly spread starts."""
    grid = np.linspace(LO, HI, 200_000)  # (0, a stationary point, is not on it)
    d = np.sin(grid) + grid * np.cos(grid)
    sign = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
    roots = [scipy.optimize.brentq(lambda x: math.sin(x) + x * math.cos(x), grid[i], grid[i + 1])
             for i in sign]  # fmt: skip
    minima = [r for r in roots if 2 * math.cos(r) - r * math.sin(r) > 0]
    f = _xsinx(grid)
    grid_min = [i for i in range(1, len(grid) - 1) if f[i] < f[i - 1] and f[i] < f[i + 1]]
    starts = np.linspace(LO + 0.1, HI - 0.1, STARTS)
    ends = []
    for s in starts:
        w = torch.nn.Parameter(torch.tensor([s], dtype=torch.float64))
        opt = optim.SGD([w], lr=XLR)
        for _ in range(XSTEPS):
            opt.zero_grad()
            (w * torch.sin(w)).sum().backward()
            opt.step()
        ends.append(float(w.detach()))
    reached = sorted({round(e, 6) for e in ends if LO <= e <= HI})
    basin = [m for m in minima if any(abs(e - m) < 1e-4 for e in ends)]
    low = min(minima, key=_xsinx)
    return {
        "roots": roots,
        "sign": len(sign),
        "minima": minima,
        "grid_min": [float(grid[i]) for i in grid_min],
        "grid_argmin": float(grid[np.argmin(f)]),
        "grid_min_value": float(f.min()),
        "ends": ends,
        "reached": reached,
        "basin": basin,
        "low": low,
        "starts": starts,
    }


def _local(ctx: Context, n: kit.Numbers) -> Part:
    finals, best = ctx.memo(("chapter", "convexity", "log-starts"), _log_starts)
    r = ctx.memo(("chapter", "convexity", "xsinx"), _xsinx_runs)
    low = r["low"]
    hits = sum(abs(e - low) < 1e-4 for e in r["ends"])
    hits2 = int(np.sum(np.abs(np.asarray(r["ends"]) - low) < 1e-4))
    text = LOCAL.fill(
        n,
        loglr=f"{LOGLR:g}",
        logsteps=str(LOGSTEPS),
        logstarts=str(LOGSTARTS),
        lo=f"{LO:g}",
        hi=f"{HI:g}",
        xlr=f"{XLR:g}",
        xsteps=str(XSTEPS),
        xstarts=str(STARTS),
        logmin=(float(np.mean(finals)), best, 1e-9, 6),
        logspread=kit.Twin(max(finals) - min(finals), 0.0, 1e-10, 2, rel=False),
        roots=(len(r["roots"]), r["sign"], 0),
        minima=(len(r["minima"]), len(r["grid_min"]), 0),
        found=(len(r["reached"]), len(r["basin"]), 0),
        global_share=kit.Twin(100 * hits / STARTS, 100 * hits2 / STARTS, 1e-12, 3),
        global_value=(_xsinx(low), r["grid_min_value"], 1e-8, 4),
        global_x=(low, r["grid_argmin"], 1e-4, 4),
    )
    fig = FG.new_figure(8.5, 3.4)
    ax = fig.subplots()
    xs = np.linspace(LO, HI, 1000)
    ax.plot(xs, _xsinx(xs), color="#444444", lw=1.2, label="x·sin x")
    ax.scatter(r["starts"], _xsinx(r["starts"]), s=10, color="#0072B2", label="starts")
    ends = np.asarray(r["ends"])
    ax.scatter(ends, _xsinx(ends), s=40, marker="x", color="#D55E00", label="where descent ends")
    ax.set_xlabel("x")
    ax.set_ylabel("x·sin x")
    ax.set_title(
        f"gradient descent from {STARTS} starts (η = {XLR:g}, {XSTEPS} steps)", fontsize=10
    )
    ax.legend(fontsize=8)
    rows = [
        [f"{m:.4g}", f"{_xsinx(m):.4g}", sum(abs(e - m) < 1e-4 for e in r["ends"])]
        for m in r["minima"]
    ]
    table = Table(
        ["local minimum x", "x·sin x there", "starts that end there"],
        rows,
        f"x·sin x on [{LO:g}, {HI:g}]: its minima by brentq, and where descent from each "
        "start ends",
    )
    checks = [
        ck(
            "every start of the convex loss reaches the same minimum (spread below 1e-10)",
            max(finals) - min(finals) < 1e-10,
            f"{max(finals) - min(finals):.2g}",
            "< 1e-10",
        ),
        ck(
            "on x·sin x descent ends in more than one minimum, and every end is a minimum",
            len(r["reached"]) > 1
            and all(min(abs(e - m) for m in r["minima"]) < 1e-4 for e in r["ends"]),
            len(r["reached"]),
            "> 1, each a minimum",
        ),
    ]
    return Part("local", "A local minimum of a convex loss is global", [text, fig, table, checks])


# ------------------------------------------------------------------------------------------
# 4. strong convexity and the rate

RATE = kit.Prose(
    """
Convexity alone promises that descent does not get stuck; how fast it goes needs more. A
function is μ-strongly convex when $f - \\frac{\\mu}{2}\\|w\\|^2$ is still convex, that is when
every eigenvalue of its Hessian is at least μ; with L the largest eigenvalue (the gradient's
Lipschitz constant), the condition number $\\kappa = L/\\mu$ decides the rate. Gradient descent
at η = 1/L multiplies the error along an eigen-direction of curvature λ by $1 - \\lambda/L$ a
step, so

$$\\|w_t - w^*\\| \\le {{f:gd_rate}} \\|w_0 - w^*\\|,$$

and reaching a fraction ε of the initial error takes at most
${{f:gd_steps}}$, about ${{f:gd_steps_about}}$
steps: linear in κ. The table runs descentlab's `SGD` on quadratics in {{dim}} dimensions whose
curvatures are spread geometrically from 1/κ to 1, until the error falls below {{target}} of its
start. From the worst start, along the flattest direction, the run takes
exactly the bound's count: {{worst}} steps for κ = {{kappas}}. From a random start it takes no
more ({{random}}): the bound is a worst case, attained. κ = 1000 costs {{w1000}} steps,
{{ratio}} times the {{w100}} of κ = 100.

The best fixed rate, η = 2/(L + μ), balances the stiffest and the flattest direction and
contracts by ${{f:gd_best_rate}}$ a step: about half the steps, {{best}}, against the
formula's {{best_bound}}, still linear in κ. Momentum's $\\sqrt\\kappa$ (the momentum chapter)
and Newton's method, which removes κ altogether (the next chapter), are the two ways out.
Item 97's "poor conditioning" is this table.""",
    worst="steps from the flattest direction, against ⌈ln ε / ln(1 - 1/κ)⌉",
    random="steps from a random start, at most the bound",
    ratio="steps at κ = 1000 over steps at κ = 100, against the bounds' ratio",
    w1000="steps at κ = 1000 from the flattest direction, against the bound",
    w100="steps at κ = 100 from the flattest direction, against the bound",
    best="steps at η = 2/(L + μ) from the flattest direction, against ⌈ln ε / ln((κ-1)/(κ+1))⌉",
    best_bound="⌈ln ε / ln((κ-1)/(κ+1))⌉, against the run",
)


def _quadratic_steps(kappa: float, lr: float, start: str) -> int:
    """Steps of descentlab's SGD on ½ Σ λᵢwᵢ², λ from 1/κ to 1, until ‖w‖ ≤ TARGET ‖w₀‖."""
    lam = torch.tensor(np.geomspace(1 / kappa, 1, DIM), dtype=torch.float64)
    if start == "flat":
        w0 = torch.zeros(DIM, dtype=torch.float64)
        w0[0] = 1.0
    else:
        w0 = torch.randn(DIM, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    opt = optim.SGD([w], lr=lr)
    for t in range(1, 100 * int(kappa) + 100):
        w.grad = lam * w.detach()
        opt.step()
        if float(w.detach().norm()) <= TARGET * float(w0.norm()):
            return t
    return -1


def _bound(rate: float) -> int:
    return math.ceil(math.log(TARGET) / math.log(rate))


def _rates() -> list[dict[str, int]]:
    out = []
    for k in KAPPAS:
        best_lr = 2 / (1 + 1 / k)
        out.append(
            {
                "kappa": k,
                "bound": _bound(1 - 1 / k),
                "worst": _quadratic_steps(k, 1.0, "flat"),
                "random": _quadratic_steps(k, 1.0, "random"),
                "best": _quadratic_steps(k, best_lr, "flat"),
                "best_bound": _bound((k - 1) / (k + 1)),
            }
        )
    return out


def _rate(ctx: Context, n: kit.Numbers) -> Part:
    rows = ctx.memo(("chapter", "convexity", "rates"), _rates)
    text = RATE.fill(
        n,
        dim=str(DIM),
        target=f"{TARGET:g}",
        kappas=", ".join(str(k) for k in KAPPAS),
        worst=[(r["worst"], r["bound"], 0) for r in rows],
        random=[kit.Twin(r["random"], min(r["random"], r["bound"]), 0) for r in rows],
        ratio=(rows[2]["worst"] / rows[1]["worst"], rows[2]["bound"] / rows[1]["bound"], 1e-9, 3),
        w1000=(rows[2]["worst"], rows[2]["bound"], 0),
        w100=(rows[1]["worst"], rows[1]["bound"], 0),
        best=[(r["best"], r["best_bound"], 1, 3, False) for r in rows],
        best_bound=[(r["best_bound"], r["best"], 1, 3, False) for r in rows],
    )
    table = Table(
        [
            "κ",
            "bound ⌈ln ε/ln(1 - 1/κ)⌉",
            "η = 1/L, flattest start",
            "η = 1/L, random start",
            "η = 2/(L + μ), flattest start",
            "bound ⌈ln ε/ln((κ-1)/(κ+1))⌉",
        ],
        [[r[k] for k in ("kappa", "bound", "worst", "random", "best", "best_bound")] for r in rows],
        f"steps of descentlab's SGD until the error is {TARGET:g} of its start, {DIM}-d quadratics",
    )
    checks = [
        ck(
            "the steps grow linearly with κ: tenfold κ, between 9 and 11 times the steps",
            all(9 < b["worst"] / a["worst"] < 11 for a, b in itertools.pairwise(rows)),
            ", ".join(str(r["worst"]) for r in rows),
            "× 10 each",
        )
    ]
    return Part("rate", "Strong convexity and the condition number's toll", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 5. the figure to move

MOVE = kit.Prose(
    """
Move κ and the rate η over a two-dimensional quadratic with curvatures 1 and 1/κ, started at
(1, 1): the page runs gradient descent for {{steps}} steps itself and draws the error beside
the contraction bound $\\max_i |1 - \\eta\\lambda_i|^t$. At η = 1 the flat direction sets the
pace and the curve follows ${{f:gd_rate}}$; past η = 2/(L + μ) the stiff direction starts to
oscillate, and past η = 2 it diverges. The readout counts the steps to {{target}} of the start,
which the build's runs of descentlab's `SGD` reproduce at the probes.""",
)

MOVE_JS = """function (p) {
  var lam = [1, 1 / p.kappa], w = [1, 1], e0 = Math.sqrt(2), ts = [], err = [], bound = [];
  var rho = Math.max(Math.abs(1 - p.lr * lam[0]), Math.abs(1 - p.lr * lam[1])), hit = -1;
  for (var t = 0; t <= p.T; t++) {
    var e = Math.sqrt(w[0] * w[0] + w[1] * w[1]) / e0;
    ts.push(t); err.push(e); bound.push(Math.pow(rho, t));
    if (hit < 0 && e <= p.target) hit = t;
    w = [w[0] - p.lr * lam[0] * w[0], w[1] - p.lr * lam[1] * w[1]];
  }
  var why = {}, said = 'max |1 - ηλ| = ' + fmt(rho) + ' > 1: η = ' + fmt(p.lr) + ' is past ' +
    '2/λ = 2 on the steep direction (λ = 1), so each step multiplies the error there by ' +
    fmt(rho) + ' instead of shrinking it';
  if (rho > 1) why['gradient descent'] = why['max |1 - ηλ|^t'] = said;
  return {why: why, panels: [{x: {label: 'step t'}, y: {label: 'error / initial error', log: true},
    lines: [{x: ts, y: err, label: 'gradient descent'},
            {x: ts, y: bound, label: 'max |1 - ηλ|^t', dash: true, colour: '#999999'}]}],
    values: {steps: hit}, text: hit < 0 ? 'not within ' + p.T + ' steps' :
      'error below ' + fmt(p.target) + ' after ' + hit + ' steps'};
}"""


def _two_d_steps(kappa: float, lr: float) -> int:
    lam = torch.tensor([1.0, 1 / kappa], dtype=torch.float64)
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = optim.SGD([w], lr=lr)
    e0 = float(w.detach().norm())
    for t in range(1, MOVE_STEPS + 1):
        w.grad = lam * w.detach()
        opt.step()
        if float(w.detach().norm()) <= TARGET * e0:
            return t
    return -1


def _move(ctx: Context, n: kit.Numbers) -> Part:
    probes = [
        Probe({"kappa": k, "lr": lr}, {"steps": float(_two_d_steps(k, lr))})
        for k, lr in MOVE_PROBES
    ]
    fig = Live(
        "Move κ and η: gradient descent on a 2-d quadratic, computed in the page, and its bound.",
        [
            Slider("kappa", "κ", 1.0, 200.0, 10.0, log=True),
            Slider("lr", "η", 0.05, 2.2, 1.0),
        ],
        MOVE_JS,
        probes,
        against="the build's runs of descentlab's SGD",
        constants={"T": MOVE_STEPS, "target": TARGET},
    )
    text = MOVE.fill(n, steps=str(MOVE_STEPS), target=f"{TARGET:g}")
    return Part("move", "Move κ and η: the rate you see", [text, fig, []])


# ------------------------------------------------------------------------------------------
# 6. from scratch, and a real network

_scratch = kit.scratch(
    text="""
Gradient descent on the logistic loss from scratch, with the gradient written by hand,
$\\frac1N A^\\top(\\sigma(Aw) - y)$, next to descentlab's `SGD` driven by autograd: the build
checks that every iterate is the same, and the printout shows the loss falling to the floor
every start of the section above reached.""",
    code="""\
import torch
from descentlab import optim

g = torch.Generator().manual_seed(0)
A = torch.randn(200, 5, generator=g, dtype=torch.float64)
w_true = torch.randn(5, generator=g, dtype=torch.float64)
y = (torch.rand(200, generator=g, dtype=torch.float64) < torch.sigmoid(A @ w_true)).double()

def loss(w):
    z = A @ w
    return (torch.nn.functional.softplus(z) - y * z).mean()

def descend(w, lr, steps):                       # the gradient by hand
    path = []
    for _ in range(steps):
        w = w - lr * A.T @ (torch.sigmoid(A @ w) - y) / 200
        path.append(w)
    return torch.stack(path)

def descentlab_path(lr, steps):                  # the library, driven by autograd
    w = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt, path = optim.SGD([w], lr=lr), []
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path)

mine = descend(torch.zeros(5, dtype=torch.float64), 5.0, 300)
library = descentlab_path(5.0, 300)
for t in (0, 9, 99, 299):
    print(f"step {t + 1:3d}: loss {float(loss(mine[t])):.6f}")
print(f"largest difference from descentlab: {float((mine - library).abs().max()):.1e}")
""",
    what="gradient descent on the logistic loss from scratch gives descentlab's SGD iterates "
    "(300 steps)",
)


TRAINING = kit.Prose(
    """
A network's loss is where convexity ends, and the lectures' own model shows it without any
search for a bad case. The build trains descentlab's digits MLP (one hidden layer of
{{hidden}} ReLU units) on the scikit-learn digits with `Adam` (η = {{lr}}, batches of 64,
{{steps}} steps) through descentlab's engine, then permutes its hidden units: the rows of
the first layer, its biases and the columns of the second layer, all by the same
permutation. The permuted network computes exactly the same function, so its training loss
is the same, {{permuted}}, against the engine's {{trained}}. The two are equally low points of
the same loss, in two copies of one valley, which is repeated once for each of the $n!$
orderings of the units.

The chord between them is the test of convexity, and it fails: halfway between the two
networks the training loss is {{mid}}, {{times}} times the ends' value. A convex loss would
stay at or below the chord, which here is flat. Every network with a hidden layer has this
symmetry, so no such loss is convex; its minima come in families, and gradient descent finds
one of them: the lectures' item 46 in a real model. The second figure follows the loss along
the segment.""",
    permuted="the permuted network's training loss, against the network written out in float64",
    hidden="the first layer's rows, against the model's default options",
    trained="the trained network's training loss by a forward pass, against the engine's record",
    mid="the loss halfway, against the network written out in float64",
    times="the midpoint's loss over the ends', against the float64 networks'",
)


def _segment(result) -> dict[str, object]:
    """The trained MLP, its hidden units permuted, and the loss along the segment."""
    from descentlab.problems import data

    model = result.model
    s = data.load("digits", seed=0)
    x, y = s.x_train, s.y_train
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    first, second = lin[0], lin[1]
    perm = torch.randperm(first.out_features, generator=torch.Generator().manual_seed(7))
    base = [p.detach().clone() for p in (first.weight, first.bias, second.weight, second.bias)]
    moved = [base[0][perm], base[1][perm], base[2][:, perm], base[3]]

    def loss_at(params: list[torch.Tensor]) -> float:
        with torch.no_grad():
            for p, v in zip((first.weight, first.bias, second.weight, second.bias), params,
                            strict=True):  # fmt: skip
                p.copy_(v)
            return float(torch.nn.functional.cross_entropy(model(x), y))

    alphas = np.linspace(0, 1, SEGMENT)
    losses = [loss_at([(1 - a) * b + a * m for b, m in zip(base, moved, strict=True)])
              for a in alphas]  # fmt: skip
    loss_at(base)

    def float64(a: float) -> float:  # the second route: the network written out in float64
        w1, b1, w2, b2 = (
            (1 - a) * b.double() + a * m.double() for b, m in zip(base, moved, strict=True)
        )
        h = torch.relu(x.double().flatten(1) @ w1.T + b1)
        return float(torch.nn.functional.cross_entropy(h @ w2.T + b2, y))

    return {"hidden": first.out_features, "alphas": alphas, "losses": losses,
            "f64": [float64(0.0), float64(0.5), float64(1.0)]}  # fmt: skip


def _training(ctx: Context, n: kit.Numbers) -> Part:
    runs = {
        f"Adam, η = {TRAIN_LR:g}": {
            "problem": "digits",
            "model": "digits_mlp",
            "optimizer": "adam",
            "hyper": {"lr": TRAIN_LR},
            "batch_size": 64,
            "steps": TRAIN_STEPS,
            "eval_every": 25,
            "seed": 0,
        }
    }
    fig, res = kit.training_run(ctx, "convexity", runs, "digits")
    (result,) = res.values()
    seg = ctx.memo(("chapter", "convexity", "segment"), lambda: _segment(result))
    losses = seg["losses"]
    ends = (losses[0] + losses[-1]) / 2
    mid = losses[len(losses) // 2]
    text = TRAINING.fill(
        n,
        hidden=(seg["hidden"], models.default_options("digits_mlp")["hidden"][0], 0),
        lr=f"{TRAIN_LR:g}",
        steps=str(TRAIN_STEPS),
        permuted=(losses[-1], seg["f64"][2], 1e-5, 4),
        trained=(losses[0], kit.final(result, "train/loss"), 1e-4, 4),
        mid=(mid, seg["f64"][1], 1e-5, 3),
        times=(mid / ends, seg["f64"][1] / ((seg["f64"][0] + seg["f64"][2]) / 2), 1e-5, 3),
    )
    fig2 = FG.new_figure(8.5, 3.0)
    ax = fig2.subplots()
    along = f"{kit.WORDS['train/loss']} along the segment"
    ax.plot(seg["alphas"], losses, marker="o", ms=3, label=along)
    ax.plot([0, 1], [losses[0], losses[-1]], ls="--", color="#999999", label="the chord")
    ax.set_xlabel("α: (1 - α)·trained + α·permuted")
    ax.set_ylabel(kit.WORDS["train/loss"])
    ax.legend(fontsize=8)
    checks = [
        ck(
            "the permuted network has the trained one's training loss (float32, 1e-5 rel.)",
            abs(losses[-1] / losses[0] - 1) < 1e-5,
            f"{losses[-1]:.6g}",
            f"{losses[0]:.6g}",
        ),
        ck(
            "the loss is not convex: halfway it lies above the chord",
            mid > ends,
            f"{mid:.4g}",
            f"> {ends:.4g}",
        ),
    ]
    table = Table(
        ["α", kit.WORDS["train/loss"]],
        [[f"{a:.1f}", v] for a, v in zip(seg["alphas"], losses, strict=True)],
        "the segment from the trained network (α = 0) to its permuted copy (α = 1)",
    )
    return Part(
        "training",
        "A real network: permuted hidden units break convexity",
        [text, fig, fig2, table, checks],
    )


KEEP = """
What to keep. A convex function lies below its chords and above its tangents, and has a
positive semi-definite Hessian; so a stationary point of a convex loss is its global minimum,
and every start of descent reaches the same floor. Strong convexity (curvature at least μ)
and smoothness (at most L) give gradient descent a linear rate whose step count grows like
κ = L/μ, the bound attained from the flattest direction. A network's loss is not convex: its
hidden units can be permuted, and the chord between two equivalent minima rises above them."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.CONVEXITY

CHAPTER = kit.Chapter(
    "deep-convexity",
    "Convexity, in depth",
    "Convex sets and functions, Jensen's inequality, the first- and second-order conditions, "
    "why a local minimum of a convex loss is global, and the condition number's toll on "
    "gradient descent, measured against the (1 - 1/κ)ᵗ bound; and where convexity ends: "
    "x·sin x and a trained network whose hidden units are permuted.",
    (8, 9, 44, 46, 61, 97),
    (
        TRIPLES,
        N,
        P,
        DRAWS,
        *KAPPAS,
        DIM,
        TARGET,
        LO,
        HI,
        STARTS,
        XLR,
        XSTEPS,
        LOGSTARTS,
        LOGLR,
        LOGSTEPS,
        MOVE_STEPS,
        TRAIN_LR,
        TRAIN_STEPS,
        64,
        0,
        1,
        2,
        2.5,
        1.5,
        0.25,
    ),
    (_define, _conditions, _local, _rate, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
