"""Nothing lost, more kinds of fault: a dead worker or a trial whose code raises ends that trial
alone (stored failed, with its cause; the comparison goes on); a stop is obeyed whatever signal
handlers user code installs; a path read from a store stays in its run folder; a process is
known by its pid and its start time; stored text reaches the terminal escaped.

Each case runs ``descentlab`` as a user would, in its own process, on iris and a small network
(about 2 s a comparison); the cases are tables, and docs/files-and-faults.md counts them
("Nothing lost: more kinds")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _fault_folder import SRC, fault_env, fault_folder

pytestmark = pytest.mark.process  # every case runs the commands as processes


OBJECTIVE = """
import os, signal, time
from pathlib import Path

import torch
from torch import nn
from descentlab import Score
from sklearn.datasets import load_iris

x, y = load_iris(return_X_y=True)
X = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
Y = torch.tensor(y)
F = nn.functional
FLAGS = Path(os.environ.get("FAULT_FLAGS", "."))


def loop(run, lose=None, sleep=0.0):
    torch.manual_seed(run.seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = run.optimizer(model.parameters())
    for step in range(run.steps):
        opt.zero_grad()
        out = model(X)
        if lose is not None and lose(run):  # a loss that refuses what diverged (BCE's check)
            F.binary_cross_entropy(torch.sigmoid(out * float("nan")), F.one_hot(Y, 3).float())
        F.cross_entropy(out, Y).backward()
        opt.step()
        if sleep:
            (FLAGS / f"ready-{os.getpid()}").touch()
            time.sleep(sleep)
    with torch.no_grad():
        return Score(float((model(X).argmax(1) == Y).float().mean()), maximize=True, name="acc")


def plain(run):
    return loop(run)


def top_lr(run):
    return run.label == "sgd" and run.hyper["lr"] >= 10


def raises_at_one_lr(run):
    return loop(run, top_lr)


def raises_always(run):
    return loop(run, lambda r: r.label == "sgd")


def exits_at_one_lr(run):
    if top_lr(run):
        os._exit(0)
    return loop(run)


def sleeps(run):  # the test kills the worker of SGD's top lr
    return loop(run, sleep=0.3 if top_lr(run) else 0.0)


def own_sigterm(run):  # SLURM-aware code: a handler that notes the signal and goes on
    signal.signal(signal.SIGTERM, lambda s, f: None)
    return loop(run, sleep=0.2)


def ignores_sigint(run):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return loop(run, sleep=0.2)


def blocks_stops(run):  # the stops held back in this thread: pending, never delivered here
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    return loop(run, sleep=0.2)


def segv_at_one_lr(run):
    if top_lr(run):
        os.kill(os.getpid(), signal.SIGSEGV)
    return loop(run)


def format_chars_at_one_lr(run):  # an error whose text turns the line round and hides parts
    if top_lr(run):
        raise ValueError("\\u200fboom\\u2066\\x1b[2J\\ufeff\\u061c")
    return loop(run)
"""

#: a comparison of few trials (``--objective FILE:NAME``, ``--runs-dir`` added)
COMPARE = ["compare", "--optimizers", "sgd,adam", "--steps", "30", "--lr-trials", "3",
           "--seeds", "2", "--max-seeds", "2", "--no-report", "--no-progress"]  # fmt: skip


@pytest.fixture
def case(tmp_path):
    return fault_folder(tmp_path, "obj.py", OBJECTIVE)


def _cmd(name: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "descentlab", *COMPARE, "--objective", f"obj.py:{name}",
            "--workers", str(workers), "--runs-dir", "r"]  # fmt: skip


def _run(folder: Path, argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=folder, env=fault_env(folder), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _failed_runs(folder: Path) -> list[tuple[str, str]]:
    (store,) = (folder / "r").glob("*/descentlab.sqlite")
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT name, message FROM runs WHERE status = 'failed'").fetchall()
    return [(n, m) for n, m in rows]


def _ready(folder: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    """The pid of the first process whose trial has trained a step (its flag)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flags = list((folder / "flags").glob("ready-*"))
        if flags:
            return int(flags[0].name.split("-")[1])
        if proc.poll() is not None:
            raise AssertionError(f"ended before it trained: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("never ready")


# ------------------------------------------------------------------------------------------
# a failing trial is a result; a dead worker ends one trial

#: (objective, workers, the cause stored with the one failed trial)
ONE_FAILS = [
    ("raises_at_one_lr", 1, "RuntimeError: all elements of input should be between 0 and 1 "
     "in loop (<case>/obj.py:25)"),
    ("raises_at_one_lr", 2, "RuntimeError: all elements of input should be between 0 and 1 "
     "in loop (<case>/obj.py:25)"),
    ("exits_at_one_lr", 2, "the worker running it died: exited 0 before returning"),
    ("segv_at_one_lr", 2, "the worker running it died: signal 11 (SIGSEGV)"),
    ("segv_at_one_lr", 3, "the worker running it died: signal 11 (SIGSEGV)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "workers", "cause"), ONE_FAILS,
                         ids=[f"{r[0]}-workers{r[1]}" for r in ONE_FAILS])  # fmt: skip
def test_a_failing_trial_is_a_result_and_the_comparison_goes_on(case, name, workers, cause):
    proc = _run(case, _cmd(name, workers))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "__main__" not in proc.stderr, proc.stderr
    assert "use Adam" in proc.stdout, proc.stdout
    ((run, message),) = _failed_runs(case)
    assert run == "tune/sgd/holdout" and message == cause.replace("<case>", str(case))
    (said,) = [ln for ln in proc.stderr.splitlines() if "failed:" in ln]
    assert "'tune/sgd/holdout' (lr 10)" in said and message in said, said
    assert "1 failed" in proc.stdout + proc.stderr  # counted with the failures


def test_a_worker_killed_ends_its_trial_alone(case):
    proc = subprocess.Popen(_cmd("sleeps", 2), cwd=case, env=fault_env(case), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        os.kill(_ready(case, proc), signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "__main__" not in err, err
    assert _failed_runs(case) == [
        ("tune/sgd/holdout", "the worker running it died: signal 9 (SIGKILL)")
    ]
    assert "use Adam" in out


@pytest.mark.parametrize("workers", [1, 2])
def test_every_trial_failing_the_same_way_stops_in_one_line(case, workers):
    proc = _run(case, _cmd("raises_always", workers))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        "descentlab: error: every tuning trial of SGD failed the same way (3 of 3): objective "
        f"{case}/obj.py:raises_always (trial tune/sgd/holdout, seed 0) failed: RuntimeError: all "
        f"elements of input should be between 0 and 1 in loop ({case}/obj.py:25)"
    ), proc.stderr


# ------------------------------------------------------------------------------------------
# a stop is obeyed whatever handlers user code installs

#: (objective, command, the signal sent to the command, its exit status)
OWN_HANDLERS = [
    ("own_sigterm", "compare", signal.SIGTERM, 143),
    ("ignores_sigint", "compare", signal.SIGINT, 130),
    ("blocks_stops", "compare", signal.SIGTERM, 143),
    ("blocks_stops", "compare", signal.SIGINT, 130),
    ("own_sigterm", "scale", signal.SIGTERM, 143),
    ("blocks_stops", "scale", signal.SIGINT, 130),
]


def _command(name: str, command: str) -> list[str]:
    if command == "compare":
        return _cmd(name, 1)
    return [sys.executable, "-m", "descentlab", "scale", *COMPARE[1:], "--objective",
            f"obj.py:{name}", "--sizes", "4,8,16", "--workers", "1", "--runs-dir", "r"]  # fmt: skip


@pytest.mark.parametrize(("name", "command", "signum", "status"), OWN_HANDLERS,
                         ids=[f"{r[0]}-{r[1]}-{r[2].name}" for r in OWN_HANDLERS])  # fmt: skip
def test_a_stop_is_obeyed_whatever_handler_user_code_installs(case, name, command, signum,
                                                              status):  # fmt: skip
    proc = subprocess.Popen(_command(name, command), cwd=case, env=fault_env(case), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _ready(case, proc)
        time.sleep(0.5)  # (the trial is inside the user's loop, its handler installed)
        sent = time.monotonic()
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert seconds < 10, seconds
    assert f"stopped by {signal.Signals(signum).name}" in err.strip().splitlines()[-1], err
    assert "Traceback" not in err, err


def test_descentlab_reached_through_a_linked_folder_keeps_its_own_handlers(case):
    """descentlab imported through a link (``PYTHONPATH`` naming a linked folder, as an
    editable install in a linked checkout does): its own SIGTERM handler is its own, not user
    code's set aside (said as such before)."""
    (case / "src").symlink_to(SRC)
    argv = _cmd("plain", 1)
    proc = subprocess.run(argv, cwd=case, env={**fault_env(case), "PYTHONPATH": str(case / "src")},
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "a handler of its own" not in proc.stderr, proc.stderr


# ------------------------------------------------------------------------------------------
# a path read from a store is data: it stays in the store's folder


def _forge(folder: Path, how: str) -> str:
    """Point run 1's recorded checkpoint at ``victim.txt`` beside the run folder, and leave
    the run interrupted (resumable)."""
    if how == "symlink":
        (folder / "r" / "checkpoints" / "link.pt").symlink_to(folder / "victim.txt")
        path = "checkpoints/link.pt"
    else:
        path = {"dotdot": "../victim.txt", "absolute": str(folder / "victim.txt")}[how]
    with sqlite3.connect(folder / "r" / "descentlab.sqlite") as conn:
        conn.execute("UPDATE artifacts SET path = ?", (path,))
        conn.execute("UPDATE runs SET status = 'interrupted'")
    return path


TRAIN = [sys.executable, "-m", "descentlab", "train", "--problem", "moons", "--steps", "10",
         "--no-progress", "--runs-dir", "r"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder whose run 1 trained 5 of its steps (and checkpointed), once for the cases
    below."""
    folder = tmp_path_factory.mktemp("trained")
    assert _run(folder, [*TRAIN, "--until-step", "5"]).returncode == 0
    return folder / "r"


@pytest.mark.parametrize("restart", [False, True], ids=["resume", "restart"])
@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_a_path_from_a_store_never_leads_out_of_its_folder(trained, tmp_path, how, restart):
    shutil.copytree(trained, tmp_path / "r")
    (tmp_path / "victim.txt").write_text("precious")
    recorded = _forge(tmp_path, how)
    again = [*TRAIN[:4], "--resume", "1", *(["--restart"] if restart else []), "--runs-dir", "r",
             "--no-progress"]  # fmt: skip
    proc = _run(tmp_path, again)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("descentlab: error: ") and repr(recorded) in line, line
    assert "leads outside the store's folder" in line, line
    assert (tmp_path / "victim.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "victim.txt"]


#: a path that resolves inside the run folder is followed: (how the folder is given or the
#: checkpoint recorded)
INSIDE = ["the run folder a link", "checkpoints/../checkpoints/run-1.pt"]


@pytest.mark.parametrize("how", INSIDE)
def test_a_path_that_resolves_inside_the_folder_is_followed(trained, tmp_path, how):
    shutil.copytree(trained, tmp_path / "real")
    runs_dir = "real"
    if how == "the run folder a link":
        (tmp_path / "r").symlink_to(tmp_path / "real")
        runs_dir = "r"
    else:
        with sqlite3.connect(tmp_path / "real" / "descentlab.sqlite") as conn:
            conn.execute("UPDATE artifacts SET path = ?", (how,))
    again = [*TRAIN[:4], "--resume", "1", "--runs-dir", runs_dir, "--no-progress"]
    proc = _run(tmp_path, again)
    assert proc.returncode == 0, proc.stderr
    assert "run 1: completed after 10 steps" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A finished comparison's run folder (``plain``), once for the cases below."""
    folder = tmp_path_factory.mktemp("compared")
    (folder / "obj.py").write_text(OBJECTIVE)
    (folder / "flags").mkdir()
    assert _run(folder, _cmd("plain", 1)).returncode == 0
    return folder


def _victims(folder: Path) -> tuple[Path, Path]:
    (folder / "victim.txt").write_text("precious")
    (folder / "elsewhere").mkdir()
    return folder / "victim.txt", folder / "elsewhere"


def test_a_lock_file_linked_out_of_the_run_folder_is_refused(compared, tmp_path):
    """The run folder's ``.lock`` replaced by a link to a user's file: the comparison run
    again refuses it in one line (it wrote its pid and command line into that file)."""
    shutil.copytree(compared, tmp_path, dirs_exist_ok=True)
    victim, _ = _victims(tmp_path)
    (lock,) = (tmp_path / "r").glob("*/.lock")
    lock.unlink()
    lock.symlink_to(victim)
    proc = _run(tmp_path, _cmd("plain", 1))
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"cannot write {lock}: it is a symbolic link" in line, proc.stderr
    assert victim.read_text() == "precious"


def test_a_checkpoints_folder_linked_out_of_the_run_folder_is_refused(trained, tmp_path):
    """``checkpoints/`` replaced by a link to a folder elsewhere: a new run refuses it in one
    line before it is recorded (it wrote its checkpoint there), and the store is left as it
    was."""
    shutil.copytree(trained, tmp_path / "r")
    _, elsewhere = _victims(tmp_path)
    shutil.rmtree(tmp_path / "r" / "checkpoints")
    (tmp_path / "r" / "checkpoints").symlink_to(elsewhere)
    proc = _run(tmp_path, [*TRAIN, "--checkpoint-every", "5"])
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "its 'checkpoints' leads outside the store's folder" in line, line
    assert not list(elsewhere.iterdir())
    with sqlite3.connect(tmp_path / "r" / "descentlab.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)


# ------------------------------------------------------------------------------------------
# a process is known by its pid and its start time


def test_a_reused_pid_neither_blocks_a_resume_nor_counts_as_the_run(trained, tmp_path):
    """Run 1 left ``running`` by a process long gone whose pid the system has since given to
    an unrelated process: ``runs`` says no process is behind it, and ``--resume`` continues it."""
    shutil.copytree(trained, tmp_path / "r")
    other = subprocess.Popen(["sleep", "120"])
    try:
        with sqlite3.connect(tmp_path / "r" / "descentlab.sqlite") as conn:
            (prov,) = conn.execute("SELECT provenance FROM runs WHERE id = 1").fetchone()
            prov = json.loads(prov)
            started = int(Path(f"/proc/{other.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
            prov.update(pid=other.pid, pid_started=started - 1000, hostname=socket.gethostname())
            conn.execute("UPDATE runs SET status = 'running', provenance = ? WHERE id = 1",
                         (json.dumps(prov),))  # fmt: skip
        runs = _run(tmp_path, [sys.executable, "-m", "descentlab", "runs", "r"])
        assert "no process behind it" in runs.stdout, runs.stdout + runs.stderr
        again = [*TRAIN[:4], "--resume", "1", "--runs-dir", "r", "--no-progress"]
        proc = _run(tmp_path, again)
        assert proc.returncode == 0, proc.stderr
        assert other.poll() is None  # (never signalled)
    finally:
        other.kill()
        other.wait()


# ------------------------------------------------------------------------------------------
# stored text reaches the terminal escaped

#: a name and a message written into a store: a window title, a screen cleared, a line rewritten
EVIL_NAME = "run\x1b]0;pwned\x07\x1b[2J"
EVIL_MESSAGE = "fine\r\x1b[31mhidden\x1b[0m\u202e"


#: Unicode's other characters that are not printed as themselves: a right-to-left mark, an
#: isolate, a byte-order mark, an Arabic letter mark, a zero-width space, a tag character
FORMAT_NAME = "run\u200f\u2066name\ufeff\u061c\u200b\U000e0041"
FORMAT_ESCAPED = "run\\u200f\\u2066name\\ufeff\\u061c\\u200b\\U000e0041"


@pytest.mark.parametrize("show", [False, True], ids=["list", "show"])
def test_stored_text_is_printed_escaped(trained, tmp_path, show):
    shutil.copytree(trained, tmp_path / "r")
    with sqlite3.connect(tmp_path / "r" / "descentlab.sqlite") as conn:
        conn.execute("UPDATE runs SET name = ?, message = ?", (EVIL_NAME, EVIL_MESSAGE))
    argv = [sys.executable, "-m", "descentlab", "runs", "r", *(["--show", "1"] if show else [])]
    proc = _run(tmp_path, argv)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert not any(c in text for c in "\x1b\x07\r\u202e"), repr(text)
    assert "run\\x1b]0;pwned\\x07\\x1b[2J" in text, text
    if show:  # (the list cuts a note to its first line)
        assert "fine\\x0d\\x1b[31mhidden\\x1b[0m\\u202e" in text, text


@pytest.mark.parametrize("show", [False, True], ids=["list", "show"])
def test_format_characters_in_stored_text_are_printed_escaped(trained, tmp_path, show):
    shutil.copytree(trained, tmp_path / "r")
    with sqlite3.connect(tmp_path / "r" / "descentlab.sqlite") as conn:
        conn.execute("UPDATE runs SET name = ?", (FORMAT_NAME,))
    argv = [sys.executable, "-m", "descentlab", "runs", "r", *(["--show", "1"] if show else [])]
    proc = _run(tmp_path, argv)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert not {c for c in FORMAT_NAME if not c.isprintable()} & set(text), repr(text)
    assert FORMAT_ESCAPED in text, text


def test_an_error_of_user_code_is_printed_escaped(case):
    """The failed trial's line of ``compare`` quotes the user's error: its format characters
    and escape sequences escaped."""
    proc = _run(case, _cmd("format_chars_at_one_lr", 1))
    assert proc.returncode == 0, proc.stderr
    assert not set("\x1b\u200f\u2066\ufeff\u061c") & set(proc.stderr), repr(proc.stderr)
    assert "ValueError: \\u200fboom\\u2066\\x1b[2J\\ufeff\\u061c in" in proc.stderr


# ------------------------------------------------------------------------------------------
# smaller ones


def test_a_store_replaced_by_a_folder_is_called_a_folder(case):
    assert _run(case, _cmd("plain", 1)).returncode == 0
    (store,) = (case / "r").glob("*/descentlab.sqlite")
    for side in store.parent.glob("descentlab.sqlite*"):
        side.unlink()
    store.mkdir()
    proc = _run(case, _cmd("plain", 1))
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{store} is a folder, not a store" in line and "missing" not in line, proc.stderr


# ------------------------------------------------------------------------------------------
# check-optimizer's FSDP2 ranks belong to their command

CHECK = [sys.executable, "-m", "descentlab", "check-optimizer", "sgd", "--checks", "sharded"]


def _ranks(pid: int, n: int, timeout: float = 120) -> list[int]:
    """The pids of the ``n`` rank processes the command ``pid`` started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ranks = [int(k) for k in kids if "optimizer_check" in _cmdline(int(k))]
        if len(ranks) >= n:
            return ranks
        time.sleep(0.05)
    raise AssertionError("no ranks")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_a_rank_that_dies_is_named(tmp_path):
    env = {**fault_env(tmp_path), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(CHECK, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        os.kill(_ranks(proc.pid, 2)[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=400)
    finally:
        proc.kill()
    assert proc.returncode == 1, out + err
    assert "FSDP2" in out and "rank 1 was killed by SIGKILL" in out, out
    assert "Connection closed" not in out, out
    assert not list(tmp_path.glob("descentlab-fsdp-check-*")), list(tmp_path.iterdir())


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet waited for, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_check_optimizer_ends_its_ranks_and_leaves_no_folder(tmp_path):
    """Within seconds of ``kill -9`` of the command, no rank runs and its temporary folder is
    gone (its reaper, which outlives it, removes it: no later command needed)."""
    (tmp_path / "tmp").mkdir()
    env = {**fault_env(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.Popen(CHECK, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        ranks = _ranks(proc.pid, 2)
        assert list((tmp_path / "tmp").glob("descentlab-fsdp-check-*"))  # (made: the case's)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            any(map(_alive, ranks)) or list((tmp_path / "tmp").glob("descentlab-*"))
        ):
            time.sleep(0.1)
    finally:
        proc.kill()
    assert not [r for r in ranks if _alive(r)]
    left = [p.name for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("torchinductor")]
    assert not left  # no temporary folder of the check is left (torch's own cache aside)


# ------------------------------------------------------------------------------------------
# a reader never waits for a writer

#: a writer that records run 1, then holds the store's write lock with run 2 half-written
WRITER = """
import sys, time
from descentlab.store import Store
store = Store(sys.argv[1])
store.create_run({"lr": 0.1}, name="done", status="completed")
with store.transaction():
    store.create_run({"lr": 0.2}, name="half-written")
    print("holding", flush=True)
    time.sleep(120)
"""

#: ``descentlab runs`` in a fresh process: its output, its seconds, whether it imported torch
READER = """
import contextlib, io, json, sys, time
from descentlab.cli import main
out = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(out):
    code = main(["runs", sys.argv[1]])
seconds = time.perf_counter() - start
print(json.dumps({"code": code, "out": out.getvalue(), "seconds": seconds,
                  "torch": "torch" in sys.modules}))
"""


def test_runs_reads_a_store_being_written_without_waiting(tmp_path):
    """``descentlab runs`` while another process holds the store's write lock: it reads the
    last committed state at once (SQLite's WAL: a reader never waits for a writer) and loads
    nothing it does not need (torch's import, seconds while a comparison keeps the cores busy)."""
    store = tmp_path / "descentlab.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store)], env=fault_env(tmp_path),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "holding"
        proc = _run(tmp_path, [sys.executable, "-c", READER, str(store)], timeout=60)
    finally:
        writer.kill()
        writer.wait()
    read = json.loads(proc.stdout.strip().splitlines()[-1])
    assert read["code"] == 0, proc.stderr
    assert "done" in read["out"] and "half-written" not in read["out"], read["out"]
    assert not read["torch"]  # (the command's module alone, not every command's)
    assert read["seconds"] < 2, read["seconds"]
