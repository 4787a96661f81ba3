"""Figures a reader moves, for the lectures' central ideas: a slider over precomputed frames
(:class:`~descentlab.book.render.pages.Movable`), each frame computed with descentlab, each
figure with checks of what moving it shows.

- :func:`momentum_beta`: momentum on the ravine for β from 0 to 0.99 (beside plain SGD);
- :func:`adaptive_beta2`: RMSProp's β₂ (its α) against AdaGrad on the ravine;
- :func:`decay_rate`: exponential learning-rate decay ``η₀e^{-kt}`` on a noisy quadratic;
- :func:`sharp_flat`: a sharp and a flat minimum under weight perturbations of growing size.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from descentlab.book.cells import playground_url
from descentlab.book.checks import ck, close
from descentlab.book.model import Context, Play
from descentlab.book.render.pages import Evidence, Movable
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import Race, races
from descentlab.problems.trajectories import run as trajectories
from descentlab.report import figures as FG

__all__ = ["adaptive_beta2", "decay_rate", "momentum_beta", "sharp_flat"]

#: the momentum figure's settings: β's frames, the rate and the steps
BETAS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
MOMENTUM_LR, MOMENTUM_STEPS = 0.02, 150
#: RMSProp's α (β₂) frames against AdaGrad, both at one rate
ALPHAS = (0.5, 0.9, 0.99, 0.999)
ADAPTIVE_LR, ADAPTIVE_STEPS = 0.3, 150
#: exponential decay's k frames on the noisy quadratic
DECAYS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
DECAY_LR, DECAY_STEPS, DECAY_RUNS = 0.5, 300, 256
#: the sharp and flat minima's curvatures and the perturbation radii
SHARP, FLAT = 40.0, 1.0
RADII = (0.05, 0.1, 0.2, 0.3, 0.4)


def _ravine_frames(ctx: Context, key: str, make) -> list[list[Race]]:
    return ctx.memo(("depth", key), make)


def _slider(
    checks: list,
    label: str,
    values: tuple[float, ...],
    figs: list,
    initial: int,
    caption: str,
    play: str = "",
) -> Evidence:
    """The evidence of a figure moved by a slider over ``values`` (shown as ``:g``), one
    figure a value, ``initial`` the frame shown first, with the checks of what it shows."""
    movable = Movable(label, [f"{v:g}" for v in values], figs, initial, caption, play)
    return Evidence(checks=checks, movable=[movable])


def momentum_beta(ctx: Context) -> Evidence:
    """Momentum (torch's form) on the ravine ``0.05x² + 5y²`` at lr 0.02 for β in
    :data:`BETAS`, each frame beside plain SGD: the floor's progress grows with β until the
    velocity overshoots across the ravine."""

    def make() -> list[list[Race]]:
        out = []
        for beta in BETAS:
            rs = races(
                "ravine",
                ["sgd", "momentum"],
                lr=MOMENTUM_LR,
                steps=MOMENTUM_STEPS,
                hyper={"momentum": {"momentum": beta}},
            )
            out.append(rs)
        return out

    frames = _ravine_frames(ctx, "momentum", make)
    finals = [float(rs[1].traj.losses[0, -1]) for rs in frames]
    figs = [
        FG.comparison_figure(
            "ravine",
            rs,
            title=f"Ravine, lr {MOMENTUM_LR}: plain SGD and momentum β = {b:g} "
            f"(loss after {MOMENTUM_STEPS} steps {finals[i]:.3g})",
        )
        for i, (b, rs) in enumerate(zip(BETAS, frames, strict=True))
    ]
    sgd = float(frames[0][0].traj.losses[0, -1])
    i9 = BETAS.index(0.9)
    play = Play(
        "ravine",
        {"sgd": {"lr": MOMENTUM_LR}, "momentum": {"lr": MOMENTUM_LR, "momentum": 0.9}},
        steps=MOMENTUM_STEPS,
    )
    checks = [
        close("β = 0 is plain SGD (the same loss after 150 steps)", finals[0], sgd, 1e-9, rel=True),
        ck(
            f"momentum β = 0.9 ends lower than plain SGD at lr {MOMENTUM_LR} (ravine, "
            f"{MOMENTUM_STEPS} steps)",
            finals[i9] < 0.01 * sgd,
            finals[i9],
            f"< 1 % of {sgd:.3g}",
        ),
        ck(
            "raising β from 0 to 0.9 lowers the final loss at each step of the slider",
            all(a > b for a, b in itertools.pairwise(finals[: i9 + 1])),
            ", ".join(f"{v:.3g}" for v in finals[: i9 + 1]),
            "decreasing",
        ),
    ]
    caption = (
        "Move β: at 0 the path crawls along the floor as plain SGD does; as β grows the "
        "velocity sums the small gradient along the floor over about `1/(1 - β)` steps, so "
        "progress speeds up, until near 0.99 it overshoots across and around the ravine."
    )
    return _slider(checks, "β", BETAS, figs, BETAS.index(0.9), caption, playground_url(play))


def adaptive_beta2(ctx: Context) -> Evidence:
    """RMSProp with α (β₂) in :data:`ALPHAS` against AdaGrad on the ravine, one rate: AdaGrad's
    sum of squares makes its steps shrink as 1/√t, RMSProp's average keeps them at the rate's
    scale; a small α follows every wiggle of the gradient."""

    def make() -> list[list[Race]]:
        return [
            races(
                "ravine",
                ["adagrad", "rmsprop"],
                lr=ADAPTIVE_LR,
                steps=ADAPTIVE_STEPS,
                hyper={"rmsprop": {"alpha": a}},
            )
            for a in ALPHAS
        ]

    frames = _ravine_frames(ctx, "adaptive", make)

    def last_step(r: Race) -> float:
        p = r.traj.paths[0]
        return float((p[-1] - p[-2]).norm())

    ada = frames[0][0]
    steps = [last_step(rs[1]) for rs in frames]
    finals = [float(rs[1].traj.losses[0, -1]) for rs in frames]
    ada_final = float(ada.traj.losses[0, -1])
    figs = [
        FG.comparison_figure(
            "ravine",
            rs,
            title=f"Ravine, lr {ADAPTIVE_LR}: AdaGrad and RMSProp with α (β₂) = "
            f"{a:g}; loss after {ADAPTIVE_STEPS} steps {float(rs[1].traj.losses[0, -1]):.2g} "
            f"against AdaGrad's {float(ada.traj.losses[0, -1]):.2g}",
        )
        for a, rs in zip(ALPHAS, frames, strict=True)
    ]
    t = ADAPTIVE_STEPS
    # AdaGrad's first step along each axis is lr (|g|/√g²); its last is about lr/√t where the
    # gradient is steady: its effective rate decays
    p = ada.traj.paths[0]
    first = float((p[1] - p[0]).abs().max())
    checks = [
        close(
            "AdaGrad's first step is lr along the steeper axis (|g|/√(g²))",
            first,
            ADAPTIVE_LR,
            1e-6,
            rel=True,
        ),
        ck(
            f"RMSProp ends below AdaGrad at every α (loss after {t} steps)",
            all(lo < ada_final for lo in finals),
            f"AdaGrad {ada_final:.3g}; RMSProp " + ", ".join(f"{v:.3g}" for v in finals),
            "RMSProp's lower at each α",
        ),
        ck(
            "a small α (0.5) hovers: its last step stays at the rate's scale, a large one's "
            "(0.999) has vanished",
            steps[0] > 0.1 * ADAPTIVE_LR > steps[-1],
            f"{steps[0]:.3g} and {steps[-1]:.3g}",
            f"> {0.1 * ADAPTIVE_LR:g} >",
        ),
    ]
    caption = (
        "Move β₂ (torch's α): AdaGrad (the same in every frame) divides by the root of a sum "
        "that only grows, so its steps shrink; RMSProp's moving average forgets, so its steps "
        "stay at the rate's scale. A small β₂ reacts to every change of the gradient, a large "
        "one averages over about `1/(1 - β₂)` steps."
    )
    return _slider(checks, "β₂", ALPHAS, figs, 1, caption)


def _decay_runs(k: float) -> tuple[np.ndarray, np.ndarray]:
    """(rates, mean loss) of SGD under ``η₀e^{-kt}`` on a noisy quadratic, 256 runs."""
    f = L.noisy_quadratic(h=1.0, sigma=1.0, dim=1)
    gamma = math.exp(-k)
    tr = trajectories(
        f,
        "sgd",
        torch.ones(DECAY_RUNS, 1, dtype=torch.float64),
        DECAY_STEPS,
        lr=DECAY_LR,
        scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=gamma),
        seed=0,
    )
    rates = DECAY_LR * gamma ** np.arange(DECAY_STEPS + 1)
    return rates, tr.losses.mean(0).numpy()


def decay_rate(ctx: Context) -> Evidence:
    """Exponential decay ``η₀e^{-kt}`` (torch's ExponentialLR on descentlab's SGD) for k in
    :data:`DECAYS`, on the quadratic ``w²/2`` with gradient noise σ = 1, 256 runs: a constant
    rate hovers at its noise floor, a moderate decay goes below it, a fast one stops short."""
    data = ctx.memo(("depth", "decay"), lambda: [_decay_runs(k) for k in DECAYS])
    finals = [float(loss[-50:].mean()) for _, loss in data]
    figs = []
    for k, (rates, loss) in zip(DECAYS, data, strict=True):
        fig = FG.new_figure(10.0, 3.6)
        a, b = fig.subplots(1, 2)
        a.plot(rates, color="#0072B2")
        a.set_yscale("log")
        a.set_ylim(1e-4, 1)
        a.set_title(f"rate η₀e^(-kt), k = {k:g}: Σηₜ = {rates.sum():.3g}", fontsize=10)
        a.set_xlabel("step t")
        b.plot(loss, color="#D55E00")
        b.axhline(finals[0], color="#999999", ls="--", lw=1, label="constant rate's floor")
        b.set_yscale("log")
        b.set_ylim(1e-3, 1)
        b.set_title(
            f"mean loss of 256 runs: last 50 steps {finals[DECAYS.index(k)]:.3g}", fontsize=10
        )
        b.set_xlabel("step t")
        b.legend(fontsize=8)
        figs.append(fig)
    best = min(range(len(DECAYS)), key=finals.__getitem__)
    checks = [
        ck(
            "a moderate decay ends below the constant rate's noise floor",
            min(finals[1:4]) < 0.5 * finals[0],
            f"{min(finals[1:4]):.3g}",
            f"< half of {finals[0]:.3g}",
        ),
        ck(
            f"the fastest decay (k = {DECAYS[-1]:g}) stops short: Σηₜ is finite and its loss "
            "stays above the best decay's",
            finals[-1] > 2 * finals[best],
            f"{finals[-1]:.3g}",
            f"> 2 × {finals[best]:.3g}",
        ),
    ]
    caption = (
        "Move k: at 0 the rate stays η₀ and the loss hovers at the noise floor (item 18); a "
        "moderate k shrinks the rate, and the noise with it, while Σηₜ is still large enough "
        "to arrive; a large k makes Σηₜ = η₀/(1 - e^{-k}) small, and the run stops before it "
        "arrives: why the Robbins–Monro conditions want Σηₜ = ∞."
    )
    return _slider(checks, "k", DECAYS, figs, 3, caption)


def _wells(x: np.ndarray) -> np.ndarray:
    """A sharp minimum at -2 (curvature :data:`SHARP`) and a flat one at 2 (:data:`FLAT`),
    both of value 0."""
    return np.minimum(SHARP / 2 * (x + 2) ** 2, FLAT / 2 * (x - 2) ** 2)


def sharp_flat(ctx: Context) -> Evidence:
    """A sharp and a flat minimum of equal loss under weight perturbations of radius ε in
    :data:`RADII`: the loss rise is ``f''ε²/2``, so the sharp one loses ``SHARP/FLAT`` times
    more for the same perturbation (the test/train shift of item 71)."""
    x = np.linspace(-3.2, 4.5, 1500)
    rises = []
    figs = []
    for eps in RADII:
        sharp = float(_wells(np.array([-2 + eps]))[0])
        flat = float(_wells(np.array([2 + eps]))[0])
        rises.append((sharp, flat))
        fig = FG.new_figure(8.0, 3.6)
        ax = fig.subplots()
        ax.plot(x, _wells(x), color="#33475b", lw=2)
        for c, rise, col in ((-2, sharp, "#D55E00"), (2, flat, "#009E73")):
            ax.axvspan(c - eps, c + eps, color=col, alpha=0.18)
            ax.plot([c - eps, c + eps], [rise, rise], color=col, lw=2)
            ax.annotate(
                f"rise {rise:.3g}",
                (c + eps, rise),
                xytext=(6, 4),
                textcoords="offset points",
                color=col,
                fontsize=9,
            )
        ax.set_ylim(-0.2, 4)
        ax.set_title(
            f"perturbation ε = {eps:g}: the sharp minimum's loss rises "
            f"{sharp / flat:.0f}× the flat one's",
            fontsize=10,
        )
        ax.set_xlabel("weight w")
        ax.set_ylabel("loss")
        figs.append(fig)
    checks = [
        close(
            f"the loss rise is f''ε²/2 at ε = {eps:g} (sharp, f'' = {SHARP:g})",
            s,
            SHARP * eps**2 / 2,
            1e-9,
            rel=True,
        )
        for eps, (s, _) in zip(RADII, rises, strict=True)
    ] + [
        close(
            "the sharp minimum loses f''_sharp / f''_flat times more, at every ε",
            max(s / f for s, f in rises),
            SHARP / FLAT,
            1e-9,
            rel=True,
        ),
    ]
    caption = (
        "Move ε, the size of a weight perturbation (a shift between the training and the test "
        "loss surfaces, or SGD's noise): both minima have loss 0, but the sharp one's loss "
        "rises `f''/f''_flat` = 40 times more for the same ε. Small batches' noise cannot stay "
        "in the narrow basin; large batches can, and generalize worse (item 71)."
    )
    return _slider(checks, "ε", RADII, figs, 2, caption)
