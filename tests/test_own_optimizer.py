"""An optimizer of your own, from outside the package, named wherever a name is: by
``path/to/file.py:Class``, ``module:Class`` or a name given to ``optim.register`` -- through one
resolver (``optim.get``/``optim.record``, :mod:`descentlab.optim.specs`): the optimizer card,
``train``, ``compare`` (as a named optimizer, its file's hash in the comparison's identity, said
in one line) and ``benchmarks/step.py`` (``tests/test_sharded_rules.py`` and the docs' examples
run the rest). Each of these refused it as an unknown optimizer."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from _models import TRAIN, run_cli

from descentlab import optim
from descentlab.experiments.compare.choices import parse_optimizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "optimizers"


@pytest.fixture
def adopt(tmp_path: Path) -> Path:
    path = tmp_path / "newopts.py"
    shutil.copy(EXAMPLES / "adopt.py", path)
    return path


def test_a_file_spec_and_a_module_spec_resolve_to_the_class(adopt, monkeypatch):
    cls = optim.get(f"{adopt}:ADOPT")
    assert cls.__name__ == "ADOPT" and issubclass(cls, optim.Named)
    assert optim.record(f"{adopt}:ADOPT").name == "adopt"
    monkeypatch.syspath_prepend(str(adopt.parent))
    assert optim.get("newopts:ADOPT").__name__ == "ADOPT"
    w = torch.nn.Parameter(torch.ones(3))
    w.grad = torch.ones(3)
    cls([w], lr=0.1).step()  # the first step only sets the second moment
    assert torch.equal(w.detach(), torch.ones(3))


class MySGD(optim.SGD):
    pass


def test_register_names_an_optimizer_for_every_command():
    rec = optim.register(MySGD, "my_sgd", lr_range=(1e-3, 1.0))
    assert optim.get("my_sgd") is MySGD and optim.record("MY_SGD") is rec
    assert parse_optimizer("my_sgd").optimizer == f"{__name__}:MySGD"


#: what register() refuses, each in one line, and what it lets through
REFUSED = [
    ((optim.SGD, "adam"), "one of descentlab's optimizers"),
    ((torch.optim.SGD, "tsgd"), "takes a descentlab.optim.Optimizer subclass"),
    ((optim.Adam, "my_sgd"), "is already"),
]


@pytest.mark.parametrize(("args", "why"), REFUSED)
def test_register_refuses_in_one_line(args, why):
    optim.register(MySGD, "my_sgd")
    with pytest.raises(ValueError, match=why):
        optim.register(*args)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("nowhere.py:ADOPT", "no file"),
        ("{adopt}:Missing", "has no attribute 'Missing'"),
        ("torch.optim:SGD", "not a descentlab.optim.Optimizer subclass"),
    ],
)
def test_a_spec_that_names_no_optimizer_is_refused_in_one_line(spec, why, adopt):
    with pytest.raises(ValueError, match=why):
        optim.get(spec.format(adopt=adopt))


def test_the_card_and_train_take_a_file_spec(adopt, capsys, tmp_path):
    code, out, _ = run_cli(["optimizers", f"{adopt}:ADOPT"], capsys)
    assert code == 0 and "scale_by_adopt (state: v, m)" in out and str(adopt) in out
    argv = [*TRAIN, "--runs-dir", tmp_path / "runs"]
    argv[argv.index("--optimizer") + 1] = f"{adopt}:ADOPT"
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "completed after 5 steps" in out


def test_compare_records_the_files_hash_so_an_edited_file_is_another_comparison(adopt):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        choice = parse_optimizer(f"mine={adopt}:ADOPT")
    assert choice.is_named and choice.label == "mine" and choice.optimizer == f"{adopt}:ADOPT"
    before = choice.to_dict()["source"]
    assert list(before) == ["newopts.py"]
    assert any(f"newopts.py sha256 {before['newopts.py']}" in str(w.message) for w in said)
    adopt.write_text(adopt.read_text() + "# edited\n")
    after = parse_optimizer(f"mine={adopt}:ADOPT").to_dict()["source"]
    assert after != before
    assert "source" not in parse_optimizer("adam").to_dict()  # (stored comparisons unchanged)


def test_the_step_benchmark_takes_a_file_spec(adopt, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES.parents[1] / "benchmarks"))
    import step

    monkeypatch.setattr(step, "fused_names", lambda: (["adamw"], {}))  # (not every one probed)
    spec = f"{adopt}:ADOPT"
    step.main(["--sizes", "2e3", "--repeat", "1", "--optimizers", spec, "--no-compile",
               "--threads", "1"])  # fmt: skip
    assert any(line.startswith(spec) for line in capsys.readouterr().out.splitlines())


def _dims(spec: str) -> list[str]:
    from descentlab.experiments.compare.search_space import declared_space

    return [d.name for d in declared_space(parse_optimizer(spec)).dims]


def test_your_optimizer_is_tuned_over_the_dimensions_a_named_one_is():
    """As AdamW: lr, the betas, weight decay, warmup and schedule (an imported optimizer was
    tuned over lr alone); three betas are kept at their defaults (Adan's pair of tuned betas
    was refused when built), and ``alpha`` is RMSprop's smoothing only in the package
    (AdEMAMix's is a mixing weight: not tuned as a smoothing constant)."""
    adamw = _dims("adamw")
    assert adamw == ["lr", "beta1", "beta2", "weight_decay", "warmup", "schedule"]
    assert _dims(str(EXAMPLES / "adopt.py:ADOPT")) == adamw
    assert _dims(str(EXAMPLES / "cautious_adamw.py:CautiousAdamW")) == adamw
    no_betas = ["lr", "weight_decay", "warmup", "schedule"]
    assert _dims(str(EXAMPLES / "ademamix.py:AdEMAMix")) == no_betas == _dims("adan")
    assert "alpha" in _dims("rmsprop")


def test_your_named_optimizer_says_once_that_a_rule_of_it_runs_eagerly(tmp_path):
    """The package's named optimizers say nothing (documented); yours did not either. Cautious
    with its form runs fused (tests/test_wrapper_fused.py); without it, eagerly, said."""
    from descentlab._announce import PROCESS

    PROCESS.forget("eager")  # (said once per process: another test may have built it)
    text = (EXAMPLES / "cautious_adamw.py").read_text(encoding="utf-8")
    eager = tmp_path / "eager_cautious.py"
    eager.write_text(text.replace("    def form(self, f, u):", "    def _unused(self, f, u):"))
    with pytest.warns(RuntimeWarning, match="cautious has no fused form"):
        optim.get(f"{eager}:CautiousAdamW")([torch.nn.Parameter(torch.zeros(2))])


def test_the_guide_shows_the_examples_as_they_are_and_the_api_page_the_authoring_names():
    import importlib.util

    root = EXAMPLES.parents[1]
    made = importlib.util.spec_from_file_location(
        "cli_examples", root / "scripts" / "cli_examples.py"
    )
    examples = importlib.util.module_from_spec(made)
    made.loader.exec_module(examples)
    page = (root / "docs" / "own_optimizer.md").read_text(encoding="utf-8")
    blocks = {m["path"]: m["body"] for m in examples.FILE_BLOCK.finditer(page)}
    assert set(blocks) == {f"examples/optimizers/{p.name}" for p in EXAMPLES.glob("*.py")}
    for path, body in blocks.items():
        assert body == (root / path).read_text(encoding="utf-8"), path
    api = (root / "docs" / "api" / "optim.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^ +- (\w+)$", api, re.MULTILINE))
    used = {n for p in EXAMPLES.glob("*.py") for n in re.findall(r"\boptim\.(\w+)", p.read_text())}
    assert used <= listed, sorted(used - listed)
    assert {"Named", "declare", "Real", "Items", "BETAS", "step_values", "register"} <= listed
