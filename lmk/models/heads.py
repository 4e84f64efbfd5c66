"""Upsampling heads of Earp et al. (2021), Sec. 4.2: deconvolution (D) and pixel-shuffle (S) blocks.

A strategy string such as ``"SDSD"`` lists the blocks from the backbone outwards; each block
doubles the spatial size::

    D:  ConvTranspose2d(C_in -> F, 4x4, stride 2, padding 1) + BN + ReLU      -> F channels, 2x
    S:  Conv2d(C_in -> F, 3x3, padding 1) + BN + ReLU + PixelShuffle(2)       -> F/4 channels, 2x

then a 1x1 convolution turns the last block's channels into the ``N`` heatmaps.

The subtle point is the S block's channel arithmetic. Pixel shuffle (Shi et al. 2016) moves
each group of 4 channels into a 2x2 spatial block, so an S block with ``F`` filters hands only
``F/4`` channels to the next block. That is what makes S cheap twice over: its own 3x3 conv runs
at the low resolution, and the block after it sees 4x fewer input channels. With this choice
the multiply-accumulate counts of every strategy in Earp Tables 3 and 4 come out within 4 % of
the paper's "GFLOPS" (which are therefore multiply-accumulates); see
:mod:`lmk.models.earp_tables`. Earp writes that, with S blocks, the heatmaps come from "a 2D
convolutional layer before the final block"; the cost tables fit a 1x1 conv applied after the
last pixel shuffle (the same MACs as a 1x1 conv to ``4N`` channels before a final shuffle,
but without a 3x3 conv to ``4N`` channels, which would add 0.15-2.3 G MACs the tables do not show).
"""

from __future__ import annotations

from torch import Tensor, nn

from .._backend import check_positive_int

BLOCKS = ("S", "D")


def check_strategy(strategy: str) -> str:
    """Validate a strategy string over ``S``/``D`` (e.g. ``"SDSD"``) and return it upper-cased."""
    if not isinstance(strategy, str) or not strategy or set(strategy.upper()) - set(BLOCKS):
        raise ValueError(f"strategy must be a non-empty string of 'S' (pixel shuffle) and "
                         f"'D' (deconvolution) blocks such as 'SDSD', got {strategy!r}")
    return strategy.upper()


def deconv_block(cin: int, filters: int) -> nn.Sequential:
    """D: 4x4 stride-2 transposed convolution + BN + ReLU; ``(B, cin, h, w) -> (B, F, 2h, 2w)``."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, filters, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(filters), nn.ReLU(inplace=True))


def shuffle_block(cin: int, filters: int) -> nn.Sequential:
    """S: 3x3 conv + BN + ReLU + pixel shuffle x2; ``(B, cin, h, w) -> (B, F/4, 2h, 2w)``."""
    return nn.Sequential(
        nn.Conv2d(cin, filters, 3, padding=1, bias=False),
        nn.BatchNorm2d(filters), nn.ReLU(inplace=True), nn.PixelShuffle(2))


class UpsampleHead(nn.Module):
    """Stack of S/D upsampling blocks followed by a 1x1 conv to the heatmaps.

    Args:
        in_channels: channels of the backbone features.
        strategy: blocks from the backbone outwards, e.g. ``"DDDD"`` (Earp's baseline) or ``"SDD"``.
        filters: ``F``, filters of every block (Earp: 256, later 128); a multiple of 4 if any S.
        num_landmarks: ``N``, heatmaps produced.

    Input ``(B, in_channels, h, w)``; output ``(B, N, h * 2**len(strategy), w * 2**len(strategy))``.
    """

    def __init__(self, in_channels: int, strategy: str, filters: int, num_landmarks: int):
        super().__init__()
        in_channels = check_positive_int(in_channels, "in_channels")
        filters = check_positive_int(filters, "filters")
        num_landmarks = check_positive_int(num_landmarks, "num_landmarks")
        self.strategy = check_strategy(strategy)
        if "S" in self.strategy and filters % 4:
            raise ValueError(f"filters must be a multiple of 4 for pixel-shuffle blocks, got {filters}")
        blocks, cin = [], in_channels
        for kind in self.strategy:
            if kind == "D":
                blocks.append(deconv_block(cin, filters))
                cin = filters
            else:
                blocks.append(shuffle_block(cin, filters))
                cin = filters // 4
        self.blocks = nn.Sequential(*blocks)
        self.to_heatmaps = nn.Conv2d(cin, num_landmarks, 1)
        self.in_channels, self.filters, self.num_landmarks = in_channels, filters, num_landmarks
        self.upsampling = 2 ** len(self.strategy)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"features must have shape (B, {self.in_channels}, h, w), got {tuple(x.shape)}")
        return self.to_heatmaps(self.blocks(x))
