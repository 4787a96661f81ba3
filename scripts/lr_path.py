"""Follow a learning rate from ``descentlab compare`` to the optimizer step (issue 29).

Runs a tiny comparison in this process (moons, an MLP, SGD, one tuning trial whose lr is the
marker value 0.0123, one worker) under ``sys.setprofile``. A called function "names the lr"
when it binds the marker's value to a name of its own: an argument or a local variable that is
the float itself, or text that spells it (``"sgd=0.0123:0.0123"`` as the command line has it),
seen as the function is called and as it returns. An object that merely holds the lr somewhere
inside (a config, a dict, a plan) does not count: how deeply objects are nested is not how far
the lr travels, and the count needs no depth. The walk stops at the first optimizer step
called from the engine (the training step); the comparison then runs to its end untraced
(raising there would stop it, but the runner reports any error a trial raises, even a
``BaseException``, as the trial's failure: "trial ... failed").

Prints the files of src/descentlab that named the lr, in order (consecutive calls in one file
are one visit), the visits per file, the distinct files, and the returns to a file already left
(a visit to a file that had an earlier visit). optim/ is left out (the step is its business)
unless ``--with-optim``.

Usage::

    PYTHONPATH=src python scripts/lr_path.py [-v] [--with-optim]

``-v`` prints each visit with the functions that named the lr.
"""

from __future__ import annotations

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


def holds(v: Any) -> bool:
    """Whether ``v``, the value of one name, is the marker lr (the float, or text that spells
    it); a container or an object that holds it inside is not."""
    if isinstance(v, float):
        return v == MARK
    return isinstance(v, str) and str(MARK) in v


def _names_it(frame: Any) -> bool:
    try:
        return any(holds(v) for v in frame.f_locals.values())
    except Exception:  # a frame that cannot be inspected names nothing
        return False


def trace() -> list[tuple[str, str]]:
    """``(file, function)`` of every call that named the lr, in the order of the calls, up to
    the training step."""
    calls: list[list[Any]] = []
    open_: dict[int, list[Any]] = {}  # (a call not returned yet: its entry in ``calls``)

    def profile(frame: Any, event: str, arg: Any) -> None:
        if "/src/descentlab/" not in frame.f_code.co_filename:
            return
        if event == "return":  # the names it bound while it ran
            entry = open_.pop(id(frame), None)
            if entry is not None and not entry[2]:
                entry[2] = _names_it(frame)
            return
        if event != "call":
            return
        rel = frame.f_code.co_filename.split("/src/", 1)[1]
        if frame.f_code.co_name == "step" and rel.startswith("descentlab/optim/"):
            back = frame.f_back
            while back is not None and "/descentlab/engine/" not in back.f_code.co_filename:
                back = back.f_back
            if back is not None:  # the walk ends here; the tiny comparison runs on, untraced
                calls.append([rel, "step", True])
                sys.setprofile(None)
                return
        entry = [rel, frame.f_code.co_name, _names_it(frame)]  # (its arguments)
        calls.append(entry)
        open_[id(frame)] = entry

    from descentlab.cli import main

    sys.setprofile(profile)
    try:
        main([*ARGV, "--runs-dir", tempfile.mkdtemp(prefix="lr-path-")])
    finally:
        sys.setprofile(None)
    return [(rel, fn) for rel, fn, named in calls if named]


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
