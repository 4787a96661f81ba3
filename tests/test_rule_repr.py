"""Every update rule's ``repr`` is the call that builds it again.

A comparison records a composed optimizer as the ``repr`` of its rule and ``descentlab
report`` parses it back with the safe rule-expression grammar of ``compare --optimizer``
(:func:`descentlab.experiments.compare.parse_rule`), so a repr that does not parse back (or
parses to another rule) breaks the report. The table below gives, for every rule the grammar
knows, arguments that differ from the defaults; the test fails when a rule is added to the
registry without a row here -- unless it is written in the form
(:class:`descentlab.optim.form.FormRule`), whose declared hyperparameter specs give its row.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from descentlab import optim
from descentlab.experiments.compare import parse_optimizer, parse_rule
from descentlab.experiments.compare.choices import _rule_factories
from descentlab.optim import hyperspec as hs
from descentlab.optim.form import FormRule

# rule name -> argument sets; together they move every constructor argument off its default.
NON_DEFAULT: dict[str, list[dict]] = {
    "add_decayed_weights": [
        {"weight_decay": 0.05},
        {"weight_decay": 0.05, "on_when": "decoupled_weight_decay"},
    ],
    "add_l2": [{"weight_decay": 0.02}, {"weight_decay": 0.02, "off_when": "decoupled"}],
    "add_noise": [{"noise_eta": 0.3, "noise_gamma": 0.6, "noise_seed": 7}],
    "clip_by_global_norm": [{"max_norm": 2.5}],
    "clip_by_value": [{"clip_value": 0.25}],
    "maximize": [{"maximize": True}],
    "non_finite_guard": [{"mode": "skip"}, {"mode": "zero"}],
    "scale_by_adadelta": [{"rho": 0.8, "eps": 1e-5}],
    "scale_by_adagrad": [{"initial_accumulator_value": 0.1, "eps": 1e-9, "eps_inside_sqrt": True}],
    "scale_by_adam": [
        {
            "betas": (0.8, 0.95),
            "eps": 1e-7,
            "amsgrad": True,
            "bias_correction": False,
            "eps_inside_sqrt": True,
        },
    ],
    "scale_by_adamax": [{"betas": (0.8, 0.95), "eps": 1e-7}],
    "scale_by_asgd": [{"lr": 0.05, "lambd": 1e-3, "alpha": 0.5, "t0": 3.0}],
    "scale_by_rprop": [{"lr": 0.02, "etas": (0.4, 1.3), "step_sizes": (1e-5, 10.0)}],
    "scale_by_lbfgs": [
        {
            "max_iter": 3,
            "max_eval": 4,
            "tolerance_grad": 1e-6,
            "tolerance_change": 1e-8,
            "history_size": 5,
            "line_search_fn": "strong_wolfe",
        },
    ],
    "scale_by_lr": [{"lr": 0.25}, {"lr": 0.5, "lr_decay": 0.01}],
    "scale_by_nadam": [{"betas": (0.8, 0.95), "eps": 1e-7, "momentum_decay": 0.005}],
    "scale_by_radam": [{"betas": (0.7, 0.9), "eps": 1e-6}],
    "scale_by_rms": [{"alpha": 0.9, "eps": 1e-6, "centered": True, "eps_inside_sqrt": True}],
    "trace": [{"momentum": 0.8, "dampening": 0.1}, {"momentum": 0.7, "nesterov": True}],
    "scale_by_lion": [{"betas": (0.8, 0.95)}],
    "lookahead": [{"sync_period": 3, "slow_step_size": 0.7}],
    "sam_ascent": [{"rho": 0.1, "adaptive": True}],
    "schedule_free_adamw": [
        {
            "lr": 0.01,
            "betas": (0.8, 0.99),
            "eps": 1e-6,
            "weight_decay": 0.01,
            "weight_lr_power": 1.0,
            "bias_correction": "lr",
        }
    ],
    "scale_by_adafactor": [
        {"lr": 0.02, "beta2_decay": -0.6, "eps": (1e-20, 1e-2), "d": 2.0, "weight_decay": 0.01}
    ],
    "scale_by_muon": [
        {
            "lr": 0.02,
            "weight_decay": 0.05,
            "momentum": 0.9,
            "nesterov": False,
            "ns_coefficients": (3.0, -3.0, 1.0),
            "eps": 1e-6,
            "ns_steps": 4,
            "adjust_lr_fn": "match_rms_adamw",
            "ns_dtype": "float64",
            "adamw_lr": 0.01,
            "adamw_betas": (0.8, 0.99),
            "adamw_eps": 1e-6,
            "adamw_weight_decay": 0.01,
        }
    ],
    "scale_by_shampoo": [
        {
            "betas": (0.8, 0.99),
            "epsilon": 1e-6,
            "block_size": 3,
            "precondition_frequency": 2,
            "start_preconditioning_step": 2,
            "grafting": "adagrad",
            "graft_eps": 1e-6,
            "nesterov": True,
            "merge_dims": False,
            "precondition_1d": False,
            "root_dtype": "float32",
        }
    ],
    "scale_by_soap": [
        {
            "lr": 0.01,
            "betas": (0.9, 0.99),
            "shampoo_beta": 0.9,
            "eps": 1e-6,
            "weight_decay": 0.05,
            "precondition_frequency": 2,
            "max_precondition_dim": 3,
            "merge_dims": True,
            "precondition_1d": True,
            "correct_bias": False,
        }
    ],
    "velocity": [
        {"momentum": 0.8, "lr": 0.05, "nesterov": True},
        {"momentum": 0.6, "lr": 0.02, "lookahead": True},
    ],
}

RULES = {
    name: f
    for name, f in _rule_factories().items()
    if isinstance(f, type) and issubclass(f, optim.Rule)
}


def _moved(spec, default):
    """A valid value of ``spec`` other than ``default`` (from the declaration)."""
    if isinstance(spec, hs.Flag):
        return not default
    if isinstance(spec, hs.Pair):
        return (_moved(spec.first, default[0]), _moved(spec.second, default[1]))
    if isinstance(spec, hs.Real):
        for v in (default * 0.5, default * 2, 0.5, 1.5):
            if v != default and spec.inside(v):
                return v
    raise AssertionError(f"no moved value for {spec!r}")


# rules written in the form: a row from their declared specs
for _name, _f in RULES.items():
    if issubclass(_f, FormRule) and _name not in NON_DEFAULT:
        _defaults = _f().defaults
        NON_DEFAULT[_name] = [{k: _moved(s, _defaults[k]) for k, s in _f.checks.items()}]
CASES = [(name, kw) for name, sets in NON_DEFAULT.items() for kw in sets]


def test_the_table_covers_every_rule_and_every_argument():
    assert sorted(RULES) == sorted(NON_DEFAULT), "add the new rule to NON_DEFAULT"
    for name, factory in RULES.items():
        params = inspect.signature(factory).parameters
        moved = {k for kw in NON_DEFAULT[name] for k, v in kw.items() if v != params[k].default}
        assert moved == set(params), (
            f"{name}: arguments left at their defaults: {set(params) - moved}"
        )


def _state(rule):
    return {k: v for k, v in vars(rule).items() if not k.startswith("_cache")}


@pytest.mark.parametrize(
    ("name", "kwargs"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
)
def test_repr_shows_the_values_and_parses_back_to_the_same_rule(name, kwargs):
    rule = RULES[name](**kwargs)
    text = repr(rule)
    assert text.startswith(f"{name}(")
    for key, value in kwargs.items():
        assert f"{key}={value!r}" in text, f"{text} does not show {key}={value!r}"
    back = parse_rule(text)
    assert type(back) is type(rule)
    assert _state(back) == _state(rule)
    assert repr(back) == text


@pytest.mark.parametrize(
    ("name", "kwargs"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
)
def test_parsed_rule_updates_exactly_as_the_original(name, kwargs):
    """Same class and attributes is not the whole story: run both on the same losses."""
    gen = torch.Generator().manual_seed(0)
    shifts = [torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(3)]
    start = torch.linspace(-1, 1, 5, dtype=torch.float64)
    finals = []
    for rule in (RULES[name](**kwargs), parse_rule(repr(RULES[name](**kwargs)))):
        w = torch.nn.Parameter(start.clone())
        if isinstance(rule, optim.scale_by_lbfgs):  # runs only inside LBFGS, from its values
            opt = optim.LBFGS([w], **rule.defaults)
        else:
            if "lr" not in rule.defaults:
                rule = optim.chain(rule, optim.scale_by_lr(0.1))
            opt = optim.Optimizer([w], rule)
        for g in shifts:

            def closure(g=g, w=w, opt=opt):
                opt.zero_grad()
                loss = (g * w).sum() + 0.5 * (w * w).sum()
                loss.backward()
                return loss

            opt.step(closure)
        finals.append(w.detach().clone())
    assert torch.equal(finals[0], finals[1])
    assert not torch.equal(finals[0], start)


def test_a_comparison_that_used_a_guarded_chain_reads_back():
    """What ``descentlab report`` does: OptimizerChoice -> dict -> OptimizerChoice."""
    rule = optim.chain(
        optim.non_finite_guard("skip"),
        optim.clip_by_global_norm(2.0),
        optim.velocity(0.5, lr=0.1, lookahead=True),
    )
    choice = parse_optimizer(("guarded", rule))
    again = type(choice).from_dict(choice.to_dict())
    assert again.describe() == choice.describe() == repr(rule)
    assert [type(r) for r in again.optimizer.rules] == [type(r) for r in rule.rules]
    assert again.optimizer.rules[0].defaults == {"non_finite": "skip"}
    assert again.optimizer.rules[2].lookahead is True


def test_descentlab_report_rerenders_a_comparison_of_a_guarded_chain(tmp_path, capsys):
    """The user's path end to end: compare a chain with a guard and the lookahead form, then
    re-render its report from the store (this failed while those reprs did not parse)."""
    from descentlab.cli import main

    chain = "g=chain(non_finite_guard(mode='skip'), velocity(momentum=0.5, lr=0.1, lookahead=True))"
    argv = [
        "compare", "--problem", "moons", "--problem-option", "n_samples=200", "--model", "mlp",
        "--model-option", "hidden=4", "--optimizer", chain, "--batch-size", "16",
        "--steps", "6", "--tune-steps", "4", "--lr-trials", "2", "--seeds", "1",
        "--tune-seeds", "1", "--no-refine", "--landscapes", "none", "--no-progress",
        "--workers", "1", "--runs-dir", str(tmp_path), "--name", "guarded",
    ]  # fmt: skip
    assert main(argv) == 0
    (tmp_path / "guarded" / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "guarded")]) == 0
    html = (tmp_path / "guarded" / "report.html").read_text()
    assert "non_finite_guard(mode=&#x27;skip&#x27;)" in html  # the rule, HTML-escaped
    assert "lookahead=True" in html
