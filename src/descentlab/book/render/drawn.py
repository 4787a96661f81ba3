"""What a matplotlib figure drew, read back and checked against its data.

A figure's words are checked elsewhere for typed numbers; this reads what was *drawn*:

* **scales** -- a y axis holding a labelled curve of positive values that falls
  geometrically (a straight line on a log axis: its log fits a line in x with R² of at least
  :data:`GEOMETRIC_R2`, over at least a factor :data:`GEOMETRIC_FALL`), or labelled curves
  spanning more than :data:`DECADES` decade, is logarithmic: what a loss, an error or a
  distance of an iterative method is, whatever the number of decades its quick setting
  reaches (on a linear axis its geometric phase lies flat on zero);
* **units** -- an axis label's unit, ``time per example (µs)``, is the unit of the table
  column of the same section that holds the curve's values (the data's unit, as the table
  states it);
* **legends** -- each legend entry is drawn in the colour of the curve that bears its
  label, and two panels of one figure list the labels they share in the same order and
  colours (a legend reversed against its other panel).

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); ax = fig.subplots()
    >>> _ = ax.plot([1, 10, 100, 1e4], [1e-6, 1e-3, 1, 10], label="loss")
    >>> _ = ax.set_yscale("log"); _ = ax.set_xscale("log")
    >>> figure_mismatches(fig)
    []
    >>> _ = ax.set_yscale("linear")
    >>> figure_mismatches(fig)
    ['axes 1: y spans 7 decades on a linear axis']
    >>> fig = Figure(); ax = fig.subplots()
    >>> _ = ax.plot(range(12), [0.85**t for t in range(12)], label="loss")
    >>> figure_mismatches(fig)  # (under one decade, but geometric)
    ['axes 1: “loss” falls geometrically (log y straight in x, R² = 1.00) on a linear axis']
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["DECADES", "GEOMETRIC_FALL", "GEOMETRIC_R2", "curve_needs_log", "figure_mismatches",
           "needs_log", "unit"]  # fmt: skip

#: positive data spanning more than this many decades needs a log axis
DECADES = 1.0
#: a curve whose log fits a line in x this well (R²) falls geometrically ...
GEOMETRIC_R2 = 0.95
#: ... when it falls (or rises) by at least this factor, and needs a log axis
GEOMETRIC_FALL = 3.0
#: the fewest points a geometric fit is read on
_FIT_POINTS = 4
#: the units a label may state, each to its scale in its dimension
_UNITS = {
    "ns": ("time", 1e-9), "µs": ("time", 1e-6), "μs": ("time", 1e-6), "us": ("time", 1e-6),
    "ms": ("time", 1e-3), "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0),
    "B": ("bytes", 1.0), "KB": ("bytes", 1e3), "MB": ("bytes", 1e6), "GB": ("bytes", 1e9),
    "KiB": ("bytes", 1024.0), "MiB": ("bytes", 1024.0**2), "GiB": ("bytes", 1024.0**3),
    "%": ("fraction", 0.01),
}  # fmt: skip
_UNIT = re.compile(r"\(([^()]+)\)\s*$")


def unit(label: str) -> str | None:
    """The unit ``label`` states in its closing brackets (``time (µs)`` -> ``µs``), None where
    it states none this reader knows."""
    m = _UNIT.search(label.strip())
    u = m[1].strip() if m else None
    return u if u in _UNITS else None


def _lines(ax: Any) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float).ravel()
        y = np.asarray(line.get_ydata(), dtype=float).ravel()
        yield line, x, y


def _decades(values: np.ndarray) -> float:
    v = values[np.isfinite(values) & (values > 0)]
    return math.log10(v.max() / v.min()) if v.size >= 2 else 0.0


def needs_log(values: Any) -> bool:
    """Whether curves of ``values`` need a log axis: all positive, over more than
    :data:`DECADES` decades (what a figure drawing them asks, and what :func:`figure_mismatches`
    refuses on a linear axis)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    return bool(v.size) and bool(np.all(v > 0)) and _decades(v) > DECADES


def curve_needs_log(x: Any, y: Any) -> str:
    """Why the curve (``x``, ``y``) needs a log y axis: ``""`` where it does not (a value not
    positive, under :data:`GEOMETRIC_FALL` overall, or its log not straight in x); else the
    reason, R² of its log's fit in x (a geometric fall, straight on a log axis)."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if y.size < _FIT_POINTS or np.any(y <= 0) or np.ptp(x) == 0:
        return ""
    logs = np.log10(y)
    if np.ptp(logs) < math.log10(GEOMETRIC_FALL):
        return ""
    r2 = float(np.corrcoef(x, logs)[0, 1] ** 2)
    return f"falls geometrically (log y straight in x, R² = {r2:.2f})" if r2 >= GEOMETRIC_R2 else ""


def curves_need_log(curves: Sequence[tuple[Any, Any]]) -> bool:
    """Whether a y axis drawing ``curves`` ((x, y) each) needs a log scale: one of them falls
    geometrically (:func:`curve_needs_log`), or together they span more than :data:`DECADES`
    decade (:func:`needs_log`)."""
    ys = [np.asarray(y, dtype=float).ravel() for _, y in curves]
    spans = needs_log(np.concatenate(ys)) if ys else False
    return spans or any(curve_needs_log(x, y) for x, y in curves)


def _scales(k: int, ax: Any) -> list[str]:
    """The y axis only, over the labelled curves only: an x axis of steps or of a setting,
    and an unlabelled guide (a landscape drawn behind a histogram) are linear by choice."""
    if ax.get_yscale() != "linear":
        return []
    data = [y for line, _, y in _lines(ax) if not line.get_label().startswith("_")]
    if not data:
        return []
    values = np.concatenate(data)
    if np.any(values[np.isfinite(values)] <= 0):
        return []  # (zero or a sign change: a log axis would drop it)
    span = _decades(values)
    if span > DECADES:
        return [f"axes {k}: y spans {span:.{0 if span >= 2 else 1}f} decades on a linear axis"]
    for line, x, y in _lines(ax):
        why = "" if line.get_label().startswith("_") else curve_needs_log(x, y)
        if why:
            return [f"axes {k}: “{line.get_label()}” {why} on a linear axis"]
    return []


def _columns(tables: Sequence[Any]) -> Iterator[tuple[str, np.ndarray]]:
    for t in tables:
        for j, heading in enumerate(t.columns):
            cells = [r[j] if j < len(r) else None for r in t.rows]
            if all(isinstance(c, int | float) and not isinstance(c, bool) for c in cells):
                yield str(heading), np.asarray(cells, dtype=float)


def _units(k: int, ax: Any, tables: Sequence[Any]) -> list[str]:
    out = []
    for axis, label, pick in (("x", ax.get_xlabel(), 1), ("y", ax.get_ylabel(), 2)):
        said = unit(label)
        if said is None:
            continue
        for _, *xy in _lines(ax):
            values = xy[pick - 1]
            for heading, col in _columns(tables):
                data = unit(heading)
                if data is None or col.shape != values.shape or data == said:
                    continue
                if _UNITS[data][0] == _UNITS[said][0] and np.allclose(col, values, rtol=1e-9):
                    out.append(
                        f"axes {k}: {axis} label “{label}” in {said}, its data in {data} "
                        f"(column “{heading}”)"
                    )
    return sorted(set(out))


def _legend(ax: Any) -> list[tuple[str, str]]:
    """(text, colour) of each entry of ``ax``'s legend, in its order."""
    leg = ax.get_legend()
    if leg is None:
        return []
    handles = getattr(leg, "legend_handles", None) or getattr(leg, "legendHandles", [])
    out = []
    for text, handle in zip(leg.get_texts(), handles, strict=False):
        get = getattr(handle, "get_color", None) or getattr(handle, "get_facecolor", None)
        colour = get() if get else None
        out.append((text.get_text(), _hex(colour)))
    return out


def _hex(colour: Any) -> str:
    from matplotlib.colors import to_hex

    try:
        c = np.asarray(colour, dtype=float)
        return to_hex(c.reshape(-1, 4)[0] if c.size >= 4 else c) if c.size else ""
    except (TypeError, ValueError):
        return to_hex(colour) if colour is not None else ""


def _legends(axes: Sequence[Any]) -> list[str]:
    out, panels = [], []
    for k, ax in enumerate(axes, 1):
        entries = _legend(ax)
        drawn = {line.get_label(): _hex(line.get_color()) for line, *_ in _lines(ax)}
        for text, colour in entries:
            if text in drawn and colour and drawn[text] != colour:
                out.append(f"axes {k}: legend “{text}” in {colour}, its curve in {drawn[text]}")
        if entries:
            panels.append((k, entries))
    for (a, ea), (b, eb) in itertools.pairwise(panels):
        shared = [t for t, _ in ea if t in dict(eb)]
        order_b = [t for t, _ in eb if t in dict(ea)]
        if len(shared) >= 2 and shared != order_b:
            out.append(f"axes {a} and {b}: legends list {shared} and {order_b}")
        for t in shared:
            if dict(ea)[t] != dict(eb)[t]:
                out.append(f"axes {a} and {b}: “{t}” in {dict(ea)[t]} and {dict(eb)[t]}")
    return out


def figure_mismatches(fig: Any, tables: Sequence[Any] = ()) -> list[str]:
    """What ``fig`` drew that its data contradicts: a linear axis over more than
    :data:`DECADES` decade or under a curve that falls geometrically, an axis label's unit
    that is not the unit of the ``tables`` column holding its curve's values, a legend entry
    coloured as another curve, two panels' legends in different orders or colours."""
    axes = [ax for ax in getattr(fig, "axes", []) if ax.get_visible()]
    out = []
    for k, ax in enumerate(axes, 1):
        out += _scales(k, ax) + _units(k, ax, tables)
    return out + _legends(axes)
