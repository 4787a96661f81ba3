"""How user code (a problem's function, model factory, loss or dataset) fails, for a message."""

from __future__ import annotations

from descentlab._usercode import describe, genuine_interrupt

__all__ = ["USER_CODE_ERRORS", "failure"]

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
