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

import inspect
import math
import threading
from typing import Any

import torch

from descentlab import optim
from descentlab.experiments.compare import parse_rule  # the compare --optimizer grammar
from descentlab.problems import landscapes
from descentlab.problems import trajectories as T

__all__ = ["LIMITS", "RequestError", "lr_map", "meta", "run_paths", "surface"]

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
    "lr": (1e-6, 10.0),
    "coord": 1e3,
}

#: The hyperparameters the page has sliders for.
SLIDERS = ("lr", "momentum", "betas", "eps")
_LANDSCAPES_1D = ("parabola", "xsinx", "cubic", "chain_cubic")
_NOT_OFFERED = ("noisy_quadratic",)  # stochastic: a path of noise, not a descent picture
_lock = threading.Lock()  # one computation at a time: the machine's cores go to it


class RequestError(ValueError):
    """A request the playground refuses (HTTP 422); the message names field and value."""


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


def _landscape(req: dict) -> landscapes.Landscape:
    name = _field(req, "landscape")
    if not isinstance(name, str) or name not in _offered():
        raise RequestError(f"landscape must be one of {', '.join(_offered())}, got {name!r}")
    if name == "quadratic":
        lo, hi = LIMITS["kappa"]
        kappa = _number("kappa", _field(req, "kappa", 10.0), lo, hi)
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
        lr = None
        if "lr" in spec and "lr" in rule.defaults:
            lr = _number(f"{where}.lr", spec["lr"], lo, hi)
        for key in ("momentum", "betas", "eps"):
            if key in spec and key in rule.defaults:
                hyper[key] = _hyper_value(where, key, spec[key])
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
            hyper[key] = _hyper_value(where, key, spec[key])
    return name, lr, hyper, name


def _hyper_value(where: str, key: str, v: Any) -> Any:
    if key == "momentum":
        return _number(f"{where}.momentum", v, 0.0, 0.999)
    if key == "eps":
        return _number(f"{where}.eps", v, 0.0, 1.0, lo_open=True)
    if not isinstance(v, list) or len(v) != 2:
        raise RequestError(f"{where}.betas must be a pair [beta1, beta2], got {v!r}")
    return (
        _number(f"{where}.betas[0]", v[0], 0.0, 0.9999),
        _number(f"{where}.betas[1]", v[1], 0.0, 0.99999),
    )


def _bound(f: landscapes.Landscape) -> float:
    """Runs leaving a box 100x the plotting domain count as diverged (and freeze)."""
    return 100.0 * max(max(abs(a), abs(b)) for a, b in f.domain)


def _clean(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def _run(f, opt, starts, steps, lr, hyper) -> T.Trajectories:
    try:
        with _lock:
            return T.run(
                f, opt, torch.tensor(starts, dtype=torch.float64), steps, lr=lr,
                hyper=hyper, bound=_bound(f),
            )  # fmt: skip
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise RequestError(str(msg)) from None


# --------------------------------------------------------------------------------------------
# endpoints


def meta() -> dict[str, Any]:
    """Landscapes, optimizers with their slider defaults, and the limits."""
    lands = []
    for name in _offered():
        f = landscapes.get(name)
        gm = f.global_minimum
        lands.append(
            {
                "name": name,
                "dim": f.dim,
                "plain": f.plain,
                "description": f.description,
                "domain": [list(d) for d in f.domain],
                "start": list(f.start),
                "lr": f.lr,
                "minimum": gm.value if gm is not None else None,
                "points": [{"x": list(p.x), "kind": p.kind} for p in f.points],
                "one_d": name in _LANDSCAPES_1D,
            }
        )
    opts = [{"name": n, "params": _named_params(n)} for n in optim.NAMES]
    limits = {k: list(v) if isinstance(v, tuple) else v for k, v in LIMITS.items()}
    return {"landscapes": lands, "optimizers": opts, "limits": limits}


def surface(req: Any) -> dict[str, Any]:
    """The landscape on a grid over its domain (1-D: a curve) for the contour map."""
    f = _landscape(req)
    _check_keys("the request", req, ("landscape", "kappa", "n"))
    n = _integer("n", _field(req, "n", 120), 10, LIMITS["grid"])
    if f.dim == 1:
        (lo, hi), = f.domain  # fmt: skip
        x = torch.linspace(lo, hi, 4 * n, dtype=torch.float64)
        with torch.no_grad():
            y = f(x[:, None])
        return {"dim": 1, "x": x.tolist(), "f": _clean(y.tolist()), "plain": f.plain}
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
    }


def run_paths(req: Any) -> dict[str, Any]:
    """Every optimizer from every start: paths ``x_0..x_T``, losses, divergence."""
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
    gm = f.global_minimum
    runs = []
    for opt, lr, hyper, label in parsed:
        tr = _run(f, opt, starts, steps, lr, hyper)
        runs.append(
            {
                "label": label,
                "paths": tr.paths.tolist(),
                "losses": [_clean(row) for row in tr.losses.tolist()],
                "diverged_at": tr.diverged_at.tolist(),
                "kernel": tr.kernel,
            }
        )
    return {"runs": runs, "f_min": gm.value if gm is not None else None, "steps": steps}


def lr_map(req: Any) -> dict[str, Any]:
    """Final loss over a grid: learning rate x start coordinate, or learning rate x momentum,
    as one batch of ``n_lr * n_y`` trajectories."""
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
    start = _starts(f, [_field(req, "start", list(f.start))])[0]
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
        yr = _field(req, "y_range", [d_lo, d_hi])
        if not isinstance(yr, list) or len(yr) != 2:
            raise RequestError(f"y_range must be [low, high], got {yr!r}")
        c = LIMITS["coord"]
        y_lo, y_hi = _number("y_range[0]", yr[0], -c, c), _number("y_range[1]", yr[1], -c, c)
        if not y_lo < y_hi:
            raise RequestError(f"y_range must be increasing, got {yr!r}")
        ys = torch.linspace(y_lo, y_hi, n_y, dtype=torch.float64)
        x0 = torch.tensor([start] * (n_lr * n_y), dtype=torch.float64)
        x0[:, 0] = ys.repeat_interleave(n_lr)  # the first coordinate varies (2-D: y fixed)
        y_name = "x0"
    lr_all = lrs.repeat(n_y)
    try:
        with _lock:
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
