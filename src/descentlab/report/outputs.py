"""Lecture experiment outputs (:class:`~descentlab.experiments.outputs.LectureOutput`) as HTML.

A result file becomes its table, its checks (expected by the lectures and observed), its
notes, its figures and its settings; a Markdown file its rendered text; a loose PNG file a
figure with its name.

Example:
    >>> from descentlab.experiments.outputs import LectureOutput
    >>> out = LectureOutput("result", "T", "t.json", data={"columns": ["a"], "rows": [[0.5]],
    ...                                                     "checks": {"it holds": True}})
    >>> '<span class="ok">✔</span> it holds' in render_output(out)
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from descentlab.experiments.outputs import LectureOutput
from descentlab.report.markdown import inline, markdown_to_html
from descentlab.report.page import escape, figure, html_table, png_data_uri

__all__ = ["render_output", "render_outputs"]


def render_outputs(outputs: list[LectureOutput]) -> str:
    """Every output under its title and source."""
    parts = []
    for out in outputs:
        parts.append(f"<h3>{escape(out.title)}</h3>")
        parts.append(f'<p class="sub">from {escape(out.source)}</p>')
        parts.append(render_output(out))
    return "\n".join(parts)


def render_output(out: LectureOutput) -> str:
    """One output's HTML (without its title)."""
    if out.kind == "result":
        return _result(out)
    if out.kind == "markdown":
        return markdown_to_html(out.text, images=out.images)
    return "\n".join(
        figure(png_data_uri(data), escape(name), name) for name, data in out.images.items()
    )


def _result(out: LectureOutput) -> str:
    data = out.data
    columns = [str(c) for c in data.get("columns", [])]
    rows = data.get("rows", [])
    parts = []
    if columns and isinstance(rows, list):
        body = []
        for r in rows:
            if isinstance(r, Mapping):
                body.append([_value(r.get(c)) for c in columns])
            elif isinstance(r, list):
                body.append([_value(v) for v in r])
        parts.append(html_table(columns, body))
    checks = data.get("checks") or {}
    if isinstance(checks, Mapping) and checks:
        items = "".join(
            f'<li><span class="{"ok" if ok else "no"}">{"✔" if ok else "✘"}</span> {escape(t)}</li>'
            for t, ok in checks.items()
        )
        parts.append(f"<p><strong>Expected (lectures) and observed:</strong></p><ul>{items}</ul>")
    for note in data.get("notes") or []:
        parts.append(f"<p>{inline(str(note))}</p>")
    for name, png in out.images.items():
        parts.append(figure(png_data_uri(png), escape(name), name))
    config = data.get("config") or {}
    seconds = data.get("seconds")
    if isinstance(config, Mapping) and config:
        settings = ", ".join(f"{k}={_value(v)}" for k, v in config.items())
        ran = f" Ran in {float(seconds):.1f} s." if isinstance(seconds, int | float) else ""
        parts.append(f'<p class="sub">Settings: {escape(settings)}.{ran}</p>')
    return "\n".join(parts)


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)
