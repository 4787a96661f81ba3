"""Evidence for derivatives and plain gradient descent: the landscapes' gradients against the
formulas and the limit, descent on the lectures' curves, the learning rate's size, the
unrolled update, the loss-driven rule and the engine's epoch sampler.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from descentlab import schedules as S
from descentlab.book import reference as R
from descentlab.book.checks import ck, close, diff_check, within
from descentlab.book.model import Context
from descentlab.book.render import seed_figures as LF
from descentlab.book.render.lecture_plots import basin_labels
from descentlab.book.render.pages import Evidence
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import races as run_races
from descentlab.problems.trajectories import run as trajectories
from descentlab.report import figures as FG

__all__ = [
    "basins",
    "bold_driver",
    "derivative",
    "derivative_limit",
    "descent_steps",
    "epoch_sampler",
    "lr_scale",
    "lr_search",
    "matrix_gradient",
    "parabola_panels",
    "stationary_point",
    "steepest",
    "unrolled",
    "xsinx",
]


def _traj(landscape: Any, opt: str, start: Sequence[float], steps: int, lr: float, **kw: Any):
    return trajectories(
        landscape, opt, torch.tensor(list(start), dtype=torch.float64), steps, lr=lr,
        bound=kw.pop("bound", 1e6), **kw,
    )  # fmt: skip


_EXACT: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str, list[list[float]]]] = {
    "cubic": (lambda x: 9 * x**2 - 2, "f'(x) = 9x² - 2", [[-1.0], [0.3], [1.2]]),
    "cubic2d": (
        lambda x: torch.stack(
            [3 * x[:, 1] ** 2 + 12 * x[:, 0] ** 2, 6 * x[:, 0] * x[:, 1] - 10 * x[:, 1]], 1
        ),
        "f_x = 3y² + 12x², f_y = 6xy - 10y",
        [[0.5, 0.5], [-1.0, 2.0], [1.5, -0.3]],
    ),
    "chain_cubic": (
        lambda x: 6 * (2 * x - 1) ** 2,
        "d/dx (2x-1)³ = 6(2x-1)²",
        [[0.0], [0.5], [1.3]],
    ),
    "bowl": (
        lambda x: torch.stack([6 * (x[:, 0] - 2), 2 * (x[:, 1] - 2)], 1),
        "f_x = 6(x-2), f_y = 2(y-2)",
        [[0.0, 0.0], [2.0, 2.0], [4.0, -1.0]],
    ),
}


def derivative(ctx: Context, name: str) -> Evidence:
    """The landscape's gradient (autograd) and its finite differences against the formula."""
    exact, text, points = _EXACT[name]
    f = L.get(name)
    x = torch.tensor(points, dtype=torch.float64)
    ref = exact(x)
    e1 = float((L.grad(f, x) - ref).abs().max())
    e2 = float((L.finite_difference_grad(f, x) - ref).abs().max())
    return Evidence(
        checks=[
            diff_check(f"landscape {name!r}: {text} — autograd at 3 points", e1, 1e-12),
            diff_check("and the limit definition (central differences)", e2, 1e-6),
        ]
    )


def chain_rule(ctx: Context) -> Evidence:
    """Outer derivative times inner derivative: 3u² at u = 2x - 1, times 2."""
    f = L.get("chain_cubic")
    x = torch.tensor([[0.0], [0.5], [1.3], [-0.7]], dtype=torch.float64)
    u = 2 * x - 1
    outer, inner = 3 * u**2, 2.0
    e = float((L.grad(f, x) - outer * inner).abs().max())
    return Evidence(
        checks=[diff_check("d/dx f(g(x)) = f'(g(x))·g'(x) for f(u) = u³, g = 2x - 1", e, 1e-12)]
    )


def derivative_limit(ctx: Context) -> Evidence:
    """(f(x+h) - f(x))/h → f'(x): the error of the landscape's forward difference is first
    order in h (halves with h), and the slope is ≈ 0 at x sin x's minimum."""
    f = L.get("xsinx")
    x = torch.tensor([[1.3]], dtype=torch.float64)
    exact = float(L.grad(f, x))
    hs = [1e-2, 5e-3, 2.5e-3, 1.25e-3]
    errs = [abs(float((f(x + h) - f(x)) / h) - exact) for h in hs]
    ratios = [a / b for a, b in itertools.pairwise(errs)]
    xmin = torch.tensor([[4.913180439434884]], dtype=torch.float64)
    return Evidence(
        checks=[
            within(
                "x sin x at 1.3: the forward difference's error halves when h halves "
                "(first order): worst ratio of successive errors",
                min(ratios),
                1.9,
                2.1,
            ),
            within(
                "at the minimum 4.9132 the slope f'(x) is ≈ 0", abs(float(L.grad(f, xmin))), 0, 1e-9
            ),
        ]
    )


def steepest(ctx: Context) -> Evidence:
    """Among 3,600 unit directions the steepest ascent is the gradient's."""
    f = L.get("bowl")
    x = torch.tensor([[0.5, 3.0]], dtype=torch.float64)
    g = L.grad(f, x)[0]
    angles = torch.linspace(0, 2 * math.pi, 3601, dtype=torch.float64)[:-1]
    u = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    h = 1e-6
    slopes = (f(x + h * u) - f(x - h * u)) / (2 * h)  # directional derivatives, by differences
    best = u[int(slopes.argmax())]
    cos = float(best @ g / g.norm())
    step = x - 0.05 * g
    return Evidence(
        checks=[
            within(
                "the steepest of 3,600 directions (finite differences) vs ∇f: cos",
                cos,
                1 - 2e-6,
                1.0,
            ),
            close("its slope is ‖∇f‖", float(slopes.max()), float(g.norm()), 1e-5, rel=True),
            ck(
                "a small step along -∇f lowers f",
                float(f(step)) < float(f(x)),
                f"{float(f(step)):.4f}",
                f"< {float(f(x)):.4f}",
            ),
        ],
        figures=[LF.build("seed001_surface", ctx.quick)],
    )


def surface(ctx: Context) -> Evidence:
    """The 3-D surface is the landscape evaluated on a grid (np.outer / meshgrid)."""
    f = L.get("bowl")
    xs = np.linspace(-1, 5, 31)
    ys = np.linspace(-1, 5, 25)
    gx = np.outer(np.ones_like(ys), xs)
    gy = np.outer(ys, np.ones_like(xs))
    z = f(torch.tensor(np.stack([gx, gy], -1))).numpy()
    e = float(np.abs(z - (3 * (gx - 2) ** 2 + (gy - 2) ** 2)).max())
    return Evidence(
        checks=[
            diff_check("landscape 'bowl' on a 25 x 31 np.outer grid = 3(x-2)² + (y-2)²", e, 1e-12),
            ck(
                "the grid's lowest point is the minimum (2, 2)",
                (gx.flat[z.argmin()], gy.flat[z.argmin()]) == (2.0, 2.0),
                f"({gx.flat[z.argmin()]:g}, {gy.flat[z.argmin()]:g})",
                "(2, 2)",
            ),
        ],
        figures=[LF.build("seed001_surface", ctx.quick)],
    )


def descent_steps(ctx: Context) -> Evidence:
    """The simple algorithm: direction -∇f, a preset rate, repeat: every step lowers f."""
    tr = _traj("bowl", "sgd", [0.0, 4.5], 20, 0.1)
    losses = tr.losses[0].numpy()
    return Evidence(
        checks=[
            ck(
                "descentlab SGD (lr 0.1) on 3(x-2)² + (y-2)²: the loss falls at each of 20 steps",
                bool((np.diff(losses) < 0).all()),
                f"{losses[0]:.3g} → {losses[-1]:.3g}",
                "strictly decreasing",
            )
        ]
    )


def parabola_panels(ctx: Context) -> Evidence:
    """x² - 4x + 6 from 4: lr 0.2 converges (x_k = 2 + 2·0.6^k), 0.01 barely moves, 1 bounces."""
    tr = _traj("parabola", "sgd", [4.0], 10, 0.2)
    small = _traj("parabola", "sgd", [4.0], 6, 0.01)
    tr1 = _traj("parabola", "sgd", [4.0], 6, 1.0)
    xs = tr1.paths[0, :, 0].tolist()
    return Evidence(
        checks=[
            close(
                "lr 0.2, 10 steps: x_10 = 2 + 2·0.6^10",
                float(tr.paths[0, -1, 0]),
                2 + 2 * 0.6**10,
                1e-12,
            ),
            close(
                "lr 0.01, 6 steps: x_6 = 2 + 2·0.98^6 (barely moves)",
                float(small.paths[0, -1, 0]),
                2 + 2 * 0.98**6,
                1e-12,
            ),
            ck(
                "lr 1: bounces between 4 and 0 forever",
                xs == [4.0, 0.0] * 3 + [4.0],
                ", ".join(f"{v:g}" for v in xs),
                "4, 0, 4, 0, …",
            ),
        ],
        figures=[LF.build("seed001_parabola_lr", ctx.quick)],
    )


def lr_scale(ctx: Context) -> Evidence:
    """Too large diverges (lr 1.05 on x² - 4x + 6: |x - 2| grows by 1.1 a step), too small
    crawls (lr 0.01: shrinks by 0.98)."""
    races = run_races(
        "parabola", ["sgd", "sgd", "sgd"], lr=[1.05, 0.3, 0.01], steps=25, start=[4.0]
    )
    big, mid, small = (r.traj.paths[0, :, 0].numpy() for r in races)
    grow = np.abs(big[1:] - 2) / np.abs(big[:-1] - 2)
    fig = FG.comparison_figure(
        "parabola",
        races,
        title="x² - 4x + 6 from 4: lr 1.05 diverges, lr 0.3 converges, lr 0.01 crawls",
    )
    return Evidence(
        checks=[
            diff_check(
                "too large (lr 1.05): |x - 2| multiplies by |1 - 2·1.05| = 1.1 at every step",
                float(np.abs(grow - 1.1).max()),
                1e-9,
            ),
            ck(
                "so it diverges: after 25 steps |x - 2| > 10 × |x_0 - 2|",
                abs(big[-1] - 2) > 20,
                f"|x_25 - 2| = {abs(big[-1] - 2):.3g}",
                "> 20",
            ),
            close("lr 0.3 converges: |x_25 - 2| = 2·0.4^25", abs(mid[-1] - 2), 2 * 0.4**25, 1e-12),
            close(
                "too small (lr 0.01): |x_25 - 2| = 2·0.98^25, still far",
                abs(small[-1] - 2),
                2 * 0.98**25,
                1e-12,
            ),
        ],
        figures=[fig],
    )


def xsinx(ctx: Context, which: str) -> Evidence:
    f = L.get("xsinx")
    if which == "initial":
        a = float(_traj(f, "sgd", [2.5], 200, 0.25).paths[0, -1, 0])
        b = float(_traj(f, "sgd", [1.5], 200, 0.25).paths[0, -1, 0])
        checks = [
            close("from 2.5 (lr 0.25, 200 steps): the minimum near 4.9132", a, 4.913180439, 1e-6),
            close("from 1.5 (same lr): the minimum at 0", b, 0.0, 1e-6),
        ]
        fig = LF.build("seed001_xsinx_initial_value", ctx.quick)
    else:
        big = _traj(f, "sgd", [2.5], 5, 1.0).paths[0, :, 0].numpy()
        small = _traj(f, "sgd", [2.5], 5, 0.05).paths[0, :, 0].numpy()
        g0 = float(L.grad(f, torch.tensor([[2.5]], dtype=torch.float64)))
        checks = [
            ck(
                "lr 1.0 overshoots: x passes the minimum 4.91 and turns back",
                bool((big > 4.913).any() and (np.diff(big) < 0).any()),
                ", ".join(f"{v:.2f}" for v in big),
                "crosses 4.91 and turns back",
            ),
            close(
                "lr 0.05: the first step is 0.05·|f'(2.5)|",
                abs(small[1] - small[0]),
                0.05 * abs(g0),
                1e-12,
            ),
        ]
        fig = LF.build("seed001_xsinx_learning_rate", ctx.quick)
    return Evidence(checks=checks, figures=[fig])


def basins(ctx: Context) -> Evidence:
    """Non-convex: gradient descent ends in whichever minimum is near the start."""
    f = L.get("himmelblau")
    g = torch.linspace(-5, 5, 25, dtype=torch.float64)
    starts = torch.cartesian_prod(g, g)
    labels = basin_labels(f, "sgd", starts, lr=0.01, steps=300)
    n_min = len(f.minima)
    reached = len({int(v) for v in labels.reshape(-1).tolist() if int(v) < n_min})
    return Evidence(
        checks=[
            ck(
                "SGD (lr 0.01, 300 steps) from 625 starts on Himmelblau reaches different minima",
                reached == 4,
                f"{reached} different minima",
                "4 (Himmelblau's)",
            ),
        ],
        figures=[LF.build("basins_himmelblau", ctx.quick)],
    )


def stationary_point(ctx: Context) -> Evidence:
    """First-order and local: GD uses only ∇f and stops where ∇f = 0 -- a local minimum
    (positive-definite Hessian), not necessarily the lowest."""
    f = L.get("himmelblau")
    tr = _traj(f, "sgd", [-0.5, -0.5], 500, 0.01)
    x = tr.paths[0, -1]
    g = float(L.grad(f, x[None]).norm())
    h = L.hessian(f, x)
    eig = torch.linalg.eigvalsh(h)
    return Evidence(
        checks=[
            within(
                "SGD (lr 0.01, 500 steps) from (-0.5, -0.5) on Himmelblau: ‖∇f‖ at the end",
                g,
                0,
                1e-8,
            ),
            ck(
                "there the Hessian is positive definite: a local minimum",
                bool((eig > 0).all()),
                ", ".join(f"{float(e):.3g}" for e in eig),
                "> 0",
            ),
        ]
    )


def unrolled(ctx: Context) -> Evidence:
    """w^t = w^0 - η Σ_k ∇L(w^k): descentlab SGD's iterates are the start minus the series of
    its gradients."""
    tr = _traj("bowl", "sgd", [0.0, 4.5], 30, 0.05)
    paths = tr.paths[0]
    f = L.get("bowl")
    grads = L.grad(f, paths[:-1])
    series = paths[0] - 0.05 * torch.cumsum(grads, 0)
    e = float((series - paths[1:]).abs().max())
    return Evidence(
        checks=[
            diff_check(
                "30 steps of SGD (lr 0.05) on the bowl: w^t = w^0 - η Σ_{k<t} ∇L(w^k)", e, 1e-12
            ),
            within(
                "and the iterates converge as the series does: ‖η∇L(w^29)‖, its last term",
                float((0.05 * grads[-1]).norm()),
                0,
                0.1,
            ),
        ]
    )


def bold_driver(ctx: Context) -> Evidence:
    """The loss-driven rule of lecture 001, as the book runs it: keep the lr while the loss
    falls, undo the step and halve it when the loss rises (descentlab.schedules.bold_driver
    against the float64 loop of :func:`descentlab.book.reference.bold_driver`)."""
    rule = S.bold_driver(increase=1.0, decrease=0.5, reject=True)
    out = _traj("parabola", "sgd", [4.0], 40, 1.5, loss_rule=rule)
    f = L.get("parabola")
    path, rates = R.bold_driver(
        np.array([4.0]), lambda w: 2 * w - 4, lambda w: float(w[0] ** 2 - 4 * w[0] + 6), 1.5, 40
    )
    lib = out.paths[0, :, 0].numpy()
    plain = _traj(f, "sgd", [4.0], 40, 1.5)
    n_rej = int(sum(b < a for a, b in itertools.pairwise(rates)))
    return Evidence(
        checks=[
            diff_check(
                "bold_driver(decrease 0.5, reject) from lr 1.5: the iterates equal the loop",
                float(np.abs(lib - path[:, 0]).max()),
                1e-12,
            ),
            ck(
                "it rejected steps (the loss rose) and halved the rate",
                n_rej >= 1 and abs(lib[-1] - 2) < 1e-6,
                f"{n_rej} rejections, x_40 = {lib[-1]:.8f}",
                "≥ 1 rejection, x → 2",
            ),
            ck(
                "the same lr without the rule diverges",
                bool(plain.diverged[0]),
                "diverged" if bool(plain.diverged[0]) else "did not diverge",
                "diverges",
            ),
        ]
    )


def lr_search(ctx: Context) -> Evidence:
    """Try a large lr first, halve it while training is unstable: on x² - 4x + 6 the search
    stops at the first stable rate; with noisy gradients even that rate does not converge
    exactly (see the fixed-lr floor)."""
    tried = []
    lr = 3.2
    while True:
        tr = _traj("parabola", "sgd", [4.0], 50, lr)
        x = float(tr.paths[0, -1, 0])
        stable = bool(not tr.diverged[0] and abs(x - 2) < 2)
        tried.append((lr, stable))
        if stable or lr < 1e-3:
            break
        lr /= 2
    first = tried[-1][0]
    return Evidence(
        checks=[
            ck(
                "starting at 3.2 and halving while unstable stops at the first rate below 2/f'' = "
                "1",
                first == 0.8 and [s for _, s in tried] == [False, False, True],
                ", ".join(f"{r:g} {'stable' if s else 'unstable'}" for r, s in tried),
                "3.2, 1.6 unstable; 0.8 stable",
            ),
        ],
        tables=[(["lr", "stable after 50 steps"], [[r, "yes" if s else "no"] for r, s in tried])],
    )


def matrix_gradient(ctx: Context) -> Evidence:
    """For a weight matrix the gradient is the matrix of partials ∂L/∂w_ij: the engine's model
    (a linear layer under descentlab's cross-entropy) against central differences entry by
    entry."""
    from descentlab import losses

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0, 2])
    loss_fn = losses.get("cross_entropy")
    loss_fn(layer(x), y).backward()
    grad = layer.weight.grad.clone()
    fd = torch.zeros_like(grad)
    h = 1e-6
    with torch.no_grad():
        for i in range(3):
            for j in range(4):
                w = layer.weight
                w[i, j] += h
                up = float(loss_fn(layer(x), y))
                w[i, j] -= 2 * h
                down = float(loss_fn(layer(x), y))
                w[i, j] += h
                fd[i, j] = (up - down) / (2 * h)
    return Evidence(
        checks=[
            ck(
                "the gradient has the weight matrix's shape (3, 4)",
                tuple(grad.shape) == (3, 4),
                str(tuple(grad.shape)),
                "(3, 4)",
            ),
            diff_check(
                "each entry is ∂L/∂w_ij (central differences, h 1e-6)",
                float((grad - fd).abs().max()),
                1e-8,
            ),
        ]
    )


def epoch_sampler(ctx: Context) -> Evidence:
    """The engine's mini-batch SGD: shuffle, split, one step per batch; each example exactly
    once per epoch, in a new order each epoch. Measured on a training run: a linear model on
    one-hot inputs, where a weight column moves only when its example is in the batch, paused
    after every step (``until_step``) and resumed, so each step's batch is read off the
    weights."""
    from descentlab._osutil import temporary_folder
    from descentlab.engine.config import RunConfig
    from descentlab.engine.run import train
    from descentlab.problems.data import Splits

    n, batch = 64, 8
    per_epoch = n // batch
    x = torch.eye(n, dtype=torch.float32)
    y = torch.arange(n) % 2
    splits = Splits.of(
        name="moons", task="classification", train=(x, y), val=(x[:4], y[:4]),
        test=(x[:4], y[:4]), n_classes=2, input_shape=(n,), n_outputs=2,
    )  # fmt: skip
    cfg = RunConfig(problem="moons", model="logistic", optimizer="sgd", hyper={"lr": 0.1},
                    batch_size=batch, steps=2 * per_epoch, eval_every=per_epoch, seed=0,
                    evaluate_test=False)  # fmt: skip
    batches: list[list[int]] = []
    with temporary_folder("sampler") as tmp:
        path = Path(tmp) / "run.pt"
        prev = torch.zeros(n)
        for k in range(1, 2 * per_epoch + 1):
            res = train(cfg, data=splits, progress=False, checkpoint_path=path, resume=k > 1,
                        until_step=k)  # fmt: skip
            # zero-initialized: a weight column moves only when its example is in the batch
            w = next(p for p in res.model.parameters() if p.dim() == 2).detach().abs().sum(0)
            batches.append(torch.nonzero(w != prev).flatten().tolist())
            prev = w.clone()
    epochs = [batches[:per_epoch], batches[per_epoch:]]

    def partition(bs: list[list[int]]) -> bool:
        seen = [i for b in bs for i in b]
        return len(seen) == n and sorted(seen) == list(range(n))

    contiguous = sum(b == list(range(b[0], b[0] + len(b))) for b in batches if b)
    same = sum(set(a) == set(b) for a, b in zip(*epochs, strict=True))
    return Evidence(
        checks=[
            ck(
                f"{n} examples, batch {batch}: epoch 1's {per_epoch} batches hold each example "
                "exactly once",
                partition(epochs[0]),
                f"{len({i for b in epochs[0] for i in b})} distinct of "
                f"{sum(map(len, epochs[0]))} drawn",
                f"{n} distinct of {n} (with replacement ≈ {n * (1 - (1 - 1 / n) ** n):.0f})",
            ),
            ck(
                "and so do epoch 2's",
                partition(epochs[1]),
                f"{len({i for b in epochs[1] for i in b})} distinct of "
                f"{sum(map(len, epochs[1]))} drawn",
                f"{n} distinct of {n}",
            ),
            ck(
                "the data are shuffled: no batch is a run of consecutive examples",
                contiguous == 0,
                f"{contiguous} of {len(batches)} batches consecutive; first batch {batches[0]}",
                "0 (in file order: all)",
            ),
            ck(
                "a new order each epoch: epoch 2's batches are not epoch 1's",
                same < per_epoch,
                f"{same} of {per_epoch} batches repeated",
                f"< {per_epoch} (chance of all: 0)",
            ),
            close("epochs done", float(res.epochs), 2.0, 1e-12),
        ]
    )
