"""Deprecated: notebook 06's training and scoring moved into the model families; this alias warns.

Where each name lives now (see CHANGELOG.md):

* ``LandmarksOutput`` -> :mod:`lmk.codecs`; ``ClipMarginalLoss`` -> :mod:`lmk.losses`;
  ``Frames`` -> :mod:`lmk.data.frame_pairs`; ``merge_histories`` -> :mod:`lmk.train`;
* ``atpn_datasets``, ``train_atpn``, ``STAGE_MONITORS``, ``NEGATIVES_VAL_SEED`` ->
  :mod:`lmk.families.atpn`; ``yin_videos``, ``train_yin`` -> :mod:`lmk.families.tracker`;
* ``VIDEO_VAL_*``, ``validation_videos`` -> :mod:`lmk.families.tracking`;
* ``predictor``, ``track_videos``, ``tracking_summary``, ``score_tracker``, ``task_metrics`` ->
  methods of the family (``lmk.families.family_of(cfg)``); ``lmk.zoo.predictor``.
"""

import warnings

from .codecs import LandmarksOutput  # noqa: F401
from .data.frame_pairs import Frames  # noqa: F401
from .families import family_of
from .families.atpn import NEGATIVES_VAL_SEED, STAGE_MONITORS, atpn_datasets, train_atpn  # noqa: F401
from .families.tracker import train_yin, yin_videos  # noqa: F401
from .families.tracking import VIDEO_VAL_N, VIDEO_VAL_SEED, VIDEO_VAL_T, validation_videos  # noqa: F401
from .losses import ClipMarginalLoss  # noqa: F401
from .train import merge_histories  # noqa: F401

warnings.warn("lmk.multitask_run is deprecated: its parts moved to lmk.families, lmk.codecs, lmk.losses, "
              "lmk.data and lmk.train (see its docstring)", DeprecationWarning, stacklevel=2)


def predictor(model, cfg: dict):
    return family_of(cfg).predictor(model, cfg)


def track_videos(model, cfg: dict, videos) -> list:
    return family_of(cfg).track_videos(model, cfg, videos)


def tracking_summary(model, cfg: dict, n: int = VIDEO_VAL_N, seed: int = VIDEO_VAL_SEED) -> dict:
    return family_of(cfg).tracking_summary(model, cfg, "val", n, seed)


def score_tracker(model, cfg: dict, n: int = VIDEO_VAL_N, seed: int = VIDEO_VAL_SEED) -> tuple:
    return family_of(cfg).score_tracker(model, cfg, "val", n, seed)


def task_metrics(model, cfg: dict, mean_pose_deg=None, n: int = 256, seed: int = 0, tracks=None) -> dict:
    return family_of(cfg).task_metrics(model, cfg, mean_pose_deg, {"tracks": tracks}, n=n, seed=seed)
