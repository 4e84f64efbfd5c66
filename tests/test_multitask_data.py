"""The data set of ATPN's three training stages: faces and negatives with one set of keys."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lmk.data import (Augment, LandmarkDataset, MultitaskDataset, SynthFaces, SynthNegatives,
                      landmark_mask, synth_multitask)
from lmk.evaluation import collate

KEYS = {"image", "landmarks", "has_landmarks", "face", "pose", "index"}


@pytest.fixture(scope="module")
def stage2():
    return synth_multitask(2, n=3, input_size=64, size=64, seed=5, negatives_per_face=2.0)


def test_stage_sizes():
    assert len(synth_multitask(1, n=3, input_size=64, size=64)) == 3
    assert len(synth_multitask(3, n=3, input_size=64, size=64)) == 3
    data = synth_multitask(2, n=3, input_size=64, size=64, negatives_per_face=2.0)
    assert (len(data), data.num_faces) == (9, 3)
    assert len(synth_multitask(2, n=3, input_size=64, size=64, negatives_per_face=0)) == 3


def test_faces_and_negatives_share_keys_and_shapes(stage2):
    face, negative = stage2[0], stage2[5]
    assert set(face) == set(negative) == KEYS
    for key in KEYS - {"index"}:
        assert face[key].shape == negative[key].shape and face[key].dtype == negative[key].dtype, key
    assert face["image"].shape == (3, 64, 64) and face["landmarks"].shape == (68, 2)
    assert face["has_landmarks"].item() is True and face["face"].item() == 1.0
    assert negative["has_landmarks"].item() is False and negative["face"].item() == 0.0
    assert (negative["landmarks"] == 0).all() and (negative["pose"] == 0).all()
    assert negative["index"] == 5


def test_faces_pass_through_and_negatives_are_the_synthetic_negatives(stage2):
    face = stage2.faces[1]
    item = stage2[1]
    for key in ("image", "landmarks", "pose"):
        assert torch.equal(item[key], face[key])
    raw = stage2.negatives[4 - stage2.num_faces]["image"]            # no augmentation: image as is
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    by_hand = (raw.astype(np.float32) / 255 - mean) / std
    np.testing.assert_allclose(stage2[4]["image"].numpy(), by_hand.transpose(2, 0, 1), rtol=1e-6)


def test_default_collate_and_lmk_collate_stack_a_mixed_batch(stage2):
    batch = next(iter(DataLoader(stage2, batch_size=len(stage2))))
    assert batch["has_landmarks"].dtype == torch.bool
    assert batch["has_landmarks"].tolist() == [True] * 3 + [False] * 6
    assert batch["landmarks"].shape == (9, 68, 2) and batch["pose"].shape == (9, 3)
    assert batch["face"].tolist() == [1.0] * 3 + [0.0] * 6
    mine = collate([stage2[i] for i in range(len(stage2))])
    for key in KEYS:
        assert torch.equal(torch.as_tensor(mine[key]), batch[key]), key
    assert torch.equal(landmark_mask(mine), batch["has_landmarks"])


def test_items_are_repeatable_and_negatives_follow_the_epoch():
    data = synth_multitask(2, n=2, input_size=64, size=64, seed=1, negatives_per_face=1.0,
                           augment=Augment())
    a = data[3]["image"]
    assert torch.equal(a, data[3]["image"])
    data.set_epoch(1)
    b = data[3]["image"]
    assert not torch.equal(a, b)
    data.set_epoch(0)
    assert torch.equal(a, data[3]["image"])
    assert data.faces.epoch == 0


def test_augmented_negatives_are_warped_like_faces():
    """A rotation leaves a black corner on a negative as on a face crop (the same resampling)."""
    augment = Augment(flip_prob=0.0, max_rotation=15.0, max_scale=0.0, max_shift=0.0, brightness=0.0,
                      contrast=0.0, saturation=0.0, lighting_std=0.0, erase_prob=0.0)
    data = synth_multitask(2, n=1, input_size=64, size=64, seed=2, negatives_per_face=8.0,
                           augment=augment)
    raw = [np.asarray(data.negatives[i]["image"]) for i in range(8)]
    warped = [data[1 + i]["image"] for i in range(8)]
    black = torch.tensor((0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
                         dtype=torch.float32)
    inside = [i for i, r in enumerate(raw) if (r[0, 0] != 0).any() and (r[-1, -1] != 0).any()]
    assert inside                     # negatives whose window lies inside their scene ...
    corners = [warped[i][:, 0, 0] for i in inside] + [warped[i][:, -1, -1] for i in inside]
    assert any(torch.allclose(c, black, atol=1e-4) for c in corners)    # ... get black corners


def test_landmark_mask():
    batch = {"landmarks": torch.zeros(3, 68, 2)}
    assert landmark_mask(batch).tolist() == [True, True, True]
    with pytest.raises(ValueError, match=r"batch\['has_landmarks'\] must be a bool tensor of shape"):
        landmark_mask({**batch, "has_landmarks": torch.tensor([1, 0, 1])})
    with pytest.raises(ValueError, match="has_landmarks"):
        landmark_mask({**batch, "has_landmarks": [True, False, True]})
    with pytest.raises(KeyError, match="no 'landmarks'"):
        landmark_mask({"image": torch.zeros(3, 3, 8, 8)})


def test_bad_arguments():
    faces = LandmarkDataset(SynthFaces(2, 64), 64)
    with pytest.raises(ValueError, match=r"negative images must be \(H, W, 3\) = \(64, 64, 3\)"):
        MultitaskDataset(faces, SynthNegatives(2, size=80))
    with pytest.raises(ValueError, match="faces must be an lmk.data.LandmarkDataset"):
        MultitaskDataset(SynthFaces(2, 64))
    with pytest.raises(ValueError, match="normalised images"):
        MultitaskDataset(LandmarkDataset(SynthFaces(2, 64), 64, normalize=False))
    with pytest.raises(ValueError, match="stage must be 1, 2 or 3"):
        synth_multitask(4, n=2)
    with pytest.raises(ValueError, match="negatives_per_face must be a number >= 0"):
        synth_multitask(2, n=2, negatives_per_face=-1)
    with pytest.raises(IndexError, match="out of range"):
        synth_multitask(1, n=2, input_size=64, size=64)[2]
