"""A comparison on the user's own code is identified by all of that code, and says what changed.

- The objective's identity covers its file, every module of the user's own it imports (through
  theirs) and the data files their code names; not Python's, site-packages' or descentlab's.
- A helper module or a data file edited since a stored comparison starts a new one, and the
  console names the earlier run and the files that changed; an unchanged rerun reuses it.
"""

from __future__ import annotations

import textwrap
import warnings

import pytest

from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.objective import Objective
from descentlab.problems.user_files import changed, user_files

OBJECTIVE = """
    import torch
    from pathlib import Path

    from descentlab.experiments.objective import Score
    from {helper} import BATCH

    HERE = Path(__file__).parent


    def train(run):
        rows = (HERE / "points.csv").read_text().split()
        x = torch.tensor([float(r) for r in rows]).unsqueeze(1)
        torch.manual_seed(run.seed)
        w = torch.nn.Parameter(torch.zeros(1))
        opt = run.optimizer([w])
        sched = run.scheduler(opt)
        for _ in range(run.steps):
            opt.zero_grad()
            ((x[:BATCH] - w) ** 2).mean().backward()
            opt.step()
            sched.step()
        return Score(float(((x - w) ** 2).mean()), maximize=False, name="mse")
"""


def _project(folder, helper: str, batch: int = 64):
    folder.mkdir(exist_ok=True)
    (folder / "obj.py").write_text(textwrap.dedent(OBJECTIVE.format(helper=helper)))
    (folder / f"{helper}.py").write_text(f"import json\n\nBATCH = {batch}\n")
    (folder / "points.csv").write_text("1.0 2.0 3.0 4.0\n")
    return f"{folder / 'obj.py'}:train"


PROBLEM = """
import numpy as np
import torch
from descentlab.problems.problem import Problem
from {helper} import HIDDEN


def make():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = (x[:, :1] * 2).astype(np.float32)
    model = lambda: torch.nn.Sequential(torch.nn.Linear(3, HIDDEN), torch.nn.Linear(HIDDEN, 1))
    return Problem(name="made", model=model, loss="mse", metric="loss",
                   data={{"x_train": x[:40], "y_train": y[:40], "x_test": x[40:],
                          "y_test": y[40:]}})
"""


def _problem_project(folder, helper: str, name: str):
    """A problem file ``name.py`` whose model's width comes from the module ``helper``."""
    folder.mkdir()
    (folder / f"{helper}.py").write_text("HIDDEN = 8\n")
    (folder / f"{name}.py").write_text(PROBLEM.format(helper=helper))
    return folder


def test_the_identity_covers_imported_modules_and_named_data_files(tmp_path):
    ref = _project(tmp_path / "p", "helper_identity_a")
    files = Objective("function", ref).files()
    assert sorted(files) == ["helper_identity_a.py", "obj.py", "points.csv"]
    # a checked user_files: json, torch and descentlab are not the user's
    assert not any("json" in f or "torch" in f or "descentlab" in f for f in files)
    before = dict(files)
    (tmp_path / "p" / "helper_identity_a.py").write_text("import json\n\nBATCH = 8\n")
    assert changed(before, Objective("function", ref).files()) == ["helper_identity_a.py"]
    (tmp_path / "p" / "points.csv").write_text("1.0 2.0\n")
    assert "points.csv" in changed(before, Objective("function", ref).files())


def test_user_files_follows_a_helper_through_another(tmp_path):
    import importlib
    import sys

    (tmp_path / "uf_top.py").write_text("import uf_mid\n")
    (tmp_path / "uf_mid.py").write_text("from uf_low import VALUE\n")
    (tmp_path / "uf_low.py").write_text("VALUE = 'table.txt'\n")
    (tmp_path / "table.txt").write_text("x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        top = importlib.import_module("uf_top")
        assert sorted(user_files(top)) == ["table.txt", "uf_low.py", "uf_mid.py", "uf_top.py"]
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("uf_top", "uf_mid", "uf_low"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize("edit", ["helper", "data"])
def test_an_edited_helper_or_data_file_starts_a_new_run_that_names_the_old(tmp_path, edit):
    helper = f"helper_identity_{edit}"
    ref = _project(tmp_path / "p", helper)
    spec = CompareSpec(objective={"form": "function", "ref": ref}, optimizers=["sgd"], steps=6,
                       lrs_per_optimizer=2, refine=False, seeds=2, max_seeds=2,
                       lr_ranges={"sgd": (0.01, 0.1)}, landscapes=())  # fmt: skip
    runs = tmp_path / "runs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = compare(spec, runs, workers=1, progress=False).run_dir
        again = compare(spec, runs, workers=1, progress=False).run_dir
    assert again == first  # (unchanged: the same run, its trials reused)
    if edit == "helper":
        (tmp_path / "p" / f"{helper}.py").write_text("import json\n\nBATCH = 8\n")
        name = f"{helper}.py"
    else:
        (tmp_path / "p" / "points.csv").write_text("1.0 2.0 3.5 4.0\n")
        name = "points.csv"
    with pytest.warns(RuntimeWarning, match="a new comparison") as said:
        second = compare(spec, runs, workers=1, progress=False).run_dir
    assert second != first
    line = next(str(w.message) for w in said if "a new comparison" in str(w.message))
    assert f": {name} changed since the one in {first} (its trials are not reused; " in line
    assert line.endswith(f"--continue-run {first} reuses them)")


def test_a_missing_framework_names_the_extra_that_installs_it(tmp_path):
    """The line names the user's file for what it is and the extra to install."""
    (tmp_path / "needs_hf.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'transformers'\", name='transformers')\n"
        "def make_trainer(split): ...\n"
    )
    obj = Objective("hf_trainer", f"{tmp_path / 'needs_hf.py'}:make_trainer", "eval_loss")
    with pytest.raises(ValueError) as got:
        obj.function  # noqa: B018
    line = str(got.value)
    assert line.startswith(f"--hf-trainer file {tmp_path / 'needs_hf.py'} failed while importing")
    assert line.endswith("(pip install 'descentlab[hf]')") and "problem file" not in line


def test_continue_run_reuses_an_earlier_comparison_on_purpose(tmp_path):
    """``--continue-run RUN_DIR``: the earlier comparison's trials reused though a helper
    changed, which is said; without it, a new comparison that names the earlier one."""
    import contextlib
    import io
    import sqlite3

    from descentlab.cli import main

    ref = _project(tmp_path / "p", "helper_identity_continue")
    runs = tmp_path / "runs"
    args = (f"compare --objective {ref} --optimizers sgd --steps 6 --lr-trials 2 --no-refine "
            f"--seeds 2 --max-seeds 2 --workers 1 --no-progress --no-report "
            f"--runs-dir {runs}").split()  # fmt: skip

    def command(*more: str) -> tuple[int, list[str]]:
        with (
            warnings.catch_warnings(record=True) as said,
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("always")
            code = main([*args, *more])
        return code, [str(w.message) for w in said]

    assert command()[0] == 0
    (first,) = runs.iterdir()
    store = first / "descentlab.sqlite"
    with contextlib.closing(sqlite3.connect(store)) as db:
        trials = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    (tmp_path / "p" / "helper_identity_continue.py").write_text("import json\n\nBATCH = 8\n")
    code, said = command("--continue-run", str(first))
    assert code == 0 and sorted(runs.iterdir()) == [first]
    assert any(
        "continuing the earlier comparison on purpose: helper_identity_continue.py "
        "changed since its trials, which are reused as they are" in s
        for s in said
    )
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == trials  # none rerun
    assert command("--continue-run", str(tmp_path))[0] == 2  # (no comparison there)
    assert command("--continue-run", str(first), "--steps", "8")[0] == 2  # (other settings)


def test_a_problem_files_identity_covers_its_code(tmp_path):
    """A problem of one's own is identified by its data and by its code's files: an edited
    helper module it imports starts a new comparison (it reused every stored trial)."""
    from descentlab.experiments.compare import CompareSpec
    from descentlab.problems import problem as problems

    folder = _problem_project(tmp_path / "prob", "width_identity", "made")
    spec = CompareSpec(problem=f"{folder / 'made.py'}:make", optimizers=["sgd"], landscapes=())
    first = problems.resolve_for_compare(spec, None)[0].problem
    assert first.count("#") == 1 and "+" in first.split("#")[1]  # data + code
    (folder / "width_identity.py").write_text("HIDDEN = 16\n")
    problems._load_cached.cache_clear()
    assert problems.resolve_for_compare(spec, None)[0].problem != first


def test_an_edited_problem_file_starts_a_new_run_that_names_the_old(tmp_path):
    """A problem of one's own whose helper changed: a new comparison, and the console names
    the earlier one and the file."""
    from descentlab.problems import problem as problems

    folder = _problem_project(tmp_path / "prob", "width_named", "named_problem")
    spec = CompareSpec(problem=f"{folder / 'named_problem.py'}:make", optimizers=["sgd"],
                       steps=6, lrs_per_optimizer=2, refine=False, seeds=2, max_seeds=2,
                       batch_size=20, lr_ranges={"sgd": (0.01, 0.1)}, landscapes=())  # fmt: skip
    runs = tmp_path / "runs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = compare(spec, runs, workers=1, progress=False).run_dir
    (folder / "width_named.py").write_text("HIDDEN = 16\n")
    problems._load_cached.cache_clear()
    with pytest.warns(RuntimeWarning, match="a new comparison") as said:
        second = compare(spec, runs, workers=1, progress=False).run_dir
    assert second != first
    line = next(str(w.message) for w in said if "a new comparison" in str(w.message))
    assert line.endswith(f": width_named.py changed since the one in {first} (its trials are not "
                         "reused)")  # fmt: skip
