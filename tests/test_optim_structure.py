"""How optim is put together: one module per optimizer family, eager runs announced."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import pytest
import torch

from descentlab import optim
from descentlab.optim.torchapi import Named


class _noisy_sign(optim.Rule):
    """A rule without a fused form (its update: the sign of the gradient)."""

    name = "noisy_sign"

    def update(self, grads, state, params, hyper):
        return [g.sign() for g in grads], state


def _opt(fused):
    w = torch.nn.Parameter(torch.ones(3))
    return optim.Optimizer([w], optim.chain(_noisy_sign(), optim.scale_by_lr(0.1)), fused=fused)


def test_a_rule_without_fused_form_is_announced_once_per_rule_class():
    with pytest.warns(
        RuntimeWarning,
        match=r"noisy_sign has no fused form \(a Rule written as update\(\).*\); fused=None runs",
    ) as rec:
        _opt(None)
    assert rec[0].filename == __file__  # points at the caller, not into descentlab
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _opt(None)  # once per process
        _opt(False)  # asking for eager says so


def test_fused_true_names_the_rule_without_fused_form():
    if not optim.fused_available():
        pytest.skip("no C++ compiler: fused=True is refused for that reason first")
    with pytest.raises(ValueError, match=r"rule\(s\) noisy_sign have no fused form"):
        _opt(True)


def test_every_named_optimizer_lives_with_its_rule_and_record():
    """An optimizer's class, its core rule and its record are defined in one module."""
    for rec in optim.records():
        module = inspect.getmodule(rec.factory)
        assert rec in module.RECORDS, rec.name
        core = [r for r in rec.factory([torch.nn.Parameter(torch.ones(1))], fused=False).rule.rules]
        shared = {"maximize", "add_l2", "add_decayed_weights", "scale_by_lr", "trace"}
        own = [r for r in core if r.name not in shared]
        for r in own:
            assert inspect.getmodule(type(r)).__name__.startswith("descentlab.optim."), r
        assert all(type(r).role != "other" for r in core), rec.name


def test_every_registered_modules_names_are_exported_by_optim():
    """A new optimizer module's rule and class are reachable as ``descentlab.optim.<name>``:
    the rule-expression parser (``compare --rule``, a rule's repr read back) finds rules there
    only, by ``optim.__all__``."""
    for rec in optim.records():
        module = inspect.getmodule(rec.factory)
        rules = [
            n for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, optim.Rule) and v.__module__ == module.__name__
        ]  # fmt: skip
        assert rules, module.__name__
        for name in [rec.factory.__name__, *rules]:
            assert name in module.__all__, f"{module.__name__}.{name}: add it to its __all__"
            star = f"from .{module.__name__.rpartition('.')[2]} import *"
            assert name in optim.__all__ and getattr(optim, name, None) is getattr(module, name), (
                f"{module.__name__}.{name} is not exported: add `{star}` to optim/__init__.py"
            )


def test_every_module_with_records_is_registered():
    """A module of descentlab.optim that declares ``RECORDS`` is in ``optim._MODULES`` (the
    registry's list, in the lectures' order), and only once."""
    root = Path(optim.__file__).parent
    declaring = {
        f"descentlab.optim.{path.stem}"
        for path in root.glob("*.py")
        if re.search(r"^RECORDS\b[^=\n]*=", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    registered = [m.__name__ for m in optim._MODULES]
    assert len(set(registered)) == len(registered), registered
    assert declaring == set(registered), (
        f"add {sorted(declaring - set(registered))} to _MODULES in descentlab/optim/__init__.py "
        "(where it belongs in the lectures' order)"
    )


def test_named_arguments_become_hyperparameters():
    w = torch.nn.Parameter(torch.ones(2))
    opt = optim.Adam([w], lr=0.1, betas=[0.8, 0.9], weight_decay=0.01, fused=False)
    group = opt.param_groups[0]
    assert group["lr"] == 0.1 and group["betas"] == (0.8, 0.9) and group["weight_decay"] == 0.01
    for plumbing in ("foreach", "capturable", "differentiable", "fused", "monitor", "rule"):
        assert plumbing not in group
    m = optim.Momentum([w], form="velocity", fused=False).param_groups[0]
    assert "form" not in m and "dampening" not in m and m["momentum"] == 0.9
    assert optim.Momentum([w], dampening=0.1, fused=False).param_groups[0]["dampening"] == 0.1
    with pytest.raises(ValueError, match=r"dampening applies to form='torch' only, got 0\.1"):
        optim.Momentum([w], dampening=0.1, form="velocity")


def test_a_named_subclass_needs_only_its_chain():
    class PlainSGD(Named):
        def __init__(self, params, lr=1e-3, weight_decay=0.0, *, fused=None, capturable=False):
            rule = optim.chain(optim.add_l2(), optim.scale_by_lr())
            super().__init__(params, rule, locals())

    w = torch.nn.Parameter(torch.ones(2))
    opt = PlainSGD([w], lr=0.5, weight_decay=0.1, fused=False)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["weight_decay"] == 0.1
    w.grad = torch.ones(2)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((2,), 1 - 0.5 * 1.1))
    with pytest.raises(ValueError, match="PlainSGD: capturable=True is not supported"):
        PlainSGD([w], capturable=True)


def test_an_optimizers_rule_shows_the_values_in_use_and_parses_back():
    from descentlab.experiments.compare import parse_rule

    w = [torch.nn.Parameter(torch.ones(2))]
    rule = optim.Adam(w, lr=0.1, betas=(0.8, 0.99), weight_decay=0.01, fused=False).rule
    text = repr(rule)
    assert "scale_by_lr(lr=0.1)" in text and "betas=(0.8, 0.99)" in text
    assert "add_l2(weight_decay=0.01, off_when='decoupled_weight_decay')" in text
    assert repr(parse_rule(text)) == text
    mine = optim.chain(optim.trace(), optim.scale_by_lr())
    opt = optim.Optimizer(w, mine, lr=0.3, momentum=0.5, fused=False)
    assert (
        repr(opt.rule)
        == "chain(trace(momentum=0.5, dampening=0.0, nesterov=False), scale_by_lr(lr=0.3))"
    )
    assert (
        repr(mine)
        == "chain(trace(momentum=0.9, dampening=0.0, nesterov=False), scale_by_lr(lr=0.001))"
    )


def test_a_fused_true_refusal_shows_the_values_in_use():
    if not optim.fused_available():
        pytest.skip("no C++ compiler: fused=True is refused for that reason first")
    w = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match=r"scale_by_lr\(lr=0\.25\)"):
        optim.Optimizer(w, optim.chain(_noisy_sign(), optim.scale_by_lr()), lr=0.25, fused=True)
