"""One run trained by N processes, its model sharded with FSDP2 (``fully_shard``).

``descentlab train --nproc N`` (and :func:`train_sharded`) starts N processes on this machine
with torch's own launcher; they meet at a :class:`torch.distributed.TCPStore` that this
process serves on 127.0.0.1 and form a gloo process group (NCCL with ``device="cuda"``). The
launcher owns its processes (:mod:`descentlab.engine.ranks`). Why the numbers are one
process's, the sharded checkpoints and what is refused before anything starts:
docs/distributed.md."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict, Unpack

import torch
from torch import Tensor, nn

from descentlab._files import make_dirs
from descentlab._osutil import temporary_folder
from descentlab.engine import ranks
from descentlab.engine.building import Built, build
from descentlab.engine.config import RunConfig, checked_config
from descentlab.engine.loop import Loop, check_checkpoint_every, check_until_step
from descentlab.engine.outcome import RunResult, create_record
from descentlab.engine.ranks import ShardedRunError, first_failure
from descentlab.engine.resuming import (
    begin_resume,
    default_checkpoint,
    resumption,
    run_checkpoint,
    saved_state,
)
from descentlab.engine.run import OneModel, StopRequest, live
from descentlab.store import RunWriter

__all__ = [
    "MAX_PROCESSES_PER_CORE",
    "ShardedRunError",
    "check_nproc",
    "first_failure",
    "sharded_processes",
    "train_sharded",
]

#: ``nproc`` may be at most this many times the machine's CPU cores (CPU runs)
MAX_PROCESSES_PER_CORE = 4

#: optimizers whose step reads the closure's loss (each process would read its own)
_CLOSURE_LOSS_OPTIMIZERS = frozenset({"lbfgs"})


# ------------------------------------------------------------------------------------------
# checks before anything starts


def check_nproc(nproc: Any, device: str = "cpu") -> int:
    """``nproc`` checked: a positive integer, at most :data:`MAX_PROCESSES_PER_CORE` times the
    CPU cores (``device="cpu"``), at most the GPUs there are (``device`` CUDA).

    Example:
        >>> check_nproc(2)
        2
        >>> check_nproc(0)
        Traceback (most recent call last):
        ...
        ValueError: --nproc must be a positive integer, got 0
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"--nproc must be a positive integer, got {nproc!r}")
    kind = torch.device(device).type
    if kind == "cuda":
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if nproc > have:
            raise ValueError(
                f"--nproc {nproc} with --device {device} needs {nproc} GPUs (one per process); "
                f"this machine has {have}"
            )
    elif kind == "cpu":
        cores = os.cpu_count() or 1
        cap = MAX_PROCESSES_PER_CORE * cores
        if nproc > cap:
            raise ValueError(
                f"--nproc {nproc} is more than {MAX_PROCESSES_PER_CORE} processes per CPU core "
                f"({cores} cores here: at most {cap})"
            )
    else:
        raise ValueError(f"--nproc trains on the CPU or CUDA GPUs, not on {device!r}")
    return nproc


def sharded_processes(
    nproc: int | None, device: str, store_path: Path, resume_id: int | None
) -> int | None:
    """The processes a run takes, ``nproc`` checked (:func:`check_nproc`) where given:
    ``nproc`` above 1; for the stored run ``resume_id``, the number it was trained by unless
    ``nproc`` gives another. None: one process."""
    if nproc is not None:
        check_nproc(nproc, device)
    if resume_id is None:
        return nproc if nproc is not None and nproc > 1 else None
    if not store_path.is_file():
        return None  # (the one-process path says that there is no store)
    from descentlab.store import Store

    store = Store(store_path)
    try:
        recorded = store.get_run(resume_id).provenance.get("nproc")
    except (KeyError, TypeError, AttributeError, ValueError):
        return None  # (said by the one-process path: no such run, or a record it refuses)
    finally:
        store.close()
    if nproc is None or nproc == recorded:
        return recorded
    if recorded is None:
        if nproc == 1:
            return None
        raise ValueError(f"run {resume_id} was trained by 1 process(es); resume it with --nproc 1")
    if nproc < 2:
        raise ValueError(
            f"run {resume_id} was trained by {recorded} process(es); resume it with --nproc "
            "2 or more (its sharded checkpoint reshards to any number of processes)"
        )
    return nproc


def check_shardable(config: RunConfig, built: Built, nproc: int) -> None:
    """Raise ``ValueError`` (one line) where ``config`` cannot train sharded across ``nproc``
    processes equal to one process, or where ``nproc`` processes cannot be had here
    (:func:`check_nproc`)."""
    check_nproc(nproc, config.device)
    where = f"--nproc {nproc}"
    refusal = built.train_split.shard_refusal
    if refusal is not None:
        raise ValueError(f"{where}: {refusal}")
    batch_norm = nn.modules.batchnorm._NormBase
    norms = sorted({type(m).__name__ for m in built.model.modules() if isinstance(m, batch_norm)})
    if norms:
        raise ValueError(
            f"{where}: model {built.model_name!r} has {', '.join(norms)}, whose statistics "
            "each process would take on its own slice of the batch; it is not sharded"
        )
    if not any(p.requires_grad for p in built.model.parameters()):
        raise ValueError(f"{where}: model {built.model_name!r} has no parameter to shard")
    for key, flag in (
        ("weight_noise", "--weight-noise"),
        ("early_stopping", "--early-stopping"),
    ):
        if getattr(config, key):
            raise ValueError(f"{where} does not take {flag}")
    if config.precision == "fp16":
        raise ValueError(f"{where} does not take --precision fp16 (use bf16)")
    if isinstance(config.optimizer, str) and config.optimizer.lower() in _CLOSURE_LOSS_OPTIMIZERS:
        raise ValueError(
            f"{where}: optimizer {config.optimizer!r} reads the closure's loss, which each "
            "process computes on its own slice; it is not sharded"
        )
    smallest = built.smallest_batch
    if smallest is not None and smallest < nproc:
        raise ValueError(
            f"{where}: a step of {smallest} example(s) cannot be split across {nproc} "
            "processes; use a batch size (and a last batch) of at least that many examples"
        )


# ------------------------------------------------------------------------------------------
# one process of the run


def shard_model(model: nn.Module, mesh: Any = None) -> None:
    """``fully_shard`` every module of each ``nn.ModuleList`` (a transformer's blocks), then
    the whole model: each block's parameters are gathered just before its forward and freed
    after it."""
    from torch.distributed.fsdp import fully_shard

    for module in list(model.modules()):
        if isinstance(module, nn.ModuleList):
            for block in module:
                if any(True for _ in block.parameters()):
                    fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


class ShardedModel(OneModel):
    """:class:`~descentlab.engine.run.OneModel` in one process of a sharded run: the step's
    batch is sliced, each slice's loss weighted so that the averaged gradients are the whole
    batch's; the recorded loss is every process's, combined; checkpoints gather the full
    state."""

    def __init__(
        self, config: RunConfig, built: Built, aug_gen: torch.Generator, checkpoint: Any
    ) -> None:
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        super().__init__(config, built, aug_gen)
        #: the run's checkpoint file (its shards beside it), this launch's mark on the shards'
        #: folders (the same on every process) and the checkpoints saved so far
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.token = _broadcast(uuid.uuid4().hex[:12])
        self.saves = 0
        #: where rank 0 records the run (:class:`ToLauncher`, or Ray's scratch store)
        self.writer: RunWriter | None = None

    def _batch_loss(self) -> Callable[[Tensor, Tensor], Tensor]:
        from descentlab import regularize

        b = self.b
        model, loss_fn, pipeline, gen = b.model, b.train_loss, b.pipeline, self.aug_gen
        rank, world = self.rank, self.world

        def batch_loss(xb: Tensor, yb: Tensor) -> Tensor:
            total = int(xb.shape[0])
            mixed = None
            if pipeline is not None:  # on the whole batch, as in one process
                xb, yb, mixed, lam = pipeline(xb, yb, gen)
            x = xb.tensor_split(world)[rank]
            y = yb.tensor_split(world)[rank]
            out = model(x)
            if mixed is None:
                loss = loss_fn(out, y)
            else:
                loss = regularize.mixup_loss(loss_fn, out, y, mixed.tensor_split(world)[rank], lam)
            weight = int(x.shape[0]) * world / total
            return loss if weight == 1.0 else loss * weight

        return batch_loss

    def loss_value(self, loss: Tensor) -> float:
        import torch.distributed as dist

        value = loss.detach().to(torch.float64).reshape(1) / self.world
        dist.all_reduce(value)
        return float(value)

    def model_and_optimizer_state(self) -> dict[str, Any]:
        """The model's and optimizer's state saved as shards (every process writes its own,
        ``torch.distributed.checkpoint``) into a new folder beside the checkpoint file, which
        names it (``shards``): the folder appears whole (written under another name, then
        renamed by rank 0) and is used once the checkpoint names it."""
        import torch.distributed as dist
        import torch.distributed.checkpoint as dcp

        self.saves += 1
        name = f"{self.token}-{self.saves:05d}"
        folder = shards_folder(self.checkpoint)  # type: ignore[arg-type]
        if self.rank == 0:
            make_dirs(folder, 0o700)
        dist.barrier()
        partial = folder / f"{name}.partial"
        dcp.save(self._sharded_state(), checkpoint_id=str(partial))
        files = {}
        if self.rank == 0:  # each file's hash, checked before a resume reads it
            files = {f.name: _sha256(f) for f in sorted(partial.iterdir())}
            os.replace(partial, folder / name)
        shards = {"folder": name, "world": self.world, "files": files}
        return {"model": {}, "optimizer": {}, "shards": shards}

    def save(self, state: dict[str, Any], path: Path) -> bool:
        """Rank 0 writes the checkpoint (every process wrote its shards), the rows up to
        this step in the store first (the launcher has confirmed them); the other ranks do
        not record it."""
        if self.rank != 0:
            return False
        if isinstance(self.writer, ToLauncher):
            self.writer.applied()
        super().save(state, path)
        self.saved(state)
        return True

    def saved(self, state: Mapping[str, Any]) -> None:
        """Rank 0, after the checkpoint that names ``state``'s shards is written: the folders
        of the checkpoints before it are removed."""
        folder = shards_folder(self.checkpoint)  # type: ignore[arg-type]
        keep = state["shards"]["folder"]
        for old in folder.iterdir():
            if old.name != keep and old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)

    def load_model_and_optimizer_state(self, state: Mapping[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
            set_state_dict,
        )

        model, opt = self.b.model, self.b.optimizer
        if "shards" not in state:  # a checkpoint of the full state (one file)
            set_state_dict(model, opt, model_state_dict=state["model"],
                           optim_state_dict=state["optimizer"],
                           options=StateDictOptions(full_state_dict=True))  # fmt: skip
            return
        import torch.distributed.checkpoint as dcp

        loaded = self._sharded_state()
        folder = shards_folder(self.checkpoint) / state["shards"]["folder"]  # type: ignore[arg-type]
        dcp.load(loaded, checkpoint_id=str(folder))  # (resharded to this world size)
        set_model_state_dict(model, loaded["model"])
        set_optimizer_state_dict(model, opt, loaded["optim"])

    def _sharded_state(self) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import (
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        model, opt = self.b.model, self.b.optimizer
        return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}


def shards_folder(checkpoint: Path) -> Path:
    """Where a sharded run's checkpoint ``checkpoint`` keeps its shards' folders."""
    return checkpoint.with_name(checkpoint.name + ".shards")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_shards(checkpoint: Path, state: Mapping[str, Any]) -> None:
    """Raise :class:`~descentlab.engine.checkpoint.CheckpointError` where the shards the
    checkpoint ``state`` (read from ``checkpoint``) names are missing or changed since it
    was written (each file against its hash); a checkpoint of the full state passes."""
    from descentlab.engine.checkpoint import CheckpointError

    shards = state.get("shards")
    if shards is None:
        return
    folder = shards_folder(checkpoint) / shards["folder"]
    there = sorted(f.name for f in folder.iterdir()) if folder.is_dir() else []
    if there != sorted(shards["files"]):
        raise CheckpointError(
            f"the shards of checkpoint {checkpoint} in {folder} are missing or incomplete"
        )
    for name, digest in shards["files"].items():
        if _sha256(folder / name) != digest:
            raise CheckpointError(
                f"the shard file {folder / name} of checkpoint {checkpoint} changed since it "
                "was written (its hash differs)"
            )


def export_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str]
) -> dict[str, Any]:
    """A sharded run's checkpoint ``checkpoint`` as one file ``out`` holding the full model
    and optimizer state (the optimizer's by parameter name, as
    ``get_state_dict(full_state_dict=True)`` gives it), read in this one process: what a
    one-process tool loads. Returns the state written."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    from descentlab.engine.checkpoint import save_checkpoint

    checkpoint = Path(checkpoint)
    state = dict(run_checkpoint(checkpoint))
    check_shards(checkpoint, state)
    shards = state.pop("shards", None)
    if shards is not None:
        folder = shards_folder(checkpoint) / shards["folder"]
        with temporary_folder("export") as scratch, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (torch says it reads in one process: it does)
            dcp_to_torch_save(folder, Path(scratch) / "full.pt")
            full = torch.load(Path(scratch) / "full.pt", weights_only=True)
        state.update(model=full["model"], optimizer=full["optim"])
    save_checkpoint(state, out)
    return state


class _AgreedStop:
    """A stop request every process agrees on: SIGINT or SIGTERM seen by any of them (its
    loop's handler, or noted before the loop began) stops all of them at the same step
    boundary."""

    def __init__(self, request: StopRequest) -> None:
        self.request = request

    @property
    def signal(self) -> int | None:
        import torch.distributed as dist

        flag = torch.tensor([self.request.signal or ranks.stop_asked() or 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag) or None


def _broadcast(value: Any) -> Any:
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ToLauncher:
    """Rank 0's :class:`~descentlab.store.RunWriter`: what the loop and the checkpoints write
    (metric rows, status and summary, the checkpoint's artifact) sent to the launcher, the
    store's one writer, through the TCPStore ``meeting``: each write, or each transaction's
    writes, one message ``record/<n>`` that the launcher applies in one transaction
    (:class:`_FromRanks`) and confirms (``applied/<n>``)."""

    def __init__(self, meeting: Any, timeout: float) -> None:
        self.meeting, self.timeout = meeting, timedelta(seconds=timeout)
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.depth = self.sent = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        except BaseException:
            if self.depth == 1:
                self.calls = []  # (rolled back, as the store's transaction would be)
            raise
        finally:
            self.depth -= 1
        self._send()

    def log_metrics(self, run_id: int, rows: list[Any]) -> None:
        self._write("log_metrics", run_id, rows)

    def set_status(self, run_id: int, status: str, **options: Any) -> None:
        self._write("set_status", run_id, status, **options)

    def add_artifact(self, run_id: int, name: str, path: Path, *, kind: str) -> None:
        self._write("add_artifact", run_id, name, str(path), kind=kind)

    def _write(self, name: str, *args: Any, **options: Any) -> None:
        self.calls.append((name, args, options))
        self._send()

    def _send(self) -> None:
        if self.depth or not self.calls:
            return
        self.sent += 1
        self.meeting.set(f"record/{self.sent}", pickle.dumps(self.calls))
        self.calls = []

    def artifacts(self, run_id: int) -> dict[str, Any]:
        """None known here: the launcher keeps a resumed run's recorded checkpoint
        (:class:`_FromRanks`)."""
        return {}

    def applied(self) -> None:
        """Wait until the launcher has written everything sent (at most the run's
        ``rank_timeout``): a checkpoint follows only the rows before it."""
        if self.sent:
            self.meeting.wait([f"applied/{self.sent}"], self.timeout)

    def close(self) -> None:
        """Nothing to close here (the loop closes its store as it ends): the launcher holds
        the store, and closes it."""


class _FromRanks:
    """The launcher's side of :class:`ToLauncher`: called (by the launcher's watch, every
    :data:`~descentlab.engine.ranks._POLL` seconds and after the ranks end), it writes the
    messages rank 0 sent into ``store``, in order, each in one transaction, and confirms
    each."""

    _WRITES = ("log_metrics", "set_status", "add_artifact")

    def __init__(self, store: Any, meeting: Any) -> None:
        self.store, self.meeting, self.done = store, meeting, 0

    def __call__(self) -> None:
        key = f"record/{self.done + 1}"
        while self.meeting.check([key]):
            calls = pickle.loads(self.meeting.get(key))
            with self.store.transaction():
                for name, args, options in calls:
                    if name not in self._WRITES:  # (never a method the ranks' message names)
                        raise RuntimeError(f"rank 0 sent the launcher an unknown write {name!r}")
                    if name == "add_artifact" and args[1] in self.store.artifacts(args[0]):
                        continue  # (a resumed run's checkpoint, recorded before)
                    getattr(self.store, name)(*args, **options)
            self.meeting.delete_key(key)
            self.done += 1
            self.meeting.set(f"applied/{self.done}", "")
            self.meeting.delete_key(f"applied/{self.done - 1}")  # (rank 0 waits for the last)
            key = f"record/{self.done + 1}"


def _rank_main(job: Mapping[str, Any], meeting: Any) -> dict[str, Any] | None:
    """One process's part of the run; rank 0 returns what the launcher reports. Rank 0 sends
    its records to the launcher through the TCPStore ``meeting`` (:class:`ToLauncher`), or,
    where the job names a store of its own (``db``: Ray's rank 0, a scratch store its driver
    imports), records the run there."""
    import torch.distributed as dist

    from descentlab.store import Store

    rank, world = dist.get_rank(), dist.get_world_size()
    config: RunConfig = job["config"]
    record: dict[str, Any] = job["record"]
    run_id, ckpt_path = job.get("run_id"), job.get("checkpoint_path")
    store: Any = None
    if rank == 0 and job.get("db") is not None:
        store = Store(job["db"])
    elif rank == 0 and run_id is not None:
        store = ToLauncher(meeting, job["rank_timeout"])
    state = None
    if job.get("load") and ckpt_path is not None:
        state = saved_state(Path(ckpt_path), record)
    device = torch.device(config.device)
    mesh = None
    if device.type == "cuda":
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh("cuda", (world,))
    try:
        with torch.random.fork_rng(devices=[]):
            built = build(config, job.get("data"), shard=lambda m: shard_model(m, mesh))
            if run_id is None:  # (Ray's rank 0 records it in its own store)
                if rank == 0 and store is not None:
                    run_id = create_record(store, config, built, record=record, nproc=world)
                    ckpt_path = str(default_checkpoint(store, run_id))
                run_id, ckpt_path = _broadcast([run_id, ckpt_path])
            if rank == 0:
                ranks.tell("run_id", str(run_id))  # (for the launcher's line after a stop)
            loop = Loop.single(config, built)
            loop.checkpoint_every = job.get("checkpoint_every")
            part = ShardedModel(config, built, loop.batches.aug_gens[0], ckpt_path)
            part.writer = store
            path = None if ckpt_path is None else Path(ckpt_path)
            show = job.get("progress") if rank == 0 else False
            (result,) = live(loop, part, store, [run_id], path, state,
                             until_step=job.get("until_step"), progress=show,
                             agreed=_AgreedStop)  # fmt: skip
    finally:
        if store is not None:
            store.close()
    if rank != 0:
        return None
    return {
        "run_id": result.run_id,
        "status": result.status,
        "steps": result.steps,
        "epochs": result.epochs,
        "wall_time": result.wall_time,
        "summary": result.summary,
        "message": result.message,
        "checkpoint_path": None if path is None else str(path),
    }


def run_rank(rank: int, port: int, nproc: int, job: Mapping[str, Any]) -> Any:
    """Process ``rank``'s part of the run ``job`` (:func:`prepare_sharded`), its processes
    meeting at the TCPStore served on 127.0.0.1:``port``; rank 0 returns the run's report
    (and puts it in the TCPStore). A failure is recorded in the TCPStore
    (:func:`~descentlab.engine.ranks.record_failure`) and raised. The meeting and every
    collective wait at most ``job["rank_timeout"]`` seconds for the other processes."""
    import torch.distributed as dist

    torch.set_num_threads(int(job["threads"]))
    timeout = timedelta(seconds=float(job.get("rank_timeout", ranks.RANK_TIMEOUT)))
    store = dist.TCPStore("127.0.0.1", port, nproc + 1, False, timeout)
    ranks.joined(store)
    try:
        device = torch.device(job["config"].device)
        if device.type == "cuda":
            torch.cuda.set_device(rank)
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend,
            store=dist.PrefixStore("pg", store),
            rank=rank,
            world_size=nproc,
            timeout=timeout,
        )
        out = _rank_main(job, store)
        if rank == 0:
            store.set("result", pickle.dumps(out))
        return out
    except BaseException as exc:
        ranks.record_failure(store, rank, exc)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _rank_entry(rank: int, stacks: str, port: int, nproc: int, job: Mapping[str, Any]) -> None:
    """The entry point of process ``rank`` (forked by :func:`_launch`,
    :func:`~descentlab.engine.ranks.supervise`): its failure is reported by the launcher, in
    one line; it ends without waiting for threads user code left running."""
    ranks.rank_started(rank, stacks)
    from descentlab._announce import share_across
    from descentlab._usercode import plain_warnings
    from descentlab.store import refuse_writing

    refuse_writing(f"rank {rank} of --nproc")  # (the launcher writes what rank 0 sends)
    plain_warnings()
    if job.get("announced"):
        share_across(job["announced"])
    try:
        run_rank(rank, port, nproc, job)
    except BaseException:
        if os.environ.get("DESCENTLAB_DEBUG"):
            import traceback

            traceback.print_exc()
        ranks.end_rank(1)
    ranks.end_rank(0)


def _forkserver_preload() -> None:
    """The processes are forked from one server process that has imported the engine once
    (``multiprocessing``'s forkserver): a launch costs no import, and a process that
    launches many runs (a comparison's trials) starts the server once."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["descentlab.engine.forkserver"])  # (it loads the engine)


def _launch(nproc: int, job: Mapping[str, Any], store: Any = None) -> dict[str, Any]:
    """Run ``job`` in ``nproc`` processes (:func:`~descentlab.engine.ranks.supervise`), what
    rank 0 sends for the run's record written into ``store`` meanwhile; rank 0's report."""
    import torch.distributed as dist

    timeout = float(job.get("rank_timeout", ranks.RANK_TIMEOUT))
    server = dist.TCPStore(
        "127.0.0.1", 0, nproc + 1, True, timedelta(seconds=timeout), wait_for_workers=False
    )
    _forkserver_preload()
    drain = (lambda: None) if store is None else _FromRanks(store, server)
    try:
        ranks.supervise(_rank_entry, nproc, (server.port, nproc, dict(job)), server,
                        rank_timeout=timeout, drain=drain)  # fmt: skip
    except ShardedRunError as exc:
        out = _delivered(server, store)
        if out is None:
            raise
        warnings.warn(
            f"descentlab: {exc.cause} as it ended, after run {out['run_id']} completed; the "
            "run's result was delivered and is kept",
            RuntimeWarning,
            stacklevel=2,
        )
        return out
    return pickle.loads(server.get("result"))


def _delivered(server: Any, store: Any) -> dict[str, Any] | None:
    """Rank 0's report where it delivered a completed run's result and the store (where
    there is one) says the run completed: a rank's death after that loses nothing. Else
    None."""
    with contextlib.suppress(Exception):
        if server.check(["result"]):
            out = pickle.loads(server.get("result"))
            if out.get("status") != "completed":
                return None
            if store is None or store.get_run(out["run_id"]).status == "completed":
                return out
    return None


# ------------------------------------------------------------------------------------------
# the public entry point


class ShardOptions(TypedDict, total=False):
    """The keyword arguments of :func:`train_sharded` that :func:`prepare_sharded` checks
    (each as :func:`train_sharded` says; not given: None, ``restart`` False)."""

    data: Any
    resume_id: int | None
    restart: bool
    until_step: int | None
    progress: bool | None
    threads: int | None
    checkpoint_every: int | str | None
    optimizer: Any
    schedule: Mapping[str, Any] | None
    rank_timeout: float | None


def train_sharded(
    config: RunConfig | Mapping[str, Any] | None,
    nproc: int,
    store_path: str | os.PathLike[str] | None = None,
    *,
    announce: str | None = None,
    begun: bool = False,
    **options: Unpack[ShardOptions],
) -> RunResult:
    """Train one run across ``nproc`` processes of this machine, its model sharded with FSDP2
    (see the module notes); or continue the stored run ``resume_id`` (``config`` None) from
    its last checkpoint.

    Args:
        config: the run (a :class:`RunConfig` or a dict of its fields).
        nproc: processes (:func:`check_nproc`).
        store_path: the store the run is recorded in, by this process alone (rank 0 sends
            it the run's records); its checkpoint goes to
            ``<store dir>/checkpoints/run-<id>.pt``.
        data: a ``Splits`` to train on instead of loading ``config.problem``.
        resume_id: continue this stored run (its recorded config).
        restart: with ``resume_id``: start over where its checkpoint is corrupted or missing.
        until_step: pause after this many steps (checkpoint written, status ``interrupted``).
        progress: rank 0 shows a progress bar (None: when stderr is a terminal).
        threads: torch threads per process (None: the cores shared out, at least 1).
        checkpoint_every: as for :func:`~descentlab.engine.run.train`.
        announce: printed by this process once the run is built and recorded (``{run_id}``
            replaced).
        optimizer, schedule: with ``resume_id``, as for
            :func:`~descentlab.engine.run.resume` (a run whose optimizer or schedules were
            Python objects).
        rank_timeout: seconds a process waits for the others at a collective before the
            run ends naming the one that hung (None: ``$DESCENTLAB_RANK_TIMEOUT``, else
            :data:`~descentlab.engine.ranks.RANK_TIMEOUT`).
        begun: with ``resume_id``, as for :func:`~descentlab.engine.run.resume`.

    Returns:
        The :class:`RunResult` (its ``model``: the final full weights, loaded from the final
        checkpoint where there is one; ``metrics`` empty: they are in the store).

    Raises:
        ValueError: bad ``nproc`` or a run that cannot be sharded, before anything starts.
        ShardedRunError: a process failed, hung or was killed (one line naming its rank).
        RanksStopped: SIGINT or SIGTERM, and a process did not stop at a step boundary in
            time (:mod:`descentlab.engine.ranks`); a stop in time returns the run
            ``interrupted``.
    """
    from descentlab._announce import announcement_dir, shared_across
    from descentlab.store import Store

    # what this process announces while it builds the run, its processes do not repeat
    folder = announcement_dir()
    with shared_across(folder):
        job, built = prepare_sharded(config, nproc, store_path, options)
        with contextlib.nullcontext() if store_path is None else Store(store_path) as store:
            job.update({"run_id": None} if store is None else
                       _recorded(store, {**job, "begun": begun}, built, nproc))  # fmt: skip
            _say(announce, job["run_id"])
            try:
                out = _launch(nproc, {**job, "announced": folder}, store)
            except BaseException as exc:
                if store is not None:
                    _left_running(store, job["run_id"], exc)
                raise
    return finished(out, built, job["config"])


def _say(announce: str | None, run_id: int | None) -> None:
    """``announce`` printed by the launcher, its run recorded (here, not by rank 0: a rank's
    output goes where this process's went when its process server started)."""
    if announce:
        print(announce.format(run_id=run_id), flush=True)


def _recorded(store: Any, job: Mapping[str, Any], built: Built, nproc: int) -> dict[str, Any]:
    """The run recorded by the launcher before any rank starts (a resumed one as
    :func:`~descentlab.engine.run.resume` leaves it: running, its metrics cut back to its
    checkpoint's step, the resume in its provenance): its id and checkpoint for the ranks."""
    run_id = job["resume_id"]
    if run_id is None:
        threads = torch.get_num_threads()
        torch.set_num_threads(job["threads"])  # (the provenance names a rank's threads)
        try:
            run_id = create_record(store, job["config"], built, record=job["record"], nproc=nproc)
        finally:
            torch.set_num_threads(threads)
        return {"run_id": run_id, "checkpoint_path": str(default_checkpoint(store, run_id))}
    if not job["begun"]:
        begin_resume(store, run_id, job["after"], nproc=nproc)
    return {"run_id": run_id}


def _left_running(store: Any, run_id: int, exc: BaseException) -> None:
    """The run whose ranks ended without recording its end (one killed, or a stop before
    they began) recorded as one process's run would be: interrupted by a stop, else failed.
    A rank's failure is recorded as the launcher knows it (which rank, which signal, exit
    status or error), the other ranks' errors beside it, over what rank 0 recorded of it
    (a survivor's error: its peer's connection reset)."""
    if isinstance(exc, ShardedRunError):
        beside = f"; beside it: {'; '.join(exc.errors)}" if exc.errors else ""
        with contextlib.suppress(Exception):
            store.set_status(run_id, "failed", message=f"{exc.cause}{beside}",
                             expect=("running", "failed"))  # fmt: skip
        return
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    with contextlib.suppress(Exception):
        store.set_status(run_id, status, message=f"{type(exc).__name__}: {exc}", expect="running")


def finished(out: Mapping[str, Any], built: Built, config: RunConfig) -> RunResult:
    """The :class:`RunResult` of ``config``'s run from rank 0's report ``out``: the model
    ``built`` holds the final weights of the run's final checkpoint where there is one (its
    shards read in this one process)."""
    model = built.model
    path = out["checkpoint_path"]
    if path is not None and Path(path).is_file():
        state = run_checkpoint(Path(path))
        shards = state.get("shards")
        if shards is None:
            model.load_state_dict(state["model"])
        else:
            import torch.distributed.checkpoint as dcp

            weights = model.state_dict()
            folder = shards_folder(Path(path)) / shards["folder"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (torch says it reads in one process: it does)
                dcp.load({"model": weights}, checkpoint_id=str(folder), no_dist=True)
            model.load_state_dict(weights)
    return RunResult(
        status=out["status"],
        steps=out["steps"],
        epochs=out["epochs"],
        wall_time=out["wall_time"],
        metrics={},
        summary=out["summary"],
        model=model,
        config=config,
        run_id=out["run_id"],
        message=out["message"],
        checkpoint_path=None if out["checkpoint_path"] is None else Path(out["checkpoint_path"]),
    )


def prepare_sharded(
    config: RunConfig | Mapping[str, Any] | None,
    nproc: int,
    store_path: str | os.PathLike[str] | None,
    options: ShardOptions,
) -> tuple[dict[str, Any], Built]:
    """Everything :func:`train_sharded` checks before any process starts, and the job each
    process is given (:func:`run_rank`); the run as one process builds it."""
    from descentlab.store import Store

    unknown = sorted(set(options) - ShardOptions.__optional_keys__)
    if unknown:  # (as Python says it of a parameter the signature does not name)
        raise TypeError(f"train_sharded() got an unexpected keyword argument {unknown[0]!r}")
    until_step, resume_id = options.get("until_step"), options.get("resume_id")
    checkpoint_every, threads = options.get("checkpoint_every"), options.get("threads")
    check_until_step(until_step)
    check_checkpoint_every(checkpoint_every)
    if resume_id is not None and store_path is None:
        raise ValueError("resume_id needs the store the run is recorded in")
    job: dict[str, Any] = {
        "until_step": until_step,
        "progress": options.get("progress"),
        "checkpoint_every": checkpoint_every,
        "data": options.get("data"),
        "resume_id": resume_id,
        "rank_timeout": ranks.check_rank_timeout(options.get("rank_timeout")),
    }
    if resume_id is not None:
        # everything checked here, read-only; the store's changes follow (:func:`_recorded`)
        with Store(store_path) as store:
            resumed = resumption(store, resume_id, restart=options.get("restart", False),
                                 optimizer=options.get("optimizer"),
                                 schedule=options.get("schedule"))  # fmt: skip
        if resumed.load:  # verified before anything starts, its shards too
            check_shards(resumed.checkpoint, resumed.state or {})
        config, record = resumed.config, resumed.record
        job.update(checkpoint_path=str(resumed.checkpoint), after=resumed.after,
                   load=resumed.load)  # fmt: skip
    elif config is None:
        raise ValueError("give a config, or resume_id to continue a stored run")
    else:
        config, record = checked_config(config)
    with torch.random.fork_rng(devices=[]):  # every check of one process's run, before any start
        built = build(config, options.get("data"))
    check_shardable(config, built, nproc)
    cores = os.cpu_count() or 1
    job.update(config=config, record=record, threads=threads or max(1, cores // nproc))
    return job, built
