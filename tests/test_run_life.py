"""One run life in the engine: the shared pieces of a run are public names of the module they
belong to (no private name imported from an engine module), a resume is written to a run's
record by one function, what a run writes goes through one writer interface (two
implementations), and every run of one model is trained through one function."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest
from _source import parsed

SRC = Path(__file__).resolve().parents[1] / "src" / "descentlab"


#: ``from descentlab.engine... import a, b`` or ``import (a, b)`` (the names in group 2)
_IMPORT = re.compile(r"from (descentlab\.engine[\w.]*) import (\([^)]*\)|[^\n]*)")


@functools.cache
def _tree(path: Path) -> ast.Module:
    return parsed(path)


def _private_engine_imports(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for module, names in _IMPORT.findall(path.read_text(encoding="utf-8")):
            for name in re.findall(r"\b(\w+)\b(?:\s+as\s+\w+)?", names.split("#")[0]):
                if name.startswith("_") and name != "as":
                    found.append(f"{path.relative_to(root)}: {module}.{name}")
    return found


def _functions_calling(root: Path, method: str, keyword: str | None = None) -> set[str]:
    """``module.function`` of every function under ``root`` that calls ``<x>.method(...)``
    (with ``keyword`` among its keywords, where given)."""
    out = set()
    for path in sorted(root.rglob("*.py")):
        for fn in ast.walk(_tree(path)):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == method
                    and (keyword is None or any(k.arg == keyword for k in node.keywords))
                ):
                    out.add(f"{path.stem}.{fn.name}")
    return out


def test_no_private_name_is_imported_from_an_engine_module(tmp_path):
    assert _private_engine_imports(SRC) == []
    # the check can fail: a module that imports a private engine name is named
    bad = tmp_path / "bad.py"
    bad.write_text("from descentlab.engine.run import _hidden, live\n")
    assert _private_engine_imports(tmp_path) == ["bad.py: descentlab.engine.run._hidden"]


def test_a_resume_is_written_to_its_record_by_one_function():
    """The run set running again, its metrics cut back, the resume in its provenance: one
    function for one process's run and a sharded one (the user's code's kind cuts its own
    reports, which its checkpoint holds)."""
    cutters = _functions_calling(SRC / "engine", "truncate_metrics")
    assert cutters == {"resuming.begin_resume"}
    assert _functions_calling(SRC / "engine", "update_provenance") == {"resuming.begin_resume"}


def _methods(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> set[str]:
    """The methods class ``node`` defines or inherits from ``classes`` (its module's)."""
    own = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            own |= _methods(classes[base.id], classes)
    return own


def _implementations(root: Path, protocol: set[str]) -> set[str]:
    """``module.Class`` of every class under ``root`` that defines every method of
    ``protocol`` (its own, or a base's of the same module)."""
    out = set()
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if not all(f"def {m}(" in text for m in protocol):
            continue
        classes = {n.name: n for n in ast.walk(_tree(path)) if isinstance(n, ast.ClassDef)}

        out |= {
            f"{path.stem}.{name}" for name, n in classes.items() if protocol <= _methods(n, classes)
        }
    return out


def test_the_run_writer_has_two_implementations(tmp_path):
    from descentlab.store import RunWriter, Store

    protocol = {n for n in vars(RunWriter) if not n.startswith("_")}
    assert protocol == {"transaction", "log_metrics", "set_status", "add_artifact", "artifacts",
                        "close"}  # fmt: skip
    found = _implementations(SRC, protocol) - {"store.RunWriter"}
    assert found == {"store.Store", "launch.ToLauncher"}
    with Store(tmp_path / "lab.sqlite") as store:
        assert isinstance(store, RunWriter)
    # the loop writes through it (what it is given: a store, or the stream to the launcher)
    assert "self.store: RunWriter | None" in (SRC / "engine" / "loop.py").read_text()


def test_every_run_is_trained_through_live():
    """The loop of a run is run by :func:`descentlab.engine.run.live` alone: a vectorized
    pass's, and the passes pruned at rungs too (each pass held at a rung by ``live(...,
    hold=True)``)."""
    runners = _functions_calling(SRC / "engine", "run", keyword="until")
    assert runners == {"run.live"}


@pytest.fixture
def lives(monkeypatch):
    import descentlab.engine.run as run
    import descentlab.engine.vectorized as vectorized

    calls = []
    real = run.live

    def counted(*args, **kwargs):
        calls.append(list(args[3]))
        return real(*args, **kwargs)

    for module in (run, vectorized):
        monkeypatch.setattr(module, "live", counted)
    return calls


def test_train_resume_and_train_many_go_through_live(lives, tmp_path):
    from descentlab.engine import RunConfig, resume, train, train_many
    from descentlab.store import Store

    cfg = RunConfig(problem="moons", problem_options={"n_samples": 64}, model="logistic",
                    optimizer="sgd", hyper={"lr": 0.1}, steps=6, evaluate_test=False)  # fmt: skip
    with Store(tmp_path / "lab.sqlite") as store:
        paused = train(cfg, store, until_step=3, progress=False)
        resume(paused.run_id, store, progress=False)
        train_many([cfg.replace(seed=1)], store, mode="sequential", progress=False)
    assert lives == [[1], [1], [2]]  # (a vectorized pass: the ast test above)
