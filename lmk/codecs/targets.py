"""Gaussian targets: 2D heatmaps and their 1D marginals, in heatmap cells.

Also the argument checks that the decoders and the codec classes share.
"""

from __future__ import annotations

import math
import numbers

import torch

from .._backend import as_float, check_size, from_torch, to_torch

METHODS = ("argmax", "shift", "dark", "soft_argmax")


def check_sigma(sigma, name: str = "sigma", allow_zero: bool = False) -> float:
    """``sigma`` as a float if it is a finite real number ``> 0`` (``>= 0`` with ``allow_zero``)."""
    if not isinstance(sigma, numbers.Real) or isinstance(sigma, bool):
        raise TypeError(f"{name} must be a real number, got {type(sigma).__name__}")
    ok = sigma >= 0 if allow_zero else sigma > 0
    if not (math.isfinite(sigma) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {sigma}")
    return float(sigma)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def as_points(points) -> tuple[torch.Tensor, bool]:
    """``(tensor, was_numpy)`` for ``(..., N, 2)`` finite points, floating (ints -> float32)."""
    p, was_numpy = to_torch(points)
    p = as_float(p)
    if p.ndim < 2 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., N, 2) of (x, y), got {tuple(p.shape)}")
    if not torch.isfinite(p).all():
        raise ValueError("points must be finite; found NaN or inf (a missing landmark has no "
                         "Gaussian target: drop it or give it a mask before encoding)")
    return p, was_numpy


def _gaussian_1d(centres: torch.Tensor, length: int, sigma: float) -> torch.Tensor:
    """``exp(-(t - c)^2 / (2 sigma^2))`` at cell centres ``t = 0..length-1``: ``(..., length)``."""
    t = torch.arange(length, dtype=centres.dtype, device=centres.device)
    return torch.exp(-((t - centres[..., None]) ** 2) / (2.0 * sigma ** 2))


def gaussian_heatmaps(points, size, sigma):
    """Gaussian target heatmaps centred at sub-pixel points (Yin et al. (2020), Eq. 2).

    ``H(x, y) = exp(-((x - px)^2 + (y - py)^2) / (2 sigma^2))`` evaluated at the cell centres,
    so the peak value is 1 only when the point sits exactly on a cell centre. Computed as the
    outer product of two 1D Gaussians (the 2D Gaussian is separable).

    Args:
        points: ``(..., N, 2)`` points ``(x, y)`` in *heatmap* cells (cell centres at integers).
        size: ``(H, W)`` of the heatmap, or an int for a square one.
        sigma: standard deviation in cells, ``> 0``.
    Returns:
        ``(..., N, H, W)`` heatmaps, same kind as ``points`` (float; integer points give
        float32). A point outside the map gives a partial or all-zero map.
    Raises:
        ValueError: bad shapes, non-finite points, ``sigma <= 0``.
    """
    sigma = check_sigma(sigma)
    h, w = check_size(size)
    p, was_numpy = as_points(points)
    gx = _gaussian_1d(p[..., 0], w, sigma)  # (..., N, W)
    gy = _gaussian_1d(p[..., 1], h, sigma)  # (..., N, H)
    return from_torch(gy[..., :, None] * gx[..., None, :], was_numpy)


def gaussian_marginals(points, size, sigma):
    """1D targets on the x and y axes (Yin et al. (2020), Eq. 12).

    Eq. 12 defines ``h^x = sum_y H(x, y)`` and ``h^y = sum_x H(x, y)``. For the separable
    Gaussian of :func:`gaussian_heatmaps` these are the 1D Gaussians ``gx`` and ``gy`` times a
    per-landmark constant (the sum of the other axis); we drop that constant so that the 1D
    targets peak at 1 like the 2D ones.

    Args:
        points: ``(..., N, 2)`` points in heatmap cells.
        size: ``(H, W)`` (lengths of ``hy`` and ``hx``), or an int.
        sigma: standard deviation in cells, ``> 0``.
    Returns:
        ``(hx, hy)`` with shapes ``(..., N, W)`` and ``(..., N, H)``, same kind as ``points``.
    """
    sigma = check_sigma(sigma)
    h, w = check_size(size)
    p, was_numpy = as_points(points)
    hx = _gaussian_1d(p[..., 0], w, sigma)
    hy = _gaussian_1d(p[..., 1], h, sigma)
    return from_torch(hx, was_numpy), from_torch(hy, was_numpy)
