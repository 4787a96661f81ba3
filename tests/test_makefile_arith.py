"""`make test` runs the tests marked `arith` again under other CPU kernels: every file that
marks one is among the files it names (it collects only those)."""

from __future__ import annotations

import re
from pathlib import Path

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
