"""The files a user's code is made of, so that a stored result is reused only for the same code.

:func:`user_files` starts from the module that holds a user's function (an objective, a problem
file) and follows its imports to every module that is the user's own -- a ``.py`` file outside
Python's installation, its site-packages and descentlab -- and to the data files their code
names by a string (``"diabetes.csv"``, next to the file or in the working folder; a name with
one of :data:`DATA_SUFFIXES`). Each file is hashed by its bytes. :func:`changed` says which
of them differ between two such records.

What it cannot see: a module imported by a name computed at run time (``importlib`` with a
variable), and a data file whose name is built from parts; docs/compare.md says so.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

__all__ = ["changed", "digest", "user_files"]

#: the suffixes of the files counted as data (a name the code writes, a log or a marker,
#: would otherwise change the identity at every run)
DATA_SUFFIXES = frozenset({
    ".csv", ".tsv", ".txt", ".json", ".jsonl", ".npy", ".npz", ".pt", ".pth", ".pkl",
    ".parquet", ".arrow", ".h5", ".hdf5", ".feather", ".mat", ".bin", ".gz", ".zip", ".bz2",
    ".xz", ".tar", ".yaml", ".yml", ".toml",
})  # fmt: skip
#: a data file larger than this is identified by its size and modification time, not its bytes
_HASHED_BYTES = 256 * 2**20


def _installed() -> tuple[Path, ...]:
    """Where Python's own modules and installed packages live (and descentlab)."""
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    roots = {Path(p).resolve() for k in keys if (p := sysconfig.get_paths().get(k))}
    roots |= {Path(p).resolve() for p in sys.path if "site-packages" in p}
    roots.add(Path(__file__).resolve().parents[1])  # descentlab itself
    return tuple(roots)


def _own(path: Path, installed: tuple[Path, ...]) -> bool:
    return path.suffix == ".py" and not any(path.is_relative_to(r) for r in installed)


def _imported(module: ModuleType, tree: ast.Module) -> list[ModuleType]:
    """The modules ``module``'s source imports, as loaded in ``sys.modules``."""
    package = module.__package__ or ""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".strip(".")
            names += [base] + [f"{base}.{a.name}" for a in node.names]
    return [m for n in names if isinstance(m := sys.modules.get(n), ModuleType)]


def _data_files(tree: ast.Module, folders: tuple[Path, ...]) -> list[Path]:
    """The existing regular files that a string constant of ``tree`` names in ``folders``."""
    out = []
    for node in ast.walk(tree):
        value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
        if not isinstance(value, str) or not 0 < len(value) < 256 or "\n" in value:
            continue
        for folder in folders:
            try:
                path = (folder / value).resolve()
                if path.suffix.lower() in DATA_SUFFIXES and path.is_file():
                    out.append(path)
                    break
            except (OSError, ValueError):
                continue
    return out


def _hash(path: Path) -> str:
    st = path.stat()
    if st.st_size > _HASHED_BYTES:
        return f"size {st.st_size} mtime {st.st_mtime_ns}"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def user_files(module: ModuleType) -> dict[str, str]:
    """``{path: hash}`` of ``module``'s file, every module of the user's own it imports
    (followed through theirs) and the data files their code names; paths relative to
    ``module``'s folder."""
    installed = _installed()
    seen: dict[Path, str] = {}
    todo = [module]
    while todo:
        mod = todo.pop()
        file = getattr(mod, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if path in seen or not _own(path, installed) or not path.is_file():
            continue
        source = path.read_bytes()
        seen[path] = hashlib.sha256(source).hexdigest()[:16]
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        todo += _imported(mod, tree)
        for data in _data_files(tree, (path.parent, Path.cwd())):
            seen.setdefault(data, _hash(data))
    root = Path(module.__file__ or ".").resolve().parent
    return {os.path.relpath(p, root): h for p, h in sorted(seen.items())}


def digest(files: Mapping[str, str]) -> str:
    """One short hash of a :func:`user_files` record."""
    text = "\n".join(f"{k}\t{v}" for k, v in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """The files that differ between two records: changed, added or gone."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
