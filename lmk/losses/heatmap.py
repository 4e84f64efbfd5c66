"""Heatmap losses: 2D heatmap MSE and Yin et al.'s (2020) loss on 1D marginal heatmaps.

The functions take the predicted and target maps; the ``loss_fn(outputs, batch)`` wrappers
(:class:`HeatmapLoss`, :class:`ForegroundHeatmapLoss`, :class:`MarginalLoss`) make the targets
on the fly as ``codec.encode(batch["landmarks"])`` with the codec of their representation
(``lmk.codecs``), so datasets never store heatmaps.
"""

from __future__ import annotations

import torch
from torch import nn

from .reduction import _check_pair, _check_weights, _encode, _reduce


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                reduction: str = "mean") -> torch.Tensor:
    """Mean squared error between 2D heatmaps (the usual heatmap-regression loss).

    Per image: ``mean over n, y, x of w_n * (H_n(x, y) - H*_n(x, y))^2``, so with the default
    ``reduction="mean"`` this equals ``torch.nn.functional.mse_loss`` when no weights are given.

    Args:
        pred: ``(B, N, H, W)`` predicted heatmaps.
        target: ``(B, N, H, W)`` target heatmaps (e.g. ``lmk.codecs.gaussian_heatmaps``).
        weights: optional ``(B, N)`` per-landmark weights (e.g. 0 for an invisible point).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_pair(pred, target, ("pred", "target"), 4, "(B, N, H, W)")
    w = _check_weights(weights, pred.shape[:2])
    per_landmark = (pred - target).pow(2).mean(dim=(-2, -1))          # (B, N)
    if w is not None:
        per_landmark = per_landmark * w
    return _reduce(per_landmark.mean(dim=1), reduction)


def marginal_loss(hx: torch.Tensor, hy: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor,
                  weights: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Yin et al. (2020), Eq. 11: squared L2 distance of the 1D heatmaps on both axes.

    Per image: ``sum_n w_n * (||h^x_n - h^x*_n||_2^2 + ||h^y_n - h^y*_n||_2^2)``, a *sum* over
    landmarks and positions exactly as in Eq. 11 (not a mean: its size grows with N and L, which
    Adam's per-parameter scaling largely absorbs). The targets are the marginals of the 2D
    Gaussian (Eq. 12, ``lmk.codecs.gaussian_marginals``).

    Args:
        hx, hy: ``(B, N, Lx)`` and ``(B, N, Ly)`` predicted 1D heatmaps on the x and y axes.
        tx, ty: targets of the same shapes.
        weights: optional ``(B, N)`` per-landmark weights.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_pair(hx, tx, ("hx", "tx"), 3, "(B, N, Lx)")
    _check_pair(hy, ty, ("hy", "ty"), 3, "(B, N, Ly)")
    if hx.shape[:-1] != hy.shape[:-1]:
        raise ValueError(f"hx and hy must share (B, N), got {tuple(hx.shape)} and {tuple(hy.shape)}")
    w = _check_weights(weights, hx.shape[:2])
    per_landmark = (hx - tx).pow(2).sum(dim=-1) + (hy - ty).pow(2).sum(dim=-1)   # (B, N)
    if w is not None:
        per_landmark = per_landmark * w
    return _reduce(per_landmark.sum(dim=1), reduction)


# ------------------------------------------------------- wrappers for lmk.train.fit
class HeatmapLoss(nn.Module):
    """``loss_fn(heatmaps, batch)``: :func:`heatmap_mse` against ``codec.encode(batch["landmarks"])``.

    Args:
        codec: a 2D heatmap codec (``lmk.codecs.HeatmapCodec``): ``encode`` maps ``(B, N, 2)``
            input-pixel landmarks to ``(B, N, H, W)`` heatmaps.
        scale: constant factor on the loss (heatmap MSE values are small; Adam does not mind).
    """

    def __init__(self, codec, scale: float = 1.0):
        super().__init__()
        self.codec, self.scale = codec, float(scale)

    def forward(self, heatmaps: torch.Tensor, batch: dict) -> torch.Tensor:
        target = _encode(self.codec, batch).to(heatmaps)
        return self.scale * heatmap_mse(heatmaps, target)


class ForegroundHeatmapLoss(nn.Module):
    """``loss_fn(heatmaps, batch)``: heatmap MSE with each pixel weighted by ``1 + w * target``.

    Against small Gaussians, plain MSE starts on a plateau: all-zero heatmaps already reach
    ~95 % of the initial loss, and a small model trained for a few minutes often never leaves it.
    Up-weighting the pixels under the Gaussians (``w = 20``) keeps the minimiser (the target
    itself) but makes the peaks matter from the first step.

    Args:
        codec: a 2D heatmap codec; the targets are ``codec.encode(batch["landmarks"])``.
        foreground_weight: ``w >= 0`` (0 gives plain MSE).
    """

    def __init__(self, codec, foreground_weight: float = 20.0):
        super().__init__()
        if foreground_weight < 0:
            raise ValueError(f"foreground_weight must be >= 0, got {foreground_weight!r}")
        self.codec, self.foreground_weight = codec, float(foreground_weight)

    def forward(self, heatmaps: torch.Tensor, batch: dict) -> torch.Tensor:
        target = _encode(self.codec, batch).to(heatmaps)
        if heatmaps.shape != target.shape:
            raise ValueError(f"heatmaps {tuple(heatmaps.shape)} and targets {tuple(target.shape)} "
                             "must have the same shape (B, N, H, W)")
        weight = 1.0 + self.foreground_weight * target
        return ((heatmaps - target).square() * weight).mean()


class MarginalLoss(nn.Module):
    """``loss_fn((hx, hy), batch)``: Yin Eq. 11 against the encoded marginals (Eq. 12).

    Args:
        codec: a 1D marginal codec (``lmk.codecs.MarginalCodec``): ``encode`` maps ``(B, N, 2)``
            input-pixel landmarks to the pair ``(hx, hy)``, the same pair the model returns.
    """

    def __init__(self, codec):
        super().__init__()
        self.codec = codec

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            raise ValueError(f"MarginalLoss takes the pair (hx, hy) of a 1D model, "
                             f"got {type(outputs).__name__}")
        hx, hy = outputs
        tx, ty = _encode(self.codec, batch)
        return marginal_loss(hx, hy, tx.to(hx), ty.to(hy))


class ClipMarginalLoss(nn.Module):
    """Yin's 1D heatmap loss over clips: ``(hx, hy)`` each ``(B, T, N, L)`` against ``(B, T, N, 2)``.

    Every frame of every clip counts once (the mean over ``B * T`` frames), so a clip of length
    1 is :class:`MarginalLoss` itself. Trains the temporal refinement of Yin et al. (2020),
    Eq. 13, whose outputs are the refined heatmaps of each frame of a clip.
    """

    def __init__(self, codec):
        super().__init__()
        self.loss = MarginalLoss(codec)

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        hx, hy = outputs
        points = batch["landmarks"]
        if hx.ndim != 4 or points.ndim != 4 or points.shape[:2] != hx.shape[:2]:
            raise ValueError(f"ClipMarginalLoss expects heatmaps (B, T, N, L) and landmarks (B, T, N, 2); "
                             f"got {tuple(hx.shape)} and {tuple(points.shape)}")
        return self.loss((hx.flatten(0, 1), hy.flatten(0, 1)), {"landmarks": points.flatten(0, 1)})
