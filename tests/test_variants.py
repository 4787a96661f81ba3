"""Held-out variants of a workload: ``--problems`` adds randomized variants
(another width, activation or data subset), seeded, each a problem of its own."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
import torch.nn.functional as F

from descentlab import _native
from descentlab.engine import vcnn, vectorized
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import train_many
from descentlab.experiments import multi as variants
from descentlab.experiments.multi import _problem_name, _spec_for, _variant_notes, expand_problems
from descentlab.problems import data, models
from descentlab.problems.problem import load_problem


def test_default_variant_adds_one_variant_of_each_default_problem() -> None:
    assert expand_problems("default,default~1") == [
        "mnist1d", "digits", "quadratic_deep", "charlm",
        "mnist1d~1", "digits~1", "quadratic_deep~1", "charlm~1",
    ]  # fmt: skip
    assert _problem_name("digits~1") == "digits~1"


@pytest.mark.parametrize("name", ["mnist1d", "digits", "quadratic_deep", "charlm"])
def test_variants_are_seeded_and_change_width_activation_or_data(name: str) -> None:
    base = _spec_for(name, {})
    seen = set()
    for seed in range(8):
        spec = _spec_for(f"{name}~{seed}", {})
        assert spec.to_dict() == _spec_for(f"{name}~{seed}", {}).to_dict()  # seeded
        spec.validate()
        diff = {
            k for k, v in spec.to_dict().items() if v != base.to_dict()[k]
        }  # exactly one kind of change, nothing else (same optimizers, budget, protocol)
        assert diff in ({"model_options"}, {"problem_options"}), diff
        (field,) = diff
        changed = {
            k: v for k, v in getattr(spec, field).items() if getattr(base, field).get(k) != v
        }
        seen.add(_variant_notes([f"{name}~{seed}"], {})[f"{name}~{seed}"].split(":")[0])
        if "activation" in changed:  # ReLU replaced
            assert changed == {"activation": changed["activation"]}
            assert changed["activation"] in variants.ACTIVATION_CHOICES
        elif set(changed) & {"channels", "hidden", "d_model"}:  # a width halved or doubled
            ((key, new),) = changed.items()
            old = getattr(base, field).get(key) or models.default_options(spec.model or "cnn")[key]
            assert new in (round(old / 2), old * 2)
        elif name == "charlm":  # a subset of its corpus
            assert changed == {"n_chars": 45_000}
        else:  # a subset of the training and validation examples
            assert set(changed) == {"train_subset", "subset_seed"}
            assert changed["train_subset"] == variants.SUBSET
    kinds = {f"a variant of {name}, {k}" for k in ("width", "activation", "data subset")}
    if name == "quadratic_deep":  # no width, no activation: data subsets only
        kinds = {f"a variant of {name}, data subset"}
    assert seen == kinds, seen  # every kind appears over 8 seeds where the problem has it
    assert _spec_for(f"{name}~1", {}).run_name() != base.run_name()


def test_variant_notes_say_what_changed() -> None:
    notes = _variant_notes(["digits", "digits~7", "mnist1d~1", "digits~0"], {})
    assert notes == {
        "digits~7": "a variant of digits, activation: relu -> gelu",
        "mnist1d~1": "a variant of mnist1d, width: channels 25 -> 12",
        "digits~0": "a variant of digits, data subset: 75% of the training and validation "
        "examples (subset seed 82608), the same test set",
    }


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x}


@pytest.mark.parametrize("name", ["digits", "quadratic_deep"])
def test_a_data_variant_tunes_and_refits_on_other_examples_and_tests_on_the_same(name) -> None:
    # the variant before this one changed only the train/validation split: its refit (on
    # train + validation) trained on exactly the problem's examples
    seed = next(s for s in range(8) if "data subset" in _variant_notes([f"{name}~{s}"], {})[
        f"{name}~{s}"])  # fmt: skip
    base_spec, spec = _spec_for(name, {}), _spec_for(f"{name}~{seed}", {})

    def load(s):
        return data.load(s.problem, seed=s.split_seed, val_fraction=s.val_fraction,
                         **s.problem_options)  # fmt: skip

    base, var = load(base_spec), load(spec)
    assert var.n_train == round(variants.SUBSET * base.n_train)
    assert var.n_val == round(variants.SUBSET * base.n_val)
    # a subset of the same examples: every row of the variant's is one of the problem's
    assert _rows(var.x_train) <= _rows(base.x_train) and _rows(var.x_val) <= _rows(base.x_val)
    # the refit's data (train + validation) differ from the problem's
    assert _rows(var.train_val()[0]) < _rows(base.train_val()[0])
    base.unseal_test(), var.unseal_test()
    assert torch.equal(var.x_test, base.x_test) and torch.equal(var.y_test, base.y_test)
    # another subset seed, another subset
    other = data.load(name, **{**spec.problem_options, "subset_seed": 1})
    assert _rows(other.x_train) != _rows(var.x_train)


def _manual_cnn(m: models.MNIST1DCNN, x: torch.Tensor, act) -> torch.Tensor:
    h = x.reshape(x.shape[0], 1, -1)
    for conv in (m.conv1, m.conv2, m.conv3):
        h = act(F.conv1d(h, conv.weight, conv.bias, stride=2, padding=1))
    return F.linear(h.reshape(h.shape[0], -1), m.linear.weight, m.linear.bias)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "silu"])
def test_an_activation_variant_computes_with_its_activation(activation: str) -> None:
    x = torch.randn(5, 40)
    act = models.ACTIVATIONS[activation]
    torch.manual_seed(0)
    cnn = models.build("cnn", input_shape=(40,), n_outputs=10, activation=activation)
    torch.manual_seed(0)
    relu = models.build("cnn", input_shape=(40,), n_outputs=10)
    # the same layers, initialised alike; computed with the activation (an independent
    # forward pass from the weights, not the model's own)
    assert all(torch.equal(a, b) for a, b in zip(cnn.parameters(), relu.parameters(), strict=True))
    torch.testing.assert_close(cnn(x), _manual_cnn(cnn, x, act), rtol=0, atol=1e-6)
    torch.testing.assert_close(relu(x), _manual_cnn(relu, x, torch.relu), rtol=0, atol=1e-6)
    assert not torch.allclose(cnn(x), relu(x))
    # the vectorized kernel (ReLU written in C) takes the paper's CNN only
    assert vcnn.applicable(relu, "cross_entropy", {}, torch.float32)
    assert not vcnn.applicable(cnn, "cross_entropy", {}, torch.float32)
    mlp = models.build("mlp", input_shape=(40,), n_outputs=10, activation=activation)
    h = act(mlp.linear1(x))
    torch.testing.assert_close(mlp(x), mlp.linear3(h + act(mlp.linear2(h))), rtol=0, atol=0)


def test_the_language_models_activation_variant_reaches_its_layers() -> None:
    spec = _spec_for("charlm~0", {})
    assert spec.problem_options["activation"] == "silu"
    options = {**spec.problem_options, "n_chars": 20_000}
    model = load_problem("charlm", **options).model()
    assert all(layer.activation is F.silu for layer in model.layers.layers)
    default = load_problem("charlm", n_chars=20_000).model()
    assert all(layer.activation is F.relu for layer in default.layers.layers)


@pytest.mark.parametrize(("model", "bad"), [("cnn", "Tanh"), ("mlp", None), ("mlp", 1)])
def test_an_unknown_activation_is_refused_in_one_line(model, bad) -> None:
    message = f"activation must be one of relu, tanh, gelu, silu, got {bad!r}$"
    with pytest.raises(ValueError, match="^" + message):
        models.build(model, input_shape=(40,), n_outputs=10, activation=bad)
    with pytest.raises(ValueError, match="^problem function charlm failed: ValueError: " + message):
        load_problem("charlm", n_chars=20_000, activation=bad)


@pytest.mark.skipif(_native.compiler() is None, reason="needs a C++ compiler")
def test_a_vectorized_group_of_another_activation_trains_as_without_the_kernel(monkeypatch):
    s = data.load("mnist1d")
    s = dataclasses.replace(s, x_train=s.x_train[:200], y_train=s.y_train[:200],
                            x_val=s.x_val[:100], y_val=s.y_val[:100])  # fmt: skip
    configs = [
        RunConfig(problem="mnist1d", model="cnn", model_options={"activation": "tanh"},
                  optimizer="adam", batch_size=32, steps=6, eval_every=3, evaluate_test=False,
                  hyper={"lr": 1e-3 * (i + 1)}, seed=i, name=f"r{i}")
        for i in range(2)
    ]  # fmt: skip
    monkeypatch.setattr(vectorized, "_verified", {})
    with warnings.catch_warnings():  # the kernel is not tried (and found to disagree) at all
        warnings.simplefilter("error", RuntimeWarning)
        got = train_many(configs, data=s, mode="vmap", progress=False)
    monkeypatch.setattr(vectorized, "_KERNEL", False)
    ref = train_many(configs, data=s, mode="vmap", progress=False)
    for a, b in zip(got, ref, strict=True):
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("bad", ["digits~", "digits~x", "digits~-1", "~3", "digits~99999999999"])
def test_a_bad_variant_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="a variant is NAME~SEED"):
        expand_problems(f"default,{bad}")
