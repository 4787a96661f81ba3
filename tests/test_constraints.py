"""The parameter-constraints module: what each constraint accepts, refuses and says."""

import math
import re
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import pytest
import torch

from descentlab.constraints import (
    NAME,
    NUMBER,
    Boolean,
    InstanceOf,
    Interval,
    ListOf,
    Options,
    ParameterTypeError,
    build,
    check,
    describe,
    invalid,
    validate,
)


def real(low, high, closed="both", **kw):
    return Interval(Real, low, high, closed=closed, **kw)


POS_INT = Interval(Integral, 1, None)
UNIT = real(0, 1, "left")

# (constraints, value, converted value)
ACCEPTED = [
    ((POS_INT,), 1, 1),
    ((POS_INT,), np.int64(7), 7),
    ((Interval(Integral, 0, None),), 0, 0),
    ((Interval(Integral, 2, 1000),), 1000, 1000),
    ((Interval(Real, 0, None),), 0, 0.0),
    ((Interval(Integral, 0, None),), 10**400, 10**400),
    ((Interval(Real, None, 0, finite=False),), -(10**400), -math.inf),
    ((Interval(Real, 0, None),), 2.5, 2.5),
    ((Interval(Real, 0, None),), np.float32(0.5), 0.5),
    ((UNIT,), 0.0, 0.0),
    ((Interval(Real, 0, 1, closed="right"),), 1.0, 1.0),
    ((Interval(Real, None, 0, closed="neither"),), -1e300, -1e300),
    ((Interval(Real, 0, None, finite=False),), math.inf, math.inf),
    ((Interval(Real, None, None),), -3.0, -3.0),
    ((None, POS_INT), None, None),
    ((Options("min", "max"),), "max", "max"),
    ((Options(1, 2),), 2, 2),
    ((Options("min", "max"),), np.str_("min"), "min"),
    ((Options(True, "auto"),), True, True),
    ((Boolean,), False, False),
    ((Boolean(),), True, True),
    ((NAME,), "sgd", "sgd"),
    ((NUMBER,), math.inf, math.inf),
    ((InstanceOf((int, bool), "an int or a bool"),), True, True),
    ((InstanceOf(Mapping, "a mapping"),), {"a": 1}, {"a": 1}),
    ((ListOf(POS_INT),), (3, np.int64(4)), [3, 4]),
    ((ListOf(POS_INT, min_len=0),), [], []),
]


@pytest.mark.parametrize(("constraints", "value", "expected"), ACCEPTED)
def test_accepted_values_come_back_converted(constraints, value, expected):
    out = check("x", value, *constraints)
    assert out == expected
    assert type(out) is type(expected)


# (constraints, value, exception type, the words after "x must be"); the message ends with
# ", got <value>"
REFUSED = [
    ((POS_INT,), 0, ValueError, "a positive integer"),
    ((POS_INT,), -3, ValueError, "a positive integer"),
    ((POS_INT,), 2.0, TypeError, "a positive integer"),
    ((POS_INT,), True, TypeError, "a positive integer"),
    ((POS_INT,), "3", TypeError, "a positive integer"),
    ((Interval(Integral, 0, None),), -1, ValueError, "an integer >= 0"),
    ((Interval(Integral, 2, 1000),), 1001, ValueError, "an integer in [2, 1000]"),
    ((real(0.0, None),), -0.5, ValueError, "a finite number >= 0.0"),
    ((real(0, None, "neither"),), 0, ValueError, "a finite number > 0"),
    ((real(0, None),), math.nan, ValueError, "a finite number >= 0"),
    ((real(0, None),), math.inf, ValueError, "a finite number >= 0"),
    ((real(0, None, finite=False),), math.nan, ValueError, "a number >= 0"),
    ((real(0, None),), False, TypeError, "a finite number >= 0"),
    ((real(0, None),), 1 + 0j, TypeError, "a finite number >= 0"),
    ((real(0, None),), [0.1], TypeError, "a finite number >= 0"),
    ((real(0, None),), 10**400, ValueError, "a finite number >= 0"),
    ((real(0, None),), "0.1", TypeError, "a finite number >= 0"),
    ((UNIT,), 1.0, ValueError, "a finite number in [0, 1)"),
    ((real(0, 1, "right"),), 0.0, ValueError, "a finite number in (0, 1]"),
    ((real(None, 1, "neither"),), 1, ValueError, "a finite number < 1"),
    ((real(None, 1),), 2, ValueError, "a finite number <= 1"),
    ((None, Interval(Integral, 2, None)), 1, ValueError, "None or an integer >= 2"),
    ((None, Interval(Integral, 2, None)), "3", TypeError, "None or an integer >= 2"),
    ((Options("min", "max"),), "up", ValueError, "one of 'min', 'max'"),
    ((Options("min", "max"),), 1, TypeError, "one of 'min', 'max'"),
    ((Options(1, 2),), 3, ValueError, "one of 1, 2"),
    ((Options(1, 2),), True, TypeError, "one of 1, 2"),
    ((Boolean,), 1, TypeError, "True or False"),
    ((Boolean,), "yes", TypeError, "True or False"),
    ((NAME,), "", ValueError, "a name"),
    ((NAME,), 3, TypeError, "a name"),
    ((NUMBER,), True, TypeError, "a number"),
    ((NUMBER,), "1", TypeError, "a number"),
    ((ListOf(POS_INT),), [], ValueError, "a non-empty list"),
    ((ListOf(POS_INT),), 3, TypeError, "a non-empty list"),
    ((ListOf(POS_INT, min_len=2),), [5], ValueError, "a list of at least 2 entries"),
]


@pytest.mark.parametrize(("constraints", "value", "kind", "must"), REFUSED)
def test_refused_values_raise_one_format(constraints, value, kind, must):
    message = f"x must be {must}, got {value!r}"
    with pytest.raises(kind, match=f"^{re.escape(message)}$") as info:
        check("x", value, *constraints)
    # a wrong type is torch's TypeError and also a ValueError (so `except ValueError` sees all)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ParameterTypeError) == (kind is TypeError)


def test_a_list_entry_is_named_by_its_index():
    with pytest.raises(ValueError, match=r"^x\[1\] must be a positive integer, got 0$"):
        check("x", [5, 0], ListOf(POS_INT))


def test_owner_prefixes_the_message():
    with pytest.raises(ValueError, match=r"^Adam: lr must be a finite number >= 0\.0, got -1\.0$"):
        check("lr", -1.0, Interval(Real, 0.0, None), owner="Adam")


# (tensor, exception type, message) for a batched hyperparameter
TENSORS = [
    (torch.tensor([0.1, 0.2]), None, None),
    (torch.tensor([1, 2]), None, None),
    (torch.tensor([0.1, -0.1]), ValueError, "lr must be a number >= 0 (or a real tensor of them)"),
    (torch.tensor([0.1, math.nan]), ValueError, ", got [0.1"),
    (torch.full((11,), -1.0), ValueError, ", got a tensor of shape (11,)"),
    (
        torch.tensor([0.1], dtype=torch.complex64),
        TypeError,
        "got a tensor of dtype torch.complex64",
    ),
    (torch.tensor([True]), TypeError, "got a tensor of dtype torch.bool"),
    (torch.tensor(0.5), None, None),
]


@pytest.mark.parametrize(("value", "kind", "message"), TENSORS)
def test_batched_hyperparameters_check_every_element(value, kind, message):
    lr = Interval(Real, 0, None, finite=False, tensors=True)
    if kind is None:
        assert check("lr", value, lr) is value
        return
    with pytest.raises(kind, match=re.escape(message)):
        check("lr", value, lr)


def test_a_tensor_is_the_wrong_type_unless_allowed():
    with pytest.raises(TypeError, match=r"^x must be a positive integer, got 3$"):
        check("x", torch.tensor(3), POS_INT)
    with pytest.raises(TypeError, match=r"got \[0\.5\]$"):
        check("x", torch.tensor([0.5]), UNIT)


def test_validate_checks_named_entries_and_refuses_unknown_ones():
    spec = {"patience": [POS_INT], "mode": [Options("min", "max")], "delta": [None, UNIT]}
    assert validate(spec, {"patience": np.int64(2), "delta": None}) == {
        "patience": 2,
        "delta": None,
    }
    with pytest.raises(ValueError, match=r"^E: mode must be one of 'min', 'max', got 'up'$"):
        validate(spec, {"patience": 2, "mode": "up"}, owner="E")
    with pytest.raises(ValueError, match="unknown parameter 'mod'; valid names: patience, mode"):
        validate(spec, {"mod": "min"})


def test_descriptions_and_custom_rules_share_the_format():
    assert describe(None, POS_INT) == "None or a positive integer"
    assert str(Interval(Real, -math.inf, 0)) == "a finite number in [-inf, 0]"
    err = invalid("batch_size", "<= the number of training examples (100)", 500, owner="run")
    assert type(err) is ValueError
    assert str(err) == "run: batch_size must be <= the number of training examples (100), got 500"
    assert isinstance(invalid("x", "a mapping", 3, type_error=True), ParameterTypeError)
    with pytest.raises(TypeError, match=r"^cfg must be a finite number in \[0, 1\] or a mapping"):
        check("cfg", "x", Interval(Real, 0, 1), InstanceOf(Mapping, "a mapping"))


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Interval(float, 0, 1),
        lambda: Interval(Real, 0, 1, closed="open"),
        lambda: Interval(Real, 2, 1),
        lambda: Options(),
        lambda: check("x", 1),
        lambda: check("x", 1, "positive"),
    ],
)
def test_malformed_constraints_are_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        bad()


def _takes_x(x: float) -> float:
    return check("x", x, real(0, None))


# (key, keywords, the error, its message)
BUILD_REFUSALS = [
    ("nope", {}, KeyError, "unknown thing 'nope'; valid names: one, two"),
    ("one", {"y": 1}, ValueError, "bad thing: _takes_x() got an unexpected keyword argument 'y'"),
    ("two", {"x": "a"}, ValueError, "bad thing: x must be a finite number >= 0, got 'a'"),
    ("one", {"x": -1.0}, ValueError, "^x must be a finite number >= 0, got -1.0"),
]


@pytest.mark.parametrize(("key", "kwargs", "error", "message"), BUILD_REFUSALS)
def test_build_names_the_registry_entry_and_its_arguments(key, kwargs, error, message):
    factories = {"one": _takes_x, "two": _takes_x}
    assert build(factories, "one", "thing", "bad thing", x=2.0) == 2.0
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        build(factories, key, f"thing {key!r}", "bad thing", **kwargs)
