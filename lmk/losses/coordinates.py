"""Coordinate losses: Yan et al.'s (2020) IOD-normalised L2 (Eq. 1), the plain L2 and L1.

The functions compare ``(B, N, 2)`` landmark sets; :class:`CoordinateLoss` adapts them to the
training loop's ``loss_fn(outputs, batch)`` by comparing ``codec.decode(outputs)`` with
``batch["landmarks"]``, in input pixels as Yan's Eq. 1 is written.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layouts import LAYOUT_68, Layout
from .reduction import _check_points, _landmarks, _reduce


def inter_ocular_distance(landmarks: torch.Tensor, layout: Layout = LAYOUT_68) -> torch.Tensor:
    """Distance between the outer eye corners of ``layout`` (36 and 45 for 68 points).

    Args:
        landmarks: ``(B, N, 2)`` ground-truth landmarks.
    Returns:
        ``(B,)`` distances in the landmarks' pixel units.
    """
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2 or landmarks.shape[1] != layout.num_points:
        raise ValueError(f"landmarks must have shape (B, {layout.num_points}, 2) for layout "
                         f"{layout.name!r}, got {tuple(landmarks.shape)}")
    i, j = layout.outer_eye_corners
    return torch.linalg.vector_norm(landmarks[:, i] - landmarks[:, j], dim=-1)


def iod_l2_loss(pred: torch.Tensor, gt: torch.Tensor, iod: torch.Tensor | None = None,
                layout: Layout = LAYOUT_68, reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Eq. 1: squared error of the shape divided by the inter-ocular distance.

    Per image: ``||S_gt - S_pred||_2^2 / d = sum_n ((x_n - x*_n)^2 + (y_n - y*_n)^2) / d``.
    Note that Eq. 1 divides by ``d``, not ``d^2``: the loss is in pixels, and a face twice as
    large weighs twice as much (an image with ``d = 0`` raises, it cannot be normalised).

    Args:
        pred, gt: ``(B, N, 2)`` landmarks in pixels.
        iod: optional ``(B,)`` distances; by default computed from ``gt`` with ``layout``.
        layout: the layout that names the outer eye corners.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_points(pred, gt)
    d = inter_ocular_distance(gt, layout) if iod is None else iod
    if tuple(d.shape) != (pred.shape[0],):
        raise ValueError(f"iod must have shape (B,) = ({pred.shape[0]},), got {tuple(d.shape)}")
    if not torch.all(d > 0):
        raise ValueError(f"inter-ocular distance must be positive, got {d.detach().cpu().tolist()}")
    per_image = (pred - gt).pow(2).sum(dim=(-2, -1)) / d
    return _reduce(per_image, reduction)


def l2_loss(pred: torch.Tensor, gt: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Sec. 4.2, the "standard L2": squared Euclidean error of the shape.

    Per image: ``sum_n ((x_n - x*_n)^2 + (y_n - y*_n)^2)`` in pixels squared.

    Args:
        pred, gt: ``(B, N, 2)`` landmarks (any consistent unit).
    """
    _check_points(pred, gt)
    return _reduce((pred - gt).pow(2).sum(dim=(-2, -1)), reduction)


def l1_loss(pred: torch.Tensor, gt: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Sec. 4.2: L1 error of the shape, which weighs small errors more than L2.

    Per image: ``sum_n (|x_n - x*_n| + |y_n - y*_n|)``.

    Args:
        pred, gt: ``(B, N, 2)`` landmarks (any consistent unit).
    """
    _check_points(pred, gt)
    return _reduce((pred - gt).abs().sum(dim=(-2, -1)), reduction)


class CoordinateLoss(nn.Module):
    """``loss_fn(outputs, batch)``: a coordinate loss between ``codec.decode(outputs)`` and the
    landmarks, in input pixels.

    The comparison is in pixels because Yan et al.'s Eq. 1 is (it divides by the inter-ocular
    distance in pixels); for a ``CoordinateCodec`` this is the same as comparing the outputs with
    ``codec.encode(landmarks)`` with each axis scaled by half the image side. Any codec whose
    ``decode`` is differentiable fits, e.g. ``HeatmapCodec(..., method="soft_argmax")``
    (integral regression).

    Args:
        codec: the codec of the model's outputs (``lmk.codecs.CoordinateCodec`` for a
            regression head).
        kind: ``"iod_l2"`` (Yan Eq. 1), ``"l2"`` or ``"l1"``.
    """

    KINDS = {"iod_l2": iod_l2_loss, "l2": l2_loss, "l1": l1_loss}

    def __init__(self, codec, kind: str = "iod_l2"):
        super().__init__()
        if not callable(getattr(codec, "decode", None)):
            raise TypeError(f"codec must be a codec with a decode(outputs) method "
                            f"(e.g. lmk.codecs.CoordinateCodec), got {codec!r}")
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {tuple(self.KINDS)}, got {kind!r}")
        self.codec, self.kind = codec, kind

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        pred = self.codec.decode(outputs)
        return self.KINDS[self.kind](pred, _landmarks(batch).to(pred))
