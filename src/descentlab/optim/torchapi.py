r"""What the named optimizers share: torch's signatures, flags and state dicts.

How the named optimizers follow torch's arguments, state dicts and errors, which inputs torch
refuses and these accept on purpose (:data:`BEYOND_TORCH`) and what ``fused`` chooses:
docs/optimizers.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from .base import Rule, check_bool, scalar_dtype
from .optimizer import Optimizer

__all__ = ["BEYOND_TORCH", "Named", "Params", "from_torch", "pair", "torch_flags"]

Params = Iterable[Any]

#: Inputs the named optimizers accept where their ``torch.optim`` namesakes refuse them, on
#: purpose: a fragment of torch's error message (as in torch's optimizer test database) ->
#: why descentlab accepts the input.
BEYOND_TORCH: dict[str, str] = {
    "as a Tensor is not supported for capturable=False and foreach=True": (
        "foreach has no effect in descentlab: a tensor hyperparameter works on every path, "
        "foreach=True or not, with the iterates of the same number"
    ),
    "betas must be either both floats or both Tensors": (
        "each beta may be a number or a tensor on its own (a tensor beta can be scheduled or "
        "batched without the other), with the iterates of the same numbers"
    ),
    "Muon only supports 2D parameters": (
        "Muon steps every parameter that is not a matrix (biases, gains, convolution kernels) "
        "with AdamW and its adamw_* hyperparameters, as Optax's Muon partitions them"
    ),
}


def torch_flags(
    name: str,
    *,
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
) -> None:
    if foreach is not None:
        check_bool("foreach", foreach)
    if capturable:
        raise ValueError(f"{name}: capturable=True is not supported by descentlab, got True")
    check_bool("differentiable", differentiable)
    if fused is not None:
        check_bool("fused", fused)
    if fused and foreach:
        raise ValueError(f"{name}: fused=True and foreach=True cannot be used together")


def pair(betas: Any) -> Any:
    """``betas`` as a tuple, where it is a sequence (anything else is refused by name when
    the chain validates it: ``tuple("ab")`` would hide a string)."""
    return tuple(betas) if isinstance(betas, list | tuple | Tensor) else betas


#: constructor arguments that are no hyperparameters: Python's own names in ``locals()``,
#: torch's implementation switches, the backend and monitor choices
_PLUMBING = frozenset(
    (
        "self",
        "__class__",
        "params",
        "foreach",
        "capturable",
        "differentiable",
        "fused",
        "monitor",
        "state_dtype",
    )
)
#: hyperparameters that are pairs (a list becomes a tuple, as torch keeps them)
_PAIRS = ("betas", "etas", "step_sizes")


class Named(Optimizer):
    """A named optimizer: a chain of rules whose hyperparameters are the constructor's
    arguments.

    A subclass's ``__init__`` has torch's signature, builds its chain and passes its
    arguments on as ``locals()``: each becomes a param-group hyperparameter, except torch's
    implementation switches (``foreach``, ``capturable``, ``differentiable``, checked here),
    ``fused``, ``monitor``, the construction-time choices listed in :attr:`options` and the
    update rules the constructor built. ``extra``: hyperparameters beyond the arguments.

    Example:
        >>> import torch
        >>> from descentlab import optim
        >>> class PlainSGD(Named):
        ...     def __init__(self, params, lr=1e-3, weight_decay=0.0, *, fused=None):
        ...         rule = optim.chain(optim.add_l2(), optim.scale_by_lr())
        ...         super().__init__(params, rule, locals())
        >>> PlainSGD([torch.nn.Parameter(torch.ones(2))], lr=0.1).param_groups[0]["lr"]
        0.1
    """

    #: constructor arguments that choose the chain instead of being hyperparameters
    options: tuple[str, ...] = ()
    #: a named optimizer's chain is the library's: one without a fused form (Adafactor,
    #: Muon) runs eagerly by default, as documented, with nothing for its user to act on.
    #: A subclass written outside the package says it (its author can act on it)
    announces_eager = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "announces_eager" not in cls.__dict__:
            cls.announces_eager = not cls.__module__.startswith("descentlab.")

    def __init__(self, params: Params, rule: Rule, args: dict[str, Any], **extra: Any) -> None:
        fused = args.get("fused")
        torch_flags(
            type(self).__name__,
            foreach=args.get("foreach"),
            capturable=args.get("capturable", False),
            differentiable=args.get("differentiable", False),
            fused=fused,
        )
        hyper = {
            k: pair(v) if k in _PAIRS else v
            for k, v in args.items()
            if k not in _PLUMBING and k not in self.options and not isinstance(v, Rule)
        }
        monitor = args.get("monitor", False)
        super().__init__(
            params,
            rule,
            **hyper,
            **extra,
            monitor=monitor,
            fused=fused,
            state_dtype=args.get("state_dtype"),
            differentiable=args.get("differentiable", False),
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this optimizer, of its ``torch.optim`` namesake, or of an
        older torch (no ``maximize`` key, ``state['step']`` a Python number).

        torch's optimizers keep no group step count and SGD no per-parameter step; torch's
        flags (``foreach``, ``fused``...) mean nothing here. They are completed as torch
        completes old state dicts: missing hyperparameters take this optimizer's defaults,
        a missing group step is the largest step of its parameters, a number step becomes a
        0-dim tensor. Continuing then gives the iterates torch gives continuing.
        """
        super().load_state_dict(from_torch(state_dict, self.defaults))

    def _check_sparse(self, gi: int, hyper: dict[str, Any]) -> None:
        super()._check_sparse(gi, hyper)
        wd = hyper["weight_decay"]
        if isinstance(wd, Tensor) or wd != 0:  # torch's SGD and Adagrad fail here too
            raise RuntimeError(
                f"{type(self).__name__}: weight_decay is not compatible with sparse gradients, "
                f"got weight_decay={wd!r} in param group {gi}"
            )

    def __repr__(self) -> str:
        rules = " -> ".join(r.name for r in self.rule.rules)
        return f"{type(self).__name__}({rules}; " + super().__repr__().split("(", 1)[1]


TORCH_FLAGS = ("foreach", "capturable", "differentiable", "fused")


def from_torch(state_dict: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A copy of a (torch or older) optimizer state dict in this library's layout; the
    tensors are shared, not copied (torch's own loading shares them too)."""
    groups, states = state_dict["param_groups"], state_dict["state"]
    new_states = {k: dict(v) for k, v in states.items()}
    new_groups = []
    for group in groups:
        g = {k: v for k, v in group.items() if k not in TORCH_FLAGS}
        for k, v in defaults.items():
            g.setdefault(k, v)
        steps = []
        for pid in g["params"]:
            st = new_states.get(pid)
            if not st:
                continue
            step = st.get("step")
            if step is not None and not isinstance(step, torch.Tensor):
                st["step"] = torch.tensor(float(step), dtype=scalar_dtype())
            if step is not None:
                steps.append(float(st["step"]))
        if "step" not in g:
            g["step"] = int(max(steps, default=0))
        for pid in g["params"]:  # torch's SGD keeps no per-parameter step
            st = new_states.get(pid)
            if st and "step" not in st:
                st["step"] = torch.tensor(float(g["step"]), dtype=scalar_dtype())
        new_groups.append(g)
    return {**state_dict, "state": new_states, "param_groups": new_groups}
