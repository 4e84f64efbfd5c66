"""Mahpod et al.'s (2018) training loss for the CCNN: heatmaps and refined coordinates together.

Sec. 3: BaseCNN_2's first heatmaps ``H_0`` and every heatmap unit's ``H_k`` are trained with an
L2 loss against narrow Gaussians (sigma 1.3 heatmap cells, Sec. 4), and every regression unit's
refined estimate ``P_k = P^_k + dP_k`` (Eq. 1) with an L2 loss on the coordinates.
"""

from __future__ import annotations

import torch
from torch import nn

from ..geometry import resize_points
from .reduction import _encode, _landmarks


class CascadeLoss(nn.Module):
    """``loss_fn(outputs, batch)`` for :class:`lmk.models.CCNN` outputs.

    ``total = sum_{k=0..K} heatmap(H_k) + coordinate_weight * sum_{k=1..K} coord(P_k)`` with

    * ``heatmap``: the mean over pixels of ``(1 + w T) (H - T)^2`` against the codec's targets
      ``T`` (:class:`lmk.losses.ForegroundHeatmapLoss`; ``w = 0`` is Mahpod's plain L2, the
      course's default ``w = 20`` keeps small networks off the all-zero plateau);
    * ``coord``: the mean squared coordinate error in *heatmap cells*, the unit the regression
      units predict their residuals in (Eq. 1), so the two terms have comparable sizes (Mahpod
      give no weights).

    Args:
        codec: the :class:`lmk.codecs.HeatmapCodec` of the heatmaps (1/4 resolution, sigma 1.3).
        coordinate_weight: factor on the coordinate terms.
        foreground_weight: ``w`` above.
    """

    def __init__(self, codec, coordinate_weight: float = 1.0, foreground_weight: float = 20.0):
        super().__init__()
        if not coordinate_weight >= 0 or not foreground_weight >= 0:
            raise ValueError(f"coordinate_weight and foreground_weight must be >= 0, got "
                             f"{coordinate_weight!r} and {foreground_weight!r}")
        self.codec = codec
        self.coordinate_weight, self.foreground_weight = float(coordinate_weight), float(foreground_weight)

    def terms(self, outputs: dict, batch: dict) -> dict:
        """``{"heatmaps": [H_0, H_1, ...] losses, "coordinates": [P_1, ...] losses}``."""
        missing = {"base_heatmaps", "heatmaps", "coordinates"} - set(outputs)
        if missing:
            raise KeyError(f"CascadeLoss needs CCNN outputs; missing {sorted(missing)}")
        maps = [outputs["base_heatmaps"], *outputs["heatmaps"]]
        target = _encode(self.codec, batch).to(maps[0])
        if maps[0].shape != target.shape:
            raise ValueError(f"heatmaps {tuple(maps[0].shape)} and targets {tuple(target.shape)} "
                             "must have the same shape (B, N, H, W): check the codec's heatmap size")
        weight = 1.0 + self.foreground_weight * target
        heat = [((h - target).square() * weight).mean() for h in maps]
        gt = _landmarks(batch).to(maps[0])
        size_in, size_map = self.codec.input_size, self.codec.heatmap_size
        cells = resize_points(gt, size_in, size_map)
        coords = [(resize_points(p, size_in, size_map) - cells).square().mean()
                  for p in outputs["coordinates"]]
        return {"heatmaps": heat, "coordinates": coords}

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        t = self.terms(outputs, batch)
        return sum(t["heatmaps"]) + self.coordinate_weight * sum(t["coordinates"])
