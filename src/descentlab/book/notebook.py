"""A lecture's code cells as a Jupyter notebook (nbformat 4, written as plain JSON).

Each lecture page links ``<slug>.ipynb``: one Markdown cell per item (its statement and the
book's explanation) followed by its code cell, then the exercises with the code that
computes their answers, sealed as the page seals them: each exercise's ``answer = <formula>``
is shown encoded (:func:`sealed_code`) and decoded only when the cell runs. The notebook runs
top to bottom in one kernel: every code cell
begins with ``torch.manual_seed(0)``, as the build runs each cell (a fresh generator state),
so its printed output is the page's.

Example:
    >>> from descentlab.book.lectures import LECTURES
    >>> nb = lecture_notebook(LECTURES[0])
    >>> nb["nbformat"], nb["cells"][0]["cell_type"]
    (4, 'markdown')
    >>> all(c["source"][0].startswith("torch.manual_seed(0)") for c in code_cells(nb)[1:])
    True
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from descentlab.book.model import Lecture
from descentlab.book.render.pages import seal

__all__ = ["code_cells", "lecture_notebook", "sealed_code", "write_notebook"]

#: the first code cell: what every later cell may use (``_unseal``: the page's decoding)
_SETUP = """import base64

import torch

torch.set_num_threads(1)


def _unseal(sealed, key):  # an exercise's answer, encoded against reading ahead
    k = bytes.fromhex(key)
    return bytes(b ^ k[i % len(k)] for i, b in enumerate(base64.b64decode(sealed))).decode()"""


def sealed_code(code: str, salt: str) -> str:
    r"""``code`` with its top-level ``answer = <formula>`` replaced by the formula sealed
    (:func:`~descentlab.book.render.pages.seal`) and evaluated when the cell runs.

    Example:
        >>> line = sealed_code("x = 2\nanswer = x / 4\nprint(answer)", "ex1").splitlines()[1]
        >>> line.startswith('answer = eval(_unseal("'), "x / 4" in line
        (True, False)
    """
    lines = code.splitlines()
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
            "answer"
        ]:
            formula = ast.get_source_segment(code, node.value) or ""
            text, key = seal(" ".join(formula.split()), salt)
            first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
            lines[first : last + 1] = [f'answer = eval(_unseal("{text}", "{key}"))']
            return "\n".join(lines)
    return code


def _lines(text: str) -> list[str]:
    """``text`` as nbformat's list of lines (each but the last ends with a newline)."""
    lines = text.splitlines(keepends=True)
    if lines and lines[-1].endswith("\n"):
        lines[-1] = lines[-1][:-1]
    return lines or [""]


def _markdown(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": _lines(text)}


def _code(code: str, seeded: bool = True) -> dict[str, Any]:
    source = f"torch.manual_seed(0)\n{code.strip()}" if seeded else code
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": _lines(source),
    }


def lecture_notebook(lecture: Lecture, page: str = "") -> dict[str, Any]:
    """The notebook of ``lecture``: its items' code cells with their text, then its exercises
    (``page``: the lecture page's address, linked from the first cell)."""
    where = f" ([the page]({page}))" if page else ""
    cells = [
        _markdown(
            f"# {lecture.subject}\n\n{lecture.summary}\n\nThe code cells of the lecture book's "
            f"page{where}, in order. Run them top to bottom; each starts from the random state "
            "the book's build used, so the outputs are the page's."
        ),
        _code(_SETUP, seeded=False),
    ]
    for item in lecture.items:
        if not item.code:
            continue
        text = f"## Item {item.number} · {item.section}\n\n**{item.text}**"
        if item.explain:
            text += "\n\n" + "\n\n".join(" ".join(p.split()) for p in item.explain.split("\n\n"))
        cells += [_markdown(text), _code(item.code)]
    for i, ex in enumerate(lecture.exercises, 1):
        if not ex.numeric:  # open-ended: the question, to think through
            cells.append(_markdown(f"## Exercise {i}\n\n{ex.question}"))
            continue
        cells += [
            _markdown(f"## Exercise {i}\n\n{ex.question}\n\n*Try it before running the cell.*"),
            _code(sealed_code(ex.code, f"{lecture.slug}-ex{i}")),
        ]
    for n, cell in enumerate(cells):
        cell["id"] = f"cell-{n}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """The notebook's code cells, in order."""
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def write_notebook(path: str | Path, lecture: Lecture, page: str = "") -> Path:
    """Write :func:`lecture_notebook` to ``path`` (returned)."""
    path = Path(path)
    path.write_text(json.dumps(lecture_notebook(lecture, page), indent=1) + "\n", encoding="utf-8")
    return path
