"""Newton's method, preconditioning and line search, in depth: Newton's step and its one-step
solution of a quadratic, its quadratic convergence near a minimum (the digits doubling,
measured in 80-digit arithmetic), its failure far from the minimum and on non-convex ground,
a diagonal preconditioner and the adaptive methods (AdaGrad, RMSProp, Adam) as diagonal
preconditioners that a rotation defeats, and backtracking (Armijo) line search against a fixed
step, with descentlab's and torch's L-BFGS (strong Wolfe) as the library's reference."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import scipy.optimize
import torch

from descentlab import optim
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck
from descentlab.book.facts import Formula, word
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.book.render.pages import Check

__all__ = ["CHAPTER"]

#: the least-squares problem of the one-step solution: examples, features
LS_N, LS_P = 100, 8
#: Newton on e^x - 2x in 80 digits: the start, the iterations
X0, NEWTON_ITERS, DIGITS = 1.0, 5, 80
#: the digits' logistic regression: the two classes, its L2 penalty, the gradient tolerance
CLASSES, L2, GTOL = (3, 8), 0.01, 1e-8
#: gradient descent's cap of iterations, Armijo's constant and its shrinking factor
CAP, ARMIJO_C, SHRINK = 3000, 1e-4, 0.5
#: the preconditioning ravine: its curvatures, the steps compared, the rates
CURV, PRE_STEPS = (1.0, 100.0), 100
PRE_LRS = {"AdaGrad": 0.5, "RMSProp": 0.01, "Adam": 0.05}
#: Newton on √(1 + x²): the starts
NEAR, FAR, EDGE = 0.5, 1.5, 1.0
#: x·sin x, Newton's start
SIN_START = 2.5
#: the live figure: Newton's steps, the probes' starts
MOVE_T, MOVE_PROBES = 4, (0.9, 1.2)
#: the training runs on digits: optimizer -> rate, the steps, the seeds
TRAIN = {"sgd": 0.1, "adagrad": 0.03, "adam": 0.003, "shampoo": 0.003}
TRAIN_STEPS, TRAIN_SEEDS = 300, (0, 1)


# ------------------------------------------------------------------------------------------
# the rules the sections show, one SymPy expression each: typeset on the page (latex) and
# evaluated at each step of the chapter's Newton runs (autograd's derivatives)

NEWTON_STEP = Formula("w - H_inv*grad", {"H_inv": "H^{-1}", "grad": "\\nabla f(w)"})
#: Newton on √(1 + x²): the derivatives, the step they give and three steps of it
SQRT1_D1 = Formula("x/sqrt(1 + x**2)")
SQRT1_D2 = Formula("(1 + x**2)**(-3/2)")
SQRT1_STEP = Formula("-x**3")
SQRT1_THREE = Formula("-x**27")
#: the constant of Newton's quadratic convergence on e^x - 2x, f'''/(2f'') at the minimum x*
QUAD_C = Formula("exp(x_s)/(2*exp(x_s))", {"x_s": "x^*"})
#: Armijo's sufficient decrease, the one condition the line searches test (gradient descent's
#: on the digits, damped Newton's on √(1 + x²)): f_t the loss at the trial step t along d,
#: s the slope ∇f(w)ᵀd
ARMIJO = Formula(
    "f_t <= f_0 + c*t*s", {"f_t": "f(w + t d)", "f_0": "f(w)", "s": "\\nabla f(w)^\\top d"}
)
#: the halvings a search tries before it gives up (a condition that never holds)
MAX_HALVINGS = 60
#: what the rules are evaluated against: the chapter's Newton runs
AUTOGRAD = "Newton's iterates by autograd's derivatives"

# ------------------------------------------------------------------------------------------
# 1. Newton's step

STEP = kit.Prose(
    """
Gradient descent uses the slope alone and needs a learning rate to say how far to go. Newton's
method also uses the curvature. Near a point w the loss is approximately its second-order
Taylor model,

$$f(w + d) \\approx f(w) + \\nabla f(w)^\\top d + \\tfrac12 d^\\top \\nabla^2 f(w)\\, d,$$

and when the Hessian $H = \\nabla^2 f(w)$ is positive definite the model's minimum is at
$d = -H^{-1}\\nabla f(w)$. Newton's step goes there:

$$w \\leftarrow {{rule_newton}}.$$

No learning rate: the curvature sets the length of the step, direction by direction, a long
step where the loss is flat and a short one where it is steep. On a quadratic the model is
exact, so one step from anywhere lands on the minimum, the closed form of item 8. The build
takes one Newton step from zero on a least-squares problem of {{n}} examples and {{p}}
features, with the gradient and the Hessian from autograd, and lands within {{one_step}} of
numpy's least-squares solution, another method (an orthogonal factorisation).

The price is the Hessian (item 10): forming it costs $O(np^2)$ for n examples and p
parameters, solving with it $O(p^3)$, and storing it $p^2$ numbers. For the
{{params}} parameters of the digits MLP of the last section that is {{hess_entries}} entries;
for a large network, out of reach. Everything after this section is a way to
keep some of Newton's benefit at a gradient's cost.""",
    one_step="one Newton step's distance to numpy's lstsq solution, against 0",
    params="the digits MLP's parameters, against (64 + 1)·128 + (128 + 1)·10",
    hess_entries="the Hessian's entries, p², against p·p",
)


def _one_step() -> float:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(LS_N, LS_P, generator=g, dtype=torch.float64)
    y = torch.randn(LS_N, generator=g, dtype=torch.float64)

    def f(w: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((a @ w - y) ** 2).mean()

    w0 = torch.zeros(LS_P, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(f, w0)
    hess = torch.autograd.functional.hessian(f, w0)
    w1 = w0 - torch.linalg.solve(hess, grad)
    ls = np.linalg.lstsq(a.numpy(), y.numpy(), rcond=None)[0]
    return float(np.abs(w1.numpy() - ls).max())


def _step(ctx: Context, n: kit.Numbers) -> Part:
    dist = _one_step()
    params = (64 + 1) * 128 + (128 + 1) * 10
    text = STEP.fill(
        n,
        rule_newton=NEWTON_STEP.tex,
        n=str(LS_N),
        p=str(LS_P),
        one_step=kit.Twin(dist, 0.0, 1e-12, 2, rel=False),
        params=(params, 64 * 128 + 128 + 128 * 10 + 10, 0),
        hess_entries=(params**2, params * params, 0),
    )
    return Part("step", "Newton's step: the curvature sets the length", [text, []])


# ------------------------------------------------------------------------------------------
# 2. quadratic convergence

QUADRATIC = kit.Prose(
    """
Near a minimum with a positive definite Hessian, Newton's error squares each step:
$e_{t+1} \\approx C e_t^2$ with $C = |f'''(x^*)| / (2 f''(x^*))$ in one dimension. The number of
correct digits, $-\\log_{10} e_t$, doubles. The table runs Newton on $f(x) = e^x - 2x$, whose
minimum is $\\ln 2$, from x = {{x0}}, in {{digits}}-digit arithmetic (mpmath), so that the
doubling is visible past float64's precision: the correct digits go {{correct}}. The ratio
$e_{t+1}/e_t^2$ settles at {{ratio}}, the closed form's $C = {{c_tex}}$ = {{c}}. The
first iterates, run again in float64 with torch's autograd for both derivatives, agree with
the 80-digit ones to within {{f64}}.

Gradient descent at its best rate contracts by a fixed factor instead: linear convergence,
a constant number of digits gained per step. The second table is the difference on real data:
logistic regression on the scikit-learn digits' classes {{c1}} and {{c2}} ({{examples}}
training examples, {{features}} pixel features and a bias, an L2 penalty of {{l2}} so that the
minimum is unique). Newton reaches a gradient norm below {{gtol}} in {{newton_iters}} steps,
the norm falling from {{g1}} to {{g_last}}, and its minimum agrees with scipy's L-BFGS-B to
{{scipy_gap}} in the loss. Gradient descent at the fixed step 1/L, with L the bound
$\\|A\\|^2/(4N) + \\lambda$ on the curvature, is still above {{gtol}} after {{cap}} steps: its
gradient norm is {{gd_g}}.""",
    correct="−log10 of the 80-digit error, against 2·previous + log10(1/C) (the doubling)",
    ratio="e₅/e₄², against the closed form C",
    c="C = f'''/(2f'') at ln 2, against mpmath's derivatives",
    f64="the largest difference of the first iterates, float64 against 80 digits",
    newton_iters="Newton's steps, against scipy's Newton-CG count rounded to the same tolerance",
    g1="the gradient norm after one Newton step, against the float64 recomputation",
    g_last="the final gradient norm, against the recomputation at the final w",
    scipy_gap="the loss of Newton's minimum minus scipy's, against 0",
    gd_g="gradient descent's gradient norm after the cap, against the recomputation",
    examples="the two classes' training examples, against the labels counted",
    features="the features, against the pixels of an 8 × 8 image",
)


def _digits_newton() -> list[mpmath.mpf]:
    mpmath.mp.dps = DIGITS
    x, out = mpmath.mpf(X0), []
    star = mpmath.log(2)
    for _ in range(NEWTON_ITERS + 1):
        out.append(abs(x - star))
        x = x - (mpmath.exp(x) - 2) / mpmath.exp(x)
    return out


def _float_newton(steps: int) -> list[float]:
    x, out = torch.tensor(X0, dtype=torch.float64, requires_grad=True), []
    for _ in range(steps):
        f = torch.exp(x) - 2 * x
        (g,) = torch.autograd.grad(f, x, create_graph=True)
        (h,) = torch.autograd.grad(g, x)
        x = (x - g / h).detach().requires_grad_(True)
        out.append(float(x.detach()))
    return out


def _logistic_data() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits' two classes as a logistic regression: features with a bias column, 0/1."""
    from descentlab.problems import data

    s = data.load("digits", seed=0)
    keep = (s.y_train == CLASSES[0]) | (s.y_train == CLASSES[1])
    x = s.x_train[keep].flatten(1).double()
    a = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    return a, (s.y_train[keep] == CLASSES[1]).double()


def _loss(w: torch.Tensor, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = a @ w
    return (torch.nn.functional.softplus(z) - y * z).mean() + 0.5 * L2 * (w * w).sum()


def _grad(w: torch.Tensor, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return a.T @ (torch.sigmoid(a @ w) - y) / len(y) + L2 * w


def _newton_logistic() -> dict[str, object]:
    a, y = _logistic_data()
    w = torch.zeros(a.shape[1], dtype=torch.float64)
    norms = []
    while not norms or norms[-1] > GTOL:
        s = torch.sigmoid(a @ w)
        hess = a.T @ (a * (s * (1 - s))[:, None]) / len(y) + L2 * torch.eye(a.shape[1])
        w = w - torch.linalg.solve(hess, _grad(w, a, y))
        norms.append(float(_grad(w, a, y).norm()))
    an, yn = a.numpy(), y.numpy()

    def f(v: np.ndarray) -> tuple[float, np.ndarray]:
        z = an @ v
        val = np.mean(np.logaddexp(0, z) - yn * z) + 0.5 * L2 * v @ v
        return float(val), an.T @ (1 / (1 + np.exp(-z)) - yn) / len(yn) + L2 * v

    opts = {"gtol": 1e-12, "ftol": 1e-16, "maxiter": 10_000}
    best = scipy.optimize.minimize(
        f, np.zeros(a.shape[1]), jac=True, method="L-BFGS-B", options=opts
    )

    def hess(v: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-(an @ v)))
        return an.T @ (an * (p * (1 - p))[:, None]) / len(yn) + L2 * np.eye(len(v))

    ncg = scipy.optimize.minimize(
        f, np.zeros(a.shape[1]), jac=True, hess=hess, method="trust-exact", options={"gtol": GTOL}
    )
    lip = float(torch.linalg.matrix_norm(a, 2) ** 2) / (4 * len(y)) + L2
    return {
        "w": w,
        "norms": norms,
        "loss": float(_loss(w, a, y)),
        "scipy": float(best.fun),
        "trust_iters": int(ncg.nit),
        "lip": lip,
        "examples": len(y),
        "features": a.shape[1] - 1,
    }


def _backtrack(f, f0: float, slope: float, t: float) -> tuple[float, int]:
    """Armijo's backtracking as the page shows it (:data:`ARMIJO`): from the step ``t``,
    shrink it by :data:`SHRINK` until the condition holds at ``f(t)``, the loss ``t`` along
    the direction whose slope is ``slope``; the step and the shrinkings. A condition that
    never holds gives up after :data:`MAX_HALVINGS`, with the step 0 (a run that stalls)."""
    for k in range(MAX_HALVINGS):
        if ARMIJO.holds(f_t=f(t), f_0=f0, c=ARMIJO_C, t=t, s=slope):
            return t, k
        t *= SHRINK
    return 0.0, MAX_HALVINGS


def _gd(lr: float | None, armijo: bool) -> dict[str, object]:
    """Gradient descent on the digits' logistic regression: a fixed step ``lr`` or Armijo's
    backtracking (each step starts at twice the last accepted one); the gradient norms, the
    accepted steps and the violations of Armijo's condition."""
    a, y = _logistic_data()
    w = torch.zeros(a.shape[1], dtype=torch.float64)
    norms, steps, bad, t, evals = [], [], 0, 1.0, 0
    for _ in range(CAP):
        g = _grad(w, a, y)
        if float(g.norm()) <= GTOL:
            break
        f0 = float(_loss(w, a, y))
        slope = -float(g @ g)
        if armijo:
            t, shrunk = _backtrack(
                lambda s, w=w, g=g: float(_loss(w - s * g, a, y)), f0, slope, 2 * t
            )
            evals += shrunk
            if t == 0.0:  # (the search gave up: the run ends, short of the tolerance)
                break
            step = t
        else:
            step = lr
        new = w - step * g
        bad += not ARMIJO.holds(f_t=float(_loss(new, a, y)), f_0=f0, c=ARMIJO_C, t=step, s=slope)
        w = new
        steps.append(step)
        norms.append(float(_grad(w, a, y).norm()))
    return {"norms": norms, "steps": steps, "bad": bad, "w": w, "evals": evals}


def _quadratic_tables(errs: list, nl: dict, fixed: dict) -> tuple[Table, Table]:
    """The 80-digit errors' table and the digits' gradient norms' table."""
    rows = [
        [t, mpmath.nstr(e, 3), f"{-float(mpmath.log10(e)):.1f}" if e > 0 else "∞",
         mpmath.nstr(errs[t + 1] / e**2, 4) if t + 1 < len(errs) and e > 0 else ""]
        for t, e in enumerate(errs)
    ]  # fmt: skip
    gd_norms = fixed["norms"]
    table2 = Table(
        ["step", "Newton: ‖∇f‖", "gradient descent at 1/L: ‖∇f‖"],
        [
            [k + 1, nl["norms"][k] if k < len(nl["norms"]) else "", gd_norms[k]]
            for k in (0, 1, 2, 3, 4, 5, 6, 9, 99, 999, CAP - 1)
            if k < len(gd_norms)
        ],
        f"logistic regression, digits {CLASSES[0]} against {CLASSES[1]}, L2 {L2:g}",
    )
    table1 = Table(
        ["step t", "error |x_t - ln 2|", "correct digits", "e_{t+1}/e_t²"],
        rows,
        f"Newton on e^x - 2x from x = {X0:g}, {DIGITS}-digit arithmetic",
    )
    return table1, table2


def _quad_c() -> tuple[float, float]:
    """C as the page shows it (:data:`QUAD_C`) at x* = ln 2, and f'''/(2f'') by mpmath's
    derivatives of e^x - 2x there (the second route)."""
    cm = float(mpmath.diff(lambda x: mpmath.exp(x) - 2 * x, mpmath.log(2), 3)
               / (2 * mpmath.diff(lambda x: mpmath.exp(x) - 2 * x, mpmath.log(2), 2)))  # fmt: skip
    return QUAD_C(x_s=math.log(2)), cm


def _quadratic(ctx: Context, n: kit.Numbers) -> Part:
    errs = _digits_newton()
    digits = [float(-mpmath.log10(e)) for e in errs if e > 0]
    c, cm = _quad_c()
    ratio = float(errs[5] / errs[4] ** 2)
    fl = _float_newton(3)
    mp_it = []
    mpmath.mp.dps = DIGITS
    x = mpmath.mpf(X0)
    for _ in range(3):
        x = x - (mpmath.exp(x) - 2) / mpmath.exp(x)
        mp_it.append(float(x))
    nl = ctx.memo(("chapter", "newton", "logistic"), _newton_logistic)
    a, y = _logistic_data()
    fixed = ctx.memo(("chapter", "newton", "gd-fixed"), lambda: _gd(1 / nl["lip"], False))
    doubled = [2 * d + math.log10(1 / c) for d in digits[:-1]]
    text = QUADRATIC.fill(
        n,
        x0=f"{X0:g}",
        digits=str(DIGITS),
        correct=[
            kit.Twin(d, dd, 0.1, 3, rel=False)
            for d, dd in zip(digits[2:], doubled[1:], strict=False)
        ],
        ratio=(ratio, c, 1e-3, 4),
        c_tex=QUAD_C.tex,
        c=(c, cm, 1e-12),
        f64=kit.Twin(
            max(abs(p - q) for p, q in zip(fl, mp_it, strict=True)), 0.0, 1e-15, 2, rel=False
        ),
        c1=str(CLASSES[0]),
        c2=str(CLASSES[1]),
        examples=(nl["examples"], int(((y == 0) | (y == 1)).sum()), 0),
        features=(nl["features"], 8 * 8, 0),
        l2=f"{L2:g}",
        gtol=f"{GTOL:g}",
        newton_iters=(len(nl["norms"]), nl["trust_iters"], 2, 3, False),
        g1=(nl["norms"][0], float(_grad(_newton_w(1), a, y).norm()), 1e-7),
        g_last=(nl["norms"][-1], float(_grad(nl["w"], a, y).norm()), 1e-6, 2),
        scipy_gap=kit.Twin(nl["loss"] - nl["scipy"], 0.0, 1e-12, 2, rel=False),
        cap=str(CAP),
        gd_g=(fixed["norms"][-1], float(_grad(fixed["w"], a, y).norm()), 1e-9, 2),
    )
    table1, table2 = _quadratic_tables(errs, nl, fixed)
    gd_norms = fixed["norms"]
    checks = [
        ck(
            "the digits double: each step's correct digits are at least 1.9 times the last's "
            "once below 0.1",
            all(b >= 1.9 * a_ for a_, b in itertools.pairwise(digits)),
            ", ".join(f"{d:.1f}" for d in digits),
            "× 2 each",
        ),
        ck(
            "Newton converges in fewer than 20 steps; gradient descent not within the cap",
            len(nl["norms"]) < 20 and gd_norms[-1] > GTOL,
            f"{len(nl['norms'])}; {gd_norms[-1]:.2g}",
            f"< 20; > {GTOL:g}",
        ),
    ]
    return Part(
        "quadratic", "Quadratic convergence: the digits double", [text, table1, table2, checks]
    )


def _newton_w(steps: int) -> torch.Tensor:
    """The digits' logistic regression after ``steps`` Newton steps from 0, by autograd's
    Hessian (the second route of the hand-written one)."""
    a, y = _logistic_data()
    w = torch.zeros(a.shape[1], dtype=torch.float64)
    for _ in range(steps):
        h = torch.autograd.functional.hessian(lambda v: _loss(v, a, y), w)
        w = w - torch.linalg.solve(h, _grad(w, a, y))
    return w


# ------------------------------------------------------------------------------------------
# 3. far away and off convex ground

FAR_TEXT = kit.Prose(
    """
The squaring works both ways: far from the minimum, where the quadratic model is a poor
guide, Newton's step can overshoot and never come back. The classic example is convex:
$f(x) = \\sqrt{1 + x^2}$, with $f' = {{d1}}$ and $f'' = {{d2}}$, so Newton's
step is exactly $x \\leftarrow {{rule_cube}}$. From x = {{near}} it converges, faster than
quadratically: three steps reach {{near3}}. From x = {{edge}} it bounces between ±1 forever,
and from x = {{far}} it diverges: three steps reach {{far3}}, the closed form's
${{rule_three}}$ = {{far27}}.
The curvature there is small, the model's minimum far away.

On non-convex ground Newton looks for a point where the gradient vanishes, any such point. On
the lectures' $x \\sin x$ (item 44) from x = {{sin_start}}, where the curvature is negative
({{sin_curv}}), Newton climbs to the local maximum at {{sin_max}}, found also by brentq on
$f'$, and stops there: its second derivative is {{sin_max_curv}}. Item 9's second-derivative
test is what Newton skips. Practical Newton methods therefore damp the step: keep the
direction, and shorten it by backtracking until the loss falls enough (the last section's
Armijo rule), or fall back to the gradient where the Hessian is not positive definite. With
backtracking, Newton on $\\sqrt{1 + x^2}$ from {{far}} converges: {{damped_steps}} steps to
$|x| < 10^{-12}$.""",
    near3="Newton's x after three steps by autograd, against −x²⁷ from x₀",
    far3="Newton's x after three steps by autograd, against −x²⁷ from x₀",
    far27="−x₀²⁷, against the autograd run",
    sin_curv="f''(x₀) = 2cos x - x sin x, against autograd",
    sin_max="Newton's end on x·sin x, against brentq's root of f'",
    sin_max_curv="f'' at Newton's end, against the closed form 2cos x - x sin x",
    damped_steps="damped Newton's steps by autograd, against the same rule in plain numpy",
)


def _newton_1d(f, x0: float, steps: int, damped: bool = False) -> list[float]:
    """Newton on a 1-d ``f`` (a torch function) with autograd's derivatives; ``damped``:
    halve the step until Armijo's condition holds. Stops early when |x| < 1e-12 (damped)."""
    x, out = float(x0), []
    for _ in range(steps):
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(f(t), t, create_graph=True)
        (h,) = torch.autograd.grad(g, t)
        if float(h) == 0.0:  # (the curvature underflowed far out: no Newton step, the run ends)
            break
        d = -float(g.detach()) / float(h)
        s = 1.0
        if damped:
            fx = float(f(torch.tensor(x, dtype=torch.float64)))
            along = lambda u, x=x, d=d: float(f(torch.tensor(x + u * d, dtype=torch.float64)))  # noqa: E731
            s, _ = _backtrack(along, fx, float(g.detach()) * d, 1.0)
            if s == 0.0:  # (the search gave up: the run ends)
                break
        x = x + s * d
        out.append(x)
        if damped and abs(x) < 1e-12:
            break
    return out


def _numpy_damped(x: float) -> int:
    """Damped Newton on √(1 + x²) in plain numpy, derivatives by hand: its steps to 1e-12."""
    f = lambda v: math.sqrt(1 + v * v)  # noqa: E731
    for k in range(1, 200):
        g, h = x / f(x), f(x) ** -3
        d, s = -g / h, 1.0
        while f(x + s * d) > f(x) + ARMIJO_C * s * g * d:
            s *= SHRINK
        x += s * d
        if abs(x) < 1e-12:
            return k
    return -1


def _sqrt1(t: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(1 + t * t)


def _sqrt1_checks(runs: list[list[float]]) -> list[Check]:
    """Newton's step, √(1 + x²)'s derivatives and the step they give as the page shows them,
    evaluated at each iterate of ``runs`` (the chapter's autograd Newton, each from its x₀)."""
    starts = [x for r in runs for x in r[:-1]]
    after = [x for r in runs for x in r[1:]]
    return [
        kit.rule_check(
            "Newton's step as the page shows it, with f' and f'' as the page shows them, on "
            "√(1 + x²) from x₀ = 0.5, 1.5 and 1",
            [NEWTON_STEP(w=x, H_inv=1 / SQRT1_D2(x=x), grad=SQRT1_D1(x=x)) for x in starts],
            after,
            against=AUTOGRAD,
        ),
        kit.rule_check(
            "the step on √(1 + x²) as the page shows it, at the same iterates",
            [SQRT1_STEP(x=x) for x in starts],
            after,
            against=AUTOGRAD,
        ),
    ]


def _far(ctx: Context, n: kit.Numbers) -> Part:
    near = _newton_1d(_sqrt1, NEAR, 3)
    far = _newton_1d(_sqrt1, FAR, 3)
    edge = _newton_1d(_sqrt1, EDGE, 6)
    damped = _newton_1d(_sqrt1, FAR, 200, damped=True)
    sin = _newton_1d(lambda t: t * torch.sin(t), SIN_START, 30)
    root = scipy.optimize.brentq(lambda x: math.sin(x) + x * math.cos(x), 1.5, 2.4)
    t0 = torch.tensor(SIN_START, dtype=torch.float64, requires_grad=True)
    (g0,) = torch.autograd.grad(t0 * torch.sin(t0), t0, create_graph=True)
    (h0,) = torch.autograd.grad(g0, t0)
    end = sin[-1]
    text = FAR_TEXT.fill(
        n,
        d1=SQRT1_D1.tex,
        d2=SQRT1_D2.tex,
        rule_cube=SQRT1_STEP.tex,
        rule_three=SQRT1_THREE.tex,
        near=f"{NEAR:g}",
        edge=f"{EDGE:g}",
        far=f"{FAR:g}",
        sin_start=f"{SIN_START:g}",
        near3=(near[-1], SQRT1_THREE(x=NEAR), 1e-12),
        far3=(far[-1], SQRT1_THREE(x=FAR), 1e-12),
        far27=(SQRT1_THREE(x=FAR), far[-1], 1e-12),
        sin_curv=(2 * math.cos(SIN_START) - SIN_START * math.sin(SIN_START), float(h0), 1e-12),
        sin_max=(end, root, 1e-10, 4),
        sin_max_curv=(
            2 * math.cos(end) - end * math.sin(end),
            2 * math.cos(root) - root * math.sin(root),
            1e-6,
        ),
        damped_steps=(len(damped), _numpy_damped(FAR), 0),
    )
    checks = [
        *_sqrt1_checks([[x0, *xs] for x0, xs in ((NEAR, near), (FAR, far), (EDGE, edge))]),
        ck(
            "from x = 1 Newton bounces between ±1",
            all(abs(abs(v) - 1) < 1e-12 for v in edge) and edge[0] * edge[1] < 0,
            ", ".join(f"{v:g}" for v in edge),
            "±1",
        ),
        ck(
            "on x·sin x Newton ends at a maximum (f'' < 0) where the gradient vanishes",
            2 * math.cos(end) - end * math.sin(end) < 0
            and abs(math.sin(end) + end * math.cos(end)) < 1e-9,
            f"x = {end:.4f}",
            "f' = 0, f'' < 0",
        ),
    ]
    rows = [[k + 1, near[k], far[k], edge[k]] for k in range(3)]
    table = Table(
        [
            "Newton step",
            f"from {NEAR:g}",
            f"from {FAR:g}",
            f"from {EDGE:g}",
        ],
        rows,
        "Newton on √(1 + x²): x ← -x³, by autograd's derivatives",
    )
    return Part("far", "Far from the minimum, and off convex ground", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 4. a diagonal preconditioner and the adaptive methods

PRECONDITION = kit.Prose(
    """
Between gradient descent and Newton lies preconditioning: step along $-P^{-1}\\nabla f$ for a
cheap positive definite P that captures part of the curvature. The cheapest is diagonal,
$P = \\mathrm{diag}(H)$ (Jacobi), a learning rate per coordinate. On the ravine
$\\tfrac12(w_1^2 + {{stiff}}\\,w_2^2)$ of item 27, whose axes are the coordinates, it is the
Hessian itself, and one step at η = 1 lands on the minimum. Rotate the same ravine by 45° and
the Hessian's diagonal is $({{mean}}, {{mean}})$: the preconditioner is a multiple of the
identity and gradient descent is as slow as before. A diagonal preconditioner knows the
coordinates' scales, not the directions that mix them.

AdaGrad, RMSProp and Adam (items 28, 55, 57, 58, 108, 110) are diagonal preconditioners
estimated from the gradients: each divides coordinate i's step by $\\sqrt{v_i}$, a running
sum or average of $g_i^2$. The square root makes them scale-free (a coordinate whose
gradients are c times larger gets a c times smaller factor), which is a cruder
correction than Newton's $1/h_{ii}$ but costs a vector. The table measures the relative loss
after {{steps}} steps of descentlab's optimizers on both ravines. Gradient descent at its best
rate does not see the rotation: {{sgd_a}} on both (their relative difference is
{{sgd_diff}}). The adaptive
methods are far better than gradient descent on the aligned ravine (Adam {{adam_a}}) and lose
most of it on the rotated one (Adam {{adam_r}}): their preconditioner is diagonal. This is why
their advantage on a network depends on its parametrisation, and why Shampoo (the last
section) estimates a preconditioner for each layer's rows and columns instead of per weight.""",
    sgd_a="gradient descent's relative loss, against the rate formula ((κ-1)/(κ+1))^(2T)",
    sgd_diff="the largest difference between the aligned and rotated runs' losses",
    adam_a="Adam on the aligned ravine, against Kingma and Ba's loop in numpy",
    adam_r="Adam on the rotated ravine, against Kingma and Ba's loop in numpy",
    mean="the rotated Hessian's diagonal, against the mean of the curvatures",
)


def _ravine(make, rotated: bool, steps: int = PRE_STEPS) -> float:
    """Relative loss after ``steps`` of ``make([w])`` on the ravine (rotated by 45°)."""
    lam = torch.tensor(CURV, dtype=torch.float64)
    c = math.cos(math.pi / 4)
    rot = torch.tensor([[c, -c], [c, c]], dtype=torch.float64) if rotated else torch.eye(2)
    h = rot.double() @ torch.diag(lam) @ rot.double().T
    w = torch.nn.Parameter(rot.double() @ torch.ones(2, dtype=torch.float64))
    f0 = float(0.5 * w.detach() @ h @ w.detach())
    opt = make([w])
    for _ in range(steps):
        w.grad = h @ w.detach()
        opt.step()
    return float(0.5 * w.detach() @ h @ w.detach()) / f0


def _makers() -> dict[str, object]:
    kappa = CURV[1] / CURV[0]
    return {
        "gradient descent, η = 2/(L + μ)": lambda p: optim.SGD(p, lr=2 / (CURV[0] + CURV[1])),
        "Jacobi, P = diag(H), η = 1": None,
        f"AdaGrad, η = {PRE_LRS['AdaGrad']:g}": lambda p: optim.Adagrad(p, lr=PRE_LRS["AdaGrad"]),
        f"RMSProp, η = {PRE_LRS['RMSProp']:g}": lambda p: optim.RMSprop(p, lr=PRE_LRS["RMSProp"]),
        f"Adam, η = {PRE_LRS['Adam']:g}": lambda p: optim.Adam(p, lr=PRE_LRS["Adam"]),
        "_kappa": kappa,
    }


def _numpy_adam(rotated: bool) -> float:
    """Adam (Kingma and Ba's Algorithm 1) on the ravine in plain numpy: the second route."""
    c = math.cos(math.pi / 4)
    rot = np.array([[c, -c], [c, c]]) if rotated else np.eye(2)
    h = rot @ np.diag(CURV) @ rot.T
    w = rot @ np.ones(2)
    f0, m, v = 0.5 * w @ h @ w, np.zeros(2), np.zeros(2)
    lr, b1, b2, eps = PRE_LRS["Adam"], 0.9, 0.999, 1e-8
    for t in range(1, PRE_STEPS + 1):
        g = h @ w
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return float(0.5 * w @ h @ w / f0)


def _jacobi(rotated: bool) -> float:
    lam = np.asarray(CURV)
    c = math.cos(math.pi / 4)
    rot = np.array([[c, -c], [c, c]]) if rotated else np.eye(2)
    h = rot @ np.diag(lam) @ rot.T
    w = rot @ np.ones(2)
    f0 = 0.5 * w @ h @ w
    for _ in range(PRE_STEPS):
        w = w - (h @ w) / np.diag(h)
        if 0.5 * w @ h @ w <= 1e-300:
            break
    return float(0.5 * w @ h @ w / f0)


def _precondition(ctx: Context, n: kit.Numbers) -> Part:
    makers = _makers()
    kappa = makers.pop("_kappa")
    rows, res = [], {}
    for label, make in makers.items():
        if make is None:
            a, r = _jacobi(False), _jacobi(True)
        else:
            a, r = _ravine(make, False), _ravine(make, True)
        res[label.split(",")[0]] = (a, r)
        rows.append([label, a, r])
    sgd = res["gradient descent"]
    adam = res["Adam"]
    c = math.cos(math.pi / 4)
    rot = np.array([[c, -c], [c, c]])
    mean = float((rot @ np.diag(CURV) @ rot.T)[0, 0])
    text = PRECONDITION.fill(
        n,
        stiff=f"{CURV[1]:g}",
        steps=str(PRE_STEPS),
        mean=(mean, sum(CURV) / 2, 1e-12),
        sgd_a=(sgd[0], ((kappa - 1) / (kappa + 1)) ** (2 * PRE_STEPS), 1e-6),
        sgd_diff=kit.Twin(abs(sgd[0] - sgd[1]) / sgd[0], 0.0, 1e-9, 2, rel=False),
        adam_a=(adam[0], _numpy_adam(False), 1e-6),
        adam_r=(adam[1], _numpy_adam(True), 1e-6),
    )
    checks = [
        ck(
            "Jacobi lands on the minimum of the aligned ravine in one step",
            res["Jacobi"][0] == 0.0,
            res["Jacobi"][0],
            "0",
        ),
        ck(
            "each adaptive method: aligned loss below gradient descent's, rotated loss at "
            "least 10 times its aligned loss",
            all(
                res[k][0] < sgd[0] and res[k][1] > 10 * res[k][0]
                for k in ("AdaGrad", "RMSProp", "Adam")
            ),
            "; ".join(
                f"{k} {res[k][0]:.2g} / {res[k][1]:.2g}" for k in ("AdaGrad", "RMSProp", "Adam")
            ),
            f"< {sgd[0]:.2g}; × 10",
        ),
    ]
    table = Table(
        ["method", "aligned ravine: loss / initial", "rotated 45°: loss / initial"],
        rows,
        f"½(w₁² + {CURV[1]:g} w₂²) from (1, 1) in its own axes, {PRE_STEPS} steps, descentlab's "
        "optimizers (Jacobi in numpy)",
    )
    return Part(
        "precondition",
        "A diagonal preconditioner, and the adaptive methods",
        [text, table, checks],
    )


# ------------------------------------------------------------------------------------------
# 5. line search

LINESEARCH = kit.Prose(
    """
A fixed learning rate must be safe for the stiffest curvature the run may meet, so it is too
short almost everywhere else. A line search chooses the step at every iteration instead.
Backtracking (Armijo's rule) tries a step t along the descent direction d and halves it until
the loss falls by at least a fraction c of what the slope promises,

$${{armijo}},$$

with c = {{c}} here; starting each search at twice the last accepted step lets the step grow
where the loss allows. On the digits' logistic regression, gradient descent with this
backtracking reaches a gradient norm of {{gtol}} in {{armijo_iters}} steps, where the fixed
step 1/L = {{fixed}} had not after {{cap}}. Its accepted steps range from {{t_min}} to
{{t_max}}, all of them {{above}} 1/L, and every one satisfies Armijo's condition, counted again
after the fact ({{armijo_bad}} violations). The price is the extra loss evaluations of the
search: {{evals}} in all, fewer than one per step on average.

Quasi-Newton methods combine both ideas: L-BFGS builds an approximation of $H^{-1}$ from the
last gradients' differences and searches along its direction, under the strong Wolfe
conditions (Armijo's plus a condition on the slope). torch's `LBFGS` with
`line_search_fn="strong_wolfe"` and descentlab's `LBFGS`, which runs torch's own line search,
both reach Newton's minimum: their losses differ from Newton's by {{torch_gap}} and
{{lib_gap}}, in {{lbfgs_iters}} iterations of torch's.""",
    armijo_iters="Armijo's steps to the tolerance, against the same rule written in numpy",
    fixed="1/L, against 1/λmax of the bound's matrix by numpy's eigvalsh",
    t_min="the smallest accepted step, against the numpy run's",
    t_max="the largest accepted step, against the numpy run's",
    armijo_bad="violations of Armijo's condition among the accepted steps",
    evals="the halvings of the search, against the numpy run's",
    torch_gap="torch LBFGS's loss minus Newton's, against 0",
    lib_gap="descentlab LBFGS's loss minus Newton's, against 0",
    lbfgs_iters="torch LBFGS's iterations, against descentlab LBFGS's",
)


def _numpy_armijo() -> dict[str, float]:
    """Gradient descent with Armijo's backtracking on the digits' logistic regression in plain
    numpy: steps, smallest and largest accepted step, halvings (the second route)."""
    a, y = (v.numpy() for v in _logistic_data())
    n = len(y)

    def f(w: np.ndarray) -> float:
        z = a @ w
        return float(np.mean(np.logaddexp(0, z) - y * z) + 0.5 * L2 * w @ w)

    def g(w: np.ndarray) -> np.ndarray:
        return a.T @ (1 / (1 + np.exp(-(a @ w))) - y) / n + L2 * w

    w, t, steps, halvings = np.zeros(a.shape[1]), 1.0, [], 0
    for _ in range(CAP):
        gw = g(w)
        if np.linalg.norm(gw) <= GTOL:
            break
        t *= 2
        while f(w - t * gw) > f(w) - ARMIJO_C * t * gw @ gw:
            t *= SHRINK
            halvings += 1
        w = w - t * gw
        steps.append(t)
    return {"iters": len(steps), "min": min(steps), "max": max(steps), "halvings": halvings}


def _lbfgs(make) -> tuple[float, int]:
    a, y = _logistic_data()
    w = torch.nn.Parameter(torch.zeros(a.shape[1], dtype=torch.float64))
    opt = make([w])
    calls = [0]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _loss(w, a, y)
        loss.backward()
        calls[0] += 1
        return loss

    for _ in range(5):
        opt.step(closure)
    state = opt.state[w] if hasattr(opt, "state") and w in opt.state else {}
    iters = int(state.get("n_iter", 0)) if isinstance(state, dict) else 0
    return float(_loss(w.detach(), a, y)), iters


def _linesearch(ctx: Context, n: kit.Numbers) -> Part:
    nl = ctx.memo(("chapter", "newton", "logistic"), _newton_logistic)
    arm = ctx.memo(("chapter", "newton", "gd-armijo"), lambda: _gd(None, True))
    fixed = ctx.memo(("chapter", "newton", "gd-fixed"), lambda: _gd(1 / nl["lip"], False))
    twin = _numpy_armijo()
    a, _ = _logistic_data()
    lam_max = float(np.linalg.eigvalsh(a.numpy().T @ a.numpy())[-1]) / (4 * len(a)) + L2
    kw = {"lr": 1, "max_iter": 100, "tolerance_grad": 1e-12, "tolerance_change": 1e-14,
          "history_size": 20, "line_search_fn": "strong_wolfe"}  # fmt: skip
    t_loss, t_iters = _lbfgs(lambda p: torch.optim.LBFGS(p, **kw))
    l_loss, l_iters = _lbfgs(lambda p: optim.LBFGS(p, **kw))
    text = LINESEARCH.fill(
        n,
        armijo=ARMIJO.tex,
        c=f"{ARMIJO_C:g}",
        gtol=f"{GTOL:g}",
        cap=str(CAP),
        armijo_iters=(len(arm["steps"]), twin["iters"], 0),
        fixed=(1 / nl["lip"], 1 / lam_max, 1e-9),
        t_min=(min(arm["steps"]), twin["min"], 0),
        t_max=(max(arm["steps"]), twin["max"], 0),
        above=word(min(arm["steps"]), 1 / nl["lip"], "above"),
        armijo_bad=(arm["bad"], 0, 0),
        evals=(arm["evals"], twin["halvings"], 0),
        torch_gap=kit.Twin(t_loss - nl["loss"], 0.0, 1e-12, 2, rel=False),
        lib_gap=kit.Twin(l_loss - nl["loss"], 0.0, 1e-12, 2, rel=False),
        lbfgs_iters=(t_iters, l_iters, 0),
    )
    checks = [
        ck(
            "Armijo's backtracking reaches the tolerance in fewer steps than the fixed step 1/L",
            len(arm["steps"]) < len(fixed["steps"]) and arm["norms"][-1] <= GTOL,
            len(arm["steps"]),
            f"< {len(fixed['steps'])}",
        ),
        ck(
            "the search costs fewer halvings than steps",
            arm["evals"] < len(arm["steps"]),
            arm["evals"],
            f"< {len(arm['steps'])}",
        ),
        ck(
            "every accepted step is longer than 1/L",
            min(arm["steps"]) > 1 / nl["lip"],
            f"{min(arm['steps']):.3g}",
            f"> {1 / nl['lip']:.3g}",
        ),
    ]
    marks = [0, 1, 2, 4, 9, 19, 49, 99]
    table = Table(
        ["step", "Armijo: accepted t", "Armijo: ‖∇f‖", "fixed 1/L: ‖∇f‖"],
        [
            [k + 1, arm["steps"][k], arm["norms"][k], fixed["norms"][k]]
            for k in marks
            if k < len(arm["steps"])
        ],
        f"gradient descent on the digits' logistic regression ({CLASSES[0]} against "
        f"{CLASSES[1]}), Armijo c = {ARMIJO_C:g}, halving",
    )
    return Part(
        "linesearch", "Backtracking line search against a fixed step", [text, table, checks]
    )


# ------------------------------------------------------------------------------------------
# 6. the figure to move

MOVE = kit.Prose(
    """
Move the start of Newton's method on $\\sqrt{1 + x^2}$: the page runs {{t}} steps of pure
Newton, $x \\leftarrow {{rule_cube}}$, and of Newton damped by Armijo's backtracking, and draws |x|
on a log scale. Inside (-1, 1) the full step passes Armijo's test and the two runs are one,
converging faster than quadratically; outside, pure Newton explodes while the damped steps
keep shrinking |x|. The
readout gives both after {{t}} steps; the build's runs with autograd's derivatives reproduce
them at the probes.""",
)

MOVE_JS = """function (p) {
  function f(x) { return Math.sqrt(1 + x * x); }
  var x = p.x0, y = p.x0, ts = [0], pure = [Math.abs(x)], damp = [Math.abs(y)];
  for (var t = 1; t <= p.T; t++) {
    x = -x * x * x;
    var g = y / f(y), d = -y * (1 + y * y), s = 1;
    while (f(y + s * d) > f(y) + p.c * s * g * d) s *= p.shrink;
    y = y + s * d;
    ts.push(t); pure.push(Math.abs(x)); damp.push(Math.abs(y));
  }
  return {panels: [{x: {label: 'Newton step'}, y: {label: '|x|', log: true},
    lines: [{x: ts, y: pure, label: 'pure Newton: x ← -x³'},
            {x: ts, y: damp, label: 'damped by backtracking', dash: true}]}],
    values: {pure: x, damped: y},
    text: 'after ' + p.T + ' steps: pure ' + fmt(x) + ', damped ' + fmt(y)};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    probes = [
        Probe(
            {"x0": x0},
            {
                "pure": _newton_1d(_sqrt1, x0, MOVE_T)[-1],
                "damped": _newton_1d(_sqrt1, x0, MOVE_T, damped=True)[-1],
            },
            1e-9,
        )
        for x0 in MOVE_PROBES
    ]
    fig = Live(
        "Move the start: pure and damped Newton on √(1 + x²), computed in the page.",
        [Slider("x0", "x₀", -2.0, 2.0, 0.9)],
        MOVE_JS,
        probes,
        against="the build's Newton with autograd's derivatives",
        constants={"T": MOVE_T, "c": ARMIJO_C, "shrink": SHRINK},
    )
    return Part("move", "Move the start: where Newton's model misleads",
                [MOVE.fill(n, t=str(MOVE_T), rule_cube=SQRT1_STEP.tex), fig, []])  # fmt: skip


# ------------------------------------------------------------------------------------------
# 7. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
Newton's method for logistic regression from scratch, with the gradient and the Hessian
written by hand (the Hessian is a weighted covariance of the inputs, so each step is a
weighted least-squares solve: iteratively reweighted least squares). The build runs it next
to descentlab's `LBFGS` with torch's strong-Wolfe line search on the same loss and checks
that both reach the same weights.""",
    code="""\
import torch
from descentlab import optim
from descentlab.problems import data

s = data.load("digits", seed=0)
keep = (s.y_train == 3) | (s.y_train == 8)
x = s.x_train[keep].flatten(1).double()
A = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
y = (s.y_train[keep] == 8).double()
lam = 0.01

def loss(w):
    z = A @ w
    return (torch.nn.functional.softplus(z) - y * z).mean() + 0.5 * lam * (w * w).sum()

def newton(w, steps):
    for t in range(steps):
        p = torch.sigmoid(A @ w)
        grad = A.T @ (p - y) / len(y) + lam * w
        hess = A.T @ (A * (p * (1 - p))[:, None]) / len(y) + lam * torch.eye(len(w))
        w = w - torch.linalg.solve(hess, grad)
        print(f"Newton step {t + 1}: |grad| {float(grad.norm()):.2e}")
    return w

mine = newton(torch.zeros(A.shape[1], dtype=torch.float64), 8)
w = torch.nn.Parameter(torch.zeros(A.shape[1], dtype=torch.float64))
opt = optim.LBFGS([w], lr=1, max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-14,
                  history_size=20, line_search_fn="strong_wolfe")
def closure():
    opt.zero_grad()
    value = loss(w)
    value.backward()
    return value
for _ in range(5):
    opt.step(closure)
library = w.detach()
print(f"largest difference from descentlab's LBFGS: {float((mine - library).abs().max()):.1e}")
""",
    what="Newton's method written by hand reaches descentlab's LBFGS (strong Wolfe) weights",
    tol=1e-6,
)


TRAINING = kit.Prose(
    """
On a network the full Hessian is out of reach, and the preconditioners in use are the
diagonal ones and their structured successors. The figure trains descentlab's digits MLP
with batches of 64 for {{steps}} steps, through descentlab's engine, each optimizer at a
stated rate: `SGD` (no preconditioner), `AdaGrad` and `Adam` (diagonal, from the gradients'
squares), and `Shampoo`, which keeps for each weight matrix a preconditioner for its rows and
one for its columns, a Kronecker-factored approximation of the full-matrix AdaGrad. The table
shows seed {{seed0}}; the checks hold in each of the seeds {{seeds}}. Both diagonal methods
end far below SGD's training loss, and Shampoo's {{shampoo}} beats Adam's {{adam}} and
SGD's {{sgd}}. On held-out data the order is not the same: training loss is
what a preconditioner speeds up, and at this size Shampoo's lower training loss comes with a
validation loss no better than Adam's.""",
    shampoo="Shampoo's final training loss (seed 0), against a forward pass of its model",
    adam="Adam's final training loss (seed 0), against a forward pass of its model",
    sgd="SGD's final training loss (seed 0), against a forward pass of its model",
)


def _forward_loss(result) -> float:
    from descentlab.problems import data

    s = data.load("digits", seed=0)
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(result.model(s.x_train), s.y_train))


def _training(ctx: Context, n: kit.Numbers) -> Part:
    def cfg(opt: str, seed: int) -> dict[str, object]:
        return {
            "problem": "digits",
            "model": "digits_mlp",
            "optimizer": opt,
            "hyper": {"lr": TRAIN[opt]},
            "batch_size": 64,
            "steps": TRAIN_STEPS,
            "eval_every": 25,
            "seed": seed,
        }

    names = {"sgd": "SGD", "adagrad": "AdaGrad", "adam": "Adam", "shampoo": "Shampoo"}
    runs = {f"{names[o]}, η = {lr:g}": cfg(o, TRAIN_SEEDS[0]) for o, lr in TRAIN.items()}
    fig, res = kit.training_run(ctx, "newton", runs, "digits")
    other = ctx.memo(
        ("chapter", "newton", "other-seeds"),
        lambda: {
            (o, s): kit.final(_train(cfg(o, s)), "train/loss")
            for o in TRAIN
            for s in TRAIN_SEEDS[1:]
        },
    )
    final = {o: kit.final(r, "train/loss") for o, r in zip(TRAIN, res.values(), strict=True)}
    fwd = {o: _forward_loss(r) for o, r in zip(TRAIN, res.values(), strict=True)}
    text = TRAINING.fill(
        n,
        steps=str(TRAIN_STEPS),
        seed0=str(TRAIN_SEEDS[0]),
        seeds=", ".join(str(s) for s in TRAIN_SEEDS),
        shampoo=(final["shampoo"], fwd["shampoo"], 1e-4),
        adam=(final["adam"], fwd["adam"], 1e-4),
        sgd=(final["sgd"], fwd["sgd"], 1e-4),
    )
    per_seed = [final] + [{o: other[(o, s)] for o in TRAIN} for s in TRAIN_SEEDS[1:]]
    val = {o: kit.final(r, "val/loss") for o, r in zip(TRAIN, res.values(), strict=True)}
    checks = [
        ck(
            "in each seed: Shampoo < AdaGrad, Adam < SGD in final training loss",
            all(
                d["shampoo"] < min(d["adagrad"], d["adam"])
                and max(d["adagrad"], d["adam"]) < d["sgd"]
                for d in per_seed
            ),
            "; ".join(", ".join(f"{d[o]:.3g}" for o in TRAIN) for d in per_seed),
            "shampoo < adagrad, adam < sgd",
        ),
        ck(
            "Shampoo's validation loss is no better than Adam's (seed 0)",
            val["shampoo"] >= val["adam"],
            f"{val['shampoo']:.4g}",
            f"≥ {val['adam']:.4g}",
        ),
    ]
    table = kit.results_table(
        res,
        f"descentlab's engine (train), digits, batches of 64, {TRAIN_STEPS} steps, seed "
        f"{TRAIN_SEEDS[0]}",
        "train/loss",
        "val/loss",
        "test/accuracy",
    )
    return Part(
        "training",
        "A real training run: from no preconditioner to Kronecker factors",
        [text, fig, table, checks],
    )


def _train(cfg: dict[str, object]):
    from descentlab.engine import train

    return train(cfg, progress=False)


KEEP = """
What to keep. Newton's step $-H^{-1}\\nabla f$ solves a quadratic in one step and, near a
minimum with positive curvature, doubles the correct digits every step; far away or on
non-convex ground it can diverge or climb to a maximum, and a line search (Armijo's
backtracking) or a fallback makes it safe. Its cost, the Hessian, is what the alternatives
avoid: a diagonal preconditioner rescales the coordinates, which the adaptive methods estimate
from the gradients' squares and which a rotation defeats; a line search picks the step a
fixed rate cannot; L-BFGS builds curvature from gradients alone."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.NEWTON

CHAPTER = kit.Chapter(
    "deep-newton",
    "Newton's method, preconditioning and line search, in depth",
    "Newton's step and its one-step solution of a quadratic (item 8), its quadratic "
    "convergence measured in 80-digit arithmetic, its failure far away and on non-convex "
    "ground; the diagonal preconditioner that AdaGrad, RMSProp and Adam estimate and a "
    "rotation defeats; Armijo's backtracking against a fixed step, with L-BFGS (strong Wolfe) "
    "as the library's reference; and a network trained from SGD to Shampoo.",
    (8, 9, 10, 15, 27, 28, 46, 55, 57, 58, 97, 108, 110),
    (
        LS_N,
        LS_P,
        X0,
        DIGITS,
        *CLASSES,
        L2,
        GTOL,
        CAP,
        ARMIJO_C,
        *CURV,
        PRE_STEPS,
        NEAR,
        FAR,
        EDGE,
        SIN_START,
        MOVE_T,
        TRAIN_STEPS,
        *TRAIN_SEEDS,
        64,
        45,
        128,
        1,
        2,
        3,
        80,
    ),
    (_step, _quadratic, _far, _precondition, _linesearch, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
