"""The multi-stage refinement families: Yan et al.'s FFLD and Mahpod et al.'s CCNN.

Both return one landmark estimate per stage, read by :class:`lmk.codecs.StageCodec` (its
"method" is the stage: ``"stage0"`` ... for FFLD, ``"argmax1"`` ... / ``"unit1"`` ... for the
CCNN, ``"last"``), so the zoo scores every stage of one model from one forward pass.
"""

from __future__ import annotations

import torch

from ..codecs import CoordinateCodec, HeatmapCodec, StageCodec
from ..layouts import LAYOUT_68
from ..losses import AlignLoss, CascadeLoss, StagedLoss
from ..models.ccnn import CCNN
from ..models.ffld import FFLD
from .base import Family

__all__ = ["YanFFLD", "MahpodCCNN"]


class YanFFLD(Family):
    """Yan et al. (2020): a coordinate-regression baseline refined by CropNet stages (notebook 04)."""

    name, paper, loss_name = "ffld", "Yan et al. (2020)", "staged"

    def build_model(self, cfg):
        return FFLD(**cfg["model_args"])

    def codec(self, cfg, method=None):
        return StageCodec(cfg["data"]["input_size"], method or cfg["train"]["method"])

    def loss(self, cfg, codec, layout=LAYOUT_68):
        t = cfg["train"]
        align = AlignLoss(patch_size=cfg["model_args"]["patch_size"], blur_sigma=t["align_blur"])
        return StagedLoss(t["stage_losses"], layout=layout, align=align)

    def decoders(self, cfg):
        return tuple(f"stage{k}" for k in range(cfg["model_args"]["stages"] + 1))

    def init_model(self, model, cfg, shape):
        """The baseline regression starts at the mean training shape (Yan Sec. 3.1)."""
        size = cfg["data"]["input_size"]
        model.baseline.init_points.copy_(CoordinateCodec(size).encode(torch.as_tensor(shape).float()))

    def network_text(self, cfg):
        a = cfg["model_args"]
        return (f"ResNet-18 x {a['channel_ratio']:g} + {a['stages']} CropNets ({a['patch_size']} x "
                f"{a['patch_size']} crops, {a['width']} ch)")


class MahpodCCNN(Family):
    """Mahpod et al. (2018): K heatmap units, each refined by a regression unit (notebook 05)."""

    name, paper, loss_name = "ccnn", "Mahpod et al. (2018)", "cascade"

    def build_model(self, cfg):
        return CCNN(**cfg["model_args"])

    def heatmap_size(self, cfg):
        return cfg["data"]["input_size"] // CCNN.stride

    def codec(self, cfg, method=None):
        return StageCodec(cfg["data"]["input_size"], method or cfg["train"]["method"])

    def loss(self, cfg, codec, layout=LAYOUT_68):
        t = cfg["train"]
        heatmaps = HeatmapCodec(cfg["data"]["input_size"], self.heatmap_size(cfg), t["sigma"], "argmax")
        return CascadeLoss(heatmaps, t["coordinate_weight"], t.get("foreground_weight", 20.0))

    def decoders(self, cfg):
        k = cfg["model_args"]["num_cascades"]
        return tuple(f"argmax{i}" for i in range(1, k + 1)) + tuple(f"unit{i}" for i in range(1, k + 1))

    def network_text(self, cfg):
        a = cfg["model_args"]
        return f"CCNN, K = {a['num_cascades']}, width x {a['width']:g}"
