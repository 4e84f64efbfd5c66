"""Earp et al. (2021): MobileNetV2 + S/D upsampling head, images -> 2D heatmaps (Secs. 4.1-4.3).

Baseline (Sec. 4.1): MobileNetV2 with width 0.25, a 192 x 192 input, four D blocks of 256
filters from the stride-32 features (6 x 6) up to 96 x 96 heatmaps (stride 2). The final
models (Sec. 4.3, Table 4) use width 1.0, 128 filters and three blocks, e.g. ``"SDD"``.

Heatmap pixel ``(i, j)`` of a model with output stride ``s`` covers input pixels around
``((i + 0.5) s - 0.5, (j + 0.5) s - 0.5)``: decode with ``lmk.codecs`` and map back with
``lmk.geometry.rescale_points(points, s)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._backend import check_size
from .backbones import build_backbone
from .heads import UpsampleHead, check_strategy


def _size_pair(size, name: str) -> tuple[int, int] | None:
    return None if size is None else check_size(size, name)


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

    Initialisation (for training from scratch): the final 1x1 convolution starts near zero
    (weights N(0, 0.001^2), bias 0), so the first heatmaps are ~0 instead of values of +-3 that
    the first steps must undo; and the last BatchNorm of every MobileNetV2 block with a skip
    connection starts with gamma = 0 (Goyal et al. 2017), so each such block starts as the
    identity. Neither changes the architecture or its cost.

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
        self._init_for_training()

    def _init_for_training(self) -> None:
        last = self.head.to_heatmaps
        nn.init.normal_(last.weight, std=1e-3)
        nn.init.zeros_(last.bias)
        for block in self.backbone.modules():
            if getattr(block, "use_skip", False):
                norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
                nn.init.zeros_(norms[-1].weight)

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


def unflip_heatmaps(heatmaps: Tensor, flip_perm) -> Tensor:
    """Map heatmaps predicted on a mirrored image back to the original image.

    Mirroring maps input pixel ``x -> W_in - 1 - x`` and, since heatmap pixel ``i`` sits over
    input ``(i + 0.5) s - 0.5``, heatmap pixel ``i -> W - 1 - i``: reversing the last axis is
    exact, with no half-pixel shift. Channel ``j`` of the result is channel ``flip_perm[j]`` of
    the mirrored prediction (the left eye of the mirror image is the right eye of the original;
    ``flip_perm`` is an involution).

    Args:
        heatmaps: ``(B, N, H, W)`` predicted on ``images.flip(-1)``.
        flip_perm: ``(N,)`` the layout's flip permutation.
    """
    perm = torch.as_tensor(flip_perm, dtype=torch.long, device=heatmaps.device)
    if heatmaps.ndim != 4 or perm.shape != (heatmaps.shape[1],):
        raise ValueError(f"heatmaps must be (B, N, H, W) with N = len(flip_perm) = {len(perm)}, "
                         f"got {tuple(heatmaps.shape)}")
    return heatmaps.flip(-1)[:, perm]


def flip_test_heatmaps(model: nn.Module, images: Tensor, flip_perm) -> Tensor:
    """Flip test-time averaging (Earp et al. (2021), Sec. 5.1): mean of the heatmaps of the image
    and of its mirror image mapped back (:func:`unflip_heatmaps`). ``(B, 3, H, W) -> (B, N, h, w)``."""
    both = model(torch.cat([images, images.flip(-1)]))        # one batch, as Earp do
    direct, mirrored = both.chunk(2)
    return 0.5 * (direct + unflip_heatmaps(mirrored, flip_perm))


class FlipAveraged(nn.Module):
    """Wrap a heatmap model so that ``forward`` returns :func:`flip_test_heatmaps` (for evaluation)."""

    def __init__(self, model: nn.Module, flip_perm):
        super().__init__()
        self.model = model
        self.register_buffer("flip_perm", torch.as_tensor(flip_perm, dtype=torch.long))

    def forward(self, images: Tensor) -> Tensor:
        return flip_test_heatmaps(self.model, images, self.flip_perm)
