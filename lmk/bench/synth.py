"""Synthetic face world: rendering throughput on one core, and the boundary check.

Throughput is single-threaded (``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``) and
counted per CPU-second of this process (``time.process_time``), so other jobs sharing the
machine change it less than wall time; the wall-clock rate at 128 px is reported beside it.
"""

from __future__ import annotations

import time

from . import single_thread


def _per_second(dataset, count: int, clock=time.process_time) -> float:
    for i in range(5):                       # warm-up: texture and noise banks, caches
        dataset[i]
    start = clock()
    for i in range(count):
        dataset[i]
    return count / (clock() - start)


def run(quick: bool = False) -> dict[str, float]:
    from lmk.data.synth import SynthFaces, SynthNegatives, boundary_gradient_ratio
    from lmk.data.synth_video import synth_video

    with single_thread():
        count = 200 if quick else 2000
        out = {
            "synth_faces_per_s_128px": _per_second(SynthFaces(10 ** 6, 128), count),
            "synth_faces_per_s_128px_wall": _per_second(SynthFaces(10 ** 6, 128), count,
                                                        time.perf_counter),
            "synth_faces_per_s_64px": _per_second(SynthFaces(10 ** 6, 64), count),
            "synth_faces_per_s_256px": _per_second(SynthFaces(10 ** 6, 256), count // 2),
            "synth_hard_faces_per_s_128px": _per_second(
                SynthFaces(10 ** 6, 128, difficulty="hard"), count),
            "synth_negatives_per_s_64px": _per_second(SynthNegatives(10 ** 6, 64), count),
        }
        frames = 32 if quick else 128
        start = time.process_time()
        synth_video(0, frames, 128)
        out["synth_video_frames_per_s_128px"] = frames / (time.process_time() - start)
    n = 100 if quick else 500
    out["synth_boundary_gradient_ratio"] = boundary_gradient_ratio(SynthFaces(n, 128), n=n)
    out["synth_boundary_gradient_ratio_hard"] = boundary_gradient_ratio(
        SynthFaces(n, 128, difficulty="hard"), n=n)
    return out


def describe() -> dict[str, str]:
    return {
        "synth_faces_per_s_128px": "SynthFaces 128 px, default, 1 core (images/CPU-s)",
        "synth_faces_per_s_128px_wall": "SynthFaces 128 px, default, 1 thread (images/wall-s)",
        "synth_faces_per_s_64px": "SynthFaces 64 px, default, 1 core (images/CPU-s)",
        "synth_faces_per_s_256px": "SynthFaces 256 px, default, 1 core (images/CPU-s)",
        "synth_hard_faces_per_s_128px": "SynthFaces 128 px, hard, 1 core (images/CPU-s)",
        "synth_negatives_per_s_64px": "SynthNegatives 64 px, 1 core (images/CPU-s)",
        "synth_video_frames_per_s_128px": "synth_video 128 px, 1 core (frames/CPU-s)",
        "synth_boundary_gradient_ratio": "gradient at landmarks / inside face, default (ratio)",
        "synth_boundary_gradient_ratio_hard": "gradient at landmarks / inside face, hard (ratio)",
    }
