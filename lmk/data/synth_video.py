"""Synthetic videos: one identity moving smoothly through a static scene, for tracking.

Pose, position, scale and expression follow sums of slow sinusoids (periods of 40 to 160
frames), blinks are short bumps, and the whole path is shrunk toward the image centre if any
frame would leave the image; so labels stay exact and the motion is smooth. The background and
the camera settings are fixed per video; only the sensor noise pattern changes per frame.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from .synth import (_check_count, _check_index, _f32, check_render_size, get_difficulty,
                    landmark_box, noisy_five_points, sample_effects_for, sample_expression,
                    sample_identity)
from .synth_face import landmarks_2d, shape_3d
from .synth_render import draw_face, sample_appearance
from .synth_scene import apply_effects, render_background


def _smooth(rng, t: np.ndarray, centre: float, amplitude: float) -> np.ndarray:
    """``centre + amplitude * (weighted sum of two slow sinusoids)``, bounded by ``amplitude``."""
    periods = rng.uniform(40, 160, 2)
    phases = rng.uniform(0, 2 * np.pi, 2)
    weights = rng.dirichlet([1.0, 1.0])
    wave = (weights[:, None] * np.sin(2 * np.pi * t[None] / periods[:, None] + phases[:, None]))
    return centre + amplitude * wave.sum(0)


def _rng(seed) -> np.random.Generator:
    seq = [seed] if np.isscalar(seed) else list(seed)
    if not seq or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                      for s in seq):
        raise ValueError(f"seed must be a non-negative int or a sequence of them, got {seed!r}")
    return np.random.default_rng([int(s) for s in seq])


def synth_video(seed, T: int = 64, size: int = 128, difficulty="default",
                face_scale: tuple = (0.3, 0.45)) -> dict:
    """A synthetic video of ``T`` frames; a pure function of its arguments.

    Args:
        seed: non-negative int or sequence of ints (``(seed, index)`` in :class:`SynthVideos`).
        T: number of frames. size: frame side in px (64 to 256).
        difficulty: preset name or :class:`~lmk.data.synth.Difficulty` (pose ranges, blur,
            noise; occluders are not used in videos).
        face_scale: mean side of the landmark box as a fraction of the frame (varies +-15 %).
    Returns:
        dict with ``frames`` (T, H, W, 3) uint8, ``landmarks`` (T, 68, 2), ``pose`` (T, 3)
        degrees, ``box`` (T, 4), ``five_points`` (T, 5, 2), ``expression`` (T, 5), ``camera``
        (T, 4) float32, and ``identity`` (13,) float32.
    """
    rng = _rng(seed)
    T = _check_count("T", T)
    size = check_render_size(size)
    cfg = get_difficulty(difficulty)
    t = np.arange(T, dtype=float)

    identity = _f32(sample_identity(rng))
    app = sample_appearance(rng)
    base = sample_expression(rng, cfg.expression)
    pose = np.stack([_smooth(rng, t, rng.uniform(-0.5, 0.5) * lim, rng.uniform(0.2, 0.5) * lim)
                     for lim in (cfg.yaw, cfg.pitch, cfg.roll)], 1)
    expression = np.zeros((T, 5))
    expression[:, 0] = np.clip(_smooth(rng, t, base[0], 0.3 * cfg.expression), 0, None)
    expression[:, 1] = _smooth(rng, t, base[1], 0.5 * cfg.expression)
    expression[:, 2] = _smooth(rng, t, base[2], 0.5 * cfg.expression)
    blink_times = np.cumsum(rng.uniform(30, 90, T // 30 + 2)) - 20
    blink = np.exp(-((t[:, None] - blink_times[None]) / 1.5) ** 2).max(1)
    expression[:, 3:] = blink[:, None] * cfg.expression
    pose, expression = _f32(pose), _f32(expression)

    dist = rng.uniform(*cfg.distance)
    frontal = landmarks_2d(identity, expression[0], (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, dist))
    unit_side = float(np.ptp(frontal, axis=0).max())
    side = rng.uniform(*face_scale) * size * (1 + 0.15 * _smooth(rng, t, 0.0, 1.0))
    s = side / unit_side
    centre = np.stack([_smooth(rng, t, rng.uniform(-0.1, 0.1), 0.2) for _ in range(2)], 1)
    middle = (size - 1) / 2
    cx, cy = (middle + centre * size - s[:, None] * frontal.mean(0)).T
    camera = np.stack([s, cx, cy, np.full(T, dist)], 1)

    landmarks = np.stack([landmarks_2d(identity, expression[k], pose[k], camera[k])
                          for k in range(T)])
    spread = np.abs(landmarks - middle).max() / (middle - 1.0)
    if spread > 1:                                  # shrink the whole path about the centre
        camera[:, 0] /= spread
        camera[:, 1:3] = middle + (camera[:, 1:3] - middle) / spread
    camera = _f32(camera)

    scene = render_background(rng, size)
    effects = sample_effects_for(rng, cfg, size)
    frames = np.empty((T, size, size, 3), np.uint8)
    landmarks = np.empty((T, 68, 2))
    for k in range(T):
        img = scene.copy()
        points3d, outline3d = shape_3d(identity, expression[k], pose[k, 0])
        landmarks[k] = draw_face(img, points3d, outline3d, pose[k], camera[k], app,
                                 identity[0])["landmarks"]
        frames[k] = apply_effects(img, rng, effects)
    return {
        "frames": frames,
        "landmarks": landmarks.astype(np.float32),
        "pose": pose.astype(np.float32),
        "box": np.stack([landmark_box(p) for p in landmarks]),
        "five_points": np.stack([noisy_five_points(rng, p) for p in landmarks]).astype(np.float32),
        "expression": expression.astype(np.float32),
        "camera": camera.astype(np.float32),
        "identity": identity.astype(np.float32),
    }


class SynthVideos(Dataset):
    """``n`` synthetic videos of ``T`` frames; video ``i`` is ``synth_video((seed, i), ...)``."""

    def __init__(self, n: int, T: int = 64, size: int = 128, seed: int = 0,
                 difficulty="default"):
        self.n = _check_count("n", n)
        self.T = _check_count("T", T)
        self.size = check_render_size(size)
        _rng(seed)
        self.seed = int(seed)
        self.difficulty = get_difficulty(difficulty)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index) -> dict:
        index = _check_index(index, self.n, "SynthVideos")
        return synth_video((self.seed, index), self.T, self.size, self.difficulty)
