"""A trial's life reads in a few modules named for their purpose (docs/layout.md).

- No module of ``experiments/`` is over 900 lines, and ``trials.py`` (1,477 lines with nine
  jobs before the split) is gone.
- Worker processes are started in two library modules, by one function each: the one pool
  (trials, ``train_many``, the book's build) and the ranks of ``--nproc``. Only the parent
  process writes the main store: no worker is told where it is, and a worker that opens it for
  writing, or a forked copy of a store that writes, is refused.
- Modules are named for what they do: no module outside the Ray backend imports a module
  named after Ray; the one place that chooses a runner (``experiments/runners.py``) imports
  the Ray backend only where Ray was chosen, inside that function.
"""

from __future__ import annotations

import ast
import importlib.util
import pickle
from pathlib import Path
from typing import Any

import pytest
from _source import parsed
from test_layers import PACKAGE, module_graph

#: the modules of the Ray backend (a module named after Ray, ``ray_*``, is one)
RAY = "descentlab.experiments.ray_"

#: who may import the Ray backend, and only inside a function (the choice of runner)
CHOOSER = "descentlab.experiments.runners"


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
    for node in parsed(path).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_no_module_outside_the_ray_backend_imports_it_but_the_choice_of_runner():
    found = ray_importers()
    assert set(found) <= {CHOOSER}, found
    chooser = PACKAGE / "experiments" / "runners.py"
    assert not {m for m in top_level_imports(chooser) if m.startswith(RAY)}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"experiments/trials.py": "from descentlab.experiments import ray_resume\n"},
         {"descentlab.experiments.trials"}),
        ({"cli/x.py": "def f():\n    from descentlab.experiments.ray_runner import g\n"},
         {"descentlab.cli.x"}),
        ({"experiments/ray_runner.py": "from descentlab.experiments import ray_resume\n"},
         set()),
        ({"experiments/runner.py": "from descentlab.experiments import resume\n"}, set()),
    ],
)  # fmt: skip
def test_the_check_finds_an_import_of_the_ray_backend(tmp_path, files, expected):
    root = tmp_path / "descentlab"
    for name, source in {"__init__.py": "", "experiments/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)
    for name in ("ray_resume", "ray_runner", "resume"):
        (root / "experiments" / f"{name}.py").touch()
    assert set(ray_importers(root)) == expected


def test_the_experiments_modules_are_each_at_most_900_lines():
    lines = {
        str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8").count("\n")
        for p in (PACKAGE / "experiments").rglob("*.py")
    }
    assert not (PACKAGE / "experiments" / "trials.py").exists()
    assert max(lines.values()) <= 900, {k: v for k, v in lines.items() if v > 900}


#: a word a module's name may carry only where the thing it names lives: "schedule" is a
#: hyperparameter's schedule (``schedules/``, the book's pages on them, the schedule-free
#: optimizers), "backend" is how an optimizer steps (``optim/``); a module named ``test_*``
#: reads as a test module and is one to pytest
OWNED_WORDS = {"schedul": ("schedules/", "book/", "optim/schedule_free"), "backend": ("optim/",)}


def misnamed(paths: list[str]) -> list[str]:
    """The modules (paths under ``descentlab/``) whose names say something they are not."""
    bad = []
    for path in paths:
        stem = path.rsplit("/", 1)[-1].removesuffix(".py")
        if stem.startswith("test_"):
            bad.append(f"{path}: reads as a test module")
        for word, homes in OWNED_WORDS.items():
            if word in stem and not path.startswith(homes):
                bad.append(f"{path}: {word!r} names what {' and '.join(homes)} hold")
    return bad


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("experiments/scheduling.py", True),   # packs tasks onto workers, beside the lr schedules
        ("experiments/backend.py", True),      # chooses where trials run, beside optim's backends
        ("experiments/ray_backend.py", True),
        ("experiments/test_outcomes.py", True),
        ("engine/schedule_tasks.py", True),
        ("experiments/packing.py", False),
        ("experiments/runners.py", False),
        ("experiments/ray_runner.py", False),
        ("experiments/example_outcomes.py", False),
        ("schedules/scheduler.py", False),
        ("book/chapters/schedules.py", False),
        ("optim/schedule_free.py", False),
        ("optim/backend.py", False),
    ],
)  # fmt: skip
def test_the_name_check_refuses_a_word_used_away_from_its_home(path, refused):
    assert bool(misnamed([path])) is refused


def test_every_module_is_named_for_what_it_does():
    paths = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))
    assert not misnamed(paths), misnamed(paths)


# -- processes: started in at most two library modules, the store written by the parent alone --


def _code_lines() -> Any:
    """scripts/code_lines.py, which counts the modules that start processes."""
    path = PACKAGE.parents[1] / "scripts" / "code_lines.py"
    spec = importlib.util.spec_from_file_location("code_lines", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_processes_are_started_in_two_library_modules():
    """One module starts the worker processes of trials, train_many and the book's build
    (``engine/procpool.py``); the ranks of ``--nproc`` start theirs apart (``engine/ranks.py``).
    Three before (the trial runner started its own)."""
    lines = _code_lines()
    starters = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] != "book"
        and lines.starts_processes(p.read_text(encoding="utf-8"))
    }
    assert starters == {"engine/procpool.py", "engine/ranks.py"}


@pytest.mark.parametrize(
    ("source", "starts"),
    [
        ("import multiprocessing as mp\nmp.get_context('fork').Process(target=f).start()\n", True),
        ("from concurrent.futures import ProcessPoolExecutor\nProcessPoolExecutor(2)\n", True),
        ("import os\nos.fork()\n", True),
        ("import subprocess\nsubprocess.run(['git', 'status'])\n", False),  # a command
        ("import multiprocessing\nmultiprocessing.parent_process()\n", False),
    ],
)
def test_the_count_finds_what_starts_a_process(source, starts):
    assert _code_lines().starts_processes(source) is starts


def process_starters(package: Path = PACKAGE) -> set[tuple[str, str]]:
    """``(module, function)`` for each function or method of the library (the book too) that
    calls what starts a worker process (``scripts/code_lines.py``'s calls)."""
    names = set(_code_lines().STARTERS)
    found = set()
    for path in package.rglob("*.py"):
        tree = parsed(path)
        for parent in ast.walk(tree):
            for node in ast.iter_child_nodes(parent):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                owner = f"{parent.name}." if isinstance(parent, ast.ClassDef) else ""
                calls = {
                    getattr(c.func, "id", getattr(c.func, "attr", ""))
                    for c in ast.walk(node)
                    if isinstance(c, ast.Call)
                }
                if calls & names:
                    found.add((str(path.relative_to(package)), owner + node.name))
    return found


def test_one_pool_starts_the_worker_processes():
    """One place creates, feeds, collects from and stops worker processes: the pool that a
    comparison's trials, ``train_many`` and the book's build queue their work on; the ranks of
    ``--nproc`` start theirs apart. Before, the trial runner's workers (``start_workers``) and
    ``train_many``'s executor (``_spawn_pool``) were two pools."""
    assert process_starters() == {
        ("engine/procpool.py", "WorkerPool._spawn"),  # (at the start, or for one that died)
        ("engine/ranks.py", "_Ranks.__init__"),
    }


def test_the_pool_count_finds_a_second_pool(tmp_path):
    root = tmp_path / "descentlab"
    (root / "engine").mkdir(parents=True)
    (root / "engine" / "a.py").write_text(
        "class P:\n    def __init__(self):\n        ctx.Process(target=f).start()\n"
        "def other():\n    return ProcessPoolExecutor(2)\n"
        "def fine():\n    subprocess.run(['git'])\n"
    )
    assert process_starters(root) == {("engine/a.py", "P.__init__"), ("engine/a.py", "other")}


def open_store(path: str, how: str) -> str:
    """In a worker of the pool: open the store at ``path`` (``how``: for writing, in memory,
    or to read it) and write a run where it may."""
    from descentlab.store import Store

    options = {"write": {}, "memory": {"durable": False}, "read": {"read_only": True}}[how]
    with Store(path, **options) as store:
        if how != "read":
            store.create_run({"a": 1}, name="x")
        return f"{len(store.list_runs())} run"


@pytest.mark.process
@pytest.mark.parametrize(
    ("how", "refused"), [("write", True), ("memory", False), ("read", False)]
)  # fmt: skip
def test_a_worker_cannot_open_the_store_for_writing(tmp_path, how, refused):
    """Only the parent process writes the store: a real worker of the pool that opens it for
    writing is refused with one line (a scratch store in its memory it may write, the store
    it may read); the store is unchanged."""
    from descentlab.engine.procpool import map_in_processes
    from descentlab.store import Store, StoreError

    path = tmp_path / "lab.sqlite"
    with Store(path) as store:
        store.create_run({}, name="parent")
    (future,) = map_in_processes(open_store, [(str(path), how)], workers=1)
    if refused:
        exc = future.exception()
        assert isinstance(exc, StoreError), exc
        assert str(exc) == (
            f"store {path} cannot be written by a worker process: the process that opened it "
            "(that started the workers) is its one writer; a worker sends its runs there"
        )
    else:
        assert future.result() == "1 run"
    with Store(path) as store:
        assert [r.name for r in store.list_runs()] == ["parent"]


class Unpicklable(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.held = lambda: None  # (cannot be pickled)


def unsendable(how: str) -> Any:
    if how == "raise":
        raise Unpicklable("boom")
    return lambda: None


@pytest.mark.process
def test_what_a_worker_cannot_send_back_comes_back_as_an_error():
    """A task's value or exception that cannot be pickled comes back as an error (the queue's
    feeder thread would drop it, and the pool wait for ever); an exception keeps its text."""
    from descentlab.engine.procpool import map_in_processes

    returned, raised = map_in_processes(unsendable, [("return",), ("raise",)], workers=1)
    assert isinstance(returned.exception(), RuntimeError)
    assert "what the task sent cannot be pickled" in str(returned.exception())
    assert isinstance(raised.exception(), RuntimeError)
    assert "Unpicklable: boom" in str(raised.exception())


def write_through(store: Any) -> None:
    store.create_run({}, name="child")


@pytest.mark.process
def test_a_forked_copy_of_the_store_cannot_write(tmp_path):
    """A process forked from the writer holds a copy of its store: a write through it is
    refused (its connection would be the child's own, a second writer)."""
    import multiprocessing

    from descentlab.store import Store, StoreError

    store = Store(tmp_path / "lab.sqlite")
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()

    def child() -> None:
        try:
            write_through(store)
            errors.put("written")
        except StoreError as exc:
            errors.put(str(exc))

    proc = ctx.Process(target=child)
    proc.start()
    said = errors.get(timeout=60)
    proc.join(60)
    assert said == (
        f"store {store.path} cannot be written by process {proc.pid} (a copy of it): the "
        "process that opened it (that started the workers) is its one writer; a worker sends "
        "its runs there"
    )
    write_through(store)  # the writer itself writes
    assert [r.name for r in store.list_runs()] == ["child"]
    store.close()


def _spied_pool(sent: list[bytes]) -> Any:
    """The pool, what it is given recorded in ``sent``, pickled: each start's arguments, each
    task."""
    from descentlab.engine.procpool import WorkerPool

    class Spied(WorkerPool):
        def __init__(self, count: int, setup: Any = None, args: tuple[Any, ...] = (), **kw: Any):
            if setup is not None:
                sent.append(pickle.dumps((setup, args)))
            super().__init__(count, setup, args, **kw)

        def put(self, key: Any, fn: Any, *args: Any) -> None:
            sent.append(pickle.dumps((fn, args)))
            super().put(key, fn, *args)

    return Spied


@pytest.mark.process
def test_train_many_workers_are_never_told_where_the_store_is(tmp_path, monkeypatch):
    """The process that called ``train_many`` writes its store alone: each worker trains
    against a scratch store and sends the run back (before, each opened the same SQLite file),
    so no worker can open the store -- nothing sent to one names it. The runs are the
    sequential ones, recorded in the store."""
    from descentlab.engine import procpool
    from descentlab.engine.config import RunConfig
    from descentlab.engine.multirun import train_many
    from descentlab.engine.run import train
    from descentlab.store import Store

    sent: list[bytes] = []
    monkeypatch.setattr(procpool, "WorkerPool", _spied_pool(sent))
    store = Store(tmp_path / "lab.sqlite")
    base = RunConfig(problem="moons", problem_options={"n_samples": 120}, model="linear",
                     optimizer="sgd", hyper={"lr": 0.2}, batch_size=16, steps=8, eval_every=4,
                     checkpoint_every=4)  # fmt: skip
    runs = [{"seed": 0}, {"seed": 1}]
    got = train_many(base, store, overrides=runs, mode="processes", workers=1, progress=False)
    assert len(sent) == 2 and not any(str(tmp_path).encode() in s for s in sent)
    for g, seed in zip(got, (0, 1), strict=True):
        ref = train(base.replace(seed=seed, checkpoint_every=None), progress=False)
        assert store.get_run(g.run_id).status == "completed"
        assert (
            store.metrics(g.run_id)["val/loss"].values.tolist()
            == ref.metrics["val/loss"].values.tolist()
        )
        if g.checkpoint_path is not None:  # (its file placed beside the store by this process)
            assert g.checkpoint_path.parent == tmp_path / "checkpoints"
    store.close()


@pytest.mark.process
def test_the_trial_runner_workers_are_never_told_where_the_store_is(tmp_path, monkeypatch):
    """A comparison's workers are told where running trials' checkpoints are kept, never
    where the store is: the runner's process imports their runs, the store's one writer."""
    from descentlab.engine import procpool
    from descentlab.engine.config import RunConfig
    from descentlab.experiments.runner import TrialRunner
    from descentlab.experiments.trial import DataSource, Trial

    told: list[bytes] = []
    monkeypatch.setattr(procpool, "WorkerPool", _spied_pool(told))
    cfg = RunConfig(problem="moons", model="logistic", optimizer="sgd", hyper={"lr": 0.5},
                    steps=5, evaluate_test=False, name="tune/sgd")  # fmt: skip
    path = tmp_path / "lab.sqlite"
    with TrialRunner(path, DataSource("moons", {"n_samples": 100}), workers=2) as runner:
        runner.submit(Trial("tune", "sgd", cfg, "holdout"))
        outcome = runner.next_outcome()
    assert outcome.status == "completed" and outcome.run_id is not None
    assert len(told) == 2  # the workers' start, one task
    assert not any(str(path).encode() in t for t in told)


@pytest.mark.process
def test_a_task_a_worker_cannot_receive_is_refused_where_it_is_queued():
    """A task that cannot be pickled is refused in one line by ``put``, where it is queued
    (before, the queue's feeder thread dropped it with a traceback and the caller waited for
    its answer for ever); the pool goes on with the tasks it can send."""
    from concurrent.futures import ThreadPoolExecutor

    from descentlab.engine.procpool import WorkerPool

    pool = WorkerPool(1, fork=True)
    try:
        with pytest.raises(ValueError) as err:
            pool.put("bad", divmod, lambda: 0, 1)
        line = str(err.value)
        assert "\n" not in line and "'bad'" in line and "cannot be sent" in line, line
        pool.put("good", divmod, 7, 2)
        with ThreadPoolExecutor(1) as ex:  # (a dropped task would make this wait for ever)
            message = ex.submit(pool.get).result(timeout=60)
        assert message[:3] == ("done", "good", (3, 1)), message
    finally:
        pool.close(abort=True)
