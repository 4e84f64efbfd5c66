"""lmk.ops (ATPN part): Xia et al. (2022) Eq. 1 against a plain loop, floor, gradients; CoordConv."""

import math

import numpy as np
import pytest
import torch

from lmk.geometry import rescale_points
from lmk.ops import CoordConv2d, add_coords, cheap_heatmap, coord_channels


def _eq1_loop(points, height, width, floor=0.5):
    """Xia Eq. 1 pixel by pixel: pixel (row y, column x) has its centre at (x, y)."""
    out = [[0.0] * width for _ in range(height)]
    for y in range(height):
        for x in range(width):
            nearest = min(math.sqrt((x - px) ** 2 + (y - py) ** 2) for px, py in points)
            out[y][x] = max(floor, 1.0 / math.sqrt(1.0 + nearest))
    return out


def test_matches_a_plain_loop_over_pixels():
    g = torch.Generator().manual_seed(0)
    points = torch.rand(2, 5, 2, generator=g, dtype=torch.float64) * torch.tensor([9.0, 6.0]) - 1.0
    heat = cheap_heatmap(points, (6, 9))
    assert heat.shape == (2, 1, 6, 9) and heat.dtype == torch.float64
    for b in range(2):
        expected = torch.tensor(_eq1_loop(points[b].tolist(), 6, 9), dtype=torch.float64)
        torch.testing.assert_close(heat[b, 0], expected, rtol=0, atol=1e-12)


def test_without_floor_and_with_another_floor():
    points = [[0.25, 0.0], [7.0, 4.5]]
    for floor in (0.0, 0.3):
        heat = cheap_heatmap(torch.tensor(points, dtype=torch.float64), (5, 8), floor=floor)
        expected = torch.tensor(_eq1_loop(points, 5, 8, floor), dtype=torch.float64)
        torch.testing.assert_close(heat[0], expected, rtol=0, atol=1e-12)


def test_values_by_hand_pixel_centres_at_integers():
    heat = cheap_heatmap(torch.tensor([[[1.0, 2.0]]]), (4, 6))[0, 0]
    assert heat[2, 1] == 1.0                                  # on the landmark: 1 / sqrt(1)
    torch.testing.assert_close(heat[2, 2], torch.tensor(2 ** -0.5))   # one pixel away
    torch.testing.assert_close(heat[0, 0], torch.tensor((1 + 5 ** 0.5) ** -0.5))
    # the floor: beyond 3 pixels 1 / sqrt(1 + d) < 0.5, so those pixels are exactly 0.5
    assert heat[2, 5] == 0.5 and heat[3, 5] == 0.5            # d = 4 and sqrt(17)
    # a point half a pixel right of a centre is 0.5 px from two centres
    half = cheap_heatmap(torch.tensor([[1.5, 0.0]]), (1, 4))[0, 0]
    torch.testing.assert_close(half[1], half[2])
    torch.testing.assert_close(half[1], torch.tensor(1.5 ** -0.5))


def test_numpy_in_numpy_out_and_batch_dimensions():
    points = np.array([[[2.0, 1.0], [0.0, 0.0]]] * 3)[None]                # (1, 3, 2, 2)
    heat = cheap_heatmap(points, 4)
    assert isinstance(heat, np.ndarray) and heat.shape == (1, 3, 1, 4, 4)
    np.testing.assert_allclose(heat[0, 1, 0], _eq1_loop(points[0, 1].tolist(), 4, 4))
    assert cheap_heatmap(torch.tensor([[1, 1]]), (2, 3)).dtype == torch.float32   # ints


def test_heatmap_at_feature_resolution_follows_the_resolution_mapping():
    """A landmark at input pixel (17.5, 9.5) of a 112 px crop sits on the centre of 28x28
    pixel (4, 2): (17.5 + 0.5) / 4 - 0.5 = 4, (9.5 + 0.5) / 4 - 0.5 = 2."""
    on_map = rescale_points(torch.tensor([[17.5, 9.5]]), 0.25)
    heat = cheap_heatmap(on_map, 28)[0]
    assert heat[2, 4] == 1.0 and heat.max() == 1.0 and int(heat.argmax()) == 2 * 28 + 4


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(3)
    points = (torch.rand(1, 3, 2, generator=g, dtype=torch.float64) * 5).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: cheap_heatmap(p, (5, 6)), (points,))
    # on the floor, and for a landmark farther than another from every pixel: no gradient
    far = torch.tensor([[[1.0, 1.0], [40.0, 40.0]]], dtype=torch.float64, requires_grad=True)
    cheap_heatmap(far, (3, 3)).sum().backward()
    assert far.grad[0, 1].abs().sum() == 0                  # never the nearest landmark
    assert far.grad[0, 0].abs().sum() == 0                  # centred: the pulls cancel
    # exactly on a pixel centre (the cusp): finite, taken as 0 there
    on = torch.tensor([[[1.0, 1.0]]], requires_grad=True)
    cheap_heatmap(on, (3, 3))[0, 0, 1, 1].backward()
    assert torch.equal(on.grad, torch.zeros_like(on))


@pytest.mark.parametrize("landmarks, size, floor, match", [
    (torch.zeros(5, 3), 4, 0.5, "shape"),
    (torch.zeros(2), 4, 0.5, "shape"),
    (torch.zeros(1, 0, 2), 4, 0.5, "N >= 1"),
    (torch.tensor([[float("nan"), 1.0]]), 4, 0.5, "finite"),
    (torch.tensor([[float("inf"), 1.0]]), 4, 0.5, "finite"),
    (torch.zeros(3, 2), 0, 0.5, "size"),
    (torch.zeros(3, 2), 4.0, 0.5, "size"),
    (torch.zeros(3, 2), 4, 1.0, "floor"),
    (torch.zeros(3, 2), 4, -0.1, "floor"),
    (torch.zeros(3, 2), 4, True, "floor"),
])
def test_bad_input(landmarks, size, floor, match):
    with pytest.raises(ValueError, match=match):
        cheap_heatmap(landmarks, size, floor)


# ------------------------------------------------------------------------------- CoordConv

def test_coord_channels_by_hand():
    c = coord_channels(2, 4)
    assert c.shape == (2, 2, 4)
    torch.testing.assert_close(c[0], torch.tensor([[-0.75, -0.25, 0.25, 0.75]] * 2))
    torch.testing.assert_close(c[1], torch.tensor([[-0.5] * 4, [0.5] * 4]))


def test_coord_channels_agree_across_resolutions():
    """Pixel j of a 7-wide map covers pixels 4j .. 4j+3 of a 28-wide one; the mean of their
    coordinates is its coordinate, and ``rescale_points`` maps one centre onto the other."""
    fine, coarse = coord_channels(28, 28), coord_channels(7, 7)
    pooled = torch.nn.functional.avg_pool2d(fine[None], 4)[0]
    torch.testing.assert_close(pooled, coarse)
    x_fine = rescale_points(torch.tensor([[3.0, 0.0]]), 4.0)[0, 0]        # coarse 3 -> fine 13.5
    torch.testing.assert_close(2 * (x_fine + 0.5) / 28 - 1, coarse[0, 0, 3])


def test_add_coords_appends_x_then_y():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    out = add_coords(x)
    assert out.shape == (2, 5, 4, 5) and out.dtype == torch.float64
    torch.testing.assert_close(out[:, :3], x)
    torch.testing.assert_close(out[1, 3:], coord_channels(4, 5, dtype=torch.float64))


def test_coordconv_is_a_conv_on_the_augmented_input():
    torch.manual_seed(0)
    conv = CoordConv2d(3, 4, 2, stride=2)
    assert conv.conv.in_channels == 5
    x = torch.randn(2, 3, 6, 6)
    augmented = torch.cat([x, coord_channels(6, 6).expand(2, 2, 6, 6)], dim=1)
    torch.testing.assert_close(conv(x), conv.conv(augmented))
    # on a constant input the output still varies with position; without coords it cannot
    zeros = torch.zeros(1, 3, 6, 6)
    assert conv(zeros).std(dim=(2, 3)).min() > 0
    plain = CoordConv2d(3, 4, 2, stride=2, coords=False)
    assert plain.conv.in_channels == 3
    assert plain(zeros).std(dim=(2, 3)).max() == 0


@pytest.mark.parametrize("features, match", [
    (torch.zeros(3, 4, 4), r"\(B, C, H, W\)"),
    (np.zeros((1, 3, 4, 4)), "ndarray"),
    (torch.zeros(1, 3, 4, 4, dtype=torch.int64), "floating"),
])
def test_add_coords_bad_input(features, match):
    with pytest.raises(ValueError, match=match):
        add_coords(features)


def test_coordconv_bad_arguments():
    with pytest.raises(ValueError, match="in_channels"):
        CoordConv2d(0, 4, 1)
    with pytest.raises(ValueError, match="out_channels"):
        CoordConv2d(3, 2.0, 1)
    with pytest.raises(ValueError, match="height"):
        coord_channels(0, 3)
