"""Runs and their metrics on disk, in one SQLite file.

A :class:`Store` keeps three tables:

- ``runs``: one row per training run -- a name, the run's configuration (canonical JSON), its
  status (``running``, ``completed``, ``diverged``, ``failed``, ``interrupted``), its
  provenance (package versions, git hash, seed, machine) and creation/update times;
- ``metrics``: ``(run_id, step, split, name, value)`` rows, e.g. ``(3, 500, "val", "loss",
  0.41)``;
- ``artifacts``: named files that belong to a run (its checkpoint, figures).

Guarantees:

- every write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a process killed in
  the middle of a write leaves the database as it was before that write;
- the database runs in WAL mode with a busy timeout, so several processes may read and write
  the same file at once (writers take turns; readers never block);
- nothing is silently overwritten: run ids are never reused (``AUTOINCREMENT``), a metric
  already recorded for ``(run, step, split, name)`` is an error (truncate explicitly with
  :meth:`Store.truncate_metrics` when resuming), an artifact name is taken once unless
  ``replace=True`` is asked for.

A store that cannot be used -- a folder, a file that is not a SQLite database or is damaged,
another program's database, a newer schema, a lock held past the timeout, an unwritable
place -- raises :class:`StoreError`, one line naming the file, from any method (never a bare
``sqlite3`` exception). A folder the store creates for its file is made ``0700``: the store
records each run's command line, host name and git commit.

SQLite cannot store NaN (it becomes NULL); :meth:`Store.metrics` turns NULL back into NaN, so a
diverged run's last loss reads back as ``nan``.

Example:
    >>> import tempfile, os
    >>> with Store(os.path.join(tempfile.mkdtemp(), "lab.sqlite")) as store:
    ...     run_id = store.create_run({"optimizer": "adam", "lr": 0.01}, name="demo", seed=0)
    ...     _ = store.log_metrics(run_id, [(0, "val", "loss", 2.3), (100, "val", "loss", 1.1)])
    ...     store.set_status(run_id, "completed")
    ...     store.metrics(run_id)["val/loss"].values.tolist()
    [2.3, 1.1]

References:
    SQLite write-ahead logging, https://www.sqlite.org/wal.html ;
    atomic commit in SQLite, https://www.sqlite.org/atomiccommit.html .
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self, runtime_checkable

import numpy as np

from descentlab import __version__
from descentlab._files import check_target, make_dirs, note_created, out_of_space
from descentlab.constraints import (
    NAME,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    ListOf,
    Options,
    check,
    invalid,
)

__all__ = [
    "DEFAULT_DB_NAME",
    "EXPORT_FILES",
    "STATUSES",
    "MetricSeries",
    "RunRecord",
    "RunWriter",
    "Store",
    "StoreError",
    "canonical_json",
    "finished_runs",
    "finished_under",
    "provenance",
    "refuse_writing",
    "store_identity",
    "store_path_of",
]

#: File name of the database inside a runs directory (``runs/descentlab.sqlite``).
DEFAULT_DB_NAME = "descentlab.sqlite"


#: The files a comparison exports beside its store
#: (:func:`descentlab.report.compare_export.write_exports`).
EXPORT_FILES: tuple[str, str] = ("trials.csv", "comparison.json")


def store_path_of(run_dir: str | os.PathLike[str]) -> Path:
    """The store file of a run directory.

    Example:
        >>> store_path_of("runs/demo").as_posix()
        'runs/demo/descentlab.sqlite'
    """
    return Path(run_dir) / DEFAULT_DB_NAME


#: The statuses a run may have.
STATUSES: tuple[str, ...] = ("running", "completed", "diverged", "failed", "interrupted")

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    status      TEXT NOT NULL,
    provenance  TEXT NOT NULL,
    seed        INTEGER,
    message     TEXT,
    summary     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_config_hash ON runs (config_hash);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_name ON runs (name);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    split  TEXT NOT NULL,
    name   TEXT NOT NULL,
    step   INTEGER NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, split, name, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    path       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
"""


def finished_runs(path: str | os.PathLike[str]) -> int:
    """How many runs the store at ``path`` holds completed or diverged (read-only; 0 where
    it is no store, or cannot be read)."""
    found = _read(path, "SELECT COUNT(*) FROM runs WHERE status IN ('completed', 'diverged')")
    return int(found or 0)


#: the files SQLite keeps beside a store
_STORE_SIDES = ("-wal", "-shm", "-journal")


def finished_under(path: str) -> dict[str, int]:
    """``{store: finished runs}`` of the stores at or under ``path`` (a store, the files
    SQLite keeps beside one, or a folder) that hold a completed or diverged run."""
    base = next((path[: -len(s)] for s in _STORE_SIDES if path.endswith(s)), path)
    if os.path.isdir(base) and not os.path.islink(base):
        stores = [os.path.join(d, DEFAULT_DB_NAME) for d, _, names in os.walk(base)
                  if DEFAULT_DB_NAME in names]  # fmt: skip
    else:
        stores = [base]
    counts = {s: finished_runs(s) for s in stores if os.path.isfile(s)}
    return {s: n for s, n in counts.items() if n}


def store_identity(path: str | os.PathLike[str]) -> str | None:
    """The identity the store at ``path`` was given when it was created (read-only; None
    where it has none, is no store or cannot be read): exports made from it name it, so a
    store emptied or replaced under them is told apart."""
    found = _read(path, "SELECT value FROM meta WHERE key = 'store_id'")
    return None if found is None else str(found)


def _read(path: str | os.PathLike[str], sql: str) -> Any:
    """The first value ``sql`` reads from the SQLite file ``path`` opened read-only, or
    None. Without a write-ahead log beside it the file is read as it is (``immutable``: no
    ``-wal`` or ``-shm`` file is created)."""
    with contextlib.suppress(sqlite3.Error, OSError):
        uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        if not Path(f"{path}-wal").exists():
            uri += "&immutable=1"
        conn = sqlite3.connect(uri, uri=True, timeout=1.0)
        try:
            row = conn.execute(sql).fetchone()
            return None if row is None else row[0]
        finally:
            conn.close()
    return None


def _checksum_file(path: Path) -> Path:
    """The checksum file a checkpoint at ``path`` has (``<path>.sha256``)."""
    return path.with_name(path.name + ".sha256")


class StoreError(ValueError):
    """The store file cannot be used (corrupted, not a descentlab store, locked, a folder,
    unwritable, no space left...). The message is one line naming the file."""

    #: the store could not be written for lack of space (see :func:`descentlab._files.out_of_space`)
    no_space: bool = False


def _explain(path: Path, exc: BaseException, timeout: float) -> str:
    """One line saying what is wrong with the store at ``path``."""
    msg = str(exc)
    low = msg.lower()
    limit = _size_limit(path, exc)
    if limit is not None:
        return (
            f"{path}: file too large: this process may not write files over {limit} bytes "
            f"(its file size limit, ulimit -f; SQLite: {msg})"
        )
    if _no_space(path, exc):
        return f"{path}: no space left on device (the store could not be written; SQLite: {msg})"
    if isinstance(exc, ValueError):  # JSON that does not parse
        return f"store {path} is corrupted: a stored record is not valid JSON ({msg})"
    if "not a database" in low:
        return (
            f"{path} is not a descentlab store: it is not a SQLite database or its header is "
            "damaged"
        )
    if "malformed" in low or "corrupt" in low:
        return (
            f"store {path} is corrupted (SQLite: {msg}); restore it from a backup or move it "
            "aside to start a new store"
        )
    if "locked" in low or "busy" in low:
        return (
            f"store {path} is locked by another process (waited {timeout:g} s); try again "
            "when that process has finished"
        )
    if "readonly" in low or "read-only" in low:
        return f"store {path} is read-only (check the file's and its folder's permissions)"
    if "unable to open" in low:
        return f"store {path} cannot be opened (is its folder writable?)"
    if "disk i/o" in low:
        return (
            f"store {path}: disk I/O error (its -wal or -shm file may be damaged or not a "
            "regular file)"
        )
    if "no such table" in low or "no such column" in low or "has no column" in low:
        return f"{path} is not a descentlab store (SQLite: {msg})"
    return f"store {path}: {type(exc).__name__}: {msg}"


@contextlib.contextmanager
def _guard_errors(store: Any) -> Iterator[None]:
    """SQLite's (and JSON's) exceptions raised as :class:`StoreError`."""
    try:
        yield
    except (sqlite3.Error, json.JSONDecodeError) as exc:
        error = StoreError(_explain(store.path, exc, store.timeout))
        error.no_space = _no_space(store.path, exc)
        raise error from None


def _guarded(method: Any) -> Any:
    """``method`` raising :class:`StoreError` instead of SQLite's (and JSON's) exceptions."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        with _guard_errors(self):
            return method(self, *args, **kwargs)

    return wrapper


def _size_limit(path: Path, exc: BaseException) -> int | None:
    """The file size limit (``RLIMIT_FSIZE``, ``ulimit -f``) that SQLite's write error most
    likely met -- a write past it fails with EFBIG, which SQLite reports as an I/O error or a
    full disk -- or None: no limit is set, the error is another, or the disk is full."""
    if not (out_of_space(exc) or "disk i/o" in str(exc).lower()):
        return None
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft == resource.RLIM_INFINITY or shutil.disk_usage(path.absolute().parent).free < 2**20:
            return None
    except (ImportError, OSError, ValueError):
        return None
    return int(soft)


def _no_space(path: Path, exc: BaseException) -> bool:
    """Whether SQLite's error means the store could not grow: SQLITE_FULL, or an I/O error
    (growing the ``-shm`` or ``-wal`` file) while less than 1 MiB is free there or a file size
    limit is set (:func:`_size_limit`)."""
    if out_of_space(exc) or _size_limit(path, exc) is not None:
        return True
    if not (isinstance(exc, sqlite3.Error) and "disk i/o" in str(exc).lower()):
        return False
    try:
        return shutil.disk_usage(path.absolute().parent).free < 2**20
    except OSError:
        return False


def _busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def canonical_json(obj: Any) -> str:
    """Serialize ``obj`` to canonical JSON: sorted keys, no spaces, no NaN/inf.

    Two equal configurations give the same text (and so the same hash), whatever the order
    their keys were written in.

    Args:
        obj: JSON-serializable data (dicts with string keys, lists, str, int, float, bool, None).

    Returns:
        The JSON text.

    Raises:
        ValueError: ``obj`` holds something JSON cannot represent.

    Example:
        >>> canonical_json({"b": 1, "a": [1.5, None]})
        '{"a":[1.5,null],"b":1}'
    """
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config must be JSON-serializable (finite numbers), got: {exc}") from exc


def _git_revision() -> dict[str, Any] | None:
    """The git commit of the checkout this package is imported from, if it is one (a copy of
    :func:`_git_revision_once`'s answer)."""
    found = _git_revision_once()
    return None if found is None else dict(found)


@functools.lru_cache(maxsize=1)
def _git_revision_once() -> dict[str, Any] | None:
    """Asked once per process: the code a process runs is the code it imported when it
    started, and the two git commands cost ~8 ms, which every recorded run paid."""
    here = str(Path(__file__).resolve().parent)
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=5, check=True)
    try:
        head = run(["git", "-C", here, "rev-parse", "HEAD"]).stdout.strip()
        # (no optional locks: a status that would refresh git's index does not write it)
        dirty = run(["git", "--no-optional-locks", "-C", here, "status", "--porcelain", "-uno"])
        dirty = dirty.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def provenance(seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """Describe where and with what a run was made.

    Args:
        seed: the run's seed, recorded alongside.
        **extra: more JSON-serializable entries to record.

    Returns:
        A dict with ``versions`` (python, torch, numpy, descentlab), ``git`` (commit and
        whether the working tree had uncommitted changes, asked once per process, or None
        outside a checkout),
        ``machine`` (platform, architecture, host name, CPU count, torch threads), ``seed``,
        ``argv`` and ``created``.

    Example:
        >>> sorted(provenance(seed=0))
        ['argv', 'created', 'git', 'machine', 'seed', 'versions']
    """
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "descentlab": __version__,
    }
    threads: int | None = None
    torch = sys.modules.get("torch")
    if torch is None:
        with contextlib.suppress(ImportError):
            import torch
    if torch is not None:
        versions["torch"] = torch.__version__
        threads = torch.get_num_threads()
    out: dict[str, Any] = {
        "versions": versions,
        "git": _git_revision(),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "hostname": socket.gethostname(),
            "cpu_count": os.cpu_count(),
            "torch_threads": threads,
        },
        "seed": seed,
        "argv": list(sys.argv),
        "created": _now(),
    }
    out.update(extra)
    return _with_start(out)


def _with_start(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its ``pid``'s start time (a process is known by both:
    :func:`descentlab._osutil.recorded_alive`)."""
    from descentlab._osutil import with_start

    return with_start(record)


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table.

    Attributes:
        id: the run id (never reused).
        name: a human-readable name (not unique).
        config: the run's configuration.
        status: one of :data:`STATUSES`.
        provenance: see :func:`provenance`.
        seed: the run's seed, or None.
        message: a note on the status (the error of a failed run, the step a run diverged at).
        summary: final results of a finished run (e.g. ``{"val/loss": 0.3, "steps": 6000}``),
            or None.
        created_at: ISO 8601 UTC time the run was created.
        updated_at: ISO 8601 UTC time of the last change to the row.
    """

    id: int
    name: str
    config: dict[str, Any]
    status: str
    provenance: dict[str, Any]
    seed: int | None
    message: str | None
    summary: dict[str, Any] | None
    created_at: str
    updated_at: str


class MetricSeries(NamedTuple):
    """The recorded values of one metric of one run, in step order."""

    steps: np.ndarray
    values: np.ndarray


_STATUS = Options(*STATUSES)


def _statuses(status: str | Sequence[str]) -> list[str]:
    """One status or several, checked, as a list."""
    if isinstance(status, str):
        return [check("status", status, _STATUS)]
    return check("status", status, ListOf(_STATUS))


def _config_path(key: str) -> str:
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ValueError(f"config filter key must be a dotted name like 'hyper.lr', got {key!r}")
    return "$" + "".join(f'."{p}"' for p in parts)


class _Database:
    """The store's SQLite file: opening and checking it, one connection per process, write
    transactions. :class:`Store` adds the tables' operations."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 60.0,
        durable: bool = True,
        read_only: bool = False,
    ) -> None:
        self.timeout = check("timeout", timeout, POSITIVE)
        if not isinstance(durable, bool):
            raise ValueError(f"durable must be True or False, got {durable!r}")
        self.durable = durable
        #: opened for reading only (an existing store, e.g. on a read-only mount): nothing is
        #: created or written, and a store whose folder cannot be written is read as it is
        self.read_only = bool(read_only)
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid = self._writer = -1
        self._depth = 0  # inside transaction()
        if self.path.is_dir():
            raise StoreError(f"store {self.path} is a folder, not a store file")
        try:
            check_target(self.path, follow_links=True)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        for suffix in ("-wal", "-shm", "-journal"):
            side = Path(f"{self.path}{suffix}")
            try:  # one stat: another process's SQLite makes and removes these files meanwhile
                mode = side.stat().st_mode
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:  # a link that loops, a file that cannot be looked at
                raise StoreError(
                    f"store {self.path} cannot be used: {side.name} next to it cannot be "
                    f"read ({exc.strerror or exc}); move it aside"
                ) from None
            if not stat.S_ISREG(mode):
                raise StoreError(
                    f"store {self.path} cannot be used: {side.name} next to it is not a "
                    "regular file (move it aside)"
                )
        if self.read_only:
            if not self.path.is_file():
                raise StoreError(f"no store at {self.path}")
        else:
            if _WORKER and durable:
                raise StoreError(_REFUSED.format(self.path, _WORKER[0]))
            self._writer = os.getpid()  # (the one process whose writes reach the file)
            try:
                make_dirs(self.path.parent, 0o700)
            except OSError as exc:
                raise StoreError(
                    f"store {self.path} cannot be created: {exc.strerror or exc}"
                    + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")
                ) from None
            if not self.path.exists():  # made by this process: taken back if it runs out of space
                for suffix in ("", "-wal", "-shm", "-journal"):
                    note_created(f"{self.path}{suffix}")
            self.file_path("checkpoints")  # (a folder linked elsewhere: refused before any write)
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    @_guarded
    def _open(self) -> None:
        conn = self._connection()
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if tables and "meta" not in tables:
            listed = ", ".join(sorted(tables)[:5])
            raise StoreError(
                f"{self.path} is not a descentlab store: it is another program's SQLite "
                f"database (tables: {listed}); choose another file"
            )
        if tables:
            # Damage inside the file (a page overwritten) is found only when that page is read:
            # check every page once, before this process adds to the store (a few ms per MB).
            problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                first = "; ".join(line.strip() for line in problems[0].splitlines()[:2])
                raise StoreError(
                    f"store {self.path} is corrupted (SQLite quick_check: {first}); "
                    "restore it from a backup or move it aside to start a new store"
                )
        missing = sorted(set(_COLUMNS) - tables) if "meta" in tables else []
        if missing and not self._finished(conn):
            missing = []  # a store another process is creating (its version row comes last)
        if missing:  # a table dropped by hand: re-creating it empty would lose it silently
            raise StoreError(
                f"store {self.path} is damaged: its {', '.join(map(repr, missing))} table is "
                "missing; restore it from a backup or move it aside to start a new store"
            )
        if self.read_only:
            if "meta" not in tables:
                raise StoreError(f"{self.path} is not a descentlab store (no tables)")
        else:
            with self._write() as c:  # idempotent: finishes a store another process began
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)",
                    (uuid.uuid4().hex,),
                )
                c.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(_SCHEMA_VERSION),),
                )
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is None or str(version[0]) != str(_SCHEMA_VERSION):
            found = "none" if version is None else repr(version[0])
            raise StoreError(
                f"store {self.path} has schema version {found}; this descentlab reads version "
                f"{_SCHEMA_VERSION}"
            )
        for table, columns in _COLUMNS.items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not columns <= have:
                raise StoreError(
                    f"{self.path} is not a descentlab store: its {table!r} table lacks "
                    f"{', '.join(sorted(columns - have))}"
                )

    @staticmethod
    def _finished(conn: Any) -> bool:
        """Whether the store's creation finished: its schema version, written last, is there."""
        row = conn.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone()
        return row is not None

    # -- connection and transactions -------------------------------------------------------

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        """The rows ``sql`` selects with ``args``, on this process's connection."""
        return self._connection().execute(sql, args).fetchall()

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork: a child process opens its own.
        if self._conn is None or self._pid != os.getpid():
            if self.read_only or not self.durable:
                return self._uri_connection()
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                # A new store's pages: 1 KiB, as each commit writes every page it changed (the
                # half-filled last ones too) into the WAL; a checkpoint every 4 MiB of it
                conn.executescript("PRAGMA page_size = 1024; PRAGMA wal_autocheckpoint = 4096")
                mode = self._wal(conn)
            except BaseException:
                conn.close()
                raise
            if str(mode).lower() != "wal":
                conn.close()
                raise StoreError(f"could not put store {self.path} in WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")  # a committed write survives a power cut
            self._opened(conn)
        return self._conn

    def _uri_connection(self) -> sqlite3.Connection:
        """SQLite's read-only mode (``immutable`` where the folder cannot be written: nothing
        can change the store there, nor could SQLite make its ``-shm`` file); not durable:
        SQLite's ``memdb``, in this process's memory, named by the path, gone when closed."""
        from urllib.parse import quote

        query = "mode=ro" if os.access(self.path.parent, os.W_OK) else "mode=ro&immutable=1"
        query = query if self.durable else "vfs=memdb"
        uri = f"file:{quote(str(self.path.resolve()))}?{query}"
        conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
        return self._opened(conn)

    def _opened(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        conn.execute("PRAGMA foreign_keys = ON")
        self._conn, self._pid = conn, os.getpid()
        _OPEN.add(self)
        return conn

    def _wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, retried while another connection holds a lock.

        SQLite answers 'database is locked' at once, without its busy handler, when another
        process is in the middle of the same switch on a fresh file (both hold a shared lock
        and want an exclusive one), so waiting is done here, up to the store's timeout.
        """
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads first and
        # then writes can fail with SQLITE_BUSY without waiting when another writer is active.
        # Inside transaction(): part of its one transaction.
        if self.durable and not self.read_only and self._writer != os.getpid():  # a fork's
            raise StoreError(_REFUSED.format(self.path, f"process {os.getpid()} (a copy of it)"))
        conn = self._connection()
        if self._depth:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write made inside is one transaction, committed at the end (all or none):
        what a trial records when it ends, or a group of trials, is one write to the disk.
        Nested, the outer one commits."""
        if self._depth:
            yield
            return
        with _guard_errors(self), self._write():
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0

    def close(self) -> None:
        """Close this process's connection (the store reopens it if used again)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
        _OPEN.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _folder(self) -> Path:
        return Path(self.path).absolute().parent

    def file_path(self, *parts: str) -> Path:
        """Where this store's runs keep a file, in its folder (``file_path("checkpoints",
        "run-3.pt")``); :class:`StoreError` in one line, before anything is written, where a
        link there (a ``checkpoints`` folder linked elsewhere) leads outside the folder."""
        relative = "/".join(parts)
        return Path(self._confined(str(self._folder() / relative), f"its {relative!r}"))

    def _confined(self, path: str, said: str) -> str:
        """``path`` where, resolved (``..`` and links followed), it lies in the store's folder;
        else :class:`StoreError` saying ``said`` leads out of it."""
        folder = os.path.realpath(self._folder())
        real = os.path.realpath(path)
        if os.path.commonpath([folder, real]) != folder:
            raise StoreError(
                f"{self.path}: {said} leads outside the store's folder ({folder}); "
                "refused: a path from a store must lie in its folder (restore the store from "
                "a backup, or start the run over in a new one)"
            )
        return path

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound database."""
        return str(self._connection().execute("PRAGMA integrity_check").fetchone()[0])

    def _require_run(self, c: sqlite3.Connection, run_id: int, column: str = "1") -> Any:
        """``column`` of run ``run_id`` (inside a transaction), or KeyError naming the run."""
        row = c.execute(f"SELECT {column} FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id} in {self.path}")
        return row[0]


@runtime_checkable
class RunWriter(Protocol):
    """What a training run writes, and the one way its records reach the store's one writer (a
    protocol: its implementations name no base). Two implementations: the :class:`Store`
    itself -- the writer's own (``descentlab train``), or a scratch store in a worker's
    memory whose runs the writer imports when they end (:mod:`descentlab.engine.scratch`: a
    comparison's trials, ``train_many``'s runs, Ray) -- and the records streamed live to the
    writer as they are made (``descentlab.engine.launch.ToLauncher``: rank 0 of
    ``train --nproc``)."""

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def log_metrics(self, run_id: int, rows: list[Any]) -> Any: ...

    def set_status(self, run_id: int, status: str, **options: Any) -> None: ...

    def add_artifact(self, run_id: int, name: str, path: Any, *, kind: str) -> Any: ...

    def artifacts(self, run_id: int) -> Mapping[str, Any]: ...

    def close(self) -> None: ...


class Store(_Database):
    """A SQLite database of runs, metrics and artifacts, safe for several processes.

    Args:
        path: the database file (created with its parent directories if missing).
        timeout: seconds a write waits for another process's write to finish before failing.
        durable: a file whose every commit waits for the disk (False: a scratch store read
            once, as a worker's or a Ray task's: in this process's memory, gone when closed;
            its artifacts' files still go to ``path``'s folder).

    Example:
        >>> import tempfile, os
        >>> store = Store(os.path.join(tempfile.mkdtemp(), "lab.sqlite"))
        >>> rid = store.create_run({"lr": 0.1}, name="a")
        >>> store.get_run(rid).status
        'running'
        >>> store.find_run_by_config({"lr": 0.1}, status="running").id == rid
        True
        >>> store.close()
    """

    # -- the runs table: create, find, list and update runs --------------------------------

    def create_run(
        self,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        seed: int | None = None,
        status: str = "running",
        provenance: Mapping[str, Any] | None = None,
    ) -> int:
        """Record a new run and return its id (a fresh id; nothing is overwritten).

        Args:
            config: the run's configuration (JSON-serializable mapping).
            name: a human-readable name; defaults to ``"run"``.
            seed: the run's seed.
            status: initial status, one of :data:`STATUSES`.
            provenance: defaults to :func:`provenance` ``(seed)``.

        Returns:
            The new run id.
        """
        check("status", status, _STATUS)
        if not isinstance(config, Mapping):
            raise invalid("config", "a mapping", config, type_error=True)
        text = canonical_json(dict(config))
        prov = canonical_json(
            dict(provenance) if provenance is not None else globals()["provenance"](seed)
        )
        now = _now()
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO runs (name, config, config_hash, status, provenance, seed, message,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (name or "run", text, _hash(text), status, prov, seed, now, now),
            )
            return int(cur.lastrowid)

    def get_run(self, run_id: int) -> RunRecord:
        """The run with id ``run_id``.

        Raises:
            KeyError: no such run.
        """
        row = (
            self._connection()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (int(run_id),))
            .fetchone()
        )
        if row is None:
            raise KeyError(f"no run with id {run_id} in {self.path}")
        return _record(row)

    def list_runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs matching every given filter, oldest first.

        Args:
            status: a status or several.
            name: exact run name.
            config: ``{dotted.key: value}`` pairs that the config must hold, e.g.
                ``{"optimizer": "adam", "hyper.lr": 0.01}``.
            limit: at most this many (the newest ones).

        Returns:
            The matching runs.
        """
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            statuses = _statuses(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        for key, value in (config or {}).items():
            path = _config_path(key)
            if value is None:
                where.append("json_type(config, ?) = 'null'")
                args.append(path)
            elif isinstance(value, bool):
                where.append("json_type(config, ?) = ?")
                args.extend([path, "true" if value else "false"])
            elif isinstance(value, str | int | float):
                where.append("json_extract(config, ?) = ?")
                args.extend([path, value])
            else:
                where.append("json_extract(config, ?) = ?")
                args.extend([path, canonical_json(value)])
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            limit = check("limit", limit, POSITIVE_INT)
            sql = f"SELECT * FROM ({sql} DESC LIMIT {limit}) ORDER BY id"
        rows = self._rows(sql, args)
        return [_record(r) for r in rows]

    def has_runs(self, status: str | Sequence[str]) -> bool:
        """Whether any run has the given status(es) (one query; no config is read)."""
        statuses = _statuses(status)
        sql = f"SELECT 1 FROM runs WHERE status IN ({', '.join('?' * len(statuses))}) LIMIT 1"
        return self._connection().execute(sql, statuses).fetchone() is not None

    def find_run_by_config(
        self, config: Mapping[str, Any], *, status: str | Sequence[str] | None = "completed"
    ) -> RunRecord | None:
        """The newest run whose whole config equals ``config`` (with the given status).

        Use it to skip trials already done: ``if store.find_run_by_config(cfg): continue``.

        Args:
            config: the configuration to look for.
            status: the status(es) the run must have; None for any.

        Returns:
            The run, or None.
        """
        text = canonical_json(dict(config))
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE config_hash = ? AND config = ?"
        args: list[Any] = [_hash(text), text]
        if status is not None:
            statuses = _statuses(status)
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            args.extend(statuses)
        row = self._connection().execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return None if row is None else _record(row)

    def set_status(
        self,
        run_id: int,
        status: str,
        *,
        message: str | None = None,
        expect: str | Sequence[str] | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        """Change a run's status (atomically checking its current one if ``expect`` is given).

        Args:
            run_id: the run.
            status: the new status, one of :data:`STATUSES`.
            message: a note (replaces the previous note; None clears it).
            expect: the status(es) the run must have now, else ValueError and no change.
            summary: final results to record (JSON-serializable; NaN/inf become null); None
                keeps the current summary.

        Raises:
            KeyError: no such run.
            ValueError: bad status, or the run's status is not one of ``expect``.
        """
        check("status", status, _STATUS)
        summary_text = None if summary is None else canonical_json(_finite(dict(summary)))
        with self._write() as c:
            now = self._require_run(c, run_id, "status")
            if expect is not None:
                allowed = [expect] if isinstance(expect, str) else list(expect)
                if now not in allowed:
                    raise ValueError(f"run {run_id} has status {now!r}, expected one of {allowed}")
            c.execute(
                "UPDATE runs SET status = ?, message = ?, updated_at = ?,"
                " summary = COALESCE(?, summary) WHERE id = ?",
                (status, message, _now(), summary_text, int(run_id)),
            )

    def update_provenance(self, run_id: int, updates: Mapping[str, Any]) -> None:
        """Merge ``updates`` into a run's provenance (top-level keys; e.g. a resume history).

        Raises:
            KeyError: no such run.
        """
        with self._write() as c:
            prov = json.loads(self._require_run(c, run_id, "provenance"))
            prov.update(_with_start(updates))
            c.execute(
                "UPDATE runs SET provenance = ?, updated_at = ? WHERE id = ?",
                (canonical_json(prov), _now(), int(run_id)),
            )

    # -- metrics and artifacts ------------------------------------------------------------

    # -- metrics ---------------------------------------------------------------------------

    def log_metrics(self, run_id: int, rows: Iterable[tuple[int, str, str, float]]) -> int:
        """Record ``(step, split, name, value)`` rows for a run, all or none.

        Args:
            run_id: the run.
            rows: the rows; values may be NaN or infinite.

        Returns:
            The number of rows written.

        Raises:
            KeyError: no such run.
            ValueError: a row is malformed, or ``(step, split, name)`` is already recorded
                for this run (the store never overwrites; see :meth:`truncate_metrics`).
        """
        rid = int(run_id)
        with self._write() as c:
            self._require_run(c, rid)
            checked = [(rid, *_check_row(row)) for row in rows]
            # one statement for all the rows (a refit run's test outcomes are 2,000); on a
            # duplicate, the rows are inserted one by one again to name it
            c.execute("SAVEPOINT log_metrics")
            try:
                c.executemany(_INSERT_METRIC, checked)
            except sqlite3.IntegrityError:
                c.execute("ROLLBACK TO log_metrics")
                for row in checked:
                    _insert_one(c, row)
            c.execute("RELEASE log_metrics")
            c.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (_now(), rid))
        return len(checked)

    def log_outcomes(self, run_id: int, arrays: Mapping[str, Any]) -> None:
        """Record a run's per-example values ``{name: [n]}`` (float64, NaN and infinities
        kept), one row of zlib-compressed bytes per name, all or none -- a refit run's 1,000
        test examples take at most 8 kB a name (an accuracy of 0s and 1s a few hundred
        bytes), where 1,000 metric rows took 40 kB.

        Raises:
            KeyError: no such run.
            ValueError: a name already recorded for this run (never overwritten), or values
                that are not one-dimensional numbers.
        """
        rid = int(run_id)
        rows = []
        for name, values in arrays.items():
            a = np.asarray(values, dtype="<f8")
            if a.ndim != 1:
                raise ValueError(f"outcomes {name!r} must be one value per example, got shape "
                                 f"{a.shape}")  # fmt: skip
            rows.append((rid, check("outcomes name", name, NAME), _packed(a)))
        with self._write() as c:
            self._require_run(c, rid)
            try:
                c.executemany("INSERT INTO outcomes (run_id, name, data) VALUES (?, ?, ?)", rows)
            except sqlite3.IntegrityError:
                raise ValueError(f"run {rid} already has outcomes recorded") from None

    def outcomes(self, run_id: int) -> dict[str, np.ndarray]:
        """A run's per-example values (:meth:`log_outcomes`) by name, each checked whole
        (zlib's checksum, and whole float64 values); ``{}`` where none are recorded, or in a
        store written before they had a table of their own.

        Raises:
            KeyError: no such run.
            StoreError: a recorded row whose bytes do not unpack to float64 values.
        """
        self.get_run(run_id)
        try:
            sql = "SELECT name, data FROM outcomes WHERE run_id = ? ORDER BY name"
            rows = self._rows(sql, (int(run_id),))
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return {}  # (an older store, opened read-only: its outcomes are metric rows)
        out = {}
        for name, data in rows:
            try:
                raw = zlib.decompress(data)
            except (zlib.error, TypeError):
                raw = None
            if raw is None or len(raw) % 8:
                held = "no zlib data" if raw is None else f"{len(raw)} bytes"
                raise StoreError(f"store {self.path}: run {run_id}'s outcomes {name!r} hold "
                                 f"{held}, not float64 values")  # fmt: skip
            out[str(name)] = np.frombuffer(raw, dtype="<f8").astype(np.float64)
        return out

    def truncate_metrics(self, run_id: int, after_step: int) -> int:
        """Delete a run's metrics recorded at steps ``> after_step`` (used when resuming).

        Returns:
            The number of rows deleted.
        """
        with self._write() as c:
            cur = c.execute(
                "DELETE FROM metrics WHERE run_id = ? AND step > ?", (int(run_id), int(after_step))
            )
            return int(cur.rowcount)

    def metrics(
        self, run_id: int, *, split: str | None = None, name: str | None = None
    ) -> dict[str, MetricSeries]:
        """A run's metrics as ``{"split/name": MetricSeries(steps, values)}``.

        Args:
            run_id: the run.
            split: only this split (``"train"``, ``"val"``, ``"test"``...).
            name: only this metric name (``"loss"``, ``"accuracy"``...).

        Returns:
            Arrays of steps (int64) and values (float64, NaN where NaN was logged), by step.

        Raises:
            KeyError: no such run.
        """
        self.get_run(run_id)
        sql = "SELECT split, name, step, value FROM metrics WHERE run_id = ?"
        args: list[Any] = [int(run_id)]
        if split is not None:
            sql += " AND split = ?"
            args.append(split)
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        where = sql.partition(" FROM metrics ")[2]
        con = self._connection()
        rows = con.execute(f"SELECT step, value FROM metrics {where} ORDER BY split, name, step",
                           args).fetchall()  # fmt: skip
        if not rows:
            return {}
        # by column, not by row (a curve run logs thousands of rows: collect reads each of a
        # comparison's runs at every look of its sequential verdict)
        steps, values = zip(*rows, strict=True)
        if not set(map(type, values)) <= {int, float, type(None)}:
            bad = con.execute(sql + " AND typeof(value) NOT IN ('integer', 'real', 'null') "
                              "ORDER BY split, name, step LIMIT 1", args).fetchone()  # fmt: skip
            raise self._not_a_number(run_id, f"{bad[0]}/{bad[1]}", bad[2], bad[3])
        all_steps = np.asarray(steps, dtype=np.int64)
        all_values = np.asarray(values, dtype=np.float64)  # (None: NaN)
        groups = con.execute(
            f"SELECT split, name, COUNT(*) FROM metrics {where} GROUP BY split, name "
            "ORDER BY split, name",
            args,
        ).fetchall()
        out = {}
        start = 0
        for sp, nm, count in groups:
            out[f"{sp}/{nm}"] = MetricSeries(all_steps[start : start + count],
                                             all_values[start : start + count])  # fmt: skip
            start += count
        return out

    def check_metric_values(self) -> None:
        """Refuse a store holding a metric value that is not a number (text or bytes that
        something other than descentlab wrote): a report would show what it could read.

        Raises:
            StoreError: naming the first such value's run, metric and step.
        """
        row = (
            self._connection()
            .execute(
                "SELECT run_id, split, name, step, value FROM metrics "
                "WHERE typeof(value) NOT IN ('real', 'integer', 'null') LIMIT 1"
            )
            .fetchone()
        )
        if row is not None:
            run_id, sp, nm, step, value = row
            raise self._not_a_number(run_id, f"{sp}/{nm}", step, value)

    def _not_a_number(self, run_id: int, key: str, step: int, value: Any) -> StoreError:
        return StoreError(
            f"store {self.path} is damaged: run {run_id}'s metric {key} at step {step} is "
            f"{value!r}, not a number (its metrics table was written by something other "
            "than descentlab)"
        )

    # -- artifacts -------------------------------------------------------------------------

    def add_artifact(
        self,
        run_id: int,
        name: str,
        path: str | os.PathLike[str],
        *,
        kind: str = "file",
        replace: bool = False,
    ) -> None:
        """Record that the file ``path`` belongs to a run under ``name``. A file in the
        store's folder (or below) is recorded relative to that folder, so that the store and
        its files can be used from any working folder, or moved together.

        Raises:
            KeyError: no such run.
            ValueError: ``name`` is already taken for this run and ``replace`` is False.
        """
        check("name", name, NAME)
        with self._write() as c:
            self._require_run(c, run_id)
            verb = "INSERT OR REPLACE" if replace else "INSERT"
            try:
                c.execute(
                    f"{verb} INTO artifacts (run_id, name, kind, path, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (int(run_id), name, kind, self._relative(path), _now()),
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError(
                    f"run {run_id} already has an artifact named {name!r} (pass replace=True)"
                ) from exc

    def remove_artifact(self, run_id: int, name: str) -> None:
        """Forget the artifact ``name`` of a run (its file is the caller's to remove); no
        such artifact is not an error."""
        with self._write() as c:
            c.execute("DELETE FROM artifacts WHERE run_id = ? AND name = ?", (int(run_id), name))

    def _relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` as recorded: relative to the store's folder where it lies in it."""
        absolute = Path(os.path.abspath(os.fspath(path)))
        try:
            return absolute.relative_to(self._folder()).as_posix()
        except ValueError:
            return str(absolute)

    def _resolved(self, recorded: str, what: str = "a file") -> str:
        """A recorded path as a path from here: relative to the store's folder (a store
        written before paths were recorded so kept them relative to the folder its command
        ran in: such a path that exists from here, and not from the store, is kept).

        A path read from a store is data: once resolved (``..`` and symbolic links followed)
        it must lie in the store's folder, else :class:`StoreError` in one line -- a store
        edited, forged or copied from elsewhere cannot make a command read, replace or delete
        a file outside its run folder (``train --resume ID --restart`` writes its checkpoint
        where the store says)."""
        p = Path(recorded)
        path = recorded if p.is_absolute() else str(self._folder() / p)
        if not p.is_absolute():
            in_store = self._folder() / p
            if not in_store.exists() and (p.exists() or _checksum_file(p).exists()):
                path = recorded
        return self._confined(path, f"{what} is recorded at {recorded!r}, which")

    def last_steps(self) -> dict[int, int]:
        """``{run id: the last step a metric was recorded at}`` of every run that has one
        (one query: how far a run that is still running, or stopped, got)."""
        sql = "SELECT run_id, MAX(step) FROM metrics GROUP BY run_id"
        return {int(r): int(s) for r, s in self._rows(sql)}

    def artifacts(self, run_id: int) -> dict[str, dict[str, str]]:
        """A run's artifacts as ``{name: {"kind": ..., "path": ..., "created_at": ...}}``
        (each path from the current folder; see :meth:`add_artifact`)."""
        sql = "SELECT name, kind, path, created_at FROM artifacts WHERE run_id = ? ORDER BY name"
        rows = self._rows(sql, (int(run_id),))
        return {
            n: {"kind": k, "path": self._resolved(p, f"run {run_id}'s {n}"), "created_at": t}
            for n, k, p, t in rows
        }

    # -- moving runs between stores ------------------------------------------------------

    def export_run(self, run_id: int) -> dict[str, Any]:
        """Everything recorded for one run, as plain data another store can import.

        Used by the distributed backend: a trial runs on another machine against a
        scratch store there, and the driver imports its record with :meth:`import_run`.

        Returns:
            ``{"run": {name, config, status, provenance, seed, message, summary,
            created_at, updated_at}, "metrics": [(step, split, name, value), ...],
            "artifacts": {name: {"kind", "path"}}}`` (values exactly as stored; NULL stays
            None).

        Raises:
            KeyError: no such run.
        """
        rec = self.get_run(run_id)
        sql = "SELECT step, split, name, value FROM metrics WHERE run_id = ? "
        sql += " ORDER BY split, name, step"
        rows = self._rows(sql, (int(run_id),))
        run = {
            k: getattr(rec, k)
            for k in ("name", "config", "status", "provenance", "seed", "message", "summary")
        }
        run.update(created_at=rec.created_at, updated_at=rec.updated_at)
        arts = {
            n: {"kind": a["kind"], "path": a["path"]} for n, a in self.artifacts(run_id).items()
        }
        outcomes = self.outcomes(run_id)
        return {"run": run, "metrics": [tuple(r) for r in rows], "artifacts": arts,
                "outcomes": outcomes}  # fmt: skip

    def import_run(
        self,
        exported: Mapping[str, Any],
        *,
        artifacts: Callable[[int], Mapping[str, tuple[str, str]]] | None = None,
    ) -> int:
        """Record a run exported by :meth:`export_run` (of this or another store) as a new
        run, in one transaction, and return its id.

        Args:
            exported: what :meth:`export_run` returned.
            artifacts: called with the new run id inside the transaction, before it commits;
                returns ``{name: (kind, path)}`` to record (e.g. after writing the run's
                checkpoint there). If it raises, nothing is recorded.

        Returns:
            The new run id.
        """
        run = exported["run"]
        check("status", run["status"], _STATUS)
        text = canonical_json(dict(run["config"]))
        summary = run.get("summary")
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO runs (name, config, config_hash, status, provenance, seed, message,"
                " summary, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run["name"],
                    text,
                    _hash(text),
                    run["status"],
                    canonical_json(dict(run["provenance"])),
                    run.get("seed"),
                    run.get("message"),
                    None if summary is None else canonical_json(_finite(dict(summary))),
                    run["created_at"],
                    run["updated_at"],
                ),
            )
            rid = int(cur.lastrowid)
            c.executemany(
                "INSERT INTO metrics (run_id, step, split, name, value) VALUES (?, ?, ?, ?, ?)",
                [(rid, int(st), sp, nm, v) for st, sp, nm, v in exported.get("metrics", ())],
            )
            c.executemany(
                "INSERT INTO outcomes (run_id, name, data) VALUES (?, ?, ?)",
                [(rid, name, _packed(np.asarray(a, dtype="<f8")))
                 for name, a in exported.get("outcomes", {}).items()],
            )  # fmt: skip
            for name, (kind, path) in (artifacts(rid) if artifacts else {}).items():
                c.execute(
                    "INSERT INTO artifacts (run_id, name, kind, path, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (rid, name, kind, os.fspath(path), _now()),
                )
        return rid


# Every public method raises StoreError, never sqlite3's exceptions.
for _cls in (_Database, Store):
    for _name, _method in list(vars(_cls).items()):
        if not _name.startswith("_") and callable(_method) and _name != "close":
            setattr(_cls, _name, _guarded(_method))
del _cls, _name, _method

#: The columns each table must have (checked when a store is opened).
_COLUMNS: dict[str, set[str]] = {
    "meta": {"key", "value"},
    "runs": {"id", "name", "config", "config_hash", "status", "provenance", "seed", "message",
             "summary", "created_at", "updated_at"},
    "metrics": {"run_id", "split", "name", "step", "value"},
    "artifacts": {"run_id", "name", "kind", "path", "created_at"},
}  # fmt: skip

_RUN_COLUMNS = (
    "id, name, config, status, provenance, seed, message, summary, created_at, updated_at"
)


#: The stores with a connection open in this process: closed before it forks (SQLite's
#: connections and the locks it believes this process holds must not cross a fork; they
#: reopen when next used), except one in the middle of a transaction or in memory.
_OPEN: weakref.WeakSet[_Database] = weakref.WeakSet()


_WORKER: list[str] = []  # (set by refuse_writing: who this process is)


def refuse_writing(who: str = "a worker process") -> None:
    """From now on this process (``who``, for the refusal's line) opens no store on disk for
    writing (one in its memory it may): a worker of the pool
    (:mod:`descentlab.engine.procpool`), whose runs its parent writes, or a rank of
    ``--nproc``, whose records its launcher writes (:mod:`descentlab.engine.launch`)."""
    _WORKER[:] = [who]


_REFUSED = ("store {} cannot be written by {}: the process that opened it (that started the "
            "workers) is its one writer; a worker sends its runs there")  # fmt: skip


def _close_before_fork() -> None:
    for db in list(_OPEN):  # (one in memory is its only copy: kept, unused by the child)
        if not db._depth and db._pid == os.getpid() and db.durable:
            with contextlib.suppress(sqlite3.Error):  # (one opened by another thread)
                db.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_before_fork)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _record(row: Sequence[Any]) -> RunRecord:
    rid, name, config, status, prov, seed, message, summary, created, updated = row
    return RunRecord(
        id=int(rid),
        name=name,
        config=json.loads(config),
        status=status,
        provenance=json.loads(prov),
        seed=seed,
        message=message,
        summary=None if summary is None else json.loads(summary),
        created_at=created,
        updated_at=updated,
    )


def _finite(obj: Any) -> Any:
    """Replace NaN and infinities (which JSON cannot hold) by None, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


_INSERT_METRIC = "INSERT INTO metrics (run_id, split, name, step, value) VALUES (?, ?, ?, ?, ?)"


def _insert_one(c: sqlite3.Connection, row: tuple[int, str, str, int, float]) -> None:
    """Insert one checked metric row ``(run_id, split, name, step, value)``; a row already
    recorded is a ValueError naming it."""
    try:
        c.execute(_INSERT_METRIC, row)
    except sqlite3.IntegrityError as exc:
        rid, split, name, step, _ = row
        raise ValueError(
            f"metric {split}/{name} at step {step} is already recorded for run "
            f"{rid}; the store does not overwrite (truncate_metrics first)"
        ) from exc


def _packed(values: np.ndarray) -> bytes:
    """Per-example values as stored: their little-endian float64 bytes, zlib-compressed."""
    return zlib.compress(values.astype("<f8", copy=False).tobytes(), 1)


def _check_row(row: Any) -> tuple[str, str, int, float]:
    """``(split, name, step, value)`` of a ``(step, split, name, value)`` row, checked."""
    try:
        step, split, name, value = row
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metric rows must be (step, split, name, value), got {row!r}") from exc
    if type(step) is not int or step < 0:  # (a plain non-negative int needs no conversion)
        step = check("metric step", step, NONNEGATIVE_INT)
    if not isinstance(split, str) or not split or not isinstance(name, str) or not name:
        raise invalid("metric split and name", "non-empty strings", row)
    return split, name, step, float(value)
