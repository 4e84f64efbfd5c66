import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmk.geometry import (affine_transform, apply_affine, compose_affine, invert_affine,
                          rescale_points, resize_points, rotation_matrix, similarity_transform)


def test_rescale_maps_pixel_edges_and_centres():
    # Pixel 0 of a 4-px image covers [-0.5, 0.5]; at 2x it becomes pixels 0 and 1, centre 0.5.
    p = np.array([[0.0, 0.0], [-0.5, -0.5], [3.5, 3.5]])
    np.testing.assert_allclose(rescale_points(p, 2.0), [[0.5, 0.5], [-0.5, -0.5], [7.5, 7.5]])
    np.testing.assert_allclose(rescale_points(p, (2.0, 0.5)), [[0.5, -0.25], [-0.5, -0.5], [7.5, 1.5]])


def test_rescale_matches_cv2_resize_of_a_dot():
    img = np.zeros((16, 16), np.float32)
    img[5, 9] = 1.0  # dot at x=9, y=5
    big = cv2.resize(img, (64, 64), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[:64, :64]
    centroid = np.array([(xs * big).sum(), (ys * big).sum()]) / big.sum()
    np.testing.assert_allclose(centroid, rescale_points(np.array([9.0, 5.0]), 4.0), atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.1, 10), st.floats(-50, 50), st.floats(-50, 50))
def test_rescale_roundtrip(s, x, y):
    p = np.array([[x, y]])
    np.testing.assert_allclose(rescale_points(rescale_points(p, s), 1 / s), p, atol=1e-9)


def test_resize_points_and_kinds():
    p = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    out = resize_points(p, (10, 20), (20, 80))  # y x2, x x4
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), [[1.5, 0.5]])
    with pytest.raises(ValueError, match="positive"):
        rescale_points(p, 0.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        rescale_points(np.zeros((3, 3)), 2.0)


def _random_similarity(rng):
    a, s = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 3)
    return np.array([[s * np.cos(a), -s * np.sin(a), rng.uniform(-20, 20)],
                     [s * np.sin(a), s * np.cos(a), rng.uniform(-20, 20)]])


def test_similarity_recovers_exact_transform_batched():
    rng = np.random.default_rng(0)
    mats = np.stack([_random_similarity(rng) for _ in range(8)])
    src = rng.uniform(0, 100, (8, 5, 2))
    dst = apply_affine(src, mats)
    np.testing.assert_allclose(similarity_transform(src, dst), mats, atol=1e-9)


def test_similarity_is_least_squares_against_brute_force():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 10, (6, 2))
    dst = apply_affine(src, _random_similarity(rng)) + rng.normal(0, 0.5, (6, 2))
    m = similarity_transform(src, dst)
    best = ((apply_affine(src, m) - dst) ** 2).sum()
    # No similarity on a grid around the solution does better.
    a0, s0 = np.arctan2(m[1, 0], m[0, 0]), np.hypot(m[0, 0], m[1, 0])
    for da in np.linspace(-0.05, 0.05, 11):
        for ds in np.linspace(-0.05, 0.05, 11):
            a, s = a0 + da, s0 * (1 + ds)
            lin = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            t = (dst - src @ lin.T).mean(0)  # optimal translation for this linear part
            cost = ((src @ lin.T + t - dst) ** 2).sum()
            assert cost >= best - 1e-9


def _umeyama_svd(src, dst, w):
    """Umeyama (1991) with the SVD, weighted: the reference for the closed form."""
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    sc, dc = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd((dc * w[:, None]).T @ sc)
    signs = np.array([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    lin = (sv * signs).sum() / (w @ (sc ** 2).sum(1)) * (u @ np.diag(signs) @ vt)
    return np.hstack([lin, (mu_d - lin @ mu_s)[:, None]])


@pytest.mark.parametrize("mirror", [False, True])
def test_similarity_closed_form_equals_umeyama_svd(mirror):
    rng = np.random.default_rng(5)
    for _ in range(20):
        src = rng.uniform(0, 50, (7, 2))
        dst = apply_affine(src, _random_similarity(rng)) + rng.normal(0, 2.0, (7, 2))
        if mirror:                      # the unconstrained best fit would be a reflection
            dst[:, 0] *= -1
        w = rng.uniform(0.1, 2.0, 7)
        np.testing.assert_allclose(similarity_transform(src, dst, w), _umeyama_svd(src, dst, w),
                                   atol=1e-9)


def test_similarity_matches_opencv_estimate():
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 100, (5, 2))
    dst = apply_affine(src, _random_similarity(rng)) + rng.normal(0, 1.0, (5, 2))
    ours = similarity_transform(src, dst)
    cv, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    # LMEDS is robust, not least squares: compare via residuals on noise-free data instead.
    clean = apply_affine(src, ours)
    cv2_ref, _ = cv2.estimateAffinePartial2D(src, clean, method=cv2.LMEDS)
    np.testing.assert_allclose(cv2_ref, ours, atol=1e-6)
    assert cv is not None


def test_similarity_never_reflects():
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    dst = src * np.array([-1.0, 1.0])  # a mirror image: best similarity is not a reflection
    m = similarity_transform(src, dst)
    assert np.linalg.det(m[:, :2]) > 0


def test_affine_invert_compose_roundtrip():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 2, 3))
    b = rng.normal(size=(4, 2, 3))
    p = rng.uniform(-10, 10, (4, 7, 2))
    np.testing.assert_allclose(apply_affine(apply_affine(p, a), invert_affine(a)), p, atol=1e-8)
    np.testing.assert_allclose(apply_affine(p, compose_affine(a, b)),
                               apply_affine(apply_affine(p, b), a), atol=1e-9)
    np.testing.assert_allclose(affine_transform(p[0], apply_affine(p[0], a[0])), a[0], atol=1e-8)


def test_rotation_matrix_matches_opencv():
    ours = rotation_matrix(30.0, center=(12.5, 7.0), scale=1.3)
    np.testing.assert_allclose(ours, cv2.getRotationMatrix2D((12.5, 7.0), 30.0, 1.3), atol=1e-12)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="singular"):
        invert_affine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        similarity_transform(np.array([[0, 0], [1, np.nan]]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="identical"):
        similarity_transform(np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        similarity_transform(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 3\)"):
        apply_affine(np.zeros((3, 2)), np.eye(3))


def test_numpy_fast_paths_equal_the_torch_paths():
    rng = np.random.default_rng(7)
    a, b = _random_similarity(rng), rng.normal(size=(2, 3))
    points = rng.uniform(0, 50, (9, 2))
    batched = compose_affine(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(compose_affine(a, b), batched, atol=1e-12)
    np.testing.assert_allclose(apply_affine(points, a), apply_affine(torch.from_numpy(points),
                                                                     torch.from_numpy(a)).numpy(), atol=1e-12)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        apply_affine(np.zeros((4, 3)), a)


def test_rescale_points_integer_points_follow_the_float_rule():
    """Integer points become float32 (as in gaussian_heatmaps); floats keep their dtype."""
    ints = np.array([[0, 0], [3, 1]])
    out = rescale_points(ints, 2)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.5, 0.5], [6.5, 2.5]])
    assert rescale_points(ints.astype(np.float64), 2).dtype == np.float64
    assert rescale_points(torch.tensor(ints), 2).dtype == torch.float32


def test_numpy_fast_paths_agree_with_the_torch_path():
    """One (2, 3) float64 matrix or plain float64 points skip torch; the answers are the same."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(2, 3))
    np.testing.assert_allclose(invert_affine(m), invert_affine(torch.from_numpy(m)).numpy(),
                               rtol=1e-12, atol=1e-12)
    p = rng.normal(size=(5, 2))
    np.testing.assert_allclose(rescale_points(p, (2.0, 0.5)),
                               rescale_points(torch.from_numpy(p), (2.0, 0.5)).numpy())
    with pytest.raises(ValueError, match="singular"):
        invert_affine(np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0]]))
    with pytest.raises(ValueError, match="scale must be positive"):
        rescale_points(p, (1.0, -1.0))
    with pytest.raises(ValueError, match=r"scale must be a scalar or \(sx, sy\)"):
        rescale_points(p, np.ones(3))
    with pytest.raises(TypeError):
        rescale_points(p, "2")
