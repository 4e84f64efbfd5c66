"""lmk.viz.cascade: heatmaps drawn where their cells are, markers where the points are."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmk import viz  # noqa: E402
from lmk.models.ccnn import CCNN  # noqa: E402


@pytest.fixture
def fig():
    f = plt.figure()
    yield f
    plt.close(f)


def _outputs(k=2, n=3, size=8, seed=0):
    """Hand-made CCNN outputs on a ``size`` x ``size`` heatmap of a ``4 size`` px image."""
    g = torch.Generator().manual_seed(seed)
    maps = [0.1 * torch.rand(1, n, size, size, generator=g) for _ in range(k + 1)]
    peaks = []
    for j, m in enumerate(maps):                      # one clear maximum per map and landmark
        cells = torch.randint(0, size, (n, 2), generator=g)
        m[0, torch.arange(n), cells[:, 1], cells[:, 0]] = 1.0 + j
        peaks.append(cells)
    coords = [4 * p[None].float() + 1.5 + torch.rand(1, n, 2, generator=g) for p in peaks[1:]]
    return {"base_heatmaps": maps[0], "heatmaps": maps[1:], "coordinates": coords,
            "maxima": [4 * p[None].float() + 1.5 for p in peaks[1:]]}, peaks


def _markers(ax, marker):
    return [line.get_xydata()[0] for line in ax.get_lines() if line.get_marker() == marker]


def test_show_cascade_draws_every_map_in_input_pixels(fig):
    out, peaks = _outputs(k=2, n=3, size=8)
    image = np.zeros((32, 32, 3), np.uint8)
    truth = np.array([[3.0, 4.0], [10.5, 20.25], [30.0, 1.0]])
    axes = viz.show_cascade(fig, image, out, [2, 0], truth)
    assert axes.shape == (2, 4)                                   # face, H0, H1, H2
    for row, i in enumerate([2, 0]):
        for col in range(1, 4):
            ax = axes[row, col]
            im = ax.get_images()[0]
            assert im.get_extent() == [-0.5, 31.5, 31.5, -0.5]     # cell i covers [4i - 0.5, 4i + 3.5]
            shown = out["base_heatmaps"] if col == 1 else out["heatmaps"][col - 2]
            np.testing.assert_array_equal(im.get_array(), shown[0, i].numpy())
            np.testing.assert_allclose(_markers(ax, "+")[0], truth[i])
            # the argmax marker sits on the centre of the peak cell: 4 * cell + 1.5 input px
            np.testing.assert_allclose(_markers(ax, "x")[0], 4 * peaks[col - 1][i].numpy() + 1.5)
            refined = _markers(ax, "o")
            if col == 1:
                assert refined == []                               # H0 has no regression unit
            else:
                np.testing.assert_allclose(refined[0], out["coordinates"][col - 2][0, i].numpy())
    assert axes[0, 0].get_title() == "landmark 2"


def test_show_cascade_on_a_real_forward_pass_and_a_network_input(fig):
    torch.manual_seed(0)
    model = CCNN(2, num_landmarks=4, width=0.125).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(images)
    axes = viz.show_cascade(fig, images[1], out, [1], index=1, names=["nose"])
    assert axes[0, 0].get_images()[0].get_array().dtype == np.uint8      # de-normalised for display
    np.testing.assert_allclose(_markers(axes[0, 2], "x")[0], out["maxima"][0][1, 1].numpy())
    np.testing.assert_allclose(_markers(axes[0, 3], "o")[0], out["coordinates"][1][1, 1].numpy())
    assert axes[0, 0].get_title() == "nose"


@pytest.mark.parametrize("landmarks, match", [([5], "indices"), ([], "indices"), ([-1], "indices")])
def test_show_cascade_rejects_bad_landmarks(fig, landmarks, match):
    out, _ = _outputs(n=3)
    with pytest.raises(ValueError, match=match):
        viz.show_cascade(fig, np.zeros((32, 32, 3), np.uint8), out, landmarks)


def test_show_cascade_rejects_bad_index_and_names(fig):
    out, _ = _outputs(n=3)
    with pytest.raises(IndexError, match="index 1"):
        viz.show_cascade(fig, np.zeros((32, 32, 3), np.uint8), out, [0], index=1)
    with pytest.raises(ValueError, match="names"):
        viz.show_cascade(fig, np.zeros((32, 32, 3), np.uint8), out, [0, 1], names=["a"])


def test_plot_unit_errors_draws_seed_means_in_percent(ax):
    nmes = {"argmax1": [0.05, 0.06, 0.07], "argmax2": [0.04, 0.05, 0.06],
            "unit1": [0.03, 0.031, 0.032], "unit2": [0.02, 0.022, 0.024]}
    viz.plot_unit_errors(ax, nmes, baseline=0.073, floor=0.04)
    lines = {line.get_label(): line for line in ax.get_lines()}
    x, y = lines["refined $P_k$ (mean of 3)"].get_data()
    np.testing.assert_allclose(x, [1, 2])
    np.testing.assert_allclose(y, [3.1, 2.2])
    np.testing.assert_allclose(lines["argmax of $H_k$ (mean of 3)"].get_data()[1], [6.0, 5.0])
    np.testing.assert_allclose(lines["mean shape"].get_ydata(), [7.3, 7.3])
    np.testing.assert_allclose(lines["argmax of a perfect heatmap"].get_ydata(), [4.0, 4.0])
    assert len(ax.get_lines()) == 2 * 3 + 2 + 2                    # seeds, means, reference lines


def test_plot_unit_errors_one_seed_and_bad_keys(ax):
    viz.plot_unit_errors(ax, {"argmax1": [0.05], "unit1": [0.04]})
    assert len(ax.get_lines()) == 2                                # no per-seed lines for one seed
    with pytest.raises(ValueError, match="argmaxK"):
        viz.plot_unit_errors(ax, {"unit1": [0.04]})


def test_plot_ablation_band_spans_the_reference_seeds(ax):
    values = {1: [0.05], 2: [0.045], 4: [0.04, 0.042, 0.038]}
    viz.plot_ablation(ax, values, reference=4, baseline=0.07)
    means = [line for line in ax.get_lines() if line.get_label().startswith("NME of")][0]
    np.testing.assert_allclose(means.get_data()[1], [5.0, 4.5, 4.0])
    band = ax.patches[0]                           # axhspan: a rectangle in data y
    np.testing.assert_allclose([band.get_y(), band.get_y() + band.get_height()], [3.8, 4.2])
    with pytest.raises(ValueError, match="reference K=3"):
        viz.plot_ablation(ax, values, reference=3)
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_ablation(ax, {})


def test_example_landmarks_in_every_layout():
    from lmk.layouts import LAYOUT_68, layout_for
    assert viz.example_landmarks(LAYOUT_68) == {"outer eye corner": 36, "nose tip": 30,
                                                "mouth corner": 48, "jaw (middle)": 8}
    wflw = viz.example_landmarks(layout_for(98))
    assert wflw["outer eye corner"] == 60 and wflw["jaw (middle)"] == 16   # WFLW: 33 jaw points


def test_show_cascade_window_centres_each_map_on_the_truth(fig):
    out, _ = _outputs(k=1, n=2, size=8)
    truth = np.array([[10.0, 12.0], [20.0, 5.0]])
    axes = viz.show_cascade(fig, np.zeros((32, 32, 3), np.uint8), out, [1], truth, window=6.0)
    for ax in axes[0, 1:]:
        assert ax.get_xlim() == (14.0, 26.0) and ax.get_ylim() == (11.0, -1.0)   # y points down
    assert axes[0, 0].get_xlim() == (-0.5, 31.5)                               # the whole face
    box = axes[0, 0].patches[0]
    assert (box.get_x(), box.get_y(), box.get_width()) == (14.0, -1.0, 12.0)
    with pytest.raises(ValueError, match="window"):
        viz.show_cascade(fig, np.zeros((32, 32, 3), np.uint8), out, [1], truth, window=0)
