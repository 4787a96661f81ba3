r"""Bagging and boosting (the DL-basics lecture) with networks trained by descentlab's optimizers.

The DL-basics lecture: *bagging* (bootstrap aggregating) trains several models on bootstrap
resamples of the training set and averages their predictions, which is often better than a single
model; *boosting* trains weak learners in sequence, each focusing on the examples its predecessors
got wrong, and combines them into a strong one.

- :func:`bagging` -- ``B`` networks, each on a bootstrap resample (``n`` draws with
  replacement), soft voting (mean of the predicted probabilities).
- :func:`samme` -- multi-class AdaBoost, SAMME (Zhu, Zou, Rosset, Hastie 2009), for any weak
  learner ``fit(sample_weight) -> predict``: with weighted error :math:`e_m` of learner
  :math:`h_m`,

  .. math::
      \alpha_m = \nu\Big(\log\frac{1 - e_m}{e_m} + \log(K - 1)\Big),\qquad
      w_i \leftarrow w_i\, e^{\alpha_m [h_m(x_i) \ne y_i]},\qquad
      H(x) = \arg\max_k \sum_m \alpha_m [h_m(x) = k].

  The bookkeeping follows ``sklearn.ensemble.AdaBoostClassifier`` exactly (weights clipped at
  machine epsilon, no reweighting after the last round, stop when a learner is perfect or no
  better than chance), so with scikit-learn's stumps as the weak learner both give the same
  ensemble (tested).
- the weak learner of the experiment is a tiny network trained by a descentlab optimizer on
  the *weighted* cross-entropy :math:`\sum_i w_i \ell_i / \sum_i w_i`.

Why direct loops and not :func:`descentlab.engine.run.train`: boosting needs per-example
weights in the loss, and an ensemble is dozens of small fits whose per-run evaluation and
storage would cost more than the fits.

The variance that bagging reduces is measured directly: the whole procedure is repeated with
``repeats`` seeds, and the *prediction variance* is the variance across repeats of the
predicted class probabilities, averaged over test examples and classes.

References:
    Breiman, "Bagging predictors", Machine Learning 1996.
    Zhu, Zou, Rosset, Hastie, "Multi-class AdaBoost", Statistics and its Interface 2009.
    Freund & Schapire, "A decision-theoretic generalization of on-line learning and an
    application to boosting", 1997.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from descentlab import optim
from descentlab.book.bibliography import cite_in
from descentlab.constraints import POSITIVE, POSITIVE_INT, Interval, ListOf, check, invalid
from descentlab.problems import models

from ._common import ExperimentResult, experiment, finish, load_classification, mean_std, timer

__all__ = [
    "CONSTRAINTS",
    "DEFAULTS",
    "QUICK",
    "SammeResult",
    "bagging",
    "fit_network",
    "prediction_variance",
    "run",
    "samme",
]

#: The full setting.
DEFAULTS: dict[str, Any] = {
    "problem": "digits",
    "n_train": 300,
    "hidden": [64],
    "steps": 150,
    "weak_hidden": [4],
    "weak_steps": 40,
    "optimizer": "adam",
    "lr": 0.01,
    "members": 10,
    "rounds": 40,
    "repeats": 3,
    "stump_depth": 1,
}

#: The small setting of the tests.
QUICK: dict[str, Any] = {
    "hidden": [32],
    "steps": 100,
    "members": 5,
    "rounds": 10,
    "repeats": 2,
    "weak_steps": 30,
}


# ------------------------------------------------------------------------------------------
# a network trained by a descentlab optimizer, with per-example weights


class _Net:
    """A trained network as a predictor (eval mode, no gradients)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()

    @torch.no_grad()
    def proba(self, x: Tensor) -> Tensor:
        return torch.softmax(self.model(x), dim=-1)

    def predict(self, x: Tensor) -> Tensor:
        return self.proba(x).argmax(-1)


def fit_network(
    x: Tensor,
    y: Tensor,
    n_classes: int,
    *,
    sample_weight: Tensor | None = None,
    hidden: Sequence[int] = (64,),
    optimizer: str = "adam",
    lr: float = 0.01,
    steps: int = 150,
    seed: int = 0,
) -> _Net:
    r"""Train ``digits_mlp(hidden)`` full batch on the weighted cross-entropy.

    .. math:: L(\theta) = \frac{\sum_i w_i\, \ell(f_\theta(x_i), y_i)}{\sum_i w_i}

    (uniform weights: the usual mean loss), with the descentlab optimizer ``optimizer``.

    Args:
        x: inputs ``(N, ...)``.
        y: labels ``(N,)``.
        n_classes: classes.
        sample_weight: ``(N,)`` non-negative weights (None: uniform).
        hidden: hidden widths.
        optimizer: descentlab optimizer name.
        lr: learning rate.
        steps: full-batch steps.
        seed: initialisation seed (the global generator is restored afterwards).

    Returns:
        a predictor with ``proba(x)`` and ``predict(x)``.

    Example:
        >>> x, y = torch.rand(30, 1, 8, 8), torch.arange(30) % 3
        >>> net = fit_network(x, y, 3, hidden=(8,), steps=50)
        >>> net.proba(x).shape, net.predict(x).shape
        (torch.Size([30, 3]), torch.Size([30]))
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = models.build(
            "digits_mlp", input_shape=tuple(x.shape[1:]), n_outputs=n_classes,
            hidden=tuple(hidden),
        )  # fmt: skip
    opt = optim.get(optimizer)(model.parameters(), lr=lr)
    w = None
    if sample_weight is not None:
        w = torch.as_tensor(sample_weight, dtype=torch.float32)
        if w.shape != y.shape or bool((w < 0).any()) or float(w.sum()) <= 0:
            must = f"non-negative weights of shape {tuple(y.shape)} with a positive sum"
            raise invalid("sample_weight", must, w)
        w = w / w.sum()
    model.train()
    for _ in range(check("steps", steps, POSITIVE_INT)):
        opt.zero_grad(set_to_none=True)
        if w is None:
            loss = F.cross_entropy(model(x), y)
        else:
            loss = (F.cross_entropy(model(x), y, reduction="none") * w).sum()
        loss.backward()
        opt.step()
    return _Net(model)


# ------------------------------------------------------------------------------------------
# bagging


def bagging(
    fit: Callable[[Tensor, int], Any],
    n: int,
    members: int,
    *,
    seed: int = 0,
) -> list[Any]:
    """Train ``members`` models, each on a bootstrap resample of the ``n`` training examples.

    Args:
        fit: ``fit(indices, member_seed) -> predictor`` trains on the examples ``indices``
            (``n`` draws with replacement).
        n: training examples.
        members: ensemble size.
        seed: seed of the resamples (member ``b`` uses ``seed * 1000 + b`` for its own
            initialisation).

    Returns:
        the predictors; average their ``proba`` for the bagged prediction.

    Example:
        >>> sizes = bagging(lambda idx, s: len(set(idx.tolist())), 100, 3)
        >>> all(50 < k < 80 for k in sizes)  # about 63 % distinct examples each
        True
    """
    members = check("members", members, POSITIVE_INT)
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for b in range(members):
        idx = torch.randint(0, n, (n,), generator=g)
        out.append(fit(idx, seed * 1000 + b))
    return out


# ------------------------------------------------------------------------------------------
# SAMME


@dataclass
class SammeResult:
    """A fitted SAMME ensemble.

    Attributes:
        learners: the weak learners (objects with ``predict(x)``).
        alphas: their weights :math:`\\alpha_m`.
        errors: their weighted training errors :math:`e_m`.
        n_classes: ``K``.
        stopped: why boosting stopped early, or None.
    """

    learners: list[Any]
    alphas: list[float]
    errors: list[float]
    n_classes: int
    stopped: str | None = None
    history: dict[str, list[float]] = field(default_factory=dict)

    def votes(self, x: Any, rounds: int | None = None) -> np.ndarray:
        """``(N, K)`` weighted votes :math:`\\sum_m \\alpha_m [h_m(x) = k]` of the first
        ``rounds`` learners (all by default)."""
        learners = self.learners[:rounds]
        first = np.asarray(learners[0].predict(x))
        v = np.zeros((first.shape[0], self.n_classes))
        for h, a in zip(learners, self.alphas, strict=False):
            pred = np.asarray(h.predict(x)).astype(np.int64)
            v[np.arange(pred.shape[0]), pred] += a
        return v

    def predict(self, x: Any, rounds: int | None = None) -> np.ndarray:
        """:math:`H(x) = \\arg\\max_k \\sum_m \\alpha_m [h_m(x) = k]`."""
        return self.votes(x, rounds).argmax(1)


def samme(
    fit_weak: Callable[[np.ndarray, int], Any],
    x: Any,
    y: Any,
    n_classes: int,
    rounds: int,
    *,
    learning_rate: float = 1.0,
) -> SammeResult:
    r"""Multi-class AdaBoost (SAMME) with any weak learner.

    Each round: fit a learner to the current weights, compute its weighted error
    :math:`e_m = \sum_i w_i [h_m(x_i) \ne y_i]` (weights sum to one), stop if it is 0
    (the learner is kept with :math:`\alpha = 1`) or :math:`\ge 1 - 1/K` (dropped), else
    weight it by :math:`\alpha_m = \nu(\log((1-e_m)/e_m) + \log(K-1))` and multiply the
    weights of its mistakes by :math:`e^{\alpha_m}` (not after the last round), then
    renormalise. Weights are clipped below at machine epsilon, as scikit-learn does.

    Args:
        fit_weak: ``fit_weak(sample_weight, round) -> learner`` with ``learner.predict(x)``
            returning labels; ``sample_weight`` is a float64 array summing to one.
        x: training inputs (passed to ``predict``).
        y: ``(N,)`` integer labels in ``[0, K)``.
        n_classes: ``K`` (>= 2).
        rounds: maximum number of learners.
        learning_rate: :math:`\nu` (> 0).

    Returns:
        :class:`SammeResult`.

    Raises:
        ValueError: the first learner is no better than chance.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> x, y = load_iris(return_X_y=True)
        >>> stump = lambda w, m: DecisionTreeClassifier(max_depth=1).fit(x, y, sample_weight=w)
        >>> boosted = samme(stump, x, y, 3, 10)
        >>> float((boosted.predict(x) == y).mean()) > 0.9
        True
    """
    k = check("n_classes", n_classes, Interval(Integral, 2, None))
    rounds = check("rounds", rounds, POSITIVE_INT)
    nu = check("learning_rate", learning_rate, POSITIVE)
    y_np = np.asarray(y).astype(np.int64)
    n = y_np.shape[0]
    w = np.full(n, 1.0 / n)
    tiny = np.finfo(np.float64).eps
    res = SammeResult([], [], [], k)
    for m in range(rounds):
        w = np.clip(w, tiny, None)
        learner = fit_weak(w.copy(), m)
        incorrect = np.asarray(learner.predict(x)).astype(np.int64) != y_np
        err = float(np.average(incorrect, weights=w))
        if err <= 0:
            res.learners.append(learner)
            res.alphas.append(1.0)
            res.errors.append(0.0)
            res.stopped = f"learner {m} is perfect on the training set"
            break
        if err >= 1.0 - 1.0 / k:
            if not res.learners:
                raise ValueError(
                    f"the first weak learner is no better than chance (error {err:.3f} >= "
                    f"{1 - 1 / k:.3f}); make it stronger"
                )
            res.stopped = f"learner {m} is no better than chance (error {err:.3f})"
            break
        alpha = nu * (np.log((1.0 - err) / err) + np.log(k - 1.0))
        res.learners.append(learner)
        res.alphas.append(float(alpha))
        res.errors.append(err)
        if m < rounds - 1:
            w = _reweight(w, alpha, incorrect)
            if w is None:
                res.stopped = f"sample weights overflowed at round {m}"
                break
    return res


def _reweight(w: np.ndarray, alpha: float, incorrect: np.ndarray) -> np.ndarray | None:
    """SAMME's new sample weights: the mistakes' multiplied by ``e^alpha``, renormalised
    (None when they overflow)."""
    w = np.exp(np.log(w) + alpha * incorrect * (w > 0))
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        return None
    return w / total


def prediction_variance(probas: Sequence[Tensor | np.ndarray]) -> float:
    """Variance across repeats of predicted class probabilities, averaged over examples and
    classes: ``mean_{i,k} Var_r p_r(k | x_i)`` (population variance over the repeats).

    Example:
        >>> round(prediction_variance([np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])]), 6)
        0.04
    """
    p = np.stack([np.asarray(q, dtype=np.float64) for q in probas])
    if p.shape[0] < 2:
        raise ValueError(f"prediction_variance needs at least 2 repeats, got {p.shape[0]}")
    return float(p.var(axis=0).mean())


# ------------------------------------------------------------------------------------------
# the experiment


def _acc(pred: Any, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == y))


@dataclass
class _Setting:
    """The checked options and the data of one ensembles run."""

    hidden: list[int]
    weak_hidden: list[int]
    steps: int
    weak_steps: int
    optimizer: str
    lr: float
    members: int
    rounds: int
    repeats: int
    depth: int
    n_classes: int
    n: int
    x_pool: Tensor
    y_pool: Tensor
    x_test: Tensor
    y_test: Tensor

    @property
    def n_pool(self) -> int:
        return int(self.x_pool.shape[0])

    def net(self, x: Tensor, y: Tensor, seed: int, weights: Any = None, weak: bool = False) -> _Net:
        """A (weak) network fitted to ``x, y`` (with sample weights)."""
        return fit_network(
            x, y, self.n_classes,
            sample_weight=None if weights is None else torch.as_tensor(weights),
            hidden=self.weak_hidden if weak else self.hidden, optimizer=self.optimizer,
            lr=self.lr, steps=self.weak_steps if weak else self.steps, seed=seed,
        )  # fmt: skip


_AT_LEAST_2 = Interval(Integral, 2, None)

#: The options' constraints.
CONSTRAINTS: dict[str, list[Any]] = {
    "hidden": [POSITIVE_INT, ListOf(POSITIVE_INT)],  # one int: one hidden layer
    "weak_hidden": [POSITIVE_INT, ListOf(POSITIVE_INT)],
    "steps": [POSITIVE_INT],
    "weak_steps": [POSITIVE_INT],
    "lr": [POSITIVE],
    "members": [_AT_LEAST_2],
    "rounds": [_AT_LEAST_2],
    "repeats": [_AT_LEAST_2],
    "stump_depth": [POSITIVE_INT],
}


def _setting(o: dict[str, Any], v: dict[str, Any]) -> _Setting:
    """The setting of the checked options ``v`` (and of ``o``: the optimizer, the data)."""
    for key in ("hidden", "weak_hidden"):
        v[key] = v[key] if isinstance(v[key], list) else [v[key]]
    optim.get(o["optimizer"])
    data = load_classification(o["problem"], o["n_train"], minimum=2)
    splits = data.splits
    return _Setting(
        v["hidden"], v["weak_hidden"], v["steps"], v["weak_steps"], o["optimizer"], v["lr"],
        v["members"], v["rounds"], v["repeats"], v["stump_depth"], int(splits.n_classes),
        data.n, splits.x_train, splits.y_train, data.x_test, data.y_test,
    )  # fmt: skip


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    with timer() as t:
        out = fn()
    return out, t()


def _fit_all(st: _Setting, s: int, x: Tensor, y: Tensor) -> dict[str, tuple[Any, float]]:
    """Every method fitted to one repeat's training set: ``{key: (model, seconds)}``."""
    from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier  # seconds to import
    from sklearn.tree import DecisionTreeClassifier

    n, k, y_np = st.n, st.n_classes, y.numpy()
    xf = x.reshape(n, -1).numpy()
    fitted: dict[str, tuple[Any, float]] = {}
    fitted["single"] = _timed(lambda: st.net(x, y, s * 1000 + 999))
    fitted["bagged"] = _timed(
        lambda: bagging(lambda idx, ms: st.net(x[idx], y[idx], ms), n, st.members, seed=s)
    )
    fitted["member"] = (fitted["bagged"][0][0], fitted["bagged"][1] / st.members)
    fitted["weak"] = _timed(lambda: st.net(x, y, s * 1000 + 998, weak=True))
    fitted["boosted"] = _timed(lambda: samme(
        lambda w, m: st.net(x, y, s * 1000 + 500 + m, w, weak=True), x, y_np, k, st.rounds
    ))  # fmt: skip
    # scikit-learn on the same training set (flattened inputs), and our SAMME with the same
    # trees (scikit-learn draws each tree's seed from its RandomState so).
    fitted["sk_tree"] = _timed(lambda: DecisionTreeClassifier(random_state=s).fit(xf, y_np))
    fitted["sk_bagging"] = _timed(lambda: BaggingClassifier(
        DecisionTreeClassifier(), n_estimators=st.members, random_state=s
    ).fit(xf, y_np))  # fmt: skip
    fitted["sk_ada"] = _timed(lambda: AdaBoostClassifier(
        DecisionTreeClassifier(max_depth=st.depth), n_estimators=st.rounds, random_state=s
    ).fit(xf, y_np))  # fmt: skip
    rs = np.random.RandomState(s)
    fitted["our_samme"] = _timed(lambda: samme(
        lambda w, m: DecisionTreeClassifier(
            max_depth=st.depth, random_state=rs.randint(np.iinfo(np.int32).max)
        ).fit(xf, y_np, sample_weight=w),
        xf, y_np, k, st.rounds,
    ))  # fmt: skip
    return fitted


_KEYS = ("single", "member", "bagged", "weak", "boosted", "sk_tree", "sk_bagging", "sk_ada",
         "our_samme")  # fmt: skip


@dataclass
class _Record:
    """What the repeats measured."""

    per: dict[str, dict[str, list[Any]]] = field(
        default_factory=lambda: {
            key: {"test": [], "train": [], "proba": [], "seconds": [], "models": []}
            for key in _KEYS
        }
    )
    bag_curves: list[list[float]] = field(default_factory=list)
    boost_curves: list[list[float]] = field(default_factory=list)
    boost_alphas: list[list[float]] = field(default_factory=list)
    boost_errors: list[list[float]] = field(default_factory=list)
    sk_staged: list[list[float]] = field(default_factory=list)
    same_as_sklearn: bool = True


def _outputs(
    st: _Setting, fitted: dict[str, tuple[Any, float]], x: Tensor, member_p: list[np.ndarray]
) -> dict[str, tuple[Any, Any, int]]:
    """Each method's ``(test probabilities, training predictions, models)``."""
    single, bag, weak, boost, tree, bagged_trees, ada, ours = (
        fitted[key][0] for key in _KEYS if key != "member"
    )
    x_test = st.x_test
    xtf, xf = x_test.reshape(x_test.shape[0], -1).numpy(), x.reshape(st.n, -1).numpy()
    votes = boost.votes(x_test)
    return {
        "single": (single.proba(x_test).numpy(), single.predict(x), 1),
        "member": (member_p[0], bag[0].predict(x), 1),
        "bagged": (np.mean(member_p, axis=0),
                   np.mean([b.proba(x).numpy() for b in bag], 0).argmax(1), st.members),
        "weak": (weak.proba(x_test).numpy(), weak.predict(x), 1),
        "boosted": (votes / votes.sum(1, keepdims=True).clip(1e-12), boost.predict(x),
                    len(boost.learners)),
        "sk_tree": (tree.predict_proba(xtf), tree.predict(xf), 1),
        "sk_bagging": (bagged_trees.predict_proba(xtf), bagged_trees.predict(xf), st.members),
        "sk_ada": (ada.predict_proba(xtf), ada.predict(xf), len(ada.estimators_)),
        "our_samme": (None, ours.predict(xf), len(ours.learners)),
    }  # fmt: skip


def _score(
    st: _Setting, rec: _Record, fitted: dict[str, tuple[Any, float]], x: Tensor, y: Tensor
) -> None:
    """Record one repeat: accuracies, probabilities, curves, and whether our SAMME is
    scikit-learn's."""
    yt_np, y_np = st.y_test.numpy(), y.numpy()
    xtf = st.x_test.reshape(st.x_test.shape[0], -1).numpy()
    bag, boost, ada, ours = (fitted[key][0] for key in ("bagged", "boosted", "sk_ada", "our_samme"))
    rec.same_as_sklearn = rec.same_as_sklearn and bool(
        np.array_equal(ours.predict(xtf), ada.predict(xtf))
        and np.allclose(ours.alphas, ada.estimator_weights_[: len(ours.alphas)])
    )
    member_p = [b.proba(st.x_test).numpy() for b in bag]
    rec.bag_curves.append(
        [_acc(np.mean(member_p[: b + 1], axis=0).argmax(1), yt_np) for b in range(st.members)]
    )
    rec.boost_curves.append(
        [_acc(boost.predict(st.x_test, m + 1), yt_np) for m in range(len(boost.learners))]
    )
    rec.boost_alphas.append(boost.alphas)
    rec.boost_errors.append(boost.errors)
    rec.sk_staged.append([float(v) for v in ada.staged_score(xtf, yt_np)])
    for key, (p_test, train_pred, size) in _outputs(st, fitted, x, member_p).items():
        r = rec.per[key]
        test_pred = ours.predict(xtf) if p_test is None else p_test.argmax(1)
        if key == "member":  # the average member, not just the first
            r["test"].append(float(np.mean([_acc(q.argmax(1), yt_np) for q in member_p])))
        else:
            r["test"].append(_acc(test_pred, yt_np))
        r["train"].append(_acc(train_pred, y_np))
        if p_test is not None and key != "sk_ada":  # its probabilities are not votes
            r["proba"].append(p_test)
        r["seconds"].append(fitted[key][1])
        r["models"].append(size)


def _repeats(st: _Setting, seed: int) -> _Record:
    """Every method on ``repeats`` training sets drawn from the pool."""
    rec = _Record()
    for r in range(st.repeats):
        s = seed + r
        # Each repeat draws its own training set from the pool: the variance across
        # repeats is the variance over training sets that bagging is meant to reduce.
        pick = torch.randperm(st.n_pool, generator=torch.Generator().manual_seed(s))[: st.n]
        x, y = st.x_pool[pick], st.y_pool[pick]
        _score(st, rec, _fit_all(st, s, x, y), x, y)
    return rec


def _described(st: _Setting) -> dict[str, tuple[str, str, str]]:
    """Each method's (name, learner, source) in the table."""
    net_name = f"MLP {tuple(st.hidden)}, {st.steps} steps"
    weak_name = f"MLP {tuple(st.weak_hidden)}, {st.weak_steps} steps"
    trees = f"depth-{st.depth} trees"
    return {
        "single": ("single network", net_name, "descentlab"),
        "member": ("one bagging member (mean)", net_name + ", bootstrap", "descentlab"),
        "bagged": ("bagging (soft vote)", net_name, "descentlab"),
        "weak": ("weak network", weak_name, "descentlab"),
        "boosted": ("AdaBoost.SAMME", weak_name, "descentlab"),
        "sk_tree": ("DecisionTreeClassifier", "tree", "scikit-learn"),
        "sk_bagging": ("BaggingClassifier", "trees", "scikit-learn"),
        "sk_ada": ("AdaBoostClassifier (SAMME)", trees, "scikit-learn"),
        "our_samme": ("our SAMME", trees, "descentlab + scikit-learn trees"),
    }


def _rows(rec: _Record, described: dict[str, tuple[str, str, str]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in _KEYS:
        rr = rec.per[key]
        method, learner, source = described[key]
        m_test, s_test = mean_std(rr["test"])
        rows.append({
            "method": method, "learner": learner, "models": max(rr["models"]), "source": source,
            "train_acc": mean_std(rr["train"])[0], "test_acc": m_test, "test_acc_std": s_test,
            "pred_variance": prediction_variance(rr["proba"]) if rr["proba"] else None,
            "seconds": mean_std(rr["seconds"])[0],
        })  # fmt: skip
    return rows


def _check(result: ExperimentResult, same_as_sklearn: bool) -> None:
    """The lecture's predictions, from the table."""
    single, member, bag, weak, boost, tree, trees = result.rows[:7]

    def acc(r: dict[str, Any]) -> str:
        return f"{r['test_acc']:.3f}"

    result.check(
        "bagging lowers the prediction variance of the single network",
        bag["pred_variance"] < single["pred_variance"],
        f"{bag['pred_variance']:.3g} vs {single['pred_variance']:.3g}", "bagged < single",
    )  # fmt: skip
    result.check(
        "the bagged ensemble is more accurate than its members",
        bag["test_acc"] > member["test_acc"], f"{acc(bag)} vs {acc(member)}", "bagged > member",
    )  # fmt: skip
    result.check(
        "bagged networks are at least as accurate as the single network",
        bag["test_acc"] >= single["test_acc"], f"{acc(bag)} vs {acc(single)}", "bagged ≥ single",
    )  # fmt: skip
    result.check(
        "(scikit-learn) bagged trees beat a single tree, with lower variance",
        trees["test_acc"] > tree["test_acc"] and trees["pred_variance"] < tree["pred_variance"],
        f"acc {acc(trees)} vs {acc(tree)}, variance "
        f"{trees['pred_variance']:.3g} vs {tree['pred_variance']:.3g}",
        "bagged trees: higher acc, lower variance",
    )  # fmt: skip
    result.check(
        "boosting makes a strong learner of weak ones (+5 points or more)",
        boost["test_acc"] > weak["test_acc"] + 0.05, f"{acc(boost)} vs {acc(weak)}",
        "boosted ≥ weak + 0.05",
    )  # fmt: skip
    result.check(
        "our SAMME with scikit-learn's trees reproduces AdaBoostClassifier", same_as_sklearn,
        "identical" if same_as_sklearn else "different", "identical",
    )  # fmt: skip


def _notes(st: _Setting, o: dict[str, Any], seed: int) -> list[str]:
    return [
        f"Each of {st.repeats} repeats (seeds {seed}..{seed + st.repeats - 1}) draws its own "
        f"training set of {st.n} examples from the {st.n_pool} of the {o['problem']} training "
        "split; every method fits it, networks full batch with descentlab's "
        f"{o['optimizer']} (lr {st.lr:g}). Accuracies are means over repeats; `pred_variance` "
        "is the variance across repeats (training sets) of the predicted class probabilities "
        "on the test set, averaged over examples and classes (boosting: normalised votes).",
        "A bagging member sees about 63 % distinct examples, so it is weaker than the single "
        "network trained on all of them; averaging the members wins that back through lower "
        "variance. For networks, which vary little between training sets, the two roughly "
        "balance; for high-variance trees bagging is a large gain.",
        "Bagging averages models that err differently, so its predictions vary less from one "
        f"repeat to the next {cite_in('breiman1996')}; boosting reweights the examples its "
        "weak learners miss, turning learners barely better than chance into a strong "
        "classifier. The scikit-learn rows are an independent reference on the same "
        "training sets (trees instead of networks); `our SAMME` runs this module's "
        "boosting code on scikit-learn's trees and should equal `AdaBoostClassifier`.",
    ]


@experiment(DEFAULTS, QUICK, CONSTRAINTS)
def run(o: dict[str, Any], v: dict[str, Any], *, quick: bool, seed: int) -> ExperimentResult:
    """Single network vs bagged networks vs AdaBoost (SAMME) of weak networks, on digits.

    Every network is trained full batch by the descentlab ``optimizer`` on the training
    split; the procedure is repeated ``repeats`` times (seeds ``seed ..``) for means,
    standard deviations and the prediction variance. scikit-learn's decision tree,
    ``BaggingClassifier`` of trees and ``AdaBoostClassifier`` of depth-``stump_depth``
    trees (SAMME) are fitted to the same split as an independent reference, and our
    :func:`samme` with the same scikit-learn stumps shows the boosting code reproduces
    scikit-learn's.

    Args:
        quick: the small preset.
        seed: first seed.
        problem: a classification dataset (``digits``).
        hidden, steps: the single and bagged networks.
        weak_hidden, weak_steps: the boosted weak networks.
        optimizer, lr: training of all networks.
        members: bagged networks.
        rounds: boosting rounds.
        repeats: repetitions with different seeds (>= 2).
        stump_depth: depth of scikit-learn's boosted trees.

    Returns:
        an :class:`ExperimentResult`, one row per method.

    Example:
        >>> r = run(quick=True)  # doctest: +SKIP
        >>> boosted = r.row(method="AdaBoost.SAMME")  # doctest: +SKIP
        >>> boosted["test_acc"] > r.row(method="weak network")["test_acc"]  # doctest: +SKIP
        True
    """
    st = _setting(o, v)
    with timer() as elapsed:
        rec = _repeats(st, seed)
        seconds = elapsed()
    described = _described(st)
    columns = ["method", "learner", "models", "source", "train_acc", "test_acc", "test_acc_std",
               "pred_variance", "seconds"]  # fmt: skip
    result = ExperimentResult("ensembles", f"Bagging and boosting on {o['problem']}", columns,
                              _rows(rec, described))  # fmt: skip
    _check(result, rec.same_as_sklearn)
    result.data = {
        "bagging_curves": rec.bag_curves,
        "boosting_curves": rec.boost_curves,
        "boosting_alphas": rec.boost_alphas,
        "boosting_errors": rec.boost_errors,
        "sklearn_ada_staged": rec.sk_staged,
        "test_acc": {key: rec.per[key]["test"] for key in _KEYS},
        "labels": {key: described[key][0] for key in _KEYS},
    }
    options = {**o, "hidden": st.hidden, "weak_hidden": st.weak_hidden}
    return finish(
        result, quick=quick, seed=seed, options=options, seconds=seconds, notes=_notes(st, o, seed)
    )
