"""lmk.lessons.n04_landscape: Yan et al.'s (2020) Fig. 6 loss landscapes and the three-way gradient check."""

import numpy as np
import pytest
import torch

from lmk.lessons import n04_landscape as landscape
from lmk.layouts import LAYOUT_68
from lmk.losses import align_loss
from lmk.ops import crop_patches


def _stripes(h=24, w=24, seed=0):
    """A (1, 2, H, W) map that changes along x only: every column is constant."""
    g = torch.Generator().manual_seed(seed)
    columns = torch.randn(2, w, generator=g, dtype=torch.float64)
    return columns[:, None, :].expand(2, h, w).clone()[None]


def _random_map(c=3, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, c, h, w, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------------------- feature maps
def test_edge_map_of_a_ramp_is_its_slope_and_of_a_step_half_the_step():
    ramp = np.tile(np.arange(10.0), (8, 1))                  # slope 1 px^-1 along x
    edges = landscape.edge_map(ramp)
    assert edges.shape == (1, 1, 8, 10)
    torch.testing.assert_close(edges[0, 0, :, 1:-1], torch.ones(8, 8, dtype=torch.float64))
    step = np.zeros((6, 8), np.float32)
    step[:, 4:] = 1.0
    e = landscape.edge_map(step)[0, 0]
    # Sobel / 8: (I[x+1] - I[x-1]) * (1 + 2 + 1) / 8 = 0.5 on both columns next to the step
    torch.testing.assert_close(e[:, 3:5], torch.full((6, 2), 0.5))
    assert float(e[:, :3].abs().max()) == 0.0 and float(e[:, 5:].abs().max()) == 0.0


def test_edge_map_reads_both_colour_layouts_alike():
    rgb = np.random.default_rng(0).uniform(0, 255, (12, 9, 3))
    torch.testing.assert_close(landscape.edge_map(rgb), landscape.edge_map(rgb.transpose(2, 0, 1)))
    torch.testing.assert_close(landscape.edge_map(rgb), landscape.edge_map(rgb.mean(-1)))


@pytest.mark.parametrize("shape", [(5,), (2, 4, 4, 4), (1, 7)])
def test_edge_map_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="image"):
        landscape.edge_map(np.zeros(shape))


def test_contour_tangent_follows_the_group_and_stops_at_its_ends():
    points = np.zeros((68, 2))
    jaw = LAYOUT_68.groups["jaw"]
    points[jaw] = np.stack([3.0 * np.arange(17), 4.0 * np.arange(17)], -1)   # a straight jaw
    points[17:] = np.random.default_rng(1).uniform(0, 50, (51, 2))
    for index in (0, 5, 16):                                  # first, middle, last jaw point
        t = landscape.contour_tangent(points, index)
        torch.testing.assert_close(t, torch.tensor([0.6, 0.8], dtype=torch.float64))
    brow = LAYOUT_68.groups["left_brow"]
    t = landscape.contour_tangent(points, int(brow[2]))
    d = points[brow[3]] - points[brow[1]]
    np.testing.assert_allclose(t.numpy(), d / np.linalg.norm(d))


@pytest.mark.parametrize("index", [-1, 68, 2.0, True])
def test_contour_tangent_rejects_bad_indices(index):
    with pytest.raises(ValueError, match="index"):
        landscape.contour_tangent(np.zeros((68, 2)) + np.arange(68)[:, None], index)


def test_contour_tangent_rejects_points_of_another_layout():
    with pytest.raises(ValueError, match="landmarks"):
        landscape.contour_tangent(np.zeros((98, 2)), 3)


# ------------------------------------------------------------------------------ landscapes
def test_coordinate_and_heatmap_losses_match_their_formulas():
    maps, gt = _random_map(1, 20, 20), torch.tensor([9.3, 10.6], dtype=torch.float64)
    pred = gt + torch.tensor([[0.0, 0.0], [1.5, -2.0], [-3.0, 0.5]], dtype=torch.float64)
    d = pred - gt
    torch.testing.assert_close(landscape.loss_values("l2", maps, gt, pred), d.square().sum(-1))
    torch.testing.assert_close(landscape.loss_values("l1", maps, gt, pred), d.abs().sum(-1))
    sigma = 1.5
    yy, xx = np.mgrid[0:20, 0:20]

    def gauss(p):
        return np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * sigma ** 2))

    expected = [np.mean((gauss(p) - gauss(gt.numpy())) ** 2) for p in pred.numpy()]
    got = landscape.loss_values("heatmap_l2", maps, gt, pred, heatmap_sigma=sigma)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind, blur", [("align", 1.0), ("align_no_filter", 0.0)])
def test_align_landscape_is_align_loss_of_each_prediction_and_chunks_agree(kind, blur):
    maps, gt = _random_map(), torch.tensor([7.4, 8.2], dtype=torch.float64)
    pred = gt + torch.tensor([[0.0, 0.0], [0.3, -0.7], [-1.2, 0.4], [2.5, 1.5]],
                             dtype=torch.float64)
    expected = torch.stack([align_loss(maps, p.view(1, 1, 2), gt.view(1, 1, 2), patch_size=6,
                                       blur_sigma=blur, reduction="sum") for p in pred])
    got = landscape.loss_values(kind, maps, gt, pred, patch_size=6)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(landscape.loss_values(kind, maps, gt, pred, patch_size=6, chunk=3),
                               got)
    assert got[0] == 0 and bool((got[1:] > 0).all())


def test_align_landscape_is_flat_along_a_contour_and_rows_are_dy():
    maps = _stripes()                           # every vertical line is a "contour"
    land = landscape.loss_landscape(maps, (11.3, 11.6), "align", radius=2.0, steps=9,
                                    patch_size=6)
    values, offsets = land["values"], land["offsets"]
    assert values.shape == (9, 9) and float(offsets[4]) == 0.0
    # moving along y (down a column of the array) changes nothing; moving along x does
    torch.testing.assert_close(values, values[4:5].expand(9, 9), rtol=0, atol=1e-12)
    assert float(values[4, 0]) > 0 and float(values[4, 8]) > 0 and float(values[4, 4]) == 0


def test_directional_profile_along_and_across_a_contour():
    maps, point = _stripes(), (11.3, 11.6)
    t = torch.linspace(-2, 2, 9)
    along = landscape.directional_profile(maps, point, "align", (0.0, 3.0), t, patch_size=6)
    across = landscape.directional_profile(maps, point, "align", (1.0, 0.0), t, patch_size=6)
    assert float(along.abs().max()) < 1e-12
    assert float(across[0]) > 0 and float(across[-1]) > 0 and float(across[4]) == 0
    l2 = landscape.directional_profile(maps, point, "l2", (3.0, 4.0), t)
    torch.testing.assert_close(l2, t.double().square())      # unit direction: loss = t^2


def test_loss_landscapes_returns_every_kind():
    lands = landscape.loss_landscapes(_random_map(1), (8.0, 8.0), radius=1.0, steps=5)
    assert list(lands) == list(landscape.LANDSCAPE_LOSSES)
    assert all(v["values"].shape == (5, 5) and float(v["values"][2, 2]) == 0
               for v in lands.values())


@pytest.mark.parametrize("call, match", [
    (lambda m: landscape.loss_values("wing", m, (1, 1), torch.zeros(1, 2)), "kind"),
    (lambda m: landscape.loss_values("l2", m[0], (1, 1), torch.zeros(1, 2)), "features"),
    (lambda m: landscape.loss_values("l2", m.expand(2, -1, -1, -1), (1, 1), torch.zeros(1, 2)),
     "features"),
    (lambda m: landscape.loss_values("l2", m, (1, 1, 1), torch.zeros(1, 2)), "point"),
    (lambda m: landscape.loss_values("l2", m, (1, float("nan")), torch.zeros(1, 2)), "point"),
    (lambda m: landscape.loss_values("l2", m, (1, 1), torch.zeros(3)), "predictions"),
    (lambda m: landscape.loss_landscape(m, (1, 1), "l2", radius=0), "radius"),
    (lambda m: landscape.loss_landscape(m, (1, 1), "l2", steps=1), "steps"),
    (lambda m: landscape.directional_profile(m, (1, 1), "l2", (0, 0), [1.0]), "direction"),
])
def test_bad_landscape_arguments_name_themselves(call, match):
    with pytest.raises(ValueError, match=match):
        call(_random_map(1, 8, 8))


# -------------------------------------------------------------------------- gradient check
def test_finite_differences_of_a_known_function():
    x = torch.tensor([[0.5, -1.0], [2.0, 3.0]], dtype=torch.float64)
    grad = landscape.finite_differences(lambda v: v.pow(3).sum(), x, eps=1e-5)
    torch.testing.assert_close(grad, 3 * x.square(), rtol=1e-8, atol=1e-8)
    assert torch.equal(x, torch.tensor([[0.5, -1.0], [2.0, 3.0]], dtype=torch.float64))


@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_three_gradients_of_the_crop_agree(size):
    g = torch.Generator().manual_seed(size)
    maps = torch.randn(2, 2, 9, 11, generator=g, dtype=torch.float64)
    centres = torch.rand(2, 3, 2, generator=g, dtype=torch.float64) * 10 - 0.5   # some off the map
    report = landscape.gradient_check(maps, centres, size)
    for name in ("features", "centers"):
        r = report[name]
        assert r["analytic"].shape == (maps if name == "features" else centres).shape
        for key in ("analytic_vs_autograd", "analytic_vs_finite", "autograd_vs_finite"):
            assert landscape.within(r[key], r["scale"], 1e-7), (name, key, r[key])
        assert r["scale"] > 0.1


class _WrongCentreGradient(torch.autograd.Function):
    """crop_patches with the x and y centre gradients swapped: a plausible derivation slip."""

    @staticmethod
    def forward(ctx, features, centers, size):
        with torch.enable_grad():
            f, c = features.detach().requires_grad_(True), centers.detach().requires_grad_(True)
            out = crop_patches(f, c, size)
        ctx.save_for_backward(f, c, out)
        return out.detach()

    @staticmethod
    def backward(ctx, grad):
        f, c, out = ctx.saved_tensors
        gf, gc = torch.autograd.grad(out, (f, c), grad)
        return gf, gc.flip(-1), None


def test_the_check_catches_a_wrong_backward():
    maps = _random_map(2, 10, 10)
    centres = torch.tensor([[[3.3, 6.6], [5.2, 2.7]]], dtype=torch.float64)
    report = landscape.gradient_check(maps, centres, 3, crop=_WrongCentreGradient.apply)
    r = report["centers"]
    assert not landscape.within(r["analytic_vs_finite"], r["scale"], 1e-7)
    assert not landscape.within(r["analytic_vs_autograd"], r["scale"], 1e-7)
    assert landscape.within(r["autograd_vs_finite"], r["scale"], 1e-7)   # the references agree
    assert landscape.within(report["features"]["analytic_vs_finite"], report["features"]["scale"])


@pytest.mark.parametrize("size, x", [(3, 4.0), (8, 4.5), (2, 3.5)])
def test_the_check_refuses_centres_on_a_kink(size, x):
    with pytest.raises(ValueError, match="kink"):
        landscape.gradient_check(_random_map(), torch.tensor([[[x, 5.3]]], dtype=torch.float64),
                                 size)


@pytest.mark.parametrize("size, x", [(3, 4.0), (8, 4.5)])
def test_at_a_kink_the_analytic_gradient_is_the_right_hand_derivative(size, x):
    k = landscape.kink_derivatives(_random_map(), (x, 6.3), size)
    assert abs(k["left"] - k["right"]) > 1e-3                   # a real kink for this map
    assert k["analytic"] == pytest.approx(k["right"], abs=1e-7)
    assert k["central"] == pytest.approx((k["left"] + k["right"]) / 2, abs=1e-7)


def test_away_from_a_kink_every_derivative_agrees():
    k = landscape.kink_derivatives(_random_map(), (4.3, 6.3), 3, axis=1)
    for key in ("left", "central", "analytic", "autograd"):
        assert k[key] == pytest.approx(k["right"], abs=1e-7)


def test_kink_derivatives_rejects_a_bad_axis():
    with pytest.raises(ValueError, match="axis"):
        landscape.kink_derivatives(_random_map(), (4.3, 6.3), 3, axis=2)


def test_within_is_relative_above_one_and_absolute_below():
    assert landscape.within(5e-8, 10.0, 1e-8) and not landscape.within(2e-7, 10.0, 1e-8)
    assert landscape.within(1e-9, 1e-3, 1e-8) and not landscape.within(2e-8, 1e-3, 1e-8)
    assert not landscape.within(float("nan"), 1.0)
