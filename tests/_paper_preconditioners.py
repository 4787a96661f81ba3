"""Float64 loops written from the papers, for tests/test_shampoo_soap.py (NumPy and SciPy:
nothing of descentlab's or torch's matrix code).

- :func:`shampoo_loop`: Gupta, Koren & Singer (2018), Algorithm 1 (matrices) and 2 (tensors
  of any order; a vector is full-matrix AdaGrad), with the practical parts of Distributed
  Shampoo (Anil et al., 2020; Shi et al., 2023) as switches: statistics averaged with
  ``beta2`` (1: the paper's sum), blocks cut explicitly by index ranges, roots every ``freq``
  steps, per-parameter grafting, momentum with a grafted warm-up before ``start``, decoupled
  weight decay.
- :func:`soap_loop`: Vyas et al. (2024), Algorithm 3 (one step of SOAP for an m x n layer)
  with Algorithm 4 (the eigenbasis refreshed by one power-iteration step and a QR
  decomposition, eigenvalue estimates sorted), and the reference implementation's first step
  (statistics and eigenbases only), bias correction and weight decay; for matrices and
  vectors (one-sided, ``precondition_1d``) and dimensions kept in their own basis past
  ``max_dim``.

Both take the starting parameters and ``grad(t, params) -> gradients`` and return the
parameters after each step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import scipy.linalg

Grad = Callable[[int, list[np.ndarray]], list[np.ndarray]]


def _inverse_root(a: np.ndarray, p: int) -> np.ndarray:
    lam, v = scipy.linalg.eigh(a)
    return (v * lam ** (-1.0 / p)) @ v.T


def _mode_product(x: np.ndarray, m: np.ndarray, k: int) -> np.ndarray:
    """``x ×_k m``: ``m`` applied to dimension ``k`` of ``x``."""
    return np.moveaxis(np.tensordot(m, x, axes=(1, k)), 0, k)


def _unfold(x: np.ndarray, k: int) -> np.ndarray:
    return np.moveaxis(x, k, 0).reshape(x.shape[k], -1)


def shampoo_loop(
    params: list[np.ndarray],
    grad: Grad,
    steps: int,
    lr: float,
    eps: float,
    *,
    beta1: float = 0.0,
    beta2: float = 1.0,
    block: int | None = None,
    freq: int = 1,
    start: int = 1,
    graft: str = "none",
    graft_eps: float = 1e-8,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    precondition_1d: bool = True,
) -> list[list[np.ndarray]]:
    ws = [w.astype(np.float64).copy() for w in params]
    w2 = 1.0 if beta2 == 1 else 1.0 - beta2
    per: list[dict] = []
    for w in ws:
        shape = w.shape or (1,)
        kept = w.ndim > 1 or precondition_1d
        b = block or max(shape)
        ranges = [[slice(a, min(a + b, d)) for a in range(0, d, b)] for d in shape]
        blocks = list(itertools.product(*ranges)) if kept else []
        stats = [[eps * np.eye(s.stop - s.start) for s in ix] for ix in blocks]
        roots = [[np.eye(s.stop - s.start) for s in ix] for ix in blocks]
        per.append({"blocks": blocks, "L": stats, "H": roots, "m_s": np.zeros(shape),
                    "m_g": np.zeros(shape), "acc": np.zeros(shape)})  # fmt: skip
    out = []
    for t in range(1, steps + 1):
        gs = grad(t, ws)
        for w, g, st in zip(ws, gs, per, strict=True):
            g = g.reshape(st["m_s"].shape)
            if graft == "adagrad":
                st["acc"] += g * g
                a = g / (np.sqrt(st["acc"]) + graft_eps)
            elif graft in ("rmsprop", "adam"):
                st["acc"] = beta2 * st["acc"] + (1 - beta2) * g * g
                v = st["acc"] / (1 - beta2**t) if graft == "adam" else st["acc"]
                a = g / (np.sqrt(v) + graft_eps)
            else:
                a = g
            if st["blocks"]:
                s = np.zeros_like(g)
                for ix, stats, roots in zip(st["blocks"], st["L"], st["H"], strict=True):
                    gb = g[ix]
                    for k, lk in enumerate(stats):
                        u = _unfold(gb, k)
                        stats[k] = beta2 * lk + w2 * u @ u.T
                        if t % freq == 0:
                            roots[k] = _inverse_root(stats[k], 2 * g.ndim)
                    sb = gb
                    for k, hk in enumerate(roots):
                        sb = _mode_product(sb, hk, k)
                    s[ix] = sb
                if graft != "none":
                    s = s * np.linalg.norm(a) / (np.linalg.norm(s) + 1e-16)
            else:
                s = a
            st["m_s"] = beta1 * st["m_s"] + s
            st["m_g"] = beta1 * st["m_g"] + a
            m, now = (st["m_s"], s) if t >= start else (st["m_g"], a)
            update = beta1 * m + now if nesterov else m
            w -= lr * (update.reshape(w.shape) + weight_decay * w)
        out.append([w.copy() for w in ws])
    return out


def _eigenbasis(a: np.ndarray) -> np.ndarray:
    _, v = scipy.linalg.eigh(a)
    return v[:, ::-1]


def soap_loop(
    params: list[np.ndarray],
    grad: Grad,
    steps: int,
    lr: float,
    *,
    betas: tuple[float, float] = (0.95, 0.95),
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    freq: int = 10,
    max_dim: int = 10000,
    precondition_1d: bool = False,
    correct_bias: bool = True,
) -> list[list[np.ndarray]]:
    b1, b2 = betas
    bs = b2 if shampoo_beta is None else shampoo_beta
    ws = [w.astype(np.float64).copy() for w in params]
    per: list[dict] = [{} for _ in ws]

    def factors(g: np.ndarray) -> list[np.ndarray]:
        if g.ndim == 1:
            return [np.outer(g, g)]
        return [g @ g.T, g.T @ g]

    out = []
    for t in range(1, steps + 1):
        gs = grad(t, ws)
        for w, g, st in zip(ws, gs, per, strict=True):
            kept = [(g.ndim > 1 or precondition_1d) and d <= max_dim for d in g.shape]
            if t == 1:  # the reference's first step: statistics and bases, no move
                st["P"] = [(1 - bs) * f if k else None
                           for f, k in zip(factors(g), kept, strict=False)]  # fmt: skip
                st["Q"] = [_eigenbasis(p) if p is not None else np.eye(d)
                           for p, d in zip(st["P"], g.shape, strict=False)]  # fmt: skip
                st["M"], st["V"] = np.zeros_like(g), np.zeros_like(g)
                continue
            s = t - 1
            rotate = lambda x, q=st["Q"]: q[0].T @ x @ q[1] if x.ndim == 2 else q[0].T @ x  # noqa: E731
            back = lambda x, q=st["Q"]: q[0] @ x @ q[1].T if x.ndim == 2 else q[0] @ x  # noqa: E731
            g_rot = rotate(g)  # Algorithm 3, lines 3-8
            st["M"] = b1 * st["M"] + (1 - b1) * g
            st["V"] = b2 * st["V"] + (1 - b2) * g_rot * g_rot
            n = back(rotate(st["M"]) / (np.sqrt(st["V"]) + eps))
            c = np.sqrt(1 - b2**s) / (1 - b1**s) if correct_bias else 1.0
            w -= lr * c * n  # line 9, then the reference's decoupled decay
            w -= lr * weight_decay * w
            for k, f in enumerate(factors(g)):  # lines 10-11
                if st["P"][k] is not None:
                    st["P"][k] = bs * st["P"][k] + (1 - bs) * f
            if s % freq == 0:  # lines 12-14, Algorithm 4
                for k, p in enumerate(st["P"]):
                    if p is None:
                        continue
                    q = st["Q"][k]
                    prod = p @ q
                    order = np.argsort(-np.einsum("ij,ij->j", q, prod), kind="stable")
                    st["V"] = np.take(st["V"], order, axis=k)
                    st["Q"][k] = scipy.linalg.qr(prod[:, order], mode="economic")[0]
        out.append([w.copy() for w in ws])
    return out
