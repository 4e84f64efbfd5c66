"""Yan et al.'s (2020) Align Loss (Eq. 2): compare feature patches at the prediction and the truth.

The patches are bilinear crops of a feature map (``lmk.ops.crop_patches``), so the gradient
reaches the predicted points through the crop centres; :func:`gaussian_kernel` is the 3 x 3
pre-filter ``G`` of Eq. 2, which Yan switch off late in training to regain pixel precision.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from .._backend import check_positive_int
from ..ops import crop_patches
from .reduction import _check_points, _reduce


def gaussian_kernel(sigma: float, size: int = 3, dtype=None, device=None) -> torch.Tensor:
    """The ``(size, size)`` Gaussian ``G`` of Yan et al.'s Eq. 2, normalised to sum 1."""
    r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-r.square() / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _align_settings(patch_size, blur_sigma, blur_size) -> tuple[int, float, int]:
    patch_size = check_positive_int(patch_size, "patch_size")
    if isinstance(blur_sigma, bool) or not isinstance(blur_sigma, numbers.Real) or not blur_sigma >= 0:
        raise ValueError(f"blur_sigma must be a number >= 0 (0 switches the pre-filter off), "
                         f"got {blur_sigma!r}")
    blur_size = check_positive_int(blur_size, "blur_size")
    if blur_size % 2 == 0:
        raise ValueError(f"blur_size must be odd (a centred kernel), got {blur_size!r}")
    return patch_size, float(blur_sigma), blur_size


def align_loss(features: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor, *, patch_size: int = 8,
               blur_sigma: float = 1.0, blur_size: int = 3, feature_grad: bool = False,
               reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Eq. 2, the Align Loss: squared difference of two feature-map patches.

    Per image: ``sum_{n, c, m} ((G * P_gt)_{ncm} - (G * P_pred)_{ncm})^2``, where ``P`` are the
    ``patch_size x patch_size`` bilinear crops of ``features`` (``lmk.ops.crop_patches``) centred
    at the ground truth and at the prediction, ``m`` runs over the patch pixels, ``c`` over the
    channels and ``n`` over the landmarks. The loss is zero when the patches agree, so it pulls a
    point onto the structure (an edge, a corner) it saw at the ground truth, and it is flat along
    an edge: a slip along a contour costs less than a slip across it (Yan Fig. 6 (e)).

    The pre-filter ``G`` acts on the two cropped *patches*, not on the feature map or on the
    points: a ``blur_size x blur_size`` Gaussian of std ``blur_sigma`` feature pixels (Yan Sec.
    6.6: 3 and 1), zero-padded to keep the patch size (Eq. 2 sums over the ``|P_GT|`` pixels of
    the patch). It is linear, so ``G * P_gt - G * P_pred = G * (P_gt - P_pred)``: it low-passes
    the *difference*, and fine texture counts less than coarse structure. The landscape of the
    loss over the predicted position becomes smoother with a wider basin: on a map of white
    noise the loss rises monotonically away from the ground truth for about 1 px without the
    filter and for over 2 px with it (tests/test_losses.py), which is Yan's "helps the gradient
    descent algorithm to converge". Yan remove it "once the loss stops going down", to regain
    pixel precision: ``blur_sigma=0`` switches it off (then ``blur_size`` is unused).

    Gradients reach the prediction through the crop centres (Yan Eqs. 11-15). With
    ``feature_grad=False`` (default) none reach ``features``: Yan do not say, and a loss that
    only compares two crops of the same map is also minimised by making the map flat, so here
    the features are learnt from the other stages' losses only.

    Args:
        features: ``(B, C, H, W)`` feature map the patches are cropped from.
        pred, gt: ``(B, N, 2)`` points in *feature-map* pixels (``lmk.geometry.resize_points``
            maps input pixels there).
        patch_size: patch side (Yan: 8).
        blur_sigma: std of ``G`` in feature pixels; ``0`` switches the pre-filter off.
        blur_size: side of ``G``, an odd int.
        feature_grad: let gradients reach ``features`` too.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_points(pred, gt)
    if not isinstance(features, torch.Tensor) or features.ndim != 4 or features.shape[0] != pred.shape[0]:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must have shape (B, C, H, W) with B = {pred.shape[0]} like pred, "
                         f"got {shape}")
    patch_size, blur_sigma, blur_size = _align_settings(patch_size, blur_sigma, blur_size)
    maps = features if feature_grad else features.detach()
    diff = crop_patches(maps, pred, patch_size) - crop_patches(maps, gt.detach(), patch_size)
    if blur_sigma > 0:                                                   # G * (P_pred - P_gt)
        kernel = gaussian_kernel(blur_sigma, blur_size, diff.dtype, diff.device)
        flat = diff.reshape(-1, 1, patch_size, patch_size)
        diff = F.conv2d(flat, kernel[None, None], padding=blur_size // 2).view(diff.shape)
    return _reduce(diff.square().sum(dim=(1, 2, 3, 4)), reduction)


class AlignLoss(nn.Module):
    """:func:`align_loss` with its settings fixed: ``loss(features, pred, gt)``, points in
    feature-map pixels. Arguments as :func:`align_loss`."""

    def __init__(self, patch_size: int = 8, blur_sigma: float = 1.0, blur_size: int = 3,
                 feature_grad: bool = False):
        super().__init__()
        self.patch_size, self.blur_sigma, self.blur_size = _align_settings(patch_size, blur_sigma,
                                                                           blur_size)
        self.feature_grad = bool(feature_grad)

    def settings(self) -> dict:
        return {"patch_size": self.patch_size, "blur_sigma": self.blur_sigma,
                "blur_size": self.blur_size, "feature_grad": self.feature_grad}

    def forward(self, features: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return align_loss(features, pred, gt, **self.settings())
