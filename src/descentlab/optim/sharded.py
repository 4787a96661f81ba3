"""Parameters sharded across processes: DTensors, as ``torch.distributed.fsdp.fully_shard``
(FSDP2, HSDP) and tensor parallelism (``torch.distributed.tensor.parallel``) make them.

A generated kernel never addresses a DTensor (:func:`~descentlab.optim.base.unaddressable`);
an :class:`~descentlab.optim.Optimizer` steps a param group of DTensors through a
:class:`ShardedGroup`, one of three ways (:attr:`ShardedGroup.mode`): ``"shards"`` (every rule
:attr:`~descentlab.optim.Rule.shard_local`: the step on each rank's local tensors, reductions
over :func:`whole` tensors), ``"owners"`` (:attr:`~descentlab.optim.Rule.tensorwise` rules:
each tensor stepped whole by one rank, :class:`Owners`) or ``"gather"`` (every rank steps
every tensor). What each does and when: docs/distributed.md. :class:`Traffic` counts what a
rank receives; a :class:`SteadyShards` hands the steady step the local tensors of a group's
DTensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import is_
from typing import Any

import torch
from torch import Tensor

from descentlab._announce import once

from . import dtensors as dt
from .base import caller_stacklevel

__all__ = [
    "MODES",
    "Owners",
    "ShardedGroup",
    "ShardedPath",
    "Shards",
    "SteadyShards",
    "Traffic",
    "foreach_norm",
    "whole",
]

#: what ``Optimizer.sharding`` takes: how a chain that reads whole tensors steps DTensors
MODES = ("owners", "gather")


class Shards(list):
    """The local tensors of a param group's DTensors, in order, carrying those DTensors
    (``whole``): a reduction over them (:func:`whole`) spans the shards."""

    __slots__ = ("whole",)

    def __init__(self, tensors: list[Tensor], whole: list[Any]) -> None:
        super().__init__(tensors)
        self.whole = whole


def whole(tensors: list[Tensor], params: list[Tensor] | None = None) -> list[Any]:
    """``tensors`` as the whole tensors they are shards of, where they are :class:`Shards`
    (or computed from ``params``, :class:`Shards`, and laid out as them): a reduction over the
    result (a norm, ``isfinite(...).all()``) is computed across the shards, as DTensor ops
    compute it. Anything else is returned as it is (an unsharded step, gathered tensors)."""
    if isinstance(tensors, Shards):
        return list(tensors.whole)
    if not isinstance(params, Shards):
        return list(tensors)
    return [
        dt.like(t, d) if isinstance(t, Tensor) and t.shape == dt.local(d).shape else t
        for t, d in zip(tensors, params.whole, strict=True)
    ]


def foreach_norm(
    tensors: list[Tensor], ord: float = 2.0, params: list[Tensor] | None = None
) -> list[Tensor]:
    """``torch._foreach_norm(tensors, ord)`` over the whole tensors: a DTensor's norm, or a
    local shard's (:func:`whole`; ``params`` as there), is reduced across its shards (a plain
    0-dim tensor, the same on every rank, within float reordering of the unsharded norm)."""
    tensors = whole(tensors, params)
    if not dt.any_dtensor(tensors):
        return list(torch._foreach_norm(tensors, ord))
    return [
        torch.linalg.vector_norm(t, ord).full_tensor()
        if dt.is_dtensor(t)
        else torch.linalg.vector_norm(t, ord)
        for t in tensors
    ]


@dataclass
class Traffic:
    """What one rank received from the others for an optimizer's sharded steps (bytes), the
    steps that communicated, and the elements of the tensors it stepped whole as their owner."""

    received: int = 0
    steps: int = 0
    stepped: int = 0


@dataclass
class ShardedGroup:
    """A param group's DTensor parameters (``originals``: those this rank steps) as the
    tensors its step runs on (``params``, ``grads``: local shards, the owned tensors whole, or
    every tensor gathered), and the original gradients (``dgrads``: the non-finite check
    reads them across shards)."""

    originals: list[Tensor]
    params: list[Tensor]
    grads: list[Tensor]
    dgrads: list[Tensor]
    mode: str
    #: owners: the plan, the group's DTensors with gradients and the positions this rank
    #: owns, and what the rank receives is counted in
    owners: Owners | None = None
    everyone: list[Tensor] = field(default_factory=list)
    mine: list[int] = field(default_factory=list)
    traffic: Traffic = field(default_factory=Traffic)

    def states(self, sts: list[dict]) -> list[dict]:
        """The state dicts the step reads and writes: each parameter's with its DTensor
        entries as their local tensors (gathered: as full tensors, kept so; by owners: the
        dicts themselves, whole tensors). :meth:`finish` writes what the step changed back."""
        if self.mode == "owners":
            for j, st in enumerate(sts):
                bad = next((k for k, v in st.items() if dt.is_dtensor(v)), None)
                if bad is not None:
                    raise ValueError(
                        f"state {bad!r} of the group's parameter {self.mine[j]} is a DTensor; "
                        "an optimizer whose tensors are stepped by their owners keeps whole "
                        "tensors (load a checkpoint saved by such a step)"
                    )
            return sts
        out = []
        for p, st in zip(self.originals, sts, strict=True):
            local = {}
            for k, v in st.items():
                if dt.is_dtensor(v):
                    if self.mode == "gather":
                        v = st[k] = v.full_tensor()
                    else:
                        v = st[k] = dt.placed_as(v, p)
                        v = dt.local(v)
                local[k] = v
            out.append(local)
        return out

    def finish(self, sts: list[dict], local: list[dict], failed: bool = False) -> None:
        """Write the step's state back into the parameters' state dicts ``sts`` (a new local
        tensor of its parameter's shard shape becomes a DTensor of its placements); gathered,
        each rank's shard of the new parameters into its local tensor; by owners, every
        rank's shards of the new values from their owners (``failed``: this rank's step
        raised, which every rank is told: nothing moves)."""
        if self.owners is not None:
            self.owners.spread(self, failed)
            return
        if failed:
            return
        for i, (p, st, new) in enumerate(zip(self.originals, sts, local, strict=True)):
            for k, v in new.items():
                old = st.get(k)
                if old is v or (dt.is_dtensor(old) and dt.local(old) is v):
                    continue
                local_shape = self.mode == "shards" and isinstance(v, Tensor) and v.ndim
                if local_shape and v.shape == dt.local(p).shape:
                    v = dt.like(v, p)
                st[k] = v
            if self.mode == "gather":
                dt.local(p).copy_(_shard_of(self.params[i], p))


def _shard_of(full: Tensor, d: Any) -> Tensor:
    """This rank's shard of ``full`` (a whole value of DTensor ``d``), as ``d`` holds it."""
    mesh = d.device_mesh
    return dt.take(full, dt.shard_index(d.shape, mesh.shape, d.placements, mesh.get_coordinate()))


def _length(ix: slice | Tensor) -> int:
    return ix.stop - ix.start if isinstance(ix, slice) else len(ix)


def _cost(shape: torch.Size) -> int:
    """A tensor's step cost, for balancing owners: its matrix products' (elements times the
    shorter side of its matrix view), elements alone for a vector."""
    n = shape.numel()
    if len(shape) < 2 or n == 0:
        return n
    return n * min(shape[0], n // shape[0])


def _units(params: list[Any]) -> list[list[Any]]:
    """``params`` in the units owners are given: the tensors of one shape and dtype in pairs
    (three, the last of an odd number), a tensor alone where it is the only one. An owner
    then steps each in a stack of two or more where the whole group has two or more: a
    stack of one takes other kernels (a bfloat16 matrix product rounds otherwise), so the
    stacks' results are those of the unsharded step."""
    kinds: dict[tuple, list[Any]] = {}
    for p in params:
        kinds.setdefault((tuple(p.shape), p.dtype), []).append(p)
    out = []
    for same in kinds.values():
        starts = list(range(0, len(same), 2))
        if len(same) % 2 and len(starts) > 1:
            starts.pop()
        out += [same[a:b] for a, b in zip(starts, [*starts[1:], len(same)], strict=True)]
    return out


def _unit_cost(unit: list[Any]) -> int:
    return sum(_cost(p.shape) for p in unit)


class Owners:
    """Which rank steps each DTensor parameter of an optimizer (its owner), where every rank's
    shard of each lies, and the two exchanges of a step: :meth:`collect` (each owner
    receives the shards of its parameters and gradients), :meth:`spread` (every rank receives
    its shards of the new values). Made once for the optimizer's parameters; :meth:`fits`
    tells whether they are still the same, placed alike."""

    def __init__(
        self,
        params: list[Any],
        group: Any,
        ranks: list[int],
        coords: list,
        before: dict[int, int] | None = None,
    ) -> None:
        import torch.distributed as dist

        self.params = list(params)  # (held: their ids key what follows)
        self.group, self.n = group, len(ranks)
        self.me = ranks.index(dist.get_rank())
        self.specs = {id(p): dt.spec(p) for p in params}
        mesh_shape = tuple(params[0].device_mesh.shape)
        #: per parameter: each group rank's shard index, its shape, and whether it sends it
        self.index: dict[int, list[tuple]] = {}
        self.shapes: dict[int, list[torch.Size]] = {}
        self.sends: dict[int, list[bool]] = {}
        for p in params:
            index = [dt.shard_index(tuple(p.shape), mesh_shape, p.placements, c) for c in coords]
            self.index[id(p)] = index
            self.shapes[id(p)] = [torch.Size(map(_length, ix)) for ix in index]
            self.sends[id(p)] = [dt.holds(p.placements, c) for c in coords]
        #: the owner of each parameter: the largest first, each to the least loaded rank (one
        #: that had an owner keeps it: its state is there)
        before = {k: r for k, r in (before or {}).items() if k in self.index and r < self.n}
        self.owner: dict[int, int] = dict(before)
        load = [0] * self.n
        for p in params:
            if id(p) in before:
                load[before[id(p)]] += _cost(p.shape)
        units = _units([p for p in params if id(p) not in before])
        for unit in sorted(units, key=lambda u: -_unit_cost(u)):
            r = min(range(self.n), key=lambda r: (load[r], r))
            for p in unit:
                self.owner[id(p)] = r
            load[r] += _unit_cost(unit)

    @classmethod
    def of(cls, params: list[Any], before: Owners | None = None) -> Owners | str:
        """The owners of ``params`` (every DTensor parameter of an optimizer; those of
        ``before`` keep theirs), or why there are none."""
        mesh = params[0].device_mesh
        if any(p.device_mesh != mesh for p in params):
            return "its parameters lie on several device meshes"
        spans = dt.group_of(mesh)
        if spans is None:
            return "no process group spans its device mesh"
        return cls(params, *spans, before=None if before is None else before.owner)

    def fits(self, params: list[Any]) -> bool:
        """Whether ``params`` are the parameters these owners were made for, placed alike."""
        specs = self.specs
        return len(params) == len(specs) and all(
            (s := specs.get(id(p))) is not None and dt.same_spec(s, dt.spec(p)) for p in params
        )

    def collect(
        self, params: list[Any], grads: list[Any], traffic: Traffic
    ) -> tuple[list[int], list[Tensor], list[Tensor]]:
        """Every rank sends each owner its shards of the owner's ``params`` and ``grads`` (one
        group's DTensors, the gradients placed as their parameters; each shard once, from
        the first rank that holds it); returns the positions of the tensors this rank owns,
        and their parameters and gradients whole."""
        me, n = self.me, self.n
        pairs = list(zip(params, grads, strict=True))
        own = [self.owner[id(p)] for p in params]
        mine = [i for i, o in enumerate(own) if o == me]
        dev = dt.local(params[0]).device
        full = [[torch.empty(pairs[i][k].shape, dtype=pairs[i][k].dtype, device=dev)
                 for i in mine] for k in (0, 1)]  # fmt: skip
        for dtype in sorted({t.dtype for t in (*params, *grads)}, key=str):
            out: list[list[Tensor]] = [[] for _ in range(n)]
            for i, pair in enumerate(pairs):
                if self.sends[id(pair[0])][me]:
                    out[own[i]] += [dt.local(t).reshape(-1) for t in pair if t.dtype == dtype]
            # from each rank: its shards of this rank's tensors, each parameter's, gradient's
            comes = [
                [(j, k) for j, i in enumerate(mine) if self.sends[id(params[i])][s]
                 for k in (0, 1) if pairs[i][k].dtype == dtype]
                for s in range(n)
            ]  # fmt: skip
            shapes = [[self.shapes[id(params[mine[j]])][s] for j, _ in comes[s]] for s in range(n)]
            got = self._exchange(out, [sum(x.numel() for x in sh) for sh in shapes], dtype, dev,
                                 traffic)  # fmt: skip
            for s in range(n):
                chunks = got[s].split([x.numel() for x in shapes[s]])
                for (j, k), chunk in zip(comes[s], chunks, strict=True):
                    ix = self.index[id(params[mine[j]])][s]
                    dt.put(full[k][j], ix, chunk.view(self.shapes[id(params[mine[j]])][s]))
        return mine, full[0], full[1]

    def spread(self, g: ShardedGroup, failed: bool) -> None:
        """Every owner sends each rank (replicas too) its shards of the new values of the
        owner's tensors of group ``g`` (:meth:`collect`'s), with a flag: whether the owner's
        step failed; where any did, nothing moves and every rank raises."""
        me, n, params = self.me, self.n, g.everyone
        own = [self.owner[id(p)] for p in params]
        dev = dt.local(params[0]).device
        for dtype in sorted({p.dtype for p in params}, key=str):
            flag = torch.full((1,), float(failed), dtype=dtype, device=dev)
            out = [[flag] for _ in range(n)]
            for j, i in enumerate(g.mine):
                if params[i].dtype == dtype:
                    index = self.index[id(params[i])]
                    for d in range(n):
                        out[d].append(dt.take(g.params[j], index[d]).reshape(-1))
            comes = [[p for p, o in zip(params, own, strict=True) if o == s and p.dtype == dtype]
                     for s in range(n)]  # fmt: skip
            want = [1 + sum(self.shapes[id(p)][me].numel() for p in ps) for ps in comes]
            got = self._exchange(out, want, dtype, dev, g.traffic)
            bad = [s for s in range(n) if got[s][0] != 0]
            if bad and not failed:
                raise RuntimeError(
                    f"the step of the tensors that rank {bad[0]} steps failed there (its own "
                    "error says why); no parameter moved"
                )
            if bad:
                return
            for s in range(n):
                shapes = [self.shapes[id(p)][me] for p in comes[s]]
                chunks = got[s][1:].split([x.numel() for x in shapes])
                for p, shape, chunk in zip(comes[s], shapes, chunks, strict=True):
                    dt.local(p).copy_(chunk.view(shape))

    def _exchange(
        self, out: list[list[Tensor]], want: list[int], dtype: Any, dev: Any, traffic: Traffic
    ) -> list[Tensor]:
        """One ``all_to_all``: ``out[d]`` to rank ``d``, ``want[s]`` elements from rank ``s``;
        what came from each rank."""
        import torch.distributed as dist

        send = torch.cat([t for ts in out for t in ts]) if any(out) else torch.empty(0)
        recv = torch.empty(sum(want), dtype=dtype, device=dev)
        sizes = [sum(t.numel() for t in ts) for ts in out]
        dist.all_to_all_single(
            recv, send.to(dtype=dtype, device=dev), want, sizes, group=self.group
        )
        traffic.received += (sum(want) - want[self.me]) * recv.element_size()
        return list(recv.split(want))


class ShardedPath:
    """How an optimizer steps its param groups of DTensors (:meth:`view`), the owners of its
    tensors where a chain steps by owners, and what its steps received (:attr:`traffic`).
    A cache of the optimizer (rebuilt after a copy)."""

    def __init__(self) -> None:
        self.owners: Owners | None = None
        self.traffic = Traffic()

    def view(self, opt: Any, gi: int, params: list[Tensor], grads: list[Tensor]) -> ShardedGroup:
        """The tensors a step of ``opt``'s param group ``gi`` of DTensor ``params`` runs on
        (see the module notes). Raises, in one line, on what it cannot step: a group that
        mixes DTensors and plain tensors, a plain gradient of a DTensor parameter, a
        differentiable step, blockwise low-bit state on shards."""
        owner = type(opt).__name__
        if opt.differentiable:
            raise ValueError(
                f"{owner}(differentiable=True) does not step DTensor parameters (param group {gi})"
            )
        fmt = opt.state_dtype
        if fmt is not None and fmt.blockwise and opt.rule.shard_local:
            raise ValueError(
                f"{owner}: state_dtype={fmt.name!r} stores blocks of consecutive elements, which "
                "the shards of DTensor parameters would cut otherwise than the whole tensors' "
                f"(param group {gi}); use state_dtype='bfloat16' or None with sharded parameters"
            )
        for j, (p, g) in enumerate(zip(params, grads, strict=True)):
            if not dt.is_dtensor(p):
                raise ValueError(
                    f"{owner}: param group {gi} mixes DTensor and {type(p).__name__} parameters "
                    f"(parameter {j}); put sharded and unsharded parameters in separate groups"
                )
            if not dt.is_dtensor(g):
                raise ValueError(
                    f"{owner}: parameter {j} of param group {gi} is a DTensor but its gradient is "
                    f"a {type(g).__name__}; a sharded parameter needs a DTensor gradient"
                )
        if opt.rule.shard_local:
            grads = [dt.placed_as(g, p) for p, g in zip(params, grads, strict=True)]
            lp = Shards([dt.local(p) for p in params], list(params))
            lg = Shards([dt.local(g) for g in grads], grads)
            return ShardedGroup(list(params), lp, lg, list(grads), "shards")
        why = self._why_not_owners(opt)
        if not why:
            grads = [dt.placed_as(g, p) for p, g in zip(params, grads, strict=True)]
            mine, full_p, full_g = self.owners.collect(params, grads, self.traffic)  # type: ignore[union-attr]
            for p in params:  # an entry for each (empty where another rank steps it): every
                if p not in opt.state:  # rank has state, as torch's checkpoint helpers expect
                    opt.state[p] = {}
            self.traffic.steps += 1
            self.traffic.stepped += sum(t.numel() for t in full_p)
            originals = [params[i] for i in mine]
            return ShardedGroup(originals, full_p, full_g, list(grads), "owners", self.owners,
                                list(params), mine, self.traffic)  # fmt: skip
        if why != "asked":  # what it costs, said once per optimizer class and reason
            once(
                ("gathered", owner, why),
                f"descentlab: {owner} steps DTensor parameters gathered ({why}): every rank "
                "all-gathers each parameter and gradient at every step, steps them all and "
                "keeps replicated state",
                stacklevel=caller_stacklevel(),
            )
        full_p = [p.full_tensor() for p in params]
        full_g = [g.full_tensor() for g in grads]
        self.traffic.received += sum(
            (t.numel() - dt.local(t).numel()) * t.element_size() for t in (*params, *grads)
        )
        self.traffic.steps += 1
        return ShardedGroup(list(params), full_p, full_g, list(grads), "gather")

    def _why_not_owners(self, opt: Any) -> str:
        """ "" where ``opt``'s tensors step by owners, else why they are gathered."""
        if opt.sharding == "gather":
            return "asked"
        if not opt.rule.tensorwise:
            return "its chain reduces over the group"
        if opt.monitor is not None:
            return "a monitor reads every tensor's update"
        mine = [p for g in opt.param_groups for p in g["params"] if dt.is_dtensor(p)]
        if self.owners is None or not self.owners.fits(mine):
            made = Owners.of(mine, self.owners)
            if isinstance(made, str):
                return made
            self.owners = made
        return ""


class SteadyShards:
    """The local tensors of a param group of DTensors stepped on its shards, for the
    optimizer's steady step (:mod:`descentlab.optim.fusedpath`): each step the parameters',
    gradients' and state's local tensors are read off their DTensors (an attribute each; the
    steady step then checks their addresses against the kernel's last launch, as an
    unsharded group's). A gradient is taken as it is where its placements and mesh are its
    parameter's: FSDP2's new gradient DTensor at every step shares its parameter's spec (one
    identity test), another is compared once; any other placement (a ``Partial`` gradient, which
    must be reduced first) sends the step down the general path. No gradient is kept after
    its step (one freed by ``zero_grad()`` is freed)."""

    __slots__ = ("cols", "seen", "specs", "whole")

    def __init__(self, params: list[Any], whole: bool = True) -> None:
        #: each parameter's DTensor spec, and the last gradient spec found placed alike
        self.specs = [dt.spec(p) for p in params]
        self.seen = list(self.specs)
        #: the state columns last read (their DTensors, flat) and their local tensors: the
        #: same DTensors have the same local tensors (one identity test each)
        self.cols: tuple[list, list[list]] = ([], [])
        #: the local tensors travel as :class:`Shards` (a prepare reduces over them)
        self.whole = whole

    def local(
        self, params: list[Any], grads: list[Any], cols: list[list]
    ) -> tuple[list[Tensor], list[Tensor], list[list]] | None:
        """The local tensors of ``params``, their ``grads`` and the state columns ``cols``,
        or None where a gradient is missing, not a DTensor, or placed otherwise than its
        parameter."""
        try:
            specs = list(map(dt.spec, grads))
        except AttributeError:  # None, or a plain tensor
            return None
        seen = self.seen
        if not all(map(is_, specs, seen)):
            for i, s in enumerate(specs):
                if s is not seen[i]:
                    if not dt.same_spec(s, self.specs[i]):
                        return None
                    seen[i] = s
        local_g = list(map(dt.local, grads))
        local_p = list(map(dt.local, params))
        if self.whole:
            local_g, local_p = Shards(local_g, grads), Shards(local_p, params)
        flat = [v for c in cols for v in c]
        known, local_cols = self.cols
        if len(flat) != len(known) or not all(map(is_, flat, known)):
            kind = dt.DTensor
            local_cols = [[dt.local(v) if type(v) is kind else v for v in c] for c in cols]
            self.cols = (flat, local_cols)
        return local_p, local_g, local_cols
