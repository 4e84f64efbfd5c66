"""The single-image heatmap families: Earp et al.'s 2D heatmaps and Yin et al.'s 1D heatmaps.

* :class:`EarpHeatmap` (``"heatmap"``): MobileNetV2 + an upsampling head of S/D blocks to 2D
  Gaussian heatmaps (Earp et al. 2021; also the 2D arm of Yin et al.'s Table 1 in notebook 02).
* :class:`YinMarginal` (``"marginal"``): a 1D heatmap detector whose heatmaps are the x and y
  marginals of the 2D Gaussian, length ``L = length_ratio * F`` (Yin et al. 2020, Sec. 4.1).
"""

from __future__ import annotations

from ..codecs import HeatmapCodec, MarginalCodec
from ..layouts import LAYOUT_68
from ..losses import ForegroundHeatmapLoss, MarginalLoss
from ..models import HeatmapModel, MarginalDetector
from .base import Family

__all__ = ["EarpHeatmap", "YinMarginal", "marginal_detector", "marginal_codec"]

HEATMAP_DECODERS = ("argmax", "shift", "dark", "soft_argmax")


class EarpHeatmap(Family):
    """Earp et al. (2021): images -> ``(B, N, L, L)`` heatmaps, decoded by argmax/shift/DARK/soft-argmax."""

    name, paper, loss_name = "heatmap", "Earp et al. (2021)", "foreground_mse"
    channels_last = True

    def build_model(self, cfg):
        return HeatmapModel(**cfg["model_args"])

    def heatmap_size(self, cfg):
        args, size = cfg["model_args"], cfg["data"]["input_size"]
        if args.get("output_size") is not None:
            return args["output_size"]
        return size * 2 ** len(args["strategy"]) // 32      # each S or D block doubles stride-32 features

    def codec(self, cfg, method=None):
        t = cfg["train"]
        return HeatmapCodec(cfg["data"]["input_size"], self.heatmap_size(cfg), t["sigma"], method or t["method"])

    def loss(self, cfg, codec, layout=LAYOUT_68):
        return ForegroundHeatmapLoss(codec, cfg["train"].get("foreground_weight", 20.0))

    def decoders(self, cfg):
        return HEATMAP_DECODERS

    def network_text(self, cfg):
        a = cfg["model_args"]
        return f"MobileNetV2 x {a['width_mult']:g}, {a['strategy']} head, {a['filters']} filters"


def marginal_detector(model_args: dict, input_size: int) -> MarginalDetector:
    """Yin's 1D heatmap detector of a config's ``model_args`` (``length_ratio`` sets ``L``)."""
    args = dict(model_args)
    ratio = args.pop("length_ratio")
    return MarginalDetector(input_size=input_size, length=int(round(ratio * input_size)), **args)


def marginal_codec(cfg: dict, model_args: dict, method: str | None = None) -> MarginalCodec:
    """The 1D heatmap codec of a config whose detector has ``model_args`` (``length_ratio``)."""
    t, size = cfg["train"], cfg["data"]["input_size"]
    return MarginalCodec(size, int(round(model_args["length_ratio"] * size)), t["sigma"], method or t["method"])


class YinMarginal(Family):
    """Yin et al. (2020): images -> 1D heatmaps ``(hx, hy)``, each ``(B, N, L)``."""

    name, paper, loss_name = "marginal", "Yin et al. (2020)", "marginal"

    def build_model(self, cfg):
        return marginal_detector(cfg["model_args"], cfg["data"]["input_size"])

    def heatmap_size(self, cfg):
        return int(round(cfg["model_args"]["length_ratio"] * cfg["data"]["input_size"]))

    def codec(self, cfg, method=None):
        return marginal_codec(cfg, cfg["model_args"], method)

    def loss(self, cfg, codec, layout=LAYOUT_68):
        return MarginalLoss(codec)

    def decoders(self, cfg):
        return HEATMAP_DECODERS

    def network_text(self, cfg):
        a = cfg["model_args"]
        return (f"MobileNetV2 x {a['width_mult']:g}, 1D heads ({a['channels']} ch), "
                f"co-attention gamma {a['gamma']:g}")

    def heatmap_text(self, cfg):
        return f"2 x {self.heatmap_size(cfg)} (1D), sigma {cfg['train']['sigma']:g} cells"
