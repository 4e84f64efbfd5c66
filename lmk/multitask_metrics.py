"""Metrics beyond landmarks for ``lmk.train``: head pose and face confidence.

A *metric* is any callable ``fn(outputs_list, batches) -> float``: ``outputs_list`` holds the
model's outputs of every evaluation batch (tensors on the CPU, float32), ``batches`` the
collated batches themselves without their ``image``. A recipe passes them by name::

    fit(model, train, val, loss_fn=MultitaskLoss.stage(3), decode_fn=operator.itemgetter("landmarks"),
        metrics=atpn_metrics(mean_pose(train)), monitor="pose_mae")

and ``History.val_metrics[name]`` records one value per epoch. The ready-made ones score ATPN
(Xia et al. 2022, Sec. 4.3): :class:`PoseMAE` (Eq. 9, degrees), :class:`PoseFailureRate`
(FR at 10 degrees), :class:`ConfidenceAP` (average precision of the face confidence), each
also as its baseline, a constant prediction: the training set's mean pose (:func:`mean_pose`)
for the pose, a constant score (AP = the share of faces) for the confidence.

Units: the model predicts radians, the data hold degrees; :func:`pose_degrees` is where
predictions become degrees (the loss converts the labels to radians,
``lmk.losses.MultitaskLoss``).

``lmk.evaluation.evaluate(..., metrics=...)`` computes them on the same pass as the landmark
metrics, which use only the samples with landmarks (``batch["has_landmarks"]``,
``lmk.data.multitask.landmark_mask``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from . import metrics as M
from .data.multitask import landmark_mask

__all__ = ["pose_degrees", "mean_pose",
           "PoseMAE", "PoseFailureRate", "ConfidenceAP", "atpn_metrics", "POSE_FAILURE_DEGREES"]

POSE_FAILURE_DEGREES = 10.0
"""Xia et al. (2022), Sec. 4.3.2: a pose fails when its error (Eq. 9's summand) exceeds 10 deg."""


# ------------------------------------------------------------------------------- metrics
def pose_degrees(outputs: dict) -> torch.Tensor:
    """ATPN's ``outputs["pose"]`` ``(B, 3)`` radians as degrees: the one conversion of predictions."""
    return torch.rad2deg(outputs["pose"])


def _concat(items: list, key: str, where: str) -> torch.Tensor:
    missing = [i for i, item in enumerate(items) if key not in item]
    if missing:
        raise KeyError(f"metric needs {where}[{key!r}], missing in batch {missing[0]} "
                       f"(keys {sorted(items[missing[0]])})")
    return torch.cat([torch.as_tensor(item[key]) for item in items])


def _pose_pairs(outputs_list, batches, constant) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted (or constant) and true poses in degrees of the samples with landmarks."""
    mask = torch.cat([landmark_mask(b) for b in batches])
    truth = _concat(batches, "pose", "batch").double()[mask]
    if constant is None:
        pred = torch.cat([pose_degrees(o) for o in outputs_list]).double()[mask]
    else:
        pred = torch.as_tensor(constant, dtype=torch.float64).expand_as(truth)
    return pred, truth


def _check_constant(constant):
    if constant is None:
        return None
    c = np.asarray(constant, dtype=np.float64)
    if c.shape != (3,) or not np.isfinite(c).all():
        raise ValueError(f"constant must be a finite (3,) pose in degrees, got {constant!r}")
    return c


class PoseMAE:
    """Xia et al. (2022), Eq. 9: the mean over images and angles of the absolute pose error, degrees.

    Over the samples with landmarks (negatives have no pose); NaN when there are none.

    Args:
        constant: score this ``(3,)`` pose in degrees for every sample instead of the model's
            (the baseline: the training set's :func:`mean_pose`).
    """

    def __init__(self, constant=None):
        self.constant = _check_constant(constant)

    def __call__(self, outputs_list, batches) -> float:
        pred, truth = _pose_pairs(outputs_list, batches, self.constant)
        return float(M.pose_error(pred, truth).mean()) if len(truth) else math.nan


class PoseFailureRate:
    """Xia et al. (2022), Sec. 4.3.2: the share of samples whose pose error (Eq. 9's summand)
    exceeds ``threshold`` degrees (FR at 10 degrees). ``constant`` as in :class:`PoseMAE`."""

    def __init__(self, threshold: float = POSE_FAILURE_DEGREES, constant=None):
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold > 0:
            raise ValueError(f"threshold must be a positive number of degrees, got {threshold!r}")
        self.threshold, self.constant = float(threshold), _check_constant(constant)

    def __call__(self, outputs_list, batches) -> float:
        pred, truth = _pose_pairs(outputs_list, batches, self.constant)
        if not len(truth):
            return math.nan
        return float(M.failure_rate(M.pose_error(pred, truth), self.threshold))


class ConfidenceAP:
    """Average precision of ATPN's face confidence against ``batch["face"]``, over every sample
    (:func:`lmk.metrics.average_precision`; Xia et al. (2022), Sec. 4.3.3).

    Args:
        constant: score every sample alike instead (the baseline; its AP is the share of faces).
    """

    def __init__(self, constant: bool = False):
        self.constant = bool(constant)

    def __call__(self, outputs_list, batches) -> float:
        labels = _concat(batches, "face", "batch")
        scores = (torch.zeros(len(labels)) if self.constant
                  else _concat(outputs_list, "confidence", "outputs"))
        return float(M.average_precision(scores.double(), labels))


def mean_pose(data) -> np.ndarray:
    """``(3,)`` mean yaw, pitch, roll in degrees over the items of ``data`` with landmarks.

    The pose baseline: :class:`PoseMAE` of this constant on the validation set is what a model
    that ignores the image scores. Reads every item (``data[i]["pose"]``), so pass the training
    set without augmentation or its source (e.g. ``SynthFaces``).
    """
    poses = [np.asarray(item["pose"], np.float64) for item in (data[i] for i in range(len(data)))
             if bool(item.get("has_landmarks", True))]
    if not poses:
        raise ValueError("mean_pose: data has no item with landmarks and a pose")
    return np.mean(poses, axis=0)


def atpn_metrics(mean_pose=None, *, pose: bool = True, confidence: bool = True,
                 threshold: float = POSE_FAILURE_DEGREES) -> dict:
    """ATPN's metrics for ``fit(metrics=...)``, each beside its baseline.

    ``pose_mae`` and ``pose_fr`` (degrees, FR at ``threshold``) with ``pose=True``, their
    ``*_baseline`` (the constant ``mean_pose``) when ``mean_pose`` is given; ``confidence_ap``
    and ``confidence_ap_baseline`` (the share of faces) with ``confidence=True``.
    """
    out = {}
    if pose:
        out["pose_mae"], out["pose_fr"] = PoseMAE(), PoseFailureRate(threshold)
        if mean_pose is not None:
            out["pose_mae_baseline"] = PoseMAE(constant=mean_pose)
            out["pose_fr_baseline"] = PoseFailureRate(threshold, constant=mean_pose)
    if confidence:
        out["confidence_ap"], out["confidence_ap_baseline"] = ConfidenceAP(), ConfidenceAP(constant=True)
    return out
