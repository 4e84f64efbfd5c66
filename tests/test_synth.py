"""Tests of the synthetic face world (lmk.data.synth, synth_face, synth_render, synth_video)."""

import cv2
import numpy as np
import pytest
import torch

from lmk.data.synth import (DIFFICULTIES, SynthFaces, SynthNegatives, box_iou,
                            boundary_gradient_ratio, crop_window)
from lmk.data.synth_face import (NEUTRAL_EXPRESSION, NEUTRAL_IDENTITY, frontal_shape,
                                 landmarks_2d, project, rotation_matrix, shape_3d)
from lmk.data.synth_draw import (blend, exact_pieces, fill, fill_band, fill_pieces,
                                 inset_polygons, split_parts)
from lmk.data.synth_video import SynthVideos, synth_video
from lmk.layouts import LAYOUT_68


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ----------------------------------------------------------------------------- determinism

def test_item_is_a_pure_function_of_seed_and_index():
    ds = SynthFaces(20, size=64, seed=3)
    forward = [ds[i] for i in (4, 11, 7)]
    other = SynthFaces(20, size=64, seed=3)
    backward = [other[i] for i in (7, 11, 4)][::-1]
    for a, b in zip(forward, backward):
        _same(a, b)
    _same(ds[4], ds[-16])
    assert not np.array_equal(ds[4]["image"], SynthFaces(20, size=64, seed=4)[4]["image"])
    assert not np.array_equal(ds[4]["landmarks"], ds[5]["landmarks"])


def test_dataloader_workers_agree_with_direct_access():
    ds = SynthFaces(6, size=64, seed=1)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=6, num_workers=2)))
    for i in range(6):
        np.testing.assert_array_equal(batch["image"][i].numpy(), ds[i]["image"])


# ----------------------------------------------------------------------------- items

@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes_and_dtypes(size):
    item = SynthFaces(2, size=size)[1]
    expected = {"image": ((size, size, 3), np.uint8), "landmarks": ((68, 2), np.float32),
                "pose": ((3,), np.float32), "box": ((4,), np.float32),
                "five_points": ((5, 2), np.float32), "occluded": ((68,), np.bool_),
                "identity": ((13,), np.float32), "expression": ((5,), np.float32),
                "camera": ((4,), np.float32)}
    assert set(item) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert item[key].shape == shape and item[key].dtype == dtype, key


@pytest.mark.parametrize("difficulty", ["easy", "default"])
def test_landmarks_inside_image_and_box_is_their_extent(difficulty):
    ds = SynthFaces(40, size=96, seed=5, difficulty=difficulty)
    for i in range(len(ds)):
        item = ds[i]
        lm = item["landmarks"]
        assert lm.min() >= 0 and lm.max() <= 95
        np.testing.assert_array_equal(item["box"], np.concatenate([lm.min(0), lm.max(0)]))
        five = LAYOUT_68.five_points(lm)
        iod = np.linalg.norm(lm[45] - lm[36])
        assert np.abs(item["five_points"] - five).max() < 0.4 * iod   # noisy but close


@pytest.mark.parametrize("difficulty", ["easy", "default", "hard"])
def test_pose_ranges_respected(difficulty):
    cfg = DIFFICULTIES[difficulty]
    poses = np.stack([SynthFaces(30, size=64, seed=2, difficulty=difficulty)[i]["pose"]
                      for i in range(30)])
    limits = np.array([cfg.yaw, cfg.pitch, cfg.roll])
    assert np.all(np.abs(poses) <= limits + 1e-4)
    assert np.all(np.abs(poses).max(0) > 0.5 * limits)     # the range is actually used


def test_hard_has_occluders_and_large_yaw_easy_has_none():
    hard = [SynthFaces(40, size=64, seed=0, difficulty="hard")[i] for i in range(40)]
    assert sum(item["occluded"].any() for item in hard) >= 5
    assert max(abs(item["pose"][0]) for item in hard) > 55
    easy = [SynthFaces(10, size=64, difficulty="easy")[i] for i in range(10)]
    assert not any(item["occluded"].any() for item in easy)


# ----------------------------------------------------------------------------- exact labels

def test_landmarks_reproject_exactly_from_returned_parameters():
    ds = SynthFaces(10, size=128, seed=9, difficulty="hard")
    for i in range(10):
        item = ds[i]
        lm = landmarks_2d(item["identity"].astype(np.float64),
                          item["expression"].astype(np.float64),
                          item["pose"].astype(np.float64), item["camera"].astype(np.float64))
        np.testing.assert_allclose(item["landmarks"], lm, atol=1e-4)


def test_pose_matches_pnp_on_rigid_points():
    """An independent solver (OpenCV's PnP) recovers the labelled rotation."""
    item = SynthFaces(5, size=128, seed=11)[2]
    identity, expression = item["identity"].astype(float), item["expression"].astype(float)
    pts3d, _ = shape_3d(identity, expression, float(item["pose"][0]))
    s, cx, cy, dist = item["camera"].astype(float)
    K = np.array([[s * dist, 0, cx], [0, s * dist, cy], [0, 0, 1]])
    rigid = np.arange(17, 68)                         # everything but the contour
    ok, rvec, tvec = cv2.solvePnP(pts3d[rigid], item["landmarks"][rigid].astype(float), K, None,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    assert ok
    R, _ = cv2.Rodrigues(rvec)
    np.testing.assert_allclose(R, rotation_matrix(*item["pose"].astype(float)), atol=1e-3)
    np.testing.assert_allclose(tvec.ravel(), [0, 0, dist], atol=1e-2)


def test_euler_convention_signs():
    pts, _ = frontal_shape(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION)
    cam = (10.0, 0.0, 0.0, 10.0)
    front = landmarks_2d(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION, (0, 0, 0), cam)
    yaw = landmarks_2d(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION, (30, 0, 0), cam)
    pitch = landmarks_2d(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION, (0, 30, 0), cam)
    roll = landmarks_2d(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION, (0, 0, 30), cam)
    assert yaw[30, 0] > front[30, 0] + 1                  # yaw > 0: nose to the image right
    assert pitch[30, 1] < front[30, 1] - 1                # pitch > 0: looks up
    assert roll[45, 1] > roll[36, 1] + 1                  # roll > 0: clockwise in the image
    np.testing.assert_allclose(np.abs(front[:, 0]), np.abs(front[LAYOUT_68.flip_perm, 0]),
                               atol=1e-9)                 # frontal template is symmetric
    assert front[36, 0] < front[45, 0] and front[8, 1] > front[30, 1] > front[27, 1]
    R = rotation_matrix(20, -35, 50)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)
    y, p, r = np.deg2rad([20, -35, 50])                  # the product of the three rotations
    r_yaw = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    r_pitch = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    r_roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    np.testing.assert_allclose(R, r_roll @ r_pitch @ r_yaw, atol=1e-15)


def test_contour_follows_silhouette_and_far_side_stays_labelled():
    cam = (10.0, 0.0, 0.0, 1e6)                           # orthographic in the limit
    for yaw in (30.0, 60.0, 75.0):
        pts, outline = shape_3d(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION, yaw)
        uv = project(pts, (yaw, 0, 0), cam)
        # Each far-side contour point is the x-extreme of its own ellipse: a small move of
        # its ellipse angle cannot increase its projected x (brute force over the ellipse).
        x0, h0 = frontal_shape(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION)[0][12, [0, 2]]
        b = 1.05 - h0
        t = np.linspace(-np.pi / 2, np.pi / 2, 20001)
        xs = x0 * np.cos(t) * np.cos(np.deg2rad(yaw)) + (h0 + b * np.sin(t)) * np.sin(
            np.deg2rad(yaw))
        assert uv[12, 0] / 10 == pytest.approx(xs.max(), abs=1e-6)
        # The far silhouette stays outside the far eye corner and mouth corner.
        assert uv[14:17, 0].min() > uv[45, 0] and uv[10:14, 0].min() > uv[54, 0]
        assert np.isfinite(uv).all()


# ----------------------------------------------------------------------------- rendering

def test_fill_puts_the_antialiased_edge_on_the_polygon():
    """Sub-pixel edges: a filled square covers its exact area (OpenCV's ~0.68 px growth of
    anti-aliased fills is compensated: 0.15 px per edge at worst, unbiased over angles) and its
    centroid moves by the sub-pixel offset."""
    rng = np.random.default_rng(0)
    residual, errors = [], []
    for k in range(100):
        a = rng.uniform(0, np.pi / 2)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        half = rng.uniform(3, 20)
        offset = rng.uniform(25, 26, 2)
        square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]]) * half @ rot.T + offset
        img = np.zeros((60, 60), np.uint8)
        fill(img, square, 255)
        cover = img.astype(float) / 255
        residual.append((cover.sum() - 4 * half * half) / (8 * half))   # px per edge
        centroid = (cover.sum(0) * np.arange(60)).sum() / cover.sum(), \
            (cover.sum(1) * np.arange(60)).sum() / cover.sum()
        errors.append(np.abs(np.subtract(centroid, offset)).max())
    assert np.abs(residual).max() < 0.15
    assert abs(np.mean(residual)) < 0.03
    assert np.max(errors) < 0.2 and np.mean(errors) < 0.03


def test_inset_polygons_moves_each_edge_by_its_distance():
    rng = np.random.default_rng(1)
    ang = 2 * np.pi * np.arange(7) / 7 + rng.uniform(-0.1, 0.1, 7)   # turns of ~50 degrees
    z = 30 + rng.uniform(8, 12, 7) * np.exp(1j * ang)
    ccw = np.stack([z.real, z.imag], 1)
    insets = [rng.uniform(-0.5, 1.0, 7), np.full(7, 0.68)]
    polygons = [ccw, ccw, ccw[::-1].copy()]                # the same inward in either orientation
    out = inset_polygons(polygons, insets + [np.roll(insets[0][::-1], -1)])
    np.testing.assert_allclose(out[2][::-1], out[0], atol=1e-12)
    for q, d in zip(out[:2], insets):
        moved = q[:, 0] + 1j * q[:, 1]
        for k in range(7):
            a, b = z[k], z[(k + 1) % 7]
            normal = 1j * (b - a) / abs(b - a)               # inward: the polygon is CCW
            for p in (moved[k], moved[(k + 1) % 7]):         # both ends lie on the moved line
                assert ((p - a) * normal.conjugate()).real == pytest.approx(d[k], abs=1e-9)
    straight = np.array([[0.0, 0.0], [10.0, 0.01], [20.0, 0.0], [10.0, 10.0]])  # collinear at 1
    out = inset_polygons([straight], [[0.5, 0.5, 0.5, 0.5]])[0]
    assert out[1, 1] == pytest.approx(0.01 + 0.5, abs=1e-3)


def _check_fill(poly, size=60):
    img = np.zeros((size, size), np.uint8)
    fill(img, poly, 255)
    _check_coverage(img, poly)


def _check_coverage(img, poly):
    """``img`` (a drawing of ``poly`` in 255 on 0) covers the polygon's area, every pixel well
    inside it fully and nothing well outside it."""
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    perimeter = np.linalg.norm(poly - np.roll(poly, -1, 0), axis=1).sum()
    assert abs(img.sum() / 255 - area) < 0.1 * perimeter
    contour = poly.astype(np.float32).reshape(-1, 1, 2)
    for j in range(img.shape[0]):
        for i in range(img.shape[1]):
            dist = cv2.pointPolygonTest(contour, (float(i), float(j)), True)
            if dist > 1.5:
                assert img[j, i] == 255, (i, j)
            elif dist < -1.5:
                assert img[j, i] == 0, (i, j)


def _coverage(poly, size, oversample=8):
    """The exact area fraction of each pixel inside ``poly``, ``(size, size)``, by sampling."""
    from matplotlib.path import Path
    g = (np.arange(size * oversample) + 0.5) / oversample - 0.5
    inside = Path(poly).contains_points(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2))
    return inside.reshape(size, oversample, size, oversample).mean((1, 3))


def _y_monotone_brute_force(poly):
    """Every horizontal line crosses ``poly`` at most twice (lines between vertex heights)."""
    ys = np.unique(poly[:, 1])
    a, b = poly, np.roll(poly, -1, 0)
    for y in 0.5 * (ys[1:] + ys[:-1]):
        if np.count_nonzero((a[:, 1] < y) != (b[:, 1] < y)) > 2:
            return False
    return True


def test_y_monotone_polygons_are_one_piece_and_others_are_cut():
    """fillConvexPoly fills any y-monotone polygon, so exactly those are drawn in one call."""
    rng = np.random.default_rng(7)
    counts = {True: 0, False: 0}
    for k in range(60):
        n = int(rng.integers(5, 14))
        ang = 2 * np.pi * (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / n
        radius = 20 * (1 + rng.uniform(-0.4, 0.4, n))
        poly = np.stack([30 + radius * np.cos(ang), 30 + radius * np.sin(ang)], 1)
        monotone = _y_monotone_brute_force(poly)
        counts[monotone] += 1
        pieces = exact_pieces({"p": [(poly, 0.0)]})["p"]       # no inset: the polygon itself
        assert (len(pieces) == 1) == monotone
    assert min(counts.values()) >= 10                           # both kinds were tried


def test_fill_y_monotone_non_convex_polygon_is_exact():
    notched = np.array([[10.3, 10.2], [50.1, 12.0], [32.0, 30.4], [49.6, 50.3], [11.0, 48.7]])
    assert len(exact_pieces({"notched": notched})["notched"]) == 1
    img = np.zeros((60, 60), np.uint8)
    fill(img, notched, 255)
    _check_coverage(img, notched)
    error = img / 255 - _coverage(notched, 60)
    perimeter = np.linalg.norm(notched - np.roll(notched, -1, 0), axis=1).sum()
    assert np.abs(error).sum() / perimeter < 0.12      # px of misplaced edge, on average
    assert abs(error.sum()) / perimeter < 0.03


def test_split_and_band_parts_draw_their_outline_without_seams():
    t = np.linspace(0, np.pi, 7)
    lips = np.concatenate([                                     # a cupid's bow: a cusp at 3
        np.stack([10 + 40 * t[:4] / np.pi, 30 - 8 * np.sin(2 * t[:4]) ** 2 - 2], 1),
        np.stack([10 + 40 * t[4:] / np.pi, 30 - 8 * np.sin(2 * t[4:]) ** 2 - 2], 1),
        np.stack([50 - 40 * t[1:-1] / np.pi, 30 + 12 * np.sin(t[1:-1])], 1)])
    lips[3, 1] += 4.0
    assert not _y_monotone_brute_force(lips)
    pieces = exact_pieces({"lips": split_parts(lips, 3, 9)})["lips"]
    assert len(pieces) == 2                                     # two monotone halves
    img = np.zeros((60, 60), np.uint8)
    fill_pieces(img, pieces, 255)
    _check_coverage(img, lips)
    top = np.stack([np.linspace(10, 50, 5), 20 - 6 * np.sin(np.linspace(0, np.pi, 5))], 1)
    bottom = top + [0.0, 5.0]
    img = np.zeros((60, 60), np.uint8)
    fill_band(img, top, bottom, 255)
    lower = [bottom[-1], 0.5 * (bottom[2] + bottom[3]), 0.5 * (bottom[1] + bottom[2]), bottom[0]]
    _check_coverage(img, np.concatenate([top, lower]))


def test_thin_shapes_are_inset_less_not_turned_inside_out():
    """A sliver thinner than twice the inset is drawn (a little too wide), not lost."""
    sliver = np.array([[10.2, 30.0], [50.3, 29.6], [50.1, 30.5], [10.4, 30.9]])   # ~0.9 px
    img = np.zeros((60, 60), np.uint8)
    fill(img, sliver, 255)
    area = 40 * 0.9
    assert area < img.sum() / 255 < area + 0.7 * 2 * 40
    rows = img.sum(1) / img.sum()
    assert abs((rows * np.arange(60)).sum() - 30.25) < 0.2           # centred on the sliver


def test_blend_matches_the_float_formula():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    layer = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, (8, 9), dtype=np.uint8)
    expected = img.astype(float)
    a = mask[..., None] / 255
    expected[5:13, 4:13] = layer * a + img[5:13, 4:13] * (1 - a)
    blend(img, 4, 5, layer, mask)
    assert np.abs(img - expected).max() <= 1.0


def test_fill_non_convex_is_seamless_and_exact():
    """Star-shaped polygons with reflex vertices (cut into y-monotone pieces where needed) cover
    their area and every pixel well inside them fully: no seams, no holes, nothing outside."""
    _check_fill(np.array([[10.3, 10.2], [50.1, 12.0], [32.0, 30.4], [49.6, 50.3], [11.0, 48.7],
                          [20.2, 30.0]]))
    rng = np.random.default_rng(5)
    for k in range(12):
        n = int(rng.integers(8, 27))
        ang = 2 * np.pi * (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / n
        radius = 20 * (1 + rng.uniform(-0.08, 0.08, n) * (k % 3))   # convex to jagged
        _check_fill(np.stack([30 + radius * np.cos(ang), 30 + radius * np.sin(ang)], 1))
    # A nearly convex outline with one slightly reflex vertex (a face at some yaw).
    t = np.linspace(0, 2 * np.pi, 26, endpoint=False)
    face = np.stack([30 + 18 * np.cos(t), 30 + 22 * np.sin(t)], 1)
    face[5] += [-0.4, 0.0]
    _check_fill(face)


def test_subpixel_landmark_shift_changes_the_image():
    ds = SynthFaces(1, size=64, seed=0, difficulty="easy")
    item = ds[0]
    from lmk.data import synth_render
    rng = np.random.default_rng(0)
    app = synth_render.sample_appearance(rng)
    pose = item["pose"].astype(float)
    pts, outline = shape_3d(item["identity"].astype(float), item["expression"].astype(float),
                            pose[0])
    cam = item["camera"].astype(float)
    images = []
    for shift in (0.0, 0.25):
        img = np.full((64, 64, 3), 90, np.uint8)
        synth_render.draw_face(img, pts, outline, pose, cam + [0, shift, 0, 0], app)
        images.append(img.astype(float))
    diff = np.abs(images[1] - images[0])
    assert diff.max() > 10
    moment = [(img.mean(2) * np.arange(64)).sum() / img.mean(2).sum() for img in images]
    assert moment[1] != moment[0]


def test_boundary_gradient_ratio_is_clearly_above_one():
    ratio = boundary_gradient_ratio(SynthFaces(30, size=96, seed=1), n=30)
    assert ratio > 1.8
    with pytest.raises(ValueError, match="exceeds"):
        boundary_gradient_ratio(SynthFaces(3, size=64), n=4)


# ----------------------------------------------------------------------------- videos

def test_video_is_smooth_exact_and_deterministic():
    video = synth_video(4, T=40, size=96)
    assert video["frames"].shape == (40, 96, 96, 3) and video["frames"].dtype == np.uint8
    lm = video["landmarks"]
    assert lm.shape == (40, 68, 2) and lm.min() >= 0 and lm.max() <= 95
    iod = np.linalg.norm(lm[:, 45] - lm[:, 36], axis=-1).mean()
    step = np.linalg.norm(np.diff(lm, axis=0), axis=-1)
    assert step.max() < 0.5 * iod                            # blinks move lids fastest
    rigid = np.r_[27:36, 17:27]
    assert step[:, rigid].max() < 0.15 * iod
    assert np.abs(np.diff(video["pose"], axis=0)).max() < 5.0  # degrees per frame
    for k in (0, 17, 39):
        np.testing.assert_allclose(
            lm[k], landmarks_2d(video["identity"].astype(float),
                                video["expression"][k].astype(float),
                                video["pose"][k].astype(float), video["camera"][k].astype(float)),
            atol=1e-4)
    _same(video, synth_video(4, 40, 96))
    _same(SynthVideos(3, T=8, size=64, seed=4)[1], synth_video((4, 1), 8, 64))


# ----------------------------------------------------------------------------- negatives

def test_negatives_have_low_iou_and_positives_high():
    ds = SynthNegatives(40, size=64, seed=2, positive_fraction=0.3)
    labels = []
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (64, 64, 3) and item["image"].dtype == np.uint8
        labels.append(item["face"])
        if item["face"]:
            assert item["iou"] >= 0.5
        else:
            assert item["iou"] < 0.3
    assert 0 < sum(labels) < len(labels)
    _same(ds[3], SynthNegatives(40, size=64, seed=2, positive_fraction=0.3)[3])


def test_box_iou_and_crop_window():
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    img = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    full = crop_window(img, np.array([-0.5, -0.5, 63.5, 63.5]), 64)
    np.testing.assert_array_equal(full, img)              # identity window
    left = crop_window(img, np.array([-32.5, -0.5, 31.5, 63.5]), 64)
    np.testing.assert_array_equal(left[:, :32], 0)       # outside the scene: black, as face crops
    np.testing.assert_array_equal(left[:, 32:], img[:, :32])


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("size", [63, 257, 100.5, "128", True])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        SynthFaces(10, size=size)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="difficulty"):
        SynthFaces(10, difficulty="medium")
    with pytest.raises(ValueError, match="n must"):
        SynthFaces(0)
    with pytest.raises(ValueError, match="seed"):
        SynthFaces(5, seed=-1)
    ds = SynthFaces(10, size=64)
    with pytest.raises(IndexError, match="out of range"):
        ds[10]
    with pytest.raises(IndexError, match="out of range"):
        ds[-11]
    with pytest.raises(TypeError, match="index"):
        ds[1.0]
    with pytest.raises(ValueError, match="T must"):
        synth_video(0, T=0)
    with pytest.raises(ValueError, match="seed"):
        synth_video(-2, T=4, size=64)
    with pytest.raises(ValueError, match="size"):
        SynthVideos(2, size=300)
    with pytest.raises(IndexError, match="out of range"):
        SynthVideos(2, T=2, size=64)[2]
    with pytest.raises(ValueError, match="positive_fraction"):
        SynthNegatives(5, positive_fraction=1.5)
    with pytest.raises(IndexError, match="out of range"):
        SynthNegatives(5)[5]
