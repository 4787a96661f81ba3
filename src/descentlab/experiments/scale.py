r"""Does the winner hold as the model grows? The comparison at several model sizes, each
optimizer's speedup over a baseline at each size, and the speedup's trend against the
logarithm of the parameters with its interval (docs/scale.md).

A size is a value of the model's width option (:data:`WIDTH_OPTIONS`), or of your own model's
``size`` (:data:`OWN_WIDTH`: an objective reads ``run.size``, a problem's model factory takes
``size=``; the parameters are those of the model your code built); every size runs the
same :class:`~descentlab.experiments.compare.CompareSpec` (its own tuning at the same budget)
in a run directory of its own, so a size already finished is read back from its store, not
run again.

A speedup is Wen et al.'s: the baseline's steps per step of the candidate to reach the same
validation score. Where the candidate ends worse, it is the baseline's steps to the
candidate's final score over the candidate's (below 1); where it ends better, the
candidate's budget over its own steps to the baseline's final score (above 1); both read
from the comparison's bootstrap over the curve seeds (:meth:`Comparison.speedups`).

Example:
    >>> t = trend([1e4, 1e5, 1e6, 1e7],
    ...           [(1.2, 1.15, 1.25), (1.0, 0.95, 1.05), (0.8, 0.75, 0.85), (0.6, 0.55, 0.65)])
    >>> round(t.slope[0], 2), f"{t.crossing[0]:.3g}", t.extrapolated
    (-0.2, '1e+05', False)

References:
    Wen et al., "Fantastic pretraining optimizers and where to find them", 2025.
    Yang et al., "Tensor Programs V: tuning large neural networks via zero-shot
    hyperparameter transfer", 2022 (the models' ``mup`` option).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from descentlab.experiments.compare.speedup import time_withheld

__all__ = [
    "MAX_SIZES",
    "MIN_SIZES",
    "OWN_WIDTH",
    "REACH",
    "WIDTH_OPTIONS",
    "AtSize",
    "SizeResult",
    "Trend",
    "check_width",
    "study",
    "trend",
    "trends",
    "tuning_noise",
    "tuning_spread",
]

#: The width option of each model that has a size.
WIDTH_OPTIONS = {"cnn": "channels", "mlp": "hidden", "gru": "hidden", "gpt": "d_model",
                 "resnet20": "width", "resnet18": "width"}  # fmt: skip

#: The width your own model takes at each size: an objective reads ``run.size``; a problem of
#: your own has its model factory called with ``size=`` (its other options as they are).
OWN_WIDTH = "size"

#: Sizes a trend needs: two points fit any line exactly and leave no scatter to judge it by.
MIN_SIZES = 3

#: The most sizes a study takes: each one is a comparison of its own (its tuning and seeds).
MAX_SIZES = 16

#: Bytes a parameter takes to train, at least: fp32 weights, gradients and two optimizer
#: states (Adam's); a size whose parameters need more than the memory available is refused.
TRAIN_BYTES_PER_PARAM = 16

#: How far outside the sizes measured (tenfolds of parameters) a crossing's interval may
#: reach before it is refused: a line fitted over a decade or two says nothing at 10^4 times.
REACH = 2

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class AtSize:
    """One optimizer at one size: ``steps``/``seconds``: its speedup over the baseline
    ``(estimate, low, high)`` (the baseline's own: 1.0); ``lr``: its tuned learning rate;
    ``verdict``: the comparison's word for it at this size ("chosen", "worse", ...);
    ``withheld``: why the speedup in time is not given (it trained in another execution mode
    than the baseline: :func:`~descentlab.experiments.compare.speedup.time_withheld`)."""

    label: str
    steps: Triple
    seconds: Triple
    lr: float | None
    verdict: str
    withheld: str = ""
    #: how far the speedup in steps varies from where the tuning landed at this size (a
    #: standard deviation in the speedup's units, from both optimizers' tuning trials:
    #: :func:`tuning_noise`) and its degrees of freedom; None where the trials cannot say
    tuning: float | None = None
    tuning_df: float | None = None


@dataclass(frozen=True)
class SizeResult:
    """One size of a study: the width option and its value, the model's parameters, the
    baseline, one :class:`AtSize` an optimizer, the comparison's headline and its run
    directory."""

    option: str
    size: int
    params: int
    baseline: str
    rows: tuple[AtSize, ...]
    headline: str
    run_dir: str

    def row(self, label: str) -> AtSize | None:
        return next((r for r in self.rows if r.label == label), None)


@dataclass(frozen=True)
class Trend:
    """The speedup against ``log10(parameters)``: a weighted least-squares line.

    Attributes:
        slope: the change of the speedup per tenfold parameters ``(estimate, low, high)``.
        crossing: the parameters at which the line reaches a speedup of 1.0
            ``(estimate, low, high)``; None where it is refused (``refusal`` says why).
        extrapolated: the crossing, or its interval, reaches outside the sizes measured.
        draws: ``(intercept, slope)`` rows drawn from the fit's normal distribution (the bands).
        refusal: one line where no trend (or no crossing) can be said, else "".
        between: the sizes' scatter about the line beyond their own intervals (a standard
            deviation: each size's own tuning), a variance component of the fit's own.
        between_from: where ``between`` comes from: "residuals" (the sizes' scatter about
            the line, on ``n - 2`` degrees of freedom) or "tuning trials" (each size's own
            tuning trials, ``trend(..., tuning=...)``, pooled with the residuals).
    """

    slope: Triple | None
    crossing: Triple | None
    extrapolated: bool
    draws: np.ndarray
    refusal: str = ""
    between: float = 0.0
    between_from: str = "residuals"

    def band(self, params: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, ...]:
        """The fitted speedup at ``params`` and its pointwise interval (three arrays)."""
        x = np.log10(np.asarray(params, dtype=float))
        lines = self.draws[:, :1] + self.draws[:, 1:] * x
        q = (1 - confidence) / 2
        low, high = np.quantile(lines, [q, 1 - q], axis=0)
        return np.median(lines, axis=0), low, high


def own_model(spec: Any) -> str | None:
    """Where the model a study scales is the user's own: ``"objective"`` (its code reads
    ``run.size``), ``"problem"`` (a problem of the user's whose own model trains: its factory
    takes ``size=``), else None (a model of :data:`WIDTH_OPTIONS`): its trials' kind says."""
    from descentlab.experiments.kinds import kind_of

    return kind_of(spec).own_model(spec)


def size_option(model: str | None) -> str:
    """The width option of ``model`` (None: your own model's, :data:`OWN_WIDTH`); a model
    without one is refused in one line."""
    if model is None:
        return OWN_WIDTH
    if model not in WIDTH_OPTIONS:
        raise ValueError(
            f"model {model!r} has no size to vary: a scale study needs one of "
            + ", ".join(f"{m} ({o})" for m, o in WIDTH_OPTIONS.items())
        )
    return WIDTH_OPTIONS[model]


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """At least :data:`MIN_SIZES` and at most :data:`MAX_SIZES` distinct positive sizes,
    ascending."""
    if any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"--sizes must be positive integers, got {','.join(map(str, sizes))}")
    if len(set(sizes)) > MAX_SIZES:
        raise ValueError(
            f"--sizes gives {len(set(sizes))} sizes; a study takes at most {MAX_SIZES} (each "
            "size is a whole comparison of its own): choose fewer"
        )
    if len(set(sizes)) < MIN_SIZES:
        raise ValueError(
            f"--sizes needs at least {MIN_SIZES} different sizes for a trend, got "
            f"{len(set(sizes))} ({','.join(map(str, sizes))})"
        )
    return sorted(set(sizes))


def check_width(spec: Any, model: str | None) -> None:
    """Refuse, in one line, a width set by ``--model-option`` as well: each size replaces it
    (``model`` None: your own model's ``size``)."""
    option = size_option(model)
    if option in (spec.model_options or {}):
        raise ValueError(
            f"--model-option {option}={spec.model_options[option]} is the width a scale study "
            f"sets to each of --sizes: give the widths in --sizes alone"
        )


def spec_at(spec: Any, model: str, size: int) -> Any:
    """``spec`` with the model's width set to ``size`` and a run directory of its own."""
    option = size_option(model)
    options = {**(spec.model_options or {}), option: size}
    base = spec.name or spec.run_name()
    return dataclasses.replace(spec, model=model, model_options=options,
                               name=f"{base}-{option}{size}")  # fmt: skip


def model_and_params(spec: Any, size: int | None = None) -> tuple[str, int]:
    """The model's name (the problem's default where the spec names none) and its trainable
    parameters at ``size`` (None: as the spec has it)."""
    from descentlab.engine.building import build
    from descentlab.engine.config import checked_config
    from descentlab.problems.models import count_params

    options = dict(spec.model_options or {})
    if size is not None:
        options[size_option(spec.model)] = size
    config = {"problem": spec.problem, "problem_options": dict(spec.problem_options or {}),
              "model": spec.model, "model_options": options, "optimizer": "sgd"}  # fmt: skip
    built = build(checked_config({**config, "steps": 1})[0])
    return built.model_name, count_params(built.model)


def size_params(spec: Any, sizes: Sequence[int]) -> list[int]:
    """The trainable parameters of ``spec``'s model (a name of :data:`WIDTH_OPTIONS`) at each
    of ``sizes``: the problem loaded once, each model built on torch's meta device (no
    memory); a size whose training needs more memory than is available now is refused in
    one line, before anything trains."""
    import torch

    from descentlab.engine.building import build
    from descentlab.engine.config import checked_config
    from descentlab.problems import models
    from descentlab.problems.models import count_params

    if own_model(spec) == "problem":
        return _own_params(spec, sizes)
    option = size_option(spec.model)
    config = {"problem": spec.problem, "problem_options": dict(spec.problem_options or {}),
              "model": spec.model, "model_options": {**(spec.model_options or {}),
                                                     option: min(sizes)},
              "optimizer": "sgd", "steps": 1}  # fmt: skip
    splits = build(checked_config(config)[0]).splits
    room = _available_memory()
    out = []
    for size in sizes:
        with torch.device("meta"):
            model = models.build(spec.model, input_shape=splits.input_shape,
                                 n_outputs=splits.n_outputs,
                                 **{**config["model_options"], option: size})  # fmt: skip
        params = count_params(model)
        need = params * TRAIN_BYTES_PER_PARAM
        if room is not None and need > room:
            raise ValueError(
                f"--sizes {size}: model {spec.model!r} with {option}={size} has {params:,} "
                f"parameters, at least {need / 2**30:,.1f} GiB to train (fp32 weights, "
                f"gradients and optimizer state), more than the {room / 2**30:,.1f} GiB "
                "available here; nothing was trained"
            )
        out.append(params)
    return out


def _own_params(spec: Any, sizes: Sequence[int]) -> list[int]:
    """The trainable parameters of the model a problem of the user's builds at each of
    ``sizes`` (its factory called with ``size=``, on torch's meta device where it can be
    built there); a factory that takes no ``size``, or builds the same parameters at every
    size, is refused in one line before anything trains."""
    import inspect

    import torch

    from descentlab.problems.models import count_params
    from descentlab.problems.problem import build_model, load_problem

    problem = load_problem(spec.problem, **dict(spec.problem_options or {}))
    where = f"scale over your problem {spec.problem.split('#')[0]}"
    try:
        params = inspect.signature(problem.model).parameters.values()
    except (TypeError, ValueError):  # (a callable without a signature: it is tried)
        params = [inspect.Parameter("size", inspect.Parameter.VAR_KEYWORD)]
    if not any(p.name == OWN_WIDTH or p.kind is p.VAR_KEYWORD for p in params):
        raise ValueError(
            f"{where}: its model factory takes no {OWN_WIDTH!r} keyword: each of --sizes reaches "
            f"it as {OWN_WIDTH}= (e.g. model=lambda size=32: Net(hidden=size))"
        )
    options = dict(spec.model_options or {})
    counts = []
    for size in sizes:
        try:
            with torch.device("meta"):
                model = build_model(problem.model, where, **options, **{OWN_WIDTH: size})
        except ValueError:  # (a factory that reads data or tensors: built here)
            model = build_model(problem.model, where, **options, **{OWN_WIDTH: size})
        counts.append(count_params(model))
    check_growing(sizes, counts, "its model factory ignores its size keyword")
    return counts


def check_growing(sizes: Sequence[int], counts: Sequence[int | None], why: str) -> None:
    """Refuse, in one line, sizes whose models (those counted so far: ``counts``' None not yet
    built) do not have more parameters the larger the size: ``why`` says what the code does."""
    known = [(s, c) for s, c in zip(sizes, counts, strict=False) if c is not None]
    if len(known) < 2:
        return
    if len({c for _, c in known}) == 1:
        shown = ", ".join(str(s) for s, _ in known)
        which = "every size" if len(known) == len(sizes) else "the sizes trained so far"
        raise ValueError(
            f"{which} ({OWN_WIDTH} {shown}) built the same {known[0][1]:,} parameters: {why}"
        )
    for (s0, c0), (s1, c1) in itertools.pairwise(known):
        if c1 <= c0:
            raise ValueError(
                f"{OWN_WIDTH} {s1} built {c1:,} parameters, {OWN_WIDTH} {s0} {c0:,}: a larger "
                "size must build more parameters for a trend in them"
            )


def _available_memory() -> int | None:
    """Bytes of memory available now (None where the system does not say)."""
    import os

    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        return pages * os.sysconf("SC_PAGE_SIZE") if pages > 0 else None
    except (ValueError, OSError, AttributeError):
        return None


def study(
    spec: Any,
    sizes: Sequence[int],
    runs_dir: str | Path,
    *,
    say: Callable[[str], None] = print,
    check_folder: Callable[[Path], None] | None = None,
    **compare_options: Any,
) -> list[SizeResult]:
    """Run ``spec`` (a :class:`~descentlab.experiments.compare.CompareSpec`) at each size and
    read each size's speedups over ``spec.baseline`` (its first optimizer where it names
    none); ``compare_options`` go to :func:`~descentlab.experiments.compare.compare`. Every
    size is checked (and its run directory by ``check_folder``) before the first one runs."""
    from descentlab.experiments.compare import compare
    from descentlab.experiments.kinds import kind_of
    from descentlab.problems.problem import BUILTIN_PROBLEMS, is_problem_ref

    sizes = check_sizes(list(sizes))
    own = own_model(spec)
    model = None if own else model_and_params(spec)[0]
    check_width(spec, model)
    if spec.model and is_problem_ref(spec.problem) and spec.problem not in BUILTIN_PROBLEMS:
        say(
            f"note: --model {spec.model} over your problem {spec.problem}: each size trains "
            f"descentlab's {spec.model} on your problem's data and loss, not your problem's "
            f"own model (leave --model out to scale yours: its model factory takes "
            f"{OWN_WIDTH}=)"
        )
    spec = dataclasses.replace(spec, model=model)
    specs = [spec_at(spec, model, s) for s in sizes]
    for s in specs:
        s.validate()
        if check_folder is not None:
            check_folder(Path(runs_dir) / s.name)
    # every size built (on the meta device) first; your code's models, as its trials train them
    kind = kind_of(spec)
    counts: list[int | None] = (
        [None] * len(sizes) if kind.counts_as_trained else list(size_params(spec, sizes))
    )
    option, out = size_option(model), []
    for i, (size, s) in enumerate(zip(sizes, specs, strict=True)):
        built = "" if counts[i] is None else f" ({counts[i]:,} parameters)"
        say(f"size {i + 1}/{len(sizes)}: {option}={size}{built}")
        cmp = compare(s, runs_dir, **compare_options)
        if counts[i] is None:  # (counted as its trials built them: its kind says how many)
            counts[i] = kind.built_params(cmp.store_path)
            if counts[i] is None:
                raise ValueError(
                    f"{option}={size}: no trial of the objective said how many parameters it "
                    "built (run.optimizer(params) counts them): nothing to scale"
                )
            say(f"{option}={size}: your objective built {counts[i]:,} parameters")
            check_growing(sizes, counts, "the objective ignores its size: read run.size")
        out.append(read_size(cmp, option, size, int(counts[i] or 0)))
    return out


def read_size(cmp: Any, option: str, size: int, params: int) -> SizeResult:
    """One size's row from its finished comparison ``cmp``."""
    base_label = cmp.spec.baseline or cmp.results[0].label
    base = next(r for r in cmp.results if r.label == base_label)
    verdicts = {x.result.label: ("chosen" if i == 0 else x.verdict)
                for i, x in enumerate(cmp.ranking())}  # fmt: skip
    forward = {s.label: s for s in cmp.speedups(base)}
    rows = []
    for r in cmp.results:
        lr = (r.best_setting or {}).get("lr")
        if r is base:
            steps = seconds = (1.0, 1.0, 1.0)
        else:
            back = next((s for s in cmp.speedups(r) if s.label == base_label), None)
            steps, seconds = (combined(forward.get(r.label), back, key)
                              for key in ("steps", "seconds"))  # fmt: skip
        lr = None if lr is None else float(lr)
        verdict = verdicts.get(r.label, "no test runs")
        noise = None
        if r is not base:
            per_score = _per_score(cmp, r, base, steps[0])
            noise = tuning_noise(_landing(r, cmp), _landing(base, cmp), per_score)
        rows.append(AtSize(r.label, steps, seconds, lr, verdict, time_withheld(r, base),
                           *(noise or (None, None))))  # fmt: skip
    return SizeResult(
        option, size, params, base_label, tuple(rows), cmp.headline(), str(cmp.run_dir)
    )


#: ``v`` uniform on ``[0, g / 2]`` (the distance from a best lr within a gap ``g`` between
#: two learning rates tried to the nearer): ``E v^2 = g^2 / 12``, ``E v^4 = g^4 / 80``
#: (:func:`tuning_spread`).
MOMENTS = (12.0, 80.0)


def tuning_spread(
    lrs: Sequence[float], scores: Sequence[float], *, maximize: bool = True
) -> tuple[float, float] | None:
    """How far below the best its learning rates could reach a size's tuning lands, as a
    standard deviation in the score's units, from its tuning trials: ``(sd, df)``.

    A parabola in ``log10(lr)`` fitted to the trials' scores (least squares) gives the
    response's curvature ``c`` about its best. The learning rates tried are the same at every
    size and the best one lies anywhere within their range, a gap ``g`` (between two tried)
    with probability ``g / span``; the trial nearest it is chosen, ``v``, uniform on ``[0, g /
    2]``, from it, and lands ``c v^2`` below the best. Over the gaps: ``E D = c sum(g^3 / 12) /
    span``, ``E D^2 = c^2 sum(g^5 / 80) / span`` (:data:`MOMENTS`), and the sd is ``sqrt(E
    D^2 - (E D)^2)`` (one gap ``h`` apart throughout: ``c h^2 / sqrt(180)``). ``df``: the
    parabola's residual degrees of freedom (the finite trials less 3). None where the trials
    cannot say: fewer than 4 distinct learning rates with a finite score, or a response that
    is not concave.

    Example:
        >>> u = np.array([-4.0, -3.5, -3.0, -2.5, -2.0, -1.5])
        >>> sd, df = tuning_spread(10**u, 0.9 - 0.5 * (u + 2.8) ** 2)
        >>> round(sd / (0.5 * 0.5**2 / math.sqrt(180)), 6), df
        (1.0, 3.0)
    """
    u = np.log10(np.asarray(lrs, dtype=float))
    y = np.asarray(scores, dtype=float) * (1.0 if maximize else -1.0)
    ok = np.isfinite(u) & np.isfinite(y)
    tried = np.unique(u[ok])
    if len(tried) < 4:
        return None
    curvature = -float(np.polyfit(u[ok], y[ok], 2)[0])
    if not curvature > 0:
        return None
    gaps = np.diff(tried)
    span = float(gaps.sum())
    m1 = float((gaps**3).sum()) / MOMENTS[0] / span
    m2 = float((gaps**5).sum()) / MOMENTS[1] / span
    return curvature * math.sqrt(max(m2 - m1 * m1, 0.0)), float(ok.sum() - 3)


def tuning_noise(
    candidate: tuple[float, float] | None,
    baseline: tuple[float, float] | None,
    per_score: float,
) -> tuple[float, float] | None:
    """The speedup's standard deviation from where both optimizers' tuning landed at one
    size, and its degrees of freedom: each one's :func:`tuning_spread` ``(sd, df)`` (``(0,
    inf)``: a fixed learning rate, no tuning) in the score's units, independent, carried into
    the speedup's by ``per_score`` (its change per unit of the score: :func:`_per_score`, the
    delta method); Satterthwaite's degrees of freedom for the sum. None where either cannot
    say or ``per_score`` is not finite."""
    if candidate is None or baseline is None or not math.isfinite(per_score):
        return None
    (sc, dc), (sb, db) = candidate, baseline
    var = sc * sc + sb * sb
    if var == 0:
        return 0.0, math.inf
    parts = (sc**4 / dc if sc else 0.0) + (sb**4 / db if sb else 0.0)
    return abs(per_score) * math.sqrt(var), var * var / parts


def _landing(r: Any, cmp: Any) -> tuple[float, float] | None:
    """:func:`tuning_spread` of one optimizer's tuning trials (``(0, inf)``: a fixed lr)."""
    from descentlab.experiments.compare.speedup import _maximize

    if not r.candidates:
        return 0.0, math.inf
    lrs = [c.setting.get("lr") for c in r.candidates]
    if r.best is None or any(not isinstance(v, (int, float)) or v <= 0 for v in lrs):
        return None
    scores = [c.score for c in r.candidates]
    return tuning_spread(lrs, scores, maximize=_maximize(cmp))


def _per_score(cmp: Any, cand: Any, base: Any, speedup: float) -> float:
    """How much the speedup in steps ``speedup`` changes per unit of the score (the delta
    method through the curve it is read on): below 1 it is the baseline's steps to the
    candidate's final score over the budget ``T``, so ``1 / (T slope_b)``; above 1 the budget
    over the candidate's steps to the baseline's, so ``S^2 / (T slope_c)``; each slope the
    mean curve's over the evaluations about that step. inf where it cannot be read (no
    curve, a curve not rising there)."""
    from descentlab.experiments.compare.speedup import _curve, _maximize

    if not math.isfinite(speedup) or speedup <= 0:
        return math.inf
    end = cmp.spec.steps
    got = _curve(base if speedup <= 1 else cand, cmp.select_metric, end)
    if got is None or len(got[0]) < 2:
        return math.inf
    steps, values = got
    with np.errstate(all="ignore"):
        mean = np.nanmean(values, axis=0) * (1.0 if _maximize(cmp) else -1.0)
    slope = curve_slope(steps, mean, end * min(speedup, 1 / speedup))
    if not slope > 0:
        return math.inf
    return 1.0 / (end * slope) if speedup <= 1 else speedup * speedup / (end * slope)


def curve_slope(steps: np.ndarray, mean: np.ndarray, at: float) -> float:
    """A mean curve's slope at step ``at``: the derivative there of the parabola fitted (least
    squares) to the 5 evaluations nearest it (a line through 2 where only 2 are finite)."""
    x, y = np.asarray(steps, dtype=float), np.asarray(mean, dtype=float)
    near = np.argsort(np.abs(x - at), kind="stable")[:5]
    x, y = x[near], y[near]
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return math.nan
    coef = np.polyfit(x[ok] - at, y[ok], min(2, int(ok.sum()) - 1))
    return float(coef[-2])


def trends(
    sizes: Sequence[SizeResult],
    *,
    confidence: float = 0.95,
    seeds: int | None = None,
    draws: int = 4000,
) -> dict[str, Trend]:
    """Each optimizer's :func:`trend` over the baseline across a study's ``sizes``: with each
    size's tuning noise (:attr:`AtSize.tuning`) where the tuning trials say it at every size
    (``Trend.between_from``: "tuning trials"), else from the sizes' residuals ("residuals").
    The one fit ``descentlab scale`` prints and scripts/scale_trend_calibration.py
    measures."""
    base = sizes[0].baseline
    out = {}
    for r in sizes[0].rows:
        if r.label == base:
            continue
        rows = [s.row(r.label) for s in sizes]
        sd = [x.tuning for x in rows]
        df = [x.tuning_df for x in rows]
        known = {}
        if all(v is not None for v in sd + df):
            known = {"tuning": sd, "tuning_df": pooled_df(sd, df)}
        out[r.label] = trend([s.params for s in sizes], [x.steps for x in rows],
                             confidence=confidence, seeds=seeds, draws=draws,
                             **known)  # fmt: skip
    return out


def pooled_df(sd: Sequence[float], df: Sequence[float]) -> float:
    """The degrees of freedom ``m`` a size that makes the mean of the sizes' squared ``sd``
    as variable as theirs (Satterthwaite: ``n mean(sd^2)^2 / sum(sd^4 / df)``; inf where
    every sd is 0 or known exactly)."""
    parts = sum(s**4 / d for s, d in zip(sd, df, strict=True) if s)
    mean = float(np.mean(np.square(sd)))
    return len(sd) * mean * mean / parts if parts > 0 else math.inf


def combined(forward: Any, back: Any, key: str) -> Triple:
    """The candidate's speedup over the baseline from the comparison's two readings
    (module docstring): ``forward`` (the baseline's steps to the candidate's final score,
    over the candidate's budget: inf where the candidate ends better) and ``back`` (the
    candidate's steps to the baseline's final score over its budget, inverted). Both come
    from the same bootstrap resamples, so each end of the interval is read from the side
    that holds it."""
    nan = (math.nan,) * 3
    f = getattr(forward, key, nan) if forward is not None else nan
    b = getattr(back, key, nan) if back is not None else nan
    # 0: reached at once (no bound above); inf: not reached (the other side holds it)
    inv = tuple(1.0 / v if 0 < v < math.inf else math.inf if v == 0 else math.nan for v in b)

    def pick(first: float, then: float) -> float:
        return first if math.isfinite(first) or not math.isfinite(then) else then

    return pick(f[0], inv[0]), pick(f[1], inv[2]), pick(inv[1], f[2])


def trend(
    params: Sequence[float],
    speedups: Sequence[Triple],
    *,
    confidence: float = 0.95,
    draws: int = 4000,
    seed: int = 0,
    seeds: int | None = None,
    tuning: Sequence[float] | None = None,
    tuning_df: float | None = None,
) -> Trend:
    """Fit ``speedup = a + b log10(params)`` as a random-effects meta-regression: each size
    weighted by its interval (``(estimate, low, high)``: a standard deviation of ``(high -
    low) / (2 z)``; where ``seeds`` says the intervals are bootstraps over ``k`` curve seeds,
    the sizes' mean variance, a floor the residuals scale) plus a between-size variance of
    its own -- each
    size's own tuning lands a little off the line, and no size's interval holds that --
    estimated from the sizes' residuals (DerSimonian and Laird); the covariance scaled by the
    weighted residual variance where it exceeds 1 (Knapp and Hartung) and read with Student's
    quantile on ``n - 2`` degrees of freedom (:func:`_fit`). Scatter beyond the intervals
    widens the slope's interval instead of refusing the line: with a few sizes, tuning
    noise and a curve cannot be told apart. The parameters where the line reaches 1.0 have
    Fieller's interval (the sizes at which 1.0 lies within the line's own interval);
    ``draws`` of the coefficients give the figures' bands. Refused, in ``refusal``: fewer
    than :data:`MIN_SIZES` sizes, fewer than 2 curve seeds or a speedup that is not finite
    (no trend); a slope whose interval includes 0 (the scatter beyond the intervals said),
    a crossing more than the sizes' own span (in tenfolds) outside them, or one whose
    interval reaches more than :data:`REACH` tenfolds outside them (no crossing: too wide
    or too far to say).

    ``tuning`` (one standard deviation a size, in the speedup's units) and ``tuning_df``
    (the degrees of freedom of each size's, e.g. the number of its tuning trials less one)
    say how much each size's tuned speedup varies, measured from its own tuning trials:
    the between-size variance is then their pooled square, not the residuals' estimate,
    and the quantile is Student's on the degrees of freedom of the seeds' and the tuning's
    variances together (Satterthwaite: about 20 at 4 sizes, 2 seeds and 5 a size's tuning
    sd) instead of ``n - 2`` (4.30 on 4 sizes); residuals beyond them still widen the
    interval (:func:`_fit`). ``Trend.between_from`` says which was used."""
    x = np.log10(np.asarray(params, dtype=float))
    est = np.array([s[0] for s in speedups], dtype=float)
    lo = np.array([s[1] for s in speedups], dtype=float)
    hi = np.array([s[2] for s in speedups], dtype=float)
    if (refusal := _no_trend(x, est, lo, hi, seeds)) is not None:
        return Trend(None, None, False, np.zeros((0, 2)), refusal)
    known = _check_tuning(tuning, tuning_df, len(x))
    coef, cov, tau, z = _fit(x, est, (hi - lo) / 2, confidence, seeds, known)
    src = "residuals" if known is None else "tuning trials"
    boot = np.random.default_rng(seed).multivariate_normal(coef, cov, size=draws)
    half = z * math.sqrt(cov[1, 1])
    slope = (float(coef[1]), float(coef[1] - half), float(coef[1] + half))
    if slope[1] <= 0 <= slope[2]:
        scatter = (f" (the sizes scatter about the line by {tau:.2g} beyond their intervals: "
                   "each size's own tuning, or a curve)") if tau > 0 else ""  # fmt: skip
        return Trend(slope, None, False, boot,
                     f"the slope's interval [{slope[1]:+.3f}, {slope[2]:+.3f}] per tenfold "
                     f"parameters includes 0{scatter}: the intervals are too wide to say "
                     "where the speedup reaches 1.0", tau, src)  # fmt: skip
    x0, low, high = _fieller(coef, cov, z)
    span = float(x.max() - x.min())
    if x0 < x.min() - span or x0 > x.max() + span:
        return Trend(slope, None, True, boot,
                     f"the line reaches 1.0 at {10**x0:.3g} parameters, more than the sizes' "
                     f"own span ({span:.2g} tenfolds) outside them: too far to say",
                     tau, src)  # fmt: skip
    if low < x.min() - REACH or high > x.max() + REACH:
        return Trend(slope, None, True, boot,
                     f"the line reaches 1.0 at {10**x0:.3g} parameters with an interval "
                     f"reaching more than {10**REACH:g}x outside the sizes measured: too far "
                     "to say", tau, src)  # fmt: skip
    crossing = tuple(float(10.0**v) if v < 300 else math.inf for v in (x0, low, high))
    return Trend(slope, crossing, not x.min() <= low <= high <= x.max(), boot, "", tau, src)


def _no_trend(
    x: np.ndarray, est: np.ndarray, lo: np.ndarray, hi: np.ndarray, seeds: int | None
) -> str | None:
    """Why :func:`trend` fits no line to these sizes (``x``: their log10 parameters) and
    speedups: too few sizes, a speedup that is not finite, fewer than 2 curve seeds; None:
    it fits one."""
    if len(x) < MIN_SIZES:
        return f"a trend needs at least {MIN_SIZES} sizes, got {len(x)}"
    bad = ~(np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi))
    if bad.any():
        which = ", ".join(f"{10**v:,.0f}" for v in x[bad])
        return f"the speedup is not finite at {which} parameters: no trend"
    if seeds is not None and seeds < 2:
        return (
            f"each size's speedup comes from {seeds} curve seed: a bootstrap over "
            "one seed gives no interval, so no trend (--seeds 2 or more)"
        )
    return None


def _check_tuning(
    tuning: Sequence[float] | None, tuning_df: float | None, n: int
) -> tuple[np.ndarray, float] | None:
    """``trend``'s ``tuning`` and ``tuning_df``, checked: one finite standard deviation at
    least 0 a size, and degrees of freedom above 0; None where no tuning is given."""
    if tuning is None and tuning_df is None:
        return None
    if tuning is None or tuning_df is None:
        raise ValueError(
            f"trend: tuning={tuning!r} and tuning_df={tuning_df!r}: give "
            "both (each size's tuning sd, its degrees of freedom) or neither"
        )
    try:
        sd = np.asarray(tuning, dtype=float)
    except (TypeError, ValueError):
        sd = np.full(0, math.nan)
    try:
        m = float(tuning_df)
    except (TypeError, ValueError):
        m = math.nan
    if sd.shape != (n,) or not (np.isfinite(sd) & (sd >= 0)).all():
        raise ValueError(f"trend: tuning={tuning!r}: one finite standard deviation at least 0 "
                         f"a size ({n} sizes)")  # fmt: skip
    if not m > 0:  # (inf: each size's known exactly)
        raise ValueError(f"trend: tuning_df={tuning_df!r}: degrees of freedom above 0")
    return sd, m


def _fit(
    x: np.ndarray,
    est: np.ndarray,
    half: np.ndarray,
    confidence: float,
    seeds: int | None,
    known: tuple[np.ndarray, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The random-effects line through ``(x, est)``: each size's variance its interval's
    (half-width ``half``, widened for ``seeds`` curve seeds: :func:`trend`) plus a
    between-size variance ``tau^2`` that no interval holds -- the size's own tuning, which
    lands a little off the line at each size -- estimated from the sizes' residuals
    (DerSimonian and Laird's moment estimator for a meta-regression); the coefficients'
    covariance then scaled by the weighted residual variance where it exceeds 1 (Knapp and
    Hartung) and read with Student's quantile on ``n - 2``. Returns the coefficients, their
    covariance, ``tau`` and that quantile.

    ``known``: each size's tuning sd measured from its tuning trials and the degrees of
    freedom of each: ``tau^2`` is their mean square (``n tuning_df`` degrees of freedom), not
    the residuals' estimate; each size's within variance is its interval's, corrected for
    the percentile bootstrap's narrowness over a few seeds (:func:`_narrowness`). The
    variance of the line is then known to Satterthwaite's degrees of freedom of the two
    together (the seeds' ``n (k - 1)``, the tuning's ``n tuning_df``), and the quantile is
    Student's on those; the covariance is still scaled by the weighted residual variance
    where it exceeds 1 (Knapp and Hartung), so scatter beyond what the tuning trials say
    (a curve) widens the interval, and none narrows it."""
    from scipy import special

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    # one within-size variance for every size, their mean: a bootstrap over a few curve seeds
    # gives each size's own so roughly (2 seeds: one degree of freedom) that weighting by it
    # hands the line to whichever size's seeds happened to agree. It is a floor, not the
    # scale: the residuals about the line carry the seeds' noise and the tuning's together,
    # read on n - 2 degrees of freedom (Knapp and Hartung below)
    # (``seeds`` None: the intervals are taken as exact, each size's own)
    within = np.maximum(half / z, 1e-3) ** 2
    if seeds is not None:
        within = np.full(len(x), float(np.mean(within)))
    design = np.column_stack([np.ones_like(x), x])
    df = len(x) - 2

    def wls(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        cov = np.linalg.inv(design.T @ (w[:, None] * design))
        coef = cov @ design.T @ (w * est)
        return coef, cov, float((w * (est - design @ coef) ** 2).sum())

    quantile = 0.5 + confidence / 2
    if known is not None:
        sd, m = known
        tau2 = float(np.mean(sd**2))
        within = within * _narrowness(seeds, confidence)
        coef, cov, q = wls(1.0 / (within + tau2))
        # the model's variance: the seeds' (n (k - 1) degrees of freedom, pooled) and the
        # tuning's (n m): Satterthwaite's degrees of freedom for their sum. (Pooling the
        # residuals' Q/(n - 2) with it, by degrees of freedom, read a flat truth as a trend
        # 6.6 % of the time at 2 seeds and 4 sizes; the larger of the two, 4.8 %.)
        w_bar, n = float(np.mean(within)), len(x)
        df_w = n * (seeds - 1) if seeds is not None else math.inf
        parts = w_bar**2 / df_w + tau2**2 / (n * m)
        df_model = (w_bar + tau2) ** 2 / parts if parts > 0 else math.inf
        scale = max(1.0, q / df) if df > 0 else 1.0
        t = z if math.isinf(df_model) else float(special.stdtrit(df_model, quantile))
        return coef, cov * scale, math.sqrt(tau2), t
    w = 1.0 / within
    coef, cov, q = wls(w)
    # the between-size variance: Cochran's Q less its degrees of freedom over the trace of
    # the weighted residual projection, at least 0
    trace = float(w.sum() - np.trace(cov @ (design.T @ ((w * w)[:, None] * design))))
    tau2 = max(0.0, (q - df) / trace) if df > 0 and trace > 0 else 0.0
    coef, cov, q = wls(1.0 / (within + tau2))
    cov = cov * max(1.0, q / df) if df > 0 else cov
    return coef, cov, math.sqrt(tau2), float(special.stdtrit(max(df, 1), 0.5 + confidence / 2))


@functools.lru_cache(maxsize=64)
def _narrowness(seeds: int | None, confidence: float) -> float:
    """How much narrower than the variance of a mean over ``seeds`` curve seeds the squared
    half-width over z of its percentile bootstrap is, on average (the comparison's bootstrap,
    :data:`~descentlab.experiments.compare.speedup.RESAMPLES` resamples of the seeds): the
    bootstrap's variance is the plug-in ``(k - 1) / k`` of the unbiased one, and over a few
    seeds the percentile interval is their range or near it (2 seeds: ``z^2``, not 2).
    Measured on normal seeds, seeded, so the same every time; 1 where ``seeds`` is None
    (the intervals taken as exact)."""
    if seeds is None:
        return 1.0
    from descentlab.experiments.compare.speedup import RESAMPLES

    rng, z = np.random.default_rng(seeds), NormalDist().inv_cdf(0.5 + confidence / 2)
    q = ((1 - confidence) / 2, (1 + confidence) / 2)
    squares = []
    for _ in range(10):  # 10 x 200 studies, each 200 with resamples of their own
        counts = np.zeros((RESAMPLES, seeds))
        np.add.at(
            counts, (np.arange(RESAMPLES)[:, None], rng.integers(0, seeds, (RESAMPLES, seeds))), 1
        )
        means = rng.standard_normal((200, seeds)) @ counts.T / seeds
        low, high = np.quantile(means, q, axis=1)
        squares.append(((high - low) / (2 * z)) ** 2)
    return float(1.0 / seeds / np.mean(squares))


def _fieller(coef: np.ndarray, cov: np.ndarray, q: float) -> tuple[float, float, float]:
    """Where the line ``coef`` reaches 1.0 and Fieller's interval at quantile ``q``: the x at
    which 1.0 lies within the line's own interval there."""
    a, b, q2 = coef[0] - 1.0, coef[1], q * q
    qa, qb, qc = b * b - q2 * cov[1, 1], b * a - q2 * cov[0, 1], a * a - q2 * cov[0, 0]
    root = math.sqrt(max(qb * qb - qa * qc, 0.0))
    return -a / b, (-qb - root) / qa, (-qb + root) / qa
