"""Following the learning rate from ``descentlab compare`` to the optimizer
step visits each file at most twice.

``scripts/lr_path.py`` runs a tiny comparison under ``sys.setprofile`` and records every call
in src/descentlab that binds the marker learning rate to a name of its own (an argument or a
local variable that is the lr, not an object that holds it somewhere inside: the measure has
no depth), up to the first optimizer step the engine takes; consecutive calls in one file are
one visit. A setting checked where it
enters and passed down as a plain value crosses each file once or twice; a setting checked,
serialized and rebuilt again at every layer keeps coming back.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the most files, returns to a file already left and visits the lr's walk may take: the
#: functions that name the lr (the depth-3 holder it replaced counted 23 / 9 / 32 at depth 3
#: and 23 / 34 / 57 at depth 4 on one tree: it measured how deeply objects holding the lr are
#: nested, not how far the lr travels)
MOST = {"files": 10, "returns": 5, "visits": 15}


def _lr_path():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("lr_path", ROOT / "scripts" / "lr_path.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_visits_count_a_return_to_a_file_already_left():
    lr_path = _lr_path()
    calls = [("a.py", "f"), ("a.py", "g"), ("b.py", "h"), ("a.py", "f"), ("b.py", "h")]
    assert lr_path.visits(calls) == [
        ("a.py", ["f", "g"]),
        ("b.py", ["h"]),
        ("a.py", ["f"]),
        ("b.py", ["h"]),
    ]
    optim = [("descentlab/optim/base.py", "f"), ("descentlab/optim/optimizer.py", "step")]
    assert lr_path.visits(optim) == [("descentlab/optim/optimizer.py", ["step"])]
    assert len(lr_path.visits(optim, with_optim=True)) == 2


def test_the_holder_finds_the_learning_rate_where_a_name_is_bound_to_it():
    lr_path = _lr_path()
    mark = lr_path.MARK
    assert lr_path.holds(mark) and lr_path.holds(f"sgd={mark}:{mark}")
    assert not lr_path.holds(0.01) and not lr_path.holds("0.01")
    # an object that holds it inside does not name it, however deep
    assert not lr_path.holds({"hyper": {"lr": mark}}) and not lr_path.holds([(mark, 1.0)])


def test_the_learning_rate_visits_each_file_at_most_twice_and_few_files(capsys):
    lr_path = _lr_path()
    visits = lr_path.visits(lr_path.trace())
    # the tracer stops tracing at the step, not the comparison: no trial reported failed
    said = capsys.readouterr()
    assert "error" not in said.err + said.out, said.err
    # the walk reached the training step (an empty or cut walk would pass vacuously)
    assert visits[-1] == ("descentlab/optim/optimizer.py", ["step"])
    files = {f for f, _ in visits}
    for where in ("cli/compare.py", "compare/spec.py", "compare/planning.py", "store.py"):
        assert any(f.endswith(where) for f in files), where
    per_file = Counter(f for f, _ in visits)
    walk = "\n".join(f"{f}: {', '.join(dict.fromkeys(fns))}" for f, fns in visits)
    over = {f: n for f, n in per_file.items() if n > 2}
    assert not over, f"files visited more than twice: {over}\nthe walk:\n{walk}"
    returns = len(visits) - len(files)
    took = {"files": len(files), "returns": returns, "visits": len(visits)}
    assert all(took[k] <= MOST[k] for k in MOST), f"the walk took {took}, at most {MOST}\n{walk}"
