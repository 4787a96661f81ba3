"""An interactive playground in the browser: the lectures' descent pictures, live.

``descentlab playground`` starts a local web app (127.0.0.1, a free port; it prints the URL
and opens a browser). On the page one picks a landscape (the conditioned quadratic with a
kappa slider), clicks starting points on its contour map, chooses optimizers -- the named
ones with sliders for lr, momentum, betas and eps, or composed chains typed in the grammar of
``descentlab compare --optimizer`` -- and watches the paths descend, with the loss against
the step beside them. A 1-D mode draws the derivatives lecture's pictures (``x^2 - 4x + 6`` with the
iterates ``x_k`` labelled, ``x sin x`` from several starts); a learning-rate map shows the
final loss over learning rate x start (or x momentum), one click away from each run's path.
The state of the page is in its URL.

All numbers come from descentlab on the server (:mod:`descentlab.playground.compute`, batched
trajectories in one compiled kernel: :mod:`descentlab.problems.kernels`); the browser only
draws, with the plotly.js that the ``plotly`` package ships (no network needed).

Needs the optional dependencies: ``pip install 'descentlab[playground]'``.

Example:
    >>> from descentlab.playground import compute
    >>> out = compute.run_paths({"landscape": "parabola", "starts": [[4.0]], "steps": 1,
    ...                          "optimizers": [{"name": "sgd", "lr": 1.0}]})
    >>> out["runs"][0]["paths"][0]        # lr 1 bounces between 4 and 0 (the derivatives lecture)
    [[4.0], [0.0]]
"""

from __future__ import annotations

from .compute import LIMITS, RequestError, lr_map, meta, run_paths, surface

__all__ = ["LIMITS", "RequestError", "lr_map", "meta", "run_paths", "surface"]
