"""A run is built in the order it needs its parts, each made once in its own module:
``engine/building.py``'s ``build`` calls the part's module once for each part (its data, its
model and losses, its optimizer and schedules, its regularizers) and no helper of its own, so
that reading a build does not go back and forth between modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "descentlab"


def module_runs(source: str, function: str) -> list[str]:
    """The modules whose functions ``function`` of ``source`` calls, in the order written,
    consecutive calls into one module as one entry (``<own>``: a function of ``source``
    itself; its classes, builtins and the function's parameters are left out)."""
    tree = ast.parse(source)
    own = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    imported = {
        (a.asname or a.name): node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for a in node.names
    }
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    calls = sorted(
        (n for n in ast.walk(fn) if isinstance(n, ast.Call)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    runs: list[str] = []
    for call in calls:
        target = call.func
        while isinstance(target, ast.Attribute):
            target = target.value
        if not isinstance(target, ast.Name):
            continue
        module = "<own>" if target.id in own else imported.get(target.id)
        if module is not None and (not runs or runs[-1] != module):
            runs.append(module)
    return runs


def test_build_calls_each_parts_module_once_and_no_helper_of_its_own():
    runs = module_runs((SRC / "engine" / "building.py").read_text(encoding="utf-8"), "build")
    assert "<own>" not in runs, runs
    assert len(runs) == len(set(runs)), f"build goes back to a module: {runs}"
    for part in ("rundata", "modelling", "optimizing", "regularize"):
        assert any(m.endswith(part) for m in runs), (part, runs)


@pytest.mark.parametrize(
    ("body", "runs"),
    [
        ("x = a(); y = b(x); z = b(y)", ["ma", "mb"]),
        ("x = a(); y = b(x); z = a(y)", ["ma", "mb", "ma"]),
        ("x = a(); y = helper(x)", ["ma", "<own>"]),
        ("x = C.of(a())", ["ma"]),
    ],
)
def test_the_check_names_the_modules_in_the_order_build_calls_them(body, runs):
    source = (
        "from ma import a\nfrom mb import b\n\n"
        "class C:\n    pass\n\n"
        "def helper(x):\n    return x\n\n"
        f"def build():\n    {body}\n"
    )
    assert module_runs(source, "build") == runs
