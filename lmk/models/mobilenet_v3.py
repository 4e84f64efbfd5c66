"""MobileNetV3 (Howard et al. 2019): squeeze-excitation, hard-swish, and the Small/Large backbones.

The block ("bneck", Howard Fig. 4) is MobileNetV2's inverted residual with two additions::

    x --1x1 expand--> E ch --k x k depthwise, stride s--> [SE] --1x1 linear project--> C_out (+ x)
         BN, act           BN, act                                 BN

* **Squeeze-excitation** (SE, Sec. 5.3): global average pool, 1x1 conv to ``E / 4`` (rounded
  to a multiple of 8), ReLU, 1x1 conv back to ``E``, hard-sigmoid; the depthwise output is
  multiplied by those ``E`` gates, one per channel.
* **Hard-swish** (Sec. 5.2): ``h-swish(x) = x * ReLU6(x + 3) / 6`` (``nn.Hardswish``), a
  piecewise-polynomial stand-in for ``x * sigmoid(x)``, used in the deeper layers ("HS" in
  the tables) and ReLU ("RE") in the early ones. The SE gate uses
  ``h-sigmoid(x) = ReLU6(x + 3) / 6`` (``nn.Hardsigmoid``).
* The expansion conv is left out when ``E == C_in`` (Large's first block), the skip is used
  when the stride is 1 and ``C_in == C_out``.

The layer tables are Howard Tables 1 (Large) and 2 (Small), one row per bneck:
``(kernel, expansion E, output C, SE, nonlinearity, stride)``. A width multiplier scales
every ``E`` and ``C`` (and the stem), rounded to multiples of 8 like MobileNetV2
(:func:`lmk.models.layers.make_divisible`). With the classifier (``num_classes``:
1x1 conv to ``6 C_last``, pooling, a 1024/1280-wide hidden layer with hard-swish, dropout,
linear) the parameter counts are the reference implementation's exactly (Small 2,542,856,
Large 5,483,032) and the multiply-accumulates at 224 px (56.5 M, 216.6 M) are within 2 % of
Howard Table 3's (56 M, 219 M).

Like :mod:`lmk.models.backbones`, ``forward`` returns ``{stride: features}``, the output of
the last layer at each stride. ``first_block_stride=1`` keeps the first stride-2 bneck at
stride 1, so every later map is twice as large as usual: a 112 px crop then gives the
28 x 28, 14 x 14 and 7 x 7 maps that MobileNetV3-Small gives at 224 px (Xia et al. (2022),
Fig. 2; see :mod:`lmk.models.atpn`).
"""

from __future__ import annotations

from torch import Tensor, nn

from .._backend import check_positive_int
from .layers import check_image as _check_image, make_divisible

# (kernel, expansion E, output C, SE, nonlinearity, stride): Howard et al. (2019), Table 2.
MOBILENET_V3_SMALL = (
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
)

# Howard et al. (2019), Table 1.
MOBILENET_V3_LARGE = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)

ARCHITECTURES = {"small": (MOBILENET_V3_SMALL, 1024), "large": (MOBILENET_V3_LARGE, 1280)}
ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}


def conv_bn_act(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                activation: str | None = "RE") -> nn.Sequential:
    """Convolution (no bias, 'same' padding) + BatchNorm + ``"RE"`` (ReLU), ``"HS"`` or none."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if activation is not None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None, "
                             f"got {activation!r}")
        layers.append(ACTIVATIONS[activation](inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gates from global context (Howard Sec. 5.3): ``(B, C, H, W)`` -> same shape.

    ``x * h-sigmoid(W2 ReLU(W1 mean_hw(x)))`` with ``W1: C -> squeeze``, ``W2: squeeze -> C``
    (1x1 convolutions with bias); ``squeeze`` defaults to ``C / 4`` rounded to a multiple of 8.
    """

    def __init__(self, channels: int, squeeze: int | None = None):
        super().__init__()
        channels = check_positive_int(channels, "channels")
        squeeze = make_divisible(channels / 4) if squeeze is None else check_positive_int(
            squeeze, "squeeze")
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeeze, 1), nn.ReLU(inplace=True),
            nn.Conv2d(squeeze, channels, 1), nn.Hardsigmoid(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class Bneck(nn.Module):
    """MobileNetV3 block: ``(B, C_in, H, W)`` -> ``(B, C_out, H / stride, W / stride)``.

    Args:
        cin, cout: input and output channels.
        kernel: depthwise kernel (3 or 5 in the tables; any odd size works).
        expansion: channels ``E`` of the expanded (depthwise) layer.
        se: use squeeze-excitation on the depthwise output.
        activation: ``"RE"`` (ReLU) or ``"HS"`` (hard-swish).
        stride: 1 or 2.
    """

    def __init__(self, cin: int, kernel: int, expansion: int, cout: int, se: bool,
                 activation: str, stride: int):
        super().__init__()
        cin, expansion, cout = (check_positive_int(v, n) for v, n in
                                ((cin, "cin"), (expansion, "expansion"), (cout, "cout")))
        if check_positive_int(kernel, "kernel") % 2 == 0:
            raise ValueError(f"kernel must be odd ('same' padding), got {kernel!r}")
        if stride not in (1, 2) or isinstance(stride, bool):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        layers = [] if expansion == cin else [conv_bn_act(cin, expansion, 1, activation=activation)]
        layers.append(conv_bn_act(expansion, expansion, kernel, stride, groups=expansion,
                                  activation=activation))
        if se:
            layers.append(SqueezeExcitation(expansion))
        layers.append(conv_bn_act(expansion, cout, 1, activation=None))
        self.body = nn.Sequential(*layers)
        self.use_skip = stride == 1 and cin == cout
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x) if self.use_skip else self.body(x)


def build_bnecks(table, cin: int, width_mult: float = 1.0, first_stride: int | None = None):
    """``nn.Sequential`` of :class:`Bneck` from table rows, widths scaled by ``width_mult``.

    Args:
        table: rows ``(kernel, expansion, out, se, activation, stride)``.
        cin: input channels of the first block (already scaled).
        first_stride: if given, replaces the stride of the first row.
    Returns:
        ``(blocks, out_channels)``.
    """
    blocks = []
    for i, (k, e, c, se, act, s) in enumerate(table):
        cout = make_divisible(c * width_mult)
        stride = first_stride if i == 0 and first_stride is not None else s
        blocks.append(Bneck(cin, k, make_divisible(e * width_mult), cout, se, act, stride))
        cin = cout
    return nn.Sequential(*blocks), cin


def _check_width(width_mult) -> float:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) \
            or not width_mult > 0:
        raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
    return float(width_mult)


class MobileNetV3(nn.Module):
    """MobileNetV3 feature extractor, with an optional ImageNet-style classifier.

    Args:
        arch: ``"small"`` (Howard Table 2) or ``"large"`` (Table 1).
        width_mult: width multiplier.
        num_classes: if given, add the reference classifier (for parameter checks, ``classify``).
        in_channels: image channels.
        first_block_stride: stride of the first bneck whose table stride is 2 (default 2, the
            table's; 1 doubles the size of every later map; see the module docstring).
        num_blocks: keep only the first ``num_blocks`` bnecks (default: all); the model then
            ends at the stride of its last kept block.

    ``forward(x)`` with ``x`` ``(B, C, H, W)``, ``H`` and ``W`` multiples of the deepest stride,
    returns ``{stride: (B, C_s, H / stride, W / stride)}`` for every stride reached (the stem
    is stride 2). ``feature_channels`` maps stride to ``C_s``.
    """

    def __init__(self, arch: str = "small", width_mult: float = 1.0, num_classes: int | None = None,
                 in_channels: int = 3, first_block_stride: int = 2, num_blocks: int | None = None):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
        width_mult = _check_width(width_mult)
        if num_classes is not None:
            num_classes = check_positive_int(num_classes, "num_classes")
        if first_block_stride not in (1, 2) or isinstance(first_block_stride, bool):
            raise ValueError(f"first_block_stride must be 1 or 2, got {first_block_stride!r}")
        table, hidden = ARCHITECTURES[arch]
        if num_blocks is not None:
            num_blocks = check_positive_int(num_blocks, "num_blocks")
            if num_blocks > len(table):
                raise ValueError(f"num_blocks must be at most {len(table)} for arch={arch!r}, "
                                 f"got {num_blocks}")
            table = table[:num_blocks]
        first_s2 = next((i for i, row in enumerate(table) if row[5] == 2), None)
        cin = make_divisible(16 * width_mult)
        self.stem = conv_bn_act(check_positive_int(in_channels, "in_channels"), cin, 3, 2,
                                activation="HS")
        self.blocks = nn.ModuleList()
        self.block_strides: list[int] = []
        stride = 2
        for i, row in enumerate(table):
            block, cin = build_bnecks([row], cin, width_mult,
                                      first_block_stride if i == first_s2 else None)
            self.blocks.append(block[0])
            stride *= block[0].stride
            self.block_strides.append(stride)
        # the last layer at each stride is the one whose output we return (-1: the stem)
        self.feature_layer = {2: -1}
        for i, s in enumerate(self.block_strides):
            self.feature_layer[s] = i
        self.feature_channels = {
            s: (self.stem[0].out_channels if i < 0 else self.blocks[i].body[-1][0].out_channels)
            for s, i in self.feature_layer.items()}
        self.max_stride = max(self.feature_layer)
        self.arch, self.width_mult, self.num_classes = arch, width_mult, num_classes
        if num_classes is not None:
            last = 6 * cin                       # 576 (Small) / 960 (Large) at width 1
            self.last_conv = conv_bn_act(cin, last, 1, activation="HS")
            hidden = make_divisible(hidden * width_mult)
            self.classifier = nn.Sequential(nn.Linear(last, hidden), nn.Hardswish(inplace=True),
                                            nn.Dropout(0.2), nn.Linear(hidden, num_classes))

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        _check_image(x, self.max_stride)
        x = self.stem(x)
        features = {2: x} if self.feature_layer[2] == -1 else {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if self.feature_layer[self.block_strides[i]] == i:
                features[self.block_strides[i]] = x
        return features

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet-style logits ``(B, num_classes)``; needs ``num_classes``."""
        if self.num_classes is None:
            raise RuntimeError("this MobileNetV3 was built without a classifier (num_classes=None)")
        x = self.last_conv(self.forward(x)[self.max_stride])
        return self.classifier(x.mean((2, 3)))


def mobilenet_v3_small(width_mult: float = 1.0, num_classes: int | None = None,
                       in_channels: int = 3, **kwargs) -> MobileNetV3:
    """MobileNetV3-Small with width multiplier ``width_mult``; see :class:`MobileNetV3`."""
    return MobileNetV3("small", width_mult, num_classes, in_channels, **kwargs)


def mobilenet_v3_large(width_mult: float = 1.0, num_classes: int | None = None,
                       in_channels: int = 3, **kwargs) -> MobileNetV3:
    """MobileNetV3-Large with width multiplier ``width_mult``; see :class:`MobileNetV3`."""
    return MobileNetV3("large", width_mult, num_classes, in_channels, **kwargs)
