"""Yan et al.'s (2020) multi-loss scheme: one named loss per stage of a multi-stage model.

:class:`StagedLoss` sums a coordinate loss (:mod:`lmk.losses.coordinates`) or the Align Loss
(:mod:`lmk.losses.align`) on each of the estimates ``[S_0, S_1, ..., S_K]`` (baseline first) a
refinement model returns; :data:`YAN_ASSIGNMENT` is the paper's choice, from losses sensitive
to large errors on the coarse stages to losses sensitive to small errors on the fine ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..geometry import resize_points
from ..layouts import LAYOUT_68, Layout
from .align import AlignLoss
from .coordinates import iod_l2_loss, l1_loss, l2_loss
from .reduction import _landmarks

YAN_ASSIGNMENT = ("iod_l2", "l2", "l1", "align")
STAGE_LOSSES = ("iod_l2", "l2", "l1", "align", "none")


class StagedLoss(nn.Module):
    """``loss_fn(outputs, batch)``: one named loss per stage, summed (Yan et al. (2020), Sec. 4).

    Yan assign losses sensitive to large errors to the coarse stages and losses sensitive to
    small errors to the fine ones: IOD-normalised L2 (Eq. 1) for the baseline, L2 for stage 1,
    L1 for stage 2 and the Align Loss (Eq. 2) for stage 3 (:data:`YAN_ASSIGNMENT`); their
    Table 5 ablation is the same model with other lists, e.g. ``["iod_l2", "l2", "l2", "l2"]``.
    ``"none"`` gives a stage no loss (it is still computed, e.g. for evaluation).

    The total is ``sum_k weights[k] * loss_k(outputs[k], batch["landmarks"])`` with each term
    reduced by its mean over the batch; the terms have different units (pixels, pixels squared,
    squared feature values), and Yan add them unweighted.

    ``outputs`` is either the list ``[S_0, S_1, ..., S_K]`` of ``(B, N, 2)`` estimates in input
    pixels (baseline first), or, when a stage uses ``"align"``, a dict ``{"points": that list,
    "features": list of the same length}`` whose entry ``k`` is the ``(B, C, H, W)`` feature map
    stage ``k`` crops from (``None`` for other stages). Points are mapped to that map with
    ``lmk.geometry.resize_points`` from the input size ``batch["image"].shape[-2:]``.

    Args:
        losses: one name of :data:`STAGE_LOSSES` per stage.
        weights: optional one factor per stage (default 1).
        layout: the layout naming the outer eye corners for ``"iod_l2"``.
        align: the :class:`AlignLoss` used by ``"align"`` stages (default ``AlignLoss()``: 8 x 8
            patches, 3 x 3 Gaussian pre-filter of std 1, Yan Sec. 6.6). Yan drop the pre-filter
            "once the loss stops going down": continue with ``AlignLoss(blur_sigma=0)``.
    """

    FUNCTIONS = {"iod_l2": iod_l2_loss, "l2": l2_loss, "l1": l1_loss}

    def __init__(self, losses: Sequence[str] = YAN_ASSIGNMENT, weights: Sequence[float] | None = None,
                 *, layout: Layout = LAYOUT_68, align: AlignLoss | None = None):
        super().__init__()
        if isinstance(losses, str) or not isinstance(losses, Sequence) or len(losses) == 0:
            raise ValueError(f"losses must be a non-empty list of names from {STAGE_LOSSES}, one "
                             f"per stage, got {losses!r}")
        bad = [name for name in losses if name not in STAGE_LOSSES]
        if bad:
            raise ValueError(f"losses: unknown name(s) {bad}; each stage takes one of {STAGE_LOSSES}")
        weights = [1.0] * len(losses) if weights is None else [float(w) for w in weights]
        if len(weights) != len(losses):
            raise ValueError(f"weights must have one value per stage ({len(losses)}), got {len(weights)}")
        if align is not None and not isinstance(align, AlignLoss):
            raise TypeError(f"align must be an lmk.losses.AlignLoss, got {type(align).__name__}")
        self.losses, self.weights, self.layout = tuple(losses), weights, layout
        self.align = AlignLoss() if align is None else align

    def _split(self, outputs) -> tuple[list, list]:
        points, features = outputs, None
        if isinstance(outputs, Mapping):
            if "points" not in outputs:
                raise KeyError(f"outputs is a dict without 'points' (the list of per-stage "
                               f"(B, N, 2) estimates); its keys are {sorted(outputs)}")
            points, features = outputs["points"], outputs.get("features")
        if isinstance(points, torch.Tensor) or not isinstance(points, Sequence):
            raise TypeError(f"outputs must be a list of per-stage (B, N, 2) estimates (baseline "
                            f"first) or a dict with 'points' and 'features', got {type(points).__name__}")
        if len(points) != len(self.losses):
            raise ValueError(f"losses names {len(self.losses)} stages {list(self.losses)} but the "
                             f"model returned {len(points)} estimates")
        features = [None] * len(points) if features is None else list(features)
        if len(features) != len(points):
            raise ValueError(f"outputs['features'] must have one entry per stage ({len(points)}), "
                             f"got {len(features)}")
        return list(points), features

    def stage_losses(self, outputs, batch: dict) -> list[torch.Tensor]:
        """The unweighted loss of every stage, in stage order (``"none"`` stages give 0)."""
        points, features = self._split(outputs)
        gt = _landmarks(batch)
        terms = []
        for k, (name, pred, maps) in enumerate(zip(self.losses, points, features)):
            target = gt.to(pred)
            if name == "none":
                terms.append(pred.new_zeros(()))
            elif name == "iod_l2":
                terms.append(iod_l2_loss(pred, target, layout=self.layout))
            elif name != "align":
                terms.append(self.FUNCTIONS[name](pred, target))
            elif maps is None:
                raise ValueError(f"stage {k} uses 'align', which compares feature patches: pass "
                                 "outputs as {'points': [...], 'features': [...]} with features"
                                 f"[{k}] the (B, C, H, W) map stage {k} crops from")
            else:
                if "image" not in batch:
                    raise KeyError("stage 'align' maps points to the feature map from the input "
                                   f"size: the batch has no 'image'; its keys are {sorted(batch)}")
                size_in, size_map = tuple(batch["image"].shape[-2:]), tuple(maps.shape[-2:])
                terms.append(self.align(maps, resize_points(pred, size_in, size_map),
                                        resize_points(target, size_in, size_map)))
        return terms

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        terms = self.stage_losses(outputs, batch)
        return sum(w * t for w, t in zip(self.weights, terms))
