"""The two feature-map operations of ATPN (Xia et al. 2022): the cheap heatmap and CoordConv.

* :func:`cheap_heatmap`: Xia Eq. 1, a heatmap computed from the landmarks by formula (no
  layers, no parameters), with the 0.5 floor of Sec. 3.3. Eq. 2 fuses it with features by
  element-wise multiplication: ``features * cheap_heatmap(points, features.shape[-2:])``.
* :func:`add_coords` and :class:`CoordConv2d`: CoordConv (Liu et al. 2018, cited by Xia
  Sec. 3.1): two channels holding each pixel's normalised x and y are appended before a
  convolution, so the filter can tell where it is.

Both work in the project's pixel convention (pixel ``i`` covers ``[i - 0.5, i + 0.5]``, its
centre is the integer ``i``). The heatmap is evaluated at the pixel centres of the map::

      map x:     0     1     2          a landmark at x = 1.3 (y on a pixel row) is
              |--o--|--o--|--o--|       0.3 px from the centre of pixel 1:
                          ^             H = 1 / sqrt(1 + 0.3) = 0.877
                         1.3

The coordinate channels use the normalisation of :class:`lmk.codecs.CoordinateCodec` and
``grid_sample(..., align_corners=False)``: ``u = 2 (x + 0.5) / W - 1``, so ``-1`` and ``+1``
are the outer *edges* of the map and pixel centres lie at ``-1 + 1/W .. 1 - 1/W``. Liu et al.
put ``-1`` and ``+1`` on the outer pixel *centres* instead; the two differ by the factor
``(W - 1) / W``, which the following convolution can absorb, but only ours gives the same
value to the same image position on maps of every resolution (28 x 28, 14 x 14, 7 x 7 in
ATPN's alignment branch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._backend import as_float, check_positive_int, check_size, from_torch, to_torch

HEATMAP_FLOOR = 0.5   # Xia Sec. 3.3: values below 0.5 are raised to 0.5


def cheap_heatmap(landmarks, size, floor: float = HEATMAP_FLOOR):
    """Xia et al. (2022), Eq. 1: ``H(x, y) = max(floor, 1 / sqrt(1 + min_i ||(x, y) - p_i||))``.

    The distance is to the *nearest* landmark, in pixels of the map, measured from each pixel
    centre. ``H`` is 1 on a landmark and falls as ``1 / sqrt(1 + d)``; with the floor of 0.5
    it stops falling at ``d = 3`` map pixels (``1 / sqrt(4) = 0.5``), so features farther
    from every landmark are halved by Eq. 2, not erased ("to avoid the problem that the CNN
    completely ignores the features far from facial landmarks").

    Differentiable w.r.t. the landmarks where the distance is positive and ``H`` above the
    floor; on a landmark (``d = 0``, a cusp) the gradient is taken as 0.

    Args:
        landmarks: ``(..., N, 2)`` points ``(x, y)`` in pixels of the *map* (pixel centres at
            integers); map input-pixel landmarks with :func:`lmk.geometry.rescale_points`
            (factor ``1 / stride``). Numpy array or tensor.
        size: ``(H, W)`` of the map, or an int for a square one.
        floor: the lower bound, in ``[0, 1)``; Xia's 0.5 by default (0 gives Eq. 1 alone).
    Returns:
        ``(..., 1, H, W)``, one heatmap per landmark set, same kind as ``landmarks`` (float;
        integer points give float32). Memory and time scale with ``N H W`` per set.
    Raises:
        ValueError: bad shape, no landmark, non-finite landmarks, bad ``size`` or ``floor``.
    """
    h, w = check_size(size)
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor < 1:
        raise ValueError(f"floor must be a number in [0, 1), got {floor!r}")
    p, was_numpy = to_torch(landmarks)
    p = as_float(p)
    if p.ndim < 2 or p.shape[-1] != 2 or p.shape[-2] == 0:
        raise ValueError(f"landmarks must have shape (..., N, 2) of (x, y) with N >= 1, "
                         f"got {tuple(p.shape)}")
    if p.device.type != "meta" and not bool(torch.isfinite(p).all()):
        raise ValueError("landmarks must be finite; found NaN or inf")
    xs = torch.arange(w, dtype=p.dtype, device=p.device)
    ys = torch.arange(h, dtype=p.dtype, device=p.device)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)       # (H, W, 2) as (x, y)
    offsets = grid - p[..., :, None, None, :]                                # (..., N, H, W, 2)
    distance = torch.linalg.vector_norm(offsets, dim=-1).amin(dim=-3)        # (..., H, W)
    heat = (1.0 + distance).rsqrt().clamp_min(floor)
    return from_torch(heat.unsqueeze(-3), was_numpy)


def coord_channels(height: int, width: int, *, dtype=None, device=None) -> Tensor:
    """The two CoordConv channels ``(2, H, W)``: normalised x (``[0]``) and y (``[1]``) of
    every pixel centre, ``u = 2 (i + 0.5) / size - 1`` (see the module docstring)."""
    h, w = check_positive_int(height, "height"), check_positive_int(width, "width")
    ux = (torch.arange(w, dtype=dtype, device=device) + 0.5) * (2.0 / w) - 1.0
    uy = (torch.arange(h, dtype=dtype, device=device) + 0.5) * (2.0 / h) - 1.0
    return torch.stack([ux.expand(h, w), uy[:, None].expand(h, w)])


def add_coords(features: Tensor) -> Tensor:
    """Append the coordinate channels: ``(B, C, H, W)`` -> ``(B, C + 2, H, W)``, x then y."""
    if not isinstance(features, Tensor) or features.ndim != 4:
        got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features must be a (B, C, H, W) tensor, got {got}")
    if not features.is_floating_point():
        raise ValueError(f"features must be a floating tensor, got {features.dtype}")
    b, _, h, w = features.shape
    coords = coord_channels(h, w, dtype=features.dtype, device=features.device)
    return torch.cat([features, coords.expand(b, 2, h, w)], dim=1)


class CoordConv2d(nn.Module):
    """A convolution that sees its input plus the coordinate channels (Liu et al. 2018).

    ``(B, C_in, H, W)`` -> ``(B, C_out, H', W')`` as ``nn.Conv2d(C_in + 2, C_out, ...)`` on
    :func:`add_coords` of the input. With ``coords=False`` it is a plain ``nn.Conv2d(C_in,
    C_out, ...)`` (the ablation without CoordConv), so both variants share one code path.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, groups, bias: as ``nn.Conv2d``
            (``in_channels`` without the two coordinate channels).
        coords: append the coordinate channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = True, coords: bool = True):
        super().__init__()
        in_channels = check_positive_int(in_channels, "in_channels")
        self.coords = bool(coords)
        extra = 2 if self.coords else 0
        self.conv = nn.Conv2d(in_channels + extra, check_positive_int(out_channels, "out_channels"),
                              kernel_size, stride, padding, groups=groups, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(add_coords(x) if self.coords else x)
