"""Landmark, head-pose and face-confidence metrics: NME, CED, AUC, failure rate, pose MAE, AP.

The normalised mean error of one image (Earp et al. (2021), Eq. 4, per image) is

    NME = (1 / n) * sum_k ||y_k - y_hat_k||_2 / d

with ``d`` one of

* ``"inter_ocular"`` -- distance between the outer eye corners (iBUG 36 and 45);
* ``"inter_pupil"`` -- distance between the pupil centres (means of the eye points for the
  68-point layout);
* ``"bbox"`` -- ``sqrt(w * h)`` of the ground-truth box (Earp et al. (2021), Sec. 3.2); the box
  is the min/max of the ground-truth landmarks unless one is passed;
* explicit per-image distances.

NMEs are fractions (0.05 is 5 %). Over a test set, the cumulative error distribution (CED) is
the fraction of images with NME <= e; AUC@T is its area on ``[0, T]`` divided by ``T`` and the
failure rate is the fraction with NME > T (Earp et al. use T = 0.08, Xia et al. 0.1).
Head pose (Xia et al. (2022), Eq. 9) is scored by :func:`pose_mae` per angle and
:func:`pose_error` per image (so ``failure_rate(pose_error(p, g), 10.0)`` is Xia's FR at 10
degrees); face confidence by :func:`average_precision`.

All functions accept numpy arrays or torch tensors and return the kind they were given; the
result's float dtype follows ``pred`` (integers become float32 by :func:`lmk._backend.as_float`).
"""

from __future__ import annotations

import math
import numbers

import torch

from ._backend import as_float, from_torch, to_torch
from .layouts import LAYOUT_68, Layout

NORMS = ("inter_ocular", "inter_pupil", "bbox")


def _normaliser(gt: torch.Tensor, norm, layout: Layout, box) -> torch.Tensor:
    """Per-image distance ``d``, shape ``gt.shape[:-2]``."""
    batch = gt.shape[:-2]
    if box is not None and not (isinstance(norm, str) and norm == "bbox"):
        raise ValueError("box is only used with norm='bbox'")
    if isinstance(norm, str):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS} or per-image distances, got {norm!r}")
        if norm in ("inter_ocular", "inter_pupil") and gt.shape[-2] != layout.num_points:
            raise ValueError(f"norm={norm!r} needs landmarks of layout {layout.name} "
                             f"(..., {layout.num_points}, 2), got {tuple(gt.shape)}")
        if norm == "inter_ocular":
            a, b = layout.outer_eye_corners
            return torch.linalg.vector_norm(gt[..., a, :] - gt[..., b, :], dim=-1)
        if norm == "inter_pupil":
            pupils = layout.pupils(gt)
            return torch.linalg.vector_norm(pupils[..., 0, :] - pupils[..., 1, :], dim=-1)
        if box is None:
            size = gt.amax(-2) - gt.amin(-2)                              # (..., 2): w, h
        else:
            bx, _ = to_torch(box)
            bx = as_float(bx).to(gt)
            if bx.shape[-1:] != (4,):
                raise ValueError(f"box must have shape (..., 4) of (x0, y0, x1, y1), "
                                 f"got {tuple(bx.shape)}")
            size = bx[..., 2:] - bx[..., :2]
        try:
            return torch.sqrt(size[..., 0] * size[..., 1]).expand(batch)
        except RuntimeError:
            raise ValueError(f"box must have the batch shape {tuple(batch)} of gt plus (4,), "
                             f"got {tuple(bx.shape)}") from None
    if isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        d = torch.full(batch, float(norm), dtype=gt.dtype, device=gt.device)
    else:
        d, _ = to_torch(norm)
        d = as_float(d).to(gt)
        try:
            d = d.expand(batch)
        except RuntimeError:
            raise ValueError(f"explicit norm distances must have the batch shape "
                             f"{tuple(batch)} of gt (..., N, 2), got {tuple(d.shape)}") from None
    return d


def _pair(pred, gt, min_ndim: int, last: int, shape: str):
    """``pred`` and ``gt`` as float tensors of one dtype, checked to share a shape ``shape``
    (at least ``min_ndim`` dims, the last of size ``last``); also whether ``pred`` was numpy."""
    p, was_numpy = to_torch(pred)
    g, _ = to_torch(gt)
    p = as_float(p)
    g = as_float(g).to(p)
    if p.ndim < min_ndim or p.shape[-1] != last or p.shape != g.shape:
        raise ValueError(f"pred and gt must both have shape {shape}, "
                         f"got {tuple(p.shape)} and {tuple(g.shape)}")
    return p, g, was_numpy


def nme(pred, gt, norm="inter_ocular", *, layout: Layout = LAYOUT_68, box=None):
    """Normalised mean error per image (Earp et al. (2021), Eq. 4, without the mean over images).

    Args:
        pred: ``(..., N, 2)`` predicted landmarks.
        gt: ``(..., N, 2)`` ground truth (same shape).
        norm: ``"inter_ocular"``, ``"inter_pupil"``, ``"bbox"``, a positive number, or an
            array of per-image distances broadcastable to the batch shape ``(...)``.
        layout: landmark layout for the eye-based norms (default: iBUG 68).
        box: with ``norm="bbox"``, optional ``(..., 4)`` boxes ``(x0, y0, x1, y1)``; by
            default the box spanned by the ground-truth landmarks.
    Returns:
        ``(...)`` NMEs as fractions, same kind as ``pred``. NaN in ``pred`` (e.g. a landmark the
        decoder could not place) gives a NaN NME for that image: it is not dropped.
    Raises:
        ValueError: shape mismatch, unknown norm, a layout/landmark-count mismatch, or a
            normalising distance that is not positive and finite.
    """
    p, g, was_numpy = _pair(pred, gt, 2, 2, "(..., N, 2)")
    if p.shape[-2] == 0:
        raise ValueError("pred and gt have no landmarks (N = 0)")
    d = _normaliser(g, norm, layout, box)
    bad = ~(torch.isfinite(d) & (d > 0))
    if bad.any():
        where = bad.nonzero().tolist()[:5]
        raise ValueError(f"normalising distance ({norm if isinstance(norm, str) else 'explicit'}) "
                         f"must be positive and finite; not so for image index(es) {where}")
    err = torch.linalg.vector_norm(p - g, dim=-1).mean(-1)
    return from_torch(err / d, was_numpy)


EARP_FAILURE_THRESHOLD = 0.08
"""Earp et al. (2021), Sec. 3.2: AUC and failure rate of single images at NME 0.08 (the zoo's
landmark figures use it)."""
XIA_FAILURE_THRESHOLD = 0.1
"""Xia et al. (2022), Table 4: a tracked frame fails above NME 0.1 (FR0.1)."""


def _nmes(nmes, threshold) -> tuple[torch.Tensor, bool, float]:
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) \
            or not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    e, was_numpy = to_torch(nmes)
    e = as_float(e).reshape(-1)
    if e.numel() == 0:
        raise ValueError("nmes is empty: need at least one image")
    if (e < 0).any():
        raise ValueError("nmes must be >= 0 (found negative values)")
    # NaN = a failed prediction: counted as an error larger than any threshold
    e = torch.where(torch.isnan(e), torch.full_like(e, math.inf), e)
    return e, was_numpy, float(threshold)


def _scalar(t: torch.Tensor, was_numpy: bool):
    return float(t) if was_numpy else t


def failure_rate(nmes, threshold: float = EARP_FAILURE_THRESHOLD):
    """Fraction of images with NME > ``threshold`` (NaN NMEs count as failures).

    Returns a float for numpy input, a 0-d tensor for torch input.
    """
    e, was_numpy, t = _nmes(nmes, threshold)
    return _scalar((e > t).to(e.dtype).mean(), was_numpy)


def auc(nmes, threshold: float = EARP_FAILURE_THRESHOLD):
    """Area under the CED curve on ``[0, threshold]``, normalised to ``[0, 1]``.

    Computed exactly, not on a grid: one image with error ``e`` contributes
    ``max(0, threshold - e)`` to the integral of the CED, so
    ``AUC = mean(max(0, 1 - e / threshold))``. (Grid-based implementations agree to within
    their step.) NaN NMEs count as failures. Returns a float for numpy input, a 0-d tensor for
    torch input.
    """
    e, was_numpy, t = _nmes(nmes, threshold)
    return _scalar((1.0 - e / t).clamp_min(0.0).mean(), was_numpy)


def ced(nmes, threshold: float = 0.08, steps: int = 100):
    """Cumulative error distribution: ``(errors, fraction)``, each ``(steps,)``.

    ``errors`` is ``linspace(0, threshold, steps)``; ``fraction[i]`` is the fraction of images
    with NME <= ``errors[i]`` (NaN NMEs count as failures). Same kind as ``nmes``.
    """
    if not isinstance(steps, numbers.Integral) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    e, was_numpy, t = _nmes(nmes, threshold)
    grid = torch.linspace(0.0, t, int(steps), dtype=e.dtype, device=e.device)
    fraction = (e[None, :] <= grid[:, None]).to(e.dtype).mean(-1)
    return from_torch(grid, was_numpy), from_torch(fraction, was_numpy)


def pose_mae(pred, gt, *, wrap: bool = True):
    """Head-pose mean absolute error per angle (Xia et al. (2022), Eq. 9, before averaging).

    Args:
        pred, gt: ``(..., 3)`` angles in degrees (yaw, pitch, roll).
        wrap: take differences modulo 360 into ``[-180, 180)`` (359 deg vs 1 deg is 2 deg).
    Returns:
        ``(3,)`` MAE of yaw, pitch, roll over all leading dims, same kind as ``pred``. Xia et
        al.'s MAE is the mean of the three.
    """
    p, g, was_numpy = _pair(pred, gt, 1, 3, "(..., 3) of (yaw, pitch, roll) degrees")
    if p.numel() == 0:
        raise ValueError("pred and gt are empty: need at least one pose")
    diff = p - g
    if wrap:
        diff = torch.remainder(diff + 180.0, 360.0) - 180.0
    return from_torch(diff.abs().reshape(-1, 3).mean(0), was_numpy)


def pose_error(pred, gt, *, wrap: bool = True):
    """Head-pose error per image: the summand of Xia et al. (2022), Eq. 9.

    ``(|yaw - yaw'| + |pitch - pitch'| + |roll - roll'|) / 3`` in degrees; its mean over images is
    Xia's MAE, and ``failure_rate(pose_error(pred, gt), 10.0)`` their FR at 10 degrees.

    Args:
        pred, gt: ``(..., 3)`` angles in degrees (yaw, pitch, roll).
        wrap: take differences modulo 360 into ``[-180, 180)``, as :func:`pose_mae`.
    Returns:
        ``(...)`` errors in degrees, same kind as ``pred``.
    """
    p, g, was_numpy = _pair(pred, gt, 1, 3, "(..., 3) of (yaw, pitch, roll) degrees")
    diff = p - g
    if wrap:
        diff = torch.remainder(diff + 180.0, 360.0) - 180.0
    return from_torch(diff.abs().mean(-1), was_numpy)


def average_precision(scores, labels):
    """Average precision of binary scores: the area under the precision-recall curve.

    ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds ``t_k`` from the
    highest down, where ``P_k`` and ``R_k`` are the precision and recall of calling every
    sample with ``score >= t_k`` positive (``R_0 = 0``). Tied scores form one threshold; there
    is no interpolation, so a constant score gives the positive rate and a perfect ranking 1.
    (Xia et al. (2022), Sec. 4.3.3 report the AP of face detections on WIDER Face; here the
    samples are face and non-face crops, so this is the AP of a classifier.)

    Args:
        scores: ``(M,)`` confidences of "face"; any monotone scale (logits or probabilities).
        labels: ``(M,)`` 1 (face) or 0 (background), bool or numbers.
    Returns:
        A float for numpy input, a 0-d tensor for torch input (the kind of ``scores``).
    Raises:
        ValueError: shapes differ, no samples, non-finite scores, labels other than 0/1, or
            no positive label (AP is undefined without positives).
    """
    s, was_numpy = to_torch(scores)
    y, _ = to_torch(labels)
    s = as_float(s).reshape(-1)
    y = y.reshape(-1).to(device=s.device)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same number of samples, got {s.numel()} "
                         f"and {y.numel()}")
    if s.numel() == 0:
        raise ValueError("scores is empty: need at least one sample")
    if not torch.isfinite(s).all():
        raise ValueError("scores must be finite (found NaN or inf)")
    if not ((y == 0) | (y == 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {torch.unique(y).tolist()[:6]}")
    y = y.to(s.dtype)
    positives = y.sum()
    if positives == 0:
        raise ValueError("labels has no positive (1): average precision is undefined")
    order = torch.argsort(s, descending=True, stable=True)
    s, y = s[order], y[order]
    true_pos = torch.cumsum(y, 0)
    called = torch.arange(1, len(s) + 1, dtype=s.dtype, device=s.device)
    last_of_tie = torch.ones_like(s, dtype=torch.bool)
    last_of_tie[:-1] = s[1:] != s[:-1]               # each threshold counts all its ties
    precision = (true_pos / called)[last_of_tie]
    recall = (true_pos / positives)[last_of_tie]
    recall_before = torch.cat([recall.new_zeros(1), recall[:-1]])
    return _scalar(((recall - recall_before) * precision).sum(), was_numpy)
