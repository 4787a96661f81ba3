r"""Equal, declared tuning budgets: each optimizer's search space and its quasi-random draws.

``search="quasirandom"`` is AlgoPerf's external-tuning ruleset (Dahl et al. 2023, section
4.4): every tuned optimizer gets the same number of trials, never refined, drawn by a seeded
scrambled Halton sequence (``scipy.stats.qmc``) from the space it declares
(:func:`declared_space`; what that space holds: docs/compare.md, "Tune").

Warmup and schedule are *run* settings (the engine's ``schedule`` of ``lr``), the rest are
optimizer hyperparameters: :func:`run_fields` splits a drawn setting into the two.

Example:
    >>> from descentlab.experiments.compare.choices import parse_optimizer
    >>> space = declared_space(parse_optimizer("adam"))
    >>> [d.name for d in space.dims]
    ['lr', 'beta1', 'beta2', 'weight_decay', 'warmup', 'schedule']
    >>> a, b = space.draw(3, seed=0), space.draw(3, seed=0)
    >>> a == b and len(a) == 3 and all(1e-3 <= s["lr"] <= 0.1 for s in a)
    True
    >>> run_fields({"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "warmup": 0.1,
    ...             "schedule": "cosine"}, steps=100)
    ({'lr': 0.01, 'betas': (0.9, 0.99)}, {'lr': 'warmup(cosine(T_max=90), steps=10)'})

References:
    Dahl et al., "Benchmarking neural network training algorithms" (AlgoPerf), 2023,
    https://arxiv.org/abs/2306.07179 (external tuning: quasi-random search, 20 trials).
    Bousquet et al., "Critical hyper-parameters: no random, no cry", 2017 (quasi-random
    search for hyperparameters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from descentlab import optim
from descentlab.experiments.compare.choices import OptimizerChoice, defaults_of, has_hyper
from descentlab.experiments.tuning import round_sig


class CompareSpec(Protocol):
    """What this module reads of a :class:`~descentlab.experiments.compare.spec.CompareSpec`
    (described, not imported: the spec imports this module)."""

    search: str
    seed: int
    refine: bool
    tune_seeds: int
    lrs_per_optimizer: int
    tune_length: int
    prune: str | None


__all__ = [
    "DEFAULT_BUDGET",
    "ONE_MINUS",
    "QUASIRANDOM",
    "RUN_KEYS",
    "SCHEDULES",
    "WARMUPS",
    "WEIGHT_DECAY",
    "Dim",
    "SearchSpace",
    "budget_line",
    "declared_space",
    "draw_settings",
    "hyper_of",
    "run_fields",
]

#: The name of the equal-budget search (``CompareSpec.search``, ``--search``).
QUASIRANDOM = "quasirandom"
#: AlgoPerf's external-tuning budget: trials per optimizer (``--budget``).
DEFAULT_BUDGET = 20
#: The lr schedules a trial may draw (over the run after its warmup).
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "linear")
#: The warmup lengths a trial may draw, as fractions of its run (linear, from 0). Few
#: values, so that trials share vectorized passes (one per schedule and warmup).
WARMUPS: tuple[float, ...] = (0.0, 0.05, 0.1)
#: ``1 - value`` drawn log-uniformly from these ranges: momentum 0.5 .. 0.99, Adam's beta1 0.7
#: .. 0.98 and beta2 0.9 .. 0.999, RMSProp's alpha and Adadelta's rho 0.9 .. 0.999.
ONE_MINUS: dict[str, tuple[float, float]] = {
    "momentum": (0.01, 0.5),
    "beta1": (0.02, 0.3),
    "beta2": (1e-3, 0.1),
    "alpha": (1e-3, 0.1),
    "rho": (1e-3, 0.1),
}
#: Weight decay, log-uniform, for the optimizers that take it.
WEIGHT_DECAY: tuple[float, float] = (1e-6, 1e-2)
#: Setting keys that are run settings (the lr schedule), not optimizer hyperparameters.
RUN_KEYS: tuple[str, ...] = ("warmup", "schedule")


@dataclass(frozen=True)
class Dim:
    """One dimension of a search space.

    Attributes:
        name: the setting's key (``lr``, ``momentum``, ``beta1``, ``warmup``...).
        kind: ``"log"`` (log-uniform in ``[low, high]``), ``"one_minus_log"`` (``1 - x`` with
            ``x`` log-uniform in ``[low, high]``) or ``"choice"`` (one of ``values``).
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    values: tuple[Any, ...] = ()

    def at(self, u: float) -> Any:
        """The value at ``u`` in [0, 1) (a coordinate of a quasi-random point).

        Example:
            >>> Dim("lr", "log", 1e-3, 1e-1).at(0.5), Dim("s", "choice", values=("a", "b")).at(0.7)
            (0.01, 'b')
        """
        if self.kind == "choice":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        lo, hi = math.log(self.low), math.log(self.high)
        x = math.exp(lo + u * (hi - lo))
        if self.kind == "one_minus_log":
            return round_sig(1.0 - x, 4)
        return round_sig(x)

    def describe(self) -> str:
        """The dimension as text (``lr log-uniform [0.001, 0.1]``)."""
        if self.kind == "choice":
            return f"{self.name} in {{{', '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in self.values)}}}"  # noqa: E501
        if self.kind == "one_minus_log":
            return f"1-{self.name} log-uniform [{self.low:g}, {self.high:g}]"
        return f"{self.name} log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class SearchSpace:
    """The declared search space of one optimizer: its dimensions, drawn together."""

    dims: tuple[Dim, ...]

    def draw(self, n: int, *, seed: int) -> list[dict[str, Any]]:
        """The first ``n`` points of a scrambled Halton sequence (seeded) as settings.

        Halton rather than Sobol: any ``n`` keeps the sequence's balance (Sobol's needs a
        power of two). The same ``(n, seed)`` gives the same settings; a larger ``n`` extends
        a smaller one's draws.
        """
        from scipy.stats import qmc  # at first use: workers that only train never need it

        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"trials must be a positive integer, got {n!r}")
        points = qmc.Halton(d=len(self.dims), scramble=True, seed=seed).random(n)
        return [
            {d.name: d.at(float(u)) for d, u in zip(self.dims, row, strict=True)}
            for row in np.asarray(points)
        ]

    def describe(self) -> str:
        return ", ".join(d.describe() for d in self.dims)


def declared_space(choice: OptimizerChoice, extra: Mapping[str, Any] | None = None) -> SearchSpace:
    """The search space ``choice`` declares, with ``extra`` dimensions (a spec's ``space``
    for this optimizer: ``(low, high)`` log-uniform, a list a choice) replacing or adding.

    Only descentlab's optimizers (the package's and yours: ``file.py:Class``) declare more
    than the learning rate; for them, a dimension of :data:`ONE_MINUS` is declared when the
    optimizer *has* the hyperparameter (a non-zero default: Momentum's momentum, never SGD's),
    weight decay when it takes it, the betas where they are a pair. ``alpha`` and ``rho`` mean
    RMSprop's and Adadelta's smoothing only in the package: yours keep their defaults (AdEMAMix's
    ``alpha`` is a mixing weight of 5).
    """
    dims: dict[str, Dim] = {"lr": Dim("lr", "log", *map(float, choice.lr_range))}
    if choice.is_named:
        defaults = defaults_of(choice)
        fixed = set(choice.hyper)
        ours = choice.optimizer.lower() in optim.NAMES
        for key in ("momentum", "alpha", "rho") if ours else ("momentum",):
            if key not in fixed and has_hyper(choice, key):
                dims[key] = Dim(key, "one_minus_log", *ONE_MINUS[key])
        pair = isinstance(defaults.get("betas"), tuple | list) and len(defaults["betas"]) == 2
        if pair and "betas" not in fixed:
            for key in ("beta1", "beta2"):
                dims[key] = Dim(key, "one_minus_log", *ONE_MINUS[key])
        if "weight_decay" in defaults and "weight_decay" not in fixed:
            dims["weight_decay"] = Dim("weight_decay", "log", *WEIGHT_DECAY)
        dims["warmup"] = Dim("warmup", "choice", values=WARMUPS)
        dims["schedule"] = Dim("schedule", "choice", values=SCHEDULES)
    for key, values in (extra or {}).items():
        if isinstance(values, tuple):
            dims[key] = Dim(key, "log", float(values[0]), float(values[1]))
        else:
            dims[key] = Dim(key, "choice", values=tuple(values))
    return SearchSpace(tuple(dims.values()))


def draw_settings(
    spec: CompareSpec, choice: OptimizerChoice, extra: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The trials of one optimizer under the equal budget: ``spec.lrs_per_optimizer`` draws
    from its declared space (seeded by ``spec.seed``)."""
    return declared_space(choice, extra).draw(spec.lrs_per_optimizer, seed=spec.seed)


def hyper_of(setting: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer hyperparameters of a setting: run keys left out, ``beta1``/``beta2``
    joined into ``betas``."""
    hyper = {k: v for k, v in setting.items() if k not in RUN_KEYS and k not in ("beta1", "beta2")}
    if "beta1" in setting or "beta2" in setting:
        hyper["betas"] = (setting.get("beta1", 0.9), setting.get("beta2", 0.999))
    return hyper


def _lr_schedule(name: str, warmup: float, steps: int) -> str | None:
    """The lr schedule of a setting as a schedule spec (None: constant, no warmup)."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    if not (isinstance(warmup, int | float) and 0.0 <= warmup < 1.0):
        raise ValueError(f"warmup must be a fraction of the run in [0, 1), got {warmup!r}")
    w = max(1, round(warmup * steps)) if warmup > 0 else 0
    rest = max(1, steps - w)
    inner = {
        "constant": "constant()",
        "cosine": f"cosine(T_max={rest})",
        "linear": f"linear(1.0, 0.0, {rest})",
    }[name]
    if w:
        return f"warmup({inner}, steps={w})"
    return None if name == "constant" else inner


def run_fields(setting: Mapping[str, Any], *, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(hyper, schedule)`` of a setting for a run of ``steps`` steps: the optimizer's
    hyperparameters and the engine's ``schedule`` (``{}`` for a constant lr, no warmup)."""
    if not any(k in setting for k in RUN_KEYS):
        return hyper_of(setting), {}
    sched = _lr_schedule(
        str(setting.get("schedule", "constant")), setting.get("warmup", 0.0), steps
    )
    return hyper_of(setting), ({} if sched is None else {"lr": sched})


def budget_line(
    spec: CompareSpec, tuned: Sequence[OptimizerChoice], *, steps: str | None = None
) -> str:
    """The tuning budget as one line (printed under the table and in the report); ``steps``
    replaces the text on the trials' length (a suite's, per problem)."""
    n = len(tuned)
    seeds = f"{spec.tune_seeds} tuning seed{'s' if spec.tune_seeds != 1 else ''}"
    steps = steps or f"{spec.tune_length} steps each"
    if spec.search == QUASIRANDOM:
        return (
            f"budget: {spec.lrs_per_optimizer} trials for each of the {n} tuned optimizers, "
            f"drawn quasi-randomly (Halton, seed {spec.seed}) from each one's declared search "
            f"space; {seeds}; {steps}{_pruned(spec)}"
        )
    how = "a log grid of" if spec.search == "grid" else "random draws of"
    more = (
        ", then extended and refined (unequal budgets)"
        if spec.search == "grid" and spec.refine
        else ""
    )
    return (
        f"budget: {how} {spec.lrs_per_optimizer} learning rates per optimizer{more}; {seeds}; "
        f"{steps}{_pruned(spec)}"
    )


def _pruned(spec: CompareSpec) -> str:
    """The pruning rule, for the budget line (empty without pruning)."""
    if not getattr(spec, "prune", None):
        return ""
    from descentlab.experiments.compare.pruning import RULES

    return f"; {RULES[spec.prune]}"
