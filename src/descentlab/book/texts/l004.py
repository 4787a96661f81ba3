"""Teaching text of lecture 004, losses and optimizers in PyTorch (items 116-131)."""

from __future__ import annotations

from typing import Any

from descentlab.book.model import Play

__all__ = ["TEACH"]

_ERRORS_CELL = """\
import torch
from descentlab import losses

pred, target = torch.tensor([3.0, 11.0]), torch.tensor([1.0, 1.0])
print("L1 per example :", losses.get("l1", reduction="none")(pred, target).tolist())
print("MSE per example:", losses.get("mse", reduction="none")(pred, target).tolist())
err = torch.tensor([3.0, 11.0], requires_grad=True)
losses.get("mse", reduction="sum")(err, target).backward()
print("MSE gradient   :", err.grad.tolist(), "(2 x error: the large error pulls 5x harder)")"""

TEACH: dict[int, dict[str, Any]] = {
    116: dict(
        explain="""
The L1 loss charges each error its absolute size, `|ŷ - y|`: an error of 10 costs five times
an error of 2. Its gradient is `sign(ŷ - y)`, the same size for every error, so each example
pulls on the fit with the same force whatever its error; this is what makes the L1 fit
robust to outliers (its best constant is the median, item 5). The price: the gradient does
not shrink near the optimum, so a constant learning rate keeps stepping over it.""",
        code=_ERRORS_CELL,
    ),
    117: dict(
        explain="""
Squaring weighs large errors more: an error five times larger costs 25 times more. The
gradient `2(ŷ - y)` is proportional to the error, so one example with a large error can
dominate the fit (the mean is pulled towards outliers), while near the optimum the gradient
shrinks smoothly, which helps gradient descent settle. MSE is the Gaussian likelihood of
item 7.""",
        code=_ERRORS_CELL,
    ),
    118: dict(
        explain="""
The entropy `H(p) = -Σ p_i log p_i` is the expected surprise `-log p_i` of the outcome.
It is largest when every outcome is equally likely (a fair coin: `log 2` nats, one bit;
`n` equal outcomes: `log n`) and zero when one outcome is certain. A die that shows 1 on
five faces is mostly predictable, so its entropy is far below a fair die's `log 6`.""",
        code="""\
import torch

def entropy(p):
    p = torch.tensor(p, dtype=torch.float64)
    p = p[p > 0]
    return float(-(p * p.log()).sum())

print(f"fair coin           : {entropy([0.5, 0.5]):.4f} nats (log 2 = 0.6931)")
print(f"biased coin 0.9/0.1 : {entropy([0.9, 0.1]):.4f}")
print(f"fair die            : {entropy([1 / 6] * 6):.4f} (log 6 = 1.7918)")
print(f"die with five 1s    : {entropy([5 / 6, 1 / 6]):.4f}")""",
    ),
    119: dict(
        explain="""
The cross-entropy `H(p, q) = -Σ p_i log q_i` is the expected surprise when outcomes come from
`p` but are scored with `q`. It splits as `H(p, q) = H(p) + KL(p ‖ q)`: the entropy of `p`,
which the model cannot change, plus the divergence, which is zero only at `q = p` (Gibbs'
inequality). So minimizing the cross-entropy over `q` makes `q` follow `p`; for one-hot `p`
it is `-log q_true`, the classification loss.""",
        code="""\
import torch

p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
opt = torch.optim.SGD([logits], lr=3.0)
for _ in range(200):
    opt.zero_grad()
    loss = -(p * torch.log_softmax(logits, 0)).sum()          # H(p, q)
    loss.backward()
    opt.step()
q = torch.softmax(logits.detach(), 0)
print("q after minimizing H(p, q):", [round(v, 4) for v in q.tolist()], " p:", p.tolist())
print(f"H(p, q) = {loss.item():.6f}, H(p) = {float(-(p * p.log()).sum()):.6f}")""",
    ),
    120: dict(
        explain="""
`CrossEntropyLoss` takes raw scores (logits), not probabilities: it applies `log_softmax`
itself, which is more accurate than taking the log of a softmax (no underflow for very
negative scores). `weight` multiplies each example's loss by its class's weight and the
mean divides by the sum of those weights; targets equal to `ignore_index` contribute
nothing to the sum or to the normalization.""",
        code="""\
import torch
from descentlab import losses

torch.manual_seed(0)
x = torch.randn(5, 3, dtype=torch.float64)
y = torch.tensor([0, 2, 1, -100, 2])
w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
keep = y != -100
logp = torch.log_softmax(x, 1)[keep].gather(1, y[keep][:, None])[:, 0]
by_hand = float(-(w[y[keep]] * logp).sum() / w[y[keep]].sum())
ours = float(losses.get("cross_entropy", weight=w, ignore_index=-100)(x, y))
print(f"by hand {by_hand:.12f}   descentlab {ours:.12f}")""",
    ),
    121: dict(
        explain="""
`KL(P ‖ Q) = Σ P log(P/Q) = H(P, Q) - H(P)`. It is never negative: by Jensen's inequality
on the concave log, `-KL = Σ P log(Q/P) ≤ log Σ P·Q/P = log 1 = 0`, with equality only when
`Q/P` is constant, i.e. `Q = P`. torch's `KLDivLoss` expects the *log* of `Q` as its input
and `P` as its target, an order that is easy to get backwards.""",
        code="""\
import torch
from descentlab import losses

p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
q = torch.tensor([[0.3, 0.3, 0.4]], dtype=torch.float64)
kl = float(losses.get("kl_div_forward", input_is_log_probs=True)(q.log(), p))
h_pq, h_p = float(-(p * q.log()).sum()), float(-(p * p.log()).sum())
print(f"KL(P||Q) = {kl:.6f};  H(P,Q) - H(P) = {h_pq - h_p:.6f}")
print("KL(P||P) =", float(losses.get("kl_div_forward", input_is_log_probs=True)(p.log(), p)))""",
    ),
    122: dict(
        explain="""
Fit one Gaussian `Q` to a two-peaked `P`. Forward `KL(P ‖ Q)` averages `log(P/Q)` over `P`:
wherever `P` has mass and `Q` has none the cost is huge, so `Q` spreads to cover both peaks
(mode-covering, what maximum likelihood does). Reverse `KL(Q ‖ P)` averages over `Q`: `Q` is
charged for putting mass where `P` has none, so it hides inside one peak (mode-seeking, what
variational inference does). The two fits differ, so KL is not a distance.""",
        code="""\
import torch

x = torch.linspace(-8, 8, 1601, dtype=torch.float64)
dx = float(x[1] - x[0])
def normal(m, s):
    return torch.exp(-0.5 * ((x - m) / s) ** 2) / (s * (2 * torch.pi) ** 0.5)
p = 0.5 * normal(-2.0, 0.6) + 0.5 * normal(2.0, 0.6)             # two peaks
ms = torch.linspace(-3, 3, 61, dtype=torch.float64)[:, None, None]
ss = torch.linspace(0.3, 3, 28, dtype=torch.float64)[None, :, None]
q = normal(ms, ss) + 1e-300                                          # every Gaussian Q on a grid
forward = (p * (p / q).log()).sum(-1) * dx                           # KL(P || Q)
reverse = (q * (q / (p + 1e-300)).log()).sum(-1) * dx                # KL(Q || P)
for d, kl in (("forward", forward), ("reverse", reverse)):
    i = int(kl.argmin())
    m, s = float(ms.flatten()[i // 28]), float(ss.flatten()[i % 28])
    print(f"{d} KL: Q = N({m:+.2f}, {s:.2f}^2)")""",
    ),
    123: dict(
        explain="""
The triplet loss `max(d(a, p) - d(a, n) + margin, 0)` is zero once the negative is farther
from the anchor than the positive by at least the margin; until then its gradient pulls
the positive towards the anchor and pushes the negative away, by the same amount. It trains
an embedding in which distance means dissimilarity, without class labels, only "same" and
"different" pairs.""",
        code="""\
import torch
from descentlab import losses, optim

torch.manual_seed(0)
emb = torch.nn.Parameter(torch.randn(3, 8, 4))         # anchor, positive, negative
opt = optim.SGD([emb], lr=0.1)
d = torch.nn.functional.pairwise_distance
for step in range(101):
    a, p, n = emb
    loss = losses.triplet_margin(a, p, n, margin=1.0)
    if step % 50 == 0:
        print(f"step {step:3d}: loss {loss.item():.3f}, d(a,p) {d(a, p).mean().item():.2f}, "
              f"d(a,n) {d(a, n).mean().item():.2f}")
    opt.zero_grad(); loss.backward(); opt.step()""",
    ),
    124: dict(
        explain="""
The derivative is the limit of the difference quotient `(f(x+h) - f(x))/h` as `h → 0`.
Taylor's formula says the quotient is `f'(x) + ½ f''(x) h + ...`: its error is proportional
to `h`, so halving `h` halves it (the central quotient `(f(x+h) - f(x-h))/2h` errs by `h²`).
At a minimum the slope is zero: the difference quotient there shrinks with `h`.""",
        code="""\
import torch
from descentlab.problems import landscapes

f = landscapes.get("xsinx")
x = torch.tensor([[1.3]], dtype=torch.float64)
exact = float(landscapes.grad(f, x))
for h in (1e-1, 1e-2, 1e-3):
    quotient = float((f(x + h) - f(x)) / h)
    print(f"h = {h:.0e}: quotient {quotient:.6f}, error {abs(quotient - exact):.2e}")
print("autograd:", round(exact, 6))""",
    ),
    125: dict(
        explain="""
The same two failure modes as items 15-16, seen on a network's loss: the rate must stay
below `2/L` for the largest curvature `L`, and the time to converge grows like
`1/(η μ)` for the smallest curvature `μ`. The usable window is between, and it narrows as
the problem gets more ill-conditioned.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("quadratic", kappa=50)               # curvatures from 0.02 to 1
for lr in (0.01, 0.1, 1.0, 1.9, 2.1):
    run = trajectories.run(f, "sgd", [f.start], steps=300, lr=lr)
    state = "diverged" if bool(run.diverged[0]) else f"loss {float(run.losses[0, -1]):.2e}"
    print(f"lr {lr:4}: after 300 steps {state}")""",
        play=Play("quadratic", {"sgd": {"lr": 1.9}}, steps=150, kappa=50),
    ),
    126: dict(
        explain="""
`W ← W - η ∂L/∂W` for every weight tensor at once: autograd fills `W.grad` with the partial
derivatives, and the optimizer subtracts `η` times them. In PyTorch that is the three lines
`zero_grad()`, `loss.backward()`, `step()`; forgetting `zero_grad()` would add this step's
gradient to the last one's.""",
        code="""\
import torch
from descentlab import optim

torch.manual_seed(0)
W = torch.nn.Parameter(torch.randn(2, 2))
x, y = torch.randn(2), torch.randn(2)
opt = optim.SGD([W], lr=0.05)
opt.zero_grad()
loss = ((W @ x - y) ** 2).sum()
loss.backward()
expected = W.detach() - 0.05 * W.grad
opt.step()
print("max |W - (W_old - lr grad)| =", float((W.detach() - expected).abs().max()))""",
    ),
    127: dict(
        explain="""
The velocity `v ← αv - η ∂L/∂W` carries the previous steps forward: on a consistent slope
the step grows towards `η/(1-α)` times the gradient. In the lecture's comparison momentum
reaches the minimum in fewer steps, but at a large rate it swings past it first: the
velocity has to be reversed by the gradient before the iterate turns back (item 103 says
when the swing is damped).""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("bowl")
for name, hyper in (("sgd", None), ("momentum", {"momentum": 0.9})):
    run = trajectories.run(f, name, [f.start], steps=60, lr=0.02, hyper=hyper)
    below = (run.losses[0] < 1e-3).nonzero()
    first = int(below[0]) if len(below) else None
    overshoot = float((run.paths[0, :, 0] - 2).max())
    print(f"{name:8s}: loss < 1e-3 from step {first}, largest x - 2 = {overshoot:+.3f}")""",
        play=Play(
            "bowl", {"sgd": {"lr": 0.02}, "momentum": {"lr": 0.02, "momentum": 0.9}}, steps=60
        ),
    ),
    128: dict(
        explain="""
AdaGrad's `h` adds up every squared gradient, so a parameter that has moved a lot (large
gradients) has a large `h` and from then on a small rate `η/√h`. Parameters with rare or
small gradients keep a large rate. Without `ε` (the lecture writes `η g/√h`) the first step
is exactly `η·sign(g)` in every coordinate, and a coordinate whose gradient has always been
zero would divide 0 by 0, which is why implementations add `ε`.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
opt = optim.Adagrad([w], lr=0.1, eps=1e-10)
grads = [torch.tensor([4.0, 0.1, 0.0], dtype=torch.float64)] * 3 + \\
        [torch.tensor([4.0, 0.1, 1.0], dtype=torch.float64)]
for g in grads:
    before = w.detach().clone()
    w.grad = g
    opt.step()
print("last step per coordinate:", [round(v, 4) for v in (before - w.detach()).tolist()])
print("(the third coordinate's first gradient gets the full rate 0.1)")""",
    ),
    129: dict(
        explain="""
RMSProp changes AdaGrad's sum into a moving average, `G ← γG + (1-γ)g²`: a gradient `k`
steps old weighs `γ^k`, so after `≈ 1/(1-γ)` steps it is forgotten. The rate `η/√(G + ε)`
then follows the recent gradient size, up or down, instead of only falling.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.RMSprop([w], lr=0.01, alpha=0.9, eps=1e-8)
for t in range(1, 121):
    g = 10.0 if t <= 60 else 0.1
    before = w.item()
    w.grad = torch.full_like(w, g)
    opt.step()
    if t in (60, 61, 70, 120):
        print(f"t={t:3d}: gradient {g:5}, step {before - w.item():.5f}")""",
    ),
    130: dict(
        explain="""
Kingma and Ba's Algorithm 1 with defaults `α = 1e-3`, `β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8`.
Its last line is `θ -= α m̂/(√v̂ + ε)`; the paper also notes a cheaper ordering that folds
both corrections into the rate, `α_t = α √(1-β₂^t)/(1-β₁^t)`, and steps
`θ -= α_t m/(√v + ε̂)`. The two are equal up to where `ε` sits (`ε̂ = ε√(1-β₂^t)`), which
changes the result only when `√v` is as small as `ε`.""",
        code="""\
import math
import torch
from descentlab import optim

g = torch.tensor([0.2, -0.01], dtype=torch.float64)
w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
adam = optim.Adam([w], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
m = v = torch.zeros(2, dtype=torch.float64)
theta = torch.zeros(2, dtype=torch.float64)
for t in range(1, 11):
    m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
    lr_t = 1e-3 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)      # the folded ordering
    theta = theta - lr_t * m / (v.sqrt() + 1e-8 * math.sqrt(1 - 0.999 ** t))
    w.grad = g.clone()
    adam.step()
print("folded ordering :", [f"{x:.12f}" for x in theta.tolist()])
print("descentlab Adam :", [f"{x:.12f}" for x in w.detach().tolist()])""",
    ),
    131: dict(
        explain="""
Adam and RMSProp are good first choices because their per-coordinate scaling makes the
best learning rate depend less on the problem's scale: one rate works across many problems.
That does not make them best everywhere, and the gap to the best optimizer can be an order
of magnitude; the cheap insurance is to try a few optimizers, each at its own tuned rate
(what `descentlab compare` does with paired statistics).""",
        code="""\
from descentlab.problems import landscapes, trajectories

lrs = [1e-3, 1e-2, 1e-1, 1.0]
for land in ("rosenbrock", "beale"):
    f = landscapes.get(land)
    best = {}
    for name in ("sgd", "momentum", "rmsprop", "adam"):
        finals = []
        for lr in lrs:
            run = trajectories.run(f, name, [f.start], steps=300, lr=lr)
            if not bool(run.diverged[0]):
                finals.append(float(run.losses[0, -1]) - f.global_minimum.value)
        best[name] = min(finals) if finals else float("inf")
    print(land, {k: f"{v:.2e}" for k, v in best.items()})""",
        play=Play(
            "rosenbrock",
            {"sgd": {"lr": 0.001}, "rmsprop": {"lr": 0.01}, "adam": {"lr": 0.05}},
            steps=300,
        ),
    ),
}
