"""The lecture book's pages: HTML for the cards, lecture pages and index it is given.

This module only renders. The items, their evidence and the building of the book live in
:mod:`descentlab.book`; it hands over :class:`Card` values (an item with its computed
:class:`Evidence`) and this module turns them into self-contained HTML (figures embedded as
PNG data URIs, no script, no external resource).

A :class:`Check` has one of three marks: ✔ (``"ok"``: the claim holds in the numbers beside
it), ✘ (``"fail"``) and ○ (``"not_reproduced"``: an empirical claim of the lecture that this
setup does not reproduce -- the card says so and why, it is never shown as ✔).

Example:
    >>> c = Check("x is 2", "ok", "2", "2 ± 1e-12")
    >>> c.ok, c.mark
    (True, '✔')
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from descentlab.book.experiments._common import format_value
from descentlab.book.render.formulas import mathml, split_math
from descentlab.report.page import figure_data_uri, html_page

__all__ = [
    "STATUSES",
    "Card",
    "Check",
    "Evidence",
    "ExerciseView",
    "LecturePage",
    "Movable",
    "SharedEvidence",
    "render_index",
    "render_lecture",
    "seal",
    "unseal",
]

#: A check's possible statuses and their marks.
STATUSES: dict[str, str] = {"ok": "✔", "fail": "✘", "not_reproduced": "○"}


@dataclass
class Check:
    """One check computed from the numbers.

    Attributes:
        text: what is checked (with the setting: learning rates, seeds, backend).
        status: ``"ok"``, ``"fail"`` or ``"not_reproduced"``.
        measured: the measured value, as shown.
        expected: the expected value with its tolerance, as shown.
    """

    text: str
    status: str
    measured: str
    expected: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def mark(self) -> str:
        return STATUSES[self.status]


@dataclass
class SharedEvidence:
    """Evidence shown on another card (the same computation): where, and its state.

    Attributes:
        shown_by: the evidence function, as cards name it.
        href: the link to the card that shows it (``#i15`` or ``page.html#i15``).
        label: that card's label (``"item 15"``).
        state: its checks' state there: ``good``, ``open`` (○) or ``bad`` (✘).
        checks: 0 when the whole evidence is shared; else the number of this item's checks
            that the other card already shows (the same check, the same numbers).
    """

    shown_by: str
    href: str
    label: str
    state: str
    checks: int = 0


@dataclass
class Movable:
    """A figure a reader moves: one precomputed frame per value of a setting, a slider over
    them (the page's own script swaps the frames: no server, works from a file).

    Attributes:
        label: the setting the slider moves, as shown (``"β"``).
        values: each frame's value, as shown (``"0.9"``).
        figures: one matplotlib figure per value.
        initial: the frame shown first.
        caption: what the figure shows (and what to look for while moving it).
        play: the live playground's address for those who run it (empty: none).
    """

    label: str
    values: list[str]
    figures: list[Any]
    initial: int = 0
    caption: str = ""
    play: str = ""

    def __post_init__(self) -> None:
        if len(self.values) != len(self.figures) or not self.values:
            raise ValueError(
                f"a movable figure needs one value per frame, got {len(self.values)} values "
                f"and {len(self.figures)} figures"
            )
        if not 0 <= self.initial < len(self.values):
            raise ValueError(
                f"initial must be a frame, 0-{len(self.values) - 1}, got {self.initial}"
            )


@dataclass
class Evidence:
    """What shows an item: checks, figures (matplotlib), movable figures, tables, notes, and
    the evidence it shares with an earlier card (shown there, referenced here)."""

    checks: list[Check] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shared: list[SharedEvidence] = field(default_factory=list)
    movable: list[Movable] = field(default_factory=list)

    def extend(self, other: Evidence) -> Evidence:
        """Append ``other``'s checks, figures, tables, notes and references (returns self)."""
        self.checks += other.checks
        self.figures += other.figures
        self.tables += other.tables
        self.notes += other.notes
        self.shared += other.shared
        self.movable += other.movable
        return self

    @property
    def state(self) -> str:
        """``bad`` (a ✘ here or on a shared card), ``open`` (a ○), else ``good``."""
        states = [s.state for s in self.shared]
        if any(c.failed for c in self.checks) or "bad" in states:
            return "bad"
        if any(not c.ok for c in self.checks) or "open" in states:
            return "open"
        return "good"


@dataclass
class Card:
    """One item as its card shows it.

    Attributes:
        anchor: the HTML id (``i17``).
        label: ``"item 17"``.
        section: the lecture's section.
        kind: the item's kind (claim, algorithm, formula, figure, example, table).
        text: the item in English.
        quote: the lecture's own words.
        shown_by: where the project shows it (derived from the evidence functions).
        evidence: the computed evidence.
        framing: non-empty for a framing slide: why it has no check.
        rewrite: non-empty where the book rewrites the lecture's rule: how.
        explain: the book's explanation (paragraphs separated by blank lines; `code`
            in backquotes).
        code: the item's code cell (empty: none).
        output: what the cell printed when the build ran it.
        cell_error: the error the cell raised (empty: it ran).
        playground: the address of the playground view that shows the item (empty: none).
        exercises: the page's exercises that practise it (their numbers).
    """

    anchor: str
    label: str
    section: str
    kind: str
    text: str
    quote: str
    shown_by: str
    evidence: Evidence
    framing: str = ""
    rewrite: str = ""
    explain: str = ""
    code: str = ""
    output: str = ""
    cell_error: str = ""
    playground: str = ""
    #: the numbers of this page's exercises that practise the item (linked from the card)
    exercises: tuple[int, ...] = ()

    @property
    def state(self) -> str:
        """``good`` (every check ✔), ``bad`` (a ✘), ``open`` (○, no ✘) or ``framing``."""
        ev = self.evidence
        if self.framing and not ev.checks and not ev.shared:
            return "framing"
        return ev.state


@dataclass
class ExerciseView:
    """An exercise as the page shows it: the question, the worked solution, the code that
    computed the answer with its output, the check of the answer and the answer as shown
    (``value``: as a number, for the page's check of a typed answer; ``tol``: the build's
    relative tolerance). An open-ended exercise has no code and no check."""

    question: str
    solution: str
    code: str
    output: str
    check: Check | None
    answer: str = ""
    value: float | None = None
    tol: float | None = None
    items: tuple[int, ...] = ()

    @property
    def numeric(self) -> bool:
        return self.check is not None


@dataclass
class LecturePage:
    """A lecture page: its title lines, its cards, its exercises and the neighbouring
    pages."""

    subject: str
    origin: str
    summary: str
    filename: str
    cards: list[Card]
    previous: tuple[str, str] | None = None  # (filename, subject)
    next: tuple[str, str] | None = None
    exercises: list[ExerciseView] = field(default_factory=list)
    #: item number -> link to its card (``#i18`` here, ``page.html#i102`` elsewhere): the
    #: references to items in the explanations become links
    item_hrefs: dict[int, str] = field(default_factory=dict)
    #: the lecture's code cells as a Jupyter notebook beside the page (empty: none)
    notebook: str = ""
    #: item number -> (link, title) of the chapter that takes the item further
    deeper: dict[int, tuple[str, str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Items, checks (the cards' and the exercises') per status, code cells run."""
        checks = [c for card in self.cards for c in card.evidence.checks]
        checks += [e.check for e in self.exercises if e.check is not None]
        out = {s: sum(c.status == s for c in checks) for s in STATUSES}
        out["checks"] = len(checks)
        out["items"] = len(self.cards)
        out["framing"] = sum(card.state == "framing" for card in self.cards)
        out["cells"] = sum(bool(card.code) for card in self.cards)
        out["cells_ran"] = sum(bool(card.code) and not card.cell_error for card in self.cards)
        out["exercises"] = len(self.exercises)
        out["exercises_numeric"] = sum(e.numeric for e in self.exercises)
        return out


_CSS = """
:root { --ink:#1d2733; --muted:#5b6673; --line:#d9dee5; --accent:#0b63b5; --bg:#fbfcfd;
        --good:#1b7f3b; --bad:#b00020; --open:#8a6d00; }
* { box-sizing: border-box; }
body { font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans CJK KR",
       "Noto Sans KR", "Source Han Sans KR", "NanumGothic", "Nanum Gothic", "Malgun Gothic",
       "Apple SD Gothic Neo", "UnDotum", "WenQuanYi Zen Hei", Arial, sans-serif;
       color: var(--ink); background: var(--bg); margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 27px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 6px; }
.sub { color: var(--muted); margin: 2px 0; }
nav a, a { color: var(--accent); text-decoration: none; }
nav { font-size: 14px; margin: 6px 0; display: flex; justify-content: space-between; gap: 12px; }
.claim { background: white; border: 1px solid var(--line); border-radius: 8px;
         padding: 14px 18px; margin: 16px 0; }
.claim.bad { border-left: 5px solid var(--bad); }
.claim.good { border-left: 5px solid var(--good); }
.claim.open { border-left: 5px solid var(--open); }
.claim.framing { border-left: 5px solid var(--muted); }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 4px; }
.kind { display: inline-block; background: #eef2f7; border-radius: 4px; padding: 0 6px;
        margin-right: 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
blockquote { margin: 6px 0 10px; padding: 6px 12px; border-left: 3px solid #c9d3de;
             color: #3a4652; background: #f6f8fa; font-size: 14px; }
blockquote:lang(ko) { font-family: "Noto Sans CJK KR", "Noto Sans KR", "Source Han Sans KR",
       "NanumGothic", "Nanum Gothic", "Malgun Gothic", "Apple SD Gothic Neo", "UnDotum",
       "WenQuanYi Zen Hei", sans-serif; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13.5px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: #f0f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.checks td.mark { font-size: 17px; width: 26px; }
.ok { color: var(--good); } .no { color: var(--bad); } .nr { color: var(--open); }
.rewrite, .framing-note { background: #fff8e1; border: 1px solid #f0d98a; border-radius: 6px;
         padding: 6px 10px; font-size: 14px; margin: 6px 0; }
.scroll { overflow-x: auto; max-width: 100%; }
.explain, .exercise, .claim h2, blockquote, .where, .play, .shared, .toc {
  overflow-wrap: anywhere; }
figure { margin: 10px 0 4px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: white; }
figure.movable { background: #f6f8fa; border: 1px solid var(--line); border-radius: 8px;
                 padding: 8px 10px; }
figure.movable .move { display: flex; gap: 10px; align-items: center; font-size: 14px; }
figure.movable input[type=range] { width: min(420px, 60vw); vertical-align: middle; }
figure.movable figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
figure.live { background: #f6f8fa; border: 1px solid var(--line); border-radius: 8px;
              padding: 8px 10px; }
figure.live .move { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 14px; }
figure.live input[type=range] { width: min(260px, 60vw); vertical-align: middle; }
figure.live svg { width: 100%; height: auto; background: white; border: 1px solid var(--line); }
figure.live .readout, figure.live .selfcheck { font-size: 13px; margin: 4px 0; }
figure.live figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.math { overflow-x: auto; margin: 8px 0; }
math { font-size: 1.08em; }
.formula { font-family: "STIX Two Math", "Latin Modern Math", "Cambria Math", "Times New Roman",
           serif; font-size: 1.08em; }
.where { color: var(--muted); font-size: 12.5px; margin-top: 6px; }
.where code { font-size: 12px; }
.toc li { margin: 2px 0; }
.score { font-weight: 600; }
.fontnote { color: var(--muted); font-size: 13px; }
.explain p { margin: 6px 0; }
.explain code, .exercise code { background: #eef2f7; border-radius: 3px; padding: 0 3px;
        font-size: 13px; }
pre code { background: none; padding: 0; font-size: inherit; }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
      overflow-x: auto; font-size: 12.5px; line-height: 1.4; margin: 6px 0; }
pre.out { background: #fff; border-style: dashed; }
pre.err { background: #fdecee; border-color: #e9a3ad; }
.cell-label { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
.play, .shared { font-size: 14px; margin: 6px 0; }
.exercise { background: white; border: 1px solid var(--line); border-radius: 8px;
            padding: 10px 16px; margin: 12px 0; }
details summary { cursor: pointer; color: var(--accent); }
details.checks > summary { font-size: 13.5px; color: var(--muted); margin: 6px 0; }
.try input { font: inherit; padding: 2px 6px; border: 1px solid var(--line); border-radius: 4px; }
.try button { font: inherit; padding: 2px 10px; }
.verdict { margin-left: 6px; font-weight: 600; }
.sealed { color: var(--muted); font-size: 13px; margin: 6px 0; }
.practises, .practise { color: var(--muted); font-size: 13.5px; }
footer { color: var(--muted); font-size: 13px; margin-top: 40px; border-top: 1px solid
         var(--line); padding-top: 8px; }
@media (max-width: 600px) {
  main { padding: 12px 10px 40px; }
  h1 { font-size: 23px; }
  .claim { padding: 10px 10px; }
  .exercise { padding: 8px 10px; }
  th, td { padding: 3px 6px; }
}
"""

_FONT_NOTE = (
    "The lectures' quotes are Korean. They show in the first Korean font the browser finds "
    "(Noto Sans CJK KR, NanumGothic, Malgun Gothic, Apple SD Gothic Neo, ...); where none is "
    "installed they appear as boxes. To get one: Debian/Ubuntu <code>apt-get install "
    "fonts-noto-cjk</code> (or <code>fonts-nanum</code>), Fedora <code>dnf install "
    "google-noto-sans-cjk-fonts</code>, macOS and Windows ship one."
)

_CLASSES = {"ok": "ok", "fail": "no", "not_reproduced": "nr"}


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


#: the narrowest a book figure is rendered, in pixels: its text (legends at 6-7 points) stays
#: legible where the page shows it at the column's width or zoomed on a phone
MIN_FIGURE_PX = 960


def figure_dpi(fig: Any) -> int:
    """The resolution at which ``fig`` is at least :data:`MIN_FIGURE_PX` wide (90 at the
    least)."""
    width_in = float(fig.get_size_inches()[0])
    return max(90, math.ceil(MIN_FIGURE_PX / width_in))


def _figure_html(fig: Any, alt: str) -> str:
    uri = figure_data_uri(fig, dpi=figure_dpi(fig))
    return f'<figure><img alt="{_e(alt)}" src="{uri}"></figure>'


def _movable_html(mv: Movable, ident: str, alt: str) -> str:
    """A slider over precomputed frames: every frame embedded, one shown at a time."""
    frames = []
    for i, (value, fig) in enumerate(zip(mv.values, mv.figures, strict=True)):
        uri = figure_data_uri(fig, dpi=figure_dpi(fig))
        hidden = "" if i == mv.initial else " hidden"
        frames.append(
            f'<img alt="{_e(alt)} ({_e(mv.label)} = {_e(value)})" data-frame="{i}" '
            f'src="{uri}"{hidden}>'
        )
    values = _e("|".join(mv.values))
    play = (
        f' · <a href="{_e(mv.play)}">the live playground</a> (run <code>descentlab playground '
        "--port 8765</code> first)"
        if mv.play
        else ""
    )
    return (
        f'<figure class="movable" id="{_e(ident)}" data-values="{values}">'
        f'<div class="move"><label>Move {_e(mv.label)}: <input type="range" min="0" '
        f'max="{len(mv.values) - 1}" step="1" value="{mv.initial}" aria-label="{_e(mv.label)}">'
        f"</label> <output>{_e(mv.label)} = {_e(mv.values[mv.initial])}</output></div>"
        f"{''.join(frames)}<figcaption>{_inline(mv.caption)} ({len(mv.values)} precomputed "
        f"frames: the slider works on the page itself, no server){play}</figcaption></figure>"
    )


def _scroll(table: str) -> str:
    """``table`` in a box of the column's width that scrolls sideways where the table is wider
    (a phone): the page itself never does."""
    return f'<div class="scroll">{table}</div>'


def _table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for v in r:
            num = isinstance(v, int | float) and not isinstance(v, bool)
            cells.append(f'<td class="{"num" if num else ""}">{_e(format_value(v))}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return _scroll(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


_EMPHASIS = re.compile(r"\*([^*\s](?:[^*]*[^*\s])?)\*")


#: "item 18", "items 20-21", "items 5 and 7": references to other cards in a text
_ITEM_REF = re.compile(r"\b(items?) (\d+)(?:(-|–|, | and )(\d+))?")


def _link_items(text: str, hrefs: dict[int, str]) -> str:
    """Each item number in a reference (``item 18``, ``items 20-21``) linked to its card,
    where ``hrefs`` knows it."""

    def one(n: str) -> str:
        href = hrefs.get(int(n))
        return f'<a href="{_e(href)}">{n}</a>' if href else n

    def sub(m: re.Match[str]) -> str:
        second = f"{m.group(3)}{one(m.group(4))}" if m.group(4) else ""
        return f"{m.group(1)} {one(m.group(2))}{second}"

    return _ITEM_REF.sub(sub, text)


#: a backquoted span that is a formula, not code: a Greek letter or a mathematical sign in it,
#: or a power such as ``e^5``
_FORMULA = re.compile(r"[α-ωΣΔΠ²³⁴⁵⁻¹ᵏᵗᵀᴺⁿ₀-₉½√←→≈≤≥‖∇·×∞]|^e\^\d+$")


def _span(piece: str) -> str:
    """A backquoted span: a formula (:data:`_FORMULA`) in the body's font at its size, code
    in the code font."""
    if _FORMULA.search(piece):
        return f'<span class="formula">{piece}</span>'
    return f"<code>{piece}</code>"


def _inline(text: str, hrefs: dict[int, str] | None = None) -> str:
    """``text`` escaped, with `backquoted` spans as code (or as a formula in the body's font,
    :func:`_span`), ``$TeX$`` typeset as MathML and, outside them, *starred* words emphasized
    and references to items linked (``hrefs``: item number -> link)."""
    out = []
    for kind, piece in split_math(text):
        if kind != "text":
            out.append(mathml(piece, kind == "display"))
            continue
        out += [
            _span(p) if i % 2 else _link_items(_EMPHASIS.sub(r"<em>\1</em>", p), hrefs or {})
            for i, p in enumerate(_e(piece).split("`"))
        ]
    return "".join(out)


def _paragraphs(text: str, hrefs: dict[int, str] | None = None) -> str:
    """Paragraphs (separated by blank lines); one that is a ``$$TeX$$`` formula alone is
    displayed."""
    paras = [" ".join(p.split()) for p in text.strip().split("\n\n") if p.strip()]
    return "".join(
        f'<div class="math">{mathml(p[2:-2], True)}</div>'
        if p.startswith("$$") and p.endswith("$$") and p.count("$$") == 2
        else f"<p>{_inline(p, hrefs)}</p>"
        for p in paras
    )


def _cell_html(code: str, output: str, error: str, label: str = "Code (run by the build):") -> str:
    out = [f'<p class="cell-label">{_e(label)}</p><pre><code>{_e(code)}</code></pre>']
    if output:
        out.append(f'<p class="cell-label">Output:</p><pre class="out">{_e(output)}</pre>')
    if error:
        out.append(f'<p class="cell-label">Error:</p><pre class="err">{_e(error)}</pre>')
    return "".join(out)


def checks_summary(checks: Sequence[Check]) -> str:
    """The one line a folded check table shows: ``23 checks ✔`` when all hold, else the
    count of each mark (``23 checks: 21 ✔, 1 ✘, 1 ○``)."""
    n = len(checks)
    head = f"{n} check{'s' if n != 1 else ''}"
    counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
    if counts["ok"] == n:
        return f"{head} ✔"
    return head + ": " + ", ".join(f"{counts[s]} {m}" for s, m in STATUSES.items() if counts[s])


def _checks_html(checks: Sequence[Check], fold: bool = True) -> str:
    """The check table; ``fold``: under a one-line summary that opens on a click (open from
    the start when a check fails: a ✘ is never hidden)."""
    rows = []
    for c in checks:
        mark = f'<span class="{_CLASSES[c.status]}">{c.mark}</span>'
        rows.append(
            f'<tr><td class="mark">{mark}</td><td>{_e(c.text)}</td>'
            f"<td>{_e(c.measured)}</td><td>{_e(c.expected)}</td></tr>"
        )
    table = _scroll(
        '<table class="checks"><thead><tr><th></th><th>check</th><th>measured</th>'
        f"<th>expected (tolerance)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    if not fold:
        return table
    opened = " open" if any(c.failed for c in checks) else ""
    return (
        f'<details class="checks"{opened}><summary>{_e(checks_summary(checks))}</summary>'
        f"{table}</details>"
    )


def _card_html(
    card: Card, hrefs: dict[int, str] | None = None, deeper: tuple[str, str] | None = None
) -> str:
    ev = card.evidence
    parts = [
        f'<section class="claim {card.state}" id="{_e(card.anchor)}">',
        f'<div class="meta"><span class="kind">{_e(card.kind)}</span>{_e(card.label)} · '
        f"{_e(card.section)}</div>",
        f"<h2>{_e(card.text)}</h2>",
    ]
    if card.quote:
        parts.append(f'<blockquote lang="ko">{_e(card.quote)}</blockquote>')
    if card.rewrite:
        parts.append(
            f'<p class="rewrite">The book rewrites the lecture here: {_e(card.rewrite)}</p>'
        )
    if card.framing:
        parts.append(f'<p class="framing-note">Framing: {_e(card.framing)}</p>')
    if card.explain:
        parts.append(f'<div class="explain">{_paragraphs(card.explain, hrefs)}</div>')
    if card.code:
        parts.append(_cell_html(card.code, card.output, card.cell_error))
    if card.exercises:
        links = ", ".join(f'<a href="#ex{i}">exercise {i}</a>' for i in card.exercises)
        parts.append(f'<p class="practise">✎ Practise it: {links}</p>')
    if deeper:
        parts.append(
            f'<p class="practise">⇲ In depth: <a href="{_e(deeper[0])}">{_e(deeper[1])}</a> '
            "(derivation, traces for several settings, a figure to move)</p>"
        )
    if card.playground:
        parts.append(
            f'<p class="play">▶ <a href="{_e(card.playground)}">See it in the playground</a> '
            "(run <code>descentlab playground --port 8765</code> first)</p>"
        )
    if ev.checks:
        parts.append(_checks_html(ev.checks))
    for sh in ev.shared:
        mark = {"good": ("ok", "✔"), "open": ("nr", "○"), "bad": ("no", "✘")}[sh.state]
        parts.append(
            f'<p class="shared"><span class="{mark[0]}">{mark[1]}</span> '
            + (
                f"<code>{_e(sh.shown_by)}</code>: its checks and figures are shown once, on "
                if not sh.checks
                else f"{sh.checks} more check{'s' if sh.checks > 1 else ''} of "
                f"<code>{_e(sh.shown_by)}</code>, the same as on another card, shown once on "
            )
            + f'<a href="{_e(sh.href)}">{_e(sh.label)}</a>.</p>'
        )
    for table in ev.tables:
        parts.append(_table_html(*table))
    for fig in ev.figures:
        parts.append(_figure_html(fig, card.text))
    for k, mv in enumerate(ev.movable):
        parts.append(_movable_html(mv, f"{card.anchor}-m{k}", card.text))
    for note in ev.notes:
        parts.append(f'<p class="sub">{_e(note)}</p>')
    parts.append(f'<div class="where">Shown by: <code>{_e(card.shown_by)}</code></div>')
    parts.append("</section>")
    return "\n".join(parts)


#: the typed answer's relative tolerance at the least (a reader rounds: 1 %)
READER_TOL = 0.01

#: the page's one script: a typed answer checked against the build's, in the browser
_CHECK_JS = """
function unseal(ex) {
  var key = ex.dataset.key.match(/../g).map(function (h) { return parseInt(h, 16); });
  var raw = atob(ex.dataset.sealed), bytes = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i) ^ key[i % key.length];
  return JSON.parse(new TextDecoder('utf-8').decode(bytes));
}
document.querySelectorAll('.exercise[data-sealed]').forEach(function (ex) {
  var input = ex.querySelector('input'), out = ex.querySelector('.verdict');
  var sealed = unseal(ex), answer = Number(sealed.answer), tol = Number(sealed.tol);
  var details = ex.querySelector('details');
  details.addEventListener('toggle', function () {
    var box = details.querySelector('.sealed');
    if (details.open && box) box.outerHTML = sealed.html;
    var status = ex.querySelector(':scope > .status');  // the solution shows the check
    if (status) status.hidden = details.open;
  });
  function check() {
    var raw = input.value.trim().replace(/\u2212/g, '-').replace(',', '.');
    var m = raw.match(/^([-+]?[0-9.]+(?:e[-+]?[0-9]+)?)\\s*\\/\\s*([0-9.]+(?:e[-+]?[0-9]+)?)$/i);
    var v = m ? Number(m[1]) / Number(m[2]) : (raw === '' ? NaN : Number(raw));
    if (!isFinite(v)) {
      out.className = 'verdict nr';
      out.textContent = 'Type a number (such as 0.25, 2.5e-3 or 1/4).';
      return;
    }
    var ok = Math.abs(v - answer) <= tol * Math.max(Math.abs(answer), 1e-12);
    out.className = 'verdict ' + (ok ? 'ok' : 'no');
    var within = (100 * tol).toPrecision(2) + ' % of the answer';
    out.textContent = ok ? '\u2714 Right: within ' + within + '.'
      : '\u2718 Not within ' + within + ': try again, or open the solution.';
  }
  ex.querySelector('button.check').addEventListener('click', check);
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter') { e.preventDefault(); check(); }
  });
});
"""


#: the movable figures' script: the slider shows its frame
_MOVABLE_JS = """
document.querySelectorAll('figure.movable').forEach(function (fig) {
  var input = fig.querySelector('input'), out = fig.querySelector('output');
  var values = fig.dataset.values.split('|'), label = input.getAttribute('aria-label');
  var frames = fig.querySelectorAll('img[data-frame]');
  input.addEventListener('input', function () {
    var k = Number(input.value);
    frames.forEach(function (img) { img.hidden = Number(img.dataset.frame) !== k; });
    out.textContent = label + ' = ' + values[k];
  });
});
"""


def seal(text: str, salt: str) -> tuple[str, str]:
    """``text`` encoded for the page (UTF-8, XOR with a key derived from ``salt``, base64) and
    the key in hex: an answer not readable in the page's source, which the page's script
    decodes (:func:`unseal` is its Python twin). An encoding against reading ahead, not a
    secret: the key travels with it.

    Example:
        >>> unseal(*seal("0.25", "ex1"))
        '0.25'
    """
    key = hashlib.sha256(salt.encode()).digest()[:16]
    data = bytes(b ^ key[i % len(key)] for i, b in enumerate(text.encode()))
    return base64.b64encode(data).decode("ascii"), key.hex()


def unseal(sealed: str, key: str) -> str:
    """The text :func:`seal` encoded."""
    k = bytes.fromhex(key)
    return bytes(b ^ k[i % len(k)] for i, b in enumerate(base64.b64decode(sealed))).decode()


def reader_tol(view: ExerciseView) -> float:
    """The tolerance of a typed answer: the build's, at least :data:`READER_TOL`."""
    return max(READER_TOL, view.tol or 0.0)


def _practises(items: Sequence[int], hrefs: dict[int, str] | None) -> str:
    if not items:
        return ""
    links = ", ".join(f'<a href="{_e((hrefs or {}).get(n, f"#i{n}"))}">item {n}</a>' for n in items)
    return f' <span class="practises">(practises {links})</span>'


def _exercises_html(exercises: Sequence[ExerciseView], hrefs: dict[int, str] | None = None) -> str:
    if not exercises:
        return ""
    numeric = sum(e.numeric for e in exercises)
    parts = [
        '<section id="exercises"><h2>Exercises</h2>',
        f'<p class="sub">{numeric} with a number to find (type it: the page checks it, no '
        f"server needed; the answer stays hidden until you ask) and {len(exercises) - numeric} "
        "to think through (a worked solution, folded).</p>",
    ]
    for i, ex in enumerate(exercises, 1):
        practises = _practises(ex.items, hrefs)
        head = f"<p><b>Exercise {i}.</b>{practises} {_inline(ex.question, hrefs)}</p>"
        if ex.check is None:
            parts.append(
                f'<div class="exercise open" id="ex{i}">{head}<details><summary>Worked '
                f"solution</summary>{_paragraphs(ex.solution, hrefs)}</details></div>"
            )
            continue
        c = ex.check
        mark = f'<span class="{_CLASSES[c.status]}">{c.mark}</span>'
        solution = (
            f'<p class="answer">Answer: <b>{_e(ex.answer)}</b> (computed by the build) {mark}</p>'
            f"{_paragraphs(ex.solution, hrefs)}{_cell_html(ex.code, ex.output, '')}"
            f"{_checks_html([c], fold=False)}"
        )
        payload = {"answer": ex.value, "tol": reader_tol(ex), "html": solution}
        sealed, key = seal(json.dumps(payload), f"{i}:{ex.question}")
        status = Check(c.text, c.status, "(in the solution)", "(in the solution)")
        parts.append(
            f'<div class="exercise numeric" id="ex{i}" data-sealed="{sealed}" data-key="{key}">'
            f"{head}"
            '<p class="try"><label>Your answer: <input type="text" inputmode="decimal" '
            'autocomplete="off" size="14"></label> <button type="button" class="check">Check'
            '</button> <span class="verdict" role="status" aria-live="polite"></span></p>'
            "<details><summary>Show the answer and the worked solution</summary>"
            '<div class="sealed">(the page decodes the answer when you open this: it is not in '
            "the page's text before you try)</div></details>"
            f'<div class="status">{_checks_html([status], fold=False)}</div></div>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _nav(page: LecturePage, index: str) -> str:
    prev = (
        f'<a rel="prev" href="{_e(page.previous[0])}">← {_e(page.previous[1])}</a>'
        if page.previous
        else "<span></span>"
    )
    nxt = (
        f'<a rel="next" href="{_e(page.next[0])}">{_e(page.next[1])} →</a>'
        if page.next
        else "<span></span>"
    )
    return f'<nav>{prev}<a href="{_e(index)}">all lectures</a>{nxt}</nav>'


def _score(counts: dict[str, int]) -> str:
    nr = counts["not_reproduced"]
    extra = f", {nr} not reproduced here (○)" if nr else ""
    framing = f", {counts['framing']} framing" if counts["framing"] else ""
    items = f"{counts['items']} item{'' if counts['items'] == 1 else 's'}"
    cells = (
        f"; {counts['cells_ran']} of {counts['cells']} code cells ran"
        if counts.get("cells")
        else ""
    )
    exercises = f"; {counts['exercises']} exercises" if counts.get("exercises") else ""
    return (
        f"{items}{framing}: {counts['ok']} of {counts['checks']} checks hold "
        f"(✔), {counts['fail']} fail (✘){extra}{cells}{exercises}"
    )


def _page(title: str, body: str) -> str:
    footer = (
        "descentlab lecture book · self-contained page (no external resources) · every "
        "✔/✘/○ is computed from the numbers shown beside it.<br>"
        f'<span class="fontnote">{_FONT_NOTE}</span>'
    )
    return html_page(title, body, footer, css=_CSS)


def _notebook_html(notebook: str) -> str:
    if not notebook:
        return ""
    return (
        f'<p class="download">⤓ <a href="{_e(notebook)}" download>This lecture\'s code cells as '
        "a Jupyter notebook</a> (<code>.ipynb</code>: runs top to bottom with descentlab "
        "installed; each cell starts from the random state the build used).</p>"
    )


def _script(page: LecturePage) -> str:
    """The page's one inline script: the exercises' check, the movable figures' sliders."""
    code = ""
    if any(e.numeric for e in page.exercises):
        code += _CHECK_JS
    if any(c.evidence.movable for c in page.cards):
        code += _MOVABLE_JS
    return f"\n<script>{code}</script>" if code else ""


def _number(card: Card) -> int | None:
    return int(card.anchor[1:]) if card.anchor[1:].isdigit() else None


def render_lecture(page: LecturePage, setting: str, index: str = "index.html") -> str:
    """The HTML of one lecture page (``setting``: e.g. ``"quick setting"``)."""
    for c in page.cards:  # each card links the exercises that practise it
        n = int(c.anchor[1:]) if c.anchor[1:].isdigit() else None
        c.exercises = tuple(i for i, ex in enumerate(page.exercises, 1) if n in ex.items)
    toc = "".join(
        f'<li><a href="#{_e(c.anchor)}">{_e(c.label)}</a> {_e(c.text)}'
        + {"bad": " <span class=no>✘</span>", "open": " <span class=nr>○</span>"}.get(c.state, "")
        + "</li>"
        for c in page.cards
    )
    ex_toc = (
        f'<li><a href="#exercises">Exercises</a> ({len(page.exercises)}: '
        f"{sum(e.numeric for e in page.exercises)} with a number the page checks, the others "
        "with a worked solution)</li>"
        if page.exercises
        else ""
    )
    nav = _nav(page, index)
    body = f"""{nav}
<header>
<h1>{_e(page.subject)}</h1>
<p class="sub">{_e(page.origin)}</p>
<p>{_e(page.summary)}</p>
<p class="score">{_e(_score(page.counts()))} ({_e(setting)}).</p>
{_notebook_html(page.notebook)}
</header>
<ol class="toc">{toc}{ex_toc}</ol>
{"".join(_card_html(c, page.item_hrefs, page.deeper.get(_number(c))) for c in page.cards)}
{_exercises_html(page.exercises, page.item_hrefs)}
{nav}{_script(page)}"""
    return _page(page.subject, body)


def render_index(
    pages: Sequence[LecturePage], setting: str, seconds: float, chapters: str = ""
) -> str:
    """The HTML of the book's index: one row per lecture page with its counts, then
    ``chapters`` (the chapters' table, HTML)."""
    rows = []
    totals = {
        "items": 0, "checks": 0, "ok": 0, "fail": 0, "not_reproduced": 0, "framing": 0,
        "cells": 0, "cells_ran": 0, "exercises": 0,
    }  # fmt: skip
    for p in pages:
        c = p.counts()
        for k in totals:
            totals[k] += c[k]
        mark = "no" if c["fail"] else "ok"
        rows.append(
            f'<tr><td><a href="{_e(p.filename)}">{_e(p.subject)}</a><br><span class="sub">'
            f'{_e(p.origin)}</span></td><td class="num">{c["items"]}</td>'
            f'<td class="num {mark}">{c["ok"]} / {c["checks"]}</td>'
            f'<td class="num">{c["fail"]}</td><td class="num">{c["not_reproduced"]}</td>'
            f'<td class="num">{c["cells_ran"]} / {c["cells"]}</td>'
            f'<td class="num">{c["exercises"]}</td></tr>'
        )
    body = f"""<header>
<h1>The lectures, every claim shown</h1>
<p class="sub">Five lectures on optimization for deep learning (shared/seeds), rebuilt with
descentlab: each item explained, with a code cell the build ran, the figure, table or
experiment that shows it and checks computed from the numbers; each lecture ends with
exercises whose answers the build computed. Built in {seconds:.0f} s ({_e(setting)}).</p>
</header>
<div class="scroll"><table><thead><tr><th>lecture</th><th>items</th><th>✔ checks</th><th>✘</th>
<th>○ not reproduced here</th><th>code cells ran</th><th>exercises</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></div>
<p class="score">{_e(_score(totals))}.</p>
{chapters}"""
    return _page("The lectures, every claim shown", body)
