"""A landscape's description read against what the landscape computes.

Each landscape carries a sentence or two for the reader (the playground shows it beside the
map, ``descentlab landscape --list`` prints it). What the sentence says about the landscape's
shape is a claim the landscape itself can settle, so :func:`description_mismatches` reads
these claims and computes each, from the function alone (not from its listed ``points``):

- **convex / non-convex**: the Hessian (autograd) on a grid over the domain, positive
  semi-definite everywhere or not;
- **a minimum, a maximum or a saddle at a place** (``minimum 0 at (3, 0.5)``, ``local maximum
  at -sqrt(2)/3``, ``minima at (0, ±sqrt 2)``, ``a saddle point at the origin``): the critical
  points found by scipy's minimiser from a grid of starts (the gradient's norm squared for a
  saddle), each classified by its Hessian's eigenvalues; the place stated must be one of
  that kind, to the digits stated, and a value stated its value;
- **how many** (``four global minima``): the distinct global minima found;
- **conditioning** (``ill-conditioned``, ``round``, ``condition number 100``, ``curvature
  ratio 3``): the Hessian's condition number at the global minimum.

A description that says otherwise is a mismatch, named with what was computed.

Example:
    >>> from descentlab.problems import landscapes
    >>> description_mismatches(landscapes.get("bowl"))
    []
    >>> import dataclasses
    >>> wrong = dataclasses.replace(landscapes.get("bowl"), description="A round bowl.")
    >>> description_mismatches(wrong)
    ['"round": the Hessian\\'s condition number at the minimum is 3']
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from descentlab.problems.landscapes import Landscape, hessian, value_and_grad

__all__ = ["Shape", "description_mismatches", "shape"]

#: a number as a description types it: ``1.33``, ``-0.27``, ``sqrt(2)/3``, ``±sqrt 2``,
#: ``1/2``
_NUMBER = r"[-±]?(?:sqrt\s*\(?\d+(?:\.\d+)?\)?(?:/\d+)?|\d+(?:\.\d+)?(?:/\d+)?)"
#: a place: ``(a, b)``, ``x = a``, ``a``, ``the origin``
_PLACE = rf"(?:\((?:{_NUMBER})(?:,\s*{_NUMBER})*\)|x\s*=\s*{_NUMBER}|{_NUMBER}|the origin)"
#: a critical point's kind, a value perhaps, and its place
_AT = re.compile(
    rf"(?P<kind>(?:global |local )?(?:minimum|minima|maximum|maxima)|saddle(?: point)?)"
    rf"(?: \(?value (?P<v1>{_NUMBER})\)?| (?P<v2>{_NUMBER}))?\s+(?P<how>at|near)\s+"
    rf"(?P<place>{_PLACE})"
)
_COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_HOW_MANY = re.compile(rf"\b(?P<n>{'|'.join(_COUNTS)}) (?P<kind>global minima|minima)\b")
_CONDITION = re.compile(r"(?:condition number|condition|curvature ratio) (?P<k>\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Shape:
    """What a landscape computes about its shape, over its domain.

    Attributes:
        convex: the Hessian positive semi-definite at every point of the grid.
        minima, maxima, saddles: the critical points found, each ``(place, value)``.
        condition: the Hessian's condition number at the lowest minimum (None: none found).
    """

    convex: bool
    minima: tuple[tuple[tuple[float, ...], float], ...]
    maxima: tuple[tuple[tuple[float, ...], float], ...]
    saddles: tuple[tuple[tuple[float, ...], float], ...]
    condition: float | None


def _grid(f: Landscape, n: int) -> np.ndarray:
    axes = [np.linspace(lo, hi, n) for lo, hi in f.domain]
    return np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=-1)


def _eig(f: Landscape, x: np.ndarray) -> np.ndarray:
    h = hessian(f, torch.tensor(x, dtype=torch.float64))
    return np.linalg.eigvalsh(h.detach().numpy().reshape(f.dim, f.dim))


def _grads(f: Landscape, xs: np.ndarray) -> np.ndarray:
    """∇f at each row of ``xs`` (autograd, one batched call)."""
    return value_and_grad(f, torch.tensor(xs, dtype=torch.float64))[1].detach().numpy()


def _hessians(f: Landscape, xs: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """∇²f at each row of ``xs``: central differences of the autograd gradients (batched)."""
    cols = []
    for j in range(f.dim):
        e = np.zeros(f.dim)
        e[j] = h
        cols.append((_grads(f, xs + e) - _grads(f, xs - e)) / (2 * h))
    hs = np.stack(cols, axis=-1)
    return (hs + np.swapaxes(hs, -1, -2)) / 2


def _critical(f: Landscape) -> list[np.ndarray]:
    """The points where ∇f vanishes that Newton's iteration on ∇f = 0 reaches from a grid of
    starts over the domain (minima, maxima and saddles alike), inside the domain."""
    xs = _grid(f, 41 if f.dim == 1 else 9)
    with np.errstate(all="ignore"):
        for _ in range(60):
            g, hs = _grads(f, xs), _hessians(f, xs)
            ok = np.abs(np.linalg.det(hs)) > 1e-300
            step = np.zeros_like(xs)
            step[ok] = np.linalg.solve(hs[ok], g[ok][..., None])[..., 0]
            xs = np.where(np.isfinite(step), xs - step, np.nan)
            xs = np.where(np.abs(xs) < 1e6, xs, np.nan)
            xs = xs[np.all(np.isfinite(xs), axis=1)]
            if len(xs) == 0:
                return []
    lo, hi = np.array([d[0] for d in f.domain]), np.array([d[1] for d in f.domain])
    g = _grads(f, xs)
    scale = 1.0 + np.abs(_grads(f, _grid(f, 5))).max()
    keep = np.all((xs >= lo - 1e-9) & (xs <= hi + 1e-9), axis=1) & (
        np.abs(g).max(axis=1) < 1e-8 * scale
    )
    return list(xs[keep])


def _distinct(f: Landscape, xs: list[np.ndarray]) -> tuple[tuple[tuple[float, ...], float], ...]:
    out: list[tuple[tuple[float, ...], float]] = []
    for x in xs:
        if all(np.abs(np.array(p) - x).max() > 1e-5 for p, _ in out):
            out.append((tuple(float(c) for c in x), float(f(torch.tensor(x)[None])[0])))
    return tuple(sorted(out, key=lambda pv: pv[1]))


#: the shapes computed, per landscape name and parameters
_SHAPES: dict[tuple[str, str], Shape] = {}


def shape(f: Landscape) -> Shape:
    """What ``f`` computes about its shape (computed once per landscape name and
    parameters)."""
    key = (f.name, repr(sorted((k, repr(v)) for k, v in f.params.items())))
    if key not in _SHAPES:
        _SHAPES[key] = _compute(f)
    return _SHAPES[key]


def _compute(f: Landscape) -> Shape:
    grid = _grid(f, 41 if f.dim == 1 else 21)
    lows = np.linalg.eigvalsh(_hessians(f, grid)).min(axis=1)
    scale = max(1.0, float(np.abs(lows).max()))
    convex = float(lows.min()) >= -1e-6 * scale
    kinds: dict[str, list[np.ndarray]] = {"minimum": [], "maximum": [], "saddle": []}
    for x in _critical(f):
        e = _eig(f, x)
        tol = 1e-7 * max(1.0, float(np.abs(e).max()))
        kind = ("minimum" if e.min() > tol else "maximum" if e.max() < -tol
                else "saddle" if e.min() < -tol < tol < e.max() else "")  # fmt: skip
        if kind:
            kinds[kind].append(x)
    minima = _distinct(f, kinds["minimum"])
    condition = None
    if minima:
        e = _eig(f, np.array(minima[0][0]))
        condition = float(e.max() / e.min())
    return Shape(convex, minima, _distinct(f, kinds["maximum"]), _distinct(f, kinds["saddle"]),
                 condition)  # fmt: skip


def _number(text: str) -> tuple[list[float], float]:
    """The values a typed number stands for (``±`` gives both) and the tolerance its digits
    allow (an exact form, ``sqrt(2)/3`` or ``1/2``: 1e-6)."""
    t = text.replace(" ", "")
    signs = (1.0, -1.0) if t.startswith("±") else (-1.0,) if t.startswith("-") else (1.0,)
    t = t.lstrip("±-")
    m = re.fullmatch(r"sqrt\(?(\d+(?:\.\d+)?)\)?(?:/(\d+))?", t)
    if m:
        v = math.sqrt(float(m[1])) / (float(m[2]) if m[2] else 1.0)
        return [s * v for s in signs], 1e-6
    num, _, den = t.partition("/")
    v = float(num) / (float(den) if den else 1.0)
    tol = 1e-6 if den else 0.5 * 10.0 ** -(len(num.split(".")[1]) if "." in num else 0) + 1e-9
    return [s * v for s in signs], tol


def _places(text: str, dim: int) -> tuple[list[tuple[float, ...]], float]:
    """The points a typed place stands for, and its tolerance."""
    text = re.sub(r"^x\s*=\s*", "", text.strip())
    if text == "the origin":
        return [(0.0,) * dim], 1e-6
    parts = [p for p in re.split(r",\s*", text.strip("()"))]
    read = [_number(p) for p in parts]
    tol = max(t for _, t in read)
    pts: list[tuple[float, ...]] = [()]
    for values, _ in read:
        pts = [(*p, v) for p in pts for v in values]
    return pts, tol


def description_mismatches(f: Landscape) -> list[str]:
    """What ``f.description`` says about ``f``'s shape that ``f`` does not compute (empty:
    every claim read holds)."""
    text, s, out = f.description, shape(f), []
    low = text.lower()
    if re.search(r"\bnon-?convex\b", low):
        if s.convex:
            out.append('"non-convex": the Hessian is positive semi-definite over the domain')
    elif re.search(r"\bconvex\b", low) and not s.convex:
        out.append('"convex": the Hessian has a negative eigenvalue on the domain')
    for m in _AT.finditer(low):
        kind = m["kind"]
        pool = (s.saddles if kind.startswith("saddle") else s.maxima if "max" in kind
                else s.minima)  # fmt: skip
        if kind.startswith("global") and s.minima:
            pool = tuple(p for p in s.minima if p[1] <= s.minima[0][1] + 1e-9)
        pts, tol = _places(m["place"], f.dim)
        for pt in pts:
            near = [p for p in pool if len(pt) == f.dim
                    and max(abs(a - b) for a, b in zip(p[0], pt, strict=True)) <= tol]  # fmt: skip
            if not near:
                where = "; ".join(_fmt(p) for p in pool) or "none"
                out.append(f'"{m[0]}": the {kind}s computed are {where}')
                continue
            said = m["v1"] or m["v2"]
            if said is not None:
                (value,), vtol = _number(said)
                if abs(near[0][1] - value) > vtol:
                    out.append(f'"{m[0]}": its value is {near[0][1]:.4g}')
    for m in _HOW_MANY.finditer(low):
        pool = (
            s.minima
            if m["kind"] == "minima"
            else tuple(p for p in s.minima if s.minima and p[1] <= s.minima[0][1] + 1e-9)
        )
        if len(pool) != _COUNTS[m["n"]]:
            out.append(f'"{m[0]}": {len(pool)} computed')
    if s.condition is not None:
        k = s.condition
        if re.search(r"\bill-conditioned\b|\bbadly conditioned\b", low) and k < 10:
            out.append(f'"ill-conditioned": the Hessian\'s condition number at the minimum is '
                       f"{k:.3g}")  # fmt: skip
        if re.search(r"\bround\b|\bisotropic\b|\bwell-conditioned\b", low) and k > 2:
            word = re.search(r"\bround\b|\bisotropic\b|\bwell-conditioned\b", low)[0]
            out.append(f'"{word}": the Hessian\'s condition number at the minimum is {k:.3g}')
        for m in _CONDITION.finditer(low):
            said = float(m["k"])
            if abs(k - said) > 0.5 * 10.0 ** -(len(m["k"].split(".")[1]) if "." in m["k"]
                                                 else 0) * max(1.0, said / 10):  # fmt: skip
                out.append(f'"{m[0]}": the Hessian\'s condition number at the minimum is '
                           f"{k:.4g}")  # fmt: skip
    return out


def _fmt(p: tuple[tuple[float, ...], float]) -> str:
    return "(" + ", ".join(f"{c:.4g}" for c in p[0]) + f") -> {p[1]:.4g}"
