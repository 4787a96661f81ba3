"""Refuse a built site whose lecture book shows a failed check (✘).

``make docs`` runs it after the build: the site never publishes a book page with a ✘ (a
claim its numbers contradict, a code cell that raised, an exercise whose answer disagrees
with the measurement):

    python scripts/book_marks.py site/book

It prints one line per ✘ (the page, the card or exercise, the check) and exits 1 when there
is one; 0 with the pages' counts otherwise. A folder without book pages is an error too (the
book was not built into the site).
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

#: a check's row whose mark is ✘ (``book.render.pages._checks_html``)
_FAILED_ROW = re.compile(
    r'<tr><td class="mark"><span class="no">✘</span></td><td>(?P<text>.*?)</td>'
    r"<td>(?P<measured>.*?)</td>",
    re.S,
)
#: a card (``id="i17"``) or an exercise (``id="ex3"``) that holds the rows after it
_BLOCK = re.compile(r'<(?:section|div) class="(?:claim [a-z]+|exercise)" id="(?P<id>[^"]+)"')


def failed_checks(page_html: str) -> list[str]:
    """``#id: check (measured)`` for each ✘ row of a book page, by the card or exercise that
    holds it."""
    blocks = [(m.start(), m.group("id")) for m in _BLOCK.finditer(page_html)]
    out = []
    for row in _FAILED_ROW.finditer(page_html):
        where = next((bid for start, bid in reversed(blocks) if start < row.start()), "page")
        text = html.unescape(re.sub(r"<[^>]+>", "", row.group("text")))
        measured = html.unescape(re.sub(r"<[^>]+>", "", row.group("measured")))
        out.append(f"#{where}: {text} (measured {measured})")
    return out


def book_problems(book: Path) -> tuple[list[str], int]:
    """Every ✘ of the lecture pages in ``book`` (``page#id: check``) and the pages read."""
    pages = sorted(p for p in book.glob("*.html") if p.name != "index.html")
    problems = [
        f"{p.name}{line}" for p in pages for line in failed_checks(p.read_text(encoding="utf-8"))
    ]
    return problems, len(pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("book", type=Path, help="the built book's folder (site/book)")
    args = parser.parse_args(argv)
    if not (args.book / "index.html").is_file():
        parser.error(f"book: {str(args.book)!r} holds no index.html (build the site first)")
    problems, pages = book_problems(args.book)
    if problems:
        print(f"the lecture book shows {len(problems)} failed check(s) (✘):")
        print("\n".join(problems))
        return 1
    print(f"{pages} book pages, no failed check (✘)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
