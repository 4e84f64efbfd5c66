"""Decoders: landmark coordinates from 2D heatmaps and from 1D marginal heatmaps.

Decoders (``method``), each batched with no loop over images or landmarks:

* ``"argmax"`` -- the integer cell of the maximum (Earp et al. (2021), Eq. 1).
* ``"shift"`` -- argmax plus a quarter cell towards the higher neighbour on each axis
  (Xiao et al., 2018; Earp et al. (2021), Eq. 2).
* ``"dark"`` -- Zhang et al. (2020): blur the heatmap with a Gaussian (distribution modulation),
  take its log (a Gaussian becomes a quadratic), and take one Newton step from the argmax,
  ``mu = m - H^{-1} g`` with gradient ``g`` and Hessian ``H`` of the log map at ``m``. Only a
  small window around each maximum is gathered and blurred.
* ``"soft_argmax"`` -- the integral (expected) position under the heatmap treated as a density
  ``max(h, 0) / sum(max(h, 0))`` (Sun et al., 2018).

Degenerate maps have a defined result (see :func:`decode_heatmaps`): a map that contains NaN or
+inf, or has no peak (constant, e.g. all zeros), decodes to NaN coordinates.
"""

from __future__ import annotations

import math

import torch

from .._backend import as_float, from_torch, to_torch
from .targets import check_method, check_sigma

# --------------------------------------------------------------------------------------------
# internals, all on flat batches: 2D maps (M, H, W), 1D maps (M, L)
# --------------------------------------------------------------------------------------------

def _blur_kernel(blur_sigma: float, dtype, device) -> torch.Tensor:
    """Normalised 1D Gaussian of radius ``ceil(3 sigma)`` (``[1.]`` when ``sigma == 0``)."""
    radius = math.ceil(3.0 * blur_sigma)
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-t ** 2 / (2.0 * blur_sigma ** 2)) if radius > 0 else torch.ones_like(t)
    return k / k.sum()


def _blur_matrix(kernel: torch.Tensor, outputs: int = 5) -> torch.Tensor:
    """``(outputs + 2r, outputs)`` banded matrix ``T``: ``window @ T`` blurs a window of
    ``outputs + 2r`` cells and keeps the ``outputs`` central cells that the kernel fully
    covers. ``T[i, j] = kernel[i - j]``."""
    taps = kernel.numel()
    i = torch.arange(outputs + taps - 1, device=kernel.device)
    j = torch.arange(outputs, device=kernel.device)
    d = i[:, None] - j[None, :]
    band = (d >= 0) & (d < taps)
    return torch.where(band, kernel[d.clamp(0, taps - 1)], torch.zeros((), dtype=kernel.dtype))


def _window_1d(maps: torch.Tensor, centre: torch.Tensor, radius: int):
    """Values ``(M, 2r+1)`` around ``centre`` (M,), zero outside the map, and the inside mask."""
    length = maps.shape[-1]
    idx = centre[:, None] + torch.arange(-radius, radius + 1, device=maps.device)
    inside = (idx >= 0) & (idx < length)
    return maps.gather(1, idx.clamp(0, length - 1)) * inside, inside


def _window_2d(maps: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor, radius: int):
    """Values ``(M, 2r+1, 2r+1)`` around ``(ix, iy)`` and the row and column inside masks
    ``(M, 2r+1)``. Cells outside the map repeat the border: callers must mask them.

    Copies the ``2r+1`` whole rows first (contiguous), then picks the columns: several times
    faster than gathering ``(2r+1)^2`` scattered cells.
    """
    m, h, w = maps.shape
    k = 2 * radius + 1
    offsets = torch.arange(-radius, radius + 1, device=maps.device)
    rows, cols = iy[:, None] + offsets, ix[:, None] + offsets           # (M, K)
    row_inside, col_inside = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    first_row = torch.arange(m, device=maps.device)[:, None] * h
    strips = maps.reshape(m * h, w).index_select(0, (first_row + rows.clamp(0, h - 1)).reshape(-1))
    values = strips.reshape(m, k, w).gather(2, cols.clamp(0, w - 1)[:, None, :].expand(m, k, k))
    return values, row_inside, col_inside


def _locate_2d(maps: torch.Tensor):
    """Peak value and its cell ``(iy, ix)`` for ``(M, H, W)`` maps.

    Two cheap passes instead of one (slow) flat argmax: the maximum of every column (an
    elementwise max over rows, which vectorises), then the best row of the best column. Ties go
    to the smallest x, then the smallest y. NaN propagates into ``peak``.
    """
    col_max = maps.amax(-2)                                          # (M, W)
    peak, ix = col_max.max(-1)
    column = maps[torch.arange(maps.shape[0], device=maps.device), :, ix]  # (M, H)
    return peak, column.argmax(-1), ix


def _quarter_shift(triple: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Xiao et al.: a quarter cell towards the higher of the two neighbours ``(M, 3)``;
    no shift at the ends of the map."""
    has_both = inside[:, 0] & inside[:, 2]
    return 0.25 * torch.sign(triple[:, 2] - triple[:, 0]) * has_both


def _no_peak(maps: torch.Tensor, peak: torch.Tensor, near: torch.Tensor,
             near_inside: torch.Tensor) -> torch.Tensor:
    """True for maps that hold NaN/+inf (``peak`` not finite) or are constant (max == min).

    Only maps whose 3-cell (1D) or 3 x 3 (2D) neighbourhood of the peak is flat are candidates;
    their full maps are checked, so the common case costs no extra pass over the maps.
    """
    bad = ~torch.isfinite(peak)
    ref = peak.view(-1, *([1] * (near.ndim - 1)))
    same = torch.where(near_inside, near, ref) == ref
    candidate = same.flatten(1).all(-1) & ~bad
    idx = candidate.nonzero()[:, 0]
    if idx.numel():
        constant = maps[idx].flatten(1).amin(-1) == peak[idx]
        bad = bad.clone()
        bad[idx] = constant
    return bad


def _dark_offset_1d(window: torch.Tensor, kernel: torch.Tensor):
    """DARK step in 1D from a raw ``(M, 2r+5)`` window: ``(offset (M,), ok (M,))``."""
    b = window.double() @ _blur_matrix(kernel)                       # blurred, (M, 5)
    lg = torch.log(b.clamp_min(torch.finfo(b.dtype).tiny))
    d = 0.5 * (lg[:, 3] - lg[:, 1])
    dd = 0.25 * (lg[:, 4] - 2.0 * lg[:, 2] + lg[:, 0])  # step-2 stencil, as Zhang et al.
    offset = -d / dd
    ok = (b > 0).all(-1) & (dd < 0) & torch.isfinite(offset)
    return offset, ok


def _dark_offset_2d(window: torch.Tensor, row_inside: torch.Tensor, col_inside: torch.Tensor,
                    kernel: torch.Tensor):
    """DARK step in 2D from a raw ``(M, 2r+5, 2r+5)`` window: ``(offset (M, 2), ok (M,))``.

    Separable blur keeping the 5 x 5 cells around the peak (cells outside the map count as
    zero, like zero padding), log, then ``-H^{-1} g`` with central differences: step 1 for the
    gradient and the mixed derivative, step 2 for ``d2/dx2`` and ``d2/dy2`` (the stencil of
    Zhang et al.'s code, less sensitive to noise).
    """
    blur = _blur_matrix(kernel).to(window.dtype)                    # (2r+5, 5)
    blur_rows = row_inside[:, :, None] * blur                       # zero padding folded in
    blur_cols = col_inside[:, :, None] * blur
    b = (blur_rows.transpose(1, 2) @ (window @ blur_cols)).double()  # (M, 5, 5)
    stencil = torch.cat([b[:, 2, :], b[:, :, 2], b[:, [1, 1, 3, 3], [1, 3, 1, 3]]], dim=1)
    lg = torch.log(b.clamp_min(torch.finfo(b.dtype).tiny))
    dx = 0.5 * (lg[:, 2, 3] - lg[:, 2, 1])
    dy = 0.5 * (lg[:, 3, 2] - lg[:, 1, 2])
    dxx = 0.25 * (lg[:, 2, 4] - 2.0 * lg[:, 2, 2] + lg[:, 2, 0])
    dyy = 0.25 * (lg[:, 4, 2] - 2.0 * lg[:, 2, 2] + lg[:, 0, 2])
    dxy = 0.25 * (lg[:, 3, 3] - lg[:, 1, 3] - lg[:, 3, 1] + lg[:, 1, 1])
    det = dxx * dyy - dxy ** 2
    offset = torch.stack([-(dyy * dx - dxy * dy) / det,             # -H^{-1} g, 2 x 2 inverse
                          -(dxx * dy - dxy * dx) / det], dim=-1)
    peaked = (dxx < 0) & (det > 0)         # negative definite Hessian: a maximum of the log map
    ok = (stencil > 0).all(-1) & peaked & torch.isfinite(offset).all(-1)
    return offset, ok


def _soft_argmax_1d(maps: torch.Tensor) -> torch.Tensor:
    weights = maps.clamp_min(0)
    t = torch.arange(maps.shape[-1], dtype=maps.dtype, device=maps.device)
    return (weights * t).sum(-1) / weights.sum(-1)


def _decode_1d(maps: torch.Tensor, method: str, blur_sigma: float):
    """Decode ``(M, L)`` maps: ``(coord (M,), peak (M,))``."""
    length = maps.shape[-1]
    peak, idx = maps.max(-1)
    kernel = _blur_kernel(blur_sigma, torch.float64, maps.device)
    radius = kernel.numel() // 2 + 2 if method == "dark" else 1
    window, inside = _window_1d(maps, idx, radius)
    near, near_inside = window[:, radius - 1:radius + 2], inside[:, radius - 1:radius + 2]
    if method == "soft_argmax":
        coord = _soft_argmax_1d(maps)
    else:
        coord = idx.to(maps.dtype)
        if method != "argmax":
            shift = _quarter_shift(near, near_inside)
            if method == "dark":
                offset, ok = _dark_offset_1d(window, kernel)
                refined = coord + offset.to(maps.dtype)
                ok &= (idx >= 2) & (idx <= length - 3)  # the 5-cell stencil is inside the map
                ok &= (refined >= -0.5) & (refined <= length - 0.5)
                shift = torch.where(ok, offset.to(maps.dtype), shift)
            coord = coord + shift
    bad = _no_peak(maps, peak, near, near_inside)
    coord = torch.where(bad, torch.full_like(coord, float("nan")), coord)
    return coord, torch.where(torch.isfinite(peak), peak, torch.full_like(peak, float("nan")))


def _decode_2d(maps: torch.Tensor, method: str, blur_sigma: float):
    """Decode ``(M, H, W)`` maps: ``(coords (M, 2), peak (M,))``."""
    _, h, w = maps.shape
    peak, iy, ix = _locate_2d(maps)
    kernel = _blur_kernel(blur_sigma, torch.float64, maps.device)
    radius = kernel.numel() // 2 + 2 if method == "dark" else 1
    window, row_inside, col_inside = _window_2d(maps, iy, ix, radius)
    c = radius
    near = window[:, c - 1:c + 2, c - 1:c + 2]
    near_inside = row_inside[:, c - 1:c + 2, None] & col_inside[:, None, c - 1:c + 2]
    if method == "soft_argmax":
        positive = maps.clamp_min(0)  # the density max(h, 0), marginalised per axis
        coords = torch.stack([_soft_argmax_1d(positive.sum(-2)),
                              _soft_argmax_1d(positive.sum(-1))], dim=-1)
    else:
        coords = torch.stack([ix, iy], dim=-1).to(maps.dtype)
        if method != "argmax":
            shift = torch.stack([_quarter_shift(near[:, 1, :], near_inside[:, 1, :]),
                                 _quarter_shift(near[:, :, 1], near_inside[:, :, 1])], dim=-1)
            if method == "dark":
                offset, ok = _dark_offset_2d(window, row_inside, col_inside, kernel)
                refined = coords + offset.to(maps.dtype)
                ok &= (ix >= 2) & (ix <= w - 3) & (iy >= 2) & (iy <= h - 3)  # stencil inside
                ok &= ((refined >= -0.5) & (refined <= refined.new_tensor([w, h]) - 0.5)).all(-1)
                shift = torch.where(ok[:, None], offset.to(maps.dtype), shift)
            coords = coords + shift
    bad = _no_peak(maps, peak, near, near_inside)
    coords = torch.where(bad[:, None], torch.full_like(coords, float("nan")), coords)
    return coords, torch.where(torch.isfinite(peak), peak, torch.full_like(peak, float("nan")))


def _maps(x, name: str, min_ndim: int) -> tuple[torch.Tensor, bool]:
    t, was_numpy = to_torch(x)
    t = as_float(t)
    if t.ndim < min_ndim:
        shape = "(..., N, H, W)" if min_ndim == 3 else "(..., N, L)"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if any(s == 0 for s in t.shape[t.ndim - (min_ndim - 1):]):
        raise ValueError(f"{name} has an empty spatial axis: shape {tuple(t.shape)}")
    return t, was_numpy


# --------------------------------------------------------------------------------------------
# public decoders
# --------------------------------------------------------------------------------------------

def decode_heatmaps(heatmaps, method: str = "dark", *, blur_sigma: float = 1.0,
                    return_confidence: bool = False):
    """Landmark coordinates from 2D heatmaps, in heatmap cells.

    Args:
        heatmaps: ``(..., N, H, W)`` (numpy or torch; any leading batch shape, may be empty).
        method: ``"argmax"``, ``"shift"``, ``"dark"`` or ``"soft_argmax"`` (module docstring).
        blur_sigma: std of the DARK modulation blur in cells (``0`` = no blur). Zhang et al.
            (2020) blur with the training sigma, which :class:`HeatmapCodec` passes.
        return_confidence: also return the peak value of each map.
    Returns:
        ``(..., N, 2)`` points ``(x, y)`` (cell centres at integers), same kind as the input;
        with ``return_confidence``, also ``(..., N)`` peak values.

    Degenerate maps (documented behaviour, no error):
        * a map containing NaN or +inf -> NaN point, NaN confidence (-inf is just a low value);
        * a map without a peak (max == min, e.g. all zeros) -> NaN point, confidence = its value;
        * ties between equal maxima go to the smallest x, then the smallest y;
        * ``"soft_argmax"`` of a map without positive values -> NaN point;
        * ``"dark"`` falls back to ``"shift"`` for a landmark whose step is not defined: its
          5 x 5 stencil leaves the map (argmax within 2 cells of the border), a blurred value
          there is <= 0, the log map is not peaked there (Hessian not negative definite), or
          the step would leave the map.
    Raises:
        ValueError: fewer than 3 dimensions, an empty H or W, unknown method, ``blur_sigma < 0``.
    """
    check_method(method)
    blur_sigma = check_sigma(blur_sigma, "blur_sigma", allow_zero=True)
    h, was_numpy = _maps(heatmaps, "heatmaps", 3)
    lead, (H, W) = h.shape[:-2], h.shape[-2:]
    maps = h.reshape(-1, H, W)
    if maps.shape[0] == 0:
        coords, peak = maps.new_zeros(0, 2), maps.new_zeros(0)
    else:
        coords, peak = _decode_2d(maps, method, blur_sigma)
    coords = from_torch(coords.reshape(*lead, 2), was_numpy)
    if return_confidence:
        return coords, from_torch(peak.reshape(lead), was_numpy)
    return coords


def decode_marginals(hx, hy, method: str = "dark", *, blur_sigma: float = 1.0,
                     return_confidence: bool = False):
    """Landmark coordinates from 1D heatmaps (Yin et al. (2020), Eq. 7), in heatmap cells.

    Each axis is decoded on its own with the same methods as :func:`decode_heatmaps` (DARK in
    1D: ``mu = m - l'(m) / l''(m)`` on the blurred log map, as in Yin et al.'s "Ours+DARK").

    Args:
        hx: ``(..., N, W)`` maps over x.
        hy: ``(..., N, H)`` maps over y (same leading shape as ``hx``).
        method, blur_sigma: as in :func:`decode_heatmaps`.
        return_confidence: also return ``min(peak of hx, peak of hy)`` per landmark (a
            landmark is as certain as its less certain axis).
    Returns:
        ``(..., N, 2)`` points, and optionally ``(..., N)`` confidences. Degenerate maps follow
        the rules of :func:`decode_heatmaps` per axis.
    """
    check_method(method)
    blur_sigma = check_sigma(blur_sigma, "blur_sigma", allow_zero=True)
    tx, was_numpy = _maps(hx, "hx", 2)
    ty, _ = _maps(hy, "hy", 2)
    if tx.shape[:-1] != ty.shape[:-1]:
        raise ValueError(f"hx (..., N, W) and hy (..., N, H) must share leading dims (..., N), "
                         f"got {tuple(tx.shape)} and {tuple(ty.shape)}")
    ty = ty.to(tx.dtype)
    lead = tx.shape[:-1]
    fx, fy = tx.reshape(-1, tx.shape[-1]), ty.reshape(-1, ty.shape[-1])
    if fx.shape[0] == 0:
        coords, peak = fx.new_zeros(0, 2), fx.new_zeros(0)
    else:
        (x, px), (y, py) = _decode_1d(fx, method, blur_sigma), _decode_1d(fy, method, blur_sigma)
        coords = torch.stack([x, y], dim=-1)
        peak = torch.minimum(px, py)
    coords = from_torch(coords.reshape(*lead, 2), was_numpy)
    if return_confidence:
        return coords, from_torch(peak.reshape(lead), was_numpy)
    return coords
