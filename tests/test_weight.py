"""The library stays light and says things through one announcer.

- No module keeps a module-global record of what it said (a ``set()``, or a flag named for
  saying): every "said once" goes through :mod:`descentlab._announce`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
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
