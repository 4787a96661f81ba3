"""The playground's answers where a learner's link or rule used to mislead: a non-finite
number in a chain is refused in one line (never "unknown update rule 'nan'", never run at the
slider's rate instead), a chain that sets its own lr runs at it and says so, a run that barely
moves says so, and a diverged run's loss stops where it diverged."""

from __future__ import annotations

import math
import re

import pytest

from descentlab.experiments.compare.choices import parse_rule
from descentlab.playground import compute

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _run(optimizers, land="rosenbrock", starts=((-1.2, 1.0),), steps=40):
    req = {"landscape": land, "starts": [list(s) for s in starts], "steps": steps,
           "optimizers": optimizers}  # fmt: skip
    return compute.run_paths(req)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "scale_by_lr(lr=1e999)",
            "scale_by_lr: lr must be a finite number, got inf (the number overflows)",
        ),
        ("scale_by_lr(lr=nan)", "scale_by_lr: lr must be a finite number, got nan"),
        ("scale_by_lr(lr=inf)", "scale_by_lr: lr must be a finite number, got inf"),
        ("chain(trace(momentum=nan), scale_by_lr())", "trace: momentum must be a finite number"),
        ("scale_by_adam(betas=(0.9, 1e999))", "scale_by_adam: betas[1] must be a finite number"),
    ],
)
def test_a_non_finite_number_in_a_rule_is_refused_in_one_line(rule, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_rule(rule)
    with pytest.raises(compute.RequestError) as err:
        _run([{"rule": rule, "lr": 0.001}])
    assert str(err.value) == f"optimizers[0].rule: {err.value.args[0].split(': ', 1)[1]}"
    assert message in str(err.value) and "unknown update rule" not in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("rule", "slider", "runs_at", "noted"),
    [
        ("scale_by_lr(lr=0.002)", 0.5, 0.002, True),  # the rule's own lr, and the page says so
        ("chain(trace(momentum=0.5), scale_by_lr(lr=0.002))", 0.5, 0.002, True),
        ("scale_by_lr()", 0.002, 0.002, False),  # no lr typed: the slider's
    ],
)
def test_a_chain_runs_at_the_lr_its_text_sets_and_says_so(rule, slider, runs_at, noted):
    out = _run([{"rule": rule, "lr": slider}], steps=1)
    same = _run([{"rule": "scale_by_lr()", "lr": runs_at}], steps=1)
    if "trace" not in rule:
        assert out["runs"][0]["paths"] == same["runs"][0]["paths"]
    assert any("the lr slider does not apply" in n for n in out["notes"]) is noted


def test_muon_at_its_records_rosenbrock_rate_says_it_barely_moved():
    meta = compute.meta()
    land = next(x for x in meta["landscapes"] if x["name"] == "rosenbrock")
    lr = land["defaults"]["optimizers"]["muon"]["lr"]
    out = _run([{"name": "muon", "lr": lr}, {"name": "adam", "lr": 0.05}], steps=100)
    [note] = out["notes"]
    assert note.startswith(f"muon barely moved at lr {lr:g}") and "raise its lr" in note


@pytest.mark.parametrize(
    ("spec", "diverges"),
    [({"name": "sgd", "lr": 0.01}, True), ({"name": "adam", "lr": 0.05}, False)],
)
def test_a_diverged_runs_loss_stops_where_it_diverged(spec, diverges):
    run = _run([spec], steps=60)["runs"][0]
    at, losses = run["diverged_at"][0], run["losses"][0]
    assert (at >= 0) is diverges and len(losses) == 61
    if diverges:  # no frozen value after it (it read as a plateau at ~1e9)
        assert losses[at + 1 :] == [None] * (60 - at)
    else:
        assert all(v is not None and math.isfinite(v) for v in losses)
