"""Held-out variants of a workload: the AlgoPerf guard against optimizers tuned to one setting.

AlgoPerf (Dahl et al. 2023, section 4.2) scores submissions also on randomized *variants* of
its workloads, drawn after the submissions are fixed, so that a search space or a default
tuned to the exact fixed workloads does not pass unnoticed. ``--problems digits~1`` adds the
variant of digits drawn with seed 1 (``default~1``: one of each default problem); each variant
changes one thing, chosen and valued by its seed:

- **width**: the model's width halved or doubled (MNIST-1D's CNN channels, the digits MLP's
  hidden units, the character-level transformer's ``d_model``), where the problem has one;
- **data**: another train/validation split of the training data (``split_seed``: tuning,
  selection and the curves see other examples; the refit, on train + validation, sees the
  same ones), or for the character-level model, whose split is fixed, a subset of its corpus
  (three quarters: other training, validation and test text).

(The models take no activation option, so no variant changes one.) A variant is a problem of
its own, named ``NAME~SEED``: its own run directory, no stored target (its target is set
relative to the comparison, and says so).

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

__all__ = ["SEPARATOR", "WIDTHS", "parse_variant", "variant_fields"]

#: Between a problem's name and its variant's seed: ``digits~3``.
SEPARATOR = "~"

#: Per problem, where its width is, for the model it must have: ``(model, field, option,
#: default)`` (``model`` None: the problem's default model).
WIDTHS: dict[str, tuple[str | None, str, str, int]] = {
    "mnist1d": (None, "model_options", "channels", 25),
    "digits": ("mlp", "model_options", "hidden", 100),
    "charlm": (None, "problem_options", "d_model", 64),
}

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
    width = WIDTHS.get(name)
    has_width = width is not None and out.get("model") == width[0]
    kinds = ["width", "data"] if has_width else ["data"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "width":
        _, where, option, default = width  # type: ignore[misc]
        options = dict(out.get(where) or {})
        old = int(options.get(option, default))
        factor = (0.5, 2.0)[int(rng.integers(2))]
        new = max(1, round(old * factor))
        if option == "d_model":  # the transformer's heads must divide its width
            new = max(4, new - new % 4)
        options[option] = new
        out[where] = options
        return out, f"width: {option} {old} -> {new}"
    if name == "charlm":  # its own fixed split: a subset of the corpus instead
        options = dict(out.get("problem_options") or {})
        old = int(options.get("n_chars", 200_000))
        options["n_chars"] = max(10_000, round(old * 0.75))
        out["problem_options"] = options
        return out, f"data subset: n_chars {old} -> {options['n_chars']}"
    split = int(rng.integers(1, 100_000))
    old = out.get("split_seed", 0)
    out["split_seed"] = split if split != old else split + 1
    return out, f"data split: train/validation split seed {old} -> {out['split_seed']}"
