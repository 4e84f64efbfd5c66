"""Small pieces the backbones share: channel rounding and the image check."""

from __future__ import annotations

from torch import Tensor

__all__ = ["make_divisible", "check_image"]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping below 90 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_image(x: Tensor, stride: int = 32) -> None:
    """Images ``(B, C, H, W)`` whose sides are multiples of the backbone's deepest ``stride``."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if x.shape[-1] % stride or x.shape[-2] % stride:
        raise ValueError(f"image height and width must be multiples of {stride} (the deepest stride), "
                         f"got {tuple(x.shape[-2:])}")
