"""Plots: the loss curve and decision regions are drawn, written atomically, and refused clearly."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from backprop._validation import BackpropError  # noqa: E402
from backprop.cli import main  # noqa: E402
from backprop.plots import check_plot_path, plot_decision_boundary, plot_loss_curve  # noqa: E402


def read_png(path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path)[..., :3]


def test_decision_regions_follow_the_classifier(tmp_path):
    # With a known rule (class 1 where x1 > 0) the left and right halves of the plot area take
    # different region colours, and the top and bottom halves of one side share a colour.
    path = tmp_path / "b.png"
    X = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    plot_decision_boundary(lambda g: (g[:, 0] > 0).astype(int), X, path, point_values=[0, 0, 1, 1],
                           class_names=["a", "b"], resolution=50)
    image = read_png(path)
    h, w, _ = image.shape
    left, right = image[int(0.55 * h), int(0.3 * w)], image[int(0.55 * h), int(0.75 * w)]
    left_top = image[int(0.3 * h), int(0.3 * w)]
    assert np.abs(left - right).max() > 0.1
    np.testing.assert_allclose(left, left_top, atol=0.02)


def test_loss_curve_png_and_refusals(tmp_path):
    # A curve is written as a real PNG; an empty history, a bad suffix or a missing folder is refused.
    path = tmp_path / "c.png"
    plot_loss_curve({"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.6, 0.4]}, path)
    assert read_png(path).shape[0] > 100
    with pytest.raises(BackpropError, match="at least one epoch"):
        plot_loss_curve({"loss": []}, tmp_path / "e.png")
    with pytest.raises(BackpropError, match=r"`--plot` must end in \.png, \.svg, \.pdf; got 'c\.jpeg'"):
        check_plot_path("c.jpeg", "--plot")
    with pytest.raises(BackpropError, match="does not exist"):
        check_plot_path(tmp_path / "no" / "c.png")


def _moons(path, n=120):
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.1, random_state=0)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x1", "x2", "side"])
        writer.writerows([[*x, ["lower", "upper"][k]] for x, k in zip(X, y)])


def test_cli_plot_curve_and_boundary(tmp_path, capsys):
    # train --plot writes the loss curve; plot-boundary draws a 2-feature model and refuses a
    # 3-feature one with a one-line message naming the features.
    data = tmp_path / "moons.csv"
    _moons(data)
    model = tmp_path / "m.safetensors"
    assert main(["train", str(data), "--target", "side", "--epochs", "5", "--out", str(model),
                 "--plot", str(tmp_path / "curve.png"), "--quiet"]) == 0
    assert read_png(tmp_path / "curve.png").shape[1] > 100
    assert main(["plot-boundary", str(model), str(data), "--out", str(tmp_path / "b.png"),
                 "--resolution", "40"]) == 0
    assert read_png(tmp_path / "b.png").shape[1] > 100

    wide = tmp_path / "wide.csv"
    wide.write_text("a,b,c,y\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(20)))
    assert main(["train", str(wide), "--target", "y", "--epochs", "1", "--out", str(tmp_path / "w.st"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["plot-boundary", str(tmp_path / "w.st"), str(wide), "--out", str(tmp_path / "w.png")]) == 1
    err = capsys.readouterr().err
    assert "needs a model with exactly 2 features" in err and "has 3 (a, b, c)" in err
    assert not (tmp_path / "w.png").exists()


def test_cli_plot_is_checked_before_training(tmp_path, capsys):
    # A bad --plot path fails at once (no training lines, no model written).
    data = tmp_path / "moons.csv"
    _moons(data, n=20)
    code = main(["train", str(data), "--target", "side", "--out", str(tmp_path / "m.st"),
                 "--plot", str(tmp_path / "curve.gif")])
    err = capsys.readouterr().err
    assert code == 1 and "`--plot` must end in" in err and "[train]" not in err
    assert not (tmp_path / "m.st").exists()


def test_cli_plot_boundary_regression_and_resolution(tmp_path, capsys):
    # A 2-feature regression model gets a filled contour of its predictions; an absurd
    # --resolution is a usage error (exit 2) before anything is drawn.
    data = tmp_path / "r.csv"
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 2))
    data.write_text("u,v,h\n" + "".join(f"{a},{b},{a * a + b + 10}\n" for a, b in X))
    model = tmp_path / "r.st"
    assert main(["train", str(data), "--target", "h", "--epochs", "3", "--out", str(model), "--quiet"]) == 0
    assert main(["plot-boundary", str(model), str(data), "--out", str(tmp_path / "r.png"),
                 "--resolution", "30"]) == 0
    assert read_png(tmp_path / "r.png").shape[1] > 100
    capsys.readouterr()
    assert main(["plot-boundary", str(model), str(data), "--out", str(tmp_path / "x.png"),
                 "--resolution", "99999"]) == 2
    assert "must be an integer from 2 to 2000" in capsys.readouterr().err
