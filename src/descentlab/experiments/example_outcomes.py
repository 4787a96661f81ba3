"""Per-example test outcomes of a refit run: what the test set's own sampling noise is
measured from.

A comparison's test metric is a mean over the test examples; two optimizers evaluated on the
same sealed test set differ by examples that one gets right and the other does not. The
paired statistics of :mod:`descentlab.experiments.compare.stats` resample those examples as
well as the seeds, so each refit run stores its per-example outcomes beside its summary:
``"loss"``, each example's loss, and, for classification, ``"accuracy"``, the fraction of
each example's targets predicted right (1 or 0 for one label; a language model's sequence has
one target per position), one row of float64 bytes each (:meth:`Store.log_outcomes
<descentlab.store.Store.log_outcomes>`).

The outcomes are computed from the returned model (the weights the engine evaluated: an
optimizer with an eval mode stays in it after the run) and verified against the run's own
test summary before they are stored: their means must give ``test/loss`` and
``test/accuracy``. Where they do not, none are stored and the run's provenance says why
(``test_outcomes``), so that the statistics say the test noise is missing instead of using
numbers that disagree with the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["OUTCOMES_KEY", "SPLIT", "per_example", "read_outcomes", "save", "store_outcomes"]

#: The metric split that holds per-example test outcomes.
SPLIT = "test_example"
#: The provenance key saying whether a run's outcomes are stored (an int: how many
#: examples) or why not (a string).
OUTCOMES_KEY = "test_outcomes"
#: Examples evaluated at once.
CHUNK = 1024


def per_example(
    model: Any, x: Any, y: Any, loss_fn: Any, *, classification: bool, each: Any = None
) -> dict[str, np.ndarray]:
    """``{"loss": [n], "accuracy": [n]}`` (accuracy for classification; for regression with
    one output per target ``"squared_error"``, whose mean's root is the RMSE) of ``model`` on
    ``(x, y)`` in eval mode, one value per example, as
    :func:`~descentlab.engine.evaluation.evaluate` counts them (its mean loss is the mean of
    these; its accuracy counts every target, the same as these weighted by targets per
    example).

    ``each``: the same loss with ``reduction="none"``, for a loss whose per-example values
    are its values on one example at a time (cross-entropy: torch's log-softmax and
    negative log-likelihood compute each row alone, and a mean over one example is that
    example's value; ``tests/test_verdict_stats.py`` checks them equal bit for bit): one
    call per chunk instead of one per example. Used where the output is ``(n, classes)``
    with one target per example; else one example at a time.

    Example:
        >>> import torch
        >>> m = torch.nn.Linear(2, 3)
        >>> out = per_example(m, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long),
        ...                   torch.nn.CrossEntropyLoss(), classification=True)
        >>> sorted(out), out["loss"].shape
        (['accuracy', 'loss'], (4,))
    """
    import torch

    from descentlab.engine.splits import eval_batches

    was_training = model.training
    model.eval()
    losses: list[float] = []
    correct: list[float] = []
    squared: list[float] = []
    try:
        with torch.no_grad():
            for xb, yb in eval_batches(x, y, CHUNK):
                out = model(xb)
                if each is not None and out.dim() == 2 and yb.dim() == 1:
                    losses.extend(each(out, yb).tolist())
                else:
                    for i in range(int(xb.shape[0])):
                        losses.append(float(loss_fn(out[i : i + 1], yb[i : i + 1])))
                if classification:
                    if out.shape[-1] == 1:
                        pred = (out.reshape(-1) > 0).long().reshape(yb.shape)
                    else:
                        pred = out.argmax(-1).reshape(yb.shape)
                    hits = (pred == yb).reshape(yb.shape[0], -1).double().mean(1)
                    correct.extend(hits.tolist())
                elif out.numel() == yb.numel():
                    err = (out.reshape(yb.shape).double() - yb.double()) ** 2
                    squared.extend(err.reshape(yb.shape[0], -1).mean(1).tolist())
    finally:
        model.train(was_training)
    result = {"loss": np.asarray(losses, dtype=float)}
    if classification:
        result["accuracy"] = np.asarray(correct, dtype=float)
    elif len(squared) == len(losses):
        result["squared_error"] = np.asarray(squared, dtype=float)
    return result


def _check(outcomes: Mapping[str, np.ndarray], summary: Mapping[str, Any]) -> str | None:
    """Why ``outcomes`` disagree with the run's test summary, or None."""
    for name, values in outcomes.items():
        key = "rmse" if name == "squared_error" else name
        want = summary.get(f"test/{key}")
        if want is None or not math.isfinite(float(want)):
            return f"the run has no finite test/{key}"
        got = float(np.mean(values))
        if name == "squared_error":  # the run's RMSE is the root of their mean
            got = math.sqrt(got)
        if not math.isclose(got, float(want), rel_tol=1e-4, abs_tol=1e-6):
            return f"their mean {name} {got:.6g} is not the run's test/{name} {float(want):.6g}"
    return None


def store_outcomes(store: Any, run_id: int, model: Any, config: Any, splits: Any) -> None:
    """Compute a finished refit run's per-example test outcomes, check them against its
    summary, and store them (or, if they disagree, the reason in its provenance)."""
    from descentlab import losses

    record = store.get_run(run_id)
    spec = config.loss or splits.default_loss  # the evaluation loss, as the engine picks it
    loss_fn = losses.get(spec, **config.loss_options) if isinstance(spec, str) else spec
    each = None
    # (class weights or an ignored index make a mean over one example differ from its value)
    if spec == "cross_entropy" and set(config.loss_options) <= {"label_smoothing"}:
        each = losses.get(spec, **config.loss_options, reduction="none")
    from descentlab.engine.splits import test_data

    classification = splits.task == "classification"
    x, y = test_data(splits, next(iter(model.parameters())).device)
    outcomes = per_example(model, x, y, loss_fn, classification=classification, each=each)
    # (the run's accuracy counts every target: with equal targets per example, the mean of
    # the per-example fractions is the same number, and the check says where it is not)
    why = _check(outcomes, record.summary or {})
    if why is not None:
        store.update_provenance(run_id, {OUTCOMES_KEY: f"not stored: {why}"})
        return
    save(store, run_id, outcomes)


def save(store: Any, run_id: int, outcomes: Mapping[str, np.ndarray]) -> None:
    """Store a run's per-example outcomes (one row of bytes each,
    :meth:`~descentlab.store.Store.log_outcomes`) and their count in its provenance."""
    store.log_outcomes(run_id, outcomes)
    store.update_provenance(run_id, {OUTCOMES_KEY: len(next(iter(outcomes.values())))})


def read_outcomes(store: Any, record: Any) -> dict[str, np.ndarray] | str:
    """A refit run's stored per-example outcomes ``{"loss": [n], "accuracy": [n]}``, or why
    there are none (a string). A store written before the outcomes had a table of their own
    holds them as metric rows of the split :data:`SPLIT`, read as such."""
    state = (record.provenance or {}).get(OUTCOMES_KEY)
    if not isinstance(state, int):
        return state if isinstance(state, str) else "not recorded"
    out = store.outcomes(record.id)
    for name, values in out.items():
        if len(values) != state:
            return f"{SPLIT}/{name}: {len(values)} stored of {state}"
    if not out:
        for key, s in store.metrics(record.id, split=SPLIT).items():
            if len(s.values) != state or not np.array_equal(s.steps, np.arange(state)):
                return f"{key}: {len(s.values)} stored of {state}"
            out[key.split("/", 1)[1]] = np.asarray(s.values, dtype=float)
    if "loss" not in out and "accuracy" not in out:  # (an objective's: one of them)
        return "no per-example loss stored"
    return out
