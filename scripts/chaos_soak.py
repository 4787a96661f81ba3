"""Chaos soak: kill descentlab with SIGKILL at random moments, run it again, check what is left.

For each workload -- a small comparison, a training run, one page of the lecture book -- the
script first runs it once uninterrupted (the reference), then, in a fresh folder, starts it,
kills the main process with ``SIGKILL`` after a random delay (uniform over the reference's
duration), and checks after each kill that

- no process of that run is left (workers die with their parent),
- the store, if there is one, passes SQLite's ``PRAGMA integrity_check``,

then starts it again (a comparison and the book continue where they were; a training run is
resumed with ``train --resume``). After the kills it runs the workload to its end and checks
that the result equals the reference: the comparison's table (without its wall-clock column),
the training run's final metrics, the page's checks.

Bounded in time: ``--budget`` seconds in all (default 1,500); a workload stops killing when its
share is spent. Not part of the test suite (it takes minutes). Run::

    python scripts/chaos_soak.py                      # 20 kills for each workload
    python scripts/chaos_soak.py --kills 5 --only compare --seed 1

Exit status 0 when every check held; the last line gives the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    "--steps", "40", "--tune-steps", "20", "--lr-trials", "3", "--seeds", "2",
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


def _train_result(out: str) -> object:
    d = json.loads(out.strip().splitlines()[-1])
    return {k: v for k, v in d.items() if k not in ("run_id", "wall_time")}


def _lecture_result(out: str, cwd: Path) -> object:
    data = {}
    for p in sorted((cwd / "book" / "data").glob("*.json")):
        d = json.loads(p.read_text())
        data[p.name] = (d.get("rows"), d.get("checks"))
    return data


def soak(name: str, argv: list[str], kills: int, budget: float, rng: random.Random) -> dict:
    """One workload's soak; returns its counts."""
    counts = {"kills": 0, "orphans": 0, "damaged_stores": 0, "reruns_failed": 0, "same": None}
    with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-ref-") as ref_dir:
        code, out, err, seconds = _finish(argv, Path(ref_dir))
        if code != 0:
            raise SystemExit(f"{name}: the reference run failed ({code}): {err[-2000:]}")
        reference = (
            _lecture_result(out, Path(ref_dir)) if name == "lectures" else
            _compare_result(out) if name == "compare" else _train_result(out)
        )  # fmt: skip
    print(f"{name}: reference run in {seconds:.1f} s", flush=True)
    deadline = time.monotonic() + budget
    with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-") as d:
        cwd = Path(d)
        store = cwd / "runs" / ("soak" if name == "compare" else "") / "descentlab.sqlite"
        started = False
        last_out = ""
        for k in range(kills):
            if time.monotonic() > deadline:
                print(f"{name}: budget spent after {k} kills", flush=True)
                break
            run_argv = argv
            if name == "train" and started and _has_run(store):
                run_argv = ["train", "--resume", "1", "--runs-dir", "runs", "--no-progress",
                            "--json"]  # fmt: skip
            proc = _start(run_argv, cwd)
            started = True
            delay = rng.uniform(0.2, seconds)
            try:
                proc.wait(timeout=delay)
                finished_early = True
            except subprocess.TimeoutExpired:
                finished_early = False
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                counts["kills"] += 1
            out, _ = proc.communicate()
            if finished_early and proc.returncode == 0:
                last_out = out  # a run that reached its end between two kills
            time.sleep(1.5)  # workers notice their parent's death (pipe + PDEATHSIG)
            left = _leftovers(cwd, proc.pid)
            if left:
                counts["orphans"] += 1
                print(f"{name}: kill {k}: processes left: {left}", flush=True)
                for pid in left:
                    with _suppress():
                        os.kill(pid, signal.SIGKILL)
            if not _store_ok(store):
                counts["damaged_stores"] += 1
                print(f"{name}: kill {k}: the store failed its integrity check", flush=True)
            print(f"{name}: kill {k} after {delay:.1f} s"
                  + (" (it had finished)" if finished_early else ""), flush=True)  # fmt: skip
            if finished_early and name != "train":
                continue
        final_argv = argv
        if name == "train" and _has_run(store):
            final_argv = ["train", "--resume", "1", "--runs-dir", "runs", "--no-progress", "--json"]
        code, out, err, _ = _finish(final_argv, cwd)
        if name == "train" and code != 0 and "has already ended" in err and last_out:
            code, out = 0, last_out  # it completed between two kills: that run's summary
        if code != 0:
            counts["reruns_failed"] += 1
            print(f"{name}: the final run failed ({code}): {err.strip()[-500:]}", flush=True)
            counts["same"] = False
        else:
            result = (
                _lecture_result(out, cwd) if name == "lectures" else
                _compare_result(out) if name == "compare" else _train_result(out)
            )  # fmt: skip
            counts["same"] = result == reference
            if not counts["same"]:
                print(f"{name}: differs from the reference:\n{result}\n{reference}", flush=True)
        if not _store_ok(store):
            counts["damaged_stores"] += 1
    return counts


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


def _has_run(store: Path) -> bool:
    if not store.exists():
        return False
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills per workload (20)")
    parser.add_argument("--budget", type=float, default=1500.0, help="seconds in all (1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="compare,train,lectures")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    workloads = {"compare": COMPARE, "train": TRAIN, "lectures": LECTURE}
    rng = random.Random(args.seed)
    ok = True
    summary = []
    for name in names:
        c = soak(name, workloads[name], args.kills, args.budget / len(names), rng)
        held = c["orphans"] == 0 and c["damaged_stores"] == 0 and c["same"] is True
        ok &= held
        summary.append(
            f"{name}: {c['kills']} kills, {c['orphans']} with processes left, "
            f"{c['damaged_stores']} damaged stores, final result "
            f"{'equal to' if c['same'] else 'DIFFERENT from'} the reference"
        )
    print("; ".join(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
