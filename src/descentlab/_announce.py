"""Saying a thing once: the one place descentlab remembers what it has told the user.

A fallback, a caveat or a choice is a warning that starts with ``descentlab:``. It is said
once per key: once per process by :data:`PROCESS` (:func:`once`), or once per object by an
:class:`Once` that object owns (an optimizer's fused path says each of its own fallbacks once).
The worker processes of one command share what they said through a folder of marks
(:func:`announcement_dir`, :func:`share_across`), so that a fallback every worker meets is
shown once, not once per worker.

Example:
    >>> import warnings
    >>> said = Once()
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     said(("demo", 1), "descentlab: shown once")
    ...     said(("demo", 1), "descentlab: shown once")
    True
    False
    >>> len(caught)
    1
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import shutil
import threading
import warnings
from collections.abc import Hashable, Iterator

from descentlab._osutil import owned_tempdir, temporary_folder

__all__ = [
    "PROCESS",
    "Once",
    "announcement_dir",
    "forget",
    "once",
    "said",
    "share_across",
    "shared_by_one_command",
    "sharing",
]


class Once:
    """Keys already said, and the saying: ``once(key, message)`` warns the first time only."""

    def __init__(self) -> None:
        self._said: set[Hashable] = set()
        self._lock = threading.Lock()

    def __call__(
        self,
        key: Hashable,
        message: str,
        category: type[Warning] = RuntimeWarning,
        stacklevel: int = 2,
    ) -> bool:
        """Warn ``message`` unless ``key`` was said; whether it was said now. ``stacklevel`` is
        counted from the caller, as :func:`warnings.warn` counts it."""
        with self._lock:
            if key in self._said:
                return False
            self._said.add(key)
        warnings.warn(message, category, stacklevel=stacklevel + 1)
        return True

    def said(self, key: Hashable) -> bool:
        """Whether ``key`` was said."""
        return key in self._said

    def forget(self, topic: Hashable | None = None) -> None:
        """Forget every key (``topic`` None), or the keys ``topic`` or ``(topic, ...)``."""
        with self._lock:
            if topic is None:
                self._said.clear()
            else:
                self._said = {
                    k
                    for k in self._said
                    if k != topic and not (isinstance(k, tuple) and k[:1] == (topic,))
                }


#: what this process has said (keys are ``(topic, detail...)``)
PROCESS = Once()


def once(
    key: Hashable, message: str, category: type[Warning] = RuntimeWarning, stacklevel: int = 2
) -> bool:
    """Say ``message`` once per process for ``key`` (:data:`PROCESS`)."""
    return PROCESS(key, message, category, stacklevel + 1)


def said(key: Hashable) -> bool:
    """Whether this process said ``key``."""
    return PROCESS.said(key)


def forget(topic: Hashable | None = None) -> None:
    """Forget what this process said (of one topic, or all): the next time is said again."""
    PROCESS.forget(topic)


@functools.cache
def announcement_dir() -> str:
    """A folder of this process's workers' announcements (removed when it exits): a warning
    that starts with ``descentlab:`` is shown by the first worker that makes it and by no
    other. Each worker is its own interpreter with its own :data:`PROCESS`: without this, a
    fallback said once per process was printed once per worker (16 times in a comparison on a
    16-core machine)."""
    path = owned_tempdir("announced")
    atexit.register(shutil.rmtree, path, True)
    return path


def share_across(folder: str) -> None:
    """Show each ``descentlab:`` warning of this process only if no process sharing
    ``folder`` showed it before (a file named by the message's hash, made exclusively); other
    warnings are shown as before."""
    shown = warnings.showwarning
    if getattr(shown, "shared_folder", None) == folder:
        return  # (already: a second hook would find the first one's mark and say nothing)

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text.startswith("descentlab:"):
            mark = os.path.join(folder, hashlib.sha256(text.encode()).hexdigest()[:32])
            try:
                os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return  # another worker of the same command said it
            except OSError:
                pass  # the folder is gone (the parent is exiting): say it
        shown(message, category, filename, lineno, file, line)

    showwarning.shared_folder = folder  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def sharing() -> str | None:
    """The folder through which this process shares what it says (:func:`share_across`), or
    None."""
    return getattr(warnings.showwarning, "shared_folder", None)


@contextlib.contextmanager
def shared_by_one_command() -> Iterator[str]:
    """A fresh folder shared while open (:func:`shared_across`), by this process and the
    workers it starts (:func:`sharing` names it): one command's notes are said once, and the
    next command in this process (a second ``compare()``) says them again."""
    with temporary_folder("announced") as folder, shared_across(folder):
        yield folder


@contextlib.contextmanager
def shared_across(folder: str) -> Iterator[None]:
    """:func:`share_across` in this process while open (a launcher whose processes share
    ``folder``: what it said, they do not say again)."""
    shown = warnings.showwarning
    share_across(folder)
    try:
        yield
    finally:
        warnings.showwarning = shown
