"""An interactive playground in the browser: the lectures' descent pictures, live.

``descentlab playground`` starts a local web app; what the page offers: docs/playground.md.
All numbers come from descentlab on the server (:mod:`descentlab.playground.compute`); the
browser only draws.

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
