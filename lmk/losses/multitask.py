"""Xia et al.'s (2022) multitask losses for ATPN: alignment (Eq. 3), face confidence (Eq. 5), pose (Eq. 7).

Each function computes one value per image and reduces over the batch like every loss of
:mod:`lmk.losses`; the landmark and pose terms take an optional ``(B,)`` bool ``mask`` of the
samples that have labels (negatives for the tracking branch have none) and reduce over those
only. :class:`MultitaskLoss` adapts the three to the training loop's ``loss_fn(outputs, batch)``
with one weight per term; Xia train one term per stage (:data:`XIA_STAGE_WEIGHTS`, Sec. 3.4).

The L2 regularisation of Eqs. 4, 6 and 8 (``w * l2`` of the weights a stage trains) is not a
term here: ``lmk.train.fit(..., weight_decay=lam)`` gives it to Adam, which adds ``lam * theta``
to the gradient of every trained parameter, the gradient of ``(lam / 2) * ||theta||^2``. So Xia's
``w`` is ``lam / 2``, frozen parts are left alone as Eqs. 6 and 8 ask (their ``l2`` covers the
trained branch only), and the loss values stay the data terms (comparable across settings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.multitask import landmark_mask
from ..layouts import LAYOUT_68, Layout
from .coordinates import inter_ocular_distance
from .reduction import _check_points, _reduce

__all__ = ["alignment_loss", "confidence_loss", "pose_loss", "MultitaskLoss", "XIA_STAGE_WEIGHTS"]

XIA_STAGE_WEIGHTS = {1: {"alignment": 1.0, "confidence": 0.0, "pose": 0.0},
                     2: {"alignment": 0.0, "confidence": 1.0, "pose": 0.0},
                     3: {"alignment": 0.0, "confidence": 0.0, "pose": 1.0}}
"""Xia Sec. 3.4: stage 1 trains the alignment, stage 2 the face confidence, stage 3 the pose
(with the modules of ``lmk.models.atpn.STAGE_MODULES``; freeze the others)."""


def _check_mask(mask, batch: int) -> torch.Tensor | None:
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (batch,):
        got = (f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor)
               else type(mask).__name__)
        raise ValueError(f"mask must be a bool tensor of shape (B,) = ({batch},), got {got}")
    return mask


def _masked(per_image_fn, tensors: tuple, mask, reduction: str) -> torch.Tensor:
    """``per_image_fn`` on the masked-in rows of ``tensors`` only, then reduced over them.

    The masked-out rows never enter the arithmetic, so whatever they hold (zeros, a zero
    inter-ocular distance) cannot turn into NaN, in the value or in the gradient. ``"mean"``
    averages over the masked-in samples (Xia's ``1 / N`` counts the samples that have the
    label), and is an exact 0 that still belongs to the graph when there are none.
    ``"none"`` gives ``(B,)`` with 0 at the masked-out samples.
    """
    if mask is None:
        return _reduce(per_image_fn(*tensors), reduction)
    per_image = per_image_fn(*(t[mask] for t in tensors))
    if reduction == "mean":
        return per_image.sum() / max(int(mask.sum()), 1)
    if reduction == "none":
        return per_image.new_zeros(mask.shape).masked_scatter(mask, per_image)
    return _reduce(per_image, reduction)


def alignment_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None, *,
                   layout: Layout = LAYOUT_68, reduction: str = "mean") -> torch.Tensor:
    """Xia et al. (2022), Eq. 3: the point-to-point error normalised by the inter-ocular distance.

    Per image: ``(1 / N) sum_n ||s_n - s'_n||_2 / d_ION``, the NME at the inter-ocular norm
    (``lmk.metrics.nme``). Xia describe ``L_A`` as "the point-to-point Euclidean [distance]
    normalized with the inter-ocular distance" and "the normalized error of face alignment",
    which is this; the printed ``||S_1 - S'_1||_2`` read as one norm of all ``2N`` coordinates
    would instead be ``sqrt(sum_n ||s_n - s'_n||^2)``, which grows with ``sqrt(N)``. Unlike Yan
    et al.'s Eq. 1 (:func:`~lmk.losses.iod_l2_loss`) the distances are not squared.

    Args:
        pred, gt: ``(B, N, 2)`` landmarks in pixels.
        mask: optional ``(B,)`` bool: the samples with landmarks (the others are skipped).
        layout: the layout that names the outer eye corners.
        reduction: ``"mean"`` (over the masked-in samples), ``"sum"`` or ``"none"``.
    Raises:
        ValueError: bad shapes, a bad mask, or a masked-in sample with a zero or non-finite
            inter-ocular distance (mark a sample without landmarks in ``mask``, not with NaN).
    """
    _check_points(pred, gt)
    mask = _check_mask(mask, pred.shape[0])

    def per_image(p, g):
        d = inter_ocular_distance(g, layout)
        bad = ~(torch.isfinite(d) & (d > 0))
        if bad.any():
            raise ValueError(f"inter-ocular distance must be positive and finite for every sample with "
                             f"landmarks; not so for {int(bad.sum())} of them (mark samples without "
                             "landmarks with the mask, not with zeros or NaN)")
        return torch.linalg.vector_norm(p - g, dim=-1).mean(-1) / d

    return _masked(per_image, (pred, gt), mask, reduction)


def confidence_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Xia et al. (2022), Eq. 5 as intended: binary cross-entropy of the face confidence.

    Per image: ``-(y log p + (1 - y) log(1 - p))`` with ``p = sigmoid(logit)``. Eq. 5 is printed
    with ``(1 - y)(1 - log p)``, which is not a cross-entropy: for a background sample it is
    ``log p - 1``, which falls without bound as ``p -> 0``. The branch is a softmax classifier
    (Sec. 3.2) with labels 0 / 1, whose loss is the binary cross-entropy written here. It is computed from the logit with
    ``binary_cross_entropy_with_logits``, which stays finite for confident wrong answers
    (``log sigmoid`` would reach ``log 0``).

    Args:
        logits: ``(B,)`` face-confidence logits (ATPN's ``outputs["confidence"]``).
        labels: ``(B,)`` targets in ``[0, 1]`` (1 face, 0 background).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    for name, t in (("logits", logits), ("labels", labels)):
        if not isinstance(t, torch.Tensor) or t.ndim != 1:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a (B,) tensor, got {got}")
    if logits.shape != labels.shape:
        raise ValueError(f"logits and labels must have the same shape (B,), got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    labels = labels.to(logits.dtype)
    if not ((labels >= 0) & (labels <= 1)).all():
        raise ValueError("labels must lie in [0, 1] (1 face, 0 background)")
    per_image = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return _reduce(per_image, reduction)


def pose_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None, *,
              reduction: str = "mean") -> torch.Tensor:
    """Xia et al. (2022), Eq. 7: the Euclidean distance of the head-pose angles, over 3.

    Per image: ``sqrt(sum_k (P_k - P'_k)^2) / 3`` over yaw, pitch and roll, in the unit of the
    inputs (radians for ATPN). Eq. 7 prints ``sqrt(||P_h - P'_h||) / 3``; with ``||.||`` read as
    the squared norm that is the Euclidean distance, divided by the three angles as Eq. 9's MAE
    is. (The square root of the norm itself would have an infinite slope at a perfect
    prediction.) Differences are not wrapped modulo a turn: ATPN's ``tanh * pi`` output and the
    labels both lie in ``(-pi, pi)``, and head poses stay far from the seam.

    Args:
        pred, gt: ``(B, 3)`` yaw, pitch, roll in one unit.
        mask: optional ``(B,)`` bool: the samples with a pose label.
        reduction: ``"mean"`` (over the masked-in samples), ``"sum"`` or ``"none"``.
    """
    for name, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[-1] != 3:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a (B, 3) tensor of yaw, pitch, roll, got {got}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape (B, 3), got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    mask = _check_mask(mask, pred.shape[0])
    return _masked(lambda p, g: torch.linalg.vector_norm(p - g, dim=-1) / 3.0, (pred, gt), mask, reduction)


class MultitaskLoss(nn.Module):
    """``loss_fn(outputs, batch)``: ATPN's weighted sum of Eqs. 3, 5 and 7.

    ``alignment * L_A + confidence * L_T + pose * L_P``, each term the mean over its samples:
    ``L_A`` and ``L_P`` over the samples with landmarks (``batch["has_landmarks"]``, all of them
    when the batch has no such key; ``lmk.data.multitask.landmark_mask``), ``L_T`` over every
    sample. A term with weight 0 is not computed, so its labels need not be in the batch.

    Units: the data give the pose in degrees (``lmk.data``), ATPN predicts radians (``tanh * pi``).
    The labels are converted here, and only here, with ``torch.deg2rad``: the pose term compares
    radians, as the network's output range is written. (Metrics convert the other way, to report
    degrees: ``lmk.multitask_metrics.pose_degrees``.)

    Reads ``outputs["landmarks"]`` ``(B, N, 2)`` input pixels, ``outputs["confidence"]`` ``(B,)``
    logits, ``outputs["pose"]`` ``(B, 3)`` radians; ``batch["landmarks"]``, ``batch["face"]``
    ``(B,)`` in ``[0, 1]`` and ``batch["pose"]`` ``(B, 3)`` degrees. L2 regularisation: see the
    module docstring (``fit(weight_decay=...)``).

    Args:
        alignment, confidence, pose: the weights (>= 0, not all 0).
        layout: the layout naming the outer eye corners of Eq. 3.
    """

    TERMS = ("alignment", "confidence", "pose")

    def __init__(self, alignment: float = 1.0, confidence: float = 1.0, pose: float = 1.0, *,
                 layout: Layout = LAYOUT_68):
        super().__init__()
        weights = {"alignment": alignment, "confidence": confidence, "pose": pose}
        for name, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < float("inf"):
                raise ValueError(f"weight {name} must be a finite number >= 0, got {w!r}")
        if not any(weights.values()):
            raise ValueError("MultitaskLoss: every weight is 0, there is nothing to train")
        self.weights = {name: float(w) for name, w in weights.items()}
        self.layout = layout

    @classmethod
    def stage(cls, stage: int, *, layout: Layout = LAYOUT_68) -> "MultitaskLoss":
        """The loss of one of Xia's training stages (:data:`XIA_STAGE_WEIGHTS`)."""
        if stage not in XIA_STAGE_WEIGHTS:
            raise ValueError(f"stage must be one of {sorted(XIA_STAGE_WEIGHTS)}, got {stage!r}")
        return cls(**XIA_STAGE_WEIGHTS[stage], layout=layout)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={w:g}" for name, w in self.weights.items())

    @staticmethod
    def _get(mapping, key: str, what: str, shape: str, term: str) -> torch.Tensor:
        if key not in mapping:
            raise KeyError(f"the {term} term needs {what}[{key!r}] {shape}; {what} has keys "
                           f"{sorted(mapping)} (give the term weight 0 to skip it)")
        return mapping[key]

    def terms(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        """The unweighted terms with a non-zero weight, by name (each a scalar, float32)."""
        if not isinstance(outputs, dict):
            raise TypeError(f"outputs must be ATPN's dict of 'landmarks', 'pose', 'confidence', got "
                            f"{type(outputs).__name__}")
        terms = {}
        if self.weights["alignment"]:
            pred = self._get(outputs, "landmarks", "outputs", "(B, N, 2)", "alignment").float()
            gt = self._get(batch, "landmarks", "batch", "(B, N, 2)", "alignment").to(pred)
            terms["alignment"] = alignment_loss(pred, gt, landmark_mask(batch), layout=self.layout)
        if self.weights["confidence"]:
            logits = self._get(outputs, "confidence", "outputs", "(B,) logits", "confidence").float()
            labels = self._get(batch, "face", "batch", "(B,) 1 face / 0 background", "confidence")
            terms["confidence"] = confidence_loss(logits, labels.to(logits))
        if self.weights["pose"]:
            pred = self._get(outputs, "pose", "outputs", "(B, 3) radians", "pose").float()
            degrees = self._get(batch, "pose", "batch", "(B, 3) degrees", "pose").to(pred)
            terms["pose"] = pose_loss(pred, torch.deg2rad(degrees), landmark_mask(batch))
        return terms

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        return sum(self.weights[name] * value for name, value in self.terms(outputs, batch).items())
