"""LandmarkDataset: content follows landmarks, predictions map back, items are reproducible."""

import warnings

import numpy as np
import pytest
import torch

from lmk.data import (Augment, LandmarkDataset, PtsFolder, open_dataset, to_original, write_image,
                      write_pts)
from lmk.data.dataset import SAMPLE_ROOT
from lmk.data.synth import SynthFaces
from lmk.data.transforms import alignment_matrix, reference_points
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
    assert len(ds) >= 20
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["landmarks"].shape == (68, 2)


def test_on_error_skip_reports_every_bad_file(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(3):
        write_image(tmp_path / f"f{k}.png", rng.integers(0, 255, (50, 50, 3), dtype=np.uint8))
        write_pts(tmp_path / f"f{k}.pts", rng.uniform(5, 45, (68, 2)))
    (tmp_path / "f1.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match="f1.pts"):
        open_dataset("sample", root=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_dataset("sample", root=tmp_path, on_error="skip", input_size=32)
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
