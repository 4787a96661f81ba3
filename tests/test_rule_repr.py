"""Every update rule's ``repr`` is the call that builds it again.

A comparison records a composed optimizer as the ``repr`` of its rule and ``descentlab
report`` parses it back with the safe rule-expression grammar of ``compare --optimizer``
(:func:`descentlab.experiments.compare.parse_rule`), so a repr that does not parse back (or
parses to another rule) breaks the report. The cases come from the registry: for every rule
the grammar knows, arguments that move each constructor argument off its default, drawn from
the rule's declared hyperparameter specs (:attr:`Rule.checks <descentlab.optim.Rule.checks>`),
else from the type of the default; no table to extend when a rule is added.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from descentlab import optim
from descentlab.experiments.compare import parse_optimizer, parse_rule
from descentlab.experiments.compare.choices import _rule_factories
from descentlab.optim import hyperspec as hs

RULES = {
    name: f
    for name, f in _rule_factories().items()
    if isinstance(f, type) and issubclass(f, optim.Rule)
}

# Values (the first, and further ones each in a row of its own) for constructor arguments that
# neither a declaration (``Rule.checks``) nor the type of their default can move: strings and
# ``None`` defaults of rules whose checks are still written by hand. A row here is for an
# undeclared argument only (checked below): declare the argument and delete its row.
UNDECLARED: dict[tuple[str, str], list] = {
    ("add_decayed_weights", "on_when"): ["decoupled_weight_decay"],
    ("add_l2", "off_when"): ["decoupled"],
    ("non_finite_guard", "mode"): ["skip", "zero"],  # declared under its hyperparameter's name
}


def _moved(spec, default):
    """Valid values of ``spec`` other than ``default``, from the declaration (the first is
    the one used with the other arguments moved)."""
    if isinstance(spec, hs.Flag):
        return [not default]
    if isinstance(spec, hs.Choice):
        return [o for o in spec.options if o != default]
    if isinstance(spec, hs.Pair):
        return [(_moved(spec.first, default[0])[0], _moved(spec.second, default[1])[0])]
    if isinstance(spec, hs.Items):
        return [tuple(_moved(e, d)[0] for e, d in zip(spec.entries, default, strict=True))]
    if isinstance(spec, hs.Integer):
        near = (default + 1, default - 1) if default is not None else ((spec.lo or 0) + 3,)
        return [v for v in near if spec.lo is None or v >= spec.lo][:1]
    if isinstance(spec, hs.Real):
        start = [default * 0.5, default * 2] if default is not None else []
        return [v for v in (*start, 0.5, 1.5) if v != default and spec.inside(v)][:1]
    raise AssertionError(f"no moved value for {spec!r}")


def _guessed(default):
    """Values other than ``default`` of its type, for an argument without a declaration."""
    if isinstance(default, bool):
        return [not default]
    if isinstance(default, int):
        return [default + 1, default - 1]
    if isinstance(default, float):
        return [default * 0.5, default * 2] if default else [0.5]
    if isinstance(default, tuple) and all(isinstance(x, int | float) for x in default):
        return [tuple(_guessed(x)[i] for x in default) for i in range(2)]
    return []


def _valid(name, kwargs) -> bool:
    """Whether an optimizer accepts the rule built with ``kwargs`` (groups are validated)."""
    try:
        _optimizer(RULES[name](**kwargs), torch.nn.Parameter(torch.ones(2)))
    except (ValueError, TypeError):
        return False
    return True


def _rows(name):
    """Argument sets that together move every argument of rule ``name`` off its default: all
    of them at once where the rule accepts that, else each (with one other where a relation
    needs it); one more row for each further option of a choice."""
    factory = RULES[name]
    checks = factory().checks
    options = {}
    for key, param in inspect.signature(factory).parameters.items():
        if (name, key) in UNDECLARED:
            options[key] = UNDECLARED[name, key]
        elif key in checks:
            options[key] = _moved(checks[key], param.default)
        else:  # the guesses the rule accepts
            options[key] = [v for v in _guessed(param.default) if _valid(name, {key: v})][:1]
        assert options[key], (
            f"{name}({key}=...): no value to move it to -- declare it in {name}.checks"
        )
    first = {key: values[0] for key, values in options.items()}
    rows = [first] if _valid(name, first) else []
    for key in first if not rows else ():
        pairs = [{key: first[key]}] + [{key: first[key], o: first[o]} for o in first if o != key]
        row = next((kw for kw in pairs if _valid(name, kw)), None)
        assert row is not None, f"{name}: no valid arguments move {key}={first[key]!r}"
        rows.append(row)
    rows += [
        {key: v} for key, values in options.items() for v in values[1:] if _valid(name, {key: v})
    ]
    return rows


def _optimizer(rule, w):
    if isinstance(rule, optim.scale_by_lbfgs):  # runs only inside LBFGS, from its values
        return optim.LBFGS([w], **rule.defaults)
    if "lr" not in rule.defaults:
        rule = optim.chain(rule, optim.scale_by_lr(0.1))
    return optim.Optimizer([w], rule, fused=False)


CASES = [(name, kw) for name in RULES for kw in _rows(name)]


def test_every_argument_of_every_registered_rule_is_moved():
    for rec in optim.records():  # every rule of every named optimizer is in the grammar
        opt = rec.factory([torch.nn.Parameter(torch.zeros(2))], fused=False)
        assert {type(r) for r in opt.rule.rules} <= set(RULES.values()), rec.name
    for name, factory in RULES.items():
        params = inspect.signature(factory).parameters
        moved = {k for n, kw in CASES if n == name for k, v in kw.items() if v != params[k].default}
        assert moved == set(params), (
            f"{name}: arguments left at their defaults: {set(params) - moved}"
        )


def test_the_undeclared_values_are_for_undeclared_arguments():
    for name, key in UNDECLARED:
        assert key in inspect.signature(RULES[name]).parameters, (name, key)
        assert key not in RULES[name]().checks, f"{name}.{key} is declared now: delete its row"


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
        opt = _optimizer(rule, w)
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
        "--workers", "1", "--runs-dir", str(tmp_path), "--name", "guarded", "--report",
    ]  # fmt: skip
    assert main(argv) == 0
    (tmp_path / "guarded" / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "guarded")]) == 0
    html = (tmp_path / "guarded" / "report.html").read_text()
    assert "non_finite_guard(mode=&#x27;skip&#x27;)" in html  # the rule, HTML-escaped
    assert "lookahead=True" in html
