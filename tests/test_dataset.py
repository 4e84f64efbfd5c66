"""LandmarkDataset: content follows landmarks, predictions map back, items are reproducible."""

import warnings

import numpy as np
import pytest
import torch

from lmk.data import (AnnotationError, AnnotationSet, Augment, LandmarkDataset, PtsFolder,
                      open_dataset, to_original, write_image, write_pts)
from lmk.data.dataset import SAMPLE_ROOT
from lmk.data.synth import SynthFaces
from lmk.data.transforms import alignment_matrix, reference_points
from lmk.geometry import apply_affine, invert_affine
from lmk.layouts import LAYOUT_68, Layout

TOL = 0.05
FACE = np.array([[40.3, 50.7], [90.2, 48.9], [65.5, 80.1], [45.8, 110.4], [88.1, 111.6]])
TOY = Layout(name="toy5", num_points=5, flip_perm=np.array([1, 0, 2, 4, 3]),
             groups={"left_eye": np.array([0]), "right_eye": np.array([1])},
             outer_eye_corners=(0, 1), five_point_groups=((0,), (1,), (2,), (3,), (4,)))
GEOMETRIC = Augment(flip_prob=0.5, max_rotation=15, max_scale=0.1, max_shift=4, brightness=0,
                    contrast=0, saturation=0, lighting_std=0, erase_prob=0)


def render_dots(points, shape, sigma):
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    image = sum(np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma ** 2)) for px, py in points)
    grey = np.clip(np.rint(250 * image), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def dot_centroids(image, points, radius):
    g = np.asarray(image, dtype=np.float64).mean(-1)
    y, x = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    out = []
    for px, py in points:
        weight = g * (((x - px) ** 2 + (y - py) ** 2) <= radius ** 2)
        out.append([(weight * x).sum() / weight.sum(), (weight * y).sum() / weight.sum()])
    return np.array(out)


@pytest.fixture(scope="module")
def dot_source():
    return [{"image": render_dots(FACE, (160, 130), 3.0), "landmarks": FACE.astype(np.float32),
             "pose": np.array([10.0, -5.0, 3.0])}]


@pytest.mark.parametrize("mode", ["crop", "align", "none"])
@pytest.mark.parametrize("augment", [None, GEOMETRIC], ids=["plain", "augmented"])
def test_image_content_follows_the_landmarks(dot_source, mode, augment):
    ds = LandmarkDataset(dot_source, 64, mode=mode, margin=0.6, augment=augment, layout=TOY,
                         normalize=False)
    for epoch in range(4):
        ds.set_epoch(epoch)
        item = ds[0]
        image = item["image"].numpy().transpose(1, 2, 0)
        points = item["landmarks"].numpy()
        err = np.abs(dot_centroids(image, points, 4) - points).max()
        assert err < TOL, f"{mode}, epoch {epoch}: dots {err:.3f} px from landmarks"


@pytest.mark.parametrize("mode", ["crop", "align", "none"])
def test_to_original_recovers_the_source_landmarks(dot_source, mode):
    ds = LandmarkDataset(dot_source, (48, 64), mode=mode, augment=GEOMETRIC, layout=TOY)
    for epoch in range(4):
        ds.set_epoch(epoch)
        item = ds[0]
        back = to_original(item["landmarks"], item["transform"])
        if item["flipped"]:
            back = back[TOY.flip_perm]
        assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
        assert torch.allclose(back, torch.as_tensor(FACE, dtype=torch.float32), atol=1e-3)
        back_np = to_original(item["landmarks"].numpy().astype(np.float64), item["transform"])
        assert isinstance(back_np, np.ndarray) and back_np.dtype == np.float64


def test_items_are_a_function_of_seed_epoch_and_index():
    src = SynthFaces(6, size=64, seed=1)
    a = LandmarkDataset(src, 64, augment=Augment(), seed=5)
    b = LandmarkDataset(src, 64, augment=Augment(), seed=5)
    for i in (4, 0, 2):                              # any access order
        assert torch.equal(a[i]["image"], b[i]["image"])
    first = a[3]["image"]
    a.set_epoch(1)
    assert not torch.equal(first, a[3]["image"])
    c = LandmarkDataset(src, 64, augment=Augment(), seed=6)
    assert not torch.equal(first, c[3]["image"])


def test_dataloader_workers_agree_with_direct_indexing():
    ds = LandmarkDataset(SynthFaces(4, size=64, seed=2), 64, augment=Augment(), seed=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert batches[0]["image"].shape == (2, 3, 64, 64)
    assert batches[0]["transform"].shape == (2, 2, 3)
    assert torch.equal(batches[1]["image"][1], ds[3]["image"])
    back = to_original(batches[1]["landmarks"], batches[1]["transform"])   # batched
    flipped = batches[1]["flipped"]
    for k in range(2):
        expected = batches[1]["original_landmarks"][k]
        got = back[k][LAYOUT_68.flip_perm] if flipped[k] else back[k]
        assert torch.allclose(got, expected, atol=1e-3)


def test_synthetic_items_shapes_and_types():
    ds = open_dataset("synthetic", n=3, size=96, input_size=80, mode="align")
    item = ds[1]
    assert item["image"].shape == (3, 80, 80) and item["image"].dtype == torch.float32
    assert item["landmarks"].shape == (68, 2) and item["landmarks"].dtype == torch.float32
    assert item["transform"].shape == (2, 3) and item["transform"].dtype == torch.float32
    assert item["pose"].shape == (3,) and item["box"].shape == (4,)
    assert item["occluded"].shape == (68,) and item["index"] == 1
    assert abs(item["image"].mean().item()) < 3                   # normalised


def test_synthetic_splits_differ():
    train = open_dataset("synthetic", split="train", n=2, size=64)
    test = open_dataset("synthetic", split="test", n=2, size=64)
    assert not torch.equal(train[0]["original_landmarks"], test[0]["original_landmarks"])
    with pytest.raises(ValueError, match="split"):
        open_dataset("synthetic", split="holdout", n=2, size=64)


def test_alignment_uses_the_detector_five_points():
    src = SynthFaces(5, size=128, seed=4)
    ds = LandmarkDataset(src, 96, mode="align")
    ref = reference_points((96, 96))
    for i in range(5):
        m = ds[i]["transform"].numpy().astype(np.float64)
        five = np.asarray(src[i]["five_points"], np.float64)
        truth = LAYOUT_68.five_points(np.asarray(src[i]["landmarks"], np.float64))
        assert np.allclose(m, alignment_matrix(five, (96, 96)), atol=1e-4)
        assert not np.allclose(m, alignment_matrix(truth, (96, 96)), atol=1e-4)
        aligned_truth = truth @ m[:, :2].T + m[:, 2]   # the true 5 points land near the reference
        assert np.abs(aligned_truth - ref).max() < 0.1 * 96
    ds_gt = LandmarkDataset([dict(src[0], five_points=None)], 96, mode="align")
    truth = LAYOUT_68.five_points(np.asarray(src[0]["landmarks"], np.float64))
    assert np.allclose(ds_gt[0]["transform"].numpy(), alignment_matrix(truth, (96, 96)),
                       atol=1e-4)


def test_flip_keeps_the_left_eye_on_the_left():
    src = SynthFaces(4, size=96, seed=0).with_difficulty(yaw=10, roll=5)
    ds = LandmarkDataset(src, 96, augment=Augment(flip_prob=1.0, max_rotation=0), layout=LAYOUT_68)
    for i in range(4):
        item = ds[i]
        pts = item["landmarks"].numpy()
        assert item["flipped"]
        assert pts[36:42, 0].mean() < pts[42:48, 0].mean()      # image-left eye stays "left"
        assert pts[0, 0] < pts[16, 0]                              # jaw still runs left -> right
        src_pose = src[i]["pose"]
        assert np.isclose(item["pose"][0].item(), -src_pose[0], atol=1e-4)   # yaw mirrored


def test_pose_roll_follows_in_plane_rotation():
    src = SynthFaces(6, size=96, seed=7).with_difficulty(yaw=0, pitch=0, roll=30)
    ds = LandmarkDataset(src, 96, mode="align", augment=Augment(max_rotation=25))
    for i in range(6):
        item = ds[i]
        eye_line = item["landmarks"][45] - item["landmarks"][36]
        roll = np.degrees(np.arctan2(eye_line[1].item(), eye_line[0].item()))
        assert abs(roll - item["pose"][2].item()) < 0.5


def test_sample_set_through_open_dataset():
    assert SAMPLE_ROOT.is_dir(), "the committed sample set data/sample is missing"
    ds = open_dataset("sample", input_size=64)
    assert len(ds) == 15 and len(open_dataset("sample", split="test")) == 5
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["landmarks"].shape == (68, 2)


def test_on_error_skip_reports_every_bad_file(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(3):
        write_image(tmp_path / f"f{k}.png", rng.integers(0, 255, (50, 50, 3), dtype=np.uint8))
        write_pts(tmp_path / f"f{k}.pts", rng.uniform(5, 45, (68, 2)))
    (tmp_path / "f1.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match="f1.pts"):
        open_dataset("sample", root=tmp_path, split="all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_dataset("sample", root=tmp_path, split="all", on_error="skip", input_size=32)
    assert len(ds) == 2
    assert [f.endswith("f1.pts") for f, _ in ds.skipped] == [True]
    assert "68 points" in ds.skipped[0][1]
    assert any("f1.pts" in str(w.message) for w in caught)
    assert any("skipped 1 bad sample" in str(w.message) for w in caught)


def test_bad_arguments():
    src = SynthFaces(2, size=64)
    with pytest.raises(ValueError, match="mode"):
        LandmarkDataset(src, 64, mode="zoom")
    with pytest.raises(ValueError, match="margin"):
        LandmarkDataset(src, 64, margin=-0.1)
    with pytest.raises(ValueError, match="toy5 has 5 points"):
        LandmarkDataset(src, 64, augment=Augment(flip_prob=1.0), layout=TOY)[0]
    with pytest.raises(IndexError):
        LandmarkDataset(src, 64)[2]
    with pytest.raises(ValueError, match="DATA_ROOT"):
        open_dataset("300w")
    with pytest.raises(ValueError, match="unknown data set"):
        open_dataset("celeba", root=".")
    with pytest.raises(ValueError, match="no known layout has 7 points"):
        LandmarkDataset([{"image": np.zeros((20, 20, 3), np.uint8),
                          "landmarks": np.ones((7, 2)) * 5}], 16, mode="align")[0]


def test_pts_folder_source_with_box(tmp_path):
    rng = np.random.default_rng(1)
    write_image(tmp_path / "a.png", rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    pts = rng.uniform(10, 50, (68, 2))
    write_pts(tmp_path / "a.pts", pts)
    ds = LandmarkDataset(PtsFolder(tmp_path), 32)
    item = ds[0]
    assert torch.allclose(to_original(item["landmarks"], item["transform"]),
                          torch.as_tensor(pts, dtype=torch.float32), atol=1e-3)


# --- item errors name the index and the file, and keep their type across workers -------------

def _pts_dataset(tmp_path, count=4, **kwargs):
    rng = np.random.default_rng(5)
    for k in range(count):
        write_image(tmp_path / f"f{k}.png", rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        write_pts(tmp_path / f"f{k}.pts", rng.uniform(5, 35, (68, 2)))
    return LandmarkDataset(PtsFolder(tmp_path), 32, **kwargs)


def _first_error(dataset, num_workers):
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=num_workers)
    batches = iter(loader)
    try:
        for _ in batches:
            pass
    except Exception as exc:      # noqa: BLE001 - the test checks the type
        error = exc.with_traceback(None)     # the traceback would keep the workers alive until GC
    else:
        pytest.fail("the loader raised nothing")
    del batches                   # the workers shut down now, not 5 s each at a later collection
    return error


@pytest.mark.parametrize("num_workers", [0, 2])
def test_bad_image_found_by_a_worker_is_an_annotation_error_naming_item_and_file(tmp_path,
                                                                                  num_workers):
    ds = _pts_dataset(tmp_path)
    data = (tmp_path / "f2.png").read_bytes()
    (tmp_path / "f2.png").write_bytes(data[:len(data) // 2])   # truncated after the set was built
    error = _first_error(ds, num_workers)
    assert isinstance(error, AnnotationError), type(error)
    assert f"item 2 ({tmp_path / 'f2.pts'})" in str(error) and "f2.png" in str(error)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_inverted_box_found_when_read_keeps_its_type_and_names_the_record(num_workers):
    def entry(line, box):
        def load():
            return {"path": f"list.txt:{line}", "landmarks": FACE.astype(np.float64) + line,
                    "image_path": SAMPLE_ROOT / "easy_000.png", "box": np.array(box, float)}
        return f"list.txt:{line}", load
    boxes = [[30, 40, 100, 120], [100, 40, 30, 120], [30, 40, 100, 40]]   # fine, inverted, flat
    ds = LandmarkDataset(AnnotationSet([entry(k + 1, b) for k, b in enumerate(boxes)]), 32,
                         layout=TOY)
    assert ds[0]["image"].shape == (3, 32, 32)
    error = _first_error(ds, num_workers)
    assert type(error) is ValueError
    assert "item 1 (list.txt:2)" in str(error) and "x1 > x0" in str(error)
    with pytest.raises(ValueError, match=r"item 2 \(list.txt:3\)"):
        ds[2]


def test_items_of_sources_without_files_name_the_index():
    ds = LandmarkDataset([{"image": np.zeros((20, 20, 3), np.uint8),
                           "landmarks": np.ones((7, 2)) * 5}], 16, mode="align")
    with pytest.raises(ValueError, match=r"^item 0: no known layout has 7 points"):
        ds[0]


# --- cache ------------------------------------------------------------------------------------

def _photo_source(count=3):
    """Large smooth 'photos' (a face of ~240 px in 600 x 500) whose crops shrink ~4x to 64 px."""
    rng = np.random.default_rng(11)
    items = []
    for k in range(count):
        y, x = np.mgrid[0:600, 0:500] / 40.0
        phase = rng.uniform(0, 6, 3)
        image = np.stack([127 + 100 * np.sin(x + phase[c]) * np.cos(0.7 * y - phase[c])
                          for c in range(3)], -1).astype(np.uint8)
        points = 3 * FACE + [60 + 10 * k, 80] + rng.normal(0, 3, (5, 2))
        items.append({"image": image, "landmarks": points.astype(np.float32), "path": f"p{k}"})
    return items


def _inside_source(transform, source_shape, size, margin_px=2.0):
    """``(size, size)`` bool: output pixels at least ``margin_px`` output pixels inside the
    source image (where a second resampling cannot mix the photo with the black border)."""
    m = transform.numpy().astype(np.float64)
    yy, xx = np.mgrid[0:size, 0:size]
    grid = np.stack([xx, yy], -1).reshape(-1, 2).astype(np.float64)
    src = apply_affine(grid, invert_affine(m))
    margin = margin_px / np.sqrt(abs(np.linalg.det(m[:, :2])))
    h, w = source_shape[:2]
    ok = (src >= -0.5 + margin) & (src <= np.array([w, h]) - 0.5 - margin)
    return ok.all(-1).reshape(size, size)


@pytest.mark.parametrize("mode", ["crop", "align", "none"])
def test_cached_items_equal_uncached_items(mode):
    source = _photo_source()
    kwargs = dict(input_size=64, mode=mode, augment=GEOMETRIC, layout=TOY, normalize=False)
    plain = LandmarkDataset(source, **kwargs)
    cached = LandmarkDataset(source, cache=True, **kwargs)
    cached.fill_cache()
    assert set(cached.cache) == {0, 1, 2}
    for epoch in range(3):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(3):
            a, b = plain[i], cached[i]
            assert torch.equal(a["landmarks"], b["landmarks"])
            assert torch.equal(a["transform"], b["transform"]) and a["flipped"] == b["flipped"]
            inside = _inside_source(a["transform"], source[i]["image"].shape, 64)
            inside = torch.from_numpy(inside)
            diff = (a["image"] - b["image"]).abs()[:, inside]
            assert inside.sum() > 500
            assert diff.mean() < 1.0 and diff.max() <= 3, (mode, epoch, i, diff.mean(), diff.max())
    small = cached.cache[0][1]
    assert small.shape[:2] == (2 * (64 + 2 * 16),) * 2 and "image" not in cached.cache[0][0]


def test_cache_is_filled_on_first_use_and_then_never_reads_the_source():
    source = _photo_source(2)
    ds = LandmarkDataset(source, 48, cache=True, layout=TOY)
    first = ds[1]["image"]
    assert list(ds.cache) == [1]
    source[1]["image"] = np.zeros_like(source[1]["image"])      # the source is not read again
    assert torch.equal(ds[1]["image"], first)
    with pytest.raises(ValueError, match="cache=True"):
        LandmarkDataset(source, 48).fill_cache()
