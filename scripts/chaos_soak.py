"""Chaos soak: kill descentlab with SIGKILL at random moments, run it again, check what is left.

For each workload -- a small comparison, a comparison whose trials are killed mid-run
(``midtrial``), a training run, one page of the lecture book -- the
script first runs it once uninterrupted (the reference), then, in a fresh folder, starts it,
kills the main process with ``SIGKILL`` after a random delay (uniform over the reference's
duration), and checks after each kill that

- no process of that run is left (workers die with their parent),
- the store, if there is one, passes SQLite's ``PRAGMA integrity_check``,

then starts it again (a comparison and the book continue where they were -- ``midtrial``'s
unfinished trials from their last checkpoints, counted as ``resumed_mid_trial``; a training run
is resumed with ``train --resume``). A run may reach its end between two kills: that is a valid
outcome, its result is checked like the final one, and the next kill hits a fresh training
run. After the kills it runs the workload to its end and checks that the result equals the
reference: the comparison's table (without its wall-clock columns), each training run's
final status and summary as the store holds them (without wall-clock values), the page's
deterministic content (its tables and checks, without anything measured in seconds).

Bounded in time: ``--budget`` seconds in all (default 1,500); a workload stops killing when its
share is spent. Not part of the test suite (it takes minutes). Run::

    python scripts/chaos_soak.py                      # 20 kills for each workload
    python scripts/chaos_soak.py --kills 5 --only compare --seed 1
    python scripts/chaos_soak.py --kills 10 --only midtrial
    python scripts/chaos_soak.py --kills 10 --only midtrial-ray   # on a local Ray instance
    python scripts/chaos_soak.py --only compare,lectures --budget 2200 --record docs/chaos_soak.json

Exit status 0 when every check held (all kills made, and each check); the last line gives
the counts, and ``--record docs/chaos_soak.json`` appends them to the recorded runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}

COMPARE = [
    "compare", "--problem", "moons", "--problem-option", "n_samples=300", "--model", "mlp",
    "--model-option", "hidden=8", "--optimizers", "sgd,momentum,adam", "--batch-size", "16",
    "--steps", "20", "--tune-steps", "10", "--lr-trials", "2", "--seeds", "2",
    "--landscapes", "none", "--no-progress", "--no-report", "--workers", "2", "--json",
    "--runs-dir", "runs", "--name", "soak",
]  # fmt: skip
TRAIN = [
    "train", "--problem", "moons", "--problem-option", "n_samples=400", "--model", "mlp",
    "--model-option", "hidden=16", "--optimizer", "adam", "--lr", "0.01", "--batch-size",
    "16", "--steps", "300", "--checkpoint-every", "20", "--no-progress", "--json",
    "--runs-dir", "runs", "--threads", "1",
]  # fmt: skip
LECTURE = ["lectures", "--quick", "--only", "001", "--out", "book"]
# Trials long enough to be killed inside (each checkpoints every 10 of its 200 steps and
# trains alone): a re-run continues each unfinished trial from its last checkpoint.
MIDTRIAL = [
    "compare", "--problem", "moons", "--problem-option", "n_samples=300", "--model", "mlp",
    "--model-option", "hidden=8", "--optimizers", "sgd,adam", "--batch-size", "16",
    "--steps", "200", "--tune-steps", "200", "--lr-trials", "2", "--seeds", "2",
    "--no-refine", "--landscapes", "none", "--no-progress", "--no-report", "--workers", "2",
    "--json", "--runs-dir", "runs", "--name", "soak", "--checkpoint-every", "10",
]  # fmt: skip
# The same on the Ray backend (a local Ray instance the command starts): each checkpoint a
# Ray task writes is kept on this machine, and a re-run continues the trial from it.
MIDTRIAL_RAY = [*MIDTRIAL[: MIDTRIAL.index("--workers")], *MIDTRIAL[MIDTRIAL.index("--json") :],
                "--backend", "ray"]  # fmt: skip
#: What a local Ray instance leaves behind when its driver is killed with SIGKILL (Ray 2.60:
#: its agents outlive the raylet): counted apart from descentlab's own processes, and ended.
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "descentlab", *argv], cwd=cwd, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _finish(argv: list[str], cwd: Path) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    proc = _start(argv, cwd)
    out, err = proc.communicate(timeout=1800)
    return proc.returncode, out, err, time.perf_counter() - t0


def _leftovers(cwd: Path, pgid: int) -> list[int]:
    """Processes still alive that belong to the killed run (same session, or whose working
    folder is the run's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            sid = int(fields[3])
            here = os.readlink(entry / "cwd")
        except (OSError, IndexError, ValueError):
            continue
        if sid == pgid or Path(here) == cwd:
            found.append(pid)
    return found


def _store_ok(path: Path) -> bool:
    if not path.exists():
        return True
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _compare_result(out: str) -> object:
    rows = json.loads(out.strip().splitlines()[-1])["rows"]
    # wall-clock columns differ from run to run; the numbers do not
    return [{k: v for k, v in r.items() if not any(w in k.lower() for w in ("s to", "second",
             "time", "wall"))} for r in rows]  # fmt: skip


def _timeless(d: dict) -> dict:
    """Without the values that depend on the clock (wall time, seconds, rates per second)."""
    return {k: v for k, v in d.items() if not any(w in k.lower() for w in _CLOCK)}


_CLOCK = ("time", "second", "elapsed", "per_s", "/s")
_ENDED = ("completed", "diverged")


def _runs(store: Path) -> list[tuple[int, str, dict | None]]:
    """(id, status, summary) of every run in the store, oldest first (read-only)."""
    if not store.exists():
        return []
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute("SELECT id, status, summary FROM runs ORDER BY id").fetchall()
    except sqlite3.Error:
        return []
    return [(i, st, None if sm is None else json.loads(sm)) for i, st, sm in rows]


def _train_result(status: str, summary: dict | None) -> object:
    return {"status": status, **_timeless(summary or {})}


def _lecture_result(cwd: Path) -> object:
    """The page's deterministic content: each experiment's table rows and checks (no
    durations: an experiment's ``seconds`` and anything measured in time are left out)."""
    data = {}
    for p in sorted((cwd / "book" / "data").glob("*.json")):
        if p.name.endswith(".key.json"):
            continue
        d = json.loads(p.read_text())
        rows = [_timeless(r) if isinstance(r, dict) else r for r in d.get("rows") or []]
        data[p.name] = (rows, d.get("checks"))
    return data


def _result(name: str, out: str, cwd: Path) -> object:
    return _lecture_result(cwd) if name == "lectures" else _compare_result(out)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _check_after_kill(name: str, k: int, cwd: Path, pid: int, store: Path, counts: dict) -> None:
    time.sleep(1.5)  # workers notice their parent's death (pipe + PDEATHSIG)
    left = _leftovers(cwd, pid)
    agents = [p for p in left if _cmdline(p).startswith(RAY_AGENTS)]
    if agents:
        counts["ray_agents_left"] = counts.get("ray_agents_left", 0) + 1
        for p in agents:
            with _suppress():
                os.kill(p, signal.SIGKILL)
        left = [p for p in left if p not in agents]
    if left:
        counts["orphans"] += 1
        named = [f"{p} {_cmdline(p)[:60]}" for p in left]
        print(f"{name}: kill {k}: processes left: {named}", flush=True)
        for p in left:
            with _suppress():
                os.kill(p, signal.SIGKILL)
    if not _store_ok(store):
        counts["damaged_stores"] += 1
        print(f"{name}: kill {k}: the store failed its integrity check", flush=True)


def _kill_at_random(argv: list[str], cwd: Path, seconds: float, rng: random.Random):
    """Start ``argv``; SIGKILL it after a random delay unless it ends first. Returns
    (process, delay, whether it ended by itself, its standard output if it did)."""
    proc = _start(argv, cwd)
    delay = rng.uniform(0.2, seconds)
    try:
        out, _ = proc.communicate(timeout=delay)
        return proc, delay, True, out
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        return proc, delay, False, ""


def soak_train(argv: list[str], kills: int, budget: float, rng: random.Random) -> dict:
    """Kill training runs and resume each until it ends. A run that ends between two kills is
    a valid outcome (the next kills hit a fresh run); every ended run's status and summary,
    as the store holds them, must equal the uninterrupted reference run's."""
    counts = {"kills": 0, "orphans": 0, "damaged_stores": 0, "reruns_failed": 0,
              "ended_runs": 0, "ended_same": 0, "same": None}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="chaos-train-ref-") as ref_dir:
        code, _out, err, seconds = _finish(argv, Path(ref_dir))
        runs = _runs(Path(ref_dir) / "runs" / "descentlab.sqlite")
        if code != 0 or len(runs) != 1 or runs[0][1] not in _ENDED:
            raise SystemExit(f"train: the reference run failed ({code}): {err[-2000:]}")
        reference = _train_result(runs[0][1], runs[0][2])
    print(f"train: reference run in {seconds:.1f} s", flush=True)
    deadline = time.monotonic() + budget
    resume = ["train", "--runs-dir", "runs", "--no-progress", "--json", "--resume"]
    seen: set[int] = set()

    def check_ended(store: Path) -> None:
        for rid, status, summary in _runs(store):
            if status in _ENDED and rid not in seen:
                seen.add(rid)
                counts["ended_runs"] += 1
                result = _train_result(status, summary)
                if result == reference:
                    counts["ended_same"] += 1
                else:
                    print(f"train: run {rid} differs from the reference:\n{result}\n"
                          f"{reference}", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="chaos-train-") as d:
        cwd = Path(d)
        store = cwd / "runs" / "descentlab.sqlite"
        k = 0
        while counts["kills"] < kills:
            if time.monotonic() > deadline:
                print(f"train: budget spent after {counts['kills']} kills", flush=True)
                break
            runs = _runs(store)
            live = runs[-1][0] if runs and runs[-1][1] not in _ENDED else None
            run_argv = argv if live is None else [*resume, str(live)]
            proc, delay, ended, _out = _kill_at_random(run_argv, cwd, seconds, rng)
            counts["kills"] += not ended
            _check_after_kill("train", k, cwd, proc.pid, store, counts)
            if ended and proc.returncode != 0:
                counts["reruns_failed"] += 1
                print(f"train: kill {k}: the run failed ({proc.returncode})", flush=True)
            check_ended(store)
            print(f"train: attempt {k}, kill {counts['kills']} after {delay:.1f} s"
                  + (" (it had ended)" if ended else ""), flush=True)  # fmt: skip
            k += 1
        runs = _runs(store)
        if not runs or runs[-1][1] not in _ENDED:  # the last run (or a first one) to its end
            final = argv if not runs else [*resume, str(runs[-1][0])]
            code, _out, err, _ = _finish(final, cwd)
            if code != 0:
                counts["reruns_failed"] += 1
                print(f"train: the final run failed ({code}): {err.strip()[-500:]}", flush=True)
        check_ended(store)
        if not _store_ok(store):
            counts["damaged_stores"] += 1
    ok = counts["ended_runs"] > 0 and counts["ended_same"] == counts["ended_runs"]
    counts["same"] = ok and counts["reruns_failed"] == 0
    return counts


def soak(name: str, argv: list[str], kills: int, budget: float, rng: random.Random) -> dict:
    """One workload's soak (the comparison or the lecture book); returns its counts.

    Keeps killing until ``kills`` runs were really killed (a run that reaches its end between
    two kills is checked against the reference like the final one, and the next kill hits a
    fresh run in an emptied folder)."""
    counts = {"kills": 0, "orphans": 0, "damaged_stores": 0, "reruns_failed": 0,
              "ended_runs": 0, "ended_same": 0, "same": None, "resumed_mid_trial": 0}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-ref-") as ref_dir:
        code, out, err, seconds = _finish(argv, Path(ref_dir))
        if code != 0:
            raise SystemExit(f"{name}: the reference run failed ({code}): {err[-2000:]}")
        reference = _result(name, out, Path(ref_dir))
    print(f"{name}: reference run in {seconds:.1f} s", flush=True)
    deadline = time.monotonic() + budget

    def check_ended(proc_code: int, out: str, cwd: Path) -> None:
        if proc_code != 0:
            counts["reruns_failed"] += 1
            print(f"{name}: a run failed ({proc_code})", flush=True)
            return
        counts["ended_runs"] += 1
        result = _result(name, out, cwd)
        if result == reference:
            counts["ended_same"] += 1
        else:
            print(f"{name}: differs from the reference:\n{result}\n{reference}", flush=True)

    with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-") as d:
        cwd = Path(d)
        store = cwd / "runs" / "soak" / "descentlab.sqlite"
        attempt = 0
        while counts["kills"] < kills:
            if time.monotonic() > deadline:
                print(f"{name}: budget spent after {counts['kills']} kills", flush=True)
                break
            proc, delay, ended, out = _kill_at_random(argv, cwd, seconds, rng)
            counts["kills"] += not ended
            _check_after_kill(name, attempt, cwd, proc.pid, store, counts)
            if ended:  # its result is checked, then the next kill hits a fresh run
                check_ended(proc.returncode, out, cwd)
                if not _store_ok(store):
                    counts["damaged_stores"] += 1
                counts["resumed_mid_trial"] += _resumed_mid_trial(store)
                _empty(cwd)
            print(f"{name}: attempt {attempt}, kill {counts['kills']} after {delay:.1f} s"
                  + (" (it had ended)" if ended else ""), flush=True)  # fmt: skip
            attempt += 1
        code, out, err, _ = _finish(argv, cwd)  # the last killed run to its end
        if code != 0:
            print(f"{name}: the final run failed: {err.strip()[-500:]}", flush=True)
        check_ended(code, out, cwd)
        if not _store_ok(store):
            counts["damaged_stores"] += 1
        counts["resumed_mid_trial"] += _resumed_mid_trial(store)
    counts["same"] = counts["ended_same"] == counts["ended_runs"] > 0
    return counts


def _resumed_mid_trial(store: Path) -> int:
    """Trials of the store that a re-run continued from a checkpoint inside them."""
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute("SELECT provenance FROM runs").fetchall()
    return sum(
        any(r.get("from_step", 0) > 0 for r in json.loads(p or "{}").get("resumes", []))
        for (p,) in rows
    )


def _empty(cwd: Path) -> None:
    """Remove everything a finished run left in ``cwd`` (the next run starts afresh)."""
    for entry in cwd.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills per workload (20)")
    parser.add_argument("--budget", type=float, default=1500.0, help="seconds in all (1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="compare,midtrial,train,lectures")
    parser.add_argument(
        "--record", type=Path, help="also append the counts to this JSON file (a list of runs)"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    workloads = {"compare": COMPARE, "midtrial": MIDTRIAL, "midtrial-ray": MIDTRIAL_RAY,
                 "train": TRAIN, "lectures": LECTURE}  # fmt: skip
    rng = random.Random(args.seed)
    ok = True
    summary, record = [], {}
    t0 = time.monotonic()
    for name in names:
        run = soak_train if name == "train" else functools.partial(soak, name)
        c = run(workloads[name], args.kills, args.budget / len(names), rng)
        held = c["orphans"] == c["damaged_stores"] == c["reruns_failed"] == 0 and c["same"] is True
        held &= c["kills"] == args.kills
        if name.startswith("midtrial"):  # the kills must have hit trials in their middle
            held &= c["resumed_mid_trial"] > 0
        ok &= held
        record[name] = {**c, "held": held}
        summary.append(
            f"{name}: {c['kills']} kills, {c['orphans']} with processes left, "
            f"{c['ended_same']} of {c['ended_runs']} ended runs equal to the reference, "
            f"{c['reruns_failed']} failed re-runs, {c['damaged_stores']} damaged stores, "
            f"final result {'equal to' if c['same'] else 'DIFFERENT from'} the reference"
            + (f", {c['resumed_mid_trial']} trials resumed mid-run" if "midtrial" in name else "")
            + (
                f", Ray's agents left after {c['ray_agents_left']} kills (ended)"
                if c.get("ray_agents_left")
                else ""
            )
        )
    print("; ".join(summary))
    if args.record is not None:
        settings = {"kills": args.kills, "budget": args.budget, "seed": args.seed}
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        record = {"date": when, "settings": settings, "seconds": round(time.monotonic() - t0),
                  **record}  # fmt: skip
        runs = json.loads(args.record.read_text()) if args.record.exists() else []
        args.record.write_text(json.dumps([*runs, record], indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
