"""Teaching text of lecture 003, momentum and adaptive learning rates (items 97-115)."""

from __future__ import annotations

from typing import Any

from descentlab.book.model import Play

__all__ = ["TEACH"]

TEACH: dict[int, dict[str, Any]] = {
    97: dict(
        explain="""
Gradient descent only sees the slope where it stands, and three landscapes defeat that view.
At a local minimum the gradient is zero, so the iterate stops whether or not a deeper valley
lies beyond the ridge. At a saddle point the gradient is zero too; started exactly on the
ridge the iterate never leaves, and started near it it crawls, because the gradient is
proportional to the tiny distance from the ridge.

Poor conditioning is the everyday problem. On `f(x, y) = ½(a x² + b y²)` with `a ≫ b`, a
learning rate small enough not to blow up across the steep `x` direction (it needs
`η < 2/a`) moves along the flat `y` direction by a factor `1 - η b` per step, i.e. it needs
about `a/b = κ` steps: the path zig-zags across the ravine and creeps along it.""",
        code="""\
from descentlab.problems import landscapes, trajectories

ravine = landscapes.get("ravine")
run = trajectories.run(ravine, "sgd", [ravine.start], steps=100, lr=0.18)
path = run.paths[0]
print("start", [round(v, 2) for v in path[0].tolist()])
for t in (1, 2, 3, 4, 50, 100):
    x, y = path[t].tolist()
    print(f"step {t:3d}: x = {x:7.3f} (along the floor)  y = {y:+.3f} (across)")""",
        play=Play("ravine", {"sgd": {"lr": 0.18}}, steps=100),
    ),
    98: dict(
        explain="""
A mini-batch gradient is the true gradient plus noise with zero mean. Momentum keeps a
running sum of gradients, `v ← αv + g`, which is an exponentially weighted average of the
last `≈ 1/(1-α)` of them (times that many). Averaging `n` independent noises divides their
variance by about `n`; the signal, which points the same way step after step, adds up.

Precisely: with independent noise of variance `σ²` the stationary variance of `v` is
`σ²/(1-α²)`, while its mean is `g/(1-α)`; the noise-to-signal ratio of the step direction is
therefore `√((1-α)/(1+α))` times that of a single gradient: `0.23` for `α = 0.9`.

What the average does not do is lower the noise floor. The step is the velocity times the
rate, and the velocity adds up about `1/(1-α)` gradients: at the same effective rate
`ρ/(1-α)` heavy ball hovers at the noise floor of plain SGD (the momentum chapter derives it
and measures it, and an exercise below asks for the ratio). Momentum speeds up badly
conditioned directions; against noise it takes a smaller rate or a larger batch.""",
        code="""\
import torch
from descentlab import optim

torch.manual_seed(0)
g_true = torch.tensor([1.0])
w = torch.nn.Parameter(torch.zeros(1))
opt = optim.Momentum([w], lr=1.0, momentum=0.9)   # v <- 0.9 v + g ; w <- w - v
steps = []
for _ in range(4000):
    before = w.detach().clone()
    w.grad = g_true + torch.randn(1)                  # noisy gradient, noise std 1
    opt.step()
    steps.append(float(before - w.detach()))
s = torch.tensor(steps[100:])
print(f"step mean {s.mean():.2f} (g/(1-a) = 10), step std {s.std():.2f}")
print(f"noise/signal: one gradient 1.00, momentum {float(s.std() / s.mean()):.3f}, "
      f"predicted {((1 - 0.9) / (1 + 0.9)) ** 0.5:.3f}")""",
    ),
    99: dict(
        explain="""
Equation (5.12) gives the iterate a velocity. `v` starts at 0 and collects the negative
gradients with a decay `α`: after `t` steps `v = -ρ Σ_k α^(t-k) ∇J(Θ_k)`. Where the
gradient keeps its sign the velocity grows towards `-ρ∇J/(1-α)`, a step `1/(1-α)` times
plain SGD's (10 times at `α = 0.9`); where it flips sign from step to step the terms cancel.
That is the whole mechanism: speed along consistent directions, damping across oscillating
ones.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([0.0]))
opt = optim.Momentum([w], lr=0.1, momentum=0.9, form="velocity")  # v = a v - rho g; w += v
for t in range(1, 31):
    before = w.item()
    w.grad = torch.tensor([-1.0])          # a constant slope: the loss falls to the right
    opt.step()
    if t in (1, 2, 3, 10, 30):
        print(f"step {t:2d}: velocity {w.item() - before:.4f}")
print("limit rho/(1 - a) =", 0.1 / (1 - 0.9))""",
    ),
    100: dict(
        explain="""
`α` is the fraction of the old velocity kept at each step. `α = 0` forgets it at once and
leaves `v = -ρ∇J`: plain SGD. As `α → 1` the velocity averages over `≈ 1/(1-α)` steps
(2, 10, 100 for 0.5, 0.9, 0.99), which smooths more but also reacts later when the slope
changes, and overshoots farther.

Raising `α` from 0.5 to 0.99 during training starts with a responsive optimizer while the
landscape changes fast and ends with a smooth one when progress is along a long gentle
direction. With a schedule on `momentum` the same optimizer does it.""",
        code="""\
import torch
from descentlab import optim

def path(alpha):
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = optim.Momentum([w], lr=0.1, momentum=alpha, form="velocity")
    out = []
    for _ in range(5):
        w.grad = 2 * w.detach()          # f(w) = w^2
        opt.step()
        out.append(round(w.item(), 4))
    return out

w = torch.nn.Parameter(torch.tensor([1.0]))
sgd = torch.optim.SGD([w], lr=0.1)
plain = []
for _ in range(5):
    w.grad = 2 * w.detach(); sgd.step(); plain.append(round(w.item(), 4))
print("momentum 0   ", path(0.0))
print("torch SGD    ", plain)
print("momentum 0.9 ", path(0.9))""",
    ),
    101: dict(
        explain="""
The two forms are one method in different units. cs231n keeps `v = ρv + ∇f` and steps
`x -= αv`; (5.12) keeps `u = βu - η∇f` and steps `x += u`. Put `u = -αv`: the recurrence
becomes `u = ρu - α∇f`, the same with `β = ρ`, `η = α`. The iterates agree exactly while the
rate is constant.

When the rate changes they do not: in the cs231n form a new `α` scales the whole
accumulated `v` at once (the old velocity is re-priced), while in (5.12) the old velocity
keeps the size it was built with and only new gradients use the new rate. Just after a
learning-rate drop the cs231n form (torch's SGD) slows immediately, the velocity form
coasts for `≈ 1/(1-β)` steps.""",
        code="""\
import torch
from descentlab import optim

def run(form, lrs):
    w = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt = optim.Momentum([w], lr=lrs[0], momentum=0.9, form=form)
    for lr in lrs:
        opt.param_groups[0]["lr"] = lr
        w.grad = 2 * w.detach()
        opt.step()
    return w.item()

same = [0.05] * 20
drop = [0.05] * 10 + [0.005] * 10
for label, lrs in (("constant rate", same), ("rate dropped ", drop)):
    torch_form, velocity_form = run("torch", lrs), run("velocity", lrs)
    print(f"{label}: torch form {torch_form:.6f}, velocity form {velocity_form:.6f}")""",
    ),
    102: dict(
        explain="""
Why momentum helps poor conditioning, on the quadratic `f = ½ Σ λ_i x_i²` with curvatures
from `μ` to `L` (`κ = L/μ`). Each coordinate is its own problem. Gradient descent multiplies
`x_i` by `1 - ηλ_i`; the best single rate `η = 2/(L+μ)` makes the worst factor
`(κ-1)/(κ+1) ≈ 1 - 2/κ`, so shrinking the error by `e` takes `≈ κ/2` steps.

With momentum (heavy ball) a coordinate follows `x_{t+1} = (1 + β - ηλ) x_t - β x_{t-1}`, a
linear recurrence whose factors are the roots of `z² - (1+β-ηλ) z + β = 0`. When the roots
are complex their product is `β`, so both have modulus exactly `√β`, whatever `λ` is. Choose
`η` and `β` so that every `λ` in `[μ, L]` gives complex roots: the discriminant
`(1+β-ηλ)² - 4β ≤ 0` at both ends gives `η = 4/(√L+√μ)²` and
`β = ((√κ-1)/(√κ+1))²`. Then every coordinate shrinks by `√β = (√κ-1)/(√κ+1) ≈ 1 - 2/√κ`
per step: `√κ/2` steps per factor `e` instead of `κ/2`. At `κ = 100` that is 5 against 50.

The same momentum escapes a saddle: near it the gradient along the way out is small but
consistent, and the velocity accumulates it.""",
        code="""\
import math
import torch
from descentlab.problems import landscapes, trajectories

kappa, L = 100.0, 1.0
mu = L / kappa
f = landscapes.get("quadratic", kappa=kappa)
gd_lr = 2 / (L + mu)
hb_lr = 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2
hb_beta = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
gd = trajectories.run(f, "sgd", [f.start], steps=200, lr=gd_lr)
hb = trajectories.run(f, "momentum", [f.start], steps=200, lr=hb_lr, hyper={"momentum": hb_beta})

def rate(run):  # the error's shrink factor per step over steps 100..200
    d = run.paths[0].norm(dim=-1)
    return float((d[200] / d[100]) ** (1 / 100))

sk = math.sqrt(kappa)
gd_theory, hb_theory = (kappa - 1) / (kappa + 1), (sk - 1) / (sk + 1)
print(f"gradient descent: {rate(gd):.4f} per step, theory (k-1)/(k+1) = {gd_theory:.4f}")
print(f"momentum        : {rate(hb):.4f} per step, theory (sk-1)/(sk+1) = {hb_theory:.4f}")""",
        play=Play(
            "quadratic",
            {"sgd": {"lr": 1.9802}, "momentum": {"lr": 3.3058, "momentum": 0.6694}},
            steps=100,
            kappa=100,
        ),
    ),
    103: dict(
        explain="""
"Momentum damps overshooting" holds for the right pair of settings, not for any. On the
ravine `f = 0.05 x² + 5 y²` the curvature across is `λ = 10`; SGD at lr 0.18 multiplies `y`
by `1 - 0.18·10 = -0.8` per step: it overshoots the floor and flips side every step. With
momentum a coordinate follows `y_{t+1} = (1 + β - ηλ) y_t - β y_{t-1}`, and when the roots
of `z² - (1+β-ηλ) z + β` are complex both have modulus `√β` (item 102). So momentum damps the
zig-zag only when `√β < 0.8`, i.e. `β < 0.64`: at `β = 0.3` the oscillation dies as
`0.55^t`, while at `β = 0.9` it dies as `0.95^t`, slower than SGD's, and the path bounces
harder across the ravine even as it races along the floor.

The cell shows the three at the same rate: the largest sideways excursion after step 10 and
how far along the floor each got. The lecture's figure is the damped case; items 24 and 127
show the bouncing one.""",
        code="""\
from descentlab.problems import landscapes, trajectories

ravine = landscapes.get("ravine")
print(ravine.plain)
for name, beta in [("sgd", None), ("momentum", 0.3), ("momentum", 0.9)]:
    hyper = None if beta is None else {"momentum": beta}
    run = trajectories.run(ravine, name, [ravine.start], steps=150, lr=0.18, hyper=hyper)
    x, y = run.paths[0, :, 0], run.paths[0, :, 1]
    print(f"{name:8s} beta {beta}: largest |y| after step 10 = {float(y[10:].abs().max()):.4f}, "
          f"x after 150 steps = {float(x[-1]):+.3f} (start -10, minimum 0)")""",
        play=Play(
            "ravine", {"sgd": {"lr": 0.18}, "momentum": {"lr": 0.18, "momentum": 0.3}}, steps=150
        ),
    ),
    104: dict(
        explain="""
Nesterov's change is where the gradient is taken. Momentum alone would carry the iterate to
`Θ̃ = Θ + αv` anyway; Nesterov looks there first and uses the gradient at that look-ahead
point. If the velocity is about to overshoot, the gradient at `Θ̃` already points back and
corrects the step before it is taken, not one step later. That correction is what extends
momentum's `1 - 1/√κ` per step from quadratics (item 102) to a guarantee for every smooth,
strongly convex function, where heavy-ball momentum can fail to converge.""",
        code="""\
import torch
from descentlab import optim

def final_error(make, steps=60):
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    a = torch.tensor([1.0, 0.02], dtype=torch.float64)   # f = 1/2 (w1^2 + 0.02 w2^2)
    opt = make([w])
    for _ in range(steps):
        w.grad = a * w.detach()
        opt.step()
    return float(w.detach().norm())

print("momentum:", f"{final_error(lambda p: optim.Momentum(p, lr=0.9, momentum=0.9)):.3e}")
print("nesterov:", f"{final_error(lambda p: optim.Nesterov(p, lr=0.9, momentum=0.9)):.3e}")""",
        play=Play(
            "ravine",
            {"momentum": {"lr": 0.02, "momentum": 0.9}, "nesterov": {"lr": 0.02, "momentum": 0.9}},
            steps=150,
        ),
    ),
    105: dict(
        explain="""
Nesterov as written needs the gradient at `Θ + αv`, a point where no parameter lives: an
autograd framework computes gradients at the parameters. The change of variables stores the
look-ahead point instead. Let `x̃ = x + ρv`. Then `v_new = ρv - η∇f(x̃)`, and
`x̃_new = x_new + ρ v_new = x + v_new + ρ v_new`, i.e.
`x̃ += -ρ v_old + (1 + ρ) v_new` (subtracting `x̃ = x + ρ v_old`). Everything now needs
`∇f(x̃)` only, at the stored parameters. The iterates are the same sequence shifted by
`ρv`, which vanishes as the velocity dies out, so both converge to the same point.""",
        code="""\
import torch
from descentlab import optim

a = torch.tensor([1.0, 0.1], dtype=torch.float64)
rho, eta = 0.9, 0.1

# the lecture's form: the gradient at the look-ahead x + rho v
x, v = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
for _ in range(20):
    v = rho * v - eta * a * (x + rho * v)
    x = x + v
lookahead = x + rho * v      # the point the change of variables stores

w = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
opt = optim.Nesterov([w], lr=eta, momentum=rho)
for _ in range(20):
    w.grad = a * w.detach()
    opt.step()
print("x + rho v (lecture):", [f"{t:.12f}" for t in lookahead.tolist()])
print("descentlab Nesterov:", [f"{t:.12f}" for t in w.detach().tolist()])""",
    ),
    106: dict(
        explain="""
On a one-dimensional quadratic `f = ½ λ w²` gradient descent gives `w ← (1 - ηλ) w`. The
factor `1 - ηλ` decides everything: for `0 < η < 1/λ` it is in `(0, 1)` and the iterate
slides monotonically; at `η = 1/λ` it lands in one step; for `1/λ < η < 2/λ` it is in
`(-1, 0)`: the iterate overshoots and oscillates, but shrinks; at `η = 2/λ` it bounces
forever; above, it diverges. Too small `η` makes the factor close to 1, so each step removes
only a fraction `ηλ` of the error.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")          # (x - 2)^2 + 2: curvature 2, so 2/lambda = 1
for lr in (0.01, 0.2, 0.5, 0.8, 1.0, 1.05):
    run = trajectories.run(f, "sgd", [f.start], steps=12, lr=lr)
    xs = [round(v, 3) for v in run.paths[0, :6, 0].tolist()]
    print(f"lr {lr:4}: factor {1 - 2 * lr:+.2f}  x = {xs} ...")""",
        play=Play("parabola", {"sgd": {"lr": 0.8}}, steps=12, mode="oned"),
    ),
    107: dict(
        explain="""
One learning rate for every parameter must suit the steepest direction (or the iterate
diverges along it), and is then too small for the flat ones. Adaptive methods divide each
coordinate's step by a running measure of that coordinate's gradient size, `√r_i`. A
coordinate with large gradients gets a proportionally smaller rate, one with small
gradients a larger one: in the limit each coordinate moves by about `ρ` per step, whatever
its scale. This is a diagonal rescaling of the problem, which fixes ill-conditioning that is
aligned with the axes (not a rotated ravine).""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
scales = torch.tensor([100.0, 0.01])             # gradients 10,000x apart
for name, opt in [("SGD    ", optim.SGD([w], lr=1e-3)), ("RMSprop", optim.RMSprop([w], lr=1e-3))]:
    with torch.no_grad():
        w.copy_(torch.tensor([1.0, 1.0]))
    w.grad = scales.clone()
    opt.step()
    print(name, "first step per coordinate:", [f"{float(d):.2e}" for d in (1 - w.detach())])""",
        play=Play("ravine", {"sgd": {"lr": 0.18}, "rmsprop": {"lr": 0.05}}, steps=100),
    ),
    108: dict(
        explain="""
AdaGrad keeps `r`, the sum of every squared gradient so far, per coordinate, and steps
`-ρ g/(ε + √r)`. If a coordinate's gradient has had size `G` for `t` steps, `√r ≈ G√t`,
so its step is `ρ/√t` in size: independent of `G` (the per-coordinate rescaling of item 107)
and decaying like `1/√t`, a built-in schedule. Coordinates that are rarely non-zero (rare
features) keep a small `r` and so a large step when they do appear.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(2))
opt = optim.Adagrad([w], lr=0.1, eps=0.0)
for t in range(1, 101):
    before = w.detach().clone()
    w.grad = torch.tensor([5.0, 0.05])     # a steep and a flat coordinate, constant gradients
    opt.step()
    if t in (1, 4, 25, 100):
        step = (before - w.detach()).tolist()
        print(f"t={t:3d}: steps {step[0]:.4f} {step[1]:.4f}  rho/sqrt(t) = {0.1 / t**0.5:.4f}")""",
    ),
    109: dict(
        explain="""
Because `r` only grows, AdaGrad's effective rate `ρ/√r` only falls, like `1/√t` for
gradients of constant size. On a convex problem that is a reasonable schedule; on a deep
network, where the landscape early in training says little about the landscape later, the
early large gradients keep the rate small long after they stopped mattering. RMSProp (item
110) replaces the sum by a moving average, which forgets.""",
        code="""\
import torch
from descentlab import optim

w1, w2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
ada, rms = optim.Adagrad([w1], lr=0.01, eps=1e-8), optim.RMSprop([w2], lr=0.01, alpha=0.9)
for t in range(1, 1001):
    g = 10.0 if t <= 100 else 0.1          # large gradients early, small ones later
    for w, opt in ((w1, ada), (w2, rms)):
        before = w.item()
        w.grad = torch.tensor([g])
        opt.step()
        if t == 1000:
            print(f"{type(opt).__name__:8s} step at t=1000: {before - w.item():.2e} (rate x g)")""",
    ),
    110: dict(
        explain="""
RMSProp keeps `r = αr + (1-α) g⊙g`: an exponential moving average with weights
`(1-α)α^k` on the gradient `k` steps ago, which sum to 1 (so `r` estimates the mean square
gradient) and fall to `1/e` after `1/(1-α)` steps. Dividing by `√r` normalizes each
coordinate by its recent gradient size, and old gradients are forgotten: the rate recovers
when the gradients shrink, unlike AdaGrad's.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1))
opt = optim.RMSprop([w], lr=0.01, alpha=0.9, eps=0.0)
for t in range(1, 61):
    w.grad = torch.tensor([3.0])
    opt.step()
r = opt.state[w]["square_avg"]
print(f"r after 60 steps of g = 3: {float(r):.4f} "
      f"(mean square 9, times 1 - 0.9^60 = {9 * (1 - 0.9 ** 60):.4f})")""",
    ),
    111: dict(
        explain="""
Adam keeps two moving averages, `v = α₁v + (1-α₁)g` and `r = α₂r + (1-α₂)g²`, both started
at 0. Unrolled, `v_t = (1-α₁) Σ_{k=1..t} α₁^(t-k) g_k`. If the gradients have a common mean
`E[g]`, then `E[v_t] = E[g] (1-α₁) Σ_{j=0..t-1} α₁^j = E[g] (1 - α₁^t)`: the geometric
series is cut off at `t` terms because there is no history before step 1, and the missing
weight `α₁^t` is exactly the zero start. Dividing by `1 - α₁^t` removes the bias:
`v̂ = v/(1 - α₁^t)` is an unbiased estimate at every step; the same for `r̂` with `α₂`.

The correction matters while `α^t` is not small: for `α₂ = 0.999` it takes about 1,000 steps
(`0.999^1000 = 0.37`), so early in training `r` without correction is far too small.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1))
opt = optim.Adam([w], lr=1e-3, betas=(0.9, 0.999))
for t in range(1, 6):
    w.grad = torch.tensor([2.0])          # the same gradient every step
    opt.step()
    s = opt.state[w]
    m, v = float(s["exp_avg"]), float(s["exp_avg_sq"])
    print(f"t={t}: m = {m:.4f}, m/(1-0.9^t) = {m / (1 - 0.9 ** t):.4f};  "
          f"v = {v:.5f}, v/(1-0.999^t) = {v / (1 - 0.999 ** t):.4f}")""",
    ),
    112: dict(
        explain="""
Without the correction Adam's first step is not too small but too large. At `t = 1`,
`v = (1-α₁) g` and `r = (1-α₂) g²`, so the uncorrected step is
`ρ (1-α₁)/√(1-α₂) · sign(g) = ρ · 0.1/0.0316 = 3.16 ρ` for the defaults, while the corrected
step is exactly `ρ` (ε aside). The ratio `(1-α₁^t)/√(1-α₂^t)` stays above 1 for hundreds of
steps: the second moment's bias (it averages over 1,000 steps) outweighs the first's (10
steps). With `α₂` closer to 1 it is worse, which is why the correction was introduced.""",
        code="""\
import torch
from descentlab import optim

for corrected in (True, False):
    w = torch.nn.Parameter(torch.zeros(1))
    opt = optim.Adam([w], lr=1e-3, bias_correction=corrected)
    w.grad = torch.tensor([0.5])
    opt.step()
    print(f"bias_correction={corrected!s:5}: first step {-w.item():.5f} (lr = 0.001)")
print(f"predicted ratio (1 - 0.9)/sqrt(1 - 0.999) = {0.1 / 0.001 ** 0.5:.3f}")""",
    ),
    113: dict(
        explain="""
The defaults encode time scales: `β₁ = 0.9` averages the direction over about 10 steps,
`β₂ = 0.999` the gradient's size over about 1,000, so the normalization changes slowly and
the step is about `lr` in size per coordinate. `lr = 1e-3` therefore means "move each weight
by about 0.001 per step", a sensible first guess for weights of order 0.1-1; 5e-4 is the
safer half. They are starting values: on the book's problems the best rate still differs by
an order of magnitude from task to task (item 131).""",
        code="""\
import inspect
from descentlab import optim

sig = inspect.signature(optim.Adam)
print({k: sig.parameters[k].default for k in ("lr", "betas", "eps")})
betas = sig.parameters["betas"].default
print("memory of beta1, beta2 (steps):", [round(1 / (1 - b)) for b in betas])""",
        play=Play("rosenbrock", {"adam": {"lr": 0.001}}, steps=1000),
    ),
    114: dict(
        explain="""
The two races separate the two ideas. In the ravine (steep across, gentle along) momentum
wins by accumulating the gentle, consistent slope; the adaptive methods win by dividing out
the scales, which here are aligned with the axes. At the saddle the gradient points almost
exactly along the ridge; momentum needs the small sideways component to build up, while
RMSProp and Adam enlarge it at once because they normalize each coordinate: a tiny but
steady sideways gradient gets a step of about `lr`, so they leave the saddle first.""",
        code="""\
from descentlab.problems import landscapes, trajectories

saddle = landscapes.get("saddle")
for name, lr in [("sgd", 0.05), ("momentum", 0.05), ("rmsprop", 0.05), ("adam", 0.05)]:
    run = trajectories.run(saddle, name, [saddle.start], steps=200, lr=lr)
    y = run.paths[0][:, 1].abs()
    left = int((y > 0.5).nonzero()[0]) if bool((y > 0.5).any()) else None
    print(f"{name:8s}: |y| > 0.5 from step {left}, final loss {float(run.losses[0, -1]):.3f}")""",
        play=Play(
            "saddle",
            {
                "sgd": {"lr": 0.05},
                "momentum": {"lr": 0.05, "momentum": 0.9},
                "rmsprop": {"lr": 0.05},
                "adam": {"lr": 0.05},
            },
            steps=200,
        ),
    ),
    115: dict(
        explain="""
A decay schedule makes the step size fall with time; the three of the lecture differ in how
fast. Step decay multiplies by `γ` every `k` steps; exponential `α₀e^{-kt}` falls by a
constant factor per step, so `Σ α_t` is finite (about `α₀/k`): the iterate can travel only
a bounded distance, and if the start is farther than that it stops short. `α₀/(1+kt)` falls
like `1/t`: the sum diverges (it can go anywhere) while the sum of squares converges (the
noise it adds is finite), the Robbins-Monro conditions of item 20.""",
        code="""\
from descentlab.book import convergence as C
from descentlab.book import decays as D

exp, inv = D.exp_decay(k=0.05, a0=1.0), D.inverse_time(k=0.05, a0=1.0)
for name, s in (("exponential", exp), ("1/t", inv)):
    sums = [sum(s(t) for t in range(n)) for n in (10, 100, 10000)]
    print(f"{name:11s}: rate at t=100 {s(100):.4f}; sum over 10, 100, 10^4 steps:",
          [round(v, 2) for v in sums])
print("Robbins-Monro met: 1/t", C.robbins_monro(inv).meets,
      "| exponential", C.robbins_monro(exp).meets)""",
    ),
}
