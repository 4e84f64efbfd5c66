"""Benchmarks: ``python -m lmk.bench [--json] [--quick] [--only TOPIC]``, and ``--gpu`` (:mod:`.gpu`).

Each topic module (``decode``, ``synth``, ``models``, ...) exposes ``run(quick) -> {key: number}``
and ``describe() -> {key: label}``. Figures that are compared (a speed-up, a memory ratio) are
measured side by side in one run, never against numbers from another machine or day.
"""

from contextlib import contextmanager

TOPICS = ("decode", "synth", "data", "models", "ops", "training")


@contextmanager
def single_thread():
    """Run the block with one torch and one OpenCV thread, then restore both settings."""
    import cv2
    import torch

    threads_torch, threads_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads_torch)
        cv2.setNumThreads(threads_cv)
