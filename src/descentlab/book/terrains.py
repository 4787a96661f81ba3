"""Evidence on the lectures' terrains: momentum and adaptive rates on the ravine and the
saddle measured as the claims say (progress along the ravine's floor, time to leave the
saddle), every method at one stated learning rate; the conditioning rates; the learning-rate
sweeps behind "no optimizer wins everywhere"; the optimizer table and the genealogy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from descentlab import optim
from descentlab.book.checks import ck, close
from descentlab.book.model import Context
from descentlab.book.render import seed_figures as LF
from descentlab.book.render.claim_panels import genealogy_figure
from descentlab.book.render.lecture_plots import family_chains, final_loss_table
from descentlab.book.render.pages import Evidence
from descentlab.problems import landscapes as L
from descentlab.problems.trajectories import races as run_races
from descentlab.problems.trajectories import run as trajectories
from descentlab.report import figures as FG

__all__ = [
    "GENEALOGY",
    "adam_rms_good",
    "adaptive_less_lr_critical",
    "genealogy",
    "lr_hard",
    "no_best",
    "ravine",
    "saddle",
    "sgd_is_slow",
    "table_axes",
]

#: The methods of the momentum lecture's Fig. 5-13 races, and the one learning rate each
#: terrain gives them all: on the ravine 90 % of 2/L (the largest rate plain GD tolerates),
#: on the saddle the landscape's demonstration rate.
RACERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
RAVINE_LR = 0.18  # 0.9 x 2/L, L = 10: the largest rate plain GD tolerates, less 10 %
RAVINE_STEPS = 50
SADDLE_LR = 0.05
SADDLE_STEPS = 200
SADDLE_LEFT = 1.0  # |y| >= 1: left the saddle (the minima are at y = ±√2)


def _ravine_races(ctx: Context) -> list[FG.Race]:
    return ctx.memo("ravine", lambda: run_races("ravine", RACERS, lr=RAVINE_LR, steps=RAVINE_STEPS))


def _saddle_races(ctx: Context) -> list[FG.Race]:
    return ctx.memo("saddle", lambda: run_races("saddle", RACERS, lr=SADDLE_LR, steps=SADDLE_STEPS))


def _floor_left(race: FG.Race) -> float:
    return abs(float(race.traj.paths[0, -1, 0]))  # the floor runs along x to the minimum 0


def _time_to_leave(race: FG.Race) -> int | None:
    y = race.traj.paths[0, :, 1].abs().numpy()
    idx = np.nonzero(y >= SADDLE_LEFT)[0]
    return int(idx[0]) if len(idx) else None


def ravine(ctx: Context, methods: tuple[str, ...] = ("momentum",)) -> Evidence:
    """Progress along the ravine's floor (x from -10 towards 0) after the same number of steps
    at the same learning rate: the named methods against SGD."""
    races = _ravine_races(ctx)
    left = {r.name: _floor_left(r) for r in races}
    checks = [
        ck(
            f"ravine 0.05x² + 5y², from (-10, 1), every method at lr {RAVINE_LR} (0.9 × 2/L), "
            f"{RAVINE_STEPS} steps: {FG.display_name(m)} gets further along the floor than SGD "
            "(distance |x| still to go)",
            left[m] < left["sgd"],
            f"{left[m]:.3g}",
            f"< {left['sgd']:.3g} (SGD)",
        )
        for m in methods
    ]
    rows = [
        [FG.display_name(r.name), RAVINE_LR, _floor_left(r), float(r.traj.losses[0, -1])]
        for r in races
    ]
    shown = [r for r in races if not bool(r.traj.diverged[0])]
    gone = [FG.display_name(r.name) for r in races if bool(r.traj.diverged[0])]
    fig = FG.comparison_figure(
        "ravine",
        shown,
        title=f"Ravine, every method at lr {RAVINE_LR}, {RAVINE_STEPS} steps: distance left along "
        f"the floor SGD {left['sgd']:.2g}, Momentum {left['momentum']:.2g}"
        + (f"\n({', '.join(gone)} diverges at this lr: see the table)" if gone else ""),
    )
    return Evidence(
        checks=checks,
        tables=[(["method", "lr", f"|x| after {RAVINE_STEPS} steps", "final loss"], rows)],
        figures=[fig],
    )


def saddle(ctx: Context, methods: tuple[str, ...] = ("momentum",)) -> Evidence:
    """Time to leave the saddle (first step with |y| ≥ 1) from (-1.8, 0.001), every method
    at the same learning rate: the named methods against SGD."""
    races = _saddle_races(ctx)
    t = {r.name: _time_to_leave(r) for r in races}
    big = SADDLE_STEPS + 1

    def shown(v: int | None) -> str:
        return f"{v} steps" if v is not None else f"not within {SADDLE_STEPS}"

    checks = [
        ck(
            f"saddle x² - y² + y⁴/4 from (-1.8, 0.001), every method at lr {SADDLE_LR}: "
            f"{FG.display_name(m)} leaves the saddle (|y| ≥ {SADDLE_LEFT:g}) sooner than SGD",
            (t[m] if t[m] is not None else big) < (t["sgd"] if t["sgd"] is not None else big),
            shown(t[m]),
            f"< {shown(t['sgd'])} (SGD)",
        )
        for m in methods
    ]
    rows = [
        [FG.display_name(r.name), SADDLE_LR, shown(t[r.name]), float(r.traj.losses[0, -1])]
        for r in races
    ]
    steps_shown = min(SADDLE_STEPS, 2 * max(v for v in t.values() if v is not None) + 10)
    trimmed = [FG.Race(r.name, r.lr, _head(r.traj, steps_shown)) for r in races]
    fig = FG.comparison_figure(
        "saddle",
        trimmed,
        title=f"Saddle, every method at lr {SADDLE_LR}: steps to leave it (|y| ≥ 1) — SGD "
        f"{shown(t['sgd'])}, Momentum {shown(t['momentum'])}, Adam {shown(t['adam'])}",
    )
    return Evidence(
        checks=checks,
        tables=[
            (["method", "lr", "steps to leave the saddle", f"loss after {SADDLE_STEPS}"], rows)
        ],
        figures=[fig],
    )


def _head(traj: Any, steps: int) -> Any:
    """The first ``steps`` steps of a trajectory (for a figure that shows the escape)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(traj)}
    cut = {}
    for name in fields:
        v = getattr(traj, name)
        if name in ("paths", "losses") and torch.is_tensor(v):
            cut[name] = v[:, : steps + 1]
    return dataclasses.replace(traj, **cut)


def momentum_vs_sgd(ctx: Context) -> Evidence:
    """SGD without and with momentum on the ravine at the same lr (the PyTorch lecture's
    'accelerating ball' figure)."""
    ev = ravine(ctx, ("momentum",))
    races = [r for r in _ravine_races(ctx) if r.name in ("sgd", "momentum")]
    ev.figures = [
        FG.comparison_figure(
            "ravine", races, title=f"SGD without and with momentum (β 0.9), both at lr {RAVINE_LR}"
        )
    ]
    return ev


def problems_of_sgd(ctx: Context) -> Evidence:
    """SGD's three problems measured: it zig-zags across the ravine (poor conditioning), it
    lingers at the saddle, it stays in the double well's local minimum."""
    sgd = next(r for r in _ravine_races(ctx) if r.name == "sgd")
    y = sgd.traj.paths[0, :, 1].numpy()
    flips = int((np.sign(y[1:]) != np.sign(y[:-1])).sum())
    sad = next(r for r in _saddle_races(ctx) if r.name == "sgd")
    f = L.get("double_well")
    local = next(p for p in f.points if p.kind == "local minimum")
    start = torch.tensor([local.x[0] + 0.3], dtype=torch.float64)
    tr = trajectories(f, "sgd", start, 300, lr=0.02)
    return Evidence(
        checks=[
            ck(
                "poor conditioning: SGD's y changes sign at every step across the ravine (lr "
                f"{RAVINE_LR})",
                flips == RAVINE_STEPS,
                f"{flips} of {RAVINE_STEPS}",
                f"{RAVINE_STEPS} of {RAVINE_STEPS}",
            ),
            ck(
                f"saddle: SGD (lr {SADDLE_LR}) needs many steps to leave it",
                (_time_to_leave(sad) or 10**9) > 50,
                f"{_time_to_leave(sad)} steps",
                "> 50",
            ),
            close(
                "local minimum: SGD (lr 0.02, 300 steps) from beside the double well's local "
                "minimum stays in it",
                float(tr.paths[0, -1, 0]),
                local.x[0],
                1e-3,
            ),
        ],
        figures=[
            FG.comparison_figure(
                "ravine",
                [sgd],
                title=f"SGD at lr {RAVINE_LR}: across the ravine y flips sign at every step, "
                f"along the floor it crawls ({_floor_left(sgd):.2g} of 10 still to go after "
                f"{RAVINE_STEPS} steps)",
            )
        ],
    )


def sgd_is_slow(ctx: Context) -> Evidence:
    """Even at its best rate 2/(L+μ), GD needs ~κ steps on the ravine; momentum at Polyak's
    rate needs ~√κ: steps to shrink the distance to the minimum 10⁶-fold."""
    f = L.get("ravine")
    big, small = 10.0, 0.1
    kappa = big / small
    start = torch.tensor(f.start, dtype=torch.float64)
    d0 = float(start.norm())

    def steps_to(opt: str, lr: float, **hyper: Any) -> int:
        tr = trajectories(f, opt, start, 2000, lr=lr, hyper=hyper or None)
        d = tr.paths[0].norm(dim=1).numpy()
        return int(np.nonzero(d <= d0 * 1e-6)[0][0])

    gd = steps_to("sgd", 2 / (big + small))
    mom_rate = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    hb = steps_to("momentum", 4 / (math.sqrt(big) + math.sqrt(small)) ** 2, momentum=mom_rate)
    theory_gd = math.log(1e6) / -math.log((kappa - 1) / (kappa + 1))
    return Evidence(
        checks=[
            close(
                f"GD at its best lr 2/(L+μ) (κ {kappa:g}): steps to shrink the distance 10⁶-fold = "
                "ln 10⁶ / -ln((κ-1)/(κ+1))",
                gd,
                theory_gd,
                0.02,
                rel=True,
            ),
            ck(
                "momentum at Polyak's lr and β: under a fifth of GD's steps (√κ vs κ)",
                hb < gd / 5,
                f"{hb} steps",
                f"< {gd / 5:.0f}",
            ),
        ]
    )


def _sweep(land: str, names: list[str], lrs: list[float], steps: int) -> np.ndarray:
    """Final losses (optimizer x lr), NaN where the run diverged."""
    table, div = final_loss_table(land, names, lrs, steps=steps)
    return np.where(div | ~np.isfinite(table), np.nan, table)


def _best_finite(table: np.ndarray) -> np.ndarray:
    return np.nanmin(table, axis=1)


def _winners(best: np.ndarray, names: Sequence[str], rtol: float = 1e-3) -> list[str]:
    """The optimizers whose best final loss is the lowest, within ``rtol`` of its size (at
    least 1e-9): one name is a win, several are a tie -- never the first of a tie."""
    finite = np.isfinite(best)
    if not finite.any():
        return []
    top = float(np.min(best[finite]))
    tol = max(rtol * abs(top), 1e-9)
    return [n for n, b in zip(names, best, strict=True) if np.isfinite(b) and b <= top + tol]


def no_best(ctx: Context) -> Evidence:
    """No optimizer wins everywhere: the best (each at its best lr) differs by landscape. A
    landscape where several optimizers reach the same loss (within 0.1 %) is a tie and names
    no winner."""
    names = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
    lrs = [1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
    winners, rows = {}, []
    for land in ("rosenbrock", "ravine", "saddle", "beale", "rastrigin"):
        table = _sweep(land, list(names), lrs, 300)
        best = _best_finite(table)
        winners[land] = _winners(best, names)
        rows.append([land, *[float(b) for b in best]])
    outright = {land: w[0] for land, w in winners.items() if len(w) == 1}

    def said(w: list[str]) -> str:
        return w[0] if len(w) == 1 else f"tie ({', '.join(w)})" if w else "none finite"

    return Evidence(
        checks=[
            ck(
                "the best optimizer (each at its best of 7 lrs, 300 steps, ties within 0.1 % "
                "excluded) differs by landscape",
                len(set(outright.values())) >= 2,
                ", ".join(f"{k}: {said(v)}" for k, v in winners.items())
                + ("" if "sgd" in outright.values() else " (plain SGD wins outright on none)"),
                "≥ 2 different outright winners",
            ),
        ],
        tables=[(["landscape (best final loss)", *names], rows)],
    )


def adam_rms_good(ctx: Context) -> Evidence:
    """At its best lr, the better of Adam and RMSProp is within 10x of the best optimizer on
    every landscape; SGD is not."""
    names = ["sgd", "momentum", "adagrad", "rmsprop", "adam"]
    lrs, steps = list(LF.HEATMAP_LRS), LF.HEATMAP_STEPS  # the heat map's beside it
    rows, ok_ar, ok_sgd = [], True, True
    for land in ("rosenbrock", "ravine", "beale"):
        table = _sweep(land, names, lrs, steps)
        best = _best_finite(table)
        top = float(np.nanmin(best))
        ok_ar &= min(best[3], best[4]) <= 10 * top + 1e-6
        ok_sgd &= best[0] <= 10 * top + 1e-6
        rows.append([land, *[float(b) for b in best]])
    return Evidence(
        checks=[
            ck(
                "the better of Adam and RMSProp is within 10x of the best on every landscape",
                ok_ar,
                "yes" if ok_ar else "no",
                "yes",
            ),
            ck(
                "SGD is not (so trying several optimizers is worthwhile)",
                not ok_sgd,
                "within 10x everywhere" if ok_sgd else "not within 10x somewhere",
                "not within 10x somewhere",
            ),
        ],
        tables=[([f"landscape ({steps} steps, best of {len(lrs)} lrs)", *names], rows)],
        figures=[LF.build("lr_heatmap_rosenbrock", ctx.quick)],
    )


def lr_hard(ctx: Context) -> Evidence:
    """Choosing η is hard: on Rosenbrock SGD's best rate (of 7, 300 steps) sits right below
    the rates that diverge -- a rate 10x too small is slow, 10x too large blows up."""
    lrs = [1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
    row = _sweep("rosenbrock", ["sgd"], lrs, 300)[0]
    best = int(np.nanargmin(row))
    n_div = int(np.isnan(row).sum())
    return Evidence(
        checks=[
            ck(
                "SGD on Rosenbrock (300 steps): some of the 7 rates diverge",
                n_div >= 1,
                f"{n_div} diverged",
                "≥ 1",
            ),
            ck(
                "the best rate is the largest stable one: the next larger rate diverges",
                best + 1 < len(lrs) and bool(np.isnan(row[best + 1])),
                f"best lr {lrs[best]:g}; lr {lrs[min(best + 1, len(lrs) - 1)]:g} "
                f"{'diverges' if best + 1 < len(lrs) and np.isnan(row[best + 1]) else 'does not'}",
                "diverges",
            ),
            ck(
                "and the rate 10x smaller than the best is slower",
                best > 0 and row[best - 1] > row[best],
                f"loss {row[best - 1]:.3g} at lr {lrs[best - 1]:g}" if best > 0 else "none",
                f"> {row[best]:.3g}",
            ),
        ],
        tables=[
            (
                ["lr", "final loss (nan: diverged)"],
                [[lr, float(v)] for lr, v in zip(lrs, row, strict=True)],
            )
        ],
    )


def adaptive_less_lr_critical(ctx: Context) -> Evidence:
    """Fixed-rate methods converge too slowly or diverge depending on the rate; adaptive
    rates make the initial rate less critical: on the ravine (300 steps) over 7 rates from
    1e-3 to 1, the fixed-rate methods diverge at some, RMSProp and Adam at none."""
    names = ["sgd", "momentum", "nesterov", "rmsprop", "adam"]
    lrs = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
    table = _sweep("ravine", names, lrs, 300)
    good = {n: int((table[i] < 1e-3).sum()) for i, n in enumerate(names)}
    div = {n: int(np.isnan(table[i]).sum()) for i, n in enumerate(names)}
    fixed = ("sgd", "momentum", "nesterov")
    return Evidence(
        checks=[
            ck(
                "fixed-rate methods diverge at some rates",
                min(div[n] for n in fixed) >= 1,
                ", ".join(f"{n}: {div[n]}" for n in fixed),
                "≥ 1 each",
            ),
            ck(
                "RMSProp and Adam diverge at none of the 7",
                div["rmsprop"] + div["adam"] == 0,
                f"RMSProp {div['rmsprop']}, Adam {div['adam']}",
                "0, 0",
            ),
        ],
        tables=[
            (
                ["optimizer", "rates reaching < 1e-3", "rates that diverge"],
                [[n, good[n], div[n]] for n in names],
            )
        ],
    )


def table_axes(ctx: Context) -> Evidence:
    """The derivatives lecture's table: each optimizer's two axes read from its chain."""
    chains = family_chains()
    dir_rules = {"trace", "velocity", "velocity_lookahead"}
    table = [
        ("sgd", "gradient", "constant", "1945"),
        ("momentum", "short-term accumulated gradient", "constant", "1964"),
        ("nesterov", "short-term accumulated gradient", "constant", "1983"),
        ("adagrad", "gradient", "inverse to long-term change", "2011"),
        ("rmsprop", "gradient", "inverse to short-term change", "2012"),
        ("adam", "short-term accumulated gradient", "inverse to short-term change", "2014"),
    ]
    rows, ok = [], True
    for name, direction, rate, year in table:
        active = {r for r, a in chains[name] if a}
        has_dir = bool(active & dir_rules) or "scale_by_adam" in active
        adaptive = active & {"scale_by_adagrad", "scale_by_rms", "scale_by_adam"}
        got_dir = "short-term accumulated gradient" if has_dir else "gradient"
        if not adaptive:
            got_rate = "constant"
        elif "scale_by_adagrad" in adaptive:
            got_rate = "inverse to long-term change"
        else:
            got_rate = "inverse to short-term change"
        ok &= got_dir == direction and got_rate == rate
        rows.append([name, year, optim.record(name).year, direction, got_dir, rate, got_rate])
    differ = [r for r in rows if str(r[1]) != str(r[2])]
    notes = (
        [
            "Where the lecture's year and descentlab's record differ: "
            + "; ".join(f"{r[0]} {r[1]} in the lecture, {r[2]} in the record" for r in differ)
            + ". SGD's 1951 is Robbins & Monro's stochastic approximation, the paper the "
            "learning-rate conditions Σ η = ∞, Σ η² < ∞ come from; gradient descent itself is "
            "Cauchy's (1847). The lecture's table is shown as the lecture gives it."
        ]
        if differ
        else []
    )
    return Evidence(
        checks=[
            ck(
                "each optimizer's two axes, read from its chain of update rules, are the table's",
                ok,
                f"{sum(r[3] == r[4] and r[5] == r[6] for r in rows)} of {len(rows)} agree",
                f"{len(rows)} of {len(rows)}",
            ),
        ],
        tables=[
            (
                [
                    "optimizer",
                    "year (lecture)",
                    "year (descentlab's record)",
                    "direction (table)",
                    "direction (chain)",
                    "learning rate (table)",
                    "learning rate (chain)",
                ],
                rows,
            )
        ],
        figures=[LF.build("seed001_optimizer_table", ctx.quick)],
        notes=notes,
    )


#: The derivatives lecture's genealogy ("finding the path down the mountain"): each
#: optimizer, its year, parents, what it adds, the text its chain must hold, and where it
#: sits (column: generation, row: lineage).
_G = (
    # name, optimizer, year, parents, column, row, what it adds, what its chain must hold, colour
    (
        "SGD",
        "sgd",
        1951,
        [],
        0,
        1,
        "step -η·g on a\nmini-batch gradient",
        "scale_by_lr(",
        "#f0f3f6",
    ),
    (
        "Momentum",
        "momentum",
        1964,
        ["SGD"],
        1,
        0,
        "velocity: a running\nsum of gradients",
        "trace(momentum=0.9",
        "#dbe9f6",
    ),
    (
        "NAG",
        "nesterov",
        1983,
        ["Momentum"],
        2,
        0,
        "gradient at the\nlook-ahead point",
        "nesterov=True",
        "#dbe9f6",
    ),
    (
        "AdaGrad",
        "adagrad",
        2011,
        ["SGD"],
        1,
        2,
        "η / √(sum of all g²)\nper parameter",
        "scale_by_adagrad(",
        "#e3f3e6",
    ),
    (
        "RMSProp",
        "rmsprop",
        2012,
        ["AdaGrad"],
        2,
        2,
        "a moving average of g²\n(forgets old gradients)",
        "scale_by_rms(",
        "#e3f3e6",
    ),
    (
        "AdaDelta",
        "adadelta",
        2012,
        ["AdaGrad"],
        2,
        3,
        "average of g² and Δw²:\nno learning rate",
        "scale_by_adadelta(",
        "#e3f3e6",
    ),
    (
        "Adam",
        "adam",
        2014,
        ["Momentum", "RMSProp"],
        3,
        1,
        "momentum + RMSProp,\nbias-corrected",
        "scale_by_adam(",
        "#fdf1d8",
    ),
    (
        "Nadam",
        "nadam",
        2016,
        ["NAG", "Adam"],
        4,
        1,
        "Adam with Nesterov's\nlook-ahead momentum",
        "scale_by_nadam(",
        "#fdf1d8",
    ),
)
GENEALOGY: tuple[dict[str, Any], ...] = tuple(
    dict(
        zip(
            ("name", "opt", "year", "parents", "col", "row", "adds", "holds", "color"),
            g,
            strict=True,
        )
    )
    for g in _G
)


def genealogy(ctx: Context) -> Evidence:
    """The genealogy of the lectures' optimizers: what each adds is in its descentlab chain
    of update rules (read from the optimizer objects), and a child's chain differs from its
    parent's."""
    p = [torch.nn.Parameter(torch.zeros(1))]
    chains = {g["name"]: repr(optim.get(g["opt"])(p).rule) for g in GENEALOGY}
    holds = [g["name"] for g in GENEALOGY if g["holds"] in chains[g["name"]]]
    differs = [
        f"{par}→{g['name']}" for g in GENEALOGY for par in g["parents"]
        if chains[par] != chains[g["name"]]
    ]  # fmt: skip
    edges = sum(len(g["parents"]) for g in GENEALOGY)
    fig = genealogy_figure(
        list(GENEALOGY), "The lectures' optimizers: who descends from whom, and what each adds"
    )
    return Evidence(
        checks=[
            ck(
                "each optimizer's descentlab chain holds the rule the genealogy says it adds",
                len(holds) == len(GENEALOGY),
                f"{len(holds)} of {len(GENEALOGY)}",
                f"{len(GENEALOGY)} of {len(GENEALOGY)}",
            ),
            ck(
                "along every edge the child's chain differs from its parent's",
                len(differs) == edges,
                f"{len(differs)} of {edges} edges",
                f"{edges} of {edges}",
            ),
        ],
        tables=[
            (
                ["optimizer", "year", "descends from", "adds", "chain (descentlab)"],
                [
                    [
                        g["name"],
                        g["year"],
                        ", ".join(g["parents"]) or "—",
                        g["adds"].replace("\n", " "),
                        chains[g["name"]].replace("maximize(maximize=False), ", ""),
                    ]
                    for g in GENEALOGY
                ],
            )
        ],
        figures=[fig],
    )
