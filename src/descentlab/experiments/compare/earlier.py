"""A comparison's earlier runs beside its run directory: read from their stores (read-only),
the latest one of the same problem (or code) named with the files that changed since it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descentlab._announce import once


def stored(run_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(spec record, provenance)`` of the comparisons ``run_dir``'s store holds (read-only;
    none where it has no store or cannot be read)."""
    import json
    import sqlite3

    from descentlab.store import store_path_of

    path = store_path_of(run_dir)
    if not path.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT config, provenance FROM runs WHERE name = 'compare'"
            ).fetchall()
        return [((json.loads(c).get("spec") or {}), json.loads(p or "{}")) for c, p in rows]
    except (sqlite3.Error, ValueError, AttributeError):
        return []


def name_earlier_problem(run_dir: Path, problem: str) -> dict[str, str]:
    """Where ``run_dir`` is new for a problem of the user's own code (``problem``: its
    reference), say which comparison beside it ran the same problem with other files, and
    which changed; the problem's files (:func:`~descentlab.problems.problem.problem_files`),
    for the comparison's record."""
    from descentlab.problems.problem import problem_files

    base = problem.split("#", 1)[0]
    files = problem_files(base)

    def recorded(spec: dict[str, Any], prov: dict[str, Any]) -> Any:
        same = str(spec.get("problem", "")).split("#", 1)[0] == base
        return prov.get("problem_files") if same else None

    name_earlier(run_dir, files, recorded, "")
    return files


def name_earlier(run_dir: Path, files: Any, recorded: Callable[..., Any], more: str) -> None:
    """Where ``run_dir`` is new for what ``files`` (``{path: hash}``) are, say once which
    comparison beside it is the latest that ``recorded(spec record, provenance)`` other files
    of (None: of something else), and the files that changed: its trials are not reused."""
    from descentlab.problems.user_files import changed

    if not files or run_dir.exists() or not run_dir.parent.is_dir():
        return
    found = [
        (other.stat().st_mtime, other, changed(old, files))
        for other in run_dir.parent.iterdir()
        for spec, prov in stored(other)
        if (old := recorded(spec, prov)) not in (None, files)
    ]
    if found:
        _, other, diff = max(found)
        once(
            ("earlier-run", str(run_dir)),
            f"descentlab: a new comparison in {run_dir}: {', '.join(diff)} changed since the "
            f"one in {other} (its trials are not reused{more.format(other=other)})",
            stacklevel=4,
        )
