"""Count the branches on "is this the user's own training code" outside the trial kinds.

A branch is an ``if``/``elif``, a conditional expression, a ``while``, a comprehension's
``if`` or a short circuit (``and``/``or`` outside those) whose condition names something
called ``objective`` (a variable, an attribute such as ``spec.objective``, a function such as
``_objective(args)``, a string key ``"objective"``). The kinds' own modules
(``experiments/kinds/``, and before they existed ``experiments/objective.py`` and
``experiments/frameworks.py``) are left out: asking what kind
a trial is belongs there. ``python scripts/kind_branches.py [src]`` prints each branch and the
count per file and in all.

Two more counts of the same tree: the branches on a kind's yes/no answers (``stacks``,
``own_metric``...: :data:`FLAGS`) outside the kinds (:func:`flag_branches`), and the arrows
between the rooms of ``experiments/`` (a room a subpackage or a module, an arrow an import,
at the top or inside a function) that run back up: an arrow whose reverse is an arrow too
(:func:`arrows`).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path
from typing import Any

KINDS = ("experiments/kinds/", "experiments/objective.py", "experiments/frameworks.py")


#: A kind's yes/no answers (:class:`~descentlab.experiments.kinds.TrialKind`'s attributes).
FLAGS = frozenset(
    {"stacks", "prunes_in_pass", "shards", "own_metric", "own_problem", "counts_as_trained"}
)


def _names(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and "objective" in sub.id:
            return True
        if isinstance(sub, ast.Attribute) and "objective" in sub.attr:
            return True
        if isinstance(sub, ast.Constant) and sub.value == "objective":
            return True
    return False


def _flag(node: ast.AST) -> bool:
    return any(isinstance(sub, ast.Attribute) and sub.attr in FLAGS for sub in ast.walk(node))


def branches(root: Path, on: Any = _names) -> list[tuple[str, int]]:
    """``(file, line)`` of each branch on the objective (``on``: a condition's test) outside
    the kinds' modules."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if any(k in rel for k in KINDS):
            continue
        inside: set[int] = set()  # (the nodes of a condition already counted)
        for node in ast.walk(ast.parse(path.read_text())):
            tests = []
            if isinstance(node, ast.If | ast.IfExp | ast.While):
                tests = [node.test]
            elif isinstance(node, ast.comprehension):
                tests = node.ifs
            elif isinstance(node, ast.BoolOp) and id(node) not in inside:
                tests = [node]
            for t in tests:
                inside.update(id(sub) for sub in ast.walk(t))
            found += [(rel, t.lineno) for t in tests if on(t)]
    return found


def flag_branches(root: Path) -> list[tuple[str, int]]:
    """``(file, line)`` of each branch on a kind's yes/no answers outside the kinds' modules
    and outside ``experiments/`` (``optim/``'s ``shards`` is another)."""
    return [(rel, n) for rel, n in branches(root, _flag) if not rel.startswith("optim/")]


def arrows(root: Path) -> dict[tuple[str, str], list[str]]:
    """The imports between the rooms of ``root/experiments``: ``{(room, room it imports):
    [file:line, ...]}``."""
    base = root / "experiments"
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).parts
        room, package = rel[0].removesuffix(".py"), ["descentlab", "experiments", *rel[:-1]]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    module = ".".join([*package[: len(package) - node.level + 1], module])
                names = [f"{module}.{a.name}" for a in node.names]
                targets = names if module.rstrip(".") == "descentlab.experiments" else [module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                inside = parts[:2] == ["descentlab", "experiments"] and len(parts) > 2
                if inside and parts[2] not in (room, "__init__"):
                    found.setdefault((room, parts[2]), []).append(f"{'/'.join(rel)}:{node.lineno}")
    return found


def back_up(root: Path) -> list[tuple[str, str]]:
    """The arrows of :func:`arrows` whose reverse is an arrow too (a circle of two rooms:
    one of them runs back up)."""
    found = arrows(root)
    return sorted((a, b) for a, b in found if (b, a) in found)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/descentlab")
    found = branches(root)
    for rel, n in Counter(r for r, _ in found).most_common():
        print(f"{n:3d}  {rel}")
    print(f"{len(found)} branches in {len({r for r, _ in found})} files")
    flags = flag_branches(root)
    for rel, n in Counter(r for r, _ in flags).most_common():
        print(f"{n:3d}  {rel} (a kind's yes/no answers)")
    print(f"{len(flags)} branches on a kind's answers in {len({r for r, _ in flags})} files")
    every = arrows(root)
    up = back_up(root)
    for a, b in up:
        print(f"circle: {a} -> {b} {every[a, b]}")
    print(f"{len(every)} arrows inside experiments/, {len(up) // 2} back up")


if __name__ == "__main__":
    main()
