"""Count the library's code lines, the house's structure figures, the same way before and after.

Code lines: lines of the package's ``.py`` files outside ``descentlab.book`` that hold a
token other than a comment, leaving out docstrings and other multi-line strings, comments,
blank lines and import statements. Beside them: all lines as ``tests/test_weight.py`` counts
them, the modules of ``experiments/`` with their lines, and the library modules that start
processes (a call of ``Process``, ``Pool``, ``ProcessPoolExecutor`` or ``fork``, read with ``ast``).

Usage::

    python scripts/code_lines.py [SRC]      # SRC: the package folder (src/descentlab)
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

#: calls that start a worker process or a pool of them (commands run with ``subprocess`` --
#: the compiler, git -- are not worker processes and not counted)
STARTERS = ("Process", "Pool", "ProcessPoolExecutor", "fork")


def code_lines(source: str) -> int:
    """Lines holding code: no docstring or other multi-line string, comment, blank or import."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        a_string = isinstance(node, ast.Expr) and isinstance(getattr(node.value, "value", 0), str)
        if a_string or isinstance(node, ast.Import | ast.ImportFrom):  # a docstring, an import
            skip.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT):
            continue
        if tok.type in (tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.STRING and tok.start[0] != tok.end[0]:
            continue  # a multi-line string's lines are not code
        lines.add(tok.start[0])
    return len(lines - skip)


def starts_processes(source: str) -> bool:
    """Whether a module calls what starts a worker process: ``ctx.Process(...)``,
    ``Pool``, ``ProcessPoolExecutor``, ``os.fork``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
            if name in STARTERS:
                return True
    return False


def main(root: Path) -> None:
    files = [p for p in sorted(root.rglob("*.py")) if p.relative_to(root).parts[0] != "book"]
    texts = {p: p.read_text(encoding="utf-8") for p in files}
    print(f"library lines (outside the book): {sum(t.count(chr(10)) for t in texts.values())}")
    print(f"library code lines: {sum(code_lines(t) for t in texts.values())}")
    starters = [str(p.relative_to(root)) for p, t in texts.items() if starts_processes(t)]
    print(f"modules that start processes: {len(starters)} {' '.join(starters)}")
    print("experiments/ modules, lines:")
    for p in sorted((root / "experiments").rglob("*.py")):
        print(f"  {p.relative_to(root)} {texts[p].count(chr(10))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "src/descentlab")
