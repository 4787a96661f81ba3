"""The lectures' figures, regenerated with descentlab (``descentlab figures seeds --out DIR``).

==================================  ==================================================
file                                 what it shows (lecture)
==================================  ==================================================
seed001_parabola_lr.png              GD on x^2 - 4x + 6 from x0 = 4, lr 0.2 / 0.01 / 1
seed001_xsinx_initial_value.png      x sin x from 2.5 and 1.5, lr 0.25 (initial value)
seed001_xsinx_learning_rate.png      x sin x from 2.5, lr 1.0 vs 0.05 (learning rate)
seed001_surface.png                  3(x-2)^2 + (y-2)^2: 3-D surface + contour
seed001_family_tree.png              which optimizers share which update rules
seed001_optimizer_table.png          the derivatives lecture's table: direction x lr, years
seed003_ravine.png / .gif            7 optimizers in a ravine (cs231n)
seed003_saddle.png / .gif            7 optimizers at a saddle point (cs231n)
lr_heatmap_rosenbrock.png            final loss by learning rate x optimizer
basins_himmelblau.png                which minimum each start reaches (SGD, Momentum, Adam)
seed000_noise_floor.png              noisy SGD: constant-lr floors vs eta/t
==================================  ==================================================

``quick=True`` draws every figure with fewer steps, runs and pixels (a draft for smoke tests;
the shapes are the same, the curves shorter and the maps coarser).

Example:
    >>> from descentlab.book.render.seed_figures import write_seed_figures
    >>> paths = write_seed_figures("figures/")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from descentlab._files import make_dirs
from descentlab.book.render import lecture_plots as LP
from descentlab.problems.trajectories import Race, races
from descentlab.report import figures as F

__all__ = [
    "ANIMATIONS",
    "NAMES",
    "OPTIMIZER_TABLE",
    "SEED003_OPTIMIZERS",
    "build",
    "write_seed_figures",
]

#: The seven optimizers of the momentum lecture's animation (cs231n), in the lecture's order.
SEED003_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")


def _parabola(quick: bool) -> Figure:
    panels = [
        {"start": 4.0, "lr": 0.2, "note": "converges to the minimum"},
        {"start": 4.0, "lr": 0.01, "note": "too small: barely moves in 6 steps"},
        {"start": 4.0, "lr": 1.0, "note": "too large: bounces between 4 and 0"},
    ]
    return LP.descent_1d_figure(
        "parabola",
        panels,
        steps=6,
        shared_axes=True,
        title=r"Gradient descent on $f(x) = x^2 - 4x + 6$ from $x_0 = 4$: "
        r"$x_{k+1} = x_k - \mathrm{lr} \cdot f'(x_k)$, $f'(x) = 2x - 4$",
    )


#: The two x sin x figures: (the runs, steps shown, title).
_XSINX: dict[str, tuple[list[dict[str, Any]], int, str]] = {
    "seed001_xsinx_initial_value": (
        [
            {"start": 2.5, "lr": 0.25, "label": "$x_0$ = 2.5 → minimum near 4.91"},
            {"start": 1.5, "lr": 0.25, "label": "$x_0$ = 1.5 → minimum at 0"},
        ],
        8,
        "Initial-value sensitivity: same learning rate 0.25, different starts, different minima",
    ),
    "seed001_xsinx_learning_rate": (
        [
            {"start": 2.5, "lr": 1.0, "label": "lr = 1.0: overshoots, jumps across the valley"},
            {"start": 2.5, "lr": 0.05, "label": "lr = 0.05: small, slow steps"},
        ],
        6,
        "Learning-rate sensitivity: same start $x_0$ = 2.5, learning rates 1.0 and 0.05",
    ),
}


def _xsinx_figure(stem: str) -> Callable[[bool], Figure]:
    def make(quick: bool) -> Figure:
        panels, steps, title = _XSINX[stem]
        return LP.descent_1d_figure(
            "xsinx", panels, steps=steps, overlay=True, xlim=(-1.0, 7.0), title=title
        )

    return make


def _surface(quick: bool) -> Figure:
    return LP.surface_figure(
        "bowl",
        path_lr=0.1,
        steps=15,
        start=(0.0, 4.5),
        note=r"partial derivatives $\partial f/\partial x = 6(x-2)$, "
        r"$\partial f/\partial y = 2(y-2)$; gradient descent with lr 0.1 from (0, 4.5)",
    )


def _family_tree(quick: bool) -> Figure:
    return LP.family_tree_figure()


#: The derivatives lecture's table: optimizer -> (year, search direction, learning rate).
OPTIMIZER_TABLE: dict[str, tuple[str, str, str]] = {
    "sgd": ("1945", "gradient", "constant"),
    "momentum": ("1964", "short-term accumulated gradient", "constant"),
    "nesterov": ("1983", "short-term accumulated gradient", "constant"),
    "adagrad": ("2011", "gradient", "inversely prop. to long-term parameter change"),
    "rmsprop": ("2012", "gradient", "inversely prop. to short-term parameter change"),
    "adam": (
        "2014",
        "short-term accumulated gradient",
        "inversely prop. to short-term parameter change",
    ),
}


def _optimizer_table(quick: bool) -> Figure:
    """The derivatives lecture's table as a map: search direction (x) by learning rate (y), with the
    years; each optimizer is placed by the update rules of its own chain (an adaptive denominator
    decides the row, a momentum buffer the column) and the table's cell is printed beside."""
    chains = LP.family_chains()
    directions = ["gradient", "short-term accumulated gradient"]
    rates = [
        "constant",
        "inversely prop. to long-term parameter change",
        "inversely prop. to short-term parameter change",
    ]
    fig = F.new_figure(11.0, 6.2)
    ax = fig.subplots()
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylim(-0.5, 2.5)
    for i in range(2):
        ax.axvline(i + 0.5, color="#cccccc", lw=1)
    for j in range(3):
        ax.axhline(j + 0.5, color="#cccccc", lw=1)
    placed: dict[tuple[int, int], list[str]] = {}
    for name, (year, direction, rate) in OPTIMIZER_TABLE.items():
        active = {r for r, a in chains[name] if a}
        col = int(bool(active & {"trace", "velocity", "velocity_lookahead", "scale_by_adam"}))
        if "scale_by_adagrad" in active:
            row = 1
        elif active & {"scale_by_rms", "scale_by_adam"}:
            row = 2
        else:
            row = 0
        agrees = (directions[col], rates[row]) == (direction, rate)
        label = f"{F.display_name(name)} ({year})" + ("" if agrees else "  ✘ table differs")
        placed.setdefault((col, row), []).append(label)
    for (col, row), labels in placed.items():
        ax.text(
            col,
            row,
            "\n".join(labels),
            ha="center",
            va="center",
            fontsize=13,
            weight="bold",
            bbox={"boxstyle": "round,pad=0.5", "fc": "#eef5fc", "ec": "#0b63b5"},
        )
    ax.set_xticks([0, 1], ["gradient", "short-term accumulated\ngradient (momentum)"])
    ax.set_yticks(
        [0, 1, 2],
        ["constant", "∝ 1 / long-term\nchange (AdaGrad)", "∝ 1 / short-term\nchange (RMSProp)"],
    )
    ax.legend(
        handles=[Patch(fc="#eef5fc", ec="#0b63b5", label="optimizer (year in the table), placed "
                       "by the active rules of its chain")],
        loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=9, frameon=False,
    )  # fmt: skip
    ax.set_xlabel("search direction")
    ax.set_ylabel("learning rate")
    ax.set_title(
        "The derivatives lecture's table on its two axes; each optimizer placed by the rules of "
        "its own chain",
        fontsize=11,
    )
    return fig


#: the heat map's learning rates and steps: those of item 131's table beside it, in both
#: settings (a 50-step map had Adam among the worst beside a 300-step table where it won)
HEATMAP_LRS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
HEATMAP_STEPS = 300


def _heatmap(quick: bool) -> Figure:
    return LP.lr_heatmap_figure("rosenbrock", SEED003_OPTIMIZERS, HEATMAP_LRS, steps=HEATMAP_STEPS)


def _basins(quick: bool) -> Figure:
    return LP.basin_figure(
        "himmelblau",
        ("sgd", "momentum", "adam"),
        (0.01, 0.005, 0.1),
        steps=60 if quick else 300,
        resolution=24 if quick else 160,
    )


def _noise_floor(quick: bool) -> Figure:
    return LP.noise_floor_figure(
        (0.5, 0.1, 0.02), eta=1.0, steps=100 if quick else 2000, runs=10 if quick else 200
    )


_RACES = {
    "seed003_ravine": (
        "ravine",
        "The momentum lecture (after cs231n): a ravine — steep walls, gentle floor. SGD zig-zags "
        "across,\n"
        "momentum builds speed along the floor, adaptive methods rescale each coordinate",
    ),
    "seed003_saddle": (
        "saddle",
        "The momentum lecture (after cs231n): a saddle point. Starting on the ridge (y = 0.001), "
        "SGD and\n"
        "momentum linger near the saddle; adaptive methods rescale the tiny y-gradient and escape",
    ),
}


def _races(stem: str, quick: bool) -> list[Race]:
    return races(_RACES[stem][0], SEED003_OPTIMIZERS, steps=30 if quick else 150)


def _race_figure(stem: str) -> Callable[[bool], Figure]:
    def make(quick: bool) -> Figure:
        name, title = _RACES[stem]
        return F.comparison_figure(name, _races(stem, quick), title=title)

    return make


_BUILDERS: dict[str, Callable[[bool], Figure]] = {
    "seed001_parabola_lr": _parabola,
    "seed001_xsinx_initial_value": _xsinx_figure("seed001_xsinx_initial_value"),
    "seed001_xsinx_learning_rate": _xsinx_figure("seed001_xsinx_learning_rate"),
    "seed001_surface": _surface,
    "seed001_family_tree": _family_tree,
    "seed001_optimizer_table": _optimizer_table,
    "seed003_ravine": _race_figure("seed003_ravine"),
    "seed003_saddle": _race_figure("seed003_saddle"),
    "lr_heatmap_rosenbrock": _heatmap,
    "basins_himmelblau": _basins,
    "seed000_noise_floor": _noise_floor,
}

#: Names of the static figures (file stems of the PNGs).
NAMES: tuple[str, ...] = tuple(_BUILDERS)
#: Figures that also come as a GIF animation.
ANIMATIONS: tuple[str, ...] = tuple(_RACES)


def build(name: str, quick: bool = False) -> Figure:
    """Draw one lecture figure by name (one of :data:`NAMES`).

    Raises:
        KeyError: unknown name (the message lists the valid names).
    """
    if name not in _BUILDERS:
        raise KeyError(f"unknown figure {name!r}; valid names: {', '.join(NAMES)}")
    return _BUILDERS[name](quick)


def write_seed_figures(
    out: str | Path,
    *,
    animations: bool = True,
    only: Sequence[str] | None = None,
    quick: bool = False,
) -> list[Path]:
    """Write the lecture figures into ``out`` (created if needed); returns the paths.

    Args:
        out: output folder.
        animations: also write the GIF animations of the momentum lecture's races.
        only: figure names to write (default: all of :data:`NAMES`).
        quick: draft quality (fewer steps, runs and pixels), for smoke tests.

    Returns:
        The paths written, in the order of ``only`` (or :data:`NAMES`): each figure's PNG,
        followed by its GIF where it is a race and ``animations`` is True.

    Writes:
        Into ``out`` (created): ``<name>.png`` for each figure, and ``<name>.gif`` for the
        races (``seed003_ravine``, ``seed003_saddle``) with ``animations``; an existing file
        of that name is replaced.

    Raises:
        KeyError: a name in ``only`` is unknown (the message lists the valid names); raised
            before anything is written.

    Example:
        One figure at draft quality (under a second; all of them at full quality take
        minutes):

        >>> import tempfile
        >>> from descentlab.book.render.seed_figures import write_seed_figures
        >>> folder = tempfile.TemporaryDirectory()
        >>> paths = write_seed_figures(folder.name, only=["seed001_parabola_lr"],
        ...                            quick=True)
        >>> [p.name for p in paths]
        ['seed001_parabola_lr.png']
        >>> write_seed_figures(folder.name, only=["ravine"])
        Traceback (most recent call last):
        KeyError: "unknown figure 'ravine'; valid names: seed001_parabola_lr, ..."
        >>> folder.cleanup()
    """
    names = list(NAMES if only is None else only)
    for name in names:
        if name not in _BUILDERS:
            raise KeyError(f"unknown figure {name!r}; valid names: {', '.join(NAMES)}")
    out = Path(out)
    make_dirs(out)  # (noted: a command that fails for lack of space removes it)
    written: list[Path] = []
    for name in names:
        if name in _RACES:
            land, title = _RACES[name]
            races = _races(name, quick)
            fig = F.comparison_figure(land, races, title=title)
            written.append(F.save(fig, out / f"{name}.png"))
            if animations:
                written.append(
                    F.animate_comparison(
                        land, races, out / f"{name}.gif", frames=8 if quick else 60
                    )
                )
        else:
            written.append(F.save(build(name, quick), out / f"{name}.png"))
    return written
