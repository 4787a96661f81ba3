"""The layer order of docs/layout.md's "Architecture: layers": no module imports a higher
layer.

The order is read from docs/layout.md (the one place it is written; the README's until issue
48). Every module of
src/descentlab is parsed with ``ast``; every import counts, at the top of a file or inside a
function, absolute or relative; ``from descentlab import x`` imports layer ``x``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from _source import parsed

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "descentlab"


def read_layers(readme: str) -> list[tuple[str, ...]]:
    """The layers, lowest first, from the ``a, b < c < d`` line under "Architecture: layers"."""
    section = re.search(r"^#+ Architecture: layers\n(.*?)(?=^#+ |\Z)", readme, re.M | re.S)
    if section is None:
        raise AssertionError("docs/layout.md has no 'Architecture: layers' section")
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
            out.append(f"{where}: its layer {mine!r} is not in docs/layout.md's layer order")
            continue
        tree = parsed(path)
        for line, module in imported_modules(tree, parts, path.name == "__init__.py"):
            theirs = layer(module)
            if theirs not in rank:  # not a module: a name of the package root (__version__)
                theirs = "descentlab"
            if rank[theirs] > rank[mine]:
                out.append(f"{where}:{line}: {mine} imports {'.'.join(module)} ({theirs})")
    return out


LAYERS = read_layers((ROOT / "docs" / "layout.md").read_text(encoding="utf-8"))


def test_readme_places_every_top_level_module():
    placed = {name for group in LAYERS for name in group}
    top = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    top |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert top <= placed, f"not in docs/layout.md's layer order: {sorted(top - placed)}"
    assert LAYERS[0] == (
        "_osutil",
        "_terminal",
        "_files",
        "_lazy",
        "_announce",
        "_native",
        "_usercode",
        "constraints",
    )
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
    ("newthing.py", "x = 1\n", "layer 'newthing' is not in docs/layout.md"),
    ("report/lecture_book.py", "from descentlab.book import build\n", "report imports descentl"),
    ("book/build.py", "from descentlab.book.render import pages\n", None),
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


# --- import circles: no module imports, by any chain of imports, a module that imports it ---

#: Import edges a circle may still use, each with its reason (kept honest below: an edge that
#: no longer exists must leave this table).
KNOWN_CIRCLE_EDGES: dict[tuple[str, str], str] = {}


def module_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> the descentlab modules it imports`` (every import: top of the file, inside a
    function or under ``TYPE_CHECKING``; ``from pkg import sub`` imports ``pkg.sub`` when that
    is a module, else ``pkg``)."""
    files = {".".join(module_parts(p, package)): p for p in sorted(package.rglob("*.py"))}

    def known(name: str) -> str:
        while name not in files and "." in name:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in files.items():
        tree = parsed(path)
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges |= {known(a.name) for a in node.names if a.name.split(".")[0] == package.name}
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join(base + (node.module.split(".") if node.module else []))
                if module.split(".")[0] != package.name:
                    continue
                for a in node.names:
                    sub = f"{module}.{a.name}"
                    edges.add(sub if sub in files else known(module))
        graph[name] = edges - {name, package.name}
    return graph


def circles(graph: dict[str, set[str]], allowed: dict = KNOWN_CIRCLE_EDGES) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), ``allowed`` edges left
    out: each group is one or more import circles."""
    graph = {m: {t for t in e if t in graph and (m, t) not in allowed} for m, e in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    graph = module_graph()
    found = circles(graph)
    assert not found, "import circles (strongly connected modules):\n" + "\n".join(map(str, found))
    for (a, b), why in KNOWN_CIRCLE_EDGES.items():
        assert b in graph.get(a, ()), f"{a} no longer imports {b} ({why}): drop it from the table"


#: descentlab.optim's step, lowest first: the rules' form, the eager emitter, the collected
#: program, its two emitters, the plan every backend shares, the two backends' plans, the
#: choice and run of a plan, the optimizer
OPTIM_STACK = [
    ("form",),
    ("eager_emitter",),
    ("program",),
    ("c_emitter", "triton_emitter"),
    ("plan",),
    ("fused", "gpu"),
    ("fusedpath",),
    ("optimizer",),
]


def upward_in_optim(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The imports inside descentlab.optim that run up: a module of :data:`OPTIM_STACK` that
    imports one of its own layer or above, or any module that imports the package itself (its
    face, above every module of it)."""
    rank = {f"descentlab.optim.{m}": i for i, names in enumerate(OPTIM_STACK) for m in names}
    up = []
    for a, edges in sorted(graph.items()):
        if not a.startswith("descentlab.optim."):
            continue
        for b in sorted(edges):
            if b == "descentlab.optim" or (a in rank and b in rank and rank[b] >= rank[a]):
                up.append((a, b))
    return up


def test_the_imports_inside_optim_run_down():
    """0 imports that run back up inside optim/ (on main before this test: gpu.py's two
    functions that walked the registry imported the package)."""
    graph = module_graph()
    assert {f"descentlab.optim.{m}" for names in OPTIM_STACK for m in names} <= set(graph)
    assert upward_in_optim(graph) == []
    fake = {**graph, "descentlab.optim.gpu": {"descentlab.optim"}}  # the check can fail
    assert upward_in_optim(fake) == [("descentlab.optim.gpu", "descentlab.optim")]


# (files of a package "pkg": name -> source; the modules of the circles the check finds)
CIRCLE_CASES = [
    ({"a.py": "from pkg import b\n", "b.py": "x = 1\n"}, []),
    ({"a.py": "from pkg import b\n", "b.py": "from pkg.a import f\n"}, [["pkg.a", "pkg.b"]]),
    (
        {
            "a.py": "from . import b\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
        },
        [["pkg.a", "pkg.b"]],
    ),
    (
        {"a.py": "import pkg.b\n", "b.py": "def f():\n    import pkg.c\n", "c.py": "import pkg.a"},
        [["pkg.a", "pkg.b", "pkg.c"]],
    ),
    ({"__init__.py": "from .a import f\n", "a.py": "from pkg.b import g\n", "b.py": ""}, []),
    ({"__init__.py": "from .a import f\n", "a.py": "import pkg\n"}, []),
    (
        {
            "__init__.py": "from .a import f\n",
            "a.py": "from pkg import b\n",
            "b.py": "import pkg\n",
        },
        [],
    ),
    (
        {
            "sub/__init__.py": "from .a import f\n",
            "sub/a.py": "from pkg.sub import b\n",
            "sub/b.py": "from pkg.sub import a\n",
        },
        [["pkg.sub.a", "pkg.sub.b"]],
    ),
]


@pytest.mark.parametrize(("files", "expected"), CIRCLE_CASES)
def test_the_check_finds_import_circles(tmp_path, files, expected):
    root = tmp_path / "pkg"
    for name, source in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)
    assert circles(module_graph(root), allowed={}) == expected


# --- the report renders values it is given: it imports no runner ---

#: What runs: a module that trains a model, steps an optimizer to produce results (the
#: trajectories on landscapes and their races, the comparison's landscape races, an experiment's
#: run), or queues, packs, executes or resumes trials -- a module (any name of it) or one name of
#: a module. The report layer imports none of them, directly or through another module: it is
#: handed the results (``Comparison``, ``Trajectories``, ``Race``: values, in modules that run
#: nothing). A one-step probe that checks an optimizer's contract before training
#: (``experiments.external.check_external``) makes no result and is not among them.
RUNNERS = (
    "descentlab.engine",
    "descentlab.experiments.trial",
    "descentlab.experiments.packing",
    "descentlab.experiments.execution",
    "descentlab.experiments.resume",
    "descentlab.experiments.runner",
    "descentlab.experiments.runners",
    "descentlab.experiments.ray_runner",
    "descentlab.experiments.multi",
    "descentlab.experiments.optimizer_check",
    "descentlab.experiments.compare.running",
    "descentlab.experiments.compare.planning",
    "descentlab.experiments.compare.collect",
    "descentlab.experiments.compare.landscapes",
    "descentlab.book.experiments.run",
    "descentlab.book.experiments.get",
    "descentlab.problems.trajectories",
)


def imported_names(tree: ast.AST, parts: list[str], is_package: bool) -> list[str]:
    """Every descentlab module and ``module.name`` that ``tree`` imports (a module imported as
    an object -- ``from descentlab.book import experiments`` -- counts as all its names)."""
    here = parts if is_package else parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{a.name}.*" for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            found += [f"{module}.{a.name}" for a in node.names]
            found += [f"{module}.{a.name}.*" for a in node.names]  # the name may be a module
    return [n for n in found if n.startswith("descentlab.")]


def report_runs(package: Path = PACKAGE) -> list[tuple[str, str]]:
    """``(file, runner)`` for every import of a runner by a module of the report layer."""
    out = []
    for path in sorted((package / "report").rglob("*.py")):
        parts = module_parts(path, package)
        tree = parsed(path)
        names = imported_names(tree, parts, path.name == "__init__.py")
        where = str(path.relative_to(package))
        for runner in RUNNERS:
            if any(_reaches(n, runner) for n in names):
                out.append((where, runner))
    return out


def _reaches(name: str, runner: str) -> bool:
    """Whether importing ``name`` (``module.*``: a module as an object) gives ``runner``."""
    if name.endswith(".*"):
        module = name[:-2]
        if module == "descentlab":  # the package root imports nothing (its version only)
            return False
        return (
            runner == module
            or (runner + ".").startswith(module + ".")
            or module.startswith(runner + ".")
        )
    return name == runner or name.startswith(runner + ".")


def test_the_report_imports_no_runner():
    found = report_runs()
    assert not found, f"the report layer imports what runs: {found}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from descentlab.book import experiments as lectures\n",
            "descentlab.book.experiments.run",
        ),
        ("from descentlab.book.experiments import NAMES, ExperimentResult\n", None),
        (
            "from descentlab.book.experiments import run\n",
            "descentlab.book.experiments.run",
        ),
        ("import descentlab.engine.run\n", "descentlab.engine"),
        ("def f():\n    from descentlab.engine import train\n", "descentlab.engine"),
        ("from ..experiments.compare import running\n", "descentlab.experiments.compare.running"),
        ("from descentlab.experiments.compare.results import fmt_setting\n", None),
        ("from descentlab.problems import trajectories\n", "descentlab.problems.trajectories"),
        ("from descentlab.problems.trajectories import Race\n", "descentlab.problems.trajectories"),
        ("from descentlab.problems.paths import Race, Trajectories\n", None),
        (
            "from descentlab.experiments.compare.landscapes import landscape_races\n",
            "descentlab.experiments.compare.landscapes",
        ),
    ],
)
def test_the_check_finds_a_runner_in_the_report(tmp_path, source, expected):
    path = tmp_path / "descentlab" / "report" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = [runner for _, runner in report_runs(tmp_path / "descentlab")]
    assert (found[0] if found else None) == expected, found


# --- nor through another module: what the report imports reaches no runner ---

#: The modules that run: the training loops, the trials' and comparisons' runners, the
#: experiments' and trajectories' runs (the engine's values -- its config, its devices -- are
#: not among them: the report reads a comparison's spec).
RUNNER_MODULES = (
    "descentlab.engine.run",
    "descentlab.engine.loop",
    "descentlab.engine.multirun",
    "descentlab.engine.vectorized",
    "descentlab.engine.procpool",
    "descentlab.engine.launch",
    "descentlab.engine.checkpoint",
    *(r for r in RUNNERS if r != "descentlab.engine"),
)


def _module_file(name: str, package: Path) -> Path | None:
    """The file of module ``name`` (``descentlab.x.y``) under ``package``'s parent, if any."""
    base = package.parent.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _lazy_exports(tree: ast.AST) -> dict[str, str]:
    """A package's names imported at first use (``exports(__name__, {submodule: names})``,
    :mod:`descentlab._lazy`): name -> submodule."""
    out = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "exports"
            and len(node.args) == 2
            and isinstance(node.args[1], ast.Dict)
        ):
            for key, value in zip(node.args[1].keys, node.args[1].values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Tuple):
                    out.update(
                        {e.value: key.value for e in value.elts if isinstance(e, ast.Constant)}
                    )
    return out


def _imports_of(name: str, package: Path) -> set[str]:
    """The descentlab modules that importing module ``name`` may import (every import of its
    file, at the top or in a function; a name a lazy package exports counts as its submodule;
    a module's parent packages are imported with it)."""
    path = _module_file(name, package)
    if path is None:
        return set()
    parts = name.split(".")
    tree = parsed(path)
    out: set[str] = set()
    for found in imported_names(tree, parts, path.name == "__init__.py"):
        target = found.removesuffix(".*")
        while target and _module_file(target, package) is None:  # a name: its module
            target = target.rpartition(".")[0]
        if not target:
            continue
        out.add(target)
        rest = found.removesuffix(".*")[len(target) + 1 :]
        init = _module_file(target, package)
        if rest and init is not None and init.name == "__init__.py":
            lazy = _lazy_exports(parsed(init))
            head = rest.split(".")[0]
            if head in lazy:
                out.add(f"{target}.{lazy[head]}")
    for i in range(2, len(parts)):
        out.add(".".join(parts[:i]))
    return out


def report_reaches(package: Path = PACKAGE) -> dict[str, list[str]]:
    """Each runner module that importing the report layer reaches, directly or through other
    modules (any import: at the top of a file or inside a function), with the chain of imports
    that leads to it."""
    start = {".".join(module_parts(p, package)): str(p.relative_to(package))
             for p in sorted((package / "report").rglob("*.py"))}  # fmt: skip
    parent: dict[str, str | None] = dict.fromkeys(start)
    todo = list(start)
    while todo:
        name = todo.pop()
        for module in sorted(_imports_of(name, package)):
            if module in parent:
                continue
            parent[module] = name
            todo.append(module)
    out = {}
    for module in parent:
        runner = next(
            (r for r in RUNNER_MODULES if module == r or module.startswith(r + ".")), None
        )
        if runner is None:
            continue
        chain = [module]
        while parent[chain[-1]] is not None:
            chain.append(parent[chain[-1]])  # type: ignore[arg-type]
        out[module] = chain[::-1]
    return out


def test_the_report_reaches_no_runner_through_another_module():
    found = report_reaches()
    assert not found, "importing the report imports what runs: " + "; ".join(
        " -> ".join(chain) for chain in found.values()
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {
                "report/x.py": "from descentlab.experiments.compare.results import fmt_setting\n",
                "experiments/compare/results.py": "from descentlab.experiments.runner import f\n",
                "experiments/runner.py": "",
            },
            ["descentlab.experiments.runner"],
        ),
        (
            {
                "report/x.py": "from descentlab.experiments.compare import Comparison\n",
                "experiments/compare/__init__.py": (
                    "__all__, __getattr__, __dir__ = exports(__name__, "
                    "{'running': ('compare',), 'results': ('Comparison',)})\n"
                ),
                "experiments/compare/results.py": "",
                "experiments/compare/running.py": "",
            },
            [],
        ),
        (
            {
                "report/x.py": "def f():\n    from descentlab.experiments.compare import compare\n",
                "experiments/compare/__init__.py": (
                    "__all__, __getattr__, __dir__ = exports(__name__, {'running': ('compare',)})\n"
                ),
                "experiments/compare/running.py": "",
            },
            ["descentlab.experiments.compare.running"],
        ),
        (
            {
                "report/x.py": "from descentlab.experiments.compare.scoring import wins\n",
                "experiments/compare/scoring.py": "import numpy\n",
            },
            [],
        ),
    ],
)
def test_the_check_follows_imports_to_a_runner(tmp_path, files, expected):
    for name, source in files.items():
        path = tmp_path / "descentlab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    assert sorted(report_reaches(tmp_path / "descentlab")) == expected


# --- the book is one wing: nothing outside it, the playground and the CLI imports it ---

#: The modules allowed to import ``descentlab.book``: the book itself and the two front ends
#: that serve it.
BOOK_READERS = ("book", "playground", "cli")


def book_importers(package: Path = PACKAGE) -> list[str]:
    """``file:line`` of every import of ``descentlab.book`` by a module outside
    :data:`BOOK_READERS` (any import: top of the file, in a function, relative or absolute)."""
    out = []
    for path in sorted(package.rglob("*.py")):
        parts = module_parts(path, package)
        if layer(parts) in BOOK_READERS:
            continue
        tree = parsed(path)
        for line, module in imported_modules(tree, parts, path.name == "__init__.py"):
            if layer(module) == "book":
                out.append(f"{path.relative_to(package.parent)}:{line}")
    return out


def test_nothing_outside_the_book_and_its_front_ends_imports_the_book():
    assert book_importers() == []


@pytest.mark.parametrize(
    ("name", "source", "found"),
    [
        ("schedules/__init__.py", "from descentlab.book.decays import *\n", True),
        ("report/figures.py", "def f():\n    from ..book.render import pages\n", True),
        ("demo.py", "import descentlab.book.build\n", True),
        ("engine/run.py", "from descentlab import book\n", True),
        ("cli/lectures.py", "from descentlab.book import build\n", False),
        ("playground/snapshot.py", "from descentlab.book.render.pages import figure_dpi\n", False),
        ("book/build.py", "from descentlab.book.render import pages\n", False),
    ],
)
def test_the_book_check_finds_an_import_from_outside(tmp_path, name, source, found):
    path = tmp_path / "descentlab" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    assert bool(book_importers(tmp_path / "descentlab")) is found


def book_only_modules(package: Path = PACKAGE) -> list[str]:
    """Modules outside the book that only the book imports (a package's ``__init__`` aside:
    importing any of its modules runs it). What only the book uses lives in the book."""
    graph = module_graph(package)
    packages = {".".join(module_parts(p, package)) for p in package.rglob("__init__.py")}
    importers: dict[str, set[str]] = {}
    for name, edges in graph.items():
        for module in edges:
            importers.setdefault(module, set()).add(name)
    return sorted(
        module
        for module, names in importers.items()
        if module not in packages
        and layer(module.split(".")) != "book"
        and all(layer(n.split(".")) == "book" for n in names)
    )


def test_what_only_the_book_imports_lives_in_the_book():
    assert book_only_modules() == []


@pytest.mark.parametrize(
    ("files", "found"),
    [
        ({"schedules/lecture.py": "", "book/decays.py": "from ..schedules import lecture\n"},
         ["descentlab.schedules.lecture"]),
        ({"report/outputs.py": "", "book/build.py": "from descentlab.report import outputs\n",
          "report/html.py": "from descentlab.report.outputs import render\n"}, []),
        ({"engine/run.py": "", "book/x.py": "from descentlab.engine import run\n",
          "cli/train.py": "def f():\n    from descentlab.engine.run import train\n"}, []),
    ],
)  # fmt: skip
def test_the_book_only_check_finds_a_module_only_the_book_imports(tmp_path, files, found):
    for name, source in {"__init__.py": "", **files}.items():
        path = tmp_path / "descentlab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    assert book_only_modules(tmp_path / "descentlab") == found


def test_the_core_schedules_export_no_lecture_names():
    """The lectures' own forms of the decays live in the book; the library has the field's."""
    from descentlab import schedules
    from descentlab.book import decays

    assert set(schedules.__all__).isdisjoint(decays.__all__)
    assert "inverse_time_decay" in schedules.__all__ and "step" in schedules.__all__


def teaching_modules_outside_the_book(package: Path = PACKAGE) -> list[str]:
    """Modules outside the book (and the CLI's ``lectures`` command) named for the lectures:
    what teaches lives in ``descentlab.book``."""
    out = []
    for path in sorted(package.rglob("*.py")):
        parts = module_parts(path, package)
        if layer(parts) in ("book", "cli"):
            continue
        if any("lecture" in p for p in parts[1:]):
            out.append(str(path.relative_to(package.parent)))
    return out


def test_what_teaches_lives_in_the_book():
    """On main before the move: experiments/lectures/, report/lecture_book.py,
    report/lecture_figures.py and schedules/lectures.py."""
    assert teaching_modules_outside_the_book() == []


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("experiments/lectures/momentum.py", True),
        ("report/lecture_book.py", True),
        ("schedules/lectures.py", True),
        ("book/experiments/momentum.py", False),
        ("cli/lectures.py", False),
    ],
)
def test_the_teaching_check_finds_a_lecture_module(tmp_path, name, found):
    path = tmp_path / "descentlab" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x = 1\n")
    assert bool(teaching_modules_outside_the_book(tmp_path / "descentlab")) is found
