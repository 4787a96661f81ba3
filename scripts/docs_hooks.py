"""MkDocs hooks of the documentation site (``mkdocs.yml``; ``make docs`` runs the build).

Two pages are made at build time, not kept in ``docs/``:

- ``index.md``, the home page, is ``README.md`` with its links into ``docs/`` made
  page-relative, so the README stays the one text a newcomer reads first;
- ``book/``: the lecture book, built by ``descentlab lectures`` (the quick preset) into
  ``build/docs-book/`` (its experiments' results are kept there and reused while their
  settings and code are unchanged: a second build only renders), then copied into the site.

``DESCENTLAB_DOCS_BOOK_ITEMS=1,11`` builds only those items' lectures (what the site's test
uses: the full quick book runs every experiment of the five lectures), and
``DESCENTLAB_DOCS_BOOK_DIR`` builds the book in another folder.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOOK_DIR = ROOT / "build" / "docs-book"
ITEMS_ENV = "DESCENTLAB_DOCS_BOOK_ITEMS"
DIR_ENV = "DESCENTLAB_DOCS_BOOK_DIR"


def home_page(readme: str) -> str:
    """The README as the site's home page: ``](docs/page.md)`` links become ``](page.md)``."""
    return re.sub(r"\]\(docs/", "](", readme)


def book_items() -> list[int] | None:
    """The items named by ``DESCENTLAB_DOCS_BOOK_ITEMS`` (None: the whole book)."""
    raw = os.environ.get(ITEMS_ENV, "").strip()
    if not raw:
        return None
    try:
        items = [int(part) for part in raw.split(",")]
    except ValueError:
        raise SystemExit(f"{ITEMS_ENV} must be comma-separated item numbers, got {raw!r}") from None
    return items


def build_book(out: Path, items: list[int] | None) -> list[Path]:
    """The lecture book's pages (quick preset) written into ``out``; index first."""
    src = str(ROOT / "src")
    if src not in sys.path:  # the checkout's descentlab, installed or not
        sys.path.insert(0, src)
    from descentlab.book.build import write_book

    for stale in out.glob("*.html"):  # pages of an earlier build with other items
        stale.unlink()
    return write_book(out, quick=True, items=items, log=lambda line: print(line, flush=True))


def on_files(files: Any, config: Any) -> Any:
    """Add the home page (from the README) and the lecture book's pages to the site."""
    from mkdocs.structure.files import File

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=home_page(readme)))
    book_dir = Path(os.environ.get(DIR_ENV) or BOOK_DIR)
    for page in build_book(book_dir, book_items()):
        files.append(File.generated(config, f"book/{page.name}", abs_src_path=str(page)))
    return files
