"""Trials on a Ray cluster: the same sweep, spread over machines.

:class:`RayTrialRunner` is a :class:`~descentlab.experiments.runner.TrialRunner` whose trials
run as Ray tasks, each against a scratch store on its node; the driver alone writes the run's
store. Packing, data, lost nodes and resumption: docs/compare.md (On a Ray cluster). Ray is
optional (``pip install 'descentlab[ray]'``).

Example (a local Ray instance; two trials run as Ray tasks):
    >>> import tempfile, os
    >>> from descentlab.engine.config import RunConfig
    >>> from descentlab.experiments.trial import DataSource, Trial
    >>> cfg = RunConfig(problem="moons", model="logistic", optimizer="sgd",
    ...                 hyper={"lr": 0.5}, steps=20, evaluate_test=False, name="tune:sgd:0")
    >>> path = os.path.join(tempfile.mkdtemp(), "lab.sqlite")
    >>> with RayTrialRunner(path, DataSource("moons"), num_cpus=1) as runner:  # doctest: +SKIP
    ...     runner.submit(Trial("tune", "sgd", cfg, "holdout"))
    ...     runner.next_outcome().status
    'completed'
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from descentlab.engine.procpool import train_recorded
from descentlab.engine.scratch import import_result, in_scratch_store
from descentlab.experiments.execution import run_task, torch_threads
from descentlab.experiments.resume import CheckpointKeeper
from descentlab.experiments.runner import (
    _INSTALL_HINT,
    BackendUnavailable,
    TrialRunner,
    group_trials,
    trial_cost,
)
from descentlab.experiments.trial import DataSource, Trial, TrialError, TrialOutcome

T = TypeVar("T")

__all__ = [
    "MIN_TASK_COST",
    "RayTrialRunner",
    "pack_tasks",
    "spread_groups",
    "start_keeper",
    "train_remote",
]


# Seconds between checks for Ctrl-C while waiting for Ray tasks.
_POLL = 0.5


def spread_groups(
    groups: Sequence[Sequence[Any]], slots: int, *, min_part: int = 4
) -> list[list[Any]]:
    """``groups`` (trials that can share one vectorized pass) cut into Ray tasks for a
    cluster of ``slots`` task slots: parts of at most about ``total / slots`` trials, so that
    every slot gets a share of the work, but of at least ``min_part`` trials (a vectorized
    pass costs about the same per run from there on) unless the group is smaller; each group
    is cut into near-equal parts, in its order.

    Example:
        >>> spread_groups([list("abcdefghij"), ["x"], ["y"]], 2)
        [['a', 'b', 'c', 'd', 'e'], ['f', 'g', 'h', 'i', 'j'], ['x'], ['y']]
        >>> [len(p) for p in spread_groups([list(range(20)), list(range(3))], 4)]
        [5, 5, 5, 5, 3]
        >>> [len(p) for p in spread_groups([list(range(10))], 8)]  # parts of >= 4
        [5, 5]
    """
    for name, value in (("slots", slots), ("min_part", min_part)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    total = sum(len(g) for g in groups)
    target = max(min_part, -(-total // slots))
    out: list[list[Any]] = []
    for g in groups:
        parts = max(1, min(-(-len(g) // target), len(g) // min_part))
        size, extra = divmod(len(g), parts)
        start = 0
        for i in range(parts):
            stop = start + size + (1 if i < extra else 0)
            out.append(list(g[start:stop]))
            start = stop
    return out


#: The estimated cost (:func:`~descentlab.experiments.runner.trial_cost`, in training steps)
#: a Ray task is packed up to: four tuning trials of 200 steps of the MNIST-1D CNN, about 3 s
#: on one core, against a fixed cost per task of about 0.1-0.3 s.
MIN_TASK_COST = 1000.0


def pack_tasks(
    parts: Sequence[Sequence[T]],
    slots: int,
    *,
    cost: Callable[[T], float],
    min_cost: float = MIN_TASK_COST,
) -> list[list[Sequence[T]]]:
    """``parts`` (each trained in one pass: a trial, or a part of a vectorized group) packed
    into tasks, in their order: consecutive parts share a task so that a task costs about
    ``min_cost`` or more, but there are at least ``slots`` tasks where there are that many
    parts (every task slot of the cluster gets work), of near-equal cost (the slots finish
    together). ``min_cost <= 0``: every part its own task.

    Example:
        >>> one = lambda t: 250.0  # a 200-step tuning trial
        >>> [len(t) for t in pack_tasks([[i] for i in range(8)], 2, cost=one)]
        [4, 4]
        >>> [len(t) for t in pack_tasks([[i] for i in range(32)], 2, cost=one)]  # 8 of 1000
        [4, 4, 4, 4, 4, 4, 4, 4]
        >>> [len(t) for t in pack_tasks([[i] for i in range(3)], 4, cost=one)]
        [1, 1, 1]
        >>> [len(t) for t in pack_tasks([[i] for i in range(4)], 2, cost=lambda t: 1e4)]
        [1, 1, 1, 1]
    """
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ValueError(f"slots must be a positive integer, got {slots!r}")
    costs = [float(sum(cost(t) for t in p)) for p in parts]
    total = sum(costs)
    if min_cost <= 0 or total <= 0:
        return [[p] for p in parts]
    rounds = max(1, int(total // (slots * min_cost)))
    n = min(len(parts), slots * rounds)
    tasks: list[list[Sequence[T]]] = []
    task: list[Sequence[T]] = []
    spent, left = 0.0, total  # the task's cost so far; the cost of it and of the parts after
    for i, (p, c) in enumerate(zip(parts, costs, strict=True)):
        open_tasks = n - len(tasks)  # this one and those still to fill
        if task and open_tasks > 1:
            share = left / open_tasks
            # full at half of the next part past its share, or the parts left are needed to
            # give each of the other tasks one
            if spent + c / 2 > share or len(parts) - i < open_tasks:
                tasks.append(task)
                task, left, spent = [], left - spent, 0.0
        task.append(p)
        spent += c
    tasks.append(task)
    return tasks


def _import_ray() -> Any:
    # Both must be set before Ray is imported: no usage report leaves the machine, and a
    # local instance binds to the loopback address rather than the machine's address.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(_INSTALL_HINT) from None
    return ray


def _run_remote(
    source: DataSource,
    trials: list[Trial],
    threads: int,
    sizes: Sequence[int] | None = None,
    resume: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The body of a Ray task: run ``trials`` against a scratch store and export their runs,
    in the trials' order. ``sizes`` cuts ``trials`` into the parts that train one after
    another, each alone or (several trials) in one vectorized pass (None: one part).
    ``resume``: how trials checkpoint (``{"every": ..., "keeper": actor or None, "kept":
    {trial index: what the driver kept of it}}``, see :mod:`.resume`; None: they do not)."""
    resume = dict(resume or {"every": None, "keeper": None, "kept": {}})
    keeper = resume.pop("keeper", None)
    save = None
    if keeper is not None:
        ray = _import_ray()

        def save(*args: Any) -> None:
            ray.get(keeper.save.remote(*args))

    with torch_threads(threads):
        return run_task(source, trials, sizes, resume, save)


def _train_remote(config: Any, data: Any, recorded: bool, threads: int) -> tuple[Any, Any]:
    """The body of a training's Ray task (:func:`~descentlab.engine.procpool.train_recorded`
    with ``threads`` torch threads)."""
    with torch_threads(threads):
        return train_recorded(config, data, recorded)


class _Meeting:
    """A Ray actor that serves the TCPStore where the processes of one sharded trial meet,
    on 127.0.0.1 of the node its placement group packs them on; it also holds their first
    failure (:func:`~descentlab.engine.launch.first_failure`)."""

    def __init__(self, nproc: int) -> None:
        from datetime import timedelta

        import torch.distributed as dist

        self.server = dist.TCPStore(
            "127.0.0.1", 0, nproc + 1, True, timedelta(seconds=300), wait_for_workers=False
        )

    def port(self) -> int:
        return int(self.server.port)

    def failure(self) -> str | None:
        from descentlab.engine.launch import first_failure

        return first_failure(self.server)


def _sharded_remote(rank: int, nproc: int, meeting: Any, job: dict[str, Any]) -> Any:
    """The body of the Ray task of process ``rank`` of a sharded trial, which meets the
    others at ``meeting`` (:class:`_Meeting`): rank 0 records the run in a scratch store and
    returns it exported (as :func:`_run_remote` does)."""
    import time

    from descentlab.engine.launch import export_checkpoint, run_rank

    port = _import_ray().get(meeting.port.remote())

    if rank != 0:
        run_rank(rank, port, nproc, job)
        return None

    def work(store: Any) -> tuple[Any, float]:
        t0 = time.perf_counter()
        out = run_rank(0, port, nproc, {**job, "db": str(store.path)})
        if out["checkpoint_path"] is not None:  # one file that travels: the shards as one
            export_checkpoint(out["checkpoint_path"], out["checkpoint_path"])
        return out, time.perf_counter() - t0

    (out, seconds), runs = in_scratch_store(work, on_disk=True)  # rank 0 opens it by its path
    (exported,) = [r for r in runs if r["id"] == out["run_id"]]
    exported.pop("id")
    exported["seconds"] = seconds
    return [exported]


def _connect(address: str | None, num_cpus: int | None) -> tuple[Any, bool]:
    """Ray, initialised (a new local instance on 127.0.0.1 without ``address``); whether this
    call started the session (and so should shut it down)."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    options: dict[str, Any] = {
        "log_to_driver": False,
        "configure_logging": False,
        "include_dashboard": False,
    }
    if address is None:
        # "local": a new instance of our own, never one found on the machine.
        options.update(address="local", _node_ip_address="127.0.0.1", num_cpus=num_cpus)
    else:
        _reachable(address)
        options.update(address=address)
    ray.init(**options)
    return ray, True


#: Seconds to wait for a Ray head's port to answer before giving up (Ray itself retries for
#: minutes, logging each failure).
CONNECT_TIMEOUT = 10.0


def _reachable(address: str) -> None:
    """Raise :class:`BackendUnavailable` if ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``) does not accept a TCP connection within :data:`CONNECT_TIMEOUT`;
    other forms (``"auto"``) are left to Ray."""
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    host = host.strip("[]")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = "no answer"
        raise BackendUnavailable(
            f"cannot reach the Ray head at {address} within {CONNECT_TIMEOUT:g} s ({reason}); "
            "is the cluster running (ray start --head) and the address right?"
        ) from None


def train_remote(
    configs: Sequence[Any], store: Any, data: Any, address: str | None, threads: int
) -> list[Any]:
    """:func:`~descentlab.experiments.runners.train_all` on Ray: each training a Ray task,
    the data put into the object store once, the runs recorded by this process alone."""
    threads = 1 if threads is None else threads
    ray, owned = _connect(address, None)
    try:
        task = ray.remote(max_retries=3)(_train_remote)
        data_ref = ray.put(data) if data is not None else None
        refs = [
            task.options(num_cpus=threads).remote(c, data_ref, store is not None, threads)
            for c in configs
        ]
        results = []
        for ref in refs:
            result, run = ray.get(ref)
            results.append(result if run is None else import_result(store, result, run))
        return results
    finally:
        if owned:
            ray.shutdown()


def start_keeper(ray: Any, folder: str | os.PathLike[str]) -> Any:
    """A :class:`~descentlab.experiments.resume.CheckpointKeeper` actor on this (the
    driver's) node, writing to ``folder``."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(CheckpointKeeper)
    return actor.options(scheduling_strategy=here).remote(os.fspath(folder))


def _on_cuda(trial: Trial) -> bool:
    return str(trial.config.device).startswith("cuda")


class RayTrialRunner(TrialRunner):
    """Run trials as Ray tasks; the driver (this process) alone writes the store.

    Args:
        store_path: the SQLite store the runs go to (on the driver's machine).
        source: where the data come from.
        address: a running cluster to join (``"auto"``, ``"HOST:PORT"`` or
            ``"ray://HOST:PORT"``); None starts a local Ray instance on 127.0.0.1.
        threads: torch threads per trial, and the CPUs each task asks Ray for.
        num_cpus: CPUs of a local instance (None: all of this machine's).
        retries: how often Ray runs a task again when its worker or node dies.
        vectorize: trials of one model submitted together train in one vectorized pass, as
            one Ray task (see :meth:`~descentlab.experiments.runner.TrialRunner.submit_many`).
        min_task_cost: short trials (or parts of vectorized groups) share a task up to about
            this estimated cost (:func:`pack_tasks`; 0: one trial or part per task).
        checkpoint_every: as for :class:`~descentlab.experiments.runner.TrialRunner` (which
            trials train alone and checkpoint); each checkpoint goes to the driver's machine,
            next to the store, and a trial sent again (the command was stopped and run again,
            or Ray retries its task) continues from its last one
            (:mod:`~descentlab.experiments.resume`).

    A Ray session that is already initialised in this process is used as it is and left
    running; one this runner started is shut down by :meth:`close`. The trials waiting are
    submitted at once, the cluster schedules them; vectorized groups are cut into parts first
    (:func:`spread_groups`) so that every CPU slot of the cluster gets a share of a round, and
    short parts are packed into tasks (:func:`pack_tasks`). Where and with whom a trial
    trains never changes its numbers.
    """

    plans_work = False

    @property
    def _defers(self) -> bool:
        return True  # short trials submitted one by one still share tasks (pack_tasks)

    def __init__(
        self,
        store_path: str | os.PathLike[str],
        source: DataSource,
        *,
        address: str | None = None,
        threads: int = 1,
        num_cpus: int | None = None,
        retries: int = 3,
        vectorize: bool = False,
        min_task_cost: float = MIN_TASK_COST,
        checkpoint_every: int | str | None = None,
        nproc: int = 1,
    ) -> None:
        super().__init__(store_path, source, workers=1, threads=threads, vectorize=vectorize,
                         checkpoint_every=checkpoint_every, nproc=nproc)  # fmt: skip
        ok = isinstance(min_task_cost, int | float) and not isinstance(min_task_cost, bool)
        if not ok or not 0 <= min_task_cost < float("inf"):
            raise ValueError(f"min_task_cost must be a finite number >= 0, got {min_task_cost!r}")
        self.min_task_cost = float(min_task_cost)
        if address is not None and (not isinstance(address, str) or not address):
            raise ValueError(f"address must be a non-empty string, got {address!r}")
        for name, value in (("num_cpus", num_cpus), ("retries", retries)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        if num_cpus is not None and num_cpus < 1:
            raise ValueError(f"num_cpus must be >= 1, got {num_cpus!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.retries = retries
        self._ray: Any = None
        self._owned = False
        self._remote: Any = None
        self._keeper: Any = None
        self._source_ref: Any = None
        self._refs: dict[Any, list[int]] = {}
        #: a sharded trial's rank-0 task -> (its placement group, meeting actor, other ranks)
        self._sharded: dict[Any, tuple[Any, Any, list[Any]]] = {}

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to Ray (start a local instance or join ``address``) now."""
        if self._ray is not None:
            return
        ray, self._owned = _connect(self.address, self.num_cpus)
        self._ray = ray
        self._remote = ray.remote(max_retries=self.retries, retry_exceptions=False)(_run_remote)
        if self.checkpoint_every is not None and not str(self.address).startswith("ray://"):
            self._keeper = start_keeper(ray, self._kept_folder)
        # Given data go into the object store once; named problems load on each node.
        self._source_ref = ray.put(self.source) if self.source.data is not None else self.source

    def close(self, *, abort: bool = False, signum: int | None = None) -> None:
        """Cancel the tasks not finished (``abort``) or wait for none, and disconnect from a
        Ray instance this runner started (``signum``, the signal that stopped the command, is
        the local pool's to pass on: Ray's tasks are cancelled whatever stopped it)."""
        ray, self._ray = self._ray, None
        if ray is not None:
            for ref in list(self._refs):
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            for _, meeting, others in self._sharded.values():
                for ref in [*others, meeting]:
                    with contextlib.suppress(Exception):
                        (ray.cancel if ref is not meeting else ray.kill)(ref)
            self._sharded.clear()  # (their placement groups go with the instance or job)
            self._refs.clear()
            keeper, self._keeper = self._keeper, None
            if keeper is not None:
                with contextlib.suppress(Exception):
                    ray.kill(keeper)
            if self._owned:
                ray.shutdown()
                self._owned = False
        if self._store is not None:
            self._store.close()

    # -- work ------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send every waiting trial off as Ray tasks: vectorized groups cut so that each of
        the cluster's task slots gets a share (one group of a round's trials would otherwise
        be one task on one CPU), then short parts (or single trials) packed into tasks."""
        todo, self._waiting = self._waiting, []
        if not todo:
            return
        if self.nproc > 1:  # each trial its own N tasks
            for t in todo:
                self._send([t], trial_cost(t))
            return
        slots = self._slots(cuda=any(_on_cuda(t) for t in todo))
        if self.vectorize:
            parts = spread_groups(group_trials(todo, self._alone), slots)
        else:
            parts = [[t] for t in todo]
        for task in pack_tasks(parts, slots, cost=trial_cost, min_cost=self.min_task_cost):
            group = [t for p in task for t in p]
            self._send(group, sum(trial_cost(t) for t in group), [len(p) for p in task])

    def _slots(self, cuda: bool = False) -> int:
        """How many of this runner's tasks the cluster runs at once: its CPUs over the CPUs a
        task asks for, or with ``cuda`` its GPUs (one per task: a round's vectorized group
        cut into more parts than GPUs would train its parts one after another)."""
        self.start()
        resources = self._ray.cluster_resources()
        if cuda:
            return max(1, int(float(resources.get("GPU", 1.0))))
        cpus = float(resources.get("CPU", 1.0))
        return max(1, int(cpus) // max(1, self.threads))

    def _dispatch_sharded(self, indices: list[int], trial: Trial) -> None:
        """Send one trial as ``nproc`` Ray tasks, one per process, packed on one node by a
        placement group of ``nproc`` bundles (``STRICT_PACK``); they meet at a TCPStore a
        Ray actor of the group serves there (:class:`_Meeting`)."""
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from descentlab.engine.launch import prepare_sharded

        ray, nproc = self._ray, self.nproc
        options = {"data": self.source.get(trial.data), "progress": False, "threads": self.threads}
        job, _ = prepare_sharded(trial.config, nproc, None, options)
        # (nothing waits here for the group: its tasks start once the cluster has its CPUs,
        # and the trials before it give theirs back as their outcomes are collected)
        group = placement_group([{"CPU": self.threads}] * nproc, strategy="STRICT_PACK")

        def on(rank: int) -> Any:
            return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=rank)

        meeting = ray.remote(_Meeting).options(num_cpus=0, scheduling_strategy=on(0))
        meeting = meeting.remote(nproc)
        # each rank in a fresh worker process (one that ran another trial's rank keeps its
        # torch.distributed and checkpoint state)
        task = ray.remote(max_retries=0, max_calls=1)(_sharded_remote)
        refs = [
            task.options(num_cpus=self.threads, scheduling_strategy=on(r)).remote(
                r, nproc, meeting, job
            )
            for r in range(nproc)
        ]
        self._refs[refs[0]] = indices
        self._sharded[refs[0]] = (group, meeting, refs[1:])

    def _end_sharded(self, ref: Any) -> str | None:
        """A sharded trial's tasks are over (``ref``: its rank 0's): the first failure of its
        processes (None: none), its actor and placement group gone."""
        if ref not in self._sharded:
            return None
        from ray.util.placement_group import remove_placement_group

        ray = self._ray
        group, meeting, others = self._sharded.pop(ref)
        first = None
        with contextlib.suppress(Exception):
            first = ray.get(meeting.failure.remote())
        for other in others:
            with contextlib.suppress(Exception):
                ray.get(other)
        with contextlib.suppress(Exception):
            ray.kill(meeting)
        with contextlib.suppress(Exception):
            remove_placement_group(group)
        return first

    def _dispatch_group(self, indices: list[int], group: list[Trial], sizes: list[int]) -> None:
        self.start()
        if self.nproc > 1:
            self._dispatch_sharded(indices, group[0])
            return
        cuda = any(_on_cuda(t) for t in group)
        resume = {**self._resume_of(group), "keeper": self._keeper}
        ref = self._remote.options(num_cpus=self.threads, num_gpus=1 if cuda else 0).remote(
            self._source_ref, group, self.threads, sizes, resume
        )
        self._refs[ref] = indices

    def _collect(self) -> TrialOutcome:
        ray = self._ray
        while True:
            # A short timeout keeps Ctrl-C responsive while the cluster works.
            ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=_POLL)
            if ready:
                break
        ref = ready[0]
        indices = self._refs.pop(ref)
        self._running.pop(indices[0], None)
        trials = [self._trials.pop(i) for i in indices]
        names = ", ".join(repr(t.config.name) for t in trials)
        try:
            exports = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            first = self._end_sharded(ref)  # (a sharded trial: the process that failed first)
            raise TrialError(f"trial {names} failed: {first or exc}") from None
        except ray.exceptions.RayError as exc:  # the task could not run (retries exhausted)
            self._end_sharded(ref)
            raise TrialError(f"trial {names} could not run on the Ray cluster: {exc}") from None
        self._end_sharded(ref)
        self._ready.extend(self._imported(trials, exports))
        return self._ready.popleft()
