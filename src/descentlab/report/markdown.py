"""A small Markdown renderer for the lecture outputs a report shows.

The lecture experiments write their notes in a small subset of Markdown (headings, pipe
tables, bullet lists, images, emphasis, inline code); :func:`markdown_to_html` renders that
subset into the report's own table and figure markup, escaping everything else and turning
links into plain text (a report links nowhere).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from descentlab.report.page import escape, figure, html_table, png_data_uri

__all__ = ["inline", "markdown_to_html"]


def markdown_to_html(text: str, *, images: Mapping[str, bytes] | None = None) -> str:
    r"""A small Markdown subset to HTML: headings (two levels down: ``#`` is ``<h3>``), pipe
    tables, bullet lists, images, emphasis, inline code and paragraphs.

    Args:
        text: the Markdown.
        images: PNG bytes by the path an image line names (``![alt](path)``); other images
            are dropped.

    Links become plain text: the report holds no links. Everything else is escaped.

    Example:
        >>> markdown_to_html("# T\n\nsome *text* and [a link](https://x.org)")
        '<h3>T</h3>\n<p>some <em>text</em> and a link</p>'
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            flush()
            i += 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            level = min(6, len(m.group(1)) + 2)
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
            continue
        if (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\s*\|?\s*:?-{2,}", lines[i + 1])
        ):
            flush()
            head = _cells(line)
            i += 2
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            out.append(html_table(head, [[inline(c) for c in r] for r in rows], raw=True))
            continue
        m = re.match(r"^\s*!\[([^\]]*)\]\(([^)]+)\)\s*$", line)
        if m:
            flush()
            out.append(_image(m.group(2), m.group(1), images or {}))
            i += 1
            continue
        if re.match(r"^\s*[-*]\s+", line):
            flush()
            items = []
            while i < len(lines) and re.match(r"^\s*[-*]\s+", lines[i]):
                item = re.sub(r"^\s*[-*]\s+", "", lines[i])
                items.append(f"<li>{inline(item)}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
            continue
        para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def inline(text: str) -> str:
    """One line of Markdown (links, code, strong, emphasis) as escaped HTML."""
    text = escape(text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links -> their text
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])[*_]([^*_]+)[*_](?![\w*])", r"<em>\1</em>", text)
    return text


def _image(src: str, alt: str, images: Mapping[str, bytes]) -> str:
    data = images.get(src)
    if data is None:
        return ""
    return figure(png_data_uri(data), escape(alt), alt)
