"""Plotting helpers: what they draw must match the data (axis ranges, markers, decoded points)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lmk import codecs, viz  # noqa: E402


def test_plot_ced_default_range_stops_at_threshold(ax):
    viz.plot_ced(ax, {"a": np.full(10, 0.2)}, threshold=0.08)
    assert ax.get_xlim() == (0.0, 8.0)


def test_plot_ced_auto_range_reaches_large_errors(ax):
    nmes = np.linspace(0.10, 0.20, 101)          # every image beyond the 8 % threshold
    viz.plot_ced(ax, {"a": nmes}, threshold=0.08, xmax="auto")
    right = ax.get_xlim()[1]
    assert right >= 100 * np.quantile(nmes, 0.99)
    x, frac = ax.get_lines()[0].get_data()
    assert frac[-1] > 0.95                       # the curve climbs inside the plot
    assert any(line.get_label().startswith("threshold") for line in ax.get_lines())


def test_plot_ced_auto_range_keeps_threshold_for_small_errors(ax):
    viz.plot_ced(ax, {"a": np.full(10, 0.01)}, threshold=0.08, xmax="auto")
    assert ax.get_xlim() == (0.0, 8.0)


@pytest.mark.parametrize("xmax", [0.0, -1.0, "wide"])
def test_plot_ced_rejects_bad_xmax(ax, xmax):
    with pytest.raises(ValueError, match="xmax"):
        viz.plot_ced(ax, {"a": np.full(3, 0.01)}, xmax=xmax)


def test_show_decoders_clips_far_answers_and_says_so(ax):
    truth = np.array([30.37, 21.81])
    heatmap = codecs.gaussian_heatmaps(truth[None], (64, 64), 2.0)[0]
    heatmap = heatmap + 0.1 * np.random.default_rng(0).standard_normal(heatmap.shape)
    found = viz.show_decoders(ax, heatmap, truth, blur_sigma=2.0, radius=4.0)
    for method in codecs.METHODS:
        expected = codecs.decode_heatmaps(heatmap[None], method, blur_sigma=2.0)[0]
        np.testing.assert_allclose(found[method], expected)
    far = np.abs(found["soft_argmax"] - truth).max() > 4.0
    assert far, "the noisy map should pull soft-argmax out of the window"
    lines = {line.get_label().split(":")[0]: line for line in ax.get_lines()}
    x, y = lines["soft_argmax"].get_data()
    assert truth[0] - 4 <= x[0] <= truth[0] + 4 and truth[1] - 4 <= y[0] <= truth[1] + 4
    assert "drawn on the edge" in lines["soft_argmax"].get_label()
    assert "drawn on the edge" not in lines["dark"].get_label()
    assert lines["truth"].get_color() != "white"


def test_show_decoding_matches_decoders_and_keeps_noise_fixed():
    fig = viz.show_decoding(2.0, 0.0, (0.25, -0.3), size=32, cell=(15, 12))
    bars = fig.axes[1]
    heights_2d = [p.get_height() for p in bars.containers[0]]
    assert heights_2d[0] == pytest.approx(np.hypot(0.25, 0.3))   # argmax: the cell centre
    assert max(heights_2d[2:]) < 1e-3                            # dark, soft-argmax on a clean map
    plt.close(fig)
    first = viz.show_decoding(2.0, 0.05, (0.1, 0.2), seed=3)
    again = viz.show_decoding(2.0, 0.05, (0.1, 0.2), seed=3)
    heights = [[p.get_height() for c in f.axes[1].containers for p in c] for f in (first, again)]
    assert heights[0] == heights[1]
    plt.close(first)
    plt.close(again)
