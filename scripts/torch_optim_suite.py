"""Run PyTorch's generic optimizer tests (``TestOptimRenewed``) against descentlab.

PyTorch's ``test/test_optim.py`` is not part of the torch wheel and is not part of this
project: bring your own copy of it (one matching the installed torch's
``torch.testing._internal``) and pass its path. Nothing is downloaded::

    PYTHONPATH=src python scripts/torch_optim_suite.py --test-file /path/to/test_optim.py

The file's ``TestOptimRenewed`` runs on the CPU in separate pytest processes, one per backend:

- ``torch``: as the file is, on torch's own optimizers (the baseline);
- ``descentlab``: each ``optim_db`` entry's ``optim_cls`` replaced by descentlab's namesake,
  as shipped (``fused=None``: the fused pass where the chain has one, eagerly elsewhere);
- ``descentlab-eager``: the same with ``fused=False`` unless a test passes ``fused`` itself.

Only the optimizers descentlab exports under a ``torch.optim`` name are kept in ``optim_db``
(for every backend, so the runs are the same tests). The replacement happens in process
before the test file is imported: a small pytest plugin, written into a temporary folder
and loaded with ``-p``, edits ``torch.testing._internal.common_optimizers.optim_db`` in place
(the test file's ``@optims(optim_db)`` reads that list when its class is defined).

Deliberate differences: descentlab accepts a few inputs torch refuses
(``descentlab.optim.torchapi.BEYOND_TORCH``, each with its reason). On the descentlab
backends those inputs are left out of ``optim_db``'s error inputs, so that
``test_errors`` still checks every other input, and the report lists each one left out with
its reason (``--keep-beyond-torch`` keeps them: ``test_errors`` then fails for Adam, AdamW
and Muon at the first of them).

It prints, per optimizer and backend, the tests run (not skipped), passed and failed; the
inputs left out; every test that fails on a descentlab backend but passes on torch; and the
tests that fail on torch's optimizer too. The exit status is 1 when a test fails for
descentlab only (or a run timed out), else 0.

Runs are bounded: ``-k`` selects tests as pytest's ``-k`` does, ``--optims`` selects
optimizers, ``--timeout`` bounds each backend's process (results up to then are kept), no
xdist. ``CUDA_VISIBLE_DEVICES`` is emptied and only CPU tests are instantiated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ("torch", "descentlab", "descentlab-eager")

PLUGIN = r'''
"""Loaded by scripts/torch_optim_suite.py with -p before the test file is imported."""
import json
import os

import torch
from torch.testing._internal import common_optimizers as _co

_BACKEND = os.environ["DL_SUITE_BACKEND"]
_ONLY = [n for n in os.environ.get("DL_SUITE_OPTIMS", "").split(",") if n]
_LOG = os.environ["DL_SUITE_LOG"]
_KEEP_BEYOND = os.environ.get("DL_SUITE_KEEP_BEYOND") == "1"

import descentlab.optim as _dl  # noqa: E402
from descentlab.optim.torchapi import BEYOND_TORCH as _BEYOND  # noqa: E402


def _log(rec):
    with open(_LOG, "a") as f:
        f.write(json.dumps(rec) + "\n")


def _without_beyond_torch(func, name):
    """func's error inputs less those descentlab accepts on purpose (each logged)."""

    def error_inputs(*args, **kwargs):
        kept = []
        for err in func(*args, **kwargs):
            hit = next((t for t in _BEYOND if t in err.error_regex), None)
            if hit is None:
                kept.append(err)
                continue
            inp = err.optimizer_error_input
            _log({"left_out": name, "error_regex": err.error_regex,
                  "input": inp.desc or repr(inp.kwargs), "why": _BEYOND[hit]})
        return kept

    return error_inputs


def _namesake(name):
    cls = getattr(_dl, name, None)
    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
        return cls
    return None


def _eager(cls):
    """cls with fused=False unless the caller passes fused."""

    def __init__(self, params, *args, **kwargs):
        if kwargs.get("fused") is None:
            kwargs["fused"] = False
        cls.__init__(self, params, *args, **kwargs)

    return type(cls.__name__, (cls,), {
        "__init__": __init__, "__module__": cls.__module__, "__qualname__": cls.__qualname__,
    })


_kept = []
for _info in _co.optim_db:
    _name = _info.optim_cls.__name__
    _ours = _namesake(_name)
    if _ours is None or (_ONLY and _name not in _ONLY):
        continue
    if _BACKEND == "descentlab":
        _info.optim_cls = _ours
    elif _BACKEND == "descentlab-eager":
        _info.optim_cls = _eager(_ours)
    elif _BACKEND != "torch":
        raise SystemExit(f"unknown backend {_BACKEND!r}")
    if _BACKEND != "torch" and not _KEEP_BEYOND and _info.optim_error_inputs_func:
        _info.optim_error_inputs_func = _without_beyond_torch(
            _info.optim_error_inputs_func, _name)
    _kept.append(_info)
_co.optim_db[:] = _kept


def pytest_report_header(config):
    return [f"descentlab torch suite: backend={_BACKEND}, optimizers="
            + ",".join(i.name for i in _co.optim_db)]


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.failed or report.skipped):
        return
    message = ""
    if report.failed or report.skipped:
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:
            message = crash.message
        elif isinstance(report.longrepr, tuple):
            message = str(report.longrepr[-1])
        else:
            message = str(report.longrepr)
    _log({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
          "message": message.splitlines()[0][:300] if message else "",
          "seconds": round(report.duration, 3)})
'''


def _test_name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def _optimizer_of(name: str, names: list[str]) -> str | None:
    tokens = name.split("_")
    for n in names:
        if n in tokens:
            return n
    return None


def _exported_names() -> list[str]:
    import torch
    from torch.testing._internal.common_optimizers import optim_db

    import descentlab.optim as dl

    out = []
    for info in optim_db:
        cls = getattr(dl, info.optim_cls.__name__, None)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
            out.append(info.optim_cls.__name__)
    return out


def run_backend(backend: str, args: argparse.Namespace, work: Path) -> dict:
    log = work / f"{backend}.jsonl"
    log.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(work), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    env.update(
        DL_SUITE_BACKEND=backend,
        DL_SUITE_OPTIMS=",".join(args.optims),
        DL_SUITE_LOG=str(log),
        DL_SUITE_KEEP_BEYOND="1" if args.keep_beyond_torch else "0",
        CUDA_VISIBLE_DEVICES="",
        PYTORCH_TESTING_DEVICE_ONLY_FOR="cpu",
        DESCENTLAB_QUIET="1",
    )
    cmd = [
        sys.executable, "-m", "pytest", str(args.test_file.resolve()),
        "-c", str(work / "pytest.ini"), "--rootdir", str(work),
        "-p", "_dl_torch_suite_plugin", "-p", "no:cacheprovider", "-p", "no:xdist",
        "-q", "--no-header", "-rN", "--tb=no",
    ]  # fmt: skip
    selection = ["TestOptimRenewed", *([f"({args.k})"] if args.k else [])]
    cmd += ["-k", " and ".join(selection)]
    if args.maxfail:
        cmd += [f"--maxfail={args.maxfail}"]
    start = time.monotonic()
    timed_out = False
    with open(work / f"{backend}.out", "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
    seconds = time.monotonic() - start
    results: dict[str, dict] = {}
    left_out: dict[tuple[str, str], dict] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if "left_out" in rec:
                left_out[(rec["left_out"], rec["error_regex"])] = rec
                continue
            name = _test_name(rec["nodeid"])
            prev = results.get(name)
            # a failure in setup/teardown counts as the test's failure
            if prev is None or rec["outcome"] == "failed":
                results[name] = rec
    tail = (work / f"{backend}.out").read_text().strip().splitlines()[-1:]
    return {
        "backend": backend,
        "returncode": None if timed_out else proc.returncode,
        "timed_out": timed_out,
        "seconds": round(seconds, 1),
        "summary": tail[0] if tail else "",
        "results": results,
        "left_out": sorted(left_out.values(), key=lambda r: (r["left_out"], r["error_regex"])),
    }


def compare(runs: dict[str, dict], names: list[str]) -> dict:
    base = runs.get("torch", {}).get("results", {})
    report: dict = {"per_optimizer": {}, "ours_only": {}, "both": {}}
    for backend, run in runs.items():
        counts: dict[str, dict[str, int]] = {}
        for name, rec in run["results"].items():
            opt = _optimizer_of(name, names) or "?"
            c = counts.setdefault(opt, {"run": 0, "passed": 0, "failed": 0, "skipped": 0})
            if rec["outcome"] == "skipped":
                c["skipped"] += 1
                continue
            c["run"] += 1
            c[rec["outcome"]] += 1
        report["per_optimizer"][backend] = counts
        if backend == "torch":
            continue
        ours, both = [], []
        for name, rec in sorted(run["results"].items()):
            if rec["outcome"] != "failed":
                continue
            ref = base.get(name)
            entry = {"test": name, "message": rec["message"]}
            if ref is not None and ref["outcome"] == "failed":
                entry["torch_message"] = ref["message"]
                both.append(entry)
            else:
                entry["torch"] = "not run" if ref is None else ref["outcome"]
                ours.append(entry)
        report["ours_only"][backend] = ours
        report["both"][backend] = both
    return report


def print_report(runs: dict[str, dict], report: dict, names: list[str]) -> None:
    for backend, run in runs.items():
        flag = " (TIMED OUT: partial)" if run["timed_out"] else ""
        print(f"\n== {backend}: {run['seconds']} s{flag}; pytest: {run['summary']}")
        counts = report["per_optimizer"][backend]
        print(f"   {'optimizer':<10} {'run':>5} {'passed':>7} {'failed':>7} {'skipped':>8}")
        total = {"run": 0, "passed": 0, "failed": 0, "skipped": 0}
        for opt in [*names, "?"]:
            if opt not in counts:
                continue
            c = counts[opt]
            for k in total:
                total[k] += c[k]
            print(f"   {opt:<10} {c['run']:>5} {c['passed']:>7} {c['failed']:>7} {c['skipped']:>8}")
        print(
            f"   {'total':<10} {total['run']:>5} {total['passed']:>7} {total['failed']:>7} "
            f"{total['skipped']:>8}"
        )
    for backend in report["ours_only"]:
        print(f"\n== {backend}: failing for descentlab, passing on torch")
        for e in report["ours_only"][backend]:
            print(f"   {e['test']}  [torch: {e['torch']}]\n      {e['message']}")
        if not report["ours_only"][backend]:
            print("   (none)")
        if runs[backend]["left_out"]:
            print(f"== {backend}: deliberate: error inputs left out of test_errors (BEYOND_TORCH)")
            for r in runs[backend]["left_out"]:
                print(
                    f"   {r['left_out']}: torch refuses {r['error_regex']!r}\n      why: {r['why']}"
                )
        if report["both"][backend]:
            print(f"== {backend}: failing on torch's optimizer too (not descentlab's)")
            for e in report["both"][backend]:
                print(f"   {e['test']}\n      ours:  {e['message']}")
                print(f"      torch: {e['torch_message']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--test-file",
        type=Path,
        required=True,
        help="a copy of PyTorch's test/test_optim.py (not downloaded)",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated, from {', '.join(BACKENDS)} (default: all)",
    )
    parser.add_argument(
        "--optims",
        default="",
        help="comma-separated torch names (default: every one descentlab exports)",
    )
    parser.add_argument("-k", default="", help="pytest -k expression to narrow the tests")
    parser.add_argument(
        "--maxfail",
        type=int,
        default=0,
        help="stop a backend's run after this many failures (0: never)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds each backend's run may take (default 1800)",
    )
    parser.add_argument(
        "--keep-beyond-torch",
        action="store_true",
        help="keep the error inputs descentlab accepts on purpose",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    if not args.test_file.is_file():
        parser.error(f"--test-file: no such file: {str(args.test_file)!r}")
    if "class TestOptimRenewed" not in args.test_file.read_text():
        parser.error(f"--test-file: {str(args.test_file)!r} defines no TestOptimRenewed")
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in BACKENDS:
            parser.error(f"--backends: unknown backend {b!r} (choose from {', '.join(BACKENDS)})")
    if args.timeout <= 0:
        parser.error(f"--timeout: must be positive, got {args.timeout!r}")
    names = _exported_names()
    args.optims = [n for n in args.optims.split(",") if n]
    for n in args.optims:
        if n not in names:
            parser.error(f"--optims: {n!r} is not a torch optimizer descentlab exports ({names})")

    with tempfile.TemporaryDirectory(prefix="dl_torch_suite_") as tmp:
        work = Path(tmp)
        (work / "_dl_torch_suite_plugin.py").write_text(PLUGIN)
        (work / "pytest.ini").write_text("[pytest]\naddopts =\n")
        runs = {b: run_backend(b, args, work) for b in backends}
    report = compare(runs, names)
    print_report(runs, report, args.optims or names)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "report": report}, indent=1))
    bad = any(report["ours_only"].values()) or any(r["timed_out"] for r in runs.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
