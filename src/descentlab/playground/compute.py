"""The playground's numbers: every request checked against :data:`LIMITS`, then computed by
descentlab (landscapes, optimizers, batched trajectories); the browser only draws.

Each function takes the decoded JSON of one request (a ``dict``) and returns a JSON-ready
``dict``; bad input raises :class:`RequestError` (HTTP 422) naming the field and the value,
before anything is computed.

Example:
    >>> out = run_paths({"landscape": "parabola", "starts": [[4.0]], "steps": 2,
    ...                  "optimizers": [{"name": "sgd", "lr": 0.2}]})
    >>> [round(x[0], 6) for x in out["runs"][0]["paths"][0]]   # x_{k+1} = x_k - 0.2 (2 x_k - 4)
    [4.0, 3.2, 2.72]
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from descentlab import optim
from descentlab.experiments.compare import parse_rule  # the compare --optimizer grammar
from descentlab.problems import described, landscapes
from descentlab.problems import trajectories as T

__all__ = [
    "CHAIN_COLOR",
    "LIMITS",
    "QUADRATIC_KAPPA",
    "Cancelled",
    "RequestError",
    "defaults",
    "goh_optimum",
    "lr_map",
    "meta",
    "opened",
    "run_paths",
    "surface",
]

#: Bounds of every request (a request past one gets HTTP 422 with a message).
LIMITS: dict[str, Any] = {
    "body_bytes": 64 * 1024,
    "steps": 1000,
    "map_steps": 500,
    "starts": 16,
    "optimizers": 8,
    "rule_chars": 300,
    "map_side": 64,
    "grid": 200,
    "kappa": (1.0, 1e4),
    "lr": (1e-6, 100.0),  # the records' demonstration rates reach 20 (Adadelta on the ravine)
    "coord": 1e3,
}

#: The hyperparameters the page has sliders for.
SLIDERS = ("lr", "momentum", "betas", "eps")
_NOT_OFFERED = ("noisy_quadratic",)  # stochastic: a path of noise, not a descent picture
_lock = threading.Lock()  # one computation at a time: the machine's cores go to it

#: The quadratic's condition number when the page opens: large enough that gradient descent
#: visibly crawls along the shallow axis while heavy ball, at Goh's optimum, does not.
QUADRATIC_KAPPA = 100.0
#: A composed chain's colour: none of the optimizers' own (their records' colours).
CHAIN_COLOR = "#FF00FF"
#: The optimizers switched on when a landscape opens (its lesson at first sight).
_ON_2D = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
_ON = {
    "quadratic": ("sgd", "momentum"),  # the sqrt(kappa) speed-up, nothing in the way
    "double_well": ("sgd", "momentum"),  # gradient descent stays, momentum rolls over
}
_ON_1D = ("sgd",)  # the derivatives lecture's picture: plain gradient descent, iterates labelled
#: Views whose lesson is momentum's, where heavy ball and Nesterov open at gradient descent's
#: learning rate (the same step, plus the velocity) and not at their record's tenth of it,
#: whose long-run step lr / (1 - momentum) is gradient descent's: on Rosenbrock that drew
#: gradient descent, momentum and Nesterov as one flat curve, and in the double well momentum
#: stopped in the shallow minimum beside gradient descent.
_MOMENTUM_VIEWS = ("rosenbrock", "double_well")
_AT_GD_RATE = ("momentum", "nesterov")
#: Steps when a landscape opens, where not 300 (1-D lecture pictures: 12): the double well's
#: momentum is over the barrier in about 20.
_STEPS = {"quadratic": 150, "double_well": 100}


class RequestError(ValueError):
    """A request the playground refuses (HTTP 422); the message names field and value."""


class Cancelled(RuntimeError):
    """The client went away (a newer request superseded this one): the work was dropped."""


# --------------------------------------------------------------------------------------------
# validation helpers


def _field(req: Any, name: str, default: Any = ...) -> Any:
    if not isinstance(req, dict):
        raise RequestError(f"the request must be a JSON object, got {type(req).__name__}")
    if name not in req:
        if default is ...:
            raise RequestError(f"missing field {name!r}")
        return default
    return req[name]


def _number(name: str, v: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise RequestError(f"{name} must be a finite number, got {v!r}")
    if v < lo or v > hi or (lo_open and v == lo):
        left = "(" if lo_open else "["
        raise RequestError(f"{name} must be in {left}{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _integer(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise RequestError(f"{name} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise RequestError(f"{name} must be between {lo} and {hi}, got {v}")
    return v


def _check_keys(name: str, req: dict, allowed: tuple[str, ...]) -> None:
    extra = sorted(set(req) - set(allowed))
    if extra:
        raise RequestError(f"unknown field(s) in {name}: {', '.join(map(repr, extra))}")


def _coord_range(name: str, value: Any) -> tuple[float, float]:
    """An increasing ``[low, high]`` of coordinates within the limits."""
    if not isinstance(value, list) or len(value) != 2:
        raise RequestError(f"{name} must be [low, high], got {value!r}")
    c = LIMITS["coord"]
    lo, hi = _number(f"{name}[0]", value[0], -c, c), _number(f"{name}[1]", value[1], -c, c)
    if not lo < hi:
        raise RequestError(f"{name} must be increasing, got {value!r}")
    return lo, hi


def _landscape(req: dict) -> landscapes.Landscape:
    name = _field(req, "landscape")
    if not isinstance(name, str) or name not in _offered():
        raise RequestError(f"landscape must be one of {', '.join(_offered())}, got {name!r}")
    if name == "quadratic":
        lo, hi = LIMITS["kappa"]
        kappa = _number("kappa", _field(req, "kappa", QUADRATIC_KAPPA), lo, hi)
        return landscapes.get("quadratic", kappa=kappa)
    return landscapes.get(name)


def _offered() -> tuple[str, ...]:
    return tuple(n for n in landscapes.NAMES if n not in _NOT_OFFERED)


def _starts(f: landscapes.Landscape, value: Any) -> list[list[float]]:
    if not isinstance(value, list) or not value:
        raise RequestError(f"starts must be a non-empty list of points, got {value!r}")
    if len(value) > LIMITS["starts"]:
        raise RequestError(f"at most {LIMITS['starts']} starts, got {len(value)}")
    out = []
    for i, p in enumerate(value):
        if not isinstance(p, list) or len(p) != f.dim:
            raise RequestError(f"starts[{i}] must be a list of {f.dim} numbers, got {p!r}")
        c = LIMITS["coord"]
        out.append([_number(f"starts[{i}]", x, -c, c) for x in p])
    return out


def _named_params(name: str) -> dict[str, Any]:
    """The slider hyperparameters a named optimizer takes, with their defaults.

    A slider is offered only for a number (``betas``: a pair of numbers); a wrapper whose
    ``lr`` defaults to None (Lookahead, SAM) shows its base optimizer's default rate, and
    a structured default such as Adafactor's ``eps=(None, 1e-3)`` gets no slider.
    """
    sig = inspect.signature(optim.get(name).__init__).parameters
    out: dict[str, Any] = {}
    for k in SLIDERS:
        if k not in sig:
            continue
        v = sig[k].default
        if k == "lr" and v is None and isinstance(sig.get("base", None), inspect.Parameter):
            v = _named_params(sig["base"].default).get("lr")
        if k == "betas" and isinstance(v, tuple) and all(_is_number(b) for b in v):
            out[k] = list(v)
        elif k != "betas" and _is_number(v):
            out[k] = v
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _optimizer(i: int, spec: Any) -> tuple[Any, float | None, dict[str, Any], str]:
    """(optimizer for trajectories.run, lr, other hyperparameters, label)."""
    where = f"optimizers[{i}]"
    if not isinstance(spec, dict):
        raise RequestError(f"{where} must be an object, got {spec!r}")
    _check_keys(where, spec, ("name", "rule", "label", *SLIDERS))
    lo, hi = LIMITS["lr"]
    hyper: dict[str, Any] = {}
    if "rule" in spec:
        text = spec["rule"]
        if not isinstance(text, str) or not text.strip():
            raise RequestError(f"{where}.rule must be a rule expression, got {text!r}")
        if len(text) > LIMITS["rule_chars"]:
            raise RequestError(
                f"{where}.rule is {len(text)} characters long; at most {LIMITS['rule_chars']}"
            )
        try:
            rule = parse_rule(text)
        except (KeyError, ValueError, RecursionError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            raise RequestError(f"{where}.rule: {msg}") from None
        if any(isinstance(r, optim.sam_ascent) for r in rule.rules):
            raise RequestError(
                f"{where}.rule: sam_ascent() in a chain only passes the gradient through; the "
                "ascent to w + rho g/|g| and the gradient taken there are the work of the named "
                "optimizer 'sam' (optim.SAM), so this chain would draw plain gradient descent: "
                "switch on 'sam' instead"
            )
        lr = None
        if "lr" in spec and "lr" in rule.defaults and not _typed_lr(text):
            lr = _number(f"{where}.lr", spec["lr"], lo, hi)
        for key in ("momentum", "betas", "eps"):
            if key in spec and key in rule.defaults:
                hyper[key] = _hyper_value(where, key, spec[key], rule)
        label = spec.get("label") or text
        return rule, lr, hyper, str(label)[:80]
    name = spec.get("name")
    if not isinstance(name, str) or name.lower() not in optim.NAMES:
        raise RequestError(f"{where}.name must be one of {', '.join(optim.NAMES)}, got {name!r}")
    name = name.lower()
    accepted = _named_params(name)
    lr = _number(f"{where}.lr", spec["lr"], lo, hi) if "lr" in spec else None
    for key in ("momentum", "betas", "eps"):
        if key in spec:
            if key not in accepted:
                raise RequestError(f"{where}: {name} takes no {key!r}")
            hyper[key] = _hyper_value(where, key, spec[key], _chain(name))
    return name, lr, hyper, name


def _typed_lr(text: str) -> bool:
    """Whether a rule expression sets ``lr=`` itself (then it runs at that rate, not the
    slider's: the page says so, :func:`_notes`)."""
    from descentlab.engine.config import parse_call

    def sets_lr(node: Any) -> bool:
        if isinstance(node, list | tuple):
            return any(sets_lr(x) for x in node)
        if not isinstance(node, dict):
            return False
        return "lr" in node or any(sets_lr(v) for k, v in node.items() if k != "name")

    return sets_lr(
        parse_call(text, "composed optimizer", "'chain(scale_by_adam(), scale_by_lr())'")
    )


#: a run whose every path ends closer to its start than this fraction of the picture's
#: narrowest side "barely moved" (the picture shows flat lines): the page says so
STALLED = 0.01


def _notes(
    f: landscapes.Landscape, label: str, tr: Any, lr: float | None, typed: bool
) -> list[str]:
    """What the page says beside a run: a chain run at the rate its text sets (not the
    slider's), a run that barely moved (at this rate the picture shows flat lines)."""
    out = []
    if typed:
        out.append(f"{label}: runs at the lr its rule sets (the lr slider does not apply)")
    side = min(hi - lo for lo, hi in f.domain)
    kept = tr.diverged_at < 0
    if bool(kept.all()):
        moved = (tr.paths[:, -1] - tr.paths[:, 0]).norm(dim=-1).max().item() / side
        if moved < STALLED:
            rate = f" at lr {lr:g}" if lr is not None else ""
            out.append(
                f"{label} barely moved{rate}: every path ends within {100 * moved:.2g}% of the "
                f"picture's width of its start after {tr.paths.shape[1] - 1} steps (flat lines, "
                "not a plateau): raise its lr"
            )
    return out


@functools.lru_cache(maxsize=64)
def _chain(name: str) -> Any:
    """The update rule of the named optimizer ``name`` (its declared checks)."""
    with warnings.catch_warnings():  # (a chain without a fused form says so: not here)
        warnings.simplefilter("ignore", RuntimeWarning)
        return optim.get(name)([torch.nn.Parameter(torch.zeros(1))]).rule


def _hyper_value(where: str, key: str, v: Any, rule: Any) -> Any:
    """A slider's value (``momentum``, ``eps``, or ``betas``: a list of numbers) after a type
    check, refused by the optimizer's declared checks only (their words: ``rule``'s
    :meth:`~descentlab.optim.Rule.changed_checks`, the relations that read ``key`` included),
    in one line naming the field and the value."""
    if key != "betas":
        value: Any = _number(f"{where}.{key}", v, -math.inf, math.inf)
    elif not isinstance(v, list) or not v:
        raise RequestError(f"{where}.betas must be a list of numbers, got {v!r}")
    else:
        value = tuple(_number(f"{where}.betas[{i}]", b, -math.inf, math.inf)
                      for i, b in enumerate(v))  # fmt: skip
    hyper = {**rule.defaults, key: value}
    try:
        for test in rule.changed_checks(frozenset({key})):
            test(hyper)
    except (TypeError, ValueError) as exc:
        said = str(exc)  # "eps must be ..." names the field; torch's words ("Invalid ...") too
        line = f"{where}.{said}" if said.startswith(key) else f"{where}: {said}"
        raise RequestError(line) from None
    return value


def _bound(f: landscapes.Landscape) -> float:
    """Runs leaving a box 100x the plotting domain count as diverged (and freeze)."""
    return 100.0 * max(max(abs(a), abs(b)) for a, b in f.domain)


def _clean(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


@contextlib.contextmanager
def _machine(cancel: threading.Event | None) -> Iterator[None]:
    """Hold the computation lock; give up (:class:`Cancelled`) as soon as ``cancel`` is set
    while waiting for it or before starting."""
    while not _lock.acquire(timeout=0.02):
        if cancel is not None and cancel.is_set():
            raise Cancelled("the client went away before the computation started")
    try:
        if cancel is not None and cancel.is_set():
            raise Cancelled("the client went away before the computation started")
        yield
    finally:
        _lock.release()


def _run(f, opt, starts, steps, lr, hyper, cancel=None, **kw) -> T.Trajectories:
    try:
        with _machine(cancel):
            return T.run(
                f, opt, torch.tensor(starts, dtype=torch.float64), steps, lr=lr,
                hyper=hyper, bound=_bound(f), **kw,
            )  # fmt: skip
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise RequestError(str(msg)) from None


def _check_descends(f, where: str, rule, starts, lr, hyper, cancel=None) -> None:
    """A composed chain's first step must go downhill from every start with a gradient.

    descentlab adds a rule's output to the parameters; only ``scale_by_lr()`` (or
    ``velocity``) turns a gradient into a step *against* it, so a chain without one (or one
    that flips the sign back) climbs. One eager step from each start, then the sign of
    ``(x_1 - x_0) . grad f(x_0)``.
    """
    tr = _run(f, rule, starts, 1, lr, hyper, cancel, kernel=False)
    x0 = torch.tensor(starts, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(x0).sum(), x0)
    step = tr.paths[:, 1] - tr.paths[:, 0]
    ahead = (step * g).sum(-1)
    for i in range(len(starts)):
        if bool(g[i].abs().max() > 0) and float(ahead[i]) > 0:
            at = ", ".join(f"{v:g}" for v in starts[i])
            raise RequestError(
                f"{where}.rule: its first step from ({at}) goes uphill (along +gradient): "
                "descentlab adds a rule's output to x, and only scale_by_lr() (or velocity) "
                "turns the gradient into a step against it; end the chain with scale_by_lr(), "
                "e.g. chain(trace(momentum=0.9), scale_by_lr())"
            )


# --------------------------------------------------------------------------------------------
# endpoints


def goh_optimum(mu: float, L: float) -> dict[str, float]:
    """The optimal constant step sizes on a quadratic whose Hessian has its eigenvalues in
    ``[mu, L]`` (Goh, "Why Momentum Really Works", Distill 2017; Polyak 1964):

    - gradient descent: ``lr = 2 / (mu + L)``, error shrinking by ``(kappa - 1)/(kappa + 1)``
      per step;
    - heavy ball (torch's momentum form, ``lr`` outside the buffer, which at a constant rate
      is Polyak's ``x - alpha grad + beta (x - x_prev)`` with ``alpha = lr``):
      ``alpha = (2 / (sqrt(mu) + sqrt(L)))^2``, ``beta = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2``,
      rate ``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)``.

    Example:
        >>> o = goh_optimum(0.01, 1.0)
        >>> round(o["gd_lr"], 4), round(o["hb_lr"], 4), round(o["hb_momentum"], 4)
        (1.9802, 3.3058, 0.6694)
    """
    kappa = L / mu
    root = math.sqrt(kappa)
    return {
        "gd_lr": 2.0 / (mu + L),
        "gd_rate": (kappa - 1) / (kappa + 1),
        "hb_lr": (2.0 / (math.sqrt(mu) + math.sqrt(L))) ** 2,
        "hb_momentum": ((root - 1) / (root + 1)) ** 2,
        "hb_rate": (root - 1) / (root + 1),
    }


def _marks(f: landscapes.Landscape) -> dict[str, dict[str, dict[str, Any]]]:
    """Values to mark on the optimizers' sliders: on the quadratic, Goh's optima."""
    if f.name != "quadratic":
        return {}
    mu, L = f.params["mu"], f.params["L"]
    o = goh_optimum(mu, L)
    src = "(Goh, Why Momentum Really Works, Distill 2017)"
    hb = (
        f"heavy ball's optimum on eigenvalues in [{mu:g}, {L:g}]: error x{o['hb_rate']:.3g} "
        f"per step against gradient descent's x{o['gd_rate']:.3g} {src}"
    )
    return {
        "sgd": {
            "lr": {
                "value": o["gd_lr"],
                "label": f"optimal lr = 2/(mu+L) = {o['gd_lr']:.3g}: error x{o['gd_rate']:.3g} "
                f"per step {src}",
            }
        },
        "momentum": {
            "lr": {"value": o["hb_lr"], "label": f"optimal lr = (2/(sqrt mu + sqrt L))^2 "
                   f"= {o['hb_lr']:.3g}, {hb}"},
            "momentum": {"value": o["hb_momentum"], "label": "optimal momentum = "
                         f"((sqrt k - 1)/(sqrt k + 1))^2 = {o['hb_momentum']:.3g}, {hb}"},
        },
    }  # fmt: skip


def _mark_notes(f: landscapes.Landscape) -> dict[str, str]:
    """One line under each optimizer with marked sliders (what the marks are) or opened at
    another optimizer's rate (why)."""
    if f.name in _MOMENTUM_VIEWS:
        lr = optim.record("sgd").lr_on(f)
        return {
            name: f"opens at gradient descent's lr {lr:g}: the same step plus the velocity "
            f"(at a tenth of it, lr / (1 \u2212 momentum) would be gradient descent's step)"
            for name in _AT_GD_RATE
        }
    if f.name != "quadratic":
        return {}
    o = goh_optimum(f.params["mu"], f.params["L"])
    k = f"{f.params['kappa']:g}"
    return {
        "sgd": f"\u25b2 optimal for \u03ba = {k}: lr = 2/(\u03bc+L) = {o['gd_lr']:.3g}; the "
        f"error shrinks \u00d7{o['gd_rate']:.3g} per step",
        "momentum": f"\u25b2 Goh's optimum for \u03ba = {k}: lr {o['hb_lr']:.3g}, momentum "
        f"{o['hb_momentum']:.3g}; the error shrinks \u00d7{o['hb_rate']:.3g} per step "
        f"(gradient descent: \u00d7{o['gd_rate']:.3g})",
    }


def defaults(f: landscapes.Landscape) -> dict[str, Any]:
    """What the page opens with on ``f``: every optimizer's slider values (the learning rate
    of its record, :meth:`~descentlab.optim.records.OptimizerRecord.lr_on`; its signature's
    other defaults), the values marked on the sliders (on the quadratic Goh's optimal rates,
    which are then also the defaults of gradient descent and momentum; on the views of
    :data:`_MOMENTUM_VIEWS` momentum and Nesterov at gradient descent's rate), the optimizers
    switched on, the number of steps, the learning-rate map's optimizer and rows and, on the
    quadratic, kappa."""
    marks = _marks(f)
    notes = _mark_notes(f)
    opts: dict[str, dict[str, Any]] = {}
    for name in optim.NAMES:
        params = _named_params(name)
        params["lr"] = optim.record(name).lr_on(f)
        if f.name in _MOMENTUM_VIEWS and name in _AT_GD_RATE:
            params["lr"] = optim.record("sgd").lr_on(f)
        for key, mark in marks.get(name, {}).items():
            params[key] = mark["value"]
        opts[name] = params
    one_d = f.dim == 1
    out: dict[str, Any] = {
        "optimizers": opts,
        "marks": marks,
        "notes": notes,
        "on": list(_ON.get(f.name, _ON_1D if one_d else _ON_2D)),
        "steps": _STEPS.get(f.name, 12 if one_d else 300),
        # the map: on the quadratic, momentum over lr x momentum, Goh's optimum at its corner
        "map": {"optimizer": "momentum", "mode": "lr_momentum"}
        if f.name == "quadratic"
        else {"optimizer": "sgd", "mode": "lr_start"},
    }
    if f.name == "quadratic":
        out["kappa"] = f.params["kappa"]
    return out


def opened(name: str) -> landscapes.Landscape:
    """The landscape as the page opens it (the quadratic at :data:`QUADRATIC_KAPPA`)."""
    if name == "quadratic":
        return landscapes.get(name, kappa=QUADRATIC_KAPPA)
    return landscapes.get(name)


def meta() -> dict[str, Any]:
    """Landscapes with their defaults, optimizers with their colours, and the limits."""
    lands = []
    for name in _offered():
        f = opened(name)
        gm = f.global_minimum
        lands.append(
            {
                "name": name,
                "dim": f.dim,
                "plain": f.plain,
                "description": f.description,
                # what the description says that the landscape does not compute: shown as ✘
                "description_mismatches": described.description_mismatches(f),
                "domain": [list(d) for d in f.domain],
                "start": list(f.start),
                "lr": f.lr,
                "minimum": gm.value if gm is not None else None,
                "points": [{"x": list(p.x), "kind": p.kind} for p in f.points],
                "one_d": f.dim == 1,
                "defaults": defaults(f),
            }
        )
    opts = [
        {"name": n, "display": optim.record(n).display, "color": optim.record(n).color,
         "params": _named_params(n), "map": T.stacks_runs(n)}
        for n in optim.NAMES
    ]  # fmt: skip
    limits = {k: list(v) if isinstance(v, tuple) else v for k, v in LIMITS.items()}
    return {"landscapes": lands, "optimizers": opts, "limits": limits, "chain_color": CHAIN_COLOR}


def surface(req: Any) -> dict[str, Any]:
    """The landscape on a grid over its domain (1-D: a curve) for the contour map."""
    f = _landscape(req)
    _check_keys("the request", req, ("landscape", "kappa", "n", "x_range"))
    n = _integer("n", _field(req, "n", 120), 10, LIMITS["grid"])
    if f.dim == 1:
        (lo, hi), = f.domain  # fmt: skip
        if "x_range" in req:  # the view grown to show iterates that left the domain
            lo, hi = _coord_range("x_range", req["x_range"])
        x = torch.linspace(lo, hi, 4 * n, dtype=torch.float64)
        with torch.no_grad():
            y = f(x[:, None])
        return {"dim": 1, "x": x.tolist(), "f": _clean(y.tolist()), "plain": f.plain,
                "defaults": defaults(f)}  # fmt: skip
    elif "x_range" in req:
        raise RequestError(f"x_range applies to 1-D landscapes only, not {f.name}")
    (x0, x1), (y0, y1) = f.domain[:2]
    xs = torch.linspace(x0, x1, n, dtype=torch.float64)
    ys = torch.linspace(y0, y1, n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
    with torch.no_grad():
        z = f(grid)
    zmin = float(z.min())
    gm = f.global_minimum
    if gm is not None:
        zmin = min(zmin, gm.value)
    span = float(z.max()) - zmin
    # contours of log10(f - f_min + a small offset): valleys and plateaus both show
    shown = torch.log10(z - zmin + 1e-3 * span + 1e-12)
    shown = torch.round(shown, decimals=3)  # for drawing only: a third of the bytes
    return {
        "dim": 2,
        "x": xs.tolist(),
        "y": ys.tolist(),
        "z": shown.tolist(),
        "f_min": zmin,
        "plain": f.plain,
        "defaults": defaults(f),
    }


def run_paths(req: Any, cancel: threading.Event | None = None) -> dict[str, Any]:
    """Every optimizer from every start: paths ``x_0..x_T``, losses, divergence.

    ``cancel``: set when the client has gone; the work not yet started is dropped
    (:class:`Cancelled`)."""
    f = _landscape(req)
    _check_keys("the request", req, ("landscape", "kappa", "starts", "steps", "optimizers"))
    starts = _starts(f, _field(req, "starts"))
    steps = _integer("steps", _field(req, "steps"), 1, LIMITS["steps"])
    specs = _field(req, "optimizers")
    if not isinstance(specs, list) or not specs:
        raise RequestError(f"optimizers must be a non-empty list, got {specs!r}")
    if len(specs) > LIMITS["optimizers"]:
        raise RequestError(f"at most {LIMITS['optimizers']} optimizers, got {len(specs)}")
    parsed = [_optimizer(i, s) for i, s in enumerate(specs)]  # all checked before any runs
    for i, (opt, lr, hyper, _) in enumerate(parsed):
        if not isinstance(opt, str):
            _check_descends(f, f"optimizers[{i}]", opt, starts, lr, hyper, cancel)
    gm = f.global_minimum
    runs = []
    notes: list[str] = []
    for i, (opt, lr, hyper, label) in enumerate(parsed):
        tr = _run(f, opt, starts, steps, lr, hyper, cancel)
        typed = not isinstance(opt, str) and lr is None and _typed_lr(specs[i]["rule"])
        shown_lr = lr if lr is not None else _default_lr(opt, f)
        notes += _notes(f, label, tr, shown_lr, typed)
        runs.append(
            {
                "label": label,
                "paths": tr.paths.tolist(),
                "losses": [
                    _until_diverged(_clean(row), int(d))
                    for row, d in zip(tr.losses.tolist(), tr.diverged_at.tolist(), strict=True)
                ],
                "diverged_at": tr.diverged_at.tolist(),
                "kernel": tr.kernel,
            }
        )
    out = {"runs": runs, "f_min": gm.value if gm is not None else None, "steps": steps}
    return {**out, "notes": notes}


def _until_diverged(losses: list[float | None], diverged_at: int) -> list[float | None]:
    """A run's losses up to the step where it diverged, ``None`` after it: the loss curve
    stops there (its frozen value would read as a plateau)."""
    if diverged_at < 0:
        return losses
    return losses[: diverged_at + 1] + [None] * (len(losses) - diverged_at - 1)


def _default_lr(opt: Any, f: landscapes.Landscape) -> float | None:
    """The rate a run without a slider's lr used: the rule's own (a chain), else None."""
    if isinstance(opt, str):
        return None
    lr = opt.defaults.get("lr")
    return float(lr) if isinstance(lr, int | float) else None


def lr_map(req: Any, cancel: threading.Event | None = None) -> dict[str, Any]:
    """Final loss over a grid: learning rate x start coordinate, or learning rate x momentum,
    as one batch of ``n_lr * n_y`` trajectories (``cancel`` as in :func:`run_paths`)."""
    f = _landscape(req)
    _check_keys(
        "the request",
        req,
        ("landscape", "kappa", "optimizer", "steps", "mode", "start", "lr_range", "n_lr", "n_y",
         "y_range"),
    )  # fmt: skip
    mode = _field(req, "mode", "lr_start")
    if mode not in ("lr_start", "lr_momentum"):
        raise RequestError(f"mode must be 'lr_start' or 'lr_momentum', got {mode!r}")
    steps = _integer("steps", _field(req, "steps", 100), 1, LIMITS["map_steps"])
    side = LIMITS["map_side"]
    n_lr = _integer("n_lr", _field(req, "n_lr", 48), 2, side)
    n_y = _integer("n_y", _field(req, "n_y", 48), 2, side)
    lo_hi = _field(req, "lr_range", [1e-4, 1.0])
    if not isinstance(lo_hi, list) or len(lo_hi) != 2:
        raise RequestError(f"lr_range must be [low, high], got {lo_hi!r}")
    lo, hi = LIMITS["lr"]
    lr_lo = _number("lr_range[0]", lo_hi[0], lo, hi)
    lr_hi = _number("lr_range[1]", lo_hi[1], lo, hi)
    if not lr_lo < lr_hi:
        raise RequestError(f"lr_range must be increasing, got {lo_hi!r}")
    opt, _, hyper, label = _optimizer(0, _field(req, "optimizer"))
    if not T.stacks_runs(opt):
        raise RequestError(
            f"the map cannot run {label}: its update reads the whole parameter, so each of the "
            f"map's {n_lr * n_y} runs would need a step of its own; choose an elementwise "
            "optimizer (the paths view runs it)"
        )
    start = _starts(f, [_field(req, "start", list(f.start))])[0]
    if not isinstance(opt, str):
        probe_lr = lr_lo if "lr" in opt.defaults else None
        _check_descends(f, "optimizer", opt, [start], probe_lr, hyper, cancel)
    lrs = torch.logspace(math.log10(lr_lo), math.log10(lr_hi), n_lr, dtype=torch.float64)
    if mode == "lr_momentum":
        if isinstance(opt, str) and "momentum" not in _named_params(opt):
            raise RequestError(f"{opt} has no momentum; choose sgd, momentum, nesterov or rmsprop")
        if not isinstance(opt, str) and "momentum" not in opt.defaults:
            raise RequestError("this rule has no momentum hyperparameter")
        y_lo, y_hi = 0.0, 0.99
        ys = torch.linspace(y_lo, y_hi, n_y, dtype=torch.float64)
        hyper = {**hyper, "momentum": ys.repeat_interleave(n_lr)}
        x0 = torch.tensor([start] * (n_lr * n_y), dtype=torch.float64)
        y_name = "momentum"
    else:
        (d_lo, d_hi) = f.domain[0]
        y_lo, y_hi = _coord_range("y_range", _field(req, "y_range", [d_lo, d_hi]))
        ys = torch.linspace(y_lo, y_hi, n_y, dtype=torch.float64)
        x0 = torch.tensor([start] * (n_lr * n_y), dtype=torch.float64)
        x0[:, 0] = ys.repeat_interleave(n_lr)  # the first coordinate varies (2-D: y fixed)
        y_name = "x0"
    lr_all = lrs.repeat(n_y)
    try:
        with _machine(cancel):
            tr = T.run(f, opt, x0, steps, lr=lr_all, hyper=hyper, bound=_bound(f))
    except (KeyError, ValueError) as exc:
        raise RequestError(str(exc.args[0] if exc.args else exc)) from None
    final = tr.final_losses.reshape(n_y, n_lr)
    return {
        "label": label,
        "mode": mode,
        "lr": lrs.tolist(),
        "y": ys.tolist(),
        "y_name": y_name,
        "start": start,
        "final_loss": [_clean(r) for r in final.tolist()],
        "kernel": tr.kernel,
        "steps": steps,
    }
