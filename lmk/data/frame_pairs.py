"""Clips of consecutive video frames, each cropped where a tracker would crop it.

A tracker is trained on sequences: Yin et al. (2020), Eq. 14, sum the 1D heatmap loss over the
frames of a video, so that the temporal refinement (Eq. 13, :mod:`lmk.models.temporal`) learns
what the past frames add. :class:`FramePairs` cuts videos into clips of ``length`` consecutive
frames (2: pairs) and crops every frame as a tracker sees it (Xia et al. 2022, Sec. 3)::

    frame t's region of interest = bounding rectangle of frame t-1's landmarks,
                                   widened by ``margin`` (25 %) on every side

:func:`lmk.data.transforms.crop_matrix` squares the rectangle about its centre with its longer
side (the network input is square). Here frame ``t - 1``'s landmarks are the ground truth and
:func:`jitter_box` moves and resizes the rectangle at random, standing in for the tracker's own
error; so the face is off-centre by about a frame's motion plus that error, as at test time.
A clip's first frame is never a video's frame 0, which has no previous frame.

The videos are those of :func:`lmk.data.synth_video` (or of ``lmk.data.read_300vw``): dicts
with ``frames`` ``(T, H, W, 3)`` uint8 and ``landmarks`` ``(T, N, 2)`` in frame pixels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from .._backend import check_positive_int
from ..geometry import apply_affine
from .transforms import box_from_landmarks, crop_matrix, normalize_image, warp_image


def check_video(video, name: str = "video") -> tuple[np.ndarray, np.ndarray]:
    """``(frames (T, H, W, 3) uint8, landmarks (T, N, 2) float64)`` of a video dict, checked.

    Raises:
        ValueError: not a dict with ``frames`` and ``landmarks``, no frames, wrong shapes or
            dtype, frames or landmarks given as a list whose items differ in shape, or
            non-finite landmarks (the message names the first bad frame).
    """
    if not isinstance(video, Mapping) or "frames" not in video or "landmarks" not in video:
        got = sorted(video) if isinstance(video, Mapping) else type(video).__name__
        raise ValueError(f"{name} must be a dict with 'frames' (T, H, W, 3) and 'landmarks' "
                         f"(T, N, 2), got {got}")
    frames = _stack(video["frames"], f"{name}['frames']", "frame")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{name}['frames'] must be uint8 of shape (T, H, W, 3), got "
                         f"{frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise ValueError(f"{name} is empty: 'frames' has T = 0 frames")
    landmarks = np.asarray(_stack(video["landmarks"], f"{name}['landmarks']", "landmark set"),
                           dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[0] != len(frames) or landmarks.shape[-1] != 2 \
            or landmarks.shape[1] == 0:
        raise ValueError(f"{name}['landmarks'] must have shape (T, N, 2) with T = {len(frames)} "
                         f"frames, got {landmarks.shape}")
    bad = ~np.isfinite(landmarks).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{name}['landmarks'] must be finite; frame {int(np.argmax(bad))} has "
                         f"NaN or inf ({int(bad.sum())} such frame(s))")
    return frames, landmarks


def _stack(items, name: str, noun: str) -> np.ndarray:
    """``items`` as one array; a list (tuple) of arrays must agree in shape, or a ``ValueError``
    names the first item that differs from item 0 (numpy's own message names neither)."""
    if isinstance(items, (list, tuple)) and items:
        shapes = [np.shape(item) for item in items]
        bad = next((k for k, shape in enumerate(shapes) if shape != shapes[0]), None)
        if bad is not None:
            raise ValueError(f"{name}[{bad}] has shape {shapes[bad]} but {name}[0] has "
                             f"{shapes[0]}; every {noun} of a video must have the same size")
    return np.asarray(items)


def jitter_box(box, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Move and resize a box at random: a simulated detector's or tracker's error.

    Draws ``(dx, dy, ds) ~ N(0, jitter^2)``, in that order; the centre moves by ``(dx, dy)``
    times the box's longer side, both sides are multiplied by ``exp(ds)``.

    Args:
        box: ``(4,)`` ``x0, y0, x1, y1``.
        rng: the generator.
        jitter: standard deviation, as a fraction of the side (0 returns the box).
    Returns:
        ``(4,)`` float64.
    """
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not jitter >= 0:
        raise ValueError(f"jitter must be a number >= 0, got {jitter!r}")
    dx, dy, ds = rng.normal(0.0, 1.0, 3) * jitter
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2 + dx * side, (y0 + y1) / 2 + dy * side
    hw, hh = (x1 - x0) / 2 * np.exp(ds), (y1 - y0) / 2 * np.exp(ds)
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh])


class FramePairs(Dataset):
    """Clips of ``length`` consecutive frames (pairs by default), cropped as a tracker would.

    Args:
        videos: a sequence of video dicts (see the module docstring), e.g. ``[synth_video((0,
            i)) for i in range(n)]`` or a :class:`lmk.data.SynthVideos`; every video is read
            once, here, and kept.
        length: frames per clip, ``>= 1``.
        input_size: crop side ``F`` (or ``(H, W)``).
        margin: widening of the previous frame's landmark rectangle on each side (Xia: 0.25).
        jitter: standard deviation of the rectangle's random shift and log-scale, as a fraction
            of its side (:func:`jitter_box`); 0 crops exactly around the previous frame's truth.
        stride: frames between the starts of consecutive clips of a video (default ``length``:
            clips do not overlap).
        seed: item ``i``'s jitter comes from ``numpy.random.default_rng((seed, i))``.
    Items:
        ``image`` ``(length, 3, H, W)`` float32 (normalised as :func:`normalize_image`);
        ``landmarks`` ``(length, N, 2)`` float32 in crop pixels; ``transform`` ``(length, 2, 3)``
        float32 frame -> crop; ``original_landmarks`` ``(length, N, 2)`` float32 in frame pixels;
        ``video`` and ``start`` (the clip's first frame), ints.
    """

    def __init__(self, videos, length: int = 2, input_size=64, *, margin: float = 0.25,
                 jitter: float = 0.05, stride: int | None = None, seed: int = 0):
        self.length = check_positive_int(length, "length")
        self.stride = self.length if stride is None else check_positive_int(stride, "stride")
        self.input_size = input_size
        crop_matrix((0, 0, 1, 1), input_size, margin)           # checks input_size and margin
        jitter_box((0, 0, 1, 1), np.random.default_rng(0), jitter)
        self.margin, self.jitter, self.seed = float(margin), float(jitter), int(seed)
        self.videos, self.clips = [], []
        for v in range(len(videos)):
            frames, landmarks = check_video(videos[v], f"videos[{v}]")
            if len(frames) < self.length + 1:
                raise ValueError(f"videos[{v}] has {len(frames)} frames; a clip of {self.length} "
                                 f"needs {self.length + 1} (the first one only places the crop)")
            self.videos.append((frames, landmarks))
            self.clips += [(v, s) for s in range(1, len(frames) - self.length + 1, self.stride)]
        if not self.clips:
            raise ValueError("videos is empty: no clips to make")

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index) -> dict:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                or not -len(self) <= index < len(self):
            raise IndexError(f"FramePairs index {index!r} out of range for {len(self)} clips")
        index = int(index) % len(self)
        v, start = self.clips[index]
        frames, landmarks = self.videos[v]
        rng = np.random.default_rng((self.seed, index))
        images, points, matrices = [], [], []
        for t in range(start, start + self.length):
            box = jitter_box(box_from_landmarks(landmarks[t - 1]), rng, self.jitter)
            m = crop_matrix(box, self.input_size, self.margin)
            images.append(normalize_image(warp_image(frames[t], m, self.input_size)))
            points.append(apply_affine(landmarks[t], m))
            matrices.append(m)
        return {"image": torch.stack(images),
                "landmarks": torch.from_numpy(np.stack(points).astype(np.float32)),
                "transform": torch.from_numpy(np.stack(matrices).astype(np.float32)),
                "original_landmarks": torch.from_numpy(
                    landmarks[start:start + self.length].astype(np.float32)),
                "video": v, "start": start}


class Frames(torch.utils.data.Dataset):
    """The single frames of a :class:`FramePairs` of length 1, as ``LandmarkDataset``-like items
    (``image`` ``(3, S, S)``, ``landmarks`` ``(N, 2)``, ``index``): tracking crops for training
    or scoring a single-image detector."""

    def __init__(self, clips: FramePairs):
        if clips.length != 1:
            raise ValueError(f"Frames takes FramePairs of length 1, got length {clips.length}")
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index) -> dict:
        item = self.clips[index]
        return {"image": item["image"][0], "landmarks": item["landmarks"][0], "index": int(index)}
