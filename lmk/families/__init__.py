"""Model families: what differs between the papers, one object each, in one table.

A recipe config names its family in its ``"model"`` field; everything that depends on which
paper a model comes from (building the network, codec and loss, the data sets, training in one
stage or several, scoring, tracking, predicting) is a method of that family:

=============  =====================================  ===========================================
``"model"``    family                                 paper
=============  =====================================  ===========================================
``heatmap``    :class:`~.heatmaps.EarpHeatmap`        Earp et al. (2021): S/D upsampling heads
``marginal``   :class:`~.heatmaps.YinMarginal`        Yin et al. (2020): 1D heatmaps
``ffld``       :class:`~.refinement.YanFFLD`          Yan et al. (2020): CropNet refinement
``ccnn``       :class:`~.refinement.MahpodCCNN`       Mahpod et al. (2018): cascaded heatmaps
``atpn``       :class:`~.atpn.XiaATPN`                Xia et al. (2022): alignment, pose, tracking
``yin``        :class:`~.tracker.YinTemporal`         Yin et al. (2020): temporal refinement
=============  =====================================  ===========================================

A seventh family is one more entry in :data:`FAMILIES` (a subclass of :class:`Family`); no
other module asks for a model kind.
"""

from __future__ import annotations

from .atpn import XiaATPN
from .base import NO_AUGMENT, Family, Result, augment_of, mean_shape
from .heatmaps import EarpHeatmap, YinMarginal
from .refinement import MahpodCCNN, YanFFLD
from .tracker import YinTemporal

__all__ = ["FAMILIES", "Family", "Result", "family_of", "NO_AUGMENT", "augment_of", "mean_shape"]

FAMILIES: dict[str, Family] = {f.name: f for f in (EarpHeatmap(), YinMarginal(), YanFFLD(), MahpodCCNN(),
                                                    XiaATPN(), YinTemporal())}
"""Every model family by the name a recipe's ``"model"`` field gives."""


def family_of(cfg_or_name) -> Family:
    """The family of a recipe config (its ``"model"`` field), a recipe, or a family name."""
    name = cfg_or_name
    if isinstance(cfg_or_name, dict):
        name = cfg_or_name.get("model")
    elif not isinstance(cfg_or_name, str):
        name = getattr(cfg_or_name, "model", None)
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]
