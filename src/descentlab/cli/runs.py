"""``descentlab runs``: the runs a store holds, and one of them in full -- no ``sqlite3``
needed.

``descentlab runs`` lists the runs of ``runs/descentlab.sqlite``; give a store, or a folder
holding one (``descentlab train``'s ``--runs-dir``, a comparison's run directory), or a folder
of comparisons' run directories (each store listed). Each run: its id, name, status, steps,
result (the test score, else the validation score; a failed run's message) and, for a run
still ``running`` whose process on this machine has ended (killed, or its machine restarted),
"running with no process behind it". ``--show ID`` shows one run: its status and message,
config, summary, where and how it ran, its files. The store is opened read-only.

Examples::

    descentlab runs
    descentlab runs runs/mnist1d-cnn-1a2b3c4d
    descentlab runs --show 3
    descentlab runs path/to/descentlab.sqlite --show 3 --json
"""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any

from descentlab._terminal import printable
from descentlab.cli._options import add_command, add_switch, print_json
from descentlab.cli._options import shown as shown_path

__all__ = ["register", "run"]

#: the summary values a run's result is read from, the first one it has
_RESULTS = ("test/accuracy", "test/loss", "test/rmse", "val/accuracy", "val/loss")

#: the note of a run recorded ``running`` whose process has ended
ORPHAN = "running with no process behind it"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``runs`` subcommand."""
    p = add_command(subparsers, "runs", run, help="list a store's runs, or show one (--show ID)")
    p.add_argument(
        "where",
        nargs="?",
        default="runs",
        metavar="STORE|FOLDER",
        help="a store, or a folder holding one or comparisons' run directories (default runs)",
    )
    p.add_argument("--show", type=int, metavar="ID", help="show run ID in full")
    add_switch(p, "--json", help="print JSON")


def stores(where: Path) -> list[Path]:
    """The stores ``where`` names: itself (a file), the store in it, or those one folder down;
    a place with none is refused in one line."""
    from descentlab.store import store_path_of

    if where.is_file():
        return [where]
    if store_path_of(where).is_file():
        return [store_path_of(where)]
    found = sorted(store_path_of(d) for d in where.iterdir() if store_path_of(d).is_file()) if (
        where.is_dir()) else []  # fmt: skip
    if not found:
        raise ValueError(
            f"no store at {where}: give a store (descentlab.sqlite), a folder holding one, or "
            "a folder of comparisons' run directories"
        )
    return found


def run(args: argparse.Namespace) -> int:
    """List the runs (or show one); 0, or 2 for a place with no store or an unknown run."""
    from descentlab.store import Store

    found = stores(Path(args.where))
    if args.show is not None:
        if len(found) > 1:
            raise ValueError(
                f"{args.where} holds {len(found)} stores: give the one run {args.show} is in "
                f"(e.g. {found[0]})"
            )
        with Store(found[0], read_only=True) as store:
            shown = show(store, args.show)
        if args.json:
            print_json(shown, default=str)
        else:
            for key, value in shown.items():
                if isinstance(value, dict | list):
                    value = json.dumps(value, indent=1, sort_keys=True, default=str)
                print(f"{key}: {printable(value, lines=True)}")  # (stored text: escaped)
        return 0
    listed: dict[str, list[dict[str, Any]]] = {}
    for path in found:
        with Store(path, read_only=True) as store:
            listed[str(path)] = rows(store)
    if args.json:
        print_json(listed if len(found) > 1 else next(iter(listed.values())), default=str)
        return 0
    for path, table in listed.items():
        print(f"store {printable(shown_path(path))}: {len(table)} run(s)")
        print(format_rows(table))
    return 0


def _orphaned(record: Any) -> bool:
    """Whether ``record`` is ``running`` on this machine with no process behind it."""
    from descentlab._osutil import recorded_alive

    pid = record.provenance.get("pid")
    return (
        record.status == "running"
        and isinstance(pid, int)
        and record.provenance.get("hostname") == socket.gethostname()
        and not recorded_alive(record.provenance)
    )


def _result(record: Any) -> str:
    summary = record.summary or {}
    for key in _RESULTS:
        if isinstance(summary.get(key), int | float):
            return f"{key} {summary[key]:.4g}"
    return ""


def rows(store: Any) -> list[dict[str, Any]]:
    """Each run of ``store``: id, name, status, steps, result and note."""
    steps = store.last_steps()
    out = []
    for r in store.list_runs():
        note = ORPHAN if _orphaned(r) else (r.message or "")
        out.append({"id": r.id, "name": r.name, "status": r.status,
                    "steps": (r.summary or {}).get("steps", steps.get(r.id)),
                    "result": _result(r), "note": note})  # fmt: skip
    return out


def format_rows(table: list[dict[str, Any]]) -> str:
    """``table`` (:func:`rows`) as aligned text, a note cut to its first line, control
    characters escaped (:func:`~descentlab._terminal.printable`: names and messages are the
    store's, which anyone who could write it chose)."""
    heads = ["id", "name", "status", "steps", "result", "note"]
    cells = [[("" if r[h] is None else printable(str(r[h]).splitlines()[0]) if str(r[h]) else "")
              for h in heads] for r in table]  # fmt: skip
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]  # fmt: skip
    return "\n".join(lines)


def show(store: Any, run_id: int) -> dict[str, Any]:
    """Run ``run_id`` of ``store`` in full (KeyError, one line, where there is none)."""
    r = store.get_run(run_id)
    prov = r.provenance or {}
    status = f"{r.status} ({ORPHAN}: pid {prov.get('pid')} ended)" if _orphaned(r) else r.status
    return {
        "id": r.id,
        "name": r.name,
        "status": status,
        "message": r.message,
        "steps": (r.summary or {}).get("steps", store.last_steps().get(r.id)),
        "result": _result(r),
        "created": r.created_at,
        "updated": r.updated_at,
        "seed": r.seed,
        "ran": {k: prov.get(k) for k in ("hostname", "pid", "nproc", "git") if k in prov},
        "command": " ".join(map(str, prov.get("argv") or [])),
        "config": r.config,
        "summary": r.summary,
        "files": {name: a["path"] for name, a in store.artifacts(r.id).items()},
    }
