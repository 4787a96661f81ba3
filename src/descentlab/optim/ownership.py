"""The eager backend's ownership analysis: how often each value of a rule's form is read on
one evaluation path, so that the eager emitter (:mod:`~descentlab.optim.eager_emitter`) lets
the last reader of a value the step made overwrite it in place, and an assignment whose
expression reads its own entry once update that entry in place. A small compiler pass over the
forms (:mod:`~descentlab.optim.form`), independent of any backend's tensors.
"""

from __future__ import annotations

from .form import Expr, Form, Leaf, Op

__all__ = ["Uses"]


def _operands(e: Op) -> list[Expr]:
    return [*e.args, e.alpha] if e.alpha is not None else list(e.args)


def _reads(expr: Expr, name: str) -> int:
    """How often evaluating ``expr`` reads leaf ``name`` (each node evaluated once; a let's
    value is made at its own statement)."""
    count, seen, todo = 0, set(), [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, Leaf) and e.name == name:
            count += 1
        if id(e) not in seen and isinstance(e, Op):
            seen.add(id(e))
            todo.extend(_operands(e))
    return count


class Uses:
    """How often a form's values are read on one evaluation path (statements, then the output
    or the final form): per node, and per state version (``Form.state`` makes a new leaf at
    each call, all reading the same tensors)."""

    def __init__(self, form: Form, final: bool) -> None:
        self.nodes: dict[int, int] = {}
        self.leaves: dict[tuple[str, int], int] = {}
        seen: set[int] = set()
        todo: list[Expr] = [e for kind, _, e in form.statements if kind != "product"]
        root = form.final_expr if final else form.output
        if root is not None:
            todo.append(root)
        while todo:  # each entry: one read of its value
            e = todo.pop()
            self.nodes[id(e)] = self.nodes.get(id(e), 0) + 1
            if isinstance(e, Leaf):
                key = (e.name, e.version)
                self.leaves[key] = self.leaves.get(key, 0) + 1
            if id(e) not in seen and isinstance(e, Op):  # a let's value: made at its statement
                seen.add(id(e))
                todo.extend(_operands(e))
        #: per assign statement: how often its expression reads the entry it assigns (the
        #: earlier statements' reads are done by then, and a later one is refused by the form)
        self.own_reads: dict[int, int] = {}
        for i, (kind, key, expr) in enumerate(form.statements):
            if kind == "assign":
                self.own_reads[i] = _reads(expr, f"state:{key}")

    @staticmethod
    def of(form: Form, final: bool) -> Uses:
        """Cached on the form (a form is not changed once built; its length is checked)."""
        cache = form.__dict__.setdefault("_eager_uses", {})
        key = (final, len(form.statements), id(form.output), id(form.final_expr))
        got = cache.get(key)
        if got is None:
            got = cache[key] = Uses(form, final)
        return got
