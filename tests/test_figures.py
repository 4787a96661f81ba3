"""Figures and the `figures` / `landscape` CLI: content, files, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch
from PIL import Image

from descentlab import optim
from descentlab.book.render import lecture_plots as LP
from descentlab.book.render import seed_figures as LF
from descentlab.cli import main
from descentlab.problems import landscapes as L
from descentlab.problems import trajectories as T
from descentlab.report import figures as F


@pytest.mark.parametrize("name", LF.NAMES)
def test_every_lecture_figure_is_labelled(name):
    fig = LF.build(name, quick=True)
    suptitle = fig._suptitle.get_text().strip() if fig._suptitle is not None else ""
    titled = [ax for ax in fig.axes if ax.get_title().strip()]
    assert suptitle or titled, name
    drawn = [ax for ax in fig.axes if ax.axison and ax.get_label() != "<colorbar>"]
    for ax in drawn:
        assert ax.get_xlabel(), (name, ax)
    if drawn:  # panels may share the y axis: the first one carries its label
        assert drawn[0].get_ylabel(), name
    has_legend = any(ax.get_legend() is not None for ax in fig.axes) or fig.legends
    assert has_legend, name


def test_parabola_figure_plots_the_lecture_iterates():
    # x_k = 2 + 2 (1 - 2 lr)^k from x0 = 4 on x^2 - 4x + 6 (f'(x) = 2x - 4), 6 steps.
    fig = LF.build("seed001_parabola_lr")
    for ax, lr in zip(fig.axes, (0.2, 0.01, 1.0), strict=True):
        (points,) = [c for c in ax.collections if len(c.get_offsets()) == 7]
        xy = np.asarray(points.get_offsets())
        expected = 2 + 2 * (1 - 2 * lr) ** np.arange(7)
        np.testing.assert_allclose(xy[:, 0], expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(xy[:, 1], expected**2 - 4 * expected + 6, atol=1e-12)
    labels = [t.get_text() for t in fig.axes[2].texts]
    assert "$x_{0}, x_{2}, x_{4}, x_{6}$" in labels and "$x_{1}, x_{3}, x_{5}$" in labels


def test_family_chains_are_read_from_the_optimizers():
    chains = LP.family_chains()
    assert set(chains) == set(optim.NAMES)
    for name, chain in chains.items():
        opt = optim.get(name)([torch.nn.Parameter(torch.zeros(1))])
        assert [r for r, _ in chain] == [r.name for r in opt.rule.rules]
    active = {n: [r for r, a in c if a] for n, c in chains.items()}
    assert active["sgd"] == ["scale_by_lr"]  # trace with momentum 0 passes through
    assert active["momentum"] == ["trace", "scale_by_lr"]
    assert active["adam"] == ["scale_by_adam", "scale_by_lr"]
    assert active["adamw"] == ["scale_by_adam", "add_decayed_weights", "scale_by_lr"]
    assert active["rmsprop"] == ["scale_by_rms", "scale_by_lr"]  # momentum 0 by default
    assert active["radam"] == ["scale_by_radam", "scale_by_lr"]
    assert all("maximize" not in a and "add_l2" not in a for a in active.values())
    sgd_mom = LP.family_chains({"sgd+m": ("sgd", {"momentum": 0.9})})
    assert ("trace", True) in sgd_mom["sgd+m"]


def test_basin_labels_agree_with_scipy_near_each_minimum():
    f = L.get("himmelblau")
    gen = torch.Generator().manual_seed(0)
    centers = torch.tensor([m.x for m in f.minima], dtype=torch.float64)
    starts = (centers[:, None] + 0.6 * (torch.rand(4, 10, 2, generator=gen) - 0.5)).reshape(-1, 2)
    labels = LP.basin_labels(f, "sgd", starts, lr=0.01, steps=300)
    for s, lab in zip(starts.tolist(), labels.tolist(), strict=True):
        res = scipy.optimize.minimize(lambda v: f(torch.tensor(v)).item(), s, method="BFGS")
        expected = int(np.argmin(np.linalg.norm(centers.numpy() - res.x, axis=1)))
        assert lab == expected
    # Out-of-reach labels: too few steps -> "not at a minimum"; divergence -> the last label.
    assert (LP.basin_labels(f, "sgd", starts[:3], lr=0.001, steps=2) == 4).all()
    assert LP.basin_labels(f, "sgd", [[4.0, 4.0]], lr=1.0, steps=20, bound=1e3).item() == 5


def test_final_loss_table_matches_single_runs():
    lrs = [1e-3, 1e-2, 2.0]
    final, div = LP.final_loss_table("beale", ["sgd", "adam"], lrs, steps=40)
    for i, name in enumerate(["sgd", "adam"]):
        for j, lr in enumerate(lrs):
            tr = T.run(
                "beale", name, L.get("beale").start, 40, lr=lr, dtype=torch.float64, bound=450.0
            )
            assert div[i, j] == bool(tr.diverged[0])
            assert final[i, j] == pytest.approx(float(tr.losses[0, -1]), rel=1e-12)
    assert div[0, 2] and not div[0, 0]


def test_animation_writes_a_multi_frame_gif(tmp_path):
    races = T.races("saddle", ["sgd", "adam"], steps=20)
    path = F.animate_comparison("saddle", races, tmp_path / "race.gif", frames=5)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames >= 4 and im.size[0] > 200


def test_compare_validates_its_arguments():
    with pytest.raises(KeyError, match="valid names: sgd, momentum"):
        T.races("saddle", ["sgd", "adamz"])
    with pytest.raises(ValueError, match=r"lr must give one value or one per optimizer \(2\)"):
        T.races("saddle", ["sgd", "adam"], lr=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="dimension 1 or 2"):
        F.comparison_figure(L.get("rosenbrock", dim=3), [])


def test_figures_cli_writes_files(tmp_path, capsys):
    only = "seed001_parabola_lr,seed003_saddle,seed000_noise_floor"
    rc = main(["figures", "seeds", "--out", str(tmp_path), "--quick", "--only", only])
    assert rc == 0
    for stem in only.split(","):
        with Image.open(tmp_path / f"{stem}.png") as im:
            assert im.format == "PNG" and im.size[0] > 400
    with Image.open(tmp_path / "seed003_saddle.gif") as im:
        assert im.n_frames > 1
    assert "wrote" in capsys.readouterr().out
    assert main(["figures", "list"]) == 0
    assert "basins_himmelblau.png" in capsys.readouterr().out


def test_landscape_cli_list_and_race(tmp_path, capsys):
    assert main(["landscape", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in L.NAMES)
    rc = main(
        [
            "landscape",
            "--function",
            "rosenbrock",
            "--optimizers",
            "sgd,adam",
            "--lr",
            "0.001,0.05",
            "--steps",
            "30",
            "--start=-1.2,1",
            "--out",
            str(tmp_path),
            "--frames",
            "4",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "sgd" in out and "adam" in out and "final f" in out
    assert (tmp_path / "rosenbrock_sgd-adam.png").exists()
    assert (tmp_path / "rosenbrock_sgd-adam.gif").exists()
    rc = main(
        [
            "landscape",
            "--function",
            "xsinx",
            "--optimizers",
            "sgd",
            "--steps",
            "5",
            "--start",
            "2.5",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0 and (tmp_path / "xsinx_sgd.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--function", "banana"], "unknown landscape 'banana'; valid names: parabola, xsinx"),
        (
            ["--function", "saddle", "--optimizers", "sgd,adamx"],
            "unknown optimizer 'adamx'; valid names: sgd, momentum",
        ),
        (
            ["--function", "saddle", "--start", "1,2,3"],
            "start must have 2 coordinates for landscape 'saddle', got 3: 1,2,3",
        ),
        (
            ["--function", "xsinx", "--start", "1,2"],
            "start must have 1 coordinate for landscape 'xsinx', got 2",
        ),
        (["--function", "saddle", "--steps", "0"], "steps must be a positive integer, got 0"),
        (["--function", "saddle", "--lr", "-1"], "lr must be a finite number > 0, got -1.0"),
        (["--function", "saddle", "--lr", "0"], "lr must be a finite number > 0, got 0.0"),
        (["--function", "saddle", "--lr", "abc"], "lr must be comma-separated numbers"),
        (
            ["--function", "saddle", "--optimizers", "sgd,adam", "--lr", "0.1,0.2,0.3"],
            r"lr must give one value or one per optimizer \(2\)",
        ),
        ([], "--function is required"),
    ],
)
def test_landscape_cli_bad_input_exits_2(argv, message, capsys, tmp_path):
    rc = main(["landscape", *argv, "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("descentlab: error: ")
    import re

    assert re.search(message, err), err


def test_figures_cli_unknown_name_exits_2(tmp_path, capsys):
    rc = main(["figures", "seeds", "--out", str(tmp_path), "--only", "nope"])
    assert rc == 2
    assert "unknown figure 'nope'; valid names: seed001_parabola_lr" in capsys.readouterr().err


def test_noise_floor_lines_are_the_closed_form():
    fig = LP.noise_floor_figure((0.5, 0.1), steps=20, runs=4)
    ax = fig.axes[0]
    floors = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--")
    expected = sorted(L.sgd_stationary_loss(lr, dim=2) for lr in (0.5, 0.1))
    assert floors == pytest.approx(expected, rel=1e-12)
    assert math.isclose(expected[1], 2 * 0.5 / (2 * 1.5))
