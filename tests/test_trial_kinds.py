"""A trial's kind as a type (``descentlab.experiments.kinds``): no branch on "is this the
user's own code" outside the kinds' modules, the user's-code kind in modules of one purpose
each, and a third kind that trains through ``compare`` from its own module and a registration.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import pytest

from descentlab.experiments import kinds
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.kinds import TrialKind, kind_of

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "descentlab"


def _script():
    spec = importlib.util.spec_from_file_location(
        "kind_branches", ROOT / "scripts" / "kind_branches.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_module_outside_the_kinds_branches_on_the_objective():
    # 37 branches in 15 files before the kinds (scripts/kind_branches.py)
    assert _script().branches(PACKAGE) == []


def test_no_arrow_runs_back_up_inside_experiments():
    # 2 of 40 ran back up: the kinds imported the comparison (compare/earlier.py, its
    # protocol's words) and the execution (store_monitor, store_test_outcomes)
    script = _script()
    assert script.back_up(PACKAGE) == []
    assert not [a for a in script.arrows(PACKAGE) if a[0] == "kinds"
                and a[1] in ("compare", "execution", "runner", "resume")]  # fmt: skip


def test_the_comparison_asks_the_kind_rather_than_branching_on_its_flags():
    # 22 branches on a kind's yes/no answers in 11 files (14 on own_metric)
    found = _script().flag_branches(PACKAGE)
    assert len(found) <= 5, found


def test_the_arrows_see_an_import_inside_a_function(tmp_path):
    (tmp_path / "experiments" / "kinds").mkdir(parents=True)
    (tmp_path / "experiments" / "kinds" / "k.py").write_text(
        "def f():\n    from descentlab.experiments.execution import g\n"
    )
    (tmp_path / "experiments" / "execution.py").write_text(
        "from descentlab.experiments import kinds\n"
    )
    assert _script().back_up(tmp_path) == [("execution", "kinds"), ("kinds", "execution")]


@pytest.mark.parametrize(
    ("source", "branches"),
    [
        ("if spec.objective:\n    pass\n", 1),
        ("x = a if objective is None else b\n", 1),
        ("alone = objective is not None or spec.objective is not None\n", 1),
        ("y = [r for r in rows if r.get('objective')]\n", 1),
        ("if kind.own_metric:\n    pass\n", 0),  # what the kind answers: not a branch on it
        ("said = provenance['objective']\n", 0),
    ],
)
def test_the_branch_count_sees_each_form_of_branch(tmp_path, source, branches):
    (tmp_path / "m.py").write_text(source)
    assert len(_script().branches(tmp_path)) == branches


def test_the_users_code_is_modules_of_one_purpose_each():
    # experiments/objective.py was 843 lines: the handle, the execution, the identity and the
    # comparison's glue in one
    modules = [
        *(PACKAGE / "experiments" / "kinds").glob("*.py"),
        PACKAGE / "experiments" / "objective.py",
    ]
    lines = {p.name: p.read_text().count("\n") for p in modules}
    assert {"code_run.py", "code_trial.py", "code_identity.py", "code.py", "engine.py"} <= set(
        lines
    )
    assert max(lines.values()) <= 400, lines
    # the earlier-run lookup of a comparison without an objective is the comparison's
    from descentlab.experiments import earlier

    assert hasattr(earlier, "name_earlier_problem")
    for path in modules:
        assert "def name_earlier_problem" not in path.read_text()


def test_objective_names_only_the_users_code_in_the_engine():
    # the engine's averaged training loss (train/objective in the store) is not called so
    for name in ("loop.py", "run.py", "launch.py", "vectorized.py"):
        text = (PACKAGE / "engine" / name).read_text()
        assert "objective_sum" not in text and "def _objective" not in text, name


class Toy(TrialKind):
    """A third kind: a closed-form "training" whose loss is least at lr 0.01."""

    own_metric = own_problem = True

    def resolve(self, plan, given, data, workers):
        import dataclasses

        spec = dataclasses.replace(plan.spec, batch_size=None, target_accuracy=None)
        return spec.plan(custom_data=True, checked=plan), self, False

    def owns_data(self, spec):
        return True

    def name_earlier(self, run_dir, spec):
        return None

    def direction(self, spec):
        return False, "toy_loss"

    def learned(self, store, outcome):
        return False, "toy_loss"

    def metric_name(self, spec, provenance):
        return "toy_loss"

    def training_words(self, spec):
        return "training: a toy"

    def train(self, store, source, trial, checkpoint_every, after, nproc):
        cfg = trial.config
        run_id = store.create_run(trial.record_config(), name=cfg.name, seed=cfg.seed)
        split = "test" if trial.phase == "refit" else "val"
        value = (math.log10(cfg.hyper["lr"]) + 2) ** 2 + 0.001 * cfg.seed
        rows = [(cfg.steps, split, "loss", value)]
        if trial.monitored:  # (the optimizer's statistics a monitored trial records)
            rows.append((cfg.steps, "monitor", "update_ratio", 0.0))
        store.log_metrics(run_id, rows)
        summary = {"steps": cfg.steps, f"{split}/loss": value}
        store.set_status(run_id, "completed", summary=summary)
        return types.SimpleNamespace(run_id=run_id, status="completed", summary=summary)


@pytest.fixture
def toy_kind(monkeypatch):
    module = types.ModuleType("toy_kind")
    module.KIND = Toy()
    monkeypatch.setitem(sys.modules, "toy_kind", module)
    monkeypatch.setattr(kinds, "FORMS", dict(kinds.FORMS))
    monkeypatch.setattr(kinds, "_MODULES", dict(kinds._MODULES))
    monkeypatch.setattr(kinds, "FLAGS", dict(kinds.FLAGS))
    kinds.register("toy_kind", {"toy": kinds.Flag("--toy", "a toy's closed form", metavar="NAME")})
    return module.KIND


def test_a_third_kind_trains_through_compare_from_its_module_and_a_registration(tmp_path, toy_kind):
    spec = CompareSpec(problem="toy", objective={"form": "toy", "ref": "toy"},
                       optimizers=["sgd", "adam"], steps=20, tune_steps=10,
                       lrs_per_optimizer=3, seeds=2, landscapes=())  # fmt: skip
    assert kind_of(spec) is toy_kind
    result = compare(spec, tmp_path, workers=1, progress=False)
    assert result.complete and result.metric_name == "toy_loss"
    assert [r.label for r in result.results] == ["sgd", "adam"]
    assert "training: a toy" in result.protocol()


def test_a_third_kind_is_reachable_from_the_command_line(tmp_path, toy_kind, capsys):
    # `descentlab compare --external jaxlike.py:train` exited 2 ("unrecognized arguments"):
    # the command line mapped its flags to the kinds by hand
    from _models import run_cli

    code, out, err = run_cli(["compare", "--help"], capsys)
    assert code == 0 and "--toy NAME" in out and "a toy's closed form (docs/kinds.md)" in out
    argv = ["compare", "--toy", "toy", "--optimizers", "sgd,adam", "--steps", "20",
            "--tune-steps", "10", "--budget", "3", "--seeds", "2", "--landscapes",
            "none", "--workers", "1", "--runs-dir", tmp_path, "--json"]  # fmt: skip
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "toy_loss" in out
    code, out, err = run_cli(["compare", "--toy", "toy", "--metric", "m"], capsys)
    assert code == 2 and "--metric m: --toy takes no --metric" in err


def test_a_kind_of_its_own_package_registers_through_an_entry_point(tmp_path, monkeypatch):
    # pytest's and MkDocs' plugins: a package names its module in an entry-point group
    # (its distribution's entry_points.txt, as pip installs it)
    info = tmp_path / "plugged_kind-1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text(
        "[console_scripts]\nx = plugged_kind:main\n\n[descentlab.kinds]\nplugged = plugged_kind\n"
    )
    (tmp_path / "plugged_kind.py").write_text(
        "from descentlab.experiments.kinds import register\n"
        "from tests_toy import Toy\n"
        "KIND = Toy()\n"
        "register(__name__, {'plugged': '--plugged'})\n"
    )
    monkeypatch.setitem(sys.modules, "tests_toy", types.SimpleNamespace(Toy=Toy))
    monkeypatch.delitem(sys.modules, "plugged_kind", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("FORMS", "FLAGS", "_MODULES"):
        monkeypatch.setattr(kinds, name, dict(getattr(kinds, name)))
    monkeypatch.setattr(kinds, "_PLUGINS", [])
    assert kinds.plugged() == ["plugged_kind"]
    kind = kind_of(CompareSpec(objective={"form": "plugged", "ref": "x"}))
    assert isinstance(kind, Toy) and kinds.forms()["plugged"].flag == "--plugged"


@pytest.mark.parametrize(
    ("objective", "kind"),
    [
        (None, "EngineRun"),
        ({"form": "function", "ref": "a.py:f"}, "UserCode"),
        ({"form": "lightning", "ref": "a.py:f"}, "UserCode"),
    ],
)
def test_a_spec_names_its_kind(objective, kind):
    assert type(kind_of(CompareSpec(objective=objective))).__name__ == kind


@pytest.mark.parametrize("record", ["function", {"ref": "a.py:f"}, {"form": None}, {"form": "jax"}])
def test_an_unknown_kind_is_refused_in_one_line(record):
    with pytest.raises(ValueError, match=r"^objective must be a dict with form one of \["):
        kind_of(CompareSpec(objective=record))


class _Resumable(Toy):
    """A kind that says what it was asked to continue; its first continuation's checkpoint is
    corrupted."""

    def __init__(self):
        self.asked = []

    def train(self, store, source, trial, checkpoint_every, after, nproc, resume=None,
              restart=False):  # fmt: skip
        from descentlab.engine.checkpoint import CheckpointError

        self.asked.append((resume, restart))
        if resume is not None and not restart:
            raise CheckpointError(f"checkpoint run-{resume}.pt is corrupted")
        run_id = resume or store.create_run(trial.record_config(), name="t", seed=0)
        store.set_status(run_id, "completed", summary={"toy_loss": 1.0})
        return types.SimpleNamespace(run_id=run_id, status="completed", summary={})


@pytest.mark.parametrize(
    ("kept", "asked", "warned"),
    [
        (False, [(None, False)], False),  # nothing kept: from the start, never a lookup
        (True, [("id", False), ("id", True)], True),  # kept, its checkpoint bad: step 0
    ],
)
def test_resume_is_written_once_for_every_kind(tmp_path, kept, asked, warned, recwarn):
    # the kinds' modules continued a stopped trial themselves, each its own way (a lookup by
    # config and a bad checkpoint's handling in each); the execution now hands a kind the run
    # to continue and sets a bad checkpoint aside for it
    from descentlab.engine.config import RunConfig
    from descentlab.experiments.execution import execute_group
    from descentlab.experiments.trial import DataSource, Trial
    from descentlab.store import Store

    kind = _Resumable()
    trial = Trial("tune", "sgd", RunConfig(problem="moons", name="t", steps=1), "holdout")
    with Store(tmp_path / "lab.sqlite") as store:
        run_id = store.create_run(trial.record_config(), name="t", seed=0) if kept else None
        if kept:
            store.set_status(run_id, "interrupted")
        (out,) = execute_group(store, DataSource("toy", kind=kind), [trial], resume_ids=[run_id])
    assert kind.asked == [(run_id if a == "id" else a, r) for a, r in asked]
    assert out.status == "completed"
    assert any("set aside" in str(w.message) for w in recwarn) == warned
    for path in (PACKAGE / "experiments" / "kinds").glob("*.py"):
        assert "from descentlab.experiments.resume import" not in path.read_text(), path.name


class _Stepped(Toy):
    """A kind with a checkpoint of its own: it logs each step's loss, keeps its state at step
    1, and is stopped after step 2 the first time."""

    def __init__(self):
        self.kept = None

    def resume_step(self, store, trial, run_id, restart):
        return -1 if restart or self.kept is None else self.kept

    def train(self, store, source, trial, checkpoint_every, after, nproc, resume=None,
              restart=False):  # fmt: skip
        run_id = resume or store.create_run(trial.record_config(), name="t", seed=0)
        first = 1 if resume is None or restart else self.kept + 1
        for step in range(first, 4):
            store.log_metrics(run_id, [(step, "val", "loss", 1.0 / step)])
            self.kept = 1 if step == 1 else self.kept
            if step == 2 and resume is None:
                store.set_status(run_id, "interrupted")
                return types.SimpleNamespace(run_id=run_id, status="interrupted", summary={})
        store.set_status(run_id, "completed", summary={"val/loss": 1 / 3})
        return types.SimpleNamespace(run_id=run_id, status="completed", summary={})


def test_the_execution_writes_the_resume_of_a_kind_that_keeps_a_checkpoint(tmp_path):
    # a stopped trial of a third kind handed back failed: "metric val/loss at step 2 is
    # already recorded ... truncate_metrics first" (each kind wrote its own resume records)
    from descentlab.engine.config import RunConfig
    from descentlab.experiments.execution import execute_group
    from descentlab.experiments.trial import DataSource, Trial
    from descentlab.store import Store

    kind = _Stepped()
    trial = Trial("tune", "sgd", RunConfig(problem="moons", name="t", steps=3), "holdout")
    with Store(tmp_path / "lab.sqlite") as store:
        source = DataSource("toy", kind=kind)
        (stopped,) = execute_group(store, source, [trial])
        assert stopped.status == "interrupted"
        (out,) = execute_group(store, source, [trial], resume_ids=[stopped.run_id])
        assert out.status == "completed" and out.run_id == stopped.run_id
        series = store.metrics(stopped.run_id)["val/loss"]
        record = store.get_run(stopped.run_id)
    assert list(series.steps) == [1, 2, 3] and list(series.values) == [1.0, 0.5, 1 / 3]
    assert [r["from_step"] for r in record.provenance["resumes"]] == [1]
