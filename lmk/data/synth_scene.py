"""The scene around the synthetic faces: textured backgrounds, occluders, camera effects.

Textures and sensor noise come from banks built once from fixed seeds; each image crops,
recolours and combines them with its own generator, so every image stays a pure function of
its ``numpy.random.Generator`` and costs no per-pixel random numbers.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from .synth_draw import blend, ellipse, fill_rough, line, rgb

_BANK_SIZE = 320


@lru_cache(maxsize=1)
def texture_bank() -> tuple[np.ndarray, ...]:
    """Gray textures ``(320, 320)`` uint8 in [0, 255], built once from a fixed seed."""
    rng = np.random.default_rng(20240601)
    n = _BANK_SIZE
    out = []
    for sigma in (1.5, 4.0, 10.0, 24.0):                       # smooth noise at four scales
        t = cv2.GaussianBlur(rng.random((n, n), dtype=np.float32), (0, 0), sigma)
        out.append(t)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    for freq, ang in ((0.08, 0.3), (0.2, 1.2), (0.04, 2.0)):  # stripes, wavy stripes
        u = xx * np.cos(ang) + yy * np.sin(ang)
        out.append(np.sin(freq * u + 3 * np.sin(0.02 * (xx - yy))))
    t = np.zeros((n, n), np.float32)                            # random discs
    for _ in range(150):
        cv2.circle(t, (int(rng.integers(n)), int(rng.integers(n))), int(rng.integers(4, 30)),
                   float(rng.random()), -1, cv2.LINE_AA)
    out.append(t)
    t = ((xx // 24 + yy // 24) % 2).astype(np.float32)         # tiles with grain
    out.append(cv2.GaussianBlur(t, (0, 0), 1.0) + 0.3 * out[0])
    result = []
    for t in out:
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        result.append((t * 255).astype(np.uint8))
    return tuple(result)


_NOISE_SCALE = 32.0


@lru_cache(maxsize=1)
def noise_bank() -> np.ndarray:
    """Gaussian noise ``(320, 320, 3)`` uint8 ``128 + 32 N(0, 1)`` (clipped at 4 sigma) from a
    fixed seed; each image crops it at a random place."""
    noise = np.random.default_rng(7).standard_normal((_BANK_SIZE, _BANK_SIZE, 3))
    return np.clip(np.rint(128 + _NOISE_SCALE * noise), 0, 255).astype(np.uint8)


def _texture_patch(rng, size: int) -> np.ndarray:
    """A random crop of a random bank texture, maybe transposed, resized to ``(size, size)``."""
    bank = texture_bank()
    u = rng.random(5).tolist()
    t = bank[int(u[0] * len(bank))]
    crop = max(size // 2, 16) + int(u[1] * (_BANK_SIZE + 1 - max(size // 2, 16)))
    x0, y0 = int(u[2] * (_BANK_SIZE - crop + 1)), int(u[3] * (_BANK_SIZE - crop + 1))
    patch = cv2.resize(t[y0:y0 + crop, x0:x0 + crop], (size, size),
                       interpolation=cv2.INTER_LINEAR)
    return cv2.transpose(patch) if u[4] < 0.5 else patch


_RAMP = np.arange(256) / 255.0


def _colorize(gray: np.ndarray, rng) -> np.ndarray:
    """Map grey levels to colours along a random gamma-shaped ramp between two colours."""
    u = rng.random(7)
    c0, c1 = 255 * u[:3], 255 * u[3:6]
    t = _RAMP ** (0.5 + 1.5 * u[6])
    lut = (c0 + t[:, None] * (c1 - c0)).astype(np.uint8).reshape(256, 1, 3)
    return cv2.applyColorMap(gray, lut)          # channel c of the result is lut[gray, c]


# ----------------------------------------------------------------------------- background

def render_background(rng, size: int, num_shapes: tuple[int, int] = (2, 7)) -> np.ndarray:
    """A random textured background ``(size, size, 3)`` uint8: a recoloured texture from the
    bank, then a few ellipses, polygons, bars and strokes in random colours."""
    img = _colorize(_texture_patch(rng, size), rng)
    count = int(rng.integers(num_shapes[0], num_shapes[1] + 1))
    for u in rng.random((count, 12)).tolist():
        color = (255 * u[0], 255 * u[1], 255 * u[2])
        cx, cy = (1.2 * u[4] - 0.1) * size, (1.2 * u[5] - 0.1) * size
        r = (0.05 + 0.35 * u[6]) * size
        kind = int(4 * u[3])
        if kind == 0:
            ellipse(img, (cx, cy), (r, r * (0.3 + 0.7 * u[7])), 180 * u[8], color)
        elif kind == 1:                                 # a polygon, star-shaped about (cx, cy)
            k = 3 + int(4 * u[7])
            angles = sorted(rng.uniform(0, 2 * math.pi, k).tolist())
            radii = (r * (0.5 + 0.5 * v) for v in rng.random(k).tolist())
            fill_rough(img, [(cx + q * math.cos(a), cy + q * math.sin(a))
                             for a, q in zip(angles, radii)], color)
        elif kind == 2:
            end = (cx + 4 * r * (u[7] - 0.5), cy + 4 * r * (u[8] - 0.5))
            line(img, [(cx, cy), end], color, 1 + int(u[9] * max(1, size // 24)))
        else:                                           # a rectangle turned by a
            a = math.pi * u[9]
            w, h = (0.2 + 0.8 * u[7]) * r, (0.2 + 0.8 * u[8]) * r
            ca, sa = math.cos(a), math.sin(a)
            fill_rough(img, [(cx + x * ca - y * sa, cy + x * sa + y * ca)
                             for x, y in ((-w, -h), (w, -h), (w, h), (-w, h))], color)
    return img


# ----------------------------------------------------------------------------- occluders, camera

def draw_occluders(img, rng, landmarks: np.ndarray, count: int) -> np.ndarray:
    """Draw ``count`` occluders over parts of the face; return their mask ``(H, W)`` uint8."""
    size = img.shape[0]
    mask = np.zeros(img.shape[:2], np.uint8)
    span = float(np.ptp(landmarks, axis=0).max())
    for _ in range(count):
        centre = landmarks[int(rng.integers(68))] + rng.normal(0, 0.1 * span, 2)
        kind = int(rng.integers(3))
        layer = np.zeros(img.shape[:2], np.uint8)
        if kind == 0:                                   # a bar (hand-held object, strand)
            a = rng.uniform(0, np.pi)
            half = np.array([np.cos(a), np.sin(a)]) * span * rng.uniform(0.3, 0.9)
            normal = np.array([-half[1], half[0]]) / np.linalg.norm(half) * span * \
                rng.uniform(0.06, 0.18)
            poly = centre + np.stack([-half - normal, half - normal, half + normal, -half + normal])
        elif kind == 1:                                 # a blob (hand, ball)
            k = 7
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            rad = span * rng.uniform(0.15, 0.35) * rng.uniform(0.7, 1.0, (k, 1))
            poly = centre + rad * np.stack([np.cos(ang), np.sin(ang)], 1)
        else:                                           # glasses-like band over the eyes
            e0, e1 = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
            d = e1 - e0
            n = np.array([-d[1], d[0]]) * rng.uniform(0.15, 0.3)
            poly = np.stack([e0 - 0.45 * d - n, e1 + 0.45 * d - n, e1 + 0.45 * d + n,
                             e0 - 0.45 * d + n])
        fill_rough(layer, poly, 255)
        # Blend only over the occluder's pixel box (it covers a part of the face).
        (x0, y0), (x1, y1) = np.floor(poly.min(0)).tolist(), np.ceil(poly.max(0)).tolist()
        x0, y0 = max(int(x0) - 2, 0), max(int(y0) - 2, 0)
        x1, y1 = min(max(int(x1) + 3, x0), size), min(max(int(y1) + 3, y0), size)
        if rng.random() < 0.5:
            texture = _colorize(_texture_patch(rng, size), rng)[y0:y1, x0:x1]
        else:
            texture = np.full((y1 - y0, x1 - x0, 3), rgb(rng.uniform(0, 255, 3)), np.uint8)
        if x1 > x0 and y1 > y0:
            blend(img, x0, y0, texture, layer[y0:y1, x0:x1])
        np.maximum(mask, layer, out=mask)
    return mask


_GAIN_ONE = 128             # the gain field is stored as uint8 (a cheap multiply); 128 = gain 1


def sample_effects(rng, blur: tuple, noise: tuple, contrast: tuple, motion_blur_prob: float,
                   size: int) -> dict:
    """Camera settings of one shot: lighting gain field (``(2, 2, 3)`` corner gains, uint8 in
    units of 1/128, bilinear over the image), blur, motion-blur kernel, noise level."""
    gain = rng.uniform(*contrast) * rng.uniform(0.85, 1.15, (2, 2, 3))
    effects = {
        "gain": np.rint(gain * _GAIN_ONE).astype(np.uint8),
        "sigma": rng.uniform(*blur) * size / 128,
        "noise": rng.uniform(*noise),
        "kernel": None,
    }
    if rng.random() < motion_blur_prob:
        k = int(rng.integers(3, 4 + size // 32)) | 1
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(0, 180)), 1)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        effects["kernel"] = kernel / kernel.sum()
    return effects


def apply_effects(img, rng, effects: dict) -> np.ndarray:
    """Apply :func:`sample_effects` settings (uint8 in, uint8 out, saturating); ``rng`` picks
    only the noise pattern."""
    size = img.shape[0]
    gain = cv2.resize(effects["gain"], (size, size), interpolation=cv2.INTER_LINEAR)
    out = cv2.multiply(img, gain, scale=1 / _GAIN_ONE)
    if effects["kernel"] is not None:
        out = cv2.filter2D(out, -1, effects["kernel"])
    sigma = effects["sigma"]
    if sigma > 0.25:                # a Gaussian to 2.5 sigma (separable: faster than GaussianBlur)
        kernel = cv2.getGaussianKernel(2 * math.ceil(2.5 * sigma) + 1, sigma)
        out = cv2.sepFilter2D(out, -1, kernel, kernel)
    if effects["noise"] > 0:
        y0, x0 = (int(v * (_BANK_SIZE - size + 1)) for v in rng.random(2).tolist())
        w = effects["noise"] / _NOISE_SCALE
        out = cv2.addWeighted(out, 1.0, noise_bank()[y0:y0 + size, x0:x0 + size], w, -128.0 * w)
    return out
