"""Growing schedules (gamma > 1) overflow to ``inf`` as torch's LR schedulers do, never raise.

Torch steps StepLR, MultiStepLR and ExponentialLR by repeated products, so a value past the
float range becomes ``inf`` and stays there; Python's ``gamma ** n`` raises ``OverflowError``
instead. Property: for random gammas (shrinking and growing), step sizes, milestones, initial
rates (zero and tiny ones included) and lengths, :class:`descentlab.schedules.Scheduler`
writes the same values into the param groups as torch's scheduler, ``inf`` included.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as tls

import descentlab.schedules as S


def _groups(lrs):
    return torch.optim.SGD(
        [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs], lr=0.1
    )


def _traces(kind, args, lrs, n):
    """(torch's lrs, ours) after each of ``n`` scheduler steps, one column per group."""
    make = {
        "exponential": (tls.ExponentialLR, S.exponential),
        "step": (tls.StepLR, S.step),
        "multistep": (tls.MultiStepLR, S.multistep),
    }[kind]
    ref_opt, our_opt = _groups(lrs), _groups(lrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        ref = make[0](ref_opt, *args)
        ours = S.Scheduler(our_opt, {"lr": make[1](*args)})
        a, b = [], []
        for _ in range(n):
            ref.step()
            ours.step()
            a.append([g["lr"] for g in ref_opt.param_groups])
            b.append([g["lr"] for g in our_opt.param_groups])
    return np.array(a), np.array(b)


def _assert_same(ref, ours):
    assert np.array_equal(np.isinf(ref), np.isinf(ours))
    assert np.array_equal(np.isnan(ref), np.isnan(ours))
    finite = np.isfinite(ref)
    # subnormal values carry few significant bits: compare them absolutely
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    ("kind", "args", "n"),
    [
        ("exponential", (2.0,), 1100),
        ("exponential", (1.5,), 1800),
        ("step", (3, 1e3), 400),
        ("multistep", (list(range(0, 800, 2)), 10.0), 800),
    ],
)
def test_growing_schedules_reach_inf_like_torch(kind, args, n):
    ref, ours = _traces(kind, args, [0.1, 1e-250, 0.0], n)
    assert np.isinf(ref[-1, 0]) and np.isfinite(ref[-1, 1]) and ref[-1, 2] == 0.0
    _assert_same(ref, ours)


_gamma = st.one_of(
    st.floats(0.05, 1.0),
    st.floats(1.0, 4.0),
    st.floats(4.0, 1e4),
    st.sampled_from([1.0, 2.0, 10.0]),
)
_lr = st.one_of(st.floats(1e-6, 10.0), st.sampled_from([0.0, 1e-300, 1e-250, 0.1, 5.0]))


@st.composite
def _cases(draw):
    kind = draw(st.sampled_from(["exponential", "step", "multistep"]))
    n = draw(st.integers(1, 700))
    gamma = draw(_gamma)
    if kind == "exponential":
        args = (gamma,)
    elif kind == "step":
        args = (draw(st.integers(1, 50)), gamma)
    else:
        args = (draw(st.lists(st.integers(0, n), max_size=60)), gamma)
    return kind, args, draw(st.lists(_lr, min_size=1, max_size=3)), n


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
@example(("exponential", (1e4,), [0.1], 120))
@example(("multistep", ([5, 5, 5], 1e4), [1e-300, 1.0], 30))
def test_schedules_match_torch_on_random_gammas(case):
    kind, args, lrs, n = case
    ref, ours = _traces(kind, args, lrs, n)
    event("reached inf" if np.isinf(ref).any() else "finite")
    _assert_same(ref, ours)


def test_a_tiny_base_times_a_huge_factor_stays_finite():
    """1e-300 * 2**1100 ~ 1.4e31: the product is in range though 2**1100 is not."""
    expected = math.ldexp(1e-300, 1100)
    assert S.exponential(2.0, base=1e-300)(1100) == pytest.approx(expected, rel=1e-12)
    assert S.step(10, 2.0, base=1e-300)(11_000) == pytest.approx(expected, rel=1e-12)
    assert S.exponential(2.0, base=0.1)(1100) == math.inf
    assert S.exponential(2.0, base=0.0)(1100) == 0.0
