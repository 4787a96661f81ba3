"""The lecture book's chapters: a central topic at depth, as one page of prose with the
traces, tables, figures (movable ones too) and checks the build computed for it.

This module only renders, like :mod:`descentlab.book.render.pages` whose pieces it shares
(the checks' table that ``scripts/book_marks.py`` reads, the movable figure and its script);
the chapters themselves are computed in :mod:`descentlab.book.chapters`.

Example:
    >>> part = Part("p1", "A heading", ["One paragraph with `code`."])
    >>> page = ChapterPage("Topic, in depth", "deep-topic.html", "What it covers.", (24,), [part])
    >>> page.words, page.counts()["checks"]
    (4, 0)
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from descentlab.book.render.live import LIVE_HEAD, LIVE_JS, Live, live_html
from descentlab.book.render.pages import (
    _CHECK_JS,
    _MOVABLE_JS,
    STATUSES,
    Check,
    ExerciseView,
    Movable,
    _cell_html,
    _checks_html,
    _exercises_html,
    _figure_html,
    _inline,
    _movable_html,
    _nav,
    _page,
    _paragraphs,
    _table_html,
)

__all__ = ["ChapterPage", "Code", "Part", "Practice", "Table", "render_chapter"]


@dataclass
class Table:
    """A table of a chapter: its columns, its rows and a line above it; ``runs`` (row label ->
    the training runs its values come from) when its rows are runs, for a column headed by a
    series' words to be read against that series (:func:`descentlab.book.series.misheaded`)."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    runs: dict[str, list[Any]] | None = None


@dataclass
class Code:
    """Code the build ran, shown with what it printed (and the error it raised, if any)."""

    label: str
    code: str
    output: str
    error: str = ""


@dataclass
class Practice:
    """A chapter's exercises, shown and checked as a lecture page's are (the answer sealed,
    a typed number checked in the page); their checks are the part's."""

    exercises: list[ExerciseView]


@dataclass
class Part:
    """A section of a chapter: its blocks in order. A block is prose (a ``str``: paragraphs
    separated by blank lines, `code` in backquotes, ``$TeX$`` formulas), a :class:`Table`, a
    matplotlib figure, a :class:`~descentlab.book.render.pages.Movable` (precomputed frames), a
    :class:`~descentlab.book.render.live.Live` figure (computed in the page), :class:`Code`
    the build ran, or a list of checks."""

    anchor: str
    heading: str
    blocks: list[Any]

    @property
    def checks(self) -> list[Check]:
        listed = [c for b in self.blocks if isinstance(b, list) for c in b]
        return listed + [
            e.check for b in self.blocks if isinstance(b, Practice) for e in b.exercises if e.check
        ]

    @property
    def state(self) -> str:
        if any(c.failed for c in self.checks):
            return "bad"
        return "open" if any(not c.ok for c in self.checks) else "good"


@dataclass
class ChapterPage:
    """A chapter page: its title, file name, summary, the lecture items it deepens and its
    parts; the neighbouring pages and the links to the items' cards are set by the build."""

    title: str
    filename: str
    summary: str
    items: tuple[int, ...]
    parts: list[Part]
    previous: tuple[str, str] | None = None
    next: tuple[str, str] | None = None
    #: item number -> link to its card (``optimization-basics.html#i24``)
    item_hrefs: dict[int, str] = field(default_factory=dict)

    @property
    def prose(self) -> str:
        """The chapter's prose, every paragraph of every part."""
        return "\n\n".join(b for p in self.parts for b in p.blocks if isinstance(b, str))

    @property
    def words(self) -> int:
        """The words of its prose (code spans count as words)."""
        return len(re.findall(r"\S+", self.prose))

    def counts(self) -> dict[str, int]:
        """Checks per status, figures a reader moves (``live``: those computed in the page),
        tables, code the build ran, words."""
        checks = [c for p in self.parts for c in p.checks]
        out = {s: sum(c.status == s for c in checks) for s in STATUSES}
        blocks = [b for p in self.parts for b in p.blocks]
        out["checks"] = len(checks)
        out["live"] = sum(isinstance(b, Live) for b in blocks)
        out["movable"] = sum(isinstance(b, Movable) for b in blocks) + out["live"]
        out["code"] = sum(isinstance(b, Code) for b in blocks)
        out["tables"] = sum(isinstance(b, Table) for b in blocks)
        out["words"] = self.words
        return out


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _block_html(block: Any, ident: str, alt: str, hrefs: dict[int, str]) -> str:
    if isinstance(block, str):
        return f'<div class="explain">{_paragraphs(block, hrefs)}</div>'
    if isinstance(block, Table):
        cap = f'<p class="sub">{_inline(block.caption, hrefs)}</p>' if block.caption else ""
        return cap + _table_html(block.columns, block.rows)
    if isinstance(block, Movable):
        return _movable_html(block, ident, alt)
    if isinstance(block, Live):
        return live_html(block, ident, _inline(block.caption, hrefs))
    if isinstance(block, Code):
        return _cell_html(block.code, block.output, block.error, block.label)
    if isinstance(block, list):
        return _checks_html(block)
    if isinstance(block, Practice):
        return _exercises_html(block.exercises, hrefs)
    return _figure_html(block, alt)


def render_chapter(page: ChapterPage, setting: str, index: str = "index.html") -> str:
    """The HTML of a chapter page (``setting``: e.g. ``"quick setting"``)."""
    c = page.counts()
    items = ", ".join(
        f'<a href="{_e(page.item_hrefs[n])}">{n}</a>' if n in page.item_hrefs else str(n)
        for n in page.items
    )
    toc = "".join(
        f'<li><a href="#{_e(p.anchor)}">{_e(p.heading)}</a>'
        + {"bad": " <span class=no>✘</span>", "open": " <span class=nr>○</span>"}.get(p.state, "")
        + "</li>"
        for p in page.parts
    )
    parts = []
    for p in page.parts:
        k = 0
        blocks = []
        for b in p.blocks:
            blocks.append(_block_html(b, f"{p.anchor}-m{k}", p.heading, page.item_hrefs))
            k += isinstance(b, Movable | Live)
        parts.append(
            f'<section class="claim {p.state}" id="{_e(p.anchor)}"><h2>{_e(p.heading)}</h2>'
            + "\n".join(blocks)
            + "</section>"
        )
    nav = _nav(page, index)
    code = (_MOVABLE_JS if c["movable"] > c["live"] else "") + (LIVE_JS if c["live"] else "")
    if any(isinstance(b, Practice) for p in page.parts for b in p.blocks):
        code += _CHECK_JS
    script = f"\n<script>{code}</script>" if code else ""
    body = f"""{LIVE_HEAD if c["live"] else ""}{nav}
<header>
<h1>{_e(page.title)}</h1>
<p class="sub">In depth, beyond the lectures' cards (items {items}): every number in the text
computed by the build and every claim checked beside it.</p>
<p>{_inline(page.summary, page.item_hrefs)}</p>
<p class="score">{c["ok"]} of {c["checks"]} checks hold (✔), {c["fail"]} fail (✘); {c["words"]}
words, {c["tables"]} tables of traces, {c["movable"]} figure(s) you move ({_e(setting)}).</p>
</header>
<ol class="toc">{toc}</ol>
{"".join(parts)}
{nav}{script}"""
    return _page(page.title, body)


def chapters_index_html(pages: Sequence[ChapterPage]) -> str:
    """The index's table of the chapters (title, items, words, checks)."""
    if not pages:
        return ""
    rows = []
    for p in pages:
        c = p.counts()
        mark = "no" if c["fail"] else "ok"
        rows.append(
            f'<tr><td><a href="{_e(p.filename)}">{_e(p.title)}</a></td>'
            f"<td>{_e(', '.join(map(str, p.items)))}</td>"
            f'<td class="num">{c["words"]}</td>'
            f'<td class="num {mark}">{c["ok"]} / {c["checks"]}</td>'
            f'<td class="num">{c["movable"]}</td></tr>'
        )
    return (
        '<h2>In depth: the central topics</h2><p class="sub">A chapter each, with the '
        "derivation step by step, traces for several settings computed by descentlab and a "
        "figure to move; every number in the text is computed by the build.</p>"
        '<div class="scroll"><table><thead><tr><th>chapter</th><th>items</th><th>words</th>'
        "<th>✔ checks</th><th>figures you move</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )
