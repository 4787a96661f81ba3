"""Count the branches on "is this the user's own training code" outside the trial kinds.

A branch is an ``if``/``elif``, a conditional expression, a ``while``, a comprehension's
``if`` or a short circuit (``and``/``or`` outside those) whose condition names something
called ``objective`` (a variable, an attribute such as ``spec.objective``, a function such as
``_objective(args)``, a string key ``"objective"``). The kinds' own modules
(``experiments/kinds/``, and before they existed ``experiments/objective.py`` and
``experiments/frameworks.py``) are left out: asking what kind
a trial is belongs there. ``python scripts/kind_branches.py [src]`` prints each branch and the
count per file and in all.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

KINDS = ("experiments/kinds/", "experiments/objective.py", "experiments/frameworks.py")


def _names(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and "objective" in sub.id:
            return True
        if isinstance(sub, ast.Attribute) and "objective" in sub.attr:
            return True
        if isinstance(sub, ast.Constant) and sub.value == "objective":
            return True
    return False


def branches(root: Path) -> list[tuple[str, int]]:
    """``(file, line)`` of each branch on the objective outside the kinds' modules."""
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
            found += [(rel, t.lineno) for t in tests if _names(t)]
    return found


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/descentlab")
    found = branches(root)
    for rel, n in Counter(r for r, _ in found).most_common():
        print(f"{n:3d}  {rel}")
    print(f"{len(found)} branches in {len({r for r, _ in found})} files")


if __name__ == "__main__":
    main()
