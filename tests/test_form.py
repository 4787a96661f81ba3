"""Rules written once in the form (descentlab.optim.form): every registered optimizer whose
chain holds one is checked, drawn from the registry (no table here): fused against eager,
both against a float64 evaluation of the form's primitives by their definitions, each
coefficient's declared ``uses`` against what its function reads, and AdaBelief against a
float64 loop written from the paper and against pytorch_optimizer."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from descentlab import optim
from descentlab.optim import form as FM
from descentlab.optim import fused as F
from descentlab.optim.hyperspec import Flag

BITWISE = F.sqrt_reproduces_torch()


def _own_form_rule(rule) -> bool:
    """A rule written in the form other than the glue every chain shares (transforms)."""
    return isinstance(rule, FM.FormRule) and type(rule).__module__ != optim.transforms.__name__


def _steps_without_closure(opt) -> bool:
    """SAM evaluates a second gradient: its step needs a closure (not this file's subject)."""
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = torch.ones_like(p)
    try:
        opt.step()
    except ValueError as exc:
        if "closure" in str(exc):
            return False
        raise
    return True


def _form_optimizers() -> list[str]:
    names = []
    for r in optim.records():
        opt = r.factory([torch.nn.Parameter(torch.zeros(2))], fused=False)
        if any(_own_form_rule(rule) for rule in opt.rule.rules) and _steps_without_closure(opt):
            names.append(r.name)
    return names


FORMS = _form_optimizers()


def _form_rules(opt) -> list[FM.FormRule]:
    return [r for r in opt.rule.rules if _own_form_rule(r)]


def _valid(name: str, flags: dict) -> bool:
    try:
        optim.get(name)([{"params": [torch.nn.Parameter(torch.zeros(2))], **flags}])
    except ValueError:
        return False
    return True


def _cases() -> list:
    """Every form optimizer at its defaults, and with each flag of its form rules turned
    (amsgrad, centered, eps_inside_sqrt, ...): drawn from the registry and the rules'
    declared checks, no table here."""
    probe = [torch.nn.Parameter(torch.zeros(2))]
    out = []
    for name in FORMS:
        out.append(pytest.param(name, {}, id=name))
        for rule in _form_rules(optim.get(name)(probe, fused=False)):
            for key, spec in rule.checks.items():
                if isinstance(spec, Flag):
                    flip = {key: not rule.defaults[key]}
                    if not _valid(name, flip):  # nesterov without momentum: refused
                        continue
                    out.append(pytest.param(name, flip, id=f"{name}-{key}={flip[key]}"))
    return out


CASES = _cases()


def _alone(name: str) -> bool:
    """The form rule is the chain's only stateful rule (not inside Lookahead, say): the
    reference below runs it with the plain learning rate."""
    opt = optim.get(name)([torch.nn.Parameter(torch.zeros(2))], fused=False)
    group = opt.param_groups[0]
    return all(
        isinstance(r, FM.FormRule) or not r.state_keys or r.passes_through(group)
        for r in opt.rule.rules
    )


REFERENCE_CASES = [c for c in CASES if _alone(c.values[0])]


def _run(name: str, dtype: torch.dtype, fused: bool, flags=None, steps: int = 60, **kw):
    g = torch.Generator().manual_seed(3)
    w = torch.nn.Parameter(torch.randn(4099, dtype=dtype, generator=g))  # a vector tail too
    factory = optim.get(name)
    takes = inspect.signature(factory).parameters
    kw = {k: v for k, v in kw.items() if k in takes}
    opt = factory([{"params": [w], **(flags or {})}], fused=fused, **kw)
    for _ in range(steps):
        w.grad = torch.randn(4099, dtype=dtype, generator=g)
        opt.step()
    return w.detach()


def test_the_registry_has_form_rules():
    assert {"adabelief", "adam", "adamw", "nadam", "radam", "adagrad", "rmsprop"} <= set(FORMS)
    ids = [c.id for c in CASES]
    assert any("amsgrad" in i for i in ids) and any("centered" in i for i in ids)


@pytest.mark.parametrize(("name", "flags"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_fused_equals_eager(name, flags, dtype):
    """Both backends come from the one form: bit for bit in float32 where the kernels'
    root is torch's; float64 roots (torch's MKL vs the correctly rounded one) may part by an
    ulp, as for every fused rule (descentlab.optim.fused). A coupled decay runs the rule's
    final form (or the general update), a decoupled one the final form after
    ``p * (1 - lr * wd)``."""
    kw = dict(lr=1e-2, weight_decay=0.1)
    a, b = _run(name, dtype, True, flags, **kw), _run(name, dtype, False, flags, **kw)
    if dtype == torch.float32 and BITWISE:
        assert torch.equal(a, b)
    else:
        tol = 1e-12 if dtype == torch.float64 else 2e-5
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def _has_final_form(name: str, flags: dict) -> bool:
    """A form rule of the chain that acts at these flags has a final form (Adam's family)
    and the chain ends in it (not so inside Lookahead: its slow-weight sync comes last)."""
    opt = optim.get(name)([{"params": [torch.nn.Parameter(torch.zeros(2))], **flags}])
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "step")}
    return opt.rule.final_plan(hyper) is not None and any(
        r.built(hyper).final_expr is not None
        for r in _form_rules(opt)
        if not r.passes_through(hyper)
    )


def _reference_run(
    name: str, flags: dict | None = None, steps: int = 40, make=None, **kw
) -> tuple[torch.Tensor, torch.Tensor]:
    """The optimizer's eager float64 run, and the same chain with every rule written in the
    form evaluated by :func:`~descentlab.optim.form.reference` (primitives by their
    definitions; a rule not in the form by its own eager update), ``p <- p + u``
    (``make``: the optimizer of a parameter list, instead of the registry's ``name``)."""
    g = torch.Generator().manual_seed(5)
    w0 = torch.randn(64, dtype=torch.float64, generator=g)
    grads = [torch.randn(64, dtype=torch.float64, generator=g) for _ in range(steps)]
    w = torch.nn.Parameter(w0.clone())
    group = {"params": [w], **(flags or {})}
    opt = make([w]) if make else optim.get(name)([group], fused=False, lr=1e-2, **kw)
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "step")}
    for gr in grads:
        w.grad = gr.clone()
        opt.step()
    p = w0.clone()
    state = opt.rule.init([p])  # as a fresh optimizer's: entries made on first use are not
    for t, gr in enumerate(grads, 1):
        state["step"] = [torch.tensor(float(t), dtype=torch.float64)]
        state["_step_values"] = [float(t)]
        u = gr
        for rule in opt.rule.rules:
            if isinstance(rule, FM.FormRule):
                one = {k: v[0] for k, v in state.items() if not k.startswith("_")}
                u = FM.reference(rule.built(hyper), u, p, one, hyper, float(t))
                state.update({k: [v] for k, v in one.items()})
            else:
                (u,), state = rule.update([u], state, [p], hyper)
        p = p + u
    return w.detach(), p


def _final_reference_run(name: str, flags: dict, steps: int = 40):
    """The optimizer's eager float64 run (no weight decay), and its form rule evaluated by
    :func:`~descentlab.optim.form.reference` (primitives by their definitions) with the plain
    learning rate: by its final form where the rule has one (the optimizer then uses it),
    that checked against ``p - lr * u`` at every step."""
    g = torch.Generator().manual_seed(5)
    w0 = torch.randn(64, dtype=torch.float64, generator=g)
    grads = [torch.randn(64, dtype=torch.float64, generator=g) for _ in range(steps)]
    w = torch.nn.Parameter(w0.clone())
    opt = optim.get(name)([{"params": [w], **flags}], fused=False, lr=1e-2, weight_decay=0.0)
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "step")}
    (rule,) = [r for r in _form_rules(opt) if not r.passes_through(hyper)]
    for gr in grads:
        w.grad = gr.clone()
        opt.step()
    p = w0.clone()
    state = {k: v[0] for k, v in rule.init([w0.clone()]).items()}
    form = rule.built(hyper)
    lr = hyper["lr"]
    for t, gr in enumerate(grads, 1):
        if form.final_expr is None:
            p = p - lr * FM.reference(form, gr, p, state, hyper, float(t))
            continue
        before = {k: v.clone() for k, v in state.items()}
        u = FM.reference(form, gr, p, before, hyper, float(t))
        new = FM.reference(form, gr, p, state, hyper, float(t), lr=lr)
        torch.testing.assert_close(new, p - lr * u, rtol=1e-13, atol=1e-15)
        p = new
    return w.detach(), p


@pytest.mark.parametrize(("name", "flags"), REFERENCE_CASES)
def test_the_emitted_kernels_follow_the_forms_definitions(name, flags):
    run = _final_reference_run if _has_final_form(name, flags) else _reference_run
    got, want = run(name, flags)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


#: forms the records' defaults do not reach (the velocity rule, dampening, a changed maximize)
VARIANTS = [
    ("momentum", dict(form="velocity")),
    ("nesterov", dict(form="velocity")),
    ("sgd", dict(momentum=0.9, dampening=0.3, maximize=True)),
]


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=[f"{n}-{k}" for n, k in VARIANTS])
def test_variants_fused_equal_eager_and_follow_the_forms(name, kw):
    a = _run(name, torch.float32, True, lr=1e-2, weight_decay=0.1, **kw)
    b = _run(name, torch.float32, False, lr=1e-2, weight_decay=0.1, **kw)
    assert torch.equal(a, b)
    got, want = _reference_run(name, **kw)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def _glue(params, fused: bool = False):
    """The glue transforms no registered chain holds (or not at these values), in one chain."""
    rule = optim.chain(
        optim.non_finite_guard("zero"),
        optim.clip_by_value(0.5),
        optim.maximize(True),
        optim.add_l2(0.1),
        optim.trace(0.9, 0.1),
        optim.scale_by_lr(1e-2, lr_decay=0.1),
    )
    return optim.Optimizer(params, rule, fused=fused)


def _fused_and_eager(make, seed: int, steps: int, poison: bool = False) -> list[torch.Tensor]:
    """The parameter after ``steps`` steps of ``make(params, fused)``, fused then eager
    (``poison``: a NaN and a -inf in every gradient)."""
    w0 = torch.randn(4099, generator=torch.Generator().manual_seed(seed))
    got = []
    for fused in (True, False):
        w = torch.nn.Parameter(w0.clone())
        opt = make([w], fused)
        gen = torch.Generator().manual_seed(seed + 1)
        for k in range(steps):
            grad = torch.randn(4099, generator=gen)
            if poison:
                grad[k], grad[k + 40] = float("nan"), float("-inf")  # zeroed by the guard
            w.grad = grad
            opt.step()
        got.append(w.detach())
    return [w0, *got]


def test_the_glue_fused_equals_eager_and_follows_its_forms():
    _, *got = _fused_and_eager(_glue, 13, 30, poison=True)
    assert torch.isfinite(got[0]).all() and torch.equal(got[0], got[1])
    ours, want = _reference_run("glue", make=_glue)
    torch.testing.assert_close(ours, want, rtol=1e-12, atol=1e-12)


def _clipped_noisy(params, fused: bool | None = False):
    """The glue written in the form with a prepare step (the global-norm clip's factor, the
    noise's draws), a rule twice in one chain (clip_by_value: each instance its own
    coefficients), and Lookahead's sync after the learning rate."""
    rule = optim.chain(
        optim.clip_by_global_norm(2.0),
        optim.clip_by_value(0.05),
        optim.add_noise(0.01, 0.55, 3),
        optim.trace(0.9),
        optim.clip_by_value(0.05),
        optim.scale_by_lr(1e-2),
        optim.lookahead(3, 0.5),
    )
    return optim.Optimizer(params, rule, fused=fused)


def test_prepared_glue_and_a_rule_twice_fused_equal_eager_and_follow_their_forms():
    w0, *got = _fused_and_eager(_clipped_noisy, 15, 12)
    assert torch.equal(got[0], got[1]) and not torch.equal(got[0], w0)
    ours, want = _reference_run("clipped", make=_clipped_noisy)
    torch.testing.assert_close(ours, want, rtol=1e-12, atol=1e-12)


class _Reads(dict):
    """A coefficient's hyperparameters that record the keys it reads."""

    def __init__(self, hyper) -> None:
        super().__init__(hyper)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def _coefficient_reads(opt) -> dict[tuple[str, str], tuple[list[set[str]], tuple[str, ...]]]:
    """(rule, coefficient) -> (the hyperparameters its function read at each call over eight
    steps of :func:`~descentlab.optim.form.reference`, those it declares in ``uses``), for
    every rule of ``opt``'s chain written in the form that acts at its first group's
    values."""
    g = torch.Generator().manual_seed(7)
    w = torch.randn(16, dtype=torch.float64, generator=g)
    hyper = {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "step")}
    out = {}
    for rule in opt.rule.rules:
        if not isinstance(rule, FM.FormRule) or rule.passes_through(hyper):
            continue
        form = rule.built(hyper)
        for c in form.coefs.values():
            reads: list[set[str]] = []

            def recorded(h, *rest, fn=c.fn, reads=reads):
                h = _Reads(h)
                try:
                    return fn(h, *rest)
                finally:
                    reads.append(h.read)

            c.fn = recorded  # (this optimizer's own rule: its cached form is not shared)
            out[(rule.name, c.name)] = (reads, c.uses)
        state = {k: v[0] for k, v in rule.init([w.clone()]).items()}
        for t in range(1, 9):  # RAdam rectifies from its sixth step
            grad = torch.randn(16, dtype=torch.float64, generator=g)
            if form.final_expr is not None:
                FM.reference(form, grad, w, {**state}, hyper, float(t), lr=1e-2)
            FM.reference(form, grad, w, state, hyper, float(t))
    return out


#: every chain the form's tests run: the registry's at each flag, and the glue's
USES_CASES = [
    *CASES,
    *(pytest.param(n, kw, id=f"{n}-{kw}") for n, kw in VARIANTS),
    pytest.param("glue", None, id="glue"),
    pytest.param("clipped", None, id="clipped"),
]


@pytest.mark.parametrize(("name", "flags"), USES_CASES)
def test_every_coefficient_declares_the_hyperparameters_it_reads(name, flags):
    """A coefficient's ``uses`` say which hyperparameters make its value per row when they
    are batched (and which rows a trajectory kernel tabulates): one its function reads but
    does not declare would reach it as a whole tensor. Each coefficient's reads are recorded
    while the form runs by its definitions (a structural option, a flag or a choice, is
    never batched: it may be read without being declared)."""
    w = [torch.nn.Parameter(torch.zeros(16, dtype=torch.float64))]
    if flags is None:
        opt = {"glue": _glue, "clipped": _clipped_noisy}[name](w)
    else:
        opt = optim.get(name)([{"params": w, **flags}], fused=False)
    found = _coefficient_reads(opt)
    assert found
    numbers = {k for k, v in opt.param_groups[0].items() if not isinstance(v, bool | str)}
    for (rule, coef), (calls, uses) in found.items():
        assert calls, f"{rule}: coefficient {coef!r} was never evaluated"
        missing = (set().union(*calls) & numbers) - set(uses)
        assert not missing, f"{rule}: coefficient {coef!r} reads {sorted(missing)}, not in its uses"


def test_prepared_glue_and_a_rule_twice_in_one_triton_launch(monkeypatch):
    """The same chain on the GPU path (under Triton's interpreter): the global-norm clip with
    torch ops, the rest (noise, both clips, Lookahead's sync) in one launch, bit for bit the
    eager backend."""
    pytest.importorskip("triton", reason="triton is not installed (the GPU backend's kernels)")
    import warnings

    from descentlab.optim import gpu

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    g = torch.Generator().manual_seed(17)
    start = [torch.randn(7, 5, generator=g), torch.randn(301, generator=g)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    tri, ref = _clipped_noisy(ours, fused=None), _clipped_noisy(theirs)
    launched = []
    run = gpu.TritonPlan.run
    monkeypatch.setattr(
        gpu.TritonPlan, "run", lambda self, *a: launched.append(self.prefix) or run(self, *a)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the prefix's announcement
        for _ in range(7):
            for a, b in zip(ours, theirs, strict=True):
                b.grad = torch.randn(b.shape, generator=g)
                a.grad = b.grad.clone()
            with gpu.interpret_on_cpu():
                tri.step()
            ref.step()
    assert [[r.name for r in p.rules] for p in launched] == [["clip_by_global_norm"]] * 7
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_a_rule_reading_its_whole_input_is_fused_only_first():
    """The global-norm clip's factor is computed before the kernel, from the raw gradients:
    after another rule it has no fused form (fused=True refuses, naming the position)."""
    w = torch.nn.Parameter(torch.ones(3))
    rule = optim.chain(optim.clip_by_value(0.5), optim.clip_by_global_norm(1.0))
    with pytest.raises(ValueError, match="no fused form in this position"):
        optim.Optimizer([w], rule, fused=True)


def _paper_adabelief(w, grads, lr, b1, b2, eps, wd):
    """Zhuang et al. 2020, Algorithm 2 (AdaBelief), float64, with decoupled weight decay."""
    w = w.clone()
    m = torch.zeros_like(w)
    s = torch.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps
        m_hat = m / (1 - b1**t)
        s_hat = s / (1 - b2**t)
        w = w * (1 - lr * wd) - lr * m_hat / (torch.sqrt(s_hat) + eps)
    return w


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_adabelief_follows_the_paper(fused):
    g = torch.Generator().manual_seed(7)
    w0 = torch.randn(300, dtype=torch.float64, generator=g)
    grads = [torch.randn(300, dtype=torch.float64, generator=g) for _ in range(100)]
    kw = dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05)
    w = torch.nn.Parameter(w0.clone())
    opt = optim.AdaBelief([w], fused=fused, **kw)
    for gr in grads:
        w.grad = gr.clone()
        opt.step()
    want = _paper_adabelief(w0, grads, kw["lr"], *kw["betas"], kw["eps"], kw["weight_decay"])
    torch.testing.assert_close(w.detach(), want, rtol=1e-12, atol=1e-12)


def test_adabelief_matches_pytorch_optimizer():
    po = pytest.importorskip("pytorch_optimizer")
    g = torch.Generator().manual_seed(9)
    w0 = torch.randn(500, dtype=torch.float64, generator=g)
    grads = [torch.randn(500, dtype=torch.float64, generator=g) for _ in range(100)]
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    ours = optim.AdaBelief([a], lr=1e-2, weight_decay=0.1)
    theirs = po.AdaBelief([b], lr=1e-2, weight_decay=0.1, weight_decouple=True, eps=1e-16)
    for gr in grads:
        a.grad, b.grad = gr.clone(), gr.clone()
        ours.step()
        theirs.step()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-12)
    assert not math.isclose(float(a.detach()[0]), float(w0[0]))


def test_a_form_may_not_read_a_state_entry_from_before_its_update():
    f = FM.Form()
    old = f.state("m")
    w = f.coef("w", lambda h, t: 0.5)
    f.assign("m", FM.lerp(old, f.g, w))
    with pytest.raises(ValueError, match="reads 'm' from before its update"):
        f.out(old * w)


def test_sign_is_torchs_on_nan_and_signed_zeros():
    """torch's CPU sign gives +0 for NaN and for -0: every backend of the form does (Lion's
    fused kernel once kept the NaN, so the two backends parted on a NaN gradient)."""
    g = torch.Generator().manual_seed(11)
    w0 = torch.randn(40, generator=g)
    grad = torch.randn(40, generator=g)
    grad[3], grad[5], grad[6] = float("nan"), -0.0, 0.0
    got = []
    for fused in (True, False):
        w = torch.nn.Parameter(w0.clone())
        opt = optim.Lion([w], lr=0.1, fused=fused)
        w.grad = grad.clone()
        opt.step()
        got.append(w.detach())
    assert torch.equal(got[0], got[1])
    assert got[0][3] == w0[3] and got[0][5] == w0[5]
    f = FM.Form()
    f.out(FM.sign(f.g))
    x = torch.tensor([float("nan"), -0.0, 2.0, -3.0], dtype=torch.float64)
    ref = FM.reference(f, x, x, {}, {}, 1.0)
    assert torch.equal(ref, torch.sign(x)) and not torch.signbit(ref[1])


def test_no_rule_written_in_the_form_holds_c():
    """A form rule has no C: its kernel comes from the C emitter."""
    import inspect

    probe = [torch.nn.Parameter(torch.zeros(2))]
    for name in FORMS:
        for rule in optim.get(name)(probe, fused=False).rule.rules:
            if isinstance(rule, FM.FormRule):
                src = inspect.getsource(type(rule))
                for c in ("b.line(", "b.let(", "dl_", "b.coef("):
                    assert c not in src, f"{type(rule).__name__} holds C ({c})"


#: the modules that generate kernels (the emitters, the builders, the low-bit formats' C)
_GENERATORS = {"form", "c_emitter", "fused", "fusedpath", "lowbit", "triton_emitter", "gpu"}


def test_no_rule_module_holds_c():
    """Every rule's fused and GPU kernels come from the emitters: no module of rules writes C
    (Lookahead's sync and the clip's and noise's hooks once did)."""
    import pkgutil
    from importlib import import_module

    checked = 0
    for info in pkgutil.iter_modules(optim.__path__):
        if info.name in _GENERATORS:
            continue
        src = inspect.getsource(import_module(f"{optim.__name__}.{info.name}"))
        for c in ("b.line(", "b.let(", "b.coef(", "dl_"):
            assert c not in src, f"descentlab.optim.{info.name} holds C ({c})"
        checked += 1
    assert checked > 20


class _Smaller(FM.FormRule):
    """``min(g, p)`` through a primitive no other rule has (a test registers it)."""

    name = "smaller"
    needs_step = False

    def __init__(self) -> None:
        super().__init__()

    def form(self, f: FM.Form, hyper) -> None:
        f.out(FM.Op("minimum", (f.g, f.p)))


def test_a_new_primitive_is_one_row_of_the_table(monkeypatch):
    """Every spelling of a primitive -- C, Triton, float64, the card's text and the eager
    backend's foreach kernel -- is its row of PRIMITIVES: a primitive registered there, and
    nowhere else, runs eagerly and fused, both as its float64 definition."""
    monkeypatch.setitem(
        FM.PRIMITIVES,
        "minimum",
        FM.Primitive(
            "(dl_isnan({1}) | ({1} < {0})) ? {1} : {0}",
            "tl.where(({1} != {1}) | ({1} < {0}), {1}, {0})",
            torch.minimum,
            text=("minimum({0}, {1})", 4, (0, 0), 0),
            foreach=FM.Foreach("minimum"),
        ),
    )
    g = torch.Generator().manual_seed(5)
    w0 = [torch.randn(n, generator=g) for n in (7, 40)]
    grads = [torch.randn(n, generator=g) for n in (7, 40)]
    got = []
    for fused in (True, False):
        ws = [torch.nn.Parameter(w.clone()) for w in w0]
        opt = optim.Optimizer(ws, optim.chain(_Smaller(), optim.scale_by_lr(0.5)), fused=fused)
        for w, gr in zip(ws, grads, strict=True):
            w.grad = gr.clone()
        opt.step()
        got.append([w.detach() for w in ws])
    for a, b, w, gr in zip(*got, w0, grads, strict=True):
        assert torch.equal(a, b)
        assert torch.equal(a, w - 0.5 * torch.minimum(gr, w))


def _kept_after_two_steps(rec, kwargs) -> set[str]:
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(3, 4))
    opt = rec.factory([p], **{**kwargs, "fused": False})
    for _ in range(2):
        p.grad = torch.randn(3, 4)
        opt.step()
    return {k for k in opt.state[p] if k != "step" and not k.startswith("_")}


@pytest.mark.parametrize("rec", optim.records(), ids=lambda r: r.name)
def test_a_rules_state_keys_are_what_its_steps_keep(rec):
    """The chain's state keys (read from each form rule's form, declared by the others) are
    the entries its steps keep at every parity configuration, and all of them are kept by
    one (an entry made by a step that no declaration names, or a name no step makes,
    fails)."""
    rules = rec.factory([torch.nn.Parameter(torch.zeros(1))]).rule
    flags = [{k: True} for r in rules.rules for k, s in r.checks.items() if isinstance(s, Flag)]
    kept, configs = [], [{}, *(dict(c.kwargs) for c in rec.parity), *flags]
    for kw in configs:
        try:
            kept.append(_kept_after_two_steps(rec, kw))
        except (TypeError, ValueError) as exc:  # an option this optimizer's signature lacks
            if "closure" in str(exc):
                pytest.skip(f"{rec.name}: {exc}")
            kept.append(set())
    declared = set(rules.state_keys)
    for kw, keys in zip(configs, kept, strict=True):
        assert keys <= declared, (kw, keys - declared)
    if all(isinstance(r, FM.FormRule) for r in rules.rules):
        assert set().union(*kept) == declared


def test_a_form_rules_marked_state_is_state_it_keeps():
    """``nonnegative`` and ``own_dtype`` name only entries the form keeps."""
    for rule_cls in _form_rule_classes():
        rule = rule_cls()
        assert set(rule.nonnegative) | set(rule.own_dtype) <= set(rule.state_keys), rule.name


def _form_rule_classes() -> list[type]:
    """The library's form rules (a test's own subclass, one taking arguments, is not one)."""
    out, todo = [], [FM.FormRule]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            library = sub.__module__.startswith("descentlab.")
            if library and not inspect.isabstract(sub) and sub not in out:
                out.append(sub)
    return out
