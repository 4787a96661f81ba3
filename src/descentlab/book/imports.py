"""What a computation imports, read from its source: the key of a cached result.

A lecture experiment's saved result is reused only when its key matches; the key's code part
is a hash of every file of ``src/descentlab`` the experiment's module can import, found by
walking the import graph from that module (its ``import`` and ``from ... import`` statements,
those inside functions too; relative ones resolved; a package's ``__init__`` with every
import of a package; a name a package loads at first use (``_lazy.exports``) counted as an
import of its submodule; a string naming a ``descentlab`` module, as ``importlib`` is given,
counted as an import of it). Nothing is listed by hand: a new module an experiment starts
importing is in its key from then on. Native sources and data files (``.cpp``, ``.c``,
``.h``, ``.json``) in the folder of an imported module are hashed with it (the kernels built
from them, the targets read from them).

The graph is a superset of what a run imports (a branch not taken still counts), so an edit
never leaves a stale result; an edit outside the graph (the playground, the CLI) never
reruns an experiment.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import re
from pathlib import Path

__all__ = ["ROOT", "closure", "files_hash", "module_path", "source_hash"]

#: ``src/descentlab``.
ROOT = Path(__file__).resolve().parents[1]
_PACKAGE = "descentlab"
_DATA = (".cpp", ".c", ".h", ".json")
_NAMED = re.compile(r"descentlab(?:\.[A-Za-z_]\w*)+")


def module_path(name: str, root: Path | None = None) -> Path | None:
    """The file of module ``name`` (``descentlab.x.y``) under ``root``: ``x/y.py`` or
    ``x/y/__init__.py``; None when it is not a module of the package."""
    parts = name.split(".")
    if parts[0] != _PACKAGE:
        return None
    base = (root or ROOT).joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _index(root: Path) -> dict[str, Path]:
    """Every module under ``root`` (a package's folder): its dotted name -> its file."""
    out: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__pycache__"))]
        rel = Path(folder).relative_to(root).parts
        for f in files:
            if f.endswith(".py"):
                stem = f[:-3]
                parts = [_PACKAGE, *rel] + ([] if stem == "__init__" else [stem])
                out[".".join(parts)] = Path(folder) / f
    return out


def _parents(name: str) -> list[str]:
    """``descentlab.a.b`` -> ``descentlab``, ``descentlab.a``, ``descentlab.a.b``: importing a
    module runs every package ``__init__`` above it."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@functools.lru_cache(maxsize=4096)
def _imports(source: bytes, name: str, is_package: bool) -> tuple[str, ...]:
    """The module names the source of module ``name`` can import (candidates: a name that
    is no module is dropped by the caller)."""
    tree = ast.parse(source)
    package = name if is_package else name.rpartition(".")[0]
    found: list[str] = []
    docs: set[int] = set()  # a docstring or a bare string naming a module imports nothing
    for node in ast.walk(tree):  # breadth first: a statement before the string it holds
        if isinstance(node, ast.Expr):
            docs.add(id(node.value))
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.append(mod)
            found += [f"{mod}.{a.name}" for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docs:
                found += [m.group(0) for m in _NAMED.finditer(node.value)]
        elif isinstance(node, ast.Call) and _called(node) == "exports":
            # _lazy.exports(package, {"submodule": (names...)}): each submodule loads at first use
            for arg in node.args[1:]:
                if isinstance(arg, ast.Dict):
                    found += [
                        f"{name}.{k.value}"
                        for k in arg.keys
                        if isinstance(k, ast.Constant) and isinstance(k.value, str)
                    ]
    return tuple(found)


def _called(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def closure(start: str, root: Path | None = None) -> tuple[Path, ...]:
    """Every file of the package module ``start`` can import, directly or through others
    (itself and its packages' ``__init__`` included), with the native sources and data files
    in those modules' folders; sorted.

    Raises:
        ValueError: ``start`` is not a module under ``root``.

    Example:
        >>> files = closure("descentlab.book.experiments.minibatch")
        >>> sorted(str(f.relative_to(ROOT)) for f in files)[:2]
        ['__init__.py', '_announce.py']
    """
    root = root or ROOT
    if module_path(start, root) is None:
        raise ValueError(f"start must be a module of {_PACKAGE} under {root}, got {start!r}")
    index = _index(root)
    seen: dict[str, Path] = {}
    todo = [start]
    while todo:
        name = todo.pop()
        for mod in _parents(name):
            if mod in seen:
                continue
            path = index.get(mod)
            if path is None:  # an attribute imported from a module, not a module
                continue
            seen[mod] = path
            todo += [
                c
                for c in _imports(path.read_bytes(), mod, path.name == "__init__.py")
                if c.split(".")[0] == _PACKAGE and c not in seen
            ]
    files = set(seen.values())
    for folder in {p.parent for p in seen.values()}:
        files.update(f for f in folder.iterdir() if f.suffix in _DATA and f.is_file())
    return tuple(sorted(files))


def files_hash(files: tuple[Path, ...], root: Path | None = None) -> str:
    """SHA-256 over ``files``' paths (relative to ``root``) and bytes, in order."""
    root = root or ROOT
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def source_hash(start: str, root: Path | None = None) -> str:
    """The hash of everything module ``start`` can import (:func:`closure`); ``root``: the
    package's folder (default :data:`ROOT`, read when called)."""
    return files_hash(closure(start, root), root)
