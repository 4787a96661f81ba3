"""Optimizers with several param groups take the fused backend's steady step, as a single group
does: the two groups Hugging Face's Trainer makes (weight decay and none), a group per layer
with its own learning rate, groups whose step counts differ, a schedule moving every group's lr.
Groups of one kernel launch it once, each group's coefficients a block of their own; every
step is the general step's bit for bit (the general path: the reference optimizer's steady
contexts dropped before each of its steps), and torch's for-loop where the kernel's arithmetic
is torch's (SGD with momentum). Speed is measured in ``benchmarks/step.py --groups``; here the
steps are counted."""

from __future__ import annotations

import cProfile
import functools
import gc
import pstats

import pytest
import torch

from descentlab import optim
from descentlab.optim import fused as F
from descentlab.optim.program import reads_argument

SIZES = (300, 70, 5, 40, 9, 120)


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(n, generator=g)) for n in SIZES]


def _grads(params: list[torch.Tensor], i: int) -> None:
    g = torch.Generator().manual_seed(100 + i)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


def _hf(ps: list) -> list[dict]:
    """Hugging Face's Trainer's two groups at its default ``weight_decay=0.0``: alike."""
    return [{"params": ps[0::2], "weight_decay": 0.0}, {"params": ps[1::2], "weight_decay": 0.0}]


def _hf_decay(ps: list) -> list[dict]:
    """The Trainer's two groups with a weight decay: two kernels."""
    return [{"params": ps[0::2], "weight_decay": 0.01}, {"params": ps[1::2], "weight_decay": 0.0}]


def _layers(ps: list) -> list[dict]:
    """A group per layer of two tensors, each its own learning rate."""
    return [{"params": ps[i : i + 2], "lr": 1e-2 * 0.8 ** (i // 2)} for i in range(0, 6, 2)]


# (name, options, groups, kernel launches per steady step, a schedule of every group's lr)
CASES = [
    ("adamw-hf", "adamw", dict(lr=1e-2), _hf, 1, False),
    ("adamw-hf-scheduled", "adamw", dict(lr=1e-2), _hf, 1, True),
    ("adamw-hf-weight-decay", "adamw", dict(lr=1e-2), _hf_decay, 2, True),
    ("momentum-layers", "sgd", dict(lr=1e-2, momentum=0.9), _layers, 1, False),
    ("momentum-layers-scheduled", "sgd", dict(lr=1e-2, momentum=0.9), _layers, 1, True),
    ("adam-layers", "adam", dict(lr=1e-2), _layers, 1, False),
    ("nesterov-layers", "sgd", dict(lr=1e-2, momentum=0.9, nesterov=True), _layers, 1, True),
    ("lion-hf", "lion", dict(lr=1e-3), _hf, 1, False),
]


class _Count:
    """Counts ``opt``'s general steps and its kernel launches."""

    def __init__(self, opt: optim.Optimizer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.general = self.launches = 0
        step = opt._step

        def general(closure=None):
            self.general += 1
            return step(closure)

        monkeypatch.setattr(opt, "_step", general)
        launch = F.FusedPlan.launch

        def counted(plan, *args):
            self.launches += 1
            return launch(plan, *args)

        monkeypatch.setattr(F.FusedPlan, "launch", counted)


def _beside_general(make, steps: int, before=None, monkeypatch=None):
    """``make(params)``'s optimizer and a reference made alike, stepped on the same gradients,
    the reference down the general path at every step; ``before(opt, i)`` runs before step
    ``i`` on both. Returns both parameter lists, both optimizers and the first's counts from
    its third step on."""
    params, ref_params = _params(), _params()
    opt, ref = make(params), make(ref_params)
    count = None
    for i in range(steps):
        if i == 2 and monkeypatch is not None:
            count = _Count(opt, monkeypatch)
        for ps, o in ((params, opt), (ref_params, ref)):
            if before is not None:
                before(o, i)
            _grads(ps, i)
        opt.step()
        ref._fused.steady.clear()  # the reference takes the general step
        ref.step()
    return params, ref_params, opt, ref, count


def _lr_schedule(opt: optim.Optimizer, i: int) -> None:
    for g in opt.param_groups:
        g.setdefault("base", g["lr"])
        g["lr"] = g["base"] * (1 - 0.05 * i)


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    ("name", "kw", "groups", "launches", "scheduled"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_several_param_groups_take_the_steady_step(
    monkeypatch, name, kw, groups, launches, scheduled
):
    """From the step after the first, every step is steady (one general step: the first), one
    launch per kernel whatever the number of groups, bit for bit the general path's."""
    steps = 12
    params, ref_params, opt, ref, count = _beside_general(
        lambda ps: optim.get(name)(groups(ps), **kw),
        steps,
        _lr_schedule if scheduled else None,
        monkeypatch,
    )
    assert count.general == 0, f"{count.general} general steps of {steps - 2}"
    assert count.launches == launches * (steps - 2)
    _same(params, ref_params)
    for p, q in zip(params, ref_params, strict=True):
        for k, v in opt.state[p].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(ref.state[q][k])), k
    assert [g["step"] for g in opt.param_groups] == [steps] * len(opt.param_groups)


def test_a_group_per_layer_is_torchs_for_loop_bit_for_bit():
    """SGD with momentum (no root: the kernel's arithmetic is torch's), a group per layer, a
    scheduled lr: torch's for-loop with the same groups."""
    params, ref_params = _params(), _params()
    opt = optim.SGD(_layers(params), lr=1e-2, momentum=0.9)
    ref = torch.optim.SGD(_layers(ref_params), lr=1e-2, momentum=0.9, foreach=False)
    for i in range(12):
        for ps, o in ((params, opt), (ref_params, ref)):
            _lr_schedule(o, i)
            _grads(ps, i)
            o.step()
    _same(params, ref_params)


def test_groups_at_different_step_counts_step_together(monkeypatch):
    """A group added after three steps counts its own steps (its bias corrections are its
    own) and runs in the same launch as the others, steady from the step after."""

    def before(opt, i):
        if i == 3:
            opt.add_param_group({"params": opt.rest, "lr": 5e-3})

    def make(ps):
        opt = optim.Adam([{"params": ps[:3]}], lr=1e-2)
        opt.rest = ps[3:]
        return opt

    params, ref_params, opt, _, count = _beside_general(make, 10, before, monkeypatch)
    assert [g["step"] for g in opt.param_groups] == [10, 7]
    assert (count.general, count.launches) == (1, 7)  # step 3: the new group
    _same(params, ref_params)


@pytest.mark.parametrize("at", [0, 2], ids=["first-group", "last-group"])
@pytest.mark.parametrize(
    ("name", "kw"),
    [("adamw", {}), ("sgd", dict(momentum=0.9)), ("sgd", {})],
    ids=["adamw", "momentum", "sgd"],
)
@pytest.mark.parametrize("until", [10, 7], ids=["every-step", "once-then-kept"])
def test_one_groups_changed_number_is_that_groups_alone(at, name, kw, until):
    """Groups alike share a block of coefficients until one group's lr moves; then that group
    steps with its own, the others with theirs: moved at every step, or moved once and kept
    (coefficients that read no step count are computed again only when a value moves)."""

    def before(opt, i):
        if 5 <= i < until:
            opt.param_groups[at]["lr"] = 1e-3 * i

    groups = [{"params": ps} for ps in (slice(0, 2), slice(2, 4), slice(4, 6))]

    def make(ps):
        return optim.get(name)([{"params": ps[g["params"]]} for g in groups], lr=1e-2, **kw)

    params, ref_params, opt, _, _ = _beside_general(make, 10, before)
    _same(params, ref_params)
    assert opt.param_groups[at]["lr"] == pytest.approx(1e-3 * (until - 1))


@pytest.mark.parametrize(("name", "kw"), [("sgd", {}), ("sgd", dict(momentum=0.9))])
def test_a_tensor_lr_changed_in_place_moves_the_step(name, kw):
    """A group's lr that is a tensor, filled in place (the group's dict equal to the last
    step's): each step reads its value, as the general step does."""

    def before(opt, i):
        if i == 0:
            opt.param_groups[1]["lr"] = torch.tensor(1e-2)
        elif i >= 4:
            opt.param_groups[1]["lr"].fill_(1e-3 * i)

    def make(ps):
        return optim.get(name)(_layers(ps), lr=1e-2, **kw)

    params, ref_params, _, _, _ = _beside_general(make, 9, before)
    _same(params, ref_params)


def test_merged_coefficients_are_computed_again_for_new_or_changed_values():
    """A merged launch whose coefficients read no step count reuses them while its groups'
    hyperparameters are the same dicts of numbers; other dicts, or a tensor value (which can
    change in place), are read again."""
    opt = _in_groups("sgd", dict(lr=1e-2), 2)
    (unit,) = opt._fused.bundle.units
    plan, params = unit.plan, [p for g in opt.param_groups for p in g["params"]]
    assert plan.timeless

    def block(hyper, t):  # the second group's -lr
        values, offsets = plan.steady_coefficients(params, None, hyper, t)
        return values[offsets[-1]]

    first = [dict(h) for h in unit.hyper]
    assert block(first, 4.0) == block(first, 5.0) == -first[1]["lr"]
    other = [first[0], {**first[1], "lr": 0.5}]
    assert block(other, 6.0) == -0.5
    lr = torch.tensor(0.25, dtype=torch.float64)
    held = [first[0], {**first[1], "lr": lr}]
    assert block(held, 7.0) == -0.25
    for i, value in enumerate((0.125, 0.0625, 0.03125)):  # (the same dicts, steps running)
        lr.fill_(value)
        assert block(held, 8.0 + i) == -value


@pytest.mark.parametrize(
    ("fn", "reads"),
    [
        (lambda h, t: -float(h["lr"]), False),
        (lambda h, t: 1 - h["beta"] ** t, True),
        (lambda h, t, e: h["a"] * e, False),
        (lambda h, t: (lambda: t)(), True),  # handed to a nested function
        (lambda h, *rest: rest[0], True),  # not a named argument
        (functools.partial(lambda t, h: t, 1), True),  # not a plain function
        (abs, True),
        (lambda h, t: locals()["t"], True),
    ],
    ids=["no", "power", "third", "closure", "varargs", "partial", "builtin", "locals"],
)
def test_whether_a_coefficient_reads_the_step_count(fn, reads):
    """A coefficient's function that never loads its step argument has the same value at every
    step; anything the code cannot show (a nested function, the frame's locals, a callable
    that is not a plain function) counts as reading it."""
    assert reads_argument(fn, 1) is reads


def _stored_step(h, t):
    t = 1.0  # stored over before any read: still counted as read (only loads are not)
    return h["lr"] * t


def test_an_argument_stored_over_counts_as_read():
    assert reads_argument(_stored_step, 1) is True


def test_a_bad_value_in_a_later_group_changes_no_group():
    """A schedule's bad value in group 2 is refused in one line naming it, with no group's
    parameters or state moved (checked before the launch of all groups)."""
    params = _params()
    opt = optim.SGD(_layers(params), lr=1e-2, momentum=0.9)
    for i in range(3):
        _grads(params, i)
        opt.step()
    before = [p.detach().clone() for p in params]
    bufs = [opt.state[p]["momentum_buffer"].clone() for p in params]
    opt.param_groups[2]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"param group 2: Invalid learning rate: -1\.0"):
        opt.step()
    _same(params, before)
    _same([opt.state[p]["momentum_buffer"] for p in params], bufs)
    assert [g["step"] for g in opt.param_groups] == [3, 3, 3]


def test_a_tensor_swapped_into_a_group_is_the_one_stepped():
    """A parameter replaced in its group's list (the same list object, the same length) is
    stepped in place of the old one: the steady step never steps what was there."""
    params = _params()
    opt = optim.SGD(_layers(params), lr=1e-2)
    for i in range(3):
        _grads(params, i)
        opt.step()
    old = params[3]
    new = torch.nn.Parameter(torch.zeros_like(old))
    opt.param_groups[1]["params"][1] = new
    kept = old.detach().clone()
    new.grad = torch.ones_like(new)
    opt.step()
    assert torch.equal(old, kept)
    assert torch.equal(new.detach(), torch.full_like(new, -1e-2 * 0.8))


def _calls(fn) -> tuple[int, int]:
    """The calls of Python functions and of C functions while ``fn`` runs (``cProfile``'s
    counts; the garbage collector held off: a collection runs other objects' finalizers)."""
    prof = cProfile.Profile()
    gc.disable()
    try:
        prof.runcall(fn)
    finally:
        gc.enable()
    counts = [(key[0] == "~", row[1]) for key, row in pstats.Stats(prof).stats.items()]
    return sum(n for c, n in counts if not c), sum(n for c, n in counts if c)


def _in_groups(name: str, kw: dict, n_groups: int) -> optim.Optimizer:
    """The optimizer of 20 tensors in ``n_groups`` groups, each its own lr, after three
    steps (steady)."""
    g = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(50, generator=g)) for _ in range(20)]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g)
    per = len(ps) // n_groups
    groups = [{"params": ps[i * per : (i + 1) * per], "lr": 1e-2 * 0.9**i} for i in range(n_groups)]
    opt = optim.get(name)(groups, **kw)
    for _ in range(3):
        opt.step()
    return opt


@pytest.mark.parametrize(
    ("name", "kw"),
    [("sgd", dict(lr=1e-2, momentum=0.9)), ("adamw", dict(lr=1e-3)), ("sgd", dict(lr=1e-2))],
    ids=["momentum", "adamw", "sgd"],
)
def test_a_steady_steps_calls_do_not_grow_with_its_groups(name, kw):
    """Twenty groups of one kernel cost the C calls of two (the groups' step counters are
    one column, their ``step`` and blocks of coefficients written in one call each); the
    Python each group adds is the computing of its own coefficients that read its lr and the
    step count (AdamW's bias corrections), none where no coefficient reads the step count
    (SGD, momentum: their values are kept while the groups' numbers are)."""
    two, twenty = _in_groups(name, kw, 2), _in_groups(name, kw, 20)
    for opt in (two, twenty):  # (kept from the second steady step with the same numbers)
        opt.step()
    (unit,) = twenty._fused.bundle.units
    plan, hyper = unit.plan, unit.hyper[1]
    own, _ = _calls(lambda: [plan.coefs[j].fn(hyper, 4.0, None) for j in plan.varying])
    py2, c2 = _calls(two.step)
    py20, c20 = _calls(twenty.step)
    assert len(unit.gis) == 20 and plan.varying
    assert c20 <= c2, f"C calls: {c2} with two groups, {c20} with twenty"
    assert plan.timeless is (name == "sgd")
    if plan.timeless:
        assert py20 <= py2, (py2, py20)
    else:
        assert py20 - py2 <= 18 * (own - 2), (py2, py20, own)  # (less the lambda and listcomp)
