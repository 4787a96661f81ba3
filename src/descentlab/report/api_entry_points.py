"""The main job's entry points' reference page, generated from their docstrings.

For every function of :data:`ENTRY_POINTS` (what the command line's main commands call), the
documentation site's page ``api/entry-points.md`` shows: the signature with every default
(as the optimizers' page writes it), a table of the parameters with their defaults and
meanings (the docstring's ``Args``), what it returns, what it writes to disk (``Writes``), the
errors it raises on bad input (``Raises``), and its ``Example``, run when the page is made: an
example whose printed output is not what it shows stops the site's build
(:class:`ExampleFailed`, one message naming the entry point and the difference).

The docstrings are the one place of these texts: ``help(train)`` shows what the page shows, and
``pytest`` (``--doctest-modules``) runs the same examples. A parameter without a meaning, or an
entry point without one of those sections, stops the build too.

Example:
    >>> sections = docstring_sections(entry_point("descentlab.book.build", "write_book"))
    >>> [k for k in ("Args", "Returns", "Writes", "Raises", "Example") if k in sections]
    ['Args', 'Returns', 'Writes', 'Raises', 'Example']
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import re
import textwrap
from collections.abc import Callable
from typing import Any

from descentlab.report.api_reference import _ref_text, _signature, run_example

__all__ = [
    "ENTRY_POINTS",
    "GUIDES",
    "OTHER_COMMANDS",
    "REQUIRED",
    "ExampleFailed",
    "check_example",
    "docstring_sections",
    "entry_point",
    "entry_point_section",
    "entry_points_page",
    "parameter_meanings",
]

#: the main job's entry points, ``(module, name)`` as a user imports them, with the command of
#: ``descentlab`` that calls each and the guide (a site page of :data:`GUIDES`) that explains it
ENTRY_POINTS: dict[tuple[str, str], tuple[str, str]] = {
    ("descentlab.engine", "train"): ("train", "training-runs.md"),
    ("descentlab.engine", "resume"): ("train", "training-runs.md"),
    ("descentlab.engine", "train_many"): ("train", "training-runs.md"),
    ("descentlab.experiments.compare", "compare"): ("compare", "compare.md"),
    ("descentlab.experiments.compare", "load_comparison"): ("report", "compare.md"),
    ("descentlab.report.html", "render_report"): ("report", "compare.md"),
    ("descentlab.book.build", "write_book"): ("lectures", "book.md"),
    ("descentlab.book.experiments", "run"): ("experiment", "book.md"),
    ("descentlab.problems.trajectories", "run"): ("landscape", "optimizers.md"),
    ("descentlab.problems.trajectories", "races"): ("landscape", "optimizers.md"),
    ("descentlab.playground.app", "serve"): ("playground", "playground.md"),
    ("descentlab.book.render.seed_figures", "write_seed_figures"): ("figures", "command-line.md"),
}

#: the commands that call no entry point of their own, and where their Python side is
OTHER_COMMANDS: dict[str, str] = {
    "optimizers": "descentlab.optim's records and cards: the optimizers' reference page",
    "convarith": "a lecture's arithmetic table (descentlab.problems.convarith), not a job",
}

#: the guides' titles (their pages' first headings)
GUIDES: dict[str, str] = {
    "training-runs.md": "Training runs, one or many at once",
    "compare.md": "Which optimizer, with which learning rate?",
    "book.md": "The lecture book",
    "optimizers.md": "Optimizers from update rules",
    "playground.md": "The playground: descent pictures in the browser",
    "command-line.md": "Command line",
}

#: the docstring sections every entry point has (``Args`` where it takes parameters)
REQUIRED = ("Returns", "Writes", "Raises", "Example")

#: a Google-style section's title line
_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]*):\s*$")


class ExampleFailed(SystemExit):
    """An entry point's example printed other than it shows (or its docstring lacks a
    section): the site's build stops with this message."""


def entry_point(module: str, name: str) -> Callable[..., Any]:
    """The function ``name`` of ``module`` (imported)."""
    return getattr(importlib.import_module(module), name)


def docstring_sections(obj: Any) -> dict[str, str]:
    """``obj``'s docstring split at its Google-style sections: ``{"": the text before the
    first, "Args": ..., "Returns": ..., ...}``, each section's body dedented."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in (inspect.getdoc(obj) or "").splitlines():
        m = _SECTION.match(line)
        if m:
            current = m.group("title")
            sections[current] = []
        else:
            sections[current].append(line)
    return {k: textwrap.dedent("\n".join(v)).strip("\n") for k, v in sections.items()}


def _items(block: str) -> dict[str, str]:
    """A section's ``name: text`` items (continued on the lines indented below each)."""
    out: dict[str, str] = {}
    key = None
    for line in block.splitlines():
        if line and not line[0].isspace():
            key, _, text = line.partition(":")
            key = key.strip()
            out[key] = text.strip()
        elif key is not None and line.strip():
            out[key] += " " + line.strip()
    return out


def parameter_meanings(obj: Any) -> dict[str, str]:
    """Each parameter of ``obj``'s signature with its meaning from the docstring's ``Args``
    (``**opts`` as ``opts``); a parameter the docstring leaves out maps to ``""``."""
    args = {k.lstrip("*"): v for k, v in _items(docstring_sections(obj).get("Args", "")).items()}
    return {p: args.get(p, "") for p in inspect.signature(obj).parameters}


def _example_parts(block: str) -> tuple[str, str]:
    """An ``Example`` section's prose (before its first ``>>>``) and its doctest."""
    lines = block.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith(">>>")), len(lines))
    return "\n".join(lines[:first]).strip(), textwrap.dedent("\n".join(lines[first:])).strip()


def _slug(module: str, name: str) -> str:
    """An entry's anchor: its module's last part and its name (``trajectories-run``)."""
    return f"{module.rsplit('.', 1)[-1]}-{name}".replace("_", "-")


def _label(module: str, name: str) -> str:
    """An entry's heading: its name, with its module's last part where another entry point
    has that name (``trajectories.run``)."""
    names = [n for _, n in ENTRY_POINTS]
    return name if names.count(name) == 1 else f"{module.rsplit('.', 1)[-1]}.{name}"


def _cell(text: str) -> str:
    """Text for a Markdown table's cell."""
    return _ref_text(text).replace("|", "\\|")


def check_example(text: str, where: str) -> None:
    """Run the doctest ``text`` (fresh globals: it imports what it uses); :class:`ExampleFailed`
    naming ``where`` and showing the difference when it prints otherwise."""
    report = io.StringIO()
    with contextlib.redirect_stdout(report):  # (doctest's report of each failure)
        failed = run_example(text).failed
    if failed:
        raise ExampleFailed(
            f"api_entry_points: the example of {where} does not print what it shows "
            f"(fix the example in its docstring):\n{report.getvalue()}"
        )


def entry_point_section(module: str, name: str, *, run: bool = True) -> str:
    """One entry point's entry (Markdown): signature, summary, parameters, returns, files
    written, errors, the example (run and checked when ``run``), see-also links.

    Raises:
        ExampleFailed: a section missing, a parameter without a meaning, an example marked
            to be skipped, or (``run``) an example that prints otherwise.
    """
    fn = entry_point(module, name)
    where = f"{module}.{name}"
    sections = docstring_sections(fn)
    meanings = parameter_meanings(fn)
    missing = [s for s in REQUIRED if not sections.get(s)]
    missing += [f"Args: {p}" for p, text in meanings.items() if not text]
    if missing:
        raise ExampleFailed(f"api_entry_points: the docstring of {where} lacks {missing}")
    intro, example = _example_parts(sections["Example"])
    if "+SKIP" in example:
        raise ExampleFailed(f"api_entry_points: the example of {where} skips a line")
    if run:
        check_example(example, where)
    command, guide = ENTRY_POINTS[(module, name)]
    refs = sections.get("References", "")
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for p in inspect.signature(fn).parameters.values():
        shown = {p.VAR_KEYWORD: f"**{p.name}", p.VAR_POSITIONAL: f"*{p.name}"}.get(p.kind, p.name)
        default = "required" if p.default is p.empty else f"`{p.default!r}`"
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            default = ""
        rows.append(f"| `{shown}` | {default} | {_cell(meanings[p.name])} |")
    raises = "\n".join(
        f"- `{exc}`: {_ref_text(text)}" for exc, text in _items(sections["Raises"]).items()
    )
    return "\n".join([
        f"## `{_label(module, name)}` {{ #{_slug(module, name)} }}",
        "",
        f"`from {module} import {name}` · the command: "
        f"[`descentlab {command}`](../cli-examples.md#{command})",
        "",
        "```python",
        _signature(fn, name),
        "```",
        "",
        _ref_text(sections[""]),
        "",
        "**Parameters**",
        "",
        *(rows if len(rows) > 2 else ["None."]),
        "",
        f"**Returns**: {_ref_text(' '.join(sections['Returns'].split()))}",
        "",
        f"**Writes to disk**: {_ref_text(' '.join(sections['Writes'].split()))}",
        "",
        "**Raises**:",
        "",
        raises,
        "",
        "**Example** (a doctest: the build ran it and checked that it printed this)"
        + (f". {_ref_text(' '.join(intro.split()))}" if intro else ""),
        "",
        "```pycon",
        example,
        "```",
        "",
        *([f"**References**: {_ref_text(' '.join(refs.split()))}", ""] if refs else []),
        f"**See also**: [{GUIDES[guide]}](../{guide}).",
        "",
    ])  # fmt: skip


def entry_points_page(*, run: bool = True) -> str:
    """The whole page (Markdown), every example run and checked (``run``)."""
    index = ", ".join(
        f"[`{_label(module, name)}`](#{_slug(module, name)})" for module, name in ENTRY_POINTS
    )
    head = [
        "# Entry points: the reference",
        "",
        "The Python functions behind the command line's main commands: train one run or many, "
        "resume one, compare optimizers and report on it, build the lecture book, run a "
        "lecture's experiment, draw descents on a landscape, serve the playground, draw the "
        "lectures' figures. Each with "
        "its signature and every default, its parameters' meanings, what it returns and "
        "writes to disk, the errors it raises on bad input, and an example that this build "
        "ran, checking that it printed what is shown (the same text as `help()` gives).",
        "",
        f"Entry points: {index}.",
        "",
    ]
    body = [entry_point_section(module, name, run=run) for module, name in ENTRY_POINTS]
    return "\n".join(head + body)
