"""User code of a problem (its function, model factory, loss or dataset): how it is called from
the engine, and how it fails, for a message."""

from __future__ import annotations

from typing import Any

from descentlab._usercode import describe, genuine_interrupt

__all__ = ["USER_CODE_ERRORS", "failure", "stamp"]

#: What user code (a problem file, its function, model factory, model, loss or dataset) may
#: raise and a problem reports as its failure: anything -- an error, ``sys.exit()`` or
#: ``os._exit()`` (which would otherwise end the whole command with the user's exit code and no
#: message; see :mod:`descentlab._usercode`), a ``BaseException`` -- except a real Ctrl-C,
#: which still stops the command (:func:`failure` raises it again).
USER_CODE_ERRORS: tuple[type[BaseException], ...] = (BaseException,)


def failure(exc: BaseException) -> str:
    """How user code failed, for a message: ``"ValueError: bad"``, ``"it called sys.exit(3)"``
    (with the user's function and line where the traceback shows it). A ``KeyboardInterrupt``
    from Ctrl-C is raised again: it is no failure of the code.

    Example:
        >>> failure(SystemExit(3)), failure(KeyError("x"))
        ('it called sys.exit(3)', "KeyError: 'x'")
    """
    if genuine_interrupt(exc):
        raise exc
    return describe(exc)


def _describe(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class _Factory:
    """The problem's model factory or loss as the engine calls it; pickled through its problem
    (a problem loaded by reference pickles as the reference, so worker processes load it
    again rather than unpickling objects of a file that is not importable)."""

    def __init__(self, problem: Any, part: str) -> None:
        self.problem = problem
        self.part = part

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.problem, self.part)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{self.problem.name} {self.part}"


def stamp(problem: Any, seed: int, val_fraction: float, **meta: Any) -> dict[str, Any]:
    """What a problem's splits take from the problem, however its data are held (arrays or
    datasets): its name, its model factory and loss as the engine calls them, and its
    provenance (``meta``'s entries last)."""
    loss = problem.loss_name
    return {
        "name": problem.name,
        "default_model": _Factory(problem, "model"),
        "default_loss": loss if isinstance(loss, str) else _Factory(problem, "loss"),
        "meta": {
            **problem.meta,
            "problem": problem.name,
            "source": problem.source[0] if problem.source else None,
            "metric": problem.metric_name,
            "target": problem.target,
            "fingerprint": problem.fingerprint(),
            "seed": seed,
            "val_fraction": val_fraction,
            **meta,
        },
    }
