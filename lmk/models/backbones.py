"""Backbones that return feature maps at several strides.

Both backbones return a dict ``{stride: (B, C_s, H / stride, W / stride)}`` for the strides
2, 4, 8, 16 and 32, so heads can pick the level they upsample from (Earp et al. (2021) use
stride 32) and CropNets can crop from finer levels (Yan et al. (2020), Sec. 3).

* :func:`mobilenet_v2`: MobileNetV2 (Sandler et al. 2018) with a width multiplier. Channel
  counts are rounded to multiples of 8 as in the reference implementation, so
  ``mobilenet_v2(1.0, num_classes=1000)`` has exactly 3,504,872 parameters.
* :func:`resnet`: ResNet-18/50 (He et al. 2016) with a channel ratio; Yan et al. (2020) use
  25 % of the channels for their coordinate-regression baseline.

Feature maps are in the same pixel convention as the image: with stride ``s`` the centre of
feature pixel ``i`` sits over image coordinate ``(i + 0.5) * s - 0.5``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .layers import check_image as _check_image, make_divisible
from .mobilenet_v3 import MobileNetV3

STRIDES = (2, 4, 8, 16, 32)

# (expansion t, output channels c, repeats n, stride s) of each stage, Sandler et al. Table 2.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 relu6: bool = True) -> nn.Sequential:
    """Convolution (no bias, 'same' padding) + BatchNorm + ReLU6 (or ReLU)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True) if relu6 else nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, skip if shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = int(round(cin * expansion))
        layers = [] if expansion == 1 else [conv_bn_relu(cin, hidden, 1)]
        layers += [conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_skip else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor with an optional ImageNet-style classifier.

    Args:
        width_mult: width multiplier alpha (Earp et al. (2021) use 0.25 and 1.0).
        num_classes: if given, add the 1x1 conv to ``last_channels`` (1280), global pooling,
            dropout and a linear classifier, as in the reference model (for parameter checks).
        in_channels: image channels.

    ``forward(x)`` returns ``{2: ..., 4: ..., 8: ..., 16: ..., 32: ...}`` (the outputs of the
    last block at each stride); with a classifier, ``classify(x)`` returns ``(B, num_classes)``.
    The stride-32 features are the last inverted residual (320 alpha channels), not the
    1280-channel conv: Earp's cost tables fit that choice (see ``lmk.models.earp_tables``).
    """

    def __init__(self, width_mult: float = 1.0, num_classes: int | None = None,
                 in_channels: int = 3):
        super().__init__()
        if not isinstance(width_mult, (int, float)) or not width_mult > 0:
            raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
        self.width_mult = float(width_mult)
        cin = make_divisible(32 * width_mult)
        self.stem = conv_bn_relu(in_channels, cin, 3, 2)
        self.stages = nn.ModuleList()
        self.stage_strides: list[int] = []
        stride = 2
        for t, c, n, s in MOBILENET_V2_STAGES:
            cout = make_divisible(c * width_mult)
            blocks = [InvertedResidual(cin if i == 0 else cout, cout, s if i == 0 else 1, t)
                      for i in range(n)]
            self.stages.append(nn.Sequential(*blocks))
            stride *= s
            self.stage_strides.append(stride)
            cin = cout
        # the last stage at each stride is the one whose output we return
        self.feature_stage = {st: i for i, st in enumerate(self.stage_strides)}
        self.feature_channels = {
            st: self.stages[i][-1].conv[-1].num_features for st, i in self.feature_stage.items()}
        self.num_classes = num_classes
        if num_classes is not None:
            self.last_channels = make_divisible(1280 * max(1.0, width_mult))
            self.last_conv = conv_bn_relu(cin, self.last_channels, 1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channels, num_classes))

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        _check_image(x)
        x = self.stem(x)
        features = {}
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if self.feature_stage[self.stage_strides[i]] == i:
                features[self.stage_strides[i]] = x
        return features

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet-style logits ``(B, num_classes)``; needs ``num_classes``."""
        if self.num_classes is None:
            raise RuntimeError("this MobileNetV2 was built without a classifier (num_classes=None)")
        x = self.last_conv(self.forward(x)[32])
        return self.classifier(x.mean((2, 3)))


def mobilenet_v2(width_mult: float = 1.0, num_classes: int | None = None,
                 in_channels: int = 3) -> MobileNetV2:
    """MobileNetV2 with width multiplier ``width_mult``; see :class:`MobileNetV2`."""
    return MobileNetV2(width_mult, num_classes, in_channels)


# ----------------------------------------------------------------------------------- ResNet

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        return (self.body(x) + self.shortcut(x)).relu_()


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        return (self.body(x) + self.shortcut(x)).relu_()


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


RESNET_LAYOUTS = {18: (BasicBlock, (2, 2, 2, 2)), 50: (Bottleneck, (3, 4, 6, 3))}


class ResNet(nn.Module):
    """ResNet-18/50 feature extractor whose widths are scaled by ``channel_ratio``.

    Stride 2 is the stem convolution, stride 4 the first residual stage (after max pooling),
    strides 8, 16, 32 the later stages. ``forward`` returns ``{stride: features}``; with
    ``num_classes`` the reference classifier is added (``classify``), and at ratio 1.0 the
    parameter counts equal the reference ResNet-18 (11,689,512) and ResNet-50 (25,557,032).
    """

    def __init__(self, depth: int = 18, channel_ratio: float = 1.0, num_classes: int | None = None,
                 in_channels: int = 3):
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ValueError(f"depth must be one of {sorted(RESNET_LAYOUTS)}, got {depth!r}")
        if not isinstance(channel_ratio, (int, float)) or not 0 < channel_ratio <= 4:
            raise ValueError(f"channel_ratio must be in (0, 4], got {channel_ratio!r}")
        block, repeats = RESNET_LAYOUTS[depth]
        widths = [max(1, int(round(w * channel_ratio))) for w in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList()
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, repeats)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(cin, w, stride if j == 0 else 1))
                cin = w * block.expansion
            self.stages.append(nn.Sequential(*blocks))
        self.feature_channels = {2: widths[0], 4: widths[0] * block.expansion,
                                 8: widths[1] * block.expansion, 16: widths[2] * block.expansion,
                                 32: widths[3] * block.expansion}
        self.num_classes = num_classes
        if num_classes is not None:
            self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        _check_image(x)
        x = self.stem(x)
        features = {2: x}
        x = self.pool(x)
        for stride, stage in zip((4, 8, 16, 32), self.stages):
            x = stage(x)
            features[stride] = x
        return features

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet-style logits ``(B, num_classes)``; needs ``num_classes``."""
        if self.num_classes is None:
            raise RuntimeError("this ResNet was built without a classifier (num_classes=None)")
        return self.fc(self.forward(x)[32].mean((2, 3)))


def resnet(depth: int = 18, channel_ratio: float = 1.0, num_classes: int | None = None,
           in_channels: int = 3) -> ResNet:
    """ResNet-``depth`` (18 or 50) with widths scaled by ``channel_ratio``; see :class:`ResNet`."""
    return ResNet(depth, channel_ratio, num_classes, in_channels)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """``"mobilenet_v2"`` (kwarg ``width_mult``), ``"resnet18"`` or ``"resnet50"`` (``channel_ratio``),
    ``"mobilenet_v3_small"`` or ``"mobilenet_v3_large"`` (:class:`lmk.models.MobileNetV3`'s kwargs)."""
    if name == "mobilenet_v2":
        return mobilenet_v2(**kwargs)
    if name in ("resnet18", "resnet50"):
        return resnet(int(name[6:]), **kwargs)
    if name in ("mobilenet_v3_small", "mobilenet_v3_large"):
        return MobileNetV3(name[len("mobilenet_v3_"):], **kwargs)
    raise ValueError(f"backbone must be 'mobilenet_v2', 'resnet18', 'resnet50', 'mobilenet_v3_small' "
                     f"or 'mobilenet_v3_large', got {name!r}")
