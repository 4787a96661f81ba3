"""What a group's compiled step owns whatever backend runs it (the fused C kernel,
:class:`~descentlab.optim.fused.FusedPlan`; the Triton kernel, :class:`~descentlab.optim.gpu.
TritonPlan`), and the one protocol of its step: :meth:`KernelPlan.run` steps a group or raises
:class:`Refused` before anything changes, :meth:`KernelPlan.refuse_state` checks the state there
is before any group moves; the optimizer's fused path
(:class:`~descentlab.optim.fusedpath.FusedPath`) chooses the plan, decides what a refusal
becomes (``fused=None``: the eager step, said once; ``fused=True``: the error) and restores
the step count. A plan is made from the chain's collected program
(:class:`~descentlab.optim.program.ChainProgram`): the table of its coefficients (each a
:class:`~descentlab.optim.program.Coefficient`), the prepares (which run at every step, which
make the state the kernel reads, which per-tensor numbers they need), the state the kernel
reads in pointer order, the storage the last launch was checked against, and the steady step's
part of it: whether a group may take it, the pointers where nothing but the gradients moved,
and the work before its launch. A backend's plan adds its kernel, its checks of tensors and
its launch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from .base import ADDRESSABLE_TYPES, GroupStep, Numbers, grad_pointers
from .program import ChainProgram

__all__ = ["KernelPlan", "LaunchFailed", "Refused"]


class Refused(ValueError):
    """What a kernel cannot step, named, raised before anything changes. ``eager``: the eager
    backend steps it (a tensor the kernel cannot address: ``fused=None`` then runs the group
    eagerly, said once); False: nothing steps it (state of another dtype, size or device than
    its parameter's: refused whatever ``fused`` asks)."""

    def __init__(self, why: str, *, eager: bool = True) -> None:
        super().__init__(why)
        self.eager = eager


class LaunchFailed(RuntimeError):
    """A kernel's launch failed, the kernel not run (a cached kernel image this device cannot
    run, an error the device reports at the launch)."""


class KernelPlan(ABC):
    """The backend-neutral part of a group's compiled step (see the module's docstring), made
    from a chain's collected program."""

    #: the step changes state before its own check of it (a prefix's torch ops, a prepare):
    #: the state is checked in the step's first phase
    moves_first = False
    #: what the step runs otherwise than in the kernel, said once ("": nothing)
    notice = ""
    #: the step reads and may replace every state entry (a prefix's rules' own): else it
    #: reads :attr:`state_keys` and the step counts, and makes only :attr:`fills`
    whole_state = False
    #: the parameters of the last launch's storage are not all contiguous (each gradient is
    #: read laid out as its parameter)
    strided = False
    #: :meth:`refuse_state` costs little at every step (its answer kept per storage): it runs
    #: in the first phase of each later group's step whatever ``fused`` asks, so that state
    #: nothing steps is refused before any group moves
    checks_cheaply = False
    #: the steady step may launch this plan with other groups' plans of the same kernel as
    #: one (a backend's ``merged(plans, hypers)`` makes that plan)
    merges = False

    def __init__(self, program: ChainProgram) -> None:
        self.state_arrays = list(program.state_arrays)
        self.coefs = list(program.coefs)
        prepares = program.prepares
        self.prepare_fns = [pr.fn for pr in prepares]
        #: the state entries the prepares make where missing (the optimizer stores them)
        self.fills = [k for pr in prepares for k in pr.how.get("fills", ())]
        needs = dict.fromkeys(k for pr in prepares for k in pr.how.get("needs", ()))
        #: the state entries a step reads: the kernel's arrays, in pointer order, then the
        #: per-tensor numbers the prepares need
        self.state_keys = [*self.state_arrays, *(k for k in needs if k not in self.state_arrays)]
        every_step = [pr for pr in prepares if not pr.how.get("steady")]
        made = {k for pr in every_step for k in pr.how.get("fills", ())}
        #: a step may skip the prepares that only make missing state: none a step must run
        #: makes an array the kernel reads (as the noise drawn before every step)
        self.steady_arrays = not made & set(self.state_arrays)
        #: work before the launch at every step: a prepare that does more than make missing
        #: state (NAdam's running product, ASGD's rates), or a coefficient of per-tensor numbers
        self.per_step = bool(every_step) or any(c.reads for c in self.coefs)
        self.per_tensor = any(c.per_tensor is not None for c in self.coefs)
        #: the addresses of the parameters, then of each state array's entries (0: an entry
        #: not there), as the last launch checked them: the steady step's test
        self.storage: list[int] = []

    # -- the step (each backend's) --------------------------------------------------------
    @abstractmethod
    def run(self, group: GroupStep, plain: bool = False) -> None:
        """One step of the group (``plain``: its ``hyper`` holds only Python values), or
        :class:`Refused` before anything changes."""

    @abstractmethod
    def refuse_state(self, gi: int, params: list[Tensor], sts: list[dict], real: bool) -> None:
        """Raise :class:`Refused` on the state there is (``sts``: the parameters' state dicts;
        ``real``: the parameters are complex ones' real views) that the kernel cannot read,
        changing nothing: the first phase of a step, before any group (param group ``gi``)
        moves. State still to be made passes."""

    # -- coefficients -------------------------------------------------------------------
    def coefficient_table(
        self,
        state: Mapping[str, list],
        steps: list[float],
        rows: list[int],
        rows_h: list[Mapping[str, Any]],
    ) -> tuple[list[float], list[int]]:
        """The coefficients' values in blocks (one per distinct step, rows and per-tensor
        numbers; ``rows[i]`` rows of ``len(coefs)`` values, at least one, each: a batched
        hyperparameter's ``rows_h``) and each tensor's block offset."""
        coefs = self.coefs
        n = len(rows)
        k = len(rows_h)
        columns: dict[Any, list] = {}  # each source of per-tensor extras read once
        varying = []  # (position, every tensor's extra) of the coefficients that have one
        for j, c in enumerate(coefs):
            if c.reads is None and c.per_tensor is None:
                continue
            source = c.reads if c.reads is not None else c.per_tensor
            col = columns.get(source)
            if col is None:
                col = columns[source] = (
                    Numbers(state[c.reads]).get() if c.reads is not None
                    else [c.per_tensor(state, i) for i in range(n)]  # type: ignore[misc]
                )  # fmt: skip
            varying.append((j, col))
        blocks: dict[Any, int] = {}
        values: list[float] = []
        coff = []
        one = (  # the common case: every tensor at one step, one row, the same extras
            n > 0
            and steps.count(steps[0]) == n
            and rows.count(rows[0]) == n
            and all(col.count(col[0]) == n for _, col in varying)
        )
        # the coefficients without extras, once per step and row: a tensor's own extras (a
        # per-tensor total) change only theirs
        plain: dict[tuple[float, int], list[float]] = {}
        for i in range(1 if one else n):
            own = tuple(col[i] for _, col in varying)
            sig = (steps[i], rows[i], own)
            off = blocks.get(sig)
            if off is None:
                off = len(values)
                blocks[sig] = off
                for r in range(rows[i]):
                    h = rows_h[r] if k > 1 else rows_h[0]
                    if not coefs:
                        values.append(0.0)
                        continue
                    base = plain.get((steps[i], r))
                    if base is None:
                        base = plain[(steps[i], r)] = [
                            0.0 if c.reads is not None or c.per_tensor is not None
                            else float(c.fn(h, steps[i], None)) for c in coefs
                        ]  # fmt: skip
                    row = list(base)
                    for (j, _), e in zip(varying, own, strict=True):
                        row[j] = float(coefs[j].fn(h, steps[i], e))
                    values += row
            coff.append(off)
        if one:
            coff *= n
        return values, coff

    # -- the steady step (descentlab.optim.fusedpath: nothing but the gradients moved) ---
    def steady_ok(self, params: list[Tensor]) -> bool:
        """Whether a group of ``params`` may take the steady step (:attr:`steady_arrays`; a
        backend may refuse more)."""
        return self.steady_arrays

    @abstractmethod
    def steady_pointers(
        self, params: list[Tensor], grads: list[Tensor], cols: list[list]
    ) -> Any | None:
        """The kernel's addresses (and :meth:`steady_work`), where only the gradients have
        moved since the last launch (``cols``: the columns of :attr:`state_keys`); else None.
        Nothing is changed."""

    @abstractmethod
    def launch(self, params: list[Tensor], ptrs: Any, hyper: Any, t: float | list[float]) -> None:
        """Run the kernel on :meth:`steady_pointers`' addresses, every tensor at step ``t``
        (or each at its own, a list)."""

    def kept_storage(self, params: list[Tensor], cols: list[list]) -> list[int] | None:
        """The addresses of the parameters and of the state arrays' entries (the first
        columns of ``cols``, of :attr:`state_keys`) where they are the storage the last launch
        checked, else None."""
        plain = ADDRESSABLE_TYPES  # a tensor subclass's pointer is never asked for
        try:  # None is no storage; a tensor without any (sparse) is not the kernel's
            static = [p.data_ptr() if type(p) in plain else 0 for p in params]
            for col in cols[: len(self.state_arrays)]:
                static += [x.data_ptr() if type(x) in plain else 0 for x in col]
        except (AttributeError, RuntimeError):
            return None
        return static if static == self.storage else None

    def steady_storage(
        self, params: list[Tensor], grads: list[Tensor], cols: list[list]
    ) -> tuple[list[int], list[int]] | None:
        """The addresses :meth:`kept_storage` finds unchanged and the gradients' pointers
        (``strided``: the parameters' layout read), else None: the steady step does not apply."""
        kept = self.kept_storage(params, cols)
        if kept is None:
            return None
        gp = grad_pointers(params, grads, self.strided)
        return None if gp is None else (kept, gp)

    def steady_work(self, cols: list[list], grads: list[Tensor]) -> Any:
        """What the steady launch needs for the work before it (None: nothing to do)."""
        return (cols, grads) if self.per_step else None

    def steady_coefficients(
        self, params: list[Tensor], work: Any, hyper: Any, t: float | list[float]
    ) -> tuple[list[float], array | None]:
        """The steady launch's coefficient values and each tensor's block offset (None: one
        block for every tensor), every tensor at step ``t`` (or each at its own: a list);
        where the chain has work at every step, its prepares run first, as the general step
        runs them, and the values are per tensor."""
        coefs = self.coefs
        if work is None and type(t) is not list:
            return [c.fn(hyper, t, None) for c in coefs] or [0.0], None
        if work is None:  # a block per step count (a skipped prepare's values read None)
            at: dict[float, int] = {}
            values: list[float] = []
            for s in t:  # type: ignore[union-attr]
                if s not in at:
                    at[s] = len(values)
                    values += [c.fn(hyper, s, None) for c in coefs] or [0.0]
            return values, array("q", [at[s] for s in t])  # type: ignore[union-attr]
        cols, grads = work
        state = dict(zip(self.state_keys, cols, strict=True))
        # this step's counts (no "step" entry: the counters move after the launch)
        steps = state["_step_values"] = t if type(t) is list else [float(t)] * len(params)
        for fn in self.prepare_fns:
            fn(state, params, grads, hyper)
        values, offsets = self.coefficient_table(state, steps, [1] * len(params), [hyper])
        return values, array("q", offsets)
