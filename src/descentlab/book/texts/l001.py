"""Teaching text of lecture 001, derivatives and numerical optimization (items 31-60)."""

from __future__ import annotations

from typing import Any

from descentlab.book.bibliography import year
from descentlab.book.facts import choose, cite
from descentlab.book.model import Play
from descentlab.book.texts._cells import by_hand
from descentlab.book.texts._facts import FACTS

__all__ = ["TEACH"]

_DERIVATIVE_CELL = """\
import torch
from descentlab.problems import landscapes

f = landscapes.get({name!r})
print(f.plain)
x = torch.tensor([{point}], dtype=torch.float64)
print("autograd gradient at", x.tolist()[0], ":", landscapes.grad(f, x).tolist()[0])
print("the rule by hand              :", {by_hand})"""

_PARABOLA = """\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")                    # x^2 - 4x + 6
for lr in {lrs}:
    run = trajectories.run(f, "sgd", [f.start], steps=10, lr=lr)
    print(f"lr {{lr:4}}:", [round(v, 3) for v in run.paths[0, :, 0].tolist()])"""

_XSINX = """\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("xsinx")
for start, lr in {runs}:
    run = trajectories.run(f, "sgd", [[start]], steps=30, lr=lr)
    x = run.paths[0, -1, 0].item()
    fx = run.losses[0, -1].item()
    print(f"start {{start}}, lr {{lr}}: after 30 steps x = {{x:.4f}}, f = {{fx:.4f}}")"""

_FORMULA_NOTE = (
    "descentlab's optimizer and the lecture's rule written out by hand agree to the last digit "
    "in the cell"
)

TEACH: dict[int, dict[str, Any]] = {
    31: dict(
        explain="""
The power rule `d/dx xⁿ = n xⁿ⁻¹` term by term, with linearity (the derivative of a sum is
the sum of derivatives, constants factor out, a constant term has derivative 0):
`d/dx (3x³ - 2x + 1) = 9x² - 2`. Autograd does exactly this bookkeeping, by the chain rule on
the computation graph, and returns the number at the point asked.""",
        code=_DERIVATIVE_CELL.format(name="cubic", point="[1.5]", by_hand="9 * 1.5**2 - 2"),
        play=Play("cubic", {"sgd": {"lr": 0.05}}, steps=12, mode="oned"),
    ),
    32: dict(
        explain="""
A partial derivative differentiates in one variable holding the others fixed. For
`f = 3xy² + 4x³ - 5y² + 1`: in `x`, `y` is a constant, so `f_x = 3y² + 12x²`; in `y`,
`f_y = 6xy - 10y`. The gradient stacks them, `∇f = (f_x, f_y)`, a vector that autograd
returns for every input at once.""",
        code=_DERIVATIVE_CELL.format(
            name="cubic2d", point="[1.0, 2.0]", by_hand="[3 * 2**2 + 12 * 1**2, 6 * 1 * 2 - 10 * 2]"
        ),
    ),
    33: dict(
        explain="""
If `y = f(u)` and `u = g(x)`, a small change `dx` changes `u` by `g'(x) dx`, which changes
`y` by `f'(u)·g'(x) dx`: the rates multiply. Backpropagation is this rule applied through a
network layer by layer, from the loss back to each weight, reusing every intermediate
product, which is why a gradient costs about two forward passes, not one per weight.""",
        code="""\
import torch

x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
u = torch.sin(x)                 # g(x) = sin x
y = u ** 3                       # f(u) = u^3
y.backward()
by_hand = 3 * torch.sin(x.detach()) ** 2 * torch.cos(x.detach())    # f'(g(x)) g'(x)
print(f"autograd {x.grad.item():.15f}   chain rule {by_hand.item():.15f}")""",
    ),
    34: dict(
        explain="""
With `u = 2x - 1` and `f = u³`: `f'(u) = 3u²` and `u' = 2`, so
`d/dx (2x - 1)³ = 3(2x - 1)²·2 = 6(2x - 1)²`. Expanding the cube first gives the same
polynomial with more work; the chain rule is the shortcut.""",
        code=_DERIVATIVE_CELL.format(
            name="chain_cubic", point="[0.8]", by_hand="6 * (2 * 0.8 - 1) ** 2"
        ),
    ),
    35: dict(
        explain=choose("""
For `f = 3(x-2)² + (y-2)²` each partial sees one square: `f_x = 6(x-2)`, `f_y = 2(y-2)`.
Both vanish at `(2, 2)`, the minimum. The curvatures differ (6 against 2), so the bowl is
three times steeper in `x`: gradient descent shrinks `x - 2` {{word:6,2,faster}} than `y - 2`
(item 11's cell shows it)."""),
        code=_DERIVATIVE_CELL.format(
            name="bowl", point="[0.5, 3.0]", by_hand="[6 * (0.5 - 2), 2 * (3.0 - 2)]"
        ),
        play=Play("bowl", {"sgd": {"lr": 0.1}}, steps=30),
    ),
    36: dict(
        explain="""
Training sets the weights `w, b` to minimize a loss `L(w, b)` that measures how far the
model's outputs are from the targets on the training data. Everything else (the model's
architecture, the data) is fixed while the optimizer runs; the loss is a function of the
weights alone, and the question becomes where that function is lowest.""",
        code="""\
import torch
from descentlab import optim

x = torch.tensor([0.0, 1.0, 2.0, 3.0])
y = 2 * x + 1
w, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
opt = optim.SGD([w, b], lr=0.05)
for step in range(301):
    loss = ((w * x + b - y) ** 2).mean()          # L(w, b)
    if step in (0, 10, 100, 300):
        print(f"step {step:3d}: w {w.item():.3f}, b {b.item():.3f}, L {loss.item():.5f}")
    opt.zero_grad(); loss.backward(); opt.step()""",
    ),
    37: dict(
        explain="""
Four ways to the minimum of `f = x² - 4x + 6`. Completing the square,
`x² - 4x + 6 = (x - 2)² + 2`, reads off `x* = 2, f* = 2`. Setting `f' = 2x - 4 = 0` gives the
same. Trying every `x` on a grid finds it to the grid's resolution, at a cost that explodes
with the dimension (a grid of 100 points per axis in 10 dimensions is `100¹⁰ = 10²⁰`
points). Iterating `x ← x - η f'(x)` converges
without a formula and without a grid, which is why it is the method that scales.""",
        code="""\
import torch
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")
grid = torch.linspace(-10, 10, 2001, dtype=torch.float64)[:, None]
print("1. square: x* = 2, f* = 2")
print("2. f' = 0 : x* =", 4 / 2)
print("3. grid   : x* =", round(grid[f(grid).argmin()].item(), 4))
run = trajectories.run(f, "sgd", [f.start], steps=40, lr=0.2)
x_star, f_star = run.paths[0, -1, 0].item(), run.losses[0, -1].item()
print("4. descent: x* =", round(x_star, 6), " f* =", round(f_star, 6))""",
        play=Play("parabola", {"sgd": {"lr": 0.2}}, steps=12, mode="oned"),
    ),
    38: dict(
        explain="""
A network's loss has no closed form to solve and too many weights to search, so training
iterates: pick a start, compute the gradient there (the direction), move a learning rate's
worth against it, repeat. The three choices (start, direction, step size) are exactly what
the rest of the lecture varies: items 44, 51-58 and 43.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("rosenbrock")
run = trajectories.run(f, "adam", [f.start], steps=2000, lr=0.02)
for t in (0, 100, 500, 2000):
    w = [round(v, 3) for v in run.paths[0, t].tolist()]
    print(f"step {t:4d}: w = {w}, loss {run.losses[0, t].item():.5f}")""",
        play=Play("rosenbrock", {"adam": {"lr": 0.02}}, steps=1000),
    ),
    39: dict(
        explain=f"""
The optimizers differ along two axes: how they choose the *direction* (the gradient; a
velocity built from past gradients: momentum {year("polyak1964")}, Nesterov
{year("nesterov1983")}) and how they choose the *step size* per coordinate (fixed; scaled by
past squared gradients: AdaGrad {year("duchi2011")}, RMSProp {year("tieleman2012")}). Adam
({year("kingma2015", preprint=True)} on arXiv; descentlab's record dates it by its
{year("kingma2015")} conference paper)
combines a velocity for the direction with RMSProp's scaling. descentlab
builds each as a chain of such update rules, so the table's two axes are visible in the
optimizer's own description.""",
        code="""\
import torch
from descentlab import optim

p = [torch.nn.Parameter(torch.zeros(1))]
for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"):
    print(f"{name:9s} {optim.record(name).year}: {optim.get(name)(p).rule!r}")""",
    ),
    40: dict(
        explain="""
For a unit direction `u`, the rate of change of `f` along `u` is `∇f·u = ‖∇f‖ cos θ`. It is
largest for `θ = 0`, i.e. `u` along the gradient, and most negative for `u` opposite to it:
the negative gradient is the direction of steepest descent (in the Euclidean norm; in
another norm the steepest direction changes, which is one way to read the adaptive
methods).""",
        code="""\
import math
import torch
from descentlab.problems import landscapes

f = landscapes.get("bowl")
x = torch.tensor([[0.5, 3.0]], dtype=torch.float64)
g = landscapes.grad(f, x)[0]
best = None
for k in range(360):
    u = torch.tensor([math.cos(math.radians(k)), math.sin(math.radians(k))], dtype=torch.float64)
    slope = float(g @ u)
    best = (slope, k) if best is None or slope < best[0] else best
print(f"steepest descent of 360 directions: {best[1]} degrees, slope {best[0]:.4f}")
print(f"-gradient direction: {math.degrees(math.atan2(-g[1], -g[0])) % 360:.1f} degrees, "
      f"-|grad| = {-g.norm().item():.4f}")""",
    ),
    41: dict(
        explain="""
`w ← w - ε∇f(w)`: the step is the gradient times the learning rate `ε`. Near a minimum the
gradient shrinks, so the steps shrink by themselves even at a constant `ε`; on a quadratic
each step multiplies the error by `1 - ε·f''`.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([4.0], dtype=torch.float64))
opt = optim.SGD([w], lr=0.2)
x = 4.0
for _ in range(5):
    x = x - 0.2 * (2 * x - 4)                     # by hand on x^2 - 4x + 6
    w.grad = 2 * w.detach() - 4
    opt.step()
print(f"by hand {x:.12f}   descentlab SGD {w.item():.12f}")""",
    ),
    42: dict(
        explain=cite(
            """
From 4 with rate 0.2 on `x² - 4x + 6`: the error `x - 2` is multiplied by
{{fact:parabola_factor}} every step, so after 10 steps it is {{fact:parabola_error_10}}:
`x₁₀ ≈ 2.012`. The descent is monotone because the factor is positive.""",
            FACTS,
        ),
        code=_PARABOLA.format(lrs="(0.2,)"),
        play=Play("parabola", {"sgd": {"lr": 0.2}}, steps=10, mode="oned"),
    ),
    43: dict(
        explain="""
The factor `1 - 2η` again: at `η = 0.2` it is 0.6 (steady convergence); at `η = 0.01` it is
0.98, so ten steps remove only 18 % of the error; at `η = 1` it is exactly -1: the iterate
jumps from 4 to `2 - 2 = 0` and back forever, never converging and never diverging.""",
        code=_PARABOLA.format(lrs="(0.2, 0.01, 1.0)"),
        play=Play("parabola", {"sgd": {"lr": 1.0}}, steps=10, mode="oned"),
    ),
    44: dict(
        explain="""
`x sin x` has several minima. Gradient descent only goes downhill from where it starts, so
the start decides which valley it ends in: each minimum has a basin of attraction, the set
of starts that flow to it. From 2.5 the slope points right, towards the minimum near 4.91;
from 1.5 it points left, towards the minimum at 0.""",
        code=_XSINX.format(runs="((2.5, 0.25), (1.5, 0.25))"),
        play=Play("xsinx", {"sgd": {"lr": 0.25}}, steps=30, starts=((2.5,), (1.5,)), mode="oned"),
    ),
    45: dict(
        explain="""
The rate changes the path and, on a non-convex function, the destination: a large step can
jump over a ridge into another basin that a small step would never leave. From 2.5, lr 0.05
creeps into the nearby minimum; lr 1.0 takes steps so large that the iterate lands in
another valley altogether.""",
        code=_XSINX.format(runs="((2.5, 0.05), (2.5, 1.0))"),
        play=Play("xsinx", {"sgd": {"lr": 1.0}}, steps=30, mode="oned"),
    ),
    46: dict(
        explain="""
A convex function has one basin, so any local minimum is global. Network losses are not
convex (permuting hidden units alone gives many equivalent minima), so descent finds *a*
local minimum, determined by the start and the rate (items 44-45). In large networks most
local minima found in practice have similar loss; saddle points, not bad minima, are the
usual obstacle.""",
        code="""\
import torch
from descentlab.problems import landscapes, trajectories

f = landscapes.get("double_well")
starts = torch.linspace(-2.5, 2.5, 11)[:, None].tolist()
run = trajectories.run(f, "sgd", starts, steps=400, lr=0.02)
for s, x in zip(starts, run.paths[:, -1, 0].tolist()):
    kind = "global" if x < 0 else "local"
    print(f"start {s[0]:+.1f} -> x = {x:+.4f} ({kind} minimum)")""",
        play=Play(
            "double_well", {"sgd": {"lr": 0.02}}, steps=300, starts=((2.5,), (-0.5,)), mode="oned"
        ),
    ),
    47: dict(
        explain="""
A function of two variables is drawn by evaluating it on a grid: `np.outer` (or a
broadcast) builds every `(x, y)` pair from two axes, and the values form a matrix that a
surface or contour plot draws. The grid grows with the square of the resolution, which is
why the playground draws 120 × 120 points.""",
        code="""\
import torch
from descentlab.problems import landscapes

f = landscapes.get("bowl")
xs, ys = torch.linspace(0, 4, 5, dtype=torch.float64), torch.linspace(0, 4, 5, dtype=torch.float64)
grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)    # every (x, y) pair
values = f(grid.reshape(-1, 2)).reshape(5, 5)
print(values)""",
        play=Play("bowl", {"sgd": {"lr": 0.1}}, steps=30),
    ),
    48: dict(
        explain="""
One epoch of SGD: shuffle the example indices, cut them into consecutive batches, take one
step per batch. Every example is used exactly once per epoch (sampling without
replacement), and reshuffling each epoch makes the batches different every time, which
keeps the noise from repeating the same pattern.""",
        code="""\
import torch

g = torch.Generator().manual_seed(0)
n, batch = 12, 4
for epoch in range(2):
    order = torch.randperm(n, generator=g)
    batches = [b.tolist() for b in order.split(batch)]
    seen = sorted(i for b in batches for i in b)
    print(f"epoch {epoch}: batches {batches}; every example once: {seen == list(range(n))}")""",
    ),
    49: dict(
        explain="""
For a weight matrix `W` the gradient is the matrix of partial derivatives `∂L/∂W_ij`, the
same shape as `W`. For a linear layer `y = Wx` with upstream gradient `δ = ∂L/∂y`, it is the
outer product `δ xᵀ`: entry `ij` is how much output `i` changes the loss times how much
`W_ij` changes output `i`.""",
        code="""\
import torch

torch.manual_seed(0)
W = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
x = torch.randn(2, dtype=torch.float64)
y = W @ x
loss = (y ** 2).sum()
loss.backward()
delta = 2 * y.detach()                          # dL/dy
print("autograd dL/dW:\\n", W.grad)
print("outer(delta, x):\\n", torch.outer(delta, x))""",
    ),
    50: dict(
        explain="""
At the bottom of the shallow well the gradient is zero, and gradient descent stops there.
Momentum arrives with a velocity: it keeps moving after the gradient vanishes and climbs
the far wall until the slope has taken its velocity away. If the barrier is lower than the
"kinetic energy" gathered on the way down, it crosses into the deeper well. Whether it does
depends on the rate and `β`: here, on the double well from 2.5 at lr 0.02, momentum 0.9
crosses and plain descent stays.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("double_well")           # local minimum near 1.33, global near -1.48
for name, hyper in (("sgd", None), ("momentum", {"momentum": 0.9})):
    run = trajectories.run(f, name, [f.start], steps=400, lr=0.02, hyper=hyper)
    print(f"{name:8s}: ends at x = {run.paths[0, -1, 0].item():+.4f}")""",
        play=Play(
            "double_well",
            {"sgd": {"lr": 0.02}, "momentum": {"lr": 0.02, "momentum": 0.9}},
            steps=400,
            mode="oned",
        ),
    ),
    51: dict(
        explain="""
`v ← αv - ε∇f(w)`, `w ← w + v`, `v⁰ = 0`: the velocity form of momentum. The first step is
plain gradient descent (`v¹ = -ε∇f`); afterwards each step adds a fraction `α` of the last.
"""
        + _FORMULA_NOTE
        + ".",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([4.0], dtype=torch.float64))
opt = optim.Momentum([w], lr=0.1, momentum=0.5, form="velocity")
x, v = 4.0, 0.0
for _ in range(8):
    v = 0.5 * v - 0.1 * (2 * x - 4)
    x = x + v
    w.grad = 2 * w.detach() - 4
    opt.step()
print(f"by hand {x:.12f}   descentlab {w.item():.12f}")""",
    ),
    52: dict(
        explain="""
Nesterov takes the gradient at the point momentum is about to reach, `w + αv`, so an
overshoot is corrected one step earlier (item 104). "Faster" is a guarantee about the worst
case over smooth convex functions (`1 - 1/√κ` per step against gradient descent's
`1 - 1/κ`); on a given problem at given settings the gain over heavy-ball momentum can be
small or, for badly chosen settings, reversed.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([4.0], dtype=torch.float64))
opt = optim.Nesterov([w], lr=0.1, momentum=0.5)
x, v = 4.0, 0.0
for _ in range(8):
    v = 0.5 * v - 0.1 * (2 * (x + 0.5 * v) - 4)    # the gradient at the look-ahead
    x = x + v
    w.grad = 2 * w.detach() - 4
    opt.step()
print(f"lecture's rule, look-ahead point x + a v: {x + 0.5 * v:.12f}")
print(f"descentlab Nesterov (stores it)        : {w.item():.12f}")""",
    ),
    53: dict(
        explain="""
With a fixed rate, one number must suit the whole run and every direction: too large and
some direction diverges, too small and others crawl. Adaptive methods rescale each
coordinate's step by its gradient history, so the step size is about the learning rate
whatever the gradient's scale, and the range of rates that works widens.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("beale")
for name in ("sgd", "rmsprop", "adam"):
    ok = []
    for lr in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0):
        run = trajectories.run(f, name, [f.start], steps=300, lr=lr)
        gap = run.losses[0, -1].item() - f.global_minimum.value
        if not bool(run.diverged[0]) and gap < 1e-2:
            ok.append(lr)
    print(f"{name:7s}: rates within 0.01 of the minimum after 300 steps: {ok}")""",
        play=Play(
            "beale", {"sgd": {"lr": 0.01}, "rmsprop": {"lr": 0.1}, "adam": {"lr": 0.3}}, steps=300
        ),
    ),
    54: dict(
        explain="""
The "bold driver" heuristic adapts one global rate from the loss itself: if the loss rose,
the step was too long, so undo it and halve the rate; if it fell, keep going (or grow the
rate a little). It needs a full loss evaluation per step, which is fine for full-batch
descent and unreliable with noisy mini-batch losses.""",
        code="""\
from descentlab import schedules as S
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")
rule = S.bold_driver(increase=1.0, decrease=0.5, reject=True)
run = trajectories.run(f, "sgd", [f.start], steps=20, lr=1.5, loss_rule=rule)
plain = trajectories.run(f, "sgd", [f.start], steps=20, lr=1.5)
print("with the rule   :", [round(v, 4) for v in run.paths[0, :8, 0].tolist()], "...",
      round(run.paths[0, -1, 0].item(), 6))
print("without, lr 1.5 : |x - 2| after 20 steps =", abs(plain.paths[0, -1, 0].item() - 2))""",
    ),
    55: dict(
        explain="""
AdaGrad's `r ← r + g⊙g` accumulates squared gradients per coordinate and the step is
`-ε g/(δ + √r)`; `δ` (1e-7 here) only prevents a division by zero. With the sum of squares
in the denominator, the step of a coordinate is its gradient measured in units of its own
history: `ε` per step at first, shrinking like `1/√t` (item 108).""",
        code=by_hand(
            "Adagrad([w], lr=0.5, eps=1e-7)",
            "r = torch.zeros(2, dtype=torch.float64)",
            "r = r + g * g",
            "x = x - 0.5 * g / (1e-7 + r.sqrt())",
            where=([2.0, 20.0], [4.0, 1.0]),
        ),
    ),
    56: dict(
        explain="""
Because AdaGrad's accumulator only grows, the effective rate `ε/√r` falls for the whole run:
by step 10,000 it is 100 times smaller than at step 1 for gradients of constant size. If
the important progress comes late (as in deep networks, where early gradients are large
and unrepresentative), AdaGrad has slowed too much to make it.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1))
opt = optim.Adagrad([w], lr=0.1, eps=0.0)
for t in range(1, 10001):
    before = w.item()
    w.grad = torch.ones(1)
    opt.step()
    if t in (1, 100, 10000):
        print(f"step {t:5d}: moved {before - w.item():.5f}")""",
    ),
    57: dict(
        explain="""
RMSProp replaces AdaGrad's sum with the moving average `r ← ρr + (1-ρ) g⊙g`, so `√r`
tracks the recent root-mean-square gradient and the effective rate no longer decays to
zero. With `ρ = 0.9` the average spans about `1/(1 - ρ) = 10` steps.""",
        code=by_hand(
            "RMSprop([w], lr=0.01, alpha=0.9, eps=1e-7)",
            "r = torch.zeros(2, dtype=torch.float64)",
            "r = 0.9 * r + 0.1 * g * g",
            "x = x - 0.01 * g / (r.sqrt() + 1e-7)",
            where=([2.0, 20.0], [4.0, 1.0]),
        ),
    ),
    58: dict(
        explain="""
Adam in the notebook's letters: `s` the moving average of gradients (momentum's direction),
`r` of squared gradients (RMSProp's scale), both corrected by `1/(1 - ρ^t)` for their zero
start (item 111), and the step `-ε ŝ/(δ + √r̂)`. With the corrections the first step is
exactly `ε` per coordinate in the gradient's sign.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([4.0, 1.0], dtype=torch.float64))
opt = optim.Adam([w], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
a = torch.tensor([2.0, 20.0], dtype=torch.float64)
w.grad = a * w.detach()
opt.step()
start = torch.tensor([4.0, 1.0], dtype=torch.float64)
print("first step:", [round(v, 10) for v in (start - w.detach()).tolist()])""",
    ),
    59: dict(
        explain="""
The family tree: gradient descent → SGD (random batches) → momentum and Nesterov (a velocity
for the direction); AdaGrad (per-coordinate scale from summed squares) → RMSProp and
Adadelta (moving averages instead of the sum) → Adam (RMSProp's scale + momentum's
direction) → Nadam (Adam with Nesterov's look-ahead). Each child adds one rule to its
parent's chain, which descentlab's optimizers print.""",
        code="""\
import torch
from descentlab import optim

p = [torch.nn.Parameter(torch.zeros(1))]
for parent, child in (("sgd", "momentum"), ("momentum", "nesterov"), ("adagrad", "rmsprop"),
                      ("rmsprop", "adam"), ("adam", "nadam")):
    print(f"{parent:8s} -> {child:8s}: {optim.get(child)(p).rule!r}")""",
    ),
    60: dict(
        explain="""
No optimizer wins everywhere: which is best depends on the landscape (ravine, saddle,
banana valley, many local minima) and on each one's tuned rate. The honest comparison tunes
each optimizer's rate, runs several seeds, and calls a difference within the noise a tie,
which is what the book's race tables and `descentlab compare` do.""",
        code="""\
from descentlab.problems import landscapes, trajectories

for land in ("ravine", "beale", "rastrigin"):
    f = landscapes.get(land)
    finals = {}
    for name in ("sgd", "momentum", "rmsprop", "adam"):
        best = float("inf")
        for lr in (1e-3, 1e-2, 1e-1):
            run = trajectories.run(f, name, [f.start], steps=300, lr=lr)
            if not bool(run.diverged[0]):
                best = min(best, run.losses[0, -1].item())
        finals[name] = best
    shown = {k: f"{v:.3g}" for k, v in finals.items()}
    print(f"{land:9s} best: {min(finals, key=finals.get):8s}", shown)""",
        play=Play(
            "rastrigin",
            {
                "sgd": {"lr": 0.01},
                "momentum": {"lr": 0.01},
                "rmsprop": {"lr": 0.01},
                "adam": {"lr": 0.1},
            },
            steps=300,
        ),
    ),
}
