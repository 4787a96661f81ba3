"""The layer order of README's "Architecture: layers": no module imports a higher layer.

The order is read from the README (the one place it is written). Every module of
src/descentlab is parsed with ``ast``; every import counts, at the top of a file or inside a
function, absolute or relative; ``from descentlab import x`` imports layer ``x``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "descentlab"


def read_layers(readme: str) -> list[tuple[str, ...]]:
    """The layers, lowest first, from the ``a, b < c < d`` line under "Architecture: layers"."""
    section = re.search(r"^#+ Architecture: layers\n(.*?)(?=^#+ |\Z)", readme, re.M | re.S)
    if section is None:
        raise AssertionError("README.md has no 'Architecture: layers' section")
    lines = [line for line in section.group(1).splitlines() if " < " in line]
    if len(lines) != 1:
        raise AssertionError(f"the section must hold one 'a < b < c' line, found {lines}")
    return [tuple(n.strip() for n in part.split(",")) for part in lines[0].split(" < ")]


def module_parts(path: Path, package: Path = PACKAGE) -> list[str]:
    """``.../descentlab/engine/run.py`` -> ``["descentlab", "engine", "run"]``."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def layer(parts: list[str]) -> str:
    """The layer of ``descentlab.<name>...``: ``name``; the package root's is ``descentlab``."""
    return parts[1] if len(parts) > 1 else "descentlab"


def imported_modules(
    tree: ast.AST, parts: list[str], is_package: bool
) -> list[tuple[int, list[str]]]:
    """``(line, module parts)`` of every descentlab module that ``tree`` imports."""
    here = parts if is_package else parts[:-1]  # the package relative imports start from
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            if module == ["descentlab"] or (node.level and not node.module):
                found += [(node.lineno, [*module, a.name]) for a in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, m) for line, m in found if m and m[0] == "descentlab"]


def violations(package: Path, layers: list[tuple[str, ...]]) -> list[str]:
    """Every import of a higher layer (and every module whose layer is not listed)."""
    rank = {name: i for i, group in enumerate(layers) for name in group}
    rank.setdefault("descentlab", 0)
    out = []
    for path in sorted(package.rglob("*.py")):
        parts = module_parts(path, package)
        mine = layer(parts)
        where = path.relative_to(package.parent)
        if mine not in rank:
            out.append(f"{where}: its layer {mine!r} is not in README's layer order")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, module in imported_modules(tree, parts, path.name == "__init__.py"):
            theirs = layer(module)
            if theirs not in rank:  # not a module: a name of the package root (__version__)
                theirs = "descentlab"
            if rank[theirs] > rank[mine]:
                out.append(f"{where}:{line}: {mine} imports {'.'.join(module)} ({theirs})")
    return out


LAYERS = read_layers((ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_places_every_top_level_module():
    placed = {name for group in LAYERS for name in group}
    top = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    top |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert top <= placed, f"not in README's layer order: {sorted(top - placed)}"
    assert LAYERS[0] == ("_osutil", "_files", "_native", "constraints")
    assert LAYERS[-1] == ("demo", "__main__")


def test_no_module_imports_a_higher_layer():
    found = violations(PACKAGE, LAYERS)
    assert not found, "imports of a higher layer:\n" + "\n".join(found)


# (module, its source, what the one violation says; None: no violation)
CASES = [
    ("engine/run.py", "from descentlab.optim import Rule\n", None),
    ("engine/run.py", "from .config import RunConfig\nfrom . import multirun\n", None),
    ("engine/run.py", "import descentlab\nfrom descentlab import optim, store\n", None),
    ("optim/a.py", "from descentlab import __version__\n", None),
    ("optim/a.py", "def f():\n    from descentlab.engine import run\n", "optim imports"),
    ("engine/run.py", "from descentlab import report\n", "engine imports descentlab.report"),
    ("engine/run.py", "from ..report import figures\n", "engine imports descentlab.report"),
    ("engine/__init__.py", "from ..experiments import x\n", "imports descentlab.experiments"),
    ("store.py", "import descentlab.cli.train\n", "store imports descentlab.cli.train"),
    ("problems/p.py", "if True:\n    from descentlab.experiments import f\n", "problems imp"),
    ("newthing.py", "x = 1\n", "layer 'newthing' is not in README"),
    ("report/lecture_book.py", "from descentlab.book import build\n", "report imports descentl"),
    ("book/build.py", "from descentlab.report import lecture_book\n", None),
]


@pytest.mark.parametrize(("name", "source", "expected"), CASES)
def test_the_check_finds_upward_imports(tmp_path, name, source, expected):
    path = tmp_path / "descentlab" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    found = violations(tmp_path / "descentlab", LAYERS)
    assert len(found) == (expected is not None), found
    assert expected is None or expected in found[0]


def test_the_order_is_read_from_the_readme_line():
    text = "# x\n## Architecture: layers\n\ntext\n```\na, b < c < d\n```\n## Next\ne < f\n"
    assert read_layers(text) == [("a", "b"), ("c",), ("d",)]
    with pytest.raises(AssertionError, match="no 'Architecture: layers' section"):
        read_layers("# x\n")
