"""The lecture book: one self-contained HTML page per lecture, every claim shown and checked.

``descentlab lectures --out DIR`` (:func:`write_book`) writes ``index.html`` and one page per
lecture of ``shared/seeds``, titled by the lecture's subject. A page lists the lecture's
concrete items -- formulas, algorithms, examples, figures, claims -- in the lecture's order,
each with the lecture's own words, the figure or table that shows it, and checks computed
from the numbers: ✔ or ✘ with the measured value beside the expected one. Nothing on a page
is asserted without a number behind it.

The items themselves live in :mod:`descentlab.report.lecture_claims`; the numbers come from
the lecture experiments (:mod:`descentlab.experiments.lectures`), the lecture figures
(:mod:`descentlab.report.lecture_figures`) and small computations against independent
references (torch, scipy, closed forms). The experiments' results are kept in
``DIR/data/<name>.json`` and reused by the next build when their settings match (a result
whose settings differ is run again, never silently reused).

Example:
    >>> from descentlab.report.lecture_book import write_book
    >>> paths = write_book("book/", quick=True)  # doctest: +SKIP
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from descentlab.engine.procpool import map_in_processes
from descentlab.experiments import lectures
from descentlab.experiments.lectures._common import format_value
from descentlab.report.lecture_claims import EXPERIMENTS, LECTURES
from descentlab.report.lecture_items import Check, Claim, Context, Evidence, Lecture
from descentlab.report.page import figure_data_uri, html_page, write_page

__all__ = ["Check", "Claim", "Evidence", "Lecture", "write_book"]


def _prefetch(ctx: Context, names: Sequence[str], workers: int) -> None:
    """Run the experiments in ``names`` that have no matching saved result, ``workers`` at a
    time in the project's worker processes (one torch thread each), longest first; their
    results land in ``ctx.data_dir`` for :meth:`Context.experiment` to load."""
    if ctx.data_dir is None or workers < 2:
        return
    todo = [name for name in names if ctx.saved(name) is None]
    if len(todo) < 2:
        return
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"  running {len(todo)} experiments, {workers} at a time: {', '.join(todo)}")

    def done(i: int, fut: Future[float]) -> None:
        if fut.exception() is None:
            ctx.log(f"  ran experiment {todo[i]} in {fut.result():.1f} s")
        else:  # it runs again in-process, where it raises
            ctx.log(
                f"  {todo[i]} failed in its worker ({fut.exception()}); it runs again in-process"
            )

    calls = [(name, ctx.quick, str(ctx.data_dir)) for name in todo]
    map_in_processes(_run_and_save, calls, workers=workers, done=done)


def _run_and_save(name: str, quick: bool, out: str) -> float:
    """Worker: run one experiment and save its result."""
    t0 = time.perf_counter()
    lectures.run(name, quick=quick).save(out)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------
# HTML

_CSS = """
:root { --ink:#1d2733; --muted:#5b6673; --line:#d9dee5; --accent:#0b63b5; --bg:#fbfcfd;
        --good:#1b7f3b; --bad:#b00020; }
* { box-sizing: border-box; }
body { font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans CJK KR",
       "Noto Sans KR", "NanumGothic", "Malgun Gothic", Arial, sans-serif;
       color: var(--ink); background: var(--bg); margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 27px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 6px; }
.sub { color: var(--muted); margin: 2px 0; }
nav a, a { color: var(--accent); text-decoration: none; }
nav { font-size: 14px; margin-top: 6px; }
.claim { background: white; border: 1px solid var(--line); border-radius: 8px;
         padding: 14px 18px; margin: 16px 0; }
.claim.bad { border-left: 5px solid var(--bad); }
.claim.good { border-left: 5px solid var(--good); }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 4px; }
.kind { display: inline-block; background: #eef2f7; border-radius: 4px; padding: 0 6px;
        margin-right: 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
blockquote { margin: 6px 0 10px; padding: 6px 12px; border-left: 3px solid #c9d3de;
             color: #3a4652; background: #f6f8fa; font-size: 14px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13.5px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: #f0f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.checks td.mark { font-size: 17px; width: 26px; }
.ok { color: var(--good); } .no { color: var(--bad); }
figure { margin: 10px 0 4px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: white; }
.where { color: var(--muted); font-size: 12.5px; margin-top: 6px; }
.where code { font-size: 12px; }
.toc li { margin: 2px 0; }
.score { font-weight: 600; }
footer { color: var(--muted); font-size: 13px; margin-top: 40px; border-top: 1px solid
         var(--line); padding-top: 8px; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _figure_html(fig: Any, alt: str) -> str:
    uri = figure_data_uri(fig, dpi=90)
    return f'<figure><img alt="{_e(alt)}" src="{uri}"></figure>'


def _table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for v in r:
            num = isinstance(v, int | float) and not isinstance(v, bool)
            cells.append(f'<td class="{"num" if num else ""}">{_e(format_value(v))}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _checks_html(checks: Sequence[Check]) -> str:
    rows = []
    for c in checks:
        mark = '<span class="ok">✔</span>' if c.ok else '<span class="no">✘</span>'
        rows.append(
            f'<tr><td class="mark">{mark}</td><td>{_e(c.text)}</td>'
            f"<td>{_e(c.measured)}</td><td>{_e(c.expected)}</td></tr>"
        )
    return (
        '<table class="checks"><thead><tr><th></th><th>check</th><th>measured</th>'
        f"<th>expected</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _page(title: str, body: str, nav: str) -> str:
    footer = (
        "descentlab lecture book · self-contained page (no external resources) · every ✔/✘ "
        "is\ncomputed from the numbers shown beside it."
    )
    return html_page(title, f"{nav}\n{body}", footer, css=_CSS)


def _render_lecture(
    lec: Lecture, results: list[tuple[Claim, Evidence, float]], quick: bool, index: str
) -> str:
    n_checks = sum(len(ev.checks) for _, ev, _ in results)
    n_ok = sum(c.ok for _, ev, _ in results for c in ev.checks)
    toc = "".join(
        f'<li><a href="#c{_e(cl.key)}">{_e(cl.key)}</a> {_e(cl.text)}'
        f"{'' if all(c.ok for c in ev.checks) else ' <span class=no>✘</span>'}</li>"
        for cl, ev, _ in results
    )
    cards = []
    for cl, ev, _ in results:
        good = all(c.ok for c in ev.checks) and ev.checks
        parts = [
            f'<section class="claim {"good" if good else "bad"}" id="c{_e(cl.key)}">',
            f'<div class="meta"><span class="kind">{_e(cl.kind)}</span>{_e(cl.key)} · '
            f"{_e(cl.section)}</div>",
            f"<h2>{_e(cl.text)}</h2>",
        ]
        if cl.quote:
            parts.append(f"<blockquote>{_e(cl.quote)}</blockquote>")
        if ev.checks:
            parts.append(_checks_html(ev.checks))
        if ev.table is not None:
            parts.append(_table_html(*ev.table))
        if ev.figure is not None:
            parts.append(_figure_html(ev.figure, cl.text))
        if ev.note:
            parts.append(f'<p class="sub">{_e(ev.note)}</p>')
        parts.append(f'<div class="where">Shown by: <code>{_e(cl.where)}</code></div>')
        parts.append("</section>")
        cards.append("\n".join(parts))
    setting = "quick setting (smaller runs)" if quick else "full setting"
    body = f"""<header>
<h1>{_e(lec.subject)}</h1>
<p class="sub">{_e(lec.origin)}</p>
<p>{_e(lec.summary)}</p>
<p class="score">{len(results)} items, {n_ok} of {n_checks} checks hold
({_e(setting)}).</p>
</header>
<ol class="toc">{toc}</ol>
{"".join(cards)}"""
    nav = f'<nav><a href="{_e(index)}">← all lectures</a></nav>'
    return _page(lec.subject, body, nav)


def _render_index(
    lectures: list[tuple[Lecture, str, int, int, int]], quick: bool, seconds: float
) -> str:
    rows = []
    for lec, page, n_items, n_ok, n_checks in lectures:
        mark = "ok" if n_ok == n_checks else "no"
        rows.append(
            f'<tr><td><a href="{_e(page)}">{_e(lec.subject)}</a><br><span class="sub">'
            f"{_e(lec.origin)}</span></td><td class=num>{n_items}</td>"
            f'<td class="num {mark}">{n_ok} / {n_checks}</td></tr>'
        )
    total_items = sum(x[2] for x in lectures)
    total_ok = sum(x[3] for x in lectures)
    total = sum(x[4] for x in lectures)
    setting = "quick setting" if quick else "full setting"
    body = f"""<header>
<h1>The lectures, every claim shown</h1>
<p class="sub">Five lectures on optimization for deep learning (shared/seeds), rebuilt with
descentlab: each item with the figure, table or experiment that shows it and checks computed
from the numbers. Built in {seconds:.0f} s ({_e(setting)}).</p>
</header>
<table><thead><tr><th>lecture</th><th>items</th><th>checks that hold</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p class="score">{total_items} items, {total_ok} of {total} checks hold.</p>"""
    return _page("The lectures, every claim shown", body, "")


def _chosen(only: Sequence[str] | None) -> list[Lecture]:
    """The lectures named in ``only`` (their numbers or page names), all when None.

    Raises:
        KeyError: an unknown name (the message lists the lectures).
    """
    if only is None:
        return list(LECTURES)
    names = {lec.seed for lec in LECTURES} | {lec.slug for lec in LECTURES}
    unknown = [o for o in only if o not in names]
    if unknown:
        raise KeyError(
            f"unknown lecture(s) {unknown}; valid: "
            + ", ".join(f"{lec.slug} or {lec.seed} ({lec.subject})" for lec in LECTURES)
        )
    return [lec for lec in LECTURES if lec.seed in only or lec.slug in only]


def _evidence(cl: Claim, ctx: Context) -> Evidence:
    """A claim's evidence; an error or a missing check is shown as a failed check."""
    try:
        ev = cl.evidence(ctx)
    except Exception as exc:  # a failing item is shown as failed, not hidden
        failed = Check("the evidence could be computed", False, f"{type(exc).__name__}: {exc}",
                       "no error")  # fmt: skip
        ev = Evidence(checks=[failed])
    if not ev.checks:
        ev.checks.append(Check("the item has a check", False, "none", "≥ 1 check"))
    return ev


def _write_lecture(lec: Lecture, ctx: Context, root: Path) -> tuple[Path, int, int, int]:
    """Compute a lecture's items and write its page: the page, items, checks that hold,
    checks."""
    ctx.log(f"{lec.subject} ({len(lec.claims)} items)")
    results = []
    for cl in lec.claims:
        t1 = time.perf_counter()
        ev = _evidence(cl, ctx)
        results.append((cl, ev, time.perf_counter() - t1))
    path = root / f"{lec.slug}.html"
    write_page(path, _render_lecture(lec, results, ctx.quick, "index.html"))
    _close_figures(results)
    n_checks = sum(len(ev.checks) for _, ev, _ in results)
    n_ok = sum(c.ok for _, ev, _ in results for c in ev.checks)
    ctx.log(f"  wrote {path}: {n_ok} of {n_checks} checks hold")
    return path, len(results), n_ok, n_checks


def write_book(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> list[Path]:
    """Build the lecture book into ``out``: ``index.html`` and one page per lecture.

    Args:
        out: output folder (created); experiment results are kept in ``out/data``.
        quick: the experiments' quick presets and draft figures (minutes instead of tens of
            minutes).
        only: the lectures to build, by number or page name (default all); the index lists
            the built ones.
        log: progress messages (default: none).
        workers: processes that run the experiments beforehand (default: the CPU count,
            at most 4; 1 runs them one by one as the pages need them).

    Returns:
        the pages written, index first.

    Raises:
        KeyError: an unknown lecture in ``only`` (the message lists them).
    """
    chosen = _chosen(only)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick, root / "data", log or (lambda _msg: None))
    t0 = time.perf_counter()
    wanted = {e for lec in chosen for e in lec.experiments}
    n_workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
    _prefetch(ctx, [n for n in EXPERIMENTS if n in wanted], n_workers)
    written: list[Path] = []
    summary = []
    for lec in chosen:
        path, n_items, n_ok, n_checks = _write_lecture(lec, ctx, root)
        written.append(path)
        summary.append((lec, path.name, n_items, n_ok, n_checks))
    index = root / "index.html"
    write_page(index, _render_index(summary, quick, time.perf_counter() - t0))
    return [index, *written]


def _close_figures(results: list[tuple[Claim, Evidence, float]]) -> None:
    for _, ev, _ in results:
        ev.figure = None  # the Agg figures are garbage once embedded
