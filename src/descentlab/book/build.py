"""Building the lecture book: compute each item's evidence, hand the cards to the renderer
(:mod:`descentlab.book.render.pages`), write the pages; and the coverage table.

``descentlab lectures --out DIR`` (:func:`write_book`) writes ``index.html`` and one page per
lecture of ``shared/seeds``, titled by the lecture's subject, with previous/next links. The
experiments' results are kept in ``DIR/data/<name>.json`` with the key that produced them
(settings and code hash, :mod:`descentlab.book.model`); a result whose key differs is run
again, never silently reused.

Example:
    >>> from descentlab.book.build import write_book
    >>> paths = write_book("book/", quick=True)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from descentlab._files import check_target, make_dirs
from descentlab.book import teaching
from descentlab.book.card_formulas import formula_checks
from descentlab.book.cells import cell_check, exercise_view, playground_url, run_cell
from descentlab.book.chapters import CHAPTERS, formula_census
from descentlab.book.claims import backed_share, claim_checks, unbacked_count
from descentlab.book.facts import restated_check, text_check
from descentlab.book.lectures import EXPERIMENTS, ITEMS, LECTURES
from descentlab.book.model import (
    Context,
    Exercise,
    Item,
    Lecture,
    result_key,
    run_and_save,
    shown_by,
)
from descentlab.book.notebook import write_notebook
from descentlab.book.render.chapter import (
    ChapterPage,
    Practice,
    chapters_index_html,
    render_chapter,
)
from descentlab.book.render.pages import (
    Card,
    Check,
    Evidence,
    ExerciseView,
    LecturePage,
    SharedEvidence,
    render_index,
    render_lecture,
)
from descentlab.book.texts._facts import FACTS, RULES, stated_rules
from descentlab.engine.procpool import map_in_processes
from descentlab.report.page import write_page

__all__ = ["coverage_markdown", "evaluate", "write_book"]


def evaluate(
    item: Item,
    ctx: Context,
    seen: dict[str, SharedEvidence] | None = None,
    page: str = "",
) -> Evidence:
    """An item's evidence: its evidence functions' results joined; an error, or an item with
    evidence but no check, is shown as a failed check (never hidden).

    ``seen`` (the book's evidence so far, by :func:`shown_by`) makes evidence an earlier
    card showed a reference to that card instead of a second copy; ``page`` is this item's
    page (the reference's link is relative to it).
    """
    ev = Evidence()
    for fn in item.show:
        key = shown_by(fn)
        if seen is not None and key in seen:
            first = seen[key]
            there, anchor = first.href.split("#", 1)
            href = f"#{anchor}" if there == page else first.href
            ev.shared.append(SharedEvidence(key, href, first.label, first.state))
            continue
        try:
            part = fn(ctx)
        except Exception as exc:  # shown on the card as a failed check
            part = Evidence(checks=[Check(f"the evidence {key} could be computed", "fail",
                                          f"{type(exc).__name__}: {exc}", "no error")])  # fmt: skip
        if seen is not None:
            seen[key] = SharedEvidence(key, f"{page}#i{item.number}", f"item {item.number}",
                                       part.state)  # fmt: skip
            part = _without_repeated_checks(part, key, item.number, seen, page)
        ev.extend(part)
    if item.show and not ev.checks and not ev.shared:
        ev.checks.append(Check("the item has a check", "fail", "none", "≥ 1 check"))
    return ev


def _without_repeated_checks(
    part: Evidence, key: str, number: int, seen: dict[str, SharedEvidence], page: str
) -> Evidence:
    """``part`` less the checks an earlier card shows (the same text and numbers: another
    evidence function reading the same experiment), each such card referenced once; the
    checks shown here are recorded in ``seen`` (keyed by the check) for later cards."""
    kept: list[Check] = []
    repeated: dict[str, list[Check]] = {}
    for c in part.checks:
        ck_key = f"check\x00{c.text}\x00{c.measured}\x00{c.expected}"
        if ck_key in seen:
            if seen[ck_key].label != f"item {number}":  # (twice on one card: shown once)
                repeated.setdefault(ck_key, []).append(c)
            continue
        kept.append(c)
        state = {"ok": "good", "fail": "bad"}.get(c.status, "open")
        seen[ck_key] = SharedEvidence(key, f"{page}#i{number}", f"item {number}", state)
    by_card: dict[str, list[SharedEvidence]] = {}
    for ck_key in repeated:
        by_card.setdefault(seen[ck_key].href, []).append(seen[ck_key])
    for href, firsts in by_card.items():
        there, anchor = href.split("#", 1)
        states = {f.state for f in firsts}
        state = "bad" if "bad" in states else "open" if "open" in states else "good"
        part.shared.append(
            SharedEvidence(key, f"#{anchor}" if there == page else href, firsts[0].label, state,
                           checks=len(firsts))
        )  # fmt: skip
    part.checks = kept
    return part


def card(item: Item, ev: Evidence, ctx: Context | None = None) -> Card:
    """The card of an item with its evidence, its code cell run (a cell that raises adds a
    failed check; a cell several items share runs once per book, ``ctx``), the check of its
    explanation's comparative words and formulas against its numbers where it has any
    (:func:`~descentlab.book.facts.text_check`), and its playground link."""
    output = error = ""
    run = None
    if item.code:
        run = (
            run_cell(item.code)
            if ctx is None
            else ctx.memo(("cell", item.code), lambda: run_cell(item.code))
        )
        output, error = run.output, run.error
        failed = cell_check(run)
        if failed is not None:
            ev.checks.append(failed)
    words = text_check(item.explain, rules=stated_rules(item.number), book=RULES)
    if words is not None and words not in ev.checks:
        ev.checks.append(words)
    said = "\n\n".join([item.explain, *_hints(item.number)])  # its exercises' hints too
    home = f"item {item.number}"
    ev.checks += [c for c in claim_checks(said, home=home) if c not in ev.checks]
    ev.checks += teaching.result_checks(item.number, item.explain, run)  # what its cell printed
    ev.checks += formula_checks(item.number, item.explain)  # the relations it types, evaluated
    return Card(
        anchor=f"i{item.number}", label=f"item {item.number}", section=item.section,
        kind=item.kind_words, text=item.text, quote=item.quote, shown_by=item.shown_by,
        evidence=ev, framing=item.framing, rewrite=item.rewrite, explain=item.explain,
        code=item.code, output=output, cell_error=error,
        playground=playground_url(item.play) if item.play is not None else "",
    )  # fmt: skip


@functools.cache
def _hints_by_item() -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for lec in LECTURES:
        for ex in lec.exercises:
            for n in ex.items:
                out.setdefault(n, []).append(ex.solution)
    return {n: tuple(v) for n, v in out.items()}


def _hints(number: int) -> tuple[str, ...]:
    """The worked solutions of the lectures' exercises that practise item ``number``: its
    card reads their claims (a hint's sentence is bound at the card of the item it
    practises)."""
    return _hints_by_item().get(number, ())


def exercise(ex: Exercise) -> ExerciseView:
    """An exercise with its answer computed (its code run) and checked; an open-ended one
    with its worked solution alone (:func:`~descentlab.book.cells.exercise_view`)."""
    return exercise_view(ex)


def _prefetch(ctx: Context, names: Sequence[str], workers: int) -> None:
    """Run the experiments in ``names`` without a matching saved result, ``workers`` at a
    time in the engine's worker processes, longest first."""
    if ctx.data_dir is None or workers < 2:
        return
    todo = [name for name in names if ctx.saved(name) is None]
    if len(todo) < 2:
        return
    make_dirs(ctx.data_dir)  # (noted: a command that fails for lack of space removes it)
    ctx.log(f"  running {len(todo)} experiments, {workers} at a time: {', '.join(todo)}")

    def done(i: int, fut: Future[float]) -> None:
        if fut.exception() is None:
            ctx.log(f"  ran experiment {todo[i]} in {fut.result():.1f} s")
        else:  # it runs again in-process, where it raises
            ctx.log(
                f"  {todo[i]} failed in its worker ({fut.exception()}); it runs again in-process"
            )

    calls = [(name, ctx.quick, str(ctx.data_dir), result_key(name, ctx.quick)) for name in todo]
    map_in_processes(run_and_save, calls, workers=workers, done=done)


def _chosen(only: Sequence[str] | None) -> list[Lecture]:
    """The lectures named in ``only`` (numbers or page names), all when None.

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


def _check_items(items: Sequence[int] | None) -> set[int] | None:
    if items is None:
        return None
    known = {it.number for it in ITEMS}
    bad = [i for i in items if i not in known]
    if bad:
        raise KeyError(f"items must be numbers 1-{max(known)} of seed_items.md, got {bad}")
    return set(items)


def write_book(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    items: Sequence[int] | None = None,
    log: Callable[[str], None] | None = None,
    workers: int | None = None,
    cache: bool = True,
    chapters: bool | None = None,
) -> list[Path]:
    """Build the lecture book into ``out``: ``index.html`` and one page per lecture, with its
    code cells as a Jupyter notebook beside it (``<page>.ipynb``, linked from the page).

    Args:
        out: output folder (created); experiment results are kept in ``out/data``.
        quick: the experiments' quick presets and draft figures.
        only: the lectures to build, by number or page name (default all).
        items: only these items (numbers of seed_items.md) on the built pages (the mutation
            harness builds just the items a mutant concerns).
        log: progress messages (default: none).
        workers: processes that run the experiments beforehand (default: the CPU count, at
            most 4; 1 runs them as the pages need them).
        cache: keep and reuse experiment results in ``out/data`` (keyed by settings and code).
        chapters: also write the chapters (:mod:`descentlab.book.chapters`: the central
            topics at depth, ``deep-*.html``); default: when the whole book is built.

    Returns:
        the pages written, index first (each notebook is its page's name with ``.ipynb``).

    Writes:
        Into ``out``: ``index.html``, one self-contained page per lecture (``<slug>.html``)
        with its notebook, the chapters (``deep-*.html``) when ``chapters``, and the
        experiments' results in ``out/data/`` when ``cache``. Each page is written atomically;
        a page's path that is a link or a folder is refused before any page is written.

    Raises:
        KeyError: an unknown lecture in ``only`` or item in ``items``, or an item on none of
            the lectures chosen; raised before anything is written.
        ValueError: a page's path in ``out`` is a link or a folder.

    Example:
        One item of the quick book (item 1: no experiment to run; well under a second):

        >>> import tempfile
        >>> from descentlab.book.build import write_book
        >>> folder = tempfile.TemporaryDirectory()
        >>> [p.name for p in write_book(folder.name, quick=True, items=[1])]
        ['index.html', 'optimization-basics.html']
        >>> write_book(folder.name, items=[999])
        Traceback (most recent call last):
        KeyError: 'items must be numbers 1-... of seed_items.md, got [999]'
        >>> folder.cleanup()
    """
    chosen, wanted_items = _selection(only, items)
    root = Path(out)
    chapters = (wanted_items is None and only is None) if chapters is None else chapters
    names = [f"{lec.slug}.{ext}" for lec in chosen for ext in ("html", "ipynb")]
    names += [f"{ch.stem}.html" for ch in CHAPTERS] if chapters else []
    for name in ["index.html", *names]:
        check_target(root / name)  # a link or a folder there: refused before any page
    make_dirs(root)  # recorded: taken back if the disk fills (descentlab._files)
    ctx = Context(quick, root / "data" if cache else None, log or (lambda _msg: None))
    t0 = time.perf_counter()
    wanted = {e for lec in chosen for e in lec.experiments} if wanted_items is None else set()
    n_workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
    _prefetch(ctx, [n for n in EXPERIMENTS if n in wanted], n_workers)
    pages = _lecture_pages(ctx, chosen, wanted_items)
    where = _link_pages(pages)
    setting = "quick setting (smaller runs)" if quick else "full setting"
    made = _chapters(ctx, pages, where) if chapters else []
    written = _write_pages(
        root, ctx, pages, made, {f"{lec.slug}.html": lec for lec in chosen}, setting
    )
    index = root / "index.html"
    write_page(
        index, render_index(pages, setting, time.perf_counter() - t0, chapters_index_html(made))
    )
    return [index, *written]


def _selection(
    only: Sequence[str] | None, items: Sequence[int] | None
) -> tuple[list[Lecture], set[int] | None]:
    """The lectures to build and the items wanted on them (None: all), checked."""
    chosen = _chosen(only)
    wanted_items = _check_items(items)
    if wanted_items is not None:
        shown = {i.number for lec in chosen for i in lec.items}
        elsewhere = sorted(set(wanted_items) - shown)
        if elsewhere:  # an item of another lecture: an empty book would say nothing
            raise KeyError(
                f"item(s) {', '.join(map(str, elsewhere))} are on none of the lectures chosen "
                f"({', '.join(lec.slug for lec in chosen)}); leave out --only or choose theirs"
            )
        chosen = [lec for lec in chosen if any(i.number in wanted_items for i in lec.items)]
    return chosen, wanted_items


def _lecture_pages(
    ctx: Context, chosen: list[Lecture], wanted_items: set[int] | None
) -> list[LecturePage]:
    """Each chosen lecture's page: its cards' evidence computed (evidence an earlier card
    showed is referenced, not repeated) and its exercises answered."""
    pages: list[LecturePage] = []
    seen: dict[str, SharedEvidence] = {}
    for lec in chosen:
        ctx.log(f"{lec.subject} ({len(lec.items)} items)")
        cards = [card(it, evaluate(it, ctx, seen, f"{lec.slug}.html"), ctx) for it in lec.items
                 if wanted_items is None or it.number in wanted_items]  # fmt: skip
        exercises = [exercise(ex) for ex in lec.exercises] if wanted_items is None else []
        pages.append(
            LecturePage(lec.subject, lec.origin, lec.summary, f"{lec.slug}.html", cards,
                        exercises=exercises, notebook=f"{lec.slug}.ipynb")
        )  # fmt: skip
    return pages


def _link_pages(pages: list[LecturePage]) -> dict[str, str]:
    """Each page's links to the cards of every page built and to its neighbours; returns where
    each card is (its anchor -> its page)."""
    where = {c.anchor: page.filename for page in pages for c in page.cards}
    for i, page in enumerate(pages):  # an explanation's "item 18" links to that card
        page.item_hrefs = {
            int(anchor[1:]): f"#{anchor}" if there == page.filename else f"{there}#{anchor}"
            for anchor, there in where.items()
        }
        page.previous = (pages[i - 1].filename, pages[i - 1].subject) if i > 0 else None
        page.next = (pages[i + 1].filename, pages[i + 1].subject) if i + 1 < len(pages) else None
    return where


def _write_pages(
    root: Path, ctx: Context, pages: list[LecturePage], made: list[ChapterPage],
    lectures: dict[str, Lecture], setting: str,
) -> list[Path]:  # fmt: skip
    """Write the lecture pages with their notebooks, then the chapters; returns the paths."""
    written = []
    for page in pages:
        path = root / page.filename
        write_notebook(root / page.notebook, lectures[page.filename], page.filename)
        write_page(path, render_lecture(page, setting))
        c = page.counts()
        ctx.log(f"  wrote {path}: {c['ok']} ✔, {c['fail']} ✘, {c['not_reproduced']} ○ of "
                f"{c['checks']} checks")  # fmt: skip
        for cd in page.cards:
            cd.evidence.figures = []  # the Agg figures are garbage once embedded
            for mv in cd.evidence.movable:
                mv.figures = [None] * len(mv.figures)
        written.append(path)
    for chapter in made:
        path = root / chapter.filename
        write_page(path, render_chapter(chapter, setting))
        c = chapter.counts()
        ctx.log(f"  wrote {path}: {c['ok']} ✔, {c['fail']} ✘ of {c['checks']} checks, "
                f"{c['words']} words")  # fmt: skip
        written.append(path)
    return written


def _chapters(ctx: Context, pages: list[LecturePage], where: dict[str, str]) -> list[ChapterPage]:
    """The chapters (:mod:`descentlab.book.chapters`), computed, linked to the items' cards and
    to each other; the cards of their items link to them."""
    out = []
    for make in CHAPTERS:
        ctx.log(f"chapter {make.stem}")
        chapter = make(ctx)
        chapter.item_hrefs = {int(a[1:]): f"{there}#{a}" for a, there in where.items()}
        out.append(chapter)
    for i, chapter in enumerate(out):
        chapter.previous = (
            (out[i - 1].filename, out[i - 1].title)
            if i > 0
            else (pages[-1].filename, pages[-1].subject)
            if pages
            else None
        )
        chapter.next = (out[i + 1].filename, out[i + 1].title) if i + 1 < len(out) else None
        for page in pages:
            for card in page.cards:
                n = int(card.anchor[1:])
                if n in chapter.items and n not in page.deeper:
                    page.deeper[n] = (chapter.filename, chapter.title)
    if out and pages:
        pages[-1].next = (out[0].filename, out[0].title)
    if out:
        typed = formula_census()
        ctx.log(
            f"formulas in the chapters' prose: {typed['rendered']} rendered from a Formula, "
            f"{typed['justified']} typed with their reason (descentlab.book.chapters._typed), "
            f"{len(typed['unreviewed'])} typed and unreviewed"
        )
    if out:
        from descentlab.book.texts._words import CHECKED_BY

        keeps = [make.keep for make in CHAPTERS]
        backed, total = backed_share(keeps, read=CHECKED_BY)
        ctx.log(
            f"teaching sentences (What to keep): {backed} of {total} backed by a run or a check "
            f"row ({100 * backed / max(total, 1):.0f} %), {unbacked_count(keeps)} listed as "
            "nothing can back (descentlab.book.claims.UNBACKED)"
        )
        found = teaching.census()
        ctx.log(teaching.census_line(teaching.shares(found)))
        out[-1].parts[-1].blocks[-1].append(teaching.bound_check(found))
        texts = page_texts(pages, out)
        check = restated_check(texts, FACTS)
        for chapter in out:
            if chapter is out[-1] or (check.failed and f"({chapter.filename})" in check.measured):
                chapter.parts[-1].blocks[-1].append(check)
    return out


def page_texts(pages: Sequence[LecturePage], chapters: Sequence[ChapterPage]) -> dict[str, str]:
    """What each page states in words: a lecture page's explanations and worked solutions, a
    chapter's prose and worked solutions (file name -> text)."""
    out = {
        p.filename: "\n\n".join([c.explain for c in p.cards] + [e.solution for e in p.exercises])
        for p in pages
    }
    for c in chapters:
        blocks = [b for part in c.parts for b in part.blocks if isinstance(b, Practice)]
        solutions = [e.solution for b in blocks for e in b.exercises]
        out[c.filename] = "\n\n".join([c.prose, *solutions])
    return out


def coverage_markdown() -> str:
    """The coverage table: every item of seed_items.md, its kind and what shows it."""
    out = [
        "# The lectures' items and where each is shown",
        "",
        "Generated by `descentlab lectures --coverage`; one row per item of "
        "`shared/seed_items.md` (numbered as there). The lecture book (`descentlab lectures --out "
        "DIR`) shows each item with its checks; `framing` marks a framing slide with nothing to "
        "compute.",
        "",
    ]
    counts = []
    for lec in LECTURES:
        framing = sum(bool(i.framing) and not i.show for i in lec.items)
        counts.append(
            f"| {lec.seed} | {lec.subject} | {len(lec.items)} | {len(lec.items) - framing} | "
            f"{framing} |"
        )
        out += [
            f"## {lec.subject} (seed {lec.seed}, `{lec.slug}.html`)",
            "",
            "| # | kind | item | shown / verified by |",
            "|---|---|---|---|",
        ]
        for it in lec.items:
            text = it.text.replace("|", "\\|")
            where = (it.shown_by if it.show else f"framing: {it.framing}").replace("|", "\\|")
            out.append(f"| {it.number} | {it.kind_words} | {text} | `{where}` |")
        out.append("")
    head = [
        "| seed | lecture | items | with a computed check | framing |",
        "|---|---|---|---|---|",
        *counts,
        "",
    ]
    total = len(ITEMS)
    out[4:4] = [f"{total} items in {len(LECTURES)} lectures.", "", *head]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(coverage_markdown(), end="")
