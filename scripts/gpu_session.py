"""One GPU session: the device tests and the GPU benchmarks, logs and tables in ``$OUT``.

Run from the repository root on a machine with a CUDA device (no install needed)::

    PYTHONPATH=src python3 scripts/gpu_session.py          # OUT=./gpu-session by default

Parts, each a subprocess with its own time limit (a part that fails or runs out of time is
reported and the next one still runs). The measurements come first, the tests after them, the
longest last:

1. ``env``: device, torch, triton and the packages the tests need (``env.log``);
2. ``step``: ``benchmarks/gpu_step.py`` at 10M and 100M parameters, every named optimizer:
   times against torch's fused or foreach path, the HBM bound of the same run, kernels per step
   and their names (``step.log``, ``step.jsonl``);
3. ``schedule`` and ``schedule-lr``: ``gpu_step.py --schedule momentum`` (betas where the
   optimizer has them) and ``--schedule lr`` at 100k and 10M parameters, Momentum, Nesterov,
   Lion, Adam and AdamW: a step whose value changes every step against the constant step
   (``schedule.jsonl``, ``schedule-lr.jsonl``);
4. ``lowbit``: AdamW's Triton step with 8-bit and bfloat16 state against its float32 step,
   and the state memory ratios, at 10M and 100M parameters (``lowbit.jsonl``);
5. ``gpt``: ``benchmarks/gpu_gpt.py``, a tiny GPT's training step, descentlab AdamW against
   torch's fused AdamW, tokens/s (``gpt.jsonl``);
6. ``compiled``: ``benchmarks/compiled_step.py --device cuda``: the whole training step under
   ``torch.compile`` with descentlab's Adam against torch's (``compiled.jsonl``);
7. ``tests``: ``pytest -m cuda`` over the GPU test files: parity with torch's CUDA optimizers,
   the kernels against the CPU's eager form, 16-bit storage, one launch per group, bf16
   autocast, the faults inside a step, training/``train_many``/``compare``/Ray on the device
   (``tests.log``);
8. ``demo``: ``make demo``'s comparison (MNIST-1D, the CNN, 8 optimizers) with ``--device
   cuda``: its verdict and elapsed time (``demo.log``);
9. ``interpreter`` (not in the default parts: CI runs these tests on every machine without a
   device): the interpreter tests in a process with the device hidden (``interpreter.log``);
10. ``faults`` (not default): ``scripts/process_faults.py --device cuda``, the stop and kill
    cases of ``train --nproc 1 --device cuda``, the device running out of memory in the user's
    model mid-run, more processes than GPUs (``faults.log``, ``faults.md``);
11. ``overhead`` (not default): ``benchmarks/compare_overhead.py --case demo --device cuda``,
    one round: the demo's comparison against the same runs written by hand with Optuna, CPU
    time, training share and bytes written (``overhead.log``).

**Before and after on the same device**: ``--base DIR`` (a tree holding another version's
``src/``, e.g. ``git archive <commit> src | tar -x -C gpu-base``) runs every measurement part
(step to compiled) on that version's ``src`` too, the two in turn, into ``<part>.base.jsonl``;
each table then holds both, the base's rows marked. The default parts' limits add up to 480 s
(the measurements 250 s, twice with ``--base``): with ``--base`` run the session in two
commands, ``--parts env,step,schedule,schedule-lr,lowbit`` (375 s at most) then ``--parts
gpt,compiled,tests,demo`` (355 s), each under the 10 minutes a command may take.

The tables, ``gpu_table.md`` (markdown, for docs/gpu.md), are rewritten after every part, so
they hold what finished even where a later part is stopped; a short table is printed last.

``--parts tests,step`` runs some parts only; ``--table-only`` rebuilds the tables from the
``*.jsonl`` already in ``$OUT``. Without a CUDA device it says so in one line and runs nothing
(exit 0; ``--table-only`` still works); ``--device cpu`` runs the measurement parts end to end
on the CPU at tiny sizes (the Triton kernels under Triton's interpreter): a check of the
script and its tables before a session on a device, not a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = (
    "env", "step", "schedule", "schedule-lr", "lowbit", "gpt", "compiled", "tests", "demo",
    "interpreter", "faults", "overhead",
)  # fmt: skip
#: the parts run when ``--parts`` is not given
DEFAULT_PARTS = PARTS[:-3]
#: the parts that measure (run on ``--base``'s tree too), each writing ``<part>.jsonl``
MEASURED = ("step", "schedule", "schedule-lr", "lowbit", "gpt", "compiled")
#: seconds each part may take (the measurements 250 s, the tests and the demo 225 s: the
#: default parts one command of 8 minutes)
LIMITS = {
    "env": 5, "step": 100, "schedule": 30, "schedule-lr": 30, "lowbit": 25, "gpt": 35,
    "compiled": 30, "tests": 135, "demo": 90, "interpreter": 120, "faults": 150,
    "overhead": 330,
}  # fmt: skip
#: the optimizers of the scheduled steps (a value changed every step against the constant)
SCHEDULED = "momentum,nesterov,lion,adam,adamw"
#: the cuda test that runs the interpreter tests in a child: the ``interpreter`` part
CHILD = "test_the_interpreter_tests_pass_with_the_device_hidden"
TEST_FILES = ("tests/test_gpu_triton.py", "tests/test_gpu_parity.py", "tests/test_gpu_train.py")


def _env(tree: Path = ROOT) -> dict[str, str]:
    """The environment of a part: ``tree``'s ``src`` first on the import path."""
    env = dict(os.environ)
    src = str(tree / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("DESCENTLAB_QUIET", "1")
    return env


def run_part(
    name: str, argv: list[str], out: Path, limit: float, tree: Path = ROOT
) -> dict[str, Any]:
    """Run ``argv`` on ``tree``'s ``src`` with its output in ``out/<name>.log``; (status,
    seconds, last lines)."""
    log = out / f"{name}.log"
    t0 = time.monotonic()
    with open(log, "w") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        # its own process group: a part stopped at its limit takes its children along (the
        # comparisons' worker processes), and frees the device for the next part
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=_env(tree), stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait(timeout=limit)
            status = "ok" if code == 0 else f"exit {code}"
        except subprocess.TimeoutExpired:
            status = f"stopped at its {limit:.0f} s limit"
            _stop(proc)
    seconds = time.monotonic() - t0
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    print(f"[{name}] {status} in {seconds:.0f} s (log {log})", flush=True)
    return {"part": name, "status": status, "seconds": seconds, "tail": tail}


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the part's process group, SIGKILL 5 s later if it is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


ENV_PROBE = """
import importlib.util, platform, torch
print("python", platform.python_version())
print("torch", torch.__version__, "cuda", torch.version.cuda)
print("device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
try:
    import triton
    print("triton", triton.__version__)
except ImportError:
    print("triton missing")
for m in ("pytest", "xdist", "hypothesis", "numpy", "sklearn", "matplotlib", "scipy", "tqdm",
          "mnist1d", "ray", "psutil"):
    print(m, "present" if importlib.util.find_spec(m) else "MISSING")
"""


def _argv(part: str, out: Path, quick: bool, device: str = "cuda", tag: str = "") -> list[str]:
    """The command of ``part`` (``quick``: small sizes; ``device``: where the measurements
    run; ``tag``: the suffix of its JSON file, ``.base`` for the base tree's)."""
    py, dev = sys.executable, ["--device", device]
    json_out = ["--json", str(out / f"{part}{tag}.jsonl")]
    if part == "env":
        return [py, "-c", ENV_PROBE]
    if part in ("tests", "interpreter"):
        argv = [py, "-m", "pytest", "-q", "-m", "cuda", "-rs", "-p", "no:cacheprovider"]
        if importlib.util.find_spec("matplotlib") is None:
            argv.append("--noconftest")  # ../conftest.py imports matplotlib
        if part == "interpreter":
            return [*argv, "-k", CHILD, TEST_FILES[0]]
        if importlib.util.find_spec("xdist") is not None:  # the kernels compile on the host:
            argv += ["-n", "4"]  # four processes share the device
        return [*argv, "-k", f"not {CHILD}", *TEST_FILES]
    tiny = device == "cpu"  # the interpreter: a check of the script, not a measurement
    step = [py, "benchmarks/gpu_step.py", *dev]
    if part == "step":
        sizes = "2e4" if tiny else "1e6" if quick else "1e7,1e8"
        names = ["--optimizers", "sgd,adam,lion"] if tiny else []
        return [*step, "--sizes", sizes, *names, "--repeat", "2" if tiny else "5",
                "--inner", "1" if tiny else "5", *json_out]  # fmt: skip
    if part in ("schedule", "schedule-lr"):
        sizes = "2e4" if tiny else "1e5" if quick else "1e5,1e7"
        key = "lr" if part == "schedule-lr" else "momentum"
        if tiny:
            return [*step, "--schedule", key, "--optimizers", "momentum,adam", "--sizes",
                    sizes, "--repeat", "2", *json_out]  # fmt: skip
        return [*step, "--schedule", key, "--optimizers", SCHEDULED, "--sizes", sizes,
                "--repeat", "20" if quick else "60", "--blocks", "5", *json_out]  # fmt: skip
    if part == "lowbit":
        sizes = "2e4" if tiny else "1e6" if quick else "1e7,1e8"
        return [*step, "--optimizers", "adamw", "--state-dtypes", "int8,bfloat16",
                "--sizes", sizes, "--repeat", "2" if tiny else "10", *json_out]  # fmt: skip
    if part == "compiled":
        return [py, "benchmarks/compiled_step.py", *dev, "--repeat",
                "3" if tiny else "20" if quick else "100", *json_out]  # fmt: skip
    if part == "faults":
        return [py, "scripts/process_faults.py", "--device", device, "--jobs", "3", "--table",
                str(out / "faults.md")]  # fmt: skip
    if part == "overhead":
        return [py, "benchmarks/compare_overhead.py", "--case", "demo", "--rounds", "1",
                "--device", device]  # fmt: skip
    if part == "demo":
        extra = ["--steps", "50", "--budget", "2"] if quick else []
        return [py, "-m", "descentlab.demo", "--device", "cuda", *extra,
                "--runs-dir", str(out.parent / f"{out.name}-runs")]  # fmt: skip
    assert part == "gpt"
    size = ["--layers", "2", "--width", "128", "--repeat", "6"] if quick else []
    if tiny:
        size = ["--layers", "1", "--width", "32", "--heads", "2", "--context", "8", "--batch",
                "2", "--vocab", "64", "--warmup", "1", "--repeat", "2"]  # fmt: skip
    return [py, "benchmarks/gpu_gpt.py", *dev, *size, *json_out]


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by the time limit
    return rows


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _kernels(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Kernels per step by optimizer and path (counted at the first size: they do not depend
    on it)."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        for path, c in (r.get("launches") or {}).items():
            out.setdefault(r["optimizer"], {})[path] = c["kernels"]
    return out


def kernel_names(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The kernels one descentlab step launched, by optimizer (counted at the first size)."""
    return {
        r["optimizer"]: r["launches"]["dl"].get("names", [])
        for r in rows
        if (r.get("launches") or {}).get("dl")
    }


def _tree(r: dict[str, Any]) -> str:
    return "base" if r.get("tree") == "base" else "this"


def step_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows of the step benchmark (one per tree, optimizer and size)."""
    counted = _kernels([r for r in rows if _tree(r) == "this"])
    out = [
        "| tree | optimizer | size | dl path | dl ms | torch path | torch ms | dl/torch "
        "| dl eager ms | bound ms | dl/bound | kernels per step (dl, torch) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = f"{r['size'] / 1e6:g}M"
        if "error" in r:
            out.append(f"| {_tree(r)} | {r['optimizer']} | {size} | failed: "
                       f"{r['error'][:80]} |" + " |" * 8)  # fmt: skip
            continue
        ms, k = r["ms"], counted.get(r["optimizer"], {})
        kernels = f"{k.get('dl', '-')}, {k.get('torch', '-')}"
        out.append(
            f"| {_tree(r)} | {r['optimizer']} | {size} | {r['backend']} | {ms['dl']:.3f} "
            f"| {r['torch_path'] or '-'} | {_fmt(ms.get('torch'))} "
            f"| {_fmt(r['dl_over_torch'], '.2f')} | {_fmt(ms.get('dl eager'))} "
            f"| {r['bound_ms']:.3f} | {r['dl_over_bound']:.2f} | {kernels} |"
        )
    return out


def _table(header: str, row: Callable[[dict[str, Any]], str]) -> Callable[..., list[str]]:
    """A markdown table of one row per result: ``header``'s columns after the tree's,
    ``row(result)`` its cells."""

    def table(rows: list[dict[str, Any]]) -> list[str]:
        n = header.count("|") + 1
        head = f"| tree | {header} |"
        return [head, "|" + "---|" * n, *(f"| {_tree(r)} | {row(r)} |" for r in rows)]

    return table


#: a value changed every step against the constant step (median ms)
schedule_table = _table(
    "optimizer | size | key | constant ms | changed ms | changed / constant | torch changed ms",
    lambda r: (
        f"{r['optimizer']} | {r['params'] / 1e6:g}M | {r['key']} | {r['const']:.3f} | "
        f"{r['sched']:.3f} | {r['sched'] / r['const']:.2f} | {_fmt(r.get('torch'))}"
    ),
)
lowbit_table = _table(
    "optimizer | size | state | ms | / float32 | memory / float32",
    lambda r: (
        f"{r['optimizer']} | {r['params'] / 1e6:g}M | {r['state']} | {r['ms']:.3f} | "
        f"{r['over_f32']:.2f} | {r['memory']:.3f}"
    ),
)


def gpt_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| tree | model | params | dl AdamW step ms | torch fused AdamW step ms | ratio | "
        "tokens/s (dl, torch) | optimizer step ms (dl, torch) | kernels (dl, torch) | loss "
        "difference |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dl, ref = list(r["step_ms"])
        tps = r.get("tokens_per_s") or {}
        tokens = f"{tps[dl]:,.0f}, {tps[ref]:,.0f}" if tps else "-"
        out.append(
            f"| {_tree(r)} | tiny GPT {r['shape']['layers']}x{r['shape']['width']} | "
            f"{r['params'] / 1e6:.1f}M | {r['step_ms'][dl]:.2f} | {r['step_ms'][ref]:.2f} | "
            f"{r['step_ratio']:.2f} | {tokens} | {r['optimizer_step_ms'][dl]:.3f}, "
            f"{r['optimizer_step_ms'][ref]:.3f} | {r['launches'][dl]}, {r['launches'][ref]} | "
            f"{r['max_loss_difference']:.1e} |"
        )
    return out


compiled_table = _table(
    "arm | median step us | / torch compiled | first 3 steps s",
    lambda r: (
        f"{r['arm']} | {r['step_us']:.0f} | {r['over_torch_compiled']:.2f} | "
        f"{r['first_steps_s']:.1f}"
    ),
)


#: the tables: title, the part whose rows they show, how
TABLES = (
    ("Optimizer step (median ms; float32, 20 tensors)", "step", step_table),
    ("A value changed every step: momentum or betas", "schedule", schedule_table),
    ("A value changed every step: the learning rate", "schedule-lr", schedule_table),
    ("Low-bit state (AdamW)", "lowbit", lowbit_table),
    ("Tiny GPT training step (bf16 autocast)", "gpt", gpt_table),
    ("The compiled step", "compiled", compiled_table),
)


def rows_of(out: Path, part: str) -> list[dict[str, Any]]:
    """``part``'s results in ``out``: the base tree's (marked) before this tree's."""
    base = [{**r, "tree": "base"} for r in _read(out / f"{part}.base.jsonl")]
    return base + _read(out / f"{part}.jsonl")


def write_table(out: Path, parts: list[dict[str, Any]], device: str | None) -> Path:
    """``out/gpu_table.md`` from the parts' results and the ``*.jsonl`` in ``out``."""
    lines = [f"# GPU session: {device or 'device not recorded'}", ""]
    if parts:
        lines += ["| part | status | seconds |", "|---|---|---|"]
        lines += [f"| {p['part']} | {p['status']} | {p['seconds']:.0f} |" for p in parts]
        lines.append("")
    for title, part, table in TABLES:
        rows = rows_of(out, part)
        if rows:
            lines += [f"## {title}", "", *table(rows), ""]
        if part == "step" and rows:
            this = [r for r in rows if _tree(r) == "this"]
            lines += ["Kernels of one descentlab step (profiler, kernels only):", ""]
            lines += [f"- {o}: {', '.join(n)}" for o, n in kernel_names(this).items()] + [""]
            said = sorted({a for r in this for a in r.get("announced", [])})
            if said:
                lines += ["Announced during the steps:", "", *[f"- {a}" for a in said], ""]
    path = out / "gpu_table.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def short_table(out: Path) -> str:
    """A few lines for the terminal: per optimizer and size, dl ms, ratios."""
    lines = [f"{'optimizer':10s} {'size':>5s} {'path':7s} {'dl ms':>8s} {'dl/torch':>9s} "
             f"{'dl/bound':>9s} {'kernels':>7s}"]  # fmt: skip
    rows = _read(out / "step.jsonl")
    counted = _kernels(rows)
    for r in rows:
        size = f"{r['size'] / 1e6:g}M"
        if "error" in r:
            lines.append(f"{r['optimizer']:10s} {size:>5s} FAILED {r['error'][:60]}")
            continue
        lines.append(
            f"{r['optimizer']:10s} {size:>5s} {r['backend']:7s} {r['ms']['dl']:8.3f} "
            f"{_fmt(r['dl_over_torch'], '9.2f'):>9s} {r['dl_over_bound']:9.2f} "
            f"{counted.get(r['optimizer'], {}).get('dl', '-'):>7}"
        )
    for r in _read(out / "schedule.jsonl") + _read(out / "schedule-lr.jsonl"):
        lines.append(f"{r['optimizer']:10s} {r['params'] / 1e6:>4g}M {r['key']} changed every "
                     f"step / constant {r['sched'] / r['const']:.2f}x")  # fmt: skip
    for r in _read(out / "gpt.jsonl"):
        lines.append(
            f"tiny GPT {r['params'] / 1e6:.0f}M: step dl/torch-fused {r['step_ratio']:.2f}x, "
            f"optimizer step {r['optimizer_ratio']:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default=None, help=f"comma-separated of {PARTS}")
    p.add_argument("--quick", action="store_true", help="small sizes (a check of the script)")
    p.add_argument("--table-only", action="store_true", help="rebuild the table from OUT")
    p.add_argument("--base", type=Path, help="a tree whose src/ the measurements also run on")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: the measurement parts at tiny sizes under Triton's "
                   "interpreter (a check of the script)")  # fmt: skip
    args = p.parse_args(argv)
    default = DEFAULT_PARTS if args.device == "cuda" else ("env", *MEASURED)
    parts = [s.strip() for s in (args.parts or ",".join(default)).split(",") if s.strip()]
    unknown = [s for s in parts if s not in PARTS]
    if unknown:
        p.error(f"--parts: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if args.device == "cpu" and set(parts) - {"env", *MEASURED}:
        p.error("--device cpu: the measurement parts only (the tests and the demo need a device)")
    if args.base is not None and not (args.base / "src" / "descentlab").is_dir():
        p.error(f"--base: {str(args.base)!r} has no src/descentlab")
    out = Path(os.environ.get("OUT") or "gpu-session")
    if args.table_only:
        out.mkdir(parents=True, exist_ok=True)
        print(f"table: {write_table(out, [], None)}")
        print(short_table(out))
        return 0
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_session: no CUDA device here (torch.cuda.is_available() is False): nothing run")
        return 0
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (a check)"
    out.mkdir(parents=True, exist_ok=True)
    for name in parts:  # this session's results only
        for tag in ("", ".base"):
            (out / f"{name}{tag}.jsonl").unlink(missing_ok=True)
    print(f"gpu_session: {device}, results in {out}", flush=True)
    results: list[dict[str, Any]] = []
    for name in parts:  # the table after every part: what finished is kept
        trees = [("", ROOT)]
        if args.base is not None and name in MEASURED:  # in turn, the base first
            trees.insert(0, (".base", args.base.resolve()))
        for tag, tree in trees:
            argv = _argv(name, out, args.quick, args.device, tag)
            limit = LIMITS[name] * (4 if args.device == "cpu" else 1)  # (the interpreter)
            results.append(run_part(name + tag, argv, out, limit, tree))
        path = write_table(out, results, device)
    print(f"\ntable: {path}\n")
    for r in results:  # the parts' last lines: pytest's summary among them
        print(f"{r['part']:6s} {r['status']}: {r['tail'][-1] if r['tail'] else ''}"[:160])
    print(short_table(out))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
