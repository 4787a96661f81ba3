"""Follow a learning rate from ``descentlab compare`` to the optimizer step (issue 29).

Runs a tiny comparison in this process (moons, an MLP, SGD, one tuning trial whose lr is the
marker value 0.0123, one worker) under ``sys.setprofile``. A called function "carries the lr"
when the marker is among its arguments -- the float itself, a string holding it, or inside a
dict, list, tuple, dataclass or descentlab object, to depth 3. The walk stops at the first
optimizer step called from the engine (the training step); the comparison then runs to its
end untraced (raising there would stop it, but the runner reports any error a trial raises,
even a ``BaseException``, as the trial's failure: "trial ... failed").

Prints the files of src/descentlab that carried the lr, in order (consecutive calls in one
file are one visit), the visits per file, the distinct files, and the returns to a file
already left (a visit to a file that had an earlier visit). optim/ is left out (the step is
its business) unless ``--with-optim``.

Usage::

    PYTHONPATH=src python scripts/lr_path.py [-v] [--with-optim]

``-v`` prints each visit with the functions that carried the lr.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections import Counter
from typing import Any

MARK = 0.0123
ARGV = [
    "compare", "--problem", "moons", "--model", "mlp", "--optimizer", "sgd",
    "--lr-range", f"sgd={MARK}:{MARK}", "--lr-trials", "1", "--no-refine", "--steps", "3",
    "--seeds", "1", "--workers", "1", "--no-report", "--no-progress", "--landscapes", "none",
    "--batch-size", "16",
]  # fmt: skip


def holds(v: Any, depth: int = 0) -> bool:
    """Whether ``v`` holds the marker lr."""
    if isinstance(v, float):
        return v == MARK
    if isinstance(v, str):
        return str(MARK) in v
    if depth >= 3:
        return False
    if isinstance(v, dict):
        return any(holds(x, depth + 1) for x in list(v.values())[:200])
    if isinstance(v, (list, tuple)):
        return any(holds(x, depth + 1) for x in v[:200])
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return any(holds(getattr(v, f.name, None), depth + 1) for f in dataclasses.fields(v))
    if type(v).__module__.startswith("descentlab") and hasattr(v, "__dict__"):
        return any(holds(x, depth + 1) for x in list(vars(v).values())[:50])
    return False


def trace() -> list[tuple[str, str]]:
    """``(file, function)`` of every call that carried the lr, up to the training step."""
    calls: list[tuple[str, str]] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "call" or "/src/descentlab/" not in frame.f_code.co_filename:
            return
        rel = frame.f_code.co_filename.split("/src/", 1)[1]
        if frame.f_code.co_name == "step" and rel.startswith("descentlab/optim/"):
            back = frame.f_back
            while back is not None and "/descentlab/engine/" not in back.f_code.co_filename:
                back = back.f_back
            if back is not None:  # the walk ends here; the tiny comparison runs on, untraced
                calls.append((rel, "step"))
                sys.setprofile(None)
                return
        try:
            if any(holds(v) for v in frame.f_locals.values()):
                calls.append((rel, frame.f_code.co_name))
        except Exception:  # an object that cannot be inspected carries nothing
            return

    from descentlab.cli import main

    sys.setprofile(profile)
    try:
        main([*ARGV, "--runs-dir", tempfile.mkdtemp(prefix="lr-path-")])
    finally:
        sys.setprofile(None)
    return calls


def visits(
    calls: list[tuple[str, str]], *, with_optim: bool = False
) -> list[tuple[str, list[str]]]:
    """The visits of ``calls``: consecutive calls in one file are one visit, ``(file,
    functions)``; optim/ is left out but its step, unless ``with_optim``."""
    if not with_optim:
        calls = [(r, f) for r, f in calls if not r.startswith("descentlab/optim/") or f == "step"]
    out: list[tuple[str, list[str]]] = []
    for rel, fn in calls:
        if out and out[-1][0] == rel:
            out[-1][1].append(fn)
        else:
            out.append((rel, [fn]))
    return out


def main() -> None:
    visits_ = visits(trace(), with_optim="--with-optim" in sys.argv)
    seen: set[str] = set()
    returns = 0
    for rel, fns in visits_:
        returns += rel in seen
        seen.add(rel)
        if "-v" in sys.argv:
            print(f"{rel}: {', '.join(dict.fromkeys(fns))}")
    print("visits per file:", dict(Counter(r for r, _ in visits_).most_common()))
    print(f"files: {len(seen)}  returns to a file already left: {returns}  visits: {len(visits_)}")


if __name__ == "__main__":
    main()
