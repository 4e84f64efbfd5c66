"""FFLD: coordinate regression refined by CropNets on intermediate feature maps.

Yan et al. (2020), Sec. 3 and Table 7. A reduced-channel ResNet regresses all landmarks from
its pooled last feature map (the baseline ``S0``, Sec. 3.1). Each refinement stage ``k`` then

1. maps the current estimate from input pixels to its feature level (stride ``s``) with
   :func:`lmk.geometry.rescale_points`, the project's one resolution mapping;
2. crops an ``8 x 8`` bilinear patch around every landmark from that level
   (:func:`lmk.ops.crop_patches`, whose gradients reach both the feature map and the crop
   location, Sec. 5);
3. selects 4 channels per landmark with a linear 1x1 convolution (one per landmark:
   ``C N -> 4 N`` channels as a grouped convolution, Sec. 3.2 "Channel selection");
4. runs a CropNet (Table 7: batch norm, a ResNet basic block to 128 channels, max-pooling
   over the patch, a fully connected layer to ``2 N``) that predicts a correction ``dS_k``;
5. adds it: ``S_k = S_{k-1} + s * dS_k``. The CropNet predicts in pixels of its own level
   (the patch's unit), so ``s * dS_k`` is the shift in input pixels.

The CropNet's last layer starts at zero, so a new stage starts as the identity and only
learns to move the estimate.

Which levels. Yan crop stage 1's patches from "the 3rd-level feature maps", 28 x 28 with
32 N channels before selection for a 224 x 224 input and a 25 % ResNet-18 (Sec. 3.2): that is
stride 8 (the second residual stage, 128 x 0.25 = 32 channels). The 2nd and 1st levels
are then strides 4 and 2 (the stem). So ``strides=(8, 4, 2)``; another choice (say
``(16, 8, 4)``) is one argument away.

Gradient paths (Table 6). ``grad_features=False`` stops the gradient from the patches to the
feature maps (``nabla_low_level``, Eq. 9). ``grad_centers=False`` stops ``nabla_crop_location``:
Yan's Eqs. 10 and 16 route all of ``dL_k / dS_{k-1}``, the crop location term and the ``1``
of the residual sum alike, back into the network, so the flag detaches the estimate a stage
starts from; a stage's loss then trains that stage and nothing before it through ``S_{k-1}``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._backend import check_positive_int
from ..geometry import rescale_points
from ..ops import crop_patches
from .backbones import BasicBlock
from .regression import RegressionModel


class CropNet(nn.Module):
    """Yan Table 7: ``(B, 4N, P, P)`` selected patches -> ``(B, N, 2)`` corrections.

    Batch norm, a ResNet basic block to ``width`` channels, max-pooling over the whole patch
    (Table 7's stride 8 on an 8 x 8 patch), and a fully connected layer to ``2 N`` whose weights
    and bias start at zero.
    """

    def __init__(self, num_landmarks: int, in_channels: int, width: int = 128):
        super().__init__()
        self.num_landmarks = num_landmarks
        self.norm = nn.BatchNorm2d(in_channels)
        self.block = BasicBlock(in_channels, width, 1)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(width, 2 * num_landmarks)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.block(self.norm(x))).flatten(1)
        return self.fc(x).view(-1, self.num_landmarks, 2)


class CropStage(nn.Module):
    """One refinement stage: crop at the estimate, select channels, CropNet, add the correction.

    Args:
        num_landmarks: ``N``.
        feature_channels: channels ``C`` of the level the stage crops from.
        stride: that level's stride.
        patch_size: side of the crops (Yan: 8).
        selected: channels kept per landmark (Yan: 4).
        width: CropNet block width (Yan: 128).
    """

    def __init__(self, num_landmarks: int, feature_channels: int, stride: int, patch_size: int = 8,
                 selected: int = 4, width: int = 128):
        super().__init__()
        self.num_landmarks, self.stride, self.patch_size = num_landmarks, stride, patch_size
        self.select = nn.Conv2d(num_landmarks * feature_channels, num_landmarks * selected, 1,
                                groups=num_landmarks, bias=False)
        self.cropnet = CropNet(num_landmarks, num_landmarks * selected, width)

    def forward(self, features: Tensor, estimate: Tensor, grad_features: bool = True,
                grad_centers: bool = True) -> Tensor:
        """``features (B, C, H/s, W/s)``, ``estimate (B, N, 2)`` in input pixels -> refined."""
        if not grad_centers:
            estimate = estimate.detach()
        centers = rescale_points(estimate, 1.0 / self.stride)             # level pixels
        patches = crop_patches(features, centers, self.patch_size, grad_features=grad_features,
                               grad_centers=grad_centers)                 # (B, N, C, P, P)
        b, n, c, p, _ = patches.shape
        selected = self.select(patches.reshape(b, n * c, p, p))           # (B, 4N, P, P)
        return estimate + self.stride * self.cropnet(selected)


class FFLD(nn.Module):
    """Images ``(B, 3, H, W)`` -> list of estimates ``[S0, S1, ..., S_stages]``, each
    ``(B, N, 2)`` in input pixels (pixel centres at integers), ``S0`` the baseline.

    Args:
        num_landmarks: ``N``.
        stages: refinement stages to build, 0 to ``len(strides)`` (Yan: 3).
        backbone: ``"resnet18"`` or ``"resnet50"`` (or ``"mobilenet_v2"``).
        channel_ratio: ResNet channel ratio (Yan: 0.25).
        width_mult: MobileNetV2 width multiplier, if that backbone is used.
        strides: feature level of each stage, coarse to fine (see the module docstring).
        patch_size, selected, width: crop side, channels per landmark, CropNet width.
        init_points: optional ``(N, 2)`` baseline output at initialisation, in the normalised
            coordinates of :class:`lmk.codecs.CoordinateCodec` (``-1`` and ``+1`` the image
            edges), e.g. the encoded mean shape; by default every landmark starts at the centre.
        grad_features, grad_centers: the gradient paths of Yan's Table 6; attributes, so
            they can be changed between runs.
        return_features: return ``{"points": [S0, ...], "features": [None, F_1, ...]}``, with
            ``F_k`` the ``(B, C, H/s, W/s)`` map stage ``k`` crops from, instead of the list
            (what :class:`lmk.losses.StagedLoss` needs for an Align Loss stage).
    """

    def __init__(self, num_landmarks: int = 68, *, stages: int = 3, backbone: str = "resnet18",
                 channel_ratio: float = 0.25, width_mult: float = 1.0,
                 strides: tuple[int, ...] = (8, 4, 2), patch_size: int = 8, selected: int = 4,
                 width: int = 128, init_points=None, grad_features: bool = True,
                 grad_centers: bool = True, return_features: bool = False):
        super().__init__()
        num_landmarks = check_positive_int(num_landmarks, "num_landmarks")
        strides = tuple(strides)
        if isinstance(stages, bool) or not isinstance(stages, int) \
                or not 0 <= stages <= len(strides):
            raise ValueError(f"stages must be an int from 0 to len(strides) = {len(strides)}, "
                             f"got {stages!r}")
        self.baseline = RegressionModel(num_landmarks, backbone=backbone, width_mult=width_mult,
                                        channel_ratio=channel_ratio, init_points=init_points)
        levels = self.baseline.backbone.feature_channels
        if any(s not in levels for s in strides[:stages]):
            raise ValueError(f"strides must be backbone levels {sorted(levels)}, "
                             f"got {list(strides)}")
        self.stages = nn.ModuleList(
            CropStage(num_landmarks, levels[s], s, check_positive_int(patch_size, "patch_size"),
                      check_positive_int(selected, "selected"), check_positive_int(width, "width"))
            for s in strides[:stages])
        self.num_landmarks = num_landmarks
        self.grad_features, self.grad_centers = bool(grad_features), bool(grad_centers)
        self.return_features = bool(return_features)

    def forward(self, images: Tensor) -> list[Tensor] | dict:
        features = self.baseline.backbone(images)
        pooled = features[32].mean(dim=(2, 3))                              # as RegressionModel
        normalised = self.baseline.init_points + self.baseline.fc(pooled).view(
            -1, self.num_landmarks, 2)
        h, w = images.shape[-2:]
        # normalised u -> input pixels, the CoordinateCodec convention: x = (u + 1) W / 2 - 0.5
        estimate = rescale_points(normalised + 0.5, (w / 2.0, h / 2.0))
        estimates = [estimate]
        for stage in self.stages:
            estimate = stage(features[stage.stride], estimate, self.grad_features,
                             self.grad_centers)
            estimates.append(estimate)
        if self.return_features:
            return {"points": estimates,
                    "features": [None] + [features[stage.stride] for stage in self.stages]}
        return estimates
