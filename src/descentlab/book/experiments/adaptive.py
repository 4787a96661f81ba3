"""Adaptive learning rates, measured (the DL-basics and momentum lectures).

Four claims of the lectures about AdaGrad, Adadelta and Adam:

1. **AdaGrad stalls in long training** (the DL-basics lecture: "G_t keeps growing, so learning stops
   in long training"; the momentum lecture: "r grows and may hinder convergence"). Logistic
   regression on the 8x8 digits with mini-batches, AdaGrad against RMSProp at the same lr. The
   *effective step size* ``lr / (sqrt(r) + eps)`` (median over the weights) is read from each
   optimizer's state: AdaGrad's falls like ``t^(-1/2)`` (the noisy mini-batch gradients keep adding
   to ``r``), RMSProp's moving average keeps it level.
2. **Adadelta needs no learning rate** (the DL-basics lecture: "no learning rate"). Its update
   ``sqrt(H + eps) / sqrt(G + eps) g`` carries the parameter's units: measure the parameters
   in units ``10^k`` times smaller (``z = 10^k x``, ``f_k(z) = f(z / 10^k)``) and, with the
   epsilons carrying their units too (``eps 10^(2k)`` beside H, ``eps 10^(-2k)`` beside G),
   Adadelta at lr = 1 takes exactly the same path, ``z_t = 10^k x_t``. SGD's good learning
   rate moves by ``10^(2k)`` (the gradient shrinks by ``10^k`` and the step must grow by
   ``10^k``). torch's Adadelta has one eps for both: its first steps are about ``sqrt(eps)``
   in any units, so its path does change with the units -- shown beside.
3. **Adam without bias correction: "the first step is huge"** (the momentum lecture). With ``m`` and
   ``v`` starting at 0, the uncorrected step under a constant gradient is
   ``lr (1 - β1^t) / sqrt(1 - β2^t)``: 3.16 lr at t = 1, about 7 lr near t = 15, back to lr
   only after thousands of steps. The corrected step is lr. Measured on a linear loss (where
   the formula is exact) and on a network's first steps; and the DL-basics lecture's tip
   ``eps = 1e-7`` beside torch's ``1e-8``: the two differ only where gradients are as small as eps.
4. **The momentum lecture's Algorithm 5-5 as printed** overwrites the moments with their corrected
   values (lines 7 and 9: ``v = v / (1 - α1^t)``), so the next moving average starts from the
   corrected, larger value and the corrections compound. :class:`Algorithm55` implements it
   literally; it agrees with Adam at step 1 and drifts away from step 2 on.

References:
    Duchi, Hazan, Singer, "Adaptive subgradient methods", JMLR 2011. Zeiler, "ADADELTA",
    2012, https://arxiv.org/abs/1212.5701. Kingma & Ba, "Adam", ICLR 2015,
    https://arxiv.org/abs/1412.6980. Hinton, Lecture 6e (RMSProp).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from torch import Tensor

from descentlab import optim
from descentlab.constraints import POSITIVE, POSITIVE_INT, Interval, ListOf, check, invalid
from descentlab.problems import data as datasets
from descentlab.problems import landscapes
from descentlab.problems.trajectories import run as trajectories

from ._common import ExperimentResult, Part, descend, experiment, finish, timer

__all__ = [
    "CONSTRAINTS",
    "DEFAULTS",
    "QUICK",
    "Algorithm55",
    "adadelta_units",
    "run",
    "uncorrected_step",
]

#: The full setting.
DEFAULTS: dict[str, Any] = {
    "stall_steps": 3000,
    "stall_lr": 0.05,
    "batch_size": 16,
    "adadelta_steps": 1000,
    "units": [-2, -1, 0, 1, 2],
    "adam_steps": 2000,
    "printed_steps": 25,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {"stall_steps": 800, "adadelta_steps": 800, "adam_steps": 300}

_STEPS = Interval(Integral, 10, None)

#: The options' constraints.
CONSTRAINTS: dict[str, list[Any]] = {
    "stall_steps": [_STEPS],
    "stall_lr": [POSITIVE],
    "batch_size": [POSITIVE_INT],
    "adadelta_steps": [_STEPS],
    "units": [ListOf(Interval(Integral, -6, None))],
    "adam_steps": [_STEPS],
    "printed_steps": [_STEPS],
}


class Algorithm55(torch.optim.Optimizer):
    """The momentum lecture's Algorithm 5-5 (Adam) exactly as printed: the moments are *replaced* by
    their bias-corrected values (lines 7 and 9) and the next step's moving averages start from them.

    ::

        6  v = α1 v + (1 - α1) g
        7  v = v / (1 - α1^t)
        8  r = α2 r + (1 - α2) g ⊙ g
        9  r = r / (1 - α2^t)
        10 Δθ = -ρ / (ε + sqrt(r)) v
        11 θ = θ + Δθ

    Adam (Kingma & Ba) keeps the uncorrected moments and corrects copies; the two agree at
    t = 1 only.

    Args:
        params: parameters.
        lr: ρ.
        betas: (α1, α2).
        eps: ε (outside the root, as printed).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        owner = "Algorithm55"
        lr = check("lr", lr, POSITIVE, owner=owner)
        betas = tuple(
            check("betas", betas, ListOf(Interval(Real, 0, 1, closed="left")), owner=owner)
        )
        eps = check("eps", eps, Interval(Real, 0, None), owner=owner)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            a1, a2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["t"] = 1
                    st["v"] = torch.zeros_like(p)
                    st["r"] = torch.zeros_like(p)
                t, v, r, g = st["t"], st["v"], st["r"], p.grad
                v.mul_(a1).add_(g, alpha=1 - a1).div_(1 - a1**t)
                r.mul_(a2).addcmul_(g, g, value=1 - a2).div_(1 - a2**t)
                p.addcdiv_(v, r.sqrt().add_(group["eps"]), value=-group["lr"])
                st["t"] = t + 1
        return loss


def uncorrected_step(t: int | np.ndarray, b1: float = 0.9, b2: float = 0.999) -> np.ndarray:
    """Adam's step without bias correction, in units of lr, under a constant gradient (and
    eps negligible): ``(1 - b1^t) / sqrt(1 - b2^t)``.

    Example:
        >>> round(float(uncorrected_step(1)), 4)
        3.1623
    """
    t = np.asarray(t, dtype=np.float64)
    return (1 - b1**t) / np.sqrt(1 - b2**t)


def adadelta_units(
    grad: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    steps: int,
    *,
    scale: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    lr: float = 1.0,
    units_eps: bool = True,
) -> np.ndarray:
    """Adadelta (the DL-basics lecture's equations) on ``f_s(z) = f(z / s)`` from ``z0 = s x0``, in
    float64.

    With ``units_eps`` the two epsilons carry units: ``eps s^2`` beside ``H`` (a squared step)
    and ``eps / s^2`` beside ``G`` (a squared gradient), so the path is ``s`` times the
    ``s = 1`` path exactly; without it both use ``eps`` (torch's Adadelta).

    Returns:
        the path ``z_0 ... z_T``, shape ``(T + 1, d)``.
    """
    z = np.asarray(x0, dtype=np.float64) * scale
    G = np.zeros_like(z)
    H = np.zeros_like(z)
    eps_h, eps_g = (eps * scale**2, eps / scale**2) if units_eps else (eps, eps)
    out = [z.copy()]
    for _ in range(steps):
        g = grad(z / scale) / scale
        G = rho * G + (1 - rho) * g * g
        delta = np.sqrt(H + eps_h) / np.sqrt(G + eps_g) * g
        H = rho * H + (1 - rho) * delta * delta
        z = z - lr * delta
        out.append(z.copy())
    return np.asarray(out)


def _digits_flat(seed: int) -> tuple[Tensor, Tensor]:
    s = datasets.load("digits", seed=seed)
    x = s.x_train.reshape(s.n_train, -1).double()
    return (x - x.mean(0)) / (x.std(0) + 1e-3), s.y_train


def _effective_step(opt: torch.optim.Optimizer, key: str, lr: float, eps: float) -> float:
    # the median over the weights: inputs that are constant (blank pixels) never get a
    # gradient, and their lr / eps would swamp a mean
    vals = []
    for group in opt.param_groups:
        for p in group["params"]:
            acc = opt.state[p][key]
            vals.append((lr / (acc.sqrt() + eps)).reshape(-1))
    return float(torch.cat(vals).median())


def _stall(o: dict[str, Any], seed: int) -> dict[str, Any]:
    x, y = _digits_flat(seed)
    n_steps, lr, bs = o["stall_steps"], o["stall_lr"], o["batch_size"]
    out: dict[str, Any] = {"lr": lr, "steps": n_steps}
    record = sorted({int(v) for v in np.geomspace(1, n_steps, 60)})
    for name, cls, key, eps in (
        ("adagrad", optim.Adagrad, "sum", 1e-10),
        ("rmsprop", optim.RMSprop, "square_avg", 1e-8),
    ):
        torch.manual_seed(seed)
        model = torch.nn.Linear(x.shape[1], 10).double()
        opt = cls(model.parameters(), lr=lr, eps=eps)
        gen = torch.Generator().manual_seed(seed)
        eff, losses = [], []
        for t in range(1, n_steps + 1):
            idx = torch.randint(0, x.shape[0], (bs,), generator=gen)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if t in record:
                eff.append(_effective_step(opt, key, lr, eps))
                with torch.no_grad():
                    losses.append(float(torch.nn.functional.cross_entropy(model(x), y)))
        out[name] = {"steps": record, "effective": eff, "loss": losses}
    return out


def _loglog_slope(steps: Sequence[int], values: Sequence[float], from_step: int) -> float:
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    keep = s >= from_step
    return float(np.polyfit(np.log(s[keep]), np.log(v[keep]), 1)[0])


def _stall_part(o: dict[str, Any], seed: int) -> Part:
    """Part 1: AdaGrad's effective step shrinks, RMSProp's does not."""
    part = Part("stall")
    st = part.data = _stall(o, seed)
    half = part.values["half"] = max(10, o["stall_steps"] // 10)
    slope_a = _loglog_slope(st["adagrad"]["steps"], st["adagrad"]["effective"], half)
    slope_r = _loglog_slope(st["rmsprop"]["steps"], st["rmsprop"]["effective"], half)
    part.row(
        part="stall",
        case="AdaGrad effective step, log-log slope",
        measured=slope_a,
        expected="-0.5 if |g| stays level",
    )
    part.row(
        part="stall", case="RMSProp effective step, log-log slope", measured=slope_r, expected=0.0
    )

    def fall(name: str) -> float:  # the effective step at step `half` over the last one
        steps_ = st[name]["steps"]
        i = min(int(np.searchsorted(steps_, half)), len(steps_) - 1)
        return float(st[name]["effective"][i]) / st[name]["effective"][-1]

    fall_a, fall_r = fall("adagrad"), fall("rmsprop")
    part.check(
        f"AdaGrad's effective step keeps shrinking (step {half} → the end)",
        fall_a > 1.3 and slope_a < -0.15,
        f"÷{fall_a:.2f}, log-log slope {slope_a:.2f}",
        "÷ > 1.3, slope < -0.15 (-0.5 while |g| stays level; it shrinks as the fit improves)",
    )
    part.check(
        "RMSProp's effective step does not decay",
        fall_r < 1.0 and slope_r > 0.0,
        f"÷{fall_r:.2f}, log-log slope {slope_r:.2f}",
        "÷ < 1 (it grows as |g| shrinks), slope > 0",
    )
    la, lr_ = st["adagrad"]["loss"][-1], st["rmsprop"]["loss"][-1]
    part.check(
        "so at the same lr AdaGrad ends with the higher training loss",
        la > lr_,
        f"AdaGrad {la:.4f}, RMSProp {lr_:.4f}",
        "AdaGrad > RMSProp",
    )
    return part


_X0 = np.array([-0.5, 4.5])  # the start on the bowl
_MIN = np.array([2.0, 2.0])  # its minimum


def _bowl_grad(x: np.ndarray) -> np.ndarray:
    """The gradient of the bowl 3(x-2)^2 + (y-2)^2."""
    return np.array([6.0 * (x[0] - 2.0), 2.0 * (x[1] - 2.0)])


def _deviation(path: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(path - ref).max() / np.abs(ref).max())


def _adadelta_part(o: dict[str, Any], ks: list[int]) -> Part:
    """Part 2: Adadelta at lr = 1 takes the same path in every unit; SGD's best lr moves."""
    part = Part("adadelta")
    n_ad = o["adadelta_steps"]
    ref = adadelta_units(_bowl_grad, _X0, n_ad)
    # the loop is torch's Adadelta (lr = 1) at s = 1
    bowl = landscapes.get("bowl")
    p = torch.nn.Parameter(torch.tensor(_X0, dtype=torch.float64))
    lib = descend(optim.Adadelta([p], lr=1.0), p, lambda q: bowl(q[None])[0], n_ad).numpy()
    lib_err = float(np.abs(lib - ref).max())
    part.check(
        "the float64 loop of the lecture's equations is descentlab's Adadelta (lr = 1)",
        lib_err < 1e-10,
        f"max |diff| {lib_err:.1e}",
        "< 1e-10",
    )
    inv, plain, single_eps = {}, {}, {}
    for k in ks:
        s = 10.0**k
        inv[k] = _deviation(adadelta_units(_bowl_grad, _X0, n_ad, scale=s) / s, ref)
        single_eps[k] = adadelta_units(_bowl_grad, _X0, n_ad, scale=s, units_eps=False) / s
        plain[k] = _deviation(single_eps[k], ref)
        part.row(
            part="adadelta",
            case=f"units 10^{k}: path / 10^{k} vs units 1",
            measured=inv[k],
            expected=0.0,
        )
    worst = max(inv.values())
    part.check(
        f"Adadelta at lr = 1 takes the same path in every unit 10^k, k = {ks}",
        worst < 1e-6,
        f"max relative deviation {worst:.1e}",
        "< 1e-6",
    )
    # lr = 1 starts with steps of about sqrt(eps): Adadelta needs ~730 steps to the minimum
    miss = float(np.linalg.norm(ref[-1] - _MIN))
    short = [k for k in ks if np.linalg.norm(single_eps[k][-1] - _MIN) > 1e-3]
    part.check(
        f"Adadelta at lr = 1 reaches the minimum (2, 2) in {n_ad} steps",
        miss < 1e-6,
        f"distance {miss:.1e}; with torch's one eps still > 1e-3 away in units "
        + (", ".join(f"10^{k}" for k in short) or "none"),
        "< 1e-6",
    )
    worst_plain = max(plain[k] for k in ks if k != 0)
    part.check(
        "with torch's single eps the path does change with the units",
        worst_plain > 1e-3,
        f"max relative deviation {worst_plain:.2g}",
        "> 1e-3",
    )
    best = _best_sgd_lr(bowl, ks)
    for k in ks:
        part.row(
            part="sgd",
            case=f"units 10^{k}: best SGD lr (20 steps)",
            measured=best[k],
            expected=best[0] * 100.0**k,
        )
    slope = float(np.polyfit(ks, [math.log10(best[k]) for k in ks], 1)[0])
    part.check(
        "SGD's best learning rate moves by 10^(2k)",
        abs(slope - 2.0) < 0.05 and any(k != 0 for k in ks),
        f"log10(best lr) slope {slope:.3f} per k",
        "2",
    )
    part.data = {
        "units": ks,
        "deviation": inv,
        "deviation_single_eps": plain,
        "best_sgd_lr": best,
        "path": ref.tolist(),
        "paths_single_eps": {k: single_eps[k].tolist() for k in ks},
        "single_eps_short": short,
    }
    return part


def _best_sgd_lr(bowl: landscapes.Landscape, ks: list[int]) -> dict[int, float]:
    """SGD's best lr (lowest loss after 20 steps) on the bowl in units ``10^k``: one batched
    run over a log grid of 4 points per decade for each unit."""
    grid = 10.0 ** (np.arange(-24, 25) / 4.0)
    best = {}
    for k in ks:
        s = 10.0**k
        scaled = landscapes.Landscape(
            name=f"bowl_units_{k}",
            formula=bowl.formula,
            plain=bowl.plain,
            description="the bowl in units 10^k",
            dim=2,
            fn=lambda z, s=s: bowl.fn(z / s),
            points=(),
            domain=bowl.domain,
            start=bowl.start,
            lr=bowl.lr,
        )
        tr = trajectories(scaled, "sgd", torch.tensor(_X0 * s), 20, lr=list(grid), bound=1e6 * s)
        final = (tr.final_losses).numpy()
        best[k] = float(grid[int(np.nanargmin(np.where(np.isfinite(final), final, np.inf)))])
    return best


def _adam_step_sizes(n_adam: int) -> dict[str, list[float]]:
    """Adam's step / lr on a linear loss (a constant gradient), with and without bias
    correction."""
    sizes: dict[str, list[float]] = {}
    gvec = torch.tensor([1.0, -0.01, 100.0], dtype=torch.float64)
    for label, bc in (("corrected", True), ("uncorrected", False)):
        w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        path = descend(
            optim.Adam([w], lr=1e-3, bias_correction=bc), w, lambda q: (gvec * q).sum(), n_adam
        )
        sizes[label] = [float(d) for d in (path[1:] - path[:-1]).abs().amax(dim=1) / 1e-3]
    return sizes


def _adam_first_steps(gs: np.ndarray) -> dict[str, list[float]]:
    """Adam's first step (lr = 1) against the gradient's size, for eps 1e-8 and 1e-7."""
    first: dict[str, list[float]] = {}
    for eps in (1e-8, 1e-7):
        w = torch.nn.Parameter(torch.zeros(len(gs), dtype=torch.float64))
        opt = optim.Adam([w], lr=1.0, eps=eps)
        (torch.as_tensor(gs) * w).sum().backward()
        opt.step()
        first[f"{eps:g}"] = (-w.detach()).tolist()
    return first


def _adam_part(o: dict[str, Any]) -> Part:
    """Part 3: Adam's first steps without bias correction, and eps 1e-7 against 1e-8."""
    part = Part("adam")
    sizes = _adam_step_sizes(o["adam_steps"])
    theory = uncorrected_step(np.arange(1, o["adam_steps"] + 1))
    err_u = float(np.abs(np.asarray(sizes["uncorrected"]) - theory).max() / theory.max())
    err_c = float(np.abs(np.asarray(sizes["corrected"]) - 1.0).max())
    part.check(
        "without bias correction the first step is (1-β1)/sqrt(1-β2) = 3.16 lr",
        abs(sizes["uncorrected"][0] - 3.16227766) < 1e-3,
        f"{sizes['uncorrected'][0]:.4f} lr",
        "3.1623 lr",
    )
    peak = int(np.argmax(sizes["uncorrected"])) + 1
    part.check(
        "and the uncorrected steps follow lr (1-β1^t)/sqrt(1-β2^t), peaking near t = 15",
        err_u < 1e-4 and 10 <= peak <= 25,
        f"max rel. error {err_u:.1e}, peak {max(sizes['uncorrected']):.2f} lr at t = {peak}",
        f"< 1e-4, peak {theory.max():.2f} lr at t = {int(np.argmax(theory)) + 1}",
    )
    part.check(
        "with bias correction every step is lr (per coordinate, |g| >> eps)",
        err_c < 1e-4,
        f"max |step/lr - 1| {err_c:.1e}",
        "< 1e-4",
    )
    gs = 10.0 ** np.arange(-10.0, 0.5, 0.5)
    first = _adam_first_steps(gs)
    at = int(np.argmin(np.abs(gs - 1e-7)))
    ratio = first["1e-07"][at] / first["1e-08"][at]
    expect = (1e-7 / (1e-7 + 1e-7)) / (1e-7 / (1e-7 + 1e-8))
    part.check(
        "eps = 1e-7 vs 1e-8 matters where |g| ~ eps: at |g| = 1e-7 the step ratio is "
        "(1.1e-7)/(2e-7)",
        abs(ratio - expect) < 1e-6,
        f"{ratio:.4f}",
        f"{expect:.4f}",
    )
    big = int(np.argmin(np.abs(gs - 1e-2)))
    ratio_big = first["1e-07"][big] / first["1e-08"][big]
    part.check(
        "and hardly anywhere else: at |g| = 1e-2 the two steps agree to 1e-5",
        abs(ratio_big - 1) < 1e-5,
        f"ratio {ratio_big:.7f}",
        "1 ± 1e-5",
    )
    part.data = {
        "sizes": sizes,
        "theory": theory.tolist(),
        "grads": gs.tolist(),
        "first_step": first,
    }
    part.row(
        part="adam",
        case="uncorrected first step / lr",
        measured=sizes["uncorrected"][0],
        expected=float(uncorrected_step(1)),
    )
    part.row(
        part="adam",
        case="uncorrected largest step / lr",
        measured=max(sizes["uncorrected"]),
        expected=float(theory.max()),
    )
    part.row(
        part="adam",
        case="step ratio eps 1e-7 / 1e-8 at |g| = 1e-7",
        measured=ratio,
        expected=expect,
    )
    return part


def _printed_numpy(start: np.ndarray, steps: int) -> np.ndarray:
    """An independent NumPy loop of lines 5-11 of Algorithm 5-5 on Rosenbrock."""
    th = start.copy()
    v = np.zeros(2)
    r = np.zeros(2)
    lit = [th.tolist()]
    for t_ in range(1, steps + 1):
        x_, y_ = th
        g = np.array([-400 * x_ * (y_ - x_**2) - 2 * (1 - x_), 200 * (y_ - x_**2)])
        v = 0.9 * v + 0.1 * g
        v = v / (1 - 0.9**t_)
        r = 0.999 * r + 0.001 * g * g
        r = r / (1 - 0.999**t_)
        th = th - 0.1 / (1e-8 + np.sqrt(r)) * v
        lit.append(th.tolist())
    return np.asarray(lit)


def _printed_part(o: dict[str, Any]) -> Part:
    """Part 4: Algorithm 5-5 as printed against Adam and a NumPy loop of its lines."""
    part = Part("printed")
    n_p = o["printed_steps"]
    ros = landscapes.get("rosenbrock")
    start = torch.tensor([-1.5, 2.0], dtype=torch.float64)
    trail: dict[str, list[list[float]]] = {}
    for label in ("adam", "printed"):
        w = torch.nn.Parameter(start.clone())
        opt = optim.Adam([w], lr=0.1) if label == "adam" else Algorithm55([w], lr=0.1)
        trail[label] = descend(opt, w, lambda q: ros(q[None])[0], n_p).tolist()
    lit = _printed_numpy(start.numpy(), n_p)
    lit_err = float(np.abs(lit - np.asarray(trail["printed"])).max())
    dist = np.linalg.norm(np.asarray(trail["printed"]) - np.asarray(trail["adam"]), axis=1)
    part.check(
        "Algorithm55 is lines 5-11 of Algorithm 5-5 (against a NumPy loop of them)",
        lit_err < 1e-9,
        f"max |diff| {lit_err:.1e}",
        "< 1e-9",
    )
    part.check(
        "as printed it agrees with Adam at step 1", dist[1] < 1e-12, f"|Δ| {dist[1]:.1e}", "< 1e-12"
    )
    part.check(
        f"and differs from step 2 on (after {n_p} steps on Rosenbrock)",
        dist[2] > 1e-6 and dist[-1] > 1e-2,
        f"|Δ| {dist[2]:.2g} at t=2, {dist[-1]:.3g} at t={n_p}",
        "> 0",
    )
    part.data = {"adam": trail["adam"], "printed": trail["printed"], "distance": dist.tolist()}
    part.row(
        part="printed",
        case=f"|θ_printed - θ_adam| after {n_p} steps",
        measured=float(dist[-1]),
        expected=None,
    )
    return part


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """AdaGrad's stall against RMSProp, Adadelta's unit invariance, Adam's bias correction and
    eps, and Algorithm 5-5 as printed.

    Args:
        quick: the small preset.
        seed: seed of the data split, initialisation and mini-batches.
        stall_steps: steps of the AdaGrad/RMSProp runs.
        stall_lr: their common learning rate.
        batch_size: their mini-batch size.
        adadelta_steps: steps of the Adadelta and SGD runs on the bowl.
        units: the exponents ``k`` of the rescalings ``10^k``.
        adam_steps: steps of the uncorrected-Adam run on a linear loss.
        printed_steps: steps of the Algorithm 5-5 comparison.

    Returns:
        an :class:`ExperimentResult`.
    """
    ks = v["units"]
    if 0 not in ks:
        raise invalid("units", "a list that includes 0 (the reference units)", ks)
    res = ExperimentResult(
        name="adaptive",
        title="Adaptive learning rates: AdaGrad's stall, Adadelta's units, Adam's first steps",
        columns=["part", "case", "measured", "expected"],
        rows=[],
    )
    with timer() as elapsed:
        stall = res.add(_stall_part(o, seed))
        res.add(_adadelta_part(o, ks))
        res.add(_adam_part(o))
        res.add(_printed_part(o))
        seconds = elapsed()
    notes = [
        f"Stall: logistic regression on the standardized 8x8 digits, batch {o['batch_size']}, "
        f"lr {o['stall_lr']:g} for both, {o['stall_steps']} steps; the effective step is the "
        "median of lr / (sqrt(accumulator) + eps) over the weights; slopes fitted on log-log "
        f"axes from step {stall.values['half']} on.",
        "Units: z = 10^k x on the bowl 3(x-2)^2 + (y-2)^2 from (-0.5, 4.5); an SGD lr is "
        "best when its 20-step loss is lowest on a grid of 4 points per decade.",
        "Why Algorithm 5-5 differs: at t = 2 it averages 0.9 · g1 (the corrected v of step 1) "
        "with 0.1 · g2 and divides by 1 - 0.81; Adam averages 0.9 · 0.1 g1 with 0.1 · g2. "
        "Every later step inherits the inflated moments.",
    ]
    options = {**o, "units": ks}
    return finish(res, quick=quick, seed=seed, options=options, seconds=seconds, notes=notes)
