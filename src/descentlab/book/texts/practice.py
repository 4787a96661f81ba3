"""The exercises of each lecture, one tuple a lecture: numeric ones (the build computes the
answer from a formula and measures it with descentlab or torch: ``answer``, ``measured``,
``tol``) and open-ended ones (a worked solution, folded on the page). Each names the items it
practises; their cards link to it.
"""

from __future__ import annotations

from descentlab.book.facts import cite
from descentlab.book.model import Exercise
from descentlab.book.texts._facts import FACTS

__all__ = ["PRACTICE"]


def _step_code(setup: str, steps: int, formula: str, tol: str = "1e-6", said: str = "") -> str:
    """A numeric exercise's code: a parameter fed a constant gradient ``g`` by an optimizer
    (``setup`` makes ``opt`` over ``w``), the size of its step number ``steps`` measured;
    ``said``: code run after it (the words its worked solution teaches, computed)."""
    return f"""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
{setup}
sizes = []
for t in range({steps}):
    before = w.detach().clone()
    w.grad = torch.full_like(w, g)
    opt.step()
    sizes.append(abs(float(w.detach() - before)))
measured = sizes[-1]
answer = {formula}
tol = {tol}
{said}print(f"step {steps}: measured {{measured:.6g}}, formula {{answer:.6g}}")"""


#: the Adam first-step exercise's words: the step is lr with the bias correction (without it,
#: lr·(1 - β₁)/√(1 - β₂)), and is lr again for a gradient 100 times larger
_ADAM_FIRST_STEP_WORDS = """\
big = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
big.grad = torch.full_like(big, 100 * g)
optim.Adam([big], lr=0.01, eps=0.0).step()
uncorrected = 0.01 * (1 - 0.9) / (1 - 0.999) ** 0.5
said = {"With bias correction m̂₁ = g and v̂₁ = g²": abs(measured - 0.01) < 1e-9 < abs(
            uncorrected - measured),
        "Adam's first step is the learning rate, whatever the gradient's scale":
            abs(abs(float(big.detach())) - measured) < 1e-12}
"""


def _autograd_code(expr: str, at: str, formula: str, var: str = "x", paper: str = "") -> str:
    """A numeric exercise's code: autograd's derivative of ``expr`` at ``at`` against the
    ``formula`` derived on paper (``paper``: the lines that compute its steps)."""
    return f"""\
import torch

{var} = torch.tensor({at}, dtype=torch.float64, requires_grad=True)
y = {expr}
y.backward()
measured = float({var}.grad)
{paper}answer = {formula}
tol = 1e-12
print(f"autograd {{measured:.6g}}, by hand {{answer:.6g}}")"""


L000 = (
    Exercise(
        "Constant-rate SGD with α = 0.4 on `f = ½·2w²` (λ = 2) with gradient noise σ = 0.5: "
        "what is the stationary E[w²]?",
        "`ασ²/(λ(2 - αλ)) = 0.4·0.25/(2·1.2)`. The code runs 20,000 chains of descentlab's SGD "
        "and averages E[w²] over 150 stationary steps (tolerance 2 %; a wrong factor 2 would "
        "be 50 % off).",
        """\
import torch
from descentlab import optim

alpha, lam, sigma = 0.4, 2.0, 0.5
terms = (sigma ** 2, 2 - alpha * lam)         # σ² and 2 - αλ
answer = alpha * sigma ** 2 / (lam * (2 - alpha * lam))
w = torch.nn.Parameter(torch.zeros(20000))
opt = optim.SGD([w], lr=alpha)
second_moments = []
for t in range(200):
    w.grad = lam * w.detach() + sigma * torch.randn(20000)
    opt.step()
    if t >= 50:                                  # stationary after ~10 steps: average 150 of them
        second_moments.append(float((w.detach() ** 2).mean()))
measured = sum(second_moments) / len(second_moments)
tol = 0.02
misconception = alpha * sigma ** 2 / (2 * lam)   # the small-rate floor, without the -αλ
said = {"a wrong factor 2 would be 50 % off": abs(abs(answer / 2 / measured - 1) - 0.5) < tol
        and 2 * tol < 0.5}
print(f"E[w^2] measured {measured:.5f}, formula {answer:.5f}")""",
        items=(18,),
    ),
    Exercise(
        "Gradient descent on `(x - 2)² + 2` from x = 4: with which learning rate does it land "
        "on the minimum in exactly one step?",
        "The step multiplies the error by `1 - 2η`; it vanishes at `η = 0.5`. The code searches "
        "a grid of rates with descentlab's trajectories for the one with the smallest error "
        "after one step.",
        """\
import torch
from descentlab.problems import landscapes, trajectories

answer = 0.5
f = landscapes.get("parabola")
lrs = torch.linspace(0.01, 0.99, 99).tolist()
errors = [abs(float(trajectories.run(f, "sgd", [f.start], steps=1, lr=lr).paths[0, 1, 0]) - 2)
          for lr in lrs]
measured = lrs[min(range(len(lrs)), key=errors.__getitem__)]
tol = 1e-6
said = {"it vanishes at η = 0.5": min(errors) < 1e-12 and abs(measured - answer) < tol}
print(f"best rate on the grid {measured:.3f}")""",
        items=(11, 12),
    ),
    Exercise(
        "The mean of a batch of B = 16 examples estimates the full gradient. By what factor is "
        "the variance of its estimate smaller than a single example's?",
        "Independent draws: `Var(mean) = Var(one)/B`, so the factor is 16. The code measures it "
        "with 20,000 batches drawn with replacement.",
        """\
import torch

torch.manual_seed(1)
per_example = torch.randn(5000, dtype=torch.float64) * 3 + 1
answer = 16.0
idx = torch.randint(0, 5000, (20000, 16))
measured = float(per_example.var() / per_example[idx].mean(1).var())
tol = 0.05
misconception = 16 ** 0.5                        # the standard deviation's factor
medians = float(per_example.var() / per_example[idx].median(1).values.var())
said = {"Var(mean) = Var(one)/B": abs(measured / 16 - 1) < tol < abs(medians / 16 - 1),
        "20,000 batches drawn with replacement": idx.shape[0] == 20000
        and bool((idx.sort(1).values.diff(1) == 0).any())}
print(f"variance ratio {measured:.2f}")""",
        items=(14,),
    ),
    Exercise(
        "Momentum (torch's form, μ = 0.9, lr 0.1) descends a constant slope g = 1. How large "
        "are its steps once the velocity has settled?",
        "The velocity obeys `b ← μb + g`, so it settles at `g/(1 - μ) = 10` and the step is "
        "`lr·g/(1 - μ) = 1.0`: ten times plain gradient descent's. The code runs descentlab's "
        "Momentum for 300 steps and measures the last one.",
        _step_code(
            "g = 1.0\nvelocity = g / (1 - 0.9)\nopt = optim.Momentum([w], lr=0.1, momentum=0.9)",
            300,
            "0.1 * velocity",
        ),
        items=(25, 24),
    ),
    Exercise(
        "Gradient descent on `f(w) = 2w²` (curvature a = 4): what is the largest learning rate "
        "for which it does not diverge?",
        "A step multiplies w by `1 - ηa`; it shrinks while `|1 - ηa| < 1`, that is `η < 2/a = "
        "0.5`. The code bisects on the growth of |w| over 200 steps of descentlab's SGD.",
        """\
import torch
from descentlab import optim

def grows(lr):
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = optim.SGD([w], lr=lr)
    for _ in range(200):
        w.grad = 4 * w.detach()
        opt.step()
    return abs(float(w)) > 1

lo, hi = 0.1, 1.0
for _ in range(40):
    mid = (lo + hi) / 2
    lo, hi = (lo, mid) if grows(mid) else (mid, hi)
measured = lo
answer = 2 / 4
tol = 1e-6
said = {"it shrinks while |1 - ηa| < 1": not grows(0.99 * measured) and grows(1.01 * measured)}
print(f"largest stable rate {measured:.6f}")""",
        items=(15,),
    ),
    Exercise(
        "Momentum with μ = 0.99 sees one gradient g = 1 and then zeros. How far does the "
        "parameter travel in all, in units of the learning rate?",
        "The velocity after the kick is `μᵏ` at step k, so the total distance is `lr·Σμᵏ = "
        "lr/(1 - μ)`: 100 learning rates. That sum is why `1/(1 - μ)` is called momentum's "
        "memory (item 26). The code measures 3000 steps of descentlab's Momentum.",
        """\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.Momentum([w], lr=0.01, momentum=0.99)
for t in range(3000):
    w.grad = torch.full_like(w, 1.0 if t == 0 else 0.0)
    opt.step()
measured = -float(w) / 0.01
answer = (1 - 0.99 ** 3000) / (1 - 0.99)
tol = 1e-6
print(f"travelled {measured:.4f} learning rates")""",
        items=(26,),
    ),
    Exercise(
        "RMSProp (β₂ = 0.9, lr 0.01, ε = 0) starts with v = 0 and sees g = 2. How large is its "
        "first step?",
        "`v₁ = (1 - β₂)g² = 0.4`, so the step is `lr·g/√v₁ = lr/√(1 - β₂) ≈ 0.0316`: about "
        "three times lr, whatever g is, because v starts at zero.",
        _step_code(
            "g = 2.0\nv1 = (1 - 0.9) * g ** 2\n"
            "opt = optim.RMSprop([w], lr=0.01, alpha=0.9, eps=0.0)",
            1,
            "0.01 / (1 - 0.9) ** 0.5",
        ),
        items=(28,),
    ),
    Exercise(
        "Adam (lr 0.01, ε = 0) sees the gradient g = 7 on its first step. How large is the step?",
        "With bias correction `m̂₁ = g` and `v̂₁ = g²`, so the step is `lr·g/|g| = lr = 0.01`: "
        "Adam's first step is the learning rate, whatever the gradient's scale.",
        _step_code(
            "g = 7.0\nopt = optim.Adam([w], lr=0.01, eps=0.0)",
            1,
            "0.01",
            said=_ADAM_FIRST_STEP_WORDS,
        ),
        items=(29, 28),
    ),
    Exercise(
        "Why does maximizing the log-likelihood give the same ŵ as maximizing the likelihood, "
        "and why does training use the log?",
        "The log is strictly increasing, so it keeps the order of the values and the argmax "
        "(item 4). Numerically, a product of thousands of probabilities below 1 underflows to "
        "0 in floating point while the sum of their logs stays moderate; and the gradient of a "
        "sum is the sum of the examples' gradients, which is what mini-batches estimate "
        "(items 12-13).",
        items=(2, 3, 4),
    ),
    Exercise(
        "Derive the loss that a Laplace model `p(x | μ) = exp(-|x - μ|/b)/(2b)` gives, and say "
        "which constants drop out.",
        "The negative log-likelihood of the data is `Σ|xᵢ - μ|/b + N log(2b)`. With b fixed, "
        "`N log 2b` does not depend on μ and `1/b` only scales the sum: minimizing over μ is "
        "minimizing `Σ|xᵢ - μ|`, the L1 loss, whose minimizer is the median.",
        items=(6, 5),
    ),
    Exercise(
        "Do the same for a Gaussian with fixed σ. What does σ change, and what would it change "
        "if it were learned too?",
        "`-log p = (x - μ)²/(2σ²) + log(σ√2π)`: with σ fixed, minimizing over μ is minimizing "
        "the squared error (the mean is its minimizer); σ only scales the loss, as a learning "
        "rate would. Learned, σ adds `N log σ` against the squared term, and its optimum is the "
        "residuals' standard deviation.",
        items=(7, 5),
    ),
    Exercise(
        "Show that the gradient of a batch drawn uniformly with replacement is an unbiased "
        "estimate of the full gradient, and find its variance.",
        "Each draw i has `E[∇Lᵢ] = (1/N)Σ∇Lₙ = ∇L`, so the batch mean has the same expectation. "
        "The draws are independent, so `Var(mean) = Var(one)/B`: four times the batch, half the "
        "noise's standard deviation.",
        items=(14, 13),
    ),
    Exercise(
        "Why must the rates satisfy both `Σηₜ = ∞` and `Σηₜ² < ∞`? Give a schedule that breaks "
        "each.",
        "Unrolled, `w_T = w_0 - Σηₜgₜ`: if `Σηₜ` is finite the iterate can only travel a "
        "bounded distance and misses a far optimum (ηₜ = 1/t² stops short). The noise adds "
        "variance `Σηₜ²σ²`: if that sum diverges the iterate keeps hovering (a constant rate, "
        "item 18). `ηₜ = η/t` satisfies both (item 21).",
        items=(19, 20, 21),
    ),
    Exercise(
        "On a ravine with a large gradient along W₂ and a small one along W₁, explain how "
        "dividing by √v equalizes the progress along the two axes.",
        "v tracks each coordinate's squared gradient, so `g/√v` is about ±1 along both axes: "
        "the large W₂ gradient is scaled down (less oscillation), the small W₁ gradient scaled "
        "up (faster progress along the floor). The step's size is set by lr, not by the "
        "curvature of each axis.",
        items=(27, 28),
    ),
    Exercise(
        "Newton's method minimises `f(w) = ½ wᵀHw - bᵀw` with H = diag(1, 0.01) and b = (1, 1), "
        "starting from w = 0. What is the second coordinate of w after one Newton step?",
        "Newton's step `w - H⁻¹∇f` solves the quadratic model exactly, and on a quadratic the "
        "model is the loss: one step lands on the normal equations' solution `H⁻¹b`, whose "
        "second coordinate is `1/0.01 = 100` (item 8). Gradient descent at rate 1 moves that "
        "coordinate by its gradient, 1: the flat direction's curvature, 100 times smaller, is "
        "what Newton's step divides by. The code takes the step with torch's Hessian.",
        """\
import torch

h = torch.diag(torch.tensor([1.0, 0.01], dtype=torch.float64))
b = torch.ones(2, dtype=torch.float64)
f = lambda w: 0.5 * w @ h @ w - b @ w
w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
(grad,) = torch.autograd.grad(f(w), w)
hessian = torch.autograd.functional.hessian(f, w.detach())
step = torch.linalg.solve(hessian, grad)
measured = float((w.detach() - step)[1])
answer = 1 / 0.01
tol = 1e-9
misconception = 1.0                              # gradient descent's move at rate 1
said = {"the flat direction's curvature, 100 times smaller":
        abs(float(hessian[0, 0] / hessian[1, 1]) - 100) < 1e-9,
        "one step lands on the normal equations' solution H⁻¹b":
        torch.allclose(w.detach() - step, torch.linalg.solve(h, b), rtol=0, atol=1e-12)}
print(f"after one Newton step: w = {(w.detach() - step).tolist()}")""",
        items=(8, 10),
    ),
    Exercise(
        "Gradient descent on `f(w) = ½ wᵀHw` with H = diag(1, 0.01), from w = (1, 1), is "
        "preconditioned by P = diag(1, 100), the inverse of H's diagonal: `w ← w - P∇f`. How "
        "many steps until the distance to the minimum falls below 1e-6?",
        "The preconditioned step is `w - PHw` and `PH = I`: the first step lands on the "
        "minimum, whatever κ is. Plain gradient descent at its best rate needs about "
        "`ln 10⁻⁶ / ln((κ - 1)/(κ + 1))` ≈ 691 steps at κ = 100. A diagonal preconditioner "
        "is exact here because H is diagonal; Adam's and RMSProp's per-coordinate scaling are "
        "cheap estimates of it. The code runs descentlab's SGD on the preconditioned gradient.",
        """\
import math
import torch
from descentlab import optim

h = torch.tensor([1.0, 0.01], dtype=torch.float64)
w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
opt = optim.SGD([w], lr=1.0)
steps = 0
while float(w.detach().norm()) >= 1e-6 and steps < 10000:
    w.grad = (1 / h) * (h * w.detach())          # P ∇f with P = diag(1/h)
    opt.step()
    steps += 1
measured = steps
answer = 1
tol = 1e-12
kappa = 1 / 0.01
misconception = round(math.log(1e-6) / math.log((kappa - 1) / (kappa + 1)))  # plain GD


def after_one_step(curvatures):                  # P = diag(1/h): the step w - PHw
    v = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    v.grad = (1 / curvatures) * (curvatures * v.detach())
    optim.SGD([v], lr=1.0).step()
    return float(v.detach().norm())


said = {"the first step lands on the minimum, whatever κ is": max(
    after_one_step(torch.tensor([1.0, 1 / k], dtype=torch.float64)) for k in (10.0, 1e4)) < 1e-12}
print(f"preconditioned steps: {measured}")""",
        items=(8, 10),
    ),
)

L001 = (
    Exercise(
        "What is d/dx (2x - 1)³ at x = 1.25?",
        "{{6(2x - 1)^2=answer}}; the code asks autograd through descentlab's `chain_cubic`.",
        """\
import torch
from descentlab.problems import landscapes

inner = 2 * 1.25 - 1
answer = 6 * inner ** 2
f = landscapes.get("chain_cubic")
measured = landscapes.grad(f, torch.tensor([[1.25]], dtype=torch.float64)).item()
tol = 1e-12
print("d/dx (2x-1)^3 at 1.25 =", measured)""",
        items=(34, 33),
    ),
    Exercise(
        "Gradient descent on `x² - 4x + 6` from x = 4 with lr 0.1: what is x after 5 steps?",
        "The error `x - 2` is multiplied by {{=factor}} per step: {{x_5=answer}}.",
        """\
import torch
from descentlab.problems import landscapes, trajectories

factor = 1 - 0.1 * 2
answer = 2 + 2 * factor ** 5
f = landscapes.get("parabola")
run = trajectories.run(f, "sgd", [f.start], steps=5, lr=0.1, dtype=torch.float64)
measured = run.paths[0, -1, 0].item()
tol = 1e-12
print("x_5 =", measured)""",
        items=(42,),
    ),
    Exercise(
        "RMSProp (ρ = 0.9, lr 0.01, δ = 0) sees the gradient 5 twice. How large is its second "
        "step?",
        "{{r_1=r1}}, {{r_2=r2}}; the step is {{=answer}}.",
        """\
import torch
from descentlab import optim

rest, g2 = 1 - 0.9, 5 ** 2                    # 1 - ρ and g²
r1 = rest * g2
r2 = 0.9 * r1 + rest * g2
answer = 0.01 * 5 / r2 ** 0.5
w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.RMSprop([w], lr=0.01, alpha=0.9, eps=0.0)
positions = [0.0]
for _ in range(2):
    w.grad = torch.full_like(w, 5.0)
    opt.step()
    positions.append(w.item())
measured = positions[1] - positions[2]
tol = 1e-12
print("second step", measured)""",
        items=(57,),
    ),
    Exercise(
        "What is d/dx (3x³ - 2x + 1) at x = 2?",
        "`9x² - 2 = 36 - 2 = 34`. The code asks torch's autograd.",
        _autograd_code("3 * x ** 3 - 2 * x + 1", "2.0", "term - 2", paper="term = 9 * 2.0 ** 2\n"),
        items=(31,),
    ),
    Exercise(
        "For `f = 3xy² + 4x³ - 5y² + 1`, what is ∂f/∂y at (x, y) = (1, 2)?",
        "`f_y = 6xy - 10y = 12 - 20 = -8`: x is held fixed.",
        """\
import torch

x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
y = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
f = 3 * x * y ** 2 + 4 * x ** 3 - 5 * y ** 2 + 1
f.backward()
measured = float(y.grad)
terms = (6 * 1 * 2, 10 * 2)                  # 6xy and 10y at (1, 2)
answer = terms[0] - terms[1]
tol = 1e-12
print(f"autograd {measured}, by hand {answer}")""",
        items=(32,),
    ),
    Exercise(
        "Gradient descent on `x² - 4x + 6` from x = 4 with lr 0.2: how far from the minimum "
        "is x after 10 steps?",
        cite(
            "The error `x - 2` is multiplied by {{fact:parabola_factor}} each step: "
            "{{fact:parabola_error_10}}. The code runs descentlab's trajectories on the "
            "parabola.",
            FACTS,
        ),
        """\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")
run = trajectories.run(f, "sgd", [f.start], steps=10, lr=0.2)
measured = float(run.paths[0, -1, 0]) - 2
answer = 2 * 0.6 ** 10
tol = 1e-5
print(f"x_10 - 2 = {measured:.6g}")""",
        items=(42, 41),
    ),
    Exercise(
        "With lr 0.01 on the same parabola from x = 4, how many steps until the error falls "
        "below 1 % of its start?",
        "Each step multiplies the error by 0.98, so n is the smallest with `0.98ⁿ < 0.01`: "
        "`n = ⌈ln 0.01/ln 0.98⌉ = 228`. That is item 43's 'barely moves'.",
        """\
import math
from descentlab.problems import landscapes, trajectories

f = landscapes.get("parabola")
run = trajectories.run(f, "sgd", [f.start], steps=400, lr=0.01)
errors = (run.paths[0, :, 0] - 2).abs()
measured = int((errors < 0.01 * 2).nonzero()[0])
answer = math.ceil(math.log(0.01) / math.log(0.98))
tol = 1e-9
print(f"first step below 1 %: {measured}")""",
        items=(43,),
    ),
    Exercise(
        "AdaGrad (lr 0.1, δ = 0) sees a constant gradient g = 5. How large is its 100th step?",
        "After t steps `r = t g²`, so the step is `lr·g/√(t g²) = lr/√t = 0.01`: the rate "
        "decays as 1/√t however large g is (item 56).",
        _step_code("g = 5.0\nopt = optim.Adagrad([w], lr=0.1, eps=0.0)", 100, "0.1 / 100 ** 0.5"),
        items=(55, 56),
    ),
    Exercise(
        "RMSProp (ρ = 0.9, lr 0.01, δ = 0) sees a constant gradient. How large is its 10th step?",
        "`r_t = (1 - ρᵗ)g²`, so the step is `lr/√(1 - ρᵗ)`: at t = 10, `0.01/√(1 - 0.9¹⁰) ≈ "
        "0.01239`, tending to lr as r forgets its zero start.",
        _step_code(
            "g = 3.0\nopt = optim.RMSprop([w], lr=0.01, alpha=0.9, eps=0.0)",
            10,
            "0.01 / (1 - 0.9 ** 10) ** 0.5",
        ),
        items=(57,),
    ),
    Exercise(
        "Adam (lr 0.001, δ = 0) sees a constant gradient g = 0.3. How large is its 50th step?",
        "Both bias-corrected moments are exact for a constant gradient: `ŝ = g`, `r̂ = g²`, so "
        "every step is `lr = 0.001`.",
        _step_code(
            "g = 0.3\nopt = optim.Adam([w], lr=0.001, eps=0.0)",
            50,
            "0.001",
            said="""\
state = opt.state[w]
said = {"Both bias-corrected moments are exact for a constant gradient":
        abs(float(state["exp_avg"]) / (1 - 0.9 ** 50) - g) < 1e-12
        and abs(float(state["exp_avg_sq"]) / (1 - 0.999 ** 50) - g ** 2) < 1e-12,
        "so every step is lr = 0.001": max(abs(s - 0.001) for s in sizes) < 1e-12}
""",
        ),
        items=(58,),
    ),
    Exercise(
        "Explain why gradient descent from x = 2.5 and from x = 1.5 on `x sin x` ends in "
        "different minima, and what that says about initialization.",
        "Each start lies in a different basin: the derivative's sign sends the iterate downhill "
        "to the nearest minimum of its own basin, and with a small rate it never crosses the "
        "hill between them. Gradient descent is local (item 46): the start chooses the answer, "
        "which is why several starts (or seeds) are compared.",
        items=(44, 46),
    ),
    Exercise(
        "Nesterov takes the gradient at `w + αv` instead of w. On a parabola, when does that "
        "look-ahead help, and when does it change nothing?",
        "Where the velocity is about to overshoot, the look-ahead gradient already points back "
        "and brakes the step: fewer oscillations than momentum on a steep, well-conditioned "
        "valley. On a constant slope the gradient is the same at both points, so the two "
        "methods coincide.",
        items=(52, 51),
    ),
    Exercise(
        "Write the 'halve the rate when the loss rises' rule (item 54) as code, and give a "
        "landscape where it fails.",
        "`if loss > previous: lr /= 2`. It fails where the loss rises for a reason other than "
        "a too-large step: noisy mini-batch losses halve the rate on noise alone and freeze "
        "training; and on a plateau it never raises the rate back.",
        items=(54, 53),
    ),
    Exercise(
        "`f(w) = w⁴ - 2w²` is smooth but not convex. How many distinct minima does gradient "
        "descent reach from starts spread over [-2, 2] (the start 0 aside)?",
        "`f'(w) = 4w³ - 4w` vanishes at -1, 0 and 1; `f'' = 12w² - 4` is negative at 0 (a "
        "maximum) and positive at ±1: two minima, each the end of the starts on its side "
        "(item 46). A convex loss would have one. The code runs descentlab's SGD from 40 "
        "starts and counts the distinct ends.",
        """\
import torch
from descentlab import optim

starts = torch.arange(-20, 21, dtype=torch.float64) / 10     # -2, -1.9, ..., 2
w = torch.nn.Parameter(starts[starts != 0].clone())
n_starts = w.numel()
opt = optim.SGD([w], lr=0.02)
for _ in range(2000):
    x = w.detach()
    w.grad = 4 * x**3 - 4 * x
    opt.step()
measured = len(torch.unique(torch.round(w.detach(), decimals=6)))
curvature = 4 * 3                            # f'' = 12w² - 4
answer = 2
tol = 1e-12
misconception = 1                                # "descent finds the minimum"
print(f"distinct ends: {torch.unique(torch.round(w.detach(), decimals=6)).tolist()}")""",
        items=(46,),
    ),
)

L002 = (
    Exercise(
        "What fraction of the distinct examples does a bootstrap sample of n = 500 from 500 "
        "contain, on average?",
        "An example is missed by all n draws with probability `(1 - 1/n)ⁿ`, so the fraction is "
        "`1 - (1 - 1/500)^500` (≈ 1 - 1/e). The code averages 2,000 of descentlab's bagging "
        "draws (tolerance 0.5 %: the standard error is 0.05 %).",
        """\
import numpy as np
from descentlab.book.experiments import ensembles

answer = 1 - (1 - 1 / 500) ** 500
draws = ensembles.bagging(lambda idx, seed: len(np.unique(idx.numpy())) / 500, 500, 2000, seed=0)
measured = float(np.mean(draws))
tol = 0.005
se = float(np.std(draws) / len(draws) ** 0.5 / measured)   # relative
print(f"mean fraction {measured:.5f}")""",
        items=(67,),
    ),
    Exercise(
        "A convolution with a 7 × 7 kernel, stride 2 and padding 3 on a 224 × 224 image: how wide "
        "is its output?",
        "`⌊(224 + 2·3 - 7)/2⌋ + 1 = ⌊223/2⌋ + 1 = 112` (ResNet's first layer).",
        """\
import torch
from descentlab.problems import convarith

span = 224 + 2 * 3 - 7
answer = span // 2 + 1
measured = convarith.conv_output_shape(224, 7, stride=2, padding=3)[0]
torch_width = torch.nn.Conv2d(3, 1, 7, stride=2, padding=3)(torch.zeros(1, 3, 224, 224)).shape[-1]
assert torch_width == measured
tol = 1e-12
print("output width", measured, "(torch agrees)")""",
        items=(94,),
    ),
    Exercise(
        "AdamW with lr 0.01 and weight_decay 0.1 sees zero gradients for 100 steps. By what factor "
        "have the weights shrunk?",
        "Decoupled decay multiplies the weights by `1 - lr·wd = 0.999` each step: `0.999^100`.",
        """\
import torch
from descentlab import optim

factor = 1 - 0.01 * 0.1                      # 1 - lr·wd
answer = factor ** 100
w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
opt = optim.AdamW([w], lr=0.01, weight_decay=0.1)
for _ in range(100):
    w.grad = torch.zeros(1, dtype=torch.float64)
    opt.step()
measured = w.item()
tol = 1e-12
print(f"w after 100 steps {measured:.12f}")""",
        items=(85,),
    ),
    Exercise(
        "How many parameters does AlexNet's first convolution have: 96 kernels of 11 × 11 over "
        "3 channels, with biases?",
        "`96·3·11·11 + 96 = 34,944` (the lecture rounds it to 35k). The code counts a torch "
        "Conv2d's.",
        """\
import torch

conv = torch.nn.Conv2d(3, 96, kernel_size=11, stride=4)
measured = sum(p.numel() for p in conv.parameters())
answer = 96 * 3 * 11 * 11 + 96
tol = 1e-12
thousands = round(answer / 1000)                     # the lecture's "35k"
print(f"{measured} parameters")""",
        items=(95, 92),
    ),
    Exercise(
        "A 227 × 227 image through an 11 × 11 convolution with stride 4 and no padding: how "
        "wide is the output?",
        "`(227 - 11 + 2·0)/4 + 1 = 55`.",
        """\
import torch

out = torch.nn.Conv2d(3, 1, kernel_size=11, stride=4)(torch.zeros(1, 3, 227, 227))
measured = out.shape[-1]
padding = 0
answer = (227 - 11 + 2 * padding) // 4 + 1
tol = 1e-12
print(f"output {tuple(out.shape)}")""",
        items=(94,),
    ),
    Exercise(
        "A 1 × 1 convolution from 256 to 64 channels: how many parameters, biases included?",
        "`256·64 + 64 = 16,448`, against `256·64·9 + 64` = 147,520 for a 3 × 3 one: the "
        "bottleneck's saving (item 96).",
        """\
import torch

conv = torch.nn.Conv2d(256, 64, kernel_size=1)
measured = sum(p.numel() for p in conv.parameters())
answer = 256 * 64 + 64
tol = 1e-12
kernel_area = 3 * 3
three_by_three = sum(p.numel() for p in torch.nn.Conv2d(256, 64, kernel_size=3).parameters())
print(f"{measured} parameters, {three_by_three} for a 3 × 3 one")""",
        items=(96,),
    ),
    Exercise(
        "Convolve the signal `f = (1, 2, 3, 4)` with the kernel `k = (1, 0, -1)` by the "
        "textbook formula `(f * k)(t) = Σ_τ f(τ) k(t - τ)` (the 'valid' part: the two outputs "
        "where the kernel lies wholly over the signal). What is the first output? (torch's "
        "`conv1d` with the same kernel gives another number there: the solution says why.)",
        "The formula flips the kernel before sliding it: the first valid output is "
        "`f(0)·k(2) + f(1)·k(1) + f(2)·k(0) = 1·(-1) + 2·0 + 3·1 = 2` (the second: `4 - 2 = 2`). "
        "torch's `conv1d` does not flip: it computes the cross-correlation `Σ_τ f(t + τ) k(τ) "
        "= 1 - 3 = -2`, the negative here because this kernel is antisymmetric. A learned "
        "kernel absorbs the flip, so training is the same either way; comparing with a "
        "textbook formula is not. The code sums the formula's terms, and checks that torch's "
        "conv1d with the kernel flipped reproduces them.",
        """\
import torch

f = [1.0, 2.0, 3.0, 4.0]
k = [1.0, 0.0, -1.0]
by_formula = [sum(f[tau] * k[t - tau] for tau in range(len(f)) if 0 <= t - tau < len(k))
              for t in range(len(k) - 1, len(f))]
signal = torch.tensor(f, dtype=torch.float64)[None, None]
kernel = torch.tensor(k, dtype=torch.float64)[None, None]
correlation = torch.nn.functional.conv1d(signal, kernel).flatten().tolist()
flipped = torch.nn.functional.conv1d(signal, kernel.flip(-1)).flatten().tolist()
answer = by_formula[0]
measured = flipped[0]
tol = 1e-12
misconception = correlation[0]                       # "torch's conv1d is the formula"
slid = [sum(f[t + tau] * k[tau] for tau in range(len(k))) for t in range(len(f) - len(k) + 1)]
said = {"The formula flips the kernel before sliding it": by_formula == flipped != correlation,
        "torch's conv1d does not flip: it computes the cross-correlation": correlation == slid,
        "the negative here because this kernel is antisymmetric":
        k == [-x for x in k[::-1]] and correlation == [-x for x in by_formula]}
print("convolution by the formula :", by_formula)
print("torch conv1d, kernel as is :", correlation)
print("torch conv1d, kernel flipped:", flipped)""",
        items=(91,),
    ),
    Exercise(
        "In a bootstrap sample of size N = 1000 from 1000 examples, what fraction of the "
        "examples is never drawn?",
        "Each example is missed by one draw with probability `1 - 1/N`, by all N with "
        "`(1 - 1/N)ᴺ ≈ e⁻¹ ≈ 0.368`. These out-of-bag examples test a bagged model for free. "
        "The code draws 400 samples (tolerance 2 %).",
        """\
import torch

torch.manual_seed(3)
n = 1000
missed = [1 - torch.randint(0, n, (n,)).unique().numel() / n for _ in range(400)]
measured = sum(missed) / len(missed)
answer = (1 - 1 / n) ** n
tol = 0.02
misconception = 0.0                              # "every example is drawn"
print(f"never drawn: {measured:.4f}")""",
        items=(67, 68),
    ),
    Exercise(
        "SGD with lr 0.1 and weight_decay 0.01 sees a zero loss gradient. By what factor does "
        "each step shrink the weights?",
        "The penalty's gradient is `λw`, so a step gives `w(1 - ηλ) = 0.999·w`: weight decay "
        "is a constant pull toward 0 (item 85).",
        """\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.full((3,), 3.0, dtype=torch.float64))
opt = optim.SGD([w], lr=0.1, weight_decay=0.01)
w.grad = torch.zeros_like(w)
opt.step()
measured = float(w[0]) / 3.0
answer = 1 - 0.1 * 0.01
tol = 1e-12
print(f"factor {measured}")""",
        items=(85,),
    ),
    Exercise(
        "Why does k-fold cross-validation refit on all the training data at the end, and why "
        "may the test set never choose a hyperparameter?",
        "The folds only estimate how each setting generalizes; once chosen, the model should "
        "use every training example. A test set that chooses anything becomes part of "
        "training: its error is then optimistic and no longer estimates the error on unseen "
        "data.",
        items=(64, 62),
    ),
    Exercise(
        "Derive `E[(t - f̂)²] = bias² + variance + noise` for `t = f + ε`, `E[ε] = 0`.",
        "Write `t - f̂ = ε + (f - E f̂) + (E f̂ - f̂)`. The three terms are uncorrelated (ε is "
        "independent of the training set, and `E f̂ - f̂` has mean 0), so the expected square is "
        "`σ² + (f - E f̂)² + E(f̂ - E f̂)²`: noise, squared bias, variance.",
        items=(66, 65),
    ),
    Exercise(
        "Bagging averages models; boosting chains them. Which of bias and variance does each "
        "mainly reduce, and why?",
        "Averaging B models with similar errors keeps their bias but divides the independent "
        "part of their variance by up to B: bagging reduces variance. Boosting fits each new "
        "weak learner to what the sum so far gets wrong, so the sum becomes more flexible: it "
        "mainly reduces bias (and can overfit).",
        items=(68, 69),
    ),
    Exercise(
        "Why does AdaGrad stop learning in a long run, and how do RMSProp and Adadelta fix it?",
        "Its sum G of squared gradients only grows, so `η/√G` falls toward 0 even where the "
        "loss still has far to go. RMSProp and Adadelta replace the sum by an exponential "
        "moving average: old gradients are forgotten and the rate stays at the scale of the "
        "recent ones (item 79: an EMA instead of a window, for memory).",
        items=(77, 78, 79, 80),
    ),
    Exercise(
        "Adadelta has no learning rate. What sets the size of its steps, and in what units?",
        "`ΔW = -√(H + ε)/√(G + ε)·g`: the ratio of the RMS of past updates to the RMS of the "
        "gradients. Its numerator carries the parameter's units, so the update has the units "
        "of W, not of W per gradient; ε sets the first steps' size, while H is still 0.",
        items=(78,),
    ),
    Exercise(
        "Why might a model stopped early generalize better than the one trained to the end, "
        "and what does early stopping cost?",
        "Training error keeps falling while validation error, after a point, rises: the model "
        "starts fitting noise. Stopping at the validation minimum limits how far the weights "
        "travel from their start, much like a norm penalty. It costs a validation set and the "
        "evaluations along the way.",
        items=(84, 85),
    ),
    Exercise(
        "Batch norm divides by `√(σ²_B + ε)`. What goes wrong with batches of size 1, and why "
        "does the model behave differently at test time?",
        "With one example `x̂ = 0` for every input: the layer erases its input. At test time the "
        "batch statistics are replaced by running averages collected in training, so one "
        "example's output no longer depends on the others in its batch.",
        items=(90,),
    ),
    Exercise(
        "Why do large batches tend to find sharp minimizers (item 71), and why would a sharp "
        "minimum generalize worse?",
        "Small batches add gradient noise whose scale grows with `η/B`; it shakes the iterate "
        "out of narrow basins, so it settles in wide ones. At a sharp minimum a small shift "
        "between the training and the test loss surfaces raises the loss a lot; at a flat one "
        "it barely changes.",
        items=(71, 70),
    ),
)

L003 = (
    Exercise(
        "On the quadratic with κ = 400, how many times fewer steps does momentum with the "
        "optimal `η, β` need than gradient descent with its optimal rate to shrink the error "
        "by a factor of e^5?",
        "Steps to shrink by `e⁵` are `5/(-ln q)` for a per-step factor `q`. Gradient descent: "
        "`q = (κ-1)/(κ+1)`; momentum: `q = (√κ-1)/(√κ+1)`. The answer is the ratio of the two "
        "logarithms; the code measures both rates on descentlab's quadratic over steps 1,000-3,000 "
        "(early on, momentum's error carries a factor t from the critically damped extremes).",
        """\
import math
import torch
from descentlab.problems import landscapes, trajectories

kappa = 400.0
q_gd, q_hb = (kappa - 1) / (kappa + 1), (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
answer = math.log(q_hb) / math.log(q_gd)
f = landscapes.get("quadratic", kappa=kappa)
mu, L = 1 / kappa, 1.0
gd = trajectories.run(f, "sgd", [f.start], steps=3000, lr=2 / (L + mu), dtype=torch.float64)
hb = trajectories.run(f, "momentum", [f.start], steps=3000, lr=4 / (1 + mu**0.5) ** 2,
                      hyper={"momentum": q_hb**2}, dtype=torch.float64)


def per_step(run, a=1000, b=3000):  # the error's shrink factor per step, late in the run
    d = run.paths[0].norm(dim=-1)
    return float(d[b] / d[a]) ** (1 / (b - a))


measured = math.log(per_step(hb)) / math.log(per_step(gd))
tol = 0.01


def steps_to_shrink(run, a=1000):  # the steps after step a until the error is e^5 times smaller
    d = run.paths[0].norm(dim=-1)
    return int((d[a:] <= d[a] * math.exp(-5)).nonzero()[0])


said = {"The answer is the ratio of the two logarithms":
        abs(steps_to_shrink(gd) / steps_to_shrink(hb) / answer - 1) < 0.05}
print(f"momentum needs {answer:.2f}x fewer steps (theory), {measured:.2f}x measured")""",
        items=(102, 114),
    ),
    Exercise(
        "Adam with β₂ = 0.999 and β₁ = 0.9 sees the gradient g = 4 at every step. What is "
        "`exp_avg_sq` (the uncorrected r) after 50 steps?",
        "`r_t = (1-β₂) Σ_{k<t} β₂^k g² = g² (1 - β₂^t)`: {{r_{50}=answer}}.",
        """\
import torch
from descentlab import optim

answer = 16 * (1 - 0.999 ** 50)
w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.Adam([w], lr=1e-3, betas=(0.9, 0.999))
for _ in range(50):
    w.grad = torch.tensor([4.0], dtype=torch.float64)
    opt.step()
measured = float(opt.state[w]["exp_avg_sq"])
tol = 1e-10
print(f"r_50 = {measured:.10f}, 16 (1 - 0.999^50) = {answer:.10f}")""",
        items=(111,),
    ),
    Exercise(
        "Momentum in the velocity form with ρ = 0.05 and α = 0.8 descends a constant slope "
        "∇J = 2. How far does the iterate move on its 10th step?",
        "`v_t = α v_{t-1} - ρ∇J`, so `|v_t| = ρ∇J (1 - α^t)/(1 - α)`: {{|v_{10}|=answer}}.",
        """\
import torch
from descentlab import optim

push, keep = 0.05 * 2, 1 - 0.8                # ρ∇J and 1 - α
answer = push * (1 - 0.8 ** 10) / keep
w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.Momentum([w], lr=0.05, momentum=0.8, form="velocity")
for t in range(10):
    before = w.item()
    w.grad = torch.tensor([2.0], dtype=torch.float64)
    opt.step()
measured = before - w.item()
tol = 1e-12
print(f"10th step {measured:.12f}, formula {answer:.12f}")""",
        items=(99,),
    ),
    Exercise(
        "AdaGrad (lr 0.1, eps 0) sees a constant gradient g = 3. How large is its 25th step?",
        "`r_t = t g²`, so the step is `0.1 g/√(t g²) = 0.1/√t`: 0.02 at t = 25, whatever g is.",
        """\
import torch
from descentlab import optim

answer = 0.1 / 25 ** 0.5
w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.Adagrad([w], lr=0.1, eps=0.0)
positions = [w.item()]
while len(positions) <= 25:
    w.grad = torch.full_like(w, 3.0)
    opt.step()
    positions.append(w.item())
measured = positions[-2] - positions[-1]
tol = 1e-12
print(f"25th step {measured:.12f} (0.1/sqrt(25) = {answer})")""",
        items=(108,),
    ),
    Exercise(
        "In the cs231n form `v = ρv + ∇f, x -= αv` with ρ = 0.9 and α = 0.01, how large are the "
        "steps on a constant slope ∇f = 1, once settled?",
        "`v → ∇f/(1 - ρ) = 10`, so the step is `α·10 = 0.1`: the same as form (5.12) with "
        "rate ρ' = α (item 101).",
        _step_code(
            "g = 1.0\nvelocity = g / (1 - 0.9)\nopt = optim.Momentum([w], lr=0.01, momentum=0.9)",
            400,
            "0.01 * velocity",
        ),
        items=(101, 100),
    ),
    Exercise(
        "Without bias correction, how many times larger than the corrected one is Adam's first "
        "step, for β₁ = 0.9 and β₂ = 0.999?",
        "The uncorrected moments are `(1 - β₁)g` and `(1 - β₂)g²`, so the step is "
        "{{(1 - \\beta_1)/\\sqrt{1 - \\beta_2}=answer}} times the corrected `lr` "
        "(item 112).",
        """\
import torch
from descentlab import optim

def first_step(**kw):
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = optim.Adam([w], lr=0.001, eps=0.0, **kw)
    w.grad = torch.full_like(w, 0.5)
    opt.step()
    return abs(float(w))

measured = first_step(bias_correction=False) / first_step()
answer = (1 - 0.9) / (1 - 0.999) ** 0.5
tol = 1e-9
print(f"ratio {measured:.4f}")""",
        items=(112, 111),
    ),
    Exercise(
        "Exponential decay `α₀e^{-kt}` with α₀ = 0.1 and k = 0.01: what is the rate at t = 100, "
        "and which torch scheduler's gamma gives the same schedule?",
        "{{\\alpha_{100}=answer}}; torch's ExponentialLR with `gamma = e^{-k}` multiplies by that "
        "factor each step. The code drives descentlab's SGD with it.",
        """\
import math
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1))
opt = optim.SGD([w], lr=0.1)
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=math.exp(-0.01))
rates = []
for _ in range(100):
    opt.step()
    sched.step()
    rates.append(opt.param_groups[0]["lr"])
measured = opt.param_groups[0]["lr"]
answer = 0.1 * math.exp(-0.01 * 100)
tol = 1e-6
said = {"multiplies by that factor each step":
        max(abs(b / a - math.exp(-0.01)) for a, b in zip(rates, rates[1:])) < 1e-12}
print(f"lr at t = 100: {measured:.6f}")""",
        items=(115,),
    ),
    Exercise(
        "Item 98 says that momentum's averaged velocity helps against gradient noise. On the "
        "noisy quadratic `f = w²/2` whose gradient carries noise of standard deviation 1, run SGD "
        "at η = 0.1 and heavy ball with β = 0.9 at η = 0.01, the same effective rate "
        "`η/(1 - β)`: what is the ratio of momentum's noise floor (the mean loss once it "
        "settles) to SGD's?",
        "About 0.95: almost nothing. The velocity's *direction* is less noisy, its noise-to-signal "
        "ratio `√((1 - β)/(1 + β))` times a gradient's (item 98), but the velocity adds up about "
        "`1/(1 - β)` gradients, so the *step* grows by the same factor, and the two cancel. The "
        "stationary variance of heavy ball, from the discrete Lyapunov equation of the momentum "
        "chapter, is `ησ²(1 + β)/(h(1 - β)(2(1 + β) - ηh))`; SGD's is `ησ²/(h(2 - ηh))`. At the "
        "same `η/(1 - β)` their ratio is `(1 + β)(2 - η_SGD h)/(2(1 + β) - η h)`, within a few "
        "percent of 1 when ηh is small, and the runs of descentlab's optimizers measure it: 1 "
        "itself (the same effective rate, the same floor) misses the (1 + β) terms and is "
        "refused. "
        "Momentum cures bad conditioning; against noise it takes a smaller rate, a decaying "
        "schedule or a larger batch.",
        """\
import torch
from descentlab.problems import landscapes, trajectories

def floor(optimizer, lr, **hyper):
    noisy = landscapes.noisy_quadratic(h=1.0, sigma=1.0, dim=1)
    runs = trajectories.run(noisy, optimizer, torch.ones(2000, 1, dtype=torch.float64), 400,
                            lr=lr, hyper=hyper, seed=0)
    return float(runs.losses[:, 200:].mean())      # the mean loss once it has settled

sgd, heavy_ball = floor("sgd", 0.1), floor("momentum", 0.01, momentum=0.9)
measured = heavy_ball / sgd

def variance(lr, beta):                              # h = sigma = 1
    return lr * (1 + beta) / ((1 - beta) * (2 * (1 + beta) - lr))

answer = variance(0.01, 0.9) / variance(0.1, 0.0)
tol = 0.02                                           # the runs' spread is under 1 %
# what the page must refuse: "the same effective rate, the same floor" (1) and item 98's
# noise-to-signal ratio squared, read as the floor's ratio ((1 - β)/(1 + β))
misconception = (1.0, (1 - 0.9) / (1 + 0.9))
# the velocity of heavy ball (β = 0.9) on gradients of mean 1 and noise 1, once it has settled
noise = torch.randn(300, 4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
velocity = torch.zeros(4000, dtype=torch.float64)
for t in range(300):
    velocity = 0.9 * velocity + 1.0 + noise[t]
ratio = float(velocity.std() / velocity.mean())      # a gradient's is 1
said = {
    "The velocity's direction is less noisy, its noise-to-signal ratio":
        abs(ratio / ((1 - 0.9) / (1 + 0.9)) ** 0.5 - 1) < 0.1,
    "so the step grows by the same factor, and the two cancel":
        abs(float(velocity.mean()) * (1 - 0.9) - 1) < 0.05 and abs(measured - 1) < 0.1,
    "The stationary variance of heavy ball": abs(measured / answer - 1) < tol,
    "within a few percent of 1 when ηh is small":
        abs(answer - 1) < 0.1 < abs(variance(0.1, 0.9) / variance(1.0, 0.0) - 1),
    "against noise it takes a smaller rate": variance(0.005, 0.9) < variance(0.01, 0.9),
}
print(f"noise floors: SGD {sgd:.4f}, heavy ball {heavy_ball:.4f}")
print(f"ratio {measured:.3f} measured, {answer:.3f} from the Lyapunov solution")""",
        items=(98, 99),
    ),
    Exercise(
        "Show that (5.12) and the cs231n form give the same iterates for a constant rate, and "
        "say why they differ once the rate changes.",
        "With `v' = -v/ρ` (5.12's v scaled), `v' = αv' + g` and `Θ -= ρv'`: the cs231n form "
        "with its rate ρ. The scaling absorbs ρ into the velocity; when ρ changes mid-run, "
        "(5.12)'s stored velocity already holds the old rate while the cs231n form applies the "
        "new one to the whole velocity.",
        items=(101, 99),
    ),
    Exercise(
        "Carry out the change of variables `x̃ = x + ρv` in Nesterov's update (5.13) to get an "
        "update in x̃ alone.",
        "From `v_new = ρv - η∇f(x̃)` and `x_new = x + v_new`: `x̃_new = x_new + ρv_new = x̃ - ρv + "
        "(1 + ρ)v_new`. Every gradient is now taken at the stored point x̃, as in item 105: the "
        "form that ordinary optimizer code (one gradient per stored parameter) runs.",
        items=(105, 104),
    ),
    Exercise(
        "Why can momentum leave a saddle point faster than SGD, on the saddle of Fig. 5-13?",
        "Near the saddle the gradient along the escape direction is tiny, so SGD's steps are "
        "tiny. The velocity sums those small gradients over `1/(1 - α)` steps, so the escape "
        "speeds up geometrically sooner; adaptive methods go further, dividing the tiny "
        "gradient by its own small RMS (item 114).",
        items=(102, 114),
    ),
    Exercise(
        "AdaGrad weighs old and recent gradients alike. Describe a problem where that is "
        "exactly wrong.",
        "Non-stationary ones: a loss whose gradient is large early (far from the optimum, or a "
        "warm-up phase) and small later leaves r dominated by the early gradients, so the late "
        "steps are tiny though the gradient's scale changed. RMSProp's moving average forgets "
        "the early phase (items 109-110).",
        items=(109, 110),
    ),
    Exercise(
        "Why are β₁ = 0.9, β₂ = 0.999 sensible defaults, and what would β₂ = 0.9 risk?",
        "β₁ = 0.9 averages the direction over about 10 steps; β₂ = 0.999 estimates the "
        "gradient's scale over about 1000, so the denominator is stable. With β₂ = 0.9 a "
        "single small gradient shrinks v fast and the next step blows up (item 113).",
        items=(113, 111),
    ),
)

L004 = (
    Exercise(
        "What is the entropy, in nats, of a loaded die that shows 6 with probability 1/2 and "
        "each other face with probability 1/10?",
        "`H = -(½ log ½ + 5·(1/10) log(1/10)) = ½ log 2 + ½ log 10`. The code computes it as the "
        "cross-entropy of the die with itself through descentlab's `cross_entropy` (with "
        "probabilities as targets), where `H(p, p) = H(p)`.",
        """\
import math
import torch
from descentlab import losses

others = 6 - 1                               # the faces of probability 1/10
answer = 0.5 * math.log(2) + 0.5 * math.log(10)
p = torch.tensor([[0.1, 0.1, 0.1, 0.1, 0.1, 0.5]], dtype=torch.float64)
measured = float(losses.get("cross_entropy")(p.log(), p))
tol = 1e-12
print(f"H = {measured:.12f} nats")""",
        items=(118,),
    ),
    Exercise(
        "Adam's first step with the defaults (lr 1e-3, ε 1e-8) on a parameter whose gradient is "
        "-0.02: how far does it move?",
        "At t = 1 the corrected moments are `m̂ = g` and `v̂ = g²`, so the step is "
        "`lr·g/(|g| + ε)`: `1e-3 · 0.02/(0.02 + 1e-8)`, up (against the negative gradient).",
        """\
import torch
from descentlab import optim

answer = 1e-3 * 0.02 / (0.02 + 1e-8)
w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = optim.Adam([w], lr=1e-3)
w.grad = torch.tensor([-0.02], dtype=torch.float64)
opt.step()
measured = w.item()
tol = 1e-12
print(f"moved {measured:.12f}")""",
        items=(130,),
    ),
    Exercise(
        "KL(P ‖ Q) for P = (0.5, 0.5) and Q = (0.9, 0.1)?",
        "`0.5 log(0.5/0.9) + 0.5 log(0.5/0.1) = 0.5 log(25/9)`; the code asks descentlab's "
        "`kl_div_forward`.",
        """\
import math
import torch
from descentlab import losses

answer = 0.5 * math.log(25 / 9)
p = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
q = torch.tensor([[0.9, 0.1]], dtype=torch.float64)
measured = float(losses.get("kl_div_forward", input_is_log_probs=True)(q.log(), p))
tol = 1e-12
print(f"KL = {measured:.12f}")""",
        items=(121,),
    ),
    Exercise(
        "Errors 2 and 10 (|3 - 1| and |11 - 1|): what is their mean squared error?",
        "`(4 + 100)/2 = 52`, against an L1 mean of 6: the square weighs the large error 25 "
        "times the small one (items 116-117).",
        """\
import torch

pred, target = torch.tensor([3.0, 11.0]), torch.tensor([1.0, 1.0])
measured = float(torch.nn.MSELoss()(pred, target))
squares = (2 ** 2, 10 ** 2)
answer = sum(squares) / 2
tol = 1e-12
l1 = float(torch.nn.L1Loss()(pred, target))
weight = 10 ** 2 / 2 ** 2                            # the large error's weight over the small's
per_error = torch.nn.MSELoss(reduction="none")(pred, target)
said = {"the square weighs the large error 25 times the small one":
        abs(float(per_error[1] / per_error[0]) - 25) < 1e-12}
print(f"MSE {measured}, L1 {l1}")""",
        items=(117, 116),
    ),
    Exercise(
        "What is the entropy, in nats, of a fair six-sided die?",
        "`H = -Σ (1/6) ln(1/6) = ln 6 ≈ 1.792`: the most uncertain distribution over six outcomes.",
        """\
import math
import torch

measured = float(torch.distributions.Categorical(probs=torch.full((6,), 1 / 6)).entropy())
answer = math.log(6)
tol = 1e-6
print(f"entropy {measured:.5f} nats")""",
        items=(118,),
    ),
    Exercise(
        "torch's CrossEntropyLoss for the logits (2, 1, 0) and the target class 0?",
        "It applies the softmax itself: `-log(e²/(e² + e + 1)) = log(1 + e⁻¹ + e⁻²) ≈ 0.4076` "
        "(item 120).",
        """\
import math
import torch

loss = torch.nn.CrossEntropyLoss()(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0]))
measured = float(loss)
answer = math.log(1 + math.exp(-1) + math.exp(-2))
tol = 1e-6
print(f"cross-entropy {measured:.5f}")""",
        items=(120, 119),
    ),
    Exercise(
        "A triplet with `d(anchor, positive) = 1`, `d(anchor, negative) = 1.5` and margin 1: "
        "what is the triplet margin loss?",
        "`max(0, d(a, p) - d(a, n) + margin) = max(0, 1 - 1.5 + 1) = 0.5`: the negative is not "
        "yet a margin further than the positive (item 123).",
        """\
import torch

a = torch.tensor([[0.0, 0.0]])
p = torch.tensor([[1.0, 0.0]])
n = torch.tensor([[0.0, 1.5]])
measured = float(torch.nn.TripletMarginLoss(margin=1.0, eps=0.0)(a, p, n))
answer = max(0.0, 1 - 1.5 + 1)
tol = 1e-5
print(f"triplet loss {measured:.5f}")""",
        items=(123,),
    ),
    Exercise(
        "The forward difference `(f(x + h) - f(x))/h` of `f = x²` at x = 3 with h = 0.1?",
        "`((3.1)² - 9)/0.1 = 6.1`: the derivative 6 plus an error h, which vanishes as h → 0 "
        "(item 124). The code computes it in float64.",
        """\
import torch

x, h = torch.tensor(3.0, dtype=torch.float64), 0.1
measured = float(((x + h) ** 2 - x ** 2) / h)
square = 3.0 ** 2                            # f(3)
answer = 2 * 3.0 + 0.1
tol = 1e-9
print(f"forward difference {measured:.6f}")""",
        items=(124,),
    ),
    Exercise(
        "AdaGrad (lr 0.1) with `h ← h + g²` sees the gradient 3 four times. How large is the "
        "fourth step?",
        "`h = 4·9 = 36`, so the step is `0.1·3/6 = 0.05`: a parameter that moved a lot gets a "
        "smaller rate (item 128).",
        _step_code(
            "g = 3.0\ng2 = g ** 2\nh = 4 * g2\nroot = h ** 0.5\n"
            "opt = optim.Adagrad([w], lr=0.1, eps=0.0)",
            4,
            "0.1 * 3 / root",
        ),
        items=(128,),
    ),
    Exercise(
        "Forward KL fits a single Gaussian Q to a two-peaked P by covering both peaks; reverse "
        "KL picks one. Explain from the formulas.",
        "`KL(P‖Q) = E_P[log P/Q]` is huge wherever P > 0 and Q ≈ 0, so Q must cover every "
        "peak. `KL(Q‖P) = E_Q[log Q/P]` is huge wherever Q > 0 and P ≈ 0, so Q must avoid the "
        "valley between the peaks and sits on one (item 122).",
        items=(122, 121),
    ),
    Exercise(
        "RMSProp and AdaGrad differ by one line. Which, and what does it change for a long run?",
        "AdaGrad adds `g²` to a sum; RMSProp mixes it into `γG + (1 - γ)g²`. The sum grows "
        "without bound and the rate decays; the average forgets, so the rate tracks the "
        "recent gradients' scale (item 129).",
        items=(129, 128),
    ),
    Exercise(
        "Why is 'try several optimizers' sound advice rather than a failure of theory?",
        "Each method's advantage rests on assumptions about the landscape (curvature, noise, "
        "sparsity) that a real network's loss meets only in part and in unknown proportion; "
        "a comparison with tuned rates and several seeds measures what theory cannot promise "
        "(item 131).",
        items=(131, 125),
    ),
)

#: lecture seed -> its exercises
PRACTICE: dict[str, tuple[Exercise, ...]] = {
    "000": L000,
    "001": L001,
    "002": L002,
    "003": L003,
    "004": L004,
}
