"""ATPN (Xia et al. 2022): one backbone, three branches: landmarks, head pose, face confidence.

Secs. 3-4 and Fig. 2. Strides and map sizes below are for a 112 x 112 face crop (``N``
landmarks, ``C_4, C_8, C_16`` the backbone's channels at strides 4, 8, 16: 24, 48, 96 at
width 1)::

    image (B, 3, 112, 112)
      backbone: MobileNetV3-Small, bnecks 1-11 --+--> F4  (C_4, 28x28)    low-level
                                                 +--> F8  (C_8, 14x14)
                                                 +--> F16 (C_16, 7x7)     high-level
      alignment branch (Fig. 2b, Sec. 3.1):
        P16 = F16;  P8 = F8 + Deconv(1x1(P16));  P4 = F4 + Deconv(1x1(P8))   fusion (FPN-like)
        M_s = Multiview(P_s)                     3 receptive fields (3, 5, 7) + residual (Fig. 3)
        D_s = CoordConv(k = s', stride s')(M_s)  s' = 16 / s: every level down to 7x7 at once
        v   = CoordDepthwise(concat_s D_s)       1x1 CoordConv, then a 7x7 depthwise conv: (B, D)
        S1  = S0 + Linear(v) * (W/2, H/2)        the residual to the mean shape S0, input pixels
      heatmap (Sec. 3.3): H = cheap_heatmap(rescale_points(S1, 1/4), 28x28) (Eq. 1)
                          F4' = F4 * H (Eq. 2)
      pose branch (Fig. 2d):     F4' -> bnecks 4-8 -> pool -> Linear(3) -> tanh * pi
      tracking branch (Fig. 2c): F4' -> bnecks 4-8 -> pool -> Linear(1)  (a logit)

Outputs, a dict: ``"landmarks"`` ``(B, N, 2)`` in input pixels (pixel centres at integers),
``"pose"`` ``(B, 3)`` yaw, pitch, roll in radians (the order of ``lmk.data.SynthFaces``'s
``pose``, which is in degrees), ``"confidence"`` ``(B,)``: a face-confidence **logit**;
the probability is ``torch.sigmoid(logit)`` (Xia's tracking threshold 0.7 applies to that).
Xia use a two-way softmax, which is the sigmoid of the difference of its two outputs: one
logit is the same model without the redundant output, and trains with the numerically stable
``binary_cross_entropy_with_logits`` (Eq. 5).

Ablation flags (Xia Tables 7-9): ``low_level=False`` regresses from the 7x7 level only (no
fusion, no 28x28 and 14x14 paths: Table 7's baseline with the other two flags off);
``multiview=False`` drops the multiview blocks; ``coordconv=False`` removes every coordinate
channel (the downsampling and the 1x1 before the depthwise block become plain convolutions);
``shared_features=False`` gives the pose and tracking branches their own copy of the stem and
bnecks 1-3 (Tables 8-9's single-task baseline "with the same layers"); ``heatmap_fusion=False``
skips Eq. 2. Ablated layers are not built, so no parameter is left without a gradient.

Where we depart from the paper, or fill in what it leaves open:

* The paper does not state its input size; Fig. 2's 28/14/7 maps at strides 4, 8, 16 mean
  a 112 px crop (the unmodified MobileNetV3-Small gives the same maps from a 224 px crop,
  and apart from the stem the same costs).
* Fig. 2's kernel tables are not in our copy of the paper. The backbone is Howard et al.
  (2019)'s MobileNetV3-Small (Table 2) with its first stride-2 bneck at stride 1, so a 112 px
  crop gives Fig. 2's 28 x 28, 14 x 14 and 7 x 7 maps (the sizes MobileNetV3-Small has at
  224 px); the pose and tracking branches are bnecks 4-8 of the same table (28 -> 14,
  ``C_4 -> C_8``), the "high-level layers" of a single-task network that shares the
  low-level ones (Sec. 4.5.2). Alignment layers keep each level's channel count. With these
  choices, at 112 px and 98 landmarks (WFLW), backbone + alignment branch cost 1,097,448
  parameters and 0.0634 G MACs, inside the rounding of Table 2's 1.1 M and 0.06 G; the
  tracking branch 180,081 parameters and 0.0191 G MACs, 5 % fewer and 12 % more than
  Table 5's 0.19 M and 0.017 G (see :func:`cost_table`). That supports the scale of our
  reading, not every layer of it. Table 5's ratio of MACs to parameters (89 per parameter,
  ours 106) suggests that Fig. 2c holds a little more of its weight at lower resolution than
  bnecks 4-8 do; the text does not say which layers.
* The multiview block (Bulat & Tzimiropoulos 2017) is three chained 3x3 convolutions to
  ``C/2, C/4, C/4`` channels, concatenated back to ``C`` and added to the input; each
  convolution is conv-BN-ReLU (Bulat use BN-ReLU-conv).
* CoordConv downsampling uses kernel = stride (4x4 stride 4 from 28x28, 2x2 stride 2 from
  14x14, 1x1 at 7x7): each output cell sees exactly the input cells it covers, so the three
  levels land on the same 7x7 grid with pixel edges aligned (``lmk.geometry`` convention).
* The "7x7 Coord Depthwise Block": a 1x1 CoordConv + BN + hard-swish mixes the coordinates
  into every channel, then a depthwise convolution whose kernel is the whole deepest map
  (7x7 at 112 px, no padding) gives one value per channel, weighting every position
  separately (unlike pooling). Its kernel is the map size, so the input size is fixed when
  the model is built (``input_size``), like the fully connected layer it replaces.
* The heatmap is computed from the *detached* landmarks: the pose and tracking losses train
  their branches (and, if not frozen, the shared features), never the landmarks. Xia train
  those branches with the backbone and alignment branch frozen anyway (Sec. 3.4).
* ``S0`` (``mean_shape``) is a buffer in input pixels, by default every landmark at the image
  centre; set it from the training set with :meth:`ATPN.set_mean_shape`. The last layer
  starts at zero, so the untrained model predicts exactly ``S0``. Its output is in units of
  half the image (normalised coordinates, as :class:`lmk.codecs.CoordinateCodec`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._backend import check_positive_int, check_size
from ..complexity import profile
from ..geometry import rescale_points
from ..ops import HEATMAP_FLOOR, CoordConv2d, cheap_heatmap
from .mobilenet_v3 import MOBILENET_V3_SMALL, MobileNetV3, build_bnecks, conv_bn_act

LEVELS = (4, 8, 16)             # strides of the low-, middle- and high-level features
DEEPEST = LEVELS[-1]
BRANCH_BLOCKS = MOBILENET_V3_SMALL[3:8]   # bnecks 4-8: the pose and tracking branches

# Xia et al. (2022): part -> (parameters in millions, "FLOPS" in G). Table 2: backbone +
# alignment branch; Table 5: tracking branch. Their unit is taken as multiply-accumulates
# (see cost_table). The WFLW model (98 landmarks); input size from Fig. 2's 28/14/7 maps.
XIA_COSTS = {"backbone+alignment": (1.1, 0.06), "tracking": (0.19, 0.017)}
XIA_SETTINGS = {"num_landmarks": 98, "input_size": 112, "width": 1.0}

# Xia Sec. 3.4: the top-level modules each training stage trains; the others are frozen.
STAGE_MODULES = {1: ("backbone", "alignment"), 2: ("tracking",), 3: ("pose",)}


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


class MultiviewBlock(nn.Module):
    """Bulat & Tzimiropoulos (2017) via Xia Fig. 3: ``(B, C, H, W)`` -> same shape.

    Three chained 3x3 conv-BN-ReLU layers to ``C/2``, ``C/4`` and ``C - C/2 - C/4`` channels
    see 3x3, 5x5 and 7x7 windows; their outputs are concatenated (``C`` channels) and added
    to the input (the residual keeps the low-level features).
    """

    def __init__(self, channels: int):
        super().__init__()
        c = check_positive_int(channels, "channels")
        if c < 4:
            raise ValueError(f"a multiview block needs at least 4 channels, got {c}")
        widths = (c // 2, c // 4, c - c // 2 - c // 4)
        self.convs = nn.ModuleList()
        cin = c
        for cout in widths:
            self.convs.append(conv_bn_act(cin, cout, 3, activation="RE"))
            cin = cout

    def forward(self, x: Tensor) -> Tensor:
        views, y = [], x
        for conv in self.convs:
            y = conv(y)
            views.append(y)
        return x + torch.cat(views, dim=1)


class TopDownFusion(nn.Module):
    """Xia Sec. 3.1: fuse high-level into low-level features, as a feature pyramid (Lin et al.
    2017): ``P_s = F_s + BN(Deconv(BN(1x1(P_2s))))``, from the deepest level up.

    The 1x1 convolution maps ``C_2s`` to ``C_s`` channels at the coarse resolution, the
    deconvolution (4x4, stride 2, as Earp's D blocks) doubles the size.
    """

    def __init__(self, channels: dict[int, int], levels: tuple[int, ...]):
        super().__init__()
        self.levels = tuple(levels)
        self.up = nn.ModuleDict()
        for fine, coarse in zip(self.levels, self.levels[1:]):
            cin, cout = channels[coarse], channels[fine]
            self.up[str(fine)] = nn.Sequential(
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                nn.ConvTranspose2d(cout, cout, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout))

    def forward(self, features: dict[int, Tensor]) -> dict[int, Tensor]:
        fused = {self.levels[-1]: features[self.levels[-1]]}
        for fine, coarse in zip(reversed(self.levels[:-1]), reversed(self.levels[1:])):
            fused[fine] = features[fine] + self.up[str(fine)](fused[coarse])
        return fused


class AlignmentBranch(nn.Module):
    """Xia Fig. 2b: backbone features ``{stride: (B, C_s, H/s, W/s)}`` -> ``(B, N, 2)``
    residual to the mean shape, in normalised units (half the image size).

    Args:
        channels: ``{stride: C_s}`` of the backbone.
        num_landmarks: ``N``.
        map_size: ``(H/16, W/16)``, the deepest map, which the depthwise kernel covers.
        low_level, multiview, coordconv: the ablation flags (see the module docstring).
    """

    def __init__(self, channels: dict[int, int], num_landmarks: int, map_size: tuple[int, int],
                 *, low_level: bool = True, multiview: bool = True, coordconv: bool = True):
        super().__init__()
        self.levels = LEVELS if low_level else (DEEPEST,)
        self.fusion = TopDownFusion(channels, self.levels) if low_level else None
        self.multiview = nn.ModuleDict(
            {str(s): MultiviewBlock(channels[s]) for s in self.levels}) if multiview else None
        self.down = nn.ModuleDict()
        for s in self.levels:
            k = DEEPEST // s
            self.down[str(s)] = nn.Sequential(
                CoordConv2d(channels[s], channels[s], k, stride=k, bias=False, coords=coordconv),
                nn.BatchNorm2d(channels[s]), nn.Hardswish(inplace=True))
        width = sum(channels[s] for s in self.levels)
        self.mix = nn.Sequential(CoordConv2d(width, width, 1, bias=False, coords=coordconv),
                                 nn.BatchNorm2d(width), nn.Hardswish(inplace=True))
        self.depthwise = nn.Conv2d(width, width, map_size, groups=width, bias=False)
        self.fc = nn.Linear(width, 2 * num_landmarks)
        nn.init.zeros_(self.fc.weight)     # S1 = S0 at initialisation
        nn.init.zeros_(self.fc.bias)
        self.num_landmarks = num_landmarks

    def forward(self, features: dict[int, Tensor]) -> Tensor:
        levels = {s: features[s] for s in self.levels}
        if self.fusion is not None:
            levels = self.fusion(levels)
        if self.multiview is not None:
            levels = {s: self.multiview[str(s)](x) for s, x in levels.items()}
        grid = torch.cat([self.down[str(s)](x) for s, x in levels.items()], dim=1)
        vector = self.depthwise(self.mix(grid)).flatten(1)                   # (B, D)
        return self.fc(vector).view(-1, self.num_landmarks, 2)


class TaskBranch(nn.Module):
    """Xia Fig. 2c/2d: low-level features (times the heatmap) -> ``(B, outputs)``.

    MobileNetV3-Small bnecks 4-8 (stride 2), global average pooling, a linear layer.

    Args:
        in_channels: ``C_4``, the channels of the low-level features.
        outputs: 3 (pose) or 1 (tracking).
        width_mult: the MobileNetV3 width multiplier.
        own_features: build a private stem + bnecks 1-3 (``forward`` then takes images)
            instead of taking the shared low-level features.
    """

    def __init__(self, in_channels: int, outputs: int, width_mult: float = 1.0,
                 own_features: bool = False):
        super().__init__()
        self.features = MobileNetV3("small", width_mult, first_block_stride=1,
                                    num_blocks=3) if own_features else None
        self.blocks, cout = build_bnecks(BRANCH_BLOCKS, in_channels, width_mult)
        self.fc = nn.Linear(cout, check_positive_int(outputs, "outputs"))

    def forward(self, x: Tensor, heatmap: Tensor | None = None) -> Tensor:
        """``x``: shared features ``(B, C_4, H/4, W/4)``, or images ``(B, 3, H, W)`` with
        ``own_features``; ``heatmap``: ``(B, 1, H/4, W/4)`` or None."""
        low = self.features(x)[LEVELS[0]] if self.features is not None else x
        if heatmap is not None:
            low = low * heatmap                                              # Xia Eq. 2
        return self.fc(self.blocks(low).mean(dim=(2, 3)))


class ATPN(nn.Module):
    """Images ``(B, 3, H, W)`` -> ``{"landmarks", "pose", "confidence"}`` (module docstring).

    Args:
        num_landmarks: ``N``.
        input_size: ``(H, W)`` or an int, multiples of 16 (Xia: 112). Fixed at construction:
            the coord depthwise kernel covers the whole ``H/16 x W/16`` map.
        width: MobileNetV3 width multiplier for the backbone and the branches (channel
            counts rounded to multiples of 8); 1.0 is the paper's network.
        low_level, multiview, coordconv: alignment-branch ablations (Xia Table 7).
        shared_features, heatmap_fusion: pose- and tracking-branch ablations (Tables 8, 9).
        mean_shape: ``(N, 2)`` ``S0`` in input pixels; default: all at the image centre.
        heatmap_floor: the floor of the cheap heatmap, in ``[0, 1)`` (Xia Sec. 3.3: 0.5; 0 is Eq. 1
            alone).
    """

    def __init__(self, num_landmarks: int = 68, input_size=112, *, width: float = 1.0,
                 low_level: bool = True, multiview: bool = True, coordconv: bool = True,
                 shared_features: bool = True, heatmap_fusion: bool = True, mean_shape=None,
                 heatmap_floor: float = HEATMAP_FLOOR):
        super().__init__()
        n = check_positive_int(num_landmarks, "num_landmarks")
        h, w = check_size(input_size, "input_size")
        if h % DEEPEST or w % DEEPEST:
            raise ValueError(f"input_size must be multiples of {DEEPEST} (the deepest stride), "
                             f"got {(h, w)}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        flags = {name: _flag(value, name) for name, value in (
            ("low_level", low_level), ("multiview", multiview), ("coordconv", coordconv),
            ("shared_features", shared_features), ("heatmap_fusion", heatmap_fusion))}
        self.backbone = MobileNetV3("small", width, first_block_stride=1)
        channels = self.backbone.feature_channels
        self.alignment = AlignmentBranch(channels, n, (h // DEEPEST, w // DEEPEST),
                                         low_level=low_level, multiview=multiview,
                                         coordconv=coordconv)
        own = not shared_features
        self.pose = TaskBranch(channels[LEVELS[0]], 3, width, own_features=own)
        self.tracking = TaskBranch(channels[LEVELS[0]], 1, width, own_features=own)
        self.register_buffer("mean_shape", torch.empty(n, 2))
        self.num_landmarks, self.input_size, self.width = n, (h, w), float(width)
        self.flags = flags
        if isinstance(heatmap_floor, bool) or not isinstance(heatmap_floor, (int, float)) \
                or not 0.0 <= heatmap_floor < 1.0:
            raise ValueError(f"heatmap_floor must be a number in [0, 1) (heatmap_fusion=False switches "
                             f"Eq. 2 off), got {heatmap_floor!r}")
        self.heatmap_floor = float(heatmap_floor)
        self.set_mean_shape(mean_shape)

    def set_mean_shape(self, mean_shape=None) -> None:
        """Set ``S0`` to ``(N, 2)`` points in input pixels (None: the image centre)."""
        h, w = self.input_size
        if mean_shape is None:
            shape = torch.tensor([(w - 1) / 2.0, (h - 1) / 2.0]).expand(self.num_landmarks, 2)
        else:
            shape = torch.as_tensor(mean_shape, dtype=torch.float32)
            if tuple(shape.shape) != (self.num_landmarks, 2):
                raise ValueError(f"mean_shape must have shape (N, 2) = ({self.num_landmarks}, 2), "
                                 f"got {tuple(shape.shape)}")
            if shape.device.type != "meta" and not bool(torch.isfinite(shape).all()):
                raise ValueError("mean_shape must be finite; found NaN or inf")
        with torch.no_grad():
            self.mean_shape.copy_(shape)

    def heatmap(self, landmarks: Tensor) -> Tensor:
        """The cheap heatmap ``(B, 1, H/4, W/4)`` of input-pixel landmarks ``(B, N, 2)``
        (detached), on the grid of the low-level features."""
        stride = LEVELS[0]
        h, w = self.input_size
        return cheap_heatmap(rescale_points(landmarks.detach(), 1.0 / stride),
                             (h // stride, w // stride), floor=self.heatmap_floor)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must have shape (B, 3, H, W), got {got}")
        if tuple(images.shape[-2:]) != self.input_size:
            raise ValueError(f"this ATPN was built for input_size {self.input_size}, got images of "
                             f"{tuple(images.shape[-2:])}")
        features = self.backbone(images)
        h, w = self.input_size
        residual = self.alignment(features)                                   # half-image units
        landmarks = self.mean_shape + residual * residual.new_tensor([w / 2.0, h / 2.0])
        heat = self.heatmap(landmarks) if self.flags["heatmap_fusion"] else None
        branch_input = features[LEVELS[0]] if self.flags["shared_features"] else images
        pose = torch.pi * torch.tanh(self.pose(branch_input, heat))
        confidence = self.tracking(branch_input, heat).squeeze(1)
        return {"landmarks": landmarks, "pose": pose, "confidence": confidence}


class _BackboneAndAlignment(nn.Module):
    """Images -> alignment residual: the part of ATPN that Xia's Table 2 counts."""

    def __init__(self, model: ATPN):
        super().__init__()
        self.backbone, self.alignment = model.backbone, model.alignment

    def forward(self, images: Tensor) -> Tensor:
        return self.alignment(self.backbone(images))


def xia_cost_table(num_landmarks: int = XIA_SETTINGS["num_landmarks"],
               input_size: int = XIA_SETTINGS["input_size"], width: float = XIA_SETTINGS["width"]
               ) -> list[dict]:
    """Our parameters and MACs of Xia's Tables 2 and 5 parts beside the paper's figures.

    Returns one row per part (``"backbone+alignment"``, ``"tracking"``): ``paper_params_m``,
    ``paper_g``, ``params``, ``gmacs``, ``params_ratio`` and ``macs_ratio`` (ours / paper).
    Counted with :func:`lmk.complexity.profile` on the meta device (shapes only); the
    tracking branch on the shared low-level features, the multiplication by the heatmap
    costs no multiply-accumulates that a convolution counter sees (``H W C_4``, 19 k).

    Xia's "FLOPS" are read as MACs, as the other light models' in their Table 2 (and Earp
    et al.'s, ``lmk.models.earp_tables``); counting 2 FLOPs per MAC would double ours.
    """
    with torch.device("meta"):
        model = ATPN(num_landmarks, input_size, width=width)
    h, w = model.input_size
    c4 = model.backbone.feature_channels[LEVELS[0]]
    parts = {"backbone+alignment": (_BackboneAndAlignment(model), (1, 3, h, w)),
             "tracking": (model.tracking, (1, c4, h // LEVELS[0], w // LEVELS[0]))}
    rows = []
    for name, (module, size) in parts.items():
        cost = profile(module, size)
        paper_params, paper_g = XIA_COSTS[name]
        rows.append({"part": name, "paper_params_m": paper_params, "paper_g": paper_g,
                     "params": cost["params"], "gmacs": round(cost["gmacs"], 4),
                     "params_ratio": round(cost["params"] / (paper_params * 1e6), 3),
                     "macs_ratio": round(cost["gmacs"] / paper_g, 3)})
    return rows


def paper_layers(model: ATPN) -> dict:
    """Xia et al.'s parts of ``model`` (Fig. 2): ``{module path: (part, what it computes)}``, in the
    order they are listed, for :func:`lmk.complexity.shape_table`."""
    if not all(hasattr(model, a) for a in ("backbone", "alignment", "pose", "tracking")):
        raise TypeError(f"paper_layers needs an ATPN (lmk.models.ATPN), got {type(model).__name__}")
    a = model.alignment
    parts = {"backbone": ("backbone", "F4, F8, F16 (MobileNetV3-Small)")}
    if a.fusion is not None:
        parts["alignment.fusion"] = ("fusion", "P_s = F_s + Deconv(1x1(P_2s))")
    if a.multiview is not None:
        parts.update({f"alignment.multiview.{s}": (f"multiview {s}", "3 receptive fields + residual")
                      for s in a.levels})
    parts.update({f"alignment.down.{s}": (f"CoordConv down {s}", f"{16 // s}x{16 // s}, stride {16 // s}")
                  for s in a.levels})
    fused = "F4 * H" if model.flags["heatmap_fusion"] else "F4"
    source = fused if model.flags["shared_features"] else f"own stem + bnecks 1-3, {fused}"
    parts.update({"alignment.mix": ("1x1 CoordConv", "mix coordinates in"),
                  "alignment.depthwise": ("coord depthwise", "kernel = the whole map"),
                  "alignment.fc": ("linear", "S1 - S0 (normalised)"),
                  "pose": ("pose branch", f"bnecks 4-8 on {source}, tanh x pi"),
                  "tracking": ("tracking branch", f"bnecks 4-8 on {source}, a logit")})
    return parts


def __getattr__(name: str):
    """Old names that still work, with a warning (see CHANGELOG.md)."""
    if name == "cost_table":
        import warnings

        warnings.warn("lmk.models.atpn.cost_table is deprecated; use xia_cost_table", DeprecationWarning, stacklevel=2)
        return xia_cost_table
    raise AttributeError(f"module 'lmk.models.atpn' has no attribute {name!r}")
