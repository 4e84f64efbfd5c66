"""Differentiable operations on feature maps.

* :func:`crop_patches`: bilinear ``size x size`` crops of a feature map centred at float
  positions, with the analytic gradients of Yan et al. (2020), Sec. 5, w.r.t. the feature map
  (Eq. 9) and w.r.t. the crop centres (Eqs. 11-15).
* :func:`crop_patches_grid_sample`: the same crop through ``torch.nn.functional.grid_sample``
  and autograd, the independent reference that tests, benchmarks and notebook 04 compare with.
* :func:`cheap_heatmap`: Xia et al. (2022) Eq. 1, a heatmap computed from the landmarks by
  formula (no layers, no parameters), with the 0.5 floor of Sec. 3.3. Eq. 2 fuses it with
  features by element-wise multiplication: ``features * cheap_heatmap(points, features.shape[-2:])``.
* :func:`add_coords` and :class:`CoordConv2d`: CoordConv (Liu et al. 2018, cited by Xia
  Sec. 3.1): two channels holding each pixel's normalised x and y are appended before a
  convolution, so the filter can tell where it is. (Their conventions: the section above
  :func:`cheap_heatmap`.)

Where the samples sit. Patch sample ``(q, p)`` of a crop centred at ``(x, y)`` is read at
(Yan Eqs. 6-7, in feature-map pixels, pixel centres at integers)::

    x_p = x + p - (size - 1) / 2,    y_q = y + q - (size - 1) / 2,    p, q = 0 .. size - 1

so the patch is centred on the point for every size. Size 3 samples at ``x - 1, x, x + 1``;
size 2 at ``x - 0.5, x + 0.5`` (an even patch has no sample at its centre)::

      size 2:         x - 0.5    x    x + 0.5
                         o       |       o

Every sample of a crop is the same sub-pixel shift away from the grid: with ``(x0, y0)`` the
floor of sample ``(0, 0)``'s position and ``(fx, fy)`` its fractional part, the patch is a
blend of four integer windows of the map (Yan Eq. 5 with its sum reduced to the four
non-zero terms, as in Eq. 12)::

    V[q, p] = (1-fy)(1-fx) I[y0+q, x0+p]   + (1-fy) fx I[y0+q, x0+p+1]
            +    fy (1-fx) I[y0+q+1, x0+p] +    fy  fx I[y0+q+1, x0+p+1]

Values outside the map are zero (Eq. 5 sums over the map only), so a crop near or beyond the
border is partly or wholly zero, as ``grid_sample(..., padding_mode="zeros")``.

The kink. ``V`` is piecewise linear in ``x``: its slope jumps where the samples cross pixel
centres, i.e. where ``x - (size - 1) / 2`` is an integer (integer ``x`` for odd sizes,
``x + 0.5`` integer for even sizes). There the gradient w.r.t. the centre is the
**right-hand** derivative (``fx = 0``: the slope towards the next pixel,
``I[., x0+1] - I[., x0]``), as floor-based bilinear interpolation and ``grid_sample`` give.
Read literally, Eq. 12 gives 0 there (floor = ceil) and Eq. 11 gives ``+I[., x0]``; neither is
a one-sided derivative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ._backend import as_float, check_positive_int, check_size, from_torch, to_torch


def _described(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__


def _check_crop_inputs(features, centers, size) -> int:
    if not isinstance(features, Tensor) or features.ndim != 4:
        raise ValueError(f"features must be a (B, C, H, W) tensor, got {_described(features)}")
    if not features.is_floating_point():
        raise ValueError(f"features must be a floating tensor, got {features.dtype}")
    if features.shape[2] == 0 or features.shape[3] == 0:
        raise ValueError(f"features must have H, W >= 1, got {tuple(features.shape)}")
    if not isinstance(centers, Tensor) or centers.ndim != 3 or centers.shape[-1] != 2:
        raise ValueError(f"centers must be a (B, N, 2) tensor of (x, y), got {_described(centers)}")
    if centers.shape[0] != features.shape[0]:
        raise ValueError(f"centers and features must have the same batch size B, got "
                         f"{centers.shape[0]} and {features.shape[0]}")
    if not centers.is_floating_point():
        raise ValueError(f"centers must be a floating tensor, got {centers.dtype}")
    if centers.device != features.device:
        raise ValueError(f"centers ({centers.device}) and features ({features.device}) must be "
                         f"on the same device")
    if not bool(torch.isfinite(centers).all()):
        raise ValueError("centers must be finite, got NaN or inf")
    return check_positive_int(size, "size")


def _gather_windows(features: Tensor, centers: Tensor, size: int):
    """The ``(size + 1)^2`` map pixels each crop reads, and its sub-pixel shift.

    The map is copied channels last into a zero frame ``k = size + 1`` pixels wide on every
    side, ``(B, H + 2k, W + 2k, C)``. With its corner (the floor of sample ``(0, 0)``) clamped
    to ``[-k, W]`` (``[-k, H]`` for rows), a crop's window lies inside the framed map even when
    it leaves the map, so off-map pixels read the frame's zeros, and every window is the same
    pattern of offsets from its corner: one flat index per window pixel, computed as corner
    plus pattern, and one ``index_select`` moves all ``C`` channels of each pixel.

    Returns:
        ``window`` ``(B*N, k, k, C)``, ``index`` ``(B*N*k*k,)`` into the framed map flattened
        to ``(B*(H+2k)*(W+2k), C)``, and ``frac`` ``(B*N, 2)``, the fractional part
        ``(fx, fy)`` shared by every sample of a crop.
    """
    (b, c, h, w), n, k = features.shape, centers.shape[1], size + 1
    start = centers.reshape(-1, 2) - (size - 1) / 2           # sample (0, 0) of each crop
    corner = start.floor()
    frac = start - corner                                      # in [0, 1): right-hand at kinks
    # clamp before the integer cast so huge coordinates cannot overflow; still off the map
    corner = torch.minimum(corner.clamp(min=-k), corner.new_tensor([w, h])).long()
    hk, wk = h + 2 * k, w + 2 * k                              # the framed map
    origin = torch.arange(k * wk + k, b * hk * wk, hk * wk, device=centers.device)  # map (0, 0)
    corner_index = (corner[:, 1] * wk + corner[:, 0]).view(b, n) + origin[:, None]
    k_range = torch.arange(k, device=centers.device)
    pattern = k_range[:, None] * wk + k_range                  # window pixel (r, j): r wk + j
    index = (corner_index.view(-1, 1, 1) + pattern).view(-1)
    framed = features.new_zeros(b, hk, wk, c)
    framed[:, k:k + h, k:k + w] = features.permute(0, 2, 3, 1)
    window = framed.view(b * hk * wk, c).index_select(0, index).view(b * n, k, k, c)
    return window, index, frac


class _CropPatches(torch.autograd.Function):
    """The crop as two 1D blends of a gathered window, and the adjoints of the blends.

    Forward (Eq. 5): gather each crop's ``(size+1)^2`` window, blend neighbouring columns with
    ``fx`` (``across``, ``(size+1, size)`` per channel), then neighbouring rows of that with
    ``fy`` (the patch). ``window`` and ``across`` are kept for Eqs. 11-15.

    Backward, Eq. 9: the adjoint of each blend is again a blend, ``(1 - f) g[j] + f g[j-1]``
    with ``g`` framed by a zero before and after, so two ``lerp`` calls spread the patch
    gradient over the window (each window pixel gets the patch gradient times its bilinear
    weight) and one scatter-add (``index_put_(..., accumulate=True)``) adds every window onto
    the map: overlapping crops add up, off-map pixels land in the frame and are dropped.
    Eqs. 11-15: the patch moves with ``fy`` by the row differences of ``across``, and with
    ``fx`` by the ``fy``-blend of the window's column differences (Eq. 12, whose ``y_d``,
    ``y_u`` are ``1 - fy``, ``fy``); the ``fy``-blend of the patch gradient is the first
    adjoint above, so each centre derivative is one inner product per crop.

    Cost. Tensors are channels last inside, so one index moves all channels of a pixel. The
    crop does fewer multiply-adds per sample than ``grid_sample`` (two 1D blends rather than
    four corner weights, one ``(size+1)^2`` window per crop rather than four corners per
    sample), but each step above is a separate PyTorch operation, a pass over all crops, where
    ``grid_sample``'s C++ kernels fuse gather, blend and scatter into one loop per direction;
    on one CPU thread it has measured slower. ``python -m lmk.bench --only ops`` prints the
    ratio.
    """

    @staticmethod
    def forward(ctx, features, centers, size, grad_features, grad_centers):
        (b, c, h, w), n = features.shape, centers.shape[1]
        window, index, frac = _gather_windows(features, centers, size)
        fx, fy = frac[:, 0, None, None, None], frac[:, 1, None, None, None]
        across = torch.lerp(window[:, :, :-1], window[:, :, 1:], fx)   # (B*N, size+1, size, C)
        patch = torch.lerp(across[:, :-1], across[:, 1:], fy)          # (B*N, size, size, C)
        ctx.size, ctx.shape = size, (b, n, c, h, w)
        ctx.grad_features = grad_features and ctx.needs_input_grad[0]
        ctx.grad_centers = grad_centers and ctx.needs_input_grad[1]
        keep = ctx.grad_centers                                 # only Eqs. 11-15 need values
        ctx.save_for_backward(index, frac, window if keep else None, across if keep else None)
        # (B, N, C, size, size) as a view of the channels-last patch: no copy
        return patch.view(b, n, size, size, c).permute(0, 1, 4, 2, 3)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_patch):
        index, frac, window, across = ctx.saved_tensors
        (b, n, c, h, w), s, m = ctx.shape, ctx.size, frac.shape[0]   # m = B*N crops
        k = s + 1
        grad_features = grad_centers = None
        if not (ctx.grad_features or ctx.grad_centers):
            return None, None, None, None, None
        fx, fy = frac[:, 0, None, None, None], frac[:, 1, None, None, None]
        # the patch gradient channels last, framed by a zero row above and below
        g_framed = grad_patch.new_empty(m, s + 2, s, c)
        g_framed[:, 0].zero_(), g_framed[:, -1].zero_()
        g = g_framed[:, 1:-1]
        g.view(b, n, s, s, c).copy_(grad_patch.permute(0, 1, 3, 4, 2))
        # adjoint of the fy-blend (row r of across gets (1 - fy) g[r] + fy g[r-1]), written
        # between a zero column left and right for the adjoint of the fx-blend
        grad_across = g.new_empty(m, k, s + 2, c)
        grad_across[:, :, 0].zero_(), grad_across[:, :, -1].zero_()
        inner = grad_across[:, :, 1:-1]                         # (B*N, size+1, size, C)
        torch.lerp(g_framed[:, 1:], g_framed[:, :-1], fy, out=inner)
        scratch = g.new_empty(m * k * k * c)                    # one buffer for three steps
        if ctx.grad_centers:                                    # Eqs. 11-15 for y
            d_across = scratch[:m * s * s * c].view(m, s, s, c)
            torch.sub(across[:, 1:], across[:, :-1], out=d_across)
            grad_y = d_across.mul_(g).sum((1, 2, 3))
        if ctx.grad_features:                                   # Eq. 9
            grad_window = scratch.view(m, k, k, c)
            torch.lerp(grad_across[:, :, 1:], grad_across[:, :, :-1], fx, out=grad_window)
            grad_map = g.new_zeros(b * (h + 2 * k) * (w + 2 * k), c)
            grad_map.index_put_((index,), grad_window.view(m * k * k, c), accumulate=True)
            grad_map = grad_map.view(b, h + 2 * k, w + 2 * k, c)[:, k:k + h, k:k + w]
            grad_features = grad_map.permute(0, 3, 1, 2)
        if ctx.grad_centers:                                    # Eqs. 11-15 for x (Eq. 12)
            d_window = scratch[:m * k * s * c].view(m, k, s, c)
            torch.sub(window[:, :, 1:], window[:, :, :-1], out=d_window)
            grad_x = d_window.mul_(inner).sum((1, 2, 3))
            grad_centers = torch.stack([grad_x, grad_y], -1).view(b, n, 2)
        return grad_features, grad_centers, None, None, None


def crop_patches(features: Tensor, centers: Tensor, size: int, *, grad_features: bool = True,
                 grad_centers: bool = True) -> Tensor:
    """Bilinear ``size x size`` crops of ``features`` centred at ``centers`` (Yan Eqs. 5-7).

    Gradients are Yan's analytic ones (Sec. 5): w.r.t. the map, Eq. 9; w.r.t. the centres,
    Eqs. 11-15, the right-hand derivative at the kinks (see the module docstring). It is
    differentiable once (no double backward).

    Args:
        features: ``(B, C, H, W)`` floating feature maps.
        centers: ``(B, N, 2)`` crop centres ``(x, y)`` in feature-map pixels (pixel centres at
            integers); cast to the dtype of ``features``.
        size: patch side, a positive int; samples sit at offsets ``k - (size - 1) / 2``.
        grad_features: if False, no gradient flows from the patches to ``features``
            (Yan's gradient-path ablation, Table 6, nabla_low_level).
        grad_centers: if False, no gradient flows from the patches to ``centers``
            (nabla_crop_location through the crop).
    Returns:
        ``(B, N, C, size, size)``; zero where a sample's four neighbours are off the map. It
        is a view of a channels-last ``(B, N, size, size, C)`` tensor (no copy is made here;
        a ``reshape`` that merges ``N`` and ``C`` copies).
    Raises:
        ValueError: wrong shapes or dtypes, different batch sizes or devices, non-finite
            centres, or ``size`` not a positive int.
    """
    size = _check_crop_inputs(features, centers, size)
    return _CropPatches.apply(features, centers.to(features.dtype), size, bool(grad_features),
                              bool(grad_centers))


def crop_patches_grid_sample(features: Tensor, centers: Tensor, size: int) -> Tensor:
    """:func:`crop_patches` through ``grid_sample`` (autograd gradients): the reference.

    A feature-map position ``x`` becomes the normalised ``(2 x + 1) / W - 1`` of
    ``grid_sample(..., align_corners=False)``, whose ``-1`` and ``+1`` are the outer edges of
    the map (the pixel-centre convention); ``padding_mode="zeros"`` makes outside values zero.
    Same arguments, checks and result as :func:`crop_patches`.
    """
    size = _check_crop_inputs(features, centers, size)
    (b, c, h, w), n = features.shape, centers.shape[1]
    centers = centers.to(features.dtype)
    offsets = torch.arange(size, dtype=features.dtype, device=features.device) - (size - 1) / 2
    gx = (2 * (centers[..., 0, None] + offsets) + 1) / w - 1            # (B, N, size) along x
    gy = (2 * (centers[..., 1, None] + offsets) + 1) / h - 1            # (B, N, size) along y
    grid = torch.stack(torch.broadcast_tensors(gx[:, :, None, :], gy[:, :, :, None]), -1)
    out = F.grid_sample(features, grid.reshape(b, n * size, size, 2), mode="bilinear",
                        padding_mode="zeros", align_corners=False)     # (B, C, N*size, size)
    return out.view(b, c, n, size, size).permute(0, 2, 1, 3, 4)


# ------------------------------------------------------ ATPN: cheap heatmap and CoordConv
# Both work in the project's pixel convention (pixel ``i`` covers ``[i - 0.5, i + 0.5]``, its
# centre is the integer ``i``). The heatmap is evaluated at the pixel centres of the map::
#
#       map x:     0     1     2          a landmark at x = 1.3 (y on a pixel row) is
#               |--o--|--o--|--o--|       0.3 px from the centre of pixel 1:
#                           ^             H = 1 / sqrt(1 + 0.3) = 0.877
#                          1.3
#
# The coordinate channels use the normalisation of :class:`lmk.codecs.CoordinateCodec` and
# ``grid_sample(..., align_corners=False)``: ``u = 2 (x + 0.5) / W - 1``, so ``-1`` and ``+1``
# are the outer *edges* of the map and pixel centres lie at ``-1 + 1/W .. 1 - 1/W``. Liu et al.
# put ``-1`` and ``+1`` on the outer pixel *centres* instead; the two differ by the factor
# ``(W - 1) / W``, which the following convolution can absorb, but only ours gives the same
# value to the same image position on maps of every resolution (28 x 28, 14 x 14, 7 x 7 in
# ATPN's alignment branch).

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
