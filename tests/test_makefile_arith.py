"""`make test` runs the tests marked `arith` again under other CPU kernels: every file that
marks one is among the files it names (it collects only those)."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
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
    recipe = text[text.index("\ntest:") :].replace("\\\n", " ").split("\n\n")[0]
    assert "scripts/test_run.py" in recipe
    assert '--capabilities "$(ARITH_CAPABILITIES)"' in recipe and "$(ARITH_TESTS)" in recipe
    cmds = []
    runner = _runner()
    runner.run = lambda main, beside: cmds.append((main, beside)) or 0
    assert runner.main(["--workers", "2", "--capabilities", "default avx2", "tests/x.py"]) == 0
    ((main, beside),) = cmds
    assert main[-4:] == ["-n", "2", "--dist", "worksteal"]
    assert [b.env for b in beside] == [
        {"ATEN_CPU_CAPABILITY": "default"},
        {"ATEN_CPU_CAPABILITY": "avx2"},
    ]
    assert all(b.argv[-4:] == ["-m", "arith", "-p", "no:cacheprovider", "tests/x.py"][-4:]
               for b in beside)  # fmt: skip
    assert all("-m" in b.argv and "arith" in b.argv and "tests/x.py" in b.argv for b in beside)


def _runner():
    spec = importlib.util.spec_from_file_location("test_run", ROOT / "scripts" / "test_run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_run"] = module  # (its dataclass looks its module up)
    spec.loader.exec_module(module)
    return module


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_reruns_run_beside_at_the_lowest_priority_and_print_after_the_suite(capfd):
    runner = _runner()
    out = io.StringIO()
    beside = [
        runner.Beside("first", {"WHICH": "one"}, _py(
            "import os; print('beside', os.environ['WHICH'], os.nice(0), "
            f"os.getsid(0) == {os.getsid(0)}, os.getpgid(0) == os.getpid())")),
        runner.Beside("second", {}, _py("import sys; print('failing'); sys.exit(3)")),
    ]  # fmt: skip
    assert runner.run(_py("print('the suite')"), beside, out) == 3
    assert capfd.readouterr().out == "the suite\n"
    assert out.getvalue() == (
        # nice 19 in this session (autogroup scheduling applies nice only within a session: a
        # session of its own took as much CPU as the suite's workers), a group of its own
        "make: first\nbeside one 19 True True\nmake: second\nfailing\n"
    )
    # the suite's own failure comes first
    assert runner.run(_py("raise SystemExit(1)"), beside, io.StringIO()) == 1
    assert runner.run(_py("pass"), beside[:1], io.StringIO()) == 0


def test_a_sigterm_ends_the_suite_and_every_rerun_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    sleeper = tmp_path / "sleeper.py"  # a command with a child of its own, both sleeping
    sleeper.write_text(textwrap.dedent(f"""
        import os, subprocess, sys, time
        c = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open({str(pids)!r}, "a") as f:
            f.write(f"{{os.getpid()}} {{c.pid}}\\n")
        time.sleep(60)
    """))  # fmt: skip
    code = textwrap.dedent(f"""
        import io, sys
        sys.path.insert(0, {str(ROOT / "scripts")!r})
        import test_run
        cmd = [sys.executable, {str(sleeper)!r}]
        sys.exit(test_run.run(cmd, [test_run.Beside("b", {{}}, cmd)], io.StringIO()))
    """)
    p = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(_lines(pids)) < 2:
        time.sleep(0.1)
    started = [int(x) for line in _lines(pids) for x in line.split()]
    assert len(started) == 4, started
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 143
    time.sleep(0.5)
    alive = [pid for pid in started if _alive(pid)]
    assert alive == [], alive


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
