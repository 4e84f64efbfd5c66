"""``python -m lmk.bench --gpu``: train every model family at full scale on a CUDA GPU, briefly.

For each family (:data:`lmk.bench.training.FAMILY_RECIPES`) it trains the recipe's full-scale
network on synthetic faces for a fixed number of steps in float32 and under autocast (float16
with a gradient scaler, channels-last), checks that the loss falls, and prints faces per second
and peak GPU memory. From those speeds it projects the hours of training every recipe at full
scale: the full zoo (``python -m lmk.zoo build --scale full``) and a full course run (its
notebooks train the same recipes). About six minutes on one recent GPU.

It imports torch, numpy, OpenCV and lmk's own modules only (no matplotlib, scipy, tqdm or
notebook packages), so it runs from a checkout on a bare GPU machine with any recent Python and
CUDA build of torch: ``PYTHONPATH=. python3 -m lmk.bench --gpu``. Without a CUDA device it
refuses with a message and exit status 2.
"""

from __future__ import annotations

import platform
import sys
import time

import torch

BATCH, STEPS = 16, 24
"""Each run: two epochs of ``STEPS`` batches of ``BATCH`` faces (the first warms up)."""
REFUSAL = ("python -m lmk.bench --gpu trains every model family on a CUDA GPU, but torch {torch} "
           "(CUDA build: {cuda}) sees no CUDA device here. Run it on the GPU machine "
           "(PYTHONPATH=. python3 -m lmk.bench --gpu), or python -m lmk.bench for the CPU figures.")


def faces_seen(cfg: dict) -> float:
    """Training faces a full-scale run of a recipe config goes through (every epoch of every stage)."""
    d, t = cfg["data"], cfg["train"]
    if "videos" in d:                          # a tracker: frames of videos, detector then clips
        return d["videos"] * d["frames"] * (t.get("detector_epochs", 0) + t.get("refine_epochs", 0))
    if "stage_epochs" in t:                    # stage 2 also sees the negatives
        e1, e2, e3 = t["stage_epochs"]
        return d["n_train"] * (e1 + e2 * (1 + d.get("negatives_per_face", 0.0)) + e3)
    return d["n_train"] * t["epochs"]


def projected_hours(speeds: dict) -> dict:
    """``{mode: hours}`` of training every recipe at full scale at the measured ``{family: {mode: faces/s}}``."""
    from lmk import recipes

    hours = {}
    for mode in ("fp32", "autocast"):
        total = 0.0
        for name, recipe in recipes.RECIPES.items():
            total += faces_seen(recipe.config("full")) / speeds[recipe.model][mode]
        hours[mode] = total / 3600
    return hours


def main(argv=None) -> int:
    if not torch.cuda.is_available():
        print(REFUSAL.format(torch=torch.__version__, cuda=torch.version.cuda), file=sys.stderr)
        return 2
    from . import training

    start = time.perf_counter()
    name = torch.cuda.get_device_name(0)
    print(f"lmk.bench --gpu  {name}  python {platform.python_version()}  torch {torch.__version__}  "
          f"CUDA {torch.version.cuda}  batch {BATCH}, {STEPS} steps per epoch, 2 epochs per run")
    print(f"{'recipe':18s} {'mode':9s} {'faces/s':>9s} {'peak MB':>8s} {'loss first -> last':>22s}")
    speeds, failed = {}, []
    for family, recipe in training.FAMILY_RECIPES.items():
        for mode, bench_mode in (("fp32", "eager"), ("autocast", "autocast")):
            r = training.measure(recipe, "full", bench_mode, batch=BATCH, steps=STEPS, device="cuda")
            falls = r["last_loss"] < r["first_loss"]
            if not falls:
                failed.append(f"{recipe} {mode}")
            speeds.setdefault(family, {})[mode] = r["faces_per_s"]
            print(f"{recipe:18s} {mode:9s} {r['faces_per_s']:9.0f} {r['peak_mb']:8.0f} "
                  f"{r['first_loss']:10.4g} -> {r['last_loss']:<9.4g}{'' if falls else '  LOSS DID NOT FALL'}",
                  flush=True)
    from lmk import recipes

    hours = projected_hours(speeds)
    print(f"\nprojected training of all {len(recipes.RECIPES)} recipes at full scale on this GPU "
          f"(one process): fp32 {hours['fp32']:.1f} h, autocast {hours['autocast']:.1f} h")
    print(f"  full zoo (python -m lmk.zoo build --scale full): {hours['autocast']:.1f} h with autocast")
    print(f"  full course run (notebooks 02-06 train the same recipes): {hours['autocast']:.1f} h with autocast, "
          "plus scoring")
    print(f"bench --gpu: {time.perf_counter() - start:.0f} s"
          + (f"; the loss did not fall for {', '.join(failed)}" if failed else "; every loss fell"))
    return 1 if failed else 0
