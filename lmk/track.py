"""Tracking landmarks through a video, frame by frame (Xia et al. 2022, Sec. 3 and Table 4).

ATPN needs a face detector only when it loses the face. Xia's loop (Sec. 3, Fig. 2a)::

    frame 0:      region of interest (ROI) = the face detector's box
    frame t > 0:  ROI = bounding rectangle of frame t-1's predicted landmarks,
                  widened by 25 % of its side on every side
    every frame:  crop the ROI -> network -> landmarks (mapped back to the frame) + confidence;
                  a confidence below 0.7 means the face is lost: the detector places the next
                  frame's ROI instead of the landmarks

The network input is square, so :func:`lmk.data.transforms.crop_matrix` squares the widened
rectangle about its centre with its longer side; the detector's box is widened the same way.
A lost frame keeps its (doubtful) landmarks and is scored with them; only the *next* frame is
re-detected, as in Xia's loop (their Table 4: detection frames = sequences + failure frames).

:class:`Tracker` runs the loop around any model through a small protocol::

    predict_fn(crops, transforms) -> (landmarks, confidence)
        crops       (B, 3, H, W) float32, normalised as lmk.data.transforms.normalize_image
        transforms  (B, 2, 3) float64 numpy, frame -> crop (most predictors ignore them)
        landmarks   (B, N, 2) in crop pixels, numpy or torch
        confidence  (B,) face probability in [0, 1], or None when the model states none
    predict_fn.reset()  optional; called before every video (a predictor with memory)

:func:`atpn_predictor` wraps Xia's ATPN (the sigmoid of its confidence logit),
:func:`marginal_predictor` Yin's 1D heatmap detector and :class:`YinPredictor` Yin's tracker
(:class:`lmk.models.temporal.YinTracker`, which carries its Eq. 13 state from frame to frame).
Models without a confidence are re-detected by a rule, ``fallback``:

* ``"spread"``: the face is lost when the predicted landmarks' rectangle has grown or shrunk
  by more than a factor ``1 + max_change`` since the last detector box, or when its centre is
  more than ``max_change`` of a side from the centre of the box this frame was cropped from.
  The size is compared with the last *detection*, not the last frame, because a track drifts
  by a few per cent a frame: a network trained only on centred crops predicts a slightly
  smaller face in a crop that is off, so its ROI shrinks frame after frame until the face is
  gone, and no frame-to-frame check sees it.
* ``"never"``: every frame keeps the track.

Landmarks that are not finite, or whose rectangle is flat or under :data:`MIN_SIDE` pixels
(an untrained network's mean shape at one point), cannot place an ROI: such a frame is lost
whatever the rule or the confidence.

Scores (:meth:`TrackResult.summary`, :func:`summarize`): the NME of every frame, with the
inter-ocular distance as Xia's 300VW results (Table 3; ``norm`` changes it); the fraction of
frames whose NME exceeds 0.1 (Xia's FR_0.1); Xia's tracking *failure rate* (Table 4), here
``lost_rate``: lost frames / frames; detector calls and the fraction saved against calling the
detector on every frame. The baseline beside them predicts frame t-1's true landmarks for frame t
(no motion): what a tracker must beat.

On synthetic videos the detector is simulated (:class:`SimulatedDetector`): the true landmark
box, moved and resized at random, standing in for Xia's separate face detector.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from . import metrics
from ._backend import check_size
from .data import to_original
from .data.frame_pairs import check_video, jitter_box
from .data.transforms import box_from_landmarks, crop_matrix, normalize_image, warp_image
from .layouts import LAYOUT_68, Layout
from .metrics import XIA_FAILURE_THRESHOLD
from .progress import progress

FALLBACKS = ("spread", "never")
MIN_SIDE = 2.0
"""Smallest side, in frame pixels, of a landmark rectangle that can place the next ROI."""


def _check_fraction(value, name: str, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


class SimulatedDetector:
    """A face detector for videos with ground truth: ``detector(video, index) -> (4,) box``.

    The box is the tight box of frame ``index``'s true landmarks moved and resized by
    :func:`lmk.data.frame_pairs.jitter_box` (shift and log-scale ``N(0, jitter^2)`` in units of
    the box side). The noise is a pure function of ``seed``, the frame's landmarks and
    ``index``: reruns agree, and different videos get different errors.

    Args:
        jitter: the detector's error, as a fraction of the face size (0: the true box).
        seed: a non-negative int.
    """

    def __init__(self, jitter: float = 0.05, seed: int = 0):
        jitter_box((0, 0, 1, 1), np.random.default_rng(0), jitter)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.jitter, self.seed = float(jitter), int(seed)

    def __call__(self, video, index: int) -> np.ndarray:
        truth = np.asarray(video["landmarks"][index], dtype=np.float64)
        rng = np.random.default_rng((self.seed, zlib.crc32(truth.tobytes()), int(index)))
        return jitter_box(box_from_landmarks(truth), rng, self.jitter)

    def __repr__(self) -> str:
        return f"SimulatedDetector(jitter={self.jitter}, seed={self.seed})"


@dataclass
class TrackResult:
    """One tracked video. ``T`` frames, ``N`` landmarks, frame pixels throughout.

    Attributes:
        landmarks: ``(T, N, 2)`` predictions.
        truth: ``(T, N, 2)`` ground truth.
        nme: ``(T,)`` per-frame NME (``norm``); NaN where the prediction was not finite.
        baseline_nme: ``(T - 1,)`` NME of frame ``t - 1``'s truth as the prediction of frame
            ``t``, for ``t = 1 .. T - 1``.
        confidence: ``(T,)`` the predictor's face probability; NaN where it states none.
        detected: ``(T,)`` bool, the frame's ROI came from the detector.
        lost: ``(T,)`` bool, the frame lost the face (the next one is detected).
        boxes: ``(T, 4)`` the box each crop was made from, before the margin.
        transforms: ``(T, 2, 3)`` frame -> crop.
        norm: the NME normalisation.
    """

    landmarks: np.ndarray
    truth: np.ndarray
    nme: np.ndarray
    baseline_nme: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray
    lost: np.ndarray
    boxes: np.ndarray
    transforms: np.ndarray
    norm: str

    def summary(self, threshold: float = XIA_FAILURE_THRESHOLD) -> dict:
        """This video's figures; see :func:`summarize`."""
        return summarize([self], threshold)


def summarize(results, threshold: float = XIA_FAILURE_THRESHOLD) -> dict:
    """Xia's Table 4 in miniature, pooled over the frames of several tracked videos.

    Args:
        results: :class:`TrackResult` s (one per video).
        threshold: NME above which a frame counts as a failure (Xia: 0.1).
    Returns:
        dict: ``videos``, ``frames``, ``detector_calls``, ``detector_calls_saved`` (``1 -
        calls / frames``), ``lost_frames``, ``lost_rate`` (Xia's tracking failure rate),
        ``mean_nme`` and ``failure_rate`` (NME > ``threshold``; NaN NMEs count as failures and
        make the mean NaN), and the last-frame baseline's ``baseline_mean_nme`` and
        ``baseline_failure_rate`` (over frames 1 .. T-1 of every video).
    """
    results = list(results)
    if not results or not all(isinstance(r, TrackResult) for r in results):
        raise ValueError("results must be a non-empty list of TrackResult")
    nme = np.concatenate([r.nme for r in results])
    baseline = np.concatenate([r.baseline_nme for r in results])
    calls = int(sum(r.detected.sum() for r in results))
    lost = int(sum(r.lost.sum() for r in results))
    out = {"videos": len(results), "frames": len(nme), "detector_calls": calls,
           "detector_calls_saved": 1.0 - calls / len(nme), "lost_frames": lost,
           "lost_rate": lost / len(nme), "mean_nme": float(nme.mean()),
           "failure_rate": float(metrics.failure_rate(nme, threshold)),
           "baseline_mean_nme": float(baseline.mean()) if len(baseline) else math.nan,
           "baseline_failure_rate": (float(metrics.failure_rate(baseline, threshold))
                                     if len(baseline) else math.nan)}
    return out


class Tracker:
    """Xia's tracking loop around a predictor (module docstring).

    Args:
        predict_fn: the protocol of the module docstring.
        input_size: crop size ``(H, W)`` or an int, the model's input.
        margin: widening of the landmark rectangle (and of the detector's box) on each side,
            as a fraction of its longer side (Xia: 0.25). Match the crop the model was trained on.
        threshold: confidence below which the face is lost (Xia: 0.7).
        detector: ``detector(video, index) -> (x0, y0, x1, y1)`` in frame pixels; default
            :class:`SimulatedDetector` ``(jitter=0.05)``.
        fallback: re-detection rule for predictors without a confidence: ``"spread"`` or
            ``"never"``.
        max_change: tolerance of the ``"spread"`` rule (0.5: size within x1.5 of the last
            detection's, centre within half a side of the ROI's).
        detect_every_frame: crop every frame from the detector's box (Xia's "detection mode",
            Table 3); the loop otherwise unchanged.
        norm: NME normalisation, one of ``lmk.metrics.NORMS`` (Xia's 300VW figures:
            ``"inter_ocular"``).
        layout: landmark layout of the eye-based norms.
    """

    def __init__(self, predict_fn, input_size, *, margin: float = 0.25, threshold: float = 0.7,
                 detector=None, fallback: str = "spread", max_change: float = 0.5,
                 detect_every_frame: bool = False, norm: str = "inter_ocular",
                 layout: Layout = LAYOUT_68):
        if not callable(predict_fn):
            raise ValueError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
        if detector is not None and not callable(detector):
            raise ValueError(f"detector must be callable (video, index) -> box, got "
                             f"{type(detector).__name__}")
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        if not isinstance(detect_every_frame, bool):
            raise ValueError(f"detect_every_frame must be True or False, "
                             f"got {detect_every_frame!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
            raise ValueError(f"margin must be a number >= 0, got {margin!r}")
        self.predict_fn = predict_fn
        self.input_size = check_size(input_size, "input_size")
        self.margin = float(margin)
        self.threshold = _check_fraction(threshold, "threshold")
        self.detector = SimulatedDetector() if detector is None else detector
        self.fallback = fallback
        self.max_change = _check_fraction(max_change, "max_change", 0.0, math.inf)
        self.detect_every_frame = detect_every_frame
        if norm not in metrics.NORMS:
            raise ValueError(f"norm must be one of {metrics.NORMS}, got {norm!r}")
        self.norm, self.layout = norm, layout

    # ------------------------------------------------------------------ one frame
    def _detect(self, video, index: int) -> np.ndarray:
        box = np.asarray(self.detector(video, index), dtype=np.float64)
        if box.shape != (4,) or not np.isfinite(box).all() \
                or not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f"detector returned {box.tolist()} for frame {index}; expected a "
                             "finite (x0, y0, x1, y1) with x1 > x0 and y1 > y0")
        return box

    def _predict(self, crops, matrices, n: int, index: int):
        """``(landmarks (B, N, 2) crop px float64, confidence (B,) float64 or None)``, checked."""
        b = len(crops)
        out = self.predict_fn(crops, matrices)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError(f"predict_fn must return (landmarks, confidence or None), got "
                             f"{type(out).__name__} at frame {index}")
        points, confidence = out
        if isinstance(points, torch.Tensor):
            points = points.detach().cpu().double().numpy()
        points = np.asarray(points, dtype=np.float64)
        if points.shape != (b, n, 2):
            raise ValueError(f"predict_fn returned landmarks of shape {points.shape} at frame "
                             f"{index}; expected ({b}, {n}, 2) in crop pixels")
        if confidence is None:
            return points, None
        if isinstance(confidence, torch.Tensor):
            confidence = confidence.detach().cpu().double().numpy()
        confidence = np.asarray(confidence, dtype=np.float64)
        if confidence.shape != (b,) or not ((confidence >= 0.0) & (confidence <= 1.0)).all():
            raise ValueError(f"predict_fn returned confidence {confidence.tolist()} at frame "
                             f"{index}; expected shape ({b},) with probabilities in [0, 1] "
                             "(apply torch.sigmoid to a logit) or None")
        return points, confidence

    def _keeps_track(self, points: np.ndarray, box: np.ndarray, anchor: np.ndarray,
                     confidence) -> bool:
        """Whether frame ``t``'s landmarks may place frame ``t + 1``'s ROI (``box``: this
        frame's ROI box; ``anchor``: the last detector box)."""
        if not np.isfinite(points).all():
            return False
        found = box_from_landmarks(points)
        width, height = found[2:] - found[:2]
        side = max(width, height)
        if side < MIN_SIDE or min(width, height) <= 0:
            return False
        if confidence is not None:
            return confidence >= self.threshold
        if self.fallback == "never":
            return True
        roi_side = max(box[2] - box[0], box[3] - box[1])
        ratio = side / max(anchor[2] - anchor[0], anchor[3] - anchor[1])
        shift = np.abs((found[:2] + found[2:]) - (box[:2] + box[2:])).max() / 2 / roi_side
        limit = 1.0 + self.max_change
        return bool(1.0 / limit <= ratio <= limit and shift <= self.max_change)

    # ------------------------------------------------------------------ the loop
    def track(self, video) -> TrackResult:
        """Track one video: a dict with ``frames`` ``(T, H, W, 3)`` uint8 and ``landmarks``
        ``(T, N, 2)`` (the truth, for the scores and the simulated detector)."""
        return self._track_together([video], [check_video(video)])[0]

    def track_all(self, videos, show_progress: bool = False, batch: int = 16) -> list[TrackResult]:
        """:meth:`track` every video of a sequence (e.g. a :class:`lmk.data.SynthVideos`).

        Videos of the same length are tracked together, up to ``batch`` at a time: frame ``t``
        of each goes through the network in one batch. Each video keeps its own ROI, detector
        calls and state (a predictor's ``reset`` starts every group), so the results are those
        of :meth:`track` on each video (up to float rounding of batched convolutions).
        """
        videos = [videos[i] for i in range(len(videos))]
        checked = [check_video(video, f"videos[{i}]") for i, video in enumerate(videos)]
        by_shape = {}
        for i, (_, truth) in enumerate(checked):
            by_shape.setdefault(truth.shape, []).append(i)
        groups = [ids[k:k + batch] for ids in by_shape.values() for k in range(0, len(ids), batch)]
        results = [None] * len(videos)
        for ids in progress(groups, disable=not show_progress, desc="tracking"):
            together = self._track_together([videos[i] for i in ids], [checked[i] for i in ids])
            for i, result in zip(ids, together):
                results[i] = result
        return results

    def _track_together(self, videos, checked) -> list[TrackResult]:
        """Xia's loop over videos of one length ``T`` and ``N`` landmarks, frame by frame;
        ``checked``: their ``check_video`` arrays."""
        t_count, n = checked[0][1].shape[:2]
        b = len(videos)
        reset = getattr(self.predict_fn, "reset", None)
        if callable(reset):
            reset()
        landmarks = np.empty((b, t_count, n, 2))
        confidence = np.full((b, t_count), np.nan)
        detected = np.zeros((b, t_count), bool)
        lost = np.zeros((b, t_count), bool)
        boxes = np.empty((b, t_count, 4))
        transforms = np.empty((b, t_count, 2, 3))
        previous = [None] * b                             # landmarks that place the next ROI
        anchor = [None] * b                               # the last detector box
        for t in range(t_count):
            crops = []
            for v, (frames, _) in enumerate(checked):
                if previous[v] is None or self.detect_every_frame:
                    boxes[v, t], detected[v, t] = self._detect(videos[v], t), True
                    anchor[v] = boxes[v, t]
                else:
                    boxes[v, t] = box_from_landmarks(previous[v])
                transforms[v, t] = crop_matrix(boxes[v, t], self.input_size, self.margin)
                crops.append(normalize_image(warp_image(frames[t], transforms[v, t], self.input_size)))
            points, conf = self._predict(torch.stack(crops), transforms[:, t], n, t)
            for v in range(b):
                landmarks[v, t] = to_original(points[v], transforms[v, t])
                c = None if conf is None else float(conf[v])
                if c is not None:
                    confidence[v, t] = c
                lost[v, t] = not self._keeps_track(landmarks[v, t], boxes[v, t], anchor[v], c)
                previous[v] = None if lost[v, t] else landmarks[v, t]
        results = []
        for v, (_, truth) in enumerate(checked):
            nme = np.asarray(metrics.nme(landmarks[v], truth, norm=self.norm, layout=self.layout))
            baseline = np.asarray(metrics.nme(truth[:-1], truth[1:], norm=self.norm,
                                              layout=self.layout))
            results.append(TrackResult(landmarks[v], truth, nme, baseline, confidence[v], detected[v],
                                       lost[v], boxes[v], transforms[v], self.norm))
        return results


# ---------------------------------------------------------------------- predictors
def _device(model: torch.nn.Module) -> torch.device:
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError("model is in training mode: call model.eval() before tracking (batch "
                         "norm on one crop at a time needs the running statistics)")
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def atpn_predictor(model):
    """``predict_fn`` for Xia's :class:`lmk.models.ATPN` (eval mode): its ``landmarks`` and
    the sigmoid of its ``confidence`` logit."""
    device = _device(model)

    @torch.no_grad()
    def predict(crops, transforms):
        out = model(crops.to(device))
        return out["landmarks"].cpu(), torch.sigmoid(out["confidence"]).cpu()
    return predict


def marginal_predictor(model, codec):
    """``predict_fn`` for Yin's :class:`lmk.models.MarginalDetector` (eval mode) decoded by
    ``codec`` (a :class:`lmk.codecs.MarginalCodec`); no confidence."""
    device = _device(model)

    @torch.no_grad()
    def predict(crops, transforms):
        return codec.decode(model(crops.to(device))).cpu(), None
    return predict


class YinPredictor:
    """``predict_fn`` for :class:`lmk.models.temporal.YinTracker` (eval mode): keeps the Eq. 13
    state from frame to frame and forgets it at :meth:`reset` (every new video); no confidence.

    The state follows the crops: past features are added where they were in their own crop,
    which the ROI keeps close to the current face (see :mod:`lmk.models.temporal`).
    """

    def __init__(self, model, codec):
        self.device = _device(model)
        self.model, self.codec, self.state = model, codec, None

    def reset(self) -> None:
        self.state = None

    @torch.no_grad()
    def __call__(self, crops, transforms):
        heatmaps, self.state = self.model.step(crops.to(self.device), self.state)
        return self.codec.decode(heatmaps).cpu(), None
