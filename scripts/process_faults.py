"""Processes that obey, user code that misbehaves: a generated campaign of fault cases.

Each case runs ``descentlab`` as a user would (its own process, in a fresh folder, with a
problem file written by this script) and does one thing to it: a signal to the launcher, its
process group, a rank or the forkserver, at start-up or mid-run (``train --nproc 2``, ``compare
--nproc 2``, ``train``); a compiler that is missing, fails, hangs, is interrupted or killed,
or a cached kernel that is damaged (``train``, ``compare``, ``train --nproc 2``); a problem
function that changes folder, leaves a thread running, prints, imports a module next to it,
raises, exits, hangs on one rank, or gives loader options and classes torch and scikit-learn
would word on their own; Ctrl-C with 1 to 3 loader workers hung on the first, one or every
item. What each case must show is written with it: the exit code, the one line (and no
traceback), how long the command took after the signal, and that no process of the case is
left 10 s after it ended (every process the case started carries a tag in its environment,
so ranks in sessions of their own are counted too); some cases also check the checkpoint, a
resume, the kernel cache's temporaries or the store's place.

Run::

    python scripts/process_faults.py                   # every case; the table on stdout
    python scripts/process_faults.py --only signal     # the cases whose name contains it
    python scripts/process_faults.py --list            # names only
    python scripts/process_faults.py --jobs 2 --table docs/process_faults.md

Each row: the case, what was done, what held (or why not), the seconds it took. The last line
counts the cases held; the exit status is 0 when every case held. Not part of the test suite
(each case starts a command: minutes in all); tests/test_launcher_signals.py,
tests/test_compiler_faults.py and tests/test_user_code.py keep a representative subset.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LEFT_WAIT = 10.0  # seconds after a command ended within which its processes must be gone
STOP_WITHIN = 10.0  # seconds from a stop signal to the command's exit

PROBLEM = '''
"""The campaign's problems (scripts/process_faults.py)."""
import os, sys, threading, time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from descentlab.problems.problem import Problem

FLAGS = Path(os.environ["FAULT_FLAGS"])


def _rank():
    d = torch.distributed
    return d.get_rank() if d.is_available() and d.is_initialized() else 0


def _xy(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] * x[:, 1] > 0).long()


class Net(nn.Module):
    """A linear model: each training forward sleeps; on rank ``on`` at its ``at``-th training
    forward it does ``what`` (hang, raise, exit, os_exit, interrupt, barrier, oom)."""

    def __init__(self, sleep=0.02, what=None, on=1, at=3):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.calls, self.cfg = 0, (sleep, what, on, at)

    def forward(self, x):
        sleep, what, on, at = self.cfg
        if self.training:
            self.calls += 1
            if self.calls == at:
                (FLAGS / f"ready-{_rank()}-{os.getpid()}").touch()
                if what and _rank() == on:
                    if what == "hang":
                        while True:
                            time.sleep(1)
                    if what == "raise":
                        raise ValueError(f"rank{on} model boom")
                    if what == "exit":
                        sys.exit(3)
                    if what == "os_exit":
                        os._exit(4)
                    if what == "interrupt":
                        raise KeyboardInterrupt("the model's own")
                    if what == "barrier":
                        torch.distributed.barrier()
                    if what == "oom":  # 16 TiB on the model's device
                        torch.empty(1 << 44, dtype=torch.uint8, device=x.device)
            time.sleep(sleep)
        return self.lin(x)


def make(sleep=0.02, what=None, on=1, at=3, n=64):
    (FLAGS / f"problem-{os.getpid()}").touch()
    x, y = _xy(n)
    data = {"x_train": x, "y_train": y, "x_test": x[:16], "y_test": y[:16]}
    return Problem(name="faults", model=lambda: Net(sleep, what, on, at), data=data,
                   n_classes=2)


def chdir(**kw):
    os.chdir("/")
    return make(**kw)


def thread(**kw):
    threading.Thread(target=time.sleep, args=(3600,), name="user-poller").start()
    return make(**kw)


def prints(**kw):
    print("hello from the problem function")
    return make(**kw)


def helper(**kw):
    import faults_helper

    return faults_helper.made(**kw)


class Pairs(Dataset):
    def __init__(self, n=60, seed=0, hang=None, interrupt=None, one_member=False):
        self.x, self.y = _xy(n, seed)
        if one_member:
            self.y = self.y.clone()
            self.y[5] = 2
        self.targets = self.y  # (known without reading: the validation split is by class)
        self.hang, self.interrupt = hang, interrupt

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        worker = torch.utils.data.get_worker_info()
        if self.hang is not None and worker is not None and (self.hang == "all" or i == self.hang):
            (FLAGS / f"hung-{os.getpid()}").touch()
            while True:
                time.sleep(1)
        if self.interrupt is not None and i == self.interrupt:
            raise KeyboardInterrupt("the dataset's own")
        return self.x[i], self.y[i]


def _boom(worker_id):
    raise RuntimeError(f"worker {worker_id} cannot start")


def loader(workers=0, hang=None, interrupt=None, timeout=None, init_fails=False,
           one_member=False):
    (FLAGS / f"problem-{os.getpid()}").touch()
    options = {"num_workers": workers}
    if timeout is not None:
        options["timeout"] = timeout
    if init_fails:
        options["worker_init_fn"] = _boom
    classes = 3 if one_member else 2
    return {
        "model": lambda: nn.Linear(2, classes),
        "n_classes": classes,
        "data": {"train": Pairs(hang=hang, interrupt=interrupt, one_member=one_member),
                 "test": Pairs(20, 1)},
        "loader": options,
    }


def tensors_one_member():
    x, y = _xy(60)
    y = y.clone()
    y[5] = 2
    return {"model": lambda: nn.Linear(2, 3), "n_classes": 3,
            "data": {"x_train": x, "y_train": y, "x_test": x[:10], "y_test": y[:10]}}
'''

HELPER = '''
"""A module next to the campaign's problem file (imported by it as scripts do)."""
import prob


def made(**kw):
    return prob.make(**kw)
'''

HANG_CXX = '#!/bin/sh\necho $$ > "$FAULT_FLAGS/compiler-$$"\nsleep 3600\n'


# ------------------------------------------------------------------------------------------
# one case


@dataclasses.dataclass
class Case:
    """One fault: the command, what is done to it, and what it must show."""

    name: str
    argv: list[str]
    what: str
    codes: tuple[int, ...] = (0,)
    says: tuple[str, ...] = ()  # on stderr (or stdout), each
    trigger: str | None = None  # wait for: "ready" (training), "start" (a rank built), a flag
    action: Callable[[Case, Any], None] | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    checks: tuple[Callable[[Case, Any], str | None], ...] = ()
    ranks: int = 1
    timeout: float = 240.0
    after: float = STOP_WITHIN  # the most seconds from the action to the exit
    traceback_ok: bool = False


@dataclasses.dataclass
class Run:
    """A case's run: its folder, process, tag, output."""

    folder: Path
    tag: str
    proc: Any = None
    out: str = ""
    err: str = ""
    code: int | None = None
    acted: float | None = None
    ended: float | None = None

    @property
    def flags(self) -> Path:
        return self.folder / "flags"

    def flagged(self, prefix: str) -> list[str]:
        return sorted(p.name for p in self.flags.glob(prefix + "*"))


def _tagged(tag: str) -> list[int]:
    """The live processes whose environment carries ``tag`` (zombies left out)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"FAULT_TAG={tag}".encode() in env and state != "Z":
            found.append(int(entry))
    return found


def _left(tag: str, wait: float = LEFT_WAIT) -> list[int]:
    deadline = time.monotonic() + wait
    while (found := _tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _wait_for(run: Run, trigger: str, count: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if len(run.flagged(trigger)) >= count:
            return True
        if run.proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def run_case(case: Case, keep: Path | None = None) -> tuple[bool, str, float]:
    """Run ``case``: (held, why not or what it showed, seconds)."""
    folder = Path(tempfile.mkdtemp(prefix="fault-", dir=keep))
    t0 = time.monotonic()
    run = Run(folder, uuid.uuid4().hex[:12])
    try:
        return (*_run(case, run), time.monotonic() - t0)
    finally:
        for pid in _tagged(run.tag):  # nothing of a case outlives it, held or not
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def _run(case: Case, run: Run) -> tuple[bool, str]:
    run.flags.mkdir()
    (run.folder / "prob.py").write_text(PROBLEM)
    (run.folder / "faults_helper.py").write_text(HELPER)
    cxx = run.folder / "hang-cxx.sh"
    cxx.write_text(HANG_CXX)
    cxx.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FAULT_FLAGS": str(run.flags),
           "FAULT_TAG": run.tag, "DESCENTLAB_CACHE": str(run.folder / "cache")}  # fmt: skip
    env.pop("DESCENTLAB_DEBUG", None)
    env.update({k: v.format(folder=run.folder) for k, v in case.env.items()})
    if env.get("CXX") == "":
        env.pop("CXX")
    argv = [a.format(folder=run.folder) for a in case.argv]
    run.proc = subprocess.Popen(
        [PYTHON, "-m", "descentlab", *argv], cwd=run.folder, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        if case.trigger is not None:
            # ("ready": every rank trains; "problem": the launcher and a rank have loaded it)
            count = case.ranks if case.trigger in ("ready", "problem") else 1
            if not _wait_for(run, case.trigger, count, case.timeout):
                run.out, run.err = run.proc.communicate(timeout=case.timeout)
                return False, f"never reached {case.trigger!r}: {_last(run.err)}"
            time.sleep(0.3)
        if case.action is not None:
            run.acted = time.monotonic()
            case.action(case, run)
        run.out, run.err = run.proc.communicate(timeout=case.timeout)
    except subprocess.TimeoutExpired:
        return False, f"still running {case.timeout:g} s later"
    run.ended, run.code = time.monotonic(), run.proc.returncode
    problems = []
    if run.code not in case.codes:
        problems.append(f"exit {run.code}, not {'/'.join(map(str, case.codes))}")
    if run.acted is not None and run.ended - run.acted > case.after:
        problems.append(f"took {run.ended - run.acted:.1f} s after the signal")
    said = run.err + run.out
    problems += [f"no {s!r}" for s in case.says if s not in said]
    if "Traceback" in run.err and not case.traceback_ok:
        problems.append("a traceback")
    left = _left(run.tag)
    if left:
        problems.append(f"{len(left)} process(es) left {LEFT_WAIT:g} s later")
    for check in case.checks:
        problem = check(case, run)
        if problem:
            problems.append(problem)
    if problems:
        return False, "; ".join(problems) + f" [{_last(run.err)}]"
    return True, _last(run.err) or _last(run.out)


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


# ------------------------------------------------------------------------------------------
# actions and checks


def _pids(run: Run, prefix: str) -> dict[int, int]:
    """rank -> pid from the flags ``ready-<rank>-<pid>``."""
    out = {}
    for name in run.flagged(prefix):
        _, rank, pid = name.split("-")
        out[int(rank)] = int(pid)
    return out


def _forkserver(run: Run) -> int | None:
    for pid in _tagged(run.tag):
        with contextlib.suppress(OSError):
            if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == run.proc.pid:
                    return pid
    return None


def send(sig: int, target: str) -> Callable[[Case, Any], None]:
    def act(case: Case, run: Run) -> None:
        if target == "launcher":
            os.kill(run.proc.pid, sig)
        elif target == "group":
            os.killpg(run.proc.pid, sig)
        elif target.startswith("rank"):
            os.kill(_pids(run, "ready")[int(target[4:])], sig)
        elif target == "forkserver":
            os.kill(_forkserver(run) or run.proc.pid, sig)

    act.__name__ = f"{signal.Signals(sig).name} to the {target}"
    return act


def later(seconds: float, act: Callable[[Case, Any], None]) -> Callable[[Case, Any], None]:
    def delayed(case: Case, run: Run) -> None:
        time.sleep(seconds)
        act(case, run)

    delayed.__name__ = f"{act.__name__}, {seconds:g} s later"
    return delayed


def resumes(case: Case, run: Run) -> str | None:
    """``train --resume 1`` completes the stopped run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FAULT_FLAGS": str(run.flags),
           "FAULT_TAG": run.tag}  # fmt: skip
    argv = ["train", "--resume", "1", "--runs-dir", str(run.folder / "r"), "--no-progress"]
    proc = subprocess.run([PYTHON, "-m", "descentlab", *argv], cwd=run.folder, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if proc.returncode != 0 or "completed" not in proc.stdout:
        return f"resume: exit {proc.returncode} {_last(proc.stderr)}"
    return None


def checkpoint_kept(case: Case, run: Run) -> str | None:
    if not (run.folder / "r" / "checkpoints" / "run-1.pt").is_file():
        return "no checkpoint kept"
    return None


def no_temporaries(case: Case, run: Run) -> str | None:
    cache = run.folder / "cache" / "fused"
    left = [p.name for p in cache.glob("*") if p.is_dir()] if cache.is_dir() else []
    return f"temporaries left in the cache: {left}" if left else None


def store_here(case: Case, run: Run) -> str | None:
    if not (run.folder / "r").is_dir():
        return "the store is not in the folder the command ran in"
    return None


def json_stdout(case: Case, run: Run) -> str | None:
    try:
        json.loads(run.out)
    except ValueError:
        return f"standard output is not JSON: {run.out[:80]!r}"
    return None


def one_error_line(case: Case, run: Run) -> str | None:
    errors = [ln for ln in run.err.splitlines() if ln.startswith("descentlab: error:")]
    return None if len(errors) == 1 else f"{len(errors)} error lines"


def names_thread_once(case: Case, run: Run) -> str | None:
    n = run.err.count("user-poller")
    return None if n == 1 else f"the thread named {n} times"


# ------------------------------------------------------------------------------------------
# the cases

TINY_COMPARE = ["--optimizers", "sgd", "--fixed-lr", "sgd", "--seeds", "1", "--landscapes",
                "none", "--no-report", "--no-progress", "--workers", "1", "--batch-size", "16",
                "--runs-dir", "r"]  # fmt: skip


def _commands(steps: int, nproc: int, problem: str = "prob.py:make") -> dict[str, list[str]]:
    """The commands a fault is tried on (``nproc`` processes for the sharded ones)."""
    train = ["train", "--problem", problem, "--steps", str(steps), "--batch-size", "16",
             "--no-progress", "--runs-dir", "r", "--checkpoint-every", "5"]  # fmt: skip
    compare = ["compare", "--problem", problem, "--steps", str(steps), *TINY_COMPARE]
    return {
        f"train-nproc{nproc}": [*train, "--nproc", str(nproc)],
        f"compare-nproc{nproc}": [*compare, "--nproc", str(nproc)],
        "train": train,
        "compare": compare,
    }


def signal_cases() -> list[Case]:
    """Signals x targets x commands x moments."""
    cases = []
    for command, argv in _commands(2000, 2).items():
        sharded = "nproc" in command
        is_train = command.startswith("train")
        ranks = 2 if sharded else 1
        targets = ["launcher", "group", *(["rank0", "rank1", "forkserver"] if sharded else [])]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            for target in targets:
                for moment in ("start", "ready") if target in ("launcher", "group") else ("ready",):
                    name = f"signal/{command}/{sig.name}/{target}/{moment}"
                    case = Case(name, [*argv, "--rank-timeout", "60"] if sharded else argv,
                                f"{sig.name} to the {target} at {moment}", ranks=ranks,
                                trigger="problem" if moment == "start" else "ready",
                                action=send(sig, target))  # fmt: skip
                    stop = sig != signal.SIGKILL
                    if target in ("launcher", "group") and not stop:
                        case.codes = (-9,) if target == "launcher" else (-9, 137)
                    elif target in ("rank0", "rank1") and not stop:
                        case.codes, case.says = (2,), (f"{target[:4]} {target[4:]} was killed by "
                                                       "SIGKILL",)  # fmt: skip
                        if not is_train:
                            case.says = (f"{target[:4]} {target[4:]} was killed by SIGKILL",)
                    elif target == "forkserver":
                        # the forkserver ignores SIGINT and SIGTERM; killed, its ranks die
                        case.codes = (0,) if stop else (2,)
                        case.says = () if stop else ("forkserver process was killed",)
                        case.action = send(sig, target)
                        if stop:
                            case.argv = [a if a != "2000" else "60" for a in case.argv]
                            case.after = 240
                    else:
                        # a stop: at a step boundary, exit 128 + the signal, every command
                        case.codes = (128 + sig,)
                        if is_train:
                            case.says = ("stopped",) if sharded else ("interrupted",)
                            if moment == "ready":
                                case.says = ("stopped at step", "--resume 1")
                                case.checks = (checkpoint_kept,)
                        else:  # (before the comparison began: "interrupted")
                            case.says = ("stopped",) if moment == "ready" else ()
                    cases.append(case)
    # a second Ctrl-C kills at once; a stop with a rank hung in user code kills it
    argv = _commands(2000, 2)["train-nproc2"]
    cases.append(Case("signal/train-nproc2/SIGINT-twice/launcher/ready", argv,
                      "SIGINT twice to the launcher (the first stop may end the run first)",
                      codes=(130,),
                      trigger="ready", ranks=2, action=_twice))  # fmt: skip
    hang = [*_commands(2000, 2)["train-nproc2"], "--problem-option", "what='hang'",
            "--problem-option", "at=4"]  # fmt: skip
    for sig, target in ((signal.SIGINT, "group"), (signal.SIGTERM, "launcher")):
        cases.append(Case(f"signal/train-nproc2/{sig.name}/{target}/rank1-hung", hang,
                          f"{sig.name} to the {target}, rank 1 hung in user code",
                          codes=(128 + sig,), says=("rank 1 in user code at forward",),
                          trigger="ready", ranks=2, action=send(sig, target)))  # fmt: skip
    # resumes after a stop
    for sig in (signal.SIGINT, signal.SIGTERM):
        cases.append(Case(f"signal/train-nproc2/{sig.name}/launcher/resumed",
                          [a if a != "2000" else "200" for a in argv],
                          f"{sig.name} to the launcher, then --resume 1",
                          codes=(128 + sig,), says=("stopped at step",), trigger="ready",
                          ranks=2, action=send(sig, "launcher"),
                          checks=(checkpoint_kept, resumes)))  # fmt: skip
    return cases


def _twice(case: Case, run: Run) -> None:
    os.kill(run.proc.pid, signal.SIGINT)
    time.sleep(0.5)
    os.kill(run.proc.pid, signal.SIGINT)


def compiler_cases() -> list[Case]:
    """Compiler faults x commands, under ``--hyper fused=true``."""
    cases = []
    for command, argv in _commands(30, 2).items():
        fused = [*argv, "--hyper", "sgd.fused=true" if "compare" in command else "fused=true"]
        if "compare" not in command:
            fused += ["--optimizer", "sgd"]
        faults: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
            "no-compiler": ({"PATH": "/nonexistent", "CXX": ""},
                            {"codes": (2,), "says": ("needs a C++ compiler",)}),
            "false": ({"CXX": "/bin/false"}, {"codes": (2,), "says": ("exited with 1",)}),
            "missing-cxx": ({"CXX": "/nonexistent/g++", "PATH": "/nonexistent"},
                            {"codes": (2,), "says": ("needs a C++ compiler",)}),
            "hang-timeout": ({"CXX": "{folder}/hang-cxx.sh", "DESCENTLAB_COMPILE_TIMEOUT": "3"},
                             {"codes": (2,), "says": ("took longer than 3 s",),
                              "checks": (no_temporaries,)}),
        }  # fmt: skip
        for fault, (env, expect) in faults.items():
            checks = (one_error_line, *expect.pop("checks", ()))
            cases.append(Case(f"compiler/{command}/{fault}", fused, fault, env=env, **expect,
                              checks=checks))  # fmt: skip
        for sig, target in ((signal.SIGINT, "group"), (signal.SIGTERM, "launcher"),
                            (signal.SIGINT, "launcher")):  # fmt: skip
            code = 128 + sig
            cases.append(Case(f"compiler/{command}/hang-{sig.name}-{target}", fused,
                              f"a hung compiler, {sig.name} to the {target}",
                              env={"CXX": "{folder}/hang-cxx.sh"}, codes=(code,),
                              trigger="compiler", action=send(sig, target),
                              checks=(no_temporaries,)))  # fmt: skip
        cases.append(Case(f"compiler/{command}/hang-SIGKILL-then-swept", fused,
                          "a hung compiler, kill -9, then a run sweeps the temporaries",
                          env={"CXX": "{folder}/hang-cxx.sh"}, codes=(-9,),
                          trigger="compiler", action=send(signal.SIGKILL, "launcher"),
                          checks=(_swept,)))  # fmt: skip
        for damage in ("link", "folder", "truncated", "sidecar-folder", "garbage"):
            cases.append(Case(f"compiler/{command}/cache-{damage}", fused,
                              f"the cached kernel: {damage}", codes=(0, 2),
                              checks=(_damaged(damage),)))  # fmt: skip
    return cases


def _swept(case: Case, run: Run) -> str | None:
    """After a kill -9 mid-compile, a fresh command leaves no temporary in the cache."""
    left = [p for p in (run.folder / "cache" / "fused").glob("*") if p.is_dir()]
    if not left:
        return "the kill left no temporary to sweep (nothing tested)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FAULT_FLAGS": str(run.flags),
           "FAULT_TAG": run.tag, "DESCENTLAB_CACHE": str(run.folder / "cache")}  # fmt: skip
    argv = ["train", "--problem", "moons", "--steps", "2", "--optimizer", "sgd", "--hyper",
            "fused=true", "--no-progress", "--runs-dir", "r2"]  # fmt: skip
    proc = subprocess.run([PYTHON, "-m", "descentlab", *argv], cwd=run.folder, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if proc.returncode != 0:
        return f"the next run: exit {proc.returncode} {_last(proc.stderr)}"
    return no_temporaries(case, run)


def _damaged(damage: str) -> Callable[[Case, Any], str | None]:
    """The case's command, run once to fill the cache, then again with the entry damaged:
    rebuilt with one warning naming the file, or one line naming it."""

    def check(case: Case, run: Run) -> str | None:
        cache = run.folder / "cache" / "fused"
        libs = sorted(cache.glob("k_*.so"))
        if run.code != 0 or not libs:
            return f"the first run: exit {run.code} {_last(run.err)}"
        lib = libs[0]
        side = lib.with_suffix(".json")
        if damage == "link":
            lib.unlink()
            lib.symlink_to(side)
        elif damage == "folder":
            lib.unlink()
            lib.mkdir()
        elif damage == "truncated":
            lib.write_bytes(lib.read_bytes()[:100])
        elif damage == "garbage":
            lib.write_bytes(b"\x7fELF" + b"\0" * 64)
        elif damage == "sidecar-folder":
            side.unlink()
            side.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FAULT_FLAGS": str(run.flags),
               "FAULT_TAG": run.tag, "DESCENTLAB_CACHE": str(run.folder / "cache")}  # fmt: skip
        argv = [a if a != "r" else "r2" for a in case.argv]
        proc = subprocess.run([PYTHON, "-m", "descentlab", *argv], cwd=run.folder, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        if "Traceback" in proc.stderr:
            return "a traceback"
        if proc.returncode == 0:
            if str(lib) not in proc.stderr or "rebuilding it" not in proc.stderr:
                return f"rebuilt without the line naming {lib.name}: {_last(proc.stderr)}"
            return None
        if proc.returncode == 2 and str(lib) in proc.stderr:
            return None
        return f"exit {proc.returncode}: {_last(proc.stderr)}"

    return check


def user_code_cases() -> list[Case]:
    """User code's misbehaviours x train, compare, train --nproc 2."""
    cases = []
    for command, argv in _commands(6, 2).items():
        sharded = "nproc" in command
        base = [a for a in argv if a != "--checkpoint-every" and a != "5"]

        def on(fn: str, *more: str, base: list[str] = base) -> list[str]:
            return [*[a if a != "prob.py:make" else f"prob.py:{fn}" for a in base], *more]

        cases += [
            Case(f"user/{command}/chdir", on("chdir"), "os.chdir('/') in the problem function",
                 checks=(store_here,)),
            Case(f"user/{command}/thread", on("thread"), "a non-daemon thread left running",
                 says=("user-poller",), checks=(names_thread_once,)),
            Case(f"user/{command}/prints-json", on("prints", "--json"),
                 "print() in the problem function under --json", checks=(json_stdout,)),
            Case(f"user/{command}/helper-module", on("helper"),
                 "imports a module next to the problem file"),
        ]  # fmt: skip
        fails = {
            "raise": ("model boom", (2,)),
            "exit": ("sys.exit(3)", (2,)),
            "os_exit": ("4", (2,)),
            "interrupt": ("KeyboardInterrupt", (2,)),
        }
        for what, (says, codes) in fails.items():
            opts = ["--problem-option", f"what={what!r}", "--problem-option",
                    f"on={1 if sharded else 0}"]  # fmt: skip
            cases.append(Case(f"user/{command}/model-{what}", on("make", *opts),
                              f"the model's forward: {what} (rank {1 if sharded else 0})",
                              codes=codes, says=(says,), checks=(one_error_line,)))  # fmt: skip
        if sharded:
            for what in ("hang", "barrier"):
                opts = ["--problem-option", f"what={what!r}", "--rank-timeout", "10"]
                says = "rank 1 in user code at forward (" if what == "hang" else "rank 1"
                cases.append(Case(f"user/{command}/rank1-{what}", on("make", *opts),
                                  f"rank 1 {what}s in user code, --rank-timeout 10",
                                  codes=(2,), says=(says,), after=40, trigger="ready",
                                  ranks=1, action=lambda c, r: None,
                                  checks=(one_error_line,)))  # fmt: skip
        if not sharded:
            for opts, says in (
                (["workers=0", "interrupt=37"], "example 37"),
                (["workers=2", "interrupt=37"], "example 37"),
                (["workers=1", "timeout=-1"], "timeout"),
                (["workers=1", "init_fails=True"], "worker_init_fn"),
                (["one_member=True"], "class 2"),
            ):
                more = [x for o in opts for x in ("--problem-option", o)]
                name = "-".join(o.split("=")[0] + o.split("=")[1] for o in opts)
                cases.append(Case(f"user/{command}/loader-{name}", on("loader", *more),
                                  f"loader problem: {', '.join(opts)}", codes=(2,),
                                  says=("problem 'prob'", says),
                                  checks=(one_error_line,)))  # fmt: skip
            cases.append(Case(f"user/{command}/tensors-one-member", on("tensors_one_member"),
                              "a class with one member (tensors)", codes=(2,),
                              says=("class 2",), checks=(one_error_line,)))  # fmt: skip
    return cases


def loader_cases() -> list[Case]:
    """Ctrl-C (and SIGTERM) with 1 to 3 loader workers hung on the first, one or every item."""
    cases = []
    for command, argv in _commands(40, 2).items():
        if "nproc" in command:
            continue
        for workers in (1, 2, 3):
            for hang in ("0", "7", "'all'"):
                for sig, target in ((signal.SIGINT, "group"), (signal.SIGTERM, "launcher")):
                    more = ["--problem-option", f"workers={workers}", "--problem-option",
                            f"hang={hang}"]  # fmt: skip
                    run = [*[a if a != "prob.py:make" else "prob.py:loader" for a in argv], *more]
                    code = 128 + sig
                    cases.append(Case(
                        f"loader/{command}/workers{workers}/hang{hang.strip(chr(39))}/"
                        f"{sig.name}-{target}", run,
                        f"{workers} loader worker(s), item {hang} hangs, {sig.name} to the "
                        f"{target}", codes=(code,), trigger="hung",
                        action=send(sig, target)))  # fmt: skip
            # Ctrl-C once the loop has used the batches fetched before the hang and waits
            # for the hung one (a signal at the hang itself finds it between steps)
            loader = [a if a != "prob.py:make" else "prob.py:loader" for a in argv]
            cases.append(Case(
                f"loader/{command}/workers{workers}/hang7-waiting/SIGINT-group",
                [*loader, "--problem-option", f"workers={workers}", "--problem-option", "hang=7"],
                f"{workers} loader worker(s), item 7 hangs, SIGINT to the group 3 s later",
                codes=(128 + signal.SIGINT,), trigger="hung",
                action=later(3.0, send(signal.SIGINT, "group"))))  # fmt: skip
    return cases


def checkpoint_loads(case: Case, run: Run) -> str | None:
    """The checkpoint kept is whole (its checksum holds) and from a step before the fault."""
    sys.path.insert(0, str(ROOT / "src"))
    from descentlab.engine.checkpoint import load_checkpoint

    try:
        step = load_checkpoint(run.folder / "r" / "checkpoints" / "run-1.pt").get("step")
    except Exception as exc:  # what a damaged checkpoint says
        return f"the checkpoint does not load: {exc}"
    return None if isinstance(step, int) and 0 < step < 12 else f"the checkpoint's step {step}"


def device_cases(device: str) -> list[Case]:
    """``train --nproc 1 --device D``: stops and kills at a step boundary, the device running
    out of memory in the user's model mid-run (after the checkpoint of step 10), with ``--nproc
    1`` and without, and (on CUDA) more processes than GPUs refused. (``--nproc 1`` trains in
    the launcher's own process, with no process group: NCCL needs two GPUs, one a rank.)"""
    argv = [*_commands(2000, 1)["train-nproc1"], "--device", device]
    cases = []
    for sig, target in ((signal.SIGINT, "launcher"), (signal.SIGINT, "group"),
                        (signal.SIGTERM, "launcher"), (signal.SIGTERM, "group")):  # fmt: skip
        cases.append(Case(f"device/train-nproc1/{sig.name}/{target}/ready", argv,
                          f"{sig.name} to the {target} ({device})", codes=(128 + sig,),
                          says=("stopped at step", "--resume 1"), trigger="ready",
                          action=send(sig, target), checks=(checkpoint_kept,)))  # fmt: skip
    cases.append(Case("device/train-nproc1/SIGTERM/launcher/resumed",
                      [a if a != "2000" else "200" for a in argv],
                      f"SIGTERM to the launcher ({device}), then --resume 1",
                      codes=(128 + signal.SIGTERM,), says=("stopped at step",), trigger="ready",
                      action=send(signal.SIGTERM, "launcher"),
                      checks=(checkpoint_kept, resumes)))  # fmt: skip
    cases.append(Case("device/train-nproc1/SIGKILL/launcher/ready", argv,
                      f"SIGKILL to the launcher ({device})", codes=(-9,), trigger="ready",
                      action=send(signal.SIGKILL, "launcher")))  # fmt: skip
    if device.startswith("cuda"):  # one process a GPU: more than the machine has, refused
        import torch

        n = torch.cuda.device_count() + 1
        more = [a if a != "1" else str(n) for a in argv]
        cases.append(Case(f"device/train-nproc{n}/more-than-the-gpus", more,
                          f"--nproc {n} with {n - 1} GPU(s)", codes=(2,),
                          says=(f"needs {n} GPUs",), checks=(one_error_line,)))  # fmt: skip
    oom = ["--problem-option", "what='oom'", "--problem-option", "on=0", "--problem-option",
           "at=12"]  # fmt: skip
    short = [a if a != "2000" else "40" for a in argv]
    plain = [a for a in short if a not in ("--nproc", "1")]
    for name, run in (("train-nproc1", short), ("train", plain)):
        cases.append(Case(f"device/{name}/out-of-memory", [*run, *oom],
                          f"the user's model asks 16 TiB of the {device} at step 12",
                          codes=(2,), says=("out of memory",),
                          checks=(one_error_line, checkpoint_loads)))  # fmt: skip
    return cases


def all_cases(device: str | None = None) -> list[Case]:
    if device is not None:
        return device_cases(device)
    return [*signal_cases(), *compiler_cases(), *user_code_cases(), *loader_cases()]


# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run the cases whose name contains this (comma: any)")
    parser.add_argument("--list", action="store_true", help="list the cases' names")
    parser.add_argument("--jobs", type=int, default=1, help="cases at once (default 1)")
    parser.add_argument("--table", help="also write the table (Markdown) to this file")
    parser.add_argument("--keep", help="keep each case's folder under this folder")
    parser.add_argument("--device", help="the device cases alone, on this device (cpu: a "
                        "check of the script)")  # fmt: skip
    args = parser.parse_args(argv)
    cases = all_cases(args.device)
    if args.only:
        words = args.only.split(",")
        cases = [c for c in cases if any(w in c.name for w in words)]
    if args.list:
        print("\n".join(c.name for c in cases))
        print(f"{len(cases)} cases")
        return 0
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    rows = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_case, c, keep): c for c in cases}
        for future in concurrent.futures.as_completed(futures):
            case = futures[future]
            held, said, seconds = future.result()
            rows.append((case, held, said, seconds))
            mark = "held" if held else "NOT HELD"
            print(f"{mark:8} {seconds:6.1f} s  {case.name}: {said}", flush=True)
    rows.sort(key=lambda r: cases.index(r[0]))
    held = sum(r[1] for r in rows)
    table = ["| case | what was done | held | what it showed | s |", "|---|---|---|---|---|"]
    for case, ok, said, seconds in rows:
        said = re.sub(r"/tmp/fault-\w+", "<case>", said).replace("|", "\\|")
        table.append(f"| `{case.name}` | {case.what} | {'yes' if ok else '**no**'} | "
                     f"{said} | {seconds:.0f} |")  # fmt: skip
    table.append(f"\n{held} of {len(rows)} cases held.")
    print("\n".join(table))
    if args.table:
        Path(args.table).write_text("\n".join(table) + "\n", encoding="utf-8")
    return 0 if held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
