"""Mahpod et al. (2018): the cascaded CNN (CCNN), heatmap cascade + regression cascade (Sec. 3).

::

    image --BaseCNN_1--> F1                      (Table 2, A1-A7; regression features)
    image --BaseCNN_2--> F2, H0                  (Table 2, A1-A12; heatmap features, first maps)
    H_k = HeatmapUnit_k(F2 + H_{k-1})            k = 1..K      (Table 3, wide 7x7 and 13x13)
    P^_k = argmax(H_k)                           the coarse maxima, on the 1/4 grid
    E_k, dP_k = RegressionUnit_k(F1 + F2 + H_k + H0, E_{k-1})  (Table 4, Eq. 2)
    P_k = P^_k + dP_k                            Eq. 1: the unit regresses the residual

``+`` is concatenation along channels. Heatmaps are at 1/4 of the input resolution (64 x 64
for Mahpod's 256 x 256 faces); the paper labels them with Gaussians of ``sigma = 1.3``
heatmap cells (Sec. 4), which is the training recipe's codec
(``HeatmapCodec(input_size, input_size // 4, 1.3, method="argmax")``), not part of the network.

Where the paper contradicts itself we follow its text and say so:

* the heatmap units take ``F2`` (Sec. 3.1 and 3.2 text, Table 3 caption; Sec. 3 and the
  Table 3 input row say ``F1``), so their input has ``C_F + N`` channels (the table's 136 fits
  neither reading); the regression input of Eq. 2 has ``2 C_F + 2 N`` channels (the table: 332);
* only BaseCNN_2's heatmap layers A8-A12 are built: the baseline heatmap ``H0`` of Eq. 2 is
  BaseCNN_2's (Sec. 3.1), so BaseCNN_1's would receive no gradient;
* C6 is a 1x1 convolution after averaging the last ``2 x 2`` map (a 1x1 kernel cannot turn
  Table 4's 2x2 map into 1x1), which also lets other input sizes work;
* the first regression unit has no predecessor, so ``E_0 = 0`` (every unit keeps Table 4's
  ``E_k + E_{k-1}`` input);
* the heatmap outputs (A12, B4) are linear, without Table 2/3's final ReLU: a ReLU map that is
  all zero has no maximum to refine and passes no gradient.

Every convolution is followed by batch normalisation (Sec. 4) and a ReLU, except the outputs.
Each regression unit's last layer starts at zero, so an untrained unit is the identity:
``P_k = P^_k`` (its first gradient step reaches only C6; after it, the whole network).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._backend import check_positive_int
from ..codecs import decode_heatmaps
from ..geometry import rescale_points
from .backbones import conv_bn_relu

STRIDE = 4          # input pixels per heatmap cell (two 2x2 poolings)
MAX_CASCADES = 4    # the paper's K and the largest of its ablation (Fig. 11)


def _width(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution with 'same' padding + BatchNorm + ReLU (every hidden layer of the CCNN)."""
    return conv_bn_relu(cin, cout, kernel, stride, relu6=False)


class _SamePool(nn.Sequential):
    """Table 4's ``2 x 2`` max-pooling with stride 1 and one padded row and column: same size."""

    def __init__(self):
        super().__init__(nn.ReplicationPad2d((0, 1, 0, 1)), nn.MaxPool2d(2, stride=1))


class BaseCNN(nn.Module):
    """Table 2: images ``(B, 3, H, W)`` -> features ``F`` ``(B, 128w, H/4, W/4)`` and, with
    ``num_landmarks``, first heatmaps ``H0`` ``(B, N, H/4, W/4)`` (A8-A12, 9x9 support)."""

    def __init__(self, width: float = 1.0, num_landmarks: int | None = None):
        super().__init__()
        c64, c128, c256 = (_width(c, width) for c in (64, 128, 256))
        self.features = nn.Sequential(
            _conv(3, c64, 3), _conv(c64, c64, 3), nn.MaxPool2d(2),             # A1, A2
            _conv(c64, c64, 3), _conv(c64, c128, 3), nn.MaxPool2d(2),          # A3, A4
            _conv(c128, c128, 3), _conv(c128, c128, 3),                        # A5, A6
            nn.Conv2d(c128, c128, 1, bias=False), nn.BatchNorm2d(c128))        # A7 (linear)
        self.channels = c128
        self.heatmaps = None if num_landmarks is None else nn.Sequential(
            _conv(c128, c128, 9), _conv(c128, c128, 9),                        # A8, A9
            _conv(c128, c256, 1), _conv(c256, c256, 1), nn.Dropout(0.5),       # A10, A11
            nn.Conv2d(c256, num_landmarks, 1))                                 # A12

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        features = self.features(images)
        return features, None if self.heatmaps is None else self.heatmaps(features)


class HeatmapUnit(nn.Module):
    """Table 3: ``F2 + H_{k-1}`` -> ``H_k`` with wide 7x7 and 13x13 kernels, which relate
    landmarks that lie far apart on the 1/4 grid (13 cells = 52 input pixels)."""

    def __init__(self, feature_channels: int, num_landmarks: int, width: float = 1.0):
        super().__init__()
        c64, c128 = _width(64, width), _width(128, width)
        self.layers = nn.Sequential(
            _conv(feature_channels + num_landmarks, c64, 7), _conv(c64, c64, 13),   # B1, B2
            _conv(c64, c128, 1), nn.Conv2d(c128, num_landmarks, 1))                # B3, B4

    def forward(self, features: Tensor, previous: Tensor) -> Tensor:
        return self.layers(torch.cat([features, previous], dim=1))


class RegressionUnit(nn.Module):
    """Table 4: Eq. 2's input ``x`` and the previous unit's ``E_{k-1}`` -> ``(E_k, dP_k)``.

    C1-C3 (stride 2 each) give ``E_k`` at 1/8 of the heatmap grid; C4-C6 regress from
    ``E_k + E_{k-1}`` the residual ``dP_k`` ``(B, N, 2)`` in heatmap cells (Eq. 1).
    """

    def __init__(self, in_channels: int, num_landmarks: int, width: float = 1.0):
        super().__init__()
        c64, c128, c256, c512, c1024 = (_width(c, width) for c in (64, 128, 256, 512, 1024))
        self.features = nn.Sequential(
            _conv(in_channels, c64, 7, 2), _SamePool(),                        # C1
            _conv(c64, c128, 5, 2), _SamePool(),                               # C2
            _conv(c128, c256, 3, 2), _SamePool())                              # C3 -> E_k
        self.regress = nn.Sequential(
            _conv(2 * c256, c512, 3, 2), _SamePool(),                          # C4
            _conv(c512, c1024, 3, 2), _SamePool(),                             # C5
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(c1024, 2 * num_landmarks, 1))   # C6
        last = self.regress[-1]
        nn.init.zeros_(last.weight)      # dP_k = 0 at initialisation: the unit starts as identity
        nn.init.zeros_(last.bias)
        self.channels, self.num_landmarks = c256, num_landmarks

    def forward(self, x: Tensor, previous: Tensor | None) -> tuple[Tensor, Tensor]:
        e = self.features(x)
        prev = torch.zeros_like(e) if previous is None else previous
        delta = self.regress(torch.cat([e, prev], dim=1))
        return e, delta.view(-1, self.num_landmarks, 2)


class CCNN(nn.Module):
    """Images ``(B, 3, H, W)`` -> heatmaps and refined coordinates after every cascade unit.

    Args:
        num_cascades: ``K``, the number of heatmap units and of regression units (1 to 4; the
            paper uses 4 and ablates 1..4 in Fig. 11).
        num_landmarks: ``N``.
        width: factor on every channel count of Tables 2-4 (1.0 is the paper's network;
            0.25 trains on a CPU). Kernel sizes never change: the wide kernels are the point.

    ``forward`` returns a dict (``H = H_in / 4``, ``W = W_in / 4``):

    * ``"base_heatmaps"``: ``(B, N, H, W)``, BaseCNN_2's first estimate ``H0``;
    * ``"heatmaps"``: list of ``K`` tensors ``(B, N, H, W)``, ``H_1 .. H_K``;
    * ``"maxima"``: list of ``K`` tensors ``(B, N, 2)``: ``argmax(H_k)`` in input pixels (no
      gradient: the argmax is piecewise constant);
    * ``"coordinates"``: list of ``K`` tensors ``(B, N, 2)``: ``P_k = P^_k + dP_k`` in input
      pixels; the last one is the model's answer.

    The refinement is added on the heatmap grid and mapped once to input pixels with
    ``lmk.geometry.rescale_points(points, 4)`` (cell ``i`` is centred on input ``4 i + 1.5``),
    so ``dP_k`` of one cell moves a point by 4 input pixels.
    """

    stride = STRIDE

    def __init__(self, num_cascades: int = 4, num_landmarks: int = 68, *, width: float = 1.0):
        super().__init__()
        k = check_positive_int(num_cascades, "num_cascades")
        if k > MAX_CASCADES:
            raise ValueError(f"num_cascades must be from 1 to {MAX_CASCADES}, got {num_cascades!r}")
        n = check_positive_int(num_landmarks, "num_landmarks")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        self.base1 = BaseCNN(width)                       # F1, for the regression cascade
        self.base2 = BaseCNN(width, num_landmarks=n)      # F2 and H0, for the heatmap cascade
        c = self.base1.channels
        self.heatmap_units = nn.ModuleList(HeatmapUnit(c, n, width) for _ in range(k))
        self.regression_units = nn.ModuleList(RegressionUnit(2 * c + 2 * n, n, width)
                                              for _ in range(k))
        self.num_cascades, self.num_landmarks, self.width = k, n, float(width)

    def heatmap_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """Heatmap ``(H, W)`` for an input of ``(H_in, W_in)`` (both multiples of 4)."""
        return input_size[0] // STRIDE, input_size[1] // STRIDE

    def forward(self, images: Tensor) -> dict:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-1] % STRIDE or images.shape[-2] % STRIDE:
            raise ValueError(f"image height and width must be multiples of {STRIDE} (heatmaps at "
                             f"1/{STRIDE} resolution), got {tuple(images.shape[-2:])}")
        f1, _ = self.base1(images)
        f2, h0 = self.base2(images)
        heatmaps, maxima, coordinates = [], [], []
        h, e = h0, None
        for heatmap_unit, regression_unit in zip(self.heatmap_units, self.regression_units):
            h = heatmap_unit(f2, h)
            cells = decode_heatmaps(h.detach(), "argmax")                 # P^_k, (B, N, 2) cells
            e, delta = regression_unit(torch.cat([f1, f2, h, h0], dim=1), e)
            heatmaps.append(h)
            maxima.append(rescale_points(cells, STRIDE))
            coordinates.append(rescale_points(cells + delta, STRIDE))
        return {"base_heatmaps": h0, "heatmaps": heatmaps, "maxima": maxima,
                "coordinates": coordinates}


_BASE_LAYERS = {  # Mahpod et al. (2018), Tables 2-4: (part, what it computes), by module path
    "base1.features": ("BaseCNN_1 A1-A7", "image -> F1"),
    "base2.features": ("BaseCNN_2 A1-A7", "image -> F2"),
    "base2.heatmaps": ("BaseCNN_2 A8-A12", "F2 -> H0"),
}


def _unit_layers(k: int) -> dict:
    return {f"heatmap_units.{k - 1}.layers": (f"heatmap unit {k} B1-B4", f"F2 + H{k - 1} -> H{k}"),
            f"regression_units.{k - 1}.features": (f"regression unit {k} C1-C3",
                                                   f"F1 + F2 + H{k} + H0 -> E{k} (Eq. 2)"),
            f"regression_units.{k - 1}.regress": (f"regression unit {k} C4-C6",
                                                  f"E{k} + E{k - 1} -> dP{k} (Eq. 1)")}


def paper_layers(model: CCNN) -> dict:
    """Mahpod et al.'s Tables 2-4 for ``model``: ``{module path: (the paper's layers, what they compute)}``
    (``+`` is concatenation along channels), for :func:`lmk.complexity.shape_table`."""
    if not all(hasattr(model, a) for a in ("base1", "base2", "heatmap_units", "regression_units")):
        raise TypeError(f"paper_layers needs a CCNN (lmk.models.CCNN), got {type(model).__name__}")
    layers = dict(_BASE_LAYERS)
    for k in range(1, len(model.heatmap_units) + 1):
        layers.update(_unit_layers(k))
    return layers
