"""Coordinates, resolution changes and 2D transforms of landmark sets.

The coordinate convention of the whole project::

      x = -0.5   0    0.5   1    1.5
           |-----+-----|-----+-----|
           | pixel 0   | pixel 1   |      pixel i covers [i - 0.5, i + 0.5];
           |-----+-----|-----+-----|      its centre is the integer i.

Changing resolution by a factor ``s`` keeps pixel *edges* aligned, so the point ``x`` maps to
``(x + 0.5) * s - 0.5`` (:func:`rescale_points`). Nothing else in ``lmk`` reimplements this.
OpenCV's ``warpAffine`` and ``resize`` use the same pixel-centre convention.

Affine transforms are ``(..., 2, 3)`` matrices ``M`` acting as ``p' = M[:, :2] @ p + M[:, 2]``.
All functions accept numpy arrays or torch tensors and return the kind they were given;
integer points become float by :func:`lmk._backend.as_float` (float32), floats keep their dtype.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from ._backend import as_float, check_size, from_torch, to_torch


def _check_points(points: torch.Tensor, name: str = "points") -> None:
    if points.ndim < 1 or points.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) of (x, y), got {tuple(points.shape)}")


def rescale_points(points, scale):
    """Map points to an image resized by ``scale``: ``x -> (x + 0.5) * s - 0.5``.

    Args:
        points: ``(..., 2)`` pixel coordinates ``(x, y)`` (centre of pixel ``i`` at ``i``).
        scale: a scalar, or ``(sx, sy)`` for different factors along x and y.
    Returns:
        Points of the same shape and kind. ``rescale_points(p, 1 / s)`` is the inverse.
    """
    if _plain_numpy(points) and isinstance(scale, (numbers.Real, np.ndarray, tuple)) \
            and np.asarray(scale).dtype.kind in "iuf":          # one image in numpy: no torch
        p, s, was_numpy = points, np.asarray(scale, dtype=np.float64), False
    else:
        p, was_numpy = to_torch(points)
        p = as_float(p)
        s, _ = to_torch(scale)
    _check_points(p)
    count = math.prod(s.shape)
    if count not in (1, 2) or (count == 2 and s.ndim != 1):
        raise ValueError(f"scale must be a scalar or (sx, sy), got shape {tuple(s.shape)}")
    # checked where the scale lives (a number: on the CPU), so points on the meta device
    # (lmk.complexity counts a model's cost there) pass through
    on_meta = isinstance(s, torch.Tensor) and s.device.type == "meta"
    if not on_meta and not bool((s > 0).all()):
        raise ValueError(f"scale must be positive, got {s.tolist()}")
    if isinstance(s, torch.Tensor):
        s = s.to(p)
    return from_torch((p + 0.5) * s - 0.5, was_numpy)


def resize_points(points, src_size, dst_size):
    """Map points from an image of ``src_size = (H, W)`` to one of ``dst_size = (H', W')``."""
    (sh, sw), (dh, dw) = check_size(src_size, "src_size"), check_size(dst_size, "dst_size")
    return rescale_points(points, (dw / sw, dh / sh))


def _plain_numpy(*arrays) -> bool:
    """True if every argument is a float64 numpy array (no conversion needed for a fast path)."""
    return all(isinstance(x, np.ndarray) and x.dtype == np.float64 for x in arrays)


def apply_affine(points, matrix):
    """Apply ``(..., 2, 3)`` affine matrices to ``(..., N, 2)`` points (broadcast over ``...``)."""
    if _plain_numpy(points, matrix) and np.ndim(points) == 2 and np.shape(matrix) == (2, 3):
        _check_points(points)                       # the common case of one image, in numpy
        return points @ matrix[:, :2].T + matrix[:, 2]
    p, was_numpy = to_torch(points)
    m, _ = to_torch(matrix)
    p = as_float(p)
    _check_points(p)
    if m.shape[-2:] != (2, 3):
        raise ValueError(f"matrix must have shape (..., 2, 3), got {tuple(m.shape)}")
    m = m.to(p)
    if p.ndim == 1:
        return from_torch(m[..., :2] @ p + m[..., 2], was_numpy)
    out = p @ m[..., :2].transpose(-1, -2) + m[..., None, :, 2]
    return from_torch(out, was_numpy)


def _to_3x3(m: torch.Tensor) -> torch.Tensor:
    bottom = torch.zeros(*m.shape[:-2], 1, 3, dtype=m.dtype, device=m.device)
    bottom[..., 0, 2] = 1
    return torch.cat([m, bottom], dim=-2)


def invert_affine(matrix):
    """Inverse of ``(..., 2, 3)`` affine matrices; a singular matrix raises ``ValueError``."""
    if _plain_numpy(matrix) and matrix.shape == (2, 3):    # one matrix: closed form, no torch
        (a, b), (c, d) = matrix[:, :2]
        det = a * d - b * c
        if not abs(det) >= 1e-12:
            raise ValueError("affine matrix is singular (determinant ~ 0) and cannot be inverted")
        lin = np.array([[d, -b], [-c, a]]) / det
        return np.hstack([lin, -(lin @ matrix[:, 2])[:, None]])
    m, was_numpy = to_torch(matrix)
    m = as_float(m)
    if m.shape[-2:] != (2, 3):
        raise ValueError(f"matrix must have shape (..., 2, 3), got {tuple(m.shape)}")
    det = torch.linalg.det(m[..., :2])
    if torch.any(det.abs() < 1e-12):
        raise ValueError("affine matrix is singular (determinant ~ 0) and cannot be inverted")
    return from_torch(torch.linalg.inv(_to_3x3(m))[..., :2, :], was_numpy)


def compose_affine(a, b):
    """The transform "``a`` after ``b``": ``apply(compose(a, b), p) == apply(a, apply(b, p))``."""
    if _plain_numpy(a, b) and np.shape(a) == (2, 3) and np.shape(b) == (2, 3):
        return np.hstack([a[:, :2] @ b[:, :2], (a[:, :2] @ b[:, 2] + a[:, 2])[:, None]])
    ta, was_numpy = to_torch(a)
    tb, _ = to_torch(b)
    ta = as_float(ta)
    out = _to_3x3(ta) @ _to_3x3(tb.to(ta))
    return from_torch(out[..., :2, :], was_numpy)


def similarity_transform(src, dst, weights=None):
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    The 2D case of Umeyama (1991) in closed form. A similarity without reflection has the linear
    part ``[[a, -b], [b, a]]`` (scale ``sqrt(a^2 + b^2)``, angle ``atan2(b, a)``), and the fit is
    linear in ``(a, b)``: with both point sets centred on their (weighted) means,
    ``a = sum w (s . d) / sum w |s|^2`` and ``b = sum w (s x d) / sum w |s|^2``
    (``s x d = s_x d_y - s_y d_x``), then ``t = mu_dst - A mu_src``. This is the rotation and
    scale that Umeyama's SVD gives (with its guard against reflections), without the SVD.

    Args:
        src, dst: ``(..., N, 2)`` corresponding points, N >= 2.
        weights: optional ``(..., N)`` non-negative weights.
    Returns:
        ``(..., 2, 3)`` matrices with ``apply_affine(src, M) ~= dst``.
    """
    s, was_numpy = to_torch(src)
    d, _ = to_torch(dst)
    s = as_float(s)
    d = d.to(s)
    _check_points(s, "src")
    _check_points(d, "dst")
    if s.shape != d.shape or s.shape[-2] < 2:
        raise ValueError(f"src and dst must have the same shape (..., N >= 2, 2), "
                         f"got {tuple(s.shape)} and {tuple(d.shape)}")
    if not (torch.isfinite(s).all() and torch.isfinite(d).all()):
        raise ValueError("src and dst must be finite (found NaN or inf)")
    if weights is None:
        w = torch.ones(s.shape[:-1], dtype=s.dtype, device=s.device)
    else:
        w, _ = to_torch(weights)
        w = w.to(s)
    w = w / w.sum(-1, keepdim=True)
    mu_s = (w[..., None] * s).sum(-2)
    mu_d = (w[..., None] * d).sum(-2)
    (sx, sy), (dx, dy) = (s - mu_s[..., None, :]).unbind(-1), (d - mu_d[..., None, :]).unbind(-1)
    var_s = (w * (sx * sx + sy * sy)).sum(-1)
    if torch.any(var_s < 1e-12):
        raise ValueError("src points are all identical: a similarity transform is undefined")
    a = (w * (sx * dx + sy * dy)).sum(-1) / var_s
    b = (w * (sx * dy - sy * dx)).sum(-1) / var_s
    lin = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)
    t = mu_d - (lin @ mu_s[..., None])[..., 0]
    return from_torch(torch.cat([lin, t[..., None]], dim=-1), was_numpy)


def affine_transform(src, dst):
    """Least-squares general affine transform mapping ``src`` to ``dst`` (``(..., N >= 3, 2)``)."""
    s, was_numpy = to_torch(src)
    d, _ = to_torch(dst)
    s = as_float(s)
    d = d.to(s)
    _check_points(s, "src")
    if s.shape != d.shape or s.shape[-2] < 3:
        raise ValueError(f"src and dst must have the same shape (..., N >= 3, 2), "
                         f"got {tuple(s.shape)} and {tuple(d.shape)}")
    ones = torch.ones(*s.shape[:-1], 1, dtype=s.dtype, device=s.device)
    a = torch.cat([s, ones], dim=-1)  # (..., N, 3)
    sol = torch.linalg.lstsq(a, d).solution  # (..., 3, 2)
    return from_torch(sol.transpose(-1, -2), was_numpy)


def rotation_matrix(angle_deg, center=(0.0, 0.0), scale=1.0):
    """``(2, 3)`` similarity rotating by ``angle_deg`` (counter-clockwise on screen, y down)
    and scaling by ``scale`` about ``center`` ``(x, y)``; same matrix as
    ``cv2.getRotationMatrix2D``."""
    a = math.radians(float(angle_deg))
    c, s = math.cos(a) * float(scale), math.sin(a) * float(scale)
    cx, cy = float(center[0]), float(center[1])
    return np.array([[c, s, (1 - c) * cx - s * cy],
                     [-s, c, s * cx + (1 - c) * cy]])
