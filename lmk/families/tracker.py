"""Yin et al. (2020), Sec. 4.2: a 1D heatmap detector with temporal refinement (Eq. 13), for video.

Two stages on one :class:`lmk.models.temporal.YinTracker`:

1. the detector (a 1D heatmap model of notebook 02, the recipe it builds on) fine-tuned on
   tracking crops of synthetic videos (single frames cropped around the previous frame's
   landmarks, jittered), with Yin's 1D heatmap loss;
2. the refinement trained on clips of consecutive frames with the detector frozen, the loss
   averaged over the refined heatmaps of every frame (Eq. 14's sum up to a constant; each clip
   starts with no past).

A tracker is scored by tracking every frame of the zoo's validation videos (decoder
``"tracking"``, baseline: the last frame's truth); its ``Result.evaluation`` scores the detector
alone on single tracking crops, because the refinement needs the frames before.
"""

from __future__ import annotations

import time

import torch

from ..data.frame_pairs import FramePairs, Frames
from ..evaluation import evaluate
from ..layouts import LAYOUT_68, layout_for
from ..losses import ClipMarginalLoss, MarginalLoss
from ..models.temporal import YinTracker
from ..scoring import baseline_nmes
from ..track import YinPredictor, summarize
from ..train import merge_histories
from .base import Family, Result, mean_shape
from .heatmaps import marginal_codec, marginal_detector
from .stages import fit_stages
from .tracking import TrackingScores, render_videos, zoo_videos

__all__ = ["YinTemporal", "yin_videos", "train_yin"]


def yin_videos(cfg: dict) -> tuple[list, list]:
    """``(train, val)`` synthetic videos of a tracker recipe (kept in memory)."""
    d = cfg["data"]
    seed = d.get("data_seed", 100)
    return (render_videos(d["videos"], d["frames"], d["render_size"], seed, d["difficulty"]),
            render_videos(d["val_videos"], d["frames"], d["render_size"], seed + 1, d["difficulty"]))


def train_yin(model, cfg: dict, codec, train_videos, val_videos, *, device="cpu", checkpoint_dir=None,
              resume: bool = False, show_progress: bool = False, execution=None) -> tuple:
    """Fine-tune ``model.detector`` on tracking crops, then train ``model.refinement`` on clips.

    A crop's jitter is a function of ``(seed, index)``, so every epoch sees the same crops
    (``FramePairs`` has no epoch). Returns ``(history, per-stage histories)``.
    """
    d, t = cfg["data"], cfg["train"]
    size, margin, jitter = d["input_size"], d["margin"], d["jitter"]
    frames = Frames(FramePairs(train_videos, 1, size, margin=margin, jitter=jitter, seed=t["seed"]))
    val_frames = Frames(FramePairs(val_videos, 1, size, margin=margin, jitter=jitter, seed=1, stride=4))
    clips = FramePairs(train_videos, d["clip_length"], size, margin=margin, jitter=jitter,
                       seed=t["seed"] + 1)
    common = {"norm": t["norm"], "layout": layout_for(model.detector.num_landmarks), "seed": t["seed"],
              "lr": t["lr"]}
    runs = []
    if t["detector_epochs"]:
        e = t["detector_epochs"]
        runs.append((1, "detector", dict(module=model.detector, train_data=frames, val_data=val_frames,
                                         loss_fn=MarginalLoss(codec), decode_fn=codec.decode, epochs=e,
                                         milestones=[max(1, e - 1)], batch_size=t["batch_size"], **common)))
    if t["refine_epochs"]:
        e = t["refine_epochs"]
        runs.append((2, "refinement", dict(train_data=clips, val_data=None, loss_fn=ClipMarginalLoss(codec),
                                           decode_fn=codec.decode, epochs=e, milestones=[max(1, e - 1)],
                                           batch_size=t["clip_batch_size"], freeze=["detector."], **common)))
    per_stage = fit_stages(model, runs, checkpoint_dir=checkpoint_dir, resume=resume, device=device,
                           show_progress=show_progress, execution=execution)
    return merge_histories(list(per_stage.values())), per_stage


class YinTemporal(TrackingScores, Family):
    """Yin et al. (2020): a 1D heatmap detector + Eq. 13's temporal refinement (weight ``lam``)."""

    name, paper, loss_name = "yin", "Yin et al. (2020)", "marginal"
    tracker = True

    def build_model(self, cfg):
        args = cfg["model_args"]
        detector = marginal_detector(args["detector"], cfg["data"]["input_size"])
        return YinTracker(detector, args["lam"], channels=args["channels"])

    def heatmap_size(self, cfg):
        return int(round(cfg["model_args"]["detector"]["length_ratio"] * cfg["data"]["input_size"]))

    def codec(self, cfg, method=None):
        return marginal_codec(cfg, cfg["model_args"]["detector"], method)

    def loss(self, cfg, codec, layout=LAYOUT_68):
        return ClipMarginalLoss(codec)

    def decoders(self, cfg):
        return ("tracking",)

    def main_decoder(self, cfg):
        return "tracking"

    def resolve(self, cfg, base):
        """The detector, its input and heatmaps are those of the recipe it builds on, at the same scale."""
        cfg["model_args"]["detector"] = dict(base["model_args"])
        cfg["data"]["input_size"] = base["data"]["input_size"]
        cfg["data"]["render_size"] = base["data"]["render_size"]
        cfg["train"]["sigma"] = base["train"]["sigma"]
        cfg["train"]["method"] = base["train"]["method"]
        return cfg

    def load_base(self, model, name, stored, zoo_dir=None):
        """A tracker's base is a tracker (all but ``stored``) or a bare 1D detector (into ``detector``)."""
        from .. import store

        state, e = store.read_state(name, zoo_dir)
        if any(k.startswith(("detector.", "refinement.")) for k in state):
            return super().load_base(model, name, stored, zoo_dir)
        model.detector.load_state_dict(state)
        return e["sha256"]

    def train(self, cfg, *, data="synthetic", data_root=None, device="auto", checkpoint_dir=None,
              resume=False, show_progress=False, on_error="raise", prepared=None, zoo_dir=None,
              execution=None) -> Result:
        """Train on synthetic videos (``prepared``: ``(train, val)`` videos already rendered)."""
        self.check_config(cfg)
        if data != "synthetic":
            raise ValueError(f"recipe {cfg['name']} trains on synthetic videos only (DATA={data!r})")
        start = time.perf_counter()
        t = cfg["train"]
        train_videos, val_videos = prepared or yin_videos(cfg)
        codec = self.codec(cfg)
        torch.manual_seed(t["seed"])
        model = self.build_model(cfg)
        base_sha = self.load_base(model, t["init_from"], t.get("stored"), zoo_dir) if t.get("init_from") else None
        history, per_stage = train_yin(model, cfg, codec, train_videos, val_videos, device=device,
                                       checkpoint_dir=checkpoint_dir, resume=resume,
                                       show_progress=show_progress, execution=execution)
        model = model.cpu().eval()
        d = cfg["data"]
        frames = Frames(FramePairs(train_videos, 1, d["input_size"], margin=d["margin"], jitter=0.0))
        shape = mean_shape(frames)
        ev = evaluate(model.detector, Frames(FramePairs(val_videos, 1, d["input_size"], margin=d["margin"],
                                                        jitter=d["jitter"], seed=1, stride=4)),
                      codec.decode, norm=t["norm"], device=device)
        return Result(cfg, model, codec, history, ev, shape,
                      baseline_nmes(shape, ev.landmarks, t["norm"], LAYOUT_68), time.perf_counter() - start,
                      None, None,
                      {"videos": (train_videos, val_videos), "stage_histories": per_stage, "base_sha256": base_sha})

    # --------------------------------------------------------------------------- scoring
    def zoo_faces(self, cfg, split="val"):
        """The zoo's validation or test videos: ``{"split", "n", "seed", "frames"}``."""
        return zoo_videos(split)

    def score(self, model, cfg, shape, n=None, seed=None, methods=None, flip=False, flip_methods=(),
              split="val"):
        """Every frame of ``n`` ``split`` videos of ``seed`` (default :func:`zoo_videos`), tracked; the
        baseline is the last frame's truth; ``"tracks"`` holds the :class:`lmk.track.TrackResult` s."""
        from ..scoring import summary

        nmes, baseline, tracks = self.score_tracker(model, cfg, split, n, seed)
        return {"methods": {"tracking": summary(nmes)}, "baseline_nmes": baseline, "tracks": tracks}

    def task_metrics(self, model, cfg, mean_pose=None, scored=None, split="val"):
        tracks = (scored or {}).get("tracks")
        return {"tracking": summarize(tracks) if tracks else self.tracking_summary(model, cfg, split)}

    def entry_extras(self, result):
        return {"mean_pose": None}

    def network_text(self, cfg):
        a = cfg["model_args"]
        det = a["detector"]
        return (f"1D detector (MobileNetV2 x {det['width_mult']:g}, L = {det['length_ratio']:g} F) + "
                f"refinement ({a['channels']} ch), lambda {a['lam']:g}")

    def heatmap_text(self, cfg):
        return f"2 x {self.heatmap_size(cfg)} (1D), sigma {cfg['train']['sigma']:g} cells"

    def costed_network(self, model):
        return model.detector                          # the refinement is tiny

    def predictor(self, model, cfg):
        return YinPredictor(model.eval(), self.codec(cfg))

    def predict_batch(self, model, cfg, images, method=None):
        """The detector alone on single images; a refinement needs the frames before (lmk.track)."""
        if cfg["train"].get("refine_epochs") or cfg["model_args"]["lam"] != 0.0:
            raise ValueError(f"{cfg['name']} refines a detector over time (Yin Eq. 13): it needs the "
                             "frames before, so track a video with lmk.track.Tracker and "
                             "lmk.zoo.predictor(...) instead of predicting one image")
        return self.codec(cfg, method).decode(model.detector(images))
