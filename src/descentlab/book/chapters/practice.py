"""The exercises of the in-depth chapters, one tuple a chapter: each asks for a number derived
on paper, measures it by running descentlab, and states the misconception it refuses (the
build fails one whose page would accept it)."""

from __future__ import annotations

from descentlab.book.model import Exercise

__all__ = [
    "ADAPTIVE",
    "BATCH",
    "COMPARE",
    "CONVEXITY",
    "CONVOLUTION",
    "DESCENT",
    "LIKELIHOOD",
    "METHODOLOGY",
    "MOMENTUM",
    "NEWTON",
    "REGULARIZATION",
    "SCHEDULES",
]

MOMENTUM = (
    Exercise(
        "descentlab's SGD with lr 0.1 and momentum 0.9 minimises f(w) = ½w². By what factor "
        "does its error shrink per step in the long run?",
        "A step and the buffer form a linear map whose characteristic polynomial is "
        "`z² - (1 + β - ηλ)z + β`, here with `a = 1 + β - ηλ`; its discriminant `a² - 4β` is "
        "negative, so both roots have modulus `√β`, about 0.9487. Plain gradient descent "
        "with the same η shrinks the error by `1 - ηλ` per step: momentum is slower on this "
        "well-conditioned problem. The code reads the map from descentlab's SGD (two steps "
        "from two states) and takes its spectral radius.",
        """\
import numpy as np
import torch
from descentlab import optim

lr, beta = 0.1, 0.9
a = 1 + beta - lr * 1.0
disc = a * a - 4 * beta                      # negative: complex roots
answer = beta ** 0.5


cols = []
for w0, b0 in ((1.0, 0.0), (0.0, 1.0)):
    # find the state (w, buffer) after the first step that equals (w0, b0), then step once
    w = torch.tensor([w0], dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=lr, momentum=beta)
    w.grad = torch.zeros(1, dtype=torch.float64)
    opt.step()
    opt.state[w]["momentum_buffer"].fill_(b0)
    w.grad = w.detach().clone()
    opt.step()
    cols.append([float(w.detach()), float(opt.state[w]["momentum_buffer"])])
M = np.array(cols).T
measured = float(max(abs(np.linalg.eigvals(M))))
tol = 1e-9
misconception = 1 - lr * 1.0                 # "momentum converges like gradient descent"
# the letters of the worked solution's formulas, and the words it teaches, as this run has them
symbols = {"η": lr, "β": beta, "λ": 1.0, "a": a}
said = {"characteristic polynomial is z² - (1 + β - ηλ)z + β":
        bool(np.allclose(np.poly(M), [1.0, -a, beta], atol=1e-12))}
print(f"spectral radius {measured:.6f}")""",
        items=(24, 98),
    ),
    Exercise(
        "descentlab's SGD with nesterov=True, lr 0.1 and momentum 0.9 starts at w = 1 on "
        "f(w) = ½w² with an empty buffer. Where is w after two steps?",
        "The Nesterov form steps along `g + β·b` with the buffer `b = βb + g` already "
        "updated, which is the heavy ball's step evaluated at the look-ahead point: step one "
        "goes to `w₁ = 1 - η(g₀ + βg₀)`, step two uses the gradient at w₁ and the buffer "
        "`b₁ = βg₀ + g₁`. The heavy ball (nesterov=False) evaluates its gradient where it "
        "stands and ends elsewhere (`hb2` in the code). The code runs descentlab.",
        """\
import torch
from descentlab import optim

lr, beta = 0.1, 0.9
g0 = 1.0
w1 = 1 - lr * (g0 + beta * g0)               # the buffer is g0 after one step
g1 = w1
b1 = beta * g0 + g1
answer = w1 - lr * (g1 + beta * b1)


def two_steps(nesterov):
    # descentlab's positions after one step and two, and its buffer after two
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=lr, momentum=beta, nesterov=nesterov)
    path = []
    for _ in range(2):
        w.grad = w.detach().clone()
        opt.step()
        path.append(float(w.detach()))
    return path[0], path[1], float(opt.state[w]["momentum_buffer"])


ran_w1, measured, ran_b1 = two_steps(True)
hb1 = 1 - lr * g0
hb2 = hb1 - lr * (hb1 + beta * g0)           # the heavy ball: its gradient where it stands
tol = 1e-12
misconception = hb2                          # "Nesterov is momentum with another name"
heavy = two_steps(False)[1]
symbols = {"η": lr, "β": beta, "g₀": g0, "g₁": g1, "w₁": ran_w1, "b₁": ran_b1}
said = {"evaluates its gradient where it stands and ends elsewhere":
        abs(heavy - hb2) < 1e-12 and abs(heavy - measured) > 1e-3}
print(f"Nesterov {measured:.6f}, heavy ball {heavy:.6f}")""",
        items=(25, 99),
    ),
    Exercise(
        "Heavy-ball momentum with β = 0.9 runs on f(w) = 5w² (curvature λ = 10). What is the "
        "largest learning rate at which it still converges?",
        "The roots of `z² - (1 + β - ηλ)z + β` stay inside the unit circle while "
        "`0 < ηλ < 2(1 + β)`, so the largest stable rate is `2(1 + β)/λ`, here "
        "`2(1 + 0.9)/λ = 0.38`, the bound of plain gradient descent scaled by `1 + β`. "
        "The plain step's bound `2/λ` is what a reader who "
        "forgets the buffer would give. The code bisects η on descentlab's SGD: a run "
        "converges or grows.",
        """\
import torch
from descentlab import optim

beta, lam = 0.9, 10.0
answer = 2 * (1 + beta) / lam


def grows(lr, steps=400):
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=lr, momentum=beta)
    for _ in range(steps):
        w.grad = lam * w.detach()
        opt.step()
    return not abs(float(w.detach())) < 1.0      # (an overflow is growth too)


lo, hi = 0.1, 1.0
for _ in range(14):
    mid = (lo + hi) / 2
    lo, hi = (lo, mid) if grows(mid) else (mid, hi)
measured = (lo + hi) / 2
tol = 0.005
misconception = 2 / lam                      # the plain step's bound
# the words the worked solution teaches, each with what this run computes of it
said = {"a run converges or grows": grows(1.01 * measured) and not grows(0.99 * measured)}
print(f"largest stable lr {measured:.4f}")""",
        items=(26, 100),
    ),
)

ADAPTIVE = (
    Exercise(
        "descentlab's Adagrad with lr 0.1 sees the same gradient g = 3 at every step. What is "
        "its 100th step divided by its first?",
        "AdaGrad divides by the root of the sum of all squared gradients so far, `√(t g²)`, so "
        "its t-th step is `η/√t` whatever g is, and the ratio is `1/√t`: its rate falls, it "
        "never grows. A reader who takes AdaGrad's rate for a constant would answer 1. The "
        "code runs descentlab's Adagrad on the line f(w) = 3w.",
        """\
import torch
from descentlab import optim

lr, g, t = 0.1, 3.0, 100
answer = 1 / t ** 0.5
w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
opt = optim.Adagrad([w], lr=lr, eps=1e-300)
steps, before = [], 0.0
for _ in range(t):
    w.grad = torch.full((1,), g, dtype=torch.float64)
    opt.step()
    now = float(w.detach())
    steps.append(before - now)
    before = now
measured = steps[-1] / steps[0]
tol = 1e-9
misconception = 1.0                          # "AdaGrad keeps its rate"
print(f"first step {steps[0]:.6f}, 100th {steps[-1]:.6f}")""",
        items=(27, 53),
    ),
    Exercise(
        "descentlab's Adam with lr 0.01 and betas (0.9, 0.999) sees g = 2 at its first step. "
        "How far does w move?",
        "After one step `m = (1 - β₁)g` and `v = (1 - β₂)g²`; the bias corrections divide "
        "them by `1 - β₁` and `1 - β₂`, giving back g and g², so the step is `η g/|g| = η` "
        "(less a hair for ε). Without the corrections the step would be "
        "`η(1 - β₁)/√(1 - β₂)`, about three times larger (`raw` in the code): the "
        "corrections are what make the first steps trustworthy. The code runs descentlab.",
        """\
import torch
from descentlab import optim

lr, b1, b2, g, eps = 0.01, 0.9, 0.999, 2.0, 1e-8
answer = lr * g / (abs(g) + eps)
w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
opt = optim.Adam([w], lr=lr, betas=(b1, b2), eps=eps)
w.grad = torch.full((1,), g, dtype=torch.float64)
opt.step()
measured = -float(w.detach())
raw = lr * (1 - b1) * g / ((1 - b2) * g * g) ** 0.5
tol = 1e-9
misconception = raw                          # "the averages need no correction"
m, v = float(opt.state[w]["exp_avg"]), float(opt.state[w]["exp_avg_sq"])
corrections = (1 - b1, 1 - b2)
symbols = {"m": m, "v": v, "β₁": b1, "β₂": b2, "g": g, "η": lr}
said = {"(less a hair for ε)": measured < lr,
        "about three times larger": 2.5 < raw / measured < 3.5}
print(f"first step {measured:.6g}")""",
        items=(55, 56),
    ),
    Exercise(
        "descentlab's RMSprop with lr 0.01 and alpha 0.99 (no bias correction) sees g = 2 at "
        "its first step. How far does w move?",
        "RMSProp's average starts at zero: after one step `v = (1 - α)g²`, and with no "
        "correction the step is `ηg/√((1 - α)g²) = η/√(1 - α)`, ten times η here. Reading "
        "RMSProp as Adam without momentum, whose first step is η, is the misconception the "
        "page refuses. The code runs descentlab.",
        """\
import torch
from descentlab import optim

lr, alpha, g = 0.01, 0.99, 2.0
answer = lr / (1 - alpha) ** 0.5
w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
opt = optim.RMSprop([w], lr=lr, alpha=alpha, eps=1e-12)
w.grad = torch.full((1,), g, dtype=torch.float64)
opt.step()
measured = -float(w.detach())
tol = 1e-9
misconception = lr                           # "its first step is η, as Adam's"
symbols = {"v": float(opt.state[w]["square_avg"]), "α": alpha, "g": g, "η": lr}
u = torch.zeros(1, dtype=torch.float64, requires_grad=True)
adam = optim.Adam([u], lr=lr, betas=(0.0, alpha), eps=1e-12)    # Adam without momentum
u.grad = torch.full((1,), g, dtype=torch.float64)
adam.step()
said = {"Reading RMSProp as Adam without momentum, whose first step is η":
        abs(-float(u.detach()) - lr) < 1e-12 and abs(measured - lr) > 0.5 * lr}
print(f"first step {measured:.6g}")""",
        items=(28, 29),
    ),
)

BATCH = (
    Exercise(
        "Four examples have the scalar gradients 1, 2, 3 and 6. A mini-batch of B = 2 is drawn "
        "with replacement. What is the variance of the mini-batch's mean gradient?",
        "The examples' gradients have mean 3 and variance "
        "`σ² = (1² + 2² + 3² + 6²)/4 - 3² = 3.5` (the mean of the squares less the square of "
        "the mean); a mean of B independent draws has variance "
        "`σ²/B`. Keeping `σ²` (batching changes nothing) or dividing by `B²` are the two "
        "misconceptions. The code enumerates every ordered pair of draws and takes the mean "
        "gradient of each from descentlab's SGD step.",
        """\
import itertools
import statistics
import torch
from descentlab import optim

grads, B = (1.0, 2.0, 3.0, 6.0), 2
mean = sum(grads) / len(grads)
var = sum(g * g for g in grads) / len(grads) - mean * mean
answer = var / B
means = []
for batch in itertools.product(grads, repeat=B):
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    w.grad = torch.tensor([sum(batch) / B], dtype=torch.float64)
    opt.step()
    means.append(-float(w.detach()))         # an SGD step of lr 1 moves by the mean gradient
m = sum(means) / len(means)
measured = sum((x - m) ** 2 for x in means) / len(means)
tol = 1e-12
misconception = (var, var / B ** 2)          # "batching changes nothing"; "it divides by B²"
divisors = (1, B ** 2)                       # the two misconceptions' divisors of σ²
symbols = {"σ": var ** 0.5, "B": B}
said = {
    "have mean 3 and variance": mean == statistics.fmean(grads) != statistics.median(grads)
    and abs(var - statistics.pvariance(grads)) < 1e-12,
    "(the mean of the squares less the square of the mean)":
        abs(statistics.fmean(g * g for g in grads) - mean ** 2 - var) < 1e-12,
    "a mean of B independent draws has variance σ²/B": abs(measured - var / B) < 1e-12,
    "enumerates every ordered pair of draws and takes the mean gradient":
        len(means) == len(grads) ** B,
}
print(f"variance of the mean gradient {measured}")""",
        items=(13, 14),
    ),
    Exercise(
        "The same four gradients 1, 2, 3 and 6, but the mini-batch of B = 2 is drawn without "
        "replacement (two different examples). What is the variance of its mean gradient now?",
        "Without replacement the draws are negatively correlated: the variance is "
        "`σ²/B · (N - B)/(N - 1)`, the finite-population correction, `(N - B)/(N - 1)` of the "
        "with-replacement value `σ²/B`. The code enumerates the pairs of different examples.",
        """\
import itertools

grads, B = (1.0, 2.0, 3.0, 6.0), 2
N = len(grads)
mean = sum(grads) / N
var = sum(g * g for g in grads) / N - mean * mean
answer = var / B * (N - B) / (N - 1)
means = [sum(pair) / B for pair in itertools.combinations(grads, B)]
m = sum(means) / len(means)
measured = sum((x - m) ** 2 for x in means) / len(means)
tol = 1e-12
misconception = var / B                      # the with-replacement formula
pairs = list(itertools.permutations(grads, 2))
covariance = sum(a * b for a, b in pairs) / len(pairs) - mean * mean
said = {"Without replacement the draws are negatively correlated: the variance is":
        covariance < 0 and abs(measured - answer) < 1e-12,
        "The code enumerates the pairs of different examples": len(means) == N * (N - 1) // B}
print(f"variance without replacement {measured:.6f}")""",
        items=(14, 70),
    ),
    Exercise(
        "descentlab's SGD with lr 0.1 takes one step on a mini-batch of B = 4 drawn with "
        "replacement from examples whose gradients are 1, 2, 3 and 6. What is the standard "
        "deviation of the step's displacement?",
        "The step is `η` times the mini-batch mean, whose variance is `σ²/B`: the standard "
        "deviation is `η√(σ²/B)`, half of the one-example step's `η σ` at B = 4. The code "
        "enumerates all batches and takes each step with descentlab's SGD.",
        """\
import itertools
import torch
from descentlab import optim

grads, B, lr = (1.0, 2.0, 3.0, 6.0), 4, 0.1
mean = sum(grads) / len(grads)
var = sum(g * g for g in grads) / len(grads) - mean * mean
answer = lr * (var / B) ** 0.5
moves = []
for batch in itertools.product(grads, repeat=B):
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=lr)
    w.grad = torch.tensor([sum(batch) / B], dtype=torch.float64)
    opt.step()
    moves.append(float(w.detach()))
m = sum(moves) / len(moves)
measured = (sum((x - m) ** 2 for x in moves) / len(moves)) ** 0.5
tol = 1e-9
misconception = lr * var ** 0.5              # "the batch does not matter"
said = {"The step is η times the mini-batch mean, whose variance is σ²/B: the standard "
        "deviation is η√(σ²/B), half of the one-example step's":
        abs(measured / (lr * var ** 0.5) - 0.5) < 1e-9}
print(f"step standard deviation {measured:.6f}")""",
        items=(18, 71),
    ),
)

REGULARIZATION = (
    Exercise(
        "Fit y = wx to the points (1, 2) and (2, 4) by minimising `Σ(y - wx)² + λw²` with "
        "λ = 5. What is w?",
        "Setting the derivative to zero gives `w = Σxy/(Σx² + λ)`, which is 1 here; without "
        "the penalty the fit is `Σxy/Σx²`, 2, the misconception that a penalty does not move "
        "the minimum. The code trains w with descentlab's SGD, the penalty as its coupled "
        "weight decay (`2λ`: the gradient of λw²).",
        """\
import torch
from descentlab import optim

xs, ys, lam = (1.0, 2.0), (2.0, 4.0), 5.0
sxy = sum(x * y for x, y in zip(xs, ys))
sxx = sum(x * x for x in xs)
answer = sxy / (sxx + lam)
x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
opt = optim.SGD([w], lr=0.02, weight_decay=2 * lam)
for _ in range(300):
    opt.zero_grad()
    ((y - w * x) ** 2).sum().backward()
    opt.step()
measured = float(w.detach())
tol = 1e-9
misconception = sxy / sxx                    # "the penalty leaves the minimum"
at = torch.tensor([answer], dtype=torch.float64, requires_grad=True)
(((y - at * x) ** 2).sum() + lam * at ** 2).sum().backward()    # the loss's slope at the formula
said = {"Setting the derivative to zero gives w = Σxy/(Σx² + λ)": abs(float(at.grad)) < 1e-9}
print(f"w = {measured:.6f}")""",
        items=(62, 63),
    ),
    Exercise(
        "The same points (1, 2) and (2, 4), Gaussian noise of variance 1 and a Gaussian prior "
        "w ~ N(0, 0.5). What is the maximum a posteriori w?",
        "The negative log-posterior is `Σ(y - wx)²/(2σ²) + w²/(2τ²)`: the L2 penalty with "
        "`λ = σ²/τ²`, so `w = Σxy/(Σx² + σ²/τ²)`. A Gaussian prior is L2 (a Laplace prior "
        "would give L1); taking λ for τ² instead of `1/τ²` is the slip the page refuses. The "
        "code maximises torch's Normal log-densities with descentlab's SGD.",
        """\
import torch
from descentlab import optim

xs, ys, s2, t2 = (1.0, 2.0), (2.0, 4.0), 1.0, 0.5
sxy = sum(x * y for x, y in zip(xs, ys))
sxx = sum(x * x for x in xs)
answer = sxy / (sxx + s2 / t2)
x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
opt = optim.SGD([w], lr=0.1)
noise = torch.distributions.Normal(0.0, s2 ** 0.5)
prior = torch.distributions.Normal(0.0, t2 ** 0.5)
for _ in range(100):
    opt.zero_grad()
    (-(noise.log_prob(y - w * x).sum() + prior.log_prob(w).sum())).backward()
    opt.step()
measured = float(w.detach())
tol = 1e-4
misconception = (sxy / (sxx + t2), sxy / sxx)   # λ = τ²; no prior


def minus_log_posterior(v):                  # torch's densities, and the formula typed
    v = torch.tensor([v], dtype=torch.float64)
    torch_value = -(noise.log_prob(y - v * x).sum() + prior.log_prob(v).sum())
    typed = ((y - v * x) ** 2).sum() / (2 * s2) + v * v / (2 * t2)
    return float(torch_value), float(typed)


(a0, f0), (a1, f1) = minus_log_posterior(0.3), minus_log_posterior(1.7)
said = {"The negative log-posterior is Σ(y - wx)²/(2σ²) + w²/(2τ²): the L2 penalty with "
        "λ = σ²/τ², so w = Σxy/(Σx² + σ²/τ²)": abs((a1 - a0) - (f1 - f0)) < 1e-6,
        "taking λ for τ² instead of 1/τ² is the slip the page refuses":
        s2 / t2 == 1 / t2 and abs(misconception[0] - measured) > 100 * tol * measured}
print(f"MAP w = {measured:.6f}")""",
        items=(64, 83),
    ),
    Exercise(
        "One observation y = 4 of w under Gaussian noise of variance 1, and a Laplace prior "
        "on w with scale 0.5. What is the maximum a posteriori w?",
        "The negative log-posterior is `(y - w)²/2 + |w|/b`: an L1 penalty, whose minimum "
        "moves y towards zero by `1/b` (a soft threshold), `w = y - 1/b`. A Gaussian prior of "
        "the same variance, `2b²`, would shrink y by the factor `2b²/(2b² + 1)` instead "
        "(`ridge` in the code): the Laplace prior is L1, not L2. The code maximises torch's "
        "log-densities with descentlab's SGD.",
        """\
import torch
from descentlab import optim

y, b = 4.0, 0.5
answer = y - 1 / b
ridge = y * 2 * b * b / (2 * b * b + 1)
w = torch.ones(1, dtype=torch.float64, requires_grad=True)
opt = optim.SGD([w], lr=0.5)
noise = torch.distributions.Normal(0.0, 1.0)
prior = torch.distributions.Laplace(0.0, b)
for _ in range(100):
    opt.zero_grad()
    (-(noise.log_prob(y - w) + prior.log_prob(w)).sum()).backward()
    opt.step()
measured = float(w.detach())
tol = 1e-3
misconception = ridge                        # "a Laplace prior is an L2 penalty"
gauss = torch.distributions.Normal(0.0, float(prior.variance) ** 0.5)   # the same variance
v = torch.ones(1, dtype=torch.float64, requires_grad=True)
opt = optim.SGD([v], lr=0.5)
for _ in range(100):
    opt.zero_grad()
    (-(noise.log_prob(y - v) + gauss.log_prob(v)).sum()).backward()
    opt.step()
w0, w1 = torch.tensor([0.3], dtype=torch.float64), torch.tensor([1.7], dtype=torch.float64)
log_post = lambda v: noise.log_prob(y - v) + prior.log_prob(v)
drop = float(log_post(w0) - log_post(w1))
typed = ((y - 1.7) ** 2 / 2 + 1.7 / b) - ((y - 0.3) ** 2 / 2 + 0.3 / b)
said = {"A Gaussian prior of the same variance": abs(float(v.detach()) - ridge) < 1e-3,
        "The negative log-posterior is (y - w)²/2 + |w|/b": abs(drop - typed) < 1e-9,
        "the Laplace prior is L1, not L2": abs(measured - ridge) > 0.1}
print(f"MAP w = {measured:.6f}")""",
        items=(65, 66),
    ),
)

SCHEDULES = (
    Exercise(
        "descentlab's step schedule starts at lr 0.1 and halves it every 10 steps. What is the "
        "lr at step 25?",
        "A step decay is a staircase, `η₀ γ^⌊t/s⌋`: two halvings by step 25. Reading it as a "
        "smooth decay, `η₀ γ^(t/s)`, gives a value between the stairs (`smooth` in the code). "
        "The code asks descentlab's schedule.",
        """\
from descentlab import schedules

base, gamma, size, t = 0.1, 0.5, 10, 25
answer = base * gamma ** (t // size)
smooth = base * gamma ** (t / size)
measured = schedules.step(size, gamma=gamma, base=base)(t)
tol = 1e-12
misconception = smooth                       # "a step decay is smooth"
symbols = {"η₀": base, "γ": gamma, "t": t, "s": size}
print(f"lr at step {t}: {measured}")""",
        items=(15, 16),
    ),
    Exercise(
        "SGD with a constant lr 0.5 runs on f(w) = ½w² whose gradient carries independent "
        "noise of variance 1. What is the expected loss it settles at?",
        "Each step multiplies the error by `1 - η` and adds the noise times η, so its "
        "variance settles where "
        "`v = (1 - η)²v + η²σ²`: `v = ησ²/(2 - η)`, and the loss is half of it. A constant "
        "rate never converges: it stops at a floor proportional to η. The small-η reading "
        "`ησ²/2` of the variance (`approx` in the code) misses the floor by a third here. The "
        "code runs descentlab's SGD on many noisy chains at once.",
        """\
import torch
from descentlab import optim

lr, noise = 0.5, 1.0
answer = lr * noise / (2 - lr) / 2
approx = lr * noise / 2 / 2
gen = torch.Generator().manual_seed(0)
w = torch.zeros(4000, dtype=torch.float64, requires_grad=True)
opt = optim.SGD([w], lr=lr)
losses = []
for t in range(120):
    w.grad = w.detach() + noise ** 0.5 * torch.randn(4000, generator=gen, dtype=torch.float64)
    opt.step()
    if t >= 20:
        losses.append(float((w.detach() ** 2).mean()) / 2)
measured = sum(losses) / len(losses)
tol = 0.02
misconception = (approx, 0.0)                # the small-lr floor; "it converges"
floor = lambda eta: eta * noise / (2 - eta) / 2
said = {"so its variance settles where": abs(float(w.detach().mean())) < 0.1,
        "A constant rate never converges: it stops at a floor proportional to η":
        measured > answer / 2 and abs(floor(0.01) / floor(0.001) - 10) < 0.1,
        "The small-η reading": abs(floor(1e-4) / (1e-4 * noise / 2 / 2) - 1) < 1e-3,
        "misses the floor by a third": abs(answer / approx - 4 / 3) < 1e-9}
print(f"settled loss {measured:.4f}")""",
        items=(17, 18),
    ),
    Exercise(
        "Gradient descent with the schedule η_t = 0.5/t runs on f(w) = ½w² from w = 1, no "
        "noise. Where is w after 100 steps?",
        "Each step multiplies w by `1 - 0.5/t`, so `w₁₀₀ = Π (1 - 0.5/t)`, which falls like "
        "`1/√t`, not geometrically: a decaying rate trades speed for the noise floor. A "
        "reader who keeps the first step's factor for every step would answer `0.5¹⁰⁰`. The "
        "code runs descentlab's SGD with descentlab's Lambda schedule.",
        """\
import math
import torch
from descentlab import optim
from descentlab import schedules

a, T = 0.5, 100
answer = math.prod(1 - a / t for t in range(1, T + 1))
w = torch.ones(1, dtype=torch.float64, requires_grad=True)
opt = optim.SGD([w], lr=a)
sched = schedules.lambda_schedule(lambda k: 1 / (k + 1), base=a)
for k in range(T):
    for group in opt.param_groups:
        group["lr"] = sched(k)
    w.grad = w.detach().clone()
    opt.step()
measured = float(w.detach())
tol = 1e-9
misconception = (1 - a) ** T                 # "every step shrinks w by the first's factor"
print(f"w after {T} steps {measured:.6f}")""",
        items=(19, 20),
    ),
)

COMPARE = (
    Exercise(
        "Ten optimizers are compared on three seeds each. How many pairs of optimizers must a "
        "claim of one best optimizer separate?",
        "The best must be ahead of each of the others: 9 pairs, each separated in every seed. "
        "A table of ten means orders all `10·9/2` = 45 pairs but separates none of them by "
        "itself. The code counts the pairs that include the best.",
        """\
import itertools

names = [f"optimizer {k}" for k in range(10)]
measured = sum("optimizer 0" in pair for pair in itertools.combinations(names, 2))
answer = 10 - 1
tol = 1e-12
misconception = 10 * 9 / 2                   # "every pair must be ordered"
all_pairs = len(list(itertools.combinations(names, 2)))
among_others = len(list(itertools.combinations(names[1:], 2)))   # the pairs without the best
said = {"The best must be ahead of each of the others: 9 pairs": measured == len(names) - 1,
        "The code counts the pairs that include the best": measured == all_pairs - among_others}
print(f"pairs with the best: {measured} of {all_pairs}")""",
        items=(29, 131),
    ),
    Exercise(
        "A training set of 1149 examples is cut into batches of 64, the last one smaller. How "
        "many optimizer steps does one epoch take?",
        "`⌈1149/64⌉` = 18 steps: 17 full batches and one of 61 examples. Dividing and "
        "rounding down, 17, drops the last batch. The code counts the batches of "
        "descentlab's engine over one epoch.",
        """\
import math
from descentlab.engine import train

run = train({"problem": "digits", "model": "digits_mlp", "optimizer": "sgd",
             "hyper": {"lr": 0.01}, "batch_size": 64, "epochs": 1,
             "evaluate_test": False, "evaluate_train": False}, progress=False)
measured = run.steps
answer = math.ceil(1149 / 64)
tol = 1e-12
misconception = 1149 // 64                   # the last, smaller batch forgotten
last = 1149 - 64 * (1149 // 64)
print(f"steps in one epoch: {measured}")""",
        items=(48, 13),
    ),
    Exercise(
        "Adadelta (ρ = 0.9, ε = 1e-6, rate 1) sees the gradient g = 1 on its first step, from "
        "empty running averages. How large is that step?",
        "The squared gradient's average becomes `0.1·1² = 0.1` and the steps' average is still "
        "empty, so the step is `√(0 + ε)/√(0.1 + ε)·g` ≈ 0.00316: Adadelta starts tiny, because "
        "its numerator is the root-mean-square of the steps it has taken, none yet. It is not "
        "the rate 1 times g. The code runs descentlab's Adadelta.",
        """\
import math
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.Adadelta([w], lr=1.0, rho=0.9, eps=1e-6)
w.grad = torch.ones_like(w)
opt.step()
measured = -float(w)
answer = math.sqrt(1e-6) / math.sqrt(0.1 + 1e-6)
tol = 1e-9
misconception = 1.0                          # "the rate times the gradient"
print(f"first step {measured:.6g}")""",
        items=(78, 79),
    ),
    Exercise(
        "A loop spends a fixed 40 µs per step plus 2 µs per example. Per example, how many "
        "times cheaper is an epoch in batches of 64 than one example at a time?",
        "One at a time costs `40 + 2 = 42` µs per example; in batches of 64, `40/64 + 2` = "
        "2.625 µs. The ratio is 16. The batch does not make the per-example work cheaper, it "
        "shares the fixed cost, so the gain is not 64. The code times nothing: it evaluates "
        "the model of the cost for both batch sizes.",
        """\
fixed, per_example = 40.0, 2.0

def cost_per_example(batch):
    return fixed / batch + per_example

measured = cost_per_example(1) / cost_per_example(64)
answer = (40 + 2) / (40 / 64 + 2)
tol = 1e-12
misconception = 64.0                         # "a batch of 64 is 64 times cheaper"
one, batched = cost_per_example(1), cost_per_example(64)
print(f"{one} µs against {batched} µs per example")""",
        items=(12, 13),
    ),
)

CONVEXITY = (
    Exercise(
        "Gradient descent at η = 1/L on a quadratic with condition number κ = 50 starts along "
        "the flattest eigen-direction. After how many steps is the error at most 1e-6 of its "
        "start?",
        "Along the flattest direction each step multiplies the error by `1 - 1/κ = 0.98`, so "
        "the count is `⌈ln 1e-6 / ln 0.98⌉` = 684. The rate `(κ-1)/(κ+1)` belongs to the "
        "other step size, `2/(L + μ)`, and would give 346. The code runs descentlab's SGD.",
        """\
import math
import torch
from descentlab import optim

kappa = 50
lam = torch.tensor([1 / kappa, 1.0], dtype=torch.float64)
w = torch.nn.Parameter(torch.tensor([1.0, 0.0], dtype=torch.float64))
opt = optim.SGD([w], lr=1.0)
t = 0
while float(w.detach().norm()) > 1e-6:
    w.grad = lam * w.detach()
    opt.step()
    t += 1
measured = t
per_step = 1 - 1 / kappa                     # the flattest direction's factor at η = 1/L
answer = math.ceil(math.log(1e-6) / math.log(per_step))
tol = 1e-9
L, mu = 1.0, 1 / kappa
other_eta = 2 / (L + mu)                     # its factor is (κ-1)/(κ+1)
misconception = math.ceil(math.log(1e-6) / math.log(abs(1 - other_eta * mu)))
print(f"steps {measured}, formula {answer}, the other rate's count {misconception}")""",
        items=(97, 61),
    ),
    Exercise(
        "X is a standard normal variable. What is the Jensen gap E[exp X] - exp(E X)?",
        "`E exp X = e^{1/2}` (the normal's moment generating function at 1) and `exp(E X) = "
        "e^0 = 1`, so the gap is `e^{1/2} - 1` ≈ 0.6487. For a convex f the gap is never "
        "negative, and it is 0 only when X does not vary. The code averages a million draws; "
        "their standard error is about 0.002, so the tolerance is 1 %.",
        """\
import math
import numpy as np

x = np.random.default_rng(0).standard_normal(1_000_000)
measured = float(np.exp(x).mean()) - math.exp(float(x.mean()))
se = float(np.exp(x).std()) / 1000           # the mean's standard error
answer = math.exp(1 / 2) - 1
tol = 0.01
misconception = 0.0                          # "the mean of f is f of the mean"
print(f"Monte Carlo gap {measured:.4f}, closed form {answer:.4f}")""",
        items=(46,),
    ),
    Exercise(
        "f(x, y) = x² + 3xy + y² has positive curvature along both axes. What is the smallest "
        "eigenvalue of its Hessian?",
        "The Hessian is `[[2, 3], [3, 2]]`, with eigenvalues `2 ± 3`: 5 and -1. A negative "
        "eigenvalue means f is not convex: along `(1, -1)` it curves down, and (0, 0) is a "
        "saddle. The diagonal, 2, does not decide. The code asks autograd for the Hessian.",
        """\
import torch

f = lambda v: v[0] ** 2 + 3 * v[0] * v[1] + v[1] ** 2
hessian = torch.autograd.functional.hessian(f, torch.zeros(2, dtype=torch.float64))
measured = float(torch.linalg.eigvalsh(hessian)[0])
largest = float(torch.linalg.eigvalsh(hessian)[1])
answer = 2.0 - 3.0
tol = 1e-12
misconception = 2.0                          # "positive diagonal, positive curvature"
d = torch.tensor([1.0, -1.0], dtype=torch.float64)
said = {"A negative eigenvalue means f is not convex: along (1, -1) it curves down":
        float(d @ hessian @ d) < 0 and measured < 0 < largest,
        "The diagonal, 2, does not decide": bool((hessian.diagonal() > 0).all()) and measured < 0}
print(f"eigenvalues {torch.linalg.eigvalsh(hessian).tolist()}")""",
        items=(9, 97),
    ),
    Exercise(
        "Gradient descent on ½(x² + 10y²) runs at its best fixed rate η = 2/(L + μ). By what "
        "factor does the error shrink per step?",
        "With L = 10 and μ = 1, η = 2/11 and both directions contract by `|1 - ηλ| = 9/11` ≈ "
        "0.8182: the rate `(κ-1)/(κ+1)`. The bound for η = 1/L, `1 - 1/κ = 0.9`, is slower. "
        "The code runs descentlab's SGD from (1, 1) and measures the ratio of successive "
        "errors.",
        """\
import torch
from descentlab import optim

lam = torch.tensor([1.0, 10.0], dtype=torch.float64)
w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
opt = optim.SGD([w], lr=2 / 11)
errors = []
for _ in range(20):
    w.grad = lam * w.detach()
    opt.step()
    errors.append(float(w.detach().norm()))
measured = errors[-1] / errors[-2]
kappa = 10
top, bottom = kappa - 1, kappa + 1
answer = top / bottom
tol = 1e-9
misconception = 1 - 1 / kappa                # the rate at η = 1/L
said = {"1 - 1/κ = 0.9, is slower": misconception > measured}
print(f"ratio of successive errors {measured:.6f}")""",
        items=(97, 61),
    ),
)

METHODOLOGY = (
    Exercise(
        "Least squares with p = 4 parameters fits n = 30 points whose noise has variance "
        "σ² = 0.09, and the model contains the truth. What is the expected training error?",
        "The fit uses up p of the n directions of the noise: the residuals keep `n - p` of "
        "them, so the training error is `σ²(1 - p/n)` = 0.078 on average, below σ² = 0.09, the "
        "error of the truth itself. A training error is optimistic even for a correct model. "
        "The code fits 20,000 noisy samples of a cubic and averages the training error.",
        """\
import numpy as np

rng = np.random.default_rng(0)
x = np.linspace(-1, 1, 30)
design = np.vander(x, 4)                     # a cubic: p = 4 parameters
errors = []
for _ in range(20000):
    y = design @ np.array([0.5, -1.0, 0.3, 2.0]) + 0.3 * rng.standard_normal(30)
    w = np.linalg.lstsq(design, y, rcond=None)[0]
    errors.append(np.mean((design @ w - y) ** 2))
measured = float(np.mean(errors))
answer = 0.09 * (1 - 4 / 30)
tol = 0.01
misconception = 0.09                         # "a correct model's training error is σ²"
said = {"below σ² = 0.09, the error of the truth itself": measured < 0.09,
        "A training error is optimistic even for a correct model": measured < 0.09}
print(f"mean training error {measured:.5f}")""",
        items=(62, 65),
    ),
    Exercise(
        "5-fold cross-validation on n = 30 examples: on how many examples is each of its "
        "models fitted?",
        "Each fold holds out `30/5 = 6` examples and fits on the other 24. Fitting on all 30 "
        "would score each model on data it saw; the final model, refitted on all 30 after the "
        "choice, is the only one that does. The code asks descentlab's fold_indices.",
        """\
import numpy as np
from descentlab.problems.data import fold_indices

folds = fold_indices(np.zeros(30), 5, seed=0, stratify=False)
measured = float(np.mean([len(train) for train, _ in folds]))
held_out = 30 / 5
answer = 30 - held_out
tol = 1e-12
misconception = 30                           # "every model sees all the data"
said = {"Fitting on all 30 would score each model on data it saw": measured < 30
        and all(not set(train.tolist()) & set(held.tolist()) for train, held in folds)}
print(f"training examples per fold: {measured}")""",
        items=(64,),
    ),
    Exercise(
        "A constant (degree 0) is fitted by least squares to n = 20 targets with noise of "
        "variance σ² = 0.09. What is the variance of the fitted constant over training sets?",
        "The fit is the targets' mean, whose variance is `σ²/n` = 0.0045: averaging 20 "
        "noises divides their variance by 20. The noise's own σ² is what a fresh target adds "
        "on top, not the fit's variance. The code refits 20,000 training sets.",
        """\
import numpy as np

rng = np.random.default_rng(0)
fits = [np.mean(1.0 + 0.3 * rng.standard_normal(20)) for _ in range(20000)]
measured = float(np.var(fits))
answer = 0.09 / 20
tol = 0.03
misconception = 0.09                         # "the fit is as noisy as one target"
fresh = float(np.mean((np.array(fits) - 1.0 - 0.3 * rng.standard_normal(20000)) ** 2))
said = {"is what a fresh target adds on top, not the fit's variance":
        abs(fresh - 0.09 - measured) < 0.005 and measured < 0.09 / 10}
print(f"variance of the fitted constant {measured:.6f}")""",
        items=(65, 66),
    ),
    Exercise(
        "A bootstrap resample draws n = 100 times with replacement from 100 examples. What "
        "fraction of the distinct examples does it hold, on average?",
        "An example is missed by all 100 draws with probability `(1 - 1/100)¹⁰⁰`, so the "
        "resample holds `1 - (1 - 1/100)¹⁰⁰` of them, about 0.634: not all of them, and the "
        "out-of-bag rest tests a bagged model for free. The code averages descentlab's "
        "bagging draws.",
        """\
import numpy as np
from descentlab.book.experiments import ensembles

draws = ensembles.bagging(lambda idx, seed: len(np.unique(idx.numpy())) / 100, 100, 4000,
                          seed=0)
measured = float(np.mean(draws))
answer = 1 - (1 - 1 / 100) ** 100
tol = 0.005
misconception = 1.0                          # "a resample holds every example"
print(f"distinct fraction {measured:.4f}")""",
        items=(67, 68),
    ),
)

DESCENT = (
    Exercise(
        "Full-batch gradient descent on a quadratic whose Hessian has eigenvalues 1 and 0.01: "
        "what constant rate η makes the slowest direction contract fastest?",
        "Each direction's error is multiplied by `1 - ηλ` a step; the slowest of the two is "
        "`max(|1 - η|, |1 - 0.01η|)`, smallest where the two are equal: `η = 2/(1 + 0.01)`. "
        "The rate `2/λmax` = 2 that keeps the stiff direction just stable leaves it at a factor "
        "of 1, never converging. The code measures each direction's factor with one step of "
        "descentlab's SGD and minimises the larger.",
        """\
import scipy.optimize
import torch
from descentlab import optim

def factor(lr, lam):                     # one step of descentlab's SGD on f = lam w²/2
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    w.grad = lam * w.detach()
    optim.SGD([w], lr=lr).step()
    return abs(float(w))

worst = lambda lr: max(factor(lr, 1.0), factor(lr, 0.01))
measured = scipy.optimize.minimize_scalar(worst, bounds=(0.1, 2.5), method="bounded",
                                          options={"xatol": 1e-10}).x
answer = 2 / (1 + 0.01)
tol = 1e-6
misconception = 2 / 1.0                 # "as large as the stiff direction allows"
symbols = {"η": measured}
said = {"with one step of descentlab's SGD and minimises the larger":
        worst(measured) < worst(1.0),          # η = 1 minimises the smaller factor
        "Each direction's error is multiplied by 1 - ηλ a step":
        all(abs(factor(0.3, lam) - (1 - 0.3 * lam)) < 1e-12 for lam in (1.0, 0.01)),
        "smallest where the two are equal":
        abs(factor(measured, 1.0) - factor(measured, 0.01)) < 1e-6,
        "leaves it at a factor of 1, never converging": abs(factor(2.0, 1.0) - 1) < 1e-12}
print(f"best rate {measured:.6f}")""",
        items=(12, 72),
    ),
    Exercise(
        "SGD draws N = 256 single examples with replacement, one per step, for N steps. What "
        "fraction of the examples does it never use in that 'epoch'?",
        "Each draw misses a given example with probability `1 - 1/N`, all N draws with "
        "`(1 - 1/N)ᴺ`, close to `1/e`. A shuffled epoch uses every example once: 0 missed, "
        "the misconception. The code draws the indices with torch and counts.",
        """\
import torch

n = 256
g = torch.Generator().manual_seed(0)
draws = torch.randint(0, n, (20000, n), generator=g)
used = torch.zeros(20000, n).scatter_(1, draws, 1.0)
measured = float(1 - used.mean())
miss = 1 - 1 / n                         # one draw misses a given example
answer = miss ** n
symbols = {"N": n}
tol = 0.01
misconception = 0.0                      # "an epoch uses every example"
print(f"never used: {measured:.4f}")""",
        items=(48,),
    ),
    Exercise(
        "A batch of B = 16 is drawn without replacement from N = 256 examples whose gradients "
        "have variance 1. What is the variance of the batch's mean gradient?",
        "Without replacement the examples of a batch are negatively correlated: the variance "
        "is `(1/B)(N - B)/(N - 1)`, the finite-population correction. `1/B` = 0.0625 holds "
        "for draws with replacement only. The code draws the batches as descentlab's epoch "
        "does, from a random permutation, and measures.",
        """\
import torch

n, b = 256, 16
g = torch.Generator().manual_seed(0)
values = torch.randn(n, dtype=torch.float64, generator=g)
values = (values - values.mean()) / values.std(correction=0)    # variance exactly 1
batches = torch.rand(50000, n, generator=g).argsort(1)[:, :b]
measured = float(values[batches].mean(1).var())
answer = (1 / b) * (n - b) / (n - 1)
tol = 0.02
misconception = 1 / b                    # "as with replacement"
said = {"Without replacement the examples of a batch are negatively correlated: the "
        "variance is": measured < 1 / b}
print(f"variance of a batch mean: {measured:.5f}")""",
        items=(14,),
    ),
    Exercise(
        "Training on N = 256 examples with batches of B = 16: how many steps does SGD take in "
        "4 epochs?",
        "An epoch is N examples, N/B steps of B each: `4·256/16 = 64`. Counting epochs as "
        "steps (4) forgets that the mini-batch takes many steps per pass over the data, which "
        "is where its advantage over the full batch comes from. The code counts the steps of a "
        "torch DataLoader over 4 epochs.",
        """\
import torch

data = torch.utils.data.TensorDataset(torch.zeros(256, 1))
loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
measured = sum(1 for _ in range(4) for _ in loader)
answer = 4 * 256 // 16
tol = 1e-12
misconception = 4                        # "one step per epoch"
print(f"steps: {measured}")""",
        items=(48, 70),
    ),
)

LIKELIHOOD = (
    Exercise(
        "A Gaussian likelihood with σ = 1 meets the errors 2 and 10. What is its negative "
        "log-likelihood per example, leaving out the constant ½ ln 2π?",
        "`-ln p(e) = e²/(2σ²) + ½ ln 2πσ²`: the mean of `e²/2` is `(4 + 100)/4 = 26`, half the "
        "mean squared error 52. The factor ½ does not move the argmax, which is why the MSE is "
        "the Gaussian's loss, but the likelihood is not the MSE. The code asks torch's "
        "GaussianNLLLoss.",
        """\
import torch

errors = torch.tensor([2.0, 10.0], dtype=torch.float64)
loss = torch.nn.GaussianNLLLoss(full=False)
zeros, ones = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
measured = float(loss(errors, zeros, ones))
squares = (2 ** 2, 10 ** 2)                  # 4 and 100
answer = sum(squares) / 2 / 2
tol = 1e-12
misconception = (2 ** 2 + 10 ** 2) / 2       # "the likelihood is the MSE"
print(f"Gaussian NLL per example {measured}")""",
        items=(7, 117),
    ),
    Exercise(
        "A Laplace likelihood with scale 1 meets the errors 2 and 10. What is its negative "
        "log-likelihood per example, leaving out the constant ln 2?",
        "`-ln p(e) = |e| + ln 2`: the mean absolute error, `(2 + 10)/2 = 6`. The large error "
        "counts five times the small one, not 25 times as under the Gaussian, whose value "
        "would be 26. The code asks torch's Laplace distribution.",
        """\
import math
import torch

errors = torch.tensor([2.0, 10.0], dtype=torch.float64)
laplace = torch.distributions.Laplace(torch.tensor(0.0, dtype=torch.float64), 1.0)
measured = float(-laplace.log_prob(errors).mean()) - math.log(2)
answer = (2 + 10) / 2
tol = 1e-12
misconception = (2 ** 2 + 10 ** 2) / 4       # "every likelihood gives the squared error"
squared_ratio = (10 / 2) ** 2                # the Gaussian's weight of the large error
per_error = -laplace.log_prob(errors) - math.log(2)
said = {"The large error counts five times the small one":
        abs(float(per_error[1] / per_error[0]) - 5) < 1e-12,
        "The code asks torch's Laplace distribution":
        isinstance(laplace, torch.distributions.Laplace)}
print(f"Laplace NLL per example {measured}")""",
        items=(6, 116),
    ),
    Exercise(
        "torch's CrossEntropyLoss gets the logits (2, 0, 0) and the target class 0. What loss "
        "does it return?",
        "It applies the softmax itself: `-ln(e²/(e² + 2)) = ln(1 + 2e⁻²)` ≈ 0.2395. Reading the "
        "logits as probabilities (2/2 = 1 for the target) would give 0: the logits are not "
        "probabilities. The code asks torch.",
        """\
import math
import torch

logits = torch.tensor([[2.0, 0.0, 0.0]], dtype=torch.float64)
measured = float(torch.nn.CrossEntropyLoss()(logits, torch.tensor([0])))
answer = math.log(1 + 2 * math.exp(-2))
tol = 1e-12
misconception = -math.log(2 / 2)             # "the logits are the probabilities"
print(f"cross-entropy {measured:.6f}")""",
        items=(119, 120),
    ),
    Exercise(
        "P = (0.5, 0.5) and Q = (0.9, 0.1). What is D_KL(P‖Q) in nats?",
        "`Σ p ln(p/q) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1)` ≈ 0.511. The other direction, "
        "D_KL(Q‖P), is about 0.368: KL is not symmetric, and which one a fit minimises decides "
        "whether it covers P's modes or picks one. The code asks torch's kl_divergence.",
        """\
import math
import torch

p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
dist = torch.distributions
measured = float(dist.kl_divergence(dist.Categorical(probs=p), dist.Categorical(probs=q)))
answer = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
tol = 1e-6
misconception = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)   # D_KL(Q‖P)
print(f"KL(P||Q) {measured:.6f}")""",
        items=(121, 122),
    ),
)

NEWTON = (
    Exercise(
        "Newton's method minimises f(x) = e^x - 2x from x = 1. Where is it after one step?",
        "`f'(x) = e^x - 2` and `f''(x) = e^x`, so the step is `x - (e^x - 2)/e^x = 2/e` ≈ "
        "0.7358, already within 0.043 of the minimum ln 2. Gradient descent at rate 1 would "
        "move by the slope alone, to `1 - (e - 2)` ≈ 0.2817, past the minimum. The code asks "
        "autograd for both derivatives.",
        """\
import math
import torch

x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
(g,) = torch.autograd.grad(torch.exp(x) - 2 * x, x, create_graph=True)
(h,) = torch.autograd.grad(g, x)
measured = float(x - g / h)
answer = 2 / math.e
tol = 1e-12
misconception = 1 - (math.e - 2)             # a gradient step at rate 1
distance = abs(answer - math.log(2))
print(f"after one Newton step x = {measured:.6f}")""",
        items=(8, 9),
    ),
    Exercise(
        "Newton's method minimises the convex f(x) = √(1 + x²) from x = 1.5. Where is it after "
        "two steps?",
        "Newton's step on this f is `x ← -x³`, so two steps give `1.5⁹` ≈ 38.44: the iterates "
        "diverge although f is convex and its minimum is at 0. Convexity does not make pure "
        "Newton converge; a line search does. The code runs Newton with autograd's "
        "derivatives.",
        """\
import torch

f = lambda x: torch.sqrt(1 + x * x)


def newton(x, steps, search=False):          # search: halve the step until f falls
    x = torch.tensor(x, dtype=torch.float64)
    for _ in range(steps):
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(x), x, create_graph=True)
        (h,) = torch.autograd.grad(g, x)
        step, x = float(-g / h), x.detach()
        while search and f(x + step) >= f(x) and step * step > 1e-30:
            step /= 2
        x = x + step
    return float(x)


measured = newton(1.5, 2)
answer = 1.5 ** 9
tol = 1e-9
misconception = 0.0                          # "Newton converges on a convex function"
said = {"Convexity does not make pure Newton converge": abs(newton(1.5, 3)) > abs(measured) > 1.5,
        "a line search does": abs(newton(1.5, 8, search=True)) < 1e-9}
print(f"after two Newton steps x = {measured:.4f}")""",
        items=(8, 46),
    ),
    Exercise(
        "Backtracking line search (Armijo, c = 1e-4) on f(w) = 50w² from w = 1 tries the step "
        "t = 1 along the negative gradient and halves it until the condition holds. Which t "
        "does it accept?",
        "`f(1 - 100t) ≤ 50 - c·t·100²` fails for t = 1/32 (the iterate overshoots to -2.125) "
        "and holds for t = 1/64 = 0.015625. It is neither 1/L = 0.01 nor the stability limit "
        "2/L = 0.02: the search knows nothing of L, it tries halvings until the loss falls "
        "enough. The code runs the search.",
        """\
f = lambda w: 50 * w * w
w, g, c, t = 1.0, 100.0, 1e-4, 1.0
halvings = 0
while f(w - t * g) > f(w) - c * t * g * g:
    t /= 2
    halvings += 1
measured = t
answer = 1 / 64
tol = 1e-12
misconception = (1 / 100, 2 / 100)           # 1/L and 2/L
one_over_l, two_over_l = 1 / 100, 2 / 100
overshoot = 100 / 32 - 1                     # 1 - 100 t at t = 1/32, its size
said = {"it tries halvings until the loss falls enough":
        f(w - measured * g) < f(w) <= f(w - 2 * measured * g),
        "The code runs the search": halvings > 1 and measured == 2.0 ** -halvings}
print(f"accepted step {measured}")""",
        items=(15, 97),
    ),
    Exercise(
        "Newton's method on f(x) = e^x - 2x converges to ln 2 with e_{t+1} ≈ C e_t². What is C?",
        "Expanding f' around the minimum gives `e_{t+1} ≈ f'''/(2f'') · e_t²`, and here f''' = "
        "f'' = e^x, so C = 1/2 = 0.5. The error does not simply square (C = 1): the constant "
        "counts, though the doubling of the digits does not depend on it. The code measures "
        "e₄/e₃² in 60-digit arithmetic.",
        """\
import mpmath

mpmath.mp.dps = 60
x, errors = mpmath.mpf(1), []
for _ in range(5):
    errors.append(abs(x - mpmath.log(2)))
    x = x - (mpmath.exp(x) - 2) / mpmath.exp(x)
measured = float(errors[4] / errors[3] ** 2)
answer = 0.5
tol = 1e-3
misconception = 1.0                          # "the error squares"
f = lambda x: mpmath.exp(x) - 2 * x
expansion = mpmath.diff(f, mpmath.log(2), 3) / (2 * mpmath.diff(f, mpmath.log(2), 2))
said = {"Expanding f' around the minimum gives e_{t+1} ≈ f'''/(2f'') · e_t²":
        abs(float(expansion) - measured) < tol}
print(f"e4 / e3^2 = {measured:.6f}")""",
        items=(9,),
    ),
)

CONVOLUTION = (
    Exercise(
        "A 5 × 5 convolution with stride 2 and padding 1 reads a 32 × 32 image. How many "
        "positions wide is its output?",
        "The kernel fits `⌊(32 + 2·1 - 5)/2⌋ + 1 = 15` times: padding adds 2, the kernel takes its "
        "width less one away, and the stride counts every second start. Halving the input (16) "
        "forgets the kernel's own width. The code asks torch's Conv2d on the meta device.",
        """\
import torch

conv = torch.nn.Conv2d(1, 1, kernel_size=5, stride=2, padding=1, device="meta")
measured = conv(torch.zeros(1, 1, 32, 32, device="meta")).shape[-1]
answer = (32 + 2 * 1 - 5) // 2 + 1
tol = 1e-12
misconception = 32 // 2                  # "stride 2 halves the image"
plain = torch.nn.Conv2d(1, 1, kernel_size=5, device="meta")     # no padding, stride 1
said = {"the kernel takes its width less one away":
        plain(torch.zeros(1, 1, 32, 32, device="meta")).shape[-1] == 32 - (5 - 1)}
print(f"output side {measured}")""",
        items=(94,),
    ),
    Exercise(
        "A 3 × 3 convolution maps 64 channels to 128, with biases. How many parameters does it "
        "have?",
        "Each of the 128 output channels has a 3 × 3 kernel over each of the 64 input channels "
        "and a bias: `128·(64·9 + 1) = 73,856`, whatever the image's size. One 3 × 3 kernel "
        "per output channel, shared across the input channels, would give 1,280: the kernel "
        "tensor has the input channels as a dimension. The code counts torch's Conv2d's.",
        """\
import torch

conv = torch.nn.Conv2d(64, 128, kernel_size=3, device="meta")
measured = sum(p.numel() for p in conv.parameters())
answer = 128 * (64 * 9 + 1)
tol = 1e-12
misconception = 128 * (9 + 1)            # "one kernel per output channel"
said = {"has a 3 × 3 kernel over each of the 64 input channels and a bias":
        tuple(conv.weight.shape) == (128, 64, 3, 3) and tuple(conv.bias.shape) == (128,)}
print(f"{measured} parameters")""",
        items=(92,),
    ),
    Exercise(
        "Three 3 × 3 convolutions with stride 1 are stacked. How many input positions wide is "
        "the region one output of the last depends on?",
        "Each layer widens the region by the kernel's width less one: `1 + 3·(3 - 1) = 7`. "
        "Not 9: stacking adds the widths, it does not multiply them. The code back-propagates "
        "from one output of three torch convolutions and counts the inputs with a gradient.",
        """\
import torch

torch.manual_seed(0)
net = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, 3, bias=False) for _ in range(3)])
x = torch.randn(1, 1, 21, 21, requires_grad=True)
out = net(x)
out[0, 0, 7, 7].backward()
measured = int((x.grad[0, 0].abs().sum(0) > 0).sum())
answer = 1 + 3 * (3 - 1)
tol = 1e-12
misconception = 3 * 3                    # "the widths multiply"
x.grad = None
net[:2](x)[0, 0, 7, 7].backward()
two = int((x.grad[0, 0].abs().sum(0) > 0).sum())
said = {"Each layer widens the region by the kernel's width less one": measured - two == 3 - 1}
print(f"receptive field {measured} wide")""",
        items=(92, 93),
    ),
    Exercise(
        "A 1 × 1 convolution reduces 256 channels to 64 on a 28 × 28 map. How many "
        "multiply-adds does it take?",
        "Every output position of every output channel sums over the 256 input channels: "
        "`256·64·28·28 = 12,845,056`. A 3 × 3 kernel in its place takes nine times as many; "
        "the bottleneck's saving is that factor, and the channels it removes. The code counts "
        "the products of the layer's kernel with each input position, by torch's unfold.",
        """\
import torch

x = torch.zeros(1, 256, 28, 28)
columns = torch.nn.functional.unfold(x, kernel_size=1)          # (1, 256·1·1, 28·28)
measured = 64 * columns.shape[1] * columns.shape[2]             # one weight per product
answer = 256 * 64 * 28 * 28
tol = 1e-12
misconception = 256 * 64 * 28 * 28 * 9                         # "as a 3 × 3 one"
wide = torch.nn.functional.unfold(x, kernel_size=3, padding=1)  # (1, 256·3·3, 28·28)
said = {"A 3 × 3 kernel in its place takes nine times as many":
        64 * wide.shape[1] * wide.shape[2] == 9 * measured,
        "the bottleneck's saving is that factor, and the channels it removes":
        256 * wide.shape[1] * wide.shape[2] == 9 * (256 // 64) * measured}
print(f"{measured} multiply-adds")""",
        items=(96,),
    ),
)
