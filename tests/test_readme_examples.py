"""The console examples of the README and the docs pages are what this version prints (issue
26, part 4): each ``<!-- example: NAME -->`` block is ``$ command`` plus the output that
``scripts/readme_examples.py`` stored when it ran that command; running the script again
regenerates both. A page edited by hand, a stored output that is not the page's, or an
example whose command changed without being run again fails here. The examples moved with
their sections from the README to ``docs/``."""

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
    where = script.where()
    assert set(script.EXAMPLES) <= set(where)
    assert where["diabetes"] == where["suite"] == ROOT / "docs" / "compare.md"


def test_a_drifted_page_is_caught(tmp_path, monkeypatch):
    script = _script()
    docs = tmp_path / "docs"
    docs.mkdir()
    text = (script.DOCS / "compare.md").read_text(encoding="utf-8")
    (docs / "compare.md").write_text(text.replace("mean rank", "mean  rank", 1), encoding="utf-8")
    (tmp_path / "README.md").write_text(script.README.read_text(encoding="utf-8"), "utf-8")
    monkeypatch.setattr(script, "README", tmp_path / "README.md")
    monkeypatch.setattr(script, "DOCS", docs)
    assert script.check() == ["compare.md's 'suite' block is not suite.txt"]


def _module_blocks(text: str) -> list[tuple[str, str, str]]:
    """Each ``<!-- module: PATH CLASS -->`` marker's path, class and the python block after it
    (dedented)."""
    import re
    import textwrap

    found = re.findall(r"<!-- module: (\S+) (\w+) -->\n\s*```python\n(.*?)\n\s*```", text, re.S)
    return [(path, name, textwrap.dedent(code)) for path, name, code in found]


def _class_source(path: str, name: str) -> str:
    """The class ``name`` of the module at ``path`` as written there, less its docstring."""
    import ast

    source = (ROOT / path).read_text(encoding="utf-8")
    (node,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == name]
    lines = source.splitlines()[node.lineno - 1 : node.end_lineno]
    doc = node.body[0]
    if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
        first, last = doc.lineno - node.lineno, doc.end_lineno - node.lineno
        del lines[first : last + 2]  # the docstring and the blank line after it
    return "\n".join(lines)


def test_the_pages_code_is_included_from_the_modules():
    """The worked example of "Adding an optimizer" (docs/optimizers.md) is Adan's module as it
    is: a block marked ``<!-- module: PATH CLASS -->`` on any page equals that class's code (its
    docstring left out)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    blocks = {page: _module_blocks(page.read_text(encoding="utf-8")) for page in pages}
    adan = ("src/descentlab/optim/adan.py", "scale_by_adan")
    assert adan in [(p, n) for p, n, _ in blocks[ROOT / "docs" / "optimizers.md"]]
    for page, found in blocks.items():
        for path, name, code in found:
            assert code == _class_source(path, name), f"{page.name}'s {name} is not {path}'s"


def test_a_drifted_module_block_is_caught():
    text = (ROOT / "docs" / "optimizers.md").read_text(encoding="utf-8")
    drifted = text.replace('f.coef("1mb1"', 'f.coef("one_minus_b1"', 1)
    ((path, name, code),) = [b for b in _module_blocks(drifted) if b[1] == "scale_by_adan"]
    assert code != _class_source(path, name)
