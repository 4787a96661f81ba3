"""How user code (a problem's function, model factory, loss or dataset) fails, for a message."""

from __future__ import annotations

__all__ = ["USER_CODE_ERRORS", "failure"]

#: What user code (a problem file, its function, model factory, model or loss) may raise and a
#: problem reports as its failure: any error, and ``sys.exit()`` (``SystemExit``), which would
#: otherwise end the whole command with the user's exit code and no message. Ctrl-C
#: (``KeyboardInterrupt``) still stops the command.
USER_CODE_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


def failure(exc: BaseException) -> str:
    """How user code failed, for a message: ``"ValueError: bad"``, ``"it called sys.exit(3)"``.

    Example:
        >>> failure(SystemExit(3)), failure(KeyError("x"))
        ('it called sys.exit(3)', "KeyError: 'x'")
    """
    if isinstance(exc, SystemExit):
        return (
            f"it called sys.exit({exc.code!r})" if exc.code is not None else "it called sys.exit()"
        )
    return f"{type(exc).__name__}: {exc}"
