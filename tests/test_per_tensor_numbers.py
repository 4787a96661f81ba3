"""Per-tensor numbers in torch's state layout (a 0-dim tensor per parameter: the step counters,
NAdam's running product, ASGD's rates, Schedule-Free's sums) made at once as one column
(``base.number_column``) are read and written with one operation; the result is what the
per-tensor torch operations give, bit for bit, and an entry that no longer belongs to the
column (replaced, loaded) sends the call down the per-tensor path."""

from __future__ import annotations

import pytest
import torch

from descentlab import optim
from descentlab.optim import base

N = 7


def _values(seed: int) -> list[float]:
    g = torch.Generator().manual_seed(seed)
    # spread over magnitudes, so that rounding to float32 loses digits
    return (torch.rand(N, generator=g, dtype=torch.float64) * 10 ** torch.arange(N) / 3).tolist()


def _columns(dtype: torch.dtype, how: str) -> list[torch.Tensor]:
    start = _values(0)
    col = base.number_column(N, 0.0, dtype)
    if how == "replaced":  # one entry no longer a view of the column (a loaded state's)
        col[3] = torch.zeros((), dtype=dtype)
    elif how == "swapped":  # views of the column, not in its order
        col[2], col[3] = col[3], col[2]
    elif how == "sliced":  # a view at its element's address, not 0-dim
        col[3] = col[3]._base[3:4]
    elif how == "separate":
        col = [torch.zeros((), dtype=dtype) for _ in range(N)]
    for t, v in zip(col, start, strict=True):
        t.fill_(v)
    return col


def _per_tensor(op: str, col: list[torch.Tensor], values: list[float], via: torch.dtype) -> None:
    """The reference: one torch operation per tensor, as written before the columns."""
    for t, v in zip(col, values, strict=True):
        if op == "set":
            t.copy_(torch.tensor(v, dtype=via))
        else:
            t.mul_(v)


OPS = [("set", torch.float64), ("set", torch.float32), ("scale", None)]


@pytest.mark.parametrize("how", ["column", "replaced", "swapped", "sliced", "separate"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("op", "via"), OPS, ids=["set-via-f64", "set-via-f32", "scale"])
def test_a_column_reads_and_writes_as_each_tensor_would(op, via, dtype, how):
    col, ref = _columns(dtype, how), _columns(dtype, "separate")
    assert (base.as_column(col) is not None) == (how == "column")
    assert base.Numbers(col).get() == [float(t) for t in ref]
    values = [*_values(1)[:-1], 1e300]  # one past float32's range: inf, as torch rounds it
    if op == "set":
        base.Numbers(col).set(values, via)
    else:
        base.Numbers(col).scale(values)
    _per_tensor(op, ref, values, via or dtype)
    assert [float(t) for t in col] == [float(t) for t in ref]
    assert base.Numbers(col).get() == [float(t) for t in ref]


def test_a_set_of_one_value_for_every_tensor_is_each_tensors_copy():
    col, ref = _columns(torch.float32, "separate"), _columns(torch.float32, "separate")
    base.Numbers(col).set([1 / 3] * N, torch.float32)
    _per_tensor("set", ref, [1 / 3] * N, torch.float32)
    assert [float(t) for t in col] == [float(t) for t in ref]


#: (optimizer, its per-tensor numbers): the step counters are per-tensor numbers as any other
#: (one representation: a column of 0-dim views, state.column)
NUMBERS = [
    (optim.NAdam, ["step", "mu_product"]),
    (optim.ASGD, ["step", "eta", "mu"]),
    (optim.ScheduleFreeAdamW, ["step", "weight_sum", "lr_max"]),
    (optim.Adam, ["step"]),
]


@pytest.mark.parametrize(("cls", "keys"), NUMBERS, ids=[c[0].__name__ for c in NUMBERS])
def test_an_optimizers_numbers_are_made_as_one_column(cls, keys):
    """A group's per-tensor numbers are made at once (the fast path is taken), and a state dict
    loaded into a new optimizer whose entries are then replaced by tensors of their own (the
    per-tensor path) continues as the original, bit for bit."""
    params = [torch.nn.Parameter(torch.randn(5, generator=torch.Generator().manual_seed(i)))
              for i in range(4)]  # fmt: skip
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt = cls(params, lr=1e-2)
    for t in range(3):
        for p in params:
            p.grad = torch.sin(p.detach() * (t + 1))
        opt.step()
    for key in keys:
        assert base.as_column([opt.state[p][key] for p in params]) is not None, key
    with torch.no_grad():
        for p, q in zip(params, twin, strict=True):
            q.copy_(p)
    state = opt.state_dict()  # each entry a tensor of its own, as torch's optimizers keep them
    state["state"] = {i: {k: v.clone() for k, v in st.items()} for i, st in state["state"].items()}
    other = cls(twin, lr=1e-2)
    other.load_state_dict(state)
    for q in twin:  # as a user's code may set them
        for key in keys:
            other.state[q][key] = other.state[q][key].clone()
    for key in keys:
        assert base.as_column([other.state[q][key] for q in twin]) is None, key
    for t in range(3, 6):
        for ps in (params, twin):
            for p in ps:
                p.grad = torch.sin(p.detach() * (t + 1))
        opt.step()
        other.step()
    for p, q in zip(params, twin, strict=True):
        assert torch.equal(p, q)
        for key in keys:
            assert torch.equal(opt.state[p][key], other.state[q][key]), key


@pytest.mark.parametrize(("cls", "keys"), NUMBERS, ids=[c[0].__name__ for c in NUMBERS])
def test_a_loaded_state_of_separate_numbers_is_laid_out_as_one_column(cls, keys):
    """A checkpoint whose numbers are separate tensors (torch's optimizers', an older
    descentlab's) is laid out as one column per group on load, the values and dtypes as
    saved: a resumed run keeps the one-operation path."""
    params = [torch.nn.Parameter(torch.randn(5)) for _ in range(4)]
    opt = cls(params, lr=1e-2)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    state = opt.state_dict()
    state["state"] = {i: {k: v.clone() for k, v in st.items()} for i, st in state["state"].items()}
    other = cls([torch.nn.Parameter(p.detach().clone()) for p in params], lr=1e-2)
    other.load_state_dict(state)
    for key in keys:
        col = [other.state[q][key] for q in other.param_groups[0]["params"]]
        assert base.as_column(col) is not None, key
        for i, v in enumerate(col):
            saved = state["state"][i][key]
            assert v.dtype == opt.state[params[i]][key].dtype and torch.equal(v, saved.to(v.dtype))


@pytest.mark.parametrize(("cls", "keys"), NUMBERS, ids=[c[0].__name__ for c in NUMBERS])
def test_a_parameter_whose_first_gradient_comes_later_joins_the_column(cls, keys):
    """A layer unfrozen after the first steps gets its state later than the rest of its
    group: the group's numbers are laid out again as one column (the one-operation path),
    values unchanged, and the run equals one whose numbers are separate tensors."""
    params = [torch.nn.Parameter(torch.randn(5, generator=torch.Generator().manual_seed(i)))
              for i in range(4)]  # fmt: skip
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt, other = cls(params, lr=1e-2), cls(twin, lr=1e-2)
    for t in range(5):
        for ps, o in ((params, opt), (twin, other)):
            for i, p in enumerate(ps):
                p.grad = None if t < 2 and i == 2 else torch.sin(p.detach() * (t + 1))
            o.step()
            if t == 2 and o is other:  # the reference: every number a tensor of its own
                for p in ps:
                    for key in keys:
                        o.state[p][key] = o.state[p][key].clone()
    for key in keys:
        assert base.as_column([opt.state[p][key] for p in params]) is not None, key
    for p, q in zip(params, twin, strict=True):
        assert torch.equal(p, q)
        for key in keys:
            assert torch.equal(opt.state[p][key], other.state[q][key]), key
