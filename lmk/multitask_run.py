"""Training and scoring of notebook 06's recipes: Xia's three-stage ATPN and Yin's tracker.

:func:`lmk.recipes.run` hands these two model kinds here, because neither trains like the
single-image models of notebooks 02-05:

* ``"atpn"`` (Xia et al. 2022, Sec. 3.4): three :func:`lmk.train.fit` runs on one network.
  Stage 1 trains the backbone and the alignment branch on faces; stage 2 the tracking branch on
  faces and negatives, the rest frozen; stage 3 the pose branch on faces, the rest frozen. Each
  stage has its own loss (:meth:`lmk.losses.MultitaskLoss.stage`) and monitored figure.
* ``"yin"`` (Yin et al. 2020, Sec. 4.2): a 1D heatmap detector (a zoo model of notebook 02)
  fine-tuned on tracking crops of synthetic videos (:class:`lmk.data.FramePairs` of one frame),
  then the temporal refinement (Eq. 13) trained on clips of consecutive frames with the detector
  frozen.

Scoring beyond the landmark NME (what the zoo records and ``zoo verify`` checks):
:func:`task_metrics` gives an ATPN's pose MAE, FR@10 degrees and confidence AP beside their
baselines, and either model's tracking figures on the zoo's validation videos
(:func:`tracking_summary`, Xia Table 4 in miniature).
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path

import numpy as np
import torch

from ._backend import check_size
from .codecs import MarginalCodec
from .data import LandmarkDataset, SynthNegatives, SynthVideos
from .data.frame_pairs import FramePairs
from .data.multitask import NEGATIVES_SEED_OFFSET, MultitaskDataset
from .evaluation import evaluate
from .layouts import layout_for
from .losses import MarginalLoss, MultitaskLoss
from .models.atpn import STAGE_MODULES
from .multitask_metrics import atpn_metrics, mean_pose
from .track import Tracker, YinPredictor, atpn_predictor, summarize
from .train import History, fit

__all__ = ["STAGE_MONITORS", "VIDEO_VAL_SEED", "VIDEO_VAL_N", "NEGATIVES_VAL_SEED", "LandmarksOutput",
           "ClipMarginalLoss", "Frames", "atpn_datasets", "train_atpn", "train_yin",
           "validation_videos", "tracking_summary", "task_metrics", "merge_histories"]

STAGE_MONITORS = {1: ("nme", "min"), 2: ("confidence_ap", "max"), 3: ("pose_mae", "min")}
"""The validation figure each ATPN stage watches for ``best.pt`` (the model kept is the last)."""
VIDEO_VAL_SEED, VIDEO_VAL_N, VIDEO_VAL_T = 7, 8, 64
"""The zoo's validation videos: ``SynthVideos(8, T=64, seed=7)`` at the recipe's render size."""
NEGATIVES_VAL_SEED = 2 * NEGATIVES_SEED_OFFSET
"""Seed of the validation negatives (training negatives use ``data_seed + NEGATIVES_SEED_OFFSET``)."""
MODULES = ("backbone", "alignment", "pose", "tracking")


class LandmarksOutput:
    """The "codec" of a model that regresses coordinates into a dict: ``outputs["landmarks"]``."""

    method = "regression"

    def __init__(self, input_size):
        self.input_size = check_size(input_size, "input_size")

    def decode(self, outputs: dict) -> torch.Tensor:
        if not isinstance(outputs, dict) or "landmarks" not in outputs:
            raise ValueError("expected the model's output dict with a 'landmarks' (B, N, 2) entry")
        return outputs["landmarks"]


class ClipMarginalLoss(torch.nn.Module):
    """Yin's 1D heatmap loss over clips: ``(hx, hy)`` each ``(B, T, N, L)`` against ``(B, T, N, 2)``.

    Every frame of every clip counts once (the mean over ``B * T`` frames), so a clip of length
    1 is :class:`lmk.losses.MarginalLoss` itself.
    """

    def __init__(self, codec: MarginalCodec):
        super().__init__()
        self.loss = MarginalLoss(codec)

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        hx, hy = outputs
        points = batch["landmarks"]
        if hx.ndim != 4 or points.ndim != 4 or points.shape[:2] != hx.shape[:2]:
            raise ValueError(f"ClipMarginalLoss expects heatmaps (B, T, N, L) and landmarks (B, T, N, 2); "
                             f"got {tuple(hx.shape)} and {tuple(points.shape)}")
        return self.loss((hx.flatten(0, 1), hy.flatten(0, 1)), {"landmarks": points.flatten(0, 1)})


class Frames(torch.utils.data.Dataset):
    """The single frames of a :class:`FramePairs` of length 1, as ``LandmarkDataset``-like items."""

    def __init__(self, clips: FramePairs):
        if clips.length != 1:
            raise ValueError(f"Frames takes FramePairs of length 1, got length {clips.length}")
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index) -> dict:
        item = self.clips[index]
        return {"image": item["image"][0], "landmarks": item["landmarks"][0], "index": int(index)}


def merge_histories(histories: list[History]) -> History:
    """One :class:`History` of consecutive runs (epochs numbered on); ``best_epoch`` is that of
    the last run that recorded one."""
    out = History()
    for h in histories:
        offset = len(out.epoch)
        for name in ("train_loss", "lr", "val_nme", "val_auc", "val_fr", "seconds", "step_loss"):
            getattr(out, name).extend(getattr(h, name))
        out.epoch.extend(offset + e for e in range(1, len(h.epoch) + 1))
        for name in sorted(set(out.val_metrics) | set(h.val_metrics)):
            values = out.val_metrics.setdefault(name, [float("nan")] * offset)
            values.extend(h.val_metrics.get(name, [float("nan")] * len(h.epoch)))
        if h.best_epoch is not None:
            out.best_epoch = offset + h.best_epoch
    return out


# --------------------------------------------------------------------------------- ATPN
def atpn_datasets(cfg: dict, train_source, val_source, seed: int = 0, augment=None) -> dict:
    """The data of the three stages and of validation (faces + negatives), from a recipe config.

    Returns ``{"faces": MultitaskDataset (stages 1, 3), "faces_negatives": (stage 2),
    "val": MultitaskDataset with negatives, "plain": LandmarkDataset without augmentation}``.
    Negatives are :class:`SynthNegatives` at the input size for every data source. ``augment``
    (an :class:`lmk.data.Augment`, or None) applies to the training faces and negatives.
    """
    d = cfg["data"]
    size, margin = d["input_size"], d["margin"]
    faces = LandmarkDataset(train_source, size, mode="crop", margin=margin, augment=augment,
                            seed=seed, cache=not isinstance(train_source, list))
    plain = LandmarkDataset(train_source, size, mode="crop", margin=margin)
    val_faces = LandmarkDataset(val_source, size, mode="crop", margin=margin,
                                cache=not isinstance(val_source, list))
    count = round(len(faces) * d["negatives_per_face"])
    negatives = SynthNegatives(max(count, 1), size=size, seed=d.get("data_seed", 0) + NEGATIVES_SEED_OFFSET,
                               difficulty=d["difficulty"])
    val_negatives = SynthNegatives(len(val_faces), size=size, seed=NEGATIVES_VAL_SEED,
                                   difficulty=d["difficulty"])
    return {"faces": MultitaskDataset(faces), "faces_negatives": MultitaskDataset(faces, negatives),
            "val": MultitaskDataset(val_faces, val_negatives), "plain": plain}


def train_atpn(model, cfg: dict, data: dict, *, device="cpu", checkpoint_dir=None, resume: bool = False,
               show_progress: bool = False, stages=(1, 2, 3)) -> tuple[History, dict]:
    """Xia's three training stages on ``model`` in place; returns ``(history, per-stage histories)``.

    ``cfg["train"]["stage_epochs"]`` gives each stage's epochs (0 skips it). Stage 3 is skipped
    when the faces carry no pose (300W, WFLW), and its metrics are left out.
    """
    t, layout = cfg["train"], layout_for(model.num_landmarks)
    has_pose = data["faces"].has_pose
    pose0 = mean_pose(data["plain"]) if has_pose else None
    metrics = atpn_metrics(pose0, pose=has_pose)
    per_stage = {}
    for k in stages:
        epochs = t["stage_epochs"][k - 1]
        if epochs == 0 or (k == 3 and not has_pose):
            continue
        monitor, mode = STAGE_MONITORS[k]
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"stage{k}"
        freeze = [m + "." for m in MODULES if m not in STAGE_MODULES[k]]
        per_stage[k] = fit(model, data["faces_negatives" if k == 2 else "faces"], data["val"],
                           loss_fn=MultitaskLoss.stage(k, layout=layout),
                           decode_fn=operator.itemgetter("landmarks"), epochs=epochs, lr=t["lr"],
                           milestones=sorted({max(1, round(f * epochs)) for f in t["milestones"]}),
                           batch_size=t["batch_size"], seed=t["seed"] + 10 * (k - 1), device=device,
                           norm=t["norm"], freeze=freeze, metrics=metrics, monitor=monitor,
                           monitor_mode=mode, weight_decay=t["weight_decay"], checkpoint_dir=ckpt,
                           resume=resume, show_progress=show_progress, layout=layout)
    return merge_histories(list(per_stage.values())), per_stage


# ---------------------------------------------------------------------------------- Yin
def _videos(n: int, T: int, size: int, seed: int, difficulty) -> list:
    videos = SynthVideos(n, T=T, size=size, seed=seed, difficulty=difficulty)
    return [videos[i] for i in range(len(videos))]


def yin_videos(cfg: dict) -> tuple[list, list]:
    """``(train, val)`` synthetic videos of a Yin tracker recipe (kept in memory)."""
    d = cfg["data"]
    seed = d.get("data_seed", 100)
    return (_videos(d["videos"], d["frames"], d["render_size"], seed, d["difficulty"]),
            _videos(d["val_videos"], d["frames"], d["render_size"], seed + 1, d["difficulty"]))


def train_yin(model, cfg: dict, codec, train_videos, val_videos, *, device="cpu", checkpoint_dir=None,
              resume: bool = False, show_progress: bool = False) -> tuple[History, dict]:
    """Fine-tune ``model.detector`` on tracking crops, then train ``model.refinement`` on clips.

    Stage 1: single frames cropped around the previous frame's landmarks (jittered), the loss of
    Yin's 1D heatmaps. Stage 2: clips of ``clip_length`` frames, the detector frozen, the loss
    averaged over the refined heatmaps of every frame (Eq. 14's sum up to a constant; each clip
    starts with no past). A crop's jitter is a function of ``(seed, index)``, so every epoch
    sees the same crops (``FramePairs`` has no epoch).
    """
    d, t = cfg["data"], cfg["train"]
    size, margin, jitter = d["input_size"], d["margin"], d["jitter"]
    frames = Frames(FramePairs(train_videos, 1, size, margin=margin, jitter=jitter, seed=t["seed"]))
    val_frames = Frames(FramePairs(val_videos, 1, size, margin=margin, jitter=jitter, seed=1, stride=4))
    clips = FramePairs(train_videos, d["clip_length"], size, margin=margin, jitter=jitter,
                       seed=t["seed"] + 1)
    layout = layout_for(model.detector.num_landmarks)
    common = {"device": device, "norm": t["norm"], "show_progress": show_progress, "resume": resume,
              "layout": layout, "seed": t["seed"]}
    ckpt = (lambda name: None) if checkpoint_dir is None else (lambda name: Path(checkpoint_dir) / name)
    per_stage = {}
    if t["detector_epochs"]:
        e = t["detector_epochs"]
        per_stage[1] = fit(model.detector, frames, val_frames, loss_fn=MarginalLoss(codec),
                           decode_fn=codec.decode, epochs=e, lr=t["lr"], milestones=[max(1, e - 1)],
                           batch_size=t["batch_size"], checkpoint_dir=ckpt("detector"), **common)
    if t["refine_epochs"]:
        e = t["refine_epochs"]
        per_stage[2] = fit(model, clips, None, loss_fn=ClipMarginalLoss(codec), decode_fn=codec.decode,
                           epochs=e, lr=t["lr"], milestones=[max(1, e - 1)],
                           batch_size=t["clip_batch_size"], freeze=["detector."],
                           checkpoint_dir=ckpt("refinement"), **common)
    return merge_histories(list(per_stage.values())), per_stage


# --------------------------------------------------------------------------------- scoring
@functools.lru_cache(maxsize=4)
def _rendered_videos(n: int, T: int, size: int, seed: int, difficulty) -> tuple:
    return tuple(_videos(n, T, size, seed, difficulty))


@functools.lru_cache(maxsize=4)
def _rendered_negatives(n: int, size: int, seed: int, difficulty) -> tuple:
    negatives = SynthNegatives(n, size=size, seed=seed, difficulty=difficulty)
    return tuple(negatives[i] for i in range(n))


def validation_videos(cfg: dict, n: int = VIDEO_VAL_N, seed: int = VIDEO_VAL_SEED) -> list:
    """The zoo's validation videos for a recipe config (``n`` of ``seed``, 64 frames each).

    Rendered once per process and shared (the zoo scores many models on the same videos);
    treat them as read-only.
    """
    d = cfg["data"]
    return list(_rendered_videos(n, VIDEO_VAL_T, d["render_size"], seed, d["difficulty"]))


def predictor(model, cfg: dict):
    """The :class:`lmk.track.Tracker` ``predict_fn`` of a trained ATPN or Yin tracker."""
    from .recipes import build_codec        # recipes imports this module: a real cycle
    if cfg["model"] == "atpn":
        return atpn_predictor(model.eval())
    if cfg["model"] == "yin":
        return YinPredictor(model.eval(), build_codec(cfg))
    raise ValueError(f"recipe {cfg['name']}: no tracking predictor for model kind {cfg['model']!r}")


def track_videos(model, cfg: dict, videos) -> list:
    """Track ``videos`` with Xia's loop around the model (its own crop margin)."""
    d = cfg["data"]
    return Tracker(predictor(model, cfg), d["input_size"], margin=d["margin"]).track_all(videos)


def tracking_summary(model, cfg: dict, n: int = VIDEO_VAL_N, seed: int = VIDEO_VAL_SEED) -> dict:
    """:func:`lmk.track.summarize` of the model tracking the zoo's validation videos."""
    return summarize(track_videos(model, cfg, validation_videos(cfg, n, seed)))


def score_tracker(model, cfg: dict, n: int = VIDEO_VAL_N, seed: int = VIDEO_VAL_SEED) -> tuple:
    """``(per-frame NMEs, last-frame baseline NMEs, the TrackResults)`` of a tracker on the
    validation videos."""
    results = track_videos(model, cfg, validation_videos(cfg, n, seed))
    return (np.concatenate([r.nme for r in results]), np.concatenate([r.baseline_nme for r in results]),
            results)


def task_metrics(model, cfg: dict, mean_pose_deg=None, n: int = 256, seed: int = 0, tracks=None) -> dict:
    """Figures beyond the landmark NME: ATPN's pose and confidence, and tracking (both kinds).

    ATPN: ``pose_mae``, ``pose_fr`` (degrees, FR@10) and ``confidence_ap``, each with its
    ``*_baseline`` (the training mean pose, the share of faces), on the zoo's validation faces
    with as many validation negatives; and ``tracking``: :func:`tracking_summary` (or the
    summary of ``tracks``, the model's :class:`lmk.track.TrackResult` s of the validation videos
    when they are at hand).
    """
    out = {}
    if cfg["model"] == "atpn":
        from .zoo import validation_dataset  # zoo imports this module: a real cycle
        faces = validation_dataset(cfg, n, seed)
        d = cfg["data"]
        val = MultitaskDataset(faces, _rendered_negatives(len(faces), d["input_size"], NEGATIVES_VAL_SEED,
                                                          d["difficulty"]))
        ev = evaluate(model.eval(), val, operator.itemgetter("landmarks"), device="cpu",
                      norm=cfg["train"]["norm"], metrics=atpn_metrics(mean_pose_deg))
        out.update(ev.metrics)
    out["tracking"] = summarize(tracks) if tracks else tracking_summary(model, cfg)
    return out

