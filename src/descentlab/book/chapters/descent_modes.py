"""Full-batch, stochastic and mini-batch descent, in depth: the three updates and what a step
costs, the exact expected loss of mini-batch SGD on a finite training set (a recursion on the
error's first two moments, checked against many runs of descentlab's SGD), the comparison per
epoch, sampling with and without replacement, the three loops from scratch, and a real
training run on MNIST-1D at equal examples drawn."""

from __future__ import annotations

import math

import numpy as np
import torch

from descentlab import optim
from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck, said
from descentlab.book.facts import Formula
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.book.render.pages import Check
from descentlab.report import figures as FG

__all__ = ["CHAPTER"]

#: the training set: examples, the covariance's two eigenvalues, the label noise
N, LAM, NOISE = 256, (1.0, 0.01), 0.1
#: the batch sizes compared, the epochs of the table, the rates searched
BATCHES, EPOCHS, GRID = (1, 16), (1, 2, 4, 8), tuple(float(v) for v in np.geomspace(0.02, 2.0, 12))
#: the runs of descentlab's SGD that check the recursion
RUNS = 512
#: the training runs on MNIST-1D: (batch, rate), epochs
TRAIN, TRAIN_EPOCHS = ((8, 0.0125), (64, 0.1), (None, 0.5)), 3


def _problem() -> dict[str, np.ndarray]:
    """The training set, its least-squares solution, residuals and Hessian (float64)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 2, generator=g, dtype=torch.float64) * torch.tensor(LAM).sqrt()
    y = x @ torch.ones(2, dtype=torch.float64) + NOISE * torch.randn(
        N, generator=g, dtype=torch.float64
    )
    xn, yn = x.numpy(), y.numpy()
    h = xn.T @ xn / N
    w = np.linalg.solve(h, xn.T @ yn / N)
    return {"x": xn, "y": yn, "h": h, "w": w, "r": yn - xn @ w}


def exact(lr: float, b: int, steps: int, p: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The expected excess loss ½ tr(H Σ) of SGD from w = 0 with batches of ``b`` drawn with
    replacement, after each step: the recursion on the error's mean m and second moment Σ,
    ``m ← (I - ηH)m``, ``Σ ← Σ - η(ΣH + HΣ) + η² E[g gᵀ]`` with the training set's exact
    fourth moments. No run involved."""
    p = p or _problem()
    x, h, r = p["x"], p["h"], p["r"]
    m = -p["w"]
    s, out = np.outer(m, m), [0.5 * float(np.trace(h @ np.outer(m, m)))]
    for _ in range(steps):
        q = np.einsum("ij,jk,ik->i", x, s, x) - 2 * r * (x @ m) + r * r
        egg = (1 - 1 / b) * h @ s @ h + (x.T * (q / N)) @ x / b
        s = s - lr * (s @ h + h @ s) + lr * lr * egg
        m = m - lr * h @ m
        out.append(0.5 * float(np.trace(h @ s)))
        if not math.isfinite(out[-1]) or out[-1] > 1e12:  # diverged: inf from here on
            return np.array(out[:-1] + [math.inf] * (steps + 2 - len(out)))
    return np.array(out)


def _floor(lr: float, b: int, p: dict[str, np.ndarray]) -> float:
    """The stationary expected excess loss of SGD with batches of ``b`` drawn with
    replacement: the fixed point of the second-moment recursion (m = 0), solved as one linear
    system on vec Σ with Kronecker products. No iteration."""
    x, h, r = p["x"], p["h"], p["r"]
    eye = np.eye(2)
    v = np.einsum("ni,nj->nij", x, x).reshape(N, 4)
    lin = -lr * (np.kron(h, eye) + np.kron(eye, h)) + lr * lr * (
        (1 - 1 / b) * np.kron(h, h) + v.T @ v / (b * N)
    )
    const = lr * lr * (v.T @ (r * r)) / (b * N)
    sigma = np.linalg.solve(lin, -const).reshape(2, 2)
    return 0.5 * float(np.trace(h @ sigma))


def _crossing(lr: float, b: int, eta: float, p: dict[str, np.ndarray]) -> tuple[int, int]:
    """The first epoch at which full-batch descent at ``eta`` is below SGD's expected loss
    (batches of ``b`` at ``lr``), by iterating both; and the same epoch by the closed form: the
    root of GD's loss against SGD's stationary floor (:func:`_floor`), rounded up."""
    import scipy.optimize

    lam, vec = np.linalg.eigh(p["h"])
    e0 = vec.T @ (-p["w"])

    def gd(k: float) -> float:
        return 0.5 * float((lam * e0**2 * np.abs(1 - eta * lam) ** (2 * k)).sum())

    floor = _floor(lr, b, p)
    root = scipy.optimize.brentq(lambda k: gd(k) - floor, 0.0, 1e4, xtol=1e-9)
    steps = N // b
    sgd = exact(lr, b, (math.ceil(root) + 2) * steps, p)[::steps]
    iterated = next((k for k in range(1, len(sgd)) if gd(k) < sgd[k]), -1)
    return iterated, math.ceil(root)


def _gd(lr: float, steps: int, p: dict[str, np.ndarray]) -> np.ndarray:
    """Full-batch gradient descent's excess loss after each step, in the Hessian's eigenbasis:
    each component multiplied by (1 - ηλ_i) a step."""
    lam, vec = np.linalg.eigh(p["h"])
    e0 = vec.T @ (-p["w"])
    t = np.arange(steps + 1)[:, None]
    return 0.5 * ((lam * e0**2) * (1 - lr * lam) ** (2 * t)).sum(1)


def _runs(
    lr: float, b: int | None, steps: int, replace: bool = True, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """:data:`RUNS` runs of descentlab's SGD on the training set: batches of ``b`` drawn with
    replacement, or each epoch shuffled (``replace`` false), or the full batch (``b`` None):
    the mean excess loss after each step, and its standard error."""
    p = _problem()
    x, y = torch.from_numpy(p["x"]), torch.from_numpy(p["y"])
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.zeros(RUNS, 2, dtype=torch.float64))
    opt, h, ws = optim.SGD([w], lr=lr), torch.from_numpy(p["h"]), torch.from_numpy(p["w"])

    def loss() -> torch.Tensor:
        e = w.detach() - ws
        return 0.5 * torch.einsum("rd,de,re->r", e, h, e)

    def stats() -> tuple[float, float]:
        v = loss()
        return float(v.mean()), float(v.std() / RUNS**0.5)

    out, order = [stats()], torch.arange(N).expand(RUNS, N)
    for t in range(steps):
        if b is None:
            idx = order
        elif replace:
            idx = torch.randint(N, (RUNS, b), generator=gen)
        else:
            if t % (N // b) == 0:
                order = torch.rand(RUNS, N, generator=gen).argsort(1)
            idx = order[:, (t % (N // b)) * b : (t % (N // b) + 1) * b]
        xb, yb = x[idx], y[idx]
        residual = torch.einsum("rbd,rd->rb", xb, w.detach()) - yb
        w.grad = torch.einsum("rbd,rb->rd", xb, residual) / xb.shape[1]
        opt.step()
        out.append(stats())
    return np.array([m for m, _ in out]), np.array([e for _, e in out])


def _reshuffled_numpy(lr: float, steps: int, seed: int = 0) -> tuple[float, float]:
    """The reshuffled runs of :func:`_runs` written from scratch in float64 NumPy, each epoch's
    order a permutation drawn by NumPy's generator, no torch and no descentlab: the mean excess
    loss after ``steps`` single-example steps and its standard error. The second route to the
    runs: other code and other draws, so the two agree within 4 of their combined standard
    errors (a gap that large comes by chance once in about 16 000)."""
    p = _problem()
    rng = np.random.default_rng(seed)
    w = np.zeros((RUNS, 2))
    for t in range(steps):
        if t % N == 0:
            order = rng.permuted(np.tile(np.arange(N), (RUNS, 1)), axis=1)
        i = order[:, t % N]
        xi = p["x"][i]
        w -= lr * xi * ((xi * w).sum(1) - p["y"][i])[:, None]
    e = w - p["w"]
    loss = 0.5 * np.einsum("rd,de,re->r", e, p["h"], e)
    return float(loss.mean()), float(loss.std(ddof=1) / math.sqrt(RUNS))


def _best_rates(p: dict[str, np.ndarray]) -> dict[int, float]:
    """Each batch size's best constant rate for 4 epochs, on :data:`GRID` (the recursion)."""
    return {b: min(GRID, key=lambda e, b=b: exact(e, b, 4 * N // b, p)[-1]) for b in BATCHES}


def _best(ctx: Context) -> tuple[dict[str, np.ndarray], dict[int, float]]:
    """The chapter's problem and :func:`_best_rates` on it, computed once a book."""
    p = _problem()
    return p, ctx.memo(("chapter", "descent", "best"), lambda: _best_rates(p))


# ------------------------------------------------------------------------------------------
# 1. three updates, one estimate

#: the step every descent method takes, shown on the page (latex) and evaluated at each step
#: against descentlab's SGD: one SymPy expression for both
SGD_W = Formula("w - eta*g")
#: full-batch descent's best constant rate, where the extreme directions contract equally
GD_BEST = Formula("2/(lamda_max + lamda_min)", {"lamda_max": "\\lambda_{\\max}",
                                                 "lamda_min": "\\lambda_{\\min}"})  # fmt: skip
#: the rule's check: the rate and the steps of the run it is evaluated on
RULE_LR, RULE_STEPS = 0.1, 300

THREE = kit.Prose(
    """
Every descent method of the lectures takes the same step, $w \\leftarrow {{rule_w}}$, and
differs in where g comes from (items 11, 12, 13, 70 and 72). *Full-batch* gradient descent
averages the gradients of all N training examples, $g = \\frac{1}{N}\\sum_{i=1}^N \\nabla L_i(w)$;
*stochastic* gradient descent uses one example drawn at random, $g = \\nabla L_i(w)$; *mini-batch*
descent the average over B of them. Each is an unbiased estimate of the full gradient (item
14): the expectation of a randomly chosen example's gradient is the average over all of them,
and the build checks that the average of the {{n}} per-example gradients, computed one by one
by autograd, is the full loss's gradient to {{unbiased}}. What differs is the cost and the
noise. A step costs B gradient evaluations, so an *epoch*, one pass over the data, is one
full-batch step, {{n16}} steps of batches of 16 or {{n}} stochastic steps.

The comparison that matters in practice is therefore per epoch, not per step. Its test problem
here is least squares in two dimensions, $L(w) = \\frac{1}{2N}\\sum_i (x_i^\\top w - y_i)^2$, with
{{n}} examples whose inputs have variances {{lam}}: the Hessian $H = X^\\top X/N$ has
eigenvalues {{eig_big}} and {{eig_small}}, a condition number of {{kappa}}, the regime where
full-batch descent crawls along the flat direction. Labels carry noise of standard deviation
{{noise}}, so no w fits every example and the per-example gradients disagree even at the
minimum.""",
    unbiased="the gap of the per-example gradients' mean to the full gradient, against 0",
    eig_big="H's largest eigenvalue, against the largest singular value of X squared over N",
    eig_small="H's smallest eigenvalue, against the smallest singular value squared over N",
    kappa="the condition number, against numpy's cond of H",
)


def _three(ctx: Context, n: kit.Numbers) -> Part:
    p = _problem()
    x, y = torch.from_numpy(p["x"]), torch.from_numpy(p["y"])
    w = torch.tensor([0.3, -0.7], dtype=torch.float64)
    per = torch.func.vmap(
        torch.func.grad(lambda w_, xi, yi: 0.5 * (xi @ w_ - yi) ** 2), in_dims=(None, 0, 0)
    )(w, x, y)
    full = torch.func.grad(lambda w_: 0.5 * ((x @ w_ - y) ** 2).mean())(w)
    eig = np.linalg.eigvalsh(p["h"])
    sv = np.linalg.svd(p["x"], compute_uv=False) ** 2 / N
    text = THREE.fill(
        n,
        rule_w=SGD_W.tex,
        n=str(N),
        n16=str(N // 16),
        lam=" and ".join(f"{v:g}" for v in LAM),
        noise=f"{NOISE:g}",
        unbiased=kit.Twin(float((per.mean(0) - full).abs().max()), 0.0, 1e-12, 2, rel=False),
        eig_big=(eig[1], sv[0], 1e-9, 4),
        eig_small=(eig[0], sv[1], 1e-9, 4),
        kappa=(eig[1] / eig[0], np.linalg.cond(p["h"]), 1e-9),
    )
    rows = [
        ["full batch", N, 1, "exact, deterministic"],
        ["mini-batch", 16, N // 16, "S²/16"],
        ["stochastic", 1, N, "S²"],
    ]
    table = Table(
        ["method", "examples per step (B)", "steps per epoch", "gradient noise (variance)"],
        rows,
        f"N = {N} examples; S² the per-example gradients' spread",
    )
    return Part("three", "Three updates, one estimate", [text, table, [_rule_check()]])


def _rule_check() -> Check:
    """The step as the page shows it (:data:`SGD_W`), evaluated at each step, against
    descentlab's SGD on a gradient that turns."""
    rule = kit.rule_iterates(
        lambda st, g, t: {"w": SGD_W(w=st["w"], eta=RULE_LR, g=g)}, kit.wavy, 1.0, RULE_STEPS
    )
    sgd = kit.iterates(lambda p: optim.SGD(p, lr=RULE_LR), kit.wavy, 1.0, RULE_STEPS)
    return kit.rule_check("the step as the page shows it, on a gradient that turns", rule, sgd)


# ------------------------------------------------------------------------------------------
# 2. the exact expected loss of mini-batch SGD

EXACT = kit.Prose(
    """
How far does each method get? For least squares the question has an exact answer, even for
the noisy ones. Write $e = w - w^*$ for the error from the least-squares solution and r for
the residuals there; a batch's gradient is $g = \\frac{1}{B}\\sum_b x_b (x_b^\\top e - r_b)$. Its
mean, given e, is He (the residuals average to zero against the inputs at $w^*$), so the mean
error obeys gradient descent's recursion $m \\leftarrow (I - \\eta H) m$. Its second moment
$\\Sigma = \\mathbb{E}[e e^\\top]$ obeys

$$\\Sigma \\leftarrow \\Sigma - \\eta(\\Sigma H + H\\Sigma) + \\eta^2\\, \\mathbb{E}[g g^\\top],$$

$$\\mathbb{E}[g g^\\top] = \\Big(1 - \\frac{1}{B}\\Big) H\\Sigma H
+ \\frac{1}{BN}\\sum_i x_i x_i^\\top \\big(x_i^\\top \\Sigma x_i - 2 r_i\\, x_i^\\top m +
r_i^2\\big),$$

where the sum runs over the training set itself (batches drawn with replacement: the B
examples are independent). Nothing is approximated: the higher moments are the data's own. The
expected excess loss is $\\frac{1}{2}\\mathrm{tr}(H\\Sigma)$. The build iterates this recursion and
runs {{runs}} copies of descentlab's `SGD` for comparison: with batches of 1 at η = {{lr1}},
after one epoch the recursion gives {{e1}} and the runs {{m1}}; after 4, {{e4}} and {{m4}}.
With batches of 16 at η = {{lr16}} the numbers after 4 epochs are {{e16}} and {{m16}}. A mean of
{{runs}} runs has a standard error; each pair agrees within 4 of them.""",
    e1="the recursion after one epoch at B = 1, against the runs' mean",
    m1="the runs' mean after one epoch at B = 1, against the recursion",
    e4="the recursion after four epochs at B = 1, against the runs' mean",
    m4="the runs' mean after four epochs at B = 1, against the recursion",
    e16="the recursion after four epochs at B = 16, against the runs' mean",
    m16="the runs' mean after four epochs at B = 16, against the recursion",
)


def _exact(ctx: Context, n: kit.Numbers) -> Part:
    p, best = _best(ctx)
    runs = ctx.memo(
        ("chapter", "descent", "runs"), lambda: {b: _runs(best[b], b, 4 * N // b) for b in BATCHES}
    )
    ex = {b: exact(best[b], b, 4 * N // b, p) for b in BATCHES}
    (c1, se1), (c16, se16) = runs[1], runs[16]
    text = EXACT.fill(
        n,
        runs=str(RUNS),
        lr1=f"{best[1]:.3g}",
        lr16=f"{best[16]:.3g}",
        e1=kit.Twin(ex[1][N], c1[N], 4 * se1[N], 3, rel=False),
        m1=kit.Twin(c1[N], ex[1][N], 4 * se1[N], 3, rel=False),
        e4=kit.Twin(ex[1][-1], c1[-1], 4 * se1[-1], 3, rel=False),
        m4=kit.Twin(c1[-1], ex[1][-1], 4 * se1[-1], 3, rel=False),
        e16=kit.Twin(ex[16][-1], c16[-1], 4 * se16[-1], 3, rel=False),
        m16=kit.Twin(c16[-1], ex[16][-1], 4 * se16[-1], 3, rel=False),
    )
    epochs = [1, 2, 4]
    rows = [[e, ex[1][e * N], c1[e * N], ex[16][e * N // 16], c16[e * N // 16]] for e in epochs]
    table = Table(
        ["epochs", "B = 1: recursion", "B = 1: runs", "B = 16: recursion", "B = 16: runs"],
        rows,
        f"expected excess loss; {RUNS} runs of descentlab's SGD, batches drawn "
        "with replacement, each batch size at its best rate for four epochs",
    )
    return Part("exact", "The exact expected loss of mini-batch SGD", [text, table, []])


# ------------------------------------------------------------------------------------------
# 3. per epoch

EPOCH = kit.Prose(
    """
Now the comparison per epoch. Full-batch descent is deterministic, and at its best constant
rate $\\eta = {{gd_best}}$ = {{gd_lr}} each component of the error in
H's eigenbasis shrinks by $|1 - \\eta\\lambda_i|$ = {{gd_rate}} per step: one step per epoch. The
stochastic methods take their best constant rates for 4 epochs (the recursion searched a
grid of rates). After one epoch the full batch has removed {{gd_drop}} of its starting excess
loss, stochastic descent {{sgd_drop}}: the full batch's excess loss is {{ratio1}} times the
stochastic one. After {{epochs}} epochs the order is unchanged: full batch {{gd8}}, batches of
16 {{b16_8}}, single examples {{b1_8}}. On a training set whose examples are redundant (many
examples say nearly the same thing about w) a full-batch step spends N gradient evaluations on
one careful move, where N cheap noisy moves go much further. The noise costs a floor, the
schedules chapter's: with a constant rate the stochastic error levels off at it (for single
examples here {{floor}}, the recursion's fixed point), and the full batch, which has none, wins
in the end, but late: its flat component shrinks by a factor e only every
$1/(\\eta\\lambda_{\\min})$ = {{gd_horizon}} epochs, after {{horizon}} of them it is still
{{behind}} times the stochastic loss, and it first falls below the single examples' loss at
epoch {{cross}}. Between the two sits the mini-batch,
whose floor is B times lower and whose steps per epoch are B times fewer: the batch chapter's
η/B trade-off, with the schedules chapter's decaying rate to go below the floor.""",
    gd_lr="GD's best constant rate 2/(λmax + λmin), against a minimiser of max |1 - ηλ|",
    gd_rate="GD's contraction per step, against its measured loss ratio over a late step",
    gd_drop="the fraction GD removed in one epoch, against descentlab's full-batch SGD",
    sgd_drop="the fraction B = 1 removed in one epoch, against the recursion",
    ratio1="the full batch's loss over B = 1's after one epoch, by the recursions",
    gd8="GD after eight epochs, closed form against descentlab's full-batch SGD",
    b16_8="B = 16 after eight epochs by the recursion, against the runs",
    b1_8="B = 1 after eight epochs by the recursion, against the runs",
    gd_horizon="1/(ηλmin), against the e-folding count of GD's flat component",
    horizon="1/(ηλmin) rounded, against the e-folding count rounded",
    floor="B = 1's stationary loss by a linear solve, against the recursion after 1/(ηλmin) epochs",
    behind="GD's loss over B = 1's after 1/(ηλmin) epochs, GD closed form against its run",
    cross="the first epoch GD is below B = 1 by iterating both, against the closed form's "
    "crossing of the floor",
)


def _epoch(ctx: Context, n: kit.Numbers) -> Part:
    p, best = _best(ctx)
    lam = np.linalg.eigvalsh(p["h"])
    eta = GD_BEST(lamda_max=lam[1], lamda_min=lam[0])
    last = EPOCHS[-1]
    gd = _gd(eta, last, p)
    ex = {b: exact(best[b], b, last * N // b, p) for b in BATCHES}
    runs = ctx.memo(
        ("chapter", "descent", "runs8"),
        lambda: {
            **{b: _runs(best[b], b, last * N // b) for b in BATCHES},
            None: _runs(eta, None, last),
        },
    )
    minimax = _minimax(lam)
    cross, cross_closed = ctx.memo(
        ("chapter", "descent", "crossing"), lambda: _crossing(best[1], 1, eta, p)
    )
    horizon = round(1 / (eta * lam[0]))
    sgd_h = exact(best[1], 1, horizon * N, p)
    floor = _floor(best[1], 1, p)
    text = EPOCH.fill(
        n,
        epochs=str(last),
        gd_best=GD_BEST.tex,
        gd_lr=(eta, minimax, 1e-6, 4),
        gd_rate=(1 - eta * lam[0], math.sqrt(gd[-1] / gd[-2]), 1e-6, 4),
        gd_drop=(1 - gd[1] / gd[0], 1 - runs[None][0][1] / runs[None][0][0], 1e-9),
        sgd_drop=(1 - ex[1][N] / ex[1][0], 1 - runs[1][0][N] / runs[1][0][0], 0.01),
        ratio1=(gd[1] / ex[1][N], gd[1] / runs[1][0][N], 0.05),
        gd8=(gd[-1], runs[None][0][-1], 1e-9),
        b16_8=kit.Twin(ex[16][-1], runs[16][0][-1], 4 * runs[16][1][-1], 3, rel=False),
        b1_8=kit.Twin(ex[1][-1], runs[1][0][-1], 4 * runs[1][1][-1], 3, rel=False),
        gd_horizon=(1 / (eta * lam[0]), -1 / math.log(1 - eta * lam[0]), 0.01),
        floor=(floor, sgd_h[-1], 1e-3),
        horizon=(horizon, round(-1 / math.log(1 - eta * lam[0])), 0),
        behind=(_gd(eta, horizon, p)[-1] / sgd_h[-1], _runs(eta, None, horizon)[0][-1] / sgd_h[-1]),
        cross=(cross, cross_closed, 0),
    )
    rows = [[e, gd[e], ex[16][e * N // 16], ex[1][e * N]] for e in EPOCHS]
    checks = [
        ck(
            f"after {e} epoch(s): one example per step < 16 < the full batch",
            r[3] < r[2] < r[1],
            f"{r[3]:.3g} < {r[2]:.3g} < {r[1]:.3g}",
            "in that order",
        )
        for e, r in zip(EPOCHS, rows, strict=True)
    ]
    lowest = min(sgd_h)
    checks.append(
        said(text, "the stochastic error levels off at it",
             lowest >= floor * (1 - 1e-5), f"{lowest / floor - 1:.2g} of it",
             "≥ -1e-05 of it (the mean's decay undershoots by about 1e-06)")
    )  # fmt: skip
    table = Table(
        [
            "epochs",
            f"full batch (η = {eta:.3g})",
            f"B = 16 (η = {best[16]:.3g})",
            f"B = 1 (η = {best[1]:.3g})",
        ],
        rows,
        "expected excess loss: GD's closed form, the recursion for the others",
    )
    return Part(
        "epoch", "Per epoch: many noisy steps against one exact step", [text, table, checks]
    )


def _minimax(lam: np.ndarray) -> float:
    """The rate minimising max_i |1 - ηλ_i| by a bounded scalar minimiser (the twin of
    2/(λmax + λmin))."""
    import scipy.optimize

    res = scipy.optimize.minimize_scalar(
        lambda e: max(abs(1 - e * v) for v in lam),
        bounds=(0, 2 / lam[-1]),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(res.x)


# ------------------------------------------------------------------------------------------
# 4. sampling: with replacement, or an epoch at a time

SAMPLING = kit.Prose(
    """
The recursion assumed batches drawn with replacement, which makes every step's batch
independent of the others. Practice, and descentlab's engine, shuffle the training set once
per epoch and cut it into batches (item 48): each example is used exactly once per epoch. Two
things change. Within an epoch the batches are no longer independent, and at a fixed w the
gradients of one epoch's batches add up to exactly N times the full gradient, the noise of the
epoch cancelling as a whole (the build checks the sum to {{cancel}}). Does the error fall
faster? After {{epochs}} epochs at η = {{lr}} with single examples, the mean excess loss of
{{runs}} reshuffled runs is {{shuffled}} (the same runs written from scratch in NumPy, their
shuffles drawn by NumPy's generator: {{again}}), against
{{replaced}} for runs drawing with replacement (the recursion's {{exact}}): within a few
standard errors of each other. At this budget the error is still mostly the bias of the flat
direction, which both samplings remove at the same pace; reshuffling's advantage, an error of
order $\\eta^2$ at the floor where drawing with replacement leaves one of order η, appears only
once the floor is reached. The recursion describes drawing with replacement exactly; random
reshuffling needs an analysis of its own, a research topic of the last decade. The engine's
default is reshuffling: it cancels the epoch's noise, and here it ends level with drawing with
replacement, neither ahead nor behind.""",
    cancel="the epoch's summed batch gradients over N, against the full gradient",
    shuffled="the reshuffled runs' loss, against runs written from scratch in NumPy",
    again="the NumPy runs' loss, against descentlab's",
    replaced="the runs with replacement, against the recursion",
    exact="the recursion for batches with replacement, against the runs",
)


def _sampling(ctx: Context, n: kit.Numbers) -> Part:
    p, best = _best(ctx)
    lr, steps = best[1], 4 * N
    shuffled = ctx.memo(
        ("chapter", "descent", "shuffled"), lambda: _runs(lr, 1, steps, replace=False)
    )
    again = ctx.memo(("chapter", "descent", "shuffled-numpy"), lambda: _reshuffled_numpy(lr, steps))
    gap = 4 * math.hypot(shuffled[1][-1], again[1])
    replaced = ctx.memo(
        ("chapter", "descent", "runs"), lambda: {b: _runs(best[b], b, 4 * N // b) for b in BATCHES}
    )[1]
    ex = exact(lr, 1, steps, p)
    x, y = torch.from_numpy(p["x"]), torch.from_numpy(p["y"])
    w = torch.tensor([0.3, -0.7], dtype=torch.float64)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(7))
    epoch = sum(
        x[perm[k : k + 16]].T @ (x[perm[k : k + 16]] @ w - y[perm[k : k + 16]])
        for k in range(0, N, 16)
    )
    full = x.T @ (x @ w - y) / N
    text = SAMPLING.fill(
        n,
        epochs="4",
        lr=f"{lr:.3g}",
        runs=str(RUNS),
        cancel=kit.Twin(float((epoch / N - full).abs().max()), 0.0, 1e-12, 2, rel=False),
        shuffled=kit.Twin(shuffled[0][-1], again[0], gap, 3, rel=False),
        again=kit.Twin(again[0], shuffled[0][-1], gap, 3, rel=False),
        replaced=kit.Twin(replaced[0][-1], ex[-1], 4 * replaced[1][-1], 3, rel=False),
        exact=kit.Twin(ex[-1], replaced[0][-1], 4 * replaced[1][-1], 3, rel=False),
    )
    se = 6 * math.hypot(shuffled[1][-1], replaced[1][-1])
    checks = [
        ck(
            "reshuffled and drawn with replacement end within six combined standard errors",
            abs(shuffled[0][-1] - replaced[0][-1]) < se,
            f"{shuffled[0][-1]:.4g} vs {replaced[0][-1]:.4g}",
            f"|gap| < {se:.2g}",
        )
    ]
    return Part("sampling", "With replacement, or an epoch at a time", [text, checks])


# ------------------------------------------------------------------------------------------
# 5. the figure to move: the recursion, per example drawn

MOVE = kit.Prose(
    """
Move the batch size and the rate: the page iterates the exact recursion itself, for
{{epochs}} epochs of this training set, with the {{n}} examples' inputs and residuals written
into it, and draws the expected excess loss against the number of examples drawn, beside
full-batch descent at its best rate. Small batches race ahead and flatten at a floor; large
batches follow the full batch's slow curve; too large a rate for the batch makes the recursion
explode, earlier for small batches (the batch chapter's edge $\\eta < 2h/(h^2 + c/B)$, here in
two dimensions). When the page opens it checks its recursion against the build's at
{{probes}} settings."""
)

MOVE_JS = """function (p) {
  var N = p.N, X = p.x, r = p.r, H = p.h, B = Math.round(p.b), lr = p.lr;
  var T = Math.floor(p.E * N / B), stride = Math.max(1, Math.floor(T / 400));
  function mul(A, C) {
    return [[A[0][0] * C[0][0] + A[0][1] * C[1][0], A[0][0] * C[0][1] + A[0][1] * C[1][1]],
            [A[1][0] * C[0][0] + A[1][1] * C[1][0], A[1][0] * C[0][1] + A[1][1] * C[1][1]]];
  }
  function half(S) { return 0.5 * (H[0][0] * S[0][0] + H[0][1] * S[1][0] + H[1][0] * S[0][1]
                                   + H[1][1] * S[1][1]); }
  var m = [-p.w[0], -p.w[1]], S = [[m[0] * m[0], m[0] * m[1]], [m[1] * m[0], m[1] * m[1]]];
  var xs = [0], ys = [half(S)];
  for (var t = 0; t < T; t++) {
    var G = [[0, 0], [0, 0]];
    for (var i = 0; i < N; i++) {
      var a = X[i][0], b = X[i][1];
      var q = a * (S[0][0] * a + S[0][1] * b) + b * (S[1][0] * a + S[1][1] * b)
              - 2 * r[i] * (a * m[0] + b * m[1]) + r[i] * r[i];
      G[0][0] += a * a * q / N; G[0][1] += a * b * q / N; G[1][0] += b * a * q / N;
      G[1][1] += b * b * q / N;
    }
    var HSH = mul(mul(H, S), H), SH = mul(S, H), HS = mul(H, S);
    for (var u = 0; u < 2; u++) for (var v = 0; v < 2; v++) {
      S[u][v] = S[u][v] - lr * (SH[u][v] + HS[u][v])
                + lr * lr * ((1 - 1 / B) * HSH[u][v] + G[u][v] / B);
    }
    m = [m[0] - lr * (H[0][0] * m[0] + H[0][1] * m[1]),
         m[1] - lr * (H[1][0] * m[0] + H[1][1] * m[1])];
    if ((t + 1) % stride === 0 || t === T - 1) { xs.push((t + 1) * B); ys.push(half(S)); }
  }
  var e = [-p.w[0], -p.w[1]], gx = [0], gy = [], eta = p.gd_lr;
  function He(v) { return [H[0][0] * v[0] + H[0][1] * v[1], H[1][0] * v[0] + H[1][1] * v[1]]; }
  function loss(v) { var h = He(v); return 0.5 * (v[0] * h[0] + v[1] * h[1]); }
  gy.push(loss(e));
  for (var k = 1; k <= p.E; k++) {
    var g = He(e);
    e = [e[0] - eta * g[0], e[1] - eta * g[1]];
    gx.push(k * N);
    gy.push(loss(e));
  }
  return {panels: [{x: {label: 'examples drawn'}, y: {label: 'expected excess loss', log: true,
                                                      min: 1e-5, max: 10},
    lines: [{x: xs, y: ys, label: 'batches of ' + B + ', η = ' + fmt(lr) + ': the recursion'},
            {x: gx, y: gy, label: 'full batch, η = ' + fmt(eta), dash: true, colour: '#555555'}]}],
    values: {final: ys[ys.length - 1]},
    text: 'after ' + p.E + ' epochs: ' + fmt(ys[ys.length - 1]) + ' (full batch ' +
          fmt(gy[gy.length - 1]) + ')'};
}"""

MOVE_PROBES = ((1, 0.15), (16, 1.0), (64, 1.2))


def _move(ctx: Context, n: kit.Numbers) -> Part:
    p = _problem()
    lam = np.linalg.eigvalsh(p["h"])
    probes = [
        Probe({"b": b, "lr": lr}, {"final": float(exact(lr, b, EPOCHS[-1] * N // b, p)[-1])})
        for b, lr in MOVE_PROBES
    ]
    consts = {
        "N": N,
        "x": p["x"].tolist(),
        "r": p["r"].tolist(),
        "h": p["h"].tolist(),
        "w": p["w"].tolist(),
        "E": EPOCHS[-1],
        "gd_lr": float(2 / (lam[0] + lam[1])),
    }
    fig = Live(
        "Move the batch size B and the rate η: the expected excess loss by the exact "
        "recursion against the examples drawn, and the full batch's.",
        [
            Slider("b", "B (rounded)", 1, 256, 16, log=True),
            Slider("lr", "η", 0.005, 2.5, 0.3, log=True),
        ],
        MOVE_JS,
        probes,
        against="the build's recursion",
        constants=consts,
    )
    text = MOVE.fill(n, epochs=str(EPOCHS[-1]), n=str(N), probes=str(len(MOVE_PROBES)))
    return Part("move", "Move B and η: per example drawn", [text, fig, []])


# ------------------------------------------------------------------------------------------
# 6. from scratch, and a real training run

_scratch = kit.scratch(
    text="""
The three loops from scratch in plain torch, each an epoch loop over a shuffled order: the
full batch takes the whole set at once, stochastic descent one example, mini-batch descent
16. The build runs them on this chapter's training set next to descentlab's `SGD` on the
same batches in the same order and checks that every iterate is the same; the printout is the
excess loss after two epochs, the per-epoch comparison of the sections above in one run each.""",
    code="""\
import torch
from descentlab import optim

g = torch.Generator().manual_seed(0)
f64 = torch.float64
x = torch.randn(256, 2, generator=g, dtype=f64) * torch.tensor([1.0, 0.1], dtype=f64)
y = x @ torch.ones(2, dtype=f64) + 0.1 * torch.randn(256, generator=g, dtype=f64)

def descend(batch, lr, epochs, seed=1):
    order, w, path = torch.Generator().manual_seed(seed), torch.zeros(2, dtype=torch.float64), []
    for _ in range(epochs):
        perm = torch.randperm(256, generator=order)
        for k in range(0, 256, batch):
            xb, yb = x[perm[k:k + batch]], y[perm[k:k + batch]]
            w = w - lr * xb.T @ (xb @ w - yb) / len(yb)      # the batch's mean gradient
            path.append(w)
    return torch.stack(path)

def descentlab_descend(batch, lr, epochs, seed=1):
    order, path = torch.Generator().manual_seed(seed), []
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = optim.SGD([w], lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(256, generator=order)
        for k in range(0, 256, batch):
            xb, yb = x[perm[k:k + batch]], y[perm[k:k + batch]]
            opt.zero_grad()
            (0.5 * (xb @ w - yb) ** 2).mean().backward()
            opt.step()
            path.append(w.detach().clone())
    return torch.stack(path)

settings = [(256, 1.98), (16, 1.0), (1, 0.15)]            # full batch, mini-batch, stochastic
mine = torch.cat([descend(b, lr, 2) for b, lr in settings])
library = torch.cat([descentlab_descend(b, lr, 2) for b, lr in settings])
w_star = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
for b, lr in settings:
    e = descend(b, lr, 2)[-1] - w_star
    print(f"B = {b:3d}: excess loss after 2 epochs {0.5 * e @ (x.T @ x / 256) @ e:.2e}")
""",
    what="full-batch, mini-batch and stochastic descent from scratch give descentlab's iterates",
)

TRAINING = kit.Prose(
    """
On MNIST-1D the same comparison, per example drawn, with descentlab's engine: `SGD` for
{{epochs}} epochs of the {{n_train}} training examples with batches of {{b1}} (η = {{lr1}}), of
{{b2}} (η = {{lr2}}, the same η/B) and the full batch (η = {{lr3}}). The engine takes
$\\lceil N/B \\rceil$ steps per epoch: {{steps1}}, {{steps2}} and {{steps3}} steps. The two
mini-batch runs, with the same η/B, follow the same curve per example drawn (the batch
chapter's linear scaling rule); the full batch, three steps in all, has barely left the start,
its training loss still {{full}} against the initial $\\ln 10$.""",
    steps1="the engine's steps with the small batches, against epochs × N/B",
    steps2="the engine's steps with the larger batches, against epochs × N/B",
    steps3="the engine's full-batch steps, against the epochs",
    full="the full batch's final training loss, against ln 10",
    n_train="the training examples, against the engine's steps × B per epoch",
)


def _training(ctx: Context, n: kit.Numbers) -> Part:
    from descentlab.problems import data

    n_train = int(data.load("mnist1d").x_train.shape[0])
    base = {"problem": "mnist1d", "epochs": TRAIN_EPOCHS, "eval_every": None, "optimizer": "sgd"}
    runs = {
        f"B = {b or 'all'}, η = {lr:g}": {**base, "batch_size": b, "hyper": {"lr": lr}}
        for b, lr in TRAIN
    }
    _, res = kit.training_run(ctx, "descent", runs, "")
    fig = FG.new_figure(8.5, 3.6)
    ax = fig.subplots()
    for (label, r), (b, _) in zip(res.items(), TRAIN, strict=True):
        s = r.metrics["train/loss"]
        ax.plot(np.asarray(s.steps) * (b or n_train), s.values, marker=".", ms=3, label=label)
    ax.set(xlabel="examples drawn", ylabel="train/loss")
    words = kit.WORDS["train/loss"]
    ax.set_title(f"MNIST-1D, descentlab's SGD: {words} against examples drawn", fontsize=10)
    ax.legend(fontsize=8)
    small, mid, full = res.values()
    steps = [r.steps for r in res.values()]
    text = TRAINING.fill(
        n,
        epochs=str(TRAIN_EPOCHS),
        n_train=(n_train, steps[0] * TRAIN[0][0] / TRAIN_EPOCHS, 0),
        b1=str(TRAIN[0][0]),
        lr1=f"{TRAIN[0][1]:g}",
        b2=str(TRAIN[1][0]),
        lr2=f"{TRAIN[1][1]:g}",
        lr3=f"{TRAIN[2][1]:g}",
        steps1=(steps[0], TRAIN_EPOCHS * math.ceil(n_train / TRAIN[0][0]), 0),
        steps2=(steps[1], TRAIN_EPOCHS * math.ceil(n_train / TRAIN[1][0]), 0),
        steps3=(steps[2], TRAIN_EPOCHS, 0),
        full=(kit.final(full, "train/loss"), math.log(10), 0.02, 4),
    )
    a, b = kit.final(small, "train/loss"), kit.final(mid, "train/loss")
    checks = [
        ck(
            "per example drawn, the two batch sizes with the same η/B end within 10 % of each "
            "other",
            0.9 < a / b < 1.1,
            f"{a:.4g} / {b:.4g} = {a / b:.3g}",
            "in (0.9, 1.1)",
        ),
        ck(
            "the full batch ends far above both",
            kit.final(full, "train/loss") > 1.2 * max(a, b),
            f"{kit.final(full, 'train/loss'):.4g}",
            f"> {1.2 * max(a, b):.4g}",
        ),
    ]
    table = kit.results_table(
        res,
        f"descentlab's engine (train), MNIST-1D, {TRAIN_EPOCHS} epochs, seed 0",
        ("steps", lambda r: r.steps),
        "train/loss",
        "test/accuracy",
    )
    return Part(
        "training", "A real training run: the same epochs, three ways", [text, fig, table, checks]
    )


KEEP = """
What to keep. Full-batch, mini-batch and stochastic descent take the same step with gradients
of different noise, and each is unbiased; what separates them is the cost of a step and the
noise it carries. On a training set whose examples are redundant, many cheap noisy steps per
epoch beat one exact step by orders of magnitude, until the noise floor; mini-batches trade
the floor against the steps per epoch through η/B, and the full batch wins only long after
its own e-folding count; an epoch of shuffled batches cancels its noise, yet at this budget it
ends level with drawing with replacement (its advantage appears at the floor). For least
squares the expected loss of each is exact, a recursion on the error's mean and second
moment with the data's own higher moments, and the runs of descentlab's SGD land on it."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.DESCENT

CHAPTER = kit.Chapter(
    "deep-descent",
    "Full-batch, stochastic and mini-batch descent, in depth",
    "The three ways to estimate a gradient, what each costs per step and per epoch, the exact "
    "expected loss of mini-batch SGD on a finite training set, sampling with and without "
    "replacement: derived, run with descentlab's SGD, written from scratch, and trained on "
    "MNIST-1D at equal examples drawn.",
    (11, 12, 13, 14, 48, 70, 72),
    (
        N,
        *LAM,
        NOISE,
        *BATCHES,
        *EPOCHS,
        *GRID,
        RUNS,
        TRAIN_EPOCHS,
        *[v for b in TRAIN for v in b if v],
        N // 16,
        3,
        10,
        16,
    ),
    (_three, _exact, _epoch, _sampling, _move, _scratch, _training),
    KEEP,
    EXERCISES,
)
