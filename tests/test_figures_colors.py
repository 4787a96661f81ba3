"""Third-party optimizers get colours of their own (issue 47, item 5): Schedule-Free AdamW from
its package was drawn in Momentum's blue. Every fallback colour is at least 30 CIE76 units
(CIELAB, D65) from every registered optimizer's colour and from each other -- the
registered colours themselves are at least 16.8 apart."""

from __future__ import annotations

import itertools

import numpy as np

from descentlab import optim
from descentlab.report import figures as F


def _lab(hex_color: str) -> np.ndarray:
    """sRGB (D65) to CIELAB, the textbook formulas."""
    h = hex_color.lstrip("#")
    rgb = np.array([int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)])
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_third_party_colours_are_distinct_from_every_registered_one():
    registered = {optim.record(n).color for n in optim.NAMES}
    # the labels a comparison gives optimizers from outside descentlab, at positions 0..5
    labels = ["sfadamw_pkg", "prodigy", "lion_pt", "came", "adan", "ademamix"]
    fallback = [F.color_of(label, i) for i, label in enumerate(labels)]
    assert len(set(fallback)) == len(fallback)
    for c in fallback:
        near = min(float(np.linalg.norm(_lab(c) - _lab(r))) for r in registered)
        assert near >= 30.0, (c, near)
    for a, b in itertools.combinations(fallback, 2):
        assert float(np.linalg.norm(_lab(a) - _lab(b))) >= 30.0, (a, b)
    # a registered name keeps its record's colour, in any case
    assert F.color_of("Momentum", 0) == optim.record("momentum").color
