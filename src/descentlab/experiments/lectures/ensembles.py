r"""Bagging and boosting (seed 002) with networks trained by descentlab's optimizers.

Seed 002: *bagging* (bootstrap aggregating) trains several models on bootstrap resamples of the
training set and averages their predictions, which is often better than a single model;
*boosting* trains weak learners in sequence, each focusing on the examples its predecessors
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
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from descentlab.experiments.lectures._common import (
    ExperimentResult,
    check_float,
    check_int,
    check_int_list,
    mean_std,
    resolve,
    timer,
)

__all__ = [
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
    from descentlab import optim
    from descentlab.problems import models

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
            raise ValueError(
                "sample_weight must be non-negative, shaped like y, with a positive sum"
            )
        w = w / w.sum()
    model.train()
    for _ in range(check_int("steps", steps)):
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
    members = check_int("members", members)
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
    k = check_int("n_classes", n_classes, 2)
    rounds = check_int("rounds", rounds)
    nu = check_float("learning_rate", learning_rate)
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
            w = np.exp(np.log(w) + alpha * incorrect * (w > 0))
            total = w.sum()
            if not np.isfinite(total) or total <= 0:
                res.stopped = f"sample weights overflowed at round {m}"
                break
            w /= total
    return res


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


def run(
    *,
    quick: bool = False,
    seed: int = 0,
    problem: str | None = None,
    n_train: int | None = None,
    hidden: Sequence[int] | None = None,
    steps: int | None = None,
    weak_hidden: Sequence[int] | None = None,
    weak_steps: int | None = None,
    optimizer: str | None = None,
    lr: float | None = None,
    members: int | None = None,
    rounds: int | None = None,
    repeats: int | None = None,
    stump_depth: int | None = None,
) -> ExperimentResult:
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
    from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier
    from sklearn.tree import DecisionTreeClassifier

    from descentlab import optim
    from descentlab.problems import data as datasets
    from descentlab.store import provenance

    o = resolve(dict(locals()), DEFAULTS, QUICK, quick)
    seed = check_int("seed", seed, 0)
    hid = check_int_list("hidden", o["hidden"])
    weak_hid = check_int_list("weak_hidden", o["weak_hidden"])
    n_steps = check_int("steps", o["steps"])
    n_weak_steps = check_int("weak_steps", o["weak_steps"])
    lr_ = check_float("lr", o["lr"])
    n_members = check_int("members", o["members"], 2)
    n_rounds = check_int("rounds", o["rounds"], 2)
    n_rep = check_int("repeats", o["repeats"], 2)
    depth = check_int("stump_depth", o["stump_depth"])
    optim.get(o["optimizer"])
    splits = datasets.load(o["problem"])
    if splits.task != "classification":
        raise ValueError(f"problem must be a classification dataset, got {o['problem']!r}")
    k = int(splits.n_classes)
    x_pool, y_pool = splits.x_train, splits.y_train
    n_pool = int(x_pool.shape[0])
    n = n_pool if o["n_train"] is None else check_int("n_train", o["n_train"], 2)
    if n > n_pool:
        raise ValueError(f"n_train must be <= {n_pool} for {o['problem']!r}, got {n}")
    splits.unseal_test()  # nothing is tuned: the test split only scores the fixed procedures
    x_test, y_test = splits.x_test, splits.y_test
    splits.seal_test()
    yt_np = y_test.numpy()
    x, y = x_pool, y_pool  # rebound to each repeat's training set below

    def net(idx: Tensor | None, s: int, weights: Any = None, weak: bool = False) -> _Net:
        xs, ys = (x, y) if idx is None else (x[idx], y[idx])
        return fit_network(
            xs, ys, k, sample_weight=None if weights is None else torch.as_tensor(weights),
            hidden=weak_hid if weak else hid, optimizer=o["optimizer"], lr=lr_,
            steps=n_weak_steps if weak else n_steps, seed=s,
        )  # fmt: skip

    keys = ("single", "member", "bagged", "weak", "boosted", "sk_tree", "sk_bagging", "sk_ada",
            "our_samme")  # fmt: skip
    rec: dict[str, dict[str, list[Any]]] = {
        key: {"test": [], "train": [], "proba": [], "seconds": [], "models": []} for key in keys
    }
    bag_curves, boost_curves, boost_alphas, boost_errors, sk_staged = [], [], [], [], []
    same_as_sklearn = True
    xtf = x_test.reshape(x_test.shape[0], -1).numpy()
    with timer() as elapsed:
        for r in range(n_rep):
            s = seed + r
            # Each repeat draws its own training set from the pool: the variance across
            # repeats is the variance over training sets that bagging is meant to reduce.
            pick = torch.randperm(n_pool, generator=torch.Generator().manual_seed(s))[:n]
            x, y = x_pool[pick], y_pool[pick]
            y_np = y.numpy()
            xf = x.reshape(n, -1).numpy()
            fitted: dict[str, tuple[Any, float]] = {}
            with timer() as t:
                single = net(None, s * 1000 + 999)
            fitted["single"] = (single, t())
            with timer() as t:
                bag = bagging(lambda idx, ms: net(idx, ms), n, n_members, seed=s)
            fitted["bagged"] = (bag, t())
            fitted["member"] = (bag[0], fitted["bagged"][1] / n_members)
            with timer() as t:
                weak = net(None, s * 1000 + 998, weak=True)
            fitted["weak"] = (weak, t())
            with timer() as t:
                boost = samme(lambda w, m, s=s: net(None, s * 1000 + 500 + m, w, weak=True),
                              x, y_np, k, n_rounds)  # fmt: skip
            fitted["boosted"] = (boost, t())
            # scikit-learn on the same training set (flattened inputs), and our SAMME with
            # the same trees (scikit-learn draws each tree's seed from its RandomState so).
            with timer() as t:
                tree = DecisionTreeClassifier(random_state=s).fit(xf, y_np)
            fitted["sk_tree"] = (tree, t())
            with timer() as t:
                bagged_trees = BaggingClassifier(
                    DecisionTreeClassifier(), n_estimators=n_members, random_state=s
                ).fit(xf, y_np)
            fitted["sk_bagging"] = (bagged_trees, t())
            with timer() as t:
                ada = AdaBoostClassifier(
                    DecisionTreeClassifier(max_depth=depth), n_estimators=n_rounds, random_state=s
                ).fit(xf, y_np)
            fitted["sk_ada"] = (ada, t())
            rs = np.random.RandomState(s)
            with timer() as t:
                ours = samme(
                    lambda w, m, rs=rs, xf=xf, y_np=y_np: DecisionTreeClassifier(
                        max_depth=depth, random_state=rs.randint(np.iinfo(np.int32).max)
                    ).fit(xf, y_np, sample_weight=w),
                    xf, y_np, k, n_rounds,
                )  # fmt: skip
            fitted["our_samme"] = (ours, t())
            same_as_sklearn = same_as_sklearn and bool(
                np.array_equal(ours.predict(xtf), ada.predict(xtf))
                and np.allclose(ours.alphas, ada.estimator_weights_[: len(ours.alphas)])
            )

            member_p = [b.proba(x_test).numpy() for b in bag]
            bag_curves.append(
                [
                    _acc(np.mean(member_p[: b + 1], axis=0).argmax(1), yt_np)
                    for b in range(n_members)
                ]
            )
            boost_curves.append(
                [_acc(boost.predict(x_test, m + 1), yt_np) for m in range(len(boost.learners))]
            )
            boost_alphas.append(boost.alphas)
            boost_errors.append(boost.errors)
            sk_staged.append([float(v) for v in ada.staged_score(xtf, yt_np)])
            votes = boost.votes(x_test)
            outputs = {
                "single": (single.proba(x_test).numpy(), single.predict(x), 1),
                "member": (member_p[0], bag[0].predict(x), 1),
                "bagged": (np.mean(member_p, axis=0),
                           np.mean([b.proba(x).numpy() for b in bag], 0).argmax(1), n_members),
                "weak": (weak.proba(x_test).numpy(), weak.predict(x), 1),
                "boosted": (votes / votes.sum(1, keepdims=True).clip(1e-12), boost.predict(x),
                            len(boost.learners)),
                "sk_tree": (tree.predict_proba(xtf), tree.predict(xf), 1),
                "sk_bagging": (bagged_trees.predict_proba(xtf), bagged_trees.predict(xf),
                               n_members),
                "sk_ada": (ada.predict_proba(xtf), ada.predict(xf), len(ada.estimators_)),
                "our_samme": (None, ours.predict(xf), len(ours.learners)),
            }  # fmt: skip
            for key, (p_test, train_pred, size) in outputs.items():
                test_pred = ours.predict(xtf) if p_test is None else p_test.argmax(1)
                if key == "member":  # the average member, not just the first
                    rec[key]["test"].append(float(np.mean([_acc(q.argmax(1), yt_np)
                                                           for q in member_p])))  # fmt: skip
                else:
                    rec[key]["test"].append(_acc(test_pred, yt_np))
                rec[key]["train"].append(_acc(train_pred, y_np))
                if p_test is not None and key != "sk_ada":  # its probabilities are not votes
                    rec[key]["proba"].append(p_test)
                rec[key]["seconds"].append(fitted[key][1])
                rec[key]["models"].append(size)
        seconds = elapsed()

    net_name = f"MLP {tuple(hid)}, {n_steps} steps"
    weak_name = f"MLP {tuple(weak_hid)}, {n_weak_steps} steps"
    trees = f"depth-{depth} trees"
    described = {
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
    rows: list[dict[str, Any]] = []
    for key in keys:
        rr = rec[key]
        method, learner, source = described[key]
        m_test, s_test = mean_std(rr["test"])
        rows.append({
            "method": method, "learner": learner, "models": max(rr["models"]), "source": source,
            "train_acc": mean_std(rr["train"])[0], "test_acc": m_test, "test_acc_std": s_test,
            "pred_variance": prediction_variance(rr["proba"]) if rr["proba"] else None,
            "seconds": mean_std(rr["seconds"])[0],
        })  # fmt: skip

    single_row, member_row, bag_row, weak_row, boost_row, tree_row, trees_row = rows[:7]
    checks = {
        "bagging lowers the prediction variance of the single network": (
            bag_row["pred_variance"] < single_row["pred_variance"]
        ),
        "the bagged ensemble is more accurate than its members": (
            bag_row["test_acc"] > member_row["test_acc"]
        ),
        "bagged networks are at least as accurate as the single network": (
            bag_row["test_acc"] >= single_row["test_acc"]
        ),
        "(scikit-learn) bagged trees beat a single tree, with lower variance": (
            trees_row["test_acc"] > tree_row["test_acc"]
            and trees_row["pred_variance"] < tree_row["pred_variance"]
        ),
        "boosting makes a strong learner of weak ones (+5 points or more)": (
            boost_row["test_acc"] > weak_row["test_acc"] + 0.05
        ),
        "our SAMME with scikit-learn's trees reproduces AdaBoostClassifier": same_as_sklearn,
    }

    def acc(r: dict[str, Any]) -> str:
        return f"{r['test_acc']:.3f}"

    measured = dict(zip(checks, [
        {"measured": f"{bag_row['pred_variance']:.3g} vs {single_row['pred_variance']:.3g}",
         "expected": "bagged < single"},
        {"measured": f"{acc(bag_row)} vs {acc(member_row)}", "expected": "bagged > member"},
        {"measured": f"{acc(bag_row)} vs {acc(single_row)}", "expected": "bagged ≥ single"},
        {"measured": f"acc {acc(trees_row)} vs {acc(tree_row)}, variance "
                     f"{trees_row['pred_variance']:.3g} vs {tree_row['pred_variance']:.3g}",
         "expected": "bagged trees: higher acc, lower variance"},
        {"measured": f"{acc(boost_row)} vs {acc(weak_row)}", "expected": "boosted ≥ weak + 0.05"},
        {"measured": "identical" if same_as_sklearn else "different", "expected": "identical"},
    ], strict=True))  # fmt: skip
    notes = [
        f"Each of {n_rep} repeats (seeds {seed}..{seed + n_rep - 1}) draws its own training set "
        f"of {n} examples from the {n_pool} of the {o['problem']} training split; every method "
        "fits it, networks full batch with descentlab's "
        f"{o['optimizer']} (lr {lr_:g}). Accuracies are means over repeats; `pred_variance` is "
        "the variance across repeats (training sets) of the predicted class probabilities on "
        "the test set, averaged over examples and classes (boosting: normalised votes).",
        "A bagging member sees about 63 % distinct examples, so it is weaker than the single "
        "network trained on all of them; averaging the members wins that back through lower "
        "variance. For networks, which vary little between training sets, the two roughly "
        "balance; for high-variance trees bagging is a large gain.",
        "Bagging averages models that err differently, so its predictions vary less from one "
        "repeat to the next (Breiman 1996); boosting reweights the examples its weak learners "
        "miss, turning learners barely better than chance into a strong classifier. The "
        "scikit-learn rows are an independent reference on the same training sets (trees "
        "instead of networks); `our SAMME` runs this module's boosting code on scikit-learn's "
        "trees and should equal `AdaBoostClassifier`.",
    ]
    data = {
        "bagging_curves": bag_curves,
        "boosting_curves": boost_curves,
        "boosting_alphas": boost_alphas,
        "boosting_errors": boost_errors,
        "sklearn_ada_staged": sk_staged,
        "test_acc": {key: rec[key]["test"] for key in keys},
        "labels": {key: described[key][0] for key in keys},
    }
    config = {"quick": quick, "seed": seed, **o, "hidden": hid, "weak_hidden": weak_hid}
    return ExperimentResult(
        name="ensembles",
        title=f"Bagging and boosting on {o['problem']}",
        columns=[
            "method",
            "learner",
            "models",
            "source",
            "train_acc",
            "test_acc",
            "test_acc_std",
            "pred_variance",
            "seconds",
        ],
        rows=rows,
        checks=checks,
        measured=measured,
        notes=notes,
        data=data,
        config=config,
        seconds=seconds,
        provenance=provenance(seed, experiment="ensembles"),
    )
