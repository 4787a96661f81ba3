"""A trial's life reads in a few modules named for their purpose (docs/layout.md).

- No module of ``experiments/`` is over 900 lines, and ``trials.py`` (1,477 lines with nine
  jobs before the split) is gone.
- Modules are named for what they do: no module outside the Ray backend imports a module
  named after Ray; the one place that chooses a runner (``experiments/backend.py``) imports
  the Ray backend only where Ray was chosen, inside that function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from test_layers import PACKAGE, module_graph

#: the modules of the Ray backend (a module named after Ray, ``ray_*``, is one)
RAY = "descentlab.experiments.ray_"

#: who may import the Ray backend, and only inside a function (the choice of runner)
CHOOSER = "descentlab.experiments.backend"


def ray_importers(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> the ray_* modules it imports`` for every module outside the Ray backend."""
    return {
        name: {m for m in imported if m.startswith(RAY)}
        for name, imported in module_graph(package).items()
        if not name.startswith(RAY) and any(m.startswith(RAY) for m in imported)
    }


def top_level_imports(path: Path) -> set[str]:
    """The modules a file imports at its top (not inside a function or class)."""
    out = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_no_module_outside_the_ray_backend_imports_it_but_the_choice_of_runner():
    found = ray_importers()
    assert set(found) <= {CHOOSER}, found
    chooser = PACKAGE / "experiments" / "backend.py"
    assert not {m for m in top_level_imports(chooser) if m.startswith(RAY)}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"experiments/trials.py": "from descentlab.experiments import ray_resume\n"},
         {"descentlab.experiments.trials"}),
        ({"cli/x.py": "def f():\n    from descentlab.experiments.ray_backend import g\n"},
         {"descentlab.cli.x"}),
        ({"experiments/ray_backend.py": "from descentlab.experiments import ray_resume\n"},
         set()),
        ({"experiments/runner.py": "from descentlab.experiments import resume\n"}, set()),
    ],
)  # fmt: skip
def test_the_check_finds_an_import_of_the_ray_backend(tmp_path, files, expected):
    root = tmp_path / "descentlab"
    for name, source in {"__init__.py": "", "experiments/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)
    for name in ("ray_resume", "ray_backend", "resume"):
        (root / "experiments" / f"{name}.py").touch()
    assert set(ray_importers(root)) == expected


def test_the_experiments_modules_are_each_at_most_900_lines():
    lines = {
        str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8").count("\n")
        for p in (PACKAGE / "experiments").rglob("*.py")
    }
    assert not (PACKAGE / "experiments" / "trials.py").exists()
    assert max(lines.values()) <= 900, {k: v for k, v in lines.items() if v > 900}
