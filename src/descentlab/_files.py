"""Writing files: the one place a file is put in place, and what a failed command takes back.

Every file descentlab writes goes through :func:`atomic_path` (or :func:`write_atomic`): a
temporary file in the destination's folder, ``fsync``-ed, then renamed over the destination,
which :func:`check_target` requires to be a regular file or nothing (never a link).
:func:`track_created`, :func:`note_created` and :func:`remove_created` take back what a command
that ran out of space created. Why, and what a user sees: docs/files-and-faults.md. Only the
standard library is imported here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "NoSpaceError",
    "atomic_path",
    "check_out_dir",
    "check_target",
    "make_dirs",
    "note_created",
    "out_of_space",
    "remove_created",
    "track_created",
    "write_atomic",
]

#: errno values that mean "no room for this file": a full disk, a quota, a file size limit.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_created: list[str] | None = None  # None: not tracking


class NoSpaceError(OSError):
    """A file could not be written for lack of space; ``filename`` names it."""


def shown(path: str | os.PathLike[str]) -> str:
    """A path as the console prints it: relative to the working folder where it lies inside it
    (``runs/NAME/report.html``), else whole."""
    here, full = Path.cwd(), Path(path).absolute()
    return os.path.relpath(full, here) if full.is_relative_to(here) else str(full)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_target(path: str | os.PathLike[str], *, follow_links: bool = False) -> None:
    """Refuse to write over ``path`` unless it is a regular file or does not exist.

    With ``follow_links`` (a file that is opened and changed in place, like a store, not
    replaced), a link to a regular file is accepted and what it points to is checked.

    Raises:
        ValueError: ``path`` is a folder, a device, a FIFO, a socket or a symbolic link
            (see the module's note on links); the message names it.

    Example:
        >>> check_target("/dev/null")
        Traceback (most recent call last):
        ...
        ValueError: cannot write /dev/null: it is a device, not a regular file (descentlab \
replaces only regular files)
    """
    p = os.fspath(path)
    try:
        st = os.stat(p) if follow_links else os.lstat(p)
    except FileNotFoundError:
        return
    except OSError:
        return  # a name too long, a folder that cannot be searched: writing says why
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(p)
        except OSError:
            target = "?"
        raise ValueError(
            f"cannot write {p}: it is a symbolic link (to {target}); descentlab does not "
            "write through links -- give the file's own path"
        )
    raise ValueError(
        f"cannot write {p}: it is {_kind(st.st_mode)}, not a regular file (descentlab "
        "replaces only regular files)"
    )


def make_dirs(folder: str | os.PathLike[str], mode: int = 0o777) -> list[str]:
    """Create ``folder`` and its missing parents (``mode``, less the umask); the folders made,
    outermost first (each also recorded by :func:`note_created`).

    Raises:
        NotADirectoryError: ``folder`` or a parent exists and is not a folder.
    """
    missing = []
    p = os.path.abspath(os.fspath(folder))
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    made = []
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not os.path.isdir(d):
                raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", d) from None
            continue
        made.append(d)
        note_created(d)
    return made


def _no_space(exc: OSError, path: str) -> NoSpaceError:
    reason = "no space left on device" if exc.errno == errno.ENOSPC else exc.strerror
    if exc.errno == errno.EFBIG:
        limit = _file_size_limit()
        if limit is not None:
            reason = (
                f"file too large: this process may not write files over {limit} bytes (its "
                "file size limit, ulimit -f)"
            )
    return NoSpaceError(exc.errno, reason or "no space left on device", path)


def _file_size_limit() -> int | None:
    """This process's file size limit (``RLIMIT_FSIZE``), or None: none is set."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, private: bool = False, durable: bool = True
) -> Iterator[str]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` on success.

    The destination is checked (:func:`check_target`) before anything is written and again
    just before the rename. Missing folders above it are created (``0700`` if ``private``).
    On any failure the temporary file, and the folders made for it, are removed; a failure
    for lack of space is raised as :class:`NoSpaceError` naming ``path``.

    Args:
        path: the destination.
        private: the file is made ``0600`` (its folders ``0700``); else ``0666`` less umask.
        durable: ``fsync`` the file before the rename and the folder after it.

    Example:
        >>> import os, tempfile
        >>> out = os.path.join(tempfile.mkdtemp(), "a", "b.txt")
        >>> with atomic_path(out) as tmp:
        ...     _ = open(tmp, "w").write("hello")
        >>> open(out).read()
        'hello'
    """
    dest = os.fspath(path)
    check_target(dest)
    folder = os.path.dirname(os.path.abspath(dest))
    made = make_dirs(folder, 0o700 if private else 0o777)
    existed = os.path.lexists(dest)
    tmp = None
    try:
        # the destination's extension last: writers that pick a format by it (Pillow) still can
        name = os.path.basename(dest)
        ext = os.path.splitext(name)[1][:16]
        fd, tmp = tempfile.mkstemp(prefix=f".{name[:64]}.", suffix=f".tmp{ext}", dir=folder)
        os.close(fd)
        if not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide a report from others
        yield tmp
        if durable:
            _fsync(tmp)
        check_target(dest)
        os.replace(tmp, dest)
        tmp = None
        if not existed:
            note_created(dest)
        if durable:
            _fsync_dir(folder)
    except OSError as exc:
        _undo(tmp, made)
        if exc.errno in NO_SPACE_ERRNOS:
            raise _no_space(exc, dest) from exc
        raise
    except BaseException:
        _undo(tmp, made)
        raise


def _undo(tmp: str | None, made: list[str]) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    for d in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    # A rename is durable only once the directory entry is on disk (POSIX; no-op elsewhere).
    with contextlib.suppress(OSError):
        _fsync(folder)


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str | Callable[[IO[bytes]], Any],
    *,
    private: bool = False,
    durable: bool = True,
) -> str:
    """Write ``data`` (bytes, text as UTF-8, or a function writing to a binary file) to
    ``path`` through :func:`atomic_path`; returns the path."""
    with atomic_path(path, private=private, durable=durable) as tmp, open(tmp, "wb") as fh:
        if callable(data):
            data(fh)
        else:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return os.fspath(path)


# ------------------------------------------------------------------------------------------
# what a command created, taken back when it fails for lack of space


@contextlib.contextmanager
def track_created() -> Iterator[list[str]]:
    """Record, while open, the files and folders the writers create (see
    :func:`note_created`); yields the list. Not re-entrant: an inner call shares the list."""
    global _created
    if _created is not None:
        yield _created
        return
    _created = []
    try:
        yield _created
    finally:
        _created = None


def note_created(path: str | os.PathLike[str]) -> None:
    """Record that this process created ``path`` (a no-op outside :func:`track_created`)."""
    if _created is not None:
        _created.append(os.path.abspath(os.fspath(path)))


def remove_created(keep: Callable[[str], dict[str, int]] | None = None) -> list[str]:
    """Delete what was recorded since :func:`track_created` opened, newest first; returns what
    was deleted, never a path ``keep`` says holds finished work (``{store: finished runs}``,
    e.g. :func:`descentlab.store.finished_under`). A folder this process created goes with
    what is in it: only the command wrote there, in this process or in its worker processes
    (a lecture's experiments write their results from workers, which record nothing here)."""
    removed: list[str] = []
    if _created is None:
        return removed
    kept: dict[str, int] = {}
    for p in reversed(_created):
        finished = keep(p) if keep is not None else {}
        if finished:  # finished work is never taken back: the store, its folders, its WAL
            kept.update(finished)
            continue
        with contextlib.suppress(OSError):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)  # (links inside are removed, never followed)
            else:
                os.unlink(p)
            removed.append(p)
    _created.clear()
    for store, n in kept.items():
        warnings.warn(
            f"descentlab: {store} holds {n} finished run(s): kept, with its folder "
            "(run the same command again to continue)",
            RuntimeWarning,
            stacklevel=2,
        )
    return removed


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says a file could not be written
    for lack of space."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS:
            return True
        if getattr(e, "sqlite_errorname", "") == "SQLITE_FULL":  # sqlite3.Error
            return True
        if getattr(e, "no_space", False):
            return True
        e = e.__cause__ or e.__context__
    return False


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    p = path.absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def check_out_dir(path: str | os.PathLike[str], flag: str, *, what: str = "a folder") -> Path:
    """Check that ``path`` is, or can be created as, a folder this process can write to.

    Only the nearest existing folder is tried (an unnamed temporary file is made and removed
    there, which also catches file systems that refuse even root); nothing is created.

    Args:
        path: the folder (or, with ``what``, a file to be created there).
        flag: the option's name, for the message.
        what: what ``path`` must be, for the message.

    Raises:
        ValueError: ``path`` (or a parent) is a file, or the folder cannot be written; the
            message names ``flag`` and the path.

    Example:
        >>> import tempfile
        >>> check_out_dir(tempfile.gettempdir(), "--out").is_dir()
        True
    """
    p = Path(path)
    if str(path) == "":
        raise ValueError(f"{flag} must be {what}, got an empty path")
    here = _first_existing(p)
    if not here.is_dir():
        where = "is a file" if here == p.absolute() else f"is under {here}, which is a file"
        raise ValueError(f"{flag} must be {what}, but {path} {where}")
    try:
        tempfile.TemporaryFile(dir=here).close()
    except OSError as exc:
        where = "" if here == p.absolute() else f" (in {here})"
        reason = exc.strerror or str(exc)
        raise ValueError(f"{flag}: cannot write to {path}{where}: {reason}") from None
    return p
