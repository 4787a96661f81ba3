"""The README's console examples are what this version prints (issue 26, part 4): each
``<!-- example: NAME -->`` block is ``$ command`` plus the output that
``scripts/readme_examples.py`` stored when it ran that command; running the script again
regenerates both. A README edited by hand, a stored output that is not the README's, or an
example whose command changed without being run again fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "readme_examples", ROOT / "scripts" / "readme_examples.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_examples_are_their_stored_outputs():
    script = _script()
    assert script.check() == []
    blocks = script.blocks(script.README.read_text(encoding="utf-8"))
    assert set(script.EXAMPLES) <= set(blocks)


def test_a_drifted_readme_is_caught(tmp_path, monkeypatch):
    script = _script()
    readme = tmp_path / "README.md"
    text = script.README.read_text(encoding="utf-8")
    readme.write_text(text.replace("mean rank", "mean  rank", 1), encoding="utf-8")
    monkeypatch.setattr(script, "README", readme)
    assert script.check() == ["README.md's 'suite' block is not suite.txt"]
