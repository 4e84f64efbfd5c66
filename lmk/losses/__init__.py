"""Training losses for heatmaps, 1D marginal heatmaps and coordinates.

Every loss here is a plain function of tensors that first computes **one value per image**
and then reduces over the batch: ``reduction="mean"`` (default) averages the per-image values,
``"sum"`` adds them, ``"none"`` returns them as a ``(B,)`` tensor. The per-image value is
stated in each docstring, so the numbers can be checked by hand.

Small ``nn.Module`` wrappers (:class:`HeatmapLoss`, :class:`ForegroundHeatmapLoss`,
:class:`MarginalLoss`, :class:`CoordinateLoss`) adapt these functions to the training loop's
contract ``loss_fn(outputs, batch) -> scalar``. Each takes the codec of its representation
(``lmk.codecs``) as its first argument and uses only the codec contract: the heatmap losses
compare the outputs with ``codec.encode(batch["landmarks"])`` (targets made on the fly, so
datasets never store heatmaps); :class:`CoordinateLoss` compares ``codec.decode(outputs)`` with
the landmarks, in input pixels as Yan et al.'s Eq. 1 is written.

Yan et al. (2020) train each refinement stage with its own loss (Sec. 4): :func:`align_loss`
(Eq. 2) compares feature-map patches cropped at the prediction and at the ground truth, and
:class:`StagedLoss` sums one named loss per stage over the estimates of a multi-stage model
(``["iod_l2", "l2", "l1", "align"]``: baseline, stages 1, 2, 3, Yan's assignment).

One module per family, all names importable from ``lmk.losses``:

* :mod:`lmk.losses.heatmap` -- :func:`heatmap_mse`, :func:`marginal_loss` (Yin et al. 2020,
  Eq. 11) and their wrappers.
* :mod:`lmk.losses.coordinates` -- :func:`iod_l2_loss` (Yan Eq. 1), :func:`l2_loss`,
  :func:`l1_loss`, :func:`inter_ocular_distance` and :class:`CoordinateLoss`.
* :mod:`lmk.losses.align` -- :func:`align_loss`, :class:`AlignLoss`, :func:`gaussian_kernel`.
* :mod:`lmk.losses.staged` -- :class:`StagedLoss`, :data:`YAN_ASSIGNMENT`, :data:`STAGE_LOSSES`.
* :mod:`lmk.losses.cascade` -- :class:`CascadeLoss`, Mahpod et al.'s (2018) heatmap + coordinate
  loss for the CCNN.
* :mod:`lmk.losses.multitask` -- Xia et al.'s (2022) ATPN losses: :func:`alignment_loss` (Eq. 3),
  :func:`confidence_loss` (Eq. 5), :func:`pose_loss` (Eq. 7) and :class:`MultitaskLoss`.
* :mod:`lmk.losses.reduction` -- the batch reduction (:data:`REDUCTIONS`) and shape checks
  they all share.
"""

from .cascade import CascadeLoss
from .align import AlignLoss, align_loss, gaussian_kernel
from .coordinates import CoordinateLoss, inter_ocular_distance, iod_l2_loss, l1_loss, l2_loss
from .heatmap import (ClipMarginalLoss, ForegroundHeatmapLoss, HeatmapLoss, MarginalLoss, heatmap_mse,
                      marginal_loss)
from .multitask import XIA_STAGE_WEIGHTS, MultitaskLoss, alignment_loss, confidence_loss, pose_loss
from .reduction import REDUCTIONS
from .staged import STAGE_LOSSES, YAN_ASSIGNMENT, StagedLoss

__all__ = ["ClipMarginalLoss", "REDUCTIONS", "heatmap_mse", "marginal_loss", "inter_ocular_distance", "iod_l2_loss",
           "l2_loss", "l1_loss", "gaussian_kernel", "align_loss", "AlignLoss", "HeatmapLoss",
           "ForegroundHeatmapLoss", "MarginalLoss", "CoordinateLoss", "YAN_ASSIGNMENT",
           "STAGE_LOSSES", "StagedLoss", "CascadeLoss", "alignment_loss", "confidence_loss", "pose_loss",
           "MultitaskLoss", "XIA_STAGE_WEIGHTS"]
