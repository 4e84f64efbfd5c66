"""Transforms: the image content under each landmark must move with the landmark.

Each geometric test renders a Gaussian dot at every landmark, applies the transform and finds
every dot again by its intensity centroid near the transformed landmark. A half-pixel slip in
the convention (``W - x`` instead of ``W - 1 - x``, pixel edges vs centres) shows up as an
error of 0.5 px or more; the tolerance is 0.05 px.
"""

import cv2
import numpy as np
import pytest

from lmk.data import transforms as T
from lmk.geometry import apply_affine, invert_affine, rescale_points

TOL = 0.05
FACE = np.array([[40.3, 50.7], [90.2, 48.9], [65.5, 80.1], [45.8, 110.4], [88.1, 111.6]])
TOY_PERM = np.array([1, 0, 2, 4, 3])   # eyes and mouth corners swap, the nose stays


def render_dots(points, shape, sigma=2.0):
    """uint8 (H, W, 3) image with a Gaussian dot (peak 250) centred on each point."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    image = np.zeros(shape)
    for px, py in points:
        image += np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma ** 2))
    grey = np.clip(np.rint(250 * image), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def dot_centroids(image, points, radius):
    """Intensity centroid of the image inside a disc of ``radius`` around each point."""
    g = np.asarray(image, dtype=np.float64)
    g = g.mean(-1) if g.ndim == 3 else g
    y, x = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    out = []
    for px, py in points:
        weight = g * (((x - px) ** 2 + (y - py) ** 2) <= radius ** 2)
        assert weight.sum() > 0, f"no dot found near ({px:.1f}, {py:.1f})"
        out.append([(weight * x).sum() / weight.sum(), (weight * y).sum() / weight.sum()])
    return np.array(out)


def assert_dots_follow(image, points, radius=7):
    err = np.abs(dot_centroids(image, points, radius) - points).max()
    assert err < TOL, f"dots are {err:.3f} px away from their landmarks"


@pytest.fixture(scope="module")
def dots():
    return render_dots(FACE, (160, 130))


def test_dot_finder_itself_is_accurate(dots):
    assert_dots_follow(dots, FACE)
    assert np.abs(dot_centroids(dots, FACE + 0.5, 7) - FACE).max() < TOL


def test_flip_moves_dots_with_landmarks(dots):
    out, points = T.flip_horizontal(dots, FACE, TOY_PERM)
    assert_dots_follow(out, points)
    assert np.allclose(points[1], [130 - 1 - FACE[0, 0], FACE[0, 1]])  # x -> W - 1 - x


def test_flip_twice_is_identity(dots):
    out, points = T.flip_horizontal(*T.flip_horizontal(dots, FACE, TOY_PERM), TOY_PERM)
    assert np.array_equal(out, dots)
    assert np.allclose(points, FACE, atol=1e-12)


def test_flip_matrix_matches_array_flip(dots):
    warped = T.warp_image(dots, T.flip_matrix(dots.shape[1]), dots.shape[:2])
    assert np.array_equal(warped, dots[:, ::-1])


@pytest.mark.parametrize("seed", range(4))
def test_random_affine_moves_dots_with_landmarks(dots, seed):
    rng = np.random.default_rng(seed)
    out, points, m = T.random_affine(dots, FACE, rng, max_rotation=15, max_scale=0.2,
                                     max_shift=10)
    assert_dots_follow(out, points)
    assert np.allclose(points, apply_affine(FACE, m))


def test_random_affine_ranges_and_determinism():
    size = (100, 80)
    centre = np.array([(80 - 1) / 2, (100 - 1) / 2])
    for seed in range(20):
        m = T.random_affine_matrix(np.random.default_rng(seed), size, 15.0, 0.1, 5.0)
        assert np.array_equal(m, T.random_affine_matrix(np.random.default_rng(seed), size,
                                                        15.0, 0.1, 5.0))
        lin = m[:, :2]
        scale = np.sqrt(np.linalg.det(lin))
        angle = np.degrees(np.arctan2(lin[0, 1], lin[0, 0]))
        shift = apply_affine(centre, m) - centre   # the centre moves only by the shift
        assert 0.9 - 1e-9 <= scale <= 1.1 + 1e-9
        assert abs(angle) <= 15 + 1e-9
        assert np.all(np.abs(shift) <= 5 + 1e-9)


def test_crop_moves_dots_with_landmarks(dots):
    m = T.crop_matrix(T.box_from_landmarks(FACE), (64, 56), margin=0.3)
    out, points = T.warp(dots, FACE, m, (64, 56))
    assert out.shape == (64, 56, 3)
    assert_dots_follow(out, points, radius=4)


def test_crop_maps_box_edges_to_pixel_edges():
    m = T.crop_matrix([10.0, 20.0, 50.0, 60.0], (80, 80), margin=0.0)
    corners = apply_affine(np.array([[10.0, 20.0], [50.0, 60.0]]), m)
    assert np.allclose(corners, [[-0.5, -0.5], [79.5, 79.5]])


def test_alignment_moves_dots_and_inverts(dots):
    out, points, m = T.align_five_points(dots, FACE, FACE, (64, 64))
    assert_dots_follow(out, points, radius=4)
    back = apply_affine(points, invert_affine(m))
    assert np.allclose(back, FACE, atol=1e-9)


def test_alignment_recovers_a_known_similarity():
    ref = T.reference_points((96, 96))
    angle, scale, t = np.radians(20), 1.7, np.array([13.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    five = (ref - t) @ np.linalg.inv(rot).T        # five points that map exactly onto ref
    m = T.alignment_matrix(five, (96, 96))
    assert np.allclose(apply_affine(five, m), ref, atol=1e-9)
    assert np.allclose(m[:, :2], rot)


def test_reference_puts_eyes_and_mouth_horizontal():
    ref = T.reference_points((112, 112))
    assert ref[0, 1] == ref[1, 1] and ref[3, 1] == ref[4, 1]
    assert np.isclose(ref[:, 0].mean() - ref[2, 0], 0)      # symmetric about the nose


@pytest.mark.parametrize("name", ["color_jitter", "pca_lighting", "random_erasing"])
def test_photometric_is_deterministic_and_keeps_shape(dots, name):
    fn = getattr(T, name)
    a = fn(dots, np.random.default_rng(3))
    b = fn(dots, np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == dots.shape
    assert np.array_equal(a, b)


def test_color_jitter_identity_when_ranges_are_zero(dots):
    out = T.color_jitter(dots, np.random.default_rng(0), 0.0, 0.0, 0.0)
    assert np.array_equal(out, dots)


def test_pca_lighting_adds_one_colour_shift():
    image = np.full((8, 8, 3), 128, np.uint8)
    out = T.pca_lighting(image, np.random.default_rng(1), std=0.5).astype(int) - 128
    assert np.all(out == out[0, 0])                 # the same RGB offset on every pixel
    assert np.abs(out[0, 0]).max() > 0


def test_random_erasing_covers_one_rectangle_of_the_right_area():
    image = np.zeros((100, 120, 3), np.uint8)
    for seed in range(10):
        out = T.random_erasing(image, np.random.default_rng(seed), p=1.0, area=(0.05, 0.1))
        ys, xs = np.nonzero(out.any(-1))
        h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert 0.04 * 12000 <= h * w <= 0.11 * 12000
    assert np.array_equal(T.random_erasing(image, np.random.default_rng(0), p=0.0), image)


def test_normalize_round_trip(dots):
    tensor = T.normalize_image(dots)
    assert tensor.shape == (3, 160, 130) and str(tensor.dtype) == "torch.float32"
    assert np.array_equal(T.denormalize_image(tensor), dots)


def test_augment_geometric_flip_composes(dots):
    aug = T.Augment(flip_prob=1.0, max_rotation=0, max_scale=0, max_shift=0)
    m, flipped = aug.geometric(np.random.default_rng(0), dots.shape[:2])
    assert flipped and np.allclose(m, T.flip_matrix(dots.shape[1]))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 4), np.uint8), r"\(H, W, 3\)"),
])
def test_bad_images_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        T.warp_image(bad, np.eye(2, 3), (5, 5))


def test_bad_arguments_are_rejected(dots):
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        T.flip_horizontal(dots, np.zeros((5, 3)), TOY_PERM)
    with pytest.raises(ValueError, match="finite"):
        T.box_from_landmarks([[0, np.nan], [1, 1]])
    with pytest.raises(ValueError, match="x1 > x0"):
        T.crop_matrix([5, 5, 5, 10], 32)
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        T.alignment_matrix(FACE[:4], 32)
    with pytest.raises(ValueError, match="flip_perm"):
        T.flip_landmarks(FACE, 100, [0, 1, 2])


def test_transform_pose_mirror_and_rotation():
    pose = np.array([30.0, -10.0, 5.0])
    assert np.allclose(T.transform_pose(pose, np.array([[2.0, 0, 3], [0, 2.0, -1]])), pose)
    assert np.allclose(T.transform_pose(pose, T.flip_matrix(64)), [-30.0, -10.0, -5.0])
    # cv2-style rotation by +20 deg (counter-clockwise on screen) turns the face by -20 deg roll
    rot = T.random_affine_matrix(np.random.default_rng(0), 64, 0, 0, 0)
    assert np.allclose(T.transform_pose(pose, rot), pose)
    from lmk.geometry import rotation_matrix
    assert np.allclose(T.transform_pose(pose, rotation_matrix(20.0, (31.5, 31.5))), [30, -10, -15])
    both = rotation_matrix(20.0, (31.5, 31.5)) @ np.vstack([T.flip_matrix(64), [0, 0, 1]])
    assert np.allclose(T.transform_pose(pose, both), [-30, -10, -25])
    assert np.isclose(T.transform_pose([0, 0, 170], rotation_matrix(-20.0))[2], -170)


# ----------------------------------------------------------------------------- anti-aliasing

def textured_image(shape, seed=0):
    """Random texture with detail at every scale down to single pixels (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, shape + (3,)).astype(np.float32)
    coarse = cv2.resize(rng.uniform(0, 255, (shape[0] // 16, shape[1] // 16, 3)).astype(np.float32),
                        shape[::-1], interpolation=cv2.INTER_CUBIC)
    return np.clip(0.5 * noise + 0.5 * coarse, 0, 255).astype(np.uint8)


def downscale_matrix(k):
    """Pure ``1 / k`` downscale in the pixel-centre convention (pixel edges stay on edges)."""
    offset = rescale_points(np.zeros(2), 1.0 / k)
    return np.array([[1.0 / k, 0.0, offset[0]], [0.0, 1.0 / k, offset[1]]])


@pytest.mark.parametrize("k", [2, 4, 10])
def test_downscale_agrees_with_area_resampling(k):
    src = textured_image((400, 360))
    out_size = (400 // k, 360 // k)
    ref = cv2.resize(src, out_size[::-1], interpolation=cv2.INTER_AREA).astype(np.float64)
    m = downscale_matrix(k)
    ours = np.abs(T.warp_image(src, m, out_size) - ref).mean()
    plain = np.abs(T.warp_image(src, m, out_size, antialias=False) - ref).mean()
    msg = f"1/{k}: anti-aliased {ours:.2f} vs plain bilinear {plain:.2f} grey levels off INTER_AREA"
    assert ours < 1.0, msg
    if k > 2:        # at exactly 1/2 a bilinear sample is the mean of a 2 x 2 block: no aliasing
        assert plain > 5 * max(ours, 1.0), msg


def test_fine_stripes_shrink_to_flat_grey_not_moire():
    """Stripes 2.5 px apart are far above the Nyquist limit of a 10x smaller image: an
    anti-aliased warp shows their mean grey, a plain bilinear warp shows a false pattern."""
    x = np.arange(500)
    stripes = np.where((2 * x) % 5 < 2.5, 230, 20).astype(np.uint8)     # period 5 = 2 stripes
    src = np.repeat(np.broadcast_to(stripes, (500, 500))[..., None], 3, axis=2)
    m = T.rotation_matrix(10.0, (249.5, 249.5), 0.1)
    m[:, 2] -= apply_affine(np.array([249.5, 249.5]), m) - 24.5     # centre -> output centre
    ours = T.warp_image(src, m, 50)[10:40, 10:40].std()
    plain = T.warp_image(src, m, 50, antialias=False)[10:40, 10:40].std()
    assert ours < 3 and plain > 30, f"grey-level std: anti-aliased {ours:.1f}, plain {plain:.1f}"


@pytest.mark.parametrize("angle", [0.0, 25.0])
def test_strong_shrink_keeps_dots_on_landmarks(angle):
    big_face = FACE * 6
    big = render_dots(big_face, (960, 780), sigma=12.0)
    m = T.rotation_matrix(angle, (389.5, 479.5), 1 / 6)
    m[:, 2] += np.array([64.5, 79.5]) - [389.5, 479.5]        # image centre -> output centre
    out, points = T.warp(big, big_face, m, (160, 130))
    assert_dots_follow(out, points)


@pytest.mark.parametrize("matrix", [
    np.eye(2, 3),                                              # identity
    T.rotation_matrix(30.0, (60.0, 70.0)),                     # rotation, scale 1
    np.array([[1.7, 0.2, -20.0], [-0.1, 1.3, 5.5]]),           # upscaling affine
    T.flip_matrix(130),
])
def test_warps_that_do_not_shrink_are_plain_warp_affine(dots, matrix):
    plain = cv2.warpAffine(dots, matrix, (110, 90), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    assert np.array_equal(T.warp_image(dots, matrix, (90, 110)), plain)


def test_shrink_border_is_border_value_in_every_channel():
    white = np.full((40, 40, 3), 255, np.uint8)
    m = downscale_matrix(4)
    m[:, 2] += 10                                             # image -> output pixels 10..19
    out = T.warp_image(white, m, 30, border_value=100)
    assert np.array_equal(out[11:19, 11:19], np.full((8, 8, 3), 255))
    assert np.array_equal(out[:9], np.full((9, 30, 3), 100))  # grey, not (100, 0, 0)
    assert np.array_equal(out[21:, 21:], np.full((9, 9, 3), 100))


def test_warp_image_rejects_bad_sizes_and_singular_shrinks(dots):
    with pytest.raises(ValueError, match=r"size must be a positive int.*got 5\.9"):
        T.warp_image(dots, np.eye(2, 3), 5.9)
    with pytest.raises(ValueError, match="singular"):
        T.warp_image(dots, np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]), 32)
