"""Training speed: faces per second of each model family, eager vs channels-last vs autocast.

Each figure trains a recipe through :func:`lmk.recipes.run` (the code every notebook and the
zoo use) for two short epochs on ``batch x steps`` synthetic faces and reads the second epoch's
wall time (the first warms up); the validation set is one batch, so its evaluation is a small
part of that time. The three ways run side by side in one process, on one thread:

* ``eager``: float32, default memory format;
* ``channels_last``: float32, NHWC (oneDNN's and the tensor cores' preferred layout);
* ``autocast``: channels-last under bfloat16 autocast (float16 with a gradient scaler on CUDA);
  at zoo scale only on a CPU (:data:`CPU_FULL_MODES`).

Zoo scale trains 4 batches of 16 per epoch; full scale, whose networks take seconds per face on
one CPU thread, one batch of 2. The figures are for comparing the ways side by side; the
projections of GPU hours come from ``--gpu`` (:mod:`lmk.bench.gpu`).

The data pipeline's figures: faces per second of rendering a synthetic face and of reading it
from the render cache (:mod:`lmk.data.render_cache`), each followed by the recipe's crop or
alignment and augmentation at its input size (:class:`lmk.data.LandmarkDataset`).
"""

from __future__ import annotations

import tempfile
import time

import torch

from . import single_thread

FAMILY_RECIPES = {"heatmap": "n03_sdsd", "marginal": "n02_1d_r1", "ffld": "n04_ffld", "ccnn": "n05_ccnn_k4",
                  "atpn": "n06_atpn", "yin": "n06_yin_detector"}
"""One recipe per model family (the recipe that names it in its ``model`` field)."""
MODES = ("eager", "channels_last", "autocast")
CPU_FULL_MODES = ("eager", "channels_last")
"""Full-scale modes on a CPU: bfloat16 autocast without native bfloat16 units (AVX-512 BF16, AMX)
is emulated, 10-30x slower than float32 (measured at zoo scale); a full-scale CCNN step would
take minutes. ``--gpu`` measures autocast at full scale."""


def execution_of(mode: str, device: str):
    """The :class:`lmk.train.Execution` of a bench mode on a device."""
    from lmk.train import Execution

    low = "fp16" if device.startswith("cuda") else "bf16"
    return {"eager": Execution("fp32", channels_last=False), "channels_last": Execution("fp32", channels_last=True),
            "autocast": Execution(low, channels_last=True)}[mode]


def short_run_overrides(cfg: dict, batch: int, steps: int) -> tuple[dict, dict]:
    """``(run keywords, overrides)`` that train ``steps`` batches of ``batch`` faces per epoch,
    two epochs (first stage only), with one batch of validation faces."""
    t, d = cfg["train"], cfg["data"]
    train = {"batch_size": batch}
    data = {}
    if "stage_epochs" in t:                        # stages after the first train other branches
        train["stage_epochs"] = [2, 0, 0]
    elif "detector_epochs" in t:                   # a tracker's detector on frames of videos
        train.update(detector_epochs=2, refine_epochs=0, init_from=None, stored=None)
        data.update(videos=batch, frames=max(steps, d["clip_length"]) + 1, val_videos=1)
    else:
        train["epochs"] = 2
    kwargs = {} if "videos" in d else {"n_train": batch * steps, "n_val": batch}
    return kwargs, {"train": train, "data": data}


def measure(name: str, scale: str, mode: str, *, batch: int, steps: int, device: str = "cpu") -> dict:
    """Train ``name`` briefly; ``{"faces_per_s", "first_loss", "last_loss", "peak_mb"}``.

    ``faces_per_s`` counts the second epoch's trained faces over its wall time; the losses are
    the means of the first and the last three steps; ``peak_mb`` is CUDA's peak allocation.
    """
    from lmk import recipes

    cfg = recipes.configure(name, scale)
    kwargs, overrides = short_run_overrides(cfg, batch, steps)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    res = recipes.run(name, scale, device=device, overrides=overrides, execution=execution_of(mode, device),
                      **kwargs)
    h = res.history
    losses = h.step_loss
    per_epoch = len(losses) // len(h.epoch)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
    return {"faces_per_s": per_epoch * batch / h.seconds[-1], "first_loss": sum(losses[:3]) / 3,
            "last_loss": sum(losses[-3:]) / 3, "peak_mb": peak}


def _pipeline(quick: bool) -> dict[str, float]:
    """Render vs render-cache faces/s at each (render size, input size) of the recipes' scales."""
    from lmk import recipes
    from lmk.data import LandmarkDataset, SynthFaces
    from lmk.data.render_cache import cached_items
    from lmk.families import augment_of

    out = {}
    n = 16 if quick else 64
    sizes = {}
    for name in FAMILY_RECIPES.values():
        for scale in ("zoo", "full"):
            d = recipes.configure(name, scale)["data"]
            if d.get("render_size"):
                sizes[(d["render_size"], d["input_size"], d.get("mode", "crop"))] = recipes.configure(name, scale)
    with tempfile.TemporaryDirectory() as tmp:
        for (render, size, mode), cfg in sorted(sizes.items()):
            faces = SynthFaces(n, size=render, seed=0)
            cached = cached_items(faces, tmp)
            for how, source in (("render", faces), ("cache", cached)):
                dataset = LandmarkDataset(source, size, mode=mode, augment=augment_of(cfg), seed=0)
                dataset[0]
                start = time.perf_counter()
                for i in range(n):
                    dataset[i]
                out[f"train_data_faces_per_s_{how}_{render}px_to_{size}px_{mode}"] = n / (time.perf_counter() - start)
    return out


def run(quick: bool = False) -> dict[str, float]:
    out = {}
    with single_thread():
        # full-scale networks take seconds per face on one CPU thread: two faces, one step per epoch
        for scale, batch, steps in (("zoo", 16, 2 if quick else 4),) + ((("full", 2, 1),) if not quick else ()):
            for family, name in FAMILY_RECIPES.items():
                for mode in MODES if scale == "zoo" else CPU_FULL_MODES:
                    r = measure(name, scale, mode, batch=batch, steps=steps)
                    out[f"train_faces_per_s_{scale}_{family}_{mode}"] = r["faces_per_s"]
        out.update(_pipeline(quick))
    return out


def describe() -> dict[str, str]:
    labels = {}
    for scale in ("zoo", "full"):
        for family, name in FAMILY_RECIPES.items():
            for mode in MODES if scale == "zoo" else CPU_FULL_MODES:
                labels[f"train_faces_per_s_{scale}_{family}_{mode}"] = f"train {name} {scale} {mode} (faces/s)"
    return labels
