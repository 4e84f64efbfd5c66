"""Xia et al. (2022): ATPN, alignment + head pose + face confidence, trained in three stages.

Sec. 3.4: three :func:`lmk.train.fit` runs on one network. Stage 1 trains the backbone and the
alignment branch on faces; stage 2 the tracking branch on faces and negatives, the rest frozen;
stage 3 the pose branch on faces, the rest frozen. Each stage has its own loss
(:meth:`lmk.losses.MultitaskLoss.stage`) and monitored figure (:data:`STAGE_MONITORS`); the
model kept is the last. Beyond the landmark NME, a model is scored on pose MAE, FR@10 degrees
and confidence AP beside their baselines, and by tracking the zoo's validation videos.

Multi-stage checkpoints (``checkpoint_dir/stage{k}``) record what each stage started from: the
stage's own settings and the sha256 of the weights it began with. A resumed run continues a
stage only if it began from the same weights as now; a fresh run clears every stage's folder.
"""

from __future__ import annotations

import functools
import operator
import time

import numpy as np
import torch

from ..codecs import LandmarksOutput
from ..data import LandmarkDataset, SynthNegatives
from ..data.multitask import NEGATIVES_SEED_OFFSET, MultitaskDataset
from ..evaluation import evaluate
from ..layouts import LAYOUT_68, layout_for
from ..losses import MultitaskLoss
from ..models.atpn import ATPN, STAGE_MODULES
from ..multitask_metrics import atpn_metrics, mean_pose
from ..scoring import baseline_nmes
from ..track import atpn_predictor, summarize
from ..train import merge_histories, milestone_epochs
from .base import Family, Result, augment_of, mean_shape
from .stages import fit_stages
from .tracking import TrackingScores

__all__ = ["XiaATPN", "STAGE_MONITORS", "NEGATIVES_VAL_SEED", "NEGATIVES_TEST_SEED", "atpn_datasets", "train_atpn"]

STAGE_MONITORS = {1: ("nme", "min"), 2: ("confidence_ap", "max"), 3: ("pose_mae", "min")}
"""The validation figure each ATPN stage watches for ``best.pt`` (the model kept is the last)."""
NEGATIVES_VAL_SEED = 2 * NEGATIVES_SEED_OFFSET
"""Seed of the validation negatives (training negatives use ``data_seed + NEGATIVES_SEED_OFFSET``)."""
NEGATIVES_TEST_SEED = 3 * NEGATIVES_SEED_OFFSET
"""Face-free crops scored beside the held-out test faces (no training or choice reads them)."""
MODULES = ("backbone", "alignment", "pose", "tracking")


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
               show_progress: bool = False, stages=(1, 2, 3), execution=None) -> tuple:
    """Xia's three training stages on ``model`` in place; returns ``(history, per-stage histories)``.

    ``cfg["train"]["stage_epochs"]`` gives each stage's epochs (0 skips it). Stage 3 is skipped
    when the faces carry no pose (300W, WFLW), and its metrics are left out.
    """
    t, layout = cfg["train"], layout_for(model.num_landmarks)
    has_pose = data["faces"].has_pose
    pose0 = mean_pose(data["plain"]) if has_pose else None
    metrics = atpn_metrics(pose0, pose=has_pose)
    runs = []
    for k in stages:
        epochs = t["stage_epochs"][k - 1]
        if epochs == 0 or (k == 3 and not has_pose):
            continue
        monitor, mode = STAGE_MONITORS[k]
        freeze = [m + "." for m in MODULES if m not in STAGE_MODULES[k]]
        runs.append((k, f"stage{k}", dict(
            train_data=data["faces_negatives" if k == 2 else "faces"], val_data=data["val"],
            loss_fn=MultitaskLoss.stage(k, layout=layout), decode_fn=operator.itemgetter("landmarks"),
            epochs=epochs, lr=t["lr"], milestones=milestone_epochs(t["milestones"], epochs),
            batch_size=t["batch_size"], seed=t["seed"] + 10 * (k - 1), norm=t["norm"], freeze=freeze,
            metrics=metrics, monitor=monitor, monitor_mode=mode, weight_decay=t["weight_decay"],
            layout=layout)))
    per_stage = fit_stages(model, runs, checkpoint_dir=checkpoint_dir, resume=resume, device=device,
                           show_progress=show_progress, execution=execution)
    return merge_histories(list(per_stage.values())), per_stage


@functools.lru_cache(maxsize=4)
def _rendered_negatives(n: int, size: int, seed: int, difficulty) -> tuple:
    negatives = SynthNegatives(n, size=size, seed=seed, difficulty=difficulty)
    return tuple(negatives[i] for i in range(n))


class XiaATPN(TrackingScores, Family):
    """Xia et al. (2022): images -> ``{"landmarks", "pose", "confidence"}``, three stages."""

    name, paper, loss_name = "atpn", "Xia et al. (2022)", "multitask"

    def build_model(self, cfg):
        return ATPN(input_size=cfg["data"]["input_size"], **cfg["model_args"])

    def codec(self, cfg, method=None):
        return LandmarksOutput(cfg["data"]["input_size"])

    def loss(self, cfg, codec, layout=LAYOUT_68):
        return MultitaskLoss.stage(3, layout=layout)

    def decoders(self, cfg):
        return ("regression",)

    def main_decoder(self, cfg):
        return "regression"

    def train(self, cfg, *, data="synthetic", data_root=None, device="auto", checkpoint_dir=None,
              resume=False, show_progress=False, on_error="raise", prepared=None, zoo_dir=None,
              execution=None) -> Result:
        """The three stages (:func:`train_atpn`) and the evaluation with negatives.

        A recipe with ``train.init_from`` starts from that zoo model, all but its ``stored``
        parts (the stages before this recipe's).
        """
        self.check_config(cfg)
        start = time.perf_counter()
        t = cfg["train"]
        train_src, val_src, layout = self._opened(cfg, data, data_root, on_error, prepared, execution)
        sets = atpn_datasets(cfg, train_src, val_src, seed=t["seed"], augment=augment_of(cfg))
        shape = mean_shape(sets["plain"])
        pose0 = mean_pose(sets["plain"]) if sets["faces"].has_pose else None
        torch.manual_seed(t["seed"])
        model, codec = self.build_model(cfg), self.codec(cfg)
        model.set_mean_shape(shape)                      # S0 of Xia Sec. 3.2: the training mean shape
        base_sha = self.load_base(model, t["init_from"], t["stored"], zoo_dir) if t.get("init_from") else None
        history, per_stage = train_atpn(model, cfg, sets, device=device, checkpoint_dir=checkpoint_dir,
                                        resume=resume, show_progress=show_progress, execution=execution)
        ev = evaluate(model, sets["val"], codec.decode, norm=t["norm"], device=device, layout=layout,
                      metrics=atpn_metrics(pose0, pose=pose0 is not None))
        return Result(cfg, model.cpu().eval(), codec, history, ev, shape,
                      baseline_nmes(shape, ev.landmarks, t["norm"], layout), time.perf_counter() - start,
                      sets["val"], sets["faces"],
                      {"mean_pose": pose0, "stage_histories": per_stage, "base_sha256": base_sha})

    def predictor(self, model, cfg):
        return atpn_predictor(model.eval())

    def network_text(self, cfg):
        return f"MobileNetV3 x {cfg['model_args']['width']:g}, alignment + pose + tracking branches"

    def task_metrics(self, model, cfg, mean_pose=None, scored=None, split: str = "val", n: int | None = None,
                     seed: int | None = None):
        """ATPN's ``pose_mae``, ``pose_fr`` (degrees, FR@10) and ``confidence_ap``, each with its
        ``*_baseline`` (the training mean pose, the share of faces), on the zoo's ``split`` faces
        with as many negatives of that split; and ``tracking``: :func:`lmk.track.summarize` of the
        ``split`` videos (tracked again unless ``scored`` holds the ``"tracks"``)."""
        faces = self.evaluation_set(cfg, split, n, seed)
        d = cfg["data"]
        seed = NEGATIVES_VAL_SEED if split == "val" else NEGATIVES_TEST_SEED
        val = MultitaskDataset(faces, _rendered_negatives(len(faces), d["input_size"], seed, d["difficulty"]))
        ev = evaluate(model.eval(), val, operator.itemgetter("landmarks"), device="cpu",
                      norm=cfg["train"]["norm"], metrics=atpn_metrics(mean_pose))
        tracks = (scored or {}).get("tracks")
        return {**ev.metrics, "tracking": summarize(tracks) if tracks else self.tracking_summary(model, cfg, split)}

    def entry_extras(self, result):
        pose0 = result.extras.get("mean_pose")
        return {"mean_pose": None if pose0 is None else np.round(pose0, 4).tolist()}
