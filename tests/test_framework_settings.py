"""What a trial replaces in a framework's own settings is said once: which, from what, to what.

- A Hugging Face ``TrainingArguments``: its optimizer's and schedule's settings (where the user
  set them) stand in for the trial's; its length, seeds, evaluation and batch size are the
  trial's.
- A Lightning module's own ``configure_optimizers`` is replaced by the trial's.
- A Lightning trial stopped with ``kill -9`` goes on from its last checkpoint, not step 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _killed import compare_killed_at_mark

from descentlab.experiments import frameworks


def test_the_trainers_replaced_settings_are_named_from_and_to(tmp_path):
    transformers = pytest.importorskip("transformers")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=5, learning_rate=1e-3, weight_decay=0.01,
        eval_strategy="epoch", per_device_train_batch_size=16, report_to=[],
    )  # fmt: skip
    ours = dict(max_steps=60, seed=3, data_seed=3, eval_strategy="steps", eval_steps=20,
                save_strategy="no", per_device_train_batch_size=32)  # fmt: skip
    said = frameworks._hf_replaced(args, ours, type(args))
    assert said == [
        "learning_rate 0.001 (the trial's optimizer and schedule)",
        "weight_decay 0.01 (the trial's optimizer and schedule)",
        "num_train_epochs 5 -> max_steps 60",
        "eval_strategy epoch -> steps",
        "per_device_train_batch_size 16 -> 32",
    ]
    plain = transformers.TrainingArguments(output_dir=str(tmp_path), report_to=[])
    assert frameworks._hf_replaced(plain, ours, type(plain)) == []  # (nothing the user set)


def test_a_lightning_modules_own_optimizer_is_said_replaced(tmp_path):
    pytest.importorskip("lightning")
    from descentlab.experiments.compare import CompareSpec, compare

    example = Path(__file__).resolve().parents[1] / "examples" / "lightning_module.py"
    (tmp_path / "own_opt.py").write_text(
        "import sys, torch\n"
        f"sys.path.insert(0, {str(example.parent)!r})\n"
        "from lightning_module import Spirals\n\n\n"
        "class Own(Spirals):\n"
        "    def configure_optimizers(self):\n"
        "        return torch.optim.Adam(self.parameters(), lr=0.1)\n\n\n"
        "def make(split):\n    return Own(split)\n"
    )
    objective = {"form": "lightning", "ref": f"{tmp_path / 'own_opt.py'}:make", "metric": "val_acc"}
    spec = CompareSpec(optimizers=["sgd"], steps=4, lrs_per_optimizer=2, refine=False, seeds=2,
                       max_seeds=2, landscapes=(), objective=objective)  # fmt: skip
    with pytest.warns(RuntimeWarning) as said:
        compare(spec, tmp_path / "runs", workers=1, progress=False)
    lines = [str(w.message) for w in said if "replaces" in str(w.message)]
    assert lines == [
        "descentlab: each trial replaces the module's configure_optimizers (its own optimizer "
        "and schedule) -> the trial's optimizer and per-step schedule (docs/compare.md)"
    ]


HANGS = """
import os, sys, time
from pathlib import Path
import lightning as L
sys.path.insert(0, {folder!r})
from lightning_module import Spirals


class Marks(L.Callback):
    def on_train_start(self, trainer, module):
        with open(Path(os.environ["MARKS"], "starts"), "a") as f:
            f.write(f"{{trainer.global_step}}\\n")

    def on_train_batch_end(self, trainer, *_):
        if os.environ.get("HANG_AT") == str(trainer.global_step):
            Path(os.environ["MARKS"], "hanging").write_text("")
            time.sleep(120)


class Hangs(Spirals):
    def configure_callbacks(self):
        return [Marks()]


def make(split):
    return Hangs(split)
"""


@pytest.mark.process
def test_a_killed_lightning_trial_goes_on_from_its_checkpoint(tmp_path):
    pytest.importorskip("lightning")
    from descentlab.experiments.compare import CompareSpec

    example = Path(__file__).resolve().parents[1] / "examples"
    (tmp_path / "hangs.py").write_text(HANGS.format(folder=str(example)))
    objective = {"form": "lightning", "ref": f"{tmp_path / 'hangs.py'}:make", "metric": "val_acc"}
    spec = CompareSpec(optimizers=["sgd"], steps=30, lrs_per_optimizer=1, refine=False, seeds=2,
                       max_seeds=2, landscapes=(), objective=objective)  # fmt: skip
    env = {**os.environ, "MARKS": str(tmp_path), "HANG_AT": "17"}
    script = compare_killed_at_mark(spec, tmp_path / "runs", tmp_path / "hanging", env)
    env["HANG_AT"] = ""
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    starts = (tmp_path / "starts").read_text().split()
    assert starts[:2] == ["0", "15"]  # the killed trial went on from its checkpoint at 15
