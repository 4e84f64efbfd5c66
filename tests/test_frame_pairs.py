"""lmk.data.frame_pairs: clips of consecutive frames cropped from the previous frame's landmarks."""

import numpy as np
import pytest
import torch

from lmk.data import synth_video
from lmk.data.frame_pairs import FramePairs, jitter_box
from lmk.data.transforms import normalize_image, warp_image
from lmk.geometry import apply_affine

SIZE = 32


@pytest.fixture(scope="module")
def videos():
    return [synth_video((1, i), T=7, size=64) for i in range(2)]


def test_clips_of_consecutive_frames(videos):
    pairs = FramePairs(videos, length=2, input_size=SIZE)
    # frames 1-2, 3-4, 5-6 of each video: frame 0 only places the first crop
    assert len(pairs) == 6 and [pairs[i]["start"] for i in range(3)] == [1, 3, 5]
    item = pairs[4]
    assert item["video"] == 1 and item["start"] == 3
    assert item["image"].shape == (2, 3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert item["landmarks"].shape == (2, 68, 2) and item["transform"].shape == (2, 2, 3)
    np.testing.assert_array_equal(item["original_landmarks"], videos[1]["landmarks"][3:5])
    overlapping = FramePairs(videos, length=3, input_size=SIZE, stride=1)
    assert len(overlapping) == 2 * 4 and overlapping[1]["start"] == 2


def test_crops_are_the_previous_truth_widened(videos):
    pairs = FramePairs(videos, length=2, input_size=SIZE, margin=0.25, jitter=0.0)
    item = pairs[1]                                      # video 0, frames 3 and 4
    edges = np.array([[-0.5, -0.5], [SIZE - 0.5, SIZE - 0.5]])
    for k, t in enumerate((3, 4)):
        prev = videos[0]["landmarks"][t - 1].astype(np.float64)
        (x0, y0), (x1, y1) = prev.min(0), prev.max(0)
        side = max(x1 - x0, y1 - y0) * 1.5               # 25 % on every side, squared
        centre = np.array([x0 + x1, y0 + y1]) / 2
        m = item["transform"][k].double().numpy()
        np.testing.assert_allclose(apply_affine(centre + [[-side / 2] * 2, [side / 2] * 2], m),
                                   edges, atol=1e-4)
        np.testing.assert_allclose(item["landmarks"][k],
                                   apply_affine(videos[0]["landmarks"][t].astype(np.float64), m),
                                   atol=1e-3)
        expected = normalize_image(warp_image(videos[0]["frames"][t], m.astype(np.float64), SIZE))
        assert (item["image"][k] - expected).abs().max() < 0.05      # float32 matrix round-off


def test_jitter_is_repeatable_per_item(videos):
    a = FramePairs(videos, input_size=SIZE, jitter=0.1, seed=3)
    b = FramePairs(videos, input_size=SIZE, jitter=0.1, seed=3)
    torch.testing.assert_close(a[2]["transform"], b[2]["transform"])
    assert not torch.allclose(a[2]["transform"], FramePairs(videos, input_size=SIZE, jitter=0.1,
                                                            seed=4)[2]["transform"])


def test_jitter_box_moves_and_scales_by_the_drawn_amounts():
    rng = np.random.default_rng(0)
    dx, dy, ds = np.random.default_rng(0).normal(0.0, 1.0, 3) * 0.2
    box = jitter_box((10.0, 20.0, 30.0, 60.0), rng, 0.2)             # w 20, h 40, side 40
    np.testing.assert_allclose((box[:2] + box[2:]) / 2, [20 + 40 * dx, 40 + 40 * dy])
    np.testing.assert_allclose(box[2:] - box[:2], np.array([20.0, 40.0]) * np.exp(ds))
    np.testing.assert_array_equal(jitter_box((1, 2, 3, 4), rng, 0.0), [1, 2, 3, 4])


def test_bad_input_is_named(videos):
    short = {"frames": videos[1]["frames"][:2], "landmarks": videos[1]["landmarks"][:2]}
    with pytest.raises(ValueError, match=r"videos\[1\] has 2 frames; a clip of 2 needs 3"):
        FramePairs([videos[0], short], length=2, input_size=SIZE)
    with pytest.raises(ValueError, match="length must be a positive int"):
        FramePairs(videos, length=0)
    with pytest.raises(ValueError, match="jitter"):
        FramePairs(videos, jitter=-0.1)
    with pytest.raises(ValueError, match="margin"):
        FramePairs(videos, margin=-0.1)
    with pytest.raises(ValueError, match="empty"):
        FramePairs([])
    bad = dict(videos[0], landmarks=videos[0]["landmarks"][:, :, :1])
    with pytest.raises(ValueError, match=r"videos\[0\]\['landmarks'\] must have shape"):
        FramePairs([bad])
    with pytest.raises(IndexError, match="out of range for 3 clips"):
        FramePairs(videos[:1], input_size=SIZE)[3]
