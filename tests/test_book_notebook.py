"""Each lecture's code cells as a Jupyter notebook (``descentlab.book.notebook``): the build
writes it beside the page, the page links it, and it runs top to bottom in one process (its
code cells executed in order, as a kernel would)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from descentlab.book.lectures import LECTURES
from descentlab.book.notebook import code_cells, lecture_notebook, sealed_code, write_notebook
from descentlab.book.render.pages import unseal

ROOT = Path(__file__).resolve().parents[1]
BY_SLUG = {lec.slug: lec for lec in LECTURES}

#: runs every code cell of a notebook in order in one namespace; exits 1 on the first error
_RUNNER = """
import json, sys, traceback
nb = json.load(open(sys.argv[1], encoding="utf-8"))
ns = {"__name__": "__main__"}
for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
    try:
        exec(compile("".join(cell["source"]), f"<cell {i}>", "exec"), ns)
    except Exception:
        traceback.print_exc()
        sys.exit(f"code cell {i} raised")
print("ran", i + 1, "code cells")
"""


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda lec: lec.slug)
def test_every_item_cell_and_exercise_is_in_its_lectures_notebook(lecture):
    nb = lecture_notebook(lecture, f"{lecture.slug}.html")
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    sources = ["".join(c["source"]) for c in code_cells(nb)]
    expected = [it.code.strip() for it in lecture.items if it.code]
    expected += [
        sealed_code(ex.code, f"{lecture.slug}-ex{i}").strip()
        for i, ex in enumerate(lecture.exercises, 1)
        if ex.numeric
    ]
    assert [s.removeprefix("torch.manual_seed(0)\n") for s in sources[1:]] == expected
    assert len({c["id"] for c in nb["cells"]}) == len(nb["cells"])
    assert f"]({lecture.slug}.html)" in "".join(nb["cells"][0]["source"])


@pytest.mark.process
@pytest.mark.parametrize("slug", ["momentum-and-adaptive-rates", "derivatives-and-descent"])
def test_a_lectures_notebook_runs_top_to_bottom(tmp_path, slug):
    path = write_notebook(tmp_path / f"{slug}.ipynb", BY_SLUG[slug])
    json.loads(path.read_text(encoding="utf-8"))  # valid JSON
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(path)],
        env={"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"ran {len(code_cells(json.loads(path.read_text())))} code cells" in done.stdout


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda lec: lec.slug)
def test_the_notebooks_exercises_are_sealed_as_the_page_is(lecture):
    """No ``answer = <formula>`` under "Try it before running the cell": the formula is
    encoded, and decodes to the exercise's own."""
    nb = lecture_notebook(lecture)
    cells = nb["cells"]
    tried = [
        "".join(cells[k + 1]["source"])
        for k, c in enumerate(cells)
        if "Try it before running the cell" in "".join(c["source"])
    ]
    assert len(tried) == sum(ex.numeric for ex in lecture.exercises)
    for code in tried:
        (line,) = [ln for ln in code.splitlines() if re.match(r"answer\s*=", ln)]
        sealed, key = re.fullmatch(r'answer = eval\(_unseal\("(.+)", "(\w+)"\)\)', line).groups()
        assert f"answer = {unseal(sealed, key)}" not in code
