"""Generated kernels: the one place their source becomes loaded code (build, cache, verify,
load).

Every generated or shipped kernel of descentlab comes through here: the fused optimizer step
(:mod:`descentlab.optim.fused`), the whole-trajectory kernels
(:mod:`descentlab.problems.kernels`) and the vectorized MNIST-1D CNN
(:mod:`descentlab.engine.vcnn`) hand their C++ source to :func:`load` with a function that
binds the library's entry points; the GPU step's Triton kernels are Python source, kept by
:func:`load_module` in the same private folder and checked before each import. The cache,
its keys and sidecars, the bounded compile and the verified load: docs/files-and-faults.md.

Only the standard library is imported here."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

__all__ = [
    "COMPILE_TIMEOUT",
    "CompileAbandoned",
    "KernelUnavailable",
    "abandoned_when",
    "cache_dir",
    "compile_count",
    "compile_timeout",
    "compiler",
    "cpu_family",
    "cpu_vendor",
    "load",
    "load_library",
    "load_module",
    "target",
]

T = TypeVar("T")


class KernelUnavailable(RuntimeError):
    """A native kernel cannot be had here: no C++ compiler, the compiler failed, the cache
    folder is not private, or the library does not load."""

    #: what a compiler that failed printed (not shown: the message says why in one line)
    compiler_output: str = ""


class CompileAbandoned(BaseException):
    """A compile this thread abandoned (:func:`abandoned_when`): its compiler killed, its
    temporaries removed, nothing cached. Not an ``Exception``: no fallback takes it for a
    kernel that cannot be had."""


_abandon = threading.local()  # this thread's event that abandons a compile under way


@contextlib.contextmanager
def abandoned_when(event: threading.Event) -> Any:
    """Inside, a compile this thread runs is abandoned (:class:`CompileAbandoned`) as soon as
    ``event`` is set: a background thread's compile (the playground's warm-up) must not hold
    a program that is stopping."""
    before = getattr(_abandon, "event", None)
    _abandon.event = event
    try:
        yield
    finally:
        _abandon.event = before


# In the key and the sidecar: caches written by older formats are never looked at (they would
# otherwise each be rebuilt with a warning).
_VERSION = "descentlab-fused-3"
_CACHE_FORMAT = "verified-sidecar-1"

_FLAGS = [
    "-O3",
    "-march=native",
    "-fopenmp",
    "-fPIC",
    "-shared",
    "-ffp-contract=off",  # a * b + c stays two roundings unless the source says dl_fma()
    "-fno-math-errno",
    "-std=c++17",
    "-fno-exceptions",
    "-fno-rtti",
]

#: the instruction set the kernels are built for: this CPU's, or another's inside target()
_target: tuple[str, ...] = ("-march=native",)


def _flags() -> list[str]:
    return [f for flag in _FLAGS for f in (_target if flag == "-march=native" else (flag,))]


@contextlib.contextmanager
def target(*flags: str) -> Any:
    """Kernels built (or loaded) inside are built for ``flags`` in place of ``-march=native``:
    another CPU kind's instruction set (``-march=x86-64-v3``; ``-march=x86-64-v4``,
    ``-mprefer-vector-width=256``), so that what another CPU computes is tested on this one.
    The flags are part of each kernel's cache key. Kernels built for an instruction set this
    CPU lacks fail when they run (SIGILL): the suite leaves out those this CPU lacks.

    Example:
        >>> with target("-march=x86-64-v2"):
        ...     "-march=x86-64-v2" in _flags()
        True
    """
    global _target
    before = _target
    with _lock:
        _target = tuple(flags)
    try:
        yield
    finally:
        with _lock:
            _target = before


_lock = threading.Lock()
_libraries: dict[str, ctypes.CDLL] = {}  # key -> the loaded library
_bound: dict[tuple[str, Callable[..., Any]], Any] = {}  # (key, bind) -> bind(library)
_memfds: list[int] = []  # kept open: a loaded library's memory file
_compiles = 0
_swept: list[str] = []  # the cache folders swept by this process

#: seconds a compile may take (``$DESCENTLAB_COMPILE_TIMEOUT`` overrides it)
COMPILE_TIMEOUT = 600.0


def cache_dir() -> Path:
    """Where compiled kernels are kept (``$DESCENTLAB_CACHE/fused`` or
    ``$XDG_CACHE_HOME/descentlab/fused``, default ``~/.cache/descentlab/fused``)."""
    root = os.environ.get("DESCENTLAB_CACHE")
    if root:
        return Path(root) / "fused"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "descentlab" / "fused"


def compiler() -> str | None:
    """The C++ compiler kernels are built with (``$CXX``, else g++ or c++), or None."""
    return _find_compiler(os.environ.get("CXX"), os.environ.get("PATH"))


@functools.lru_cache(maxsize=8)
def _find_compiler(cxx: str | None, path: str | None) -> str | None:
    # cached: searching PATH costs ~0.2 ms, and the optimizer asks at every step
    if cxx and shutil.which(cxx, path=path):
        return shutil.which(cxx, path=path)
    for name in ("g++", "c++"):
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def compile_timeout() -> float:
    """Seconds a compile may take: ``$DESCENTLAB_COMPILE_TIMEOUT``, else
    :data:`COMPILE_TIMEOUT`.

    Raises:
        KernelUnavailable: the variable is not a positive number (named with its value).
    """
    text = os.environ.get("DESCENTLAB_COMPILE_TIMEOUT")
    if not text:
        return COMPILE_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise KernelUnavailable(
            f"DESCENTLAB_COMPILE_TIMEOUT must be a positive number of seconds, got {text!r}"
        )
    return value


def compile_count() -> int:
    """How many kernels this process has compiled (cache hits on disk do not count)."""
    return _compiles


@functools.lru_cache(maxsize=1)
def _cpu_tag() -> str:
    """Identifies the instruction set the cached binaries were built for (-march=native)."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        flags = platform.processor()
    return hashlib.sha256((platform.machine() + flags).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def cpu_vendor() -> str:
    """The CPU's maker as the kernel reports it (``GenuineIntel``, ``AuthenticAMD``), else
    Python's ``platform.processor()`` (often "" off Linux): generated kernels choose what the
    CPU's maker runs fastest (``DESCENTLAB_PREFETCH`` overrides the choice)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # no /proc (macOS, Windows): the platform's own word
        return platform.processor()
    return platform.processor()


@functools.lru_cache(maxsize=1)
def cpu_family() -> int:
    """The CPU's family as the kernel reports it (AMD's Zen 5: 26, Zen 4 and 3: 25), else 0
    (no /proc): with :func:`cpu_vendor`, what generated kernels choose by."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("cpu family"):
                    return int(line.split(":", 1)[1])
    except (OSError, ValueError):
        return 0
    return 0


def _command(cc: str, src: str, out: str) -> list[str]:
    return [cc, *_flags(), src, "-o", out, "-lm"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _key(source: str, cc: str) -> str:
    parts = [_VERSION, _CACHE_FORMAT, source, " ".join(_flags()), cc, _cpu_tag()]
    return _sha256("\0".join(parts).encode())[:32]


def _trusted_dir(directory: Path) -> None:
    """Create the cache folder ``0700`` (with any missing parents) and refuse one that another
    user could have written a library into."""
    from descentlab._osutil import check_private_dir, private_dir

    try:
        private_dir(directory)
        check_private_dir(directory)
    except OSError as exc:
        raise KernelUnavailable(f"the kernel cache cannot be used: {exc}") from None


def _verified_bytes(lib: Path, meta_path: Path, expect: Mapping[str, Any]) -> bytes | str:
    """The library's bytes if the entry matches ``expect`` (and its own recorded hash), else
    why not."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no sidecar (k_*.json) records its hash"
    except (OSError, ValueError) as exc:
        return f"unreadable sidecar ({exc})"
    if not isinstance(meta, dict):
        return "unreadable sidecar (not a JSON object)"
    for name, value in expect.items():
        if meta.get(name) != value:
            return f"its sidecar records another {name.replace('_', ' ')}"
    try:
        data = lib.read_bytes()
    except OSError as exc:
        return f"unreadable ({exc})"
    if _sha256(data) != meta.get("so_sha256"):
        return f"its bytes ({len(data)}) do not have the recorded SHA-256"
    return data


def _build(
    directory: Path, lib: Path, meta_path: Path, source: str, cc: str, meta: dict, what: str
) -> bytes:
    """Compile ``source`` into ``lib`` and write its sidecar; returns the library's bytes."""
    from descentlab._files import write_atomic

    global _compiles
    tmp = Path(tempfile.mkdtemp(prefix=f"build-{os.getpid()}-", dir=directory))
    try:
        src = tmp / "kernel.cpp"
        src.write_text(source, encoding="utf-8")
        out = tmp / "kernel.so"
        returncode, stderr = _compile(_command(cc, str(src), str(out)), what)
        if returncode != 0:
            error = KernelUnavailable(_compile_failure(what, cc, returncode, stderr, directory))
            error.compiler_output = stderr  # (the compiler's own words, kept off screen)
            raise error
        data = out.read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The library first, then its sidecar: a library whose sidecar is not (yet) its own fails
    # verification and is rebuilt, never loaded. Not fsync-ed: an entry that a crash leaves
    # damaged fails verification the same way.
    try:
        write_atomic(lib, data, private=True, durable=False)
        side = json.dumps({**meta, "so_sha256": _sha256(data)})
        write_atomic(meta_path, side, private=True, durable=False)
    except (OSError, ValueError) as exc:  # a full disk; a folder or link where the file goes
        raise KernelUnavailable(f"writing the {what} to the cache failed: {exc}") from None
    _compiles += 1
    return data


#: Linux: the compiler runs under this guard, which leads the compiler's session and ends it
#: (the compiler and whatever it started) when this process ends, even by ``kill -9``: the
#: kernel sends the guard SIGTERM then (``PR_SET_PDEATHSIG``)
_GUARD = """import ctypes, os, signal, subprocess, sys
signal.signal(signal.SIGTERM, lambda *a: os.killpg(0, signal.SIGKILL))
ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    os.killpg(0, signal.SIGKILL)
sys.exit(subprocess.call(sys.argv[2:]))
"""


def _compile(command: list[str], what: str) -> tuple[int, str]:
    """Run the compiler ``command``: ``(exit status, what it printed on stderr)``. It runs in
    its own session (a Ctrl-C at the terminal, meant for the program, does not kill it
    half-way: the program decides), for at most :func:`compile_timeout` seconds; past that, or
    when this process is interrupted or asked to stop (:func:`~descentlab._usercode.
    interruptible`), its whole session is killed, and on Linux also when this process dies
    (:data:`_GUARD`)."""
    from descentlab._usercode import interruptible

    limit = compile_timeout()
    abandon = getattr(_abandon, "event", None)
    if sys.platform.startswith("linux"):  # the guard: nothing outlives this process
        command = [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid()), *command]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + limit
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise KernelUnavailable(
                        f"compiling a {what} took longer than {limit:g} s "
                        "(DESCENTLAB_COMPILE_TIMEOUT); the compiler was stopped"
                    )
                if abandon is not None and abandon.is_set():
                    raise CompileAbandoned(what)
                with interruptible():
                    time.sleep(0.05)
        finally:
            if proc.poll() is None or proc.returncode < 0:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the compiler and what it started
                proc.wait()
        err.seek(0)
        return proc.returncode, err.read().decode("utf-8", errors="replace")


def _sweep(directory: Path) -> None:
    """Remove the build folders (``build-<pid>-*``) of processes that no longer run, once
    per process."""
    from descentlab._osutil import pid_alive

    if str(directory) in _swept:
        return
    _swept.append(str(directory))
    for folder in directory.glob("build-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def _clear_place(path: Path, what: str) -> None:
    """Make room for a rebuilt entry at ``path``: a link or an empty folder there is removed;
    any other thing that is not a file is named (:class:`KernelUnavailable`)."""
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        try:
            path.rmdir()
        except OSError:
            raise KernelUnavailable(
                f"the cached {what} {path} is a folder, not a file; remove it"
            ) from None


#: the compiler's or linker's words for "no room", and ours
_NO_ROOM = {
    "no space left on device": "no space left on device",
    "disk quota exceeded": "disk quota exceeded",
    "file too large": "file too large (a file size limit)",
}


def _compile_failure(what: str, cc: str, returncode: int, stderr: str, directory: Path) -> str:
    """One line in descentlab's words for a compiler that failed: its status and, where its
    output says the disk was full (the linker's "collect2: error" follows), that cause."""
    said = stderr.lower()
    cause = next((ours for theirs, ours in _NO_ROOM.items() if theirs in said), None)
    why = f"{cause} in the kernel cache {directory}" if cause else "DESCENTLAB_DEBUG=1 shows why"
    line = f"compiling a {what} failed ({Path(cc).name} exited with {returncode}: {why})"
    if os.environ.get("DESCENTLAB_DEBUG"):
        return f"{line}:\n{stderr[-2000:]}"
    return line


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than it is given), or
    raise ``OSError``."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(f"wrote {len(data) - len(view)} of {len(data)} bytes")
        view = view[n:]
    if os.fstat(fd).st_size != len(data):
        raise OSError(f"the memory file holds {os.fstat(fd).st_size} of {len(data)} bytes")


def _dlopen(data: bytes, lib: Path) -> ctypes.CDLL:
    """Load exactly ``data`` (verified bytes): from an anonymous memory file on Linux, written
    in full (a truncated library would be mapped, and fault at its first call), else from
    ``lib``."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        try:
            fd = os.memfd_create(lib.name, getattr(os, "MFD_CLOEXEC", 0))
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                _write_all(fd, data)
                handle = ctypes.CDLL(f"/proc/self/fd/{fd}")
            except OSError:  # e.g. memory files may not be mapped executable here
                os.close(fd)
            else:
                _memfds.append(fd)  # open for the life of the process: its name is never reused
                return handle
    # The folder is private and entries are only ever replaced by a rename, so the file just
    # verified is the file loaded.
    return ctypes.CDLL(str(lib))


def load_library(source: str, *, what: str = "kernel") -> tuple[str, ctypes.CDLL]:
    """``(key, library)``: the C++ ``source`` compiled into a shared library, from memory,
    the verified disk cache or the compiler (``key`` hashes the source, flags, compiler and
    CPU). ``what`` names the kernel in warnings and errors.

    Raises:
        KernelUnavailable: no C++ compiler, an untrusted cache folder, or compiling or
            loading failed.
    """
    cc = compiler()
    if cc is None:
        raise KernelUnavailable(
            f"building a {what} needs a C++ compiler (g++ or c++ on PATH, or $CXX); none was "
            "found -- install gcc"
        )
    key = _key(source, cc)
    with _lock:
        handle = _libraries.get(key)
        if handle is not None:
            return key, handle
        directory = cache_dir()
        _trusted_dir(directory)
        _sweep(directory)
        lib = directory / f"k_{key}.so"
        meta_path = lib.with_suffix(".json")
        expect = {
            "version": _VERSION,
            "source_sha256": _sha256(source.encode()),
            "command": _command(cc, "kernel.cpp", "kernel.so"),
            "cpu": _cpu_tag(),
        }
        data: bytes | str = "missing"
        if lib.exists() or meta_path.exists() or lib.is_symlink() or meta_path.is_symlink():
            data = _verified_bytes(lib, meta_path, expect)
            if isinstance(data, str):
                warnings.warn(
                    f"descentlab: the cached {what} {lib} failed verification ({data}); "
                    "rebuilding it",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if isinstance(data, str):
            _clear_place(lib, what)
            _clear_place(meta_path, f"{what}'s sidecar")
            data = _build(directory, lib, meta_path, source, cc, expect, what)
        try:
            handle = _dlopen(data, lib)
        except OSError as exc:  # verified bytes the loader still refuses (another machine?)
            raise KernelUnavailable(f"loading the {what} {lib} failed: {exc}") from None
        _libraries[key] = handle
        return key, handle


def load(source: str, bind: Callable[[ctypes.CDLL], T], *, what: str = "kernel") -> T:
    """``bind(library)`` for the library compiled from ``source`` (:func:`load_library`),
    bound once per process: ``bind`` sets the entry points' ``argtypes``/``restype`` and
    returns them. It is part of the memo's key, so pass a module-level function.

    Raises:
        KernelUnavailable: as :func:`load_library`.
    """
    key, lib = load_library(source, what=what)
    with _lock:
        entry = _bound.get((key, bind))
        if entry is None:
            entry = _bound[(key, bind)] = bind(lib)
        return entry


def load_module(source: str, name: str, *, what: str = "Triton kernel") -> ModuleType:
    """A fresh module executed from the Python ``source`` (a generated Triton kernel, whose
    jit reads its source from the module's file): the file ``m_<hash>.py`` in the private
    cache folder, written atomically where it is missing and checked to be ``source`` before
    the import (an entry that is not is rewritten, with one warning naming it). ``name`` names
    the module; each call executes it anew (the jit decorates as the environment says then).

    Raises:
        KernelUnavailable: an untrusted cache folder.
    """
    from descentlab._files import write_atomic

    data = source.encode()
    key = _sha256(b"module:" + data)[:24]
    with _lock:
        directory = cache_dir()
        _trusted_dir(directory)
        path = directory / f"m_{key}.py"
        try:
            held = path.read_bytes()
        except FileNotFoundError:
            held = None
        if held != data:
            if held is not None:
                warnings.warn(
                    f"descentlab: the cached {what} {path} is not its source; rewriting it",
                    RuntimeWarning,
                    stacklevel=2,
                )
            write_atomic(path, data, private=True)
        # the folder is private and checked: no other user can change the file after this
        spec = importlib.util.spec_from_file_location(f"descentlab_{name}_{key}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # Triton's jit looks its module up by name
        spec.loader.exec_module(module)
        return module
