"""Plots of notebook 04 (lmk.viz.refinement): what they draw must match the data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmk import viz  # noqa: E402
from lmk.lessons import n04_landscape as landscape  # noqa: E402
from lmk.ops import crop_patches  # noqa: E402


def test_crop_samples_are_yan_eqs_6_and_7():
    s = viz.crop_samples((4.2, 7.0), 2)              # even size: no sample on the centre
    np.testing.assert_allclose(s[..., 0], [[3.7, 4.7], [3.7, 4.7]])
    np.testing.assert_allclose(s[..., 1], [[6.5, 6.5], [7.5, 7.5]])
    s = viz.crop_samples(np.array([1.0, 2.0]), 3)
    np.testing.assert_allclose(s[1, 1], [1.0, 2.0])
    np.testing.assert_allclose(s[0, 2], [2.0, 1.0])   # row q = 0 is y - 1, column p = 2 is x + 1


@pytest.mark.parametrize("size", [0, 2.0, True])
def test_crop_samples_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="size"):
        viz.crop_samples((1.0, 1.0), size)


def test_bilinear_weights_interpolate_a_plane_exactly():
    x, y = 2.3, 5.8
    w = viz.bilinear_weights(x, y)
    assert set(w) == {(5, 2), (5, 3), (6, 2), (6, 3)}
    assert sum(w.values()) == pytest.approx(1.0)
    assert sum(v * (8 * row + col) for (row, col), v in w.items()) == pytest.approx(8 * y + x)


def test_draw_crop_marks_what_crop_patches_reads(ax):
    fmap = torch.arange(30.0, dtype=torch.float64).reshape(5, 6) ** 1.5
    center, size = (0.3, 0.6), 4                       # the left column of samples is off the map
    drawn = viz.draw_crop(ax, fmap, center, size, sample=(1, 1))
    patch = crop_patches(fmap[None, None], torch.tensor([[center]], dtype=torch.float64), size)
    expected = patch[0, 0, 0, 1, 1].item()
    value = sum(w * (fmap[r, c].item() if 0 <= r < 5 and 0 <= c < 6 else 0.0)
                for (r, c), w in drawn["weights"].items())
    assert value == pytest.approx(expected)
    np.testing.assert_allclose(drawn["samples"], viz.crop_samples(center, size))
    assert drawn["off_map"][:, 0].all() and not drawn["off_map"][:, 1:].any()   # x = -1.2 only
    assert patch[0, 0, 0, :, 0].abs().max().item() == 0.0                      # reads zero
    orange, hollow = ax.collections[0], ax.collections[1]
    assert len(orange.get_offsets()) == size * size - size and len(hollow.get_offsets()) == size


def test_draw_crop_rejects_a_stack_of_channels_and_bad_samples(ax):
    with pytest.raises(ValueError, match="feature_map"):
        viz.draw_crop(ax, np.zeros((2, 5, 5)), (2.0, 2.0), 3)
    with pytest.raises(ValueError, match="sample"):
        viz.draw_crop(ax, np.zeros((5, 5)), (2.0, 2.0), 3, sample=(3, 0))


def test_plot_landscape_scales_to_unit_range_on_the_offsets(ax):
    land = landscape.loss_landscape(torch.zeros(1, 1, 9, 9), (4.0, 4.0), "l1", radius=2.0, steps=5)
    scaled = viz.plot_landscape(ax, land, tangent=(0.0, 1.0))
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_allclose(scaled, land["values"].numpy() / 4.0)
    image = ax.get_images()[0]
    np.testing.assert_allclose(image.get_extent(), [-2.5, 2.5, 2.5, -2.5])   # rows: dy down
    assert "L1" in ax.get_title()


def test_plot_landscape_of_a_flat_loss_draws_zeros(ax):
    land = {"offsets": torch.linspace(-1, 1, 3), "values": torch.ones(3, 3), "kind": "align"}
    assert viz.plot_landscape(ax, land).max() == 0.0


def test_plot_landscape_rejects_values_that_do_not_fit_the_offsets(ax):
    with pytest.raises(ValueError, match="values"):
        viz.plot_landscape(ax, {"offsets": np.arange(3.0), "values": np.zeros((3, 4))})


def test_plot_landscapes_needs_one_axis_per_landscape():
    fig, axes = plt.subplots(1, 2)
    lands = landscape.loss_landscapes(torch.zeros(1, 1, 9, 9), (4.0, 4.0),
                                      kinds=("l2", "l1", "align"), radius=1.0, steps=3)
    with pytest.raises(ValueError, match="axes"):
        viz.plot_landscapes(axes, lands)
    plt.close(fig)


def test_stage_corrections_count_every_coordinate_once():
    rng = np.random.default_rng(0)
    corrections = [rng.normal(0, s, (20, 68, 2)) for s in (2.0, 0.5, 0.25)]
    corrections[0][0, 0] = (40.0, -40.0)               # far outside the plotted range
    fig, axes = plt.subplots(1, 3)
    stats = viz.plot_stage_corrections(axes, corrections, strides=(8, 4, 2))
    for s, c in zip(stats, corrections):
        assert s["counts"].sum(axis=1).tolist() == [20 * 68, 20 * 68]
        np.testing.assert_allclose(s["std"], c.reshape(-1, 2).std(0))
        np.testing.assert_allclose(s["p99"], np.quantile(np.linalg.norm(c, axis=-1), 0.99))
    assert "stride 8" in axes[0].get_title()
    assert stats[0]["counts"][0, -1] >= 1 and stats[0]["counts"][1, 0] >= 1   # in the end bins
    plt.close(fig)


def test_stage_corrections_need_one_axis_per_stage():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="axes"):
        viz.plot_stage_corrections([ax], [np.zeros((2, 3, 2))] * 2)
    plt.close(fig)


def test_plot_stage_nme_draws_percent_per_stage(ax):
    viz.plot_stage_nme(ax, {"seed 0": [0.04, 0.03, 0.025, 0.02]}, baseline=0.07)
    x, y = ax.get_lines()[0].get_data()
    np.testing.assert_allclose(y, [4.0, 3.0, 2.5, 2.0])
    assert list(x) == [0, 1, 2, 3]
    assert ax.get_lines()[1].get_ydata()[0] == pytest.approx(7.0)


def test_draw_refinement_reports_each_stage_distance(ax):
    truth = np.zeros((68, 2)) + 10.0
    estimates = [truth + d for d in (3.0, 1.0, 0.5)]
    pts = viz.draw_refinement(ax, np.zeros((3, 20, 20)), estimates, truth, index=7)
    np.testing.assert_allclose(pts, [[13, 13], [11, 11], [10.5, 10.5]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == f"S0: {np.hypot(3, 3):.2f} px off" and labels[-1] == "truth"


def test_plot_profiles_rejects_mismatched_lengths(ax):
    with pytest.raises(ValueError, match="profile"):
        viz.plot_profiles(ax, np.arange(3), {"a": np.arange(4)})


def test_plot_profiles_share_one_scale(ax):
    viz.plot_profiles(ax, np.arange(3.0), {"along": [0.0, 0.1, 0.2], "across": [0.0, 1.0, 4.0]})
    along, across = (line.get_ydata() for line in ax.get_lines())
    np.testing.assert_allclose(along, [0.0, 0.025, 0.05])
    np.testing.assert_allclose(across, [0.0, 0.25, 1.0])
