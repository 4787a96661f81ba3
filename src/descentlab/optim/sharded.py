"""Parameters sharded across processes: DTensors, as ``torch.distributed.fsdp.fully_shard``
(FSDP2) and tensor parallelism (``torch.distributed.tensor.parallel``) make them.

A generated kernel never addresses a DTensor (:func:`~descentlab.optim.base.unaddressable`);
an :class:`~descentlab.optim.Optimizer` steps a param group of DTensors through a
:class:`ShardedGroup`, one of two ways:

- **on each rank's shard** (:attr:`ShardedGroup.gathered` False), where every rule of the
  chain is :attr:`~descentlab.optim.Rule.shard_local`: the fused kernel or the eager step runs
  on the local tensors (``to_local()``: parameters, gradients and state), exactly the
  unsharded math on those elements; a rule whose math reduces over a tensor or the group (a
  global-norm clip, the non-finite check) reduces over :func:`whole` tensors, DTensors again,
  whose reductions torch computes across the shards. State that has its parameter's shape is
  kept as a DTensor of its parameter's placements (torch.optim's layout, which
  ``torch.distributed.checkpoint`` saves and reshards); per-tensor numbers as plain tensors.
- **on gathered tensors** (:attr:`ShardedGroup.gathered` True), for the chains whose math
  reads a whole matrix (Adafactor's factored moments, Muon's orthogonalization, Shampoo's and
  SOAP's preconditioners): every rank all-gathers each parameter and gradient
  (``full_tensor()``), runs the unsharded step on them, and keeps its own shard of the result.
  Their state is replicated: the same full tensors on every rank. :data:`GATHERED` counts the
  bytes each rank receives.

A group stepped on its shards takes the optimizer's *steady* step too (the fused kernel on
the same tensors with nothing but the gradients changed, in little Python): a
:class:`SteadyShards` hands the kernel the local tensors of the group's DTensors.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from descentlab._announce import once

from .base import caller_stacklevel

__all__ = [
    "GATHERED",
    "ShardedGroup",
    "SteadyShards",
    "any_dtensor",
    "begin",
    "end",
    "foreach_norm",
    "is_dtensor",
    "view",
    "whole",
]

try:
    from torch.distributed.tensor import DTensor
except ImportError:  # torch built without torch.distributed
    DTensor = None  # type: ignore[assignment,misc]


def is_dtensor(t: Any) -> bool:
    """Whether ``t`` is a DTensor (False where torch has no ``torch.distributed``)."""
    return DTensor is not None and isinstance(t, DTensor)


def any_dtensor(tensors: list[Any]) -> bool:
    """Whether any of ``tensors`` is a DTensor (their types' set: a few hundred ns for a
    group, on every step)."""
    if DTensor is None:
        return False
    kinds = set(map(type, tensors))
    return not kinds <= _PLAIN and any(issubclass(k, DTensor) for k in kinds)


_PLAIN = frozenset((torch.Tensor, torch.nn.Parameter))

#: bytes each rank received by all-gathers of gathered groups in this process (parameters and
#: gradients: each tensor's elements not in its local shard): what a matrix optimizer's step
#: on sharded parameters communicates
GATHERED = {"bytes": 0, "steps": 0}


#: the local shards of this step's sharded groups: ``id`` of a local tensor -> its DTensor
_LOCAL: contextvars.ContextVar[dict[int, Any] | None] = contextvars.ContextVar(
    "descentlab_sharded_locals", default=None
)


def begin() -> contextvars.Token:
    """One optimizer step begins: the local shards :func:`view` hands out are known to
    :func:`whole` until :func:`end` (a token and a reset, not a context manager's generator:
    this runs at every step of every optimizer)."""
    return _LOCAL.set({})


def end(token: contextvars.Token) -> None:
    """The step that :func:`begin` began has ended."""
    _LOCAL.reset(token)


def whole(tensors: list[Tensor], params: list[Tensor] | None = None) -> list[Any]:
    """``tensors`` as the whole tensors they are shards of, where they are local shards of
    this step's sharded parameters (``params``: the local parameters each of ``tensors`` is
    laid out as, for tensors a rule computed from them): a reduction over the result (a norm,
    a sum, ``isfinite(...).all()``) is then computed across the shards, as DTensor ops compute
    it. Anything else is returned as it is (an unsharded step, a gathered group)."""
    known = _LOCAL.get()
    if not known:
        return list(tensors)
    out: list[Any] = []
    for i, t in enumerate(tensors):
        d = known.get(id(t))
        if d is None and params is not None:
            d = known.get(id(params[i]))
        if d is None or not isinstance(t, Tensor) or t.shape != d._local_tensor.shape:
            out.append(t)
            continue
        out.append(t if t is d else _like(t, d))
    return out


def foreach_norm(
    tensors: list[Tensor], ord: float = 2.0, params: list[Tensor] | None = None
) -> list[Tensor]:
    """``torch._foreach_norm(tensors, ord)`` over the whole tensors: a DTensor's norm, or a
    local shard's (:func:`whole`; ``params`` as there), is reduced across its shards (a plain
    0-dim tensor, the same on every rank, within float reordering of the unsharded norm)."""
    tensors = whole(tensors, params)
    if DTensor is None or not any(isinstance(t, DTensor) for t in tensors):
        return list(torch._foreach_norm(tensors, ord))
    return [
        torch.linalg.vector_norm(t, ord).full_tensor()
        if isinstance(t, DTensor)
        else torch.linalg.vector_norm(t, ord)
        for t in tensors
    ]


def _like(local: Tensor, d: Any) -> Any:
    """``local`` (laid out as ``d``'s local tensor) as a DTensor of ``d``'s mesh and placements."""
    return DTensor.from_local(
        local, d.device_mesh, d.placements, run_check=False, shape=d.shape, stride=d.stride()
    )


@dataclass
class ShardedGroup:
    """A param group's DTensor parameters (``originals``) as the tensors its step runs on:
    their local shards (``gathered`` False) or their gathered full values (True), with their
    gradients (``grads``) and the original gradients (``dgrads``: the non-finite check reads
    them across shards)."""

    originals: list[Tensor]
    params: list[Tensor]
    grads: list[Tensor]
    dgrads: list[Tensor]
    gathered: bool

    def states(self, sts: list[dict]) -> list[dict]:
        """The state dicts the step reads and writes: each parameter's with its DTensor
        entries as their local tensors (gathered: as full tensors, kept so). :meth:`finish`
        writes what the step changed back."""
        out = []
        for p, st in zip(self.originals, sts, strict=True):
            local = {}
            for k, v in st.items():
                if is_dtensor(v):
                    if self.gathered:
                        v = st[k] = v.full_tensor()
                    else:
                        if v.placements != p.placements or v.device_mesh != p.device_mesh:
                            v = st[k] = v.redistribute(p.device_mesh, p.placements)
                        v = v.to_local()
                local[k] = v
            out.append(local)
        return out

    def finish(self, sts: list[dict], local: list[dict]) -> None:
        """Write the step's state back into the parameters' state dicts ``sts`` (a new local
        tensor of its parameter's shard shape becomes a DTensor of its placements), and,
        gathered, each rank's shard of the new parameters into its local tensor."""
        for i, (p, st, new) in enumerate(zip(self.originals, sts, local, strict=True)):
            for k, v in new.items():
                old = st.get(k)
                if old is v:
                    continue
                if is_dtensor(old) and old._local_tensor is v:
                    continue
                if (
                    not self.gathered
                    and isinstance(v, Tensor)
                    and v.ndim
                    and v.shape == p._local_tensor.shape
                ):
                    v = _like(v, p)
                st[k] = v
            if self.gathered:
                p._local_tensor.copy_(_shard_of(self.params[i], p))


def _shard_of(full: Tensor, d: Any) -> Tensor:
    """This rank's shard of ``full`` (a whole value of DTensor ``d``), as ``d`` holds it."""
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    shape, offset = compute_local_shape_and_global_offset(d.shape, d.device_mesh, d.placements)
    out = full
    for dim, (n, start) in enumerate(zip(shape, offset, strict=True)):
        if n != full.shape[dim]:
            out = out.narrow(dim, start, n)
    return out


def view(
    owner: str, gi: int, params: list[Tensor], grads: list[Tensor], gathered: bool
) -> ShardedGroup:
    """The tensors a step of param group ``gi`` of DTensor ``params`` runs on (``gathered``:
    the full values, for a chain that is not :attr:`~descentlab.optim.Rule.shard_local`;
    else the local shards). Raises, in one line, on what it cannot step: a group that mixes
    DTensors and plain tensors, or a plain gradient of a DTensor parameter."""
    for j, (p, g) in enumerate(zip(params, grads, strict=True)):
        if not is_dtensor(p):
            raise ValueError(
                f"{owner}: param group {gi} mixes DTensor and {type(p).__name__} parameters "
                f"(parameter {j}); put sharded and unsharded parameters in separate groups"
            )
        if not is_dtensor(g):
            raise ValueError(
                f"{owner}: parameter {j} of param group {gi} is a DTensor but its gradient is "
                f"a {type(g).__name__}; a sharded parameter needs a DTensor gradient"
            )
    if gathered:
        once(  # what it costs, said once per optimizer class
            ("gathered", owner),
            f"descentlab: {owner} steps DTensor parameters gathered: its math reads whole "
            "matrices, so every rank all-gathers each parameter and gradient at every "
            "step and keeps replicated state",
            stacklevel=caller_stacklevel(),
        )
        full_p = [p.full_tensor() for p in params]
        full_g = [g.full_tensor() for g in grads]
        got = sum(
            (t.numel() - t._local_tensor.numel()) * t.element_size() for t in (*params, *grads)
        )
        GATHERED["bytes"] += got
        GATHERED["steps"] += 1
        return ShardedGroup(list(params), full_p, full_g, list(grads), True)
    local_p, local_g = [], []
    known = _LOCAL.get()
    for p, g in zip(params, grads, strict=True):
        if g.placements != p.placements or g.device_mesh != p.device_mesh:
            g = g.redistribute(p.device_mesh, p.placements)  # e.g. a Partial gradient
        lp, lg = p.to_local(), g.to_local()
        local_p.append(lp)
        local_g.append(lg)
        if known is not None:
            known[id(lp)], known[id(lg)] = p, g
    return ShardedGroup(list(params), local_p, local_g, list(grads), False)


class SteadyShards:
    """The local tensors of a param group of DTensors stepped on its shards, for the
    optimizer's steady step (:mod:`descentlab.optim.fusedpath`): each step the parameters',
    gradients' and state's local tensors are read off their DTensors (an attribute each; the
    steady step then checks their addresses against the kernel's last launch, as an
    unsharded group's). A gradient is taken as it is where its placements and mesh are its
    parameter's: FSDP2's new gradient DTensor at every step shares its parameter's spec (one
    identity test), another is compared; any other placement (a ``Partial`` gradient, which
    must be reduced first) sends the step down the general path. Nothing of a step is kept
    after it (a gradient freed by ``zero_grad()`` is freed)."""

    __slots__ = ("known", "specs")

    def __init__(self, params: list[Any]) -> None:
        #: each parameter's DTensor spec
        self.specs = [p._spec for p in params]
        #: during a launch: ``id`` of a local tensor -> its DTensor, for a prepare's
        #: reduction (:func:`whole`)
        self.known: dict[int, Any] = {}

    def local(
        self, params: list[Any], grads: list[Any], cols: list[list]
    ) -> tuple[list[Tensor], list[Tensor], list[list]] | None:
        """The local tensors of ``params``, their ``grads`` and the state columns ``cols``,
        or None where a gradient is missing, not a DTensor, or placed otherwise than its
        parameter."""
        try:
            for g, spec in zip(grads, self.specs, strict=True):
                s = g._spec
                if s is not spec and (s.placements != spec.placements or s.mesh != spec.mesh):
                    return None
            local_g = [g._local_tensor for g in grads]
            local_p = [p._local_tensor for p in params]
        except AttributeError:  # None, or a plain tensor
            return None
        local_cols = [[v._local_tensor if type(v) is DTensor else v for v in c] for c in cols]
        known = self.known
        known.clear()
        for p, g, lp, lg in zip(params, grads, local_p, local_g, strict=True):
            known[id(lp)], known[id(lg)] = p, g
        return local_p, local_g, local_cols

    def launch(self, plan: Any, params: list[Tensor], ptrs: Any, hyper: Any, t: Any) -> None:
        """``plan.launch(...)`` on the local tensors :meth:`local` gave, with their DTensors
        known to :func:`whole` (a prepare's norm, a global-norm clip's, spans the shards)."""
        token = _LOCAL.set(self.known)
        try:
            plan.launch(params, ptrs, hyper, t)
        finally:
            _LOCAL.reset(token)
            self.known.clear()
