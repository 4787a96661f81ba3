"""The book's exercises are records in two tables, one tuple a lecture or chapter: each lecture's
in ``book/texts/practice.py`` and each in-depth chapter's in ``book/chapters/practice.py``; no
other module of the book writes an exercise, and each lecture's and chapter's exercises are
exactly its tuple there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import descentlab.book as book
from descentlab.book.chapters import CHAPTERS
from descentlab.book.chapters import practice as chapter_practice
from descentlab.book.texts import EXERCISES
from descentlab.book.texts import practice as lecture_practice

BOOK = Path(book.__file__).parent
TABLES = {Path("texts/practice.py"), Path("chapters/practice.py")}


def _writers(root: Path) -> set[Path]:
    """The modules under ``root`` that call ``Exercise(...)``."""
    found = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = (n for n in ast.walk(tree) if isinstance(n, ast.Call))
        if any(getattr(c.func, "id", getattr(c.func, "attr", "")) == "Exercise" for c in calls):
            found.add(path.relative_to(root))
    return found


def test_only_the_two_tables_write_exercises() -> None:
    assert _writers(BOOK) == TABLES


def test_a_module_writing_an_exercise_elsewhere_is_found(tmp_path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "l000.py").write_text('EXERCISES = (Exercise("q", "s"),)\n')
    (tmp_path / "other.py").write_text("x = model.Exercise\n")
    assert _writers(tmp_path) == {Path("texts/l000.py")}


def test_each_lecture_has_its_tuple() -> None:
    assert EXERCISES == lecture_practice.PRACTICE
    assert all(isinstance(v, tuple) and v for v in EXERCISES.values())


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_each_chapter_shows_a_tuple_of_the_chapter_table(chapter) -> None:
    tables = [v for k, v in vars(chapter_practice).items() if k in chapter_practice.__all__]
    assert any(chapter.exercises is t for t in tables), chapter.stem
