"""The page around every descentlab report: one self-contained HTML file.

Figures are embedded as base64 PNG (``data:`` URIs), the style sheet is inline, and there are
no scripts, no external links and no external resources: a report opens offline in any
browser. The comparison report, the multi-problem report and the lecture book share
:func:`html_page`; both reports share :func:`report_page` (a header, a navigation bar and one
section per part).

Example:
    >>> html_table(["optimizer", "lr"], [["Adam", "0.001"]]).count("<td")
    2
    >>> "<h2>Results</h2>" in report_page("T", "sub", [("results", "Results", "...")], "f")
    True
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import descentlab
from descentlab._files import write_atomic

__all__ = [
    "escape",
    "figure",
    "figure_data_uri",
    "html_page",
    "html_table",
    "png_data_uri",
    "report_page",
    "version",
    "write_page",
]

_CSS = """
:root { --ink:#1d2733; --muted:#5b6673; --line:#d9dee5; --accent:#0b63b5; --bg:#fbfcfd;
        --good:#1b7f3b; --bad:#b00020; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); background: var(--bg); margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 64px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 1px solid
     var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
.sub { color: var(--muted); margin: 0; }
.verdict { background: #eef5fc; border-left: 4px solid var(--accent); padding: 10px 14px;
           margin: 14px 0; }
.warn { background: #fff4e5; border-left: 4px solid #e69f00; padding: 10px 14px; margin: 14px 0; }
nav { font-size: 14px; margin: 8px 0 0; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
.scroll { overflow-x: auto; max-width: 100%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right;
         vertical-align: top; }
th { background: #f0f3f6; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tr.best td { background: #eaf6ee; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.num .ci { white-space: normal; }  /* a note under a number may wrap */
.ci { color: var(--muted); font-weight: normal; font-size: 13px; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: white; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 4px; max-width: 1000px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
pre, code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
            font-size: 12.5px; }
pre { background: #f3f5f7; padding: 10px; overflow-x: auto; border: 1px solid var(--line); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px;
           overflow-wrap: anywhere; }
.ok { color: var(--good); } .no { color: var(--bad); } .bad { color: var(--bad); }
.cliff { color: #b35900; font-size: 13px; white-space: nowrap; }
ul.tight { margin: 0; padding-left: 18px; }
ol.protocol li { margin-bottom: 4px; }
footer { color: var(--muted); font-size: 13px; margin-top: 40px; border-top: 1px solid
         var(--line); padding-top: 8px; }
"""


def png_data_uri(data: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_data_uri(
    fig: Any, *, dpi: int = 96, save_to: str | os.PathLike[str] | None = None
) -> str:
    """Render a matplotlib figure to PNG and return it as a ``data:`` URI.

    Args:
        fig: the figure.
        dpi: resolution.
        save_to: also write the PNG to this path.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    data = buf.getvalue()
    if save_to is not None:
        write_atomic(save_to, data)
    return png_data_uri(data)


def escape(value: Any) -> str:
    """``value`` as text, HTML-escaped (quotes too)."""
    return html.escape(str(value), quote=True)


def html_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    row_classes: Sequence[str] | None = None,
    text_columns: Sequence[int] = (0,),
    raw: bool = False,
) -> str:
    """An HTML table (cells escaped unless ``raw``; the first column left-aligned)."""
    head = "".join(
        f'<th class="{"text" if i in text_columns else ""}">{escape(c)}</th>'
        for i, c in enumerate(columns)
    )
    body = []
    for j, row in enumerate(rows):
        cls = f' class="{row_classes[j]}"' if row_classes and row_classes[j] else ""
        cells = "".join(
            f'<td class="{"text" if i in text_columns else "num"}">{c if raw else escape(c)}</td>'
            for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure(uri: str, caption: str, alt: str) -> str:
    """A ``<figure>`` of the image ``uri`` with its (HTML) ``caption``."""
    return (
        f'<figure><img alt="{escape(alt)}" src="{uri}"><figcaption>{caption}</figcaption></figure>'
    )


def html_page(title: str, body: str, footer: str, *, css: str = _CSS) -> str:
    """A self-contained HTML page: ``title``, the inline ``css``, ``body`` and ``footer`` (both
    HTML) in the page's ``<main>``; the reports and the lecture book share it."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{css}</style>
</head>
<body>
<main>
{body}
<footer>{footer}</footer>
</main>
</body>
</html>
"""


def report_page(title: str, sub: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """A report page: a header (``title``, the ``sub`` line, a navigation bar) and one
    ``<section>`` per ``(id, heading, html)``."""
    nav = "".join(f'<a href="#{sid}">{escape(t)}</a>' for sid, t, _ in sections)
    body = "\n".join(
        f'<section id="{sid}"><h2>{escape(t)}</h2>\n{content}</section>'
        for sid, t, content in sections
    )
    header = (
        f'<header>\n<h1>{escape(title)}</h1>\n<p class="sub">{sub}</p>\n<nav>{nav}</nav>\n</header>'
    )
    return html_page(title, f"{header}\n{body}", footer)


def write_page(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a half-written page is never left behind; only a
    regular file is replaced: see :mod:`descentlab._files`)."""
    write_atomic(path, text)
    return Path(path)


def version() -> str:
    """The installed descentlab's version (for a report's footer)."""
    return str(getattr(descentlab, "__version__", "?"))
