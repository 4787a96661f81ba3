"""An optimizer's card (descentlab.report.optimizer_card, ``descentlab optimizers``): every
registered optimizer, at its defaults and with each flag of its rules turned (drawn from the
registry and the declared checks), renders; the statements it prints, evaluated as Python in
float64, give what the form's float64 definition gives (descentlab.optim.form.reference) at
every step, state included; and the command's bad input ends in one line."""

from __future__ import annotations

import inspect

import pytest
import torch
from _models import run_cli

from descentlab import optim
from descentlab.optim import form as FM
from descentlab.optim.hyperspec import Flag
from descentlab.report.optimizer_card import card, coefficient_source, statements


def _probe(name: str, flags: dict):
    factory = optim.get(name)
    quiet = {"fused": False} if "fused" in inspect.signature(factory).parameters else {}
    return factory([{"params": [torch.nn.Parameter(torch.zeros(2))], **flags}], **quiet)


def _cases() -> list:
    """Each optimizer at its defaults, and with each flag its rules declare turned."""
    out = []
    for name in optim.NAMES:
        out.append(pytest.param(name, {}, id=name))
        opt = _probe(name, {})
        flags = {
            key
            for rule in opt.rule.rules
            for key, spec in getattr(rule, "checks", {}).items()
            if isinstance(spec, Flag) and key in opt.param_groups[0]
        }
        for key in sorted(flags):
            flip = {key: not opt.param_groups[0][key]}
            try:
                _probe(name, flip)
            except ValueError:  # nesterov without momentum: refused
                continue
            out.append(pytest.param(name, flip, id=f"{name}-{key}={flip[key]}"))
    return out


CASES = _cases()


def _takes(name: str, flags: dict) -> bool:
    return set(flags) <= set(inspect.signature(optim.get(name)).parameters)


@pytest.mark.parametrize(("name", "flags"), [c for c in CASES if _takes(*c.values)])
def test_every_optimizer_has_a_card(name, flags):
    text = card(name, flags)
    rec = optim.record(name)
    assert text.startswith(f"{rec.display} ({rec.year}): {rec.reference}")
    opt = _probe(name, flags)
    assert "chain: " + " -> ".join(r.name for r in opt.rule.rules) in text
    for key in opt.param_groups[0]:
        if key not in ("params", "step"):
            assert f"\n  {key} = " in text


def test_a_check_of_several_hyperparameters_is_stated_on_the_card():
    """Every declared relation says in its docstring what it asks (the card prints it)."""
    opts = [_probe(*case.values) for case in CASES]
    opts.append(optim.Nesterov([torch.nn.Parameter(torch.zeros(2))], lookahead=True))
    for opt in opts:
        for rule in opt.rule.rules:
            for rel in rule.relations:
                assert inspect.getdoc(rel.test), f"{rule.name}: a relation without words"
    text = card("sgd", {"momentum": 0.9})
    assert "  and: Nesterov's form needs a momentum and no dampening. (dampening, " in text


def test_adams_card_shows_its_update_and_a_flag_changes_it():
    text = card("adam")
    assert "betas = (0.9, 0.999): a pair (beta1, beta2)" in text
    assert "exp_avg <- exp_avg + c_1mb1·(g − exp_avg)" in text
    assert "p <- p + step·exp_avg / x1" in text
    assert 'bc2s = (h, t) -> (1 - h["betas"][1] ** t) ** 0.5  [0.03162 at t = 1]' in text
    assert "max_exp_avg_sq" not in text
    assert "max_exp_avg_sq <- max(max_exp_avg_sq, exp_avg_sq)" in card("adam", {"amsgrad": True})


def test_a_coefficient_is_shown_by_its_source():
    """Among several lambdas on one line, the one that is the coefficient."""
    one, zero = (lambda h, t: 1.0), (lambda h, t: 0.0)
    assert coefficient_source(one) == "(h, t) -> 1.0"
    assert coefficient_source(zero) == "(h, t) -> 0.0"
    assert coefficient_source(FM.product_prepare).endswith("form.product_prepare(h, t)")


# -- the printed statements are the form's update ----------------------------------------

_FUNCTIONS = {
    "sqrt": torch.sqrt,
    "maximum": torch.maximum,
    "abs": torch.abs,
    "sign": torch.sign,
    "where": lambda c, a, b: torch.where(
        torch.as_tensor(c), torch.as_tensor(a, dtype=torch.float64), b
    ),
    "clamp": lambda x, lo, hi: torch.clamp(x, min=lo, max=hi),
}


def _coefficient(c: FM.Coef, hyper, t: float, lr: float, state, lists):
    if c.lr:
        return float(c.fn(hyper, t, lr))
    if c.reads is not None:
        return float(c.fn(hyper, t, float(state[c.reads])))
    if c.per_tensor is not None:
        return float(c.fn(hyper, t, c.per_tensor(lists, 0)))
    return float(c.fn(hyper, t))


class _Names(dict):
    """The statements' names: a coefficient is computed where it is read, from the state as
    it is then (NAdam's coefficients read the running product its first statement updates)."""

    def __init__(self, values, coefs, compute) -> None:
        super().__init__(values)
        self.coefs, self.compute = coefs, compute

    def __missing__(self, name):
        if name in self.coefs:
            return self.compute(self.coefs[name])
        raise KeyError(name)


def _evaluate(form: FM.Form, final: bool, g, p, state, hyper, t: float, lr: float):
    """The printed statements run as Python (``state`` updated in place); the prepares and
    lazy state first, as the form's reference makes them."""
    lists = {k: [v] for k, v in state.items()}
    lists["_step_values"] = [t]
    for pr in form.prepares:
        pr.fn(lists, [p], [g], hyper)
    state.update({k: v[0] for k, v in lists.items() if not k.startswith("_")})
    for key in form.lazy:
        if state.get(key) is None:
            state[key] = torch.zeros_like(g)
    body, coefs = statements(form, final)
    arrays = {k: v[0] for k, v in lists.items() if k.startswith("_") and isinstance(v, list)}
    ns = _Names(
        {**_FUNCTIONS, "g": g, "p": p, **arrays, **state},
        coefs,
        lambda c: _coefficient(c, hyper, t, lr, state, lists),
    )
    result = None
    for s in body:
        value = eval(s.python, {"__builtins__": {}}, ns)
        ns[s.target] = value
        if s.kind in ("assign", "scale"):
            state[s.target] = value
        elif s.kind in ("out", "final"):
            result = value
    return result


def _chains() -> list:
    """Each registered case's optimizer, and the glue transforms no registered chain holds."""
    glue = [
        optim.chain(
            optim.non_finite_guard("zero"), optim.clip_by_value(0.5), optim.maximize(True),
            optim.add_l2(0.1), optim.trace(0.9, 0.1), optim.scale_by_lr(1e-2, lr_decay=0.1),
        ),
        optim.chain(
            optim.clip_by_global_norm(2.0), optim.add_noise(0.01, 0.55, 3),
            optim.trace(0.9, nesterov=True), optim.scale_by_lr(1e-2), optim.lookahead(3, 0.5),
        ),
    ]  # fmt: skip
    out = [pytest.param(lambda ps, c=c: _probe_with(c, ps), id=c.id) for c in CASES]
    out += [
        pytest.param(lambda ps, r=r: optim.Optimizer(ps, r), id=f"glue{i}")
        for i, r in enumerate(glue)
    ]
    return out


def _probe_with(case, params):
    name, flags = case.values
    factory = optim.get(name)
    quiet = {"fused": False} if "fused" in inspect.signature(factory).parameters else {}
    return factory([{"params": params, **flags}], lr=1e-2, **quiet)


@pytest.mark.parametrize("make", _chains())
def test_the_printed_statements_compute_the_forms_update(make):
    gen = torch.Generator().manual_seed(11)
    w = torch.nn.Parameter(torch.randn(32, dtype=torch.float64, generator=gen))
    opt = make([w])
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "step")}
    plan = opt.rule.final_plan(hyper)
    lr = 1e-2
    checked = 0
    for k, rule in enumerate(opt.rule.rules):
        if not isinstance(rule, FM.FormRule) or rule.passes_through(hyper):
            continue
        form = rule.built(hyper)
        finals = [False] + ([True] if plan is not None and plan[0] == k else [])
        for final in finals:
            p = torch.randn(32, dtype=torch.float64, generator=gen)
            ref = {k: v[0].double() for k, v in rule.init([p.clone()]).items()}
            mine = {k: v.clone() for k, v in ref.items()}
            for t in range(1, 9):  # RAdam rectifies from its sixth step
                g = torch.randn(32, dtype=torch.float64, generator=gen)
                want = FM.reference(form, g, p, ref, hyper, float(t), lr=lr if final else None)
                got = _evaluate(form, final, g, p, mine, hyper, float(t), lr)
                # bit for bit: the same operations in the same order
                assert torch.equal(got, want), (rule.name, t, final)
                for key, value in ref.items():
                    assert torch.equal(torch.as_tensor(mine[key]), torch.as_tensor(value)), key
                p = want if final else p + lr * want
            checked += 1
    if any(isinstance(r, FM.FormRule) for r in opt.rule.rules):
        assert checked


def _w(f):
    return f.coef("w", lambda h, t: 0.3)


@pytest.mark.parametrize(
    "write",
    [
        lambda f, s: f.g + (f.p + s),
        lambda f, s: f.g - (f.p - s),
        lambda f, s: f.g * (f.p * s),
        lambda f, s: f.g / (f.p * s),
        lambda f, s: f.g / (f.p / s),
        lambda f, s: (f.g - f.p) / f.p - s,
        lambda f, s: -(f.g + f.p) * s,
        lambda f, s: FM.sqrt(f.g * f.g + f.p) / (f.g - s),
        lambda f, s: FM.add(f.g + f.p, f.p * s, _w(f)),
        lambda f, s: FM.lerp(f.g + f.p, f.p - s, _w(f)),
        lambda f, s: FM.addcmul(f.g - f.p, f.p + s, f.g * s, _w(f)),
        lambda f, s: FM.addcdiv(f.p, f.p * s, f.g * f.p + s, _w(f)),
        lambda f, s: FM.addcdiv(f.p, f.g, f.p * s, _w(f)),
    ],
)
def test_operands_are_parenthesized_as_they_bind(write):
    """Forms the registry's rules do not reach: compound operands of each primitive, in the
    order of its definition, so the printed Python computes the form bit for bit (three
    values of unlike sizes, so that a changed order rounds otherwise)."""
    form = FM.Form()
    form.out(write(form, form.state("s")))
    gen = torch.Generator().manual_seed(3)
    g, p, s = (
        (torch.rand(64, dtype=torch.float64, generator=gen) + 0.5) * scale
        for scale in (1.0, 1e-3, 7.3)
    )
    want = FM.reference(form, g, p, {"s": s}, {}, 1.0)
    assert torch.equal(_evaluate(form, False, g, p, {"s": s}, {}, 1.0, 0.0), want)


# -- the command --------------------------------------------------------------------------


def test_the_command_lists_every_optimizer_and_shows_a_card(capsys):
    code, out, _ = run_cli(["optimizers"], capsys)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(optim.NAMES)
    code, out, _ = run_cli(["optimizers", "rmsprop", "--set", "centered=True"], capsys)
    assert code == 0 and out.strip() == card("rmsprop", {"centered": True})
    assert "grad_avg <- grad_avg + c_1ma·(g − grad_avg)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["optimizers", "nope"], "unknown optimizer 'nope'; valid names: sgd"),
        (["optimizers", "adam", "--set", "lr=-1"], "lr must be a number >= 0.0, got -1"),
        (["optimizers", "adam", "--set", "amsgrad=maybe"], "amsgrad must be True or False"),
        (["optimizers", "adam", "--set", "zzz=1"], "unexpected keyword argument 'zzz'"),
        (["optimizers", "adam", "--set", "=1"], "--set takes KEY=VALUE, got '=1'"),
        (["optimizers", "--set", "lr=1"], "--set needs an optimizer's name"),
    ],
)
def test_bad_input_is_one_line(argv, message, capsys):
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("descentlab: error: ") and message in err and err.count("\n") == 1
