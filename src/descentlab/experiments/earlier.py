"""A comparison's earlier runs beside its run directory: read from their stores (read-only),
the latest one of the same problem (or code) named with the files that changed since it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from descentlab._announce import once
from descentlab.store import EXPORT_FILES, finished_runs, store_identity, store_path_of


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


def store_refusal(run_dir: str | os.PathLike[str]) -> str | None:
    """Why the store of the run directory ``run_dir`` is not the one its exports
    (``comparison.json``) were made from -- empty (0 bytes, or no finished trial) or another
    store put in its place -- in one line; None where it is (or there are no exports)."""
    run_dir = Path(run_dir)
    store = store_path_of(run_dir)
    try:
        payload = json.loads((run_dir / EXPORT_FILES[1]).read_text(encoding="utf-8"))
        finished = sum(t.get("run_id") is not None  # (a final run's row has no status)
                       and t.get("status") in (None, "completed", "diverged")
                       for t in payload["trials"])  # fmt: skip
        said = (payload.get("store") or {}).get("id")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no exports (or none that can be read: they are replaced)
    again = (
        "restore it from a backup, or pass --force to train the comparison again (its "
        "trials.csv and comparison.json are replaced)"
    )
    if not finished:
        return None
    if not store.is_file() or store.stat().st_size == 0 or not finished_runs(store):
        what = "is empty (0 bytes)" if store.is_file() and store.stat().st_size == 0 else ""
        what = what or ("holds no finished trial" if store.is_file() else _not_a_file(store))
        return (
            f"{store} {what}, but {EXPORT_FILES[1]} beside it is a comparison of "
            f"{finished} finished trial(s): the store was emptied or replaced; {again}"
        )
    here = store_identity(store)
    if said is not None and here != said:
        return (
            f"{store} is not the store {EXPORT_FILES[1]} beside it was made from (store id "
            f"{here or 'none'}; the exports name {said}): it was replaced; {again}"
        )
    return None


def _not_a_file(path: Path) -> str:
    """What stands where a store should be, that is no file: nothing, a folder, another kind."""
    if path.is_symlink() and not path.exists():
        return "is a link to nothing"
    if path.is_dir():
        return "is a folder, not a store"
    return "is missing" if not path.exists() else "is not a file"
