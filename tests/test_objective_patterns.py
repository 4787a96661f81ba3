"""Training code as people write it, compared by ``descentlab compare --objective`` as it is.

Every row is a legitimate pattern (one function of the file below: a small network on
scikit-learn's iris data, full-batch) that must run through the command (exit 0, no error);
where the pattern is the plain loop's in other words (``SAME``), the comparison's answer -- every
trial's score and the recommendation -- is the plain loop's. The wrong cases stay refused in
tests/test_objective_mistakes.py.

About 30 comparisons of 60 steps (sgd and adam, 3 learning rates, 2 seeds: about 1-2 s each on 2
cores): over 20 s, for the table's breadth.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import textwrap
import warnings
from pathlib import Path

import pytest

from descentlab.cli import main

PATTERNS = """
import copy, math
import torch
from torch import nn
from descentlab import Score
from sklearn.datasets import load_iris

x, y = load_iris(return_X_y=True)
X = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
Y = torch.tensor(y)
F = nn.functional


def net():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def score(model):
    with torch.no_grad():
        return Score(float((model(X).argmax(1) == Y).float().mean()), maximize=True, name="acc")


def loop(run, model=None, params=None, before=None, after=None, loss=None, stop=None,
         schedule=None):
    torch.manual_seed(run.seed)
    model = net() if model is None else model()
    opt = run.optimizer(model.parameters() if params is None else params(model, run))
    sched = run.scheduler(opt) if schedule is None else schedule(opt)
    for step in range(1, run.steps + 1):
        if before is not None:
            before(model, opt, step)
        opt.zero_grad()
        (F.cross_entropy(model(X), Y) if loss is None else loss(model)).backward()
        opt.step()
        sched.step()
        if after is not None:
            after(model, opt, step)
        if stop is not None and stop(model, step):
            run.stopped_early(step)
            break
    return score(model)


def plain(run):
    return loop(run)


def grad_scaler(run):  # the AMP recipe, nothing overflowing: the plain loop's answer
    return _scaled(run, skip=None)


def grad_scaler_skips_a_step(run):  # one overflowing step skipped by the scaler
    return _scaled(run, skip=3)


def _scaled(run, skip):
    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    sched = run.scheduler(opt)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    for step in range(run.steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(X), Y) * (math.inf if step == skip else 1.0)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
    return score(model)


def fp16_autocast_scaler(run):
    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    scaler = torch.amp.GradScaler("cpu")
    for step in range(run.steps):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = F.cross_entropy(model(X).float(), Y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return score(model)


def bf16_autocast(run):
    def loss(model):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return F.cross_entropy(model(X).float(), Y)
    return loop(run, loss=loss)


def early_stopping(run):  # patience on a validation loss, the best weights restored
    best = {"loss": math.inf, "at": 0, "state": None}
    kept = {}

    def stop(model, step):
        with torch.no_grad():
            val = float(F.cross_entropy(model(X[::3]), Y[::3]))
        if val < best["loss"] - 1e-3:
            best.update(loss=val, at=step, state=copy.deepcopy(model.state_dict()))
        kept["model"] = model
        return step - best["at"] >= 5

    got = loop(run, stop=stop)
    if best["state"] is not None:
        kept["model"].load_state_dict(best["state"])
    return score(kept["model"])


def embedding_max_norm(run):  # torch renormalizes the rows in place in forward
    class Embedded(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(3, 4, max_norm=1.0)
            self.head = net()

        def forward(self, x):
            return self.head(x + self.emb(torch.zeros(len(x), dtype=torch.long)))
    return loop(run, model=Embedded)


def clamped_parameters(run):  # a constraint applied after each step
    def after(model, opt, step):
        with torch.no_grad():
            for p in model.parameters():
                p.clamp_(-3, 3)
    return loop(run, after=after)


def max_norm_constraint(run):  # Keras-style max-norm on each unit's weights
    def after(model, opt, step):
        with torch.no_grad():
            w = model[0].weight
            w.copy_(torch.renorm(w, 2, 0, 2.0))
    return loop(run, after=after)


def weight_norm(run):
    def model():
        m = net()
        m[0] = nn.utils.parametrizations.weight_norm(m[0])
        return m
    return loop(run, model=model)


def lookahead_sync(run):  # the slow weights copied in every 5 steps (p.copy_ under no_grad)
    slow = {}

    def after(model, opt, step):
        if not slow:
            slow.update({i: p.detach().clone() for i, p in enumerate(model.parameters())})
        if step % 5 == 0:
            with torch.no_grad():
                for i, p in enumerate(model.parameters()):
                    slow[i] += 0.5 * (p - slow[i])
                    p.copy_(slow[i])
    return loop(run, after=after)


class Lookahead(torch.optim.Optimizer):  # a wrapper optimizer whose step calls the inner one
    def __init__(self, inner, k=5, alpha=0.5):
        self.inner, self.k, self.alpha, self.n = inner, k, alpha, 0
        super().__init__(inner.param_groups, {})
        self.param_groups = inner.param_groups
        self.slow = [p.detach().clone() for g in self.param_groups for p in g["params"]]

    def step(self, closure=None):
        got = self.inner.step(closure)
        self.n += 1
        if self.n % self.k == 0:
            with torch.no_grad():
                for s, p in zip(self.slow, (p for g in self.param_groups for p in g["params"])):
                    s += self.alpha * (p - s)
                    p.copy_(s)
        return got


def lookahead_wrapper(run):
    torch.manual_seed(run.seed)
    model = net()
    opt = Lookahead(run.optimizer(model.parameters()))
    for step in range(run.steps):
        opt.zero_grad()
        F.cross_entropy(model(X), Y).backward()
        opt.step()
    return score(model)


def ema(run):  # an exponential moving average of the weights, scored
    torch.manual_seed(run.seed)
    model = net()
    avg = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9))
    opt = run.optimizer(model.parameters())
    for step in range(run.steps):
        opt.zero_grad()
        F.cross_entropy(model(X), Y).backward()
        opt.step()
        avg.update_parameters(model)
    return score(avg.module)


def swa_copied_back(run):  # SWA's average copied into the model at the end
    torch.manual_seed(run.seed)
    model = net()
    avg = torch.optim.swa_utils.AveragedModel(model)
    opt = run.optimizer(model.parameters())
    for step in range(run.steps):
        opt.zero_grad()
        F.cross_entropy(model(X), Y).backward()
        opt.step()
        if step >= run.steps // 2:
            avg.update_parameters(model)
    with torch.no_grad():
        for p, q in zip(model.parameters(), avg.module.parameters()):
            p.copy_(q)
    return score(model)


def accumulation(run):  # two micro-batches a step, run.steps optimizer steps
    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    sched = run.scheduler(opt)
    for step in range(run.steps):
        opt.zero_grad()
        for part in (slice(0, None, 2), slice(1, None, 2)):
            (F.cross_entropy(model(X[part]), Y[part]) / 2).backward()
        opt.step()
        sched.step()
    return score(model)


def param_groups(run):  # two groups, the trial's hyperparameters in both: the plain answer
    return loop(run, params=lambda m, run: [
        {"params": m[0].parameters()}, {"params": m[2].parameters()}])


def no_decay_group(run):  # biases without weight decay: a group's weight_decay 0
    return loop(run, params=lambda m, run: [
        {"params": [p for n, p in m.named_parameters() if n.endswith("weight")]},
        {"params": [p for n, p in m.named_parameters() if n.endswith("bias")],
         "weight_decay": 0.0}])


def own_cosine_scheduler(run):  # torch's own scheduler, built on the trial's lr
    return loop(run, schedule=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, run.steps))


def own_one_cycle(run):  # OneCycleLR peaking at the trial's lr
    return loop(run, schedule=lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=run.hyper["lr"], total_steps=run.steps, cycle_momentum=False))


def own_warmup(run):  # LambdaLR warmup over the trial's lr
    return loop(run, schedule=lambda o: torch.optim.lr_scheduler.LambdaLR(
        o, lambda s: min(1.0, (s + 1) / 10)))


def clipping(run):  # clipping by value in gradient hooks, never binding: the plain answer
    def model():
        m = net()
        for p in m.parameters():
            p.register_hook(lambda g: g.clamp(-1e9, 1e9))
        return m
    return loop(run, model=model)


def clip_grad_norm(run):
    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    for step in range(run.steps):
        opt.zero_grad()
        F.cross_entropy(model(X), Y).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
    return score(model)


def dataloader_workers(run):  # a DataLoader with worker processes, full batches in order
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    sched = run.scheduler(opt)
    data = DataLoader(TensorDataset(X, Y), batch_size=len(X), num_workers=1,
                      persistent_workers=False)
    step = 0
    while step < run.steps:
        for xb, yb in data:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            sched.step()
            step += 1
            if step == run.steps:
                break
    return score(model)


def unfreezing(run):  # the first layer frozen for 20 steps, then trained
    def before(model, opt, step):
        for p in model[0].parameters():
            p.requires_grad_(step > 20)
    return loop(run, before=before)


def frozen_backbone(run):  # only the head given to the optimizer
    return loop(run, params=lambda m, run: [p for p in m[2].parameters()])


def two_losses(run):
    return loop(run, loss=lambda m: F.cross_entropy(m(X), Y) + 1e-3 * sum(
        (p ** 2).sum() for p in m.parameters()))


def set_to_none_and_closure(run):  # a closure passed to step
    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(X), Y)
        loss.backward()
        return loss
    for step in range(run.steps):
        opt.step(closure)
    return score(model)


def compiled(run):
    return loop(run, model=lambda: torch.compile(net(), backend="eager"))


def dropout_batchnorm(run):
    return loop(run, model=lambda: nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3)))


def scores_do_not_move(run):  # steps the trial's optimizer, scores what it did not train
    loop(run)
    torch.manual_seed(0)
    return score(net())


def head_multiplier(run):  # fine-tuning's head at 10x the trial's lr (a per-group multiplier)
    return loop(run, params=lambda m, run: [
        {"params": m[0].parameters()},
        {"params": m[2].parameters(), "lr": 10 * run.hyper["lr"]}])


def plateau(run):  # ReduceLROnPlateau on the training loss, reducing in some trials only
    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2,
                                                       threshold=0.05)
    for step in range(run.steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(X), Y)
        loss.backward()
        opt.step()
        sched.step(loss.item())
    return score(model)


def manual_warmup_cosine(run):  # nanoGPT's schedule, written out on the trial's lr
    def before(model, opt, step):
        warm = 10
        f = step / warm if step < warm else 0.5 * (1 + math.cos(
            math.pi * (step - warm) / (run.steps - warm)))
        for g in opt.param_groups:
            g["lr"] = max(f, 0.1) * run.hyper["lr"]
    return loop(run, before=before)


def swa_from_the_trial(run):  # SWALR annealing to half the trial's lr for the second half
    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    swa = torch.optim.swa_utils.SWALR(opt, swa_lr=0.5 * run.hyper["lr"], anneal_epochs=5)
    for step in range(run.steps):
        opt.zero_grad()
        F.cross_entropy(model(X), Y).backward()
        opt.step()
        if step >= run.steps // 2:
            swa.step()
    return score(model)


def own_folder(run):  # saves its best model to model.pt and reloads it (word_language_model)
    import os

    assert not os.path.exists("model.pt"), "a trial found another trial's model.pt"
    after = lambda model, opt, step: torch.save(model.state_dict(), "model.pt")
    torch.manual_seed(run.seed)
    model = net()
    loop(run, model=lambda: model, after=after)
    model.load_state_dict(torch.load("model.pt"))
    return score(model)


def tqdm_progress(run):  # a progress bar of its own (tqdm's monitor thread)
    from tqdm import tqdm

    torch.manual_seed(run.seed)
    model = net()
    opt = run.optimizer(model.parameters())
    for step in tqdm(range(run.steps), mininterval=0.01, file=open("/dev/null", "w")):
        opt.zero_grad()
        F.cross_entropy(model(X), Y).backward()
        opt.step()
    return score(model)
"""

#: (function, the plain loop's answer exactly)
# fmt: off
ROWS = [
    ("grad_scaler", True),
    ("grad_scaler_skips_a_step", False),
    ("fp16_autocast_scaler", False),
    ("bf16_autocast", False),
    ("early_stopping", False),
    ("embedding_max_norm", False),
    ("clamped_parameters", False),
    ("max_norm_constraint", False),
    ("weight_norm", False),
    ("lookahead_sync", False),
    ("lookahead_wrapper", False),
    ("ema", False),
    ("swa_copied_back", False),
    ("accumulation", False),
    ("param_groups", True),
    ("no_decay_group", True),
    ("own_cosine_scheduler", False),
    ("own_one_cycle", False),
    ("own_warmup", False),
    ("clipping", True),
    ("clip_grad_norm", False),
    ("dataloader_workers", True),
    ("unfreezing", False),
    ("frozen_backbone", False),
    ("two_losses", False),
    ("set_to_none_and_closure", True),
    ("compiled", False),
    ("dropout_batchnorm", False),
    ("tqdm_progress", True),
    ("own_folder", True),
    ("head_multiplier", False),
    ("plateau", False),
    ("manual_warmup_cosine", False),
    ("swa_from_the_trial", False),
]
# fmt: on

COMMAND = "--optimizers sgd,adam --steps 60 --lr-trials 3 --seeds 2 --max-seeds 2 --workers 1"


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("patterns")
    (folder / "patterns.py").write_text(textwrap.dedent(PATTERNS))
    return folder / "patterns.py"


def _compare(user_file: Path, name: str, runs: Path) -> tuple[int, str, dict, list]:
    """``descentlab compare --objective FILE:NAME ...`` in this process: exit status, standard
    error (and descentlab's warnings), the comparison's answer and its trials' scores."""
    args = f"compare --objective {user_file}:{name} {COMMAND} --runs-dir {runs}"
    err, out = io.StringIO(), io.StringIO()
    runs.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
        warnings.catch_warnings(record=True) as said,
        contextlib.chdir(runs),  # (launched from a folder of its own: nothing of another test's)
    ):
        warnings.simplefilter("always")
        code = int(main([*args.split(), "--no-progress", "--no-report"]) or 0)
    lines = [str(w.message) for w in said if str(w.message).startswith("descentlab")]
    text = "\n".join([*lines, err.getvalue()])
    found = list(runs.glob("*/comparison.json"))
    if code or not found:
        return code, text, {}, []
    answer = json.loads(found[0].read_text())
    with open(found[0].with_name("trials.csv"), newline="") as f:
        trials = sorted(
            (r["optimizer"], r["phase"], r["setting"], r["seed"], r["val_score"], r["test_acc"])
            for r in csv.DictReader(f)
        )
    return code, text, answer, trials


@pytest.fixture(scope="module")
def plain_answer(user_file, tmp_path_factory):
    code, err, answer, trials = _compare(user_file, "plain", tmp_path_factory.mktemp("plain"))
    assert code == 0, err
    return answer["recommendation"].splitlines()[0], trials, answer["recommendation"], answer


#: the rows whose code starts processes of its own (make check leaves them to make test)
STARTS_PROCESSES = {"dataloader_workers"}


@pytest.mark.parametrize(
    ("name", "same"),
    [pytest.param(*r, id=r[0], marks=[pytest.mark.process] if r[0] in STARTS_PROCESSES else [])
     for r in ROWS],
)  # fmt: skip
def test_legitimate_training_code_runs(user_file, plain_answer, tmp_path, name, same):
    code, err, answer, trials = _compare(user_file, name, tmp_path)
    assert code == 0, err
    assert "descentlab: error" not in err and "still running" not in err, err
    if same:
        assert (answer["recommendation"].splitlines()[0], trials) == plain_answer[:2]


def test_the_table_is_wide():
    assert len(ROWS) >= 25


def test_a_metric_of_your_own_is_in_its_own_units_paired_by_seed(plain_answer):
    """``acc`` without bounds is not declared a proportion: its differences are not x100, and
    the objective gave no per-example values, so the pairing is by seed."""
    text = plain_answer[2]
    assert "paired by seed on the seeds both trained (how much worse, in acc;" in text, text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("  SGD: ")]
    assert abs(float(line.split()[1])) < 1, line  # (a difference of acc, not x100)


FRAMEWORKS = """
import torch
from torch import nn
from sklearn.datasets import load_iris

x, y = load_iris(return_X_y=True)
X = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
Y = torch.tensor(y)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x, labels=None):
        logits = self.net(x)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


class Rows(torch.utils.data.Dataset):
    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return {"x": X[i], "labels": Y[i]}


def hf_early_stopping(split):
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    args = TrainingArguments(output_dir="unused", per_device_train_batch_size=50,
                             per_device_eval_batch_size=150, use_cpu=True, report_to=[],
                             metric_for_best_model="eval_loss", greater_is_better=False)
    return Trainer(model=Net(), args=args, train_dataset=Rows(), eval_dataset=Rows(),
                   callbacks=[EarlyStoppingCallback(early_stopping_patience=1,
                                                    early_stopping_threshold=10.0)])


def lightning_early_stopping(split):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))

        def training_step(self, batch, i):
            return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def validation_step(self, batch, i):
            self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

        def train_dataloader(self):
            return DataLoader(TensorDataset(X, Y), batch_size=50, shuffle=True)

        def val_dataloader(self):
            return DataLoader(TensorDataset(X, Y), batch_size=150)

    stop = EarlyStopping("val_loss", patience=1, min_delta=10.0, check_on_train_epoch_end=False)
    return Module(), None, {"callbacks": [stop], "gradient_clip_val": 1.0,
                            "accumulate_grad_batches": 1, "precision": "bf16-mixed"}
"""

FRAMEWORK_COMMAND = "--optimizers sgd --steps 60 --lr-trials 2 --seeds 2 --max-seeds 2 --workers 1"

#: (the form, its metric): a framework's early stopping (patience 1 on a loss that never
#: improves by 10: it stops at the second evaluation), Lightning's own Trainer arguments
FRAMEWORK_ROWS = [
    ("--hf-trainer", "hf_early_stopping", "eval_loss", "transformers"),
    ("--lightning", "lightning_early_stopping", "val_loss", "lightning"),
]


@pytest.mark.parametrize(("form", "name", "metric", "needs"), FRAMEWORK_ROWS,
                         ids=[r[1] for r in FRAMEWORK_ROWS])  # fmt: skip
def test_a_frameworks_early_stopping_and_trainer_arguments_run(tmp_path, form, name, metric, needs):
    """About 20 s each on 2 cores (a framework's Trainer a trial): the early stop's rows."""
    pytest.importorskip(needs)
    (tmp_path / "fw.py").write_text(FRAMEWORKS)
    # one optimizer is enough: the rows read are one trial's (the stop is the framework's)
    args = f"compare {form} {tmp_path / 'fw.py'}:{name} --metric {metric} {FRAMEWORK_COMMAND}"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = int(main([*args.split(), "--runs-dir", str(tmp_path / "runs"), "--no-progress",
                         "--no-report"]) or 0)  # fmt: skip
    assert code == 0, err.getvalue()
    (store,) = (tmp_path / "runs").glob("*/descentlab.sqlite")
    with contextlib.closing(sqlite3.connect(store)) as db:
        steps = db.execute("SELECT step FROM metrics WHERE run_id = 2 ORDER BY step").fetchall()
    assert [s for (s,) in steps] == [12, 24, 60]  # (stopped at 24; its value the trial's)


def test_the_offline_mnist_stand_in_is_mnist_shaped_and_its_splits_disjoint():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    try:
        from mnist_digits import datasets, transforms
    finally:
        sys.path.pop(0)
    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    image, label = datasets.MNIST("../data", train=True, transform=t, split="val")[0]
    assert tuple(image.shape) == (1, 28, 28) and 0 <= label <= 9
    sizes = {
        (train, split): len(datasets.MNIST("", train=train, split=split))
        for train in (True, False)
        for split in ("val", "test")
    }
    assert sizes[(True, "val")] + sizes[(False, "val")] == sizes[(True, "test")]
    assert sizes[(True, "test")] + sizes[(False, "test")] == 1797


def test_a_search_whose_scores_do_not_move_with_the_tuned_value_says_so(user_file, tmp_path):
    code, err, answer, _ = _compare(user_file, "scores_do_not_move", tmp_path)
    assert code == 0, err
    said = [w for w in answer["warnings"] if "the score does not move with the tuned" in w]
    assert len(said) == 2, answer["warnings"]  # (SGD's and Adam's)


def test_the_plain_loops_search_moves(plain_answer):
    warned = plain_answer[3]["warnings"]
    assert not [w for w in warned if "does not move" in w], warned


@pytest.mark.process
def test_the_progress_lines_say_your_metric_by_its_name(user_file, tmp_path):
    args = f"compare --objective {user_file}:plain --optimizers sgd --steps 6 --lr-trials 2"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main([*args.split(), "--no-refine", "--seeds", "2", "--max-seeds", "2",
                     "--runs-dir", str(tmp_path), "--no-report"])  # fmt: skip
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("[") or "best lr" in ln]
    assert not code and lines, out.getvalue()
    assert all("/acc " in ln and "accuracy" not in ln for ln in lines), lines


SCRIPT = """
import argparse, os, time
import torch
from torch import nn
from descentlab import Score

parser = argparse.ArgumentParser(description="a script as pytorch/examples write them")
parser.add_argument("--hidden", type=int, default=8)
parser.add_argument("--save", default="model.pt")
args = parser.parse_args()  # (at module level: the script's own command line)
HERE = os.path.dirname(os.path.abspath(__file__))
x = torch.linspace(-2, 2, 64).unsqueeze(1)
y = torch.sin(3 * x) + float(open(os.path.join(HERE, "offset.txt")).read())


def fit(run):
    data = open("data/scale.txt").read()  # (relative to the folder the command ran in)
    torch.manual_seed(run.seed)
    model = nn.Sequential(nn.Linear(1, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 1))
    opt = run.optimizer(model.parameters())
    best = float("inf")
    for step in range(run.steps):
        opt.zero_grad()
        loss = ((model(x) - float(data) * y) ** 2).mean()
        loss.backward()
        opt.step()
        if loss.item() < best:  # the best model saved, and reloaded at the end
            best = loss.item()
            torch.save(model.state_dict(), args.save)
        time.sleep(0.001)
    model.load_state_dict(torch.load(args.save))
    with torch.no_grad():
        return Score(float(((model(x) - float(data) * y) ** 2).mean()), maximize=False, name="mse")
"""


def _script_compare(tmp_path: Path, monkeypatch, workers: int, extra: str = "") -> tuple[int, str]:
    """The script compared from a launch folder of its own (``data/`` beside it), the script
    in another folder (its ``__file__``-relative input): exit status, standard error."""
    code_dir, launch = tmp_path / "code", tmp_path / "launch"
    for folder in (code_dir, launch / "data"):
        folder.mkdir(parents=True, exist_ok=True)
    (code_dir / "train.py").write_text(SCRIPT)
    (code_dir / "offset.txt").write_text("0.5")
    (launch / "data" / "scale.txt").write_text("2.0")
    monkeypatch.chdir(launch)
    args = (f"compare --objective {code_dir / 'train.py'}:fit --optimizers sgd,adam --steps 30 "
            f"--lr-trials 3 --seeds 2 --max-seeds 2 --no-refine --workers {workers} "
            f"--runs-dir runs{workers} --no-progress --no-report")  # fmt: skip
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = int(main([*args.split(), *extra]) or 0)
    return code, err.getvalue()


def _trials(folder: Path) -> list[tuple[str, ...]]:
    (found,) = folder.glob("*/trials.csv")
    with open(found, newline="") as f:
        return sorted((r["optimizer"], r["phase"], r["setting"], r["seed"], r["val_score"],
                       r["test_mse"]) for r in csv.DictReader(f))  # fmt: skip


@pytest.mark.process
def test_trials_that_run_at_once_never_share_a_file_a_relative_path_names(tmp_path, monkeypatch):
    """word_language_model's pattern (the best model saved to ``model.pt``, reloaded at the
    end) at --workers 2 and 4 gives every trial's score as one worker does; the inputs named
    relative to the launch folder and to the script's file resolve. Three comparisons (1, 2
    and 4 workers: the workers are the point), about 20 s on 2 cores."""
    code, err = _script_compare(tmp_path, monkeypatch, 1)
    assert code == 0, err
    for workers in (2, 4):
        code, err = _script_compare(tmp_path, monkeypatch, workers)
        assert code == 0, err
        got = _trials(tmp_path / "launch" / f"runs{workers}")
        assert got == _trials(tmp_path / "launch" / "runs1"), workers
    assert not (tmp_path / "launch" / "model.pt").exists()  # (each trial's, in its own folder)


def test_the_script_runs_with_its_own_command_line(tmp_path, monkeypatch):
    """A module-level ``parse_args()`` reads the script's arguments (--script-args), not
    descentlab's; a refused one names the script's line."""
    code, err = _script_compare(tmp_path, monkeypatch, 1,
                                ["--script-args", "--hidden 4 --save best.pt"])  # fmt: skip
    assert code == 0, err
    other = tmp_path / "refused"  # (another file: this process imported the first one)
    code, err = _script_compare(other, monkeypatch, 1, ["--script-args", "--hiden 4"])
    assert code == 2, err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("descentlab: error")]
    assert f"in <module> ({other / 'code' / 'train.py'}:10)" in line, line
    assert "--script-args" in line, line


IGNORES = """
import torch
from torch import nn
from descentlab import Score

X = torch.linspace(-1, 1, 64).unsqueeze(1)
Y = 3 * X


def loop(run, params=None, schedule=None, before=None):
    torch.manual_seed(run.seed)
    model = nn.Linear(1, 1)
    opt = run.optimizer(model.parameters() if params is None else params(model))
    sched = None if schedule is None else schedule(opt)
    for step in range(run.steps):
        if before is not None:
            before(opt, step)
        opt.zero_grad()
        ((model(X) - Y) ** 2).mean().backward()
        opt.step()
        if sched is not None and step >= run.steps // 2:
            sched.step()
    with torch.no_grad():
        return Score(float(((model(X) - Y) ** 2).mean()), maximize=False, name="mse")


def swalr_fixed(run):  # SWALR(swa_lr=0.05): every trial's lr moved to 0.05 for the second half
    return loop(run, schedule=lambda o: torch.optim.swa_utils.SWALR(o, swa_lr=0.05,
                                                                    anneal_epochs=2))


def lambda_to_a_constant(run):  # LambdaLR whose factor undoes the trial's lr
    lr = run.hyper["lr"]
    return loop(run, schedule=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 0.05 / lr))


def hard_coded_head(run):  # one group at a written-in lr
    return loop(run, params=lambda m: [{"params": [m.weight]},
                                       {"params": [m.bias], "lr": 0.01}])


def manual_written_in(run):  # a manual schedule on a written-in peak, not the trial's lr
    def before(opt, step):
        for g in opt.param_groups:
            g["lr"] = 0.05 * min(1.0, (step + 1) / 3)
    return loop(run, before=before)
"""

#: (function, the step and value the refusal names): a value that ignores the trial's, in
#: every trial alike, refused before any recommendation, naming a spelling that works
IGNORED = [
    ("swalr_fixed", "lr=0.05 at step"),
    ("lambda_to_a_constant", "lr=0.05 at step 1 "),
    ("hard_coded_head", "param group 1 of sgd's optimizer used lr=0.01 at step 1 "),
    ("manual_written_in", "lr=0.016666666666666666 at step 1 "),
]


@pytest.mark.parametrize(("name", "says"), IGNORED, ids=[r[0] for r in IGNORED])
def test_a_value_that_ignores_the_trials_is_refused_naming_a_spelling_that_works(
    tmp_path, name, says
):
    (tmp_path / "ignores.py").write_text(IGNORES)
    args = (f"compare --objective {tmp_path / 'ignores.py'}:{name} --optimizers sgd --steps 8 "
            f"--lr-trials 3 --no-refine --seeds 2 --max-seeds 2 --workers 1 --runs-dir "
            f"{tmp_path / 'runs'} --no-progress --no-report")  # fmt: skip
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = int(main(args.split()) or 0)
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("descentlab: error")]
    assert code == 2 and len(lines) == 1, err.getvalue()
    assert says in lines[0] and "in trials that tune lr = " in lines[0], lines[0]
    assert "10 * run.hyper['lr']" in lines[0], lines[0]  # (a spelling that works)


SAID = """
import torch
from torch import nn
from descentlab import Score

X = torch.linspace(-1, 1, 32).unsqueeze(1)
Y = torch.sin(3 * X)


def two_optimizers(run):  # a GAN's two networks, both built with run.optimizer
    torch.manual_seed(run.seed)
    g, d = nn.Linear(1, 1), nn.Linear(1, 1)
    opt_g, opt_d = run.optimizer(g.parameters()), run.optimizer(d.parameters())
    for step in range(run.steps):
        for net, opt in ((g, opt_g), (d, opt_d)):
            opt.zero_grad()
            ((net(X) - Y) ** 2).mean().backward()
            opt.step()
    return Score(float(((g(X) - Y) ** 2).mean()), maximize=False, name="mse")


def raises_in_torch(run):  # vae's case: torch's binary cross-entropy refuses its input
    model = nn.Linear(1, 1)
    opt = run.optimizer(model.parameters())
    return Score(float(nn.functional.binary_cross_entropy(model(X) + 2, Y.abs())), False)


def closure(run):  # time_sequence_prediction's L-BFGS loop: a closure a step
    torch.manual_seed(run.seed)
    model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = run.optimizer(model.parameters())

    def loss():
        opt.zero_grad()
        out = ((model(X) - Y) ** 2).mean()
        out.backward()
        return out
    for step in range(run.steps):
        opt.step(loss)
    with torch.no_grad():
        return Score(float(((model(X) - Y) ** 2).mean()), maximize=False, name="mse")
"""


def _said(tmp_path: Path, name: str, extra: str) -> tuple[int, str]:
    (tmp_path / "said.py").write_text(SAID)
    args = (f"compare --objective {tmp_path / 'said.py'}:{name} --steps 3 --lr-trials 2 "
            f"--no-refine --seeds 2 --max-seeds 2 --workers 1 --runs-dir {tmp_path / 'runs'} "
            f"--no-progress --no-report {extra}")  # fmt: skip
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(record=True) as said,
    ):
        warnings.simplefilter("always")
        code = int(main(args.split()) or 0)
    return code, "\n".join([*(str(w.message) for w in said), err.getvalue()])


def test_two_optimizers_built_with_run_optimizer_are_named_as_such(tmp_path):
    code, err = _said(tmp_path, "two_optimizers", "--optimizers sgd")
    assert code == 2, err
    assert "it built 2 optimizers with run.optimizer, stepped 3 and 3 times in 3 steps" in err, err


def test_an_error_raised_inside_torch_names_your_line_that_called_it(tmp_path):
    code, err = _said(tmp_path, "raises_in_torch", "--optimizers sgd")
    assert code == 2, err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("descentlab: error")]
    # (the user's innermost line, the one that called into torch, not torch's own file)
    assert f"in raises_in_torch ({tmp_path / 'said.py'}:" in line, line
    assert "torch/" not in line.split("failed:")[-1], line


def test_a_closure_optimizer_says_its_function_evaluations_and_what_the_budget_counts(tmp_path):
    code, err = _said(tmp_path, "closure", "--optimizer torch.optim.LBFGS")
    assert code == 0, err
    (line,) = [ln for ln in err.splitlines() if "evaluated its closure" in ln]
    evaluations = int(line.split("evaluated its closure ")[1].split()[0])
    assert evaluations > 3 and "in 3 steps: the budget (--steps 3) counts optimizer steps" in line
    (store,) = (tmp_path / "runs").glob("*/descentlab.sqlite")
    with contextlib.closing(sqlite3.connect(store)) as db:
        said = [json.loads(p or "{}").get("evaluations")
                for (p,) in db.execute("SELECT provenance FROM runs")]  # fmt: skip
    assert any(isinstance(n, int) and n > 3 for n in said), said


@pytest.mark.parametrize(
    ("name", "setting", "multiple"),
    [("adam", {"lr": 0.01, "warmup": 0.1, "schedule": "cosine"}, 10.0),
     ("sgd", {"lr": 0.1, "warmup": 0.05, "schedule": "linear"}, None),
     ("momentum", {"lr": 0.1, "schedule": "cosine"}, None),
     ("adamw", {"lr": 0.003, "warmup": 0.1, "schedule": "constant"}, 0.5)],
)  # fmt: skip
def test_the_recommendation_as_code_trains_with_the_values_the_runs_used(name, setting, multiple):
    """The pasted lines, executed, give the lr at every step that descentlab's own optimizer
    and schedule give (the reference: ``make_optimizer`` and ``make_schedulers`` of the same
    setting), the group's multiple included, and the same hyperparameters."""
    import math

    import torch

    from descentlab.engine.optimizing import make_optimizer, make_schedulers
    from descentlab.experiments.compare.as_code import code_lines
    from descentlab.experiments.compare.search_space import run_fields

    steps = 40
    multiples = {"lr": {"1": multiple}, "weight_decay": {"1": 0.0}} if multiple else None
    lines = code_lines(name, setting, steps=steps, multiples=multiples)
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    space = {"torch": torch, "math": math, "params": [a] if multiple else [a, b], "params_1": [b]}
    exec("\n".join(lines), space)
    pasted = space["optimizer"]
    hyper, schedule = run_fields(setting, steps=steps)
    ours = make_optimizer(name, [a, b], hyper)
    same = ("lr", "momentum", "nesterov", "betas", "eps", "weight_decay")
    assert {k: pasted.defaults.get(k) for k in same if k in ours.defaults} == {
        k: ours.defaults[k] for k in same if k in ours.defaults}  # fmt: skip
    assert len(pasted.param_groups) == (2 if multiple else 1)
    sched = make_schedulers(ours, schedule, steps)[0]
    for _ in range(steps):
        want = ours.param_groups[0]["lr"] if sched is not None else hyper["lr"]
        got = [g["lr"] for g in pasted.param_groups]
        assert math.isclose(got[0], want, rel_tol=1e-9, abs_tol=1e-15), (got, want)
        if multiple:  # (the head group: its multiple of the trial's lr, scheduled alike)
            assert math.isclose(got[1], multiple * want, rel_tol=1e-9, abs_tol=1e-15), got
            assert pasted.param_groups[1]["weight_decay"] == 0
        pasted.step()  # (no gradients: nothing moves; the schedules' order as torch wants it)
        ours.step()
        if "scheduler" in space:
            space["scheduler"].step()
        if sched is not None:
            sched.step()


def _recorded(make, lr, steps):
    """What code_honour records of group 0's lr under torch scheduler ``make`` (the
    reference), and the lr at every step."""
    import torch

    from descentlab.experiments.kinds.code_honour import sampled

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched, rows, every = make(opt), [], []
    for t in range(1, steps + 1):
        every.append(opt.param_groups[0]["lr"])
        if sampled(t):
            rows.append([t, opt.param_groups[0]["lr"]])
        opt.step()
        sched.step()
    return rows, every


_S = "torch.optim.lr_scheduler."
OWN_SCHEDULES = [  # (your code's scheduler, the torch line pasted back, exact at every step)
    ("CosineAnnealingLR(o, T_max=60)", "CosineAnnealingLR(optimizer, T_max=60)", True),
    ("CosineAnnealingLR(o, T_max=45)", "CosineAnnealingLR(optimizer, T_max=45)", True),
    ("LinearLR(o, 1.0, 0.0, total_iters=50)", "LinearLR(optimizer, start_factor=1.0, "
     "end_factor=0.0, total_iters=50)", True),
    ("ExponentialLR(o, gamma=0.97)", "ExponentialLR(optimizer, gamma=0.97)", True),
    ("OneCycleLR(o, max_lr=0.02, total_steps=60, cycle_momentum=False)",
     "OneCycleLR(optimizer, max_lr=0.02, total_steps=60, cycle_momentum=False)", True),
    ("StepLR(o, 10, 0.5)", "LambdaLR(optimizer, factor)", False),
    ("LambdaLR(o, lambda s: min(1, (s + 1) / 8) * 0.5 * (1 + math.cos(math.pi * s / 60)))",
     "LambdaLR(optimizer, factor)", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("yours", "pasted", "exact"),
    OWN_SCHEDULES,
    ids=[r[0].split("(")[0] + str(i) for i, r in enumerate(OWN_SCHEDULES)],
)
def test_your_own_schedule_is_pasted_back_as_torch_code_with_the_values_it_used(
    yours, pasted, exact
):
    """The pasted lines, executed, give the lr your code's torch scheduler gave at every
    recorded step (and, where a torch scheduler is named, at every step)."""
    import math

    import torch

    from descentlab.experiments.compare.as_code import code_lines, schedule_lines

    lr, steps = 0.02, 60
    space = {"torch": torch, "math": math}
    rows, every = _recorded(lambda o: eval("torch.optim.lr_scheduler." + yours,
                                           {**space, "o": o}), lr, steps)  # fmt: skip
    lines = code_lines("sgd", {"lr": lr}, steps=steps, own=schedule_lines(rows, lr, steps))
    assert any(("scheduler = " + _S + pasted) in ln for ln in lines), lines
    space["params"] = [torch.nn.Parameter(torch.zeros(1))]
    exec("\n".join(lines), space)
    recorded = {t: v for t, v in rows}
    for t in range(1, steps + 1):
        got = space["optimizer"].param_groups[0]["lr"]
        if exact or t in recorded:
            assert math.isclose(got, every[t - 1], rel_tol=1e-6, abs_tol=1e-12), (t, got)
        space["optimizer"].step()
        space["scheduler"].step()


def test_a_constant_lr_pastes_no_schedule():
    rows = [[t, 0.01] for t in range(1, 17)]
    from descentlab.experiments.compare.as_code import schedule_lines

    assert schedule_lines(rows, 0.01, 16) == []


@pytest.mark.parametrize(
    ("name", "says"),
    [("head_multiplier", '{"params": params_1, "lr": 10 * '),
     ("manual_warmup_cosine", "    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, "),
     ("own_cosine_scheduler", "    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR("
      "optimizer, T_max=60)"),
     ("own_one_cycle", "    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=")],
)  # fmt: skip
def test_the_recommendation_ends_with_the_code_you_paste_as_your_code_wrote_it(
    user_file, tmp_path, name, says
):
    """The pasted code, run, uses at each step the lr of each group that the chosen
    optimizer's curve run recorded (the values its optimizer used, step by step)."""
    import math

    import torch

    from descentlab.experiments.compare.as_code import CODE_INDENT, _honour
    from descentlab.experiments.compare.collect import load_comparison

    code, err, answer, _ = _compare(user_file, name, tmp_path)
    assert code == 0, err
    text = answer["recommendation"]
    assert "as code (paste into your script" in text, text
    assert "    optimizer = torch.optim." in text and says in text, text
    pasted = text.split("as code (paste into your script", 1)[1].split("\n")[1:]
    space = {"torch": torch, "math": math, "params": [torch.nn.Parameter(torch.zeros(1))],
             "params_1": [torch.nn.Parameter(torch.zeros(1))]}  # fmt: skip
    exec("\n".join(ln.removeprefix(CODE_INDENT) for ln in pasted), space)
    (run_dir,) = [p.parent for p in tmp_path.glob("*/comparison.json")]
    cmp = load_comparison(run_dir)
    used = _honour(cmp, cmp.ranking()[0].result)["used"]["lr"]
    recorded = {(g, int(t)): v for g, rows in used.items() for t, v in rows}
    opt, checked = space["optimizer"], 0
    for t in range(1, cmp.spec.steps + 1):
        for g, group in enumerate(opt.param_groups):
            if (str(g), t) in recorded:
                want = recorded[str(g), t]
                assert math.isclose(group["lr"], want, rel_tol=1e-6, abs_tol=1e-12), (t, g)
                checked += 1
        opt.step()
        if "scheduler" in space:
            space["scheduler"].step()
    assert checked >= 20 * len(used), checked


def test_the_report_describes_the_protocol_that_ran_for_your_code(user_file, tmp_path):
    from descentlab.experiments.compare.collect import load_comparison
    from descentlab.report.compare_tables import protocol

    code, err, _, _ = _compare(user_file, "plain", tmp_path)
    assert code == 0, err
    (run_dir,) = [p.parent for p in tmp_path.glob("*/comparison.json")]
    text = protocol(load_comparison(run_dir)).split('<ol class="protocol">')[1]  # (its steps)
    for built_in in ("holdout validation split", "no better than chance", "at chance",
                     "update-to-parameter ratio"):  # fmt: skip
        assert built_in not in text, (built_in, text)
    assert "a trial fails only where a value it reported or returned is not finite" in text, text
    assert "your code (objective " in text, text


def test_every_place_that_says_what_failed_says_it_as_your_codes_runs_fail(user_file, tmp_path):
    """The console's verdict, the report's "As run" list, its protocol and its tables' notes
    say a failure of your code's trials as the kind does (a value not finite), never the
    built-in problems' rules (at chance, the training loss rose)."""
    from descentlab.experiments.compare.collect import load_comparison
    from descentlab.report.compare_tables import _columns, protocol

    code, err, answer, _ = _compare(user_file, "plain", tmp_path)
    assert code == 0, err
    (run_dir,) = [p.parent for p in tmp_path.glob("*/comparison.json")]
    cmp = load_comparison(run_dir)
    said = {
        "the console's verdict": answer["recommendation"],
        "the report's protocol and As run": protocol(cmp),
        "the results table's notes": " ".join(note for _, note in _columns(cmp)),
        "the protocol lines": "\n".join(cmp.protocol()),
    }
    for where, text in said.items():
        for built_in in ("at chance", "loss rose"):
            assert built_in not in text, (where, built_in, text)
        assert "a value your code reported or returned not finite" in text, (where, text)


def test_a_module_class_optimizer_of_your_own_is_part_of_the_comparisons_identity(
    tmp_path, monkeypatch
):
    from descentlab._announce import forget
    from descentlab.experiments.compare.choices import parse_optimizer

    (tmp_path / "own_opt_mod.py").write_text("import torch\nclass Mine(torch.optim.SGD):\n  pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    forget()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        first = parse_optimizer("own_opt_mod.Mine").to_dict()
        assert "source" not in parse_optimizer("torch.optim.SGD").to_dict()  # (a package's)
    assert set(first.get("source", {})) == {"own_opt_mod.py"}, first
    digest = first["source"]["own_opt_mod.py"]
    lines = [str(w.message) for w in said if "sha256" in str(w.message)]
    assert lines == [
        f"descentlab: optimizer 'own_opt_mod.Mine' is own_opt_mod.Mine (own_opt_mod.py sha256 "
        f"{digest}); an edited file starts a new comparison"
    ], lines


def test_an_unknown_model_names_what_works(tmp_path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["scale", "--model", "mymodel.py:Net", "--sizes", "4,8,16", "--steps", "2",
                     "--runs-dir", str(tmp_path)])  # fmt: skip
    assert code == 2, err.getvalue()
    assert "an --objective function that builds it (at run.size" in err.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------------------
# A failing trial is a result: code that raises in some trials (pytorch/examples' vae: SGD's
# largest lr diverged and BCE refused the NaN) is failed in those trials, its cause stored, and
# the comparison goes on; only where every trial of an optimizer's phase fails the same way
# does it stop, in one line naming the user's file and line.

FAILING = """
import sys
import torch
from torch import nn
from descentlab import Score
from sklearn.datasets import load_iris

x, y = load_iris(return_X_y=True)
X = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
Y = torch.tensor(y)
F = nn.functional


def vae_like(run, fails):
    torch.manual_seed(run.seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = run.optimizer(model.parameters())
    for step in range(run.steps):
        opt.zero_grad()
        out = model(X) * (float("nan") if fails(run) else 1.0)
        F.binary_cross_entropy(torch.sigmoid(out), F.one_hot(Y, 3).float()).backward()
        opt.step()
    with torch.no_grad():
        return Score(float((model(X).argmax(1) == Y).float().mean()), maximize=True, name="acc")


def bce_refuses_sgds_largest_lr(run):
    return vae_like(run, lambda r: r.label == "sgd" and r.hyper["lr"] >= 10)


def exits_at_sgds_largest_lr(run):
    if run.label == "sgd" and run.hyper["lr"] >= 10:
        sys.exit(3)
    return vae_like(run, lambda r: False)


def bce_refuses_every_sgd_trial(run):
    return vae_like(run, lambda r: r.label == "sgd")
"""

#: (function, exit status, the failed runs' messages, the line said: a regex)
# fmt: off
FAILING_ROWS = [
    ("bce_refuses_sgds_largest_lr", 0,
     ["RuntimeError: all elements of input should be between 0 and 1 in vae_like (F:21)"],
     r"^descentlab: 1 trial\(s\) failed: 'tune/sgd/holdout' \(lr 10\): RuntimeError: all "
     r"elements of input should be between 0 and 1 in vae_like \(F:21\) \(run \d+\); counted"),
    ("exits_at_sgds_largest_lr", 0, ["it called sys.exit(3) in exits_at_sgds_largest_lr (F:33)"],
     r"^descentlab: 1 trial\(s\) failed: 'tune/sgd/holdout' \(lr 10\): it called sys.exit\(3\)"),
    ("bce_refuses_every_sgd_trial", 2,
     ["RuntimeError: all elements of input should be between 0 and 1 in vae_like (F:21)"] * 3,
     r"^descentlab: error: every tuning trial of SGD failed the same way \(3 of 3\): objective "
     r"F:bce_refuses_every_sgd_trial \(trial tune/sgd/holdout, seed 0\) failed: RuntimeError: "
     r"all elements of input should be between 0 and 1 in vae_like \(F:21\)$"),
]
# fmt: on


@pytest.mark.parametrize(("name", "status", "stored", "says"), FAILING_ROWS,
                         ids=[r[0] for r in FAILING_ROWS])  # fmt: skip
def test_a_failing_trial_is_a_result(tmp_path, name, status, stored, says):
    import re

    path = tmp_path / "failing.py"
    path.write_text(textwrap.dedent(FAILING))
    code, err, answer, _ = _compare(path, name, tmp_path / "runs")
    assert code == status, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.replace(str(path), "F").splitlines() if re.search(says, ln)]
    assert len(lines) == 1, err
    (store,) = (tmp_path / "runs").glob("*/descentlab.sqlite")
    with contextlib.closing(sqlite3.connect(store)) as db:
        got = db.execute("SELECT message FROM runs WHERE status = 'failed'").fetchall()
    assert [m.replace(str(path), "F") for (m,) in got] == stored
    if status == 0:  # the comparison went on to its answer, the failure counted
        assert answer["recommendation"].startswith("use "), answer["recommendation"]
