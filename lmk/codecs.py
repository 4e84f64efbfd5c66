"""Codecs: landmarks <-> network targets, one per output representation.

A codec is ``encode(landmarks) -> targets`` and ``decode(outputs) -> landmarks``:

* :class:`HeatmapCodec` -- one 2D Gaussian heatmap per landmark (Earp et al. (2021), Sec. 2).
* :class:`MarginalCodec` -- two 1D heatmaps per landmark, the marginals of the 2D Gaussian on
  the x and y axes (Yin et al. (2020), Eq. 12): ``O(N L)`` numbers instead of ``O(N L^2)``.
* :class:`CoordinateCodec` -- normalised coordinates for regression heads.

Heatmap coordinates follow the project convention: cell ``(i, j)`` of a heatmap is centred on
the integer point ``(x=i, y=j)``. The codecs map between input pixels and heatmap cells with
:func:`lmk.geometry.resize_points`, which keeps pixel edges aligned::

      input, 4 px   |--0--|--1--|--2--|--3--|
      heatmap, 2 px |-----0-----|-----1-----|     input x = 1.5  <->  heatmap x = 0.5

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

Everything is torch underneath: encoding is differentiable in the points, and ``"soft_argmax"``
and ``"dark"`` in the map values (``argmax`` and ``shift`` are piecewise constant), so a model
can be trained through a decoder (integral regression).
"""

from __future__ import annotations

import math
import numbers

import torch

from ._backend import from_torch, to_torch
from .geometry import rescale_points, resize_points

METHODS = ("argmax", "shift", "dark", "soft_argmax")


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------

def _check_sigma(sigma, name: str = "sigma", allow_zero: bool = False) -> float:
    if not isinstance(sigma, numbers.Real) or isinstance(sigma, bool):
        raise TypeError(f"{name} must be a real number, got {type(sigma).__name__}")
    ok = sigma >= 0 if allow_zero else sigma > 0
    if not (math.isfinite(sigma) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {sigma}")
    return float(sigma)


def _check_size(size, name: str = "size") -> tuple[int, int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = size
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (H, W) or an int, got {size!r}") from None
    for v in (h, w):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name} must be positive integers (H, W), got {size!r}")
    return int(h), int(w)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _float(t: torch.Tensor) -> torch.Tensor:
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def _points(points) -> tuple[torch.Tensor, bool]:
    p, was_numpy = to_torch(points)
    p = _float(p)
    if p.ndim < 2 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., N, 2) of (x, y), got {tuple(p.shape)}")
    if not torch.isfinite(p).all():
        raise ValueError("points must be finite; found NaN or inf (a missing landmark has no "
                         "Gaussian target: drop it or give it a mask before encoding)")
    return p, was_numpy


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------

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
        ``(..., N, H, W)`` heatmaps, same kind as ``points`` (float). A point outside the map
        gives a partial or all-zero map.
    Raises:
        ValueError: bad shapes, non-finite points, ``sigma <= 0``.
    """
    sigma = _check_sigma(sigma)
    h, w = _check_size(size)
    p, was_numpy = _points(points)
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
    sigma = _check_sigma(sigma)
    h, w = _check_size(size)
    p, was_numpy = _points(points)
    hx = _gaussian_1d(p[..., 0], w, sigma)
    hy = _gaussian_1d(p[..., 1], h, sigma)
    return from_torch(hx, was_numpy), from_torch(hy, was_numpy)


# --------------------------------------------------------------------------------------------
# decoding internals (all on flat batches: 2D maps (M, H, W), 1D maps (M, L))
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
    t = _float(t)
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
    _check_method(method)
    blur_sigma = _check_sigma(blur_sigma, "blur_sigma", allow_zero=True)
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
    _check_method(method)
    blur_sigma = _check_sigma(blur_sigma, "blur_sigma", allow_zero=True)
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


# --------------------------------------------------------------------------------------------
# codec classes: input pixels <-> targets
# --------------------------------------------------------------------------------------------

class HeatmapCodec:
    """Landmarks in input pixels <-> 2D Gaussian heatmaps.

    Args:
        input_size: ``(H, W)`` of the network input image (or an int).
        heatmap_size: ``(H, W)`` of the heatmaps (or an int), e.g. a quarter of the input.
        sigma: Gaussian std in heatmap cells.
        method: decoder, one of :data:`METHODS`. DARK blurs with ``sigma``.

    Example::

        codec = HeatmapCodec(256, 64, sigma=2.0)
        targets = codec.encode(landmarks)        # (B, N, 2) input px -> (B, N, 64, 64)
        points = codec.decode(model(images))     # (B, N, 64, 64) -> (B, N, 2) input px
    """

    def __init__(self, input_size, heatmap_size, sigma: float = 2.0, method: str = "dark"):
        self.input_size = _check_size(input_size, "input_size")
        self.heatmap_size = _check_size(heatmap_size, "heatmap_size")
        self.sigma = _check_sigma(sigma)
        _check_method(method)
        self.method = method

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_size={self.input_size}, heatmap_size="
                f"{self.heatmap_size}, sigma={self.sigma}, method={self.method!r})")

    def to_heatmap(self, landmarks):
        """Input pixels -> heatmap cells (:func:`lmk.geometry.resize_points`)."""
        return resize_points(landmarks, self.input_size, self.heatmap_size)

    def to_input(self, points):
        """Heatmap cells -> input pixels."""
        return resize_points(points, self.heatmap_size, self.input_size)

    def encode(self, landmarks):
        """``(..., N, 2)`` input pixels -> ``(..., N, H, W)`` target heatmaps."""
        p, was_numpy = _points(landmarks)
        return from_torch(gaussian_heatmaps(self.to_heatmap(p), self.heatmap_size, self.sigma),
                          was_numpy)

    def decode(self, heatmaps, return_confidence: bool = False):
        """``(..., N, H, W)`` heatmaps -> ``(..., N, 2)`` input pixels (and ``(..., N)`` peaks)."""
        h, was_numpy = to_torch(heatmaps)
        if h.ndim < 3 or tuple(h.shape[-2:]) != self.heatmap_size:
            raise ValueError(f"heatmaps must have shape (..., N, {self.heatmap_size[0]}, "
                             f"{self.heatmap_size[1]}), got {tuple(h.shape)}")
        points, peak = decode_heatmaps(h, self.method, blur_sigma=self.sigma,
                                       return_confidence=True)
        points = from_torch(self.to_input(points), was_numpy)
        return (points, from_torch(peak, was_numpy)) if return_confidence else points


class MarginalCodec(HeatmapCodec):
    """Landmarks in input pixels <-> 1D marginal heatmaps ``(hx, hy)`` (Yin et al. (2020)).

    Same arguments as :class:`HeatmapCodec`; ``heatmap_size = (H, W)`` gives the lengths of
    ``hy`` and ``hx``. Yin et al. use 1D maps three times longer than the input side.
    """

    def encode(self, landmarks):
        """``(..., N, 2)`` input pixels -> ``(hx (..., N, W), hy (..., N, H))``."""
        p, was_numpy = _points(landmarks)
        hx, hy = gaussian_marginals(self.to_heatmap(p), self.heatmap_size, self.sigma)
        return from_torch(hx, was_numpy), from_torch(hy, was_numpy)

    def decode(self, hx, hy=None, return_confidence: bool = False):
        """``hx (..., N, W)``, ``hy (..., N, H)`` -> ``(..., N, 2)`` input pixels.

        Also accepts the pair as one argument, ``decode((hx, hy))``, the output of a 1D model.
        """
        if hy is None and isinstance(hx, (tuple, list)) and len(hx) == 2:
            hx, hy = hx
        if hy is None:
            raise ValueError("MarginalCodec.decode needs hx and hy (or the pair (hx, hy))")
        tx, was_numpy = to_torch(hx)
        ty, _ = to_torch(hy)
        (H, W) = self.heatmap_size
        if tx.ndim < 2 or tx.shape[-1] != W or ty.ndim < 2 or ty.shape[-1] != H:
            raise ValueError(f"expected hx (..., N, {W}) and hy (..., N, {H}), got "
                             f"{tuple(tx.shape)} and {tuple(ty.shape)}")
        points, peak = decode_marginals(tx, ty, self.method, blur_sigma=self.sigma,
                                        return_confidence=True)
        points = from_torch(self.to_input(points), was_numpy)
        return (points, from_torch(peak, was_numpy)) if return_confidence else points


class CoordinateCodec:
    """Landmarks in input pixels <-> normalised coordinates for regression heads.

    The normalised coordinate is ``u = 2 (x + 0.5) / W - 1``: ``-1`` and ``+1`` are the outer
    edges of the image, ``0`` its centre -- the convention of
    ``torch.nn.functional.grid_sample(..., align_corners=False)``.

    Args:
        input_size: ``(H, W)`` of the input image, or an int.
    """

    def __init__(self, input_size):
        self.input_size = _check_size(input_size, "input_size")

    def __repr__(self) -> str:
        return f"CoordinateCodec(input_size={self.input_size})"

    def encode(self, landmarks):
        """``(..., N, 2)`` input pixels -> ``(..., N, 2)`` normalised to ``[-1, 1]`` inside."""
        p, was_numpy = _points(landmarks)
        h, w = self.input_size
        return from_torch(rescale_points(p, (2.0 / w, 2.0 / h)) - 0.5, was_numpy)

    def decode(self, outputs):
        """``(..., N, 2)`` normalised coordinates -> input pixels (NaN stays NaN)."""
        u, was_numpy = to_torch(outputs)
        u = _float(u)
        if u.ndim < 2 or u.shape[-1] != 2:
            raise ValueError(f"outputs must have shape (..., N, 2), got {tuple(u.shape)}")
        h, w = self.input_size
        return from_torch(rescale_points(u + 0.5, (w / 2.0, h / 2.0)), was_numpy)
