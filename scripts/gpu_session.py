"""One GPU session: the device tests and the GPU benchmarks, logs and a table in ``$OUT``.

Run from the repository root on a machine with a CUDA device (no install needed)::

    PYTHONPATH=src python3 scripts/gpu_session.py          # OUT=./gpu-session by default

Parts, each a subprocess with its own time limit (a part that fails or runs out of time is
reported and the next one still runs; the default parts' limits add up to 470 s, so the whole
session is one command of under 8 minutes and a lent device's 15 minutes leave room for a
second call). The measurements come first, the tests after them, the longest last:

1. ``env``: device, torch, triton and the packages the tests need (``env.log``);
2. ``step``: ``benchmarks/step.py --device cuda`` at 10M and 100M parameters, every named
   optimizer: times against torch's fused or foreach path, the HBM bound of the same run,
   kernels per step and their names (``step.log``, ``step.jsonl``);
3. ``lowbit``: AdamW's Triton step with 8-bit and bfloat16 state against its float32 step,
   and the state memory ratios, at 10M and 100M parameters (``lowbit.log``);
4. ``gpt``: ``benchmarks/gpu_gpt.py``, a tiny GPT's training step, descentlab AdamW against
   torch's fused AdamW (``gpt.log``, ``gpt.jsonl``);
5. ``tests``: ``pytest -m cuda`` over the GPU test files: parity with torch's CUDA optimizers,
   the kernels against the CPU's eager form, 16-bit storage, one launch per group, bf16
   autocast, training/``train_many``/``compare``/Ray on the device (``tests.log``);
6. ``schedule``: ``benchmarks/step.py --device cuda --schedule momentum`` at 100k parameters:
   a step whose momentum (or beta1) changes every step against the constant step
   (``schedule.log``);
7. ``compiled``: ``benchmarks/compiled_step.py --device cuda``: the whole training step under
   ``torch.compile`` with descentlab's Adam against torch's, first steps and steady step
   (``compiled.log``);
8. ``demo``: ``make demo``'s comparison (MNIST-1D, the CNN, 8 optimizers) with ``--device
   cuda``: its verdict and elapsed time (``demo.log``);
9. ``interpreter`` (not in the default parts: CI runs these tests on every machine without a
   device): the interpreter tests in a process with the device hidden (``interpreter.log``).

The table, ``gpu_table.md`` (markdown, for docs/gpu.md's "On a GPU" section), is rewritten after
every part, so it holds what finished even where a later part is stopped; a short table is
printed last.

``--parts tests,step`` runs some parts only; ``--table-only`` rebuilds the table from the
``*.jsonl`` already in ``$OUT``. Without a CUDA device it says so in one line and runs nothing
(exit 0; ``--table-only`` still works).
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = (
    "env", "step", "lowbit", "gpt", "tests", "schedule", "compiled", "demo", "interpreter"
)  # fmt: skip
#: the parts run when ``--parts`` is not given
DEFAULT_PARTS = PARTS[:-1]
#: seconds each part may take (the default parts' sum, 470 s, stays under 8 minutes)
LIMITS = {
    "env": 5, "step": 120, "lowbit": 25, "gpt": 35, "tests": 140, "schedule": 20,
    "compiled": 30, "demo": 95, "interpreter": 120,
}  # fmt: skip
#: the cuda test that runs the interpreter tests in a child: the ``interpreter`` part
CHILD = "test_the_interpreter_tests_pass_with_the_device_hidden"
TEST_FILES = ("tests/test_gpu_triton.py", "tests/test_gpu_parity.py", "tests/test_gpu_train.py")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("DESCENTLAB_QUIET", "1")
    return env


def run_part(name: str, argv: list[str], out: Path, limit: float) -> dict[str, Any]:
    """Run ``argv`` with its output in ``out/<name>.log``; (status, seconds, last lines)."""
    log = out / f"{name}.log"
    t0 = time.monotonic()
    with open(log, "w") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        # its own process group: a part stopped at its limit takes its children along (the
        # comparisons' worker processes), and frees the device for the next part
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=_env(), stdout=fh, stderr=subprocess.STDOUT,
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


def _argv(part: str, out: Path, quick: bool) -> list[str]:
    py = sys.executable
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
    if part == "step":
        sizes = "1e6" if quick else "1e7,1e8"
        return [py, "benchmarks/step.py", "--device", "cuda", "--sizes", sizes,
                "--repeat", "5", "--inner", "5", "--json", str(out / "step.jsonl")]  # fmt: skip
    if part == "lowbit":
        sizes = "1e6" if quick else "1e7,1e8"
        return [py, "benchmarks/step.py", "--device", "cuda", "--optimizers", "adamw",
                "--state-dtypes", "int8,bfloat16", "--sizes", sizes, "--repeat", "10"]  # fmt: skip
    if part == "schedule":
        return [py, "benchmarks/step.py", "--device", "cuda", "--schedule", "momentum",
                "--sizes", "1e5", "--repeat", "20" if quick else "60", "--blocks", "5"]  # fmt: skip
    if part == "compiled":
        return [py, "benchmarks/compiled_step.py", "--device", "cuda",
                "--repeat", "20" if quick else "100"]  # fmt: skip
    if part == "demo":
        extra = ["--steps", "50", "--budget", "2"] if quick else []
        return [py, "-m", "descentlab.demo", "--device", "cuda", *extra,
                "--runs-dir", str(out.parent / f"{out.name}-runs")]  # fmt: skip
    assert part == "gpt"
    size = ["--layers", "2", "--width", "128", "--repeat", "6"] if quick else []
    return [py, "benchmarks/gpu_gpt.py", *size, "--json", str(out / "gpt.jsonl")]


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


def step_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows of the step benchmark (one per optimizer and size)."""
    counted = _kernels(rows)
    out = [
        "| optimizer | size | dl path | dl ms | torch path | torch ms | dl/torch | dl eager ms "
        "| bound ms | dl/bound | kernels per step (dl, torch) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = f"{r['size'] / 1e6:g}M"
        if "error" in r:
            out.append(f"| {r['optimizer']} | {size} | failed: {r['error'][:80]} |" + " |" * 8)
            continue
        ms, k = r["ms"], counted.get(r["optimizer"], {})
        kernels = f"{k.get('dl', '-')}, {k.get('torch', '-')}"
        out.append(
            f"| {r['optimizer']} | {size} | {r['backend']} | {ms['dl']:.3f} "
            f"| {r['torch_path'] or '-'} | {_fmt(ms.get('torch'))} "
            f"| {_fmt(r['dl_over_torch'], '.2f')} | {_fmt(ms.get('dl eager'))} "
            f"| {r['bound_ms']:.3f} | {r['dl_over_bound']:.2f} | {kernels} |"
        )
    return out


def gpt_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| model | params | dl AdamW step ms | torch fused AdamW step ms | ratio | optimizer "
        "step ms (dl, torch) | kernels (dl, torch) | loss difference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dl, ref = list(r["step_ms"])
        out.append(
            f"| tiny GPT {r['shape']['layers']}x{r['shape']['width']} | "
            f"{r['params'] / 1e6:.1f}M | {r['step_ms'][dl]:.2f} | {r['step_ms'][ref]:.2f} | "
            f"{r['step_ratio']:.2f} | {r['optimizer_step_ms'][dl]:.3f}, "
            f"{r['optimizer_step_ms'][ref]:.3f} | {r['launches'][dl]}, {r['launches'][ref]} | "
            f"{r['max_loss_difference']:.1e} |"
        )
    return out


def write_table(out: Path, parts: list[dict[str, Any]], device: str | None) -> Path:
    """``out/gpu_table.md`` from the parts' results and the ``*.jsonl`` in ``out``."""
    lines = [f"# GPU session: {device or 'device not recorded'}", ""]
    if parts:
        lines += ["| part | status | seconds |", "|---|---|---|"]
        lines += [f"| {p['part']} | {p['status']} | {p['seconds']:.0f} |" for p in parts]
        lines.append("")
    steps, gpts = _read(out / "step.jsonl"), _read(out / "gpt.jsonl")
    if steps:
        lines += ["## Optimizer step (median ms; float32, 20 tensors)", "", *step_table(steps), ""]
        lines += ["Kernels of one descentlab step (profiler, kernels only):", ""]
        lines += [f"- {o}: {', '.join(n)}" for o, n in kernel_names(steps).items()] + [""]
        said = sorted({a for r in steps for a in r.get("announced", [])})
        if said:
            lines += ["Announced during the steps:", "", *[f"- {a}" for a in said], ""]
    if gpts:
        lines += ["## Tiny GPT training step (bf16 autocast)", "", *gpt_table(gpts), ""]
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
    for r in _read(out / "gpt.jsonl"):
        lines.append(
            f"tiny GPT {r['params'] / 1e6:.0f}M: step dl/torch-fused {r['step_ratio']:.2f}x, "
            f"optimizer step {r['optimizer_ratio']:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default=",".join(DEFAULT_PARTS), help=f"comma-separated of {PARTS}")
    p.add_argument("--quick", action="store_true", help="small sizes (a check of the script)")
    p.add_argument("--table-only", action="store_true", help="rebuild the table from OUT")
    args = p.parse_args(argv)
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = [s for s in parts if s not in PARTS]
    if unknown:
        p.error(f"--parts: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    out = Path(os.environ.get("OUT") or "gpu-session")
    if args.table_only:
        out.mkdir(parents=True, exist_ok=True)
        print(f"table: {write_table(out, [], None)}")
        print(short_table(out))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu_session: no CUDA device here (torch.cuda.is_available() is False): nothing run")
        return 0
    device = torch.cuda.get_device_name()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("step.jsonl", "gpt.jsonl"):  # this session's results only
        (out / name).unlink(missing_ok=True)
    print(f"gpu_session: {device}, results in {out}", flush=True)
    results: list[dict[str, Any]] = []
    for name in parts:  # the table after every part: what finished is kept
        results.append(run_part(name, _argv(name, out, args.quick), out, LIMITS[name]))
        path = write_table(out, results, device)
    print(f"\ntable: {path}\n")
    for r in results:  # the parts' last lines: pytest's summary among them
        print(f"{r['part']:6s} {r['status']}: {r['tail'][-1] if r['tail'] else ''}"[:160])
    print(short_table(out))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
