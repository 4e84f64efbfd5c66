"""Direct coordinate regression: backbone, global average pooling, fully connected layer.

The third baseline next to 2D and 1D heatmaps, and the starting point of Yan et al. (2020)
(ResNet with 25 % of the channels, Sec. 3). The output is ``(B, N, 2)`` in whatever coordinates
the targets use; with ``lmk.codecs.CoordinateCodec`` they are normalised image coordinates,
so the initial output (zero-initialised layer plus ``init_points``) is a sensible mean shape.
Global pooling discards the spatial layout the heatmap models keep (Earp et al. (2021), Sec. 2.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._backend import check_positive_int
from .backbones import build_backbone


class RegressionModel(nn.Module):
    """Images ``(B, 3, H, W)`` -> coordinates ``(B, N, 2)``.

    Args:
        num_landmarks: ``N``.
        backbone: ``"mobilenet_v2"``, ``"resnet18"`` or ``"resnet50"``.
        width_mult: MobileNetV2 width multiplier.
        channel_ratio: ResNet channel ratio (Yan et al. (2020) use 0.25).
        hidden: optional hidden FC width (with ReLU) before the output layer.
        init_points: optional ``(N, 2)`` initial output (e.g. the mean shape in target units); the
            output layer starts at zero, so the untrained model predicts exactly these points.
    """

    def __init__(self, num_landmarks: int = 68, *, backbone: str = "resnet18", width_mult: float = 1.0,
                 channel_ratio: float = 0.25, hidden: int | None = None, init_points=None):
        super().__init__()
        num_landmarks = check_positive_int(num_landmarks, "num_landmarks")
        hidden = None if hidden is None else check_positive_int(hidden, "hidden")
        if backbone == "mobilenet_v2":
            self.backbone = build_backbone(backbone, width_mult=width_mult)
        else:
            self.backbone = build_backbone(backbone, channel_ratio=channel_ratio)
        cin = self.backbone.feature_channels[32]
        layers: list[nn.Module] = []
        if hidden is not None:
            layers += [nn.Linear(cin, hidden), nn.ReLU(inplace=True)]
            cin = hidden
        out = nn.Linear(cin, 2 * num_landmarks)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.fc = nn.Sequential(*layers, out)
        init = torch.zeros(num_landmarks, 2) if init_points is None else torch.as_tensor(
            init_points, dtype=torch.float32)
        if tuple(init.shape) != (num_landmarks, 2):
            raise ValueError(f"init_points must have shape (N, 2) = ({num_landmarks}, 2), "
                             f"got {tuple(init.shape)}")
        self.register_buffer("init_points", init.clone())
        self.num_landmarks = num_landmarks

    def forward(self, images: Tensor) -> Tensor:
        pooled = self.backbone(images)[32].mean(dim=(2, 3))           # (B, C)
        offsets = self.fc(pooled).view(-1, self.num_landmarks, 2)
        return self.init_points + offsets
