"""Scoring by tracking: the zoo's validation videos and Xia's frame-by-frame loop around a model.

Both notebook-06 families (Xia's ATPN, Yin's tracker) are scored by tracking every frame of
the same synthetic videos (Xia Table 4 in miniature, :func:`lmk.track.summarize`). The videos
are rendered once per process and shared, since the zoo scores many models on them.
"""

from __future__ import annotations

import functools

import numpy as np

from ..data import SynthVideos
from ..track import Tracker, summarize
from .base import check_split

__all__ = ["VIDEO_VAL_SEED", "VIDEO_VAL_N", "VIDEO_VAL_T", "VIDEO_TEST_SEED", "VIDEO_TEST_N", "zoo_videos",
           "render_videos", "validation_videos", "evaluation_videos", "TrackingScores"]

VIDEO_VAL_SEED, VIDEO_VAL_N, VIDEO_VAL_T = 7, 8, 64
"""The zoo's validation videos: ``SynthVideos(8, T=64, seed=7)`` at the recipe's render size."""
VIDEO_TEST_SEED, VIDEO_TEST_N = 2_000_007, 32
"""The zoo's held-out test videos: ``SynthVideos(32, T=64, seed=2_000_007)``, which no training,
monitoring or choice reads (training videos are seeds 100 and 101, validation 7)."""


def zoo_videos(split: str = "val") -> dict:
    """``{"split", "n", "seed", "frames"}`` of the zoo's validation or test videos."""
    n, seed = (VIDEO_VAL_N, VIDEO_VAL_SEED) if check_split(split) == "val" else (VIDEO_TEST_N, VIDEO_TEST_SEED)
    return {"split": split, "n": n, "seed": seed, "frames": VIDEO_VAL_T}


def render_videos(n: int, T: int, size: int, seed: int, difficulty) -> list:
    """``n`` synthetic videos of ``T`` frames, rendered into memory (a list of dicts)."""
    videos = SynthVideos(n, T=T, size=size, seed=seed, difficulty=difficulty)
    return [videos[i] for i in range(len(videos))]


@functools.lru_cache(maxsize=4)
def _rendered_videos(n: int, T: int, size: int, seed: int, difficulty) -> tuple:
    return tuple(render_videos(n, T, size, seed, difficulty))


def evaluation_videos(cfg: dict, split: str = "val", n: int | None = None, seed: int | None = None) -> list:
    """The zoo's validation or test videos for a recipe config (``n`` of ``seed``, 64 frames each).

    Rendered once per process and shared; treat them as read-only.
    """
    d, v = cfg["data"], zoo_videos(split)
    return list(_rendered_videos(v["n"] if n is None else n, VIDEO_VAL_T, d["render_size"],
                                 v["seed"] if seed is None else seed, d["difficulty"]))


def validation_videos(cfg: dict, n: int = VIDEO_VAL_N, seed: int = VIDEO_VAL_SEED) -> list:
    """The zoo's validation videos (:func:`evaluation_videos` of ``"val"``)."""
    return evaluation_videos(cfg, "val", n, seed)


class TrackingScores:
    """Mixin of the families whose models track: ``predictor`` comes from the family."""

    def track_videos(self, model, cfg: dict, videos) -> list:
        """Track ``videos`` with Xia's loop around the model (its own crop margin)."""
        d = cfg["data"]
        return Tracker(self.predictor(model, cfg), d["input_size"], margin=d["margin"]).track_all(videos)

    def tracking_summary(self, model, cfg: dict, split: str = "val", n: int | None = None,
                         seed: int | None = None) -> dict:
        """:func:`lmk.track.summarize` of the model tracking the zoo's ``split`` videos."""
        return summarize(self.track_videos(model, cfg, evaluation_videos(cfg, split, n, seed)))

    def score_tracker(self, model, cfg: dict, split: str = "val", n: int | None = None,
                      seed: int | None = None) -> tuple:
        """``(per-frame NMEs, last-frame baseline NMEs, the TrackResults)`` on the ``split`` videos."""
        results = self.track_videos(model, cfg, evaluation_videos(cfg, split, n, seed))
        return (np.concatenate([r.nme for r in results]), np.concatenate([r.baseline_nme for r in results]),
                results)
