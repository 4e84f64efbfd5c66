"""Decode throughput of every heatmap decoder, and DARK against a per-landmark loop.

The workload is a batch of 64 images x 68 landmarks of 64 x 64 heatmaps (and the matching
1D marginals of length 64), Gaussian sigma 2 plus a little noise. The loop baseline is
:func:`dark_reference_loop`, the DARK decoder as Zhang et al. (2020) publish it: for every
landmark, blur the full map with ``cv2.GaussianBlur``, take the log, and take a Taylor step at
the argmax. Both run here, side by side on one thread, on the same input; the ratio of their
times is ``decode_dark_speedup_vs_loop``. Times are the best of several repeats.

    python -m lmk.bench --only decode

"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from . import single_thread
from ..codecs import METHODS, dark_reference_loop, decode_heatmaps, decode_marginals, \
    gaussian_heatmaps, gaussian_marginals

BATCH, LANDMARKS, SIZE, SIGMA, NOISE = 64, 68, 64, 2.0, 0.02


def make_workload(seed: int = 0, batch: int = BATCH, landmarks: int = LANDMARKS,
                  size: int = SIZE, sigma: float = SIGMA, noise: float = NOISE):
    """Noisy float32 heatmaps ``(B, N, S, S)``, marginals and their true centres."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(4, size - 5, (batch, landmarks, 2))
    hm = gaussian_heatmaps(points, (size, size), sigma)
    hm = (hm + noise * rng.standard_normal(hm.shape)).astype(np.float32)
    hx, hy = gaussian_marginals(points, (size, size), sigma)
    hx = (hx + noise * rng.standard_normal(hx.shape)).astype(np.float32)
    hy = (hy + noise * rng.standard_normal(hy.shape)).astype(np.float32)
    return torch.from_numpy(hm), torch.from_numpy(hx), torch.from_numpy(hy), points


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool = False) -> dict[str, float]:
    """All figures on one thread (the loop baseline is single-threaded, and one thread keeps
    the figures steady on a shared machine)."""
    repeats = 3 if quick else 10
    hm, hx, hy, _ = make_workload()
    maps = hm.shape[0] * hm.shape[1]
    results: dict[str, float] = {}
    with single_thread():
        for method in METHODS:
            t = _best_time(lambda: decode_heatmaps(hm, method, blur_sigma=SIGMA), repeats)
            results[f"decode_2d_{method}_maps_per_s"] = maps / t
        for method in METHODS:
            t = _best_time(lambda: decode_marginals(hx, hy, method, blur_sigma=SIGMA), repeats)
            results[f"decode_1d_{method}_maps_per_s"] = maps / t
        # side by side: vectorized DARK and the per-landmark loop on the same numpy input
        hm_np = hm.numpy()
        t_vec = _best_time(lambda: decode_heatmaps(hm_np, "dark", blur_sigma=SIGMA), repeats)
        t_loop = _best_time(lambda: dark_reference_loop(hm_np, SIGMA), 1 if quick else 3)
    results["decode_dark_loop_maps_per_s"] = maps / t_loop
    results["decode_dark_speedup_vs_loop"] = t_loop / t_vec
    return results


def describe() -> dict[str, str]:
    labels = {}
    for dim in ("2d", "1d"):
        for method in METHODS:
            labels[f"decode_{dim}_{method}_maps_per_s"] = (
                f"{dim.upper()} {method} decode, {BATCH}x{LANDMARKS} maps of {SIZE}, 1 thread "
                f"(maps/s)")
    labels["decode_dark_loop_maps_per_s"] = "2D DARK per-landmark loop, 1 thread (maps/s)"
    labels["decode_dark_speedup_vs_loop"] = "2D DARK speed-up, vectorized vs loop (x)"
    return labels
