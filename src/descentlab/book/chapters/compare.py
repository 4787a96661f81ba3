"""Every optimizer on one loop, in depth: descentlab's training loop runs SGD, Momentum,
Nesterov, AdaGrad, Adadelta, RMSProp, Adam, AdamW, Lion and Muon on one real dataset the
project ships (scikit-learn's handwritten digits), each at a rate tuned on validation data,
with comparable curves over seeds and ranking claims only where every seed supports them; and
the wall-time cost of mini-batches measured on the machine that built the page (time per
epoch and per example against the batch size), checked by ratios and shapes only."""

from __future__ import annotations

import itertools
import os
import platform
from pathlib import Path

import numpy as np
import torch

from descentlab.book.chapters import _common as kit
from descentlab.book.chapters import practice
from descentlab.book.checks import ck
from descentlab.book.model import Context
from descentlab.book.render.chapter import Part, Table
from descentlab.book.render.live import Live, Probe, Slider
from descentlab.report import figures as FG

__all__ = ["CHAPTER"]

#: each optimizer's name in descentlab, its label and its grid of rates
GRIDS = {
    "sgd": ("SGD", (0.3, 1.0, 3.0)),
    "momentum": ("Momentum", (0.03, 0.1, 0.3)),
    "nesterov": ("Nesterov", (0.03, 0.1, 0.3)),
    "adagrad": ("AdaGrad", (0.03, 0.1, 0.3)),
    "adadelta": ("Adadelta", (0.3, 1.0, 3.0)),
    "rmsprop": ("RMSProp", (0.003, 0.01, 0.03)),
    "adam": ("Adam", (0.001, 0.003, 0.01)),
    "adamw": ("AdamW", (0.001, 0.003, 0.01)),
    "lion": ("Lion", (0.0003, 0.001, 0.003)),
    "muon": ("Muon", (0.003, 0.01, 0.03)),
}
#: the budget: steps, batch size, evaluation interval; the tuning seed and the seeds compared
STEPS, BATCH, EVERY, TUNE_SEED, SEEDS = 300, 64, 25, 0, (1, 2, 3)
#: the wall-time study: batch sizes (None: the whole training set), repeats, epochs per run
SIZES, REPEATS = (1, 4, 16, 64, 256, None), 3
#: the live figure's probes (steps)
MOVE_AT = (100, 300)


#: the runs over seeds that are replicates, never one checked against another (the audit of
#: re-seeded twins says them on the page)
REPLICATES = {
    "_cfg": "each rate tuned on seed 0, the comparison's curves and rankings over seeds 1 to 3",
}


def _cfg(opt: str, lr: float, seed: int) -> dict[str, object]:
    return {
        "problem": "digits",
        "model": "digits_mlp",
        "optimizer": opt,
        "hyper": {"lr": lr},
        "batch_size": BATCH,
        "steps": STEPS,
        "eval_every": EVERY,
        "seed": seed,
    }


def _train(cfg: dict[str, object]):
    from descentlab.engine import train

    return train(cfg, progress=False)


def _tune() -> dict[str, dict[float, float]]:
    """Each optimizer's final validation loss at each rate of its grid (the tuning seed)."""
    return {
        o: {lr: kit.final(_train(_cfg(o, lr, TUNE_SEED)), "val/loss") for lr in grid}
        for o, (_, grid) in GRIDS.items()
    }


def _chosen(tuned: dict[str, dict[float, float]]) -> dict[str, float]:
    return {
        o: min(v, key=lambda lr: (np.nan_to_num(v[lr], nan=np.inf), lr)) for o, v in tuned.items()
    }


def _compare(ctx: Context) -> dict[str, object]:
    tuned = ctx.memo(("chapter", "compare", "tune"), _tune)
    lrs = _chosen(tuned)
    runs = ctx.memo(
        ("chapter", "compare", "runs"),
        lambda: {(o, s): _train(_cfg(o, lrs[o], s)) for o in GRIDS for s in SEEDS},
    )
    return {"tuned": tuned, "lrs": lrs, "runs": runs}


def _series(runs, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per optimizer: the evaluation steps and the seeds' values (seeds × steps)."""
    out = {}
    for o in GRIDS:
        s = [runs[(o, seed)].metrics[metric] for seed in SEEDS]
        out[o] = (np.asarray(s[0].steps), np.vstack([np.asarray(x.values) for x in s]))
    return out


def _test_accuracy(result) -> float:
    """A trained model's accuracy on the digits' test split by a forward pass of our own (the
    second route of the engine's record)."""
    from descentlab.problems import data

    s = data.load("digits", seed=0)
    s.unseal_test()
    with torch.no_grad():
        pred = result.model(s.x_test).argmax(1)
    return float((pred == s.y_test).double().mean())


# ------------------------------------------------------------------------------------------
# 1. the setting and the tuning

SETTING = kit.Prose(
    """
The lectures list the optimizers one by one (items 39 and 59 draw their family tree) and end
with advice rather than a measurement: Adam is "generally reported to perform best, but
task-dependent" (item 29), and "trying several optimizers is worthwhile" (item 131). This chapter
runs the measurement d2l's optimization chapters run: one training loop, every optimizer, one
real dataset, the same budget, curves on the same axes.

The loop is descentlab's engine (`descentlab.engine.train`): shuffled mini-batches of
{{batch}} (item 48), {{steps}} steps, the validation and test losses every {{every}} steps.
The dataset is scikit-learn's handwritten digits, which the project ships (8 × 8 images,
{{n_train}} training, {{n_val}} validation and {{n_test}} test examples: no
download), the model descentlab's digits MLP. Each optimizer runs at its defaults apart from
the rate, which is tuned: three rates a factor of about three apart, each trained once on
seed {{tune_seed}}, the one with the lowest final validation loss kept. The test set plays no
part in the choice. A rate chosen at the edge of its grid is marked in the table: a wider
grid might have found a better one, and that optimizer's result is a lower bound on what it
can do. The tuning cost {{tune_runs}} runs; the comparison {{runs}} more, on the seeds
{{seeds}}, different from the tuning seed so that the chosen rate is not scored on the run
that chose it.""",
    n_train="training examples, against the engine's split of 1437 at a validation share of 0.2",
    n_val="validation examples, against the split's complement",
    n_test="test examples, against scikit-learn's 1797 less the training part",
    tune_runs="the tuning runs, against the grids' sizes summed",
    runs="the comparison's runs, against optimizers × seeds",
)


def _setting(ctx: Context, n: kit.Numbers) -> Part:
    from sklearn.datasets import load_digits

    from descentlab.problems import data

    c = _compare(ctx)
    s = data.load("digits", seed=0)
    total = len(load_digits().target)
    n_train, n_val = s.x_train.shape[0], s.x_val.shape[0]
    text = SETTING.fill(
        n,
        batch=str(BATCH),
        steps=str(STEPS),
        every=str(EVERY),
        tune_seed=str(TUNE_SEED),
        seeds=", ".join(str(x) for x in SEEDS),
        n_train=(n_train, round((n_train + n_val) * 0.8), 1, 3, False),
        n_val=(n_val, (n_train + n_val) - n_train, 0),
        n_test=(s.n_test, total - (n_train + n_val), 0),
        tune_runs=(
            sum(len(v) for v in c["tuned"].values()),
            sum(len(g) for _, g in GRIDS.values()),
            0,
        ),
        runs=(len(c["runs"]), len(GRIDS) * len(SEEDS), 0),
    )
    rows = []
    for o, (label, grid) in GRIDS.items():
        lr = c["lrs"][o]
        edge = "yes" if lr in (grid[0], grid[-1]) else ""
        rows.append([label, *[c["tuned"][o][g] for g in grid], f"{lr:g}", edge])
    table = Table(
        [
            "optimizer",
            "val. loss, low rate",
            "middle rate",
            "high rate",
            "chosen rate",
            "at the edge",
        ],
        rows,
        f"the tuning: final validation loss after {STEPS} steps at each rate of the grid "
        f"(seed {TUNE_SEED}); the grids: "
        + "; ".join(
            f"{label} {', '.join(f'{g:g}' for g in grid)}" for label, grid in GRIDS.values()
        ),
    )
    checks = [
        ck(
            "every chosen rate's tuning run ended with a finite validation loss",
            all(np.isfinite(c["tuned"][o][c["lrs"][o]]) for o in GRIDS),
            ", ".join(f"{c['tuned'][o][c['lrs'][o]]:.3g}" for o in GRIDS),
            "finite",
        )
    ]
    return Part("setting", "One loop, one dataset, a rate tuned for each", [text, table, checks])


# ------------------------------------------------------------------------------------------
# 2. the curves and the ranking (the training runs)

TRAINING = kit.Prose(
    """
The figure shows every optimizer's training and validation loss on the same axes, the line
the mean over the seeds {{seeds}} and the band their lowest and highest value. The table gives
the final values. By mean final validation loss the order is {{order}}.

An order of means is not a ranking: three seeds can reverse a small difference. The chapter
therefore calls an optimizer ahead of another only when every seed of the one ends below
every seed of the other. Of the {{pairs}} pairs, {{separated}} are separated in that sense,
and {{level}} are level (their seeds overlap). {{best}} has the lowest mean; it is ahead of
{{best_ahead}} of the other optimizers in every seed and level with {{best_level}}. SGD
without momentum, at its tuned rate, is behind {{sgd_behind}} of the others in every seed
({{sgd_names}}). The lectures say without hedging that plain SGD is slow at a fixed rate
(items 23 and 53); tuned, on this loop, that holds against those and no others. The level
pairs are {{level_pairs}}: pairs that these seeds cannot tell apart. That is item 29's
"task-dependent" in numbers: a claim of one best optimizer needs every pair with the best
separated, and more seeds than the lectures' figures ever show.

Every test accuracy of the table is the engine's record; a forward pass of each final model
on the test split, written here, gives the same values, to within {{acc_gap}}.""",
    pairs="the pairs of optimizers, against n(n - 1)/2",
    separated="pairs separated in every seed, counted again with numpy's broadcasting",
    level="pairs whose seeds overlap, against pairs less separated",
    best_ahead="optimizers the best is ahead of, counted again with numpy",
    best_level="optimizers level with the best, counted again with numpy",
    sgd_behind="optimizers ahead of SGD, counted again with numpy",
    acc_gap="the largest difference of the test accuracies, engine against our forward pass",
)


def _ahead(vals: dict[str, np.ndarray], a: str, b: str) -> bool:
    """``a`` ends below ``b`` in every seed (every value of a below every value of b)."""
    return bool(max(vals[a]) < min(vals[b]))


def _curves(train, val, lrs: dict[str, float]):
    """The figure of every optimizer's training and validation loss: the seeds' mean and range."""
    names = {o: GRIDS[o][0] for o in GRIDS}
    fig = FG.new_figure(12, 5.0)
    axes = fig.subplots(1, 2, sharex=True)
    colours = {o: FG.color_of(o, i) for i, o in enumerate(GRIDS)}
    for ax, series, title in ((axes[0], train, kit.WORDS["train/loss"]),
                              (axes[1], val, kit.WORDS["val/loss"])):  # fmt: skip
        for o in GRIDS:
            steps, v = series[o]
            colour = colours.get(o)
            ax.plot(steps, v.mean(0), lw=1.4, label=f"{names[o]}, η = {lrs[o]:g}", color=colour)
            ax.fill_between(steps, v.min(0), v.max(0), alpha=0.18, color=ax.lines[-1].get_color())
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"digits: {title} (mean and range of {len(SEEDS)} seeds)", fontsize=10)
    axes[0].set_ylabel("cross-entropy")
    fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=8)
    return fig


def _final_table(order, finals, train, acc, lrs, runs) -> Table:
    """The comparison's table: each optimizer's rate and its seeds' final values, its columns
    headed by the words of the series they hold (and read against ``runs``)."""
    rows = []
    for o in order:
        f = finals[o]
        t = train[o][1][:, -1]
        a = np.asarray([acc[(o, s)] for s in SEEDS])
        rows.append([GRIDS[o][0], f"{lrs[o]:g}", float(t.mean()), float(f.mean()),
                     f"[{f.min():.4g}, {f.max():.4g}]", float(a.mean())])  # fmt: skip
    words = kit.WORDS
    table = Table(
        ["optimizer", "rate", words["train/loss"], words["val/loss"], "seeds' range",
         words["test/accuracy"]],
        rows,
        f"descentlab's engine (train), digits MLP, batches of {BATCH}, {STEPS} steps; means over "
        f"the seeds {', '.join(str(s) for s in SEEDS)}",
        {GRIDS[o][0]: [runs[(o, s)] for s in SEEDS] for o in order},
    )  # fmt: skip
    return table


def _training(ctx: Context, n: kit.Numbers) -> Part:
    c = _compare(ctx)
    runs = c["runs"]
    train = _series(runs, "train/loss")
    val = _series(runs, "val/loss")
    finals = {o: val[o][1][:, -1] for o in GRIDS}
    order = sorted(GRIDS, key=lambda o: float(np.mean(finals[o])))
    names = {o: GRIDS[o][0] for o in GRIDS}
    pairs = list(itertools.combinations(GRIDS, 2))
    sep = [p for p in pairs if _ahead(finals, *p) or _ahead(finals, p[1], p[0])]
    # the second route: all pairs at once, by broadcasting the seeds' values
    m = np.vstack([finals[o] for o in GRIDS])
    below = m.max(1)[:, None] < m.min(1)[None, :]
    sep2 = int(np.triu(below | below.T, 1).sum())
    best = order[0]
    k = list(GRIDS).index(best)
    s_idx = list(GRIDS).index("sgd")
    best_ahead = [o for o in GRIDS if o != best and _ahead(finals, best, o)]
    best_level = [o for o in GRIDS if o != best and not _ahead(finals, best, o)
                  and not _ahead(finals, o, best)]  # fmt: skip
    sgd_behind = [o for o in GRIDS if o != "sgd" and _ahead(finals, o, "sgd")]
    acc = {key: kit.final(r, "test/accuracy") for key, r in runs.items()}
    mine = {key: _test_accuracy(r) for key, r in runs.items()}
    gap = max(abs(acc[key] - mine[key]) for key in runs)
    text = TRAINING.fill(
        n,
        seeds=", ".join(str(s) for s in SEEDS),
        order=", ".join(names[o] for o in order),
        best=names[best],
        level_pairs="; ".join(f"{names[a]} and {names[b]}" for a, b in pairs if (a, b) not in sep)
        or "none",
        pairs=(len(pairs), len(GRIDS) * (len(GRIDS) - 1) // 2, 0),
        separated=(len(sep), sep2, 0),
        level=(len(pairs) - len(sep), len(pairs) - sep2, 0),
        best_ahead=(len(best_ahead), int(below[k].sum()), 0),
        best_level=(
            len(best_level),
            len(GRIDS) - 1 - int(below[k].sum()) - int(below[:, k].sum()),
            0,
        ),
        sgd_behind=(len(sgd_behind), int(below[:, s_idx].sum()), 0),
        sgd_names=", ".join(names[o] for o in sgd_behind) or "none",
        acc_gap=kit.Twin(gap, 0.0, 1e-6, 2, rel=False),
    )
    fig = _curves(train, val, c["lrs"])
    table = _final_table(order, finals, train, acc, c["lrs"], runs)
    checks = [
        ck(
            "every run ended with a finite training loss",
            all(np.isfinite(kit.final(r, "train/loss")) for r in runs.values()),
            len(runs),
            "all finite",
        ),
        ck(
            "plain SGD is behind at least one optimizer in every seed",
            len(sgd_behind) >= 1,
            ", ".join(names[o] for o in sgd_behind) or "none",
            "at least one",
        ),
        ck(
            "the order of the table is the order of the means",
            all(np.mean(finals[a]) <= np.mean(finals[b]) for a, b in itertools.pairwise(order)),
            ", ".join(f"{np.mean(finals[o]):.4g}" for o in order),
            "increasing",
        ),
    ]
    return Part(
        "training",
        "Every optimizer on one loop: the curves and what they support",
        [text, fig, table, checks],
    )


# ------------------------------------------------------------------------------------------
# 3. the figure to move

MOVE = kit.Prose(
    """
Move the step at which the race is read: the page takes the seeds' validation losses the
build recorded and computes, for each optimizer, the mean and range at that step and the
order, and counts the pairs separated in every seed. Early on the means are spread wide; by
the end of the budget most of the field has closed the gap. The page's means
at the probes are the build's own numpy means.""",
)

MOVE_JS = """function (p) {
  var k = 0;
  while (k + 1 < p.steps.length && p.steps[k + 1] <= p.t) k++;
  var lines = [], values = {}, rows = [];
  p.names.forEach(function (name, i) {
    var runs = p.vals[i], mean = [], lo = [], hi = [];
    for (var j = 0; j <= k; j++) {
      var col = runs.map(function (r) { return r[j]; }), s = 0;
      col.forEach(function (v) { s += v; });
      mean.push(s / col.length);
      lo.push(Math.min.apply(null, col)); hi.push(Math.max.apply(null, col));
    }
    lines.push({x: p.steps.slice(0, k + 1), y: mean, label: name});
    values[name] = mean[k];
    rows.push([name, mean[k], lo[k], hi[k]]);
  });
  rows.sort(function (a, b) { return a[1] - b[1]; });
  var sep = 0;
  for (var a = 0; a < rows.length; a++) for (var b = a + 1; b < rows.length; b++)
    if (rows[a][3] < rows[b][2]) sep++;
  return {panels: [{x: {label: 'step', min: 0, max: p.steps[p.steps.length - 1]},
    y: {label: 'validation loss (mean of the seeds)', log: true}, lines: lines}],
    values: values,
    text: 'step ' + p.steps[k] + ': ' + rows.map(function (r) { return r[0]; }).join(' < ') +
      '; ' + sep + ' pairs separated in every seed'};
}"""


def _move(ctx: Context, n: kit.Numbers) -> Part:
    c = _compare(ctx)
    val = _series(c["runs"], "val/loss")
    names = [GRIDS[o][0] for o in GRIDS]
    steps = val["sgd"][0]
    probes = [
        Probe(
            {"t": float(t)},
            {GRIDS[o][0]: float(val[o][1][:, list(steps).index(t)].mean()) for o in GRIDS},
            1e-9,
        )
        for t in MOVE_AT
    ]
    fig = Live(
        "Move the step: the validation loss of every optimizer, mean of the seeds, and their "
        "order at that step.",
        [Slider("t", "step", float(EVERY), float(STEPS), float(STEPS), integer=True)],
        MOVE_JS,
        probes,
        against="the build's numpy means of the engine's records",
        constants={
            "steps": [int(s) for s in steps],
            "names": names,
            "vals": [val[o][1].tolist() for o in GRIDS],
        },
    )
    early = {o: float(val[o][1][:, list(steps).index(MOVE_AT[0])].mean()) for o in GRIDS}
    late = {o: float(val[o][1][:, -1].mean()) for o in GRIDS}
    spread = lambda d: max(d.values()) / min(d.values())  # noqa: E731
    checks = [
        ck(
            "the field is closer at the end than at step 100: the ratio of the worst mean to the "
            "best shrinks",
            spread(late) < spread(early),
            f"{spread(late):.3g}",
            f"< {spread(early):.3g}",
        )
    ]
    return Part("move", "Move the step: the race as it runs", [MOVE.fill(n), fig, checks])


# ------------------------------------------------------------------------------------------
# 4. the wall-time cost of mini-batches

WALL = kit.Prose(
    """
Items 12 and 13 say that a full-batch step is expensive and a mini-batch step cheap. Per step
that is obvious; per example it is the opposite question: how much does processing examples
together save? The build measures it on the machine that built this page,
`{{machine}}`, with descentlab's own loop: one epoch of SGD on the digits MLP at each batch
size, {{repeats}} times, the median kept. Two clocks: the engine's own time of the run
(forward, backward and the optimizer's step, on the thread's CPU clock, which other work on
the machine barely moves) and the wall time of the whole epoch (batching and the loop's
overhead included). Torch ran on one thread.

Per example, a batch of {{b_small}} costs {{speedup}} times the compute of the whole training
set at once: a matrix product of many rows uses the vector units and the caches that a
matrix-vector product leaves idle, and each step's fixed costs (the Python loop, the
optimizer's bookkeeping) are shared. The gain flattens: per doubling of the batch, the saving
is smaller among the large batches than among the small ones (the checks compare the slopes
of the figure's lower curve), and large batches save ever less time per example while taking
fewer steps per epoch, which is what the optimization chapters weigh
against the gradient's noise. The exact numbers depend on the machine and on its load; the
checks beside them test only shapes and ratios with wide margins, and the load average at
the start of the measurement is printed with the table.""",
    speedup="the compute per example at the smallest batch over the full batch's, against the "
    "median of the repeats' own ratios (30 %)",
)


def _machine() -> str:
    """The CPU's name, family and model (from /proc/cpuinfo; where there is none, the name
    Python's ``platform`` gives, said as such), its cores and torch's kernels."""
    name, family, model = platform.processor() or platform.machine(), "", ""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        name += " (no /proc/cpuinfo: the name Python's platform module gives)"
    else:
        with cpuinfo.open(encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if (
                    key == "model name"
                    and not name.startswith("Intel")
                    and not name.startswith("AMD")
                ):
                    name = value
                elif key == "cpu family" and not family:
                    family = value
                elif key == "model" and not model:
                    model = value
    caps = torch.backends.cpu.get_cpu_capability()
    return f"{name} (family {family} model {model}), {os.cpu_count()} cores, torch kernels {caps}"


def _walltime() -> dict[str, object]:
    from descentlab.problems import data

    n_train = data.load("digits", seed=0).x_train.shape[0]
    sizes = [b or n_train for b in SIZES]
    load = os.getloadavg()[0]
    cpu = {b: [] for b in sizes}
    wall = {b: [] for b in sizes}
    for _ in range(REPEATS):
        for b in sizes:  # interleaved: a slow moment of the machine spreads over every size
            r = _train({"problem": "digits", "model": "digits_mlp", "optimizer": "sgd",
                        "hyper": {"lr": 0.01}, "batch_size": b, "epochs": 1,
                        "evaluate_test": False, "evaluate_train": False, "seed": 0})  # fmt: skip
            cpu[b].append(kit.final(r, "progress/train_time") / n_train)
            wall[b].append(kit.final(r, "progress/wall_time") / n_train)
    return {"sizes": sizes, "cpu": cpu, "wall": wall, "load": load, "n": n_train}


def _slope(per: dict[int, float], a: int, b: int) -> float:
    """How fast the cost per example falls from batch ``a`` to ``b``: -d log t / d log B."""
    return float(np.log(per[a] / per[b]) / np.log(b / a))


def _wall(ctx: Context, n: kit.Numbers) -> Part:
    w = ctx.memo(("chapter", "compare", "walltime"), _walltime)
    sizes = w["sizes"]
    cpu = {b: float(np.median(w["cpu"][b])) for b in sizes}
    wall = {b: float(np.median(w["wall"][b])) for b in sizes}
    small, full = sizes[0], sizes[-1]
    ratios = [a / b for a, b in zip(w["cpu"][small], w["cpu"][full], strict=True)]
    text = WALL.fill(
        n,
        machine=_machine(),
        repeats=str(REPEATS),
        b_small=str(small),
        speedup=(cpu[small] / cpu[full], float(np.median(ratios)), 0.3),
    )
    rows = [
        [b, w["n"] // b + (w["n"] % b > 0), cpu[b] * w["n"], 1e6 * cpu[b], wall[b] * w["n"],
         1e6 * wall[b], cpu[small] / cpu[b]]
        for b in sizes
    ]  # fmt: skip
    table = Table(
        ["batch", "steps per epoch", "compute per epoch (s)", "compute per example (µs)",
         "wall per epoch (s)", "wall per example (µs)", "speed-up per example"],
        rows,
        f"one epoch of descentlab's SGD on the digits MLP ({w['n']} examples), median of "
        f"{REPEATS} interleaved repeats, one torch thread; {_machine()}; load average "
        f"{w['load']:.2f} at the start; built {ctx_date()}",
    )  # fmt: skip
    fig = FG.new_figure(8.5, 3.4)
    ax = fig.subplots()
    ax.plot(sizes, [1e6 * cpu[b] for b in sizes], marker="o", label="compute (thread CPU clock)")
    ax.plot(sizes, [1e6 * wall[b] for b in sizes], marker="s", label="wall clock, whole loop")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("time per example (µs)")
    ax.set_title("the cost of an example against the batch size (median of repeats)", fontsize=10)
    ax.legend(fontsize=8)
    per = [cpu[b] for b in sizes]
    checks = [
        ck(
            "per example, the smallest batch costs at least 5 times the full batch's compute",
            cpu[small] > 5 * cpu[full],
            f"{cpu[small] / cpu[full]:.3g}×",
            "> 5×",
        ),
        ck(
            "the compute per example never rises by more than half from one batch size to the "
            "next larger",
            all(b <= 1.5 * a for a, b in itertools.pairwise(per)),
            ", ".join(f"{1e6 * v:.3g}" for v in per),
            "each ≤ 1.5 × the last (µs)",
        ),
        ck(
            "the gain flattens: the log-log slope of the compute per example from batch 64 to "
            "the full batch is under 0.8 times its slope from batch 1 to 16",
            _slope(cpu, 64, full) < 0.8 * _slope(cpu, 1, 16),
            f"{_slope(cpu, 64, full):.2f}",
            f"< 0.8 × {_slope(cpu, 1, 16):.2f}",
        ),
        ck(
            "the wall clock agrees on the shape: the smallest batch costs at least 5 times the "
            "full batch's per example",
            wall[small] > 5 * wall[full],
            f"{wall[small] / wall[full]:.3g}×",
            "> 5×",
        ),
    ]
    return Part("walltime", "What a mini-batch costs, measured", [text, fig, table, checks])


def ctx_date() -> str:
    """Today's date, for the measurement's caption."""
    import datetime

    return datetime.date.today().isoformat()


# ------------------------------------------------------------------------------------------
# 5. from scratch

_scratch = kit.scratch(
    text="""
Two of the optimizers from scratch, in plain torch, on a least-squares problem: Adadelta
(item 78), whose step is the ratio of two running root-mean-squares and needs no rate of its
own, and Lion, which keeps only the sign of an interpolated momentum. The build runs them next
to descentlab's `Adadelta` and `Lion` and checks that every iterate is the same.""",
    code="""\
import torch
from descentlab import optim

"""
    + kit.LEAST_SQUARES
    + """

def adadelta(w, lr=1.0, rho=0.9, eps=1e-6, steps=100):
    sq, delta, path = torch.zeros_like(w), torch.zeros_like(w), []
    for _ in range(steps):
        gr = grad(w)
        sq = rho * sq + (1 - rho) * gr * gr
        step = (delta + eps).sqrt() / (sq + eps).sqrt() * gr
        delta = rho * delta + (1 - rho) * step * step
        w = w - lr * step
        path.append(w)
    return torch.stack(path)

def lion(w, lr=1e-3, b1=0.9, b2=0.99, steps=100):
    m, path = torch.zeros_like(w), []
    for _ in range(steps):
        gr = grad(w)
        w = w - lr * torch.sign(b1 * m + (1 - b1) * gr)
        m = b2 * m + (1 - b2) * gr
        path.append(w)
    return torch.stack(path)

"""
    + kit.least_squares_path("steps=100")
    + """

w0 = torch.zeros(5, dtype=torch.float64)
mine = torch.cat([adadelta(w0), lion(w0)])
library = torch.cat([descentlab_path(lambda p: optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6)),
                     descentlab_path(lambda p: optim.Lion(p, lr=1e-3, betas=(0.9, 0.99)))])
print("Adadelta after 100 steps:", [round(v, 6) for v in mine[99].tolist()])
print("Lion after 100 steps:    ", [round(v, 6) for v in mine[-1].tolist()])
print(f"largest difference from descentlab: {float((mine - library).abs().max()):.1e}")
""",
    what="Adadelta and Lion from scratch give descentlab's Adadelta and Lion iterates (100 "
    "steps each)",
)


KEEP = """
What to keep. Compare optimizers on one loop, one dataset and one budget, each at a rate tuned
on validation data and scored on other seeds; call one ahead of another only where every seed
agrees, and mark a rate chosen at the edge of its grid. On the digits, tuned, many pairs are
level within three seeds, plain SGD among them. Per example, a mini-batch is far cheaper than
single examples, and the saving flattens past a batch size that depends on the machine: time
it where you train."""

#: the chapter's exercises (:mod:`descentlab.book.chapters.practice`)
EXERCISES = practice.COMPARE

CHAPTER = kit.Chapter(
    "deep-compare",
    "Every optimizer on one loop, and what a mini-batch costs",
    "One training loop, every optimizer of the lectures and their modern kin (SGD, Momentum, "
    "Nesterov, AdaGrad, Adadelta, RMSProp, Adam, AdamW, Lion, Muon) on the digits the project "
    "ships, each at a tuned rate, with comparable curves over seeds and rankings only where "
    "every seed agrees; and the time per epoch and per example against the batch size, "
    "measured on the machine that built the page.",
    (12, 13, 23, 29, 39, 48, 53, 59, 78, 79, 131),
    (
        STEPS,
        BATCH,
        EVERY,
        TUNE_SEED,
        *SEEDS,
        REPEATS,
        8,
        100,
    ),
    (_setting, _training, _move, _wall, _scratch),
    KEEP,
    EXERCISES,
)
