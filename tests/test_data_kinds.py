"""The data kind is a type: code outside the two stream modules never asks whether a split
is streamed.

A split held in memory (arrays, :class:`~descentlab.engine.splits.TensorSplit`) and one read
through a loader (:class:`~descentlab.problems.streams.DatasetSplits`,
:class:`~descentlab.engine.streaming.StreamedSplit`) each answer for themselves: length,
fingerprint, splits, labels, evaluation batches, training batches, refusals. The scan below
parses every module of src/descentlab with ``ast`` and lists each test of the kind outside
``problems/streams.py`` and ``engine/streaming.py``: a condition (``if``, ``elif``, a
conditional expression, ``while``, a comprehension's ``if``, ``assert``) that mentions the
streamed kind, an ``isinstance``/``issubclass`` against it, a ``getattr``/``hasattr`` of
``"streamed"``, and any read of a ``.streamed`` attribute.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _source import parsed
from torch.utils.data import TensorDataset

from descentlab.engine.building import build
from descentlab.engine.config import RunConfig
from descentlab.engine.evaluation import evaluate
from descentlab.engine.launch import check_shardable
from descentlab.engine.loop import training_batches
from descentlab.engine.multirun import VectorizeError, train_many
from descentlab.engine.splits import TensorSplit, as_split, eval_batches
from descentlab.engine.streaming import StreamedSplit, read_split, vectorize_refusal
from descentlab.problems.problem import Problem, chance_level

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "descentlab"

#: The modules that are the streamed kind (they may ask what they are).
STREAM_MODULES = {"problems/streams.py", "engine/streaming.py"}

#: Names that stand for the streamed kind, or for the test of it.
KIND = re.compile(r"streamed|StreamedSplit|DatasetSplits|LoaderBatches|is_dataset|is_iterable")


def _marks(node: ast.AST) -> bool:
    """Whether ``node`` mentions the streamed kind (a name, an attribute, or the string
    ``"streamed"``)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and KIND.search(sub.id):
            return True
        if isinstance(sub, ast.Attribute) and KIND.search(sub.attr):
            return True
        if isinstance(sub, ast.Constant) and sub.value == "streamed":
            return True
    return False


def kind_tests(tree: ast.AST) -> list[int]:
    """The lines of ``tree`` that test whether data are streamed."""
    lines = set()
    for node in ast.walk(tree):
        tests: list[ast.AST] = []
        if isinstance(node, ast.If | ast.IfExp | ast.While | ast.Assert):
            tests.append(node.test)
        elif isinstance(node, ast.comprehension):
            tests.extend(node.ifs)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("isinstance", "issubclass") and _marks(node):
                lines.add(node.lineno)
            if node.func.id in ("getattr", "hasattr") and any(
                isinstance(a, ast.Constant) and a.value == "streamed" for a in node.args
            ):
                lines.add(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "streamed":
            lines.add(node.lineno)
        lines.update(t.lineno for t in tests if _marks(t))
    return sorted(lines)


def streamed_branches(package: Path = PACKAGE) -> list[str]:
    """``path:line: source`` of every test of the data kind outside the stream modules."""
    out = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where in STREAM_MODULES:
            continue
        source = path.read_text(encoding="utf-8")
        text = source.splitlines()
        for line in kind_tests(parsed(path)):
            out.append(f"{where}:{line}: {text[line - 1].strip()}")
    return out


def test_no_code_outside_the_stream_modules_branches_on_the_data_kind():
    found = streamed_branches()
    assert not found, "tests of the data kind outside the stream modules:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "if splits.streamed:\n    pass\n",
        "if getattr(splits, 'streamed', False):\n    pass\n",
        "streamed = is_streamed(splits)\nif classification and not streamed:\n    pass\n",
        "n = splits.n_train if is_streamed(splits) else 0\n",
        "if isinstance(built.x_train, StreamedSplit):\n    pass\n",
        "ok = isinstance(s, DatasetSplits)\n",
        "flag = hasattr(s, 'streamed')\n",
        "while not x.streamed:\n    pass\n",
        "ys = [v for v in data.values() if is_dataset(v)]\n",
    ],
)
def test_the_scan_finds_each_form_of_the_test(source):
    assert kind_tests(ast.parse(source)), source


@pytest.mark.parametrize(
    "source",
    [
        "data = as_split(x, y)\nfor xb, yb in data.evaluation(64):\n    pass\n",
        "refusal = vectorize_refusal(splits)\nif refusal is not None:\n    raise E(refusal)\n",
        "if isinstance(x, Tensor):\n    pass\n",
        "from descentlab.engine.streaming import StreamedSplit\n",
    ],
)
def test_the_scan_passes_code_that_asks_the_split(source):
    assert kind_tests(ast.parse(source)) == []


def test_the_scan_reads_the_package_and_skips_only_the_stream_modules(tmp_path):
    """A package with one streamed branch in a stream module and one outside: only the one
    outside is listed."""
    for where in (*STREAM_MODULES, "engine/building.py"):
        path = tmp_path / where
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("def f(s):\n    return 1 if s.streamed else 0\n", encoding="utf-8")
    assert streamed_branches(tmp_path) == ["engine/building.py:2: return 1 if s.streamed else 0"]


# --- each kind answers for itself, and both answer alike for the same examples ---------------

# numpy's generator: torch.randn draws other values under ATEN_CPU_CAPABILITY=default
X = torch.from_numpy(np.random.default_rng(0).standard_normal((120, 3)).astype(np.float32))
Y = (X[:, 0] > 0).long()


def _model() -> torch.nn.Module:
    return torch.nn.Linear(3, 2)


def _problems() -> tuple[Problem, Problem]:
    """The same examples as arrays and as ``TensorDataset``\\ s."""
    arrays = {"x_train": X[:100], "y_train": Y[:100], "x_test": X[100:], "y_test": Y[100:]}
    datasets = {"train": TensorDataset(X[:100], Y[:100]), "test": TensorDataset(X[100:], Y[100:])}
    loader = {"eval_train_examples": 10**6}  # train/* metrics on every training example
    return (
        Problem(name="p", model=_model, data=arrays),
        Problem(name="p", model=_model, data=datasets, loader=loader),
    )


def test_each_kind_of_problem_hashes_and_splits_its_data_as_before():
    """Fingerprints and chance levels recorded on the code before the kinds were types (at
    d33cd66; a changed fingerprint would start every stored comparison again), the same under
    every ATEN_CPU_CAPABILITY."""
    arrays, datasets = _problems()
    assert (arrays.fingerprint(), datasets.fingerprint()) == ("1537af42", "c24d5357")
    for problem in (arrays, datasets):
        s = problem.splits(seed=1, val_fraction=0.25)
        assert (s.n_train, s.n_val, s.meta["fingerprint"]) == (75, 25, problem.fingerprint())
        assert chance_level(s, "accuracy") == pytest.approx(0.7585547783358537, abs=1e-12)
        assert chance_level(s, "loss") == pytest.approx(0.6859298944473267, abs=1e-6)


def test_both_kinds_of_splits_derive_the_same_phases():
    arrays, datasets = (p.splits(seed=1, val_fraction=0.25) for p in _problems())
    for a, d in ((arrays, datasets), (arrays.holdout(), datasets.holdout())):
        assert (a.n_train, a.n_val) == (d.n_train, d.n_val)
    assert a.n_test == d.n_test == 0
    assert arrays.refit().n_train == datasets.refit().n_train == 100
    folds_a, folds_d = arrays.folds(4, seed=0), datasets.folds(4, seed=0)
    assert [f.n_val for f in folds_a] == [f.n_val for f in folds_d] == [25] * 4
    for f, g in zip(folds_a, folds_d, strict=True):
        assert torch.equal(f.y_val, g.known_targets()[1])
    ya, yd = arrays.known_targets(), datasets.known_targets()
    assert all(torch.equal(p, q) for p, q in zip(ya, yd, strict=True))
    assert arrays.unpicklable("p", "--workers 2+") is None
    assert datasets.unpicklable("p", "--workers 2+") is None


def test_both_kinds_of_splits_describe_the_problem_alike():
    """The fields both kinds hold are declared once (``TestSeal``'s) and filled alike for the
    same examples: the name, the model and loss as the engine calls them, the task, classes,
    input shape and outputs, the provenance (but for each kind's fingerprint, and a stream
    marked as one)."""
    import dataclasses

    from descentlab.problems.data import Splits, TestSeal
    from descentlab.problems.streams import DatasetSplits

    shared = {f.name for f in dataclasses.fields(TestSeal)}
    assert {"name", "task", "n_outputs", "default_loss", "meta", "_sealed"} <= shared
    assert all(shared <= {f.name for f in dataclasses.fields(k)} for k in (Splits, DatasetSplits))
    arrays, datasets = (p.splits(seed=1, val_fraction=0.25) for p in _problems())
    for s in (arrays, datasets):
        assert (s.name, s.task, s.n_classes, s.input_shape, s.n_outputs) == (
            "p", "classification", 2, (3,), 2,
        )  # fmt: skip
        assert (repr(s.default_model), s.default_loss) == ("p model", "cross_entropy")
    meta = {k: v for k, v in arrays.meta.items() if k != "fingerprint"}
    assert meta == {"problem": "p", "source": None, "metric": "accuracy", "target": None,
                    "seed": 1, "val_fraction": 0.25}  # fmt: skip
    assert {k: v for k, v in datasets.meta.items() if k != "fingerprint"} == {
        **meta, "streamed": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("task", "n_classes", "target_shape", "outputs"),
    [
        ("classification", 10, (), 10),
        ("regression", None, (3,), 3),
        ("regression", None, (), 1),  # a scalar target: one output
        ("regression", None, (2, 2), 4),
    ],
)
def test_the_outputs_are_the_classes_or_a_targets_size(task, n_classes, target_shape, outputs):
    from descentlab.problems.data import example_fields

    assert example_fields(task, n_classes, torch.Size([1, 8]), target_shape) == {
        "task": task, "n_classes": n_classes, "input_shape": (1, 8), "n_outputs": outputs,
    }  # fmt: skip


def test_the_engine_reads_either_kind_through_the_same_calls():
    """Evaluation batches, the first examples and the training batches: a ``TensorSplit`` and
    a ``StreamedSplit`` of the same examples give the same tensors."""
    cpu = torch.device("cpu")
    arrays, datasets = (p.splits(seed=1, val_fraction=0.25) for p in _problems())
    tensor, stream = read_split(arrays, "train", cpu), read_split(datasets, "train", cpu)
    assert isinstance(as_split(*tensor), TensorSplit)
    assert isinstance(as_split(*stream), StreamedSplit) and stream[1] is None
    for size in (16, 1024):
        xa, ya = zip(*eval_batches(*tensor, size), strict=True)
        xd, yd = zip(*eval_batches(*stream, size), strict=True)
        assert torch.equal(torch.cat(xa), torch.cat(xd)) and torch.equal(
            torch.cat(ya), torch.cat(yd)
        )
    assert all(
        torch.equal(p, q)
        for p, q in zip(as_split(*tensor).head(7), as_split(*stream).head(7), strict=True)
    )
    batches = [training_batches(as_split(*s), [3], 16, False) for s in (tensor, stream)]
    assert [type(b).__name__ for b in batches] == ["Batches", "LoaderBatches"]
    for _ in range(6):  # past an epoch's end (75 examples: 5 batches)
        (xa, ya, _), (xd, yd, _) = (b.next() for b in batches)
        assert torch.equal(xa, xd) and torch.equal(ya, yd)


def test_each_kind_refuses_what_it_cannot_do_in_its_own_words():
    arrays, datasets = (p.splits(seed=1, val_fraction=0.25) for p in _problems())
    assert vectorize_refusal(arrays) is None
    config = RunConfig(
        problem="moons", optimizer="sgd", batch_size=16, steps=2, evaluate_test=False
    )
    with pytest.raises(VectorizeError, match=r"^runs on datasets \(read through loaders\) train"):
        train_many(config, overrides=[{"seed": 0}, {"seed": 1}], mode="vmap", data=datasets,
                   progress=False)  # fmt: skip
    check_shardable(config, build(config, data=arrays), 2)
    with pytest.raises(ValueError, match=r"^--nproc 2: a problem of datasets read through a "):
        check_shardable(config, build(config, data=datasets), 2)
    empty = TensorSplit(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="has no example to evaluate"):
        evaluate(_model(), empty.x, empty.y, torch.nn.functional.cross_entropy,
                 classification=True)  # fmt: skip
