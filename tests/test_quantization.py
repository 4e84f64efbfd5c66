"""Tests of lmk.quantization (Yin et al. (2020), Sec. 3, Eqs. 3-5)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmk.quantization import (MEAN_DISTANCE_UNIT_SQUARE, expected_bias,
                              expected_quantization_error, quantization_error, recover_points)


def test_worked_example_of_yin_sec3():
    """(142.84, 188.72): E = 1.11 at L/F = 0.5 and 0.18 at L/F = 3.0."""
    p = np.array([142.84, 188.72])
    assert round(float(quantization_error(p, 0.5, 1)), 2) == 1.11
    assert round(float(quantization_error(p, 3.0, 1)), 2) == 0.18
    # the same ratios as real resolutions: F = 256, L = 128 and L = 768
    assert round(float(quantization_error(p, 128, 256)), 2) == 1.11
    assert round(float(quantization_error(p, 768, 256)), 2) == 0.18
    # by hand: floor(71.42) = 71 -> 142, floor(94.36) = 94 -> 188
    np.testing.assert_allclose(recover_points(p, 0.5, 1), [142.0, 188.0])
    assert float(quantization_error(p, 0.5, 1)) == pytest.approx(math.hypot(0.84, 0.72))


def test_floor_recovery_by_hand_and_centre_recovery_by_hand():
    p = np.array([[3.3, 0.9], [7.4, 4.0]])
    # L/F = 1/4: cells of 4 px; floor keeps the cell corner
    np.testing.assert_allclose(recover_points(p, 1, 4), [[0.0, 0.0], [4.0, 4.0]])
    # centre convention: cell j covers input [4j - 0.5, 4j + 3.5], centre 4j + 1.5
    np.testing.assert_allclose(recover_points(p, 1, 4, "centre"), [[1.5, 1.5], [5.5, 5.5]])


def test_batched_shapes_and_kinds():
    p = np.random.default_rng(0).uniform(0, 256, (3, 68, 2))
    e = quantization_error(p, 64, 256)
    assert isinstance(e, np.ndarray) and e.shape == (3, 68)
    t = quantization_error(torch.tensor(p, dtype=torch.float32), 64, 256, "centre")
    assert isinstance(t, torch.Tensor) and t.shape == (3, 68) and t.dtype == torch.float32
    assert quantization_error(np.array([5, 7]), 1, 2).dtype == np.float64  # int points


def test_errors_are_bounded_per_axis():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 256, (10000, 2))
    for ratio in (0.25, 0.5, 1.0, 3.0):
        d_floor = recover_points(p, ratio, 1) - p
        assert np.all(d_floor <= 1e-12) and np.all(d_floor > -1.0 / ratio)
        d_centre = recover_points(p, ratio, 1, "centre") - p
        assert np.all(np.abs(d_centre) <= 0.5 / ratio + 1e-9)


def test_expected_error_closed_form_matches_exact_integration():
    """The mean of sqrt(u^2 + v^2) over the unit square, by 2D Gauss-Legendre quadrature."""
    nodes, weights = np.polynomial.legendre.leggauss(200)
    u = (nodes + 1) / 2  # on [0, 1]; the integrand is smooth except at one corner
    w = weights / 2
    integral = (w[:, None] * w[None, :] * np.hypot(u[:, None], u[None, :])).sum()
    assert MEAN_DISTANCE_UNIT_SQUARE == pytest.approx(integral, abs=1e-6)
    assert expected_quantization_error(64, 256) == pytest.approx(4 * integral, abs=1e-5)
    assert expected_quantization_error(64, 256, "centre") == pytest.approx(2 * integral,
                                                                            abs=1e-5)


@pytest.mark.parametrize("L", [64, 100, 256, 768])
@pytest.mark.parametrize("convention", ["floor", "centre"])
def test_expected_error_matches_sampled_mean(L, convention):
    """Points uniform over the image: the sample mean agrees with the closed form."""
    p = np.random.default_rng(L).uniform(0, 256, (200000, 2))
    e = quantization_error(p, L, 256, convention)
    se = e.std() / math.sqrt(len(e))
    assert e.mean() == pytest.approx(expected_quantization_error(L, 256, convention), abs=5 * se)
    bias = (recover_points(p, L, 256, convention) - p).mean(0)
    assert bias == pytest.approx([expected_bias(L, 256, convention)] * 2, abs=0.01 * 256 / L)


def test_centre_convention_halves_the_expected_error():
    for ratio in (0.25, 0.5, 3.0):
        assert expected_quantization_error(ratio, 1, "centre") == pytest.approx(
            expected_quantization_error(ratio, 1) / 2)


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0, 1000), k=st.integers(0, 50), ratio=st.sampled_from([0.25, 0.5, 2.0, 4.0]))
def test_recovery_commutes_with_whole_cell_shifts(p, k, ratio):
    """Moving a point by k whole heatmap cells moves the recovered point by the same amount."""
    cell = 1.0 / ratio
    pts = np.array([p, p / 3])
    for convention in ("floor", "centre"):
        a = recover_points(pts, ratio, 1, convention)
        b = recover_points(pts + k * cell, ratio, 1, convention)
        if np.all(np.abs(b - a - k * cell) < 1e-6):
            continue
        # only a point on a cell boundary may jump (floating-point rounding of p * ratio)
        frac = (pts * ratio + (0.5 * ratio if convention == "centre" else 0)) % 1
        assert np.any(np.minimum(frac, 1 - frac) < 1e-9)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_bad_resolutions_raise(bad):
    with pytest.raises(ValueError, match="L must be a positive finite number"):
        quantization_error([1.0, 2.0], bad, 1)
    with pytest.raises(ValueError, match="F must be a positive finite number"):
        expected_quantization_error(1, bad)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="L must be a real number"):
        quantization_error([1.0, 2.0], np.array([1.0, 2.0]), 1)
    with pytest.raises(ValueError, match="convention must be one of"):
        quantization_error([1.0, 2.0], 1, 1, "round")
    with pytest.raises(ValueError, match=r"points must have shape \(\.\.\., 2\)"):
        quantization_error(np.zeros((4, 3)), 1, 1)
    with pytest.raises(ValueError, match="convention"):
        expected_bias(1, 1, "ceil")
