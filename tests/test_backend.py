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
