"""Models: backbones, heads and the paper models.

* :func:`mobilenet_v2`, :func:`resnet`: backbones returning ``{stride: features}``.
* :class:`UpsampleHead`: Earp et al. (2021) S/D upsampling strategies (``"SDSD"``).
* :class:`HeatmapModel`: Earp's whole model, images -> 2D heatmaps.
* :class:`MarginalDetector`: Yin et al. (2020) 1D heatmap detector with co-attention.
* :class:`RegressionModel`: global pooling + FC coordinate regression baseline.
* :class:`CCNN`: Mahpod et al. (2018) heatmap cascade + regression cascade, K = 1..4.
* :class:`FFLD`: Yan et al. (2020) regression baseline refined by CropNet stages.
* :class:`MobileNetV3` (:func:`mobilenet_v3_small`, :func:`mobilenet_v3_large`): Howard et al.
  (2019) backbones with squeeze-excitation and hard-swish.
* :class:`ATPN`: Xia et al. (2022) alignment + head pose + tracking network.
"""

from .backbones import MobileNetV2, ResNet, build_backbone, mobilenet_v2, resnet
from .heads import UpsampleHead, check_strategy
from .heatmap import FlipAveraged, HeatmapModel, flip_test_heatmaps, unflip_heatmaps
from .marginal import CoAttention, MarginalDetector
from .ccnn import CCNN
from .regression import RegressionModel
from .ffld import CropNet, CropStage, FFLD
from .mobilenet_v3 import MobileNetV3, mobilenet_v3_large, mobilenet_v3_small
from .atpn import ATPN

__all__ = ["MobileNetV2", "ResNet", "build_backbone", "mobilenet_v2", "resnet", "UpsampleHead",
           "check_strategy", "HeatmapModel", "FlipAveraged", "flip_test_heatmaps", "unflip_heatmaps", "CoAttention", "MarginalDetector", "RegressionModel", "CCNN",
           "CropNet", "CropStage", "FFLD", "MobileNetV3", "mobilenet_v3_small", "mobilenet_v3_large",
           "ATPN"]
