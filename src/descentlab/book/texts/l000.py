"""Teaching text of lecture 000, from maximum likelihood to Adam (items 1-30)."""

from __future__ import annotations

from typing import Any

from descentlab.book.bibliography import cite
from descentlab.book.model import Play

__all__ = ["TEACH"]

_MLE_CELL = """\
import torch

torch.manual_seed(0)
x = torch.randn(500) * 2.0 + 3.0                  # data drawn from N(3, 2^2)
mus = torch.linspace(0, 6, 601)[:, None]                 # candidate means, one per row
logp = torch.distributions.Normal(mus, 2.0).log_prob(x)    # log p(x_i | mu): 601 x 500
lik = logp.exp().prod(dim=1)                               # the product over examples
loglik = logp.sum(dim=1)                                   # its log: a sum
print("product of 500 densities at mu = 3:", float(lik[300]), "(underflows)")
print("argmax of the log-likelihood: mu =", round(float(mus[loglik.argmax()]), 2))
print("sample mean (the closed-form MLE):", round(float(x.mean()), 2))"""

TEACH: dict[int, dict[str, Any]] = {
    1: dict(
        explain="""
A model with weights `w` defines a distribution over the data, `P_model(· | w)`. Training
picks `w` so that this distribution resembles the one the data came from, `P_data`. The
usual measure of the mismatch is the Kullback-Leibler divergence
`KL(P_data ‖ P_model) = E_data[log P_data] - E_data[log P_model]`; the first term does not
depend on `w`, so minimizing the divergence is maximizing `E_data[log P_model(x | w)]`, the
expected log-likelihood. That is why the next items start from the likelihood.""",
        code="""\
import torch

torch.manual_seed(0)
data = torch.distributions.Normal(1.5, 1.0)
x = data.sample((20000,))
for mu in (0.0, 1.0, 1.5, 2.0):
    model = torch.distributions.Normal(mu, 1.0)
    kl = float(torch.distributions.kl_divergence(data, model))
    print(f"model mean {mu}: KL(P_data||P_model) = {kl:.3f}, "
          f"mean log-likelihood {float(model.log_prob(x).mean()):.3f}")""",
    ),
    2: dict(
        explain="""
Maximum likelihood chooses the weights under which the observed data were most probable:
`ŵ = argmax_w p_model(X | w)`. It needs no prior and no loss chosen by hand; the loss
follows from the assumed distribution (items 5-7). For a Gaussian with known variance the
maximizer of the mean is the sample mean, which the cell finds by searching the
likelihood.""",
        code=_MLE_CELL,
    ),
    3: dict(
        explain="""
If the examples are independent and identically distributed, the probability of all of them
is the product of each one's: `p(X | w) = ∏_i p_model(x_i | w)`. Independence is what allows
the product; identical distribution is what lets one model `p_model` serve every factor.
The product of hundreds of densities below 1 underflows in floating point (the cell prints
0), one practical reason for the log of item 4.""",
        code=_MLE_CELL,
    ),
    4: dict(
        explain="""
`log` is strictly increasing, so `log p(X | w)` is largest where `p(X | w)` is: the argmax
does not move. It turns the product into a sum, `Σ_i log p_model(x_i | w)`, which does not
underflow, whose gradient is a sum of per-example gradients (what makes mini-batches
possible, item 13), and which for exponential-family models is a simple function of the
parameters (a quadratic for the Gaussian). Minimizing the negative log-likelihood is the
same problem.""",
        code=_MLE_CELL,
    ),
    5: dict(
        explain="""
Write the model's prediction as the centre `μ = f_w(x)` of a distribution for `y`. The
negative log-likelihood of one example is then a function of the residual `y - f_w(x)`, and
its shape is the distribution's: a Laplace density `∝ exp(-|r|/b)` gives `|r|`, a Gaussian
`∝ exp(-r²/2σ²)` gives `r²`. So the choice of loss is a statement about the noise: L2 assumes
light-tailed Gaussian noise and is pulled hard by outliers, L1 assumes heavier tails and is
robust to them; the L2 fit of a constant is the mean, the L1 fit the median.""",
        code="""\
import torch
from descentlab import losses

y = torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0])        # one outlier
candidates = torch.linspace(0, 50, 501)               # constant predictions, step 0.1
for family, name in (("laplace", "L1"), ("normal", "L2")):
    loss = losses.nll(family, scale=1.0)
    values = torch.stack([loss(c.expand(5), y) for c in candidates])
    best = float(candidates[values.argmin()])
    print(f"{family:7s} likelihood ({name}): best constant {best:.2f}")
print("median", float(y.median()), " mean", float(y.mean()))""",
    ),
    6: dict(
        explain="""
The Laplace density is `p(y) = 1/(2b) · exp(-|y - μ|/b)`. Its negative log is
`|y - μ|/b + log 2b`. Summed over examples with `μ = f_w(x_i)`:
`(1/b) Σ|f_w(x_i) - y_i| + n log 2b`. The second term does not depend on `w` and the factor
`1/b > 0` does not move the minimizer, so maximum likelihood under Laplace noise is
minimizing `Σ|f_w(x_i) - y_i|`, the L1 loss.""",
        code="""\
import math
import torch
from descentlab import losses

mu, y, b = torch.tensor([0.0, 2.0, 5.0]), torch.tensor([1.0, 1.0, 1.0]), 2.0
nll = losses.nll("laplace", scale=b, reduction="sum")(mu, y)
l1 = (mu - y).abs().sum()
print(f"NLL = {float(nll):.6f};  L1/b + n log 2b = {float(l1 / b + 3 * math.log(2 * b)):.6f}")""",
    ),
    7: dict(
        explain="""
The Gaussian density is `p(y) = (2πσ²)^(-1/2) exp(-(y - μ)²/(2σ²))`; its negative log is
`(y - μ)²/(2σ²) + ½ log 2πσ²`. Summed with `μ = f_w(x_i)`, the constant `(n/2) log 2πσ²` and
the positive factor `1/(2σ²)` drop out of the argmin, leaving `Σ(f_w(x_i) - y_i)²`: least
squares is maximum likelihood under Gaussian noise of fixed variance.""",
        code="""\
import math
import torch
from descentlab import losses

mu, y, s = torch.tensor([0.0, 2.0, 5.0]), torch.tensor([1.0, 1.0, 1.0]), 0.5
nll = losses.nll("normal", scale=s, reduction="sum")(mu, y)
sse = ((mu - y) ** 2).sum()
const = 3 * 0.5 * math.log(2 * math.pi * s * s)
print(f"NLL = {float(nll):.6f};  SSE/(2 s^2) + const = {float(sse / (2 * s * s) + const):.6f}")""",
    ),
    8: dict(
        explain="""
For linear least squares `L(w) = ½‖Xw - y‖²` the gradient `Xᵀ(Xw - y)` is linear in `w`;
setting it to zero gives the normal equations `XᵀX w = Xᵀy`, solved once. This works because
the loss is quadratic (zero gradient is a linear system) and convex (the one stationary
point is the minimum). A network's loss is neither: `∇L = 0` is a nonlinear system with many
solutions, some of them saddles, and no formula solves it; hence iterative descent.""",
        code="""\
import torch
from descentlab import optim

torch.manual_seed(0)
X = torch.randn(100, 3, dtype=torch.float64)
w_true = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
y = X @ w_true + 0.1 * torch.randn(100, dtype=torch.float64)
w_closed = torch.linalg.solve(X.T @ X, X.T @ y)
w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
opt = optim.SGD([w], lr=0.005)
for _ in range(500):
    opt.zero_grad()
    (0.5 * ((X @ w - y) ** 2).sum()).backward()
    opt.step()
print("normal equations:", [round(v, 6) for v in w_closed.tolist()])
print("500 GD steps    :", [round(v, 6) for v in w.detach().tolist()])""",
    ),
    9: dict(
        explain="""
Near a stationary point `x*` (where `f'(x*) = 0`) Taylor's expansion is
`f(x* + h) ≈ f(x*) + ½ f''(x*) h²`. If `f'' > 0` every small step raises `f`: a local
minimum; if `f'' < 0` a maximum; `f'' = 0` decides nothing (`x³` at 0). In several
dimensions `f''` becomes the Hessian and the test asks for all its eigenvalues to be
positive; mixed signs make a saddle. The global minimum over an interval is the smallest of
the local minima and the endpoints.""",
        code="""\
import torch
from descentlab.problems import landscapes

f = landscapes.get("double_well")            # x^4/4 - x^2 + 0.3 x
print(f.plain)
for p in f.points:
    x = torch.tensor([p.x], dtype=torch.float64)
    h = float(landscapes.hessian(f, x)[0, 0, 0])
    print(f"{p.kind:15s} at x = {p.x[0]:+.4f}: f'' = {h:+.4f}")""",
    ),
    10: dict(
        explain="""
Newton's method would jump to the minimum of the local quadratic model, but it needs the
Hessian: `p²` second derivatives, each a sum over `n` examples (`O(np²)`), then a linear
solve (`O(p³)`). For a network with `p = 10⁶` weights that is `10¹²` numbers. A
Hessian-vector product `Hv` costs about two gradients (`O(np)`) by differentiating `∇f·v`,
and an iterative solver (conjugate gradients) needs `r·t` of them, so second-order
information is available without ever forming `H`; first-order methods skip it and take
many cheap steps.""",
        code="""\
import torch

torch.manual_seed(0)
p = 200
A = torch.randn(p, p, dtype=torch.float64)
H = A @ A.T / p                                  # the Hessian of f(w) = 1/2 w^T H w
f = lambda w: 0.5 * w @ H @ w
w, v = torch.randn(p, dtype=torch.float64), torch.randn(p, dtype=torch.float64)
hv = torch.autograd.functional.hvp(f, w, v)[1]   # H v without forming H
print("max |Hv - H @ v| =", float((hv - H @ v).abs().max()))
print("numbers in H:", p * p, " numbers in Hv:", p)""",
    ),
    11: dict(
        explain="""
The gradient `∇L(w)` is the direction in which the loss rises fastest; a small step against
it lowers the loss by about `η‖∇L‖²` (first-order Taylor). Gradient descent repeats that:
`w ← w - η∇L(w)`. It needs only first derivatives, which backpropagation computes for about
twice the cost of a forward pass. It stops where the gradient vanishes: a minimum, but
possibly a saddle or a local minimum (items 46, 97).""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("bowl")
print(f.plain)
run = trajectories.run(f, "sgd", [f.start], steps=30, lr=0.1)
for t in (0, 1, 2, 5, 10, 30):
    print(f"step {t:2d}: w = {[round(v, 4) for v in run.paths[0, t].tolist()]}, "
          f"loss {float(run.losses[0, t]):.5f}")""",
        play=Play("bowl", {"sgd": {"lr": 0.1}}, steps=30),
    ),
    12: dict(
        explain="""
The training loss is the mean of the per-example losses, `L = (1/N) Σ L_i`, and the gradient
is linear, so `∇L = (1/N) Σ ∇L_i`: full-batch gradient descent averages every example's
gradient before each step. The cost of one step grows with `N` (and with the model): for a
million examples each step reads the whole data set once.""",
        code="""\
import torch

torch.manual_seed(0)
X, y = torch.randn(64, 3), torch.randn(64)
w = torch.zeros(3, requires_grad=True)
full = torch.autograd.grad(((X @ w - y) ** 2).mean(), w)[0]
each = torch.stack([torch.autograd.grad((X[i] @ w - y[i]) ** 2, w)[0] for i in range(64)])
print("gradient of the mean loss :", [round(v, 5) for v in full.tolist()])
print("mean of the 64 gradients  :", [round(v, 5) for v in each.mean(0).tolist()])""",
    ),
    13: dict(
        explain="""
SGD replaces the mean over all `N` examples by the mean over a random batch `B`:
`w ← w - η (1/|B|) Σ_{i∈B} ∇L_i`. A step costs `|B|/N` of a full-batch step, so in the time
of one exact step SGD takes `N/|B|` noisy ones. Early in training, when every example's
gradient points roughly the same way, those many cheap steps go much farther; the price is
noise, which item 14 quantifies and item 18 shows at the end of training.""",
        code="""\
import torch
from descentlab import optim

torch.manual_seed(0)
X = torch.randn(1000, 5)
y = X @ torch.ones(5) + 0.1 * torch.randn(1000)
w = torch.nn.Parameter(torch.zeros(5))
opt = optim.SGD([w], lr=0.05)
for epoch in range(3):
    for idx in torch.randperm(1000).split(20):            # 50 batches of 20 per epoch
        opt.zero_grad()
        ((X[idx] @ w - y[idx]) ** 2).mean().backward()
        opt.step()
    print(f"epoch {epoch + 1}: full loss {((X @ w - y) ** 2).mean().item():.4f}")""",
    ),
    14: dict(
        explain="""
Let `B` be drawn uniformly. Each `∇L_i` in it has expectation `(1/N) Σ_j ∇L_j = ∇L`, so the
batch mean has the same expectation: it is unbiased. With `Σ` the covariance of a single
example's gradient, the mean of `B` independent draws has covariance `Σ/B`: the noise's
total variance is `tr(Σ)/B`, so quadrupling the batch halves the noise's standard
deviation. (Drawing without replacement from a finite set multiplies this by
`(N - B)/(N - 1)`, the finite-population correction.)""",
        code="""\
import torch

torch.manual_seed(0)
X, y = torch.randn(4096, 3), torch.randn(4096)
w = torch.full((3,), 0.5)
per_example = 2 * (X @ w - y)[:, None] * X                 # gradients of (x.w - y)^2
full = per_example.mean(0)
trace = float(per_example.var(0).sum())
for B in (8, 32, 128):
    idx = torch.randint(0, 4096, (5000, B))
    g = per_example[idx].mean(1)                             # 5,000 batch gradients
    print(f"B = {B:3d}: mean |bias| {float((g.mean(0) - full).abs().max()):.4f}, "
          f"variance {float(g.var(0).sum()):.4f}, tr(Sigma)/B {trace / B:.4f}")""",
    ),
    15: dict(
        explain="""
On a direction of curvature `λ` a gradient step multiplies the error by `1 - ηλ`. When
`η > 2/λ` that factor is below -1: each step overshoots the minimum by more than the
distance it started from, and the error grows geometrically. The largest curvature `L` of
the loss therefore caps the learning rate at `2/L`; above it the loss blows up within a
few steps (item 106 has the full picture of the factor).""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")                       # curvature 2: the limit is lr = 1
for lr in (0.9, 1.0, 1.1):
    run = trajectories.run(f, "sgd", [f.start], steps=20, lr=lr)
    print(f"lr {lr}: |x - 2| after 20 steps = {abs(float(run.paths[0, -1, 0]) - 2):.3g}")""",
        play=Play("parabola", {"sgd": {"lr": 1.05}}, steps=12, mode="oned"),
    ),
    16: dict(
        explain="""
With a small rate the factor `1 - ηλ` is close to 1 and each step removes only the fraction
`ηλ` of the remaining error: reducing it by `e` takes `1/(ηλ)` steps. Ten times smaller a
rate is ten times more steps, and in the flattest directions (small `λ`) the count is
largest; that is where training time goes.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")
for lr in (0.2, 0.02, 0.002):
    run = trajectories.run(f, "sgd", [f.start], steps=3000, lr=lr)
    err = (run.paths[0, :, 0] - 2).abs()
    steps = int((err < 0.01).nonzero()[0])
    print(f"lr {lr:5}: {steps:4d} steps to |x - 2| < 0.01")""",
        play=Play("parabola", {"sgd": {"lr": 0.01}}, steps=100, mode="oned"),
    ),
    17: dict(
        explain="""
Since the useful rates lie below the divergence limit `2/L`, which is unknown, the practical
search starts high and divides (by 3 or 10) until the loss stops blowing up: the first
stable rate is near the fastest. Even then a constant rate with noisy gradients does not
converge to the minimum; it reaches a neighbourhood whose size grows with the rate
(item 18), which is what schedules are for.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("quadratic", kappa=10)
lr = 10.0
while True:
    run = trajectories.run(f, "sgd", [f.start], steps=100, lr=lr)
    loss = float(run.losses[0, -1])
    note = "  (diverged)" if bool(run.diverged[0]) else ""
    print(f"try lr {lr:.4g}: final loss {loss:.3g}{note}")
    if not bool(run.diverged[0]) and loss < 1e-3:
        break
    lr /= 3""",
        play=Play("quadratic", {"sgd": {"lr": 1.111}}, steps=100, kappa=10),
    ),
    18: dict(
        explain="""
At the optimum the *mean* gradient is zero but each batch's is not, so constant-rate SGD is
pushed off it and settles into a stationary spread. On `f = ½λw²` with gradient noise of
variance `σ²`, one step is `w ← (1 - αλ) w - ασξ`. In the stationary state the variance `V`
is unchanged by a step: `V = (1-αλ)² V + α²σ²`, so
`V = α²σ²/(1 - (1-αλ)²) = ασ²/(λ(2 - αλ))`. The floor is proportional to the rate: halve
`α` and the spread halves, but it never reaches 0 while `α` stays constant. Only a decaying
rate (items 20-21) converges.""",
        code="""\
import torch
from descentlab import optim

alpha, lam, sigma = 0.1, 1.0, 1.0
torch.manual_seed(0)
w = torch.nn.Parameter(torch.zeros(20000))       # 20,000 independent chains, started at the optimum
opt = optim.SGD([w], lr=alpha)
for _ in range(300):
    w.grad = lam * w.detach() + sigma * torch.randn(20000)
    opt.step()
floor = alpha * sigma ** 2 / (lam * (2 - alpha * lam))
print(f"measured E[w^2] = {float((w.detach() ** 2).mean()):.5f}, "
      f"formula a s^2/(l(2 - a l)) = {floor:.5f}")""",
    ),
    19: dict(
        explain="""
Adding the updates up from the start: `w^t = w^0 - Σ_{k<t} η_k ∇L(w^k)`. For the iterates to
settle, the tail of this series must shrink. With a constant `η` and noisy gradients the
terms never shrink (the noise stays), so the sum keeps wandering; with `η_k → 0` fast
enough the noisy tail sums to something finite while the total rate `Σ η_k` is still
unlimited, so the iterate can still reach any distance. Item 20 turns this into the two
conditions.""",
        code="""\
import torch
from descentlab import optim

torch.manual_seed(0)
w = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
opt = optim.SGD([w], lr=0.1)
start, grads, lrs = w.item(), [], []
for _ in range(50):
    g = 2 * w.detach()                 # f = w^2
    grads.append(g.item()); lrs.append(0.1)
    w.grad = g
    opt.step()
unrolled = start - sum(a * b for a, b in zip(lrs, grads))
print(f"w_50 = {w.item():.10f};  w_0 - sum eta_k g_k = {unrolled:.10f}")""",
    ),
    20: dict(
        explain="\n"
        + cite("robbins1951")
        + """ asked what a step-size sequence needs so that
`w_{t+1} = w_t - η_t g_t` with unbiased noisy `g_t` converges. Two things. `Σ η_t = ∞`:
the steps must be able to cover any distance, since a start arbitrarily far from the
optimum must be reachable; a finite sum is a finite travel budget. `Σ η_t² < ∞`: the noise
injected by step `t` has variance `η_t² σ²`, and their sum is the total noise variance; it
must be finite for the iterate to stop fluctuating. A constant rate fails the second, a
geometric decay fails the first.""",
        code="""\
from descentlab import schedules as S
from descentlab.book import convergence as C
from descentlab.book import decays as D

for name, s in (("constant 0.1", S.constant(0.1)), ("eta/t", D.eta_over_t(0.1)),
                ("exponential", D.exp_decay(k=0.01, a0=0.1))):
    r = C.robbins_monro(s, horizon=20000)
    print(f"{name:12s}: sum eta diverges {r.eta_sum_diverges!s:5}, "
          f"sum eta^2 converges {r.eta_sq_sum_converges!s:5} -> met: {r.meets}")""",
    ),
    21: dict(
        explain="""
`η_t = η/t`: the harmonic series `Σ 1/t` diverges (like `log T`), and `Σ 1/t² = π²/6` is
finite, so both conditions hold. Any `η/t^p` with `½ < p ≤ 1` does too; `p ≤ ½` fails the
second, `p > 1` the first. In practice `1/t` from the first step is too aggressive (the rate
is halved by step 2), hence `η/(1 + kt)` (item 115) with a small `k`.""",
        code="""\
import math
from descentlab.book import decays as D

s = D.eta_over_t(1.0)
for T in (10, 1000, 100000):
    total = sum(s(t) for t in range(T))
    squares = sum(s(t) ** 2 for t in range(T))
    print(f"T = {T:6d}: sum eta = {total:8.3f} (log T + 0.577 = {math.log(T) + 0.5772:.3f}), "
          f"sum eta^2 = {squares:.5f} (pi^2/6 = {math.pi ** 2 / 6:.5f})")""",
    ),
    22: dict(
        explain="""
torch's schedulers all multiply the optimizer's base rate by a factor that depends on the
step (or epoch) count: Lambda by any function, Multiplicative by a running product, Step and
MultiStep by `γ` at chosen times, Constant and Linear for warm-up, Exponential by `γ^t`,
Polynomial towards 0 at a horizon, CosineAnnealing along half a cosine. descentlab's
schedules are the same factors as functions of the step, usable on any hyperparameter;
the cell compares two with torch's.""",
        code="""\
import torch
from descentlab import schedules as S

w = torch.nn.Parameter(torch.zeros(1))
opt = torch.optim.SGD([w], lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
ours = S.step(3, gamma=0.5, base=0.1)
rows = []
for t in range(8):
    rows.append((t, opt.param_groups[0]["lr"], ours(t)))
    opt.step(); sched.step()
for t, a, b in rows:
    print(f"step {t}: torch StepLR {a:.4f}  descentlab step {b:.4f}")""",
    ),
    23: dict(
        explain="""
A tuned rate and a schedule fix the step's size, not its direction. On an ill-conditioned
loss the gradient points mostly across the valley, so plain SGD spends its steps
oscillating between the walls and progresses along the floor at a rate set by the smallest
curvature: about `κ` steps per factor `e` (item 102). That slowness, not the noise, is what
momentum addresses.""",
        code="""\
from descentlab.problems import landscapes, trajectories

for kappa in (10, 100, 1000):
    f = landscapes.get("quadratic", kappa=kappa)
    run = trajectories.run(f, "sgd", [f.start], steps=5000, lr=2 / (1 + 1 / kappa))
    steps = int((run.losses[0] < 1e-6).nonzero()[0])
    print(f"kappa {kappa:5d}: {steps:5d} steps of the best constant rate to loss < 1e-6")""",
        play=Play("quadratic", {"sgd": {"lr": 1.9802}}, steps=150, kappa=100),
    ),
    24: dict(
        explain="""
Momentum's velocity is a running sum of past gradients. Along a ravine's floor the gradient
keeps its direction, so the velocity grows to `1/(1-β)` times a single step (10 times at
`β = 0.9`) and the iterate rolls along; across the ravine the gradient flips sign, and the
flipping terms partly cancel. Whether the sideways motion is damped or amplified depends on
`β` and the rate (item 103): here, at lr 0.02 and `β` 0.9, the iterate bounces but rolls
along the floor much faster than SGD at the same rate.""",
        code="""\
from descentlab.problems import landscapes, trajectories

ravine = landscapes.get("ravine")
for name in ("sgd", "momentum"):
    run = trajectories.run(ravine, name, [ravine.start], steps=150, lr=0.02,
                           hyper={"momentum": 0.9} if name == "momentum" else None)
    print(f"{name:8s} lr 0.02: x after 150 steps {float(run.paths[0, -1, 0]):+.3f} (start -10)")""",
        play=Play(
            "ravine", {"sgd": {"lr": 0.02}, "momentum": {"lr": 0.02, "momentum": 0.9}}, steps=150
        ),
    ),
    25: dict(
        explain="""
`m ← β₁m - η∇L`, `w ← w + m`. `m` is a velocity: it keeps the fraction `β₁` of its last value
and adds the new step `-η∇L`. Unrolled, `m_t = -η Σ_k β₁^(t-k) ∇L(w_k)`: an exponentially
weighted sum of past steps. With `β₁ = 0` it is gradient descent; on a constant gradient
it converges to `-η∇L/(1-β₁)`.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
opt = optim.Momentum([w], lr=0.05, momentum=0.9, form="velocity")
m, x = 0.0, 2.0
for _ in range(10):
    m = 0.9 * m - 0.05 * (2 * x)          # f = w^2, the rule by hand
    x = x + m
    w.grad = 2 * w.detach()
    opt.step()
print(f"by hand: {x:.12f}   descentlab: {w.item():.12f}")""",
    ),
    26: dict(
        explain="""
After `k` steps a gradient's weight in `m` has shrunk to `β^k`; it falls to `1/e` after
`-1/ln β ≈ 1/(1-β)` steps. So `β = 0.5` remembers about 2 steps, 0.9 about 10, 0.99 about
100: the larger `β`, the smoother and the slower to turn.""",
        code="""\
import torch
from descentlab import optim

for beta in (0.5, 0.9, 0.99):
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = optim.Momentum([w], lr=1.0, momentum=beta, form="velocity")
    w.grad = torch.ones(1, dtype=torch.float64)       # one impulse ...
    opt.step()
    first = -w.item()
    w.grad = torch.zeros(1, dtype=torch.float64)      # ... then nothing
    k, last = 0, first
    while True:
        before = w.item(); opt.step(); k += 1
        if before - w.item() < first / 2.718281828:
            break
    print(f"beta {beta}: the impulse's effect falls below 1/e after {k} steps "
          f"(1/(1-beta) = {1 / (1 - beta):.0f})")""",
    ),
    27: dict(
        explain="""
When the loss is much steeper along `W₂` than along `W₁`, the gradient is dominated by its
`W₂` component. A rate small enough to keep `W₂` stable makes the `W₁` steps tiny; a larger
one makes `W₂` overshoot back and forth. RMSProp divides each component by its own recent
size, so both coordinates take steps of comparable size: the sign flips in `W₂` disappear
(the cell's `y` falls monotonically), and `W₁` advances about as fast as SGD does at its
largest stable rate, without SGD's zig-zag.""",
        code="""\
from descentlab.problems import landscapes, trajectories

ravine = landscapes.get("ravine")        # steep in y (W2), gentle in x (W1)
for name, lr in (("sgd", 0.18), ("rmsprop", 0.05)):
    run = trajectories.run(ravine, name, [ravine.start], steps=60, lr=lr)
    x, y = run.paths[0, :, 0], run.paths[0, :, 1]
    print(f"{name:8s}: x moved {float(x[60] - x[0]):.2f} in 60 steps; y steps 1-3:",
          [round(v, 3) for v in y[1:4].tolist()])""",
        play=Play("ravine", {"sgd": {"lr": 0.18}, "rmsprop": {"lr": 0.05}}, steps=100),
    ),
    28: dict(
        explain="""
`v ← β₂v + (1-β₂)g²` is a running mean of the squared gradient per coordinate, so `√v` is
its typical size (root mean square, hence the name). Dividing the step by `√v + ε` makes
it about `η` in every coordinate that has had steady gradients, smaller where recent
gradients were large relative to their mean (an oscillating coordinate), and `ε` guards the
division where gradients are zero.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
opt = optim.RMSprop([w], lr=0.01, alpha=0.9, eps=1e-8)
for _ in range(100):
    w.grad = torch.tensor([100.0, 1.0, 0.01], dtype=torch.float64)
    opt.step()
print("after 100 equal steps each coordinate moved:",
      [round(-v, 4) for v in w.detach().tolist()])""",
    ),
    29: dict(
        explain="""
Adam keeps both: the first moment `m` (momentum's direction, averaged) and the second
moment `v` (RMSProp's scale), and steps `-η m̂/(√v̂ + ε)` with both bias-corrected (item
111). It inherits momentum's smoothing and RMSProp's per-coordinate scaling, which is why it
is a strong default. "Often best" is not "always": on the book's landscapes no optimizer
wins every race, and plain SGD wins none outright but ties on some (item 60).""",
        code="""\
import torch
from descentlab import optim

g = torch.tensor([0.3, -2.0], dtype=torch.float64)
w1 = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
adam = optim.Adam([w1], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
m = v = torch.zeros(2, dtype=torch.float64)
x = torch.zeros(2, dtype=torch.float64)
for t in range(1, 6):
    m = 0.9 * m + 0.1 * g                      # momentum's average
    v = 0.999 * v + 0.001 * g * g              # RMSProp's average
    x = x - 0.01 * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
    w1.grad = g.clone()
    adam.step()
print("momentum + RMSProp by hand:", [f"{t:.10f}" for t in x.tolist()])
print("descentlab Adam           :", [f"{t:.10f}" for t in w1.detach().tolist()])""",
        play=Play(
            "rosenbrock",
            {
                "sgd": {"lr": 0.001},
                "momentum": {"lr": 0.001},
                "rmsprop": {"lr": 0.01},
                "adam": {"lr": 0.05},
            },
            steps=300,
        ),
    ),
    30: dict(
        explain="""
The lecture in one line: assume a distribution for the data, and maximum likelihood turns
the mismatch into a loss (MLE to L1/L2/cross-entropy); the loss's gradient comes from
backpropagation; an optimizer turns gradients into steps (SGD, then momentum for
direction, RMSProp for scale, Adam for both, and a schedule for the step size over time).
The cell runs the whole pipeline on a tiny regression.""",
        code="""\
import torch
from descentlab import losses, optim

torch.manual_seed(0)
x = torch.linspace(-1, 1, 64)[:, None]
y = 3 * x[:, 0] + 0.2 * torch.randn(64)
model = torch.nn.Linear(1, 1)
loss_fn = losses.nll("normal", scale=1.0)          # Gaussian likelihood -> L2
opt = optim.Adam(model.parameters(), lr=0.05)
for _ in range(300):
    opt.zero_grad()
    loss = loss_fn(model(x)[:, 0], y)
    loss.backward()                                 # backprop: the gradient
    opt.step()                                      # the optimizer: the step
print(f"slope {model.weight.item():.3f} (true 3), loss {loss.item():.4f} "
      "(the Gaussian NLL: half the mean square error + the constant log(2 pi)/2 = 0.919)")""",
    ),
}
