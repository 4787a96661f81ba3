"""Teaching text of lecture 002, generalization, regularization and CNNs (items 61-96)."""

from __future__ import annotations

from typing import Any

from descentlab.book.bibliography import cite, cite_in
from descentlab.book.model import Play
from descentlab.book.texts._cells import by_hand

__all__ = ["TEACH"]

#: polynomial fits of growing degree to noisy samples of sin: training and test error
_POLY_CELL = """\
import torch
from descentlab.problems import data

# 30 training points: x ~ U(-1, 1), y = sin(2 pi x) + noise of std 0.3
x_tr, y_tr = data.sample_regression(30, noise_std=0.3, seed=0)
x_te, y_te = data.sample_regression(2000, noise_std=0.3, seed=1)
def features(x, degree):
    return torch.cat([x ** k for k in range(degree + 1)], dim=1)
for degree in (1, 5, 9):
    A = features(x_tr.double(), degree)
    w = torch.linalg.lstsq(A, y_tr.double()).solution
    train = float(((A @ w - y_tr.double()) ** 2).mean())
    test = float(((features(x_te.double(), degree) @ w - y_te.double()) ** 2).mean())
    gap = test - train
    print(f"degree {degree:2d}: train MSE {train:.3f}, test MSE {test:.3f}, gap {gap:+.3f}")"""

#: bias and variance of polynomial fits over many training sets
_BIAS_VARIANCE_CELL = """\
import torch
from descentlab.problems import data

truth = data.regression_true_fn("sin")
x_te = torch.linspace(-1, 1, 200, dtype=torch.float64)[:, None]
def features(x, degree):
    return torch.cat([x ** k for k in range(degree + 1)], dim=1)
noise = 0.3
for degree in (1, 3, 5, 7):
    preds = []
    for seed in range(200):                         # 200 training sets of 30 points
        x, y = data.sample_regression(30, noise_std=noise, seed=seed)
        w = torch.linalg.lstsq(features(x.double(), degree), y.double()).solution
        preds.append(features(x_te, degree) @ w)
    preds = torch.stack(preds)
    bias2 = float(((preds.mean(0) - truth(x_te).double()) ** 2).mean())
    variance = float(preds.var(0).mean())
    print(f"degree {degree}: bias^2 {bias2:.4f}  variance {variance:.4f}  "
          f"expected test error = {bias2 + variance + noise ** 2:.4f}")"""

_FORMULA_NOTE = "The cell runs descentlab's optimizer beside the rule written out by hand."

TEACH: dict[int, dict[str, Any]] = {
    61: dict(
        explain="""
Gradient descent uses first derivatives only (it is first order) and improves the current
point step by step (it is iterative). What it can promise is a point where the gradient
vanishes: on a convex loss the global minimum, in general a local minimum or, rarely, a
saddle it stalls near. Nothing in the method looks beyond the local slope.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("himmelblau")               # four minima of equal value
starts = [[-4.0, 4.0], [4.0, 4.0], [-4.0, -4.0], [4.0, -4.0], [0.0, 0.0]]
run = trajectories.run(f, "sgd", starts, steps=500, lr=0.01)
for s, end, loss in zip(starts, run.paths[:, -1].tolist(), run.losses[:, -1].tolist()):
    print(f"start {s} -> {[round(v, 3) for v in end]}, f = {loss:.2e}")""",
        play=Play(
            "himmelblau",
            {"sgd": {"lr": 0.01}},
            steps=300,
            starts=((-4.0, 4.0), (4.0, 4.0), (-4.0, -4.0), (4.0, -4.0)),
        ),
    ),
    62: dict(
        explain="""
Training error measures how well the model fits the data it was fitted to; what matters is
the error on new data from the same distribution. The generalization gap is the difference
between the two. It grows with the model's capacity and shrinks with more data: a model
with as many free parameters as examples can fit the training set exactly, noise included,
and then predicts new points badly.""",
        code=_POLY_CELL,
    ),
    63: dict(
        explain="""
Underfitting: the model cannot represent the pattern (a line through a sine), so both
training and test errors are high; that is bias. Overfitting: the model is flexible enough
to follow the noise of its particular training set, so the training error is tiny and the
test error large; that is variance. In the cell (30 noisy points of `sin 2πx`) the line
underfits, degree 5 fits, and degree 9 follows the noise and fails badly between and
beyond the training points.""",
        code=_POLY_CELL,
    ),
    64: dict(
        explain="""
To choose a hyperparameter without touching the test set, split the training data into `k`
folds; train on `k - 1`, score on the held-out one, rotate, and average the `k` scores. Pick
the best setting, then refit on all the training data. The test set is used once, at the
end, to report; using it to choose would make its score optimistic. descentlab's
`fold_indices` is what `compare --cv` uses: every example is validated exactly once, never
trained on in its own fold.""",
        code="""\
import numpy as np
from descentlab.problems import data

y = np.array([0, 1] * 10)
folds = data.fold_indices(y, 5, seed=0, stratify=True)
for i, (train, val) in enumerate(folds):
    print(f"fold {i}: validate on {sorted(val.tolist())}, overlap with train: "
          f"{len(set(train.tolist()) & set(val.tolist()))}")
print("every example validated once:",
      sorted(int(i) for _, v in folds for i in v) == list(range(len(y))))""",
    ),
    65: dict(
        explain="""
Think of the training set as random. Bias is how far the *average* prediction (over training
sets) is from the truth: a systematic error. Variance is how much the predictions scatter
around their own average from one training set to another: an inconsistency. A dartboard
picture: bias is the distance of the cluster's centre from the bull's-eye, variance the
cluster's spread.""",
        code=_BIAS_VARIANCE_CELL,
    ),
    66: dict(
        explain="""
For a target `t = f(x) + ε` with noise of variance `σ²`, and a prediction `f̂(x)` that
depends on the random training set, expand the square around `E[f̂]`:
`E[(t - f̂)²] = (f - E[f̂])² + E[(f̂ - E[f̂])²] + σ²`; the cross terms vanish because the
noise has mean 0 and is independent of the training set, and `f̂ - E[f̂]` has mean 0. So the
expected error is bias² + variance + noise. The noise is a floor no model removes; a more
flexible model trades bias for variance, which is the "cannot reduce both" of the lecture
(for a fixed amount of data).""",
        code=_BIAS_VARIANCE_CELL,
    ),
    67: dict(
        explain="""
A bootstrap sample draws `n` examples from `n` with replacement. The chance that a given
example is never drawn is `(1 - 1/n)ⁿ → 1/e`, so each sample holds about 63.2 % of the
distinct examples, some several times. Fitting a model on each of many samples and looking
at the spread of their predictions estimates how much the fit depends on the particular
data: a standard error without a formula.""",
        code="""\
import numpy as np
from descentlab.book.experiments import ensembles

n = 1000
draws = ensembles.bagging(lambda idx, seed: idx.numpy(), n, 100, seed=0)
distinct = np.mean([len(np.unique(d)) / n for d in draws])
print(f"distinct examples per bootstrap sample: {distinct:.4f} (1 - 1/e = {1 - np.exp(-1):.4f})")
values = np.random.default_rng(0).normal(1.0, 2.0, 400)
means = ensembles.bagging(lambda idx, seed: values[idx.numpy()].mean(), 400, 400, seed=1)
print(f"bootstrap standard error of the mean {np.std(means, ddof=1):.4f}, "
      f"sigma/sqrt(n) {values.std() / 20:.4f}")""",
    ),
    68: dict(
        explain="""
Bagging (bootstrap aggregating) fits one model per bootstrap sample and averages their
predictions. If each model's error has variance `σ²` and two models' errors correlate by
`ρ`, the average of `M` models has variance `ρσ² + (1-ρ)σ²/M`: the independent part
shrinks with `M`, the shared part stays. It helps high-variance models (deep trees,
overfitting networks) and does little for a model whose error is mostly bias.""",
        code="""\
import torch

torch.manual_seed(0)
sigma2, rho = 1.0, 0.3
for M in (1, 5, 25):
    shared = torch.randn(20000, 1) * (rho * sigma2) ** 0.5
    own = torch.randn(20000, M) * ((1 - rho) * sigma2) ** 0.5
    avg = (shared + own).mean(1)                     # the average of M correlated errors
    print(f"M = {M:2d}: variance {avg.var().item():.3f}, "
          f"formula rho s^2 + (1-rho) s^2/M = {rho * sigma2 + (1 - rho) * sigma2 / M:.3f}")""",
    ),
    69: dict(
        explain="""
Boosting builds the ensemble in sequence: each new weak learner is trained with more weight
on the examples the ensemble so far gets wrong, and is added with a weight that grows with
its accuracy. AdaBoost (SAMME for several classes) multiplies a misclassified example's
weight by `exp(α)` with `α = log((1 - err)/err) + log(K - 1)`. Where bagging reduces
variance, boosting mainly reduces bias: many stumps, each a single threshold on one axis,
add up to a boundary no stump can draw (in the cell, a disc: 61 % for one stump, 85 % for
30).""",
        code="""\
import math
import torch

torch.manual_seed(0)
x = torch.rand(400, 2) * 2 - 1
y = ((x**2).sum(1) < 0.5).long() * 2 - 1   # a disc: no single stump separates it
w = torch.full((400,), 1 / 400)
score = torch.zeros(400)
for rnd in range(30):
    best = None
    for dim in (0, 1):
        for thr in torch.linspace(-0.9, 0.9, 19):
            for sign in (1, -1):
                pred = sign * torch.where(x[:, dim] > thr, 1, -1)
                err = float(w[pred != y].sum())
                if best is None or err < best[0]:
                    best = (err, pred)
    err, pred = best
    alpha = 0.5 * math.log((1 - err) / max(err, 1e-12))
    score += alpha * pred
    w = w * torch.exp(-alpha * y * pred)
    w = w / w.sum()
    if rnd in (0, 4, 29):
        acc = float((torch.sign(score) == y).float().mean())
        print(f"after {rnd + 1:2d} stumps: training accuracy {acc:.3f}")""",
    ),
    70: dict(
        explain="""
Batch size moves along one line: `B = 1` (stochastic) gives the noisiest, cheapest steps;
`B = N` (batch) the exact gradient at the full cost; mini-batches sit between. The noise's
variance is `tr(Σ)/B` (item 14), so doubling `B` halves it, but also halves the number of
steps per epoch; past a "critical" batch size the extra accuracy buys little.""",
        code="""\
import torch

torch.manual_seed(0)
X, y = torch.randn(2048, 4), torch.randn(2048)
w = torch.zeros(4)
per = 2 * (X @ w - y)[:, None] * X
full = per.mean(0)
for B in (1, 16, 256, 2048):
    idx = torch.stack([torch.randperm(2048)[:B] for _ in range(300)])
    err = (per[idx].mean(1) - full).pow(2).sum(1).mean().item()
    print(f"B = {B:4d}: mean squared distance of the batch gradient from the full one "
          f"{err:.5f}")""",
    ),
    71: dict(
        explain="\n"
        + cite("keskar2017")
        + """ trained the same networks with small and large batches and found the
large-batch solutions sharper (the loss rises faster around them) and worse on test data.
Their argument: SGD's noise, larger at small batches, kicks the iterate out of narrow
basins, and flat basins are more robust to the shift between training and test loss. The
effect depends on the setting: a tuned learning rate that grows with the batch closes much
of the gap, and sharpness depends on the parameterization. The book's card measures it on a
small fully connected network trained on MNIST-1D (the full build: four batch sizes, five
seeds, the paper's two box sizes; the quick build: two batch sizes, two seeds, one box), every
run stopped at the same training loss; it puts the ratio of the
largest to the smallest batch's sharpness, with its interval, beside the paper's (F1 on
MNIST: 1.23 against 205.14, about 167x), and marks any box size where the ratio is not above
1.""",
        code="""\
import torch


def sharpness(w, loss_fn, eps=1e-2, tries=200):
    \"\"\"Keskar's measure: the largest loss rise within a box of relative size eps.\"\"\"
    base = loss_fn(w).item()
    box = eps * w.abs().clamp(min=1e-3)
    return max(loss_fn(w + box * (2 * torch.rand_like(w) - 1)).item() - base for _ in range(tries))


def narrow(w):  # a sharp minimum
    return (50 * (w - 0.3) ** 2).sum()


def wide(w):  # a flat one, same place
    return (0.5 * (w - 0.3) ** 2).sum()


w = torch.full((1,), 0.31)
print(f"rise within a 1 % box: sharp basin {sharpness(w, narrow):.2e}, "
      f"flat basin {sharpness(w, wide):.2e}")""",
    ),
    72: dict(
        explain="""
`W ← W - ηg` is the whole of SGD; all its difficulty is in `η`. The right value depends on
the largest curvature (above `2/L` it diverges), on the batch size (noise), and changes
during training; there is no formula for it on a network, so it is found by search (item
17) and usually scheduled.""",
        code="""\
from descentlab.problems import landscapes, trajectories

for land in ("ravine", "rosenbrock", "beale"):
    f = landscapes.get(land)
    finals = {}
    for lr in (1e-4, 1e-3, 1e-2, 1e-1):
        run = trajectories.run(f, "sgd", [f.start], steps=300, lr=lr)
        finals[lr] = "diverged" if bool(run.diverged[0]) else f"{run.losses[0, -1].item():.3g}"
    print(f"{land:10s} SGD loss after 300 steps by lr: {finals}")""",
        play=Play("beale", {"sgd": {"lr": 0.01}}, steps=300),
    ),
    73: dict(
        explain="""
The accumulator `a ← βa + g` sums past gradients with decaying weights and the step is
`-ηa`. It is the cs231n/torch form of momentum: the step on a constant gradient grows to
`ηg/(1-β)`. """
        + _FORMULA_NOTE,
        code="""\
import torch
from descentlab import optim

W = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
opt = optim.Momentum([W], lr=0.05, momentum=0.9)
w, a = 3.0, 0.0
for _ in range(10):
    a = 0.9 * a + 2 * w
    w = w - 0.05 * a
    W.grad = 2 * W.detach()
    opt.step()
print(f"by hand {w:.12f}   descentlab {W.item():.12f}")""",
    ),
    74: dict(
        explain="""
NAG evaluates the gradient at the point the accumulated step is about to reach,
`W - ηβa`, instead of at `W`. If momentum is carrying the iterate past the minimum, that
look-ahead gradient already points back and brakes the step. With `v = -ηa` it is the
lecture-003 form `v ← βv - η∇L(W + βv)`, `W ← W + v` (item 104).""",
        code="""\
import torch
from descentlab import optim

W = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
opt = optim.Nesterov([W], lr=0.05, momentum=0.9)
w, a = 3.0, 0.0
for _ in range(10):
    a = 0.9 * a + 2 * (w - 0.05 * 0.9 * a)      # the gradient at the look-ahead W - eta beta a
    w = w - 0.05 * a
    W.grad = 2 * W.detach()
    opt.step()
print(f"lecture's NAG, look-ahead point {w - 0.05 * 0.9 * a:.12f}")
print(f"descentlab Nesterov (stores it) {W.item():.12f}")""",
    ),
    75: dict(
        explain="""
Nesterov's method has a provably better worst-case rate on smooth convex functions:
`O(1/t²)` in the loss against `O(1/t)` for gradient descent, and `1 - 1/√κ` per step on
strongly convex ones. Heavy-ball momentum matches that on quadratics but has no such
guarantee in general. "Faster in practice" depends on the settings; the cell compares the
two at equal `η, β` on an ill-conditioned quadratic.""",
        code="""\
from descentlab.problems import landscapes, trajectories

f = landscapes.get("quadratic", kappa=100)
for name in ("momentum", "nesterov"):
    run = trajectories.run(f, name, [f.start], steps=200, lr=0.5, hyper={"momentum": 0.9})
    print(f"{name:8s}: loss after 50, 100, 200 steps:",
          [f"{run.losses[0, t].item():.2e}" for t in (50, 100, 200)])""",
        play=Play(
            "quadratic",
            {"momentum": {"lr": 0.5, "momentum": 0.9}, "nesterov": {"lr": 0.5, "momentum": 0.9}},
            steps=200,
            kappa=100,
        ),
    ),
    76: dict(
        explain="""
AdaGrad divides each coordinate's step by the root of its accumulated squared gradients,
`W -= η g/√(G + ε)`. A parameter tied to a rare feature gets a nonzero gradient only
occasionally, so its `G` stays small and each of its rare updates is large; a parameter
that moves every step accumulates a large `G` and takes small steps. This made AdaGrad the
method of choice for sparse problems (word embeddings, click prediction).""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(2))
opt = optim.Adagrad([w], lr=0.1, eps=1e-8)
for t in range(1, 101):
    rare = 1.0 if t % 25 == 0 else 0.0                 # a feature seen once in 25 steps
    before = w.detach().clone()
    w.grad = torch.tensor([1.0, rare])
    opt.step()
    if rare:
        step = (before - w.detach()).tolist()
        print(f"step {t:3d}: frequent feature moves {step[0]:.4f}, rare feature {step[1]:.4f}")""",
    ),
    77: dict(
        explain="""
`G` only grows: each step adds `g² ≥ 0`. So the effective rate `η/√G` falls monotonically,
like `1/√t` for gradients of steady size, and in a long training run it becomes too small to
make progress even where the loss is still far from its minimum. RMSProp and Adadelta
replace the sum by a moving average for this reason.""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.zeros(1))
opt = optim.Adagrad([w], lr=0.1, eps=1e-10)
rates = []
for t in range(1, 10001):
    w.grad = torch.ones(1)
    opt.step()
    if t in (1, 10, 100, 1000, 10000):
        G = opt.state[w]["sum"].item()
        rates.append(f"t={t}: lr/sqrt(G) = {0.1 / G ** 0.5:.4f}")
print("\\n".join(rates))""",
    ),
    78: dict(
        explain="""
Adadelta keeps two moving averages: `G` of squared gradients and `H` of squared updates,
and steps `ΔW = -√(H + ε)/√(G + ε) · g`. The ratio has the units of `W` (update over
gradient, like an inverse curvature), so no learning rate is needed: if the loss is
rescaled the steps stay the same. The cost is a slow start: `H` begins at 0, so the first
steps are about `√ε`, and on the book's landscapes a badly chosen `ε` leaves it nearly
still for hundreds of steps. In the figure it reaches the bowl's minimum after about 730
steps; with torch's single `ε` in units 10 and 100 it is still far from it when the run
ends (`ε` beside `H` is then too small for steps of that size).""",
        code="""\
import torch
from descentlab import optim

for scale in (1.0, 100.0):
    w = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt = optim.Adadelta([w], lr=1.0, rho=0.9, eps=1e-6)
    for _ in range(200):
        w.grad = scale * 2 * w.detach()             # f = scale * w^2
        opt.step()
    print(f"loss scaled by {scale:5}: w after 200 steps = {w.item():.6f}")""",
    ),
    79: dict(
        explain="""
AdaGrad's alternative fix would be a window: the sum of the last `w` squared gradients. That
needs `w` copies of every parameter's squared gradient, `w` times the model's size in
memory, impossible for large models. An exponential moving average keeps one number per
parameter and still forgets, with an effective window of `1/(1-ρ)` steps.""",
        code="""\
import torch
from descentlab import optim

model = torch.nn.Linear(1000, 1000)
opt = optim.Adadelta(model.parameters())
model(torch.randn(4, 1000)).sum().backward()
opt.step()
params = sum(p.numel() for p in model.parameters())
state = sum(t.numel() for s in opt.state.values() for t in s.values()
            if torch.is_tensor(t) and t.dim())
print(f"parameters {params:,}; Adadelta's state {state:,} numbers (x{state / params:.0f}); "
      f"a window of 100 squared gradients would be x100")""",
    ),
    80: dict(
        explain="""
RMSProp: `G ← γG + (1-γ)g²`, `W -= η g/√(G + ε)`. The same per-coordinate scaling as AdaGrad
but with a memory of about `1/(1-γ)` steps, so the rate adapts up as well as down. """
        + _FORMULA_NOTE,
        code=by_hand(
            "RMSprop([w], lr=0.01, alpha=0.9, eps=1e-8, eps_inside_sqrt=True)",
            "G = torch.zeros(2, dtype=torch.float64)",
            "G = 0.9 * G + 0.1 * g * g",
            "x = x - 0.01 * g / (G + 1e-8).sqrt()",
            where=([2.0, 2.0], [3.0, -1.0]),
        ),
    ),
    81: dict(
        explain="""
The blog's formula folds Adam's two bias corrections into the rate:
`η_t = η √(1-β₂ᵗ)/(1-β₁ᵗ)`, applied to the uncorrected `m/√(v + ε)`. Dividing `m` by
`1-β₁ᵗ` and `v` by `1-β₂ᵗ` (so `√v` by `√(1-β₂ᵗ)`) gives exactly that factor; the only
difference from the usual form is where `ε` sits, which matters only when `√v` is as small as
`√ε`.""",
        code=by_hand(
            "Adam([w], lr=0.01, betas=(0.9, 0.999), eps=1e-8, eps_inside_sqrt=True)",
            "m = v = torch.zeros(2, dtype=torch.float64)",
            "m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g",
            "lr_t = 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)  # corrections folded in",
            "x = x - lr_t * m / (v + 1e-8).sqrt()",
            where=([2.0, 2.0], [3.0, -1.0]),
        ),
    ),
    82: dict(
        explain="""
`ε` is in the denominator next to `√v̂`. While `√v̂ ≫ ε` it does nothing; where gradients
are tiny it caps the step at about `η·|m̂|/ε`, turning Adam into momentum SGD with rate
`η/ε`. A larger `ε` (1e-7, or even 1e-3 to 1 in some vision models) therefore makes Adam
less aggressive on flat coordinates; the right value depends on the gradients' scale.""",
        code="""\
import torch
from descentlab import optim

for g in (1.0, 1e-6, 1e-9):
    row = []
    for eps in (1e-8, 1e-7, 1e-3):
        w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = optim.Adam([w], lr=1e-3, eps=eps)
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        row.append(f"eps {eps:.0e}: {-w.item():.2e}")
    print(f"gradient {g:.0e}: first step  " + "  ".join(row))""",
    ),
    83: dict(
        explain="""
Regularization is anything that lowers the test error more than the training error. The
toolbox works in three ways: limit how long or how far training goes (early stopping, norm
penalties, weight decay), make the training data more varied (augmentation, input noise,
label smoothing, mixup), or make the network itself noisy (dropout, batch statistics).
Which one helps depends on what limits generalization in the task; the book measures each
on one overfitting problem.""",
        code="""\
from descentlab import regularize

for name in sorted(regularize.__all__):
    obj = getattr(regularize, name)
    doc = (obj.__doc__ or "").strip().splitlines()[0]
    print(f"{name:15s} {doc[:80]}")""",
    ),
    84: dict(
        explain="""
The validation loss falls while the network learns the signal and rises once it starts
fitting the noise. Early stopping keeps the weights from the epoch with the lowest
validation loss and stops after `patience` epochs without improvement. It limits how far
the weights travel from their start, which for a linear model is close to an L2 penalty
with strength `≈ 1/(η t)`.""",
        code="""\
from descentlab import regularize

import inspect

stopper = regularize.EarlyStopping(patience=3)
print("update:", inspect.signature(stopper.update))
val_losses = [1.0, 0.7, 0.5, 0.45, 0.47, 0.49, 0.52, 0.6, 0.7]
for epoch, loss in enumerate(val_losses):
    stop = stopper.update(loss, step=epoch)
    print(f"epoch {epoch}: val loss {loss:.2f}{'  -> stop' if stop else ''}")
    if stop:
        break
print("kept:", stopper.state_dict())""",
    ),
    85: dict(
        explain="""
Adding `(α/2)‖W‖²` to the loss adds `αW` to the gradient, so each SGD step first shrinks the
weights by the factor `1 - ηα` ("weight decay") and then follows the data's gradient. Small
weights make the function smoother (its derivatives are bounded by products of weight
sizes), which usually generalizes better. For adaptive optimizers the two are not the same:
in Adam the penalty's gradient gets divided by `√v̂`; AdamW applies the decay `1 - ηλ`
directly to the weights, "decoupled".""",
        code="""\
import torch
from descentlab import optim

w = torch.nn.Parameter(torch.tensor([2.0, -1.0], dtype=torch.float64))
opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
w.grad = torch.zeros(2, dtype=torch.float64)            # no data gradient: only the decay acts
opt.step()
print("AdamW, zero gradient: w =", w.detach().tolist(), "= (1 - 0.1*0.5) * [2, -1]")
v = torch.nn.Parameter(torch.tensor([2.0, -1.0], dtype=torch.float64))
opt = optim.Adam([v], lr=0.1, weight_decay=0.5)        # L2 in the gradient, then normalized
v.grad = torch.zeros(2, dtype=torch.float64)
opt.step()
print("Adam + L2, zero gradient: w =", [round(t, 4) for t in v.detach().tolist()])""",
    ),
    86: dict(
        explain="""
More data is the most reliable regularizer; augmentation manufactures it by applying
transformations the label does not depend on (shifts, flips, crops, noise for images and
signals). The network sees each example in many versions and cannot memorize one of them;
what it must learn is what stays the same across them. It only helps when the
transformations are real invariances of the task.""",
        code="""\
import torch
from descentlab import regularize

g = torch.Generator().manual_seed(0)
x = torch.arange(8, dtype=torch.float32)[None, :]           # one 1-D signal
print("original:", x.tolist()[0])
for _ in range(3):
    shifted = regularize.augment_1d(x, 3, (0.8, 1.2), g)        # shift <= 3, scale 0.8-1.2
    print("augmented:", [round(v, 2) for v in shifted.tolist()[0]])""",
    ),
    87: dict(
        explain=f"""
Noise on the inputs makes the network's output insensitive to small input changes: for a
linear model, Gaussian input noise of variance `σ²` adds exactly `σ²‖w‖²` to the expected
squared loss, an L2 penalty {cite_in("bishop1995")}. Noise on the weights rewards solutions
where the loss does not change when the weights move, i.e. flat minima.""",
        code="""\
import torch
from descentlab import regularize

torch.manual_seed(0)
w = torch.tensor([1.5, -2.0])
x = torch.randn(20000, 2)
y = x @ w
sigma = 0.3
g = torch.Generator().manual_seed(1)
noisy = regularize.add_input_noise(x, sigma, g)
loss = ((noisy @ w - y) ** 2).mean().item()
penalty = sigma ** 2 * float(w @ w)
print(f"expected loss under input noise {loss:.4f}; sigma^2 |w|^2 = {penalty:.4f}")""",
    ),
    88: dict(
        explain="""
Label smoothing replaces the one-hot target by `(1 - ε)` on the true class and `ε/K` spread
over all `K` classes, so the network is never asked for infinite logits and stays less
over-confident. Mixup trains on convex combinations of two examples and of their labels,
CutMix pastes a patch of one image into another and mixes labels by area. All three ask for
smooth transitions between classes instead of a hard boundary right at the training
points.""",
        code="""\
import torch
from descentlab import regularize

y = torch.tensor([0, 2])
smoothed = regularize.smooth_labels(y, 3, 0.1)
rounded = [[round(v, 4) for v in r] for r in smoothed.tolist()]
print("smoothed targets (eps 0.1, 3 classes):", rounded)
g = torch.Generator().manual_seed(0)
x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
mixed_x, y_a, y_b, lam = regularize.mixup(x, y, 0.4, g)
mixed = [[round(v, 3) for v in r] for r in mixed_x.tolist()]
print(f"mixup: lambda {lam:.3f}, inputs {mixed}")
print(f"       labels {y_a.tolist()} mixed with {y_b.tolist()}")""",
    ),
    89: dict(
        explain="""
Dropout zeroes each unit with probability `p` during training and scales the survivors by
`1/(1 - p)`, so a unit's expected output is unchanged and no scaling is needed at test time.
A unit cannot rely on any particular other unit being present, which discourages
co-adapted features; the network behaves like an average over the `2ⁿ` thinned networks
that share its weights.""",
        code="""\
import torch

torch.manual_seed(0)
drop = torch.nn.Dropout(p=0.5)
x = torch.ones(100000)
out = drop(x)
zeroed = float((out == 0).float().mean())
print(f"fraction zeroed {zeroed:.3f}, survivors scaled to {out.max().item()}, "
      f"mean output {out.mean().item():.3f}")
drop.eval()
print("at test time:", drop(torch.ones(4)).tolist())""",
    ),
    90: dict(
        explain=f"""
Batch norm normalizes each feature over the batch: `x̂ = (x - μ_B)/√(σ²_B + ε)`, then
rescales with learned `γ, β`. It was introduced to reduce "internal covariate shift"; later
work {cite_in("santurkar2018")} found the shift is not reduced much and that the benefit comes
from a smoother loss landscape, which allows larger learning rates. At test time the running
averages of `μ` and `σ²` replace the batch's.""",
        code="""\
import torch

torch.manual_seed(0)
bn = torch.nn.BatchNorm1d(3, affine=False)
x = torch.randn(64, 3) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([5.0, -3.0, 0.0])
out = bn(x)
by_hand = (x - x.mean(0)) / (x.var(0, unbiased=False) + bn.eps).sqrt()
print("feature means after BN:", [round(v, 4) for v in out.mean(0).tolist()])
print("feature stds after BN :", [round(v, 4) for v in out.std(0, unbiased=False).tolist()])
print("max |BN - formula|    :", float((out - by_hand).abs().max()))""",
    ),
    91: dict(
        explain="""
Convolution slides a flipped kernel over a signal: `(f * g)(t) = Σ_τ f(τ) g(t - τ)`
(an integral in the continuous case). What deep-learning libraries call convolution
(`torch.nn.functional.conv2d`) does not flip the kernel: it computes a cross-correlation,
`Σ_τ f(t + τ) g(τ)`. Because the kernel is learned, the flip does not matter for training;
it matters when comparing with a textbook formula.""",
        code="""\
import numpy as np
import torch

f = np.array([1.0, 2.0, 3.0, 4.0])
k = np.array([1.0, 0.0, -1.0])
true_conv = np.convolve(f, k, mode="valid")
signal = torch.tensor(f)[None, None]
torch_conv = torch.nn.functional.conv1d(signal, torch.tensor(k)[None, None])
torch_flipped = torch.nn.functional.conv1d(signal, torch.tensor(k[::-1].copy())[None, None])
print("convolution (flipped kernel):", true_conv.tolist())
print("torch conv1d (no flip)      :", torch_conv.flatten().tolist())
print("torch conv1d, kernel flipped:", torch_flipped.flatten().tolist())""",
    ),
    92: dict(
        explain="""
A 2-D convolution layer's weight has shape `(out_channels, in_channels, kH, kW)`: every
output channel has one `kH × kW` kernel per input channel and sums their responses. An RGB
input has 3 channels, so a layer with 16 filters of size 5 × 5 has `16·3·5·5` weights (plus
16 biases), and its output has 16 channels, which the next layer takes as its input
channels.""",
        code="""\
import torch
from descentlab.problems import convarith

conv1 = torch.nn.Conv2d(3, 16, 5)
conv2 = torch.nn.Conv2d(16, 32, 3)
print("conv1 weight shape", tuple(conv1.weight.shape), "params", convarith.conv_params(3, 16, 5))
print("conv2 weight shape", tuple(conv2.weight.shape), "params", convarith.conv_params(16, 32, 3))
x = torch.randn(1, 3, 32, 32)
print("shapes through the stack:", tuple(conv1(x).shape), "->", tuple(conv2(conv1(x)).shape))""",
    ),
    93: dict(
        explain="""
A convolution layer reuses one small kernel at every position, so its parameter count does
not depend on the image size, while a fully connected layer needs one weight per
input-output pair. Fewer parameters mean less to fit (less data needed, less overfitting)
and build in the assumption that a pattern means the same wherever it appears. Pooling then
reduces the resolution, and fully connected layers at the end combine the features.""",
        code="""\
from descentlab.problems import convarith

conv = convarith.conv_params(64, 64, 3)
print(f"3x3 conv, 64 -> 64 channels : {conv:,} weights (any image size)")
for hw in (32, 224):
    print(f"fully connected on {hw}x{hw}x64 -> same size:",
          f"{convarith.linear_params(hw * hw * 64, hw * hw * 64):,}", "weights")""",
    ),
    94: dict(
        explain="""
Along one axis, an input of size `n`, kernel `k`, padding `p` and stride `s` give
`⌊(n + 2p - k)/s⌋ + 1` outputs: the kernel fits `n + 2p - k + 1` times, of which every
`s`-th is kept. "Same" padding `p = (k - 1)/2` with stride 1 keeps the size; stride 2 halves
it.""",
        code="""\
import torch
from descentlab.problems import convarith

for n, k, s, p in ((32, 3, 1, 1), (32, 3, 2, 1), (227, 11, 4, 0), (28, 5, 1, 0)):
    formula = (n + 2 * p - k) // s + 1
    ours = convarith.conv_output_shape(n, k, stride=s, padding=p)
    torch_out = torch.nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, n, n)).shape[-1]
    print(f"n {n:3d}, k {k:2d}, s {s}, p {p}: formula {formula}, descentlab {ours}, "
          f"torch {torch_out}")""",
    ),
    95: dict(
        explain="""
AlexNet's parameters are dominated by its fully connected layers. The lecture's table (and
descentlab's, which reproduces it layer by layer) gives fc6 177 M weights: it connects the
unpooled `13·13·256` map of conv5 to 4,096 units. AlexNet pools once more before fc6,
leaving `6·6·256 = 9,216` features and 37.7 M weights, still 16 times the 2.3 M of all five
convolutions together. This imbalance is why later networks replaced the big dense layers by
global pooling.""",
        code="""\
from descentlab.book import convolution

rows = convolution.alexnet_table()
for r in rows:
    print(f"{r['layer']:6s} {r['formula']:>22s} = {r['weights']:>11,}   (lecture: {r['lecture']})")
conv = sum(r["weights"] for r in rows if r["kind"] == "conv")
dense = sum(r["weights"] for r in rows if r["kind"] != "conv")
print(f"convolutions {conv:,}  fully connected {dense:,}")
pooled = {r["layer"]: r["weights"] for r in convolution.alexnet_table(pool_before_fc=True)}
print(f"with the pool before fc6 (AlexNet's): fc6 = {pooled['fc6']:,}")""",
    ),
    96: dict(
        explain="""
A 1 × 1 convolution mixes channels at each position without looking at neighbours: it is a
fully connected layer applied pixel by pixel. Put before a `k × k` convolution it first
reduces `C` channels to `b < C`, so the expensive convolution costs `k²·b·C_out` instead of
`k²·C·C_out`. Inception and ResNet's bottleneck blocks use it to go deeper for the same
budget.""",
        code="""\
from descentlab.book import convolution

r = convolution.bottleneck_savings(in_ch=256, out_ch=256, kernel=3, bottleneck_ch=64)
print({k: v for k, v in r.items() if not isinstance(v, str)})""",
    ),
}
