"""Earp et al. (2021): MobileNetV2 + S/D upsampling head, images -> 2D heatmaps (Secs. 4.1-4.3).

Baseline (Sec. 4.1): MobileNetV2 with width 0.25, a 192 x 192 input, four D blocks of 256
filters from the stride-32 features (6 x 6) up to 96 x 96 heatmaps (stride 2). The final
models (Sec. 4.3, Table 4) use width 1.0, 128 filters and three blocks, e.g. ``"SDD"``.

Heatmap pixel ``(i, j)`` of a model with output stride ``s`` covers input pixels around
``((i + 0.5) s - 0.5, (j + 0.5) s - 0.5)``: decode with ``lmk.codecs`` and map back with
``lmk.geometry.rescale_points(points, s)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import build_backbone
from .heads import UpsampleHead, check_strategy


def _size_pair(size, name: str) -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{name} must be a positive int or an (H, W) pair of ints, got {size!r}")
    return pair


class HeatmapModel(nn.Module):
    """Images ``(B, 3, H, W)`` -> heatmaps ``(B, N, H / stride, W / stride)``.

    Args:
        width_mult: MobileNetV2 width multiplier (0.25, 0.5, 1.0).
        strategy: upsampling blocks, e.g. ``"DDDD"``, ``"SDSD"``, ``"SDD"`` (see ``UpsampleHead``).
        filters: filters of each upsampling block.
        num_landmarks: ``N``.
        backbone: ``"mobilenet_v2"`` (default), ``"resnet18"`` or ``"resnet50"`` (Earp Table 5-6).
        channel_ratio: ResNet width ratio (ignored for MobileNetV2).
        output_size: optional heatmap size ``(H, W)`` (or int); the head's output is resized to it
            bilinearly (pixel-centre aligned). Used to compare 2D heatmaps at a resolution ``L``
            that is not ``H / 2**k`` (Yin et al. (2020), Table 1).

    Attributes:
        stride: input pixels per heatmap pixel, ``32 / 2**len(strategy)`` (without ``output_size``).
    """

    def __init__(self, width_mult: float = 0.25, strategy: str = "DDDD", filters: int = 256,
                 num_landmarks: int = 68, *, backbone: str = "mobilenet_v2",
                 channel_ratio: float = 1.0, output_size=None):
        super().__init__()
        strategy = check_strategy(strategy)
        if backbone == "mobilenet_v2":
            self.backbone = build_backbone(backbone, width_mult=width_mult)
        else:
            self.backbone = build_backbone(backbone, channel_ratio=channel_ratio)
        self.head = UpsampleHead(self.backbone.feature_channels[32], strategy, filters, num_landmarks)
        self.output_size = _size_pair(output_size, "output_size")
        self.strategy, self.num_landmarks = strategy, num_landmarks
        self.stride = 32 / 2 ** len(strategy)

    def forward(self, images: Tensor) -> Tensor:
        heatmaps = self.head(self.backbone(images)[32])
        if self.output_size is not None and tuple(heatmaps.shape[-2:]) != self.output_size:
            heatmaps = F.interpolate(heatmaps, size=self.output_size, mode="bilinear",
                                     align_corners=False)
        return heatmaps

    def heatmap_size(self, input_size) -> tuple[int, int]:
        """Heatmap ``(H, W)`` produced for an input of ``input_size`` ``(H, W)`` (or int)."""
        if self.output_size is not None:
            return self.output_size
        h, w = _size_pair(input_size, "input_size")
        return int(h / self.stride), int(w / self.stride)
