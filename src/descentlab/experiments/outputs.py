"""Lecture experiment outputs found in a comparison's run folder, read into plain values.

``descentlab experiment`` writes result files (``<name>.json`` with a table, checks, notes
and figures), Markdown and PNG files; a comparison's report shows those found in its run
directory and in ``experiments/`` beside it. :func:`find_lecture_outputs` reads them -- the
report only renders what it is given, it never reads the folder.

Example:
    >>> import json, tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "r.json").write_text(json.dumps({"title": "T", "columns": ["a"],
    ...                                               "rows": [[1]]}))
    >>> [(o.kind, o.title, o.source) for o in find_lecture_outputs(root)]
    [('result', 'T', 'r.json')]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LectureOutput", "RunFolder", "find_lecture_outputs", "scan_run_folder"]

# Files and folders of the comparison itself, never shown as lecture outputs.
_OWN = {"report.html", "figures", "checkpoints"}

_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@dataclass
class LectureOutput:
    """One lecture experiment's output found in a run directory.

    Attributes:
        kind: ``"result"`` (a ``<name>.json`` result file), ``"markdown"`` or ``"image"``.
        title: its title.
        source: the file it was read from (relative to the folder scanned, or ``label_root``).
        data: a result file's content (title, columns, rows, checks, notes, config, seconds).
        text: a Markdown file's text.
        images: the PNG files it shows, by the name it uses for them (a result's figure
            name, a Markdown image's path, an image file's own name), as bytes.
    """

    kind: str
    title: str
    source: str
    data: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""
    images: dict[str, bytes] = field(default_factory=dict)


@dataclass
class RunFolder:
    """What a report shows from beside the store: lecture outputs and the lecture book.

    Attributes:
        outputs: lecture experiment outputs in the run directory, then in ``experiments/``
            beside it (``descentlab experiment``'s default output folder).
        lecture_book: the lecture book beside the run directory (``descentlab lectures``'
            default ``lectures/index.html``), relative to the run directory, if it exists.
    """

    outputs: list[LectureOutput] = field(default_factory=list)
    lecture_book: str | None = None


def scan_run_folder(run_dir: str | os.PathLike[str]) -> RunFolder:
    """The lecture outputs and the lecture book a comparison's report shows."""
    run_dir = Path(run_dir)
    outputs = find_lecture_outputs(run_dir)
    shared = run_dir.parent / "experiments"  # `descentlab experiment`'s default --out
    if shared.is_dir() and shared.resolve() != run_dir.resolve():
        outputs += find_lecture_outputs(shared, label_root=run_dir.parent)
    book = run_dir.parent / "lectures" / "index.html"  # `descentlab lectures`' default
    return RunFolder(outputs, os.path.relpath(book, run_dir) if book.is_file() else None)


def find_lecture_outputs(
    run_dir: str | os.PathLike[str], *, label_root: str | os.PathLike[str] | None = None
) -> list[LectureOutput]:
    """Lecture experiment outputs under ``run_dir`` (the comparison's own files excluded).

    ``label_root``: sources are named relative to it (default ``run_dir``).

    - ``<name>.json`` with ``title``, ``columns`` and ``rows`` (the lecture experiments'
      result files), with the PNG figures it lists in ``figures``;
    - a ``<name>.md`` beside such a JSON file is skipped (same content); other Markdown
      files are read with the local PNG images they show;
    - PNG files not shown by any of the above, each on its own.
    """
    root = Path(run_dir)
    if not root.is_dir():
        return []
    names_from = Path(label_root) if label_root is not None else root

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(names_from))
        except ValueError:
            return str(p)

    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not (set(p.relative_to(root).parts[:1]) & _OWN)
        and p.suffix.lower() in (".json", ".md", ".png")
    )
    outputs: list[LectureOutput] = []
    shown: set[Path] = set()
    json_stems: set[Path] = set()
    for p in (f for f in files if f.suffix.lower() == ".json"):
        out = _read_result(p, rel(p), shown)
        if out is not None:
            outputs.append(out)
            json_stems.add(p.with_suffix(""))
    for p in files:
        if p.suffix.lower() == ".md" and p.with_suffix("") not in json_stems:
            out = _read_markdown(p, rel(p), shown)
            if out is not None:
                outputs.append(out)
    for p in files:
        if p.suffix.lower() == ".png" and p.resolve() not in shown:
            name, title = rel(p), p.stem.replace("_", " ")
            outputs.append(LectureOutput("image", title, name, images={name: p.read_bytes()}))
    return outputs


def _read_result(path: Path, source: str, shown: set[Path]) -> LectureOutput | None:
    """A lecture experiment's result file with its figures (None: not one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not (isinstance(data, Mapping) and "columns" in data and "rows" in data):
        return None
    images: dict[str, bytes] = {}
    figs = data.get("figures") or {}
    if isinstance(figs, Mapping):
        for name, file in figs.items():
            p = (path.parent / str(file)).resolve()
            if p.suffix.lower() == ".png" and p.is_file():
                shown.add(p)
                images[str(name)] = p.read_bytes()
    title = str(data.get("title") or data.get("name") or path.stem)
    return LectureOutput("result", title, source, data=data, images=images)


def _read_markdown(path: Path, source: str, shown: set[Path]) -> LectureOutput | None:
    """A Markdown file with the local PNG images it shows (None: unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    images: dict[str, bytes] = {}
    for src in _IMAGE.findall(text):
        p = (path.parent / src).resolve()
        shown.add(p)
        if not re.match(r"^[a-z]+:", src) and p.suffix.lower() == ".png" and p.is_file():
            images[src] = p.read_bytes()
    return LectureOutput("markdown", path.stem, source, text=text, images=images)
