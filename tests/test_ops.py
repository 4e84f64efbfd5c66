"""lmk.ops.crop_patches: Yan et al. (2020) Eqs. 5-15 against hand values, grid_sample and
finite differences."""

import pytest
import torch

from lmk.ops import crop_patches, crop_patches_grid_sample


def _away_from_kinks(centers: torch.Tensor, size: int, margin: float = 1e-3) -> torch.Tensor:
    """Nudge centres whose samples sit within ``margin`` of a pixel centre (a kink)."""
    frac = torch.frac(centers - (size - 1) / 2) % 1.0
    near = (frac < margin) | (frac > 1 - margin)
    return centers + near * 10 * margin


def _random_case(size, b=2, n=5, c=3, h=7, w=9, seed=0, spread=3.0):
    """Double features and centres spread from ``-spread`` to ``W + spread`` (border cases)."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    lo = torch.tensor([-spread, -spread], dtype=torch.float64)
    span = torch.tensor([w + 2 * spread, h + 2 * spread], dtype=torch.float64)
    centers = lo + span * torch.rand(b, n, 2, generator=g, dtype=torch.float64)
    return features, _away_from_kinks(centers, size)


def _grads(fn, features, centers, size, upstream):
    f = features.clone().requires_grad_()
    c = centers.clone().requires_grad_()
    out = fn(f, c, size)
    out.backward(upstream)
    return out.detach(), f.grad, c.grad


# ------------------------------------------------------------------ hand-computed examples

def test_hand_example_3x3_interior():
    # I[n, m] = 3 n + m is linear, so bilinear samples are exact: V = 3 y + x
    features = torch.arange(9.0).view(1, 1, 3, 3)
    centers = torch.tensor([[[1.25, 1.0]]])          # size 2: x at 0.75, 1.75; y at 0.5, 1.5
    patch, grad_f, grad_c = _grads(crop_patches, features, centers, 2, torch.ones(1, 1, 1, 2, 2))
    assert torch.equal(patch[0, 0, 0], torch.tensor([[2.25, 3.25], [5.25, 6.25]]))
    # dV/dx = 1 and dV/dy = 3 at each of the four samples
    assert torch.equal(grad_c, torch.tensor([[[4.0, 12.0]]]))
    # Eq. 9: pixel (n, m) collects (sum of its y weights) * (sum of its x weights)
    col = torch.tensor([0.25, 1.0, 0.75])             # x = 0.75 -> 0.25, 0.75; 1.75 -> 0.25, 0.75
    row = torch.tensor([0.5, 1.0, 0.5])               # y = 0.5 -> 0.5, 0.5; 1.5 -> 0.5, 0.5
    assert torch.equal(grad_f[0, 0], row[:, None] * col[None, :])


def test_hand_example_3x3_right_border():
    features = torch.arange(9.0).view(1, 1, 3, 3)
    centers = torch.tensor([[[2.5, 2.0]]])            # halfway between I[2, 2] = 8 and outside
    patch, grad_f, grad_c = _grads(crop_patches, features, centers, 1, torch.ones(1, 1, 1, 1, 1))
    assert patch.item() == 4.0
    # x: slope from 8 to the zero outside; y = 2 is a kink: right-hand slope, towards zero
    assert torch.equal(grad_c, torch.tensor([[[-8.0, -4.0]]]))
    expected = torch.zeros(3, 3)
    expected[2, 2] = 0.5
    assert torch.equal(grad_f[0, 0], expected)


# ------------------------------------------------------------------ the grid_sample reference

@pytest.mark.parametrize("size", [1, 2, 3, 4, 8])
def test_matches_grid_sample_reference_forward_and_both_gradients(size):
    features, centers = _random_case(size, n=7)
    centers[1, 3] = centers[1, 2]                     # overlapping crops must add up
    upstream = torch.randn(2, 7, 3, size, size, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(1))
    ours = _grads(crop_patches, features, centers, size, upstream)
    ref = _grads(crop_patches_grid_sample, features, centers, size, upstream)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_matches_reference_with_a_non_contiguous_upstream_gradient():
    features, centers = _random_case(3)
    upstream = torch.randn(2, 5, 3, 3, 3, dtype=torch.float64).transpose(3, 4)
    ours = _grads(crop_patches, features, centers, 3, upstream)
    ref = _grads(crop_patches_grid_sample, features, centers, 3, upstream)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_reference_agrees_with_the_hand_example():
    features = torch.arange(9.0).view(1, 1, 3, 3)
    patch = crop_patches_grid_sample(features, torch.tensor([[[1.25, 1.0]]]), 2)
    assert torch.allclose(patch[0, 0, 0], torch.tensor([[2.25, 3.25], [5.25, 6.25]]))


# ------------------------------------------------------------------ gradcheck, finite differences

@pytest.mark.parametrize("size", [1, 2, 3])
def test_gradcheck_away_from_kinks(size):
    features, centers = _random_case(size, b=2, n=3, c=2, h=5, w=6, seed=size, spread=2.0)
    features.requires_grad_()
    centers.requires_grad_()
    assert torch.autograd.gradcheck(lambda f, c: crop_patches(f, c, size), (features, centers))


@pytest.mark.parametrize("size", [2, 3, 8])
def test_centre_gradient_matches_central_differences(size):
    features, centers = _random_case(size, n=20, seed=3)
    upstream = torch.randn(2, 20, 3, size, size, dtype=torch.float64)
    _, _, grad_c = _grads(crop_patches, features, centers, size, upstream)
    h = 1e-6
    for axis in (0, 1):
        step = torch.zeros(2, dtype=torch.float64)
        step[axis] = h
        # each landmark's patch depends on its own centre only: one difference per landmark
        plus = (crop_patches(features, centers + step, size) * upstream).sum((2, 3, 4))
        minus = (crop_patches(features, centers - step, size) * upstream).sum((2, 3, 4))
        torch.testing.assert_close(grad_c[..., axis], (plus - minus) / (2 * h), rtol=0, atol=1e-7)


# ------------------------------------------------------------------ kinks and borders

@pytest.mark.parametrize("size, x", [(3, 4.0), (2, 3.5)])
def test_kink_returns_the_right_hand_derivative(size, x):
    # odd sizes kink at integer x, even sizes at half-integers (samples on pixel centres)
    g = torch.Generator().manual_seed(5)
    features = torch.randn(1, 2, 8, 8, generator=g, dtype=torch.float64)
    centers = torch.tensor([[[x, 3.3]]], dtype=torch.float64)
    upstream = torch.randn(1, 1, 2, size, size, generator=g, dtype=torch.float64)
    _, _, grad_c = _grads(crop_patches, features, centers, size, upstream)

    def loss(dx):
        moved = centers + torch.tensor([dx, 0.0], dtype=torch.float64)
        return (crop_patches(features, moved, size) * upstream).sum()

    h = 1e-3                                         # V is linear on each side of the kink
    right = (loss(h) - loss(0.0)) / h
    left = (loss(0.0) - loss(-h)) / h
    assert abs(grad_c[0, 0, 0] - right) < 1e-9
    assert abs(right - left) > 1e-3                  # a real kink: the two sides differ


def test_zero_outside_and_partial_patches_at_the_border():
    features = torch.ones(1, 1, 4, 4)
    centers = torch.tensor([[[0.0, 1.5], [-0.5, 1.5], [-2.0, 1.5], [100.0, -1e9]]])
    patch = crop_patches(features, centers, 3)[0, :, 0]       # (N, 3, 3)
    assert torch.equal(patch[0, 0], torch.tensor([0.0, 1.0, 1.0]))      # sample x = -1 is outside
    assert torch.equal(patch[1, 0], torch.tensor([0.0, 0.5, 1.0]))      # x = -1.5, -0.5, 0.5
    assert torch.equal(patch[2], torch.zeros(3, 3))                     # x = -3 .. -1
    assert torch.equal(patch[3], torch.zeros(3, 3))                     # far away, no overflow


@pytest.mark.parametrize("size", [1, 2, 5])
def test_crops_at_and_beyond_the_zero_frame_match_the_reference(size):
    # crop_patches reads each window from a copy of the map inside a zero frame size + 1 pixels
    # wide. Centres inside, across and far beyond the frame's edge, on every side and corner,
    # in two images with no zero pixel: a window that ran past the frame would read the next
    # row or the next image, and its gradient would land there too.
    b, c, h, w, k = 2, 3, 6, 7, size + 1
    g = torch.Generator().manual_seed(7)
    features = 1 + torch.rand(b, c, h, w, generator=g, dtype=torch.float64)
    xs = [-k - 1.3, -k + 0.4, -0.6, w / 2, w - 0.4, w + k - 0.6, w + k + 1.3, 1e6]
    ys = [-k - 1.3, -k + 0.4, -0.6, h / 2, h - 0.4, h + k - 0.6, h + k + 1.3, -1e6]
    grid = torch.tensor([[x, y] for x in xs for y in ys], dtype=torch.float64)
    centers = _away_from_kinks(grid, size).expand(b, -1, -1).contiguous()
    upstream = torch.randn(b, len(grid), c, size, size, generator=g, dtype=torch.float64)
    ours = _grads(crop_patches, features, centers, size, upstream)
    ref = _grads(crop_patches_grid_sample, features, centers, size, upstream)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=0, atol=1e-10)
    assert torch.count_nonzero(ours[0]) > 0 and torch.count_nonzero(ours[0] == 0) > 0


def test_a_crop_wholly_outside_has_zero_gradients():
    features, _ = _random_case(3, b=1, n=1)
    centers = torch.tensor([[[-5.0, 2.3]]], dtype=torch.float64)
    _, grad_f, grad_c = _grads(crop_patches, features, centers, 3, torch.ones(1, 1, 3, 3, 3))
    assert torch.count_nonzero(grad_f) == 0 and torch.count_nonzero(grad_c) == 0


# ------------------------------------------------------------------ the gradient-path flags

def test_flags_stop_one_gradient_and_keep_the_other():
    features, centers = _random_case(3)
    upstream = torch.randn(2, 5, 3, 3, 3, dtype=torch.float64)
    _, full_f, full_c = _grads(crop_patches, features, centers, 3, upstream)
    for grad_features, grad_centers in [(False, True), (True, False), (False, False)]:
        f = features.clone().requires_grad_()
        c = centers.clone().requires_grad_()
        out = crop_patches(f, c, 3, grad_features=grad_features, grad_centers=grad_centers)
        (out * upstream).sum().backward()
        assert (f.grad is None) != grad_features and (c.grad is None) != grad_centers
        if grad_features:
            torch.testing.assert_close(f.grad, full_f, rtol=0, atol=1e-12)
        if grad_centers:
            torch.testing.assert_close(c.grad, full_c, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ shapes, dtypes, errors

def test_shapes_dtypes_and_empty_landmarks():
    features = torch.randn(3, 4, 6, 5)
    centers = torch.rand(3, 7, 2, dtype=torch.float64) * 5
    patch = crop_patches(features, centers, 4)
    assert patch.shape == (3, 7, 4, 4, 4) and patch.dtype == torch.float32
    empty = crop_patches(features.requires_grad_(), torch.zeros(3, 0, 2).requires_grad_(), 2)
    assert empty.shape == crop_patches_grid_sample(features, torch.zeros(3, 0, 2), 2).shape
    assert empty.shape == (3, 0, 4, 2, 2)
    empty.sum().backward()
    assert torch.count_nonzero(features.grad) == 0


def test_a_map_without_channels_gives_empty_patches_like_the_reference():
    features = torch.zeros(2, 0, 6, 5, requires_grad=True)
    centers = (torch.rand(2, 3, 2) * 5).requires_grad_()
    patch = crop_patches(features, centers, 3)
    assert patch.shape == crop_patches_grid_sample(features, centers, 3).shape == (2, 3, 0, 3, 3)
    patch.sum().backward()
    assert features.grad.shape == (2, 0, 6, 5) and torch.equal(centers.grad, torch.zeros(2, 3, 2))


@pytest.mark.parametrize("features, centers, size, match", [
    (torch.zeros(4, 6, 5), torch.zeros(1, 2, 2), 3, "features"),
    (torch.zeros(1, 4, 6, 5), torch.zeros(2, 2), 3, "centers"),
    (torch.zeros(1, 4, 6, 5), torch.zeros(1, 2, 3), 3, "centers"),
    (torch.zeros(2, 4, 6, 5), torch.zeros(1, 2, 2), 3, "batch size"),
    (torch.zeros(1, 4, 6, 5), torch.tensor([[[0.0, float("nan")]]]), 3, "finite"),
    (torch.zeros(1, 4, 6, 5), torch.tensor([[[float("inf"), 0.0]]]), 3, "finite"),
    (torch.zeros(1, 4, 6, 5), torch.zeros(1, 2, 2, dtype=torch.long), 3, "centers"),
    (torch.zeros(1, 4, 6, 5, dtype=torch.long), torch.zeros(1, 2, 2), 3, "features"),
    (torch.zeros(1, 4, 6, 5), torch.zeros(1, 2, 2), 0, "size"),
    (torch.zeros(1, 4, 6, 5), torch.zeros(1, 2, 2), 2.0, "size"),
    (torch.zeros(1, 4, 6, 5), torch.zeros(1, 2, 2), True, "size"),
])
def test_bad_inputs_raise_and_name_the_argument(features, centers, size, match):
    for fn in (crop_patches, crop_patches_grid_sample):
        with pytest.raises(ValueError, match=match):
            fn(features, centers, size)
