"""A playground view as a static page: what ``descentlab playground`` draws for one link,
computed once by the playground's own functions (:func:`~descentlab.playground.compute.run_paths`
and :func:`~descentlab.playground.compute.surface`) and drawn as a figure, with the view's
settings, its final losses and how to open it live.

The documentation site publishes one such page for every playground link of the lecture book
(``scripts/docs_hooks.py``): on a static site there is no server to answer the live page's
requests, so the link opens the precomputed view instead, and the live address is shown as
text for those who run ``descentlab playground --port 8765``.

Example:
    >>> v = view("http://127.0.0.1:8765/#mode=oned&land=parabola&steps=3&starts=4"
    ...          "&opts=%5B%7B%22name%22%3A%22sgd%22%2C%22on%22%3A1%2C%22lr%22%3A0.2%7D%5D")
    >>> v.landscape, v.optimizers, v.starts
    ('parabola', [{'name': 'sgd', 'lr': 0.2, 'momentum': 0}], [[4.0]])
    >>> [round(x[0], 4) for x in run(v)["runs"][0]["paths"][0]]   # x - 0.2 (2x - 4)
    [4.0, 3.2, 2.72, 2.432]
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from descentlab import optim
from descentlab.playground import compute

__all__ = ["View", "run", "snapshot_page", "view"]


@dataclass
class View:
    """One playground view: the landscape, its condition number (the quadratic only), the
    steps, the starts and the optimizers switched on with every slider value (the link's,
    else the page's default on that landscape)."""

    mode: str
    landscape: str
    kappa: float | None
    steps: int
    starts: list[list[float]]
    optimizers: list[dict[str, Any]]

    def request(self) -> dict[str, Any]:
        """The request the live page sends for its paths (``/api/run``)."""
        req: dict[str, Any] = {
            "landscape": self.landscape,
            "starts": self.starts,
            "steps": self.steps,
            "optimizers": self.optimizers,
        }
        if self.kappa is not None:
            req["kappa"] = self.kappa
        return req


def view(url: str) -> View:
    """The view a playground link opens (the state ``static/app.js``'s ``readUrl`` reads).

    Raises:
        ValueError: a link that names no landscape the playground offers, or no optimizer
            switched on (one line naming what is wrong).
    """
    params = {k: v[-1] for k, v in parse_qs(urlsplit(url).fragment).items()}
    land = params.get("land", "")
    if land not in compute._offered():
        raise ValueError(f"url: the playground offers no landscape {land!r} ({url})")
    kappa = float(params.get("kappa", compute.QUADRATIC_KAPPA)) if land == "quadratic" else None
    f = compute._landscape({"landscape": land, **({"kappa": kappa} if kappa else {})})
    start = compute.defaults(f)
    steps = int(params.get("steps", start["steps"]))
    starts = [[float(v) for v in s.split(",")] for s in params["starts"].split(";")] if (
        params.get("starts")
    ) else [list(f.start)]  # fmt: skip
    saved = json.loads(params.get("opts", "null")) or [{"name": n, "on": 1} for n in start["on"]]
    opts = []
    for o in saved:
        if not o.get("on") or o.get("name") not in start["optimizers"]:
            continue
        values = dict(start["optimizers"][o["name"]])
        values.update({k: v for k, v in o.items() if k in values})
        opts.append({"name": o["name"], **values})
    if not opts:
        raise ValueError(f"url: the link switches on no optimizer ({url})")
    mode = "oned" if f.dim == 1 else "paths"
    return View(mode, land, kappa, steps, starts, opts)


def run(v: View) -> dict[str, Any]:
    """The view's paths and losses, as the live page receives them."""
    return compute.run_paths(v.request())


def _figure(v: View, out: dict[str, Any]) -> Any:
    from descentlab.report import figures as FG

    surf = compute.surface({"landscape": v.landscape, **({"kappa": v.kappa} if v.kappa else {})})
    fig = FG.new_figure(11.0, 4.4)
    left, right = fig.subplots(1, 2)
    f_min = out["f_min"]  # None: no global minimum (the loss itself is drawn)
    for spec, r in zip(v.optimizers, out["runs"], strict=True):
        color = optim.record(spec["name"]).color
        for k, path in enumerate(r["paths"]):
            label = optim.record(spec["name"]).display if k == 0 else None
            if surf["dim"] == 1:
                xs = [p[0] for p in path]
                ys = [_f(surf, x) for x in xs]
                left.plot(xs, ys, "o-", color=color, ms=3.5, lw=1, label=label)
            else:
                left.plot([p[0] for p in path], [p[1] for p in path], color=color, lw=1.4,
                          label=label)  # fmt: skip
                left.plot(path[0][0], path[0][1], "o", color="black", ms=4)
            shown = [None if y is None or f_min is None else max(y - f_min, 1e-16)
                     for y in r["losses"][k]]  # fmt: skip
            right.plot(r["losses"][k] if f_min is None else shown, color=color, lw=1.3,
                       label=label)  # fmt: skip
    if surf["dim"] == 1:
        left.plot(surf["x"], surf["f"], color="#33475b", lw=1.5, zorder=0)
        left.set_xlabel("x")
        left.set_ylabel("f(x)")
    else:
        left.contour(surf["x"], surf["y"], surf["z"], levels=25, cmap="viridis", linewidths=0.7)
        left.set_xlim(surf["x"][0], surf["x"][-1])
        left.set_ylim(surf["y"][0], surf["y"][-1])
        left.set_xlabel("x")
        left.set_ylabel("y")
    left.set_title(f"{v.landscape}: the paths", fontsize=10)
    left.legend(fontsize=8)
    if f_min is not None:
        right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel("f" if f_min is None else "f - f_min")
    right.set_title(
        ("the loss" if f_min is None else "the loss above the minimum")
        + " (a curve stops where a run diverged)",
        fontsize=10,
    )
    return fig


def _f(surf: dict[str, Any], x: float) -> float:
    """The 1-D curve's value nearest ``x`` (for placing an iterate on the drawn curve)."""
    xs = surf["x"]
    i = min(range(len(xs)), key=lambda j: abs(xs[j] - x))
    y = surf["f"][i]
    return float("nan") if y is None else y


def _number(v: Any) -> str:
    if isinstance(v, list):
        return "(" + ", ".join(_number(x) for x in v) + ")"
    return f"{v:g}" if isinstance(v, int | float) else str(v)


def snapshot_page(url: str, back: str = "index.html") -> str:
    """The static page of the view ``url`` opens: its figure (computed now), a table of each
    optimizer's settings and final loss, the playground's notes, the live address as text
    and a link ``back`` to the book."""
    from descentlab.book.render.pages import figure_dpi
    from descentlab.report.page import figure_data_uri, html_page

    v = view(url)
    out = run(v)
    fig = _figure(v, out)
    img = figure_data_uri(fig, dpi=figure_dpi(fig))
    rows = []
    for spec, r in zip(v.optimizers, out["runs"], strict=True):
        finals = [row[-1] for row in r["losses"]]
        shown = ", ".join("diverged" if y is None or not math.isfinite(y) else f"{y:.4g}"
                          for y in finals)  # fmt: skip
        sliders = ", ".join(f"{k} {_number(val)}" for k, val in spec.items() if k != "name")
        rows.append(
            f"<tr><td>{html.escape(optim.record(spec['name']).display)}</td>"
            f"<td>{html.escape(sliders)}</td><td>{html.escape(shown)}</td></tr>"
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in out["notes"])
    where = f"κ = {v.kappa:g}, " if v.kappa is not None else ""
    starts = "; ".join(_number(s) for s in v.starts)
    body = f"""<nav><a href="{html.escape(back)}">← back to the lecture book</a></nav>
<h1>Playground view: {html.escape(v.landscape)}</h1>
<p>{where}{v.steps} steps from {html.escape(starts)}. Computed when the site was built by the
playground's own functions; this page is a picture of the view (no controls).</p>
<figure><img alt="the playground's view of {html.escape(v.landscape)}" src="{img}"></figure>
<table><thead><tr><th>optimizer</th><th>settings</th><th>final loss</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
{f"<ul>{notes}</ul>" if notes else ""}
<p class="live">For live controls (sliders, other optimizers, your own rules), run
<code>descentlab playground --port 8765</code> and open this view's address:</p>
<pre class="live-url" style="white-space:pre-wrap;word-break:break-all">{html.escape(url)}</pre>"""
    return html_page(f"Playground view: {v.landscape}", body, "descentlab playground, static view")
