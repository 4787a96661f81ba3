"""The key of a cached experiment result covers everything the experiment imports: derived
from its imports, it changes with an edit of any module the experiment can import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from descentlab.book import experiments as lectures
from descentlab.book import imports, model

ROOT = imports.ROOT


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of ``src/descentlab`` (sources only) to edit."""
    dest = tmp_path_factory.mktemp("src") / "descentlab"
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns("__pycache__", "*.so", "static"))
    return dest


def _mod(name: str) -> str:
    return f"descentlab.book.experiments.{name}"


def test_every_module_an_experiment_imports_changes_its_key(tree):
    # table: every file in any experiment's import graph, edited in turn; the key of an
    # experiment that imports it changes; for an experiment's own module, another's stays
    graphs = {n: imports.closure(_mod(n), tree) for n in lectures.NAMES}
    keys = {n: imports.files_hash(g, tree) for n, g in graphs.items()}
    every = sorted({f for g in graphs.values() for f in g})
    assert len(every) > 100  # optim, schedules, engine, problems, the experiments ...
    for f in every:
        users = [n for n, g in graphs.items() if f in g]
        others = [n for n in lectures.NAMES if n not in users]
        before = f.read_bytes()
        f.write_bytes(before + b"\n# edited\n")
        try:
            own = f.parent.name == "experiments" and f.parent.parent.name == "book"
            for n in users[:1] + others[:1] * own:
                changed = imports.source_hash(_mod(n), tree) != keys[n]
                assert changed == (n in users), (str(f.relative_to(tree)), n)
        finally:
            f.write_bytes(before)


def test_the_project_minibatch_edit_changes_the_minibatch_key(tree):
    # book/experiments/minibatch.py was outside the hand-kept list: its edit kept the key
    f = tree / "book" / "experiments" / "minibatch.py"
    before = f.read_text(encoding="utf-8")
    key = imports.source_hash(_mod("minibatch"), tree)
    assert "gb = counts @ G / b" in before
    f.write_text(before.replace("gb = counts @ G / b", "gb = counts @ G / (b + 1)"), "utf-8")
    try:
        assert imports.source_hash(_mod("minibatch"), tree) != key
        # and only minibatch's: another experiment's saved result stays valid
        assert imports.source_hash(_mod("information"), tree) == imports.source_hash(
            _mod("information"), ROOT
        )
    finally:
        f.write_text(before, "utf-8")


def test_a_new_import_enters_the_key(tree):
    f = tree / "book" / "experiments" / "information.py"
    before = f.read_text(encoding="utf-8")
    assert tree / "playground" / "__init__.py" not in imports.closure(_mod("information"), tree)
    f.write_text(before + "\n\ndef _late():\n    from descentlab import playground\n", "utf-8")
    try:
        assert tree / "playground" / "__init__.py" in imports.closure(_mod("information"), tree)
    finally:
        f.write_text(before, "utf-8")


def test_a_saved_result_is_not_reused_after_its_module_changes(tree, monkeypatch, tmp_path):
    # end to end through the book's cache: save, edit the experiment's module, not reused
    monkeypatch.setattr(imports, "ROOT", tree)
    model.code_hash.cache_clear()
    try:
        data = tmp_path / "data"
        model.run_and_save("information", True, str(data))
        ctx = model.Context(True, data, lambda m: None)
        assert ctx.saved("information") is not None
        f = tree / "book" / "experiments" / "_common.py"
        before = f.read_bytes()
        f.write_bytes(before + b"\n# edited\n")
        model.code_hash.cache_clear()
        try:
            assert ctx.saved("information") is None
        finally:
            f.write_bytes(before)
    finally:
        model.code_hash.cache_clear()


def test_bad_start_is_refused():
    with pytest.raises(ValueError, match=r"start must be a module of descentlab .*'numpy'"):
        imports.closure("numpy")


_LOADED = """
import json, sys
from descentlab.book import experiments as lectures
for name in sys.argv[1:]:
    lectures.run(name, quick=True)
print(json.dumps(sorted(m.__file__ for k, m in list(sys.modules.items())
                        if k.startswith("descentlab") and getattr(m, "__file__", None))))
"""


@pytest.mark.process
@pytest.mark.parametrize("name", ["information"])
def test_what_a_run_imports_is_inside_its_key(name):
    # the independent reference: the modules a fresh process has loaded after running the
    # experiment are all in the graph read from the source
    out = subprocess.run(
        [sys.executable, "-c", _LOADED, name],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    loaded = {Path(p).resolve() for p in json.loads(out.stdout.strip().splitlines()[-1])}
    graph = set(imports.closure(_mod(name)))
    assert loaded - graph <= {ROOT / "book" / "imports.py"}, sorted(loaded - graph)
