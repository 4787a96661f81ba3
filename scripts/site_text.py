"""Refuse a built site whose pages show raw Sphinx markup: a role (``:class:``, ``:mod:``,
``:func:``, ``:meth:``, ``:attr:``, ``:data:``, ``:exc:``, ``:obj:``), ``:math:`` or a
``.. math::`` directive left as text, TeX left unrendered (``\\(`` ... ``\\)``), or a doctest
drawn as three nested quotes (Markdown's reading of ``>>>`` outside a code block).

``make docs`` runs it after the build (``scripts/griffe_docstrings.py`` converts the
docstrings' markup; this finds what it missed):

    python scripts/site_text.py site

It prints one line per page with its count and the first raw piece, and exits 1 when there
is one; 0 with the count of pages read otherwise. Code (``<pre>``, ``<code>``) is not read:
a role quoted as code is an example of the markup, not a failure to render it.
"""

from __future__ import annotations

import argparse
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

#: raw markup in a page's text
RAW = re.compile(
    r":(?:py:)?(?:class|mod|func|meth|attr|data|exc|obj|math):(?=[`\w~]|\s*<code>)"
    r"|\.\. (?:math|note|code-block)::"
    r"|\\\(|\\\["
)


class _Text(HTMLParser):
    """A page's text outside ``<pre>``, ``<code>``, ``<script>`` and ``<style>``, with each
    ``<code>`` marked (a role's target renders as code right after it)."""

    SKIP = ("pre", "script", "style", "code")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            if tag == "code" and not self.depth:
                self.parts.append("<code>")
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


#: a doctest's ``>>>`` read by Markdown: three quotes, one in another
QUOTED_DOCTEST = re.compile(
    r"<blockquote>\s*<blockquote>\s*<blockquote>\s*(?:<p>)?(?P<text>[^<]{0,40})"
)


def raw_markup(html: str) -> list[str]:
    """The raw pieces of markup in ``html``'s text (each with a little context)."""
    parser = _Text()
    parser.feed(html)
    text = "".join(parser.parts)
    found = [text[max(0, m.start() - 20) : m.end() + 30] for m in RAW.finditer(text)]
    return found + [f">>> {m.group('text')}" for m in QUOTED_DOCTEST.finditer(html)]


def site_problems(site: Path) -> tuple[dict[str, list[str]], int]:
    """Each page of ``site`` with raw markup (``page -> pieces``) and the pages read."""
    pages = sorted(site.rglob("*.html"))
    found = {}
    for p in pages:
        raw = raw_markup(p.read_text(encoding="utf-8", errors="replace"))
        if raw:
            found[p.relative_to(site).as_posix()] = raw
    return found, len(pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site's folder (mkdocs' site_dir)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"site: {str(args.site)!r} holds no index.html (build the site first)")
    found, pages = site_problems(args.site)
    if found:
        total = sum(len(v) for v in found.values())
        print(f"{total} raw Sphinx roles, TeX strings or quoted doctests on {len(found)} page(s):")
        for page, raw in found.items():
            print(f"{page}: {len(raw)}, first: {' '.join(raw[0].split())!r}")
        return 1
    print(f"{pages} pages, no raw Sphinx role, TeX string or quoted doctest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
