"""Mistakes a user makes with their own training code, each met with one line.

Every row is an objective (a function of the file below) compared by ``descentlab compare
--objective`` in this process, as a user runs it: what the command prints on its standard error
and its exit status. Where the run cannot go on it stops with ``descentlab: error: ...`` (one
line naming the objective, the trial and the seed) and exit 2, keeping the trials that
finished; where it can, it says the thing once and goes on (exit 0). docs/compare.md's table
("Mistakes in your own code") lists the same rows.

About 40 small comparisons of 6 steps (about 1 s each on 2 cores): over 20 s, for the table's
breadth.
"""

from __future__ import annotations

import contextlib
import io
import re
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from descentlab.cli import main

ROOT = Path(__file__).resolve().parents[1]

MISTAKES = """
import os, sys, threading, time, multiprocessing
import torch
from descentlab import Score

X = torch.linspace(-1, 1, 64).unsqueeze(1)
Y = 3 * X + 0.1 * torch.randn(64, 1, generator=torch.Generator().manual_seed(0))


def fit(run, *, opt=None, steps=None, schedule=True, other=None, report=None):
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(1, 1)
    given = run.optimizer(model.parameters())
    opt = given if opt is None else opt(model.parameters())
    sched = run.scheduler(given)
    other = None if other is None else other(model.parameters())
    for step in range(1, (run.steps if steps is None else steps) + 1):
        for o in (opt, other):
            if o is not None:
                o.zero_grad()
                ((model(X) - Y) ** 2).mean().backward()
                o.step()
        if schedule:
            sched.step()
        if report is not None:
            report(step, model)
    return model


def mse(model):
    with torch.no_grad():
        return float(((model(X) - Y) ** 2).mean())


def good(run):
    return Score(mse(fit(run)), maximize=False, name="mse")


def returns_nothing(run):
    fit(run)


def returns_a_float(run):
    return mse(fit(run))


def returns_a_string(run):
    fit(run)
    return "0.5"


def returns_a_dict(run):
    return {"mse": mse(fit(run))}


def score_of_a_string(run):
    fit(run)
    return Score("0.5", maximize=False)


def score_maximize_a_string(run):
    return Score(mse(fit(run)), maximize="no")


def turns_around(run):
    return Score(mse(fit(run)), maximize=run.phase == "tune")


def score_nan(run):
    fit(run)
    return Score(float("nan"), maximize=False, name="mse")


def raises(run):
    raise RuntimeError("the data loader broke")


def raises_keyboard_interrupt(run):
    raise KeyboardInterrupt


def calls_sys_exit(run):
    sys.exit(3)


def reports_a_string(run):
    fit(run, report=lambda s, m: run.report(s, "low"))


def reports_a_vector(run):
    fit(run, report=lambda s, m: run.report(s, torch.ones(3)))


def reports_a_0d_tensor(run):
    fit(run, report=lambda s, m: run.report(s, torch.tensor(mse(m))))
    return Score(0.5, maximize=False)


def reports_nan(run):
    fit(run, report=lambda s, m: run.report(s, float("nan")))
    return Score(0.5, maximize=False)


def reports_out_of_order(run):
    fit(run, report=lambda s, m: run.report(run.steps + 1 - s, mse(m)))
    return Score(0.5, maximize=False)


def reports_past_the_end(run):
    fit(run, report=lambda s, m: run.report(10 * s, mse(m)))
    return Score(0.5, maximize=False)


def reports_step_zero(run):
    fit(run, report=lambda s, m: run.report(s - 1, mse(m)))
    return Score(0.5, maximize=False)


def score_of_bad_bounds(run):
    return Score(mse(fit(run)), maximize=False, bounds=(1, 0))


def score_outside_its_bounds(run):
    fit(run)
    return Score(1.5, maximize=False, bounds=(0, 1))


def builds_no_optimizer(run):
    return Score(0.5, maximize=False)


def steps_its_own_adam(run):
    return Score(mse(fit(run, opt=lambda p: torch.optim.Adam(p, lr=0.01))), maximize=False)


def steps_half(run):
    return Score(mse(fit(run, steps=run.steps // 2)), maximize=False)


def steps_twice_as_long(run):
    return Score(mse(fit(run, steps=2 * run.steps)), maximize=False)


def another_steps_them_too(run):
    other = lambda p: torch.optim.SGD(p, lr=0.01)  # noqa: E731
    return Score(mse(fit(run, other=other)), maximize=False)


def group_sets_its_own_lr(run):  # a written-in group lr: the same in every trial
    model = torch.nn.Linear(1, 1)
    opt = run.optimizer([{"params": [model.weight], "lr": 0.05}, {"params": [model.bias]}])
    for _ in range(run.steps):
        opt.zero_grad()
        ((model(X) - Y) ** 2).mean().backward()
        opt.step()
    return Score(mse(model), maximize=False)


def _fit_with(run, schedule):  # the user's loop, stepping their own scheduler after the optimizer
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(1, 1)
    opt = run.optimizer(model.parameters())
    sched = schedule(opt)
    for _ in range(run.steps):
        opt.zero_grad()
        ((model(X) - Y) ** 2).mean().backward()
        opt.step()
        sched.step()
    return Score(mse(model), maximize=False)


def one_cycle_of_its_own_peak(run):
    return _fit_with(
        run, lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=run.steps)
    )


def one_cycle_cycles_momentum(run, **cycle):  # OneCycleLR's cycle_momentum=True (its default)
    return _fit_with(
        run,
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=run.hyper["lr"], total_steps=run.steps, **cycle
        ),
    )


def one_cycle_momentum_not_cycled(run):  # the first advice followed
    return one_cycle_cycles_momentum(run, cycle_momentum=False)


def one_cycle_momentum_from_the_trial(run):  # the second
    m = run.hyper["momentum"]
    return one_cycle_cycles_momentum(run, base_momentum=m, max_momentum=m)


def sets_the_lr_itself(run):
    def report(step, model):
        for group in given.param_groups:
            group["lr"] = 0.05
    given = None
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(1, 1)
    given = run.optimizer(model.parameters())
    for step in range(1, run.steps + 1):
        given.zero_grad()
        ((model(X) - Y) ** 2).mean().backward()
        given.step()
        report(step, model)
    return Score(mse(model), maximize=False)


def says_it_stopped_early_elsewhere(run):
    model = fit(run, steps=3)
    run.stopped_early(2)
    return Score(mse(model), maximize=False)


def never_steps_the_schedule(run):
    return Score(mse(fit(run, schedule=False)), maximize=False)


def optimizer_of_no_parameters(run):
    run.optimizer([])
    return Score(0.5, maximize=False)


def parameters_on_the_meta_device(run):
    run.optimizer(torch.nn.Linear(1, 1, device="meta").parameters())
    return Score(0.5, maximize=False)


def reads_the_test_split(run):
    run.optimizer(torch.nn.Linear(1, 1).parameters())
    return Score(float(run.splits.y_test.float().mean()), maximize=False)


def batches_without_data(run):
    run.optimizer(torch.nn.Linear(1, 1).parameters())
    next(run.batches())


def empty_training_data(run):
    x = X[:0]
    run.optimizer(torch.nn.Linear(1, 1).parameters())
    x[torch.randint(len(x), (8,))]


def sets_the_default_dtype(run):
    model = fit(run)
    torch.set_default_dtype(torch.float64)
    return Score(mse(model), maximize=False)


def sets_the_thread_count(run):
    torch.set_num_threads(max(1, torch.get_num_threads() + 1))
    return Score(mse(fit(run)), maximize=False)


def leaves_a_thread(run):
    threading.Thread(target=time.sleep, args=(3,), name="user-poller", daemon=True).start()
    return Score(mse(fit(run)), maximize=False)


def leaves_a_process(run):
    multiprocessing.get_context("fork").Process(target=time.sleep, args=(3,)).start()
    return Score(mse(fit(run)), maximize=False)


def changes_folder(run):
    os.chdir("/")
    return Score(mse(fit(run)), maximize=False)


def fails_in_its_curve_runs(run):
    if run.phase != "tune":
        raise RuntimeError("the curve's logger broke")
    return Score(mse(fit(run)), maximize=False)


not_callable = 3
"""

SHORT = "--optimizers sgd --steps 6 --seeds 2 --max-seeds 2 --workers 1"
GRID = "--lr-trials 2 --no-refine"
RUN = "{name} \\(trial tune/sgd/holdout, seed 0\\)"

#: (function, extra arguments, exit status, what standard error says)
# fmt: off  (one row a line, however long: a table)
# ruff: noqa: E501
CASES = [
    ('returns_nothing', '', 2, RUN + ' returned NoneType \\(is its `return` missing\\?\\)'),
    ('returns_a_float', '', 2, RUN + ' returned float: an objective returns Score\\('),
    ('returns_a_string', '', 2, RUN + ' returned str: an objective returns Score\\('),
    ('returns_a_dict', '', 2, RUN + ' returned dict: an objective returns Score\\('),
    ('score_of_a_string', '', 2, RUN + " returned a Score with value '0.5': its value is a num"),
    ('score_maximize_a_string', '', 2, "returned a Score with maximize 'no': .* True or False"),
    ('turns_around', '', 2, "returned 'metric' \\(minimized\\) after 'metric' \\(maximized\\)"),
    ('score_nan', '', 0, 'returned nan: a trial whose values are not finite counts as diverged'),
    ('raises', '', 2, RUN + ' failed: RuntimeError: the data loader broke in raises'),
    ('raises_keyboard_interrupt', 'SUBPROCESS', 2, RUN + ' failed: it raised KeyboardInterrupt in '),
    ('calls_sys_exit', '', 2, RUN + ' failed: .*sys.exit\\(3\\)|exit.*3'),
    ('reports_a_string', '', 2, 'run.report\\(step, value\\) takes a number, got str at step 1'),
    ('reports_a_vector', '', 2, 'run.report\\(step, value\\) takes a number, got Tensor at step 1'),
    ('reports_a_0d_tensor', '', 0, None),
    ('reports_nan', '', 0, 'reported nan at step 1: a trial whose values are not finite'),
    ('reports_out_of_order', '', 2, 'run.report\\(step, value\\) at step 5 after step 6: report the steps 1 to 6 in increasing order'),
    ('reports_past_the_end', '', 2, 'run.report\\(step, value\\) at step 10: report the steps 1 to 6'),
    ('reports_step_zero', '', 2, 'run.report\\(step, value\\) at step 0: report the steps 1 to 6'),
    ('score_of_bad_bounds', '', 2, RUN + ' returned a Score with bounds \\(1, 0\\): bounds is \\(low, high\\) with low < high'),
    ('score_outside_its_bounds', '', 2, RUN + ' returned a Score of 1.5 outside its bounds \\(0, 1\\)'),
    ('builds_no_optimizer', '', 2, 'never built its optimizer with run.optimizer\\(params\\)'),
    ('steps_its_own_adam', '', 2, 'the optimizer descentlab gave was stepped 0 times in 6 steps'),
    ('steps_half', '', 2, 'stepped 3 times in 6 steps: .* \\(run.steps = 6 counts optimizer steps\\). Likely causes: it returned early .*run.stopped_early\\(step\\).*epochs ran out.*accumulation counted in batches'),
    ('steps_twice_as_long', '', 2, 'stepped 12 times in 6 steps: .*, for run.steps = 6 steps \\(the equal budget\\)'),
    ('another_steps_them_too', '', 2, 'were stepped by another optimizer \\(SGD\\): only the trial'),
    ('group_sets_its_own_lr', '', 2, "objective .*:group_sets_its_own_lr: param group 0 of sgd's optimizer used lr=0.05 at step 1 in trials that tune lr = .*: a value that ignores the trial's is never tuned .*'lr': 10 \\* run.hyper\\['lr'\\]"),
    ('one_cycle_of_its_own_peak', '', 2, "param group 0 of sgd's optimizer used lr=0.002\\d* at step 1 in trials that tune lr = .*OneCycleLR\\(opt, max_lr=run.hyper\\['lr'\\]"),
    ('one_cycle_cycles_momentum', '--tune sgd.momentum=0.5,0.9', 2, "param group 0 of sgd's optimizer used momentum=0.95 at step 1 in trials that tune momentum = 0.5, 0.9: .*cycle_momentum=False.*base_momentum and max_momentum built from run.hyper\\['momentum'\\]"),
    ('one_cycle_momentum_not_cycled', '--tune sgd.momentum=0.5,0.9', 0, None),
    ('one_cycle_momentum_from_the_trial', '--tune sgd.momentum=0.5,0.9', 0, None),
    ('sets_the_lr_itself', '', 2, "param group 0 of sgd's optimizer used lr=0.05 at step 2 in trials that tune lr = "),
    ('says_it_stopped_early_elsewhere', '', 2, "it said it stopped early at step 2 \\(run.stopped_early\\), but the optimizer descentlab gave was stepped 3 times"),
    ('never_steps_the_schedule', '--budget 3', 2, "the trial's schedule \\(lr=.*\\) was stepped 0 times in 6 optimizer steps: call step\\(\\) of run.scheduler"),
    ('optimizer_of_no_parameters', '', 2, RUN + ' failed: .*empty'),
    ('parameters_on_the_meta_device', '', 2, "the parameters that were given to run.optimizer are on meta, the comparison's device is cpu"),
    ('reads_the_test_split', 'PROBLEM', 2, 'read the test split in a tune trial: while tuning'),
    ('batches_without_data', '', 2, "run.batches\\(\\) needs descentlab's data \\(compare with --problem"),
    ('empty_training_data', '', 2, RUN + ' failed: (IndexError|RuntimeError)'),
    ('sets_the_default_dtype', '', 0, "changed what the trials after it share: torch's default dtype torch.float64 -> set back to torch.float32"),
    ('sets_the_thread_count', '', 0, "changed what the trials after it share: torch's threads \\d+ -> set back to \\d+"),
    ('leaves_a_thread', '', 0, '1 thread\\(s\\) still running \\(user-poller\\)'),
    ('leaves_a_process', '', 0, '1 child process\\(es\\) still running'),
    ('changes_folder', '', 0, 'changed the working folder to /; it is set back to'),
    ('fails_in_its_curve_runs', '', 2, "\\(trial curve/sgd, seed 0\\) failed: RuntimeError: the curve's logger broke"),
    ('not_callable', '', 2, "'not_callable' is not a function"),
    ('no_such_function', '', 2, "has no 'no_such_function'"),
    ('good', '--metric mse', 2, '--metric'),
]  # fmt: skip
# fmt: on


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mistakes")
    (folder / "mistakes.py").write_text(textwrap.dedent(MISTAKES))
    return folder / "mistakes.py"


def _compare(args: str, runs: Path) -> tuple[int, str]:
    """``descentlab ARGS`` in this process: its exit status, and its standard error with the
    warnings it said (one line each, as the command prints them) before it."""
    args += f" --runs-dir {runs} --no-progress --no-report"
    if "SUBPROCESS" in args:  # (a KeyboardInterrupt is told from Ctrl-C in the program only)
        argv = [sys.executable, "-m", "descentlab", *args.replace("SUBPROCESS", "").split()]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stderr
    err = io.StringIO()
    out = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
        warnings.catch_warnings(record=True) as said,
    ):
        warnings.simplefilter("always")
        code = main(args.split())
    lines = [str(w.message) for w in said if str(w.message).startswith("descentlab")]
    return int(code or 0), "\n".join([*lines, err.getvalue()])


#: the cases that start a process: a worker process the objective leaves, the program as a
#: command (`make check` runs the others)
STARTS_A_PROCESS = {"leaves_a_process", "raises_keyboard_interrupt"}


@pytest.mark.parametrize(
    ("name", "extra", "status", "says"),
    [pytest.param(*c, id=c[0], marks=pytest.mark.process if c[0] in STARTS_A_PROCESS else ())
     for c in CASES],
)  # fmt: skip
def test_a_mistake_in_your_own_code_is_one_line(user_file, tmp_path, name, extra, status, says):
    problem = f"--problem {ROOT / 'examples' / 'diabetes.py'}:make_problem"
    extra = extra.replace("PROBLEM", problem)
    grid = "" if "--budget" in extra else GRID
    code, err = _compare(f"compare --objective {user_file}:{name} {SHORT} {grid} {extra}", tmp_path)
    assert code == status, err
    lines = [ln for ln in err.splitlines() if ln.startswith("descentlab")]
    if says is None:
        assert not [ln for ln in lines if "error" in ln], err
        return
    said = [ln for ln in lines if re.search(says.format(name=re.escape(name)), ln)]
    assert len(said) == 1, err  # one line, said once
    if status == 2:
        assert said[0].startswith("descentlab: error: ") and said == lines[-1:], err


def test_the_trials_that_finished_before_a_mistake_are_kept(user_file, tmp_path):
    code, _ = _compare(
        f"compare --objective {user_file}:fails_in_its_curve_runs {SHORT} {GRID}", tmp_path
    )
    assert code == 2
    (store,) = tmp_path.glob("*/descentlab.sqlite")
    with contextlib.closing(sqlite3.connect(store)) as db:
        done = db.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone()[0]
    assert done >= 2  # (the tuning trials, kept: a rerun does not train them again)


QUIET_MODULE = """
import sys
sys.path.insert(0, {folder!r})
from lightning_module import Spirals


class Quiet(Spirals):
    def validation_step(self, batch, i):
        self.net(batch[0])


def make(split):
    return Quiet(split)
"""

#: (the form's arguments, what standard error says): a framework's metric misnamed or missing
FRAMEWORK_CASES = [
    ("--hf-trainer examples/hf_trainer.py:make_trainer --metric eval_accuracy",
     r"the Trainer's evaluation logged no 'eval_accuracy' \(it logged .*eval_loss.*\): name one "
     r"of those with --metric"),
    ("--lightning examples/lightning_module.py:make --metric val_accuracy",
     r"the module's validation logged no 'val_accuracy' \(it logged val_acc\)"),
    ("--lightning QUIET:make --metric val_acc",
     r"the module's validation logged nothing, so no 'val_acc': log it \(self.log\('val_acc'"),
]  # fmt: skip


@pytest.mark.parametrize(("form", "says"), FRAMEWORK_CASES, ids=["hf", "lightning", "quiet"])
def test_a_frameworks_metric_misnamed_or_never_logged_is_one_line(tmp_path, form, says):
    pytest.importorskip("transformers" if "hf" in form else "lightning")
    quiet = tmp_path / "quiet.py"
    quiet.write_text(QUIET_MODULE.format(folder=str(ROOT / "examples")))
    form = form.replace("examples/", f"{ROOT / 'examples'}/").replace("QUIET", str(quiet))
    code, err = _compare(f"compare {form} {SHORT} {GRID} --steps 4", tmp_path / "runs")
    lines = [ln for ln in err.splitlines() if ln.startswith("descentlab: error: ")]
    assert code == 2 and len(lines) == 1 and re.search(says, lines[0]), err


def test_the_docs_table_has_a_row_for_every_mistake_here():
    page = (ROOT / "docs" / "compare.md").read_text(encoding="utf-8")
    table = page.split("**Mistakes in your own code.**", 1)[1].split("\n\n", 2)[1]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert len(rows) >= 30  # (rows group several of the tests' cases: 41 here)
    assert len(CASES) + len(FRAMEWORK_CASES) >= 40


@pytest.mark.process
@pytest.mark.parametrize("name", ["returns_nothing", "builds_no_optimizer", "raises", "steps_half"])
def test_a_mistake_says_the_same_line_in_a_worker_process(user_file, tmp_path, name):
    """The same mistake, run in the command's process or in a worker: the same one line (a
    worker's refusal once reached the command wrapped, naming its trial twice)."""
    said = []
    for workers in (1, 2):
        args = f"compare --objective {user_file}:{name} {SHORT} {GRID}"
        code, err = _compare(
            args.replace("--workers 1", f"--workers {workers}"), tmp_path / f"w{workers}"
        )
        assert code == 2, err
        said.append([ln for ln in err.splitlines() if ln.startswith("descentlab: error: ")])
    assert len(said[0]) == 1 and said[1] == said[0], said
