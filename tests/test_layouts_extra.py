"""The WFLW-98 and JD-106 layouts: flip permutations and groups."""

import numpy as np
import pytest

from lmk.layouts import LAYOUT_68, LAYOUT_98, LAYOUT_106, LAYOUTS

NEW = [LAYOUT_98, LAYOUT_106]


@pytest.mark.parametrize("layout", NEW, ids=lambda l: l.name)
def test_flip_perm_is_an_involution(layout):
    perm = layout.flip_perm
    assert len(perm) == layout.num_points
    assert sorted(perm.tolist()) == list(range(layout.num_points))
    assert np.array_equal(perm[perm], np.arange(layout.num_points))


@pytest.mark.parametrize("layout", NEW, ids=lambda l: l.name)
def test_flip_maps_left_groups_onto_right_groups(layout):
    for name, idx in layout.groups.items():
        if name.startswith("left_"):
            twin = layout.groups["right_" + name[len("left_"):]]
            assert sorted(layout.flip_perm[idx].tolist()) == sorted(twin.tolist()), name
        elif not name.startswith("right_"):
            assert sorted(layout.flip_perm[idx].tolist()) == sorted(idx.tolist()), name


@pytest.mark.parametrize("layout", NEW, ids=lambda l: l.name)
def test_groups_partition_the_points(layout):
    all_idx = np.concatenate(list(layout.groups.values()))
    assert sorted(all_idx.tolist()) == list(range(layout.num_points))


@pytest.mark.parametrize("layout", NEW, ids=lambda l: l.name)
def test_special_points_mirror_each_other(layout):
    a, b = layout.outer_eye_corners
    assert layout.flip_perm[a] == b
    assert a in layout.groups["left_eye"] and b in layout.groups["right_eye"]
    p, q = layout.pupil_indices
    assert layout.flip_perm[p] == q
    left_eye, right_eye, nose, left_mouth, right_mouth = (g[0] for g in layout.five_point_groups)
    assert layout.flip_perm[left_eye] == right_eye
    assert layout.flip_perm[nose] == nose
    assert layout.flip_perm[left_mouth] == right_mouth
    assert nose in layout.groups["nose_bridge"]
    assert left_mouth in layout.groups["outer_lip"]


@pytest.mark.parametrize("layout", NEW, ids=lambda l: l.name)
def test_contour_is_mirrored_end_to_end(layout):
    jaw = layout.groups["jaw"]
    assert np.array_equal(layout.flip_perm[jaw], jaw[::-1])


@pytest.mark.parametrize("layout", NEW, ids=lambda l: l.name)
def test_pupils_and_five_points_shapes(layout):
    pts = np.random.default_rng(0).normal(size=(4, layout.num_points, 2))
    assert np.allclose(layout.pupils(pts), pts[:, list(layout.pupil_indices)])
    assert layout.five_points(pts).shape == (4, 5, 2)


def test_registry_holds_every_layout():
    assert LAYOUTS == {"ibug68": LAYOUT_68, "wflw98": LAYOUT_98, "jd106": LAYOUT_106}
