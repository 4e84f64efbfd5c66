"""The checking layer: one size check, one count check, one float rule."""

import numpy as np
import pytest
import torch

from lmk._backend import as_float, check_positive_int, check_size


@pytest.mark.parametrize("size, expected", [
    (8, (8, 8)),
    (np.int64(8), (8, 8)),
    (np.uint8(9), (9, 9)),
    (np.array(6), (6, 6)),
    ((4, 5), (4, 5)),
    ([np.int32(3), 7], (3, 7)),
    (np.array([2, 3]), (2, 3)),
    (torch.Size([3, 4]), (3, 4)),
])
def test_check_size_accepts_python_and_numpy_integers(size, expected):
    out = check_size(size)
    assert out == expected
    assert all(type(v) is int for v in out)


@pytest.mark.parametrize("size", [5.9, 5.0, np.float64(64.0), True, np.bool_(True), 0, -3,
                                  (1, 2, 3), (2, 0), (4.0, 4), (True, 3), np.array([2.0, 3.0]),
                                  np.array([[1, 2]]), np.array([True, True]), "8", None])
def test_check_size_rejects_and_names_the_argument(size):
    with pytest.raises(ValueError, match=r"heatmap_size must be a positive int or a pair") as e:
        check_size(size, "heatmap_size")
    assert repr(size) in str(e.value)                       # the value is shown


@pytest.mark.parametrize("value", [1, np.int64(3), np.array(4)])
def test_check_positive_int_accepts(value):
    out = check_positive_int(value, "n")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [0, -1, 1.0, 2.5, True, np.array(2.0), "3", None, (1,)])
def test_check_positive_int_rejects(value):
    with pytest.raises(ValueError, match=r"n_train must be a positive int, got "):
        check_positive_int(value, "n_train")


@pytest.mark.parametrize("dtype, expected", [
    (torch.int64, torch.float32), (torch.int32, torch.float32), (torch.uint8, torch.float32),
    (torch.bool, torch.float32), (torch.float16, torch.float16), (torch.float32, torch.float32),
    (torch.float64, torch.float64),
])
def test_as_float_rule(dtype, expected):
    t = torch.ones(3, dtype=dtype)
    out = as_float(t)
    assert out.dtype == expected
    assert torch.equal(out, torch.ones(3, dtype=expected))
    if dtype.is_floating_point:
        assert out is t                                     # no copy when already float


def test_as_float_matches_torch_promotion():
    """The rule is the dtype torch itself gives an integer tensor times a Python float."""
    assert as_float(torch.arange(3)).dtype == (torch.arange(3) * 0.5).dtype


# --------------------------------------------------------------- the same answer in every module

def _size_users():
    """Every converted function that takes a size or count: ``{name: (call, a good value)}``."""
    from lmk.data import SynthFaces
    from lmk.data.transforms import (Augment, crop_matrix, flip_matrix, random_affine_matrix,
                                     reference_points, warp_image)
    from lmk.geometry import resize_points

    img = np.zeros((16, 16, 3), np.uint8)
    eye = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    pts = np.zeros((3, 2))
    return {
        "warp_image": (lambda s: warp_image(img, eye, s).shape[:2], 8),
        "crop_matrix": (lambda s: crop_matrix((0, 0, 8, 8), s), 8),
        "reference_points": (lambda s: reference_points(s), 8),
        "random_affine_matrix": (lambda s: random_affine_matrix(np.random.default_rng(0), s), 8),
        "Augment.geometric": (lambda s: Augment().geometric(np.random.default_rng(0), s)[0], 8),
        "flip_matrix": (lambda s: flip_matrix(s), 8),
        "resize_points(src)": (lambda s: resize_points(pts, s, (4, 4)), 8),
        "resize_points(dst)": (lambda s: resize_points(pts, (4, 4), s), 8),
        "SynthFaces(size)": (lambda s: SynthFaces(2, size=s)[0]["landmarks"], 64),
        "SynthFaces(n)": (lambda s: len(SynthFaces(s, size=64)), 3),
    }


@pytest.mark.parametrize("user", list(_size_users()))
def test_numpy_integer_sizes_accepted_everywhere(user):
    call, good = _size_users()[user]
    np.testing.assert_array_equal(call(np.int64(good)), call(good))


@pytest.mark.parametrize("user", list(_size_users()))
@pytest.mark.parametrize("bad", [5.9, 8.0, True, 0])
def test_bad_sizes_rejected_everywhere(user, bad):
    call, _ = _size_users()[user]
    with pytest.raises(ValueError, match=r"(size|n|width) must be a positive int.*got "):
        call(bad)


def test_integer_points_give_one_float_dtype():
    """Integer landmarks become float32 in geometry, metrics and codecs alike."""
    from lmk.codecs import gaussian_heatmaps
    from lmk.geometry import apply_affine, rescale_points, similarity_transform
    from lmk.metrics import nme

    pts = np.array([[[1, 2], [5, 3], [4, 7]]])                     # (1, 3, 2) int64
    eye = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    expected = gaussian_heatmaps(pts, 8, 1.0).dtype
    assert expected == np.float32
    got = {
        "rescale_points": rescale_points(pts, 2).dtype,
        "rescale_points (torch)": rescale_points(torch.from_numpy(pts), 2).numpy().dtype,
        "apply_affine": apply_affine(pts, eye).dtype,
        "similarity_transform": similarity_transform(pts, pts).dtype,
        "nme": nme(pts, pts + 1, norm=2.0).dtype,
    }
    assert got == dict.fromkeys(got, expected), got
