"""`make test` runs the tests marked `arith` again under other CPU kernels: every file that
marks one is among the files it names (it collects only those)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _arith_tests() -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = re.search(r"^ARITH_TESTS\s*:?=(.*)$", text, re.MULTILINE)
    assert line, "the Makefile names no ARITH_TESTS"
    return set(line.group(1).split())


def test_every_file_with_an_arith_test_is_run_under_each_capability():
    marked = {
        f"tests/{p.name}"
        for p in sorted((ROOT / "tests").glob("test_*.py"))
        if "pytest.mark.arith" in p.read_text() and p.name != Path(__file__).name
    }
    assert marked, "no test is marked arith"
    assert marked <= _arith_tests(), sorted(marked - _arith_tests())
    assert all((ROOT / f).is_file() for f in _arith_tests())


def test_make_test_runs_them_under_default_and_avx2():
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^ARITH_CAPABILITIES \?= default avx2$", text, re.MULTILINE)
    assert "ATEN_CPU_CAPABILITY=$$cap" in text and "-m arith" in text


@pytest.mark.process
def test_make_arith_skips_the_capability_the_suite_ran_under(tmp_path):
    ran = torch.backends.cpu.get_cpu_capability().lower()
    other = "avx2" if ran == "default" else "default"
    out = tmp_path / "ran"
    # (this process's ATEN_CPU_CAPABILITY, if set, is the suite's: kept; an outer make's flags
    # are not)
    drop = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["ARITH_PROBE_OUT"] = str(out)
    r = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", "arith",
         f"PY={sys.executable}", f"ARITH_CAPABILITIES={ran} {other}",
         "ARITH_TESTS=tests/_arith_probe.py", "TEST_WORKERS=0"],  # (-n 0: no worker process)
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ATEN_CPU_CAPABILITY={ran} is the one the suite ran under: not again" in r.stdout
    assert out.read_text().split() == [other.upper()]
