"""An optimizer's step inside ``torch.compile``: one opaque operator in the compiled graph.

When dynamo traces a function that calls ``opt.step()`` (PyTorch's compiled-optimizer
pattern, or a whole compiled training step), the step's Python -- per-group caches, the state
mapping that counts its mutations, the fused kernels called through raw pointers -- is not
something it can trace faithfully: traced, it loses the optimizer state. Instead the traced
step puts one call of the operator ``descentlab::optimizer_step`` into the graph, whose
schema declares that it reads the gradients and writes the parameters, so the
graph orders it after the backward pass and before any later use of the parameters. When the
graph runs, the operator runs the optimizer's own step (eager or fused backend, hooks and
checks included) on those tensors: the compiled step gives the eager step's iterates bit for
bit, ``fullgraph=True`` traces, and nothing about the step -- learning rates, step counts,
state -- is a guard of the graph (a scheduler changing ``lr`` recompiles nothing).

The optimizer state is the operator's own (as a C++ operator's buffers would be): the graph
never sees it. Closures are refused under ``torch.compile`` (a closure re-runs the model:
call ``opt.step(closure)`` outside the compiled function).
"""

from __future__ import annotations

import functools
import itertools
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor


class Optimizer(Protocol):
    """What a compiled graph's step reads and calls of its
    :class:`~descentlab.optim.Optimizer` (a protocol: that class imports this module, not this
    module it)."""

    param_groups: list[dict[str, Any]]
    _graph_params: list[Tensor]
    _graph_handle: int
    _lookahead: bool

    def _run_step(self) -> Any: ...


__all__ = [
    "closure_step",
    "handle",
    "in_compiled_region",
    "refuse_closure",
    "step_in_graph",
    "untraced",
]

#: the optimizers a compiled graph may call, by handle (an int the graph holds as a constant)
_LIVE: weakref.WeakValueDictionary[int, Optimizer] = weakref.WeakValueDictionary()
_NEXT = itertools.count(1)


def handle(opt: Optimizer, old: int | None = None) -> int:
    """A new handle for ``opt`` (each optimizer, copy or unpickled one gets its own; after
    ``load_state_dict`` a new one, so graphs compiled before recompile), ``old`` released."""
    if old is not None:
        _LIVE.pop(old, None)
    h = next(_NEXT)
    _LIVE[h] = opt
    return h


#: dynamo's frame callback: set (not None/False) while a compiled function runs, where the
#: frames it calls eagerly (after a graph break) are traced in turn
_frame_callback = torch._C._dynamo.eval_frame.get_eval_frame_callback


def in_compiled_region() -> bool:
    """Whether this eager code runs inside a compiled function (after a graph break): the
    frames it calls would be traced by dynamo."""
    return _frame_callback() not in (None, False)


def untraced(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run without dynamo tracing the frames it calls (only ever needed while dynamo
    runs, so importing it costs nothing more)."""
    import torch._dynamo

    return torch._dynamo.disable(fn, recursive=True)


def refuse_closure(opt: Any) -> None:
    raise RuntimeError(
        f"{type(opt).__name__}.step(closure) cannot run inside torch.compile (the closure "
        "re-evaluates the model): call opt.step(closure) outside the compiled function"
    )


def closure_step(missing: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``step(closure)`` that needs its closure: refused while dynamo traces (the closure
    re-evaluates the model), run eagerly and untraced after a graph break, and a
    ``ValueError(missing)`` without a closure."""

    def wrap(step: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(step)
        def guarded(opt: Any, closure: Any = None) -> Any:
            if torch.compiler.is_compiling():
                refuse_closure(opt)
            if in_compiled_region():
                return untraced(guarded)(opt, closure)
            if closure is None:
                raise ValueError(missing)
            return step(opt, closure)

        return guarded

    return wrap


#: the operator, defined by its schema: ``Tensor(a!)[] params`` says that it writes the
#: parameters. (Not by ``torch.library.custom_op``, whose Python autograd and version wrappers
#: cost time at every call: docs/kernel-runtime.md. The graph calls the operator under
#: ``no_grad``, and the step it runs bumps the versions of the tensors it writes, as every step
#: does: :func:`~descentlab.optim.base.written_in_place`.)
_LIB = torch.library.Library("descentlab", "DEF")
_LIB.define("optimizer_step(int handle, int[] index, Tensor(a!)[] params, Tensor[] grads) -> ()")


def _optimizer_step(
    handle: int, index: list[int], params: list[Tensor], grads: list[Tensor]
) -> None:
    """Run optimizer ``handle``'s step; ``params`` are its parameters number ``index`` (in
    param-group order) with the gradients ``grads``, every other parameter has none."""
    opt = _LIVE.get(handle)
    if opt is None:
        raise RuntimeError(
            f"descentlab: the optimizer of this compiled graph (handle {handle}) no longer exists"
        )
    everyone = opt._graph_params
    if any(i >= len(everyone) for i in index):
        raise RuntimeError(
            f"descentlab: {type(opt).__name__}'s parameters changed since this step was "
            "compiled; call torch._dynamo.reset()"
        )
    reals = [everyone[i] for i in index]
    # the graph passes the parameters themselves and their gradients, unless the compiler
    # chose copies, or the gradients changed inside the graph: then the step runs on the
    # parameters with the graph's gradients (every other parameter without one, as at the
    # trace), and the copies get the result
    copies = [(p, arg) for p, arg in zip(reals, params, strict=True) if arg is not p]
    swap = any(p.grad is not g for p, g in zip(reals, grads, strict=True)) or sum(
        p.grad is not None for p in everyone
    ) != len(reals)
    if copies:
        with torch.no_grad():
            for p, arg in copies:
                p.copy_(arg)
    saved = [(p, p.grad) for p in everyone] if swap else []
    try:
        if swap:
            for p in everyone:
                p.grad = None
            for p, g in zip(reals, grads, strict=True):
                p.grad = g
        opt._run_step()
    finally:
        for p, g in saved:
            p.grad = g
    if copies:
        with torch.no_grad():
            for p, arg in copies:
                arg.copy_(p)


_LIB.impl("optimizer_step", _optimizer_step, "CompositeExplicitAutograd")


@torch.library.register_fake("descentlab::optimizer_step", lib=_LIB)
def _(handle: int, index: list[int], params: list[Tensor], grads: list[Tensor]) -> None:
    return None


def step_in_graph(opt: Optimizer, closure: Callable[[], Any] | None) -> None:
    """The step as dynamo traces it: the parameters with gradients and one operator call.

    (Reads ``opt._graph_params``, not ``opt.param_groups``: dynamo guards on every value of
    the param groups it reads, so a learning rate changed by a scheduler would recompile.)"""
    if closure is not None or opt._lookahead:  # lookahead rules need one too
        refuse_closure(opt)
    index, params, grads = [], [], []
    for i, p in enumerate(opt._graph_params):
        if p.grad is not None:
            index.append(i)
            params.append(p)
            grads.append(p.grad)
    if params:
        with torch.no_grad():
            torch.ops.descentlab.optimizer_step(opt._graph_handle, index, params, grads)
