"""The documentation site: ``mkdocs build --strict`` builds the guides, the
lecture book and the API reference into one site, and every internal link of the built HTML
resolves (``scripts/site_links.py``, which ``make docs`` runs too)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _scripts import script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.process
@pytest.mark.slow
def test_the_site_builds_strict_and_every_internal_link_resolves(tmp_path):
    """The whole site but the book's heavy build: the book holds items 1 and 11 only
    (seconds; item 11 links a playground view)."""
    site = tmp_path / "site"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "DESCENTLAB_DOCS_BOOK_ITEMS": "1,11",
        "DESCENTLAB_DOCS_BOOK_DIR": str(tmp_path / "book"),
        "NO_MKDOCS_2_WARNING": "1",
        "DESCENTLAB_DOCS_RUN": "0",  # (compare.md's comparisons: make docs runs them)
    }
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert script("site_links").broken_links(site) == []
    home = (site / "index.html").read_text(encoding="utf-8")
    assert (
        "One example for each of you" in home and 'href="compare.html"' in home
    )  # the README, links rewritten
    assert (site / "book" / "index.html").is_file()
    assert (site / "book" / "optimization-basics.html").is_file()
    book = (site / "book.html").read_text(encoding="utf-8")
    assert '<a class="md-button" href="book/index.html">' in book and "{ .md-button }" not in book
    gpu = (site / "gpu.html").read_text(encoding="utf-8")  # its one-launch row written in
    assert "written in the form): SGD, Momentum," in gpu and "cuda_paths:" not in gpu
    api = (site / "api" / "compare.html").read_text(encoding="utf-8")
    assert "CompareSpec" in api and "load_comparison" in api  # mkdocstrings rendered them
    # the book inside the site: its pages lead back, its notebook is there, no ✘ published
    lecture = (site / "book" / "optimization-basics.html").read_text(encoding="utf-8")
    for href, _ in script("docs_hooks").SITE_LINKS:
        assert f'href="{href}"' in lecture
    assert "descentlab playground --port 8765" in lecture.split("</nav>", 1)[0]
    assert 'href="optimization-basics.ipynb" download' in lecture
    assert (site / "book" / "optimization-basics.ipynb").is_file()
    assert script("book_marks").book_problems(site / "book") == ([], 1)  # (no chapters: items)
    # the playground's links work on the static site: no page links to a local server, the
    # book's ▶ link opens the view's precomputed page, which shows the live address as text
    assert live_links(site) == []
    play = re.findall(r'href="(play/[0-9a-f]{12}\.html)"', lecture)
    assert play and all((site / "book" / p).is_file() for p in play)
    view = (site / "book" / play[0]).read_text(encoding="utf-8")
    assert "data:image/png;base64," in view and "descentlab playground --port 8765" in view
    # 404.html works opened as a file: no site-root link (site_links checks it too)
    page_404 = (site / "404.html").read_text(encoding="utf-8")
    assert re.findall(r'(?:href|src)="/(?!/)', page_404) == [] and '"base": "/"' not in page_404
    assert not script("site_links").SKIP
    # the API reference answers: no raw Sphinx role or TeX on any page, the math is MathML
    found, pages = script("site_text").site_problems(site)
    assert found == {} and pages >= 30
    reference = (site / "api" / "optimizers.html").read_text(encoding="utf-8")
    assert reference.count("<math") >= 40 and "loss 14.1204 -&gt; 13.9916" in reference
    assert "<math" in (site / "api" / "schedules.html").read_text(encoding="utf-8")
    schedules = (site / "api" / "schedules-reference.html").read_text(encoding="utf-8")
    assert 'id="cosine"' in schedules and "0.097553, 0.05, 0.0]" in schedules
    entries = (site / "api" / "entry-points.html").read_text(encoding="utf-8")  # examples run
    assert 'id="engine-train"' in entries and 'id="app-serve"' in entries
    assert "until_step must be a positive integer, got 0" in entries
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', reference) == []


def live_links(site: Path) -> list[str]:
    """``page: address`` of every link or source in the built site to a local server."""
    found = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r'(?:href|src|action)="(?:https?:)?//(?:127\.|localhost|\[::1\])[^"]*',
                             text):  # fmt: skip
            found.append(f"{page.relative_to(site)}: {m.group(0)}")
    return found


def test_the_books_live_playground_links_become_static_views():
    hooks = script("docs_hooks")
    url = "http://127.0.0.1:8765/#mode=oned&amp;land=parabola&amp;steps=3"
    page = (
        f'<p class="play">▶ <a href="{url}">See it in the playground</a> (run <code>descentlab '
        "playground --port 8765</code> first)</p>"
    )
    html, views = hooks.static_playground_links(page)
    (name, address), = views.items()  # fmt: skip
    assert address == "http://127.0.0.1:8765/#mode=oned&land=parabola&steps=3"
    assert f'href="play/{name}"' in html and "127.0.0.1" not in html
    assert "precomputed" in html and "first)" not in html


def test_a_playground_view_is_drawn_as_a_static_page():
    from descentlab.playground.snapshot import snapshot_page

    url = (
        "http://127.0.0.1:8765/#mode=paths&land=quadratic&kappa=10&steps=20&opts="
        '[{"name":"sgd","on":1,"lr":0.1},{"name":"adam","on":0}]'
    )
    page = snapshot_page(url, back="../index.html")
    assert page.count("<img") == 1 and "κ = 10, 20 steps" in page
    assert ">SGD<" in page and "lr 0.1" in page and "Adam" not in page
    assert re.findall(r'href="[^"]*127\.0', page) == [] and html.escape(url) in page  # as text
    with pytest.raises(ValueError, match="no landscape 'nowhere'"):
        snapshot_page("http://127.0.0.1:8765/#land=nowhere")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="/">home</a>', '<a href="index.html">home</a>'),
        ('<link href="/assets/x.css">', '<link href="assets/x.css">'),
        ('<script src="/assets/x.js">', '<script src="assets/x.js">'),
        ('<a href="//cdn.example/x">', '<a href="//cdn.example/x">'),  # not site-root
        ('<a href="page.html">', '<a href="page.html">'),
        ('{"base": "/", "x": 1}', '{"base": ".", "x": 1}'),
    ],
)
def test_404_links_are_made_page_relative(html, expected):
    assert script("docs_hooks").relative_404(html) == expected


def test_a_book_page_gets_the_sites_bar_first_in_its_body():
    hooks = script("docs_hooks")
    page = hooks.book_page_for_site("<html><body>\n<main>x</main></body></html>")
    bar, rest = page.split("</nav>", 1)
    assert bar.startswith('<html><body>\n<nav class="site-bar"')
    assert [h for h, _ in hooks.SITE_LINKS] == re.findall(r'href="([^"]+)"', bar)
    assert rest.strip() == "<main>x</main></body></html>"


def _lecture_page(statuses):
    from descentlab.book.render.pages import Card, Check, Evidence, LecturePage, render_lecture

    cards = [
        Card(f"i{n}", f"item {n}", "s", "claim", f"claim {n}", "", "f",
             Evidence(checks=[Check(f"check {n}", st, f"m{n}", "e")]))
        for n, st in enumerate(statuses, 1)
    ]  # fmt: skip
    return render_lecture(LecturePage("L", "o", "s", "l.html", cards), "quick")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["ok", "ok"], []),
        (["ok", "not_reproduced"], []),  # ○ is published: it says why
        (["ok", "fail"], ["#i2: check 2 (measured m2)"]),
        (["fail", "ok", "fail"], ["#i1: check 1 (measured m1)", "#i3: check 3 (measured m3)"]),
    ],
)
def test_the_books_failed_checks_are_found(statuses, expected):
    assert script("book_marks").failed_checks(_lecture_page(statuses)) == expected


def test_book_marks_refuses_a_book_with_a_failed_check(tmp_path, capsys):
    marks = script("book_marks")
    (tmp_path / "index.html").write_text("<p>index</p>")
    (tmp_path / "lec.html").write_text(_lecture_page(["ok"]), encoding="utf-8")
    assert marks.main([str(tmp_path)]) == 0
    (tmp_path / "lec.html").write_text(_lecture_page(["ok", "fail"]), encoding="utf-8")
    assert marks.main([str(tmp_path)]) == 1
    assert "lec.html#i2: check 2 (measured m2)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        marks.main([str(tmp_path / "missing")])


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/">ok</a> <a href="#top">ok</a>'
        '<h1 id="top">t</h1> <img src="data:image/png;base64,AA"> <a href="https://x.org/y">'
        '<a href="missing.html">x</a> <a href="sub/page.html#gone">x</a> <a href="../out.html">'
    )
    (tmp_path / "sub" / "page.html").write_text('<p id="here">p</p><a href="../index.html#top">')
    (tmp_path / "sub" / "index.html").write_text('<a href="page.html">up</a>')
    site = tmp_path / "sub"  # a site in a folder: a link out of it is broken too
    assert script("site_links").broken_links(site) == [
        "page.html: ../index.html#top (no such file)"
    ]
    assert script("site_links").broken_links(tmp_path) == [
        "index.html: missing.html (no such file)",
        "index.html: sub/page.html#gone (no such anchor)",
        "index.html: ../out.html (no such file)",
    ]


def test_the_readme_links_to_docs_pages_that_exist_and_the_home_page_follows_them():
    hooks = script("docs_hooks")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\]\(docs/([^)#]+)", readme)
    assert len(linked) >= 10
    assert [p for p in linked if not (ROOT / "docs" / p).is_file()] == []
    home = hooks.home_page(readme)
    assert "](docs/" not in home and "](compare.md)" in home


def test_a_bad_book_items_setting_is_one_line(monkeypatch):
    hooks = script("docs_hooks")
    monkeypatch.setenv("DESCENTLAB_DOCS_BOOK_ITEMS", "1,x")
    with pytest.raises(SystemExit, match=r"DESCENTLAB_DOCS_BOOK_ITEMS must be .*'1,x'"):
        hooks.book_items()
    monkeypatch.setenv("DESCENTLAB_DOCS_BOOK_ITEMS", " 3, 11")
    assert hooks.book_items() == [3, 11]


def test_the_book_is_rendered_again_exactly_when_what_it_is_made_of_changed(tmp_path):
    hooks = script("docs_hooks")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    first = hooks.book_stamp(package, None)
    assert hooks.book_stamp(package, None) == first
    assert hooks.book_stamp(package, [1]) != first  # other items
    (package / "a.py").write_text("x = 2\n")
    assert hooks.book_stamp(package, None) != first  # the code changed
    (package / "a.py").write_text("x = 1\n")
    (package / "b.json").write_text("{}")
    assert hooks.book_stamp(package, None) != first  # a file added

    # pages whose stamp is this code's are reused as they are (no book is built here)
    out = tmp_path / "book"
    out.mkdir()
    (out / "index.html").write_text("<p>last build</p>")
    stamp = hooks.book_stamp(ROOT / "src" / "descentlab", [1])
    (out / hooks.STAMP).write_text(f'{{"stamp": "{stamp}", "pages": ["index.html"]}}')
    assert hooks.build_book(out, [1]) == [out / "index.html"]
    assert (out / "index.html").read_text() == "<p>last build</p>"


def test_every_command_of_the_cli_has_an_example_the_site_runs():
    from descentlab.cli import build_parser

    examples = script("cli_examples")
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert set(sub.choices) == set(examples.EXAMPLES)
    for name, (args, expected, _) in examples.EXAMPLES.items():
        assert args.split()[0] == name and expected


def test_a_cli_example_that_prints_otherwise_stops_the_site(monkeypatch):
    examples = script("cli_examples")
    monkeypatch.setattr(examples, "EXAMPLES", {"landscape": ("landscape --list", "nowhere", 5)})
    with pytest.raises(SystemExit, match="printed no 'nowhere'"):
        examples.page()
    monkeypatch.setattr(examples, "EXAMPLES", {"landscape": ("landscape --list", "parabola", 3)})
    page = examples.page()
    assert "$ descentlab landscape --list\nparabola" in page and "\n...\n" in page


def test_a_pages_run_blocks_show_what_their_commands_print_and_file_blocks_their_files(
    monkeypatch,
):
    examples = script("cli_examples")
    monkeypatch.delenv(examples.RUN_ENV, raising=False)
    page = (
        "<!-- file: examples/objective_loop.py -->\n```python\nstale\n```\n\n"
        "<!-- run: parabola -->\n```console\n$ descentlab landscape --list\nstale\n```\n"
    )
    built = examples.run_blocks(page)
    code = (ROOT / "examples" / "objective_loop.py").read_text(encoding="utf-8")
    assert built.startswith(f"<!-- file: examples/objective_loop.py -->\n```python\n{code}```\n")
    assert "$ descentlab landscape --list\nparabola" in built and "stale" not in built
    with pytest.raises(SystemExit, match="printed no 'nowhere'"):
        examples.run_blocks(page.replace("run: parabola", "run: nowhere"))
    monkeypatch.setenv(examples.RUN_ENV, "0")  # (the site's test: the commands left as written)
    assert "$ descentlab landscape --list\nstale" in examples.run_blocks(page)


def test_compares_page_shows_each_form_of_your_own_training_code_run_at_build():
    examples = script("cli_examples")
    page = (ROOT / "docs" / "compare.md").read_text(encoding="utf-8")
    runs = [m["args"].split()[1:3] for m in examples.RUN_BLOCK.finditer(page)]
    assert runs == [["--objective", "examples/objective_loop.py:train"],
                    ["--hf-trainer", "examples/hf_trainer.py:make_trainer"],
                    ["--lightning", "examples/lightning_module.py:make"]]  # fmt: skip
    files = [m["path"] for m in examples.FILE_BLOCK.finditer(page)]
    assert files == [f"examples/{r[1].split('/')[1].split(':')[0]}" for r in runs]


def test_compares_page_shows_each_example_file_as_it_is():
    """The examples are readable in docs/compare.md itself, not only in the built site."""
    examples = script("cli_examples")
    page = (ROOT / "docs" / "compare.md").read_text(encoding="utf-8")
    blocks = list(examples.FILE_BLOCK.finditer(page))
    assert len(blocks) == 3
    for m in blocks:
        assert m["body"] == (ROOT / m["path"]).read_text(encoding="utf-8"), m["path"]


#: what every run block's command is shortened by (the last of an option wins), so that the
#: site's commands run in seconds here: what they print is checked, not what they find
_SHORT = "--steps 8 --lr-trials 2 --no-refine --seeds 2 --max-seeds 2 --no-progress"


@pytest.mark.process
@pytest.mark.parametrize("page", ["compare.md"])
def test_every_command_the_site_runs_prints_what_the_site_expects(page, tmp_path):
    """The site runs each ``<!-- run: EXPECTED -->`` block's command and stops where its output
    lacks EXPECTED; the same commands, shortened, run here (about 25 s for the three forms of
    your own training code: `make docs` is not part of `make test`)."""
    examples = script("cli_examples")
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    found = list(examples.RUN_BLOCK.finditer(text))
    assert found
    for m in found:
        code, out = examples.run(f"{m['args']} {_SHORT}", tmp_path)
        assert code == 0 and m["expected"] in out, (m["args"], code, out[-300:])
