"""Labels from data: a table's column heading, a figure's title and a card's column name a
training run's series by one mapping (:data:`descentlab.book.series.WORDS`), and a column
headed by a series' words is read against that series in the table's runs -- two headings or
two columns swapped in a table no figure names are refused (a mutant of
scripts/mutate_book.py each)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from descentlab.book import series
from descentlab.book.chapters._common import (
    Numbers,
    Table,
    labels_check,
    results_table,
    string_literals,
)
from descentlab.book.render.chapter import ChapterPage, Part

BOOK = Path(series.__file__).resolve().parent


def _run(**ends: float) -> SimpleNamespace:
    """A training run's result whose series ``key`` (``train_loss`` for ``train/loss``) end
    at the value given."""
    metrics = {
        k.replace("_", "/", 1): SimpleNamespace(steps=[0, 10], values=[2.5, v])
        for k, v in ends.items()
    }
    return SimpleNamespace(metrics=metrics)


_SGD = _run(train_loss=0.5, val_loss=0.6, test_accuracy=0.81)
_ADAM = _run(train_loss=0.1, val_loss=0.2, test_accuracy=0.93)
_RUNS = {"SGD": [_SGD], "Adam": [_ADAM]}
_TR, _VA, _ACC = "training loss", "validation loss", "test accuracy"
_ROWS = [["SGD", 0.5, 0.6, 0.81], ["Adam", 0.1, 0.2, 0.93]]


def _check(table: Table) -> bool:
    """The chapter's labels check on a page of ``table`` alone: no figure names a heading."""
    page = ChapterPage("t", "deep-t.html", "", (), [Part("p", "P", [table, []])])
    return labels_check(page, Numbers(400, 2)).ok


@pytest.mark.parametrize(
    ("columns", "rows", "runs", "ok"),
    [
        ([_TR, _VA, _ACC], _ROWS, _RUNS, True),
        (["Training Loss", _VA, _ACC], _ROWS, _RUNS, True),  # the words in any case
        (["rate", _VA, "loss gap"], _ROWS, _RUNS, True),  # headings naming no series: not read
        ([_TR, _VA, _ACC], [*_ROWS, ["AdaGrad", 0.3, 0.4, 0.5]], _RUNS, True),  # a row, no runs
        ([_TR, _VA, _ACC], [["SGD", 0.3, 0.4, 0.8], ["Adam", 0.15, 0.25, 0.95]],
         {"SGD": [_SGD, _run(train_loss=0.1, val_loss=0.2, test_accuracy=0.79)],
          "Adam": [_ADAM, _run(train_loss=0.2, val_loss=0.3, test_accuracy=0.97)]}, True),  # seeds
        ([_VA, _TR, _ACC], _ROWS, _RUNS, False),  # two headings swapped
        ([_TR, _ACC, _VA], _ROWS, _RUNS, False),
        ([_TR, _VA, _ACC], [["SGD", 0.6, 0.5, 0.81], ["Adam", 0.2, 0.1, 0.93]], _RUNS, False),
        ([_TR, _VA, _ACC], [["SGD", 0.1, 0.6, 0.81], ["Adam", 0.5, 0.2, 0.93]], _RUNS, False),
        ([_TR, "validation accuracy", _ACC], _ROWS, _RUNS, False),  # a series no run records
        ([_TR, _VA, _ACC], [["SGD", 0.5, 0.6, 0.81], ["Adam", 0.1, 0.2, 0.93]],
         {"SGD": [_SGD, _ADAM], "Adam": [_ADAM]}, False),  # one seed's value, not the mean
        ([_TR, _VA, _ACC], _ROWS, {"SGD, η = 0.1": [_SGD], "Adam, η = 0.001": [_ADAM]},
         False),  # no row is a run: nothing would be read
    ],
)  # fmt: skip
def test_a_column_headed_by_a_series_holds_that_series(columns, rows, runs, ok):
    assert _check(Table(["optimizer", *columns], rows, "runs", runs)) is ok


def test_a_results_table_is_headed_by_the_words_of_its_series():
    res = {"SGD": _SGD, "Adam": _ADAM}
    table = results_table(res, "runs", "train/loss", "val/loss", "test/accuracy")
    assert table.columns == ["run", _TR, _VA, _ACC]
    assert table.rows == _ROWS
    assert _check(table)
    # a heading typed beside a value read elsewhere: the two test columns swapped
    typed = results_table(
        res,
        "runs",
        "train/loss",
        (_ACC, lambda r: r.metrics["val/loss"].values[-1]),
        (_VA, lambda r: r.metrics["test/accuracy"].values[-1]),
    )
    assert not _check(typed)


def test_the_words_of_a_series_are_typed_in_one_place():
    """No module of the book types a series' words as a label of its own (a heading, a title,
    an axis): each reads them from ``WORDS``. Prose that uses the words is not a label."""
    words = {w.lower() for w in series.WORDS.values()}
    alternatives = "|".join(map(re.escape, words))
    quoted = re.compile(r"[\"']\s*(?:" + alternatives + r")\s*[\"']", re.I)
    texts = {p: p.read_text(encoding="utf-8") for p in sorted(BOOK.rglob("*.py"))}
    typed = [
        f"{path.relative_to(BOOK)}: {lit!r}"
        for path, text in texts.items()
        if path.name != "series.py" and quoted.search(text)  # only these are parsed
        for lit in string_literals(text)
        if lit.strip().lower() in words
    ]
    assert typed == []
