"""Quantization error of heatmap regression (Yin et al. (2020), Sec. 3, Eqs. 3-5).

A face image of ``F x F`` pixels is described by a heatmap of ``L x L`` cells. Storing a
landmark ``p`` (input pixels) in an integer heatmap cell and reading it back loses the
fractional part; the distance between ``p`` and the recovered ``p'`` is the quantization error
``E`` (Eq. 5). It shrinks like ``F / L``: the reason to want high-resolution heatmaps.

Two conventions for "which cell holds ``p``":

* ``"floor"`` -- Yin et al. (2020), Eqs. 3-4: ``x = floor(p L / F)``, ``p' = x F / L``. The cell
  index is read as the cell's *corner*, so ``p' <= p`` always: on average the recovered point is
  half a heatmap cell (``F / (2L)`` input pixels) up and to the left of the truth.
* ``"centre"`` -- this project's convention (pixel ``i`` covers ``[i - 0.5, i + 0.5]``):
  ``x = round(rescale(p, L / F))``, ``p' = rescale(x, F / L)`` with
  :func:`lmk.geometry.rescale_points`. The cell index is the cell's *centre*, the error is
  symmetric around zero and its mean Euclidean size is half that of the floor convention.

Worked example (Yin et al. (2020), Sec. 3): ``(142.84, 188.72)`` has ``E = 1.11`` at
``L / F = 0.5`` and ``E = 0.18`` at ``L / F = 3``.
"""

from __future__ import annotations

import math
import numbers

import torch

from ._backend import from_torch, to_torch
from .geometry import rescale_points

CONVENTIONS = ("floor", "centre")

MEAN_DISTANCE_UNIT_SQUARE = (math.sqrt(2.0) + math.asinh(1.0)) / 3.0
"""Mean distance from a corner of the unit square to a uniform point in it, ``~0.7652``:
``(sqrt(2) + ln(1 + sqrt(2))) / 3``."""


def _ratio(L, F) -> float:
    for name, value in (("L", L), ("F", F)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(L) / float(F)


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def recover_points(points, L, F, convention: str = "floor"):
    """Points after a round trip through an ``L``-cell heatmap of an ``F``-pixel image.

    Args:
        points: ``(..., 2)`` landmark coordinates ``(p, q)`` in input-image pixels.
        L: heatmap resolution (cells per side), a positive number.
        F: input resolution (pixels per side), a positive number.
        convention: ``"floor"`` (Yin et al. (2020), Eqs. 3-4) or ``"centre"`` (the project's
            pixel-centre convention, see the module docstring).
    Returns:
        ``(..., 2)`` recovered points ``(p', q')``, same kind as ``points``.
    """
    r = _ratio(L, F)
    _check_convention(convention)
    p, was_numpy = to_torch(points)
    p = p if p.is_floating_point() else p.double()
    if p.ndim < 1 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {tuple(p.shape)}")
    if convention == "floor":
        cells = torch.floor(p * L / F)             # Eq. 3
        recovered = cells / r                      # Eq. 4
    else:
        cells = torch.floor(rescale_points(p, r) + 0.5)  # nearest cell centre, ties up
        recovered = rescale_points(cells, 1.0 / r)
    return from_torch(recovered, was_numpy)


def quantization_error(points, L, F, convention: str = "floor"):
    """Yin et al. (2020), Eq. 5: ``E = ||p - p'||`` per point, in input pixels.

    Args:
        points: ``(..., 2)`` points in input pixels (numpy or torch).
        L, F: heatmap and input resolution (positive numbers).
        convention: ``"floor"`` (the paper, default) or ``"centre"``.
    Returns:
        ``(...)`` errors, same kind as ``points``.

    Example:
        >>> round(float(quantization_error([142.84, 188.72], 0.5, 1)), 2)
        1.11
    """
    p, was_numpy = to_torch(points)
    p = p if p.is_floating_point() else p.double()
    recovered = recover_points(p, L, F, convention)
    return from_torch(torch.linalg.vector_norm(p - recovered, dim=-1), was_numpy)


def expected_quantization_error(L, F, convention: str = "floor") -> float:
    """Mean of Eq. 5 over landmarks placed uniformly at random in the image (closed form).

    With the landmark uniform over the image (for integer ``L``, equivalently the fractional
    part of ``p L / F`` uniform on ``[0, 1)``), the per-axis error is uniform on ``[0, F / L)``
    for ``"floor"`` and on ``[-F / (2L), F / (2L)]`` for ``"centre"``. The mean Euclidean
    length of a uniform point of a square measured from a corner is
    ``(sqrt(2) + ln(1 + sqrt(2))) / 3`` times its side, so::

        E_floor  = 0.7652 * F / L
        E_centre = 0.7652 * F / (2 L)      (four quarter squares around the centre)

    Returns:
        The expected error in input pixels (a float).
    """
    r = _ratio(L, F)
    _check_convention(convention)
    side = 1.0 / r if convention == "floor" else 0.5 / r
    return MEAN_DISTANCE_UNIT_SQUARE * side


def expected_bias(L, F, convention: str = "floor") -> float:
    """Mean signed error ``E[p' - p]`` per axis in input pixels: ``-F / (2L)`` for ``"floor"``
    (every recovered point lies up-left of the truth), ``0`` for ``"centre"``."""
    r = _ratio(L, F)
    _check_convention(convention)
    return -0.5 / r if convention == "floor" else 0.0
