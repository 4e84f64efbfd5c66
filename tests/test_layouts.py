import numpy as np
import pytest
import torch

from lmk.layouts import LAYOUT_68, MIRROR_GROUPS, Layout


def test_flip_perm_is_involution():
    perm = LAYOUT_68.flip_perm
    assert LAYOUT_68.num_points == 68 and perm.shape == (68,)
    np.testing.assert_array_equal(perm[perm], np.arange(68))


@pytest.mark.parametrize("left,right", sorted(MIRROR_GROUPS.items()))
def test_flip_maps_left_groups_onto_right_twins(left, right):
    perm = LAYOUT_68.flip_perm
    assert set(perm[LAYOUT_68.groups[left]]) == set(LAYOUT_68.groups[right])
    assert set(perm[LAYOUT_68.groups[right]]) == set(LAYOUT_68.groups[left])


@pytest.mark.parametrize("group", ["jaw", "nose_bridge", "nostrils", "outer_lip", "inner_lip"])
def test_symmetric_groups_map_onto_themselves(group):
    idx = LAYOUT_68.groups[group]
    assert set(LAYOUT_68.flip_perm[idx]) == set(idx)


def test_known_ibug_pairs():
    perm = LAYOUT_68.flip_perm
    for a, b in [(0, 16), (8, 8), (17, 26), (30, 30), (31, 35), (36, 45), (39, 42), (40, 47),
                 (48, 54), (51, 51), (57, 57), (60, 64), (62, 62), (66, 66)]:
        assert perm[a] == b and perm[b] == a
    assert LAYOUT_68.outer_eye_corners == (36, 45)


def test_groups_partition_all_points():
    all_idx = np.concatenate(list(LAYOUT_68.groups.values()))
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(68))


def test_pupils_and_five_points_numpy_and_torch():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, size=(3, 68, 2))
    pupils = LAYOUT_68.pupils(pts)
    assert isinstance(pupils, np.ndarray) and pupils.shape == (3, 2, 2)
    np.testing.assert_allclose(pupils[:, 0], pts[:, 36:42].mean(1))
    np.testing.assert_allclose(pupils[:, 1], pts[:, 42:48].mean(1))
    five = LAYOUT_68.five_points(torch.from_numpy(pts))
    assert isinstance(five, torch.Tensor) and five.shape == (3, 5, 2)
    np.testing.assert_allclose(five[:, 2].numpy(), pts[:, 30])
    np.testing.assert_allclose(five[:, 3].numpy(), pts[:, 48])
    np.testing.assert_allclose(five[:, 4].numpy(), pts[:, 54])


def test_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
        LAYOUT_68.pupils(np.zeros((5, 2)))


def test_bad_flip_perm_rejected():
    with pytest.raises(ValueError, match="involution"):
        Layout("bad", 3, np.array([1, 2, 0]))
    with pytest.raises(ValueError, match="permutation"):
        Layout("bad", 3, np.array([0, 0, 1]))
