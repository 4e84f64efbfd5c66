"""Data pipeline: LandmarkDataset cost per item on top of its source, .pts parsing, round trips.

The dataset is timed over a list of pre-rendered synthetic faces, so the figures are the cost
of cropping / aligning, augmenting and normalising alone (rendering is the ``synth`` topic).
Single-threaded and per CPU-second of this process (``time.process_time``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from . import single_thread


def _per_second(fn, count: int) -> float:
    fn(0)                                   # warm-up
    start = time.process_time()
    for i in range(count):
        fn(i)
    return count / (time.process_time() - start)


def run(quick: bool = False) -> dict[str, float]:
    from lmk.data import Augment, LandmarkDataset, read_pts, to_original, write_pts
    from lmk.data.synth import SynthFaces
    from lmk.layouts import LAYOUT_68

    with single_thread():
        n = 50 if quick else 200
        faces = SynthFaces(n, size=256, seed=0)
        source = [faces[i] for i in range(n)]
        count = 200 if quick else 2000
        out = {}
        for mode in ("crop", "align"):
            for name, augment in (("plain", None), ("augmented", Augment())):
                ds = LandmarkDataset(source, 128, mode=mode, augment=augment)
                out[f"dataset_items_per_s_{mode}_{name}"] = _per_second(
                    lambda i, ds=ds: ds[i % n], count)
        ds = LandmarkDataset(source, 128, mode="align", augment=Augment())
        worst = 0.0
        for i in range(n):
            item = ds[i]
            back = to_original(item["landmarks"].double(), item["transform"])
            if item["flipped"]:
                back = back[LAYOUT_68.flip_perm]
            worst = max(worst, float((back - item["original_landmarks"].double()).abs().max()))
        out["align_roundtrip_max_px"] = worst
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "face.pts"
            write_pts(path, source[0]["landmarks"])
            out["pts_reads_per_s"] = _per_second(lambda i: read_pts(path, num_points=68), count)
        return out


def describe() -> dict[str, str]:
    labels = {}
    for mode in ("crop", "align"):
        for name in ("plain", "augmented"):
            labels[f"dataset_items_per_s_{mode}_{name}"] = \
                f"LandmarkDataset {mode}, {name}, 256 -> 128 px (items/CPU-s)"
    labels["align_roundtrip_max_px"] = "to_original after align + augment, worst error (px)"
    labels["pts_reads_per_s"] = "read_pts of a 68-point file (files/CPU-s)"
    return labels
