"""The library stays light and says things through one announcer.

- No module keeps a module-global record of what it said (a ``set()``, or a flag named for
  saying): every "said once" goes through :mod:`descentlab._announce`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from _source import parsed

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "descentlab"

#: words that name a record of what was said
_SAYING = ("ANNOUNC", "SAID", "WARNED", "UNTRACED")


def said_records(package: Path = PACKAGE) -> list[str]:
    """``file:line name`` of every module-level set or flag that remembers what was said,
    outside the announcer itself."""
    out = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "_announce.py":
            continue
        for node in parsed(path).body:
            if not isinstance(node, ast.Assign | ast.AnnAssign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            value = node.value
            a_set = isinstance(value, ast.Call) and getattr(value.func, "id", "") == "set"
            for name in names:
                if a_set or any(w in name.upper() for w in _SAYING):
                    out.append(f"{path.relative_to(package.parent)}:{node.lineno} {name}")
    return out


def test_no_module_keeps_its_own_record_of_what_it_said():
    assert said_records() == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("_ANNOUNCED: set[str] = set()\n", True),
        ("_warned = set()\n", True),
        ("_NO_COMPILER_SAID = False\n", True),
        ("NAMES = frozenset({'a'})\n", False),
        ("from descentlab._announce import once\n", False),
    ],
)
def test_the_check_finds_a_record_of_what_was_said(tmp_path, source, found):
    (tmp_path / "descentlab").mkdir()
    (tmp_path / "descentlab" / "m.py").write_text(source)
    assert bool(said_records(tmp_path / "descentlab")) is found


#: the library without the book: its lines at most this many. A change that moves it says the
#: count before and after in its commit message (the history is in `git log -p` of this line);
#: functions over 80 lines in the whole package at most LONG_FUNCTIONS (the goal is 15).
LIBRARY_LINES = 62_541
LONG_FUNCTIONS = 10


def library_lines(package: Path = PACKAGE) -> int:
    """Lines of the package's Python outside ``descentlab.book``."""
    return sum(
        p.read_text(encoding="utf-8").count("\n")
        for p in package.rglob("*.py")
        if p.relative_to(package).parts[0] != "book"
    )


def long_functions(package: Path = PACKAGE, most: int = 80) -> list[str]:
    """``file:name (lines)`` of every function of the package longer than ``most`` lines."""
    out = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > most:
                    out.append(f"{path.relative_to(package.parent)}:{node.name} ({n})")
    return out


def test_the_library_outside_the_book_keeps_its_weight():
    assert library_lines() <= LIBRARY_LINES


def test_few_functions_are_longer_than_a_screen():
    found = long_functions()
    assert len(found) <= LONG_FUNCTIONS, found


def test_the_weight_checks_count_what_they_say(tmp_path):
    pkg = tmp_path / "descentlab"
    (pkg / "book").mkdir(parents=True)
    body = "".join(f"    x{i} = {i}\n" for i in range(81))
    (pkg / "m.py").write_text(f"def long():\n{body}\n\ndef short():\n    return 1\n")
    (pkg / "book" / "b.py").write_text("a = 1\n" * 500)
    assert library_lines(pkg) == 86
    assert long_functions(pkg) == ["descentlab/m.py:long (82)"]
