"""Held-out variants of a workload (issue 26, item 2): ``--problems`` adds randomized variants
(another width or data split), seeded, each a problem of its own."""

from __future__ import annotations

import pytest

from descentlab.experiments.multi import _problem_name, _spec_for, _variant_notes, expand_problems
from descentlab.problems import models


def test_default_variant_adds_one_variant_of_each_default_problem() -> None:
    assert expand_problems("default,default~1") == [
        "mnist1d", "digits", "quadratic_deep", "charlm",
        "mnist1d~1", "digits~1", "quadratic_deep~1", "charlm~1",
    ]  # fmt: skip
    assert _problem_name("digits~1") == "digits~1"


@pytest.mark.parametrize("name", ["mnist1d", "digits", "quadratic_deep", "charlm"])
def test_variants_are_seeded_and_change_width_or_data(name: str) -> None:
    base = _spec_for(name, {})
    seen = set()
    for seed in range(8):
        spec = _spec_for(f"{name}~{seed}", {})
        assert spec.to_dict() == _spec_for(f"{name}~{seed}", {}).to_dict()  # seeded
        spec.validate()
        diff = {
            k for k, v in spec.to_dict().items() if v != base.to_dict()[k]
        }  # exactly one kind of change, nothing else (same optimizers, budget, protocol)
        assert diff in ({"model_options"}, {"problem_options"}, {"split_seed"}), diff
        seen.add(_variant_notes([f"{name}~{seed}"], {})[f"{name}~{seed}"].split(":")[0])
        if diff == {"model_options"}:  # a width halved or doubled, that the model takes
            ((key, new),) = spec.model_options.items()
            old = base.model_options.get(key, models.default_options(spec.model or "cnn")[key])
            assert new in (round(old / 2), old * 2)
    data = "data subset" if name == "charlm" else "data split"
    kinds = {f"a variant of {name}, width", f"a variant of {name}, {data}"}
    # both kinds appear over 8 seeds where the problem has a width
    if name == "quadratic_deep":  # no width: another split only
        kinds = {f"a variant of {name}, {data}"}
    assert seen == kinds, seen
    assert _spec_for(f"{name}~1", {}).run_name() != base.run_name()


def test_variant_notes_say_what_changed() -> None:
    notes = _variant_notes(["digits", "digits~7", "mnist1d~1"], {})
    assert notes == {
        "digits~7": "a variant of digits, width: hidden 100 -> 200",
        "mnist1d~1": "a variant of mnist1d, width: channels 25 -> 12",
    }


@pytest.mark.parametrize("bad", ["digits~", "digits~x", "digits~-1", "~3", "digits~99999999999"])
def test_a_bad_variant_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="a variant is NAME~SEED"):
        expand_problems(f"default,{bad}")
