"""Yin et al. (2020), Sec. 4.1: the attentive 1D heatmap detector.

Instead of ``N`` 2D heatmaps of ``L x L`` values, predict for each landmark two 1D heatmaps
of length ``L``, the marginals on the x and y axes (Eq. 12). Output memory drops from
``N L^2`` to ``2 N L``, so ``L`` can exceed the input size (Yin use ``L = 3F``) and the
quantization error of Sec. 3 shrinks.

Shapes through :class:`MarginalDetector` (``K`` channels, ``c`` compressed rows)::

    image (B, 3, F, F) -> backbone features (B, K, M, M), M = F / feature_stride
    CNN1^x: stride (2, 1) convs squeeze y:  D^x (B, K, c, M) -> per channel (M x c)  [x positions, features]
    CNN1^y: stride (1, 2) convs squeeze x:  D^y (B, K, M, c) -> per channel (c x M)  [features, y positions]
    co-attention (Eqs. 9-10) between the M x positions and the M y positions
    CNN2^x: (B, K c, M) -> 1D deconvolutions -> (B, N, L) = h^x;  CNN2^y likewise -> h^y

The model returns the pair ``(hx, hy)`` that ``lmk.codecs.MarginalCodec(F, L)`` encodes and
decodes: ``codec.decode(model(images))`` gives ``(B, N, 2)`` landmarks in input pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._backend import check_positive_int, check_size
from .backbones import conv_bn_relu, mobilenet_v2


class CoAttention(nn.Module):
    """Co-attention between x and y features, Yin et al. (2020) Eqs. 9-10.

    For each channel ``k``, with ``D^x_k`` of shape ``(M_x, c)`` and ``D^y_k`` of shape ``(c, M_y)``::

        W^xy_k = softmax((D^y_k)^T P (D^x_k)^T / sqrt(d))     (M_y, M_x)   Eq. 9
        W^yx_k = softmax(D^x_k Q D^y_k / sqrt(d))             (M_x, M_y)
        D^x'_k = D^x_k + gamma W^yx_k (D^y_k)^T                              Eq. 10
        D^y'_k = D^y_k + gamma (W^xy_k D^x_k)^T

    softmax acts on each row; ``P``, ``Q`` are learned ``(c, c)`` matrices shared by the channels
    and ``d = c`` is their column count. ``gamma`` is a fixed hyper-parameter (Yin choose 0.3 by
    cross-validation); ``gamma = 0`` removes the module.
    """

    def __init__(self, size: int, gamma: float = 0.3):
        super().__init__()
        size = check_positive_int(size, "size")
        if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or gamma < 0:
            raise ValueError(f"gamma must be a number >= 0, got {gamma!r}")
        self.P = nn.Parameter(torch.eye(size) + 0.01 * torch.randn(size, size))
        self.Q = nn.Parameter(torch.eye(size) + 0.01 * torch.randn(size, size))
        self.gamma = float(gamma)
        self.scale = 1.0 / math.sqrt(size)

    def forward(self, dx: Tensor, dy: Tensor) -> tuple[Tensor, Tensor]:
        """``dx`` ``(B, K, M_x, c)``, ``dy`` ``(B, K, c, M_y)`` -> fused tensors of the same shapes."""
        if self.gamma == 0:
            return dx, dy
        w_xy = torch.softmax(dy.transpose(-1, -2) @ self.P @ dx.transpose(-1, -2) * self.scale, dim=-1)
        w_yx = torch.softmax(dx @ self.Q @ dy * self.scale, dim=-1)
        dx_fused = dx + self.gamma * (w_yx @ dy.transpose(-1, -2))
        dy_fused = dy + self.gamma * (w_xy @ dx).transpose(-1, -2)
        return dx_fused, dy_fused


def _squeeze_axis(channels: int, steps: int, axis: str) -> nn.Sequential:
    """``steps`` 3x3 conv blocks that halve the y (``axis="y"``) or x extent: the 'striding operation'."""
    stride = (2, 1) if axis == "y" else (1, 2)
    layers = [nn.Sequential(nn.Conv2d(channels, channels, 3, stride, 1, bias=False),
                            nn.BatchNorm2d(channels), nn.ReLU(inplace=True)) for _ in range(steps)]
    return nn.Sequential(*layers)


class MarginalBranch(nn.Module):
    """CNN2 of one axis: ``(B, K c, M)`` -> 1D deconvolutions x2 while they fit -> ``(B, N, L)``.

    Doubling stops at the largest ``M 2^k <= L``; a pixel-centre aligned linear resize then
    reaches ``L`` exactly (e.g. ``L = 3F``, which is not ``M`` times a power of two).
    """

    def __init__(self, cin: int, channels: int, num_landmarks: int, length_in: int, length_out: int):
        super().__init__()
        layers = [nn.Conv1d(cin, channels, 3, padding=1, bias=False), nn.BatchNorm1d(channels),
                  nn.ReLU(inplace=True)]
        length = length_in
        while 2 * length <= length_out:
            layers += [nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm1d(channels), nn.ReLU(inplace=True)]
            length *= 2
        self.body = nn.Sequential(*layers)
        self.to_heatmaps = nn.Conv1d(channels, num_landmarks, 1)
        self.length_out = length_out

    def forward(self, x: Tensor) -> Tensor:
        h = self.to_heatmaps(self.body(x))
        if h.shape[-1] != self.length_out:
            h = F.interpolate(h, size=self.length_out, mode="linear", align_corners=False)
        return h


class MarginalDetector(nn.Module):
    """Images ``(B, 3, F, F)`` -> ``(hx, hy)``, each ``(B, N, L)``: Yin et al. (2020), Sec. 4.1.

    Args:
        num_landmarks: ``N``.
        input_size: ``F``, side of the square input (a multiple of 32; ``(F, F)`` also works).
        length: ``L``, 1D heatmap length; default ``3 F`` (Yin, Sec. 5.1: "three times the face size").
        width_mult: MobileNetV2 width multiplier of the backbone (Yin use a stacked hourglass;
            any backbone that yields ``(B, C, M, M)`` features fits).
        feature_stride: backbone level used (4, 8, 16 or 32).
        channels: ``K``, channels of the x/y features.
        compressed: ``c``, rows (columns) kept when squeezing y (x); a power of two <= ``M``.
        gamma: co-attention weight of Eq. 10 (0 disables it).
    """

    def __init__(self, num_landmarks: int = 68, input_size: int = 256, length: int | None = None, *,
                 width_mult: float = 1.0, feature_stride: int = 8, channels: int = 64,
                 compressed: int = 4, gamma: float = 0.3):
        super().__init__()
        height, width = check_size(input_size, "input_size")
        if height != width or height % 32:
            raise ValueError(f"input_size must be the side F of a square input, a positive multiple "
                             f"of 32, got {input_size!r}")
        input_size = height
        if check_positive_int(feature_stride, "feature_stride") not in (4, 8, 16, 32):
            raise ValueError(f"feature_stride must be 4, 8, 16 or 32, got {feature_stride!r}")
        feature_stride = int(feature_stride)
        length = 3 * input_size if length is None else check_positive_int(length, "length")
        num_landmarks = check_positive_int(num_landmarks, "num_landmarks")
        channels = check_positive_int(channels, "channels")
        m = input_size // feature_stride
        compressed = check_positive_int(compressed, "compressed")
        if m % compressed or (m // compressed) & (m // compressed - 1):
            raise ValueError(f"compressed must divide the feature size {m} by a power of two, "
                             f"got {compressed!r}")
        steps = int(math.log2(m // compressed))
        self.backbone = mobilenet_v2(width_mult)
        self.reduce = conv_bn_relu(self.backbone.feature_channels[feature_stride], channels, 1, relu6=False)
        self.squeeze_y = _squeeze_axis(channels, steps, "y")
        self.squeeze_x = _squeeze_axis(channels, steps, "x")
        self.co_attention = CoAttention(compressed, gamma)
        self.branch_x = MarginalBranch(channels * compressed, channels, num_landmarks, m, length)
        self.branch_y = MarginalBranch(channels * compressed, channels, num_landmarks, m, length)
        self.input_size, self.length, self.feature_stride = input_size, length, feature_stride
        self.num_landmarks = num_landmarks

    @property
    def gamma(self) -> float:
        return self.co_attention.gamma

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.ndim != 4 or tuple(images.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(f"images must have shape (B, 3, {self.input_size}, {self.input_size}), "
                             f"got {tuple(images.shape)}")
        return self.marginals(self.reduce(self.backbone(images)[self.feature_stride]))

    def marginals(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """Features ``(B, K, M, M)`` (after the backbone and the 1x1 reduction) -> ``(hx, hy)``."""
        dx = self.squeeze_y(feats).transpose(-1, -2)      # (B, K, c, M) -> (B, K, M_x, c)
        dy = self.squeeze_x(feats).transpose(-1, -2)      # (B, K, M, c) -> (B, K, c, M_y)
        dx, dy = self.co_attention(dx, dy)
        b, k, m, c = dx.shape
        seq_x = dx.transpose(-1, -2).reshape(b, k * c, m)     # channels (k, c), length along x
        seq_y = dy.reshape(b, k * c, m)                       # channels (k, c), length along y
        return self.branch_x(seq_x), self.branch_y(seq_y)
