"""The main job's entry points' reference (``scripts/api_pages.py``, the site's
``api/entry-points.md``): every entry point the command line's main commands call has its
signature with defaults, a parameter table with each meaning, what it returns and writes, the
errors it raises and an example that the build runs; an example that prints other than it
shows, or a parameter without a meaning, stops the build."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

import pytest
from _scripts import script

ROOT = Path(__file__).resolve().parents[1]


E = script("api_pages")
ENTRIES = list(E.ENTRY_POINTS)

#: the examples that run in well under a second (the compares and the trainings run as
#: doctests of src/, and when the site is built)
FAST = [
    ("descentlab.book.build", "write_book"),
    ("descentlab.book.experiments", "run"),
    ("descentlab.problems.trajectories", "races"),
    ("descentlab.playground.app", "serve"),
    ("descentlab.book.render.seed_figures", "write_seed_figures"),
]


@pytest.mark.parametrize(("module", "name"), ENTRIES, ids=lambda x: x.rsplit(".", 1)[-1])
def test_every_entry_point_has_signature_parameters_returns_writes_raises_and_an_example(
    module, name
):
    section = E.entry_point_section(module, name, run=False)
    fn = getattr(importlib.import_module(module), name)
    signature = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert signature.startswith(f"{name}(")
    returns = inspect.signature(fn).return_annotation
    assert (") -> " in signature) == (returns not in (inspect.Signature.empty, None, "None"))
    for p in inspect.signature(fn).parameters.values():
        if p.default is not p.empty:  # every default written
            assert f"{p.name}: " in signature and f"= {p.default!r}" in signature, p.name
        row = re.search(rf"^\| `\**{p.name}` \| [^|]* \| (.+) \|$", section, re.M)
        assert row and len(row.group(1)) > 10, f"{name}: no meaning for {p.name}"
    for part in ("**Returns**: ", "**Writes to disk**: ", "**Raises**:\n\n- `"):
        assert part in section, (name, part)
    example = section.split("```pycon\n", 1)[1].split("```", 1)[0]
    assert example.startswith(">>> ") and "+SKIP" not in example
    assert max(map(len, example.splitlines())) <= 80  # fits the page's code column
    outputs = [ln for ln in example.splitlines() if ln and not ln.startswith((">>>", "..."))]
    assert outputs, f"{name}: its example prints nothing to check"
    assert "Traceback (most recent call last):" in example  # a refusal of bad input shown
    shown = textwrap.indent(example.strip(), "    ")
    assert shown in inspect.getdoc(fn)  # the docstring's own example: help() shows it


def test_the_declared_list_covers_the_main_commands_and_the_public_entry_points():
    from descentlab.cli import build_parser

    commands = {command for command, _ in E.ENTRY_POINTS.values()}
    (sub,) = [a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    # every command of `descentlab` calls an entry point documented here, or says why not
    assert commands | set(E.OTHER_COMMANDS) == set(sub.choices)
    assert not commands & set(E.OTHER_COMMANDS)
    declared = set(ENTRIES)
    for name in ("train", "resume", "train_many"):
        assert ("descentlab.engine", name) in declared
        assert name in importlib.import_module("descentlab.engine").__all__
    for name in ("compare", "load_comparison"):
        assert ("descentlab.experiments.compare", name) in declared
    for pair in [("descentlab.book.build", "write_book"), ("descentlab.problems.trajectories",
                 "run"), ("descentlab.report.html", "render_report")]:  # fmt: skip
        assert pair in declared


@pytest.mark.parametrize(("module", "name"), FAST, ids=lambda x: x.rsplit(".", 1)[-1])
def test_a_fast_example_passes_the_builds_check(module, name):
    section = E.entry_point_section(module, name)  # runs the example; raises if it differs
    anchor = f"{module.rsplit('.', 1)[-1]}-{name}".replace("_", "-")
    assert f"{{ #{anchor} }}" in section


def test_an_example_that_prints_otherwise_stops_the_build(monkeypatch):
    from descentlab.playground import app

    broken = app.serve.__doc__.replace("got 70000", "got 7000")
    assert broken != app.serve.__doc__
    monkeypatch.setattr(app.serve, "__doc__", broken)
    with pytest.raises(E.ExampleFailed) as failed:
        E.entry_point_section("descentlab.playground.app", "serve")
    message = str(failed.value)
    assert message.startswith(
        "api_entry_points: the example of descentlab.playground.app.serve does not print"
    )
    assert "got 7000" in message and "got 70000" in message  # expected and got, both shown
    serve = ("descentlab.playground.app", "serve")
    monkeypatch.setattr(E, "ENTRY_POINTS", {serve: E.ENTRY_POINTS[serve]})
    with pytest.raises(E.ExampleFailed):  # the page as the site's hook makes it
        E.entry_points_page()


def test_a_parameter_without_a_meaning_or_a_missing_section_stops_the_build(monkeypatch):
    from descentlab.playground import app

    doc = app.serve.__doc__
    no_port = re.sub(r"\n        port: .*\n", "\n", doc)
    monkeypatch.setattr(app.serve, "__doc__", no_port)
    with pytest.raises(E.ExampleFailed, match=r"lacks \['Args: port'\]"):
        E.entry_point_section("descentlab.playground.app", "serve", run=False)
    monkeypatch.setattr(app.serve, "__doc__", doc.replace("    Writes:\n", "    Notes:\n"))
    with pytest.raises(E.ExampleFailed, match=r"lacks \['Writes'\]"):
        E.entry_point_section("descentlab.playground.app", "serve", run=False)
    skipped = doc.replace("serve(port=70000)", "serve(port=70000)  # doctest: +SKIP")
    monkeypatch.setattr(app.serve, "__doc__", skipped)
    with pytest.raises(E.ExampleFailed, match="skips a line"):
        E.entry_point_section("descentlab.playground.app", "serve", run=False)


def test_the_page_is_on_the_site_with_an_entry_for_each():
    page = E.entry_points_page(run=False)
    anchors = re.findall(r"^## `[\w.]+` \{ #([\w-]+) \}$", page, re.M)
    assert len(anchors) == len(set(anchors)) == len(ENTRIES)
    for anchor in anchors:
        assert f"(#{anchor})" in page  # the index at the top links each
    for guide, title in E.GUIDES.items():  # each guide's title is its page's
        assert (ROOT / "docs" / guide).read_text(encoding="utf-8").startswith(f"# {title}")
    hooks = script("docs_hooks")
    assert hooks.ENTRY_POINTS_PAGE == "api/entry-points.md"
    assert "api/entry-points.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_docstring_sections_and_their_items_are_read():
    def f(a: int, *, b: str = "x", **opts: int) -> None:
        """Do it.

        More text.

        Args:
            a: the first,
                continued.
            b: the second.
            **opts: the rest.

        Writes:
            Nothing.
        """

    sections = E.docstring_sections(f)
    assert sections[""] == "Do it.\n\nMore text." and sections["Writes"] == "Nothing."
    assert E.parameter_meanings(f) == {"a": "the first, continued.", "b": "the second.",
                                       "opts": "the rest."}  # fmt: skip
