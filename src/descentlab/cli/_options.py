"""Parsing and checking of command-line values shared by the subcommands.

A value given as text (``--hyper K=V``, ``--set K=V``, ``--problem-option K=V``) is read by
:func:`parse_value`; an output folder or a store path is checked by :func:`check_out_dir` and
:func:`check_store_path` before any work starts, so that a bad path ends the command with one
line naming the option and the path, and nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from descentlab._files import _first_existing, check_out_dir
from descentlab._files import shown as shown  # (the commands print paths as the console does)

__all__ = [
    "add_backend_arguments",
    "add_command",
    "add_count",
    "add_engine_options",
    "add_rank_timeout",
    "add_switch",
    "check_backend_arguments",
    "check_out_dir",
    "check_store_path",
    "check_workers_and_threads",
    "checked_nproc",
    "checked_rank_timeout",
    "integer_limit",
    "number_or_word",
    "parse_names",
    "parse_pairs",
    "parse_schedule_arg",
    "parse_value",
    "plain_text",
    "print_json",
    "stdout_for_json",
]

_JSON: dict[str, Any] = {"out": None}


@contextlib.contextmanager
def stdout_for_json(wanted: bool, own_process: bool) -> Iterator[None]:
    """While open with ``wanted`` (``--json``), standard output holds the command's JSON
    alone (:func:`print_json`): whatever else is printed to it -- by user code, in this
    process or (``own_process``: at the file descriptor) in the processes it starts -- goes
    to standard error."""
    if not wanted:
        yield
        return
    sys.stdout.flush()
    real = sys.stdout
    saved = None
    if own_process:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            saved = os.dup(sys.stdout.fileno())
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
            real = os.fdopen(saved, "w", encoding=sys.stdout.encoding, errors="replace")
    _JSON["out"] = real
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _JSON["out"] = None
        if saved is not None:
            sys.stdout.flush()
            with contextlib.suppress(OSError):
                os.dup2(saved, sys.stdout.fileno())
            real.close()


def print_json(payload: Any, **dumps: Any) -> None:
    """Print ``payload`` as JSON on the command's standard output (see
    :func:`stdout_for_json`)."""
    out = _JSON["out"] or sys.stdout
    print(json.dumps(payload, **dumps), file=out, flush=True)


#: The largest count an integer option takes unless :data:`INTEGER_LIMITS` says otherwise:
#: steps, epochs, micro-batches, evaluations, batch sizes, trials (a billion steps of the
#: smallest model take days; more is a typing slip, which would otherwise run until killed).
MAX_COUNT = 10**9
#: Other upper bounds, by destination: seeds and run ids (train --resume, runs --show) 64 bits
INTEGER_LIMITS: dict[str, int] = {  # (torch's generators, SQLite's row ids); a port 16 bits
    "seed": 2**63 - 1,
    "split_seed": 2**63 - 1,
    "resume": 2**63 - 1,
    "show": 2**63 - 1,
    "port": 65_535,
}


def integer_limit(dest: str) -> int:
    """The largest value the integer option stored in ``dest`` takes (every subcommand's
    parser refuses more as it reads the option).

    Example:
        >>> integer_limit("accumulate"), integer_limit("port")
        (1000000000, 65535)
    """
    return INTEGER_LIMITS.get(dest, MAX_COUNT)


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int],
    help: str,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, run by ``func(args) -> exit code``; returns its parser.

    Its ``--help`` shows the docstring of ``func``'s module as plain text (its summary,
    examples and notes: the one place a subcommand is described).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> p = add_command(parser.add_subparsers(), "hello", lambda a: 0, help="h")
        >>> parser.parse_args(["hello"]).func(None)
        0
    """
    module = sys.modules[func.__module__]
    description = plain_text(inspect.getdoc(module) or "", vars(module))
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    p = subparsers.add_parser(name, help=help, description=description, **kwargs)
    p.set_defaults(func=func)
    return p


def add_switch(group: Any, *flags: str, **kwargs: Any) -> None:
    """Add the option ``flags``, on where given (``store_true``; ``kwargs``: its ``help``...)."""
    group.add_argument(*flags, action="store_true", **kwargs)


def add_count(group: Any, *flags: str, **kwargs: Any) -> None:
    """Add the option ``flags``, a whole number ``N`` (``kwargs``: its ``help``, ``default``...;
    the parser refuses more than :func:`integer_limit`)."""
    group.add_argument(*flags, type=int, metavar="N", **kwargs)


def add_rank_timeout(group: Any) -> None:
    """``--rank-timeout S`` (with ``--nproc``)."""
    group.add_argument(
        "--rank-timeout",
        type=float,
        metavar="S",
        help="with --nproc: how long a process waits for the others at a collective before "
        "the run ends, naming the one that hung (default 300 s, or $DESCENTLAB_RANK_TIMEOUT)",
    )


def add_backend_arguments(parser: Any, what: str) -> None:
    """Add ``--backend`` and ``--address`` (where ``what`` runs) to a parser or group."""
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help=f"where the {what} run: on this machine (default) or as Ray tasks",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="with --backend ray: the Ray cluster to join (e.g. HEAD:6379 or auto); "
        "default: start a local Ray instance on 127.0.0.1",
    )


def check_backend_arguments(args: argparse.Namespace) -> str:
    """The chosen backend, checked before any work (ValueError: one clear line)."""
    if args.address is not None and args.backend != "ray":
        raise ValueError(f"--address needs --backend ray, got --address {args.address!r}")
    from descentlab.experiments import runners

    if args.backend == "ray" and not runners.ray_available():
        raise ValueError("--backend ray needs Ray: pip install 'descentlab[ray]'")
    return args.backend


def checked_nproc(args: argparse.Namespace) -> int:
    """``--nproc`` checked on the device before any work (1 when not given)."""
    if args.nproc is None:
        return 1
    from descentlab.engine.launch import check_nproc

    return check_nproc(args.nproc, args.device or "cpu")


def checked_rank_timeout(args: argparse.Namespace, sharded: bool) -> float | None:
    """``--rank-timeout`` checked (None where not given); it needs ``--nproc`` above 1."""
    if args.rank_timeout is None:
        return None
    from descentlab.engine.ranks import check_rank_timeout

    value = check_rank_timeout(args.rank_timeout)
    if not sharded:
        raise ValueError("--rank-timeout goes with --nproc N (N > 1)")
    return value


def _word(text: str) -> str:
    """An option's text that may not be empty (``--precision ''`` is not ``auto``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_engine_options(group: Any) -> None:
    """``--precision``, ``--accumulate`` and ``--clip-grad-norm`` (RunConfig's engine
    options, checked by its own checks)."""
    group.add_argument(
        "--precision",
        type=_word,
        metavar="P",
        help="auto (default: bf16 autocast where the CPU has bf16 arithmetic, AVX512-BF16 or "
        "AMX, and the model at least 100,000 parameters; fp32 otherwise, and on CUDA), fp32, "
        "bf16 (autocast, CPU or CUDA; slower than fp32 on a CPU without bf16 arithmetic) or "
        "fp16 (autocast and a gradient scaler; CUDA only)",
    )
    group.add_argument(
        "--accumulate",
        type=int,
        metavar="K",
        help="micro-batches of --batch-size per optimizer step (gradient accumulation; 1)",
    )
    group.add_argument(
        "--clip-grad-norm",
        type=float,
        metavar="X",
        help="clip the gradients' global norm to X before each step (none)",
    )


def plain_text(doc: str, values: Mapping[str, Any] | None = None) -> str:
    """A docstring as terminal text: no reST roles or literal quotes, ``::`` as ``:``;
    ``:data:`NAME``` becomes the value of ``NAME`` in ``values`` (a module's namespace)
    where it holds one, so that a limit is printed as the number it is.

    Example:
        >>> plain_text("``descentlab x``: at most :data:`MAX` steps. Examples::")
        'descentlab x: at most MAX steps. Examples:'
        >>> plain_text("at most :data:`MAX` steps", {"MAX": 100_000})
        'at most 100,000 steps'
    """
    names = values or {}

    def value(m: re.Match[str]) -> str:
        v = names.get(m.group(1))
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else m.group(1)

    doc = re.sub(r":data:`~?([A-Za-z_]\w*)`", value, doc)
    doc = re.sub(r":\w+:`~?([^`]+)`", r"\1", doc)
    return doc.replace("``", "").replace("::", ":")


def number_or_word(
    convert: Callable[[str], Any], words: tuple[str, ...], rule: str
) -> Callable[[str], Any]:
    """An argparse ``type``: one of ``words`` (any case) gives ``words[0]``, other text
    ``convert(text)``; a value neither reads as is an ``ArgumentTypeError``: ``rule, got text``.

    Example:
        >>> batch = number_or_word(int, ("full", "none"), "batch size must be an integer or 'full'")
        >>> batch("32"), batch("None")
        (32, 'full')
        >>> batch("many")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: batch size must be an integer or 'full', got 'many'
    """

    def parse(text: str) -> Any:
        if text.lower() in words:
            return words[0]
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}") from None

    return parse


def parse_names(text: str, flag: str, what: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; ValueError naming ``flag`` when none is given.

    Example:
        >>> parse_names("seed001_parabola_lr, basins", "--only", "figure")
        ['seed001_parabola_lr', 'basins']
    """
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise ValueError(f"{flag} must name at least one {what}, got {text!r}")
    return names


def parse_value(text: str) -> Any:
    """A command-line value: JSON, else a Python literal, else the text itself.

    ``0.9,0.99`` and ``(0.9, 0.99)`` are the tuple ``(0.9, 0.99)``, as the optimizers take
    ``betas``; ``[1, 2]`` is a list; ``true``/``True`` are booleans; ``adam`` and
    ``cosine,step`` stay text.

    Example:
        >>> [parse_value(t) for t in ("0.1", "0.9,0.99", "(0.9, 0.99)", "[1, 2]", "true", "adam")]
        [0.1, (0.9, 0.99), (0.9, 0.99), [1, 2], True, 'adam']
    """
    text = text.strip()
    with contextlib.suppress(json.JSONDecodeError):
        return json.loads(text)
    with contextlib.suppress(ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = ast.literal_eval(text)
        # Numbers, text, booleans and containers of them; not complex numbers, sets or bytes.
        if isinstance(value, (int, float, str, tuple, list, dict)) or value is None:
            return value
    return text


def parse_pairs(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{"k": parse_value("v"), ...}``.

    Raises:
        ValueError: an item without ``=`` or without a key, or with an integer beyond 64 bits
            (no size, count or seed a problem, model or optimizer takes is larger), naming
            ``flag`` and the item.

    Example:
        >>> parse_pairs(["lr=0.1", "betas=0.9,0.99"], "--hyper")
        {'lr': 0.1, 'betas': (0.9, 0.99)}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} takes KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
        _check_integers(out[key.strip()], flag, item)
    return out


def parse_schedule_arg(text: str) -> tuple[str, str]:
    """Split a command-line schedule ``"[key=]spec"`` into ``(key, spec)``; key defaults to lr.

    Example:
        >>> parse_schedule_arg("cosine(T_max=100)")
        ('lr', 'cosine(T_max=100)')
        >>> parse_schedule_arg("betas[0]=linear(0.5, 1.0, 100)")
        ('betas[0]', 'linear(0.5, 1.0, 100)')
    """
    m = re.match(r"^\s*([A-Za-z_]\w*(?:\[\d+\])?)\s*=(.*)$", text)
    if m is None:
        return "lr", text.strip()
    return m.group(1), m.group(2).strip()


#: The largest integer an option's value (``--problem-option K=V``...) may hold.
MAX_OPTION_INT = 2**63 - 1


def _check_integers(value: Any, flag: str, item: str) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_OPTION_INT:
            raise ValueError(
                f"{flag} {item}: {v} is beyond the 64-bit integers (at most "
                f"{MAX_OPTION_INT:,}); no size, count or seed is that large"
            )


def check_store_path(path: str | os.PathLike[str], flag: str) -> Path:
    """Check that ``path`` is an existing file, or can be created as one; create nothing.

    Raises:
        ValueError: ``path`` is a folder, a parent is a file, or it cannot be written.
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{flag} must be a database file, but {path} is a folder")
    if p.exists():
        if not os.access(p, os.R_OK | os.W_OK):
            raise ValueError(f"{flag}: cannot read and write {path}: permission denied")
        return p
    here = _first_existing(p)
    if not here.is_dir():
        raise ValueError(
            f"{flag} must be a database file, but {path} is under {here}, which is a file"
        )
    check_out_dir(p.parent, flag)
    return p


#: memory a worker process holds once torch and the engine are imported (measured 0.24 GB
#: per worker: 12 workers, 2.86 GB), with room for a small trial
WORKER_MEMORY = 300 * 2**20


def check_workers_and_threads(workers: int | None, threads: int) -> None:
    """--workers: 1 to one per WORKER_MEMORY of the memory available now; --threads: 1 to
    the CPUs here (torch's thread pool takes no more, and refuses large numbers with an
    overflow)."""
    if workers is not None:
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else -1
        room = max(1, pages * os.sysconf("SC_PAGE_SIZE") // WORKER_MEMORY) if pages > 0 else None
        if room is not None and workers > room:
            raise ValueError(
                f"--workers must be at most {room} here (each worker process holds about "
                f"{WORKER_MEMORY // 2**20} MB; {room * WORKER_MEMORY / 2**30:.1f} GB are "
                f"available now), got {workers}"
            )
    cpus = os.cpu_count() or 1
    if not 1 <= threads <= cpus:
        raise ValueError(f"--threads must be between 1 and the {cpus} CPUs here, got {threads}")
