"""The surfaces a new user (or an attacker) meets first: every integer option
of every subcommand (generated from the parsers, so that a new option is covered by default),
the integers in ``K=V`` options, a user's Datasets and streams, checkpoints that are not the
program's own, and files in the way. Each case: the command, and the one line it must print
(exit 2, ``descentlab...: error: ...``, no traceback), or that it succeeds; nothing left
half-written.

``pytest tests/test_untrusted_inputs.py -q -rA`` lists the cases; the groups are the ``GROUP``
prefixes of the test names (``flags``, ``options``, ``datasets``, ``streams``,
``checkpoints``, ``files``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from _models import one_line

from descentlab.cli import build_parser, main

#: the most an integer option takes: a billion for counts, 64 bits for seeds and run ids,
#: 16 bits for a port (descentlab.cli._options.integer_limit)
LIMITS = {
    "seed": 2**63 - 1,
    "split_seed": 2**63 - 1,
    "resume": 2**63 - 1,
    "show": 2**63 - 1,
    "port": 65_535,
}


def integer_limit(dest: str) -> int:
    return LIMITS.get(dest, 10**9)


class _Reached(Exception):
    """The command got past its checks to its real work."""


def _reached(*_args, **_kwargs):
    raise _Reached


@pytest.fixture
def stop_before_work(monkeypatch):
    """The engine, the comparisons, the races, the experiments and the playground's server
    replaced by :func:`_reached`: a value that gets that far was accepted."""
    import descentlab.book.experiments as lectures
    import descentlab.engine.run as run
    import descentlab.experiments.compare.running as running
    import descentlab.experiments.multi as multi
    import descentlab.experiments.scale as scale
    import descentlab.problems.trajectories as trajectories

    for mod, name in [
        (run, "train"),
        (run, "resume"),
        (running, "compare"),
        (multi, "compare_many"),
        (scale, "study"),
        (trajectories, "races"),
        (lectures, "run"),
    ]:
        monkeypatch.setattr(mod, name, _reached)
    try:
        import descentlab.playground.app as app

        monkeypatch.setattr(app, "serve", _reached)
    except ImportError:
        pass


def _run(argv, capsys):  # type: ignore[no-untyped-def]
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    except _Reached:
        code = "reached"
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------
# flags: every integer option of every subcommand, read from the parsers

BASE = {
    "train": [
        "train",
        "--problem",
        "moons",
        "--model",
        "mlp",
        "--no-progress",
        "--runs-dir",
        "runs",
        "--steps",
        "3",
    ],
    "compare": [
        "compare",
        "--problem",
        "moons",
        "--optimizers",
        "sgd",
        "--no-progress",
        "--no-report",
        "--runs-dir",
        "runs",
    ],
    "scale": [
        "scale",
        "--problem",
        "moons",
        "--model",
        "mlp",
        "--sizes",
        "4,8,16",
        "--optimizers",
        "sgd,adam",
        "--no-progress",
        "--runs-dir",
        "runs",
    ],
    "landscape": [
        "landscape",
        "--function",
        "ravine",
        "--optimizers",
        "sgd",
        "--no-gif",
        "--out",
        "out",
    ],
    "convarith": ["convarith", "bottleneck"],
    "experiment": ["experiment", "bias_variance", "--quick", "--out", "out"],
    "playground": ["playground", "--no-browser"],
    "runs": ["runs", "runs"],
}


def _integer_options() -> list[tuple[str, str, str]]:
    """(subcommand, option, destination) of every option whose value is read as an integer."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for name, sp in sub.choices.items():
        for action in sp._actions:
            if not action.option_strings or action.type is None:
                continue
            try:
                value = action.type("5")
            except (argparse.ArgumentTypeError, TypeError, ValueError):
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                found.append((name, action.option_strings[-1], action.dest))
    return found


INTEGER_OPTIONS = _integer_options()


def test_flags_the_parsers_have_the_integer_options_the_table_knows():
    """Every subcommand with an integer option has a base command line here (a new
    subcommand's options are then tried by default)."""
    assert len(INTEGER_OPTIONS) >= 35
    assert {cmd for cmd, _opt, _dest in INTEGER_OPTIONS} <= set(BASE)
    assert ("train", "--accumulate", "accumulate") in INTEGER_OPTIONS
    from descentlab.cli import _options

    assert all(_options.integer_limit(d) == integer_limit(d) for _c, _o, d in INTEGER_OPTIONS)


def _flag_argv(cmd: str, opt: str, value: str) -> list[str]:
    base = list(BASE[cmd])
    if opt == "--epochs":
        base = base[:-2]  # (not with --steps)
    if (cmd, opt) == ("train", "--resume"):  # continues a stored run: no run options beside it
        base = ["train", "--no-progress", "--runs-dir", "runs"]
    return [*base, f"{opt}={value}"]


FLAG_CASES = [
    pytest.param(cmd, opt, value, id=f"{cmd}{opt}={label}")
    for cmd, opt, dest in INTEGER_OPTIONS
    for label, value in [
        ("limit+1", str(integer_limit(dest) + 1)),
        ("1e20", "99999999999999999999"),
    ]
]


@pytest.mark.parametrize("cmd, opt, value", FLAG_CASES)
def test_flags_an_integer_beyond_what_a_machine_can_do_is_one_line(
    cmd, opt, value, stop_before_work, capsys, tmp_path, monkeypatch
):
    """``train --accumulate 99999999999999999999`` ran until killed."""
    monkeypatch.chdir(tmp_path)
    code, _out, err = _run(_flag_argv(cmd, opt, value), capsys)
    one_line(code, err.replace(f"descentlab {cmd}: error", "descentlab: error"), opt, "at most")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "cmd, opt",
    [
        (c, o)
        for c, o, d in INTEGER_OPTIONS
        if d
        not in (
            "threads",
            "workers",
            "port",
            "resume",
            "cv",
            "early_stopping",
            "budget",
            "old_trials",
            "lr_trials",
            "tune_seeds",
            "seeds",
            "reduce",
            "in_ch",
            "out_ch",
            "kernel",
            "frames",
        )
    ],
)
def test_flags_the_limit_itself_is_not_refused_by_the_parser(
    cmd, opt, stop_before_work, capsys, tmp_path, monkeypatch
):
    """(counts whose own checks are tighter are left out)"""
    dest = next(d for c, o, d in INTEGER_OPTIONS if (c, o) == (cmd, opt))
    monkeypatch.chdir(tmp_path)
    code, _out, err = _run(_flag_argv(cmd, opt, str(integer_limit(dest))), capsys)
    assert "must be at most" not in err or opt not in err, err
    assert code in ("reached", 0, 2), err


# ------------------------------------------------------------------------------------------
# options: integers inside K=V options

OPTION_CASES = {
    "train-problem-option": [
        "train",
        "--problem",
        "moons",
        "--steps",
        "3",
        "--problem-option",
        "n_samples={v}",
    ],
    "train-model-option": [
        "train",
        "--problem",
        "moons",
        "--steps",
        "3",
        "--model-option",
        "hidden={v}",
    ],
    "train-hyper": ["train", "--problem", "moons", "--steps", "3", "--hyper", "nesterov={v}"],
    "train-loss-option": [
        "train",
        "--problem",
        "moons",
        "--steps",
        "3",
        "--loss-option",
        "reduction={v}",
    ],
    "compare-problem-option": [
        "compare",
        "--problem",
        "moons",
        "--optimizers",
        "sgd",
        "--problem-option",
        "n_samples={v}",
    ],
    "compare-model-option": [
        "compare",
        "--problem",
        "moons",
        "--optimizers",
        "sgd",
        "--model-option",
        "hidden={v}",
    ],
    "compare-hyper": [
        "compare",
        "--problem",
        "moons",
        "--optimizers",
        "sgd",
        "--hyper",
        "sgd.momentum={v}",
    ],
    "optimizers-set": ["optimizers", "adam", "--set", "eps={v}"],
}


@pytest.mark.parametrize(
    "value", ["99999999999999999999", "-99999999999999999999", "[1, 99999999999999999999]"]
)
@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_options_an_integer_beyond_64_bits_is_one_line(
    case, value, stop_before_work, capsys, tmp_path, monkeypatch
):
    """``--problem-option n_samples=99999999999999999999``: "Maximum allowed size exceeded"
    (no option named); ``--model-option hidden=...``: torch's "Overflow when unpacking"."""
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{v}", value) for a in OPTION_CASES[case]]
    if argv[0] in ("train", "compare"):
        argv += ["--no-progress", "--runs-dir", tmp_path / "runs"]
    flag = next(a for a in argv if a.startswith("--") and a.endswith(("option", "hyper", "set")))
    one_line(*_run(argv, capsys)[::2], flag, "beyond the 64-bit integers")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# datasets: labels out of range, wherever they are, and streams that fail, wherever they fail

DATASETS = Path(__file__).resolve().parent / "data" / "user_datasets.py"
TINY = ["--batch-size", "8", "--steps", "4", "--tune-steps", "4", "--lr-trials", "2",
        "--seeds", "1", "--landscapes", "none", "--no-progress", "--no-report",
        "--optimizers", "sgd", "--workers", "1"]  # fmt: skip
DATASET_CASES = [
    *[pytest.param("labels", [f"bad={bad}", f"at={at}", f"split={split!r}"],
                   [f"the {split} dataset's example {at} has the label {bad}"],
                   id=f"label-{bad}-at-{at}-in-{split}")
      for bad in (-1, -7, 2, 100) for at, split in ((0, "train"), (19, "test"))],
    *[pytest.param("stream_labels", [f"bad={bad}", f"at={at}"],
                   [f"example {at} of the stream has the label {bad}"],
                   id=f"stream-label-{bad}-at-{at}")
      for bad, at in ((-1, 0), (3, 37), (-2, 59))],
    *[pytest.param("stream_fails", [f"at={at}"],
                   [f"example {at} of the stream failed", "broken record"],
                   id=f"stream-fails-at-{at}")
      for at in (0, 13, 37, 59)],
]  # fmt: skip


@pytest.mark.parametrize("func, options, words", DATASET_CASES)
def test_datasets_a_fault_is_one_line_naming_split_example_and_value(func, options, words,
                                                                     tmp_path, capsys):  # fmt: skip
    argv = ["compare", "--problem", f"{DATASETS}:{func}", *TINY, "--runs-dir", tmp_path / "r"]
    for opt in options:
        argv += ["--problem-option", opt]
    one_line(*_run(argv, capsys)[::2], *words)
    assert not any((tmp_path / "r").glob("*/*.sqlite"))  # (found before any trial)


# ------------------------------------------------------------------------------------------
# checkpoints: files that are not the program's own, their checksums recomputed


def _checkpoint_bytes(kind: str, good: bytes) -> bytes:
    import io
    import pickle

    import torch

    def saved(obj: object) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    good_state = torch.load(io.BytesIO(good), weights_only=True)
    if kind.startswith("cut-"):
        return good[: int(len(good) * float(kind[4:]))]
    return {
        "empty": b"",
        "text": b"not a checkpoint",
        "zeros": bytes(4096),
        "pickle-of-a-function": pickle.dumps(print),
        "pickle-of-a-dict": pickle.dumps({"step": 3}),
        "a-list": saved([1, 2]),
        "a-tensor": saved(torch.zeros(3)),
        "an-int-key": saved({1: 2}),
        "no-config": saved({k: v for k, v in good_state.items() if k != "config"}),
        "step-is-text": saved({**good_state, "step": "3"}),
        "step-is-a-bool": saved({**good_state, "step": True}),
        "step-negative": saved({**good_state, "step": -1}),
        "format-2": saved({**good_state, "format": 2}),
        "model-is-a-list": saved({**good_state, "model": [1]}),
        "rng-missing": saved({k: v for k, v in good_state.items() if k != "rng"}),
    }[kind]


CHECKPOINT_KINDS = ["empty", "text", "zeros", "pickle-of-a-function", "pickle-of-a-dict",
                    "a-list", "a-tensor", "an-int-key", "no-config", "step-is-text",
                    "step-is-a-bool", "step-negative", "format-2", "model-is-a-list",
                    "rng-missing", "cut-0.1", "cut-0.5", "cut-0.9", "cut-0.999"]  # fmt: skip


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    from descentlab.engine.config import RunConfig
    from descentlab.engine.run import train

    path = tmp_path_factory.mktemp("ckpt") / "run.pt"
    cfg = RunConfig(problem="moons", problem_options={"n_samples": 100}, steps=4,
                    batch_size=16, checkpoint_every=2)  # fmt: skip
    train(cfg, checkpoint_path=path, until_step=2, progress=False)
    return path.read_bytes()


@pytest.mark.parametrize("kind", CHECKPOINT_KINDS)
def test_checkpoints_one_that_is_not_the_programs_own_is_one_error_naming_it(kind,
                                                                            good_checkpoint,
                                                                            tmp_path):  # fmt: skip
    import hashlib
    import json

    from descentlab.engine.checkpoint import CheckpointError, checksum_path
    from descentlab.engine.resuming import run_checkpoint

    path = tmp_path / "run.pt"
    data = _checkpoint_bytes(kind, good_checkpoint)
    path.write_bytes(data)
    checksum_path(path).write_text(json.dumps({"sha256": hashlib.sha256(data).hexdigest(),
                                               "bytes": len(data), "step": 2}))  # fmt: skip
    with pytest.raises(CheckpointError) as info:
        run_checkpoint(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text, text
