"""The book's mutation harness (scripts/mutate_book.py) reports honestly.

A mutant that cannot be applied -- its text is gone, or its runtime patch finds its target
missing, at patch time or later inside the build -- is *not applicable*, never *caught*. These
tests keep every mutant applicable against today's code, so that the harness's score counts
only mutants that changed something.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import mutate_book  # noqa: E402

# every test here starts a process (`make check` runs the others)
pytestmark = pytest.mark.process

TEXTUAL = [m for m in mutate_book.MUTANTS if m.file]
RUNTIME = [m for m in mutate_book.MUTANTS if m.patch]


def test_the_harness_has_at_least_25_mutants_with_distinct_names() -> None:
    names = [m.name for m in mutate_book.MUTANTS]
    assert len(names) >= 25
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("mutant", TEXTUAL, ids=lambda m: m.name)
def test_each_textual_mutant_finds_its_text_exactly_once(mutant, tmp_path) -> None:
    src = ROOT / "src"
    text = (src / "descentlab" / mutant.file).read_text(encoding="utf-8")
    assert text.count(mutant.old) == 1, f"{mutant.name}: its target moved in {mutant.file}"
    assert mutant.new != mutant.old


def test_every_runtime_patch_applies_and_changes_the_step() -> None:
    """Each runtime mutant's patch, applied in a fresh process, raises no NotApplicable when
    the optimizers it concerns take eager and fused steps, and each changes the iterates."""
    mutants = {m.name: m.patch for m in RUNTIME}
    script = textwrap.dedent(
        """
        import json, sys, torch
        from descentlab import optim

        class NotApplicable(Exception):
            pass

        def run(make, fused):
            torch.manual_seed(0)
            p = torch.nn.Parameter(torch.randn(64, dtype=torch.float64))
            opt = make([p], fused=fused)
            for _ in range(5):
                p.grad = torch.sin(p.detach() * 3)
                opt.step()
            return p.detach().clone()

        makers = {
            "velocity": lambda ps, fused: optim.Momentum(ps, lr=0.1, momentum=0.9,
                                                        form="velocity", fused=fused),
            "rmsprop": lambda ps, fused: optim.RMSprop(ps, lr=0.01, fused=fused),
            "adam": lambda ps, fused: optim.Adam(ps, lr=0.01, fused=fused),
            "adagrad": lambda ps, fused: optim.Adagrad(ps, lr=0.1, fused=fused),
        }
        before = {k: (run(m, False), run(m, True)) for k, m in makers.items()}
        patches = json.loads(sys.argv[1])
        out = {}
        for name, patch in patches.items():
            try:
                exec(patch, {"NotApplicable": NotApplicable, "__name__": "mutant"})
            except NotApplicable as exc:
                out[name] = "not applicable: " + str(exc)
        for k, m in makers.items():
            try:
                after = (run(m, False), run(m, True))
            except NotApplicable as exc:
                out[k] = "not applicable during the step: " + str(exc)
                continue
            out[k] = [not torch.equal(a, b) for a, b in zip(before[k], after)]
        print(json.dumps(out))
        """
    )

    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(mutants)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # every patch applied, and each optimizer's eager and fused steps changed (eager and fused
    # mutants of each rule are all applied at once here)
    assert out == {
        "velocity": [True, True],
        "rmsprop": [True, True],
        "adam": [True, True],
        "adagrad": [True, False],  # AdaGrad has an eager mutant only
    }


def test_a_patch_target_missing_inside_the_build_is_not_applicable_never_caught(
    tmp_path,
) -> None:
    """A card that meets a NotApplicable shows a ✘ row; the harness must not count it."""
    patch = textwrap.dedent(
        """
        import descentlab.engine.run as r
        def train(*args, **kwargs):
            raise NotApplicable("the engine's train is gone")
        r.train = train
        """
    )
    out = mutate_book._build(ROOT / "src", (48,), patch, "", tmp_path / "book", 300)
    assert out == {
        "applicable": False,
        "why": "raised during the build: the engine's train is gone",
    }


def test_a_textual_mutant_whose_text_is_gone_is_not_applicable_and_leaves_the_copy(
    tmp_path,
) -> None:
    (tmp_path / "descentlab").mkdir()
    target = tmp_path / "descentlab" / "losses.py"
    target.write_text("def l1(a, b):\n    return abs(a - b)\n", encoding="utf-8")
    gone = mutate_book.Mutant("gone", "loss", "x", (116,), file="losses.py", old="a + b", new="b")
    twice = mutate_book.Mutant("twice", "loss", "x", (116,), file="losses.py", old="b", new="c")
    missing = mutate_book.Mutant("missing", "loss", "x", (116,), file="nope.py", old="a", new="b")
    assert "occurs 0 times" in mutate_book._apply(gone, tmp_path)
    assert "occurs 3 times" in mutate_book._apply(twice, tmp_path)
    assert mutate_book._apply(missing, tmp_path) == "nope.py is gone"
    assert target.read_text(encoding="utf-8") == "def l1(a, b):\n    return abs(a - b)\n"


def test_the_score_counts_not_applicable_and_errors_never_as_caught(monkeypatch, capsys) -> None:
    """main's score: a mutant not applicable, one whose build raised and one that survived
    are not caught, and the exit status says the run is not clean."""
    fake = tuple(
        mutate_book.Mutant(n, "loss", "x", (116,), file="losses.py", old="a", new="b")
        for n in ("gone", "broke", "lived", "hit")
    )
    outcomes = {
        "(baseline)": {"applicable": True, "fails": 0, "texts": []},
        "gone": {"applicable": False, "why": "the text is gone"},
        "broke": {"applicable": True, "error": "Traceback ..."},
        "lived": {"applicable": True, "fails": 0, "texts": []},
        "hit": {"applicable": True, "fails": 2, "texts": ["a | b"]},
    }
    monkeypatch.setattr(mutate_book, "MUTANTS", fake)
    monkeypatch.setattr(mutate_book, "run", lambda chosen, timeout, log=print: outcomes)
    assert mutate_book.main([]) == 1
    out = capsys.readouterr().out
    assert "score: 1 of 4 mutants caught (1 not applicable; baseline clean)" in out
    assert "applied 3, caught 1, survived 1, errors 1, not applicable 1" in out
    outcomes = {**outcomes, "gone": outcomes["hit"], "broke": outcomes["hit"]}
    outcomes["lived"] = outcomes["hit"]
    assert mutate_book.main([]) == 0


def test_the_build_imports_the_mutated_copy_never_an_installed_descentlab(tmp_path) -> None:
    """A copy without descentlab (an editable install elsewhere could stand in for it) is an
    error of the build, never a count of ✘."""
    out = mutate_book._build(tmp_path, (48,), "", "", tmp_path / "book", 300)
    assert "fails" not in out
    assert "not the copy under" in out["error"] or "No module named" in out["error"]


def test_each_chapter_has_a_mutant_of_the_numbers_its_prose_states() -> None:
    from descentlab.book.chapters import CHAPTERS

    stems = {c.stem for c in CHAPTERS}
    named = {c for m in mutate_book.MUTANTS for c in m.chapters}
    assert named <= stems, named - stems
    prose = [c for m in mutate_book.MUTANTS if m.area == "chapter prose" for c in m.chapters]
    assert sorted(prose) == sorted(stems)


def test_a_chapters_failed_check_is_counted_on_its_section(tmp_path) -> None:
    """A chapter the mutant names is built whole in the mutated process; its ✘ rows count,
    each on the chapter's section, and the page is written for a look."""
    patch = textwrap.dedent(
        """
        import descentlab.problems.convarith as C
        _params = C.conv_params
        C.conv_params = lambda *a, **k: _params(*a, **k) + 1
        """
    )
    out = mutate_book._build(
        ROOT / "src", (), patch, "", tmp_path / "book", 300, ("deep-convolution",)
    )
    assert out["applicable"] and out["fails"] >= 1, out
    assert all(k.startswith("deep-convolution#") for k in out["by_item"])
    assert (tmp_path / "book" / "deep-convolution.html").is_file()


@pytest.mark.parametrize(
    ("items", "chapters", "exercises", "why"),
    [
        ((9999,), (), (), "item 9999"),
        ((), ("deep-gone",), (), "chapter deep-gone"),
        ((), (), ("an exercise the book never asked",), "exercise 'an exercise the book never"),
    ],
)
def test_a_mutant_naming_what_the_book_no_longer_has_is_not_applicable(
    items, chapters, exercises, why, tmp_path
) -> None:
    """Nothing of it is built, so no ✘ could follow: not applicable, never survived or caught."""
    out = mutate_book._build(
        ROOT / "src", items, "", "", tmp_path / "book", 300, chapters, exercises
    )
    assert out["applicable"] is False and why in out["why"], out
