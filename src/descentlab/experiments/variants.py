"""Held-out variants of a workload: the AlgoPerf guard against optimizers tuned to one setting.

AlgoPerf (Dahl et al. 2023, section 4.2) scores submissions also on randomized *variants* of
its workloads. ``NAME~SEED`` (``digits~1``) is a problem of its own whose seed chooses and
values one change: the model's width, its activation, or a seeded subset of its data (what
each problem's variants are: docs/compare.md). Its target is set relative to the comparison.

Example:
    >>> parse_variant("digits~3"), parse_variant("digits")
    (('digits', 3), None)
    >>> fields, what = variant_fields("digits", 3, {"model": "mlp", "split_seed": 0})
    >>> what == variant_fields("digits", 3, {"model": "mlp", "split_seed": 0})[1]
    True
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["ACTIVATION_CHOICES", "MODEL_KNOBS", "SEPARATOR", "SUBSET", "parse_variant",
           "variant_fields"]  # fmt: skip

#: Between a problem's name and its variant's seed: ``digits~3``.
SEPARATOR = "~"

#: Per problem, where its model's options are, for the model it must have: ``(model, field,
#: width option, its default)`` (``model`` None: the problem's default model). The same
#: ``field`` takes ``activation``.
MODEL_KNOBS: dict[str, tuple[str | None, str, str, int]] = {
    "mnist1d": (None, "model_options", "channels", 25),
    "digits": ("mlp", "model_options", "hidden", 100),
    "charlm": (None, "problem_options", "d_model", 64),
}

#: The activations a variant puts in place of the models' ReLU.
ACTIVATION_CHOICES: tuple[str, ...] = ("tanh", "gelu", "silu")

#: The fraction of the training (and of the validation) examples a data variant keeps.
SUBSET = 0.75

_MAX_SEED = 2**31 - 1


def parse_variant(item: str) -> tuple[str, int] | None:
    """``(name, seed)`` of ``"NAME~SEED"``; None for a plain name.

    Raises:
        ValueError: a seed that is not a non-negative integer, or no name.
    """
    if SEPARATOR not in item:
        return None
    name, _, seed = item.rpartition(SEPARATOR)
    name, seed = name.strip(), seed.strip()
    if not name or not seed.isdigit() or int(seed) > _MAX_SEED:
        raise ValueError(
            f"problems: a variant is NAME~SEED with SEED an integer in 0..{_MAX_SEED}, got {item!r}"
        )
    return name, int(seed)


def variant_fields(name: str, seed: int, fields: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The spec ``fields`` of problem ``name`` changed into its variant ``seed``, and what
    changed in words. The same ``(name, seed)`` always gives the same variant."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in fields.items()}
    knobs = MODEL_KNOBS.get(name)
    has_model = knobs is not None and out.get("model") == knobs[0]
    kinds = ["width", "activation", "data"] if has_model else ["data"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind != "data":
        _, where, option, default = knobs  # type: ignore[misc]
        options = dict(out.get(where) or {})
        if kind == "width":
            old = int(options.get(option, default))
            factor = (0.5, 2.0)[int(rng.integers(2))]
            new = max(1, round(old * factor))
            if option == "d_model":  # the transformer's heads must divide its width
                new = max(4, new - new % 4)
        else:
            option, old = "activation", options.get("activation", "relu")
            new = str(rng.choice([a for a in ACTIVATION_CHOICES if a != old]))
        options[option] = new
        out[where] = options
        what = f"{option} {old}" if kind == "width" else old
        return out, f"{kind}: {what} -> {new}"
    options = dict(out.get("problem_options") or {})
    if name == "charlm":  # a problem object with its own fixed split: a subset of its corpus
        old = int(options.get("n_chars", 200_000))
        options["n_chars"] = max(10_000, round(old * SUBSET))
        out["problem_options"] = options
        return out, f"data subset: n_chars {old} -> {options['n_chars']}"
    subset_seed = int(rng.integers(1, 100_000))
    options.update(train_subset=SUBSET, subset_seed=subset_seed)
    out["problem_options"] = options
    return out, (
        f"data subset: {SUBSET:.0%} of the training and validation examples (subset seed "
        f"{subset_seed}), the same test set"
    )
