"""Optimizers composed from update rules.

One module per optimizer family holds its update rules, its named optimizer classes with
torch's signatures and their :class:`OptimizerRecord`; the elementwise rules write their math
once in the form (:mod:`descentlab.optim.form`), from which the eager, fused, Triton and
differentiable steps are derived. This package registers the modules listed in ``_MODULES``,
in the lectures' order (:func:`records`, :func:`record`, :func:`get`), and exports each one's
``__all__``. The optimizers, the backends and adding one: docs/optimizers.md.

A new optimizer in one expression::

    opt = optim.Optimizer(model.parameters(), optim.chain(
        optim.clip_by_global_norm(1.0), optim.scale_by_rms(alpha=0.9),
        optim.trace(momentum=0.9), optim.scale_by_lr(1e-3)))
"""

from __future__ import annotations

import torch

from . import (
    adabelief,
    adafactor,
    adam,
    adam_variants,
    adan,
    adaptive,
    asgd,
    gpu,
    lion,
    muon,
    rprop,
    sam,
    schedule_free,
    sgd,
    shampoo,
    soap,
    specs,
    transforms,
)
from . import eager_emitter as _eager_emitter  # noqa: F401  (registers the eager emitters)
from . import lookahead as _lookahead

# Each optimizer module's __all__ (its named optimizers, rules and helpers) is exported here.
from .adabelief import *  # noqa: F403
from .adafactor import *  # noqa: F403
from .adam import *  # noqa: F403
from .adam_variants import *  # noqa: F403
from .adan import *  # noqa: F403
from .adaptive import *  # noqa: F403
from .asgd import *  # noqa: F403
from .base import Chain, HyperparameterTypeError, Owned, Rule, Wrapper, chain, step_values
from .form import Form, FormRule
from .fused import FusedUnavailable, fused_available
from .hyperspec import BETAS, Flag, Items, Real, declare
from .lbfgs import LBFGS, scale_by_lbfgs
from .lion import *  # noqa: F403
from .lookahead import *  # noqa: F403
from .muon import *  # noqa: F403
from .optimizer import SETTINGS_ONLY, Monitor, Optimizer, apply_updates
from .records import OptimizerRecord, ParityConfig, Registry
from .rprop import *  # noqa: F403
from .sam import *  # noqa: F403
from .schedule_free import *  # noqa: F403
from .sgd import *  # noqa: F403
from .shampoo import *  # noqa: F403
from .soap import *  # noqa: F403
from .specs import register
from .torchapi import Named
from .transforms import (
    NonFiniteGradientError,
    add_decayed_weights,
    add_l2,
    add_noise,
    clip_by_global_norm,
    clip_by_value,
    maximize,
    non_finite_guard,
    scale_by_lr,
)

#: The registered optimizer modules, in the lectures' order: :data:`NAMES` is their
#: ``RECORDS``, module after module, and each one's ``__all__`` is exported (imported above).
_MODULES = (
    sgd,
    adaptive,
    adam,
    adam_variants,
    asgd,
    rprop,
    lion,
    _lookahead,
    sam,
    schedule_free,
    adafactor,
    muon,
    adabelief,
    adan,
    shampoo,
    soap,
)

__all__ = [
    "BETAS",
    "LBFGS",
    "NAMES",
    "SETTINGS_ONLY",
    "Chain",
    "Flag",
    "Form",
    "FormRule",
    "FusedUnavailable",
    "HyperparameterTypeError",
    "Items",
    "Monitor",
    "Named",
    "NonFiniteGradientError",
    "Optimizer",
    "OptimizerRecord",
    "Owned",
    "ParityConfig",
    "Real",
    "Rule",
    "Wrapper",
    "add_decayed_weights",
    "add_l2",
    "add_noise",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "clip_by_value",
    "declare",
    "family",
    "fused_available",
    "get",
    "maximize",
    "non_finite_guard",
    "record",
    "records",
    "register",
    "scale_by_lbfgs",
    "scale_by_lr",
    "step_values",
]
__all__ += [name for module in _MODULES for name in module.__all__]

_REGISTRY = Registry(r for module in _MODULES for r in module.RECORDS)

#: Registered optimizer names, in the lectures' order.
NAMES: tuple[str, ...] = _REGISTRY.names
specs.RESERVED = frozenset(NAMES)


def records() -> tuple[OptimizerRecord, ...]:
    """Every registered optimizer's :class:`OptimizerRecord`, in registry order."""
    return _REGISTRY.records()


def record(name: str) -> OptimizerRecord:
    """The :class:`OptimizerRecord` of ``name`` (case-insensitive): a registered name, one
    given to :func:`register`, or ``path/to/file.py:Class`` / ``module:Class``
    (:mod:`~descentlab.optim.specs`).

    Raises:
        KeyError: unknown name; the message lists the valid ones.
        ValueError: a spec that does not import or names no descentlab optimizer.
    """
    try:
        return _REGISTRY.record(name)
    except KeyError:
        found = specs.lookup(name)
        if found is None:
            raise
        return found


def get(name: str) -> type[Optimizer]:
    """The optimizer class for ``name`` (case-insensitive; as :func:`record` reads it).

    Raises:
        KeyError: unknown name; the message lists the valid ones.
    """
    return record(name).factory


def family(**options: dict) -> dict[str, list[str]]:
    """Each named optimizer's chain, as rule names (the optimizer family tree of the derivatives
    lecture).

    Args:
        options: per-name constructor options, e.g. ``family(sgd={"momentum": 0.9})``.
    """
    probe = [torch.nn.Parameter(torch.zeros(1))]
    out: dict[str, list[str]] = {}
    for rec in records():
        name = rec.name
        opt = rec.factory(probe, **options.get(name, {}))
        out[name] = [r.name for r in opt.rule.rules]
    return out


def cuda_paths() -> dict[str, gpu.CudaPath]:
    """How each registered optimizer's param group steps on a CUDA device, at its defaults
    (:func:`descentlab.optim.gpu.cuda_path`)."""
    probe = [torch.nn.Parameter(torch.zeros(2))]
    return {r.name: gpu.cuda_path(r.factory(probe, fused=False)) for r in records()}


def triton_optimizers() -> dict[str, bool]:
    """Every registered optimizer whose chain holds a rule written in the form (other than the
    glue every chain shares: the learning rate, the sign, weight decay) that acts at its
    default hyperparameters (SGD's momentum of 0 passes gradients through), and whether its
    whole chain there has a Triton program (:func:`cuda_paths` gives every optimizer's path)."""
    probe = [torch.nn.Parameter(torch.zeros(2))]
    paths = cuda_paths()
    return {
        r.name: paths[r.name].kind != "eager"
        for r in records()
        if gpu.has_form_rule(r.factory(probe, fused=False), transforms.__name__)
    }
