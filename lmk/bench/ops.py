"""Forward + backward time of the bilinear crop, hand-written gradients vs ``grid_sample``.

The workload is what one FFLD training step crops (:func:`lmk.recipes.yan` at zoo scale): for
a batch of 16 faces with 68 landmarks, one 4 x 4 crop per CropNet stage from the feature maps
at strides 8, 4 and 2 of the 64 px input (16 x 8 x 8, 8 x 16 x 16 and 8 x 32 x 32), centres
anywhere on the map; :func:`ffld_crops` reads these sizes from the recipe and the network it
builds. Each timing is one forward pass and one backward pass with a fixed upstream gradient,
both gradients (map and centres) requested, on one thread. :func:`lmk.ops.crop_patches`
(Yan et al. (2020) Eqs. 5-15 written out) and :func:`lmk.ops.crop_patches_grid_sample`
(autograd through ``torch.nn.functional.grid_sample``) run alternately on the same input, each
keeps its best time per stage, and a step is the sum over the stages, so
``crop_speedup_vs_grid_sample`` compares figures from one run.

    python -m lmk.bench --only ops

``run(scale="full")`` times the paper's network instead (224 px, 25 % channels, 8 x 8 crops),
and ``run(batch=..., landmarks=..., channels=..., map_size=..., patch=...)`` one crop of any size.
"""

from __future__ import annotations

import math
import time

import torch

from . import single_thread
from .. import recipes
from ..ops import crop_patches, crop_patches_grid_sample


def ffld_crops(scale: str = "zoo") -> dict[int, dict[str, int]]:
    """The crops of one FFLD training step at a recipe ``scale``: ``{stride: sizes}``.

    ``sizes`` are the arguments of :func:`make_workload`, read from :func:`lmk.recipes.yan`'s
    config and the feature channels of the network it builds (maps ``input_size / stride`` wide).
    """
    cfg = recipes.yan().config(scale)
    args, size = cfg["model_args"], cfg["data"]["input_size"]
    channels = recipes.build_model(cfg).baseline.backbone.feature_channels
    return {stride: {"batch": cfg["train"]["batch_size"], "landmarks": args["num_landmarks"],
                     "channels": channels[stride], "map_size": size // stride,
                     "patch": args["patch_size"]}
            for stride in args["strides"][:args["stages"]]}


def make_workload(seed: int = 0, *, batch: int, landmarks: int, channels: int, map_size: int,
                  patch: int):
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


def run(quick: bool = False, scale: str = "zoo", **sizes) -> dict[str, float]:
    """Best-of-repeats times in ms of one FFLD step's crops at ``scale``, and their ratio.

    ``sizes`` (all of ``batch``, ``landmarks``, ``channels``, ``map_size``, ``patch``) time one
    crop of that size instead.
    """
    repeats = 5 if quick else 30
    stages = [sizes] if sizes else list(ffld_crops(scale).values())
    inputs = [make_workload(seed, **stage) for seed, stage in enumerate(stages)]
    crops = {"crop": crop_patches, "crop_grid_sample": crop_patches_grid_sample}
    best = {name: [math.inf] * len(stages) for name in crops}
    with single_thread():
        for stage, workload in zip(stages, inputs):            # warm-up
            for crop in crops.values():
                _forward_backward(crop, *workload, stage["patch"])
        for _ in range(repeats):                               # alternate: same conditions
            for i, (stage, workload) in enumerate(zip(stages, inputs)):
                for name, crop in crops.items():
                    t = _forward_backward(crop, *workload, stage["patch"])
                    best[name][i] = min(best[name][i], t)
    step = {name: sum(times) for name, times in best.items()}
    return {"crop_ms": 1e3 * step["crop"],
            "crop_grid_sample_ms": 1e3 * step["crop_grid_sample"],
            "crop_speedup_vs_grid_sample": step["crop_grid_sample"] / step["crop"]}


def describe() -> dict[str, str]:
    work = "the 3 crops of one FFLD training step (zoo scale)"
    return {"crop_ms": f"crop_patches fwd+bwd, {work}, 1 thread (ms)",
            "crop_grid_sample_ms": "grid_sample reference fwd+bwd, same, 1 thread (ms)",
            "crop_speedup_vs_grid_sample": "crop_patches speed-up vs grid_sample (x)"}
