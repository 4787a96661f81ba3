"""The optimizer records (descentlab.optim.records): one per registered optimizer."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from descentlab import optim
from descentlab.problems import landscapes

ROLES = {
    "step size",
    "search direction (momentum)",
    "adaptive learning rate",
    "direction + adaptive rate",
    "regularization / sign",
    "wrapper (gradient point, averaging)",
    "other",
}


def test_one_record_per_registered_name_in_registry_order():
    recs = optim.records()
    assert tuple(r.name for r in recs) == optim.NAMES
    # 13 classic + Lion, Lookahead, SAM, SF-AdamW, Adafactor, Muon, Shampoo, SOAP
    assert len(optim.NAMES) == 21
    for r in recs:
        assert optim.record(r.name) is r
        assert optim.record(f" {r.name.upper()} ") is r
        assert optim.get(r.name) is r.factory
        assert issubclass(r.factory, optim.Optimizer)


def test_unknown_name_is_a_key_error_listing_the_valid_ones():
    with pytest.raises(KeyError, match=r"unknown optimizer 'adamm'; valid names: sgd, momentum"):
        optim.record("adamm")


def test_records_are_complete_and_distinct():
    recs = optim.records()
    assert len({r.display for r in recs}) == len(recs)
    assert len({r.color.upper() for r in recs}) == len(recs)
    for r in recs:
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", r.color), r
        lo, hi = r.lr_range
        assert 0 < lo < hi and hi / lo == pytest.approx(100.0), r  # two decades each
        assert r.family in {"sgd", "momentum", "adaptive", "adam"}, r
        assert 1950 <= r.year <= 2030 and str(r.year) in r.reference, r
        assert set(r.demo_lr) <= {"ravine", "saddle"}


def test_records_are_frozen():
    r = optim.record("adam")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.display = "ADAM"  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.demo_lr["ravine"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        r.parity[0].kwargs["lr"] = 1.0  # type: ignore[index]


def test_a_bad_lr_range_names_the_optimizer_and_the_value():
    fields = {
        f.name: getattr(optim.record("sgd"), f.name)
        for f in dataclasses.fields(optim.OptimizerRecord)
    }
    with pytest.raises(ValueError, match=r"sgd: lr_range must be 0 < low < high, got \(1.0, 0.1\)"):
        optim.OptimizerRecord(**{**fields, "lr_range": (1.0, 0.1)})


def test_parity_configs_build_both_optimizers():
    """Every configuration constructs torch's namesake and the record's class alike."""
    for r in optim.records():
        for c in r.parity:
            w = torch.nn.Parameter(torch.ones(2))
            getattr(torch.optim, c.torch)([w], **c.kwargs)
            groups = [{"params": [w]}, {"params": [torch.nn.Parameter(torch.ones(2))], **c.group2}]
            opt = r.factory(groups, fused=False, **c.kwargs)
            assert opt.param_groups[1].items() >= dict(c.group2).items()


def test_torch_namesakes_have_parity_configs():
    # torch's Muon takes matrices only: its parity (with torch's AdamW for the rest, as
    # descentlab's Muon falls back) runs in tests/test_modern_optim.py
    for r in optim.records():
        if hasattr(torch.optim, r.factory.__name__) and r.name != "muon":
            assert r.parity, f"{r.name}: torch.optim.{r.factory.__name__} exists but no parity"


def test_lr_on_a_tuned_landscape_is_the_tuned_rate():
    ravine = landscapes.get("ravine")
    assert optim.record("sgd").lr_on(ravine) == 0.18
    assert optim.record("adadelta").lr_on(ravine) == 20.0
    assert optim.record("adam").lr_on(landscapes.get("saddle")) == 0.05


def test_lr_on_other_landscapes_follows_the_family():
    """Untuned landscapes: the landscape's own rate for SGD-like methods, a tenth of it for
    momentum methods, torch's 1.0 for Adadelta and 1/50 of the domain (2 digits) for adaptive
    ones -- so a new optimizer never silently gets SGD's rate."""
    f = landscapes.get("rosenbrock")
    width = min(hi - lo for lo, hi in f.domain)
    assert optim.record("sgd").lr_on(f) == f.lr
    assert optim.record("asgd").lr_on(f) == f.lr
    assert optim.record("momentum").lr_on(f) == f.lr / 10
    assert optim.record("nesterov").lr_on(f) == f.lr / 10
    assert optim.record("adadelta").lr_on(f) == 1.0
    for name in ("adagrad", "rmsprop", "adam", "adamw", "nadam", "radam", "adamax", "rprop"):
        assert optim.record(name).adaptive
        got = optim.record(name).lr_on(f)
        assert got == pytest.approx(width / 50, rel=0.05) and got != f.lr, name
    # the adaptive methods' rate on the landscapes without a tuned one
    assert optim.record("adamw").lr_on(landscapes.get("ravine")) == pytest.approx(
        min(hi - lo for lo, hi in landscapes.get("ravine").domain) / 50, rel=0.05
    )


def test_every_rule_has_a_role():
    rules = [v for v in vars(optim).values() if isinstance(v, type) and issubclass(v, optim.Rule)]
    assert len(rules) > 20
    for cls in rules:
        assert cls.role in ROLES, cls
    assert optim.scale_by_adam.role == "direction + adaptive rate"
    assert optim.trace.role == optim.velocity.role == "search direction (momentum)"
    # Lookahead and SAM change where the gradient is taken or average the iterates
    assert optim.lookahead.role == optim.sam_ascent.role == "wrapper (gradient point, averaging)"
    assert optim.add_decayed_weights.role == optim.add_l2.role == "regularization / sign"
    assert optim.scale_by_lr.role == "step size"
