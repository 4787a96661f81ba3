"""The exercises of the in-depth chapters on momentum, adaptive rates, mini-batches,
regularization and schedules: each asks for a number derived on paper, measures it by running
descentlab, and states the misconception it refuses (the build fails one whose page would
accept it)."""

from __future__ import annotations

from descentlab.book.model import Exercise

__all__ = ["ADAPTIVE", "BATCH", "MOMENTUM", "REGULARIZATION", "SCHEDULES"]

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
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=lr, momentum=beta, nesterov=nesterov)
    for _ in range(2):
        w.grad = w.detach().clone()
        opt.step()
    return float(w.detach())


measured = two_steps(True)
hb1 = 1 - lr * g0
hb2 = hb1 - lr * (hb1 + beta * g0)           # the heavy ball: its gradient where it stands
tol = 1e-12
misconception = hb2                          # "Nesterov is momentum with another name"
print(f"Nesterov {measured:.6f}, heavy ball {two_steps(False):.6f}")""",
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
        "`σ²/B`. Keeping σ² (batching changes nothing) or dividing by `B²` are the two "
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
        covariance < 0 and abs(measured - answer) < 1e-12}
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
said = {"A Gaussian prior of the same variance": abs(float(v.detach()) - ridge) < 1e-3,
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
