"""Forward + backward time of the bilinear crop, hand-written gradients vs ``grid_sample``.

The workload is FFLD's first CropNet stage at a course scale: 16 images, 68 landmarks,
8 x 8 patches from a 16-channel 32 x 32 feature map, centres anywhere on the map. Each
timing is one forward pass and one backward pass with a fixed upstream gradient, both
gradients (map and centres) requested, on one thread. :func:`lmk.ops.crop_patches` (Yan et
al. (2020) Eqs. 5-15 written out) and :func:`lmk.ops.crop_patches_grid_sample` (autograd
through ``torch.nn.functional.grid_sample``) run alternately on the same input, and each
keeps its best time, so ``crop_speedup_vs_grid_sample`` compares figures from one run.

    python -m lmk.bench --only ops

"""

from __future__ import annotations

import math
import time

import torch

from . import single_thread
from ..ops import crop_patches, crop_patches_grid_sample

BATCH, LANDMARKS, CHANNELS, MAP_SIZE, PATCH = 16, 68, 16, 32, 8


def make_workload(seed: int = 0, batch: int = BATCH, landmarks: int = LANDMARKS,
                  channels: int = CHANNELS, map_size: int = MAP_SIZE, patch: int = PATCH):
    """float32 ``features (B, C, S, S)``, ``centers (B, N, 2)`` on the map, upstream gradient."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, channels, map_size, map_size, generator=g)
    centers = torch.rand(batch, landmarks, 2, generator=g) * (map_size - 1)
    upstream = torch.randn(batch, landmarks, channels, patch, patch, generator=g)
    return features, centers, upstream


def _forward_backward(crop, features, centers, upstream, patch) -> float:
    f = features.detach().requires_grad_()
    c = centers.detach().requires_grad_()
    start = time.perf_counter()
    crop(f, c, patch).backward(upstream)
    return time.perf_counter() - start


def run(quick: bool = False, **sizes) -> dict[str, float]:
    """Best-of-repeats times in ms and their ratio; ``sizes`` override the workload's
    ``batch``, ``landmarks``, ``channels``, ``map_size`` and ``patch``."""
    repeats = 5 if quick else 30
    patch = sizes.get("patch", PATCH)
    features, centers, upstream = make_workload(**sizes)
    crops = {"crop": crop_patches, "crop_grid_sample": crop_patches_grid_sample}
    best = dict.fromkeys(crops, math.inf)
    with single_thread():
        for crop in crops.values():                             # warm-up
            _forward_backward(crop, features, centers, upstream, patch)
        for _ in range(repeats):                                # alternate: same conditions
            for name, crop in crops.items():
                t = _forward_backward(crop, features, centers, upstream, patch)
                best[name] = min(best[name], t)
    return {"crop_ms": 1e3 * best["crop"],
            "crop_grid_sample_ms": 1e3 * best["crop_grid_sample"],
            "crop_speedup_vs_grid_sample": best["crop_grid_sample"] / best["crop"]}


def describe() -> dict[str, str]:
    work = f"{BATCH}x{LANDMARKS} crops {PATCH}x{PATCH} of {CHANNELS}x{MAP_SIZE}x{MAP_SIZE}"
    return {"crop_ms": f"crop_patches fwd+bwd, {work}, 1 thread (ms)",
            "crop_grid_sample_ms": "grid_sample reference fwd+bwd, same, 1 thread (ms)",
            "crop_speedup_vs_grid_sample": "crop_patches speed-up vs grid_sample (x)"}
