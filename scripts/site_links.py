"""Check every internal link of a built site: each relative ``href``/``src`` of every HTML page
names a file of the site and, with ``#anchor``, an element of that page with that id (or name).

``make docs`` runs it after ``mkdocs build --strict`` (which checks the Markdown's links; this
checks what was written, the lecture book's own pages and the theme's links included):

    python scripts/site_links.py site/

It prints one line per broken link and exits 1 when there is one. Links with a scheme
(``https:``, ``data:``, ``mailto:``) and protocol-relative ones are not followed.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: pages whose links are not checked (none: 404.html's are page-relative, docs_hooks.py)
SKIP: frozenset[str] = frozenset()


class _Page(HTMLParser):
    """An HTML page's relative link targets and the ids (and names) it defines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value is None:
                continue
            if key in ("id", "name") and (key == "id" or tag == "a"):
                self.ids.add(value)
            elif key in ("href", "src"):
                self.links.append(value)


@cache
def _read(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(site: Path) -> list[str]:
    """``page: link`` for each internal link of ``site``'s HTML pages that resolves to no file
    or to no anchor of its page."""
    site = site.resolve()
    _read.cache_clear()
    problems = []
    for path in sorted(site.rglob("*.html")):
        if path.relative_to(site).as_posix() in SKIP:
            continue
        for link in _read(path).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                continue
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site).as_posix()}: {link}"
            if not target.is_relative_to(site) or not target.is_file():
                problems.append(f"{where} (no such file)")
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in _read(target).ids
            ):
                problems.append(f"{where} (no such anchor)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site's folder (mkdocs' site_dir)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"site: {str(args.site)!r} holds no index.html (build the site first)")
    problems = broken_links(args.site)
    pages = sum(1 for _ in args.site.rglob("*.html"))
    print("\n".join(problems) or f"{pages} pages, every internal link resolves")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
