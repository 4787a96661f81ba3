"""MkDocs hooks of the documentation site (``mkdocs.yml``; ``make docs`` runs the build).

Two pages are made at build time, not kept in ``docs/``:

- ``index.md``, the home page, is ``README.md`` with its links into ``docs/`` made
  page-relative, so the README stays the one text a newcomer reads first;
- ``book/``: the lecture book, built by ``descentlab lectures`` (the quick preset) into
  ``build/docs-book/`` (its experiments' results are kept there and reused while their
  settings and code are unchanged), then copied into the site. Its pages are rendered again
  only when what they are made of changed (:func:`book_stamp`: every file of the package, the
  items chosen, the Python and the libraries that compute and draw); otherwise the pages of
  the last build are used as they are.

``cli-examples.md`` runs every command of ``descentlab --help`` and shows what it printed, the
build stopping where one fails or prints other than expected (``scripts/cli_examples.py``);
a page's ``<!-- run: EXPECTED -->`` console blocks are run the same way and show what they
printed, and its ``<!-- file: PATH -->`` python blocks show that file of the checkout
(``DESCENTLAB_DOCS_RUN=0`` leaves the run blocks as written).

``api/optimizers.md``, the optimizers' and rules' reference (signature, parameters, the update
derived from each rule's form, an example the build ran), is generated from the code
(``scripts/api_pages.py``); ``api/entry-points.md``, the main job's entry points' (signature,
parameters, returns, files written, errors, an example), from their docstrings (the same
script): each example is run, and one that prints other than it shows stops the build.

The book's pages join the site: each gets the site's bar (:func:`book_page_for_site`: links
back to the home page, the book's guide, the API reference and the playground's guide, and how
to start the playground its ▶ links open), and each lecture's notebook (``<page>.ipynb``) is
copied beside its page. The book's links to the live playground (``http://127.0.0.1:8765/#...``,
dead on a published site) open a static page of that view instead, computed by the playground
at build time (:func:`static_playground_links`, :func:`playground_pages`). ``404.html`` is
written with page-relative links (:func:`relative_404`), so it works opened as a file too.

One page is completed at build time: in ``gpu.md``, ``<!-- cuda_paths: triton -->`` becomes
the display names of the optimizers whose CUDA path is that one (:func:`cuda_paths_names`), so
the table's first row needs no edit when an optimizer is added.

``DESCENTLAB_DOCS_BOOK_ITEMS=1,11`` builds only those items' lectures (what the site's test
uses: the full quick book runs every experiment of the five lectures), and
``DESCENTLAB_DOCS_BOOK_DIR`` builds the book in another folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOOK_DIR = ROOT / "build" / "docs-book"
ITEMS_ENV = "DESCENTLAB_DOCS_BOOK_ITEMS"
DIR_ENV = "DESCENTLAB_DOCS_BOOK_DIR"
STAMP = "site-stamp.json"
#: what a generated list of optimizers stands in for in a page (:func:`cuda_paths_names`)
CUDA_PATHS_MARK = "<!-- cuda_paths:"
#: the libraries whose versions the book's numbers and figures depend on
LIBRARIES = ("torch", "numpy", "scipy", "scikit-learn", "matplotlib", "pillow", "mnist1d")


def home_page(readme: str) -> str:
    """The README as the site's home page: ``](docs/page.md)`` links become ``](page.md)``."""
    return re.sub(r"\]\(docs/", "](", readme)


def _checkout_on_path() -> None:
    """Import descentlab from this checkout, installed or not."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


def cuda_paths_names(markdown: str) -> str:
    """``markdown`` with each ``<!-- cuda_paths: KIND -->`` replaced by ``": "`` and the display
    names, in registry order, of the optimizers whose ``optim.cuda_paths()`` kind is KIND."""
    if CUDA_PATHS_MARK not in markdown:
        return markdown
    _checkout_on_path()
    from descentlab import optim

    paths = optim.cuda_paths()

    def names(match: re.Match) -> str:
        kind = match.group(1)
        return ": " + ", ".join(r.display for r in optim.records() if paths[r.name].kind == kind)

    return re.sub(CUDA_PATHS_MARK + r" ([\w+]+) -->", names, markdown)


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


def book_stamp(package: Path, items: list[int] | None) -> str:
    """What the book's pages are made of: every file of ``package`` (paths and bytes), the
    items chosen, the Python and :data:`LIBRARIES`' versions, as one SHA-256."""
    h = hashlib.sha256()
    for f in sorted(package.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    h.update(json.dumps([items, platform.python_version(), versions]).encode())
    return h.hexdigest()


def build_book(out: Path, items: list[int] | None) -> list[Path]:
    """The lecture book's pages (quick preset) in ``out``, index first: those of the last
    build where its stamp is this one's, else written again."""
    stamp = book_stamp(ROOT / "src" / "descentlab", items)
    try:
        last = json.loads((out / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = {}
    pages = [out / name for name in last.get("pages", [])]
    if last.get("stamp") == stamp and pages and all(p.is_file() for p in pages):
        print(f"the lecture book in {out} is this code's: its {len(pages)} pages reused")
        return pages
    _checkout_on_path()
    from descentlab.book.build import write_book

    (out / STAMP).unlink(missing_ok=True)
    for stale in out.glob("*.html"):  # pages of an earlier build with other items
        stale.unlink()
    pages = write_book(out, quick=True, items=items, log=lambda line: print(line, flush=True))
    record = {"stamp": stamp, "pages": [p.name for p in pages]}
    (out / STAMP).write_text(json.dumps(record), encoding="utf-8")
    return pages


#: the optimizers' and rules' reference, generated from the code (scripts/api_pages.py)
OPTIMIZERS_PAGE = "api/optimizers.md"
#: the schedules' reference, generated the same way
SCHEDULES_PAGE = "api/schedules-reference.md"
#: the main job's entry points' reference (scripts/api_pages.py): every example
#: run, the build stopping where one prints other than it shows
ENTRY_POINTS_PAGE = "api/entry-points.md"

#: every command of ``descentlab --help`` run at build time, its output shown and checked
CLI_PAGE = "cli-examples.md"


def _script(name: str) -> Any:
    """``scripts/NAME.py`` as a module (this hook's folder is not a package)."""
    import importlib.util

    _checkout_on_path()
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: the links of the site's bar on a book page (relative to ``book/``)
SITE_LINKS = (
    ("../index.html", "descentlab documentation"),
    ("../book.html", "About the book"),
    ("index.html", "All lectures"),
    ("../api/optimizers.html", "API reference"),
    ("../playground.html", "The playground"),
)

_SITE_BAR = (
    '<nav class="site-bar" aria-label="site" style="display:flex;flex-wrap:wrap;gap:6px 18px;'
    "align-items:baseline;background:#0b63b5;color:#fff;padding:8px 32px;font:14px/1.4 "
    'system-ui,sans-serif">{links}<span style="opacity:.85;font-size:12.5px">▶ playground '
    "links open the view precomputed; for live controls run "
    '<code style="color:#fff">descentlab playground --port 8765</code></span></nav>'
)

#: a link of the book to the live playground (``descentlab.book.cells.playground_url``)
_LIVE_LINK = re.compile(r'href="(http://127\.0\.0\.1:\d+/#[^"]*)"')
#: what the book says beside such a link, and what the site says instead
_LIVE_NOTE = "(run <code>descentlab playground --port 8765</code> first)"
_STATIC_NOTE = (
    "(its view precomputed; for live controls run <code>descentlab playground --port 8765</code>)"
)
PLAY_DIR = "play"


def static_playground_links(html: str) -> tuple[str, dict[str, str]]:
    """A book page with each link to the live playground (``http://127.0.0.1:8765/#...``,
    dead on a published site) pointing at the view's static page instead, ``play/NAME.html``
    (named by the view's address), and the note beside it saying so; with ``{NAME: address}``
    of the pages to write (:func:`descentlab.playground.snapshot.snapshot_page`)."""
    pages: dict[str, str] = {}

    def one(m: re.Match[str]) -> str:
        import html as html_mod

        url = html_mod.unescape(m.group(1))
        name = hashlib.sha256(url.encode()).hexdigest()[:12] + ".html"
        pages[name] = url
        return f'href="{PLAY_DIR}/{name}"'

    return _LIVE_LINK.sub(one, html).replace(_LIVE_NOTE, _STATIC_NOTE), pages


def playground_pages(out: Path, views: dict[str, str], stamp: str) -> dict[str, Path]:
    """The static page of each view in ``views`` (``{NAME: address}``) in ``out/play``: those
    of the last build where its stamp (``stamp``: the code's) is this one's, else computed."""
    folder = out / PLAY_DIR
    record = folder / STAMP
    try:
        last = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = {}
    known = set(last.get("pages", [])) if last.get("stamp") == stamp else set()
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, url in sorted(views.items()):
        path = folder / name
        if name not in known or not path.is_file():
            _checkout_on_path()
            from descentlab.playground.snapshot import snapshot_page

            path.write_text(snapshot_page(url, back="../index.html"), encoding="utf-8")
        made[name] = path
    record.write_text(json.dumps({"stamp": stamp, "pages": sorted(made)}), encoding="utf-8")
    return made


def book_page_for_site(html: str) -> str:
    """A book page as the site publishes it: the site's bar (:data:`SITE_LINKS`) first in
    its body."""
    links = "".join(
        f'<a href="{href}" style="color:#fff;text-decoration:none;font-weight:600">{text}</a>'
        for href, text in SITE_LINKS
    )
    return html.replace("<body>", "<body>\n" + _SITE_BAR.format(links=links), 1)


_ROOT_LINK = re.compile(r'(\b(?:href|src|action)=")/(?!/)')


def relative_404(html: str) -> str:
    """``404.html`` (at the site's root) with its site-root links (``href="/x"``) made
    page-relative (``href="x"``): it works opened as a file and served for a missing page at
    the site's top level."""
    html = _ROOT_LINK.sub(r"\1", html).replace('"base": "/"', '"base": "."')
    return html.replace('href=""', 'href="index.html"')


def on_files(files: Any, config: Any) -> Any:
    """Add the home page (from the README) and the lecture book's pages (with the site's bar)
    and notebooks to the site."""
    from mkdocs.structure.files import File

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=home_page(readme)))
    api = _script("api_pages")
    files.append(File.generated(config, OPTIMIZERS_PAGE, content=api.optimizers_page()))
    files.append(File.generated(config, SCHEDULES_PAGE, content=api.schedules_page()))
    files.append(File.generated(config, ENTRY_POINTS_PAGE, content=api.entry_points_page()))
    files.append(File.generated(config, CLI_PAGE, content=_script("cli_examples").page()))
    book_dir = Path(os.environ.get(DIR_ENV) or BOOK_DIR)
    views: dict[str, str] = {}
    for page in build_book(book_dir, book_items()):
        html, links = static_playground_links(page.read_text(encoding="utf-8"))
        views.update(links)
        files.append(File.generated(config, f"book/{page.name}", content=book_page_for_site(html)))
        notebook = page.with_suffix(".ipynb")
        if notebook.is_file():
            files.append(
                File.generated(config, f"book/{notebook.name}", abs_src_path=str(notebook))
            )
    stamp = book_stamp(ROOT / "src" / "descentlab", None)
    for name, path in playground_pages(book_dir, views, stamp).items():
        files.append(File.generated(config, f"book/{PLAY_DIR}/{name}", abs_src_path=str(path)))
    return files


def on_post_build(config: Any) -> None:
    """Make ``404.html``'s links page-relative (:func:`relative_404`)."""
    page = Path(config["site_dir"]) / "404.html"
    if page.is_file():
        page.write_text(relative_404(page.read_text(encoding="utf-8")), encoding="utf-8")


#: pymdownx.arithmatex's generic output: ``\(x\)`` in a span, ``\[x\]`` in a div
_ARITHMATEX = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<block>.*?)\\\])'
    r"\s*</(?P=tag)>",
    re.S,
)


def mathml(html: str) -> str:
    """``html`` with arithmatex's math written as MathML (latex2mathml): the browser draws it,
    offline, with no script. A formula latex2mathml cannot read stays as its TeX, in code."""
    import html as html_mod

    from latex2mathml.converter import convert

    def one(m: re.Match[str]) -> str:
        block = m.group("block") is not None
        tex = html_mod.unescape(m.group("block") if block else m.group("inline"))
        try:
            out = convert(tex, display="block" if block else "inline")
        except Exception:  # (an unsupported command: the TeX is still readable)
            return f"<code>{html_mod.escape(tex)}</code>"
        return f'<div class="math">{out}</div>' if block else out

    return _ARITHMATEX.sub(one, html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Write the page's math as MathML (:func:`mathml`)."""
    return mathml(html)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Complete a page's generated lists (:func:`cuda_paths_names`), its files' code and its
    commands' outputs (``cli_examples.run_blocks``: run at every build)."""
    return _script("cli_examples").run_blocks(cuda_paths_names(markdown))
